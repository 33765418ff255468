// The in-memory index of the packs of one space: fragment id -> (pack, offset, length), kept in typed
// arrays so that a million packed fragments cost about 60 MB and no garbage-collected objects.
// Lookups go by the id's first 96 bits in an open-addressing table. The rest of the id is not kept:
// two ids of one store agree on 96 bits with a chance of n/2^96 per new fragment (1e-23 at a million
// fragments), every fragment read is checked against its full id by the repo layer anyway, and lists
// read full ids from the packs' indexes.

import type { PackEntry, PackedKind } from './pack-format.js';

export interface PackLocation {
  pack: string;
  kind: PackedKind;
  offset: number;
  length: number;
}

interface PackRecord {
  id: string;
  kind: PackedKind;
  offsets: Uint32Array;
  lengths: Uint32Array;
}

const EMPTY = -1;
const ENTRY_BITS = 2 ** 17; // entries per pack < 131,072 (MAX_PACK_ENTRIES is 65,536)

/** Bits 0-47 and 48-95 of a hex id, each as an exact number. */
function keyOf(id: string): [number, number] {
  return [parseInt(id.slice(0, 12), 16), parseInt(id.slice(12, 24), 16)];
}

export class PackTable {
  private packs: (PackRecord | undefined)[] = [];
  private readonly packNo = new Map<string, number>();
  private keys = new Float64Array(1024);
  private keys2 = new Float64Array(1024);
  private refs = new Float64Array(1024).fill(EMPTY);
  private used = 0;
  /** Slots that held an entry of a dropped pack (they keep probe chains intact until a rehash). */
  private dead = 0;

  get packCount(): number {
    return this.packNo.size;
  }

  get entryCount(): number {
    return this.used - this.dead;
  }

  hasPack(pack: string): boolean {
    return this.packNo.has(pack);
  }

  packIds(): string[] {
    return [...this.packNo.keys()];
  }

  kindOf(pack: string): PackedKind | undefined {
    const n = this.packNo.get(pack);
    return n === undefined ? undefined : this.packs[n]!.kind;
  }

  /** Adds a pack's entries (a pack already known is left as it is). */
  add(pack: string, kind: PackedKind, entries: readonly PackEntry[]): void {
    const keys = new Float64Array(entries.length * 2);
    entries.forEach((e, i) => {
      [keys[2 * i], keys[2 * i + 1]] = keyOf(e.id);
    });
    this.addIndex(pack, {
      kind,
      count: entries.length,
      offsets: Float64Array.from(entries, (e) => e.offset),
      lengths: Float64Array.from(entries, (e) => e.length),
      keys,
    });
  }

  /** Adds a pack from its opened index's arrays (OpenedPackIndex), without a hex id. */
  addIndex(pack: string, idx: { kind: PackedKind; count: number; offsets: Float64Array; lengths: Float64Array; keys: Float64Array }): void {
    if (this.packNo.has(pack)) return;
    const no = this.packs.length;
    const n = idx.count;
    this.packs.push({ id: pack, kind: idx.kind, offsets: Uint32Array.from(idx.offsets), lengths: Uint32Array.from(idx.lengths) });
    this.packNo.set(pack, no);
    this.reserve(this.used + n);
    for (let i = 0; i < n; i++) this.insert([idx.keys[2 * i]!, idx.keys[2 * i + 1]!], no * ENTRY_BITS + i);
  }

  /** Forgets a pack (gone from the store): its entries no longer resolve. */
  drop(pack: string): void {
    const no = this.packNo.get(pack);
    if (no === undefined) return;
    this.packNo.delete(pack);
    const rec = this.packs[no]!;
    this.packs[no] = undefined;
    // Its slots stay as tombstones (their pack number resolves to nothing) until the next rehash.
    this.dead += rec.offsets.length;
    if (this.dead > this.used / 2) this.rehash(this.keys.length);
  }

  /**
   * Where `id` lies, or undefined. With `kind`, only a pack of that kind answers. When two packs
   * hold the id (two writers packed it), the first found answers.
   */
  lookup(id: string, kind?: PackedKind): PackLocation | undefined {
    const [key, key2] = keyOf(id);
    const mask = this.keys.length - 1;
    for (let i = this.slotOf(key); ; i = (i + 1) & mask) {
      const ref = this.refs[i]!;
      if (ref === EMPTY) return undefined;
      if (this.keys[i] !== key || this.keys2[i] !== key2) continue;
      const no = Math.floor(ref / ENTRY_BITS);
      const rec = this.packs[no];
      if (rec === undefined || (kind !== undefined && rec.kind !== kind)) continue;
      const e = ref - no * ENTRY_BITS;
      return { pack: rec.id, kind: rec.kind, offset: rec.offsets[e]!, length: rec.lengths[e]! };
    }
  }

  private slotOf(key: number): number {
    // The id is a uniform hash: any of its bits are as good a slot as a mix of them.
    return key % this.keys.length;
  }

  private insert([key, key2]: [number, number], ref: number): void {
    const mask = this.keys.length - 1;
    let i = this.slotOf(key);
    while (this.refs[i] !== EMPTY) i = (i + 1) & mask;
    this.keys[i] = key;
    this.keys2[i] = key2;
    this.refs[i] = ref;
    this.used++;
  }

  /**
   * Keeps the table at most three quarters full. Linear probing then takes about 8 probes to find
   * an id absent (a new block's lookup) and 2.5 to find one present, against 2.5 and 1.5 at half
   * full: a few nanoseconds in typed arrays, where a table kept half full took a third more memory
   * on average (24 MiB instead of 12 at 300,000 fragments).
   */
  private reserve(entries: number): void {
    let size = this.keys.length;
    while (entries * 4 > size * 3) size *= 2;
    if (size !== this.keys.length) this.rehash(size);
  }

  private rehash(size: number): void {
    const oldKeys = this.keys;
    const oldKeys2 = this.keys2;
    const oldRefs = this.refs;
    this.keys = new Float64Array(size);
    this.keys2 = new Float64Array(size);
    this.refs = new Float64Array(size).fill(EMPTY);
    this.used = 0;
    this.dead = 0;
    for (let i = 0; i < oldKeys.length; i++) {
      const ref = oldRefs[i]!;
      if (ref === EMPTY || this.packs[Math.floor(ref / ENTRY_BITS)] === undefined) continue;
      this.insert([oldKeys[i]!, oldKeys2[i]!], ref);
    }
  }
}
