// The rule that everything fragfs writes in a store folder is its owner's alone: files 0600, folders
// 0700, on every backend, set explicitly where they are created (never left to the umask), and
// tightened in an existing store whose files are looser.

import type { Stats } from 'node:fs';
import { chmod, lstat, mkdir, opendir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fromFsError } from '../errors.js';

/** Mode of every file fragfs creates in a store (fragments, fragfs.json, LMDB files, locks, records). */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of every folder fragfs creates in a store. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` and any missing parents as 0700 and returns the first folder it created (undefined
 * when `dir` existed). mkdir's mode passes through the umask, so created folders are chmod'ed too:
 * a umask that takes the owner's bits away must not leave a folder fragfs cannot use, and one that
 * leaves others' bits cannot happen below 0700 anyway.
 */
export async function mkdirPrivate(dir: string): Promise<string | undefined> {
  const target = resolve(dir);
  const first = await mkdir(target, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first !== undefined) {
    const top = resolve(first);
    for (let d = target; d.length >= top.length; d = resolve(d, '..')) await chmod(d, PRIVATE_DIR_MODE);
  }
  return first;
}

/** Whether a stat's permission bits are looser than (or otherwise differ from) the private ones. */
export function isLoose(mode: number, isDir: boolean): boolean {
  return (mode & 0o7777) !== (isDir ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE);
}

/** lstat of `path`, or undefined when nothing is there. */
async function lstatIfThere(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromFsError(e, 'cannot read the mode of', path);
  }
}

/**
 * chmods `path` to the private mode of its kind when it differs; returns whether it did. Symbolic
 * links and missing paths are left alone.
 */
export async function tightenPath(path: string): Promise<boolean> {
  const st = await lstatIfThere(path);
  if (!st) return false;
  if (!st.isDirectory() && !st.isFile() && !st.isSocket()) return false;
  if (!isLoose(st.mode, st.isDirectory())) return false;
  try {
    await chmod(path, st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fromFsError(e, 'cannot make private', path);
  }
  return true;
}

/**
 * Makes every folder under `root` (and `root`) 0700 and every file 0600: a store written by an older
 * fragfs, or copied without its modes. Walks one folder at a time (a dir store can hold millions of
 * files); symbolic links are not followed. Returns how many modes it changed.
 */
export async function tightenTree(root: string): Promise<number> {
  let changed = (await tightenPath(root)) ? 1 : 0;
  const walk = async (dir: string): Promise<void> => {
    let handle;
    try {
      handle = await opendir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fromFsError(e, 'cannot list', dir);
    }
    for await (const entry of handle) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (await tightenPath(p)) changed++;
        await walk(p);
      } else if (entry.isFile() || entry.isSocket()) {
        if (await tightenPath(p)) changed++;
      }
    }
  };
  await walk(root);
  return changed;
}

/**
 * Tightens a whole store when its top looks loose: the folder itself, what it holds (fragfs.json,
 * the LMDB files, space folders, live/) and one level below those (objects, meta, refs, tmp, live
 * spaces). A store written by an older fragfs or copied without its modes is loose there; a store
 * fragfs keeps is not, and then this costs a few lstat calls, not a walk of every fragment.
 * Returns how many modes it changed.
 */
export async function tightenStoreIfLoose(root: string): Promise<number> {
  const looseAt = async (path: string, depth: number): Promise<boolean> => {
    const st = await lstatIfThere(path);
    if (!st) return false;
    if ((st.isFile() || st.isDirectory()) && isLoose(st.mode, st.isDirectory())) return true;
    if (!st.isDirectory() || depth === 0) return false;
    let names: string[];
    try {
      names = await readdir(path);
    } catch (e) {
      throw fromFsError(e, 'cannot list', path);
    }
    for (const name of names) if (await looseAt(join(path, name), depth - 1)) return true;
    return false;
  };
  return (await looseAt(root, 2)) ? tightenTree(root) : 0;
}
