// BLAKE3 for fragfs: plain hash (fragment ids), keyed hash (convergent block keys) and derive_key,
// on the native @napi-rs/blake-hash implementation, with checked hex helpers.

import { Blake3Hasher, blake3 as nativeBlake3 } from '@napi-rs/blake-hash';
import { FragfsError } from '../errors.js';

/** BLAKE3 output and key length in bytes. */
export const BLAKE3_OUT_LEN = 32;
export const BLAKE3_KEY_LEN = 32;

/** Returns an array that owns its whole 32-byte buffer (native results are Buffers; callers want plain bytes). */
function own(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** BLAKE3-256 of `bytes`. */
export function blake3(bytes: Uint8Array): Uint8Array {
  return own(nativeBlake3(bytes));
}

/**
 * Keyed BLAKE3-256 (MAC mode). `key` MUST be 32 bytes: the native binding aborts the whole process
 * on any other length, so this checks first.
 */
export function blake3Keyed(key: Uint8Array, bytes: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== BLAKE3_KEY_LEN) {
    throw new FragfsError('INVALID', `BLAKE3 key must be ${BLAKE3_KEY_LEN} bytes, got ${key?.length}`);
  }
  return own(keyedHasher(key).update(bytes).digestBuffer());
}

// Creating a native keyed hasher costs ~10 us, as much as hashing 2 KiB; the codec always uses the
// same key (the space's convergence secret), so the last one is kept and reset (reset keeps the key).
let lastKey: Uint8Array | undefined;
let lastHasher: Blake3Hasher | undefined;

function keyedHasher(key: Uint8Array): Blake3Hasher {
  if (lastHasher !== undefined && lastKey !== undefined && sameBytes(lastKey, key)) {
    lastHasher.reset(); // also clears a half-fed state left by an exception
    return lastHasher;
  }
  lastHasher = Blake3Hasher.newKeyed(key as Buffer);
  lastKey = new Uint8Array(key);
  return lastHasher;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** BLAKE3 derive_key mode: a 32-byte key for `context` (a fixed, application-unique string) from `material`. */
export function blake3DeriveKey(context: string, material: Uint8Array): Uint8Array {
  if (typeof context !== 'string' || context.length === 0) {
    throw new FragfsError('INVALID', 'BLAKE3 derive_key context must be a non-empty string');
  }
  return own(Blake3Hasher.deriveKey(context, material));
}

/** Lowercase hex of `b`. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Bytes of hex string `s` (either case); throws INVALID on odd length or a non-hex character. */
export function fromHex(s: string): Uint8Array {
  if (typeof s !== 'string' || !HEX_RE.test(s)) {
    const shown = typeof s === 'string' ? JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s) : typeof s;
    throw new FragfsError('INVALID', `not a hex string of whole bytes: ${shown}`);
  }
  return own(Buffer.from(s, 'hex'));
}

/** True when `s` is 64 lowercase hex digits: the form of every fragment id and meta key. */
export function isHexId(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}
