// Whether a space keeps parity and of which shape: the `parity` field of its fragfs.json entry,
// `{ "k": 10, "m": 2 }`. Like `packs`, it is outside the space's tags: it says how the store
// protects its ciphertext, which a holder of the store without the passphrase may change.

import { FragfsError } from '../errors.js';
import { RS_MAX_K, RS_MAX_M } from './rs-codec.js';

export interface ParitySettings {
  /** Stripe members (stored objects) per stripe, at most. */
  k: number;
  /** Parity objects per stripe: any m of the k + m may be lost. */
  m: number;
  /**
   * Where the parity objects live when not in the store itself (parity-store.ts): a local folder
   * (absolute path) or a remote store URL.
   */
  store?: string;
}

/** 10 + 2 (docs/DESIGN.md, "Parity"): 20 % more bytes; two losses in any ten objects. */
export const DEFAULT_PARITY: ParitySettings = { k: 10, m: 2 };

/** Why `p` is not valid ParitySettings, or undefined. */
export function paritySettingsProblem(p: unknown): string | undefined {
  const s = p as Partial<ParitySettings> | null;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return 'parity is not an object';
  if (!Number.isInteger(s.k) || s.k! < 1 || s.k! > RS_MAX_K) return `parity.k is not 1..${RS_MAX_K}`;
  if (!Number.isInteger(s.m) || s.m! < 1 || s.m! > RS_MAX_M) return `parity.m is not 1..${RS_MAX_M}`;
  if (s.store !== undefined && (typeof s.store !== 'string' || s.store.length === 0 || s.store.length > 4096)) return 'parity.store is not a location';
  return undefined;
}

/** `K+M` as typed on the command line (e.g. `10+2`). */
export function parseParityShape(text: string, what: string): ParitySettings {
  const m = /^\s*(\d{1,2})\s*\+\s*(\d{1,2})\s*$/.exec(text);
  const s = m ? { k: Number(m[1]), m: Number(m[2]) } : undefined;
  const problem = s === undefined ? 'not K+M' : paritySettingsProblem(s);
  if (problem !== undefined || s === undefined) {
    throw new FragfsError('USAGE', `${what}: ${JSON.stringify(text)} is not a parity shape K+M with K 1..${RS_MAX_K} and M 1..${RS_MAX_M} (e.g. 10+2)`);
  }
  return s;
}

export function formatParityShape(s: ParitySettings): string {
  return `${s.k}+${s.m}${s.store === undefined ? '' : ` in ${s.store}`}`;
}
