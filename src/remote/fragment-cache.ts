// A local cache of a remote store's fragments, in the store's cache folder: what was read or written
// recently is read back from the local disk, so a warm remote mount reads at local speed. Bounded by
// --cache-max (FRAGFS_CACHE_MAX), least recently used first out. Fragments are kept as stored
// (encrypted), so the cache holds no more than the service does; a cached fragment is checked
// against its id before it is used, and a bad one is dropped and read from the service again.

import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { blake3, toHex } from '../codec/blake3.js';
import { ownsBuffer } from '../codec/block-codec.js';
import { FragfsError } from '../errors.js';
import { attachCacheHandoff, writeCacheFile, type CacheFile } from '../store/cache-handoff.js';
import { checkId, checkNamespace, checkRange, getRangeOf, rangeOf, type GetOptions, type Namespace, type PutOptions, type Store } from '../store/store.js';

export const DEFAULT_CACHE_MAX_BYTES = 1024 * 1024 * 1024;
/** Eviction goes down to this share of the limit, so it runs in batches rather than per put. */
const EVICT_TO = 0.9;
const TMP_SUFFIX = '.part';
/** Cache writes of fragments read from the service that may run beside the reads. */
const MAX_BACKGROUND_WRITES = 16;
/**
 * Ranges of one uncached fragment (a pack) read from the service on their own before the next read
 * of it fetches it whole and caches it: one or two small files of a pack cost what they hold, and a
 * reader that goes on through the pack (a sequential read, a walk) pays one request for the rest
 * (docs/DESIGN.md, "Packs on a remote store").
 */
export const RANGED_READS_BEFORE_WHOLE = 2;
/** Fragments whose ranged reads are counted at once; the oldest counts go first. */
const MAX_RANGE_COUNTS = 4096;
/**
 * How long the one reader of a fetched fragment waits for its cache write before it takes a copy
 * instead, so a read never waits long on the local disk. Writing 1 MiB into the page cache takes
 * under a millisecond on an idle machine; during a cold read of a radosgw on the same two cores
 * it took 10-140 ms (tenth to ninetieth percentile), and about half the blocks were then copied.
 */
const CACHE_WRITE_WAIT_MS = 50;

/** One whole read from the service, shared by every reader that asks meanwhile. */
interface SharedFetch {
  readonly bytes: Promise<Uint8Array>;
  /** Resolves once nothing but the readers holds the bytes: their cache write is over or skipped. */
  readonly released: Promise<void>;
  /** Readers that joined the one that started it: each takes a copy. */
  joined: number;
  /** The bytes went to the reader that started it with their cache write (GetOptions.handOff). */
  handedOff: boolean;
}

/** The byte limit from FRAGFS_CACHE_MAX (a number of bytes, set by `--cache-max`), else the default. */
export function cacheMaxBytes(): number {
  const v = process.env['FRAGFS_CACHE_MAX'];
  if (v === undefined || v === '') return DEFAULT_CACHE_MAX_BYTES;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new FragfsError('USAGE', `FRAGFS_CACHE_MAX must be a number of bytes, not ${v}`);
  return n;
}

export class CachingStore implements Store {
  readonly backend;
  readonly parallelism: number | undefined;
  /** path -> stored size, in order of last use (a Map keeps insertion order; a use re-inserts). */
  private readonly lru = new Map<string, number>();
  private bytes = 0;
  private readonly made = new Set<string>();
  private scanned: Promise<void>;
  private scanDone = false;
  hits = 0;
  misses = 0;
  private writing = 0;
  /**
   * Cache writes left to the threads the bytes went to (GetOptions.handOff): bounded with this
   * process's own, not waited for by settled() (one never settled must not hang a close).
   */
  private handedOffWrites = 0;
  /** Ranged reads from the service so far of each uncached fragment (for RANGED_READS_BEFORE_WHOLE). */
  private readonly rangeReads = new Map<string, number>();
  /** Whole reads from the service under way: concurrent readers of one pack share one request. */
  private readonly fetching = new Map<string, SharedFetch>();

  constructor(
    private readonly inner: Store,
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {
    this.backend = inner.backend;
    this.parallelism = inner.parallelism;
    // Files a previous process cached count toward the limit; learned beside the first requests.
    this.scanned = (maxBytes > 0 ? this.scan().catch(() => undefined) : Promise.resolve()).then(() => {
      this.scanDone = true;
    });
  }

  private pathOf(ns: Namespace, id: string): string {
    return join(this.dir, ns.space, ns.kind, id.slice(0, 2), id);
  }

  /**
   * Not refs (replaced in place). Data, metadata and packs are checked against their id when read
   * whole; a pack's index is authenticated by its own seal when opened (src/pack/pack-format.ts).
   */
  private cacheable(ns: Namespace): boolean {
    return this.maxBytes > 0 && ns.kind !== 'ref';
  }

  private async scan(): Promise<void> {
    const found: { path: string; size: number; atimeMs: number }[] = [];
    const walk = async (d: string, depth: number): Promise<void> => {
      const names = await readdir(d).catch(() => [] as string[]);
      for (const n of names) {
        const p = join(d, n);
        if (depth < 3) await walk(p, depth + 1);
        else if (n.endsWith(TMP_SUFFIX)) await unlink(p).catch(() => undefined);
        else {
          const st = await stat(p).catch(() => undefined);
          if (st?.isFile()) found.push({ path: p, size: st.size, atimeMs: st.mtimeMs });
        }
      }
    };
    await walk(this.dir, 0);
    found.sort((a, b) => a.atimeMs - b.atimeMs);
    // Entries this process added meanwhile are newer: the scanned ones go before them.
    const mine = [...this.lru];
    this.lru.clear();
    this.bytes = 0;
    for (const f of found) this.remember(f.path, f.size);
    for (const [p, s] of mine) this.remember(p, s);
    await this.evict();
  }

  /**
   * False when the file is surely not in the cache (the scan is over and neither it nor this
   * process put it there), so a miss costs no failed open; undefined when only a look can tell.
   * A file another process caches meanwhile goes unseen: it is fetched again, at a request's cost.
   */
  private known(path: string): boolean | undefined {
    return this.scanDone && !this.lru.has(path) ? false : undefined;
  }

  private remember(path: string, size: number): void {
    const old = this.lru.get(path);
    if (old !== undefined) {
      this.bytes -= old;
      this.lru.delete(path);
    }
    this.lru.set(path, size);
    this.bytes += size;
  }

  private forget(path: string): void {
    const old = this.lru.get(path);
    if (old === undefined) return;
    this.bytes -= old;
    this.lru.delete(path);
  }

  private async evict(): Promise<void> {
    if (this.bytes <= this.maxBytes) return;
    const target = this.maxBytes * EVICT_TO;
    for (const [p] of this.lru) {
      if (this.bytes <= target) break;
      this.forget(p);
      await unlink(p).catch(() => undefined);
    }
  }

  /** Whether a fragment of `ns` of `storedBytes` is kept at all. */
  private fits(ns: Namespace, storedBytes: number): boolean {
    return this.cacheable(ns) && storedBytes <= this.maxBytes / 4;
  }

  /** Where fragment `id` of `ns` is cached: a fresh temporary name beside it, its folder until made. */
  private cacheFileOf(ns: Namespace, id: string): CacheFile {
    const path = this.pathOf(ns, id);
    const folder = join(this.dir, ns.space, ns.kind, id.slice(0, 2));
    const tmpPath = `${path}.${randomBytes(4).toString('hex')}${TMP_SUFFIX}`;
    return this.made.has(folder) ? { tmpPath, path } : { tmpPath, path, folder };
  }

  /** A cache file of `storedBytes` is in place: counted, and the least recently used go past the limit. */
  private written(f: CacheFile, storedBytes: number): Promise<void> {
    if (f.folder !== undefined) this.made.add(f.folder);
    this.remember(f.path, storedBytes);
    return this.evict();
  }

  /** Best effort: a cache that cannot be written (a full disk) only costs speed. */
  private async add(ns: Namespace, id: string, bytes: Uint8Array): Promise<void> {
    if (!this.fits(ns, bytes.length)) return;
    const f = this.cacheFileOf(ns, id);
    if (await writeCacheFile(f, bytes)) await this.written(f, bytes.length);
  }

  private async cached(ns: Namespace, id: string): Promise<Uint8Array | undefined> {
    // Entry checks before the id makes a path (the inner store checks again, as it must).
    checkNamespace(ns);
    checkId(id);
    if (!this.cacheable(ns)) return undefined;
    const path = this.pathOf(ns, id);
    if (this.known(path) === false) return undefined;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      return undefined;
    }
    if (ns.kind !== 'index' && toHex(blake3(bytes)) !== id) {
      this.forget(path);
      await unlink(path).catch(() => undefined);
      return undefined;
    }
    this.remember(path, bytes.length);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async put(ns: Namespace, id: string, bytes: Uint8Array, o?: PutOptions): Promise<void> {
    await this.inner.put(ns, id, bytes, o);
    // Only metadata is kept on the way out: a put or a mount's writes would otherwise copy every
    // block they store to the local disk as well and push out what was read. Data blocks just
    // written are in the mount's block cache; the next read of one from the service caches it.
    // Before resolving: the caller may reuse `bytes` afterwards (Store contract).
    if (ns.kind === 'meta' || ns.kind === 'index') await this.add(ns, id, bytes);
  }

  /**
   * A range of a cached fragment is read from its file (a pack: the fragment read from it is
   * checked against its own id by the repo). An uncached one is read by range from the service for
   * its first RANGED_READS_BEFORE_WHOLE ranges, then fetched whole (once, however many readers wait)
   * and cached, so the rest of the pack is local.
   */
  async getRange(ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array> {
    checkNamespace(ns);
    checkId(id);
    checkRange(offset, length);
    if (!this.cacheable(ns)) return getRangeOf(this.inner, ns, id, offset, length);
    const local = await this.cachedRange(ns, id, offset, length);
    if (local) return local;
    const key = `${ns.space}:${ns.kind}:${id}`;
    // A copy of the range: the shared bytes may still be on their way to the cache.
    const shared = this.fetching.get(key);
    if (shared !== undefined) {
      shared.joined++;
      return rangeOf(await shared.bytes, ns, id, offset, length).slice();
    }
    const ranged = this.rangeReads.get(key) ?? 0;
    if (this.inner.getRange && ranged < RANGED_READS_BEFORE_WHOLE) {
      this.rangeReads.delete(key);
      this.rangeReads.set(key, ranged + 1);
      if (this.rangeReads.size > MAX_RANGE_COUNTS) this.rangeReads.delete(this.rangeReads.keys().next().value!);
      this.misses++;
      return this.inner.getRange(ns, id, offset, length);
    }
    this.rangeReads.delete(key);
    return rangeOf(await this.fetchShared(ns, id).bytes, ns, id, offset, length).slice();
  }

  /** The range from the cached copy's file, or undefined when it is not cached (or cannot be read). */
  private async cachedRange(ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    const path = this.pathOf(ns, id);
    if (this.known(path) === false) return undefined;
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) return undefined;
      this.hits++;
      this.remember(path, (await fh.stat()).size);
      return buf;
    } catch {
      // A cached copy that cannot be read is fetched again.
      return undefined;
    } finally {
      await fh.close();
    }
  }

  async get(ns: Namespace, id: string, o?: GetOptions): Promise<Uint8Array> {
    const hit = await this.cached(ns, id);
    if (hit) {
      this.hits++;
      return hit;
    }
    if (!this.cacheable(ns)) {
      this.misses++;
      return this.inner.get(ns, id, o);
    }
    const key = `${ns.space}:${ns.kind}:${id}`;
    const shared = this.fetching.get(key);
    // A reader that joins one under way takes a copy, at once (before the first reader may take
    // the bytes themselves): each may hand its bytes to a worker thread, which detaches them.
    if (shared !== undefined) {
      shared.joined++;
      return Uint8Array.prototype.slice.call(await shared.bytes);
    }
    const f = this.fetchShared(ns, id, o?.handOff === true);
    const bytes = await f.bytes;
    // Its cache write goes with the bytes to the thread they are handed to (cache-handoff.ts).
    if (f.handedOff) return bytes;
    // The one that started it takes the bytes uncopied once the cache write no longer reads them
    // (a copy of every 1 MiB block was a tenth of a cold remote read's time on the JS thread),
    // unless another reader joined, or the write is slow.
    let timer: NodeJS.Timeout | undefined;
    const released = await Promise.race([
      f.released.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), CACHE_WRITE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    return released && f.joined === 0 && ownsBuffer(bytes) ? bytes : Uint8Array.prototype.slice.call(bytes);
  }

  /**
   * The whole fragment from the service, one request however many callers want it meanwhile. The
   * bytes stay shared until the cache holds them (else a reader arriving between the answer and
   * the cache write would ask again).
   */
  private fetchShared(ns: Namespace, id: string, handOff = false): SharedFetch {
    const key = `${ns.space}:${ns.kind}:${id}`;
    const under = this.fetching.get(key);
    if (under) return under;
    this.misses++;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const done = (): void => {
      // Not a fetch started after a drop() let this one go.
      if (this.fetching.get(key) === f) this.fetching.delete(key);
      release();
    };
    const bytes = this.inner.get(ns, id).then((b) => {
      // The reader that started it will hand the bytes to a codec thread, nobody joined it: that
      // thread writes them to the cache. The fetch is over for everyone else from now on.
      if (handOff && f.joined === 0 && this.writing + this.handedOffWrites < MAX_BACKGROUND_WRITES && this.fits(ns, b.length) && ownsBuffer(b)) {
        this.handedOffWrites++;
        f.handedOff = true;
        done();
        const file = this.cacheFileOf(ns, id);
        const storedBytes = b.length;
        let settled = false;
        attachCacheHandoff(b, {
          ...file,
          settle: (written) => {
            if (settled) return;
            settled = true;
            this.handedOffWrites--;
            if (written) void this.written(file, storedBytes);
          },
        });
        return b;
      }
      // Written beside the callers rather than before they go on (a read should not wait for the
      // local disk). Bounded: past a few writes in flight, what is read is not cached.
      if (this.writing + this.handedOffWrites < MAX_BACKGROUND_WRITES) {
        this.writing++;
        void this.add(ns, id, b).finally(() => {
          this.writing--;
          done();
        });
      } else done();
      return b;
    });
    bytes.catch(done);
    const f: SharedFetch = { bytes, released, joined: 0, handedOff: false };
    this.fetching.set(key, f);
    return f;
  }

  has(ns: Namespace, id: string): Promise<boolean> {
    return this.inner.has(ns, id);
  }

  size(ns: Namespace, id: string): Promise<number | undefined> {
    return this.inner.size(ns, id);
  }

  private async drop(ns: Namespace, id: string): Promise<void> {
    if (!this.cacheable(ns)) return;
    // Gone from the service: a read from now on must not be served a fetch made before.
    this.fetching.delete(`${ns.space}:${ns.kind}:${id}`);
    const path = this.pathOf(ns, id);
    this.forget(path);
    await unlink(path).catch(() => undefined);
  }

  async delete(ns: Namespace, id: string): Promise<void> {
    await this.inner.delete(ns, id);
    await this.drop(ns, id);
  }

  list(ns: Namespace): AsyncIterable<string> {
    return this.inner.list(ns);
  }

  async trash(ns: Namespace, id: string): Promise<void> {
    await this.inner.trash(ns, id);
    await this.drop(ns, id);
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

  /** Resolves once the cache writes started so far are done (close waits for them too). */
  async settled(): Promise<void> {
    await this.scanned;
    while (this.writing > 0) await new Promise((r) => setTimeout(r, 5));
  }

  async close(): Promise<void> {
    await this.settled();
    await this.inner.close();
  }
}
