// The data block codec: round trips, determinism, the stored layout, and that every kind of damage
// is detected and named (never returned as data).

import test from 'ava';
import fc from 'fast-check';
import { blake3 as refBlake3 } from '@noble/hashes/blake3.js';
import { gcm } from '@noble/ciphers/aes.js';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import { FragfsError, isFragfsError } from '../../src/errors.js';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { MAX_BLOCK_SIZE } from '../../src/codec/block-size.js';
import { decodeBlock, encodeBlock, type DecodeRef, type EncodedBlock } from '../../src/codec/block-codec.js';

const zstd = createRequire(import.meta.url)('zstd-napi') as typeof import('zstd-napi');

const KiB = 1024;
const MiB = 1024 * 1024;
const secret = new Uint8Array(32).map((_, i) => i);

function randomData(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** Compressible: short words repeated with some variation. */
function textData(n: number): Uint8Array {
  const words = ['alpha ', 'beta ', 'gamma ', 'delta ', 'store ', 'block ', 'fragment\n'];
  const out = new Uint8Array(n);
  let at = 0;
  let i = 0;
  while (at < n) {
    const w = Buffer.from(words[(i * 7 + (i >> 3)) % words.length]!);
    out.set(w.subarray(0, n - at), at);
    at += w.length;
    i++;
  }
  return out;
}

function refOf(e: EncodedBlock): DecodeRef {
  return { id: e.id, key: e.key, plainSize: e.plainSize };
}

/** Recomputes crc and id after a deliberate edit, as a forger who knows the format would. */
function reseal(stored: Uint8Array): { stored: Uint8Array; id: string } {
  const s = new Uint8Array(stored);
  new DataView(s.buffer).setUint32(1, crc32(s.subarray(5)));
  return { stored: s, id: toHex(blake3(s)) };
}

function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const c = new Uint8Array(b);
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
}

/** Asserts decode throws CORRUPT naming `id` and the failed check. */
function assertCorrupt(t: import('ava').ExecutionContext, fn: () => unknown, id: string, check: RegExp, label?: string): void {
  const e = t.throws(fn, undefined, label);
  t.true(e instanceof FragfsError, label);
  t.is((e as FragfsError).code, 'CORRUPT', label);
  t.is((e as FragfsError).fragmentId, id, label);
  t.true(e!.message.startsWith(`fragment ${id}: `), label);
  t.regex(e!.message, check, label);
}

test('round trip over sizes 0 .. 4 MiB, random, text-like and zeros', (t) => {
  const sizes = [0, 1, 2, 15, 16, 17, 100, 4095, 4096, 4097, 64 * KiB - 1, 64 * KiB, MiB - 1, MiB, MiB + 1, 4 * MiB];
  for (const n of sizes) {
    for (const [kind, data] of [['random', randomData(n)], ['text', textData(n)], ['zeros', new Uint8Array(n)]] as const) {
      const label = `${kind} ${n}`;
      const e = encodeBlock(data, secret);
      t.is(e.plainSize, n, label);
      t.is(e.id, toHex(blake3(e.stored)), label);
      if (kind === 'random' || n === 0) {
        t.false(e.compressed, label);
        t.is(e.stored.length, 5 + n + 16, label);
      }
      if (kind !== 'random' && n >= 4096) t.true(e.compressed && e.stored.length < n, label);
      const d = decodeBlock(e.stored, refOf(e));
      t.is(d.constructor, Uint8Array, label);
      t.is(d.buffer.byteLength, n, `${label}: result owns its buffer`);
      t.true(Buffer.from(d).equals(Buffer.from(data)), label);
      // plainSize is optional for the reader.
      t.true(Buffer.from(decodeBlock(e.stored, { id: e.id, key: e.key })).equals(Buffer.from(data)), label);
    }
  }
});

test('blocks larger than 4 MiB and bad secrets are INVALID', (t) => {
  t.true(isFragfsError(t.throws(() => encodeBlock(new Uint8Array(MAX_BLOCK_SIZE + 1), secret)), 'INVALID'));
  t.true(isFragfsError(t.throws(() => encodeBlock(new Uint8Array(1), new Uint8Array(31))), 'INVALID'));
  t.true(isFragfsError(t.throws(() => encodeBlock('x' as unknown as Uint8Array, secret)), 'INVALID'));
});

test('encoding is deterministic and does not modify its input', (t) => {
  for (const data of [textData(300 * KiB), randomData(70 * KiB), new Uint8Array(0)]) {
    const before = new Uint8Array(data);
    const a = encodeBlock(data, secret);
    const b = encodeBlock(new Uint8Array(data), new Uint8Array(secret));
    t.is(a.id, b.id);
    t.is(toHex(a.key), toHex(b.key));
    t.is(toHex(a.stored), toHex(b.stored));
    t.is(a.compressed, b.compressed);
    t.is(toHex(data), toHex(before));
    t.is(a.stored.constructor, Uint8Array);
    t.is(a.stored.buffer.byteLength, a.stored.length, 'stored owns its buffer (transferable)');
  }
});

test('different secrets give different keys and ids for the same plaintext', (t) => {
  const data = textData(100 * KiB);
  const other = new Uint8Array(secret);
  other[31]! ^= 1;
  const a = encodeBlock(data, secret);
  const b = encodeBlock(data, other);
  t.not(toHex(a.key), toHex(b.key));
  t.not(a.id, b.id);
  t.is(a.stored.length, b.stored.length);
});

test('key is keyed BLAKE3(secret, plaintext); payload is AES-256-GCM with a zero nonce', (t) => {
  const data = textData(50 * KiB);
  const e = encodeBlock(data, secret);
  t.is(toHex(e.key), toHex(refBlake3(data, { key: secret })));
  // Decrypt and decompress with independent implementations.
  const c = gcm(e.key, new Uint8Array(12)).decrypt(e.stored.subarray(5));
  t.true(e.compressed);
  t.true(Buffer.from(zstd.decompress(c)).equals(Buffer.from(data)));
  t.is(new DataView(e.stored.buffer, e.stored.byteOffset).getUint32(1), crc32(e.stored.subarray(5)));
});

test('status bits follow compression and encryption', (t) => {
  const text = textData(64 * KiB);
  const rnd = randomData(64 * KiB);
  const cases = [
    { data: text, o: {}, status: 0xc0 },
    { data: rnd, o: {}, status: 0x40 },
    { data: text, o: { compress: false }, status: 0x40 },
    { data: text, o: { encrypt: false }, status: 0x80 },
    { data: rnd, o: { encrypt: false }, status: 0x00 },
    { data: text, o: { compress: false, encrypt: false }, status: 0x00 },
  ];
  for (const { data, o, status } of cases) {
    const e = encodeBlock(data, secret, o);
    t.is(e.stored[0], status, JSON.stringify(o));
    t.is(e.compressed, (status & 0x80) !== 0);
    if (status === 0) t.true(Buffer.from(e.stored.subarray(5)).equals(Buffer.from(data)), 'stored payload is the plaintext');
    if (status === 0x80) t.true(Buffer.from(zstd.decompress(e.stored.subarray(5))).equals(Buffer.from(data)));
    t.true(Buffer.from(decodeBlock(e.stored, refOf(e))).equals(Buffer.from(data)));
  }
});

test('an unencrypted block decodes without using the key', (t) => {
  const data = textData(10 * KiB);
  const e = encodeBlock(data, secret, { encrypt: false });
  const out = decodeBlock(e.stored, { id: e.id, key: new Uint8Array(0), plainSize: data.length });
  t.true(Buffer.from(out).equals(Buffer.from(data)));
});

test('a bit flipped in each region is detected, named, and nothing is returned', (t) => {
  const e = encodeBlock(textData(40 * KiB), secret);
  const len = e.stored.length;
  const regions: Array<[string, number, RegExp]> = [
    ['status bit 7 (compressed)', 7, /BLAKE3 id check failed/],
    ['status bit 6 (encrypted)', 6, /BLAKE3 id check failed/],
    ['status reserved bit 0', 0, /header check failed \(reserved status bits set: 0xc1\)/],
    ['status reserved bit 5', 5, /header check failed/],
    ['crc', 8 + 3, /crc32 check failed/],
    ['ciphertext start', 5 * 8, /crc32 check failed/],
    ['ciphertext middle', Math.floor(len / 2) * 8 + 4, /crc32 check failed/],
    ['tag', (len - 16) * 8, /crc32 check failed/],
    ['last bit', len * 8 - 1, /crc32 check failed/],
  ];
  for (const [what, bit, check] of regions) {
    assertCorrupt(t, () => decodeBlock(flipBit(e.stored, bit), refOf(e)), e.id, check, what);
  }
});

test('a forged block with valid crc32 and id still fails its AEAD tag', (t) => {
  const e = encodeBlock(textData(40 * KiB), secret);
  const len = e.stored.length;
  for (const [what, bit] of [['ciphertext', 5 * 8 + 1], ['tag', (len - 1) * 8]] as const) {
    const forged = reseal(flipBit(e.stored, bit));
    assertCorrupt(t, () => decodeBlock(forged.stored, { ...refOf(e), id: forged.id }), forged.id, /AEAD tag check failed/, what);
  }
  // Claiming "not encrypted" to skip the tag: the plaintext check (zstd or size) rejects it.
  const unflagged = new Uint8Array(e.stored);
  unflagged[0] = 0x00;
  const u = reseal(unflagged);
  assertCorrupt(t, () => decodeBlock(u.stored, { ...refOf(e), id: u.id }), u.id, /plain size check failed/);
});

test('truncated blocks are detected', (t) => {
  const e = encodeBlock(randomData(5000), secret);
  for (const n of [0, 1, 4]) {
    assertCorrupt(t, () => decodeBlock(e.stored.subarray(0, n), refOf(e)), e.id, /header check failed \(\d+ bytes, shorter than the 5-byte header\)/, `${n} bytes`);
  }
  for (const n of [5, 6, 20, e.stored.length - 1]) {
    assertCorrupt(t, () => decodeBlock(e.stored.subarray(0, n), refOf(e)), e.id, /crc32 check failed/, `${n} bytes`);
  }
  // Truncated and resealed: the tag (or the tag length) gives it away.
  for (const n of [5, 20, 21, e.stored.length - 1]) {
    const r = reseal(e.stored.subarray(0, n));
    assertCorrupt(t, () => decodeBlock(r.stored, { ...refOf(e), id: r.id }), r.id, /AEAD tag check failed/, `resealed ${n}`);
  }
});

test('wrong key, wrong id and wrong plainSize are each named', (t) => {
  for (const data of [textData(30 * KiB), randomData(30 * KiB)]) {
    const e = encodeBlock(data, secret);
    const wrongKey = new Uint8Array(e.key);
    wrongKey[0]! ^= 0x80;
    assertCorrupt(t, () => decodeBlock(e.stored, { ...refOf(e), key: wrongKey }), e.id, /AEAD tag check failed \(wrong key or altered ciphertext\)/);
    const otherId = encodeBlock(randomData(10), secret).id;
    assertCorrupt(t, () => decodeBlock(e.stored, { ...refOf(e), id: otherId }), otherId, /BLAKE3 id check failed/);
    for (const plainSize of [0, data.length - 1, data.length + 1]) {
      assertCorrupt(t, () => decodeBlock(e.stored, { ...refOf(e), plainSize }), e.id, new RegExp(`plain size check failed \\(expected ${plainSize} bytes`));
    }
  }
});

test('a malformed ref is INVALID (a caller bug), not CORRUPT', (t) => {
  const e = encodeBlock(randomData(100), secret);
  for (const ref of [
    { ...refOf(e), id: e.id.toUpperCase() },
    { ...refOf(e), id: e.id.slice(1) },
    { ...refOf(e), key: new Uint8Array(16) },
    { ...refOf(e), plainSize: -1 },
    { ...refOf(e), plainSize: 1.5 },
    { ...refOf(e), plainSize: MAX_BLOCK_SIZE + 1 },
  ]) {
    t.true(isFragfsError(t.throws(() => decodeBlock(e.stored, ref)), 'INVALID'), JSON.stringify({ ...ref, key: ref.key.length }));
  }
});

test('compressed payloads that are not one sane zstd frame are rejected', (t) => {
  // Unencrypted blocks carry no tag, so a hostile store could serve any payload with a valid crc and id.
  const make = (status: number, payload: Uint8Array) => {
    const s = new Uint8Array(5 + payload.length);
    s[0] = status;
    s.set(payload, 5);
    return reseal(s);
  };
  const garbage = make(0x80, randomData(1000));
  assertCorrupt(t, () => decodeBlock(garbage.stored, { id: garbage.id, key: secret }), garbage.id, /zstd decompress failed/);

  const bomb = make(0x80, zstd.compress(new Uint8Array(MAX_BLOCK_SIZE + 1)));
  assertCorrupt(t, () => decodeBlock(bomb.stored, { id: bomb.id, key: secret }), bomb.id, /zstd decompress failed \(frame holds 4194305 bytes/);
  assertCorrupt(t, () => decodeBlock(bomb.stored, { id: bomb.id, key: secret, plainSize: 100 }), bomb.id, /plain size check failed/);

  const frame = zstd.compress(textData(10 * KiB));
  const trailing = new Uint8Array(frame.length + 3);
  trailing.set(frame);
  const t1 = make(0x80, trailing);
  assertCorrupt(t, () => decodeBlock(t1.stored, { id: t1.id, key: secret }), t1.id, /zstd decompress failed/);

  const ok = make(0x80, frame);
  t.true(Buffer.from(decodeBlock(ok.stored, { id: ok.id, key: secret })).equals(Buffer.from(textData(10 * KiB))));
});

test('property: round trip for any plaintext and options', (t) => {
  fc.assert(
    fc.property(
      fc.oneof(fc.uint8Array({ maxLength: 20000 }), fc.string({ maxLength: 20000 }).map((s) => new TextEncoder().encode(s))),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.boolean(),
      fc.boolean(),
      (data, sec, compress, encrypt) => {
        const e = encodeBlock(data, sec, { compress, encrypt });
        const d = decodeBlock(e.stored, refOf(e));
        return Buffer.from(d).equals(Buffer.from(data)) && e.id === toHex(refBlake3(e.stored));
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: any single bit flip is rejected as CORRUPT', (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      fc.boolean(),
      fc.boolean(),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (data, compress, encrypt, where) => {
        const e = encodeBlock(data, secret, { compress, encrypt });
        const bit = Math.floor(where * e.stored.length * 8);
        try {
          decodeBlock(flipBit(e.stored, bit), refOf(e));
        } catch (err) {
          return isFragfsError(err, 'CORRUPT') && (err as FragfsError).fragmentId === e.id;
        }
        return false;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});
