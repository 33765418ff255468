// Parity stays complete as the store changes: after each put, after a sync into a new store (which
// keeps the source's parity shape) and after forget + gc (which deletes members of stripes), every
// stored object is in a stripe with all its parity objects, no stripe names an object gc deleted
// (repair finds nothing to rebuild), verify is clean and says so, and init --parity / parity --set
// off do what they say.

import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { FAST_KDF, runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';
import { createParityStore, makeTree, putTree, stripesOf } from './parity-helpers.js';

const NO_PASSPHRASE = { env: { FRAGFS_PASSPHRASE: undefined } };

let work: Awaited<ReturnType<typeof tempDir>>;

test.before(async () => {
  work = await tempDir('fragfs-parity-cover-');
});

test.after.always(async () => {
  await work?.remove();
});

function ok(t: ExecutionContext, r: CliResult, what: string): CliResult {
  t.is(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

async function complete(t: ExecutionContext, store: string, after: string): Promise<number> {
  const c = JSON.parse(ok(t, await runCli(['parity', store, '--json'], NO_PASSPHRASE), 'parity').stdout) as { unprotected: number; incomplete: number; members: number; parity: unknown };
  t.is(c.unprotected, 0, `after ${after}: objects in no stripe`);
  t.is(c.incomplete, 0, `after ${after}: stripes lacking parity`);
  t.true(c.members > 0, `after ${after}`);
  const dry = ok(t, await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE), 'repair --dry-run');
  t.regex(dry.stdout, /: 0 can be rebuilt, 0 lost/, `after ${after}`);
  return c.members;
}

test.serial('put, sync and gc leave every stored object in a complete stripe', async (t) => {
  const store = join(work.path, 's');
  await createParityStore(store, 'dir', { k: 4, m: 2 });
  const trees: string[] = [];
  const keys: string[] = [];
  for (const seed of ['a', 'b', 'c']) {
    const tree = join(work.path, `tree-${seed}`);
    await makeTree(tree, 30, seed);
    trees.push(tree);
    keys.push(await putTree(store, tree));
    await complete(t, store, `put ${seed}`);
  }
  const v = ok(t, await runCli(['verify', store]), 'verify');
  t.regex(v.stdout, /parity 4\+2: .*every stored object is in a stripe/);

  const copy = join(work.path, 'copy');
  ok(t, await runCli(['sync', store, copy]), 'sync');
  await complete(t, copy, 'sync into a new store');

  const stripesBefore = await stripesOf(store);
  ok(t, await runCli(['forget', store, keys[1]!]), 'forget');
  const gc = ok(t, await runCli(['gc', store]), 'gc');
  t.regex(gc.stdout + gc.stderr, /freed [1-9]/);
  await complete(t, store, 'gc');
  const stripesAfter = new Set((await stripesOf(store)).map((s) => s.stripeId));
  t.true(stripesBefore.some((s) => !stripesAfter.has(s.stripeId)), 'gc retired the stripes of what it deleted');
  ok(t, await runCli(['verify', store]), 'verify after gc');
  for (const i of [0, 2]) {
    const dest = join(work.path, `out-${i}`);
    ok(t, await runCli(['get', store, keys[i]!, dest]), 'get');
    t.deepEqual(await describeTree(dest), await describeTree(trees[i]!));
  }
});

test.serial('init --parity sets the shape; parity --set off drops every parity object; a bad shape is one line, exit 2', async (t) => {
  const store = join(work.path, 'init');
  const init = await runCli(['init', store, '--backend', 'lmdb', '--parity', '6+3', ...FAST_KDF]);
  ok(t, init, 'init');
  const tree = join(work.path, 'init-tree');
  await makeTree(tree, 10, 'i');
  await putTree(store, tree);
  t.regex(ok(t, await runCli(['parity', store], NO_PASSPHRASE), 'parity').stdout, /^parity 6\+3: .*every stored object is in a stripe/);
  t.regex(ok(t, await runCli(['parity', store, '--set', 'off'], NO_PASSPHRASE), 'off').stdout, /parity turned off: [1-9]\d* parity objects deleted/);
  t.is((await stripesOf(store)).length, 0);
  t.regex(ok(t, await runCli(['parity', store], NO_PASSPHRASE), 'parity').stdout, /^parity off: 0 objects/);
  const bad = await runCli(['parity', store, '--set', '30+2'], NO_PASSPHRASE);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^fragfs: --set: "30\+2" is not a parity shape K\+M/);
  t.is(bad.stderr.trim().split('\n').length, 1);
});
