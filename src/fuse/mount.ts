// Mounting a Vfs on a folder and taking it down again: clears a stale mount left by a killed process,
// mounts through fragfs's FUSE addon with fragfs's tuning, and unmounts only after every buffered byte
// is stored (BUSY when a program still uses the mount, unless the caller asks for a lazy detach on
// shutdown).

import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { FragfsError } from '../errors.js';
import type { Vfs } from '../vfs/vfs-api.js';
import { fusermountUnmount, type FusermountError } from './fusermount.js';
import { KernelAdapter, PREFERRED_IO_BYTES } from './kernel-adapter.js';
import { ensureKernelBinding, type KernelMountOptions } from './kernel-binding.js';
import { type CollectFn, MemoryPacer } from './memory-pacer.js';
import { dropKeptBuffers } from '../store/buffer-recycle.js';

/** The largest FUSE request (READ and WRITE): one 1 MiB block, what the kernel's max_pages allows. */
export const MAX_REQUEST_BYTES = PREFERRED_IO_BYTES;

export interface MountOptions {
  allowOther?: boolean;
  /**
   * The kernel's write-back cache (writes gather in the page cache and reach fragfs as large requests;
   * close and fsync push them first). Default on for read-write mounts; FRAGFS_WRITEBACK=0 turns it off.
   */
  writebackCache?: boolean;
  /** Count each FUSE op and its latency; the table goes to `log` at unmount. */
  opStats?: boolean;
  /** Source column of /proc/mounts (commas and spaces are replaced). */
  fsname?: string;
  log?: (line: string) => void;
  /**
   * The mount's own memory (RssAnon, bytes) above which it collects garbage (memory-pacer.ts);
   * undefined: only the collections after it goes quiet.
   */
  softMemoryBytes?: number;
}

export interface MountHandle {
  readonly mountpoint: string;
  readonly vfs: Vfs;
  /**
   * Stores every buffered block, then unmounts. A mount in use fails with BUSY and stays mounted,
   * unless `lazy` (shutdown on a signal): then it is detached and disappears when the last file closes.
   * It does not close the vfs.
   */
  unmount(o?: UnmountOptions): Promise<void>;
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
/** How often a mount hands freed malloc pages back to the system. */
const TRIM_EVERY_MS = 1000;
/** How often a mount compares its own memory with its soft limit (memory-pacer.ts). */
const PACE_EVERY_MS = 200;
/**
 * Seconds without a request after which a mount runs a full garbage collection. V8 gives its heap
 * back in steps: after an untar of 100,000 files one collection left 122 MiB of heap for 45 MiB in
 * use, and only further ones (or V8's own memory reducer, a minute or more later) shrank it to ~48.
 */
const QUIET_TICKS_GC = new Set([2, 3, 5]);

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

export async function mountVfs(vfs: Vfs, mountpoint: string, o: MountOptions = {}): Promise<MountHandle> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const mp = await prepareMountpoint(mountpoint, log);
  const binding = await ensureKernelBinding();
  const frozen = vfs.readOnly && vfs.frozen !== false;
  // Both kinds of fragfs mount see every change through this kernel (a snapshot never changes; a
  // read-write mount is its store's only writer, and the kernel drops what it cached of an inode or a
  // name with each change it forwards), so what the kernel caches stays true for a minute. A view
  // that changes without this kernel (the list of snapshots of `mount --all`) keeps the 1 s go-fuse
  // and JuiceFS use. With 1 s, `rm -r` of a big folder looked up every name again (the names its
  // listing gave were stale before it reached them): 100,000 LOOKUPs of 50,000 removed files.
  const cacheS = frozen || !vfs.readOnly ? 60 : 1;
  const adapter = new KernelAdapter(vfs, binding, {
    entryTimeoutS: cacheS,
    attrTimeoutS: cacheS,
    negativeTimeoutS: cacheS,
    keepCache: true,
    cacheDirs: frozen,
    log,
    opStats: o.opStats === true,
  });
  let resolveGone: () => void = () => undefined;
  const gone = new Promise<void>((r) => (resolveGone = r));
  let handle: object;
  try {
    handle = binding.mount(mp, kernelMountOptions(vfs, o), adapter.dispatch);
  } catch (e) {
    throw new FragfsError('IO', `cannot mount at ${mp}: ${(e as Error).message}`, { path: mp, cause: e });
  }
  adapter.fillPages = (ino, offset, data) => binding.notifyStore(handle, ino, offset, data);
  adapter.granted = () => binding.info(handle);
  adapter.invalidateAttrs = (ino) => binding.notifyInvalInode(handle, ino, -1, 0);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    binding.release(handle);
  };
  adapter.onExit = () => {
    clearInterval(trimmer);
    resolveGone();
    release();
  };
  // Blocks of 1 MiB are made on one thread and freed on another (FUSE reader, codec workers, JS),
  // which leaves glibc's arenas holding freed pages in their middles; handing those back once a
  // second lowered a mount's peak RssAnon under 4 KiB random writes from 295-306 to 273-289 MiB,
  // and over untar from 196-221 to 168-177 MiB, with no change in their speed beyond the noise.
  // Once requests stop (a walk, an untar ended), a few full collections give back what V8 keeps of the
  // garbage they left, which an idle mount would otherwise hold until its next burst of work
  // (`--expose-gc` is among the mount's node flags; without it only the trim runs). Meanwhile the
  // pacer collects whenever the mount's own memory passes what its settings grant.
  let seen = adapter.requests;
  let quietTicks = 0;
  const collect = (globalThis as { gc?: CollectFn }).gc;
  const pacer = o.softMemoryBytes === undefined ? undefined : new MemoryPacer({ softLimitBytes: o.softMemoryBytes, collect, afterCollect: () => binding.trimMemory() });
  let ticks = 0;
  let busySeen = adapter.requests;
  const trimmer = setInterval(() => {
    pacer?.check(Date.now(), adapter.requests !== busySeen);
    busySeen = adapter.requests;
    if (++ticks % (TRIM_EVERY_MS / PACE_EVERY_MS) !== 0) return;
    if (adapter.requests !== seen) {
      seen = adapter.requests;
      quietTicks = 0;
    } else if (QUIET_TICKS_GC.has(++quietTicks) && collect) {
      dropKeptBuffers();
      collect();
    }
    binding.trimMemory();
  }, PACE_EVERY_MS);
  trimmer.unref();

  await raiseReadAhead(mp, READ_AHEAD_KIB, log);

  const isMounted = async () => (await findMount(mp))?.fstype === 'fuse.fragfs';
  let unmounted = false;
  return {
    mountpoint: mp,
    vfs,
    isMounted: async () => !unmounted && (await isMounted()),
    async unmount(u: UnmountOptions = {}) {
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
      u.onDetached?.();
      // The addon's reader ends once the kernel lets go (EXIT); after a lazy detach of a busy mount that
      // is when the last file closes. Released either way, so the process can end (after 5 s unless
      // told to wait for the last close).
      await (u.untilLastClose ? gone : Promise.race([gone, new Promise<void>((r) => setTimeout(r, 5000).unref())]));
      clearInterval(trimmer);
      release();
      if (o.opStats) log(adapter.opStatsReport());
    },
  };
}

export interface UnmountOptions {
  /** A busy mount is detached (it leaves the namespace now) instead of failing with BUSY. */
  lazy?: boolean;
  /**
   * Once detached, keep serving the files still open there until the last closes (the kernel then
   * ends the connection), rather than at most 5 s: `fragfs umount --lazy` and `umount -l`.
   */
  untilLastClose?: boolean;
  /** Called once the mount point is detached, before the last file closes. */
  onDetached?: () => void;
}

/** What the addon is asked for at mount time (kernel-binding.ts KernelMountOptions). */
export function kernelMountOptions(vfs: Vfs, o: MountOptions): KernelMountOptions {
  return {
    fsname: o.fsname ?? 'fragfs',
    subtype: 'fragfs',
    readOnly: vfs.readOnly,
    // A vfs that checks permissions itself spares the kernel's per-request checks; with allow_other
    // many users come in and the kernel checks each (docs/DESIGN.md, "Permissions: who checks").
    defaultPermissions: !vfs.checksPermissions,
    allowOther: o.allowOther ?? false,
    maxWriteBytes: MAX_REQUEST_BYTES,
    maxReadBytes: MAX_REQUEST_BYTES,
    maxReadaheadBytes: READ_AHEAD_KIB * 1024,
    readdirplus: true,
    writebackCache: !vfs.readOnly && (o.writebackCache ?? process.env['FRAGFS_WRITEBACK'] !== '0'),
  };
}
