// `stats`: what a store holds and what it saves: logical bytes across snapshots, unique plaintext,
// stored bytes, dedup and compression ratios, fragment counts, and what gc would free.

import { reachable } from '../gc/reachable.js';
import type { Repo } from './repo.js';
import { liveDir } from './store-lock.js';

export interface StoreStats {
  snapshots: number;
  /** Sum of the file bytes of every snapshot, as a user would count them. */
  logicalBytes: number;
  /** Plaintext bytes of the distinct data blocks those snapshots name. */
  uniquePlainBytes: number;
  dataFragments: number;
  dataStoredBytes: number;
  metaFragments: number;
  metaStoredBytes: number;
  refs: number;
  /** Fragments (data and metadata) that no snapshot and no live file needs, and their stored bytes: what `fragfs gc` would free. */
  reclaimableFragments: number;
  reclaimableBytes: number;
  /** logicalBytes / uniquePlainBytes (1 = nothing shared); null without snapshot data. */
  dedupRatio: number | null;
  /** uniquePlainBytes / the stored bytes of those blocks (> 1 = compression saved space); null without snapshot data. */
  compressionRatio: number | null;
  /** logicalBytes / (what the snapshots' fragments take: stored bytes less what is reclaimable); null without snapshot data. */
  overallRatio: number | null;
}

export async function storeStats(repo: Repo): Promise<StoreStats> {
  let dataFragments = 0;
  let dataStoredBytes = 0;
  let metaFragments = 0;
  let metaStoredBytes = 0;
  let refs = 0;
  const sizes = { data: new Map<string, number>(), meta: new Map<string, number>() };
  for await (const id of repo.store.list(repo.dataNs)) {
    dataFragments++;
    const n = (await repo.store.size(repo.dataNs, id)) ?? 0;
    sizes.data.set(id, n);
    dataStoredBytes += n;
  }
  for await (const id of repo.store.list(repo.metaNs)) {
    metaFragments++;
    const n = (await repo.store.size(repo.metaNs, id)) ?? 0;
    sizes.meta.set(id, n);
    metaStoredBytes += n;
  }
  for await (const _ of repo.store.list(repo.refNs)) refs++;

  const snapshots = await repo.listRefs();
  let logicalBytes = 0;
  for (const ref of snapshots) logicalBytes += ref.logicalBytes;
  // One walk of every root gives both what the snapshots name and what nothing names.
  const reach = await reachable(repo, repo.storePath === '' ? undefined : liveDir(repo.storePath, repo.space));
  let uniquePlainBytes = 0;
  let blocksStoredBytes = 0;
  for (const [id, n] of reach.snapshotBlocks) {
    uniquePlainBytes += n;
    blocksStoredBytes += sizes.data.get(id) ?? 0;
  }
  let reclaimableFragments = 0;
  let reclaimableBytes = 0;
  for (const kind of ['data', 'meta'] as const) {
    for (const [id, n] of sizes[kind]) {
      if (reach[kind].has(id)) continue;
      reclaimableFragments++;
      reclaimableBytes += n;
    }
  }
  // No snapshot data, no ratio: 0 bytes saved nothing and lost nothing.
  const ratio = (a: number, b: number) => (a > 0 && b > 0 ? a / b : null);
  const needed = dataStoredBytes + metaStoredBytes - reclaimableBytes;
  return {
    snapshots: snapshots.length,
    logicalBytes,
    uniquePlainBytes,
    dataFragments,
    dataStoredBytes,
    metaFragments,
    metaStoredBytes,
    refs,
    reclaimableFragments,
    reclaimableBytes,
    dedupRatio: ratio(logicalBytes, uniquePlainBytes),
    compressionRatio: ratio(uniquePlainBytes, blocksStoredBytes),
    overallRatio: ratio(logicalBytes, needed),
  };
}
