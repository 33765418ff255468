// The live mount state in LMDB: inodes, directory entries, block extents, xattrs, counters, orphans
// and the snapshot caches (per-dir meta ids, per-file manifests). Every method here is synchronous
// and meant to run inside `txn` (writes) or against a read transaction `rtx` (snapshots).

import { mkdirSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import type { BlockRef, Entry } from '../fragment/tree-format.js';
import { ROOT_INO, S_IFDIR, isDir, type InodeRecord } from './inode.js';

/** Cached result of serializing one directory (valid while no change below it). */
export interface DirCacheValue {
  id: string;
  files: number;
  dirs: number;
  bytes: number;
}

export type FileContentCache = Pick<Entry, 'blocks' | 'pages'>;

const KEY_INO_BYTES = 6;

/** The most of the environment's file `warm` reads (a bigger state is warmed in its first part). */
export const WARM_MAX_BYTES = 512 * 1024 * 1024;
const WARM_CHUNK_BYTES = 1024 * 1024;
/** Decoded inode records kept in memory (~200 bytes each). */
const INODE_CACHE_ENTRIES = 100_000;
/** Directory entries kept in memory (~100 bytes each). */
const ENTRY_CACHE_ENTRIES = 100_000;

/** entryCache key: the parent's number and the name's exact bytes (latin1 maps bytes 1:1). */
function entryKey(parent: number, name: Buffer): string {
  return `${parent}/${name.toString('latin1')}`;
}

function copyRecord(rec: InodeRecord): InodeRecord {
  return { ...rec, parents: rec.parents.slice() };
}

function inoPrefix(ino: number, extra = 0): Buffer {
  const b = Buffer.allocUnsafe(KEY_INO_BYTES + extra);
  b.writeUIntBE(ino, 0, KEY_INO_BYTES);
  return b;
}

function nameKey(ino: number, name: Buffer): Buffer {
  const b = inoPrefix(ino, name.length);
  name.copy(b, KEY_INO_BYTES);
  return b;
}

function blockKey(ino: number, blockNo: number): Buffer {
  const b = inoPrefix(ino, KEY_INO_BYTES);
  b.writeUIntBE(blockNo, KEY_INO_BYTES, KEY_INO_BYTES);
  return b;
}

/** Extent value: id (32) + key (32) + plainSize (4, BE). */
function encodeRef(ref: BlockRef): Buffer {
  const b = Buffer.allocUnsafe(68);
  b.write(ref.id, 0, 32, 'hex');
  Buffer.from(ref.key.buffer, ref.key.byteOffset, ref.key.byteLength).copy(b, 32);
  b.writeUInt32BE(ref.plainSize, 64);
  return b;
}

function decodeRef(b: Uint8Array): BlockRef {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return { id: buf.toString('hex', 0, 32), key: new Uint8Array(buf.subarray(32, 64)), plainSize: buf.readUInt32BE(64) };
}

export interface StateOptions {
  path: string;
  readOnly: boolean;
  owner: { uid: number; gid: number };
}

export class LiveState {
  private readonly root: RootDatabase;
  private readonly inodes: Database<InodeRecord, number>;
  private readonly dirents: Database<number, Buffer>;
  private readonly extents: Database<Buffer, Buffer>;
  private readonly xattrs: Database<Buffer, Buffer>;
  private readonly counters: Database<number, string>;
  private readonly orphans: Database<boolean, number>;
  private readonly dirCache: Database<DirCacheValue, number>;
  private readonly contentCache: Database<FileContentCache, number>;
  /** While a snapshot runs: every dir and file invalidated meanwhile (its caches must not be written back). */
  touched: Set<number> | null = null;
  /**
   * Decoded inode records by ino, as last written or read outside a read transaction. Every FUSE
   * request resolves a path inode by inode (a getattr of a/b/c decodes four records): decoding
   * msgpack each time was the largest cost of a stat. Callers get copies, so mutating a record
   * without putInode changes nothing; a transaction that throws drops the whole cache, because its
   * putInode calls never happened.
   */
  private readonly inodeCache = new Map<number, InodeRecord>();
  /**
   * Directory entries seen lately, (parent, name bytes) -> child, kept in step by putEntry and
   * removeEntry: every path-based request walks its path from the root, one entry per component,
   * and a deep tree made that walk a fifth of the JS thread's time in `tar x`.
   */
  private readonly entryCache = new Map<string, number>();
  /** A read-only state may be read while a read-write mount in another process changes it: no cache. */
  private readonly cacheInodes: boolean;
  private readonly path: string;
  private closing = false;

  constructor(o: StateOptions) {
    this.cacheInodes = !o.readOnly;
    this.path = o.path;
    if (!o.readOnly) mkdirSync(o.path, { recursive: true });
    // noSync: a commit is a write into the OS page cache, which survives kill -9 of the process; only
    // `sync()` (fsync, flushAll) pays for an fdatasync. Power loss can lose commits since the last sync.
    this.root = open({ path: o.path, noSync: true, readOnly: o.readOnly, maxDbs: 16, mapSize: 1 << 30 });
    this.inodes = this.root.openDB({ name: 'inodes' });
    this.dirents = this.root.openDB({ name: 'dirents', keyEncoding: 'binary' });
    this.extents = this.root.openDB({ name: 'extents', keyEncoding: 'binary', encoding: 'binary' });
    this.xattrs = this.root.openDB({ name: 'xattrs', keyEncoding: 'binary', encoding: 'binary' });
    this.counters = this.root.openDB({ name: 'counters' });
    this.orphans = this.root.openDB({ name: 'orphans' });
    this.dirCache = this.root.openDB({ name: 'dir-cache' });
    this.contentCache = this.root.openDB({ name: 'content-cache' });
    if (!o.readOnly && this.inodes.get(ROOT_INO) === undefined) {
      const now = Date.now();
      this.txn(() => {
        this.putInode(ROOT_INO, {
          mode: S_IFDIR | 0o755,
          uid: o.owner.uid,
          gid: o.owner.gid,
          size: 0,
          atimeMs: now,
          mtimeMs: now,
          ctimeMs: now,
          nlink: 2,
          alloc: 0,
          parents: [],
        });
        this.counters.putSync('nextIno', ROOT_INO + 1);
      });
    }
  }

  /** One atomic write transaction. */
  txn<T>(fn: () => T): T {
    try {
      return this.root.transactionSync(fn);
    } catch (e) {
      // The transaction's writes were rolled back; the caches may hold some of them.
      this.inodeCache.clear();
      this.entryCache.clear();
      throw e;
    }
  }

  readTxn(): Transaction {
    return this.root.useReadTransaction();
  }

  /** Makes every committed transaction durable (fdatasync of the environment). */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      // `sync` (mdb_env_sync, forced) is in lmdb-js but missing from its typings.
      (this.root as unknown as { sync(cb: (err: unknown) => void): void }).sync((err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Reads the environment's file once, front to back, on libuv's thread pool. LMDB reads through
   * mmap: after a reboot or a dropped page cache every page a lookup touches is a page fault served
   * on the JS thread that answers every FUSE request, one random disk read at a time. One sequential
   * read puts the pages in the page cache first (a cold `find -ls` over 24,000 files: 3-10 % faster;
   * most of its time is FUSE round trips). Bounded by `maxBytes`; stops when the state closes; errors
   * are ignored (it only saves time).
   */
  async warm(maxBytes = WARM_MAX_BYTES): Promise<number> {
    let read = 0;
    const fh = await openFile(join(this.path, 'data.mdb'), 'r').catch(() => undefined);
    if (!fh) return 0;
    try {
      const buf = Buffer.allocUnsafeSlow(WARM_CHUNK_BYTES);
      while (!this.closing && read < maxBytes) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, maxBytes - read), read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
    } catch {
      // a read error here changes nothing: LMDB reports its own
    } finally {
      await fh.close().catch(() => undefined);
    }
    return read;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.root.close();
  }

  // --- inodes

  getInode(ino: number, rtx?: Transaction): InodeRecord | undefined {
    if (rtx) return this.inodes.get(ino, { transaction: rtx });
    let rec = this.inodeCache.get(ino);
    if (rec === undefined) {
      rec = this.inodes.get(ino);
      if (rec === undefined) return undefined;
      this.remember(ino, rec);
    }
    return copyRecord(rec);
  }

  /**
   * The record itself, not a copy: for reading on the way through (a path walk), never to change.
   * The next write of this inode replaces it.
   */
  peekInode(ino: number): Readonly<InodeRecord> | undefined {
    const hit = this.inodeCache.get(ino);
    if (hit !== undefined) return hit;
    const rec = this.inodes.get(ino);
    if (rec !== undefined) this.remember(ino, rec);
    return rec;
  }

  putInode(ino: number, rec: InodeRecord): void {
    this.inodes.putSync(ino, rec);
    this.remember(ino, copyRecord(rec));
  }

  private remember(ino: number, rec: InodeRecord): void {
    if (!this.cacheInodes) return;
    // Bounded: a tree of millions of files must not grow the mount's memory without limit.
    if (this.inodeCache.size >= INODE_CACHE_ENTRIES && !this.inodeCache.has(ino)) this.inodeCache.clear();
    this.inodeCache.set(ino, rec);
  }

  deleteInode(ino: number): void {
    this.inodeCache.delete(ino);
    this.inodes.removeSync(ino);
    for (const key of this.extents.getKeys({ start: inoPrefix(ino), end: inoPrefix(ino + 1) })) this.extents.removeSync(key);
    for (const key of this.xattrs.getKeys({ start: inoPrefix(ino), end: inoPrefix(ino + 1) })) this.xattrs.removeSync(key);
    this.contentCache.removeSync(ino);
    this.dirCache.removeSync(ino);
    this.orphans.removeSync(ino);
  }

  allocIno(): number {
    const ino = this.counters.get('nextIno') ?? ROOT_INO + 1;
    this.counters.putSync('nextIno', ino + 1);
    return ino;
  }

  inodeCount(): number {
    return this.inodes.getCount();
  }

  // --- directory entries

  lookup(parent: number, name: Buffer, rtx?: Transaction): number | undefined {
    if (rtx) return this.dirents.get(nameKey(parent, name), { transaction: rtx });
    const k = entryKey(parent, name);
    const hit = this.entryCache.get(k);
    if (hit !== undefined) return hit;
    const child = this.dirents.get(nameKey(parent, name));
    if (child !== undefined) this.rememberEntry(k, child);
    return child;
  }

  putEntry(parent: number, name: Buffer, child: number): void {
    this.dirents.putSync(nameKey(parent, name), child);
    this.rememberEntry(entryKey(parent, name), child);
  }

  removeEntry(parent: number, name: Buffer): void {
    this.dirents.removeSync(nameKey(parent, name));
    this.entryCache.delete(entryKey(parent, name));
  }

  private rememberEntry(k: string, child: number): void {
    if (!this.cacheInodes) return;
    if (this.entryCache.size >= ENTRY_CACHE_ENTRIES && !this.entryCache.has(k)) this.entryCache.clear();
    this.entryCache.set(k, child);
  }

  *listDir(parent: number, rtx?: Transaction): Iterable<{ name: Buffer; ino: number }> {
    const range = this.dirents.getRange({
      start: inoPrefix(parent),
      end: inoPrefix(parent + 1),
      ...(rtx ? { transaction: rtx } : {}),
    });
    for (const { key, value } of range) yield { name: Buffer.from(key.subarray(KEY_INO_BYTES)), ino: value };
  }

  /** Up to `limit` entries of `parent` after `name`, in readdir (key) order. */
  entriesAfter(parent: number, name: Buffer, limit: number): { name: Buffer; ino: number }[] {
    const out: { name: Buffer; ino: number }[] = [];
    const first = nameKey(parent, name);
    for (const { key, value } of this.dirents.getRange({ start: first, end: inoPrefix(parent + 1), limit: limit + 1 })) {
      if (out.length === 0 && Buffer.compare(key, first) === 0) continue;
      if (out.length >= limit) break;
      out.push({ name: Buffer.from(key.subarray(KEY_INO_BYTES)), ino: value });
    }
    return out;
  }

  dirIsEmpty(parent: number): boolean {
    for (const _ of this.dirents.getKeys({ start: inoPrefix(parent), end: inoPrefix(parent + 1), limit: 1 })) return false;
    return true;
  }

  // --- extents (block grid: blockNo * blockSize is the offset)

  getExtent(ino: number, blockNo: number): BlockRef | undefined {
    const v = this.extents.get(blockKey(ino, blockNo));
    return v === undefined ? undefined : decodeRef(v);
  }

  putExtent(ino: number, blockNo: number, ref: BlockRef): void {
    this.extents.putSync(blockKey(ino, blockNo), encodeRef(ref));
  }

  removeExtent(ino: number, blockNo: number): void {
    this.extents.removeSync(blockKey(ino, blockNo));
  }

  /** Extents with blockNo >= fromBlock, in order. */
  *extentsFrom(ino: number, fromBlock: number, rtx?: Transaction): Iterable<{ blockNo: number; ref: BlockRef }> {
    const range = this.extents.getRange({
      start: blockKey(ino, fromBlock),
      end: inoPrefix(ino + 1),
      ...(rtx ? { transaction: rtx } : {}),
    });
    for (const { key, value } of range) yield { blockNo: key.readUIntBE(KEY_INO_BYTES, KEY_INO_BYTES), ref: decodeRef(value) };
  }

  // --- xattrs

  getXattr(ino: number, name: Buffer): Buffer | undefined {
    return this.xattrs.get(nameKey(ino, name));
  }

  putXattr(ino: number, name: Buffer, value: Buffer): void {
    this.xattrs.putSync(nameKey(ino, name), value);
  }

  removeXattr(ino: number, name: Buffer): void {
    this.xattrs.removeSync(nameKey(ino, name));
  }

  *listXattrs(ino: number, rtx?: Transaction): Iterable<{ name: Buffer; value: Buffer }> {
    const range = this.xattrs.getRange({ start: inoPrefix(ino), end: inoPrefix(ino + 1), ...(rtx ? { transaction: rtx } : {}) });
    for (const { key, value } of range) yield { name: Buffer.from(key.subarray(KEY_INO_BYTES)), value: Buffer.from(value) };
  }

  // --- orphans: unlinked inodes still open; freed on release or at the next open of the state

  addOrphan(ino: number): void {
    this.orphans.putSync(ino, true);
  }

  listOrphans(): number[] {
    return [...this.orphans.getKeys()];
  }

  // --- snapshot caches

  getDirCache(ino: number, rtx?: Transaction): DirCacheValue | undefined {
    return rtx ? this.dirCache.get(ino, { transaction: rtx }) : this.dirCache.get(ino);
  }

  putDirCache(ino: number, v: DirCacheValue): void {
    this.dirCache.putSync(ino, v);
  }

  getContentCache(ino: number, rtx?: Transaction): FileContentCache | undefined {
    return rtx ? this.contentCache.get(ino, { transaction: rtx }) : this.contentCache.get(ino);
  }

  putContentCache(ino: number, v: FileContentCache): void {
    this.contentCache.putSync(ino, v);
  }

  /**
   * Directory `dir`'s entries (or an entry's attributes) changed: drop its cached meta id and every
   * ancestor's. Invariant: a dir without a cached id has no ancestor with one, so the walk stops at
   * the first uncached dir, except while a snapshot runs (then it records every dir it passes).
   */
  dirChanged(dir: number): void {
    let d: number | undefined = dir;
    for (let guard = 0; d !== undefined && guard < 1_000_000; guard++) {
      if (this.touched) this.touched.add(d);
      else if (this.dirCache.get(d) === undefined) return;
      this.dirCache.removeSync(d);
      d = this.getInode(d)?.parents[0];
    }
  }

  /** Inode `ino`'s attributes changed: every directory holding a name of it changes. */
  inodeChanged(ino: number, rec?: InodeRecord): void {
    const r = rec ?? this.getInode(ino);
    if (!r) return;
    for (const p of new Set(r.parents)) this.dirChanged(p);
  }

  /** A file's extents changed: its cached manifest is stale too. */
  contentChanged(ino: number, rec?: InodeRecord): void {
    if (this.touched) this.touched.add(ino);
    this.contentCache.removeSync(ino);
    this.inodeChanged(ino, rec);
  }

  isDirIno(ino: number): boolean {
    const r = this.getInode(ino);
    return r !== undefined && isDir(r);
  }
}
