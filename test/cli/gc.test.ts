// `fragfs gc` through the real CLI: --help speaks of the dry run; --dry-run prints what it would free
// and deletes nothing; a store with nothing to free says "freed 0 fragments"; a missing store is one
// line with exit 3; while a put runs, a gc with a short --wait says it waited for the put (by pid)
// and deletes nothing, a gc holding the gc lock makes a second one fail with LOCKED naming it, and
// the gc that waited frees the garbage once the put ends; every file under STORE/gc is 0600 and
// every folder 0700.

import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_PATH, lastLine, oneLineError, runCli, TEST_PASSPHRASE, type CliResult } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

let work: Awaited<ReturnType<typeof tempDir>>;

test.before(async () => {
  work = await tempDir('fragfs-cli-gc-');
});

test.after.always(async () => {
  await work?.remove();
});

function ok(t: ExecutionContext, r: CliResult, what: string): CliResult {
  t.is(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

async function files(dir: string, n: number, bytes: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    if (i % 200 === 0) await mkdir(join(dir, `d${i / 200}`));
    await writeFile(join(dir, `d${Math.floor(i / 200)}`, `f${i}`), randomBytes(bytes + (i % 1000)));
  }
}

/** A store (dir backend) holding one snapshot to keep and the fragments of one forgotten snapshot (`junk`). */
async function storeWithGarbage(name: string): Promise<{ store: string; junk: string }> {
  const store = join(work.path, name);
  await createStore(store, 'dir');
  await files(join(work.path, `${name}-keep`), 20, 500);
  const keep = await runCli(['put', store, join(work.path, `${name}-keep`)]);
  if (keep.code !== 0) throw new Error(keep.stderr);
  await files(join(work.path, `${name}-junk`), 50, 20_000);
  const put = await runCli(['put', store, join(work.path, `${name}-junk`)]);
  if (put.code !== 0) throw new Error(put.stderr);
  const junk = lastLine(put.stdout);
  const forget = await runCli(['forget', store, junk]);
  if (forget.code !== 0) throw new Error(forget.stderr);
  return { store, junk };
}

async function duBytes(path: string): Promise<number> {
  const r = await new Promise<string>((res) => {
    const c = spawn('du', ['-sb', path]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => res(out));
  });
  return Number(r.split('\t')[0]);
}

interface Child {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<number | null>;
}

/** A CLI child; with `stdin`, its standard input is a pipe the test writes and ends. */
function startCli(args: string[], o: { stdin?: boolean } = {}): Child {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: { ...process.env, FRAGFS_PASSPHRASE: TEST_PASSPHRASE },
    stdio: [o.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const c: Child = { child, stdout: '', stderr: '', done: new Promise((res) => child.on('close', (code) => res(code))) };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (c.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (c.stderr += d));
  return c;
}

async function until(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('--help describes the dry run and --wait', async (t) => {
  const r = ok(t, await runCli(['gc', '--help']), 'gc --help');
  t.regex(r.stdout, /--dry-run\s+only count what would be freed/);
  t.regex(r.stdout, /--wait <seconds>/);
});

test('--dry-run prints what it would free and deletes nothing; the real run then frees exactly that', async (t) => {
  const { store, junk } = await storeWithGarbage('dry');
  const du = await duBytes(store);
  const dry = ok(t, await runCli(['gc', store, '--dry-run']), 'gc --dry-run');
  t.regex(dry.stdout, /^would free (\d+) fragments, [\d.]+ \w+ \((\d+) bytes\), in [\d.]+ s \(dry run: nothing deleted\)$/m);
  const [, n, bytes] = /would free (\d+) fragments, [\d.]+ \w+ \((\d+) bytes\)/.exec(dry.stdout)!;
  t.true(Number(bytes) >= 50 * 20_000, `the forgotten snapshot's 1 MB is counted: ${bytes}`);
  t.is(await duBytes(store), du, 'du -sb of the store is unchanged');
  t.false(existsSync(join(store, 'gc', 'default', 'mark')), 'a dry run writes no mark');
  ok(t, await runCli(['get', store, junk, join(work.path, 'dry-junk-back')]), 'the forgotten snapshot still reads');
  const real = ok(t, await runCli(['gc', store]), 'gc');
  t.regex(real.stdout, new RegExp(`^freed ${n} fragments, [\\d.]+ \\w+ \\(${bytes} bytes\\)`, 'm'));
  const after = await duBytes(store);
  t.log(`du -sb ${du} before, ${after} after; ${bytes} bytes freed`);
  // The freed bytes leave; what gc adds is folders (trash fan-out folders of 4 KiB, at most 2 x 256)
  // and its own small files under STORE/gc.
  t.true(after <= du - Number(bytes) + 2 * 256 * 4096 + 64 * 1024, 'the real run frees the space');
});

test('forget --gc removes the snapshot and frees its fragments in one run; --json carries the gc report; with --dry-run it is refused', async (t) => {
  const store = join(work.path, 'forget-gc');
  await createStore(store, 'dir');
  await files(join(work.path, 'forget-gc-keep'), 20, 500);
  ok(t, await runCli(['put', store, join(work.path, 'forget-gc-keep')]), 'put keep');
  await files(join(work.path, 'forget-gc-junk'), 50, 20_000);
  const junk = lastLine(ok(t, await runCli(['put', store, join(work.path, 'forget-gc-junk')]), 'put junk').stdout);
  oneLineError(t, await runCli(['forget', store, junk, '--gc', '--dry-run']), 2, /--gc .*--dry-run/);
  const du = await duBytes(store);
  const r = ok(t, await runCli(['forget', store, junk, '--gc', '--json']), 'forget --gc');
  const report = JSON.parse(r.stdout) as { removed: number; gc: { freed: number; freedBytes: number } };
  t.is(report.removed, 1);
  t.true(report.gc.freedBytes >= 50 * 20_000, `the forgotten snapshot's 1 MB is freed: ${report.gc.freedBytes}`);
  // As above: gc adds trash fan-out folders and its own small files.
  const after = await duBytes(store);
  t.true(after <= du - report.gc.freedBytes + 2 * 256 * 4096 + 64 * 1024, `the store shrank: ${du} -> ${after}`);
  t.not((await runCli(['get', store, junk, join(work.path, 'forget-gc-back')])).code, 0, 'the forgotten snapshot is gone');
  const again = ok(t, await runCli(['gc', store]), 'gc after');
  t.regex(again.stdout, /^freed 0 fragments/m, 'nothing left for a later gc');
});

test('a store with nothing to free: "freed 0 fragments"', async (t) => {
  const { store } = await storeWithGarbage('nothing');
  ok(t, await runCli(['gc', store]), 'first gc');
  const r = ok(t, await runCli(['gc', store]), 'second gc');
  t.regex(r.stdout, /^freed 0 fragments, 0 B \(0 bytes\), in [\d.]+ s$/m);
  const empty = join(work.path, 'empty');
  await createStore(empty, 'lmdb');
  t.regex(ok(t, await runCli(['gc', empty]), 'gc of a new store').stdout, /^freed 0 fragments/m);
});

test('a missing store is one line with exit 3, before any passphrase', async (t) => {
  oneLineError(t, await runCli(['gc', join(work.path, 'nowhere')], { env: { FRAGFS_PASSPHRASE: undefined } }), 3, /no fragfs store at .*nowhere/);
  oneLineError(t, await runCli(['gc', join(work.path, 'nowhere'), '--dry-run']), 3, /no fragfs store at/);
  oneLineError(t, await runCli(['gc', join(work.path, 'nowhere'), '--wait', 'soon']), 2, /--wait/);
});

test('while a put runs: --wait 1 waits for it and deletes nothing, a second gc beside one that waits is LOCKED, and the one that waited frees the garbage once the put ends', async (t) => {
  const { store, junk } = await storeWithGarbage('busy');
  // A put of its standard input, which the test keeps open: the put runs exactly as long as the
  // test needs (a put of many files ended too soon once puts got faster).
  const put = startCli(['put', store, '-', '--stdin-name', 'busy', '--no-progress'], { stdin: true });
  t.teardown(() => {
    if (put.child.exitCode === null) put.child.kill('SIGKILL');
  });
  put.child.stdin!.on('error', () => undefined); // a put that failed early: its exit code tells
  put.child.stdin!.write(randomBytes(8 * 1024 * 1024));
  const leases = join(store, 'gc', 'default', 'leases');
  // The put's lease appears with its first write: from then on it holds back what gc condemns.
  await until(async () => put.child.exitCode !== null || (existsSync(leases) && (await readdir(leases)).some((n) => n.startsWith(`${put.child.pid}-`))), 60_000, 'the put to write');
  t.is(put.child.exitCode, null, `the put is still running: ${put.stderr}`);

  const waited = ok(t, await runCli(['gc', store, '--wait', '1']), 'gc --wait 1');
  t.regex(waited.stdout, /^freed 0 fragments/m);
  t.regex(waited.stdout, new RegExp(`^deleted nothing condemned: 1 writer\\(s\\) still running from before: .*\\(pid ${put.child.pid} on .*; run gc again once they end$`, 'm'));
  ok(t, await runCli(['get', store, junk, join(work.path, 'busy-junk-back')]), 'the forgotten snapshot still reads: nothing was deleted');

  // A gc that waits up to 30 s for the put holds the gc lock meanwhile.
  const first = startCli(['gc', store, '--wait', '30']);
  t.teardown(() => {
    if (first.child.exitCode === null) first.child.kill('SIGKILL');
  });
  const lock = join(store, 'gc', 'default', 'lock');
  await until(async () => first.child.exitCode !== null || (existsSync(lock) && (await readFile(lock, 'utf8').catch(() => '')).includes(`"pid":${first.child.pid}`)), 30_000, 'the first gc to take the lock');
  t.is(first.child.exitCode, null, `the first gc is waiting: ${first.stdout}${first.stderr}`);
  const second = await runCli(['gc', store]);
  oneLineError(t, second, 9, new RegExp(`is being garbage-collected by pid ${first.child.pid} on .* \\(gc, since `));
  t.is(put.child.exitCode, null, 'all of this happened while the put ran');

  put.child.stdin!.end(randomBytes(1024 * 1024));
  t.is(await put.done, 0, put.stderr);
  t.is(await first.done, 0, first.stderr);
  t.regex(first.stdout, /^freed [1-9]\d* fragments/m, `once the put ended the waiting gc swept: ${first.stdout}`);
  t.notRegex(first.stdout, /deleted nothing/);
  t.not((await runCli(['get', store, junk, join(work.path, 'busy-junk-back-2')])).code, 0, 'the forgotten snapshot is gone');
  ok(t, await runCli(['verify', store]), 'verify');

  // Every file gc and the writers left under STORE/gc is private.
  const bad: string[] = [];
  const gcDir = join(store, 'gc');
  for (const rel of ['', ...(await readdir(gcDir, { recursive: true }))]) {
    const st = await lstat(join(gcDir, rel));
    const mode = st.mode & 0o7777;
    if (st.isDirectory() ? mode !== 0o700 : mode !== 0o600) bad.push(`${rel || '.'} ${mode.toString(8)}`);
  }
  t.deepEqual(bad, []);
  t.true(existsSync(join(gcDir, 'default', 'mark')), 'the mark is there to check');
});
