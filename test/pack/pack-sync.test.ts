// `sync` copies packs as they are: between two dir stores and from a dir store to S3 (and back), every
// pack object and its index arrive byte for byte under the same id, a rerun copies nothing, a sync of
// one snapshot takes whole only the packs it needs all of, and every copy verifies and reads back.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createS3Bucket } from '../../src/remote/s3-backend.js';
import { runCli } from '../helpers/cli.js';
import { S3_TEST_VARS, s3ClientEnv, serverEnv } from '../helpers/remote-env.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

async function smallTree(root: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (i % 100 === 0) await mkdir(join(root, `d${i / 100}`), { recursive: true });
    await writeFile(join(root, `d${Math.floor(i / 100)}`, `f${i}`), randomBytes(200 + (i % 3000)));
  }
}

/** id -> bytes of every object of `kind` in a dir store's default space. */
async function objectsOf(store: string, kind: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const dir = join(store, 'default', kind);
  for (const fan of await readdir(dir).catch(() => [] as string[])) {
    for (const f of await readdir(join(dir, fan))) out.set(basename(f), await readFile(join(dir, fan, f)));
  }
  return out;
}

function keyOf(stdout: string): string {
  const m = /[0-9a-f]{64}/.exec(stdout);
  if (!m) throw new Error(`no key in ${stdout}`);
  return m[0];
}

function sameObjects(t: { true(v: boolean, m?: string): void; deepEqual<T>(a: T, b: T, m?: string): void }, got: Map<string, Buffer>, want: Map<string, Buffer>, what: string): void {
  t.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: the same ids`);
  for (const [id, bytes] of want) t.true(got.get(id)?.equals(bytes) === true, `${what} ${id}: the same bytes`);
}

test('sync between dir stores copies packs and their indexes as they are; a rerun copies nothing; the copy verifies', async (t) => {
  const work = await tempDir('fragfs-pack-sync-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const src = join(work.path, 'src');
  await smallTree(src, 1500);
  const put = await runCli(['put', store, src, '--no-progress']);
  t.is(put.code, 0, put.stderr);
  const key = keyOf(put.stdout);
  const packs = await objectsOf(store, 'packs');
  t.true(packs.size >= 1);

  const copy = join(work.path, 'copy');
  const s = await runCli(['sync', store, copy, '--json']);
  t.is(s.code, 0, s.stderr);
  const result = JSON.parse(s.stdout) as { copiedPacks: number; copiedFragments: number };
  t.is(result.copiedPacks, packs.size);
  sameObjects(t, await objectsOf(copy, 'packs'), packs, 'pack');
  sameObjects(t, await objectsOf(copy, 'index'), await objectsOf(store, 'index'), 'index');
  const v = await runCli(['verify', copy]);
  t.is(v.code, 0, v.stdout + v.stderr);
  const back = join(work.path, 'back');
  t.is((await runCli(['get', copy, key, back])).code, 0);
  t.deepEqual(await describeTree(back), await describeTree(src));

  const again = await runCli(['sync', store, copy, '--json']);
  t.is(again.code, 0, again.stderr);
  const r2 = JSON.parse(again.stdout) as { copiedPacks: number; copiedFragments: number; presentFragments: number };
  t.is(r2.copiedFragments, 0);
  t.is(r2.copiedPacks, 0);
  t.true(r2.presentFragments >= result.copiedFragments - 1);
});

test('sync of one snapshot takes whole the packs it needs all of, and only those; the copy verifies', async (t) => {
  const work = await tempDir('fragfs-pack-sync-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const first = join(work.path, 'first');
  await smallTree(first, 800);
  const put1 = await runCli(['put', store, first, '--no-progress']);
  t.is(put1.code, 0, put1.stderr);
  const packs1 = await objectsOf(store, 'packs');
  const second = join(work.path, 'second');
  await smallTree(second, 800);
  const put2 = await runCli(['put', store, second, '--no-progress']);
  t.is(put2.code, 0, put2.stderr);
  const key2 = keyOf(put2.stdout);
  const all = await objectsOf(store, 'packs');

  const copy = join(work.path, 'copy');
  const s = await runCli(['sync', store, copy, key2, '--json']);
  t.is(s.code, 0, s.stderr);
  const copied = await objectsOf(copy, 'packs');
  // The first put's packs hold only what the second snapshot does not name: none of them goes.
  for (const id of packs1.keys()) t.false(copied.has(id), `pack ${id} of the other snapshot`);
  const whole = [...copied.keys()].filter((id) => all.has(id));
  t.true(whole.length >= 1, 'the snapshot\'s own packs go whole');
  for (const id of whole) t.true(copied.get(id)!.equals(all.get(id)!));
  const v = await runCli(['verify', copy]);
  t.is(v.code, 0, v.stdout + v.stderr);
  const back = join(work.path, 'back');
  t.is((await runCli(['get', copy, key2, back])).code, 0);
  t.deepEqual(await describeTree(back), await describeTree(second));
});

const s3 = serverEnv(test, 'S3 (radosgw)', S3_TEST_VARS);
if (s3) {
  const bucket = `fragfs-pack-sync-${randomBytes(3).toString('hex')}`;
  const env = s3ClientEnv(s3);
  test.before(async () => {
    Object.assign(process.env, env);
    delete process.env['AWS_CA_BUNDLE'];
    await createS3Bucket({ scheme: 's3', bucket, prefix: '' });
  });

  test('sync from a dir store to S3 and back copies packs byte for byte under the same ids; the remote copy verifies', async (t) => {
    const work = await tempDir('fragfs-pack-sync-');
    t.teardown(work.remove);
    const cli = (args: string[]) => runCli(args, { env: { ...env, FRAGFS_CACHE_DIR: join(work.path, 'cache') } });
    const store = join(work.path, 'store');
    await createStore(store, 'dir');
    const src = join(work.path, 'src');
    await smallTree(src, 1200);
    const put = await cli(['put', store, src, '--no-progress']);
    t.is(put.code, 0, put.stderr);
    const key = keyOf(put.stdout);
    const packs = await objectsOf(store, 'packs');

    const url = `s3://${bucket}/copy`;
    const up = await cli(['sync', store, url, '--json']);
    t.is(up.code, 0, up.stderr);
    t.is((JSON.parse(up.stdout) as { copiedPacks: number }).copiedPacks, packs.size);
    const v = await cli(['verify', url]);
    t.is(v.code, 0, v.stdout + v.stderr);

    // Back to a new dir store: the packs that went up come back as they were.
    const down = join(work.path, 'down');
    const d = await cli(['sync', url, down, '--backend', 'dir', '--json']);
    t.is(d.code, 0, d.stderr);
    t.is((JSON.parse(d.stdout) as { copiedPacks: number }).copiedPacks, packs.size);
    sameObjects(t, await objectsOf(down, 'packs'), packs, 'pack');
    sameObjects(t, await objectsOf(down, 'index'), await objectsOf(store, 'index'), 'index');
    const back = join(work.path, 'back');
    t.is((await cli(['get', url, key, back])).code, 0);
    t.deepEqual(await describeTree(back), await describeTree(src));
  });
}
