// ObjectStore and ResilientBackend on an in-memory service: the object and Store conformance
// suites, the key layout, retries of what is worth retrying, timeouts, and the one error that ends
// a call retries could not cure.

import test from 'ava';
import { FragfsError } from '../../src/errors.js';
import { ObjectStore } from '../../src/remote/object-store.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { MemoryObjectRoot } from '../helpers/memory-objects.js';
import { PROPERTY_RUNS } from '../store/conformance.js';
import { runObjectConformance } from './object-conformance.js';

runObjectConformance(
  test,
  'memory objects',
  async () => {
    const root = new MemoryObjectRoot();
    return { open: async () => root.open(), remove: async () => root.objects.clear() };
  },
  PROPERTY_RUNS,
);

const ID = '5f4fff' + 'ab'.repeat(29);

test('object store: keys <space>/objects|meta/<2 hex>/<id>, <space>/refs/<id>, trash one level down', async (t) => {
  const root = new MemoryObjectRoot();
  const store = new ObjectStore(new ResilientBackend(root.open()));
  await store.put({ space: 'sp', kind: 'data' }, ID, Buffer.from('d'));
  await store.put({ space: 'sp', kind: 'meta' }, ID, Buffer.from('m'));
  await store.put({ space: 'sp', kind: 'ref' }, ID, Buffer.from('r'));
  t.deepEqual([...root.objects.keys()].sort(), [`sp/meta/5f/${ID}`, `sp/objects/5f/${ID}`, `sp/refs/${ID}`]);
  await store.trash({ space: 'sp', kind: 'data' }, ID);
  t.deepEqual([...root.objects.keys()].sort(), [`sp/meta/5f/${ID}`, `sp/refs/${ID}`, `sp/trash/objects/5f/${ID}`]);
  // A stray object under a kind's prefix is not taken for a fragment.
  root.objects.set('sp/meta/5f/notes.txt', Buffer.from('x'));
  root.objects.set(`sp/meta/00/${ID}`, Buffer.from('x'));
  const ids: string[] = [];
  for await (const id of store.list({ space: 'sp', kind: 'meta' })) ids.push(id);
  t.deepEqual(ids, [ID]);
});

test('resilient backend: retries what is worth retrying, then succeeds', async (t) => {
  const root = new MemoryObjectRoot();
  const b = new ResilientBackend(root.open(), { backoffMs: 1 });
  root.failures.push({ op: 'put', kind: 'retry' }, { op: 'put', kind: 'retry' }, { op: 'get', kind: 'retry' }, { op: 'list', kind: 'retry' });
  t.true(await b.put('a/b', Buffer.from('x')));
  t.is(Buffer.from((await b.get('a/b'))!).toString(), 'x');
  const keys: string[] = [];
  for await (const e of b.list('a/')) keys.push(e.key);
  t.deepEqual(keys, ['a/b']);
  t.is(b.retries, 4);
});

test('resilient backend: gives up after its attempts with one REMOTE error naming the call', async (t) => {
  const root = new MemoryObjectRoot();
  const b = new ResilientBackend(root.open(), { backoffMs: 1, attempts: 3 });
  for (let i = 0; i < 3; i++) root.failures.push({ op: 'get', kind: 'retry' });
  const e = await t.throwsAsync(b.get('x/y'), { instanceOf: FragfsError });
  t.is(e!.code, 'REMOTE');
  t.regex(e!.message, /^memory-objects:: reading x\/y: injected retry failure of get \(3 attempts\)$/);
});

test('resilient backend: refused credentials and a full service end at once, with their own codes', async (t) => {
  const root = new MemoryObjectRoot();
  const b = new ResilientBackend(root.open(), { backoffMs: 1 });
  root.failures.push({ op: 'put', kind: 'auth' });
  t.is((await t.throwsAsync(b.put('x/y', new Uint8Array(1)), { instanceOf: FragfsError }))!.code, 'REMOTE_AUTH');
  root.failures.push({ op: 'put', kind: 'no-space' });
  t.is((await t.throwsAsync(b.put('x/y', new Uint8Array(1)), { instanceOf: FragfsError }))!.code, 'NO_SPACE');
  root.failures.push({ op: 'get', kind: 'final' });
  t.is((await t.throwsAsync(b.get('x/y'), { instanceOf: FragfsError }))!.code, 'REMOTE');
  t.is(b.retries, 0);
});

test('resilient backend: a call that never answers times out and is retried; bounded calls in flight', async (t) => {
  const root = new MemoryObjectRoot();
  const b = new ResilientBackend(root.open(), { backoffMs: 1, timeoutMs: 100, connections: 2 });
  root.hangs = 1;
  const started = Date.now();
  t.true(await b.put('slow/one', Buffer.from('x')));
  t.true(Date.now() - started >= 90);
  t.is(b.retries, 1);
  root.hangs = 10;
  const e = await t.throwsAsync(new ResilientBackend(root.open(), { backoffMs: 1, timeoutMs: 50, attempts: 2 }).get('slow/one'));
  t.is((e as FragfsError).code, 'REMOTE');
  t.regex(e!.message, /no answer in 0\.05 s \(2 attempts\)/);
});

// Serial: alone, so the file's other tests do not hold up its 100 ms timers.
test.serial('resilient backend: when attempts in a row get no answer, the calls queued behind them fail at once; after the timeout the service is tried again', async (t) => {
  const root = new MemoryObjectRoot();
  const b = new ResilientBackend(root.open(), { backoffMs: 1, timeoutMs: 100, attempts: 3, connections: 2 });
  root.hangs = 1_000_000;
  const started = Date.now();
  // Twenty calls, two at a time: each waiting out its own three timeouts would take 30 x 100 ms.
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => b.get(`held/${i}`)));
  const elapsedMs = Date.now() - started;
  const errors = results.map((r) => (r.status === 'rejected' ? (r.reason as FragfsError) : undefined));
  t.true(errors.every((e) => e?.code === 'REMOTE'), 'every call fails REMOTE');
  const notTried = errors.filter((e) => /: reading held\/\d+: not tried: the service failed another call just before: no answer in 0\.1 s \(3 attempts\)$/.test(e!.message));
  t.true(notTried.length >= 16, `${notTried.length} calls failed without an attempt of their own`);
  t.true(elapsedMs < 1500, `all failed in ${elapsedMs} ms`);
  // The service answers again: once the window has passed, calls go through.
  root.hangs = 0;
  await new Promise((r) => setTimeout(r, 120));
  t.true(await b.put('held/0', Buffer.from('x')));
  t.is(Buffer.from((await b.get('held/0'))!).toString(), 'x');
});
