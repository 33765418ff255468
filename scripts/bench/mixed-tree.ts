// Workloads (e) and (f)'s input: a deterministic mixed tree (large incompressible files, medium files,
// many small text files) and its next version with about 5 % changed: appends, an edit in the middle of
// the largest file, a few edited small files, new files. The next version shares every unchanged file with
// the base through hard links, so tools that skip unchanged files by inode and mtime can do so.

import { appendFile, copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { incompressible, Rng, sourceText } from './data.js';
import { run } from './proc.js';

export interface MixedTrees {
  base: string;
  next: string;
  baseBytes: number;
  changedBytes: number;
  files: number;
}

const MiB = 1 << 20;

export async function makeMixedTrees(tmp: string, totalBytes: number): Promise<MixedTrees> {
  const rng = new Rng(0xbac0 + (totalBytes >>> 20));
  const base = join(tmp, 'mixed-base');
  const next = join(tmp, 'mixed-next');
  let bytes = 0;
  let files = 0;
  const put = async (p: string, body: Buffer): Promise<void> => {
    await writeFile(p, body);
    bytes += body.length;
    files++;
  };
  // 40 %: four large incompressible files (media, archives)
  await mkdir(join(base, 'media'), { recursive: true });
  const large = Math.floor((totalBytes * 0.4) / 4);
  for (let i = 0; i < 4; i++) await put(join(base, 'media', `large${i}.bin`), incompressible(large, `large${i}`));
  // 30 %: medium files, 1-8 MiB, half incompressible, half text
  await mkdir(join(base, 'docs'), { recursive: true });
  for (let i = 0; bytes < totalBytes * 0.7; i++) {
    const size = Math.min(rng.int(1, 8) * MiB, Math.ceil(totalBytes * 0.7 - bytes));
    await put(join(base, 'docs', `doc${i}.${i % 2 ? 'txt' : 'dat'}`), i % 2 ? sourceText(rng, size) : incompressible(size, `doc${i}`));
  }
  // 30 %: small text files in nested folders
  for (let d = 0; bytes < totalBytes; d++) {
    const dir = join(base, 'src', `m${d % 16}`, `p${d}`);
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 20 && bytes < totalBytes; i++) await put(join(dir, `s${i}.ts`), sourceText(rng, rng.logSize(100, 6000, 256 * 1024)));
  }
  const baseBytes = bytes;

  await run(['cp', '-al', base, next]);
  let changed = 0;
  // Replace a hard link by a real copy before changing it, so the base stays as it was.
  const unshare = async (p: string): Promise<void> => {
    await copyFile(p, p + '.tmp');
    await rename(p + '.tmp', p);
  };
  // ~1 %: an edit in the middle of the largest file, same size
  const big = join(next, 'media', 'large0.bin');
  await unshare(big);
  const editLen = Math.max(64 * 1024, Math.floor(baseBytes * 0.01));
  const fh = await open(big, 'r+');
  await fh.write(incompressible(editLen, 'edit'), 0, editLen, Math.floor(large / 2 - editLen / 2));
  await fh.close();
  changed += editLen;
  // ~1.5 %: appends to medium files
  const docs = (await readdir(join(next, 'docs'))).sort();
  const appendEach = Math.max(4096, Math.floor((baseBytes * 0.015) / Math.max(1, Math.min(6, docs.length))));
  for (const name of docs.slice(0, 6)) {
    const p = join(next, 'docs', name);
    await unshare(p);
    await appendFile(p, incompressible(appendEach, `append-${name}`));
    changed += appendEach;
  }
  // ~0.1 %: small files edited (a line in front)
  const srcDirs = (await readdir(join(next, 'src', 'm0'))).slice(0, 10);
  for (const d of srcDirs) {
    const p = join(next, 'src', 'm0', d, 's0.ts');
    const old = await stat(p).catch(() => undefined);
    if (!old) continue;
    await unshare(p);
    const body = Buffer.concat([Buffer.from('// edited\n'), await readFile(p)]);
    await rm(p);
    await writeFile(p, body);
    changed += 10;
  }
  // ~2.5 %: new files, half incompressible
  await mkdir(join(next, 'new'), { recursive: true });
  const newBytes = Math.floor(baseBytes * 0.025);
  for (let i = 0, made = 0; made < newBytes; i++) {
    const size = Math.min(newBytes - made, i % 3 === 0 ? 2 * MiB : rng.logSize(100, 20_000, MiB));
    await writeFile(join(next, 'new', `n${i}.${i % 2 ? 'txt' : 'bin'}`), i % 2 ? sourceText(rng, size) : incompressible(size, `new${i}`));
    made += size;
  }
  changed += newBytes;
  return { base, next, baseBytes, changedBytes: changed, files };
}
