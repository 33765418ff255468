// Metadata objects <-> meta fragments: msgpack (meta-schema.ts), zstd when it saves space, AES-256-GCM
// with a synthetic nonce under the space's metadata key, in a SOLMET frame; id = BLAKE3 of the frame.
// Deterministic by design: equal objects give equal bytes and ids, so unchanged directories dedup.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { compress, decompress } from 'zstd-napi';
import { FragfsError } from '../errors.js';
import { blake3, blake3Keyed, toHex } from '../codec/blake3.js';
import type { MetaObject } from './tree-format.js';
import {
  META_COMPRESSION_NONE,
  META_COMPRESSION_ZSTD,
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
}

export const META_NONCE_BYTES = 12;
export const META_TAG_BYTES = 16;
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
  const nonce = body.subarray(0, META_NONCE_BYTES);
  const ct = body.subarray(META_NONCE_BYTES, body.length - META_TAG_BYTES);
  const tag = body.subarray(body.length - META_TAG_BYTES);
  try {
    const d = createDecipheriv('aes-256-gcm', keys.metaKey, nonce, { authTagLength: META_TAG_BYTES });
    d.setAuthTag(tag);
    const a = d.update(ct);
    const b = d.final();
    const plain = b.length === 0 ? a : Buffer.concat([a, b]);
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
  } catch {
    return undefined;
  }
}

/**
 * The meta fragment of `obj` and its id. Throws INVALID when the object breaks the schema (so a bad
 * tree is caught where it is written, not when it is read back).
 */
export function encodeMeta(obj: MetaObject, keys: MetaKeys): { id: string; bytes: Uint8Array } {
  checkKeys(keys);
  checkMetaObject(failWith('INVALID'), obj);
  const plain = packPlain(metaToWire(obj));
  const zipped = compress(plain, { compressionLevel: META_ZSTD_LEVEL });
  const useZstd = zipped.length < plain.length;
  const x = useZstd ? new Uint8Array(zipped.buffer, zipped.byteOffset, zipped.byteLength) : plain;
  const bytes = packSolmet({
    encryption: META_ENCRYPTION_AES256GCM_SIV,
    compression: useZstd ? META_COMPRESSION_ZSTD : META_COMPRESSION_NONE,
    body: sealMetaBody(x, keys),
  });
  return { id: toHex(blake3(bytes)), bytes };
}

/**
 * The object in meta fragment `bytes` stored under `id`, after every check: BLAKE3(bytes) = id,
 * frame, AEAD tag, decompression, msgpack, schema. Any failure is FragfsError('CORRUPT') naming `id`
 * (a wrong metadata key looks the same as damage); an object from a newer fragfs is BAD_STORE.
 */
export function decodeMeta(bytes: Uint8Array, id: string, keys: MetaKeys): MetaObject {
  checkKeys(keys);
  const fail = failWith('CORRUPT', id);
  if (!(bytes instanceof Uint8Array)) throw new FragfsError('INVALID', 'meta fragment must be bytes');
  if (toHex(blake3(bytes)) !== id) fail('its BLAKE3 hash does not match its id');
  const frame = unpackSolmet(bytes, id);
  if (frame.encryption !== META_ENCRYPTION_AES256GCM_SIV) fail('it is not encrypted (fragfs always encrypts metadata)');
  const x = openMetaBody(frame.body, keys);
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
  checkMetaObject(fail, obj);
  return obj;
}
