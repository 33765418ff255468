// Remote stores when the service fails: a TCP relay in front of radosgw (started once by
// scripts/test.sh) is cut in the middle of a put and of a sync; each command ends with one line and
// exit 12 within its retry budget, the store verifies, and a rerun completes (a sync then copies
// only what is missing). Wrong credentials are one line and exit 12 at once.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createS3Bucket } from '../../src/remote/s3-backend.js';
import { FAST_KDF, lastLine, runCli } from '../helpers/cli.js';
import { Relay } from '../helpers/relay.js';
import { S3_TEST_VARS, s3ClientEnv, serverEnv } from '../helpers/remote-env.js';

const s3 = serverEnv(test, 'S3 (radosgw)', S3_TEST_VARS);
const BUCKET = `fragfs-faults-${randomBytes(3).toString('hex')}`;

function env(endpoint: string, secret = s3!['FRAGFS_TEST_S3_SECRET_KEY']!): Record<string, string | undefined> {
  return {
    ...s3ClientEnv(s3!, { endpoint, secret }),
    // A small retry budget, so a cut service ends the command in seconds.
    FRAGFS_REMOTE_RETRIES: '2',
    FRAGFS_REMOTE_TIMEOUT: '5',
  };
}

/** 24 files of 1 MiB of random bytes: enough for a cut to fall in the middle of a put or a sync. */
async function randomTree(dir: string): Promise<string> {
  const src = join(dir, 'src');
  await mkdir(src);
  for (let i = 0; i < 24; i++) await writeFile(join(src, `f${i}.bin`), randomBytes(1024 * 1024));
  return src;
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

if (s3) {
  const target = new URL(s3['FRAGFS_TEST_S3_ENDPOINT']!);
  const direct = s3['FRAGFS_TEST_S3_ENDPOINT']!;

  test.before(async () => {
    await createS3Bucket({ scheme: 's3', bucket: BUCKET, prefix: '' }, {
      endpoint: direct,
      credentials: { accessKeyId: s3['FRAGFS_TEST_S3_ACCESS_KEY']!, secretAccessKey: s3['FRAGFS_TEST_S3_SECRET_KEY']! },
    });
  });

  test('a put cut off mid-way ends with one line and exit 12; the store verifies; a rerun completes', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fragfs-faults-'));
    const relay = new Relay({ host: target.hostname, port: Number(target.port) });
    try {
      const src = await randomTree(dir);
      const url = `s3://${BUCKET}/put-cut`;
      await relay.start();
      const via = `http://127.0.0.1:${relay.port}`;
      const cache = { FRAGFS_CACHE_DIR: join(dir, 'cache') };
      t.is((await runCli(['init', url, ...FAST_KDF], { env: { ...env(via), ...cache } })).code, 0);
      const put = runCli(['put', url, src], { env: { ...env(via), ...cache } });
      await waitUntil(() => relay.upBytes > 6 * 1024 * 1024, 60_000);
      await relay.cut();
      const r = await put;
      t.is(r.code, 12, r.stderr);
      const lines = r.stderr.trim().split('\n');
      t.is(lines.length, 1, r.stderr);
      t.regex(lines[0]!, /^fragfs: s3:\/\/.*put-cut: .*\(3 attempts\)$/);
      t.notRegex(r.stderr, /\n\s+at /);

      // The service is back: what the cut put stored is sound, and the put completes on a rerun.
      await relay.start();
      const v1 = await runCli(['verify', url], { env: { ...env(via), ...cache } });
      t.is(v1.code, 0, v1.stderr + v1.stdout);
      const again = await runCli(['put', url, src], { env: { ...env(via), ...cache } });
      t.is(again.code, 0, again.stderr);
      const key = lastLine(again.stdout);
      const out = join(dir, 'out');
      t.is((await runCli(['get', url, key, out], { env: { ...env(via), ...cache } })).code, 0);
      const diff = await runCli(['verify', url, key], { env: { ...env(via), ...cache } });
      t.is(diff.code, 0, diff.stderr);
    } finally {
      await relay.cut().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a sync to S3 cut off mid-way ends with exit 12; a rerun copies only what is missing', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fragfs-faults-'));
    const relay = new Relay({ host: target.hostname, port: Number(target.port) });
    try {
      const src = await randomTree(dir);
      const local = join(dir, 'local');
      t.is((await runCli(['init', local, ...FAST_KDF])).code, 0);
      t.is((await runCli(['put', local, src])).code, 0);
      await relay.start();
      const via = `http://127.0.0.1:${relay.port}`;
      const url = `s3://${BUCKET}/sync-cut`;
      const sync = runCli(['sync', local, url, '--json'], { env: env(via) });
      await waitUntil(() => relay.upBytes > 6 * 1024 * 1024, 60_000);
      await relay.cut();
      const r = await sync;
      t.is(r.code, 12, r.stderr);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);

      await relay.start();
      const again = await runCli(['sync', local, url, '--json'], { env: env(via) });
      t.is(again.code, 0, again.stderr);
      const res = JSON.parse(again.stdout) as { copiedFragments: number; presentFragments: number };
      t.true(res.presentFragments > 0, 'what the cut sync copied is not copied again');
      t.true(res.copiedFragments > 0);
      const v = await runCli(['verify', url], { env: env(via) });
      t.is(v.code, 0, v.stderr + v.stdout);
    } finally {
      await relay.cut().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('wrong credentials: one line, exit 12, no retries, no secret in it', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fragfs-faults-'));
    try {
      const started = Date.now();
      const r = await runCli(['snapshots', `s3://${BUCKET}/nothing`], { env: { ...env(direct, 'not-the-secret'), FRAGFS_CACHE_DIR: dir } });
      t.is(r.code, 12, r.stderr);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      t.regex(r.stderr, /access refused/);
      t.false(r.stderr.includes('not-the-secret'));
      t.true(Date.now() - started < 10_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
