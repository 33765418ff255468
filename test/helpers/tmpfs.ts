// A small tmpfs mounted for one test, to fill a disk for real: root only (the test is skipped with a
// log line otherwise), always unmounted in teardown, even when the test fails.

import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, open, rm, rmdir, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Mounts a tmpfs of `sizeMiB` on a new folder and returns it. Register the test with
 * `testIf(canMountTmpfs, ...)` (capabilities.ts): here a failure to mount fails the test.
 */
export async function mountTmpfs(t: ExecutionContext, sizeMiB = 24): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    await rmdir(dir).catch(() => undefined);
    throw new Error(`cannot mount a tmpfs: ${r.stderr.trim()}`);
  }
  t.teardown(async () => {
    let u = spawnSync('umount', [dir], { encoding: 'utf8' });
    // Something still has a file open there (a child that has not exited yet): detach it.
    if (u.status !== 0) u = spawnSync('umount', ['-l', dir], { encoding: 'utf8' });
    if (u.status === 0) await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Fills the file system of `dir` with a ballast file until at most `leaveBytes` are free (0: until
 * a write fails with ENOSPC). Returns the ballast's path; deleting it frees the space again.
 */
export async function fillDisk(dir: string, leaveBytes = 0, name = 'ballast'): Promise<string> {
  const path = join(dir, name);
  const fh = await open(path, 'a');
  try {
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    for (;;) {
      const free = await freeBytes(dir);
      const want = leaveBytes > 0 ? free - leaveBytes : free;
      const n = Math.min(chunk.length, want > 0 ? want : 4096);
      if (leaveBytes > 0 && want <= 0) break;
      try {
        await fh.write(chunk, 0, n);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    await fh.close();
  }
  return path;
}
