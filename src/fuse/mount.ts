// Mounting a Vfs on a folder and taking it down again: clears a stale mount left by a killed process,
// mounts with fragfs's tuning, and unmounts only after every buffered byte is stored (BUSY when a
// program still uses the mount, unless the caller asks for a lazy detach on shutdown).

import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { FragfsError } from '../errors.js';
import type { Caller, Vfs } from '../vfs/vfs-api.js';
import { createKernelOps, PREFERRED_IO_BYTES } from './fuse-adapter.js';
import { LowLevelAdapter } from './lowlevel-adapter.js';
import { loadLowLevelBinding, lowLevelBindingBuilt } from './lowlevel-binding.js';
import { fusermountUnmount, type FusermountError, type FuseTuning, lowLevelOptionString, TunedFuse } from './fuse-native.js';
import { withOpStats } from './op-stats.js';

export interface MountOptions {
  allowOther?: boolean;
  /** libfuse's request trace on stderr. */
  debug?: boolean;
  /** Count each FUSE op and its latency; the table goes to `log` at unmount. */
  opStats?: boolean;
  /** Source column of /proc/mounts (commas and spaces are replaced). */
  fsname?: string;
  /** Owner of new inodes when the kernel does not say who the caller is. */
  defaultCaller?: Caller;
  log?: (line: string) => void;
}

export interface MountHandle {
  readonly mountpoint: string;
  readonly vfs: Vfs;
  /**
   * Stores every buffered block, then unmounts. A mount in use fails with BUSY and stays mounted,
   * unless `lazy` (shutdown on a signal): then it is detached and disappears when the last file closes.
   * It does not close the vfs.
   */
  unmount(o?: { lazy?: boolean }): Promise<void>;
  /** True once unmounted (by unmount() or from outside, e.g. `fusermount -u`). */
  isMounted(): Promise<boolean>;
}

/** What /proc/self/mounts says about a path, if it is a mount point. */
export interface MountEntry {
  source: string;
  mountpoint: string;
  fstype: string;
}

const unescapeMounts = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

export async function findMount(mountpoint: string): Promise<MountEntry | undefined> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  let found: MountEntry | undefined;
  for (const line of text.split('\n')) {
    const [source, mp, fstype] = line.split(' ');
    if (source === undefined || mp === undefined || fstype === undefined) continue;
    // The last match wins: a later mount on the same path hides the earlier ones.
    if (unescapeMounts(mp) === mountpoint) found = { source: unescapeMounts(source), mountpoint, fstype };
  }
  return found;
}

/**
 * Kernel read-ahead for the mount, in KiB. FUSE mounts start at 128 KiB (one max_read request), so
 * a sequential reader has at most two requests in flight and waits for each; with 1 MiB the kernel
 * sends eight ahead and the vfs works on several at once (cold 1 GiB read: about +15 %, measured
 * interleaved with `scripts/bench-mount.ts`). 4 MiB was slower again.
 */
export const READ_AHEAD_KIB = 1024;

/**
 * Sets the mount's backing-device read-ahead (/sys/class/bdi/MAJOR:MINOR/read_ahead_kb). Only root
 * may write it; anyone else keeps the kernel's default, which is correct, only slower.
 * The device number comes from /proc/self/mountinfo: stat() of the mount point would be a request
 * to this very process.
 */
export async function raiseReadAhead(mountpoint: string, kib: number, log: (line: string) => void): Promise<void> {
  let dev: string | undefined;
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const f = line.split(' ');
    if (f[4] !== undefined && unescapeMounts(f[4]) === mountpoint && f[2] !== undefined) dev = f[2];
  }
  if (dev === undefined || !/^\d+:\d+$/.test(dev)) return;
  try {
    await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, `${kib}\n`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS' && code !== 'ENOENT') {
      log(`fragfs: cannot set read-ahead of ${mountpoint} (${dev}): ${(e as Error).message}`);
    }
  }
}

export function tuningFor(vfs: Vfs, o: MountOptions): FuseTuning {
  // A read-only tree changes under nobody: the kernel may cache pages and attributes for long.
  // Read-write: libfuse 2's path-based nodes give each name of a hard link its own kernel inode, so a
  // cached attribute of one name would miss a change made through another (nlink after ln, chmod):
  // attributes are not cached; entries and pages (auto_cache checks mtime and size on open) are.
  const frozen = vfs.readOnly;
  return {
    maxWrite: PREFERRED_IO_BYTES,
    maxRead: PREFERRED_IO_BYTES,
    attrTimeoutS: frozen ? 60 : 0,
    entryTimeoutS: frozen ? 60 : 1,
    negativeTimeoutS: frozen ? 60 : 0,
    kernelCache: frozen,
    // With default_permissions and no attribute cache the kernel asks for the attributes of every
    // directory on a path before each operation (3-4 getattrs per file in `tar x`); a vfs that
    // checks permissions itself spares those round trips.
    defaultPermissions: !vfs.checksPermissions,
    allowOther: o.allowOther ?? false,
    debug: o.debug ?? false,
    fsname: o.fsname ?? 'fragfs',
  };
}

/**
 * Checks the mount point, clears a dead fragfs/FUSE mount left there (ENOTCONN), refuses a live one.
 * Resolves to the absolute path.
 */
export async function prepareMountpoint(mountpoint: string, log: (line: string) => void): Promise<string> {
  const mp = resolve(mountpoint);
  try {
    await stat(mp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') {
      log(`fragfs: clearing a stale mount at ${mp} (its process is gone)`);
      try {
        await fusermountUnmount(mp, true);
      } catch (u) {
        throw new FragfsError('BUSY', `cannot clear the stale mount at ${mp}: ${(u as Error).message}`, { path: mp });
      }
    } else if (code === 'ENOENT') {
      throw new FragfsError('NOT_FOUND', `mount point does not exist: ${mp}`, { path: mp });
    } else {
      throw new FragfsError('IO', `cannot use the mount point ${mp}: ${(e as Error).message}`, { path: mp, cause: e });
    }
  }
  const st = await stat(mp);
  if (!st.isDirectory()) throw new FragfsError('NOT_DIR', `mount point is not a folder: ${mp}`, { path: mp });
  const parent = await stat(dirname(mp));
  const existing = await findMount(mp);
  if (parent.dev !== st.dev || existing !== undefined) {
    throw new FragfsError('BUSY', `something is already mounted at ${mp}${existing ? ` (${existing.source}, ${existing.fstype})` : ''}`, {
      path: mp,
    });
  }
  // libfuse refuses a non-empty folder (files there would be hidden while mounted).
  if ((await readdir(mp)).length > 0) {
    throw new FragfsError('NOT_EMPTY', `mount point is not empty: ${mp} (mount on an empty folder)`, { path: mp });
  }
  return mp;
}

/** A mounted kernel connection, whichever binding serves it. */
interface Connection {
  /** Frees the binding's thread and handles once the kernel side is gone (idempotent). */
  release(): void;
  /** Resolves when the binding saw the kernel side go (undefined: the binding cannot tell). */
  readonly gone?: Promise<void>;
  report?(): string;
}

/**
 * Which FUSE binding serves the mount: fragfs's low-level addon (inode-based, asynchronous replies,
 * attribute caching) when it is built, else fuse-native's high-level one. FRAGFS_FUSE_API=highlevel
 * picks the latter anyway (a fallback, and the A/B of the bench figures).
 */
export function fuseApiInUse(): 'lowlevel' | 'highlevel' {
  return process.env['FRAGFS_FUSE_API'] !== 'highlevel' && lowLevelBindingBuilt() ? 'lowlevel' : 'highlevel';
}

function mountLowLevel(vfs: Vfs, mp: string, o: MountOptions, caller: Caller, log: (line: string) => void): Connection {
  const binding = loadLowLevelBinding();
  const t = tuningFor(vfs, o);
  const adapter = new LowLevelAdapter(vfs, binding, {
    // Both kinds of fragfs mount see every change through this kernel (a snapshot never changes; a
    // read-write mount is its store's only writer), so what the kernel caches stays true. A read-write
    // mount keeps the 1 s go-fuse and JuiceFS use, a snapshot a minute.
    entryTimeoutS: vfs.readOnly ? 60 : 1,
    attrTimeoutS: vfs.readOnly ? 60 : 1,
    negativeTimeoutS: vfs.readOnly ? 60 : 1,
    keepCache: true,
    defaultCaller: caller,
    log,
    opStats: o.opStats === true,
  });
  let resolveGone: () => void = () => undefined;
  const gone = new Promise<void>((r) => (resolveGone = r));
  let handle: object;
  try {
    handle = binding.mount(mp, lowLevelOptionString(t), adapter.dispatch);
  } catch (e) {
    throw new FragfsError('IO', `cannot mount at ${mp}: ${(e as Error).message} (is /dev/fuse there and fusermount installed?)`, { path: mp, cause: e });
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    binding.release(handle);
  };
  adapter.onExit = () => {
    resolveGone();
    release();
  };
  return { release, gone, report: () => adapter.opStatsReport() };
}

async function mountHighLevel(vfs: Vfs, mp: string, o: MountOptions, caller: Caller, log: (line: string) => void): Promise<Connection> {
  const kernelOps = createKernelOps(vfs, { defaultCaller: caller, log });
  const stats = o.opStats ? withOpStats(kernelOps) : undefined;
  const fuse = new TunedFuse(mp, stats?.ops ?? kernelOps, tuningFor(vfs, o));
  await new Promise<void>((resolveMounted, reject) => {
    fuse.mount((err) => {
      if (!err) return resolveMounted();
      const hint = err.message === 'fuse failed' ? ' (is /dev/fuse there and fusermount installed?)' : '';
      reject(new FragfsError('IO', `cannot mount at ${mp}: ${err.message}${hint}`, { path: mp, cause: err }));
    });
  });
  return { release: () => fuse.releaseNative(), ...(stats ? { report: () => stats.report() } : {}) };
}

export async function mountVfs(vfs: Vfs, mountpoint: string, o: MountOptions = {}): Promise<MountHandle> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const mp = await prepareMountpoint(mountpoint, log);
  const caller = o.defaultCaller ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const conn = fuseApiInUse() === 'lowlevel' ? mountLowLevel(vfs, mp, o, caller, log) : await mountHighLevel(vfs, mp, o, caller, log);
  if (conn.gone) {
    // The kernel holds every request until the INIT exchange is done, so this stat (answered by
    // this process, asynchronously) returns once the mount is usable and INIT has set the mount's
    // read-ahead, which raiseReadAhead then overrides.
    await stat(mp).catch(() => undefined);
  }

  await raiseReadAhead(mp, READ_AHEAD_KIB, log);

  const isMounted = async () => (await findMount(mp))?.fstype === 'fuse.fragfs';
  let unmounted = false;
  return {
    mountpoint: mp,
    vfs,
    isMounted: async () => !unmounted && (await isMounted()),
    async unmount(u: { lazy?: boolean } = {}) {
      if (unmounted) return;
      if (!vfs.readOnly) await vfs.flushAll();
      try {
        await fusermountUnmount(mp, false);
      } catch (e) {
        const fe = e as FusermountError;
        if (fe.notMounted || !(await isMounted())) {
          // Already gone (someone ran fusermount -u or umount): nothing left to detach.
        } else if (fe.busy && u.lazy) {
          log(`fragfs: ${mp} is busy; detaching it lazily (it disappears when the last file closes)`);
          await fusermountUnmount(mp, true);
        } else if (fe.busy) {
          throw new FragfsError('BUSY', `mount point busy: ${mp} (close files and leave the folder first)`, { path: mp });
        } else {
          throw new FragfsError('IO', `cannot unmount ${mp}: ${fe.message}`, { path: mp, cause: e });
        }
      }
      unmounted = true;
      // The low-level binding's thread ends once the kernel lets go, and only then may it be released
      // (that joins the thread). After a lazy detach of a busy mount that is when the last file closes.
      if (conn.gone) {
        const ended = await Promise.race([conn.gone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
        if (ended) conn.release();
      } else {
        conn.release();
      }
      if (o.opStats && conn.report) log(conn.report());
    },
  };
}
