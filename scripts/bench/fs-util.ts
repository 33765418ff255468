// File-system chores shared by peers and workloads: mount and unmount FUSE folders, drop the page cache,
// measure a store's size on disk, find the process that serves a mountpoint.

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { disownMount, disownPid, isMounted, ownMount, ownPid } from './cleanup.js';
import { isAlive, run, sleep, waitExit } from './proc.js';

export { isMounted };

export function canDropCaches(): boolean {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** sync, then drop page cache, dentries and inodes (root only; a no-op otherwise). */
export function dropCaches(): void {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    /* not root: the remount alone has to do */
  }
}

/** Bytes allocated on disk under dir (st_blocks), so sparse or preallocated files count what they use. */
export async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  const st = await lstat(dir);
  total += st.blocks * 512;
  if (!st.isDirectory()) return total;
  for (const name of await readdir(dir)) total += await allocatedBytes(join(dir, name));
  return total;
}

/** Apparent bytes of regular files under dir. */
export async function apparentBytes(dir: string): Promise<number> {
  let total = 0;
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) total += await apparentBytes(p);
    else if (d.isFile()) total += (await lstat(p)).size;
  }
  return total;
}

/**
 * Pids of processes whose argv holds `arg` exactly (a unique temp mountpoint): how a daemonised mount's
 * server is found. The mountpoint is ours and fresh, so whatever serves it is a process we started.
 */
export function pidsWithArg(arg: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.includes(arg) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) out.push(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** The process serving mountpoint: the newest process naming it (a daemon's re-executed child), not fusermount. */
export function serverPid(mountpoint: string): number | undefined {
  const pids = pidsWithArg(mountpoint).filter((p) => {
    try {
      return !readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('fusermount');
    } catch {
      return false;
    }
  });
  return pids.length > 0 ? Math.max(...pids) : undefined;
}

export async function waitMounted(mountpoint: string, ms: number, alive?: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  while (!isMounted(mountpoint)) {
    if (alive && !alive()) throw new Error(`the mount of ${mountpoint} ended before it was ready`);
    if (Date.now() > until) throw new Error(`${mountpoint} not mounted after ${ms} ms`);
    await sleep(25);
  }
}

/** Registers a fresh mount and its server for cleanup on any exit; returns the server pid if found. */
export function adoptMount(mountpoint: string): number | undefined {
  ownMount(mountpoint);
  const pid = serverPid(mountpoint);
  if (pid !== undefined) ownPid(pid);
  return pid;
}

/**
 * Unmounts with fusermount -u (retrying while busy), lazily as a last resort, then waits for the server to
 * exit so whatever it flushes on unmount is counted before the next step starts.
 */
export async function fuseUnmount(mountpoint: string, pid: number | undefined, waitMs = 60_000): Promise<void> {
  for (let i = 0; i < 20 && isMounted(mountpoint); i++) {
    const r = await run(['fusermount', '-u', mountpoint], { allowFail: true });
    if (r.code === 0) break;
    await sleep(100);
  }
  if (isMounted(mountpoint)) await run(['fusermount', '-u', '-z', mountpoint], { allowFail: true });
  disownMount(mountpoint);
  if (pid !== undefined) {
    if (!(await waitExit(pid, waitMs)) && isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    disownPid(pid);
  }
}

export async function rmrf(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true, maxRetries: 3 });
}
