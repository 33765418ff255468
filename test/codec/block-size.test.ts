// Block size limits and size parsing.

import test from 'ava';
import { isFragfsError } from '../../src/errors.js';
import { DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, checkBlockSize, parseSize } from '../../src/codec/block-size.js';

test('limits are 64 KiB, 1 MiB and 4 MiB', (t) => {
  t.is(MIN_BLOCK_SIZE, 65536);
  t.is(DEFAULT_BLOCK_SIZE, 1048576);
  t.is(MAX_BLOCK_SIZE, 4194304);
});

test('checkBlockSize accepts integers in range', (t) => {
  for (const n of [MIN_BLOCK_SIZE, MIN_BLOCK_SIZE + 1, DEFAULT_BLOCK_SIZE, 3 * 1024 * 1024 + 7, MAX_BLOCK_SIZE]) {
    t.is(checkBlockSize(n), n);
  }
});

test('checkBlockSize rejects anything else with the allowed range in the message', (t) => {
  for (const n of [0, -1, MIN_BLOCK_SIZE - 1, MAX_BLOCK_SIZE + 1, 1.5 * 1024 * 1024 + 0.5, NaN, Infinity, '1M' as unknown as number]) {
    const e = t.throws(() => checkBlockSize(n));
    t.true(isFragfsError(e, 'INVALID'), String(n));
    t.regex(e!.message, /65536 \(64K\) to 4194304 \(4M\)/);
  }
});

test('parseSize reads bytes and binary units', (t) => {
  const cases: Array<[string, number]> = [
    ['1048576', 1048576],
    ['0', 0],
    ['512K', 524288],
    ['512k', 524288],
    ['512KB', 524288],
    ['512KiB', 524288],
    ['1M', 1048576],
    ['4MiB', 4194304],
    ['4mib', 4194304],
    ['2G', 2 * 1024 ** 3],
    ['1T', 1024 ** 4],
    ['100B', 100],
    [' 64K ', 65536],
  ];
  for (const [s, n] of cases) t.is(parseSize(s), n, s);
});

test('parseSize rejects malformed sizes', (t) => {
  for (const s of ['', 'M', '1.5M', '-1', '1X', '1MM', '12ib', '1 M B', '0x10', '99999999999999999999']) {
    t.true(isFragfsError(t.throws(() => parseSize(s)), 'INVALID'), s);
  }
});
