// `fragfs umount MOUNTPOINT`: asks the mount process (found through its record) to flush, unmount
// and exit; a mount in use fails with BUSY and stays. A mount whose process is gone (kill -9) is
// cleared. Works for read-write, read-only and snapshot mounts alike.

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { controlRequest } from '../src/fuse/control.js';
import { fusermountUnmount } from '../src/fuse/fusermount.js';
import { findMount } from '../src/fuse/mount.js';
import { pidAlive, recordForMountpoint, removeRecords } from '../src/fuse/mount-registry.js';
import { action } from './common.js';

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .alias('unmount')
    .description('flush and unmount a fragfs mount')
    .argument('<mountpoint>', 'the folder a store is mounted on')
    .action(
      action(async (mountpoint: string) => {
        const mp = resolve(mountpoint);
        const rec = await recordForMountpoint(mp);
        if (rec) {
          const reply = await controlRequest(rec.socket, { op: 'umount' });
          if (reply) {
            process.stderr.write(`fragfs: unmounted ${mp}\n`);
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
        if (rec && pidAlive(rec.pid)) {
          throw new FragfsError('BUSY', `the mount process (pid ${rec.pid}) of ${mp} does not answer on ${rec.socket}`, { path: mp });
        }
        // The serving process is gone: only the kernel's side is left; detach it.
        await fusermountUnmount(mp, true);
        if (rec) await removeRecords(rec);
        process.stderr.write(`fragfs: cleared the mount at ${mp} (its process had ended)\n`);
      }),
    );
}
