// The files of an LMDB environment as fragfs keeps them: private (0600), and with real blocks before
// LMDB maps them. Shared by the lmdb backend and any other LMDB environment fragfs writes (the live
// state). Why a full disk needs this, and what else it needs: lmdb-space-reserve.ts, lmdb-errors.ts.
//
// LMDB makes its lock file with ftruncate (a sparse file) and writes it through a shared memory map.
// A page of a sparse file that cannot be allocated is SIGBUS on the first store into it, so `init`
// on a full disk died with "Bus error". Here the lock file is written with zeros (real blocks) under
// a temp name and linked into place before LMDB opens it; LMDB uses a lock file that is large enough
// as it is and never truncates it, so it never maps a hole.

import { randomBytes } from 'node:crypto';
import { chmod, link, open, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fromFsError } from '../errors.js';
import { PRIVATE_FILE_MODE, isLoose } from './private-modes.js';

export interface LmdbFilePaths {
  /** The data file (a single-file environment's path, or data.mdb in a folder). */
  data: string;
  /** The lock file (`<path>-lock`, or lock.mdb in a folder). */
  lock: string;
}

/** Where LMDB keeps an environment opened at `path`: LMDB's MDB_NOSUBDIR naming, or the folder form. */
export function lmdbFilePaths(path: string, noSubdir: boolean): LmdbFilePaths {
  return noSubdir ? { data: path, lock: `${path}-lock` } : { data: join(path, 'data.mdb'), lock: join(path, 'lock.mdb') };
}

/**
 * Size of a lock file fragfs makes. LMDB needs sizeof(MDB_txninfo) + (maxReaders - 1) * 64 bytes
 * (8,272 with lmdb-js's 126 readers); a larger file gives more reader slots and is used as it is.
 */
export const LMDB_LOCK_FILE_BYTES = 64 * 1024;

/** Open options for lmdb-js (`permissionsMode`) so that a file it creates is private too. */
export const LMDB_PERMISSIONS_MODE = PRIVATE_FILE_MODE;

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Makes the lock file, if missing, as LMDB_LOCK_FILE_BYTES of written zeros, mode 0600. It is written
 * under a temp name and linked into place, so LMDB never sees it half made, and two processes making
 * it at once both end up with the one that won. ENOSPC is NO_SPACE naming the lock file.
 */
async function ensureLockFile(lock: string): Promise<void> {
  try {
    await stat(lock);
    return;
  } catch (e) {
    if (errnoOf(e) !== 'ENOENT') throw fromFsError(e, 'cannot open the LMDB lock file', lock);
  }
  const tmp = join(dirname(lock), `.${process.pid}-${randomBytes(4).toString('hex')}.lock-tmp`);
  try {
    const fh = await open(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      await fh.writeFile(Buffer.alloc(LMDB_LOCK_FILE_BYTES));
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, lock);
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw e;
    }
  } catch (e) {
    throw fromFsError(e, 'cannot create the LMDB lock file', lock);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** chmod 0600 of an LMDB file that an older fragfs (or lmdb-js, under a loose umask) made readable to others. */
async function tightenFile(path: string): Promise<void> {
  try {
    const st = await stat(path);
    if (st.isFile() && isLoose(st.mode, false)) await chmod(path, PRIVATE_FILE_MODE);
  } catch (e) {
    if (errnoOf(e) !== 'ENOENT') throw fromFsError(e, 'cannot make private', path);
  }
}

/**
 * Prepares the files of an environment before lmdb-js opens it. Read-write: the data file exists
 * (made empty, 0600, when new: LMDB writes its first pages into it), the lock file exists with real
 * blocks, and both are 0600. Read-only: only a missing lock file is made (LMDB would otherwise make
 * a sparse one and map it); the data file is left to the caller. Returns whether the data file is new.
 */
export async function prepareLmdbFiles(paths: LmdbFilePaths, o: { readOnly: boolean }): Promise<boolean> {
  let created = false;
  if (!o.readOnly) {
    try {
      const fh = await open(paths.data, 'wx', PRIVATE_FILE_MODE);
      await fh.close();
      created = true;
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw fromFsError(e, 'cannot create the LMDB data file', paths.data);
    }
  }
  await ensureLockFile(paths.lock);
  if (!o.readOnly) {
    await tightenFile(paths.data);
    await tightenFile(paths.lock);
  }
  return created;
}
