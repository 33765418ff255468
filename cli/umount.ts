// `fragfs umount MOUNTPOINT`: asks the mount process (found through its record) to flush, unmount
// and exit; a mount in use fails with BUSY and stays, unless `--lazy` (detached now, served until the
// last file there closes). A mount whose process is gone (kill -9: ENOTCONN) is cleared. Works for
// read-write, read-only and snapshot mounts alike.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { controlRequest } from '../src/fuse/control.js';
import { fusermountUnmount } from '../src/fuse/fusermount.js';
import { findMount } from '../src/fuse/mount.js';
import { pidAlive, recordForMountpoint, removeRecords } from '../src/fuse/mount-registry.js';
import { action } from './common.js';

/** How long a mount process that does not answer may take to end (a kill -9 is not instant). */
const DYING_MS = 3000;

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .alias('unmount')
    .description('flush and unmount a fragfs mount')
    .argument('<mountpoint>', 'the folder a store is mounted on')
    .option('-l, --lazy', 'detach now even when busy; the mount process serves the files still open there and ends when the last closes')
    .action(
      action(async (mountpoint: string, opts: { lazy?: boolean }) => {
        const mp = resolve(mountpoint);
        const rec = await recordForMountpoint(mp);
        if (rec) {
          const reply = await controlRequest(rec.socket, { op: 'umount', ...(opts.lazy ? { lazy: true } : {}) });
          if (reply) {
            process.stderr.write(opts.lazy ? `fragfs: detached ${mp} (its process ends when the last file there closes)\n` : `fragfs: unmounted ${mp}\n`);
            return;
          }
        }
        const entry = await findMount(mp);
        if (!entry || !entry.fstype.startsWith('fuse')) {
          if (rec) await removeRecords(rec);
          throw new FragfsError('NOT_FOUND', `nothing is mounted at ${mp}`, { path: mp });
        }
        if (entry.fstype !== 'fuse.fragfs') {
          throw new FragfsError('INVALID', `${mp} is not a fragfs mount (${entry.fstype})`, { path: mp });
        }
        if (rec && !(await processEnds(rec.pid, DYING_MS))) {
          throw new FragfsError('BUSY', `the mount process (pid ${rec.pid}) of ${mp} does not answer on ${rec.socket}`, { path: mp });
        }
        // The serving process is gone: only the kernel's side is left; detach it.
        await fusermountUnmount(mp, true);
        if (rec) await removeRecords(rec);
        process.stderr.write(`fragfs: cleared the mount at ${mp} (its process had ended)\n`);
      }),
    );
}

/** Whether process `pid` is gone (or a zombie) within `ms`. */
async function processEnds(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (!pidAlive(pid) || isZombie(pid)) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isZombie(pid: number): boolean {
  try {
    // /proc/PID/stat: "pid (comm) S ...": the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
