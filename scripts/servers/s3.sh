#!/usr/bin/env bash
# The S3 test server: a one-node Ceph cluster (one mon, one memstore OSD, one mgr) and radosgw, all on
# 127.0.0.1 at ports free when it starts, so it runs beside any other Ceph on the machine. Usage:
#   scripts/servers/s3.sh start DIR   # writes DIR/env (FRAGFS_TEST_S3_*) and DIR/pids
#   scripts/servers/s3.sh stop DIR    # kills the PIDs in DIR/pids, and nothing else
set -euo pipefail
cmd=${1:?start|stop}; D=${2:?DIR}

# A zombie is dead: it waits only for PID 1 (its parent once start has exited) to reap it.
alive() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }

stop() {
  [ -f "$D/pids" ] || return 0
  local pids="" p
  # Only what is still one of our daemons: a PID left from before a reboot may be anyone's now.
  for p in $(cat "$D/pids"); do
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in ceph-mon|ceph-osd|ceph-mgr|radosgw) pids="$pids $p";; esac
  done
  # shellcheck disable=SC2086
  [ -n "$pids" ] && kill $pids 2>/dev/null || true
  # A second for a clean exit, then SIGKILL: the OSD takes ~5 s to stop, for data that is thrown away.
  for _ in $(seq 1 10); do
    local left=0
    for p in $pids; do alive "$p" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  for p in $pids; do alive "$p" && kill -9 "$p" 2>/dev/null; done
  rm -f "$D/pids"
}

# N ports nothing listens on now, distinct: the kernel's choice, held together until all are known,
# so two clusters starting at once do not pick the same.
free_ports() {
  node -e 'const net=require("net");const ss=[];let n=+process.argv[1];
    for(let i=0;i<n;i++){const s=net.createServer().listen(0,"127.0.0.1",()=>{if(--n===0){console.log(ss.map(x=>x.address().port).join(" "));ss.forEach(x=>x.close())}});ss.push(s)}' "$1"
}

# Fails with the daemon's log when it died: the usual cause of a start that never gets ready.
alive_or_die() {
  alive "$1" && return 0
  echo "s3.sh: $2 exited; the end of its log:" >&2; tail -n 20 "$D/log/$2.log" >&2 || true
  stop; exit 1
}

# Every daemon runs in the foreground (-f) under this script's `&`, so $! is its own PID: no pid file
# to wait for, and `stop` kills exactly what `start` made even if another cluster runs here.
daemon() { # NAME COMMAND...
  local name=$1; shift
  "$@" -f -c "$CEPH_CONF" </dev/null >>"$D/log/$name.out" 2>&1 &
  echo "$!" >> "$D/pids"
  eval "pid_$name=$!"
}

case "$cmd" in
  stop) stop; exit 0;;
  start) ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2;;
esac

started=$(date +%s%N)
[ -f "$D/pids" ] && stop
# A start that fails part-way leaves nothing running.
trap 'rc=$?; [ "$rc" = 0 ] || stop; exit "$rc"' EXIT
# Only what a previous start made: DIR itself may be the caller's (scripts/test-servers.sh makes it).
mkdir -p "$D"; rm -rf "${D:?}"/{log,mon,osd,mgr,rgw,run,ceph.conf,monmap,env}
mkdir -p "$D"/{log,mon,osd,mgr,rgw,run}
D=$(cd "$D" && pwd)
export CEPH_CONF=$D/ceph.conf
read -r MON_V2 MON_V1 RGW < <(free_ports 3)
MON_ADDRS="[v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]"
FSID=$(uuidgen)
ACCESS_KEY=FRAGFS$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
SECRET_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')

# Gotchas kept from the recipe (shared/recipes/ceph-radosgw.sh): no cephx, pools of one replica and
# chooseleaf type 0 for one OSD, crc mode to the mon. Added: every path under DIR (no /var/lib/ceph, no
# /etc/ceph), small pools without the autoscaler, and a short paxos interval: radosgw's first start
# makes its pools one mon command at a time, each waiting out the interval (1 s by default, 15 s in
# all; 3 s with this). The OSD puts itself in the CRUSH map when it boots.
cat > "$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon host = $MON_ADDRS
public addr = 127.0.0.1
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
osd crush chooseleaf type = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon allow pool delete = true
paxos propose interval = 0.05
paxos min wait = 0.01
mon warn on pool no redundancy = false
[mon.a]
mon data = $D/mon
mon data avail crit = 0
[osd.0]
osd data = $D/osd
osd objectstore = memstore
memstore device bytes = 4294967296
[mgr.x]
mgr data = $D/mgr
[client.rgw.r]
# tcp_nodelay: beast writes a response's headers and body apart; with Nagle on, the body waits for
# the client's delayed ACK (40 ms on Linux), and a small GET took 50 ms instead of 5-10.
rgw data = $D/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW tcp_nodelay=1
CONF

monmaptool --create --fsid "$FSID" --addv a "$MON_ADDRS" "$D/monmap" >/dev/null
ceph-mon -c "$CEPH_CONF" --id a --mkfs --monmap "$D/monmap" --keyring /dev/null
touch "$D/mon/keyring"
daemon mon ceph-mon --id a
ceph -c "$CEPH_CONF" --connect-timeout 20 osd create >/dev/null
ceph-osd -c "$CEPH_CONF" --id 0 --mkfs >"$D/log/osd-mkfs.out" 2>&1
daemon osd ceph-osd --id 0
daemon mgr ceph-mgr --id x
daemon rgw radosgw -n client.rgw.r

# radosgw answers once it has made its pools, which needs the OSD up.
ready=0
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  alive_or_die "$pid_mon" mon.a; alive_or_die "$pid_osd" osd.0; alive_or_die "$pid_rgw" client.rgw.r
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$RGW/"; then ready=1; break; fi
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "s3.sh: radosgw did not answer on 127.0.0.1:$RGW in 60 s" >&2; stop; exit 1; }
radosgw-admin -c "$CEPH_CONF" -n client.admin user create --uid fragfs --display-name fragfs \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null

cat > "$D/env" <<ENV
export FRAGFS_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW
export FRAGFS_TEST_S3_ACCESS_KEY=$ACCESS_KEY
export FRAGFS_TEST_S3_SECRET_KEY=$SECRET_KEY
ENV
ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "s3.sh: radosgw ready on 127.0.0.1:$RGW in $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
