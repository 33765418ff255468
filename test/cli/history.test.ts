// History through the real CLI: `diff` between two snapshots (text and JSON, and reading only the
// folders on the way to what changed), `find` across snapshots, tags (`--tag`, `snapshots --tag`),
// a duplicate name refused unless `--replace`, the host and source paths in `snapshots`, and the
// message for a key prefix that is too short.

import test from 'ava';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { lastLine, oneLineError, runCli } from '../helpers/cli.js';
import { createStore, openStore, tempDir } from '../helpers/stores.js';

let work: Awaited<ReturnType<typeof tempDir>>;
let store: string;
let tree: string;
let one: string;
let two: string;
/** Folders in the tree that nothing between the two snapshots touches. */
const UNTOUCHED = 40;

async function put(args: string[]): Promise<string> {
  const r = await runCli(['put', store, tree, '--no-progress', ...args]);
  if (r.code !== 0) throw new Error(`put failed: ${r.stderr}`);
  return lastLine(r.stdout);
}

test.before(async () => {
  work = await tempDir('fragfs-cli-history-');
  store = join(work.path, 'store');
  tree = join(work.path, 'tree');
  await createStore(store, 'dir');
  await mkdir(join(tree, 'sub', 'deep'), { recursive: true });
  await writeFile(join(tree, 'a.txt'), 'first\n');
  await writeFile(join(tree, 'sub', 'gone.txt'), 'going\n');
  await writeFile(join(tree, 'sub', 'deep', 'notes.md'), 'notes\n');
  await writeFile(join(tree, 'sub', 'deep', 'mode.md'), 'mode\n');
  for (let i = 0; i < UNTOUCHED; i++) {
    await mkdir(join(tree, 'same', `d${i}`), { recursive: true });
    await writeFile(join(tree, 'same', `d${i}`, 'keep.txt'), `kept ${i}\n`);
  }
  one = await put(['--name', 'one', '--tag', 'daily,home']);
  await writeFile(join(tree, 'a.txt'), 'second, longer\n');
  await rm(join(tree, 'sub', 'gone.txt'));
  await writeFile(join(tree, 'sub', 'new.txt'), 'new\n');
  await chmod(join(tree, 'sub', 'deep', 'mode.md'), 0o600);
  await mkdir(join(tree, 'added'));
  await writeFile(join(tree, 'added', 'x.txt'), 'x\n');
  two = await put(['--name', 'two', '--tag', 'daily']);
});

test.after.always(async () => {
  await work?.remove();
});

test.serial('diff lists added, removed, changed and metadata-only paths', async (t) => {
  const r = await runCli(['diff', store, 'one', two.slice(0, 10)]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['M  /a.txt', '+  /added/', '+  /added/x.txt', 'U  /sub/deep/mode.md', '-  /sub/gone.txt', '+  /sub/new.txt']);
  t.regex(r.stderr, /3 added, 1 removed, 1 changed, 1 metadata only/);
  const back = await runCli(['diff', store, 'two', 'one']);
  t.true(back.stdout.includes('-  /added/x.txt') && back.stdout.includes('+  /sub/gone.txt'), back.stdout);
  const same = await runCli(['diff', store, one, one]);
  t.is(same.code, 0, same.stderr);
  t.is(same.stdout, '');
});

test.serial('diff --json names each change, and reads only the folders on the way to what changed', async (t) => {
  const r = await runCli(['diff', store, one, two, '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    a: string;
    b: string;
    changes: { change: string; path: string; type: string; size?: number; sizeBefore?: number }[];
    summary: { added: number; removed: number; changed: number; metadata: number; dirsRead: number; dirsSkipped: number };
  };
  t.is(out.a, one);
  t.is(out.b, two);
  t.deepEqual(out.changes.find((c) => c.path === '/a.txt'), { change: 'changed', path: '/a.txt', type: 'file', sizeBefore: 6, size: 15 });
  t.deepEqual(out.changes.find((c) => c.path === '/sub/deep/mode.md')?.change, 'metadata');
  t.deepEqual(out.changes.find((c) => c.path === '/added')?.type, 'dir');
  t.like(out.summary, { added: 3, removed: 1, changed: 1, metadata: 1 });
  // The top, /sub and /sub/deep on both sides and the added folder: /same and its 40 folders are
  // one dir fragment on both sides and are not read.
  t.is(out.summary.dirsRead, 7);
  t.is(out.summary.dirsSkipped, 1);
});

test.serial('find matches names across snapshots, or whole paths with a slash', async (t) => {
  const names = await runCli(['find', store, '*.md']);
  t.is(names.code, 0, names.stderr);
  const lines = names.stdout.trim().split('\n');
  t.is(lines.length, 4);
  t.true(lines.every((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}[0-9a-f]{12} {2}(one|two) {2}\/sub\/deep\/(notes|mode)\.md$/.test(l)), lines.join('\n'));
  t.true(lines[0]!.includes(one.slice(0, 12)) && lines[3]!.includes(two.slice(0, 12)));
  // Folders found in the first snapshot are not read again for the second.
  t.regex(names.stderr, /4 matches in 2 snapshots/);

  const gone = await runCli(['find', store, 'gone.*', '--json']);
  const found = JSON.parse(gone.stdout) as { key: string; name: string; path: string; type: string }[];
  t.deepEqual(found.map((f) => [f.key, f.name, f.path, f.type]), [[one, 'one', '/sub/gone.txt', 'file']]);

  const paths = await runCli(['find', store, '/same/d1?/*.txt', '--snapshot', 'two']);
  t.is(paths.stdout.trim().split('\n').length, 10, paths.stdout);
  const below = await runCli(['find', store, 'deep/**', '--tag', 'home']);
  t.deepEqual(below.stdout.trim().split('\n').map((l) => l.split('  ').pop()), ['/sub/deep/mode.md', '/sub/deep/notes.md']);
  const none = await runCli(['find', store, 'NOTES.MD']);
  t.is(none.stdout, '');
  const folded = await runCli(['find', store, '-i', 'NOTES.MD']);
  t.is(folded.stdout.trim().split('\n').length, 2);
});

test.serial('snapshots shows host, tags and source paths, and filters by tag', async (t) => {
  const r = await runCli(['snapshots', store]);
  t.is(r.code, 0, r.stderr);
  const [head, ...rows] = r.stdout.trim().split('\n');
  t.regex(head!, /^TIME +NAME +SIZE +KEY +HOST +TAGS +SOURCE$/);
  t.is(rows.length, 2);
  t.true(rows[0]!.includes(`${one.slice(0, 12)}  ${hostname()}`), rows[0]);
  t.true(rows[0]!.includes('daily,home') && rows[0]!.endsWith(`  ${tree}`), rows[0]);
  const json = JSON.parse((await runCli(['snapshots', store, '--json'])).stdout) as { key: string; tags: string[]; host: string; source: string[] }[];
  t.deepEqual(json.map((s) => s.tags), [['daily', 'home'], ['daily']]);
  t.deepEqual(json[1]!.source, [tree]);
  t.is(json[1]!.host, hostname());
  const home = JSON.parse((await runCli(['snapshots', store, '--json', '--tag', 'home'])).stdout) as { key: string }[];
  t.deepEqual(home.map((s) => s.key), [one]);
  const both = JSON.parse((await runCli(['snapshots', store, '--json', '--tag', 'daily', '--tag', 'home'])).stdout) as { key: string }[];
  t.deepEqual(both.map((s) => s.key), [one]);
  oneLineError(t, await runCli(['put', store, tree, '--tag', 'a b ']), 2, /--tag "a b " cannot tag a snapshot/);
});

test.serial('a duplicate snapshot name is refused before anything is stored, and moved with --replace', async (t) => {
  const dup = await runCli(['put', store, tree, '--name', 'one', '--no-progress']);
  oneLineError(t, dup, 10, new RegExp(`snapshot ${one.slice(0, 12)} .* is already named "one".*--replace`));
  const snap = await runCli(['snapshot', store, '--name', 'two']);
  oneLineError(t, snap, 10, /already named "two"/);
  const count = async () => (JSON.parse((await runCli(['snapshots', store, '--json'])).stdout) as unknown[]).length;
  t.is(await count(), 2, 'nothing was stored');

  const moved = await runCli(['put', store, tree, '--name', 'one', '--replace', '--tag', 'again', '--no-progress']);
  t.is(moved.code, 0, moved.stderr);
  const three = lastLine(moved.stdout);
  t.regex(moved.stderr, new RegExp(`snapshot ${one.slice(0, 12)} is no longer named "one"`));
  const list = JSON.parse((await runCli(['snapshots', store, '--json'])).stdout) as { key: string; name: string | null; tags: string[] }[];
  t.deepEqual(
    list.map((s) => [s.key, s.name, s.tags]),
    [
      [one, null, ['daily', 'home']],
      [two, 'two', ['daily']],
      [three, 'one', ['again']],
    ],
  );
  const repo = await openStore(store);
  try {
    t.is(await repo.resolveSnapshot('one'), three);
  } finally {
    await repo.close();
  }
});

test.serial('a key prefix that is too short says that 8+ hex digits and names work', async (t) => {
  oneLineError(t, await runCli(['diff', store, one.slice(0, 4), 'two']), 5, /not a meta key: [0-9a-f]{4} .*a unique prefix of 8 or more, or its name/);
});
