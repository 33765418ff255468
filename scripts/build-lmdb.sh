#!/usr/bin/env bash
# Builds lmdb-js's addon from its own sources with one fix from LMDB upstream (ITS#9496, LMDB
# 0.9.29): every process that opened an environment wrote the shared transaction id, so opening one
# that another process was committing to could roll that commit back (a mount's live state read by
# gc, stats or verify; fragments.lmdb opened by any command beside a mount). lmdb-js 3.5.6 still has
# the line. The build lands in node_modules/lmdb/build/Release, which lmdb-js loads before its
# prebuilt package. Offline: node-gyp from npm, Node's own headers, g++ and make.
# test/store/lmdb-reopen.test.ts fails without it.
set -euo pipefail
cd "$(dirname "$0")/.."

LMDB=node_modules/lmdb
MDB_C=$LMDB/dependencies/lmdb/libraries/liblmdb/mdb.c
MARK='fragfs: ITS#9496'
[ -f "$MDB_C" ] || { echo "build-lmdb: $MDB_C is missing (run npm install first)" >&2; exit 1; }

if ! grep -q "$MARK" "$MDB_C"; then
  python3 - "$MDB_C" "$MARK" <<'EOF'
import sys
path, mark = sys.argv[1], sys.argv[2]
src = open(path).read()
old = "\tif (env->me_txns)\n\t\tenv->me_txns->mti_txnid = meta.mm_txnid;\n\n#if MDB_DEBUG"
if src.count(old) != 1:
    sys.exit(f"build-lmdb: {path} is not the mdb.c this patch was written for (lmdb-js 3.5.6)")
new = (f"\t/* {mark}: only the first opener, under the exclusive lock, sets the shared txnid\n"
       "\t * (mdb_env_share_locks); a later opener writing it here can roll back another process's commit. */\n\n#if MDB_DEBUG")
open(path, 'w').write(src.replace(old, new))
EOF
  rm -rf "$LMDB/build"
fi

if [ -f "$LMDB/build/Release/lmdb.node" ] && [ "$LMDB/build/Release/lmdb.node" -nt "$MDB_C" ]; then
  exit 0
fi
NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP" ] || NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
NODE_DIR="$(dirname "$(readlink -f "$(command -v node)")")/.."
echo "build-lmdb: building lmdb-js with the ITS#9496 fix (about 30 s)" >&2
(cd "$LMDB" && node "$NODE_GYP" rebuild --nodedir="$NODE_DIR" >/tmp/fragfs-build-lmdb.log 2>&1) || {
  echo "build-lmdb: the build failed; see /tmp/fragfs-build-lmdb.log" >&2
  exit 1
}
