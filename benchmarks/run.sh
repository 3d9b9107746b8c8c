#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs all of them, then prints a summary
# of the medians and of every budget verdict. About 5 minutes on 2 cores.
#
#   benchmarks/run.sh                 # everything
#   benchmarks/run.sh branch_bench    # only the named binaries
#
# Environment:
#   STRATA_BENCH_BUILD  build directory (default: <repo>/build-bench)
#   STRATA_BENCH_DIR    where the temporary stores go (default /tmp; must be
#                       a real disk, not tmpfs)
#   STRATA_BENCH_OUT    where the raw results go (default: $BUILD/bench-results)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
OUT=${STRATA_BENCH_OUT:-$BUILD/bench-results}
export STRATA_BENCH_DIR=${STRATA_BENCH_DIR:-/tmp}
ALL=(chunk_bench file_bench branch_bench dedup_bench blocksize_bench state_bench)
if [ $# -gt 0 ]; then BENCHES=("$@"); else BENCHES=("${ALL[@]}"); fi

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSTRATA_BUILD_BENCHMARKS=ON >/dev/null
ninja -C "$BUILD" -j2 "${BENCHES[@]}"
mkdir -p "$OUT"

fstype=$(df -T "$STRATA_BENCH_DIR" | awk 'NR==2 {print $2}')
if [ "$fstype" = tmpfs ]; then
  echo "warning: $STRATA_BENCH_DIR is tmpfs; set STRATA_BENCH_DIR to a directory on disk" >&2
fi

{
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
  echo "host:    $(nproc) CPUs ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM," \
       "kernel $(uname -r)"
  echo "stores:  $STRATA_BENCH_DIR ($fstype on $(df "$STRATA_BENCH_DIR" | awk 'NR==2 {print $1}'))"
  echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"\
       "$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '(with local changes)')"
} | tee "$OUT/machine.txt"

start=$(date +%s)
for b in "${BENCHES[@]}"; do
  echo
  echo "##### $b"
  t0=$(date +%s)
  "$BUILD/benchmarks/$b" --benchmark_out="$OUT/$b.json" --benchmark_out_format=json \
    2> >(grep -v 'Library was built as DEBUG' >&2) | tee "$OUT/$b.txt"
  echo "($b took $(( $(date +%s) - t0 )) s)"
done
echo
echo "total: $(( $(date +%s) - start )) s"

# Summary: the median of every benchmark (or its single run), then the
# budget sections the binaries print themselves.
summary() {
  echo "================ SUMMARY ================"
  cat "$OUT/machine.txt"
  if command -v python3 >/dev/null; then
    python3 - "$OUT" "${BENCHES[@]}" <<'EOF'
import json, sys, os
out = sys.argv[1]
for b in sys.argv[2:]:
    path = os.path.join(out, b + ".json")
    if not os.path.exists(path):
        continue
    data = json.load(open(path))
    rows = [r for r in data["benchmarks"]
            if r.get("aggregate_name") == "median" or
            (r.get("run_type") == "iteration" and r.get("repetitions", 1) <= 1)]
    if not rows:
        continue
    print(f"\n[{b}] (medians)")
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
            "iterations", "real_time", "cpu_time", "time_unit", "family_index",
            "per_family_instance_index", "aggregate_name", "aggregate_unit"}
    for r in rows:
        name = r["run_name"]
        for cut in ("/min_time", "/iterations", "/repeats", "/real_time", "/manual_time"):
            name = name.split(cut)[0]
        figs = [f'{r["real_time"]:.4g} {r["time_unit"]} (cpu {r["cpu_time"]:.4g})']
        for k, v in r.items():
            if k in skip or not isinstance(v, (int, float)):
                continue
            if k == "bytes_per_second":
                figs.append(f"{v / 1048576:.1f} MiB/s")
            elif k == "items_per_second":
                figs.append(f"{v:,.0f} items/s")
            else:
                figs.append(f"{k}={v:.4g}")
        print(f"  {name:<45} " + ", ".join(figs))
EOF
  fi
  for b in "${BENCHES[@]}"; do
    [ -f "$OUT/$b.txt" ] && sed -n '/^=== /,$p' "$OUT/$b.txt"
  done
  echo
  echo "raw results: $OUT"
}
summary | tee "$OUT/summary.txt"
