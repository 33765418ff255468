// `fragfs gc` of a store on S3 (Ceph radosgw on loopback, started once by scripts/test.sh), through
// the real CLI: two puts, one forgotten; a dry run prints what the run then frees, figure for figure;
// the kept snapshot verifies; the gc files are in the bucket under <space>/gc/ and no writer's lease
// is left behind.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackend } from '../../src/remote/open-remote.js';
import { createS3Bucket } from '../../src/remote/s3-backend.js';
import { closeRemoteBackends } from '../../src/remote/store-site.js';
import { parseStoreUrl, type RemoteStoreUrl } from '../../src/remote/store-url.js';
import { lastLine, runCli, type CliResult } from '../helpers/cli.js';
import { S3_TEST_VARS, s3ClientEnv, serverEnv } from '../helpers/remote-env.js';
import { createStore, tempDir } from '../helpers/stores.js';

const s3 = serverEnv(test, 'S3 (radosgw)', S3_TEST_VARS);
const BUCKET = `fragfs-gc-${randomBytes(3).toString('hex')}`;

function awsEnv(): Record<string, string | undefined> {
  return s3ClientEnv(s3!);
}

if (s3 !== undefined) {
  test.before(async () => {
    Object.assign(process.env, awsEnv());
    delete process.env['AWS_CA_BUNDLE'];
    await createS3Bucket({ scheme: 's3', bucket: BUCKET, prefix: '' });
  });
  test.after.always(() => closeRemoteBackends());

  test('s3: gc frees a forgotten snapshot, the dry run prints the same figures, the rest verifies', async (t) => {
    const tmp = await tempDir('fragfs-gc-s3-');
    t.teardown(() => tmp.remove());
    const url = `s3://${BUCKET}/gc`;
    const env = { ...awsEnv(), FRAGFS_CACHE_DIR: join(tmp.path, 'cache') };
    const cli = async (args: string[]): Promise<CliResult> => {
      const r = await runCli(args, { env });
      t.is(r.code, 0, `${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
      return r;
    };
    await createStore(url, 'object');
    const shared = randomBytes(120_000);
    const tree = async (name: string, own: number): Promise<string> => {
      const dir = join(tmp.path, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'own.bin'), randomBytes(own));
      await writeFile(join(dir, 'shared.bin'), shared);
      return dir;
    };
    const gone = lastLine((await cli(['put', url, await tree('one', 2_500_000)])).stdout);
    const keep = lastLine((await cli(['put', url, await tree('two', 300_000)])).stdout);
    await cli(['forget', url, gone]);

    const dry = await cli(['gc', url, '--dry-run']);
    const would = /would free (\d+) fragments?, .* \((\d+) bytes\)/.exec(dry.stdout);
    t.truthy(would, dry.stdout);
    const run = await cli(['gc', url, '--wait', '20']);
    const freed = /freed (\d+) fragments?, .* \((\d+) bytes\)/.exec(run.stdout);
    t.truthy(freed, run.stdout);
    t.is(freed![1], would![1], 'the same fragments');
    t.is(freed![2], would![2], 'the same bytes');
    t.true(Number(freed![2]) >= 2_500_000, run.stdout);
    t.is(dry.stdout.split('\n')[0], run.stdout.split('\n')[0], 'the same counts of fragments and roots');
    t.notRegex(run.stdout, /writer/);

    const verify = await runCli(['verify', url, keep], { env });
    t.is(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
    const again = await cli(['gc', url]);
    t.regex(again.stdout, /freed 0 fragments/);

    const objects = await openObjectBackend(parseStoreUrl(url) as RemoteStoreUrl);
    try {
      const keys: string[] = [];
      for await (const { key } of objects.list('')) keys.push(key);
      t.true(keys.includes('default/gc/mark'), keys.filter((k) => !k.includes('/objects/') && !k.includes('/meta/')).join(' '));
      t.false(keys.some((k) => k.startsWith('default/gc/leases/')), 'no writer lease left behind');
      t.false(keys.some((k) => k.startsWith('default/trash/')), 'nothing left in the trash');
    } finally {
      await objects.close();
    }
  });
}
