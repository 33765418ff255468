// The live state's vector (fixtures/vectors/live/live-v2.json, docs/FORMAT.md section 4): LMDB keys and
// sealed values computed here from the spec's formulas alone (@noble/hashes BLAKE3, node:crypto AES),
// and by LiveCrypto through each of its BLAKE3 paths (the native binding until the WebAssembly
// hashers are ready, then those), byte for byte.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { createCipheriv } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';
import { blake3DeriveKey } from '../../src/codec/blake3.js';
import { LIVE_INDEX_KEY_CONTEXT, LIVE_NAME_KEY_CONTEXT, LIVE_NONCE_KEY_CONTEXT, LIVE_VALUE_KEY_CONTEXT, LiveCrypto, type Kind, type LiveKeys } from '../../src/vfs/live-crypto.js';
import { LIVE_VECTOR_CASES, vectorKey, type LiveVectorCase } from '../../src/vfs/live-vector-cases.js';

interface Vector {
  masterKey: string;
  keys: Record<keyof LiveKeys, string>;
  cases: (LiveVectorCase & { lmdbKey: string; sealed: string })[];
}
const v = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/live/live-v2.json', import.meta.url), 'utf8')) as Vector;
const hex = (s: string) => Buffer.from(s, 'hex');
const keys: LiveKeys = { index: hex(v.keys.index), name: hex(v.keys.name), value: hex(v.keys.value), nonce: hex(v.keys.nonce) };

function aesEcb(key: Uint8Array, blocks: Uint8Array): Buffer {
  const c = createCipheriv('aes-256-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(blocks), c.final()]);
}

/** index(kind, id, sub) of section 4.2. */
function specIndex(kind: Kind, id: number, sub: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = kind;
  b.writeUIntBE(id, 1, 6);
  b.writeUIntBE(sub, 7, 6);
  return aesEcb(keys.index, b);
}

function specKey(c: LiveVectorCase): Buffer {
  if (c.name !== undefined) {
    const input = Buffer.concat([Buffer.from([c.kind]), Buffer.alloc(6), hex(c.name)]);
    input.writeUIntBE(c.id, 1, 6);
    return Buffer.concat([specIndex(c.kind, c.id, 0), Buffer.from(blake3(input, { key: keys.name })).subarray(0, 16)]);
  }
  if (c.member !== undefined) return Buffer.concat([specIndex(c.kind, c.id, 0), specIndex(c.member.kind, c.id, c.member.sub)]);
  return specIndex(c.kind, c.id, c.sub ?? 0);
}

/** Section 4.3: tag || P XOR AES-CTR(value key, tag[0..12] || counter). */
function specSeal(k: Buffer, plain: Buffer): Buffer {
  const tag = Buffer.from(blake3(Buffer.concat([k, plain]), { key: keys.nonce })).subarray(0, 16);
  const blocks = Math.ceil(plain.length / 16);
  const counters = Buffer.alloc(blocks * 16);
  for (let i = 0; i < blocks; i++) {
    tag.copy(counters, i * 16, 0, 12);
    counters.writeUInt32BE(i, i * 16 + 12);
  }
  const ks = aesEcb(keys.value, counters);
  return Buffer.concat([tag, Buffer.from(plain.map((b, i) => b ^ ks[i]!))]);
}

test('the vector holds the spec: keys derived from the master key, every LMDB key and sealed value', (t) => {
  const master = hex(v.masterKey);
  t.is(Buffer.from(blake3DeriveKey(LIVE_INDEX_KEY_CONTEXT, master)).toString('hex'), v.keys.index);
  t.is(Buffer.from(blake3DeriveKey(LIVE_NAME_KEY_CONTEXT, master)).toString('hex'), v.keys.name);
  t.is(Buffer.from(blake3DeriveKey(LIVE_VALUE_KEY_CONTEXT, master)).toString('hex'), v.keys.value);
  t.is(Buffer.from(blake3DeriveKey(LIVE_NONCE_KEY_CONTEXT, master)).toString('hex'), v.keys.nonce);
  t.deepEqual(
    v.cases.map(({ lmdbKey, sealed, ...c }) => c),
    LIVE_VECTOR_CASES.map((c) => ({ ...c })),
    'the file holds the cases of src/vfs/live-vector-cases.ts',
  );
  for (const c of v.cases) {
    const k = specKey(c);
    t.is(k.toString('hex'), c.lmdbKey, `${c.what}: LMDB key`);
    t.is(specSeal(k, hex(c.plain)).toString('hex'), c.sealed, `${c.what}: sealed value`);
  }
});

test('LiveCrypto gives the vector through the native BLAKE3 and through WebAssembly, and opens what it sealed', async (t) => {
  const check = (c: LiveCrypto, path: string): void => {
    for (const x of v.cases) {
      const k = vectorKey(c, x);
      t.is(k.toString('hex'), x.lmdbKey, `${path}, ${x.what}: LMDB key`);
      t.is(c.seal(k, hex(x.plain)).toString('hex'), x.sealed, `${path}, ${x.what}: sealed value`);
      t.is(c.open(k, hex(x.sealed)).toString('hex'), x.plain, `${path}, ${x.what}: opened`);
    }
  };
  check(new LiveCrypto(keys), 'native');
  const fast = new LiveCrypto(keys);
  await fast.ready;
  t.truthy((fast as unknown as { tagWasm?: unknown }).tagWasm, 'the WebAssembly hasher was made');
  check(fast, 'WebAssembly');
  // A value moved to another record's key, or changed by one bit, does not open.
  const [a, b] = [v.cases[3]!, v.cases[4]!];
  t.throws(() => fast.open(hex(b.lmdbKey), hex(a.sealed)), { message: /damaged or belongs to another store/ });
  const flipped = hex(a.sealed);
  flipped[flipped.length - 1]! ^= 1;
  t.throws(() => fast.open(hex(a.lmdbKey), flipped), { message: /damaged or belongs to another store/ });
});

test('many values opened together, and many index keys made together, are the vector\'s; one damaged value fails the batch', async (t) => {
  const c = new LiveCrypto(keys);
  await c.ready;
  const opened = c.openMany(v.cases.map((x) => hex(x.lmdbKey)), v.cases.map((x) => hex(x.sealed)));
  t.deepEqual(opened.map((p) => p.toString('hex')), v.cases.map((x) => x.plain));
  const plain = v.cases.filter((x) => x.name === undefined && x.member === undefined && (x.sub ?? 0) === 0);
  const fresh = new LiveCrypto(keys);
  t.deepEqual(fresh.indexMany(plain[0]!.kind, [plain[0]!.id]).map((k) => k.toString('hex')), [plain[0]!.lmdbKey]);
  const ids = [1, 2, 5, 2 ** 40 + 5, 1];
  t.deepEqual(fresh.indexMany(1 as Kind, ids).map((k) => k.toString('hex')), ids.map((id) => specIndex(1 as Kind, id, 0).toString('hex')));
  const damaged = v.cases.map((x) => hex(x.sealed));
  damaged[4]![20]! ^= 1;
  t.throws(() => c.openMany(v.cases.map((x) => hex(x.lmdbKey)), damaged), { message: /damaged or belongs to another store/ });
});
