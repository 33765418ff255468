// gc's sweep of packed fragments (docs/DESIGN.md, "Packs and gc"). A pack is immutable and goes as a
// whole: every pack that holds a condemned fragment (or a copy of one that another pack holds) has
// its other fragments written anew into fresh packs, then moves to the trash; the pins are read
// again, and a pack one of whose condemned fragments a writer pinned meanwhile comes back; the rest
// are purged. A writer that pins a condemned fragment writes it anew rather than trusting a pack
// it knows it in (PutOptions.fresh), so no pack a writer needs is ever the one being purged.

import { Semaphore, settleAll } from '../repo/semaphore.js';
import type { PackStore } from '../pack/pack-store.js';
import type { PackEntry, PackedKind } from '../pack/pack-format.js';
import { pinKey } from './gc-files.js';

export interface PackSweep {
  /** Condemned fragments freed, and their bytes (each id counted once). */
  freed: number;
  freedBytes: number;
  /** Condemned fragments a writer pinned after all: their packs stay. */
  kept: number;
  /** Packs deleted, and live fragments written anew to free them. */
  packsDeleted: number;
  rewritten: number;
}

interface Acting {
  pack: string;
  kind: PackedKind;
  doomed: PackEntry[];
  keep: PackEntry[];
}

/** Calls at once: each is a small read or write of the store. */
const IN_FLIGHT = 32;
/** Packs whose live part is read at once (up to a pack's size each: a few MiB). */
const PACK_READS_IN_FLIGHT = 4;

/**
 * Sweeps the packs holding the fragments of `doomed` (pin keys, kind:id, of packed fragments).
 * `spared(key)`: named again or pinned at the second look (an interrupted sweep's trashed pack
 * holding such a fragment comes back). `readPins` reads the pins of the mark anew.
 */
export async function sweepPacks(
  store: PackStore,
  doomed: ReadonlySet<string>,
  spared: (key: string) => boolean,
  readPins: () => Promise<ReadonlySet<string>>,
  log: (line: string) => void,
  /** Told each pack deleted for good (its index goes with it): parity retires its stripe. */
  onPurged: (pack: string) => void = () => undefined,
): Promise<PackSweep> {
  const out: PackSweep = { freed: 0, freedBytes: 0, kept: 0, packsDeleted: 0, rewritten: 0 };
  const limit = new Semaphore(IN_FLIGHT);

  // Packs an interrupted sweep left in the trash: back when they hold what is needed, else gone.
  const trashed: string[] = [];
  for await (const pack of store.listTrashedPacks()) trashed.push(pack);
  await settleAll(
    trashed.map((pack) =>
      limit.run(async () => {
        const idx = await store.entriesOf(pack);
        if (idx !== undefined && idx.entries.some((e) => spared(pinKey(idx.kind, e.id)))) await store.untrashPack(pack);
        else {
          await store.purgePack(pack);
          onPurged(pack);
        }
      }),
    ),
  );

  // Which packs act: decided for all before any moves, from one view of where each id is read.
  const acting: Acting[] = [];
  const indexes: string[] = [];
  for await (const pack of store.listIndexes()) indexes.push(pack);
  const packs = new Set(await store.packIds());
  await settleAll(
    indexes.map((pack) =>
      limit.run(async () => {
        if (!packs.has(pack)) {
          // An index whose pack is neither in place nor in the trash (a crash between a purge and
          // the index's delete) names nothing; the trash is looked at first, the place second, so
          // an untrash in between cannot slip past (only a gc, this one, moves packs the other way).
          await store.deleteOrphanIndex(pack);
          onPurged(pack);
          return;
        }
        const idx = await store.entriesOf(pack);
        if (idx === undefined) return;
        const dead: PackEntry[] = [];
        const keep: PackEntry[] = [];
        for (const e of idx.entries) {
          if (doomed.has(pinKey(idx.kind, e.id)) || store.packOf(idx.kind, e.id) !== pack) dead.push(e);
          else keep.push(e);
        }
        if (dead.length > 0) acting.push({ pack, kind: idx.kind, doomed: dead.filter((e) => doomed.has(pinKey(idx.kind, e.id))), keep });
      }),
    ),
  );
  if (acting.length === 0) return out;
  log(`gc: ${acting.length} packs hold condemned fragments; ${acting.reduce((n, a) => n + a.keep.length, 0)} live fragments in them are written anew`);

  // Live fragments first: they are in fresh packs before their old pack leaves. Each pack's live
  // part is read in one range (one request, not one per fragment), a few packs at a time.
  const reads = new Semaphore(PACK_READS_IN_FLIGHT);
  await settleAll(
    acting
      .filter((a) => a.keep.length > 0)
      .map((a) =>
        reads.run(async () => {
          let from = Infinity;
          let to = 0;
          for (const e of a.keep) {
            from = Math.min(from, e.offset);
            to = Math.max(to, e.offset + e.length);
          }
          const span = await store.readEntry(a.pack, from, to - from);
          await settleAll(
            a.keep.map(async (e) => {
              // A copy: the new pack must not hold the whole span alive.
              const bytes = Buffer.from(span.subarray(e.offset - from, e.offset - from + e.length));
              await store.put({ space: store.space, kind: a.kind }, e.id, bytes, { fresh: true, deferred: true });
              out.rewritten++;
            }),
          );
        }),
      ),
  );
  await store.sync();
  await settleAll(acting.map((a) => limit.run(() => store.trashPack(a.pack))));

  // A writer may have pinned a condemned fragment since the pins were read: its pack comes back.
  const pins = await readPins();
  const counted = new Set<string>();
  await settleAll(
    acting.map((a) =>
      limit.run(async () => {
        const pinned = a.doomed.filter((e) => pins.has(pinKey(a.kind, e.id)));
        if (pinned.length > 0) {
          await store.untrashPack(a.pack);
          out.kept += pinned.length;
          return;
        }
        await store.purgePack(a.pack);
        onPurged(a.pack);
        out.packsDeleted++;
        for (const e of a.doomed) {
          const key = pinKey(a.kind, e.id);
          if (counted.has(key)) continue;
          counted.add(key);
          out.freed++;
          out.freedBytes += e.length;
        }
      }),
    ),
  );
  await store.sync();
  return out;
}
