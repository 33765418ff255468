// Read-ahead policy: the window grows along a sequential stream, survives the small reorderings the
// kernel and libfuse's threads introduce, and a real seek resets it; files opened in turn in one
// folder load the next ones ahead.

import test from 'ava';
import { newReadAheadState, readAhead } from '../../src/vfs/prefetch.js';
import { SnapshotVfs } from '../../src/vfs/snapshot-vfs.js';
import { PathVfs } from './path-vfs.js';
import { ME, O_RDONLY, fixture, pseudoRandom, writeFile } from './vfs-helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const REQ = 128 * KiB;
const FILE = 1024 * MiB;

/** Reads the offsets in order; returns how far ahead of the stream the last read asked for. */
function aheadAfter(offsets: number[]): number {
  const st = newReadAheadState();
  for (const pos of offsets) readAhead(st, pos, REQ, FILE, MiB, 8 * MiB);
  return st.issuedTo - (Math.max(...offsets) + REQ);
}

test('a sequential stream grows the window to the maximum', (t) => {
  const offsets = Array.from({ length: 64 }, (_, i) => i * REQ);
  t.is(aheadAfter(offsets), 8 * MiB);
});

test('a stream arriving with neighbouring requests swapped keeps its window', (t) => {
  const offsets: number[] = [];
  for (let i = 0; i < 64; i += 2) offsets.push((i + 1) * REQ, i * REQ);
  offsets[0] = 0; // a stream starts at 0
  offsets[1] = REQ;
  t.true(aheadAfter(offsets) >= 7 * MiB);
});

test('a seek far away resets the window; reading on from there grows it again', (t) => {
  const st = newReadAheadState();
  for (let i = 0; i < 64; i++) readAhead(st, i * REQ, REQ, FILE, MiB, 8 * MiB);
  t.is(readAhead(st, 512 * MiB, REQ, FILE, MiB, 8 * MiB), undefined);
  t.is(st.streak, 0);
  const next = readAhead(st, 512 * MiB + REQ, REQ, FILE, MiB, 8 * MiB);
  t.truthy(next);
  t.true(next!.to - next!.from <= MiB + REQ);
});

test('nothing is asked for past the end of the file', (t) => {
  const st = newReadAheadState();
  let last: { from: number; to: number } | undefined;
  for (let pos = 0; pos < 3 * MiB; pos += REQ) last = readAhead(st, pos, REQ, 3 * MiB, MiB, 8 * MiB) ?? last;
  t.is(last!.to, 3 * MiB);
});

test('opening the files of one folder in turn loads the next small files ahead (live and snapshot)', async (t) => {
  const fx = await fixture();
  try {
    const names = ['a', 'b', 'c', 'd'];
    await fx.vfs.mkdir('/dir', 0o755, ME);
    for (const n of names) await writeFile(fx.vfs, `/dir/${n}`, pseudoRandom(3000, n.charCodeAt(0)));
    const key = await fx.vfs.snapshot();
    // A fresh cache: nothing of the files is loaded yet.
    const live = await fx.reopen();
    const snap = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key }));
    // Loads from the store in flight: once they resolved, removing fragments cannot touch what was
    // loaded ahead (a fixed wait here was too short on a busy machine).
    const store = fx.repo.store;
    const realGet = store.get.bind(store);
    const loads = new Set<Promise<unknown>>();
    store.get = (ns, id) => {
      const p = realGet(ns, id);
      loads.add(p);
      return p;
    };
    // A walker opens files in readdir order: the first two, and the last one is then loaded ahead.
    const order = new Map<PathVfs, string[]>();
    for (const v of [live, snap]) {
      const listed = await v.readdir('/dir');
      order.set(v, listed);
      for (const n of listed.slice(0, 2)) await v.release(`/dir/${n}`, await v.open(`/dir/${n}`, O_RDONLY));
      t.is((await v.getattr(`/dir/${listed[3]!}`)).size, 3000);
    }
    await Promise.allSettled(loads);
    store.get = realGet;
    await new Promise((r) => setImmediate(r));
    // With the fragments gone from the store, only a block loaded ahead can still be read.
    const ids: string[] = [];
    for await (const id of fx.repo.store.list(fx.repo.dataNs)) ids.push(id);
    for (const id of ids) await fx.repo.store.delete(fx.repo.dataNs, id);
    for (const v of [live, snap]) {
      const last = order.get(v)![3]!;
      const fh = await v.open(`/dir/${last}`, O_RDONLY);
      const buf = Buffer.alloc(3000);
      t.is(await v.read(`/dir/${last}`, fh, buf, 3000, 0), 3000);
      t.true(buf.equals(pseudoRandom(3000, last.charCodeAt(0))));
      await v.release(`/dir/${last}`, fh);
    }
    // A file opened alone (no other file of its folder just before) loads nothing ahead.
    const cold = new PathVfs(await SnapshotVfs.open({ repo: fx.repo, key }));
    const fh = await cold.open('/dir/c', O_RDONLY);
    await t.throwsAsync(cold.read('/dir/c', fh, Buffer.alloc(10), 10, 0));
  } finally {
    await fx.done();
  }
});
