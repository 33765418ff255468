// Codec threads stopped while they still load their module: a pool closed, or a process ending,
// just after its first tasks were handed out. On Node 20.19+ piscina's require() of the ES module
// worker loaded it synchronously (require(esm)), and a thread stopped during that synchronous
// instantiation could abort the whole process ("FATAL ERROR: v8::Module::IsGraphAsync must be used on an
// instantiated module", about 1 `fragfs snapshot` in 18). The threads now never load it that way
// (checked through Node's own ESM debug log); and since the race is rare, two bounded loops run it
// many times, each in a child process so that an abort is seen as that child's death.

import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

const POOL_URL = new URL('../../src/codec/codec-pool.js', import.meta.url).href;

/** Pools whose threads are stopped at every moment of their loading, then a process exit mid-load. */
const STRESS = `
const { CodecPool } = await import(${JSON.stringify(POOL_URL)});
const until = Date.now() + Number(process.argv[1]);
let rounds = 0;
while (Date.now() < until) {
  const pool = new CodecPool({ convergenceSecret: new Uint8Array(32), threads: 4, inlineBelow: 0 });
  for (let i = 0; i < 6; i++) pool.encode(new Uint8Array(20000).fill(i)).catch(() => undefined);
  await new Promise((r) => setTimeout(r, rounds % 40));
  await pool.close();
  rounds++;
}
const last = new CodecPool({ convergenceSecret: new Uint8Array(32), threads: 4, inlineBelow: 0 });
for (let i = 0; i < 6; i++) last.encode(new Uint8Array(20000).fill(i)).catch(() => undefined);
process.stdout.write(String(rounds));
setTimeout(() => process.exit(0), 5);
`;

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test('codec threads load their module with import(), never with a synchronous require() of an ES module', async (t) => {
  const once = `
const { CodecPool } = await import(${JSON.stringify(POOL_URL)});
const pool = new CodecPool({ convergenceSecret: new Uint8Array(32), threads: 2, inlineBelow: 0 });
await Promise.all([pool.encode(new Uint8Array(20000).fill(1)), pool.encode(new Uint8Array(20000).fill(2))]);
await pool.close();
`;
  const r = await run(['--input-type=module', '-e', once], { ...process.env, NODE_DEBUG: 'esm' });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /codec-worker\.js/, 'the debug log names the worker module');
  t.notRegex(r.stderr, /importSyncForRequire[^\n]*codec-worker\.js|ModuleJobSync\.runSync/);
});

test('codec pools closed, and processes ending, while their threads load never abort', async (t) => {
  for (let child = 0; child < 2; child++) {
    const r = await run(['--input-type=module', '-e', STRESS, '3000']);
    t.is(r.signal, null, r.stderr);
    t.is(r.code, 0, r.stderr);
    t.notRegex(r.stderr, /FATAL ERROR/);
    t.true(Number(r.stdout) > 10, `rounds: ${r.stdout}`);
  }
});

test('fragfs put run again and again ends cleanly every time (bounded to about 12 s)', async (t) => {
  const work = await tempDir('fragfs-put-loop-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir', { blockSize: 65536 });
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  const until = Date.now() + 12_000;
  let runs = 0;
  while (Date.now() < until) {
    // New content each time, several blocks, so every put hands blocks to the codec threads.
    await writeFile(join(tree, `f${runs}`), Buffer.alloc(300_000, runs % 256));
    const r = await runCli(['put', store, tree, '--no-progress', '-q']);
    t.notRegex(r.stderr, /FATAL ERROR|internal error/);
    if (r.code !== 0) {
      t.fail(`run ${runs}: exit ${r.code}: ${r.stderr}`);
      return;
    }
    runs++;
  }
  t.log(`${runs} puts`);
  t.true(runs >= 3, `${runs} puts`);
});
