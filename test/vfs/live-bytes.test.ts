// Names are bytes: every byte but '/' and NUL in a name, 255-byte names (256 is ENAMETOOLONG),
// symlink targets and xattr names that are not UTF-8, through the live vfs, a snapshot of it and the
// snapshot vfs, byte for byte. Before names were bytes, `a\xff` and `a\xfe` were one file.

import test from 'ava';
import { isFragfsError } from '../../src/errors.js';
import { SnapshotVfs } from '../../src/vfs/snapshot-vfs.js';
import { ROOT_INO, type Vfs } from '../../src/vfs/vfs-api.js';
import { ME, O_RDONLY, O_WRONLY, fixture } from './vfs-helpers.js';

const b = (...bytes: number[]) => Buffer.from(bytes);

async function put(vfs: Vfs, parent: number, name: Buffer, data: Buffer): Promise<number> {
  const { attr, fh } = await vfs.create(parent, name, 0o644, O_WRONLY, ME);
  await vfs.write(attr.ino, fh, data, data.length, 0);
  await vfs.release(attr.ino, fh);
  return attr.ino;
}

async function get(vfs: Vfs, ino: number): Promise<Buffer> {
  const { size } = await vfs.getattr(ino);
  const fh = await vfs.open(ino, O_RDONLY);
  const buf = Buffer.alloc(size);
  const n = await vfs.read(ino, fh, buf, size, 0);
  await vfs.release(ino, fh);
  return buf.subarray(0, n);
}

/** Every name a directory lists, as hex, sorted. */
async function listed(vfs: Vfs, dir: number): Promise<string[]> {
  return (await vfs.readdir(dir, false)).map((e) => e.name.toString('hex')).sort();
}

test('every byte 0x01-0xFF but / in a name; a\\xff and a\\xfe are two files; live and snapshot agree', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.live;
    const dir = (await v.mkdir(ROOT_INO, b(0x64, 0xe9), 0o755, ME)).ino; // "d\xe9", Latin-1
    const names: Buffer[] = [];
    for (let x = 1; x <= 0xff; x++) {
      if (x === 0x2f) continue;
      names.push(b(0x61, x)); // "a" + the byte: never "." or ".."
    }
    for (const n of names) await put(v, dir, n, Buffer.concat([Buffer.from('content of '), n]));
    t.deepEqual(await listed(v, dir), names.map((n) => n.toString('hex')).sort());
    const ff = (await v.lookup(dir, b(0x61, 0xff))).ino;
    const fe = (await v.lookup(dir, b(0x61, 0xfe))).ino;
    t.not(ff, fe);
    t.deepEqual(await get(v, ff), Buffer.concat([Buffer.from('content of '), b(0x61, 0xff)]));
    t.deepEqual(await get(v, fe), Buffer.concat([Buffer.from('content of '), b(0x61, 0xfe)]));

    // Symlink targets and xattr names that are not UTF-8; a rename to another byte name.
    const target = b(0x2e, 0x2e, 0x2f, 0xc3, 0x28, 0xff);
    await v.symlink(dir, b(0x6c, 0x80), target, ME);
    await v.setxattr(ff, b(0x75, 0x73, 0x65, 0x72, 0x2e, 0xfe), b(1, 2, 3), 0);
    await v.rename(dir, b(0x61, 0x01), dir, b(0x72, 0xf0, 0x9f), 0);
    t.deepEqual(await v.readlink((await v.lookup(dir, b(0x6c, 0x80))).ino), target);
    t.deepEqual(await v.listxattr(ff), [b(0x75, 0x73, 0x65, 0x72, 0x2e, 0xfe)]);

    const key = await v.snapshot();
    const s = await SnapshotVfs.open({ repo: fx.repo, key });
    const sdir = (await s.lookup(ROOT_INO, b(0x64, 0xe9))).ino;
    t.deepEqual(await listed(s, sdir), await listed(v, dir));
    for (const e of await v.readdir(dir, false)) {
      const se = await s.lookup(sdir, e.name);
      if (e.name.equals(b(0x6c, 0x80))) t.deepEqual(await s.readlink(se.ino), target);
      else t.deepEqual(await get(s, se.ino), await get(v, e.ino), e.name.toString('hex'));
    }
    const sff = (await s.lookup(sdir, b(0x61, 0xff))).ino;
    t.deepEqual(await s.getxattr(sff, b(0x75, 0x73, 0x65, 0x72, 0x2e, 0xfe)), b(1, 2, 3));
  } finally {
    await fx.done();
  }
});

test('names of 255 bytes work, 256 is ENAMETOOLONG; "", ".", "..", "/" and NUL are refused', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.live;
    const long = Buffer.alloc(255, 0xe9);
    const ino = await put(v, ROOT_INO, long, Buffer.from('x'));
    t.is((await v.lookup(ROOT_INO, long)).ino, ino);
    for (const op of [
      () => v.mkdir(ROOT_INO, Buffer.alloc(256, 0x61), 0o755, ME),
      () => v.lookup(ROOT_INO, Buffer.alloc(256, 0x61)),
      () => v.create(ROOT_INO, Buffer.alloc(256, 0xe9), 0o644, O_WRONLY, ME),
    ]) {
      const e = await t.throwsAsync(op());
      t.true(isFragfsError(e, 'NAME_TOO_LONG'), String(e));
      t.is((e as { errnoName?: string }).errnoName, 'ENAMETOOLONG');
    }
    for (const bad of [b(), b(0x2e), b(0x2e, 0x2e), b(0x61, 0x2f, 0x62), b(0x61, 0, 0x62)]) {
      const e = await t.throwsAsync(v.mkdir(ROOT_INO, bad, 0o755, ME));
      t.true(isFragfsError(e, 'INVALID'), String(e));
    }
  } finally {
    await fx.done();
  }
});
