#!/usr/bin/env bash
# Resident memory of the mount daemon (`strata mount`) under two loads, each
# in a fresh daemon:
#   bigfile: one file of BIG_GIB GiB (default 10) of incompressible data
#            (splitmix64), written in 1 MiB writes, then fsync'd;
#   files:   NFILES small files (default 1,000,000; 64..4096 random bytes
#            each) in directories of PER_DIR (default 1,000).
# The daemon's VmRSS and VmHWM (/proc/PID/status) are sampled every 0.5 s.
# For each phase it prints the time and rate, the peak (VmHWM, the unmount
# included), RSS at the end of warm-up (the first fifth of the load), the
# highest RSS in the first and second halves of the rest and at the end, and
# "flat after warm-up" if the second half's highest is within 5% (+16 MiB)
# of the first half's. Samples stay in $DIR/*.rss with KEEP=1 (seconds,
# RSS KiB, HWM KiB, progress, 1 while loading).
#
# Environment: STRATA_BENCH_BUILD (default <repo>/build-bench),
#              STRATA_BENCH_DIR (default /tmp; needs BIG_GIB + ~3 GiB free),
#              BIG_GIB, NFILES, PER_DIR, PHASES ("bigfile files"), KEEP=1
#              to keep the store.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${STRATA_BENCH_BUILD:-$ROOT/build-bench}
BIG_GIB=${BIG_GIB:-10}
NFILES=${NFILES:-1000000}
PER_DIR=${PER_DIR:-1000}
PHASES=${PHASES:-bigfile files}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
S="$BUILD/strata"
FILL="$BUILD/bench-fill"
cc -O2 -o "$FILL" "$ROOT/benchmarks/fill.c"

DIR=$(mktemp -d "${STRATA_BENCH_DIR:-/tmp}/strata-memory.XXXXXX")
export STRATA_STORE="$DIR/store.db"
MNT="$DIR/mnt"
mkdir -p "$MNT"
SAMPLER=""
cleanup() {
  [[ -n "$SAMPLER" ]] && kill "$SAMPLER" 2>/dev/null || true
  "$S" umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

echo "store: $STRATA_STORE ($(df -h --output=avail "$DIR" | tail -1 | tr -d ' ') free)"
"$S" init --base empty mem >/dev/null

# mount_daemon: mounts the session and sets PID to the daemon's pid.
mount_daemon() {
  local out
  out=$("$S" mount mem "$MNT")
  PID=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' <<<"$out")
  [[ -n "$PID" ]] || { echo "no daemon pid in: $out" >&2; exit 1; }
}

# sample FILE PROGRESS_FILE: a line every 0.5 s while the daemon lives:
# seconds, VmRSS KiB, VmHWM KiB, progress, 1 while the load runs (0 during
# the unmount).
sample() {
  local t0=$EPOCHREALTIME
  while kill -0 "$PID" 2>/dev/null; do
    local rss hwm prog
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
    prog=$(tail -1 "$2" 2>/dev/null | awk '$1 == "progress" {print $2}')
    local loading=0
    [[ -e "$DIR/loading" ]] && loading=1
    awk -v a="$t0" -v b="$EPOCHREALTIME" -v r="${rss:-0}" -v h="${hwm:-0}" -v p="${prog:-0}" \
      -v l="$loading" 'BEGIN {printf "%.1f %d %d %s %d\n", b - a, r, h, p, l}' >>"$1"
    sleep 0.5
  done
}

# report NAME SAMPLES SECONDS RATE: over the samples taken while the load
# ran, warm-up is the first fifth; the rest is split in halves, and RSS is
# "flat" if the second half's highest sample is within 5% (+16 MiB) of the
# first half's.
report() {
  awk -v name="$1" -v secs="$3" -v rate="$4" '
    { h = ($3 > h ? $3 : h) }
    $5 == 1 { n++; r[n] = $2 }
    END {
      w = int(n / 5); if (w < 1) w = 1
      mid = int((w + n) / 2)
      a = 0; b = 0
      for (i = w; i <= n; i++) { if (i <= mid) { if (r[i] > a) a = r[i] } else if (r[i] > b) b = r[i] }
      verdict = (b <= a * 1.05 + 16384) ? "flat after warm-up" : sprintf("still rising (+%.0f MiB in the second half)", (b - a) / 1024)
      printf "%-8s %s in %.0f s; daemon peak RSS (VmHWM) %.0f MiB; RSS at end of warm-up %.0f MiB, " \
             "highest in first half %.0f MiB, in second half %.0f MiB, at end %.0f MiB: %s\n",
             name, rate, secs, h / 1024, r[w] / 1024, a / 1024, b / 1024, r[n] / 1024, verdict
    }' "$2"
}

for phase in $PHASES; do
  mount_daemon
  echo "[$phase] daemon pid $PID; RSS at start $(awk '/^VmRSS/ {print $2}' /proc/$PID/status) KiB"
  LOG="$DIR/$phase.log"
  SAMPLES="$DIR/$phase.rss"
  : >"$LOG"
  sample "$SAMPLES" "$LOG" &
  SAMPLER=$!
  touch "$DIR/loading"
  t0=$EPOCHREALTIME
  if [[ "$phase" == bigfile ]]; then
    "$FILL" bigfile "$MNT/big" $((BIG_GIB << 30)) | tee -a "$LOG"
  else
    mkdir -p "$MNT/small"
    "$FILL" files "$MNT/small" "$NFILES" "$PER_DIR" | tee -a "$LOG"
    sync -f "$MNT/small"  # syncfs + the daemon's durable commit
  fi
  t1=$EPOCHREALTIME
  rm -f "$DIR/loading"
  "$S" umount "$MNT"
  t2=$EPOCHREALTIME
  wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=""
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  if [[ "$phase" == bigfile ]]; then
    rate=$(awk -v s="$secs" -v g="$BIG_GIB" 'BEGIN {printf "%d GiB at %.0f MiB/s", g, g * 1024 / s}')
  else
    rate=$(awk -v s="$secs" -v n="$NFILES" 'BEGIN {printf "%d files at %.0f files/s", n, n / s}')
  fi
  report "$phase" "$SAMPLES" "$secs" "$rate"
  awk -v a="$t1" -v b="$t2" 'BEGIN {printf "         umount (final flush, checkpoint) %.1f s\n", b - a}'
done
echo "store file: $(du -h "$STRATA_STORE" | cut -f1); samples in $DIR (KEEP=1 keeps them)"
