// The live state at rest: after a session that creates names, contents, symlinks and xattrs, no
// file under the store folder holds any of them, nor a block key, nor (in the live state) a fragment
// id; the state's files are 0600 and its folders 0700; a state opened with another space's keys
// is refused; and a clear live state of an earlier version is converted, then gone.

import test from 'ava';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { isFragfsError } from '../../src/errors.js';
import { readExtents } from '../../src/repo/tree-writer.js';
import { walkTree } from '../../src/repo/tree-reader.js';
import { S_IFDIR, S_IFLNK, S_IFREG } from '../../src/vfs/inode.js';
import { LiveVfs, stateDirOf } from '../../src/vfs/live-vfs.js';
import { ME, O_RDONLY, fixture, pseudoRandom, readFile as readVfsFile, writeFile } from './vfs-helpers.js';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(p, ...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

async function containing(paths: string[], needle: Buffer): Promise<string[]> {
  const hits: string[] = [];
  for (const p of paths) {
    if ((await stat(p)).isDirectory()) continue;
    if ((await readFile(p)).includes(needle)) hits.push(p);
  }
  return hits;
}

test('no name, content, symlink target, xattr, block key or id in the live state; files 0600, folders 0700', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    const needles: [string, Buffer][] = [];
    const secretName = 'quarterly-layoffs-draft.docx';
    const text = Buffer.from('SECRET-CONTENT-of-the-board-minutes '.repeat(2000));
    const random = pseudoRandom(200_000, 99);
    await v.mkdir('/private-folder-name', 0o700, ME);
    await writeFile(v, `/private-folder-name/${secretName}`, text);
    await writeFile(v, '/private-folder-name/noise.bin', random);
    await v.symlink('/home/ada/secret-symlink-target', '/private-folder-name/link-name-secret', ME);
    await v.setxattr(`/private-folder-name/${secretName}`, 'user.secret-xattr-name', Buffer.from('secret-xattr-value'), 0);
    const key = await v.snapshot('session');
    needles.push(
      ['folder name', Buffer.from('private-folder-name')],
      ['file name', Buffer.from(secretName)],
      ['symlink name', Buffer.from('link-name-secret')],
      ['symlink target', Buffer.from('secret-symlink-target')],
      ['xattr name', Buffer.from('secret-xattr-name')],
      ['xattr value', Buffer.from('secret-xattr-value')],
      ['text content', Buffer.from('SECRET-CONTENT')],
      ['random content', random.subarray(1000, 1032)],
      ['passphrase', Buffer.from('vfs test')],
    );
    // Block keys (what decrypts a block) appear nowhere; fragment ids appear nowhere in the live state.
    const snap = await fx.repo.getMeta(key, 'snapshot');
    const ids: Buffer[] = [];
    await walkTree(fx.repo, snap.root, {
      entry: async (e) => {
        if (e.type !== 'file') return;
        for (const x of await readExtents(fx.repo, e)) {
          needles.push([`block key of ${x.id.slice(0, 8)}`, Buffer.from(x.key)]);
          ids.push(Buffer.from(x.id, 'hex'));
        }
      },
    });
    t.true(ids.length >= 2);
    await fx.vfs.close();
    const all = await filesUnder(fx.dir);
    for (const [what, needle] of needles) t.deepEqual(await containing(all, needle), [], `${what} is readable`);
    const liveFiles = await filesUnder(fx.statePath);
    for (const id of ids) t.deepEqual(await containing(liveFiles, id), [], 'a fragment id is in the live state');
    for (const p of [fx.statePath, ...liveFiles]) {
      const st = await stat(p);
      if (p === fx.statePath && st.isDirectory()) continue; // made by the test's fixture
      t.is(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, `${p} is ${(st.mode & 0o777).toString(8)}`);
    }
  } finally {
    await fx.done();
  }
});

test('a live state opened with another space keys is refused, not misread', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    await writeFile(fx.vfs, '/f', Buffer.from('x'));
    await fx.vfs.close();
    const { Repo } = await import('../../src/repo/repo.js');
    const other = await Repo.openMemory({ blockSize: 64 * 1024 });
    const e = await t.throwsAsync(LiveVfs.open({ repo: other, statePath: fx.statePath, owner: ME }));
    t.true(isFragfsError(e, 'BAD_STORE'), String(e));
    t.regex(String(e?.message), /does not belong/);
    await other.close();
    await fx.reopen();
  } finally {
    await fx.done();
  }
});

test('a clear live state of an earlier fragfs is converted on the first read-write open, then removed', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    await fx.vfs.close();
    // The clear layout: named databases directly in the live folder (what fragfs wrote before).
    const old = openLmdb({ path: fx.statePath, maxDbs: 16 });
    const inodes = old.openDB<Record<string, unknown>, number>({ name: 'inodes' });
    const dirents = old.openDB<number, Buffer>({ name: 'dirents', keyEncoding: 'binary' });
    const xattrs = old.openDB<Buffer, Buffer>({ name: 'xattrs', keyEncoding: 'binary', encoding: 'binary' });
    const counters = old.openDB<number, string>({ name: 'counters' });
    old.openDB({ name: 'extents', keyEncoding: 'binary', encoding: 'binary' });
    old.openDB({ name: 'orphans' });
    const now = Date.now();
    const base = { uid: ME.uid, gid: ME.gid, size: 0, atimeMs: now, mtimeMs: 1_700_000_000_123.5, ctimeMs: now, alloc: 0 };
    const key = (ino: number, name: string) => Buffer.concat([Buffer.from([0, 0, 0, 0, 0, ino]), Buffer.from(name)]);
    await old.transaction(() => {
      inodes.put(1, { ...base, mode: S_IFDIR | 0o755, nlink: 3, parents: [] });
      inodes.put(2, { ...base, mode: S_IFDIR | 0o750, nlink: 2, parents: [1] });
      inodes.put(3, { ...base, mode: S_IFLNK | 0o777, nlink: 1, size: 6, parents: [2], target: 'a/b/cé' });
      inodes.put(4, { ...base, mode: S_IFREG | 0o640, nlink: 1, parents: [2] });
      dirents.put(key(1, 'old-dir'), 2);
      dirents.put(key(2, 'link'), 3);
      dirents.put(key(2, 'empty'), 4);
      xattrs.put(key(4, 'user.k'), Buffer.from('v'));
      counters.put('nextIno', 5);
    });
    await old.close();
    const v = await fx.reopen();
    t.deepEqual((await v.readdir('/old-dir')).sort(), ['empty', 'link']);
    t.is(await v.readlink('/old-dir/link'), 'a/b/cé');
    t.is((await v.getattr('/old-dir')).mode, S_IFDIR | 0o750);
    t.is((await v.getattr('/old-dir/empty')).mtimeNs, 1_700_000_000_123_500_000n);
    t.deepEqual(await v.getxattr('/old-dir/empty', 'user.k'), Buffer.from('v'));
    const made = await v.mkdir('/new', 0o755, ME);
    t.true(made.ino >= 5, 'inode numbers continue after the converted ones');
    t.deepEqual((await readdir(fx.statePath)).filter((f) => f.endsWith('.mdb')), [], 'the clear files are gone');
    t.truthy(await stat(stateDirOf(fx.statePath)));
    const fh = await v.open('/old-dir/empty', O_RDONLY);
    await v.release('/old-dir/empty', fh);
    t.is((await readVfsFile(v, '/old-dir/empty')).length, 0);
  } finally {
    await fx.done();
  }
});
