// put reads each file once, consistently: a file that changes while it is read (size, mtime or ctime
// moved, or EOF came early) is read again; one that keeps changing is stored as its last read went,
// never padded with zeros, with a warning; a file that vanishes once put has listed its folder is
// left out with a warning. The changes here are made from put's own progress callbacks, so each race
// is hit every time. Small files, read a batch at a time by the local-fs addon, follow the same rules.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import { link, mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isFragfsError } from '../../src/errors.js';
import { getTree } from '../../src/repo/get.js';
import { MAX_READ_ATTEMPTS, putPaths } from '../../src/repo/put.js';
import { PutSurvey } from '../../src/repo/put-survey.js';
import { Repo } from '../../src/repo/repo.js';
import { verifyStore } from '../../src/repo/verify.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

const BS = 65536;

async function setup(t: ExecutionContext): Promise<{ repo: Repo; dir: string }> {
  const work = await tempDir('fragfs-put-consistency-');
  t.teardown(work.remove);
  const repo = await Repo.init({
    storePath: join(work.path, 'store'),
    backend: 'dir',
    passphrase: TEST_PASSPHRASE,
    kdfCost: TEST_KDF_COST,
    blockSize: BS,
    threads: 2,
    // Each block its own file, so a block is stored (and onBytes called) while the next are read:
    // the tests change files at that moment.
    packs: false,
  });
  t.teardown(() => repo.close());
  return { repo, dir: work.path };
}

/** `bytes` bytes, all equal to `fill` (never 0): a version of a file the test can recognise. */
function version(fill: number, bytes: number): Buffer {
  return Buffer.alloc(bytes, fill);
}

async function restored(t: ExecutionContext, repo: Repo, key: string, dir: string): Promise<string> {
  const dest = join(dir, `restore-${Math.random().toString(36).slice(2)}`);
  await getTree(repo, key, dest);
  const report = await verifyStore(repo, key);
  t.deepEqual(report.problems, [], 'the snapshot is consistent with what it declares');
  return dest;
}

test('a file cut short after the scan is stored at its new size, not padded with zeros', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(tree);
  const file = join(tree, 'big.bin');
  await writeFile(file, randomBytes(6 * 1024 * 1024));
  const fresh = randomBytes(1024 * 1024);
  const r = await putPaths(repo, [tree], {
    // After the scan measured 6 MiB, before any byte is read.
    onTotal: () => writeFileSync(file, fresh),
  });
  t.deepEqual(r.warnings, []);
  t.is(r.logicalBytes, fresh.length);
  const dest = await restored(t, repo, r.key, dir);
  const back = await readFile(join(dest, 'big.bin'));
  t.is(back.length, fresh.length);
  t.true(back.equals(fresh));
});

for (const [what, after] of [
  ['shrinks', 1024 * 1024 + 17],
  ['grows', 7 * 1024 * 1024 + 5],
] as const) {
  test(`a file that ${what} while it is read is read again and stored as one version`, async (t) => {
    const { repo, dir } = await setup(t);
    const tree = join(dir, 'tree');
    await mkdir(tree);
    const file = join(tree, 'moving.bin');
    await writeFile(file, version(1, 4 * 1024 * 1024));
    let changes = 0;
    const r = await putPaths(repo, [tree], {
      // The first block stored: the reader is a few blocks into 64, so the change lands mid-read.
      onBytes: () => {
        if (changes++ === 0) writeFileSync(file, version(2, after));
      },
    });
    t.deepEqual(r.warnings, []);
    t.is(r.rereadFiles, 1);
    const back = await readFile(join(await restored(t, repo, r.key, dir), 'moving.bin'));
    t.true(back.equals(version(2, after)), `restored ${back.length} bytes, first ${back[0]}, last ${back[back.length - 1]}`);
  });
}

test('a file that keeps changing is stored as its last read, with a warning; never with zeros for missing bytes', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(tree);
  const file = join(tree, 'restless.bin');
  await writeFile(join(tree, 'calm.txt'), 'calm\n');
  const sizes = [4 * 1024 * 1024, 3 * 1024 * 1024 + 9];
  await writeFile(file, version(1, sizes[0]!));
  let n = 0;
  const warned: string[] = [];
  const r = await putPaths(repo, [tree], {
    // Every tenth block stored, the file becomes another version (truncate, then rewrite from 0:
    // a reader may see it short, but never a hole).
    onBytes: () => {
      if (++n % 10 === 0) writeFileSync(file, version(2 + ((n / 10) % 200), sizes[(n / 10) % 2]!));
    },
    onWarning: (w) => warned.push(w),
  });
  t.is(r.warnings.length, 1, JSON.stringify(r.warnings));
  t.regex(r.warnings[0]!, /restless\.bin/);
  t.regex(r.warnings[0]!, /changed while it was read/);
  t.deepEqual(warned, r.warnings);
  t.is(r.rereadFiles, 1);
  const dest = await restored(t, repo, r.key, dir);
  const back = await readFile(join(dest, 'restless.bin'));
  t.true(back.length <= Math.max(...sizes));
  t.is(back.indexOf(0), -1, 'no zero byte: nothing stands in for bytes that were not read');
  t.is(await readFile(join(dest, 'calm.txt'), 'utf8'), 'calm\n');
});

test('a file that vanishes after its folder was listed is left out with a warning; the rest is stored', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  // More files before it than put reads at once (512): gone.txt is opened only after one of them
  // finished, so after the first block stored, when it is removed.
  for (let i = 0; i < 600; i++) await writeFile(join(tree, 'sub', `a${String(i).padStart(3, '0')}`), `${i}\n`);
  await writeFile(join(tree, 'sub', 'gone.txt'), 'gone\n');
  let removed = false;
  const r = await putPaths(repo, [tree], {
    onBytes: () => {
      if (!removed) rmSync(join(tree, 'sub', 'gone.txt'));
      removed = true;
    },
  });
  t.is(r.warnings.length, 1, JSON.stringify(r.warnings));
  t.regex(r.warnings[0]!, /sub\/gone\.txt.*(vanished|no longer)/);
  t.is(r.files, 600);
  const dest = await restored(t, repo, r.key, dir);
  const back = await readdir(join(dest, 'sub'));
  t.is(back.length, 600);
  t.false(back.includes('gone.txt'));
});

test('a file that vanishes after the survey, before its folder is listed, is simply not there', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  await writeFile(join(tree, 'sub', 'gone.txt'), 'gone\n');
  await writeFile(join(tree, 'sub', 'kept.txt'), 'kept\n');
  // A survey that keeps no scans: the walk lists the folder itself, after the file is gone.
  const survey = new PutSurvey([tree], {}, 0);
  const r = await putPaths(repo, [tree], { survey, onTotal: () => rmSync(join(tree, 'sub', 'gone.txt')) });
  t.deepEqual(r.warnings, []);
  t.is(r.files, 1);
  const dest = await restored(t, repo, r.key, dir);
  t.deepEqual(await readdir(join(dest, 'sub')), ['kept.txt']);
});

test('a file that vanishes after the survey listed its folder for the walk is left out with a warning', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  await writeFile(join(tree, 'sub', 'gone.txt'), 'gone\n');
  await writeFile(join(tree, 'sub', 'kept.txt'), 'kept\n');
  const r = await putPaths(repo, [tree], { onTotal: () => rmSync(join(tree, 'sub', 'gone.txt')) });
  t.is(r.warnings.length, 1, JSON.stringify(r.warnings));
  t.regex(r.warnings[0]!, /sub\/gone\.txt.*(vanished|no longer)/);
  t.is(r.files, 1);
  const dest = await restored(t, repo, r.key, dir);
  t.deepEqual(await readdir(join(dest, 'sub')), ['kept.txt']);
});

test('a root path that vanishes after the scan is an error, not a warning', async (t) => {
  const { repo, dir } = await setup(t);
  const file = join(dir, 'alone.txt');
  await writeFile(file, 'alone\n');
  const err = await t.throwsAsync(putPaths(repo, [file], { onTotal: () => rmSync(file) }));
  t.true(isFragfsError(err, 'NOT_FOUND'), String(err));
  t.regex(err!.message, /alone\.txt/);
});

test('a hard-linked file read again keeps one content and one size for all its names', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(tree);
  const file = join(tree, 'a.bin');
  await writeFile(file, version(3, 2 * 1024 * 1024));
  await link(file, join(tree, 'b.bin'));
  let changes = 0;
  const r = await putPaths(repo, [tree], {
    onBytes: () => {
      if (changes++ === 0) truncateSync(file, 100 * 1024 + 3);
    },
  });
  t.deepEqual(r.warnings, []);
  const dest = await restored(t, repo, r.key, dir);
  const a = await stat(join(dest, 'a.bin'));
  const b = await stat(join(dest, 'b.bin'));
  t.is(a.ino, b.ino);
  t.is(a.size, 100 * 1024 + 3);
  t.true((await readFile(join(dest, 'a.bin'))).equals(version(3, 100 * 1024 + 3)));
});

test('a small file whose mtime is ahead of the clock is read MAX_READ_ATTEMPTS times in all, the batched read the first', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'calm.txt'), 'calm\n');
  const file = join(tree, 'ahead.txt');
  await writeFile(file, 'from the future\n');
  // Every read of it is racy (changed "after" it began), so none holds still.
  const future = Date.now() / 1000 + 3600;
  await utimes(file, future, future);
  const r = await putPaths(repo, [tree], {});
  t.is(r.rereadFiles, 1);
  t.is(r.warnings.length, 1, JSON.stringify(r.warnings));
  t.regex(r.warnings[0]!, new RegExp(`ahead\\.txt changed while it was read \\(${MAX_READ_ATTEMPTS} times\\).*\\(16 bytes\\)`));
  const dest = await restored(t, repo, r.key, dir);
  t.is(await readFile(join(dest, 'ahead.txt'), 'utf8'), 'from the future\n');
  t.is(await readFile(join(dest, 'calm.txt'), 'utf8'), 'calm\n');
});

test('small files of every shape come back byte for byte: empty, all zeros, binary, one byte under and at 64 KiB', async (t) => {
  const { repo, dir } = await setup(t);
  const tree = join(dir, 'tree');
  await mkdir(tree);
  const files: Record<string, Buffer> = {
    empty: Buffer.alloc(0),
    zeros: Buffer.alloc(4096),
    binary: randomBytes(3001),
    under: randomBytes(65535),
    at: randomBytes(65536),
  };
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(tree, name), bytes);
  for (let i = 0; i < 150; i++) await writeFile(join(tree, `n${i}`), `${i}\n`);
  // Settled: no read of them is racy.
  await new Promise((done) => setTimeout(done, 50));
  const r = await putPaths(repo, [tree], {});
  t.deepEqual(r.warnings, []);
  t.is(r.rereadFiles, 0);
  t.is(r.files, 155);
  const dest = await restored(t, repo, r.key, dir);
  for (const [name, bytes] of Object.entries(files)) t.true((await readFile(join(dest, name))).equals(bytes), name);
  for (let i = 0; i < 150; i++) t.is(await readFile(join(dest, `n${i}`), 'utf8'), `${i}\n`);
});
