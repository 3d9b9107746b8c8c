#!/usr/bin/env bash
# dev-s3.sh: a throwaway single-node Ceph cluster with radosgw, an
# S3-compatible object store on 127.0.0.1, for Strata's S3 remote tests and for
# users who want a local S3 endpoint. Uses Debian 12's Ceph (16.2, pacific)
# packages: ceph-mon ceph-osd radosgw ceph-common (tools/install-deps.sh
# installs them).
#
# Usage:
#   eval "$(tools/dev-s3.sh start [DIR])"   # prints the export lines below
#   ... use $STRATA_S3_ENDPOINT with $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY
#   tools/dev-s3.sh stop "$STRATA_S3_DIR"
#   tools/dev-s3.sh rgw-stop DIR; tools/dev-s3.sh rgw-start DIR
#                                # radosgw alone: killed, then started again
#                                # on its port (the cluster keeps its data)
#
# start prints, on stdout and only on success (progress goes to stderr):
#   export STRATA_S3_ENDPOINT=http://127.0.0.1:PORT
#   export AWS_ACCESS_KEY_ID=...
#   export AWS_SECRET_ACCESS_KEY=...
#   export AWS_REGION=us-east-1
#   export STRATA_S3_DIR=DIR
# It returns once the S3 endpoint answers an anonymous GET / (2-3 s on 2
# cores); it gives up after DEV_S3_TIMEOUT seconds, 120 by default, printing
# the tail of the logs of what it was waiting for. If start fails it kills what
# it started and removes DIR (DEV_S3_KEEP_FAILED=1 keeps DIR for a post-mortem).
# AWS_REGION is the zonegroup's api_name, set to us-east-1 (SigV4 signs with
# it; a CreateBucket LocationConstraint must be absent or us-east-1).
#
# What starts (plain processes in their own session, no systemd, no mgr):
#   - one ceph-mon (mon.a) on 127.0.0.1, v2 and v1 addresses on free ports;
#   - one ceph-osd (osd.0) with the memstore object store: everything lives in
#     RAM (memstore_device_bytes, 2 GiB by default: DEV_S3_MEMSTORE_BYTES),
#     pools have size 1;
#   - one radosgw (client.rgw.a, beast frontend) on 127.0.0.1:PORT, PORT free
#     and random, or STRATA_S3_PORT from the environment;
#   - one S3 user (uid "strata") with random keys; no bucket is created.
# Authentication inside the cluster is cephx, with one keyring in DIR. radosgw
# needs no mgr; without one `ceph -s` shows no pool or usage statistics.
# Works as root or as any user; the daemons run as the user who started them.
# Ports are random free ones in 10000-31999; if another process takes one
# before the daemon binds it (two starts at once), start retries with others.
#
# Where state lives: everything is in DIR (default: a new /tmp/strata-s3.XXXXXX)
#   DIR/ceph.conf        the cluster's own config (unique fsid); pass
#                        `-c DIR/ceph.conf` to ceph, rados or radosgw-admin
#   DIR/keyring          cephx keys of mon., client.admin, osd.0, client.rgw.a
#   DIR/mon.a DIR/osd.0  daemon data;  DIR/rgw.a  radosgw data
#   DIR/run              admin sockets and Ceph's own pid files
#   DIR/pids/NAME.pid    pids this script started (what stop kills)
#   DIR/log              daemon logs (NAME.log) and their stdout/stderr (NAME.out)
# Nothing is read or written under /etc/ceph, /var/lib/ceph, /var/run/ceph or
# /var/log/ceph. Several clusters can run at once: each has its own DIR, ports
# and fsid.
#
# Known behaviour of this radosgw (16.2.15) that clients meet:
#   - path-style addressing only (http://127.0.0.1:PORT/BUCKET/KEY);
#   - PUT with If-None-Match: * gives 412 if the key exists; PUT with If-Match
#     compares the header with the ETag *without* its quotes, so the quoted
#     ETag as returned by GET/HEAD always gives 412 (If-Match: * works);
#   - curl 7.88 --aws-sigv4 "aws:amz:$AWS_REGION:s3" needs the header
#     "x-amz-content-sha256: UNSIGNED-PAYLOAD" (or the payload's SHA-256), and
#     query parameters already sorted and percent-encoded (prefix=a%2F).
#
# stop DIR kills the daemons listed in DIR/pids, waits for them to exit and
# removes DIR. It is safe to run twice, and after a start that failed half-way;
# it refuses to remove a directory that start did not create (no marker file).
set -euo pipefail

MARKER=.strata-dev-s3
TIMEOUT=${DEV_S3_TIMEOUT:-120}
MEMSTORE_BYTES=${DEV_S3_MEMSTORE_BYTES:-2147483648}

say() { echo "dev-s3: $*" >&2; }
die() { echo "dev-s3: error: $*" >&2; exit 1; }
usage() {
  echo "usage: $0 start [DIR] | stop DIR | rgw-stop DIR | rgw-start DIR" >&2
  exit 2
}

# --- process helpers -------------------------------------------------------

# alive PID: the process exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# ours PID DIR: the process is alive and was started with DIR on its command
# line (guards against a recycled pid).
ours() {
  alive "$1" || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2/ceph.conf"
}

# kill_dir DIR: kills every daemon recorded in DIR/pids and waits for it to
# exit. SIGKILL at once: the state is thrown away next, a clean shutdown only
# costs time (radosgw takes seconds, and memstore would write all the OSD's
# data to DIR first).
kill_dir() {
  local dir=$1 name pid f i left
  local -a pids=()
  for name in rgw osd mon; do
    f=$dir/pids/$name.pid
    [[ -s $f ]] || continue
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || continue
    ours "$pid" "$dir" || continue
    kill -s KILL "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  for ((i = 0; i < 100; i++)); do
    left=0
    for pid in "${pids[@]}"; do
      if alive "$pid"; then left=1; fi
    done
    ((left)) || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then say "warning: pid $pid did not exit"; fi
  done
  return 0
}

do_stop() {
  local dir=${1:-}
  [[ -n $dir ]] || usage
  if [[ ! -e $dir ]]; then
    say "$dir does not exist: nothing to stop"
    return 0
  fi
  dir=$(cd "$dir" && pwd -P)
  [[ -f $dir/$MARKER ]] || die "$dir was not made by $0 start (no $MARKER): not touching it"
  kill_dir "$dir"
  rm -rf -- "$dir"
  say "stopped, removed $dir"
}

# --- ports -----------------------------------------------------------------
# From /proc/net/tcp{,6} (no dependency on ss): fields are sl, local_address
# (HEXIP:HEXPORT), rem_address, st (0A = LISTEN), ..., inode (10th).

# port_in_use PORT: some TCP socket has PORT as its local port.
port_in_use() {
  local hex
  printf -v hex '%04X' "$1"
  awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# listening PID PORT: process PID has a socket listening on PORT.
listening() {
  local hex inode fd
  local -a inodes
  printf -v hex '%04X' "$2"
  mapfile -t inodes < <(awk -v p=":$hex" \
    'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  for inode in "${inodes[@]}"; do
    for fd in /proc/"$1"/fd/*; do
      [[ $(readlink "$fd" 2>/dev/null) == "socket:[$inode]" ]] && return 0
    done
  done
  return 1
}

TAKEN=" "
# pick_port: sets PICKED to a free port in 10000-31999 (below the kernel's
# ephemeral range and away from Ceph's 6800-7300 OSD range), not yet taken.
# Another process may still take it before our daemon binds it: start then
# retries with other ports (bind_clash).
pick_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
    [[ $TAKEN == *" $p "* ]] && continue
    port_in_use "$p" && continue
    TAKEN+="$p "
    PICKED=$p
    return 0
  done
  die "found no free port"
}

# --- start -----------------------------------------------------------------

DIR=
STARTED=0
SPAWNED=" "
FSID='' MON2='' MON1='' RGW_PORT=''
on_exit() {
  local rc=$?
  ((STARTED)) && return 0
  [[ -n $DIR && -f $DIR/$MARKER ]] || return 0
  if [[ ${DEV_S3_KEEP_FAILED:-0} == 1 ]]; then
    kill_dir "$DIR"
    say "start failed (status $rc); daemons killed, state kept in $DIR"
  else
    say "start failed (status $rc); cleaning up $DIR"
    kill_dir "$DIR"
    rm -rf -- "$DIR"
  fi
}

# spawn NAME CMD...: runs a daemon in the foreground mode of Ceph (-f) but in
# the background of this script, in its own session (so ^C at the caller's
# terminal does not reach it), with stdio off the caller's pipes.
spawn() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/pids/$name.pid"
  disown $!
  [[ $SPAWNED == *" $name "* ]] || SPAWNED+="$name "
}

DEADLINE=0
# fail_with_log LOG MSG: prints MSG and the tail of LOG, then fails.
fail_with_log() {
  say "$2"
  local f
  for f in $1; do
    [[ -s $f ]] || continue
    echo "---- tail of $f" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}
# logs NAME: the log files of daemon NAME (mon, osd or rgw).
logs() {
  local id
  case $1 in mon) id=mon.a ;; osd) id=osd.0 ;; rgw) id=client.rgw.a ;; esac
  echo "$DIR/log/$1.out $DIR/log/$id.log"
}
# check WHAT NAME...: fails if one of the daemons NAME died, or if the
# deadline passed (then shows the logs of the first NAME and the cluster log).
check() {
  local what=$1 name pid
  shift
  for name in "$@"; do
    pid=$(<"$DIR/pids/$name.pid")
    alive "$pid" || fail_with_log "$(logs "$name")" "$name exited while waiting for $what"
  done
  ((SECONDS < DEADLINE)) ||
    fail_with_log "$(logs "$1") $DIR/log/cluster.log" "timed out after ${TIMEOUT}s waiting for $what"
}

# bind_clash NAME: daemon NAME died because its port was taken meanwhile.
bind_clash() {
  local f
  for f in $(logs "$1"); do
    [[ -f $f ]] && grep -q 'Address already in use' "$f" && return 0
  done
  return 1
}
# set_aside NAME: keeps the logs of a failed try of daemon NAME as *.clash.
set_aside() {
  local f
  for f in $(logs "$1"); do
    if [[ -f $f ]]; then mv -f "$f" "$f.clash"; fi
  done
}

# wait_bound NAME PORT...: waits until daemon NAME listens on every PORT.
# Returns 1 if it died because a port was taken (the caller retries); fails if
# it died otherwise, if another daemon died, or at the deadline.
wait_bound() {
  local name=$1 pid p ok
  shift
  pid=$(<"$DIR/pids/$name.pid")
  while :; do
    ok=1
    for p in "$@"; do
      if ! listening "$pid" "$p"; then
        ok=0
        break
      fi
    done
    ((ok)) && return 0
    if ! alive "$pid"; then
      bind_clash "$name" && return 1
      fail_with_log "$(logs "$name")" "$name exited while starting"
    fi
    # shellcheck disable=SC2086 # SPAWNED is a list of words
    check "$name to listen" "$name" $SPAWNED
    sleep 0.05
  done
}

ceph_cli() {
  local left=$((DEADLINE - SECONDS))
  ((left > 0)) || left=1
  timeout "$left" ceph -c "$DIR/ceph.conf" --connect-timeout "$left" "$@"
}

# rgw_admin ARGS...: radosgw-admin on this cluster, within the deadline.
rgw_admin() {
  local left=$((DEADLINE - SECONDS))
  ((left > 0)) || left=1
  timeout "$left" radosgw-admin -c "$DIR/ceph.conf" "$@" >/dev/null 2>>"$DIR/log/cli.out" ||
    fail_with_log "$DIR/log/cli.out $(logs osd) $DIR/log/cluster.log" \
      "radosgw-admin $1 $2 failed (or timed out after ${TIMEOUT}s)"
}

randstr() { # randstr N CHARSET
  local s
  s=$(head -c 4096 /dev/urandom | LC_ALL=C tr -dc "$2" | head -c "$1") || true
  [[ ${#s} == "$1" ]] || die "could not read random bytes"
  printf '%s' "$s"
}

# write_conf: DIR/ceph.conf for FSID, MON2, MON1 and RGW_PORT.
write_conf() {
  cat >"$DIR/ceph.conf" <<EOF
# Made by tools/dev-s3.sh for a throwaway cluster; all state is in $DIR.
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]
public_network = 127.0.0.0/8
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
keyring = $DIR/keyring
run_dir = $DIR/run
pid_file = $DIR/run/\$name.pid
log_file = $DIR/log/\$name.log
mon_cluster_log_file = $DIR/log/cluster.log
mon_debug_dump_location = $DIR/log/\$name.tdump
crash_dir = $DIR/crash
mon_data = $DIR/mon.\$id
osd_data = $DIR/osd.\$id
osd_journal = $DIR/osd.\$id/journal
rgw_data = $DIR/rgw.\$id
mgr_data = $DIR/mgr.\$id
mds_data = $DIR/mds.\$id
osd_objectstore = memstore
memstore_device_bytes = $MEMSTORE_BYTES
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
# radosgw creates its pools one map change at a time: commit each at once
# rather than batching for a second (saves ~10 s at start and ~4 s at the
# first bucket).
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
# The mon creates the PGs of a pool made before the OSD was up on its next
# tick: tick every second, not every 5.
mon_tick_interval = 1

[mon]
# Fail at once on a taken port (start then retries), not after 3 tries 5 s apart.
ms_bind_retry_count = 1

[osd]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1

[client]
# An op on a pool made before the OSD was up waits for the client's next tick
# to be resent (radosgw-admin racing the OSD's boot): tick every second, not 5.
objecter_tick_interval = 1

[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_enable_usage_log = false
# Free the data of deleted or overwritten objects after 30 s rather than 2 h:
# it is held in the OSD's RAM, within memstore_device_bytes.
rgw_gc_obj_min_wait = 30
rgw_gc_processor_period = 30
EOF
}

do_start() {
  local want_port=${STRATA_S3_PORT:-} cmd
  for cmd in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl setsid timeout; do
    command -v "$cmd" >/dev/null 2>&1 ||
      die "$cmd not found: install ceph-mon ceph-osd radosgw ceph-common curl (see tools/install-deps.sh)"
  done
  SECONDS=0
  DEADLINE=$TIMEOUT

  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # DIR is set (and so cleaned up on failure) only once it is known to be ours.
  local dir=${1:-}
  if [[ -n $dir ]]; then
    if [[ -e $dir ]]; then
      [[ -d $dir && -z $(ls -A "$dir") ]] || die "$dir exists and is not an empty directory"
    fi
    [[ $dir != *[[:space:]]* ]] || die "DIR must not contain white space: $dir"
    mkdir -p "$dir"
  else
    dir=$(mktemp -d /tmp/strata-s3.XXXXXX)
  fi
  dir=$(cd "$dir" && pwd -P)
  : >"$dir/$MARKER"
  DIR=$dir
  mkdir -p "$DIR"/{run,pids,log,crash,mon.a,osd.0,rgw.a}

  if [[ -n $want_port ]]; then
    [[ $want_port =~ ^[0-9]+$ ]] || die "port must be a number: $want_port"
    port_in_use "$want_port" && die "port $want_port is in use"
    RGW_PORT=$want_port
  else
    pick_port
    RGW_PORT=$PICKED
  fi
  FSID=$(cat /proc/sys/kernel/random/uuid)
  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)

  say "state in $DIR"
  # One keyring for everybody; the mon imports every key in it at mkfs.
  local k=$DIR/keyring
  {
    ceph-authtool "$k" --create-keyring --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool "$k" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
    ceph-authtool "$k" --gen-key -n osd.0 \
      --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
    ceph-authtool "$k" --gen-key -n client.rgw.a \
      --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
  } >/dev/null
  chmod 600 "$k"

  local try
  for ((try = 1; ; try++)); do
    pick_port
    MON2=$PICKED
    pick_port
    MON1=$PICKED
    write_conf
    rm -rf "$DIR/mon.a" "$DIR/monmap"
    mkdir "$DIR/mon.a"
    monmaptool -c "$DIR/ceph.conf" --create --fsid "$FSID" --enable-all-features \
      --set-min-mon-release pacific --addv a "[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]" \
      "$DIR/monmap" >/dev/null
    ceph-mon -c "$DIR/ceph.conf" -i a --mkfs --monmap "$DIR/monmap" --keyring "$k" \
      >>"$DIR/log/mon.out" 2>&1 || fail_with_log "$(logs mon)" "ceph-mon --mkfs failed"
    spawn mon ceph-mon -c "$DIR/ceph.conf" -i a -f
    wait_bound mon "$MON2" "$MON1" && break
    ((try < 5)) || fail_with_log "$(logs mon)" "ceph-mon found its ports taken $try times"
    say "a mon port was taken meanwhile, trying other ports"
    set_aside mon
  done
  say "mon listening on 127.0.0.1:$MON2 (v2) and :$MON1 (v1), registering osd.0"

  ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >>"$DIR/log/osd.out" 2>&1 || fail_with_log "$(logs osd)" "ceph-osd --mkfs failed"
  ceph_cli osd new "$osd_uuid" 0 >/dev/null 2>>"$DIR/log/cli.out" ||
    fail_with_log "$DIR/log/cli.out $(logs mon)" "ceph osd new failed"
  spawn osd ceph-osd -c "$DIR/ceph.conf" -i 0 -f

  # Before radosgw starts (it reads its zonegroup once): name the default
  # zonegroup's region us-east-1, what S3 clients assume, so that a
  # LocationConstraint of us-east-1 is accepted and GetBucketLocation says so
  # (the first radosgw-admin call makes radosgw's pools and the default zone).
  say "osd started, making the zone and the S3 user"
  local access secret
  access=$(randstr 20 'A-Z0-9')
  secret=$(randstr 40 'A-Za-z0-9')
  rgw_admin user create --uid=strata --display-name=Strata \
    --access-key="$access" --secret-key="$secret"
  rgw_admin zonegroup modify --rgw-zonegroup=default --api-name=us-east-1

  for ((try = 1; ; try++)); do
    spawn rgw radosgw -c "$DIR/ceph.conf" -n client.rgw.a -f
    say "radosgw started, waiting for it to listen on 127.0.0.1:$RGW_PORT"
    wait_bound rgw "$RGW_PORT" && break
    [[ -z $want_port ]] || fail_with_log "$(logs rgw)" "port $want_port was taken meanwhile"
    ((try < 5)) || fail_with_log "$(logs rgw)" "radosgw found its port taken $try times"
    say "the S3 port was taken meanwhile, trying another"
    set_aside rgw
    pick_port
    RGW_PORT=$PICKED
    write_conf
  done
  local url=http://127.0.0.1:$RGW_PORT body
  while :; do
    check "the S3 endpoint" rgw osd mon
    body=$(curl -s --max-time 2 "$url/" 2>/dev/null) || body=
    [[ $body == *ListAllMyBucketsResult* || $body == *"<Error>"* ]] && break
    sleep 0.1
  done

  STARTED=1
  say "ready in ${SECONDS}s: $url"
  cat <<EOF
export STRATA_S3_ENDPOINT=$url
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
export STRATA_S3_DIR=$DIR
EOF
}

# --- radosgw alone --------------------------------------------------------
# For tests of a server that goes away: radosgw stops (SIGKILL, as a crash)
# and starts again on the same port, while the cluster keeps its data.

# rgw_pid DIR: radosgw's recorded pid if it runs, else nothing.
rgw_pid() {
  local pid
  [[ -f $1/ceph.conf && -f $1/$MARKER ]] || die "$1 holds no cluster of dev-s3.sh"
  pid=$(cat "$1/pids/rgw.pid" 2>/dev/null) || return 0
  if [[ $pid =~ ^[0-9]+$ ]] && ours "$pid" "$1"; then echo "$pid"; fi
}

do_rgw_stop() {
  DIR=$1
  local pid
  pid=$(rgw_pid "$DIR")
  [[ -n $pid ]] || { say "radosgw of $DIR is not running"; return 0; }
  kill -s KILL "$pid"
  while alive "$pid"; do sleep 0.05; done
}

do_rgw_start() {
  DIR=$1
  STARTED=1  # a failure here must not remove the cluster
  [[ -z $(rgw_pid "$DIR") ]] || { say "radosgw of $DIR is running"; return 0; }
  local port url body
  port=$(sed -n 's/^rgw_frontends = beast endpoint=127\.0\.0\.1:\([0-9]*\)$/\1/p' "$DIR/ceph.conf")
  [[ -n $port ]] || die "$DIR/ceph.conf names no radosgw port"
  DEADLINE=$((SECONDS + TIMEOUT))
  spawn rgw radosgw -c "$DIR/ceph.conf" -n client.rgw.a -f
  wait_bound rgw "$port" || fail_with_log "$(logs rgw)" "radosgw's port $port is taken"
  url=http://127.0.0.1:$port
  while :; do
    check "the S3 endpoint" rgw
    body=$(curl -s --max-time 2 "$url/" 2>/dev/null) || body=
    [[ $body == *ListAllMyBucketsResult* || $body == *"<Error>"* ]] && break
    sleep 0.1
  done
  say "radosgw ready again: $url"
}

case ${1:-} in
rgw-stop)
  (($# == 2)) || usage
  do_rgw_stop "$2"
  ;;
rgw-start)
  (($# == 2)) || usage
  do_rgw_start "$2"
  ;;
start)
  (($# <= 2)) || usage
  do_start "${2:-}"
  ;;
stop)
  (($# == 2)) || usage
  do_stop "$2"
  ;;
*) usage ;;
esac
