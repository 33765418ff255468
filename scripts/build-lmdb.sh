#!/usr/bin/env bash
# Builds lmdb-js's addon from its own sources with two fixes from LMDB upstream that lmdb-js 3.5.6
# lacks, both about several processes opening one environment (a mount's live state read by gc,
# stats or verify; fragments.lmdb opened by any command beside a mount):
# - ITS#9496 (LMDB 0.9.29): every process that opened an environment wrote the shared transaction
#   id, so opening one that another process was committing to could roll that commit back.
# - ITS#10095 (LMDB 0.9.32): the last process to close an environment destroyed the robust mutexes
#   in its lock file while another could be waiting to open it; that one then failed every
#   transaction with EINVAL ("Invalid argument").
# The build lands in node_modules/lmdb/build/Release, which lmdb-js loads before its prebuilt
# package. Run after the TypeScript build. Offline: node-gyp from npm, Node's own headers, g++ and make.
# test/store/lmdb-reopen.test.ts fails without either fix.
set -euo pipefail
cd "$(dirname "$0")/.."

LMDB=node_modules/lmdb
MDB_C=$LMDB/dependencies/lmdb/libraries/liblmdb/mdb.c
[ -f "$MDB_C" ] || { echo "build-lmdb: $MDB_C is missing (run npm install first)" >&2; exit 1; }

# The fixes live in src/store/lmdb-binding.ts (an installed package builds the same into a cache
# folder); each carries its own mark, so a tree patched by an earlier setup gets only what it lacks.
[ -f dist/src/store/lmdb-binding.js ] || { echo "build-lmdb: run npm run build first" >&2; exit 1; }
patched="$(node dist/src/store/lmdb-binding.js patch "$MDB_C")"
if [ "$patched" = patched ]; then rm -rf "$LMDB/build"; fi

if [ -f "$LMDB/build/Release/lmdb.node" ] && [ "$LMDB/build/Release/lmdb.node" -nt "$MDB_C" ]; then
  exit 0
fi
NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP" ] || NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
NODE_DIR="$(dirname "$(readlink -f "$(command -v node)")")/.."
echo "build-lmdb: building lmdb-js with LMDB's ITS#9496 and ITS#10095 fixes (about 20 s on two cores)" >&2
# --jobs=max: make -j, one job per core (lmdb-js's 14 compile units take 43 s on one core, 22 s on two).
(cd "$LMDB" && node "$NODE_GYP" rebuild --jobs=max --nodedir="$NODE_DIR" >/tmp/fragfs-build-lmdb.log 2>&1) || {
  echo "build-lmdb: the build failed; see /tmp/fragfs-build-lmdb.log" >&2
  exit 1
}
