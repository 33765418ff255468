// The memory backend: the conformance suite on a shared MemoryVolume (reopen = a new handle on it).

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { FragfsError } from '../../src/errors.js';
import { MemoryStore, MemoryVolume } from '../../src/store/memory-store.js';
import { openBackend } from '../../src/store/open-backend.js';
import { ns, randomId, runConformance } from './conformance.js';

runConformance(test, 'memory', async () => {
  const volume = new MemoryVolume();
  return {
    open: async () => new MemoryStore(volume),
    openReadOnly: async () => new MemoryStore(volume, true),
    remove: async () => {
      volume.maps.clear();
      volume.trash.clear();
    },
  };
});

test('memory: openBackend gives a fresh empty store each time, ignoring the location', async (t) => {
  const a = await openBackend('memory', '/nonexistent/ignored');
  t.is(a.backend, 'memory');
  const id = randomId();
  await a.put(ns('data'), id, randomBytes(3));
  const b = await openBackend('memory', '/nonexistent/ignored');
  t.false(await b.has(ns('data'), id));
  t.true(await a.has(ns('data'), id));
});

test('memory: read-only handles reject put and delete with READ_ONLY but read', async (t) => {
  const volume = new MemoryVolume();
  const id = randomId();
  await new MemoryStore(volume).put(ns('meta'), id, Buffer.from('x'));
  const ro = new MemoryStore(volume, true);
  t.is(Buffer.from(await ro.get(ns('meta'), id)).toString(), 'x');
  const e1 = await t.throwsAsync(ro.put(ns('meta'), randomId(), Buffer.from('y')));
  t.true(e1 instanceof FragfsError && e1.code === 'READ_ONLY');
  const e2 = await t.throwsAsync(ro.delete(ns('meta'), id));
  t.true(e2 instanceof FragfsError && e2.code === 'READ_ONLY');
  t.true(await ro.has(ns('meta'), id));
});
