// The files of an LMDB environment as fragfs keeps them: created private (0600) and with real blocks
// before LMDB maps them, space reserved before LMDB writes, and what a failed LMDB write means.
// Shared by the lmdb backend and any other LMDB environment fragfs writes (the live state).
//
// Why: on a full disk LMDB fails in ways a caller cannot handle.
// - The lock file is made by ftruncate (a sparse file) and then written through a shared memory
//   map. A page of a sparse file that cannot be allocated is SIGBUS on the first store into it, so
//   `init` on a full disk died with "Bus error". Here the lock file is written with zeros (real
//   blocks) under a temp name and linked into place before LMDB opens it; LMDB keeps a lock file
//   that is large enough and never truncates it, so it never maps a hole.
// - LMDB writes pages with pwrite. A short write on a full disk is reported as EIO, not ENOSPC,
//   after lmdb-js printed the error and a C message to stderr; lmdb-js then leaves promises of its
//   own rejected without a handler (the process dies unless something catches them), and its
//   `flushed` (and so `close`) waits forever for the flush of the failed commit. So LMDB must not
//   meet a full disk at all: `LmdbSpaceReserve` has the file system allocate the blocks a write
//   will need (fallocate with FALLOC_FL_KEEP_SIZE past the end of the file, which changes no byte
//   and no size, so it is safe beside LMDB's own writes in this and other processes) before the
//   write is handed to LMDB. A full disk then fails the reservation: NO_SPACE, nothing queued.
// - What still reaches LMDB (another process filling the disk between two reservations of ours, a
//   file system without fallocate) is mapped by `lmdbWriteError`: EIO while the disk is (nearly)
//   full is NO_SPACE.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { chmod, link, open, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
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

const MIB = 1024 * 1024;
/**
 * Reserved past what the writes in flight need (half the file, 16 to 256 MiB, and never more than
 * half of what is free), so that most writes find their room already there and the next reservation
 * is made in the background while this one lasts. A write that waits for util-linux's fallocate (a
 * few ms, tens on a busy machine) stalls the put pipeline: 768 MiB of 1 MiB puts in-process on the
 * (busy) development VM ran at 207-254 MiB/s reserving 4 MiB at a time and waiting, against 344-351
 * without reserving; reserving ahead as here, 285-518 (median 391) against 344-469 (median 415),
 * interleaved.
 */
const MIN_SLACK_BYTES = 16 * MIB;
const MAX_SLACK_BYTES = 256 * MIB;
/** With this much more free than a write needs, it does not wait for its reservation (made in the background). */
const PLENTY_FREE_BYTES = 1024 * MIB;
/** Per reservation check, for LMDB's own pages (meta, free list, tree pages split by a batch). */
const MARGIN_PAGES = 64;
/** Per write: branch and leaf pages a put may copy or split besides its overflow pages. */
const PAGES_PER_WRITE = 8;

type FallocateResult = 'ok' | 'ENOSPC' | 'unsupported';

/** fallocate(2) with FALLOC_FL_KEEP_SIZE through util-linux's fallocate (Node has no binding for it). */
function fallocateKeepSize(path: string, offset: number, length: number): Promise<FallocateResult> {
  return new Promise((resolve) => {
    execFile(
      'fallocate',
      ['--keep-size', '--offset', String(offset), '--length', String(length), path],
      { timeout: 60_000 },
      (err, _stdout, stderr) => {
        if (!err) return resolve('ok');
        if (/No space left|Disk quota exceeded/i.test(String(stderr))) return resolve('ENOSPC');
        resolve('unsupported');
      },
    );
  });
}

/**
 * Reserves disk blocks ahead of the writes a process hands to LMDB, so that LMDB's own writes never
 * meet a full disk. A writer calls `reserve(valueBytes)` before each put or delete and `release`
 * with what it returned once the write settled (committed or failed).
 *
 * The bound: a write of v bytes dirties at most ceil((v + 16) / pageSize) overflow pages plus a few
 * tree pages, and LMDB appends new pages at the end of its file; so the end of the file plus the
 * needs of every write in flight, plus a margin, is where LMDB's writes can reach. Blocks up to
 * there are allocated with fallocate(KEEP_SIZE) past the end of the file, which writes no byte, so
 * it cannot race a write of LMDB's. Reservations of other processes on the same file are not
 * counted here; that case, and file systems without fallocate, fall back to a free-space check and
 * to lmdbWriteError.
 */
export class LmdbSpaceReserve {
  /** Bytes of the data file known to be allocated (its size at the last check, plus what was fallocated). */
  private reservedEnd = 0;
  /** Upper bound on (file size + needs in flight) since the last stat. */
  private bound = 0;
  private inFlight = 0;
  /** Below this much reserved room left, the next reservation starts in the background. */
  private lowWater = 0;
  private extending = false;
  private fallocate: 'yes' | 'no' | 'unknown' = 'unknown';
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly dataPath: string,
    readonly pageSize = 4096,
  ) {}

  /** What a write of `valueBytes` may take in the file, in bytes. */
  needOf(valueBytes: number): number {
    return (Math.ceil((valueBytes + 16) / this.pageSize) + PAGES_PER_WRITE) * this.pageSize;
  }

  /**
   * Reserves room for one write; NO_SPACE "<what>: the disk is full" when the disk cannot hold it.
   * Returns the amount to `release`.
   */
  async reserve(valueBytes: number, what = `cannot write to ${this.dataPath}`): Promise<number> {
    const need = this.needOf(valueBytes);
    this.inFlight += need;
    this.bound += need;
    if (this.bound + MARGIN_PAGES * this.pageSize <= this.reservedEnd) {
      if (this.reservedEnd - this.bound < this.lowWater) this.extendInBackground();
      return need;
    }
    try {
      // The bound only grows between two looks at the file: look again, without waiting behind a
      // reservation under way, before a write waits for one. With plenty of free space the write
      // need not wait either: the reservation is made in the background, and it is near a full disk
      // that waiting for it is what keeps LMDB from meeting one.
      if (!(await this.refreshed())) {
        const free = await this.freeBytes();
        if (this.fallocate === 'yes' && free !== undefined && free > this.bound - this.reservedEnd + PLENTY_FREE_BYTES) {
          this.extendInBackground();
        } else {
          await this.serialized(() => this.ensure(true));
        }
      }
    } catch (e) {
      this.release(need);
      if (e instanceof FragfsError && e.code === 'NO_SPACE') {
        throw new FragfsError('NO_SPACE', `${what}: the disk is full (ENOSPC)`, { path: this.dataPath, cause: e });
      }
      throw e;
    }
    return need;
  }

  private extendInBackground(): void {
    if (this.extending || this.fallocate !== 'yes') return;
    this.extending = true;
    this.serialized(() => this.ensure(false))
      .catch(() => undefined)
      .finally(() => (this.extending = false));
  }

  private async freeBytes(): Promise<number | undefined> {
    try {
      const s = await statfs(dirname(this.dataPath));
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }

  release(need: number): void {
    this.inFlight -= need;
  }

  /** Refreshes the bound from the file's size; whether the room reserved covers it. */
  private async refreshed(): Promise<boolean> {
    try {
      this.bound = (await stat(this.dataPath)).size + this.inFlight;
    } catch {
      return false;
    }
    return this.bound + MARGIN_PAGES * this.pageSize <= this.reservedEnd;
  }

  private serialized(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Room for what LMDB writes when it opens a new file (its meta pages), without slack: a store
   * that is created and never written takes no more of the disk than that.
   */
  async reserveFirstPages(what: string): Promise<void> {
    try {
      await this.serialized(() => this.ensure(true, false));
    } catch (e) {
      if (e instanceof FragfsError && e.code === 'NO_SPACE') {
        throw new FragfsError('NO_SPACE', `${what}: the disk is full (ENOSPC)`, { path: this.dataPath, cause: e });
      }
      throw e;
    }
  }

  /**
   * Makes sure the blocks up to the end of the file plus the writes in flight plus a margin are
   * allocated, with slack past that when the disk has room for it: at most half of what is free,
   * so the store never takes the last of the disk from others. `required`: a write waits on it, and
   * a full disk is NO_SPACE; otherwise it is a reservation ahead of need that may fail quietly.
   */
  private async ensure(required: boolean, withSlack = true): Promise<void> {
    let size: number;
    try {
      size = (await stat(this.dataPath)).size;
    } catch (e) {
      throw fromFsError(e, 'cannot stat', this.dataPath);
    }
    this.bound = size + this.inFlight;
    const target = this.bound + MARGIN_PAGES * this.pageSize;
    if (required && target <= this.reservedEnd) return;
    const free = await this.freeBytes();
    if (this.fallocate !== 'no') {
      const slackWanted = Math.min(MAX_SLACK_BYTES, Math.max(MIN_SLACK_BYTES, Math.floor(size / 2)));
      const slackFree = free === undefined ? slackWanted : Math.min(slackWanted, Math.max(0, Math.floor((free - (target - size)) / 2)));
      const slack = withSlack ? slackFree : 0;
      if (!required && target + slack / 2 <= this.reservedEnd) return;
      let outcome: FallocateResult = 'unsupported';
      for (const end of slack > 0 ? [target + slack, target] : [target]) {
        if (end <= this.reservedEnd) return;
        outcome = await fallocateKeepSize(this.dataPath, size, end - size);
        if (outcome === 'ok') {
          this.fallocate = 'yes';
          this.reservedEnd = end;
          // The next reservation starts, in the background, once half of this slack is used.
          this.lowWater = Math.floor((end - target) / 2);
          return;
        }
        if (outcome === 'unsupported' || !required) break;
      }
      if (outcome === 'ENOSPC') {
        if (required) throw this.full(target - size);
        return;
      }
      this.fallocate = 'no';
    }
    // No fallocate here: the best that can be done is to look before writing. Half of what is free
    // past the writes in flight is taken as room until the next look, as a reservation would be.
    if (free === undefined) return;
    if (free < target - size) {
      if (required) throw this.full(target - size);
      return;
    }
    this.reservedEnd = target + Math.min(MAX_SLACK_BYTES, Math.floor((free - (target - size)) / 2));
  }

  private full(bytes: number): FragfsError {
    return new FragfsError('NO_SPACE', `cannot write to ${this.dataPath}: the disk is full (ENOSPC: ${bytes} bytes more needed)`, {
      path: this.dataPath,
    });
  }
}
