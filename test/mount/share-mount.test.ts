// A share link mounted by someone without the passphrase: the shared folder, read-only (flagged so
// to the kernel), its files byte for byte; unmounted cleanly.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { ensurePatchedAddon, fragfs, fuseAvailable, initStore, isMounted, makeEnv, mount, sh } from './helpers.js';
import { testIf } from '../helpers/capabilities.js';

const maybe = testIf(fuseAvailable(), 'the share mount test needs /dev/fuse');
if (fuseAvailable()) maybe.before(ensurePatchedAddon);

maybe('fragfs mount LINK DIR: the shared folder read-only, without the passphrase', async (t: ExecutionContext) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e, 'store', ['--backend', 'dir']);
  await sh(t, `mkdir -p ${e.root}/src/pub/sub ${e.root}/src/priv && echo hi > ${e.root}/src/pub/sub/a.txt && head -c 3000000 /dev/urandom > ${e.root}/src/pub/big.bin && echo no > ${e.root}/src/priv/x`);
  const put = await fragfs(e, ['put', store, join(e.root, 'src')]);
  t.is(put.code, 0, put.stderr);
  const key = put.stdout.trim().split('\n').pop()!;
  const s = await fragfs(e, ['share', store, `${key}/pub`]);
  t.is(s.code, 0, s.stderr);
  const link = s.stdout.trim();
  const m = await mount(t, { ...e, env: { ...e.env, FRAGFS_PASSPHRASE: undefined } }, link, 'mnt');
  t.is(await readFile(join(m.mountpoint, 'sub', 'a.txt'), 'utf8'), 'hi\n');
  // The key travels to the background mount process over its IPC pipe, never in its command line.
  const cmdline = await readFile(`/proc/${m.pid}/cmdline`, 'utf8');
  t.true(cmdline.includes('fragfs:share:'), cmdline);
  t.false(cmdline.includes(link.split(':').pop()!), 'the share key is not in the mount process\'s command line');
  t.deepEqual(await readFile(join(m.mountpoint, 'big.bin')), await readFile(join(e.root, 'src', 'pub', 'big.bin')));
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  t.regex(mounts.split('\n').find((l) => l.includes(m.mountpoint)) ?? '', / ro,/);
  await t.throwsAsync(writeFile(join(m.mountpoint, 'new.txt'), 'x'), { code: 'EROFS' });
  t.is((await m.umount()).code, 0);
  t.false(await isMounted(m.mountpoint));
});
