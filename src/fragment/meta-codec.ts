// Metadata objects <-> meta fragments: msgpack (meta-schema.ts), zstd when it saves space, AES-256-GCM
// in a SOLMET frame; id = BLAKE3 of the frame. Snapshots and refs (and every object of versions 1 and
// 2) are sealed under the space's metadata key with a synthetic nonce; dir and manifest objects of
// version 3 under a key of their own, convergent within the space, that the entry naming them carries
// (so a folder can be read with its key alone) and that the body also holds sealed for the space.
// Deterministic by design: equal objects give equal bytes and ids, so unchanged directories dedup.

import { createCipheriv } from 'node:crypto';
import { compress, decompress } from 'zstd-napi';
import { FragfsError } from '../errors.js';
import { gcmOpen, gcmSeal } from '../codec/aes-gcm.js';
import { blake3, blake3Keyed, toHex } from '../codec/blake3.js';
import { META_VERSION_OWN_KEYS, type MetaObject } from './tree-format.js';
import {
  META_COMPRESSION_NONE,
  META_COMPRESSION_ZSTD,
  META_ENCRYPTION_AES256GCM_OWN_KEY,
  META_ENCRYPTION_AES256GCM_SIV,
  packPlain,
  packSolmet,
  plainUnpackr,
  unpackSolmet,
} from './solmet.js';
import { checkMetaObject, failWith, metaFromWire, metaToWire } from './meta-schema.js';

/** The space's metadata keys (keys.ts derives them from the master key). Both MUST be 32 bytes. */
export interface MetaKeys {
  /** AES-256-GCM key of every metadata body. */
  metaKey: Uint8Array;
  /** Keyed-BLAKE3 key that turns a body into its nonce. */
  metaNonceKey: Uint8Array;
  /**
   * Keyed-BLAKE3 key that turns a dir or manifest body into its own key (version 3 objects). Needed
   * to write them; reading never needs it.
   */
  treeKeySecret?: Uint8Array;
}

/** What opens one meta fragment: the space's keys, the fragment's own key (from the entry naming it), or both. */
export interface MetaOpener {
  space?: MetaKeys;
  fragmentKey?: Uint8Array;
}

export const META_NONCE_BYTES = 12;
export const META_TAG_BYTES = 16;
export const META_OWN_KEY_BYTES = 32;
/** The own key sealed for the space: ciphertext(32) || tag(16). */
const WRAPPED_KEY_BYTES = META_OWN_KEY_BYTES + META_TAG_BYTES;
/** Associated data of the sealed own key: binds those 48 bytes to this use of the metadata key. */
const OWN_KEY_AAD = Buffer.from('fragfs tree key v1', 'utf8');
const ZERO_NONCE = Buffer.alloc(META_NONCE_BYTES);
/** zstd level for metadata: objects are small and written once per change, so a bit more effort pays. */
export const META_ZSTD_LEVEL = 3;
/** Largest plaintext a meta fragment may decompress to; a bigger one is treated as corrupt. */
export const META_MAX_PLAIN_BYTES = 256 * 1024 * 1024;

function checkKeys(keys: MetaKeys): void {
  if (!(keys?.metaKey instanceof Uint8Array) || keys.metaKey.length !== 32) {
    throw new FragfsError('INVALID', 'metadata key must be 32 bytes');
  }
  if (!(keys.metaNonceKey instanceof Uint8Array) || keys.metaNonceKey.length !== 32) {
    throw new FragfsError('INVALID', 'metadata nonce key must be 32 bytes');
  }
}

/** nonce(12) || AES-256-GCM(metaKey, nonce, x) || tag(16), nonce = BLAKE3-keyed(metaNonceKey, x)[0..12). */
export function sealMetaBody(x: Uint8Array, keys: MetaKeys): Uint8Array {
  const nonce = blake3Keyed(keys.metaNonceKey, x).subarray(0, META_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keys.metaKey, nonce, { authTagLength: META_TAG_BYTES });
  const ct = cipher.update(x);
  cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(META_NONCE_BYTES + ct.length + META_TAG_BYTES);
  out.set(nonce, 0);
  out.set(ct, META_NONCE_BYTES);
  out.set(tag, META_NONCE_BYTES + ct.length);
  return out;
}

/** The inverse of sealMetaBody; undefined when the tag does not verify (wrong key or damage). */
export function openMetaBody(body: Uint8Array, keys: MetaKeys): Uint8Array | undefined {
  if (body.length < META_NONCE_BYTES + META_TAG_BYTES) return undefined;
  return gcmOpen(keys.metaKey, body.subarray(0, META_NONCE_BYTES), body.subarray(META_NONCE_BYTES));
}

/**
 * Own-key body (FORMAT.md 2.2.1): key = BLAKE3-keyed(treeKeySecret, x); wrapNonce =
 * BLAKE3-keyed(metaNonceKey, key)[0..12); body = wrapNonce || AES-256-GCM(metaKey, wrapNonce, key,
 * aad "fragfs tree key v1") || AES-256-GCM(key, zero nonce, x). The key is used for this one
 * plaintext only, so the fixed nonce never repeats under it.
 */
export function sealOwnKeyBody(x: Uint8Array, keys: MetaKeys): { body: Uint8Array; key: Uint8Array } {
  if (!(keys.treeKeySecret instanceof Uint8Array) || keys.treeKeySecret.length !== 32) {
    throw new FragfsError('INVALID', 'writing a version 3 dir or manifest needs the tree key secret');
  }
  const key = blake3Keyed(keys.treeKeySecret, x);
  const wrapNonce = blake3Keyed(keys.metaNonceKey, key).subarray(0, META_NONCE_BYTES);
  const wrapped = gcmSeal(keys.metaKey, wrapNonce, key, OWN_KEY_AAD);
  const sealed = gcmSeal(key, ZERO_NONCE, x);
  const body = new Uint8Array(META_NONCE_BYTES + WRAPPED_KEY_BYTES + sealed.length);
  body.set(wrapNonce, 0);
  body.set(wrapped, META_NONCE_BYTES);
  body.set(sealed, META_NONCE_BYTES + WRAPPED_KEY_BYTES);
  return { body, key: new Uint8Array(key) };
}

/** The own key sealed in an own-key body, opened with the space's keys; undefined when it does not open. */
export function ownKeyOf(body: Uint8Array, keys: MetaKeys): Uint8Array | undefined {
  if (body.length < META_NONCE_BYTES + WRAPPED_KEY_BYTES + META_TAG_BYTES) return undefined;
  const key = gcmOpen(keys.metaKey, body.subarray(0, META_NONCE_BYTES), body.subarray(META_NONCE_BYTES, META_NONCE_BYTES + WRAPPED_KEY_BYTES), OWN_KEY_AAD);
  return key?.length === META_OWN_KEY_BYTES ? key : undefined;
}

/** x from an own-key body and its key; undefined when the tag does not verify. */
export function openOwnKeyBody(body: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  if (body.length < META_NONCE_BYTES + WRAPPED_KEY_BYTES + META_TAG_BYTES || key.length !== META_OWN_KEY_BYTES) return undefined;
  return gcmOpen(key, ZERO_NONCE, body.subarray(META_NONCE_BYTES + WRAPPED_KEY_BYTES));
}

/** Whether objects of this kind and version are sealed under their own key (2.2.1). */
export function hasOwnKey(obj: Pick<MetaObject, 'kind' | 'v'>): boolean {
  return (obj.kind === 'dir' || obj.kind === 'manifest') && obj.v >= META_VERSION_OWN_KEYS;
}

/**
 * The meta fragment of `obj` and its id. Throws INVALID when the object breaks the schema (so a bad
 * tree is caught where it is written, not when it is read back).
 */
export function encodeMeta(obj: MetaObject, keys: MetaKeys): { id: string; bytes: Uint8Array; key?: Uint8Array } {
  checkKeys(keys);
  checkMetaObject(failWith('INVALID'), obj);
  const plain = packPlain(metaToWire(obj));
  const zipped = compress(plain, { compressionLevel: META_ZSTD_LEVEL });
  const useZstd = zipped.length < plain.length;
  const x = useZstd ? new Uint8Array(zipped.buffer, zipped.byteOffset, zipped.byteLength) : plain;
  const compression = useZstd ? META_COMPRESSION_ZSTD : META_COMPRESSION_NONE;
  if (hasOwnKey(obj)) {
    const { body, key } = sealOwnKeyBody(x, keys);
    const bytes = packSolmet({ encryption: META_ENCRYPTION_AES256GCM_OWN_KEY, compression, body });
    return { id: toHex(blake3(bytes)), bytes, key };
  }
  const bytes = packSolmet({ encryption: META_ENCRYPTION_AES256GCM_SIV, compression, body: sealMetaBody(x, keys) });
  return { id: toHex(blake3(bytes)), bytes };
}

/**
 * The own key of meta fragment `bytes` (checked against `id`), opened with the space's keys;
 * undefined for a fragment sealed under the space's metadata key (versions 1 and 2, snapshots, refs).
 * CORRUPT when the sealed key does not open.
 */
export function fragmentKeyOf(bytes: Uint8Array, id: string, keys: MetaKeys): Uint8Array | undefined {
  const fail = failWith('CORRUPT', id);
  if (toHex(blake3(bytes)) !== id) fail('its BLAKE3 hash does not match its id');
  const frame = unpackSolmet(bytes, id);
  if (frame.encryption !== META_ENCRYPTION_AES256GCM_OWN_KEY) return undefined;
  return ownKeyOf(frame.body, keys) ?? fail('its sealed key does not open (damaged, or written with another key)');
}

/**
 * The object in meta fragment `bytes` stored under `id`, after every check: BLAKE3(bytes) = id,
 * frame, AEAD tag, decompression, msgpack, schema. Any failure is FragfsError('CORRUPT') naming `id`
 * (a wrong metadata key looks the same as damage); an object from a newer fragfs is BAD_STORE.
 */
export function decodeMeta(bytes: Uint8Array, id: string, keys: MetaKeys | MetaOpener): MetaObject {
  const opener: MetaOpener = 'metaKey' in keys ? { space: keys } : keys;
  if (opener.space) checkKeys(opener.space);
  const fail = failWith('CORRUPT', id);
  if (!(bytes instanceof Uint8Array)) throw new FragfsError('INVALID', 'meta fragment must be bytes');
  if (toHex(blake3(bytes)) !== id) fail('its BLAKE3 hash does not match its id');
  const frame = unpackSolmet(bytes, id);
  let x: Uint8Array | undefined;
  if (frame.encryption === META_ENCRYPTION_AES256GCM_OWN_KEY) {
    // The key the naming entry carries first: it is all a share holds, and it skips one AEAD.
    const key = opener.fragmentKey ?? (opener.space ? ownKeyOf(frame.body, opener.space) : undefined);
    if (key === undefined && !opener.space) fail('its key is not known here');
    x = key === undefined ? undefined : openOwnKeyBody(frame.body, key);
  } else if (frame.encryption === META_ENCRYPTION_AES256GCM_SIV) {
    if (!opener.space) fail('it is sealed under the space\'s metadata key, which a share does not hold');
    x = openMetaBody(frame.body, opener.space!);
  } else {
    fail('it is not encrypted (fragfs always encrypts metadata)');
  }
  if (x === undefined) fail('the AEAD tag does not verify (damaged, or written with another key)');
  let plain: Uint8Array = x!;
  if (frame.compression === META_COMPRESSION_ZSTD) {
    try {
      const out = decompress(x!);
      plain = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (e) {
      fail(`zstd decompression failed (${(e as Error).message})`);
    }
    if (plain.length > META_MAX_PLAIN_BYTES) fail('it decompresses to more than the metadata size limit');
  }
  let value: unknown;
  try {
    value = plainUnpackr.unpack(plain);
  } catch (e) {
    fail(`its plaintext is not valid msgpack (${(e as Error).message})`);
  }
  const obj = metaFromWire(fail, (why) => {
    throw new FragfsError('BAD_STORE', `metadata fragment ${id} was written by a newer fragfs: ${why}`, {
      fragmentId: id,
    });
  }, value);
  checkMetaObject(fail, obj, true);
  // The encryption type is outside the AEAD: an object must be sealed the way its version says.
  if (hasOwnKey(obj) !== (frame.encryption === META_ENCRYPTION_AES256GCM_OWN_KEY)) {
    fail(`a ${obj.kind} object of version ${obj.v} sealed with encryption type ${frame.encryption}`);
  }
  return obj;
}
