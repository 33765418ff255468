// Tests speak paths; the Vfs speaks inodes and name bytes, as the kernel does. PathVfs resolves a path
// by lookups from the root (what the kernel does component by component) and calls the Vfs, so tests
// read like shell sessions while exercising exactly the interface a mount uses. Names given as
// strings are their UTF-8 bytes; tests of other bytes call the Vfs directly.

import { FragfsError } from '../../src/errors.js';
import type { Attr, AttrChanges, Caller, DirEntry, StatFs, Vfs } from '../../src/vfs/vfs-api.js';
import { ROOT_INO } from '../../src/vfs/vfs-api.js';

const enc = (s: string) => Buffer.from(s, 'utf8');

export class PathVfs {
  private readonly fhIno = new Map<number, number>();

  constructor(readonly inner: Vfs) {}

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  get checksPermissions(): boolean {
    return this.inner.checksPermissions;
  }

  /** The components of an absolute path. */
  private parts(path: string): string[] {
    if (!path.startsWith('/')) throw new FragfsError('INVALID', `not an absolute path: ${path}`);
    return path.split('/').filter((p) => p.length > 0);
  }

  /** The inode at `path`, by lookups from the root. */
  async ino(path: string): Promise<number> {
    let ino = ROOT_INO;
    for (const part of this.parts(path)) ino = (await this.inner.lookup(ino, enc(part))).ino;
    return ino;
  }

  /** The directory holding the last component of `path`, and that component's bytes. */
  async parent(path: string): Promise<{ parent: number; name: Buffer }> {
    const parts = this.parts(path);
    const last = parts.pop();
    if (last === undefined) throw new FragfsError('BUSY', 'the root has no parent');
    let ino = ROOT_INO;
    for (const part of parts) ino = (await this.inner.lookup(ino, enc(part))).ino;
    return { parent: ino, name: enc(last) };
  }

  private async fhOrPath(path: string, fh: number): Promise<number> {
    return this.fhIno.get(fh) ?? (await this.ino(path));
  }

  async getattr(path: string): Promise<Attr> {
    return this.inner.getattr(await this.ino(path));
  }

  async fgetattr(path: string, fh: number): Promise<Attr> {
    return this.inner.getattr(await this.fhOrPath(path, fh), fh);
  }

  async readdir(path: string): Promise<string[]> {
    return (await this.inner.readdir(await this.ino(path), false)).map((e) => e.name.toString('utf8'));
  }

  async readdirEntries(path: string, plus = false): Promise<DirEntry[]> {
    return this.inner.readdir(await this.ino(path), plus);
  }

  async access(path: string, mode: number): Promise<void> {
    return this.inner.access(await this.ino(path), mode);
  }

  statfs(): Promise<StatFs> {
    return this.inner.statfs();
  }

  async mkdir(path: string, mode: number, caller: Caller): Promise<Attr> {
    const p = await this.parent(path);
    return this.inner.mkdir(p.parent, p.name, mode, caller);
  }

  async rmdir(path: string): Promise<void> {
    const p = await this.parent(path);
    return this.inner.rmdir(p.parent, p.name);
  }

  async mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    const p = await this.parent(path);
    return this.inner.mknod(p.parent, p.name, mode, rdev, caller);
  }

  async create(path: string, mode: number, flags: number, caller: Caller): Promise<number> {
    const p = await this.parent(path);
    const { attr, fh } = await this.inner.create(p.parent, p.name, mode, flags, caller);
    this.fhIno.set(fh, attr.ino);
    return fh;
  }

  async open(path: string, flags: number): Promise<number> {
    const ino = await this.ino(path);
    const fh = await this.inner.open(ino, flags);
    this.fhIno.set(fh, ino);
    return fh;
  }

  async read(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    return this.inner.read(await this.fhOrPath(path, fh), fh, buf, length, position);
  }

  async write(path: string, fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    return this.inner.write(await this.fhOrPath(path, fh), fh, buf, length, position);
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.inner.setattr(await this.ino(path), undefined, { size });
  }

  async ftruncate(path: string, fh: number, size: number): Promise<void> {
    await this.inner.setattr(await this.fhOrPath(path, fh), fh, { size });
  }

  async fallocate(path: string, fh: number, mode: number, offset: number, length: number): Promise<void> {
    await this.inner.fallocate(await this.fhOrPath(path, fh), fh, mode, offset, length);
  }

  async flush(path: string, fh: number): Promise<void> {
    return this.inner.flush(await this.fhOrPath(path, fh), fh);
  }

  async fsync(path: string, fh: number, dataOnly: boolean): Promise<void> {
    return this.inner.fsync(await this.fhOrPath(path, fh), fh, dataOnly);
  }

  async release(path: string, fh: number): Promise<void> {
    const ino = await this.fhOrPath(path, fh);
    await this.inner.release(ino, fh);
    this.fhIno.delete(fh);
  }

  async unlink(path: string): Promise<void> {
    const p = await this.parent(path);
    return this.inner.unlink(p.parent, p.name);
  }

  async rename(from: string, to: string, flags = 0): Promise<void> {
    const a = await this.parent(from);
    const b = await this.parent(to);
    return this.inner.rename(a.parent, a.name, b.parent, b.name, flags);
  }

  async symlink(target: string, path: string, caller: Caller): Promise<Attr> {
    const p = await this.parent(path);
    return this.inner.symlink(p.parent, p.name, enc(target), caller);
  }

  async readlink(path: string): Promise<string> {
    return (await this.inner.readlink(await this.ino(path))).toString('utf8');
  }

  async link(existing: string, path: string): Promise<Attr> {
    const ino = await this.ino(existing);
    const p = await this.parent(path);
    return this.inner.link(ino, p.parent, p.name);
  }

  async chmod(path: string, mode: number): Promise<void> {
    await this.inner.setattr(await this.ino(path), undefined, { mode });
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    await this.inner.setattr(await this.ino(path), undefined, { uid, gid });
  }

  async utimens(path: string, atimeNs: bigint, mtimeNs: bigint): Promise<void> {
    await this.inner.setattr(await this.ino(path), undefined, { atimeNs, mtimeNs });
  }

  async setattr(path: string, fh: number | undefined, changes: AttrChanges): Promise<Attr> {
    const ino = fh === undefined ? await this.ino(path) : await this.fhOrPath(path, fh);
    return this.inner.setattr(ino, fh, changes);
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    return this.inner.setxattr(await this.ino(path), enc(name), value, flags);
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    return this.inner.getxattr(await this.ino(path), enc(name));
  }

  async listxattr(path: string): Promise<string[]> {
    return (await this.inner.listxattr(await this.ino(path))).map((n) => n.toString('utf8'));
  }

  async removexattr(path: string, name: string): Promise<void> {
    return this.inner.removexattr(await this.ino(path), enc(name));
  }

  flushAll(): Promise<void> {
    return this.inner.flushAll();
  }

  snapshot(name?: string): Promise<string> {
    return this.inner.snapshot(name);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
