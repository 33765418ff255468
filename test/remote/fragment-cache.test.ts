// The local cache of a remote store's fragments: the Store contract still holds through it, reads
// are served from disk once warm, the cache stays under its limit (least recently used out, also
// what an earlier process left), and a damaged cached copy is dropped and read from the service.
// A fetched fragment is copied at most once on its way to a reader, and a reader that hands it to
// a codec thread leaves the cache write to that thread, which writes only bytes that verified.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { CachingStore } from '../../src/remote/fragment-cache.js';
import { Repo } from '../../src/repo/repo.js';
import { takeCacheHandoff, writeCacheFileSync } from '../../src/store/cache-handoff.js';
import { MemoryStore, MemoryVolume } from '../../src/store/memory-store.js';
import { runConformance } from '../store/conformance.js';

runConformance(test, 'fragment cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-fcache-'));
  // A memory store's volume outlives the store: a reopen sees what was put, as a service would.
  const volume = new MemoryVolume();
  const max = 64 * 1024 * 1024;
  return {
    open: async () => new CachingStore(new MemoryStore(volume), join(dir, 'cache'), max),
    openReadOnly: async () => new CachingStore(new MemoryStore(volume, true), join(dir, 'cache'), max),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
});

function fragment(n: number): { id: string; bytes: Buffer } {
  const bytes = randomBytes(n);
  return { id: toHex(blake3(bytes)), bytes };
}

async function filesUnder(dir: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        // A background cache write renames its .part file into place while the walk runs.
        const st = await stat(p).catch(() => undefined);
        if (st !== undefined) out.push({ path: p, size: st.size });
      }
    }
  };
  await walk(dir);
  return out;
}

test('reads are served from the cache once warm; files 0600; bounded by the limit, LRU out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-fcache-'));
  try {
    const inner = new MemoryStore();
    const ns = { space: 'default', kind: 'data' as const };
    const frags = Array.from({ length: 10 }, () => fragment(100_000));
    for (const f of frags) await inner.put(ns, f.id, f.bytes);
    const cache = new CachingStore(inner, dir, 450_000);
    for (const f of frags.slice(0, 4)) {
      t.true(Buffer.from(await cache.get(ns, f.id)).equals(f.bytes));
      await cache.settled();
    }
    t.is(cache.misses, 4);
    await cache.get(ns, frags[0]!.id); // frags[0] is now the most recently used
    t.is(cache.hits, 1);
    for (const f of frags.slice(4, 6)) {
      await cache.get(ns, f.id);
      await cache.settled();
    }
    const files = await filesUnder(dir);
    t.true(files.reduce((a, f) => a + f.size, 0) <= 450_000, 'under the limit');
    const names = files.map((f) => f.path.slice(f.path.lastIndexOf('/') + 1));
    t.true(names.includes(frags[0]!.id), 'the most recently used stays');
    t.false(names.includes(frags[1]!.id), 'the least recently used went first');
    for (const f of files) t.is((await stat(f.path)).mode & 0o777, 0o600);
    await cache.close();

    // A new process counts what the last one left, and still keeps the limit.
    const again = new CachingStore(inner, dir, 250_000);
    await again.settled();
    t.true((await filesUnder(dir)).reduce((a, f) => a + f.size, 0) <= 250_000);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a damaged cached copy is dropped and read from the service again', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-fcache-'));
  try {
    const inner = new MemoryStore();
    const ns = { space: 'default', kind: 'meta' as const };
    const f = fragment(5000);
    const cache = new CachingStore(inner, dir, 10_000_000);
    await cache.put(ns, f.id, f.bytes);
    const [file] = await filesUnder(dir);
    await writeFile(file!.path, Buffer.from('torn'));
    t.true(Buffer.from(await cache.get(ns, f.id)).equals(f.bytes));
    t.is(cache.misses, 1);
    await cache.settled();
    t.true(Buffer.from(await cache.get(ns, f.id)).equals(f.bytes));
    t.is(cache.hits, 1, 'cached again after the miss');
    await cache.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('refs are never cached, data only once read back; a limit of 0 caches nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-fcache-'));
  try {
    const inner = new MemoryStore();
    const cache = new CachingStore(inner, dir, 10_000_000);
    const f = fragment(100);
    await cache.put({ space: 'default', kind: 'ref' }, f.id, f.bytes);
    t.deepEqual(await filesUnder(dir), []);
    // A data block written is not copied to the cache; read back from the service, it is.
    await cache.put({ space: 'default', kind: 'data' }, f.id, f.bytes);
    t.deepEqual(await filesUnder(dir), []);
    await cache.get({ space: 'default', kind: 'data' }, f.id);
    await cache.settled();
    t.is((await filesUnder(dir)).length, 1);
    await cache.settled();
    await rm(dir, { recursive: true, force: true });
    const none = new CachingStore(inner, join(dir, 'none'), 0);
    await none.put({ space: 'default', kind: 'data' }, f.id, f.bytes);
    await none.get({ space: 'default', kind: 'data' }, f.id);
    t.deepEqual(await filesUnder(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('readers of one fetch may each hand their bytes to another thread at once: the copies and the cached file stay whole', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-fcache-'));
  try {
    const inner = new MemoryStore();
    const ns = { space: 'default', kind: 'data' as const };
    const shared = fragment(1 << 20);
    const alone = fragment(1 << 20);
    for (const f of [shared, alone]) await inner.put(ns, f.id, f.bytes);
    const cache = new CachingStore(inner, dir, 64 << 20);
    await cache.settled();
    const [a, b] = await Promise.all([cache.get(ns, shared.id), cache.get(ns, shared.id)]);
    t.is(cache.misses, 1, 'one request for both');
    // Detaching one (as a transfer to a codec thread does) leaves the other whole.
    structuredClone(a, { transfer: [a.buffer as ArrayBuffer] });
    t.is(a.byteLength, 0);
    t.true(Buffer.from(b).equals(shared.bytes));
    const c = await cache.get(ns, alone.id);
    t.is(c.byteOffset, 0);
    t.is(c.byteLength, c.buffer.byteLength, 'the one reader gets bytes that own their buffer');
    structuredClone(c, { transfer: [c.buffer as ArrayBuffer] });
    await cache.settled();
    // Both were written whole before their reader could let them go.
    t.is(cache.hits, 0);
    t.true(Buffer.from(await cache.get(ns, shared.id)).equals(shared.bytes));
    t.true(Buffer.from(await cache.get(ns, alone.id)).equals(alone.bytes));
    t.is(cache.hits, 2, 'both from the cache');
    await cache.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a reader that hands its bytes on takes their cache write with them: counted once settled as written, not before, and never for joined readers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-fcache-'));
  try {
    const inner = new MemoryStore();
    const ns = { space: 'default', kind: 'data' as const };
    const [a, b, c] = [fragment(200_000), fragment(200_000), fragment(200_000)];
    for (const f of [a, b, c]) await inner.put(ns, f.id, f.bytes);
    const cache = new CachingStore(inner, dir, 64 << 20);
    await cache.settled();
    t.is(takeCacheHandoff(await cache.get(ns, a.id)), undefined, 'none unless asked for');

    const bytesB = await cache.get(ns, b.id, { handOff: true });
    const h = takeCacheHandoff(bytesB);
    if (h === undefined) return t.fail('no handoff');
    t.is(takeCacheHandoff(bytesB), undefined, 'taken once');
    t.is(h.path.slice(h.path.lastIndexOf('/') + 1), b.id);
    t.is((await filesUnder(dir)).filter((f) => f.path.endsWith(b.id)).length, 0, 'the store wrote nothing itself');
    t.true(writeCacheFileSync(h, bytesB));
    h.settle(true);
    h.settle(false); // once: a second call changes nothing
    const before = cache.misses;
    t.true(Buffer.from(await cache.get(ns, b.id)).equals(b.bytes));
    t.is(cache.misses, before, 'read from the file the taker wrote');
    const file = (await filesUnder(dir)).find((f) => f.path.endsWith(b.id))!;
    t.is((await stat(file.path)).mode & 0o777, 0o600);

    // Settled as not written: the cache does not look for it, the next read asks the service.
    const bytesC = await cache.get(ns, c.id, { handOff: true });
    takeCacheHandoff(bytesC)!.settle(false);
    await cache.get(ns, c.id);
    t.is(cache.misses, before + 2);

    // Two readers of one fetch: no handoff, each its own bytes.
    await cache.settled();
    const d = fragment(200_000);
    await inner.put(ns, d.id, d.bytes);
    const [x, y] = await Promise.all([cache.get(ns, d.id, { handOff: true }), cache.get(ns, d.id, { handOff: true })]);
    t.is(takeCacheHandoff(x), undefined);
    t.is(takeCacheHandoff(y), undefined);
    t.not(x.buffer, y.buffer);
    await cache.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a block read through a repo is cached by the codec thread that verified it; a corrupt one is not cached', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-fcache-'));
  try {
    const volume = new MemoryVolume();
    const cache = new CachingStore(new MemoryStore(volume), join(dir, 'cache'), 64 << 20);
    const repo = await Repo.openMemory({ store: cache, threads: 1 });
    const plain = randomBytes(1 << 20);
    const ref = await repo.writeBlock(new Uint8Array(plain));
    await cache.settled();
    const bad = await repo.writeBlock(new Uint8Array(randomBytes(1 << 20)));
    // Damage the second one at the service.
    const ns = { space: repo.space, kind: 'data' as const };
    const stored = await new MemoryStore(volume).get(ns, bad.id);
    stored[stored.length - 1]! ^= 1;
    await new MemoryStore(volume).delete(ns, bad.id);
    await new MemoryStore(volume).put(ns, bad.id, stored);
    t.true(Buffer.from(await repo.readBlock(ref)).equals(plain));
    const files = await filesUnder(join(dir, 'cache'));
    const cached = files.find((f) => f.path.endsWith(ref.id));
    if (cached === undefined) return t.fail('not cached');
    t.is(toHex(blake3(await readFile(cached.path))), ref.id, 'the cached copy is the stored fragment');
    t.is((await stat(cached.path)).mode & 0o777, 0o600);
    t.false(files.some((f) => f.path.endsWith('.part')), 'no temporary file left');
    const e = await t.throwsAsync(repo.readBlock(bad));
    t.is((e as { code?: string }).code, 'CORRUPT');
    t.false((await filesUnder(join(dir, 'cache'))).some((f) => f.path.endsWith(bad.id)), 'a corrupt block is not cached');
    const misses = cache.misses;
    t.true(Buffer.from(await repo.readBlock(ref)).equals(plain));
    t.is(cache.misses, misses, 'read again from the cache');
    await repo.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
