// The in-memory backend: Maps of private byte copies, for tests and Repo.openMemory. Nothing is
// durable beyond the MemoryVolume object, which several store handles may share to model reopening.

import { FragfsError } from '../errors.js';
import { checkId, checkNamespace, missingFragment, type Namespace, type Store } from './store.js';

/** The "location" of memory stores: fragments by `space:kind`, then by id; the trash likewise. */
export class MemoryVolume {
  readonly maps = new Map<string, Map<string, Uint8Array>>();
  readonly trash = new Map<string, Map<string, Uint8Array>>();
}

export class MemoryStore implements Store {
  readonly backend = 'memory' as const;
  private closed = false;

  constructor(
    readonly volume: MemoryVolume = new MemoryVolume(),
    private readonly readOnly = false,
  ) {}

  private map(ns: Namespace, create: boolean, maps = this.volume.maps): Map<string, Uint8Array> | undefined {
    if (this.closed) throw new FragfsError('INVALID', 'the memory store is closed');
    const key = `${ns.space}:${ns.kind}`;
    let m = maps.get(key);
    if (!m && create) {
      m = new Map();
      maps.set(key, m);
    }
    return m;
  }

  private trashMap(ns: Namespace, create: boolean): Map<string, Uint8Array> | undefined {
    return this.map(ns, create, this.volume.trash);
  }

  private checkWritable(what: string): void {
    if (this.readOnly) throw new FragfsError('READ_ONLY', `cannot ${what}: the store is open read-only`);
  }

  async put(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('put');
    const m = this.map(ns, true)!;
    // A private copy: the caller may reuse its buffer; content addressing lets us skip a present id.
    if (!m.has(id)) m.set(id, new Uint8Array(bytes));
  }

  async get(ns: Namespace, id: string): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    const v = this.map(ns, false)?.get(id);
    if (v === undefined) throw missingFragment(ns, id);
    return v.slice();
  }

  async has(ns: Namespace, id: string): Promise<boolean> {
    checkNamespace(ns);
    checkId(id);
    return this.map(ns, false)?.has(id) ?? false;
  }

  async size(ns: Namespace, id: string): Promise<number | undefined> {
    checkNamespace(ns);
    checkId(id);
    return this.map(ns, false)?.get(id)?.length;
  }

  async delete(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('delete');
    this.map(ns, false)?.delete(id);
  }

  async *list(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    const m = this.map(ns, false);
    if (!m) return;
    // A snapshot of the keys: the contract only promises ids present when the listing started.
    for (const id of [...m.keys()]) yield id;
  }

  // The moves below are synchronous between their checks and the Map updates: atomic in one process.

  async trash(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('trash');
    const m = this.map(ns, false);
    const v = m?.get(id);
    if (v === undefined) return;
    this.trashMap(ns, true)!.set(id, v);
    m!.delete(id);
  }

  async untrash(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('untrash');
    const t = this.trashMap(ns, false);
    const v = t?.get(id);
    if (v === undefined) return;
    const m = this.map(ns, true)!;
    // Put again meanwhile: same id, same bytes, the copy in place stays.
    if (!m.has(id)) m.set(id, v);
    t!.delete(id);
  }

  async purge(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('purge');
    this.trashMap(ns, false)?.delete(id);
  }

  async *listTrash(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    const t = this.trashMap(ns, false);
    if (!t) return;
    for (const id of [...t.keys()]) yield id;
  }

  async sync(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
  }
}
