// Unmounting with fusermount (from the `fuse` package): it works for the mounting user as for root,
// and tells a busy mount from one that is gone.

import { execFile } from 'node:child_process';

/** Error from fusermount, with `busy` set when the kernel refused because the mount is in use. */
export interface FusermountError extends Error {
  busy: boolean;
  notMounted: boolean;
}

/**
 * `fusermount -u` (or `-uz`, lazy: detach now, finish when the last file closes). Lazy unmount
 * always succeeds on a mounted path, so it is only for shutdown paths that must not fail.
 */
export function fusermountUnmount(mountpoint: string, lazy: boolean): Promise<void> {
  return new Promise((resolveDone, reject) => {
    execFile('fusermount', [lazy ? '-uz' : '-u', mountpoint], (err, _stdout, stderr) => {
      if (!err) return resolveDone();
      const text = (stderr || err.message).trim();
      const e = new Error(text) as FusermountError;
      e.busy = /busy/i.test(text);
      e.notMounted = /not found|not mounted|invalid argument/i.test(text);
      reject(e);
    });
  });
}
