// putPaths and getTree with what a plain tree of files does not hold: FIFOs, sockets and device nodes
// (a FIFO used to abort the put), extended attributes and a POSIX ACL (dropped before), excludes,
// CACHEDIR.TAG folders, --one-file-system over a tmpfs mount, a file read from a stream, and a get
// that meets a damaged block (it used to leave a full-size file of zeros).

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isFragfsError } from '../../src/errors.js';
import { localAddon } from '../helpers/local-addon.js';
import { getToStream, getTree } from '../../src/repo/get.js';
import { ExcludePatterns } from '../../src/repo/exclude-patterns.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { loadSnapshot, readDirEntries } from '../../src/repo/tree-reader.js';
import { canMountTmpfs, tempHasUserXattrs, testIf } from '../helpers/capabilities.js';
import { tempDir } from '../helpers/stores.js';

const isRoot = process.getuid?.() === 0;

async function names(repo: Repo, key: string, path: string[] = []): Promise<string[]> {
  const { snapshot } = await loadSnapshot(repo, key);
  let e = snapshot.root;
  for (const p of path) e = (await readDirEntries(repo, e, '/')).find((c) => c.name.toString() === p)!;
  return (await readDirEntries(repo, e, '/')).map((c) => c.name.toString());
}

/** A socket file at `path`: bound by a child that exits without unlinking it (node's net removes its own). */
async function makeSocket(path: string): Promise<void> {
  if (spawnSync('python3', ['-c', `import socket;s=socket.socket(socket.AF_UNIX);s.bind(${JSON.stringify(path)})`]).status !== 0) {
    throw new Error('cannot make a socket file');
  }
}

test('FIFOs, sockets and (as root) device nodes are stored and come back with their type, mode and device number', async (t) => {
  const work = await tempDir('fragfs-special-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'plain'), 'plain\n');
  t.is(spawnSync('mkfifo', ['-m', '0640', join(tree, 'fifo')]).status, 0);
  await makeSocket(join(tree, 'sock'));
  if (isRoot) t.is(spawnSync('mknod', ['-m', '0620', join(tree, 'tty9'), 'c', '4', '9']).status, 0);
  const repo = await Repo.openMemory({ blockSize: 65536, threads: 1 });
  t.teardown(() => repo.close());
  const put = await putPaths(repo, [tree]);
  t.deepEqual(put.warnings, []);
  const dest = join(work.path, 'out');
  const got = await getTree(repo, put.key, dest);
  t.deepEqual(got.skipped, []);
  const fifo = await lstat(join(dest, 'fifo'));
  t.true(fifo.isFIFO());
  t.is(fifo.mode & 0o7777, 0o640);
  t.true((await lstat(join(dest, 'sock'))).isSocket());
  if (isRoot) {
    const dev = await lstat(join(dest, 'tty9'));
    t.true(dev.isCharacterDevice());
    t.is(dev.rdev, (await lstat(join(tree, 'tty9'))).rdev);
    t.is(dev.mode & 0o7777, 0o620);
  } else t.log('not root: no device node made');
  t.is(await readFile(join(dest, 'plain'), 'utf8'), 'plain\n');
});

testIf(tempHasUserXattrs, "user xattrs on the temp folder's file system")('extended attributes and a POSIX ACL are stored and restored on files, folders and FIFOs', async (t) => {
  const local = await localAddon(t);
  const work = await tempDir('fragfs-xattr-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  const file = join(tree, 'file');
  await writeFile(file, 'content');
  t.is(spawnSync('mkfifo', [join(tree, 'fifo')]).status, 0);
  const big = Buffer.alloc(4000, 7);
  local.lsetxattr(Buffer.from(file), Buffer.from('user.comment'), Buffer.from('hello'));
  local.lsetxattr(Buffer.from(file), Buffer.from('user.binary'), big);
  local.lsetxattr(Buffer.from(join(tree, 'sub')), Buffer.from('user.dir'), Buffer.from(''));
  if (isRoot) local.lsetxattr(Buffer.from(join(tree, 'fifo')), Buffer.from('trusted.fifo'), Buffer.from('f'));
  // An access ACL (version 2): user::rw-, user:1234:r--, group::r--, mask::r--, other::---.
  const acl = Buffer.alloc(4 + 5 * 8);
  acl.writeUInt32LE(2, 0);
  const entries: [number, number, number][] = [
    [0x01, 6, 0xffffffff],
    [0x02, 4, 1234],
    [0x04, 4, 0xffffffff],
    [0x10, 4, 0xffffffff],
    [0x20, 0, 0xffffffff],
  ];
  entries.forEach(([tag, perm, id], i) => {
    acl.writeUInt16LE(tag, 4 + i * 8);
    acl.writeUInt16LE(perm, 6 + i * 8);
    acl.writeUInt32LE(id, 8 + i * 8);
  });
  let hasAcl = true;
  try {
    local.lsetxattr(Buffer.from(file), Buffer.from('system.posix_acl_access'), acl);
  } catch (e) {
    hasAcl = false;
    t.log(`no POSIX ACLs here: ${(e as Error).message}`);
  }
  if (hasAcl) {
    // Setting the ACL made its mask the group bits of the mode.
    t.is((await lstat(file)).mode & 0o070, 0o040);
  }
  const before = new Map(local.lgetxattrs(Buffer.from(file)).map(([n, v]) => [n.toString(), v]));
  const repo = await Repo.openMemory({ blockSize: 65536, threads: 1 });
  t.teardown(() => repo.close());
  const put = await putPaths(repo, [tree]);
  t.deepEqual(put.warnings, []);
  t.deepEqual(put.notices, []);
  const dest = join(work.path, 'out');
  const got = await getTree(repo, put.key, dest);
  t.deepEqual(got.warnings, []);
  const after = new Map(local.lgetxattrs(Buffer.from(join(dest, 'file'))).map(([n, v]) => [n.toString(), v]));
  t.deepEqual(after.get('user.comment'), Buffer.from('hello'));
  t.deepEqual(after.get('user.binary'), big);
  if (hasAcl) {
    t.deepEqual(after.get('system.posix_acl_access'), before.get('system.posix_acl_access'));
    t.is((await lstat(join(dest, 'file'))).mode & 0o777, (await lstat(file)).mode & 0o777);
  }
  t.deepEqual(new Map(local.lgetxattrs(Buffer.from(join(dest, 'sub'))).map(([n, v]) => [n.toString(), v])).get('user.dir'), Buffer.alloc(0));
  if (isRoot) t.deepEqual(local.lgetxattrs(Buffer.from(join(dest, 'fifo'))).find(([n]) => n.toString() === 'trusted.fifo')?.[1], Buffer.from('f'));
});

testIf(canMountTmpfs && tempHasUserXattrs, 'root to mount a file system without user xattrs (a ramfs), and user xattrs on the temp folder')('xattrs a target refuses are summed up as warnings, and the files are restored', async (t) => {
  const local = await localAddon(t);
  const work = await tempDir('fragfs-xattr-refused-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  for (const n of ['a', 'b']) {
    await writeFile(join(tree, n), n);
    local.lsetxattr(Buffer.from(join(tree, n)), Buffer.from('user.x'), Buffer.from('1'));
  }
  const repo = await Repo.openMemory({ blockSize: 65536, threads: 1 });
  t.teardown(() => repo.close());
  const put = await putPaths(repo, [tree]);
  // A proc-like target without user xattrs: a tmpfs mounted without them is not on every kernel, so
  // a ramfs (no xattrs at all) stands in.
  const mnt = join(work.path, 'mnt');
  await mkdir(mnt);
  const ramfs = spawnSync('mount', ['-t', 'ramfs', 'ramfs', mnt], { encoding: 'utf8' });
  t.is(ramfs.status, 0, `root, yet no ramfs mounts here: ${ramfs.stderr}`);
  if (ramfs.status !== 0) return;
  t.teardown(() => void spawnSync('umount', [mnt]));
  const got = await getTree(repo, put.key, join(mnt, 'out'));
  t.is(got.files, 2);
  t.is(got.warnings.length, 1, got.warnings.join('\n'));
  t.regex(got.warnings[0]!, /user\.x of \/[ab] not restored \(E[A-Z]+\), and 1 more/);
  t.is(await readFile(join(mnt, 'out', 'b'), 'utf8'), 'b');
});

test('--exclude patterns, an exclude list and CACHEDIR.TAG folders leave paths out; the named path never is', async (t) => {
  const work = await tempDir('fragfs-exclude-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  await mkdir(join(tree, 'src', 'build'), { recursive: true });
  await mkdir(join(tree, 'cache'));
  await mkdir(join(tree, 'fake-cache'));
  await writeFile(join(tree, 'keep.txt'), 'k');
  await writeFile(join(tree, 'debug.log'), 'l');
  await writeFile(join(tree, 'src', 'main.c'), 'c');
  await writeFile(join(tree, 'src', 'main.o'), 'o');
  await writeFile(join(tree, 'src', 'build', 'out'), 'b');
  await writeFile(join(tree, 'cache', 'CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n');
  await writeFile(join(tree, 'cache', 'blob'), 'x'.repeat(1000));
  await writeFile(join(tree, 'fake-cache', 'CACHEDIR.TAG'), 'Signature: not the one\n');
  await writeFile(join(tree, 'fake-cache', 'blob'), 'y');
  const repo = await Repo.openMemory({ blockSize: 65536, threads: 1 });
  t.teardown(() => repo.close());
  const put = await putPaths(repo, [tree], {
    exclude: new ExcludePatterns(['*.log', '*.o', 'src/build']),
    excludeCaches: true,
    parent: false,
  });
  t.deepEqual(await names(repo, put.key), ['cache', 'fake-cache', 'keep.txt', 'src']);
  t.deepEqual(await names(repo, put.key, ['src']), ['main.c']);
  t.deepEqual(await names(repo, put.key, ['cache']), ['CACHEDIR.TAG']);
  t.deepEqual(await names(repo, put.key, ['fake-cache']), ['CACHEDIR.TAG', 'blob']);
  t.is(put.files, 5);
  // Anchored patterns match from /; a pattern matching the named path itself does not drop it.
  const anchored = await putPaths(repo, [tree], { exclude: new ExcludePatterns([join(tree, 'src'), `${tree}/**/*.txt`, 'tree']), parent: false });
  t.deepEqual(await names(repo, anchored.key), ['cache', 'debug.log', 'fake-cache']);
  const none = await putPaths(repo, [tree], { parent: false });
  t.deepEqual(await names(repo, none.key), ['cache', 'debug.log', 'fake-cache', 'keep.txt', 'src']);
});

test('exclude globs: components, **, classes, quoting, bytes that are not UTF-8', (t) => {
  const m = (patterns: string[], path: string | Buffer): boolean => new ExcludePatterns(patterns).matches(typeof path === 'string' ? Buffer.from(path) : path);
  t.true(m(['*.log'], '/a/b/x.log'));
  t.false(m(['*.log'], '/a/b/x.log.1'));
  t.false(m(['*.log'], '/a/x.log/y'));
  t.true(m(['b/*.log'], '/a/b/x.log'));
  t.false(m(['b/*.log'], '/a/cb/x.log'));
  t.true(m(['/a/**/x'], '/a/x'));
  t.true(m(['/a/**/x'], '/a/b/c/x'));
  t.false(m(['/a/**/x'], '/b/a/x'));
  t.true(m(['node_modules/'], '/p/node_modules'));
  t.true(m(['file[0-9]'], '/p/file7'));
  t.false(m(['file[!0-9]'], '/p/file7'));
  t.true(m(['a\\*b'], '/p/a*b'));
  t.false(m(['a\\*b'], '/p/axb'));
  t.true(m(['caf?'], Buffer.concat([Buffer.from('/p/caf'), Buffer.from([0xe9])])));
  t.true(m(['café'], '/p/café'));
  t.throws(() => new ExcludePatterns(['a[b']), { message: /unclosed \[/ });
  t.throws(() => new ExcludePatterns(['']), { message: /empty pattern/ });
});

testIf(canMountTmpfs, 'mounting a tmpfs (root)')('--one-file-system stores a mount point as an empty folder and does not enter it', async (t) => {
  const work = await tempDir('fragfs-onefs-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  const mnt = join(tree, 'mnt');
  await mkdir(mnt, { recursive: true });
  await writeFile(join(tree, 'here'), 'h');
  t.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status, 0);
  t.teardown(() => void spawnSync('umount', [mnt]));
  await writeFile(join(mnt, 'elsewhere'), 'e');
  const repo = await Repo.openMemory({ blockSize: 65536, threads: 1 });
  t.teardown(() => repo.close());
  const put = await putPaths(repo, [tree], { oneFileSystem: true, parent: false });
  t.deepEqual(await names(repo, put.key), ['here', 'mnt']);
  t.deepEqual(await names(repo, put.key, ['mnt']), []);
  t.is(put.files, 1);
  const all = await putPaths(repo, [tree], { parent: false });
  t.deepEqual(await names(repo, all.key, ['mnt']), ['elsewhere']);
  // The mount point named itself is the root: its own file system.
  const inner = await putPaths(repo, [mnt], { oneFileSystem: true, parent: false });
  t.deepEqual(await names(repo, inner.key), ['elsewhere']);
});

test('a stream is stored as one file (put -) and comes back whole, also through getToStream', async (t) => {
  const repo = await Repo.openMemory({ blockSize: 65536, threads: 1 });
  t.teardown(() => repo.close());
  const chunks = [Buffer.alloc(100_000, 1), Buffer.alloc(70_000, 0), Buffer.from('tail')];
  const put = await putPaths(repo, [], { stdin: { stream: Readable.from(chunks), name: Buffer.from('dump.sql') } });
  t.is(put.files, 1);
  t.is(put.logicalBytes, 170_004);
  const { snapshot } = await loadSnapshot(repo, put.key);
  t.is(snapshot.root.name.toString(), 'dump.sql');
  t.is(snapshot.root.type, 'file');
  const out: Buffer[] = [];
  const r = await getToStream(repo, put.key, [], async (c) => void out.push(Buffer.from(c)));
  t.is(r.plainBytes, 170_004);
  t.deepEqual(Buffer.concat(out), Buffer.concat(chunks));
  const work = await tempDir('fragfs-stdin-');
  t.teardown(work.remove);
  await getTree(repo, put.key, join(work.path, 'dump.sql'));
  t.deepEqual(await readFile(join(work.path, 'dump.sql')), Buffer.concat(chunks));
  const empty = await putPaths(repo, [], { stdin: { stream: Readable.from([]), name: Buffer.from('empty') } });
  t.is(empty.logicalBytes, 0);
  await t.throwsAsync(putPaths(repo, [], { stdin: { stream: Readable.from([]), name: Buffer.from('a/b') } }), { message: /--stdin-name/ });
});

test('a get that meets a damaged block leaves no file at that name and no temporary file', async (t) => {
  const work = await tempDir('fragfs-get-damaged-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'good'), Buffer.alloc(100_000, 3));
  const bad = Buffer.alloc(300_000);
  for (let i = 0; i < bad.length; i++) bad[i] = (i * 7919) % 251;
  await writeFile(join(tree, 'bad'), bad);
  const repo = await Repo.openMemory({ blockSize: 65536, threads: 1 });
  t.teardown(() => repo.close());
  const put = await putPaths(repo, [tree]);
  // Damage the last data block of `bad` in the store.
  const { snapshot } = await loadSnapshot(repo, put.key);
  const entry = (await readDirEntries(repo, snapshot.root, '/')).find((e) => e.name.toString() === 'bad')!;
  const last = entry.blocks![entry.blocks!.length - 1]!;
  const stored = Buffer.from(await repo.store.get(repo.dataNs, last.id));
  stored[stored.length - 1]! ^= 0x01;
  await repo.store.delete(repo.dataNs, last.id);
  await repo.store.put(repo.dataNs, last.id, stored);
  const dest = join(work.path, 'out');
  const e = await t.throwsAsync(getTree(repo, put.key, dest));
  t.true(isFragfsError(e, 'CORRUPT'), String(e));
  const left = await readdir(dest);
  t.false(left.includes('bad'), `left: ${left.join(', ')}`);
  t.deepEqual(left.filter((n) => n.startsWith('.fragfs-get-')), []);
  await rm(dest, { recursive: true });
});
