// A put with a parent snapshot costs what changed: a folder whose entries all come out as the
// parent's takes the parent's fragment whole, so only the changed files and the folders on their
// paths are looked up or written. Counted on a real dir store through a thin counting wrapper of
// its has and put calls.

import test, { type ExecutionContext } from 'ava';
import { chmod, mkdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { getTree } from '../../src/repo/get.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { verifyStore } from '../../src/repo/verify.js';
import type { Namespace, Store } from '../../src/store/store.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

const TOP = 8;
const SUB = 12;
const FILES = 25; // 8 * 12 * 25 = 2,400 files in 105 folders

/** Ids the store was asked about or given, by kind, since the last reset. */
interface Touched {
  meta: Set<string>;
  data: Set<string>;
  refPuts: number;
  reset(): void;
}

/** Wraps the store's has and put in place: the repo goes on using the real backend through them. */
function countCalls(store: Store): Touched {
  const touched: Touched = {
    meta: new Set(),
    data: new Set(),
    refPuts: 0,
    reset() {
      this.meta.clear();
      this.data.clear();
      this.refPuts = 0;
    },
  };
  const note = (ns: Namespace, id: string): void => {
    if (ns.kind === 'meta') touched.meta.add(id);
    else if (ns.kind === 'data') touched.data.add(id);
  };
  const has = store.has.bind(store);
  const put = store.put.bind(store);
  store.has = async (ns, id) => {
    note(ns, id);
    return has(ns, id);
  };
  store.put = async (ns, id, bytes) => {
    note(ns, id);
    if (ns.kind === 'ref') touched.refPuts++;
    return put(ns, id, bytes);
  };
  return touched;
}

interface Shared {
  repo: Repo;
  tree: string;
  work: string;
  touched: Touched;
  remove: () => Promise<void>;
}


let shared: Shared | undefined;

// One tree and store for the whole file: each test changes it and puts it again, its parent being
// the put before it (so the tests run in order).
test.before(async () => {
  const work = await tempDir('fragfs-put-reuse-');
  const repo = await Repo.init({ storePath: join(work.path, 'store'), backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: 65536 });
  const tree = join(work.path, 'tree');
  // Files an hour old: outside the racy window of the first snapshot, so the quick check trusts them.
  const hourAgo = new Date(Date.now() - 3600_000);
  for (let a = 0; a < TOP; a++) {
    for (let b = 0; b < SUB; b++) {
      const dir = join(tree, `t${a}`, `s${b}`);
      await mkdir(dir, { recursive: true });
      await Promise.all(
        Array.from({ length: FILES }, async (_, f) => {
          await writeFile(join(dir, `f${f}`), `file ${a}/${b}/${f}\n`.repeat(1 + (f % 7)));
          await utimes(join(dir, `f${f}`), hourAgo, hourAgo);
        }),
      );
    }
  }
  await putPaths(repo, [tree]);
  shared = { repo, tree, work: work.path, touched: countCalls(repo.store), remove: work.remove };
});

test.after.always(async () => {
  await shared?.repo.close();
  await shared?.remove();
});

/** A put counted from its start; what it stored verifies and, when asked, restores to the tree as it is. */
async function countedPut(t: ExecutionContext, restore = false): Promise<Awaited<ReturnType<typeof putPaths>>> {
  const s = shared!;
  s.touched.reset();
  const r = await putPaths(s.repo, [s.tree]);
  t.deepEqual(r.warnings, []);
  t.deepEqual((await verifyStore(s.repo, r.key)).problems, []);
  if (restore) {
    const dest = join(s.work, `restore-${r.key.slice(0, 8)}`);
    await getTree(s.repo, r.key, dest);
    t.deepEqual(await describeTree(dest, { mtimes: true }), await describeTree(s.tree, { mtimes: true }));
  }
  return r;
}

const ALL_DIRS = 1 + TOP + TOP * SUB;

test.serial('an unchanged re-put writes nothing but its snapshot and its ref; every folder is taken whole', async (t) => {
  const s = shared!;
  const before = (await s.repo.listRefs()).at(-1)!.snapshot;
  const r = await countedPut(t);
  // verify read fragments but wrote none: the counts are of the put (its has and put calls).
  t.is(r.parent, before);
  t.is(r.unchangedFiles, TOP * SUB * FILES);
  t.is(r.unchangedDirs, ALL_DIRS);
  t.is(r.files, TOP * SUB * FILES);
  t.is(r.dirs, ALL_DIRS);
  t.deepEqual([...s.touched.meta], [r.key], 'only the snapshot object');
  t.is(s.touched.data.size, 0);
  t.is(s.touched.refPuts, 1);
  const a = (await s.repo.getMeta(before, 'snapshot')).root;
  const b = (await s.repo.getMeta(r.key, 'snapshot')).root;
  t.is(b.dir, a.dir);
});

test.serial('a re-put with a handful of changes writes only the changed files and the folders on their paths', async (t) => {
  const s = shared!;
  // Two files edited in two folders of t1, one in t5, one file added in t6/s0.
  await writeFile(join(s.tree, 't1', 's3', 'f4'), 'edited one\n');
  await writeFile(join(s.tree, 't1', 's9', 'f0'), 'edited two, longer\n');
  await writeFile(join(s.tree, 't5', 's11', 'f24'), 'edited three\n');
  await writeFile(join(s.tree, 't6', 's0', 'new'), 'a new file\n');
  // Older than the racy window, so the tests after this one find them unchanged.
  const earlier = new Date(Date.now() - 5400_000);
  for (const p of ['t1/s3/f4', 't1/s9/f0', 't5/s11/f24', 't6/s0/new']) await utimes(join(s.tree, p), earlier, earlier);
  const r = await countedPut(t, true);
  // Folders on the paths: t1/s3, t1/s9, t1, t5/s11, t5, t6/s0, t6 and the top.
  const written = 8;
  t.is(r.unchangedDirs, ALL_DIRS - written);
  t.is(r.unchangedFiles, TOP * SUB * FILES - 3);
  t.is(s.touched.meta.size, written + 1, 'the changed folders and the snapshot object');
  t.is(s.touched.data.size, 4, 'the four changed files, one block each');
  t.is(s.touched.refPuts, 1);
});

for (const [what, change, folders, data] of [
  // Same size and mtime: the file is not read, but its entry differs.
  ['a file whose mode changed', (tree: string) => chmod(join(tree, 't2', 's4', 'f7'), 0o600), ['t2/s4', 't2'], 0],
  // Read again, but its one block is the parent's: named, not looked up or written.
  ['a file whose mtime changed (same content)', (tree: string) => utimes(join(tree, 't2', 's5', 'f7'), new Date(Date.now() - 7200_000), new Date(Date.now() - 7200_000)), ['t2/s5', 't2'], 0],
  ['a renamed file', (tree: string) => rename(join(tree, 't3', 's4', 'f7'), join(tree, 't3', 's4', 'g7')), ['t3/s4', 't3'], 1],
  // The folder's own entries are the same: it is taken whole, and only its parent names it anew.
  ['a sub-folder whose mode changed', (tree: string) => chmod(join(tree, 't4', 's4'), 0o700), ['t4'], 0],
] as const) {
  test.serial(`a folder holding ${what} is written again, and so are the folders above it; no other`, async (t) => {
    await change(shared!.tree);
    const r = await countedPut(t);
    t.is(r.unchangedDirs, ALL_DIRS - folders.length - 1, `written again: ${folders.join(', ')} and the top`);
    t.is(shared!.touched.meta.size, folders.length + 1 + 1);
    t.is(shared!.touched.data.size, data, 'a block is written only when the parent does not hold it');
  });
}

test.serial('a large file edited in the middle and appended to: only its changed blocks are written, the rest named from the parent', async (t) => {
  const s = shared!;
  const big = join(s.tree, 't7', 'big.bin');
  // 40 blocks of 64 KiB: more than a file entry holds inline, so its extents are in manifest pages.
  const bytes = randomBytes(40 * 65536);
  await writeFile(big, bytes);
  const hourAgo = new Date(Date.now() - 3600_000);
  await utimes(big, hourAgo, hourAgo);
  await countedPut(t);
  t.is(shared!.touched.data.size, 40, 'a new file: every block');
  bytes.fill(7, 20 * 65536 + 100, 20 * 65536 + 200);
  await writeFile(big, Buffer.concat([bytes, Buffer.from('appended\n')]));
  const later = new Date(Date.now() - 1800_000);
  await utimes(big, later, later);
  const r = await countedPut(t, true);
  t.is(r.unchangedFiles, r.files - 1);
  t.is(shared!.touched.data.size, 2, 'the edited block and the new last one');
});
