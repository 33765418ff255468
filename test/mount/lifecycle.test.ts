// Mount lifecycle on real mounts: kill -9 then remount (fsynced data intact, lock recovered, stale
// mount cleared), snapshots taken during writes, the one-writer lock, read-only mounts, a copy of the
// store mounted elsewhere, busy and signal unmounts, and 1 MiB write requests.

import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CLI,
  ensurePatchedAddon,
  fragfs,
  fuseAvailable,
  initStore,
  isMounted,
  makeEnv,
  mount,
  pidAlive,
  readRecord,
  run,
  sh,
  waitFor,
} from './helpers.js';

const enabled = fuseAvailable();
const maybe = enabled ? test : test.skip;
if (enabled) test.before(ensurePatchedAddon);

/** Content of file i: recognisable and checkable without keeping it. */
const WRITER = `
import os, sys, hashlib
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def content(i):
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // 32 + 1))[:size]
for i in range(n):
    p = os.path.join(d, 'f%04d' % i)
    fd = os.open(p + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, content(i))
    os.fsync(fd)
    os.close(fd)
    os.rename(p + '.tmp', p)
    print(i, flush=True)
`;

const CHECKER = `
import os, sys, hashlib
d, size, upto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def content(i):
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // 32 + 1))[:size]
bad = []
names = sorted(n for n in os.listdir(d) if not n.endswith('.tmp'))
for i in range(upto + 1):
    p = os.path.join(d, 'f%04d' % i)
    if not os.path.exists(p) or open(p, 'rb').read() != content(i): bad.append(i)
for n in names:
    i = int(n[1:])
    data = open(os.path.join(d, n), 'rb').read()
    if data != content(i): bad.append(n)
print('checked', len(names), 'bad', bad)
`;

maybe('kill -9 during writes, then remount: every fsynced file intact, lock recovered, tree readable', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  const dir = join(m.mountpoint, 'w');
  await sh(t, `mkdir ${dir}`);
  const writer = spawn('python3', ['-c', WRITER, dir, '100000', String(300_000)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const writerDone = new Promise((r) => writer.on('close', r));
  let lastSynced = -1;
  writer.stdout.setEncoding('utf8').on('data', (d: string) => {
    for (const l of d.trim().split('\n')) lastSynced = Number(l);
  });
  // A big unsynced write alongside, to be caught mid-flight.
  const bulk = spawn('bash', ['-c', `dd if=/dev/urandom of=${m.mountpoint}/bulk bs=1M count=400 2>/dev/null`], { stdio: 'ignore' });
  await waitFor(() => lastSynced >= 15, 60_000, 'the writer to fsync 16 files');
  const syncedBeforeKill = lastSynced;
  process.kill(m.pid, 'SIGKILL');
  await writerDone;
  bulk.kill('SIGKILL');
  await waitFor(() => !pidAlive(m.pid), 10_000, 'the mount process to die');

  const again = await fragfs(e, ['mount', store, m.mountpoint, '--background']);
  t.is(again.code, 0, again.stderr);
  const rec = JSON.parse(await sh(t, `cat ${e.runtimeDir}/*.json`).then((r) => r.stdout)) as { pid: number; logFile: string };
  t.teardown(async () => {
    if (await isMounted(m.mountpoint)) await fragfs(e, ['umount', m.mountpoint]);
  });
  const log = await readFile(rec.logFile, 'utf8');
  t.regex(log, /clearing a stale mount/);
  t.regex(log, new RegExp(`recovered the lock .* pid ${m.pid}`));
  const check = await run('python3', ['-c', CHECKER, dir, String(300_000), String(syncedBeforeKill)]);
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /bad \[\]$/m);
  // The whole tree is walkable and readable.
  await sh(t, `find ${m.mountpoint} -type f -exec cat {} + > /dev/null`);
  const u = await fragfs(e, ['umount', m.mountpoint]);
  t.is(u.code, 0, u.stderr);
});

maybe('a snapshot taken during writes mounts to a consistent tree; snapshots lists it', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  const dir = join(m.mountpoint, 'w');
  await sh(t, `mkdir ${dir} && cp -a node_modules/typescript/lib ${m.mountpoint}/ts`);
  const writer = spawn('python3', ['-c', WRITER, dir, '200', String(200_000)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const writerDone = new Promise((r) => writer.on('close', r));
  let last = -1;
  writer.stdout.setEncoding('utf8').on('data', (d: string) => {
    for (const l of d.trim().split('\n')) last = Number(l);
  });
  await waitFor(() => last >= 10, 60_000, 'writes to be under way');
  const doneBefore = last;
  const snap = await fragfs(e, ['snapshot', store, '--name', 'mid']);
  t.is(snap.code, 0, snap.stderr);
  const key = snap.stdout.trim().split('\n').pop()!;
  t.regex(key, /^[0-9a-f]{64}$/);
  await writerDone;

  const s = await mount(t, e, store, 'snap', ['--snapshot', 'mid']);
  const check = await run('python3', ['-c', CHECKER, join(s.mountpoint, 'w'), String(200_000), String(doneBefore)]);
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /bad \[\]$/m);
  await sh(t, `diff -r node_modules/typescript/lib ${s.mountpoint}/ts`);
  const ro = await sh(t, `touch ${s.mountpoint}/x 2>&1`, { expect: 1 });
  t.regex(ro.stdout, /Read-only file system/);
  const byKey = await mount(t, e, store, 'snap2', ['--snapshot', key]);
  await sh(t, `diff -r ${s.mountpoint} ${byKey.mountpoint}`);

  const list = await fragfs(e, ['snapshots', store, '--json']);
  t.is(list.code, 0, list.stderr);
  const refs = JSON.parse(list.stdout) as { key: string; name: string | null }[];
  t.true(refs.some((r) => r.key === key && r.name === 'mid'));
});

maybe('one read-write mount per store: the second fails LOCKED naming the pid; --read-only gives EROFS', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  await sh(t, `echo hello > ${m.mountpoint}/a`);
  const second = await fragfs(e, ['mount', store, join(e.root, 'mnt'), '--background']);
  t.not(second.code, 0);
  await sh(t, `mkdir ${e.root}/mnt2`);
  const other = await fragfs(e, ['mount', store, join(e.root, 'mnt2'), '--background']);
  t.is(other.code, 9, other.stderr);
  t.regex(other.stderr, new RegExp(`pid ${m.pid}`));
  t.false(await isMounted(join(e.root, 'mnt2')));

  const u = await m.umount();
  t.is(u.code, 0, u.stderr);
  const ro = await mount(t, e, store, 'ro', ['--read-only']);
  const r = await sh(t, `cat ${ro.mountpoint}/a; touch ${ro.mountpoint}/b 2>&1; mkdir ${ro.mountpoint}/c 2>&1; { echo x >> ${ro.mountpoint}/a; } 2>&1`, { expect: 'any' });
  t.is(r.stdout.split('\n')[0], 'hello');
  t.is((r.stdout.match(/Read-only file system/g) ?? []).length, 3);
  // A read-only mount takes no lock: a read-write one can start beside it.
  const rw = await mount(t, e, store, 'rw2');
  await sh(t, `cat ${rw.mountpoint}/a`);
});

maybe('a copy of the store folder mounts elsewhere and shows the same tree', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  await sh(t, `cp -a node_modules/typescript/lib ${m.mountpoint}/ts && ln -s ts/lib.d.ts ${m.mountpoint}/link && dd if=/dev/urandom of=${m.mountpoint}/rand bs=1M count=5 2>/dev/null`);
  await sh(t, `cp -a ${m.mountpoint}/rand ${e.root}/rand.orig`);
  t.is((await m.umount()).code, 0);
  await sh(t, `cp -a ${store} ${e.root}/copy && mv ${store} ${e.root}/moved-away`);
  const c = await mount(t, e, join(e.root, 'copy'), 'elsewhere');
  await sh(t, `diff -r node_modules/typescript/lib ${c.mountpoint}/ts && cmp ${e.root}/rand.orig ${c.mountpoint}/rand && test "$(readlink ${c.mountpoint}/link)" = ts/lib.d.ts`);
});

maybe('umount of a busy mount fails BUSY and keeps it; SIGTERM flushes, unmounts and releases the lock', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  const busy = spawn('bash', ['-c', 'sleep 30'], { cwd: m.mountpoint, stdio: 'ignore' });
  t.teardown(() => {
    busy.kill('SIGKILL');
  });
  // 'spawn' comes once bash runs, so its working folder (the mount) is already held.
  await new Promise((r) => busy.once('spawn', r));
  const u = await m.umount();
  t.is(u.code, 9, u.stderr);
  t.regex(u.stderr, /mount point busy: .*mnt \(close files and leave the folder first\)/);
  t.true(await isMounted(m.mountpoint));
  busy.kill('SIGKILL');
  await new Promise((r) => busy.on('close', r));

  await sh(t, `echo kept > ${m.mountpoint}/f`);
  process.kill(m.pid, 'SIGTERM');
  await waitFor(() => !pidAlive(m.pid), 30_000, 'the mount process to exit on SIGTERM');
  t.false(await isMounted(m.mountpoint));
  t.false((await sh(t, `ls ${store}/live/default`)).stdout.split('\n').includes('lock'));
  // Without a mount, snapshot opens the live state itself.
  const snap = await fragfs(e, ['snapshot', store, '--name', 'offline']);
  t.is(snap.code, 0, snap.stderr);
  const s = await mount(t, e, store, 'snap', ['--snapshot', 'offline']);
  t.is((await sh(t, `cat ${s.mountpoint}/f`)).stdout, 'kept\n');
  const gone = await fragfs(e, ['umount', join(e.root, 'mnt')]);
  t.is(gone.code, 5, gone.stderr);
});

maybe('writes reach the filesystem as 1 MiB requests (max_pages); read-ahead is 1 MiB', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt', ['--op-stats']);
  if (process.getuid?.() === 0) {
    const ra = await sh(t, `cat /sys/class/bdi/$(mountpoint -d ${m.mountpoint})/read_ahead_kb`);
    t.is(ra.stdout.trim(), '1024');
  }
  await sh(t, `dd if=/dev/zero of=${m.mountpoint}/z bs=1M count=32 conv=fsync 2>/dev/null`);
  t.is((await m.umount()).code, 0);
  const log = await readFile(m.logFile!, 'utf8');
  // 32 MiB in requests of up to 1 MiB: at least 32 WRITEs, and not the 256 that 128 KiB would take.
  const writes = Number(/^\s+write\s+(\d+)/m.exec(log)?.[1]);
  t.true(writes >= 32 && writes <= 64, `${writes} write requests for 32 MiB`);
});

maybe('permissions: the mount checks them itself, --allow-other lets the kernel check every caller', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const own = await mount(t, e, store, 'own');
  // Without allow_other only this user reaches the mount, and fragfs checks that user's rights.
  t.notRegex((await sh(t, `grep ' ${own.mountpoint} ' /proc/mounts`)).stdout, /default_permissions/);
  await sh(t, `cd ${own.mountpoint} && printf 'echo ran' > s && chmod 0644 s && printf x > z && chmod 0000 z`);
  // Root reads a mode-0000 file (CAP_DAC_OVERRIDE) but cannot run a file without any x bit.
  t.is((await sh(t, `cat ${own.mountpoint}/z`)).stdout, 'x');
  t.regex((await sh(t, `${own.mountpoint}/s 2>&1`, { expect: 126 })).stdout, /Permission denied/);
  await sh(t, `chmod 0755 ${own.mountpoint}/s && chmod 0600 ${own.mountpoint}/z`);
  t.is((await sh(t, `${own.mountpoint}/s`)).stdout, 'ran\n');
  await own.umount();

  const shared = await mount(t, e, store, 'shared', ['--allow-other']);
  t.regex((await sh(t, `grep ' ${shared.mountpoint} ' /proc/mounts`)).stdout, /default_permissions.*allow_other/);
  // The mount point's parents must let `nobody` through for the check to reach the file.
  await sh(t, `chmod 0755 ${shared.mountpoint}/.. ${e.root}`);
  const nobody = `setpriv --reuid=65534 --regid=65534 --clear-groups`;
  t.is((await sh(t, `${nobody} cat ${shared.mountpoint}/s`)).stdout, 'echo ran');
  t.regex((await sh(t, `${nobody} cat ${shared.mountpoint}/z 2>&1`, { expect: 1 })).stdout, /Permission denied/);
  t.regex((await sh(t, `${nobody} touch ${shared.mountpoint}/new 2>&1`, { expect: 1 })).stdout, /Permission denied/);
});

maybe('one kernel inode per hard link: attributes cached for a second still show a change made through another name', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt', ['--op-stats']);
  const out = await sh(t, `cd ${m.mountpoint} && echo a > f && ln f g && stat -c %h f && echo more >> g && stat -c '%h %s' f && rm g && stat -c %h f`);
  t.deepEqual(out.stdout.trim().split('\n'), ['2', '2 7', '1']);
  const ls = await sh(t, `cd ${m.mountpoint} && mkdir d && touch d/x && ls -i d f`);
  t.regex(ls.stdout, /^\d+ x$/m);
  t.is((await m.umount()).code, 0);
  const log = await readFile(m.logFile!, 'utf8');
  t.regex(log, /FUSE requests over/);
  t.regex(log, /^\s+lookup\s+\d+/m, 'op-stats names the requests');
});

maybe('a read-write mount lets the kernel keep names and attributes for a minute: files made 2 s ago are stat\'ed and removed without a LOOKUP', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt', ['--op-stats']);
  // 300 creates cost 300 LOOKUPs (each name is looked up before it is made). With the 1 s of go-fuse,
  // a stat and an unlink by name (no listing to refresh the names) 2 s later would look each up again.
  const names = `seq -f 'f%.0f' 1 300`;
  await sh(t, `mkdir ${m.mountpoint}/d && cd ${m.mountpoint}/d && ${names} | xargs touch && sleep 2 && ${names} | xargs stat -c %s >/dev/null && ${names} | xargs rm`);
  t.is((await m.umount()).code, 0);
  const lookups = Number(/^\s+lookup\s+(\d+)/m.exec(await readFile(m.logFile!, 'utf8'))?.[1]);
  t.true(lookups >= 300 && lookups < 350, `${lookups} LOOKUPs for 300 files made, stat'ed and removed`);
});

maybe('the mount process runs with its V8 flags and two malloc arenas, foreground or background; a MALLOC_ARENA_MAX of the user is kept', async (t) => {
  const e = await makeEnv(t);
  delete e.env['MALLOC_ARENA_MAX'];
  const settings = async (pid: number) => ({
    arenas: (await readFile(`/proc/${pid}/environ`, 'latin1')).split('\0').find((v) => v.startsWith('MALLOC_ARENA_MAX=')),
    oldSpace: (await readFile(`/proc/${pid}/cmdline`, 'latin1')).split('\0').includes('--initial-old-space-size=64'),
  });
  const a = await initStore(t, e, 'a');
  const b = await initStore(t, e, 'b');
  const bg = await mount(t, e, a, 'bg');
  t.deepEqual(await settings(bg.pid), { arenas: 'MALLOC_ARENA_MAX=2', oldSpace: true }, '--background');

  // A foreground mount runs itself again with them and serves from that process.
  const fgDir = join(e.root, 'fg');
  await sh(t, `mkdir ${fgDir}`);
  const fg = spawn(process.execPath, [CLI, 'mount', b, fgDir], { env: e.env, stdio: 'ignore' });
  const fgExit = new Promise<number | null>((r) => fg.on('exit', (code) => r(code)));
  t.teardown(() => void (fg.exitCode === null && fg.kill('SIGKILL')));
  // The record is written just after the kernel shows the mount.
  let served: { pid: number } | undefined;
  await waitFor(async () => (served = await readRecord(e, fgDir).catch(() => undefined)) !== undefined, 60_000, 'the foreground mount');
  if (served === undefined) return;
  t.true(await isMounted(fgDir));
  t.not(served.pid, fg.pid);
  t.deepEqual(await settings(served.pid), { arenas: 'MALLOC_ARENA_MAX=2', oldSpace: true }, 'foreground');
  t.is((await fragfs(e, ['umount', fgDir])).code, 0);
  t.is(await fgExit, 0);

  t.is((await bg.umount()).code, 0);
  const own = await mount(t, { ...e, env: { ...e.env, MALLOC_ARENA_MAX: '4' } }, a, 'own');
  t.is((await settings(own.pid)).arenas, 'MALLOC_ARENA_MAX=4');
});
