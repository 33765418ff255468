// The split backend: the conformance suite on real files, the exact two-file layout of data
// fragments with their SOLMET header bytes, the header as commit marker, and kill -9 safety.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, unlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { FragfsError } from '../../src/errors.js';
import { openBackend } from '../../src/store/open-backend.js';
import type { SplitStore } from '../../src/store/split-store.js';
import { collect, ns, randomId, runConformance } from './conformance.js';
import { runCrashTest } from './crash-check.js';

async function tempStore(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'fragfs-split-'));
}

runConformance(test, 'split', async () => {
  const dir = await tempStore();
  return {
    open: () => openBackend('split', dir),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
});

runCrashTest(test, 'split');

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
