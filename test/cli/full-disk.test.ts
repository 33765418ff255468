// A full disk through the CLI, on every backend (a real tmpfs filled with a ballast file): init and
// put exit 7 with one line, init leaves the path as it was, a full store still lists, reads,
// restores and verifies, and once space is freed put goes on and the store verifies.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FAST_KDF, lastLine, runCli, type CliResult } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';
import { canMountTmpfs, testIf } from '../helpers/capabilities.js';

const tmpfsTest = testIf(canMountTmpfs, 'the full-disk tests need root to mount a tmpfs');

const BACKENDS = ['lmdb', 'dir', 'split'] as const;

function diskFull(t: ExecutionContext, r: CliResult, what: RegExp): void {
  t.is(r.code, 7, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, `one line: ${r.stderr}`);
  t.regex(lines[0]!, /^fragfs: .*the disk is full/);
  t.regex(lines[0]!, what);
}

for (const backend of BACKENDS) {
  tmpfsTest(`${backend}: init on a full disk exits 7 and leaves no store behind`, async (t) => {
    const disk = await mountTmpfs(t);
    const given = join(disk, 'given');
    await mkdir(given);
    await chmod(given, 0o755);
    await fillDisk(disk);
    diskFull(t, await runCli(['init', join(disk, 'new', 'store'), '--backend', backend, ...FAST_KDF]), /store/);
    diskFull(t, await runCli(['init', given, '--backend', backend, ...FAST_KDF]), /given/);
    t.deepEqual((await readdir(disk)).sort(), ['ballast', 'given'], 'nothing new at the path');
    t.deepEqual(await readdir(given), [], 'the empty folder it was given is empty again');
    t.is((await stat(given)).mode & 0o777, 0o755, 'with its mode');
  });

  tmpfsTest(`${backend}: put on a full disk exits 7; a full store still reads; after freeing space put goes on`, async (t) => {
    const disk = await mountTmpfs(t);
    const work = await tempDir('fragfs-full-');
    t.teardown(work.remove);
    const store = join(disk, 'store');
    await createStore(store, backend);
    const small = join(work.path, 'small.bin');
    await writeFile(small, randomBytes(1_500_000));
    const first = await runCli(['put', store, small, '--name', 'first']);
    t.is(first.code, 0, first.stderr);
    const key = lastLine(first.stdout);

    const ballast = await fillDisk(disk, 256 * 1024);
    const big = join(work.path, 'big.bin');
    await writeFile(big, randomBytes(12 * 1024 * 1024));
    diskFull(t, await runCli(['put', store, big]), /fragment [0-9a-f]/);

    const ballast2 = await fillDisk(disk, 0, 'ballast-2');
    const ls = await runCli(['ls', store, 'first']);
    t.is(ls.code, 0, ls.stderr);
    t.regex(ls.stdout, /small\.bin/);
    const cat = await runCli(['cat', store, key]);
    t.is(cat.code, 0, cat.stderr);
    const dest = join(work.path, 'restored.bin');
    const get = await runCli(['get', store, 'first', dest]);
    t.is(get.code, 0, get.stderr);
    t.true((await readFile(dest)).equals(await readFile(small)));
    const verifyFull = await runCli(['verify', store]);
    t.is(verifyFull.code, 0, verifyFull.stderr + verifyFull.stdout);
    const snapshots = await runCli(['snapshots', store]);
    t.is(snapshots.code, 0, snapshots.stderr);

    await rm(ballast);
    await rm(ballast2);
    const after = await runCli(['put', store, big, '--name', 'after']);
    t.is(after.code, 0, after.stderr);
    const verify = await runCli(['verify', store]);
    t.is(verify.code, 0, verify.stderr + verify.stdout);
    t.regex(verify.stdout, /checked 2 snapshots.*no problems/);
    const back = join(work.path, 'big-back.bin');
    t.is((await runCli(['get', store, 'after', back])).code, 0);
    t.true((await readFile(back)).equals(await readFile(big)));
  });
}
