// Cross-process test of the trash: one child plays a gc (trash, then untrash or purge) while two
// play writers (put, untrash, read) on the same few fragments of one store, as gc and writers do.
// No call may fail, no read may see anything but the whole fragment or MISSING_FRAGMENT, and
// afterwards every fragment is whole in place, whole in the trash, or gone.

import type { TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBackend } from '../../src/store/open-backend.js';
import type { BackendName, Namespace } from '../../src/store/store.js';
import { collect } from './conformance.js';

const CHILD = fileURLToPath(new URL('./trash-race-child.js', import.meta.url));
const ROUNDS = 1500;

interface Seen {
  rounds: number;
  whole: number;
  missing: number;
  bad: string[];
}

function run(backend: BackendName, dir: string, role: 'gc' | 'writer', seed: number): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, backend, dir, role, String(ROUNDS), String(seed)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    // 'close', not 'exit': the child's stdout may still hold its report when it has exited.
    child.on('close', (code, sig) => {
      if (code !== 0) return reject(new Error(`${role} child ended with ${code ?? sig}`));
      try {
        resolve(JSON.parse(out.trim()) as Seen);
      } catch {
        reject(new Error(`${role} child printed no report: ${JSON.stringify(out.slice(0, 200))}`));
      }
    });
  });
}

export function runTrashRaceTest(test: TestFn, backend: BackendName): void {
  test(`${backend}: a gc process trashing and purging beside writer processes putting and untrashing loses nothing`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), `fragfs-trash-race-${backend}-`));
    try {
      // Made first, so that the children do not race to create the store itself.
      await (await openBackend(backend, dir)).close();
      const [gc, w1, w2] = await Promise.all([run(backend, dir, 'gc', 11), run(backend, dir, 'writer', 23), run(backend, dir, 'writer', 37)]);
      for (const [who, seen] of [['gc', gc], ['writer 1', w1], ['writer 2', w2]] as const) {
        t.deepEqual(seen.bad, [], `${who}: ${seen.bad.slice(0, 5).join('; ')}`);
        t.is(seen.rounds, ROUNDS);
      }
      t.log(`writers read ${w1.whole + w2.whole} whole, ${w1.missing + w2.missing} trashed between has and get`);

      const store = await openBackend(backend, dir);
      try {
        const n: Namespace = { space: 'main', kind: 'data' };
        const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
        for (const id of await collect(store.list(n))) t.is(sha(await store.get(n, id)), id, `${id} whole in place`);
        for (const id of await collect(store.listTrash(n))) {
          if (await store.has(n, id)) continue;
          await store.untrash(n, id);
          t.is(sha(await store.get(n, id)), id, `${id} whole from the trash`);
        }
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
