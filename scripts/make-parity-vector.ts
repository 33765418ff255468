// Writes fixtures/vectors/parity/parity-v1.json: a stripe of three members (a data fragment, a
// pack and an index object, of different sizes) with two parity objects, so that docs/FORMAT.md's
// parity layout and the Reed-Solomon code can be checked by any implementation.
// Run: node dist/scripts/make-parity-vector.js

import { writeFileSync } from 'node:fs';
import { blake3, toHex } from '../src/codec/blake3.js';
import { encodeRecord, type StripeMember } from '../src/parity/parity-format.js';
import { shardSizeFor } from '../src/parity/rs-codec.js';
import { rebuildStripe } from '../src/parity/stripe-codec.js';

const bytes = [Buffer.from('a data fragment of the stripe'), Buffer.from('a pack, longer than the others in this stripe: its shard size sets the stripe\'s'), Buffer.from('an index')];
const ids = [toHex(blake3(bytes[0]!)), toHex(blake3(bytes[1]!)), toHex(blake3(bytes[1]!))];
const kinds = ['data', 'pack', 'index'] as const;
const members: StripeMember[] = bytes.map((b, i) => ({ kind: kinds[i]!, id: ids[i]!, hash: toHex(blake3(b)), size: b.length }));
const record = { members, m: 2, shardSize: shardSizeFor(Math.max(...bytes.map((b) => b.length))) };
const recordBytes = encodeRecord(record);
const built = await rebuildStripe(record, recordBytes, bytes, []);
const vector = {
  description: 'fragfs parity format 1 (docs/FORMAT.md, "Parity"): a stripe of a data fragment, a pack and its index, with 2 parity objects',
  m: record.m,
  shardSize: record.shardSize,
  members: members.map((mb, i) => ({ ...mb, bytes: bytes[i]!.toString('hex') })),
  record: recordBytes.toString('hex'),
  stripeId: toHex(blake3(recordBytes)),
  parity: built.parity.map((p) => ({ id: toHex(blake3(p)), bytes: p.toString('hex') })),
};
writeFileSync(new URL('../../fixtures/vectors/parity/parity-v1.json', import.meta.url), `${JSON.stringify(vector, null, 2)}\n`);
