// How much of a space its stripes cover: what `fragfs parity STORE` and `verify` report. Needs no
// key: it lists the stored objects and reads parity headers (stripe-view.ts).

import type { Store } from '../store/store.js';
import { PARITY_INDEX_BYTES, type MemberKind } from './parity-format.js';
import { unprotectedObjects } from './protect.js';
import { loadStripes } from './stripe-view.js';

export interface ParityCoverage {
  stripes: number;
  /** Stripes with fewer parity objects than they name (a pass or repair completes them). */
  incomplete: number;
  members: number;
  memberBytes: number;
  parityObjects: number;
  parityBytes: number;
  /** Stored objects no stripe covers, and their bytes. */
  unprotected: number;
  unprotectedBytes: number;
  /** Some of them, for a report. */
  unprotectedSample: { kind: MemberKind; id: string; size: number }[];
  /** Parity objects whose record does not parse (repair removes them). */
  unreadable: number;
}

/** `parityStore`: where the parity objects are (parity-store.ts); default: `store`. */
export async function parityCoverage(store: Store, space: string, cachePath: string | undefined, parityStore: Store = store): Promise<ParityCoverage> {
  const view = await loadStripes(parityStore, space, cachePath);
  const out: ParityCoverage = {
    stripes: view.stripes.size,
    incomplete: 0,
    members: 0,
    memberBytes: 0,
    parityObjects: 0,
    parityBytes: 0,
    unprotected: 0,
    unprotectedBytes: 0,
    unprotectedSample: [],
    unreadable: view.unreadable.length,
  };
  for (const s of view.stripes.values()) {
    if (s.parity.size < s.record.m) out.incomplete++;
    out.members += s.record.members.length;
    out.memberBytes += s.record.members.reduce((a, mb) => a + mb.size, 0);
    out.parityObjects += s.parity.size;
    out.parityBytes += s.parity.size * (s.recordBytes.length + PARITY_INDEX_BYTES + s.record.shardSize);
  }
  const loose = await unprotectedObjects(store, space, view);
  out.unprotected = loose.length;
  out.unprotectedBytes = loose.reduce((a, c) => a + c.size, 0);
  out.unprotectedSample = loose.slice(0, 20);
  return out;
}
