// `fragfs gc`: deletes the fragments of a store space that no root needs, safely beside running
// writers (a read-write mount, put, sync, snapshot). The protocol is in docs/DESIGN.md, "Garbage
// collection"; in short: mark (condemn what no root reaches), wait until every writer's lease shows
// the mark, look again (roots and pins), move what is still condemned to the trash, look at the
// pins once more and restore what a writer pinned meanwhile, purge the rest.

import { FragfsError } from '../errors.js';
import type { Repo } from '../repo/repo.js';
import { Semaphore, settleAll } from '../repo/semaphore.js';
import { StoreLock, liveDir } from '../repo/store-lock.js';
import type { FragmentKind, Namespace } from '../store/store.js';
import { condemnedKeys, parsePinKey, pinKey, type Lease, type Mark } from './gc-files.js';
import { gcPlaceOf, leaseState, objectsOf, type GcPlace } from './gc-place.js';
import { CLOCK_SKEW_MS, leasePrefix } from '../remote/remote-lease.js';
import { reachable, type Reachable } from './reachable.js';
import { sweepPacks } from './gc-packs.js';
import { memberKey } from '../parity/parity-format.js';
import { storedObjectsOf } from '../parity/protect.js';
import { retireStripesOf } from '../parity/retire.js';
import { withParityPlace } from '../parity/parity-store.js';
import { stripeCachePath } from '../parity/stripe-view.js';
import { PackStore } from '../pack/pack-store.js';

export interface GcOptions {
  dryRun?: boolean;
  /** How long to wait for running writers to see the mark (default DEFAULT_WAIT_MS). */
  waitMs?: number;
  /** One line per step, for a progress log. */
  log?: (line: string) => void;
  /** Called once the mark is written, before the sweep waits for leases (tests race writers here). */
  afterMark?: (mark: Mark) => Promise<void>;
}

export const DEFAULT_WAIT_MS = 60_000;
/** Memory for decoded pack indexes during a run (about 150 bytes a packed fragment: 400,000 of them). */
const DECODED_INDEXES_BYTES = 64 * 1024 * 1024;
/** Fragments moved to the trash before the pins are read again: bounds what a crash leaves there. */
const TRASH_BATCH = 256;

export interface GcReport {
  dryRun: boolean;
  snapshots: number;
  liveFiles: number;
  /** Fragments in the space when gc listed them. */
  fragments: number;
  /** Fragments no root reaches (and their bytes): what this run frees, or would free. */
  unreferenced: number;
  unreferencedBytes: number;
  /** Fragments and bytes deleted by this run. */
  freed: number;
  freedBytes: number;
  /** Condemned fragments a writer started using during the run: kept. */
  kept: number;
  /** Writers that had not seen the mark when the wait ended: the condemned fragments wait for the next gc. */
  waitingFor: string[];
  ms: number;
}


export async function runGc(repo: Repo, o: GcOptions = {}): Promise<GcReport> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const report: GcReport = {
    dryRun: o.dryRun === true,
    snapshots: 0,
    liveFiles: 0,
    fragments: 0,
    unreferenced: 0,
    unreferencedBytes: 0,
    freed: 0,
    freedBytes: 0,
    kept: 0,
    waitingFor: [],
    ms: 0,
  };
  // This machine's live tree (a remote store's is in its cache folder); none for a store in memory.
  const live = repo.storePath === '' ? undefined : liveDir(repo.storePath, repo.space);
  // Every pack index is read by the listing, the table and the sweep: decoded once.
  if (repo.store instanceof PackStore) repo.store.keepDecodedIndexes(DECODED_INDEXES_BYTES);
  if (o.dryRun) {
    fill(report, await look(repo, live, log));
    report.ms = Date.now() - started;
    return report;
  }
  const place = await gcPlaceOf(repo);
  if (!place) throw new FragfsError('NOT_SUPPORTED', 'gc needs a store with a place for its files (not the memory backend)');
  const lock = await place.lock();
  try {
    const prev = await place.readMark();
    // A mark an earlier gc could not sweep (writers still on it, or the gc was stopped) goes first.
    if (prev && !prev.swept) {
      log(`gc: finishing mark ${prev.mark} of an earlier run`);
      const done = await sweep(repo, place, prev, live, o, report, log);
      if (!done) {
        report.ms = Date.now() - started;
        return report;
      }
    }
    const l = await look(repo, live, log);
    fill(report, l);
    const { listed, reach } = l;
    // Above every lease's too: a mark deleted by hand must not leave writers that look past the new one.
    const seen = Math.max(prev?.mark ?? 0, ...(await place.readLeases()).map((l) => l.knownMark || 0));
    const m: Mark = {
      mark: seen + 1,
      createdMs: Date.now(),
      swept: false,
      data: [...listed.data].filter((id) => !reach.data.has(id)),
      meta: [...listed.meta].filter((id) => !reach.meta.has(id)),
    };
    if (m.data.length + m.meta.length > 0) {
      await place.writeMark(m);
      await place.removeOldPins(m.mark);
      log(`gc: mark ${m.mark}: ${m.data.length + m.meta.length} fragments no snapshot or live file needs`);
      await o.afterMark?.(m);
      await sweep(repo, place, m, live, o, report, log, l.sizes, reach);
    }
  } finally {
    await lock.release();
  }
  report.ms = Date.now() - started;
  return report;
}

interface Look {
  listed: { data: Set<string>; meta: Set<string> };
  reach: Reachable;
  /** "kind:id" -> stored bytes, for every fragment listed and not reached. */
  sizes: Map<string, number>;
}

async function look(repo: Repo, live: string | undefined, log: (l: string) => void): Promise<Look> {
  // Listed before the roots are read: a fragment written after the listing is not condemned, and
  // one named by a root written after it is found by the second look (sweep) anyway.
  const data = await list(repo, repo.dataNs);
  const meta = await list(repo, repo.metaNs);
  log(`gc: ${data.size} data and ${meta.size} metadata fragments`);
  const reach = await reachable(repo, live);
  log(`gc: ${reach.snapshots} snapshots and ${reach.liveFiles} live files name ${reach.data.size} data and ${reach.meta.size} metadata fragments`);
  const listed = { data, meta };
  return { listed, reach, sizes: await unreachedSizes(repo, listed, reach) };
}

function fill(report: GcReport, l: Look): void {
  report.snapshots = l.reach.snapshots;
  report.liveFiles = l.reach.liveFiles;
  report.fragments = l.listed.data.size + l.listed.meta.size;
  report.unreferenced = l.sizes.size;
  for (const n of l.sizes.values()) report.unreferencedBytes += n;
}

async function list(repo: Repo, ns: Namespace): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const id of repo.store.list(ns)) ids.add(id);
  return ids;
}

/** Stored sizes of the fragments no root reaches (only those: a stat each is most of a listing's cost). */
async function unreachedSizes(repo: Repo, listed: { data: Set<string>; meta: Set<string> }, reach: Reachable): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const keys: [FragmentKind, string][] = [];
  for (const kind of ['data', 'meta'] as const) for (const id of listed[kind]) if (!reach[kind].has(id)) keys.push([kind, id]);
  // The listing just learnt every pack's index: a packed fragment's size is in the table (a stat of
  // its pack per fragment cost more than the rest of the look).
  const packs = repo.store instanceof PackStore ? repo.store : undefined;
  const single: [FragmentKind, string][] = [];
  for (const [kind, id] of keys) {
    const packed = packs?.packedSize(kind as 'data' | 'meta', id);
    if (packed !== undefined) out.set(pinKey(kind, id), packed);
    else single.push([kind, id]);
  }
  await inParallel(single, async ([kind, id]) => {
    out.set(pinKey(kind, id), (await repo.store.size({ space: repo.space, kind }, id)) ?? 0);
  });
  return out;
}

function nsOf(repo: Repo, key: string): Namespace {
  return { space: repo.space, kind: parsePinKey(key).kind };
}

/** Store calls at once: each is a small file-system call or request that mostly waits. */
const CALLS_IN_FLIGHT = 32;

async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  const limit = new Semaphore(CALLS_IN_FLIGHT);
  await settleAll(items.map((x) => limit.run(() => fn(x))));
}

/**
 * Sweeps mark `m`: false when running writers had not all seen it within the wait (nothing is
 * deleted then; the next gc tries again).
 */
async function sweep(
  repo: Repo,
  place: GcPlace,
  m: Mark,
  live: string | undefined,
  o: GcOptions,
  report: GcReport,
  log: (l: string) => void,
  /** Stored sizes from this run's listing (by pin key), when it made the mark. */
  known?: Map<string, number>,
  /** What this run's first look reached, when it made the mark: the second look starts from it. */
  firstReach?: Reachable,
): Promise<boolean> {
  const waiting = await waitForLeases(repo, place, m.mark, o.waitMs ?? DEFAULT_WAIT_MS);
  if (waiting.length > 0) {
    report.waitingFor = waiting.map((l) =>
      l.host === '' && l.pid === -1
        ? l.purpose
        : `${l.purpose} (pid ${l.pid} on ${l.host || 'another machine'}, since ${new Date(l.startedMs).toISOString()})`,
    );
    log(`gc: ${waiting.length} writer(s) have not seen mark ${m.mark} yet; nothing deleted`);
    return false;
  }
  // Every writer now pins what it takes from the condemned, and what it took before is named by a
  // root: look at the roots again.
  const reach = await reachable(repo, live, firstReach);
  const pins = await place.readPins(m.mark);
  const condemned = condemnedKeys(m);
  // What an interrupted sweep of this mark left in the trash (its size cannot be seen there).
  const leftovers = new Set<string>();
  for (const kind of ['data', 'meta'] as const) {
    for await (const id of repo.store.listTrash({ space: repo.space, kind })) leftovers.add(pinKey(kind, id));
  }
  for (const key of leftovers) condemned.add(key);
  const doomed: string[] = [];
  const spared: string[] = [];
  /** Deleted for good, by memberKey: the stripes that held them are retired. */
  const purged = new Set<string>();
  // Packed fragments go with their packs (gc-packs.ts); the rest one by one, below.
  const packs = repo.store instanceof PackStore ? repo.store : undefined;
  if (packs) await packs.packIds();
  const packedDoomed = new Set<string>();
  for (const key of condemned) {
    const { kind, id } = parsePinKey(key);
    if (reach[kind].has(id) || pins.has(key)) spared.push(key);
    else if (packs?.packOf(kind as 'data' | 'meta', id) !== undefined) packedDoomed.add(key);
    else doomed.push(key);
  }
  // Named again, or pinned: one an interrupted sweep had moved comes back.
  await inParallel(
    spared.filter((key) => leftovers.has(key)),
    (key) => repo.store.untrash(nsOf(repo, key), parsePinKey(key).id),
  );
  report.kept += spared.length;
  for (let i = 0; i < doomed.length; i += TRASH_BATCH) {
    const batch = doomed.slice(i, i + TRASH_BATCH);
    const sizes = new Map<string, number>();
    const gone = new Set<string>();
    await inParallel(batch, async (key) => {
      const ns = nsOf(repo, key);
      const { id } = parsePinKey(key);
      const size = known?.get(key) ?? (await repo.store.size(ns, id));
      // Freed by an interrupted run of this mark already: nothing to count.
      if (size === undefined && !leftovers.has(key)) gone.add(key);
      sizes.set(key, size ?? 0);
      await repo.store.trash(ns, id);
    });
    // A writer may have pinned one of them after the pins were read: it comes back.
    const again = await place.readPins(m.mark);
    await inParallel(batch, async (key) => {
      const ns = nsOf(repo, key);
      const { id } = parsePinKey(key);
      if (again.has(key)) {
        await repo.store.untrash(ns, id);
        report.kept++;
        return;
      }
      await repo.store.purge(ns, id);
      purged.add(memberKey(ns.kind, id));
      if (gone.has(key)) return;
      report.freed++;
      report.freedBytes += sizes.get(key) ?? 0;
    });
  }
  if (packs) {
    const ps = await sweepPacks(
      packs,
      packedDoomed,
      (key) => {
        const { kind, id } = parsePinKey(key);
        return reach[kind].has(id) || pins.has(key);
      },
      () => place.readPins(m.mark),
      log,
      (pack) => {
        purged.add(memberKey('pack', pack));
        purged.add(memberKey('index', pack));
      },
    );
    report.freed += ps.freed;
    report.freedBytes += ps.freedBytes;
    report.kept += ps.kept;
    if (ps.packsDeleted > 0) log(`gc: ${ps.packsDeleted} packs deleted, ${ps.rewritten} live fragments written anew`);
  }
  if (repo.parity) {
    const settings = repo.parity;
    const retired = await withParityPlace(settings, storedObjectsOf(repo.store), { readOnly: false }, (parityStore) =>
      retireStripesOf(parityStore, repo.space, purged, stripeCachePath(repo.storePath, repo.space)),
    );
    if (retired > 0) log(`gc: ${retired} parity stripes retired (their other members get new stripes as the store closes)`);
  }
  await repo.sync();
  // Swept: writers need its ids no more, and the file need not keep 32 bytes for each fragment freed.
  await place.writeMark({ ...m, swept: true, data: [], meta: [] });
  log(`gc: mark ${m.mark} swept: ${report.freed} fragments freed, ${report.kept} kept`);
  return true;
}

/** Waits until every running writer's lease shows `mark`; returns those that still do not. Dead writers' leases go. */
async function waitForLeases(repo: Repo, place: GcPlace, mark: number, waitMs: number): Promise<Lease[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const behind: Lease[] = [];
    for (const l of await place.readLeases()) {
      if (l.knownMark >= mark) continue;
      if (leaseState(place, l) === 'dead') {
        await place.removeLease(l.id);
        continue;
      }
      behind.push(l);
    }
    const mount = place.kind === 'remote' ? await liveTreeElsewhere(repo) : undefined;
    if (mount) behind.push({ id: 'write-lease', pid: -1, host: '', bootId: '', procStart: '', startedMs: 0, purpose: mount, knownMark: 0 });
    if (behind.length === 0 || Date.now() >= deadline) return behind;
    await new Promise((r) => setTimeout(r, Math.min(place.pollMs / 4, Math.max(10, deadline - Date.now()))));
  }
}

/**
 * In a remote store, a live tree gc cannot walk: that of a read-write mount (or offline snapshot)
 * on another machine, which holds the space's write lease (remote-lease.ts) and keeps its live
 * state in that machine's cache folder. Until it unmounts (publishing its tree as the head and
 * releasing the lease), what only its live tree names looks unreferenced from here, so nothing is
 * swept. A lease left by a machine that died counts too: its unpublished tree is published by the
 * next mount there. A mount on this machine holds the local lock too, and its live state is walked.
 */
async function liveTreeElsewhere(repo: Repo): Promise<string | undefined> {
  const objects = await objectsOf(repo);
  if (!objects) return undefined;
  const prefix = leasePrefix(repo.space);
  let top: string | undefined;
  for await (const { key } of objects.list(prefix)) if (/^\d+$/.test(key.slice(prefix.length)) && (top === undefined || key > top)) top = key;
  if (top === undefined) return undefined;
  const bytes = await objects.get(top);
  let rec: { released?: unknown; expiresMs?: unknown } = {};
  try {
    rec = bytes === undefined ? { released: true } : (JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof rec);
  } catch {
    // A torn lease: its holder may still have a live tree; waited for like one.
  }
  if (rec.released === true) return undefined;
  if (repo.storePath !== '') {
    const here = await StoreLock.holder(repo.storePath, repo.space).catch(() => undefined);
    if (here && here.state !== 'dead') return undefined;
  }
  const expired = typeof rec.expiresMs === 'number' && Date.now() > rec.expiresMs + CLOCK_SKEW_MS;
  return expired
    ? `a read-write mount that ended without unmounting (its write lease ${top} was never released): mount the store read-write and unmount it on that machine, so its unpublished changes become the head, or delete ${top} if they are lost`
    : `a read-write mount on another machine (write lease ${top}): its live tree is not in the store until it unmounts`;
}

export function checkWaitMs(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > 7 * 24 * 3600_000) throw new FragfsError('USAGE', `--wait must be a number of seconds from 0 to 604800`);
  return ms;
}
