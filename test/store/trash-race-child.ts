// Child process for the cross-process trash test: plays a gc (trash, then untrash or purge) or a
// writer (put, untrash, then read what it was told is there) on a small pool of fragments whose
// id is the SHA-256 of their bytes, for a number of rounds, and prints one JSON line: what it saw.
// Usage: node trash-race-child.js <backend> <location> gc|writer <rounds> <seed>

import { createHash } from 'node:crypto';
import { FragfsError } from '../../src/errors.js';
import { openBackend } from '../../src/store/open-backend.js';
import type { BackendName, Namespace } from '../../src/store/store.js';

const [backend, location, role, roundsArg, seedArg] = process.argv.slice(2) as [BackendName, string, string, string, string];
const rounds = Number(roundsArg);
let seed = Number(seedArg);
const random = (n: number): number => {
  // xorshift: each child its own sequence, reproducible from the seed it was given.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};

/** The pool: the same 16 fragments in every child (two of them raw, the rest block-shaped). */
const POOL = Array.from({ length: 16 }, (_, i) => {
  const bytes = Buffer.alloc(2000 + i * 997, i + 1);
  bytes[0] = i % 8 === 0 ? 0x01 : 0xc0;
  return { id: createHash('sha256').update(bytes).digest('hex'), bytes };
});

const store = await openBackend(backend, location);
const ns: Namespace = { space: 'main', kind: 'data' };
const seen = { rounds: 0, whole: 0, missing: 0, bad: [] as string[] };
const describe = (e: unknown) => (e instanceof FragfsError ? `${e.code}: ${e.message}` : String(e));

for (let r = 0; r < rounds; r++) {
  const f = POOL[random(POOL.length)]!;
  try {
    if (role === 'gc') {
      await store.trash(ns, f.id);
      await (random(2) === 0 ? store.untrash(ns, f.id) : store.purge(ns, f.id));
    } else {
      if (random(2) === 0) await store.put(ns, f.id, f.bytes);
      await store.untrash(ns, f.id);
      if (await store.has(ns, f.id)) {
        const got = await store.get(ns, f.id).catch((e: unknown) => e);
        if (got instanceof FragfsError && got.code === 'MISSING_FRAGMENT') seen.missing++;
        else if (got instanceof Uint8Array && createHash('sha256').update(got).digest('hex') === f.id) seen.whole++;
        else seen.bad.push(`${f.id}: ${got instanceof Uint8Array ? `${got.length} bytes, not the fragment` : describe(got)}`);
      }
    }
  } catch (e) {
    seen.bad.push(`${f.id}: ${describe(e)}`);
  }
  seen.rounds++;
}
await store.close();
process.stdout.write(`${JSON.stringify(seen)}\n`);
