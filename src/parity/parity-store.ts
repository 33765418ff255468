// Where a space's parity objects live: in the store itself, or (`--parity-store`) in another
// backend, a local folder laid out as a dir store or a remote URL laid out as an object store, so
// that losing the one backend leaves the parity of its objects in the other.

import { isFragfsError } from '../errors.js';
import { isRemoteLocation, storeLocation } from '../remote/store-site.js';
import { MemoryStore } from '../store/memory-store.js';
import { openBackend } from '../store/open-backend.js';
import type { Store } from '../store/store.js';
import type { ParitySettings } from './parity-settings.js';

export interface ParityPlace {
  store: Store;
  /** Closes the parity store when it is not the members' own. */
  close(): Promise<void>;
}

/**
 * The store holding the parity of `members` under `settings`. Read-only, a parity store that is not
 * there (a lost backend) is an empty one: everything then reads as in no stripe.
 */
export async function openParityPlace(settings: ParitySettings | undefined, members: Store, o: { readOnly: boolean }): Promise<ParityPlace> {
  if (settings?.store === undefined) return { store: members, close: async () => undefined };
  const location = storeLocation(settings.store);
  let store: Store;
  try {
    store = await openBackend(isRemoteLocation(location) ? 'object' : 'dir', location, { readOnly: o.readOnly });
  } catch (e) {
    if (!o.readOnly || !isFragfsError(e, 'NO_STORE')) throw e;
    store = new MemoryStore(undefined, true);
  }
  return { store, close: () => store.close() };
}

/** Runs `fn` with the parity store of `members` and closes it afterwards. */
export async function withParityPlace<T>(settings: ParitySettings | undefined, members: Store, o: { readOnly: boolean }, fn: (parity: Store) => Promise<T>): Promise<T> {
  const place = await openParityPlace(settings, members, o);
  try {
    return await fn(place.store);
  } finally {
    await place.close();
  }
}
