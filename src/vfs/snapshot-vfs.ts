// A read-only filesystem view of one snapshot (a meta key). Inode numbers are computed from where an
// entry lies (the directory it is in and its index there), so the view keeps no table that grows with
// the entries the kernel has seen: only one small record per directory the kernel holds, and a cache
// of decoded directories bounded in bytes. Files are read through the shared block cache and read-ahead; every
// mutation fails with READ_ONLY.

import { STATFS_UNIT_BYTES } from '../store/store-usage.js';
import { FragfsError } from '../errors.js';
import { compareNames, NAME_MAX_BYTES } from '../fragment/names.js';
import { META_VERSION, type DirObject, type Entry, type Extent, type SnapshotObject } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { readExtents } from '../repo/tree-writer.js';
import { BlockCache, DEFAULT_CACHE_BYTES } from './block-cache.js';
import { ByteLru } from './byte-lru.js';
import { DEFAULT_META_CACHE_BYTES } from './live-state.js';
import { checkName, where } from './dir-ops.js';
import { cachedExtentAt, readExtentFile } from './extent-reader.js';
import { S_IFDIR, fmtOfEntryType } from './inode.js';
import { DEFAULT_READ_AHEAD_BYTES, newReadAheadState, type ReadAheadState } from './prefetch.js';
import { SIBLING_FILES, SiblingStream } from './sibling-prefetch.js';
import { ROOT_INO, type Attr, type DirEntry, type StatFs, type Vfs } from './vfs-api.js';
import { ReadOnlyVfs } from './read-only-vfs.js';

export interface SnapshotVfsOptions {
  repo: Repo;
  /** The snapshot's meta key (64 hex digits). */
  key: string;
  cacheBytes?: number;
  /** A block cache shared with other views of the same store (`mount --all`); else one of cacheBytes. */
  cache?: BlockCache;
  readAheadBytes?: number;
  /** Bytes of decoded directories kept in memory (default DEFAULT_META_CACHE_BYTES). */
  metaCacheBytes?: number;
}

/** A numbered folder: its dir object's id and, when its entry carries it, its own key. */
interface SlotDir {
  id: string;
  key?: Uint8Array;
}

interface DirView {
  obj: DirObject;
  subdirs: number;
  /** Its estimated memory (dirViewBytes). */
  bytes: number;
}

interface SnapHandle {
  ino: number;
  entry: Entry;
  extents?: Extent[];
  ra: ReadAheadState;
}

/** Entries per directory an inode number can address (2^24); a bigger directory is refused. */
const SLOT_ENTRIES = 2 ** 24;
/** Numbers below this are not computed ones (0 is none, 1 the root). */
const FIRST_INO = 2;
/** What a cached subdirectory count holds (map entry, id string). */
const SUBDIR_COUNT_BYTES = 160;

/**
 * What a decoded directory holds in V8's heap, estimated from its entries: the entry object, its
 * name, time and, for files, each inline extent (id string, key, object). Measured within 20 %.
 */
export function dirViewBytes(obj: DirObject): number {
  let n = 200;
  for (const e of obj.entries) {
    n += 260 + e.name.length + (e.target?.length ?? 0) + 320 * (e.blocks?.length ?? 0) + 100 * (e.pages?.length ?? 0) + (e.dir === undefined ? 0 : 100);
    if (e.xattrs) for (const x of e.xattrs) n += 200 + x.name.length + x.value.length;
  }
  return n;
}
const HEX64 = /^[0-9a-f]{64}$/;

export class SnapshotVfs extends ReadOnlyVfs implements Vfs {
  readonly readOnly = true;
  readonly checksPermissions = false;
  private readonly cache: BlockCache;
  /** Decoded directories by meta id, bounded in bytes (dirViewBytes). */
  private readonly dirs: ByteLru<string, DirView>;
  /** Subdirectory counts (a directory's st_nlink) by meta id, so a listing's attributes decode no subfolder twice. */
  private readonly subdirCounts: ByteLru<string, number>;
  /**
   * One slot per directory inode reached: its meta id. A directory's children are numbered in its
   * slot, so two equal directories (the same meta id) in two places still give their entries
   * different inode numbers, as the kernel needs (a directory has one parent). Slots are never
   * reused: one is dropped when the kernel forgets its directory (every name it held below it is gone
   * by then: a dentry holds its parent), and the directory gets a new one if it is reached again.
   */
  private readonly slotIds = new Map<number, SlotDir>();
  private nextSlot = 0;
  private readonly slotOfDir = new Map<number, number>();
  /** How many references the kernel holds on each directory inode given a slot (lookups, listed entries). */
  private readonly dirRefs = new Map<number, number>();
  /** Hard-link groups: the inode number of the first name seen, for every name of the group. */
  private readonly linkInos = new Map<number, number>();
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
    super();
    this.cache = o.cache ?? new BlockCache(repo, o.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.readAheadBytes = o.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
    const metaBytes = o.metaCacheBytes ?? DEFAULT_META_CACHE_BYTES;
    // A directory bigger than the budget is still decoded for the request that needs it, not kept.
    this.dirs = new ByteLru(Math.floor(metaBytes * 0.9), (v) => v.bytes);
    this.subdirCounts = new ByteLru(Math.floor(metaBytes * 0.1), () => SUBDIR_COUNT_BYTES);
  }

  static async open(o: SnapshotVfsOptions): Promise<SnapshotVfs> {
    if (!o || !o.repo || typeof o.key !== 'string' || !HEX64.test(o.key)) {
      throw new FragfsError('BAD_KEY', `not a meta key (64 hex digits): ${String(o?.key)}`);
    }
    const snap = await o.repo.getMeta(o.key, 'snapshot', `snapshot ${o.key}`);
    return new SnapshotVfs(o.repo, o.key, snap, o);
  }

  /** The snapshot object this view shows. */
  get snapshotObject(): SnapshotObject {
    return this.snap;
  }

  /**
   * A read-only view of one folder given by its entry (a share: its repo holds no space keys and
   * reads each folder with the key its parent's entry carries). `label` stands for the meta key in
   * messages; `totals` are what statfs shows.
   */
  static openEntry(o: Omit<SnapshotVfsOptions, 'key'> & { root: Entry; label: string; totals?: { files: number; dirs: number } }): SnapshotVfs {
    const snap: SnapshotObject = {
      kind: 'snapshot',
      v: META_VERSION,
      createdMs: 0,
      source: [],
      hostname: '',
      blockSize: o.repo.blockSize,
      root: o.root,
      files: o.totals?.files ?? 0,
      dirs: o.totals?.dirs ?? 0,
      logicalBytes: 0,
    };
    return new SnapshotVfs(o.repo, o.label, snap, { ...o, key: o.label });
  }

  // --- the tree

  private async dirView(id: string, ino: number, key: Uint8Array | undefined): Promise<DirView> {
    const hit = this.dirs.get(id);
    if (hit) return hit;
    const obj = await this.repo.getMeta(id, 'dir', where(ino), key);
    if (obj.entries.length >= SLOT_ENTRIES) {
      throw new FragfsError('CORRUPT', `directory fragment ${id} holds ${obj.entries.length} entries, more than a mount can number`, { fragmentId: id });
    }
    const v: DirView = { obj, subdirs: obj.entries.filter((e) => e.type === 'dir').length, bytes: dirViewBytes(obj) };
    this.dirs.set(id, v);
    this.subdirCounts.set(id, v.subdirs);
    return v;
  }

  /** The slot of directory inode `ino` whose entry is `e` (assigned on first use). */
  private slotOf(ino: number, e: Entry): number {
    let slot = this.slotOfDir.get(ino);
    if (slot === undefined) {
      if (e.type !== 'dir' || e.dir === undefined) throw new FragfsError('NOT_DIR', `${where(ino)}: not a directory`);
      slot = this.nextSlot++;
      this.slotIds.set(slot, e.dirKey === undefined ? { id: e.dir } : { id: e.dir, key: e.dirKey });
      this.slotOfDir.set(ino, slot);
    }
    return slot;
  }

  private inoAt(slot: number, index: number, e: Entry): number {
    const computed = FIRST_INO + slot * SLOT_ENTRIES + index;
    if (e.link === undefined || e.type === 'dir') return computed;
    const first = this.linkInos.get(e.link);
    if (first !== undefined) return first;
    this.linkInos.set(e.link, computed);
    return computed;
  }

  /** The entry inode `ino` names. */
  private async entryOf(ino: number): Promise<Entry> {
    if (ino === ROOT_INO) return this.snap.root;
    const n = ino - FIRST_INO;
    const slot = Math.floor(n / SLOT_ENTRIES);
    const d = Number.isSafeInteger(n) && n >= 0 ? this.slotIds.get(slot) : undefined;
    if (d === undefined) throw new FragfsError('NOT_FOUND', `${where(ino)}: no such inode in this snapshot`);
    const e = (await this.dirView(d.id, ino, d.key)).obj.entries[n % SLOT_ENTRIES];
    if (!e) throw new FragfsError('NOT_FOUND', `${where(ino)}: no such inode in this snapshot`);
    return e;
  }

  private async childrenOf(ino: number): Promise<{ slot: number; view: DirView }> {
    const e = await this.entryOf(ino);
    if (e.type !== 'dir' || e.dir === undefined) throw new FragfsError('NOT_DIR', `${where(ino)}: not a directory`);
    const slot = this.slotOf(ino, e);
    const d = this.slotIds.get(slot)!;
    return { slot, view: await this.dirView(d.id, ino, d.key) };
  }

  private async attr(ino: number, e: Entry): Promise<Attr> {
    const ns = e.mtimeNs;
    let nlink = e.nlink ?? 1;
    if (e.type === 'dir' && e.dir !== undefined) nlink = 2 + (this.subdirCounts.get(e.dir) ?? (await this.dirView(e.dir, ino, e.dirKey)).subdirs);
    let allocated = e.size;
    if (e.blocks) allocated = e.blocks.reduce((s, b) => s + b.plainSize, 0);
    const mode = (e.type === 'dir' ? S_IFDIR : fmtOfEntryType(e.type)) | (e.mode & 0o7777);
    return {
      ino,
      mode,
      nlink,
      uid: e.uid,
      gid: e.gid,
      size: e.size,
      blocks: e.type === 'file' ? Math.ceil(allocated / 512) : 0,
      atimeNs: ns,
      mtimeNs: ns,
      ctimeNs: ns,
      rdev: e.rdev ?? 0,
    };
  }

  protected ro(ino: number): never {
    throw new FragfsError('READ_ONLY', `${where(ino)}: a snapshot is read-only`);
  }

  private handle(fh: number, ino: number): SnapHandle {
    const h = this.handles.get(fh);
    if (!h) throw new FragfsError('BAD_FD', `${where(ino)}: file handle ${fh} is not open`);
    return h;
  }

  // --- reads

  async lookup(parent: number, name: Buffer): Promise<Attr> {
    checkName(name, parent);
    const { slot, view } = await this.childrenOf(parent);
    const entries = view.obj.entries;
    // Entries are sorted by name bytes (FORMAT.md): binary search.
    let lo = 0;
    let hi = entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = compareNames(entries[mid]!.name, name);
      if (c === 0) {
        const ino = this.inoAt(slot, mid, entries[mid]!);
        const attr = await this.attr(ino, entries[mid]!);
        this.referenced(ino, entries[mid]!);
        return attr;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    throw new FragfsError('NOT_FOUND', `${where(parent, name)}: no such file or directory`);
  }

  /** The kernel took a reference to `ino` (a lookup, a listed entry): only directories are counted. */
  private referenced(ino: number, e: Entry): void {
    if (e.type === 'dir') this.dirRefs.set(ino, (this.dirRefs.get(ino) ?? 0) + 1);
  }

  /** Whether `ino` may be a directory, from the decoded folders at hand (unknown counts as maybe). */
  private maybeDirIno(ino: number): boolean {
    const n = ino - FIRST_INO;
    const d = this.slotIds.get(Math.floor(n / SLOT_ENTRIES));
    const e = d === undefined ? undefined : this.dirs.peek(d.id)?.obj.entries[n % SLOT_ENTRIES];
    return e === undefined || e.type === 'dir';
  }

  listed(inos: readonly number[]): void {
    for (const ino of inos) {
      // Only directory inodes have slots; a listed directory's slot is assigned when it is first used.
      if (this.slotOfDir.has(ino) || this.maybeDirIno(ino)) this.dirRefs.set(ino, (this.dirRefs.get(ino) ?? 0) + 1);
    }
  }

  forget(ino: number, nlookup: number): void {
    // Inode numbers are computed from where an entry lies: only a directory's slot is kept, until the
    // kernel lets go of it.
    const refs = this.dirRefs.get(ino);
    if (refs === undefined) return;
    if (refs > nlookup) {
      this.dirRefs.set(ino, refs - nlookup);
      return;
    }
    this.dirRefs.delete(ino);
    const slot = this.slotOfDir.get(ino);
    if (slot === undefined) return;
    this.slotOfDir.delete(ino);
    this.slotIds.delete(slot);
  }

  async getattr(ino: number, fh?: number): Promise<Attr> {
    if (fh !== undefined) {
      const h = this.handle(fh, ino);
      return this.attr(h.ino, h.entry);
    }
    return this.attr(ino, await this.entryOf(ino));
  }

  async readdir(ino: number, plus: boolean): Promise<DirEntry[]> {
    const { slot, view } = await this.childrenOf(ino);
    const out: DirEntry[] = [];
    for (const [i, x] of view.obj.entries.entries()) {
      const childIno = this.inoAt(slot, i, x);
      const d: DirEntry = { name: x.name, ino: childIno, mode: x.type === 'dir' ? S_IFDIR : fmtOfEntryType(x.type) };
      if (plus) d.attr = await this.attr(childIno, x);
      out.push(d);
    }
    return out;
  }

  async access(ino: number, mode: number): Promise<void> {
    await this.entryOf(ino);
    if (mode & 2) this.ro(ino);
  }

  async statfs(): Promise<StatFs> {
    // df shows the snapshot itself: its size, full (nothing can be added), and its entries.
    const files = this.snap.files + this.snap.dirs + 1;
    const blocks = Math.ceil(this.snap.logicalBytes / STATFS_UNIT_BYTES);
    return { bsize: this.repo.blockSize, frsize: STATFS_UNIT_BYTES, blocks, bfree: 0, bavail: 0, files, ffree: 0, favail: 0, namemax: NAME_MAX_BYTES };
  }

  async open(ino: number, flags: number): Promise<number> {
    if ((flags & 3) !== 0 || flags & 0o1000) this.ro(ino);
    const entry = await this.entryOf(ino);
    const fh = this.freeFhs.pop() ?? this.nextFh++;
    this.handles.set(fh, { ino, entry, ra: newReadAheadState() });
    if (entry.type === 'file') await this.loadAhead(ino, entry);
    return fh;
  }

  /**
   * A file opened right after another of the same folder: load its first block and those of the
   * next small files (sibling-prefetch.ts). Its folder is the slot its number was computed in.
   */
  private async loadAhead(ino: number, entry: Entry): Promise<void> {
    if (ino === ROOT_INO) return;
    const n = ino - FIRST_INO;
    const slot = Math.floor(n / SLOT_ENTRIES);
    const d = this.slotIds.get(slot);
    if (d === undefined || !this.siblings.opened(slot)) return;
    const first = (e: Entry) => (e.blocks?.[0]?.offset === 0 ? e.blocks[0] : undefined);
    const own = first(entry);
    if (own) this.cache.prefetch(own, where(ino));
    const view = await this.dirView(d.id, ino, d.key);
    const at = n % SLOT_ENTRIES;
    for (const e of view.obj.entries.slice(at + 1, at + 1 + SIBLING_FILES)) {
      if (e.type !== 'file' || e.size === 0 || e.size > this.repo.blockSize) continue;
      const b = first(e);
      if (b) this.cache.prefetch(b, where(ino));
    }
  }

  async read(ino: number, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh, ino);
    if (h.entry.type === 'dir') throw new FragfsError('IS_DIR', `${where(ino)}: is a directory`);
    if (!Number.isSafeInteger(length) || length < 0 || length > buf.length || !Number.isSafeInteger(position) || position < 0) {
      throw new FragfsError('INVALID', `${where(ino)}: bad length or position`);
    }
    h.extents ??= await readExtents(this.repo, h.entry, where(ino));
    const f = { extents: h.extents, size: h.entry.size, path: where(ino) };
    return readExtentFile(this.cache, f, buf, length, position, h.ra, this.repo.blockSize, this.readAheadBytes);
  }

  cleanBlockAt(ino: number, fh: number, position: number): { offset: number; data: Uint8Array } | undefined {
    const h = this.handles.get(fh);
    if (!h || h.ino !== ino || !h.extents) return undefined;
    return cachedExtentAt(this.cache, { extents: h.extents, size: h.entry.size, path: '' }, position);
  }

  async readlink(ino: number): Promise<Buffer> {
    const e = await this.entryOf(ino);
    if (e.type !== 'symlink' || e.target === undefined) throw new FragfsError('INVALID', `${where(ino)}: not a symbolic link`);
    return e.target;
  }

  async getxattr(ino: number, name: Buffer): Promise<Buffer> {
    const e = await this.entryOf(ino);
    const x = e.xattrs?.find((a) => a.name.equals(name));
    if (x === undefined) throw new FragfsError('NO_ATTR', `${where(ino)}: no such attribute`);
    return x.value;
  }

  async listxattr(ino: number): Promise<Buffer[]> {
    const e = await this.entryOf(ino);
    return (e.xattrs ?? []).map((x) => x.name);
  }

  async flush(ino: number, fh: number): Promise<void> {
    this.handle(fh, ino);
  }

  async fsync(ino: number, fh: number, _dataOnly: boolean): Promise<void> {
    this.handle(fh, ino);
  }

  async release(ino: number, fh: number): Promise<void> {
    this.handle(fh, ino);
    this.handles.delete(fh);
    this.freeFhs.push(fh);
  }


  async flushAll(): Promise<void> {}

  /** A snapshot of a snapshot is the same tree: its key. */
  async snapshot(_name?: string): Promise<string> {
    return this.key;
  }

  async close(): Promise<void> {
    this.handles.clear();
  }
}
