// The read-write filesystem behind `fragfs mount`: POSIX operations by inode and name bytes over the
// encrypted live state (LMDB) and the repo, with per-file write buffers, a shared block cache and
// incremental snapshots that hold every file as it was after its last close.

import { existsSync } from 'node:fs';
import { chmod, mkdir, statfs as fsStatfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { FragfsError, isFragfsError } from '../errors.js';
import type { SnapshotObject } from '../fragment/tree-format.js';
import { PackStore } from '../pack/pack-store.js';
import { localFs } from '../local/local-fs.js';
import { isRemoteLocation, localFolderOf } from '../remote/store-site.js';
import type { Repo } from '../repo/repo.js';
import { writeSnapshot } from '../repo/tree-writer.js';
import { lmdbFilePaths, prepareLmdbFiles } from '../store/lmdb-files.js';
import { LmdbSpaceReserve } from '../store/lmdb-space-reserve.js';
import { STATFS_UNIT_BYTES, StoreUsage } from '../store/store-usage.js';
import { BlockCache, DEFAULT_CACHE_BYTES } from './block-cache.js';
import { checkName, createNode, getNode, linkNode, lookupChild, removeNode, renameNode, where, type Found } from './dir-ops.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, S_IFLNK, isDir, isReg, isSymlink, nowNs, toAttr, type InodeRecord } from './inode.js';
import { LiveImport } from './live-import.js';
import { liveKeysOf } from './live-keys.js';
import { migrateLiveState, OLD_STATE_FILE } from './live-migrate.js';
import { ByteLru } from './byte-lru.js';
import { LiveState, type DirCacheValue, type FileContentCache, type StateOptions } from './live-state.js';
import { OpenFile, type FileContext } from './open-file.js';
import { DEFAULT_READ_AHEAD_BYTES, newReadAheadState, type ReadAheadState } from './prefetch.js';
import { SIBLING_FILES, SiblingStream } from './sibling-prefetch.js';
import { SnapshotWriter } from './snapshot-writer.js';
import {
  type Accessor,
  checkAccess,
  checkChown,
  checkOwner,
  MAY_READ,
  MAY_WRITE,
  openMask,
  permits,
  xattrMask,
} from './permissions.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  type Attr,
  type AttrChanges,
  type Caller,
  type DirEntry,
  type StatFs,
  type Vfs,
} from './vfs-api.js';
import { DEFAULT_WRITE_BUFFER_BYTES, WriteBuffer } from './write-buffer.js';

export interface LiveVfsOptions {
  repo: Repo;
  /** Folder of the live state (STORE/live/<space>/): the LMDB environment is its `state` folder. */
  statePath: string;
  readOnly?: boolean;
  /** Bytes of decrypted blocks kept in memory (default DEFAULT_CACHE_BYTES). */
  cacheBytes?: number;
  /** Bytes of dirty block images buffered before the oldest are stored (default DEFAULT_WRITE_BUFFER_BYTES). */
  writeBufferBytes?: number;
  /** Bytes of decoded live-state records and keys kept in memory (default DEFAULT_META_CACHE_BYTES). */
  metaCacheBytes?: number;
  /** Owner of the root dir of a fresh state (default: this process). */
  owner?: { uid: number; gid: number };
  /** What snapshots record as their source (e.g. the mount point), as bytes. */
  source?: Buffer;
  /** Bytes read ahead of a sequential reader (default 8 MiB). */
  readAheadBytes?: number;
  /**
   * Check POSIX permissions for this accessor in every operation (a mount without the kernel's
   * default_permissions, where the kernel lets only the mounting user in). Unset: no checks, the
   * kernel makes them. Ignored on a read-only vfs.
   */
  permissionsFor?: Accessor;
}

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o010;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const NO_ID = 0xffffffff;
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
/** Largest file size: blocks are numbered in 48 bits and sizes must stay exact doubles. */
const MAX_FILE_BYTES = Number.MAX_SAFE_INTEGER;
/** What one metadata change may write into the live state's file (its records and tree pages). */
const CHANGE_BYTES = 4096;
/** Free space after which writes are taken again once the disk was found full. */
const ROOM_AGAIN_BYTES = 64 * 1024 * 1024;

interface Handle {
  ino: number;
  flags: number;
  file?: OpenFile;
  ra: ReadAheadState;
}

/** The live state's LMDB environment inside the live folder. */
/** How often a file closed while its remote store was out of reach is flushed again. */
const UNSTORED_RETRY_MS = 2000;
/** A folder whose entries have not changed for this long is written ahead of the next snapshot. */
export const WRITE_AHEAD_QUIET_MS = 2000;
const WRITE_AHEAD_TICK_MS = 1000;
/**
 * Over this share of a tick spent serving (event-loop utilization), writing ahead waits: a bulk write
 * runs on this thread, and an untar of 12,000 files took 12.3-12.6 s with folders written beside it,
 * 11.0-11.5 s without. The folders are written once the writer pauses, or once they have waited
 * WRITE_AHEAD_MAX_DEFER_MS, so a writer that never pauses still finds most of its tree written.
 */
const WRITE_AHEAD_BUSY = 0.5;
export const WRITE_AHEAD_MAX_DEFER_MS = 20_000;
/** Names of inodes looked up lately, kept for read-ahead across files. */
const LAST_NAMES = 4096;
/** Listings with attributes kept for naming the files opened after them (a few walkers at once). */
const KEPT_LISTINGS = 4;
/** Folders (each with its uncached subfolders) written ahead in one read transaction. */
const WRITE_AHEAD_BATCH = 64;

export function stateDirOf(statePath: string): string {
  return join(statePath, 'state');
}

export class LiveVfs implements Vfs {
  readonly readOnly: boolean;
  readonly checksPermissions: boolean;
  /** Whose permissions every operation checks; undefined when the kernel checks them. */
  private readonly who: Accessor | undefined;
  private readonly ctx: FileContext;
  private readonly handles = new Map<number, Handle>();
  private readonly freeFhs: number[] = [];
  private nextFh = 0;
  private readonly files = new Map<number, OpenFile>();
  /** Handles open on each directory (a removed directory lives on until its last one closes). */
  private readonly openDirs = new Map<number, number>();
  private readonly source: Buffer;
  private closed = false;
  private snapshotting: Promise<unknown> = Promise.resolve();
  /** Writes folders that stopped changing ahead of the next snapshot (see writeAhead). */
  private aheadTimer: NodeJS.Timeout | undefined;
  private writingAhead = false;
  private readonly siblings = new SiblingStream();
  /**
   * While a snapshot takes its instant (docs/DESIGN.md, "Snapshots"): data changes wait here, so the
   * instant sees every write acknowledged before it, stored and committed.
   */
  private gate: Promise<void> | null = null;
  /** Data changes in progress (writes, truncates, fallocate) and who waits for them to end. */
  private active = 0;
  private idle: (() => void)[] = [];
  /** Disk blocks reserved ahead in the live state's file, so LMDB never meets a full disk. */
  private readonly room: LmdbSpaceReserve;
  /** When a store of data last failed for want of space (0: it has not); writes then fail fast. */
  private fullSinceMs = 0;
  private fullCheckedMs = 0;
  /** What the store takes and the room beside it, for statfs (made at the first). */
  private usage: StoreUsage | undefined;

  private constructor(
    private readonly repo: Repo,
    private readonly state: LiveState,
    private readonly statePath: string,
    o: LiveVfsOptions,
  ) {
    this.readOnly = o.readOnly === true || repo.readOnly;
    this.who = this.readOnly ? undefined : o.permissionsFor;
    this.checksPermissions = this.who !== undefined;
    const threads = availableParallelism();
    // A remote store's stores each wait a round trip: as many in flight as it serves at once.
    const storesInFlight = Math.max(threads * 2 + 2, Math.min(64, repo.store.parallelism ?? 0));
    this.ctx = {
      state,
      repo,
      cache: new BlockCache(repo, o.cacheBytes ?? DEFAULT_CACHE_BYTES),
      wb: new WriteBuffer(o.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES, storesInFlight, storesInFlight + 2),
      blockSize: repo.blockSize,
      readAheadBytes: o.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES,
      onStoreError: (e) => {
        if (e instanceof FragfsError && e.code === 'NO_SPACE') this.fullSinceMs = Date.now();
      },
    };
    this.source = o.source ?? Buffer.from(statePath);
    this.room = state.room ?? new LmdbSpaceReserve(lmdbFilePaths(stateDirOf(statePath), false).data);
  }

  static async open(o: LiveVfsOptions): Promise<LiveVfs> {
    if (!o || !o.repo || typeof o.statePath !== 'string' || o.statePath.length === 0) {
      throw new FragfsError('INVALID', 'LiveVfs.open needs a repo and a statePath');
    }
    for (const k of ['cacheBytes', 'writeBufferBytes', 'readAheadBytes', 'metaCacheBytes'] as const) {
      const v = o[k];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new FragfsError('INVALID', `${k} must be a whole number of bytes`);
    }
    const owner = o.owner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const readOnly = o.readOnly === true || o.repo.readOnly;
    const keys = liveKeysOf(o.repo);
    const dir = stateDirOf(o.statePath);
    if (existsSync(join(o.statePath, OLD_STATE_FILE))) {
      if (readOnly) {
        throw new FragfsError('BAD_STORE', `the live state at ${o.statePath} is of an older fragfs: mount it read-write once to convert it`);
      }
      await migrateLiveState(o.statePath, dir, keys, owner);
    }
    if (!readOnly) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    }
    // LMDB would make its lock file sparse and write it through a memory map: on a full disk that is
    // SIGBUS. The files are made here, with real blocks, 0600 (src/store/lmdb-files.ts).
    if (!readOnly || existsSync(dir)) await prepareLmdbFiles(lmdbFilePaths(dir, false), { readOnly });
    const writableMap = readOnly ? undefined : await writableMapHere(dir);
    let state: LiveState;
    try {
      state = new LiveState({
        path: dir,
        readOnly,
        owner,
        keys,
        ...(o.metaCacheBytes === undefined ? {} : { metaCacheBytes: o.metaCacheBytes }),
        ...(writableMap ? { writableMap } : {}),
      });
    } catch (e) {
      if (e instanceof FragfsError) throw e;
      throw new FragfsError('IO', `cannot open the live state at ${dir}: ${(e as Error).message}`, { path: dir, cause: e });
    }
    const vfs = new LiveVfs(o.repo, state, o.statePath, o);
    if (!vfs.readOnly) {
      // Each block store and each snapshot is an operation of the gc lease, not the whole mount. On
      // a full disk the lease waits for the first write, whose opening then holds sweeps back
      // until the mount ends (safe, only slower to free).
      try {
        const guard = await o.repo.writerGuard();
        if (guard) {
          vfs.ctx.guard = guard;
          guard.releaseBase();
        }
      } catch (e) {
        if (!(e instanceof FragfsError && e.code === 'NO_SPACE')) {
          await state.close();
          throw e;
        }
      }
      vfs.freeOrphans();
    }
    return vfs;
  }

  /** Reads the live state's file into the page cache in the background (LiveState.warm); bytes read. */
  warm(): Promise<number> {
    return this.state.warm();
  }

  /** Inodes unlinked while open when the last process ended: nobody holds them now. */
  private freeOrphans(): void {
    const orphans = this.state.listOrphans();
    if (orphans.length === 0) return;
    this.state.txn(() => {
      for (const ino of orphans) this.state.deleteInode(ino);
    });
  }

  // --- helpers

  private writable(ino: number): void {
    if (this.readOnly) throw new FragfsError('READ_ONLY', `${where(ino)}: the mount is read-only`);
    if (this.closed) throw new FragfsError('IO', 'the filesystem is closed');
  }

  private handle(fh: number, ino: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FragfsError('BAD_FD', `${where(ino)}: file handle ${fh} is not open`);
    return h;
  }

  private fileOf(h: Handle): OpenFile {
    if (!h.file) throw new FragfsError(isDirMode(this.state.peekInode(h.ino)?.mode) ? 'IS_DIR' : 'BAD_FD', `${where(h.ino)}: not a regular file`);
    return h.file;
  }

  private attrOf(f: Found): Attr {
    const file = this.files.get(f.ino);
    return toAttr(f.ino, file ? file.overlay(f.rec) : f.rec);
  }

  private acquireFile(f: Found): OpenFile {
    let file = this.files.get(f.ino);
    if (!file) {
      file = new OpenFile(this.ctx, f.ino, f.rec, where(f.ino));
      this.files.set(f.ino, file);
    }
    file.handles++;
    return file;
  }

  /** Drops a reference; the last one frees an inode that has no name left. */
  private async releaseFile(file: OpenFile): Promise<void> {
    file.handles--;
    if (file.handles > 0) return;
    this.files.delete(file.ino);
    const rec = this.state.getInode(file.ino);
    if (rec && rec.nlink <= 0) {
      await file.discard();
      if (!this.files.has(file.ino)) this.state.txn(() => this.state.deleteInode(file.ino));
    }
  }

  /** Drops a directory handle; the last one frees a directory that was removed meanwhile. */
  private releaseDir(ino: number): void {
    const n = this.openDirs.get(ino);
    if (n === undefined) return;
    if (n > 1) {
      this.openDirs.set(ino, n - 1);
      return;
    }
    this.openDirs.delete(ino);
    const rec = this.state.peekInode(ino);
    if (rec && rec.nlink === 0 && isDir(rec) && !this.readOnly) this.state.txn(() => this.state.deleteInode(ino));
  }

  private newHandle(h: Handle): number {
    const fh = this.freeFhs.pop() ?? this.nextFh++;
    this.handles.set(fh, h);
    return fh;
  }

  /**
   * An inode left without names: freed now, or, while it is open, written as it is and kept as an
   * orphan (freed on its last release). Inside a txn.
   */
  private freeOrOrphan(freed: Found | undefined): void {
    if (freed === undefined) return;
    const { ino, rec } = freed;
    if (this.files.has(ino) || this.openDirs.has(ino)) {
      this.state.putInode(ino, rec);
      this.state.addOrphan(ino);
    } else this.state.deleteInode(ino);
  }

  /** Keeps the in-memory times of an open file in step with a metadata change. */
  private syncOpenTimes(ino: number, mtimeNs: bigint | undefined, ctimeNs: bigint): void {
    const f = this.files.get(ino);
    if (f) f.setTimes(mtimeNs ?? f.mtimeNs, ctimeNs);
  }

  /**
   * What permission checks see of an inode: for an open file, its pending mode and owner laid over
   * the record (a copy: never to be committed, its size may cover blocks not stored yet).
   */
  private view(f: Found): Readonly<InodeRecord> {
    const open = this.files.get(f.ino);
    return open ? open.overlay(f.rec) : f.rec;
  }

  /** The inode an operation addresses: the handle's when given (it may have no name left), else `ino`. */
  private node(ino: number, fh?: number): Found {
    return getNode(this.state, fh === undefined ? ino : this.handle(fh, ino).ino);
  }

  /**
   * Runs one metadata change with room for it in the live state's file: NO_SPACE (ENOSPC to the
   * program) when the disk is full, before LMDB is handed anything. Reads need no room and go on.
   */
  private async withRoom<T>(fn: () => T): Promise<T> {
    const need = this.room.tryReserve(CHANGE_BYTES) ?? (await this.room.reserve(CHANGE_BYTES, 'cannot change the live state'));
    try {
      return fn();
    } finally {
      this.room.release(need);
    }
  }

  /**
   * ENOSPC for a write while the store's disk is full: once a block could not be stored, writes fail
   * at once (as a file system's own allocation does) instead of buffering data that cannot be kept,
   * until a look at the disk (at most one a second) finds room again.
   */
  private async checkRoomForData(ino: number): Promise<void> {
    if (this.fullSinceMs === 0) return;
    const now = Date.now();
    if (now - this.fullCheckedMs < 1000) throw new FragfsError('NO_SPACE', `${where(ino)}: the disk holding the store is full`);
    this.fullCheckedMs = now;
    try {
      const st = await fsStatfs(localFolderOf(this.repo.storePath) || this.statePath);
      if (st.bavail * st.bsize >= ROOM_AGAIN_BYTES) {
        this.fullSinceMs = 0;
        return;
      }
    } catch {
      // cannot tell: keep refusing until a later look
    }
    throw new FragfsError('NO_SPACE', `${where(ino)}: the disk holding the store is full`);
  }

  /**
   * Runs a change of file data (write, truncate, fallocate) outside a snapshot's instant: it waits
   * while a snapshot takes its instant, and the snapshot waits for those already running.
   */
  private async changing<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.active++;
    try {
      return await fn();
    } finally {
      if (--this.active === 0) for (const f of this.idle.splice(0)) f();
    }
  }

  // --- attributes and lookups

  async lookup(parent: number, name: Buffer): Promise<Attr> {
    const f = lookupChild(this.state, parent, name, this.who);
    this.noteName(f.ino, name);
    return this.attrOf(f);
  }

  forget(_ino: number, _nlookup: number): void {
    // Inode numbers are the live state's own and never reused: nothing is kept per kernel reference.
  }

  async getattr(ino: number, fh?: number): Promise<Attr> {
    return this.attrOf(this.node(ino, fh));
  }

  async readdir(ino: number, plus: boolean): Promise<DirEntry[]> {
    const f = this.node(ino);
    if (!isDir(f.rec)) throw new FragfsError('NOT_DIR', `${where(ino)}: not a directory`);
    if (this.who) checkAccess(f.rec, this.who, MAY_READ, where(ino));
    const out: DirEntry[] = [];
    const listing = [...this.state.listDir(ino)];
    if (!plus) {
      for (const e of listing) out.push({ name: e.name, ino: e.ino, mode: e.typeBits });
      return out;
    }
    const recs = this.state.inodesOf(listing.map((e) => e.ino));
    for (let i = 0; i < listing.length; i++) {
      const e = listing[i]!;
      const rec = recs[i];
      if (!rec) continue;
      const file = this.files.get(e.ino);
      out.push({ name: e.name, ino: e.ino, mode: e.typeBits, attr: toAttr(e.ino, file ? file.overlay(rec as InodeRecord) : rec) });
    }
    this.noteListing(ino, out);
    return out;
  }

  async access(ino: number, mode: number): Promise<void> {
    const f = this.node(ino);
    // access(2)'s R_OK/W_OK/X_OK are the MAY_* bits.
    if (this.who && (mode & 7) !== 0) checkAccess(this.view(f), this.who, mode & 7, where(ino));
  }

  async statfs(): Promise<StatFs> {
    // df shows the store: Used is what the store folder takes, Avail the room left beside it, Size
    // the two together (store-usage.ts); a remote store has a petabyte of room, as JuiceFS says.
    this.usage ??= new StoreUsage(isRemoteLocation(this.repo.storePath) ? undefined : this.repo.storePath || this.statePath);
    const { usedBytes, availBytes } = await this.usage.figures();
    const free = 2 ** 32;
    return {
      bsize: this.ctx.blockSize,
      frsize: STATFS_UNIT_BYTES,
      blocks: Math.ceil((usedBytes + availBytes) / STATFS_UNIT_BYTES),
      bfree: Math.floor(availBytes / STATFS_UNIT_BYTES),
      bavail: Math.floor(availBytes / STATFS_UNIT_BYTES),
      files: free,
      ffree: free,
      favail: free,
      namemax: 255,
    };
  }

  // --- creating and removing names

  async mkdir(parent: number, name: Buffer, mode: number, caller: Caller): Promise<Attr> {
    this.writable(parent);
    return toAttrOf(await this.withRoom(() => this.state.txn(() => createNode(this.state, parent, name, S_IFDIR | (mode & 0o7777), caller, {}, this.who))));
  }

  async rmdir(parent: number, name: Buffer): Promise<void> {
    this.writable(parent);
    await this.withRoom(() => this.state.txn(() => this.freeOrOrphan(removeNode(this.state, parent, name, true, this.who))));
  }

  async mknod(parent: number, name: Buffer, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    this.writable(parent);
    const fmt = mode & S_IFMT || S_IFREG;
    if (fmt === S_IFDIR || fmt === S_IFLNK) throw new FragfsError('INVALID', `${where(parent)}: mknod cannot make that type`);
    return toAttrOf(await this.withRoom(() => this.state.txn(() => createNode(this.state, parent, name, fmt | (mode & 0o7777), caller, { rdev }, this.who))));
  }

  async create(parent: number, name: Buffer, mode: number, flags: number, caller: Caller): Promise<{ attr: Attr; fh: number }> {
    this.writable(parent);
    checkName(name, parent);
    const made = await this.withRoom(() => this.state.txn(() => {
      let existing: Found | undefined;
      try {
        existing = lookupChild(this.state, parent, name, this.who);
      } catch (e) {
        if (!(e instanceof FragfsError && e.code === 'NOT_FOUND')) throw e;
      }
      if (existing) {
        if (flags & O_EXCL) throw new FragfsError('EXISTS', `${where(parent, name)}: already exists`);
        return { found: existing, created: false };
      }
      return { found: createNode(this.state, parent, name, S_IFREG | (mode & 0o7777), caller, {}, this.who), created: true };
    }));
    if (!made.created) {
      const fh = await this.open(made.found.ino, flags);
      return { attr: await this.getattr(made.found.ino, fh), fh };
    }
    const file = this.acquireFile(made.found);
    const fh = this.newHandle({ ino: made.found.ino, flags, file, ra: newReadAheadState() });
    return { attr: this.attrOf(made.found), fh };
  }

  async open(ino: number, flags: number): Promise<number> {
    const f = this.node(ino);
    const acc = flags & O_ACCMODE;
    const writing = acc === O_WRONLY || acc === O_RDWR || (flags & O_TRUNC) !== 0;
    if (writing) this.writable(ino);
    if (this.who) checkAccess(this.view(f), this.who, openMask(flags), where(ino));
    if (isDir(f.rec)) {
      if (acc !== 0) throw new FragfsError('IS_DIR', `${where(ino)}: is a directory`);
      this.openDirs.set(ino, (this.openDirs.get(ino) ?? 0) + 1);
      return this.newHandle({ ino, flags, ra: newReadAheadState() });
    }
    if (!isReg(f.rec)) return this.newHandle({ ino, flags, ra: newReadAheadState() });
    const file = this.acquireFile(f);
    const fh = this.newHandle({ ino, flags, file, ra: newReadAheadState() });
    if (!writing) this.loadAhead(f);
    if (flags & O_TRUNC && file.size > 0) {
      try {
        await this.changing(() => file.truncate(0));
      } catch (e) {
        await this.release(ino, fh);
        throw e;
      }
    }
    return fh;
  }

  /**
   * A file opened for reading right after another of the same folder: load its first block and
   * those of the next small files (sibling-prefetch.ts). Committed extents only; a dirty block is
   * read from its buffer anyway.
   */
  private loadAhead(f: Found): void {
    const dir = f.rec.parents[0];
    if (dir === undefined || !this.siblings.opened(dir)) return;
    const { state, cache, blockSize } = this.ctx;
    // The name this file has in `dir`: found by scanning would cost a listing; the entry cache knows
    // it when the kernel just looked it up, which is how a walker reaches a file.
    const name = this.nameIn(dir, f.ino);
    // Siblings already loaded ahead, in listing order: each costs the decryption of its entry, inode
    // and extent, so a walk reads each entry once instead of SIBLING_FILES times.
    const ahead = this.ahead?.dir === dir ? this.ahead : undefined;
    const at = ahead && name ? ahead.names.findIndex((n) => n.equals(name)) : -1;
    if (!ahead || at < 0) {
      const own = state.getExtent(f.ino, 0);
      if (own) cache.prefetch(own, where(f.ino));
    }
    if (name === undefined) return;
    const names = at >= 0 ? ahead!.names.slice(at + 1) : [];
    this.ahead = { dir, names };
    if (names.length >= SIBLING_FILES / 2) return;
    for (const s of state.entriesAfter(dir, names.at(-1) ?? name, SIBLING_FILES)) {
      names.push(s.name);
      if ((s.typeBits & S_IFMT) !== S_IFREG) continue;
      const rec = state.peekInode(s.ino);
      if (!rec || rec.size === 0 || rec.size > blockSize) continue;
      const ext = state.getExtent(s.ino, 0);
      if (ext) cache.prefetch(ext, where(s.ino));
    }
  }

  /** The siblings whose first block the last walk of a folder loaded ahead (loadAhead). */
  private ahead: { dir: number; names: Buffer[] } | undefined;

  /** The name each recently looked-up inode was reached by (bounded; for read-ahead across files only). */
  private readonly lastNames = new ByteLru<number, Buffer>(LAST_NAMES, () => 1);

  private noteName(ino: number, name: Buffer): void {
    this.lastNames.set(ino, name);
  }

  /**
   * The last few listings with attributes, by folder: the kernel knows their entries from the
   * listing and looks none of them up, so a file opened next is named from here (loadAhead). One
   * record a listing, not one lastNames entry each (an eviction apiece once a walk passed 4,096).
   */
  private readonly listings: { dir: number; entries: readonly DirEntry[] }[] = [];

  private noteListing(dir: number, entries: readonly DirEntry[]): void {
    if (entries.length > LAST_NAMES) return; // a huge folder: its names are not kept
    const at = this.listings.findIndex((l) => l.dir === dir);
    if (at >= 0) this.listings.splice(at, 1);
    this.listings.push({ dir, entries });
    if (this.listings.length > KEPT_LISTINGS) this.listings.shift();
  }

  /** The name `ino` was last seen by in `dir`: looked up, or in a recent listing. */
  private nameIn(dir: number, ino: number): Buffer | undefined {
    const name = this.lastNames.get(ino);
    if (name !== undefined) return name;
    for (let i = this.listings.length - 1; i >= 0; i--) {
      const l = this.listings[i]!;
      if (l.dir !== dir) continue;
      return l.entries.find((e) => e.ino === ino)?.name;
    }
    return undefined;
  }

  async read(ino: number, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh, ino);
    checkRange(ino, length, position, buf);
    return this.fileOf(h).read(buf, length, position, h.ra);
  }

  cleanBlockAt(ino: number, fh: number, position: number): { offset: number; data: Uint8Array } | undefined {
    const h = this.handles.get(fh);
    return h?.ino === ino && h.file ? h.file.cleanBlockAt(position) : undefined;
  }

  async write(ino: number, fh: number, data: Buffer, length: number, position: number, killSuidGid = false): Promise<number> {
    this.writable(ino);
    const h = this.handle(fh, ino);
    checkRange(ino, length, position, data);
    if ((h.flags & O_ACCMODE) === 0) throw new FragfsError('BAD_FD', `${where(ino)}: not open for writing`);
    if (length === 0) return 0;
    const file = this.fileOf(h);
    if (position + length > MAX_FILE_BYTES) throw new FragfsError('FILE_TOO_BIG', `${where(ino)}: a file cannot grow past ${MAX_FILE_BYTES} bytes`);
    await this.checkRoomForData(ino);
    if (killSuidGid) this.dropSuidGid(ino, file);
    return this.changing(() => file.write(data, length, position, (h.flags & O_APPEND) !== 0));
  }

  /**
   * file_remove_privs() (fs/inode.c) for a writer without CAP_FSETID: setuid goes, and setgid where
   * group execute is set (without it the bit means mandatory locking, which a write leaves alone).
   */
  private dropSuidGid(ino: number, file: OpenFile): void {
    const rec = { ...file.overlay(getNode(this.state, ino).rec) };
    const kill = (rec.mode & S_ISUID) | ((rec.mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP) ? S_ISGID : 0);
    if (kill === 0) return;
    rec.mode &= ~kill;
    rec.ctimeNs = nowNs();
    file.setAttrs(rec);
  }

  async flush(ino: number, fh: number): Promise<void> {
    // close(2) waits for FLUSH but not for RELEASE, so the file's last partial block is stored in
    // release: a program writing many small files is not held up by each store write. The data stays
    // readable from the open file's buffer meanwhile, and a snapshot stores it (close means saved).
    this.handle(fh, ino);
  }

  async fsync(ino: number, fh: number, _dataOnly: boolean): Promise<void> {
    const h = this.handle(fh, ino);
    if (this.readOnly) return;
    await this.hurried(async () => {
      if (h.file) await h.file.flush();
      // Order: fragments durable, then the state that names them.
      await this.repo.sync();
    });
    await this.state.sync();
  }

  /**
   * Runs `fn` with the packs that block stores wait for written at once: someone waits for them
   * (an fsync, a snapshot, an unmount), where a closed file's release does not (PackStore.hurry).
   */
  private hurried<T>(fn: () => Promise<T>): Promise<T> {
    const store = this.repo.store;
    return store instanceof PackStore ? store.hurry(fn) : fn();
  }

  async release(ino: number, fh: number): Promise<void> {
    const h = this.handle(fh, ino);
    this.handles.delete(fh);
    this.freeFhs.push(fh);
    if (!h.file) {
      this.releaseDir(h.ino);
      return;
    }
    try {
      if (!this.readOnly) await h.file.flush();
    } catch (e) {
      // A remote store out of reach: the closed file's blocks stay dirty in its OpenFile (see
      // OpenFile.storeBlock), which is kept open and flushed again until the service is back, so
      // close still means saved. A snapshot or unmount meanwhile flushes it too, and fails while
      // the service is away rather than publish a file without its data.
      if (isFragfsError(e, 'REMOTE')) {
        this.retryUnstored(h.file);
        return;
      }
      throw e;
    } finally {
      await this.releaseFile(h.file);
    }
  }

  /** Files closed while their blocks could not be stored, kept open until a flush succeeds. */
  private readonly unstored = new Set<OpenFile>();

  private retryUnstored(file: OpenFile): void {
    if (this.unstored.has(file)) return;
    this.unstored.add(file);
    // The handle the kernel released is gone; this one keeps the OpenFile (and its dirty blocks).
    file.handles++;
    const again = (): void => {
      const t = setTimeout(() => {
        if (this.closed) return;
        file.flush().then(
          () => {
            this.unstored.delete(file);
            void this.releaseFile(file);
          },
          () => again(),
        );
      }, UNSTORED_RETRY_MS);
      t.unref();
    };
    again();
  }

  async fallocate(ino: number, fh: number, mode: number, offset: number, length: number): Promise<void> {
    this.writable(ino);
    const h = this.handle(fh, ino);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) {
      throw new FragfsError('INVALID', `${where(ino)}: bad fallocate range`);
    }
    if (offset + length > MAX_FILE_BYTES) throw new FragfsError('FILE_TOO_BIG', `${where(ino)}: a file cannot grow past ${MAX_FILE_BYTES} bytes`);
    if ((h.flags & O_ACCMODE) === 0) throw new FragfsError('BAD_FD', `${where(ino)}: not open for writing`);
    const file = this.fileOf(h);
    if (mode === 0) {
      // Nothing to reserve in a content-addressed store: the size grows, the new part reads as zeros.
      if (offset + length > file.size) await this.changing(() => file.truncate(offset + length));
      return;
    }
    if (mode === FALLOC_FL_KEEP_SIZE) return;
    if (mode === (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
      await this.changing(() => file.punchHole(offset, length));
      return;
    }
    throw new FragfsError('NOT_SUPPORTED', `${where(ino)}: fallocate mode ${mode} is not supported`);
  }

  async unlink(parent: number, name: Buffer): Promise<void> {
    this.writable(parent);
    await this.withRoom(() => this.state.txn(() => this.freeOrOrphan(removeNode(this.state, parent, name, false, this.who))));
  }

  async rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): Promise<void> {
    this.writable(parent);
    await this.withRoom(() => this.state.txn(() => this.freeOrOrphan(renameNode(this.state, parent, name, newParent, newName, flags, this.who))));
  }

  async symlink(parent: number, name: Buffer, target: Buffer, caller: Caller): Promise<Attr> {
    this.writable(parent);
    if (!Buffer.isBuffer(target) || target.length === 0) throw new FragfsError('NOT_FOUND', `${where(parent)}: empty symlink target`);
    if (target.length > 4095 || target.includes(0)) throw new FragfsError('NAME_TOO_LONG', `${where(parent)}: symlink target too long`);
    return toAttrOf(await this.withRoom(() => this.state.txn(() => createNode(this.state, parent, name, S_IFLNK | 0o777, caller, { target }, this.who))));
  }

  async readlink(ino: number): Promise<Buffer> {
    const f = this.node(ino);
    if (!isSymlink(f.rec) || f.rec.target === undefined) throw new FragfsError('INVALID', `${where(ino)}: not a symbolic link`);
    return f.rec.target;
  }

  async link(ino: number, newParent: number, newName: Buffer): Promise<Attr> {
    this.writable(newParent);
    return this.attrOf(await this.withRoom(() => this.state.txn(() => linkNode(this.state, ino, newParent, newName, this.who))));
  }

  // --- attributes

  /**
   * Mode, owner and times of one inode (or an open handle's) in one transaction, each with the
   * kernel's permission rule; returns the attributes after the change.
   */
  private changeAttrs(ino: number, fh: number | undefined, c: Omit<AttrChanges, 'size'>): Attr {
    this.writable(ino);
    for (const t of [c.atimeNs, c.mtimeNs]) {
      // What a timespec of the kernel's (a signed 64-bit ns count) can hold.
      if (t !== undefined && (typeof t !== 'bigint' || BigInt.asIntN(64, t) !== t)) throw new FragfsError('INVALID', `${where(ino)}: bad time`);
    }
    const given = (id: number | undefined) => (id !== undefined && id >= 0 && id !== NO_ID ? id : undefined);
    const uid = given(c.uid);
    const gid = given(c.gid);
    const target = fh === undefined ? ino : this.handle(fh, ino).ino;
    const change = (f: Found): InodeRecord => {
      // The record as it stands, an open file's pending changes laid over it.
      const open = this.files.get(f.ino);
      const rec = open ? open.overlay(f.rec) : f.rec;
      const who = this.who;
      const label = where(target);
      if (who) {
        if (c.mode !== undefined) checkOwner(rec, who, label);
        if (uid !== undefined || gid !== undefined) checkChown(rec, who, uid, gid, label);
        // The owner sets any times; others with write permission only "now" (which the kernel does
        // not tell apart from given times here, so write permission is accepted for both).
        if ((c.atimeNs !== undefined || c.mtimeNs !== undefined) && rec.uid !== who.uid && !permits(rec, who, MAY_WRITE)) {
          checkOwner(rec, who, label);
        }
      }
      if (c.mode !== undefined) rec.mode = (rec.mode & S_IFMT) | (c.mode & 0o7777);
      if (uid !== undefined) rec.uid = uid;
      if (gid !== undefined) rec.gid = gid;
      // chown by someone other than root clears setuid and setgid, as the kernel does for files.
      if ((uid !== undefined || gid !== undefined) && c.mode === undefined && !isDir(rec) && (!who || who.uid !== 0)) {
        rec.mode &= ~0o6000;
      }
      if (c.atimeNs !== undefined) rec.atimeNs = c.atimeNs;
      if (c.mtimeNs !== undefined) rec.mtimeNs = c.mtimeNs;
      rec.ctimeNs = nowNs();
      return rec;
    };
    const openFile = this.files.get(target);
    if (openFile) {
      // An open file keeps the change and commits it with its size and times (OpenFile.setAttrs).
      const f = getNode(this.state, target);
      openFile.setAttrs(change(f));
      return this.attrOf(f);
    }
    return this.state.txn(() => {
      const f = getNode(this.state, target);
      const rec = change(f);
      this.state.putInode(f.ino, rec);
      this.state.inodeChanged(f.ino, rec);
      return toAttr(f.ino, rec);
    });
  }

  async setattr(ino: number, fh: number | undefined, c: AttrChanges): Promise<Attr> {
    // The kernel sets the ctime of every regular file it has just unlinked (writeback cache): the
    // inode is gone already, and the answer needs no reservation and no transaction.
    if (fh === undefined && this.state.peekInode(ino) === undefined) throw new FragfsError('NOT_FOUND', `${where(ino)}: no such file or directory`);
    const { size, ...rest } = c;
    const owner = rest.mode !== undefined || rest.uid !== undefined || rest.gid !== undefined;
    const times = rest.atimeNs !== undefined || rest.mtimeNs !== undefined;
    if (size === undefined) {
      if (owner || times) return this.files.has(fh === undefined ? ino : this.handle(fh, ino).ino) ? this.changeAttrs(ino, fh, rest) : this.withRoom(() => this.changeAttrs(ino, fh, rest));
      return this.getattr(ino, fh);
    }
    if (owner) await this.withRoom(() => this.changeAttrs(ino, fh, { mode: rest.mode, uid: rest.uid, gid: rest.gid }));
    await this.truncate(ino, fh, size);
    if (times) return this.withRoom(() => this.changeAttrs(ino, fh, { atimeNs: rest.atimeNs, mtimeNs: rest.mtimeNs }));
    return this.getattr(ino, fh);
  }

  private async truncate(ino: number, fh: number | undefined, size: number): Promise<void> {
    this.writable(ino);
    if (!Number.isSafeInteger(size) || size < 0) throw new FragfsError('INVALID', `${where(ino)}: bad size ${size}`);
    if (size > MAX_FILE_BYTES) throw new FragfsError('FILE_TOO_BIG', `${where(ino)}: a file cannot grow past ${MAX_FILE_BYTES} bytes`);
    if (fh !== undefined) {
      const h = this.handle(fh, ino);
      await this.changing(() => this.fileOf(h).truncate(size));
      return;
    }
    const f = this.node(ino);
    if (isDir(f.rec)) throw new FragfsError('IS_DIR', `${where(ino)}: is a directory`);
    if (this.who) checkAccess(this.view(f), this.who, MAY_WRITE, where(ino));
    if (!isReg(f.rec)) throw new FragfsError('INVALID', `${where(ino)}: not a regular file`);
    const file = this.acquireFile(f);
    try {
      await this.changing(() => file.truncate(size));
    } finally {
      await this.releaseFile(file);
    }
  }

  // --- extended attributes

  async setxattr(ino: number, name: Buffer, value: Buffer, flags: number): Promise<void> {
    this.writable(ino);
    checkXattrName(name, ino);
    if (value.length > XATTR_SIZE_MAX) throw new FragfsError('RANGE', `${where(ino)}: attribute value too large`);
    await this.withRoom(() => this.state.txn(() => {
      const f = this.xattrTarget(ino, name, true);
      const had = this.state.getXattr(f.ino, name) !== undefined;
      if (flags & XATTR_CREATE && had) throw new FragfsError('EXISTS', `${where(ino)}: the attribute exists`);
      if (flags & XATTR_REPLACE && !had) throw new FragfsError('NO_ATTR', `${where(ino)}: no such attribute`);
      this.state.putXattr(f.ino, name, value);
      if (!had) f.rec.xattrs = (f.rec.xattrs ?? 0) + 1;
      this.touchCtime(f);
    }));
  }

  async getxattr(ino: number, name: Buffer): Promise<Buffer> {
    checkXattrName(name, ino);
    const f = this.xattrTarget(ino, name, false);
    const v = f.rec.xattrs ? this.state.getXattr(f.ino, name) : undefined;
    if (v === undefined) throw new FragfsError('NO_ATTR', `${where(ino)}: no such attribute`);
    return v;
  }

  async listxattr(ino: number): Promise<Buffer[]> {
    const f = this.node(ino);
    if (!f.rec.xattrs) return [];
    return this.state.listXattrs(f.ino).map((x) => x.name);
  }

  async removexattr(ino: number, name: Buffer): Promise<void> {
    this.writable(ino);
    checkXattrName(name, ino);
    await this.withRoom(() => this.state.txn(() => {
      const f = this.xattrTarget(ino, name, true);
      if (this.state.getXattr(f.ino, name) === undefined) throw new FragfsError('NO_ATTR', `${where(ino)}: no such attribute`);
      this.state.removeXattr(f.ino, name);
      f.rec.xattrs = Math.max(0, (f.rec.xattrs ?? 1) - 1);
      this.touchCtime(f);
    }));
  }

  /** The inode whose xattr `name` is read or changed, after xattr_permission()'s checks. */
  private xattrTarget(ino: number, name: Buffer, writing: boolean): Found {
    const f = this.node(ino);
    if (this.who) {
      const text = name.toString('latin1');
      if (text.startsWith('trusted.') && this.who.uid !== 0) {
        throw new FragfsError('NOT_PERMITTED', `${where(ino)}: trusted.* attributes are for root`);
      }
      const mask = xattrMask(text, writing);
      if (mask !== 0) checkAccess(this.view(f), this.who, mask, where(ino));
    }
    return f;
  }

  private touchCtime(f: Found): void {
    f.rec.ctimeNs = nowNs();
    this.state.putInode(f.ino, f.rec);
    this.state.inodeChanged(f.ino, f.rec);
    this.syncOpenTimes(f.ino, undefined, f.rec.ctimeNs);
  }

  // --- whole filesystem

  async flushAll(): Promise<void> {
    if (this.readOnly || this.closed) return;
    await this.hurried(async () => {
      await Promise.all([...this.files.values()].map((f) => f.flush()));
      await this.repo.sync();
    });
    await this.state.sync();
  }

  async snapshot(name?: string): Promise<string> {
    return (await this.snapshotUnless(name, undefined))!.key;
  }

  /**
   * A snapshot, unless the tree's root directory is still `unlessRoot` (its meta id): then nothing
   * is stored and the result is undefined. Remote mounts publish their head this way, so a store
   * gains no snapshot while nothing changes.
   */
  async snapshotUnless(name: string | undefined, unlessRoot: string | undefined, tags?: string[]): Promise<{ key: string; root: string } | undefined> {
    if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
      throw new FragfsError('INVALID', 'a snapshot name must be a non-empty string');
    }
    this.writable(1);
    // One snapshot at a time: the invalidation record (`touched`) is per run.
    const run = this.snapshotting.then(() => this.snapshotOnce(name, unlessRoot, tags));
    this.snapshotting = run.catch(() => undefined);
    return run;
  }

  /** Whether the tree holds nothing (a fresh live state). */
  isEmpty(): boolean {
    return this.state.dirIsEmpty(ROOT_INO);
  }

  /** Fills a fresh, empty live state with the tree of snapshot `key` (live-import.ts). */
  async importTree(key: string, snapshot: SnapshotObject): Promise<void> {
    this.writable(1);
    await new LiveImport(this.state, this.repo, snapshot, key).run(snapshot.root);
    await this.state.sync();
  }

  /**
   * The snapshot's instant: with data changes held at the gate and those already running finished,
   * every open file's buffered data is stored and committed, and the read transaction opened right
   * then sees every write acknowledged before it (docs/DESIGN.md, "Snapshots": close means saved).
   * Most buffered data is stored before the gate closes, so writers wait only for what came since.
   */
  private takeInstant(): Promise<ReturnType<LiveState['readTxn']>> {
    return this.hurried(async () => {
      await Promise.all([...this.files.values()].map((f) => f.flush()));
      let open!: () => void;
      this.gate = new Promise<void>((resolve) => (open = resolve));
      try {
        if (this.active > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
        await Promise.all([...this.files.values()].map((f) => f.flush()));
        return this.state.readTxn();
      } finally {
        this.gate = null;
        open();
      }
    });
  }

  private async snapshotOnce(name: string | undefined, unlessRoot: string | undefined, tags?: string[]): Promise<{ key: string; root: string } | undefined> {
    const guard = this.ctx.guard;
    const op = guard?.begin();
    try {
      return await this.snapshotInGuard(name, unlessRoot, tags);
    } finally {
      if (op !== undefined) guard!.end(op);
    }
  }

  /**
   * Starts writing folders ahead of snapshots in the background: every `WRITE_AHEAD_TICK_MS`, the
   * folders whose entries have not changed for `WRITE_AHEAD_QUIET_MS` (while the mount is busy,
   * `WRITE_AHEAD_MAX_DEFER_MS`) are serialized as a snapshot
   * would (with every uncached folder below them) and their meta ids cached, so the next snapshot
   * reuses them and costs what changed since, also right after a bulk write (docs/DESIGN.md).
   */
  startWritingAhead(quietMs = WRITE_AHEAD_QUIET_MS, tickMs = WRITE_AHEAD_TICK_MS): void {
    if (this.readOnly || this.aheadTimer) return;
    let elu: EventLoopUtilization = performance.eventLoopUtilization();
    this.aheadTimer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      const busy = performance.eventLoopUtilization(now, elu).utilization > WRITE_AHEAD_BUSY;
      elu = now;
      if (this.writingAhead || this.closed || this.state.changedDirs.size === 0) return;
      const before = Date.now() - (busy ? Math.max(quietMs, WRITE_AHEAD_MAX_DEFER_MS) : quietMs);
      const quiet: number[] = [];
      for (const [dir, at] of this.state.changedDirs) {
        if (at <= before) quiet.push(dir);
        if (quiet.length >= WRITE_AHEAD_BATCH) break;
      }
      if (quiet.length === 0) return;
      this.writingAhead = true;
      const run = this.snapshotting.then(() => this.writeAhead(quiet));
      this.snapshotting = run.catch(() => undefined);
      run
        .catch(() => undefined) // a failure here costs only time: the next snapshot writes these itself
        .finally(() => (this.writingAhead = false));
    }, tickMs);
    this.aheadTimer.unref();
  }

  /** Folders `dirs` (and the uncached ones below them) written and cached, as of one read transaction. */
  async writeAhead(dirs: readonly number[]): Promise<number> {
    if (this.closed) return 0;
    const guard = this.ctx.guard;
    const op = guard?.begin();
    try {
      const touched = new Set<number>();
      // The read transaction and the invalidation record start together: a change after this is in `touched`.
      const rtx = this.state.readTxn();
      this.state.touched = touched;
      const writer = new SnapshotWriter(this.state, this.repo, rtx);
      try {
        for (const d of dirs) {
          if (this.state.getDirCache(d, rtx) === undefined) await writer.writeDirOf(d);
        }
      } finally {
        rtx.done();
        this.state.touched = null;
      }
      for (const d of dirs) if (!touched.has(d)) this.state.changedDirs.delete(d);
      const { newDirs, newContent } = writer.results();
      this.keepCaches(newDirs, newContent, touched);
      return newDirs.size;
    } finally {
      if (op !== undefined) guard!.end(op);
    }
  }

  /** Caches what nothing changed while it was written (the invalidation walk recorded every dir it passed). */
  private keepCaches(newDirs: ReadonlyMap<number, DirCacheValue>, newContent: ReadonlyMap<number, FileContentCache>, touched: ReadonlySet<number>): void {
    this.state.txn(() => {
      for (const [ino, v] of newDirs) {
        if (!touched.has(ino) && this.state.peekInode(ino)) {
          this.state.putDirCache(ino, v);
          this.state.changedDirs.delete(ino);
        }
      }
      for (const [ino, c] of newContent) {
        if (!touched.has(ino) && this.state.peekInode(ino)) this.state.putContentCache(ino, c);
      }
    });
  }

  private async snapshotInGuard(name: string | undefined, unlessRoot: string | undefined, tags?: string[]): Promise<{ key: string; root: string } | undefined> {
    const touched = new Set<number>();
    const rtx = await this.takeInstant();
    this.state.touched = touched;
    let result;
    try {
      result = await new SnapshotWriter(this.state, this.repo, rtx).run();
    } finally {
      rtx.done();
      this.state.touched = null;
    }
    this.keepCaches(result.newDirs, result.newContent, touched);
    if (unlessRoot !== undefined && result.root.dir === unlessRoot) return undefined;
    const key = await writeSnapshot(this.repo, result.root, {
      source: [this.source],
      ...(name === undefined ? {} : { name }),
      ...(tags === undefined ? {} : { tags }),
      files: result.files,
      dirs: result.dirs,
      logicalBytes: result.logicalBytes,
    });
    await this.state.sync();
    return { key, root: result.root.dir! };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.aheadTimer) clearInterval(this.aheadTimer);
    await this.snapshotting;
    let err: unknown;
    try {
      await this.flushAll();
    } catch (e) {
      err = e;
    }
    this.closed = true;
    if (!this.readOnly) {
      try {
        this.state.txn(() => this.room.giveBack());
      } catch {
        // Only slack stays allocated; closing goes on.
      }
    }
    await this.state.close();
    if (err) throw err;
  }
}

function toAttrOf(f: Found): Attr {
  return toAttr(f.ino, f.rec);
}

function isDirMode(mode: number | undefined): boolean {
  return mode !== undefined && (mode & S_IFMT) === S_IFDIR;
}

function checkRange(ino: number, length: number, position: number, buf: Buffer): void {
  if (!Number.isSafeInteger(length) || length < 0 || length > buf.length || !Number.isSafeInteger(position) || position < 0) {
    throw new FragfsError('INVALID', `${where(ino)}: bad length or position`);
  }
}

function checkXattrName(name: Buffer, ino: number): void {
  if (!Buffer.isBuffer(name) || name.length === 0) throw new FragfsError('INVALID', `${where(ino)}: empty attribute name`);
  if (name.length > XATTR_NAME_MAX) throw new FragfsError('RANGE', `${where(ino)}: attribute name too long`);
  if (name.includes(0)) throw new FragfsError('INVALID', `${where(ino)}: bad attribute name`);
}

/**
 * Whether the live state in `dir` (which holds LMDB's lock file already) may be opened with a
 * writable map: only where the local-fs addon is loaded and fallocate(2) works on that file system,
 * since every write transaction then needs its blocks allocated first (LiveState, `writableMap`).
 * Elsewhere LMDB writes its pages with pwrite(2), which answers ENOSPC by itself. A commit with the
 * map costs a fraction (docs/DESIGN.md, "The live state"). FRAGFS_LIVE_WRITEMAP=0 turns it off.
 */
async function writableMapHere(dir: string): Promise<StateOptions['writableMap']> {
  if (process.env['FRAGFS_LIVE_WRITEMAP'] === '0') return undefined;
  const addon = await localFs();
  if (addon instanceof Error) return undefined;
  const probe = Buffer.from(lmdbFilePaths(dir, false).lock);
  if (addon.fallocateSync(probe, false, 0, 4096) !== 0) return undefined;
  return { fallocateSync: (path, punch, offset, length) => addon.fallocateSync(path, punch, offset, length) };
}
