// Walks a frozen tree: from a meta key (and an optional path inside it) to entries, directories
// and file contents. `get`, `ls`, `cat`, `verify` and snapshot mounts read trees through here.

import { FragfsError, isFragfsError } from '../errors.js';
import type { Entry, SnapshotObject } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';

/**
 * The display path of entry `name` inside the folder at display path `parent` ('/' is the top).
 * Every tree path fragfs prints or puts in an error is built here.
 */
export function childPath(parent: string, name: string): string {
  return parent.endsWith('/') ? `${parent}${name}` : `${parent}/${name}`;
}

/** Splits `KEY/some/path` (what `ls` and `cat` take) into the key part and the path inside the tree. */
export function splitKeyPath(spec: string): { key: string; path: string[] } {
  const slash = spec.indexOf('/');
  if (slash < 0) return { key: spec, path: [] };
  return { key: spec.slice(0, slash), path: spec.slice(slash + 1).split('/').filter((p) => p.length > 0 && p !== '.') };
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
  return (await repo.getMeta(entry.dir, 'dir', where)).entries;
}

/** Follows `path` (components) from the root entry; symlinks inside the tree are not followed. */
export async function resolveEntry(repo: Repo, root: Entry, path: string[]): Promise<Entry> {
  let cur = root;
  let where = '/';
  for (const name of path) {
    if (name === '..') throw new FragfsError('INVALID', `'..' is not allowed in a tree path`);
    const entries = await readDirEntries(repo, cur, where);
    const next = entries.find((e) => e.name === name);
    where = childPath(where, name);
    if (!next) throw new FragfsError('NOT_FOUND', `no such file or folder in the snapshot: ${where}`);
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
