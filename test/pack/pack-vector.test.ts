// The pack format's vector (fixtures/vectors/pack/pack-v1.json, docs/FORMAT.md "Packs"): this
// fragfs builds exactly those bytes from the same inputs and reads every fragment back from them.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { buildPack, packIndexKeyOf, readPackIndex } from '../../src/pack/pack-format.js';

const v = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/pack/pack-v1.json', import.meta.url), 'utf8')) as {
  masterKey: string;
  packIndexKey: string;
  nonce: string;
  kind: 'data';
  fragments: { id: string; bytes: string }[];
  pack: string;
  packId: string;
};

test('pack v1 vector: key derivation, bytes, id and index', (t) => {
  const key = packIndexKeyOf(Buffer.from(v.masterKey, 'hex'));
  t.is(toHex(key), v.packIndexKey);
  const fragments = v.fragments.map((f) => ({ id: f.id, bytes: Buffer.from(f.bytes, 'hex') }));
  for (const f of fragments) t.is(toHex(blake3(f.bytes)), f.id);
  const pack = buildPack(key, v.kind, fragments, Buffer.from(v.nonce, 'hex'));
  t.is(pack.toString('hex'), v.pack);
  t.is(toHex(blake3(pack)), v.packId);
  const idx = readPackIndex(key, Buffer.from(v.pack, 'hex'), 'vector');
  t.is(idx.kind, 'data');
  t.deepEqual(
    idx.entries.map((e) => [e.id, Buffer.from(v.pack, 'hex').subarray(e.offset, e.offset + e.length).toString('hex')]),
    v.fragments.map((f) => [f.id, f.bytes]),
  );
});
