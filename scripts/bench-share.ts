// Measures what issue 14 asks of sharing: the time to share a folder of N small files (default
// 100,000 in 1,000 folders) and what the share adds to the store, on a dir store (packs on), plus
// the time to open the share through its link and to list it. Run after `npm run build`:
//   node dist/scripts/bench-share.js [--files 100000] [--per-folder 100] [--keep]
// Prints one line per figure and writes nothing outside a temp folder (removed unless --keep).

import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { newIdentity, recipientOf } from '../src/people/age-box.js';
import { createShare, openShareLink } from '../src/people/shares.js';
import { putPaths } from '../src/repo/put.js';
import { Repo } from '../src/repo/repo.js';
import { readDirEntries } from '../src/repo/tree-reader.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '100000' },
    'per-folder': { type: 'string', default: '100' },
    keep: { type: 'boolean', default: false },
  },
});
const files = Number(values.files);
const perFolder = Number(values['per-folder']);
if (!Number.isSafeInteger(files) || files < 1 || !Number.isSafeInteger(perFolder) || perFolder < 1) {
  process.stderr.write('usage: bench-share [--files N] [--per-folder N] [--keep]\n');
  process.exit(2);
}

async function bytesUnder(path: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    n += e.isDirectory() ? await bytesUnder(p) : (await stat(p)).size;
  }
  return n;
}

const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

const work = await mkdtemp(join(tmpdir(), 'fragfs-bench-share-'));
try {
  const shared = join(work, 'src', 'shared');
  await mkdir(join(work, 'src', 'other'), { recursive: true });
  await writeFile(join(work, 'src', 'other', 'not-shared.txt'), 'elsewhere\n');
  for (let i = 0; i < files; i++) {
    const folder = join(shared, `d${Math.floor(i / perFolder)}`);
    if (i % perFolder === 0) await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `f${i}.txt`), `file ${i} `.repeat(1 + (i % 300)));
  }
  const storePath = join(work, 'store');
  const repo = await Repo.init({ storePath, backend: 'dir', passphrase: 'bench share', kdfCost: 10 });
  let t0 = process.hrtime.bigint();
  const { key } = await putPaths(repo, [join(work, 'src')]);
  process.stdout.write(`put of ${files} files: ${(ms(t0) / 1000).toFixed(1)} s\n`);

  const before = await bytesUnder(storePath);
  t0 = process.hrtime.bigint();
  const link = await createShare(repo, { snapshot: key, path: [Buffer.from('shared')], to: [] });
  const linkMs = ms(t0);
  const afterLink = await bytesUnder(storePath);
  const alice = await newIdentity();
  t0 = process.hrtime.bigint();
  const people = await createShare(repo, { snapshot: key, path: [Buffer.from('shared')], to: [await recipientOf(alice)] });
  const peopleMs = ms(t0);
  const afterPeople = await bytesUnder(storePath);
  await repo.close();
  process.stdout.write(`share of a folder of ${link.files} files, ${link.dirs} folders, by link: ${linkMs.toFixed(0)} ms, store grew ${afterLink - before} bytes\n`);
  process.stdout.write(`share of the same folder to one recipient: ${peopleMs.toFixed(0)} ms, store grew ${afterPeople - afterLink} bytes\n`);

  t0 = process.hrtime.bigint();
  const opened = await openShareLink(people.link, [alice]);
  const entries = await readDirEntries(opened.repo, opened.snapshot.root, '/');
  process.stdout.write(`open the people share by identity and list its top (${entries.length} folders): ${ms(t0).toFixed(0)} ms\n`);
  await opened.repo.close();
  if (values.keep) process.stdout.write(`kept ${work}\n`);
} finally {
  if (!values.keep) await rm(work, { recursive: true, force: true });
}
