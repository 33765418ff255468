// STORE/fragfs.json: the store's format version, backend and, per space, the KDF parameters and the
// sealed keys. Reading checks everything (a damaged or newer config is BAD_STORE, never a crash);
// writing is atomic (temp file, fsync, rename, fsync of the folder).

import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FragfsError, fromFsError } from '../errors.js';
import { PRIVATE_FILE_MODE, mkdirPrivate } from '../store/private-modes.js';
import { BACKEND_NAMES, isValidSpaceName, type BackendName } from '../store/store.js';
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, checkBlockSize } from '../codec/block-size.js';
import { derivePassphraseKey, kdfParamsProblem, newKdfParams, passphraseBytes, type KdfParams } from './passphrase-kdf.js';
import {
  CONVERGENCE_SECRET_AAD,
  MASTER_KEY_AAD,
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
/** Version of fragfs.json and of the store layout it describes; readers MUST reject a higher one. */
export const STORE_FORMAT_VERSION = 1;

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
  return undefined;
}

/** Why `value` is not a valid StoreConfig, or undefined. A newer format is reported separately by the reader. */
export function storeConfigProblem(value: unknown): string | undefined {
  const c = value as Partial<StoreConfig> | null;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return 'not a JSON object';
  if (!Number.isInteger(c.fragfs) || (c.fragfs as number) < 1) return '"fragfs" (format version) is missing or not a number';
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
  const file = storeConfigPath(storePath);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
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
  /** log2 of scrypt's N; only code sets it (tests use ~10), users get DEFAULT_KDF_COST. */
  kdfCost?: number;
  /** Another space's convergence secret, to dedup with it; a fresh random one otherwise. */
  convergenceSecret?: Uint8Array;
}

/** A new space: fresh keys sealed under `passphrase`. The caller adds it to the config and writes it. */
export async function createSpaceConfig(o: CreateSpaceOptions): Promise<{ space: SpaceConfig; keys: SpaceKeys }> {
  passphraseBytes(o.passphrase); // INVALID on an empty passphrase, before the slow KDF
  checkBlockSize(o.blockSize);
  const keys = newSpaceKeys(o.convergenceSecret);
  const kdf = newKdfParams(o.kdfCost);
  const kek = await derivePassphraseKey(o.passphrase, kdf);
  const space: SpaceConfig = {
    createdMs: Date.now(),
    blockSize: o.blockSize,
    kdf,
    masterKey: sealKey(kek, keys.masterKey, MASTER_KEY_AAD),
    convergenceSecret: sealKey(convergenceWrapKey(keys.masterKey), keys.convergenceSecret, CONVERGENCE_SECRET_AAD),
    storeId: randomBytes(16).toString('hex'),
    convergenceId: convergenceIdOf(keys.convergenceSecret),
  };
  return { space, keys };
}

/**
 * The keys of a space. BAD_PASSPHRASE when `passphrase` does not open the master key; BAD_STORE when
 * the config is damaged (including a convergence secret that does not match its id).
 */
export async function unlockSpace(
  cfg: SpaceConfig,
  passphrase: string,
  where: { storePath: string; space: string },
): Promise<SpaceKeys> {
  const problem = spaceConfigProblem(cfg);
  if (problem !== undefined) {
    throw new FragfsError('BAD_STORE', `the configuration of space ${where.space} in ${where.storePath} is damaged: ${problem}`, {
      path: where.storePath,
    });
  }
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new FragfsError('BAD_PASSPHRASE', `an empty passphrase does not open the store at ${where.storePath} (space ${where.space})`, {
      path: where.storePath,
    });
  }
  const kek = await derivePassphraseKey(passphrase, cfg.kdf);
  const masterKey = unsealKey(kek, cfg.masterKey, MASTER_KEY_AAD);
  if (masterKey === undefined) {
    throw new FragfsError('BAD_PASSPHRASE', `wrong passphrase for the store at ${where.storePath} (space ${where.space})`, {
      path: where.storePath,
    });
  }
  const convergenceSecret = unsealKey(convergenceWrapKey(masterKey), cfg.convergenceSecret, CONVERGENCE_SECRET_AAD);
  if (convergenceSecret === undefined || convergenceIdOf(convergenceSecret) !== cfg.convergenceId) {
    throw new FragfsError(
      'BAD_STORE',
      `the convergence secret of space ${where.space} in ${where.storePath} is damaged (the passphrase was right)`,
      { path: where.storePath },
    );
  }
  return deriveSpaceKeys(masterKey, convergenceSecret);
}
