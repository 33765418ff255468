// fragfs.json changed outside fragfs, through the CLI: relabelling the backend of a store makes every
// command that opens it fail with one line naming the field (exit 3), instead of showing no snapshots
// and building a second store beside the first.

import test from 'ava';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

test('a relabelled backend: snapshots, ls and put fail with one line naming the field, and nothing is written', async (t) => {
  const work = await tempDir('fragfs-cli-config-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'a.txt'), 'hello\n');
  await createStore(store, 'lmdb');
  const put = await runCli(['put', store, tree, '--name', 'first']);
  t.is(put.code, 0, put.stderr);

  const file = join(store, 'fragfs.json');
  const cfg = JSON.parse(await readFile(file, 'utf8'));
  cfg.backend = 'dir';
  await writeFile(file, JSON.stringify(cfg, null, 2));
  const before = (await readdir(store)).sort();
  for (const args of [['snapshots', store], ['ls', store, 'first'], ['put', store, tree]]) {
    const r = await runCli(args);
    t.is(r.code, 3, `${args[0]}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, /^fragfs: fragfs\.json was changed outside fragfs \(field backend, space default\)/);
  }
  t.deepEqual((await readdir(store)).sort(), before);
});
