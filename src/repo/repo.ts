// A repository: one space of one store, unlocked. Joins the block codec (on the worker pool), the
// metadata codec and a backend, and is the only way the layers above read or write fragments, so
// every read is verified and every error names the fragment and the file it belongs to.

import { chmod, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { blake3, blake3DeriveKey, toHex } from '../codec/blake3.js';
import { DEFAULT_BLOCK_SIZE, checkBlockSize } from '../codec/block-size.js';
import { CodecPool } from '../codec/codec-pool.js';
import { storedCapacity } from '../codec/block-codec.js';
import { FragfsError, fromFsError, isFragfsError } from '../errors.js';
import { decodeMeta, encodeMeta, fragmentKeyOf } from '../fragment/meta-codec.js';
import type { BlockRef, MetaObject, RefObject } from '../fragment/tree-format.js';
import { openBackend } from '../store/open-backend.js';
import type { ParitySettings } from '../parity/parity-settings.js';
import { protectStore, storedObjectsOf, type ProtectReport } from '../parity/protect.js';
import { withParityPlace } from '../parity/parity-store.js';
import { stripeCachePath } from '../parity/stripe-view.js';
import { packSettingsFor, withPacks, withPacksByIndexKey, type PackSettings } from '../pack/pack-settings.js';
import { packIndexKeyOf } from '../pack/pack-format.js';
import { isRemoteLocation, remoteBackendOf, storeLocation } from '../remote/store-site.js';
import { PRIVATE_DIR_MODE, mkdirPrivate, tightenStoreIfLoose } from '../store/private-modes.js';
import { isValidSpaceName, type BackendName, type Namespace, type Store } from '../store/store.js';
import { GcGuard } from '../gc/gc-guard.js';
import { gcPlaceOf } from '../gc/gc-place.js';
import { convergenceIdOf, newSpaceKeys, type SpaceKeys } from './keys.js';
import { checkSnapshotName } from './snapshot-name.js';
import { takeCacheHandoff } from '../store/cache-handoff.js';
import { giveBuffer, takeBuffer } from '../store/buffer-recycle.js';
import {
  STORE_FORMAT_VERSION,
  createSpaceConfig,
  readStoreConfig,
  unlockSpace,
  upgradeSpaceConfig,
  withMac,
  writeStoreConfig,
  type Credentials,
  type SpaceConfig,
  type StoreConfig,
  type StoreGlobals,
} from './store-config.js';

export const DEFAULT_SPACE = 'default';
export type { Credentials } from './store-config.js';

export interface InitRepoOptions {
  storePath: string;
  backend: BackendName;
  passphrase: string;
  space?: string;
  blockSize?: number;
  /** Share another space's convergence secret so the two dedup against each other. */
  shareConvergenceWith?: { storePath: string; space?: string; passphrase: string };
  /** scrypt cost exponent override (tests only; the default is the documented one). */
  kdfCost?: number;
  threads?: number;
  /** false: every fragment its own object even on a backend that packs (packSettingsFor). */
  packs?: boolean;
  /** The space keeps parity of this shape (src/parity). */
  parity?: ParitySettings;
  /** A recovery key (src/people/recovery-key.ts newRecoveryKey) that opens the new space too. */
  recoveryKey?: string;
}

/**
 * How a space is opened: `passphrase` (or the recovery key, told apart by its form) and/or age
 * `identities` (AGE-SECRET-KEY-1...). At least one MUST be given; identities are tried first.
 */
export interface OpenRepoOptions extends Credentials {
  storePath: string;
  space?: string;
  readOnly?: boolean;
  threads?: number;
}

type MetaOf<K extends MetaObject['kind']> = Extract<MetaObject, { kind: K }>;

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_PREFIX_RE = /^[0-9a-f]{8,63}$/;
/** How a snapshot may be named on the command line, for every error that rejects what was typed. */
const KEY_FORMS = 'a snapshot is given by its meta key as 64 hex digits, a unique prefix of 8 or more, or its name';

export class Repo {
  readonly dataNs: Namespace;
  readonly metaNs: Namespace;
  readonly refNs: Namespace;
  private closed = false;
  private guard: Promise<GcGuard | undefined> | undefined;
  /** What this opening is for, as a gc reports a writer it waits for. */
  purpose = 'write';
  /**
   * Set by writers that sync() before they name what they wrote (put): the store may then gather
   * many puts into one write (PutOptions.deferred).
   */
  deferWrites = false;
  /**
   * The space's parity shape (fragfs.json), when it keeps parity: closing a read-write repo then
   * protects what this opening stored (src/parity/protect.ts).
   */
  parity: ParitySettings | undefined;

  private constructor(
    readonly storePath: string,
    readonly space: string,
    readonly blockSize: number,
    readonly store: Store,
    readonly readOnly: boolean,
    /** Undefined in a repo opened by a share: it reads one folder with the keys its entries carry. */
    private readonly spaceKeys: SpaceKeys | undefined,
    private readonly pool: CodecPool,
  ) {
    this.dataNs = { space, kind: 'data' };
    this.metaNs = { space, kind: 'meta' };
    this.refNs = { space, kind: 'ref' };
  }

  /** The space's keys; a repo opened by a share has none and may only read through entries' keys. */
  private get keys(): SpaceKeys {
    if (this.spaceKeys === undefined) {
      throw new FragfsError('NOT_PERMITTED', `a share opens one folder of the store at ${this.storePath}, read-only, and nothing else`);
    }
    return this.spaceKeys;
  }

  /** Whether this repo holds the space's keys (false: opened by a share). */
  get hasSpaceKeys(): boolean {
    return this.spaceKeys !== undefined;
  }

  /**
   * A read-only repo of `space` that holds none of the space's keys: what a share link opens. It reads
   * dir and manifest objects with the keys their entries carry (metadata version 3), data blocks with
   * their extents' keys, and finds packed fragments with `packIndexKey`.
   */
  static async openShare(o: { storePath: string; space: string; packIndexKey: Uint8Array; threads?: number }): Promise<Repo> {
    const storePath = storeLocation(o.storePath);
    const space = checkSpace(o.space);
    const config = await Repo.checkExists(storePath, space);
    const spaceConfig = config.spaces[space]!;
    const store = withPacksByIndexKey(await openBackend(config.backend, storePath, { readOnly: true }), space, o.packIndexKey, undefined);
    // The pool decodes with each block's own key; its convergence secret is never used to read.
    const pool = new CodecPool({ convergenceSecret: new Uint8Array(32), ...(o.threads === undefined ? {} : { threads: o.threads }) });
    return new Repo(storePath, space, spaceConfig.blockSize, store, true, undefined, pool);
  }

  /**
   * Why `init` would refuse this target, thrown before any passphrase is asked for: a store that
   * already has the space (STORE_EXISTS), another backend (USAGE), a path that is neither absent,
   * an empty folder, nor a store (EXISTS). Returns the existing config, if any.
   */
  static async checkInitTarget(o: { storePath: string; space?: string; backend: BackendName }): Promise<StoreConfig | undefined> {
    const storePath = storeLocation(o.storePath);
    const space = checkSpace(o.space ?? DEFAULT_SPACE);
    let config: StoreConfig | undefined;
    try {
      config = await readStoreConfig(storePath);
    } catch (e) {
      if (!isFragfsError(e, 'NO_STORE')) throw e;
    }
    if (config) {
      if (config.spaces[space]) {
        throw new FragfsError('STORE_EXISTS', `a fragfs store already exists at ${storePath} (space ${space})`, { path: storePath });
      }
      if (config.backend !== backendFor(storePath, o.backend)) {
        throw new FragfsError('USAGE', `the store at ${storePath} uses the ${config.backend} backend, not ${o.backend}`);
      }
    } else if (isRemoteLocation(storePath)) {
      await checkRemoteEmpty(storePath);
    } else {
      await checkEmptyOrAbsent(storePath);
    }
    return config;
  }

  /**
   * The config of the store at `storePath`, checked to have `space`: NO_STORE otherwise. Commands
   * call it before they ask for a passphrase, so a mistyped path costs no prompt and no KDF.
   */
  static async checkExists(storePath: string, space: string = DEFAULT_SPACE): Promise<StoreConfig> {
    const path = storeLocation(storePath);
    checkSpace(space);
    const config = await readStoreConfig(path);
    if (!config.spaces[space]) {
      const known = Object.keys(config.spaces).join(', ') || 'none';
      throw new FragfsError('NO_STORE', `the store at ${path} has no space ${space} (spaces: ${known})`, { path });
    }
    return config;
  }

  /**
   * Creates a store (or adds a space to an existing one) and opens it. On failure (a full disk
   * included) the path is left as it was: a folder this call made is removed, an empty folder it was
   * given is emptied again, and an existing store keeps its old fragfs.json.
   */
  static async init(o: InitRepoOptions): Promise<Repo> {
    const storePath = storeLocation(o.storePath);
    const backend = backendFor(storePath, o.backend);
    const space = checkSpace(o.space ?? DEFAULT_SPACE);
    const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
    checkBlockSize(blockSize);
    const config = await Repo.checkInitTarget({ storePath, space, backend });
    let convergenceSecret: Uint8Array | undefined;
    if (o.shareConvergenceWith) {
      const other = await Repo.open({ ...o.shareConvergenceWith, readOnly: true, threads: 1 });
      convergenceSecret = other.keys.convergenceSecret;
      await other.close();
    }
    // The slow KDF first: nothing is written until the space's keys exist.
    const created = await createSpaceConfig({
      passphrase: o.passphrase,
      blockSize,
      backend,
      space,
      ...(o.kdfCost === undefined ? {} : { kdfCost: o.kdfCost }),
      ...(convergenceSecret ? { convergenceSecret } : {}),
      ...(o.packs === false ? {} : { packs: packSettingsFor(backend) }),
      ...(o.recoveryKey === undefined ? {} : { recoveryKey: o.recoveryKey }),
    });
    // The new space is authenticated (layout 2); spaces already there keep their own layout.
    const next: StoreConfig = config ?? { fragfs: STORE_FORMAT_VERSION, backend, spaces: {} };
    next.fragfs = Math.max(next.fragfs, STORE_FORMAT_VERSION);
    if (o.parity) created.space.parity = { ...o.parity };
    next.spaces[space] = created.space;
    // A remote store is made by its one config object, written last: nothing to undo before it.
    const undo = config || isRemoteLocation(storePath) ? undefined : await InitUndo.prepare(storePath);
    let store: Store | undefined;
    try {
      if (undo) await undo.createFolder();
      store = await openBackend(backend, storePath);
      await writeStoreConfig(storePath, next);
      if (undo) await tightenStoreIfLoose(storePath);
    } catch (e) {
      await store?.close().catch(() => undefined);
      await undo?.run();
      throw e;
    }
    const packed = withPacks(store, space, created.keys.masterKey, created.space.packs);
    const repo = new Repo(storePath, space, blockSize, packed, false, created.keys, newPool(created.keys, o.threads));
    repo.parity = created.space.parity;
    return repo;
  }

  static async open(o: OpenRepoOptions): Promise<Repo> {
    const storePath = storeLocation(o.storePath);
    const space = checkSpace(o.space ?? DEFAULT_SPACE);
    const config = await Repo.checkExists(storePath, space);
    const spaceConfig = config.spaces[space]!;
    if (o.passphrase === undefined && (o.identities ?? []).length === 0) {
      throw new FragfsError('NO_PASSPHRASE', `nothing to open the store at ${storePath} with: no passphrase and no identity`);
    }
    const unlocked = await unlockSpace(
      config,
      space,
      { ...(o.passphrase === undefined ? {} : { passphrase: o.passphrase }), ...(o.identities ? { identities: o.identities } : {}) },
      storePath,
    );
    const keys = unlocked.keys;
    if (!o.readOnly) {
      // A store written by an older fragfs, or copied without its modes, becomes private the first
      // time it is opened to be written, and its space authenticated (fragfs.json layout 2).
      // Read-only opens change nothing.
      if (!isRemoteLocation(storePath)) await tightenStoreIfLoose(storePath);
      if (!unlocked.authenticated) await upgradeSpaceConfig(storePath, space, unlocked, spaceConfig);
    }
    const store = withPacks(await openBackend(config.backend, storePath, { readOnly: o.readOnly ?? false }), space, keys.masterKey, spaceConfig.packs);
    const repo = new Repo(storePath, space, spaceConfig.blockSize, store, o.readOnly ?? false, keys, newPool(keys, o.threads));
    repo.parity = spaceConfig.parity;
    return repo;
  }

  /**
   * A repo with random keys on the memory backend, or on `store` (tests: an ObjectStore over an
   * in-memory service, whose gc files then live in that service): for tests and the in-process demo.
   */
  static async openMemory(o: { blockSize?: number; threads?: number; store?: Store } = {}): Promise<Repo> {
    const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
    checkBlockSize(blockSize);
    const keys = newSpaceKeys();
    const store = o.store ?? (await openBackend('memory', ''));
    return new Repo('', DEFAULT_SPACE, blockSize, store, false, keys, newPool(keys, o.threads));
  }

  /**
   * This space's entry of fragfs.json as another store with globals `g` must hold it (`sync`): an
   * authenticated entry gets tags for that store's backend and version, which only the master key
   * can make; a layout 1 entry is copied as it is.
   */
  async spaceConfigForStore(g: StoreGlobals): Promise<SpaceConfig> {
    const entry = (await readStoreConfig(this.storePath)).spaces[this.space];
    if (entry === undefined) throw new FragfsError('NO_STORE', `the store at ${this.storePath} has no space ${this.space}`);
    // The copy packs as a new space of DST's backend would.
    // It keeps parity of the same shape, in itself: a parity store is the source's own.
    const { packs: _packs, parity, ...bare } = entry;
    const rest: SpaceConfig = parity ? { ...bare, parity: { k: parity.k, m: parity.m } } : bare;
    const packs = packSettingsFor(g.backend);
    const copy: SpaceConfig = packs ? { ...rest, packs: entry.packs ?? packs } : rest;
    return copy.mac === undefined ? copy : withMac(copy, this.space, this.keys.masterKey, g);
  }

  /** `store` (another store holding this space, as `sync` writes it) as this space reads and writes it there. */
  packedStore(store: Store, settings: PackSettings | undefined): Store {
    return withPacks(store, this.space, this.keys.masterKey, settings);
  }

  /** Identifies the convergence domain without revealing the secret (same value = stores dedup together). */
  get convergenceId(): string {
    return convergenceIdOf(this.keys.convergenceSecret);
  }

  private writable(): void {
    if (this.readOnly) throw new FragfsError('READ_ONLY', `the store at ${this.storePath} is open read-only`);
    if (this.closed) throw new Error('Repo used after close');
  }

  /**
   * Encodes one block on the pool and stores it, unless `known` (ids a committed snapshot names)
   * holds its id. `plain` MAY be transferred to a worker: do not reuse it.
   */
  async writeBlock(plain: Uint8Array, o: { bulk?: boolean; known?: ReadonlySet<string> } = {}): Promise<BlockRef> {
    this.writable();
    if (plain.length > this.blockSize) {
      throw new Error(`writeBlock: ${plain.length} bytes is over the block size ${this.blockSize}`);
    }
    const plainSize = plain.length;
    // A whole block's stored bytes go into memory the last one used (buffer-recycle.ts), given back
    // once the store is done with them (Store contract: not used after put resolves). Fresh memory
    // for each cost a writer page faults, and its dead copies piled up outside V8's heap until a
    // full collection (60-100 MB of them while a mount wrote 1 GiB).
    const intoBytes = storedCapacity(plainSize);
    const into = plainSize === this.blockSize ? takeBuffer(intoBytes) : undefined;
    // `bulk`: a writer of many blocks at once (put) lets small ones share a trip to a codec thread.
    const enc = await (o.bulk === true && into === undefined ? this.pool.encodeBulk(plain) : this.pool.encode(plain, into));
    const recycle = () => {
      // (`into` itself went to the codec thread, detached here: its bytes came back as `stored`.)
      if (into !== undefined && enc.stored.byteOffset === 0 && enc.stored.buffer.byteLength === intoBytes) giveBuffer(enc.stored.buffer as ArrayBuffer);
    };
    if (o.known?.has(enc.id)) {
      // `known`: ids a committed snapshot names, so stored already. Named without being written, it
      // is held as any reused fragment is: pinned (and checked) if a gc beside this write condemned it.
      recycle();
      await (await this.writerGuard())?.hold('data', enc.id, true);
      return { id: enc.id, key: enc.key, plainSize };
    }
    await this.storePut(this.dataNs, enc.id, enc.stored);
    recycle();
    return { id: enc.id, key: enc.key, plainSize };
  }

  /** The verified plaintext of a block; `where` (a file path) goes into any error. */
  readBlock(ref: BlockRef, where?: string): Promise<Uint8Array> {
    return this.fetchAndDecode(ref, where);
  }

  /**
   * readBlock, with the plaintext decoded into `into`'s memory when it fits (CodecPool.decode): for a
   * writer laying new bytes over a stored block, whose image is then that memory. `into` MUST own its
   * whole ArrayBuffer and is taken; use the result (a view of that memory, or of another when the
   * plaintext did not fit).
   */
  readBlockInto(ref: BlockRef, into: Uint8Array, where?: string): Promise<Uint8Array> {
    return this.fetchAndDecode(ref, where, into);
  }

  private async fetchAndDecode(ref: BlockRef, where: string | undefined, into?: Uint8Array): Promise<Uint8Array> {
    let stored: Uint8Array;
    try {
      // handOff: a remote store's fragment cache leaves its write of a fetched block to the codec
      // thread that decodes it (src/store/cache-handoff.ts).
      stored = await this.store.get(this.dataNs, ref.id, { expectedBytes: ref.plainSize, handOff: true });
    } catch (e) {
      throw withWhere(e, where);
    }
    const handoff = takeCacheHandoff(stored);
    try {
      if (handoff === undefined) return await this.pool.decode(stored, ref, into);
      const plain = await this.pool.decodeAndCache(stored, ref, handoff);
      // A fetched block is decoded where its cache write goes, then copied into `into`.
      if (into === undefined || into.byteLength < plain.byteLength) return plain;
      into.set(plain);
      return into.subarray(0, plain.byteLength);
    } catch (e) {
      throw withWhere(e, where);
    }
  }

  async putMeta(obj: MetaObject): Promise<string> {
    return (await this.putMetaKeyed(obj)).id;
  }

  /**
   * Stores a metadata object; returns its id and, for a dir or manifest object of version 3, its own
   * key, which the entry that names it MUST carry (dirKey, pageKeys) so a share can read it.
   */
  async putMetaKeyed(obj: MetaObject): Promise<{ id: string; key?: Uint8Array }> {
    this.writable();
    const { id, bytes, key } = encodeMeta(obj, this.keys);
    // The pin (if gc condemned it) comes before the look: see src/gc/gc-guard.ts.
    const pinned = (await (await this.writerGuard())?.hold('meta', id)) ?? false;
    // A remote service answers a lookup in a round trip, as a put: there the put goes at once
    // (the same bytes under the same id, harmless) and large ones are looked up by the store itself.
    if (pinned || this.store.backend === 'object' || this.store.dedupesPuts === true || !(await this.store.has(this.metaNs, id))) {
      await this.storePut(this.metaNs, id, bytes, pinned);
    }
    return key === undefined ? { id } : { id, key };
  }

  /**
   * The own key of stored meta fragment `id` (metadata version 3 dirs and manifests), read from the
   * fragment with the space's keys; undefined for one sealed under the space's metadata key. For
   * writers that name a fragment they did not just write (a snapshot reusing a cached folder).
   */
  async metaKeyOf(id: string, where?: string): Promise<Uint8Array | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = await this.store.get(this.metaNs, id);
    } catch (e) {
      throw withWhere(e, where);
    }
    try {
      return fragmentKeyOf(bytes, id, this.keys);
    } catch (e) {
      throw withWhere(e, where);
    }
  }

  /** The key of this space's pack indexes: what a share needs, beside its entry, to find fragments. */
  packIndexKey(): Uint8Array {
    return packIndexKeyOf(this.keys.masterKey);
  }

  /**
   * This opening's lease with a concurrent gc (src/gc/gc-guard.ts), started at the first write;
   * undefined on the memory backend (no store folder). A caller that names fragments it did not
   * write (a snapshot reusing what the live state caches) holds them through it first.
   */
  writerGuard(): Promise<GcGuard | undefined> {
    this.writable();
    if (this.guard === undefined) {
      // A remote store's leases and pins are in the store itself (gc-place.ts), as gc on any machine sees them.
      const starting = gcPlaceOf(this).then((place) =>
        place === undefined ? undefined : GcGuard.start({ place, space: this.space, store: this.store, purpose: this.purpose }),
      );
      this.guard = starting;
      // A lease that could not be written (a full disk) is tried again by the next write.
      starting.catch(() => {
        if (this.guard === starting) this.guard = undefined;
      });
    }
    return this.guard;
  }

  /** `key`: the fragment's own key, from the entry naming it (dirKey, pageKeys); a share has nothing else. */
  async getMeta<K extends MetaObject['kind']>(id: string, kind: K, where?: string, key?: Uint8Array): Promise<MetaOf<K>> {
    let bytes: Uint8Array;
    try {
      bytes = await this.store.get(this.metaNs, id);
    } catch (e) {
      throw withWhere(e, where);
    }
    let obj: MetaObject;
    try {
      obj = decodeMeta(bytes, id, { ...(this.spaceKeys ? { space: this.spaceKeys } : {}), ...(key ? { fragmentKey: key } : {}) });
    } catch (e) {
      throw withWhere(e, where);
    }
    if (obj.kind !== kind) {
      throw new FragfsError('CORRUPT', `fragment ${id}${where ? ` of ${where}` : ''} is a ${obj.kind}, expected a ${kind}`, {
        fragmentId: id,
        ...(where === undefined ? {} : { path: where }),
      });
    }
    return obj as MetaOf<K>;
  }

  async putRef(ref: RefObject): Promise<void> {
    this.writable();
    // Callers check the name before they store anything; this keeps a bad one out of the refs anyway.
    if (ref.name !== undefined) checkSnapshotName(ref.name, 'the name');
    const { bytes } = encodeMeta(ref, this.keys);
    await this.storePut(this.refNs, ref.snapshot, bytes);
  }

  /**
   * Every ref of the space, oldest first. A damaged ref is a CORRUPT error naming its id; with
   * `onError` it is reported there and skipped, so one bad ref does not hide the others.
   */
  async listRefs(o: { onError?: (e: FragfsError, id: string) => void } = {}): Promise<RefObject[]> {
    const refs: RefObject[] = [];
    for await (const id of this.store.list(this.refNs)) {
      try {
        refs.push(await this.readRef(id));
      } catch (e) {
        if (!(e instanceof FragfsError) || !o.onError) throw e;
        o.onError(e, id);
      }
    }
    refs.sort((a, b) => a.createdMs - b.createdMs || (a.snapshot < b.snapshot ? -1 : 1));
    return refs;
  }

  private async readRef(id: string): Promise<RefObject> {
    const bytes = await this.store.get(this.refNs, id);
    let obj: MetaObject;
    try {
      // A ref is addressed by the snapshot it names, not by its own hash: the AEAD tag is its check.
      obj = decodeMeta(bytes, toHex(blake3(bytes)), this.keys);
    } catch (e) {
      const why = e instanceof FragfsError ? e.message.replace(/^fragment [0-9a-f]{64}: /, '') : String(e);
      throw new FragfsError('CORRUPT', `ref ${id}: ${why}`, { fragmentId: id, cause: e });
    }
    if (obj.kind !== 'ref' || obj.snapshot !== id) {
      throw new FragfsError('CORRUPT', `ref ${id} does not name its own snapshot`, { fragmentId: id });
    }
    return obj;
  }

  /**
   * A meta key from what a user typed: 64 hex digits, a unique prefix of at least 8 hex digits of a
   * listed snapshot, or a snapshot name (the newest snapshot of that name). Text that is both a name
   * and a key prefix, or a prefix of several keys, is BAD_KEY naming the candidates: neither ever
   * silently shadows the other.
   */
  /**
   * A 32-byte key for `context` derived from the space's master key (BLAKE3 derive_key): for what
   * fragfs keeps beside the store under the same passphrase (the live state). `context` MUST be a
   * fixed string of the caller's, never reused for another purpose.
   */
  deriveKey(context: string): Uint8Array {
    return blake3DeriveKey(context, this.keys.masterKey);
  }

  async resolveSnapshot(keyOrName: string): Promise<string> {
    const text = keyOrName.trim();
    if (text.length === 0) throw new FragfsError('BAD_KEY', `an empty meta key (${KEY_FORMS})`);
    const lower = text.toLowerCase();
    if (HEX64.test(lower)) {
      if (!(await this.store.has(this.metaNs, lower))) {
        throw new FragfsError('NOT_FOUND', `no snapshot with meta key ${lower} in the store at ${this.storePath || '(memory)'}`);
      }
      return lower;
    }
    const refs = await this.listRefs();
    const named = refs.filter((r) => r.name === text);
    const prefixed = KEY_PREFIX_RE.test(lower) ? refs.filter((r) => r.snapshot.startsWith(lower)) : [];
    if (named.length > 0 && prefixed.length > 0) {
      const byName = named[named.length - 1]!.snapshot;
      const byKey = prefixed.find((r) => r.snapshot !== byName)?.snapshot ?? prefixed[0]!.snapshot;
      throw new FragfsError(
        'BAD_KEY',
        `${JSON.stringify(text)} is both the name of snapshot ${byName} and a prefix of meta key ${byKey}; give the full meta key`,
      );
    }
    // Several snapshots may share a name (a name is a label, not an id): the newest one wins.
    if (named.length > 0) return named[named.length - 1]!.snapshot;
    if (prefixed.length === 1) return prefixed[0]!.snapshot;
    if (prefixed.length > 1) {
      const shown = prefixed.slice(0, 3).map((r) => r.snapshot);
      throw new FragfsError(
        'BAD_KEY',
        `meta key prefix ${lower} is ambiguous: ${shown.join(', ')}${prefixed.length > shown.length ? ` and ${prefixed.length - shown.length} more` : ''}; give more digits`,
      );
    }
    if (KEY_PREFIX_RE.test(lower)) {
      throw new FragfsError('NOT_FOUND', `no snapshot whose meta key starts with ${lower} (${KEY_FORMS})`);
    }
    if (/^[0-9a-f]+$/.test(lower)) throw new FragfsError('BAD_KEY', `not a meta key: ${text} (${KEY_FORMS})`);
    throw new FragfsError('NOT_FOUND', `no snapshot named ${JSON.stringify(text)} (${KEY_FORMS})`);
  }

  async sync(): Promise<void> {
    try {
      await this.store.sync();
    } catch (e) {
      throw fromFsError(e, 'syncing the store');
    }
  }

  /**
   * Puts what the store holds and no stripe covers yet into stripes, when the space keeps parity
   * and this opening writes (a no-op otherwise). close() calls it; a mount calls it after each
   * snapshot it takes.
   */
  async protect(): Promise<ProtectReport | undefined> {
    const settings = this.parity;
    if (this.readOnly || !settings) return undefined;
    await this.store.sync();
    const members = storedObjectsOf(this.store);
    return withParityPlace(settings, members, { readOnly: false }, (parityStore) =>
      protectStore(members, this.space, settings, { parityStore, cachePath: stripeCachePath(this.storePath, this.space) }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let protectFailure: unknown;
    // What this opening stored gets its stripes before the store closes.
    try {
      await this.protect();
    } catch (e) {
      protectFailure = e;
    }
    // Every write has ended: the lease goes (until then a gc waits for what they wrote to be named).
    const guard = this.guard;
    this.guard = undefined;
    await (await guard?.catch(() => undefined))?.close();
    await this.pool.close();
    await this.store.close();
    if (protectFailure !== undefined) throw fromFsError(protectFailure, 'writing parity');
  }

  /** `held`: the caller already held the fragment with the gc lease (before it looked for it). */
  /** `pinned`: the caller held the id already and it was pinned (undefined: hold it here). */
  private async storePut(ns: Namespace, id: string, bytes: Uint8Array, pinned?: boolean): Promise<void> {
    if (pinned === undefined && ns.kind !== 'ref') pinned = (await (await this.writerGuard())?.hold(ns.kind, id)) ?? false;
    try {
      await this.store.put(ns, id, bytes, pinned || this.deferWrites ? { fresh: pinned === true, deferred: this.deferWrites } : undefined);
    } catch (e) {
      throw fromFsError(e, `writing fragment ${id} to the store`);
    }
  }
}

function newPool(keys: SpaceKeys, threads?: number): CodecPool {
  return new CodecPool({ convergenceSecret: keys.convergenceSecret, ...(threads === undefined ? {} : { threads }) });
}

function checkSpace(space: string): string {
  if (!isValidSpaceName(space)) {
    throw new FragfsError('USAGE', `not a space name: ${JSON.stringify(space)} (lowercase letters, digits, - and _)`);
  }
  return space;
}

/** Adds the file a failing fragment belongs to, keeping code and fragment id. */
function withWhere(e: unknown, where?: string): unknown {
  if (!(e instanceof FragfsError) || where === undefined || e.path !== undefined) return e;
  const wrapped = new FragfsError(e.code, `${e.message} (in ${where})`, {
    path: where,
    cause: e,
    ...(e.fragmentId === undefined ? {} : { fragmentId: e.fragmentId }),
  });
  return wrapped;
}

/** A remote store may be made only under a prefix that holds nothing. */
async function checkRemoteEmpty(location: string): Promise<void> {
  const objects = await remoteBackendOf(location);
  for await (const entry of objects.list('')) {
    throw new FragfsError('EXISTS', `${location} is not empty (it holds ${entry.key}) and holds no fragfs store; pick an empty prefix`, {
      path: location,
    });
  }
}

/** A remote store always has the object layout; a local one the backend asked for. */
function backendFor(location: string, asked: BackendName): BackendName {
  return isRemoteLocation(location) ? 'object' : asked;
}

/** A store may be made only where nothing is, or in an empty folder. */
async function checkEmptyOrAbsent(path: string): Promise<void> {
  try {
    const st = await stat(path);
    if (!st.isDirectory()) throw new FragfsError('EXISTS', `${path} exists and is not a folder`, { path });
    const names = await readdir(path);
    if (names.length > 0) {
      throw new FragfsError('EXISTS', `${path} is not empty and holds no fragfs store; pick an empty or new folder`, { path });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromFsError(e, 'checking', path);
  }
}

/** What `init` needs to put a path back as it found it: absent, or an empty folder with its mode. */
class InitUndo {
  private firstCreated: string | undefined;

  private constructor(
    private readonly path: string,
    /** Mode of the empty folder that was there, or undefined when nothing was. */
    private readonly existingMode: number | undefined,
  ) {}

  static async prepare(path: string): Promise<InitUndo> {
    try {
      return new InitUndo(path, (await stat(path)).mode & 0o7777);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromFsError(e, 'checking', path);
      return new InitUndo(path, undefined);
    }
  }

  async createFolder(): Promise<void> {
    try {
      this.firstCreated = await mkdirPrivate(this.path);
      if (this.existingMode !== undefined) await chmod(this.path, PRIVATE_DIR_MODE);
    } catch (e) {
      throw fromFsError(e, 'creating the store folder', this.path);
    }
  }

  /** Best effort: the error that made init fail is the one to report. */
  async run(): Promise<void> {
    if (this.existingMode === undefined) {
      // Only what this init made: a folder someone else made meanwhile is not ours to remove.
      if (this.firstCreated !== undefined) await rm(this.firstCreated, { recursive: true, force: true }).catch(() => undefined);
      return;
    }
    const names = await readdir(this.path).catch(() => [] as string[]);
    for (const name of names) await rm(join(this.path, name), { recursive: true, force: true }).catch(() => undefined);
    await chmod(this.path, this.existingMode).catch(() => undefined);
  }
}
