// `put`: freezes local files and trees into the store and returns one meta key. The tree is walked
// folder by folder with bounds on what is in flight (folders, files, blocks), so memory follows the
// largest folder, not the tree; blocks are encoded on every core; all-zero blocks become holes; hard
// links keep their identity; a directory's fragment is written only after everything under it. A file
// whose size and mtime match the same path in a parent snapshot takes that snapshot's content without
// being read (rsync's quick check; restic's parent snapshot), and a folder whose entries all come out
// as the parent's takes the parent's fragment whole. A file is stored as one read saw it: one that
// changed meanwhile is read again, and one that keeps changing, vanishes or cannot be read is stored
// as read or left out with a warning (restic's "incomplete snapshot"). Files of one small block are
// read a group at a time off the JS thread (the local-fs addon's readSmallFiles), judged as a read of
// their own would be, and read on their own when that read did not hold still or failed.

import { closeSync, constants as fsConstants, fstatSync, open as openCb, read as readCb, type BigIntStats } from 'node:fs';
import { promisify } from 'node:util';
import { readlink } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { FragfsError, fromFsError } from '../errors.js';
import { entryNameProblem } from '../fragment/meta-schema.js';
import { compareNames, joinName, showName } from '../fragment/names.js';
import { type Entry, type EntryType, type Extent, type Xattr } from '../fragment/tree-format.js';
import { localFs, type LocalFs } from '../local/local-fs.js';
import { readSmallFiles, type SmallRead } from '../local/small-files.js';
import { lstatPaths, scanFolder, type FolderScan, type SourceLstat, type SourceStat } from '../local/source-stat.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../vfs/inode.js';
import type { ExcludePatterns } from './exclude-patterns.js';
import type { Repo } from './repo.js';
import { Semaphore } from './semaphore.js';
import { absolutePath, keptNames, keptScan, PutSurvey, type SurveyScans } from './put-survey.js';
import { checkSnapshotName } from './snapshot-name.js';
import { loadSnapshot, readDirEntries } from './tree-reader.js';
import { sourceTag, summarizeFolder, type FolderSummary } from './folder-tag.js';
import { fileContent, readExtents, setDir, writeDir, writeSnapshot, type FileContent } from './tree-writer.js';
import { keyedPages } from './tree-keys.js';

export interface PutOptions {
  /** Snapshot name recorded in the ref (listed by `snapshots`). */
  name?: string;
  /** Tags recorded in the ref (snapshot-name.ts tagList: checked, sorted, unique). */
  tags?: string[];
  /**
   * Called once, before anything is read, with how many content bytes the tree holds (a survey of
   * one lstat per entry that keeps nothing but the inodes with several names).
   */
  onTotal?: (plainBytes: number) => void;
  /** Called as content bytes are stored (or taken unchanged from the parent). */
  onBytes?: (plainBytes: number) => void;
  /**
   * The snapshot whose unchanged files (same path, size and mtime) are taken without reading them.
   * Default: the latest snapshot of the same source paths from this host. `false`: read every file.
   */
  parent?: string | false;
  /**
   * Called with each warning as it happens: a file that changed on every read, vanished or could
   * not be read. The put goes on; the warnings are also in PutResult.warnings.
   */
  onWarning?: (message: string) => void;
  /** Paths left out (ExcludePatterns: `--exclude`, `--exclude-file`); a path the user named is never left out. */
  exclude?: ExcludePatterns;
  /**
   * Folders holding a CACHEDIR.TAG with the standard signature keep only that file (tar's
   * --exclude-caches; https://bford.info/cachedir/).
   */
  excludeCaches?: boolean;
  /**
   * A folder on another file system than the path the user named (st_dev differs: a mount point,
   * a fragfs mount among them) is stored as an empty folder, not entered.
   */
  oneFileSystem?: boolean;
  /**
   * Store one file read from this stream instead of paths (`put STORE -`): `paths` MUST be empty
   * and `name` is the file's name in the snapshot.
   */
  stdin?: { stream: AsyncIterable<Buffer>; name: Buffer };
  /** Called with each path the rules above leave out, and which rule (`put --verbose`). */
  onLeftOut?: (path: Buffer, why: 'excluded' | 'cache' | 'other file system') => void;
  /**
   * The survey of these paths, already started with these rules (`fragfs put` starts it before the
   * KDF); one of other paths is not used, and without one the put starts its own.
   */
  survey?: PutSurvey;
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
  /** Folders taken whole from the parent: every entry the same, their fragment not written again. */
  unchangedDirs: number;
  /** Files read more than once because they changed while they were read. */
  rereadFiles: number;
  /**
   * Files stored as an unsteady read found them, or left out. Empty when the snapshot holds every
   * file as one steady read saw it; otherwise the CLI exits with INCOMPLETE.
   */
  warnings: string[];
  /**
   * What this put could not keep anywhere (no extended attributes: the local-fs addon could not be
   * built), said once; not a warning about any file.
   */
  notices: string[];
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

/** Reads of a file that keeps changing before it is stored as the last read found it. */
export const MAX_READ_ATTEMPTS = 3;

/**
 * File times come from the kernel's coarse clock, which lags the real one by up to a tick (4 ms at
 * HZ=250, 10 ms at HZ=100): a write during a read may leave mtime and ctime as they were when the read
 * began. A read of a file changed less than this before the read began therefore proves nothing; it
 * is read again once the clock has moved past (git's "racy clean" rule, per read).
 */
const RACY_TICK_NS = 20_000_000n;

/**
 * Source files open without following a symlink swapped in after the scan, and without blocking on
 * a FIFO swapped in (fstat then shows it is no longer a regular file).
 */
const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

/** Entries of a walk taken at once (lstat'ed in one addon call when no scan made them): few entries to hold. */
const LSTAT_BATCH = 256;

/**
 * Blocks under this size count against SMALL_BLOCKS_IN_FLIGHT instead of the few large ones: at most
 * 64 MiB held, and enough in flight to fill bulk encode tasks (codec-pool.ts, BULK_BATCH).
 */
const SMALL_BLOCK_BYTES = 64 * 1024;
const SMALL_BLOCKS_IN_FLIGHT = 1024;

/**
 * Files of one small block read whole in one addon call (readSmallFiles) from a walk's batch: four
 * round trips of the JS thread a file become one a batch, and the group's bytes (at most 4 MiB) are
 * held only until its files are stored.
 */
const SMALL_READ_BATCH = 64;

/**
 * Files read (or symlinks read) at once across the whole put: a small file waits a codec thread's
 * round trip, so many in flight keep the threads fed. A put of 100,000 files of 1-4 KiB took 12.1 s
 * with 64, 11.6 s with 128, 9.7-10.6 s with 256 and 9.2-9.3 s with 512, at the same peak memory
 * (a descriptor each: node raises its soft limit to the hard one, 4,096 or more on Linux).
 */
const FILES_IN_FLIGHT = 512;

/**
 * Folders walked beside the ones their walkers are in. Each holds its listing, its entries and its
 * parent's listing, so memory follows this times the largest folder (and the depth), not the tree.
 */
const FOLDERS_IN_FLIGHT = 4;

/**
 * Errors of one source file that leave it out with a warning: it vanished, was replaced, or cannot
 * be read. Anything else (the store is full, no file descriptors left) stops the put.
 */
const SKIPPED_ERRNOS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EIO', 'ELOOP', 'ENXIO', 'ENODEV', 'ESTALE', 'EISDIR']);

/** A source entry as the walk found it: one lstat, kept only while its folder is being walked. */
interface Found {
  /** The local path, bytes: names on disk need not be UTF-8. */
  readonly path: Buffer;
  name: Buffer;
  st: SourceStat;
  type: EntryType;
  /** Its extended attributes as the lstat's batch read them (none read: undefined). */
  xattrs?: [Buffer, Buffer][];
  /** Why its extended attributes could not be read. */
  xattrError?: NodeJS.ErrnoException;
  /** A path the user named: it cannot be left out, so its failures are errors, not warnings. */
  isRoot?: boolean;
  /** st_dev of the path the user named that this one is under (--one-file-system). */
  rootDev: bigint;
  /** Its read by its walk batch's readSmallFiles (started by the first file of the group that asks). */
  preRead?: () => Promise<SmallRead | undefined>;
}

/**
 * A Found whose path is joined when first asked for: an unchanged file of a re-put never needs it,
 * and a Buffer.concat per entry was a tenth of such a put's walk.
 */
class FoundEntry implements Found {
  private joined: Buffer | undefined;
  xattrs?: [Buffer, Buffer][];
  xattrError?: NodeJS.ErrnoException;
  isRoot?: boolean;
  preRead?: () => Promise<SmallRead | undefined>;

  constructor(
    private readonly pathOf: (i: number) => Buffer,
    private readonly index: number,
    readonly name: Buffer,
    readonly st: SourceStat,
    readonly type: EntryType,
    readonly rootDev: bigint,
  ) {}

  get path(): Buffer {
    return (this.joined ??= this.pathOf(this.index));
  }
}

/** One read of an open file, from the first byte to EOF or the size fstat gave when it began. */
interface FileRead {
  extents: Extent[];
  /** Bytes actually read: the size the entry gets. */
  size: number;
  /** fstat when the read began: the entry's mode, owner and mtime, consistent with its bytes. */
  st: BigIntStats;
  /** Nothing moved: no early EOF, and size, mtime and ctime the same after the read as before. */
  steady: boolean;
}

/** A file as stored: its content fields, the size read and the fstat its read began from. */
interface StoredFile {
  content: FileContent;
  size: number;
  st: Pick<BigIntStats, 'mode' | 'uid' | 'gid' | 'mtimeNs'>;
}

/** A source file left out of the snapshot; its warning was already given. */
const SKIPPED = Symbol('skipped');

/** A failure of the source file itself (not of the store), with the errno that says which. */
class SourceError extends Error {
  constructor(
    readonly errno: string,
    override readonly cause: unknown,
  ) {
    super(errno);
  }
}

async function source<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asSourceError(e);
  }
}

/** A SourceError for a failure of the source file itself; any other error as it is. */
function asSourceError(e: unknown): unknown {
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof errno === 'string' && SKIPPED_ERRNOS.has(errno) ? new SourceError(errno, e) : e;
}

/** A name's key in sets: latin1 maps every byte to one code unit, so distinct bytes stay distinct. */
const nameKey = (name: Uint8Array): string => Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');

/**
 * The entry of a folder listing (sorted by name, as the format keeps it) with a given name. Asked in
 * name order, as a walk asks, each call moves a cursor one step or two; out of order, it searches.
 */
function byName(entries: readonly Entry[]): (name: Buffer) => Entry | undefined {
  let at = 0;
  return (name) => {
    while (at < entries.length && compareNames(entries[at]!.name, name) < 0) at++;
    if (at < entries.length && compareNames(entries[at]!.name, name) === 0) return entries[at];
    let lo = 0;
    let hi = Math.min(at, entries.length);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareNames(entries[mid]!.name, name);
      if (c === 0) return entries[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  };
}

/**
 * Puts one or more paths; one path becomes the root itself, several become a folder holding them.
 * Paths may be bytes (a local path need not be UTF-8).
 */
export async function putPaths(repo: Repo, paths: (string | Buffer)[], o: PutOptions = {}): Promise<PutResult> {
  if (o.stdin !== undefined) {
    if (paths.length > 0) throw new FragfsError('USAGE', 'put - reads one file from stdin: give no other path');
    checkStdinName(o.stdin.name);
  } else if (paths.length === 0) throw new FragfsError('USAGE', 'put needs at least one path');
  if (o.name !== undefined) checkSnapshotName(o.name);
  const source = paths.map(absolutePath);
  // Started before anything else, so it overlaps choosing the parent.
  const survey = o.stdin !== undefined ? undefined : o.survey?.covers(source) ? o.survey : new PutSurvey(source, o);
  const rootNames = source.map(rootName);
  const names = new Set<string>();
  for (const name of rootNames) {
    if (names.has(nameKey(name))) throw new FragfsError('USAGE', `two paths named ${showName(name)}: put them from their parent folder`);
    names.add(nameKey(name));
  }
  // The gc lease from before the parent is chosen: a put that changed nothing names only its
  // parent's fragments and writes none until its last objects, and a gc that meanwhile saw the
  // parent forgotten must still wait for it (src/gc/gc-guard.ts).
  await repo.writerGuard();
  // Everything written here is named only after writeSnapshot's syncs: small fragments may share writes.
  const deferred = repo.deferWrites;
  repo.deferWrites = true;
  try {
    return survey !== undefined ? await putRoots(repo, rootNames, source, survey, o) : await putStdin(repo, o.stdin!, o);
  } finally {
    repo.deferWrites = deferred;
  }
}

async function putRoots(repo: Repo, rootNames: Buffer[], source: Buffer[], survey: PutSurvey, o: PutOptions): Promise<PutResult> {
  const parent = o.parent === false ? undefined : await findParent(repo, source, o.parent);
  // The survey also finds the hard links: the walk waits for it whether or not anyone wants the total.
  const { plainBytes, linked } = await survey.result;
  o.onTotal?.(plainBytes);
  const trustBeforeNs = parent === undefined ? 0n : BigInt(Math.max(0, parent.createdMs - RACY_MS)) * 1_000_000n;
  const writer = new TreePutter(repo, o, trustBeforeNs, await localFs(), linked, survey.scans);
  try {
    return await putWalked(repo, rootNames, source, writer, parent, o);
  } finally {
    survey.scans.clear();
  }
}

async function putWalked(repo: Repo, rootNames: Buffer[], source: Buffer[], writer: TreePutter, parent: Parent | undefined, o: PutOptions): Promise<PutResult> {
  let root: Entry;
  if (source.length === 1) {
    // The parent's root stands for this root whatever its name (an explicit parent of another path).
    const previous = parent === undefined ? undefined : (): Entry => parent.root;
    root = rootOf(await writer.walk(1, () => rootNames[0]!, () => source[0]!, previous, true), source);
  } else {
    const previous = parent?.root.type === 'dir' ? byName(await readDirEntries(repo, parent.root, '/')) : undefined;
    const found = await writer.walk(source.length, (i) => rootNames[i]!, (i) => source[i]!, previous, true);
    const entries = source.map((_, i) => rootOf([found[i]], [source[i]!]));
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    root = setDir(
      {
        name: Buffer.from('root'),
        type: 'dir',
        mode: 0o755,
        uid: process.getuid?.() ?? 0,
        gid: process.getgid?.() ?? 0,
        mtimeNs: nowNs,
        size: 0,
      },
      await writeDir(repo, entries),
    );
    writer.dirs++;
  }
  const key = await writeSnapshot(repo, root, {
    source,
    ...(o.name === undefined ? {} : { name: o.name }),
    ...(o.tags === undefined ? {} : { tags: o.tags }),
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
    unchangedDirs: writer.unchangedDirs,
    rereadFiles: writer.rereadFiles,
    warnings: writer.warnings,
    notices: writer.notices,
  };
}

function checkStdinName(name: Buffer): void {
  const problem = entryNameProblem(name);
  if (problem !== undefined) throw new FragfsError('USAGE', `--stdin-name: ${problem}`);
}

/**
 * `put STORE -`: one file read from a stream, stored as the snapshot's root (mode 0644, owned by this
 * process, its mtime now). It is read once: a stream cannot be read again, so it holds what came.
 */
async function putStdin(repo: Repo, input: { stream: AsyncIterable<Buffer>; name: Buffer }, o: PutOptions): Promise<PutResult> {
  const writer = new TreePutter(repo, o, 0n, new Error('not used'), new Map());
  const { content, size } = await writer.streamContent(input.stream);
  const root: Entry = {
    name: input.name,
    type: 'file',
    mode: 0o644,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtimeNs: BigInt(Date.now()) * 1_000_000n,
    size,
    ...content,
  };
  const key = await writeSnapshot(repo, root, {
    source: [Buffer.concat([Buffer.from('/'), input.name])],
    ...(o.name === undefined ? {} : { name: o.name }),
    files: 1,
    dirs: 0,
    logicalBytes: size,
  });
  return {
    key,
    files: 1,
    dirs: 0,
    symlinks: 0,
    logicalBytes: size,
    unchangedFiles: 0,
    unchangedDirs: 0,
    rereadFiles: 0,
    warnings: [],
    notices: [],
  };
}

/** A root's entry: a path the user named is never left out (its failures throw before this). */
function rootOf(found: (Entry | undefined)[], source: Buffer[]): Entry {
  const e = found[0];
  if (e === undefined) throw new Error(`put: root ${showName(source[0]!)} was left out`);
  return e;
}

/**
 * The parent snapshot: the one named by `keyOrName`, else the latest snapshot taken from exactly
 * these source paths on this host (none: undefined).
 */
async function findParent(repo: Repo, source: Buffer[], keyOrName: string | undefined): Promise<Parent | undefined> {
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
    if (snap.hostname === host && snap.source.length === source.length && snap.source.every((p, j) => p.equals(source[j]!))) {
      return { key, root: snap.root, createdMs: snap.createdMs };
    }
  }
  return undefined;
}

/** The name a root path gets in the snapshot: its last component ("root" for `/`). */
function rootName(p: Buffer): Buffer {
  const name = p.subarray(p.lastIndexOf(0x2f) + 1);
  return name.length > 0 ? Buffer.from(name) : Buffer.from('root');
}

function typeOf(mode: number): EntryType {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    case S_IFIFO:
      return 'fifo';
    case S_IFCHR:
      return 'chardev';
    case S_IFBLK:
      return 'blockdev';
    default:
      return 'socket';
  }
}

class TreePutter {
  files = 0;
  dirs = 0;
  symlinks = 0;
  logicalBytes = 0;
  unchangedFiles = 0;
  unchangedDirs = 0;
  rereadFiles = 0;
  readonly warnings: string[] = [];
  readonly notices: string[] = [];
  private readonly local?: LocalFs;
  private readonly blocks: Semaphore;
  /** Small blocks in flight: many, so they share trips to a codec thread (CodecPool.encodeBulk). */
  private readonly smallBlocks = new Semaphore(SMALL_BLOCKS_IN_FLIGHT);
  // Many small files in flight so their stores' fsyncs overlap; memory is bounded by `blocks`.
  private readonly openFiles = new Semaphore(FILES_IN_FLIGHT);
  /** Folders walked beside the ones their walkers are in; a folder that finds none free is walked in turn. */
  private readonly folders = new Semaphore(FOLDERS_IN_FLIGHT);
  private readonly links = new Map<string, { link: number; stored: Promise<StoredFile | typeof SKIPPED>; counted: boolean }>();
  /** Folder entries with a hard-link group member at or below them: never taken whole (see walkDir). */
  private readonly holdsLinks = new WeakSet<Entry>();
  private nextLink = 1;
  private readonly zero: Buffer;
  /** The largest file read whole by readSmallFiles: one block, and a small one (smallBlocks). */
  private readonly smallFileBytes: number;

  constructor(
    private readonly repo: Repo,
    private readonly o: PutOptions,
    /** Files with an mtime before this (ns) may be taken from the parent unread. */
    private readonly trustBeforeNs: bigint,
    /** Reads extended attributes; an Error: none are read (said once in `notices`). */
    local: LocalFs | Error,
    /**
     * Inodes (dev:ino) with nlink > 1, and how many names each has inside the tree (the survey's):
     * only those with two or more form hard-link groups. A file whose other names lie outside the
     * tree is stored as a plain file, as tar and rsync -H do.
     */
    private readonly linked: ReadonlyMap<string, number>,
    /** The survey's folder scans, taken instead of scanning again where the survey kept one. */
    private readonly scans?: SurveyScans,
  ) {
    if (local instanceof Error) this.notices.push(`extended attributes are not kept: ${local.message}`);
    else this.local = local;
    // Enough blocks in flight to keep every core encoding while the main thread reads and stores,
    // and a remote service's connections busy (each block waits a round trip there).
    this.blocks = new Semaphore(Math.max(availableParallelism() * 2 + 2, Math.min(64, repo.store.parallelism ?? 0)));
    this.zero = Buffer.alloc(repo.blockSize);
    this.smallFileBytes = Math.min(SMALL_BLOCK_BYTES - 1, repo.blockSize);
  }

  /**
   * The entries of `count` paths (one folder's children in order, or the roots), undefined for one
   * left out. Entries are taken LSTAT_BATCH at a time (lstat'ed then, unless `scanned` has them);
   * files that must be read go at most FILES_IN_FLIGHT at once across the whole put, and a
   * sub-folder is walked beside this one when a folder slot is free, else in turn: nothing waits on
   * a slot its own caller holds.
   */
  async walk(
    count: number,
    nameOf: (i: number) => Buffer,
    pathOf: (i: number) => Buffer,
    /** The parent snapshot's entry for a name, if any. */
    previous: ((name: Buffer) => Entry | undefined) | undefined,
    isRoot: boolean,
    /** st_dev of the root the entries are under; undefined for roots (each is its own). */
    rootDev?: bigint,
    /** Entry i's lstat as its folder's scan made it; without, the entries are lstat'ed here. */
    scanned?: (i: number) => SourceLstat,
  ): Promise<(Entry | undefined)[]> {
    const out = new Array<Entry | undefined>(count);
    const pending: Promise<void>[] = [];
    let failure: { error: unknown } | undefined;
    const launch = (i: number, slots: Semaphore, n: Found, prev: Entry | undefined): void => {
      pending.push(
        this.entry(n, prev)
          .then(
            (e) => void (out[i] = e),
            (error: unknown) => void (failure ??= { error }),
          )
          .finally(() => slots.release()),
      );
    };
    try {
      for (let b = 0; b < count && failure === undefined; b += LSTAT_BATCH) {
        const end = Math.min(count, b + LSTAT_BATCH);
        const found = await this.find(b, end, nameOf, pathOf, isRoot, rootDev, scanned);
        const prevs = found.map((n) => (n === undefined ? undefined : previous?.(n.name)));
        if (this.local !== undefined) this.planSmallReads(this.local, found, prevs);
        for (let i = b; i < end && failure === undefined; i++) {
          const n = found[i - b];
          if (n === undefined) continue;
          const prev = prevs[i - b];
          if (n.type === 'dir') {
            if (this.folders.tryAcquire()) launch(i, this.folders, n, prev);
            else out[i] = await this.entry(n, prev);
          } else if (n.type === 'symlink' || (n.type === 'file' && (this.linkedNames(n) > 1 || this.unchanged(n, prev) === undefined))) {
            await this.openFiles.acquire();
            launch(i, this.openFiles, n, prev);
          } else {
            out[i] = await this.entry(n, prev);
          }
        }
      }
    } catch (error) {
      failure ??= { error };
    }
    await Promise.all(pending);
    if (failure !== undefined) throw failure.error;
    return out;
  }

  /**
   * Entries `from` to `to` (exclusive) of a walk, each from one lstat (with its extended attributes),
   * all in one batch; undefined for one that vanished or cannot be read (a warning says so).
   */
  private async find(
    from: number,
    to: number,
    nameOf: (i: number) => Buffer,
    pathOf: (i: number) => Buffer,
    isRoot: boolean,
    rootDev: bigint | undefined,
    scanned: ((i: number) => SourceLstat) | undefined,
  ): Promise<(Found | undefined)[]> {
    const stats =
      scanned !== undefined
        ? Array.from({ length: to - from }, (_, k) => scanned(from + k))
        : await lstatPaths(
            this.local,
            Array.from({ length: to - from }, (_, k) => pathOf(from + k)),
            this.local !== undefined,
          );
    return stats.map((found, k) => {
      const i = from + k;
      if (found.st === undefined) return this.skip({ path: pathOf(i), isRoot }, asSourceError(found.error), 'cannot read');
      const st = found.st;
      const n = new FoundEntry(pathOf, i, nameOf(i), st, typeOf(st.mode), rootDev ?? st.dev);
      if (isRoot) n.isRoot = true;
      if (found.xattrs !== undefined) n.xattrs = found.xattrs;
      if (found.xattrError !== undefined) n.xattrError = found.xattrError;
      return n;
    });
  }

  /**
   * Groups the files of a walk batch that must be read and fit one small block (not roots, not
   * hard-link group members) SMALL_READ_BATCH at a time, each group read in one addon call when the
   * first of its files asks (it holds a FILES_IN_FLIGHT slot then, so the reads stay bounded).
   */
  private planSmallReads(local: LocalFs, found: readonly (Found | undefined)[], prevs: readonly (Entry | undefined)[]): void {
    const max = this.smallFileBytes;
    let group: Found[] = [];
    const flush = (): void => {
      const members = group;
      group = [];
      let reads: Promise<SmallRead[] | undefined> | undefined;
      members.forEach((n, k) => {
        // A batch that cannot be had (out of memory) leaves each file to the read of its own.
        n.preRead = async () => (await (reads ??= readSmallFiles(local, members.map((m) => m.path), max).catch(() => undefined)))?.[k];
      });
    };
    for (const [k, n] of found.entries()) {
      if (n === undefined || n.type !== 'file' || n.isRoot || n.st.size > max || this.linkedNames(n) > 1) continue;
      const prev = prevs[k];
      if (prev !== undefined && this.isUnchanged(n, prev)) continue;
      group.push(n);
      if (group.length === SMALL_READ_BATCH) flush();
    }
    if (group.length > 0) flush();
  }

  /** How many names the inode of file `n` has inside the tree (1 unless it is in a hard-link group). */
  private linkedNames(n: Found): number {
    if (n.st.nlink <= 1) return 1;
    return this.linked.get(`${n.st.dev}:${n.st.ino}`) ?? 1;
  }

  /**
   * The content of the parent's entry when it can stand for file `n` unread: a plain file (no hard
   * link inside either tree) of the same size and mtime to the nanosecond.
   */
  private unchanged(n: Found, prev: Entry | undefined): FileContent | undefined {
    if (prev === undefined || !this.isUnchanged(n, prev)) return undefined;
    const content: FileContent = {};
    if (prev.blocks !== undefined) content.blocks = prev.blocks;
    if (prev.pages !== undefined) content.pages = prev.pages;
    if (prev.pageKeys !== undefined) content.pageKeys = prev.pageKeys;
    return content;
  }

  /** Whether file `n` may take `prev`'s content unread (what unchanged() decides, without building it). */
  private isUnchanged(n: Found, prev: Entry): boolean {
    if (prev.type !== 'file' || prev.link !== undefined) return false;
    if (prev.size !== n.st.size || prev.mtimeNs !== n.st.mtimeNs || n.st.mtimeNs >= this.trustBeforeNs) return false;
    return !(prev.size > 0 && prev.blocks === undefined && prev.pages === undefined);
  }

  /** The entry of `n`, or undefined when it was left out with a warning. */
  private async entry(n: Found, prev: Entry | undefined): Promise<Entry | undefined> {
    const st = n.st;
    const e: Entry = {
      name: n.name,
      type: n.type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtimeNs: st.mtimeNs,
      size: 0,
    };
    const xattrs = this.xattrs(n);
    if (xattrs !== undefined) e.xattrs = xattrs;
    switch (n.type) {
      case 'dir':
        return this.walkDir(n, e, prev);
      case 'file': {
        const names = this.linkedNames(n);
        if (names > 1) {
          const id = `${st.dev}:${st.ino}`;
          let group = this.links.get(id);
          if (!group) {
            group = { link: this.nextLink++, stored: this.fileBlocks(n), counted: false };
            this.links.set(id, group);
          }
          const stored = await group.stored;
          if (stored === SKIPPED) return undefined;
          if (!group.counted) {
            group.counted = true;
            this.files++;
            this.logicalBytes += stored.size;
          }
          e.link = group.link;
          e.nlink = names;
          asStored(e, stored);
        } else {
          const same = this.unchanged(n, prev);
          if (same) {
            e.size = st.size;
            Object.assign(e, same);
            // Pages from a store written before pages had keys get them (their extents as they are).
            if (same.pages !== undefined && same.pageKeys === undefined) Object.assign(e, await keyedPages(this.repo, same.pages, undefined, showName(n.path)));
            this.unchangedFiles++;
            this.o.onBytes?.(e.size);
          } else {
            const stored = await this.fileBlocks(n, await this.storedBlocksOf(prev, n));
            if (stored === SKIPPED) return undefined;
            asStored(e, stored);
          }
          this.files++;
          this.logicalBytes += e.size;
        }
        break;
      }
      case 'symlink': {
        try {
          e.target = await source(() => readlink(n.path, { encoding: 'buffer' }));
        } catch (err) {
          return this.skip(n, err, 'cannot read link');
        }
        e.size = e.target.length;
        this.symlinks++;
        break;
      }
      case 'chardev':
      case 'blockdev':
        e.rdev = st.rdev;
        break;
      default:
      // FIFOs and sockets are their type, mode and owner: nothing else to keep.
    }
    return e;
  }

  /**
   * The extended attributes of `n` (POSIX ACLs among them, as system.posix_acl_*), sorted by name;
   * undefined when it has none or the file system keeps none. One that cannot be read is a warning:
   * the entry is kept without them.
   */
  private xattrs(n: Found): Xattr[] | undefined {
    const e = n.xattrError;
    if (e !== undefined) {
      const errno = e.code;
      if (errno === 'ENOTSUP' || errno === 'ENOENT') return undefined; // none kept here; a vanished file is the read's business
      this.warn(`${showName(n.path)}: extended attributes could not be read (${errno ?? ''}: ${e.message}); stored without them`);
      return undefined;
    }
    const pairs = n.xattrs;
    if (pairs === undefined || pairs.length === 0) return undefined;
    return pairs.map(([name, value]) => ({ name, value })).sort((a, b) => compareNames(a.name, b.name));
  }

  /**
   * A folder's entry `e`: its listing walked, then its fragment written, or the parent's taken whole
   * when every entry came out exactly as the parent's (names, types, modes, owners, times, sizes,
   * targets, contents, and sub-folders themselves taken whole), so an unchanged subtree costs its
   * lstats and no write. A folder holding hard-link group members is always written: group numbers
   * are this put's own and could collide with the parent's.
   */
  private async walkDir(n: Found, e: Entry, prev: Entry | undefined): Promise<Entry | undefined> {
    const summary = this.local !== undefined ? this.scans?.takeSummary(n.path) : undefined;
    if (summary !== undefined && (await this.takenByTag(n, e, prev, summary))) return e;
    let names: Buffer[];
    let scan: FolderScan;
    let early: FolderScan | undefined;
    try {
      // Listed and lstat'ed in one call; what the keep rules leave out was lstat'ed for nothing.
      // The survey's scan carries the attributes, so it stands in only where the walk reads them too.
      early = this.local !== undefined ? this.scans?.take(n.path) : undefined;
      scan = early ?? (await source(() => scanFolder(this.local, n.path, this.local !== undefined)));
      names = await source(() => keptNames(n.path, n.st, n.rootDev, scan.names, this.o, this.o.onLeftOut));
    } catch (err) {
      if (err instanceof SourceError && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return this.skip(n, err, 'cannot list folder');
      throw fromFsError(err instanceof SourceError ? err.cause : err, 'cannot list folder', showName(n.path));
    }
    // In name order, each with its answer.
    const kept = await keptScan(this.local, n.path, scan, names, this.local !== undefined);
    const order = kept.names.map((_, i) => i).sort((a, b) => compareNames(kept.names[a]!, kept.names[b]!));
    const sorted = order.map((i) => kept.names[i]!);
    const previous = prev?.type === 'dir' ? await readDirEntries(this.repo, prev, showName(n.path)) : undefined;
    const found = await this.walk(
      sorted.length,
      (i) => sorted[i]!,
      (i) => joinName(n.path, sorted[i]!),
      previous && byName(previous),
      false,
      n.rootDev,
      (i) => kept.found[order[i]!]!,
    );
    const entries = found.filter((c): c is Entry => c !== undefined);
    const links = entries.some((c) => c.link !== undefined || this.holdsLinks.has(c));
    if (links) this.holdsLinks.add(e);
    this.dirs++;
    // A parent folder without a key (a store written before folders had keys) is written again, so
    // every keyed folder names a keyed tree (src/repo/tree-keys.ts).
    if (!links && prev?.dir !== undefined && prev.dirKey !== undefined && previous !== undefined && entries.length === previous.length && entries.every((c, i) => sameValue(c, previous[i]))) {
      // Named without being written: held against a gc running beside this put, as a mount's
      // snapshot holds the folders it reuses (src/gc/gc-guard.ts).
      await (await this.repo.writerGuard())?.hold('meta', prev.dir, true);
      setDir(e, { id: prev.dir, ...(prev.dirKey ? { key: prev.dirKey } : {}) });
      this.unchangedDirs++;
    } else {
      setDir(e, await writeDir(this.repo, entries));
    }
    // The tag only where the listing holds every entry exactly as its lstat found it: none left out
    // (a vanished or unreadable file is tried again by the next put), none read at another size
    // or mtime than the scan's (a file that changed while it was read).
    // The survey's summary is of this very scan when the walk took the survey's: not digested again.
    // None holding a hard-link group member either: group numbers are this put's own.
    const complete = this.local !== undefined && !links && entries.length === sorted.length && entries.every((c, i) => agrees(c, kept.found[order[i]!]!));
    const now = !complete ? undefined : early !== undefined && summary !== undefined ? summary : summarizeFolder(kept.names, kept.found);
    if (now !== undefined) e.sourceTag = sourceTag(now.digest, e.dir!);
    return e;
  }

  /**
   * Takes folder `n` whole, its listing unread, when the survey's lstats of its entries (`summary`)
   * are those its parent entry's tag was made from, and none of its files is young enough to have
   * changed within a tick of the clock since (isUnchanged's racy bound). --verbose walks every
   * folder: it names what the keep rules leave out, which only a listing of the folder tells.
   */
  private async takenByTag(n: Found, e: Entry, prev: Entry | undefined, summary: FolderSummary): Promise<boolean> {
    if (prev?.type !== 'dir' || prev.dir === undefined || prev.dirKey === undefined || prev.sourceTag === undefined) return false;
    if (this.o.onLeftOut !== undefined || summary.newestFileMtimeNs >= this.trustBeforeNs) return false;
    // A file with a second name inside the trees put is a hard-link group member, stored as one.
    if (summary.linkedInodes.some((id) => (this.linked.get(id) ?? 1) > 1)) return false;
    const tag = sourceTag(summary.digest, prev.dir);
    if (compareNames(tag, prev.sourceTag) !== 0) return false;
    this.scans?.drop(n.path);
    await (await this.repo.writerGuard())?.hold('meta', prev.dir, true);
    setDir(e, { id: prev.dir, key: prev.dirKey });
    e.sourceTag = tag;
    this.dirs++;
    this.unchangedDirs++;
    this.files += summary.files;
    this.unchangedFiles += summary.files;
    this.symlinks += summary.symlinks;
    this.logicalBytes += summary.plainBytes;
    this.o.onBytes?.(summary.plainBytes);
    return true;
  }

  private warn(message: string): void {
    this.warnings.push(message);
    this.o.onWarning?.(message);
  }

  /**
   * A source file that failed: left out with a warning when it vanished, was replaced or cannot be
   * read, unless the user named it (then the put fails: there is no snapshot without it).
   */
  private skip(n: { path: Buffer; isRoot?: boolean }, err: unknown, what: string): undefined {
    if (!(err instanceof SourceError)) throw err;
    if (n.isRoot) {
      if (err.errno === 'ENOENT') throw new FragfsError('NOT_FOUND', `no such file or folder: ${showName(n.path)}`, { path: showName(n.path) });
      throw fromFsError(err.cause, what, showName(n.path));
    }
    const why =
      err.errno === 'ENOENT'
        ? 'vanished before it was read'
        : err.errno === 'ELOOP'
          ? 'was replaced by a symlink'
          : `could not be read (${err.errno}: ${(err.cause as Error).message})`;
    this.warn(`${showName(n.path)} ${why}; left out of the snapshot`);
    return undefined;
  }

  /**
   * The block ids of the parent's version of a changed file: a block of the new read with one of
   * them is in the store already and is named, not written again. An edit in the middle of a large
   * file or an append then costs the blocks it changed, where each unchanged block cost a lookup of
   * the service (a HEAD on S3) or a write. Undefined when there is no parent version or its manifest
   * pages cannot be read (the blocks are then stored as any new ones are).
   */
  private async storedBlocksOf(prev: Entry | undefined, n: Found): Promise<ReadonlySet<string> | undefined> {
    if (prev?.type !== 'file' || prev.link !== undefined || (prev.blocks === undefined && prev.pages === undefined)) return undefined;
    try {
      const ids = new Set<string>();
      for (const x of await readExtents(this.repo, prev, showName(n.path))) ids.add(x.id);
      return ids.size > 0 ? ids : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Reads a file until one read holds still (at most MAX_READ_ATTEMPTS), then stores that read's
   * content; a file that never holds still is stored as its last read found it, with a warning.
   * The caller holds one of the openFiles slots.
   */
  private async fileBlocks(n: Found, known?: ReadonlySet<string>): Promise<StoredFile | typeof SKIPPED> {
    // The batch's read is the first attempt; any file it did not read steadily is read on its own.
    let first = 1;
    if (n.preRead !== undefined) {
      const pre = await n.preRead();
      n.preRead = undefined;
      if (pre?.ok) {
        try {
          const read = await this.storeSmallRead(pre, known);
          if (read.steady) return { content: await fileContent(this.repo, read.extents), size: read.size, st: read.st };
        } catch (e) {
          return this.skip(n, e, 'cannot read') ?? SKIPPED;
        }
        first = 2;
      }
    }
    let fh: number;
    try {
      fh = await source(() => openFd(n.path, READ_FLAGS));
    } catch (e) {
      return this.skip(n, e, 'cannot read') ?? SKIPPED;
    }
    try {
      let read: FileRead | undefined;
      for (let attempt = first; attempt <= MAX_READ_ATTEMPTS; attempt++) {
        if (attempt === 2) this.rereadFiles++;
        read = await this.readOnce(fh, n, known);
        if (read === undefined) return SKIPPED;
        if (read.steady) break;
      }
      if (!read!.steady) {
        this.warn(`${showName(n.path)} changed while it was read (${MAX_READ_ATTEMPTS} times); stored as the last read found it (${read!.size} bytes)`);
      }
      return { content: await fileContent(this.repo, read!.extents), size: read!.size, st: read!.st };
    } catch (e) {
      return this.skip(n, e, 'cannot read') ?? SKIPPED;
    } finally {
      // A descriptor of a file opened for reading closes at once: no round trip for it.
      closeSync(fh);
    }
  }

  /**
   * One read of an open file, block by block, each block encoded and stored while the next is read.
   * The size comes from fstat when the read begins (the scan's lstat may be stale); a second fstat
   * after the last byte tells whether the file held still (restic's check: size, mtime, ctime).
   * Undefined when the file is no longer a regular file (left out with a warning).
   */
  private async readOnce(fh: number, n: Found, known?: ReadonlySet<string>): Promise<FileRead | undefined> {
    const st = await source(async () => fstatOf(fh));
    if (!st.isFile()) {
      if (n.isRoot) throw new FragfsError('INVALID', `${showName(n.path)} is no longer a regular file`, { path: showName(n.path) });
      this.warn(`${showName(n.path)} is no longer a regular file; left out of the snapshot`);
      return undefined;
    }
    const startedNs = BigInt(Date.now()) * 1_000_000n;
    const pending: Promise<Extent | undefined>[] = [];
    let failure: unknown;
    let size = 0;
    let early = false;
    let after: BigIntStats;
    try {
      const expected = Number(st.size);
      const bs = this.repo.blockSize;
      for (let offset = 0; offset < expected; offset += bs) {
        const want = Math.min(bs, expected - offset);
        const slots = want < SMALL_BLOCK_BYTES ? this.smallBlocks : this.blocks;
        await slots.acquire();
        let buf: Buffer;
        let got: number;
        try {
          buf = Buffer.allocUnsafeSlow(want);
          got = await readFully(fh, buf, offset);
          if (got < want) buf = buf.subarray(0, got);
        } catch (e) {
          slots.release();
          throw e;
        }
        size += got;
        // storeBlock may hand buf's memory to a worker: decide from `got`, not from buf.
        const stored = this.storeBlock(buf, offset, slots, known);
        // Stop reading at the first failure; the rejection itself surfaces from Promise.all below.
        stored.catch((e: unknown) => (failure ??= e));
        pending.push(stored);
        if (failure !== undefined) break;
        if (got < want) {
          early = true; // EOF before the size fstat gave: the file shrank while we read it
          break;
        }
      }
      after = await source(async () => fstatOf(fh));
      const extents = (await Promise.all(pending)).filter((x): x is Extent => x !== undefined);
      const changedNs = after.mtimeNs > after.ctimeNs ? after.mtimeNs : after.ctimeNs;
      const racy = changedNs > startedNs - RACY_TICK_NS;
      const steady = !early && !racy && after.size === st.size && after.mtimeNs === st.mtimeNs && after.ctimeNs === st.ctimeNs;
      if (racy) await new Promise((r) => setTimeout(r, Number(RACY_TICK_NS / 1_000_000n)));
      return { extents, size, st, steady };
    } finally {
      await Promise.allSettled(pending);
    }
  }

  /**
   * A file readSmallFiles read whole, stored and judged as readOnce stores and judges its own read
   * of a file of one small block.
   */
  private async storeSmallRead(r: Extract<SmallRead, { ok: true }>, known?: ReadonlySet<string>): Promise<Omit<FileRead, 'st'> & { st: StoredFile['st'] }> {
    const { st, after, bytes } = r;
    // storeBlock may hand the bytes' memory to a worker: their count is taken first.
    const size = bytes.length;
    const extents: Extent[] = [];
    if (st.size > 0n) {
      await this.smallBlocks.acquire();
      const extent = await this.storeBlock(bytes, 0, this.smallBlocks, known);
      if (extent !== undefined) extents.push(extent);
    }
    const early = BigInt(size) < st.size;
    const changedNs = after.mtimeNs > after.ctimeNs ? after.mtimeNs : after.ctimeNs;
    const racy = changedNs > r.startedNs - RACY_TICK_NS;
    const steady = !early && !racy && after.size === st.size && after.mtimeNs === st.mtimeNs && after.ctimeNs === st.ctimeNs;
    if (racy) await new Promise((done) => setTimeout(done, Number(RACY_TICK_NS / 1_000_000n)));
    return { extents, size, st, steady };
  }

  /** The content of a stream (`put -`), stored block by block as it arrives. */
  async streamContent(stream: AsyncIterable<Buffer>): Promise<{ content: Pick<Entry, 'blocks' | 'pages'>; size: number }> {
    const bs = this.repo.blockSize;
    const pending: Promise<Extent | undefined>[] = [];
    let failure: unknown;
    let size = 0;
    let buf = Buffer.allocUnsafeSlow(bs);
    let filled = 0;
    const flush = async (): Promise<void> => {
      await this.blocks.acquire();
      const stored = this.storeBlock(buf.subarray(0, filled), size - filled, this.blocks);
      stored.catch((e: unknown) => (failure ??= e));
      pending.push(stored);
      buf = Buffer.allocUnsafeSlow(bs);
      filled = 0;
    };
    try {
      for await (const chunk of stream) {
        for (let at = 0; at < chunk.length; ) {
          const n = chunk.copy(buf, filled, at);
          at += n;
          filled += n;
          size += n;
          if (filled === bs) await flush();
          if (failure !== undefined) throw failure;
        }
      }
      if (filled > 0) await flush();
      const extents = (await Promise.all(pending)).filter((x): x is Extent => x !== undefined);
      return { content: await fileContent(this.repo, extents), size };
    } finally {
      await Promise.allSettled(pending);
    }
  }

  /** Stores one block read from a file; releases the slot (of `slots`) its read held. */
  private async storeBlock(buf: Buffer, offset: number, slots: Semaphore, known?: ReadonlySet<string>): Promise<Extent | undefined> {
    const plainSize = buf.length;
    try {
      // An all-zero block is a hole: nothing stored, and `get` recreates it sparse.
      if (plainSize === 0 || buf.equals(plainSize === this.zero.length ? this.zero : this.zero.subarray(0, plainSize))) {
        return undefined;
      }
      const ref = await this.repo.writeBlock(buf, { bulk: true, ...(known ? { known } : {}) });
      return { offset, ...ref };
    } finally {
      slots.release();
      this.o.onBytes?.(plainSize);
    }
  }
}

/**
 * fstat of an open file on the calling thread: it reads an inode the kernel holds already, so a
 * thread-pool round trip (two per file) would cost more than the call (a 100,000-file put spent 2 s
 * of its main thread in them).
 */
function fstatOf(fd: number): BigIntStats {
  return fstatSync(fd, { bigint: true });
}

/** Plain descriptors rather than FileHandles: a put opens every file once, and a handle costs more. */
const openFd = promisify(openCb) as (path: Buffer, flags: number) => Promise<number>;
function readFd(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => readCb(fd, buf, offset, length, position, (e, n) => (e ? reject(e) : resolve(n))));
}

/** Fills `buf` from `position` up to EOF; the count read. */
async function readFully(fd: number, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const bytesRead = await source(() => readFd(fd, buf, got, buf.length - got, position + got));
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** The content, size and inode fields of a file entry from the read that was stored. */
function asStored(e: Entry, stored: StoredFile): void {
  Object.assign(e, stored.content);
  e.size = stored.size;
  e.mode = Number(stored.st.mode & 0o7777n);
  e.uid = Number(stored.st.uid);
  e.gid = Number(stored.st.gid);
  e.mtimeNs = stored.st.mtimeNs;
}

/**
 * Whether a fresh entry and the parent's decoded one are the same value: the same keys with a
 * defined value, bytes equal, numbers and bigints equal, arrays and objects alike all the way down.
 * A field the fresh entry lacks (an xattr a mount recorded) makes them differ: the folder is written.
 */
/** Whether entry `c` holds what lstat `found` saw: the same mtime and, for a file, the same size. */
function agrees(c: Entry, found: SourceLstat): boolean {
  const st = found.st;
  return st !== undefined && c.mtimeNs === st.mtimeNs && (c.type !== 'file' || c.size === st.size);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && compareNames(a, b) === 0;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  // Loops rather than Object.keys and filter: this runs for every entry of a re-put.
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let defined = 0;
  for (const k in ra) {
    const v = ra[k];
    if (v === undefined) continue;
    if (!sameValue(v, rb[k])) return false;
    defined++;
  }
  for (const k in rb) if (rb[k] !== undefined) defined--;
  return defined === 0;
}
