// BLAKE3 wrappers against the @noble/hashes reference and the official BLAKE3 test vectors.

import test from 'ava';
import fc from 'fast-check';
import { blake3 as refBlake3 } from '@noble/hashes/blake3.js';
import { randomBytes } from 'node:crypto';
import { isFragfsError } from '../../src/errors.js';
import { blake3, blake3DeriveKey, blake3Keyed, fromHex, isHexId, toHex } from '../../src/codec/blake3.js';

const enc = new TextEncoder();

// From BLAKE3's test_vectors.json (input_len 0), first 32 bytes of each output.
const OFFICIAL_KEY = enc.encode('whats the Elvish word for friend');
const OFFICIAL_CONTEXT = 'BLAKE3 2019-12-27 16:29:52 test vectors context';
const OFFICIAL_EMPTY = {
  hash: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
  keyed: '92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26',
  deriveKey: '2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d',
};

/** BLAKE3 test-vector input: bytes 0, 1, ..., 250, 0, 1, ... */
function officialInput(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

test('official BLAKE3 test vectors for the empty input', (t) => {
  const empty = new Uint8Array(0);
  t.is(toHex(blake3(empty)), OFFICIAL_EMPTY.hash);
  t.is(toHex(blake3Keyed(OFFICIAL_KEY, empty)), OFFICIAL_EMPTY.keyed);
  t.is(toHex(blake3DeriveKey(OFFICIAL_CONTEXT, empty)), OFFICIAL_EMPTY.deriveKey);
});

test('outputs are plain 32-byte Uint8Arrays that own their buffer', (t) => {
  for (const out of [blake3(new Uint8Array(3)), blake3Keyed(new Uint8Array(32), new Uint8Array(3)), blake3DeriveKey('c', new Uint8Array(3))]) {
    t.is(out.constructor, Uint8Array);
    t.is(out.length, 32);
    t.is(out.buffer.byteLength, 32);
  }
});

test('hash, keyed hash and derive_key match the reference at chunk boundaries', (t) => {
  const key = new Uint8Array(randomBytes(32));
  const ctx = 'fragfs test context';
  for (const n of [1, 63, 64, 65, 1023, 1024, 1025, 2048, 2049, 3072, 8193, 65536, 1048577]) {
    const input = officialInput(n);
    t.is(toHex(blake3(input)), toHex(refBlake3(input)), `hash, ${n} bytes`);
    t.is(toHex(blake3Keyed(key, input)), toHex(refBlake3(input, { key })), `keyed, ${n} bytes`);
    t.is(toHex(blake3DeriveKey(ctx, input)), toHex(refBlake3(input, { context: enc.encode(ctx) })), `derive_key, ${n} bytes`);
  }
});

test('property: random inputs, keys and contexts match the reference', (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 5000 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.string({ minLength: 1, maxLength: 40 }),
      (input, key, ctx) => {
        return (
          toHex(blake3(input)) === toHex(refBlake3(input)) &&
          toHex(blake3Keyed(key, input)) === toHex(refBlake3(input, { key })) &&
          toHex(blake3DeriveKey(ctx, input)) === toHex(refBlake3(input, { context: enc.encode(ctx) }))
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('keyed hashing alternating between keys gives each key its own result', (t) => {
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  const input = officialInput(5000);
  for (let i = 0; i < 3; i++) {
    t.is(toHex(blake3Keyed(k1, input)), toHex(refBlake3(input, { key: k1 })));
    t.is(toHex(blake3Keyed(k2, input)), toHex(refBlake3(input, { key: k2 })));
  }
  // A key mutated in place after use must not be served from the reused hasher.
  const k3 = new Uint8Array(32).fill(3);
  blake3Keyed(k3, input);
  k3[0] = 9;
  t.is(toHex(blake3Keyed(k3, input)), toHex(refBlake3(input, { key: k3 })));
});

test('views into larger buffers hash only their own bytes', (t) => {
  const big = officialInput(4096);
  const view = big.subarray(100, 3000);
  const key = big.subarray(7, 39);
  t.is(toHex(blake3(view)), toHex(refBlake3(view.slice())));
  t.is(toHex(blake3Keyed(key, view)), toHex(refBlake3(view.slice(), { key: key.slice() })));
  t.is(toHex(blake3DeriveKey('x', view)), toHex(refBlake3(view.slice(), { context: enc.encode('x') })));
});

test('a keyed hash key of the wrong length is INVALID, not a crash', (t) => {
  for (const n of [0, 16, 31, 33, 64]) {
    const e = t.throws(() => blake3Keyed(new Uint8Array(n), new Uint8Array(1)));
    t.true(isFragfsError(e, 'INVALID'), `${n}-byte key`);
    t.regex(e!.message, /32 bytes/);
  }
  t.true(isFragfsError(t.throws(() => blake3DeriveKey('', new Uint8Array(1))), 'INVALID'));
});

test('toHex / fromHex round trip and fromHex rejects malformed hex', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => toHex(fromHex(toHex(b))) === toHex(b)));
  t.is(toHex(new Uint8Array([0, 1, 0xab, 0xff])), '0001abff');
  t.deepEqual(fromHex('00FFaB'), new Uint8Array([0, 0xff, 0xab]));
  t.deepEqual(fromHex(''), new Uint8Array(0));
  t.is(fromHex('0001').constructor, Uint8Array);
  for (const bad of ['abc', 'zz', '0x00', '00 11', 'g0', '\u00e90']) {
    t.true(isFragfsError(t.throws(() => fromHex(bad)), 'INVALID'), bad);
  }
  t.true(isFragfsError(t.throws(() => fromHex(42 as unknown as string)), 'INVALID'));
});

test('isHexId accepts exactly 64 lowercase hex digits', (t) => {
  t.true(isHexId('a'.repeat(64)));
  t.false(isHexId('A'.repeat(64)));
  t.false(isHexId('a'.repeat(63)));
  t.false(isHexId('a'.repeat(65)));
  t.false(isHexId(undefined));
});
