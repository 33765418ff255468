// Serializes the live tree, as one LMDB read transaction sees it, into metadata fragments. Dirs
// with a cached meta id (nothing below them changed since it was written) are reused as they are,
// so the work grows with what changed since the last snapshot, not with the tree.

import type { Transaction } from 'lmdb';
import { FragfsError } from '../errors.js';
import { MANIFEST_INLINE_MAX, type BlockRef, type Entry, type Extent } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { fileContent, setDir, writeDir, type FileContent } from '../repo/tree-writer.js';
import { Semaphore, settleAll } from '../repo/semaphore.js';
import { keyedPages } from '../repo/tree-keys.js';
import { ROOT_INO, entryTypeOf, isDir, isReg, type InodeRecord } from './inode.js';
import type { DirCacheValue, FileContentCache, LiveState } from './live-state.js';

export interface TreeResult {
  root: Entry;
  files: number;
  dirs: number;
  logicalBytes: number;
  /** Dirs serialized by this run (ino -> id and totals): cache candidates. */
  newDirs: Map<number, DirCacheValue>;
  /** Paged manifests written by this run: cache candidates. */
  newContent: Map<number, FileContentCache>;
}

/** Sub-folders written side by side (see dirValue). */
const SUBTREES_AT_ONCE = 16;

export class SnapshotWriter {
  private readonly newDirs = new Map<number, DirCacheValue>();
  private readonly newContent = new Map<number, FileContentCache>();
  /**
   * Folders this run has written or is writing, as the read transaction sees them: the live state
   * learns their ids only when the run ends, so without this a batch that holds a folder and one of
   * its ancestors wrote the folder again for each of them (2,616 folder writes for 706 folders in an
   * untar of 12,000 files).
   */
  private readonly written = new Map<number, Promise<DirCacheValue>>();
  private readonly subtrees = new Semaphore(SUBTREES_AT_ONCE);

  constructor(
    private readonly state: LiveState,
    private readonly repo: Repo,
    private readonly rtx: Transaction,
  ) {}

  async run(): Promise<TreeResult> {
    const rec = this.state.getInode(ROOT_INO, this.rtx);
    if (!rec) throw new FragfsError('IO', 'the live state has no root inode');
    const d = await this.dirValue(ROOT_INO);
    const root = this.baseEntry(Buffer.alloc(0), ROOT_INO, rec);
    setDir(root, d);
    return { root, files: d.files, dirs: d.dirs, logicalBytes: d.bytes, newDirs: this.newDirs, newContent: this.newContent };
  }

  /**
   * A fragment this snapshot names without writing it (the live state's own): held with a gc
   * running beside it first, which brings it back if that gc had condemned it (src/gc/gc-guard.ts).
   */
  private async hold(kind: 'data' | 'meta', id: string): Promise<void> {
    await (await this.repo.writerGuard())?.hold(kind, id, true);
  }

  /**
   * Directory `ino` and every uncached directory below it, written as they are in the read
   * transaction (the background writer's unit: results go to `newDirs` and `newContent`).
   */
  async writeDirOf(ino: number): Promise<void> {
    const rec = this.state.getInode(ino, this.rtx);
    if (rec && isDir(rec)) await this.dirValue(ino);
  }

  /** What this run wrote: cache candidates. */
  results(): { newDirs: Map<number, DirCacheValue>; newContent: Map<number, FileContentCache> } {
    return { newDirs: this.newDirs, newContent: this.newContent };
  }

  private dirValue(ino: number): Promise<DirCacheValue> {
    let v = this.written.get(ino);
    if (v === undefined) {
      v = this.writeDirValue(ino);
      this.written.set(ino, v);
    }
    return v;
  }

  private async writeDirValue(ino: number): Promise<DirCacheValue> {
    const cached = this.state.getDirCache(ino, this.rtx);
    if (cached) {
      await this.hold('meta', cached.id);
      if (cached.key !== undefined) return cached;
      // A record from before dir objects had keys: the key is read from the fragment, and the record
      // given it (a cache candidate like a folder written here), so later snapshots read it no more.
      const key = await this.repo.metaKeyOf(cached.id);
      if (key !== undefined) {
        const keyed = { ...cached, key };
        this.newDirs.set(ino, keyed);
        return keyed;
      }
      // A folder sealed under the space's key (imported from an earlier store version): written
      // again below, so every keyed folder names a keyed tree (src/repo/tree-keys.ts).
    }
    const entries: Entry[] = [];
    let files = 0;
    let dirs = 0;
    let bytes = 0;
    const beside: Promise<void>[] = [];
    try {
      await this.fillEntries(ino, entries, beside, (f, d, b) => {
        files += f;
        dirs += d;
        bytes += b;
      });
    } catch (e) {
      // Nothing is left running behind a failure (nor failing later, unheard).
      await Promise.allSettled(beside);
      throw e;
    }
    await settleAll(beside);
    const d = await writeDir(this.repo, entries);
    const v: DirCacheValue = { ...d, files, dirs, bytes };
    this.newDirs.set(ino, v);
    return v;
  }

  /** The entries of folder `ino` into `entries`; sub-folders written beside go into `beside`. */
  private async fillEntries(
    ino: number,
    entries: Entry[],
    beside: Promise<void>[],
    count: (files: number, dirs: number, bytes: number) => void,
  ): Promise<void> {
    for (const { name, ino: child } of [...this.state.listDir(ino, this.rtx)]) {
      const rec = this.state.getInode(child, this.rtx);
      if (!rec) continue;
      const e = this.baseEntry(name, child, rec);
      if (isDir(rec)) {
        const fill = async (): Promise<void> => {
          const sub = await this.dirValue(child);
          setDir(e, sub);
          count(sub.files, sub.dirs + 1, sub.bytes);
        };
        // Sub-folders are written side by side while a slot is free (each write waits for its
        // pack, or a round trip to a remote store), else here and now: never waiting for a slot,
        // so a folder cannot wait on its own children, and at most SUBTREES_AT_ONCE paths are
        // held in memory.
        if (this.subtrees.tryAcquire()) beside.push(fill().finally(() => this.subtrees.release()));
        else await fill();
      } else if (isReg(rec)) {
        Object.assign(e, await this.content(child, rec));
        count(1, 0, rec.size);
      }
      entries.push(e);
    }
  }

  private baseEntry(name: Buffer, ino: number, rec: InodeRecord): Entry {
    const e: Entry = {
      name,
      type: entryTypeOf(rec.mode),
      mode: rec.mode & 0o7777,
      uid: rec.uid,
      gid: rec.gid,
      mtimeNs: rec.mtimeNs,
      size: rec.size,
    };
    if (rec.target !== undefined) e.target = rec.target;
    if (rec.rdev) e.rdev = rec.rdev;
    if (!isDir(rec) && rec.nlink > 1) {
      e.link = ino;
      e.nlink = rec.nlink;
    }
    if (rec.xattrs) {
      const xattrs = this.state.listXattrs(ino, this.rtx);
      if (xattrs.length > 0) e.xattrs = xattrs;
    }
    return e;
  }

  private firstBlock(ino: number): { blockNo: number; ref: BlockRef }[] {
    const ref = this.state.getExtent(ino, 0, this.rtx);
    return ref === undefined ? [] : [{ blockNo: 0, ref }];
  }

  private async content(ino: number, rec: InodeRecord): Promise<FileContent> {
    const blockSize = this.repo.blockSize;
    // Only a file of more than MANIFEST_INLINE_MAX blocks can have manifest pages cached.
    if (rec.size > MANIFEST_INLINE_MAX * blockSize) {
      const cached = this.state.getContentCache(ino, this.rtx);
      if (cached) {
        for (const id of cached.pages) await this.hold('meta', id);
        if (cached.pageKeys !== undefined) return cached;
        const keys: Uint8Array[] = [];
        for (const id of cached.pages) {
          const key = await this.repo.metaKeyOf(id);
          if (key !== undefined) keys.push(key);
        }
        if (keys.length === cached.pages.length) {
          const keyed = { pages: cached.pages, pageKeys: keys };
          this.newContent.set(ino, keyed);
          return keyed;
        }
        const keyed = await keyedPages(this.repo, cached.pages, undefined, `inode ${ino}`);
        this.newContent.set(ino, keyed);
        return keyed;
      }
    }
    const extents: Extent[] = [];
    // A file of one block at most (most files of a big tree) has only block 0: one read, no range scan.
    const refs = rec.size === 0 ? [] : rec.size <= blockSize ? this.firstBlock(ino) : this.state.extentsFrom(ino, 0, this.rtx);
    for (const { blockNo, ref } of refs) {
      const offset = blockNo * blockSize;
      if (offset >= rec.size) break;
      // Write ordering invariant 3 (docs/DESIGN.md): no committed extent reaches past the size. A
      // snapshot that dropped or cut such a block would hold a file nobody wrote: fail loudly instead.
      if (offset + ref.plainSize > rec.size) {
        throw new FragfsError('IO', `inode ${ino}: the live state has a block past the end of the file (a bug); snapshot refused`);
      }
      await this.hold('data', ref.id);
      extents.push({ offset, id: ref.id, key: ref.key, plainSize: ref.plainSize });
    }
    const c = await fileContent(this.repo, extents);
    if (c.pages) this.newContent.set(ino, c.pageKeys ? { pages: c.pages, pageKeys: c.pageKeys } : { pages: c.pages });
    return c;
  }
}
