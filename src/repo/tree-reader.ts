// Walks a frozen tree: from a meta key (and an optional path inside it) to entries, directories
// and file contents. `get`, `ls`, `cat`, `verify` and snapshot mounts read trees through here.

import { FragfsError, isFragfsError } from '../errors.js';
import { showName } from '../fragment/names.js';
import type { Entry, SnapshotObject } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';

/**
 * Splits `KEY/some/path` (what `ls`, `cat` and `get` take) into the key part and the path inside the
 * tree, as bytes: a name on the command line need not be UTF-8 (cli/argv-bytes.ts keeps its bytes).
 */
export function splitKeyPath(spec: string | Buffer): { key: string; path: Buffer[] } {
  const bytes = typeof spec === 'string' ? Buffer.from(spec, 'utf8') : spec;
  const slash = bytes.indexOf(0x2f);
  if (slash < 0) return { key: bytes.toString('utf8'), path: [] };
  const path: Buffer[] = [];
  let start = slash + 1;
  for (let i = start; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x2f) continue;
    const part = bytes.subarray(start, i);
    if (part.length > 0 && !(part.length === 1 && part[0] === 0x2e)) path.push(Buffer.from(part));
    start = i + 1;
  }
  return { key: bytes.subarray(0, slash).toString('utf8'), path };
}

/** A tree path for messages: '/' and the components as `ls -b` shows them. */
export function showTreePath(path: readonly Uint8Array[]): string {
  return `/${path.map((p) => showName(p)).join('/')}`;
}

/**
 * The display path of entry `name` inside the folder at display path `parent` ('/' is the top), the
 * name shown as `ls -b` shows it. Every tree path fragfs prints or puts in an error is built here.
 */
export function childPath(parent: string, name: Uint8Array): string {
  const shown = showName(name);
  return parent.endsWith('/') ? `${parent}${shown}` : `${parent}/${shown}`;
}

/** The snapshot object a user's key or name names, with clear errors for bad or unknown keys. */
export async function loadSnapshot(repo: Repo, keyOrName: string): Promise<{ key: string; snapshot: SnapshotObject }> {
  const key = await repo.resolveSnapshot(keyOrName);
  try {
    return { key, snapshot: await repo.getMeta(key, 'snapshot') };
  } catch (e) {
    if (isFragfsError(e, 'MISSING_FRAGMENT')) throw new FragfsError('NOT_FOUND', `no snapshot with meta key ${key}`);
    if (isFragfsError(e, 'CORRUPT') && /expected a snapshot/.test(e.message)) {
      throw new FragfsError('BAD_KEY', `${key} names a metadata fragment that is not a snapshot`);
    }
    throw e;
  }
}

export async function readDirEntries(repo: Repo, entry: Entry, where: string): Promise<Entry[]> {
  if (entry.type !== 'dir' || entry.dir === undefined) {
    throw new FragfsError('NOT_DIR', `${where} is not a folder`, { path: where });
  }
  return (await repo.getMeta(entry.dir, 'dir', where, entry.dirKey)).entries;
}

/** Follows `path` (components) from the root entry; symlinks inside the tree are not followed. */
export async function resolveEntry(repo: Repo, root: Entry, path: readonly Buffer[]): Promise<Entry> {
  let cur = root;
  const walked: Buffer[] = [];
  for (const name of path) {
    const where = showTreePath(walked);
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) throw new FragfsError('INVALID', `'..' is not allowed in a tree path`);
    const entries = await readDirEntries(repo, cur, where);
    const next = entries.find((e) => e.name.equals(name));
    walked.push(name);
    if (!next) throw new FragfsError('NOT_FOUND', `no such file or folder in the snapshot: ${showTreePath(walked)}`);
    cur = next;
  }
  return cur;
}

export interface WalkVisitor {
  /** Called for every entry, the root included (path '/' for the root). */
  entry?(e: Entry, path: string): void | Promise<void>;
  /** Called when a metadata fragment below the root cannot be read; the walk goes on elsewhere. */
  error?(err: unknown, path: string, fragmentId: string | undefined): void;
}

/**
 * Visits every entry of a tree depth first. Directories whose fragment id is in `seenDirs` are not
 * entered again, so several snapshots sharing subtrees cost their differences only.
 */
export async function walkTree(repo: Repo, root: Entry, visitor: WalkVisitor, seenDirs = new Set<string>()): Promise<void> {
  const visit = async (e: Entry, path: string): Promise<void> => {
    await visitor.entry?.(e, path);
    if (e.type !== 'dir' || e.dir === undefined || seenDirs.has(e.dir)) return;
    seenDirs.add(e.dir);
    let entries: Entry[];
    try {
      entries = await readDirEntries(repo, e, path);
    } catch (err) {
      if (!visitor.error) throw err;
      visitor.error(err, path, e.dir);
      return;
    }
    for (const c of entries) await visit(c, childPath(path, c.name));
  };
  await visit(root, '/');
}
