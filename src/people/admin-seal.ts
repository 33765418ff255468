// What only the space's holders may read about its people (group names and members, who a folder was
// shared with and from where): JSON sealed with AES-256-GCM under a key derived from the master key,
// random nonce, the record's purpose as associated data. Stored in fragfs.json beside what members read.

import { randomBytes } from 'node:crypto';
import { gcmOpen, gcmSeal } from '../codec/aes-gcm.js';
import { FragfsError } from '../errors.js';

/** BLAKE3 derive_key context of the admin key (Repo.deriveKey). Fixed forever. */
export const PEOPLE_ADMIN_KEY_CONTEXT = 'fragfs 2026-11 people admin key v1';

const NONCE_BYTES = 12;

/** base64(nonce(12) || AES-256-GCM(adminKey, nonce, UTF-8 JSON, aad = purpose)). */
export function sealAdmin(adminKey: Uint8Array, purpose: string, value: unknown): string {
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  const sealed = gcmSeal(adminKey, nonce, Buffer.from(JSON.stringify(value), 'utf8'), Buffer.from(purpose, 'utf8'));
  return Buffer.concat([nonce, sealed]).toString('base64');
}

/** The value sealed by sealAdmin; BAD_STORE naming `what` when it does not open (damage, or another space's). */
export function openAdmin<T>(adminKey: Uint8Array, purpose: string, text: unknown, what: string): T {
  try {
    if (typeof text !== 'string') throw new Error('not a string');
    const raw = Buffer.from(text, 'base64');
    const plain = gcmOpen(adminKey, raw.subarray(0, NONCE_BYTES), raw.subarray(NONCE_BYTES), Buffer.from(purpose, 'utf8'));
    if (plain === undefined) throw new Error('the record does not open');
    return JSON.parse(Buffer.from(plain).toString('utf8')) as T;
  } catch {
    throw new FragfsError('BAD_STORE', `${what} in fragfs.json does not open with this space's key (damaged, or copied from another space)`);
  }
}
