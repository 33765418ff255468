// Disk blocks reserved ahead of the writes handed to LMDB, so that LMDB never meets a full disk
// (lmdb-errors.ts says what it does when it does). The file system allocates the blocks a write may
// need with fallocate(FALLOC_FL_KEEP_SIZE) past the end of the data file, which changes no byte and
// not the file's size, so it is safe beside LMDB's own writes in this and other processes. A full
// disk then fails the reservation: NO_SPACE, before anything is queued.

import { execFile } from 'node:child_process';
import { statSync, statfsSync, truncateSync } from 'node:fs';
import { stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { constants as osConstants } from 'node:os';
import { FragfsError, fromFsError } from '../errors.js';
import { localFs } from '../local/local-fs.js';

const { ENOSPC, EDQUOT } = osConstants.errno;

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
/** What guardSync counts for one write transaction that reserved nothing itself (a few records). */
const GUARD_CHANGE_BYTES = 4096;
/** Per write: branch and leaf pages a put may copy or split besides its overflow pages. */
const PAGES_PER_WRITE = 8;

type FallocateResult = 'ok' | 'ENOSPC' | 'unsupported';

/**
 * An environment opened with a writable map (MDB_WRITEMAP): LMDB sizes its file to the whole map at
 * open, so the file's size says nothing of where its writes reach, and its writes are stores into
 * memory, so a page the disk cannot hold is SIGBUS instead of ENOSPC. The reserve then reads the end
 * of LMDB's pages from the environment, allocates holes inside the file, and checks before every
 * write transaction (guardSync).
 */
export interface MappedFile {
  /** Where LMDB's pages end, in bytes: (last page number + 1) x page size of the last commit. */
  usedBytes(): number;
  /** fallocate(2) on the calling thread, keeping the size (LocalFs.fallocateSync): 0 or the errno. */
  fallocateSync(punch: boolean, offset: number, length: number): number;
}

/**
 * With a writable map, the room every write transaction finds reserved past LMDB's pages: more than a
 * metadata change of the live state dirties (a few pages), and than deleting the extents of a file
 * of tens of GiB copies.
 */
export const MAPPED_MARGIN_BYTES = 8 * MIB;

/**
 * fallocate(2) with FALLOC_FL_KEEP_SIZE (Node has no binding for it): through the local-fs addon, or
 * where it cannot be built, util-linux's fallocate. The addon matters: spawning a program forks the
 * process, after which every page it writes takes a copy-on-write fault. Writing 1 GiB through the
 * vfs in-process (bench-vfs) spawned it about fifteen times: 84-91 MB/s with 609,000-677,000 page
 * faults, against 113-126 MB/s and 372,000-410,000 with the addon (three interleaved pairs; that
 * build also reused block images, a change dropped since for measuring no different).
 */
async function fallocateKeepSize(path: string, offset: number, length: number): Promise<FallocateResult> {
  const addon = await localFs();
  if (!(addon instanceof Error)) {
    const err = await addon.fallocateKeepSize(Buffer.from(path), offset, length);
    if (err === 0) return 'ok';
    return err === ENOSPC || err === EDQUOT ? 'ENOSPC' : 'unsupported';
  }
  return fallocateProgram(path, offset, length);
}

function fallocateProgram(path: string, offset: number, length: number): Promise<FallocateResult> {
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

  private readonly marginBytes: number;

  constructor(
    readonly dataPath: string,
    readonly pageSize = 4096,
    private readonly mapped?: MappedFile,
  ) {
    this.marginBytes = mapped ? MAPPED_MARGIN_BYTES : MARGIN_PAGES * pageSize;
  }

  /** Where LMDB's writes end: the file's size, or with a writable map, the end of its pages. */
  private async endBytes(): Promise<number> {
    if (this.mapped) return this.mapped.usedBytes();
    return (await stat(this.dataPath)).size;
  }

  /**
   * With a writable map, before every write transaction: NO_SPACE when the blocks past LMDB's pages
   * that the transaction may write are not allocated and the disk cannot allocate them, so that LMDB
   * never stores into a hole (SIGBUS). Most calls are arithmetic; when the reservation runs out before
   * the background one catches up, it allocates on the calling thread. Without a map it does nothing
   * (LMDB's own writes answer ENOSPC, lmdb-errors.ts).
   */
  guardSync(what: string): void {
    const m = this.mapped;
    if (!m) return;
    const need = this.needOf(GUARD_CHANGE_BYTES);
    // Read each time (about a microsecond): a transaction larger than its share of the bound must
    // not leave the next one trusting an old bound.
    const used = m.usedBytes();
    this.bound = Math.max(this.bound, used + this.inFlight) + need;
    const target = this.bound + this.marginBytes;
    if (target <= this.reservedEnd) {
      if (this.reservedEnd - this.bound < this.lowWater) this.extendInBackground();
      return;
    }
    // Slack as ensure() takes it: never more than half of what is free past the need.
    let slack = Math.min(MAX_SLACK_BYTES, Math.max(MIN_SLACK_BYTES, Math.floor(used / 2)));
    try {
      const f = statfsSync(dirname(this.dataPath));
      slack = Math.min(slack, Math.max(0, Math.floor((f.bavail * f.bsize - (target - used)) / 2)));
    } catch {
      // The fallocate below says whether there is room.
    }
    for (const end of slack > 0 ? [target + slack, target] : [target]) {
      const err = m.fallocateSync(false, used, end - used);
      if (err === 0) {
        this.fallocate = 'yes';
        this.reservedEnd = Math.max(this.reservedEnd, end);
        this.lowWater = Math.floor((end - target) / 2);
        return;
      }
      if (err !== ENOSPC && err !== EDQUOT) {
        throw new FragfsError('IO', `${what}: cannot allocate room in ${this.dataPath} (fallocate: errno ${err})`, { path: this.dataPath });
      }
    }
    throw new FragfsError('NO_SPACE', `${what}: the disk is full (ENOSPC)`, { path: this.dataPath });
  }

  /** What a write of `valueBytes` may take in the file, in bytes. */
  needOf(valueBytes: number): number {
    return (Math.ceil((valueBytes + 16) / this.pageSize) + PAGES_PER_WRITE) * this.pageSize;
  }

  /**
   * Room for one write when it is already reserved (the amount to `release`), without waiting; else
   * undefined, and the caller awaits `reserve`. Most writes take this path.
   */
  tryReserve(valueBytes: number): number | undefined {
    const need = this.needOf(valueBytes);
    if (this.bound + need + this.marginBytes > this.reservedEnd) return undefined;
    this.inFlight += need;
    this.bound += need;
    if (this.reservedEnd - this.bound < this.lowWater) this.extendInBackground();
    return need;
  }

  /**
   * Reserves room for one write; NO_SPACE "<what>: the disk is full" when the disk cannot hold it.
   * Returns the amount to `release`.
   */
  async reserve(valueBytes: number, what = `cannot write to ${this.dataPath}`): Promise<number> {
    const need = this.needOf(valueBytes);
    this.inFlight += need;
    this.bound += need;
    if (this.bound + this.marginBytes <= this.reservedEnd) {
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
      this.bound = (await this.endBytes()) + this.inFlight;
    } catch {
      return false;
    }
    return this.bound + this.marginBytes <= this.reservedEnd;
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
      size = await this.endBytes();
    } catch (e) {
      throw fromFsError(e, 'cannot stat', this.dataPath);
    }
    this.bound = size + this.inFlight;
    const target = this.bound + this.marginBytes;
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
          this.reservedEnd = Math.max(this.reservedEnd, end);
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

  /**
   * Gives back the blocks reserved past the end of the data file (a file truncated to its own size
   * keeps its bytes and drops blocks allocated past its end): a store is not left holding its slack,
   * up to 256 MiB, after the process ends. MUST be called inside a write transaction of the
   * environment: LMDB's write lock keeps every other process from growing the file meanwhile.
   */
  giveBack(): void {
    if (this.fallocate !== 'yes') return;
    try {
      if (this.mapped) {
        // Inside the file: punched out, past the pages of the last commit (the file keeps its size).
        const used = this.mapped.usedBytes();
        if (this.reservedEnd > used) this.mapped.fallocateSync(true, used, this.reservedEnd - used);
        this.reservedEnd = 0;
        return;
      }
      truncateSync(this.dataPath, statSync(this.dataPath).size);
      this.reservedEnd = 0;
    } catch {
      // Only slack is lost: the next process reserves again.
    }
  }
}
