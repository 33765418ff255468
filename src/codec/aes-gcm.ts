// AES-256-GCM (NIST SP 800-38D) with a 96-bit nonce and a 128-bit tag appended to the ciphertext, on
// node:crypto (OpenSSL): the one seal/open pair for what fragfs seals with it besides blocks (metadata
// bodies and their keys, sealed keys, slot descriptions, share bodies, admin records, lease holders).
// The same bytes as @noble/ciphers' `gcm(key, nonce, aad)` (a property test checks it against that
// one), without loading that module's tables into every command.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { FragfsError } from '../errors.js';

const KEY_BYTES = 32;
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

function checkKeyAndNonce(key: Uint8Array, nonce: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new FragfsError('INVALID', `AES-256-GCM takes a ${KEY_BYTES}-byte key`);
  if (!(nonce instanceof Uint8Array) || nonce.length !== GCM_NONCE_BYTES) {
    throw new FragfsError('INVALID', `AES-256-GCM takes a ${GCM_NONCE_BYTES}-byte nonce`);
  }
}

/** ciphertext || tag. */
export function gcmSeal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array, aad?: Uint8Array): Uint8Array {
  checkKeyAndNonce(key, nonce);
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
  if (aad) c.setAAD(aad);
  const body = c.update(plain);
  c.final(); // GCM is a stream mode: final() adds no bytes, it computes the tag.
  return Buffer.concat([body, c.getAuthTag()]);
}

/**
 * The plaintext of `sealed` (ciphertext || tag), or undefined when the tag does not verify: a wrong
 * key, nonce or AAD, or damage (GCM cannot tell these apart), or fewer bytes than a tag. A view, not
 * a copy: callers that keep key material copy it out.
 */
export function gcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array | undefined {
  checkKeyAndNonce(key, nonce);
  if (!(sealed instanceof Uint8Array) || sealed.length < GCM_TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
    if (aad) d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
    const a = d.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES));
    const b = d.final(); // throws on a tag that does not verify
    const plain = b.length === 0 ? a : Buffer.concat([a, b]);
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
  } catch {
    return undefined;
  }
}
