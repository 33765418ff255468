// Folders written ahead of snapshots (LiveVfs.startWritingAhead / writeAhead): a snapshot after a
// bulk write then writes only what changed since, and stays truthful: a change made after (or while)
// a folder was written ahead is in the next snapshot.

import test from 'ava';
import { SnapshotVfs } from '../../src/vfs/snapshot-vfs.js';
import { PathVfs } from './path-vfs.js';
import { ME, O_WRONLY, fixture, readFile, walk, writeFile } from './vfs-helpers.js';

async function metaIds(repo: { store: { list(ns: unknown): AsyncIterable<string> }; metaNs: unknown }): Promise<Set<string>> {
  const s = new Set<string>();
  for await (const id of repo.store.list(repo.metaNs)) s.add(id);
  return s;
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

test('after a bulk write and a quiet moment, the first snapshot writes only its snapshot object', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    for (let d = 0; d < 20; d++) {
      await v.mkdir(`/d${d}`, 0o755, ME);
      await v.mkdir(`/d${d}/sub`, 0o700, ME);
      for (let f = 0; f < 50; f++) await writeFile(v, `/d${d}/${f % 2 ? 'sub/' : ''}f${f}`, Buffer.from(`file ${d}/${f}`));
    }
    fx.live.startWritingAhead(50, 20);
    // Every changed folder, the root last, is written once it has been quiet for 50 ms.
    const state = (fx.live as unknown as { state: { changedDirs: Map<number, number> } }).state;
    await until(() => state.changedDirs.size === 0, 10_000);
    t.is(state.changedDirs.size, 0, 'every folder was written ahead');
    const before = await metaIds(fx.repo);
    const key = await v.snapshot();
    const added = [...(await metaIds(fx.repo))].filter((id) => !before.has(id));
    t.deepEqual(added, [key], 'the snapshot wrote its object only: every folder was written ahead');
    const s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key }));
    t.deepEqual(await walk(s), await walk(v));
  } finally {
    await fx.done();
  }
});

test('a folder changed after, and while, it is written ahead is current in the next snapshot', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    await v.mkdir('/a', 0o755, ME);
    for (let f = 0; f < 200; f++) await writeFile(v, `/a/f${f}`, Buffer.from(`old ${f}`));
    const a = (await v.getattr('/a')).ino;
    t.is(await fx.live.writeAhead([a]), 1);
    // After: the cached folder must not stand for the new content.
    await writeFile(v, '/a/f1', Buffer.from('new after'));
    // While: a change lands between the write-ahead's read transaction and its end.
    const during = fx.live.writeAhead([a, 1]);
    const fh = await v.open('/a/f2', O_WRONLY);
    await v.write('/a/f2', fh, Buffer.from('new during'), 10, 0);
    await v.release('/a/f2', fh);
    await during;
    await writeFile(v, '/a/f3', Buffer.from('new later'));
    const s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key: await v.snapshot() }));
    t.is((await readFile(s, '/a/f1')).toString(), 'new after');
    t.is((await readFile(s, '/a/f2')).toString(), 'new during');
    t.is((await readFile(s, '/a/f3')).toString(), 'new later');
    t.is((await readFile(s, '/a/f4')).toString(), 'old 4');
    t.deepEqual(await walk(s), await walk(v));
  } finally {
    await fx.done();
  }
});

test('a batch that holds a folder and its ancestors writes each folder once', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    const chain = ['/a', '/a/b', '/a/b/c', '/a/b/c/d'];
    for (const p of chain) {
      await v.mkdir(p, 0o755, ME);
      for (let f = 0; f < 5; f++) await writeFile(v, `${p}/f${f}`, Buffer.from(`${p} ${f}`));
    }
    const inos = await Promise.all(chain.map(async (p) => (await v.getattr(p)).ino));
    const repo = fx.repo as unknown as { putMetaKeyed(o: { kind: string }): Promise<unknown> };
    const put = repo.putMetaKeyed.bind(repo);
    let dirWrites = 0;
    repo.putMetaKeyed = (o) => {
      if (o.kind === 'dir') dirWrites++;
      return put(o);
    };
    // Deepest first, as quiet folders come: each ancestor's walk meets the folders written before it.
    t.is(await fx.live.writeAhead([...inos].reverse()), chain.length);
    t.is(dirWrites, chain.length, 'each folder serialized once');
  } finally {
    await fx.done();
  }
});

test('while the mount is busy, folders wait to be written ahead until it pauses', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    for (let d = 0; d < 5; d++) {
      await v.mkdir(`/d${d}`, 0o755, ME);
      for (let f = 0; f < 5; f++) await writeFile(v, `/d${d}/f${f}`, Buffer.from(`file ${d}/${f}`));
    }
    const state = (fx.live as unknown as { state: { changedDirs: Map<number, number> } }).state;
    const changed = state.changedDirs.size;
    fx.live.startWritingAhead(50, 20);
    // Busy: the event loop serves in 15 ms stretches with a moment between them, for 800 ms.
    const end = Date.now() + 800;
    while (Date.now() < end) {
      const until = Date.now() + 15;
      while (Date.now() < until) {
        /* serving */
      }
      await new Promise((r) => setImmediate(r));
    }
    t.is(state.changedDirs.size, changed, 'nothing was written ahead while the loop was busy');
    await until(() => state.changedDirs.size === 0, 10_000);
    t.is(state.changedDirs.size, 0, 'every folder was written ahead once the loop paused');
  } finally {
    await fx.done();
  }
});

test('a folder that keeps changing keeps its ancestors from being written ahead (they are not quiet)', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    await v.mkdir('/top', 0o755, ME);
    await v.mkdir('/top/busy', 0o755, ME);
    const state = (fx.live as unknown as { state: { changedDirs: Map<number, number> } }).state;
    const top = (await v.getattr('/top')).ino;
    await new Promise((r) => setTimeout(r, 120));
    const quietSince = Date.now();
    await writeFile(v, '/top/busy/f', Buffer.from('x'));
    // The root and /top changed with /top/busy: none of them counts as quiet from before the write.
    for (const ino of [1, top, (await v.getattr('/top/busy')).ino]) t.true((state.changedDirs.get(ino) ?? 0) >= quietSince, `folder ${ino}`);
  } finally {
    await fx.done();
  }
});

test('a cached folder record from before folders had keys gets its key at the next snapshot, read once', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const v = fx.vfs;
    await v.mkdir('/a', 0o755, ME);
    await v.mkdir('/b', 0o755, ME);
    await writeFile(v, '/a/f', Buffer.from('a'));
    await v.snapshot();
    const state = (fx.live as unknown as { state: import('../../src/vfs/live-state.js').LiveState }).state;
    const a = (await v.getattr('/a')).ino;
    const rec = state.getDirCache(a)!;
    t.truthy(rec.key, 'a folder written now caches its key');
    // As a record written before keys: 56 bytes, no key.
    state.txn(() => state.putDirCache(a, { id: rec.id, files: rec.files, dirs: rec.dirs, bytes: rec.bytes }));
    await writeFile(v, '/b/g', Buffer.from('b')); // the root is written again, /a is reused from its record
    const key = await v.snapshot();
    t.deepEqual(state.getDirCache(a)?.key, rec.key, 'the record got its key back');
    const snap = await fx.repo.getMeta(key, 'snapshot');
    const root = await fx.repo.getMeta(snap.root.dir!, 'dir');
    t.deepEqual(root.entries.find((e) => e.name.toString() === 'a')?.dirKey, rec.key, 'the new tree names /a with its key');
  } finally {
    await fx.done();
  }
});
