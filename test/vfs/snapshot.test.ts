// Snapshots of the live tree: the snapshot walks back equal to the tree, unchanged subtrees are
// reused (only the changed path's dirs are new fragments), hard links share a link number, and a
// snapshot taken during writes is consistent. SnapshotVfs is read-only.

import test from 'ava';
import { isFragfsError } from '../../src/errors.js';
import type { Entry } from '../../src/fragment/tree-format.js';
import { SnapshotVfs } from '../../src/vfs/snapshot-vfs.js';
import { PathVfs } from './path-vfs.js';
import { ME, O_WRONLY, fixture, pseudoRandom, readFile, walk, writeFile } from './vfs-helpers.js';

const BS = 64 * 1024;

async function metaCount(repo: { store: { list(ns: unknown): AsyncIterable<string> }; metaNs: unknown }): Promise<Set<string>> {
  const s = new Set<string>();
  for await (const id of repo.store.list(repo.metaNs)) s.add(id);
  return s;
}

test('snapshot equals the tree (walked with SnapshotVfs), including paged manifests, links, xattrs', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    await v.mkdir('/docs', 0o755, ME);
    await v.mkdir('/docs/deep', 0o700, ME);
    await writeFile(v, '/docs/a.txt', Buffer.from('alpha'));
    await writeFile(v, '/docs/deep/big', pseudoRandom(40 * BS + 123, 11)); // > 32 extents: manifest pages
    const fh = await v.create('/sparse', 0o644, O_WRONLY, ME);
    await v.write('/sparse', fh, Buffer.from('end'), 3, 50 * BS);
    await v.release('/sparse', fh);
    await v.symlink('docs/a.txt', '/link', ME);
    await v.link('/docs/a.txt', '/hard');
    await v.setxattr('/docs/a.txt', 'user.tag', Buffer.from([1, 2, 3]), 0);
    await v.mknod('/fifo', 0o010600, 0, ME);
    await writeFile(v, '/empty', Buffer.alloc(0));
    // Times to the nanosecond (walk compares them whole), one before 1970; a folder's last, since
    // creating in it changes its mtime.
    await v.utimens('/docs/a.txt', 1n, 1_600_000_000_123_456_789n);
    await v.utimens('/empty', 1n, -1_000_000_250_000_007n);
    await v.utimens('/docs', 1n, 1_700_000_000_999_999_999n);
    const key = await v.snapshot('first');
    t.regex(key, /^[0-9a-f]{64}$/);
    const s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key }));
    t.deepEqual(await walk(s), await walk(v));
    t.is((await s.getattr('/docs/a.txt')).mtimeNs, 1_600_000_000_123_456_789n);
    t.is((await s.getattr('/empty')).mtimeNs, -1_000_000_250_000_007n);
    t.is((await s.getattr('/docs')).mtimeNs, 1_700_000_000_999_999_999n);
    t.is(await s.snapshot(), key);
    t.is((await s.getattr('/hard')).ino, (await s.getattr('/docs/a.txt')).ino);
    const snap = await fx.repo.getMeta(key, 'snapshot');
    t.is(snap.files, 5);
    t.is(snap.dirs, 2);
    const rootDir = await fx.repo.getMeta(snap.root.dir!, 'dir');
    const hard = rootDir.entries.find((e: Entry) => e.name.equals(Buffer.from('hard')))!;
    const docs = await fx.repo.getMeta(rootDir.entries.find((e: Entry) => e.name.equals(Buffer.from('docs')))!.dir!, 'dir');
    const a = docs.entries.find((e: Entry) => e.name.equals(Buffer.from('a.txt')))!;
    t.truthy(hard.link);
    t.is(hard.link, a.link);
    t.is(await fx.repo.resolveSnapshot('first'), key);
  } finally {
    await fx.done();
  }
});

test('second snapshot after one change writes only the changed path and the snapshot object', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    for (const d of ['/a', '/a/b', '/a/b/c', '/x', '/x/y']) await v.mkdir(d, 0o755, ME);
    for (let i = 0; i < 20; i++) {
      await writeFile(v, `/a/b/c/f${i}`, Buffer.from(`c${i}`));
      await writeFile(v, `/x/y/g${i}`, Buffer.from(`y${i}`));
      await writeFile(v, `/a/h${i}`, Buffer.from(`a${i}`));
    }
    const k1 = await v.snapshot();
    const before = await metaCount(fx.repo);
    await writeFile(v, '/a/b/c/f3', Buffer.from('changed'));
    const k2 = await v.snapshot();
    const after = await metaCount(fx.repo);
    const added = [...after].filter((id) => !before.has(id));
    // '/', '/a', '/a/b', '/a/b/c' and the snapshot object
    t.is(added.length, 5, `new meta fragments: ${added.length}`);
    t.true(added.includes(k2));
    const s1 = await fx.repo.getMeta(k1, 'snapshot');
    const s2 = await fx.repo.getMeta(k2, 'snapshot');
    const r1 = await fx.repo.getMeta(s1.root.dir!, 'dir');
    const r2 = await fx.repo.getMeta(s2.root.dir!, 'dir');
    const xId = (r: { entries: Entry[] }) => r.entries.find((e) => e.name.equals(Buffer.from('x')))!.dir;
    t.is(xId(r2), xId(r1));
    t.not(s2.root.dir, s1.root.dir);
    // nothing changed: the same root dir again
    const k3 = await v.snapshot();
    t.is((await fx.repo.getMeta(k3, 'snapshot')).root.dir, s2.root.dir);
    const s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key: k2 }));
    t.is((await readFile(s, '/a/b/c/f3')).toString(), 'changed');
    const old = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key: k1 }));
    t.is((await readFile(old, '/a/b/c/f3')).toString(), 'c3');
  } finally {
    await fx.done();
  }
});

test('snapshot caches stay right across rename, unlink, hard links and reopen', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    let v = fx.vfs;
    await v.mkdir('/p', 0o755, ME);
    await v.mkdir('/q', 0o755, ME);
    await v.mkdir('/p/sub', 0o755, ME);
    await writeFile(v, '/p/sub/f', Buffer.from('one'));
    await v.link('/p/sub/f', '/q/f2');
    await v.snapshot();
    // change through the second name: both dirs holding a name must be re-serialized
    const fh = await v.open('/q/f2', O_WRONLY);
    await v.write('/q/f2', fh, Buffer.from('TWO'), 3, 0);
    await v.release('/q/f2', fh);
    let k = await v.snapshot();
    let s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key: k }));
    t.is((await readFile(s, '/p/sub/f')).toString(), 'TWO');
    t.deepEqual(await walk(s), await walk(v));
    await v.rename('/p/sub', '/q/sub');
    await v.unlink('/q/f2');
    await v.close();
    v = await fx.reopen();
    await writeFile(v, '/q/sub/new', Buffer.from('n'));
    k = await v.snapshot();
    s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key: k }));
    t.deepEqual(await walk(s), await walk(v));
  } finally {
    await fx.done();
  }
});

test('a snapshot taken while another handle writes is consistent (whole blocks, size covers them)', async (t) => {
  const fx = await fixture({ vfs: { writeBufferBytes: 2 * BS } });
  try {
    const v = fx.vfs;
    const fh = await v.create('/stream', 0o644, O_WRONLY, ME);
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 400; i++) {
        await v.write('/stream', fh, Buffer.alloc(BS, i & 0xff), BS, i * BS);
      }
    })();
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 5));
      keys.push(await v.snapshot());
    }
    stop = true;
    await writer;
    await v.release('/stream', fh);
    for (const key of keys) {
      const s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key }));
      const data = await readFile(s, '/stream');
      t.is(data.length % BS, 0);
      for (let b = 0; b < data.length / BS; b++) {
        t.true(data.subarray(b * BS, (b + 1) * BS).equals(Buffer.alloc(BS, b & 0xff)), `block ${b}`);
      }
    }
  } finally {
    await fx.done();
  }
});

test('SnapshotVfs: mutations fail EROFS, missing paths ENOENT, bad key BAD_KEY', async (t) => {
  const fx = await fixture();
  try {
    await writeFile(fx.vfs, '/f', Buffer.from('x'));
    const key = await fx.vfs.snapshot();
    const s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key }));
    t.true(s.readOnly);
    for (const p of [
      s.mkdir('/d', 0o755, ME),
      s.create('/g', 0o644, 1, ME),
      s.open('/f', O_WRONLY),
      s.unlink('/f'),
      s.rename('/f', '/g'),
      s.truncate('/f', 0),
      s.chmod('/f', 0o600),
      s.setxattr('/f', 'user.a', Buffer.from('1'), 0),
      s.symlink('f', '/l', ME),
      s.link('/f', '/h'),
    ]) {
      const e = await t.throwsAsync(p);
      t.true(isFragfsError(e, 'READ_ONLY'), String(e));
    }
    const e = await t.throwsAsync(s.getattr('/nope'));
    t.true(isFragfsError(e, 'NOT_FOUND'));
    const e2 = await t.throwsAsync(SnapshotVfs.open({ repo: fx.repo, key: 'zz' }));
    t.true(isFragfsError(e2, 'BAD_KEY'));
  } finally {
    await fx.done();
  }
});

test('close means saved: a writer that writes, closes and renames over a file never leaves it empty or torn in a snapshot', async (t) => {
  const fx = await fixture();
  try {
    const live = fx.live;
    const v = fx.vfs;
    await writeFile(v, '/saved', Buffer.from('version 0 '.repeat(1000)));
    let stop = false;
    let version = 0;
    // As the kernel does it: close(2) returns before RELEASE is handled, and the rename follows at once.
    const writer = (async () => {
      while (!stop) {
        version++;
        const body = Buffer.from(`version ${version} `.repeat(1000));
        const { parent, name } = await v.parent('/tmp-saved');
        const { attr, fh } = await live.create(parent, name, 0o644, O_WRONLY, ME);
        await live.write(attr.ino, fh, body, body.length, 0);
        const released = live.release(attr.ino, fh);
        await v.rename('/tmp-saved', '/saved');
        await released;
        // Requests come from the kernel as events: let the loop turn (a memory store never would).
        await new Promise((r) => setImmediate(r));
      }
    })();
    const keys: string[] = [];
    for (let i = 0; i < 60; i++) {
      keys.push(await live.snapshot());
      await new Promise((r) => setImmediate(r));
    }
    stop = true;
    await writer;
    t.true(version > 10, `the writer ran (${version} versions)`);
    for (const key of keys) {
      const s = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key }));
      const data = (await readFile(s, '/saved')).toString();
      const m = /^version (\d+) /.exec(data);
      t.truthy(m, `snapshot ${key.slice(0, 8)} holds ${data.length} bytes`);
      t.is(data, `version ${m![1]} `.repeat(1000), 'one whole version');
    }
  } finally {
    await fx.done();
  }
});
