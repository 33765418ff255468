// Store arguments: local paths stay paths (also with a ':' in them), URLs of the four services parse
// into their parts and print back the same, and a scheme fragfs does not know is a usage error on
// every command, never a local folder named after it.

import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FragfsError } from '../../src/errors.js';
import { localFolderOf, storeLocation } from '../../src/remote/store-site.js';
import { formatStoreUrl, parseStoreUrl } from '../../src/remote/store-url.js';
import { oneLineError, runCli } from '../helpers/cli.js';

test('URLs of each service parse and print back; local paths stay local', (t) => {
  t.deepEqual(parseStoreUrl('s3://my-bucket/a/b/'), { scheme: 's3', bucket: 'my-bucket', prefix: 'a/b' });
  t.deepEqual(parseStoreUrl('s3://my-bucket'), { scheme: 's3', bucket: 'my-bucket', prefix: '' });
  t.deepEqual(parseStoreUrl('azure://acct1/box/x'), { scheme: 'azure', account: 'acct1', container: 'box', prefix: 'x' });
  t.deepEqual(parseStoreUrl('sftp://me@host.example:2222/srv/vault'), { scheme: 'sftp', user: 'me', host: 'host.example', port: 2222, path: '/srv/vault' });
  t.deepEqual(parseStoreUrl('sftp://[::1]/~/v'), { scheme: 'sftp', user: undefined, host: '::1', port: 22, path: '/~/v' });
  t.deepEqual(parseStoreUrl('rclone::local:/srv/x'), { scheme: 'rclone', remote: ':local:/srv/x' });
  for (const u of ['s3://my-bucket/a/b', 'azure://acct1/box/x', 'sftp://me@host.example:2222/srv/vault', 'sftp://[::1]/~/v', 'rclone:r:path']) {
    t.is(formatStoreUrl(parseStoreUrl(u)), u);
  }
  for (const p of ['./vault', '/srv/vault', 'backup:2024', 'c:', 'dir/s3:x']) t.deepEqual(parseStoreUrl(p), { scheme: 'local', path: p });
  t.is(storeLocation('s3://my-bucket/a//b/'), 's3://my-bucket/a/b');
});

test('malformed URLs and unknown schemes are usage errors', (t) => {
  for (const bad of ['gs://bucket/x', 'http://host/x', 'S3X://b', 's3://B/x', 's3://my-bucket/a b', 'azure://acct/', 'sftp://host', 'sftp://u:pw@host/x', 'rclone:nocolon']) {
    const e = t.throws(() => parseStoreUrl(bad), { instanceOf: FragfsError }, bad);
    t.is(e!.code, 'USAGE', bad);
  }
});

test('the cache folder of a remote store is one per URL, under FRAGFS_CACHE_DIR', (t) => {
  const prev = process.env['FRAGFS_CACHE_DIR'];
  process.env['FRAGFS_CACHE_DIR'] = '/var/tmp/c';
  try {
    t.regex(localFolderOf('s3://my-bucket/a'), /^\/var\/tmp\/c\/s3-[0-9a-f]{24}$/);
    t.not(localFolderOf('s3://my-bucket/a'), localFolderOf('s3://my-bucket/b'));
    t.is(localFolderOf('/srv/vault'), '/srv/vault');
  } finally {
    if (prev === undefined) delete process.env['FRAGFS_CACHE_DIR'];
    else process.env['FRAGFS_CACHE_DIR'] = prev;
  }
});

test('CLI: an unknown scheme is one line and exit 2 on init, put, sync and mount; no folder is made', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-url-'));
  try {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      oneLineError(t, await runCli(['init', 'gs://bucket/x']), 2, /unknown scheme gs:\/\//);
      oneLineError(t, await runCli(['put', 'gs://bucket/x', dir]), 2, /unknown scheme gs:\/\//);
      oneLineError(t, await runCli(['sync', dir, 'gs://bucket/x']), 2, /unknown scheme gs:\/\//);
      oneLineError(t, await runCli(['mount', 'gs://bucket/x', join(dir, 'mnt')]), 2, /unknown scheme gs:\/\//);
      t.false(existsSync(join(dir, 'gs:')));
    } finally {
      process.chdir(cwd);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
