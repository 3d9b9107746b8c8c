# Sourced by the S3 benchmarks (s3_bench.sh, s3_host_bench.sh) after they set
# ROOT (the repository) and `set -euo pipefail`.
#
#   STRATA                a strata binary: as given, else this tree built in
#                         STRATA_BENCH_BUILD (default <repo>/build-bench)
#   s3_start NAME BYTES   DIR, a new directory under STRATA_BENCH_DIR (default
#                         /tmp), with a radosgw (tools/dev-s3.sh, a memstore of
#                         BYTES) in DIR/s3, both gone when the script exits;
#                         its endpoint and keys exported
#   timed CMD...          CMD's seconds (to 0.01 s) on stdout, its output in
#                         $DIR/out (shown, and the status returned, if it
#                         fails); after a `sync` when SYNC_BEFORE_STEPS=1, so
#                         that no step pays for writing back another's data
#   field JSON KEY        one field of a JSON object

if [[ -z "${STRATA:-}" ]]; then
  BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" -j2 strata_cli >/dev/null
  STRATA="$BUILD/strata"
fi

s3_start() {
  DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-$1.XXXXXX")
  S3DIR="$DIR/s3"
  trap '"$ROOT/tools/dev-s3.sh" stop "$S3DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
  eval "$(DEV_S3_MEMSTORE_BYTES=$2 "$ROOT/tools/dev-s3.sh" start "$S3DIR")"
}

timed() {
  if [[ ${SYNC_BEFORE_STEPS:-0} == 1 ]]; then sync; fi
  local t0=$EPOCHREALTIME
  "$@" >"$DIR/out" 2>&1 || { cat "$DIR/out" >&2; return 1; }
  awk -v t0="$t0" -v t1="$EPOCHREALTIME" 'BEGIN {printf "%.2f", t1 - t0}'
}

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
