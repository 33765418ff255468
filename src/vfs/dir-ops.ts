// Namespace operations on the live state, addressed as the kernel addresses them (a parent inode
// and a name's bytes): lookup and the create/remove/rename/link changes to directory entries, with
// POSIX errors, nlink and parent times. Every function here runs inside one LMDB write transaction
// (the caller's), so each operation is atomic. Messages name inodes, never names: they may reach a
// log, and a log must not hold a name (docs/DESIGN.md, "Secrets").

import { FragfsError } from '../errors.js';
import { NAME_MAX_BYTES } from '../fragment/names.js';
import { ROOT_INO, S_IFDIR, S_IFMT, isDir, nowNs, type InodeRecord } from './inode.js';
import type { LiveState } from './live-state.js';
import { type Accessor, checkAccess, checkDirChange, checkSticky, MAY_EXEC, MAY_WRITE } from './permissions.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, type Caller } from './vfs-api.js';

export { NAME_MAX_BYTES };

/** How messages name an inode (and, with a name, an entry of it). */
export function where(ino: number, name?: Uint8Array): string {
  return name === undefined ? `inode ${ino}` : `an entry of inode ${ino}`;
}

/** A name as the kernel sends it: NAME_TOO_LONG past 255 bytes, INVALID for '', '.', '..', '/' or NUL. */
export function checkName(name: Buffer, parent: number): Buffer {
  if (!Buffer.isBuffer(name)) throw new FragfsError('INVALID', `${where(parent)}: a name must be bytes`);
  if (name.length > NAME_MAX_BYTES) {
    throw new FragfsError('NAME_TOO_LONG', `${where(parent)}: a name is longer than ${NAME_MAX_BYTES} bytes`);
  }
  if (name.length === 0 || name.includes(0x2f) || name.includes(0) || (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e)))) {
    throw new FragfsError('INVALID', `${where(parent)}: not a valid name`);
  }
  return name;
}

export interface Found {
  ino: number;
  rec: InodeRecord;
}

/** The inode `ino` (a copy of its record); NOT_FOUND when it is gone. */
export function getNode(state: LiveState, ino: number): Found {
  const rec = state.getInode(ino);
  if (!rec) throw new FragfsError('NOT_FOUND', `${where(ino)}: no such file or directory`);
  return { ino, rec };
}

/** A directory inode (its record read, not copied); NOT_DIR when it is something else. */
function dirNode(state: LiveState, ino: number): Readonly<InodeRecord> {
  const rec = state.peekInode(ino);
  if (!rec) throw new FragfsError('NOT_FOUND', `${where(ino)}: no such directory`);
  if (!isDir(rec)) throw new FragfsError('NOT_DIR', `${where(ino)}: not a directory`);
  return rec;
}

/**
 * The inode named `name` in directory `parent`. With `who`, the directory must grant it search (x),
 * else EACCES: the kernel resolves a path one lookup per component, so this is the path walk's check.
 */
export function lookupChild(state: LiveState, parent: number, name: Buffer, who?: Accessor): Found {
  const dirRec = dirNode(state, parent);
  checkName(name, parent);
  if (who) checkAccess(dirRec, who, MAY_EXEC, where(parent));
  const e = state.lookup(parent, name);
  if (e === undefined) throw new FragfsError('NOT_FOUND', `${where(parent, name)}: no such file or directory`);
  const rec = state.getInode(e.ino);
  if (!rec) throw new FragfsError('IO', `${where(parent)}: an entry points at inode ${e.ino}, which does not exist`);
  return { ino: e.ino, rec };
}

interface ParentRef {
  parent: number;
  parentRec: InodeRecord;
  name: Buffer;
  /** The inode the name points at now, if any. */
  existing?: Found;
}

/** Directory `parent` (searchable by `who`) and what `name` holds in it now. */
function parentRef(state: LiveState, parent: number, name: Buffer, who?: Accessor): ParentRef {
  checkName(name, parent);
  const parentRec = state.getInode(parent);
  if (!parentRec) throw new FragfsError('NOT_FOUND', `${where(parent)}: no such directory`);
  if (!isDir(parentRec)) throw new FragfsError('NOT_DIR', `${where(parent)}: not a directory`);
  // A removed directory still open somewhere takes no new entries (POSIX: ENOENT).
  if (parentRec.nlink === 0) throw new FragfsError('NOT_FOUND', `${where(parent)}: the directory was removed`);
  if (who) checkAccess(parentRec, who, MAY_EXEC, where(parent));
  const out: ParentRef = { parent, parentRec, name };
  const e = state.lookup(parent, name);
  if (e !== undefined) {
    const rec = state.getInode(e.ino);
    if (rec) out.existing = { ino: e.ino, rec };
  }
  return out;
}

function touchDir(state: LiveState, ino: number, rec: InodeRecord, now: bigint): void {
  rec.mtimeNs = now;
  rec.ctimeNs = now;
  state.putInode(ino, rec);
  state.dirChanged(ino);
}

/** Creates a new inode named `name` in `parent`; EXISTS when the name is taken. */
export function createNode(
  state: LiveState,
  parent: number,
  name: Buffer,
  mode: number,
  caller: Caller,
  extra: { target?: Buffer; rdev?: number } = {},
  who?: Accessor,
): Found {
  const p = parentRef(state, parent, name, who);
  if (p.existing) throw new FragfsError('EXISTS', `${where(parent, name)}: already exists`);
  if (who) checkDirChange(p.parentRec, who, where(parent));
  const now = nowNs();
  const ino = state.allocIno();
  const dir = (mode & S_IFMT) === S_IFDIR;
  // setgid directories hand their group to new entries, and their setgid bit to new directories.
  const inheritGid = (p.parentRec.mode & 0o2000) !== 0;
  const rec: InodeRecord = {
    mode: dir && inheritGid ? mode | 0o2000 : mode,
    uid: caller.uid,
    gid: inheritGid ? p.parentRec.gid : caller.gid,
    size: extra.target !== undefined ? extra.target.length : 0,
    atimeNs: now,
    mtimeNs: now,
    ctimeNs: now,
    nlink: dir ? 2 : 1,
    alloc: 0,
    parents: [parent],
  };
  if (extra.target !== undefined) rec.target = Buffer.from(extra.target);
  if (extra.rdev) rec.rdev = extra.rdev;
  state.putInode(ino, rec);
  state.putEntry(parent, name, ino, mode);
  if (dir) p.parentRec.nlink++;
  touchDir(state, parent, p.parentRec, now);
  return { ino, rec };
}

function removeOne<T>(list: T[], v: T): void {
  const i = list.indexOf(v);
  if (i >= 0) list.splice(i, 1);
}

/**
 * Drops one name of an inode. Returns the inode, with its record as it stands now (nlink 0), when
 * it has no name left: that record is NOT written here, because the caller frees the inode at once
 * (writing it first was a seal and a put thrown away on every unlink) or, while it is open, writes
 * it and marks it an orphan, freed on its last release (an open file or folder keeps answering
 * fstat and fchmod).
 */
function dropName(state: LiveState, parent: number, parentRec: InodeRecord, name: Buffer, target: Found, now: bigint): Found | undefined {
  state.removeEntry(parent, name);
  const { ino, rec } = target;
  if (isDir(rec)) {
    parentRec.nlink--;
    rec.nlink = 0;
    rec.ctimeNs = now;
    return target;
  }
  rec.nlink--;
  removeOne(rec.parents, parent);
  rec.ctimeNs = now;
  if (rec.nlink <= 0) return target;
  state.putInode(ino, rec);
  state.inodeChanged(ino, rec);
  return undefined;
}

/** unlink(2) or rmdir(2). Returns an inode left without names, its record not yet written (see dropName). */
export function removeNode(state: LiveState, parent: number, name: Buffer, dir: boolean, who?: Accessor): Found | undefined {
  const p = parentRef(state, parent, name, who);
  const t = p.existing;
  if (!t) throw new FragfsError('NOT_FOUND', `${where(parent, name)}: no such file or directory`);
  if (who) {
    checkDirChange(p.parentRec, who, where(parent));
    checkSticky(p.parentRec, t.rec, who, where(t.ino));
  }
  if (dir) {
    if (!isDir(t.rec)) throw new FragfsError('NOT_DIR', `${where(t.ino)}: not a directory`);
    if (!state.dirIsEmpty(t.ino)) throw new FragfsError('NOT_EMPTY', `${where(t.ino)}: directory not empty`);
  } else if (isDir(t.rec)) {
    throw new FragfsError('IS_DIR', `${where(t.ino)}: is a directory`);
  }
  const now = nowNs();
  const freed = dropName(state, parent, p.parentRec, name, t, now);
  touchDir(state, parent, p.parentRec, now);
  return freed;
}

/** True when directory `dir` is `ancestor` or lies below it. */
function isWithin(state: LiveState, dir: number, ancestor: number): boolean {
  for (let d: number | undefined = dir, guard = 0; d !== undefined && guard < 1_000_000; guard++) {
    if (d === ancestor) return true;
    if (d === ROOT_INO) return false;
    d = state.peekInode(d)?.parents[0];
  }
  return false;
}

/**
 * rename(2) and renameat2(2) (RENAME_NOREPLACE, RENAME_EXCHANGE). Returns an inode the rename left
 * without names (a replaced file), its record not yet written (see dropName).
 */
export function renameNode(
  state: LiveState,
  parent: number,
  name: Buffer,
  newParent: number,
  newName: Buffer,
  flags: number,
  who?: Accessor,
): Found | undefined {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE)) {
    throw new FragfsError('INVALID', `${where(parent)}: rename flags ${flags} are not supported`);
  }
  const src = parentRef(state, parent, name, who);
  if (!src.existing) throw new FragfsError('NOT_FOUND', `${where(parent, name)}: no such file or directory`);
  const sameParent = parent === newParent;
  const dst = sameParent ? { ...parentRef(state, newParent, newName, who), parentRec: src.parentRec } : parentRef(state, newParent, newName, who);
  const moving = src.existing;
  const movingDir = isDir(moving.rec);
  if (flags & RENAME_NOREPLACE && dst.existing) throw new FragfsError('EXISTS', `${where(newParent, newName)}: already exists`);
  if (flags & RENAME_EXCHANGE && !dst.existing) throw new FragfsError('NOT_FOUND', `${where(newParent, newName)}: no such file or directory`);
  if (who) {
    checkDirChange(src.parentRec, who, where(parent));
    checkSticky(src.parentRec, moving.rec, who, where(moving.ino));
    checkDirChange(dst.parentRec, who, where(newParent));
    if (dst.existing) checkSticky(dst.parentRec, dst.existing.rec, who, where(dst.existing.ino));
    // A directory moving to another parent rewrites its '..' entry.
    if (movingDir && !sameParent) checkAccess(moving.rec, who, MAY_WRITE, where(moving.ino));
    if (flags & RENAME_EXCHANGE && dst.existing && isDir(dst.existing.rec) && !sameParent) {
      checkAccess(dst.existing.rec, who, MAY_WRITE, where(dst.existing.ino));
    }
  }
  if (dst.existing && dst.existing.ino === moving.ino) return undefined; // two names of one inode: nothing to do
  // A directory must not move into itself or below itself (either way, for an exchange).
  if (movingDir && isWithin(state, newParent, moving.ino)) throw new FragfsError('INVALID', `${where(moving.ino)}: cannot move a directory into itself`);
  if (flags & RENAME_EXCHANGE && dst.existing && isDir(dst.existing.rec) && isWithin(state, parent, dst.existing.ino)) {
    throw new FragfsError('INVALID', `${where(dst.existing.ino)}: cannot move a directory into itself`);
  }
  const now = nowNs();
  if (flags & RENAME_EXCHANGE) {
    const other = dst.existing!;
    state.putEntry(parent, name, other.ino, other.rec.mode);
    state.putEntry(newParent, newName, moving.ino, moving.rec.mode);
    repoint(state, moving, parent, newParent, now);
    repoint(state, other, newParent, parent, now);
    if (!sameParent) {
      const movedDirs = (isDir(moving.rec) ? 1 : 0) - (isDir(other.rec) ? 1 : 0);
      src.parentRec.nlink -= movedDirs;
      dst.parentRec.nlink += movedDirs;
    }
    touchDir(state, parent, src.parentRec, now);
    if (!sameParent) touchDir(state, newParent, dst.parentRec, now);
    return undefined;
  }
  let freed: Found | undefined;
  if (dst.existing) {
    const t = dst.existing;
    if (movingDir && !isDir(t.rec)) throw new FragfsError('NOT_DIR', `${where(t.ino)}: not a directory`);
    if (!movingDir && isDir(t.rec)) throw new FragfsError('IS_DIR', `${where(t.ino)}: is a directory`);
    if (isDir(t.rec) && !state.dirIsEmpty(t.ino)) throw new FragfsError('NOT_EMPTY', `${where(t.ino)}: directory not empty`);
    freed = dropName(state, newParent, dst.parentRec, newName, t, now);
  }
  state.removeEntry(parent, name);
  state.putEntry(newParent, newName, moving.ino, moving.rec.mode);
  repoint(state, moving, parent, newParent, now);
  if (movingDir && !sameParent) {
    src.parentRec.nlink--;
    dst.parentRec.nlink++;
  }
  touchDir(state, parent, src.parentRec, now);
  if (!sameParent) touchDir(state, newParent, dst.parentRec, now);
  return freed;
}

/** One name of `node` moved from directory `from` to `to`: its parents list and ctime follow. */
function repoint(state: LiveState, node: Found, from: number, to: number, now: bigint): void {
  const rec = node.rec;
  // Caches of both parent chains go: the entry is no longer where they say.
  state.inodeChanged(node.ino, rec);
  const i = rec.parents.indexOf(from);
  if (i >= 0) rec.parents[i] = to;
  rec.ctimeNs = now;
  state.putInode(node.ino, rec);
  state.inodeChanged(node.ino, rec);
}

/** link(2): a new name for an existing non-directory inode. */
export function linkNode(state: LiveState, ino: number, newParent: number, newName: Buffer, who?: Accessor): Found {
  const src = getNode(state, ino);
  if (isDir(src.rec)) throw new FragfsError('NOT_PERMITTED', `${where(ino)}: hard links to directories are not allowed`);
  const p = parentRef(state, newParent, newName, who);
  if (p.existing) throw new FragfsError('EXISTS', `${where(newParent, newName)}: already exists`);
  if (who) checkDirChange(p.parentRec, who, where(newParent));
  const now = nowNs();
  state.putEntry(newParent, newName, ino, src.rec.mode);
  src.rec.nlink++;
  src.rec.parents.push(newParent);
  src.rec.ctimeNs = now;
  state.putInode(ino, src.rec);
  state.inodeChanged(ino, src.rec);
  touchDir(state, newParent, p.parentRec, now);
  return src;
}
