// `sync SRC DST [KEY]`: copies fragments, as stored bytes, from one store to another of any backend:
// those one snapshot needs (walking its tree), or all of them. DST gets SRC's space config (the same
// sealed keys), so the same passphrase opens it and the copied snapshots mount there. Every copied
// fragment is checked against its id on the way; nothing damaged is copied.

import { blake3, toHex } from '../codec/blake3.js';
import { FragfsError, isFragfsError } from '../errors.js';
import { GcGuard } from '../gc/gc-guard.js';
import { gcPlaceOf } from '../gc/gc-place.js';
import { protectStore, storedObjectsOf } from '../parity/protect.js';
import { withParityPlace } from '../parity/parity-store.js';
import { stripeCachePath } from '../parity/stripe-view.js';
import { PackStore } from '../pack/pack-store.js';
import type { PackedKind } from '../pack/pack-format.js';
import { isRemoteLocation, storeLocation } from '../remote/store-site.js';
import { openBackend } from '../store/open-backend.js';
import type { BackendName, Namespace, Store } from '../store/store.js';
import type { Repo } from './repo.js';
import { Semaphore, settleAll } from './semaphore.js';
import { STORE_FORMAT_VERSION, readStoreConfig, writeStoreConfig, type StoreConfig } from './store-config.js';
import { loadSnapshot, walkTree } from './tree-reader.js';
import { readExtents } from './tree-writer.js';

export interface SyncOptions {
  /** Backend for a DST that does not exist yet (default: SRC's). */
  backend?: BackendName;
  onFragment?: (storedBytes: number, copied: boolean) => void;
  /** How many fragments are known to be looked at so far (grows while the source is listed). */
  onQueued?: (fragments: number) => void;
}

export interface SyncResult {
  dest: string;
  snapshots: number;
  copiedFragments: number;
  copiedBytes: number;
  presentFragments: number;
  /** Packs copied as they are (their fragments count in copiedFragments and copiedBytes too). */
  copiedPacks: number;
}

/** Makes DST hold SRC's space (same keys), creating the store if needed; returns DST's backend. */
async function prepareDest(src: Repo, destPath: string, backend: BackendName | undefined): Promise<Store> {
  const srcConfig = await readStoreConfig(src.storePath);
  const srcSpace = srcConfig.spaces[src.space]!;
  let dest: StoreConfig | undefined;
  try {
    dest = await readStoreConfig(destPath);
  } catch (e) {
    if (!isFragfsError(e, 'NO_STORE')) throw e;
  }
  if (dest) {
    const existing = dest.spaces[src.space];
    if (existing && existing.storeId !== srcSpace.storeId) {
      throw new FragfsError(
        'STORE_EXISTS',
        `${destPath} already has a space ${src.space} with other keys; sync into a new folder or another --space`,
      );
    }
    if (backend && backend !== dest.backend && !isRemoteLocation(destPath)) {
      throw new FragfsError('USAGE', `${destPath} uses the ${dest.backend} backend, not ${backend}`);
    }
    if (!existing) {
      // An authenticated space's tags cover the store's backend and version: made anew for DST.
      if (srcSpace.mac !== undefined) dest.fragfs = Math.max(dest.fragfs, STORE_FORMAT_VERSION);
      dest.spaces[src.space] = await src.spaceConfigForStore({ fragfs: dest.fragfs, backend: dest.backend });
      await writeStoreConfig(destPath, dest);
    }
  } else {
    // A remote store has the object layout; a local copy of a remote store is lmdb unless asked.
    const local = backend ?? (srcConfig.backend === 'object' ? 'lmdb' : srcConfig.backend);
    const globals = { fragfs: STORE_FORMAT_VERSION, backend: isRemoteLocation(destPath) ? ('object' as const) : local };
    dest = { ...globals, spaces: { [src.space]: await src.spaceConfigForStore(globals) } };
    await writeStoreConfig(destPath, dest);
  }
  return src.packedStore(await openBackend(dest.backend, destPath), dest.spaces[src.space]!.packs);
}

export async function syncStore(src: Repo, destPath: string, keyOrName: string | undefined, o: SyncOptions = {}): Promise<SyncResult> {
  const dest = storeLocation(destPath);
  if (dest === src.storePath) throw new FragfsError('USAGE', 'source and destination are the same store');
  const out = await prepareDest(src, dest, o.backend);
  // A gc of DST running beside this copy must not delete what it is about to name (gc-guard.ts);
  // a remote DST keeps the lease and pins in the store itself.
  let guard: GcGuard | undefined;
  try {
    const place = await gcPlaceOf({ storePath: dest, store: out, space: src.space });
    if (place) guard = await GcGuard.start({ place, space: src.space, store: out, purpose: 'sync' });
  } catch (e) {
    await out.close();
    throw e;
  }
  // On a remote DST one listing per namespace (1,000 ids a request) replaces a lookup per fragment;
  // on a packing one too (its has() of an absent id looks at the packs again).
  const present = new Map<string, Set<string>>();
  if (isRemoteLocation(dest) || out.dedupesPuts === true) {
    for (const ns of [src.dataNs, src.metaNs, src.refNs]) {
      const ids = new Set<string>();
      for await (const id of out.list(ns)) ids.add(id);
      present.set(ns.kind, ids);
    }
  }
  const result: SyncResult = { dest, snapshots: 0, copiedFragments: 0, copiedBytes: 0, presentFragments: 0, copiedPacks: 0 };
  const limit = new Semaphore(16);
  const tasks: Promise<void>[] = [];
  let queued = 0;
  const copy = (ns: Namespace, id: string): void => {
    o.onQueued?.(++queued);
    tasks.push(
      limit.run(async () => {
        const pinned = ns.kind !== 'ref' && ((await guard?.hold(ns.kind, id)) ?? false);
        const listed = present.get(ns.kind);
        if (!pinned && (listed ? listed.has(id) : await out.has(ns, id))) {
          result.presentFragments++;
          o.onFragment?.(0, false);
          return;
        }
        const bytes = await src.store.get(ns, id);
        // Refs are addressed by the snapshot they name; every other fragment by its own hash.
        if (ns.kind !== 'ref' && toHex(blake3(bytes)) !== id) {
          throw new FragfsError('CORRUPT', `fragment ${id} in the source does not match its id; not copied (run verify)`, {
            fragmentId: id,
          });
        }
        // Deferred: out.sync() runs after the data and after the metadata, before the refs name them.
        await out.put(ns, id, bytes, { fresh: pinned, deferred: ns.kind !== 'ref' });
        result.copiedFragments++;
        result.copiedBytes += bytes.length;
        o.onFragment?.(bytes.length, true);
      }),
    );
  };
  // Packs go as they are when both sides pack with the same keys (the same space: prepareDest made
  // sure): one read and one write per pack, the same id on both sides. Packs DST holds are skipped.
  const srcPacks = src.store instanceof PackStore ? src.store : undefined;
  const outPacks = out instanceof PackStore && srcPacks?.sharesIndexKeyWith(out) ? out : undefined;
  /** Source packs whose fragments DST now holds in the same pack (copied, or there already). */
  const wholePacks = new Set<string>();
  let destPacks: Set<string> | undefined;
  /**
   * Copies the packs of `kind` whose every fragment is in `wanted` (all of them when not given);
   * the fragments of the others, and of packs a gc of DST is about to collect (pinned: they are
   * written anew), go one by one afterwards.
   */
  const copyPacks = async (kind: PackedKind, wanted?: Set<string>): Promise<void> => {
    if (!srcPacks || !outPacks) return;
    destPacks ??= new Set(await outPacks.packIds());
    for (const pack of await srcPacks.packIds()) {
      if (srcPacks.kindOfPack(pack) !== kind) continue;
      tasks.push(
        limit.run(async () => {
          const idx = await srcPacks.entriesOf(pack, true);
          // Gone meanwhile (a gc of SRC): what it held is found elsewhere, one by one.
          if (idx === undefined || idx.kind !== kind) return;
          if (wanted && !idx.entries.every((e) => wanted.has(e.id))) return;
          for (const e of idx.entries) if ((await guard?.hold(kind, e.id)) === true) return;
          queued += idx.entries.length;
          o.onQueued?.(queued);
          if (destPacks!.has(pack)) {
            wholePacks.add(pack);
            result.presentFragments += idx.entries.length;
            idx.entries.forEach(() => o.onFragment?.(0, false));
            return;
          }
          let bytes: Uint8Array;
          try {
            ({ bytes } = await srcPacks.checkPack(pack));
          } catch (e) {
            if (!isFragfsError(e, 'MISSING_FRAGMENT')) throw e;
            // Moved by a gc of SRC since it was listed: its fragments go one by one.
            queued -= idx.entries.length;
            return;
          }
          for (const e of idx.entries) {
            if (toHex(blake3(bytes.subarray(e.offset, e.offset + e.length))) !== e.id) {
              throw new FragfsError('CORRUPT', `fragment ${e.id} in pack ${pack} of the source does not match its id; not copied (run verify)`, {
                fragmentId: e.id,
              });
            }
          }
          await outPacks.adoptPack(pack, bytes);
          wholePacks.add(pack);
          result.copiedPacks++;
          result.copiedFragments += idx.entries.length;
          result.copiedBytes += bytes.length;
          for (const e of idx.entries) o.onFragment?.(e.length, true);
        }),
      );
    }
    await settleAll(tasks.splice(0));
  };
  /** Whether `id` went along with its whole pack. */
  const inWholePack = (kind: PackedKind, id: string): boolean => {
    const pack = srcPacks?.packOf(kind, id);
    return pack !== undefined && wholePacks.has(pack);
  };
  try {
    if (keyOrName === undefined) {
      // Data first, then metadata, then refs: DST never names what it does not hold yet.
      for (const ns of [src.dataNs, src.metaNs]) {
        const kind = ns.kind as PackedKind;
        await copyPacks(kind);
        for await (const id of src.store.list(ns)) if (!inWholePack(kind, id)) copy(ns, id);
        await settleAll(tasks.splice(0));
        await out.sync();
      }
      for await (const id of src.store.list(src.refNs)) {
        copy(src.refNs, id);
        result.snapshots++;
      }
      await settleAll(tasks.splice(0));
    } else {
      const { key, snapshot } = await loadSnapshot(src, keyOrName);
      const meta = new Set<string>();
      const data = new Set<string>();
      await walkTree(src, snapshot.root, {
        entry: async (e, path) => {
          if (e.dir !== undefined) meta.add(e.dir);
          for (const p of e.pages ?? []) meta.add(p);
          if (e.type === 'file') for (const x of await readExtents(src, e, path)) data.add(x.id);
        },
      });
      meta.add(key);
      await copyPacks('data', data);
      for (const id of data) if (!inWholePack('data', id)) copy(src.dataNs, id);
      await settleAll(tasks.splice(0));
      await out.sync();
      await copyPacks('meta', meta);
      for (const id of meta) if (!inWholePack('meta', id)) copy(src.metaNs, id);
      await settleAll(tasks.splice(0));
      await out.sync();
      if (await src.store.has(src.refNs, key)) copy(src.refNs, key);
      await settleAll(tasks.splice(0));
      result.snapshots = 1;
    }
    await out.sync();
    // A space that keeps parity covers what the copy stored before it is called done.
    const parity = (await readStoreConfig(dest)).spaces[src.space]?.parity;
    if (parity) {
      const members = storedObjectsOf(out);
      await withParityPlace(parity, members, { readOnly: false }, (parityStore) =>
        protectStore(members, src.space, parity, { parityStore, cachePath: stripeCachePath(dest, src.space) }),
      );
    }
  } finally {
    await Promise.allSettled(tasks);
    await guard?.close();
    await out.close();
  }
  return result;
}
