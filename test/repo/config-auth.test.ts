// fragfs.json layout 2: each space's entry is authenticated with a key derived from its master key,
// the store's layout version and backend included. A field changed outside fragfs is BAD_STORE naming
// it once the passphrase opened the master key (a wrong passphrase stays BAD_PASSPHRASE); a v2 entry
// rewritten as v1 does not open; v1 stores open read-only unchanged and are upgraded, atomically, by a
// read-write open. Pinned by fixtures/vectors/config/fragfs-json-v2.json.

import test, { type ExecutionContext } from 'ava';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { readFileSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FragfsError, isFragfsError } from '../../src/errors.js';
import {
  AUTHENTICATED_FIELDS,
  CONFIG_MAC_KEY_CONTEXT,
  canonicalFieldText,
  computeConfigMac,
  configMacKey,
} from '../../src/repo/config-mac.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { STORE_CONFIG_FILE, readStoreConfig, unlockSpace, type StoreConfig } from '../../src/repo/store-config.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const vector = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/config/fragfs-json-v2.json', import.meta.url), 'utf8'));
const GOLDEN_V1 = fileURLToPath(new URL('../../../fixtures/stores/v1/', import.meta.url));

test('the vector: MAC key and tags from the canonical texts, by an independent BLAKE3', (t) => {
  t.is(CONFIG_MAC_KEY_CONTEXT, vector.macKeyContext);
  const macKey = nobleBlake3(unhex(vector.masterKey), { context: new TextEncoder().encode(vector.macKeyContext) });
  t.is(hex(macKey), vector.macKey);
  t.is(hex(configMacKey(unhex(vector.masterKey))), vector.macKey);
  t.deepEqual(
    vector.fields.map((f: { field: string }) => f.field),
    [...AUTHENTICATED_FIELDS],
  );
  for (const f of vector.fields as { field: string; text: string; tag: string }[]) {
    t.is(hex(nobleBlake3(new TextEncoder().encode(f.text), { key: macKey }).subarray(0, 16)), f.tag, f.field);
  }
});

test('the vector: today\'s code writes the same texts and tags, and the config unlocks with the passphrase', async (t) => {
  const cfg = JSON.parse(vector.fragfsJson) as StoreConfig;
  const entry = cfg.spaces[vector.space]!;
  const values = { fragfs: cfg.fragfs, backend: cfg.backend, ...entry };
  for (const f of vector.fields as { field: (typeof AUTHENTICATED_FIELDS)[number]; text: string }[]) {
    t.is(canonicalFieldText(vector.space, f.field, values), f.text, f.field);
  }
  t.deepEqual(computeConfigMac(unhex(vector.masterKey), vector.space, values), entry.mac);

  const work = await tempDir('fragfs-config-vector-');
  t.teardown(work.remove);
  await writeFile(join(work.path, STORE_CONFIG_FILE), vector.fragfsJson);
  const read = await readStoreConfig(work.path);
  const unlocked = await unlockSpace(read, vector.space, vector.passphrase, work.path);
  t.is(hex(unlocked.keys.masterKey), vector.masterKey);
  t.is(hex(unlocked.keys.convergenceSecret), vector.convergenceSecret);
  t.true(unlocked.authenticated);
});

async function newStore(t: ExecutionContext, backend: 'dir' | 'lmdb' = 'dir'): Promise<{ storePath: string; work: string; key: string }> {
  const work = await tempDir('fragfs-config-auth-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'a.txt'), 'hello\n');
  const repo = await Repo.init({ storePath, backend, passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, threads: 1 });
  const { key } = await putPaths(repo, [tree], { name: 'first' });
  await repo.close();
  return { storePath, work: work.path, key };
}

async function editConfig(storePath: string, edit: (cfg: Record<string, any>) => void): Promise<void> {
  const file = join(storePath, STORE_CONFIG_FILE);
  const cfg = JSON.parse(await readFile(file, 'utf8'));
  edit(cfg);
  await writeFile(file, `${JSON.stringify(cfg, null, 2)}\n`);
}

test('a new store is layout 2: version 2, every field tagged', async (t) => {
  const { storePath } = await newStore(t);
  const cfg = await readStoreConfig(storePath);
  t.is(cfg.fragfs, 2);
  t.deepEqual(Object.keys(cfg.spaces.default!.mac ?? {}), [...AUTHENTICATED_FIELDS]);
});

const TAMPERS: [string, (cfg: Record<string, any>) => void, RegExp][] = [
  ['backend relabelled', (c) => (c.backend = 'split'), /field backend\b/],
  ['layout version lowered', (c) => (c.fragfs = 1), /field fragfs\b/],
  ['block size changed', (c) => (c.spaces.default.blockSize = 65536), /field blockSize\b/],
  ['creation time changed', (c) => (c.spaces.default.createdMs += 1), /field createdMs\b/],
  ['store id changed', (c) => (c.spaces.default.storeId = 'ab'.repeat(16)), /field storeId\b/],
  ['convergence id changed', (c) => (c.spaces.default.convergenceId = 'cd'.repeat(32)), /field convergenceId\b/],
  ['convergence secret replaced', (c) => (c.spaces.default.convergenceSecret.nonce = '00'.repeat(12)), /field convergenceSecret\b/],
  ['one tag removed', (c) => delete c.spaces.default.mac.blockSize, /field blockSize\b/],
  ['the MAC stripped (rewritten as layout 1)', (c) => ((c.fragfs = 1), delete c.spaces.default.mac), /field mac\b/],
  ['the MAC stripped, version kept', (c) => delete c.spaces.default.mac, /field mac\b/],
];

for (const [what, edit, field] of TAMPERS) {
  test(`tampering: ${what} is BAD_STORE naming the field, after the passphrase; a wrong one stays BAD_PASSPHRASE`, async (t) => {
    const { storePath } = await newStore(t);
    await editConfig(storePath, edit);
    for (const readOnly of [true, false]) {
      const e = await t.throwsAsync(Repo.open({ storePath, passphrase: TEST_PASSPHRASE, readOnly, threads: 1 }));
      t.true(isFragfsError(e, 'BAD_STORE'), String(e));
      t.regex(e!.message, /^fragfs\.json was changed outside fragfs \(field /);
      t.regex(e!.message, field);
    }
    const wrong = await t.throwsAsync(Repo.open({ storePath, passphrase: 'not the passphrase', threads: 1 }));
    t.true(isFragfsError(wrong, 'BAD_PASSPHRASE'), String(wrong));
  });
}

test('relabelling the backend no longer hides the snapshots and starts a second store beside them', async (t) => {
  const { storePath } = await newStore(t, 'lmdb');
  const before = (await readdir(storePath)).sort();
  await editConfig(storePath, (c) => (c.backend = 'dir'));
  const e = (await t.throwsAsync(Repo.open({ storePath, passphrase: TEST_PASSPHRASE, threads: 1 }))) as FragfsError;
  t.is(e.code, 'BAD_STORE');
  t.regex(e.message, /field backend/);
  t.deepEqual((await readdir(storePath)).sort(), before, 'no dir tree was started');
});

test('v1 stores: a read-only open changes nothing; a read-write open upgrades fragfs.json to layout 2 atomically', async (t) => {
  const expected = JSON.parse(readFileSync(join(GOLDEN_V1, 'expected.json'), 'utf8'));
  for (const backend of ['dir', 'split'] as const) {
    const work = await tempDir('fragfs-config-v1-');
    t.teardown(work.remove);
    const storePath = join(work.path, 'store');
    await cp(join(GOLDEN_V1, backend), storePath, { recursive: true });
    const file = join(storePath, STORE_CONFIG_FILE);
    const original = await readFile(file, 'utf8');
    t.is(JSON.parse(original).fragfs, 1);

    const ro = await Repo.open({ storePath, passphrase: expected.passphrase, readOnly: true, threads: 1 });
    t.is(await ro.resolveSnapshot(expected.name), expected.backends[backend].metaKey);
    await ro.close();
    t.is(await readFile(file, 'utf8'), original, 'read-only: fragfs.json unchanged');

    const rw = await Repo.open({ storePath, passphrase: expected.passphrase, threads: 1 });
    await rw.close();
    const upgraded = JSON.parse(await readFile(file, 'utf8'));
    t.is(upgraded.fragfs, 2);
    t.deepEqual(Object.keys(upgraded.spaces.default.mac), [...AUTHENTICATED_FIELDS]);
    const before = JSON.parse(original).spaces.default;
    for (const k of ['createdMs', 'blockSize', 'kdf', 'convergenceSecret', 'storeId', 'convergenceId']) {
      t.deepEqual(upgraded.spaces.default[k], before[k], `${k} kept`);
    }
    t.not(upgraded.spaces.default.masterKey.sealed, before.masterKey.sealed, 'the master key is sealed again (v2)');
    t.deepEqual(await readdir(storePath).then((n) => n.filter((x) => x.startsWith('fragfs.json'))), ['fragfs.json'], 'no temp file left');

    // Upgraded: it opens both ways, holds the same snapshot, and tampering is now found.
    for (const readOnly of [true, false]) {
      const again = await Repo.open({ storePath, passphrase: expected.passphrase, readOnly, threads: 1 });
      t.is(await again.resolveSnapshot(expected.name), expected.backends[backend].metaKey);
      await again.close();
    }
    await editConfig(storePath, (c) => (c.backend = backend === 'dir' ? 'split' : 'dir'));
    const e = await t.throwsAsync(Repo.open({ storePath, passphrase: expected.passphrase, readOnly: true, threads: 1 }));
    t.regex(String(e), /field backend/);
  }
});

test('a wrong passphrase on a v1 store is still BAD_PASSPHRASE, and does not upgrade it', async (t) => {
  const work = await tempDir('fragfs-config-v1-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await cp(join(GOLDEN_V1, 'dir'), storePath, { recursive: true });
  const original = await readFile(join(storePath, STORE_CONFIG_FILE), 'utf8');
  const e = await t.throwsAsync(Repo.open({ storePath, passphrase: 'wrong', threads: 1 }));
  t.true(isFragfsError(e, 'BAD_PASSPHRASE'), String(e));
  t.is(await readFile(join(storePath, STORE_CONFIG_FILE), 'utf8'), original);
});
