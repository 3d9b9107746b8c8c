#!/usr/bin/env bash
# Crash loop on a mounted session (tests/fuse/crash_loop.py): ITERATIONS
# times, a workload of small files, large appends, renames, fsyncs and live
# snapshots runs on a `strata mount` daemon that gets kill -9 at a random
# moment; then the mount is cleaned up, the session remounted and checked
# (fsck, every fsync'd byte, every snapshot reported created, a fork).
# Runs every iteration (a failure does not stop it) and prints
# "survived N of ITERATIONS" with the seed; the exit status is 0 only if all
# survived.
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench), ITERATIONS
#              (100), SEED (random; printed), MAX_KILL_DELAY (seconds, 1.5),
#              STRATA_BENCH_DIR (default /tmp), KEEP=1 keeps the state
#              (kept anyway after a failure).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-crash.XXXXXX")
status=1
cleanup() {
  umount -l "$DIR/state/mnt" 2>/dev/null || true
  if [[ "${KEEP:-0}" == 1 || $status != 0 ]]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
args=(--strata "$BUILD/strata" --state "$DIR/state" --iterations "${ITERATIONS:-100}"
      --max-kill-delay "${MAX_KILL_DELAY:-1.5}" --keep-going --keep)
[[ -n "${SEED:-}" ]] && args+=(--seed "$SEED")
python3 "$ROOT/tests/fuse/crash_loop.py" "${args[@]}" && status=0 || status=$?
exit $status
