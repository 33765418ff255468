// kill -9 test of the trash, shared by the file-tree backends: a child process puts, trashes,
// untrashes and purges fragments (id = SHA-256 of the bytes) and is killed mid-stream, several
// times over one store. After each kill the reopened store must hold every fragment the child put
// and did not start to purge, in place or in the trash, and whatever it shows must be whole.

import type { ExecutionContext, TestFn } from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBackend } from '../../src/store/open-backend.js';
import { FRAGMENT_KINDS, type BackendName, type FragmentKind, type Store } from '../../src/store/store.js';
import { collect } from './conformance.js';
import { runUntilKilled } from './crash-check.js';

const WRITER = fileURLToPath(new URL('./crash-trash-writer.js', import.meta.url));
const ROUNDS = 10;

/** Runs the child until it printed `lines` lines (at a random point of a move), then kills it. */
async function runAndKill(t: ExecutionContext, backend: BackendName, dir: string, lines: number): Promise<string[]> {
  return (await runUntilKilled(t, WRITER, [backend, dir], lines)).filter((l) => /^[PTUX] (data|meta|ref) [0-9a-f]{64}$/.test(l));
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Checks the store against what the child printed, then moves everything back and checks it whole. */
async function check(t: ExecutionContext, store: Store, log: string[], round: number): Promise<void> {
  const put = new Map<string, FragmentKind>();
  const purging = new Set<string>();
  for (const line of log) {
    const [step, kind, id] = line.split(' ') as [string, FragmentKind, string];
    if (step === 'P') put.set(id, kind);
    if (step === 'X') purging.add(id);
  }
  t.true(put.size >= 10, `round ${round}: the child got going (${put.size} puts)`);
  const place = new Map<FragmentKind, Set<string>>();
  const trash = new Map<FragmentKind, Set<string>>();
  for (const kind of FRAGMENT_KINDS) {
    const n = { space: 'main', kind };
    place.set(kind, new Set(await collect(store.list(n))));
    trash.set(kind, new Set(await collect(store.listTrash(n))));
    for (const id of place.get(kind)!) t.is(sha256(await store.get(n, id)), id, `round ${round}: ${kind} ${id} whole in place`);
  }
  let lost = 0;
  for (const [id, kind] of put) {
    if (purging.has(id)) continue;
    if (!place.get(kind)!.has(id) && !trash.get(kind)!.has(id)) lost++;
  }
  t.is(lost, 0, `round ${round}: fragments neither in place nor in the trash`);
  // Every trash copy is whole: moved back, it reads as its id. (Purged ones are left for the next round.)
  for (const kind of FRAGMENT_KINDS) {
    const n = { space: 'main', kind };
    for (const id of trash.get(kind)!) {
      if (place.get(kind)!.has(id)) continue;
      await store.untrash(n, id);
      t.is(sha256(await store.get(n, id)), id, `round ${round}: ${kind} ${id} whole from the trash`);
    }
  }
}

export function runTrashCrashTest(test: TestFn, backend: BackendName): void {
  test(`${backend}: kill -9 during trash, untrash and purge never loses a fragment or shows a partial one`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), `fragfs-crash-trash-${backend}-`));
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const log = await runAndKill(t, backend, dir, 100 + Math.floor(Math.random() * 200));
        const store = await openBackend(backend, dir);
        try {
          await check(t, store, log, round);
        } finally {
          await store.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
