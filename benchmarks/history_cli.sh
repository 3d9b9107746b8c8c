#!/usr/bin/env bash
# Times the history commands at scale, end to end (process start, opening the
# store, the query, the output), against the issue's budgets:
#   strata log SESSION --limit 50 on 1,000,000 recorded calls: < 50 ms
#   strata diff between two snapshots 10 files apart, 100,000 files: < 50 ms
# and, without a budget from the issue, a query over the files view (< 1 s).
# Builds Release into build-bench/, writes the fixture with
# `state_bench --make-fixture` (about a minute), runs each command 21 times
# and prints the median and the slowest.
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench),
#              STRATA_BENCH_DIR (default /tmp; a real disk, not tmpfs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_BENCHMARKS=ON >/dev/null
ninja -C "$BUILD" -j2 state_bench strata_cli >/dev/null
DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-history.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
echo "building the fixture in $DIR ..."
"$BUILD/benchmarks/state_bench" --make-fixture "$DIR"
STRATA=("$BUILD/strata" --store "$DIR/store.db")

# time_cmd LABEL BUDGET_MS CMD...: 21 runs (output discarded); median and max.
time_cmd() {
  local label=$1 budget=$2 i t0 t1
  shift 2
  "$@" >/dev/null  # warm the page cache once
  local times=()
  for i in $(seq 1 21); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null
    t1=$EPOCHREALTIME
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) * 1000}')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v budget="$budget" '
    { v[NR] = $1 } END {
      med = v[int((NR + 1) / 2)];
      printf "| %s | %.1f ms | %.1f ms | < %d ms | %s |\n", label, med, v[NR], budget,
             med < budget ? "**PASS**" : "**FAIL**" }'
}
echo
echo "| command | median | slowest | budget | verdict |"
echo "|---|---|---|---|---|"
time_cmd "log --limit 50, 1,000,000 calls" 50 "${STRATA[@]}" log agent --limit 50
time_cmd "log --limit 50 --json, 1,000,000 calls" 50 "${STRATA[@]}" --json log agent --limit 50
time_cmd "diff, 10 of 100,000 files changed" 50 "${STRATA[@]}" diff tree@before tree@after
# Not an issue budget: the files view walks the trees; it must stay linear.
time_cmd "sql over files (100,000), a filter on type" 1000 "${STRATA[@]}" sql \
  "SELECT count(*), sum(size) FROM files WHERE type = 'file'"
