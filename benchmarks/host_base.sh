#!/usr/bin/env bash
# The host base's cost up front, and how the store grows with use: on a new
# store, the first `strata init` (a session on the host base), a second one
# (which checks that the host is unchanged), a Python import inside the
# session, then `apt-get install` of one package (PKG, default tree) inside
# it, from the network. Prints each step's time and the store file's size,
# and checks that the installed program runs and fsck is clean.
# REPS (default 3) full runs; each prints its own table.
#
# Environment: STRATA (a strata binary to measure, e.g. one built from an
#              older commit; default: build this tree in STRATA_BENCH_BUILD,
#              default <repo>/build-bench), STRATA_BENCH_DIR (default /tmp),
#              REPS, PKG.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${STRATA:-}" ]]; then
  BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" -j2 strata_cli >/dev/null
  STRATA="$BUILD/strata"
fi
PKG=${PKG:-tree}
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "install ok installed"; then
  echo "host_base.sh: $PKG is installed on the host; pick another PKG" >&2
  exit 2
fi
DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-host.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
S=("$STRATA" --store "$DIR/store.db")
# The store file's size once everything is in it: a run's daemon exits
# after the run, and the last process to close the store checkpoints its
# WAL into the file and removes it.
mib() {
  for _ in $(seq 100); do
    [[ -e "$DIR/store.db-wal" ]] || break
    "${S[@]}" sessions >/dev/null
    sleep 0.1
  done
  awk -v b="$(stat -c %s "$DIR/store.db")" 'BEGIN {printf "%.2f", b / 1048576}'
}
# Runs the command quietly and prints its wall time in seconds.
timed() {
  local t0=$EPOCHREALTIME
  "$@" >"$DIR/out" 2>&1 || { cat "$DIR/out" >&2; return 1; }
  awk -v t0="$t0" -v t1="$EPOCHREALTIME" 'BEGIN {printf "%.3f", t1 - t0}'
}
echo "binary: $STRATA ($("$STRATA" --version 2>/dev/null || echo unknown version))"
for rep in $(seq 1 "${REPS:-3}"); do
  rm -f "$DIR"/store.db*
  echo "run $rep (commit $(git -C "$ROOT" rev-parse --short HEAD)):"
  echo "| step | time (s) | store file (MiB) |"
  echo "|---|---|---|"
  t=$(timed "${S[@]}" init work); echo "| first init (new store) | $t | $(mib) |"
  t=$(timed "${S[@]}" init other); echo "| second init | $t | $(mib) |"
  t=$(timed "${S[@]}" run work -- python3 -c 'import json, sqlite3, email.parser, asyncio')
  echo "| python3 importing json, sqlite3, email, asyncio | $t | $(mib) |"
  t=$(timed "${S[@]}" run --net host work -- \
        apt-get install -y --no-install-recommends "$PKG")
  echo "| apt-get install $PKG | $t | $(mib) |"
  "${S[@]}" run work -- "$PKG" --version >/dev/null
  "${S[@]}" fsck >/dev/null
done
