// The contract between the FUSE adapter (src/fuse) and the in-process filesystem (src/vfs): POSIX
// operations addressed by inode number and name bytes, as the kernel sends them (JuiceFS's VFS and
// go-fuse's node API work the same way), failures as FragfsError whose code maps to the errno a
// program expects. The adapter only translates; everything a test can check without a kernel lives
// behind this interface.

/** What `stat` shows. `mode` includes the file type bits (S_IFREG, S_IFDIR, S_IFLNK, ...). */
export interface Attr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks actually allocated (holes excluded). */
  blocks: number;
  /** Times in ns since the epoch (negative before 1970). */
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  rdev: number;
}

/** One directory entry as readdir(3) shows it: `mode` carries only the type bits (d_type). */
export interface DirEntry {
  name: Buffer;
  ino: number;
  mode: number;
  /** With `readdir(..., plus = true)`: the entry's attributes, as lookup would answer them. */
  attr?: Attr;
}

/** What one setattr changes; an absent field stays as it is. Times in ns since the epoch. */
export interface AttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeNs?: bigint;
  mtimeNs?: bigint;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/** Caller identity for operations that create inodes. */
export interface Caller {
  uid: number;
  gid: number;
}

/** rename(2) flags (renameat2): fail if the target exists; swap the two names. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
/** fallocate(2) modes fragfs supports. */
export const FALLOC_FL_KEEP_SIZE = 1;
export const FALLOC_FL_PUNCH_HOLE = 2;

/** The root directory's inode number, on every Vfs and in the kernel. */
export const ROOT_INO = 1;

/**
 * Contract:
 * - Inodes are numbers the Vfs hands out (lookup, create, mkdir, mknod, symlink, link, readdir);
 *   ROOT_INO is the root. A number MUST keep naming the same inode for as long as the mount lives
 *   (the kernel caches them): the live tree never reuses one, a snapshot computes it from where the
 *   entry lies. An inode that is gone (unlinked and closed) answers NOT_FOUND (ENOENT).
 * - Names are one path component as bytes, exactly as the kernel sent them: any bytes but '/' and
 *   NUL, 1..255 of them (longer MUST fail with NAME_TOO_LONG), not '.' or '..'.
 * - Every failure MUST be a FragfsError; its code gives the errno (src/errors.ts). Anything else is a bug.
 * - A read-only vfs (snapshot mounts, --read-only) MUST fail every mutation with READ_ONLY (EROFS).
 * - `fsync` MUST NOT resolve before the file's data and metadata are durable in the store and the
 *   live state; `release` MUST have stored the file's buffered data. `flush` (every close) MAY leave
 *   it buffered: the kernel does not wait for release. Buffered data MUST be visible to every handle
 *   of the file until it is stored.
 * - No byte of a block that failed its checks is ever returned by `read`: it fails with CORRUPT (EIO).
 * - File handles are small non-negative integers, unique among open handles. An operation given a
 *   handle works on the handle's inode even when that inode has no name left (fstat, fchmod, fsync
 *   after unlink or after another file was renamed over it).
 * - The kernel counts references to inodes: every `lookup`, `create`, `mkdir`, `mknod`, `symlink` and
 *   `link` answered, and every entry `listed` after a READDIRPLUS, is one. `forget(ino, nlookup)`
 *   gives back `nlookup` of them; at zero the kernel holds nothing of `ino` (nor of anything below
 *   it, for a directory: a name holds its parent), and a Vfs MAY drop what it keeps for it. It MUST
 *   NOT fail.
 */
export interface Vfs {
  readonly readOnly: boolean;
  /**
   * False: read-only, yet what it shows MAY change without a request through this mount (the list
   * of snapshots of `mount --all`), so the kernel MUST NOT cache it for long. Absent: a read-only
   * vfs never changes.
   */
  readonly frozen?: boolean;
  /**
   * True when the vfs checks POSIX permissions itself (EACCES/EPERM), so the kernel need not
   * (fragfs then mounts without default_permissions). False: the mount MUST use the kernel's
   * default_permissions.
   */
  readonly checksPermissions: boolean;

  lookup(parent: number, name: Buffer): Promise<Attr>;
  forget(ino: number, nlookup: number): void;
  /** READDIRPLUS sent these entries to the kernel: one reference each (never '.' and '..'). */
  listed?(inos: readonly number[]): void;
  /** With `fh`, the inode is the open handle's (it may have no name left). */
  getattr(ino: number, fh?: number): Promise<Attr>;
  /**
   * chmod, chown, truncate and utimens as one request (what a FUSE setattr carries), applied in that
   * order with their permission checks, answered with the attributes after all of them. No change:
   * just the attributes.
   */
  setattr(ino: number, fh: number | undefined, changes: AttrChanges): Promise<Attr>;
  readlink(ino: number): Promise<Buffer>;
  access(ino: number, mask: number): Promise<void>;
  statfs(): Promise<StatFs>;

  mkdir(parent: number, name: Buffer, mode: number, caller: Caller): Promise<Attr>;
  mknod(parent: number, name: Buffer, mode: number, rdev: number, caller: Caller): Promise<Attr>;
  symlink(parent: number, name: Buffer, target: Buffer, caller: Caller): Promise<Attr>;
  /** A new name for inode `ino` (not a directory). */
  link(ino: number, newParent: number, newName: Buffer): Promise<Attr>;
  unlink(parent: number, name: Buffer): Promise<void>;
  rmdir(parent: number, name: Buffer): Promise<void>;
  /** rename(2)/renameat2(2): replaces an existing target unless RENAME_NOREPLACE; RENAME_EXCHANGE swaps. */
  rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): Promise<void>;

  /** Opens a file or directory for I/O; resolves to a handle. */
  open(ino: number, flags: number): Promise<number>;
  /** Creates and opens a regular file; EXISTS with O_EXCL when the name is taken (else opens it). */
  create(parent: number, name: Buffer, mode: number, flags: number, caller: Caller): Promise<{ attr: Attr; fh: number }>;
  read(ino: number, fh: number, buf: Buffer, length: number, position: number): Promise<number>;
  /**
   * The whole stored block of open file `ino` around `position`, when its plaintext is in memory and
   * no byte of it is buffered or being stored: exactly what reads of that range answer now. Clipped
   * to the file's size; `offset` is where `data` starts in the file. MAY answer undefined whenever it
   * cannot say without I/O. Callers use it to fill the kernel's page cache past what a small read
   * asked for (kernel-adapter.ts).
   */
  cleanBlockAt?(ino: number, fh: number, position: number): { offset: number; data: Uint8Array } | undefined;
  /**
   * The vfs MUST NOT read `data` after the returned promise settles (it copies what it keeps): the
   * FUSE layer frees a payload as soon as its write is answered.
   * killSuidGid: the writer lacks CAP_FSETID (the kernel's FUSE_WRITE_KILL_SUIDGID, sent on writes that
   * bypass its page cache); the write MUST then clear setuid, and setgid where group execute is set.
   */
  write(ino: number, fh: number, data: Buffer, length: number, position: number, killSuidGid?: boolean): Promise<number>;
  flush(ino: number, fh: number): Promise<void>;
  fsync(ino: number, fh: number, dataOnly: boolean): Promise<void>;
  release(ino: number, fh: number): Promise<void>;
  /** fallocate(2): mode 0 (extend), FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | KEEP_SIZE; others NOT_SUPPORTED. */
  fallocate(ino: number, fh: number, mode: number, offset: number, length: number): Promise<void>;

  /**
   * The entries of directory `ino` (without '.' and '..'), in a stable order. With `plus`, each
   * carries its attributes; those the kernel receives are then given to `listed`.
   */
  readdir(ino: number, plus: boolean): Promise<DirEntry[]>;

  setxattr(ino: number, name: Buffer, value: Buffer, flags: number): Promise<void>;
  getxattr(ino: number, name: Buffer): Promise<Buffer>;
  listxattr(ino: number): Promise<Buffer[]>;
  removexattr(ino: number, name: Buffer): Promise<void>;

  /** Stores every buffered block and commits the live state (what `umount` and signals call). */
  flushAll(): Promise<void>;
  /** Freezes the whole tree at this instant; resolves to the snapshot's meta key. */
  snapshot(name?: string): Promise<string>;
  close(): Promise<void>;
}
