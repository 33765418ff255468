// The `lmdb` backend: every fragment of every space in one LMDB environment, STORE/fragments.lmdb
// (a single data file, LMDB's MDB_NOSUBDIR form, plus its lock file STORE/fragments.lmdb-lock),
// with three named databases per space, `<space>:data`, `<space>:meta`, `<space>:ref`, keyed by the
// 32 raw bytes of the id, values the fragment bytes unchanged.
//
// Durability: lmdb-js batches the async puts of one event turn (and those queued while a commit
// runs) into one write transaction, which is what makes 1 MiB puts fast. With overlappingSync (on
// by default on Linux) a put resolves once its transaction is committed and visible, which survives
// a crash of the process, and LMDB flushes the commit to disk after it, outside the write lock; a
// crash of the machine falls back to the last flushed transaction, never to a torn one. sync()
// waits for that flush (`env.flushed`), which is the Store contract's durability point. Without the
// overlap, every commit waits for its own fsync and a mount storing many small files runs at the
// disk's fsync rate (measured: ~285 files/s against thousands).

import { open, type Database, type RootDatabase } from 'lmdb';
import { FragfsError } from '../errors.js';
import { checkId, checkNamespace, missingFragment, type Namespace, type Store } from './store.js';
import { readOnlyError } from './atomic-file.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const LMDB_FILE = 'fragments.lmdb';
/** Three databases per space; LMDB scans its db table linearly, so this is bounded, not unlimited. */
export const LMDB_MAX_DBS = 3 * 1024;

type FragmentDb = Database<Buffer, Buffer>;

/** lmdb-js throws plain Errors; turn them into FragfsErrors (disk full, I/O) keeping the cause. */
function lmdbError(e: unknown, what: string, path: string): FragfsError {
  if (e instanceof FragfsError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC' || /ENOSPC|No space left|MDB_MAP_FULL/.test(msg)) {
    return new FragfsError('NO_SPACE', `${what} ${path}: the disk is full (${msg})`, { path, cause: e });
  }
  if (/MDB_DBS_FULL/.test(msg)) {
    return new FragfsError('NOT_SUPPORTED', `${what} ${path}: too many spaces in one LMDB store (${msg})`, {
      path,
      cause: e,
    });
  }
  if (errno === 'EACCES' || errno === 'EPERM' || /Permission denied/.test(msg)) {
    return new FragfsError('PERMISSION', `${what} ${path}: permission denied (${msg})`, { path, cause: e });
  }
  return new FragfsError('IO', `${what} ${path}: ${msg}`, { path, cause: e });
}

export interface LmdbOpenOptions {
  readOnly?: boolean;
}

export class LmdbStore implements Store {
  readonly backend = 'lmdb' as const;
  private readonly dbs = new Map<string, FragmentDb>();

  private constructor(
    private readonly env: RootDatabase,
    readonly path: string,
    readonly readOnly: boolean,
  ) {}

  /** Opens (read-write: creates) STORE/fragments.lmdb in the folder `root`. */
  static async open(root: string, o: LmdbOpenOptions = {}): Promise<LmdbStore> {
    const path = join(root, LMDB_FILE);
    const readOnly = o.readOnly ?? false;
    if (readOnly && !existsSync(path)) {
      throw new FragfsError('NO_STORE', `no LMDB fragment database at ${path}`, { path });
    }
    try {
      const env = open({
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
      });
      return new LmdbStore(env, path, readOnly);
    } catch (e) {
      throw lmdbError(e, 'cannot open', path);
    }
  }

  /** The named database of a namespace, opened once; `undefined` when it does not exist and `create` is false. */
  private db(ns: Namespace, create: boolean): FragmentDb | undefined {
    const name = `${ns.space}:${ns.kind}`;
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

  async put(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    checkNamespace(ns);
    checkId(id);
    if (this.readOnly) throw readOnlyError('put');
    const db = this.db(ns, true)!;
    const key = LmdbStore.key(id);
    try {
      // Content addressing: a committed id already holds these bytes, so a dedup hit costs one
      // lookup instead of a 1 MiB write.
      if (db.doesExist(key)) return;
      // lmdb-js reads the value at commit time, in its write thread, and this promise resolves after
      // that commit: the Store contract keeps `bytes` unchanged until then, so no copy is needed.
      // (A copy per fragment cost about a fifth of a mount's sequential write throughput, most of it
      // in garbage collection of the copies.)
      await db.put(key, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw lmdbError(e, 'cannot put fragment into', this.path);
    }
  }

  async get(ns: Namespace, id: string): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    const db = this.db(ns, false);
    let v: Buffer | undefined;
    try {
      const key = LmdbStore.key(id);
      // A data block not in the page cache would page-fault 1 MiB in on the JS thread, stalling
      // every FUSE request meanwhile: lmdb-js touches its pages on a background thread first.
      if (db !== undefined && ns.kind === 'data') await db.prefetch([key]);
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
    checkNamespace(ns);
    checkId(id);
    if (this.readOnly) throw readOnlyError('delete');
    const db = this.db(ns, false);
    if (!db) return;
    try {
      await db.remove(LmdbStore.key(id));
    } catch (e) {
      throw lmdbError(e, 'cannot delete fragment from', this.path);
    }
  }

  list(ns: Namespace): AsyncIterable<string> {
    checkNamespace(ns);
    const db = this.db(ns, false);
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

  async sync(): Promise<void> {
    if (this.readOnly) return;
    // Resolves when the last commit, and so every put that resolved before this call, is on disk.
    await this.env.flushed;
  }

  async close(): Promise<void> {
    try {
      if (!this.readOnly) await this.env.flushed;
      await this.env.close();
    } catch (e) {
      throw lmdbError(e, 'cannot close', this.path);
    }
  }
}
