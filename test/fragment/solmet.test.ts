// SOLMET frame: round trip, exact bytes, and rejection of every malformed frame as CORRUPT.

import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { Packr } from 'msgpackr';
import { isFragfsError } from '../../src/errors.js';
import {
  META_COMPRESSION_NONE,
  META_COMPRESSION_ZSTD,
  META_ENCRYPTION_AES256GCM_SIV,
  META_ENCRYPTION_NONE,
  SOLMET_MAGIC,
  packPlain,
  packSolmet,
  unpackSolmet,
} from '../../src/fragment/solmet.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const FID = 'ab'.repeat(32);

test('constants are the seed 003 values', (t) => {
  t.is(SOLMET_MAGIC, 'SOLMET');
  t.is(META_ENCRYPTION_NONE, 0);
  t.is(META_ENCRYPTION_AES256GCM_SIV, 1);
  t.is(META_COMPRESSION_NONE, 0);
  t.is(META_COMPRESSION_ZSTD, 1);
});

test('golden frame: no encryption, no compression, "hello fragfs"', (t) => {
  const v = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/solmet/frame-plain.json', import.meta.url), 'utf8'));
  const frame = packSolmet({ encryption: v.encryption, compression: v.compression, body: unhex(v.body) });
  t.is(hex(frame), v.frame);
  // Spelled out: fixarray(4), fixstr(6) "SOLMET", 0x00, 0x00, bin8(12) body.
  t.is(v.frame, '94' + 'a6' + hex(new TextEncoder().encode('SOLMET')) + '00' + '00' + 'c40c' + v.body);
  const back = unpackSolmet(frame);
  t.is(back.encryption, 0);
  t.is(back.compression, 0);
  t.is(hex(back.body), v.body);
});

test('round trip of any frame', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(0, 1), fc.constantFrom(0, 1), fc.uint8Array({ maxLength: 600 }), (encryption, compression, body) => {
      const frame = packSolmet({ encryption, compression, body });
      const back = unpackSolmet(frame, FID);
      t.is(back.encryption, encryption);
      t.is(back.compression, compression);
      t.deepEqual(back.body, body);
    }),
  );
  t.pass();
});

test('the body is msgpack bin8, bin16 or bin32 by length, also for Buffers and offset views', (t) => {
  for (const [n, marker] of [[0, 0xc4], [255, 0xc4], [256, 0xc5], [65535, 0xc5], [65536, 0xc6]] as const) {
    const frame = packSolmet({ encryption: 1, compression: 0, body: new Uint8Array(n).fill(7) });
    t.is(frame[10], marker, `length ${n}`);
    t.is(unpackSolmet(frame).body.length, n);
  }
  const backing = new Uint8Array([9, 9, 1, 2, 3]);
  t.is(hex(packSolmet({ encryption: 0, compression: 0, body: backing.subarray(2) })).slice(20), 'c403010203');
  t.is(hex(packSolmet({ encryption: 0, compression: 0, body: Buffer.from([1, 2, 3]) })).slice(20), 'c403010203');
});

test('packSolmet rejects unknown type bytes', (t) => {
  t.throws(() => packSolmet({ encryption: 3, compression: 0, body: new Uint8Array() }), { code: 'INVALID' } as never);
  t.throws(() => packSolmet({ encryption: 0, compression: 7, body: new Uint8Array() }), { code: 'INVALID' } as never);
});

const extPackr = new Packr({ useRecords: false, moreTypes: true });

const MALFORMED: [string, Uint8Array][] = [
  ['empty', new Uint8Array()],
  ['not msgpack', new TextEncoder().encode('definitely not a frame')],
  ['array of 3', packPlain(['SOLMET', 0, 0])],
  ['array of 5', packPlain(['SOLMET', 0, 0, new Uint8Array(3), 0])],
  ['a map', packPlain(new Map<string, unknown>([['SOLMET', 0], ['a', 0], ['b', 0], ['c', new Uint8Array(3)]]))],
  ['wrong magic', packPlain(['SOLFIL', 0, 0, new Uint8Array(3)])],
  ['lowercase magic', packPlain(['solmet', 0, 0, new Uint8Array(3)])],
  ['magic as bin', packPlain([new TextEncoder().encode('SOLMET'), 0, 0, new Uint8Array(3)])],
  ['unknown encryption', packPlain(['SOLMET', 3, 0, new Uint8Array(3)])],
  ['unknown compression', packPlain(['SOLMET', 0, 2, new Uint8Array(3)])],
  ['negative type', packPlain(['SOLMET', -1, 0, new Uint8Array(3)])],
  ['type as string', packPlain(['SOLMET', '0', 0, new Uint8Array(3)])],
  ['body as str', packPlain(['SOLMET', 0, 0, 'abc'])],
  ['body as array', packPlain(['SOLMET', 0, 0, [1, 2, 3]])],
  ['body as nil', packPlain(['SOLMET', 0, 0, null])],
  // msgpackr's typed-array extension (0x74) of a Uint8Array: decodes to bytes but is not bin.
  ['body as typed-array extension', unhex('94a6534f4c4d45540000c7047401010203')],
  ['body as typed-array extension (Uint16Array)', new Uint8Array(extPackr.pack(['SOLMET', 0, 0, new Uint16Array([1, 2, 3])]))],
  ['body as ext 5', unhex('94a6534f4c4d45540000c70305010203')],
  ['trailing byte', Uint8Array.from([...packPlain(['SOLMET', 0, 0, new Uint8Array(3)]), 0])],
  ['truncated', packPlain(['SOLMET', 0, 0, new Uint8Array(30)]).subarray(0, 20)],
];

for (const [what, bytes] of MALFORMED) {
  test(`malformed frame is CORRUPT naming the fragment: ${what}`, (t) => {
    const e = t.throws(() => unpackSolmet(bytes, FID));
    t.true(isFragfsError(e, 'CORRUPT'), String(e));
    t.is((e as { fragmentId?: string }).fragmentId, FID);
    t.regex(e!.message, new RegExp(FID));
  });
}

test('every prefix of a valid frame is CORRUPT', (t) => {
  const frame = packSolmet({ encryption: 1, compression: 1, body: new Uint8Array(300).fill(1) });
  for (let n = 0; n < frame.length; n++) {
    const e = t.throws(() => unpackSolmet(frame.subarray(0, n), FID));
    t.true(isFragfsError(e, 'CORRUPT'), `prefix ${n}: ${String(e)}`);
  }
});

test('a frame from another msgpack writer (uint8 type bytes, bin16 for a short body) is accepted', (t) => {
  // 94 a6 "SOLMET" cc01 cc00 c5 0003 010203
  const frame = unhex('94a6534f4c4d4554cc01cc00c50003010203');
  const back = unpackSolmet(frame, FID);
  t.is(back.encryption, 1);
  t.is(back.compression, 0);
  t.is(hex(back.body), '010203');
});
