// ByteLru: the bounded map behind the mount's metadata caches keeps at most its byte limit, drops
// the least recently used first, and keeps nothing that alone exceeds the limit.

import test from 'ava';
import { ByteLru } from '../../src/vfs/byte-lru.js';

test('stays within its bytes, dropping the least recently used first', (t) => {
  const lru = new ByteLru<number, string>(100, (v) => v.length);
  for (let i = 0; i < 10; i++) lru.set(i, 'x'.repeat(20));
  t.is(lru.bytes, 100);
  t.is(lru.size, 5);
  t.deepEqual([0, 1, 2, 3, 4].map((i) => lru.has(i)), [false, false, false, false, false]);
  t.is(lru.get(5), 'x'.repeat(20)); // 5 becomes the most recent
  lru.set(10, 'y'.repeat(20));
  t.false(lru.has(6));
  t.true(lru.has(5));
  lru.set(10, 'z'.repeat(40)); // a replacement is counted once
  t.true(lru.bytes <= 100);
  t.is(lru.peek(10), 'z'.repeat(40));
});

test('a value larger than the limit is not kept, and delete gives its bytes back', (t) => {
  const lru = new ByteLru<string, Buffer>(64, (v) => v.length);
  lru.set('a', Buffer.alloc(32));
  lru.set('big', Buffer.alloc(65));
  t.false(lru.has('big'));
  t.true(lru.has('a'));
  t.true(lru.delete('a'));
  t.is(lru.bytes, 0);
  t.false(lru.delete('a'));
});

test('replacing a value keeps its key in place: bytes counted once, made the most recent, older ones evicted for growth', (t) => {
  const lru = new ByteLru<string, string>(100, (v) => v.length);
  lru.set('a', 'x'.repeat(30));
  lru.set('b', 'x'.repeat(30));
  lru.set('c', 'x'.repeat(30));
  lru.set('a', 'y'.repeat(10)); // now the most recent, 70 bytes in all
  t.is(lru.bytes, 70);
  lru.set('d', 'x'.repeat(30)); // 100: nothing goes
  t.is(lru.size, 4);
  lru.set('a', 'z'.repeat(50)); // 140 over the limit: b and c, the least recent, go
  t.deepEqual(['a', 'b', 'c', 'd'].map((k) => lru.has(k)), [true, false, false, true]);
  t.is(lru.bytes, 80);
  lru.set('a', 'w'.repeat(101)); // a replacement larger than the limit drops the key
  t.false(lru.has('a'));
  t.is(lru.bytes, 30);
});

test('replacing one key over and over in a full cache takes constant time', (t) => {
  // A Map delete and set of the same key took ~15 us a time at 20,000 entries (V8): a folder's inode
  // is replaced on every create in it.
  const lru = new ByteLru<number, number[]>(20_000 * 64, () => 64);
  for (let i = 0; i < 20_000; i++) lru.set(i, [i]);
  const started = performance.now();
  for (let i = 0; i < 100_000; i++) lru.set(7, [i]);
  const ms = performance.now() - started;
  t.is(lru.size, 20_000);
  t.deepEqual(lru.peek(7), [99_999]);
  t.true(ms < 500, `100,000 replacements took ${ms.toFixed(0)} ms`);
});

test('offer keeps a value only where it fits beside the rest: nothing is evicted and a kept key is left as it is', (t) => {
  const lru = new ByteLru<string, string>(100, (v) => v.length);
  lru.set('a', 'x'.repeat(40));
  lru.offer('b', 'x'.repeat(40)); // 80: fits
  lru.offer('c', 'x'.repeat(40)); // 120 would pass the limit: not kept, nothing goes
  t.deepEqual(['a', 'b', 'c'].map((k) => lru.has(k)), [true, true, false]);
  t.is(lru.bytes, 80);
  lru.offer('a', 'y'); // already kept: unchanged
  t.is(lru.peek('a'), 'x'.repeat(40));
  lru.offer('d', 'x'.repeat(20)); // exactly 100
  t.is(lru.bytes, 100);
  // An offered value is an ordinary one afterwards: the least recent first to go.
  lru.set('e', 'x'.repeat(20));
  t.false(lru.has('a'));
  t.true(lru.has('d'));
});
