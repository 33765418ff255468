// A full disk under a mounted store (the store on a small tmpfs): the writer gets ENOSPC, never EIO;
// names and reads still work; `fragfs umount` finishes; the full store mounts read-only; and once
// space is freed a new mount writes again and the store verifies.

import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { canMountTmpfs, testIf } from '../helpers/capabilities.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';
import { ensurePatchedAddon, fragfs, fuseAvailable, makeEnv, mount, sh } from './helpers.js';
import { FAST_KDF } from '../helpers/cli.js';

const maybe = testIf(fuseAvailable() && canMountTmpfs, 'the full-disk mount test needs /dev/fuse and root to mount a tmpfs');
if (fuseAvailable()) maybe.before(ensurePatchedAddon);

maybe('full disk under a mount: ENOSPC to the writer, reads go on, umount finishes, read-only mount works, freeing space lets writes go on', async (t) => {
  const e = await makeEnv(t);
  const disk = await mountTmpfs(t, 96);
  const full = join(disk, 'store');
  const init = await fragfs(e, ['init', full, ...FAST_KDF]);
  t.is(init.code, 0, init.stderr);
  const m = await mount(t, e, full, 'mnt');
  await sh(t, `printf 'kept\\n' > ${m.mountpoint}/small && mkdir ${m.mountpoint}/dir && sync`);
  // Leave about 24 MiB: the next big write runs out.
  await fillDisk(disk, 24 * 1024 * 1024);
  const dd = await sh(t, `dd if=/dev/urandom of=${m.mountpoint}/big bs=1M count=80 conv=fsync 2>&1`, { expect: 'any' });
  t.not(dd.code, 0, 'the write cannot succeed');
  t.regex(dd.stdout, /No space left on device/);
  t.notRegex(dd.stdout, /Input\/output error/);
  // Names and reads: what works answers, what does not says ENOSPC, nothing says EIO.
  const after = await sh(t, `cd ${m.mountpoint}; cat small; mkdir d2 2>&1; touch d2/f 2>&1; rm -f big 2>&1; ls`, { expect: 'any' });
  t.regex(after.stdout, /^kept$/m);
  t.notRegex(after.stdout, /Input\/output error/);
  const started = Date.now();
  const u = await m.umount();
  t.is(u.code, 0, u.stderr);
  t.true(Date.now() - started < 60_000, 'umount does not hang');
  // The full store still mounts read-only and reads.
  const ro = await mount(t, e, full, 'ro', ['--read-only']);
  t.is((await sh(t, `cat ${ro.mountpoint}/small`)).stdout, 'kept\n');
  t.is((await ro.umount()).code, 0);
  // Space freed: a new mount writes, fsyncs and the store verifies.
  await rm(join(disk, 'ballast'));
  const again = await mount(t, e, full, 'mnt2');
  await sh(t, `dd if=/dev/urandom of=${again.mountpoint}/after bs=1M count=8 conv=fsync 2>&1`);
  t.is((await again.umount()).code, 0);
  const verify = await fragfs(e, ['verify', full]);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});
