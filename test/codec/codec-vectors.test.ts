// Golden vectors (fixtures/vectors/codec/vectors.json): the encoder still produces them byte for
// byte, the decoder still reads them, and an independent decoder built from reference libraries
// agrees, so a format change cannot slip through.

import test from 'ava';
import { gcm } from '@noble/ciphers/aes.js';
import { blake3 as refBlake3 } from '@noble/hashes/blake3.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import { fromHex, toHex } from '../../src/codec/blake3.js';
import { decodeBlock, encodeBlock } from '../../src/codec/block-codec.js';
import { VECTORS_PATH, plaintextOf, type CodecVectorFile } from './codec-vectors.js';

const zstd = createRequire(import.meta.url)('zstd-napi') as typeof import('zstd-napi');
const file = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as CodecVectorFile;

test('the vector file covers every status combination and the size extremes', (t) => {
  t.true(file.vectors.length >= 8);
  t.deepEqual([...new Set(file.vectors.map((v) => v.status))].sort((a, b) => a - b), [0x00, 0x40, 0x80, 0xc0]);
  t.true(file.vectors.some((v) => v.plainSize === 0));
  t.true(file.vectors.some((v) => v.plainSize === 4 * 1024 * 1024));
});

for (const v of file.vectors) {
  test(`encoder reproduces: ${v.name}`, (t) => {
    const plain = plaintextOf(v.plaintext);
    t.is(plain.length, v.plainSize);
    const e = encodeBlock(plain, fromHex(v.secretHex), v.options);
    t.is(toHex(e.key), v.keyHex);
    t.is(e.id, v.id);
    t.is(e.compressed, v.compressed);
    t.is(e.stored[0], v.status);
    t.is(e.stored.length, v.storedSize);
    if (v.storedHex !== undefined) t.is(toHex(e.stored), v.storedHex);
  });

  if (v.storedHex === undefined) continue;

  test(`decoder reads: ${v.name}`, (t) => {
    const out = decodeBlock(fromHex(v.storedHex!), { id: v.id, key: fromHex(v.keyHex), plainSize: v.plainSize });
    t.is(toHex(out), toHex(plaintextOf(v.plaintext)));
  });

  test(`independent reference decoder agrees: ${v.name}`, (t) => {
    const stored = fromHex(v.storedHex!);
    const plain = plaintextOf(v.plaintext);
    const secret = fromHex(v.secretHex);
    t.is(toHex(refBlake3(stored)), v.id, 'id = BLAKE3(stored)');
    t.is(toHex(refBlake3(plain, { key: secret })), v.keyHex, 'key = keyed BLAKE3(secret, plaintext)');
    t.is(stored[0]! & 0x3f, 0, 'reserved status bits');
    const payload = stored.subarray(5);
    t.is(new DataView(stored.buffer, stored.byteOffset).getUint32(1, false), crc32(payload), 'crc32, big-endian');
    let c = payload;
    if (stored[0]! & 0x40) c = gcm(fromHex(v.keyHex), new Uint8Array(12)).decrypt(payload);
    const p = stored[0]! & 0x80 ? new Uint8Array(zstd.decompress(c)) : c;
    t.is(toHex(p), toHex(plain));
  });
}
