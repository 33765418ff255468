// Makes a fresh live state hold a snapshot's tree, so a machine can take over a remote store's
// read-write mount from its last published head (docs/DESIGN.md, "Remote stores"). Files keep the
// blocks the snapshot names (no block is read, re-encoded or stored again), hard links stay links,
// and every directory's snapshot cache is primed with the directory's meta id, so the next snapshot
// writes only what changes after the import.

import { FragfsError } from '../errors.js';
import type { Entry } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { Semaphore } from '../repo/semaphore.js';
import { TreeBudget, type TreeTotals } from '../repo/tree-limits.js';
import { childPath } from '../repo/tree-reader.js';
import { readExtents } from '../repo/tree-writer.js';
import { ROOT_INO, S_IFDIR, fmtOfEntryType, nowNs, type InodeRecord } from './inode.js';
import type { DirCacheValue } from './live-records.js';
import type { LiveState } from './live-state.js';

/** Directories fetched at once: a remote store answers each in a round trip. */
const DIR_FETCHES = 16;

interface Totals {
  files: number;
  dirs: number;
  bytes: number;
}

interface FileContent {
  extents: { blockNo: number; ref: { id: string; key: Uint8Array; plainSize: number } }[];
  alloc: number;
}

export class LiveImport {
  /** Snapshot hard-link group -> the live inode given to its first name. */
  private readonly links = new Map<number, number>();
  private readonly limit = new Semaphore(DIR_FETCHES);
  /** A head from the service is input like any other: its tree may not hold more than it declares. */
  private readonly budget: TreeBudget;

  constructor(
    private readonly state: LiveState,
    private readonly repo: Repo,
    declared: TreeTotals,
    snapshotKey: string,
  ) {
    this.budget = new TreeBudget(declared, snapshotKey);
  }

  /** Imports `root` (a snapshot's root dir entry) into the state, whose root MUST be empty. */
  async run(root: Entry): Promise<Totals> {
    this.budget.count(root, '/', true);
    if (root.type !== 'dir' || root.dir === undefined) {
      throw new FragfsError('NOT_SUPPORTED', 'only a snapshot of a folder can become the live tree');
    }
    if (!this.state.dirIsEmpty(ROOT_INO)) throw new Error('LiveImport: the live state is not empty');
    const totals = await this.importDir(ROOT_INO, root.dir, '/');
    const now = nowNs();
    this.state.txn(() => {
      const rec = this.state.getInode(ROOT_INO)!;
      this.state.putInode(ROOT_INO, {
        ...rec,
        mode: S_IFDIR | (root.mode & 0o7777),
        uid: root.uid,
        gid: root.gid,
        mtimeNs: root.mtimeNs,
        ctimeNs: now,
        xattrs: root.xattrs?.length ?? 0,
      });
      for (const x of root.xattrs ?? []) this.state.putXattr(ROOT_INO, x.name, x.value);
      this.state.putDirCache(ROOT_INO, { id: root.dir!, ...(root.dirKey ? { key: root.dirKey } : {}), ...totals });
    });
    return totals;
  }

  private async importDir(ino: number, dirId: string, path: string): Promise<Totals> {
    const { entries, contents } = await this.limit.run(async () => {
      const dir = await this.repo.getMeta(dirId, 'dir', path);
      const contents = new Map<Entry, FileContent>();
      for (const e of dir.entries) {
        // Counted before any work on the entry, so a tree that repeats one folder 2^40 times stops here.
        this.budget.count(e, childPath(path, e.name), false);
        if (e.type === 'file') contents.set(e, await this.content(e, childPath(path, e.name)));
      }
      return { entries: dir.entries, contents };
    });
    const subdirs: { ino: number; entry: Entry }[] = [];
    const totals: Totals = { files: 0, dirs: 0, bytes: 0 };
    const now = nowNs();
    // One transaction per directory: a crash mid-import leaves a state the next mount starts over.
    this.state.txn(() => {
      for (const e of entries) {
        const fmt = fmtOfEntryType(e.type);
        if (e.type === 'file') {
          totals.files++;
          totals.bytes += e.size;
        }
        const linked = e.link === undefined ? undefined : this.links.get(e.link);
        if (linked !== undefined) {
          const rec = this.state.getInode(linked)!;
          this.state.putInode(linked, { ...rec, parents: [...rec.parents, ino] });
          this.state.putEntry(ino, e.name, linked, fmt);
          continue;
        }
        const child = this.state.allocIno();
        if (e.link !== undefined) this.links.set(e.link, child);
        const content = contents.get(e);
        const mtimeNs = e.mtimeNs;
        const rec: InodeRecord = {
          mode: fmt | (e.mode & 0o7777),
          uid: e.uid,
          gid: e.gid,
          size: e.size,
          atimeNs: mtimeNs,
          mtimeNs,
          ctimeNs: now,
          nlink: e.type === 'dir' ? 2 : (e.nlink ?? 1),
          alloc: content?.alloc ?? 0,
          parents: [ino],
        };
        if (e.target !== undefined) rec.target = e.target;
        if (e.rdev) rec.rdev = e.rdev;
        if (e.xattrs?.length) rec.xattrs = e.xattrs.length;
        this.state.putInode(child, rec);
        this.state.putEntry(ino, e.name, child, fmt);
        for (const x of e.xattrs ?? []) this.state.putXattr(child, x.name, x.value);
        for (const { blockNo, ref } of content?.extents ?? []) this.state.putExtent(child, blockNo, ref);
        if (e.pages) this.state.putContentCache(child, e.pageKeys ? { pages: e.pages, pageKeys: e.pageKeys } : { pages: e.pages });
        if (e.type === 'dir' && e.dir !== undefined) subdirs.push({ ino: child, entry: e });
      }
    });
    const subs = await Promise.all(
      subdirs.map(async ({ ino: child, entry }) => {
        const t = await this.importDir(child, entry.dir!, childPath(path, entry.name));
        return { child, entry, t };
      }),
    );
    this.state.txn(() => {
      for (const { child, entry, t } of subs) {
        totals.files += t.files;
        totals.dirs += t.dirs + 1;
        totals.bytes += t.bytes;
        const v: DirCacheValue = { id: entry.dir!, ...(entry.dirKey ? { key: entry.dirKey } : {}), ...t };
        this.state.putDirCache(child, v);
      }
      const rec = this.state.getInode(ino)!;
      this.state.putInode(ino, { ...rec, nlink: 2 + subdirs.length });
    });
    return totals;
  }

  private async content(e: Entry, where: string): Promise<FileContent> {
    const bs = this.repo.blockSize;
    const extents: FileContent['extents'] = [];
    let alloc = 0;
    for (const x of await readExtents(this.repo, e, where)) {
      // The live state keys a file's blocks by number: a block that does not start on a block
      // boundary (a store whose block size changed) cannot be one of its extents.
      if (x.offset % bs !== 0 || x.plainSize > bs) {
        throw new FragfsError('NOT_SUPPORTED', `${where}: a block at offset ${x.offset} does not fit the store's ${bs}-byte blocks`);
      }
      extents.push({ blockNo: x.offset / bs, ref: { id: x.id, key: x.key, plainSize: x.plainSize } });
      alloc += x.plainSize;
    }
    return { extents, alloc };
  }
}
