// The pack object (docs/FORMAT.md section 3.5): small fragments of one space and kind stored end to
// end in one object, followed by their index sealed under a key of the space, so that the index can
// always be rebuilt from the packs themselves and a pack tells nobody without the key which ids,
// how many or how large the fragments in it are.
//
//   pack    = fragment_0 || fragment_1 || ... || fragment_{n-1} || sealed || u32le(len(sealed)) || "fpk1"
//   sealed  = nonce(12) || AES-256-GCM(packIndexKey, nonce, aad = "fragfs pack index v1", plain)
//   plain   = msgpack [1, kind, [[id(32 bytes), offset, length], ...]]   (entries in pack order)
//
// A pack's own id is the BLAKE3-256 of all its bytes, as every fragment's is.

import { randomBytes } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import { gcmOpen, gcmSeal } from '../codec/aes-gcm.js';
import { blake3DeriveKey } from '../codec/blake3.js';
import { FragfsError } from '../errors.js';

/** BLAKE3 derive_key context of the key that seals pack indexes (from the master key). Fixed forever. */
export const PACK_INDEX_KEY_CONTEXT = 'fragfs 2026-11 pack index key v1';
export const PACK_INDEX_AAD = 'fragfs pack index v1';
export const PACK_MAGIC = 'fpk1';
export const PACK_FORMAT_VERSION = 1;
/** The fixed tail: the sealed index's length (u32le) and the magic. */
export const PACK_TAIL_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/**
 * An index larger than this is refused before it is read: a pack holds at most MAX_PACK_ENTRIES
 * fragments of ~45 bytes of index each. Keeps a hostile length from asking for gigabytes.
 */
export const MAX_PACK_ENTRIES = 65_536;
export const MAX_SEALED_INDEX_BYTES = NONCE_BYTES + TAG_BYTES + 16 + MAX_PACK_ENTRIES * 48;

export type PackedKind = 'data' | 'meta';

/** Where one fragment lies in its pack. */
export interface PackEntry {
  id: string;
  offset: number;
  length: number;
}

export interface PackIndex {
  kind: PackedKind;
  readonly entries: PackEntry[];
}

/**
 * An index as opened from its bytes: the entries' offsets, lengths and lookup keys in typed arrays,
 * and `entries` (hex ids) made only when asked for. Loading a store's packs into its table needs no
 * hex id: making one per fragment, and the objects, was most of opening a store of many fragments.
 */
export class OpenedPackIndex implements PackIndex {
  private listed: PackEntry[] | undefined;

  constructor(
    readonly kind: PackedKind,
    /** The entries' ids, 32 bytes each (views of the opened index). */
    private readonly ids: readonly Uint8Array[],
    readonly offsets: Float64Array,
    readonly lengths: Float64Array,
    /** Entry i's id as two numbers at 2i and 2i + 1: its bytes 0-5 and 6-11, big-endian (PackTable's key). */
    readonly keys: Float64Array,
  ) {}

  get count(): number {
    return this.ids.length;
  }

  get entries(): PackEntry[] {
    return (this.listed ??= this.ids.map((id, i) => ({ id: hexOf(id), offset: this.offsets[i]!, length: this.lengths[i]! })));
  }
}

function hexOf(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function packIndexKeyOf(masterKey: Uint8Array): Uint8Array {
  return blake3DeriveKey(PACK_INDEX_KEY_CONTEXT, masterKey);
}

/** The pack of `fragments` (in this order) with its sealed index. */
export function buildPack(
  key: Uint8Array,
  kind: PackedKind,
  fragments: readonly { id: string; bytes: Uint8Array }[],
  /** Fixed only by the test vectors: every pack gets a random one. */
  nonce: Uint8Array = randomBytes(NONCE_BYTES),
): Buffer {
  if (fragments.length === 0 || fragments.length > MAX_PACK_ENTRIES) {
    throw new FragfsError('INVALID', `a pack holds 1..${MAX_PACK_ENTRIES} fragments, not ${fragments.length}`);
  }
  const entries: [Buffer, number, number][] = [];
  let offset = 0;
  for (const f of fragments) {
    entries.push([Buffer.from(f.id, 'hex'), offset, f.bytes.length]);
    offset += f.bytes.length;
  }
  const sealed = sealIndex(key, packr.pack([PACK_FORMAT_VERSION, kind, entries]), nonce);
  const tail = Buffer.alloc(PACK_TAIL_BYTES);
  tail.writeUInt32LE(sealed.length, 0);
  tail.write(PACK_MAGIC, 4, 'latin1');
  return Buffer.concat([...fragments.map((f) => f.bytes), sealed, tail]);
}

export function sealIndex(key: Uint8Array, plain: Uint8Array, nonce: Uint8Array = randomBytes(NONCE_BYTES)): Buffer {
  return Buffer.concat([nonce, gcmSeal(key, nonce, plain, Buffer.from(PACK_INDEX_AAD, 'latin1'))]);
}

/**
 * How many bytes at the end of a pack of `packBytes` hold its sealed index and tail, read from the
 * last PACK_TAIL_BYTES. Throws CORRUPT when the tail is not a pack's.
 */
export function trailerLengthOf(tail: Uint8Array, packBytes: number, what: string): number {
  if (tail.length !== PACK_TAIL_BYTES || Buffer.from(tail.subarray(4)).toString('latin1') !== PACK_MAGIC) {
    throw new FragfsError('CORRUPT', `${what} is not a pack (no pack tail)`);
  }
  const sealedBytes = Buffer.from(tail).readUInt32LE(0);
  if (sealedBytes < NONCE_BYTES + TAG_BYTES || sealedBytes > MAX_SEALED_INDEX_BYTES || sealedBytes + PACK_TAIL_BYTES > packBytes) {
    throw new FragfsError('CORRUPT', `${what} declares an index of ${sealedBytes} bytes, impossible in ${packBytes} bytes`);
  }
  return sealedBytes + PACK_TAIL_BYTES;
}

/**
 * A sealed index (an index object, or a pack's trailer without its tail) opened and checked:
 * entries end to end from offset 0, no id twice, and, given the pack's size, ending where the
 * sealed index begins. Without the size (a pack in the trash, whose size not every backend can
 * tell) that last check is left out.
 */
export function openSealedIndex(key: Uint8Array, sealed: Uint8Array, what: string, packBytes?: number): OpenedPackIndex {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new FragfsError('CORRUPT', `${what}: pack index too short`);
  const plain = gcmOpen(key, sealed.subarray(0, NONCE_BYTES), sealed.subarray(NONCE_BYTES), Buffer.from(PACK_INDEX_AAD, 'latin1'));
  if (plain === undefined) throw new FragfsError('CORRUPT', `${what}: its index does not open with this space's key (damaged, or another space's)`);
  let v: unknown;
  try {
    v = unpackr.unpack(plain);
  } catch {
    throw new FragfsError('CORRUPT', `${what}: its index is not msgpack`);
  }
  const bad = (why: string): FragfsError => new FragfsError('CORRUPT', `${what}: bad pack index (${why})`);
  if (!Array.isArray(v) || v.length !== 3) throw bad('not [version, kind, entries]');
  const [version, kind, list] = v as [unknown, unknown, unknown];
  if (version !== PACK_FORMAT_VERSION) throw bad(`version ${String(version)}, this fragfs reads ${PACK_FORMAT_VERSION}`);
  if (kind !== 'data' && kind !== 'meta') throw bad(`kind ${String(kind)}`);
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PACK_ENTRIES) throw bad('no entries');
  // Ids by their first 48 bits: a Set of the 64-character hex strings cost more than the rest of
  // the entry. Two ids of one pack that share 48 bits (about 1 pack in 100,000) are compared whole.
  const firstOf = new Map<number, number>();
  const n = list.length;
  const keys = new Float64Array(n * 2);
  const offsets = new Float64Array(n);
  const lengths = new Float64Array(n);
  const ids: Uint8Array[] = [];
  let next = 0;
  for (const e of list as unknown[]) {
    if (!Array.isArray(e) || e.length !== 3) throw bad('an entry is not [id, offset, length]');
    const [id, offset, length] = e as [unknown, unknown, unknown];
    if (!(id instanceof Uint8Array) || id.length !== 32) throw bad('an id is not 32 bytes');
    if (offset !== next || !Number.isSafeInteger(length) || (length as number) <= 0) throw bad('entries do not lie end to end');
    next += length as number;
    if (next > 2 ** 40) throw bad('entries past any pack size');
    const i = ids.length;
    const bytes = Buffer.from(id.buffer, id.byteOffset, id.byteLength);
    const key = bytes.readUIntBE(0, 6);
    const prior = firstOf.get(key);
    if (prior === undefined) firstOf.set(key, i);
    else if (ids.some((x, j) => j >= prior && bytes.equals(x))) throw bad(`fragment ${hexOf(id)} twice`);
    keys[2 * i] = key;
    keys[2 * i + 1] = bytes.readUIntBE(6, 6);
    offsets[i] = offset as number;
    lengths[i] = length as number;
    ids.push(id);
  }
  if (packBytes !== undefined && next !== packBytes - sealed.length - PACK_TAIL_BYTES) {
    throw bad(`its entries end at ${next}, the index begins at ${packBytes - sealed.length - PACK_TAIL_BYTES}`);
  }
  return new OpenedPackIndex(kind, ids, offsets, lengths, keys);
}

/** The sealed index of a whole pack held in memory (what its index object holds). */
export function sealedIndexOf(pack: Uint8Array, what: string): Uint8Array {
  if (pack.length < PACK_TAIL_BYTES) throw new FragfsError('CORRUPT', `${what} is not a pack (${pack.length} bytes)`);
  const trailerBytes = trailerLengthOf(pack.subarray(pack.length - PACK_TAIL_BYTES), pack.length, what);
  return pack.subarray(pack.length - trailerBytes, pack.length - PACK_TAIL_BYTES);
}

/** The index of a whole pack held in memory. */
export function readPackIndex(key: Uint8Array, pack: Uint8Array, what: string): OpenedPackIndex {
  return openSealedIndex(key, sealedIndexOf(pack, what), what, pack.length);
}
