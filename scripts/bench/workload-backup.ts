// Workloads (e) and (f): snapshot a mixed tree into a new repository, change ~5 % of it, snapshot again
// (time, and how much the repository grew), then read the second snapshot back whole through a mount
// with caches dropped. The tree always sits at the same path, so tools that look for a parent snapshot
// by path find it.

import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { apparentBytes, dropCaches } from './fs-util.js';
import { makeMixedTrees, type MixedTrees } from './mixed-tree.js';
import type { BackupInstance, StepContext } from './peer.js';
import { q, run } from './proc.js';
import { MB, timed, type BackupWorkload, type StepOutput } from './workload.js';

const NAME = 'tree';
let trees: MixedTrees | undefined;
let parent = '';
let nextBytes = 0;

/** Moves `dir` to parent/tree for the duration of f, and back after, whatever happens. */
async function asTree<T>(dir: string, f: () => Promise<T>): Promise<T> {
  const at = join(parent, NAME);
  await rename(dir, at);
  try {
    return await f();
  } finally {
    await rename(at, dir);
  }
}

export const backupWorkload: BackupWorkload = {
  id: 'backup',
  title: 'Backup-style: put, change 5 %, put again, read back',
  short: 'backup, read back',
  peerKind: 'backup',
  describe: (s) =>
    `(e) a new repository; snapshot a ${s.mixedBytes / (1 << 20)} MiB mixed tree (40 % four large incompressible files, 30 % 1-8 MiB files, 30 % small text files${trees ? `, ${trees.files} files` : ''}); change ~5 % (an edit in the middle of the largest file, appends, edited small files, new files${trees ? `: ${(trees.changedBytes / 1e6).toFixed(1)} MB` : ''}); snapshot again. (f) mount the second snapshot, drop caches, tar -cf - | cat > /dev/null. MB = 10^6 bytes.`,
  metrics: [
    { id: 'put1', section: 'e', label: 'first snapshot', unit: 's', better: 'lower' },
    { id: 'store1', section: 'e', label: 'repository after first', unit: 'MB', better: 'lower' },
    { id: 'put2', section: 'e', label: 'second snapshot (5 % changed)', unit: 's', better: 'lower' },
    { id: 'growth', section: 'e', label: 'repository growth by second', unit: 'MB', better: 'lower' },
    { id: 'readBack', section: 'f', label: 'read back from snapshot mount', unit: 'MB/s', better: 'higher' },
  ],
  async prepare({ tmp, sizes }) {
    trees = await makeMixedTrees(tmp, sizes.mixedBytes);
    parent = join(tmp, 'backup-src');
    await mkdir(parent);
    nextBytes = await apparentBytes(trees.next);
  },
  async run(inst: BackupInstance, ctx: StepContext): Promise<StepOutput> {
    if (!trees) throw new Error('backup: not prepared');
    const t = trees;
    if (ctx.dropCaches) dropCaches();
    const put1 = await asTree(t.base, () => timed(() => inst.backup(parent, NAME)));
    const store1 = await inst.storeBytes();
    const put2 = await asTree(t.next, () => timed(() => inst.backup(parent, NAME)));
    const store2 = await inst.storeBytes();
    const t0 = process.hrtime.bigint();
    const view = await inst.openLatest(NAME);
    const openSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const unwatch = ctx.rss.watch(() => view.pid());
    try {
      if (ctx.dropCaches) dropCaches();
      const read = await timed(() => run(['tar', '-C', q(view.root), '-cf', '-', '.', '|', 'cat', '>', '/dev/null'], { shell: true, signal: ctx.signal }));
      // A restore instead of a mount is part of reading back, so its time counts.
      const readSeconds = view.how.includes('mount') && !view.how.includes('failed') ? read : read + openSeconds;
      return {
        values: { put1, store1: store1 / MB, put2, growth: (store2 - store1) / MB, readBack: nextBytes / MB / readSeconds },
        notes: [`read back by ${view.how}`],
      };
    } finally {
      unwatch();
      await view.close();
    }
  },
};
