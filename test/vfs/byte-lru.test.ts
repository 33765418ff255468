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
