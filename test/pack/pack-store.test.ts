// Packs: small fragments written through a PackStore on a real dir store come back byte for byte,
// cost a handful of objects, are found by another process's store, and survive a damaged index.

import test from 'ava';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { DirStore } from '../../src/store/dir-store.js';
import { PackStore } from '../../src/pack/pack-store.js';
import { buildPack, packIndexKeyOf, readPackIndex } from '../../src/pack/pack-format.js';
import { PackTable } from '../../src/pack/pack-table.js';
import type { Store } from '../../src/store/store.js';

const space = 'main';
const data = { space, kind: 'data' } as const;
const meta = { space, kind: 'meta' } as const;
const key = packIndexKeyOf(new Uint8Array(32).fill(7));

function fragment(bytes = randomBytes(1 + Math.floor(Math.random() * 4000))): { id: string; bytes: Buffer } {
  return { id: toHex(blake3(bytes)), bytes };
}

async function count(store: Store, kind: 'data' | 'meta' | 'pack' | 'index'): Promise<number> {
  let n = 0;
  for await (const _ of store.list({ space, kind })) n++;
  return n;
}

async function withDir(t: { teardown: (f: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-pack-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a pack round trips; its index opens only with the key and finds any damage', (t) => {
  const frags = [fragment(), fragment(), fragment()];
  const pack = buildPack(key, 'data', frags);
  const idx = readPackIndex(key, pack, 'p');
  t.is(idx.kind, 'data');
  t.deepEqual(
    idx.entries.map((e) => Buffer.from(pack.subarray(e.offset, e.offset + e.length))),
    frags.map((f) => f.bytes),
  );
  t.deepEqual(idx.entries.map((e) => e.id), frags.map((f) => f.id));
  t.throws(() => readPackIndex(packIndexKeyOf(new Uint8Array(32)), pack, 'p'), { message: /does not open/ });
  const flipped = Buffer.from(pack);
  flipped[flipped.length - 20]! ^= 1;
  t.throws(() => readPackIndex(key, flipped, 'p'), { message: /does not open|not a pack|declares/ });
  const cut = Buffer.from(pack.subarray(1));
  t.throws(() => readPackIndex(key, cut, 'p'), { message: /bad pack index|declares/ });
  // Nothing of an id is in clear in the pack beyond the fragments' own bytes.
  const tail = pack.subarray(frags.reduce((n, f) => n + f.bytes.length, 0));
  for (const f of frags) t.is(tail.indexOf(Buffer.from(f.id, 'hex').subarray(0, 8)), -1);
});

test('the pack table finds every entry, forgets dropped packs and grows past its first size', (t) => {
  const table = new PackTable();
  const ids: string[][] = [];
  for (let p = 0; p < 30; p++) {
    const entries = Array.from({ length: 200 }, (_, i) => ({ id: randomBytes(32).toString('hex'), offset: i * 10, length: 10 }));
    ids.push(entries.map((e) => e.id));
    table.add(`${p}`.padStart(64, '0'), p % 2 ? 'meta' : 'data', entries);
  }
  t.is(table.entryCount, 6000);
  t.deepEqual(table.lookup(ids[3]![17]!), { pack: '3'.padStart(64, '0'), kind: 'meta', offset: 170, length: 10 });
  t.is(table.lookup(ids[3]![17]!, 'data'), undefined);
  t.is(table.lookup(randomBytes(32).toString('hex')), undefined);
  for (let p = 0; p < 20; p++) table.drop(`${p}`.padStart(64, '0'));
  t.is(table.lookup(ids[3]![17]!), undefined);
  t.is(table.lookup(ids[25]![199]!)?.offset, 1990);
  t.is(table.entryCount, 2000);
});

test('a pack that puts wait for is written once maxWaiting of them wait, else after delayMs; hurry() writes it at once', async (t) => {
  const dir = await withDir(t);
  const store = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true, delayMs: 10_000, maxWaiting: 10 });
  const burst = Array.from({ length: 100 }, () => fragment());
  let started = performance.now();
  await Promise.all(burst.map((f) => store.put(data, f.id, f.bytes)));
  t.true(performance.now() - started < 5000, 'written by count, not after the 10 s delay');
  t.is(await count(store.inner, 'pack'), 10);
  // Three puts wait: far below the count, so only the delay would write them, unless hurried.
  const few = Array.from({ length: 3 }, () => fragment());
  let resolved = 0;
  const puts = few.map((f) => store.put(data, f.id, f.bytes).then(() => resolved++));
  await new Promise((r) => setTimeout(r, 100));
  t.is(resolved, 0, 'still waiting for the delay');
  started = performance.now();
  await store.hurry(() => Promise.all(puts));
  t.true(performance.now() - started < 5000, 'hurry wrote the open pack');
  t.is(await count(store.inner, 'pack'), 11);
  for (const f of [...burst, ...few]) t.deepEqual(Buffer.from(await store.get(data, f.id)), f.bytes);
});

test('a metadata pack waits metaDelayMs, not the data packs\' delay (folders are written one after another)', async (t) => {
  const dir = await withDir(t);
  const store = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true, delayMs: 10_000, metaDelayMs: 1 });
  const started = performance.now();
  for (let i = 0; i < 5; i++) {
    const f = fragment();
    await store.put(meta, f.id, f.bytes);
  }
  t.true(performance.now() - started < 5000, 'five metadata puts one after another did not wait for the data delay');
  t.is(await count(store.inner, 'pack'), 5);
});

test('a thousand small fragments put at once become a few packs; large ones stay single; all read back', async (t) => {
  const dir = await withDir(t);
  // No bound on puts waiting for one pack here (the next test has it): packs close by size.
  const store = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true, targetBytes: 1024 * 1024, maxWaiting: Infinity });
  const small = Array.from({ length: 1000 }, () => fragment());
  const large = [fragment(randomBytes(300_000)), fragment(randomBytes(400_000))];
  const metas = Array.from({ length: 50 }, () => fragment());
  await Promise.all([...small, ...large].map((f) => store.put(data, f.id, f.bytes)).concat(metas.map((f) => store.put(meta, f.id, f.bytes))));
  const packs = await count(store.inner, 'pack');
  t.log(`${small.length + metas.length} small fragments in ${packs} packs`);
  t.true(packs >= 2 && packs <= 8, `${packs} packs`);
  t.is(await count(store.inner, 'index'), packs);
  t.is(await count(store.inner, 'data'), 2); // only the large ones are single objects
  for (const f of [...small, ...large]) t.deepEqual(Buffer.from(await store.get(data, f.id)), f.bytes);
  for (const f of metas) t.deepEqual(Buffer.from(await store.get(meta, f.id)), f.bytes);
  t.true(await store.has(data, small[5]!.id));
  t.false(await store.has(meta, small[5]!.id)); // kinds stay apart
  t.is(await store.size(data, small[9]!.id), small[9]!.bytes.length);
  t.is(await count(store, 'data'), 1002);
  t.is(await count(store, 'meta'), 50);
  // Put again: nothing new is written.
  await Promise.all(small.map((f) => store.put(data, f.id, f.bytes)));
  t.is(await count(store.inner, 'pack'), packs);
  await store.close();

  // Another opening (another process) reads them from the index objects.
  const again = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true });
  for (const f of small) t.deepEqual(Buffer.from(await again.get(data, f.id)), f.bytes);
  await again.close();
});

test('a fragment another opening packed later is found; a damaged index is rebuilt from its pack', async (t) => {
  const dir = await withDir(t);
  const reader = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true });
  const writer = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true });
  t.false(await reader.has(data, fragment().id)); // the reader has looked at the (empty) store once
  const f = fragment();
  await writer.put(data, f.id, f.bytes);
  t.deepEqual(Buffer.from(await reader.get(data, f.id)), f.bytes);
  await writer.close();
  await reader.close();

  const indexDir = join(dir, space, 'index');
  const fan = (await readdir(indexDir))[0]!;
  const file = join(indexDir, fan, (await readdir(join(indexDir, fan)))[0]!);
  await writeFile(file, randomBytes(200));
  const fresh = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true });
  t.deepEqual(Buffer.from(await fresh.get(data, f.id)), f.bytes);
  await fresh.close();
  const healed = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true });
  t.deepEqual(Buffer.from(await healed.get(data, f.id)), f.bytes);
  await healed.close();
});

test('a put resolves only once its pack is stored: every resolved put is in a pack on disk', async (t) => {
  const dir = await withDir(t);
  const store = new PackStore(await DirStore.open(dir), { space, indexKey: key, writePacks: true, delayMs: 50 });
  const f = fragment();
  t.false(await store.has(data, f.id)); // the first call learns the (empty) index
  let resolved = false;
  const put = store.put(data, f.id, f.bytes).then(() => (resolved = true));
  t.deepEqual(Buffer.from(await store.get(data, f.id)), f.bytes); // readable while its pack is open
  t.false(resolved);
  t.is(await count(store.inner, 'pack'), 0);
  await put;
  t.is(await count(store.inner, 'pack'), 1);
  await store.close();
});

test('a first look at the packs that fails (a service out of reach) is made again by the next call', async (t) => {
  const dir = await withDir(t);
  const inner = await DirStore.open(dir);
  let down = true;
  const flaky = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'list' && down) {
        return () => ({
          [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('connect ECONNREFUSED')) }),
        });
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const store = new PackStore(flaky, { space, indexKey: key, writePacks: true });
  const f = fragment();
  await t.throwsAsync(store.put(data, f.id, f.bytes), { message: /ECONNREFUSED/ });
  down = false;
  await store.put(data, f.id, f.bytes);
  t.deepEqual(Buffer.from(await store.get(data, f.id)), f.bytes);
  await store.close();
});
