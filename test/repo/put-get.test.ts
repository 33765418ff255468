// putPaths and getTree in process: arbitrary small trees come back identical (property test on a
// memory repo), all-zero blocks become holes, and dedup stores exactly what changed (real lmdb and
// dir stores in temp folders, counted with store.list).

import test from 'ava';
import { deepStrictEqual, ok, strictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, lutimes, mkdir, open, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { showName } from '../../src/fragment/names.js';
import type { Extent } from '../../src/fragment/tree-format.js';
import { getTree } from '../../src/repo/get.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { loadSnapshot, readDirEntries, walkTree } from '../../src/repo/tree-reader.js';
import { readExtents } from '../../src/repo/tree-writer.js';
import type { Namespace } from '../../src/store/store.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

const BS = 65536;
const MiB = 1024 * 1024;

async function count(repo: Repo, ns: Namespace): Promise<number> {
  let n = 0;
  for await (const _ of repo.store.list(ns)) n++;
  return n;
}

// ---- the arbitrary tree -----------------------------------------------------------------------

/** How a file's bytes are made: per block, random, compressible text, or zeros (a hole). */
type BlockKind = 'random' | 'text' | 'zero';
interface FileNode {
  kind: 'file';
  size: number;
  blocks: BlockKind[];
  seed: number;
  mode: number;
}
interface LinkNode {
  kind: 'symlink';
  target: string;
}
interface DirNode {
  kind: 'dir';
  mode: number;
  children: [string, TreeNode][];
}
type TreeNode = (FileNode | LinkNode | DirNode) & { mtimeMs: number };

const SIZES = [0, 1, BS - 1, BS, BS + 1, 3 * BS + 7];

/** A path component: unicode allowed, never '/', NUL, '.', '..' or over 255 bytes. */
const nameArb = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
  .filter((s) => !s.includes('/') && !s.includes('\0') && s !== '.' && s !== '..' && Buffer.byteLength(s) <= 255);

const mtimeArb = fc.integer({ min: 0, max: 4_000_000_000_000 });

const fileArb: fc.Arbitrary<TreeNode> = fc
  .record({
    size: fc.constantFrom(...SIZES),
    kinds: fc.array(fc.constantFrom<BlockKind>('random', 'text', 'zero'), { minLength: 4, maxLength: 4 }),
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
    mode: fc.constantFrom(0o644, 0o600, 0o755, 0o444),
    mtimeMs: mtimeArb,
  })
  .map(({ size, kinds, seed, mode, mtimeMs }) => ({
    kind: 'file' as const,
    size,
    blocks: kinds.slice(0, Math.ceil(size / BS)),
    seed,
    mode,
    mtimeMs,
  }));

const linkArb: fc.Arbitrary<TreeNode> = fc.record({
  kind: fc.constant('symlink' as const),
  target: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\0')),
  mtimeMs: mtimeArb,
});

const { node: nodeArb } = fc.letrec<{ dir: TreeNode; node: TreeNode }>((tie) => ({
  node: fc.oneof({ depthSize: 'medium', withCrossShrink: true }, fileArb, fileArb, linkArb, tie('dir')),
  dir: fc.record({
    kind: fc.constant('dir' as const),
    mode: fc.constantFrom(0o755, 0o700, 0o750),
    mtimeMs: mtimeArb,
    children: fc.uniqueArray(fc.tuple(nameArb, tie('node')), { maxLength: 5, size: 'medium', selector: ([name]) => name }),
  }),
}));

/** The root: a folder with a few entries at least, so every run puts something worth checking. */
const rootArb = fc.record({
  kind: fc.constant('dir' as const),
  mode: fc.constantFrom(0o755, 0o700),
  mtimeMs: mtimeArb,
  children: fc.uniqueArray(fc.tuple(nameArb, nodeArb), { minLength: 3, maxLength: 8, selector: ([name]) => name }),
});

/** Deterministic bytes for a file block (xorshift32: fast and good enough to defeat zstd). */
function blockBytes(kind: BlockKind, seed: number, blockNo: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  if (kind === 'zero') return b;
  if (kind === 'text') {
    const line = Buffer.from(`block ${blockNo} of file ${seed}: compressible text\n`);
    for (let i = 0; i < length; i += line.length) line.copy(b, i, 0, Math.min(line.length, length - i));
    return b;
  }
  let x = (seed ^ (blockNo * 0x9e3779b9)) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  // An all-zero "random" block would be a hole: make sure it is not.
  b[0] = b[0]! | 1;
  return b;
}

/** Writes the model to disk; returns, per file path, how many blocks are not all zero. */
async function writeTree(root: string, node: DirNode & { mtimeMs: number }): Promise<Map<string, number>> {
  const nonZero = new Map<string, number>();
  const write = async (path: string, rel: string, n: TreeNode): Promise<void> => {
    const t = n.mtimeMs / 1000;
    switch (n.kind) {
      case 'dir':
        await mkdir(path, { recursive: true });
        // Keyed by the path as walkTree shows it (names escaped as ls -b does: a `\` is `\\`).
        for (const [name, child] of n.children) await write(join(path, name), `${rel}/${showName(Buffer.from(name))}`, child);
        await chmod(path, n.mode);
        await utimes(path, t, t);
        return;
      case 'file': {
        const fh = await open(path, 'w');
        let blocks = 0;
        for (let blockNo = 0; blockNo * BS < n.size; blockNo++) {
          const length = Math.min(BS, n.size - blockNo * BS);
          const kind = n.blocks[blockNo]!;
          if (kind === 'zero') continue;
          await fh.write(blockBytes(kind, n.seed, blockNo, length), 0, length, blockNo * BS);
          blocks++;
        }
        await fh.truncate(n.size);
        await fh.close();
        await chmod(path, n.mode);
        await utimes(path, t, t);
        nonZero.set(rel, blocks);
        return;
      }
      case 'symlink':
        await symlink(n.target, path);
        // lutimes: the link itself, not what it names (which may not exist).
        await lutimes(path, t, t);
    }
  };
  await write(root, '', node);
  return nonZero;
}

test('arbitrary small trees survive putPaths + getTree unchanged; zero blocks become holes', async (t) => {
  const work = await tempDir('fragfs-putget-prop-');
  t.teardown(work.remove);
  const repo = await Repo.openMemory({ blockSize: BS, threads: 2 });
  t.teardown(() => repo.close());
  let run = 0;
  const seen = { files: 0, dirs: 0, symlinks: 0, bytes: 0, extents: 0 };
  await fc.assert(
    fc.asyncProperty(rootArb, async (tree) => {
      const dir = join(work.path, `run-${run++}`);
      const src = join(dir, 'tree');
      const nonZero = await writeTree(src, tree);
      const put = await putPaths(repo, [src]);
      const dest = join(dir, 'restored');
      const got = await getTree(repo, put.key, dest);
      strictEqual(got.key, put.key);
      deepStrictEqual(await describeTree(dest), await describeTree(src));

      // Each file's manifest names exactly its blocks that are not all zero, on the block grid.
      const { snapshot } = await loadSnapshot(repo, put.key);
      const manifests = new Map<string, Extent[]>();
      await walkTree(repo, snapshot.root, {
        entry: async (e, path) => {
          if (e.type === 'file') manifests.set(path === '/' ? '' : path, await readExtents(repo, e, path));
        },
      });
      deepStrictEqual([...manifests.keys()].sort(), [...nonZero.keys()].sort());
      for (const [path, want] of nonZero) {
        const xs = manifests.get(path)!;
        strictEqual(xs.length, want, `${path}: extents`);
        for (const x of xs) ok(x.offset % BS === 0 && x.plainSize > 0 && x.plainSize <= BS, `${path}: extent ${x.offset}+${x.plainSize}`);
      }
      strictEqual(put.files, nonZero.size);
      seen.files += nonZero.size;
      seen.dirs += put.dirs;
      seen.symlinks += put.symlinks;
      seen.bytes += put.logicalBytes;
      for (const n of nonZero.values()) seen.extents += n;
    }),
    { numRuns: 15 },
  );
  t.log(`put and got ${JSON.stringify(seen)}`);
  t.true(seen.files > 0 && seen.dirs > 15 && seen.bytes > 0, JSON.stringify(seen));
});

test('dedup: changing one byte of a 100 MiB file stores one new data fragment and three meta fragments', async (t) => {
  const work = await tempDir('fragfs-dedup-');
  t.teardown(work.remove);
  const repo = await Repo.init({ storePath: join(work.path, 'store'), backend: 'lmdb', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST });
  t.teardown(() => repo.close());
  t.is(repo.blockSize, MiB);
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  const big = join(tree, 'big.bin');
  await writeFile(big, randomBytes(100 * MiB));
  await writeFile(join(tree, 'note.txt'), 'beside the big file\n');

  const first = await putPaths(repo, [tree]);
  const data1 = await count(repo, repo.dataNs);
  const meta1 = await count(repo, repo.metaNs);
  // 100 distinct 1 MiB blocks and note.txt's one. Meta: big.bin has 100 extents, more than fit inline
  // (32), so one manifest page; the root dir object; the snapshot object.
  t.is(data1, 101);
  t.is(meta1, 3);
  t.is(first.logicalBytes, 100 * MiB + 20);

  const fh = await open(big, 'r+');
  const offset = 50 * MiB + 12345;
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, offset);
  await fh.close();

  const second = await putPaths(repo, [tree]);
  t.not(second.key, first.key);
  // Data: block 50 is new; the old block 50 stays (only gc removes fragments).
  t.is(await count(repo, repo.dataNs), data1 + 1);
  // Meta: a new manifest page (one extent changed), a new root dir object (big.bin's entry names the
  // new page and has a new mtime) and a new snapshot object. note.txt is inline in the dir object.
  t.is(await count(repo, repo.metaNs), meta1 + 3);
  t.is(await count(repo, repo.refNs), 2);

  // The two snapshots differ in exactly that block.
  const extentsOf = async (key: string): Promise<Extent[]> => {
    const { snapshot } = await loadSnapshot(repo, key);
    let xs: Extent[] = [];
    await walkTree(repo, snapshot.root, {
      entry: async (e, path) => {
        if (e.name.equals(Buffer.from('big.bin'))) xs = await readExtents(repo, e, path);
      },
    });
    return xs;
  };
  const before = await extentsOf(first.key);
  const after = await extentsOf(second.key);
  t.is(before.length, 100);
  t.deepEqual(
    after.map((x, i) => (x.id === before[i]!.id ? -1 : i)).filter((i) => i >= 0),
    [50],
  );

  // Nothing changed since: a third put adds no data and only its snapshot object.
  const third = await putPaths(repo, [tree]);
  t.is(await count(repo, repo.dataNs), data1 + 1);
  t.is(await count(repo, repo.metaNs), meta1 + 4);
  t.not(third.key, second.key);
});

test('a second put of the same tree adds no data fragment and only its snapshot object (dir store)', async (t) => {
  const work = await tempDir('fragfs-reput-');
  t.teardown(work.remove);
  const repo = await Repo.init({
    storePath: join(work.path, 'store'),
    backend: 'dir',
    passphrase: TEST_PASSPHRASE,
    kdfCost: TEST_KDF_COST,
    blockSize: BS,
  });
  t.teardown(() => repo.close());
  const tree = join(work.path, 'tree');
  await mkdir(join(tree, 'a', 'b'), { recursive: true });
  await mkdir(join(tree, 'empty'));
  await writeFile(join(tree, 'a', 'b', 'x.bin'), randomBytes(5 * BS + 3));
  await writeFile(join(tree, 'a', 'y.txt'), 'why\n'.repeat(50_000));
  await writeFile(join(tree, 'z.bin'), randomBytes(40 * 1000));
  await symlink('a/y.txt', join(tree, 'link'));

  const first = await putPaths(repo, [tree], { name: 'one' });
  const data = await count(repo, repo.dataNs);
  const meta = await count(repo, repo.metaNs);
  // x.bin: 6 blocks; z.bin: 1; y.txt (200000 bytes of "why\n"): its three full blocks are the same
  // plaintext, so one fragment, plus the short last block.
  t.is(data, 6 + 1 + 2);
  // tree, a, a/b, empty: four dir objects, plus the snapshot.
  t.is(meta, 5);
  const second = await putPaths(repo, [tree], { name: 'two' });
  t.not(second.key, first.key);
  t.is(await count(repo, repo.dataNs), data);
  t.is(await count(repo, repo.metaNs), meta + 1);
  t.is(await repo.resolveSnapshot('one'), first.key);
  t.is(await repo.resolveSnapshot('two'), second.key);
});

test('get restores mtimes to the nanosecond (files, folders, symlinks, before 1970)', async (t) => {
  const work = await tempDir('fragfs-mtime-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  // Times set with exact nanoseconds by touch (node's utimes takes seconds as a double and keeps
  // microseconds); some land exactly on a millisecond, some a few ns before the next one (where
  // a microsecond restore floors to the millisecond before what stat's mtimeMs rounds to).
  const stamps = new Map<string, string>();
  for (const [i, frac] of ['001', '789', '123456', '999999', '000001', '5', '25', '123456789', '999999999', '000000001', '786999950'].entries()) {
    await writeFile(join(tree, `f${i}`), `${i}\n`);
    stamps.set(`f${i}`, `@${1_600_000_000 + i}.${frac}`);
  }
  await writeFile(join(tree, 'old'), 'from 1969\n');
  stamps.set('old', '@-1000000.250000007');
  await symlink('f0', join(tree, 'link'));
  stamps.set('link', '@1650000000.001000003');
  stamps.set('sub', '@1700000000.000999999');
  stamps.set('', '@1600000123.001');
  const want: Record<string, string> = {};
  for (const [rel, stamp] of stamps) {
    const r = spawnSync('touch', ['-h', '-d', stamp, join(tree, rel)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`touch: ${r.stderr}`);
    want[rel || '.'] = String((await lstat(join(tree, rel), { bigint: true })).mtimeNs);
  }
  t.is(want['f0'], '1600000000001000000');
  t.is(want['old'], '-1000000250000007');
  t.is(want['f8'], '1600000008999999999');

  const repo = await Repo.openMemory({ blockSize: BS, threads: 1 });
  t.teardown(() => repo.close());
  const put = await putPaths(repo, [tree]);
  // put keeps every nanosecond: the snapshot holds exactly the source times.
  const { snapshot } = await loadSnapshot(repo, put.key);
  const stored: Record<string, string> = {};
  await walkTree(repo, snapshot.root, {
    entry: (e, path) => {
      stored[path === '/' ? '.' : path.slice(1)] = String(e.mtimeNs);
    },
  });
  t.deepEqual(stored, want);

  const dest = join(work.path, 'restored');
  await getTree(repo, put.key, dest);
  const got: Record<string, string> = {};
  for (const rel of stamps.keys()) got[rel || '.'] = String((await lstat(join(dest, rel), { bigint: true })).mtimeNs);
  t.deepEqual(got, want);
});

test('a put takes files unchanged since the parent snapshot (size, mtime) without reading them', async (t) => {
  const work = await tempDir('fragfs-parent-');
  t.teardown(work.remove);
  const repo = await Repo.init({ storePath: join(work.path, 'store'), backend: 'lmdb', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: BS });
  t.teardown(() => repo.close());
  const tree = join(work.path, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  const hourAgo = new Date(Date.now() - 3600_000);
  const files: Record<string, Buffer> = {
    'same.bin': randomBytes(3 * BS + 5),
    'sub/edited-in-place.bin': randomBytes(2 * BS),
    'grown.txt': Buffer.from('short\n'),
  };
  for (const [p, data] of Object.entries(files)) {
    await writeFile(join(tree, p), data);
    await utimes(join(tree, p), hourAgo, hourAgo);
  }
  // Written just now: within the racy window of the first snapshot, so never trusted unread.
  await writeFile(join(tree, 'fresh.txt'), 'one\n');
  // Its other name is outside the tree: a plain file here, not a hard-link group of one.
  await link(join(tree, 'same.bin'), join(work.path, 'outside-link.bin'));

  const first = await putPaths(repo, [tree]);
  t.is(first.parent, undefined);
  t.is(first.unchangedFiles, 0);
  const firstRoot = (await repo.getMeta(first.key, 'snapshot')).root;
  const firstSame = (await readDirEntries(repo, firstRoot, '/')).find((e) => e.name.equals(Buffer.from('same.bin')));
  t.is(firstSame?.link, undefined);

  // Same size and mtime but new bytes: the quick check cannot see it (as with rsync and restic).
  const swapped = randomBytes(2 * BS);
  await writeFile(join(tree, 'sub/edited-in-place.bin'), swapped);
  await utimes(join(tree, 'sub/edited-in-place.bin'), hourAgo, hourAgo);
  await writeFile(join(tree, 'grown.txt'), 'short\nand longer\n');
  await utimes(join(tree, 'grown.txt'), hourAgo, hourAgo);
  const freshStat = await lstat(join(tree, 'fresh.txt'));
  await writeFile(join(tree, 'fresh.txt'), 'two\n');
  await utimes(join(tree, 'fresh.txt'), freshStat.atime, freshStat.mtime);
  await writeFile(join(tree, 'new.txt'), 'new\n');

  const second = await putPaths(repo, [tree]);
  t.is(second.parent, first.key);
  t.is(second.unchangedFiles, 2); // same.bin and the in-place edit; not grown.txt, fresh.txt, new.txt
  const restored = join(work.path, 'second');
  await getTree(repo, second.key, restored);
  t.deepEqual(await readFile(join(restored, 'same.bin')), files['same.bin']);
  t.deepEqual(await readFile(join(restored, 'sub/edited-in-place.bin')), files['sub/edited-in-place.bin']);
  t.is(await readFile(join(restored, 'grown.txt'), 'utf8'), 'short\nand longer\n');
  t.is(await readFile(join(restored, 'fresh.txt'), 'utf8'), 'two\n');
  t.is(await readFile(join(restored, 'new.txt'), 'utf8'), 'new\n');

  // parent: false reads everything and sees the in-place edit.
  const full = await putPaths(repo, [tree], { parent: false });
  t.is(full.parent, undefined);
  t.is(full.unchangedFiles, 0);
  const again = join(work.path, 'full');
  await getTree(repo, full.key, again);
  t.deepEqual(await readFile(join(again, 'sub/edited-in-place.bin')), swapped);

  // Another source path does not pick this tree's snapshots as parent; an explicit parent works.
  const other = join(work.path, 'other');
  await mkdir(other);
  await writeFile(join(other, 'same.bin'), files['same.bin']!);
  await utimes(join(other, 'same.bin'), hourAgo, hourAgo);
  const alone = await putPaths(repo, [other]);
  t.is(alone.parent, undefined);
  const named = await putPaths(repo, [other], { parent: second.key });
  t.is(named.parent, second.key);
  t.is(named.unchangedFiles, 1);
});
