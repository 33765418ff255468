#!/usr/bin/env bash
# The SFTP test server: a private OpenSSH sshd on 127.0.0.1 with its own config, host key, client key
# and known_hosts in DIR, logging in as root by key only. Usage:
#   scripts/servers/sftp.sh start DIR   # writes DIR/env (FRAGFS_TEST_SFTP_* export lines)
#   scripts/servers/sftp.sh stop DIR    # stops that sshd by the PID it recorded
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?DIR}
SSHD=/usr/sbin/sshd

stop() {
  local pid
  [ -f "$dir/sshd.pid" ] || return 0
  pid=$(cat "$dir/sshd.pid")
  # Only our listener: its PID file names it, and /proc confirms it is still an sshd before the kill.
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "sshd.*$dir/sshd_config"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  rm -f "$dir/sshd.pid"
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

case "$cmd" in
  start)
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    [ -x "$SSHD" ] || { echo "sftp: $SSHD is missing (apt-get install openssh-server)" >&2; exit 1; }
    # Under UsePAM no, sshd refuses an account whose password field is locked ('!'); '*' is fine.
    if [ "$(id -u)" -ne 0 ]; then echo "sftp: the test server logs in as root and must be started as root" >&2; exit 1; fi
    if getent shadow root 2>/dev/null | cut -d: -f2 | grep -q '^!'; then
      echo "sftp: root's password field is locked ('!'), which sshd refuses under UsePAM no: usermod -p '*' root" >&2; exit 1
    fi
    stop
    # Privilege separation needs this folder; a container that never ran the packaged sshd lacks it.
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    rm -f "$dir"/host_ed25519* "$dir"/client_ed25519*
    ssh-keygen -q -t ed25519 -N '' -C fragfs-test-host -f "$dir/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C fragfs-test-client -f "$dir/client_ed25519"
    cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
    mkdir -p "$dir/root"; chmod 0700 "$dir/root"
    started=0
    # A port found free can be taken before sshd binds it: try a few.
    for _ in 1 2 3 4 5; do
      port=$(free_port)
      cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
# The conformance suites open dozens of connections at once, each with several SFTP channels.
MaxStartups 500
MaxSessions 64
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
      : >"$dir/sshd.log"
      "$SSHD" -t -f "$dir/sshd_config"
      "$SSHD" -f "$dir/sshd_config" -E "$dir/sshd.log" || true
      for _ in $(seq 50); do
        if [ -s "$dir/sshd.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then started=1; break; fi
        sleep 0.1
      done
      [ "$started" = 1 ] && break
      stop
    done
    if [ "$started" != 1 ]; then echo "sftp: sshd did not start; its log:" >&2; tail -n 20 "$dir/sshd.log" >&2; exit 1; fi
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" >"$dir/known_hosts"
    cat >"$dir/env" <<EOF
export FRAGFS_TEST_SFTP_HOST=127.0.0.1
export FRAGFS_TEST_SFTP_PORT=$port
export FRAGFS_TEST_SFTP_USER=root
export FRAGFS_TEST_SFTP_KEY=$dir/client_ed25519
export FRAGFS_TEST_SFTP_KNOWN_HOSTS=$dir/known_hosts
export FRAGFS_TEST_SFTP_ROOT=$dir/root
EOF
    echo "sftp: sshd $(cat "$dir/sshd.pid") on 127.0.0.1:$port" >&2;;
  stop)
    dir=$(cd "$dir" 2>/dev/null && pwd) || exit 0
    stop;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2;;
esac
