// File content of the live vfs: the block-grid write buffer, sparse files, truncate, concurrent
// writers and corruption, checked against an in-memory Buffer model.

import test from 'ava';
import fc from 'fast-check';
import { isFragfsError } from '../../src/errors.js';
import { ME, O_RDWR, O_WRONLY, fixture, pseudoRandom, readFile, writeFile } from './vfs-helpers.js';

const BS = 64 * 1024;

type Op = { k: 'w'; off: number; len: number; seed: number } | { k: 't'; size: number } | { k: 'r'; off: number; len: number } | { k: 'f' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('w' as const), off: fc.integer({ min: 0, max: 5 * BS }), len: fc.integer({ min: 1, max: 2 * BS + 7 }), seed: fc.integer({ min: 1, max: 1e9 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('t' as const), size: fc.integer({ min: 0, max: 6 * BS }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('r' as const), off: fc.integer({ min: 0, max: 6 * BS }), len: fc.integer({ min: 1, max: 3 * BS }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'f' as const }) },
);

test('property: random write/truncate/read/flush sequences match a Buffer model (64 KiB blocks)', async (t) => {
  // A tiny write buffer so eviction, in-flight stores and read-modify-write all get exercised.
  const fx = await fixture({ vfs: { writeBufferBytes: 3 * BS, cacheBytes: 2 * BS } });
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const path = `/f${run++}`;
        const v = fx.vfs;
        const fh = await v.create(path, 0o644, O_RDWR, ME);
        let model = Buffer.alloc(0);
        for (const op of ops) {
          if (op.k === 'w') {
            const data = pseudoRandom(op.len, op.seed);
            t.is(await v.write(path, fh, data, op.len, op.off), op.len);
            if (model.length < op.off + op.len) model = Buffer.concat([model, Buffer.alloc(op.off + op.len - model.length)]);
            data.copy(model, op.off);
          } else if (op.k === 't') {
            await v.ftruncate(path, fh, op.size);
            model = op.size <= model.length ? Buffer.from(model.subarray(0, op.size)) : Buffer.concat([model, Buffer.alloc(op.size - model.length)]);
          } else if (op.k === 'r') {
            const buf = Buffer.alloc(op.len, 0xee);
            const n = await v.read(path, fh, buf, op.len, op.off);
            const want = model.subarray(Math.min(op.off, model.length), Math.min(op.off + op.len, model.length));
            if (n !== want.length || !buf.subarray(0, n).equals(want)) return false;
          } else await v.flush(path, fh);
          if ((await v.fgetattr(path, fh)).size !== model.length) return false;
        }
        await v.release(path, fh);
        const back = await readFile(v, path);
        return back.equals(model);
      }),
      { numRuns: 60 },
    );
  } finally {
    await fx.done();
  }
});

test('sparse: holes read as zeros; a 3 GiB sparse file costs almost nothing', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    const GiB = 1024 ** 3;
    const fh = await v.create('/sparse', 0o644, O_RDWR, ME);
    await v.write('/sparse', fh, Buffer.from('head'), 4, 0);
    await v.write('/sparse', fh, Buffer.from('tail'), 4, 3 * GiB - 4);
    await v.release('/sparse', fh);
    const a = await v.getattr('/sparse');
    t.is(a.size, 3 * GiB);
    t.true(a.blocks * 512 < 1024 * 1024, `allocated ${a.blocks * 512}`);
    const r = await v.open('/sparse', 0);
    const buf = Buffer.alloc(8, 0xff);
    await v.read('/sparse', r, buf, 8, 1.5 * GiB);
    t.deepEqual(buf, Buffer.alloc(8));
    await v.read('/sparse', r, buf, 8, 3 * GiB - 8);
    t.deepEqual(buf, Buffer.concat([Buffer.alloc(4), Buffer.from('tail')]));
    await v.release('/sparse', r);
    let dataFragments = 0;
    for await (const _ of fx.repo.store.list(fx.repo.dataNs)) dataFragments++;
    t.true(dataFragments <= 2);
  } finally {
    await fx.done();
  }
});

test('truncate: shrink then grow reads zeros between the old cut and the new size (stored and buffered, across reopen)', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    let v = fx.vfs;
    const data = pseudoRandom(3 * BS + 100, 7);
    await writeFile(v, '/f', data);
    await v.truncate('/f', BS + 10); // cuts inside a stored block
    await v.truncate('/f', 3 * BS);
    let back = await readFile(v, '/f');
    t.true(back.subarray(0, BS + 10).equals(data.subarray(0, BS + 10)));
    t.true(back.subarray(BS + 10).equals(Buffer.alloc(3 * BS - BS - 10)));
    // buffered: write, shrink, grow on one handle without a flush in between
    const fh = await v.open('/f', O_WRONLY);
    await v.write('/f', fh, Buffer.alloc(1000, 9), 1000, 2 * BS);
    await v.ftruncate('/f', fh, 2 * BS + 10);
    await v.ftruncate('/f', fh, 2 * BS + 1000);
    await v.release('/f', fh);
    back = await readFile(v, '/f');
    t.true(back.subarray(2 * BS, 2 * BS + 10).equals(Buffer.alloc(10, 9)));
    t.true(back.subarray(2 * BS + 10).equals(Buffer.alloc(990)));
    // the cut survives a reopen: growing after it still shows zeros
    await v.truncate('/f', BS + 5);
    await v.close();
    v = await fx.reopen();
    await v.truncate('/f', 2 * BS);
    back = await readFile(v, '/f');
    t.true(back.subarray(0, BS + 5).equals(data.subarray(0, BS + 5)));
    t.true(back.subarray(BS + 5).equals(Buffer.alloc(BS - 5)));
    await v.truncate('/f', 0);
    t.is((await v.getattr('/f')).blocks, 0);
  } finally {
    await fx.done();
  }
});

test('concurrent writes to different files and to different offsets of one file', async (t) => {
  const fx = await fixture({ vfs: { writeBufferBytes: 4 * BS } });
  const v = fx.vfs;
  try {
    const files = Array.from({ length: 6 }, (_, i) => ({ path: `/c${i}`, data: pseudoRandom(5 * BS + i * 977, i + 1) }));
    await Promise.all(
      files.map(async ({ path, data }) => {
        const fh = await v.create(path, 0o644, O_WRONLY, ME);
        const chunks: Promise<number>[] = [];
        for (let off = 0; off < data.length; off += 20_000) {
          const part = data.subarray(off, off + 20_000);
          chunks.push(v.write(path, fh, part, part.length, off));
        }
        await Promise.all(chunks);
        await v.release(path, fh);
      }),
    );
    for (const { path, data } of files) t.true((await readFile(v, path)).equals(data), path);
    // one file, disjoint ranges written in a shuffled order, all at once
    const big = pseudoRandom(8 * BS, 99);
    const fh = await v.create('/one', 0o644, O_WRONLY, ME);
    const offs = Array.from({ length: 32 }, (_, i) => i * (BS / 4)).sort((a, b) => ((a * 7919) % 13) - ((b * 7919) % 13));
    await Promise.all(offs.map((o) => v.write('/one', fh, big.subarray(o, o + BS / 4), BS / 4, o)));
    await v.release('/one', fh);
    t.true((await readFile(v, '/one')).equals(big));
  } finally {
    await fx.done();
  }
});

test('a corrupted data fragment fails the read with CORRUPT naming the fragment and the inode', async (t) => {
  const fx = await fixture();
  const v = fx.vfs;
  try {
    await writeFile(v, '/victim', pseudoRandom(2 * BS, 5));
    await v.close();
    const ids: string[] = [];
    for await (const id of fx.repo.store.list(fx.repo.dataNs)) ids.push(id);
    t.is(ids.length, 2);
    const bad = ids[0]!;
    const bytes = Buffer.from(await fx.repo.store.get(fx.repo.dataNs, bad));
    bytes[bytes.length - 20]! ^= 0x01;
    await fx.repo.store.delete(fx.repo.dataNs, bad);
    await fx.repo.store.put(fx.repo.dataNs, bad, bytes);
    const w = await fx.reopen();
    const fh = await w.open('/victim', 0);
    const buf = Buffer.alloc(2 * BS);
    const err = await t.throwsAsync(w.read('/victim', fh, buf, buf.length, 0));
    t.true(isFragfsError(err, 'CORRUPT'), String(err));
    t.is((err as { fragmentId?: string }).fragmentId, bad);
    // Messages name the inode, never the file: they may reach a log (docs/DESIGN.md, Secrets).
    t.true(String(err?.message).includes(`inode ${(await w.getattr('/victim')).ino}`), String(err?.message));
    await w.release('/victim', fh);
  } finally {
    await fx.done();
  }
});

test('writes into stored blocks that are not cached are kept as patches: a full rewrite never reads the old block, a scattered one reads it once when stored', async (t) => {
  const fx = await fixture({ vfs: { cacheBytes: 0 } });
  try {
    const old = pseudoRandom(2 * BS, 11);
    await writeFile(fx.vfs, '/f', old);
    await fx.vfs.close();
    // Corrupt both stored blocks: any read of them fails, which shows which writes read them.
    for await (const id of fx.repo.store.list(fx.repo.dataNs)) {
      const bytes = Buffer.from(await fx.repo.store.get(fx.repo.dataNs, id));
      bytes[bytes.length - 20]! ^= 0x01;
      await fx.repo.store.delete(fx.repo.dataNs, id);
      await fx.repo.store.put(fx.repo.dataNs, id, bytes);
    }
    const v = await fx.reopen();
    const fh = await v.open('/f', O_RDWR);
    // Block 0 rewritten front to back in quarter-block writes: it is never read.
    const fresh = pseudoRandom(BS, 12);
    for (let off = 0; off < BS; off += BS / 4) t.is(await v.write('/f', fh, fresh.subarray(off, off + BS / 4), BS / 4, off), BS / 4);
    // Block 1 gets two small scattered writes: accepted without reading it...
    t.is(await v.write('/f', fh, Buffer.alloc(4096, 1), 4096, BS + 8192), 4096);
    t.is(await v.write('/f', fh, Buffer.alloc(100, 2), 100, BS + 100), 100);
    // ...and reading it back needs the stored block, which fails its checks.
    const err = await t.throwsAsync(v.read('/f', fh, Buffer.alloc(10), 10, BS));
    t.true(isFragfsError(err, 'CORRUPT'), String(err));
    // Messages name the inode, never the file: they may reach a log (docs/DESIGN.md, Secrets).
    t.true(String(err?.message).includes(`inode ${(await v.getattr('/f')).ino}`), String(err?.message));
    const head = Buffer.alloc(BS);
    t.is(await v.read('/f', fh, head, BS, 0), BS);
    t.true(head.equals(fresh));
    await v.release('/f', fh).catch(() => undefined);
    // The fully rewritten block was stored and reads back; the size is unchanged.
    t.is((await v.getattr('/f')).size, 2 * BS);
    const fh2 = await v.open('/f', O_RDWR);
    const again = Buffer.alloc(BS);
    t.is(await v.read('/f', fh2, again, BS, 0), BS);
    t.true(again.equals(fresh));
    await v.release('/f', fh2).catch(() => undefined);
  } finally {
    await fx.done();
  }
});

test('a flush keeps the last blocks it stores in the block cache, up to a quarter of it, not every block', async (t) => {
  // A cache of 8 blocks: a flush keeps at most 2 of the blocks it stores.
  const fx = await fixture({ vfs: { cacheBytes: 8 * BS } });
  try {
    await writeFile(fx.vfs, '/f', pseudoRandom(6 * BS, 21));
    const v = fx.vfs;
    const fh = await v.open('/f', O_RDWR);
    // A small write into each block: six patched blocks, stored by the fsync.
    for (let b = 0; b < 6; b++) t.is(await v.write('/f', fh, Buffer.alloc(100, b + 1), 100, b * BS + 10), 100);
    await v.fsync('/f', fh, false);
    // Corrupt every stored fragment: from now on a block reads back only from the cache.
    for await (const id of fx.repo.store.list(fx.repo.dataNs)) {
      const bytes = Buffer.from(await fx.repo.store.get(fx.repo.dataNs, id));
      bytes[bytes.length - 20]! ^= 0x01;
      await fx.repo.store.delete(fx.repo.dataNs, id);
      await fx.repo.store.put(fx.repo.dataNs, id, bytes);
    }
    const cached: number[] = [];
    for (let b = 0; b < 6; b++) {
      const buf = Buffer.alloc(100);
      const n = await v.read('/f', fh, buf, 100, b * BS + 10).catch((e: unknown) => {
        t.true(isFragfsError(e, 'CORRUPT'), String(e));
        return -1;
      });
      if (n === -1) continue;
      t.true(buf.equals(Buffer.alloc(100, b + 1)), `block ${b}`);
      cached.push(b);
    }
    t.deepEqual(cached, [4, 5], 'the last two blocks written, and no more');
    await v.release('/f', fh).catch(() => undefined);
  } finally {
    await fx.done();
  }
});

test('a patch whose block is corrupt fails fsync with CORRUPT, naming the fragment and the inode', async (t) => {
  const fx = await fixture({ vfs: { cacheBytes: 0 } });
  try {
    await writeFile(fx.vfs, '/g', pseudoRandom(BS, 13));
    await fx.vfs.close();
    const ids: string[] = [];
    for await (const id of fx.repo.store.list(fx.repo.dataNs)) ids.push(id);
    t.is(ids.length, 1);
    const bytes = Buffer.from(await fx.repo.store.get(fx.repo.dataNs, ids[0]!));
    bytes[bytes.length - 20]! ^= 0x01;
    await fx.repo.store.delete(fx.repo.dataNs, ids[0]!);
    await fx.repo.store.put(fx.repo.dataNs, ids[0]!, bytes);
    const v = await fx.reopen();
    const fh = await v.open('/g', O_WRONLY);
    t.is(await v.write('/g', fh, Buffer.alloc(512, 3), 512, 1000), 512);
    const err = await t.throwsAsync(v.fsync('/g', fh, false));
    t.true(isFragfsError(err, 'CORRUPT'), String(err));
    t.is((err as { fragmentId?: string }).fragmentId, ids[0]);
    // Messages name the inode, never the file: they may reach a log (docs/DESIGN.md, Secrets).
    t.true(String(err?.message).includes(`inode ${(await v.getattr('/g')).ino}`), String(err?.message));
    await v.release('/g', fh).catch(() => undefined);
  } finally {
    await fx.done();
  }
});

test('scattered writes over stored blocks the cache does not hold come back right: compressed and random blocks, a short last block, a cut inside a patched block', async (t) => {
  const fx = await fixture({ vfs: { cacheBytes: 0, writeBufferBytes: 2 * BS } });
  try {
    // Block 0 compresses (a repeating text), block 1 does not, block 2 is short (a tail of 5,000 bytes).
    const text = Buffer.from('fragfs decodes a patched block into its new image. '.repeat(Math.ceil(BS / 51))).subarray(0, BS);
    const model = Buffer.concat([text, pseudoRandom(BS, 21), pseudoRandom(5000, 22)]);
    await writeFile(fx.vfs, '/p', model);
    await fx.vfs.close();
    const v = await fx.reopen();
    const fh = await v.open('/p', O_RDWR);
    // More scattered writes than a patch keeps (64), so each block is laid over its stored bytes
    // while being written, and again when stored.
    for (let i = 0; i < 200; i++) {
      const off = (i * 7919) % (model.length - 64);
      const data = pseudoRandom(1 + (i % 60), 100 + i);
      t.is(await v.write('/p', fh, data, data.length, off), data.length);
      data.copy(model, off);
    }
    await v.fsync('/p', fh, false);
    // A cut inside block 1 while it is patched again, then a grow: zeros past the cut.
    t.is(await v.write('/p', fh, Buffer.alloc(10, 9), 10, BS + 300), 10);
    Buffer.alloc(10, 9).copy(model, BS + 300);
    await v.ftruncate('/p', fh, BS + 1000);
    await v.ftruncate('/p', fh, 2 * BS + 10);
    const want = Buffer.concat([model.subarray(0, BS + 1000), Buffer.alloc(BS - 990)]);
    await v.release('/p', fh);
    t.true((await readFile(v, '/p')).equals(want));
    await fx.vfs.close();
    t.true((await readFile(await fx.reopen(), '/p')).equals(want), 'and after a reopen');
  } finally {
    await fx.done();
  }
});
