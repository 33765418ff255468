// lstatPaths and scanFolder: the addon's batched lstat (local-fs.c, lstatMany, scanDir) answers what
// node:fs's lstat and the addon's lgetxattrs answer, path by path, for every kind of entry, failures
// included, and for names that are not UTF-8; a batch far larger than one folder's comes back whole
// and in order; a folder is listed as node:fs lists it.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { localAddon } from '../helpers/local-addon.js';
import { lstatPaths, scanFolder } from '../../src/local/source-stat.js';
import { tempDir } from '../helpers/stores.js';

test('each entry kind, a missing path, a path through a file and a non-UTF-8 name: the same answers as node:fs', async (t) => {
  const local = await localAddon(t);
  const tmp = await tempDir('lstat-many-');
  t.teardown(tmp.remove);
  const dir = tmp.path;
  const file = join(dir, 'file');
  await writeFile(file, 'twelve bytes');
  await mkdir(join(dir, 'sub'));
  await symlink('file', join(dir, 'link'));
  t.is(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0);
  const odd = Buffer.concat([Buffer.from(dir + '/caf'), Buffer.from([0xe9])]);
  await writeFile(odd, 'x');
  local.lsetxattr(Buffer.from(file), Buffer.from('user.one'), Buffer.from('first'));
  local.lsetxattr(Buffer.from(file), Buffer.from('user.two'), Buffer.alloc(0));
  local.lsetxattr(odd, Buffer.from('user.bytes'), Buffer.from([0, 0xff, 1]));
  const paths = [file, join(dir, 'sub'), join(dir, 'link'), join(dir, 'fifo'), join(dir, 'missing'), join(file, 'inside')].map((p) => Buffer.from(p));
  paths.push(odd);

  const batched = await lstatPaths(local, paths, true);
  const plain = await lstatPaths(undefined, paths, false);
  t.is(batched.length, paths.length);
  for (const [i, path] of paths.entries()) {
    const a = batched[i]!;
    const b = plain[i]!;
    if (b.st === undefined) {
      t.is(a.st, undefined, path.toString('latin1'));
      if (a.st === undefined) t.is(a.error.code, b.error.code, path.toString('latin1'));
      continue;
    }
    t.deepEqual(a.st, b.st, path.toString('latin1'));
    const st = await lstat(path, { bigint: true });
    t.is(a.st?.mtimeNs, st.mtimeNs);
    t.is(a.st?.ctimeNs, st.ctimeNs, 'ctime: the source tag of a folder holds it');
    if (a.st !== undefined) t.deepEqual(a.xattrs ?? [], local.lgetxattrs(path), path.toString('latin1'));
  }
  t.is(batched[4]!.st === undefined ? batched[4]!.error.code : 'found', 'ENOENT');
  t.is(batched[5]!.st === undefined ? batched[5]!.error.code : 'found', 'ENOTDIR');
  t.deepEqual(
    batched[0]!.st === undefined ? [] : batched[0]!.xattrs?.map(([n, v]) => `${n.toString()}=${v.toString()}`).sort(),
    ['user.one=first', 'user.two='],
  );
  t.deepEqual(batched[6]!.st === undefined ? undefined : batched[6]!.xattrs, [[Buffer.from('user.bytes'), Buffer.from([0, 0xff, 1])]]);
});

test('a batch of 3,000 paths, every fifth one missing, comes back in order', async (t) => {
  const local = await localAddon(t);
  const tmp = await tempDir('lstat-many-big-');
  t.teardown(tmp.remove);
  const dir = tmp.path;
  const paths: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    const p = join(dir, `f${i}`);
    if (i % 5 !== 0) await writeFile(p, Buffer.alloc(i));
    paths.push(Buffer.from(p));
  }
  const found = await lstatPaths(local, paths, true);
  t.is(found.length, 3000);
  t.true(found.every((f, i) => (i % 5 === 0 ? f.st === undefined && f.error.code === 'ENOENT' : f.st?.size === i)));
});

test('lstatMany refuses paths that do not match the count, before any call', async (t) => {
  const local = await localAddon(t);
  t.throws(() => local.lstatMany(Buffer.from('/a\0/b\0'), 3, false), { message: /NUL-terminated/ });
  t.throws(() => local.lstatMany(Buffer.from('/a\0/b'), 1, false), { message: /NUL-terminated/ });
});

test('scanFolder: the addon lists and lstats a folder as node:fs does, names as bytes, attributes included; a missing folder throws ENOENT', async (t) => {
  const local = await localAddon(t);
  const tmp = await tempDir('scan-folder-');
  t.teardown(tmp.remove);
  const dir = tmp.path;
  await writeFile(join(dir, 'plain'), 'x');
  await mkdir(join(dir, 'sub'));
  await symlink('nowhere', join(dir, 'dangling'));
  const odd = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x61, 0xff, 0xfe])]);
  await writeFile(odd, 'latin');
  local.lsetxattr(odd, Buffer.from('user.k'), Buffer.from([1, 2, 3]));
  for (let i = 0; i < 1500; i++) await writeFile(join(dir, `n${i}`), Buffer.alloc(i % 7));

  const byAddon = await scanFolder(local, Buffer.from(dir), true);
  const byNode = await scanFolder(undefined, Buffer.from(dir), false);
  const table = (s: typeof byAddon): [string, unknown][] => s.names.map((n, i): [string, unknown] => [n.toString('latin1'), s.found[i]!.st]).sort((x, y) => (x[0] < y[0] ? -1 : 1));
  t.is(byAddon.names.length, 1504);
  t.deepEqual(table(byAddon), table(byNode));
  const at = byAddon.names.findIndex((n) => n.equals(Buffer.from([0x61, 0xff, 0xfe])));
  const f = byAddon.found[at]!;
  t.deepEqual(f.st === undefined ? undefined : f.xattrs, [[Buffer.from('user.k'), Buffer.from([1, 2, 3])]]);
  const e = await t.throwsAsync(scanFolder(local, Buffer.from(join(dir, 'missing')), true));
  t.is((e as NodeJS.ErrnoException).code, 'ENOENT');
  const e2 = await t.throwsAsync(scanFolder(local, Buffer.from(join(dir, 'plain')), false));
  t.is((e2 as NodeJS.ErrnoException).code, 'ENOTDIR');
});
