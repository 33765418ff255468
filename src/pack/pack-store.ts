// A Store that keeps the small data and metadata fragments of one space in packs (pack-format.ts)
// on an inner store, and everything else as the inner store does. Puts of small fragments are
// gathered into the open pack of their kind; the pack is written when it is full, when the puts stop
// coming for a moment, or when a flush slot frees up; each put resolves once its pack and the pack's
// index are stored, so the Store contract (a resolved put survives kill -9) holds unchanged.
//
// Where a fragment lies is in memory (pack-table.ts), learned from the index objects of the space
// when the store is first used and again when a fragment is not found (another process or machine
// wrote a pack since, or a gc rewrote one).
//
// Not yet: gc's repack of partly dead packs (delete and the trash moves of a packed fragment pass
// to the inner store, which does not hold it; its pack keeps it).

import { timingSafeEqual } from 'node:crypto';
import { blake3, toHex } from '../codec/blake3.js';
import { FragfsError, isFragfsError } from '../errors.js';
import { Semaphore, settleAll } from '../repo/semaphore.js';
import { getRangeOf, missingFragment, rangeOf, type GetOptions, type Namespace, type PutOptions, type Store } from '../store/store.js';
import { ByteLru } from '../vfs/byte-lru.js';
import { buildPack, openSealedIndex, PACK_TAIL_BYTES, readPackIndex, sealedIndexOf, type OpenedPackIndex, type PackIndex, type PackedKind } from './pack-format.js';
import { PackTable, type PackLocation } from './pack-table.js';

/** Fragments up to this many stored bytes go into packs; larger ones stay single objects. */
export const DEFAULT_PACK_SMALL_BYTES = 256 * 1024;
/** A pack is written once it holds this many bytes. */
export const DEFAULT_PACK_TARGET_BYTES = 4 * 1024 * 1024;
/**
 * An open pack that a put waits for (a mount storing a closed file's block) waits at most this long
 * for more fragments, or until DEFAULT_PACK_MAX_WAITING puts wait for it. Measured on an untar of
 * 12,000 small files into a mount (2 cores): 5 ms made 2,000-2,500 packs of about five files each,
 * every one two fsynced files, and took 13.6-14.3 s; 25-40 ms made 400-580 packs in 10.4-11.4 s; at
 * 100 ms it took 18 s: each waiting put holds a RELEASE, and past the kernel's 64 background
 * requests the writeback of the next files queues behind them. Whoever waits for durability (an
 * fsync, a snapshot) does not wait for the delay (hurry).
 */
export const DEFAULT_PACK_DELAY_MS = 25;
/**
 * The same wait for a metadata pack. Folders are written one after another, each waiting for its
 * pack (a snapshot of a mount, writing folders ahead), so this wait adds up: at 25 ms a snapshot
 * writing 240 folders took 3.9 s.
 */
export const DEFAULT_META_PACK_DELAY_MS = 5;
/** Puts waiting for one open pack that make it be written at once: below the kernel's 64 (see above). */
export const DEFAULT_PACK_MAX_WAITING = 48;
/**
 * What one entry of a kept index holds in V8's heap (its id's view, offset, length and keys, and the
 * object with a 64-character hex id once someone lists it), for keepDecodedIndexes.
 */
const DECODED_ENTRY_BYTES = 166;

export interface PackStoreOptions {
  space: string;
  /** packIndexKeyOf(the space's master key). */
  indexKey: Uint8Array;
  /** Whether new small fragments go into packs (reads always look in packs). */
  writePacks: boolean;
  smallBytes?: number;
  targetBytes?: number;
  /** For data packs; metaDelayMs for metadata packs. */
  delayMs?: number;
  metaDelayMs?: number;
  maxWaiting?: number;
  /** Packs written at once (default: the inner store's parallelism / 4, at least 2). */
  flushSlots?: number;
}

interface OpenPack {
  kind: PackedKind;
  /** Data packs sealed before this one: a metadata pack is written only after them (write ordering). */
  after?: Promise<void>[];
  fragments: { id: string; bytes: Uint8Array }[];
  byId: Map<string, Uint8Array>;
  bytes: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
  /** Puts that wait for this pack to be written (not deferred). */
  waiting: number;
  /** Holds fragments whose puts resolved already: a failure is kept for the next sync. */
  deferred?: boolean;
}

export class PackStore implements Store {
  readonly backend;
  readonly parallelism?: number;
  readonly space: string;
  /** put() looks in the table itself; has() is exact and may list the indexes (dedupesPuts). */
  readonly dedupesPuts = true;
  private readonly table = new PackTable();
  private readonly open = new Map<PackedKind, OpenPack>();
  /** Packs sealed and being written: their fragments are readable from memory until indexed. */
  private readonly writing = new Set<OpenPack>();
  private readonly waitingForSlot: OpenPack[] = [];
  private readonly smallBytes: number;
  private readonly targetBytes: number;
  private readonly delayMs: number;
  private readonly metaDelayMs: number;
  private readonly maxWaiting: number;
  private readonly flushSlots: number;
  private loaded: Promise<void> | undefined;
  private deferredFailure: unknown;
  private refreshing: Promise<void> | undefined;
  /** A look that has not started yet: callers from now on can share it. */
  private queuedLook: Promise<void> | undefined;
  private readonly packNs: Namespace;
  private readonly indexNs: Namespace;

  constructor(
    readonly inner: Store,
    private readonly o: PackStoreOptions,
  ) {
    this.backend = inner.backend;
    this.space = o.space;
    this.smallBytes = o.smallBytes ?? DEFAULT_PACK_SMALL_BYTES;
    this.targetBytes = o.targetBytes ?? DEFAULT_PACK_TARGET_BYTES;
    this.delayMs = o.delayMs ?? DEFAULT_PACK_DELAY_MS;
    this.metaDelayMs = o.metaDelayMs ?? DEFAULT_META_PACK_DELAY_MS;
    this.maxWaiting = o.maxWaiting ?? DEFAULT_PACK_MAX_WAITING;
    this.flushSlots = o.flushSlots ?? Math.max(2, Math.floor((inner.parallelism ?? 8) / 4));
    // Callers keep this many puts in flight: the more wait for one pack, the fewer packs.
    if (o.writePacks) this.parallelism = Math.max(64, inner.parallelism ?? 0);
    else if (inner.parallelism !== undefined) this.parallelism = inner.parallelism;
    if (inner.refresh) this.refresh = () => inner.refresh!();
    this.packNs = { space: o.space, kind: 'pack' };
    this.indexNs = { space: o.space, kind: 'index' };
  }

  get packCount(): number {
    return this.table.packCount;
  }

  private packedKind(ns: Namespace): PackedKind | undefined {
    return ns.space === this.o.space && (ns.kind === 'data' || ns.kind === 'meta') ? ns.kind : undefined;
  }

  // ---- the index of packs ---------------------------------------------------------------------

  private isLoaded = false;

  /** Once the index is learned, puts and reads go on in the same turn (no await in between). */
  private ready(): Promise<void> | undefined {
    if (this.isLoaded) return undefined;
    this.loaded ??= this.relearn().then(
      () => {
        this.isLoaded = true;
      },
      (e: unknown) => {
        // Out of reach for now (a remote service): the next call looks again.
        this.loaded = undefined;
        throw e;
      },
    );
    return this.loaded;
  }

  /**
   * Learns the packs written since the last look and forgets those gone. Calls coalesce, but only
   * into a look that starts after them: one already under way may have listed the indexes before
   * the pack this caller missed was written (a ref read then names a snapshot not found).
   */
  private relearn(): Promise<void> {
    if (this.queuedLook) return this.queuedLook;
    const before = this.refreshing ?? Promise.resolve();
    const look: Promise<void> = before
      .catch(() => undefined)
      .then(() => {
        if (this.queuedLook === look) this.queuedLook = undefined;
        this.refreshing = look;
        return this.load();
      })
      .finally(() => {
        if (this.refreshing === look) this.refreshing = undefined;
      });
    this.queuedLook = look;
    return look;
  }

  private async load(): Promise<void> {
    const listed = new Set<string>();
    // Indexes are read side by side: on a remote store each is a round trip or two (the index,
    // the pack's size), which one after the other made opening a store of many packs take seconds.
    const gate = new Semaphore(Math.max(2, this.inner.parallelism ?? 4));
    const learning: Promise<void>[] = [];
    try {
      for await (const pack of this.inner.list(this.indexNs)) {
        listed.add(pack);
        if (this.table.hasPack(pack)) continue;
        learning.push(gate.run(() => this.learn(pack)));
      }
    } finally {
      // A listing that fails leaves no read running behind the failure it reports.
      await Promise.allSettled(learning);
    }
    await settleAll(learning);
    for (const pack of this.table.packIds()) if (!listed.has(pack)) this.table.drop(pack);
    // A pack whose index object is missing (lost, or deleted by hand) is indexed from its own tail.
    for await (const pack of this.inner.list(this.packNs)) {
      if (listed.has(pack) || this.table.hasPack(pack)) continue;
      try {
        await this.rebuildIndex(pack);
      } catch (e) {
        // A damaged pack is verify's to report; its fragments read as missing meanwhile.
        if (!isFragfsError(e, 'CORRUPT')) throw e;
      }
    }
  }

  /** Reads a pack's index object into the table; a damaged one is rebuilt from the pack's tail. */
  private async learn(pack: string): Promise<void> {
    let idx: OpenedPackIndex | undefined;
    try {
      idx = await this.entriesOf(pack, true);
    } catch (e) {
      if (!isFragfsError(e, 'CORRUPT')) throw e;
      await this.rebuildIndex(pack);
      return;
    }
    // Undefined: the index or its pack is gone meanwhile, so nothing lies there.
    if (idx !== undefined) this.table.addIndex(pack, idx);
  }

  /** `pack` read whole and its own index: CORRUPT unless its bytes hash to its id and the index opens. */
  async checkPack(pack: string): Promise<{ bytes: Uint8Array; idx: OpenedPackIndex }> {
    const bytes = await this.inner.get(this.packNs, pack);
    if (toHex(blake3(bytes)) !== pack) throw new FragfsError('CORRUPT', `pack ${pack}: its bytes do not hash to its id`, { fragmentId: pack });
    return { bytes, idx: readPackIndex(this.o.indexKey, bytes, `pack ${pack}`) };
  }

  /** The index of `pack` from the pack itself, written back as its index object. */
  async rebuildIndex(pack: string): Promise<void> {
    const { bytes, idx } = await this.checkPack(pack);
    try {
      await this.inner.put(this.indexNs, pack, sealedIndexOf(bytes, `pack ${pack}`));
    } catch (e) {
      // A store open read-only reads the pack's own index; the next writer writes it back.
      if (!isFragfsError(e, 'READ_ONLY')) throw e;
    }
    this.table.addIndex(pack, idx);
  }

  // ---- writing ----------------------------------------------------------------------------------

  async put(ns: Namespace, id: string, bytes: Uint8Array, o?: PutOptions): Promise<void> {
    const kind = this.packedKind(ns);
    if (kind === undefined || !this.o.writePacks || bytes.length > this.smallBytes) return this.inner.put(ns, id, bytes, o);
    if (!this.isLoaded) await this.ready();
    // A pinned (fresh) put is written anew: the pack this process knows it in may be one a gc is
    // deleting (docs/DESIGN.md, "Packs and gc").
    if (o?.fresh !== true && this.table.lookup(id, kind)) return;
    this.throwDeferredFailure();
    const pending = this.pendingPack(kind, id);
    if (pending) return o?.deferred ? undefined : pending.done;
    // Deferred: resolved before the pack is written, so the bytes are the store's own from here.
    if (o?.deferred) bytes = Buffer.from(bytes);
    let p = this.open.get(kind);
    if (!p) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      done.catch(() => undefined); // each put awaits it; none may go unhandled
      p = { kind, fragments: [], byId: new Map(), bytes: 0, done, resolve, reject, waiting: 0 };
      this.open.set(kind, p);
    }
    // A put that waits for its pack gets it written soon; deferred ones fill packs up (or sync does).
    if (!o?.deferred && p.timer === undefined) {
      const opened = p;
      // While someone waits for durability (hurry), the pack goes once this turn's puts are in.
      const delay = this.hurrying > 0 ? 0 : kind === 'meta' ? this.metaDelayMs : this.delayMs;
      p.timer = setTimeout(() => this.seal(opened), delay);
    }
    p.fragments.push({ id, bytes });
    p.byId.set(id, bytes);
    p.bytes += bytes.length;
    if (!o?.deferred) p.waiting++;
    if (p.bytes >= this.targetBytes || p.waiting >= this.maxWaiting) this.seal(p);
    if (!o?.deferred) return p.done;
    // Deferred puts wait only when packs queue up for writing (memory stays bounded).
    p.deferred = true;
    while (this.waitingForSlot.length >= this.flushSlots) {
      await this.waitingForSlot[0]!.done.catch(() => undefined);
    }
    return undefined;
  }

  /** Callers of hurry() running now. */
  private hurrying = 0;

  /**
   * Runs `fn` (an fsync, a snapshot's flush) with packs that puts wait for written at once, not
   * after DEFAULT_PACK_DELAY_MS: the open ones now, new ones on the next turn of the event loop.
   * Only latency changes: what is written, and in which order, stays the same.
   */
  async hurry<T>(fn: () => Promise<T>): Promise<T> {
    this.hurrying++;
    try {
      // Only packs a put waits for have a timer; deferred ones are written by sync().
      for (const p of [...this.open.values()]) if (p.timer !== undefined) this.seal(p);
      return await fn();
    } finally {
      this.hurrying--;
    }
  }

  /** A deferred put's pack that failed fails the next put or sync of this store (once). */
  private throwDeferredFailure(): void {
    const e = this.deferredFailure;
    if (e === undefined) return;
    this.deferredFailure = undefined;
    throw e;
  }

  private pendingPack(kind: PackedKind, id: string): OpenPack | undefined {
    const p = this.open.get(kind);
    if (p?.byId.has(id)) return p;
    for (const w of this.writing) if (w.kind === kind && w.byId.has(id)) return w;
    for (const w of this.waitingForSlot) if (w.kind === kind && w.byId.has(id)) return w;
    return undefined;
  }

  /** Closes the open pack to new fragments and writes it when a slot is free. */
  private seal(p: OpenPack): void {
    if (this.open.get(p.kind) === p) this.open.delete(p.kind);
    if (p.timer) clearTimeout(p.timer);
    if (p.kind === 'meta') {
      // Metadata names data: the data gathered so far goes first, and this pack waits for it.
      const data = this.open.get('data');
      if (data) this.seal(data);
      p.after = [...this.waitingForSlot, ...this.writing].filter((w) => w.kind === 'data').map((w) => w.done);
    }
    this.waitingForSlot.push(p);
    this.pump();
  }

  private pump(): void {
    while (this.writing.size < this.flushSlots && this.waitingForSlot.length > 0) {
      const p = this.waitingForSlot.shift()!;
      this.writing.add(p);
      this.write(p)
        .then(p.resolve, (e: unknown) => {
          if (p.deferred) this.deferredFailure ??= e;
          p.reject(e);
        })
        .finally(() => {
        this.writing.delete(p);
        this.pump();
      });
    }
  }

  /** The pack first, then its index: an index never names a pack that is not there. */
  private async write(p: OpenPack): Promise<void> {
    if (p.after) await Promise.all(p.after);
    const bytes = buildPack(this.o.indexKey, p.kind, p.fragments);
    // The fragments are in the pack now: reads until it is indexed are answered from there, and
    // their own copies go while it is written (at 2 flush slots, 8 MiB less held by a put).
    let at = 0;
    for (const f of p.fragments) {
      f.bytes = bytes.subarray(at, at + f.bytes.length);
      p.byId.set(f.id, f.bytes);
      at += f.bytes.length;
    }
    const pack = toHex(blake3(bytes));
    await this.inner.put(this.packNs, pack, bytes, { handedOver: true });
    await this.inner.put(this.indexNs, pack, sealedIndexOf(bytes, `pack ${pack}`));
    let offset = 0;
    this.table.add(
      pack,
      p.kind,
      p.fragments.map((f) => {
        const e = { id: f.id, offset, length: f.bytes.length };
        offset += f.bytes.length;
        return e;
      }),
    );
  }

  // ---- reading ----------------------------------------------------------------------------------

  private async read(loc: PackLocation): Promise<Uint8Array> {
    return getRangeOf(this.inner, this.packNs, loc.pack, loc.offset, loc.length);
  }

  async get(ns: Namespace, id: string, o?: GetOptions): Promise<Uint8Array> {
    const kind = this.packedKind(ns);
    if (kind === undefined) return this.inner.get(ns, id, o);
    const pending = this.pendingPack(kind, id);
    if (pending) return Buffer.from(pending.byId.get(id)!);
    if (!this.isLoaded) await this.ready();
    const loc = this.table.lookup(id, kind);
    if (loc) {
      try {
        return await this.read(loc);
      } catch (e) {
        if (!isFragfsError(e, 'MISSING_FRAGMENT')) throw e;
        // The pack went (a gc moved its fragments elsewhere): forget it and look again.
        this.table.drop(loc.pack);
      }
    } else {
      try {
        return await this.inner.get(ns, id, o);
      } catch (e) {
        if (!isFragfsError(e, 'MISSING_FRAGMENT')) throw e;
      }
    }
    // Not where this process last saw it: another writer packed it, or a gc moved it.
    await this.relearn();
    const again = this.table.lookup(id, kind);
    if (again === undefined) throw missingFragment(ns, id);
    return this.read(again);
  }

  async getRange(ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array> {
    if (this.packedKind(ns) === undefined) return getRangeOf(this.inner, ns, id, offset, length);
    return rangeOf(await this.get(ns, id), ns, id, offset, length);
  }

  async has(ns: Namespace, id: string): Promise<boolean> {
    return (await this.size(ns, id)) !== undefined;
  }

  /**
   * What is there now: a pack this process knows the fragment in is looked at (a stat, or a
   * request), and a pack gone since is forgotten before the answer.
   */
  async size(ns: Namespace, id: string): Promise<number | undefined> {
    const kind = this.packedKind(ns);
    if (kind === undefined) return this.inner.size(ns, id);
    const pending = this.pendingPack(kind, id);
    if (pending) return pending.byId.get(id)!.length;
    if (!this.isLoaded) await this.ready();
    let loc = this.table.lookup(id, kind);
    if (loc && !(await this.inner.has(this.packNs, loc.pack))) {
      this.table.drop(loc.pack);
      await this.relearn();
      loc = this.table.lookup(id, kind);
    }
    if (loc) return loc.length;
    const single = await this.inner.size(ns, id);
    if (single !== undefined) return single;
    // Not known here: another process may have packed it since this one last looked.
    await this.relearn();
    return this.table.lookup(id, kind)?.length;
  }

  forgetGone(): Promise<void> {
    return this.relearn();
  }

  /**
   * Every id once: the single objects, then each packed id from the pack the table resolves it to
   * (an id two writers both packed is listed from one of them).
   */
  async *list(ns: Namespace): AsyncIterable<string> {
    const kind = this.packedKind(ns);
    if (kind === undefined) {
      yield* this.inner.list(ns);
      return;
    }
    await this.relearn();
    for await (const id of this.inner.list(ns)) if (this.table.lookup(id, kind) === undefined) yield id;
    for (const pack of this.table.packIds()) {
      if (this.table.kindOf(pack) !== kind) continue;
      const idx = await this.entriesOf(pack, true);
      for (const e of idx?.entries ?? []) if (this.table.lookup(e.id, kind)?.pack === pack) yield e.id;
    }
  }

  // ---- for gc (src/gc/gc-packs.ts) --------------------------------------------------------------

  /** Every pack of the space as the index objects list them now. */
  async packIds(): Promise<string[]> {
    await this.relearn();
    return this.table.packIds();
  }

  /** The kind of a pack this process knows (packIds lists them). */
  kindOfPack(pack: string): PackedKind | undefined {
    return this.table.kindOf(pack);
  }

  /** Whether `other` seals pack indexes with this store's key (a copy of the same space). */
  sharesIndexKeyWith(other: PackStore): boolean {
    return timingSafeEqual(Buffer.from(this.o.indexKey), Buffer.from(other.o.indexKey));
  }

  /**
   * Stores a pack of this space read from another store (sync) as it is, under its own id, then
   * its index: the pack first, so an index never names a pack that is not there. Refused with
   * CORRUPT unless the bytes hash to the id and the pack's index opens with this space's key; the
   * caller checks each fragment against its id before it hands the pack over.
   */
  async adoptPack(pack: string, bytes: Uint8Array): Promise<void> {
    if (toHex(blake3(bytes)) !== pack) throw new FragfsError('CORRUPT', `pack ${pack}: its bytes do not hash to its id`, { fragmentId: pack });
    const idx = readPackIndex(this.o.indexKey, bytes, `pack ${pack}`);
    await this.inner.put(this.packNs, pack, bytes);
    await this.inner.put(this.indexNs, pack, sealedIndexOf(bytes, `pack ${pack}`));
    this.table.addIndex(pack, idx);
  }

  /** The pack this process reads `id` from, if packed. */
  packOf(kind: PackedKind, id: string): string | undefined {
    return this.table.lookup(id, kind)?.pack;
  }

  /**
   * The stored bytes of a packed fragment as the table last learnt them, with no look at the store
   * (`size` stats the pack each time): for figures over many fragments, such as gc's report.
   */
  packedSize(kind: PackedKind, id: string): number | undefined {
    return this.table.lookup(id, kind)?.length;
  }

  /**
   * A pack's entries from its index object; undefined when the index is gone, or, with `inPlace`,
   * when the pack itself is not in place (then they are also checked against its size).
   */
  async entriesOf(pack: string, inPlace = false): Promise<OpenedPackIndex | undefined> {
    const known = this.decodedIndexes.get(pack);
    if (known !== undefined) {
      // Decoded before: an index never changes (it is its pack's trailer), so only whether it and
      // its pack are still there is asked, and the size check is made again.
      if (!(await this.inner.has(this.indexNs, pack))) return undefined;
      if (!inPlace) return known.idx;
      const size = await this.inner.size(this.packNs, pack);
      if (size === undefined) return undefined;
      if (size === known.packBytes) return known.idx;
      // A size the index does not fit: the full check below says how.
    }
    let sealed: Uint8Array;
    try {
      sealed = await this.inner.get(this.indexNs, pack);
    } catch (e) {
      if (isFragfsError(e, 'MISSING_FRAGMENT')) return undefined;
      throw e;
    }
    if (!inPlace) {
      const idx = openSealedIndex(this.o.indexKey, sealed, `pack ${pack}`);
      this.rememberIndex(pack, idx, sealed.length);
      return idx;
    }
    const size = await this.inner.size(this.packNs, pack);
    if (size === undefined) return undefined;
    const idx = openSealedIndex(this.o.indexKey, sealed, `pack ${pack}`, size);
    this.rememberIndex(pack, idx, sealed.length);
    return idx;
  }

  /**
   * Indexes decoded lately, with the size of the pack they describe (entries, then the sealed index
   * and the tail). Off unless asked for (keepDecodedIndexes): gc reads every index three times in
   * one run (the listing, the table, the sweep), and a mount needs them once.
   */
  private decodedIndexes = new ByteLru<string, { idx: OpenedPackIndex; packBytes: number }>(0, () => 1);

  /** Keeps up to `maxBytes` of decoded indexes for this store's life (gc asks for it). */
  keepDecodedIndexes(maxBytes: number): void {
    this.decodedIndexes = new ByteLru(maxBytes, (v) => 256 + v.idx.count * DECODED_ENTRY_BYTES);
  }

  private rememberIndex(pack: string, idx: OpenedPackIndex, sealedBytes: number): void {
    // From the arrays: asking for `entries` would make every hex id (most of opening a big store).
    const last = idx.count - 1;
    const end = last < 0 ? 0 : idx.offsets[last]! + idx.lengths[last]!;
    this.decodedIndexes.set(pack, { idx, packBytes: end + sealedBytes + PACK_TAIL_BYTES });
  }

  readEntry(pack: string, offset: number, length: number): Promise<Uint8Array> {
    return getRangeOf(this.inner, this.packNs, pack, offset, length);
  }

  /** Moves a pack out of sight (its index stays, so a later gc can judge it in the trash). */
  async trashPack(pack: string): Promise<void> {
    await this.inner.trash(this.packNs, pack);
    this.table.drop(pack);
  }

  async untrashPack(pack: string): Promise<void> {
    await this.inner.untrash(this.packNs, pack);
    if (!(await this.inner.has(this.packNs, pack))) return;
    // A gc purging it meanwhile may have deleted its index first: the pack says what it was.
    if (await this.inner.has(this.indexNs, pack)) await this.learn(pack);
    else await this.rebuildIndex(pack);
  }

  /**
   * Deletes a trashed pack for good, then its index unless a writer brought the pack back in
   * place before the purge (once purged, nothing can bring it back, so the look cannot go stale).
   */
  async purgePack(pack: string): Promise<void> {
    this.decodedIndexes.delete(pack);
    // The index first: a process that looks again (forgetGone) then no longer finds the pack.
    await this.inner.delete(this.indexNs, pack);
    await this.inner.purge(this.packNs, pack);
    this.table.drop(pack);
    // A writer brought it back in place before the purge: it needs its index again.
    if (await this.inner.has(this.packNs, pack)) await this.rebuildIndex(pack);
  }

  /**
   * Deletes the index of a pack that is neither in place nor in the trash (a crash between a purge
   * and the index's delete). The trash is looked at first and the place second: only gc moves a
   * pack into the trash, and the gc calling this holds the gc lock.
   */
  async deleteOrphanIndex(pack: string): Promise<void> {
    for await (const id of this.inner.listTrash(this.packNs)) if (id === pack) return;
    if (await this.inner.has(this.packNs, pack)) return;
    this.decodedIndexes.delete(pack);
    await this.inner.delete(this.indexNs, pack);
  }

  listIndexes(): AsyncIterable<string> {
    return this.inner.list(this.indexNs);
  }

  listTrashedPacks(): AsyncIterable<string> {
    return this.inner.listTrash(this.packNs);
  }

  async hasPack(pack: string): Promise<boolean> {
    return this.inner.has(this.packNs, pack);
  }

  // ---- passed to the inner store ------------------------------------------------------------------

  /** A packed fragment stays in its pack until a gc rewrites the pack (gc-packs.ts). */
  delete(ns: Namespace, id: string): Promise<void> {
    return this.inner.delete(ns, id);
  }
  /** gc moves packed fragments by their packs (gc-packs.ts): this moves single objects only. */
  trash(ns: Namespace, id: string): Promise<void> {
    return this.inner.trash(ns, id);
  }
  /**
   * Also brings back the pack this process knows the fragment in, when a gc had moved it to the
   * trash: a writer naming a fragment it holds (gc-guard.ts) needs it in place.
   */
  async untrash(ns: Namespace, id: string): Promise<void> {
    await this.inner.untrash(ns, id);
    const kind = this.packedKind(ns);
    if (kind === undefined) return;
    if (!this.isLoaded) await this.ready();
    const pack = this.table.lookup(id, kind)?.pack ?? (await this.trashedPackOf(kind, id));
    if (pack === undefined) return;
    await this.untrashPack(pack);
    if (!(await this.inner.has(this.packNs, pack))) {
      // Purged already: what has() answers next must not come from this process's old view.
      this.table.drop(pack);
      await this.relearn();
    }
  }

  /** A trashed pack holding `id` (only a writer racing a gc asks: a listing of the trash is fine). */
  private async trashedPackOf(kind: PackedKind, id: string): Promise<string | undefined> {
    for await (const pack of this.inner.listTrash(this.packNs)) {
      const idx = await this.entriesOf(pack).catch(() => undefined);
      if (idx?.kind === kind && idx.entries.some((e) => e.id === id)) return pack;
    }
    return undefined;
  }
  purge(ns: Namespace, id: string): Promise<void> {
    return this.inner.purge(ns, id);
  }
  listTrash(ns: Namespace): AsyncIterable<string> {
    return this.inner.listTrash(ns);
  }
  /** Writes the open packs (deferred puts become durable with the inner store's sync). */
  async sync(): Promise<void> {
    await this.drain();
    this.throwDeferredFailure();
    await this.inner.sync();
  }

  private async drain(): Promise<void> {
    for (const p of [...this.open.values()]) this.seal(p);
    await Promise.allSettled([...this.waitingForSlot, ...this.writing].map((p) => p.done));
  }
  refresh?(): void;
  async close(): Promise<void> {
    await this.drain();
    await this.inner.close();
  }
}
