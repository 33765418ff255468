// `verify`: reads back every fragment a snapshot (or every snapshot) needs and checks it fully:
// crc32, BLAKE3 id, AEAD tag, decompression and size. Each corrupt or missing fragment is named
// together with the files it belongs to. Without a key, fragments no snapshot names are also
// checked against their id (they need no key for that).

import { availableParallelism } from 'node:os';
import { blake3, toHex } from '../codec/blake3.js';
import { FragfsError, isFragfsError } from '../errors.js';
import type { BlockRef } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';
import { Semaphore } from './semaphore.js';
import { loadSnapshot, walkTree } from './tree-reader.js';
import { readExtents } from './tree-writer.js';

export interface VerifyProblem {
  fragmentId: string;
  kind: 'data' | 'meta' | 'ref';
  problem: 'corrupt' | 'missing';
  message: string;
  /** Files or folders (`<key prefix>:/path`) that need the fragment; capped at a few. */
  usedBy: string[];
}

export interface VerifyReport {
  snapshots: number;
  dataChecked: number;
  metaChecked: number;
  unreferencedChecked: number;
  plainBytesChecked: number;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  onTotal?: (plainBytes: number) => void;
  onBytes?: (plainBytes: number) => void;
}

const MAX_USERS = 5;

export async function verifyStore(repo: Repo, keyOrName: string | undefined, o: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { snapshots: 0, dataChecked: 0, metaChecked: 0, unreferencedChecked: 0, plainBytesChecked: 0, problems: [] };
  const blocks = new Map<string, { ref: BlockRef; usedBy: string[] }>();
  const metaSeen = new Set<string>();
  const seenDirs = new Set<string>();
  const problem = (err: unknown, kind: VerifyProblem['kind'], usedBy: string[], fallbackId?: string): void => {
    if (!(err instanceof FragfsError)) throw err;
    const id = err.fragmentId ?? fallbackId ?? '?';
    report.problems.push({
      fragmentId: id,
      kind,
      problem: isFragfsError(err, 'MISSING_FRAGMENT') ? 'missing' : 'corrupt',
      message: err.message,
      usedBy,
    });
  };

  let keys: string[];
  if (keyOrName !== undefined) keys = [await repo.resolveSnapshot(keyOrName)];
  else {
    // A damaged ref is reported, and the snapshot it is filed under (its id) is still checked.
    const damaged: string[] = [];
    keys = (
      await repo.listRefs({
        onError: (e, id) => {
          problem(e, 'ref', [], id);
          damaged.push(id);
        },
      })
    ).map((r) => r.snapshot);
    keys.push(...damaged);
  }

  for (const key of keys) {
    const label = key.slice(0, 12);
    let root;
    try {
      root = (await loadSnapshot(repo, key)).snapshot.root;
      report.metaChecked++;
    } catch (e) {
      if (isFragfsError(e, 'NOT_FOUND')) e = new FragfsError('MISSING_FRAGMENT', e.message, { fragmentId: key });
      problem(e, 'meta', [`snapshot ${label}`], key);
      continue;
    }
    report.snapshots++;
    await walkTree(
      repo,
      root,
      {
        entry: async (e, path) => {
          if (e.type === 'dir' && e.dir !== undefined && !metaSeen.has(e.dir)) {
            metaSeen.add(e.dir);
            report.metaChecked++;
          }
          if (e.type !== 'file') return;
          let extents;
          try {
            extents = await readExtents(repo, e, path);
            for (const page of e.pages ?? []) {
              if (!metaSeen.has(page)) report.metaChecked++;
              metaSeen.add(page);
            }
          } catch (err) {
            problem(err, 'meta', [`${label}:${path}`]);
            return;
          }
          for (const x of extents) {
            let b = blocks.get(x.id);
            if (!b) blocks.set(x.id, (b = { ref: x, usedBy: [] }));
            if (b.usedBy.length < MAX_USERS) b.usedBy.push(`${label}:${path}`);
          }
        },
        error: (err, path, id) => problem(err, 'meta', [`${label}:${path}`], id),
      },
      seenDirs,
    );
  }

  let total = 0;
  for (const b of blocks.values()) total += b.ref.plainSize;
  o.onTotal?.(total);
  const limit = new Semaphore(availableParallelism() * 2 + 2);
  await Promise.all(
    [...blocks.values()].map((b) =>
      limit.run(async () => {
        try {
          await repo.readBlock(b.ref);
          report.dataChecked++;
          report.plainBytesChecked += b.ref.plainSize;
        } catch (err) {
          problem(err, 'data', b.usedBy, b.ref.id);
        }
        o.onBytes?.(b.ref.plainSize);
      }),
    ),
  );

  if (keyOrName === undefined) {
    // Fragments no snapshot names (left by an interrupted put, or awaiting gc) still must not rot silently.
    for (const ns of [repo.dataNs, repo.metaNs]) {
      for await (const id of repo.store.list(ns)) {
        if (ns.kind === 'data' ? blocks.has(id) : metaSeen.has(id) || keys.includes(id)) continue;
        await limit.run(async () => {
          try {
            const bytes = await repo.store.get(ns, id);
            if (toHex(blake3(bytes)) !== id) {
              throw new FragfsError('CORRUPT', `fragment ${id}: its bytes do not hash to its id`, { fragmentId: id });
            }
            report.unreferencedChecked++;
          } catch (err) {
            problem(err, ns.kind, [], id);
          }
        });
      }
    }
  }
  return report;
}
