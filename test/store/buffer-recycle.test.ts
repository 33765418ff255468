// Recycled fetch buffers (src/store/buffer-recycle.ts): a buffer given back is taken again for the
// same size and owns its memory; how many are kept is bounded and small ones are not kept.

import test from 'ava';
import { dropKeptBuffers, giveBuffer, MAX_KEPT_BUFFERS, MIN_KEPT_BYTES, takeBuffer } from '../../src/store/buffer-recycle.js';

test('a buffer given back is the next one taken of its size, whole; other sizes and small ones are made anew', (t) => {
  const size = MIN_KEPT_BYTES + 13;
  const first = takeBuffer(size);
  t.is(first.byteOffset, 0);
  t.is(first.buffer.byteLength, size, 'owns its ArrayBuffer (a codec thread takes it whole)');
  const ab = first.buffer as ArrayBuffer;
  giveBuffer(ab);
  t.not(takeBuffer(size + 1).buffer, ab, 'another size');
  const again = takeBuffer(size);
  t.is(again.buffer, ab);
  t.is(again.byteLength, size);
  t.not(takeBuffer(size).buffer, ab, 'taken once');
  const small = takeBuffer(1000);
  giveBuffer(small.buffer as ArrayBuffer);
  t.not(takeBuffer(1000).buffer, small.buffer, 'small ones are not kept');
});

test('at most MAX_KEPT_BUFFERS are kept', (t) => {
  const size = MIN_KEPT_BYTES + 101;
  const given = Array.from({ length: MAX_KEPT_BUFFERS + 3 }, () => takeBuffer(size).buffer as ArrayBuffer);
  for (const ab of given) giveBuffer(ab);
  const back = new Set<ArrayBufferLike>();
  for (let i = 0; i < MAX_KEPT_BUFFERS + 3; i++) back.add(takeBuffer(size).buffer);
  t.is(given.filter((ab) => back.has(ab)).length, MAX_KEPT_BUFFERS);
});

test('a full pool makes room for a new size by letting the size given back longest ago go', (t) => {
  dropKeptBuffers();
  const a = MIN_KEPT_BYTES + 201;
  const c = MIN_KEPT_BYTES + 202;
  const as = Array.from({ length: MAX_KEPT_BUFFERS }, () => takeBuffer(a).buffer as ArrayBuffer);
  for (const ab of as) giveBuffer(ab);
  const other = takeBuffer(c).buffer as ArrayBuffer;
  giveBuffer(other);
  t.is(takeBuffer(c).buffer, other, 'the new size is kept');
  const back = new Set<ArrayBufferLike>();
  for (let i = 0; i < MAX_KEPT_BUFFERS; i++) back.add(takeBuffer(a).buffer);
  t.is(as.filter((ab) => back.has(ab)).length, MAX_KEPT_BUFFERS - 1, 'one of the older size went');
  dropKeptBuffers();
});

test('dropKeptBuffers lets every kept buffer go', (t) => {
  const size = MIN_KEPT_BYTES + 303;
  const ab = takeBuffer(size).buffer as ArrayBuffer;
  giveBuffer(ab);
  dropKeptBuffers();
  t.not(takeBuffer(size).buffer, ab);
});
