// `get`: writes a frozen tree back to local disk, byte for byte: contents (holes stay sparse),
// types, modes, owners (when run as root), mtimes, symlinks and hard links. Blocks are fetched and
// verified on every core in a bounded pipeline; nothing from a failed block reaches the disk. The
// tree is input: every entry counts against the snapshot's declared totals before it is created, a
// file's size is checked against the destination before the file exists, and the names of one
// hard-link group must agree on their content.

import { chmod, chown, lchown, link, lutimes, mkdir, open, readdir, stat, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { joinName, showName } from '../fragment/names.js';
import type { Entry, SnapshotObject } from '../fragment/tree-format.js';
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
  /** Entries that could not be recreated here (devices without privilege, sockets). */
  skipped: string[];
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
  const r = new TreeGetter(repo, o, new TreeBudget(snapshot, key), sizes, key);
  try {
    await r.restore(root, target, top, true, key);
  } finally {
    await sizes.close();
  }
  return { key, files: r.files, dirs: r.dirs, symlinks: r.symlinks, plainBytes: r.plainBytes, skipped: r.skipped };
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
  ) {}

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
        await this.attempt(path, () => chmod(path, e.mode));
        await this.attempt(path, () => utimes(path, atime(e), mtime(e)));
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
        await this.attempt(path, () => lutimes(path, atime(e), mtime(e)));
        this.symlinks++;
        return;
      }
      default:
        this.skipped.push(`${treePath} (${e.type})`);
    }
  }

  private async file(e: Entry, path: Buffer, treePath: string): Promise<void> {
    const extents = await readExtents(this.repo, e, treePath);
    if (!(await this.sizes.holds(e.size))) throw this.tooBig(e, path, treePath);
    await this.openFiles.run(async () => {
      let fh: FileHandle;
      try {
        fh = await open(path, 'wx', 0o600);
      } catch (err) {
        throw fromFsError(err, 'cannot create file', showName(path));
      }
      let refused = false;
      try {
        // Size first: holes between extents stay sparse, and a short last block leaves no gap.
        if (e.size > 0) {
          try {
            await fh.truncate(e.size);
          } catch (err) {
            const errno = (err as NodeJS.ErrnoException).code;
            if (errno !== 'EFBIG' && errno !== 'EINVAL') throw err;
            // Below the probe's notice (a `ulimit -f`, a small file system): the same refusal.
            refused = true;
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
      } catch (err) {
        throw fromFsError(err, 'cannot write', showName(path));
      } finally {
        await fh.close();
        if (refused) await unlink(path).catch(() => undefined);
      }
    });
    await this.owner(path, e, false);
    await this.attempt(path, () => chmod(path, e.mode));
    await this.attempt(path, () => utimes(path, atime(e), mtime(e)));
    this.files++;
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
