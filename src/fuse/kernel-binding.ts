// The one module that loads fragfs's FUSE kernel-protocol addon (native/fuse-kernel.c: /dev/fuse
// spoken directly, no libfuse) and types it: the op codes it dispatches and their arguments, the
// layouts of the attribute and statfs arrays, mount options, what INIT negotiated, and the reply and
// notification calls. The numbers here MUST match the C side (a test compares `Op` with opcodes()).
// Where the addon lives and how it is built: build-kernel.ts.

import { createRequire } from 'node:module';
import { locateKernelBinding } from './build-kernel.js';

export { buildKernelBinding, DEFAULT_KERNEL_BINDING_FILE, KERNEL_C_SOURCE_CANDIDATES } from './build-kernel.js';

/**
 * What dispatch() receives as `op`: the kernel's own opcode numbers (enum fuse_opcode in
 * <linux/fuse.h>), plus EXIT (0, not a kernel opcode: the session ended). BATCH_FORGET arrives as one
 * FORGET per inode. Opcodes not listed here never reach JS (the addon answers them itself).
 */
export const Op = {
  EXIT: 0,
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
} as const;
export type OpName = keyof typeof Op;
export type OpCode = (typeof Op)[OpName];

/**
 * Index of each field in an attribute array (Float64Array of Attr.LENGTH; replyDirPlus takes n of them
 * back to back). Times are whole seconds since the epoch (negative before 1970) and nanoseconds
 * (0..999,999,999), as the kernel's timespecs; a double of ms would keep only about 0.24 us. RDEV is the kernel's encoding (as stat's st_rdev on Linux, as MKNOD's rdev).
 */
export const Attr = {
  INO: 0,
  MODE: 1,
  NLINK: 2,
  UID: 3,
  GID: 4,
  RDEV: 5,
  SIZE: 6,
  BLOCKS: 7,
  ATIME_SEC: 8,
  ATIME_NSEC: 9,
  MTIME_SEC: 10,
  MTIME_NSEC: 11,
  CTIME_SEC: 12,
  CTIME_NSEC: 13,
  BLKSIZE: 14,
  LENGTH: 15,
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
  NAMEMAX: 7,
  LENGTH: 8,
} as const;

/** SETATTR's `valid` bits (FATTR_* of <linux/fuse.h>), passed as the kernel sent them. */
export const SetattrValid = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  /** `fh` is the handle the change is made through (ftruncate); otherwise fh is -1. */
  FH: 1 << 6,
  /** Set with ATIME/MTIME: "now" (the fs's clock); the times given are then meaningless. */
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** openFlags of replyOpen and replyCreate (sent as FOPEN_*). */
export const OpenReply = {
  DIRECT_IO: 1,
  KEEP_CACHE: 2,
  NONSEEKABLE: 4,
  /** OPENDIR only: the kernel may cache the directory's entries across opens. */
  CACHE_DIR: 8,
} as const;

/** WRITE's writeFlags (FUSE_WRITE_*). */
export const WriteFlag = {
  /** A write-back of the page cache (writebackCache), not a write(2) of this caller: uid/gid/pid are not the writer's. */
  CACHE: 1 << 0,
  LOCKOWNER: 1 << 1,
  KILL_SUIDGID: 1 << 2,
} as const;

/** INIT flags the addon may ask for (FUSE_* of <linux/fuse.h>); KernelInfo.flags holds those the kernel granted. */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
} as const;

/** mount() options; every field is optional. */
export interface KernelMountOptions {
  /** Source column of /proc/mounts; commas, spaces, tabs, newlines and backslashes become '_'. Default 'fragfs'. */
  fsname?: string;
  /** The type is "fuse.<subtype>"; a-z, 0-9, '.', '_', '-'. Default 'fragfs'. */
  subtype?: string;
  /** Mounted read-only (MS_RDONLY / fusermount "ro"). Default false. */
  readOnly?: boolean;
  /** The kernel checks permissions from the mode bits (default_permissions). Default false: ACCESS reaches JS. */
  defaultPermissions?: boolean;
  /** Other users may use the mount (allow_other; without root, /etc/fuse.conf must say user_allow_other). Default false. */
  allowOther?: boolean;
  /** Largest WRITE request, 4096..32 MiB. Default 1 MiB. The kernel also caps requests at fs.fuse.max_pages_limit pages (256 = 1 MiB by default). */
  maxWriteBytes?: number;
  /** Largest READ request (the max_read mount option), 4096..32 MiB. Default maxWriteBytes. */
  maxReadBytes?: number;
  /** Read-ahead asked for in INIT: the kernel takes min(its own offer, this). Default 1 MiB. */
  maxReadaheadBytes?: number;
  /** Background requests (read-ahead, write-back) the kernel keeps in flight, 1..65535. Default 64; congestion at 3/4. */
  maxBackground?: number;
  /** Ask for READDIRPLUS (DO_READDIRPLUS and READDIRPLUS_AUTO). Default false. */
  readdirplus?: boolean;
  /** Ask for the kernel's write-back cache (WRITEBACK_CACHE). Default false. */
  writebackCache?: boolean;
  /**
   * Longest name, 1..1024 bytes. The kernel itself passes names of up to 1024 bytes; requests that carry
   * a longer name than this (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME*) are
   * answered ENAMETOOLONG by the addon and never reach JS. Default 255.
   */
  maxNameBytes?: number;
  /** fusermount to run when not root (an absolute path). Default: fusermount3, else fusermount, on PATH. */
  fusermount?: string;
}

/** What INIT negotiated, and the session's state (info()). */
export interface KernelInfo {
  /** Protocol version in use: 7.minor, minor = min(kernel's, the header's the addon was built with). */
  major: number;
  minor: number;
  /** InitFlag bits granted: asked for and offered by the kernel. */
  flags: number;
  /** max_write sent in INIT (bytes). */
  maxWrite: number;
  /** max_read mount option (bytes). */
  maxRead: number;
  /** max_pages sent in INIT (0 when the kernel lacks MAX_PAGES); the kernel caps it at fs.fuse.max_pages_limit. */
  maxPages: number;
  maxReadahead: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
  kernelMinor: number;
  kernelFlags: number;
  kernelFlags2: number;
  kernelMaxReadahead: number;
  maxNameBytes: number;
  /** Requests handed to JS and not answered yet. */
  outstanding: number;
  /** The kernel side is gone (unmounted, or the connection aborted); EXIT is queued or delivered. */
  exited: boolean;
  /** Non-zero when the reader stopped on an unexpected read error (errno), not on unmount. */
  readErrno: number;
}

/**
 * dispatch(op, unique, nodeid, uid, gid, pid, ...args), called on the JS thread once per request, in
 * the kernel's order, in batches (promise jobs and nextTicks run after each batch).
 *
 * `unique` is the addon's id for the request: unique in the process, never reused, not the kernel's
 * number. It is 0 for FORGET, INTERRUPT and EXIT, which take no reply; every other request MUST be
 * answered exactly once, from the JS thread, by one of the reply calls (in any order, at any later
 * time). `nodeid` is the inode the kernel addresses (1 is the root; FORGET: the inode forgotten), and
 * uid/gid/pid are the caller's (0 for FORGET, INTERRUPT, EXIT; for write-back WRITEs, see WriteFlag.CACHE).
 *
 * Numbers are JS numbers: 64-bit values above 2^53 arrive as 2^53. fh is the number replyOpen or
 * replyCreate gave, or -1 when the kernel sent none. Times are ms since the epoch. Names, symlink
 * targets, xattr names and values are Buffers holding the bytes exactly as the kernel sent them (no
 * NUL, no decoding: two names differing in one byte are two names). WRITE's data is a Buffer JS owns
 * and MAY keep (one of at least half of maxWriteBytes is the very memory the kernel wrote it into, any
 * other a copy of its own size). Arguments after pid:
 *
 *   LOOKUP name | FORGET nlookup | GETATTR fh | SETATTR valid fh mode uid gid size atimeSec atimeNsec
 *   mtimeSec mtimeNsec
 *   (valid: SetattrValid bits; fields whose bit is clear are meaningless) | READLINK | SYMLINK name
 *   target | MKNOD name mode rdev umask | MKDIR name mode umask | UNLINK name | RMDIR name |
 *   RENAME name newParent newName 0 | RENAME2 name newParent newName flags (RENAME_NOREPLACE=1,
 *   RENAME_EXCHANGE=2, RENAME_WHITEOUT=4) | LINK oldNodeid newName (nodeid: the new parent) | OPEN
 *   flags | READ fh offset size | WRITE fh offset data writeFlags | STATFS | RELEASE fh flags | FSYNC fh
 *   datasync (0/1) | SETXATTR name value flags | GETXATTR name size | LISTXATTR size | REMOVEXATTR name
 *   | FLUSH fh | OPENDIR flags | READDIR fh offset size | READDIRPLUS fh offset size | RELEASEDIR fh |
 *   FSYNCDIR fh datasync | ACCESS mask | CREATE name mode flags umask | FALLOCATE fh offset length
 *   mode | INTERRUPT interruptedUnique | EXIT.
 *
 * mode (CREATE, MKDIR, MKNOD) has the caller's umask applied already; umask is given for information.
 * OPEN's and CREATE's flags are open(2)'s; OPEN with O_TRUNC (ATOMIC_O_TRUNC is always asked for)
 * means the fs truncates the file itself: no SETATTR follows.
 * READDIR*'s offset is 0 or a cookie JS gave in `offsets`. INTERRUPT: the request `interruptedUnique`
 * (still awaiting its reply) was interrupted by a signal; JS MAY answer it early with EINTR, or answer
 * it normally; either way exactly once. EXIT: the kernel side is gone (fusermount -u, umount, an
 * aborted connection); JS MUST then call release(handle), or the process cannot exit.
 *
 * A throw from dispatch is re-raised as an uncaught exception; the request still needs its reply.
 */
export type KernelDispatch = (
  op: number,
  unique: number,
  nodeid: number,
  uid: number,
  gid: number,
  pid: number,
  a?: unknown,
  b?: unknown,
  c?: unknown,
  d?: unknown,
  e?: unknown,
  f?: unknown,
  g?: unknown,
  h?: unknown,
  i?: unknown,
  j?: unknown,
) => void;

/** What mount() returns: pass it to release(), info() and the notify calls. */
export type KernelHandle = object;

/**
 * The replies. Each MUST be called from the JS thread. Each checks, before it writes anything:
 * - `unique` MUST name a request awaiting a reply (handed to dispatch and not answered yet, in this
 *   thread's Node environment); otherwise it throws an Error (code ERR_FUSE_NOT_AWAITING, message
 *   "request N is not awaiting a reply") and writes nothing: a second reply is a bug caught, not sent.
 * - the reply MUST fit the request (replyEntry answers LOOKUP, not READ; sizes within what the kernel
 *   asked for; arrays of the right type and length); otherwise a TypeError, nothing written, and the
 *   request still awaits its reply.
 * Once the checks pass the request is answered, even if the kernel then refuses the message: ENOENT (the
 * request was interrupted and withdrawn, or the connection aborted) and ENODEV are silent; any other
 * refusal throws an Error after the fact. Every call copies what it is given before it returns, so
 * arrays and buffers may be reused at once.
 */
export interface KernelReplies {
  /**
   * errno > 0: the request failed with it (any request). errno 0: success without data, allowed only
   * for requests whose reply may be empty: UNLINK RMDIR RENAME RENAME2 SETXATTR REMOVEXATTR FLUSH
   * RELEASE RELEASEDIR FSYNC FSYNCDIR ACCESS FALLOCATE, and READ/READDIR/READDIRPLUS (end of file or
   * directory).
   */
  replyErr(unique: number, errno: number): void;
  /**
   * LOOKUP, MKNOD, MKDIR, SYMLINK, LINK. The entry's node id is attr[Attr.INO] (generation 0). Each
   * entry with a non-zero INO is one lookup reference the kernel holds until FORGET gives it back.
   * attr[Attr.INO] 0 answers LOOKUP only: a negative entry the kernel may cache for entryTimeoutS.
   */
  replyEntry(unique: number, attr: Float64Array, entryTimeoutS: number, attrTimeoutS: number): void;
  /** CREATE: the entry (one lookup reference, as replyEntry) and the open file. */
  replyCreate(unique: number, attr: Float64Array, entryTimeoutS: number, attrTimeoutS: number, fh: number, openFlags: number): void;
  /** GETATTR, SETATTR. */
  replyAttr(unique: number, attr: Float64Array, attrTimeoutS: number): void;
  /** OPEN, OPENDIR. fh: 0..2^53, given back in later requests. openFlags: OpenReply bits. */
  replyOpen(unique: number, fh: number, openFlags: number): void;
  /**
   * READ (at most `size` bytes; fewer is end of file), READLINK (the target, at most page size - 1
   * bytes), GETXATTR and LISTXATTR when the kernel asked with size > 0 (at most size bytes; too small a
   * size is JS's ERANGE). Sends the first `length` bytes of data; null with length 0 sends none.
   */
  replyBuf(unique: number, data: Uint8Array | null, length: number): void;
  /** WRITE: how many bytes were written (at most the data's length). */
  replyWrite(unique: number, count: number): void;
  /**
   * A WRITE's data is no longer needed: its memory MAY be freed at once (the Buffer is detached and
   * every view of it reads as empty) instead of at V8's next full collection. The caller MUST keep no
   * view of it that it reads later. Returns whether the memory went; MAY be absent (nothing is freed).
   */
  releasePayload?(data: Uint8Array): boolean;
  replyStatfs(unique: number, statfs: Float64Array): void;
  /** GETXATTR and LISTXATTR when the kernel asked with size 0: the size the value or list needs. */
  replyXattrSize(unique: number, size: number): void;
  /**
   * READDIR: packs entries k = 0, 1, ... while they fit in min(size, the size the kernel asked for)
   * and returns how many it packed (0: end of the directory). Entry k is names[k] (1..1024 bytes, no
   * '/' or NUL; "." and ".." are ordinary entries here), d_ino inos[k], d_type from modes[k]'s type
   * bits, and offsets[k], the cookie the kernel passes back to continue after entry k. inos, modes and
   * offsets may be arrays or Float64Arrays.
   */
  replyDir(unique: number, size: number, names: Uint8Array[], inos: ArrayLike<number>, modes: ArrayLike<number>, offsets: ArrayLike<number>): number;
  /**
   * READDIRPLUS: as replyDir, with a full entry per name: attrs holds one attribute array per name
   * (n x Attr.LENGTH); d_ino and d_type come from it. Returns how many entries it packed.
   *
   * Lookup references: every packed entry whose attr[Attr.INO] is non-zero IS a lookup reference the
   * kernel holds (exactly as if LOOKUP had answered it; FORGET gives it back), except the entries named
   * "." and "..", which the kernel never counts. Entries past the returned count were not sent and
   * count for nothing. An entry whose attr[Attr.INO] is 0 is sent with node id 0: listed, not cached,
   * not counted; its d_ino is then dInos[k] (a d_ino of 0 would hide the entry from glibc's readdir).
   */
  replyDirPlus(
    unique: number,
    size: number,
    names: Uint8Array[],
    attrs: Float64Array,
    offsets: ArrayLike<number>,
    entryTimeoutS: number,
    attrTimeoutS: number,
    dInos?: ArrayLike<number>,
  ): number;
}

export interface KernelBinding extends KernelReplies {
  /**
   * Mounts `mountpoint` (an absolute path to a directory): mount(2) as root, fusermount otherwise.
   * INIT is read and answered before mount() returns (it is queued while the mount is made), so the
   * connection is ready and info() holds what was negotiated; no request reaches dispatch before
   * mount() has returned. Blocks the JS thread for the mount (and fusermount) only, and never touches
   * the mount point otherwise. Throws an Error with a one-line reason (fusermount's own message when
   * it refused); a mount made before INIT failed is detached again.
   */
  mount(mountpoint: string, options: KernelMountOptions | undefined, dispatch: KernelDispatch): KernelHandle;
  /**
   * Ends the session on this side; idempotent. Call it after EXIT (it returns at once), or to stop
   * serving a live mount (the reader thread is woken and joined; further requests wait in the kernel
   * until the mount is unmounted or /dev/fuse closes). Requests JS never saw are answered EIO; pending
   * notify promises settle with ENOTCONN; the wake-up handle closes, so Node's loop may end.
   *
   * Requests JS still holds MAY be answered after release(): /dev/fuse stays open until the last of
   * them is answered, then closes (on a live mount that aborts the connection: programs get ENOTCONN
   * until it is unmounted). A reply after that throws "not awaiting a reply". At process exit a live
   * session is released and its fd closed, whatever is outstanding.
   */
  release(handle: KernelHandle): void;
  /** What INIT negotiated and the session's state. Throws once released. */
  info(handle: KernelHandle): KernelInfo;
  /** The addon's op table, name -> code; MUST equal `Op`. */
  opcodes(): Record<string, number>;
  /**
   * Invalidates the kernel's cached attributes of inode `ino` and, when offset >= 0, its cached data
   * from offset for length bytes (length <= 0: to the end). Resolves with the kernel's errno (0 done;
   * ENOENT: nothing cached, which is fine; ENOTCONN once released), never rejects. Sent from a thread
   * of the addon's own: the kernel may have to wait for a request JS has not answered yet, and JS MUST
   * be free to answer it.
   */
  notifyInvalInode(handle: KernelHandle, ino: number, offset: number, length: number): Promise<number>;
  /** Forgets the cached entry `name` in directory `parent` (a Buffer, 1..1024 bytes). Resolves as notifyInvalInode. */
  notifyInvalEntry(handle: KernelHandle, parent: number, name: Uint8Array): Promise<number>;
  /**
   * Copies `data` (1 byte to 4 MiB) into the kernel's page cache of inode `ino` at `offset`
   * (FUSE_NOTIFY_STORE); the bytes are copied before it returns. The kernel overwrites whatever its
   * pages hold and grows its file size to offset + length: the caller MUST know no newer bytes can be
   * there. Resolves as notifyInvalInode (ENOENT: the kernel holds no such inode).
   */
  notifyStore(handle: KernelHandle, ino: number, offset: number, data: Uint8Array): Promise<number>;
  /**
   * Hands the free pages of every malloc arena back to the system (glibc malloc_trim(0)); true when
   * some memory was released. Takes no lock of the session's and MAY be called at any time.
   */
  trimMemory(): boolean;
  /** KernelReplies.releasePayload: the addon detaches the Buffer, which frees its read buffer at once. */
  releasePayload(data: Uint8Array): boolean;
}

let loaded: KernelBinding | undefined;

/** Loads the addon from `file` (a path from locateKernelBinding or buildKernelBinding); once per process. */
export function loadKernelBinding(file: string): KernelBinding {
  loaded ??= createRequire(import.meta.url)(file) as KernelBinding;
  return loaded;
}

/**
 * The addon, built first if needed (see build-kernel.ts locateKernelBinding: FRAGFS_KERNEL_BINDING,
 * the repo's dist, or the per-user cache). Throws FragfsError NOT_SUPPORTED with one line saying what
 * to install when there is no compiler or headers to build it with.
 */
export async function ensureKernelBinding(): Promise<KernelBinding> {
  if (loaded) return loaded;
  return loadKernelBinding(await locateKernelBinding());
}

