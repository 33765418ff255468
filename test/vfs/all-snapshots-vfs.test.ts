// AllSnapshotsVfs without a kernel: its folders are made from the refs (no snapshot object read to
// list or to look up a snapshot's folder), a tree is opened on the first lookup inside it, inode
// numbers inside trees are distinct per snapshot, and every change is refused with READ_ONLY.

import test from 'ava';
import { join } from 'node:path';
import { putPaths } from '../../src/repo/put.js';
import { writeSnapshot } from '../../src/repo/tree-writer.js';
import { AllSnapshotsVfs, timeFolderName } from '../../src/vfs/all-snapshots-vfs.js';
import { ROOT_INO } from '../../src/vfs/vfs-api.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { createStore, openStore, tempDir } from '../helpers/stores.js';

test('listing and looking up snapshot folders reads no snapshot object; a tree opens on first lookup inside', async (t) => {
  const work = await tempDir('fragfs-all-vfs-');
  t.teardown(() => work.remove());
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'f.txt'), 'hello\n');
  const repo = await openStore(store);
  t.teardown(() => repo.close());
  const first = await putPaths(repo, [Buffer.from(tree)], { name: 'first' });
  const root = (await repo.getMeta(first.key, 'snapshot')).root;
  const base = Date.parse('2021-06-01T12:00:00Z');
  for (let i = 0; i < 50; i++) await writeSnapshot(repo, root, { source: [Buffer.from(tree)], files: 1, dirs: 0, logicalBytes: 6, createdMs: base + i * 1000 });

  const vfs = await AllSnapshotsVfs.open({ repo });
  t.teardown(() => vfs.close());
  let snapshotReads = 0;
  const getMeta = repo.getMeta.bind(repo);
  repo.getMeta = (async (id: string, kind: 'snapshot', where?: string) => {
    if (kind === 'snapshot') snapshotReads++;
    return getMeta(id, kind, where);
  }) as typeof repo.getMeta;

  const top = await vfs.readdir(ROOT_INO, true);
  t.deepEqual(top.map((d) => d.name.toString()), ['by-name', 'by-time', 'latest']);
  const byTime = top.find((d) => d.name.toString() === 'by-time')!;
  const folders = await vfs.readdir(byTime.ino, true);
  t.is(folders.length, 51);
  const folder = await vfs.lookup(byTime.ino, Buffer.from(timeFolderName(base + 7000)));
  t.is(snapshotReads, 0, 'folders come from the refs');

  const a = await vfs.lookup(folder.ino, Buffer.from('f.txt'));
  t.is(snapshotReads, 1, 'the tree opened on the first lookup inside it');
  const other = await vfs.lookup(folders[3]!.ino, Buffer.from('f.txt'));
  t.not(a.ino, other.ino, 'one file in two snapshots is two inodes');
  const fh = await vfs.open(a.ino, 0);
  const buf = Buffer.alloc(16);
  t.is(await vfs.read(a.ino, fh, buf, 16, 0), 6);
  t.is(buf.subarray(0, 6).toString(), 'hello\n');
  await vfs.release(a.ino, fh);

  const byName = top.find((d) => d.name.toString() === 'by-name')!;
  const link = await vfs.lookup(byName.ino, Buffer.from('first'));
  t.is((await vfs.readlink(link.ino)).toString(), `../by-time/${folders[folders.length - 1]!.name.toString()}`);
  await t.throwsAsync(vfs.mkdir(folder.ino, Buffer.from('x'), 0o755, { uid: 0, gid: 0 }), { code: 'READ_ONLY' });
  await t.throwsAsync(vfs.open(a.ino, 1), { code: 'READ_ONLY' });
  await t.throwsAsync(vfs.lookup(byTime.ino, Buffer.from('1999-01-01T00:00:00Z')), { code: 'NOT_FOUND' });
});
