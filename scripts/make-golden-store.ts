// Writes the golden fixture stores (fixtures/stores/v1/): a small deterministic tree put into a
// `dir` and a `split` store, plus expected.json describing every path of that tree, the meta keys and
// the data fragments of every file. test/repo/golden-store.test.ts opens these committed stores with
// today's code: a format change that breaks stores written by older fragfs fails that test.
// Run once per store format version, never from a test:
//   node dist/scripts/make-golden-store.js [--out fixtures/stores/v1] [--force]
// (lmdb is left out on purpose: its file layout depends on the lmdb library version, not on fragfs.)

import { deepStrictEqual } from 'node:assert';
import { createHash } from 'node:crypto';
import { chmod, link, lstat, lutimes, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Entry } from '../src/fragment/tree-format.js';
import { putPaths } from '../src/repo/put.js';
import { Repo } from '../src/repo/repo.js';
import { loadSnapshot, walkTree } from '../src/repo/tree-reader.js';
import { readExtents } from '../src/repo/tree-writer.js';

export const GOLDEN_PASSPHRASE = 'fragfs golden v1';
export const GOLDEN_BLOCK_SIZE = 65536;
export const GOLDEN_KDF_COST = 10;
export const GOLDEN_NAME = 'golden';
const BACKENDS = ['dir', 'split'] as const;
const BS = GOLDEN_BLOCK_SIZE;

/** Deterministic bytes: SHA-256 in counter mode over a seed (stable across Node versions). */
function prngBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0, off = 0; off < length; i++, off += 32) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

/** Fixed mtimes: 2021-06-15T12:34:56.789Z plus a whole number of seconds per path. */
function fixedTime(n: number): Date {
  return new Date(Date.UTC(2021, 5, 15, 12, 34, 56, 789) + n * 1000);
}

/** Builds the golden tree under `root` (which must not exist). */
async function makeTree(root: string): Promise<void> {
  const p = (...parts: string[]) => join(root, ...parts);
  await mkdir(p('notes', 'deep', 'nested'), { recursive: true });
  await mkdir(p('data'));
  await mkdir(p('bin'));
  await mkdir(p('empty-folder'));
  await mkdir(p('Ünïcødé 日本'));

  const readme = 'fragfs golden tree v1\nEvery byte of this tree is fixed; see scripts/make-golden-store.ts.\n';
  await writeFile(p('README.txt'), readme);
  await writeFile(p('copy-of-readme.txt'), readme); // same content: one shared data fragment
  await writeFile(p('notes', 'todo.md'), '# todo\n\n- keep old stores readable\n- never change a format silently\n');
  await writeFile(p('notes', 'deep', 'nested', 'leaf.txt'), 'a leaf three folders down\n');
  await writeFile(p('naïve café ✓.txt'), 'a file with a unicode name\n');
  await writeFile(p('Ünïcødé 日本', 'ファイル.txt'), 'unicode folder, unicode file\n');
  await writeFile(p('empty-file'), '');
  await writeFile(p('private.txt'), 'only the owner reads this\n');
  await writeFile(p('bin', 'run.sh'), '#!/bin/sh\necho golden\n');

  // Three blocks of incompressible bytes, the last one short.
  await writeFile(p('data', 'random.bin'), prngBytes('random.bin', 2 * BS + 12345));
  // 40 distinct, compressible blocks plus a short one: 41 extents, more than the inline maximum
  // (32), so its manifest lives in a manifest page fragment; the blocks are stored zstd-compressed.
  const lines: string[] = [];
  for (let i = 0; lines.join('').length < 40 * BS + 7; i++) lines.push(`log line ${String(i).padStart(8, '0')}: nothing happened\n`);
  await writeFile(p('data', 'paged.log'), lines.join('').slice(0, 40 * BS + 7));
  // Sparse: data in block 0 and block 3, holes in blocks 1-2 and in the short block 4.
  const fh = await open(p('data', 'sparse.img'), 'w');
  await fh.write(prngBytes('sparse-head', 1000), 0, 1000, 100);
  await fh.write(Buffer.from('tail of the sparse file\n'), 0, 24, 3 * BS + 50);
  await fh.truncate(4 * BS + 100);
  await fh.close();

  await writeFile(p('original.txt'), 'one inode, two names\n');
  await link(p('original.txt'), p('notes', 'hardlink.txt'));
  await symlink('README.txt', p('link-to-readme'));
  await symlink('../data/random.bin', p('notes', 'link-up'));
  await symlink('nowhere/at/all', p('dangling-link'));

  await chmod(p('bin', 'run.sh'), 0o755);
  await chmod(p('private.txt'), 0o600);
  for (const f of ['README.txt', 'copy-of-readme.txt', 'notes/todo.md', 'notes/deep/nested/leaf.txt', 'naïve café ✓.txt',
    'Ünïcødé 日本/ファイル.txt', 'empty-file', 'data/random.bin', 'data/paged.log', 'data/sparse.img', 'original.txt']) {
    await chmod(p(f), 0o644);
  }
  await chmod(p('notes', 'deep'), 0o750);
  for (const d of ['', 'notes', 'notes/deep/nested', 'data', 'bin', 'empty-folder', 'Ünïcødé 日本']) await chmod(p(d), 0o755);

  // Times last, deepest first, so creating children does not move a folder's mtime again.
  const all = await listPaths(root);
  all.sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? -1 : 1));
  let n = 0;
  for (const rel of all) {
    const abs = rel === '.' ? root : p(rel);
    const t = fixedTime(n++);
    if ((await lstat(abs)).isSymbolicLink()) await lutimes(abs, t, t);
    else await utimes(abs, t, t);
  }
}

/** Every path under root, relative with '/' separators, the root as '.'. */
async function listPaths(root: string): Promise<string[]> {
  const out = ['.'];
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      const r = rel === '.' ? name : `${rel}/${name}`;
      out.push(r);
      if ((await lstat(join(abs, name))).isDirectory()) await walk(join(abs, name), r);
    }
  };
  await walk(root, '.');
  return out;
}

export interface GoldenPath {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** mode & 0o7777 */
  mode: number;
  /** files: bytes; symlinks: target length; dirs: 0 */
  size: number;
  mtimeMs: number;
  target?: string;
  sha256?: string;
  /** Files that are one inode share a group number (1, 2, ... in path order). */
  linkGroup?: number;
}

export interface GoldenBackend {
  metaKey: string;
  /** Every file's data fragments: [offset, plainSize, fragment id], in file order. */
  blocks: Record<string, [number, number, string][]>;
}

export interface GoldenExpected {
  format: string;
  passphrase: string;
  blockSize: number;
  kdfCost: number;
  name: string;
  backends: Record<string, GoldenBackend>;
  paths: GoldenPath[];
}

/** Every path under root ('.' for the root), as expected.json records it; the test describes a restore the same way. */
export async function describeGoldenTree(root: string): Promise<GoldenPath[]> {
  const out: GoldenPath[] = [];
  const groups = new Map<string, number>();
  const inodeCount = new Map<string, number>();
  const paths = await listPaths(root);
  for (const rel of paths) {
    const st = await lstat(rel === '.' ? root : join(root, rel));
    if (st.isFile() && st.nlink > 1) inodeCount.set(`${st.ino}`, (inodeCount.get(`${st.ino}`) ?? 0) + 1);
  }
  for (const rel of paths) {
    const abs = rel === '.' ? root : join(root, rel);
    const st = await lstat(abs);
    const rec: GoldenPath = {
      path: rel,
      type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file',
      mode: st.mode & 0o7777,
      size: st.isDirectory() ? 0 : st.size,
      mtimeMs: Math.floor(st.mtimeMs),
    };
    if (st.isSymbolicLink()) rec.target = await readlink(abs);
    if (st.isFile()) {
      rec.sha256 = createHash('sha256').update(await readFile(abs)).digest('hex');
      if ((inodeCount.get(`${st.ino}`) ?? 0) > 1) {
        if (!groups.has(`${st.ino}`)) groups.set(`${st.ino}`, groups.size + 1);
        rec.linkGroup = groups.get(`${st.ino}`)!;
      }
    }
    out.push(rec);
  }
  return out;
}

async function blocksOf(repo: Repo, key: string): Promise<GoldenBackend['blocks']> {
  const { snapshot } = await loadSnapshot(repo, key);
  const out: GoldenBackend['blocks'] = {};
  await walkTree(repo, snapshot.root, {
    entry: async (e: Entry, path: string) => {
      if (e.type !== 'file') return;
      const rel = path === '/' ? '.' : path.slice(1);
      out[rel] = (await readExtents(repo, e, path)).map((x) => [x.offset, x.plainSize, x.id]);
    },
  });
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** JSON with one path record and one block per line, so a diff of two versions reads well. */
function formatExpected(e: GoldenExpected): string {
  const backends = Object.entries(e.backends).map(([name, b]) => {
    const files = Object.entries(b.blocks).map(
      ([path, blocks]) =>
        `        ${JSON.stringify(path)}: [${blocks.map((x) => `\n          ${JSON.stringify(x)}`).join(',')}${blocks.length > 0 ? '\n        ' : ''}]`,
    );
    return `    ${JSON.stringify(name)}: {\n      "metaKey": ${JSON.stringify(b.metaKey)},\n      "blocks": {\n${files.join(',\n')}\n      }\n    }`;
  });
  const head = { format: e.format, passphrase: e.passphrase, blockSize: e.blockSize, kdfCost: e.kdfCost, name: e.name };
  const headLines = Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return (
    `{\n${headLines.join(',\n')},\n  "backends": {\n${backends.join(',\n')}\n  },\n` +
    `  "paths": [\n${e.paths.map((p) => `    ${JSON.stringify(p)}`).join(',\n')}\n  ]\n}\n`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: fileURLToPath(new URL('../../fixtures/stores/v1', import.meta.url)) },
      force: { type: 'boolean', default: false },
    },
  });
  const out = resolve(values.out!);
  if (!values.force) {
    const exists = await stat(join(out, 'expected.json')).then(() => true, () => false);
    if (exists) throw new Error(`${out} already holds golden stores; they are frozen (use --force only for a new format version)`);
  }
  const work = await mkdtemp(join(tmpdir(), 'fragfs-golden-'));
  try {
    const tree = join(work, GOLDEN_NAME);
    await makeTree(tree);
    const expected: GoldenExpected = {
      format: 'fragfs golden store v1',
      passphrase: GOLDEN_PASSPHRASE,
      blockSize: GOLDEN_BLOCK_SIZE,
      kdfCost: GOLDEN_KDF_COST,
      name: GOLDEN_NAME,
      backends: {},
      paths: await describeGoldenTree(tree),
    };
    for (const backend of BACKENDS) {
      const storePath = join(out, backend);
      await rm(storePath, { recursive: true, force: true });
      const repo = await Repo.init({
        storePath,
        backend,
        passphrase: GOLDEN_PASSPHRASE,
        kdfCost: GOLDEN_KDF_COST,
        blockSize: GOLDEN_BLOCK_SIZE,
      });
      try {
        const put = await putPaths(repo, [tree], { name: GOLDEN_NAME });
        expected.backends[backend] = { metaKey: put.key, blocks: await blocksOf(repo, put.key) };
        console.log(`${backend}: ${put.key} (${put.files} files, ${put.dirs} dirs, ${put.symlinks} symlinks, ${put.logicalBytes} bytes)`);
      } finally {
        await repo.close();
      }
      // Empty folders (the temp folder) cannot be committed; the store recreates them on demand.
      await rm(join(storePath, 'default', 'tmp'), { recursive: true, force: true });
    }
    const text = formatExpected(expected);
    deepStrictEqual(JSON.parse(text), JSON.parse(JSON.stringify(expected)));
    await writeFile(join(out, 'expected.json'), text);
    console.log(`wrote ${join(out, 'expected.json')}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
