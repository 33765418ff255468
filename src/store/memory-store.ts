// The in-memory backend: Maps of private byte copies, for tests and Repo.openMemory. Nothing is
// durable beyond the MemoryVolume object, which several store handles may share to model reopening.

import { FragfsError } from '../errors.js';
import { checkId, checkNamespace, missingFragment, type Namespace, type Store } from './store.js';

/** The "location" of memory stores: fragments by `space:kind`, then by id. */
export class MemoryVolume {
  readonly maps = new Map<string, Map<string, Uint8Array>>();
}

export class MemoryStore implements Store {
  readonly backend = 'memory' as const;
  private closed = false;

  constructor(
    readonly volume: MemoryVolume = new MemoryVolume(),
    private readonly readOnly = false,
  ) {}

  private map(ns: Namespace, create: boolean): Map<string, Uint8Array> | undefined {
    if (this.closed) throw new FragfsError('INVALID', 'the memory store is closed');
    const key = `${ns.space}:${ns.kind}`;
    let m = this.volume.maps.get(key);
    if (!m && create) {
      m = new Map();
      this.volume.maps.set(key, m);
    }
    return m;
  }

  async put(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    if (this.readOnly) throw new FragfsError('READ_ONLY', 'cannot put: the store is open read-only');
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
    if (this.readOnly) throw new FragfsError('READ_ONLY', 'cannot delete: the store is open read-only');
    this.map(ns, false)?.delete(id);
  }

  async *list(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    const m = this.map(ns, false);
    if (!m) return;
    // A snapshot of the keys: the contract only promises ids present when the listing started.
    for (const id of [...m.keys()]) yield id;
  }

  async sync(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
  }
}
