// Everything fragfs writes in a store is its owner's alone (files 0600, folders 0700) on every
// backend, set where it is created rather than left to the umask; a store with looser modes is
// tightened when opened read-write, and left alone when opened read-only.

import test from 'ava';
import { chmod, lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { StoreLock } from '../../src/repo/store-lock.js';
import type { BackendName } from '../../src/store/store.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

// A permissive umask, as a user's shell has: the modes must not come from it.
process.umask(0o022);

const BACKENDS: BackendName[] = ['lmdb', 'dir', 'split'];

/** Every file and folder under root (root included) with its permission bits. */
async function modesUnder(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>([['.', (await lstat(root)).mode & 0o7777]]);
  for (const name of await readdir(root, { recursive: true })) {
    const st = await lstat(join(root, name));
    if (st.isFile() || st.isDirectory()) out.set(name, (st.mode & 0o7777) | (st.isDirectory() ? 0o40000 : 0));
  }
  return out;
}

function notPrivate(modes: Map<string, number>): string[] {
  return [...modes]
    .filter(([name, m]) => (name === '.' || m & 0o40000 ? (m & 0o7777) !== 0o700 : m !== 0o600))
    .map(([name, m]) => `${name} ${(m & 0o7777).toString(8)}`);
}

async function sampleTree(root: string): Promise<void> {
  await mkdir(join(root, 'sub'), { recursive: true });
  await writeFile(join(root, 'a.txt'), 'hello\n');
  await writeFile(join(root, 'sub', 'b.bin'), Buffer.alloc(300_000, 7));
}

for (const backend of BACKENDS) {
  test(`${backend}: init, put, lock and reopen leave only 0600 files and 0700 folders`, async (t) => {
    const work = await tempDir('fragfs-modes-');
    t.teardown(work.remove);
    const storePath = join(work.path, 'store');
    const tree = join(work.path, 'tree');
    await sampleTree(tree);
    const repo = await Repo.init({ storePath, backend, passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: 65536, threads: 1 });
    await putPaths(repo, [tree], { name: 'one' });
    await repo.close();
    const lock = await StoreLock.acquire({ storePath, space: 'default', purpose: 'test' });
    const held = await modesUnder(storePath);
    await lock.release();
    const again = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 1 });
    await putPaths(again, [tree], { name: 'two', parent: false });
    await again.close();
    const modes = await modesUnder(storePath);
    t.true(modes.size > 5, [...modes.keys()].join(', '));
    t.deepEqual(notPrivate(held), [], 'with the lock held');
    t.deepEqual(notPrivate(modes), []);
  });

  test(`${backend}: a store with loose modes is tightened by a read-write open, not by a read-only one`, async (t) => {
    const work = await tempDir('fragfs-modes-');
    t.teardown(work.remove);
    const storePath = join(work.path, 'store');
    const tree = join(work.path, 'tree');
    await sampleTree(tree);
    const repo = await Repo.init({ storePath, backend, passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: 65536, threads: 1 });
    await putPaths(repo, [tree]);
    await repo.close();
    const lock = await StoreLock.acquire({ storePath, space: 'default', purpose: 'test' });
    await lock.release();
    // As an older fragfs (or a copy made under umask 022) left it: everything readable by all.
    for (const [name, m] of await modesUnder(storePath)) await chmod(join(storePath, name), m & 0o40000 ? 0o755 : 0o644);
    const loose = await modesUnder(storePath);

    const ro = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, readOnly: true, threads: 1 });
    await ro.close();
    t.deepEqual(await modesUnder(storePath), loose, 'a read-only open changes nothing');

    const rw = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 1 });
    await rw.close();
    const tight = await modesUnder(storePath);
    t.deepEqual([...tight.keys()].sort(), [...loose.keys()].sort());
    t.deepEqual(notPrivate(tight), []);
  });
}
