// The one backend interface every fragfs store implements (memory, lmdb, dir, split, ...), and the
// namespacing rules shared by all of them. Each backend passes test/store/conformance.ts.

import { FragfsError } from '../errors.js';

/**
 * What a fragment is for. Backends keep kinds apart where they can (separate LMDB databases,
 * `.meta` files beside data files), so that data can be listed, synced or verified without
 * touching metadata and the other way round.
 * - `data`: encoded file blocks (status byte + crc32 + ciphertext, docs/FORMAT.md section 1).
 * - `meta`: SOLMET metadata fragments: directories, file manifests, snapshot roots.
 * - `ref`:  small mutable-by-replacement records naming snapshot roots (names, times); the id is
 *           the snapshot's own meta key, so a ref is never rewritten with other content.
 * - `pack`: small data or meta fragments stored end to end with their sealed index
 *           (src/pack/pack-format.ts); the id is the hash of the whole pack.
 * - `index`: a pack's sealed index on its own, stored under the pack's id, so that a machine
 *           learns where fragments lie without reading the packs.
 * - `parity`: a Reed-Solomon parity shard of a stripe of the kinds above, led by the stripe's
 *           record (src/parity/parity-format.ts); the id is the hash of the whole object.
 */
export type FragmentKind = 'data' | 'meta' | 'ref' | 'pack' | 'index' | 'parity';
export const FRAGMENT_KINDS: readonly FragmentKind[] = ['data', 'meta', 'ref', 'pack', 'index', 'parity'];

/**
 * Seed 000's `space:id`: one backend can hold several independent stores ("spaces"), each with its
 * own keys. Every call names the space and the kind.
 */
export interface Namespace {
  readonly space: string;
  readonly kind: FragmentKind;
}

/**
 * The local backends, chosen at `init --backend`, and `object`: the layout of a store that lives
 * in a remote service (src/remote), whose URL says which service.
 */
export type BackendName = 'memory' | 'lmdb' | 'dir' | 'split' | 'object';
export const BACKEND_NAMES: readonly BackendName[] = ['memory', 'lmdb', 'dir', 'split', 'object'];
/** The backends a local folder can hold (`init --backend`, `sync --backend`). */
export const LOCAL_BACKEND_NAMES: readonly BackendName[] = ['lmdb', 'dir', 'split'];

/** The lmdb backend's file in a STORE folder (here so that telling backends apart loads no lmdb-js). */
export const LMDB_FILE = 'fragments.lmdb';

export interface GetOptions {
  /**
   * About how many bytes the fragment holds, when the caller knows (a block's plain size). A backend
   * MAY use it to choose how to read; it MUST return the whole fragment whatever its real size.
   */
  expectedBytes?: number;
  /**
   * Set by a caller that hands the bytes to another thread at once (Repo.readBlock, to a codec
   * thread). A store that keeps a local copy of what it fetches MAY then leave the copy's write to
   * that thread, attached to the bytes (src/store/cache-handoff.ts): the caller MUST take it with
   * takeCacheHandoff and settle it.
   */
  handOff?: boolean;
}

export interface PutOptions {
  /**
   * Set by a writer that pinned the id against a running gc (src/gc/gc-guard.ts): the put MUST
   * leave the fragment where a later get finds it even when the store believes it present, since
   * where it believes it may be about to go (a pack a gc is deleting, which this process may not
   * know yet). A backend whose has() already misses a trashed fragment meets this without looking
   * at the option; a packing store writes the fragment anew.
   */
  fresh?: boolean;
  /**
   * Set by a caller that calls sync() before anything durable names the fragment (put, sync, gc
   * rewriting packs): the store MAY resolve before the fragment is durable, so that many small puts
   * share one write, and a sync() started afterwards MUST make it durable. The write ordering still
   * holds across a crash: a metadata fragment MUST NOT become durable before a data fragment whose
   * put resolved before its own put began.
   */
  deferred?: boolean;
  /**
   * Set by a caller that never changes `bytes` once it has called put (a pack built for this one
   * put): the store MAY write them as they are rather than a copy of its own.
   */
  handedOver?: boolean;
}

/**
 * The backend contract.
 *
 * - Ids are 64 lowercase hex digits (a BLAKE3-256 digest); a backend MUST reject anything else
 *   with FragfsError('INVALID') before touching storage.
 * - A backend stores opaque bytes. It MUST NOT check that an id is the hash of its bytes (the repo
 *   layer does that on every read); it MUST return exactly the bytes that were put.
 * - `put` MUST be atomic: a reader or a crash sees either no fragment under the id or all of it,
 *   never a prefix. When the returned promise resolves the fragment MUST survive a crash of the
 *   process (kill -9). It MUST be durable against power loss once a `sync()` started after the put
 *   resolved has resolved; a backend MAY make each put durable right away. Callers order their
 *   writes with `sync()`: data before the metadata that names it (docs/DESIGN.md, write ordering).
 * - The caller of `put` MUST NOT change `bytes` until the put resolves, and the backend MUST NOT use
 *   them after it resolved (keep a copy if it needs them longer). So a backend that writes them out
 *   before resolving needs no copy of a 1 MiB fragment.
 * - `put` of an id that already exists MUST succeed and MAY skip the write (content addressing:
 *   same id, same bytes). Concurrent puts of one id MUST all succeed and leave one copy.
 * - `get` of a missing id MUST reject with FragfsError('MISSING_FRAGMENT') naming the id.
 * - `delete` of a missing id MUST succeed (idempotent).
 * - `list` MUST yield every id present in the namespace when the listing started exactly once;
 *   ids put or deleted during a listing MAY or MAY NOT appear.
 * - Namespaces MUST be independent: the same id in two namespaces are two fragments.
 * - After `close`, a reopen of the same location MUST see every fragment whose put resolved.
 * - A put that fails MUST leave nothing under its id: no fragment and no part of one (a leftover a
 *   backend keeps out of sight, such as a temp file, MAY remain until the next read-write open).
 * - A full disk (ENOSPC, EDQUOT, or what a backend can tell is one) MUST reject with
 *   FragfsError('NO_SPACE') naming the fragment or file being written, never with IO, a raw error
 *   or a signal; the store MUST stay usable afterwards: reads go on, `sync` and `close` complete, and
 *   a put succeeds again once space is freed. A backend SHOULD find a full disk before it starts a
 *   write it cannot finish. Opening read-only MUST work on a disk that is 100 % full.
 *
 * The trash, for garbage collection: gc deletes in two steps so that a writer running beside it
 * never loses a fragment. It moves each condemned fragment into its namespace's trash, re-checks
 * which fragments writers pinned meanwhile, moves those back, and purges the rest.
 * - Every namespace has its own trash, as independent as the namespaces are. `get`, `has`, `size`
 *   and `list` MUST NOT see trashed fragments; `listTrash` yields them under the rules of `list`.
 * - `trash` MUST move the fragment atomically: afterwards, after a failure, and after a crash of the
 *   process (kill -9) at any point, it is either still in place or whole in the trash, never lost,
 *   never a prefix. A concurrent reader sees it either present and whole or MISSING_FRAGMENT.
 *   Trash of an id that is not present MUST succeed and change nothing; an id already in the trash
 *   is replaced by the one in place.
 * - `untrash` MUST move it back, atomically in the same sense. When the id is present in place
 *   already (a writer put it again meanwhile), one copy stays in place and the trash copy is gone.
 *   Untrash of an id not in the trash MUST succeed and change nothing.
 * - `purge` MUST delete the trash copy for good; purge of an id not in the trash MUST succeed.
 * - `put` of an id that is only in the trash writes it in place as usual and MUST leave the trash
 *   copy alone; `delete` MUST NOT touch the trash.
 * - Concurrent calls for one id, in one process or in several, MUST each take effect atomically, in
 *   some order: writers put and untrash what they pinned while a gc trashes and purges beside them.
 * - A move becomes durable against power loss as a put or delete does (by the next `sync()`).
 * - A read-only store MUST reject trash, untrash and purge with FragfsError('READ_ONLY').
 * - A move SHOULD NOT need free space (a rename, a move inside one transaction); a backend that
 *   needs some MUST reject a full disk with NO_SPACE and leave the fragment where it was.
 * - Leftovers of a move or purge that a crash interrupted MUST stay out of sight (neither listed
 *   nor seen in place) and MUST be completed or rolled back by the next read-write open and by the
 *   next trash, untrash or purge of that id.
 */
export interface Store {
  readonly backend: BackendName;
  /**
   * MAY be given by a backend whose calls each wait on a round trip (a remote service): how many
   * calls it serves at once at full speed. Callers that keep blocks in flight (put, a mount's
   * stores and read-ahead) keep at least this many, so latency does not bound throughput.
   */
  readonly parallelism?: number;
  /**
   * MAY be true when a put of an id the store holds already costs no write and no request (the
   * store looks it up itself, in memory): callers then put without calling has() first, which on
   * such a store is an exact, and dearer, question.
   */
  readonly dedupesPuts?: boolean;
  put(ns: Namespace, id: string, bytes: Uint8Array, o?: PutOptions): Promise<void>;
  get(ns: Namespace, id: string, o?: GetOptions): Promise<Uint8Array>;
  /**
   * MAY be given: `length` bytes of the fragment from `offset` (a fragment inside a pack), without
   * reading the rest. MUST reject MISSING_FRAGMENT as `get` does, and CORRUPT when the fragment is
   * shorter than offset + length. Callers without it read the whole fragment.
   */
  getRange?(ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array>;
  has(ns: Namespace, id: string): Promise<boolean>;
  /** Stored size in bytes, or undefined when the fragment is absent. */
  size(ns: Namespace, id: string): Promise<number | undefined>;
  delete(ns: Namespace, id: string): Promise<void>;
  list(ns: Namespace): AsyncIterable<string>;
  /** Moves the fragment out of sight into the namespace's trash (a no-op when absent). */
  trash(ns: Namespace, id: string): Promise<void>;
  /** Moves a trashed fragment back in place (drops the trash copy when the id is in place again). */
  untrash(ns: Namespace, id: string): Promise<void>;
  /** Deletes the trash copy of the id for good (idempotent). */
  purge(ns: Namespace, id: string): Promise<void>;
  /** The ids in the namespace's trash, under the rules of `list`. */
  listTrash(ns: Namespace): AsyncIterable<string>;
  /** Makes every put that has resolved so far durable against power loss. */
  sync(): Promise<void>;
  /**
   * MAY be given by a backend whose reads can lag behind other processes' writes for a moment (lmdb
   * reads through a snapshot renewed once per event-loop turn): after it, reads MUST see every
   * write another process completed before the call. gc calls it before it looks at roots.
   */
  refresh?(): void;
  /**
   * MAY be given by a store that remembers where fragments lie (a packing store): forgets what a
   * gc deleted. A writer's gc guard calls it when it sees a gc's sweep finished, before it trusts
   * such a memory again (docs/DESIGN.md, "Packs and gc").
   */
  forgetGone?(): Promise<void>;
  close(): Promise<void>;
}

const ID_RE = /^[0-9a-f]{64}$/;
const SPACE_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Entry-point check every backend calls first. */
export function checkId(id: string): void {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new FragfsError('INVALID', `not a fragment id (64 lowercase hex digits): ${String(id).slice(0, 80)}`);
  }
}

export function checkNamespace(ns: Namespace): void {
  if (!ns || typeof ns.space !== 'string' || !isValidSpaceName(ns.space)) {
    throw new FragfsError('INVALID', `not a space name ([a-z0-9_-], 1-64 chars): ${String(ns?.space)}`);
  }
  if (!FRAGMENT_KINDS.includes(ns.kind)) {
    throw new FragfsError('INVALID', `not a fragment kind: ${String(ns.kind)}`);
  }
}

/** Names the store folder already uses for itself (STORE/live/ holds mount state). */
const RESERVED_SPACES = new Set(['live', 'tmp', 'objects', 'meta', 'refs']);

export function isValidSpaceName(space: string): boolean {
  return SPACE_RE.test(space) && !RESERVED_SPACES.has(space);
}

/** Seed 000's flat key form, `space:kind:id`, used by backends that have one key space. */
export function flatKey(ns: Namespace, id: string): string {
  return `${ns.space}:${ns.kind}:${id}`;
}

/** Entry-point check of getRange's offset and length. */
export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new FragfsError('INVALID', `not a byte range: offset ${offset}, length ${length}`);
  }
}

/** getRange on a store without one: the whole fragment, then the range of it. */
export async function getRangeOf(store: Store, ns: Namespace, id: string, offset: number, length: number): Promise<Uint8Array> {
  checkRange(offset, length);
  if (store.getRange) return store.getRange(ns, id, offset, length);
  return rangeOf(await store.get(ns, id), ns, id, offset, length);
}

/** `length` bytes from `offset` of a whole fragment; CORRUPT when it is shorter than that. */
export function rangeOf(whole: Uint8Array, ns: Namespace, id: string, offset: number, length: number): Uint8Array {
  if (whole.length < offset + length) {
    throw new FragfsError('CORRUPT', `fragment ${id} (${ns.kind}) is shorter than ${offset + length} bytes`, { fragmentId: id });
  }
  return whole.subarray(offset, offset + length);
}

export function missingFragment(ns: Namespace, id: string): FragfsError {
  return new FragfsError('MISSING_FRAGMENT', `fragment ${id} (${ns.kind}) is missing from the store`, {
    fragmentId: id,
  });
}
