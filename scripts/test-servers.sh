#!/usr/bin/env bash
# Starts (or stops) the servers the remote-backend tests use, once for the whole suite, on loopback:
# Ceph radosgw for S3, OpenSSH for SFTP, azurite for Azure. Usage:
#   scripts/test-servers.sh start DIR   # starts them in parallel, writes DIR/env (export lines)
#   scripts/test-servers.sh stop DIR    # stops what start started (by the PIDs it recorded)
# Each server's own script is scripts/servers/<name>.sh with the same start|stop DIR interface.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?start|stop}; dir=${2:?DIR}
SERVERS=(s3 sftp azure)
case "$cmd" in
  start)
    mkdir -p "$dir"; : > "$dir/env"
    pids=()
    for s in "${SERVERS[@]}"; do
      mkdir -p "$dir/$s"
      bash "scripts/servers/$s.sh" start "$dir/$s" >"$dir/$s.log" 2>&1 &
      pids+=("$!")
    done
    failed=0
    for i in "${!SERVERS[@]}"; do
      if ! wait "${pids[$i]}"; then
        echo "test-servers: ${SERVERS[$i]} did not start; its log:" >&2; tail -n 30 "$dir/${SERVERS[$i]}.log" >&2; failed=1
      else
        cat "$dir/${SERVERS[$i]}/env" >> "$dir/env"
      fi
    done
    exit "$failed";;
  stop)
    for s in "${SERVERS[@]}"; do [ -d "$dir/$s" ] && bash "scripts/servers/$s.sh" stop "$dir/$s" >/dev/null 2>&1 || true; done;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2;;
esac
