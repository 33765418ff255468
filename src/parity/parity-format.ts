// The parity object (docs/FORMAT.md section 3.6): one of the m Reed-Solomon parity shards of a
// stripe, led by the stripe's record, so that each of the m objects carries the whole record and
// the store can be checked and rebuilt without the passphrase. Stored under kind `parity`; its id
// is the BLAKE3-256 of all its bytes, as every fragment's is.
//
//   parity  = record || u8(index) || 3 zero bytes || shard
//   record  = "fpr1" || u8(version = 1) || u8(n) || u8(m) || u8(0) || u32le(shardSize)
//             || n x ( u8(kind) || id(32) || hash(32) || u32le(size) )
//   shard   = shardSize bytes: parity shard `index` of the Cauchy Reed-Solomon code (n, m) of
//             @ronomon/reed-solomon over the n members' stored bytes, each padded with zeros to
//             shardSize (the longest member rounded up to a multiple of 8)
//
// kind: 1 data, 2 meta, 3 pack, 4 index. hash: BLAKE3-256 of the member's stored bytes (its id
// for data, meta and pack; an index object is stored under its pack's id). The stripe's id is the
// BLAKE3-256 of `record`, the same in its m parity objects.

import { blake3, toHex } from '../codec/blake3.js';
import { FragfsError } from '../errors.js';
import type { FragmentKind } from '../store/store.js';
import { RS_MAX_K, RS_MAX_M, SHARD_ALIGN, shardSizeFor } from './rs-codec.js';

export const PARITY_MAGIC = 'fpr1';
export const PARITY_FORMAT_VERSION = 1;
/** Bytes of the record before its members. */
export const RECORD_FIXED_BYTES = 12;
export const RECORD_MEMBER_BYTES = 69;
/** The index byte and its padding, after the record. */
export const PARITY_INDEX_BYTES = 4;
/**
 * Members are at most this large: a stripe then needs at most (k + m) x this much memory (30 x 16
 * MiB at the largest shape), also when a hostile record claims it. Blocks are at most 4 MiB and
 * packs about 4 MiB; a larger object is left out of stripes.
 */
export const MAX_MEMBER_BYTES = 16 * 1024 * 1024;

/** The kinds a stripe protects: what holds file contents and metadata (refs are mutable, and tiny). */
export type MemberKind = 'data' | 'meta' | 'pack' | 'index';
export const MEMBER_KINDS: readonly MemberKind[] = ['data', 'meta', 'pack', 'index'];
const KIND_CODES: Record<MemberKind, number> = { data: 1, meta: 2, pack: 3, index: 4 };
const CODE_KINDS = new Map<number, MemberKind>(Object.entries(KIND_CODES).map(([k, c]) => [c, k as MemberKind]));

/** Whether a member's id is the hash of its bytes (so that a reader can check it without the record). */
export function isContentAddressed(kind: FragmentKind): boolean {
  return kind === 'data' || kind === 'meta' || kind === 'pack';
}

export interface StripeMember {
  kind: MemberKind;
  id: string;
  /** BLAKE3-256 of the stored bytes, hex. */
  hash: string;
  /** Stored bytes. */
  size: number;
}

export interface StripeRecord {
  members: StripeMember[];
  /** Parity objects of the stripe. */
  m: number;
  shardSize: number;
}

export interface ParityHeader extends StripeRecord {
  /** BLAKE3-256 of the record: names the stripe. */
  stripeId: string;
  /** Which parity shard (0..m-1) this object holds. */
  index: number;
  /** Bytes before the shard. */
  headerBytes: number;
}

export function memberKey(kind: FragmentKind, id: string): string {
  return `${kind}:${id}`;
}

export function encodeRecord(r: StripeRecord): Buffer {
  const n = r.members.length;
  if (n < 1 || n > RS_MAX_K || r.m < 1 || r.m > RS_MAX_M) throw new FragfsError('INVALID', `no stripe of ${n} members and ${r.m} parity objects`);
  if (r.shardSize % SHARD_ALIGN !== 0 || r.shardSize < SHARD_ALIGN) throw new FragfsError('INVALID', `shard size ${r.shardSize} is not a multiple of ${SHARD_ALIGN}`);
  const out = Buffer.alloc(RECORD_FIXED_BYTES + n * RECORD_MEMBER_BYTES);
  out.write(PARITY_MAGIC, 0, 'latin1');
  out[4] = PARITY_FORMAT_VERSION;
  out[5] = n;
  out[6] = r.m;
  out.writeUInt32LE(r.shardSize, 8);
  let at = RECORD_FIXED_BYTES;
  for (const mb of r.members) {
    if (mb.size > r.shardSize) throw new FragfsError('INVALID', `member ${mb.id} is larger than the shard`);
    out[at] = KIND_CODES[mb.kind];
    out.write(mb.id, at + 1, 'hex');
    out.write(mb.hash, at + 33, 'hex');
    out.writeUInt32LE(mb.size, at + 65);
    at += RECORD_MEMBER_BYTES;
  }
  return out;
}

/** The parity object holding shard `index` of the stripe. */
export function encodeParity(record: Buffer, index: number, shard: Uint8Array): Buffer {
  const head = Buffer.alloc(PARITY_INDEX_BYTES);
  head[0] = index;
  return Buffer.concat([record, head, shard]);
}

function corrupt(id: string, why: string): FragfsError {
  return new FragfsError('CORRUPT', `parity object ${id}: ${why}`, { fragmentId: id });
}

/** How many bytes to read to have the whole header, given its first RECORD_FIXED_BYTES. */
export function headerBytesOf(fixed: Uint8Array, id = '-'): number {
  if (fixed.length < RECORD_FIXED_BYTES || Buffer.from(fixed.subarray(0, 4)).toString('latin1') !== PARITY_MAGIC) throw corrupt(id, 'no parity record');
  if (fixed[4] !== PARITY_FORMAT_VERSION) throw corrupt(id, `unknown parity format ${fixed[4]}`);
  const n = fixed[5]!;
  if (n < 1 || n > RS_MAX_K) throw corrupt(id, `${n} members`);
  return RECORD_FIXED_BYTES + n * RECORD_MEMBER_BYTES + PARITY_INDEX_BYTES;
}

/** The header of a parity object (its first headerBytesOf bytes, or all of it). CORRUPT when it does not parse. */
export function decodeParityHeader(bytes: Uint8Array, id = '-'): ParityHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = headerBytesOf(b, id);
  if (b.length < headerBytes) throw corrupt(id, 'shorter than its record');
  const n = b[5]!;
  const m = b[6]!;
  const shardSize = b.readUInt32LE(8);
  if (m < 1 || m > RS_MAX_M) throw corrupt(id, `${m} parity objects`);
  if (b[7] !== 0 || shardSize < SHARD_ALIGN || shardSize % SHARD_ALIGN !== 0 || shardSize > MAX_MEMBER_BYTES) throw corrupt(id, `shard size ${shardSize}`);
  const members: StripeMember[] = [];
  let at = RECORD_FIXED_BYTES;
  for (let i = 0; i < n; i++) {
    const kind = CODE_KINDS.get(b[at]!);
    if (kind === undefined) throw corrupt(id, `member kind ${b[at]}`);
    const size = b.readUInt32LE(at + 65);
    if (size > shardSize) throw corrupt(id, 'a member larger than the shard');
    members.push({ kind, id: b.toString('hex', at + 1, at + 33), hash: b.toString('hex', at + 33, at + 65), size });
    at += RECORD_MEMBER_BYTES;
  }
  // Canonical: the shard is the longest member rounded up, never more (a writer makes no other).
  if (shardSize !== shardSizeFor(Math.max(...members.map((mb) => mb.size)))) throw corrupt(id, `shard size ${shardSize} for members of at most ${Math.max(...members.map((mb) => mb.size))} bytes`);
  const index = b[at]!;
  if (index >= m || b[at + 1] !== 0 || b[at + 2] !== 0 || b[at + 3] !== 0) throw corrupt(id, `parity index ${index}`);
  return { members, m, shardSize, index, headerBytes, stripeId: toHex(blake3(b.subarray(0, at))) };
}
