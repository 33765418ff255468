// An ObjectBackend in memory, for unit tests of what sits on top of one (ObjectStore, the retry
// layer, leases): shared by every connection opened on the same root, with failures to inject.

import type { CallOptions, ObjectBackend, ObjectEntry, PutOptions } from '../../src/remote/object-backend.js';
import { RemoteFailure } from '../../src/remote/remote-failure.js';

export class MemoryObjectRoot {
  readonly objects = new Map<string, Uint8Array>();
  /** Calls to fail before they take effect: each entry is consumed by the next call it matches. */
  readonly failures: { op: string; kind: RemoteFailure['kind'] }[] = [];
  /** Calls that never answer (until aborted): consumed like failures. */
  hangs = 0;
  calls = 0;
  /** Bytes answered by get and getRange, and how many of each call (tests of what reads cost). */
  bytesRead = 0;
  gets = 0;
  rangeGets = 0;

  open(): ObjectBackend {
    return new MemoryObjectBackend(this);
  }
}

class MemoryObjectBackend implements ObjectBackend {
  readonly url = 'memory-objects:';
  readonly parallelism = 8;
  constructor(private readonly root: MemoryObjectRoot) {}

  private async enter(op: string, o?: CallOptions): Promise<void> {
    this.root.calls++;
    await Promise.resolve();
    if (this.root.hangs > 0) {
      this.root.hangs--;
      await new Promise<never>((_, reject) => o?.signal?.addEventListener('abort', () => reject(o.signal!.reason as Error)));
    }
    const i = this.root.failures.findIndex((f) => f.op === op || f.op === '*');
    if (i >= 0) {
      const [f] = this.root.failures.splice(i, 1);
      throw new RemoteFailure(f!.kind, `injected ${f!.kind} failure of ${op}`);
    }
  }

  async get(key: string, o?: CallOptions): Promise<Uint8Array | undefined> {
    await this.enter('get', o);
    const v = this.root.objects.get(key);
    this.root.gets++;
    this.root.bytesRead += v?.length ?? 0;
    return v === undefined ? undefined : Uint8Array.from(v);
  }

  async getRange(key: string, offset: number, length: number, o?: CallOptions): Promise<Uint8Array | undefined> {
    await this.enter('getRange', o);
    const v = this.root.objects.get(key);
    this.root.rangeGets++;
    if (v === undefined) return undefined;
    const part = v.slice(Math.min(offset, v.length), Math.min(offset + length, v.length));
    this.root.bytesRead += part.length;
    return part;
  }

  async put(key: string, bytes: Uint8Array, o: PutOptions & CallOptions = {}): Promise<boolean> {
    await this.enter('put', o);
    if (o.ifAbsent && this.root.objects.has(key)) return false;
    this.root.objects.set(key, Uint8Array.from(bytes));
    return true;
  }

  async size(key: string, o?: CallOptions): Promise<number | undefined> {
    await this.enter('size', o);
    return this.root.objects.get(key)?.length;
  }

  async delete(key: string, o?: CallOptions): Promise<void> {
    await this.enter('delete', o);
    this.root.objects.delete(key);
  }

  async *list(prefix: string, o?: CallOptions): AsyncIterable<ObjectEntry> {
    await this.enter('list', o);
    for (const [key, v] of [...this.root.objects]) if (key.startsWith(prefix)) yield { key, size: v.length };
  }

  async close(): Promise<void> {}
}
