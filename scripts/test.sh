#!/usr/bin/env bash
# The whole fragfs test suite from a fresh clone: set-up, build, then every test (unit, store
# conformance, codec, vfs, CLI, and the real FUSE mount tests when /dev/fuse is there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -e /dev/fuse ]; then
  echo "WARNING: /dev/fuse is missing: the real-mount tests in test/mount will SKIP" >&2
fi
npx ava "$@"
