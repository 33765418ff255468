// The one place that loads fragfs's low-level FUSE addon (native/fragfs-fuse.c, built by
// build-lowlevel.ts) and types it: the request codes it dispatches, the layouts of the attribute and
// statfs arrays it reads, and its mount/release/reply calls. The numbers here MUST match the C enums.
// FRAGFS_LOWLEVEL_BINDING=/path/to/fragfs_fuse.node loads the addon from there (see build-lowlevel.ts).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FragfsError } from '../errors.js';
import { LOWLEVEL_BINDING_FILE } from './build-lowlevel.js';

/** Request codes: dispatch(op, req, ...args). EXIT and FORGET come with req 0 and take no reply. */
export const Op = {
  EXIT: 0,
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  MKNOD: 6,
  MKDIR: 7,
  UNLINK: 8,
  RMDIR: 9,
  SYMLINK: 10,
  RENAME: 11,
  LINK: 12,
  OPEN: 13,
  READ: 14,
  WRITE: 15,
  FLUSH: 16,
  RELEASE: 17,
  FSYNC: 18,
  OPENDIR: 19,
  READDIR: 20,
  RELEASEDIR: 21,
  FSYNCDIR: 22,
  STATFS: 23,
  SETXATTR: 24,
  GETXATTR: 25,
  LISTXATTR: 26,
  REMOVEXATTR: 27,
  ACCESS: 28,
  CREATE: 29,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/** Index of each field in the attribute array (Float64Array of Attr.LENGTH); times in ms since the epoch. */
export const Attr = {
  INO: 0,
  MODE: 1,
  NLINK: 2,
  UID: 3,
  GID: 4,
  RDEV: 5,
  SIZE: 6,
  BLOCKS: 7,
  ATIME_MS: 8,
  MTIME_MS: 9,
  CTIME_MS: 10,
  BLKSIZE: 11,
  LENGTH: 12,
} as const;

/** Index of each field in the statfs array (Float64Array of Statfs.LENGTH). */
export const Statfs = {
  BSIZE: 0,
  FRSIZE: 1,
  BLOCKS: 2,
  BFREE: 3,
  BAVAIL: 4,
  FILES: 5,
  FFREE: 6,
  FAVAIL: 7,
  FSID: 8,
  FLAG: 9,
  NAMEMAX: 10,
  LENGTH: 11,
} as const;

/** SETATTR's `valid` bits (FUSE_SET_ATTR_*), as the kernel sent them. */
export const SetAttr = {
  MODE: 1,
  UID: 2,
  GID: 4,
  SIZE: 8,
  ATIME: 16,
  MTIME: 32,
  ATIME_NOW: 128,
  MTIME_NOW: 256,
} as const;

/** openFlags of replyOpen and replyCreate. */
export const OpenReply = {
  DIRECT_IO: 1,
  KEEP_CACHE: 2,
  NONSEEKABLE: 4,
} as const;

/**
 * dispatch(op, req, ...args): called on the JS thread once per request, in the kernel's order. Inodes,
 * fh (-1 when the kernel gave none), sizes, offsets, caller uid/gid and times (ms) are numbers; names
 * are strings; WRITE's data and SETXATTR's value are Buffers JS may keep. Arguments after req:
 *   LOOKUP parent name | FORGET ino nlookup | GETATTR ino fh | SETATTR ino fh valid mode uid gid size
 *   atimeMs mtimeMs | READLINK ino | MKNOD parent name mode rdev uid gid | MKDIR parent name mode uid gid |
 *   UNLINK, RMDIR parent name | SYMLINK parent name target uid gid | RENAME parent name newparent newname |
 *   LINK ino newparent newname | OPEN, OPENDIR ino flags | READ, READDIR ino fh size offset |
 *   WRITE ino fh data offset | FLUSH, RELEASEDIR ino fh | RELEASE ino fh flags | FSYNC, FSYNCDIR ino fh
 *   datasync | STATFS ino | SETXATTR ino name value flags | GETXATTR ino name size | LISTXATTR ino size |
 *   REMOVEXATTR ino name | ACCESS ino mask | CREATE parent name mode flags uid gid | EXIT (none).
 * A throw is re-raised as an uncaught exception; the request still needs its reply.
 */
export type Dispatch = (
  op: number,
  req: number,
  a?: unknown,
  b?: unknown,
  c?: unknown,
  d?: unknown,
  e?: unknown,
  f?: unknown,
  g?: unknown,
  h?: unknown,
  i?: unknown,
) => void;

/**
 * The addon. Every request except EXIT and FORGET takes exactly one reply, from the JS thread; each
 * reply call copies what it is given to the kernel before it returns, so arrays and buffers may be
 * reused. A bad argument throws a TypeError and replies nothing.
 */
export interface LowLevelBinding {
  /**
   * Mounts (fuse_mount + fuse_lowlevel_new) and starts the session thread. `options` is the joined -o
   * string. Throws when the mount fails (libfuse prints the reason on stderr).
   */
  mount(mountpoint: string, options: string, dispatch: Dispatch): object;
  /**
   * After EXIT (or at process end: a session still mounted is cancelled): joins the session thread,
   * answers EIO to requests JS was never given and closes the wake-up handle, so Node's loop may end.
   * Requests JS holds may still be answered afterwards (a RELEASE often is: the kernel lets go without
   * waiting for it); libfuse's session is destroyed with the last answer. Idempotent.
   */
  release(handle: object): void;
  /** errno >= 0; 0 is success for requests that return no data. */
  replyErr(req: number, errno: number): void;
  replyNone(req: number): void;
  /** attr[Attr.INO] === 0: a negative entry the kernel may keep for entryTimeoutS. */
  replyEntry(req: number, attr: Float64Array, generation: number, entryTimeoutS: number, attrTimeoutS: number): void;
  replyCreate(
    req: number,
    attr: Float64Array,
    generation: number,
    entryTimeoutS: number,
    attrTimeoutS: number,
    fh: number,
    openFlags: number,
  ): void;
  replyAttr(req: number, attr: Float64Array, attrTimeoutS: number): void;
  replyReadlink(req: number, target: string): void;
  /** openFlags: OpenReply bits. */
  replyOpen(req: number, fh: number, openFlags: number): void;
  /** The first `length` bytes of data (READ, GETXATTR, LISTXATTR); null with length 0. */
  replyBuf(req: number, data: Buffer | null, length: number): void;
  replyWrite(req: number, count: number): void;
  replyStatfs(req: number, st: Float64Array): void;
  replyXattrSize(req: number, size: number): void;
  /**
   * Packs names[k] (st_ino inos[k], type bits of modes[k], d_off firstOffset + k + 1) into at most
   * `size` bytes, replies (nothing packed = end of directory) and returns how many entries it packed.
   */
  replyDir(req: number, size: number, firstOffset: number, names: string[], inos: number[], modes: number[]): number;
}

/** The reply half of the addon: what the adapter answers requests with (a test may record them instead). */
export type LowLevelReplies = Omit<LowLevelBinding, 'mount' | 'release'>;

/** True when the addon has been built (build-lowlevel.ts) where loadLowLevelBinding() looks. */
export function lowLevelBindingBuilt(): boolean {
  return existsSync(LOWLEVEL_BINDING_FILE);
}

let loaded: LowLevelBinding | undefined;

export function loadLowLevelBinding(): LowLevelBinding {
  if (loaded) return loaded;
  if (!lowLevelBindingBuilt()) {
    throw new FragfsError(
      'NOT_FOUND',
      `the low-level FUSE addon is not built (${LOWLEVEL_BINDING_FILE}): run node dist/src/fuse/build-lowlevel.js`,
      { path: LOWLEVEL_BINDING_FILE },
    );
  }
  loaded = createRequire(import.meta.url)(LOWLEVEL_BINDING_FILE) as LowLevelBinding;
  return loaded;
}
