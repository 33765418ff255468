// gc and parity: a stripe one of whose members gc deleted can rebuild nothing any more but that
// member (which is garbage). gc retires such stripes (their parity objects go), and the protect pass
// that ends gc puts their remaining members into new stripes, so what stays stays protected.

import type { Store } from '../store/store.js';
import { memberKey } from './parity-format.js';
import { loadStripes, parityNs, writeStripeCache } from './stripe-view.js';

/**
 * Deletes the parity objects of every stripe covering one of `deleted` (memberKey form); returns
 * how many stripes. `store` is where the parity objects are (parity-store.ts).
 */
export async function retireStripesOf(store: Store, space: string, deleted: ReadonlySet<string>, cachePath: string | undefined): Promise<number> {
  if (deleted.size === 0) return 0;
  const view = await loadStripes(store, space, cachePath);
  let retired = 0;
  for (const [stripeId, s] of view.stripes) {
    if (!s.record.members.some((mb) => deleted.has(memberKey(mb.kind, mb.id)))) continue;
    for (const id of s.parity.values()) await store.delete(parityNs(space), id);
    view.stripes.delete(stripeId);
    retired++;
  }
  if (retired > 0) {
    await store.sync();
    await writeStripeCache(cachePath, view);
  }
  return retired;
}

