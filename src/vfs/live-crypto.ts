// Encryption of the live state at rest (docs/FORMAT.md section 4): every LMDB key is a keyed
// pseudorandom value that reveals only equality (the same inode, the same entry), and every value is
// sealed with AES-256-GCM under a key derived from the space's master key, bound to its LMDB key.
// Whoever copies the store folder without the passphrase learns how many records there are and
// which entries, extents and attributes belong to the same inode, and nothing else: no name, size,
// time, block key or id.

import { createCipheriv, createDecipheriv, type Cipher } from 'node:crypto';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { FragfsError } from '../errors.js';

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
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES;
const MAX_ID = 2 ** 48 - 1;

export class LiveCrypto {
  /** AES-256 as a pseudorandom permutation of one 16-byte block (ECB of one block, no padding). */
  private readonly prp: Cipher;
  private readonly block = Buffer.alloc(16);
  private readonly nameHasher: Blake3Hasher;
  private readonly nonceHasher: Blake3Hasher;
  private readonly valueKey: Buffer;

  constructor(keys: LiveKeys) {
    for (const [k, v] of Object.entries(keys)) {
      if (!(v instanceof Uint8Array) || v.length !== 32) throw new FragfsError('INVALID', `live state ${k} key must be 32 bytes`);
    }
    this.prp = createCipheriv('aes-256-ecb', keys.index, null);
    this.prp.setAutoPadding(false);
    this.nameHasher = Blake3Hasher.newKeyed(Buffer.from(keys.name));
    this.nonceHasher = Blake3Hasher.newKeyed(Buffer.from(keys.nonce));
    this.valueKey = Buffer.from(keys.value);
  }

  /**
   * The 16-byte index of (kind, id, sub): AES_indexKey(kind || id (6 bytes BE) || sub (6 bytes BE) ||
   * 3 zero bytes). A permutation, so distinct inputs never share a key.
   */
  index(kind: Kind, id: number, sub = 0): Buffer {
    if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID || !Number.isSafeInteger(sub) || sub < 0 || sub > MAX_ID) {
      throw new FragfsError('INVALID', `live state index out of range: ${id}/${sub}`);
    }
    const b = this.block;
    b.fill(0);
    b[0] = kind;
    b.writeUIntBE(id, 1, 6);
    b.writeUIntBE(sub, 7, 6);
    // ECB keeps no state between blocks: each update() is one independent block.
    return this.prp.update(b);
  }

  /** A member key of group (kind, id) named by bytes: prefix || BLAKE3-keyed(nameKey, kind || id || name)[0..16]. */
  named(kind: Kind, id: number, name: Uint8Array): Buffer {
    const key = Buffer.allocUnsafe(GROUP_KEY_BYTES);
    this.index(kind, id).copy(key, 0);
    const head = Buffer.allocUnsafe(7);
    head[0] = kind;
    head.writeUIntBE(id, 1, 6);
    const h = this.nameHasher;
    h.reset();
    h.update(head);
    h.update(Buffer.from(name.buffer, name.byteOffset, name.byteLength));
    h.digestBuffer().copy(key, INDEX_BYTES, 0, INDEX_BYTES);
    return key;
  }

  /** A member key of group (kind, id) numbered `sub`: prefix || index(kind + 1, id, sub). */
  numbered(kind: Kind, id: number, memberKind: Kind, sub: number): Buffer {
    return Buffer.concat([this.index(kind, id), this.index(memberKind, id, sub)], GROUP_KEY_BYTES);
  }

  /**
   * Seals a value under its LMDB key: nonce = BLAKE3-keyed(nonceKey, key || plain)[0..12] (a
   * synthetic nonce, as for metadata fragments: equal values under equal keys seal alike, and a
   * nonce never repeats for two different messages), then AES-256-GCM(valueKey, nonce, aad = key).
   * Output: nonce || ciphertext || tag.
   */
  seal(key: Uint8Array, plain: Uint8Array): Buffer {
    const h = this.nonceHasher;
    h.reset();
    h.update(Buffer.from(key.buffer, key.byteOffset, key.byteLength));
    h.update(Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength));
    const nonce = h.digestBuffer().subarray(0, NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', this.valueKey, nonce);
    c.setAAD(key);
    const body = c.update(plain);
    c.final();
    return Buffer.concat([nonce, body, c.getAuthTag()], NONCE_BYTES + body.length + TAG_BYTES);
  }

  /** The value sealed under `key`; CORRUPT when it does not authenticate (damage, or another space's state). */
  open(key: Uint8Array, sealed: Uint8Array): Buffer {
    if (sealed.length < SEAL_OVERHEAD_BYTES) throw corrupt();
    const s = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    try {
      const d = createDecipheriv('aes-256-gcm', this.valueKey, s.subarray(0, NONCE_BYTES));
      d.setAAD(key);
      d.setAuthTag(s.subarray(s.length - TAG_BYTES));
      const out = d.update(s.subarray(NONCE_BYTES, s.length - TAG_BYTES));
      d.final();
      return out;
    } catch {
      throw corrupt();
    }
  }
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
