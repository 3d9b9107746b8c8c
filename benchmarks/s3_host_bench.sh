#!/usr/bin/env bash
# Host-base sessions through a real radosgw (tools/dev-s3.sh, memstore): what
# pushing sessions on this machine's userland costs, first and again.
#   push 1       `strata push` of a new host-base session (store A): every
#                host file it can see goes up once
#   push 2       a second host-base session of store A (the same base)
#   push 3       a host-base session of another store B on the same host: as
#                a second machine of a fleet with the same userland
#   push by ref  a host-base session of store C, `--host-by-reference`
#   pull + read  `strata pull` of push 1's session into an empty store and a
#                read of /usr/bin/bash from it, compared with the host's
# Prints each step's time, requests and bytes sent, and the userland's size,
# for REPS (default 1) runs; exit status 1 if a pulled file differs.
#
# Environment: STRATA (a strata binary; default: build this tree in
#              STRATA_BENCH_BUILD, default <repo>/build-bench),
#              STRATA_BENCH_DIR (default /tmp), REPS, MEMSTORE_GIB (the
#              radosgw's RAM, default 12).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benchmarks/s3_lib.sh
source "$ROOT/benchmarks/s3_lib.sh"
s3_start s3host $(( ${MEMSTORE_GIB:-12} << 30 ))

mib() { awk -v b="$1" 'BEGIN {printf "%.0f", b / 1048576}'; }
row() {  # label seconds json
  echo "| $1 | $2 | $(field "$3" requests) | $(mib "$(field "$3" bytes)") | $(field "$3" transferred) of $(field "$3" chunks) |"
}
userland=$(du -sxb /usr /etc /var/lib/dpkg /var/lib/apt /opt 2>/dev/null | awk '{s += $1} END {print s}')

for rep in $(seq 1 "${REPS:-1}"); do
  bucket="host-$rep-$RANDOM"
  rm -rf "$DIR"/*.db*
  AWS_DEFAULT_REGION=$AWS_REGION AWS_EC2_METADATA_DISABLED=true \
    /usr/bin/aws --endpoint-url "$STRATA_S3_ENDPOINT" s3 mb "s3://$bucket" >/dev/null
  for s in a b c d; do
    "$STRATA" --store "$DIR/$s.db" remote add r "s3://$bucket/strata" --endpoint "$STRATA_S3_ENDPOINT" >/dev/null
  done
  A=("$STRATA" --store "$DIR/a.db") B=("$STRATA" --store "$DIR/b.db")
  C=("$STRATA" --store "$DIR/c.db") D=("$STRATA" --store "$DIR/d.db")
  "${A[@]}" init h1 >/dev/null
  "${A[@]}" init h2 >/dev/null
  "${B[@]}" init h3 >/dev/null
  "${C[@]}" init h4 >/dev/null
  t1=$(timed "${A[@]}" --json push h1); o1=$(cat "$DIR/out")
  t2=$(timed "${A[@]}" --json push h2); o2=$(cat "$DIR/out")
  t3=$(timed "${B[@]}" --json push h3); o3=$(cat "$DIR/out")
  t4=$(timed "${C[@]}" --json push --host-by-reference h4); o4=$(cat "$DIR/out")
  t5=$(timed "${D[@]}" --json pull h1); o5=$(cat "$DIR/out")
  t6=$(timed bash -c '"$@" cat h1:/usr/bin/bash >"'"$DIR"'/bash"' _ "${D[@]}")
  cmp "$DIR/bash" /usr/bin/bash || { echo "pulled /usr/bin/bash differs"; exit 1; }
  echo "run $rep (commit $(git -C "$ROOT" rev-parse --short HEAD); userland $(mib "$userland") MiB in /usr, /etc, /var/lib/dpkg, /var/lib/apt, /opt):"
  echo "| step | time (s) | requests | MiB sent or received | chunks sent of chunks |"
  echo "|---|---|---|---|---|"
  row "push 1: first host-base session" "$t1" "$o1"
  row "push 2: second session, same store" "$t2" "$o2"
  row "push 3: a session of another store on the same host" "$t3" "$o3"
  row "push --host-by-reference, a third store" "$t4" "$o4"
  row "pull of session 1 into an empty store (lazy)" "$t5" "$o5"
  echo "| cat /usr/bin/bash from it (fetched on read) | $t6 | | | |"
done
