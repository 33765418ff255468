// put/get/ls/cat through the real CLI on every disk backend: a real tree goes in and comes back
// identical; a second put stores metadata only; the store holds no plaintext.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_PATH, lastLine, runCli, TEST_PASSPHRASE } from '../helpers/cli.js';
import { makeSampleTree } from '../helpers/sample-tree.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

const BACKENDS = ['lmdb', 'dir', 'split'] as const;

let work: Awaited<ReturnType<typeof tempDir>>;
let tree: string;

test.before(async () => {
  work = await tempDir('fragfs-putget-');
  tree = join(work.path, 'tree');
  await makeSampleTree(tree);
});

test.after.always(async () => {
  await work?.remove();
});

async function statsOf(store: string): Promise<{ dataFragments: number; metaFragments: number; dataStoredBytes: number; logicalBytes: number; dedupRatio: number }> {
  const r = await runCli(['stats', store, '--json']);
  if (r.code !== 0) throw new Error(`stats failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

for (const backend of BACKENDS) {
  test.serial(`put then get gives an identical tree (${backend})`, async (t) => {
    const store = join(work.path, `store-${backend}`);
    await createStore(store, backend);
    const put = await runCli(['put', store, tree, '--name', 'first']);
    t.is(put.code, 0, put.stderr);
    const key = lastLine(put.stdout);
    t.regex(key, /^[0-9a-f]{64}$/);

    const dest = join(work.path, `restored-${backend}`);
    const get = await runCli(['get', store, key, dest]);
    t.is(get.code, 0, get.stderr);
    t.deepEqual(await describeTree(dest), await describeTree(tree));

    // Sparse stays sparse: of the 9 MiB file only the block holding data is written.
    const du = spawnSync('du', ['-k', join(dest, 'sparse.img')], { encoding: 'utf8' });
    t.true(Number(du.stdout.split(/\s/)[0]) <= 2048, `sparse.img (9 MiB, 4 KiB of data) uses ${du.stdout}`);

    // The snapshot name resolves like the key.
    const ls = await runCli(['ls', store, 'first/deep']);
    t.is(ls.code, 0, ls.stderr);
    t.regex(ls.stdout, /hardlink\.txt/);
    const cat = await runCli(['cat', store, `${key.slice(0, 12)}/run.sh`]);
    t.is(cat.code, 0, cat.stderr);
    t.is(cat.stdout, await readFile(join(tree, 'run.sh'), 'utf8'));

    const verify = await runCli(['verify', store]);
    t.is(verify.code, 0, verify.stdout + verify.stderr);
    t.regex(verify.stdout, /no problems/);
  });
}

test.serial('a second put of the same tree stores metadata only', async (t) => {
  const store = join(work.path, 'store-lmdb');
  const before = await statsOf(store);
  const again = await runCli(['put', store, tree]);
  t.is(again.code, 0, again.stderr);
  const after = await statsOf(store);
  t.is(after.dataFragments, before.dataFragments);
  t.is(after.dataStoredBytes, before.dataStoredBytes);
  t.is(after.logicalBytes, before.logicalBytes * 2);
  t.true(after.dedupRatio > 1.9, `dedup ratio ${after.dedupRatio}`);
});

test.serial('the store holds no plaintext: neither file content nor file names', async (t) => {
  for (const backend of BACKENDS) {
    const store = join(work.path, `store-${backend}`);
    for (const needle of ['one inode, two names', 'hardlink.txt', 'naïve café', 'only me']) {
      const r = spawnSync('grep', ['-r', '-a', '-l', '-F', needle, store], { encoding: 'utf8' });
      t.is(r.status, 1, `${JSON.stringify(needle)} found in ${backend} store: ${r.stdout}`);
    }
  }
});

test.serial('put of a single file, and of several paths', async (t) => {
  const store = join(work.path, 'store-dir');
  const one = await runCli(['put', store, join(tree, 'run.sh')]);
  t.is(one.code, 0, one.stderr);
  const dest = join(work.path, 'one-file');
  t.is((await runCli(['get', store, lastLine(one.stdout), dest])).code, 0);
  t.is(await readFile(dest, 'utf8'), await readFile(join(tree, 'run.sh'), 'utf8'));
  const cat = await runCli(['cat', store, lastLine(one.stdout)]);
  t.is(cat.stdout, await readFile(join(tree, 'run.sh'), 'utf8'));

  const many = await runCli(['put', store, join(tree, 'run.sh'), join(tree, 'deep')]);
  t.is(many.code, 0, many.stderr);
  const ls = await runCli(['ls', store, lastLine(many.stdout), '--json']);
  t.deepEqual(
    JSON.parse(ls.stdout).map((e: { name: string }) => e.name),
    ['deep', 'run.sh'],
  );
});

test.serial('fragfs run by a node given V8 flags puts and gets as ever', async (t) => {
  const store = join(work.path, 'store-v8-flags');
  await createStore(store, 'lmdb');
  const flags = ['--max-lazy', '--interrupt-budget=100000', '--stack-size=900'];
  const env = { ...process.env, FRAGFS_PASSPHRASE: TEST_PASSPHRASE };
  const put = spawnSync(process.execPath, [...flags, CLI_PATH, 'put', store, tree], { encoding: 'utf8', env });
  t.is(put.status, 0, put.stderr);
  t.notRegex(put.stderr, /\n\s+at /);
  const dest = join(work.path, 'v8-flags-back');
  const get = spawnSync(process.execPath, [...flags, CLI_PATH, 'get', store, lastLine(put.stdout), dest], { encoding: 'utf8', env });
  t.is(get.status, 0, get.stderr);
  t.deepEqual(await describeTree(dest), await describeTree(tree));
});
