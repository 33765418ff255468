// Passphrase -> key-encryption key: scrypt (RFC 7914) with parameters stored in the space's config,
// so a store written with one cost opens with that cost forever.

import { scryptAsync } from '@noble/hashes/scrypt.js';
import { randomBytes } from 'node:crypto';
import { FragfsError } from '../errors.js';

/** The KDF record of a space in fragfs.json. */
export interface KdfParams {
  name: 'scrypt';
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
  /** 16 random bytes, lowercase hex. */
  salt: string;
}

/**
 * Default cost exponent: N = 2^17, r = 8, p = 1 (128 MiB, about 1.3 s with @noble/hashes on the
 * development machine; node's native scrypt would take 0.8 s).
 */
export const DEFAULT_KDF_COST = 17;
/** Bounds a config may carry (anything else is a damaged config); tests may go as low as 2^1. */
export const MIN_KDF_COST = 1;
export const MAX_KDF_COST = 22;
export const KDF_SALT_BYTES = 16;
export const KDF_KEY_BYTES = 32;

/**
 * Fresh parameters with a random salt. `cost` is log2(N); only code passes it (tests use ~10 to
 * stay fast), users always get DEFAULT_KDF_COST.
 */
export function newKdfParams(cost: number = DEFAULT_KDF_COST): KdfParams {
  if (!Number.isInteger(cost) || cost < MIN_KDF_COST || cost > MAX_KDF_COST) {
    throw new FragfsError('INVALID', `KDF cost must be a whole number from ${MIN_KDF_COST} to ${MAX_KDF_COST}, got ${String(cost)}`);
  }
  return { name: 'scrypt', N: 2 ** cost, r: 8, p: 1, salt: randomBytes(KDF_SALT_BYTES).toString('hex') };
}

/** Why `k` is not usable KDF parameters, or undefined. */
export function kdfParamsProblem(k: unknown): string | undefined {
  const p = k as Partial<KdfParams> | null;
  if (typeof p !== 'object' || p === null) return 'kdf is not an object';
  if (p.name !== 'scrypt') return `unknown kdf ${JSON.stringify(p.name)}`;
  const okInt = (n: unknown, lo: number, hi: number): boolean => Number.isInteger(n) && (n as number) >= lo && (n as number) <= hi;
  if (!okInt(p.N, 2 ** MIN_KDF_COST, 2 ** MAX_KDF_COST) || ((p.N as number) & ((p.N as number) - 1)) !== 0) {
    return `kdf N must be a power of two from 2^${MIN_KDF_COST} to 2^${MAX_KDF_COST}`;
  }
  if (!okInt(p.r, 1, 32)) return 'kdf r must be 1..32';
  if (!okInt(p.p, 1, 16)) return 'kdf p must be 1..16';
  if (typeof p.salt !== 'string' || !/^[0-9a-f]{32,128}$/.test(p.salt) || p.salt.length % 2 !== 0) {
    return 'kdf salt must be 16..64 bytes of lowercase hex';
  }
  return undefined;
}

/** Unicode NFC then UTF-8, so the same passphrase typed on any system gives the same key. */
export function passphraseBytes(passphrase: string): Uint8Array {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new FragfsError('INVALID', 'the passphrase must not be empty');
  }
  return new TextEncoder().encode(passphrase.normalize('NFC'));
}

/** The 32-byte key-encryption key for `passphrase` (params MUST have passed kdfParamsProblem). */
export async function derivePassphraseKey(passphrase: string, params: KdfParams): Promise<Uint8Array> {
  const problem = kdfParamsProblem(params);
  if (problem !== undefined) throw new FragfsError('INVALID', problem);
  return scryptAsync(passphraseBytes(passphrase), Buffer.from(params.salt, 'hex'), {
    N: params.N,
    r: params.r,
    p: params.p,
    dkLen: KDF_KEY_BYTES,
    maxmem: 128 * params.N * params.r + 128 * params.r * params.p + 4096,
  });
}
