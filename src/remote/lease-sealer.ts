// Seals the description of a lease's holder (host, pid, what it is doing) with a key of the space,
// so a remote store names no host or mount point in clear, yet every machine that holds the
// passphrase can say who holds the lease. AES-256-GCM, random 96-bit nonce, as docs/FORMAT.md
// section 3 ("Leases") gives it.

import { randomBytes } from 'node:crypto';
import { gcmOpen, gcmSeal } from '../codec/aes-gcm.js';
import type { LeaseSealer } from './remote-lease.js';

export const LEASE_KEY_CONTEXT = 'fragfs 2026-11 remote lease holder key v1';
const AAD = Buffer.from('fragfs lease holder v1');

interface Sealed {
  nonce: string;
  sealed: string;
}

export function leaseSealerOf(repo: { deriveKey(context: string): Uint8Array }): LeaseSealer {
  const key = repo.deriveKey(LEASE_KEY_CONTEXT);
  return {
    seal(plain: Uint8Array): Sealed {
      const nonce = randomBytes(12);
      return { nonce: nonce.toString('hex'), sealed: Buffer.from(gcmSeal(key, nonce, plain, AAD)).toString('hex') };
    },
    open(s: unknown): Uint8Array | undefined {
      const x = s as Partial<Sealed> | null;
      if (!x || typeof x.nonce !== 'string' || typeof x.sealed !== 'string' || !/^[0-9a-f]{24}$/.test(x.nonce)) return undefined;
      return gcmOpen(key, Buffer.from(x.nonce, 'hex'), Buffer.from(x.sealed, 'hex'), AAD);
    },
  };
}
