// kill -9 test shared by the on-disk backends: a child process puts fragments (id = SHA-256 of the
// bytes) and is killed mid-stream; after reopening, every put the child saw resolve is present,
// and every listed fragment is whole (its bytes hash to its id): no partial fragment under a name.

import type { ExecutionContext, TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBackend } from '../../src/store/open-backend.js';
import { FRAGMENT_KINDS, type BackendName } from '../../src/store/store.js';
import { collect } from './conformance.js';

const WRITER = fileURLToPath(new URL('./crash-writer.js', import.meta.url));

/**
 * Runs `script` (a child node process) until it wrote more than `lines` step lines, then kills it
 * with SIGKILL (the test fails if it ended by itself first); returns the lines it wrote. The steps
 * come through a file, the child's descriptor 3 (crash-steps.ts), not stdout: a line written into a
 * full pipe waited inside the child, and a kill lost it after the child had gone on to the next step
 * (an "X" before a purge: the purged fragment looked lost).
 */
export async function runUntilKilled(t: ExecutionContext, script: string, args: string[], lines: number): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-crash-steps-'));
  try {
    const stepsPath = join(dir, 'steps');
    const steps = await open(stepsPath, 'w', 0o600);
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'ignore', 'inherit', steps.fd] });
    // The child holds its own copy of the descriptor from here on.
    await steps.close();
    let ended = false;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, sig) => resolve(sig)));
    void exited.then(() => (ended = true));
    while (!ended && (await readFile(stepsPath, 'utf8')).split('\n').length <= lines) await Promise.race([sleep(5), exited]);
    child.kill('SIGKILL');
    t.is(await exited, 'SIGKILL');
    return (await readFile(stepsPath, 'utf8')).split('\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function runCrashTest(test: TestFn, backend: BackendName): void {
  test(`${backend}: kill -9 during puts leaves only whole fragments and keeps every resolved put`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), `fragfs-crash-${backend}-`));
    try {
      const resolved = (await runUntilKilled(t, WRITER, [backend, dir], 60))
        .filter((l) => /^(data|meta|ref) [0-9a-f]{64}$/.test(l))
        .map((l) => l.split(' ') as [(typeof FRAGMENT_KINDS)[number], string]);
      t.true(resolved.length >= 60);

      const store = await openBackend(backend, dir);
      try {
        for (const [kind, id] of resolved) {
          t.true(await store.has({ space: 'main', kind }, id), `${kind} ${id} resolved before the kill`);
        }
        let listed = 0;
        for (const kind of FRAGMENT_KINDS) {
          for (const id of await collect(store.list({ space: 'main', kind }))) {
            const bytes = await store.get({ space: 'main', kind }, id);
            t.is(createHash('sha256').update(bytes).digest('hex'), id, `${kind} ${id} is whole`);
            listed++;
          }
        }
        t.true(listed >= resolved.length);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
