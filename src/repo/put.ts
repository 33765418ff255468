// `put`: freezes local files and trees into the store and returns one meta key. Blocks are read,
// encoded on every core and stored in a bounded pipeline; all-zero blocks become holes; hard links
// keep their identity; a directory's fragment is written only after everything under it. A file
// whose size and mtime match the same path in a parent snapshot takes that snapshot's content
// without being read (rsync's quick check; restic's parent snapshot).

import type { BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { type Entry, type EntryType, type Extent } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';
import { Semaphore } from './semaphore.js';
import { checkSnapshotName } from './snapshot-name.js';
import { loadSnapshot, readDirEntries } from './tree-reader.js';
import { compareNames, fileContent, writeDir, writeSnapshot } from './tree-writer.js';

export interface PutOptions {
  /** Snapshot name recorded in the ref (listed by `snapshots`). */
  name?: string;
  /** Called once the scan knows how many content bytes will be read. */
  onTotal?: (plainBytes: number) => void;
  /** Called as content bytes are stored (or taken unchanged from the parent). */
  onBytes?: (plainBytes: number) => void;
  /**
   * The snapshot whose unchanged files (same path, size and mtime) are taken without reading them.
   * Default: the latest snapshot of the same source paths from this host. `false`: read every file.
   */
  parent?: string | false;
}

export interface PutResult {
  key: string;
  files: number;
  dirs: number;
  symlinks: number;
  logicalBytes: number;
  /** Meta key of the parent snapshot used, if any. */
  parent?: string;
  /** Files taken from the parent without reading them. */
  unchangedFiles: number;
}

interface Parent {
  key: string;
  root: Entry;
  createdMs: number;
}

/**
 * A file modified this close to (or after) the parent snapshot may have changed again within one
 * tick of the filesystem's clock without its mtime moving (git's "racy clean" case): it is read.
 */
const RACY_MS = 2000;

interface ScanNode {
  path: string;
  name: string;
  st: BigIntStats;
  type: EntryType;
  children?: ScanNode[];
}

/** Puts one or more paths; one path becomes the root itself, several become a folder holding them. */
export async function putPaths(repo: Repo, paths: string[], o: PutOptions = {}): Promise<PutResult> {
  if (paths.length === 0) throw new FragfsError('USAGE', 'put needs at least one path');
  if (o.name !== undefined) checkSnapshotName(o.name);
  const roots: ScanNode[] = [];
  for (const p of paths) roots.push(await scan(resolve(p), rootName(p)));
  const names = new Set<string>();
  for (const r of roots) {
    if (names.has(r.name)) throw new FragfsError('USAGE', `two paths named ${JSON.stringify(r.name)}: put them from their parent folder`);
    names.add(r.name);
  }
  const source = paths.map((p) => resolve(p));
  const parent = o.parent === false ? undefined : await findParent(repo, source, o.parent);
  const writer = new TreePutter(repo, o, parent === undefined ? 0n : BigInt(Math.max(0, parent.createdMs - RACY_MS)) * 1_000_000n);
  o.onTotal?.(writer.survey(roots));
  let root: Entry;
  if (roots.length === 1) {
    root = await writer.entry(roots[0]!, parent?.root);
  } else {
    const previous = parent?.root.type === 'dir' ? await writer.listing(parent.root, '/') : new Map<string, Entry>();
    const entries = await Promise.all(roots.map((r) => writer.entry(r, previous.get(r.name))));
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    root = {
      name: 'root',
      type: 'dir',
      mode: 0o755,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      mtimeNs: nowNs,
      size: 0,
      dir: await writeDir(repo, entries),
    };
    writer.dirs++;
  }
  const key = await writeSnapshot(repo, root, {
    source,
    ...(o.name === undefined ? {} : { name: o.name }),
    files: writer.files,
    dirs: writer.dirs,
    logicalBytes: writer.logicalBytes,
  });
  return {
    key,
    files: writer.files,
    dirs: writer.dirs,
    symlinks: writer.symlinks,
    logicalBytes: writer.logicalBytes,
    ...(parent ? { parent: parent.key } : {}),
    unchangedFiles: writer.unchangedFiles,
  };
}

/**
 * The parent snapshot: the one named by `keyOrName`, else the latest snapshot taken from exactly
 * these source paths on this host (none: undefined).
 */
async function findParent(repo: Repo, source: string[], keyOrName: string | undefined): Promise<Parent | undefined> {
  if (keyOrName !== undefined) {
    const { key, snapshot } = await loadSnapshot(repo, keyOrName);
    return { key, root: snapshot.root, createdMs: snapshot.createdMs };
  }
  const refs = await repo.listRefs({ onError: () => undefined });
  const host = hostname();
  for (let i = refs.length - 1; i >= 0; i--) {
    const key = refs[i]!.snapshot;
    let snap;
    try {
      snap = await repo.getMeta(key, 'snapshot');
    } catch {
      continue; // a damaged snapshot is verify's business; this put just does not lean on it
    }
    if (snap.hostname === host && snap.source.length === source.length && snap.source.every((p, j) => p === source[j])) {
      return { key, root: snap.root, createdMs: snap.createdMs };
    }
  }
  return undefined;
}

function rootName(p: string): string {
  const name = basename(resolve(p));
  return name.length > 0 ? name : 'root';
}

function typeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return 'socket';
}

/** Reads the shape of the tree first, so progress has a total and errors come before any write. */
async function scan(path: string, name: string): Promise<ScanNode> {
  let st: BigIntStats;
  try {
    st = await lstat(path, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new FragfsError('NOT_FOUND', `no such file or folder: ${path}`, { path });
    throw fromFsError(e, 'cannot read', path);
  }
  const node: ScanNode = { path, name, st, type: typeOf(st) };
  if (node.type === 'dir') {
    let names: string[];
    try {
      names = await readdir(path);
    } catch (e) {
      throw fromFsError(e, 'cannot list folder', path);
    }
    names.sort(compareNames);
    node.children = [];
    for (const child of names) node.children.push(await scan(join(path, child), child));
  }
  return node;
}

class TreePutter {
  files = 0;
  dirs = 0;
  symlinks = 0;
  logicalBytes = 0;
  unchangedFiles = 0;
  private readonly blocks: Semaphore;
  // Many small files in flight so their stores' fsyncs overlap; memory is bounded by `blocks`.
  private readonly openFiles = new Semaphore(64);
  private readonly links = new Map<string, { link: number; content: Promise<Pick<Entry, 'blocks' | 'pages'>> }>();
  /**
   * Inodes (dev:ino) that appear under more than one name in this put: only they form hard-link
   * groups. A file whose other names lie outside the tree is stored as a plain file, as tar and
   * rsync -H do.
   */
  private readonly linked = new Set<string>();
  private nextLink = 1;
  private readonly zero: Buffer;

  constructor(
    private readonly repo: Repo,
    private readonly o: PutOptions,
    /** Files with an mtime before this (ns) may be taken from the parent unread. */
    private readonly trustBeforeNs: bigint,
  ) {
    // Enough blocks in flight to keep every core encoding while the main thread reads and stores.
    this.blocks = new Semaphore(availableParallelism() * 2 + 2);
    this.zero = Buffer.alloc(repo.blockSize);
  }

  /** Content bytes to read (each inode once); also finds the hard links inside the tree. */
  survey(nodes: ScanNode[]): number {
    const seen = new Set<string>();
    let total = 0;
    const walk = (n: ScanNode): void => {
      if (n.type === 'file') {
        const id = `${n.st.dev}:${n.st.ino}`;
        if (n.st.nlink > 1n && seen.has(id)) {
          this.linked.add(id);
          return;
        }
        seen.add(id);
        total += Number(n.st.size);
      }
      n.children?.forEach(walk);
    };
    nodes.forEach(walk);
    return total;
  }

  /** A parent directory's entries by name. */
  async listing(dir: Entry, where: string): Promise<Map<string, Entry>> {
    return new Map((await readDirEntries(this.repo, dir, where)).map((e) => [e.name, e]));
  }

  /**
   * The content of the parent's entry when it can stand for file `n` unread: a plain file (no hard
   * link inside either tree) of the same size and mtime to the nanosecond.
   */
  private unchanged(n: ScanNode, prev: Entry | undefined): Pick<Entry, 'blocks' | 'pages'> | undefined {
    if (prev === undefined || prev.type !== 'file' || prev.link !== undefined) return undefined;
    if (BigInt(prev.size) !== n.st.size || prev.mtimeNs !== n.st.mtimeNs || n.st.mtimeNs >= this.trustBeforeNs) return undefined;
    if (prev.size > 0 && prev.blocks === undefined && prev.pages === undefined) return undefined;
    const content: Pick<Entry, 'blocks' | 'pages'> = {};
    if (prev.blocks !== undefined) content.blocks = prev.blocks;
    if (prev.pages !== undefined) content.pages = prev.pages;
    return content;
  }

  async entry(n: ScanNode, prev?: Entry): Promise<Entry> {
    const st = n.st;
    const e: Entry = {
      name: n.name,
      type: n.type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      size: 0,
    };
    switch (n.type) {
      case 'dir': {
        const previous = prev?.type === 'dir' ? await this.listing(prev, n.path) : new Map<string, Entry>();
        const children = await Promise.all(n.children!.map((c) => this.entry(c, previous.get(c.name))));
        e.dir = await writeDir(this.repo, children);
        this.dirs++;
        break;
      }
      case 'file': {
        e.size = Number(st.size);
        const id = `${st.dev}:${st.ino}`;
        if (st.nlink > 1n && this.linked.has(id)) {
          let group = this.links.get(id);
          if (!group) {
            group = { link: this.nextLink++, content: this.fileBlocks(n) };
            this.links.set(id, group);
            this.files++;
            this.logicalBytes += e.size;
          }
          e.link = group.link;
          Object.assign(e, await group.content);
        } else {
          const same = this.unchanged(n, prev);
          if (same) {
            Object.assign(e, same);
            this.unchangedFiles++;
            this.o.onBytes?.(e.size);
          } else {
            Object.assign(e, await this.fileBlocks(n));
          }
          this.files++;
          this.logicalBytes += e.size;
        }
        break;
      }
      case 'symlink': {
        try {
          e.target = await readlink(n.path);
        } catch (err) {
          throw fromFsError(err, 'cannot read link', n.path);
        }
        e.size = Buffer.byteLength(e.target);
        this.symlinks++;
        break;
      }
      default:
        e.rdev = Number(st.rdev);
    }
    return e;
  }

  /** Reads a file block by block; each block is encoded and stored while the next is read. */
  private async fileBlocks(n: ScanNode): Promise<Pick<Entry, 'blocks' | 'pages'>> {
    return this.openFiles.run(async () => {
      let fh;
      try {
        fh = await open(n.path, 'r');
      } catch (e) {
        throw fromFsError(e, 'cannot read', n.path);
      }
      const pending: Promise<Extent | undefined>[] = [];
      let failure: unknown;
      try {
        const size = Number(n.st.size);
        const bs = this.repo.blockSize;
        for (let offset = 0; offset < size; offset += bs) {
          await this.blocks.acquire();
          const want = Math.min(bs, size - offset);
          let buf: Buffer;
          let got: number;
          try {
            buf = Buffer.allocUnsafeSlow(want);
            got = await readFully(fh, buf, offset, n.path);
            if (got < want) buf = buf.subarray(0, got);
          } catch (e) {
            this.blocks.release();
            throw e;
          }
          // storeBlock may hand buf's memory to a worker: decide from `got`, not from buf.
          const stored = this.storeBlock(buf, offset);
          // Stop reading at the first failure; the rejection itself surfaces from Promise.all below.
          stored.catch((e: unknown) => (failure ??= e));
          pending.push(stored);
          if (failure !== undefined) break;
          if (got < want) break; // the file shrank while we read it
        }
        const extents = (await Promise.all(pending)).filter((x): x is Extent => x !== undefined);
        return await fileContent(this.repo, extents);
      } finally {
        await Promise.allSettled(pending);
        await fh.close();
      }
    });
  }

  private async storeBlock(buf: Buffer, offset: number): Promise<Extent | undefined> {
    const plainSize = buf.length;
    try {
      // An all-zero block is a hole: nothing stored, and `get` recreates it sparse.
      if (plainSize === 0 || buf.equals(plainSize === this.zero.length ? this.zero : this.zero.subarray(0, plainSize))) {
        return undefined;
      }
      const ref = await this.repo.writeBlock(buf);
      return { offset, ...ref };
    } finally {
      this.blocks.release();
      this.o.onBytes?.(plainSize);
    }
  }
}

async function readFully(fh: import('node:fs/promises').FileHandle, buf: Buffer, position: number, path: string): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    let n: number;
    try {
      ({ bytesRead: n } = await fh.read(buf, got, buf.length - got, position + got));
    } catch (e) {
      throw fromFsError(e, 'cannot read', path);
    }
    if (n === 0) break;
    got += n;
  }
  return got;
}

