// Packs on a remote store read cold: a packed fragment not in the local cache is read by range, so a
// few small files cost what they hold rather than whole packs; a reader that goes on through a pack
// fetches it whole once (however many read at once) and reads the rest from the local cache.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { PackStore } from '../../src/pack/pack-store.js';
import { CachingStore, RANGED_READS_BEFORE_WHOLE } from '../../src/remote/fragment-cache.js';
import { MIN_RANGED_READ_BYTES, ObjectStore } from '../../src/remote/object-store.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { MemoryObjectRoot } from '../helpers/memory-objects.js';

const SPACE = 'main';
const data = { space: SPACE, kind: 'data' as const };
const indexKey = randomBytes(32);

function stack(root: MemoryObjectRoot, cacheDir: string): { packs: PackStore; cache: CachingStore } {
  const cache = new CachingStore(new ObjectStore(new ResilientBackend(root.open())), cacheDir, 256 * 1024 * 1024);
  return { packs: new PackStore(cache, { space: SPACE, indexKey, writePacks: true }), cache };
}

/** One pack of `n` fragments of 16 KiB, written through a first machine's stack. */
async function writePack(root: MemoryObjectRoot, dir: string, n: number): Promise<{ id: string; bytes: Buffer }[]> {
  const frags = Array.from({ length: n }, () => {
    const bytes = randomBytes(16 * 1024);
    return { id: toHex(blake3(bytes)), bytes };
  });
  const { packs } = stack(root, join(dir, 'writer-cache'));
  for (const f of frags) await packs.put(data, f.id, f.bytes, { deferred: true });
  await packs.sync();
  await packs.close();
  return frags;
}

function packBytesOf(root: MemoryObjectRoot): number {
  let n = 0;
  for (const [key, v] of root.objects) if (key.startsWith(`${SPACE}/packs/`)) n += v.length;
  return n;
}

test('a cold read of one packed fragment reads its range, not the whole pack', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-pack-remote-'));
  try {
    const root = new MemoryObjectRoot();
    const frags = await writePack(root, dir, 200);
    const packBytes = packBytesOf(root);
    t.true(packBytes > 200 * 16 * 1024, 'one pack holds them');
    const { packs, cache } = stack(root, join(dir, 'reader-cache'));
    root.bytesRead = 0;
    const f = frags[117]!;
    const got = Buffer.from(await packs.get(data, f.id));
    t.is(toHex(blake3(got)), f.id);
    // The pack's index (a few KiB) and one ranged read (the fragment, at least MIN_RANGED_READ_BYTES):
    // far less than the pack.
    t.true(root.bytesRead < MIN_RANGED_READ_BYTES + 20 * 1024, `read ${root.bytesRead} bytes of a ${packBytes}-byte pack`);
    t.is(root.gets, 1, 'the index object alone is read whole');
    t.is(root.rangeGets, 1);
    await cache.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a reader that goes on through a pack fetches it whole once, then reads it locally', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-pack-remote-'));
  try {
    const root = new MemoryObjectRoot();
    const frags = await writePack(root, dir, 100);
    const packBytes = packBytesOf(root);
    const { packs, cache } = stack(root, join(dir, 'reader-cache'));
    await packs.get(data, frags[0]!.id); // learns the index
    root.gets = 0;
    root.rangeGets = 0;
    root.bytesRead = 0;
    for (const f of frags.slice(1, RANGED_READS_BEFORE_WHOLE)) t.is(toHex(blake3(await packs.get(data, f.id))), f.id);
    t.is(root.rangeGets, RANGED_READS_BEFORE_WHOLE - 1);
    // A read-ahead: many fragments of the pack at once share one whole read.
    const rest = frags.slice(RANGED_READS_BEFORE_WHOLE, 40);
    const read = await Promise.all(rest.map((f) => packs.get(data, f.id)));
    read.forEach((b, i) => t.is(toHex(blake3(b)), rest[i]!.id));
    t.is(root.gets, 1, 'the pack is read whole once');
    await cache.settled();
    const calls = root.calls;
    for (const f of frags.slice(40)) t.is(toHex(blake3(await packs.get(data, f.id))), f.id);
    t.is(root.calls, calls, 'the rest of the pack comes from the local cache');
    t.true(root.bytesRead <= packBytes + (RANGED_READS_BEFORE_WHOLE - 1) * MIN_RANGED_READ_BYTES, `read ${root.bytesRead} bytes`);
    await cache.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
