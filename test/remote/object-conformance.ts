// The conformance suite every ObjectBackend passes (the contract of src/remote/object-backend.ts),
// and the Store conformance suite run on an ObjectStore over it. A service's test file calls
// runObjectConformance once with a factory that gives a fresh, empty root (a new prefix) each time.

import type { TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import type { ObjectBackend, ObjectEntry } from '../../src/remote/object-backend.js';
import { ObjectStore } from '../../src/remote/object-store.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { runConformance } from '../store/conformance.js';

export interface ObjectRoot {
  /** A backend on the root; may be called again (another connection to the same root). */
  open(): Promise<ObjectBackend>;
  /** Removes what the root holds (the test has closed its backends). */
  remove(): Promise<void>;
}

export type ObjectRootFactory = () => Promise<ObjectRoot>;

async function listAll(b: ObjectBackend, prefix: string): Promise<ObjectEntry[]> {
  const out: ObjectEntry[] = [];
  for await (const e of b.list(prefix)) out.push(e);
  return out.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}

async function withRoot(factory: ObjectRootFactory, body: (b: ObjectBackend, root: ObjectRoot) => Promise<void>): Promise<void> {
  const root = await factory();
  let b: ObjectBackend | undefined;
  try {
    b = await root.open();
    await body(b, root);
  } finally {
    await b?.close().catch(() => undefined);
    await root.remove();
  }
}

/**
 * Random sequences per model property of the Store suite over a real service. The ObjectStore logic
 * those properties check runs PROPERTY_RUNS (40) times over the in-memory service (object-store.test);
 * over a server each sequence costs about a hundred requests. Each file alone against the test
 * servers, 40 runs -> 15: s3.test 52 -> 33 s (the test process's CPU 37 -> 24 s), azure.test 40 -> 30 s.
 */
export const SERVER_PROPERTY_RUNS = 15;

export function runObjectConformance(test: TestFn, name: string, factory: ObjectRootFactory, propertyRuns = SERVER_PROPERTY_RUNS): void {
  const t_ = (title: string) => `${name} object conformance: ${title}`;

  test(t_('round trips of 0 B to 4 MiB; size; a missing key is undefined'), async (t) => {
    await withRoot(factory, async (b) => {
      for (const size of [0, 1, 4095, 65_536, 1_048_576 + 7, 4 * 1_048_576]) {
        const key = `a/b${size}/obj-${size}`;
        const bytes = randomBytes(size);
        t.true(await b.put(key, bytes));
        t.is(await b.size(key), size);
        const got = await b.get(key);
        t.true(got instanceof Uint8Array);
        t.true(Buffer.from(got!).equals(bytes), `${size} bytes`);
      }
      t.is(await b.get('a/nothing'), undefined);
      t.is(await b.size('a/nothing'), undefined);
      t.is(await b.get('never/written/at/all'), undefined);
    });
  });

  test(t_('getRange reads exactly a range in one call; shorter at the end, empty past it, undefined when missing'), async (t) => {
    await withRoot(factory, async (b) => {
      t.is(typeof b.getRange, 'function', 'the service reads ranges');
      const bytes = randomBytes(300_000);
      await b.put('r/obj', bytes);
      const range = async (offset: number, length: number): Promise<Buffer | undefined> => {
        const got = await b.getRange!('r/obj', offset, length);
        return got === undefined ? undefined : Buffer.from(got);
      };
      t.deepEqual(await range(0, 1), bytes.subarray(0, 1));
      t.deepEqual(await range(12_345, 100_000), bytes.subarray(12_345, 112_345));
      t.deepEqual(await range(299_999, 1), bytes.subarray(299_999));
      t.deepEqual(await range(290_000, 20_000), bytes.subarray(290_000), 'a range past the end ends with the object');
      t.is((await range(300_000, 10))?.length, 0, 'a range from the end holds nothing');
      t.is((await range(400_000, 10))?.length, 0, 'a range past the end holds nothing');
      t.is(await b.getRange!('r/nothing', 0, 10), undefined);
      // Through the retry layer as fragfs reads it.
      const resilient = new ResilientBackend(b);
      t.deepEqual(Buffer.from((await resilient.getRange('r/obj', 7, 70_000))!), bytes.subarray(7, 70_007));
    });
  });

  test(t_('put replaces; delete removes and is idempotent'), async (t) => {
    await withRoot(factory, async (b) => {
      await b.put('k/one', Buffer.from('first'));
      await b.put('k/one', Buffer.from('second, longer'));
      t.is(Buffer.from((await b.get('k/one'))!).toString(), 'second, longer');
      await b.delete('k/one');
      t.is(await b.get('k/one'), undefined);
      await b.delete('k/one');
      await b.delete('k/never');
      t.pass();
    });
  });

  test(t_('ifAbsent creates once: false and unchanged when the key exists, one winner of 8 racing'), async (t) => {
    await withRoot(factory, async (b, root) => {
      t.true(await b.put('lease/x', Buffer.from('mine'), { ifAbsent: true }));
      t.false(await b.put('lease/x', Buffer.from('yours'), { ifAbsent: true }));
      t.is(Buffer.from((await b.get('lease/x'))!).toString(), 'mine');
      const others = await Promise.all([root.open(), root.open()]);
      try {
        const racers = Array.from({ length: 8 }, (_, i) => (i % 3 === 2 ? b : others[i % 2]!));
        const won = await Promise.all(racers.map((r, i) => r.put('lease/race', Buffer.from(`racer ${i}`), { ifAbsent: true })));
        t.is(won.filter(Boolean).length, 1, `winners: ${JSON.stringify(won)}`);
        const winner = won.indexOf(true);
        t.is(Buffer.from((await b.get('lease/race'))!).toString(), `racer ${winner}`);
      } finally {
        await Promise.all(others.map((o) => o.close()));
      }
      await b.delete('lease/x');
      t.true(await b.put('lease/x', Buffer.from('again'), { ifAbsent: true }));
    });
  });

  test(t_('list yields every key under a prefix at any depth, once, with sizes; other prefixes apart'), async (t) => {
    await withRoot(factory, async (b) => {
      const keys: string[] = [];
      for (let i = 0; i < 1100; i++) keys.push(`s/objects/${(i % 7).toString(16).padStart(2, '0')}/${i.toString().padStart(5, '0')}`);
      keys.push('s/refs/r1', 's/meta/x/y/z', 's2/objects/aa/other', 'solo');
      // 32 at a time, as ResilientBackend would bound them: a service is not a test of its queue.
      for (let at = 0; at < keys.length; at += 32) await Promise.all(keys.slice(at, at + 32).map((k, j) => b.put(k, randomBytes((at + j) % 5))));
      const objects = await listAll(b, 's/objects/');
      t.is(objects.length, 1100);
      t.deepEqual(
        objects.map((e) => e.key),
        keys.slice(0, 1100).sort(),
      );
      t.true(objects.every((e) => e.size === Number(e.key.slice(-5)) % 5));
      t.deepEqual((await listAll(b, 's/refs/')).map((e) => e.key), ['s/refs/r1']);
      t.deepEqual((await listAll(b, 's/meta/')).map((e) => e.key), ['s/meta/x/y/z']);
      t.is((await listAll(b, 's/')).length, 1102);
      t.deepEqual(await listAll(b, 'nothing/'), []);
      // 's2/...' does not start with 's/': a prefix is a folder, not a string start.
      t.false((await listAll(b, 's/')).some((e) => e.key.startsWith('s2/')));
      t.is((await listAll(b, '')).length, keys.length);
    });
  });

  test(t_('invalid keys are refused before any call'), async (t) => {
    await withRoot(factory, async (raw) => {
      const b = new ResilientBackend(raw);
      for (const key of ['', '/abs', 'a//b', 'a/../b', 'a/./b', 'sp ace', 'a/b/', 'é']) {
        await t.throwsAsync(b.get(key), { instanceOf: TypeError }, key);
        await t.throwsAsync(b.put(key, new Uint8Array(1)), { instanceOf: TypeError }, key);
      }
    });
  });

  test(t_('a second connection sees what the first wrote (no per-connection cache)'), async (t) => {
    await withRoot(factory, async (b, root) => {
      const other = await root.open();
      try {
        await b.put('x/seen', Buffer.from('v1'));
        t.is(Buffer.from((await other.get('x/seen'))!).toString(), 'v1');
        await other.put('x/seen', Buffer.from('v2'));
        t.is(Buffer.from((await b.get('x/seen'))!).toString(), 'v2');
        await other.delete('x/seen');
        t.is(await b.size('x/seen'), undefined);
      } finally {
        await other.close();
      }
    });
  });

  // The fragfs Store contract on this service, as every local backend passes it.
  runConformance(
    test,
    `${name} (object store)`,
    async () => {
      const root = await factory();
      return {
        open: async () => new ObjectStore(new ResilientBackend(await root.open())),
        openReadOnly: async () => new ObjectStore(new ResilientBackend(await root.open()), true),
        remove: () => root.remove(),
      };
    },
    propertyRuns,
  );
}
