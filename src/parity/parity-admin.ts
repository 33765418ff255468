// Parity without the passphrase: opening a space's stored objects as its backend holds them
// (fragfs.json names the backend), turning parity on, off or to another shape, and dropping every
// parity object when it goes off.

import { FragfsError } from '../errors.js';
import { Repo } from '../repo/repo.js';
import { readStoreConfig, writeStoreConfig, type StoreConfig } from '../repo/store-config.js';
import { storeLocation } from '../remote/store-site.js';
import { openBackend } from '../store/open-backend.js';
import type { Store } from '../store/store.js';
import type { ParitySettings } from './parity-settings.js';
import { openParityPlace } from './parity-store.js';
import { parityNs, stripeCachePath } from './stripe-view.js';
import { rm } from 'node:fs/promises';

export interface KeylessSpace {
  location: string;
  space: string;
  config: StoreConfig;
  /** The backend's own store: packs as packs, parity objects as they lie. */
  store: Store;
  /** Where the parity objects are: `store`, or the parity store the settings name. */
  parityStore: Store;
  cachePath: string | undefined;
  settings: ParitySettings | undefined;
  /** Closes both stores. */
  close(): Promise<void>;
}

/**
 * Opens space `space` of the store at `storePath` without its keys (NO_STORE when absent), and its
 * parity store: the one `settings` name when given (a `parity --set` about to change them), else
 * the one fragfs.json names.
 */
export async function openKeyless(storePath: string, space: string, o: { readOnly: boolean; settings?: ParitySettings }): Promise<KeylessSpace> {
  const location = storeLocation(storePath);
  const config = await Repo.checkExists(location, space);
  const store = await openBackend(config.backend, location, { readOnly: o.readOnly });
  const settings = config.spaces[space]!.parity;
  let place;
  try {
    place = await openParityPlace(o.settings ?? settings, store, { readOnly: o.readOnly });
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    location,
    space,
    config,
    store,
    parityStore: place.store,
    cachePath: stripeCachePath(location, space),
    settings,
    close: async () => {
      await place.close();
      await store.close();
    },
  };
}

/** Sets (or, with undefined, removes) the space's parity field; fragfs.json is read again first. */
export async function setParitySettings(location: string, space: string, settings: ParitySettings | undefined): Promise<void> {
  const cfg = await readStoreConfig(location);
  const entry = cfg.spaces[space];
  if (!entry) throw new FragfsError('NO_STORE', `the store at ${location} has no space ${space}`, { path: location });
  if (settings) entry.parity = { ...settings };
  else delete entry.parity;
  await writeStoreConfig(location, cfg);
}

/** Deletes every parity object of the space (parity turned off); returns how many. */
export async function dropParity(k: KeylessSpace): Promise<number> {
  const ns = parityNs(k.space);
  const ids: string[] = [];
  for await (const id of k.parityStore.list(ns)) ids.push(id);
  for (const id of ids) await k.parityStore.delete(ns, id);
  await k.parityStore.sync();
  if (k.cachePath) await rm(k.cachePath, { force: true });
  return ids.length;
}
