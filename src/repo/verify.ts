// `verify`: reads back every fragment a snapshot (or every snapshot) needs and checks it fully:
// crc32, BLAKE3 id, AEAD tag, decompression and size. Each corrupt or missing fragment is named
// together with the files it belongs to. Each tree is checked as a whole too: its totals against
// what its snapshot declares, its hard-link groups, its files' extents across manifest pages, and
// for cycles. Without a key, fragments no snapshot names are also checked against their id (they
// need no key for that).

import { availableParallelism } from 'node:os';
import { blake3, toHex } from '../codec/blake3.js';
import { PackStore } from '../pack/pack-store.js';
import { FragfsError, isFragfsError } from '../errors.js';
import type { BlockRef, Entry } from '../fragment/tree-format.js';
import type { Repo } from './repo.js';
import { Semaphore } from './semaphore.js';
import { TreeTally, summarizeDir, totalsProblem } from './tree-limits.js';
import { childPath, loadSnapshot, readDirEntries } from './tree-reader.js';
import { readExtents } from './tree-writer.js';

export interface VerifyProblem {
  fragmentId: string;
  kind: 'data' | 'meta' | 'ref' | 'live' | 'pack';
  problem: 'corrupt' | 'missing';
  message: string;
  /** Files or folders (`<key prefix>:/path`) that need the fragment; capped at a few. */
  usedBy: string[];
}

export interface VerifyReport {
  /** Snapshot objects read and checked. */
  snapshots: number;
  /** Trees whose totals were compared with their snapshot's (every dir fragment of them readable). */
  treesChecked: number;
  /** Data fragments that passed every check (the failed ones are problems). */
  dataChecked: number;
  /** Metadata fragments (snapshots, dirs, manifest pages) that passed every check. */
  metaChecked: number;
  unreferencedChecked: number;
  /** Packs read whole and found intact (their own index included). */
  packsChecked: number;
  plainBytesChecked: number;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  onTotal?: (plainBytes: number) => void;
  onBytes?: (plainBytes: number) => void;
  /**
   * Blocks named outside any snapshot (the live tree of a mount), each with who needs it: checked as
   * fully as a snapshot's, and not counted as unreferenced.
   */
  extraBlocks?: Iterable<{ ref: BlockRef; usedBy: string }>;
}

const MAX_USERS = 5;

export async function verifyStore(repo: Repo, keyOrName: string | undefined, o: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = {
    snapshots: 0,
    treesChecked: 0,
    dataChecked: 0,
    metaChecked: 0,
    unreferencedChecked: 0,
    packsChecked: 0,
    plainBytesChecked: 0,
    problems: [],
  };
  const blocks = new Map<string, { ref: BlockRef; usedBy: string[] }>();
  /** Metadata fragments that passed their checks. */
  const metaSeen = new Set<string>();
  /** Metadata fragments some tree names, checked or not: the rest are unreferenced. */
  const metaNamed = new Set<string>();
  /** Dir fragments read (or failed) once for every snapshot: their summaries feed every tree's totals. */
  const tally = new TreeTally();
  const dirsRead = new Set<string>();
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
    let snapshot;
    try {
      snapshot = (await loadSnapshot(repo, key)).snapshot;
      report.metaChecked++;
      metaSeen.add(key);
    } catch (e) {
      if (isFragfsError(e, 'NOT_FOUND')) e = new FragfsError('MISSING_FRAGMENT', e.message, { fragmentId: key });
      problem(e, 'meta', [`snapshot ${label}`], key);
      continue;
    }
    report.snapshots++;
    const file = async (e: Entry, path: string): Promise<void> => {
      for (const page of e.pages ?? []) metaNamed.add(page);
      let extents;
      try {
        extents = await readExtents(repo, e, path);
      } catch (err) {
        problem(err, 'meta', [`${label}:${path}`]);
        return;
      }
      for (const page of e.pages ?? []) {
        if (!metaSeen.has(page)) report.metaChecked++;
        metaSeen.add(page);
      }
      for (const x of extents) {
        let b = blocks.get(x.id);
        if (!b) blocks.set(x.id, (b = { ref: x, usedBy: [] }));
        if (b.usedBy.length < MAX_USERS) b.usedBy.push(`${label}:${path}`);
      }
    };
    // Each distinct dir fragment once, whichever snapshot reaches it first; `ancestors` holds the
    // fragments on the current path. Content addressing makes a cycle a hash collision away, but
    // a reader that met one would walk forever, so it is looked for.
    const ancestors = new Set<string>();
    const visit = async (e: Entry, path: string): Promise<void> => {
      if (e.type === 'file') await file(e, path);
      if (e.type !== 'dir' || e.dir === undefined) return;
      if (ancestors.has(e.dir)) {
        problem(
          new FragfsError('CORRUPT', `metadata fragment ${e.dir} is corrupt: it contains itself (a cycle) at ${path}`, { fragmentId: e.dir }),
          'meta',
          [`${label}:${path}`],
        );
        return;
      }
      if (dirsRead.has(e.dir)) return;
      dirsRead.add(e.dir);
      metaNamed.add(e.dir);
      let entries: Entry[];
      try {
        entries = await readDirEntries(repo, e, path);
      } catch (err) {
        problem(err, 'meta', [`${label}:${path}`], e.dir);
        return;
      }
      report.metaChecked++;
      metaSeen.add(e.dir);
      tally.add(e.dir, summarizeDir(entries));
      ancestors.add(e.dir);
      for (const c of entries) await visit(c, childPath(path, c.name));
      ancestors.delete(e.dir);
    };
    await visit(snapshot.root, '/');

    const counted = tally.count(snapshot.root);
    if (counted === undefined) continue; // a dir fragment is missing, damaged or cyclic: reported above
    report.treesChecked++;
    const mismatch = totalsProblem(key, snapshot, counted);
    if (mismatch !== undefined) {
      problem(new FragfsError('CORRUPT', mismatch, { fragmentId: key }), 'meta', [`snapshot ${label}`]);
    }
    for (const c of counted.linkConflicts) {
      problem(
        new FragfsError(
          'CORRUPT',
          `metadata fragment ${c.dirId} is corrupt: ${c.path} is in hard-link group ${c.link} with ${c.firstPath} but differs from it in size or content`,
          { fragmentId: c.dirId },
        ),
        'meta',
        [`${label}:${c.path}`, `${label}:${c.firstPath}`],
      );
    }
  }

  for (const x of o.extraBlocks ?? []) {
    let b = blocks.get(x.ref.id);
    if (!b) blocks.set(x.ref.id, (b = { ref: x.ref, usedBy: [] }));
    if (b.usedBy.length < MAX_USERS) b.usedBy.push(x.usedBy);
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
        if (ns.kind === 'data' ? blocks.has(id) : metaSeen.has(id) || metaNamed.has(id) || keys.includes(id)) continue;
        await limit.run(async () => {
          try {
            const bytes = await repo.store.get(ns, id);
            if (toHex(blake3(bytes)) !== id) {
              throw new FragfsError('CORRUPT', `fragment ${id}: its bytes do not hash to its id`, { fragmentId: id });
            }
            report.unreferencedChecked++;
          } catch (err) {
            problem(err, ns.kind as 'data' | 'meta', [], id);
          }
        });
      }
    }
    // Every pack whole: its fragments were checked one by one above; this finds damage in the rest
    // of it (its own index, which rebuilds a lost index object) before it is needed.
    if (repo.store instanceof PackStore) {
      const packs = repo.store;
      for await (const pack of packs.inner.list({ space: repo.space, kind: 'pack' })) {
        await limit.run(async () => {
          try {
            await packs.checkPack(pack);
            report.packsChecked++;
          } catch (err) {
            problem(err, 'pack', [], pack);
          }
        });
      }
    }
  }
  return report;
}
