// kill -9 test shared by the on-disk backends: a child process puts fragments (id = SHA-256 of the
// bytes) and is killed mid-stream; after reopening, every put the child saw resolve is present,
// and every listed fragment is whole (its bytes hash to its id): no partial fragment under a name.

import type { ExecutionContext, TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBackend } from '../../src/store/open-backend.js';
import { FRAGMENT_KINDS, type BackendName } from '../../src/store/store.js';
import { collect } from './conformance.js';

const WRITER = fileURLToPath(new URL('./crash-writer.js', import.meta.url));

/**
 * Runs `script` (a child node process) until it printed more than `lines` lines, then kills it with
 * SIGKILL (the test fails if it ended by itself first); returns the lines it printed.
 */
export async function runUntilKilled(t: ExecutionContext, script: string, args: string[], lines: number): Promise<string[]> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  // 'close', not 'exit': the child's last lines can still be in the pipe when 'exit' comes, and a
  // line lost there (an "X" before a purge) made a purged fragment look lost.
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, sig) => resolve(sig)));
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').length > lines) resolve();
    });
    void exited.then(() => resolve());
  });
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  return out.split('\n');
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
