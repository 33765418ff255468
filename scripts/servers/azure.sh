#!/usr/bin/env bash
# The Azure Blob test server: azurite's blob service alone on a free loopback port, for
# test/remote/azure.test.ts. Usage (the interface of scripts/test-servers.sh):
#   scripts/servers/azure.sh start DIR   # data in DIR/data, PID in DIR/pid, export lines in DIR/env
#   scripts/servers/azure.sh stop DIR    # stops exactly the process start recorded, by its PID
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?DIR}
# DIR as the caller meant it, before the cd to the repo root.
case "$cmd" in start) mkdir -p "$dir";; esac
[ -d "$dir" ] && dir=$(cd "$dir" && pwd)
cd "$(dirname "$0")/../.."
# The emulator's published account and key: not a secret, every azurite install answers to them.
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

case "$cmd" in
  start)
    mkdir -p "$dir/data"
    [ -x node_modules/.bin/azurite-blob ] || { echo "azure.sh: node_modules/.bin/azurite-blob is missing (npm ci)" >&2; exit 1; }
    # A port the kernel just handed out and released; another process may take it before azurite
    # binds, so a start that does not come up is tried again on a new port.
    for try in 1 2 3; do
      port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')
      # The SDK speaks a newer x-ms-version than azurite 3.35 knows; the calls fragfs makes are the
      # same in both, hence --skipApiVersionCheck. The debug log grows by ~250 MB per test run, so
      # only FRAGFS_AZURITE_DEBUG=1 asks for it. A keep-alive of 30 s, not 5, so a loaded machine's
      # late timers do not race the backend's idle-socket limit (3 s) into "socket hang up".
      # exec: the PID recorded is azurite's own node.
      debug=()
      [ -n "${FRAGFS_AZURITE_DEBUG:-}" ] && debug=(--debug "$dir/debug.log")
      bash -c 'exec "$@"' azurite node node_modules/azurite/dist/src/blob/main.js \
        --blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data" \
        --blobKeepAliveTimeout 30 --disableTelemetry --skipApiVersionCheck --silent "${debug[@]}" >"$dir/azurite.log" 2>&1 </dev/null &
      pid=$!
      echo "$pid" > "$dir/pid"
      up=0
      for _ in $(seq 1 100); do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        # Any HTTP answer (400 for a request without an account) means the blob service listens.
        if node -e 'require("http").get("http://127.0.0.1:'"$port"'/devstoreaccount1?comp=list",r=>process.exit(r.statusCode>0?0:1)).on("error",()=>process.exit(1))' 2>/dev/null; then
          up=1; break
        fi
        sleep 0.1
      done
      if [ "$up" = 1 ]; then break; fi
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
      echo "azure.sh: azurite did not answer on port $port (try $try); its log:" >&2
      tail -n 20 "$dir/azurite.log" >&2 || true
    done
    [ "${up:-0}" = 1 ] || exit 1
    cat > "$dir/env" <<EOF
export FRAGFS_TEST_AZURE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$KEY;BlobEndpoint=http://127.0.0.1:$port/$ACCOUNT;'
export FRAGFS_TEST_AZURE_ACCOUNT=$ACCOUNT
EOF
    echo "azurite blob service on 127.0.0.1:$port (pid $pid)";;
  stop)
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
      fi
      rm -f "$dir/pid"
    fi;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2;;
esac
