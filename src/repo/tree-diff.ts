// What changed between two frozen trees: paths added, removed, changed in content, and changed in
// metadata only. Folders whose dir fragment is the same on both sides are identical below and are
// not entered, so a diff reads the folders on the way to what changed, not the trees.

import { FragfsError } from '../errors.js';
import { compareNames, joinName, showName } from '../fragment/names.js';
import type { Entry, EntryType, Extent, Xattr } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';
import { readDirEntries } from './tree-reader.js';

/**
 * `added`/`removed`: the path is on one side only. `changed`: its content differs (file blocks,
 * symlink target, device number) or its type. `metadata`: same content, other mode, owner, mtime or
 * xattrs. A folder whose entries changed is not itself `changed`; its entries are.
 */
export type ChangeKind = 'added' | 'removed' | 'changed' | 'metadata';

export interface TreeChange {
  kind: ChangeKind;
  /** The path from the top of the tree, as bytes ('/' is the top itself). */
  path: Buffer;
  /** The entry's type after (before, for `removed`). */
  type: EntryType;
  /** For `changed`: the type before, when it differs. */
  typeBefore?: EntryType;
  /** Regular files: the size before (changed, metadata, removed) and after (added, changed, metadata). */
  sizeBefore?: number;
  size?: number;
}

export interface DiffStats {
  added: number;
  removed: number;
  changed: number;
  metadata: number;
  /** Bytes of regular files added, and removed, plus both sides of changed ones. */
  addedBytes: number;
  removedBytes: number;
  /** Dir fragments read: what the diff cost. */
  dirsRead: number;
  /** Folders present on both sides with one dir fragment: skipped whole. */
  dirsSkipped: number;
}

/** The totals a snapshot declares (docs/FORMAT.md 2.3.4): a diff meets no more than them on that side. */
export interface TreeTotals {
  files: number;
  dirs: number;
}

/**
 * Compares tree `a` (before) with tree `b` (after) and calls `onChange` for each change, parents
 * before their entries, entries in name-byte order. The top entries are compared whatever their
 * names. Either side MUST NOT take the diff past the totals it declares (CORRUPT naming the path).
 */
export async function diffTrees(
  repo: Repo,
  a: Entry,
  b: Entry,
  onChange: (c: TreeChange) => void | Promise<void>,
  totals?: { a: TreeTotals; b: TreeTotals },
): Promise<DiffStats> {
  const stats: DiffStats = { added: 0, removed: 0, changed: 0, metadata: 0, addedBytes: 0, removedBytes: 0, dirsRead: 0, dirsSkipped: 0 };
  const met = [
    { files: 0, dirs: 0, links: new Set<number>() },
    { files: 0, dirs: 0, links: new Set<number>() },
  ];
  const meet = (side: 0 | 1, e: Entry, path: Buffer, top: boolean): void => {
    const limit = totals === undefined ? undefined : side === 0 ? totals.a : totals.b;
    const m = met[side]!;
    if (e.type === 'dir' && !top) m.dirs++;
    if (e.type === 'file' && (e.link === undefined || !m.links.has(e.link))) {
      if (e.link !== undefined) m.links.add(e.link);
      m.files++;
    }
    if (limit !== undefined && (m.dirs > limit.dirs || m.files > limit.files)) {
      throw new FragfsError('CORRUPT', `the ${side === 0 ? 'first' : 'second'} tree holds more than its snapshot declares, at ${showName(path)}`);
    }
  };
  const report = async (c: TreeChange): Promise<void> => {
    stats[c.kind]++;
    if (c.kind === 'added' && c.size !== undefined) stats.addedBytes += c.size;
    if (c.kind === 'removed' && c.sizeBefore !== undefined) stats.removedBytes += c.sizeBefore;
    if (c.kind === 'changed') {
      stats.addedBytes += c.size ?? 0;
      stats.removedBytes += c.sizeBefore ?? 0;
    }
    await onChange(c);
  };
  const entriesOf = async (e: Entry, path: Buffer, ancestors: ReadonlySet<string>): Promise<Entry[]> => {
    // A dir fragment inside itself needs a hash collision: a hostile store, not a deep tree.
    if (ancestors.has(e.dir!)) throw new FragfsError('CORRUPT', `folder ${showName(path)} contains itself (dir fragment ${e.dir})`, { fragmentId: e.dir! });
    stats.dirsRead++;
    return readDirEntries(repo, e, showName(path));
  };
  /** Every entry of a subtree present on one side only. */
  const oneSide = async (side: 0 | 1, e: Entry, path: Buffer, ancestors: ReadonlySet<string>, top = false): Promise<void> => {
    meet(side, e, path, top);
    const size = e.type === 'file' ? e.size : undefined;
    await report(side === 0 ? { kind: 'removed', path, type: e.type, ...(size === undefined ? {} : { sizeBefore: size }) } : { kind: 'added', path, type: e.type, ...(size === undefined ? {} : { size }) });
    if (e.type !== 'dir') return;
    const inner = new Set(ancestors).add(e.dir!);
    for (const c of await entriesOf(e, path, ancestors)) await oneSide(side, c, joinName(path, c.name), inner);
  };
  const both = async (x: Entry, y: Entry, path: Buffer, ancX: ReadonlySet<string>, ancY: ReadonlySet<string>, top = false): Promise<void> => {
    if (x.type !== y.type) {
      // The path stays, what it is changes: its old subtree goes, its new one comes.
      meet(0, x, path, top);
      meet(1, y, path, top);
      await report({
        kind: 'changed',
        path,
        type: y.type,
        typeBefore: x.type,
        ...(x.type === 'file' ? { sizeBefore: x.size } : {}),
        ...(y.type === 'file' ? { size: y.size } : {}),
      });
      if (x.type === 'dir') for (const c of await entriesOf(x, path, ancX)) await oneSide(0, c, joinName(path, c.name), new Set(ancX).add(x.dir!));
      if (y.type === 'dir') for (const c of await entriesOf(y, path, ancY)) await oneSide(1, c, joinName(path, c.name), new Set(ancY).add(y.dir!));
      return;
    }
    meet(0, x, path, top);
    meet(1, y, path, top);
    const sizes = x.type === 'file' ? { sizeBefore: x.size, size: y.size } : {};
    if (x.type === 'dir') {
      if (x.dir === y.dir) {
        stats.dirsSkipped++;
        if (!sameMetadata(x, y, true)) await report({ kind: 'metadata', path, type: 'dir' });
        return;
      }
      // Its entries changed, so its mtime did too: only the rest of its metadata is news.
      if (!sameMetadata(x, y, false)) await report({ kind: 'metadata', path, type: 'dir' });
      const [left, right] = [await entriesOf(x, path, ancX), await entriesOf(y, path, ancY)];
      const innerX = new Set(ancX).add(x.dir!);
      const innerY = new Set(ancY).add(y.dir!);
      let i = 0;
      let j = 0;
      while (i < left.length || j < right.length) {
        const order = i === left.length ? 1 : j === right.length ? -1 : compareNames(left[i]!.name, right[j]!.name);
        if (order < 0) {
          await oneSide(0, left[i]!, joinName(path, left[i]!.name), innerX);
          i++;
        } else if (order > 0) {
          await oneSide(1, right[j]!, joinName(path, right[j]!.name), innerY);
          j++;
        } else {
          await both(left[i]!, right[j]!, joinName(path, left[i]!.name), innerX, innerY);
          i++;
          j++;
        }
      }
      return;
    }
    if (!sameContent(x, y)) await report({ kind: 'changed', path, type: y.type, ...sizes });
    else if (!sameMetadata(x, y, true)) await report({ kind: 'metadata', path, type: y.type, ...sizes });
  };
  const top = Buffer.from('/');
  await both(a, b, top, new Set(), new Set(), true);
  return stats;
}

/** Same content: a file's size and blocks (or manifest pages), a symlink's target, a device's number. */
export function sameContent(x: Entry, y: Entry): boolean {
  if (x.type !== y.type || x.size !== y.size) return false;
  switch (x.type) {
    case 'file':
      // A writer pages a block list the same way each time: equal lists have equal forms.
      if (x.pages !== undefined || y.pages !== undefined) return sameList(x.pages, y.pages, (p, q) => p === q);
      return sameList(x.blocks, y.blocks, sameExtent);
    case 'symlink':
      return (x.target ?? Buffer.alloc(0)).equals(y.target ?? Buffer.alloc(0));
    case 'chardev':
    case 'blockdev':
      return x.rdev === y.rdev;
    case 'dir':
      return x.dir === y.dir;
    default:
      return true;
  }
}

/** Same mode, owner, xattrs, and (`withMtime`) modification time. Hard-link numbers are per tree. */
export function sameMetadata(x: Entry, y: Entry, withMtime: boolean): boolean {
  return (
    x.mode === y.mode &&
    x.uid === y.uid &&
    x.gid === y.gid &&
    (!withMtime || x.mtimeNs === y.mtimeNs) &&
    sameList(x.xattrs ?? [], y.xattrs ?? [], (p: Xattr, q: Xattr) => p.name.equals(q.name) && p.value.equals(q.value))
  );
}

function sameExtent(p: Extent, q: Extent): boolean {
  return p.offset === q.offset && p.plainSize === q.plainSize && p.id === q.id;
}

function sameList<T>(p: readonly T[] | undefined, q: readonly T[] | undefined, same: (a: T, b: T) => boolean): boolean {
  if (p === undefined || q === undefined) return p === q;
  return p.length === q.length && p.every((v, i) => same(v, q[i]!));
}
