#!/usr/bin/env bash
# Installs everything fragfs needs on a fresh Debian machine: fusermount (mounts by users other than
# root, and unmounting), a C compiler and Linux's headers for fragfs's FUSE addon, g++ and make for
# lmdb-js built with upstream LMDB fixes (scripts/build-lmdb.sh), the tools the
# real-mount tests drive (sqlite3, rsync, git, attr, fio, xz, python3), the npm dependencies and the
# build. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(fuse gcc g++ make libc6-dev linux-libc-dev sqlite3 rsync git attr fio xz-utils python3 openssh-server openssh-client ceph-mon ceph-osd ceph-mgr radosgw uuid-runtime curl rclone age)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  # @napi-rs/blake-hash 1.3.6 names platform packages (darwin, win32, ...) at versions that were
  # never published; npm ci refuses such a lock file while npm install, on the same lock file,
  # installs exactly the locked versions for this platform.
  # The dependencies' install scripts run after, not inside npm: npm runs them one after another,
  # zstd-napi's C build on one core (about 40 s of the 85).
  if ! npm ci --ignore-scripts --no-audit --no-fund --loglevel=error 2>/tmp/fragfs-npm-ci.log; then
    echo "setup: npm ci refused the lock file (unpublished optional platform packages); npm install from the same lock" >&2
    # A registry that stops answering mid-download (EIDLETIMEOUT, ECONNRESET) is not retried by npm
    # itself: three tries, a pause between, before the set-up gives up.
    for attempt in 1 2 3; do
      npm install --ignore-scripts --no-save --no-audit --no-fund --loglevel=error && break
      [ "$attempt" -lt 3 ] || { echo "setup: npm install failed three times (above)" >&2; exit 1; }
      echo "setup: npm install failed (try $attempt of 3); again in 15 s" >&2
      sleep 15
    done
  fi
  # zstd-napi builds with make -j (JOBS, read by node-gyp) beside the others. Only it: the Makefile of
  # @ronomon/reed-solomon fails under make -j (its copy of binding.node can run before the link).
  scripted="$(node scripts/dependency-scripts.mjs)"
  others=()
  while IFS= read -r p; do [ -z "$p" ] || [ "$p" = zstd-napi ] || others+=("$p"); done <<<"$scripted"
  JOBS=max npm rebuild zstd-napi --loglevel=error >/tmp/fragfs-npm-rebuild-zstd.log 2>&1 &
  zstd_build=$!
  rebuilt=0
  if [ "${#others[@]}" -gt 0 ]; then npm rebuild "${others[@]}" --loglevel=error || rebuilt=$?; fi
  wait "$zstd_build" || { echo "setup: building zstd-napi failed; see /tmp/fragfs-npm-rebuild-zstd.log" >&2; exit 1; }
  [ "$rebuilt" -eq 0 ] || { echo "setup: a dependency's install script failed (above)" >&2; exit 1; }
fi
# @ronomon/reed-solomon (parity, src/parity/rs-codec.ts) ships its C source and builds its addon
# in an install script: build it when it still does not load (node_modules installed elsewhere).
RS=node_modules/@ronomon/reed-solomon
if ! node -e "require('./$RS')" 2>/dev/null; then
  echo "setup: building @ronomon/reed-solomon" >&2
  NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$NODE_GYP" ] || NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
  NODE_DIR="$(dirname "$(readlink -f "$(command -v node)")")/.."
  (cd "$RS" && node "$NODE_GYP" rebuild --nodedir="$NODE_DIR" >/tmp/fragfs-build-rs.log 2>&1 && { [ -f binding.node ] || cp build/Release/binding.node binding.node; }) || {
    echo "setup: building @ronomon/reed-solomon failed; see /tmp/fragfs-build-rs.log" >&2
    exit 1
  }
fi
echo "setup: building" >&2
npm run --silent build
# lmdb-js with LMDB's fixes for environments several processes open and close (ITS#9496, ITS#10095).
bash scripts/build-lmdb.sh
npm run --silent man
# fragfs's FUSE addon speaks the kernel's protocol on /dev/fuse (src/fuse/native/fuse-kernel.c); a
# mount builds it too when it is missing (docs/DESIGN.md, "The FUSE addon").
echo "setup: building the fuse-kernel addon" >&2
node dist/src/fuse/build-kernel.js >/dev/null
# The local-fs addon: xattrs and mknod for put and get (src/local/native/local-fs.c).
echo "setup: building the local-fs addon" >&2
node dist/src/local/local-fs.js >/dev/null
