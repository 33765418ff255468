// What `verify` checks of the live tree of a mount (the state a read-write mount keeps between
// snapshots): every block its files name, found by walking the tree from the root. The live state
// is opened read-only, so this runs beside a mount; a record that fails its seal is a problem too.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FragfsError } from '../errors.js';
import { joinName, showName } from '../fragment/names.js';
import type { BlockRef } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG } from './inode.js';
import { liveKeysOf } from './live-keys.js';
import { LiveState } from './live-state.js';
import { stateDirOf } from './live-vfs.js';

export interface LiveBlocks {
  /** Every block a live file names, with the file (`live:/path`). */
  blocks: { ref: BlockRef; usedBy: string }[];
  files: number;
  /** Records that could not be read (damaged, or another space's). */
  problems: FragfsError[];
}

/** The live tree's blocks, or undefined when the space has no live state (never mounted read-write). */
export async function liveBlocks(repo: Repo, statePath: string): Promise<LiveBlocks | undefined> {
  const dir = stateDirOf(statePath);
  if (!existsSync(join(dir, 'data.mdb'))) return undefined;
  const state = new LiveState({ path: dir, readOnly: true, owner: { uid: 0, gid: 0 }, keys: liveKeysOf(repo) });
  const out: LiveBlocks = { blocks: [], files: 0, problems: [] };
  const rtx = state.readTxn();
  try {
    const walk = (ino: number, path: Buffer): void => {
      let entries;
      try {
        entries = [...state.listDir(ino, rtx)];
      } catch (e) {
        out.problems.push(asProblem(e, path));
        return;
      }
      for (const e of entries) {
        const p = joinName(path, e.name);
        if ((e.typeBits & S_IFMT) === S_IFDIR) walk(e.ino, p);
        else if ((e.typeBits & S_IFMT) === S_IFREG) {
          out.files++;
          try {
            for (const { ref } of state.extentsFrom(e.ino, 0, rtx)) out.blocks.push({ ref, usedBy: `live:${showName(p)}` });
          } catch (err) {
            out.problems.push(asProblem(err, p));
          }
        }
      }
    };
    walk(ROOT_INO, Buffer.from('/'));
  } finally {
    rtx.done();
    await state.close();
  }
  return out;
}

function asProblem(e: unknown, path: Buffer): FragfsError {
  if (e instanceof FragfsError) return new FragfsError(e.code, `live state at ${showName(path)}: ${e.message}`, { cause: e });
  return new FragfsError('CORRUPT', `live state at ${showName(path)}: ${String(e)}`, { cause: e });
}
