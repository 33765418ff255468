// Opening a pack's index: every entry's offset, length and lookup keys come from its bytes (hex ids
// only when asked for), a table fed them finds what one fed hex ids finds, ids that share their first
// 48 bits are told apart, and an id twice is CORRUPT wherever it repeats.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { isFragfsError } from '../../src/errors.js';
import { buildPack, readPackIndex } from '../../src/pack/pack-format.js';
import { PackTable } from '../../src/pack/pack-table.js';

const KEY = new Uint8Array(randomBytes(32));

/** An id whose first 6 bytes are `prefix` (hex, 12 digits), the rest random. */
function idWith(prefix: string): string {
  return prefix + randomBytes(26).toString('hex');
}

function packOf(ids: string[]): Buffer {
  return buildPack(KEY, 'data', ids.map((id, i) => ({ id, bytes: Buffer.alloc(10 + i, i) })));
}

test('offsets, lengths and lookup keys (id bytes 0-5 and 6-11) from the bytes; a table fed them finds what one fed hex ids finds', (t) => {
  const ids = Array.from({ length: 500 }, () => randomBytes(32).toString('hex'));
  const idx = readPackIndex(KEY, packOf(ids), 'pack');
  t.is(idx.count, 500);
  ids.forEach((id, i) => {
    t.is(idx.keys[2 * i], parseInt(id.slice(0, 12), 16));
    t.is(idx.keys[2 * i + 1], parseInt(id.slice(12, 24), 16));
    t.is(idx.offsets[i], i === 0 ? 0 : idx.offsets[i - 1]! + idx.lengths[i - 1]!);
    t.is(idx.lengths[i], 10 + i);
  });
  const fed = new PackTable();
  fed.addIndex('a'.repeat(64), idx);
  const parsed = new PackTable();
  parsed.add('a'.repeat(64), idx.kind, idx.entries);
  t.deepEqual(
    idx.entries.map((e) => e.id),
    ids,
  );
  for (const id of ids) t.deepEqual(fed.lookup(id), parsed.lookup(id));
  t.is(fed.lookup(randomBytes(32).toString('hex')), undefined);
});

test('ids sharing their first 48 bits open; the same id twice is CORRUPT, after a look-alike too', (t) => {
  const a = idWith('0123456789ab');
  const b = idWith('0123456789ab');
  const c = randomBytes(32).toString('hex');
  const idx = readPackIndex(KEY, packOf([a, c, b]), 'pack');
  t.deepEqual(
    idx.entries.map((e) => e.id),
    [a, c, b],
  );
  for (const ids of [
    [a, c, a],
    [a, b, c, b],
    [c, a, b, c],
  ]) {
    const e = t.throws(() => readPackIndex(KEY, packOf(ids), 'pack'));
    t.true(isFragfsError(e) && e.code === 'CORRUPT' && /twice/.test(e.message), ids.join(','));
  }
});
