// gc on a packing store (dir): packs that hold only what a forgotten snapshot needed go whole,
// packs that also hold live fragments have those written anew first, a fragment a writer pins
// during the gc survives, and an opening made before the gc still reads everything afterwards.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runGc } from '../../src/gc/gc.js';
import { PackStore } from '../../src/pack/pack-store.js';
import { getTree } from '../../src/repo/get.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { verifyStore } from '../../src/repo/verify.js';
import type { FragmentKind } from '../../src/store/store.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

async function setup(t: ExecutionContext): Promise<{ storePath: string; dir: string }> {
  const tmp = await tempDir('fragfs-pack-gc-');
  t.teardown(() => tmp.remove());
  const storePath = join(tmp.path, 'store');
  const repo = await Repo.init({ storePath, backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, threads: 2 });
  await repo.close();
  return { storePath, dir: tmp.path };
}

async function open(t: ExecutionContext, storePath: string): Promise<Repo> {
  const repo = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 2 });
  t.teardown(() => repo.close());
  return repo;
}

async function put(storePath: string, path: string): Promise<string> {
  const w = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 2 });
  try {
    return (await putPaths(w, [path], { parent: false })).key;
  } finally {
    await w.close();
  }
}

/** `n` small files of random bytes in `folders` folders. */
async function smallTree(root: string, n: number, folders: number): Promise<void> {
  for (let f = 0; f < folders; f++) {
    await mkdir(join(root, `d${f}`), { recursive: true });
    for (let i = f; i < n; i += folders) await writeFile(join(root, `d${f}`, `f${i}`), randomBytes(500 + ((i * 37) % 3000)));
  }
}

async function objects(repo: Repo, kind: FragmentKind): Promise<number> {
  const inner = (repo.store as PackStore).inner;
  let n = 0;
  for await (const _ of inner.list({ space: repo.space, kind })) n++;
  return n;
}

test('a forgotten snapshot frees its packs; live fragments in shared packs are written anew; all else reads back', async (t) => {
  const { storePath, dir } = await setup(t);
  await smallTree(join(dir, 'one'), 1500, 15);
  await smallTree(join(dir, 'two'), 1500, 15);
  const k1 = await put(storePath, join(dir, 'one'));
  const k2 = await put(storePath, join(dir, 'two'));
  const reader = await open(t, storePath); // made before the gc: its view of the packs goes stale
  const repo = await open(t, storePath);
  t.true(repo.store instanceof PackStore);
  const packsBefore = await objects(repo, 'pack');
  t.log(`3,000 files and 32 folders in ${packsBefore} packs, ${await objects(repo, 'data')} single data objects`);
  t.true(packsBefore <= 12, `${packsBefore} packs`);
  t.is(await objects(repo, 'data'), 0);
  t.is(await objects(repo, 'meta'), 0);
  // A third snapshot keeps 150 of snapshot one's files: their fragments stay, in packs that also
  // hold what only snapshot one needed.
  await cp(join(dir, 'one', 'd3'), join(dir, 'three', 'd3'), { recursive: true });
  await cp(join(dir, 'one', 'd7'), join(dir, 'three', 'd7'), { recursive: true });
  const k3 = await put(storePath, join(dir, 'three'));
  await repo.store.delete(repo.refNs, k1);

  const dry = await runGc(await open(t, storePath), { dryRun: true });
  const real = await runGc(await open(t, storePath), { waitMs: 10_000 });
  t.true(real.freed >= 1300, `${real.freed} freed`);
  t.is(real.freed, dry.unreferenced, 'the dry run counts what the run frees');
  t.is(real.freedBytes, dry.unreferencedBytes);
  t.true((await objects(repo, 'pack')) < packsBefore + 2, 'packs of the forgotten snapshot are gone');
  t.is(await objects(repo, 'index'), await objects(repo, 'pack'), 'one index per pack');
  t.deepEqual((await verifyStore(await open(t, storePath), undefined)).problems, []);
  for (const [key, src] of [[k2, 'two'], [k3, 'three']] as const) {
    const back = join(dir, `back-${src}`);
    await getTree(reader, key, back);
    t.deepEqual(await describeTree(back), await describeTree(join(dir, src)));
  }
  t.is((await runGc(await open(t, storePath))).freed, 0, 'a second gc finds nothing');
});

test('a packed fragment a writer pins during the gc is kept and readable; the next gc frees it', async (t) => {
  const { storePath, dir } = await setup(t);
  await smallTree(join(dir, 'one'), 200, 4);
  const k1 = await put(storePath, join(dir, 'one'));
  const repo = await open(t, storePath);
  await repo.store.delete(repo.refNs, k1);
  const writer = await open(t, storePath);
  const guard = (await writer.writerGuard())!;
  guard.releaseBase();
  let pinned = '';
  const r = await runGc(await open(t, storePath), {
    waitMs: 10_000,
    afterMark: async (m) => {
      await guard.refresh();
      pinned = m.data[0]!;
      t.true(await guard.hold('data', pinned), 'the fragment is condemned, so the hold pins it');
      // A pinned put is written anew, whatever this opening believes is there.
      const bytes = await writer.store.get(writer.dataNs, pinned);
      await writer.store.put(writer.dataNs, pinned, bytes, { fresh: true });
    },
  });
  t.true(r.kept >= 1, `the pinned fragment is counted as kept: ${JSON.stringify(r)}`);
  const fresh = await open(t, storePath);
  t.true(await fresh.store.has(fresh.dataNs, pinned), 'the pinned fragment is there for a new opening');
  t.true((await fresh.store.get(fresh.dataNs, pinned)).length > 0);
  await writer.close();
  const next = await runGc(await open(t, storePath));
  t.true(next.freed >= 1);
  const last = await open(t, storePath);
  t.false(await last.store.has(last.dataNs, pinned));
  t.deepEqual((await verifyStore(last, undefined)).problems, []);
});
