#!/usr/bin/env bash
# Export and import of a session holding 1 GiB of file data, end to end with
# the `strata` command: MiB/s of each (raw data size / time) and the bundle's
# size against the raw data. The data is half random (incompressible) and
# half source text (/usr/include, repeated), in 64 files.
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench),
#              STRATA_BENCH_DIR (default /tmp; a real disk, not tmpfs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_BENCHMARKS=ON >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-bundle.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
S="$BUILD/strata"
mkdir -p "$DIR/data"
(tar -cf - -C /usr include 2>/dev/null || true) | head -c 64M >"$DIR/text"
for i in $(seq 1 32); do
  head -c 16M /dev/urandom >"$DIR/data/random$i"
  { printf 'copy %d\n' "$i"; head -c 16M "$DIR/text"; } >"$DIR/data/text$i"
done
raw=$(du -sb "$DIR/data" | cut -f1)
"$S" --store "$DIR/src.db" init --base empty work >/dev/null
"$S" --store "$DIR/src.db" copy-in "$DIR/data" work:/data >/dev/null
"$S" --store "$DIR/src.db" snapshot work v1 >/dev/null
sync
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
t0=$EPOCHREALTIME
"$S" --store "$DIR/src.db" export work "$DIR/work.bundle" >/dev/null
sync
t1=$EPOCHREALTIME
"$S" --store "$DIR/dst.db" import "$DIR/work.bundle" >/dev/null
sync
t2=$EPOCHREALTIME
bundle=$(stat -c %s "$DIR/work.bundle")
e=$(secs "$t0" "$t1"); i=$(secs "$t1" "$t2")
echo "| step | seconds | MiB/s of raw data |"
echo "|---|---|---|"
awk -v s="$e" -v r="$raw" 'BEGIN {printf "| export | %.2f | %.0f |\n", s, r / 1048576 / s}'
awk -v s="$i" -v r="$raw" 'BEGIN {printf "| import (verify + insert) | %.2f | %.0f |\n", s, r / 1048576 / s}'
awk -v b="$bundle" -v r="$raw" 'BEGIN {printf "\nraw data %.0f MiB, bundle %.0f MiB (%.1f%% of raw)\n", r / 1048576, b / 1048576, 100 * b / r}'
"$S" --store "$DIR/dst.db" fsck >/dev/null && echo "imported store: fsck clean"
cmp <("$S" --store "$DIR/src.db" cat work:/data/random7) <("$S" --store "$DIR/dst.db" cat work:/data/random7) \
  && echo "a sample file reads back identical"
