// The keys of one space: a random master key (the root of the metadata keys), a random convergence
// secret (the block-key secret, shareable between stores for cross-store dedup), the derivations
// from the master key, and the sealing of keys under a wrapping key (AES-256-GCM, random nonce).

import { gcmOpen, gcmSeal } from '../codec/aes-gcm.js';
import { randomBytes } from 'node:crypto';
import { FragfsError } from '../errors.js';
import { blake3DeriveKey, toHex } from '../codec/blake3.js';

/** All keys of an unlocked space, 32 bytes each. */
export interface SpaceKeys {
  /** Random; sealed in fragfs.json under the passphrase key. Everything but the convergence secret derives from it. */
  masterKey: Uint8Array;
  /** Random (or another space's, to dedup with it); block key = keyed BLAKE3(convergenceSecret, plaintext). */
  convergenceSecret: Uint8Array;
  /** AES-256-GCM key of metadata fragments. */
  metaKey: Uint8Array;
  /** Keyed-BLAKE3 key of the metadata synthetic nonces. */
  metaNonceKey: Uint8Array;
  /** Keyed-BLAKE3 key that gives each dir and manifest object its own key (metadata version 3). */
  treeKeySecret: Uint8Array;
}

export const KEY_BYTES = 32;

/** BLAKE3 derive_key contexts. Fixed forever: changing one makes every store unreadable. */
export const META_KEY_CONTEXT = 'fragfs 2026-11 metadata key v1';
export const META_NONCE_KEY_CONTEXT = 'fragfs 2026-11 metadata nonce key v1';
export const TREE_KEY_SECRET_CONTEXT = 'fragfs 2026-11 tree key secret v1';
/** Key that seals the convergence secret in fragfs.json, derived from the master key. */
export const CONVERGENCE_WRAP_KEY_CONTEXT = 'fragfs 2026-11 convergence secret wrapping key v1';
/** A public fingerprint of the convergence secret: equal ids = stores that dedup with each other. */
export const CONVERGENCE_ID_CONTEXT = 'fragfs 2026-11 convergence id v1';

/** Associated data of sealed keys: binds each sealed blob to its purpose so two cannot be swapped. */
export const MASTER_KEY_AAD = 'fragfs master key v1';
/**
 * The master key of an authenticated space (fragfs.json layout 2) is sealed with this one instead:
 * the layout is bound into the seal, so a v2 entry rewritten as v1 (its MAC stripped) does not open.
 */
export const MASTER_KEY_AAD_V2 = 'fragfs master key v2';
export const CONVERGENCE_SECRET_AAD = 'fragfs convergence secret v1';

export const SEAL_ALG = 'aes-256-gcm';
export const SEAL_NONCE_BYTES = 12;

/** A key sealed with AES-256-GCM: `sealed` is ciphertext (32 bytes) || tag (16 bytes); all hex. */
export interface SealedKey {
  alg: typeof SEAL_ALG;
  nonce: string;
  sealed: string;
}

export function randomKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

function checkKey(what: string, k: Uint8Array): void {
  if (!(k instanceof Uint8Array) || k.length !== KEY_BYTES) {
    throw new FragfsError('INVALID', `${what} must be ${KEY_BYTES} bytes`);
  }
}

/** The keys of a space from its two random secrets. */
export function deriveSpaceKeys(masterKey: Uint8Array, convergenceSecret: Uint8Array): SpaceKeys {
  checkKey('master key', masterKey);
  checkKey('convergence secret', convergenceSecret);
  return {
    masterKey,
    convergenceSecret,
    metaKey: blake3DeriveKey(META_KEY_CONTEXT, masterKey),
    metaNonceKey: blake3DeriveKey(META_NONCE_KEY_CONTEXT, masterKey),
    treeKeySecret: blake3DeriveKey(TREE_KEY_SECRET_CONTEXT, masterKey),
  };
}

/** Fresh keys for a new space; pass `convergenceSecret` to dedup with the space it comes from. */
export function newSpaceKeys(convergenceSecret?: Uint8Array): SpaceKeys {
  return deriveSpaceKeys(randomKey(), convergenceSecret === undefined ? randomKey() : new Uint8Array(convergenceSecret));
}

/** The key that seals the convergence secret in the config. */
export function convergenceWrapKey(masterKey: Uint8Array): Uint8Array {
  checkKey('master key', masterKey);
  return blake3DeriveKey(CONVERGENCE_WRAP_KEY_CONTEXT, masterKey);
}

/** 64 hex digits that identify a convergence secret without revealing it. */
export function convergenceIdOf(convergenceSecret: Uint8Array): string {
  checkKey('convergence secret', convergenceSecret);
  return toHex(blake3DeriveKey(CONVERGENCE_ID_CONTEXT, convergenceSecret));
}

/** Seals `key` under `wrappingKey` with a random nonce; `aad` names what the key is for. */
export function sealKey(wrappingKey: Uint8Array, key: Uint8Array, aad: string): SealedKey {
  checkKey('wrapping key', wrappingKey);
  checkKey('key to seal', key);
  const nonce = new Uint8Array(randomBytes(SEAL_NONCE_BYTES));
  const sealed = gcmSeal(wrappingKey, nonce, key, new TextEncoder().encode(aad));
  return { alg: SEAL_ALG, nonce: toHex(nonce), sealed: toHex(sealed) };
}

/** Why `s` is not a well-formed SealedKey, or undefined. */
export function sealedKeyProblem(s: unknown): string | undefined {
  const k = s as Partial<SealedKey> | null;
  if (typeof k !== 'object' || k === null) return 'not an object';
  if (k.alg !== SEAL_ALG) return `unknown key wrapping ${JSON.stringify(k.alg)}`;
  if (typeof k.nonce !== 'string' || !/^[0-9a-f]{24}$/.test(k.nonce)) return 'nonce is not 12 bytes of hex';
  if (typeof k.sealed !== 'string' || !/^[0-9a-f]{96}$/.test(k.sealed)) return 'sealed key is not 48 bytes of hex';
  return undefined;
}

/**
 * The key sealed in `s`, or undefined when the tag does not verify (wrong wrapping key, wrong
 * purpose, or a damaged blob: AES-GCM cannot tell these apart). `s` MUST be well formed.
 */
export function unsealKey(wrappingKey: Uint8Array, s: SealedKey, aad: string): Uint8Array | undefined {
  checkKey('wrapping key', wrappingKey);
  const problem = sealedKeyProblem(s);
  if (problem !== undefined) throw new FragfsError('INVALID', `sealed key: ${problem}`);
  try {
    const key = gcmOpen(wrappingKey, Buffer.from(s.nonce, 'hex'), Buffer.from(s.sealed, 'hex'), new TextEncoder().encode(aad));
    return key?.length === KEY_BYTES ? new Uint8Array(key) : undefined;
  } catch {
    return undefined;
  }
}
