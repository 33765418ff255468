// Child process of test/store/full-disk.test.ts: drives an lmdb store into a commit that fails inside
// LMDB (its space reservation taken away, the disk filled by someone else) and reports what the store
// did, as one JSON line. A process of its own, because a rejection lmdb-js leaves unhandled would
// end it (the CLI and the mount live the same way); the test runner would report it instead.

import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FragfsError } from '../../src/errors.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { fillDisk } from '../helpers/tmpfs.js';

const disk = process.argv[2]!;
const root = join(disk, 'store');
const ns = { space: 'main', kind: 'data' } as const;
const id = () => randomBytes(32).toString('hex');
const MIB = 1024 * 1024;

const store = await LmdbStore.open(root);
const kept = id();
await store.put(ns, kept, randomBytes(MIB));
Reflect.set(store, 'reserve', { reserve: async () => 0, release: () => undefined, giveBack: () => undefined });
const ballast = await fillDisk(disk, 512 * 1024);
const failures: string[] = [];
for (let i = 0; i < 6 && failures.length === 0; i++) {
  try {
    await store.put(ns, id(), randomBytes(2 * MIB));
  } catch (e) {
    failures.push(e instanceof FragfsError ? `${e.code}: ${e.message}` : `not a FragfsError: ${String(e)}`);
  }
}
await store.sync();
await rm(ballast);
const later = id();
await store.put(ns, later, randomBytes(MIB));
await store.close();
const ro = await LmdbStore.open(root, { readOnly: true });
const present = [await ro.has(ns, kept), await ro.has(ns, later)];
await ro.close();
// Let any leftover rejection surface before the report: it would end the process first.
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(`${JSON.stringify({ failures, present })}\n`);
