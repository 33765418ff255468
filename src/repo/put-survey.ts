// The survey of a put: one lstat per entry of the trees to put, before anything is written. It counts
// the content bytes to read (each inode once), counts the names each inode with several links has
// inside the trees (only those with two or more form hard-link groups), and meets first what fails a
// put at once: a missing root, a folder that cannot be listed. It needs no store, so `fragfs put`
// starts it before the passphrase's KDF and the two run side by side. Also here: which of a folder's
// names a put keeps (--one-file-system, --exclude-caches, --exclude), for the survey and the walk.

import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { joinName, showName } from '../fragment/names.js';
import { localFs, type LocalFs } from '../local/local-fs.js';
import { lstatPaths, scanFolder, type FolderScan, type SourceLstat, type SourceStat } from '../local/source-stat.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../vfs/inode.js';
import type { ExcludePatterns } from './exclude-patterns.js';
import { Semaphore } from './semaphore.js';

/** The rules that leave names out of a put. */
export interface KeepRules {
  exclude?: ExcludePatterns;
  excludeCaches?: boolean;
  oneFileSystem?: boolean;
}

export interface SurveyResult {
  /** Content bytes to read: regular files' sizes, each inode once. */
  plainBytes: number;
  /** dev:ino of each inode with nlink > 1 -> how many of its names lie inside the trees. */
  linked: Map<string, number>;
}

/** Folders listed beside the one the survey is in. */
const SURVEY_FOLDERS_IN_FLIGHT = 4;

/** CACHEDIR.TAG: its first bytes MUST be this signature (https://bford.info/cachedir/). */
export const CACHEDIR_TAG = Buffer.from('CACHEDIR.TAG');
const CACHEDIR_SIGNATURE = Buffer.from('Signature: 8a477f597d28d172789f06886806bc55');

/**
 * A survey of `paths` under way: started at once, its result awaited by the put. A failure is the
 * put's to report (awaiting `result` rethrows it); until then it is held, never an unhandled rejection.
 */
export class PutSurvey {
  /** The paths as the put stores them: absolute, without `.` and `..` steps. */
  readonly roots: Buffer[];
  readonly result: Promise<SurveyResult>;

  constructor(paths: (string | Buffer)[], rules: KeepRules) {
    this.roots = paths.map(absolutePath);
    this.result = survey(this.roots, rules);
    this.result.catch(() => undefined);
  }

  /** Whether this survey is of exactly `roots`. */
  covers(roots: Buffer[]): boolean {
    return roots.length === this.roots.length && roots.every((r, i) => r.equals(this.roots[i]!));
  }
}

async function survey(roots: Buffer[], rules: KeepRules): Promise<SurveyResult> {
  const addon = await localFs();
  const local = addon instanceof Error ? undefined : addon;
  const linked = new Map<string, number>();
  let plainBytes = 0;
  const count = (st: SourceStat): void => {
    if ((st.mode & S_IFMT) !== S_IFREG) return;
    if (st.nlink > 1) {
      const id = `${st.dev}:${st.ino}`;
      const names = linked.get(id);
      linked.set(id, (names ?? 0) + 1);
      if (names !== undefined) return;
    }
    plainBytes += st.size;
  };
  const slots = new Semaphore(SURVEY_FOLDERS_IN_FLIGHT);
  const folder = async (path: Buffer, st: SourceStat, rootDev: bigint): Promise<void> => {
    let scan: FolderScan;
    let names: Buffer[];
    try {
      scan = await scanFolder(local, path, false);
      names = await keptNames(path, st, rootDev, scan.names, rules);
    } catch (e) {
      const errno = (e as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return; // replaced since its lstat: the walk decides
      throw fromFsError(e, 'cannot list folder', showName(path));
    }
    const kept = await keptScan(local, path, scan, names, false);
    const sub: [Buffer, SourceStat][] = [];
    for (const [i, n] of kept.names.entries()) {
      const found = kept.found[i]!;
      // Paths are joined only where they are needed: a sub-folder, a failure's message.
      const childSt = found.st ?? surveyStat(joinName(path, n), found, false);
      if (childSt === undefined) continue;
      if ((childSt.mode & S_IFMT) === S_IFDIR) sub.push([joinName(path, n), childSt]);
      else count(childSt);
    }
    // Sub-folders beside this one while a slot is free, else in turn: none waits on a slot its caller holds.
    const pending: Promise<void>[] = [];
    let failure: { error: unknown } | undefined;
    try {
      for (const [child, childSt] of sub) {
        if (failure !== undefined) break;
        if (!slots.tryAcquire()) await folder(child, childSt, rootDev);
        else pending.push(folder(child, childSt, rootDev).catch((error: unknown) => void (failure ??= { error })).finally(() => slots.release()));
      }
    } catch (error) {
      failure ??= { error };
    }
    await Promise.all(pending);
    if (failure !== undefined) throw failure.error;
  };
  for (const path of roots) {
    const st = surveyStat(path, (await lstatPaths(local, [path], false))[0]!, true)!;
    if ((st.mode & S_IFMT) === S_IFDIR) await folder(path, st, st.dev);
    else count(st);
  }
  return { plainBytes, linked };
}

/** An lstat's answer for the survey; undefined when it vanished (the walk decides what that means). */
function surveyStat(path: Buffer, found: SourceLstat, isRoot: boolean): SourceStat | undefined {
  if (found.st !== undefined) return found.st;
  if (found.error.code === 'ENOENT') {
    if (!isRoot) return undefined;
    throw new FragfsError('NOT_FOUND', `no such file or folder: ${showName(path)}`, { path: showName(path) });
  }
  throw fromFsError(found.error, 'cannot read', showName(path));
}

/**
 * The scan of folder `path` cut to the names the keep rules kept (`kept`, from keptNames), each with
 * its answer: the scan's, or, for a name the rules added (CACHEDIR.TAG's), one lstat made here (with
 * the attributes when `xattrs`). When the rules kept the scan's own list, its answers as they are.
 */
export async function keptScan(local: LocalFs | undefined, path: Buffer, scan: FolderScan, kept: Buffer[], xattrs: boolean): Promise<FolderScan> {
  if (kept === scan.names) return scan;
  const byName = new Map(scan.names.map((n, i) => [n, scan.found[i]!]));
  const missing = kept.filter((n) => !byName.has(n));
  if (missing.length > 0) {
    const late = await lstatPaths(local, missing.map((n) => joinName(path, n)), xattrs);
    missing.forEach((n, i) => byName.set(n, late[i]!));
  }
  return { names: kept, found: kept.map((n) => byName.get(n)!) };
}

/**
 * The names of folder `path` (lstat `st`, under a root on `rootDev`) that the put keeps: none when
 * --one-file-system finds it on another file system than its root, only the tag when it is a tagged
 * cache folder, and none that an exclude pattern matches. `leftOut` hears of each rule applied.
 * Without a rule that applies, `names` itself is the answer (keptScan relies on it).
 */
export async function keptNames(
  path: Buffer,
  st: SourceStat,
  rootDev: bigint,
  names: Buffer[],
  rules: KeepRules,
  leftOut?: (path: Buffer, why: 'excluded' | 'cache' | 'other file system') => void,
): Promise<Buffer[]> {
  if (rules.oneFileSystem && st.dev !== rootDev) {
    if (names.length > 0) leftOut?.(path, 'other file system');
    return [];
  }
  if (rules.excludeCaches && names.some((n) => n.equals(CACHEDIR_TAG)) && (await isCacheTag(joinName(path, CACHEDIR_TAG)))) {
    if (names.length > 1) leftOut?.(path, 'cache');
    return [CACHEDIR_TAG];
  }
  const exclude = rules.exclude;
  if (exclude === undefined || exclude.isEmpty) return names;
  return names.filter((n) => {
    const child = joinName(path, n);
    if (!exclude.matches(child)) return true;
    leftOut?.(child, 'excluded');
    return false;
  });
}

async function isCacheTag(path: Buffer): Promise<boolean> {
  try {
    const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    try {
      const head = Buffer.alloc(CACHEDIR_SIGNATURE.length);
      let got = 0;
      while (got < head.length) {
        const { bytesRead } = await fh.read(head, got, head.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === head.length && head.equals(CACHEDIR_SIGNATURE);
    } finally {
      await fh.close();
    }
  } catch {
    return false; // unreadable or gone: not a tag, and the folder is stored as any other
  }
}

/** An absolute local path as bytes, with `.`, `..` and repeated slashes resolved (as path.resolve does). */
export function absolutePath(p: string | Buffer): Buffer {
  const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
  const parts: Buffer[] = [];
  const full = b[0] === 0x2f ? b : joinName(Buffer.from(resolve('.'), 'utf8'), b);
  let start = 0;
  for (let i = 0; i <= full.length; i++) {
    if (i < full.length && full[i] !== 0x2f) continue;
    const part = full.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) parts.pop();
    else parts.push(part);
  }
  return Buffer.concat([Buffer.from('/'), ...parts.flatMap((x, i) => (i === 0 ? [x] : [Buffer.from('/'), x]))]);
}
