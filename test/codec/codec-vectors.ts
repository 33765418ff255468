// Golden vectors of the data fragment format: how their plaintexts are made, and (run directly with
// --write) how fixtures/vectors/codec/vectors.json was generated. The test that checks them is
// codec-vectors.test.ts; regenerate only for a deliberate, versioned format change.
//
//   node dist/test/codec/codec-vectors.js --write

import { blake3 as refBlake3 } from '@noble/hashes/blake3.js';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../src/codec/blake3.js';
import { encodeBlock, type EncodeOptions } from '../../src/codec/block-codec.js';

export const VECTORS_PATH = fileURLToPath(new URL('../../../fixtures/vectors/codec/vectors.json', import.meta.url));

/** Stored bytes are written out in full up to this size; beyond it the id (BLAKE3 of them) pins them. */
const STORED_HEX_MAX = 4096;

export type PlaintextSpec =
  | { hex: string }
  | { generator: 'mod251'; size: number }
  | { generator: 'blake3-xof'; seed: string; size: number };

export interface CodecVector {
  name: string;
  secretHex: string;
  options: Required<Pick<EncodeOptions, 'compress' | 'encrypt'>>;
  plaintext: PlaintextSpec;
  plainSize: number;
  keyHex: string;
  id: string;
  compressed: boolean;
  status: number;
  storedSize: number;
  storedHex?: string;
}

export interface CodecVectorFile {
  description: string;
  generators: Record<string, string>;
  zstdVersion: string;
  vectors: CodecVector[];
}

export function plaintextOf(spec: PlaintextSpec): Uint8Array {
  if ('hex' in spec) return fromHex(spec.hex);
  if (spec.generator === 'mod251') return Uint8Array.from({ length: spec.size }, (_, i) => i % 251);
  return refBlake3(new TextEncoder().encode(spec.seed), { dkLen: spec.size });
}

const SECRET_A = toHex(Uint8Array.from({ length: 32 }, (_, i) => i));
const SECRET_B = toHex(refBlake3(new TextEncoder().encode('fragfs vector secret B')));
const hexOf = (s: string) => toHex(new TextEncoder().encode(s));
const WORDS = hexOf('fragfs '.repeat(16));

const INPUTS: Array<{ name: string; secretHex: string; options: Required<Pick<EncodeOptions, 'compress' | 'encrypt'>>; plaintext: PlaintextSpec }> = [
  { name: 'empty block', secretHex: SECRET_A, options: { compress: true, encrypt: true }, plaintext: { hex: '' } },
  { name: 'short text, compression does not pay', secretHex: SECRET_A, options: { compress: true, encrypt: true }, plaintext: { hex: hexOf('hello, fragfs\n') } },
  { name: 'repeated words, compressed and encrypted (the worked example)', secretHex: SECRET_A, options: { compress: true, encrypt: true }, plaintext: { hex: WORDS } },
  { name: 'repeated words, compression off', secretHex: SECRET_A, options: { compress: false, encrypt: true }, plaintext: { hex: WORDS } },
  { name: 'repeated words, compressed, not encrypted', secretHex: SECRET_A, options: { compress: true, encrypt: false }, plaintext: { hex: WORDS } },
  { name: 'short text, neither compressed nor encrypted', secretHex: SECRET_A, options: { compress: false, encrypt: false }, plaintext: { hex: hexOf('hello, fragfs\n') } },
  { name: 'repeated words under another secret', secretHex: SECRET_B, options: { compress: true, encrypt: true }, plaintext: { hex: WORDS } },
  { name: '64 KiB counter pattern', secretHex: SECRET_A, options: { compress: true, encrypt: true }, plaintext: { generator: 'mod251', size: 65536 } },
  { name: '1 MiB incompressible', secretHex: SECRET_A, options: { compress: true, encrypt: true }, plaintext: { generator: 'blake3-xof', seed: 'fragfs 1 MiB vector', size: 1048576 } },
  { name: '4 MiB counter pattern (largest block)', secretHex: SECRET_A, options: { compress: true, encrypt: true }, plaintext: { generator: 'mod251', size: 4194304 } },
];

export function makeVectors(): CodecVectorFile {
  const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');
  return {
    description:
      'fragfs data fragment test vectors (docs/FORMAT.md, data fragments). For each: encodeBlock(plaintext, secret, options) ' +
      'MUST give keyHex, id and (when present) storedHex; decodeBlock(stored, {id, key, plainSize}) MUST give the plaintext. ' +
      'id = BLAKE3(stored), so it pins the stored bytes when storedHex is omitted. Compressed vectors depend on zstd ' +
      'producing the same level-1 output; a zstd upgrade that changes them also changes fragment ids (dedup across versions).',
    generators: {
      hex: 'the plaintext bytes, in hex',
      mod251: 'size bytes, byte i = i mod 251 (the BLAKE3 test-vector input pattern)',
      'blake3-xof': 'the first size bytes of the BLAKE3 extendable output of the UTF-8 bytes of seed',
    },
    zstdVersion: zstd.versionString(),
    vectors: INPUTS.map((v) => {
      const plain = plaintextOf(v.plaintext);
      const e = encodeBlock(plain, fromHex(v.secretHex), v.options);
      return {
        ...v,
        plainSize: plain.length,
        keyHex: toHex(e.key),
        id: e.id,
        compressed: e.compressed,
        status: e.stored[0]!,
        storedSize: e.stored.length,
        ...(e.stored.length <= STORED_HEX_MAX ? { storedHex: toHex(e.stored) } : {}),
      };
    }),
  };
}

if (process.argv.includes('--write') && process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(VECTORS_PATH, `${JSON.stringify(makeVectors(), null, 2)}\n`);
  process.stdout.write(`wrote ${VECTORS_PATH}\n`);
}
