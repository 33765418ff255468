// Parity and a real FUSE mount: what a read-write mount wrote is in complete stripes once a
// snapshot of it returns (the mount protects after each snapshot) and once it is unmounted (its
// repo protects what it stored as it closes), and verify is clean.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePatchedAddon, fragfs, fuseAvailable, initStore, makeEnv, mount, pidAlive, waitFor, type Env } from '../mount/helpers.js';

const enabled = fuseAvailable();
if (enabled) test.before(ensurePatchedAddon);
const maybe = enabled ? test : test.skip;
if (!enabled) test('parity beside a mount needs /dev/fuse', (t) => t.log('no /dev/fuse: skipped'));

async function complete(t: ExecutionContext, e: Env, store: string, after: string): Promise<void> {
  const p = await fragfs(e, ['parity', store, '--json'], { env: { FRAGFS_PASSPHRASE: '' } });
  t.is(p.code, 0, p.stderr);
  const c = JSON.parse(p.stdout) as { unprotected: number; incomplete: number; members: number };
  t.is(c.unprotected, 0, `after ${after}: ${p.stdout}`);
  t.is(c.incomplete, 0, `after ${after}: ${p.stdout}`);
  t.true(c.members > 8, p.stdout);
}

maybe('what a mount writes is in complete stripes after a snapshot and after it unmounts', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e, 'store', ['--backend', 'dir', '--parity', '4+2']);
  const m = await mount(t, e, store, 'mnt');
  await mkdir(join(m.mountpoint, 'd'));
  for (let i = 0; i < 30; i++) await writeFile(join(m.mountpoint, 'd', `f${i}`), randomBytes(i % 4 === 0 ? 1_500_000 : 3000 + i * 100));
  const snap = await fragfs(e, ['snapshot', store]);
  t.is(snap.code, 0, snap.stderr);
  await complete(t, e, store, 'a snapshot of the mount');
  for (let i = 30; i < 40; i++) await writeFile(join(m.mountpoint, 'd', `f${i}`), randomBytes(i % 4 === 0 ? 1_500_000 : 3000 + i * 100));
  const u = await m.umount();
  t.is(u.code, 0, u.stderr);
  await waitFor(() => !pidAlive(m.pid), 60_000, 'the mount process to end');
  await complete(t, e, store, 'unmount');
  const v = await fragfs(e, ['verify', store]);
  t.is(v.code, 0, v.stdout + v.stderr);
  t.regex(v.stdout, /parity 4\+2: .*every stored object is in a stripe/);
});
