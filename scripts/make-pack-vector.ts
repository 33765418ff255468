// Writes fixtures/vectors/pack/pack-v1.json: a pack of two data fragments with a fixed master key
// and nonce, so that docs/FORMAT.md's pack layout can be checked by any implementation.
// Run: node dist/scripts/make-pack-vector.js

import { writeFileSync } from 'node:fs';
import { blake3, toHex } from '../src/codec/blake3.js';
import { buildPack, packIndexKeyOf } from '../src/pack/pack-format.js';

const masterKey = Buffer.alloc(32, 0x11);
const nonce = Buffer.alloc(12, 0x22);
const fragments = [Buffer.from('first fragment'), Buffer.from('second, longer fragment')].map((bytes) => ({ id: toHex(blake3(bytes)), bytes }));
const pack = buildPack(packIndexKeyOf(masterKey), 'data', fragments, nonce);
const vector = {
  description: 'fragfs pack format 1 (docs/FORMAT.md, "Packs"): two data fragments, fixed master key and nonce',
  masterKey: masterKey.toString('hex'),
  packIndexKey: toHex(packIndexKeyOf(masterKey)),
  nonce: nonce.toString('hex'),
  kind: 'data',
  fragments: fragments.map((f) => ({ id: f.id, bytes: f.bytes.toString('hex') })),
  pack: pack.toString('hex'),
  packId: toHex(blake3(pack)),
};
writeFileSync(new URL('../../fixtures/vectors/pack/pack-v1.json', import.meta.url), `${JSON.stringify(vector, null, 2)}\n`);
