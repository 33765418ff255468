// The `dir` backend (seed 003's object store): one file per fragment in a 2-hex fan-out tree,
// STORE/<space>/objects|meta|refs/<id[0:2]>/<id[2:64]>, written atomically through STORE/<space>/tmp/.
// Also the base class of the `split` backend, which shares the tree, the temp-file discipline,
// the directory syncing and the listing walk.
//
// Durability (the one documented trade-off of this backend): every put writes a temp file,
// fdatasyncs it and renames it into place before it resolves, so a fragment's bytes are durable and
// no name ever points at a partial file. The fsync of the directories whose entries changed (the
// fan-out dir of each put/delete, and the parents of newly created dirs) is batched into `sync()`
// (also run by `close()`): after power loss a put that resolved without a later sync() may be absent
// (never partial, never wrong). kill -9 of the process alone loses nothing, as the kernel keeps the
// entries. Callers that need per-put durability of the name call sync(); Repo.sync() does.
//
// Crash leftovers: at most a temp file in STORE/<space>/tmp/, which is never listed; opening the
// store read-write removes temp files older than the opening process whose writer is gone.
//
// Trash (Store contract): STORE/<space>/trash/objects|meta|refs/<fan>/<rest>, the same tree one
// level down, made on demand by the first trash. trash and untrash are one rename(2) each between
// the two trees (one file system: atomic, and nothing written but directory entries), so a crash
// leaves the file in one place or the other, whole. Their directory fsyncs go into sync() as a put's.

import { open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { DirSyncer, readOnlyError, removeStrayTempFiles, writeFileAtomic } from './atomic-file.js';
import { mkdirPrivate } from './private-modes.js';
import { OpenFileCache } from './open-file-cache.js';
import {
  checkId,
  checkRange,
  checkNamespace,
  isValidSpaceName,
  missingFragment,
  type FragmentKind,
  type Namespace,
  type PutOptions,
  type Store,
} from './store.js';

/** Folder name of each kind under STORE/<space>/. */
export const KIND_DIRS: Readonly<Record<FragmentKind, string>> = { data: 'objects', meta: 'meta', ref: 'refs', pack: 'packs', index: 'index', parity: 'parity' };
export const TEMP_DIR = 'tmp';
/** Folder under STORE/<space>/ holding the trash, with the kind folders of the store's own tree. */
export const TRASH_DIR = 'trash';

const FAN_RE = /^[0-9a-f]{2}$/;
const REST_RE = /^[0-9a-f]{62}$/;

export function isEnoent(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export interface FileTreeOpenOptions {
  readOnly?: boolean;
}

/**
 * Checks that `root` exists (read-only) or creates it 0700 (read-write), and removes stray temp files
 * in every space folder when opened read-write. Every folder this backend makes is 0700 and every
 * file 0600 (src/store/private-modes.ts).
 */
export async function prepareFileTreeRoot(root: string, readOnly: boolean): Promise<void> {
  if (readOnly) {
    try {
      const st = await stat(root);
      if (!st.isDirectory()) throw new FragfsError('NO_STORE', `not a store folder: ${root}`, { path: root });
    } catch (e) {
      if (isEnoent(e)) throw new FragfsError('NO_STORE', `no store folder at ${root}`, { path: root });
      throw fromFsError(e, 'cannot open store folder', root);
    }
    return;
  }
  try {
    await mkdirPrivate(root);
    for (const name of await readdir(root)) {
      if (isValidSpaceName(name)) await removeStrayTempFiles(join(root, name, TEMP_DIR));
    }
  } catch (e) {
    throw fromFsError(e, 'cannot open store folder', root);
  }
}

export class DirStore implements Store {
  readonly backend: 'dir' | 'split' = 'dir';
  /** Directories known to exist (created or seen by this handle), so a put does one mkdir per dir, ever. */
  private readonly knownDirs = new Set<string>();
  protected readonly syncer = new DirSyncer();
  /** Read handles kept between range reads (packs are read a fragment at a time). */
  protected readonly readHandles = new OpenFileCache();

  protected constructor(
    readonly root: string,
    readonly readOnly: boolean,
  ) {}

  static async open(root: string, o: FileTreeOpenOptions = {}): Promise<DirStore> {
    await prepareFileTreeRoot(root, o.readOnly ?? false);
    return new DirStore(root, o.readOnly ?? false);
  }

  // ---- layout -------------------------------------------------------------------------------

  /** File-name suffix of whole fragments of a kind (split: `.meta.msgpack` for meta). */
  protected suffix(_kind: FragmentKind): string {
    return '';
  }

  /** The kind's folder, in place or in the trash. */
  protected kindDir(ns: Namespace, trash = false): string {
    return trash ? join(this.root, ns.space, TRASH_DIR, KIND_DIRS[ns.kind]) : join(this.root, ns.space, KIND_DIRS[ns.kind]);
  }

  protected fanDir(ns: Namespace, id: string, trash = false): string {
    return join(this.kindDir(ns, trash), id.slice(0, 2));
  }

  /** Path of the file for `id` in `ns` with a suffix (none for a dir fragment). */
  protected pathOf(ns: Namespace, id: string, suffix = this.suffix(ns.kind)): string {
    return join(this.fanDir(ns, id), id.slice(2) + suffix);
  }

  /** Path of the trash file for `id` in `ns`, named as in place. */
  protected trashPathOf(ns: Namespace, id: string, suffix = this.suffix(ns.kind)): string {
    return join(this.fanDir(ns, id, true), id.slice(2) + suffix);
  }

  /** The on-disk path of a whole fragment (for tests and tools; split data has two files). */
  fragmentPath(ns: Namespace, id: string): string {
    checkNamespace(ns);
    checkId(id);
    return this.pathOf(ns, id);
  }

  // ---- file primitives ----------------------------------------------------------------------

  protected async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    try {
      const first = await mkdirPrivate(dir);
      if (first !== undefined) {
        // Every level from `first` down was created: its entry lives in its parent.
        let d = dir;
        while (d.length >= first.length) {
          this.syncer.created(d);
          d = join(d, '..');
        }
      }
    } catch (e) {
      throw fromFsError(e, 'cannot create store folder', dir);
    }
    this.knownDirs.add(dir);
  }

  /** Atomically writes `bytes` as `path` (in fan-out dir `dir`) via the space's temp folder. */
  protected async writeAtomic(ns: Namespace, dir: string, path: string, bytes: Uint8Array): Promise<void> {
    const tmp = join(this.root, ns.space, TEMP_DIR);
    await this.ensureDir(tmp);
    await this.ensureDir(dir);
    try {
      await writeFileAtomic(tmp, path, bytes);
    } catch (e) {
      // Someone removed a folder we remembered (e.g. an operator cleaning up): forget it, retry once.
      if (!(e instanceof FragfsError && e.code === 'NOT_FOUND')) throw e;
      this.knownDirs.delete(tmp);
      this.knownDirs.delete(dir);
      await this.ensureDir(tmp);
      await this.ensureDir(dir);
      await writeFileAtomic(tmp, path, bytes);
    }
    this.syncer.touched(dir);
  }

  /** The whole file, or undefined when absent; with `reserve`, that many bytes are left free in front. */
  protected async readOrUndefined(path: string, reserve = 0): Promise<Buffer | undefined> {
    try {
      if (reserve === 0) return await readFile(path);
      const fh = await open(path, 'r');
      try {
        const size = (await fh.stat()).size;
        const buf = Buffer.allocUnsafe(reserve + size);
        let got = 0;
        while (got < size) {
          const { bytesRead } = await fh.read(buf, reserve + got, size - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        // A file that shrank under us (it never should: fragments are replaced by rename) is short data.
        if (got !== size) throw new FragfsError('IO', `fragment file changed while reading: ${path}`, { path });
        return buf;
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (isEnoent(e)) return undefined;
      throw fromFsError(e, 'cannot read fragment file', path);
    }
  }

  protected async sizeOrUndefined(path: string): Promise<number | undefined> {
    try {
      const st = await stat(path);
      return st.isFile() ? st.size : undefined;
    } catch (e) {
      if (isEnoent(e)) return undefined;
      throw fromFsError(e, 'cannot stat fragment file', path);
    }
  }

  protected async exists(path: string): Promise<boolean> {
    return (await this.sizeOrUndefined(path)) !== undefined;
  }

  /** Forgets that folders exist (one was removed behind the store): the next ensureDir makes them again. */
  protected forgetDirs(...dirs: string[]): void {
    for (const d of dirs) this.knownDirs.delete(d);
  }

  /**
   * Renames `from` (in folder `fromDir`) to `to` (in folder `toDir`, made on demand), replacing a
   * file there. False, with nothing changed, when `from` is absent.
   */
  protected async moveFile(fromDir: string, from: string, toDir: string, to: string): Promise<boolean> {
    await this.ensureDir(toDir);
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(from, to);
        this.syncer.touched(fromDir);
        this.syncer.touched(toDir);
        return true;
      } catch (e) {
        if (!isEnoent(e)) throw fromFsError(e, 'cannot move fragment file', from);
        if (attempt > 0 || !(await this.exists(from))) return false;
        // The target folder was removed behind the store (we remembered it): make it again, once.
        this.forgetDirs(toDir);
        await this.ensureDir(toDir);
      }
    }
  }

  protected async unlinkIfPresent(dir: string, path: string): Promise<void> {
    try {
      await unlink(path);
      this.syncer.touched(dir);
    } catch (e) {
      if (isEnoent(e)) return;
      throw fromFsError(e, 'cannot delete fragment file', path);
    }
  }

  /**
   * Yields the id of every file named `<62 hex><suffix>` in the kind's fan-out tree, one fan-out
   * folder in memory at a time.
   */
  protected async *walk(ns: Namespace, suffix: string, trash = false): AsyncGenerator<string> {
    const base = this.kindDir(ns, trash);
    let fans: string[];
    try {
      fans = (await readdir(base)).filter((n) => FAN_RE.test(n)).sort();
    } catch (e) {
      if (isEnoent(e)) return;
      throw fromFsError(e, 'cannot list store folder', base);
    }
    for (const fan of fans) {
      let names: string[];
      try {
        names = await readdir(join(base, fan));
      } catch (e) {
        if (isEnoent(e)) continue;
        throw fromFsError(e, 'cannot list store folder', join(base, fan));
      }
      for (const name of names) {
        if (name.length !== 62 + suffix.length || !name.endsWith(suffix)) continue;
        const rest = name.slice(0, 62);
        if (REST_RE.test(rest)) yield fan + rest;
      }
    }
  }

  protected checkWritable(what: string): void {
    if (this.readOnly) throw readOnlyError(what);
  }

  // ---- Store ----------------------------------------------------------------------------------

  async put(ns: Namespace, id: string, bytes: Uint8Array, o?: PutOptions): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('put');
    // Copy before the first await: the caller may reuse its buffer as soon as put returns (unless
    // it handed the bytes over: a pack of 4 MiB copied again was memory held through its write).
    const copy = o?.handedOver === true ? bytes : Buffer.from(bytes);
    const path = this.pathOf(ns, id);
    if (await this.exists(path)) return;
    await this.writeAtomic(ns, this.fanDir(ns, id), path, copy);
  }

  async get(ns: Namespace, id: string): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    const bytes = await this.readOrUndefined(this.pathOf(ns, id));
    if (bytes === undefined) throw missingFragment(ns, id);
    return bytes;
  }

  async getRange(ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    checkRange(offset, length);
    const path = this.pathOf(ns, id);
    try {
      return await this.readHandles.with(path, async (fh) => {
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got !== length) throw new FragfsError('CORRUPT', `fragment ${id} (${ns.kind}) is shorter than ${offset + length} bytes`, { fragmentId: id });
        return buf;
      });
    } catch (e) {
      if (e instanceof FragfsError) throw e;
      if (isEnoent(e)) throw missingFragment(ns, id);
      throw fromFsError(e, 'cannot read fragment file', path);
    }
  }

  async has(ns: Namespace, id: string): Promise<boolean> {
    checkNamespace(ns);
    checkId(id);
    return this.exists(this.pathOf(ns, id));
  }

  async size(ns: Namespace, id: string): Promise<number | undefined> {
    checkNamespace(ns);
    checkId(id);
    return this.sizeOrUndefined(this.pathOf(ns, id));
  }

  async delete(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('delete');
    this.readHandles.forget(this.pathOf(ns, id));
    await this.unlinkIfPresent(this.fanDir(ns, id), this.pathOf(ns, id));
  }

  list(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    return this.walk(ns, this.suffix(ns.kind));
  }

  async trash(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('trash');
    const path = this.pathOf(ns, id);
    // Looked at first so that a trash of an absent id makes no trash folder.
    if (!(await this.exists(path))) return;
    this.readHandles.forget(path);
    await this.moveFile(this.fanDir(ns, id), path, this.fanDir(ns, id, true), this.trashPathOf(ns, id));
  }

  async untrash(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('untrash');
    const trashDir = this.fanDir(ns, id, true);
    const trashPath = this.trashPathOf(ns, id);
    if (!(await this.exists(trashPath))) return;
    // Over a copy put meanwhile too (the same bytes): a rename, never an unlink, so that it cannot
    // take away the copy a trash in another process has just moved there.
    await this.moveFile(trashDir, trashPath, this.fanDir(ns, id), this.pathOf(ns, id));
  }

  async purge(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('purge');
    await this.unlinkIfPresent(this.fanDir(ns, id, true), this.trashPathOf(ns, id));
  }

  listTrash(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    return this.walk(ns, this.suffix(ns.kind), true);
  }

  async sync(): Promise<void> {
    await this.syncer.sync();
  }

  async close(): Promise<void> {
    await this.readHandles.closeAll();
    await this.syncer.sync();
  }
}
