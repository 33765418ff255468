// Bad input through the real CLI: each mistake or failure gives one clear line (no stack trace), the
// documented exit code, and leaves what was already stored intact.

import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FAST_KDF, lastLine, runCli, type CliResult } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { canMountTmpfs, canRunAsNobody, testIf } from '../helpers/capabilities.js';

let work: Awaited<ReturnType<typeof tempDir>>;
let store: string;
let tree: string;
let key: string;

test.before(async () => {
  work = await tempDir('fragfs-errors-');
  store = join(work.path, 'store');
  tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'a.txt'), 'hello\n');
  await writeFile(join(tree, 'big.bin'), randomBytes(3 * 1024 * 1024));
  await createStore(store, 'dir');
  const put = await runCli(['put', store, tree]);
  if (put.code !== 0) throw new Error(put.stderr);
  key = lastLine(put.stdout);
});

test.after.always(async () => {
  await work?.remove();
});

/** A user's mistake: exit code as documented, one line on stderr, no stack trace. */
function userError(t: ExecutionContext, r: CliResult, code: number, pattern: RegExp): void {
  t.is(r.code, code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, `expected one line, got: ${r.stderr}`);
  t.regex(lines[0]!, /^fragfs: /);
  t.regex(lines[0]!, pattern);
  t.notRegex(r.stderr, /\n\s+at /);
}

test('a missing store', async (t) => {
  userError(t, await runCli(['ls', join(work.path, 'nope'), key]), 3, /no fragfs store at/);
});

test('a path that does not exist', async (t) => {
  userError(t, await runCli(['put', store, join(work.path, 'missing-file')]), 5, /no such file or folder/);
});

test('invalid and unknown meta keys', async (t) => {
  userError(t, await runCli(['ls', store, 'abc']), 5, /not a meta key/);
  userError(t, await runCli(['ls', store, 'no-such-name']), 5, /no snapshot named/);
  userError(t, await runCli(['get', store, 'f'.repeat(64), join(work.path, 'x')]), 5, /no snapshot with meta key/);
  userError(t, await runCli(['cat', store, `${key}/nope.txt`]), 5, /no such file or folder in the snapshot/);
});

test('a wrong passphrase, and no passphrase at all without a terminal', async (t) => {
  userError(t, await runCli(['ls', store, key], { env: { FRAGFS_PASSPHRASE: 'wrong' } }), 4, /passphrase/);
  userError(t, await runCli(['ls', store, key], { env: { FRAGFS_PASSPHRASE: undefined } }), 4, /FRAGFS_PASSPHRASE|--passphrase-file/);
  const file = join(work.path, 'pass.txt');
  await writeFile(file, 'wrong\n');
  userError(t, await runCli(['ls', store, key, '--passphrase-file', file], { env: { FRAGFS_PASSPHRASE: undefined } }), 4, /passphrase/);
});

test('init refuses bad block sizes, an existing store and a non-empty folder', async (t) => {
  userError(t, await runCli(['init', join(work.path, 'bs-small'), '--block-size', '8K']), 2, /block size/i);
  userError(t, await runCli(['init', join(work.path, 'bs-big'), '--block-size', '8M']), 2, /block size/i);
  userError(t, await runCli(['init', join(work.path, 'bs-bad'), '--backend', 'floppy']), 2, /unknown backend/);
  userError(t, await runCli(['init', store]), 3, /already exists/);
  userError(t, await runCli(['init', tree]), 10, /not empty/);
});

test('init through the CLI creates a store that opens with its passphrase', async (t) => {
  const fresh = join(work.path, 'fresh');
  const r = await runCli(['init', fresh, '--backend', 'split', '--block-size', '64K', '--json', ...FAST_KDF]);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { backend: 'split', blockSize: 65536 });
  const put = await runCli(['put', fresh, join(tree, 'a.txt')]);
  t.is(put.code, 0, put.stderr);
  t.is((await runCli(['cat', fresh, lastLine(put.stdout)])).stdout, 'hello\n');
});

/** The data fragments of the `dir` store, largest first (the 1 MiB blocks of big.bin). */
async function dataFragments(storePath: string): Promise<{ path: string; id: string; size: number }[]> {
  const root = join(storePath, 'default', 'objects');
  const out = [];
  for (const fan of await readdir(root)) {
    for (const rest of await readdir(join(root, fan))) {
      const path = join(root, fan, rest);
      out.push({ path, id: fan + rest, size: (await stat(path)).size });
    }
  }
  return out.sort((a, b) => b.size - a.size);
}

test.serial('a flipped byte or a truncated fragment is named by verify, get and cat', async (t) => {
  const copy = join(work.path, 'store-corrupt');
  spawnSync('cp', ['-a', store, copy]);
  const [victim, second] = await dataFragments(copy);
  const fh = await open(victim!.path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 1000);
  b[0] = b[0]! ^ 0x10;
  await fh.write(b, 0, 1, 1000);
  await fh.close();
  await truncate(second!.path, 100);

  const verify = await runCli(['verify', copy]);
  t.is(verify.code, 6, verify.stderr);
  t.regex(verify.stdout, new RegExp(`corrupt data fragment ${victim!.id}.*needed by [0-9a-f]{12}:/big\\.bin`));
  t.regex(verify.stdout, new RegExp(`corrupt data fragment ${second!.id}`));

  const get = await runCli(['get', copy, key, join(work.path, 'restore-corrupt')]);
  t.is(get.code, 6);
  t.regex(get.stderr, /fragment [0-9a-f]{64}.*big\.bin/);
  const cat = await runCli(['cat', copy, `${key}/big.bin`]);
  t.is(cat.code, 6);
  t.regex(cat.stderr, /fragment [0-9a-f]{64}/);

  // The untouched file still comes out whole.
  t.is((await runCli(['cat', copy, `${key}/a.txt`])).stdout, 'hello\n');
});

testIf(canRunAsNobody, 'running the CLI as nobody needs root, runuser and a nobody account').serial('an unreadable file stops put with a clear error (as an unprivileged user)', async (t) => {
  const shared = join(work.path, 'shared');
  await mkdir(shared, { mode: 0o777 });
  await chmod(shared, 0o777);
  await chmod(work.path, 0o755);
  const secret = join(shared, 'secret.txt');
  await writeFile(secret, 'no\n', { mode: 0o600 });
  const nobodyStore = join(shared, 'store');
  const init = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, join(process.cwd(), 'dist', 'bin', 'main.js'), 'init', nobodyStore, '--backend', 'dir', ...FAST_KDF], {
    env: { ...process.env, FRAGFS_PASSPHRASE: 'p' },
    encoding: 'utf8',
  });
  t.is(init.status, 0, init.stderr);
  const put = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, join(process.cwd(), 'dist', 'bin', 'main.js'), 'put', nobodyStore, secret], {
    env: { ...process.env, FRAGFS_PASSPHRASE: 'p' },
    encoding: 'utf8',
  });
  t.is(put.status, 8, put.stderr);
  t.regex(put.stderr, /^fragfs: cannot read .*secret\.txt: permission denied/);
});

testIf(canMountTmpfs, 'the full-disk tests need root to mount a tmpfs').serial('a full disk during put: a clear error, and the store keeps what it had', async (t) => {
  const small = join(work.path, 'small-disk');
  await mkdir(small);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', small], { encoding: 'utf8' });
  t.is(m.status, 0, m.stderr);
  t.teardown(() => {
    spawnSync('umount', [small]);
  });
  const s = join(small, 'store');
  await createStore(s, 'dir');
  const first = await runCli(['put', s, join(tree, 'a.txt')]);
  t.is(first.code, 0, first.stderr);
  const big = join(work.path, 'too-big.bin');
  await writeFile(big, randomBytes(12 * 1024 * 1024));
  const put = await runCli(['put', s, big]);
  t.is(put.code, 7, put.stderr);
  t.regex(put.stderr, /^fragfs: .*disk is full/);
  t.is(put.stderr.trim().split('\n').length, 1);
  t.is((await runCli(['cat', s, lastLine(first.stdout)])).stdout, 'hello\n');
  const verify = await runCli(['verify', s]);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
  t.is((await readFile(join(tree, 'a.txt'), 'utf8')), 'hello\n');
});
