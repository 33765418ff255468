// Passphrase -> key-encryption key: scrypt (RFC 7914) with parameters stored in the space's config,
// so a store written with one cost opens with that cost forever.

import { randomBytes, scrypt } from 'node:crypto';
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
 * Default cost exponent: N = 2^17, r = 8, p = 1 (128 MiB, about 0.8 s with node's scrypt on the
 * development machine).
 */
export const DEFAULT_KDF_COST = 17;
/**
 * What a config may carry is what fragfs could have written: r = 8, p = 1 and N = 2^cost with cost
 * DEFAULT_KDF_COST or one `init --kdf-cost` chose (tests use 10). Anything else is a damaged
 * or planted config: an N of 2^24 alone asks for a 16 GiB scrypt, so the bounds are checked before
 * any scrypt runs. The upper bound leaves room for a default raised on faster machines (2^20: 1 GiB).
 */
export const MIN_KDF_COST = 10;
export const MAX_KDF_COST = 20;
export const KDF_R = 8;
export const KDF_P = 1;
export const KDF_SALT_BYTES = 16;
export const MIN_KDF_SALT_BYTES = 16;
export const MAX_KDF_SALT_BYTES = 64;
export const KDF_KEY_BYTES = 32;

/**
 * Fresh parameters with a random salt. `cost` is log2(N): DEFAULT_KDF_COST unless `init --kdf-cost`
 * or a test (10, to stay fast) says otherwise.
 */
export function newKdfParams(cost: number = DEFAULT_KDF_COST): KdfParams {
  if (!Number.isInteger(cost) || cost < MIN_KDF_COST || cost > MAX_KDF_COST) {
    throw new FragfsError('INVALID', `KDF cost must be a whole number from ${MIN_KDF_COST} to ${MAX_KDF_COST}, got ${String(cost)}`);
  }
  return { name: 'scrypt', N: 2 ** cost, r: KDF_R, p: KDF_P, salt: randomBytes(KDF_SALT_BYTES).toString('hex') };
}

/** Why `k` is not KDF parameters fragfs could have written, naming the field (`kdf.N`, ...), or undefined. */
export function kdfParamsProblem(k: unknown): string | undefined {
  const p = k as Partial<KdfParams> | null;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'kdf is not an object';
  if (p.name !== 'scrypt') return `kdf.name ${JSON.stringify(p.name)} is not "scrypt"`;
  const n = p.N as number;
  if (!Number.isSafeInteger(n) || n < 2 ** MIN_KDF_COST || n > 2 ** MAX_KDF_COST || (n & (n - 1)) !== 0) {
    return `kdf.N ${JSON.stringify(p.N)} is not a power of two from 2^${MIN_KDF_COST} to 2^${MAX_KDF_COST}`;
  }
  if (p.r !== KDF_R) return `kdf.r ${JSON.stringify(p.r)} is not ${KDF_R}`;
  if (p.p !== KDF_P) return `kdf.p ${JSON.stringify(p.p)} is not ${KDF_P}`;
  const saltRe = new RegExp(`^(?:[0-9a-f]{2}){${MIN_KDF_SALT_BYTES},${MAX_KDF_SALT_BYTES}}$`);
  if (typeof p.salt !== 'string' || !saltRe.test(p.salt)) {
    return `kdf.salt is not ${MIN_KDF_SALT_BYTES}..${MAX_KDF_SALT_BYTES} bytes of lowercase hex`;
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
  // node's scrypt (OpenSSL) runs on the libuv pool and frees its 128 MiB work area when done; a
  // scrypt in JS leaves that area to the garbage collector, and a mount kept it for its whole life.
  const salt = Buffer.from(params.salt, 'hex');
  const opts = { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r + 128 * params.r * params.p + 4096 };
  return new Promise((resolve, reject) => {
    scrypt(passphraseBytes(passphrase), salt, KDF_KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(new Uint8Array(key))));
  });
}
