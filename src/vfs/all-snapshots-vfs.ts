// Every snapshot of a store space at once, read-only (`fragfs mount STORE DIR --all`):
//   by-time/2026-11-30T07:12:00Z/   each snapshot's tree, one folder per snapshot, oldest first
//   by-name/monday -> ../by-time/…  each name, a symlink to the newest snapshot of that name
//   latest -> by-time/…             the newest snapshot
// The folders are made from the refs alone, so listing them costs no snapshot object however many
// there are; a snapshot's tree is opened (a SnapshotVfs) on the first lookup inside its folder.

import { FragfsError } from '../errors.js';
import { NAME_MAX_BYTES } from '../fragment/names.js';
import type { RefObject } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { STATFS_UNIT_BYTES } from '../store/store-usage.js';
import { BlockCache, DEFAULT_CACHE_BYTES } from './block-cache.js';
import { checkName, where } from './dir-ops.js';
import { S_IFDIR, S_IFLNK, msToNs } from './inode.js';
import { DEFAULT_META_CACHE_BYTES } from './live-state.js';
import { SnapshotVfs } from './snapshot-vfs.js';
import { ROOT_INO, type Attr, type DirEntry, type StatFs, type Vfs } from './vfs-api.js';
import { ReadOnlyVfs } from './read-only-vfs.js';

export interface AllSnapshotsVfsOptions {
  repo: Repo;
  /** Bytes of decrypted blocks, shared by every snapshot opened. */
  cacheBytes?: number;
  /** Bytes of decoded folders, for each snapshot opened (at least 1 MiB each). */
  metaCacheBytes?: number;
  /** How old the list of refs may get before a listing or a missed lookup reads it again (ms). */
  refreshMs?: number;
}

const BY_TIME_INO = 2;
const BY_NAME_INO = 3;
const LATEST_INO = 4;
/** Snapshot folders: this plus the snapshot's index in `snaps` (indices are never reused). */
const FIRST_SNAP_INO = 1024;
/** Entries inside snapshot trees: numbers handed out from here, one per (snapshot, inner inode). */
const FIRST_INNER_INO = 2 ** 40;

/** A lookup that misses reads the refs again when they are older than this (a name just taken). */
const MISS_REFRESH_MS = 200;

const BY_TIME = Buffer.from('by-time');
const BY_NAME = Buffer.from('by-name');
const LATEST = Buffer.from('latest');

interface SnapSlot {
  ref: RefObject;
  /** Its folder's name under by-time/. */
  folder: Buffer;
  /** Whether the current list of refs still holds it (a forgotten one keeps its number, unlisted). */
  listed: boolean;
  vfs?: Promise<SnapshotVfs>;
}

interface Mapped {
  /** Its key in `outerOf`. */
  key: string;
  snap: number;
  /** The inner inode (ROOT_INO for a one-file tree's file); negative: the by-name/ link to `snap`. */
  inner: number;
  /** References the kernel holds on the outer number. */
  refs: number;
}

/** The by-time/ folder name of a snapshot taken at `ms`: ISO 8601 in UTC to the second. */
export function timeFolderName(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export class AllSnapshotsVfs extends ReadOnlyVfs implements Vfs {
  readonly readOnly = true;
  /** Snapshots come and go (put, snapshot, forget) while mounted. */
  readonly frozen = false;
  readonly checksPermissions = false;
  private readonly snaps: SnapSlot[] = [];
  private readonly slotOfKey = new Map<string, number>();
  private readonly folderTaken = new Set<string>();
  private listedMs = 0;
  private refreshing: Promise<void> | undefined;
  private readonly cache: BlockCache;
  private readonly metaCacheBytes: number;
  private readonly refreshMs: number;
  private readonly outerOf = new Map<string, number>();
  private readonly mapped = new Map<number, Mapped>();
  private nextInner = FIRST_INNER_INO;
  private readonly fhs = new Map<number, { snap: number; inner: number } | undefined>();
  private nextFh = 0;
  private readonly freeFhs: number[] = [];
  private readonly mountedMs = Date.now();
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;

  private constructor(private readonly repo: Repo, o: AllSnapshotsVfsOptions) {
    super();
    this.cache = new BlockCache(repo, o.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.metaCacheBytes = Math.max(1 << 20, Math.floor((o.metaCacheBytes ?? DEFAULT_META_CACHE_BYTES) / 8));
    this.refreshMs = o.refreshMs ?? 5000;
  }

  static async open(o: AllSnapshotsVfsOptions): Promise<AllSnapshotsVfs> {
    const v = new AllSnapshotsVfs(o.repo, o);
    await v.refresh();
    return v;
  }

  /** The snapshots shown now (tests, the mount's log line). */
  get snapshotCount(): number {
    return this.snaps.filter((s) => s.listed).length;
  }

  // --- the list of snapshots

  private async refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const refs = await this.repo.listRefs({ onError: () => undefined });
        const now = new Set(refs.map((r) => r.snapshot));
        for (const s of this.snaps) s.listed = now.has(s.ref.snapshot);
        for (const ref of refs) {
          const at = this.slotOfKey.get(ref.snapshot);
          if (at !== undefined) {
            // A ref written again (a name moved) keeps its folder; its name may have changed.
            this.snaps[at]!.ref = ref;
            continue;
          }
          let folder = timeFolderName(ref.createdMs);
          // Two snapshots in one second: the later one's folder also names its key.
          if (this.folderTaken.has(folder)) folder = `${folder}-${ref.snapshot.slice(0, 8)}`;
          this.folderTaken.add(folder);
          this.slotOfKey.set(ref.snapshot, this.snaps.length);
          this.snaps.push({ ref, folder: Buffer.from(folder), listed: true });
        }
        this.listedMs = Date.now();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async fresh(): Promise<void> {
    if (Date.now() - this.listedMs > this.refreshMs) await this.refresh();
  }

  /** Listed snapshots, oldest first (listRefs order, then the order they appeared in). */
  private shown(): number[] {
    const idx = this.snaps.flatMap((s, i) => (s.listed ? [i] : []));
    return idx.sort((a, b) => this.snaps[a]!.ref.createdMs - this.snaps[b]!.ref.createdMs || a - b);
  }

  /** Each name's newest snapshot. */
  private names(): Map<string, number> {
    const out = new Map<string, number>();
    for (const i of this.shown()) {
      const n = this.snaps[i]!.ref.name;
      if (n !== undefined && Buffer.byteLength(n) <= NAME_MAX_BYTES) out.set(n, i);
    }
    return out;
  }

  private latest(): number | undefined {
    const s = this.shown();
    return s[s.length - 1];
  }

  private treeOf(i: number): Promise<SnapshotVfs> {
    const s = this.snaps[i]!;
    s.vfs ??= SnapshotVfs.open({ repo: this.repo, key: s.ref.snapshot, cache: this.cache, metaCacheBytes: this.metaCacheBytes }).catch((e: unknown) => {
      s.vfs = undefined;
      throw e;
    });
    return s.vfs;
  }

  // --- inode numbers

  /** What an outer number is: one of this view's own, a snapshot folder, or an entry inside a tree. */
  private kind(ino: number): { own: number } | { folder: number } | { inner: Mapped } {
    if (ino >= FIRST_INNER_INO) {
      const m = this.mapped.get(ino);
      if (m === undefined) throw new FragfsError('NOT_FOUND', `${where(ino)}: no such inode`);
      return { inner: m };
    }
    if (ino >= FIRST_SNAP_INO) {
      const i = ino - FIRST_SNAP_INO;
      if (this.snaps[i] === undefined) throw new FragfsError('NOT_FOUND', `${where(ino)}: no such inode`);
      return { folder: i };
    }
    if (ino === ROOT_INO || ino === BY_TIME_INO || ino === BY_NAME_INO || ino === LATEST_INO) return { own: ino };
    throw new FragfsError('NOT_FOUND', `${where(ino)}: no such inode`);
  }

  /** The outer number of inner inode `inner` of snapshot `snap` (the tree's root is its folder). */
  private outer(snap: number, inner: number, take: boolean): number {
    if (inner === ROOT_INO) return FIRST_SNAP_INO + snap;
    const k = `${snap}:${inner}`;
    let ino = this.outerOf.get(k);
    if (ino === undefined) {
      ino = this.nextInner++;
      this.outerOf.set(k, ino);
      this.mapped.set(ino, { key: k, snap, inner, refs: 0 });
    }
    if (take) this.mapped.get(ino)!.refs++;
    return ino;
  }

  private withIno(attr: Attr, ino: number): Attr {
    return { ...attr, ino };
  }

  private ownAttr(ino: number): Attr {
    const latest = this.latest();
    const link = (target: string): Attr => ({ ...this.dirAttr(ino, 0o777, 1), mode: S_IFLNK | 0o777, nlink: 1, size: Buffer.byteLength(target) });
    if (ino === LATEST_INO) return link(latest === undefined ? '' : this.latestTarget(latest));
    const n = ino === BY_TIME_INO ? this.shown().length : 0;
    return this.dirAttr(ino, 0o555, ino === ROOT_INO ? 4 : 2 + n);
  }

  private dirAttr(ino: number, perm: number, nlink: number, ms = this.mountedMs): Attr {
    const ns = msToNs(ms);
    return { ino, mode: S_IFDIR | perm, nlink, uid: this.uid, gid: this.gid, size: 0, blocks: 0, atimeNs: ns, mtimeNs: ns, ctimeNs: ns, rdev: 0 };
  }

  /** A snapshot's folder: its tree's root when it is open, else made from the ref (no read). */
  private async folderAttr(i: number): Promise<Attr> {
    const s = this.snaps[i]!;
    const ino = FIRST_SNAP_INO + i;
    if (s.vfs !== undefined) {
      const tree = await this.treeOf(i);
      if (tree.snapshotObject.root.type === 'dir') return this.withIno(await tree.getattr(ROOT_INO), ino);
    }
    return this.dirAttr(ino, 0o555, 2, s.ref.createdMs);
  }

  private latestTarget(i: number): string {
    return `by-time/${this.snaps[i]!.folder.toString()}`;
  }

  private nameLinkAttr(ino: number, i: number): Attr {
    const target = `../${this.latestTarget(i)}`;
    const ns = msToNs(this.snaps[i]!.ref.createdMs);
    return { ino, mode: S_IFLNK | 0o777, nlink: 1, uid: this.uid, gid: this.gid, size: Buffer.byteLength(target), blocks: 0, atimeNs: ns, mtimeNs: ns, ctimeNs: ns, rdev: 0 };
  }

  /** by-name/ links: numbered after the snapshot they point to (a name's link changes number when it moves). */
  private nameLinkIno(i: number): number {
    return -1 - i;
  }

  // --- Vfs

  async lookup(parent: number, name: Buffer): Promise<Attr> {
    checkName(name, parent);
    const k = this.kind(parent);
    if ('inner' in k) {
      const tree = await this.treeOf(k.inner.snap);
      const a = await tree.lookup(k.inner.inner, name);
      return this.withIno(a, this.outer(k.inner.snap, a.ino, true));
    }
    if ('folder' in k) {
      const tree = await this.treeOf(k.folder);
      const root = tree.snapshotObject.root;
      if (root.type === 'dir') {
        const a = await tree.lookup(ROOT_INO, name);
        return this.withIno(a, this.outer(k.folder, a.ino, true));
      }
      // A put of one file: its folder holds that file under its own name.
      if (!root.name.equals(name)) throw new FragfsError('NOT_FOUND', `${where(parent, name)}: no such file or directory`);
      const a = await tree.getattr(ROOT_INO);
      return this.withIno(a, this.outerFileRoot(k.folder, true));
    }
    return this.lookupOwn(parent, name, true);
  }

  private async lookupOwn(parent: number, name: Buffer, retry: boolean): Promise<Attr> {
    if (parent === ROOT_INO) {
      if (name.equals(BY_TIME)) return this.ownAttr(BY_TIME_INO);
      if (name.equals(BY_NAME)) return this.ownAttr(BY_NAME_INO);
      if (name.equals(LATEST) && this.latest() !== undefined) return this.ownAttr(LATEST_INO);
    } else if (parent === BY_TIME_INO) {
      const i = this.shown().find((j) => this.snaps[j]!.folder.equals(name));
      if (i !== undefined) return this.folderAttr(i);
    } else if (parent === BY_NAME_INO) {
      const i = this.names().get(name.toString());
      if (i !== undefined && Buffer.from(name.toString()).equals(name)) return this.nameLinkAttr(this.nameLinkNumber(i, true), i);
    } else {
      throw new FragfsError('NOT_DIR', `${where(parent)}: not a directory`);
    }
    // A snapshot taken since the list was read is found without waiting for the next listing.
    if (retry && Date.now() - this.listedMs > MISS_REFRESH_MS) {
      await this.refresh();
      return this.lookupOwn(parent, name, false);
    }
    throw new FragfsError('NOT_FOUND', `${where(parent, name)}: no such file or directory`);
  }

  /** by-name/ links get numbers of the inner range's kind, kept per snapshot. */
  private nameLinkNumber(i: number, take: boolean): number {
    return this.outer(i, this.nameLinkIno(i), take);
  }

  /** A file root's number (inner ROOT_INO of a one-file snapshot, under its folder). */
  private outerFileRoot(snap: number, take: boolean): number {
    const k = `${snap}:file-root`;
    let ino = this.outerOf.get(k);
    if (ino === undefined) {
      ino = this.nextInner++;
      this.outerOf.set(k, ino);
      this.mapped.set(ino, { key: k, snap, inner: ROOT_INO, refs: 0 });
    }
    if (take) this.mapped.get(ino)!.refs++;
    return ino;
  }

  forget(ino: number, nlookup: number): void {
    const m = ino >= FIRST_INNER_INO ? this.mapped.get(ino) : undefined;
    if (m === undefined) return;
    if (m.inner >= 0) void this.snaps[m.snap]?.vfs?.then((t) => t.forget(m.inner, nlookup)).catch(() => undefined);
    m.refs -= nlookup;
    if (m.refs > 0) return;
    this.mapped.delete(ino);
    this.outerOf.delete(m.key);
  }

  listed(inos: readonly number[]): void {
    const bySnap = new Map<number, number[]>();
    for (const ino of inos) {
      const m = ino >= FIRST_INNER_INO ? this.mapped.get(ino) : undefined;
      if (m === undefined) continue;
      m.refs++;
      if (m.inner < 0) continue;
      const list = bySnap.get(m.snap) ?? [];
      list.push(m.inner);
      bySnap.set(m.snap, list);
    }
    for (const [snap, list] of bySnap) void this.snaps[snap]?.vfs?.then((t) => t.listed(list));
  }

  async getattr(ino: number, fh?: number): Promise<Attr> {
    const k = this.kind(ino);
    if ('inner' in k) {
      if (k.inner.inner < 0) return this.nameLinkAttr(ino, k.inner.snap);
      const inner = fh === undefined ? undefined : this.fhs.get(fh);
      const tree = await this.treeOf(k.inner.snap);
      return this.withIno(await tree.getattr(k.inner.inner, inner?.inner), ino);
    }
    if ('folder' in k) return this.folderAttr(k.folder);
    return this.ownAttr(ino);
  }

  async readlink(ino: number): Promise<Buffer> {
    if (ino === LATEST_INO) {
      const latest = this.latest();
      if (latest === undefined) throw new FragfsError('NOT_FOUND', 'no snapshots');
      return Buffer.from(this.latestTarget(latest));
    }
    const k = this.kind(ino);
    if ('inner' in k) {
      if (k.inner.inner < 0) return Buffer.from(`../${this.latestTarget(k.inner.snap)}`);
      return (await this.treeOf(k.inner.snap)).readlink(k.inner.inner);
    }
    throw new FragfsError('INVALID', `${where(ino)}: not a symbolic link`);
  }

  async access(ino: number, mode: number): Promise<void> {
    await this.getattr(ino);
    if (mode & 2) this.ro(ino);
  }

  async statfs(): Promise<StatFs> {
    const files = this.snaps.reduce((n, s) => n + (s.listed ? 1 : 0), 0);
    const bytes = this.snaps.reduce((n, s) => n + (s.listed ? s.ref.logicalBytes : 0), 0);
    return { bsize: this.repo.blockSize, frsize: STATFS_UNIT_BYTES, blocks: Math.ceil(bytes / STATFS_UNIT_BYTES), bfree: 0, bavail: 0, files, ffree: 0, favail: 0, namemax: NAME_MAX_BYTES };
  }

  async open(ino: number, flags: number): Promise<number> {
    if ((flags & 3) !== 0 || flags & 0o1000) this.ro(ino);
    const k = this.kind(ino);
    let inner: { snap: number; inner: number } | undefined;
    if ('inner' in k && k.inner.inner >= 0) {
      const tree = await this.treeOf(k.inner.snap);
      inner = { snap: k.inner.snap, inner: await tree.open(k.inner.inner, flags) };
    } else if ('folder' in k) {
      const tree = await this.treeOf(k.folder);
      if (tree.snapshotObject.root.type === 'dir') inner = { snap: k.folder, inner: await tree.open(ROOT_INO, flags) };
    }
    const fh = this.freeFhs.pop() ?? this.nextFh++;
    this.fhs.set(fh, inner);
    return fh;
  }

  async read(ino: number, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.fhs.get(fh);
    const k = this.kind(ino);
    if (h === undefined || !('inner' in k)) throw new FragfsError('IS_DIR', `${where(ino)}: is a directory`);
    return (await this.treeOf(h.snap)).read(k.inner.inner, h.inner, buf, length, position);
  }

  async release(ino: number, fh: number): Promise<void> {
    const h = this.fhs.get(fh);
    if (!this.fhs.has(fh)) throw new FragfsError('BAD_FD', `${where(ino)}: file handle ${fh} is not open`);
    this.fhs.delete(fh);
    this.freeFhs.push(fh);
    if (h !== undefined) {
      const k = this.kind(ino);
      await (await this.treeOf(h.snap)).release('inner' in k ? k.inner.inner : ROOT_INO, h.inner);
    }
  }

  async flush(ino: number, fh: number): Promise<void> {
    if (!this.fhs.has(fh)) throw new FragfsError('BAD_FD', `${where(ino)}: file handle ${fh} is not open`);
  }

  async fsync(ino: number, fh: number, _dataOnly: boolean): Promise<void> {
    await this.flush(ino, fh);
  }

  async readdir(ino: number, plus: boolean): Promise<DirEntry[]> {
    const k = this.kind(ino);
    if ('inner' in k || 'folder' in k) {
      const snap = 'inner' in k ? k.inner.snap : k.folder;
      const tree = await this.treeOf(snap);
      const innerIno = 'inner' in k ? k.inner.inner : ROOT_INO;
      if ('folder' in k && tree.snapshotObject.root.type !== 'dir') {
        const root = tree.snapshotObject.root;
        const fileIno = this.outerFileRoot(snap, false);
        const d: DirEntry = { name: root.name, ino: fileIno, mode: (await tree.getattr(ROOT_INO)).mode };
        if (plus) d.attr = this.withIno(await tree.getattr(ROOT_INO), fileIno);
        return root.name.length === 0 ? [] : [d];
      }
      return (await tree.readdir(innerIno, plus)).map((d) => {
        const outer = this.outer(snap, d.ino, false);
        return { ...d, ino: outer, ...(d.attr === undefined ? {} : { attr: this.withIno(d.attr, outer) }) };
      });
    }
    await this.fresh();
    const out: DirEntry[] = [];
    if (ino === ROOT_INO) {
      for (const [name, i] of [[BY_NAME, BY_NAME_INO], [BY_TIME, BY_TIME_INO], [LATEST, LATEST_INO]] as const) {
        if (i === LATEST_INO && this.latest() === undefined) continue;
        const attr = this.ownAttr(i);
        out.push({ name, ino: i, mode: attr.mode & 0o170000, ...(plus ? { attr } : {}) });
      }
    } else if (ino === BY_TIME_INO) {
      for (const i of this.shown()) {
        const attr = await this.folderAttr(i);
        out.push({ name: this.snaps[i]!.folder, ino: attr.ino, mode: S_IFDIR, ...(plus ? { attr } : {}) });
      }
    } else if (ino === BY_NAME_INO) {
      for (const [name, i] of [...this.names()].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])))) {
        const linkIno = this.nameLinkNumber(i, false);
        out.push({ name: Buffer.from(name), ino: linkIno, mode: S_IFLNK, ...(plus ? { attr: this.nameLinkAttr(linkIno, i) } : {}) });
      }
    } else {
      throw new FragfsError('NOT_DIR', `${where(ino)}: not a directory`);
    }
    return out;
  }

  async getxattr(ino: number, name: Buffer): Promise<Buffer> {
    const k = this.kind(ino);
    if ('inner' in k && k.inner.inner >= 0) return (await this.treeOf(k.inner.snap)).getxattr(k.inner.inner, name);
    if ('folder' in k && this.snaps[k.folder]!.vfs !== undefined) return (await this.treeOf(k.folder)).getxattr(ROOT_INO, name);
    throw new FragfsError('NO_ATTR', `${where(ino)}: no such attribute`);
  }

  async listxattr(ino: number): Promise<Buffer[]> {
    const k = this.kind(ino);
    if ('inner' in k && k.inner.inner >= 0) return (await this.treeOf(k.inner.snap)).listxattr(k.inner.inner);
    return [];
  }

  protected ro(ino: number): never {
    throw new FragfsError('READ_ONLY', `${where(ino)}: every snapshot is read-only`);
  }


  async flushAll(): Promise<void> {}

  async snapshot(_name?: string): Promise<string> {
    throw new FragfsError('READ_ONLY', 'a mount of every snapshot takes no snapshot of its own');
  }

  async close(): Promise<void> {
    for (const s of this.snaps) await (await s.vfs?.catch(() => undefined))?.close();
  }
}
