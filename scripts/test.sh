#!/usr/bin/env bash
# The whole fragfs test suite from a fresh clone: set-up, build, then every test (unit, store
# conformance, codec, vfs, CLI, and the real FUSE mount tests when /dev/fuse is there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -e /dev/fuse ]; then
  echo "WARNING: /dev/fuse is missing: the real-mount tests in test/mount will SKIP" >&2
fi
# The remote backends' servers (radosgw, sshd, azurite), started once for the whole suite; their
# tests read the addresses from FRAGFS_TEST_* (test/helpers/remote-env.ts).
servers=$(mktemp -d /tmp/fragfs-test-servers.XXXXXX)
trap 'bash scripts/test-servers.sh stop "$servers"; rm -rf "$servers"' EXIT
if ! bash scripts/test-servers.sh start "$servers"; then
  echo "WARNING: a test server did not start: its tests will fail (see above)" >&2
fi
set -a
# shellcheck disable=SC1091
source "$servers/env"
set +a
# The cache folders of remote stores that tests make without naming one go here, not to ~/.cache.
export FRAGFS_CACHE_DIR="$servers/cache"
mkdir -p "$FRAGFS_CACHE_DIR"
# FRAGFS_SUITE_CPU=LOG: each test file's CPU goes to LOG (scripts/suite-cpu-probe.ts; sum it up
# with node dist/scripts/suite-cpu-report.js LOG).
if [ -n "${FRAGFS_SUITE_CPU:-}" ]; then
  export NODE_OPTIONS="${NODE_OPTIONS:-} --import $PWD/dist/scripts/suite-cpu-probe.js"
fi
npx ava "$@"
