#!/usr/bin/env bash
# Soak of one mounted session (tests/fuse/concurrency_check.py, long): WRITERS
# writer processes (8) make OPS changes each (25,000: creates, appends,
# overwrites, truncates, renames, unlinks, files held open) as fast as they
# can (PACE_MS=0) while, each from its own process as users run them, a
# `strata snapshot` runs every SNAP_MS (100) ms and a `strata fork` of the
# live session every FORK_MS (100) ms (FORK_HEAD=0: of the latest snapshot,
# every second). Then every snapshot and fork is checked, exactly and strictly
# (one instant of each writer's files; STRICT=0 relaxes it), against the
# writers' logs, and `strata fsck` runs.
# Prints changes/s, the cuts made, snapshot and fork latency (p50, p90, p99,
# max), the daemon's peak memory (VmHWM) and RSS samples, and every failure;
# exit status 0 if none.
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench), WRITERS, OPS,
#              PACE_MS, SNAP_MS, FORK_MS, FORK_HEAD, SEED, STRICT,
#              STRATA_BENCH_DIR (default /tmp), KEEP=1 keeps the state (kept
#              anyway after a failure).
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
      --ops "${OPS:-25000}" --pace-ms "${PACE_MS:-0}" --snap-ms "${SNAP_MS:-100}" --keep)
if [[ "${FORK_HEAD:-1}" == 1 ]]; then
  args+=(--fork-head --fork-ms "${FORK_MS:-100}")
else
  args+=(--fork-ms "${FORK_MS:-1000}")
fi
[[ -n "${SEED:-}" ]] && args+=(--seed "$SEED")
[[ "${STRICT:-1}" == 1 ]] && args+=(--strict)
python3 "$ROOT/tests/fuse/concurrency_check.py" "${args[@]}" && status=0 || status=$?
exit $status
