// A path that holds no store (or a store already there, for init) is said before a passphrase is
// asked for: no prompt, no KDF, and nothing created at that path.

import test from 'ava';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

let work: Awaited<ReturnType<typeof tempDir>>;

test.before(async () => {
  work = await tempDir('fragfs-no-store-');
});

test.after.always(async () => {
  await work?.remove();
});

// No passphrase in the environment and no terminal: before the fix these asked for one (exit 4).
const NO_PASSPHRASE = { env: { FRAGFS_PASSPHRASE: undefined } };

test('commands on a folder without a store say so first (exit 3), and leave the folder as it was', async (t) => {
  const empty = join(work.path, 'empty');
  await mkdir(empty);
  for (const args of [
    ['snapshots', join(work.path, 'nostore')],
    ['snapshots', empty],
    ['ls', empty, 'monday'],
    ['put', empty, work.path],
    ['verify', empty],
    ['stats', empty],
    ['snapshot', empty],
  ]) {
    const r = await runCli(args, NO_PASSPHRASE);
    t.is(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^fragfs: no fragfs store at .*\n$/, args.join(' '));
  }
  t.deepEqual(await readdir(empty), [], 'snapshot made no live/ folder');
});

test('a store without the space asked for says so first', async (t) => {
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const r = await runCli(['snapshots', store, '--space', 'other'], NO_PASSPHRASE);
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /has no space other \(spaces: default\)/);
});

test('init says a store is already there, or the folder is not empty, before asking for a passphrase', async (t) => {
  const store = join(work.path, 'store-init');
  await createStore(store, 'dir');
  const again = await runCli(['init', store, '--backend', 'dir'], NO_PASSPHRASE);
  t.is(again.code, 3, again.stderr);
  t.regex(again.stderr, /already exists/);
  const full = join(work.path, 'full');
  await mkdir(full);
  await writeFile(join(full, 'x'), 'x');
  const notEmpty = await runCli(['init', full], NO_PASSPHRASE);
  t.is(notEmpty.code, 10, notEmpty.stderr);
  t.regex(notEmpty.stderr, /not empty/);
});
