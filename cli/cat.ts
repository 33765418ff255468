// `fragfs cat STORE KEY/path`: writes one file of a snapshot to standard output.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { TreeBudget } from '../src/repo/tree-limits.js';
import { resolveEntry, showTreePath } from '../src/repo/tree-reader.js';
import { withTree } from './share-open.js';
import { readExtents } from '../src/repo/tree-writer.js';
import { action, addStoreOptions, type StoreOptions } from './common.js';

export function registerCat(program: Command): void {
  addStoreOptions(
    program
      .command('cat')
      .description('print one file of a snapshot')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:); or a share link LINK/path, then KEY is left out')
      .argument('[key-path]', 'meta key or snapshot name followed by /path of a file (just the key for a one-file put)'),
  ).action(
    action(async (store: string, keySpec: string | undefined, opts: StoreOptions) => {
      await withTree(store, keySpec, opts, async (repo, metaKey, snapshot, path) => {
        const entry = await resolveEntry(repo, snapshot.root, path);
        const where = showTreePath(path);
        if (entry.type !== 'file') throw new FragfsError(entry.type === 'dir' ? 'IS_DIR' : 'INVALID', `${where} is a ${entry.type}, not a file`);
        // One file is a walk too: its size within what the snapshot declares before a byte goes out.
        new TreeBudget(snapshot, metaKey).count(entry, where, true);
        const extents = await readExtents(repo, entry, where);
        // Prefetch a few blocks ahead so decoding overlaps writing to the pipe.
        const ahead = 4;
        const pending: Promise<Uint8Array>[] = [];
        const fetch = (i: number): void => {
          const p = repo.readBlock(extents[i]!, where);
          p.catch(() => {}); // surfaces when awaited in order below
          pending.push(p);
        };
        for (let i = 0; i < Math.min(ahead, extents.length); i++) fetch(i);
        let pos = 0;
        try {
          for (let i = 0; i < extents.length; i++) {
            const x = extents[i]!;
            const plain = await pending[i]!;
            if (i + ahead < extents.length) fetch(i + ahead);
            await writeZeros(x.offset - pos);
            await writeOut(plain);
            pos = x.offset + plain.length;
          }
        } finally {
          await Promise.allSettled(pending);
        }
        await writeZeros(entry.size - pos);
      });
    }),
  );
}

const ZEROS = Buffer.alloc(1024 * 1024);

/** Holes come out as zeros, a block at a time, whatever their size. */
async function writeZeros(bytes: number): Promise<void> {
  for (let left = bytes; left > 0; left -= ZEROS.length) await writeOut(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
}

function writeOut(chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}
