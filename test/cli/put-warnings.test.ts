// put through the real CLI while another process rewrites a large file in a loop (shrinking it,
// growing it, new bytes each time): every put either stores one version the writer wrote, byte for
// byte, or (the file never held still over three reads) warns naming it, exits 11 and still prints
// the meta key last, with the file as read and no zeros standing in for bytes it did not read.
// An unreadable file inside a tree is left out the same way.

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_PATH, FAST_KDF, lastLine, runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { canRunAsNobody, testIf } from '../helpers/capabilities.js';

const BIG = 32 * 1024 * 1024;
const SMALL = 1024 * 1024 + 12345;

/**
 * Version k of the file: SMALL bytes for odd k, BIG for even, every byte (k % 250) + 1. It is cut
 * down in place, then rewritten from byte 0, so it never holds a hole or a zero.
 */
const WRITER = `
const fs = require('node:fs');
const [file, big, small] = process.argv.slice(1).map((x, i) => (i === 0 ? x : Number(x)));
const fd = fs.openSync(file, 'r+');
const chunk = Buffer.alloc(1024 * 1024);
let k = 0;
function step() {
  k++;
  const size = k % 2 ? small : big;
  chunk.fill((k % 250) + 1);
  if (fs.fstatSync(fd).size > size) fs.ftruncateSync(fd, size);
  for (let at = 0; at < size; at += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
  setTimeout(step, 20 + (k % 7) * 30);
}
process.stdout.write('ready\\n');
step();
`;

function versionSize(fill: number): number {
  return (fill - 1) % 2 === 1 ? SMALL : BIG;
}

test('put while a writer rewrites a large file: one version byte for byte, or a warning, exit 11 and no zeros', async (t) => {
  const work = await tempDir('fragfs-put-race-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'steady.txt'), 'steady\n');
  const file = join(tree, 'moving.bin');
  await writeFile(file, Buffer.alloc(BIG, 1));

  const writer = spawn(process.execPath, ['-e', WRITER, file, String(BIG), String(SMALL)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (writer.exitCode === null) writer.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));

  let hits = 0;
  const outcomes: string[] = [];
  // The race is real, so how often it is hit varies: keep putting until it was hit twice (here 3-4
  // puts; a CI run under load once got 1 hit in 12, so up to 30).
  for (let run = 0; run < 30 && hits < 2; run++) {
    const put = await runCli(['put', store, tree, '--no-progress']);
    const key = lastLine(put.stdout);
    t.regex(key, /^[0-9a-f]{64}$/, `run ${run}: the meta key is the last line (${put.stderr})`);
    const dest = join(work.path, `restore-${run}`);
    const get = await runCli(['get', store, key, dest]);
    t.is(get.code, 0, get.stderr);
    const back = await readFile(join(dest, 'moving.bin'));
    t.is(await readFile(join(dest, 'steady.txt'), 'utf8'), 'steady\n');
    if (put.code === 0) {
      const fill = back[0]!;
      t.true(back.length === versionSize(fill) && back.every((b) => b === fill), `run ${run}: ${back.length} bytes are not one version`);
      if (/changed while they were read and were read again/.test(put.stderr)) hits++;
      outcomes.push(`0 (${back.length} bytes of ${fill})`);
    } else {
      t.is(put.code, 11, put.stderr);
      const lines = put.stderr.trim().split('\n').filter((l) => l.startsWith('fragfs: '));
      t.regex(lines[0]!, /^fragfs: warning: .*moving\.bin changed while it was read \(3 times\); stored as the last read found it/);
      t.regex(lines[lines.length - 1]!, /^fragfs: put completed with 1 warning/);
      t.notRegex(put.stderr, /\n\s+at /);
      t.true(back.length <= BIG);
      t.is(back.indexOf(0), -1, `run ${run}: a zero byte stands in for bytes that were not read`);
      hits++;
      outcomes.push(`11 (${back.length} bytes)`);
    }
    const verify = await runCli(['verify', store, key]);
    t.is(verify.code, 0, verify.stdout + verify.stderr);
  }
  t.log(`outcomes: ${outcomes.join(', ')}`);
  t.true(hits >= 2, `the race was hit ${hits} times in ${outcomes.length} puts`);
});

testIf(canRunAsNobody, 'running the CLI as nobody needs root, runuser and a nobody account')('an unreadable file inside a tree is left out with a warning and exit 11 (as an unprivileged user)', async (t) => {
  const work = await tempDir('fragfs-put-unreadable-');
  t.teardown(work.remove);
  await chmod(work.path, 0o777);
  const tree = join(work.path, 'tree');
  await mkdir(tree, { mode: 0o755 });
  await chmod(tree, 0o755);
  await writeFile(join(tree, 'open.txt'), 'open\n', { mode: 0o644 });
  await writeFile(join(tree, 'secret.txt'), 'no\n', { mode: 0o600 });
  const store = join(work.path, 'store');
  const asNobody = (args: string[]) =>
    spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, CLI_PATH, ...args], {
      env: { ...process.env, FRAGFS_PASSPHRASE: 'p' },
      encoding: 'utf8',
    });
  const init = asNobody(['init', store, '--backend', 'dir', ...FAST_KDF]);
  t.is(init.status, 0, init.stderr);
  const put = asNobody(['put', store, tree]);
  t.is(put.status, 11, put.stderr);
  t.regex(put.stderr, /^fragfs: warning: .*secret\.txt could not be read \(EACCES/m);
  t.regex(put.stderr, /^fragfs: put completed with 1 warning/m);
  const key = lastLine(put.stdout);
  t.regex(key, /^[0-9a-f]{64}$/);
  const dest = join(work.path, 'restore');
  const get = asNobody(['get', store, key, dest]);
  t.is(get.status, 0, get.stderr);
  t.deepEqual(await readdir(dest), ['open.txt']);
});
