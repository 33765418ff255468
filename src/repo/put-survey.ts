// The survey of a put: one lstat per entry of the trees to put, before anything is written. It counts
// the content bytes to read (each inode once), counts the names each inode with several links has
// inside the trees (only those with two or more form hard-link groups), and meets first what fails a
// put at once: a missing root, a folder that cannot be listed. It needs no store, so `fragfs put`
// starts it before the passphrase's KDF and the two run side by side. It keeps, for the walk, folder
// scans up to a bound and a summary of each folder of files (folder-tag.ts), by which a re-put takes
// an unchanged folder whole without listing it again. Also here: which of a folder's names a put
// keeps (--one-file-system, --exclude-caches, --exclude), for the survey and the walk.

import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { joinName, showName } from '../fragment/names.js';
import { localFs, type LocalFs } from '../local/local-fs.js';
import { lstatPaths, readFolderScan, scanFolder, type FolderScan, type SourceLstat, type SourceStat } from '../local/source-stat.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../vfs/inode.js';
import { summarizeFolder, type FolderSummary } from './folder-tag.js';
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

/**
 * Bytes of folder scans the survey keeps for the walk. The survey runs while the passphrase's KDF
 * does, so its scans cost the put no time; the walk, which starts once both are done, takes its
 * folders' scans from here instead of listing and lstat'ing them again. A scan is kept as the
 * addon's packed answer (an 88-byte record per entry, its name and its attributes): 8 MiB holds the
 * scans of about 70,000 entries of short names. Past the bound the walk scans as before.
 */
export const DEFAULT_SURVEY_SCAN_BYTES = 8 * 1024 * 1024;
/** What keeping one scan costs beside its answer: the Buffer object, the map entry, the path key. */
const KEPT_SCAN_OVERHEAD_BYTES = 160;
/**
 * Bytes of folder summaries (folder-tag.ts) the survey keeps for the walk: one per folder of files,
 * whatever its size, so a re-put takes a folder unchanged since its parent snapshot without
 * listing it again. 16 MiB holds those of about 55,000 folders (paths of 60 bytes).
 */
export const DEFAULT_SURVEY_SUMMARY_BYTES = 16 * 1024 * 1024;
/** What keeping one summary costs: its object, digest, bigint, map entry and path key. */
const KEPT_SUMMARY_OVERHEAD_BYTES = 240;
/** What each `dev:ino` string of a summary's linkedInodes costs. */
const KEPT_LINKED_INODE_BYTES = 48;

function summaryCost(path: Buffer, summary: FolderSummary): number {
  return path.length + KEPT_SUMMARY_OVERHEAD_BYTES + summary.linkedInodes.length * KEPT_LINKED_INODE_BYTES;
}

/**
 * Folder scans made by the survey (scanDir's answers, with attributes), kept up to a byte bound until
 * the walk takes each once. Stats taken a little earlier are as good as the walk's own: the walk of
 * a big tree lstats its last folders long after its first, and what put decides from an lstat is
 * checked again when a file is read (size, mtime and ctime before and after).
 */
export class SurveyScans {
  private readonly kept = new Map<string, Buffer>();
  private keptBytes = 0;
  private full = false;
  private readonly summaries = new Map<string, FolderSummary>();
  private summaryBytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly maxSummaryBytes = DEFAULT_SURVEY_SUMMARY_BYTES,
  ) {}

  /** Keeps the summary of folder `path` while the summaries' bound allows. */
  offerSummary(path: Buffer, summary: FolderSummary): void {
    const cost = summaryCost(path, summary);
    if (this.summaryBytes + cost > this.maxSummaryBytes) return;
    this.summaries.set(path.toString('latin1'), summary);
    this.summaryBytes += cost;
  }

  /** The summary of folder `path`, handed over once (undefined: none kept). */
  takeSummary(path: Buffer): FolderSummary | undefined {
    const key = path.toString('latin1');
    const s = this.summaries.get(key);
    if (s === undefined) return undefined;
    this.summaries.delete(key);
    this.summaryBytes -= summaryCost(path, s);
    return s;
  }

  /** Drops the scan of folder `path` if one is kept (the walk took the folder without it). */
  drop(path: Buffer): void {
    this.remove(path);
  }

  /** Keeps `out` (scanDir's answer for `path`) unless the bound is reached; once it is, keeps no more. */
  offer(path: Buffer, out: Buffer): void {
    if (this.full) return;
    const cost = out.length + path.length + KEPT_SCAN_OVERHEAD_BYTES;
    if (this.keptBytes + cost > this.maxBytes) {
      this.full = true;
      return;
    }
    this.kept.set(path.toString('latin1'), out);
    this.keptBytes += cost;
  }

  /** The kept scan of folder `path`, handed over once (undefined: not kept). */
  take(path: Buffer): FolderScan | undefined {
    const out = this.remove(path);
    return out === undefined ? undefined : readFolderScan(out, path);
  }

  /** The kept answer for folder `path`, no longer kept. */
  private remove(path: Buffer): Buffer | undefined {
    const key = path.toString('latin1');
    const out = this.kept.get(key);
    if (out === undefined) return undefined;
    this.kept.delete(key);
    this.keptBytes -= out.length + path.length + KEPT_SCAN_OVERHEAD_BYTES;
    return out;
  }

  /** Drops every scan not taken (the walk is over). */
  clear(): void {
    this.kept.clear();
    this.keptBytes = 0;
    this.full = true;
    this.summaries.clear();
    this.summaryBytes = 0;
  }

  get bytes(): number {
    return this.keptBytes;
  }
}

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
  /** Folder scans for the walk (with the local-fs addon; without it none are kept). */
  readonly scans: SurveyScans;

  constructor(paths: (string | Buffer)[], rules: KeepRules, scanBytes: number = DEFAULT_SURVEY_SCAN_BYTES) {
    this.roots = paths.map(absolutePath);
    this.scans = new SurveyScans(scanBytes);
    this.result = survey(this.roots, rules, this.scans);
    this.result.catch(() => undefined);
  }

  /** Whether this survey is of exactly `roots`. */
  covers(roots: Buffer[]): boolean {
    return roots.length === this.roots.length && roots.every((r, i) => r.equals(this.roots[i]!));
  }
}

async function survey(roots: Buffer[], rules: KeepRules, scans: SurveyScans): Promise<SurveyResult> {
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
      if (local === undefined) scan = await scanFolder(local, path, false);
      else {
        // With the attributes, as the walk lists a folder: the walk may take this scan as its own.
        const out = await local.scanDir(path, true);
        scan = readFolderScan(out, path);
        scans.offer(path, out);
      }
      names = await keptNames(path, st, rootDev, scan.names, rules);
    } catch (e) {
      const errno = (e as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return; // replaced since its lstat: the walk decides
      throw fromFsError(e, 'cannot list folder', showName(path));
    }
    const kept = await keptScan(local, path, scan, names, false);
    if (local !== undefined) {
      const summary = summarizeFolder(kept.names, kept.found);
      if (summary !== undefined) scans.offerSummary(path, summary);
    }
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
