// What an open handle keeps: fstat, fchmod, fchown, futimens, ftruncate and fsync on a file after its
// name is unlinked or another file is renamed over it, and on a folder after rmdir (ext4 answers all
// of them). Also fallocate (mode 0, KEEP_SIZE, PUNCH_HOLE), renameat2's NOREPLACE and EXCHANGE, and
// the setuid and setgid bits a write by a writer without CAP_FSETID clears.

import test from 'ava';
import { isFragfsError } from '../../src/errors.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, RENAME_EXCHANGE, RENAME_NOREPLACE } from '../../src/vfs/vfs-api.js';
import { ME, O_RDONLY, O_RDWR, fixture, pseudoRandom, readFile, writeFile } from './vfs-helpers.js';

const BS = 64 * 1024;

for (const how of ['unlinked', 'renamed over'] as const) {
  test(`a file ${how} while open: fstat, fchmod, fchown, futimens, ftruncate, write and fsync still work`, async (t) => {
    const fx = await fixture();
    try {
      const v = fx.vfs;
      await writeFile(v, '/f', Buffer.from('hello'));
      await writeFile(v, '/other', Buffer.from('other'));
      const fh = await v.open('/f', O_RDWR);
      const ino = (await v.getattr('/f')).ino;
      if (how === 'unlinked') await v.unlink('/f');
      else await v.rename('/other', '/f');
      const live = fx.live;
      t.is((await live.getattr(ino, fh)).nlink, 0);
      t.is((await live.getattr(ino)).size, 5, 'fstat without the handle too (the kernel may send either)');
      t.is((await live.setattr(ino, fh, { mode: 0o600 })).mode & 0o777, 0o600);
      t.is((await live.setattr(ino, fh, { uid: 1234, gid: 5678 })).uid, 1234);
      t.is((await live.setattr(ino, fh, { atimeNs: 1_000n, mtimeNs: 2_000_000_123n })).mtimeNs, 2_000_000_123n);
      await live.write(ino, fh, Buffer.from('HELLO, world'), 12, 0);
      t.is((await live.setattr(ino, fh, { size: 5 })).size, 5);
      await live.fsync(ino, fh, false);
      const buf = Buffer.alloc(5);
      t.is(await live.read(ino, fh, buf, 5, 0), 5);
      t.is(buf.toString(), 'HELLO');
      await live.release(ino, fh);
      const e = await t.throwsAsync(live.getattr(ino));
      t.true(isFragfsError(e, 'NOT_FOUND'), 'freed at the last release');
      if (how === 'renamed over') t.is((await readFile(v, '/f')).toString(), 'other');
    } finally {
      await fx.done();
    }
  });
}

test('a folder removed while open: fstat, fchmod, fchown and futimens work; it takes no new entries', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    await v.mkdir('/d', 0o755, ME);
    const ino = (await v.getattr('/d')).ino;
    const live = fx.live;
    const fh = await live.open(ino, O_RDONLY);
    await v.rmdir('/d');
    t.is((await live.getattr(ino)).nlink, 0);
    t.is((await live.setattr(ino, undefined, { mode: 0o700 })).mode & 0o777, 0o700);
    t.is((await live.setattr(ino, undefined, { uid: 7 })).uid, 7);
    t.is((await live.setattr(ino, undefined, { mtimeNs: 5_000_000_001n })).mtimeNs, 5_000_000_001n);
    t.deepEqual(await live.readdir(ino, false), []);
    const e = await t.throwsAsync(live.mkdir(ino, Buffer.from('x'), 0o755, ME));
    t.true(isFragfsError(e, 'NOT_FOUND'), String(e));
    await live.release(ino, fh);
    t.true(isFragfsError(await t.throwsAsync(live.getattr(ino)), 'NOT_FOUND'));
    t.is((await v.getattr('/')).nlink, 2);
  } finally {
    await fx.done();
  }
});

test('fallocate: mode 0 extends the size with zeros, KEEP_SIZE changes nothing, PUNCH_HOLE zeroes a range and frees whole blocks', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    const data = pseudoRandom(4 * BS, 3);
    await writeFile(v, '/f', data);
    const fh = await v.open('/f', O_RDWR);
    await v.fallocate('/f', fh, 0, 4 * BS, BS);
    t.is((await v.getattr('/f')).size, 5 * BS);
    await v.fallocate('/f', fh, FALLOC_FL_KEEP_SIZE, 0, 10 * BS);
    t.is((await v.getattr('/f')).size, 5 * BS);
    const before = (await v.getattr('/f')).blocks;
    // From the middle of block 0 to the middle of block 3: blocks 1 and 2 go, 0 and 3 are cut.
    await v.fallocate('/f', fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BS / 2, 3 * BS);
    await v.fsync('/f', fh, false);
    await v.release('/f', fh);
    const want = Buffer.concat([data, Buffer.alloc(BS)]);
    want.fill(0, BS / 2, BS / 2 + 3 * BS);
    t.true((await readFile(v, '/f')).equals(want));
    t.true((await v.getattr('/f')).blocks < before, 'punched blocks are no longer allocated');
    const fh2 = await v.open('/f', O_RDWR);
    for (const mode of [FALLOC_FL_PUNCH_HOLE, 8, 0x10]) {
      const e = await t.throwsAsync(v.fallocate('/f', fh2, mode, 0, 10));
      t.true(isFragfsError(e, 'NOT_SUPPORTED'), `mode ${mode}: ${String(e)}`);
    }
    await v.release('/f', fh2);
    // What a snapshot holds is what was read back.
    const key = await v.snapshot();
    const { SnapshotVfs } = await import('../../src/vfs/snapshot-vfs.js');
    const { PathVfs } = await import('./path-vfs.js');
    t.true((await readFile(new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key })), '/f')).equals(want));
  } finally {
    await fx.done();
  }
});

test('rename NOREPLACE refuses an existing target; EXCHANGE swaps two names, files and folders', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    await writeFile(v, '/a', Buffer.from('A'));
    await writeFile(v, '/b', Buffer.from('B'));
    await v.mkdir('/d', 0o755, ME);
    await writeFile(v, '/d/inside', Buffer.from('I'));
    const e = await t.throwsAsync(v.rename('/a', '/b', RENAME_NOREPLACE));
    t.true(isFragfsError(e, 'EXISTS'), String(e));
    await v.rename('/a', '/c', RENAME_NOREPLACE);
    await v.rename('/c', '/b', RENAME_EXCHANGE);
    t.is((await readFile(v, '/b')).toString(), 'A');
    t.is((await readFile(v, '/c')).toString(), 'B');
    await v.rename('/c', '/d', RENAME_EXCHANGE);
    t.is((await readFile(v, '/d')).toString(), 'B');
    t.is((await readFile(v, '/c/inside')).toString(), 'I');
    t.is((await v.getattr('/')).nlink, 3);
    const e2 = await t.throwsAsync(v.rename('/c', '/nope', RENAME_EXCHANGE));
    t.true(isFragfsError(e2, 'NOT_FOUND'), String(e2));
    const e3 = await t.throwsAsync(v.rename('/b', '/c', RENAME_EXCHANGE | RENAME_NOREPLACE));
    t.true(isFragfsError(e3, 'INVALID'), String(e3));
  } finally {
    await fx.done();
  }
});

test('a write flagged killSuidGid clears setuid, and setgid only with group execute; an unflagged write keeps both', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    const live = fx.live;
    // [mode before, mode after a flagged write]: file_remove_privs() of fs/inode.c.
    const cases: [number, number][] = [
      [0o6755, 0o0755],
      [0o4700, 0o0700],
      [0o2745, 0o2745],
      [0o2775, 0o0775],
      [0o0644, 0o0644],
    ];
    for (const [before, after] of cases) {
      await writeFile(v, '/f', Buffer.from('x'), before);
      await v.chmod('/f', before);
      const ino = (await v.getattr('/f')).ino;
      const fh = await v.open('/f', O_RDWR);
      await live.write(ino, fh, Buffer.from('y'), 1, 1);
      t.is((await live.getattr(ino, fh)).mode & 0o7777, before, `${before.toString(8)}: a write without the flag (a writer with CAP_FSETID)`);
      const ctimeBefore = (await live.getattr(ino, fh)).ctimeNs;
      await live.write(ino, fh, Buffer.from('z'), 1, 2, true);
      const a = await live.getattr(ino, fh);
      t.is(a.mode & 0o7777, after, `${before.toString(8)} after a flagged write`);
      if (after !== before) t.true(a.ctimeNs >= ctimeBefore, 'the mode change moves ctime');
      await live.release(ino, fh);
      t.is((await v.getattr('/f')).mode & 0o7777, after, `${before.toString(8)}: kept after release`);
      t.is((await readFile(v, '/f')).toString(), 'xyz');
      await v.unlink('/f');
    }
  } finally {
    await fx.done();
  }
});
