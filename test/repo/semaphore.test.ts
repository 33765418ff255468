// The counting semaphore that bounds work in flight: capacity, first-come order, and a release that
// stays cheap when tens of thousands of tasks queue at once (gc queues one task per fragment).

import test from 'ava';
import { Semaphore, settleAll } from '../../src/repo/semaphore.js';

test('never more than its capacity at once, and every task runs', async (t) => {
  const s = new Semaphore(3);
  let running = 0;
  let most = 0;
  const done: number[] = [];
  await settleAll(
    Array.from({ length: 50 }, (_, i) =>
      s.run(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, i % 3));
        running--;
        done.push(i);
      }),
    ),
  );
  t.is(most, 3);
  t.is(done.length, 50);
});

test('waiters are served in the order they came', async (t) => {
  const s = new Semaphore(1);
  await s.acquire();
  const order: number[] = [];
  const waiting = Array.from({ length: 3000 }, (_, i) => s.acquire().then(() => order.push(i)));
  for (let i = 0; i < 3000; i++) {
    s.release();
    await Promise.resolve();
    await Promise.resolve();
  }
  await Promise.all(waiting);
  t.deepEqual(order, Array.from({ length: 3000 }, (_, i) => i));
  // Everything handed back: one unit free again after the last release.
  s.release();
  t.true(s.tryAcquire());
  t.false(s.tryAcquire());
});

test('200,000 queued tasks are released in linear time', async (t) => {
  // With Array.shift per release this took tens of seconds (each shift copies the queue).
  const s = new Semaphore(1);
  const n = 200_000;
  const started = performance.now();
  let ran = 0;
  await Promise.all(Array.from({ length: n }, () => s.run(async () => void ran++)));
  const ms = performance.now() - started;
  t.is(ran, n);
  t.true(ms < 5000, `${n} tasks took ${ms.toFixed(0)} ms`);
});
