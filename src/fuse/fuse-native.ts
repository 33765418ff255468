// The one place that loads fuse-native. It picks fragfs's patched addon when built (build-native.ts),
// and subclasses Fuse to (a) build the -o string itself (big_writes and max_write have no fuse-native
// option), (b) replace the JS glue of ops fuse-native gets wrong (fgetattr calls getattr, getxattr and
// listxattr ignore the caller's buffer size, create/mkdir/mknod/symlink drop flags and caller ids),
// and (c) unmount without -z so a busy mount is reported instead of silently detached.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { PATCHED_BINDING_DIR, PATCHED_BINDING_FILE } from './build-native.js';

const require = createRequire(import.meta.url);

// node-gyp-build reads FUSE_NATIVE_PREBUILD when fuse-native loads its addon: set it before the require.
const envOverride = process.env['FUSE_NATIVE_PREBUILD'];
if (envOverride === undefined && existsSync(PATCHED_BINDING_FILE)) {
  process.env['FUSE_NATIVE_PREBUILD'] = PATCHED_BINDING_DIR;
}
/** True when the addon in use passes mtime, create flags and caller ids (fragfs's patched build). */
export const PATCHED_BINDING = (process.env['FUSE_NATIVE_PREBUILD'] ?? '') === PATCHED_BINDING_DIR;

type Signal = (res: number, ...values: unknown[]) => void;
type Cb = (res: number, value?: unknown) => void;

/** The op table TunedFuse calls: fuse-native's shape, with the extras the patched addon supplies. */
export interface KernelOps {
  init(cb: (res: number) => void): void;
  access(path: string, mode: number, cb: Cb): void;
  statfs(path: string, cb: Cb): void;
  getattr(path: string, cb: Cb): void;
  fgetattr(path: string, fh: number, cb: Cb): void;
  flush(path: string, fh: number, cb: Cb): void;
  fsync(path: string, datasync: number, fh: number, cb: Cb): void;
  fsyncdir(path: string, datasync: number, fh: number, cb: Cb): void;
  readdir(path: string, cb: Cb): void;
  truncate(path: string, size: number, cb: Cb): void;
  ftruncate(path: string, fh: number, size: number, cb: Cb): void;
  readlink(path: string, cb: Cb): void;
  chown(path: string, uid: number, gid: number, cb: Cb): void;
  chmod(path: string, mode: number, cb: Cb): void;
  mknod(path: string, mode: number, dev: number, caller: CallerIds, cb: Cb): void;
  setxattr(path: string, name: string, value: Buffer, flags: number, cb: Cb): void;
  /** cb(res, value): the adapter checks the size; res < 0 is an error. */
  getxattr(path: string, name: string, cb: (res: number, value?: Buffer) => void): void;
  listxattr(path: string, cb: (res: number, names?: string[]) => void): void;
  removexattr(path: string, name: string, cb: Cb): void;
  open(path: string, flags: number, cb: Cb): void;
  opendir(path: string, flags: number, cb: Cb): void;
  read(path: string, fh: number, buf: Buffer, length: number, position: number, cb: (res: number) => void): void;
  write(path: string, fh: number, buf: Buffer, length: number, position: number, cb: (res: number) => void): void;
  release(path: string, fh: number, cb: Cb): void;
  releasedir(path: string, fh: number, cb: Cb): void;
  /** flags undefined with the stock addon (it does not pass them). */
  create(path: string, mode: number, flags: number | undefined, caller: CallerIds, cb: Cb): void;
  /** Times in ms; undefined means "leave as is" (UTIME_OMIT). */
  utimens(path: string, atimeMs: number | undefined, mtimeMs: number | undefined, cb: Cb): void;
  unlink(path: string, cb: Cb): void;
  rename(from: string, to: string, cb: Cb): void;
  link(existing: string, path: string, cb: Cb): void;
  symlink(target: string, path: string, caller: CallerIds, cb: Cb): void;
  mkdir(path: string, mode: number, caller: CallerIds, cb: Cb): void;
  rmdir(path: string, cb: Cb): void;
}

/** Caller uid/gid when the addon reports them (patched build), else undefined. */
export interface CallerIds {
  uid?: number;
  gid?: number;
}

/** What goes into -o. Everything here is a libfuse 2.9 / kernel option. */
export interface FuseTuning {
  /** Bytes per write request the kernel may send (needs big_writes). */
  maxWrite: number;
  maxRead: number;
  attrTimeoutS: number;
  entryTimeoutS: number;
  negativeTimeoutS: number;
  /** Keep page cache across opens: only safe when nothing else changes the files (snapshot mounts). */
  kernelCache: boolean;
  /** The kernel checks permissions (else the filesystem does). */
  defaultPermissions: boolean;
  allowOther: boolean;
  debug: boolean;
  /** Shown in /proc/mounts as the source column. */
  fsname: string;
}

/** The options both bindings mount with: what fuse_mount and fuse_lowlevel_new parse. */
function mountOptions(t: FuseTuning): string[] {
  // fsname values cannot carry commas or backslashes unescaped through fuse_opt.
  const fsname = t.fsname.replace(/[\\,\s]/g, '_');
  return [
    `fsname=${fsname}`,
    'subtype=fragfs',
    ...(t.defaultPermissions ? ['default_permissions'] : []),
    'big_writes',
    `max_write=${t.maxWrite}`,
    `max_read=${t.maxRead}`,
    ...(t.allowOther ? ['allow_other'] : []),
    ...(t.debug ? ['debug'] : []),
  ];
}

/** fuse-native's -o string: the mount options plus libfuse's high-level ones (inode numbers, caching). */
export function fuseOptionString(t: FuseTuning): string {
  const highLevel = [
    'use_ino',
    `attr_timeout=${t.attrTimeoutS}`,
    `entry_timeout=${t.entryTimeoutS}`,
    `negative_timeout=${t.negativeTimeoutS}`,
    t.kernelCache ? 'kernel_cache' : 'auto_cache',
  ];
  return `-o${[...mountOptions(t), ...highLevel].join(',')}`;
}

/**
 * The option string of a low-level mount: the mount options alone. Timeouts, use_ino and the cache
 * options are high-level ones; the low-level adapter sets those per reply.
 */
export function lowLevelOptionString(t: FuseTuning): string {
  return mountOptions(t).join(',');
}

interface FuseBase {
  mnt: string;
  _thread: Buffer | null;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
type FuseCtor = new (mnt: string, ops: object, opts: object) => FuseBase;

const Fuse = require('fuse-native') as FuseCtor;
const fuseNativeDir = dirname(require.resolve('fuse-native/package.json'));
// The same addon instance index.js uses (node-gyp-build resolves the same path; require caches it).
const binding = createRequire(join(fuseNativeDir, 'index.js'))('node-gyp-build')(fuseNativeDir) as {
  fuse_native_unmount(mnt: string, thread: Buffer): void;
};

const ERANGE = osConstants.errno.ERANGE;
const ENODATA = osConstants.errno.ENODATA;
const OMIT = Number.MAX_SAFE_INTEGER;

/** fuse-native's stat transfer layout (index.js getStatArray), which it does not export. */
function statArray(st: Record<string, number>): Uint32Array {
  const ints = new Uint32Array(18);
  const set64 = (i: number, n: number) => {
    ints[i] = n % 4294967296;
    ints[i + 1] = (n - ints[i]!) / 4294967296;
  };
  ints[0] = st['mode'] ?? 0;
  ints[1] = st['uid'] ?? 0;
  ints[2] = st['gid'] ?? 0;
  set64(3, st['size'] ?? 0);
  ints[5] = st['dev'] ?? 0;
  ints[6] = st['nlink'] || 1;
  ints[7] = st['ino'] ?? 0;
  ints[8] = st['rdev'] ?? 0;
  ints[9] = st['blksize'] ?? 0;
  set64(10, st['blocks'] ?? 0);
  set64(12, st['atime'] ?? 0);
  set64(14, st['mtime'] ?? 0);
  set64(16, st['ctime'] ?? 0);
  return ints;
}

const u64 = (low: number, high: number) => low + high * 4294967296;

/** fuse-native's Fuse with fragfs's option string, op glue and non-lazy unmount. */
export class TunedFuse extends Fuse {
  constructor(
    mountpoint: string,
    private readonly kops: KernelOps,
    private readonly tuning: FuseTuning,
  ) {
    // timeout false: fuse-native otherwise answers ETIMEDOUT after 15 s, which an fsync of a big
    // file or a snapshot under load can legitimately exceed.
    super(mountpoint, kops, { timeout: false });
  }

  _fuseOptions(): string {
    return fuseOptionString(this.tuning);
  }

  _op_fgetattr(signal: Signal, path: string, fh: number): void {
    this.kops.fgetattr(path, fh, (res, stat) =>
      res < 0 ? signal(res) : signal(0, statArray(stat as Record<string, number>)),
    );
  }

  _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer): void {
    this.kops.getxattr(path, name, (res, value) => {
      if (res < 0) return signal(res, valueBuf.buffer);
      if (!value) return signal(-ENODATA, valueBuf.buffer);
      // size 0 asks for the length; a too-small buffer is ERANGE (getxattr(2)).
      if (valueBuf.length === 0) return signal(value.length, valueBuf.buffer);
      if (value.length > valueBuf.length) return signal(-ERANGE, valueBuf.buffer);
      value.copy(valueBuf);
      return signal(value.length, valueBuf.buffer);
    });
  }

  _op_listxattr(signal: Signal, path: string, listBuf: Buffer): void {
    this.kops.listxattr(path, (res, names) => {
      if (res < 0 || !names) return signal(res < 0 ? res : 0, listBuf.buffer);
      const encoded = Buffer.concat(names.map((n) => Buffer.from(`${n}\0`)));
      if (listBuf.length === 0) return signal(encoded.length, listBuf.buffer);
      if (encoded.length > listBuf.length) return signal(-ERANGE, listBuf.buffer);
      encoded.copy(listBuf);
      return signal(encoded.length, listBuf.buffer);
    });
  }

  _op_setxattr(signal: Signal, path: string, name: string, value: Buffer, _position: number, flags: number): void {
    this.kops.setxattr(path, name, value, flags, (res) => signal(res, value.buffer));
  }

  _op_create(signal: Signal, path: string, mode: number, flags?: number, uid?: number, gid?: number): void {
    this.kops.create(path, mode, flags, { uid, gid }, (res, fh) => signal(res, fh));
  }

  _op_mknod(signal: Signal, path: string, mode: number, dev: number, uid?: number, gid?: number): void {
    this.kops.mknod(path, mode, dev, { uid, gid }, (res) => signal(res));
  }

  _op_mkdir(signal: Signal, path: string, mode: number, uid?: number, gid?: number): void {
    this.kops.mkdir(path, mode, { uid, gid }, (res) => signal(res));
  }

  _op_symlink(signal: Signal, target: string, path: string, uid?: number, gid?: number): void {
    this.kops.symlink(target, path, { uid, gid }, (res) => signal(res));
  }

  _op_utimens(signal: Signal, path: string, aLow: number, aHigh: number, mLow: number, mHigh: number): void {
    const a = u64(aLow, aHigh);
    const m = u64(mLow, mHigh);
    this.kops.utimens(path, a === OMIT ? undefined : a, m === OMIT ? undefined : m, (res) => signal(res));
  }

  /** Non-lazy unmount (fuse-native's own uses `fusermount -uz`, which hides a busy mount). */
  _close(cb: (err: Error | null) => void): void {
    fusermountUnmount(this.mnt, false).then(
      () => {
        this.releaseNative();
        cb(null);
      },
      (e: Error) => cb(e),
    );
  }

  /** Lets the event loop end once the kernel side is gone (the mount thread holds a libuv handle). */
  releaseNative(): void {
    if (this._thread) binding.fuse_native_unmount(this.mnt, this._thread);
  }
}

/** Error from fusermount, with `busy` set when the kernel refused because the mount is in use. */
export interface FusermountError extends Error {
  busy: boolean;
  notMounted: boolean;
}

/**
 * `fusermount -u` (or `-uz`, lazy: detach now, finish when the last file closes). Lazy unmount
 * always succeeds on a mounted path, so it is only for shutdown paths that must not fail.
 */
export function fusermountUnmount(mountpoint: string, lazy: boolean): Promise<void> {
  return new Promise((resolveDone, reject) => {
    execFile('fusermount', [lazy ? '-uz' : '-u', mountpoint], (err, _stdout, stderr) => {
      if (!err) return resolveDone();
      const text = (stderr || err.message).trim();
      const e = new Error(text) as FusermountError;
      e.busy = /busy/i.test(text);
      e.notMounted = /not found|not mounted|invalid argument/i.test(text);
      reject(e);
    });
  });
}
