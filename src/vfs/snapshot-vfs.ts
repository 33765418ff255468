// A read-only filesystem view of one snapshot (a meta key): resolves paths by walking directory
// fragments (decoded dirs cached), reads files through the shared block cache and read-ahead, and
// fails every mutation with READ_ONLY.

import { statfs as fsStatfs } from 'node:fs/promises';
import { FragfsError } from '../errors.js';
import type { DirObject, Entry, Extent, SnapshotObject } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { readExtents } from '../repo/tree-writer.js';
import { BlockCache, DEFAULT_CACHE_BYTES } from './block-cache.js';
import { NAME_MAX_BYTES, nameBytes, splitPath } from './dir-ops.js';
import { readExtentFile } from './extent-reader.js';
import { S_IFDIR, fmtOfEntryType, nsToMs } from './inode.js';
import { DEFAULT_READ_AHEAD_BYTES, newReadAheadState, type ReadAheadState } from './prefetch.js';
import { SIBLING_FILES, SiblingStream } from './sibling-prefetch.js';
import type { Attr, AttrChanges, Caller, DirEntry, StatFs, Vfs } from './vfs-api.js';

export interface SnapshotVfsOptions {
  repo: Repo;
  /** The snapshot's meta key (64 hex digits). */
  key: string;
  cacheBytes?: number;
  readAheadBytes?: number;
}

interface DirView {
  obj: DirObject;
  byName: Map<string, Entry>;
  /** Index of each name in obj.entries (readdir order). */
  pos: Map<string, number>;
  subdirs: number;
}

interface SnapHandle {
  entry: Entry;
  path: string;
  extents?: Extent[];
  ra: ReadAheadState;
}

const DIR_CACHE_MAX = 4096;
const HEX64 = /^[0-9a-f]{64}$/;

export class SnapshotVfs implements Vfs {
  readonly readOnly = true;
  readonly checksPermissions = false;
  private readonly cache: BlockCache;
  private readonly dirs = new Map<string, DirView>();
  private readonly inos = new Map<string, number>();
  private nextIno = 2;
  private readonly handles = new Map<number, SnapHandle>();
  private readonly freeFhs: number[] = [];
  private nextFh = 0;
  private readonly readAheadBytes: number;
  private readonly siblings = new SiblingStream();

  private constructor(
    private readonly repo: Repo,
    readonly key: string,
    private readonly snap: SnapshotObject,
    o: SnapshotVfsOptions,
  ) {
    this.cache = new BlockCache(repo, o.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.readAheadBytes = o.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
  }

  static async open(o: SnapshotVfsOptions): Promise<SnapshotVfs> {
    if (!o || !o.repo || typeof o.key !== 'string' || !HEX64.test(o.key)) {
      throw new FragfsError('BAD_KEY', `not a meta key (64 hex digits): ${String(o?.key)}`);
    }
    const snap = await o.repo.getMeta(o.key, 'snapshot', `snapshot ${o.key}`);
    return new SnapshotVfs(o.repo, o.key, snap, o);
  }

  // --- tree walking

  private async dirView(id: string, where: string): Promise<DirView> {
    const hit = this.dirs.get(id);
    if (hit) {
      this.dirs.delete(id);
      this.dirs.set(id, hit);
      return hit;
    }
    const obj = await this.repo.getMeta(id, 'dir', where);
    const byName = new Map<string, Entry>();
    const pos = new Map<string, number>();
    let subdirs = 0;
    obj.entries.forEach((e, i) => {
      byName.set(e.name, e);
      pos.set(e.name, i);
      if (e.type === 'dir') subdirs++;
    });
    const v: DirView = { obj, byName, pos, subdirs };
    this.dirs.set(id, v);
    if (this.dirs.size > DIR_CACHE_MAX) this.dirs.delete(this.dirs.keys().next().value as string);
    return v;
  }

  private async resolve(path: string): Promise<Entry> {
    const parts = splitPath(path);
    let e = this.snap.root;
    let walked = '';
    for (const part of parts) {
      nameBytes(part, path);
      if (e.type !== 'dir' || e.dir === undefined) {
        throw new FragfsError('NOT_DIR', `${path}: a path component is not a directory`, { path });
      }
      const view = await this.dirView(e.dir, walked || '/');
      const next = view.byName.get(part);
      if (!next) throw new FragfsError('NOT_FOUND', `${path}: no such file or directory`, { path });
      e = next;
      walked += '/' + part;
    }
    return e;
  }

  private inoOf(path: string, e: Entry): number {
    if (path === '/' || path === '') return 1;
    const k = e.link !== undefined ? `link:${e.link}` : `path:${path}`;
    let ino = this.inos.get(k);
    if (ino === undefined) {
      ino = this.nextIno++;
      this.inos.set(k, ino);
    }
    return ino;
  }

  private async attr(path: string, e: Entry): Promise<Attr> {
    const ms = nsToMs(e.mtimeNs);
    let nlink = 1;
    if (e.type === 'dir' && e.dir !== undefined) nlink = 2 + (await this.dirView(e.dir, path)).subdirs;
    let allocated = e.size;
    if (e.blocks) allocated = e.blocks.reduce((s, b) => s + b.plainSize, 0);
    const mode = (e.type === 'dir' ? S_IFDIR : fmtOfEntryType(e.type)) | (e.mode & 0o7777);
    return {
      ino: this.inoOf(path, e),
      mode,
      nlink,
      uid: e.uid,
      gid: e.gid,
      size: e.size,
      blocks: e.type === 'file' ? Math.ceil(allocated / 512) : 0,
      atimeMs: ms,
      mtimeMs: ms,
      ctimeMs: ms,
      rdev: e.rdev ?? 0,
    };
  }

  private ro(path: string): never {
    throw new FragfsError('READ_ONLY', `${path}: a snapshot is read-only`, { path });
  }

  private handle(fh: number, path: string): SnapHandle {
    const h = this.handles.get(fh);
    if (!h) throw new FragfsError('BAD_FD', `${path}: file handle ${fh} is not open`, { path });
    return h;
  }

  // --- reads

  async getattr(path: string): Promise<Attr> {
    return this.attr(path, await this.resolve(path));
  }

  async fgetattr(path: string, fh: number): Promise<Attr> {
    const h = this.handle(fh, path);
    return this.attr(h.path, h.entry);
  }

  async readdir(path: string): Promise<string[]> {
    const e = await this.resolve(path);
    if (e.type !== 'dir' || e.dir === undefined) throw new FragfsError('NOT_DIR', `${path}: not a directory`, { path });
    return (await this.dirView(e.dir, path)).obj.entries.map((x) => x.name);
  }

  async readdirEntries(path: string): Promise<DirEntry[]> {
    const e = await this.resolve(path);
    if (e.type !== 'dir' || e.dir === undefined) throw new FragfsError('NOT_DIR', `${path}: not a directory`, { path });
    const prefix = path === '/' ? '/' : `${path}/`;
    return (await this.dirView(e.dir, path)).obj.entries.map((x) => ({
      name: x.name,
      ino: this.inoOf(prefix + x.name, x),
      mode: x.type === 'dir' ? S_IFDIR : fmtOfEntryType(x.type),
    }));
  }

  async access(path: string, mode: number): Promise<void> {
    await this.resolve(path);
    if (mode & 2) this.ro(path);
  }

  async statfs(_path: string): Promise<StatFs> {
    let st = { bsize: 4096, blocks: 0, bfree: 0, bavail: 0 };
    if (this.repo.storePath) {
      try {
        st = await fsStatfs(this.repo.storePath);
      } catch {
        // keep zeros: space figures are informative on a read-only view
      }
    }
    const files = this.snap.files + this.snap.dirs + 1;
    return { bsize: this.repo.blockSize, frsize: st.bsize, blocks: st.blocks, bfree: 0, bavail: 0, files, ffree: 0, favail: 0, namemax: NAME_MAX_BYTES };
  }

  async open(path: string, flags: number): Promise<number> {
    if ((flags & 3) !== 0 || flags & 0o1000) this.ro(path);
    const entry = await this.resolve(path);
    const fh = this.freeFhs.pop() ?? this.nextFh++;
    this.handles.set(fh, { entry, path, ra: newReadAheadState() });
    if (entry.type === 'file') await this.loadAhead(path, entry);
    return fh;
  }

  /**
   * A file opened right after another of the same folder: load its first block and those of the
   * next small files (sibling-prefetch.ts). The parent's listing is already cached by `resolve`.
   */
  private async loadAhead(path: string, entry: Entry): Promise<void> {
    const cut = path.lastIndexOf('/');
    const dirPath = cut <= 0 ? '/' : path.slice(0, cut);
    const dir = await this.resolve(dirPath);
    if (dir.dir === undefined || !this.siblings.opened(dir.dir)) return;
    const first = (e: Entry) => (e.blocks?.[0]?.offset === 0 ? e.blocks[0] : undefined);
    const own = first(entry);
    if (own) this.cache.prefetch(own, path);
    const view = await this.dirView(dir.dir, dirPath);
    const at = view.pos.get(path.slice(cut + 1));
    if (at === undefined) return;
    const prefix = dirPath === '/' ? '/' : `${dirPath}/`;
    for (const e of view.obj.entries.slice(at + 1, at + 1 + SIBLING_FILES)) {
      if (e.type !== 'file' || e.size === 0 || e.size > this.repo.blockSize) continue;
      const b = first(e);
      if (b) this.cache.prefetch(b, prefix + e.name);
    }
  }

  async read(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh, path);
    if (h.entry.type === 'dir') throw new FragfsError('IS_DIR', `${path}: is a directory`, { path });
    if (!Number.isSafeInteger(length) || length < 0 || length > buf.length || !Number.isSafeInteger(position) || position < 0) {
      throw new FragfsError('INVALID', `${path}: bad length or position`, { path });
    }
    h.extents ??= await readExtents(this.repo, h.entry, h.path);
    const f = { extents: h.extents, size: h.entry.size, path: h.path };
    return readExtentFile(this.cache, f, buf, length, position, h.ra, this.repo.blockSize, this.readAheadBytes);
  }

  async readlink(path: string): Promise<string> {
    const e = await this.resolve(path);
    if (e.type !== 'symlink' || e.target === undefined) throw new FragfsError('INVALID', `${path}: not a symbolic link`, { path });
    return e.target;
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    const e = await this.resolve(path);
    const v = e.xattrs?.[name];
    if (v === undefined) throw new FragfsError('NO_ATTR', `${path}: no attribute ${name}`, { path });
    return Buffer.from(v);
  }

  async listxattr(path: string): Promise<string[]> {
    const e = await this.resolve(path);
    return Object.keys(e.xattrs ?? {});
  }

  async flush(path: string, fh: number): Promise<void> {
    this.handle(fh, path);
  }

  async fsync(path: string, fh: number, _dataOnly: boolean): Promise<void> {
    this.handle(fh, path);
  }

  async release(path: string, fh: number): Promise<void> {
    this.handle(fh, path);
    this.handles.delete(fh);
    this.freeFhs.push(fh);
  }

  // --- mutations: all READ_ONLY

  async mkdir(path: string, _mode: number, _caller: Caller): Promise<void> { this.ro(path); }
  async rmdir(path: string): Promise<void> { this.ro(path); }
  async mknod(path: string, _mode: number, _rdev: number, _caller: Caller): Promise<void> { this.ro(path); }
  async create(path: string, _mode: number, _flags: number, _caller: Caller): Promise<number> { this.ro(path); }
  async write(path: string, _fh: number, _buf: Buffer, _length: number, _position: number): Promise<number> { this.ro(path); }
  async truncate(path: string, _size: number): Promise<void> { this.ro(path); }
  async ftruncate(path: string, _fh: number, _size: number): Promise<void> { this.ro(path); }
  async unlink(path: string): Promise<void> { this.ro(path); }
  async rename(from: string, _to: string): Promise<void> { this.ro(from); }
  async symlink(_target: string, path: string, _caller: Caller): Promise<void> { this.ro(path); }
  async link(_existing: string, path: string): Promise<void> { this.ro(path); }
  async chmod(path: string, _mode: number): Promise<void> { this.ro(path); }
  async chown(path: string, _uid: number, _gid: number): Promise<void> { this.ro(path); }
  async utimens(path: string, _atimeMs: number, _mtimeMs: number): Promise<void> { this.ro(path); }
  async setattr(path: string, fh: number | undefined, c: AttrChanges): Promise<Attr> {
    if (Object.values(c).some((v) => v !== undefined)) this.ro(path);
    return fh === undefined ? this.getattr(path) : this.fgetattr(path, fh);
  }
  async setxattr(path: string, _name: string, _value: Buffer, _flags: number): Promise<void> { this.ro(path); }
  async removexattr(path: string, _name: string): Promise<void> { this.ro(path); }

  async flushAll(): Promise<void> {}

  /** A snapshot of a snapshot is the same tree: its key. */
  async snapshot(_name?: string): Promise<string> {
    return this.key;
  }

  async close(): Promise<void> {
    this.handles.clear();
  }
}
