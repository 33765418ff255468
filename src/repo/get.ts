// `get`: writes a frozen tree back to local disk, byte for byte: contents (holes stay sparse),
// types, modes, owners (when run as root), mtimes, symlinks, hard links, FIFOs, sockets and device
// nodes (devices as root), and extended attributes (POSIX ACLs among them) where the target keeps
// them. Blocks are fetched and verified on every core in a bounded pipeline; nothing from a failed
// block reaches the disk, and each file is written under a temporary name and renamed into place
// only when all its blocks verified, so a failed get leaves no plausible-looking file. The
// tree is input: every entry counts against the snapshot's declared totals before it is created, a
// file's size is checked against the destination before the file exists, and the names of one
// hard-link group must agree on their content.

import { chmod, chown, lchown, link, lutimes, mkdir, open, readdir, rename, stat, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { joinName, showName } from '../fragment/names.js';
import type { Entry, SnapshotObject } from '../fragment/tree-format.js';
import { localFs, type LocalFs } from '../local/local-fs.js';
import type { Repo } from './repo.js';
import { Semaphore, settleAll } from './semaphore.js';
import { FileSizeProbe } from './size-probe.js';
import { TreeBudget, contentSignature } from './tree-limits.js';
import { childPath, loadSnapshot, readDirEntries, resolveEntry, showTreePath } from './tree-reader.js';
import { readExtents } from './tree-writer.js';

export interface GetOptions {
  onTotal?: (plainBytes: number) => void;
  onBytes?: (plainBytes: number) => void;
  /** Restore a subtree: path components inside the snapshot (bytes). */
  path?: Buffer[];
}

export interface GetResult {
  key: string;
  files: number;
  dirs: number;
  symlinks: number;
  plainBytes: number;
  /** Entries that could not be recreated here (devices without privilege, no local-fs addon). */
  skipped: string[];
  /** Extended attributes that could not be restored (the target keeps none, or not these), summed up. */
  warnings: string[];
}

/** `dest` may be bytes: a local path need not be UTF-8. */
export async function getTree(repo: Repo, keyOrName: string, dest: string | Buffer, o: GetOptions = {}): Promise<GetResult> {
  const { key, snapshot } = await loadSnapshot(repo, keyOrName);
  return getSnapshotTree(repo, key, snapshot, dest, o);
}

/** getTree of a snapshot object at hand (a share's tree); `key` names it in messages. */
export async function getSnapshotTree(repo: Repo, key: string, snapshot: SnapshotObject, dest: string | Buffer, o: GetOptions = {}): Promise<GetResult> {
  const target = absolutePath(dest);
  const root = o.path && o.path.length > 0 ? await resolveEntry(repo, snapshot.root, o.path) : snapshot.root;
  await checkDestination(target, root.type === 'dir');
  o.onTotal?.(snapshot.logicalBytes);
  const top = o.path && o.path.length > 0 ? showTreePath(o.path) : '/';
  const sizes = new FileSizeProbe(root.type === 'dir' ? target : target.subarray(0, Math.max(1, target.lastIndexOf(0x2f))));
  const r = new TreeGetter(repo, o, new TreeBudget(snapshot, key), sizes, key, await localFs());
  try {
    await r.restore(root, target, top, true, key);
  } finally {
    await sizes.close();
  }
  return { key, files: r.files, dirs: r.dirs, symlinks: r.symlinks, plainBytes: r.plainBytes, skipped: r.skipped, warnings: r.warnings() };
}

/**
 * Writes the content of one file of a snapshot to `out` (`get STORE KEY/file -`), in order, holes as
 * zeros; blocks are fetched and verified ahead, a few at a time. A folder is refused (USAGE).
 */
export async function getToStream(
  repo: Repo,
  keyOrName: string,
  path: Buffer[],
  write: (chunk: Uint8Array) => Promise<void>,
  o: Pick<GetOptions, 'onTotal' | 'onBytes'> = {},
): Promise<{ key: string; plainBytes: number }> {
  const { key, snapshot } = await loadSnapshot(repo, keyOrName);
  return { key, plainBytes: await getSnapshotToStream(repo, snapshot, path, write, o) };
}

/** getToStream of a snapshot object at hand (a share's tree); the bytes written. */
export async function getSnapshotToStream(
  repo: Repo,
  snapshot: SnapshotObject,
  path: Buffer[],
  write: (chunk: Uint8Array) => Promise<void>,
  o: Pick<GetOptions, 'onTotal' | 'onBytes'> = {},
): Promise<number> {
  const e = path.length > 0 ? await resolveEntry(repo, snapshot.root, path) : snapshot.root;
  const where = path.length > 0 ? showTreePath(path) : '/';
  if (e.type !== 'file') throw new FragfsError('USAGE', `${where} is a ${e.type === 'dir' ? 'folder' : e.type}: only a file can be written to stdout`);
  o.onTotal?.(e.size);
  const extents = await readExtents(repo, e, where);
  const ahead = availableParallelism() * 2 + 2;
  const fetched: Promise<Uint8Array>[] = [];
  const fetch = (i: number): void => {
    if (i < extents.length) {
      const p = repo.readBlock(extents[i]!, where);
      p.catch(() => undefined); // awaited in order below; a failure ahead must not go unhandled meanwhile
      fetched[i] = p;
    }
  };
  for (let i = 0; i < ahead; i++) fetch(i);
  let at = 0;
  const zeros = Buffer.alloc(Math.min(repo.blockSize, 1 << 20));
  const gap = async (to: number): Promise<void> => {
    while (at < to) {
      const n = Math.min(zeros.length, to - at);
      await write(zeros.subarray(0, n));
      at += n;
      o.onBytes?.(n);
    }
  };
  for (let i = 0; i < extents.length; i++) {
    const x = extents[i]!;
    await gap(x.offset);
    const plain = await fetched[i]!;
    delete fetched[i];
    fetch(i + ahead);
    await write(plain);
    at += plain.length;
    o.onBytes?.(plain.length);
  }
  await gap(e.size);
  return at;
}

/** An absolute local path as bytes (relative ones are taken from the working directory). */
function absolutePath(p: string | Buffer): Buffer {
  const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
  if (b[0] === 0x2f) return b;
  return joinName(Buffer.from(resolve('.'), 'utf8'), b);
}

/** A destination must not exist, except an empty folder for a folder snapshot. */
async function checkDestination(target: Buffer, isDir: boolean): Promise<void> {
  try {
    const st = await stat(target);
    if (isDir && st.isDirectory() && (await readdir(target)).length === 0) return;
    throw new FragfsError('EXISTS', `destination ${showName(target)} already exists; give a new path${isDir ? ' or an empty folder' : ''}`, {
      path: showName(target),
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fromFsError(e, 'checking the destination', showName(target));
  }
}

const isRoot = process.getuid?.() === 0;

class TreeGetter {
  files = 0;
  dirs = 0;
  symlinks = 0;
  plainBytes = 0;
  skipped: string[] = [];
  /** Xattrs that could not be set, by errno: how many, and the first. */
  private readonly xattrFailures = new Map<string, { count: number; first: string }>();
  private readonly local?: LocalFs;
  private nextTemp = 0;
  private readonly blocks = new Semaphore(availableParallelism() * 2 + 2);
  private readonly openFiles = new Semaphore(16);
  /** Hard-link groups: where the first name was restored, and what every name must share with it. */
  private readonly links = new Map<number, { path: Promise<Buffer>; treePath: string; signature: string }>();

  constructor(
    private readonly repo: Repo,
    private readonly o: GetOptions,
    private readonly budget: TreeBudget,
    private readonly sizes: FileSizeProbe,
    private readonly snapshotKey: string,
    local: LocalFs | Error,
  ) {
    if (!(local instanceof Error)) this.local = local;
  }

  /** The xattr failures, one line per errno. */
  warnings(): string[] {
    return [...this.xattrFailures].map(
      ([errno, f]) => `extended attribute ${f.first} not restored (${errno})${f.count > 1 ? `, and ${f.count - 1} more for the same reason` : ''}`,
    );
  }

  /** `inDir`: the meta id of the dir fragment that holds `e` (the snapshot's key for the top). */
  async restore(e: Entry, path: Buffer, treePath: string, isTop: boolean, inDir: string): Promise<void> {
    this.budget.count(e, treePath, isTop);
    switch (e.type) {
      case 'dir': {
        try {
          await mkdir(path, { mode: 0o700 });
        } catch (err) {
          if (!(isTop && (err as NodeJS.ErrnoException).code === 'EEXIST')) throw fromFsError(err, 'cannot create folder', showName(path));
        }
        const children = await readDirEntries(this.repo, e, treePath);
        await settleAll(children.map((c) => this.restore(c, joinName(path, c.name), childPath(treePath, c.name), false, e.dir!)));
        // The size probe may live in the top folder: gone before its times are set.
        if (isTop) await this.sizes.close();
        // Mode and times last: a read-only folder must still receive its children, and creating them
        // changes the folder's mtime.
        await this.owner(path, e, false);
        this.setXattrs(path, e, treePath);
        await this.attempt(path, () => chmod(path, e.mode));
        await this.setTimes(path, e, false);
        this.dirs++;
        return;
      }
      case 'file': {
        if (e.link !== undefined) {
          const first = this.links.get(e.link);
          if (first) {
            if (contentSignature(e) !== first.signature) {
              throw new FragfsError(
                'CORRUPT',
                `metadata fragment ${inDir} is corrupt: ${treePath} is in hard-link group ${e.link} with ${first.treePath} but differs from it in size or content`,
                { fragmentId: inDir, path: treePath },
              );
            }
            const firstPath = await first.path;
            try {
              await link(firstPath, path);
            } catch (err) {
              throw fromFsError(err, 'cannot create hard link', showName(path));
            }
            return;
          }
          const done = this.file(e, path, treePath).then(() => path);
          this.links.set(e.link, { path: done, treePath, signature: contentSignature(e) });
          await done;
          return;
        }
        await this.file(e, path, treePath);
        return;
      }
      case 'symlink': {
        try {
          await symlink(e.target ?? Buffer.alloc(0), path);
        } catch (err) {
          throw fromFsError(err, 'cannot create symlink', showName(path));
        }
        await this.owner(path, e, true);
        this.setXattrs(path, e, treePath);
        await this.setTimes(path, e, true);
        this.symlinks++;
        return;
      }
      default:
        await this.special(e, path, treePath);
    }
  }

  /**
   * A FIFO, socket or device node, made with mknod(2). A device needs privilege (CAP_MKNOD): without
   * it, or without the local-fs addon, the entry is skipped and named, as tar does.
   */
  private async special(e: Entry, path: Buffer, treePath: string): Promise<void> {
    if (this.local === undefined) {
      this.skipped.push(`${treePath} (${e.type})`);
      return;
    }
    const typeBits = { fifo: fsConstants.S_IFIFO, socket: fsConstants.S_IFSOCK, chardev: fsConstants.S_IFCHR, blockdev: fsConstants.S_IFBLK }[
      e.type as 'fifo' | 'socket' | 'chardev' | 'blockdev'
    ];
    try {
      // Permissions from the entry come with chmod below; until then, only the owner's.
      this.local.mknod(path, typeBits | 0o600, e.rdev ?? 0);
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'EPERM' || errno === 'EACCES' || errno === 'ENOTSUP' || errno === 'EINVAL') {
        this.skipped.push(`${treePath} (${e.type}, ${errno})`);
        return;
      }
      throw fromFsError(err, `cannot create ${e.type}`, showName(path));
    }
    await this.owner(path, e, false);
    this.setXattrs(path, e, treePath);
    await this.attempt(path, () => chmod(path, e.mode));
    await this.setTimes(path, e, false);
  }

  /**
   * The entry's extended attributes, set on `path` without following a symlink. One the target
   * refuses (a file system without xattrs or ACLs, trusted.* without privilege) is counted for the
   * warnings; the restore goes on.
   */
  private setXattrs(path: Buffer, e: Entry, treePath: string): void {
    if (e.xattrs === undefined || e.xattrs.length === 0) return;
    for (const x of e.xattrs) {
      let errno: string;
      if (this.local === undefined) errno = 'no local-fs addon';
      else {
        try {
          this.local.lsetxattr(path, Buffer.from(x.name), Buffer.from(x.value));
          continue;
        } catch (err) {
          errno = (err as NodeJS.ErrnoException).code ?? 'EIO';
          if (errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'EIO') throw fromFsError(err, 'cannot set extended attributes of', showName(path));
        }
      }
      const seen = this.xattrFailures.get(errno);
      if (seen) seen.count++;
      else this.xattrFailures.set(errno, { count: 1, first: `${showName(x.name)} of ${treePath}` });
    }
  }

  private async file(e: Entry, path: Buffer, treePath: string): Promise<void> {
    const extents = await readExtents(this.repo, e, treePath);
    if (!(await this.sizes.holds(e.size))) throw this.tooBig(e, path, treePath);
    // Written under a temporary name beside its place, renamed there only once every block verified.
    const temp = this.tempName(path);
    await this.openFiles.run(async () => {
      let fh: FileHandle;
      try {
        fh = await open(temp, 'wx', 0o600);
      } catch (err) {
        throw fromFsError(err, 'cannot create file', showName(path));
      }
      let done = false;
      try {
        // Size first: holes between extents stay sparse, and a short last block leaves no gap.
        if (e.size > 0) {
          try {
            await fh.truncate(e.size);
          } catch (err) {
            const errno = (err as NodeJS.ErrnoException).code;
            if (errno !== 'EFBIG' && errno !== 'EINVAL') throw err;
            // Below the probe's notice (a `ulimit -f`, a small file system): the same refusal.
            throw this.tooBig(e, path, treePath);
          }
        }
        await settleAll(
          extents.map((x) =>
            this.blocks.run(async () => {
              const plain = await this.repo.readBlock(x, treePath);
              await fh.write(plain, 0, plain.length, x.offset);
              this.plainBytes += plain.length;
              this.o.onBytes?.(plain.length);
            }),
          ),
        );
        await fh.close();
        await this.owner(temp, e, false);
        this.setXattrs(temp, e, treePath);
        await this.attempt(path, () => chmod(temp, e.mode));
        await this.setTimes(temp, e, false);
        try {
          await rename(temp, path);
        } catch (err) {
          throw fromFsError(err, 'cannot create file', showName(path));
        }
        done = true;
      } catch (err) {
        throw fromFsError(err, 'cannot write', showName(path));
      } finally {
        if (!done) {
          await fh.close().catch(() => undefined);
          await unlink(temp).catch(() => undefined);
        }
      }
    });
    this.files++;
  }

  /** A name beside `path` for its file while it is written: short, hidden, this process's own. */
  private tempName(path: Buffer): Buffer {
    const dir = path.subarray(0, path.lastIndexOf(0x2f) + 1);
    return Buffer.concat([dir, Buffer.from(`.fragfs-get-${process.pid}-${this.nextTemp++}.tmp`)]);
  }

  private tooBig(e: Entry, path: Buffer, treePath: string): FragfsError {
    return new FragfsError(
      'FILE_TOO_BIG',
      `${treePath} in snapshot ${this.snapshotKey.slice(0, 12)} is ${e.size} bytes, more than the file system at ${showName(path)} holds (EFBIG)`,
      { path: treePath },
    );
  }

  /** Owners only come back when we may set them (root), as tar and rsync do. */
  private async owner(path: Buffer, e: Entry, isLink: boolean): Promise<void> {
    if (!isRoot) return;
    await this.attempt(path, () => (isLink ? lchown(path, e.uid, e.gid) : chown(path, e.uid, e.gid)));
  }

  /**
   * The entry's mtime (and as atime) on `path`, to the nanosecond through the local-fs addon; node's
   * utimes keeps microseconds, so without the addon a restore is exact to the microsecond.
   */
  private async setTimes(path: Buffer, e: Entry, isSymlink: boolean): Promise<void> {
    const local = this.local;
    if (local !== undefined) return this.attempt(path, async () => local.lutimens(path, e.mtimeNs, e.mtimeNs));
    return this.attempt(path, () => (isSymlink ? lutimes : utimes)(path, atime(e), mtime(e)));
  }

  private async attempt(path: Buffer, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      throw fromFsError(err, 'cannot set attributes of', showName(path));
    }
  }
}

/**
 * The time utimes should set: seconds as a float, nudged half a microsecond so libuv's truncation
 * lands on the stored microsecond; before 1970 as a numeric string, since node treats a negative
 * number as "now".
 */
function mtime(e: Entry): number | string {
  const us = Number(e.mtimeNs / 1000n);
  const seconds = (us + (us >= 0 ? 0.5 : -0.5)) / 1e6;
  return us >= 0 ? seconds : String(seconds);
}

function atime(e: Entry): number | string {
  return mtime(e);
}
