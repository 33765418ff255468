// Child process for the kill -9 tests: puts fragments whose id is the SHA-256 of their bytes into a
// store as fast as it can and writes each id with writeStep once its put resolved, until it is killed.
// Usage: node crash-writer.js <backend> <location>

import { createHash, randomBytes } from 'node:crypto';
import { openBackend } from '../../src/store/open-backend.js';
import type { BackendName } from '../../src/store/store.js';
import { writeStep } from './crash-steps.js';

const [backend, location] = process.argv.slice(2) as [BackendName, string];
const store = await openBackend(backend, location);
const kinds = ['data', 'meta', 'ref'] as const;
let n = 0;
async function writer(): Promise<never> {
  for (;;) {
    const size = 1 + Math.floor(Math.random() * 512 * 1024);
    const bytes = randomBytes(size);
    if (n % 2 === 0) bytes[0] = 0xc0;
    const id = createHash('sha256').update(bytes).digest('hex');
    const kind = kinds[n++ % 3]!;
    await store.put({ space: 'main', kind }, id, bytes);
    writeStep(`${kind} ${id}`);
  }
}
await Promise.all([writer(), writer(), writer(), writer()]);
