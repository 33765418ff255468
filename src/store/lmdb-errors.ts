// What a failed LMDB write means, as a FragfsError, and the leftovers of lmdb-js's failed commits.
//
// LMDB writes pages with pwrite and reports a short write, which is what a full disk gives it, as
// EIO, not ENOSPC, after lmdb-js printed the error and LMDB a C message to stderr. lmdb-js then
// leaves promises of its own rejected without a handler (the process ends unless something
// catches them), and its `flushed` (and so `close`) waits forever for the flush of the failed
// commit. fragfs keeps LMDB from meeting a full disk (lmdb-space-reserve.ts); what reaches it anyway
// is mapped here: EIO while the disk is nearly full is NO_SPACE.

import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { FragfsError } from '../errors.js';

/** Bytes left for unprivileged writers on the file system holding `path`, or undefined when unknown. */
export function availableBytesSync(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** Below this much free space, an EIO from an LMDB write is taken for a full disk. */
const NEARLY_FULL_BYTES = 16 * 1024 * 1024;

/** The error lmdb-js attached to a failed commit ("Commit failed (see commitError for details)"). */
async function commitCause(e: unknown): Promise<unknown> {
  const commitError = (e as { commitError?: unknown } | null)?.commitError;
  if (commitError instanceof Promise) {
    try {
      await commitError;
    } catch (inner) {
      return inner;
    }
  }
  return undefined;
}

/** Whether `reason` is one of lmdb-js's failed-commit errors (for an unhandled-rejection guard). */
export function isLmdbCommitFailure(reason: unknown): boolean {
  if (!(reason instanceof Error)) return false;
  const commitError = (reason as { commitError?: unknown }).commitError;
  if (commitError instanceof Promise) {
    commitError.catch(() => undefined);
    return true;
  }
  // The commit error itself: an Error with LMDB's numeric code, thrown from lmdb-js's write.js.
  return typeof (reason as { code?: unknown }).code === 'number' && /[\\/]lmdb[\\/]write\.js/.test(reason.stack ?? '');
}

let guardInstalled = false;

/**
 * After a failed commit lmdb-js rejects promises of its own that nobody holds (the batch of an
 * event turn, the commit's error), and an unhandled rejection ends the process. The writer that
 * awaited the commit has its error already; this guard drops those leftovers. Installed at the first
 * failed commit (in time: Node looks for unhandled rejections only after the microtasks that deliver
 * the writer's error ran). Any other unhandled rejection is raised as Node would without a listener.
 */
export function guardLmdbCommitRejections(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  process.on('unhandledRejection', function lmdbCommitGuard(reason: unknown) {
    if (isLmdbCommitFailure(reason)) return;
    if (process.listenerCount('unhandledRejection') === 1) throw reason;
  });
}

/**
 * A FragfsError for an error lmdb-js gave while `what` (e.g. "cannot put fragment into") was done
 * on the environment at `path`. ENOSPC, MDB_MAP_FULL, and EIO while the disk is nearly full are
 * NO_SPACE; the commit error lmdb-js attached is awaited (so it is handled) and consulted.
 */
export async function lmdbWriteError(e: unknown, what: string, path: string): Promise<FragfsError> {
  if (e instanceof FragfsError) return e;
  const cause = await commitCause(e);
  return lmdbError(cause ?? e, what, path, e);
}

/** The synchronous part of lmdbWriteError, for errors lmdb-js throws directly (open, reads). */
export function lmdbError(e: unknown, what: string, path: string, outer: unknown = e): FragfsError {
  if (e instanceof FragfsError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | undefined)?.code;
  const full = (reason: string) =>
    new FragfsError('NO_SPACE', `${what} ${path}: the disk is full (${reason})`, { path, cause: outer });
  if (code === 'ENOSPC' || code === 28 || code === 'EDQUOT' || code === 122 || /ENOSPC|No space left|MDB_MAP_FULL/.test(msg)) {
    return full('ENOSPC');
  }
  if (code === 'EIO' || code === 5 || /Input\/output error/.test(msg)) {
    // LMDB reports a short write, which is what a full disk gives it, as EIO.
    const free = availableBytesSync(dirname(path));
    if (free !== undefined && free < NEARLY_FULL_BYTES) return full(`EIO with ${free} bytes free`);
    return new FragfsError('IO', `${what} ${path}: an input/output error (${msg})`, { path, cause: outer });
  }
  if (/MDB_DBS_FULL/.test(msg)) {
    return new FragfsError('NOT_SUPPORTED', `${what} ${path}: too many spaces in one LMDB store (${msg})`, { path, cause: outer });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 13 || /Permission denied/.test(msg)) {
    return new FragfsError('PERMISSION', `${what} ${path}: permission denied (${msg})`, { path, cause: outer });
  }
  return new FragfsError('IO', `${what} ${path}: ${msg}`, { path, cause: outer });
}
