// The fragfs Store contract (src/store/store.ts) on any ObjectBackend: fragments of each space and
// kind under their own key prefix, the trash one level down, as the dir backend lays out files
// (docs/FORMAT.md section 3, "object"). Every put is durable when it resolves, so sync() has
// nothing left to do.

import { FragfsError } from '../errors.js';
import { checkId, checkNamespace, checkRange, missingFragment, rangeOf, type FragmentKind, type Namespace, type Store } from '../store/store.js';
import { withKeyLock } from '../store/key-lock.js';
import type { ObjectBackend } from './object-backend.js';

/** Folder of each kind under `<space>/`, the same names as the dir backend's. */
export const OBJECT_KIND_DIRS: Readonly<Record<FragmentKind, string>> = { data: 'objects', meta: 'meta', ref: 'refs', pack: 'packs', index: 'index', parity: 'parity' };
export const OBJECT_TRASH_DIR = 'trash';

const ID_RE = /^[0-9a-f]{64}$/;
/**
 * Fragments at least this large are looked up before they are sent: a lookup is a small request,
 * and a block that is already stored (an unchanged block of a changed file, the same data under
 * another name) then costs no upload. Smaller ones are sent at once (a lookup would cost as much).
 */
export const LOOK_BEFORE_PUT_BYTES = 64 * 1024;
/**
 * A ranged read asks for at least this many bytes (those after the range, up to the object's end,
 * are dropped). Measured on radosgw: an answer under 64 KiB waits about 40 ms for a delayed ACK
 * (1 to 48 KiB: 47-63 ms a request; 64 KiB to 256 KiB: 4-5 ms), and the extra bytes cost less than
 * that on any link faster than 10 Mbit/s.
 */
export const MIN_RANGED_READ_BYTES = 64 * 1024;

export class ObjectStore implements Store {
  readonly backend = 'object' as const;
  readonly parallelism: number;

  constructor(
    readonly objects: ObjectBackend,
    readonly readOnly = false,
    /** Whether `close` closes `objects` too (not when the connection is shared, store-site.ts). */
    private readonly ownsBackend = true,
  ) {
    this.parallelism = objects.parallelism;
  }

  /** `<space>/<kind dir>/` or `<space>/trash/<kind dir>/`: where a namespace's fragments are listed. */
  static prefixOf(ns: Namespace, trash = false): string {
    return trash ? `${ns.space}/${OBJECT_TRASH_DIR}/${OBJECT_KIND_DIRS[ns.kind]}/` : `${ns.space}/${OBJECT_KIND_DIRS[ns.kind]}/`;
  }

  /**
   * Data and metadata fan out by the id's first two hex digits (as restic's data/ does): services
   * that keep folders (SFTP, rclone's local remotes) then never hold 100,000 entries in one.
   */
  static keyOf(ns: Namespace, id: string, trash = false): string {
    const prefix = ObjectStore.prefixOf(ns, trash);
    return ns.kind === 'ref' ? `${prefix}${id}` : `${prefix}${id.slice(0, 2)}/${id}`;
  }

  private checkWritable(what: string): void {
    if (this.readOnly) throw new FragfsError('READ_ONLY', `cannot ${what}: the store ${this.objects.url} is open read-only`);
  }

  async put(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('put');
    // Rewriting an object with the same bytes (content addressing) is harmless, so only large ones
    // are worth a look first.
    const key = ObjectStore.keyOf(ns, id);
    // A pack is new whenever it is written (its index is sealed under a fresh nonce): no look.
    if (bytes.length >= LOOK_BEFORE_PUT_BYTES && (ns.kind === 'data' || ns.kind === 'meta') && (await this.objects.size(key)) === bytes.length) return;
    await this.objects.put(key, bytes);
  }

  async get(ns: Namespace, id: string): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    const bytes = await this.objects.get(ObjectStore.keyOf(ns, id));
    if (bytes === undefined) throw missingFragment(ns, id);
    return bytes;
  }

  /**
   * One ranged request where the service has them (ResilientBackend always answers, reading the
   * whole object where it must), of at least MIN_RANGED_READ_BYTES. A zero-length range asks only
   * whether the fragment is that long.
   */
  async getRange(ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    checkRange(offset, length);
    const key = ObjectStore.keyOf(ns, id);
    if (length === 0 || !this.objects.getRange) {
      if (length === 0) {
        const size = await this.objects.size(key);
        if (size === undefined) throw missingFragment(ns, id);
        if (size < offset) throw new FragfsError('CORRUPT', `fragment ${id} (${ns.kind}) is shorter than ${offset} bytes`, { fragmentId: id });
        return new Uint8Array(0);
      }
      const whole = await this.objects.get(key);
      if (whole === undefined) throw missingFragment(ns, id);
      return rangeOf(whole, ns, id, offset, length);
    }
    const bytes = await this.objects.getRange(key, offset, Math.max(length, MIN_RANGED_READ_BYTES));
    if (bytes === undefined) throw missingFragment(ns, id);
    if (bytes.length < length) {
      throw new FragfsError('CORRUPT', `fragment ${id} (${ns.kind}) is shorter than ${offset + length} bytes`, { fragmentId: id });
    }
    return bytes.length === length ? bytes : bytes.subarray(0, length);
  }

  async has(ns: Namespace, id: string): Promise<boolean> {
    return (await this.size(ns, id)) !== undefined;
  }

  async size(ns: Namespace, id: string): Promise<number | undefined> {
    checkNamespace(ns);
    checkId(id);
    return this.objects.size(ObjectStore.keyOf(ns, id));
  }

  async delete(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('delete');
    await this.objects.delete(ObjectStore.keyOf(ns, id));
  }

  list(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    return this.listIds(ns, false);
  }

  listTrash(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    return this.listIds(ns, true);
  }

  /** Keys under the prefix that are not a fragment's (a stray upload, a service's marker) are passed over. */
  private async *listIds(ns: Namespace, trash: boolean): AsyncIterable<string> {
    for await (const { key } of this.objects.list(ObjectStore.prefixOf(ns, trash))) {
      const id = key.slice(key.lastIndexOf('/') + 1);
      if (ID_RE.test(id) && key === ObjectStore.keyOf(ns, id, trash)) yield id;
    }
  }

  /**
   * A service has no rename: the move is a copy into the trash and then a delete in place. A crash
   * between the two leaves the fragment in place (still seen, never lost) with a copy in the trash,
   * which the next trash of the id replaces and a gc purges; gc's pins and untrash protect a writer
   * that puts the id again meanwhile (docs/DESIGN.md, "Garbage collection"). Only gc moves
   * fragments, one gc per space at a time; within a process the moves of one id take turns, so an
   * untrash never deletes the trash copy a trash has just made.
   */
  async trash(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('trash');
    await withKeyLock(this.lockKey(ns, id), async () => {
      const bytes = await this.objects.get(ObjectStore.keyOf(ns, id));
      if (bytes === undefined) return;
      await this.objects.put(ObjectStore.keyOf(ns, id, true), bytes);
      await this.objects.delete(ObjectStore.keyOf(ns, id));
    });
  }

  private lockKey(ns: Namespace, id: string): string {
    return `object:${this.objects.url}:${ObjectStore.keyOf(ns, id)}`;
  }

  async untrash(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('untrash');
    const trashKey = ObjectStore.keyOf(ns, id, true);
    await withKeyLock(this.lockKey(ns, id), async () => {
      const bytes = await this.objects.get(trashKey);
      if (bytes === undefined) return;
      // Written in place before the trash copy goes, so a crash between the two loses nothing.
      await this.objects.put(ObjectStore.keyOf(ns, id), bytes);
      await this.objects.delete(trashKey);
    });
  }

  async purge(ns: Namespace, id: string): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    this.checkWritable('purge');
    await withKeyLock(this.lockKey(ns, id), () => this.objects.delete(ObjectStore.keyOf(ns, id, true)));
  }

  /** Every put is durable in the service when it resolves (ObjectBackend contract). */
  async sync(): Promise<void> {}

  async close(): Promise<void> {
    if (this.ownsBackend) await this.objects.close();
  }
}
