// The store folder after init, put and snapshot through the CLI, on every backend: every file 0600
// and every folder 0700, the live state included. And `get` restores the modes a snapshot recorded
// exactly, though the CLI runs with umask 077.

import test from 'ava';
import { chmod, lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FAST_KDF, lastLine, runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

const BACKENDS = ['lmdb', 'dir', 'split'] as const;

async function notPrivate(root: string): Promise<string[]> {
  const bad: string[] = [];
  const check = async (rel: string) => {
    const st = await lstat(join(root, rel));
    const mode = st.mode & 0o7777;
    if (st.isDirectory() ? mode !== 0o700 : st.isFile() || st.isSocket() ? mode !== 0o600 : false) bad.push(`${rel} ${mode.toString(8)}`);
  };
  await check('.');
  for (const rel of await readdir(root, { recursive: true })) await check(rel);
  return bad;
}

for (const backend of BACKENDS) {
  test(`${backend}: init, put and snapshot leave only 0600 files and 0700 folders in the store`, async (t) => {
    const work = await tempDir('fragfs-cli-modes-');
    t.teardown(work.remove);
    const store = join(work.path, 'store');
    const tree = join(work.path, 'tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    await writeFile(join(tree, 'a.txt'), 'hello\n');
    await writeFile(join(tree, 'sub', 'b.txt'), 'world\n');
    const init = await runCli(['init', store, '--backend', backend, ...FAST_KDF]);
    t.is(init.code, 0, init.stderr);
    const put = await runCli(['put', store, tree, '--name', 'one']);
    t.is(put.code, 0, put.stderr);
    const snap = await runCli(['snapshot', store, '--name', 'live']);
    t.is(snap.code, 0, snap.stderr);
    const names = await readdir(store, { recursive: true });
    t.true(names.some((n) => n.startsWith('live/default/')), `the live state is there: ${names.join(', ')}`);
    t.deepEqual(await notPrivate(store), []);
  });
}

test('get restores the modes a snapshot recorded, whatever the umask', async (t) => {
  const work = await tempDir('fragfs-cli-modes-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  const tree = join(work.path, 'tree');
  const modes: [string, 'file' | 'dir', number][] = [
    ['.', 'dir', 0o755],
    ['shared.txt', 'file', 0o644],
    ['run.sh', 'file', 0o755],
    ['group', 'dir', 0o750],
    ['group/notes.txt', 'file', 0o640],
    ['private.txt', 'file', 0o600],
    ['read-only.txt', 'file', 0o444],
    ['sticky', 'dir', 0o1777],
    ['setuid', 'file', 0o4755],
    ['setgid-dir', 'dir', 0o2775],
  ];
  await mkdir(tree);
  for (const [rel, kind] of modes) {
    if (rel === '.') continue;
    if (kind === 'dir') await mkdir(join(tree, rel));
    else await writeFile(join(tree, rel), `${rel}\n`);
  }
  for (const [rel, , mode] of [...modes].reverse()) await chmod(join(tree, rel), mode);
  await createStore(store, 'dir');
  const put = await runCli(['put', store, tree]);
  t.is(put.code, 0, put.stderr);
  const dest = join(work.path, 'restored');
  const get = await runCli(['get', store, lastLine(put.stdout), dest]);
  t.is(get.code, 0, get.stderr);
  for (const [rel, , mode] of modes) {
    t.is(((await lstat(join(dest, rel))).mode & 0o7777).toString(8), mode.toString(8), rel);
  }
});
