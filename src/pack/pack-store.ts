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

import { blake3, toHex } from '../codec/blake3.js';
import { FragfsError } from '../errors.js';
import { getRangeOf, missingFragment, type Namespace, type Store } from '../store/store.js';
import { buildPack, readPackIndex, openPackIndex, PACK_TAIL_BYTES, type PackedKind } from './pack-format.js';
import { PackTable, type PackLocation } from './pack-table.js';

/** Fragments up to this many stored bytes go into packs; larger ones stay single objects. */
export const DEFAULT_PACK_SMALL_BYTES = 256 * 1024;
/** A pack is written once it holds this many bytes. */
export const DEFAULT_PACK_TARGET_BYTES = 4 * 1024 * 1024;
/** An open pack waits at most this long for more fragments before it is written. */
export const DEFAULT_PACK_DELAY_MS = 5;

export interface PackStoreOptions {
  space: string;
  /** packIndexKeyOf(the space's master key). */
  indexKey: Uint8Array;
  /** Whether new small fragments go into packs (reads always look in packs). */
  writePacks: boolean;
  smallBytes?: number;
  targetBytes?: number;
  delayMs?: number;
  /** Packs written at once (default: the inner store's parallelism / 4, at least 2). */
  flushSlots?: number;
}

interface OpenPack {
  kind: PackedKind;
  fragments: { id: string; bytes: Uint8Array }[];
  byId: Map<string, Uint8Array>;
  bytes: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
}

export class PackStore implements Store {
  readonly backend;
  readonly parallelism: number;
  private readonly table = new PackTable();
  private readonly open = new Map<PackedKind, OpenPack>();
  /** Packs sealed and being written: their fragments are readable from memory until indexed. */
  private readonly writing = new Set<OpenPack>();
  private readonly waitingForSlot: OpenPack[] = [];
  private readonly smallBytes: number;
  private readonly targetBytes: number;
  private readonly delayMs: number;
  private readonly flushSlots: number;
  private loaded: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly packNs: Namespace;
  private readonly indexNs: Namespace;

  constructor(
    readonly inner: Store,
    private readonly o: PackStoreOptions,
  ) {
    this.backend = inner.backend;
    this.smallBytes = o.smallBytes ?? DEFAULT_PACK_SMALL_BYTES;
    this.targetBytes = o.targetBytes ?? DEFAULT_PACK_TARGET_BYTES;
    this.delayMs = o.delayMs ?? DEFAULT_PACK_DELAY_MS;
    this.flushSlots = o.flushSlots ?? Math.max(2, Math.floor((inner.parallelism ?? 8) / 4));
    // Callers keep this many puts in flight: the more wait for one pack, the fewer packs.
    this.parallelism = Math.max(64, inner.parallelism ?? 0);
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
    this.loaded ??= this.relearn().then(() => {
      this.isLoaded = true;
    });
    return this.loaded;
  }

  /** Learns the packs written since the last look and forgets those gone (coalesced). */
  private relearn(): Promise<void> {
    this.refreshing ??= this.load().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async load(): Promise<void> {
    const listed = new Set<string>();
    for await (const pack of this.inner.list(this.indexNs)) {
      listed.add(pack);
      if (this.table.hasPack(pack)) continue;
      await this.learn(pack);
    }
    for (const pack of this.table.packIds()) if (!listed.has(pack)) this.table.drop(pack);
  }

  /** Reads a pack's index object into the table; a damaged one is rebuilt from the pack's tail. */
  private async learn(pack: string): Promise<void> {
    let sealed: Uint8Array;
    try {
      sealed = await this.inner.get(this.indexNs, pack);
    } catch (e) {
      if (e instanceof FragfsError && e.code === 'MISSING_FRAGMENT') return; // gone meanwhile
      throw e;
    }
    const size = await this.inner.size(this.packNs, pack);
    if (size === undefined) return; // an index whose pack is gone: nothing lies there
    try {
      const withTail = Buffer.concat([sealed, tailOf(sealed.length)]);
      const idx = openPackIndex(this.o.indexKey, withTail, size, `pack ${pack}`);
      this.table.add(pack, idx.kind, idx.entries);
    } catch (e) {
      if (!(e instanceof FragfsError && e.code === 'CORRUPT')) throw e;
      await this.rebuildIndex(pack);
    }
  }

  /** The index of `pack` from the pack itself, written back as its index object. */
  async rebuildIndex(pack: string): Promise<void> {
    const bytes = await this.inner.get(this.packNs, pack);
    if (toHex(blake3(bytes)) !== pack) throw new FragfsError('CORRUPT', `pack ${pack}: its bytes do not hash to its id`, { fragmentId: pack });
    const idx = readPackIndex(this.o.indexKey, bytes, `pack ${pack}`);
    const trailerBytes = bytes.length - idx.entries.reduce((n, e) => n + e.length, 0);
    await this.inner.put(this.indexNs, pack, bytes.subarray(bytes.length - trailerBytes, bytes.length - PACK_TAIL_BYTES));
    this.table.add(pack, idx.kind, idx.entries);
  }

  // ---- writing ----------------------------------------------------------------------------------

  async put(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    const kind = this.packedKind(ns);
    if (kind === undefined || !this.o.writePacks || bytes.length > this.smallBytes) return this.inner.put(ns, id, bytes);
    if (!this.isLoaded) await this.ready();
    if (this.table.lookup(id, kind)) return;
    const pending = this.pendingPack(kind, id);
    if (pending) return pending.done;
    let p = this.open.get(kind);
    if (!p) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      done.catch(() => undefined); // each put awaits it; none may go unhandled
      p = { kind, fragments: [], byId: new Map(), bytes: 0, done, resolve, reject };
      this.open.set(kind, p);
      const opened = p;
      p.timer = setTimeout(() => this.seal(opened), this.delayMs);
    }
    p.fragments.push({ id, bytes });
    p.byId.set(id, bytes);
    p.bytes += bytes.length;
    if (p.bytes >= this.targetBytes) this.seal(p);
    return p.done;
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
    this.waitingForSlot.push(p);
    this.pump();
  }

  private pump(): void {
    while (this.writing.size < this.flushSlots && this.waitingForSlot.length > 0) {
      const p = this.waitingForSlot.shift()!;
      this.writing.add(p);
      this.write(p).then(p.resolve, p.reject).finally(() => {
        this.writing.delete(p);
        this.pump();
      });
    }
  }

  /** The pack first, then its index: an index never names a pack that is not there. */
  private async write(p: OpenPack): Promise<void> {
    const bytes = buildPack(this.o.indexKey, p.kind, p.fragments);
    const pack = toHex(blake3(bytes));
    const sealedBytes = bytes.readUInt32LE(bytes.length - PACK_TAIL_BYTES);
    await this.inner.put(this.packNs, pack, bytes);
    await this.inner.put(this.indexNs, pack, bytes.subarray(bytes.length - PACK_TAIL_BYTES - sealedBytes, bytes.length - PACK_TAIL_BYTES));
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

  async get(ns: Namespace, id: string): Promise<Uint8Array> {
    const kind = this.packedKind(ns);
    if (kind === undefined) return this.inner.get(ns, id);
    const pending = this.pendingPack(kind, id);
    if (pending) return Buffer.from(pending.byId.get(id)!);
    if (!this.isLoaded) await this.ready();
    const loc = this.table.lookup(id, kind);
    if (loc) {
      try {
        return await this.read(loc);
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    } else {
      try {
        return await this.inner.get(ns, id);
      } catch (e) {
        if (!isMissing(e)) throw e;
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
    const whole = await this.get(ns, id);
    if (whole.length < offset + length) throw new FragfsError('CORRUPT', `fragment ${id} (${ns.kind}) is shorter than ${offset + length} bytes`, { fragmentId: id });
    return whole.subarray(offset, offset + length);
  }

  async has(ns: Namespace, id: string): Promise<boolean> {
    return (await this.size(ns, id)) !== undefined;
  }

  async size(ns: Namespace, id: string): Promise<number | undefined> {
    const kind = this.packedKind(ns);
    if (kind === undefined) return this.inner.size(ns, id);
    const pending = this.pendingPack(kind, id);
    if (pending) return pending.byId.get(id)!.length;
    if (!this.isLoaded) await this.ready();
    return this.table.lookup(id, kind)?.length ?? (await this.inner.size(ns, id));
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
      let sealed: Uint8Array;
      let size: number | undefined;
      try {
        sealed = await this.inner.get(this.indexNs, pack);
        size = await this.inner.size(this.packNs, pack);
      } catch (e) {
        if (isMissing(e)) continue;
        throw e;
      }
      if (size === undefined) continue;
      const idx = openPackIndex(this.o.indexKey, Buffer.concat([sealed, tailOf(sealed.length)]), size, `pack ${pack}`);
      for (const e of idx.entries) if (this.table.lookup(e.id, kind)?.pack === pack) yield e.id;
    }
  }

  // ---- passed to the inner store ------------------------------------------------------------------

  delete(ns: Namespace, id: string): Promise<void> {
    return this.inner.delete(ns, id);
  }
  trash(ns: Namespace, id: string): Promise<void> {
    return this.inner.trash(ns, id);
  }
  untrash(ns: Namespace, id: string): Promise<void> {
    return this.inner.untrash(ns, id);
  }
  purge(ns: Namespace, id: string): Promise<void> {
    return this.inner.purge(ns, id);
  }
  listTrash(ns: Namespace): AsyncIterable<string> {
    return this.inner.listTrash(ns);
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  refresh?(): void;
  async close(): Promise<void> {
    for (const p of [...this.open.values()]) this.seal(p);
    await Promise.allSettled([...this.waitingForSlot, ...this.writing].map((p) => p.done));
    await this.inner.close();
  }
}

function isMissing(e: unknown): boolean {
  return e instanceof FragfsError && e.code === 'MISSING_FRAGMENT';
}

/** The fixed tail of a pack whose sealed index is `sealedBytes` long. */
function tailOf(sealedBytes: number): Buffer {
  const tail = Buffer.alloc(PACK_TAIL_BYTES);
  tail.writeUInt32LE(sealedBytes, 0);
  tail.write('fpk1', 4, 'latin1');
  return tail;
}
