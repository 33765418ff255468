// The live state's inode record (what LMDB keeps per inode) and its conversion to what `stat` shows.

import type { Attr } from './vfs-api.js';
import type { EntryType } from '../fragment/tree-format.js';

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export { ROOT_INO } from './vfs-api.js';

/**
 * One inode. `mode` carries the type bits. Times are nanoseconds since the epoch (negative before
 * 1970), kept exactly as utimensat(2) set them: a double of ms keeps only about 0.24 us today. `parents` lists the directory of every name of this inode (a dir has
 * exactly one, the root none; a hard-linked file one per name, repeats allowed): snapshot cache
 * invalidation walks it upwards.
 */
export interface InodeRecord {
  mode: number;
  uid: number;
  gid: number;
  /** Logical size: files the content length including holes, symlinks the target length. */
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  nlink: number;
  /** Plaintext bytes held in extents (for `blocks` in stat). */
  alloc: number;
  parents: number[];
  /** Symlink target, bytes. */
  target?: Buffer;
  rdev?: number;
  /** How many extended attributes the inode has (a snapshot reads them only when there are some). */
  xattrs?: number;
}

export function isDir(rec: InodeRecord): boolean {
  return (rec.mode & S_IFMT) === S_IFDIR;
}

export function isReg(rec: InodeRecord): boolean {
  return (rec.mode & S_IFMT) === S_IFREG;
}

export function isSymlink(rec: InodeRecord): boolean {
  return (rec.mode & S_IFMT) === S_IFLNK;
}

export function toAttr(ino: number, rec: InodeRecord): Attr {
  return {
    ino,
    mode: rec.mode,
    nlink: rec.nlink,
    uid: rec.uid,
    gid: rec.gid,
    size: rec.size,
    blocks: Math.ceil(rec.alloc / 512),
    atimeNs: rec.atimeNs,
    mtimeNs: rec.mtimeNs,
    ctimeNs: rec.ctimeNs,
    rdev: rec.rdev ?? 0,
  };
}

const TYPE_BY_FMT: Record<number, EntryType> = {
  [S_IFREG]: 'file',
  [S_IFDIR]: 'dir',
  [S_IFLNK]: 'symlink',
  [S_IFIFO]: 'fifo',
  [S_IFCHR]: 'chardev',
  [S_IFBLK]: 'blockdev',
  [S_IFSOCK]: 'socket',
};

export function entryTypeOf(mode: number): EntryType {
  const t = TYPE_BY_FMT[mode & S_IFMT];
  return t ?? 'file';
}

export function fmtOfEntryType(t: EntryType): number {
  for (const [fmt, name] of Object.entries(TYPE_BY_FMT)) if (name === t) return Number(fmt);
  return S_IFREG;
}

/** ms since the epoch (a live state record of layout 1, a ref's time) as ns; not a number: 0. */
export function msToNs(ms: number): bigint {
  if (!Number.isFinite(ms)) return 0n;
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
}

let lastMs = 0;
let lastNs = 0n;

/**
 * The time now in ns since the epoch, to the millisecond (Date.now's resolution); the same BigInt
 * within one millisecond, since every write asks.
 */
export function nowNs(): bigint {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastNs = BigInt(ms) * 1_000_000n;
  }
  return lastNs;
}
