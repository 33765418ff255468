// What every read-only view of a tree (a snapshot, a share, every snapshot at once) answers to a
// change: READ_ONLY (EROFS), whatever is asked; a setattr that changes nothing is a getattr.

import type { Attr, AttrChanges, Caller } from './vfs-api.js';

export abstract class ReadOnlyVfs {
  /** Throws READ_ONLY naming inode `ino` (each view words it). */
  protected abstract ro(ino: number): never;

  abstract getattr(ino: number, fh?: number): Promise<Attr>;

  async create(parent: number, _name: Buffer, _mode: number, _flags: number, _caller: Caller): Promise<{ attr: Attr; fh: number }> { this.ro(parent); }
  async mkdir(parent: number, _name: Buffer, _mode: number, _caller: Caller): Promise<Attr> { this.ro(parent); }
  async rmdir(parent: number, _name: Buffer): Promise<void> { this.ro(parent); }
  async mknod(parent: number, _name: Buffer, _mode: number, _rdev: number, _caller: Caller): Promise<Attr> { this.ro(parent); }
  async write(ino: number, _fh: number, _buf: Buffer, _length: number, _position: number): Promise<number> { this.ro(ino); }
  async fallocate(ino: number, _fh: number, _mode: number, _offset: number, _length: number): Promise<void> { this.ro(ino); }
  async unlink(parent: number, _name: Buffer): Promise<void> { this.ro(parent); }
  async rename(parent: number, _name: Buffer, _newParent: number, _newName: Buffer, _flags: number): Promise<void> { this.ro(parent); }
  async symlink(parent: number, _name: Buffer, _target: Buffer, _caller: Caller): Promise<Attr> { this.ro(parent); }
  async link(ino: number, _newParent: number, _newName: Buffer): Promise<Attr> { this.ro(ino); }
  async setattr(ino: number, fh: number | undefined, c: AttrChanges): Promise<Attr> {
    if (Object.values(c).some((v) => v !== undefined)) this.ro(ino);
    return this.getattr(ino, fh);
  }
  async setxattr(ino: number, _name: Buffer, _value: Buffer, _flags: number): Promise<void> { this.ro(ino); }
  async removexattr(ino: number, _name: Buffer): Promise<void> { this.ro(ino); }
}
