// POSIX namespace and attribute semantics of the live vfs: every op with the errno a program expects.

import test from 'ava';
import { isFragfsError, type ErrorCode } from '../../src/errors.js';
import { LiveVfs } from '../../src/vfs/live-vfs.js';
import { PathVfs } from './path-vfs.js';
import { ME, O_APPEND, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, fixture, readFile, writeFile } from './vfs-helpers.js';

async function fails(t: { true(v: boolean, m?: string): void }, p: Promise<unknown>, code: ErrorCode, errno: string): Promise<void> {
  try {
    await p;
    t.true(false, `expected ${code}`);
  } catch (e) {
    t.true(isFragfsError(e, code), `expected ${code}, got ${String(e)}`);
    t.true((e as { errnoName: string }).errnoName === errno, `errno ${errno}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('fresh state: empty root dir owned by owner, mode 0755', async (t) => {
  const fx = await fixture();
  try {
    const a = await fx.vfs.getattr('/');
    t.is(a.mode, 0o040755);
    t.is(a.uid, ME.uid);
    t.is(a.gid, ME.gid);
    t.is(a.nlink, 2);
    t.deepEqual(await fx.vfs.readdir('/'), []);
  } finally {
    await fx.done();
  }
});

test('errnos: ENOENT EEXIST ENOTEMPTY EISDIR ENOTDIR ENAMETOOLONG ENODATA EPERM EINVAL', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await fails(t, v.getattr('/nope'), 'NOT_FOUND', 'ENOENT');
    await fails(t, v.open('/nope', O_RDONLY), 'NOT_FOUND', 'ENOENT');
    await fails(t, v.unlink('/nope'), 'NOT_FOUND', 'ENOENT');
    await v.mkdir('/d', 0o755, ME);
    await fails(t, v.mkdir('/d', 0o755, ME), 'EXISTS', 'EEXIST');
    await writeFile(v, '/d/f', Buffer.from('x'));
    await fails(t, v.create('/d/f', 0o644, O_WRONLY | O_EXCL, ME), 'EXISTS', 'EEXIST');
    await fails(t, v.rmdir('/d'), 'NOT_EMPTY', 'ENOTEMPTY');
    await fails(t, v.unlink('/d'), 'IS_DIR', 'EISDIR');
    await fails(t, v.open('/d', O_WRONLY), 'IS_DIR', 'EISDIR');
    await fails(t, v.rmdir('/d/f'), 'NOT_DIR', 'ENOTDIR');
    await fails(t, v.getattr('/d/f/x'), 'NOT_DIR', 'ENOTDIR');
    await fails(t, v.mkdir('/d/f/x', 0o755, ME), 'NOT_DIR', 'ENOTDIR');
    await fails(t, v.readdir('/d/f'), 'NOT_DIR', 'ENOTDIR');
    await fails(t, v.mkdir('/' + 'a'.repeat(256), 0o755, ME), 'NAME_TOO_LONG', 'ENAMETOOLONG');
    await fails(t, v.create('/' + 'é'.repeat(128), 0o644, O_WRONLY, ME), 'NAME_TOO_LONG', 'ENAMETOOLONG');
    await v.mkdir('/' + 'b'.repeat(255), 0o755, ME);
    await fails(t, v.getxattr('/d/f', 'user.none'), 'NO_ATTR', 'ENODATA');
    await fails(t, v.removexattr('/d/f', 'user.none'), 'NO_ATTR', 'ENODATA');
    await fails(t, v.link('/d', '/d2'), 'NOT_PERMITTED', 'EPERM');
    await v.mkdir('/d/sub', 0o755, ME);
    await fails(t, v.rename('/d', '/d/sub/inner'), 'INVALID', 'EINVAL');
    await fails(t, v.rename('/d', '/d/inner'), 'INVALID', 'EINVAL');
    await fails(t, v.read('/d/f', 99, Buffer.alloc(1), 1, 0), 'BAD_FD', 'EBADF');
  } finally {
    await fx.done();
  }
});

test('rename: over files and empty dirs, across folders; ENOTEMPTY, EISDIR, ENOTDIR', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await v.mkdir('/a', 0o755, ME);
    await v.mkdir('/b', 0o755, ME);
    await writeFile(v, '/a/f', Buffer.from('one'));
    await writeFile(v, '/b/g', Buffer.from('two'));
    await v.rename('/a/f', '/b/g');
    t.is((await readFile(v, '/b/g')).toString(), 'one');
    await fails(t, v.getattr('/a/f'), 'NOT_FOUND', 'ENOENT');
    await v.mkdir('/a/e1', 0o755, ME);
    await v.mkdir('/b/e2', 0o755, ME);
    await v.rename('/a/e1', '/b/e2');
    t.deepEqual((await v.readdir('/a')).sort(), []);
    t.deepEqual((await v.readdir('/b')).sort(), ['e2', 'g']);
    t.is((await v.getattr('/a')).nlink, 2);
    t.is((await v.getattr('/b')).nlink, 3);
    await v.mkdir('/a/full', 0o755, ME);
    await writeFile(v, '/a/full/x', Buffer.from('x'));
    await fails(t, v.rename('/b/e2', '/a/full'), 'NOT_EMPTY', 'ENOTEMPTY');
    await fails(t, v.rename('/b/g', '/b/e2'), 'IS_DIR', 'EISDIR');
    await fails(t, v.rename('/b/e2', '/b/g'), 'NOT_DIR', 'ENOTDIR');
    await v.rename('/a/full', '/b/moved');
    t.is((await readFile(v, '/b/moved/x')).toString(), 'x');
    t.is((await v.getattr('/b')).nlink, 4);
    t.is((await v.getattr('/a')).nlink, 2);
    // rename within one dir and onto itself
    await v.rename('/b/g', '/b/h');
    await v.rename('/b/h', '/b/h');
    t.deepEqual((await v.readdir('/b')).sort(), ['e2', 'h', 'moved']);
  } finally {
    await fx.done();
  }
});

test('hard links: nlink, data shared, last unlink frees, open-but-unlinked stays readable', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await v.mkdir('/x', 0o755, ME);
    await writeFile(v, '/f', Buffer.from('shared data'));
    await v.link('/f', '/x/g');
    const a = await v.getattr('/f');
    t.is(a.nlink, 2);
    t.is((await v.getattr('/x/g')).ino, a.ino);
    await v.unlink('/f');
    t.is((await v.getattr('/x/g')).nlink, 1);
    t.is((await readFile(v, '/x/g')).toString(), 'shared data');
    const fh = await v.open('/x/g', O_RDWR);
    await v.unlink('/x/g');
    await fails(t, v.getattr('/x/g'), 'NOT_FOUND', 'ENOENT');
    const buf = Buffer.alloc(11);
    t.is(await v.read('/x/g', fh, buf, 11, 0), 11);
    t.is(buf.toString(), 'shared data');
    await v.write('/x/g', fh, Buffer.from('S'), 1, 0);
    t.is((await v.fgetattr('/x/g', fh)).nlink, 0);
    await v.release('/x/g', fh);
    t.deepEqual(await v.readdir('/x'), []);
  } finally {
    await fx.done();
  }
});

test('times: write updates mtime+ctime, chmod ctime only, entries change parent mtime+ctime', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await v.mkdir('/d', 0o755, ME);
    await writeFile(v, '/d/f', Buffer.from('a'));
    await v.utimens('/d/f', 1_000_000_000_000n, 2_000_000_000_007n);
    await v.utimens('/d', 1_000_000_000_000n, 2_000_000_000_007n);
    let a = await v.getattr('/d/f');
    t.is(a.mtimeNs, 2_000_000_000_007n, 'to the nanosecond');
    t.is(a.atimeNs, 1_000_000_000_000n);
    await sleep(2);
    await v.chmod('/d/f', 0o600);
    a = await v.getattr('/d/f');
    t.is(a.mode, 0o100600);
    t.is(a.mtimeNs, 2_000_000_000_007n);
    t.true(a.ctimeNs > 2_000_000_000_007n);
    const fh = await v.open('/d/f', O_WRONLY);
    await v.write('/d/f', fh, Buffer.from('b'), 1, 1);
    a = await v.fgetattr('/d/f', fh);
    t.true(a.mtimeNs > 2_000_000_000_007n);
    t.is(a.size, 2);
    await v.release('/d/f', fh);
    t.true((await v.getattr('/d/f')).mtimeNs > 2_000_000_000_007n);
    t.is((await v.getattr('/d')).mtimeNs, 2_000_000_000_007n);
    await writeFile(v, '/d/new', Buffer.alloc(0));
    const d = await v.getattr('/d');
    t.true(d.mtimeNs > 2_000_000_000_007n && d.ctimeNs > 2_000_000_000_007n);
    await v.chown('/d/f', 1234, -1);
    a = await v.getattr('/d/f');
    t.is(a.uid, 1234);
    t.is(a.gid, ME.gid);
    // utimens on an open file with buffered writes wins over the buffered mtime
    const fh2 = await v.open('/d/f', O_WRONLY);
    await v.write('/d/f', fh2, Buffer.from('c'), 1, 2);
    await v.utimens('/d/f', 5_000_000_000n, 6_000_000_000n);
    await v.release('/d/f', fh2);
    t.is((await v.getattr('/d/f')).mtimeNs, 6_000_000_000n);
  } finally {
    await fx.done();
  }
});

test('dir nlink = 2 + subdirs; statfs; access; symlink; mknod; xattrs', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await v.mkdir('/d', 0o755, ME);
    await v.mkdir('/d/a', 0o755, ME);
    await v.mkdir('/d/b', 0o755, ME);
    await writeFile(v, '/d/f', Buffer.from('x'));
    t.is((await v.getattr('/d')).nlink, 4);
    t.is((await v.getattr('/')).nlink, 3);
    await v.rmdir('/d/a');
    t.is((await v.getattr('/d')).nlink, 3);
    const s = await v.statfs();
    t.true(s.files >= 4 && s.ffree > 0 && s.namemax === 255);
    t.true(s.blocks > 0, 'space figures come from the real disk');
    await v.access('/d/f', 4);
    await fails(t, v.access('/d/zz', 0), 'NOT_FOUND', 'ENOENT');
    await v.symlink('../target', '/d/l', ME);
    t.is(await v.readlink('/d/l'), '../target');
    const l = await v.getattr('/d/l');
    t.is(l.mode & 0o170000, 0o120000);
    t.is(l.size, 9);
    await fails(t, v.readlink('/d/f'), 'INVALID', 'EINVAL');
    await v.mknod('/d/fifo', 0o010644, 0, ME);
    t.is((await v.getattr('/d/fifo')).mode, 0o010644);
    await v.mknod('/d/chr', 0o020600, 0x0103, ME);
    t.is((await v.getattr('/d/chr')).rdev, 0x0103);
    await v.setxattr('/d/f', 'user.a', Buffer.from('1'), 0);
    await v.setxattr('/d/f', 'user.b', Buffer.from([0, 255]), 0);
    t.deepEqual((await v.listxattr('/d/f')).sort(), ['user.a', 'user.b']);
    t.deepEqual(await v.getxattr('/d/f', 'user.b'), Buffer.from([0, 255]));
    await fails(t, v.setxattr('/d/f', 'user.a', Buffer.from('2'), 1), 'EXISTS', 'EEXIST');
    await fails(t, v.setxattr('/d/f', 'user.c', Buffer.from('2'), 2), 'NO_ATTR', 'ENODATA');
    await v.removexattr('/d/f', 'user.a');
    t.deepEqual(await v.listxattr('/d/f'), ['user.b']);
  } finally {
    await fx.done();
  }
});

test('open with O_TRUNC truncates; O_APPEND writes at EOF; create on an existing name opens it', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await writeFile(v, '/f', Buffer.from('hello world'));
    let fh = await v.open('/f', O_WRONLY | O_APPEND);
    await v.write('/f', fh, Buffer.from('!!'), 2, 0);
    await v.release('/f', fh);
    t.is((await readFile(v, '/f')).toString(), 'hello world!!');
    fh = await v.open('/f', O_WRONLY | O_TRUNC);
    t.is((await v.fgetattr('/f', fh)).size, 0);
    await v.write('/f', fh, Buffer.from('new'), 3, 0);
    await v.release('/f', fh);
    t.is((await readFile(v, '/f')).toString(), 'new');
    fh = await v.create('/f', 0o644, O_RDWR, ME);
    t.is((await v.fgetattr('/f', fh)).size, 3);
    await v.release('/f', fh);
    fh = await v.open('/f', O_RDONLY);
    await fails(t, v.write('/f', fh, Buffer.from('x'), 1, 0), 'BAD_FD', 'EBADF');
    await v.release('/f', fh);
  } finally {
    await fx.done();
  }
});

test('read-only vfs: every mutation fails EROFS, reads work', async (t) => {
  const fx = await fixture();
  try {
    await fx.vfs.mkdir('/d', 0o755, ME);
    await writeFile(fx.vfs, '/d/f', Buffer.from('data'));
    await fx.vfs.close();
    const v = new PathVfs(await LiveVfs.open({ repo: fx.repo, statePath: fx.statePath, readOnly: true }));
    fx.vfs = v;
    t.true(v.readOnly);
    t.is((await readFile(v, '/d/f')).toString(), 'data');
    await fails(t, v.mkdir('/e', 0o755, ME), 'READ_ONLY', 'EROFS');
    await fails(t, v.create('/e', 0o644, O_WRONLY, ME), 'READ_ONLY', 'EROFS');
    await fails(t, v.open('/d/f', O_WRONLY), 'READ_ONLY', 'EROFS');
    await fails(t, v.unlink('/d/f'), 'READ_ONLY', 'EROFS');
    await fails(t, v.rmdir('/d'), 'READ_ONLY', 'EROFS');
    await fails(t, v.rename('/d/f', '/g'), 'READ_ONLY', 'EROFS');
    await fails(t, v.truncate('/d/f', 0), 'READ_ONLY', 'EROFS');
    await fails(t, v.chmod('/d/f', 0o600), 'READ_ONLY', 'EROFS');
    await fails(t, v.chown('/d/f', 1, 1), 'READ_ONLY', 'EROFS');
    await fails(t, v.utimens('/d/f', 1n, 1n), 'READ_ONLY', 'EROFS');
    await fails(t, v.symlink('x', '/l', ME), 'READ_ONLY', 'EROFS');
    await fails(t, v.link('/d/f', '/l'), 'READ_ONLY', 'EROFS');
    await fails(t, v.mknod('/n', 0o010644, 0, ME), 'READ_ONLY', 'EROFS');
    await fails(t, v.setxattr('/d/f', 'user.a', Buffer.from('1'), 0), 'READ_ONLY', 'EROFS');
    await fails(t, v.removexattr('/d/f', 'user.a'), 'READ_ONLY', 'EROFS');
    await fails(t, v.snapshot(), 'READ_ONLY', 'EROFS');
  } finally {
    await fx.done();
  }
});

test('file handles are small, unique among open handles, reused after release', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await writeFile(v, '/f', Buffer.from('x'));
    const a = await v.open('/f', O_RDONLY);
    const b = await v.open('/f', O_RDONLY);
    t.not(a, b);
    t.true(a >= 0 && b >= 0 && a < 10 && b < 10);
    await v.release('/f', a);
    const c = await v.open('/f', O_RDONLY);
    t.not(c, b);
    await v.release('/f', b);
    await v.release('/f', c);
    await fails(t, v.release('/f', c), 'BAD_FD', 'EBADF');
  } finally {
    await fx.done();
  }
});

test('setattr: mode, owner, size and times in one call; a time not given keeps the open file value; by handle after unlink', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    const fh = await v.create('/f', 0o644, O_RDWR, ME);
    await v.write('/f', fh, Buffer.from('buffered'), 8, 0);
    const before = await v.fgetattr('/f', fh);
    const a = await v.setattr('/f', undefined, { mode: 0o600, uid: 7, gid: 8, atimeNs: 1_000_500_000n });
    t.is(a.mode & 0o7777, 0o600);
    t.is(a.uid, 7);
    t.is(a.gid, 8);
    t.is(a.atimeNs, 1_000_500_000n);
    t.is(a.mtimeNs, before.mtimeNs, 'mtime kept: the open file buffered a write');
    t.is(a.size, 8);
    const cut = await v.setattr('/f', fh, { size: 3, mtimeNs: 5_000_000_000n });
    t.is(cut.size, 3);
    t.is(cut.mtimeNs, 5_000_000_000n);
    await v.unlink('/f');
    const orphan = await v.setattr('/f', fh, { mode: 0o640 });
    t.is(orphan.mode & 0o7777, 0o640, 'an unlinked open file is reached by its handle');
    t.is(orphan.nlink, 0);
    await fails(t, v.setattr('/f', undefined, { mode: 0o600 }), 'NOT_FOUND', 'ENOENT');
    const same = await v.setattr('/', undefined, {});
    t.is(same.ino, 1);
    await v.release('/f', fh);
  } finally {
    await fx.done();
  }
});
