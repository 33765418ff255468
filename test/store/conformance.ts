// The conformance suite every Store backend passes: the contract of src/store/store.ts as tests.
// Each backend's test file calls runConformance with a factory that makes a fresh location and can
// open (and reopen) a store on it.

import type { TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { FragfsError } from '../../src/errors.js';
import { FRAGMENT_KINDS, getRangeOf, type FragmentKind, type Namespace, type Store } from '../../src/store/store.js';

/** One fresh, empty store location. `open` may be called again after the store it returned was closed. */
export interface StoreLocation {
  open(): Promise<Store>;
  /** Opens the location read-only (after a read-write store on it wrote something and closed). */
  openReadOnly(): Promise<Store>;
  /** Removes everything the location holds (the test has closed its stores). */
  remove(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreLocation>;

export const KIB = 1024;
export const MIB = 1024 * 1024;
const ROUND_TRIP_SIZES = [0, 1, 5, 4095, 64 * KIB, MIB, 4 * MIB];

export function randomId(): string {
  return randomBytes(32).toString('hex');
}

export function ns(kind: FragmentKind, space = 'main'): Namespace {
  return { space, kind };
}

export async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const id of it) out.push(id);
  return out;
}

function isCode(code: string, id?: string) {
  return (e: unknown): boolean =>
    e instanceof FragfsError && e.code === code && (id === undefined || (e.fragmentId === id && e.message.includes(id)));
}

/** Runs `body` with a store open on a fresh location, closing and removing it afterwards. */
async function withStore<T>(
  factory: StoreFactory,
  body: (store: Store, loc: StoreLocation) => Promise<T>,
): Promise<T> {
  const loc = await factory();
  let store: Store | undefined;
  try {
    store = await loc.open();
    return await body(store, loc);
  } finally {
    await store?.close().catch(() => undefined);
    await loc.remove();
  }
}

/** How many random sequences each model property runs, unless the suite's caller says otherwise. */
export const PROPERTY_RUNS = 40;

export function runConformance(test: TestFn, name: string, factory: StoreFactory, propertyRuns = PROPERTY_RUNS): void {
  const t_ = (title: string) => `${name} conformance: ${title}`;

  test(t_('a range read (getRange where given) returns exactly the range; a missing id or a range past the end rejects'), async (t) => {
    await withStore(factory, async (store) => {
      const bytes = randomBytes(70_000);
      const id = randomId();
      for (const kind of ['pack', 'meta', 'data'] as const) {
        await store.put(ns(kind), id, bytes);
        t.deepEqual(Buffer.from(await getRangeOf(store, ns(kind), id, 0, 10)), bytes.subarray(0, 10));
        t.deepEqual(Buffer.from(await getRangeOf(store, ns(kind), id, 65_000, 5_000)), bytes.subarray(65_000));
        t.is((await getRangeOf(store, ns(kind), id, 70_000, 0)).length, 0);
        const past = await getRangeOf(store, ns(kind), id, 69_999, 2).catch((e: unknown) => e);
        t.true(isCode('CORRUPT')(past), String(past));
        const absent = await getRangeOf(store, ns(kind), randomId(), 0, 1).catch((e: unknown) => e);
        t.true(isCode('MISSING_FRAGMENT')(absent), String(absent));
      }
    });
  });

  test(t_('round trips of every size in every kind'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        for (const size of ROUND_TRIP_SIZES) {
          const id = randomId();
          const bytes = randomBytes(size);
          await store.put(ns(kind), id, bytes);
          t.true(await store.has(ns(kind), id), `${kind} ${size} has`);
          t.is(await store.size(ns(kind), id), size, `${kind} ${size} size`);
          const got = await store.get(ns(kind), id);
          t.true(got instanceof Uint8Array);
          t.true(Buffer.from(got).equals(bytes), `${kind} ${size} bytes`);
          // A size hint is only a hint: one too small or too large still gives the whole fragment.
          for (const expectedBytes of [1, size, 4 * size + 1]) {
            t.true(Buffer.from(await store.get(ns(kind), id, { expectedBytes })).equals(bytes), `${kind} ${size} bytes, expecting ${expectedBytes}`);
          }
        }
      }
    });
  });

  test(t_('data fragments shaped like encoded blocks round trip (status byte, crc32, payload)'), async (t) => {
    await withStore(factory, async (store) => {
      for (const status of [0x00, 0x40, 0x80, 0xc0, 0x01, 0x3f, 0xff]) {
        for (const size of [4, 5, 6, 1000]) {
          const id = randomId();
          const bytes = randomBytes(size);
          bytes[0] = status;
          await store.put(ns('data'), id, bytes);
          t.is(await store.size(ns('data'), id), size);
          t.true(Buffer.from(await store.get(ns('data'), id)).equals(bytes), `status ${status} size ${size}`);
        }
      }
    });
  });

  test(t_('get of a missing id rejects MISSING_FRAGMENT naming the id; has false; size undefined'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        const id = randomId();
        const e = await t.throwsAsync(store.get(ns(kind), id));
        t.true(isCode('MISSING_FRAGMENT', id)(e), String(e));
        t.false(await store.has(ns(kind), id));
        t.is(await store.size(ns(kind), id), undefined);
      }
      // Also in a space that has never been written, and after the space exists.
      await store.put(ns('data'), randomId(), randomBytes(10));
      const id = randomId();
      const e = await t.throwsAsync(store.get(ns('data'), id));
      t.true(isCode('MISSING_FRAGMENT', id)(e));
      t.deepEqual(await collect(store.list(ns('meta', 'never-written'))), []);
    });
  });

  test(t_('invalid ids and namespaces reject INVALID on every method'), async (t) => {
    await withStore(factory, async (store) => {
      const good = randomId();
      const badIds: unknown[] = [
        '',
        good.toUpperCase(),
        good.slice(1),
        good + '0',
        '../' + good.slice(3),
        good.slice(0, 63) + 'g',
        undefined,
        42,
      ];
      const badNs: unknown[] = [
        { space: '', kind: 'data' },
        { space: 'Main', kind: 'data' },
        { space: '../x', kind: 'data' },
        { space: 'a/b', kind: 'data' },
        { space: 'x'.repeat(65), kind: 'data' },
        { space: 'main', kind: 'blob' },
        { space: 'main' },
        undefined,
      ];
      const calls = (n: Namespace, id: string): Array<[string, () => Promise<unknown>]> => [
        ['put', () => store.put(n, id, new Uint8Array(3))],
        ['get', () => store.get(n, id)],
        ['has', () => store.has(n, id)],
        ['size', () => store.size(n, id)],
        ['delete', () => store.delete(n, id)],
        ['trash', () => store.trash(n, id)],
        ['untrash', () => store.untrash(n, id)],
        ['purge', () => store.purge(n, id)],
      ];
      for (const id of badIds) {
        for (const [what, call] of calls(ns('data'), id as string)) {
          const e = await t.throwsAsync(async () => call());
          t.true(isCode('INVALID')(e), `${what}(${String(id)}): ${String(e)}`);
        }
      }
      for (const n of badNs) {
        for (const [what, call] of calls(n as Namespace, good)) {
          const e = await t.throwsAsync(async () => call());
          t.true(isCode('INVALID')(e), `${what}(${JSON.stringify(n)}): ${String(e)}`);
        }
        const e = await t.throwsAsync(async () => collect(store.list(n as Namespace)));
        t.true(isCode('INVALID')(e), `list(${JSON.stringify(n)}): ${String(e)}`);
        const e2 = await t.throwsAsync(async () => collect(store.listTrash(n as Namespace)));
        t.true(isCode('INVALID')(e2), `listTrash(${JSON.stringify(n)}): ${String(e2)}`);
      }
      // Nothing was stored by the rejected puts, nor moved by the rejected trash calls.
      for (const kind of FRAGMENT_KINDS) {
        t.deepEqual(await collect(store.list(ns(kind))), []);
        t.deepEqual(await collect(store.listTrash(ns(kind))), []);
      }
    });
  });

  test(t_('put is idempotent; 16 concurrent puts of one id all succeed and leave one copy'), async (t) => {
    await withStore(factory, async (store) => {
      const id = randomId();
      const bytes = randomBytes(100 * KIB);
      await store.put(ns('data'), id, bytes);
      await store.put(ns('data'), id, bytes);
      t.true(Buffer.from(await store.get(ns('data'), id)).equals(bytes));

      const id2 = randomId();
      const bytes2 = randomBytes(256 * KIB);
      bytes2[0] = 0xc0; // the encoded-block shape as well (split stores it as two files)
      const results = await Promise.allSettled(Array.from({ length: 16 }, () => store.put(ns('data'), id2, bytes2)));
      t.deepEqual(
        results.map((r) => r.status),
        Array(16).fill('fulfilled'),
      );
      t.deepEqual((await collect(store.list(ns('data')))).sort(), [id, id2].sort());
      t.true(Buffer.from(await store.get(ns('data'), id2)).equals(bytes2));

      const id3 = randomId();
      const bytes3 = randomBytes(1000);
      await Promise.all(Array.from({ length: 16 }, () => store.put(ns('meta'), id3, bytes3)));
      t.deepEqual(await collect(store.list(ns('meta'))), [id3]);
    });
  });

  test(t_('list yields each id exactly once over ~300 ids; kinds are independent'), async (t) => {
    await withStore(factory, async (store) => {
      const expected: Record<FragmentKind, Set<string>> = { data: new Set(), meta: new Set(), ref: new Set(), pack: new Set(), index: new Set(), parity: new Set() };
      const shared: string[] = [];
      for (let i = 0; i < 100; i++) {
        for (const kind of FRAGMENT_KINDS) expected[kind].add(randomId());
      }
      // The same ids in data and meta are two fragments.
      for (let i = 0; i < 10; i++) {
        const id = randomId();
        shared.push(id);
        expected.data.add(id);
        expected.meta.add(id);
      }
      const jobs: Promise<void>[] = [];
      for (const kind of FRAGMENT_KINDS) {
        for (const id of expected[kind]) jobs.push(store.put(ns(kind), id, Buffer.from(`${kind}:${id}`)));
      }
      await Promise.all(jobs);
      for (const kind of FRAGMENT_KINDS) {
        const listed = await collect(store.list(ns(kind)));
        t.is(listed.length, expected[kind].size, `${kind} count`);
        t.deepEqual([...listed].sort(), [...expected[kind]].sort(), `${kind} ids (each once)`);
      }
      for (const id of shared) {
        t.is(Buffer.from(await store.get(ns('data'), id)).toString(), `data:${id}`);
        t.is(Buffer.from(await store.get(ns('meta'), id)).toString(), `meta:${id}`);
      }
      // Deleting one kind keeps the other.
      await store.delete(ns('data'), shared[0]!);
      t.false(await store.has(ns('data'), shared[0]!));
      t.true(await store.has(ns('meta'), shared[0]!));
      t.is(Buffer.from(await store.get(ns('meta'), shared[0]!)).toString(), `meta:${shared[0]}`);
      t.false((await collect(store.list(ns('data')))).includes(shared[0]!));
      t.true((await collect(store.list(ns('meta')))).includes(shared[0]!));
      t.false(await store.has(ns('ref'), shared[0]!));
    });
  });

  test(t_('delete removes; delete of a missing id succeeds'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        const id = randomId();
        const bytes = randomBytes(5000);
        bytes[0] = 0x80;
        await store.put(ns(kind), id, bytes);
        t.true(await store.has(ns(kind), id));
        await store.delete(ns(kind), id);
        t.false(await store.has(ns(kind), id));
        t.is(await store.size(ns(kind), id), undefined);
        t.true(isCode('MISSING_FRAGMENT', id)(await t.throwsAsync(store.get(ns(kind), id))));
        t.deepEqual(await collect(store.list(ns(kind))), []);
        await t.notThrowsAsync(store.delete(ns(kind), id));
        await t.notThrowsAsync(store.delete(ns(kind), randomId()));
        await t.notThrowsAsync(store.delete(ns(kind, 'never-written'), randomId()));
        // A deleted id can be put again.
        await store.put(ns(kind), id, bytes);
        t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes));
      }
    });
  });

  test(t_('two spaces are independent'), async (t) => {
    await withStore(factory, async (store) => {
      const id = randomId();
      await store.put(ns('data', 'alpha'), id, Buffer.from('alpha'));
      t.false(await store.has(ns('data', 'beta'), id));
      await store.put(ns('data', 'beta'), id, Buffer.from('beta!'));
      const other = randomId();
      await store.put(ns('ref', 'beta'), other, Buffer.from('r'));
      t.is(Buffer.from(await store.get(ns('data', 'alpha'), id)).toString(), 'alpha');
      t.is(Buffer.from(await store.get(ns('data', 'beta'), id)).toString(), 'beta!');
      t.deepEqual(await collect(store.list(ns('ref', 'alpha'))), []);
      t.deepEqual(await collect(store.list(ns('ref', 'beta'))), [other]);
      await store.delete(ns('data', 'alpha'), id);
      t.false(await store.has(ns('data', 'alpha'), id));
      t.true(await store.has(ns('data', 'beta'), id));
    });
  });

  test(t_('every resolved put survives close and reopen'), async (t) => {
    await withStore(factory, async (first, loc) => {
      const written = new Map<string, { kind: FragmentKind; space: string; bytes: Buffer }>();
      for (const kind of FRAGMENT_KINDS) {
        for (const space of ['main', 'second']) {
          for (const size of [0, 7, 70 * KIB, MIB]) {
            const bytes = randomBytes(size);
            if (size > 0) bytes[0] = 0x40;
            const id = randomId();
            await first.put(ns(kind, space), id, bytes);
            written.set(`${kind}/${space}/${id}`, { kind, space, bytes });
          }
        }
      }
      const gone = randomId();
      await first.put(ns('data'), gone, Buffer.from('deleted before close'));
      await first.delete(ns('data'), gone);
      await first.close();
      const second = await loc.open();
      try {
        for (const [key, { kind, space, bytes }] of written) {
          const id = key.split('/')[2]!;
          t.true(Buffer.from(await second.get(ns(kind, space), id)).equals(bytes), key);
        }
        t.false(await second.has(ns('data'), gone));
        t.is((await collect(second.list(ns('meta', 'second')))).length, 4);
      } finally {
        await second.close();
      }
    });
  });

  test(t_('mutating the input buffer once put resolved, or a returned buffer, does not change stored bytes'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        for (const size of [10, MIB]) {
          const id = randomId();
          const bytes = randomBytes(size);
          bytes[0] = 0xc0;
          const original = Buffer.from(bytes);
          // The caller leaves `bytes` alone until the put resolves (Store contract), then may reuse them.
          await store.put(ns(kind), id, bytes);
          bytes.fill(0x55);
          const got = await store.get(ns(kind), id);
          t.true(Buffer.from(got).equals(original), `${kind} ${size}`);
          got.fill(0x11);
          t.true(Buffer.from(await store.get(ns(kind), id)).equals(original), `${kind} ${size} after mutating get`);
        }
      }
    });
  });

  // ---- the trash ------------------------------------------------------------------------------

  /** Bytes of each shape a backend may store differently: empty, raw, encoded-block shaped, 1 MiB. */
  const trashSamples = (): Buffer[] => {
    const block = randomBytes(70 * KIB);
    block[0] = 0xc0;
    const big = randomBytes(MIB);
    big[0] = 0x40;
    return [Buffer.alloc(0), Buffer.from([0x01, 2, 3]), block, big];
  };

  test(t_('trash hides a fragment from get, has, size and list; listTrash shows it; untrash restores its bytes'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        const keep = randomId();
        await store.put(ns(kind), keep, Buffer.from('stays'));
        for (const bytes of trashSamples()) {
          const id = randomId();
          await store.put(ns(kind), id, bytes);
          await store.trash(ns(kind), id);
          const e = await t.throwsAsync(store.get(ns(kind), id));
          t.true(isCode('MISSING_FRAGMENT', id)(e), `${kind} ${bytes.length}: ${String(e)}`);
          t.false(await store.has(ns(kind), id));
          t.is(await store.size(ns(kind), id), undefined);
          t.deepEqual(await collect(store.list(ns(kind))), [keep]);
          t.deepEqual(await collect(store.listTrash(ns(kind))), [id]);

          await store.untrash(ns(kind), id);
          t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes), `${kind} ${bytes.length} bytes back`);
          t.is(await store.size(ns(kind), id), bytes.length);
          t.deepEqual((await collect(store.list(ns(kind)))).sort(), [keep, id].sort());
          t.deepEqual(await collect(store.listTrash(ns(kind))), []);
          await store.delete(ns(kind), id);
        }
        t.true(Buffer.from(await store.get(ns(kind), keep)).equals(Buffer.from('stays')));
      }
    });
  });

  test(t_('put of a trashed id writes it in place and leaves the trash copy; untrash then keeps one copy'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        for (const bytes of trashSamples()) {
          const id = randomId();
          await store.put(ns(kind), id, bytes);
          await store.trash(ns(kind), id);
          await store.put(ns(kind), id, bytes);
          t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes));
          t.deepEqual(await collect(store.list(ns(kind))), [id]);
          t.deepEqual(await collect(store.listTrash(ns(kind))), [id], 'the trash copy stays');
          // delete does not touch the trash either.
          await store.delete(ns(kind), id);
          t.deepEqual(await collect(store.listTrash(ns(kind))), [id]);
          await store.put(ns(kind), id, bytes);

          await store.untrash(ns(kind), id);
          t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes), `${kind} ${bytes.length}`);
          t.is(await store.size(ns(kind), id), bytes.length);
          t.deepEqual(await collect(store.list(ns(kind))), [id], 'one copy in place');
          t.deepEqual(await collect(store.listTrash(ns(kind))), [], 'the trash copy was dropped');
          // A second trash while a trash copy exists replaces it; the fragment comes back whole.
          await store.trash(ns(kind), id);
          await store.put(ns(kind), id, bytes);
          await store.trash(ns(kind), id);
          t.deepEqual(await collect(store.list(ns(kind))), []);
          t.deepEqual(await collect(store.listTrash(ns(kind))), [id]);
          await store.untrash(ns(kind), id);
          t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes));
          t.deepEqual(await collect(store.listTrash(ns(kind))), []);
          await store.delete(ns(kind), id);
        }
      }
    });
  });

  test(t_('purge deletes the trash copy for good and is idempotent'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        for (const bytes of trashSamples()) {
          const id = randomId();
          await store.put(ns(kind), id, bytes);
          await store.trash(ns(kind), id);
          await store.purge(ns(kind), id);
          t.deepEqual(await collect(store.listTrash(ns(kind))), []);
          t.false(await store.has(ns(kind), id));
          await store.untrash(ns(kind), id);
          t.false(await store.has(ns(kind), id), 'nothing to move back');
          t.true(isCode('MISSING_FRAGMENT', id)(await t.throwsAsync(store.get(ns(kind), id))));
          await t.notThrowsAsync(store.purge(ns(kind), id));
          // A fragment in place is not purged with its trash copy.
          await store.put(ns(kind), id, bytes);
          await store.trash(ns(kind), id);
          await store.put(ns(kind), id, bytes);
          await store.purge(ns(kind), id);
          t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes));
          t.deepEqual(await collect(store.listTrash(ns(kind))), []);
          await store.delete(ns(kind), id);
        }
      }
    });
  });

  test(t_('trash, untrash and purge of absent ids succeed and change nothing'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        const present = randomId();
        await store.put(ns(kind), present, Buffer.from('present'));
        for (const n of [ns(kind), ns(kind, 'never-written')]) {
          const id = randomId();
          await t.notThrowsAsync(store.trash(n, id));
          await t.notThrowsAsync(store.untrash(n, id));
          await t.notThrowsAsync(store.purge(n, id));
          t.false(await store.has(n, id));
          t.deepEqual(await collect(store.listTrash(n)), []);
        }
        // untrash and purge of an id in place but not in the trash leave it in place.
        await store.untrash(ns(kind), present);
        await store.purge(ns(kind), present);
        t.is(Buffer.from(await store.get(ns(kind), present)).toString(), 'present');
        t.deepEqual(await collect(store.list(ns(kind))), [present]);
        t.deepEqual(await collect(store.listTrash(ns(kind))), []);
      }
    });
  });

  test(t_('the trash of each space and kind is its own'), async (t) => {
    await withStore(factory, async (store) => {
      const id = randomId();
      const bytesOf = (what: string) => {
        const b = Buffer.concat([Buffer.from([0x80, 1, 2, 3, 4]), Buffer.from(what)]);
        return b;
      };
      const spots: Namespace[] = [ns('data', 'alpha'), ns('meta', 'alpha'), ns('ref', 'alpha'), ns('data', 'beta')];
      for (const n of spots) await store.put(n, id, bytesOf(`${n.space}/${n.kind}`));
      await store.trash(ns('data', 'alpha'), id);
      t.deepEqual(await collect(store.listTrash(ns('data', 'alpha'))), [id]);
      for (const n of spots.slice(1)) {
        t.true(Buffer.from(await store.get(n, id)).equals(bytesOf(`${n.space}/${n.kind}`)), `${n.space}/${n.kind} in place`);
        t.deepEqual(await collect(store.listTrash(n)), [], `${n.space}/${n.kind} trash empty`);
      }
      // Moves in the other namespaces do not reach the trashed copy.
      await store.untrash(ns('data', 'beta'), id);
      await store.purge(ns('data', 'beta'), id);
      await store.purge(ns('meta', 'alpha'), id);
      await store.trash(ns('meta', 'alpha'), id);
      await store.trash(ns('data', 'beta'), id);
      await store.purge(ns('data', 'beta'), id);
      t.deepEqual(await collect(store.listTrash(ns('data', 'alpha'))), [id]);
      t.deepEqual(await collect(store.listTrash(ns('meta', 'alpha'))), [id]);
      t.deepEqual(await collect(store.listTrash(ns('data', 'beta'))), []);
      t.false(await store.has(ns('data', 'beta'), id));
      t.true(await store.has(ns('ref', 'alpha'), id));
      await store.untrash(ns('data', 'alpha'), id);
      await store.untrash(ns('meta', 'alpha'), id);
      t.true(Buffer.from(await store.get(ns('data', 'alpha'), id)).equals(bytesOf('alpha/data')));
      t.true(Buffer.from(await store.get(ns('meta', 'alpha'), id)).equals(bytesOf('alpha/meta')));
    });
  });

  test(t_('the trash survives close and reopen; read-only opens list it and reject trash, untrash and purge'), async (t) => {
    await withStore(factory, async (first, loc) => {
      const ids: Record<FragmentKind, string> = { data: randomId(), meta: randomId(), ref: randomId(), pack: randomId(), index: randomId(), parity: randomId() };
      const samples = trashSamples();
      for (const kind of FRAGMENT_KINDS) {
        await first.put(ns(kind), ids[kind], samples[3]!);
        await first.trash(ns(kind), ids[kind]);
      }
      const placed = randomId();
      await first.put(ns('data'), placed, samples[2]!);
      await first.close();

      const ro = await loc.openReadOnly();
      try {
        for (const kind of FRAGMENT_KINDS) {
          t.deepEqual(await collect(ro.listTrash(ns(kind))), [ids[kind]]);
          t.false(await ro.has(ns(kind), ids[kind]));
        }
        const calls: Array<[string, () => Promise<void>]> = [
          ['trash', () => ro.trash(ns('data'), placed)],
          ['untrash', () => ro.untrash(ns('data'), ids.data)],
          ['purge', () => ro.purge(ns('data'), ids.data)],
          ['trash of an absent id', () => ro.trash(ns('meta'), randomId())],
        ];
        for (const [what, call] of calls) {
          const e = await t.throwsAsync(call());
          t.true(isCode('READ_ONLY')(e), `${what}: ${String(e)}`);
        }
        t.true(await ro.has(ns('data'), placed));
        t.deepEqual(await collect(ro.listTrash(ns('data'))), [ids.data]);
      } finally {
        await ro.close();
      }

      const again = await loc.open();
      try {
        for (const kind of FRAGMENT_KINDS) {
          await again.untrash(ns(kind), ids[kind]);
          t.true(Buffer.from(await again.get(ns(kind), ids[kind])).equals(samples[3]!), `${kind} back after reopen`);
          t.deepEqual(await collect(again.listTrash(ns(kind))), []);
        }
      } finally {
        await again.close();
      }
    });
  });

  test(t_('concurrent puts, trashes and untrashes of one id never lose it'), async (t) => {
    await withStore(factory, async (store) => {
      for (const kind of FRAGMENT_KINDS) {
        for (let round = 0; round < 5; round++) {
          const id = randomId();
          const bytes = randomBytes(1000 + round * 50 * KIB);
          bytes[0] = 0xc0;
          await store.put(ns(kind), id, bytes);
          const jobs: Promise<void>[] = [];
          const ops = [() => store.trash(ns(kind), id), () => store.untrash(ns(kind), id), () => store.put(ns(kind), id, bytes)];
          for (let i = 0; i < 12; i++) jobs.push(ops[(i + round) % 3]!());
          await Promise.all(jobs);
          const inPlace = await store.has(ns(kind), id);
          const inTrash = (await collect(store.listTrash(ns(kind)))).includes(id);
          t.true(inPlace || inTrash, `${kind} round ${round}: somewhere`);
          if (inPlace) t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes));
          await store.untrash(ns(kind), id);
          t.true(Buffer.from(await store.get(ns(kind), id)).equals(bytes), `${kind} round ${round}: whole`);
          t.deepEqual(await collect(store.listTrash(ns(kind))), []);
        }
      }
    });
  });

  test(t_('property: any sequence of puts, deletes, trashes, untrashes and purges matches a model'), async (t) => {
    await withStore(factory, async (store, loc) => {
      const pool = Array.from({ length: 5 }, randomId);
      const op = fc.record({
        op: fc.constantFrom('put' as const, 'delete' as const, 'trash' as const, 'untrash' as const, 'purge' as const),
        kind: fc.constantFrom(...FRAGMENT_KINDS),
        idx: fc.nat({ max: pool.length - 1 }),
      });
      const contents = fc.array(
        fc.uint8Array({ maxLength: 40 }).map((b) => {
          // Half of them shaped like encoded blocks (split stores those as two files).
          if (b.length >= 5 && b[1]! % 2 === 0) b[0] = b[0]! & 0xc0;
          return b;
        }),
        { minLength: pool.length * FRAGMENT_KINDS.length, maxLength: pool.length * FRAGMENT_KINDS.length },
      );
      let run = 0;
      const models: Array<[string, TrashModel]> = [];
      await fc.assert(
        fc.asyncProperty(contents, fc.array(op, { maxLength: 30 }), async (bytesOf, ops) => {
          const space = `t${run++}`;
          const model: TrashModel = { place: new Map(), trash: new Map() };
          for (const o of ops) {
            const id = pool[o.idx]!;
            const key = `${o.kind}/${id}`;
            const n = ns(o.kind, space);
            switch (o.op) {
              case 'put': {
                const bytes = bytesOf[FRAGMENT_KINDS.indexOf(o.kind) * pool.length + o.idx]!;
                await store.put(n, id, bytes);
                if (!model.place.has(key)) model.place.set(key, bytes);
                break;
              }
              case 'delete':
                await store.delete(n, id);
                model.place.delete(key);
                break;
              case 'trash': {
                await store.trash(n, id);
                const v = model.place.get(key);
                if (v !== undefined) {
                  model.trash.set(key, v);
                  model.place.delete(key);
                }
                break;
              }
              case 'untrash': {
                await store.untrash(n, id);
                const v = model.trash.get(key);
                if (v !== undefined) {
                  if (!model.place.has(key)) model.place.set(key, v);
                  model.trash.delete(key);
                }
                break;
              }
              case 'purge':
                await store.purge(n, id);
                model.trash.delete(key);
                break;
            }
          }
          await checkModel(store, space, pool, model.place);
          await checkTrash(store, space, pool, model.trash);
          models.push([space, model]);
        }),
        { numRuns: propertyRuns },
      );
      t.is(models.length, propertyRuns);
      // The state of every run survives a reopen, and every trash copy holds its bytes.
      await store.close();
      const again = await loc.open();
      try {
        for (const [space, model] of models) {
          await checkModel(again, space, pool, model.place);
          await checkTrash(again, space, pool, model.trash);
          for (const key of model.trash.keys()) {
            const [kind, id] = key.split('/') as [FragmentKind, string];
            await again.untrash(ns(kind, space), id);
            if (!model.place.has(key)) model.place.set(key, model.trash.get(key)!);
          }
          model.trash.clear();
          await checkModel(again, space, pool, model.place);
          await checkTrash(again, space, pool, model.trash);
        }
      } finally {
        await again.close();
      }
    });
  });

  test(t_('property: any sequence of puts and deletes matches a Map model'), async (t) => {
    await withStore(factory, async (store, loc) => {
      const pool = Array.from({ length: 6 }, randomId);
      const op = fc.record({
        op: fc.constantFrom('put' as const, 'delete' as const),
        kind: fc.constantFrom(...FRAGMENT_KINDS),
        idx: fc.nat({ max: pool.length - 1 }),
      });
      // Content addressing: one id always carries the same bytes, so each (kind, id) gets its bytes once per run.
      const contents = fc.array(fc.uint8Array({ maxLength: 40 }), {
        minLength: pool.length * FRAGMENT_KINDS.length,
        maxLength: pool.length * FRAGMENT_KINDS.length,
      });
      let run = 0;
      const models: Array<[string, Map<string, Uint8Array>]> = [];
      await fc.assert(
        fc.asyncProperty(contents, fc.array(op, { maxLength: 24 }), async (bytesOf, ops) => {
          // Each run gets its own space in the one store, so runs cannot see each other.
          const space = `p${run++}`;
          const model = new Map<string, Uint8Array>(); // key `${kind}/${id}`
          for (const o of ops) {
            const id = pool[o.idx]!;
            const key = `${o.kind}/${id}`;
            if (o.op === 'put') {
              const bytes = bytesOf[FRAGMENT_KINDS.indexOf(o.kind) * pool.length + o.idx]!;
              await store.put(ns(o.kind, space), id, bytes);
              model.set(key, bytes);
            } else {
              await store.delete(ns(o.kind, space), id);
              model.delete(key);
            }
          }
          await checkModel(store, space, pool, model);
          models.push([space, model]);
        }),
        { numRuns: propertyRuns },
      );
      t.is(models.length, propertyRuns);
      // And the final state of every run survives a reopen.
      await store.close();
      const again = await loc.open();
      try {
        for (const [space, model] of models) await checkModel(again, space, pool, model);
      } finally {
        await again.close();
      }
    });
  });
}

async function checkModel(
  store: Store,
  space: string,
  pool: string[],
  model: Map<string, Uint8Array>,
): Promise<void> {
  for (const kind of FRAGMENT_KINDS) {
    const listed = (await collect(store.list(ns(kind, space)))).sort();
    const expected = pool.filter((id) => model.has(`${kind}/${id}`)).sort();
    if (JSON.stringify(listed) !== JSON.stringify(expected)) {
      throw new Error(`list ${space}/${kind}: ${listed.join(',')} != ${expected.join(',')}`);
    }
    for (const id of pool) {
      const want = model.get(`${kind}/${id}`);
      const has = await store.has(ns(kind, space), id);
      if (has !== (want !== undefined)) throw new Error(`has ${space}/${kind}/${id}: ${has}`);
      if (want !== undefined) {
        const got = await store.get(ns(kind, space), id);
        if (!Buffer.from(got).equals(want)) throw new Error(`bytes of ${space}/${kind}/${id} differ`);
        if ((await store.size(ns(kind, space), id)) !== want.length) throw new Error(`size of ${space}/${kind}/${id}`);
      }
    }
  }
}

/** What the trash property test expects: fragments in place and in the trash, by `${kind}/${id}`. */
interface TrashModel {
  place: Map<string, Uint8Array>;
  trash: Map<string, Uint8Array>;
}

async function checkTrash(store: Store, space: string, pool: string[], trash: Map<string, Uint8Array>): Promise<void> {
  for (const kind of FRAGMENT_KINDS) {
    const listed = (await collect(store.listTrash(ns(kind, space)))).sort();
    const expected = pool.filter((id) => trash.has(`${kind}/${id}`)).sort();
    if (JSON.stringify(listed) !== JSON.stringify(expected)) {
      throw new Error(`listTrash ${space}/${kind}: ${listed.join(',')} != ${expected.join(',')}`);
    }
  }
}
