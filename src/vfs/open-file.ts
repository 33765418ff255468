// The content of one regular file while it is open (or being truncated): its size, dirty block
// images, blocks being stored, and the read/write/truncate/flush logic on the block grid. One
// OpenFile per inode, shared by all handles of it.

import { FragfsError } from '../errors.js';
import type { BlockRef } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import type { BlockCache } from './block-cache.js';
import { copyOrZero } from './extent-reader.js';
import type { InodeRecord } from './inode.js';
import type { LiveState } from './live-state.js';
import { readAhead, type ReadAheadState } from './prefetch.js';
import type { DirtyBlock, WriteBuffer } from './write-buffer.js';

/** What every open file of one vfs shares. */
export interface FileContext {
  state: LiveState;
  repo: Repo;
  cache: BlockCache;
  wb: WriteBuffer;
  blockSize: number;
  readAheadBytes: number;
}

const MIN_CAPACITY = 4096;

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
  mtimeMs: number;
  ctimeMs: number;
  /** size/mtime/ctime differ from the committed record. */
  private attrsDirty = false;
  private readonly dirty = new Map<number, DirtyBlock>();
  private readonly inflight = new Map<number, Promise<void>>();
  /** First failure of a background store; reported by the next flush/fsync/release. */
  private error: unknown;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly bs: number;

  constructor(
    private readonly ctx: FileContext,
    readonly ino: number,
    rec: InodeRecord,
    /** A current name of the file, for error messages. */
    public path: string,
  ) {
    this.bs = ctx.blockSize;
    this.size = rec.size;
    this.mtimeMs = rec.mtimeMs;
    this.ctimeMs = rec.ctimeMs;
  }

  /** The committed record with this file's in-memory size and times laid over it. */
  overlay(rec: InodeRecord): InodeRecord {
    if (!this.attrsDirty && this.dirty.size === 0) return rec;
    let buffered = 0;
    for (const d of this.dirty.values()) buffered += d.len;
    return { ...rec, size: this.size, mtimeMs: this.mtimeMs, ctimeMs: this.ctimeMs, alloc: rec.alloc + buffered };
  }

  /** Runs `fn` after every earlier locked operation of this file (writes, truncates, flushes). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  // --- write path

  write(src: Buffer, length: number, position: number, append: boolean): Promise<number> {
    return this.locked(async () => {
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
        this.fill(d, src, done, inOff, n);
        done += n;
        if (off + n > this.size) this.size = off + n;
        // A block filled up by writing is stored at once (sequential writes stream to the store);
        // one rewritten in place stays buffered until flush or eviction, or every small write
        // into it would re-encode the whole block.
        if (d.len === this.bs && !d.loaded && inOff + n === this.bs) this.storeBlock(blockNo);
        else this.ctx.wb.touch(d);
      }
      const now = Date.now();
      this.mtimeMs = now;
      this.ctimeMs = now;
      this.attrsDirty = true;
      this.ctx.wb.evictIfOver();
      return length;
    });
  }

  private fill(d: DirtyBlock, src: Buffer, srcOff: number, inOff: number, n: number): void {
    const need = inOff + n;
    if (need > d.data.byteLength) {
      const cap = capacityFor(need, this.bs);
      const grown = Buffer.allocUnsafeSlow(cap);
      d.data.copy(grown, 0, 0, d.len);
      this.ctx.wb.resized(d.data.byteLength, cap);
      d.data = grown;
    }
    if (inOff > d.len) d.data.fill(0, d.len, inOff);
    src.copy(d.data, inOff, srcOff, srcOff + n);
    if (need > d.len) d.len = need;
  }

  /** Makes block `blockNo` dirty: waits for its store in flight, loads it when the write keeps old bytes. */
  private async prepareBlock(blockNo: number, inOff: number, n: number): Promise<void> {
    const flying = this.inflight.get(blockNo);
    if (flying) {
      await flying;
      return;
    }
    const ext = this.ctx.state.getExtent(this.ino, blockNo);
    const keepsOld = ext !== undefined && ext.plainSize > 0 && !(inOff === 0 && n >= ext.plainSize);
    let plain: Uint8Array | undefined;
    if (keepsOld) plain = await this.ctx.cache.get(ext, this.path);
    if (this.dirty.has(blockNo) || this.inflight.has(blockNo)) return;
    const used = Math.max(inOff + n, plain?.byteLength ?? 0);
    const cap = capacityFor(used, this.bs);
    const data = Buffer.allocUnsafeSlow(cap);
    let len = 0;
    if (plain) {
      data.set(plain, 0);
      len = plain.byteLength;
    }
    const d: DirtyBlock = { owner: this, blockNo, data, len, loaded: plain !== undefined };
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
    const data = d.data.byteLength === plainSize ? d.data : d.data.subarray(0, plainSize);
    // writeBlock may hand `data` to a worker thread: the cache gets its own copy.
    const kept = keep ? Uint8Array.prototype.slice.call(data) : undefined;
    const p = this.ctx.wb
      .runStore(() => this.ctx.repo.writeBlock(data))
      .then((ref) => {
        if (kept) this.ctx.cache.remember(ref, kept);
        this.commitBlock(blockNo, ref);
      })
      .catch((e: unknown) => {
        this.error ??= e;
      })
      .finally(() => {
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
      const old = state.getExtent(this.ino, blockNo);
      state.putExtent(this.ino, blockNo, ref);
      rec.alloc += ref.plainSize - (old?.plainSize ?? 0);
      const end = Math.min(this.size, blockNo * this.bs + ref.plainSize);
      if (end > rec.size) rec.size = end;
      rec.mtimeMs = this.mtimeMs;
      rec.ctimeMs = this.ctimeMs;
      state.putInode(this.ino, rec);
      state.contentChanged(this.ino, rec);
      // The last outstanding block of a flushed file: size and times are committed with it, which
      // saves flush a second transaction per small file.
      if (this.dirty.size === 0 && this.inflight.size <= 1 && rec.size === this.size) this.attrsDirty = false;
    });
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight.values()]);
  }

  private takeError(): void {
    if (this.error === undefined) return;
    const e = this.error;
    this.error = undefined;
    if (e instanceof FragfsError) throw e;
    throw new FragfsError('IO', `storing data of ${this.path} failed: ${String(e)}`, { path: this.path, cause: e });
  }

  /** Stores every dirty block, waits for them, commits size and times. */
  flush(): Promise<void> {
    return this.locked(() => this.flushUnlocked());
  }

  private async flushUnlocked(): Promise<void> {
    for (const blockNo of [...this.dirty.keys()]) this.storeBlock(blockNo, true);
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
      rec.mtimeMs = this.mtimeMs;
      rec.ctimeMs = this.ctimeMs;
      state.putInode(this.ino, rec);
      state.inodeChanged(this.ino, rec);
    });
    this.attrsDirty = false;
  }

  /** utimens/chmod etc. committed elsewhere: keep the in-memory times in step. */
  setTimes(mtimeMs: number, ctimeMs: number): void {
    this.mtimeMs = mtimeMs;
    this.ctimeMs = ctimeMs;
  }

  // --- truncate

  truncate(newSize: number): Promise<void> {
    return this.locked(async () => {
      await this.drain();
      const { state, repo, cache } = this.ctx;
      const now = Date.now();
      let cutRef: { blockNo: number; ref: BlockRef } | undefined;
      let firstDrop = Infinity;
      if (newSize < this.size) {
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
            const plain = await cache.get(ext, this.path);
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
        rec.mtimeMs = now;
        rec.ctimeMs = now;
        state.putInode(this.ino, rec);
        state.contentChanged(this.ino, rec);
      });
      this.size = newSize;
      this.mtimeMs = now;
      this.ctimeMs = now;
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
      if (d) {
        copyOrZero(d.data, d.len, inOff, n, dst, done);
      } else {
        const flying = this.inflight.get(blockNo);
        if (flying) {
          await flying;
          continue;
        }
        const ext = this.ctx.state.getExtent(this.ino, blockNo);
        if (!ext) dst.fill(0, done, done + n);
        else {
          const plain = await this.ctx.cache.get(ext, this.path);
          copyOrZero(plain, plain.byteLength, inOff, n, dst, done);
        }
      }
      done += n;
    }
    return total;
  }

  private prefetch(ra: ReadAheadState, position: number, n: number): void {
    const r = readAhead(ra, position, n, this.size, this.bs, this.ctx.readAheadBytes);
    if (!r) return;
    const last = Math.floor((r.to - 1) / this.bs);
    for (let b = Math.floor(r.from / this.bs); b <= last; b++) {
      if (this.dirty.has(b) || this.inflight.has(b)) continue;
      const ext = this.ctx.state.getExtent(this.ino, b);
      if (ext) this.ctx.cache.prefetch(ext, this.path);
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
