// Translates kernel requests (fuse-native's op table, as TunedFuse calls it) into Vfs calls and their
// results back: a FragfsError becomes -errno, anything else is a bug (its stack logged once) and EIO.
// No filesystem logic lives here; it only converts argument and result shapes.

import { constants as osConstants } from 'node:os';
import { FragfsError } from '../errors.js';
import type { Attr, Caller, StatFs, Vfs } from '../vfs/vfs-api.js';
import type { CallerIds, KernelOps } from './fuse-native.js';

const { EIO, EOPNOTSUPP, ENODATA } = osConstants.errno;
/**
 * xattrs fragfs refuses (ENOTSUP on set, ENODATA on get), as a filesystem without the feature does.
 * POSIX ACLs: with libfuse 2 the kernel does not map them onto the mode, so storing them would let
 * `cp -a` believe an ACL set the permissions and skip its chmod; tools fall back to chmod.
 * security.capability: FUSE mounts are nosuid, so capabilities never apply; the kernel asks for it
 * before every write, and the patched addon answers that without a round trip to JS.
 */
export const UNSUPPORTED_XATTRS: ReadonlySet<string> = new Set(['system.posix_acl_access', 'system.posix_acl_default', 'security.capability']);
const { O_CREAT, O_RDWR } = osConstants as unknown as Record<string, number>;
const UINT32_MAX = 0xffffffff;
/** st_blksize: the preferred I/O size cp, dd and stdio read; one FUSE write request. */
export const PREFERRED_IO_BYTES = 128 * 1024;

export interface AdapterOptions {
  /** Owner of new inodes when the addon does not report the caller (stock fuse-native). */
  defaultCaller: Caller;
  /** Where bug stacks go (stderr by default). */
  log?: (line: string) => void;
}

/** fuse-native's stat shape: times in ms since the epoch. */
export function toFuseStat(a: Attr): Record<string, number> {
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    dev: 0,
    nlink: a.nlink,
    ino: a.ino,
    rdev: a.rdev,
    blksize: PREFERRED_IO_BYTES,
    blocks: a.blocks,
    atime: a.atimeMs,
    mtime: a.mtimeMs,
    ctime: a.ctimeMs,
  };
}

/** statvfs fields are 32-bit in fuse-native's transfer array: clamp rather than wrap. */
export function toFuseStatfs(s: StatFs): Record<string, number> {
  const c = (n: number) => Math.max(0, Math.min(UINT32_MAX, Math.floor(n)));
  return {
    bsize: c(s.bsize),
    frsize: c(s.frsize),
    blocks: c(s.blocks),
    bfree: c(s.bfree),
    bavail: c(s.bavail),
    files: c(s.files),
    ffree: c(s.ffree),
    favail: c(s.favail),
    fsid: 0,
    flag: 0,
    namemax: c(s.namemax),
  };
}

export function createKernelOps(vfs: Vfs, o: AdapterOptions): KernelOps {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const loggedBugs = new Set<string>();

  /** -errno for a failure; a non-FragfsError is a bug: its stack once, then EIO. */
  const errnoOf = (e: unknown, op: string, path: string): number => {
    if (e instanceof FragfsError) return -e.errno;
    const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
    if (!loggedBugs.has(stack) && loggedBugs.size < 1000) {
      loggedBugs.add(stack);
      log(`fragfs: internal error in ${op} ${path} (a bug; answered EIO): ${stack}`);
    }
    return -EIO;
  };

  /** Runs `p`, then cb(0, value) or cb(-errno). */
  function reply<T>(op: string, path: string, p: () => Promise<T>, cb: (res: number, value?: unknown) => void, map?: (v: T) => unknown): void {
    let promise: Promise<T>;
    try {
      promise = p();
    } catch (e) {
      cb(errnoOf(e, op, path));
      return;
    }
    promise.then(
      (v) => cb(0, map ? map(v) : v),
      (e: unknown) => cb(errnoOf(e, op, path)),
    );
  }

  /** For ops whose result IS the return code (read, write, getxattr size). */
  function replyCount(op: string, path: string, p: () => Promise<number>, cb: (res: number) => void): void {
    let promise: Promise<number>;
    try {
      promise = p();
    } catch (e) {
      cb(errnoOf(e, op, path));
      return;
    }
    promise.then(
      (n) => cb(n),
      (e: unknown) => cb(errnoOf(e, op, path)),
    );
  }

  const callerOf = (ids: CallerIds): Caller => ({
    uid: ids.uid ?? o.defaultCaller.uid,
    gid: ids.gid ?? o.defaultCaller.gid,
  });

  return {
    init: (cb) => cb(0),
    access: (path, mode, cb) => reply('access', path, () => vfs.access(path, mode), cb, () => undefined),
    statfs: (path, cb) => reply('statfs', path, () => vfs.statfs(path), cb, toFuseStatfs),
    getattr: (path, cb) => reply('getattr', path, () => vfs.getattr(path), cb, toFuseStat),
    fgetattr: (path, fh, cb) => reply('fgetattr', path, () => vfs.fgetattr(path, fh), cb, toFuseStat),
    flush: (path, fh, cb) => reply('flush', path, () => vfs.flush(path, fh), cb, () => undefined),
    fsync: (path, datasync, fh, cb) => reply('fsync', path, () => vfs.fsync(path, fh, datasync !== 0), cb, () => undefined),
    // The Vfs has no per-directory sync: making every directory change durable is flushAll.
    fsyncdir: (path, _datasync, _fh, cb) =>
      reply('fsyncdir', path, () => (vfs.readOnly ? Promise.resolve() : vfs.flushAll()), cb, () => undefined),
    readdir: (path, cb) => reply('readdir', path, () => vfs.readdir(path), cb, (names) => ['.', '..', ...names]),
    truncate: (path, size, cb) => reply('truncate', path, () => vfs.truncate(path, size), cb, () => undefined),
    ftruncate: (path, fh, size, cb) => reply('ftruncate', path, () => vfs.ftruncate(path, fh, size), cb, () => undefined),
    readlink: (path, cb) => reply('readlink', path, () => vfs.readlink(path), cb),
    chown: (path, uid, gid, cb) =>
      reply(
        'chown',
        path,
        async () => {
          // chown(2) passes -1 (here 2^32-1) for "unchanged".
          if (uid === UINT32_MAX || gid === UINT32_MAX) {
            const a = await vfs.getattr(path);
            if (uid === UINT32_MAX) uid = a.uid;
            if (gid === UINT32_MAX) gid = a.gid;
          }
          await vfs.chown(path, uid, gid);
        },
        cb,
        () => undefined,
      ),
    chmod: (path, mode, cb) => reply('chmod', path, () => vfs.chmod(path, mode), cb, () => undefined),
    mknod: (path, mode, dev, caller, cb) =>
      reply('mknod', path, () => vfs.mknod(path, mode, dev, callerOf(caller)), cb, () => undefined),
    setxattr: (path, name, value, flags, cb) =>
      UNSUPPORTED_XATTRS.has(name)
        ? cb(-EOPNOTSUPP)
        : // The value lives in kernel-request memory fuse-native detaches after the reply: copy it.
      reply('setxattr', path, () => vfs.setxattr(path, name, Buffer.from(value), flags), cb, () => undefined),
    getxattr: (path, name, cb) =>
      UNSUPPORTED_XATTRS.has(name)
        ? cb(-ENODATA)
        : reply('getxattr', path, () => vfs.getxattr(path, name), cb as (res: number, value?: unknown) => void),
    listxattr: (path, cb) => reply('listxattr', path, () => vfs.listxattr(path), cb as (res: number, value?: unknown) => void),
    removexattr: (path, name, cb) => reply('removexattr', path, () => vfs.removexattr(path, name), cb, () => undefined),
    open: (path, flags, cb) => reply('open', path, () => vfs.open(path, flags), cb),
    // Directories are read by path; the handle is not used.
    opendir: (_path, _flags, cb) => cb(0, 0),
    read: (path, fh, buf, length, position, cb) =>
      replyCount('read', path, () => vfs.read(path, fh, buf, length, position), cb),
    write: (path, fh, buf, length, position, cb) =>
      replyCount('write', path, () => vfs.write(path, fh, buf, length, position), cb),
    release: (path, fh, cb) => reply('release', path, () => vfs.release(path, fh), cb, () => undefined),
    releasedir: (_path, _fh, cb) => cb(0),
    create: (path, mode, flags, caller, cb) =>
      reply('create', path, () => vfs.create(path, mode, flags ?? (O_CREAT! | O_RDWR!), callerOf(caller)), cb),
    utimens: (path, atimeMs, mtimeMs, cb) =>
      reply(
        'utimens',
        path,
        async () => {
          if (atimeMs === undefined && mtimeMs === undefined) return;
          if (atimeMs === undefined || mtimeMs === undefined) {
            const a = await vfs.getattr(path);
            atimeMs ??= a.atimeMs;
            mtimeMs ??= a.mtimeMs;
          }
          await vfs.utimens(path, atimeMs, mtimeMs);
        },
        cb,
        () => undefined,
      ),
    unlink: (path, cb) => reply('unlink', path, () => vfs.unlink(path), cb, () => undefined),
    rename: (from, to, cb) => reply('rename', from, () => vfs.rename(from, to), cb, () => undefined),
    link: (existing, path, cb) => reply('link', path, () => vfs.link(existing, path), cb, () => undefined),
    symlink: (target, path, caller, cb) =>
      reply('symlink', path, () => vfs.symlink(target, path, callerOf(caller)), cb, () => undefined),
    mkdir: (path, mode, caller, cb) => reply('mkdir', path, () => vfs.mkdir(path, mode, callerOf(caller)), cb, () => undefined),
    rmdir: (path, cb) => reply('rmdir', path, () => vfs.rmdir(path), cb, () => undefined),
  };
}
