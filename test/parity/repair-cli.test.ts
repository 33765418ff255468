// `fragfs repair` through the CLI, without the passphrase: for each stripe shape used (3+1 on lmdb,
// where every fragment is its own object; 4+2 on dir, with packs and their indexes; the default
// 10+2 on split, whose data fragments are two files each), up to m
// members or parity objects of random stripes deleted or corrupted are rebuilt, after which verify
// is clean and every snapshot comes back byte-identical; m + 1 losses in one stripe leave exactly
// those objects named as lost, exit 6, while the other stripes are still repaired.

import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';
import type { ParitySettings } from '../../src/parity/parity-settings.js';
import type { BackendName } from '../../src/store/store.js';
import { createParityStore, damage, makeTree, pick, putTree, shardsOf, stripesOf, type Damage } from './parity-helpers.js';

let work: Awaited<ReturnType<typeof tempDir>>;

test.before(async () => {
  work = await tempDir('fragfs-parity-repair-');
});

test.after.always(async () => {
  await work?.remove();
});

const NO_PASSPHRASE = { env: { FRAGFS_PASSPHRASE: undefined } };

function ok(t: ExecutionContext, r: CliResult, what: string): CliResult {
  t.is(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

async function storeWithSnapshots(name: string, backend: BackendName, shape: ParitySettings): Promise<{ store: string; snaps: { key: string; tree: string }[] }> {
  const store = join(work.path, name);
  await createParityStore(store, backend, shape);
  const snaps: { key: string; tree: string }[] = [];
  for (const seed of ['a', 'b']) {
    const tree = join(work.path, `${name}-${seed}`);
    await makeTree(tree, 40, seed);
    snaps.push({ key: await putTree(store, tree), tree });
  }
  return { store, snaps };
}

async function checkWhole(t: ExecutionContext, store: string, snaps: { key: string; tree: string }[], round: string): Promise<void> {
  const v = ok(t, await runCli(['verify', store]), `${round}: verify`);
  t.regex(v.stdout, /: no problems/);
  for (const [i, s] of snaps.entries()) {
    const dest = join(work.path, `out-${round}-${i}`);
    ok(t, await runCli(['get', store, s.key, dest]), `${round}: get ${s.key}`);
    t.deepEqual(await describeTree(dest), await describeTree(s.tree), `${round}: snapshot ${i} byte-identical`);
  }
}

for (const [backend, shape] of [
  ['lmdb', { k: 3, m: 1 }],
  ['dir', { k: 4, m: 2 }],
  ['split', { k: 10, m: 2 }],
] as const) {
  test.serial(`${backend} ${shape.k}+${shape.m}: up to m lost or corrupt objects in random stripes are rebuilt without the passphrase`, async (t) => {
    const { store, snaps } = await storeWithSnapshots(`rebuild-${backend}`, backend, shape);
    const stripes = await stripesOf(store);
    t.true(stripes.length >= (shape.k >= 10 ? 3 : 4), `${stripes.length} stripes`);
    const kinds = new Set(stripes.flatMap((s) => s.record.members.map((mb) => mb.kind)));
    // On dir and split, metadata fragments are small: they are in packs.
    const expected = backend === 'lmdb' ? ['data', 'meta'] : ['data', 'pack', 'index'];
    t.true(expected.every((k) => kinds.has(k as never)), `members of kinds ${[...kinds].join(', ')}`);
    for (let round = 0; round < 2; round++) {
      const damaged: Damage[] = [];
      // A stripe whose parity objects are all deleted is gone with them (they hold its record): its
      // members, intact, are in no stripe until the repair's protect pass gives them a new one.
      let vanished = 0;
      for (const s of pick(await stripesOf(store), Math.ceil(stripes.length / 2))) {
        const hit = pick(shardsOf(s), 1 + Math.floor(Math.random() * shape.m)).map((x) => ({ ...x, how: Math.random() < 0.5 ? ('delete' as const) : ('corrupt' as const) }));
        const parityDeleted = hit.filter((d) => d.kind === 'parity' && d.how === 'delete').length;
        if (parityDeleted === s.parity.size) vanished += parityDeleted;
        damaged.push(...hit);
      }
      t.log(`round ${round}: ${damaged.map((d) => `${d.how} ${d.kind} ${d.id.slice(0, 8)}`).join(', ')}`);
      await damage(store, damaged);
      const dry = ok(t, await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE), 'repair --dry-run');
      t.is(dry.stdout.split('\n').filter((l) => l.startsWith('can rebuild')).length, damaged.length - vanished, dry.stdout);
      const r = ok(t, await runCli(['repair', store], NO_PASSPHRASE), 'repair');
      const rebuilt = r.stdout.split('\n').filter((l) => l.startsWith('rebuilt '));
      t.is(rebuilt.length, damaged.length - vanished, r.stdout);
      if (vanished > 0) t.regex(r.stdout, /objects put into \d+ new stripes/);
      const cover = JSON.parse(ok(t, await runCli(['parity', store, '--json'], NO_PASSPHRASE), 'parity').stdout) as { unprotected: number; incomplete: number };
      t.is(cover.unprotected, 0);
      t.is(cover.incomplete, 0);
      for (const d of damaged.filter((x) => x.kind !== 'parity')) t.true(rebuilt.some((l) => l.includes(d.id)), `${d.kind} ${d.id} rebuilt: ${r.stdout}`);
      t.regex(r.stdout, / 0 lost/);
      await checkWhole(t, store, snaps, `${backend}-${round}`);
      const again = ok(t, await runCli(['repair', store, '--dry-run'], NO_PASSPHRASE), 'repair after repair');
      t.regex(again.stdout, /: 0 can be rebuilt, 0 lost/);
    }
  });
}

test.serial('m + 1 losses in one stripe: the others are rebuilt, exactly the lost ones are named, exit 6', async (t) => {
  const { store } = await storeWithSnapshots('beyond', 'dir', { k: 4, m: 2 });
  const stripes = (await stripesOf(store)).filter((s) => s.record.members.length >= 3);
  t.true(stripes.length >= 2);
  const [doomed, other] = pick(stripes, 2) as [(typeof stripes)[0], (typeof stripes)[0]];
  const lost = pick(doomed.record.members, 3).map((mb) => ({ kind: mb.kind, id: mb.id, how: 'delete' as const }));
  const fixable = pick(other.record.members, 1).map((mb) => ({ kind: mb.kind, id: mb.id, how: 'corrupt' as const }));
  await damage(store, [...lost, ...fixable]);
  const r = await runCli(['repair', store], NO_PASSPHRASE);
  t.is(r.code, 6, r.stdout + r.stderr);
  t.regex(r.stderr, /^fragfs: 3 objects are damaged beyond what parity can rebuild/);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  const named = r.stdout.split('\n').filter((l) => l.startsWith('lost ') && !l.includes(' is needed by '));
  t.deepEqual(named.map((l) => l.split(' ')[2]).sort(), lost.map((d) => d.id).sort(), r.stdout);
  t.true(r.stdout.includes(`rebuilt ${fixable[0]!.kind} ${fixable[0]!.id}`), r.stdout);

  // With the passphrase it also names the files that need what is lost.
  const named2 = await runCli(['repair', store, '--dry-run']);
  t.is(named2.code, 6);
  // A file path, or the snapshot itself when its root is what is lost.
  t.regex(named2.stdout, /lost \w+ fragment [0-9a-f]{64} is needed by (snapshot )?[0-9a-f]{12}/);
});
