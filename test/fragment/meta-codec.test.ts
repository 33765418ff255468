// Metadata codec: round trips of every object kind, determinism, tamper and wrong-key detection,
// no plaintext in the fragment, schema enforcement on both the write and the read side.

import test from 'ava';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { isFragfsError } from '../../src/errors.js';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { decodeMeta, encodeMeta, sealMetaBody, sealOwnKeyBody, type MetaKeys } from '../../src/fragment/meta-codec.js';
import { metaToWire } from '../../src/fragment/meta-schema.js';
import {
  META_COMPRESSION_NONE,
  META_COMPRESSION_ZSTD,
  META_ENCRYPTION_AES256GCM_OWN_KEY,
  META_ENCRYPTION_AES256GCM_SIV,
  META_ENCRYPTION_NONE,
  packPlain,
  packSolmet,
  unpackSolmet,
} from '../../src/fragment/solmet.js';
import { META_VERSION, type DirObject, type Entry, type MetaObject } from '../../src/fragment/tree-format.js';
import { dirObject, manifestObject, metaObject, refObject, snapshotObject } from './meta-arbitraries.js';

const keysOf = (seed: number): MetaKeys => ({
  metaKey: new Uint8Array(32).fill(seed),
  metaNonceKey: new Uint8Array(32).fill(seed + 1),
  treeKeySecret: new Uint8Array(32).fill(seed + 2),
});
const KEYS = keysOf(1);
const id64 = (b: number): string => b.toString(16).padStart(2, '0').repeat(32);

function file(name: string | Buffer, extra: Partial<Entry> = {}): Entry {
  return {
    name: typeof name === 'string' ? Buffer.from(name, 'utf8') : name,
    type: 'file',
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    mtimeNs: 1767225600123456789n,
    size: 3,
    blocks: [{ offset: 0, plainSize: 3, id: id64(0xaa), key: new Uint8Array(32).fill(9) }],
    ...extra,
  };
}

function dir(...entries: Entry[]): DirObject {
  return { kind: 'dir', v: META_VERSION, entries };
}

const b = (s: string) => Buffer.from(s, 'utf8');

/** An encoded fragment built by hand around `wire` (a msgpack value), for read-side schema tests. */
function forge(wire: unknown, keys: MetaKeys = KEYS, compression = META_COMPRESSION_NONE): { id: string; bytes: Uint8Array } {
  // Sealed as the object's kind and version say (dir and manifest objects of version 3 under their own key).
  const w = wire as { kind?: unknown; v?: unknown } | Map<string, unknown>;
  const kind = w instanceof Map ? w.get('kind') : w?.kind;
  const v = w instanceof Map ? w.get('v') : w?.v;
  const own = (kind === 'dir' || kind === 'manifest') && typeof v === 'number' && v >= 3;
  const x = packPlain(wire);
  const bytes = own
    ? packSolmet({ encryption: META_ENCRYPTION_AES256GCM_OWN_KEY, compression, body: sealOwnKeyBody(x, keys).body })
    : packSolmet({ encryption: META_ENCRYPTION_AES256GCM_SIV, compression, body: sealMetaBody(x, keys) });
  return { id: toHex(blake3(bytes)), bytes };
}

function roundTrips(t: import('ava').ExecutionContext, arb: fc.Arbitrary<MetaObject>, numRuns = 100): void {
  fc.assert(
    fc.property(arb, (obj) => {
      const { id, bytes } = encodeMeta(obj, KEYS);
      t.is(id, toHex(blake3(bytes)));
      t.deepEqual(decodeMeta(bytes, id, KEYS), obj);
    }),
    { numRuns },
  );
}

test('round trip: dir objects with entries of every type', (t) => roundTrips(t, dirObject));
test('round trip: manifest pages', (t) => roundTrips(t, manifestObject));
test('round trip: snapshot objects', (t) => roundTrips(t, snapshotObject));
test('round trip: ref objects', (t) => roundTrips(t, refObject));

test('deterministic: equal objects give equal bytes and ids, whatever the key order of the input', (t) => {
  fc.assert(
    fc.property(metaObject, (obj) => {
      const a = encodeMeta(obj, KEYS);
      const clone = structuredClone(obj);
      // Same content, properties inserted in reverse order.
      const reversed = Object.fromEntries(Object.entries(clone).reverse()) as MetaObject;
      const b = encodeMeta(reversed, KEYS);
      t.is(a.id, b.id);
      t.deepEqual(a.bytes, b.bytes);
    }),
    { numRuns: 50 },
  );
  const keys2 = keysOf(7);
  const d = dir(file('a'));
  t.not(encodeMeta(d, KEYS).id, encodeMeta(d, keys2).id, 'another space key gives another fragment');
});

test('extremes survive: mtimes at both ends of int64, sizes and offsets beyond 2^32, odd xattr names', (t) => {
  const xattrs = [
    { name: b('__proto__'), value: Buffer.from([1, 2]) },
    { name: Buffer.from([0x75, 0x2e, 0xff]), value: Buffer.alloc(0) },
  ];
  const obj = dir(
    file('a', { mtimeNs: -(2n ** 63n), size: Number.MAX_SAFE_INTEGER, blocks: [] }),
    file('b', {
      mtimeNs: 2n ** 63n - 1n,
      size: 2 ** 40,
      xattrs,
      blocks: [{ offset: 2 ** 40 - 5, plainSize: 5, id: id64(1), key: new Uint8Array(32) }],
    }),
  );
  const { id, bytes } = encodeMeta(obj, KEYS);
  const back = decodeMeta(bytes, id, KEYS) as DirObject;
  t.deepEqual(back, obj);
  t.deepEqual(back.entries[1]!.xattrs!.map((x) => x.name.toString('hex')), ['5f5f70726f746f5f5f', '752eff']);
  // Big integers are msgpack int64 (0xd3), never float64 (0xcb), so any reader gets exact values.
  const plain = packPlain(metaToWire(obj));
  t.true(Buffer.from(plain).includes(Buffer.from('d30000010000000000', 'hex')), 'size 2^40 as int64');
  t.false(Buffer.from(plain).includes(0xcb));
});

test('decoded keys are plain Uint8Arrays; names and values are Buffers; all are views of one plaintext, not copies', (t) => {
  const obj = dir(file('a', { xattrs: [{ name: b('user.a'), value: Buffer.from([5]) }] }), file('b'));
  const { id, bytes } = encodeMeta(obj, KEYS);
  const back = decodeMeta(bytes, id, KEYS) as DirObject;
  const key = back.entries[0]!.blocks![0]!.key;
  t.is(key.constructor, Uint8Array);
  t.true(Buffer.isBuffer(back.entries[0]!.name));
  t.true(Buffer.isBuffer(back.entries[0]!.xattrs![0]!.value));
  // One backing buffer for the fragment (a copy each cost an ArrayBuffer each: two thirds of a decode).
  t.is(key.buffer, back.entries[1]!.name.buffer);
  t.is(back.entries[0]!.name.buffer, back.entries[1]!.blocks![0]!.key.buffer);
  t.deepEqual(back, obj);
});

test('names, targets, xattr names and sources that are not UTF-8 come back byte for byte', (t) => {
  const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
  const obj = dir(
    file(Buffer.from([0x61, 0xfe])),
    file(Buffer.from([0x61, 0xff]), { xattrs: [{ name: Buffer.from([0x75, 0x73, 0x65, 0x72, 0x2e, 0x80]), value: latin1 }] }),
    { name: latin1, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, size: 2, target: Buffer.from([0xc3, 0x28]) },
  );
  const { id, bytes } = encodeMeta(obj, KEYS);
  t.deepEqual(decodeMeta(bytes, id, KEYS), obj);
  const snap: MetaObject = { kind: 'snapshot', v: META_VERSION, createdMs: 1, source: [latin1], hostname: 'h', blockSize: 65536, root: file(latin1), files: 1, dirs: 0, logicalBytes: 3 };
  const enc = encodeMeta(snap, KEYS);
  t.deepEqual(decodeMeta(enc.bytes, enc.id, KEYS), snap);
});

test('version 1 objects (names UTF-8, target and source str, xattrs a map) still decode, to bytes', (t) => {
  const m = metaToWire(dir(file('a')));
  m.v = 1;
  const e = (m.entries as Record<string, unknown>[])[0]!;
  e.xattrs = new Map([['user.é', new Uint8Array([7])]]);
  const link = { ...metaToWire(dir({ name: b('l'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, size: 3, target: b('a/b') })) };
  link.v = 1;
  ((link.entries as Record<string, unknown>[])[0]!).target = 'a/b';
  const f1 = forge(m);
  const back = decodeMeta(f1.bytes, f1.id, KEYS) as DirObject;
  t.is(back.v, 1);
  t.deepEqual(back.entries[0]!.xattrs, [{ name: b('user.é'), value: Buffer.from([7]) }]);
  const f2 = forge(link);
  t.deepEqual((decodeMeta(f2.bytes, f2.id, KEYS) as DirObject).entries[0]!.target, b('a/b'));
  // A version 1 name had to be UTF-8; version 2 lifts that.
  (m.entries as Record<string, unknown>[])[0]!.name = new Uint8Array([0xff]);
  const f3 = forge(m);
  t.true(isFragfsError(t.throws(() => decodeMeta(f3.bytes, f3.id, KEYS)), 'CORRUPT'));
  m.v = 2;
  delete (m.entries as Record<string, unknown>[])[0]!.xattrs;
  const f4 = forge(m);
  t.deepEqual((decodeMeta(f4.bytes, f4.id, KEYS) as DirObject).entries[0]!.name, Buffer.from([0xff]));
});

test('compression is used when it saves space, and only then', (t) => {
  const big = dir(...Array.from({ length: 50 }, (_, i) => file(`file-${String(i).padStart(3, '0')}.txt`)));
  t.is(unpackSolmet(encodeMeta(big, KEYS).bytes).compression, META_COMPRESSION_ZSTD);
  // A small ref around a random id has nothing for zstd to find.
  const random: MetaObject = { kind: 'ref', v: META_VERSION, snapshot: randomBytes(32).toString('hex'), createdMs: 1, logicalBytes: 2 };
  const frame = unpackSolmet(encodeMeta(random, KEYS).bytes);
  t.is(frame.compression, META_COMPRESSION_NONE);
  t.is(frame.encryption, META_ENCRYPTION_AES256GCM_SIV);
  const back = decodeMeta(encodeMeta(random, KEYS).bytes, encodeMeta(random, KEYS).id, KEYS);
  t.deepEqual(back, random);
});

test('no file name, symlink target, xattr or host name is visible in the fragment', (t) => {
  const secretName = 'quarterly-layoffs-draft.docx';
  const target = '/home/ada/secret-target-path';
  const xattrValue = 'xattr-secret-value-1234';
  const snapshot: MetaObject = {
    kind: 'snapshot',
    v: META_VERSION,
    createdMs: 1,
    source: [b('/srv/secret-source-folder')],
    hostname: 'secret-hostname-42',
    blockSize: 65536,
    root: file(secretName, { xattrs: [{ name: b('user.comment'), value: b(xattrValue) }] }),
    files: 1,
    dirs: 0,
    logicalBytes: 3,
  };
  const d = dir({ name: b('link'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, size: target.length, target: b(target) }, file(secretName));
  for (const obj of [snapshot, d]) {
    const bytes = Buffer.from(encodeMeta(obj, KEYS).bytes);
    for (const needle of [secretName, 'quarterly', target, 'secret', xattrValue, 'hostname', 'entries', 'FragComp']) {
      t.false(bytes.includes(Buffer.from(needle)), `"${needle}" is visible`);
    }
  }
});

test('any single bit flip is CORRUPT naming the fragment, even when the id is recomputed', (t) => {
  const obj = dir(file('a'), { name: b('d'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 5n, size: 0, dir: id64(0xdd) });
  for (const compressible of [false, true]) {
    const o = compressible ? dir(...Array.from({ length: 20 }, (_, i) => file(`f${String(i).padStart(2, '0')}`))) : obj;
    const { id, bytes } = encodeMeta(o, KEYS);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const bad = new Uint8Array(bytes);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      for (const claimed of [id, toHex(blake3(bad))]) {
        const e = t.throws(() => decodeMeta(bad, claimed, KEYS));
        t.true(isFragfsError(e, 'CORRUPT'), `bit ${bit}: ${String(e)}`);
        t.is((e as { fragmentId?: string }).fragmentId, claimed);
        t.true(e!.message.includes(claimed));
      }
    }
  }
});

test('truncation and a wrong id are CORRUPT', (t) => {
  const { id, bytes } = encodeMeta(dir(file('a')), KEYS);
  for (let n = 0; n < bytes.length; n++) {
    const cut = bytes.subarray(0, n);
    t.true(isFragfsError(t.throws(() => decodeMeta(cut, toHex(blake3(cut)), KEYS)), 'CORRUPT'));
  }
  t.true(isFragfsError(t.throws(() => decodeMeta(bytes, id64(0), KEYS)), 'CORRUPT'));
});

test('a wrong metadata key is CORRUPT', (t) => {
  const { id, bytes } = encodeMeta(dir(file('a')), KEYS);
  const e = t.throws(() => decodeMeta(bytes, id, keysOf(3)));
  t.true(isFragfsError(e, 'CORRUPT'));
  t.regex(e!.message, /tag/);
  // The nonce key is not checked by the reader: the right metaKey alone decrypts.
  t.deepEqual(decodeMeta(bytes, id, { metaKey: KEYS.metaKey, metaNonceKey: new Uint8Array(32) }), dir(file('a')));
});

test('an unencrypted frame is CORRUPT (metadata is always encrypted)', (t) => {
  const bytes = packSolmet({ encryption: META_ENCRYPTION_NONE, compression: 0, body: packPlain(metaToWire(dir(file('a')))) });
  const e = t.throws(() => decodeMeta(bytes, toHex(blake3(bytes)), KEYS));
  t.true(isFragfsError(e, 'CORRUPT'));
});

test('keys of the wrong length are INVALID', (t) => {
  t.true(isFragfsError(t.throws(() => encodeMeta(dir(), { metaKey: new Uint8Array(16), metaNonceKey: new Uint8Array(32) })), 'INVALID'));
  t.true(isFragfsError(t.throws(() => encodeMeta(dir(), { metaKey: new Uint8Array(32), metaNonceKey: new Uint8Array(31) })), 'INVALID'));
});

const BAD_OBJECTS: [string, () => MetaObject][] = [
  ['unsorted entries', () => dir(file('b'), file('a'))],
  ['duplicate names', () => dir(file('a'), file('a'))],
  ['byte order, not UTF-16 order', () => dir(file('\u{1F600}'), file('\uFFFD'))],
  ['name with a slash', () => dir(file('a/b'))],
  ['name "."', () => dir(file('.'))],
  ['name ".."', () => dir(file('..'))],
  ['empty name', () => dir(file(''))],
  ['name with NUL', () => dir(file('a\0b'))],
  ['name of 256 bytes', () => dir(file('x'.repeat(256)))],
  ['file with blocks and pages', () => dir(file('a', { pages: [id64(1)] }))],
  ['file without content', () => dir(file('a', { blocks: undefined }))],
  ['dir without dir id', () => dir({ name: b('d'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, size: 0 })],
  ['symlink without target', () => dir({ name: b('s'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, size: 0 })],
  ['symlink target with NUL', () => dir({ name: b('s'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, size: 3, target: Buffer.from([0x61, 0, 0x62]) })],
  ['unsorted xattrs', () => dir(file('a', { xattrs: [{ name: b('user.b'), value: Buffer.alloc(1) }, { name: b('user.a'), value: Buffer.alloc(1) }] }))],
  ['fifo with blocks', () => dir(file('p', { type: 'fifo' }))],
  ['unknown type', () => dir(file('a', { type: 'door' as never }))],
  ['mode with type bits', () => dir(file('a', { mode: 0o100644 }))],
  ['negative uid', () => dir(file('a', { uid: -1 }))],
  ['uid beyond 32 bits', () => dir(file('a', { uid: 2 ** 32 }))],
  ['mtime as number (write side)', () => dir(file('a', { mtimeNs: 5 as never }))],
  ['mtime beyond int64', () => dir(file('a', { mtimeNs: 2n ** 63n }))],
  ['fractional size', () => dir(file('a', { size: 1.5 }))],
  ['overlapping extents', () => dir(file('a', { blocks: [0, 2].map((offset) => ({ offset, plainSize: 3, id: id64(1), key: new Uint8Array(32) })) }))],
  ['unsorted extents', () => dir(file('a', { blocks: [5, 0].map((offset) => ({ offset, plainSize: 3, id: id64(1), key: new Uint8Array(32) })) }))],
  ['empty extent', () => dir(file('a', { blocks: [{ offset: 0, plainSize: 0, id: id64(1), key: new Uint8Array(32) }] }))],
  ['extent over 4 MiB', () => dir(file('a', { blocks: [{ offset: 0, plainSize: 4 * 1024 * 1024 + 1, id: id64(1), key: new Uint8Array(32) }] }))],
  ['short extent key', () => dir(file('a', { blocks: [{ offset: 0, plainSize: 1, id: id64(1), key: new Uint8Array(31) }] }))],
  ['uppercase extent id (write side)', () => dir(file('a', { blocks: [{ offset: 0, plainSize: 1, id: 'AB'.repeat(32), key: new Uint8Array(32) }] }))],
  ['empty pages', () => dir(file('a', { blocks: undefined, pages: [] }))],
  ['xattr value over 64 KiB', () => dir(file('a', { xattrs: [{ name: b('user.big'), value: Buffer.alloc(65537) }] }))],
  ['link 0', () => dir(file('a', { link: 0 }))],
  ['version 0', () => ({ ...dir(), v: 0 })],
  ['version 4', () => ({ ...dir(), v: 4 })],
  ['unknown kind', () => ({ kind: 'inode', v: META_VERSION }) as never],
  ['ref with a bad snapshot id', () => ({ kind: 'ref', v: META_VERSION, snapshot: 'abc', createdMs: 0, logicalBytes: 0 })],
  ['snapshot root named ".."', () => ({ kind: 'snapshot', v: META_VERSION, createdMs: 0, source: [], hostname: 'h', blockSize: 65536, root: file('..'), files: 0, dirs: 0, logicalBytes: 0 })],
];

for (const [what, make] of BAD_OBJECTS) {
  test(`write side rejects a bad object as INVALID: ${what}`, (t) => {
    const e = t.throws(() => encodeMeta(make(), KEYS));
    t.true(isFragfsError(e, 'INVALID'), String(e));
  });
  // These cannot be told apart on the wire (UTF-8 and hex conversion, any integer form is read).
  if (what.endsWith('(write side)')) continue;
  let wire: unknown;
  try {
    wire = metaToWire(make());
  } catch {
    continue; // not representable on the wire: only the write side can meet it
  }
  test(`read side rejects a forged bad object as CORRUPT naming it: ${what}`, (t) => {
    const { id, bytes } = forge(wire);
    const e = t.throws(() => decodeMeta(bytes, id, KEYS));
    if (what === 'version 4') {
      t.true(isFragfsError(e, 'BAD_STORE'), String(e));
      t.regex(e!.message, /newer fragfs/);
    } else {
      t.true(isFragfsError(e, 'CORRUPT'), String(e));
    }
    t.is((e as { fragmentId?: string }).fragmentId, id);
  });
}

test('read side: wire-type violations are CORRUPT', (t) => {
  type W = Record<string, unknown>;
  const variants: [string, (m: W, e: W) => void][] = [
    ['name as str', (_m, e) => (e.name = 'a')],
    ['target as str', (_m, e) => ((e.type = 'symlink'), delete e.blocks, (e.target = 'a'))],
    ['id as hex string', (_m, e) => ((e.blocks as unknown[][])[0]![2] = id64(1))],
    ['extent of 3', (_m, e) => (e.blocks as unknown[][])[0]!.pop()],
    ['extent as a map', (_m, e) => ((e.blocks as unknown[])[0] = { offset: 0, plainSize: 3 })],
    ['entries a map', (m) => (m.entries = new Map())],
    ['entry an array', (m) => (m.entries = [[1, 2]])],
    ['missing mode', (_m, e) => delete e.mode],
    ['missing kind', (m) => delete m.kind],
    ['kind as bin', (m) => (m.kind = new TextEncoder().encode('dir'))],
    ['missing data encryption type', (m) => delete m['FragComp::DataEncryptionType']],
    ['size as string', (_m, e) => (e.size = '3')],
    ['size beyond 2^53', (_m, e) => (e.size = 2n ** 60n)],
    ['mtime as float', (_m, e) => (e.mtimeNs = 1.5)],
    ['mtime as nil', (_m, e) => (e.mtimeNs = null)],
    ['xattrs as a map', (_m, e) => (e.xattrs = new Map([['user.a', new Uint8Array(1)]]))],
    ['xattr name as str', (_m, e) => (e.xattrs = [['user.a', new Uint8Array(1)]])],
    ['xattr pair of 3', (_m, e) => (e.xattrs = [[new Uint8Array([0x61]), new Uint8Array(1), 1]])],
    ['dir id of 31 bytes', (_m, e) => ((e.type = 'dir'), delete e.blocks, (e.dir = new Uint8Array(31)))],
  ];
  for (const [what, mutate] of variants) {
    const m = metaToWire(dir(file('a')));
    mutate(m, (m.entries as W[])[0]!);
    const { id, bytes } = forge(m);
    const err = t.throws(() => decodeMeta(bytes, id, KEYS), undefined, what);
    t.true(isFragfsError(err, 'CORRUPT'), `${what}: ${String(err)}`);
    t.is((err as { fragmentId?: string }).fragmentId, id);
  }
  for (const top of [[...Object.entries(metaToWire(dir(file('a'))))], 'dir', null, 5]) {
    const { id, bytes } = forge(top);
    t.true(isFragfsError(t.throws(() => decodeMeta(bytes, id, KEYS)), 'CORRUPT'));
  }
});

test('read side: unknown data encryption type is BAD_STORE (newer fragfs)', (t) => {
  const m = metaToWire(dir(file('a')));
  m['FragComp::DataEncryptionType'] = 2;
  const { id, bytes } = forge(m);
  const e = t.throws(() => decodeMeta(bytes, id, KEYS));
  t.true(isFragfsError(e, 'BAD_STORE'), String(e));
  t.regex(e!.message, /newer fragfs/);
  t.is((e as { fragmentId?: string }).fragmentId, id);
});

test('read side: unknown keys are ignored, other integer encodings accepted, maps as Maps', (t) => {
  const m = metaToWire(dir(file('a')));
  m['x-future-field'] = [1, 'two', new Uint8Array([3])];
  const e = (m.entries as Record<string, unknown>[])[0]!;
  e.mtimeNs = 42; // a positive fixint instead of int64
  e.size = 3n; // int64 instead of a fixint
  e.comment = 'from another writer';
  const asMap = new Map(Object.entries(m)); // a writer that builds Maps gives the same msgpack
  for (const wire of [m, asMap]) {
    const { id, bytes } = forge(wire, KEYS, META_COMPRESSION_NONE);
    t.deepEqual(decodeMeta(bytes, id, KEYS), dir(file('a', { mtimeNs: 42n })));
  }
});

test('objects describing data carry the seed 003 data type keys; refs do not', (t) => {
  for (const obj of [dir(), { kind: 'manifest', v: META_VERSION, blocks: [] } as MetaObject]) {
    const m = metaToWire(obj);
    t.is(m['FragComp::DataEncryptionType'], 1);
    t.is(m['FragComp::DataCompressionType'], 1);
    t.deepEqual(Object.keys(m).slice(0, 4), ['kind', 'v', 'FragComp::DataEncryptionType', 'FragComp::DataCompressionType']);
  }
  t.false('FragComp::DataEncryptionType' in metaToWire({ kind: 'ref', v: META_VERSION, snapshot: id64(1), createdMs: 0, logicalBytes: 0 }));
});
