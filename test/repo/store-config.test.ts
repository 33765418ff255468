// STORE/fragfs.json: creating and unlocking spaces, wrong passphrases, round trip on disk, and clear
// errors for a missing, damaged or newer configuration.

import test from 'ava';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFragfsError } from '../../src/errors.js';
import { convergenceIdOf } from '../../src/repo/keys.js';
import { Repo } from '../../src/repo/repo.js';
import {
  STORE_CONFIG_FILE,
  createSpaceConfig,
  readStoreConfig,
  unlockSpace,
  writeStoreConfig,
  type CreateSpaceOptions,
  type SpaceConfig,
  type StoreConfig,
} from '../../src/repo/store-config.js';

const KDF_COST = 10; // N = 1024, the lowest fragfs accepts: keeps the suite fast; users always get the default
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A new authenticated space for an lmdb store (space `default` unless named). */
function create(o: Omit<CreateSpaceOptions, 'backend' | 'space'> & { space?: string }) {
  return createSpaceConfig({ backend: 'lmdb', space: 'default', ...o });
}

/** The keys of `entry` as space `where.space` of a one-space lmdb store at `where.storePath`. */
async function unlock(entry: SpaceConfig, passphrase: string, where: { storePath: string; space: string }) {
  const cfg: StoreConfig = { fragfs: 2, backend: 'lmdb', spaces: { [where.space]: entry } };
  return (await unlockSpace(cfg, where.space, passphrase, where.storePath)).keys;
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fragfs-config-'));
  dirs.push(d);
  return d;
}
test.after.always(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function newStore(passphrase = 'pw one'): Promise<{ storePath: string; cfg: StoreConfig }> {
  const storePath = await tempDir();
  const { space } = await create({ passphrase, blockSize: 1 << 20, kdfCost: KDF_COST });
  const cfg: StoreConfig = { fragfs: 2, backend: 'lmdb', spaces: { default: space } };
  await writeStoreConfig(storePath, cfg);
  return { storePath, cfg };
}

test('a created space unlocks with its passphrase to the same keys', async (t) => {
  const { space, keys } = await create({ passphrase: 'hunter2', blockSize: 65536, kdfCost: KDF_COST });
  t.like(space, { blockSize: 65536, kdf: { name: 'scrypt', N: 1024, r: 8, p: 1 } });
  t.is(space.convergenceId, convergenceIdOf(keys.convergenceSecret));
  t.regex(space.storeId, /^[0-9a-f]{32}$/);
  t.true(Math.abs(space.createdMs - Date.now()) < 60_000);
  const unlocked = await unlock(space, 'hunter2', { storePath: '/s', space: 'default' });
  for (const k of ['masterKey', 'convergenceSecret', 'metaKey', 'metaNonceKey'] as const) {
    t.is(hex(unlocked[k]), hex(keys[k]), k);
  }
  // No key appears in the config in the clear.
  const json = JSON.stringify(space);
  for (const k of Object.values(keys)) t.false(json.includes(hex(k)));
});

test('a wrong passphrase is BAD_PASSPHRASE naming the store and the space', async (t) => {
  const { space } = await create({ passphrase: 'right', blockSize: 65536, kdfCost: KDF_COST });
  for (const wrong of ['wrong', 'Right', 'right ', ' ']) {
    const e = await t.throwsAsync(unlock(space, wrong, { storePath: '/data/vault', space: 'photos' }));
    t.true(isFragfsError(e, 'BAD_PASSPHRASE'), String(e));
    t.is(e!.message, 'wrong passphrase for the store at /data/vault (space photos)');
  }
  const empty = await t.throwsAsync(unlock(space, '', { storePath: '/data/vault', space: 'photos' }));
  t.true(isFragfsError(empty, 'BAD_PASSPHRASE'));
});

test('a damaged KDF salt or sealed master key reads as a wrong passphrase; a damaged convergence secret is BAD_STORE', async (t) => {
  const { space } = await create({ passphrase: 'pw', blockSize: 65536, kdfCost: KDF_COST });
  const where = { storePath: '/s', space: 'default' };
  const flip = (h: string): string => (h[0] === '0' ? '1' : '0') + h.slice(1);
  const badSalt = { ...space, kdf: { ...space.kdf, salt: flip(space.kdf.salt) } };
  t.true(isFragfsError(await t.throwsAsync(unlock(badSalt, 'pw', where)), 'BAD_PASSPHRASE'));
  const badMaster = { ...space, masterKey: { ...space.masterKey, sealed: flip(space.masterKey.sealed) } };
  t.true(isFragfsError(await t.throwsAsync(unlock(badMaster, 'pw', where)), 'BAD_PASSPHRASE'));
  const badConv = { ...space, convergenceSecret: { ...space.convergenceSecret, nonce: flip(space.convergenceSecret.nonce) } };
  t.true(isFragfsError(await t.throwsAsync(unlock(badConv, 'pw', where)), 'BAD_STORE'));
  const badId = { ...space, convergenceId: flip(space.convergenceId) };
  t.true(isFragfsError(await t.throwsAsync(unlock(badId, 'pw', where)), 'BAD_STORE'));
  const badShape = { ...space, kdf: { ...space.kdf, N: 3 } };
  t.true(isFragfsError(await t.throwsAsync(unlock(badShape, 'pw', where)), 'BAD_STORE'));
});

test('a shared convergence secret gives the same convergence id and secret but other metadata keys', async (t) => {
  const a = await create({ passphrase: 'a', blockSize: 65536, kdfCost: KDF_COST });
  const b = await create({ passphrase: 'b', blockSize: 65536, kdfCost: KDF_COST, convergenceSecret: a.keys.convergenceSecret, space: 'b' });
  const c = await create({ passphrase: 'a', blockSize: 65536, kdfCost: KDF_COST });
  t.is(b.space.convergenceId, a.space.convergenceId);
  t.not(c.space.convergenceId, a.space.convergenceId);
  const unlocked = await unlock(b.space, 'b', { storePath: '/s', space: 'b' });
  t.is(hex(unlocked.convergenceSecret), hex(a.keys.convergenceSecret));
  t.not(hex(unlocked.metaKey), hex(a.keys.metaKey));
  t.not(b.space.storeId, a.space.storeId);
});

test('createSpaceConfig checks its inputs', async (t) => {
  t.true(isFragfsError(await t.throwsAsync(create({ passphrase: '', blockSize: 65536, kdfCost: KDF_COST })), 'INVALID'));
  t.true(isFragfsError(await t.throwsAsync(create({ passphrase: 'x', blockSize: 1000, kdfCost: KDF_COST })), 'INVALID'));
  t.true(isFragfsError(await t.throwsAsync(create({ passphrase: 'x', blockSize: 65536, kdfCost: 40 })), 'INVALID'));
  const bad = create({ passphrase: 'x', blockSize: 65536, kdfCost: KDF_COST, convergenceSecret: new Uint8Array(8) });
  t.true(isFragfsError(await t.throwsAsync(bad), 'INVALID'));
});

test('the config round-trips through disk and unlocks after reading', async (t) => {
  const { storePath, cfg } = await newStore('pw one');
  const second = await create({ passphrase: 'pw two', blockSize: 4 << 20, kdfCost: KDF_COST, space: 'work-2' });
  cfg.spaces['work-2'] = second.space;
  await writeStoreConfig(storePath, cfg);
  const read = await readStoreConfig(storePath);
  t.deepEqual(read, cfg);
  const keys = await unlock(read.spaces['work-2']!, 'pw two', { storePath, space: 'work-2' });
  t.is(hex(keys.metaKey), hex(second.keys.metaKey));
  // Atomic write leaves only the config behind; the file is for its owner only.
  t.deepEqual(await readdir(storePath), [STORE_CONFIG_FILE]);
  const text = await readFile(join(storePath, STORE_CONFIG_FILE), 'utf8');
  t.true(text.endsWith('\n'));
  t.is(JSON.parse(text).fragfs, 2);
  t.is((await stat(join(storePath, STORE_CONFIG_FILE))).mode & 0o077, 0);
});

test('writeStoreConfig creates the folder and refuses an invalid config', async (t) => {
  const base = await tempDir();
  const { cfg } = await newStore();
  await writeStoreConfig(join(base, 'nested', 'store'), cfg);
  t.deepEqual(await readStoreConfig(join(base, 'nested', 'store')), cfg);
  const bad = { ...cfg, backend: 'floppy' } as unknown as StoreConfig;
  t.true(isFragfsError(await t.throwsAsync(writeStoreConfig(base, bad)), 'INVALID'));
  const badSpace = { ...cfg, spaces: { 'Bad Name': cfg.spaces.default! } };
  t.true(isFragfsError(await t.throwsAsync(writeStoreConfig(base, badSpace)), 'INVALID'));
});

test('no store: a missing folder, a folder without fragfs.json, a file instead of a folder', async (t) => {
  const base = await tempDir();
  await writeFile(join(base, 'plain-file'), 'x');
  for (const p of [join(base, 'nope'), base, join(base, 'plain-file')]) {
    const e = await t.throwsAsync(readStoreConfig(p));
    t.true(isFragfsError(e, 'NO_STORE'), `${p}: ${String(e)}`);
    t.is(e!.message, `no fragfs store at ${p}`);
  }
});

test('garbage, damaged or newer configs are BAD_STORE', async (t) => {
  const { storePath, cfg } = await newStore();
  const file = join(storePath, STORE_CONFIG_FILE);
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"fragfs": 1, ', /not valid JSON/],
    ['binary garbage', '\u0000\u0001\u0002', /not valid JSON/],
    ['an array', '[]', /damaged/],
    ['no version', JSON.stringify({ ...cfg, fragfs: undefined }), /format version/],
    ['newer format', JSON.stringify({ ...cfg, fragfs: 3 }), /newer fragfs/],
    ['unknown backend', JSON.stringify({ ...cfg, backend: 'tape' }), /backend/],
    ['spaces missing', JSON.stringify({ fragfs: 1, backend: 'dir' }), /spaces/],
    ['space without kdf', JSON.stringify({ ...cfg, spaces: { default: { ...cfg.spaces.default, kdf: undefined } } }), /kdf/],
    ['sealed key too short', JSON.stringify({ ...cfg, spaces: { default: { ...cfg.spaces.default, masterKey: { ...cfg.spaces.default!.masterKey, sealed: 'abcd' } } } }), /masterKey/],
    ['block size out of range', JSON.stringify({ ...cfg, spaces: { default: { ...cfg.spaces.default, blockSize: 12 } } }), /blockSize/],
    ['bad space name', JSON.stringify({ ...cfg, spaces: { '../x': cfg.spaces.default } }), /space name/],
  ];
  for (const [what, text, message] of cases) {
    await writeFile(file, text);
    const e = await t.throwsAsync(readStoreConfig(storePath));
    t.true(isFragfsError(e, 'BAD_STORE'), `${what}: ${String(e)}`);
    t.regex(e!.message, message, what);
  }
});

test('KDF parameters fragfs would never write are BAD_STORE naming the field, before any scrypt runs', async (t) => {
  const { storePath, cfg } = await newStore('pw');
  const file = join(storePath, STORE_CONFIG_FILE);
  const space = cfg.spaces.default!;
  // 2^24 is a 16 GiB scrypt, 2^22 a 4 GiB one: a planted config must not make fragfs try either.
  const cases: [Partial<typeof space.kdf>, RegExp][] = [
    [{ N: 2 ** 24 }, /space default: kdf\.N 16777216 is not a power of two from 2\^10 to 2\^20/],
    [{ N: 2 ** 22 }, /kdf\.N 4194304/],
    [{ N: 2 ** 4 }, /kdf\.N 16 /],
    [{ r: 32 }, /kdf\.r 32 is not 8/],
    [{ p: 16 }, /kdf\.p 16 is not 1/],
    [{ salt: 'ab'.repeat(8) }, /kdf\.salt/],
  ];
  for (const [change, message] of cases) {
    await writeFile(file, JSON.stringify({ ...cfg, spaces: { default: { ...space, kdf: { ...space.kdf, ...change } } } }));
    for (const open of [() => readStoreConfig(storePath), () => Repo.open({ storePath, passphrase: 'pw', threads: 1 })]) {
      // BAD_STORE comes from reading the config, which Repo.open does before it derives any key.
      const e = await t.throwsAsync(open());
      t.true(isFragfsError(e, 'BAD_STORE'), `${JSON.stringify(change)}: ${String(e)}`);
      t.regex(e!.message, message);
    }
  }
});
