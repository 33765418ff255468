// Whatever a benchmark leaves running must not outlive it: every FUSE mount and every process it started is
// registered here and, on any exit (normal, error, SIGINT, SIGTERM), unmounted or ended — only those.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const mounts = new Set<string>();
const pids = new Set<number>();
let installed = false;

export function ownMount(mountpoint: string): void {
  mounts.add(mountpoint);
}
export function disownMount(mountpoint: string): void {
  mounts.delete(mountpoint);
}
export function ownPid(pid: number): void {
  pids.add(pid);
}
export function disownPid(pid: number): void {
  pids.delete(pid);
}

/** True when mountpoint is in /proc/self/mounts (as the kernel escapes it). */
export function isMounted(mountpoint: string): boolean {
  const escaped = mountpoint.replace(/[ \t\n\\]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === escaped);
  } catch {
    return false;
  }
}

/** Synchronous, so it also works from process 'exit'. Lazy unmount: a busy mount still goes away. */
export function cleanupNow(): void {
  for (const mp of mounts) {
    if (isMounted(mp)) {
      const r = spawnSync('fusermount', ['-u', mp], { stdio: 'ignore', timeout: 20_000 });
      if (r.status !== 0 && isMounted(mp)) spawnSync('fusermount', ['-u', '-z', mp], { stdio: 'ignore', timeout: 10_000 });
    }
    mounts.delete(mp);
  }
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone, or not a group leader */
      }
    }
    pids.delete(pid);
  }
}

export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, unmounting and stopping what it started\n`);
      cleanupNow();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`bench: ${e.stack ?? String(e)}\n`);
    cleanupNow();
    process.exit(1);
  });
}
