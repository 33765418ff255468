// Packs from the command line: a put of many small files writes a few packs, `sync` to another dir
// store packs there too and to lmdb unpacks, `verify` finds a damaged pack and a lost index is
// rebuilt from its pack, and a put killed with SIGKILL at random moments never leaves a store that
// fails verify.

import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_PATH, FAST_KDF, runCli, TEST_PASSPHRASE } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

async function smallTree(root: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (i % 100 === 0) await mkdir(join(root, `d${i / 100}`), { recursive: true });
    await writeFile(join(root, `d${Math.floor(i / 100)}`, `f${i}`), randomBytes(200 + (i % 2000)));
  }
}

/** Files under STORE/default/<kind>/ (every fan-out folder). */
async function filesIn(store: string, kind: string): Promise<string[]> {
  const out: string[] = [];
  const dir = join(store, 'default', kind);
  for (const fan of await readdir(dir).catch(() => [] as string[])) for (const f of await readdir(join(dir, fan))) out.push(join(dir, fan, f));
  return out;
}

function keyOf(stdout: string): string {
  const m = /[0-9a-f]{64}/.exec(stdout);
  if (!m) throw new Error(`no key in ${stdout}`);
  return m[0];
}

test('put packs small files; sync packs into dir and not into lmdb; verify finds a damaged pack; a lost index comes back', async (t) => {
  const work = await tempDir('fragfs-pack-cli-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const src = join(work.path, 'src');
  await smallTree(src, 2000);
  const put = await runCli(['put', store, src, '--no-progress']);
  t.is(put.code, 0, put.stderr);
  const key = keyOf(put.stdout);
  const packs = await filesIn(store, 'packs');
  t.log(`2,000 files and 21 folders: ${packs.length} packs, ${(await filesIn(store, 'objects')).length} single data objects`);
  t.true(packs.length >= 1 && packs.length <= 4, `${packs.length} packs`);
  t.is((await filesIn(store, 'index')).length, packs.length);
  t.is((await filesIn(store, 'meta')).length, 0);
  const v = await runCli(['verify', store]);
  t.is(v.code, 0, v.stdout + v.stderr);
  t.regex(v.stdout, new RegExp(`and ${packs.length} packs: no problems`));

  const copy = join(work.path, 'copy');
  t.is((await runCli(['sync', store, copy])).code, 0);
  t.true((await filesIn(copy, 'packs')).length <= 4);
  const flat = join(work.path, 'flat');
  t.is((await runCli(['sync', store, flat, '--backend', 'lmdb'])).code, 0);
  for (const s of [copy, flat]) {
    const back = join(work.path, `back-${s === copy ? 'copy' : 'flat'}`);
    const got = await runCli(['get', s, key, back]);
    t.is(got.code, 0, got.stderr);
    t.deepEqual(await describeTree(back), await describeTree(src));
  }

  // A lost index object: the pack's own tail says what is in it.
  for (const f of await filesIn(store, 'index')) await rm(f);
  const back = join(work.path, 'back-noindex');
  t.is((await runCli(['get', store, key, back])).code, 0);
  t.deepEqual(await describeTree(back), await describeTree(src));
  // A read-write opening writes them back.
  await writeFile(join(work.path, 'one.txt'), 'one');
  t.is((await runCli(['put', store, join(work.path, 'one.txt')])).code, 0);
  t.is((await filesIn(store, 'index')).length, (await filesIn(store, 'packs')).length, 'every pack has its index again');

  // One flipped byte in a pack: verify names it (exit 6).
  const fh = await open(packs[0]!, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 100);
  b[0]! ^= 0x40;
  await fh.write(b, 0, 1, 100);
  await fh.close();
  const bad = await runCli(['verify', store]);
  t.is(bad.code, 6, bad.stdout + bad.stderr);
  t.regex(bad.stdout, /^corrupt pack fragment [0-9a-f]{64}: pack [0-9a-f]{64}: its bytes do not hash to its id$/m);
});

test('a put killed with SIGKILL at random moments leaves a store that verifies; the next put completes', async (t) => {
  const work = await tempDir('fragfs-pack-kill-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const src = join(work.path, 'src');
  await smallTree(src, 3000);
  const kills: number[] = [];
  for (let i = 0; i < 6; i++) {
    await writeFile(join(src, 'd0', 'f0'), randomBytes(3000)); // each run has something new
    const child = spawn(process.execPath, [CLI_PATH, 'put', store, src, '--no-progress'], {
      env: { ...process.env, FRAGFS_PASSPHRASE: TEST_PASSPHRASE },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    const after = 300 + Math.floor(Math.random() * 2500);
    kills.push(after);
    await sleep(after);
    child.kill('SIGKILL');
    await exited;
    const v = await runCli(['verify', store]);
    t.is(v.code, 0, `after a kill at ${after} ms: ${v.stdout}${v.stderr}`);
  }
  t.log(`killed after ${kills.join(', ')} ms`);
  const done = await runCli(['put', store, src, '--no-progress']);
  t.is(done.code, 0, done.stderr);
  const back = join(work.path, 'back');
  t.is((await runCli(['get', store, keyOf(done.stdout), back])).code, 0);
  t.deepEqual(await describeTree(back), await describeTree(src));
  t.is((await runCli(['verify', store])).code, 0);
});

test('init --no-packs keeps one file per fragment', async (t) => {
  const work = await tempDir('fragfs-nopacks-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  t.is((await runCli(['init', store, '--backend', 'dir', '--no-packs', ...FAST_KDF])).code, 0);
  const src = join(work.path, 'src');
  await smallTree(src, 50);
  t.is((await runCli(['put', store, src])).code, 0);
  t.is((await filesIn(store, 'packs')).length, 0);
  t.is((await filesIn(store, 'objects')).length, 50);
});
