// Whether and how a space packs its small fragments: the `packs` field of its fragfs.json entry,
// and the store layer that reads (always) and writes (when the field is there) packs.

import type { BackendName, Store } from '../store/store.js';
import { packIndexKeyOf } from './pack-format.js';
import { DEFAULT_PACK_SMALL_BYTES, DEFAULT_PACK_TARGET_BYTES, PackStore } from './pack-store.js';

export interface PackSettings {
  /** Fragments of at most this many stored bytes go into packs. */
  smallBytes: number;
  /** A pack is written once it holds this many bytes. */
  targetBytes: number;
}

/**
 * Backends where every object costs (a file and its fsyncs, a request): their spaces pack. lmdb
 * keeps small values in its own pages already; memory is for tests.
 */
export const PACKING_BACKENDS: readonly BackendName[] = ['dir', 'split', 'object'];

export const DEFAULT_PACK_SETTINGS: PackSettings = { smallBytes: DEFAULT_PACK_SMALL_BYTES, targetBytes: DEFAULT_PACK_TARGET_BYTES };

const MIN_SMALL = 1024;
const MAX_SMALL = 4 * 1024 * 1024;
const MIN_TARGET = 64 * 1024;
const MAX_TARGET = 256 * 1024 * 1024;

/** Why `p` is not valid PackSettings, or undefined. */
export function packSettingsProblem(p: unknown): string | undefined {
  const s = p as Partial<PackSettings> | null;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return 'packs is not an object';
  if (!Number.isSafeInteger(s.smallBytes) || s.smallBytes! < MIN_SMALL || s.smallBytes! > MAX_SMALL) return `packs.smallBytes is not ${MIN_SMALL}..${MAX_SMALL}`;
  if (!Number.isSafeInteger(s.targetBytes) || s.targetBytes! < MIN_TARGET || s.targetBytes! > MAX_TARGET) return `packs.targetBytes is not ${MIN_TARGET}..${MAX_TARGET}`;
  return undefined;
}

/** The settings a new space of a store with `backend` gets. */
export function packSettingsFor(backend: BackendName): PackSettings | undefined {
  return PACKING_BACKENDS.includes(backend) ? { ...DEFAULT_PACK_SETTINGS } : undefined;
}

/**
 * The store a repo of `space` uses: on a packing backend, a PackStore over it, which finds packed
 * fragments whatever the settings (a space written before packs has none) and writes packs when
 * `settings` are given.
 */
export function withPacks(store: Store, space: string, masterKey: Uint8Array, settings: PackSettings | undefined): Store {
  return withPacksByIndexKey(store, space, packIndexKeyOf(masterKey), settings);
}

/** withPacks with the pack index key itself: all a share holds of the space's keys to find fragments. */
export function withPacksByIndexKey(store: Store, space: string, indexKey: Uint8Array, settings: PackSettings | undefined): Store {
  if (!PACKING_BACKENDS.includes(store.backend)) return store;
  return new PackStore(store, {
    space,
    indexKey,
    writePacks: settings !== undefined,
    ...(settings ? { smallBytes: settings.smallBytes, targetBytes: settings.targetBytes } : {}),
  });
}
