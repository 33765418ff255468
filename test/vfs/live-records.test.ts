// The live state's inode record layout: times kept to the nanosecond (layout 2), records of layout 1
// (times as ms in doubles) still read, and a record of neither layout refused as corrupt; and the
// state's format number: 2 (before layout 2) opens and becomes 3 on a read-write open, an unknown
// one is refused in one line.

import test from 'ava';
import { open } from 'lmdb';
import { isFragfsError } from '../../src/errors.js';
import { LIVE_FORMAT, LiveState } from '../../src/vfs/live-state.js';
import { tempDir } from '../helpers/stores.js';
import { S_IFLNK, S_IFREG, type InodeRecord } from '../../src/vfs/inode.js';
import { decodeInode, encodeInode } from '../../src/vfs/live-records.js';

const file: InodeRecord = {
  mode: S_IFREG | 0o640,
  uid: 1000,
  gid: 100,
  size: 12345,
  atimeNs: -1_000_000_250_000_007n,
  mtimeNs: 1_700_000_000_999_999_999n,
  ctimeNs: 9_223_372_036_854_775_807n,
  nlink: 2,
  alloc: 12345,
  parents: [1, 2 ** 40 + 5],
  xattrs: 3,
};

test('an inode record keeps every field, times to the nanosecond (also before 1970 and at the i64 edge)', (t) => {
  t.deepEqual(decodeInode(encodeInode(file)), file);
  const link: InodeRecord = { ...file, mode: S_IFLNK | 0o777, target: Buffer.from([0x61, 0xff, 0x00]), rdev: 7, xattrs: undefined };
  delete link.xattrs;
  t.deepEqual(decodeInode(encodeInode(link)), link);
  t.is(encodeInode(file)[0], 2, 'written in layout 2');
});

test('the layout 2 vector of docs/FORMAT.md section 4.3, built from the table alone, is what encodeInode writes', (t) => {
  // Big-endian fields in the table's order: layout, mode, uid, gid, nlink, xattr count (u32 each
  // after the layout byte), size and allocated bytes (f64), the three times (i64 ns), rdev (f64),
  // parent count (u16), parents (u48 each), the symlink target (none here).
  const b = Buffer.alloc(1 + 5 * 4 + 2 * 8 + 3 * 8 + 8 + 2 + 6);
  let o = b.writeUInt8(2, 0);
  for (const v of [0o100640, 1000, 100, 1, 0]) o = b.writeUInt32BE(v, o);
  for (const v of [5, 5]) o = b.writeDoubleBE(v, o);
  for (const v of [-1_000_000_250_000_007n, 1_600_000_000_123_456_789n, 1_700_000_000_999_999_999n]) o = b.writeBigInt64BE(v, o);
  o = b.writeDoubleBE(0, o);
  o = b.writeUInt16BE(1, o);
  b.writeUIntBE(1, o, 6);
  const vector =
    '02000081a0000003e800000064000000010000000040140000000000004014000000000000fffc72814c52cd7916345785dffbcd1517979cfe71c4c9ff00000000000000000001000000000001';
  t.is(b.toString('hex'), vector);
  const rec: InodeRecord = {
    mode: 0o100640,
    uid: 1000,
    gid: 100,
    size: 5,
    atimeNs: -1_000_000_250_000_007n,
    mtimeNs: 1_600_000_000_123_456_789n,
    ctimeNs: 1_700_000_000_999_999_999n,
    nlink: 1,
    alloc: 5,
    parents: [1],
  };
  t.is(encodeInode(rec).toString('hex'), vector);
  t.deepEqual(decodeInode(Buffer.from(vector, 'hex')), rec);
});

test('a record of layout 1 (times as ms in doubles) reads with its times as ns', (t) => {
  const b = encodeInode(file);
  b[0] = 1;
  b.writeDoubleBE(1_700_000_000_123.25, 1 + 20 + 16);
  b.writeDoubleBE(-1500.25, 1 + 20 + 24);
  b.writeDoubleBE(0, 1 + 20 + 32);
  const r = decodeInode(b);
  t.is(r.atimeNs, 1_700_000_000_123_250_000n);
  t.is(r.mtimeNs, -1_500_250_000n);
  t.is(r.ctimeNs, 0n);
  t.is(r.size, 12345);
  t.deepEqual(r.parents, file.parents);
});

test('a record of an unknown layout or cut short is CORRUPT', (t) => {
  const b = encodeInode(file);
  for (const bad of [Buffer.concat([Buffer.from([3]), b.subarray(1)]), b.subarray(0, 40)]) {
    const e = t.throws(() => decodeInode(bad));
    t.true(isFragfsError(e, 'CORRUPT'), String(e));
  }
});

test('a live state of format 2 opens (read-only as it is, read-write marked 3); an unknown format is refused', async (t) => {
  const tmp = await tempDir('fragfs-live-format-');
  t.teardown(() => tmp.remove());
  const keys = { index: new Uint8Array(32).fill(1), name: new Uint8Array(32).fill(2), value: new Uint8Array(32).fill(3), nonce: new Uint8Array(32).fill(4) };
  const owner = { uid: 0, gid: 0 };
  const state = (readOnly: boolean) => new LiveState({ path: tmp.path, readOnly, owner, keys });
  const setFormat = async (n: number) => {
    const env = open({ path: tmp.path, maxDbs: 4 });
    await env.openDB<number, string>({ name: 'format' }).put('format', n);
    await env.close();
  };
  const formatNow = async () => {
    const env = open({ path: tmp.path, maxDbs: 4, readOnly: true });
    const n = env.openDB<number, string>({ name: 'format' }).get('format');
    await env.close();
    return n;
  };
  let s = state(false);
  t.is(s.getInode(1)?.mode, 0o040755);
  await s.close();
  t.is(await formatNow(), LIVE_FORMAT);
  t.is(LIVE_FORMAT, 3);

  await setFormat(2);
  s = state(true);
  t.is(s.getInode(1)?.mode, 0o040755);
  await s.close();
  t.is(await formatNow(), 2, 'a read-only open changes nothing');
  s = state(false);
  await s.close();
  t.is(await formatNow(), 3, 'a read-write open marks it 3');

  await setFormat(4);
  const e = t.throws(() => state(false));
  t.true(isFragfsError(e, 'BAD_STORE'), String(e));
  t.regex((e as Error).message, /has layout 4; this fragfs reads 2 and 3$/);
});
