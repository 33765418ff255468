// `sync` copies one snapshot's fragments (or all) into a store of another backend, which then opens
// with the same passphrase and gives the same tree back.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lastLine, runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

test('sync of one snapshot copies what it needs and nothing else; sync of all copies everything', async (t) => {
  const work = await tempDir('fragfs-sync-');
  t.teardown(work.remove);
  const src = join(work.path, 'src');
  await createStore(src, 'lmdb');
  const a = join(work.path, 'a');
  const b = join(work.path, 'b');
  await mkdir(join(a, 'sub'), { recursive: true });
  await writeFile(join(a, 'sub', 'x.bin'), randomBytes(2_500_000));
  await writeFile(join(a, 'note.txt'), 'first\n');
  await mkdir(b);
  await writeFile(join(b, 'other.bin'), randomBytes(1_500_000));
  const keyA = lastLine((await runCli(['put', src, a, '--name', 'a'])).stdout);
  await runCli(['put', src, b, '--name', 'b']);

  const dst = join(work.path, 'dst');
  const one = await runCli(['sync', src, dst, 'a', '--backend', 'dir', '--json']);
  t.is(one.code, 0, one.stderr);
  const r1 = JSON.parse(one.stdout);
  t.is(r1.snapshots, 1);
  const restored = join(work.path, 'restored');
  const get = await runCli(['get', dst, keyA, restored]);
  t.is(get.code, 0, get.stderr);
  t.deepEqual(await describeTree(restored), await describeTree(a));
  const dstStats = JSON.parse((await runCli(['stats', dst, '--json'])).stdout);
  const srcStats = JSON.parse((await runCli(['stats', src, '--json'])).stdout);
  t.is(dstStats.backend, 'dir');
  t.is(dstStats.dataFragments, 4); // x.bin's three blocks and note.txt's one
  t.true(dstStats.dataFragments < srcStats.dataFragments);

  const again = await runCli(['sync', src, dst, '--json']);
  t.is(again.code, 0, again.stderr);
  const all = JSON.parse((await runCli(['stats', dst, '--json'])).stdout);
  t.is(all.dataFragments, srcStats.dataFragments);
  t.is(all.snapshots, 2);
  t.is((await runCli(['verify', dst])).code, 0);
});
