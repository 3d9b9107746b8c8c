#!/usr/bin/env bash
# Sandbox start-up, end to end with the `strata` command, in one run:
#   warm:   `strata run S -- true` while S is mounted (`strata mount`),
#   cold:   the same with S not mounted (run mounts it and unmounts after),
#   bwrap:  bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all
#           --die-with-parent true (the reference),
# interleaved, REPS times each; prints medians and warm/bwrap.
# Then 100 sessions made from one image (a tarball of a minimal root), each
# running `true`: total seconds for init + run of all 100.
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench), REPS (50),
#              STRATA_BENCH_DIR (default /tmp).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
REPS=${REPS:-50}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_BENCHMARKS=ON >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
command -v bwrap >/dev/null || { echo "bwrap is missing (apt-get install bubblewrap)" >&2; exit 1; }
DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-sandbox.XXXXXX")
S="$BUILD/strata"
export STRATA_STORE="$DIR/store.db"
cleanup() {
  "$S" umount "$DIR/mnt" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

echo "indexing the host base (once per store)..."
"$S" init warm >/dev/null 2>&1
"$S" fork warm cold >/dev/null
mkdir -p "$DIR/mnt"
"$S" mount warm "$DIR/mnt" >/dev/null

ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b - a) * 1000}'; }
declare -a W C B
for i in $(seq 1 "$REPS"); do
  t0=$EPOCHREALTIME; "$S" run warm -- true; t1=$EPOCHREALTIME; W+=("$(ms "$t0" "$t1")")
  t0=$EPOCHREALTIME; "$S" run cold -- true; t1=$EPOCHREALTIME; C+=("$(ms "$t0" "$t1")")
  t0=$EPOCHREALTIME
  bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all --die-with-parent true
  t1=$EPOCHREALTIME; B+=("$(ms "$t0" "$t1")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
w=$(median "${W[@]}"); c=$(median "${C[@]}"); b=$(median "${B[@]}")
echo "strata run, session mounted (warm): median $w ms"
echo "strata run, not mounted (cold):     median $c ms"
echo "bwrap --unshare-all:                median $b ms"
awk -v w="$w" -v b="$b" 'BEGIN {printf "warm / bwrap: %.2fx (budget <= 2x); cold budget <= 100 ms\n", w / b}'

# 100 sessions from one image.
ROOTFS="$DIR/rootfs"
mkdir -p "$ROOTFS/bin"
cp /bin/true "$ROOTFS/bin/true"
for lib in $(ldd /bin/true | grep -o '/[^ ]*'); do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done
tar -C "$ROOTFS" -cf "$DIR/mini.tar" .
"$S" image import mini "$DIR/mini.tar" >/dev/null
t0=$EPOCHREALTIME
for i in $(seq 1 100); do
  "$S" init --image mini "s$i" >/dev/null
  "$S" run "s$i" -- /bin/true
done
t1=$EPOCHREALTIME
awk -v a="$t0" -v b="$t1" 'BEGIN {printf "100 sessions from one image, init + run true each: %.2f s (budget < 10 s)\n", b - a}'
