// Keys and a running mount: passwd and key remove while a read-write mount is up leave it serving
// (it holds the master key, which did not change), and a new open needs the new key; a mount opens
// with an identity (handed to the background process over its IPC pipe) and refuses one never added.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { Repo } from '../../src/repo/repo.js';
import { testIf } from '../helpers/capabilities.js';
import { TEST_KDF_COST } from '../helpers/stores.js';
import { ensurePatchedAddon, fragfs, fuseAvailable, makeEnv, mount, PASSPHRASE, sh, type Env } from './helpers.js';

const maybe = testIf(fuseAvailable(), 'the key mount tests need /dev/fuse');
if (fuseAvailable()) maybe.before(ensurePatchedAddon);

/** A store at the low test KDF cost (the CLI's init would run the default scrypt). */
async function lowCostStore(e: Env): Promise<string> {
  const storePath = join(e.root, 'store');
  const repo = await Repo.init({ storePath, backend: 'dir', passphrase: PASSPHRASE, kdfCost: TEST_KDF_COST, threads: 1 });
  await repo.close();
  return storePath;
}

async function newIdentityFile(t: ExecutionContext, e: Env, name: string): Promise<{ file: string; recipient: string }> {
  const file = join(e.root, name);
  const r = await fragfs(e, ['id', 'new', file]);
  t.is(r.code, 0, r.stderr);
  return { file, recipient: r.stdout.trim() };
}

maybe('passwd and key remove while a mount runs: the mount goes on, a new open needs the new key', async (t: ExecutionContext) => {
  const e = await makeEnv(t);
  const store = await lowCostStore(e);
  const bob = await newIdentityFile(t, e, 'bob.id');
  const add = await fragfs(e, ['key', 'add', store, '--recipient', bob.recipient, '--label', 'Bob Example']);
  t.is(add.code, 0, add.stderr);
  const bobKey = add.stdout.trim();
  t.is((await fragfs(e, ['snapshots', store, '--identity', bob.file])).code, 0, 'bob opens before');

  const m = await mount(t, e, store, 'mnt');
  await writeFile(join(m.mountpoint, 'before.txt'), 'written before the key change\n');

  const passwd = await fragfs(e, ['passwd', store], { env: { FRAGFS_NEW_PASSPHRASE: 'the passphrase after' } });
  t.is(passwd.code, 0, passwd.stderr);
  const rm = await fragfs(e, ['key', 'remove', store, bobKey], { env: { FRAGFS_PASSPHRASE: 'the passphrase after' } });
  t.is(rm.code, 0, rm.stderr);

  // The mount goes on: it reads, writes and takes a snapshot (through its control socket).
  t.is(await readFile(join(m.mountpoint, 'before.txt'), 'utf8'), 'written before the key change\n');
  await sh(t, `cd ${m.mountpoint} && echo written after > after.txt && mkdir d && cp after.txt d/`);
  const snap = await fragfs(e, ['snapshot', store, '--name', 'after-passwd', '--json'], { env: { FRAGFS_PASSPHRASE: 'the passphrase after' } });
  t.is(snap.code, 0, snap.stderr);
  t.is(JSON.parse(snap.stdout).via, 'mount');

  // A new open needs the new key: the old passphrase and the removed identity are refused.
  const old = await fragfs(e, ['snapshots', store]);
  t.is(old.code, 4, old.stderr);
  t.regex(old.stderr.trim(), /^fragfs: wrong passphrase for the store at [^\n]+$/);
  const removed = await fragfs(e, ['snapshots', store, '--identity', bob.file]);
  t.is(removed.code, 4, removed.stderr);
  t.regex(removed.stderr.trim(), /^fragfs: no key of the store at [^\n]+ is sealed to the given identity$/);
  const fresh = await fragfs(e, ['snapshots', store, '--json'], { env: { FRAGFS_PASSPHRASE: 'the passphrase after' } });
  t.is(fresh.code, 0, fresh.stderr);
  t.true(fresh.stdout.includes('after-passwd'));

  t.is((await m.umount()).code, 0);
  const get = await fragfs(e, ['get', store, 'after-passwd', join(e.root, 'out')], { env: { FRAGFS_PASSPHRASE: 'the passphrase after' } });
  t.is(get.code, 0, get.stderr);
  t.is(await readFile(join(e.root, 'out', 'd', 'after.txt'), 'utf8'), 'written after\n');

  const config = await readFile(join(store, 'fragfs.json'), 'latin1');
  for (const secret of [PASSPHRASE, 'the passphrase after', 'Bob Example', bob.recipient, (await readFile(bob.file, 'utf8')).split('\n')[2]!]) {
    t.false(config.includes(secret), `fragfs.json holds ${secret.slice(0, 10)}...`);
  }
});

maybe('a mount opens with an identity and no passphrase; an identity never added is refused in one line, exit 4', async (t: ExecutionContext) => {
  const e = await makeEnv(t);
  const store = await lowCostStore(e);
  const alice = await newIdentityFile(t, e, 'alice.id');
  const mallory = await newIdentityFile(t, e, 'mallory.id');
  t.is((await fragfs(e, ['key', 'add', store, '--recipient', alice.recipient])).code, 0);
  const noPass = { ...e, env: { ...e.env, FRAGFS_PASSPHRASE: '' } };

  await mkdir(join(e.root, 'nope'));
  const refused = await fragfs(noPass, ['mount', store, join(e.root, 'nope'), '--background', '--identity', mallory.file]);
  t.is(refused.code, 4, refused.stderr);
  t.is(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  t.regex(refused.stderr, /is sealed to the given identity/);

  const m = await mount(t, noPass, store, 'mnt', ['--identity', alice.file]);
  await writeFile(join(m.mountpoint, 'by-alice.txt'), 'alice was here\n');
  t.is(await readFile(join(m.mountpoint, 'by-alice.txt'), 'utf8'), 'alice was here\n');
  t.is((await m.umount()).code, 0);
  const snap = await fragfs(noPass, ['snapshot', store, '--identity', alice.file]);
  t.is(snap.code, 0, snap.stderr);
});
