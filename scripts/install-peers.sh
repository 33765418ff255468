#!/usr/bin/env bash
# Installs the peers `npm run bench` compares fragfs with, from Debian's packages (root, or sudo):
# gocryptfs, rclone, restic, borg (with its FUSE binding for borg mount) and fio. rclone's mount works with
# the fuse (v2) package's fusermount, so fuse3 (which conflicts with fuse on Debian 12) is not needed.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
want=(gocryptfs rclone restic borgbackup python3-llfuse fio)
# fuse and fuse3 conflict: add fuse only when neither fusermount is there
if ! command -v fusermount >/dev/null && ! command -v fusermount3 >/dev/null; then want+=(fuse); fi
have=()
for p in "${want[@]}"; do
  # grep reads the whole policy (no -q): under pipefail an early exit would SIGPIPE apt-cache and
  # count a package that is there as missing.
  if apt-cache policy "$p" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then have+=("$p"); else echo "install-peers: $p is not in the package lists here, skipped" >&2; fi
done
$SUDO apt-get install -y -qq "${have[@]}" >/dev/null
for b in gocryptfs rclone restic borg fio fusermount; do
  printf '%-11s %s\n' "$b" "$(command -v "$b" || echo 'missing')"
done
