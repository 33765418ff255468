// Golden vectors: the exact bytes of metadata fragments (fixtures/vectors/solmet/meta-*.json). A
// failure here means the on-disk format changed: bump META_VERSION, update docs/FORMAT.md, and
// regenerate with dist/test/fragment/write-solmet-vectors.js only if that change is deliberate.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { decodeMeta, encodeMeta, type MetaKeys } from '../../src/fragment/meta-codec.js';
import { metaToWire } from '../../src/fragment/meta-schema.js';
import { packPlain, unpackSolmet } from '../../src/fragment/solmet.js';
import { metaFromVector, type MetaVector } from './vector-json.js';

const dir = new URL('../../../fixtures/vectors/solmet/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.startsWith('meta-') && f.endsWith('.json'));

test('there are vectors for every object kind', (t) => {
  const kinds = files.map((f) => (JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as MetaVector).object as { kind: string });
  t.deepEqual([...new Set(kinds.map((o) => o.kind))].sort(), ['dir', 'manifest', 'ref', 'snapshot']);
});

for (const f of files) {
  const v = JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as MetaVector;
  const keys: MetaKeys = { metaKey: Buffer.from(v.metaKey, 'hex'), metaNonceKey: Buffer.from(v.metaNonceKey, 'hex') };

  test(`${f}: encoding gives exactly the stored plaintext, frame and id`, (t) => {
    const obj = metaFromVector(v);
    t.is(Buffer.from(packPlain(metaToWire(obj))).toString('hex'), v.plaintext);
    const { id, bytes } = encodeMeta(obj, keys);
    t.is(Buffer.from(bytes).toString('hex'), v.frame);
    t.is(id, v.id);
    t.is(unpackSolmet(bytes).compression, v.compression);
  });

  test(`${f}: the stored frame decodes to the object`, (t) => {
    t.deepEqual(decodeMeta(new Uint8Array(Buffer.from(v.frame, 'hex')), v.id, keys), metaFromVector(v));
  });
}
