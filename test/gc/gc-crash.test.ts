// kill -9 of `fragfs gc` at random points, on the dir and lmdb backends: a store with two kept
// snapshots (sharing files and folders with the others) and thousands of fragments of forgotten
// snapshots is collected by gc processes killed after random delays, spread over a whole run and
// over its sweep (after its mark). After each kill the store verifies (no fragment missing or
// corrupt) and both kept snapshots restore byte for byte; a last gc run to its end leaves nothing
// reclaimable, an empty trash and a swept mark.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { readMark } from '../../src/gc/gc-files.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import type { BackendName } from '../../src/store/store.js';
import { CLI_PATH, runCli, TEST_PASSPHRASE, type CliResult } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';

/** Kills per backend. */
const KILLS = 6;
/**
 * Snapshots made and forgotten: three at first, then one more before each kill, so that every gc
 * finds about as much new garbage as the one before (besides what a killed run left).
 */
const GARBAGE = KILLS + 3;
const FORGOTTEN_FIRST = 3;
const FILES_PER_SNAPSHOT = 200;

async function smallFiles(dir: string, n: number, prefix: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) await writeFile(join(dir, `${prefix}${i}`), randomBytes(200 + ((i * 7919) % 3000)));
}

function ok(t: ExecutionContext, r: CliResult, what: string): CliResult {
  if (r.code !== 0) t.fail(`${what} exited ${r.code}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  return r;
}

interface GcRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
  /** Milliseconds from the start to the "mark K:" line (-1 when none came). */
  markMs: number;
  /** Whether it had exited by itself when the kill was sent. */
  finished: boolean;
}

/**
 * `fragfs gc -v STORE`, killed with SIGKILL `delayMs` after it starts, or, with `afterMark`, that
 * long after it prints its mark; never killed when delayMs is undefined.
 */
function gcRun(store: string, delayMs: number | undefined, afterMark = false): Promise<GcRun> {
  return new Promise((resolveRun) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI_PATH, 'gc', store, '-v'], { env: { ...process.env, FRAGFS_PASSPHRASE: TEST_PASSPHRASE }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let markMs = -1;
    let exited = false;
    let finished = false;
    const kill = () => {
      if (exited) finished = true;
      else child.kill('SIGKILL');
    };
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (markMs < 0 && /gc: mark \d+: /.test(stderr)) {
        markMs = Date.now() - started;
        if (afterMark && delayMs !== undefined) setTimeout(kill, delayMs);
      }
    });
    if (!afterMark && delayMs !== undefined) setTimeout(kill, delayMs);
    child.on('exit', () => (exited = true));
    child.on('close', (code, signal) => {
      if (afterMark && markMs < 0) finished = true;
      resolveRun({ code, signal, stderr, ms: Date.now() - started, markMs, finished });
    });
  });
}

/** Removes a snapshot's ref, as `fragfs forget` does (in process: no CLI start-up in the loop). */
async function forget(store: string, key: string): Promise<void> {
  const repo = await Repo.open({ storePath: store, passphrase: TEST_PASSPHRASE });
  try {
    await repo.store.delete(repo.refNs, key);
    await repo.sync();
  } finally {
    await repo.close();
  }
}

/** What is left in the backend's trash (docs/FORMAT.md, src/store): files under STORE/<space>/trash, or the LMDB trash databases. */
async function trashLeft(store: string, backend: BackendName): Promise<number> {
  if (backend === 'dir') {
    const dir = join(store, 'default', 'trash');
    if (!existsSync(dir)) return 0;
    let n = 0;
    for (const rel of await readdir(dir, { recursive: true })) if ((await stat(join(dir, rel))).isFile()) n++;
    return n;
  }
  const repo = await Repo.open({ storePath: store, passphrase: TEST_PASSPHRASE, readOnly: true });
  try {
    let n = 0;
    for (const ns of [repo.dataNs, repo.metaNs]) for await (const _ of repo.store.listTrash(ns)) n++;
    return n;
  } finally {
    await repo.close();
  }
}

for (const backend of ['dir', 'lmdb'] as const) {
  test(`${backend}: gc killed with SIGKILL at ${KILLS} random points never costs a kept snapshot a fragment; a last gc cleans up`, async (t) => {
    const started = Date.now();
    const work = await tempDir(`fragfs-gc-crash-${backend}-`);
    t.teardown(() => work.remove());
    const store = join(work.path, 'store');
    await createStore(store, backend);

    // Two kept snapshots and GARBAGE others; all share one folder, so their metadata overlaps too.
    const shared = join(work.path, 'shared');
    await smallFiles(shared, 60, 's');
    const garbage: string[] = [];
    const kept: { key: string; source: string }[] = [];
    const repo = await Repo.open({ storePath: store, passphrase: TEST_PASSPHRASE });
    try {
      for (let i = 0; i < GARBAGE + 2; i++) {
        const src = join(work.path, `tree${i}`);
        await smallFiles(join(src, 'own'), i < 2 ? 80 : FILES_PER_SNAPSHOT, `f${i}-`);
        await cp(shared, join(src, 'shared'), { recursive: true, preserveTimestamps: true });
        const key = (await putPaths(repo, [src], { parent: false })).key;
        if (i < 2) kept.push({ key, source: src });
        else {
          garbage.push(key);
          await rm(src, { recursive: true });
        }
      }
    } finally {
      await repo.close();
    }
    ok(t, await runCli(['forget', store, ...garbage.slice(0, FORGOTTEN_FIRST)]), 'forget');
    const reserve = garbage.slice(FORGOTTEN_FIRST);

    // How long a whole gc takes here: measured on a copy of the store.
    const copy = join(work.path, 'copy');
    await cp(store, copy, { recursive: true });
    const probe = await gcRun(copy, undefined);
    t.is(probe.code, 0, probe.stderr);
    t.true(probe.markMs > 0, probe.stderr);
    await rm(copy, { recursive: true });
    t.log(`${backend}: setup ${Date.now() - started} ms; a whole gc takes ${probe.ms} ms, its sweep ${probe.ms - probe.markMs} ms`);

    // Kill delays follow what runs take: a run that ends by itself tells how long the next will.
    let runMs = probe.ms;
    let sweepMs = probe.ms - probe.markMs;
    const phases: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      const next = reserve.shift();
      if (next !== undefined) await forget(store, next);
      // Every third kill lands anywhere in a run; the others within its sweep, in its first half: a
      // sweep measured whole includes the process's exit, and a kill near its end finds it gone.
      const afterMark = k % 3 !== 0;
      const delay = Math.floor(Math.random() * (afterMark ? sweepMs / 2 : runMs));
      const r = await gcRun(store, delay, afterMark);
      // A kill sent as the process exits by itself finds it gone: that run ended too.
      const ended = r.finished || r.signal !== 'SIGKILL';
      const phase = ended ? 'after it ended' : r.markMs < 0 ? 'before its mark' : 'after its mark';
      phases.push(phase);
      if (ended) {
        t.is(r.code, 0, r.stderr);
        runMs = r.ms;
        if (r.markMs > 0) sweepMs = r.ms - r.markMs;
      }
      t.notRegex(r.stderr, /internal error/, r.stderr);

      const what = `after kill ${k + 1} (${afterMark ? 'mark' : 'start'} + ${delay} ms, ${phase})`;
      const [verify] = await Promise.all([
        runCli(['verify', store]),
        ...kept.map(async ({ key, source }, i) => {
          const dest = join(work.path, `back-${k}-${i}`);
          ok(t, await runCli(['get', store, key, dest]), `get ${what}`);
          // A single folder put in process is stored under its own name.
          const root = existsSync(join(dest, basename(source))) ? join(dest, basename(source)) : dest;
          t.deepEqual(await describeTree(root), await describeTree(source), `kept snapshot ${i + 1} ${what}`);
          await rm(dest, { recursive: true, force: true });
        }),
      ]);
      t.is(verify.code, 0, `${what}: ${verify.stdout.slice(-2000)}${verify.stderr}`);
    }
    const count = (p: string) => phases.filter((x) => x === p).length;
    t.log(`${backend}: ${KILLS} kills: ${count('before its mark')} before the mark, ${count('after its mark')} after it, ${count('after it ended')} too late`);
    t.true(count('after its mark') >= 3, `kills during the sweep: ${phases.join(', ')}`);

    const last = await gcRun(store, undefined);
    t.is(last.code, 0, last.stderr);
    const stats = JSON.parse(ok(t, await runCli(['stats', store, '--json']), 'stats').stdout) as { reclaimableFragments: number; snapshots: number };
    t.is(stats.reclaimableFragments, 0, 'nothing reclaimable is left');
    t.is(stats.snapshots, 2);
    t.is(await trashLeft(store, backend), 0, 'the trash is empty');
    t.is((await readMark(store, 'default'))?.swept, true, 'the last mark is swept');
    ok(t, await runCli(['verify', store]), 'verify');
    t.log(`${backend}: ${Date.now() - started} ms in all`);
  });
}
