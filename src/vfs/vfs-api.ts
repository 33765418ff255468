// The contract between the FUSE adapter (src/fuse) and the in-process filesystem (src/vfs): POSIX
// operations by path, failures as FragfsError whose code maps to the errno a program expects.
// The adapter only translates; everything a test can check without a kernel lives behind this.

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
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  rdev: number;
}

/** One directory entry as readdir(3) shows it: `mode` carries only the type bits (d_type). */
export interface DirEntry {
  name: string;
  ino: number;
  mode: number;
}

/** What one setattr changes; an absent field stays as it is. Times in ms since the epoch. */
export interface AttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
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

/** Caller identity for operations that create inodes or check permissions. */
export interface Caller {
  uid: number;
  gid: number;
}

/**
 * Contract:
 * - Paths are absolute inside the mount ('/' is the root), already split by the kernel; names are at
 *   most 255 bytes (longer MUST fail with NAME_TOO_LONG).
 * - Every failure MUST be a FragfsError; its code gives the errno (src/errors.ts). Anything else is a bug.
 * - A read-only vfs (snapshot mounts, --read-only) MUST fail every mutation with READ_ONLY (EROFS).
 * - `fsync`/`fdatasync` MUST NOT resolve before the file's data and metadata are durable in the store
 *   and the live state; `release` MUST have stored the file's buffered data. `flush` (every close)
 *   MAY leave it buffered: the kernel does not wait for release, so stores of many small files overlap.
 *   Buffered data MUST be visible to every handle of the file until it is stored.
 * - No byte of a block that failed its checks is ever returned by `read`: it fails with CORRUPT (EIO).
 * - File handles are small non-negative integers, unique among open handles.
 */
export interface Vfs {
  readonly readOnly: boolean;
  /**
   * True when the vfs checks POSIX permissions itself (EACCES/EPERM), so the kernel need not
   * (fragfs then mounts without default_permissions, which saves a getattr per directory of every
   * path the kernel resolves). False: the mount MUST use the kernel's default_permissions.
   */
  readonly checksPermissions: boolean;

  getattr(path: string): Promise<Attr>;
  fgetattr(path: string, fh: number): Promise<Attr>;
  readdir(path: string): Promise<string[]>;
  /** readdir with each entry's inode number and type (what getattr of the entry would say), '.' and '..' excluded. */
  readdirEntries(path: string): Promise<DirEntry[]>;
  access(path: string, mode: number): Promise<void>;
  statfs(path: string): Promise<StatFs>;

  mkdir(path: string, mode: number, caller: Caller): Promise<void>;
  rmdir(path: string): Promise<void>;
  mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<void>;
  create(path: string, mode: number, flags: number, caller: Caller): Promise<number>;
  open(path: string, flags: number): Promise<number>;
  read(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number>;
  write(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number>;
  truncate(path: string, size: number): Promise<void>;
  ftruncate(path: string, fh: number, size: number): Promise<void>;
  flush(path: string, fh: number): Promise<void>;
  fsync(path: string, fh: number, dataOnly: boolean): Promise<void>;
  release(path: string, fh: number): Promise<void>;

  unlink(path: string): Promise<void>;
  /** rename(2) semantics: replaces an existing target (empty dir over empty dir, file over file). */
  rename(from: string, to: string): Promise<void>;
  symlink(target: string, path: string, caller: Caller): Promise<void>;
  readlink(path: string): Promise<string>;
  link(existing: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  utimens(path: string, atimeMs: number, mtimeMs: number): Promise<void>;
  /**
   * chmod, chown, truncate and utimens as one request (what a FUSE setattr carries), applied in that
   * order with their permission checks, answered with the attributes after all of them. With `fh`
   * the inode is the open handle's (it may have no name left). No change: just the attributes.
   */
  setattr(path: string, fh: number | undefined, changes: AttrChanges): Promise<Attr>;

  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void>;
  getxattr(path: string, name: string): Promise<Buffer>;
  listxattr(path: string): Promise<string[]>;
  removexattr(path: string, name: string): Promise<void>;

  /** Stores every buffered block and commits the live state (what `umount` and signals call). */
  flushAll(): Promise<void>;
  /** Freezes the whole tree at this instant; resolves to the snapshot's meta key. */
  snapshot(name?: string): Promise<string>;
  close(): Promise<void>;
}
