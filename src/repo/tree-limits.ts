// What a snapshot's own declared totals (files, dirs, logicalBytes) let a reader do with its tree, and
// the exact totals `verify` holds them against. A tree is a DAG (identical folders share one dir
// fragment), so a crafted one of 41 fragments can describe 2^40 files: every walk that follows each
// path counts what it meets against the declared totals (TreeBudget) and stops at the first entry
// past them, before any work on it; verify totals the tree once per distinct fragment (TreeTally).

import { FragfsError } from '../errors.js';
import type { Entry } from '../fragment/tree-format.js';
import { childPath } from './tree-reader.js';

/** The totals a snapshot object declares (FORMAT.md 2.3.4). */
export interface TreeTotals {
  files: number;
  dirs: number;
  logicalBytes: number;
}

/**
 * Counts a walk against the declared totals, the way fragfs 1 writers count at the least: a
 * directory below the walk's top is one dir, a regular file is one file and its size in bytes, once
 * per hard-link group. `put` counts the top folder too and the mount counts every name of a hard
 * link, so both declare at least this much. Symlinks, devices and the other names of a hard link are
 * not declared by fragfs 1; they are bounded by the dirs a walk may enter times the entries of each.
 */
export class TreeBudget {
  private files = 0;
  private dirs = 0;
  private bytes = 0;
  private readonly links = new Set<number>();
  private failure: FragfsError | undefined;

  constructor(
    private readonly declared: TreeTotals,
    /** The snapshot's meta key: the fragment whose totals are broken. */
    private readonly snapshotKey: string,
  ) {}

  /**
   * Counts `e`, met at display path `path`. MUST be called before any work on the entry (reading its
   * content, creating it, entering it). Throws CORRUPT once the walk holds more than declared, and
   * again on every later call, so parallel branches of a walk stop too.
   */
  count(e: Entry, path: string, isTop: boolean): void {
    if (this.failure) throw this.failure;
    if (e.type === 'dir') {
      if (!isTop) this.dirs++;
    } else if (e.type === 'file' && (e.link === undefined || !this.links.has(e.link))) {
      if (e.link !== undefined) this.links.add(e.link);
      this.files++;
      this.bytes += e.size;
    }
    const over =
      this.dirs > this.declared.dirs
        ? `folders (${this.declared.dirs})`
        : this.files > this.declared.files
          ? `files (${this.declared.files})`
          : this.bytes > this.declared.logicalBytes
            ? `bytes (${this.declared.logicalBytes})`
            : undefined;
    if (over === undefined) return;
    this.failure = new FragfsError(
      'CORRUPT',
      `snapshot ${this.snapshotKey}: the tree holds more entries than its snapshot declares: more ${over}, at ${path}`,
      { fragmentId: this.snapshotKey, path },
    );
    throw this.failure;
  }
}

/**
 * What the members of a hard-link group MUST share (FORMAT.md 2.3.6: one inode, the same content
 * fields): type, size and content. Two entries of one group with different signatures are corrupt.
 */
export function contentSignature(e: Entry): string {
  const content = e.pages
    ? `pages ${e.pages.join(',')}`
    : e.blocks
      ? `blocks ${e.blocks.map((x) => `${x.offset}+${x.plainSize}:${x.id}`).join(',')}`
      : e.dir !== undefined
        ? `dir ${e.dir}`
        : `target ${e.target?.toString('hex') ?? ''} rdev ${e.rdev ?? ''}`;
  return `${e.type} ${e.size} ${content}`;
}

/** What one dir fragment adds to any tree that holds it: enough to total the tree without it. */
export interface DirSummary {
  /** Subdirectories, one per entry: a fragment reused under two names is listed twice. */
  subdirs: { name: Buffer; id: string }[];
  /** Regular files, every name counted, and the sum of their sizes. */
  files: number;
  bytes: number;
  /** Entries of hard-link groups. */
  linked: { link: number; name: Buffer; regular: boolean; size: number; signature: string }[];
}

export function summarizeDir(entries: Entry[]): DirSummary {
  const s: DirSummary = { subdirs: [], files: 0, bytes: 0, linked: [] };
  for (const e of entries) {
    if (e.type === 'dir' && e.dir !== undefined) s.subdirs.push({ name: e.name, id: e.dir });
    else if (e.type === 'file') {
      s.files++;
      s.bytes += e.size;
    }
    if (e.link !== undefined && e.type !== 'dir') {
      s.linked.push({ link: e.link, name: e.name, regular: e.type === 'file', size: e.size, signature: contentSignature(e) });
    }
  }
  return s;
}

/** Totals of a tree under both ways fragfs 1 writers count, and its inconsistent hard-link groups. */
export interface TreeCount {
  /** Every name of a regular file counted, the top folder not (mount snapshots). */
  perName: TreeTotals;
  /** Each hard-link group once, the top folder counted (put). */
  perInode: TreeTotals;
  /** Hard-link groups whose members differ: the dir fragment and path of the member that differs. */
  linkConflicts: { link: number; dirId: string; path: string; firstPath: string }[];
}

interface Sums {
  files: number;
  dirs: number;
  bytes: number;
}

/**
 * Totals trees from the summaries of their dir fragments, each distinct fragment once however
 * often the trees reuse it (so a 2^40-file DAG of 41 fragments costs 41 steps, in numbers that
 * simply come out large). Summaries and per-fragment sums are kept across trees: snapshots of one
 * store share most of their fragments.
 */
export class TreeTally {
  private readonly summaries = new Map<string, DirSummary>();
  private readonly sums = new Map<string, Sums>();

  add(dirId: string, summary: DirSummary): void {
    this.summaries.set(dirId, summary);
  }

  has(dirId: string): boolean {
    return this.summaries.has(dirId);
  }

  /**
   * The totals of the tree under `root`, or undefined when a dir fragment of it was never added (it
   * could not be read) or the tree has a cycle: those are reported on their own.
   */
  count(root: Entry): TreeCount | undefined {
    let perName: Sums = { files: 0, dirs: 0, bytes: 0 };
    const linkConflicts: TreeCount['linkConflicts'] = [];
    const groups = new Map<number, { regular: boolean; size: number; signature: string; path: string }>();
    const take = (dirId: string, path: string, l: DirSummary['linked'][number]): void => {
      const here = childPath(path, l.name);
      const g = groups.get(l.link);
      if (!g) groups.set(l.link, { regular: l.regular, size: l.size, signature: l.signature, path: here });
      else if (g.signature !== l.signature) linkConflicts.push({ link: l.link, dirId, path: here, firstPath: g.path });
    };
    if (root.type === 'dir') {
      if (root.dir === undefined) return undefined;
      const sums = this.sumsOf(root.dir);
      if (sums === undefined) return undefined;
      perName = sums;
      // The groups: every distinct fragment of this tree once, at the first path that reaches it.
      const seen = new Set<string>([root.dir]);
      const stack: { id: string; path: string }[] = [{ id: root.dir, path: '/' }];
      while (stack.length > 0) {
        const { id, path } = stack.pop()!;
        const s = this.summaries.get(id)!;
        for (const l of s.linked) take(id, path, l);
        for (const d of s.subdirs) {
          if (seen.has(d.id)) continue;
          seen.add(d.id);
          stack.push({ id: d.id, path: childPath(path, d.name) });
        }
      }
    } else if (root.type === 'file') {
      perName = { files: 1, dirs: 0, bytes: root.size };
    }
    // Per inode: the other names of each group off, each group's size once.
    let linkedNames = 0;
    let linkedBytes = 0;
    let groupFiles = 0;
    let groupBytes = 0;
    if (root.type === 'dir') {
      const names = this.linkedNamesOf(root.dir!);
      linkedNames = names.files;
      linkedBytes = names.bytes;
      for (const g of groups.values()) {
        if (!g.regular) continue;
        groupFiles++;
        groupBytes += g.size;
      }
    }
    return {
      perName: { files: perName.files, dirs: perName.dirs, logicalBytes: perName.bytes },
      perInode: {
        files: perName.files - linkedNames + groupFiles,
        dirs: perName.dirs + (root.type === 'dir' ? 1 : 0),
        logicalBytes: perName.bytes - linkedBytes + groupBytes,
      },
      linkConflicts,
    };
  }

  /** Regular files and bytes under a dir fragment, every name counted; undefined if incomplete or cyclic. */
  private sumsOf(rootId: string): Sums | undefined {
    return this.fold(rootId, this.sums, (s) => ({ files: s.files, dirs: s.subdirs.length, bytes: s.bytes }));
  }

  /** Names of hard-linked regular files under a dir fragment and their bytes (per name). */
  private linkedNamesOf(rootId: string): Sums {
    const memo = new Map<string, Sums>();
    const own = (s: DirSummary): Sums => {
      let files = 0;
      let bytes = 0;
      for (const l of s.linked) {
        if (!l.regular) continue;
        files++;
        bytes += l.size;
      }
      return { files, dirs: 0, bytes };
    };
    return this.fold(rootId, memo, own) ?? { files: 0, dirs: 0, bytes: 0 };
  }

  /**
   * Sums `own` over every path of the DAG under `rootId`, post-order with an explicit stack (a
   * hostile tree may be deeper than the JS stack), each fragment once thanks to `memo`.
   */
  private fold(rootId: string, memo: Map<string, Sums>, own: (s: DirSummary) => Sums): Sums | undefined {
    const onPath = new Set<string>();
    const stack: { id: string; expanded: boolean }[] = [{ id: rootId, expanded: false }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (memo.has(top.id)) {
        stack.pop();
        continue;
      }
      const s = this.summaries.get(top.id);
      if (s === undefined) return undefined;
      if (!top.expanded) {
        if (onPath.has(top.id)) return undefined; // a cycle: verify reports it where it walks
        onPath.add(top.id);
        top.expanded = true;
        for (const d of s.subdirs) if (!memo.has(d.id)) stack.push({ id: d.id, expanded: false });
        continue;
      }
      const sum = own(s);
      for (const d of s.subdirs) {
        const c = memo.get(d.id);
        if (c === undefined) return undefined;
        sum.files += c.files;
        sum.dirs += c.dirs;
        sum.bytes += c.bytes;
      }
      memo.set(top.id, sum);
      onPath.delete(top.id);
      stack.pop();
    }
    return memo.get(rootId);
  }
}

/**
 * Why the declared totals do not describe the tree, or undefined when they match one of the two
 * ways fragfs 1 writers count (FORMAT.md 2.3.4).
 */
export function totalsProblem(snapshotKey: string, declared: TreeTotals, c: TreeCount): string | undefined {
  const same = (a: TreeTotals, b: TreeTotals): boolean => a.files === b.files && a.dirs === b.dirs && a.logicalBytes === b.logicalBytes;
  if (same(declared, c.perName) || same(declared, c.perInode)) return undefined;
  const least: TreeTotals = {
    files: Math.min(c.perName.files, c.perInode.files),
    dirs: Math.min(c.perName.dirs, c.perInode.dirs),
    logicalBytes: Math.min(c.perName.logicalBytes, c.perInode.logicalBytes),
  };
  const more = least.files > declared.files || least.dirs > declared.dirs || least.logicalBytes > declared.logicalBytes;
  const fmt = (x: TreeTotals): string => `${x.files} files, ${x.dirs} folders and ${x.logicalBytes} bytes`;
  const holds = same(c.perName, c.perInode) ? fmt(c.perName) : `${fmt(c.perName)} (${fmt(c.perInode)} counting each hard-linked file once and the top folder)`;
  return `snapshot ${snapshotKey}: ${more ? 'the tree holds more entries than its snapshot declares' : 'the tree does not hold what its snapshot declares'}: it declares ${fmt(declared)}, the tree holds ${holds}`;
}
