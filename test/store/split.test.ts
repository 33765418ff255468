// The split backend: the conformance suite on real files, the exact two-file layout of data
// fragments with their SOLMET header bytes, the header as commit marker, the trash (moves of the
// header alone, payloads kept while a header claims them, interrupted purges), kill -9 safety and
// the trash beside other processes.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { FragfsError } from '../../src/errors.js';
import { openBackend } from '../../src/store/open-backend.js';
import type { SplitStore } from '../../src/store/split-store.js';
import { collect, ns, randomId, runConformance } from './conformance.js';
import { runCrashTest } from './crash-check.js';
import { runTrashRaceTest } from './trash-race-check.js';
import { runTrashCrashTest } from './crash-trash-check.js';

async function tempStore(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'fragfs-split-'));
}

runConformance(test, 'split', async () => {
  const dir = await tempStore();
  return {
    open: () => openBackend('split', dir),
    openReadOnly: () => openBackend('split', dir, { readOnly: true }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
});

runCrashTest(test, 'split');
runTrashRaceTest(test, 'split');
runTrashCrashTest(test, 'split');

const ID = '5f4fff' + 'cd'.repeat(29);
const REST = ID.slice(2);

/** msgpack by hand, so the expected bytes do not come from the library under test. */
function str(s: string): Buffer {
  if (s.length > 31) throw new Error('fixstr only');
  return Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s)]);
}
function frame(body: Buffer): Buffer {
  if (body.length > 255) throw new Error('bin8 only');
  return Buffer.concat([Buffer.from([0x94]), str('SOLMET'), Buffer.from([0x00, 0x00, 0xc4, body.length]), body]);
}

async function withSplit(body: (store: SplitStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await tempStore();
  const store = (await openBackend('split', dir)) as SplitStore;
  try {
    await body(store, dir);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('split: an encoded block is a payload file plus its exact SOLMET .meta.msgpack header', async (t) => {
  await withSplit(async (store, dir) => {
    t.is(store.backend, 'split');
    const payload = randomBytes(3000);
    const s = Buffer.concat([Buffer.from([0xc0, 0xde, 0xad, 0xbe, 0xef]), payload]);
    await store.put(ns('data'), ID, s);
    const fan = join(dir, 'main', 'objects', '5f');
    t.deepEqual((await readdir(fan)).sort(), [REST, `${REST}.meta.msgpack`]);
    t.true((await readFile(join(fan, REST))).equals(payload));
    const header = await readFile(join(fan, `${REST}.meta.msgpack`));
    const expectedBody = Buffer.concat([
      Buffer.from([0x84]),
      str('FragComp::DataEncryptionType'),
      Buffer.from([0x01]),
      str('FragComp::DataCompressionType'),
      Buffer.from([0x01]),
      str('crc32'),
      Buffer.from([0xce, 0xde, 0xad, 0xbe, 0xef]),
      str('status'),
      Buffer.from([0xcc, 0xc0]),
    ]);
    t.is(header.toString('hex'), frame(expectedBody).toString('hex'));
    const [magic, enc, comp, body] = unpack(header) as [string, number, number, Buffer];
    t.deepEqual([magic, enc, comp], ['SOLMET', 0, 0]);
    t.deepEqual(unpack(body), {
      'FragComp::DataEncryptionType': 1,
      'FragComp::DataCompressionType': 1,
      crc32: 0xdeadbeef,
      status: 0xc0,
    });
    t.true(Buffer.from(await store.get(ns('data'), ID)).equals(s));
    t.is(await store.size(ns('data'), ID), s.length);
    t.is(store.payloadPath(ns('data'), ID), join(fan, REST));
    t.is(store.fragmentPath(ns('data'), ID), join(fan, `${REST}.meta.msgpack`));
  });
});

test('split: status bits map to the two type fields; a 5-byte block has an empty payload', async (t) => {
  await withSplit(async (store, dir) => {
    for (const [status, encType, compType] of [
      [0x00, 0, 0],
      [0x40, 1, 0],
      [0x80, 0, 1],
    ] as const) {
      const id = randomId();
      const s = Buffer.from([status, 0, 0, 0, 7]);
      await store.put(ns('data'), id, s);
      const fan = join(dir, 'main', 'objects', id.slice(0, 2));
      t.is((await readFile(join(fan, id.slice(2)))).length, 0);
      const [, , , body] = unpack(await readFile(join(fan, `${id.slice(2)}.meta.msgpack`))) as [string, 0, 0, Buffer];
      t.deepEqual(unpack(body), {
        'FragComp::DataEncryptionType': encType,
        'FragComp::DataCompressionType': compType,
        crc32: 7,
        status,
      });
      t.true(Buffer.from(await store.get(ns('data'), id)).equals(s));
    }
  });
});

test('split: other data bytes are stored whole with the header {"raw": true}', async (t) => {
  await withSplit(async (store, dir) => {
    for (const s of [Buffer.alloc(0), Buffer.from([0xc0, 1, 2, 3]), Buffer.from([0x01, 2, 3, 4, 5, 6]), Buffer.from([0xff, 9, 9, 9, 9, 9])]) {
      const id = randomId();
      await store.put(ns('data'), id, s);
      const fan = join(dir, 'main', 'objects', id.slice(0, 2));
      t.true((await readFile(join(fan, id.slice(2)))).equals(s));
      const header = await readFile(join(fan, `${id.slice(2)}.meta.msgpack`));
      t.is(header.toString('hex'), frame(Buffer.concat([Buffer.from([0x81]), str('raw'), Buffer.from([0xc3])])).toString('hex'));
      t.true(Buffer.from(await store.get(ns('data'), id)).equals(s));
      t.is(await store.size(ns('data'), id), s.length);
    }
  });
});

test('split: meta fragments are whole .meta.msgpack files, refs whole files', async (t) => {
  await withSplit(async (store, dir) => {
    const m = Buffer.from([0xc0, 1, 2, 3, 4, 5, 6]); // shaped like a block: still stored whole
    await store.put(ns('meta'), ID, m);
    await store.put(ns('ref'), ID, Buffer.from('ref'));
    t.deepEqual(await readdir(join(dir, 'main', 'meta', '5f')), [`${REST}.meta.msgpack`]);
    t.true((await readFile(join(dir, 'main', 'meta', '5f', `${REST}.meta.msgpack`))).equals(m));
    t.deepEqual(await readdir(join(dir, 'main', 'refs', '5f')), [REST]);
    t.is((await readFile(join(dir, 'main', 'refs', '5f', REST))).toString(), 'ref');
    t.deepEqual(await collect(store.list(ns('meta'))), [ID]);
    t.deepEqual(await collect(store.list(ns('ref'))), [ID]);
  });
});

test('split: a payload without its header is absent, and a later put commits it', async (t) => {
  await withSplit(async (store, dir) => {
    const fan = join(dir, 'main', 'objects', '5f');
    await mkdir(fan, { recursive: true });
    await writeFile(join(fan, REST), 'left by a crash');
    t.false(await store.has(ns('data'), ID));
    t.is(await store.size(ns('data'), ID), undefined);
    t.deepEqual(await collect(store.list(ns('data'))), []);
    const e = await t.throwsAsync(store.get(ns('data'), ID));
    t.true(e instanceof FragfsError && e.code === 'MISSING_FRAGMENT' && e.fragmentId === ID);
    const s = Buffer.concat([Buffer.from([0x40, 1, 2, 3, 4]), randomBytes(100)]);
    await store.put(ns('data'), ID, s);
    t.true(Buffer.from(await store.get(ns('data'), ID)).equals(s));
    t.deepEqual(await collect(store.list(ns('data'))), [ID]);
  });
});

test('split: delete removes header and payload; a header without payload or a bad header is CORRUPT', async (t) => {
  await withSplit(async (store, dir) => {
    const fan = join(dir, 'main', 'objects', '5f');
    const s = Buffer.concat([Buffer.from([0x80, 1, 2, 3, 4]), randomBytes(100)]);
    await store.put(ns('data'), ID, s);
    await store.delete(ns('data'), ID);
    t.deepEqual(await readdir(fan), []);

    await store.put(ns('data'), ID, s);
    await unlink(join(fan, REST));
    for (const call of [() => store.get(ns('data'), ID), () => store.size(ns('data'), ID)]) {
      const e = await t.throwsAsync(call());
      t.true(e instanceof FragfsError && e.code === 'CORRUPT' && e.fragmentId === ID, String(e));
    }
    await store.delete(ns('data'), ID);
    t.deepEqual(await readdir(fan), []);

    await store.put(ns('data'), ID, s);
    for (const bad of [Buffer.from('garbage'), frame(Buffer.from([0x81, 0xa3, 0x72, 0x61, 0x77, 0xc2])), Buffer.alloc(0)]) {
      await writeFile(join(fan, `${REST}.meta.msgpack`), bad);
      const e = await t.throwsAsync(store.get(ns('data'), ID));
      t.true(e instanceof FragfsError && e.code === 'CORRUPT' && e.fragmentId === ID, String(e));
    }
  });
});

// ---- the trash ----------------------------------------------------------------------------------

const FAN = (dir: string) => join(dir, 'main', 'objects', '5f');
const TRASH_FAN = (dir: string) => join(dir, 'main', 'trash', 'objects', '5f');
const block = () => Buffer.concat([Buffer.from([0xc0, 1, 2, 3, 4]), randomBytes(5000)]);

test('split: trash moves a data fragment\'s header to STORE/<space>/trash/objects, its payload stays out of sight', async (t) => {
  await withSplit(async (store, dir) => {
    const s = block();
    await store.trash(ns('data'), ID);
    await store.untrash(ns('data'), ID);
    await store.purge(ns('data'), ID);
    await t.throwsAsync(stat(join(dir, 'main', 'trash')), undefined, 'no-ops make no trash folder');
    await t.throwsAsync(stat(join(dir, 'main', 'objects')), undefined, 'nor any other');
    await store.put(ns('data'), ID, s);
    await store.put(ns('meta'), ID, Buffer.from('meta'));
    await store.put(ns('ref'), ID, Buffer.from('ref'));
    for (const kind of ['data', 'meta', 'ref'] as const) await store.trash(ns(kind), ID);
    t.deepEqual(await readdir(FAN(dir)), [REST], 'the payload stays, without its header');
    t.deepEqual(await readdir(TRASH_FAN(dir)), [`${REST}.meta.msgpack`]);
    t.deepEqual(await readdir(join(dir, 'main', 'trash', 'meta', '5f')), [`${REST}.meta.msgpack`]);
    t.deepEqual(await readdir(join(dir, 'main', 'trash', 'refs', '5f')), [REST]);
    for (const d of ['trash', 'trash/objects', 'trash/objects/5f', 'trash/meta/5f', 'trash/refs/5f']) {
      t.is((await stat(join(dir, 'main', d))).mode & 0o777, 0o700, d);
    }
    t.is((await stat(join(TRASH_FAN(dir), `${REST}.meta.msgpack`))).mode & 0o777, 0o600);
    for (const kind of ['data', 'meta', 'ref'] as const) await store.untrash(ns(kind), ID);
    t.deepEqual((await readdir(FAN(dir))).sort(), [REST, `${REST}.meta.msgpack`]);
    t.deepEqual(await readdir(TRASH_FAN(dir)), []);
    t.true(Buffer.from(await store.get(ns('data'), ID)).equals(s));
    // purge removes the header, then the payload no header claims.
    await store.trash(ns('data'), ID);
    await store.purge(ns('data'), ID);
    t.deepEqual(await readdir(FAN(dir)), []);
    t.deepEqual(await readdir(TRASH_FAN(dir)), []);
    t.deepEqual(await readdir(join(dir, 'main', 'tmp')), []);
  });
});

test('split: a payload claimed by a trash header outlives a delete in place; one claimed by a header in place outlives a purge', async (t) => {
  await withSplit(async (store, dir) => {
    const s = block();
    await store.put(ns('data'), ID, s);
    await store.trash(ns('data'), ID);
    await store.put(ns('data'), ID, s);
    await store.delete(ns('data'), ID);
    t.deepEqual(await readdir(FAN(dir)), [REST], 'the trash copy keeps its payload');
    await store.untrash(ns('data'), ID);
    t.true(Buffer.from(await store.get(ns('data'), ID)).equals(s));

    await store.trash(ns('data'), ID);
    await store.put(ns('data'), ID, s);
    await store.purge(ns('data'), ID);
    t.true(Buffer.from(await store.get(ns('data'), ID)).equals(s), 'the copy in place keeps its payload');
    t.deepEqual(await readdir(TRASH_FAN(dir)), []);
    await store.delete(ns('data'), ID);
    t.deepEqual(await readdir(FAN(dir)), []);
  });
});

/** A trashed data fragment whose purge was killed after its commit: the header is the purge mark. */
async function purgeInterrupted(store: SplitStore, dir: string): Promise<Buffer> {
  const s = block();
  await store.put(ns('data'), ID, s);
  await store.trash(ns('data'), ID);
  await rename(join(TRASH_FAN(dir), `${REST}.meta.msgpack`), join(TRASH_FAN(dir), `${REST}.purge`));
  return s;
}

test('split: a purge killed after its commit is finished by the next open, trash, untrash or purge of the id', async (t) => {
  await withSplit(async (store, dir) => {
    for (const then of ['open', 'trash', 'untrash', 'purge'] as const) {
      await purgeInterrupted(store, dir);
      t.false(await store.has(ns('data'), ID));
      t.deepEqual(await collect(store.listTrash(ns('data'))), [], `${then}: purged as far as anyone sees`);
      if (then === 'open') {
        const ro = await openBackend('split', dir, { readOnly: true });
        await ro.close();
        t.deepEqual(await readdir(TRASH_FAN(dir)), [`${REST}.purge`], 'a read-only open changes nothing');
        const rw = await openBackend('split', dir);
        await rw.close();
      } else {
        await store[then](ns('data'), ID);
      }
      t.deepEqual(await readdir(TRASH_FAN(dir)), [], `${then}: the mark is gone`);
      t.deepEqual(await readdir(FAN(dir)), [], `${then}: the payload is gone`);
    }
    // Put again before the purge was finished: the payload is the new copy's, and stays.
    const s = await purgeInterrupted(store, dir);
    await store.put(ns('data'), ID, s);
    await store.settleTrash();
    t.deepEqual(await readdir(TRASH_FAN(dir)), []);
    t.true(Buffer.from(await store.get(ns('data'), ID)).equals(s));
  });
});

test('split: a reader that finds the payload gone after the header answers MISSING_FRAGMENT when the header went too', async (t) => {
  await withSplit(async (store, dir) => {
    const s = block();
    await store.put(ns('data'), ID, s);
    // get and size read the header, then the payload: here a delete runs between the two.
    const payload = join(FAN(dir), REST);
    const original = Reflect.get(store, 'readOrUndefined') as (path: string, reserve?: number) => Promise<Buffer | undefined>;
    const originalSize = Reflect.get(store, 'sizeOrUndefined') as (path: string) => Promise<number | undefined>;
    let armed = true;
    const between = async (path: string) => {
      if (path !== payload || !armed) return;
      armed = false;
      await store.delete(ns('data'), ID);
    };
    Reflect.set(store, 'readOrUndefined', async (path: string, reserve?: number) => {
      await between(path);
      return original.call(store, path, reserve);
    });
    Reflect.set(store, 'sizeOrUndefined', async (path: string) => {
      await between(path);
      return originalSize.call(store, path);
    });
    const e = await t.throwsAsync(store.get(ns('data'), ID));
    t.true(e instanceof FragfsError && e.code === 'MISSING_FRAGMENT' && e.fragmentId === ID, String(e));
    await store.put(ns('data'), ID, s);
    armed = true;
    t.is(await store.size(ns('data'), ID), undefined);
    Reflect.deleteProperty(store, 'readOrUndefined');
    Reflect.deleteProperty(store, 'sizeOrUndefined');
    // A trash between the two leaves the payload: the reader gets the whole fragment.
    await store.put(ns('data'), ID, s);
    const g = store.get(ns('data'), ID);
    await store.trash(ns('data'), ID);
    const got = await g.catch((err: unknown) => err);
    t.true(got instanceof Uint8Array ? Buffer.from(got).equals(s) : got instanceof FragfsError && got.code === 'MISSING_FRAGMENT', String(got));
  });
});

test('split: a put whose payload is taken right after its header (a purge elsewhere) writes it again', async (t) => {
  await withSplit(async (store, dir) => {
    const s = block();
    const payload = join(FAN(dir), REST);
    const original = Reflect.get(store, 'writeAtomic') as (...a: unknown[]) => Promise<void>;
    let taken = 0;
    Reflect.set(store, 'writeAtomic', async (...a: unknown[]) => {
      await original.apply(store, a);
      if (a[2] === `${payload}.meta.msgpack` && taken++ === 0) await unlink(payload);
    });
    await store.put(ns('data'), ID, s);
    Reflect.deleteProperty(store, 'writeAtomic');
    t.is(taken, 1);
    t.true(Buffer.from(await store.get(ns('data'), ID)).equals(s));
  });
});
