// A local cache's write of a fetched fragment, left to the thread the fragment is handed to. A
// remote mount's cold read is bound by its JS thread: writing each fetched block to the fragment
// cache from there cost a copy of the block (the codec thread detaches what it is given) or a wait
// for the write, and the file calls themselves. The codec thread that decodes the block writes it
// instead, from the bytes it was given, once they verified (docs/DESIGN.md, "The fragment cache and
// latency").

import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './private-modes.js';

/** Where a fragment's cached copy goes: written to `tmpPath` (0600), then renamed to `path`. */
export interface CacheFile {
  readonly tmpPath: string;
  readonly path: string;
  /** Made first (0700, with its parents) when set. */
  readonly folder?: string;
}

export interface CacheHandoff extends CacheFile {
  /** MUST be called exactly once by whoever took the handoff: whether the file is in place. */
  settle(written: boolean): void;
}

/** Bytes a store returned with their cache write left to the caller (GetOptions.handOff). */
const handoffs = new WeakMap<Uint8Array, CacheHandoff>();

/** Leaves the cache write of `bytes` to the caller that asked for it. */
export function attachCacheHandoff(bytes: Uint8Array, h: CacheHandoff): void {
  handoffs.set(bytes, h);
}

/** The cache write left with `bytes`, once: the taker MUST write them (or not) and settle it. */
export function takeCacheHandoff(bytes: Uint8Array): CacheHandoff | undefined {
  const h = handoffs.get(bytes);
  if (h !== undefined) handoffs.delete(bytes);
  return h;
}

/** The file of `f` holding `bytes`, from a worker thread; false when it could not be written. */
export function writeCacheFileSync(f: CacheFile, bytes: Uint8Array): boolean {
  try {
    if (f.folder !== undefined) mkdirSync(f.folder, { recursive: true, mode: PRIVATE_DIR_MODE });
    // No fsync: a cached copy torn by a power loss fails its hash check and is fetched again.
    writeFileSync(f.tmpPath, bytes, { mode: PRIVATE_FILE_MODE });
    renameSync(f.tmpPath, f.path);
    return true;
  } catch {
    try {
      unlinkSync(f.tmpPath);
    } catch {
      // Never made.
    }
    return false;
  }
}

/** writeCacheFileSync off the calling thread (libuv's pool): for a block decoded where it was read. */
export async function writeCacheFile(f: CacheFile, bytes: Uint8Array): Promise<boolean> {
  try {
    if (f.folder !== undefined) await mkdir(f.folder, { recursive: true, mode: PRIVATE_DIR_MODE });
    await writeFile(f.tmpPath, bytes, { mode: PRIVATE_FILE_MODE });
    await rename(f.tmpPath, f.path);
    return true;
  } catch {
    await unlink(f.tmpPath).catch(() => undefined);
    return false;
  }
}
