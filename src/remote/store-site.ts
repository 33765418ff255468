// Where a store's parts live, for a local folder and for a remote store alike. A store is named by
// its location (an absolute local path, or a URL as storeLocation writes it). Everything shared
// (fragfs.json, refs, fragments) lives in the store itself; what belongs to one machine (the live
// state of a read-write mount, its lock, its control socket) lives in the store folder when the store
// is local and in the remote store's cache folder otherwise (docs/DESIGN.md, "Remote stores").

import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { FragfsError } from '../errors.js';
import { openObjectBackend } from './open-remote.js';
import type { ResilientBackend } from './resilient-backend.js';
import { formatStoreUrl, parseStoreUrl, type RemoteStoreUrl, type StoreUrl } from './store-url.js';

/** The canonical location of a store argument: an absolute path, or the URL in its one written form. */
export function storeLocation(arg: string): string {
  const u = parseStoreUrl(arg);
  return u.scheme === 'local' ? resolve(u.path) : formatStoreUrl(u);
}

export function isRemoteLocation(location: string): boolean {
  return location !== '' && parseStoreUrl(location).scheme !== 'local';
}

/** The remote URL of a location, or undefined for a local store. */
export function remoteUrlOf(location: string): RemoteStoreUrl | undefined {
  if (location === '') return undefined;
  const u: StoreUrl = parseStoreUrl(location);
  return u.scheme === 'local' ? undefined : u;
}

/**
 * The folder that holds this machine's state for remote stores: FRAGFS_CACHE_DIR (set by
 * `--cache-dir`), else $XDG_CACHE_HOME/fragfs, else ~/.cache/fragfs.
 */
export function cacheRoot(): string {
  const env = process.env['FRAGFS_CACHE_DIR'];
  if (env) return resolve(env);
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'fragfs');
}

/**
 * The local folder of a store: the store folder itself, or for a remote store a folder of the cache
 * named by a hash of its URL (the URL itself is no secret, but a name made of it would need escaping).
 */
export function localFolderOf(location: string): string {
  const remote = remoteUrlOf(location);
  if (!remote) return location;
  const id = createHash('sha256').update(formatStoreUrl(remote)).digest('hex').slice(0, 24);
  return join(cacheRoot(), `${remote.scheme}-${id}`);
}

/** One backend per remote location per process: every opening of the store shares its connections. */
const backends = new Map<string, Promise<ResilientBackend>>();

export function remoteBackendOf(location: string): Promise<ResilientBackend> {
  const remote = remoteUrlOf(location);
  if (!remote) throw new FragfsError('INVALID', `not a remote store: ${location}`);
  let b = backends.get(location);
  if (!b) {
    b = openObjectBackend(remote);
    backends.set(location, b);
    // A backend that could not be opened (no credentials, rclone missing) is tried again next time.
    b.catch(() => backends.delete(location));
  }
  return b;
}

/** Closes every remote backend this process opened (connections, child processes). */
export async function closeRemoteBackends(): Promise<void> {
  const all = [...backends.values()];
  backends.clear();
  await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.close().catch(() => undefined)));
}
