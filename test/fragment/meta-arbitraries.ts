// fast-check arbitraries of valid metadata objects (every entry type, bigint mtimes, xattrs, links,
// inline extents and manifest pages), shared by the metadata codec tests.

import fc from 'fast-check';
import { compareNames, nameProblem } from '../../src/fragment/names.js';
import {
  META_VERSION,
  type DirObject,
  type Entry,
  type EntryType,
  type Extent,
  type ManifestPageObject,
  type RefObject,
  type SnapshotObject,
} from '../../src/fragment/tree-format.js';

const hexId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** Names as bytes: UTF-8 text, and arbitrary bytes (Latin-1 names, lone continuation bytes, ...). */
export const entryName: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 12 }).map((s) => Buffer.from(s, 'utf8')),
    fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => Buffer.from(b)),
  )
  .filter((b) => nameProblem(b) === undefined);

const bytesWithoutNul = (minLength: number, maxLength: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength, maxLength }).map((b) => Buffer.from(b.map((x) => x || 1)));

/** Sorted, non-overlapping extents, holes allowed, offsets beyond 2^32 sometimes. */
export const extents = (maxLength: number): fc.Arbitrary<Extent[]> =>
  fc
    .array(
      fc.record({
        gap: fc.oneof(fc.constant(0), fc.nat(1 << 20), fc.constant(2 ** 33)),
        plainSize: fc.integer({ min: 1, max: 4 * 1024 * 1024 }),
        id: hexId,
        key: key32,
      }),
      { maxLength },
    )
    .map((xs) => {
      let at = 0;
      return xs.map(({ gap, plainSize, id, key }) => {
        const offset = at + gap;
        at = offset + plainSize;
        return { offset, plainSize, id, key };
      });
    });

const xattrs = fc
  .uniqueArray(
    fc.record({
      name: fc
        .tuple(fc.constantFrom('user.', 'security.', 'trusted.'), bytesWithoutNul(1, 10))
        .map(([p, rest]) => Buffer.concat([Buffer.from(p), rest])),
      value: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    }),
    { maxLength: 3, selector: (x) => x.name.toString('hex') },
  )
  .map((list) => list.sort((a, b) => compareNames(a.name, b.name)));

const entryTypes: EntryType[] = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket'];

export const entry = (name: fc.Arbitrary<Buffer> = entryName): fc.Arbitrary<Entry> =>
  fc
    .record({
      name,
      type: fc.constantFrom(...entryTypes),
      mode: fc.integer({ min: 0, max: 0o7777 }),
      uid: fc.nat(0xffffffff),
      gid: fc.nat(0xffffffff),
      mtimeNs: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      size: fc.oneof(fc.nat(1 << 20), fc.maxSafeNat()),
      xattrs: fc.option(xattrs, { nil: undefined }),
      link: fc.option(fc.integer({ min: 1, max: 0xffffffff }), { nil: undefined }),
      target: bytesWithoutNul(1, 30),
      rdev: fc.option(fc.maxSafeNat(), { nil: undefined }),
      usePages: fc.boolean(),
      blocks: extents(5),
      pages: fc.array(hexId, { minLength: 1, maxLength: 3 }),
      dir: hexId,
      withKeys: fc.boolean(),
      key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    })
    .map((r) => {
      const e: Entry = { name: r.name, type: r.type, mode: r.mode, uid: r.uid, gid: r.gid, mtimeNs: r.mtimeNs, size: r.size };
      if (r.type === 'symlink') e.target = r.target;
      if ((r.type === 'chardev' || r.type === 'blockdev') && r.rdev !== undefined) e.rdev = r.rdev;
      if (r.xattrs !== undefined) e.xattrs = r.xattrs;
      if (r.link !== undefined) {
        e.link = r.link;
        if (r.type === 'file') e.nlink = 2 + (r.link % 3);
      }
      if (r.type === 'file') {
        if (r.usePages) {
          e.pages = r.pages;
          // Version 3: pages may carry their keys (one per page).
          if (r.withKeys) e.pageKeys = r.pages.map((_, i) => r.key.map((x) => (x + i) & 0xff));
        } else {
          e.blocks = r.blocks;
          // Inline extents lie within the file's size (FORMAT.md 2.3.7).
          const last = r.blocks[r.blocks.length - 1];
          if (last !== undefined) e.size = Math.max(e.size, last.offset + last.plainSize);
        }
      }
      if (r.type === 'dir') {
        e.dir = r.dir;
        if (r.withKeys) e.dirKey = r.key;
      }
      return e;
    });

export const dirObject: fc.Arbitrary<DirObject> = fc
  .uniqueArray(entry(), { maxLength: 8, selector: (e) => e.name.toString('hex') })
  .map((entries) => ({ kind: 'dir', v: META_VERSION, entries: entries.sort((a, b) => compareNames(a.name, b.name)) }));

export const manifestObject: fc.Arbitrary<ManifestPageObject> = extents(40).map((blocks) => ({ kind: 'manifest', v: META_VERSION, blocks }));

export const snapshotObject: fc.Arbitrary<SnapshotObject> = fc
  .record({
    createdMs: fc.maxSafeNat(),
    source: fc.array(bytesWithoutNul(0, 20), { maxLength: 3 }),
    hostname: fc.string({ maxLength: 20 }).filter((s) => !/[\uD800-\uDFFF]/u.test(s)),
    blockSize: fc.constantFrom(65536, 1 << 20, 4 << 20),
    root: entry(fc.oneof(fc.constant(Buffer.alloc(0)), entryName)),
    files: fc.maxSafeNat(),
    dirs: fc.maxSafeNat(),
    logicalBytes: fc.maxSafeNat(),
  })
  .map((r) => ({ kind: 'snapshot', v: META_VERSION, ...r }));

export const refObject: fc.Arbitrary<RefObject> = fc
  .record({
    snapshot: hexId,
    name: fc.option(fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[\uD800-\uDFFF]/u.test(s)), { nil: undefined }),
    createdMs: fc.maxSafeNat(),
    logicalBytes: fc.maxSafeNat(),
  })
  .map(({ snapshot, name, createdMs, logicalBytes }) => {
    const ref: RefObject = { kind: 'ref', v: META_VERSION, snapshot, createdMs, logicalBytes };
    if (name !== undefined) ref.name = name;
    return ref;
  });

export const metaObject = fc.oneof(dirObject, manifestObject, snapshotObject, refObject);
