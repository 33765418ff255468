// `fragfs mount STORE DIR --all` on a real mount: every snapshot under by-time/, each name under
// by-name/ and the newest as latest, read-only (ro in /proc/mounts); 300 snapshots list at once
// without any snapshot tree being read, and a tree opens on the first lookup inside its folder.

import test from 'ava';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSnapshot } from '../../src/repo/tree-writer.js';
import { timeFolderName } from '../../src/vfs/all-snapshots-vfs.js';
import { Repo } from '../../src/repo/repo.js';
import { ensurePatchedAddon, fragfs, fuseAvailable, initStore, makeEnv, mount, PASSPHRASE, run } from './helpers.js';

const enabled = fuseAvailable();
const maybe = enabled ? test : test.skip;
if (enabled) test.before(ensurePatchedAddon);

/** Snapshots made through the API (refs dated a minute apart, one tree): what the listing must cope with. */
const MANY = 300;

maybe('mount --all shows every snapshot by time and by name, and latest', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const tree = join(e.root, 'tree');
  await mkdir(join(tree, 'sub'), { recursive: true });
  await writeFile(join(tree, 'sub', 'note.txt'), 'version one\n');
  const put = async (args: string[]) => {
    const r = await fragfs(e, ['put', store, ...args, '--no-progress']);
    t.is(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').pop()!;
  };
  await put([tree, '--name', 'first']);
  await writeFile(join(tree, 'sub', 'note.txt'), 'version two\n');
  await put([tree, '--name', 'second']);
  await writeFile(join(e.root, 'alone.txt'), 'one file\n');
  await put([join(e.root, 'alone.txt'), '--name', 'single']);

  const repo = await Repo.open({ storePath: store, passphrase: PASSPHRASE });
  const base = Date.parse('2020-01-01T00:00:00Z');
  try {
    const root = (await repo.getMeta(await repo.resolveSnapshot('first'), 'snapshot')).root;
    for (let i = 0; i < MANY; i++) {
      await writeSnapshot(repo, root, { source: [Buffer.from(tree)], files: 1, dirs: 1, logicalBytes: 12, createdMs: base + i * 60_000 });
    }
  } finally {
    await repo.close();
  }

  const m = await mount(t, e, store, 'all', ['--all']);
  const mp = m.mountpoint;
  t.deepEqual((await readdir(mp)).sort(), ['by-name', 'by-time', 'latest']);
  const started = Date.now();
  const times = await run('ls', ['-l', join(mp, 'by-time')]);
  const listMs = Date.now() - started;
  t.is(times.code, 0, times.stderr);
  t.is(times.stdout.trim().split('\n').length, 1 + MANY + 3, 'a "total" line and one folder per snapshot');
  t.true(times.stdout.includes(` ${timeFolderName(base)}\n`));
  // Made from the refs alone: no snapshot object is read for a listing (300 reads took seconds).
  t.true(listMs < 1500, `ls -l of ${MANY + 3} snapshot folders took ${listMs} ms`);
  t.log(`ls -l by-time/ with ${MANY + 3} snapshots: ${listMs} ms`);

  t.deepEqual((await readdir(join(mp, 'by-name'))).sort(), ['first', 'second', 'single']);
  t.regex(await readlink(join(mp, 'by-name', 'first')), /^\.\.\/by-time\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.is(await readFile(join(mp, 'by-name', 'first', 'sub', 'note.txt'), 'utf8'), 'version one\n');
  t.is(await readFile(join(mp, 'by-name', 'second', 'sub', 'note.txt'), 'utf8'), 'version two\n');
  t.deepEqual(await readdir(join(mp, 'by-name', 'single')), ['alone.txt']);
  t.is(await readFile(join(mp, 'by-name', 'single', 'alone.txt'), 'utf8'), 'one file\n');
  t.is(await readlink(join(mp, 'latest')), (await readlink(join(mp, 'by-name', 'single'))).slice(3));
  t.is(await readFile(join(mp, 'by-time', timeFolderName(base + 5 * 60_000), 'sub', 'note.txt'), 'utf8'), 'version one\n');

  const mounts = await readFile('/proc/self/mounts', 'utf8');
  t.regex(mounts.split('\n').find((l) => l.split(' ')[1] === mp) ?? '', / fuse\.fragfs ro,/);
  const write = await run('sh', ['-c', `echo x > '${join(mp, 'by-name', 'first', 'new.txt')}'`]);
  t.not(write.code, 0);
  t.regex(write.stderr, /Read-only file system/);

  // A snapshot taken while mounted shows up without a remount.
  await put([tree, '--name', 'third']);
  t.is(await readFile(join(mp, 'by-name', 'third', 'sub', 'note.txt'), 'utf8'), 'version two\n');

  const u = await m.umount();
  t.is(u.code, 0, u.stderr);
});

maybe('mount --all and --snapshot together are refused', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  await mkdir(join(e.root, 'mp'));
  const r = await fragfs(e, ['mount', store, join(e.root, 'mp'), '--all', '--snapshot', 'x']);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /^fragfs: --all mounts every snapshot/);
});

maybe('snapshot --name through a read-write mount refuses a name taken, --replace moves it, --tag tags it', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'rw');
  await writeFile(join(m.mountpoint, 'a.txt'), 'one\n');
  const first = await fragfs(e, ['snapshot', store, '--name', 'daily', '--json']);
  t.is(first.code, 0, first.stderr);
  t.is((JSON.parse(first.stdout) as { via: string }).via, 'mount');
  await writeFile(join(m.mountpoint, 'a.txt'), 'two\n');
  const again = await fragfs(e, ['snapshot', store, '--name', 'daily']);
  t.is(again.code, 10, again.stderr);
  t.regex(again.stderr, /already named "daily".*--replace/);
  const moved = await fragfs(e, ['snapshot', store, '--name', 'daily', '--replace', '--tag', 'weekly']);
  t.is(moved.code, 0, moved.stderr);
  const list = JSON.parse((await fragfs(e, ['snapshots', store, '--json'])).stdout) as { key: string; name: string | null; tags: string[] }[];
  t.deepEqual(
    list.map((s) => [s.name, s.tags]),
    [
      [null, []],
      ['daily', ['weekly']],
    ],
  );
  t.is(list[1]!.key, moved.stdout.trim());
});
