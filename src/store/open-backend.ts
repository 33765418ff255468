// The one place that maps a backend name and a STORE folder to an open Store, and tells whether a
// backend's files are present in a folder.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FragfsError } from '../errors.js';
import { DirStore, KIND_DIRS } from './dir-store.js';
import { MemoryStore } from './memory-store.js';
import { ObjectStore } from '../remote/object-store.js';
import { CachingStore, cacheMaxBytes } from '../remote/fragment-cache.js';
import { localFolderOf, remoteBackendOf } from '../remote/store-site.js';
import { SplitStore } from './split-store.js';
import { BACKEND_NAMES, isValidSpaceName, LMDB_FILE, type BackendName, type Store } from './store.js';

export interface OpenBackendOptions {
  /** put, delete and the trash moves reject READ_ONLY; nothing is created; a missing location rejects NO_STORE. */
  readOnly?: boolean;
}

/**
 * Opens the backend's files in `location` (the STORE folder; created when opened read-write).
 * `memory` ignores `location` and returns a fresh empty store each time.
 */
export async function openBackend(backend: BackendName, location: string, o: OpenBackendOptions = {}): Promise<Store> {
  switch (backend) {
    case 'memory':
      return new MemoryStore(undefined, o.readOnly ?? false);
    case 'lmdb':
      // Loaded when used: lmdb-js is a good part of a command's start, and other stores never need it.
      return (await import('./lmdb-store.js')).LmdbStore.open(location, o);
    case 'dir':
      return DirStore.open(location, o);
    case 'split':
      return SplitStore.open(location, o);
    case 'object':
      // The connection is the process's (store-site.ts): closing the store leaves it open. Reads
      // and writes go through this machine's cache of the store's fragments (fragment-cache.ts).
      return new CachingStore(
        new ObjectStore(await remoteBackendOf(location), o.readOnly ?? false, false),
        join(localFolderOf(location), 'fragments'),
        cacheMaxBytes(),
      );
    default:
      throw new FragfsError('INVALID', `unknown store backend: ${String(backend)} (one of ${BACKEND_NAMES.join(', ')})`);
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Whether `location` holds files of `backend`: lmdb: STORE/fragments.lmdb exists; dir and split:
 * some STORE/<space>/objects|meta|refs folder exists (the two share a tree and cannot be told
 * apart by layout alone: fragfs.json names the backend). memory: never.
 */
export async function backendExists(backend: BackendName, location: string): Promise<boolean> {
  switch (backend) {
    case 'memory':
    case 'object':
      return false;
    case 'lmdb':
      try {
        return (await stat(join(location, LMDB_FILE))).isFile();
      } catch {
        return false;
      }
    case 'dir':
    case 'split': {
      let names: string[];
      try {
        names = await readdir(location);
      } catch {
        return false;
      }
      for (const name of names) {
        if (!isValidSpaceName(name)) continue;
        for (const k of Object.values(KIND_DIRS)) if (await isDir(join(location, name, k))) return true;
      }
      return false;
    }
    default:
      throw new FragfsError('INVALID', `unknown store backend: ${String(backend)}`);
  }
}
