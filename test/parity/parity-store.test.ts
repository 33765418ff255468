// Parity on another backend than the data (`--parity-store`): the parity objects go to the other
// folder and none to the store; objects the store loses are rebuilt from there without the
// passphrase; a lost parity store leaves everything readable and in no stripe, and repair covers
// it again; gc retires stripes in the parity store.

import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FAST_KDF, runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';
import { damage, makeTree, pick, putTree, stripesOf, type Damage } from './parity-helpers.js';

const NO_PASSPHRASE = { env: { FRAGFS_PASSPHRASE: undefined } };

let work: Awaited<ReturnType<typeof tempDir>>;

test.before(async () => {
  work = await tempDir('fragfs-parity-store-');
});

test.after.always(async () => {
  await work?.remove();
});

function ok(t: ExecutionContext, r: CliResult, what: string): CliResult {
  t.is(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

async function coverage(t: ExecutionContext, store: string): Promise<{ unprotected: number; incomplete: number; stripes: number; members: number }> {
  return JSON.parse(ok(t, await runCli(['parity', store, '--json'], NO_PASSPHRASE), 'parity').stdout) as { unprotected: number; incomplete: number; stripes: number; members: number };
}

test.serial('parity in another folder protects the store, and survives nothing but itself', async (t) => {
  const store = join(work.path, 'main');
  const parity = join(work.path, 'parity-elsewhere');
  ok(t, await runCli(['init', store, '--backend', 'dir', '--parity', '4+2', '--parity-store', parity, ...FAST_KDF]), 'init');
  const trees = [join(work.path, 'ta'), join(work.path, 'tb')];
  const keys: string[] = [];
  for (const [i, tree] of trees.entries()) {
    await makeTree(tree, 30, `p${i}`);
    keys.push(await putTree(store, tree));
  }
  const c = await coverage(t, store);
  t.is(c.unprotected, 0);
  t.true(c.stripes > 2);
  t.false(existsSync(join(store, 'default', 'parity')), 'no parity object in the store itself');
  t.true(existsSync(join(parity, 'default', 'parity')), 'the parity objects are in the parity store');
  t.regex(ok(t, await runCli(['parity', store], NO_PASSPHRASE), 'parity').stdout, new RegExp(`^parity 4\\+2 in ${parity}: `));

  // The store loses objects: rebuilt from the other folder.
  const lost: Damage[] = [];
  for (const s of pick(await stripesOf(store), 3)) for (const mb of pick(s.record.members, 2)) lost.push({ kind: mb.kind, id: mb.id, how: 'delete' });
  await damage(store, lost);
  const r = ok(t, await runCli(['repair', store], NO_PASSPHRASE), 'repair');
  t.is(r.stdout.split('\n').filter((l) => l.startsWith('rebuilt ')).length, lost.length, r.stdout);
  ok(t, await runCli(['verify', store]), 'verify');

  // The parity store is lost: nothing of the data is, and repair gives it stripes again.
  await rm(parity, { recursive: true });
  const bare = await coverage(t, store);
  t.is(bare.stripes, 0);
  t.true(bare.unprotected > 0);
  t.regex(ok(t, await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE), 'repair --dry-run').stdout, /: 0 can be rebuilt, 0 lost/);
  ok(t, await runCli(['repair', store], NO_PASSPHRASE), 'repair');
  t.is((await coverage(t, store)).unprotected, 0);

  // A copy keeps the shape and holds its parity itself (the parity store is the source's).
  const copy = join(work.path, 'copy');
  ok(t, await runCli(['sync', store, copy]), 'sync');
  const cc = await coverage(t, copy);
  t.deepEqual([cc.unprotected, cc.incomplete], [0, 0]);
  t.true(existsSync(join(copy, 'default', 'parity')), 'the copy holds its own parity objects');
  t.regex(ok(t, await runCli(['parity', copy], NO_PASSPHRASE), 'parity').stdout, /^parity 4\+2: /);

  // gc retires the stripes of what it deletes, in the parity store.
  ok(t, await runCli(['forget', store, keys[0]!]), 'forget');
  ok(t, await runCli(['gc', store]), 'gc');
  const after = await coverage(t, store);
  t.deepEqual([after.unprotected, after.incomplete], [0, 0]);
  t.regex(ok(t, await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE), 'repair --dry-run').stdout, /: 0 can be rebuilt, 0 lost/);
  const dest = join(work.path, 'out');
  ok(t, await runCli(['get', store, keys[1]!, dest]), 'get');
  t.deepEqual(await describeTree(dest), await describeTree(trees[1]!));

  const self = await runCli(['parity', store, '--set', '4+2', '--parity-store', store], NO_PASSPHRASE);
  t.is(self.code, 2);
  t.regex(self.stderr, /^fragfs: --parity-store names the store itself/);
});
