// STORE/fragfs.json: the store's format version, backend and, per space, the KDF parameters, the
// sealed keys and (layout 2) the tags that authenticate the entry. Reading checks everything (a
// damaged or newer config is BAD_STORE, never a crash); unlocking a space checks its tags (a field
// changed outside fragfs is BAD_STORE naming it); writing is atomic (temp file, fsync, rename, fsync
// of the folder).

import { reachableIdentities } from '../people/groups.js';
import type { PeopleSpace } from '../people/people-config.js';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FragfsError, fromFsError } from '../errors.js';
import { PRIVATE_FILE_MODE, mkdirPrivate } from '../store/private-modes.js';
import { isRemoteLocation, remoteBackendOf } from '../remote/store-site.js';
import { BACKEND_NAMES, isValidSpaceName, type BackendName } from '../store/store.js';
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, checkBlockSize } from '../codec/block-size.js';
import { derivePassphraseKey, kdfParamsProblem, newKdfParams, passphraseBytes, type KdfParams } from './passphrase-kdf.js';
import { packSettingsProblem, type PackSettings } from '../pack/pack-settings.js';
import { paritySettingsProblem, type ParitySettings } from '../parity/parity-settings.js';
import { changedField, computeConfigMac, sameTag, tagOfLines, type AuthenticatedValues, type ConfigMac } from './config-mac.js';
import { looksLikeRecoveryKey, parseRecoveryKey } from '../people/recovery-key.js';
import {
  LEGACY_FIRST_SLOT_ID,
  makeRecoverySlot,
  newSlotId,
  slotLines,
  slotsProblem,
  tryIdentities,
  tryPassphrase,
  tryRecoveryKey,
  type FirstSlot,
  type KeySlot,
  type SlotCandidate,
  type SlotType,
} from '../people/key-slots.js';
import {
  CONVERGENCE_SECRET_AAD,
  MASTER_KEY_AAD,
  MASTER_KEY_AAD_V2,
  convergenceIdOf,
  convergenceWrapKey,
  deriveSpaceKeys,
  newSpaceKeys,
  sealKey,
  sealedKeyProblem,
  unsealKey,
  type SealedKey,
  type SpaceKeys,
} from './keys.js';

export const STORE_CONFIG_FILE = 'fragfs.json';
/**
 * Version of fragfs.json and of the store layout it describes; readers MUST reject a higher one.
 * 1: spaces unauthenticated. 2: a space may carry `mac` (its master key then sealed with
 * MASTER_KEY_AAD_V2); fragfs writes only such spaces, and turns a 1 into a 2 when it writes one.
 */
export const STORE_FORMAT_VERSION = 2;
/** The lowest version this fragfs reads. */
export const OLDEST_STORE_FORMAT_VERSION = 1;

/** One space's entry in fragfs.json (all binary values lowercase hex). */
export interface SpaceConfig {
  /** When the space was created, milliseconds since the epoch. */
  createdMs: number;
  /** Data block size in bytes, MIN_BLOCK_SIZE..MAX_BLOCK_SIZE. */
  blockSize: number;
  /** How the passphrase becomes the key that seals `masterKey`. */
  kdf: KdfParams;
  /** The master key sealed under the passphrase key (AAD MASTER_KEY_AAD). */
  masterKey: SealedKey;
  /** The convergence secret sealed under convergenceWrapKey(master key) (AAD CONVERGENCE_SECRET_AAD). */
  convergenceSecret: SealedKey;
  /** 16 random bytes naming this space. */
  storeId: string;
  /** convergenceIdOf(convergence secret): equal in two spaces = they dedup with each other. */
  convergenceId: string;
  /**
   * Layout 2: a tag per field (config-mac.ts), the store's `fragfs` and `backend` included. Present
   * exactly when `masterKey` is sealed with MASTER_KEY_AAD_V2. Absent in a space from layout 1.
   */
  mac?: ConfigMac;
  /**
   * Present: small fragments are written into packs (src/pack). Absent: each fragment is its own
   * object, as in spaces made before packs. Readers look in packs either way.
   */
  packs?: PackSettings;
  /**
   * Present: the space keeps Reed-Solomon parity over its stored objects (src/parity), in
   * stripes of up to k objects with m parity objects. Outside the tags, like `packs`.
   */
  parity?: ParitySettings;
  /**
   * Id, time and sealed label of the first passphrase (`kdf`/`masterKey`). Absent: its id is
   * LEGACY_FIRST_SLOT_ID and its time `createdMs`. Covered by the `slots` tag.
   */
  firstSlot?: FirstSlot;
  /** More ways in (src/people/key-slots.ts); only in an authenticated entry, covered by the `slots` tag. */
  slots?: KeySlot[];
}

export interface StoreConfig {
  /** STORE_FORMAT_VERSION. */
  fragfs: number;
  backend: BackendName;
  spaces: Record<string, SpaceConfig>;
}

export function storeConfigPath(storePath: string): string {
  return join(storePath, STORE_CONFIG_FILE);
}

/** Why `s` is not a valid SpaceConfig, or undefined. */
export function spaceConfigProblem(s: unknown): string | undefined {
  const c = s as Partial<SpaceConfig> | null;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return 'not an object';
  if (!Number.isSafeInteger(c.createdMs) || (c.createdMs as number) < 0) return 'createdMs is not a time';
  if (!Number.isInteger(c.blockSize) || (c.blockSize as number) < MIN_BLOCK_SIZE || (c.blockSize as number) > MAX_BLOCK_SIZE) {
    return `blockSize is not ${MIN_BLOCK_SIZE}..${MAX_BLOCK_SIZE}`;
  }
  const kdf = kdfParamsProblem(c.kdf);
  if (kdf !== undefined) return kdf;
  const mk = sealedKeyProblem(c.masterKey);
  if (mk !== undefined) return `masterKey: ${mk}`;
  const cs = sealedKeyProblem(c.convergenceSecret);
  if (cs !== undefined) return `convergenceSecret: ${cs}`;
  if (typeof c.storeId !== 'string' || !/^[0-9a-f]{32}$/.test(c.storeId)) return 'storeId is not 16 bytes of hex';
  if (typeof c.convergenceId !== 'string' || !/^[0-9a-f]{64}$/.test(c.convergenceId)) {
    return 'convergenceId is not 32 bytes of hex';
  }
  if (c.packs !== undefined) {
    const p = packSettingsProblem(c.packs);
    if (p !== undefined) return p;
  }
  if (c.parity !== undefined) {
    const p = paritySettingsProblem(c.parity);
    if (p !== undefined) return p;
  }
  const sp = slotsProblem(c.firstSlot, c.slots);
  if (sp !== undefined) return sp;
  if ((c.firstSlot !== undefined || c.slots !== undefined) && c.mac === undefined) return 'key slots in an entry without mac';
  if (c.mac !== undefined) {
    if (typeof c.mac !== 'object' || c.mac === null || Array.isArray(c.mac)) return 'mac is not an object';
    for (const [field, tag] of Object.entries(c.mac)) {
      // Which tags must be there, and what they say, is for unlockSpace: only the master key can tell.
      if (typeof tag !== 'string' || !/^[0-9a-f]{32}$/.test(tag)) return `mac.${field} is not 16 bytes of hex`;
    }
  }
  return undefined;
}

/** Why `value` is not a valid StoreConfig, or undefined. A newer format is reported separately by the reader. */
export function storeConfigProblem(value: unknown): string | undefined {
  const c = value as Partial<StoreConfig> | null;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return 'not a JSON object';
  if (!Number.isInteger(c.fragfs) || (c.fragfs as number) < OLDEST_STORE_FORMAT_VERSION) {
    return '"fragfs" (format version) is missing or not a number';
  }
  if (typeof c.backend !== 'string' || !BACKEND_NAMES.includes(c.backend as BackendName)) {
    return `unknown backend ${JSON.stringify(c.backend)}`;
  }
  if (typeof c.spaces !== 'object' || c.spaces === null || Array.isArray(c.spaces)) return '"spaces" is not an object';
  for (const [name, space] of Object.entries(c.spaces)) {
    if (!isValidSpaceName(name)) return `bad space name ${JSON.stringify(name)}`;
    const problem = spaceConfigProblem(space);
    if (problem !== undefined) return `space ${name}: ${problem}`;
  }
  return undefined;
}

/**
 * The config of the store at `storePath`. NO_STORE when there is no fragfs.json there; BAD_STORE
 * when it is not valid JSON, fails a check, or was written by a newer fragfs.
 */
export async function readStoreConfig(storePath: string): Promise<StoreConfig> {
  const remote = isRemoteLocation(storePath);
  const file = remote ? `${storePath} ${STORE_CONFIG_FILE}` : storeConfigPath(storePath);
  let text: string;
  try {
    if (remote) {
      const bytes = await (await remoteBackendOf(storePath)).get(STORE_CONFIG_FILE);
      if (bytes === undefined) throw new FragfsError('NO_STORE', `no fragfs store at ${storePath}`, { path: storePath });
      text = Buffer.from(bytes).toString('utf8');
    } else {
      text = await readFile(file, 'utf8');
    }
  } catch (e) {
    if (e instanceof FragfsError) throw e;
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') {
      throw new FragfsError('NO_STORE', `no fragfs store at ${storePath}`, { path: storePath, cause: e });
    }
    throw fromFsError(e, 'cannot read the store configuration', file);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FragfsError('BAD_STORE', `the store configuration ${file} is not valid JSON: ${(e as Error).message}`, {
      path: file,
      cause: e,
    });
  }
  const version = (value as { fragfs?: unknown } | null)?.fragfs;
  if (typeof version === 'number' && Number.isInteger(version) && version > STORE_FORMAT_VERSION) {
    throw new FragfsError(
      'BAD_STORE',
      `the store at ${storePath} was written by a newer fragfs (format ${version}; this fragfs reads up to ${STORE_FORMAT_VERSION})`,
      { path: file },
    );
  }
  const problem = storeConfigProblem(value);
  if (problem !== undefined) {
    throw new FragfsError('BAD_STORE', `the store configuration ${file} is damaged: ${problem}`, { path: file });
  }
  return value as StoreConfig;
}

/** Writes `cfg` atomically (creating `storePath` if needed): a crash leaves the old or the new file. */
export async function writeStoreConfig(storePath: string, cfg: StoreConfig): Promise<void> {
  const problem = storeConfigProblem(cfg);
  if (problem !== undefined) throw new FragfsError('INVALID', `not a valid store configuration: ${problem}`);
  if (cfg.fragfs > STORE_FORMAT_VERSION) throw new FragfsError('INVALID', `unknown store format ${cfg.fragfs}`);
  if (isRemoteLocation(storePath)) {
    // One PUT replaces the object whole (ObjectBackend contract): the old or the new config, never a mix.
    await (await remoteBackendOf(storePath)).put(STORE_CONFIG_FILE, Buffer.from(`${JSON.stringify(cfg, null, 2)}\n`, 'utf8'));
    return;
  }
  const file = storeConfigPath(storePath);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdirPrivate(storePath);
    const fh = await open(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      await fh.writeFile(`${JSON.stringify(cfg, null, 2)}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    const dir = await open(storePath, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw fromFsError(e, 'cannot write the store configuration', file);
  }
}

export interface CreateSpaceOptions {
  passphrase: string;
  blockSize: number;
  /** The store the space goes into: its tags cover the store's backend and layout version... */
  backend: BackendName;
  /** ...and the space's name. */
  space: string;
  /** log2 of scrypt's N; only code sets it (tests use 10), users get DEFAULT_KDF_COST. */
  kdfCost?: number;
  /** Another space's convergence secret, to dedup with it; a fresh random one otherwise. */
  convergenceSecret?: Uint8Array;
  /** The space writes packs (src/pack). */
  packs?: PackSettings;
  /** A recovery key (formatRecoveryKey) that opens the space too: a recovery slot is made for it. */
  recoveryKey?: string;
}

/**
 * A new space, authenticated (layout 2): fresh keys sealed under `passphrase`. The caller adds it
 * to a config of version STORE_FORMAT_VERSION and `o.backend`, and writes it.
 */
export async function createSpaceConfig(o: CreateSpaceOptions): Promise<{ space: SpaceConfig; keys: SpaceKeys }> {
  passphraseBytes(o.passphrase); // INVALID on an empty passphrase, before the slow KDF
  checkBlockSize(o.blockSize);
  const keys = newSpaceKeys(o.convergenceSecret);
  const kdf = newKdfParams(o.kdfCost);
  const kek = await derivePassphraseKey(o.passphrase, kdf);
  const entry: SpaceConfig = {
    createdMs: Date.now(),
    blockSize: o.blockSize,
    kdf,
    masterKey: sealKey(kek, keys.masterKey, MASTER_KEY_AAD_V2),
    convergenceSecret: sealKey(convergenceWrapKey(keys.masterKey), keys.convergenceSecret, CONVERGENCE_SECRET_AAD),
    storeId: randomBytes(16).toString('hex'),
    convergenceId: convergenceIdOf(keys.convergenceSecret),
    ...(o.packs ? { packs: o.packs } : {}),
    ...(o.recoveryKey === undefined
      ? {}
      : { slots: [makeRecoverySlot({ masterKey: keys.masterKey, space: o.space, id: newSlotId([]), recoveryKey: o.recoveryKey })] }),
  };
  return { space: withMac(entry, o.space, keys.masterKey, { fragfs: STORE_FORMAT_VERSION, backend: o.backend }), keys };
}

/** The store-wide fields a space's tags cover. */
export interface StoreGlobals {
  fragfs: number;
  backend: BackendName;
}

function authenticatedValues(entry: SpaceConfig, g: StoreGlobals): AuthenticatedValues {
  return {
    fragfs: g.fragfs,
    backend: g.backend,
    createdMs: entry.createdMs,
    blockSize: entry.blockSize,
    kdf: entry.kdf,
    masterKey: entry.masterKey,
    convergenceSecret: entry.convergenceSecret,
    storeId: entry.storeId,
    convergenceId: entry.convergenceId,
  };
}

/** `entry` with fresh tags for space `space` of a store with globals `g`. Its master key MUST be sealed with MASTER_KEY_AAD_V2. */
export function withMac(entry: SpaceConfig, space: string, masterKey: Uint8Array, g: StoreGlobals): SpaceConfig {
  const { mac: _old, ...rest } = entry;
  const mac: ConfigMac = computeConfigMac(masterKey, space, authenticatedValues(rest, g));
  if (hasSlots(rest)) mac.slots = slotsTag(masterKey, space, rest);
  return { ...rest, mac };
}

function hasSlots(entry: SpaceConfig): boolean {
  return entry.firstSlot !== undefined || entry.slots !== undefined;
}

function slotsTag(masterKey: Uint8Array, space: string, entry: SpaceConfig): string {
  return tagOfLines(masterKey, space, slotLines(entry.firstSlot, entry.slots));
}

/**
 * The first field of an authenticated entry whose tag `masterKey` does not confirm (the `slots` tag
 * included when the entry has slots), or undefined when all do.
 */
export function unconfirmedField(entry: SpaceConfig, space: string, masterKey: Uint8Array, g: StoreGlobals): string | undefined {
  const changed = changedField(masterKey, space, authenticatedValues(entry, g), entry.mac ?? {});
  if (changed !== undefined) return changed;
  if (hasSlots(entry) && !sameTag(entry.mac?.slots, slotsTag(masterKey, space, entry))) return 'slots';
  if (!hasSlots(entry) && entry.mac?.slots !== undefined) return 'slots (removed)';
  return undefined;
}

/** What opens a space: a passphrase (or the recovery key, told apart by its form), age identities, or both. */
export interface Credentials {
  passphrase?: string;
  /** AGE-SECRET-KEY-1... strings; tried on the recipient slots before any passphrase. */
  identities?: readonly string[];
}

/** The slots of a space as `key list` shows them: the first passphrase first. */
export function firstSlotOf(entry: SpaceConfig): FirstSlot {
  return entry.firstSlot ?? { id: LEGACY_FIRST_SLOT_ID, createdMs: entry.createdMs };
}

/** An unlocked space: its keys, and what re-sealing its master key needs. */
export interface UnlockedSpace {
  keys: SpaceKeys;
  /** The passphrase key (scrypt output) that seals the master key in `kdf`/`masterKey`, when that is what opened. */
  kek?: Uint8Array;
  /** The id of the slot that opened (the first passphrase's is firstSlotOf(entry).id) and its type. */
  slotId: string;
  slotType: SlotType;
  /** Whether the entry is authenticated (layout 2); a layout 1 entry is upgraded by `authenticateSpace`. */
  authenticated: boolean;
}

function changedOutside(where: { storePath: string; space: string }, field: string): FragfsError {
  return new FragfsError(
    'BAD_STORE',
    `fragfs.json was changed outside fragfs (field ${field}, space ${where.space}) in the store at ${where.storePath}`,
    { path: where.storePath },
  );
}

/**
 * The keys of space `space` of `cfg`, opened with `credentials` (a string is a passphrase).
 * Identities are tried on the recipient slots first; then a passphrase that has the recovery key's
 * form on the recovery slots (no KDF); then the passphrase on the first passphrase (`kdf`/
 * `masterKey`) and on every other passphrase slot (one scrypt each). A master key a slot gives up
 * is used only once the entry's tags confirm it.
 * BAD_IDENTITY when identities alone were given and none opens a slot, BAD_PASSPHRASE otherwise when
 * nothing opens; BAD_STORE "fragfs.json was changed outside fragfs (field ...)" when a slot opened
 * but a tag does not match (or the entry was turned from layout 2 into layout 1), and BAD_STORE
 * when the config is damaged (including a convergence secret that does not match its id).
 */
export async function unlockSpace(
  cfg: StoreConfig,
  space: string,
  credentials: string | Credentials,
  storePath: string,
): Promise<UnlockedSpace> {
  const where = { storePath, space };
  const creds: Credentials = typeof credentials === 'string' ? { passphrase: credentials } : credentials;
  const entry = cfg.spaces[space];
  if (entry === undefined) {
    const known = Object.keys(cfg.spaces).join(', ') || 'none';
    throw new FragfsError('NO_STORE', `the store at ${storePath} has no space ${space} (spaces: ${known})`, { path: storePath });
  }
  const problem = spaceConfigProblem(entry);
  if (problem !== undefined) {
    throw new FragfsError('BAD_STORE', `the configuration of space ${space} in ${storePath} is damaged: ${problem}`, {
      path: storePath,
    });
  }
  const identities = creds.identities ?? [];
  const passphrase = creds.passphrase;
  if (identities.length === 0 && (typeof passphrase !== 'string' || passphrase.length === 0)) {
    throw new FragfsError('BAD_PASSPHRASE', `an empty passphrase does not open the store at ${storePath} (space ${space})`, {
      path: storePath,
    });
  }
  const authenticated = entry.mac !== undefined;
  const slots = entry.slots ?? [];
  const first = firstSlotOf(entry);
  /** The first tag a candidate failed: it opened a slot, so the entry, not the credential, is wrong. */
  let failed: string | undefined;
  const confirmed = (masterKey: Uint8Array): boolean => {
    if (!authenticated) return true;
    const changed = unconfirmedField(entry, space, masterKey, cfg);
    failed ??= changed;
    return changed === undefined;
  };
  let opened: { masterKey: Uint8Array; slotId: string; slotType: SlotType; kek?: Uint8Array } | undefined;
  const pick = (found: SlotCandidate[]) => {
    const c = found.find((f) => confirmed(f.masterKey));
    if (c) opened = { masterKey: c.masterKey, slotId: c.slot.id, slotType: c.slot.type };
  };

  // A member of a group a slot is sealed to opens it with the group's identities, which their own
  // reach through the groups' boxes (src/people/groups.ts).
  const groups = (entry as PeopleSpace).groups;
  if (identities.length > 0) pick(await tryIdentities(slots, groups === undefined ? identities : await reachableIdentities(entry, identities)));
  let mistypedRecovery = false;
  if (opened === undefined && typeof passphrase === 'string' && passphrase.length > 0) {
    if (looksLikeRecoveryKey(passphrase)) {
      mistypedRecovery = parseRecoveryKey(passphrase) === undefined;
      pick(tryRecoveryKey(slots, passphrase));
    }
    if (opened === undefined) {
      const kek = await derivePassphraseKey(passphrase, entry.kdf);
      const masterKey = unsealKey(kek, entry.masterKey, authenticated ? MASTER_KEY_AAD_V2 : MASTER_KEY_AAD);
      if (masterKey === undefined) {
        // The other layout's seal opening means the passphrase was right and the entry was relabelled.
        if (unsealKey(kek, entry.masterKey, authenticated ? MASTER_KEY_AAD : MASTER_KEY_AAD_V2) !== undefined) {
          throw changedOutside(where, authenticated ? 'mac' : 'mac (removed)');
        }
      } else if (confirmed(masterKey)) {
        opened = { masterKey, slotId: first.id, slotType: 'passphrase', kek };
      }
    }
    if (opened === undefined) pick(await tryPassphrase(slots, passphrase));
  }
  if (opened === undefined) {
    if (failed !== undefined) throw changedOutside(where, failed);
    if (identities.length > 0 && passphrase === undefined) {
      throw new FragfsError('BAD_IDENTITY', `no key of the store at ${storePath} (space ${space}) is sealed to the given identity`, {
        path: storePath,
      });
    }
    const hint = mistypedRecovery ? ' (it has the form of a recovery key, but a character is mistyped)' : '';
    throw new FragfsError('BAD_PASSPHRASE', `wrong passphrase for the store at ${storePath} (space ${space})${hint}`, {
      path: storePath,
    });
  }
  const masterKey = opened.masterKey;
  const convergenceSecret = unlockConvergence(masterKey, entry);
  if (convergenceSecret === undefined) {
    throw new FragfsError(
      'BAD_STORE',
      `the convergence secret of space ${space} in ${storePath} is damaged (the passphrase was right)`,
      { path: storePath },
    );
  }
  return {
    keys: deriveSpaceKeys(masterKey, convergenceSecret),
    ...(opened.kek === undefined ? {} : { kek: opened.kek }),
    authenticated,
    slotId: opened.slotId,
    slotType: opened.slotType,
  };
}

function unlockConvergence(masterKey: Uint8Array, entry: SpaceConfig): Uint8Array | undefined {
  const secret = unsealKey(convergenceWrapKey(masterKey), entry.convergenceSecret, CONVERGENCE_SECRET_AAD);
  return secret !== undefined && convergenceIdOf(secret) === entry.convergenceId ? secret : undefined;
}

/**
 * The layout 2 form of an unlocked layout 1 entry: its master key sealed again with
 * MASTER_KEY_AAD_V2 (a fresh nonce) and tags for a store of version STORE_FORMAT_VERSION.
 */
export function authenticateSpace(entry: SpaceConfig, space: string, unlocked: UnlockedSpace, backend: BackendName): SpaceConfig {
  // A layout 1 entry has no slots: only its first passphrase opens it, so the kek is there.
  if (unlocked.kek === undefined) throw new FragfsError('INVALID', 'a layout 1 space is authenticated with the key of its passphrase');
  const resealed: SpaceConfig = { ...entry, masterKey: sealKey(unlocked.kek, unlocked.keys.masterKey, MASTER_KEY_AAD_V2) };
  return withMac(resealed, space, unlocked.keys.masterKey, { fragfs: STORE_FORMAT_VERSION, backend });
}

/**
 * Rewrites the layout 1 entry of `space` as layout 2 (authenticateSpace), atomically, and the
 * store's version as 2; other spaces are left as they are. Reads the config again first and does
 * nothing when the entry is no longer the one that was unlocked (another process changed it).
 * Returns whether it wrote. A disk that is full or read-only leaves the entry as it was: it is
 * upgraded by a later read-write open, and it opens as layout 1 meanwhile.
 */
export async function upgradeSpaceConfig(storePath: string, space: string, unlocked: UnlockedSpace, unlockedEntry: SpaceConfig): Promise<boolean> {
  const cfg = await readStoreConfig(storePath);
  const entry = cfg.spaces[space];
  if (entry === undefined || entry.mac !== undefined || entry.masterKey.sealed !== unlockedEntry.masterKey.sealed) return false;
  cfg.spaces[space] = authenticateSpace(entry, space, unlocked, cfg.backend);
  cfg.fragfs = Math.max(cfg.fragfs, STORE_FORMAT_VERSION);
  try {
    await writeStoreConfig(storePath, cfg);
  } catch (e) {
    if (e instanceof FragfsError && (e.code === 'NO_SPACE' || e.code === 'READ_ONLY' || e.code === 'PERMISSION')) return false;
    throw e;
  }
  return true;
}
