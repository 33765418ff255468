// tree-diff and tree-find without the CLI: a path that changes type (file to folder) is one
// `changed` plus its new subtree as `added`; glob patterns keep * and ? within a name and let **
// cross folders; a pattern that is not valid is a USAGE error.

import test from 'ava';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { putPaths } from '../../src/repo/put.js';
import { diffTrees, type TreeChange } from '../../src/repo/tree-diff.js';
import { globToRegExp } from '../../src/repo/tree-find.js';
import { createStore, openStore, tempDir } from '../helpers/stores.js';

test('globs: * and ? stay within a name, ** crosses folders, classes and escapes', (t) => {
  const m = (p: string, s: string, ignoreCase = false) => globToRegExp(p, { ignoreCase }).test(s);
  t.true(m('*.jpg', 'a.jpg'));
  t.false(m('*.jpg', 'a/b.jpg'));
  t.true(m('/a/*/c', '/a/b/c'));
  t.false(m('/a/*/c', '/a/b/x/c'));
  t.true(m('/a/**/c', '/a/b/x/c'));
  t.true(m('/a/**/c', '/a/c'), '**/ may match no folder');
  t.true(m('f?.txt', 'f1.txt'));
  t.false(m('f?.txt', 'f12.txt'));
  t.true(m('[a-c]x', 'bx'));
  t.false(m('[!a-c]x', 'bx'));
  t.true(m('\\*', '*'));
  t.false(m('\\*', 'a'));
  t.true(m('A.TXT', 'a.txt', true));
  t.false(m('A.TXT', 'a.txt'));
  t.true(m('a.b', 'a.b'));
  t.false(m('a.b', 'axb'), 'a dot is a dot');
});

test('a file that becomes a folder is changed, and its new entries added', async (t) => {
  const work = await tempDir('fragfs-diff-');
  t.teardown(() => work.remove());
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'x'), 'a file\n');
  const repo = await openStore(store);
  t.teardown(() => repo.close());
  const a = await putPaths(repo, [Buffer.from(tree)], {});
  await rm(join(tree, 'x'));
  await mkdir(join(tree, 'x'));
  await writeFile(join(tree, 'x', 'inside'), 'now a folder\n');
  const b = await putPaths(repo, [Buffer.from(tree)], {});
  const changes: TreeChange[] = [];
  const rootOf = async (key: string) => (await repo.getMeta(key, 'snapshot')).root;
  const stats = await diffTrees(repo, await rootOf(a.key), await rootOf(b.key), (c) => void changes.push(c));
  t.deepEqual(
    changes.map((c) => [c.kind, c.path.toString(), c.type, c.typeBefore]),
    [
      ['changed', '/x', 'dir', 'file'],
      ['added', '/x/inside', 'file', undefined],
    ],
  );
  t.like(stats, { changed: 1, added: 1, removed: 0, metadata: 0, removedBytes: 7, addedBytes: 13 });
});
