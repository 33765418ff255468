// Workload (c)'s input: a deterministic, synthetic source-like tree (nested folders, mostly small text
// files, a few larger ones) packed once per run of the bench into a tarball.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng, sourceText } from './data.js';
import { run } from './proc.js';

export interface SourceTarball {
  tarball: string;
  files: number;
  dirs: number;
  plainBytes: number;
}

const FILES_PER_DIR = 14;
const EXTS = ['.ts', '.js', '.json', '.md', '.c', '.h', '.py', '.txt'];

export async function makeSourceTarball(tmp: string, files: number): Promise<SourceTarball> {
  const rng = new Rng(0x5eed + files);
  const top = join(tmp, 'source-tree');
  let dirs = 0;
  let plainBytes = 0;
  let made = 0;
  // Breadth by levels: each folder holds some files and up to 4 sub-folders, like a project's src/.
  const queue: string[] = ['project'];
  while (made < files) {
    const rel = queue.shift() ?? `project/extra${dirs}`;
    const dir = join(top, rel);
    await mkdir(dir, { recursive: true });
    dirs++;
    const n = Math.min(files - made, rng.int(FILES_PER_DIR / 2, FILES_PER_DIR * 1.5));
    for (let i = 0; i < n; i++) {
      const size = rng.logSize(40, 3000, 256 * 1024);
      const body = sourceText(rng, size);
      await writeFile(join(dir, `f${made}_${i}${rng.pick(EXTS)}`), body);
      plainBytes += body.length;
      made++;
    }
    const subs = rng.int(1, 4);
    for (let i = 0; i < subs; i++) queue.push(`${rel}/d${dirs}_${i}`);
  }
  const tarball = join(tmp, 'source-tree.tar');
  await run(['tar', '-cf', tarball, '-C', top, '.']);
  return { tarball, files, dirs, plainBytes };
}
