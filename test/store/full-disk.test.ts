// A full disk under every backend (a real tmpfs filled with a ballast file): ENOSPC is NO_SPACE
// naming the fragment, a failed put leaves nothing under its id, a full store still opens
// read-only and reads, and once space is freed puts go on. For lmdb also: creating a store on a
// full disk is NO_SPACE (it was SIGBUS), and a commit that fails inside LMDB anyway neither hangs
// sync or close nor leaves a rejection that ends the process. Moves into and out of the trash on a
// full disk either work (the file backends rename) or are NO_SPACE leaving the fragment where it was.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isFragfsError } from '../../src/errors.js';
import { openBackend } from '../../src/store/open-backend.js';
import type { BackendName, Store } from '../../src/store/store.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';
import { collect, ns, randomId } from './conformance.js';
import { canMountTmpfs, testIf } from '../helpers/capabilities.js';

const tmpfsTest = testIf(canMountTmpfs, 'the full-disk tests need root to mount a tmpfs');

const BACKENDS: BackendName[] = ['lmdb', 'dir', 'split'];
const MIB = 1024 * 1024;

for (const backend of BACKENDS) {
  tmpfsTest(`${backend}: a put on a full disk is NO_SPACE naming the fragment, leaves nothing, and works once space is freed`, async (t) => {
    const disk = await mountTmpfs(t);
    const root = join(disk, 'store');
    let store: Store | undefined = await openBackend(backend, root);
    t.teardown(() => store?.close().catch(() => undefined));
    const kept = randomId();
    const keptBytes = randomBytes(MIB);
    await store.put(ns('data'), kept, keptBytes);
    await store.sync();
    const ballast = await fillDisk(disk, 256 * 1024);

    // The lmdb backend keeps some room it reserved ahead: write until the disk says no.
    const stored = [kept];
    let id = '';
    let e: unknown;
    for (let i = 0; i < 40 && e === undefined; i++) {
      id = randomId();
      e = await store.put(ns('data'), id, randomBytes(MIB)).then(() => undefined, (err: unknown) => err);
      if (e === undefined) stored.push(id);
    }
    t.true(isFragfsError(e, 'NO_SPACE'), String(e));
    const message = (e as Error).message;
    t.true(message.includes('disk is full'), message);
    t.true(message.includes(backend === 'lmdb' ? id : id.slice(2)), `names the fragment: ${message}`);
    t.false(await store.has(ns('data'), id), 'no fragment under the id');
    t.deepEqual((await collect(store.list(ns('data')))).sort(), stored.sort());
    if (backend !== 'lmdb') t.deepEqual(await readdir(join(root, 'main', 'tmp')), [], 'no temp file left');
    await store.sync();
    await store.close();

    // 100 % full: a read-only open still reads everything.
    await fillDisk(disk, 0, 'ballast-2');
    store = await openBackend(backend, root, { readOnly: true });
    t.true(Buffer.from(await store.get(ns('data'), kept)).equals(keptBytes));
    await store.close();

    await rm(ballast);
    await rm(join(disk, 'ballast-2'));
    store = await openBackend(backend, root);
    const again = randomBytes(2 * MIB);
    await store.put(ns('data'), id, again);
    await store.close();
    store = await openBackend(backend, root, { readOnly: true });
    t.true(Buffer.from(await store.get(ns('data'), id)).equals(again));
    t.deepEqual((await collect(store.list(ns('data')))).sort(), [...stored, id].sort());
  });
}

tmpfsTest('lmdb: creating a store on a full disk is NO_SPACE, not a SIGBUS', async (t) => {
  const disk = await mountTmpfs(t);
  await fillDisk(disk);
  // In a child: before the fix this died of SIGBUS writing the lock file through its memory map.
  const script = `
    import { openBackend } from ${JSON.stringify(new URL('../../src/store/open-backend.js', import.meta.url).href)};
    try { await openBackend('lmdb', ${JSON.stringify(join(disk, 'store'))}); console.log('opened'); }
    catch (e) { console.log(e.code + ': ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^NO_SPACE: cannot create the LMDB lock file .*: the disk is full/);
});

tmpfsTest('lmdb: a commit that fails inside LMDB is NO_SPACE, and sync, close and a later put still work', async (t) => {
  const disk = await mountTmpfs(t);
  const child = fileURLToPath(new URL('./lmdb-commit-failure.js', import.meta.url));
  const r = spawnSync(process.execPath, [child, disk], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, `signal ${r.signal}, stderr: ${r.stderr}`);
  const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as { failures: string[]; present: boolean[] };
  t.is(report.failures.length, 1, 'the disk filled up');
  t.regex(report.failures[0]!, /^NO_SPACE: cannot put fragment [0-9a-f]{64} \(data\) into .*: the disk is full/);
  t.deepEqual(report.present, [true, true]);
});

for (const backend of BACKENDS) {
  tmpfsTest(`${backend}: trash and untrash on a full disk move the fragment or are NO_SPACE leaving it where it was`, async (t) => {
    const disk = await mountTmpfs(t);
    const root = join(disk, 'store');
    const store = await openBackend(backend, root);
    t.teardown(() => store.close().catch(() => undefined));
    const fragments = new Map<string, Buffer>();
    for (let i = 0; i < 6; i++) {
      const bytes = randomBytes(256 * 1024);
      bytes[0] = 0xc0;
      const id = randomId();
      await store.put(ns('data'), id, bytes);
      fragments.set(id, bytes);
    }
    const ids = [...fragments.keys()];
    // One trash before the disk is full: the file backends' trash folder exists then.
    await store.trash(ns('data'), ids[0]!);
    await store.sync();
    const ballast = await fillDisk(disk);

    const outcome = async (what: string, move: () => Promise<void>): Promise<'moved' | 'full'> => {
      const e = await move().then(() => undefined, (err: unknown) => err);
      if (e === undefined) return 'moved';
      t.true(isFragfsError(e, 'NO_SPACE'), `${what}: ${String(e)}`);
      return 'full';
    };
    const whole = async (id: string, where: 'place' | 'trash'): Promise<void> => {
      if (where === 'place') {
        t.true(Buffer.from(await store.get(ns('data'), id)).equals(fragments.get(id)!), `${id} whole in place`);
      } else {
        t.false(await store.has(ns('data'), id));
        t.true((await collect(store.listTrash(ns('data')))).includes(id), `${id} in the trash`);
      }
    };
    const moved: string[] = [];
    for (const id of ids.slice(1)) {
      const r = await outcome(`trash ${id}`, () => store.trash(ns('data'), id));
      await whole(id, r === 'moved' ? 'trash' : 'place');
      if (r === 'moved') moved.push(id);
    }
    if (backend !== 'lmdb') t.is(moved.length, ids.length - 1, 'a rename needs no room');
    const r = await outcome('untrash', () => store.untrash(ns('data'), ids[0]!));
    await whole(ids[0]!, r === 'moved' ? 'place' : 'trash');
    if (backend !== 'lmdb') t.is(r, 'moved');
    await t.notThrowsAsync(store.sync());

    // Once space is freed every move works, and every fragment is whole.
    await rm(ballast);
    for (const id of ids) await store.untrash(ns('data'), id);
    for (const id of ids) await whole(id, 'place');
    t.deepEqual(await collect(store.listTrash(ns('data'))), []);
  });
}
