// Workload (c): untar a source-like tree of many small files into the folder, then (after a remount with
// caches dropped) find -ls over it (a stat of every entry), then tar it back out through a pipe.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { MountInstance, StepContext } from './peer.js';
import { q, run } from './proc.js';
import { makeSourceTarball, type SourceTarball } from './source-tree.js';
import { timed, type MountWorkload, type StepOutput } from './workload.js';

let src: SourceTarball | undefined;

export const treeWorkload: MountWorkload = {
  id: 'tree',
  title: 'Source tree: untar, find, tar',
  short: 'source tree',
  peerKind: 'mount',
  describe: (s) =>
    `(c) tar -xf of a synthetic source-like tree of ${s.treeFiles} files${src ? ` in ${src.dirs} folders, ${(src.plainBytes / 1e6).toFixed(0)} MB` : ''}; unmount, drop caches, mount; find DIR -ls (stats every entry); tar -cf - DIR | cat > /dev/null.`,
  metrics: [
    { id: 'untar', section: 'c', label: 'untar', unit: 'files/s', better: 'higher' },
    { id: 'find', section: 'c', label: 'find -ls, cold', unit: 's', better: 'lower' },
    { id: 'tarOut', section: 'c', label: 'tar it back out', unit: 's', better: 'lower' },
  ],
  async prepare({ tmp, sizes }) {
    src = await makeSourceTarball(tmp, sizes.treeFiles);
  },
  async run(inst: MountInstance, ctx: StepContext): Promise<StepOutput> {
    if (!src) throw new Error('tree: not prepared');
    const dir = join(inst.root, 'src');
    await mkdir(dir);
    const tarball = src.tarball;
    const untar = await timed(() => run(['tar', '-xf', tarball, '-C', dir], { signal: ctx.signal }));
    await inst.remount();
    const find = await timed(() => run(['find', q(dir), '-ls', '>', '/dev/null'], { shell: true, signal: ctx.signal }));
    // A pipe, since GNU tar skips reading files when its archive is /dev/null.
    const tarOut = await timed(() => run(['tar', '-C', q(dir), '-cf', '-', '.', '|', 'cat', '>', '/dev/null'], { shell: true, signal: ctx.signal }));
    return { values: { untar: src.files / untar, find, tarOut } };
  },
};
