#!/usr/bin/env bash
# Push and pull through a real radosgw (tools/dev-s3.sh, memstore) against
# Debian's awscli on the same files in the same run: a 1 GiB session (SIZE_MIB)
# of files from 4 KiB to 64 MiB, half source text, half random bytes.
#   push        `strata push` of the session (a new bucket)
#   pull        `strata pull` into an empty store (lazily: the metadata)
#   first byte  the first byte of the largest file of that pulled session
#               (`strata cat | head -c 1`, a new process)
#   mount       `strata mount`, `ls` of /data and `cat` of its first file, on a
#               lazily pulled session (never mounted before) against the same
#               on the pushing store: five of each, interleaved, median
#   pull eager  `strata pull --eager` into another empty store (everything)
#   re-push     after changing one 4 KiB file
#   awscli up   `aws s3 cp --recursive` of the same directory (a new prefix)
#   awscli down `aws s3 cp --recursive` of it back into an empty directory
#               (the budget's baseline), and again into another one followed
#               by `sync` (durable, as strata's eager pull is when it returns)
# Prints each step's time, MiB/s of the data, and strata's requests and
# bytes, for REPS (default 1) runs; exit status 1 if a pulled file differs.
# Each timed step begins after a `sync`. strata's eager pull is durable when
# it returns (synced); awscli's download is in the page cache.
#
# Environment: STRATA (a strata binary; default: build this tree in
#              STRATA_BENCH_BUILD, default <repo>/build-bench),
#              STRATA_BENCH_DIR (default /tmp), SIZE_MIB (1024), REPS, AWS
#              (default /usr/bin/aws, Debian's awscli).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benchmarks/s3_lib.sh
source "$ROOT/benchmarks/s3_lib.sh"
AWS=${AWS:-/usr/bin/aws}
SIZE_MIB=${SIZE_MIB:-1024}
# The memstore holds everything in RAM: room for two copies of the data.
s3_start s3bench $(( (SIZE_MIB * 3 + 1024) << 20 ))
export AWS_DEFAULT_REGION=$AWS_REGION AWS_EC2_METADATA_DISABLED=true

# The files: sizes doubling from 4 KiB to 64 MiB, text and random in turn,
# until SIZE_MIB is reached.
mkdir -p "$DIR/data"
(tar -cf - -C /usr include 2>/dev/null || true) | head -c 64M >"$DIR/text"
total=0 i=0 size=4096
while (( total < SIZE_MIB << 20 )); do
  f="$DIR/data/f$i"
  if (( i % 2 == 0 )); then head -c "$size" "$DIR/text" >"$f"; else head -c "$size" /dev/urandom >"$f"; fi
  total=$(( total + size )); i=$(( i + 1 ))
  size=$(( size * 2 )); (( size > 64 << 20 )) && size=4096
done
mib=$(awk -v b="$total" 'BEGIN {printf "%.0f", b / 1048576}')
# Each step starts with nothing dirty in the page cache (s3_lib.sh, timed).
SYNC_BEFORE_STEPS=1
rate() { awk -v s="$1" -v m="$mib" 'BEGIN {printf "%.0f", m / s}'; }
s3() { "$AWS" --endpoint-url "$STRATA_S3_ENDPOINT" s3 "$@"; }

for rep in $(seq 1 "${REPS:-1}"); do
  bucket="bench-$rep-$RANDOM"
  s3 mb "s3://$bucket" >/dev/null
  rm -rf "$DIR"/a.db* "$DIR"/b.db* "$DIR"/c.db* "$DIR/down"
  A=("$STRATA" --store "$DIR/a.db") B=("$STRATA" --store "$DIR/b.db") C=("$STRATA" --store "$DIR/c.db")
  "${A[@]}" init --base empty work >/dev/null
  "${A[@]}" copy-in "$DIR/data" work:/data >/dev/null
  "${A[@]}" remote add r "s3://$bucket/strata" --endpoint "$STRATA_S3_ENDPOINT" >/dev/null
  "${B[@]}" remote add r "s3://$bucket/strata" --endpoint "$STRATA_S3_ENDPOINT" >/dev/null
  "${C[@]}" remote add r "s3://$bucket/strata" --endpoint "$STRATA_S3_ENDPOINT" >/dev/null
  largest=$(ls -S "$DIR/data" | head -1)
  t_push=$(timed "${A[@]}" --json push work); push_out=$(cat "$DIR/out")
  t_pull=$(timed "${B[@]}" --json pull work); pull_out=$(cat "$DIR/out")
  t_first=$(timed bash -c '"$@" cat "work:/data/'"$largest"'" | head -c 1 >/dev/null' _ "${B[@]}")
  mount_ls_cat() {  # store file; prints milliseconds for mount + ls + cat
    local m="$DIR/mnt" t
    mkdir -p "$m"
    sync
    t=$EPOCHREALTIME
    "$STRATA" --store "$1" mount work "$m" >/dev/null && ls "$m/data" >/dev/null && cat "$m/data/f0" >/dev/null
    awk -v t0="$t" -v t1="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (t1 - t0) * 1000}'
    "$STRATA" --store "$1" umount "$m" >/dev/null
  }
  median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
  # Tens of milliseconds: five of each, interleaved, each pulled store
  # mounted for the first time (a new lazy pull each).
  local_ms=() pulled_ms=()
  for k in 1 2 3 4 5; do
    rm -f "$DIR"/m.db*
    "$STRATA" --store "$DIR/m.db" remote add r "s3://$bucket/strata" --endpoint "$STRATA_S3_ENDPOINT" >/dev/null
    "$STRATA" --store "$DIR/m.db" pull work >/dev/null
    local_ms+=("$(mount_ls_cat "$DIR/a.db")")
    pulled_ms+=("$(mount_ls_cat "$DIR/m.db")")
  done
  t_mount_local="$(median "${local_ms[@]}") ms (${local_ms[*]})"
  t_mount_pulled="$(median "${pulled_ms[@]}") ms (${pulled_ms[*]})"
  t_eager=$(timed "${C[@]}" --json pull --eager work); eager_out=$(cat "$DIR/out")
  for f in "$DIR"/data/*; do
    cmp <("${C[@]}" cat "work:/data/$(basename "$f")") "$f" || { echo "pulled $f differs"; exit 1; }
  done
  cmp <("${B[@]}" cat "work:/data/$largest") "$DIR/data/$largest" || { echo "lazily pulled $largest differs"; exit 1; }
  head -c 4096 /dev/urandom | "${A[@]}" put work:/data/f0
  t_repush=$(timed "${A[@]}" --json push work); repush_out=$(cat "$DIR/out")
  t_up=$(timed s3 cp --recursive --only-show-errors "$DIR/data" "s3://$bucket/aws")
  t_down=$(timed s3 cp --recursive --only-show-errors "s3://$bucket/aws" "$DIR/down")
  t_down_sync=$(timed bash -c '"$@" && sync' _ "$AWS" --endpoint-url "$STRATA_S3_ENDPOINT" s3 cp \
    --recursive --only-show-errors "s3://$bucket/aws" "$DIR/down2")
  rm -rf "$DIR/down2"
  echo "run $rep (commit $(git -C "$ROOT" rev-parse --short HEAD), $mib MiB in $i files):"
  echo "| step | time (s) | MiB/s | requests | bytes sent or received |"
  echo "|---|---|---|---|---|"
  echo "| strata push | $t_push | $(rate "$t_push") | $(field "$push_out" requests) | $(field "$push_out" bytes) |"
  echo "| strata pull (lazy) | $t_pull | | $(field "$pull_out" requests) | $(field "$pull_out" bytes) |"
  echo "| first byte of $largest after it | $t_first | | | |"
  echo "| mount + ls + cat, median of 5: local / lazily pulled | $t_mount_local / $t_mount_pulled | | | |"
  echo "| strata pull --eager | $t_eager | $(rate "$t_eager") | $(field "$eager_out" requests) | $(field "$eager_out" bytes) |"
  echo "| strata re-push (one 4 KiB file changed) | $t_repush | | $(field "$repush_out" requests) | $(field "$repush_out" bytes) |"
  echo "| awscli up | $t_up | $(rate "$t_up") | | |"
  echo "| awscli down | $t_down | $(rate "$t_down") | | |"
  echo "| awscli down + sync | $t_down_sync | $(rate "$t_down_sync") | | |"
  awk -v p="$t_push" -v q="$t_eager" -v u="$t_up" -v d="$t_down" \
    -v l="$(median "${local_ms[@]}")" -v m="$(median "${pulled_ms[@]}")" \
    'BEGIN {printf "push %.2fx, pull --eager %.2fx of awscli'"'"'s rate; mount + ls + cat pulled %.2fx of local\n", u / p, d / q, m / l}'
  s3 rb --force "s3://$bucket" >/dev/null  # the memstore has room for one run
done
