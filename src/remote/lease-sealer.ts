// Seals the description of a lease's holder (host, pid, what it is doing) with a key of the space,
// so a remote store names no host or mount point in clear, yet every machine that holds the
// passphrase can say who holds the lease. AES-256-GCM, random 96-bit nonce, as docs/FORMAT.md
// section 3 ("Leases") gives it.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
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
      const c = createCipheriv('aes-256-gcm', key, nonce).setAAD(AAD);
      const body = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
      return { nonce: nonce.toString('hex'), sealed: body.toString('hex') };
    },
    open(s: unknown): Uint8Array | undefined {
      const x = s as Partial<Sealed> | null;
      if (!x || typeof x.nonce !== 'string' || typeof x.sealed !== 'string' || !/^[0-9a-f]{24}$/.test(x.nonce)) return undefined;
      try {
        const body = Buffer.from(x.sealed, 'hex');
        if (body.length < 16) return undefined;
        const d = createDecipheriv('aes-256-gcm', key, Buffer.from(x.nonce, 'hex')).setAAD(AAD);
        d.setAuthTag(body.subarray(body.length - 16));
        return Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
      } catch {
        return undefined;
      }
    },
  };
}
