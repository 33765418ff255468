// The many-small-files bench's input: N files of 1-4 KiB of code-like text (compressible, unique per
// file) in N/100 folders of 100 files, grouped 100 folders to a group so no folder is huge; the same
// tree for the same seed and N. Every entry gets one fixed old mtime, so a backup run right after
// generating sees the tree as settled (no "racy" re-reads) and a changed file stands out by its mtime.

import { appendFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Rng, sourceText } from './data.js';
import { run } from './proc.js';

export const FILES_PER_FOLDER = 100;
const FOLDERS_PER_GROUP = 100;
const MIN_FILE_BYTES = 1024;
const MAX_FILE_BYTES = 4096;
/** 2023-11-14: long before any run, so no backup tool takes it for a file being written. */
const SETTLED_MTIME_S = 1_700_000_000;
/** Files written at once while generating: enough to keep the disk busy, few enough to stay small. */
const WRITES_IN_FLIGHT = 64;

export interface SmallFilesTree {
  /** The folder holding the tree (`name` inside `parent`). */
  root: string;
  parent: string;
  name: string;
  files: number;
  folders: number;
  plainBytes: number;
  /** The tree as a tarball, for untar into a mount. */
  tarball: string;
  tarBytes: number;
}

/** Relative path of file i: group, folder, file. */
export function smallFilePath(i: number): string {
  const folder = Math.floor(i / FILES_PER_FOLDER);
  return join(`g${Math.floor(folder / FOLDERS_PER_GROUP)}`, `d${folder % FOLDERS_PER_GROUP}`, `f${i % FILES_PER_FOLDER}.txt`);
}

export async function makeSmallFilesTree(tmp: string, files: number, seed: number, signal?: AbortSignal): Promise<SmallFilesTree> {
  const parent = join(tmp, 'source');
  const name = 'tree';
  const root = join(parent, name);
  const rng = new Rng(seed ^ files);
  const folders = Math.ceil(files / FILES_PER_FOLDER);
  let plainBytes = 0;
  for (let f = 0; f < folders; f++) await mkdir(join(root, dirname(smallFilePath(f * FILES_PER_FOLDER))), { recursive: true });
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < files; i++) {
    if (signal?.aborted) throw new Error('aborted (time bound reached) while generating the tree');
    // The file's number in front keeps two files from ever sharing content (nothing deduplicates).
    const body = Buffer.concat([Buffer.from(`// ${i}\n`), sourceText(rng, rng.int(MIN_FILE_BYTES, MAX_FILE_BYTES))]);
    plainBytes += body.length;
    const p = writeFile(join(root, smallFilePath(i)), body).then(() => void inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await run(['find', root, '-exec', 'touch', '-h', '-d', `@${SETTLED_MTIME_S}`, '{}', '+'], { signal });
  const tarball = join(tmp, 'tree.tar');
  await run(['tar', '-cf', tarball, '-C', parent, name], { signal });
  return { root, parent, name, files, folders, plainBytes, tarball, tarBytes: (await stat(tarball)).size };
}

/** Appends a line to `count` files spread over the tree: new size and mtime, their folders' listings unchanged. */
export async function changeSmallFiles(tree: SmallFilesTree, count: number): Promise<string[]> {
  const changed: string[] = [];
  const n = Math.min(count, tree.files);
  for (let k = 0; k < n; k++) {
    const rel = smallFilePath(Math.floor(((k + 0.5) * tree.files) / n));
    await appendFile(join(tree.root, rel), `// changed ${k}\n`);
    changed.push(rel);
  }
  return changed;
}
