#!/usr/bin/env bash
# Space coming back: a session holding 1 GiB of file data (64 files of 16 MiB,
# half random, half source text), then half of its files deleted through a
# mount, then `strata gc`. Prints the store file's size at each step and
# gc's time. REPS (default 3) full runs; each prints its own table.
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench),
#              STRATA_BENCH_DIR (default /tmp; a real disk, not tmpfs), REPS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_BENCHMARKS=ON >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-gc.XXXXXX")
cleanup() {
  mountpoint -q "$DIR/mnt" && "$BUILD/strata" --store "$DIR/store.db" umount "$DIR/mnt" || true
  rm -rf "$DIR"
}
trap cleanup EXIT
S="$BUILD/strata"
mkdir -p "$DIR/data" "$DIR/mnt"
(tar -cf - -C /usr include 2>/dev/null || true) | head -c 16M >"$DIR/text"
for i in $(seq 1 32); do
  head -c 16M /dev/urandom >"$DIR/data/random$i"
  { printf 'copy %d\n' "$i"; head -c 16M "$DIR/text"; } | head -c 16M >"$DIR/data/text$i"
done
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
size() { stat -c %s "$DIR/store.db"; }
for rep in $(seq 1 "${REPS:-3}"); do
  rm -f "$DIR"/store.db*
  "$S" --store "$DIR/store.db" init --base empty work >/dev/null
  "$S" --store "$DIR/store.db" copy-in "$DIR/data" work:/data >/dev/null
  full=$(size)
  "$S" --store "$DIR/store.db" mount work "$DIR/mnt" >/dev/null
  # Every other file: half the random data and half the text.
  for i in $(seq 1 2 32); do rm "$DIR/mnt/data/random$i" "$DIR/mnt/data/text$i"; done
  "$S" --store "$DIR/store.db" umount "$DIR/mnt"
  deleted=$(size)
  t0=$EPOCHREALTIME
  "$S" --store "$DIR/store.db" gc >/dev/null
  t1=$EPOCHREALTIME
  after=$(size)
  "$S" --store "$DIR/store.db" fsck >/dev/null
  echo "run $rep (commit $(git -C "$ROOT" rev-parse --short HEAD)):"
  echo "| step | store file (MiB) |"
  echo "|---|---|"
  echo "| 1 GiB written | $(mib "$full") |"
  echo "| half the files deleted | $(mib "$deleted") |"
  awk -v a="$after" -v t0="$t0" -v t1="$t1" -v f="$full" \
    'BEGIN {printf "| after gc (%.2f s) | %.1f (%.0f%% of full) |\n", t1 - t0, a / 1048576, 100 * a / f}'
done
