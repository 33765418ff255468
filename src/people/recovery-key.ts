// The recovery key of a space: 256 random bits shown once by `init`, written as 13 groups of 4
// Crockford base32 characters so it can be read aloud and typed back. It opens the space wherever a
// passphrase is asked: its form tells it apart, and being random it needs no slow KDF, only BLAKE3.

import { randomBytes } from 'node:crypto';
import { blake3, blake3DeriveKey } from '../codec/blake3.js';
import { FragfsError } from '../errors.js';

/** Crockford's base32 alphabet: no I, L, O, U, so nothing reads as another character. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const RECOVERY_KEY_BYTES = 32;
/** 52 characters carry 260 bits: the key's 256, then 4 bits of BLAKE3(key) to catch most typing mistakes. */
const RECOVERY_CHARS = 52;
const GROUP_CHARS = 4;
/** BLAKE3 derive_key context of the key that seals the master key in a recovery slot. Fixed forever. */
export const RECOVERY_WRAP_KEY_CONTEXT = 'fragfs 2026-11 recovery key wrapping key v1';

/** What a typed recovery key may look like: groups of base32 separated by dashes or spaces, any case. */
const FORM_RE = /^[0-9A-Za-z]{4}(?:[- ][0-9A-Za-z]{4}){12}$/;

function checkNibble(key: Uint8Array): number {
  return blake3(key)[0]! >> 4;
}

/** `key` (32 bytes) as it is shown: `XXXX-XXXX-...` (13 groups). */
export function formatRecoveryKey(key: Uint8Array): string {
  if (key.length !== RECOVERY_KEY_BYTES) throw new FragfsError('INVALID', `a recovery key is ${RECOVERY_KEY_BYTES} bytes`);
  let bits = 0n;
  for (const b of key) bits = (bits << 8n) | BigInt(b);
  bits = (bits << 4n) | BigInt(checkNibble(key));
  let text = '';
  for (let i = RECOVERY_CHARS - 1; i >= 0; i--) text += ALPHABET[Number((bits >> BigInt(5 * i)) & 31n)];
  return text.match(new RegExp(`.{${GROUP_CHARS}}`, 'g'))!.join('-');
}

/** A fresh recovery key, as shown to the user. */
export function newRecoveryKey(): string {
  return formatRecoveryKey(new Uint8Array(randomBytes(RECOVERY_KEY_BYTES)));
}

/** Whether `text` has the form of a recovery key (it is then tried as one before as a passphrase). */
export function looksLikeRecoveryKey(text: string): boolean {
  return FORM_RE.test(text.trim());
}

/**
 * The 32 bytes of a typed recovery key (Crockford's reading: O as 0, I and L as 1), or undefined
 * when it does not have the form or its check bits do not match (a typing mistake).
 */
export function parseRecoveryKey(text: string): Uint8Array | undefined {
  const t = text.trim();
  if (!FORM_RE.test(t)) return undefined;
  const chars = t.replace(/[- ]/g, '').toUpperCase().replace(/O/g, '0').replace(/[IL]/g, '1');
  let bits = 0n;
  for (const c of chars) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) return undefined;
    bits = (bits << 5n) | BigInt(v);
  }
  const check = Number(bits & 15n);
  bits >>= 4n;
  const key = new Uint8Array(RECOVERY_KEY_BYTES);
  for (let i = RECOVERY_KEY_BYTES - 1; i >= 0; i--) {
    key[i] = Number(bits & 255n);
    bits >>= 8n;
  }
  return checkNibble(key) === check ? key : undefined;
}

/** The key that seals the master key in a recovery slot: BLAKE3-derive(RECOVERY_WRAP_KEY_CONTEXT, key). */
export function recoveryWrapKey(key: Uint8Array): Uint8Array {
  return blake3DeriveKey(RECOVERY_WRAP_KEY_CONTEXT, key);
}
