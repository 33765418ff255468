// POSIX permission checks the vfs makes itself when the kernel does not (a read-write mount without
// `default_permissions`). Without allow_other the kernel lets only the mounting user's processes into a
// FUSE mount, so that user is the one accessor to check; with allow_other fragfs mounts with
// default_permissions and the kernel checks every caller instead. The rules follow the kernel's
// generic_permission(), may_delete() and setattr_prepare() (fs/namei.c, fs/attr.c).

import { FragfsError } from '../errors.js';
import { S_IFMT, S_IFDIR, type InodeRecord } from './inode.js';

/** Who the checks are made for: uid and every group it belongs to (primary first). */
export interface Accessor {
  uid: number;
  gids: readonly number[];
}

export const MAY_EXEC = 1;
export const MAY_WRITE = 2;
export const MAY_READ = 4;

const S_ISVTX = 0o1000;

/** The mounting process's identity: the only accessor of a mount without allow_other. */
export function processAccessor(): Accessor {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const groups = process.getgroups?.() ?? [];
  return { uid, gids: [gid, ...groups.filter((g) => g !== gid)] };
}

/** generic_permission(): may `who` read/write/search `rec` (mask of MAY_*)? */
export function permits(rec: InodeRecord, who: Accessor, mask: number): boolean {
  if (who.uid === 0) {
    // CAP_DAC_OVERRIDE: everything but executing a non-directory without any x bit.
    return (mask & MAY_EXEC) === 0 || (rec.mode & S_IFMT) === S_IFDIR || (rec.mode & 0o111) !== 0;
  }
  let bits: number;
  if (rec.uid === who.uid) bits = (rec.mode >> 6) & 7;
  else if (who.gids.includes(rec.gid)) bits = (rec.mode >> 3) & 7;
  else bits = rec.mode & 7;
  return (bits & mask) === mask;
}

/** EACCES unless `permits`. */
export function checkAccess(rec: InodeRecord, who: Accessor, mask: number, path: string): void {
  if (!permits(rec, who, mask)) throw new FragfsError('PERMISSION', `${path}: permission denied`, { path });
}

/** Write and search on the directory whose entries change (create, unlink, rename, link). */
export function checkDirChange(dirRec: InodeRecord, who: Accessor, path: string): void {
  checkAccess(dirRec, who, MAY_WRITE | MAY_EXEC, path);
}

/**
 * may_delete(): in a sticky directory only the owner of the entry, the owner of the directory or root
 * may remove or rename the entry (EPERM).
 */
export function checkSticky(dirRec: InodeRecord, target: InodeRecord, who: Accessor, path: string): void {
  if (who.uid === 0 || (dirRec.mode & S_ISVTX) === 0) return;
  if (target.uid === who.uid || dirRec.uid === who.uid) return;
  throw new FragfsError('NOT_PERMITTED', `${path}: the directory is sticky and the entry is not yours`, { path });
}

/** chmod, utimens to given times: only the owner or root (EPERM). */
export function checkOwner(rec: InodeRecord, who: Accessor, path: string): void {
  if (who.uid !== 0 && rec.uid !== who.uid) throw new FragfsError('NOT_PERMITTED', `${path}: not the owner`, { path });
}

/** chown: only root changes the owner; the owner may change the group to one of its own groups. */
export function checkChown(rec: InodeRecord, who: Accessor, uid: number | undefined, gid: number | undefined, path: string): void {
  if (who.uid === 0) return;
  const uidChanges = uid !== undefined && uid !== rec.uid;
  const gidChanges = gid !== undefined && gid !== rec.gid;
  if (!uidChanges && !gidChanges) {
    if (uid !== undefined || gid !== undefined) checkOwner(rec, who, path);
    return;
  }
  if (uidChanges || rec.uid !== who.uid || (gidChanges && !who.gids.includes(gid!))) {
    throw new FragfsError('NOT_PERMITTED', `${path}: only root may give a file away`, { path });
  }
}

/** The access mask an open(2) with these flags needs. */
export function openMask(flags: number): number {
  const acc = flags & 3;
  let mask = acc === 0 ? MAY_READ : acc === 1 ? MAY_WRITE : MAY_READ | MAY_WRITE;
  if (flags & 0o1000) mask |= MAY_WRITE; // O_TRUNC
  return mask;
}

/** xattr_permission(): user.* needs read to get and write to set, on files and folders only. */
export function xattrMask(name: string, writing: boolean): number {
  return name.startsWith('user.') || name.startsWith('security.') ? (writing ? MAY_WRITE : MAY_READ) : 0;
}
