#!/usr/bin/env bash
# Profiles one step of the end-to-end benchmark on a fresh Strata (or
# passthrough_ll) mount: what the daemon spends its CPU on, which FUSE
# requests the kernel sends, how many fsyncs and disk bytes it costs.
# Run as root, after benchmarks/e2e/run.sh has built build-e2e/ (or it builds).
#
#   benchmarks/e2e/profile.sh STEP [strata|ptll]
#
# STEP: seqwrite (dd 1 GiB, conv=fsync) | seqread (cold dd read) |
#       create (15,000 x 4 KiB files) | tar (tar -xf /usr/include) |
#       rmrf (rm -rf of that tree) | clone (git clone of it)
# Prints: wall time; the daemon's user/system CPU, disk bytes written and
# write syscalls (from /proc/PID/stat and /proc/PID/io); FUSE requests by
# opcode with mean latency (tracepoints fuse:fuse_request_send/_end);
# fsync/fdatasync calls by process; system-wide CPU samples by process; the
# daemon's samples by the call that entered the kernel or by library, and by
# symbol (perf record -a, cpu-clock). Raw data in
# $STRATA_E2E_OUT (default build-e2e/e2e-profile).
set -euo pipefail
export LC_ALL=C
STEP=${1:?usage: profile.sh seqwrite|seqread|create|tar|rmrf|clone [strata|ptll]}
TARGET=${2:-strata}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${STRATA_E2E_BUILD:-$ROOT/build-e2e}
OUT=${STRATA_E2E_OUT:-$BUILD/e2e-profile}
BIN=$BUILD/e2e
STRATA=$BUILD/strata
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_TESTS=OFF >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
mkdir -p "$BIN" "$OUT"
[ -x "$BIN/passthrough_ll" ] || cc -O2 -o "$BIN/passthrough_ll" \
  /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c $(pkg-config --cflags --libs fuse3)
cc -O2 -o "$BIN/smallfiles" "$ROOT/benchmarks/e2e/smallfiles.c"

DISK=$(mktemp -d "${STRATA_E2E_DISK:-/var/tmp}/strata-prof.XXXXXX")
TMP=$(mktemp -d "${STRATA_E2E_TMPFS:-/dev/shm}/strata-prof.XXXXXX")
MNT=$DISK/mnt
mkdir -p "$MNT"
PID=""
cleanup() {
  set +e
  if mountpoint -q "$MNT"; then umount "$MNT"; fi
  if [ -n "$PID" ]; then
    for _ in $(seq 1 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$DISK" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_target() {
  if [ "$TARGET" = strata ]; then
    [ -f "$DISK/store.db" ] || "$STRATA" --store "$DISK/store.db" init --base empty e2e >/dev/null
    PID=$("$STRATA" --store "$DISK/store.db" mount e2e "$MNT" | sed -n 's/.*(pid \([0-9]*\)).*/\1/p')
  else
    mkdir -p "$DISK/src"
    "$BIN/passthrough_ll" -f -o source="$DISK/src" "$MNT" >/dev/null 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
  fi
}
remount_cold() {
  umount "$MNT"
  for _ in $(seq 1 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  sync; echo 3 >/proc/sys/vm/drop_caches
  mount_target
}

mount_target
case $STEP in
  seqwrite) head -c 1G /dev/urandom >"$TMP/rand1g"; CMD=(dd if="$TMP/rand1g" of="$MNT/seq" bs=1M conv=fsync status=none) ;;
  seqread) head -c 1G /dev/urandom >"$MNT/seq"; remount_cold; CMD=(dd if="$MNT/seq" of=/dev/null bs=1M status=none) ;;
  create) mkdir "$MNT/small"; CMD=("$BIN/smallfiles" create "$MNT/small" 15000 100) ;;
  tar) tar -cf "$TMP/inc.tar" -C /usr include; CMD=(tar -xf "$TMP/inc.tar" -C "$MNT") ;;
  rmrf) tar -cf "$TMP/inc.tar" -C /usr include; tar -xf "$TMP/inc.tar" -C "$MNT"; CMD=(rm -rf "$MNT/include") ;;
  clone)
    git init -q "$TMP/repo"; cp -a /usr/include/. "$TMP/repo/"; git -C "$TMP/repo" add -A
    git -C "$TMP/repo" -c user.name=p -c user.email=p@l commit -q -m p
    CMD=(git clone -q --no-hardlinks "file://$TMP/repo" "$MNT/clone") ;;
  *) echo "unknown step $STEP" >&2; exit 2 ;;
esac
sync

cpu() { awk '{print $14, $15}' "/proc/$PID/stat"; }
io() { awk '/^(write_bytes|syscw|syscr):/ {printf "%s ", $2} END {print ""}' "/proc/$PID/io"; }
read -r u0 s0 < <(cpu)
read -r cr0 cw0 wb0 < <(io)
DATA=$OUT/$STEP-$TARGET.data
t0=$EPOCHREALTIME
perf record -q -a -g -c 1 -e cpu-clock/freq=499/ -e fuse:fuse_request_send -e fuse:fuse_request_end \
  -e syscalls:sys_enter_fsync -e syscalls:sys_enter_fdatasync -o "$DATA" -- "${CMD[@]}" >/dev/null
t1=$EPOCHREALTIME
read -r u1 s1 < <(cpu)
read -r cr1 cw1 wb1 < <(io)
hz=$(getconf CLK_TCK)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
{
  echo "== $STEP on $TARGET ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "wall %.2f s (under perf)\n", b - a}'
  awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v w=$((wb1 - wb0)) -v cw=$((cw1 - cw0)) \
      -v cr=$((cr1 - cr0)) 'BEGIN {printf "daemon CPU: user %.2f s, system %.2f s; disk writes %.1f MiB; write syscalls %d, read syscalls %d\n", u / hz, s / hz, w / 1048576, cw, cr}'
  echo
  comm=$([ "$TARGET" = strata ] && echo strata || echo passthrough_ll)
  perf script -i "$DATA" -F comm,tid,time,event,ip,sym,dso,trace 2>/dev/null |
    "$PY" "$ROOT/benchmarks/e2e/profile_report.py" "$comm"
} | tee "$OUT/$STEP-$TARGET.txt"
echo "raw: $DATA"
