// `stats`: what a store holds and what it saves: logical bytes across snapshots, unique plaintext,
// stored bytes, dedup and compression ratios, fragment counts.

import type { Repo } from './repo.js';
import { loadSnapshot, walkTree } from './tree-reader.js';
import { readExtents } from './tree-writer.js';

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
  /** logicalBytes / uniquePlainBytes (1 = nothing shared). */
  dedupRatio: number;
  /** uniquePlainBytes / dataStoredBytes (> 1 = compression saved space). */
  compressionRatio: number;
  /** logicalBytes / (dataStoredBytes + metaStoredBytes). */
  overallRatio: number;
}

export async function storeStats(repo: Repo): Promise<StoreStats> {
  let dataFragments = 0;
  let dataStoredBytes = 0;
  let metaFragments = 0;
  let metaStoredBytes = 0;
  let refs = 0;
  for await (const id of repo.store.list(repo.dataNs)) {
    dataFragments++;
    dataStoredBytes += (await repo.store.size(repo.dataNs, id)) ?? 0;
  }
  for await (const id of repo.store.list(repo.metaNs)) {
    metaFragments++;
    metaStoredBytes += (await repo.store.size(repo.metaNs, id)) ?? 0;
  }
  for await (const _ of repo.store.list(repo.refNs)) refs++;

  const snapshots = await repo.listRefs();
  let logicalBytes = 0;
  const blockSizes = new Map<string, number>();
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>();
  for (const ref of snapshots) {
    logicalBytes += ref.logicalBytes;
    const { snapshot } = await loadSnapshot(repo, ref.snapshot);
    await walkTree(
      repo,
      snapshot.root,
      {
        entry: async (e, path) => {
          if (e.type !== 'file') return;
          // Identical files share their manifest; one read of it is enough.
          const sig = e.pages ? e.pages.join(',') : (e.blocks ?? []).map((b) => b.id).join(',');
          if (seenFiles.has(sig)) return;
          seenFiles.add(sig);
          for (const x of await readExtents(repo, e, path)) blockSizes.set(x.id, x.plainSize);
        },
      },
      seenDirs,
    );
  }
  let uniquePlainBytes = 0;
  for (const n of blockSizes.values()) uniquePlainBytes += n;
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 1);
  return {
    snapshots: snapshots.length,
    logicalBytes,
    uniquePlainBytes,
    dataFragments,
    dataStoredBytes,
    metaFragments,
    metaStoredBytes,
    refs,
    dedupRatio: ratio(logicalBytes, uniquePlainBytes),
    compressionRatio: ratio(uniquePlainBytes, dataStoredBytes),
    overallRatio: ratio(logicalBytes, dataStoredBytes + metaStoredBytes),
  };
}
