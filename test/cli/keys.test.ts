// The key commands as a user runs them: passwd, key list/add/remove, id new/show, --identity and
// FRAGFS_IDENTITY on any command, init's recovery key; refusals are one line with their exit code.

import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FAST_KDF, oneLineError, runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { hasTool } from '../mount/helpers.js';

async function store(t: import('ava').ExecutionContext): Promise<{ work: string; storePath: string }> {
  const work = await tempDir('fragfs-cli-keys-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await createStore(storePath, 'dir');
  return { work: work.path, storePath };
}

test('passwd: the old passphrase then fails with exit 4 on one line, the new one opens', async (t) => {
  const { storePath } = await store(t);
  const r = await runCli(['passwd', storePath], { env: { FRAGFS_NEW_PASSPHRASE: 'brand new passphrase' } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /changed the passphrase 00000000/);
  oneLineError(t, await runCli(['snapshots', storePath]), 4, /wrong passphrase/);
  const ok = await runCli(['snapshots', storePath], { env: { FRAGFS_PASSPHRASE: 'brand new passphrase' } });
  t.is(ok.code, 0, ok.stderr);
  // A wrong current passphrase changes nothing.
  const before = await readFile(join(storePath, 'fragfs.json'), 'utf8');
  oneLineError(t, await runCli(['passwd', storePath], { env: { FRAGFS_NEW_PASSPHRASE: 'x' } }), 4, /wrong passphrase/);
  t.is(await readFile(join(storePath, 'fragfs.json'), 'utf8'), before);
  // No new passphrase and no terminal: a clear line, nothing changed.
  oneLineError(t, await runCli(['passwd', storePath], { env: { FRAGFS_PASSPHRASE: 'brand new passphrase', FRAGFS_NEW_PASSPHRASE: undefined } }), 4, /no new passphrase/);
  t.is(await readFile(join(storePath, 'fragfs.json'), 'utf8'), before);
});

test('key add, list (text and --json), remove; the last key and an unknown id are refused', async (t) => {
  const { storePath } = await store(t);
  const add = await runCli(['key', 'add', storePath, '--label', 'Ada at home'], { env: { FRAGFS_NEW_PASSPHRASE: 'second one' } });
  t.is(add.code, 0, add.stderr);
  const id = add.stdout.trim();
  t.regex(id, /^[0-9a-f]{8}$/);
  const text = await runCli(['key', 'list', storePath]);
  t.is(text.code, 0, text.stderr);
  const lines = text.stdout.trim().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^\* 00000000 +passphrase +\d{4}-\d\d-\d\dT/);
  t.regex(lines[1]!, new RegExp(`^  ${id} +passphrase +\\S+ +Ada at home$`));
  const json = await runCli(['key', 'list', storePath, '--json'], { env: { FRAGFS_PASSPHRASE: 'second one' } });
  t.is(json.code, 0, json.stderr);
  const keys = JSON.parse(json.stdout) as { id: string; type: string; label?: string; opened: boolean; created: string }[];
  t.deepEqual(keys.map((k) => [k.id, k.type, k.label ?? null, k.opened]), [['00000000', 'passphrase', null, false], [id, 'passphrase', 'Ada at home', true]]);

  oneLineError(t, await runCli(['key', 'remove', storePath, 'abcdef12']), 5, /no key abcdef12/);
  const rm = await runCli(['key', 'remove', storePath, '00000000'], { env: { FRAGFS_PASSPHRASE: 'second one' } });
  t.is(rm.code, 0, rm.stderr);
  oneLineError(t, await runCli(['snapshots', storePath]), 4, /wrong passphrase/);
  oneLineError(t, await runCli(['key', 'remove', storePath, id], { env: { FRAGFS_PASSPHRASE: 'second one' } }), 2, /last way into/);
  t.is((await runCli(['snapshots', storePath], { env: { FRAGFS_PASSPHRASE: 'second one' } })).code, 0);
  oneLineError(t, await runCli(['key', 'add', storePath, '--recipient', 'age1notarecipient'], { env: { FRAGFS_PASSPHRASE: undefined } }), 2, /not an age X25519 recipient/);
  oneLineError(t, await runCli(['key', 'add', storePath, '--label', 'a\tb'], { env: { FRAGFS_PASSPHRASE: undefined } }), 2, /label/);
});

test('id new writes a private identity in age-keygen form and refuses to overwrite; id show prints its recipient', async (t) => {
  const work = await tempDir('fragfs-cli-id-');
  t.teardown(work.remove);
  const xdg = join(work.path, 'config');
  const made = await runCli(['id', 'new'], { env: { XDG_CONFIG_HOME: xdg } });
  t.is(made.code, 0, made.stderr);
  const recipient = made.stdout.trim();
  t.regex(recipient, /^age1[02-9ac-hj-np-z]{58}$/);
  const file = join(xdg, 'fragfs', 'identity');
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.is((await stat(join(xdg, 'fragfs'))).mode & 0o777, 0o700);
  const lines = (await readFile(file, 'utf8')).split('\n');
  t.regex(lines[0]!, /^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.is(lines[1], `# public key: ${recipient}`);
  t.regex(lines[2]!, /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/);
  const shown = await runCli(['id', 'show'], { env: { XDG_CONFIG_HOME: xdg } });
  t.is(shown.stdout, `${recipient}\n`);
  const again = await runCli(['id', 'new', file]);
  oneLineError(t, again, 10, /already exists/);
  t.is((await readFile(file, 'utf8')).split('\n')[1], `# public key: ${recipient}`);
  if (hasTool('age-keygen')) {
    const { stdout } = await promisify(execFile)('age-keygen', ['-y', file]);
    t.is(stdout.trim(), recipient, 'age-keygen reads the file fragfs wrote');
  }
});

test('--identity and FRAGFS_IDENTITY open a store with no passphrase; an identity never added: exit 4, one line', async (t) => {
  const { work, storePath } = await store(t);
  const alice = join(work, 'alice.id');
  const mallory = join(work, 'mallory.id');
  const recipient = (await runCli(['id', 'new', alice])).stdout.trim();
  t.is((await runCli(['id', 'new', mallory])).code, 0);
  const add = await runCli(['key', 'add', storePath, '--recipient', recipient, '--label', 'Alice']);
  t.is(add.code, 0, add.stderr);
  const noPass = { FRAGFS_PASSPHRASE: undefined };
  const flag = await runCli(['snapshots', storePath, '--identity', alice], { env: noPass });
  t.is(flag.code, 0, flag.stderr);
  const env = await runCli(['key', 'list', storePath, '--json'], { env: { ...noPass, FRAGFS_IDENTITY: alice } });
  t.is(env.code, 0, env.stderr);
  t.like(JSON.parse(env.stdout)[1], { type: 'recipient', label: 'Alice', recipient, opened: true });
  // An identity is used even when a passphrase is set too: no passphrase is asked or tried.
  oneLineError(t, await runCli(['snapshots', storePath, '--identity', mallory]), 4, /is sealed to the given identity/);
  oneLineError(t, await runCli(['stats', storePath], { env: { FRAGFS_IDENTITY: mallory } }), 4, /is sealed to the given identity/);
  oneLineError(t, await runCli(['snapshots', storePath, '--identity', join(work, 'none.id')], { env: noPass }), 5, /none\.id/);
  oneLineError(t, await runCli(['passwd', storePath, '--identity', alice], { env: { FRAGFS_NEW_PASSPHRASE: 'x' } }), 2, /not with an identity/);
});

test('init prints a recovery key once (stderr says to keep it) that opens the store; --no-recovery-key makes none', async (t) => {
  const work = await tempDir('fragfs-cli-recovery-');
  t.teardown(work.remove);
  const a = join(work.path, 'a');
  const init = await runCli(['init', a, '--backend', 'dir', '--json', ...FAST_KDF]);
  t.is(init.code, 0, init.stderr);
  t.regex(init.stderr, /keep the recovery key .* safe/);
  const recoveryKey = JSON.parse(init.stdout).recoveryKey as string;
  t.regex(recoveryKey, /^[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){12}$/);
  t.false((await readFile(join(a, 'fragfs.json'), 'utf8')).includes(recoveryKey.slice(0, 9)));
  const list = await runCli(['key', 'list', a, '--json'], { env: { FRAGFS_PASSPHRASE: recoveryKey.toLowerCase() } });
  t.is(list.code, 0, list.stderr);
  t.deepEqual(JSON.parse(list.stdout).map((k: { type: string; opened: boolean }) => [k.type, k.opened]), [['passphrase', false], ['recovery', true]]);

  const b = join(work.path, 'b');
  const plain = await runCli(['init', b, '--backend', 'dir', '--no-recovery-key', ...FAST_KDF]);
  t.is(plain.code, 0, plain.stderr);
  t.notRegex(plain.stdout + plain.stderr, /recovery key/);
  t.is(JSON.parse((await runCli(['key', 'list', b, '--json'])).stdout).length, 1);
});

test('init --kdf-cost sets the scrypt cost, which passphrases added later keep; outside 10..20 it is refused', async (t) => {
  const work = await tempDir('fragfs-cli-kdf-cost-');
  t.teardown(work.remove);
  const kdfN = async (store: string): Promise<number[]> => {
    const space = (JSON.parse(await readFile(join(store, 'fragfs.json'), 'utf8')) as { spaces: { default: { kdf?: { N: number }; slots?: { kdf?: { N: number } }[] } } }).spaces.default;
    return [space.kdf?.N, ...(space.slots ?? []).map((s) => s.kdf?.N)].filter((n): n is number => n !== undefined);
  };
  const cheap = join(work.path, 'cheap');
  t.is((await runCli(['init', cheap, '--backend', 'dir', '--no-recovery-key', '--kdf-cost', '10'])).code, 0);
  t.deepEqual(await kdfN(cheap), [1024]);
  const added = await runCli(['key', 'add', cheap], { env: { FRAGFS_NEW_PASSPHRASE: 'a second passphrase' } });
  t.is(added.code, 0, added.stderr);
  t.deepEqual(await kdfN(cheap), [1024, 1024], 'an added passphrase takes the space cost');
  t.is((await runCli(['snapshots', cheap], { env: { FRAGFS_PASSPHRASE: 'a second passphrase' } })).code, 0);
  const plain = join(work.path, 'plain');
  t.is((await runCli(['init', plain, '--backend', 'dir', '--no-recovery-key'])).code, 0);
  t.deepEqual(await kdfN(plain), [2 ** 17], 'the default');
  for (const bad of ['9', '21', 'ten', '1e1', '']) {
    oneLineError(t, await runCli(['init', join(work.path, `bad-${bad}`), '--kdf-cost', bad]), 2, /--kdf-cost takes a whole number from 10 to 20/);
    t.false(existsSync(join(work.path, `bad-${bad}`)), `nothing made for --kdf-cost ${JSON.stringify(bad)}`);
  }
});
