// The optional `tags` key of a ref (FORMAT.md 2.3.5): written after `name` in sorted order, read
// back as written, absent when there are none (a ref without tags keeps the bytes it had), and a
// tag that is not a non-empty string is refused on both sides.

import test from 'ava';
import { pack } from 'msgpackr';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { decodeMeta, encodeMeta, sealMetaBody, type MetaKeys } from '../../src/fragment/meta-codec.js';
import { metaToWire } from '../../src/fragment/meta-schema.js';
import { META_VERSION, type RefObject } from '../../src/fragment/tree-format.js';

const KEYS: MetaKeys = { metaKey: new Uint8Array(32).fill(3), metaNonceKey: new Uint8Array(32).fill(4) };
const SNAP = 'ab'.repeat(32);

test('a ref keeps its tags, after its name; a ref without tags has no tags key', (t) => {
  const ref: RefObject = { kind: 'ref', v: META_VERSION, snapshot: SNAP, name: 'monday', tags: ['daily', 'photos'], createdMs: 1767225600000, logicalBytes: 10 };
  t.deepEqual(Object.keys(metaToWire(ref)), ['kind', 'v', 'snapshot', 'name', 'tags', 'createdMs', 'logicalBytes']);
  const { id, bytes } = encodeMeta(ref, KEYS);
  t.deepEqual(decodeMeta(bytes, id, KEYS), ref);
  const { tags: _tags, ...untagged } = ref;
  t.false('tags' in metaToWire(untagged));
  t.false('tags' in decodeMeta(encodeMeta(untagged, KEYS).bytes, encodeMeta(untagged, KEYS).id, KEYS));
});

test('a tag that is empty or not a string is refused when written and when read', (t) => {
  const bad = { kind: 'ref', v: META_VERSION, snapshot: SNAP, tags: [''], createdMs: 1, logicalBytes: 0 } as RefObject;
  t.throws(() => encodeMeta(bad, KEYS), { message: /ref tags\[0\] is empty/ });
  // Written by hand, as another writer might: a number among the tags.
  const wire = { ...metaToWire({ kind: 'ref', v: META_VERSION, snapshot: SNAP, createdMs: 1, logicalBytes: 0 }), tags: [7] };
  const frame = sealedFrame(pack(wire));
  t.throws(() => decodeMeta(frame, toHex(blake3(frame)), KEYS), { message: /ref tags\[0\] is not a msgpack str/ });
});

function sealedFrame(plain: Uint8Array): Uint8Array {
  // ["SOLMET", encryption 1, compression 0, sealed body]
  return pack(['SOLMET', 1, 0, Buffer.from(sealMetaBody(plain, KEYS))]);
}
