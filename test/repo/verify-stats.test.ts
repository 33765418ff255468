// verifyStore, storeStats and syncStore in process, on real dir and lmdb stores in temp folders:
// verify names every missing or damaged fragment with the files or folders that need it and checks
// unreferenced fragments; stats count what store.list sees and the dedup ratio; sync copies exactly
// one snapshot's fragments into another backend and refuses to copy damage.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FragfsError, isFragfsError } from '../../src/errors.js';
import { META_VERSION, type Extent } from '../../src/fragment/tree-format.js';
import { getTree } from '../../src/repo/get.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { storeStats } from '../../src/repo/stats.js';
import { syncStore } from '../../src/repo/sync.js';
import { loadSnapshot, resolveEntry } from '../../src/repo/tree-reader.js';
import { readExtents } from '../../src/repo/tree-writer.js';
import { verifyStore } from '../../src/repo/verify.js';
import type { DirStore } from '../../src/store/dir-store.js';
import { openBackend } from '../../src/store/open-backend.js';
import { PackStore } from '../../src/pack/pack-store.js';
import type { Store } from '../../src/store/store.js';

/** The backend under the layer that finds packed fragments (these stores write none). */
const unpacked = (s: Store): Store => (s instanceof PackStore ? s.inner : s);
import type { Namespace } from '../../src/store/store.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

const BS = 65536;

let work: Awaited<ReturnType<typeof tempDir>>;
/** tree/: docs/report.bin (4 blocks), copy.bin (the same bytes), docs/notes.txt, docs/sub/deep.txt, hello.txt */
let tree: string;
/** A dir store holding one snapshot of `tree`, named "base"; tests work on copies of it. */
let baseStore: string;
let baseKey: string;
let copies = 0;

async function makeRepo(storePath: string, backend: 'dir' | 'lmdb' = 'dir'): Promise<Repo> {
  // Each fragment its own file: the tests damage fragments by their paths (packed: test/pack).
  return Repo.init({ storePath, backend, passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: BS, threads: 2, packs: false });
}

async function openRepo(t: ExecutionContext, storePath: string): Promise<Repo> {
  const repo = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 2 });
  t.teardown(() => repo.close());
  return repo;
}

/** A private copy of the base store, opened. */
async function baseCopy(t: ExecutionContext): Promise<{ repo: Repo; storePath: string }> {
  const storePath = join(work.path, `copy-${copies++}`);
  await cp(baseStore, storePath, { recursive: true });
  return { repo: await openRepo(t, storePath), storePath };
}

async function ids(repo: Repo, ns: Namespace): Promise<string[]> {
  const out: string[] = [];
  for await (const id of repo.store.list(ns)) out.push(id);
  return out.sort();
}

async function extentsAt(repo: Repo, key: string, path: string[]): Promise<Extent[]> {
  const { snapshot } = await loadSnapshot(repo, key);
  return readExtents(repo, await resolveEntry(repo, snapshot.root, path.map((p) => Buffer.from(p))), `/${path.join('/')}`);
}

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    const { bytesRead } = await fh.read(b, 0, 1, at);
    if (bytesRead !== 1) throw new Error(`${path} is shorter than ${at + 1} bytes`);
    b[0] = b[0]! ^ 0x20;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

/** usedBy entries without the snapshot label, sorted. */
function users(usedBy: string[]): string[] {
  return usedBy.map((u) => u.replace(/^[0-9a-f]{12}:/, '')).sort();
}

test.before(async () => {
  work = await tempDir('fragfs-verify-stats-');
  tree = join(work.path, 'tree');
  await mkdir(join(tree, 'docs', 'sub'), { recursive: true });
  const report = randomBytes(3 * BS + 100);
  await writeFile(join(tree, 'docs', 'report.bin'), report);
  await writeFile(join(tree, 'copy.bin'), report);
  await writeFile(join(tree, 'docs', 'notes.txt'), 'notes\n');
  await writeFile(join(tree, 'docs', 'sub', 'deep.txt'), 'deep\n');
  await writeFile(join(tree, 'hello.txt'), 'hello\n');
  baseStore = join(work.path, 'base');
  const repo = await makeRepo(baseStore);
  try {
    baseKey = (await putPaths(repo, [tree], { name: 'base' })).key;
  } finally {
    await repo.close();
  }
});

test.after.always(async () => {
  await work?.remove();
});

// ---- verify ---------------------------------------------------------------------------------

test('verify: a clean store has no problems, and every fragment is checked once', async (t) => {
  const { repo } = await baseCopy(t);
  const data = await ids(repo, repo.dataNs);
  const meta = await ids(repo, repo.metaNs);
  // report.bin/copy.bin share 4 blocks; notes, deep, hello one each.
  t.is(data.length, 7);
  // Dir objects of tree, docs, docs/sub, and the snapshot.
  t.is(meta.length, 4);
  for (const key of [undefined, 'base']) {
    const r = await verifyStore(repo, key);
    t.deepEqual(r.problems, []);
    t.is(r.snapshots, 1);
    t.is(r.dataChecked, data.length);
    t.is(r.metaChecked, meta.length);
    t.is(r.unreferencedChecked, 0);
    t.is(r.plainBytesChecked, 3 * BS + 100 + 'notes\n'.length + 'deep\n'.length + 'hello\n'.length);
  }
});

test('verify: a missing data fragment is reported with every file that needs it', async (t) => {
  const { repo, storePath } = await baseCopy(t);
  const victim = (await extentsAt(repo, baseKey, ['docs', 'report.bin']))[1]!.id;
  await repo.store.delete(repo.dataNs, victim);
  const r = await verifyStore(repo, undefined);
  t.is(r.problems.length, 1, JSON.stringify(r.problems));
  const p = r.problems[0]!;
  t.is(p.fragmentId, victim);
  t.is(p.kind, 'data');
  t.is(p.problem, 'missing');
  t.deepEqual(users(p.usedBy), ['/copy.bin', '/docs/report.bin']);
  t.true(p.usedBy.every((u) => u.startsWith(`${baseKey.slice(0, 12)}:`)));
  t.is(r.dataChecked, 6);

  const err = await t.throwsAsync(getTree(repo, 'base', join(storePath, '..', `restore-${copies}`)));
  t.true(isFragfsError(err, 'MISSING_FRAGMENT'), String(err));
  t.is((err as FragfsError).fragmentId, victim);
});

test('verify: a corrupt dir fragment is reported with its folder; the rest is still checked', async (t) => {
  const { repo } = await baseCopy(t);
  const { snapshot } = await loadSnapshot(repo, baseKey);
  const docs = await resolveEntry(repo, snapshot.root, [Buffer.from('docs')]);
  const dirId = docs.dir!;
  await flipByte((unpacked(repo.store) as DirStore).fragmentPath(repo.metaNs, dirId), 40);
  const r = await verifyStore(repo, 'base');
  t.is(r.problems.length, 1, JSON.stringify(r.problems));
  const p = r.problems[0]!;
  t.is(p.fragmentId, dirId);
  t.is(p.kind, 'meta');
  t.is(p.problem, 'corrupt');
  t.deepEqual(users(p.usedBy), ['/docs']);
  // copy.bin (the same 4 blocks as docs/report.bin) and hello.txt are still read and checked.
  t.is(r.dataChecked, 5);
});

test('verify: a corrupt snapshot object is reported as such', async (t) => {
  const { repo } = await baseCopy(t);
  await flipByte((unpacked(repo.store) as DirStore).fragmentPath(repo.metaNs, baseKey), 30);
  const r = await verifyStore(repo, undefined);
  t.deepEqual(
    r.problems.map((p) => [p.fragmentId, p.kind, p.problem, p.usedBy]),
    [[baseKey, 'meta', 'corrupt', [`snapshot ${baseKey.slice(0, 12)}`]]],
  );
  t.is(r.snapshots, 0);
});

test('verify: a damaged ref is named by its own id, and the other snapshots are still verified', async (t) => {
  const { repo } = await baseCopy(t);
  const other = join(work.path, `ref-other-${copies}`);
  await mkdir(other);
  await writeFile(join(other, 'x.txt'), 'x\n');
  const otherKey = (await putPaths(repo, [other], { name: 'other' })).key;
  // A ref is stored under the meta key of the snapshot it names.
  await flipByte((unpacked(repo.store) as DirStore).fragmentPath(repo.refNs, baseKey), 20);
  const r = await verifyStore(repo, undefined);
  t.deepEqual(
    r.problems.map((p) => [p.fragmentId, p.kind, p.problem]),
    [[baseKey, 'ref', 'corrupt']],
  );
  // One bad ref must not hide everything else: the snapshot "other" is still walked and its block read.
  t.true(r.snapshots >= 1, `snapshots verified: ${r.snapshots}`);
  t.true(r.dataChecked >= 1, `data fragments verified: ${r.dataChecked}`);
  t.is(await repo.resolveSnapshot(otherKey), otherKey);
});

test('verify: unreferenced fragments are checked against their id and counted, only without a key', async (t) => {
  const { repo } = await baseCopy(t);
  // An orphan block (an interrupted put leaves these), an orphan dir object, and a damaged orphan.
  await repo.writeBlock(randomBytes(1000));
  await repo.putMeta({
    kind: 'dir',
    v: META_VERSION,
    entries: [{ name: Buffer.from('orphan'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 0, blocks: [] }],
  });
  const bogus = 'ab'.repeat(32);
  await repo.store.put(repo.dataNs, bogus, randomBytes(200));

  const all = await verifyStore(repo, undefined);
  t.is(all.unreferencedChecked, 2);
  t.deepEqual(
    all.problems.map((p) => [p.fragmentId, p.kind, p.problem, p.usedBy]),
    [[bogus, 'data', 'corrupt', []]],
  );
  t.is(all.dataChecked, 7);

  const one = await verifyStore(repo, 'base');
  t.is(one.unreferencedChecked, 0);
  t.deepEqual(one.problems, []);
});

// ---- stats ----------------------------------------------------------------------------------

test('stats: logical and unique bytes, dedup ratio 2 after two identical puts, counts as store.list sees them', async (t) => {
  const dir = join(work.path, 'stats');
  const src = join(dir, 'tree');
  await mkdir(src, { recursive: true });
  const sizes = [2 * BS + 5, BS, 100];
  for (const [i, n] of sizes.entries()) await writeFile(join(src, `f${i}.bin`), randomBytes(n));
  const repo = await makeRepo(join(dir, 'store'));
  t.teardown(() => repo.close());
  await putPaths(repo, [src]);
  await putPaths(repo, [src]);

  const plain = sizes.reduce((a, b) => a + b, 0);
  const s = await storeStats(repo);
  t.is(s.snapshots, 2);
  t.is(s.refs, 2);
  t.is(s.logicalBytes, 2 * plain);
  t.is(s.uniquePlainBytes, plain);
  t.is(s.dedupRatio, 2);
  const data = await ids(repo, repo.dataNs);
  const meta = await ids(repo, repo.metaNs);
  t.is(s.dataFragments, data.length);
  t.is(s.dataFragments, 5);
  t.is(s.metaFragments, meta.length);
  t.is(s.metaFragments, 3); // one dir object (identical both times) and two snapshot objects
  let dataStored = 0;
  for (const id of data) dataStored += (await repo.store.size(repo.dataNs, id))!;
  let metaStored = 0;
  for (const id of meta) metaStored += (await repo.store.size(repo.metaNs, id))!;
  t.is(s.dataStoredBytes, dataStored);
  t.is(s.metaStoredBytes, metaStored);
  // Random bytes do not compress: each block costs its plaintext + status byte, crc32 and GCM tag.
  t.is(s.dataStoredBytes, plain + 5 * (1 + 4 + 16));
  t.true(s.compressionRatio! < 1 && s.compressionRatio! > 0.99, String(s.compressionRatio));
  t.is(s.overallRatio, s.logicalBytes / (dataStored + metaStored));
  t.is(s.reclaimableFragments, 0);

  // A compressible file whose four blocks are one plaintext: more dedup, and compression pays.
  const text = join(dir, 'text');
  await mkdir(text);
  await writeFile(join(text, 'same.txt'), 'abcd'.repeat(BS));
  await putPaths(repo, [text]);
  const s2 = await storeStats(repo);
  t.is(s2.logicalBytes, 2 * plain + 4 * BS);
  t.is(s2.uniquePlainBytes, plain + BS);
  t.is(s2.dataFragments, 6);
  t.is(s2.dedupRatio, (2 * plain + 4 * BS) / (plain + BS));
  t.true(s2.dataStoredBytes < dataStored + 1000, `a 64 KiB block of "abcd" stored in ${s2.dataStoredBytes - dataStored} bytes`);
  t.true(s2.compressionRatio! > 1.2, String(s2.compressionRatio));
});

// ---- sync -----------------------------------------------------------------------------------

test('sync: one snapshot from a dir store into a new lmdb store, then the rest', async (t) => {
  const { repo: src, storePath } = await baseCopy(t);
  const baseData = await ids(src, src.dataNs);
  const other = join(work.path, 'other-tree');
  await mkdir(other);
  await writeFile(join(other, 'other.bin'), randomBytes(2 * BS));
  await writeFile(join(other, 'hello.txt'), 'hello\n'); // the same block as tree/hello.txt
  const otherKey = (await putPaths(src, [other], { name: 'other' })).key;
  const srcData = await ids(src, src.dataNs);
  const srcMeta = await ids(src, src.metaNs);
  t.is(srcData.length, 7 + 2);
  t.is(srcMeta.length, 4 + 2);

  const dst = join(storePath, '..', `lmdb-${copies}`);
  const one = await syncStore(src, dst, 'base', { backend: 'lmdb' });
  // 7 data + 4 meta (3 dirs and the snapshot) + 1 ref.
  t.deepEqual([one.snapshots, one.copiedFragments, one.presentFragments], [1, 12, 0]);

  let dstRepo = await Repo.open({ storePath: dst, passphrase: TEST_PASSPHRASE, threads: 2 });
  try {
    t.is(dstRepo.store.backend, 'lmdb');
    t.deepEqual(await ids(dstRepo, dstRepo.dataNs), baseData);
    t.deepEqual((await dstRepo.listRefs()).map((r) => [r.snapshot, r.name]), [[baseKey, 'base']]);
    await t.throwsAsync(dstRepo.resolveSnapshot('other'), { code: 'NOT_FOUND' } as never);
    const restored = join(work.path, `restored-${copies}`);
    await getTree(dstRepo, 'base', restored);
    t.deepEqual(await describeTree(restored), await describeTree(tree));
    const v = await verifyStore(dstRepo, undefined);
    t.deepEqual(v.problems, []);
    t.is(v.unreferencedChecked, 0);
  } finally {
    await dstRepo.close();
  }

  // Everything else: other.bin's 2 blocks, other's dir object and snapshot, and its ref. All of base
  // (7 data, 4 meta, 1 ref) is already there, hello.txt's block among it.
  const rest = await syncStore(src, dst, undefined);
  t.deepEqual([rest.snapshots, rest.copiedFragments, rest.presentFragments], [2, 5, 7 + 4 + 1]);
  dstRepo = await Repo.open({ storePath: dst, passphrase: TEST_PASSPHRASE, threads: 2 });
  try {
    t.deepEqual(await ids(dstRepo, dstRepo.dataNs), srcData);
    t.deepEqual(await ids(dstRepo, dstRepo.metaNs), srcMeta);
    t.is(await dstRepo.resolveSnapshot('other'), otherKey);
  } finally {
    await dstRepo.close();
  }
});

test('sync: a damaged source fragment is not copied, and the snapshot is not listed in the destination', async (t) => {
  const { repo: src, storePath } = await baseCopy(t);
  const victim = (await extentsAt(src, baseKey, ['copy.bin']))[2]!.id;
  await flipByte((unpacked(src.store) as DirStore).fragmentPath(src.dataNs, victim), 100);
  const dst = join(storePath, '..', `lmdb-bad-${copies}`);
  const err = await t.throwsAsync(syncStore(src, dst, 'base', { backend: 'lmdb' }));
  t.true(isFragfsError(err, 'CORRUPT'), String(err));
  t.is((err as FragfsError).fragmentId, victim);
  const out = await openBackend('lmdb', dst);
  try {
    t.false(await out.has(src.dataNs, victim));
    t.false(await out.has(src.metaNs, baseKey));
    let refs = 0;
    for await (const _ of out.list(src.refNs)) refs++;
    t.is(refs, 0);
  } finally {
    await out.close();
  }
});
