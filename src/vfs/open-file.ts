// The content of one regular file while it is open (or being truncated): its size, dirty block
// images, blocks being stored, and the read/write/truncate/flush logic on the block grid. One
// OpenFile per inode, shared by all handles of it.

import { FragfsError, isFragfsError } from '../errors.js';
import type { BlockRef } from '../fragment/tree-format.js';
import type { GcGuard } from '../gc/gc-guard.js';
import type { Repo } from '../repo/repo.js';
import type { BlockCache } from './block-cache.js';
import { copyOrZero } from './extent-reader.js';
import { nowNs, type InodeRecord } from './inode.js';
import type { LiveState } from './live-state.js';
import { readAhead, type ReadAheadState } from './prefetch.js';
import type { BlockPatch, DirtyBlock, WriteBuffer } from './write-buffer.js';

/** What every open file of one vfs shares. */
export interface FileContext {
  state: LiveState;
  repo: Repo;
  cache: BlockCache;
  wb: WriteBuffer;
  blockSize: number;
  readAheadBytes: number;
  /** Told of every failed store of a block (the vfs notices a full disk this way). */
  onStoreError?: (e: unknown) => void;
  /** The store's gc lease: each block store, from write to committed extent, is one operation of it. */
  guard?: GcGuard;
}

const MIN_CAPACITY = 4096;
/** Extents an open file remembers (about 150 bytes each): 16 GiB of a file in 1 MiB blocks. */
const EXTENT_CACHE_ENTRIES = 16_384;
const EMPTY = Buffer.alloc(0);

/**
 * Bounds of a patch (writes kept over a block not yet read). Scattered writes: at most this many
 * spans and a quarter of the block in bytes, then the block is read and the patch laid over it.
 * Writes that extend the covered prefix (a sequential rewrite) may go on up to PREFIX_SPANS spans:
 * once they cover the whole stored block it never needs reading.
 */
const SCATTERED_SPANS = 64;
const PREFIX_SPANS = 1024;

/**
 * Bytes to allocate for a block image that must hold `need` bytes. Small files stay small (powers of
 * two from 4 KiB); once an image reaches an eighth of the block, it gets the whole block at once: a
 * sequential writer's 128 KiB requests would otherwise regrow (allocate and copy) it at 256 KiB,
 * 512 KiB and 1 MiB, which nearly doubled the bytes copied per block.
 */
function capacityFor(need: number, blockSize: number): number {
  if (need * 8 >= blockSize) return blockSize;
  return Math.min(blockSize, Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(need))));
}

export class OpenFile {
  /** Handles open on this inode; the vfs drops the OpenFile when it reaches 0. */
  handles = 0;
  /** Logical size, ahead of the committed one while writes are buffered. */
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Mode (type bits included), owner and atime, which setattr on an open file changes here. */
  private mode: number;
  private uid: number;
  private gid: number;
  private atimeNs: bigint;
  /** size, times, mode or owner differ from the committed record. */
  private attrsDirty = false;
  private readonly dirty = new Map<number, DirtyBlock>();
  private readonly inflight = new Map<number, Promise<void>>();
  /** First failure of a background store; reported by the next flush/fsync/release. */
  private error: unknown;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly bs: number;
  /**
   * Committed extents by block number as this file last read or wrote them (null: a hole). Every read
   * of a block otherwise costs a lookup and an open of a sealed record, more than the copy out of the
   * block cache (random 4 KiB reads: 20 of their 95 µs). Kept in step by every commit of this file;
   * only this file's OpenFile changes its extents while it is open.
   */
  private readonly extents = new Map<number, BlockRef | null>();

  constructor(
    private readonly ctx: FileContext,
    readonly ino: number,
    rec: InodeRecord,
    /** How messages name the file (`inode N`: messages may reach logs, which hold no names). */
    readonly label: string,
  ) {
    this.bs = ctx.blockSize;
    this.size = rec.size;
    this.mtimeNs = rec.mtimeNs;
    this.ctimeNs = rec.ctimeNs;
    this.mode = rec.mode;
    this.uid = rec.uid;
    this.gid = rec.gid;
    this.atimeNs = rec.atimeNs;
  }

  /** The committed record with this file's in-memory size, times, mode and owner laid over it. */
  overlay(rec: Readonly<InodeRecord>): InodeRecord {
    if (!this.attrsDirty && this.dirty.size === 0) return rec as InodeRecord;
    let buffered = 0;
    for (const d of this.dirty.values()) buffered += d.len;
    return {
      ...rec,
      parents: rec.parents.slice(),
      mode: this.mode,
      uid: this.uid,
      gid: this.gid,
      atimeNs: this.atimeNs,
      size: this.size,
      mtimeNs: this.mtimeNs,
      ctimeNs: this.ctimeNs,
      alloc: rec.alloc + buffered,
    };
  }

  /**
   * setattr of an open file (tar's fchown, fchmod and futimens, the kernel's write-back of times):
   * kept here and committed with the file's size and times at its next flush, fsync or release, in
   * the same transaction as its last block. Saves a transaction per change, three or four per file
   * extracted. `rec` is what the change made of the overlaid record.
   */
  setAttrs(rec: Readonly<InodeRecord>): void {
    this.mode = rec.mode;
    this.uid = rec.uid;
    this.gid = rec.gid;
    this.atimeNs = rec.atimeNs;
    this.mtimeNs = rec.mtimeNs;
    this.ctimeNs = rec.ctimeNs;
    this.attrsDirty = true;
  }

  /** The in-memory attributes into a record about to be committed. */
  private laidInto(rec: InodeRecord): void {
    rec.mode = this.mode;
    rec.uid = this.uid;
    rec.gid = this.gid;
    rec.atimeNs = this.atimeNs;
    rec.mtimeNs = this.mtimeNs;
    rec.ctimeNs = this.ctimeNs;
  }

  /** The committed extent of block `blockNo`, remembered (bounded) for the next read of it. */
  private extentOf(blockNo: number): BlockRef | undefined {
    const hit = this.extents.get(blockNo);
    if (hit !== undefined) return hit ?? undefined;
    const ext = this.ctx.state.getExtent(this.ino, blockNo);
    if (this.extents.size >= EXTENT_CACHE_ENTRIES) this.extents.clear();
    this.extents.set(blockNo, ext ?? null);
    return ext;
  }

  /** Runs `fn` after every earlier locked operation of this file (writes, truncates, flushes). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  // --- write path

  write(src: Buffer, length: number, position: number, append: boolean): Promise<number> {
    return this.locked(() => this.writeUnlocked(src, length, position, append));
  }

  private async writeUnlocked(src: Buffer, length: number, position: number, append: boolean): Promise<number> {
    {
      await this.ctx.wb.waitRoom();
      const pos = append ? this.size : position;
      let done = 0;
      while (done < length) {
        const off = pos + done;
        const blockNo = Math.floor(off / this.bs);
        const inOff = off - blockNo * this.bs;
        const n = Math.min(length - done, this.bs - inOff);
        // Check and copy in one synchronous stretch: eviction (from any other write) cannot slip
        // between finding the dirty block and filling it.
        const d = this.dirty.get(blockNo);
        if (!d) {
          await this.prepareBlock(blockNo, inOff, n);
          continue;
        }
        if (d.patch && !this.patchTakes(d.patch, inOff, n)) {
          await this.assemble(d);
          continue;
        }
        this.fill(d, src, done, inOff, n);
        done += n;
        if (off + n > this.size) this.size = off + n;
        // A block filled up by writing is stored at once (sequential writes stream to the store);
        // one rewritten in place stays buffered until flush or eviction, or every small write
        // into it would re-encode the whole block.
        if (!d.patch && d.len === this.bs && !d.loaded && inOff + n === this.bs) this.storeBlock(blockNo);
        else this.ctx.wb.touch(d);
      }
      const now = nowNs();
      this.mtimeNs = now;
      this.ctimeNs = now;
      this.attrsDirty = true;
      this.ctx.wb.evictIfOver();
      return length;
    }
  }

  /**
   * fallocate(PUNCH_HOLE | KEEP_SIZE): bytes [offset, offset + length) read as zeros afterwards and
   * whole blocks inside the range are no longer stored. The size does not change.
   */
  punchHole(offset: number, length: number): Promise<void> {
    return this.locked(async () => {
      const end = Math.min(offset + length, this.size);
      if (end <= offset) return;
      const firstWhole = Math.ceil(offset / this.bs);
      const endWhole = Math.floor(end / this.bs);
      // Partial blocks at either edge are zeroed through the write path (a patch over the stored block).
      const zeroSpan = async (from: number, to: number) => {
        if (to > from) await this.writeUnlocked(Buffer.alloc(to - from), to - from, from, false);
      };
      if (firstWhole > endWhole) {
        await zeroSpan(offset, end);
        return;
      }
      await zeroSpan(offset, firstWhole * this.bs);
      await zeroSpan(endWhole * this.bs, end);
      if (endWhole > firstWhole) {
        for (const [blockNo, d] of [...this.dirty]) {
          if (blockNo >= firstWhole && blockNo < endWhole) {
            this.dirty.delete(blockNo);
            this.ctx.wb.remove(d);
          }
        }
        await this.drain();
        const { state } = this.ctx;
        const now = nowNs();
        state.txn(() => {
          const rec = state.getInode(this.ino);
          if (!rec) return;
          for (const { blockNo, ref } of state.extentsFrom(this.ino, firstWhole)) {
            if (blockNo >= endWhole) break;
            state.removeExtent(this.ino, blockNo);
            rec.alloc -= ref.plainSize;
          }
          rec.mtimeNs = now;
          rec.ctimeNs = now;
          state.putInode(this.ino, rec);
          state.contentChanged(this.ino, rec);
        });
        this.extents.clear();
        this.mtimeNs = now;
        this.ctimeNs = now;
      }
    });
  }

  private fill(d: DirtyBlock, src: Buffer, srcOff: number, inOff: number, n: number): void {
    const need = inOff + n;
    if (d.patch) {
      const p = d.patch;
      const bytes = Buffer.allocUnsafeSlow(n);
      src.copy(bytes, 0, srcOff, srcOff + n);
      p.spans.push({ inOff, bytes });
      p.bytes += n;
      if (inOff <= p.prefix && need > p.prefix) p.prefix = need;
      if (need > d.len) d.len = need;
      // Every stored byte is overwritten: the image is the spans alone, and the block is never read.
      if (p.prefix >= p.base.plainSize) {
        d.data = layOver(p, undefined, d.len, capacityFor(d.len, this.bs));
        d.patch = undefined;
        d.loaded = false;
      }
      this.ctx.wb.recharge(d);
      return;
    }
    if (need > d.data.byteLength) {
      const cap = capacityFor(need, this.bs);
      const grown = Buffer.allocUnsafeSlow(cap);
      d.data.copy(grown, 0, 0, d.len);
      d.data = grown;
      this.ctx.wb.recharge(d);
    }
    if (inOff > d.len) d.data.fill(0, d.len, inOff);
    src.copy(d.data, inOff, srcOff, srcOff + n);
    if (need > d.len) d.len = need;
  }

  /**
   * The image of `len` bytes (in `cap`) that patch `p` makes of its block. A block the cache holds
   * is copied from there; any other is decoded straight into the image's memory on a codec thread:
   * no second 1 MiB buffer, no copy of it, and nothing left on this thread for a collection (under
   * random 4 KiB writes, the decoded blocks were most of a mount's garbage).
   */
  private async imageOver(p: BlockPatch, len: number, cap: number): Promise<Buffer> {
    const cached = this.ctx.cache.peek(p.base);
    if (cached !== undefined) return layOver(p, cached, len, cap);
    const plain = await this.ctx.repo.readBlockInto(p.base, Buffer.alloc(cap), this.label);
    if (plain.byteOffset !== 0 || plain.buffer.byteLength !== cap) return layOver(p, plain, len, cap);
    const out = Buffer.from(plain.buffer, 0, cap);
    // As layOver: the stored bytes up to len, zeros after them, the spans over both.
    out.fill(0, Math.min(plain.byteLength, len), cap);
    return laySpans(p, out);
  }

  private patchTakes(p: BlockPatch, inOff: number, n: number): boolean {
    if (inOff <= p.prefix) return p.spans.length < PREFIX_SPANS;
    return p.spans.length < SCATTERED_SPANS && (p.bytes + n) * 4 <= this.bs;
  }

  /** Reads a patched block's stored bytes and lays the patch over them: an ordinary image again. */
  private async assemble(d: DirtyBlock): Promise<void> {
    const p = d.patch;
    if (!p) return;
    const image = await this.imageOver(p, d.len, capacityFor(d.len, this.bs));
    // Assembled by another caller, or handed to the store, while the block was read.
    if (d.patch !== p || this.dirty.get(d.blockNo) !== d) return;
    d.data = image;
    d.patch = undefined;
    d.loaded = true;
    this.ctx.wb.recharge(d);
  }

  /**
   * Makes block `blockNo` dirty: waits for its store in flight; a write that keeps stored bytes
   * starts a patch over them, any other starts from zeros (appending past EOF needs no load).
   */
  private async prepareBlock(blockNo: number, inOff: number, n: number): Promise<void> {
    const flying = this.inflight.get(blockNo);
    if (flying) {
      await flying;
      return;
    }
    const ext = this.extentOf(blockNo);
    let d: DirtyBlock;
    if (ext !== undefined && ext.plainSize > 0 && !(inOff === 0 && n >= ext.plainSize)) {
      // A patch: no fragment read on the request path, and a small write into a big block counts
      // its own bytes against the write buffer, not the block's (docs/DESIGN.md, Write path).
      d = { owner: this, blockNo, data: EMPTY, len: ext.plainSize, patch: { base: ext, spans: [], bytes: 0, prefix: 0 } };
    } else {
      d = { owner: this, blockNo, data: Buffer.allocUnsafeSlow(capacityFor(inOff + n, this.bs)), len: 0 };
    }
    this.dirty.set(blockNo, d);
    this.ctx.wb.add(d);
  }

  /**
   * Hands a dirty block to the store now, without waiting (synchronous hand-off). With `keep`, its
   * plaintext also goes into the block cache: a file rewritten in place between fsyncs (a database,
   * an editor) then patches the cached block instead of reading back and decoding what it just wrote.
   */
  storeBlock(blockNo: number, keep = false): void {
    const d = this.dirty.get(blockNo);
    if (!d) return;
    this.dirty.delete(blockNo);
    this.ctx.wb.remove(d);
    const plainSize = Math.min(d.len, this.size - blockNo * this.bs);
    if (plainSize <= 0) return;
    const patch = d.patch;
    const image = patch ? undefined : d.data.byteLength === plainSize ? d.data : d.data.subarray(0, plainSize);
    let kept: Uint8Array | undefined;
    // A remote store may be out of reach for a while: then the block must outlive a failed store.
    const retain = keep || this.ctx.repo.store.backend === 'object';
    const guard = this.ctx.guard;
    const op = guard?.begin();
    const p = this.ctx.wb
      .runStore(async () => {
        // A patch reads its block here, inside the store slot: eviction stays bounded like any store.
        const data = image ?? (await this.imageOver(patch!, plainSize, plainSize));
        // writeBlock may hand `data` to a worker thread: the cache (and a retry) get their own copy.
        if (retain) kept = Uint8Array.prototype.slice.call(data);
        return this.ctx.repo.writeBlock(data);
      }, patch ? 1 : plainSize / this.bs)
      .then((ref) => {
        if (kept && keep) this.ctx.cache.remember(ref, kept);
        this.commitBlock(blockNo, ref);
      })
      .catch((e: unknown) => {
        this.error ??= e;
        this.ctx.onStoreError?.(e);
        // A remote store that is out of reach (after its retries): the block stays dirty, so the
        // fsync that reports the error loses nothing and a later flush stores it once the service
        // is back. Other failures (a full disk, a damaged base block) drop it, as before.
        if (kept && isFragfsError(e, 'REMOTE') && !this.dirty.has(blockNo) && blockNo * this.bs < this.size) {
          const again: DirtyBlock = { owner: d.owner, blockNo, data: Buffer.from(kept.buffer, kept.byteOffset, kept.byteLength), len: kept.byteLength };
          if (d.loaded) again.loaded = true;
          this.dirty.set(blockNo, again);
          this.ctx.wb.add(again);
        }
      })
      .finally(() => {
        if (op !== undefined) guard!.end(op);
        if (this.inflight.get(blockNo) === p) this.inflight.delete(blockNo);
      });
    this.inflight.set(blockNo, p);
  }

  /**
   * Write ordering: the fragment is in the store (writeBlock resolved) before the extent naming it
   * is committed, and the committed size grows only up to the end of a committed block.
   */
  private commitBlock(blockNo: number, ref: BlockRef): void {
    const { state } = this.ctx;
    state.txn(() => {
      const rec = state.getInode(this.ino);
      if (!rec) return;
      const old = this.extentOf(blockNo);
      state.putExtent(this.ino, blockNo, ref);
      rec.alloc += ref.plainSize - (old?.plainSize ?? 0);
      const end = Math.min(this.size, blockNo * this.bs + ref.plainSize);
      if (end > rec.size) rec.size = end;
      this.laidInto(rec);
      state.putInode(this.ino, rec);
      state.contentChanged(this.ino, rec);
      // The last outstanding block of a flushed file: size and times are committed with it, which
      // saves flush a second transaction per small file.
      if (this.dirty.size === 0 && this.inflight.size <= 1 && rec.size === this.size) this.attrsDirty = false;
    });
    // After the commit: a transaction that failed changed nothing.
    this.extents.set(blockNo, ref);
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight.values()]);
  }

  private takeError(): void {
    if (this.error === undefined) return;
    const e = this.error;
    this.error = undefined;
    if (e instanceof FragfsError) throw e;
    throw new FragfsError('IO', `storing data of ${this.label} failed: ${String(e)}`, { path: this.label, cause: e });
  }

  /** Stores every dirty block, waits for them, commits size and times. */
  flush(): Promise<void> {
    return this.locked(() => this.flushUnlocked());
  }

  private async flushUnlocked(): Promise<void> {
    // Kept in the cache: the last blocks written, up to a quarter of it. Keeping every block of a
    // flush of hundreds (fio's fsync after random writes all over a file) only made a copy of each
    // that the next evicted, 1 MiB of garbage a block: a mount peaked at 200-213 MiB there.
    const blocks = [...this.dirty.keys()];
    let keepFrom = blocks.length;
    for (let kept = 0; keepFrom > 0; keepFrom--) {
      kept += this.dirty.get(blocks[keepFrom - 1]!)!.len;
      if (kept > this.ctx.cache.cacheBytes / 4) break;
    }
    blocks.forEach((blockNo, i) => this.storeBlock(blockNo, i >= keepFrom));
    await this.drain();
    this.takeError();
    this.commitAttrs();
  }

  private commitAttrs(): void {
    if (!this.attrsDirty) return;
    const { state } = this.ctx;
    state.txn(() => {
      const rec = state.getInode(this.ino);
      if (!rec) return;
      rec.size = this.size;
      this.laidInto(rec);
      state.putInode(this.ino, rec);
      state.inodeChanged(this.ino, rec);
    });
    this.attrsDirty = false;
  }

  /** utimens/chmod etc. committed elsewhere: keep the in-memory times in step. */
  setTimes(mtimeNs: bigint, ctimeNs: bigint): void {
    this.mtimeNs = mtimeNs;
    this.ctimeNs = ctimeNs;
  }

  // --- truncate

  truncate(newSize: number): Promise<void> {
    return this.locked(async () => {
      await this.drain();
      const { state, repo, cache } = this.ctx;
      const now = nowNs();
      let cutRef: { blockNo: number; ref: BlockRef } | undefined;
      let firstDrop = Infinity;
      if (newSize < this.size) {
        // A patch over the block the cut falls in would lay the stored bytes past the cut back
        // when the file grows again: assemble it first, so the cut below applies to an image.
        const cutBlock = this.dirty.get(Math.floor(newSize / this.bs));
        if (cutBlock?.patch) await this.assemble(cutBlock);
        for (const [blockNo, d] of [...this.dirty]) {
          if (blockNo * this.bs >= newSize) {
            this.dirty.delete(blockNo);
            this.ctx.wb.remove(d);
          }
        }
        const c = Math.floor(newSize / this.bs);
        const cut = newSize - c * this.bs;
        firstDrop = cut > 0 ? c + 1 : c;
        if (cut > 0) {
          const d = this.dirty.get(c);
          if (d && d.len > cut) d.len = cut;
          // A committed extent reaching past the cut is re-stored shortened in the same commit as
          // the size, so growing the file later (even after a crash) shows zeros there.
          const ext = state.getExtent(this.ino, c);
          if (ext && ext.plainSize > cut) {
            const plain = await cache.get(ext, this.label);
            cutRef = { blockNo: c, ref: await repo.writeBlock(new Uint8Array(plain.subarray(0, cut))) };
          }
        }
      }
      state.txn(() => {
        const rec = state.getInode(this.ino);
        if (!rec) return;
        if (firstDrop !== Infinity) {
          for (const { blockNo, ref } of [...state.extentsFrom(this.ino, firstDrop)]) {
            state.removeExtent(this.ino, blockNo);
            rec.alloc -= ref.plainSize;
          }
        }
        if (cutRef) {
          const old = state.getExtent(this.ino, cutRef.blockNo);
          state.putExtent(this.ino, cutRef.blockNo, cutRef.ref);
          rec.alloc += cutRef.ref.plainSize - (old?.plainSize ?? 0);
        }
        rec.size = newSize;
        rec.mtimeNs = now;
        rec.ctimeNs = now;
        state.putInode(this.ino, rec);
        state.contentChanged(this.ino, rec);
      });
      this.extents.clear();
      this.size = newSize;
      this.mtimeNs = now;
      this.ctimeNs = now;
    });
  }

  // --- read path

  async read(dst: Buffer, length: number, position: number, ra: ReadAheadState): Promise<number> {
    const end = Math.min(position + length, this.size);
    if (position >= end) return 0;
    let done = 0;
    const total = end - position;
    // Decided on arrival, not after the data is in: see readExtentFile.
    this.prefetch(ra, position, total);
    while (done < total) {
      const off = position + done;
      const blockNo = Math.floor(off / this.bs);
      const inOff = off - blockNo * this.bs;
      const n = Math.min(total - done, this.bs - inOff);
      const d = this.dirty.get(blockNo);
      if (d?.patch) {
        await this.assemble(d);
        continue;
      }
      if (d) {
        copyOrZero(d.data, d.len, inOff, n, dst, done);
      } else {
        const flying = this.inflight.get(blockNo);
        if (flying) {
          await flying;
          continue;
        }
        const ext = this.extentOf(blockNo);
        if (!ext) dst.fill(0, done, done + n);
        else {
          const plain = await this.ctx.cache.get(ext, this.label);
          copyOrZero(plain, plain.byteLength, inOff, n, dst, done);
        }
      }
      done += n;
    }
    return total;
  }

  /** The committed block around `position` when cached and nothing of it is buffered or in flight (Vfs.cleanBlockAt). */
  cleanBlockAt(position: number): { offset: number; data: Uint8Array } | undefined {
    const blockNo = Math.floor(position / this.bs);
    if (position >= this.size || this.dirty.has(blockNo) || this.inflight.has(blockNo)) return undefined;
    const ext = this.extentOf(blockNo);
    const plain = ext && this.ctx.cache.peek(ext);
    const offset = blockNo * this.bs;
    const len = Math.min(plain?.byteLength ?? 0, this.size - offset);
    return plain && len > 0 ? { offset, data: plain.subarray(0, len) } : undefined;
  }

  private prefetch(ra: ReadAheadState, position: number, n: number): void {
    const r = readAhead(ra, position, n, this.size, this.bs, this.ctx.readAheadBytes);
    if (!r) return;
    const last = Math.floor((r.to - 1) / this.bs);
    for (let b = Math.floor(r.from / this.bs); b <= last; b++) {
      if (this.dirty.has(b) || this.inflight.has(b)) continue;
      const ext = this.extentOf(b);
      if (ext) this.ctx.cache.prefetch(ext, this.label);
    }
  }

  /** Drops buffered data without storing it (the inode is gone). */
  discard(): Promise<void> {
    return this.locked(async () => {
      for (const d of this.dirty.values()) this.ctx.wb.remove(d);
      this.dirty.clear();
      this.attrsDirty = false;
      await this.drain();
      this.error = undefined;
    });
  }
}

/**
 * A block image of `cap` bytes: `base` (the stored block, if read) up to `len`, the patch's spans
 * over it in write order, zeros elsewhere.
 */
function layOver(p: BlockPatch, base: Uint8Array | undefined, len: number, cap: number): Buffer {
  const out = Buffer.alloc(cap);
  if (base) out.set(base.subarray(0, Math.min(base.byteLength, len, cap)), 0);
  return laySpans(p, out);
}

/** Copies the patch's spans over `out`, in write order (a later span wins), clipped to its length. */
function laySpans(p: BlockPatch, out: Buffer): Buffer {
  const cap = out.byteLength;
  for (const s of p.spans) {
    if (s.inOff < cap) s.bytes.copy(out, s.inOff, 0, Math.min(s.bytes.byteLength, cap - s.inOff));
  }
  return out;
}
