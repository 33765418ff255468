// Encryption of the live state at rest (docs/FORMAT.md section 4): every LMDB key is a keyed
// pseudorandom value that reveals only equality (the same inode, the same entry), and every value is
// sealed (SIV: BLAKE3-keyed tag, AES-256-CTR) under keys derived from the space's master key, bound
// to its LMDB key.
// Whoever copies the store folder without the passphrase learns how many records there are and
// which entries, extents and attributes belong to the same inode, and nothing else: no name, size,
// time, block key or id.

import { createCipheriv, timingSafeEqual, type Cipher } from 'node:crypto';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { createBLAKE3, type IHasher } from 'hash-wasm';
import { FragfsError } from '../errors.js';
import { ByteLru } from './byte-lru.js';

/** BLAKE3 derive_key contexts of the live state's keys (from the master key). Fixed forever. */
export const LIVE_INDEX_KEY_CONTEXT = 'fragfs 2026-11 live state index key v1';
export const LIVE_NAME_KEY_CONTEXT = 'fragfs 2026-11 live state name key v1';
export const LIVE_VALUE_KEY_CONTEXT = 'fragfs 2026-11 live state value key v1';
export const LIVE_NONCE_KEY_CONTEXT = 'fragfs 2026-11 live state nonce key v1';

/** The four 32-byte keys, derived from the master key with the contexts above. */
export interface LiveKeys {
  index: Uint8Array;
  name: Uint8Array;
  value: Uint8Array;
  nonce: Uint8Array;
}

/** Record kinds: the first byte of every index block, so no two kinds share a key. */
export const Kind = {
  INODE: 1,
  DIRENTS: 2,
  EXTENTS: 3,
  EXTENT: 4,
  XATTRS: 5,
  ORPHAN: 6,
  DIR_CACHE: 7,
  CONTENT_CACHE: 8,
  COUNTER: 9,
  CHECK: 10,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** An index key (single record) or the prefix of a group's keys. */
export const INDEX_BYTES = 16;
/** A grouped key: the group's prefix, then a tag that tells its members apart. */
export const GROUP_KEY_BYTES = 32;
/** The synthetic IV, which is also the authentication tag. */
const TAG_BYTES = 16;
const MAX_ID = 2 ** 48 - 1;
const EMPTY = new Uint8Array(0);
/** What one remembered index key holds (its Buffer, backing store and map key), measured. */
export const INDEX_KEY_BYTES = 200;
/** Memory for remembered index keys unless the state says otherwise. */
const DEFAULT_INDEX_CACHE_BYTES = 4 * 1024 * 1024;
/**
 * Entry keys remembered: a create computes the same one three times (the kernel's LOOKUP, the
 * create's own check, the new entry), at a BLAKE3 call of ~13 us each here.
 */
const NAMED_CACHE_ENTRIES = 4096;

export class LiveCrypto {
  /** AES-256 (index key) as a pseudorandom permutation of one 16-byte block. */
  private readonly prp: Cipher;
  /** AES-256 (value key) in ECB over counter blocks: the CTR keystream of sealed values. */
  private readonly ctr: Cipher;
  private readonly block = Buffer.alloc(16);
  private counters = Buffer.allocUnsafeSlow(512);
  private scratch = Buffer.allocUnsafeSlow(512);
  private readonly nameHasher: Blake3Hasher;
  private readonly tagHasher: Blake3Hasher;
  /**
   * The same two keyed BLAKE3 hashers in WebAssembly, once made (asynchronously). Every record costs
   * one tag and most lookups a name hash, over a hundred bytes or so: a call into WebAssembly took
   * 0.35 us here where the native binding's three calls (reset, update, digest) took 1.7 us. Both
   * compute BLAKE3, so which one answers changes no byte (test/vfs/live-vectors.test.ts).
   */
  private nameWasm: IHasher | undefined;
  private tagWasm: IHasher | undefined;
  /** Index keys by (kind, id) for sub 0 (id x 16 + kind, exact below 2^52), else by a string. */
  private readonly indexCache: ByteLru<number | string, Buffer>;
  private readonly namedCache = new Map<string, Buffer>();
  /** Resolves once the WebAssembly hashers answer (or could not be made: the native ones go on). */
  readonly ready: Promise<void>;

  constructor(keys: LiveKeys, indexCacheBytes = DEFAULT_INDEX_CACHE_BYTES) {
    // A request computes the same few keys again and again; a walk computes each once.
    this.indexCache = new ByteLru(indexCacheBytes, () => INDEX_KEY_BYTES);
    for (const [k, v] of Object.entries(keys)) {
      if (!(v instanceof Uint8Array) || v.length !== 32) throw new FragfsError('INVALID', `live state ${k} key must be 32 bytes`);
    }
    // ECB keeps no state between blocks: each update() of whole blocks is independent.
    this.prp = createCipheriv('aes-256-ecb', keys.index, null);
    this.prp.setAutoPadding(false);
    this.ctr = createCipheriv('aes-256-ecb', keys.value, null);
    this.ctr.setAutoPadding(false);
    this.nameHasher = Blake3Hasher.newKeyed(Buffer.from(keys.name));
    this.tagHasher = Blake3Hasher.newKeyed(Buffer.from(keys.nonce));
    this.ready = Promise.all([createBLAKE3(256, new Uint8Array(keys.name)), createBLAKE3(256, new Uint8Array(keys.nonce))]).then(
      ([name, tag]) => {
        this.nameWasm = name;
        this.tagWasm = tag;
      },
      () => undefined,
    );
  }

  /** BLAKE3-keyed(`h`'s key, input)[0..16]: through WebAssembly once it is ready. */
  private static first16(native: Blake3Hasher, wasm: IHasher | undefined, input: Uint8Array): Uint8Array {
    if (wasm !== undefined) return wasm.init().update(input).digest('binary').subarray(0, TAG_BYTES);
    native.reset();
    native.update(input as Buffer);
    return native.digestBuffer().subarray(0, TAG_BYTES);
  }

  /**
   * The 16-byte index of (kind, id, sub): AES_indexKey(kind || id (6 bytes BE) || sub (6 bytes BE) ||
   * 3 zero bytes). A permutation, so distinct inputs never share a key. The caller MUST NOT change it.
   */
  index(kind: Kind, id: number, sub = 0): Buffer {
    const memo = sub === 0 && Number.isSafeInteger(id) && id >= 0 && id <= MAX_ID ? id * 16 + kind : `${kind}.${id}.${sub}`;
    const hit = this.indexCache.get(memo);
    if (hit !== undefined) return hit;
    writeIndexInput(this.block, 0, kind, id, sub);
    const key = this.prp.update(this.block);
    this.indexCache.set(memo, key);
    return key;
  }

  /**
   * index(kind, id) of many ids (sub 0) with one AES call for those not remembered: a listing's
   * children are looked up together, and each call into node:crypto costs more than the AES itself.
   */
  indexMany(kind: Kind, ids: readonly number[]): Buffer[] {
    const out = new Array<Buffer>(ids.length);
    const missing: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const hit = this.indexCache.get(ids[i]! * 16 + kind);
      if (hit !== undefined) out[i] = hit;
      else missing.push(i);
    }
    if (missing.length === 0) return out;
    const blocks = Buffer.allocUnsafe(missing.length * 16);
    for (let j = 0; j < missing.length; j++) writeIndexInput(blocks, j * 16, kind, ids[missing[j]!]!, 0);
    // ECB enciphers each block on its own: block j is index(kind, ids[missing[j]]).
    const keys = this.prp.update(blocks);
    for (let j = 0; j < missing.length; j++) {
      const i = missing[j]!;
      const key = Buffer.from(keys.subarray(j * 16, j * 16 + 16));
      this.indexCache.set(ids[i]! * 16 + kind, key);
      out[i] = key;
    }
    return out;
  }

  /**
   * A member key of group (kind, id) named by bytes: prefix || BLAKE3-keyed(nameKey, kind || id ||
   * name)[0..16]. The caller MUST NOT change it.
   */
  named(kind: Kind, id: number, name: Uint8Array): Buffer {
    // latin1 maps each byte to one char: distinct names give distinct memo strings.
    const memo = `${kind}.${id}.${Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1')}`;
    const hit = this.namedCache.get(memo);
    if (hit !== undefined) return hit;
    const key = this.computeNamed(kind, id, name);
    if (this.namedCache.size >= NAMED_CACHE_ENTRIES) this.namedCache.clear();
    this.namedCache.set(memo, key);
    return key;
  }

  private computeNamed(kind: Kind, id: number, name: Uint8Array): Buffer {
    const key = Buffer.allocUnsafe(GROUP_KEY_BYTES);
    this.index(kind, id).copy(key, 0);
    const input = Buffer.allocUnsafe(7 + name.length);
    input[0] = kind;
    input.writeUIntBE(id, 1, 6);
    input.set(name, 7);
    key.set(LiveCrypto.first16(this.nameHasher, this.nameWasm, input), INDEX_BYTES);
    return key;
  }

  /** A member key of group (kind, id) numbered `sub`: prefix || index(memberKind, id, sub). */
  numbered(kind: Kind, id: number, memberKind: Kind, sub: number): Buffer {
    return Buffer.concat([this.index(kind, id), this.index(memberKind, id, sub)], GROUP_KEY_BYTES);
  }

  /** tag = BLAKE3-keyed(nonceKey, key || plain)[0..16]. */
  private tagOf(key: Uint8Array, plain: Uint8Array): Uint8Array {
    // key || plain laid out in one scratch buffer: one call into BLAKE3 and no allocation (a concat
    // per record read, or two updates, cost more).
    const n = key.length + plain.length;
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafeSlow(Math.max(n, 2 * this.scratch.length));
    this.scratch.set(key, 0);
    this.scratch.set(plain, key.length);
    return LiveCrypto.first16(this.tagHasher, this.tagWasm, this.scratch.subarray(0, n));
  }

  /** AES-256-CTR keystream of `n` bytes from the counter blocks tag[0..12] || i (32-bit BE), i = 0, 1, ... (`tag`: its first 16 bytes) */
  private keystream(tag: Uint8Array, n: number): Buffer {
    const blocks = Math.ceil(n / 16);
    // Counter blocks are built in one scratch buffer (records are small); the cipher copies them out.
    if (this.counters.length < blocks * 16) this.counters = Buffer.allocUnsafeSlow(Math.max(blocks * 16, 2 * this.counters.length));
    const counters = this.counters.subarray(0, blocks * 16);
    writeCounters(counters, 0, tag, blocks);
    return this.ctr.update(counters);
  }

  /**
   * Seals a value under its LMDB key with SIV (Rogaway and Shrimpton's synthetic-IV construction,
   * deterministic authenticated encryption): tag = BLAKE3-keyed(nonceKey, key || plain)[0..16] is
   * both the IV and the authenticator, then the plaintext is XORed with AES-256-CTR(valueKey) from
   * tag[0..12]. Output: tag || ciphertext. Equal values under equal keys seal alike (which reveals
   * only that they are equal); no nonce has to be stored or counted, so none can repeat after a crash;
   * the key in the tag binds a value to its place. One call into WebAssembly (BLAKE3) and one into
   * native code (AES), against the five an AES-GCM object costs in Node: a seal was a third of a
   * small-file create.
   */
  seal(key: Uint8Array, plain: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(TAG_BYTES + plain.length);
    out.set(this.tagOf(key, plain), 0);
    if (plain.length > 0) {
      const ks = this.keystream(out, plain.length);
      for (let i = 0; i < plain.length; i++) out[TAG_BYTES + i] = plain[i]! ^ ks[i]!;
    }
    return out;
  }

  /** The value sealed under `key`; CORRUPT when it does not authenticate (damage, or another space's state). */
  open(key: Uint8Array, sealed: Uint8Array): Buffer {
    if (sealed.length < TAG_BYTES) throw corrupt();
    const n = sealed.length - TAG_BYTES;
    return this.openWith(key, sealed, n > 0 ? this.keystream(sealed, n) : EMPTY, 0);
  }

  /**
   * The values sealed under `keys`, their keystreams made by one AES call (a listing's entries, its
   * children's inodes). CORRUPT as soon as one does not authenticate. Opening recomputes the tag
   * from the plaintext and compares it in constant time.
   */
  openMany(keys: readonly Uint8Array[], sealed: readonly Uint8Array[]): Buffer[] {
    let blocks = 0;
    for (const v of sealed) {
      if (v.length < TAG_BYTES) throw corrupt();
      blocks += Math.ceil((v.length - TAG_BYTES) / 16);
    }
    const counters = Buffer.allocUnsafe(blocks * 16);
    let at = 0;
    for (const v of sealed) at = writeCounters(counters, at, v, Math.ceil((v.length - TAG_BYTES) / 16));
    const ks = blocks > 0 ? this.ctr.update(counters) : counters;
    const out = new Array<Buffer>(sealed.length);
    let k = 0;
    for (let r = 0; r < sealed.length; r++) {
      const v = sealed[r]!;
      out[r] = this.openWith(keys[r]!, v, ks, k);
      k += Math.ceil((v.length - TAG_BYTES) / 16) * 16;
    }
    return out;
  }

  /** The plaintext of `sealed` (its keystream in `ks` from `ksAt`), once its tag authenticates it under `key`. */
  private openWith(key: Uint8Array, sealed: Uint8Array, ks: Uint8Array, ksAt: number): Buffer {
    const n = sealed.length - TAG_BYTES;
    const plain = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) plain[i] = sealed[TAG_BYTES + i]! ^ ks[ksAt + i]!;
    if (!timingSafeEqual(this.tagOf(key, plain), sealed.subarray(0, TAG_BYTES))) throw corrupt();
    return plain;
  }
}

/** kind || id (6 bytes BE) || sub (6 bytes BE) || 3 zero bytes at `at`: the input of index(). */
function writeIndexInput(out: Buffer, at: number, kind: Kind, id: number, sub: number): void {
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID || !Number.isSafeInteger(sub) || sub < 0 || sub > MAX_ID) {
    throw new FragfsError('INVALID', `live state index out of range: ${id}/${sub}`);
  }
  out.fill(0, at, at + 16);
  out[at] = kind;
  out.writeUIntBE(id, at + 1, 6);
  out.writeUIntBE(sub, at + 7, 6);
}

/** `blocks` CTR counter blocks tag[0..12] || i (32-bit BE) at `at`; returns where they end. */
function writeCounters(out: Buffer, at: number, tag: Uint8Array, blocks: number): number {
  for (let i = 0; i < blocks; i++, at += 16) {
    out.set(tag.subarray(0, 12), at);
    out.writeUInt32BE(i, at + 12);
  }
  return at;
}

function corrupt(): FragfsError {
  return new FragfsError('CORRUPT', 'the live state is damaged or belongs to another store (a record failed its AEAD tag check)');
}

/** The key after every key that starts with `prefix` (for LMDB range ends). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.alloc(end.length + 1, 0xff);
}
