// The fixed inputs of fixtures/vectors/solmet/*.json (keys and objects), used by the vector writer.

import { META_VERSION, type Entry, type MetaObject } from '../../src/fragment/tree-format.js';

const seq = (start: number, n = 32): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
const id = (byte: number): string => byte.toString(16).padStart(2, '0').repeat(32);
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

export const VECTOR_KEYS = {
  masterKey: seq(0x00),
  convergenceSecret: seq(0x80),
};

const fileEntry: Entry = {
  name: b('notes.txt'),
  type: 'file',
  mode: 0o644,
  uid: 1000,
  gid: 1000,
  mtimeNs: 1767225600123456789n,
  size: 1048586,
  xattrs: [{ name: b('user.mime_type'), value: b('text/plain') }],
  link: 1,
  nlink: 2,
  blocks: [
    { offset: 0, plainSize: 1048576, id: id(0xa1), key: seq(0x10) },
    { offset: 1048576, plainSize: 10, id: id(0xa2), key: seq(0x30) },
  ],
};

export const VECTOR_OBJECTS: [string, string, MetaObject][] = [
  [
    'meta-ref.json',
    'ref object naming a snapshot (docs/FORMAT.md 2.4 works through its version 2 form, v2/meta-ref.json)',
    { kind: 'ref', v: META_VERSION, snapshot: id(0x5e), name: 'monday', createdMs: 1767225600000, logicalBytes: 1048586 },
  ],
  [
    'meta-dir.json',
    'dir object: a file with manifest pages, a file with inline extents (xattr, hard link), a subdir, a char device, a symlink, and a Latin-1 name (caf\\351) that is not UTF-8 with a symlink target that is not either',
    {
      kind: 'dir',
      v: META_VERSION,
      entries: [
        { name: b('big.bin'), type: 'file', mode: 0o600, uid: 1000, gid: 1000, mtimeNs: 1767225600999999999n, size: 40 * 1048576, pages: [id(0xb1), id(0xb2)], pageKeys: [seq(0xc1), seq(0xc2)] },
        { name: Buffer.from([0x63, 0x61, 0x66, 0xe9]), type: 'symlink', mode: 0o777, uid: 1000, gid: 1000, mtimeNs: 0n, size: 5, target: Buffer.from([0x6e, 0x6f, 0x74, 0x65, 0xff]) },
        { ...fileEntry, blocks: [...fileEntry.blocks!], xattrs: [...fileEntry.xattrs!] },
        { name: b('photos'), type: 'dir', mode: 0o755, uid: 1000, gid: 1000, mtimeNs: 1767225600000000000n, size: 0, dir: id(0xd1), dirKey: seq(0xe1) },
        { name: b('tty0'), type: 'chardev', mode: 0o620, uid: 0, gid: 5, mtimeNs: -1n, size: 0, rdev: 0x0400 },
        { name: b('zlink'), type: 'symlink', mode: 0o777, uid: 1000, gid: 1000, mtimeNs: 0n, size: 9, target: b('notes.txt') },
      ],
    },
  ],
  [
    'meta-manifest.json',
    'manifest page of 40 extents of 64 KiB with a hole after the 20th and an offset beyond 4 GiB',
    {
      kind: 'manifest',
      v: META_VERSION,
      blocks: Array.from({ length: 40 }, (_, i) => ({
        offset: i < 20 ? i * 65536 : 2 ** 32 + i * 65536,
        plainSize: 65536,
        id: id(i + 1),
        key: seq(i),
      })),
    },
  ],
  [
    'meta-snapshot.json',
    'snapshot object whose root is a dir entry (empty root name), logicalBytes beyond 2^32',
    {
      kind: 'snapshot',
      v: META_VERSION,
      createdMs: 1767225600000,
      source: [b('/home/ada/photos')],
      hostname: 'lovelace',
      blockSize: 1048576,
      root: { name: Buffer.alloc(0), type: 'dir', mode: 0o755, uid: 1000, gid: 1000, mtimeNs: 1767225600000000001n, size: 0, dir: id(0xd0), dirKey: seq(0xe0) },
      files: 12,
      dirs: 3,
      logicalBytes: 5000000000,
    },
  ],
];
