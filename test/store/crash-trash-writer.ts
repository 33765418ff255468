// Child process for the kill -9 trash tests: puts fragments whose id is the SHA-256 of their bytes,
// then trashes, untrashes, trashes again and purges them, as fast as it can, and writes each step to
// STEP_FD once it resolved ("P kind id" put, "T" trashed, "U" untrashed; "X" is written before a
// purge starts), until it is killed.
// Usage: node crash-trash-writer.js <backend> <location>

import { createHash, randomBytes } from 'node:crypto';
import { openBackend } from '../../src/store/open-backend.js';
import type { BackendName, FragmentKind, Namespace } from '../../src/store/store.js';
import { writeStep } from './crash-steps.js';

const [backend, location] = process.argv.slice(2) as [BackendName, string];
const store = await openBackend(backend, location);
// Mostly data: the split backend moves those as header/payload pairs.
const kinds: FragmentKind[] = ['data', 'data', 'meta', 'ref'];
let n = 0;
const say = (step: string, ns: Namespace, id: string) => writeStep(`${step} ${ns.kind} ${id}`);

async function writer(): Promise<never> {
  for (;;) {
    const i = n++;
    const bytes = randomBytes(1 + Math.floor(Math.random() * 256 * 1024));
    if (i % 3 !== 0) bytes[0] = 0xc0;
    const id = createHash('sha256').update(bytes).digest('hex');
    const ns: Namespace = { space: 'main', kind: kinds[i % kinds.length]! };
    await store.put(ns, id, bytes);
    say('P', ns, id);
    await store.trash(ns, id);
    say('T', ns, id);
    await store.untrash(ns, id);
    say('U', ns, id);
    if (i % 2 === 0) continue;
    await store.trash(ns, id);
    say('T', ns, id);
    if (i % 4 === 1) {
      say('X', ns, id);
      await store.purge(ns, id);
    }
  }
}
await Promise.all([writer(), writer(), writer(), writer()]);
