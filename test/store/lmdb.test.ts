// The lmdb backend: the conformance suite on real LMDB files, its on-disk layout (the trash's
// too), read-only opens, kill -9 safety and the trash beside other processes.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { FragfsError } from '../../src/errors.js';
import { backendExists, openBackend } from '../../src/store/open-backend.js';
import { collect, ns, randomId, runConformance } from './conformance.js';
import { runCrashTest } from './crash-check.js';
import { runTrashRaceTest } from './trash-race-check.js';
import { tempFallocatesPastEnd, testIf } from '../helpers/capabilities.js';

async function tempStore(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'fragfs-lmdb-'));
}

runConformance(test, 'lmdb', async () => {
  const dir = await tempStore();
  return {
    open: () => openBackend('lmdb', dir),
    openReadOnly: () => openBackend('lmdb', dir, { readOnly: true }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
});

runCrashTest(test, 'lmdb');
runTrashRaceTest(test, 'lmdb');

test('lmdb: one file STORE/fragments.lmdb with databases <space>:<kind> keyed by the raw 32-byte id', async (t) => {
  const dir = await tempStore();
  try {
    t.false(await backendExists('lmdb', dir));
    const store = await openBackend('lmdb', dir);
    const id = randomId();
    await store.put(ns('data', 'alpha'), id, Buffer.from('data bytes'));
    await store.put(ns('meta', 'alpha'), id, Buffer.from('meta bytes'));
    await store.put(ns('ref', 'beta'), id, Buffer.from('ref bytes'));
    await store.close();
    t.deepEqual((await readdir(dir)).sort(), ['fragments.lmdb', 'fragments.lmdb-lock']);
    t.true((await stat(join(dir, 'fragments.lmdb'))).isFile());
    t.true(await backendExists('lmdb', dir));

    // Read it with plain lmdb-js, as a tool outside fragfs would.
    const env = open({ path: join(dir, 'fragments.lmdb'), noSubdir: true, maxDbs: 16, readOnly: true });
    try {
      const names = [...env.getKeys()].map(String).sort();
      t.deepEqual(names, ['alpha:data', 'alpha:meta', 'beta:ref']);
      const db = env.openDB('alpha:meta', { encoding: 'binary', keyEncoding: 'binary', create: false } as never);
      const keys = [...db.getKeys()] as Buffer[];
      t.is(keys.length, 1);
      t.is(keys[0]!.length, 32);
      t.is(keys[0]!.toString('hex'), id);
      t.is((db.getBinary(Buffer.from(id, 'hex')) as Buffer).toString(), 'meta bytes');
    } finally {
      await env.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lmdb: read-only open reads, rejects writes with READ_ONLY, and NO_STORE when absent', async (t) => {
  const dir = await tempStore();
  try {
    const missing = await t.throwsAsync(openBackend('lmdb', join(dir, 'nothing-here'), { readOnly: true }));
    t.true(missing instanceof FragfsError && missing.code === 'NO_STORE', String(missing));

    const rw = await openBackend('lmdb', dir);
    const id = randomId();
    const bytes = randomBytes(3000);
    await rw.put(ns('data'), id, bytes);
    await rw.close();

    const ro = await openBackend('lmdb', dir, { readOnly: true });
    try {
      t.true(Buffer.from(await ro.get(ns('data'), id)).equals(bytes));
      t.deepEqual(await collect(ro.list(ns('data'))), [id]);
      // A space never written has no databases; reading it is empty, not an error.
      t.false(await ro.has(ns('meta', 'other'), id));
      t.deepEqual(await collect(ro.list(ns('ref', 'other'))), []);
      const e = await t.throwsAsync(ro.put(ns('data'), randomId(), bytes));
      t.true(e instanceof FragfsError && e.code === 'READ_ONLY');
      const d = await t.throwsAsync(ro.delete(ns('data'), id));
      t.true(d instanceof FragfsError && d.code === 'READ_ONLY');
    } finally {
      await ro.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lmdb: many spaces in one store', async (t) => {
  const dir = await tempStore();
  try {
    const store = await openBackend('lmdb', dir);
    const id = randomId();
    for (let i = 0; i < 200; i++) await store.put(ns('ref', `space-${i}`), id, Buffer.from(String(i)));
    for (let i = 0; i < 200; i += 37) {
      t.is(Buffer.from(await store.get(ns('ref', `space-${i}`), id)).toString(), String(i));
    }
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

testIf(tempFallocatesPastEnd, 'the temp folder cannot allocate past a file\'s end (fallocate --keep-size)')('lmdb: the room reserved ahead of writes is given back at close (the store takes what its file holds)', async (t) => {
  const dir = await tempStore();
  try {
    const store = await openBackend('lmdb', dir);
    for (let i = 0; i < 40; i++) await store.put(ns('data', 'alpha'), randomId(), randomBytes(256 * 1024));
    const file = join(dir, 'fragments.lmdb');
    const during = await stat(file);
    await store.close();
    const after = await stat(file);
    t.log(`allocated while open ${(during.blocks * 512) >> 20} MiB, after close ${(after.blocks * 512) >> 20} MiB, file ${after.size >> 20} MiB`);
    t.true(during.blocks * 512 > during.size + (1 << 20), 'room was reserved past the end of the file while open');
    t.true(after.blocks * 512 <= after.size + (1 << 20), `${after.blocks * 512} bytes allocated for a ${after.size}-byte file`);
    t.is(after.size, during.size, 'the file keeps its size');
    // And every value is still there.
    const again = await openBackend('lmdb', dir);
    t.is((await collect(again.list(ns('data', 'alpha')))).length, 40);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lmdb: the trash of a namespace is the database <space>:<kind>:trash, made by the first trash', async (t) => {
  const dir = await tempStore();
  try {
    const store = await openBackend('lmdb', dir);
    const id = randomId();
    const bytes = randomBytes(5000);
    await store.put(ns('data', 'alpha'), id, bytes);
    await store.trash(ns('meta', 'alpha'), id);
    await store.trash(ns('data', 'alpha'), id);
    await store.close();

    const env = open({ path: join(dir, 'fragments.lmdb'), noSubdir: true, maxDbs: 16, readOnly: true });
    try {
      t.deepEqual([...env.getKeys()].map(String).sort(), ['alpha:data', 'alpha:data:trash']);
      const trash = env.openDB('alpha:data:trash', { encoding: 'binary', keyEncoding: 'binary', create: false } as never);
      t.deepEqual(([...trash.getKeys()] as Buffer[]).map((k) => k.toString('hex')), [id]);
      t.true((trash.getBinary(Buffer.from(id, 'hex')) as Buffer).equals(bytes));
      const place = env.openDB('alpha:data', { encoding: 'binary', keyEncoding: 'binary', create: false } as never);
      t.deepEqual([...place.getKeys()], []);
    } finally {
      await env.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lmdb: a data fragment expected small is read at once; one expected large, or of unknown size, is paged in on lmdb-js thread first', async (t) => {
  const dir = await tempStore();
  try {
    const store = await openBackend('lmdb', dir);
    const id = randomId();
    const bytes = randomBytes(200 * 1024);
    await store.put(ns('data'), id, bytes);
    const db = (store as unknown as { db(n: unknown, create: boolean): { prefetch(keys: unknown[]): Promise<void> } }).db(ns('data'), false);
    let prefetches = 0;
    const prefetch = db.prefetch.bind(db);
    db.prefetch = (keys) => {
      prefetches++;
      return prefetch(keys);
    };
    for (const [expectedBytes, want] of [[4096, 0], [1 << 20, 1], [undefined, 1]] as const) {
      prefetches = 0;
      const got = await store.get(ns('data'), id, expectedBytes === undefined ? undefined : { expectedBytes });
      t.true(Buffer.from(got).equals(bytes), `whole fragment, expecting ${expectedBytes}`);
      t.is(prefetches, want, `prefetches, expecting ${expectedBytes} bytes`);
    }
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
