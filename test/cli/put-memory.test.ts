// put's memory follows its bounds (folders, files and blocks in flight) and the largest folder, not
// the tree: the peak RSS of a put child process (VmHWM, read from /proc while it runs) over 100,000
// empty files in 100 folders stays within a margin of the peak over 1,000 of them in one folder,
// for the first put and for a re-put.

import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_PATH, TEST_PASSPHRASE } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

/** Runs `fragfs put` and returns its exit code and the highest VmHWM (KiB) seen while it ran. */
function putPeak(store: string, tree: string): Promise<{ code: number; peakKiB: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, 'put', store, tree], {
      env: { ...process.env, FRAGFS_PASSPHRASE: TEST_PASSPHRASE },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let peakKiB = 0;
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // VmHWM is the process's own high-water mark: sampling it only has to catch the process alive.
    const sample = (): void => {
      readFile(`/proc/${child.pid}/status`, 'utf8').then(
        (s) => (peakKiB = Math.max(peakKiB, Number(/^VmHWM:\s+(\d+) kB/m.exec(s)?.[1] ?? 0))),
        () => undefined,
      );
    };
    const timer = setInterval(sample, 50);
    child.on('error', reject);
    child.on('exit', () => clearInterval(timer));
    child.on('close', (code) => resolve({ code: code ?? -1, peakKiB, stderr }));
  });
}

function emptyFiles(root: string, folders: number, perFolder: number): void {
  for (let d = 0; d < folders; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perFolder; f++) writeFileSync(join(dir, `f${f}`), '');
  }
}

test('put and re-put of 100,000 empty files peak within 128 MiB of the same over 1,000', async (t) => {
  const work = await tempDir('fragfs-put-memory-');
  t.teardown(work.remove);
  const small = join(work.path, 'small');
  const big = join(work.path, 'big');
  emptyFiles(small, 1, 1000);
  emptyFiles(big, 100, 1000);
  const store = join(work.path, 'store');
  await createStore(store, 'lmdb');
  const peaks: Record<string, number> = {};
  for (const [label, tree] of [
    ['small', small],
    ['small again', small],
    ['big', big],
    ['big again', big],
  ] as const) {
    const r = await putPeak(store, tree);
    t.is(r.code, 0, r.stderr);
    peaks[label] = Math.round(r.peakKiB / 1024);
  }
  t.log(`peak RSS, MiB: ${JSON.stringify(peaks)}`);
  // The walk's live heap is about 12 MiB whatever the tree (the folders in flight); the rest of the
  // margin is V8 letting garbage build up before it collects. A whole-tree scan of 100,000 entries
  // took 280-430 MiB more than the small tree here.
  t.true(peaks['big']! - peaks['small']! < 128, `first put: ${peaks['big']} vs ${peaks['small']} MiB`);
  t.true(peaks['big again']! - peaks['small again']! < 128, `re-put: ${peaks['big again']} vs ${peaks['small again']} MiB`);
});
