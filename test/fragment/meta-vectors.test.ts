// Golden vectors: the exact bytes of metadata fragments (fixtures/vectors/solmet/meta-*.json, the
// version fragfs writes; v2/ the version before dir and manifest objects had their own keys). A failure here means the on-disk format changed: bump META_VERSION, update
// docs/FORMAT.md, and regenerate with dist/test/fragment/write-solmet-vectors.js only if that change
// is deliberate. fixtures/vectors/solmet/v1/ holds version 1 fragments, which must still decode.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { decodeMeta, encodeMeta, fragmentKeyOf, type MetaKeys } from '../../src/fragment/meta-codec.js';
import { metaToWire } from '../../src/fragment/meta-schema.js';
import { packPlain, unpackSolmet } from '../../src/fragment/solmet.js';
import { metaFromVector, toVectorJson, type MetaVector } from './vector-json.js';

const dir = new URL('../../../fixtures/vectors/solmet/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.startsWith('meta-') && f.endsWith('.json'));

test('there are vectors for every object kind', (t) => {
  const kinds = files.map((f) => (JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as MetaVector).object as { kind: string });
  t.deepEqual([...new Set(kinds.map((o) => o.kind))].sort(), ['dir', 'manifest', 'ref', 'snapshot']);
});

/** The vectors of `folder` (the current version, or v2/, whose objects fragfs still writes the same when it re-encodes them). */
function vectorTests(folder: URL, label: string): void {
  for (const f of readdirSync(folder).filter((x) => x.startsWith('meta-') && x.endsWith('.json'))) {
    const v = JSON.parse(readFileSync(new URL(f, folder), 'utf8')) as MetaVector;
    const keys: MetaKeys = {
      metaKey: Buffer.from(v.metaKey, 'hex'),
      metaNonceKey: Buffer.from(v.metaNonceKey, 'hex'),
      ...(v.treeKeySecret === undefined ? {} : { treeKeySecret: Buffer.from(v.treeKeySecret, 'hex') }),
    };
    const frame = new Uint8Array(Buffer.from(v.frame, 'hex'));

    test(`${label}${f}: encoding gives exactly the stored plaintext, frame and id`, (t) => {
      const obj = metaFromVector(v);
      t.is(Buffer.from(packPlain(metaToWire(obj))).toString('hex'), v.plaintext);
      const { id, bytes, key } = encodeMeta(obj, keys);
      t.is(Buffer.from(bytes).toString('hex'), v.frame);
      t.is(id, v.id);
      t.is(unpackSolmet(bytes).compression, v.compression);
      t.is(key === undefined ? undefined : Buffer.from(key).toString('hex'), v.ownKey);
    });

    test(`${label}${f}: the stored frame decodes to the object`, (t) => {
      t.deepEqual(toVectorJson(decodeMeta(frame, v.id, keys)), toVectorJson(metaFromVector(v)));
    });

    if (v.ownKey !== undefined) {
      test(`${label}${f}: its own key alone opens it (what a share holds), and the space's keys find that key`, (t) => {
        const own = new Uint8Array(Buffer.from(v.ownKey!, 'hex'));
        t.deepEqual(toVectorJson(decodeMeta(frame, v.id, { fragmentKey: own })), toVectorJson(metaFromVector(v)));
        t.is(Buffer.from(fragmentKeyOf(frame, v.id, keys)!).toString('hex'), v.ownKey!);
        const wrong = new Uint8Array(own);
        wrong[0]! ^= 1;
        t.throws(() => decodeMeta(frame, v.id, { fragmentKey: wrong }), { message: /AEAD tag does not verify/ });
      });
    } else if (metaFromVector(v).kind !== 'dir' && metaFromVector(v).kind !== 'manifest') {
      test(`${label}${f}: a fragment sealed under the space's key does not open without it`, (t) => {
        t.throws(() => decodeMeta(frame, v.id, { fragmentKey: new Uint8Array(32) }), { message: /a share does not hold/ });
      });
    }
  }
}

vectorTests(dir, '');
vectorTests(new URL('v2/', dir), 'v2/');

/** A version 1 object as fragfs reads it today: every name, target, xattr name and source as bytes. */
function fromV1(o: unknown): unknown {
  const bytes = (s: unknown) => ({ $bytes: Buffer.from(String(s), 'utf8').toString('hex') });
  const entry = (e: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...e, name: bytes(e.name) };
    if (e.target !== undefined) out.target = bytes(e.target);
    if (e.xattrs !== undefined) {
      const names = Object.keys(e.xattrs as object).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      out.xattrs = names.map((n) => ({ name: bytes(n), value: (e.xattrs as Record<string, unknown>)[n] }));
    }
    return out;
  };
  const obj = o as Record<string, unknown>;
  if (obj.kind === 'dir') return { ...obj, entries: (obj.entries as Record<string, unknown>[]).map(entry) };
  if (obj.kind === 'snapshot') return { ...obj, source: (obj.source as string[]).map(bytes), root: entry(obj.root as Record<string, unknown>) };
  return obj;
}

const v1dir = new URL('v1/', dir);
for (const f of readdirSync(v1dir).filter((x) => x.startsWith('meta-') && x.endsWith('.json'))) {
  const v = JSON.parse(readFileSync(new URL(f, v1dir), 'utf8')) as MetaVector;
  const keys: MetaKeys = { metaKey: Buffer.from(v.metaKey, 'hex'), metaNonceKey: Buffer.from(v.metaNonceKey, 'hex') };
  test(`v1/${f}: a version 1 frame still decodes, names as their UTF-8 bytes`, (t) => {
    const got = decodeMeta(new Uint8Array(Buffer.from(v.frame, 'hex')), v.id, keys);
    t.is(got.v, 1);
    t.deepEqual(toVectorJson(got), fromV1(v.object));
  });
}
