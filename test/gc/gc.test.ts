// runGc in process on real stores (dir, lmdb, split): what forgotten snapshots and the live tree
// drop is freed and nothing a root needs is; a dry run counts what the run frees; a writer that pins
// a condemned fragment keeps it; a writer from before the mark holds the sweep back.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runGc } from '../../src/gc/gc.js';
import { getTree } from '../../src/repo/get.js';
import { putPaths } from '../../src/repo/put.js';
import { storeStats } from '../../src/repo/stats.js';
import { Repo } from '../../src/repo/repo.js';
import { liveDir } from '../../src/repo/store-lock.js';
import { verifyStore } from '../../src/repo/verify.js';
import type { BackendName, Namespace } from '../../src/store/store.js';
import { LiveVfs } from '../../src/vfs/live-vfs.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';
import { PathVfs } from '../vfs/path-vfs.js';
import { ME, readFile as vfsRead, writeFile as vfsWrite } from '../vfs/vfs-helpers.js';

const BS = 64 * 1024;
const BACKENDS: BackendName[] = ['dir', 'lmdb', 'split'];

async function newStore(t: ExecutionContext, backend: BackendName): Promise<{ repo: Repo; storePath: string; dir: string }> {
  const tmp = await tempDir('fragfs-gc-');
  t.teardown(() => tmp.remove());
  const storePath = join(tmp.path, 'store');
  const repo = await Repo.init({ storePath, backend, passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: BS, threads: 2 });
  t.teardown(() => repo.close());
  return { repo, storePath, dir: tmp.path };
}

async function openAgain(t: ExecutionContext, storePath: string): Promise<Repo> {
  const repo = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 2 });
  t.teardown(() => repo.close());
  return repo;
}

/**
 * gc runs on an opening of its own, as `fragfs gc` does: the test's opening wrote, and until it
 * closes its lease holds a sweep back (it is a writer still running).
 */
async function count(repo: Repo, ns: Namespace): Promise<number> {
  let n = 0;
  for await (const _ of repo.store.list(ns)) n++;
  return n;
}

/** `fragfs put` in process: an opening of its own, closed when the snapshot is written. */
async function put(storePath: string, path: string): Promise<string> {
  const w = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 2 });
  try {
    return (await putPaths(w, [path], { parent: false })).key;
  } finally {
    await w.close();
  }
}

async function tree(dir: string, files: Record<string, Buffer>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  return dir;
}

for (const backend of BACKENDS) {
  test(`${backend}: a forgotten snapshot's own fragments are freed, the other snapshot's stay; the dry run counts the same`, async (t) => {
    const { repo, storePath, dir } = await newStore(t, backend);
    const shared = randomBytes(200_000);
    const t1 = await tree(join(dir, 'one'), { 'a.bin': randomBytes(300_000), 'shared.bin': shared });
    const t2 = await tree(join(dir, 'two'), { 'b.bin': randomBytes(100_000), 'shared.bin': shared });
    const k1 = await put(storePath, t1);
    const k2 = await put(storePath, t2);
    const dataBefore = await count(repo, repo.dataNs);
    await repo.store.delete(repo.refNs, k1);

    const dry = await runGc(await openAgain(t, storePath), { dryRun: true });
    const real = await runGc(await openAgain(t, storePath));
    t.is(real.freed, dry.unreferenced, 'the dry run counts the fragments the run frees');
    t.is(real.freedBytes, dry.unreferencedBytes, 'and their bytes');
    t.true(real.freedBytes >= 300_000, `a.bin (300,000 random bytes) is freed: ${real.freedBytes}`);
    // a.bin is 5 blocks of 64 KiB, plus snapshot 1's own metadata (snapshot, root dir).
    t.true(dataBefore - (await count(repo, repo.dataNs)) >= 5);
    t.false(await repo.store.has(repo.metaNs, k1), "snapshot 1's object is gone");

    const v = await verifyStore(repo, undefined);
    t.deepEqual(v.problems, []);
    t.is(v.unreferencedChecked, 0, 'nothing unreferenced is left');
    const back = join(dir, 'back');
    await getTree(repo, k2, back);
    t.deepEqual(await describeTree(back), await describeTree(t2));
    const again = await runGc(await openAgain(t, storePath));
    t.is(again.freed, 0, 'a second gc finds nothing');
  });
}

test('lmdb: the live tree frees what it drops (deleted and overwritten files); what it holds stays', async (t) => {
  const { repo, storePath } = await newStore(t, 'lmdb');
  const vfs = new PathVfs(await LiveVfs.open({ repo, statePath: liveDir(storePath, repo.space), owner: ME }));
  t.teardown(() => vfs.close().catch(() => undefined));
  const keep = randomBytes(300_000);
  await vfsWrite(vfs, '/keep', keep);
  await vfsWrite(vfs, '/gone', randomBytes(1_000_000));
  await vfsWrite(vfs, '/over', randomBytes(500_000));
  const fresh = randomBytes(200_000);
  await vfsWrite(vfs, '/over', fresh);
  await vfs.unlink('/gone');
  await vfs.flushAll();
  const r = await runGc(await openAgain(t, storePath), { waitMs: 10_000 });
  t.deepEqual(r.waitingFor, []);
  t.true(r.freedBytes >= 1_400_000, `1,000,000 deleted and 500,000 overwritten bytes are freed: ${r.freedBytes}`);
  t.true((await vfsRead(vfs, '/keep')).equals(keep));
  t.true((await vfsRead(vfs, '/over')).equals(fresh));
  // A snapshot taken after gc names only fragments that are there.
  const key = await vfs.snapshot();
  t.deepEqual((await verifyStore(repo, key)).problems, []);
});

test('dir: a condemned fragment a running writer pins during the gc is kept; the next gc frees it once nothing names it', async (t) => {
  const { repo, storePath, dir } = await newStore(t, 'dir');
  const k = await put(storePath, await tree(join(dir, 'src'), { 'f.bin': randomBytes(100_000) }));
  await repo.store.delete(repo.refNs, k);
  const writer = await openAgain(t, storePath);
  const guard = (await writer.writerGuard())!;
  // This writer brackets its own operations (as a mount does): its opening holds nothing back.
  guard.releaseBase();
  let pinned = '';
  const r = await runGc(await openAgain(t, storePath), {
    waitMs: 10_000,
    afterMark: async (m) => {
      await guard.refresh();
      pinned = m.data[0]!;
      await guard.hold('data', pinned);
    },
  });
  t.true(r.kept >= 1, 'the pinned fragment is kept');
  t.true(await repo.store.has(repo.dataNs, pinned));
  t.true(r.freed >= 1, 'the rest is freed');
  await writer.close();
  const next = await runGc(await openAgain(t, storePath));
  t.true(next.freed >= 1);
  t.false(await repo.store.has(repo.dataNs, pinned));
});

test('dir: a writer that opened before the mark and still runs holds the sweep back; the next gc finishes the mark', async (t) => {
  const { repo, storePath, dir } = await newStore(t, 'dir');
  const k = await put(storePath, await tree(join(dir, 'src'), { 'f.bin': randomBytes(100_000) }));
  await repo.store.delete(repo.refNs, k);
  const writer = await openAgain(t, storePath);
  await writer.writerGuard();
  const before = await count(repo, repo.dataNs);
  const r = await runGc(await openAgain(t, storePath), { waitMs: 1500 });
  t.is(r.waitingFor.length, 1, JSON.stringify(r.waitingFor));
  t.regex(r.waitingFor[0]!, new RegExp(`pid ${process.pid}`));
  t.is(r.freed, 0);
  t.is(await count(repo, repo.dataNs), before, 'nothing deleted');
  await writer.close();
  const next = await runGc(await openAgain(t, storePath));
  t.deepEqual(next.waitingFor, []);
  t.true(next.freed >= 2);
  t.is(await count(repo, repo.dataNs), 0);
});

test('lmdb: a fragment in the trash that a root names again comes back; the rest is purged', async (t) => {
  const { repo, storePath } = await newStore(t, 'lmdb');
  const vfs = new PathVfs(await LiveVfs.open({ repo, statePath: liveDir(storePath, repo.space), owner: ME }));
  t.teardown(() => vfs.close().catch(() => undefined));
  const bytes = randomBytes(50_000);
  await vfsWrite(vfs, '/f', bytes);
  await vfsWrite(vfs, '/junk', randomBytes(50_000));
  await vfs.unlink('/junk');
  await vfs.flushAll();
  // As if a gc had been stopped after moving to the trash too much: both blocks, the live one too.
  const ids: string[] = [];
  for await (const id of repo.store.list(repo.dataNs)) ids.push(id);
  t.is(ids.length, 2);
  const r = await runGc(await openAgain(t, storePath), {
    waitMs: 10_000,
    afterMark: async () => {
      for (const id of ids) await repo.store.trash(repo.dataNs, id);
    },
  });
  t.is(r.freed, 1, 'the junk block is purged');
  // The live tree names the other: the sweep's second look moved it back.
  t.is(await count(repo, repo.dataNs), 1);
  const key = await vfs.snapshot();
  t.deepEqual((await verifyStore(repo, key)).problems, []);
  t.true((await vfsRead(vfs, '/f')).equals(bytes));
  t.is((await readFile(join(storePath, 'gc', 'default', 'mark'))).length > 0, true);
});

test('stats: reclaimable is what gc frees, 0 after it; a store without snapshot data shows no ratios', async (t) => {
  const { repo, storePath, dir } = await newStore(t, 'dir');
  const empty = await storeStats(repo);
  t.is(empty.compressionRatio, null);
  t.is(empty.dedupRatio, null);
  t.is(empty.overallRatio, null);
  t.is(empty.reclaimableBytes, 0);
  const k = await put(storePath, await tree(join(dir, 'src'), { 'f.bin': randomBytes(100_000) }));
  await repo.store.delete(repo.refNs, k);
  const before = await storeStats(repo);
  t.true(before.reclaimableBytes! >= 100_000);
  t.is(before.reclaimableFragments, before.dataFragments + before.metaFragments, 'nothing is needed any more');
  t.is(before.compressionRatio, null, 'no snapshot: no ratio (not 0.00x)');
  const r = await runGc(await openAgain(t, storePath));
  t.is(r.freedBytes, before.reclaimableBytes!);
  t.is(r.freed, before.reclaimableFragments!);
  const after = await storeStats(repo);
  t.is(after.reclaimableBytes, 0);
  t.is(after.dataStoredBytes, 0);
});

test('dir: a put holds its lease from before it picks its parent, so a put that changed nothing is waited for too', async (t) => {
  const { storePath, dir } = await newStore(t, 'dir');
  const src = await tree(join(dir, 'src'), { 'f.bin': randomBytes(100_000) });
  await put(storePath, src);
  const leases = join(storePath, 'gc', 'default', 'leases');
  const w = await openAgain(t, storePath);
  let atSurvey = -1;
  // onTotal comes after the parent is chosen and the tree surveyed, before anything is written.
  const r = await putPaths(w, [src], { onTotal: () => (atSurvey = readdirSync(leases).length) });
  t.truthy(r.parent, 'the first snapshot was the parent');
  t.is(atSurvey, 1, 'the lease was on file before the put wrote or named anything');
});
