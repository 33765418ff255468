#!/usr/bin/env bash
# fragfs's main job on an embedded default, from a fresh clone: set-up, then the demo (a store in a
# temporary folder, a sample tree put in and got back, its meta key and the store's stats, and a live
# mount with a snapshot when FUSE is available).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/scripts/demo.js "$@"
