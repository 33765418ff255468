// Key slots of a space: passphrases changed, added and removed, age recipients and the recovery key
// open it; an identity never added does not; the last way in stays; fragfs.json names nobody and
// holds no secret; a slot changed outside fragfs is found; age reads what fragfs seals; an identity
// from age-keygen opens a space. Only fragfs.json changes: what was stored before reads the same.

import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isFragfsError, type FragfsError } from '../../src/errors.js';
import { newIdentity, readIdentityFile, recipientOf } from '../../src/people/age-box.js';
import { tryIdentities } from '../../src/people/key-slots.js';
import { formatRecoveryKey, newRecoveryKey, parseRecoveryKey } from '../../src/people/recovery-key.js';
import {
  addPassphraseKey,
  addRecipientKey,
  addRecoveryKey,
  changePassphrase,
  listKeys,
  openSpaceKeys,
  removeKey,
} from '../../src/people/space-keys.js';
import { getTree } from '../../src/repo/get.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { syncStore } from '../../src/repo/sync.js';
import { STORE_CONFIG_FILE, readStoreConfig, unlockSpace } from '../../src/repo/store-config.js';
import { hasTool } from '../mount/helpers.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

const run = promisify(execFile);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Fixture {
  work: string;
  storePath: string;
  key: string;
  recoveryKey: string;
}

async function newStore(t: ExecutionContext, o: { recovery?: boolean } = {}): Promise<Fixture> {
  const work = await tempDir('fragfs-key-slots-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'a.txt'), 'the content stays readable\n');
  const recoveryKey = newRecoveryKey();
  const repo = await Repo.init({
    storePath,
    backend: 'dir',
    passphrase: TEST_PASSPHRASE,
    kdfCost: TEST_KDF_COST,
    threads: 1,
    ...(o.recovery === false ? {} : { recoveryKey }),
  });
  const { key } = await putPaths(repo, [tree], { name: 'first' });
  await repo.close();
  return { work: work.path, storePath, key, recoveryKey };
}

async function opens(storePath: string, creds: { passphrase?: string; identities?: string[] }): Promise<string> {
  const repo = await Repo.open({ storePath, ...creds, readOnly: true, threads: 1 });
  try {
    return (await repo.listRefs()).map((r) => r.name).join(',');
  } finally {
    await repo.close();
  }
}

async function refused(t: ExecutionContext, storePath: string, creds: { passphrase?: string; identities?: string[] }, code: 'BAD_PASSPHRASE' | 'BAD_IDENTITY') {
  const e = await t.throwsAsync(Repo.open({ storePath, ...creds, readOnly: true, threads: 1 }));
  t.true(isFragfsError(e, code), String(e));
  t.false(e!.message.includes('\n'));
}

test('passwd: the old passphrase no longer opens, the new one does, and the data reads the same', async (t) => {
  const f = await newStore(t);
  const before = await readFile(join(f.storePath, STORE_CONFIG_FILE), 'utf8');
  const opened = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  await changePassphrase(opened, 'the new passphrase');
  await refused(t, f.storePath, { passphrase: TEST_PASSPHRASE }, 'BAD_PASSPHRASE');
  t.is(await opens(f.storePath, { passphrase: 'the new passphrase' }), 'first');
  const after = JSON.parse(await readFile(join(f.storePath, STORE_CONFIG_FILE), 'utf8'));
  const old = JSON.parse(before);
  t.not(after.spaces.default.masterKey.sealed, old.spaces.default.masterKey.sealed);
  t.is(after.spaces.default.kdf.N, old.spaces.default.kdf.N, 'the same scrypt cost');
  t.deepEqual(after.spaces.default.convergenceSecret, old.spaces.default.convergenceSecret, 'the master key itself is unchanged');
  const repo = await Repo.open({ storePath: f.storePath, passphrase: 'the new passphrase', readOnly: true, threads: 1 });
  t.teardown(() => repo.close());
  const dest = join(f.work, 'restored');
  await getTree(repo, f.key, dest);
  t.is(await readFile(join(dest, 'a.txt'), 'utf8'), 'the content stays readable\n');
});

test('passwd of an added passphrase replaces that one, keeping its id and label; the first stays', async (t) => {
  const f = await newStore(t);
  const first = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  const id = await addPassphraseKey(first, 'second passphrase', 'the office');
  const second = await openSpaceKeys(f.storePath, 'default', { passphrase: 'second passphrase' });
  t.is(second.unlocked.slotId, id);
  t.is(await changePassphrase(second, 'second, changed'), id);
  await refused(t, f.storePath, { passphrase: 'second passphrase' }, 'BAD_PASSPHRASE');
  t.is(await opens(f.storePath, { passphrase: 'second, changed' }), 'first');
  t.is(await opens(f.storePath, { passphrase: TEST_PASSPHRASE }), 'first');
  const listed = await listKeys(second);
  t.deepEqual(listed.find((k) => k.id === id)?.label, 'the office');
});

test('key add, list and remove; the last way in and an unknown id are refused', async (t) => {
  const f = await newStore(t, { recovery: false });
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  const only = await listKeys(o);
  t.is(only.length, 1);
  t.like(only[0], { type: 'passphrase', opened: true });
  const lastErr = await t.throwsAsync(removeKey(o, only[0]!.id));
  t.true(isFragfsError(lastErr, 'USAGE'), String(lastErr));
  t.regex(lastErr!.message, /last way into/);

  const identity = await newIdentity();
  const recipient = await recipientOf(identity);
  const p = await addPassphraseKey(o, 'passphrase two', 'Ada at home');
  const r = await addRecipientKey(o, recipient, { label: 'Grace' });
  const listed = await listKeys(o);
  t.deepEqual(listed.map((k) => [k.id, k.type, k.label ?? null, k.recipient ?? null]), [
    [only[0]!.id, 'passphrase', null, null],
    [p, 'passphrase', 'Ada at home', null],
    [r, 'recipient', 'Grace', recipient],
  ]);
  t.true(listed.every((k) => k.createdMs > 0));

  const unknown = await t.throwsAsync(removeKey(o, 'abcdef12'));
  t.true(isFragfsError(unknown, 'NOT_FOUND'), String(unknown));

  // The first passphrase goes: the second takes its place (id and label kept), nothing re-sealed.
  const cfgBefore = await readStoreConfig(f.storePath);
  const secondSealed = cfgBefore.spaces.default!.slots!.find((s) => s.id === p)!.masterKey!.sealed;
  await removeKey(o, only[0]!.id);
  const cfg = await readStoreConfig(f.storePath);
  t.is(cfg.spaces.default!.masterKey.sealed, secondSealed);
  t.is(cfg.spaces.default!.firstSlot?.id, p);
  await refused(t, f.storePath, { passphrase: TEST_PASSPHRASE }, 'BAD_PASSPHRASE');
  t.is(await opens(f.storePath, { passphrase: 'passphrase two' }), 'first');
  t.is(await opens(f.storePath, { identities: [identity] }), 'first');
  t.deepEqual((await listKeys(o)).map((k) => [k.id, k.label]), [[p, 'Ada at home'], [r, 'Grace']]);

  // The only passphrase stays while a recipient remains; the recipient can go.
  const onlyPass = await t.throwsAsync(removeKey(o, p));
  t.true(isFragfsError(onlyPass, 'USAGE'), String(onlyPass));
  await removeKey(o, r);
  await refused(t, f.storePath, { identities: [identity] }, 'BAD_IDENTITY');
  t.deepEqual((await listKeys(o)).map((k) => k.id), [p]);
});

test('the recovery key opens the space with no KDF, in any case and with spaces; a mistyped one is named', async (t) => {
  const f = await newStore(t);
  t.is(await opens(f.storePath, { passphrase: f.recoveryKey }), 'first');
  t.is(await opens(f.storePath, { passphrase: f.recoveryKey.toLowerCase().replace(/-/g, ' ') }), 'first');
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: f.recoveryKey });
  t.is(o.unlocked.slotType, 'recovery');
  t.is(o.unlocked.kek, undefined);
  // Another recovery key (well formed) does not open it.
  await refused(t, f.storePath, { passphrase: newRecoveryKey() }, 'BAD_PASSPHRASE');
  // One character changed: the check bits catch it (or, 1 time in 16, it is just a wrong key).
  const last = f.recoveryKey.at(-1) === '0' ? '1' : '0';
  const typo = `${f.recoveryKey.slice(0, -1)}${last}`;
  const e = await t.throwsAsync(Repo.open({ storePath: f.storePath, passphrase: typo, readOnly: true, threads: 1 }));
  t.true(isFragfsError(e, 'BAD_PASSPHRASE'), String(e));
  // passwd needs a passphrase to replace.
  const pw = await t.throwsAsync(changePassphrase(o, 'whatever'));
  t.true(isFragfsError(pw, 'USAGE'), String(pw));
  // A new recovery key from key add opens it too, and the old one still does until removed.
  const added = await addRecoveryKey(o);
  t.is(await opens(f.storePath, { passphrase: added.recoveryKey }), 'first');
  const oldId = (await listKeys(o)).find((k) => k.type === 'recovery' && k.id !== added.id)!.id;
  await removeKey(o, oldId);
  await refused(t, f.storePath, { passphrase: f.recoveryKey }, 'BAD_PASSPHRASE');
});

test('recovery key form: 13 groups of 4, round trip, Crockford aliases, check bits', (t) => {
  const key = new Uint8Array(32).map((_, i) => i * 7 + 3);
  const text = formatRecoveryKey(key);
  t.regex(text, /^[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){12}$/);
  t.is(hex(parseRecoveryKey(text)!), hex(key));
  t.is(hex(parseRecoveryKey(text.toLowerCase().replace(/0/g, 'o').replace(/1/g, 'l'))!), hex(key));
  let caught = 0;
  for (const c of '0123456789ABCDEFGHJKMNPQRSTVWXYZ') {
    const typo = `${c}${text.slice(1)}`;
    if (typo !== text && parseRecoveryKey(typo) === undefined) caught++;
  }
  t.true(caught >= 20, `the check bits caught ${caught} of 31 typos in the first character`);
  t.is(parseRecoveryKey('not a recovery key'), undefined);
});

test('an identity added opens the space; one never added cannot, and nothing is decrypted', async (t) => {
  const f = await newStore(t);
  const alice = await newIdentity();
  const mallory = await newIdentity();
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  await addRecipientKey(o, await recipientOf(alice));
  t.is(await opens(f.storePath, { identities: [alice] }), 'first');
  t.is(await opens(f.storePath, { identities: [mallory, alice] }), 'first');
  const e = await t.throwsAsync(Repo.open({ storePath: f.storePath, identities: [mallory], threads: 1 }));
  t.true(isFragfsError(e, 'BAD_IDENTITY'), String(e));
  t.is((e as FragfsError).exitCode, 4);
  t.regex(e!.message, /^no key of the store at .* is sealed to the given identity$/);
  const cfg = await readStoreConfig(f.storePath);
  t.deepEqual(await tryIdentities(cfg.spaces.default!.slots!, [mallory]), []);
  // An identity-opened space can change keys too (read-write), but passwd has no passphrase to replace.
  const byId = await openSpaceKeys(f.storePath, 'default', { identities: [alice] });
  t.is(byId.unlocked.slotType, 'recipient');
  const pw = await t.throwsAsync(changePassphrase(byId, 'x'));
  t.true(isFragfsError(pw, 'USAGE'), String(pw));
});

test('a slot group is kept as given and covered by the tags; tryIdentities narrows to the slots asked for', async (t) => {
  const f = await newStore(t);
  const member = await newIdentity();
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  const id = await addRecipientKey(o, await recipientOf(member), { group: 'research.acme#1' });
  const cfg = await readStoreConfig(f.storePath);
  const slots = cfg.spaces.default!.slots!;
  t.is(slots.find((s) => s.id === id)!.group, 'research.acme#1');
  t.is((await tryIdentities(slots, [member], (s) => s.group === 'research.acme#1')).length, 1);
  t.is((await tryIdentities(slots, [member], (s) => s.group === undefined)).length, 0);
  t.is(await opens(f.storePath, { identities: [member] }), 'first');
  // Regrouping a slot outside fragfs is found.
  const file = join(f.storePath, STORE_CONFIG_FILE);
  const raw = JSON.parse(await readFile(file, 'utf8'));
  raw.spaces.default.slots.find((s: { id: string }) => s.id === id).group = 'acme';
  await writeFile(file, JSON.stringify(raw, null, 2));
  const e = await t.throwsAsync(Repo.open({ storePath: f.storePath, identities: [member], threads: 1 }));
  t.true(isFragfsError(e, 'BAD_STORE'), String(e));
  t.regex(e!.message, /field slots\b/);
});

const TAMPERS: [string, (space: Record<string, any>) => void][] = [
  ['a slot removed', (s) => s.slots.pop()],
  ['a label swapped between slots', (s) => ([s.slots[0].info, s.slots[1].info] = [s.slots[1].info, s.slots[0].info])],
  ['a slot id changed', (s) => (s.slots[1].id = '0badc0de')],
  ['the slots tag removed', (s) => delete s.mac.slots],
  ['the first slot relabelled as another', (s) => (s.firstSlot = { id: 'feedf00d', createdMs: 1 })],
];

for (const [what, edit] of TAMPERS) {
  test(`slots changed outside fragfs (${what}): BAD_STORE naming the slots, whichever key opens`, async (t) => {
    const f = await newStore(t);
    const alice = await newIdentity();
    const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
    await addRecipientKey(o, await recipientOf(alice), { label: 'alice' });
    await addPassphraseKey(o, 'passphrase two', 'two');
    const file = join(f.storePath, STORE_CONFIG_FILE);
    const raw = JSON.parse(await readFile(file, 'utf8'));
    edit(raw.spaces.default);
    await writeFile(file, JSON.stringify(raw, null, 2));
    for (const creds of [{ passphrase: TEST_PASSPHRASE }, { identities: [alice] }, { passphrase: f.recoveryKey }]) {
      const e = await t.throwsAsync(Repo.open({ storePath: f.storePath, ...creds, readOnly: true, threads: 1 }));
      t.true(isFragfsError(e, 'BAD_STORE'), `${JSON.stringify(Object.keys(creds))}: ${String(e)}`);
      t.regex(e!.message, /fragfs\.json was changed outside fragfs \(field slots/);
    }
  });
}

test('fragfs.json after key changes holds no passphrase, label, recipient, identity, recovery key or master key', async (t) => {
  const f = await newStore(t);
  const alice = await newIdentity();
  const aliceRecipient = await recipientOf(alice);
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  await addPassphraseKey(o, 'Passphrase-Of-Ada-Lovelace', 'Ada Lovelace laptop');
  await addRecipientKey(o, aliceRecipient, { label: 'Alice Liddell' });
  await changePassphrase(o, 'Changed-Passphrase-Of-Babbage');
  const bytes = await readFile(join(f.storePath, STORE_CONFIG_FILE), 'latin1');
  const masterKey = o.unlocked.keys.masterKey;
  const secrets = [
    TEST_PASSPHRASE,
    'Passphrase-Of-Ada-Lovelace',
    'Changed-Passphrase-Of-Babbage',
    'Ada Lovelace',
    'Alice Liddell',
    aliceRecipient,
    aliceRecipient.slice(4, 30),
    alice,
    alice.slice(16, 40),
    f.recoveryKey,
    f.recoveryKey.replace(/-/g, ''),
    f.recoveryKey.slice(0, 14),
    hex(masterKey),
    Buffer.from(masterKey).toString('base64'),
  ];
  for (const s of secrets) {
    t.false(bytes.toLowerCase().includes(s.toLowerCase()), `fragfs.json holds ${JSON.stringify(s.slice(0, 12))}...`);
  }
  t.false(/"label"|"recipient"\s*:|AGE-SECRET/i.test(bytes));
});

test('age interop: an identity from age-keygen opens a space it was added to; age -d opens a recipient slot', async (t) => {
  if (!hasTool('age-keygen') || !hasTool('age')) {
    t.fail('age and age-keygen are needed (Debian package age; scripts/setup.sh installs it)');
    return;
  }
  const f = await newStore(t);
  const idFile = join(f.work, 'age-identity.txt');
  await run('age-keygen', ['-o', idFile]);
  const identities = await readIdentityFile(idFile);
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  const id = await addRecipientKey(o, await recipientOf(identities[0]!));
  t.is(await opens(f.storePath, { identities }), 'first');

  const cfg = await readStoreConfig(f.storePath);
  const slot = cfg.spaces.default!.slots!.find((s) => s.id === id)!;
  const sealed = join(f.work, 'slot.age');
  await writeFile(sealed, slot.age!);
  const out = join(f.work, 'slot.key');
  await run('age', ['-d', '-i', idFile, '-o', out, sealed]);
  const unlocked = await unlockSpace(cfg, 'default', TEST_PASSPHRASE, f.storePath);
  t.is(hex(await readFile(out)), hex(unlocked.keys.masterKey));
});

test('a store without slots (made before them) opens as before and gets slots on its first key change', async (t) => {
  const f = await newStore(t, { recovery: false });
  const cfg = await readStoreConfig(f.storePath);
  t.is(cfg.spaces.default!.slots, undefined);
  t.is(cfg.spaces.default!.firstSlot, undefined);
  t.is(cfg.spaces.default!.mac!.slots, undefined);
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  t.is(o.unlocked.slotId, '00000000');
  await addPassphraseKey(o, 'another');
  const after = await readStoreConfig(f.storePath);
  t.is(typeof after.spaces.default!.mac!.slots, 'string');
  t.is(await opens(f.storePath, { passphrase: 'another' }), 'first');
  t.is(await opens(f.storePath, { passphrase: TEST_PASSPHRASE }), 'first');
});

test('sync into a new store carries the key slots: the copy opens with the same identity and recovery key', async (t) => {
  const f = await newStore(t);
  const alice = await newIdentity();
  const o = await openSpaceKeys(f.storePath, 'default', { passphrase: TEST_PASSPHRASE });
  await addRecipientKey(o, await recipientOf(alice), { label: 'alice' });
  const src = await Repo.open({ storePath: f.storePath, identities: [alice], threads: 1 });
  const copy = join(f.work, 'copy');
  try {
    await syncStore(src, copy, 'first', { backend: 'lmdb' });
  } finally {
    await src.close();
  }
  t.is(await opens(copy, { identities: [alice] }), 'first');
  t.is(await opens(copy, { passphrase: f.recoveryKey }), 'first');
  const copied = await openSpaceKeys(copy, 'default', { identities: [alice] });
  t.deepEqual((await listKeys(copied)).map((k) => k.label ?? k.type), ['passphrase', 'recovery', 'alice']);
});

test('a layout 1 store (the golden one) is made layout 2 by its first key change, and opens with the new key', async (t) => {
  const golden = new URL('../../../fixtures/stores/v1/', import.meta.url);
  const expected = JSON.parse(await readFile(new URL('expected.json', golden), 'utf8')) as { passphrase: string };
  const work = await tempDir('fragfs-key-slots-v1-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await cp(new URL('dir', golden), storePath, { recursive: true });
  t.is((await readStoreConfig(storePath)).spaces.default!.mac, undefined);
  const alice = await newIdentity();
  const o = await openSpaceKeys(storePath, 'default', { passphrase: expected.passphrase });
  await addRecipientKey(o, await recipientOf(alice));
  const cfg = await readStoreConfig(storePath);
  t.is(cfg.fragfs, 2);
  t.is(typeof cfg.spaces.default!.mac?.slots, 'string');
  const byPassphrase = await opens(storePath, { passphrase: expected.passphrase });
  t.not(byPassphrase, '');
  t.is(await opens(storePath, { identities: [alice] }), byPassphrase);
});
