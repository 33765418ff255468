// The survey of a put (src/repo/put-survey.ts): it counts content bytes once per inode and the names
// a multiply-linked inode has inside the tree, follows the keep rules, holds its failure until the
// put awaits it, and a put given a survey of other paths makes its own; the folder scans it keeps for
// the walk stay within their bound, are taken once, and give the tree a survey keeping none gives,
// also when a file changed between the survey and the walk.

import test from 'ava';
import { appendFile, link, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isFragfsError } from '../../src/errors.js';
import { ExcludePatterns } from '../../src/repo/exclude-patterns.js';
import { PutSurvey } from '../../src/repo/put-survey.js';
import { scanFolder } from '../../src/local/source-stat.js';
import { getTree } from '../../src/repo/get.js';
import { localAddon } from '../helpers/local-addon.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { loadSnapshot, readDirEntries } from '../../src/repo/tree-reader.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

async function fixture(t: { teardown: (f: () => Promise<void>) => void }): Promise<{ root: string; tree: string }> {
  const tmp = await tempDir('put-survey-');
  t.teardown(tmp.remove);
  const tree = join(tmp.path, 'tree');
  await mkdir(join(tree, 'a', 'deep'), { recursive: true });
  await mkdir(join(tree, 'skip'), { recursive: true });
  await writeFile(join(tree, 'a', 'one'), Buffer.alloc(1000));
  await link(join(tree, 'a', 'one'), join(tree, 'a', 'deep', 'one-again')); // two names inside
  await writeFile(join(tree, 'a', 'two'), Buffer.alloc(300));
  await link(join(tree, 'a', 'two'), join(tmp.path, 'outside')); // one name inside, one outside
  await writeFile(join(tree, 'skip', 'big'), Buffer.alloc(5000));
  return { root: tmp.path, tree };
}

test('bytes once per inode; names inside the tree per linked inode; excluded folders not counted', async (t) => {
  const { tree } = await fixture(t);
  const all = await new PutSurvey([tree], {}).result;
  t.is(all.plainBytes, 1000 + 300 + 5000);
  t.deepEqual([...all.linked.values()].sort(), [1, 2]);
  const kept = await new PutSurvey([tree], { exclude: new ExcludePatterns(['skip']) }).result;
  t.is(kept.plainBytes, 1000 + 300);
});

test('a survey of a missing path fails only when awaited, as NOT_FOUND, and never as an unhandled rejection', async (t) => {
  const { root } = await fixture(t);
  const unread = new PutSurvey([join(root, 'missing')], {});
  const read = new PutSurvey([join(root, 'missing')], {});
  await new Promise((r) => setTimeout(r, 50)); // both have failed by now; ava fails a test on an unhandled rejection
  const e = await t.throwsAsync(read.result);
  t.true(isFragfsError(e) && e.code === 'NOT_FOUND');
  t.false(unread.covers([Buffer.from(root)]));
});

test('a put uses the survey of its paths and makes its own for other paths', async (t) => {
  const { root, tree } = await fixture(t);
  const repo = await Repo.init({ storePath: join(root, 'store'), backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST });
  t.teardown(() => repo.close());
  const totals: number[] = [];
  const other = new PutSurvey([join(tree, 'skip')], {});
  const r = await putPaths(repo, [tree], { survey: other, onTotal: (n) => totals.push(n) });
  t.deepEqual(totals, [1000 + 300 + 5000]);
  const mine = new PutSurvey([join(tree, 'a')], {});
  t.true(mine.covers([Buffer.from(join(tree, 'a'))]));
  await putPaths(repo, [join(tree, 'a')], { survey: mine, onTotal: (n) => totals.push(n) });
  t.deepEqual(totals, [6300, 1300]);
  // The hard link inside the tree stays one inode in the snapshot; the one with a name outside is a plain file.
  const { snapshot } = await loadSnapshot(repo, r.key);
  const a = (await readDirEntries(repo, snapshot.root, '/')).find((e) => e.name.toString() === 'a')!;
  const entries = await readDirEntries(repo, a, '/a');
  t.is(entries.find((e) => e.name.toString() === 'one')?.nlink, 2);
  t.is(entries.find((e) => e.name.toString() === 'two')?.link, undefined);
});

test('the survey keeps folder scans within its bound for the walk, each taken once, as the walk would scan it', async (t) => {
  const local = await localAddon(t);
  const { tree } = await fixture(t);
  local.lsetxattr(Buffer.from(join(tree, 'a', 'two')), Buffer.from('user.note'), Buffer.from([0, 0xff]));
  const survey = new PutSurvey([tree], {});
  await survey.result;
  t.true(survey.scans.bytes > 0);
  const a = Buffer.from(join(tree, 'a'));
  const kept = survey.scans.take(a);
  t.truthy(kept);
  t.deepEqual(kept, await scanFolder(local, a, true)); // names, lstats and attributes
  t.is(survey.scans.take(a), undefined); // handed over once
  // A folder the walk takes by its tag (folder-tag.ts) drops its scan unread.
  const deep = Buffer.from(join(tree, 'a', 'deep'));
  const before = survey.scans.bytes;
  survey.scans.drop(deep);
  t.true(survey.scans.bytes < before);
  t.is(survey.scans.take(deep), undefined);
  survey.scans.clear();
  t.is(survey.scans.take(Buffer.from(tree)), undefined);
  t.is(survey.scans.bytes, 0);
  // A bound too small for one scan keeps none.
  const none = new PutSurvey([tree], {}, 100);
  await none.result;
  t.is(none.scans.bytes, 0);
  t.is(none.scans.take(Buffer.from(tree)), undefined);
});

test("a put walking the survey's scans stores the tree a put scanning again stores, also after a file changed in between", async (t) => {
  const local = await localAddon(t);
  const { root, tree } = await fixture(t);
  local.lsetxattr(Buffer.from(join(tree, 'a', 'two')), Buffer.from('user.note'), Buffer.from('kept'));
  const repo = await Repo.init({ storePath: join(root, 'store'), backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST });
  t.teardown(() => repo.close());
  const keeping = new PutSurvey([tree], {});
  const scanning = new PutSurvey([tree], {}, 0);
  await Promise.all([keeping.result, scanning.result]);
  t.true(keeping.scans.bytes > 0);
  t.is(scanning.scans.bytes, 0);
  const withScans = await putPaths(repo, [tree], { survey: keeping, parent: false });
  const without = await putPaths(repo, [tree], { survey: scanning, parent: false });
  t.is(keeping.scans.bytes, 0); // the put drops what it did not take
  const rootOf = async (key: string) => (await loadSnapshot(repo, key)).snapshot.root;
  t.deepEqual((await rootOf(withScans.key)).blocks, (await rootOf(without.key)).blocks);
  t.deepEqual(await rootOf(withScans.key), await rootOf(without.key));

  // A file that grows after the survey listed it: the walk reads what is there and stores its size.
  const late = new PutSurvey([tree], {});
  await late.result;
  await appendFile(join(tree, 'skip', 'big'), 'more');
  const r = await putPaths(repo, [tree], { survey: late, parent: false });
  const back = join(root, 'back');
  await getTree(repo, r.key, back);
  t.deepEqual(await readFile(join(back, 'skip', 'big')), await readFile(join(tree, 'skip', 'big')));
  const skip = (await readDirEntries(repo, await rootOf(r.key), '/')).find((e) => e.name.toString() === 'skip')!;
  t.is((await readDirEntries(repo, skip, '/skip')).find((e) => e.name.toString() === 'big')?.size, 5004);
});
