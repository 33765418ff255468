// fragfs mounts the way other FUSE file systems do, on real mounts: an fstab line of type
// fuse.fragfs mounted by `mount -a -T FILE` and `mount -t fuse.fragfs` through the mount.fragfs
// helper (as /sbin/mount.fuse.fragfs), `-o` options on `fragfs mount`, read-only mounts flagged ro
// in /proc/mounts, `fragfs umount --lazy` of a busy mount that still serves the open file, and
// `fragfs umount` clearing a mount whose process was killed (ENOTCONN).

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePatchedAddon, fragfs, fuseAvailable, hasTool, initStore, isMounted, makeEnv, mount, PASSPHRASE, pidAlive, run, waitFor, type Env } from './helpers.js';

const enabled = fuseAvailable();
const maybe = enabled ? test.serial : test.serial.skip;
if (enabled) test.before(ensurePatchedAddon);

const HELPER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'mount-helper.js');
/** Where mount(8) looks for the helper of type fuse.fragfs. */
const SBIN_HELPER = '/sbin/mount.fuse.fragfs';
/** Nothing there, or only a link left by an earlier run of this test (its temp folder gone). */
const sbinFree = !existsSync(SBIN_HELPER) && (!isSymlink(SBIN_HELPER) || readlinkSync(SBIN_HELPER).includes('fragfs-mount-'));
const fstabMissing = !hasTool('mount') ? 'no mount(8) here: the fstab test needs it' : !sbinFree ? `${SBIN_HELPER} is installed and is not this test's: the fstab test does not replace it` : undefined;
if (enabled && fstabMissing) console.warn(`!!! SKIPPED here: ${fstabMissing}`);
const maybeFstab = enabled && !fstabMissing ? test.serial : test.serial.skip;

function procMountLine(mp: string, mounts: string): string | undefined {
  return mounts.split('\n').find((l) => l.split(' ')[1] === mp);
}

async function storeWithSnapshot(t: ExecutionContext, e: Env): Promise<{ store: string; passFile: string }> {
  const store = await initStore(t, e);
  const tree = join(e.root, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'hello.txt'), 'hello from fstab\n');
  const put = await fragfs(e, ['put', store, tree, '--name', 'first', '--no-progress']);
  t.is(put.code, 0, put.stderr);
  const passFile = join(e.root, 'passphrase');
  await writeFile(join(e.root, 'passphrase'), `${PASSPHRASE}\n`, { mode: 0o600 });
  return { store, passFile };
}

/** Installs the helper as mount(8) finds it, for this test (the slot is free: `sbinFree`). */
async function installHelper(t: ExecutionContext, e: Env): Promise<void> {
  // One left by an earlier run of this test (its temp folder is gone) is replaced.
  if (isSymlink(SBIN_HELPER)) await unlink(SBIN_HELPER);
  // mount(8) runs helpers with a clean PATH: node and the helper by full path.
  const wrapper = join(e.root, 'mount.fuse.fragfs');
  await writeFile(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${HELPER}' "$@"\n`);
  await chmod(wrapper, 0o755);
  await symlink(wrapper, SBIN_HELPER);
  t.teardown(() => unlink(SBIN_HELPER).catch(() => undefined));
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

maybeFstab('an fstab line of type fuse.fragfs mounts with mount -a -T, and mount -t fuse.fragfs works', async (t) => {
  const e = await makeEnv(t);
  const { store, passFile } = await storeWithSnapshot(t, e);
  await installHelper(t, e);
  const mp = join(e.root, 'fstab-mp');
  await mkdir(mp);
  const fstab = join(e.root, 'fstab');
  await writeFile(fstab, `# a test fstab\n${store}  ${mp}  fuse.fragfs  ro,allow_other,passphrase_file=${passFile},snapshot=first,_netdev,nofail,x-systemd.automount  0  0\n`);
  // No passphrase in the environment: it comes from passphrase_file=.
  const env = { ...e.env, FRAGFS_PASSPHRASE: undefined } as NodeJS.ProcessEnv;
  delete env['FRAGFS_PASSPHRASE'];
  t.teardown(async () => {
    if (await isMounted(mp)) await fragfs(e, ['umount', mp]);
  });
  const r = await run('mount', ['-a', '-T', fstab], { env });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '', 'a mount helper says nothing on success');
  t.true(await isMounted(mp));
  const line = procMountLine(mp, await readFile('/proc/self/mounts', 'utf8'));
  t.regex(line ?? '', new RegExp(`^fragfs:${store} ${mp} fuse\\.fragfs ro,.*allow_other`));
  t.is(await readFile(join(mp, 'hello.txt'), 'utf8'), 'hello from fstab\n');
  const u = await fragfs(e, ['umount', mp]);
  t.is(u.code, 0, u.stderr);
  t.false(await isMounted(mp));

  const direct = await run('mount', ['-t', 'fuse.fragfs', store, mp, '-o', `ro,passphrase_file=${passFile},snapshot=first`], { env });
  t.is(direct.code, 0, direct.stderr);
  t.is(await readFile(join(mp, 'hello.txt'), 'utf8'), 'hello from fstab\n');
  // umount(8) works too: the mount process sees its mount gone and ends.
  const sys = await run('umount', [mp]);
  t.is(sys.code, 0, sys.stderr);
  t.false(await isMounted(mp));

  const bad = await run('mount', ['-t', 'fuse.fragfs', store, mp, '-o', `passphrase_file=${passFile},no_such_option`], { env });
  t.not(bad.code, 0);
  t.regex(bad.stderr, /-o no_such_option: not a fragfs mount option/);
  t.false(await isMounted(mp));
});

maybe('fragfs mount takes -o options; read-only mounts are ro in /proc/mounts', async (t) => {
  const e = await makeEnv(t);
  const { store, passFile } = await storeWithSnapshot(t, e);
  const rw = await mount(t, e, store, 'rw');
  t.regex(procMountLine(rw.mountpoint, await readFile('/proc/self/mounts', 'utf8')) ?? '', / fuse\.fragfs rw,/);
  await writeFile(join(rw.mountpoint, 'live.txt'), 'live\n');
  t.is((await rw.umount()).code, 0);
  // The passphrase from passphrase_file= alone.
  const noPassphrase: Env = { ...e, env: { ...e.env } };
  delete noPassphrase.env['FRAGFS_PASSPHRASE'];
  const m = await mount(t, noPassphrase, store, 'opts', ['-o', `ro,passphrase_file=${passFile}`]);
  t.is(await readFile(join(m.mountpoint, 'live.txt'), 'utf8'), 'live\n');
  t.regex(procMountLine(m.mountpoint, await readFile('/proc/self/mounts', 'utf8')) ?? '', / fuse\.fragfs ro,/);
  const write = await run('sh', ['-c', `echo x > '${join(m.mountpoint, 'x')}'`]);
  t.regex(write.stderr, /Read-only file system/);
  t.is((await m.umount()).code, 0);
  const snap = await mount(t, e, store, 'snap', ['--snapshot', 'first']);
  t.regex(procMountLine(snap.mountpoint, await readFile('/proc/self/mounts', 'utf8')) ?? '', / fuse\.fragfs ro,/);
  t.is(await readFile(join(snap.mountpoint, 'hello.txt'), 'utf8'), 'hello from fstab\n');
  await mkdir(join(e.root, 'bad'));
  const bad = await fragfs(e, ['mount', store, join(e.root, 'bad'), '-o', 'ro,bogus=1']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^fragfs: -o bogus=1: not a fragfs mount option/);
});

maybe('umount --lazy detaches a busy mount, which serves the open file until it closes', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'lazy');
  const file = join(m.mountpoint, 'held.txt');
  // Holds the file open across the unmount and writes to it after the mount point is detached.
  const holder = spawn('python3', ['-c', `import sys\nf = open(${JSON.stringify(file)}, 'w')\nf.write('before\\n'); f.flush()\nprint('ready', flush=True)\nsys.stdin.readline()\nf.write('after\\n'); f.close()\nprint('closed', flush=True)\n`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (holder.exitCode === null) holder.kill('SIGKILL');
  });
  let out = '';
  holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('ready'), 10_000, 'the file to be open');
  const busy = await fragfs(e, ['umount', m.mountpoint]);
  t.is(busy.code, 9, busy.stderr);
  const lazy = await fragfs(e, ['umount', '--lazy', m.mountpoint]);
  t.is(lazy.code, 0, lazy.stderr);
  t.regex(lazy.stderr, /detached/);
  t.false(await isMounted(m.mountpoint));
  t.true(pidAlive(m.pid), 'the mount process serves the open file');
  holder.stdin.write('go\n');
  await waitFor(() => out.includes('closed'), 10_000, 'the holder to close its file');
  await waitFor(() => !pidAlive(m.pid), 20_000, 'the mount process to end after the last close');
  const back = await mount(t, e, store, 'again');
  t.is(await readFile(join(back.mountpoint, 'held.txt'), 'utf8'), 'before\nafter\n', 'written after the detach, kept');
});

maybe('umount clears a mount whose process was killed (ENOTCONN)', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'killed');
  process.kill(m.pid, 'SIGKILL');
  // No wait: the kernel may not have torn the process down yet when umount runs.
  const u = await fragfs(e, ['umount', m.mountpoint]);
  t.is(u.code, 0, u.stderr);
  t.regex(u.stderr, /cleared the mount/);
  t.false(await isMounted(m.mountpoint));
  t.is((await run('ls', [m.mountpoint])).code, 0, 'the folder is a plain folder again');
});

/** `df -B1` of a path: size, used and available bytes. */
async function df(path: string): Promise<{ size: number; used: number; avail: number }> {
  const r = await run('df', ['-B1', '--output=size,used,avail', path]);
  const [size, used, avail] = r.stdout.trim().split('\n')[1]!.trim().split(/\s+/).map(Number);
  return { size: size!, used: used!, avail: avail! };
}

maybe('df shows the store: what it takes and the room beside it; a snapshot mount shows the snapshot', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'df');
  await run('sh', ['-c', `head -c 3145728 /dev/urandom > '${join(m.mountpoint, 'random.bin')}' && sync '${join(m.mountpoint, 'random.bin')}'`]);
  const key = await fragfs(e, ['snapshot', store, '--name', 'now']);
  t.is(key.code, 0, key.stderr);
  const onMount = await df(m.mountpoint);
  const host = await df(store);
  const du = Number((await run('du', ['-B1', '-s', store])).stdout.split(/\s/)[0]);
  // Used is the store folder as du counts it (3 MiB of data that does not compress, the live state).
  t.true(onMount.used >= 3 * 2 ** 20 && Math.abs(onMount.used - du) < 2 ** 20, `used ${onMount.used}, du ${du}`);
  t.true(Math.abs(onMount.avail - host.avail) < 64 * 2 ** 20, `avail ${onMount.avail}, host ${host.avail}`);
  t.true(onMount.size < host.size || host.used <= du, `size ${onMount.size} is the store and its room, not the host disk (${host.size})`);
  t.is(onMount.size, onMount.used + onMount.avail);
  t.is((await m.umount()).code, 0);

  const snap = await mount(t, e, store, 'df-snap', ['--snapshot', 'now']);
  t.deepEqual(await df(snap.mountpoint), { size: 3 * 2 ** 20, used: 3 * 2 ** 20, avail: 0 });
});
