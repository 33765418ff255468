// The live mount state in LMDB, encrypted at rest (live-crypto.ts, docs/FORMAT.md section 4):
// inodes, directory entries, block extents, xattrs, counters, orphans and the snapshot caches
// (per-dir meta ids, per-file manifests). Every method here is synchronous and meant to run inside
// `txn` (writes) or against a read transaction `rtx` (snapshots). Decoded inodes and directory
// entries are cached in memory (bounded), so a request rarely decrypts anything.

import { chmodSync, mkdirSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import { FragfsError } from '../errors.js';
import { LMDB_PERMISSIONS_MODE, lmdbFilePaths } from '../store/lmdb-files.js';
import { LmdbSpaceReserve } from '../store/lmdb-space-reserve.js';
import { lmdbError } from '../store/lmdb-errors.js';
import type { BlockRef } from '../fragment/tree-format.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, isDir, nowNs, type InodeRecord } from './inode.js';
import { ByteLru } from './byte-lru.js';
import { INDEX_BYTES, Kind, LiveCrypto, prefixEnd, type LiveKeys } from './live-crypto.js';
import {
  decodeDirCache,
  decodeDirent,
  decodeExtent,
  decodeInode,
  decodeNumber,
  decodePages,
  decodeXattr,
  encodeDirCache,
  encodeDirent,
  encodeExtent,
  encodeInode,
  encodeNumber,
  encodePages,
  encodeXattr,
  type DirCacheValue,
} from './live-records.js';

export type { DirCacheValue } from './live-records.js';

/** What the snapshot cache keeps of a large file: its manifest pages. */
export interface FileContentCache {
  pages: string[];
  /** Each page's own key (metadata version 3); absent in records written before pages had keys. */
  pageKeys?: Uint8Array[];
}

/**
 * Version of the live state's layout (the `format` database). 3 writes inode records of layout 2
 * (times in ns); a state of format 2 (inode records of layout 1, read as well) opens and is marked 3
 * by its first read-write open, so that a fragfs that reads only 2 refuses it with a clear line
 * instead of finding records it cannot decode.
 */
export const LIVE_FORMAT = 3;
/** The formats this fragfs opens. */
const READABLE_LIVE_FORMATS: readonly number[] = [2, 3];
const FORMAT_KEY = 'format';
/** A sealed constant: opening it proves the keys are this state's (another space's state fails here). */
const CHECK_TEXT = Buffer.from('fragfs live state');
/** Records opened together (one AES call for their keystreams) when a group or a listing is read. */
const GROUP_BATCH = 256;

/** The most of the environment's file `warm` reads (a bigger state is warmed in its first part). */
export const WARM_MAX_BYTES = 512 * 1024 * 1024;
/**
 * The map a writable-map state opens with. LMDB sizes the file to its map (a sparse file), and
 * lmdb-js doubles the map when the pages outgrow it, so the file stays within about twice what the
 * state holds instead of a fixed 1 GiB (which a read-only open still maps: it costs no disk there).
 */
export const WRITABLE_MAP_START_BYTES = 64 * 1024 * 1024;
const WARM_CHUNK_BYTES = 1024 * 1024;
/**
 * Memory for decoded records and live-state keys (LiveState's inode and entry caches, LiveCrypto's
 * index keys), unless the mount says otherwise (`--meta-cache-size`).
 */
export const DEFAULT_META_CACHE_BYTES = 16 * 1024 * 1024;
/** What one decoded inode record holds in V8's heap (object, boxed times, parents array), measured. */
export const INODE_RECORD_BYTES = 320;
/** What one cached directory entry holds (object, name Buffer, its key string), before the name's bytes. */
export const ENTRY_RECORD_BYTES = 240;
/** Changed directories remembered for the background writer; the oldest beyond are left to the snapshot. */
const CHANGED_DIRS_MAX = 100_000;
const NEXT_INO = 1;
const INO_RANGE = 1024;

/** entryCache key: the parent's number and the name's exact bytes (latin1 maps bytes 1:1). */
function entryKey(parent: number, name: Uint8Array): string {
  return `${parent}/${Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1')}`;
}

function copyRecord(rec: InodeRecord): InodeRecord {
  return { ...rec, parents: rec.parents.slice() };
}

export interface StateOptions {
  /** The folder of the LMDB environment. */
  path: string;
  readOnly: boolean;
  owner: { uid: number; gid: number };
  keys: LiveKeys;
  /** Bytes for the caches of decoded records and keys (default DEFAULT_META_CACHE_BYTES). */
  metaCacheBytes?: number;
  /**
   * Read-write only: open LMDB with a writable map (MDB_WRITEMAP), whose commits store into memory
   * instead of copying dirty pages and writing each with a syscall. A store into a hole of the file
   * that the disk cannot fill is SIGBUS, so every write transaction first has `room` check that the
   * blocks it may write are allocated (LmdbSpaceReserve.guardSync), with this fallocate(2) on the
   * JS thread (LocalFs.fallocateSync). Only for a file system where that fallocate works.
   */
  writableMap?: { fallocateSync: (path: Buffer, punch: boolean, offset: number, length: number) => number };
}

/** What the entry cache keeps of an entry (its key holds the name). */
interface CachedEntry {
  ino: number;
  typeBits: number;
}

/** A directory entry as the state keeps it. */
export interface StateEntry {
  name: Buffer;
  ino: number;
  /** The child's type bits (S_IFMT part of its mode). */
  typeBits: number;
}

export class LiveState {
  private readonly root: RootDatabase;
  private readonly records: Database<Buffer, Buffer>;
  private readonly crypto: LiveCrypto;
  /** While a snapshot runs: every dir and file invalidated meanwhile (its caches must not be written back). */
  touched: Set<number> | null = null;
  /**
   * Directories whose own entries (or an entry's attributes) changed, and when (ms), since the
   * background writer last wrote them: the candidates for writing ahead of the next snapshot.
   */
  readonly changedDirs = new Map<number, number>();
  /**
   * Decoded inode records by ino, as last written or read outside a read transaction. Callers get
   * copies, so mutating a record without putInode changes nothing; a transaction that throws drops
   * the whole cache, because its putInode calls never happened.
   */
  private readonly inodeCache: ByteLru<number, InodeRecord>;
  /** Directory entries seen lately, (parent, name bytes) -> child, kept in step by putEntry and removeEntry. */
  private readonly entryCache: ByteLru<string, CachedEntry>;
  /** A read-only state may be read while a read-write mount in another process changes it: no cache. */
  private readonly cacheRecords: boolean;
  private readonly path: string;
  private closing = false;
  /** The inode range taken from the counter (allocIno); the counter already holds its end. */
  private nextIno: number | undefined;
  private inoRangeEnd = 0;

  /**
   * Disk blocks reserved ahead of LMDB's writes in the data file (lmdb-space-reserve.ts); with a
   * writable map, checked before every write transaction. Undefined when read-only.
   */
  readonly room: LmdbSpaceReserve | undefined;
  /** Opened with MDB_WRITEMAP (StateOptions.writableMap). */
  readonly writableMap: boolean;

  constructor(o: StateOptions) {
    this.cacheRecords = !o.readOnly;
    this.writableMap = !o.readOnly && o.writableMap !== undefined;
    const dataPath = lmdbFilePaths(o.path, false).data;
    const fallocateSync = o.writableMap?.fallocateSync;
    this.room = o.readOnly
      ? undefined
      : new LmdbSpaceReserve(
          dataPath,
          4096,
          this.writableMap && fallocateSync
            ? { usedBytes: () => this.usedBytes(), fallocateSync: (punch, offset, length) => fallocateSync(Buffer.from(dataPath), punch, offset, length) }
            : undefined,
        );
    this.path = o.path;
    // The budget: 40 % decoded inodes, 35 % entries, 25 % index keys (what a walk touches per entry).
    const budget = o.metaCacheBytes ?? DEFAULT_META_CACHE_BYTES;
    this.inodeCache = new ByteLru(Math.floor(budget * 0.4), (r) => INODE_RECORD_BYTES + 8 * r.parents.length + (r.target?.length ?? 0));
    this.entryCache = new ByteLru(Math.floor(budget * 0.35), (_e, k) => ENTRY_RECORD_BYTES + k.length);
    this.crypto = new LiveCrypto(o.keys, Math.floor(budget * 0.25));
    if (!o.readOnly) {
      mkdirSync(o.path, { recursive: true, mode: 0o700 });
      chmodSync(o.path, 0o700);
    }
    // noSync: a commit is a write into the OS page cache, which survives kill -9 of the process; only
    // `sync()` (fsync, flushAll) pays for an fdatasync. Power loss can lose commits since the last sync.
    try {
      // Files lmdb-js would create itself are private (LiveVfs.open made both already).
      this.root = open({ path: o.path, noSync: true, useWritemap: this.writableMap, readOnly: o.readOnly, maxDbs: 4, mapSize: this.writableMap ? WRITABLE_MAP_START_BYTES : 1 << 30, permissionsMode: LMDB_PERMISSIONS_MODE } as Parameters<typeof open>[0]);
    } catch (e) {
      throw stateError(e, o.path);
    }
    if (!o.readOnly) for (const f of ['data.mdb', 'lock.mdb']) tighten(join(o.path, f));
    const format = this.root.openDB<number, string>({ name: 'format' });
    this.records = this.root.openDB({ name: 'records', keyEncoding: 'binary', encoding: 'binary' });
    const version = format.get(FORMAT_KEY);
    if (version === undefined) {
      if (o.readOnly) throw new FragfsError('NOT_FOUND', `no live state at ${o.path}`);
      this.txn(() => {
        format.putSync(FORMAT_KEY, LIVE_FORMAT);
        this.putSealed(this.crypto.index(Kind.CHECK, 0), CHECK_TEXT);
      });
    } else if (!READABLE_LIVE_FORMATS.includes(version)) {
      throw new FragfsError('BAD_STORE', `the live state at ${o.path} has layout ${version}; this fragfs reads ${READABLE_LIVE_FORMATS.join(' and ')}`);
    }
    const check = this.getSealed(this.crypto.index(Kind.CHECK, 0));
    if (check === undefined || !check.equals(CHECK_TEXT)) {
      throw new FragfsError('BAD_STORE', `the live state at ${o.path} does not belong to this store space`);
    }
    if (version !== undefined && version !== LIVE_FORMAT && !o.readOnly) this.txn(() => format.putSync(FORMAT_KEY, LIVE_FORMAT));
    if (!o.readOnly && this.getInode(ROOT_INO) === undefined) {
      const now = nowNs();
      this.txn(() => {
        this.putInode(ROOT_INO, {
          mode: S_IFDIR | 0o755,
          uid: o.owner.uid,
          gid: o.owner.gid,
          size: 0,
          atimeNs: now,
          mtimeNs: now,
          ctimeNs: now,
          nlink: 2,
          alloc: 0,
          parents: [],
        });
        this.putCounter(NEXT_INO, ROOT_INO + 1);
      });
    }
  }

  // --- sealed records

  private getSealed(key: Buffer, rtx?: Transaction): Buffer | undefined {
    const v = rtx ? this.records.get(key, { transaction: rtx }) : this.records.get(key);
    return v === undefined ? undefined : this.crypto.open(key, v);
  }

  private putSealed(key: Buffer, plain: Buffer): void {
    this.put(key, this.crypto.seal(key, plain));
  }

  /** Every member of a group (kind, id), opened GROUP_BATCH at a time (one AES call each). */
  private *group(kind: Kind, id: number, rtx?: Transaction): Iterable<{ key: Buffer; plain: Buffer }> {
    const start = this.crypto.index(kind, id);
    const range = this.records.getRange({ start, end: prefixEnd(start), ...(rtx ? { transaction: rtx } : {}) });
    let keys: Buffer[] = [];
    let values: Buffer[] = [];
    for (const { key, value } of range) {
      keys.push(Buffer.from(key));
      values.push(Buffer.from(value));
      if (keys.length === GROUP_BATCH) {
        yield* this.opened(keys, values);
        keys = [];
        values = [];
      }
    }
    yield* this.opened(keys, values);
  }

  private *opened(keys: Buffer[], values: Buffer[]): Iterable<{ key: Buffer; plain: Buffer }> {
    const plains = this.crypto.openMany(keys, values);
    for (let i = 0; i < keys.length; i++) yield { key: keys[i]!, plain: plains[i]! };
  }

  private groupKeys(kind: Kind, id: number): Buffer[] {
    const start = this.crypto.index(kind, id);
    return [...this.records.getKeys({ start, end: prefixEnd(start) })].map((k) => Buffer.from(k));
  }

  /**
   * Where LMDB's pages end in the data file, in bytes, as of the last commit (with a writable map the
   * file itself is as large as the map).
   */
  usedBytes(): number {
    // env.info() (mdb_env_info) is the one part of getStats() this needs, at about 1 us.
    const env = (this.root as unknown as { env: { info(): { lastPageNumber: number } } }).env;
    this.pageBytes ??= (this.root.getStats() as { pageSize: number }).pageSize;
    return (env.info().lastPageNumber + 1) * this.pageBytes;
  }
  private pageBytes: number | undefined;

  /** One atomic write transaction. */
  txn<T>(fn: () => T): T {
    const outer = !this.inTxn;
    if (outer) {
      // With a writable map, NO_SPACE here rather than SIGBUS in LMDB.
      this.room?.guardSync('cannot change the live state');
      this.inTxn = true;
      this.cachesTouched = false;
      this.inoRangeTaken = false;
    }
    try {
      return this.root.transactionSync(fn);
    } catch (e) {
      // The transaction's writes were rolled back; the caches may hold some of them, and an inode
      // range it took from the counter was not taken after all. A transaction that changed no
      // inode or entry (most failures: ENOENT, EEXIST, ENOTEMPTY, EACCES found before any change)
      // leaves the caches as they are: everything in them was read as committed. Dropping them on
      // every such failure made an `rm -rf` read every record again (the kernel's SETATTR of the
      // ctime of each file it just unlinked fails with ENOENT).
      if (this.cachesTouched) {
        this.inodeCache.clear();
        this.entryCache.clear();
      }
      if (this.inoRangeTaken) this.nextIno = undefined;
      if (e instanceof FragfsError) throw e;
      throw stateError(e, this.path);
    } finally {
      if (outer) this.inTxn = false;
    }
  }

  /**
   * Every write of a record goes through these two. One made outside txn() is a transaction of its
   * own (lmdb-js commits it alone), so with a writable map it runs the room's guard first as well.
   */
  private put(key: Buffer, value: Buffer): void {
    if (!this.inTxn) this.room?.guardSync('cannot change the live state');
    this.records.putSync(key, value);
  }

  private del(key: Buffer): void {
    if (!this.inTxn) this.room?.guardSync('cannot change the live state');
    this.records.removeSync(key);
  }

  /** Inside txn: whether one is running, and whether it changed a cached inode or entry or the inode range. */
  private inTxn = false;
  private cachesTouched = false;
  private inoRangeTaken = false;

  /**
   * A read transaction that sees every commit so far. lmdb-js shares one read transaction and renews
   * it lazily (after a commit, in a microtask): without the reset, a snapshot taken right after a
   * commit could read the state from before it.
   */
  readTxn(): Transaction {
    (this.root as unknown as { resetReadTxn(): void }).resetReadTxn();
    return this.root.useReadTransaction();
  }

  /** Makes every committed transaction durable (fdatasync of the environment). */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      // `sync` (mdb_env_sync, forced) is in lmdb-js but missing from its typings.
      (this.root as unknown as { sync(cb: (err: unknown) => void): void }).sync((err) => (err ? reject(stateError(err, this.path)) : resolve()));
    });
  }

  /**
   * Reads the environment's file once, front to back, on libuv's thread pool, so a first walk of the
   * tree finds LMDB's pages in the page cache instead of faulting them in one by one on the JS
   * thread. Bounded by `maxBytes`; stops when the state closes; errors are ignored (it only saves time).
   */
  async warm(maxBytes = WARM_MAX_BYTES): Promise<number> {
    // With a writable map the file is as large as the map; past LMDB's pages it holds nothing.
    if (this.writableMap) maxBytes = Math.min(maxBytes, this.usedBytes());
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

  // --- counters

  private getCounter(id: number): number | undefined {
    const v = this.getSealed(this.crypto.index(Kind.COUNTER, id));
    return v === undefined ? undefined : decodeNumber(v);
  }

  private putCounter(id: number, n: number): void {
    this.putSealed(this.crypto.index(Kind.COUNTER, id), encodeNumber(n));
  }

  /** The number the next allocIno hands out (never below what was handed out before). */
  setNextIno(next: number): void {
    this.putCounter(NEXT_INO, Math.max(next, this.getCounter(NEXT_INO) ?? ROOT_INO + 1));
    this.nextIno = undefined;
  }

  /**
   * A new inode number, never handed out before. Numbers are taken from the counter in ranges of
   * INO_RANGE (one counter write per range, not per create); a crash skips the rest of a range,
   * which costs nothing but numbers.
   */
  allocIno(): number {
    if (this.nextIno === undefined || this.nextIno >= this.inoRangeEnd) {
      const start = this.getCounter(NEXT_INO) ?? ROOT_INO + 1;
      this.inoRangeTaken = true;
      this.putCounter(NEXT_INO, start + INO_RANGE);
      this.nextIno = start;
      this.inoRangeEnd = start + INO_RANGE;
    }
    return this.nextIno++;
  }

  // --- inodes

  getInode(ino: number, rtx?: Transaction): InodeRecord | undefined {
    if (rtx) {
      const v = this.getSealed(this.crypto.index(Kind.INODE, ino), rtx);
      return v === undefined ? undefined : decodeInode(v);
    }
    const rec = this.peekInode(ino);
    return rec === undefined ? undefined : copyRecord(rec);
  }

  /**
   * The record itself, not a copy: for reading on the way through, never to change. The next write
   * of this inode replaces it.
   */
  peekInode(ino: number): Readonly<InodeRecord> | undefined {
    const hit = this.inodeCache.get(ino);
    if (hit !== undefined) return hit;
    const v = this.getSealed(this.crypto.index(Kind.INODE, ino));
    if (v === undefined) return undefined;
    const rec = decodeInode(v);
    this.remember(ino, rec);
    return rec;
  }

  /**
   * The records of `inos` (undefined where there is none), as peekInode gives them (not copies: for
   * reading on the way through, a listing's attributes), those not in memory read with one AES call
   * for their keys and one for their values. They are kept only where the cache has room
   * (ByteLru.offer): a walk bigger than the cache leaves it as it was and pays no eviction an entry.
   */
  inodesOf(inos: readonly number[]): (Readonly<InodeRecord> | undefined)[] {
    const out = new Array<Readonly<InodeRecord> | undefined>(inos.length);
    const missing: number[] = [];
    for (let i = 0; i < inos.length; i++) {
      const hit = this.cacheRecords ? this.inodeCache.get(inos[i]!) : undefined;
      if (hit !== undefined) out[i] = hit;
      else missing.push(i);
    }
    for (let from = 0; from < missing.length; from += GROUP_BATCH) {
      const at = missing.slice(from, from + GROUP_BATCH);
      const keys = this.crypto.indexMany(Kind.INODE, at.map((i) => inos[i]!));
      const found: number[] = [];
      const foundKeys: Buffer[] = [];
      const values: Buffer[] = [];
      for (let j = 0; j < at.length; j++) {
        const v = this.records.get(keys[j]!);
        if (v === undefined) continue;
        found.push(at[j]!);
        foundKeys.push(keys[j]!);
        values.push(v);
      }
      const plains = this.crypto.openMany(foundKeys, values);
      for (let j = 0; j < found.length; j++) {
        const i = found[j]!;
        const rec = decodeInode(plains[j]!);
        out[i] = rec;
        if (this.cacheRecords) this.inodeCache.offer(inos[i]!, rec);
      }
    }
    return out;
  }

  putInode(ino: number, rec: InodeRecord): void {
    this.cachesTouched = true;
    this.putSealed(this.crypto.index(Kind.INODE, ino), encodeInode(rec));
    this.remember(ino, copyRecord(rec));
  }

  private remember(ino: number, rec: InodeRecord): void {
    if (!this.cacheRecords) return;
    // Bounded in bytes: a walk of millions of files leaves the mount's memory where the budget says.
    this.inodeCache.set(ino, rec);
  }

  /** Removes an inode and everything it owns (extents, xattrs, caches, orphan mark). */
  deleteInode(ino: number): void {
    // The record says what else there can be: extents and a manifest only for a regular file, a
    // cached meta id only for a folder, xattrs only when it counts some (getxattr trusts the count
    // too). Each look skipped is a range scan or a B-tree descent (an unlink cost 10 of them).
    const rec = this.peekInode(ino);
    const type = rec === undefined ? undefined : rec.mode & S_IFMT;
    this.cachesTouched = true;
    this.inodeCache.delete(ino);
    this.del(this.crypto.index(Kind.INODE, ino));
    if (type === undefined || type === S_IFREG) {
      for (const k of this.groupKeys(Kind.EXTENTS, ino)) this.del(k);
      this.del(this.crypto.index(Kind.CONTENT_CACHE, ino));
    }
    if (rec === undefined || rec.xattrs) for (const k of this.groupKeys(Kind.XATTRS, ino)) this.del(k);
    if (type === undefined || type === S_IFDIR) this.del(this.crypto.index(Kind.DIR_CACHE, ino));
    this.del(orphanKey(this.crypto, ino));
  }

  // --- directory entries

  lookup(parent: number, name: Uint8Array, rtx?: Transaction): StateEntry | undefined {
    if (rtx) return this.readEntry(parent, name, rtx);
    const k = entryKey(parent, name);
    const hit = this.entryCache.get(k);
    // The name is the caller's bytes: a cached name Buffer would pin a slab of Node's Buffer pool.
    if (hit !== undefined) return { name: Buffer.from(name.buffer, name.byteOffset, name.byteLength), ino: hit.ino, typeBits: hit.typeBits };
    const e = this.readEntry(parent, name);
    if (e !== undefined) this.rememberEntry(k, { ino: e.ino, typeBits: e.typeBits });
    return e;
  }

  private readEntry(parent: number, name: Uint8Array, rtx?: Transaction): StateEntry | undefined {
    const v = this.getSealed(this.crypto.named(Kind.DIRENTS, parent, name), rtx);
    if (v === undefined) return undefined;
    const e = decodeDirent(v);
    // A tag collision (2^-128) would show up here as another name: treat as absent.
    return e.name.equals(name) ? { name: e.name, ino: e.ino, typeBits: e.typeBits } : undefined;
  }

  putEntry(parent: number, name: Uint8Array, child: number, typeBits: number): void {
    const bits = typeBits & S_IFMT;
    this.cachesTouched = true;
    this.putSealed(this.crypto.named(Kind.DIRENTS, parent, name), encodeDirent(child, bits, name));
    this.rememberEntry(entryKey(parent, name), { ino: child, typeBits: bits });
  }

  removeEntry(parent: number, name: Uint8Array): void {
    this.cachesTouched = true;
    this.del(this.crypto.named(Kind.DIRENTS, parent, name));
    this.entryCache.delete(entryKey(parent, name));
  }

  private rememberEntry(k: string, e: CachedEntry): void {
    if (!this.cacheRecords) return;
    this.entryCache.set(k, e);
  }

  /** The entries of `parent`, in the state's order (stable while the directory does not change). */
  *listDir(parent: number, rtx?: Transaction): Iterable<StateEntry> {
    for (const { plain } of this.group(Kind.DIRENTS, parent, rtx)) {
      const e = decodeDirent(plain);
      yield { name: e.name, ino: e.ino, typeBits: e.typeBits };
    }
  }

  /** Up to `limit` entries of `parent` after `name`, in listDir order. */
  entriesAfter(parent: number, name: Uint8Array, limit: number): StateEntry[] {
    const out: StateEntry[] = [];
    const first = this.crypto.named(Kind.DIRENTS, parent, name);
    const end = prefixEnd(first.subarray(0, INDEX_BYTES));
    for (const { key, value } of this.records.getRange({ start: first, end, limit: limit + 1 })) {
      if (out.length === 0 && Buffer.compare(key, first) === 0) continue;
      if (out.length >= limit) break;
      const e = decodeDirent(this.crypto.open(Buffer.from(key), value));
      out.push({ name: e.name, ino: e.ino, typeBits: e.typeBits });
    }
    return out;
  }

  dirIsEmpty(parent: number): boolean {
    const start = this.crypto.index(Kind.DIRENTS, parent);
    for (const _ of this.records.getKeys({ start, end: prefixEnd(start), limit: 1 })) return false;
    return true;
  }

  // --- extents (block grid: blockNo * blockSize is the offset)

  getExtent(ino: number, blockNo: number, rtx?: Transaction): BlockRef | undefined {
    const v = this.getSealed(this.crypto.numbered(Kind.EXTENTS, ino, Kind.EXTENT, blockNo), rtx);
    return v === undefined ? undefined : decodeExtent(v).ref;
  }

  putExtent(ino: number, blockNo: number, ref: BlockRef): void {
    this.putSealed(this.crypto.numbered(Kind.EXTENTS, ino, Kind.EXTENT, blockNo), encodeExtent(blockNo, ref));
  }

  removeExtent(ino: number, blockNo: number): void {
    this.del(this.crypto.numbered(Kind.EXTENTS, ino, Kind.EXTENT, blockNo));
  }

  /** Extents with blockNo >= fromBlock, in block order. */
  extentsFrom(ino: number, fromBlock: number, rtx?: Transaction): { blockNo: number; ref: BlockRef }[] {
    const out: { blockNo: number; ref: BlockRef }[] = [];
    for (const { plain } of this.group(Kind.EXTENTS, ino, rtx)) {
      const x = decodeExtent(plain);
      if (x.blockNo >= fromBlock) out.push(x);
    }
    return out.sort((a, b) => a.blockNo - b.blockNo);
  }

  // --- xattrs

  getXattr(ino: number, name: Uint8Array): Buffer | undefined {
    const v = this.getSealed(this.crypto.named(Kind.XATTRS, ino, name));
    if (v === undefined) return undefined;
    const x = decodeXattr(v);
    return x.name.equals(name) ? x.value : undefined;
  }

  putXattr(ino: number, name: Uint8Array, value: Uint8Array): void {
    this.putSealed(this.crypto.named(Kind.XATTRS, ino, name), encodeXattr(name, value));
  }

  removeXattr(ino: number, name: Uint8Array): void {
    this.del(this.crypto.named(Kind.XATTRS, ino, name));
  }

  /** Every xattr of `ino`, sorted by name bytes. */
  listXattrs(ino: number, rtx?: Transaction): { name: Buffer; value: Buffer }[] {
    const out = [...this.group(Kind.XATTRS, ino, rtx)].map(({ plain }) => decodeXattr(plain));
    return out.sort((a, b) => Buffer.compare(a.name, b.name));
  }

  // --- orphans: unlinked inodes still open; freed on release or at the next open of the state

  addOrphan(ino: number): void {
    this.putSealed(orphanKey(this.crypto, ino), encodeNumber(ino));
  }

  listOrphans(): number[] {
    return [...this.group(Kind.ORPHAN, 0)].map(({ plain }) => decodeNumber(plain));
  }

  // --- snapshot caches

  getDirCache(ino: number, rtx?: Transaction): DirCacheValue | undefined {
    const v = this.getSealed(this.crypto.index(Kind.DIR_CACHE, ino), rtx);
    return v === undefined ? undefined : decodeDirCache(v);
  }

  putDirCache(ino: number, v: DirCacheValue): void {
    this.putSealed(this.crypto.index(Kind.DIR_CACHE, ino), encodeDirCache(v));
  }

  private hasDirCache(ino: number): boolean {
    return this.records.doesExist(this.crypto.index(Kind.DIR_CACHE, ino));
  }

  getContentCache(ino: number, rtx?: Transaction): FileContentCache | undefined {
    const v = this.getSealed(this.crypto.index(Kind.CONTENT_CACHE, ino), rtx);
    return v === undefined ? undefined : decodePages(v);
  }

  putContentCache(ino: number, v: FileContentCache): void {
    this.putSealed(this.crypto.index(Kind.CONTENT_CACHE, ino), encodePages(v.pages, v.pageKeys));
  }

  /**
   * Directory `dir`'s entries (or an entry's attributes) changed: drop its cached meta id and every
   * ancestor's. Invariant: a dir without a cached id has no ancestor with one, so the walk stops at
   * the first uncached dir, except while a snapshot runs (then it records every dir it passes).
   */
  dirChanged(dir: number): void {
    // With write-ahead on, the walk goes up to the root: the ancestors changed too, as a snapshot
    // sees them, and a folder counts as quiet only when nothing below it changes (else writing it
    // ahead serializes a busy subfolder again on every tick: a folder taking 100,000 creates was
    // written out whole once a second). Beyond the bound a folder is left to the snapshot itself
    // (no reordering: see ByteLru on why).
    const now = this.cacheRecords ? Date.now() : 0;
    let invalidating = true;
    let d: number | undefined = dir;
    for (let guard = 0; d !== undefined && guard < 1_000_000; guard++) {
      if (this.cacheRecords && (this.changedDirs.size < CHANGED_DIRS_MAX || this.changedDirs.has(d))) this.changedDirs.set(d, now);
      if (invalidating) {
        if (this.touched) this.touched.add(d);
        else if (!this.hasDirCache(d)) invalidating = false;
        if (invalidating) this.del(this.crypto.index(Kind.DIR_CACHE, d));
      }
      if (!invalidating && !this.cacheRecords) return;
      const up: number | undefined = this.peekInode(d)?.parents[0];
      d = up === d ? undefined : up;
    }
  }

  /** Inode `ino`'s attributes changed: every directory holding a name of it changes. */
  inodeChanged(ino: number, rec?: Readonly<InodeRecord>): void {
    const r = rec ?? this.peekInode(ino);
    if (!r) return;
    for (const p of new Set(r.parents)) this.dirChanged(p);
  }

  /** A file's extents changed: its cached manifest is stale too. */
  contentChanged(ino: number, rec?: Readonly<InodeRecord>): void {
    if (this.touched) this.touched.add(ino);
    this.del(this.crypto.index(Kind.CONTENT_CACHE, ino));
    this.inodeChanged(ino, rec);
  }

  isDirIno(ino: number): boolean {
    const r = this.peekInode(ino);
    return r !== undefined && isDir(r);
  }
}

/** Orphans form one group (id 0), so the next open lists them without scanning the state. */
function orphanKey(crypto: LiveCrypto, ino: number): Buffer {
  return crypto.numbered(Kind.ORPHAN, 0, Kind.ORPHAN, ino);
}

/** Files of the environment are the mounting user's alone (LMDB creates them 0644). */
function tighten(file: string): void {
  try {
    chmodSync(file, 0o600);
  } catch {
    // not there yet (read-only) or not ours: the folder's 0700 still keeps others out
  }
}

/**
 * An LMDB failure as a FragfsError: a full disk is NO_SPACE (ENOSPC to the program that asked, never
 * EIO), anything else IO naming the state (src/store/lmdb-errors.ts knows how LMDB reports a full disk).
 */
export function stateError(e: unknown, path: string): FragfsError {
  return lmdbError(e, 'cannot change the live state at', path);
}
