// Namespace operations on the live state: path lookup and the create/remove/rename/link changes
// to directory entries, with POSIX errors, nlink and parent times. Every function here runs inside
// one LMDB write transaction (the caller's), so each operation is atomic.

import { FragfsError } from '../errors.js';
import { ROOT_INO, S_IFDIR, S_IFMT, isDir, type InodeRecord } from './inode.js';
import type { LiveState } from './live-state.js';
import { type Accessor, checkAccess, checkDirChange, checkSticky, MAY_EXEC, MAY_WRITE } from './permissions.js';
import type { Caller } from './vfs-api.js';

export const NAME_MAX_BYTES = 255;

export function splitPath(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new FragfsError('INVALID', `not an absolute path inside the mount: ${String(path)}`);
  }
  return path.split('/').filter((c) => c.length > 0);
}

export function nameBytes(name: string, path: string): Buffer {
  const b = Buffer.from(name, 'utf8');
  if (b.length > NAME_MAX_BYTES) {
    throw new FragfsError('NAME_TOO_LONG', `${path}: a name is longer than ${NAME_MAX_BYTES} bytes`, { path });
  }
  if (name === '.' || name === '..' || name.includes('\0')) {
    throw new FragfsError('INVALID', `${path}: not a valid name`, { path });
  }
  return b;
}

export interface Found {
  ino: number;
  rec: InodeRecord;
}

/**
 * The inode at `path`; NOT_FOUND / NOT_DIR as the kernel would report them. With `who`, every
 * directory passed through must grant it search (x), else EACCES (the vfs checks permissions).
 */
export function lookupPath(state: LiveState, path: string, who?: Accessor): Found {
  const parts = splitPath(path);
  let ino = ROOT_INO;
  // The directories passed through are only read: no copy of their records (peekInode).
  let rec: Readonly<InodeRecord> | undefined = state.peekInode(ino);
  if (!rec) throw new FragfsError('IO', 'the live state has no root inode');
  for (const part of parts) {
    if (!isDir(rec)) throw new FragfsError('NOT_DIR', `${path}: ${ERR('NOT_DIR')}`, { path });
    if (who) checkAccess(rec, who, MAY_EXEC, path);
    const child = state.lookup(ino, nameBytes(part, path));
    if (child === undefined) throw new FragfsError('NOT_FOUND', `${path}: no such file or directory`, { path });
    const childRec = state.peekInode(child);
    if (!childRec) throw new FragfsError('IO', `${path}: dangling directory entry to inode ${child}`, { path });
    ino = child;
    rec = childRec;
  }
  return { ino, rec: state.getInode(ino)! };
}

function ERR(code: 'NOT_DIR'): string {
  return code === 'NOT_DIR' ? 'a path component is not a directory' : '';
}

export interface ParentRef {
  parent: number;
  parentRec: InodeRecord;
  name: Buffer;
  /** The inode the name points at now, if any. */
  existing?: Found;
}

/** The directory that holds the last component of `path` (which must not be the root). */
export function lookupParent(state: LiveState, path: string, who?: Accessor): ParentRef {
  const parts = splitPath(path);
  if (parts.length === 0) throw new FragfsError('BUSY', `the root of the mount cannot be changed that way`, { path });
  const last = parts[parts.length - 1]!;
  const name = nameBytes(last, path);
  const dirPath = '/' + parts.slice(0, -1).join('/');
  const { ino: parent, rec: parentRec } = lookupPath(state, dirPath, who);
  if (!isDir(parentRec)) throw new FragfsError('NOT_DIR', `${path}: a path component is not a directory`, { path });
  if (who) checkAccess(parentRec, who, MAY_EXEC, path);
  const child = state.lookup(parent, name);
  const out: ParentRef = { parent, parentRec, name };
  if (child !== undefined) {
    const rec = state.getInode(child);
    if (rec) out.existing = { ino: child, rec };
  }
  return out;
}

function touchDir(state: LiveState, ino: number, rec: InodeRecord, now: number): void {
  rec.mtimeMs = now;
  rec.ctimeMs = now;
  state.putInode(ino, rec);
  state.dirChanged(ino);
}

/** Creates a new inode named `path`; EXISTS when the name is taken. */
export function createNode(
  state: LiveState,
  path: string,
  mode: number,
  caller: Caller,
  extra: { target?: string; rdev?: number } = {},
  who?: Accessor,
): number {
  const p = lookupParent(state, path, who);
  if (p.existing) throw new FragfsError('EXISTS', `${path}: already exists`, { path });
  if (who) checkDirChange(p.parentRec, who, path);
  const now = Date.now();
  const ino = state.allocIno();
  const dir = (mode & S_IFMT) === S_IFDIR;
  const rec: InodeRecord = {
    mode,
    uid: caller.uid,
    gid: caller.gid,
    size: extra.target !== undefined ? Buffer.byteLength(extra.target) : 0,
    atimeMs: now,
    mtimeMs: now,
    ctimeMs: now,
    nlink: dir ? 2 : 1,
    alloc: 0,
    parents: [p.parent],
  };
  if (extra.target !== undefined) rec.target = extra.target;
  if (extra.rdev) rec.rdev = extra.rdev;
  state.putInode(ino, rec);
  state.putEntry(p.parent, p.name, ino);
  if (dir) p.parentRec.nlink++;
  touchDir(state, p.parent, p.parentRec, now);
  return ino;
}

function removeOne<T>(list: T[], v: T): void {
  const i = list.indexOf(v);
  if (i >= 0) list.splice(i, 1);
}

/**
 * Drops one name of an inode. Returns the inode when it has no name left and is a file (the caller
 * frees it now or, while it is open, on release). Directories are freed here.
 */
function dropName(state: LiveState, parent: number, parentRec: InodeRecord, name: Buffer, target: Found, now: number): number | undefined {
  state.removeEntry(parent, name);
  const { ino, rec } = target;
  if (isDir(rec)) {
    parentRec.nlink--;
    state.deleteInode(ino);
    return undefined;
  }
  rec.nlink--;
  removeOne(rec.parents, parent);
  rec.ctimeMs = now;
  state.putInode(ino, rec);
  if (rec.nlink <= 0) return ino;
  state.inodeChanged(ino, rec);
  return undefined;
}

/** unlink(2) or rmdir(2). Returns an inode left without names (see dropName). */
export function removeNode(state: LiveState, path: string, dir: boolean, who?: Accessor): number | undefined {
  const p = lookupParent(state, path, who);
  const t = p.existing;
  if (!t) throw new FragfsError('NOT_FOUND', `${path}: no such file or directory`, { path });
  if (who) {
    checkDirChange(p.parentRec, who, path);
    checkSticky(p.parentRec, t.rec, who, path);
  }
  if (dir) {
    if (!isDir(t.rec)) throw new FragfsError('NOT_DIR', `${path}: not a directory`, { path });
    if (!state.dirIsEmpty(t.ino)) throw new FragfsError('NOT_EMPTY', `${path}: directory not empty`, { path });
  } else if (isDir(t.rec)) {
    throw new FragfsError('IS_DIR', `${path}: is a directory`, { path });
  }
  const now = Date.now();
  const freed = dropName(state, p.parent, p.parentRec, p.name, t, now);
  touchDir(state, p.parent, p.parentRec, now);
  return freed;
}

/** rename(2). Returns an inode the rename left without names (a replaced file). */
export function renameNode(state: LiveState, from: string, to: string, who?: Accessor): number | undefined {
  const src = lookupParent(state, from, who);
  if (!src.existing) throw new FragfsError('NOT_FOUND', `${from}: no such file or directory`, { path: from });
  const dst = lookupParent(state, to, who);
  const moving = src.existing;
  const movingDir = isDir(moving.rec);
  if (who) {
    checkDirChange(src.parentRec, who, from);
    checkSticky(src.parentRec, moving.rec, who, from);
    checkDirChange(dst.parentRec, who, to);
    if (dst.existing) checkSticky(dst.parentRec, dst.existing.rec, who, to);
    // A directory moving to another parent rewrites its '..' entry.
    if (movingDir && src.parent !== dst.parent) checkAccess(moving.rec, who, MAY_WRITE, from);
  }
  if (dst.existing && dst.existing.ino === moving.ino) return undefined; // same file: nothing to do
  if (movingDir) {
    // The target's directory must not be the moved dir or below it.
    for (let d: number | undefined = dst.parent; d !== undefined; d = state.getInode(d)?.parents[0]) {
      if (d === moving.ino) {
        throw new FragfsError('INVALID', `${to}: cannot move a directory into itself`, { path: to });
      }
      if (d === ROOT_INO) break;
    }
  }
  const now = Date.now();
  // Parent records are re-read as needed: src and dst parent may be one inode.
  const sameParent = src.parent === dst.parent;
  const dstParentRec = sameParent ? src.parentRec : dst.parentRec;
  let freed: number | undefined;
  if (dst.existing) {
    const t = dst.existing;
    if (movingDir && !isDir(t.rec)) throw new FragfsError('NOT_DIR', `${to}: not a directory`, { path: to });
    if (!movingDir && isDir(t.rec)) throw new FragfsError('IS_DIR', `${to}: is a directory`, { path: to });
    if (isDir(t.rec) && !state.dirIsEmpty(t.ino)) throw new FragfsError('NOT_EMPTY', `${to}: directory not empty`, { path: to });
    freed = dropName(state, dst.parent, dstParentRec, dst.name, t, now);
  }
  state.removeEntry(src.parent, src.name);
  state.putEntry(dst.parent, dst.name, moving.ino);
  // The moved inode may be a parent record itself only if it were a dir holding itself: excluded above.
  const rec = moving.rec;
  const i = rec.parents.indexOf(src.parent);
  if (i >= 0) rec.parents[i] = dst.parent;
  rec.ctimeMs = now;
  state.putInode(moving.ino, rec);
  if (movingDir && !sameParent) {
    src.parentRec.nlink--;
    dstParentRec.nlink++;
  }
  state.inodeChanged(moving.ino, rec);
  touchDir(state, src.parent, src.parentRec, now);
  if (!sameParent) touchDir(state, dst.parent, dstParentRec, now);
  return freed;
}

/** link(2): a new name for an existing non-directory inode. */
export function linkNode(state: LiveState, existing: string, path: string, who?: Accessor): void {
  const src = lookupPath(state, existing, who);
  if (isDir(src.rec)) throw new FragfsError('NOT_PERMITTED', `${existing}: hard links to directories are not allowed`, { path: existing });
  const p = lookupParent(state, path, who);
  if (p.existing) throw new FragfsError('EXISTS', `${path}: already exists`, { path });
  if (who) checkDirChange(p.parentRec, who, path);
  const now = Date.now();
  state.putEntry(p.parent, p.name, src.ino);
  src.rec.nlink++;
  src.rec.parents.push(p.parent);
  src.rec.ctimeMs = now;
  state.putInode(src.ino, src.rec);
  state.inodeChanged(src.ino, src.rec);
  // The parent record may be the one lookupPath returned for `existing` if it is the same dir: re-read.
  const parentRec = p.parent === src.ino ? src.rec : (state.getInode(p.parent) ?? p.parentRec);
  touchDir(state, p.parent, parentRec, now);
}
