// The read-write filesystem behind `fragfs mount`: POSIX operations by path over the live state
// (LMDB) and the repo, with per-file write buffers, a shared block cache and incremental snapshots.

import { statfs as fsStatfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { FragfsError } from '../errors.js';
import type { Repo } from '../repo/repo.js';
import { writeSnapshot } from '../repo/tree-writer.js';
import { BlockCache, DEFAULT_CACHE_BYTES } from './block-cache.js';
import { createNode, linkNode, lookupParent, lookupPath, nameBytes, removeNode, renameNode, type Found } from './dir-ops.js';
import { S_IFDIR, S_IFMT, S_IFREG, S_IFLNK, isDir, isReg, isSymlink, toAttr } from './inode.js';
import { LiveState } from './live-state.js';
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
import type { Attr, AttrChanges, Caller, DirEntry, StatFs, Vfs } from './vfs-api.js';
import { DEFAULT_WRITE_BUFFER_BYTES, WriteBuffer } from './write-buffer.js';

export interface LiveVfsOptions {
  repo: Repo;
  /** Folder of the live state's LMDB environment (STORE/live/<space>/). */
  statePath: string;
  readOnly?: boolean;
  /** Bytes of decrypted blocks kept in memory (default 256 MiB). */
  cacheBytes?: number;
  /** Bytes of dirty block images buffered before the oldest are stored (default 64 MiB). */
  writeBufferBytes?: number;
  /** Owner of the root dir of a fresh state (default: this process). */
  owner?: { uid: number; gid: number };
  /** What snapshots record as their source (e.g. the mount point). */
  source?: string;
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
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const NO_ID = 0xffffffff;

interface Handle {
  ino: number;
  flags: number;
  file?: OpenFile;
  ra: ReadAheadState;
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
  private readonly source: string;
  private closed = false;
  private snapshotting: Promise<unknown> = Promise.resolve();
  private readonly siblings = new SiblingStream();

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
    this.ctx = {
      state,
      repo,
      cache: new BlockCache(repo, o.cacheBytes ?? DEFAULT_CACHE_BYTES),
      wb: new WriteBuffer(o.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES, threads * 2 + 2, threads * 4 + 8),
      blockSize: repo.blockSize,
      readAheadBytes: o.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES,
    };
    this.source = o.source ?? statePath;
  }

  static async open(o: LiveVfsOptions): Promise<LiveVfs> {
    if (!o || !o.repo || typeof o.statePath !== 'string' || o.statePath.length === 0) {
      throw new FragfsError('INVALID', 'LiveVfs.open needs a repo and a statePath');
    }
    for (const k of ['cacheBytes', 'writeBufferBytes', 'readAheadBytes'] as const) {
      const v = o[k];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new FragfsError('INVALID', `${k} must be a whole number of bytes`);
    }
    const owner = o.owner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    let state: LiveState;
    try {
      state = new LiveState({ path: o.statePath, readOnly: o.readOnly === true, owner });
    } catch (e) {
      throw new FragfsError('IO', `cannot open the live state at ${o.statePath}: ${(e as Error).message}`, { path: o.statePath, cause: e });
    }
    const vfs = new LiveVfs(o.repo, state, o.statePath, o);
    if (!vfs.readOnly) vfs.freeOrphans();
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

  private writable(path: string): void {
    if (this.readOnly) throw new FragfsError('READ_ONLY', `${path}: the mount is read-only`, { path });
    if (this.closed) throw new FragfsError('IO', 'the filesystem is closed');
  }

  private handle(fh: number, path: string): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FragfsError('BAD_FD', `${path}: file handle ${fh} is not open`, { path });
    return h;
  }

  private fileOf(h: Handle, path: string): OpenFile {
    if (!h.file) throw new FragfsError('IS_DIR', `${path}: is a directory`, { path });
    return h.file;
  }

  private attrOf(f: Found): Attr {
    const file = this.files.get(f.ino);
    return toAttr(f.ino, file ? file.overlay(f.rec) : f.rec);
  }

  private acquireFile(f: Found, path: string): OpenFile {
    let file = this.files.get(f.ino);
    if (!file) {
      file = new OpenFile(this.ctx, f.ino, f.rec, path);
      this.files.set(f.ino, file);
    }
    file.path = path;
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

  private newHandle(h: Handle): number {
    const fh = this.freeFhs.pop() ?? this.nextFh++;
    this.handles.set(fh, h);
    return fh;
  }

  /** A file left without names: freed now unless open (then on its last release). Inside a txn. */
  private freeOrOrphan(ino: number | undefined): void {
    if (ino === undefined) return;
    if (this.files.has(ino)) this.state.addOrphan(ino);
    else this.state.deleteInode(ino);
  }

  /** Keeps the in-memory times of an open file in step with a metadata change. */
  private syncOpenTimes(ino: number, mtimeMs: number | undefined, ctimeMs: number): void {
    const f = this.files.get(ino);
    if (f) f.setTimes(mtimeMs ?? f.mtimeMs, ctimeMs);
  }

  // --- attributes and lookups

  async getattr(path: string): Promise<Attr> {
    return this.attrOf(lookupPath(this.state, path, this.who));
  }

  async fgetattr(path: string, fh: number): Promise<Attr> {
    const h = this.handle(fh, path);
    const rec = this.state.getInode(h.ino);
    if (!rec) throw new FragfsError('NOT_FOUND', `${path}: no such file`, { path });
    return this.attrOf({ ino: h.ino, rec });
  }

  /** The directory at `path`, which the caller may list (readdir's checks). */
  private listable(path: string): Found {
    const f = lookupPath(this.state, path, this.who);
    if (!isDir(f.rec)) throw new FragfsError('NOT_DIR', `${path}: not a directory`, { path });
    if (this.who) checkAccess(f.rec, this.who, MAY_READ, path);
    return f;
  }

  async readdir(path: string): Promise<string[]> {
    const names: string[] = [];
    for (const { name } of this.state.listDir(this.listable(path).ino)) names.push(name.toString('utf8'));
    return names;
  }

  async readdirEntries(path: string): Promise<DirEntry[]> {
    const out: DirEntry[] = [];
    for (const { name, ino } of this.state.listDir(this.listable(path).ino)) {
      // Only the type bits are read: no copy of each record.
      out.push({ name: name.toString('utf8'), ino, mode: (this.state.peekInode(ino)?.mode ?? 0) & S_IFMT });
    }
    return out;
  }

  async access(path: string, mode: number): Promise<void> {
    const f = lookupPath(this.state, path, this.who);
    // access(2)'s R_OK/W_OK/X_OK are the MAY_* bits.
    if (this.who && (mode & 7) !== 0) checkAccess(f.rec, this.who, mode & 7, path);
  }

  async statfs(_path: string): Promise<StatFs> {
    let st: { bsize: number; blocks: number; bfree: number; bavail: number };
    try {
      st = await fsStatfs(this.repo.storePath || this.statePath);
    } catch {
      st = { bsize: 4096, blocks: 0, bfree: 0, bavail: 0 };
    }
    const used = this.state.inodeCount();
    const free = Math.max(0, 2 ** 32 - used);
    return {
      bsize: this.ctx.blockSize,
      frsize: st.bsize,
      blocks: st.blocks,
      bfree: st.bfree,
      bavail: st.bavail,
      files: used + free,
      ffree: free,
      favail: free,
      namemax: 255,
    };
  }

  // --- creating and removing names

  async mkdir(path: string, mode: number, caller: Caller): Promise<void> {
    this.writable(path);
    this.state.txn(() => createNode(this.state, path, S_IFDIR | (mode & 0o7777), caller, {}, this.who));
  }

  async rmdir(path: string): Promise<void> {
    this.writable(path);
    this.state.txn(() => removeNode(this.state, path, true, this.who));
  }

  async mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<void> {
    this.writable(path);
    const fmt = mode & S_IFMT || S_IFREG;
    if (fmt === S_IFDIR || fmt === S_IFLNK) throw new FragfsError('INVALID', `${path}: mknod cannot make that type`, { path });
    this.state.txn(() => createNode(this.state, path, fmt | (mode & 0o7777), caller, { rdev }, this.who));
  }

  async create(path: string, mode: number, flags: number, caller: Caller): Promise<number> {
    this.writable(path);
    const made = this.state.txn(() => {
      const p = lookupParent(this.state, path, this.who);
      if (p.existing) {
        if (flags & O_EXCL) throw new FragfsError('EXISTS', `${path}: already exists`, { path });
        return false;
      }
      createNode(this.state, path, S_IFREG | (mode & 0o7777), caller, {}, this.who);
      return true;
    });
    if (!made) return this.open(path, flags);
    const f = lookupPath(this.state, path);
    return this.newHandle({ ino: f.ino, flags, file: this.acquireFile(f, path), ra: newReadAheadState() });
  }

  async open(path: string, flags: number): Promise<number> {
    const f = lookupPath(this.state, path, this.who);
    const acc = flags & O_ACCMODE;
    const writing = acc === O_WRONLY || acc === O_RDWR || (flags & O_TRUNC) !== 0;
    if (writing) this.writable(path);
    if (this.who) checkAccess(f.rec, this.who, openMask(flags), path);
    if (isDir(f.rec)) {
      if (acc !== 0) throw new FragfsError('IS_DIR', `${path}: is a directory`, { path });
      return this.newHandle({ ino: f.ino, flags, ra: newReadAheadState() });
    }
    if (!isReg(f.rec)) return this.newHandle({ ino: f.ino, flags, ra: newReadAheadState() });
    const file = this.acquireFile(f, path);
    const fh = this.newHandle({ ino: f.ino, flags, file, ra: newReadAheadState() });
    if (!writing) this.loadAhead(path, f.ino);
    if (flags & O_TRUNC && file.size > 0) {
      try {
        await file.truncate(0);
      } catch (e) {
        await this.release(path, fh);
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
  private loadAhead(path: string, ino: number): void {
    const cut = path.lastIndexOf('/');
    const dirPath = cut <= 0 ? '/' : path.slice(0, cut);
    let dir: Found;
    try {
      dir = lookupPath(this.state, dirPath);
    } catch {
      return;
    }
    if (!this.siblings.opened(dir.ino)) return;
    const { state, cache, blockSize } = this.ctx;
    const own = state.getExtent(ino, 0);
    if (own) cache.prefetch(own, path);
    const prefix = dirPath === '/' ? '/' : `${dirPath}/`;
    for (const s of state.entriesAfter(dir.ino, nameBytes(path.slice(cut + 1), path), SIBLING_FILES)) {
      const rec = state.getInode(s.ino);
      if (!rec || !isReg(rec) || rec.size === 0 || rec.size > blockSize) continue;
      const ext = state.getExtent(s.ino, 0);
      if (ext) cache.prefetch(ext, prefix + s.name.toString());
    }
  }

  async read(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh, path);
    checkRange(path, length, position, buf);
    return this.fileOf(h, path).read(buf, length, position, h.ra);
  }

  async write(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    this.writable(path);
    const h = this.handle(fh, path);
    checkRange(path, length, position, buf);
    if ((h.flags & O_ACCMODE) === 0) throw new FragfsError('BAD_FD', `${path}: not open for writing`, { path });
    if (length === 0) return 0;
    return this.fileOf(h, path).write(buf, length, position, (h.flags & O_APPEND) !== 0);
  }

  async truncate(path: string, size: number): Promise<void> {
    this.writable(path);
    checkSize(path, size);
    const f = lookupPath(this.state, path, this.who);
    if (isDir(f.rec)) throw new FragfsError('IS_DIR', `${path}: is a directory`, { path });
    if (this.who) checkAccess(f.rec, this.who, MAY_WRITE, path);
    if (!isReg(f.rec)) throw new FragfsError('INVALID', `${path}: not a regular file`, { path });
    const file = this.acquireFile(f, path);
    try {
      await file.truncate(size);
    } finally {
      await this.releaseFile(file);
    }
  }

  async ftruncate(path: string, fh: number, size: number): Promise<void> {
    this.writable(path);
    checkSize(path, size);
    await this.fileOf(this.handle(fh, path), path).truncate(size);
  }

  async flush(path: string, fh: number): Promise<void> {
    // close(2) waits for FLUSH but not for RELEASE, so the file's last partial block is stored in
    // release: a program writing many small files is not held up by each store write, and the
    // stores of consecutive files overlap (one commit for many). The data stays readable from the
    // open file's buffer meanwhile; fsync still waits for it to be durable.
    this.handle(fh, path);
  }

  async fsync(path: string, fh: number, _dataOnly: boolean): Promise<void> {
    const h = this.handle(fh, path);
    if (this.readOnly) return;
    if (h.file) await h.file.flush();
    // Order: fragments durable, then the state that names them.
    await this.repo.sync();
    await this.state.sync();
  }

  async release(path: string, fh: number): Promise<void> {
    const h = this.handle(fh, path);
    this.handles.delete(fh);
    this.freeFhs.push(fh);
    if (!h.file) return;
    try {
      if (!this.readOnly) await h.file.flush();
    } finally {
      await this.releaseFile(h.file);
    }
  }

  async unlink(path: string): Promise<void> {
    this.writable(path);
    this.state.txn(() => this.freeOrOrphan(removeNode(this.state, path, false, this.who)));
  }

  async rename(from: string, to: string): Promise<void> {
    this.writable(from);
    this.state.txn(() => this.freeOrOrphan(renameNode(this.state, from, to, this.who)));
    for (const h of this.handles.values()) if (h.file && h.file.path === from) h.file.path = to;
  }

  async symlink(target: string, path: string, caller: Caller): Promise<void> {
    this.writable(path);
    if (typeof target !== 'string' || target.length === 0) throw new FragfsError('NOT_FOUND', `${path}: empty symlink target`, { path });
    this.state.txn(() => createNode(this.state, path, S_IFLNK | 0o777, caller, { target }, this.who));
  }

  async readlink(path: string): Promise<string> {
    const f = lookupPath(this.state, path, this.who);
    if (!isSymlink(f.rec) || f.rec.target === undefined) throw new FragfsError('INVALID', `${path}: not a symbolic link`, { path });
    return f.rec.target;
  }

  async link(existing: string, path: string): Promise<void> {
    this.writable(path);
    this.state.txn(() => linkNode(this.state, existing, path, this.who));
  }

  // --- attributes

  /**
   * Mode, owner and times of one inode (by path, or by open handle) in one transaction, each with the
   * kernel's permission rule; returns the attributes after the change.
   */
  private changeAttrs(path: string, fh: number | undefined, c: Omit<AttrChanges, 'size'>): Attr {
    this.writable(path);
    for (const t of [c.atimeMs, c.mtimeMs]) {
      if (t !== undefined && !Number.isFinite(t)) throw new FragfsError('INVALID', `${path}: bad time`, { path });
    }
    const given = (id: number | undefined) => (id !== undefined && id >= 0 && id !== NO_ID ? id : undefined);
    const uid = given(c.uid);
    const gid = given(c.gid);
    const byHandle = fh === undefined ? undefined : this.handle(fh, path).ino;
    return this.state.txn(() => {
      let f: Found;
      if (byHandle === undefined) f = lookupPath(this.state, path, this.who);
      else {
        const rec = this.state.getInode(byHandle);
        if (!rec) throw new FragfsError('NOT_FOUND', `${path}: no such file`, { path });
        f = { ino: byHandle, rec };
      }
      const rec = f.rec;
      const who = this.who;
      if (who) {
        if (c.mode !== undefined) checkOwner(rec, who, path);
        if (uid !== undefined || gid !== undefined) checkChown(rec, who, uid, gid, path);
        // The owner sets any times; others with write permission only "now" (which the kernel does
        // not tell apart from given times here, so write permission is accepted for both).
        if ((c.atimeMs !== undefined || c.mtimeMs !== undefined) && rec.uid !== who.uid && !permits(rec, who, MAY_WRITE)) {
          checkOwner(rec, who, path);
        }
      }
      // A time not given keeps its value, which for an open file may be ahead of the record.
      const current = c.atimeMs === undefined || c.mtimeMs === undefined ? this.attrOf(f) : undefined;
      const now = Date.now();
      if (c.mode !== undefined) rec.mode = (rec.mode & S_IFMT) | (c.mode & 0o7777);
      if (uid !== undefined) rec.uid = uid;
      if (gid !== undefined) rec.gid = gid;
      const timed = c.atimeMs !== undefined || c.mtimeMs !== undefined;
      if (timed) {
        rec.atimeMs = c.atimeMs ?? current!.atimeMs;
        rec.mtimeMs = c.mtimeMs ?? current!.mtimeMs;
      }
      rec.ctimeMs = now;
      this.state.putInode(f.ino, rec);
      this.state.inodeChanged(f.ino, rec);
      this.syncOpenTimes(f.ino, timed ? rec.mtimeMs : undefined, rec.ctimeMs);
      return this.attrOf(f);
    });
  }

  async chmod(path: string, mode: number): Promise<void> {
    this.changeAttrs(path, undefined, { mode });
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    this.changeAttrs(path, undefined, { uid, gid });
  }

  async utimens(path: string, atimeMs: number, mtimeMs: number): Promise<void> {
    this.changeAttrs(path, undefined, { atimeMs, mtimeMs });
  }

  async setattr(path: string, fh: number | undefined, c: AttrChanges): Promise<Attr> {
    const { size, ...rest } = c;
    const owner = rest.mode !== undefined || rest.uid !== undefined || rest.gid !== undefined;
    const times = rest.atimeMs !== undefined || rest.mtimeMs !== undefined;
    if (size === undefined) {
      if (owner || times) return this.changeAttrs(path, fh, rest);
    } else {
      if (owner) this.changeAttrs(path, fh, { mode: rest.mode, uid: rest.uid, gid: rest.gid });
      await (fh === undefined ? this.truncate(path, size) : this.ftruncate(path, fh, size));
      if (times) return this.changeAttrs(path, fh, { atimeMs: rest.atimeMs, mtimeMs: rest.mtimeMs });
    }
    return fh === undefined ? this.getattr(path) : this.fgetattr(path, fh);
  }

  // --- extended attributes

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.writable(path);
    const key = xattrName(name, path);
    this.state.txn(() => {
      const f = this.xattrTarget(path, name, true);
      const had = this.state.getXattr(f.ino, key) !== undefined;
      if (flags & XATTR_CREATE && had) throw new FragfsError('EXISTS', `${path}: attribute ${name} exists`, { path });
      if (flags & XATTR_REPLACE && !had) throw new FragfsError('NO_ATTR', `${path}: no attribute ${name}`, { path });
      this.state.putXattr(f.ino, key, Buffer.from(value));
      this.touchCtime(f);
    });
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    const f = this.xattrTarget(path, name, false);
    const v = this.state.getXattr(f.ino, xattrName(name, path));
    if (v === undefined) throw new FragfsError('NO_ATTR', `${path}: no attribute ${name}`, { path });
    return Buffer.from(v);
  }

  async listxattr(path: string): Promise<string[]> {
    const f = lookupPath(this.state, path, this.who);
    return [...this.state.listXattrs(f.ino)].map((x) => x.name.toString('utf8'));
  }

  async removexattr(path: string, name: string): Promise<void> {
    this.writable(path);
    const key = xattrName(name, path);
    this.state.txn(() => {
      const f = this.xattrTarget(path, name, true);
      if (this.state.getXattr(f.ino, key) === undefined) throw new FragfsError('NO_ATTR', `${path}: no attribute ${name}`, { path });
      this.state.removeXattr(f.ino, key);
      this.touchCtime(f);
    });
  }

  /** The inode whose xattr `name` is read or changed, after xattr_permission()'s checks. */
  private xattrTarget(path: string, name: string, writing: boolean): Found {
    const f = lookupPath(this.state, path, this.who);
    if (this.who) {
      if (name.startsWith('trusted.') && this.who.uid !== 0) {
        throw new FragfsError('NOT_PERMITTED', `${path}: trusted.* attributes are for root`, { path });
      }
      const mask = xattrMask(name, writing);
      if (mask !== 0) checkAccess(f.rec, this.who, mask, path);
    }
    return f;
  }

  private touchCtime(f: Found): void {
    f.rec.ctimeMs = Date.now();
    this.state.putInode(f.ino, f.rec);
    this.state.inodeChanged(f.ino, f.rec);
    this.syncOpenTimes(f.ino, undefined, f.rec.ctimeMs);
  }

  // --- whole filesystem

  async flushAll(): Promise<void> {
    if (this.readOnly || this.closed) return;
    await Promise.all([...this.files.values()].map((f) => f.flush()));
    await this.repo.sync();
    await this.state.sync();
  }

  async snapshot(name?: string): Promise<string> {
    if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
      throw new FragfsError('INVALID', 'a snapshot name must be a non-empty string');
    }
    this.writable('/');
    // One snapshot at a time: the invalidation record (`touched`) is per run.
    const run = this.snapshotting.then(() => this.snapshotOnce(name));
    this.snapshotting = run.catch(() => undefined);
    return run;
  }

  private async snapshotOnce(name: string | undefined): Promise<string> {
    await Promise.all([...this.files.values()].map((f) => f.flush()));
    const touched = new Set<number>();
    this.state.touched = touched;
    const rtx = this.state.readTxn();
    let result;
    try {
      result = await new SnapshotWriter(this.state, this.repo, rtx).run();
    } finally {
      rtx.done();
      this.state.touched = null;
    }
    // Cache what nothing changed while we wrote it (the invalidation walk recorded every dir it passed).
    this.state.txn(() => {
      for (const [ino, v] of result.newDirs) {
        if (!touched.has(ino) && this.state.getInode(ino)) this.state.putDirCache(ino, v);
      }
      for (const [ino, c] of result.newContent) {
        if (!touched.has(ino) && this.state.getInode(ino)) this.state.putContentCache(ino, c);
      }
    });
    const key = await writeSnapshot(this.repo, result.root, {
      source: [this.source],
      ...(name === undefined ? {} : { name }),
      files: result.files,
      dirs: result.dirs,
      logicalBytes: result.logicalBytes,
    });
    await this.state.sync();
    return key;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.snapshotting;
    let err: unknown;
    try {
      await this.flushAll();
    } catch (e) {
      err = e;
    }
    this.closed = true;
    await this.state.close();
    if (err) throw err;
  }
}

function checkRange(path: string, length: number, position: number, buf: Buffer): void {
  if (!Number.isSafeInteger(length) || length < 0 || length > buf.length || !Number.isSafeInteger(position) || position < 0) {
    throw new FragfsError('INVALID', `${path}: bad length or position`, { path });
  }
}

function checkSize(path: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new FragfsError('INVALID', `${path}: bad size ${size}`, { path });
}

function xattrName(name: string, path: string): Buffer {
  const b = Buffer.from(String(name), 'utf8');
  if (b.length === 0) throw new FragfsError('INVALID', `${path}: empty attribute name`, { path });
  if (b.length > 255) throw new FragfsError('RANGE', `${path}: attribute name too long`, { path });
  return b;
}

