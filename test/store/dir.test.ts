// The dir backend: the conformance suite on real files, the exact on-disk layout (the trash's too),
// temp-file handling, read-only opens, kill -9 safety and the trash beside other processes.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FragfsError } from '../../src/errors.js';
import { DirStore } from '../../src/store/dir-store.js';
import { backendExists, openBackend } from '../../src/store/open-backend.js';
import { collect, ns, randomId, runConformance } from './conformance.js';
import { runCrashTest } from './crash-check.js';
import { runTrashRaceTest } from './trash-race-check.js';
import { runTrashCrashTest } from './crash-trash-check.js';

async function tempStore(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'fragfs-dir-'));
}

runConformance(test, 'dir', async () => {
  const dir = await tempStore();
  return {
    open: () => openBackend('dir', dir),
    openReadOnly: () => openBackend('dir', dir, { readOnly: true }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
});

runCrashTest(test, 'dir');
runTrashRaceTest(test, 'dir');
runTrashCrashTest(test, 'dir');

const ID = '5f4fff' + 'ab'.repeat(29);

test('dir: exact paths STORE/<space>/objects|meta|refs/<2 hex>/<62 hex> holding the bytes unchanged', async (t) => {
  const dir = await tempStore();
  try {
    const store = (await openBackend('dir', dir)) as DirStore;
    t.is(store.backend, 'dir');
    const rest = ID.slice(2);
    await store.put(ns('data'), ID, Buffer.from('the data'));
    await store.put(ns('meta'), ID, Buffer.from('the meta'));
    await store.put(ns('ref', 'other'), ID, Buffer.from('the ref'));
    t.is((await readFile(join(dir, 'main', 'objects', '5f', rest))).toString(), 'the data');
    t.is((await readFile(join(dir, 'main', 'meta', '5f', rest))).toString(), 'the meta');
    t.is((await readFile(join(dir, 'other', 'refs', '5f', rest))).toString(), 'the ref');
    t.is(store.fragmentPath(ns('meta'), ID), join(dir, 'main', 'meta', '5f', rest));
    t.deepEqual(await readdir(join(dir, 'main', 'objects', '5f')), [rest]);
    t.deepEqual(await readdir(join(dir, 'main', 'tmp')), []);
    t.true(await backendExists('dir', dir));
    await store.delete(ns('data'), ID);
    t.deepEqual(await readdir(join(dir, 'main', 'objects', '5f')), []);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dir: stray temp files and foreign names are never listed or seen', async (t) => {
  const dir = await tempStore();
  try {
    const store = await openBackend('dir', dir);
    const id = randomId();
    await store.put(ns('data'), id, Buffer.from('real'));
    const fan = join(dir, 'main', 'objects', id.slice(0, 2));
    const stray = randomId();
    await mkdir(join(dir, 'main', 'objects', stray.slice(0, 2)), { recursive: true });
    // What a crash between write and rename leaves, plus names no put makes.
    await writeFile(join(dir, 'main', 'tmp', '999999-1-00000000.tmp'), 'partial');
    await writeFile(join(fan, id.slice(2) + '.tmp'), 'x');
    await writeFile(join(fan, id.slice(2, 60)), 'short');
    await writeFile(join(fan, stray.slice(2).toUpperCase().replace(/[0-9]/g, 'G')), 'right length, not lowercase hex');
    await writeFile(join(dir, 'main', 'objects', 'zz'), 'not a fan-out dir');
    await mkdir(join(dir, 'main', 'objects', 'ZZ'));
    await writeFile(join(dir, 'main', 'objects', 'ZZ', stray.slice(2)), 'upper-case fan-out');
    t.deepEqual(await collect(store.list(ns('data'))), [id]);
    t.false(await store.has(ns('data'), stray));
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dir: opening read-write removes temp files older than the process whose writer is gone', async (t) => {
  const dir = await tempStore();
  try {
    const tmp = join(dir, 'main', 'tmp');
    await mkdir(tmp, { recursive: true });
    const old = new Date(Date.now() - 3600_000);
    const deadPid = 4194305; // above Linux's largest pid_max: never a live process
    const files = {
      oldDead: `${deadPid}-1-0123abcd.tmp`,
      oldLive: `${process.ppid}-2-0123abcd.tmp`,
      newDead: `${deadPid}-3-0123abcd.tmp`,
      foreign: 'notes.txt',
    };
    for (const f of Object.values(files)) await writeFile(join(tmp, f), 'x');
    for (const f of [files.oldDead, files.oldLive, files.foreign]) await utimes(join(tmp, f), old, old);
    await utimes(join(tmp, files.newDead), new Date(), new Date(Date.now() + 60_000));

    const ro = await openBackend('dir', dir, { readOnly: true });
    await ro.close();
    t.is((await readdir(tmp)).length, 4, 'read-only open removes nothing');

    const store = await openBackend('dir', dir);
    await store.close();
    t.deepEqual((await readdir(tmp)).sort(), [files.oldLive, files.newDead, files.foreign].sort());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dir: read-only open creates nothing and rejects writes; NO_STORE when absent', async (t) => {
  const dir = await tempStore();
  try {
    const missing = await t.throwsAsync(openBackend('dir', join(dir, 'absent'), { readOnly: true }));
    t.true(missing instanceof FragfsError && missing.code === 'NO_STORE', String(missing));
    const ro = await openBackend('dir', dir, { readOnly: true });
    t.false(await ro.has(ns('data'), randomId()));
    t.deepEqual(await collect(ro.list(ns('meta'))), []);
    const e = await t.throwsAsync(ro.put(ns('data'), randomId(), Buffer.from('x')));
    t.true(e instanceof FragfsError && e.code === 'READ_ONLY');
    const d = await t.throwsAsync(ro.delete(ns('data'), randomId()));
    t.true(d instanceof FragfsError && d.code === 'READ_ONLY');
    await ro.close();
    t.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dir: a fan-out folder removed behind the store is recreated on the next put', async (t) => {
  const dir = await tempStore();
  try {
    const store = await openBackend('dir', dir);
    const a = '77' + randomId().slice(2);
    const b = '77' + randomId().slice(2);
    await store.put(ns('data'), a, Buffer.from('a'));
    await rm(join(dir, 'main', 'objects'), { recursive: true });
    await rm(join(dir, 'main', 'tmp'), { recursive: true });
    const bytes = randomBytes(1000);
    await store.put(ns('data'), b, bytes);
    t.true(Buffer.from(await store.get(ns('data'), b)).equals(bytes));
    t.is((await stat(join(dir, 'main', 'objects', '77', b.slice(2)))).size, 1000);
    await store.sync();
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dir: the trash is STORE/<space>/trash/objects|meta|refs/<2 hex>/<62 hex>, made private on the first trash', async (t) => {
  const dir = await tempStore();
  try {
    const store = await openBackend('dir', dir);
    const rest = ID.slice(2);
    await store.trash(ns('data'), ID);
    await store.untrash(ns('data'), ID);
    await store.purge(ns('data'), ID);
    await t.throwsAsync(stat(join(dir, 'main', 'trash')), undefined, 'no trash folder before the first trash');
    await store.put(ns('data'), ID, Buffer.from('the data'));
    await store.put(ns('ref'), ID, Buffer.from('the ref'));
    await store.trash(ns('data'), ID);
    await store.trash(ns('ref'), ID);
    t.deepEqual(await readdir(join(dir, 'main', 'objects', '5f')), []);
    t.is((await readFile(join(dir, 'main', 'trash', 'objects', '5f', rest))).toString(), 'the data');
    t.is((await readFile(join(dir, 'main', 'trash', 'refs', '5f', rest))).toString(), 'the ref');
    for (const d of ['trash', 'trash/objects', 'trash/objects/5f', 'trash/refs', 'trash/refs/5f']) {
      t.is((await stat(join(dir, 'main', d))).mode & 0o777, 0o700, d);
    }
    t.is((await stat(join(dir, 'main', 'trash', 'objects', '5f', rest))).mode & 0o777, 0o600);
    // A trash folder removed behind the store is made again by the next trash.
    await store.purge(ns('data'), ID);
    await rm(join(dir, 'main', 'trash'), { recursive: true });
    await store.put(ns('data'), ID, Buffer.from('again'));
    await store.trash(ns('data'), ID);
    t.deepEqual(await collect(store.listTrash(ns('data'))), [ID]);
    await store.untrash(ns('data'), ID);
    t.is((await readFile(join(dir, 'main', 'objects', '5f', rest))).toString(), 'again');
    t.deepEqual(await readdir(join(dir, 'main', 'trash', 'objects', '5f')), []);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
