#!/usr/bin/env bash
# End-to-end benchmark: the same workloads on tmpfs, on the local disk (ext4),
# on libfuse's passthrough_ll over the local disk, and on a Strata mount whose
# store is on the local disk. Run as root (it mounts and drops caches).
#
#   benchmarks/e2e/run.sh              # everything, 3 repetitions (~12 min on 2 cores)
#
# Every repetition runs every workload on all four targets in turn (the order
# of the targets rotates from one repetition to the next), so the machine's
# background load falls on all of them alike; the table shows medians of the
# repetitions and ratios of those medians, and the budget verdicts compare
# Strata with passthrough_ll from the same run.
#
# Workloads (each starts from a fresh, empty target: new directory, new
# passthrough_ll mount, new Strata store and mount):
#   seq     1 GiB of random bytes (pre-generated in tmpfs) written with
#           `dd bs=1M conv=fsync`; read back cold and warm with `dd bs=1M`;
#           4 KiB random preads over it, warm then cold (randread.c)
#   small   15,000 files of 4 KiB in 100 directories (smallfiles.c): create,
#           stat and read warm, stat and read cold, delete
#   tar     `tar -xf` of a tarball of /usr/include (in tmpfs), then `rm -rf`
#           of the tree (after a sync)
#   git     `git clone --no-hardlinks file://...` of a local repository
#           holding /usr/include (in tmpfs)
# "Cold" means: sync, `echo 3 > /proc/sys/vm/drop_caches`, and for the two
# FUSE targets also unmount (the daemon exits, taking its caches with it) and
# mount again. tmpfs cannot be made cold: its "cold" figures are warm ones.
#
# Environment:
#   STRATA_E2E_REPS       repetitions (default 3)
#   STRATA_E2E_WORKLOADS  subset, e.g. "seq small" (default: seq small tar git)
#   STRATA_E2E_TARGETS    subset of: tmpfs ext4 ptll strata (default: all)
#   STRATA_E2E_DISK       parent of the on-disk work directory (default
#                         /var/tmp; must not be tmpfs)
#   STRATA_E2E_TMPFS      parent of the tmpfs work directory (default /dev/shm)
#   STRATA_E2E_RANDREADS  warm random reads per run (default 20000)
#   STRATA_E2E_COLDREADS  cold random reads per run (default 5000)
#   STRATA_E2E_BUILD      build directory (default <repo>/build-e2e)
#   STRATA_E2E_OUT        results directory (default $BUILD/e2e-results)
#   STRATA_E2E_KEEP=1     keep the work directories (default: removed)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/benchmarks/e2e
BUILD=${STRATA_E2E_BUILD:-$ROOT/build-e2e}
OUT=${STRATA_E2E_OUT:-$BUILD/e2e-results}
REPS=${STRATA_E2E_REPS:-3}
WORKLOADS=(${STRATA_E2E_WORKLOADS:-seq small tar git})
TARGETS=(${STRATA_E2E_TARGETS:-tmpfs ext4 ptll strata})
DISK_BASE=${STRATA_E2E_DISK:-/var/tmp}
TMPFS_BASE=${STRATA_E2E_TMPFS:-/dev/shm}
RANDREADS=${STRATA_E2E_RANDREADS:-20000}
COLDREADS=${STRATA_E2E_COLDREADS:-5000}
NFILES=15000
NDIRS=100

die() { echo "e2e: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (mounts FUSE file systems and drops the page cache)"
[ -w /proc/sys/vm/drop_caches ] || die "/proc/sys/vm/drop_caches is not writable"
for tool in cc pkg-config dd tar git mountpoint; do
  command -v "$tool" >/dev/null || die "$tool is missing (tools/install-deps.sh installs it)"
done
PTLL_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
[ -f "$PTLL_SRC" ] || die "$PTLL_SRC missing (apt-get install libfuse3-dev)"

# ---------------------------------------------------------------- build
log "building strata (Release) and the helpers in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_TESTS=OFF >/dev/null
ninja -C "$BUILD" -j2 strata_cli >/dev/null
STRATA=$BUILD/strata
BIN=$BUILD/e2e
mkdir -p "$BIN" "$OUT"
# passthrough_ll is compiled from Debian's example source, never copied here.
cc -O2 -Wall -o "$BIN/passthrough_ll" "$PTLL_SRC" $(pkg-config --cflags --libs fuse3)
cc -O2 -Wall -o "$BIN/smallfiles" "$HERE/smallfiles.c"
cc -O2 -Wall -o "$BIN/randread" "$HERE/randread.c"

# ---------------------------------------------------------------- work dirs
DISK=$(mktemp -d "$DISK_BASE/strata-e2e.XXXXXX")
TMP=$(mktemp -d "$TMPFS_BASE/strata-e2e.XXXXXX")
PTLL_PID=""
STRATA_PID=""

wait_gone() {  # pid: waits up to 120 s for a process (not our child) to exit
  local i
  for i in $(seq 1 1200); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

cleanup() {
  set +e
  if [ -n "$PTLL_PID" ]; then
    mountpoint -q "$DISK/ptll-mnt" && umount "$DISK/ptll-mnt"
    wait_gone "$PTLL_PID" || kill "$PTLL_PID"
  fi
  if [ -n "$STRATA_PID" ]; then
    mountpoint -q "$DISK/strata-mnt" && "$STRATA" umount "$DISK/strata-mnt"
    wait_gone "$STRATA_PID" || kill "$STRATA_PID"
  fi
  # Anything still mounted under our directories (an interrupted mount).
  for m in "$DISK/ptll-mnt" "$DISK/strata-mnt"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m"
  done
  if [ "${STRATA_E2E_KEEP:-0}" != 1 ]; then
    rm -rf "$DISK" "$TMP"
  else
    echo "e2e: kept $DISK and $TMP" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

disk_fs=$(df -T "$DISK" | awk 'NR==2 {print $2 " on " $1}')
tmpfs_fs=$(df -T "$TMP" | awk 'NR==2 {print $2}')
case "$disk_fs" in tmpfs*) die "$DISK is on tmpfs; set STRATA_E2E_DISK to a directory on disk" ;; esac
[ "$tmpfs_fs" = tmpfs ] || die "$TMP is not tmpfs ($tmpfs_fs); set STRATA_E2E_TMPFS"

# ---------------------------------------------------------------- inputs (tmpfs)
IN=$TMP/in
mkdir -p "$IN"
log "generating inputs in $IN"
head -c 1G /dev/urandom >"$IN/rand1g"
tar -cf "$IN/include.tar" -C /usr include
TAR_ENTRIES=$(tar -tf "$IN/include.tar" | wc -l)
TAR_MB=$(du -sm /usr/include | cut -f1)
git init -q "$IN/repo"
cp -a /usr/include/. "$IN/repo/"
git -C "$IN/repo" add -A
git -C "$IN/repo" -c user.name=e2e -c user.email=e2e@localhost commit -q -m include
REPO_FILES=$(git -C "$IN/repo" ls-files | wc -l)

{
  echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
  echo "host:      $(nproc) CPUs ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
  echo "disk dir:  $DISK ($disk_fs)"
  echo "tmpfs dir: $TMP"
  echo "libfuse:   $(pkg-config --modversion fuse3) (passthrough_ll with its defaults: cache=auto, timeout 1 s, no writeback cache)"
  echo "commit:    $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
       "$(git -C "$ROOT" diff --quiet HEAD -- src fuse tools include 2>/dev/null || echo '(with local changes in src/fuse/tools/include)')"
  echo "reps:      $REPS; workloads: ${WORKLOADS[*]}; targets: ${TARGETS[*]}"
  echo "inputs:    1 GiB /dev/urandom; /usr/include tarball $TAR_ENTRIES entries, $TAR_MB MB; git repo $REPO_FILES files"
} | tee "$OUT/machine.txt" >&2
RAW=$OUT/raw.tsv
printf 'rep\tmetric\ttarget\tseconds\n' >"$RAW"

# ---------------------------------------------------------------- targets
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

ptll_mount() {
  "$BIN/passthrough_ll" -f -o source="$DISK/ptll-src" "$DISK/ptll-mnt" >>"$OUT/passthrough_ll.log" 2>&1 &
  PTLL_PID=$!
  local i
  for i in $(seq 1 100); do
    mountpoint -q "$DISK/ptll-mnt" && return 0
    sleep 0.05
  done
  die "passthrough_ll did not mount (see $OUT/passthrough_ll.log)"
}
ptll_umount() {
  umount "$DISK/ptll-mnt"
  wait "$PTLL_PID" 2>/dev/null || true
  PTLL_PID=""
}
strata_mount() {
  local msg
  msg=$("$STRATA" --store "$DISK/strata/store.db" mount e2e "$DISK/strata-mnt")
  STRATA_PID=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' <<<"$msg")
  [ -n "$STRATA_PID" ] || die "strata mount: $msg"
}
strata_umount() {
  "$STRATA" umount "$DISK/strata-mnt"
  # The daemon commits, syncs and closes the store after the unmount.
  wait_gone "$STRATA_PID" || die "the strata daemon did not exit"
  STRATA_PID=""
}

# target_up T: a fresh empty target; sets TDIR, where the workload runs.
target_up() {
  case $1 in
    tmpfs) rm -rf "$TMP/t"; mkdir "$TMP/t"; TDIR=$TMP/t ;;
    ext4) rm -rf "$DISK/ext4"; mkdir "$DISK/ext4"; TDIR=$DISK/ext4 ;;
    ptll)
      rm -rf "$DISK/ptll-src"; mkdir -p "$DISK/ptll-src" "$DISK/ptll-mnt"
      ptll_mount; TDIR=$DISK/ptll-mnt ;;
    strata)
      rm -rf "$DISK/strata"; mkdir -p "$DISK/strata" "$DISK/strata-mnt"
      "$STRATA" --store "$DISK/strata/store.db" init --base empty e2e >/dev/null
      strata_mount; TDIR=$DISK/strata-mnt ;;
  esac
  sync
}
# target_cold T: empties every cache between the workload and the disk.
target_cold() {
  case $1 in
    tmpfs) ;;
    ext4) drop_caches ;;
    ptll) ptll_umount; drop_caches; ptll_mount ;;
    strata) strata_umount; drop_caches; strata_mount ;;
  esac
}
target_down() {
  case $1 in
    tmpfs) rm -rf "$TMP/t" ;;
    ext4) rm -rf "$DISK/ext4" ;;
    ptll) ptll_umount; rm -rf "$DISK/ptll-src" ;;
    strata) strata_umount; rm -rf "$DISK/strata" ;;
  esac
}

# ---------------------------------------------------------------- workloads
REP=0
record() { printf '%s\t%s\t%s\t%s\n' "$REP" "$1" "$2" "$3" >>"$RAW"; }
# timed METRIC TARGET CMD...: wall time of CMD
timed() {
  local metric=$1 target=$2 t0 t1
  shift 2
  t0=$EPOCHREALTIME
  "$@"
  t1=$EPOCHREALTIME
  record "$metric" "$target" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')"
}
# self METRIC TARGET CMD...: CMD prints its own elapsed seconds
self() {
  local metric=$1 target=$2
  shift 2
  record "$metric" "$target" "$("$@")"
}

wl_seq() {
  local t=$1
  target_up "$t"
  timed seq_write "$t" dd if="$IN/rand1g" of="$TDIR/seq" bs=1M conv=fsync status=none
  target_cold "$t"
  timed seq_read_cold "$t" dd if="$TDIR/seq" of=/dev/null bs=1M status=none
  timed seq_read_warm "$t" dd if="$TDIR/seq" of=/dev/null bs=1M status=none
  if [ "$REP" = 1 ]; then cmp "$IN/rand1g" "$TDIR/seq" || die "$t: data read back differs"; fi
  self rand_read_warm "$t" "$BIN/randread" "$TDIR/seq" "$RANDREADS" 7
  target_cold "$t"
  self rand_read_cold "$t" "$BIN/randread" "$TDIR/seq" "$COLDREADS" 11
  target_down "$t"
}

wl_small() {
  local t=$1
  target_up "$t"
  mkdir "$TDIR/small"
  self small_create "$t" "$BIN/smallfiles" create "$TDIR/small" $NFILES $NDIRS
  sync
  self small_stat_warm "$t" "$BIN/smallfiles" stat "$TDIR/small" $NFILES $NDIRS
  self small_read_warm "$t" "$BIN/smallfiles" read "$TDIR/small" $NFILES $NDIRS
  target_cold "$t"
  self small_stat_cold "$t" "$BIN/smallfiles" stat "$TDIR/small" $NFILES $NDIRS
  self small_read_cold "$t" "$BIN/smallfiles" read "$TDIR/small" $NFILES $NDIRS
  self small_delete "$t" "$BIN/smallfiles" delete "$TDIR/small" $NFILES $NDIRS
  target_down "$t"
}

wl_tar() {
  local t=$1
  target_up "$t"
  timed tar_x "$t" tar -xf "$IN/include.tar" -C "$TDIR"
  sync
  timed rm_rf "$t" rm -rf "$TDIR/include"
  target_down "$t"
}

wl_git() {
  local t=$1
  target_up "$t"
  timed git_clone "$t" git clone -q --no-hardlinks "file://$IN/repo" "$TDIR/clone"
  if [ "$REP" = 1 ]; then
    [ -z "$(git -C "$TDIR/clone" status --porcelain)" ] || die "$t: the clone is not clean"
  fi
  target_down "$t"
}

start=$(date +%s)
for REP in $(seq 1 "$REPS"); do
  n=${#TARGETS[@]}
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${TARGETS[$(((i + REP - 1) % n))]}"); done
  for w in "${WORKLOADS[@]}"; do
    for t in "${order[@]}"; do
      log "rep $REP/$REPS: $w on $t"
      "wl_$w" "$t"
    done
  done
done
log "measurements took $(($(date +%s) - start)) s"

# ---------------------------------------------------------------- summary
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" "$HERE/summary.py" "$OUT" "$RANDREADS" "$COLDREADS" "$NFILES" | tee "$OUT/summary.md"
echo
echo "raw results: $RAW"
