// kill -9 during parity creation and during repair: the store verifies clean right after, and a
// rerun completes (every object in a stripe, every stripe with all its parity objects, nothing
// left to rebuild, every snapshot byte-identical). A kill inside a stripe's parity writes is stood
// for by deleting one parity object of a stripe the killed pass wrote.

import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';
import { setParitySettings } from '../../src/parity/parity-admin.js';
import { createParityStore, damage, makeTree, pick, putTree, stripesOf, type Damage } from './parity-helpers.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'kill-child.js');
const NO_PASSPHRASE = { env: { FRAGFS_PASSPHRASE: undefined } };

let work: Awaited<ReturnType<typeof tempDir>>;

test.before(async () => {
  work = await tempDir('fragfs-parity-kill-');
});

test.after.always(async () => {
  await work?.remove();
});

function ok(t: ExecutionContext, r: CliResult, what: string): CliResult {
  t.is(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

function killedChild(t: ExecutionContext, mode: string, store: string, after: number): void {
  const r = spawnSync(process.execPath, [CHILD, mode, store, String(after)], { encoding: 'utf8' });
  t.is(r.signal, 'SIGKILL', `${mode} child: ${r.stdout}${r.stderr}`);
}

async function coverage(t: ExecutionContext, store: string): Promise<{ unprotected: number; incomplete: number; stripes: number }> {
  return JSON.parse(ok(t, await runCli(['parity', store, '--json'], NO_PASSPHRASE), 'parity').stdout) as { unprotected: number; incomplete: number; stripes: number };
}

async function restores(t: ExecutionContext, store: string, key: string, tree: string, name: string): Promise<void> {
  const dest = join(work.path, name);
  ok(t, await runCli(['get', store, key, dest]), 'get');
  t.deepEqual(await describeTree(dest), await describeTree(tree));
}

test.serial('kill -9 during parity creation: verify is clean, a rerun covers everything', async (t) => {
  const store = join(work.path, 'create');
  const tree = join(work.path, 'create-tree');
  await createParityStore(store, 'dir', undefined);
  await makeTree(tree, 60, 'c');
  const key = await putTree(store, tree);
  await setParitySettings(store, 'default', { k: 3, m: 2 });
  killedChild(t, 'protect', store, 2);
  const written = await stripesOf(store);
  t.is(written.length, 2, 'the pass was killed after its second stripe');
  // A kill between the parity writes of one stripe leaves it with fewer than m.
  await damage(store, [{ kind: 'parity', id: [...written[0]!.parity.values()][0]!, how: 'delete' }]);
  t.regex(ok(t, await runCli(['verify', store]), 'verify after the kill').stdout, /: no problems/);
  const before = await coverage(t, store);
  t.true(before.unprotected > 0 && before.incomplete === 1, JSON.stringify(before));

  const rerun = ok(t, await runCli(['parity', store, '--set', '3+2'], NO_PASSPHRASE), 'rerun');
  t.regex(rerun.stdout, /completed 1 stripes/);
  const after = await coverage(t, store);
  t.deepEqual([after.unprotected, after.incomplete], [0, 0], JSON.stringify(after));
  t.regex(ok(t, await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE), 'repair --dry-run').stdout, /: 0 can be rebuilt, 0 lost/);
  await restores(t, store, key, tree, 'create-out');
});

test.serial('kill -9 during repair: a rerun completes, verify is clean, snapshots restore', async (t) => {
  const store = join(work.path, 'repair');
  const tree = join(work.path, 'repair-tree');
  await createParityStore(store, 'lmdb', { k: 3, m: 1 });
  await makeTree(tree, 60, 'r');
  const key = await putTree(store, tree);
  const stripes = await stripesOf(store);
  t.true(stripes.length >= 6, `${stripes.length} stripes`);
  // One data member lost in every stripe: the kill comes after the repair rebuilt two of them.
  const lost: Damage[] = stripes.map((s) => ({ ...pick(s.record.members, 1)[0]!, how: 'delete' as const }));
  await damage(store, lost.map(({ kind, id, how }) => ({ kind, id, how })));
  killedChild(t, 'repair', store, 2);
  const mid = await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE);
  t.is(mid.code, 0, mid.stdout + mid.stderr);
  const left = mid.stdout.split('\n').filter((l) => l.startsWith('can rebuild')).length;
  t.true(left > 0 && left <= lost.length - 2, `${left} of ${lost.length} left after the kill`);

  ok(t, await runCli(['repair', store], NO_PASSPHRASE), 'rerun');
  t.regex(ok(t, await runCli(['verify', store]), 'verify').stdout, /: no problems/);
  t.regex(ok(t, await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE), 'repair --dry-run').stdout, /: 0 can be rebuilt, 0 lost/);
  await restores(t, store, key, tree, 'repair-out');
});
