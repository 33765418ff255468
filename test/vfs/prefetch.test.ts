// Read-ahead policy: the window grows along a sequential stream, survives the small reorderings the
// kernel and libfuse's threads introduce, and a real seek resets it.

import test from 'ava';
import { newReadAheadState, readAhead } from '../../src/vfs/prefetch.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const REQ = 128 * KiB;
const FILE = 1024 * MiB;

/** Reads the offsets in order; returns how far ahead of the stream the last read asked for. */
function aheadAfter(offsets: number[]): number {
  const st = newReadAheadState();
  for (const pos of offsets) readAhead(st, pos, REQ, FILE, MiB, 8 * MiB);
  return st.issuedTo - (Math.max(...offsets) + REQ);
}

test('a sequential stream grows the window to the maximum', (t) => {
  const offsets = Array.from({ length: 64 }, (_, i) => i * REQ);
  t.is(aheadAfter(offsets), 8 * MiB);
});

test('a stream arriving with neighbouring requests swapped keeps its window', (t) => {
  const offsets: number[] = [];
  for (let i = 0; i < 64; i += 2) offsets.push((i + 1) * REQ, i * REQ);
  offsets[0] = 0; // a stream starts at 0
  offsets[1] = REQ;
  t.true(aheadAfter(offsets) >= 7 * MiB);
});

test('a seek far away resets the window; reading on from there grows it again', (t) => {
  const st = newReadAheadState();
  for (let i = 0; i < 64; i++) readAhead(st, i * REQ, REQ, FILE, MiB, 8 * MiB);
  t.is(readAhead(st, 512 * MiB, REQ, FILE, MiB, 8 * MiB), undefined);
  t.is(st.streak, 0);
  const next = readAhead(st, 512 * MiB + REQ, REQ, FILE, MiB, 8 * MiB);
  t.truthy(next);
  t.true(next!.to - next!.from <= MiB + REQ);
});

test('nothing is asked for past the end of the file', (t) => {
  const st = newReadAheadState();
  let last: { from: number; to: number } | undefined;
  for (let pos = 0; pos < 3 * MiB; pos += REQ) last = readAhead(st, pos, REQ, 3 * MiB, MiB, 8 * MiB) ?? last;
  t.is(last!.to, 3 * MiB);
});
