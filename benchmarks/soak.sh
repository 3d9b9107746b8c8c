#!/usr/bin/env bash
# Soak of one mounted session (tests/fuse/concurrency_check.py, long): WRITERS
# writer processes (8) make OPS changes each (25,000) as fast as they can
# (PACE_MS=0) while a snapshot is taken every 100 ms (`strata snapshot`) and a
# fork of the latest snapshot every second (`strata fork`). Then every
# snapshot and fork is checked against the writers' logs, and `strata fsck`.
# Prints changes/s, snapshots and forks made, the daemon's peak memory
# (VmHWM) and RSS samples, and every failure; exit status 0 if none.
# STRICT=1 also fails on snapshots that show a rename without the writes made
# to the file before it (see the report in docs/BENCHMARKS.md).
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench), WRITERS, OPS,
#              PACE_MS, SEED, STRICT, STRATA_BENCH_DIR (default /tmp), KEEP=1
#              keeps the state (kept anyway after a failure).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-soak.XXXXXX")
status=1
cleanup() {
  umount -l "$DIR/state/mnt" 2>/dev/null || true
  if [[ "${KEEP:-0}" == 1 || $status != 0 ]]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
args=(--strata "$BUILD/strata" --state "$DIR/state" --writers "${WRITERS:-8}"
      --ops "${OPS:-25000}" --pace-ms "${PACE_MS:-0}" --keep)
[[ -n "${SEED:-}" ]] && args+=(--seed "$SEED")
[[ "${STRICT:-0}" == 1 ]] && args+=(--strict)
python3 "$ROOT/tests/fuse/concurrency_check.py" "${args[@]}" && status=0 || status=$?
exit $status
