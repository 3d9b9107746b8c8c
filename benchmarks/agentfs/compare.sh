#!/usr/bin/env bash
# Side by side, in the same run: Strata's library (benchmarks/state_bench)
# and AgentFS's TypeScript SDK (npm install agentfs-sdk into a temporary
# directory) on the same three workloads, one awaited call at a time:
#   kv.set of one key, tools.record of one call, writeFile of a new 4 KiB file.
# Three rounds, alternating; prints the medians, the ratios and the verdict of
# the issue's budget (Strata >= 5x AgentFS on each).
#
# Both sides put their store on $STRATA_BENCH_DIR (default /tmp, a real
# disk). Commit behaviour differs and is part of what is compared: AgentFS
# commits every call; Strata groups calls into one commit per 10 ms (a
# crash loses at most those 10 ms; Sync() makes everything durable).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
OPS=${AGENTFS_OPS:-3000}
command -v node >/dev/null || { echo "node is missing (apt-get install nodejs npm)" >&2; exit 1; }
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_BENCHMARKS=ON >/dev/null
ninja -C "$BUILD" -j2 state_bench >/dev/null
WORK=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-agentfs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm install --silent --no-audit --no-fund agentfs-sdk@0.6.4 >/dev/null)
cp "$(dirname "$0")/agentfs_bench.mjs" "$WORK/"
version=$(node -e "console.log(require('$WORK/node_modules/agentfs-sdk/package.json').version)")
echo "AgentFS SDK $version, $OPS calls per workload and round; Strata state_bench"

RAW=$WORK/raw.tsv
: >"$RAW"
for round in 1 2 3; do
  rm -f "$WORK"/agent.db*
  node "$WORK/agentfs_bench.mjs" "$WORK/agent.db" "$OPS" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); [print("agentfs", k, v) for k, v in d.items()]' >>"$RAW"
  STRATA_BENCH_DIR=$WORK "$BUILD/benchmarks/state_bench" --benchmark_filter='KvSet|ToolsRecord/synced:0|WriteFile4K' \
      --benchmark_format=json 2>/dev/null |
    python3 -c '
import json, sys
names = {"BM_KvSet": "kv_set", "BM_ToolsRecord/synced:0": "tools_record", "BM_WriteFile4K": "write_file_4k"}
for b in json.load(sys.stdin)["benchmarks"]:
    print("strata", names[b["name"].removesuffix("/real_time")], b["items_per_second"])' >>"$RAW"
done
python3 - "$RAW" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda who, what: statistics.median(float(v) for w, k, v in rows if w == who and k == what)
print()
print("| workload | AgentFS ops/s | Strata ops/s | Strata/AgentFS | budget | verdict |")
print("|---|---|---|---|---|---|")
for what, label in [("kv_set", "kv.set"), ("tools_record", "tools.record"), ("write_file_4k", "4 KiB file write")]:
    a, s = med("agentfs", what), med("strata", what)
    print(f"| {label} | {a:,.0f} | {s:,.0f} | {s / a:.1f}x | >= 5x | {'**PASS**' if s / a >= 5 else '**FAIL**'} |")
PY
