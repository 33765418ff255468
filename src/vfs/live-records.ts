// The plaintext layouts of the live state's records (before live-crypto.ts seals them): fixed binary
// layouts rather than msgpack, because a request decodes one or more of them on the JS thread that
// answers every FUSE request. docs/FORMAT.md section 4 lists the same layouts.

import { FragfsError } from '../errors.js';
import type { BlockRef } from '../fragment/tree-format.js';
import { msToNs, type InodeRecord } from './inode.js';

/** Layout version byte of an inode record: 1 held times as ms in doubles, 2 as ns in i64. */
const INODE_V1 = 1;
const INODE_V2 = 2;
const INODE_FIXED_BYTES = 1 + 4 * 5 + 8 * 6 + 2;

function bad(what: string): FragfsError {
  return new FragfsError('CORRUPT', `the live state holds a malformed ${what} record`);
}

/**
 * Inode: version u8 (2), mode u32, uid u32, gid u32, nlink u32, xattrs u32, size f64, alloc f64,
 * atimeNs i64, mtimeNs i64, ctimeNs i64, rdev f64, parent count u16, parents (u48 each), then the
 * symlink target (the rest; empty = none). All big-endian. Layout 1 (read, converted on the next
 * write) had the times as ms in f64, which keep about 0.24 us of today's times.
 */
export function encodeInode(r: InodeRecord): Buffer {
  const target = r.target ?? EMPTY;
  const b = Buffer.allocUnsafe(INODE_FIXED_BYTES + 6 * r.parents.length + target.length);
  let o = 0;
  b[o++] = INODE_V2;
  o = b.writeUInt32BE(r.mode >>> 0, o);
  o = b.writeUInt32BE(r.uid >>> 0, o);
  o = b.writeUInt32BE(r.gid >>> 0, o);
  o = b.writeUInt32BE(Math.max(0, r.nlink) >>> 0, o);
  o = b.writeUInt32BE((r.xattrs ?? 0) >>> 0, o);
  o = b.writeDoubleBE(r.size, o);
  o = b.writeDoubleBE(r.alloc, o);
  o = b.writeBigInt64BE(r.atimeNs, o);
  o = b.writeBigInt64BE(r.mtimeNs, o);
  o = b.writeBigInt64BE(r.ctimeNs, o);
  o = b.writeDoubleBE(r.rdev ?? 0, o);
  o = b.writeUInt16BE(r.parents.length, o);
  for (const p of r.parents) o = b.writeUIntBE(p, o, 6);
  target.copy(b, o);
  return b;
}

export function decodeInode(b: Buffer): InodeRecord {
  if (b.length < INODE_FIXED_BYTES || (b[0] !== INODE_V2 && b[0] !== INODE_V1)) throw bad('inode');
  let o = 1;
  const mode = b.readUInt32BE(o);
  const uid = b.readUInt32BE(o + 4);
  const gid = b.readUInt32BE(o + 8);
  const nlink = b.readUInt32BE(o + 12);
  const xattrs = b.readUInt32BE(o + 16);
  o += 20;
  const size = b.readDoubleBE(o);
  const alloc = b.readDoubleBE(o + 8);
  const v1 = b[0] === INODE_V1;
  const atimeNs = v1 ? msToNs(b.readDoubleBE(o + 16)) : b.readBigInt64BE(o + 16);
  const mtimeNs = v1 ? msToNs(b.readDoubleBE(o + 24)) : b.readBigInt64BE(o + 24);
  const ctimeNs = v1 ? msToNs(b.readDoubleBE(o + 32)) : b.readBigInt64BE(o + 32);
  const rdev = b.readDoubleBE(o + 40);
  o += 48;
  const n = b.readUInt16BE(o);
  o += 2;
  if (b.length < o + 6 * n) throw bad('inode');
  const parents: number[] = [];
  for (let i = 0; i < n; i++, o += 6) parents.push(b.readUIntBE(o, 6));
  const rec: InodeRecord = { mode, uid, gid, size, atimeNs, mtimeNs, ctimeNs, nlink, alloc, parents };
  if (o < b.length) rec.target = Buffer.from(b.subarray(o));
  if (rdev) rec.rdev = rdev;
  if (xattrs) rec.xattrs = xattrs;
  return rec;
}

const EMPTY = Buffer.alloc(0);

/** Directory entry: child ino u48, type bits u32 (what readdir's d_type needs), then the name. */
export function encodeDirent(child: number, typeBits: number, name: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(10 + name.length);
  b.writeUIntBE(child, 0, 6);
  b.writeUInt32BE(typeBits >>> 0, 6);
  b.set(name, 10);
  return b;
}

export function decodeDirent(b: Buffer): { ino: number; typeBits: number; name: Buffer } {
  if (b.length < 11) throw bad('directory entry');
  return { ino: b.readUIntBE(0, 6), typeBits: b.readUInt32BE(6), name: Buffer.from(b.subarray(10)) };
}

/** Extent: blockNo u48, plainSize u32, fragment id (32), block key (32). */
export function encodeExtent(blockNo: number, ref: BlockRef): Buffer {
  const b = Buffer.allocUnsafe(74);
  b.writeUIntBE(blockNo, 0, 6);
  b.writeUInt32BE(ref.plainSize, 6);
  if (b.write(ref.id, 10, 32, 'hex') !== 32) throw new FragfsError('INVALID', `not a fragment id: ${ref.id}`);
  b.set(ref.key, 42);
  return b;
}

export function decodeExtent(b: Buffer): { blockNo: number; ref: BlockRef } {
  if (b.length !== 74) throw bad('extent');
  return {
    blockNo: b.readUIntBE(0, 6),
    ref: { plainSize: b.readUInt32BE(6), id: b.toString('hex', 10, 42), key: new Uint8Array(b.subarray(42, 74)) },
  };
}

/** Extended attribute: name length u8, name, value. */
export function encodeXattr(name: Uint8Array, value: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(1 + name.length + value.length);
  b[0] = name.length;
  b.set(name, 1);
  b.set(value, 1 + name.length);
  return b;
}

export function decodeXattr(b: Buffer): { name: Buffer; value: Buffer } {
  if (b.length < 2 || b.length < 1 + b[0]!) throw bad('extended attribute');
  const n = b[0]!;
  return { name: Buffer.from(b.subarray(1, 1 + n)), value: Buffer.from(b.subarray(1 + n)) };
}

/** A number record (orphans, counters): u48. */
export function encodeNumber(n: number): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUIntBE(n, 0, 6);
  return b;
}

export function decodeNumber(b: Buffer): number {
  if (b.length !== 6) throw bad('number');
  return b.readUIntBE(0, 6);
}

/** Cached result of serializing one directory (valid while nothing below it changed). */
export interface DirCacheValue {
  id: string;
  /** The dir object's own key (metadata version 3); absent for one sealed under the space's key. */
  key?: Uint8Array;
  files: number;
  dirs: number;
  bytes: number;
}

/** Dir cache: meta id (32), files f64, dirs f64, bytes f64, then the dir's own key (32) when it has one. */
export function encodeDirCache(v: DirCacheValue): Buffer {
  const b = Buffer.allocUnsafe(v.key === undefined ? 56 : 88);
  b.write(v.id, 0, 32, 'hex');
  b.writeDoubleBE(v.files, 32);
  b.writeDoubleBE(v.dirs, 40);
  b.writeDoubleBE(v.bytes, 48);
  if (v.key !== undefined) b.set(v.key, 56);
  return b;
}

export function decodeDirCache(b: Buffer): DirCacheValue {
  if (b.length !== 56 && b.length !== 88) throw bad('directory cache');
  const v: DirCacheValue = { id: b.toString('hex', 0, 32), files: b.readDoubleBE(32), dirs: b.readDoubleBE(40), bytes: b.readDoubleBE(48) };
  if (b.length === 88) v.key = new Uint8Array(b.subarray(56, 88));
  return v;
}

/** Tag of a content cache record that holds each page's key after its id (length 1 + 64n). */
const PAGES_WITH_KEYS = 0x01;

/**
 * Content cache: the meta ids of a large file's manifest pages, 32 bytes each (records written before
 * pages had keys), or the tag 0x01 then id (32) || key (32) per page.
 */
export function encodePages(pages: readonly string[], pageKeys?: readonly Uint8Array[]): Buffer {
  if (pageKeys === undefined) {
    const b = Buffer.allocUnsafe(32 * pages.length);
    pages.forEach((p, i) => b.write(p, 32 * i, 32, 'hex'));
    return b;
  }
  const b = Buffer.allocUnsafe(1 + 64 * pages.length);
  b[0] = PAGES_WITH_KEYS;
  pages.forEach((p, i) => {
    b.write(p, 1 + 64 * i, 32, 'hex');
    b.set(pageKeys[i]!, 1 + 64 * i + 32);
  });
  return b;
}

export function decodePages(b: Buffer): { pages: string[]; pageKeys?: Uint8Array[] } {
  if (b.length % 32 === 1 && b[0] === PAGES_WITH_KEYS && b.length > 1 && (b.length - 1) % 64 === 0) {
    const pages: string[] = [];
    const pageKeys: Uint8Array[] = [];
    for (let o = 1; o < b.length; o += 64) {
      pages.push(b.toString('hex', o, o + 32));
      pageKeys.push(new Uint8Array(b.subarray(o + 32, o + 64)));
    }
    return { pages, pageKeys };
  }
  if (b.length === 0 || b.length % 32 !== 0) throw bad('content cache');
  const pages: string[] = [];
  for (let o = 0; o < b.length; o += 32) pages.push(b.toString('hex', o, o + 32));
  return { pages };
}
