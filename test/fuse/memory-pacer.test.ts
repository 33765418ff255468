// The memory pacer: a collection starts only above the soft limit, never two at once, never sooner
// than its gaps allow; the real V8 gc() takes the options it passes; the limit follows the settings.

import test from 'ava';
import { GAP_PER_COLLECT_MS, MAX_GAP_MS, MIN_GAP_MS, MemoryPacer, REGROWTH_BYTES, RUNTIME_ALLOWANCE_BYTES, ownAnonBytes, softMemoryLimit, type CollectFn } from '../../src/fuse/memory-pacer.js';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

const MiB = 1024 * 1024;

function fakeCollect() {
  const calls: unknown[] = [];
  let finish: () => void = () => undefined;
  const collect: CollectFn = (o) => {
    calls.push(o);
    return new Promise<void>((r) => (finish = r));
  };
  return { calls, collect, finish: () => finish() };
}

test('collects only above the limit, one at a time, then waits at least MIN_GAP_MS', async (t) => {
  let own = 100 * MiB;
  let trims = 0;
  const f = fakeCollect();
  const pacer = new MemoryPacer({ softLimitBytes: 150 * MiB, collect: f.collect, afterCollect: () => trims++, ownBytes: () => own });
  t.false(pacer.check(0), 'under the limit');
  own = 151 * MiB;
  t.true(pacer.check(1));
  t.deepEqual(f.calls, [{ type: 'major', execution: 'async' }]);
  t.false(pacer.check(2), 'a collection is running');
  own = 100 * MiB;
  f.finish();
  await new Promise((r) => setImmediate(r));
  t.is(trims, 1, 'malloc trimmed after it');
  own = 151 * MiB;
  // The gap runs from when the collection ended, a moment before `now`: half a gap in, a stall of
  // the test process (a loaded CI machine) cannot carry the check past it.
  const now = Date.now();
  t.false(pacer.check(now + MIN_GAP_MS / 2), 'within the gap');
  t.true(pacer.check(now + MIN_GAP_MS + 50), 'after the gap');
  t.is(pacer.collections, 2);
});

test('a long collection stretches the gap to GAP_PER_COLLECT_MS times its length', async (t) => {
  const f = fakeCollect();
  const pacer = new MemoryPacer({ softLimitBytes: 0, collect: f.collect, afterCollect: () => undefined, ownBytes: () => MiB });
  t.true(pacer.check(0));
  await new Promise((r) => setTimeout(r, 150));
  f.finish();
  await new Promise((r) => setImmediate(r));
  const now = Date.now();
  t.false(pacer.check(now + Math.max(MIN_GAP_MS, GAP_PER_COLLECT_MS * 140) - 20));
  t.true(pacer.check(now + GAP_PER_COLLECT_MS * 250));
});

test('collections that leave the process above its limit double the gap, up to MAX_GAP_MS; one that helps resets it', async (t) => {
  let own = 200 * MiB;
  const f = fakeCollect();
  const pacer = new MemoryPacer({ softLimitBytes: 150 * MiB, collect: f.collect, afterCollect: () => undefined, ownBytes: () => own });
  let now = 0;
  const gaps: number[] = [];
  for (let i = 0; i < 8; i++) {
    t.true(pacer.check(now));
    f.finish();
    await new Promise((r) => setImmediate(r));
    // The next allowed time, found by probing (the pacer counts from Date.now() when one ends).
    const base = Date.now();
    let gap = MIN_GAP_MS / 2;
    while (!pacer.check(base + gap)) gap *= 2;
    gaps.push(gap);
    f.finish();
    await new Promise((r) => setImmediate(r));
    now = Date.now() + 2 * MAX_GAP_MS;
  }
  t.true(gaps.every((g, i) => i === 0 || g >= gaps[i - 1]!), `gaps grow: ${gaps.join(' ')}`);
  t.true(gaps[gaps.length - 1]! >= MAX_GAP_MS / 2 && gaps[gaps.length - 1]! <= 2 * MAX_GAP_MS, `capped: ${gaps.join(' ')}`);
  own = 100 * MiB;
  t.false(pacer.check(now), 'under the limit: nothing to do');
  own = 200 * MiB;
  t.true(pacer.check(now));
  own = 100 * MiB;
  f.finish();
  await new Promise((r) => setImmediate(r));
  own = 200 * MiB;
  t.true(pacer.check(Date.now() + MIN_GAP_MS + 50), 'a collection that helped: back to the shortest gap');
});

test('during a doubled wait, growth by REGROWTH_BYTES past what the last collection left starts one', async (t) => {
  let own = 200 * MiB;
  const f = fakeCollect();
  const pacer = new MemoryPacer({ softLimitBytes: 150 * MiB, collect: f.collect, afterCollect: () => undefined, ownBytes: () => own });
  let now = 0;
  for (let i = 0; i < 5; i++) {
    t.true(pacer.check(now));
    f.finish();
    await new Promise((r) => setImmediate(r));
    now = Date.now() + MAX_GAP_MS + 10;
  }
  now = Date.now() + MIN_GAP_MS + 10;
  t.false(pacer.check(now), 'fruitless five times: waiting');
  own = 200 * MiB + REGROWTH_BYTES - 1;
  t.false(pacer.check(now), 'grown less than REGROWTH_BYTES');
  t.true(pacer.check(now, true), 'busy: the doubled wait does not hold');
  f.finish();
  await new Promise((r) => setImmediate(r));
  own = 200 * MiB + 2 * REGROWTH_BYTES - 2;
  now = Date.now() + MIN_GAP_MS + 10;
  t.false(pacer.check(now), 'idle again, waiting');
  own = 200 * MiB + 2 * REGROWTH_BYTES - 1;
  t.true(pacer.check(now), 'grown again: new garbage');
});

test('without gc() or a reading of /proc it does nothing; a collect that throws leaves it usable', (t) => {
  t.false(new MemoryPacer({ softLimitBytes: 0, collect: undefined, afterCollect: () => undefined, ownBytes: () => MiB }).check());
  t.false(new MemoryPacer({ softLimitBytes: 0, collect: () => undefined, afterCollect: () => undefined, ownBytes: () => undefined }).check());
  let after = 0;
  const throwing = new MemoryPacer({
    softLimitBytes: 0,
    collect: () => {
      throw new Error('no such option');
    },
    afterCollect: () => after++,
    ownBytes: () => MiB,
  });
  t.true(throwing.check(0));
  t.is(after, 1);
  t.true(throwing.check(Date.now() + MAX_GAP_MS + 1));
});

test("V8's gc() takes the options the pacer passes and answers with a promise", async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as CollectFn;
  const r = gc({ type: 'major', execution: 'async' });
  // The promise belongs to the context gc() was taken from: test its shape, not its class.
  t.is(typeof (r as Promise<void> | undefined)?.then, 'function');
  await r;
});

test('the limit is the caches plus the runtime allowance; RssAnon reads', (t) => {
  t.is(softMemoryLimit({ cacheBytes: 32 * MiB, metaCacheBytes: 16 * MiB, writeBufferBytes: 16 * MiB }), RUNTIME_ALLOWANCE_BYTES + 64 * MiB);
  const own = ownAnonBytes();
  t.true(own !== undefined && own > MiB && own < 4096 * MiB, `RssAnon read as ${own}`);
});
