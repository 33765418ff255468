// The inputs of the live state's golden vector (fixtures/vectors/live/live-v2.json): one record of
// each key form of docs/FORMAT.md section 4.2, with plaintexts of the lengths that matter to the
// keystream (empty, under one AES block, exactly one, several).

import { Kind, type LiveCrypto } from './live-crypto.js';

export interface LiveVectorCase {
  what: string;
  kind: Kind;
  id: number;
  /** index(kind, id, sub) */
  sub?: number;
  /** named(kind, id, name): the name's bytes, hex */
  name?: string;
  /** numbered(kind, id, member.kind, member.sub) */
  member?: { kind: Kind; sub: number };
  /** The value sealed under the record's key, hex. */
  plain: string;
}

export const LIVE_VECTOR_CASES: readonly LiveVectorCase[] = [
  { what: 'key check', kind: Kind.CHECK, id: 0, plain: Buffer.from('fragfs live state').toString('hex') },
  { what: 'inode 1 (an empty value)', kind: Kind.INODE, id: 1, plain: '' },
  { what: 'inode 2^40 + 5, sub 3 (16 bytes: one keystream block)', kind: Kind.INODE, id: 2 ** 40 + 5, sub: 3, plain: '000102030405060708090a0b0c0d0e0f' },
  { what: 'entry "caf\\xe9" (Latin-1) of directory 1', kind: Kind.DIRENTS, id: 1, name: '636166e9', plain: '000000000007' + '00008000' + '636166e9' },
  { what: 'block 2 of file 7', kind: Kind.EXTENTS, id: 7, member: { kind: Kind.EXTENT, sub: 2 }, plain: '00'.repeat(6) + 'ab'.repeat(66) },
  { what: 'xattr "user.k" of inode 9', kind: Kind.XATTRS, id: 9, name: Buffer.from('user.k').toString('hex'), plain: '06' + Buffer.from('user.kvalue').toString('hex') },
  { what: 'orphan 12', kind: Kind.ORPHAN, id: 0, member: { kind: Kind.ORPHAN, sub: 12 }, plain: '00000000000c' },
];

/** The LMDB key of a case, as `crypto` makes it. */
export function vectorKey(crypto: LiveCrypto, c: LiveVectorCase): Buffer {
  if (c.name !== undefined) return crypto.named(c.kind, c.id, Buffer.from(c.name, 'hex'));
  if (c.member !== undefined) return crypto.numbered(c.kind, c.id, c.member.kind, c.member.sub);
  return crypto.index(c.kind, c.id, c.sub ?? 0);
}
