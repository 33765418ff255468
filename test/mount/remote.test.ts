// Two machines share one store on S3 (Ceph radosgw on loopback, started once by scripts/test.sh),
// each with only the URL, the passphrase and its own cache folder: A puts and mounts read-write; B
// mounts A's published head read-only and sees A's tree byte for byte; B cannot take the write lease
// while A holds it; after A unmounts, B takes over, writes on, and A's next mount starts from B's
// head. The store verifies, and holds no name or content in clear.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackend } from '../../src/remote/open-remote.js';
import { createS3Bucket } from '../../src/remote/s3-backend.js';
import { Relay } from '../helpers/relay.js';
import { S3_TEST_VARS, s3ClientEnv, serverEnv } from '../helpers/remote-env.js';
import { ensurePatchedAddon, fragfs, fuseAvailable, makeEnv, mount, run, waitFor, type Env } from './helpers.js';
import { FAST_KDF } from '../helpers/cli.js';

const s3 = serverEnv(test, 'S3 (radosgw)', S3_TEST_VARS);
const enabled = fuseAvailable() && s3 !== undefined;
if (enabled) test.before(ensurePatchedAddon);
if (!fuseAvailable()) test.skip('remote mounts: /dev/fuse is missing', () => undefined);

const BUCKET = `fragfs-remote-mount-${randomBytes(3).toString('hex')}`;

function awsEnv(): NodeJS.ProcessEnv {
  return s3ClientEnv(s3!);
}

/** A machine: the shared test env with its own cache folder. */
function machine(e: Env, name: string): Env {
  return { ...e, env: { ...e.env, ...awsEnv(), FRAGFS_CACHE_DIR: join(e.root, `cache-${name}`) } };
}

async function heads(m: Env, url: string): Promise<string[]> {
  const r = await fragfs(m, ['snapshots', url, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { key: string; name: string | null }[]).filter((s) => s.name === 'head').map((s) => s.key);
}

if (enabled) {
  test.before(async () => {
    Object.assign(process.env, awsEnv());
    delete process.env['AWS_CA_BUNDLE'];
    await createS3Bucket({ scheme: 's3', bucket: BUCKET, prefix: '' });
  });

  test('two machines on one S3 store: A writes, B sees the head, B takes over the lease and writes on, A follows', async (t) => {
    const e = await makeEnv(t);
    const a = machine(e, 'a');
    const b = machine(e, 'b');
    const url = `s3://${BUCKET}/two-machines`;
    t.is((await fragfs(a, ['init', url, ...FAST_KDF])).code, 0);

    // A: a put, then a read-write mount that writes names that are not UTF-8, a symlink, a hard link.
    const src = join(e.root, 'src');
    await mkdir(join(src, 'docs'), { recursive: true });
    await writeFile(join(src, 'docs', 'readme.txt'), 'put by A\n');
    const put = await fragfs(a, ['put', url, src]);
    t.is(put.code, 0, put.stderr);

    const ma = await mount(t, a, url, 'mnt-a', ['--commit-interval', '1']);
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const latin1 = Buffer.from('caf\xe9.bin', 'latin1');
    await writeFile(Buffer.from(`${ma.mountpoint}/${latin1.toString('latin1')}`, 'latin1'), payload);
    await mkdir(join(ma.mountpoint, 'dir', 'sub'), { recursive: true });
    await writeFile(join(ma.mountpoint, 'dir', 'sub', 'note.txt'), 'written by A\n');
    await symlink('sub/note.txt', join(ma.mountpoint, 'dir', 'link'));
    // The head is published within the commit interval while A stays mounted.
    await waitFor(async () => (await heads(a, url)).length > 0, 30_000, 'A publishes a head');

    // B: only the URL, the passphrase and an empty cache folder.
    const mb = await mount(t, b, url, 'mnt-b-ro', ['--snapshot', 'head']);
    t.true(Buffer.from(await readFile(Buffer.from(`${mb.mountpoint}/${latin1.toString('latin1')}`, 'latin1'))).equals(payload));
    t.is(await readFile(join(mb.mountpoint, 'dir', 'sub', 'note.txt'), 'utf8'), 'written by A\n');
    t.is(await readlink(join(mb.mountpoint, 'dir', 'link')), 'sub/note.txt');
    t.is((await mb.umount()).code, 0);

    // B cannot write while A holds the lease: one line, exit 9, naming A's mount.
    await mkdir(join(e.root, 'mnt-b'), { recursive: true });
    const refused = await fragfs(b, ['mount', url, join(e.root, 'mnt-b'), '--background']);
    t.is(refused.code, 9, refused.stderr);
    t.regex(refused.stderr, /in use read-write by mount .*mnt-a/);

    // A unmounts (publishing its last changes); B takes over and writes on.
    await writeFile(join(ma.mountpoint, 'last-from-a.txt'), 'A, just before unmounting\n');
    t.is((await ma.umount()).code, 0);
    const mb2 = await mount(t, b, url, 'mnt-b');
    t.is(await readFile(join(mb2.mountpoint, 'last-from-a.txt'), 'utf8'), 'A, just before unmounting\n');
    t.true(Buffer.from(await readFile(Buffer.from(`${mb2.mountpoint}/${latin1.toString('latin1')}`, 'latin1'))).equals(payload));
    t.true((await lstat(join(mb2.mountpoint, 'dir', 'link'))).isSymbolicLink());
    await writeFile(join(mb2.mountpoint, 'dir', 'sub', 'note.txt'), 'changed by B\n');
    await writeFile(join(mb2.mountpoint, 'from-b.txt'), 'B was here\n');
    t.is((await mb2.umount()).code, 0);

    // A's next mount starts from B's head, not from A's own (older) live state.
    const ma2 = await mount(t, a, url, 'mnt-a2');
    t.is(await readFile(join(ma2.mountpoint, 'dir', 'sub', 'note.txt'), 'utf8'), 'changed by B\n');
    t.is(await readFile(join(ma2.mountpoint, 'from-b.txt'), 'utf8'), 'B was here\n');
    t.true(Buffer.from(await readFile(Buffer.from(`${ma2.mountpoint}/${latin1.toString('latin1')}`, 'latin1'))).equals(payload));
    t.is((await ma2.umount()).code, 0);

    const v = await fragfs(b, ['verify', url]);
    t.is(v.code, 0, v.stderr + v.stdout);
    t.true((await heads(a, url)).length >= 2);

    // Nothing in the bucket or in either cache folder names a file or holds its content in clear.
    const objects = await openObjectBackend({ scheme: 's3', bucket: BUCKET, prefix: 'two-machines' });
    const secrets = ['readme.txt', 'note.txt', 'written by A', 'changed by B', 'B was here', 'last-from-a'];
    let count = 0;
    for await (const { key } of objects.list('')) {
      const text = Buffer.from((await objects.get(key))!).toString('latin1') + key;
      for (const s of secrets) t.false(text.includes(s), `${key} holds ${s}`);
      count++;
    }
    await objects.close();
    t.true(count > 10);
    for (const m of ['a', 'b']) {
      const r = await run('grep', ['-rlaE', secrets.join('|'), join(e.root, `cache-${m}`)]);
      t.is(r.stdout, '', `cache folder of ${m}`);
    }
  });
}

if (enabled) {
  test('sync carries a local store and its live tree up to S3: another machine mounts it read-write from there', async (t) => {
    const e = await makeEnv(t);
    const a = machine(e, 'a');
    const b = machine(e, 'b');
    const local = join(e.root, 'vault');
    t.is((await fragfs(a, ['init', local, ...FAST_KDF])).code, 0);
    const m = await mount(t, a, local, 'mnt-local');
    await writeFile(join(m.mountpoint, 'live.txt'), 'only in the live tree\n');
    t.is((await m.umount()).code, 0);

    const url = `s3://${BUCKET}/synced`;
    const first = await fragfs(a, ['sync', local, url, '--json']);
    t.is(first.code, 0, first.stderr);
    // Unchanged since: a second sync adds no head and copies nothing.
    const second = await fragfs(a, ['sync', local, url, '--json']);
    t.is(second.code, 0, second.stderr);
    t.is((JSON.parse(second.stdout) as { copiedFragments: number }).copiedFragments, 0);
    t.is((await heads(b, url)).length, 1);

    const mb = await mount(t, b, url, 'mnt-synced');
    t.is(await readFile(join(mb.mountpoint, 'live.txt'), 'utf8'), 'only in the live tree\n');
    await writeFile(join(mb.mountpoint, 'from-b.txt'), 'B\n');
    t.is((await mb.umount()).code, 0);
    t.is((await heads(b, url)).length, 2);
  });
}

if (enabled) {
  test('the service goes away under a read-write mount: fsync says EIO and loses nothing; once it is back the data is stored and published', async (t) => {
    const e = await makeEnv(t);
    const target = new URL(s3!['FRAGFS_TEST_S3_ENDPOINT']!);
    const relay = new Relay({ host: target.hostname, port: Number(target.port) });
    await relay.start();
    t.teardown(() => relay.cut().catch(() => undefined));
    const via = `http://127.0.0.1:${relay.port}`;
    // A small retry budget, so an unreachable service fails a call in seconds.
    const a: Env = { ...machine(e, 'a'), env: { ...machine(e, 'a').env, AWS_ENDPOINT_URL: via, FRAGFS_REMOTE_RETRIES: '1', FRAGFS_REMOTE_TIMEOUT: '5' } };
    const url = `s3://${BUCKET}/outage`;
    t.is((await fragfs(a, ['init', url, ...FAST_KDF])).code, 0);
    const m = await mount(t, a, url, 'mnt-outage', ['--commit-interval', '0']);

    const before = randomBytes(2 * 1024 * 1024 + 5);
    await writeFile(join(m.mountpoint, 'before.bin'), before);
    await relay.cut();
    const during = randomBytes(3 * 1024 * 1024 + 11);
    const fh = await open(join(m.mountpoint, 'during.bin'), 'w');
    await fh.write(during);
    const err = await t.throwsAsync(fh.sync());
    t.is((err as NodeJS.ErrnoException).code, 'EIO');
    // Still readable as written: the blocks stayed in the mount's buffer.
    t.true((await readFile(join(m.mountpoint, 'during.bin'))).equals(during));
    // A file written and closed while the service is away: close means saved all the same.
    const closed = randomBytes(1024 * 1024 + 3);
    await writeFile(join(m.mountpoint, 'closed-during.bin'), closed);
    await new Promise((r) => setTimeout(r, 1500));
    t.true((await readFile(join(m.mountpoint, 'closed-during.bin'))).equals(closed));

    await relay.start();
    try {
      await fh.sync();
    } catch (err) {
      // What the mount said is the explanation.
      if (m.logFile) t.log(await readFile(m.logFile, 'utf8').catch(() => 'no log'));
      throw err;
    }
    await fh.close();
    t.is((await m.umount()).code, 0);

    // Another machine sees every byte in the published head.
    const mb = await mount(t, machine(e, 'b'), url, 'mnt-outage-b', ['--snapshot', 'head']);
    t.true((await readFile(join(mb.mountpoint, 'during.bin'))).equals(during));
    t.true((await readFile(join(mb.mountpoint, 'before.bin'))).equals(before));
    t.true((await readFile(join(mb.mountpoint, 'closed-during.bin'))).equals(closed));
    t.is((await mb.umount()).code, 0);
  });
}
