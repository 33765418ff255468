// The `lmdb` backend: every fragment of every space in one LMDB environment, STORE/fragments.lmdb
// (a single data file, LMDB's MDB_NOSUBDIR form, plus its lock file STORE/fragments.lmdb-lock),
// with three named databases per space, `<space>:data`, `<space>:meta`, `<space>:ref`, keyed by the
// 32 raw bytes of the id, values the fragment bytes unchanged. The trash of each namespace is one
// more database beside it, `<space>:<kind>:trash`, keyed and valued alike, created by the first trash:
// a move between the two is one write transaction, so a crash leaves the fragment in one of them.
//
// Durability: lmdb-js batches the async puts of one event turn (and those queued while a commit
// runs) into one write transaction, which is what makes 1 MiB puts fast. With overlappingSync (on
// by default on Linux) a put resolves once its transaction is committed and visible, which survives
// a crash of the process, and LMDB flushes the commit to disk after it, outside the write lock; a
// crash of the machine falls back to the last flushed transaction, never to a torn one. sync()
// waits for that flush (`env.flushed`), which is the Store contract's durability point. Without the
// overlap, every commit waits for its own fsync and a mount storing many small files runs at the
// disk's fsync rate (measured: ~285 files/s against thousands).
//
// Full disk: LMDB must not meet one (it dies of SIGBUS on a sparse lock file, lmdb-files.ts; it
// reports a short write as EIO, and lmdb-js then hangs in `flushed` and `close`, lmdb-errors.ts).
// Both files are made by fragfs before lmdb-js opens them, and every write reserves its blocks
// first (lmdb-space-reserve.ts), so a full disk is NO_SPACE before anything is queued. A commit that fails anyway is followed by an empty
// transaction before the next sync or close: lmdb-js's flush promise of the failed commit never
// settles, and only a later commit replaces it.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { FragfsError } from '../errors.js';
import { readOnlyError } from './atomic-file.js';
import { guardLmdbCommitRejections, lmdbError, lmdbWriteError } from './lmdb-errors.js';
import { LMDB_PERMISSIONS_MODE, lmdbFilePaths, prepareLmdbFiles } from './lmdb-files.js';
import { LmdbSpaceReserve } from './lmdb-space-reserve.js';
import { mkdirPrivate } from './private-modes.js';
import { checkId, checkNamespace, LMDB_FILE, missingFragment, type GetOptions, type Namespace, type Store } from './store.js';

/** Data fragments from this size up are paged in by lmdb-js's own thread before they are read (see get). */
const PREFETCH_FROM_BYTES = 64 * 1024;

export { LMDB_FILE };
/**
 * Three databases per space and a trash beside each, for 1024 spaces; LMDB scans its db table
 * linearly, so this is bounded, not unlimited.
 */
export const LMDB_MAX_DBS = 6 * 1024;

type FragmentDb = Database<Buffer, Buffer>;

export interface LmdbOpenOptions {
  readOnly?: boolean;
}

/** A promise that settles on the next failed commit, and the function that settles it. */
interface FailureSignal {
  promise: Promise<'failed'>;
  fire: () => void;
}

function failureSignal(): FailureSignal {
  let fire!: () => void;
  const promise = new Promise<'failed'>((resolve) => (fire = () => resolve('failed')));
  return { promise, fire };
}

export class LmdbStore implements Store {
  readonly backend = 'lmdb' as const;
  private readonly dbs = new Map<string, FragmentDb>();
  /** A commit failed and none succeeded since: lmdb-js's `flushed` would wait forever. */
  private commitFailed = false;
  private failure = failureSignal();

  private constructor(
    private readonly env: RootDatabase,
    readonly path: string,
    readonly readOnly: boolean,
    private readonly reserve: LmdbSpaceReserve | undefined,
  ) {}

  /** Opens (read-write: creates) STORE/fragments.lmdb in the folder `root`. */
  static async open(root: string, o: LmdbOpenOptions = {}): Promise<LmdbStore> {
    const path = join(root, LMDB_FILE);
    const readOnly = o.readOnly ?? false;
    if (readOnly && !existsSync(path)) {
      throw new FragfsError('NO_STORE', `no LMDB fragment database at ${path}`, { path });
    }
    const paths = lmdbFilePaths(path, true);
    if (!readOnly) {
      try {
        await mkdirPrivate(root);
      } catch (e) {
        throw lmdbError(e, 'cannot create the store folder for', path);
      }
    }
    const created = await prepareLmdbFiles(paths, { readOnly });
    // LMDB writes its first two pages when it opens a new file: their room is reserved first.
    if (created) await new LmdbSpaceReserve(path).reserveFirstPages(`cannot create ${path}`);
    let env: RootDatabase;
    try {
      env = open({
        path,
        noSubdir: true,
        maxDbs: LMDB_MAX_DBS,
        readOnly,
        // Fragments are already compressed and encrypted: never let lmdb-js compress or cache them.
        compression: false,
        cache: false,
        encoding: 'binary',
        keyEncoding: 'binary',
        overlappingSync: true,
        // Files lmdb-js would create itself are private too (fragfs made both already).
        permissionsMode: LMDB_PERMISSIONS_MODE,
      } as Parameters<typeof open>[0]);
    } catch (e) {
      throw lmdbError(e, 'cannot open', path);
    }
    let pageSize = 4096;
    try {
      pageSize = (env.getStats() as { pageSize?: number }).pageSize ?? pageSize;
    } catch {
      // The default page size is a fine estimate.
    }
    return new LmdbStore(env, path, readOnly, readOnly ? undefined : new LmdbSpaceReserve(path, pageSize));
  }

  /**
   * The named database of a namespace (or of its trash), opened once; `undefined` when it does not
   * exist and `create` is false.
   */
  private db(ns: Namespace, create: boolean, trash = false): FragmentDb | undefined {
    const name = trash ? `${ns.space}:${ns.kind}:trash` : `${ns.space}:${ns.kind}`;
    let db = this.dbs.get(name);
    if (db) return db;
    try {
      db = this.env.openDB<Buffer, Buffer>(name, {
        encoding: 'binary',
        keyEncoding: 'binary',
        compression: false,
        cache: false,
        create: create && !this.readOnly,
      } as Parameters<RootDatabase['openDB']>[1]) as FragmentDb | undefined;
    } catch (e) {
      throw lmdbError(e, `cannot open database ${name} in`, this.path);
    }
    if (db) this.dbs.set(name, db);
    return db;
  }

  private static key(id: string): Buffer {
    return Buffer.from(id, 'hex');
  }

  /** After a write: a failed commit arms the recovery transaction and wakes a sync waiting for the flush. */
  private settled(e?: unknown): void {
    if (e === undefined) {
      this.commitFailed = false;
      return;
    }
    if ((e as { commitError?: unknown } | null)?.commitError !== undefined) {
      guardLmdbCommitRejections();
      this.commitFailed = true;
      const { fire } = this.failure;
      this.failure = failureSignal();
      fire();
    }
  }

  /**
   * Puts `bytes` under `id`. A full disk is NO_SPACE naming the fragment, raised before lmdb-js is
   * handed the write (or, when another writer took the space meanwhile, by the failed commit); either
   * way nothing of the fragment is visible under its id.
   */
  async put(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    if (this.readOnly) throw readOnlyError('put');
    const key = LmdbStore.key(id);
    let db = this.db(ns, false);
    try {
      // Content addressing: a committed id already holds these bytes, so a dedup hit costs one
      // lookup instead of a 1 MiB write.
      if (db?.doesExist(key)) return;
    } catch (e) {
      throw lmdbError(e, 'cannot read', this.path);
    }
    await this.write(bytes.length, `cannot put fragment ${id} (${ns.kind}) into`, async () => {
      // Creating a namespace's database is a write too: it comes after the reservation.
      db ??= this.db(ns, true)!;
      // lmdb-js reads the value at commit time, in its write thread, and this promise resolves after
      // that commit: the Store contract keeps `bytes` unchanged until then, so no copy is needed.
      // (A copy per fragment cost about a fifth of a mount's sequential write throughput, most of it
      // in garbage collection of the copies.)
      await db.put(key, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    });
  }

  /**
   * One write: room for `bytes` reserved first (copy-on-write: even a delete writes new tree pages),
   * the commit's outcome recorded (settled), a failure turned into the store's error naming `verb`.
   */
  private async write(bytes: number, verb: string, fn: () => Promise<unknown>): Promise<void> {
    const need = await this.reserve!.reserve(bytes, `${verb} ${this.path}`);
    try {
      await fn();
      this.settled();
    } catch (e) {
      this.settled(e);
      throw await lmdbWriteError(e, verb, this.path);
    } finally {
      this.reserve!.release(need);
    }
  }

  async get(ns: Namespace, id: string, o?: GetOptions): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    const db = this.db(ns, false);
    let v: Buffer | undefined;
    try {
      const key = LmdbStore.key(id);
      // A data block not in the page cache would page-fault 1 MiB in on the JS thread, stalling
      // every FUSE request meanwhile: lmdb-js touches its pages on a background thread first. Not
      // for a small one: the trip to that thread and back cost more than its few pages (tar of
      // 12,000 files out of a mount after a cache drop: 3.94-4.01 s with it, 3.57-3.75 s without).
      if (db !== undefined && ns.kind === 'data' && (o?.expectedBytes ?? Infinity) >= PREFETCH_FROM_BYTES) await db.prefetch([key]);
      v = db?.getBinary(key);
    } catch (e) {
      throw lmdbError(e, 'cannot read fragment from', this.path);
    }
    if (v === undefined) throw missingFragment(ns, id);
    return v;
  }

  async has(ns: Namespace, id: string): Promise<boolean> {
    checkNamespace(ns);
    checkId(id);
    try {
      return this.db(ns, false)?.doesExist(LmdbStore.key(id)) ?? false;
    } catch (e) {
      throw lmdbError(e, 'cannot read', this.path);
    }
  }

  async size(ns: Namespace, id: string): Promise<number | undefined> {
    checkNamespace(ns);
    checkId(id);
    try {
      // The fast form reuses a shared buffer: only its length is read, nothing is kept.
      return this.db(ns, false)?.getBinaryFast(LmdbStore.key(id))?.length;
    } catch (e) {
      throw lmdbError(e, 'cannot read', this.path);
    }
  }

  async delete(ns: Namespace, id: string): Promise<void> {
    await this.remove(ns, id, false);
  }

  /** delete (in place) or purge (from the trash). */
  private async remove(ns: Namespace, id: string, trash: boolean): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    const what = trash ? 'purge' : 'delete';
    if (this.readOnly) throw readOnlyError(what);
    const db = this.db(ns, false, trash);
    if (!db) return;
    await this.write(0, `cannot ${what} fragment ${id} (${ns.kind}) from`, () => db.remove(LmdbStore.key(id)));
  }

  list(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    return this.keysOf(this.db(ns, false));
  }

  /**
   * Moves the fragment between a namespace's database and its trash in one write transaction: a
   * crash leaves it whole in one of the two. LMDB writes the value to new pages (copy-on-write), so
   * the room is reserved first as for a put, and a full disk is NO_SPACE with nothing moved.
   */
  private async move(ns: Namespace, id: string, toTrash: boolean): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    const what = toTrash ? 'trash' : 'untrash';
    if (this.readOnly) throw readOnlyError(what);
    const key = LmdbStore.key(id);
    const from = this.db(ns, false, !toTrash);
    let size: number | undefined;
    let copy = true;
    try {
      size = from?.getBinaryFast(key)?.length;
      // Untrash of an id put again meanwhile only drops the trash copy: nothing is written but a delete.
      if (!toTrash && this.db(ns, false)?.doesExist(key)) copy = false;
    } catch (e) {
      throw lmdbError(e, 'cannot read', this.path);
    }
    if (from === undefined || size === undefined) return;
    await this.write(copy ? size : 0, `cannot ${what} fragment ${id} (${ns.kind}) in`, async () => {
      const to = this.db(ns, true, toTrash)!;
      await this.env.transaction(() => {
        // Looked at again inside the transaction: another writer may have moved or put it meanwhile.
        const v = from.getBinary(key);
        if (v === undefined) return;
        if (toTrash || !to.doesExist(key)) to.putSync(key, v);
        from.removeSync(key);
      });
    });
  }

  async trash(ns: Namespace, id: string): Promise<void> {
    await this.move(ns, id, true);
  }

  async untrash(ns: Namespace, id: string): Promise<void> {
    await this.move(ns, id, false);
  }

  async purge(ns: Namespace, id: string): Promise<void> {
    await this.remove(ns, id, true);
  }

  listTrash(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    return this.keysOf(this.db(ns, false, true));
  }

  /** The ids in `db` (none when it does not exist), as `list` yields them. */
  private keysOf(db: FragmentDb | undefined): AsyncIterable<string> {
    const path = this.path;
    return (async function* () {
      if (!db) return;
      // One read snapshot, keys only, decoded one at a time: no array of a million ids.
      try {
        for (const key of db.getKeys({ snapshot: true })) {
          yield (key as Buffer).toString('hex');
        }
      } catch (e) {
        throw lmdbError(e, 'cannot list', path);
      }
    })();
  }

  /**
   * Resolves when the last commit is on disk. After a failed commit lmdb-js's `flushed` never
   * settles, so an empty transaction comes first (its flush covers every earlier commit); a commit
   * failing while this waits is noticed the same way.
   */
  private async flushed(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.commitFailed) {
        try {
          await this.env.remove(randomBytes(32));
          this.settled();
        } catch (e) {
          this.settled(e);
          const mapped = await lmdbWriteError(e, 'cannot sync', this.path);
          if (attempt >= 2) throw mapped;
          continue;
        }
      }
      const outcome = await Promise.race([Promise.resolve(this.env.flushed).then(() => 'ok' as const), this.failure.promise]);
      if (outcome === 'ok') return;
      if (attempt >= 2) throw new FragfsError('IO', `cannot sync ${this.path}: its writes keep failing`, { path: this.path });
    }
  }

  refresh(): void {
    // lmdb-js reads through one read transaction renewed on the next event-loop turn.
    this.env.resetReadTxn();
  }

  async sync(): Promise<void> {
    if (this.readOnly) return;
    // Resolves when the last commit, and so every put that resolved before this call, is on disk.
    await this.flushed();
  }

  async close(): Promise<void> {
    try {
      if (!this.readOnly) await this.flushed();
      const reserve = this.reserve;
      try {
        if (reserve) this.env.transactionSync(() => reserve.giveBack());
      } catch {
        // Only the slack stays allocated (a failed commit is reported by the writes it failed).
      }
      await this.env.close();
    } catch (e) {
      throw await lmdbWriteError(e, 'cannot close', this.path);
    }
  }
}
