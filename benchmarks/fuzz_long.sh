#!/usr/bin/env bash
# Builds the fuzz preset (clang, libFuzzer, ASan+UBSan) and runs every fuzz
# target for SECONDS each (default 600), one after the other, each with a
# corpus that persists between runs, then prints per target: seconds run,
# executions (libFuzzer's final stats), executions per second, corpus size
# and crashes found.
#
#   benchmarks/fuzz_long.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment:
#   STRATA_FUZZ_BUILD   build directory (default: <repo>/build-fuzz)
#   STRATA_FUZZ_CORPUS  persistent corpora (default: $BUILD/corpus-long/<target>)
#   STRATA_FUZZ_JOBS    parallel fuzzing processes per target (default 1)
#   STRATA_FUZZ_TMPDIR  where the targets make their scratch stores
#                       (default /dev/shm)
# Crashes, leaks and timeouts go to $BUILD/artifacts-long/<target>/; replay
# one with `$BUILD/tests/fuzz/<target> FILE`. A crash that is a real bug,
# once fixed, belongs in tests/fuzz/regressions/<target>/ (CTest replays it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_FUZZ_BUILD:-$ROOT/build-fuzz}
SECONDS_PER_TARGET=${1:-600}
shift $(( $# > 0 ? 1 : 0 ))
ALL=(tar_import_fuzz bundle_import_fuzz address_fuzz json_fuzz ops_fuzz)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
CORPUS_ROOT=${STRATA_FUZZ_CORPUS:-$BUILD/corpus-long}
JOBS=${STRATA_FUZZ_JOBS:-1}

if [ "$BUILD" = "$ROOT/build-fuzz" ]; then
  cmake --preset fuzz >/dev/null
else
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSTRATA_FUZZ=ON \
    -DSTRATA_SANITIZE=address,undefined -DSTRATA_BUILD_TESTS=OFF \
    -DSTRATA_BUILD_BENCHMARKS=OFF >/dev/null
fi
nice -n 10 cmake --build "$BUILD" -j2 --target fuzz_seeds "${TARGETS[@]}"
SEEDS=$BUILD/tests/fuzz/seeds
"$BUILD/tests/fuzz/fuzz_seeds" "$SEEDS"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

summary=()
for t in "${TARGETS[@]}"; do
  corpus=$CORPUS_ROOT/$t
  artifacts=$BUILD/artifacts-long/$t
  log=$BUILD/fuzz-long-$t.log
  mkdir -p "$corpus" "$artifacts" "$SEEDS/$t"
  dirs=("$corpus" "$SEEDS/$t")
  for committed in corpus regressions; do
    if [ -d "$ROOT/tests/fuzz/$committed/$t" ]; then dirs+=("$ROOT/tests/fuzz/$committed/$t"); fi
  done
  crashes_before=$(find "$artifacts" -type f | wc -l)
  echo "== $t: ${SECONDS_PER_TARGET}s, corpus $corpus, log $log"
  start=$(date +%s)
  # -fork keeps fuzzing after a crash (each is saved); without it the first
  # crash ends the run.
  set +e
  if [ "$JOBS" -gt 1 ]; then
    "$BUILD/tests/fuzz/$t" -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=60 -rss_limit_mb=3072 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1
  else
    "$BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=60 -rss_limit_mb=3072 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1
  fi
  status=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
  if [ -z "$execs" ]; then  # stopped by a crash: the last status line has the count
    execs=$(grep -aoE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  fi
  execs=${execs:-0}
  rate=$(( elapsed > 0 ? execs / elapsed : 0 ))
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(du -sk "$corpus" | cut -f1)
  crashes=$(( $(find "$artifacts" -type f | wc -l) - crashes_before ))
  summary+=("$(printf '%-20s %8s %12s %9s %8s %8s %8s %s' "$t" "$elapsed" "$execs" "$rate" \
    "$files" "${bytes}K" "$crashes" "$([ $status -eq 0 ] || echo "exit $status")")")
done

echo
printf '%-20s %8s %12s %9s %8s %8s %8s\n' target seconds executions exec/s corpus size crashes
for line in "${summary[@]}"; do echo "$line"; done
echo "(crash inputs: $BUILD/artifacts-long/<target>/; logs: $BUILD/fuzz-long-<target>.log)"
