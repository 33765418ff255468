// The totals a snapshot declares are binding, so verify must agree with both ways fragfs 1 writes
// them: put counts each hard-link group once and the top folder, a mount snapshot counts every name
// and not the top folder. Snapshots from either, with hard links, symlinks, holes and shared
// folders, verify clean, and the exact totals verify computes are the writers' own.

import test from 'ava';
import { link, mkdir, symlink, writeFile as writeLocal } from 'node:fs/promises';
import { join } from 'node:path';
import { putPaths } from '../../src/repo/put.js';
import { TreeTally, summarizeDir } from '../../src/repo/tree-limits.js';
import { loadSnapshot, walkTree, readDirEntries } from '../../src/repo/tree-reader.js';
import { verifyStore } from '../../src/repo/verify.js';
import type { Repo } from '../../src/repo/repo.js';
import type { Entry } from '../../src/fragment/tree-format.js';
import { ME, O_WRONLY, fixture, pseudoRandom, writeFile } from '../vfs/vfs-helpers.js';
import { tempDir } from '../helpers/stores.js';

const BS = 64 * 1024;

async function tally(repo: Repo, key: string) {
  const { snapshot } = await loadSnapshot(repo, key);
  const t = new TreeTally();
  await walkTree(repo, snapshot.root, {
    entry: async (e: Entry, path: string) => {
      if (e.type === 'dir' && e.dir !== undefined && !t.has(e.dir)) t.add(e.dir, summarizeDir(await readDirEntries(repo, e, path)));
    },
  });
  return { snapshot, count: t.count(snapshot.root)! };
}

test('a mount snapshot (every name counted, not the top folder) verifies clean', async (t) => {
  const fx = await fixture({ blockSize: BS });
  t.teardown(() => fx.done());
  const v = fx.vfs;
  await v.mkdir('/docs', 0o755, ME);
  await v.mkdir('/docs/deep', 0o755, ME);
  await writeFile(v, '/docs/a.txt', Buffer.from('alpha'));
  await writeFile(v, '/docs/deep/big', pseudoRandom(40 * BS + 123, 11));
  const fh = await v.create('/sparse', 0o644, O_WRONLY, ME);
  await v.write('/sparse', fh, Buffer.from('end'), 3, 50 * BS);
  await v.release('/sparse', fh);
  await v.symlink('docs/a.txt', '/link', ME);
  await v.link('/docs/a.txt', '/hard');
  await v.link('/docs/a.txt', '/docs/deep/hard2');
  const key = await v.snapshot('mounted');
  const { snapshot, count } = await tally(fx.repo, key);
  t.deepEqual(
    { files: snapshot.files, dirs: snapshot.dirs, logicalBytes: snapshot.logicalBytes },
    count.perName,
    'the mount declares what TreeTally counts per name',
  );
  t.deepEqual(count.linkConflicts, []);
  const report = await verifyStore(fx.repo, key);
  t.deepEqual(report.problems, []);
  t.is(report.treesChecked, 1);
});

test('a put snapshot (hard-link groups once, the top folder counted) verifies clean; so do several paths and one file', async (t) => {
  const fx = await fixture({ blockSize: BS });
  t.teardown(() => fx.done());
  const work = await tempDir('fragfs-totals-');
  t.teardown(work.remove);
  const tree = join(work.path, 'tree');
  await mkdir(join(tree, 'one', 'inner'), { recursive: true });
  await mkdir(join(tree, 'two', 'inner'), { recursive: true });
  // Identical folders share one dir fragment: legitimate reuse the totals must count twice.
  await writeLocal(join(tree, 'one', 'inner', 'same.txt'), 'same\n');
  await writeLocal(join(tree, 'two', 'inner', 'same.txt'), 'same\n');
  await writeLocal(join(tree, 'a.txt'), 'alpha\n');
  await link(join(tree, 'a.txt'), join(tree, 'one', 'a-link.txt'));
  await link(join(tree, 'a.txt'), join(tree, 'b-link.txt'));
  await symlink('a.txt', join(tree, 'sym'));
  await writeLocal(join(tree, 'big.bin'), pseudoRandom(3 * BS + 5, 3));
  for (const paths of [[tree], [join(tree, 'one'), join(tree, 'two')], [join(tree, 'big.bin')], [join(tree, 'sym')]]) {
    const r = await putPaths(fx.repo, paths);
    const { snapshot, count } = await tally(fx.repo, r.key);
    t.deepEqual({ files: snapshot.files, dirs: snapshot.dirs, logicalBytes: snapshot.logicalBytes }, count.perInode, paths.join(' '));
    const report = await verifyStore(fx.repo, r.key);
    t.deepEqual(report.problems, [], paths.join(' '));
    t.is(report.treesChecked, 1);
  }
  const { count } = await tally(fx.repo, (await putPaths(fx.repo, [tree])).key);
  // a.txt three times by name, once as a group; same.txt twice (one fragment, two paths).
  t.is(count.perName.files, 6);
  t.is(count.perInode.files, 4);
  t.is(count.perName.dirs, 4);
  t.is(count.perInode.dirs, 5);
});
