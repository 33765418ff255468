// AES-256-GCM (NIST SP 800-38D) with a 96-bit nonce and a 128-bit tag appended to the ciphertext, on
// node:crypto (OpenSSL), for the small things fragfs seals with it: keys, slot descriptions, share
// bodies, admin records. The same bytes as @noble/ciphers' `gcm(key, nonce, aad)` (a property test
// checks it against that one), without loading that module's tables into every command.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { FragfsError } from '../errors.js';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** encrypt: ciphertext || tag. decrypt: the plaintext; throws when the tag does not verify. */
export interface AesGcm {
  encrypt(plain: Uint8Array): Uint8Array;
  decrypt(sealed: Uint8Array): Uint8Array;
}

export function aesGcm(key: Uint8Array, nonce: Uint8Array, aad?: Uint8Array): AesGcm {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new FragfsError('INVALID', `AES-256-GCM takes a ${KEY_BYTES}-byte key`);
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) throw new FragfsError('INVALID', `AES-256-GCM takes a ${NONCE_BYTES}-byte nonce`);
  return {
    encrypt(plain) {
      const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
      if (aad) c.setAAD(aad);
      const body = c.update(plain);
      const last = c.final();
      return new Uint8Array(Buffer.concat([body, last, c.getAuthTag()]));
    },
    decrypt(sealed) {
      if (!(sealed instanceof Uint8Array) || sealed.length < TAG_BYTES) throw new FragfsError('CORRUPT', 'AES-256-GCM: sealed bytes shorter than the tag');
      const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
      if (aad) d.setAAD(aad);
      d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const body = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      // final() throws "Unsupported state or unable to authenticate data" on a bad tag.
      const last = d.final();
      return new Uint8Array(last.length === 0 ? body : Buffer.concat([body, last]));
    },
  };
}
