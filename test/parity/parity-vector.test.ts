// The parity format's vector (fixtures/vectors/parity/parity-v1.json, docs/FORMAT.md "Parity"):
// the record and both parity objects come out byte for byte from the members, each parity object's
// header reads back as the record, and any two lost shards (members or parity) come back from the
// other three. A change of layout or of the Reed-Solomon code fails here.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { decodeParityHeader, encodeRecord, type StripeMember } from '../../src/parity/parity-format.js';
import { rebuildStripe } from '../../src/parity/stripe-codec.js';

const v = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/parity/parity-v1.json', import.meta.url), 'utf8')) as {
  m: number;
  shardSize: number;
  members: (StripeMember & { bytes: string })[];
  record: string;
  stripeId: string;
  parity: { id: string; bytes: string }[];
};
const members: StripeMember[] = v.members.map(({ bytes: _b, ...mb }) => mb);
const bytes = v.members.map((mb) => Buffer.from(mb.bytes, 'hex'));
const record = { members, m: v.m, shardSize: v.shardSize };

test('the record and the parity objects are the vector, byte for byte', async (t) => {
  const recordBytes = encodeRecord(record);
  t.is(recordBytes.toString('hex'), v.record);
  t.is(toHex(blake3(recordBytes)), v.stripeId);
  const built = await rebuildStripe(record, recordBytes, bytes, []);
  t.deepEqual(
    built.parity.map((p) => p.toString('hex')),
    v.parity.map((p) => p.bytes),
  );
  t.deepEqual(
    built.parity.map((p) => toHex(blake3(p))),
    v.parity.map((p) => p.id),
  );
});

test('parity shard 0 is the XOR of the padded members (row 0 of the code is all ones)', (t) => {
  const xor = Buffer.alloc(v.shardSize);
  for (const b of bytes) for (let i = 0; i < b.length; i++) xor[i]! ^= b[i]!;
  const p0 = Buffer.from(v.parity[0]!.bytes, 'hex');
  t.true(p0.subarray(p0.length - v.shardSize).equals(xor));
});

test('each parity object carries the whole record, its index and the stripe id', (t) => {
  v.parity.forEach((p, index) => {
    const h = decodeParityHeader(Buffer.from(p.bytes, 'hex'), p.id);
    t.is(h.index, index);
    t.is(h.stripeId, v.stripeId);
    t.is(h.shardSize, v.shardSize);
    t.is(h.m, v.m);
    t.deepEqual(h.members, members);
    t.is(h.headerBytes, v.record.length / 2 + 4);
    t.is(Buffer.from(p.bytes, 'hex').length, h.headerBytes + v.shardSize);
  });
});

test('any two of the five shards lost come back from the other three', async (t) => {
  const recordBytes = encodeRecord(record);
  const shards = v.parity.map((p) => Buffer.from(p.bytes, 'hex').subarray(v.record.length / 2 + 4));
  for (let a = 0; a < 5; a++) {
    for (let b = a + 1; b < 5; b++) {
      const lost = new Set([a, b]);
      const got = await rebuildStripe(
        record,
        recordBytes,
        bytes.map((x, i) => (lost.has(i) ? undefined : x)),
        shards.map((x, j) => (lost.has(3 + j) ? undefined : x)),
      );
      t.deepEqual(got.members.map((x) => Buffer.from(x).toString('hex')), v.members.map((mb) => mb.bytes), `lost ${a}, ${b}`);
      t.deepEqual(got.parity.map((p) => p.toString('hex')), v.parity.map((p) => p.bytes), `lost ${a}, ${b}`);
    }
  }
});

test('a damaged header is CORRUPT, not a crash', (t) => {
  const p = Buffer.from(v.parity[0]!.bytes, 'hex');
  for (const [at, value] of [[0, 0x58], [4, 9], [5, 0], [6, 7], [7, 1], [8, 3], [12, 9]] as const) {
    const bad = Buffer.from(p);
    bad[at] = value;
    t.throws(() => decodeParityHeader(bad, 'x'), { message: /parity object x/ }, `byte ${at}`);
  }
  t.throws(() => decodeParityHeader(p.subarray(0, 20), 'x'), { message: /shorter than its record/ });
});
