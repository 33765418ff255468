// Repo.writeBlock and recycled memory (src/store/buffer-recycle.ts): a whole block's stored bytes are
// encoded into memory an earlier block's went through, and that memory is given back once the store
// holds the fragment, which is then the store's own (the memory's next use does not change it).

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { storedCapacity } from '../../src/codec/block-codec.js';
import { Repo } from '../../src/repo/repo.js';
import { dropKeptBuffers, giveBuffer, takeBuffer } from '../../src/store/buffer-recycle.js';

const BS = 1 << 20;

test('a whole block is encoded into recycled memory, given back once stored; the stored fragment stays as it was', async (t) => {
  const repo = await Repo.openMemory({ blockSize: BS, threads: 1 });
  t.teardown(() => repo.close());
  dropKeptBuffers();
  const plain = randomBytes(BS);
  const ref = await repo.writeBlock(Buffer.from(plain));
  const stored = Buffer.from(await repo.store.get({ space: repo.space, kind: 'data' }, ref.id));
  const mem = takeBuffer(storedCapacity(BS));
  t.true(mem.subarray(0, stored.length).equals(stored), 'the memory given back is the one the stored bytes were encoded into');
  mem.fill(0xee);
  t.true(Buffer.from(await repo.readBlock(ref)).equals(plain), 'reusing that memory does not touch the stored fragment');

  // The next whole block takes that memory again; a partial block leaves it alone.
  const kept = takeBuffer(storedCapacity(BS));
  const keptBuffer = kept.buffer;
  giveBuffer(keptBuffer as ArrayBuffer);
  const part = await repo.writeBlock(randomBytes(BS / 2 + 3));
  t.is(takeBuffer(storedCapacity(BS)).buffer, keptBuffer, 'a partial block takes no recycled memory');
  giveBuffer(keptBuffer as ArrayBuffer);
  const second = randomBytes(BS);
  const ref2 = await repo.writeBlock(Buffer.from(second));
  t.true(Buffer.from(await repo.readBlock(ref2)).equals(second));
  t.true(Buffer.from(await repo.readBlock(part)).length === BS / 2 + 3);
  // Written again (a dedup hit on the store's side): the memory still comes back.
  dropKeptBuffers();
  await repo.writeBlock(Buffer.from(second));
  const back = takeBuffer(storedCapacity(BS));
  const stored2 = Buffer.from(await repo.store.get({ space: repo.space, kind: 'data' }, ref2.id));
  t.true(back.subarray(0, stored2.length).equals(stored2));
  dropKeptBuffers();
});
