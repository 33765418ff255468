// CodecPool: same results as the inline codec, buffer transfer rules, errors rebuilt from worker
// threads, many tasks at once, and a pool that never holds the process open.

import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FragfsError, isFragfsError } from '../../src/errors.js';
import { blake3, toHex } from '../../src/codec/blake3.js';
import { decodeBlock, encodeBlock, storedCapacity, type EncodedBlock } from '../../src/codec/block-codec.js';
import { BULK_BATCH, CodecPool, INLINE_BELOW, threadExecArgv } from '../../src/codec/codec-pool.js';

const run = promisify(execFile);
const KiB = 1024;
const secret = new Uint8Array(randomBytes(32));

/** EncodedBlock equality; ava's deepEqual is very slow on MiB-sized typed arrays. */
function summary(e: EncodedBlock): object {
  return { ...e, key: toHex(e.key), stored: `${e.stored.constructor.name} ${e.stored.length} ${toHex(blake3(e.stored))}` };
}
function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.constructor === b.constructor && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function randomData(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}
function textData(n: number): Uint8Array {
  return new Uint8Array(Buffer.from('fragfs keeps blocks small. '.repeat(Math.ceil(n / 27) + 1)).subarray(0, n));
}

// One pool that sends every block to a worker, one with the default inline threshold.
const pool = new CodecPool({ convergenceSecret: secret, threads: 2, inlineBelow: 0 });
const defaultPool = new CodecPool({ convergenceSecret: secret, threads: 1 });
test.after.always(async () => {
  await pool.close();
  await defaultPool.close();
});

test('pool results equal inline results, through workers and inline', async (t) => {
  for (const p of [pool, defaultPool]) {
    for (const n of [0, 1, 100, INLINE_BELOW - 1, INLINE_BELOW, 200 * KiB, 1024 * KiB]) {
      for (const data of [randomData(n), textData(n)]) {
        const want = encodeBlock(data, secret);
        const got = await p.encode(new Uint8Array(data));
        t.deepEqual(summary(got), summary(want), `encode ${n}, inlineBelow ${p.inlineBelow}`);
        t.is(got.stored.constructor, Uint8Array);
        const plain = await p.decode(new Uint8Array(want.stored), { id: want.id, key: want.key, plainSize: n });
        t.true(same(plain, decodeBlock(want.stored, want)));
        t.true(same(plain, data));
      }
    }
  }
});

test('an input that owns its buffer is transferred; a view into a larger buffer is copied and left intact', async (t) => {
  const whole = randomData(100 * KiB);
  const copy = new Uint8Array(whole);
  const e = await pool.encode(whole);
  t.is(whole.byteLength, 0, 'transferred (detached)');
  t.deepEqual(summary(e), summary(encodeBlock(copy, secret)));

  const big = randomData(300 * KiB);
  const view = big.subarray(KiB, 101 * KiB);
  const before = new Uint8Array(big);
  const e2 = await pool.encode(view);
  t.is(view.byteLength, 100 * KiB);
  t.true(same(big, before));
  t.deepEqual(summary(e2), summary(encodeBlock(before.subarray(KiB, 101 * KiB), secret)));

  // A pooled small Buffer (shared ArrayBuffer) must never detach the pool.
  const small = Buffer.from('a pooled buffer that is longer than nothing');
  const e3 = await pool.encode(small);
  t.is(small.toString(), 'a pooled buffer that is longer than nothing');
  t.deepEqual(summary(e3), summary(encodeBlock(new Uint8Array(small), secret)));

  const stored = new Uint8Array(e2.stored);
  const plain = await pool.decode(stored, e2);
  t.is(stored.byteLength, 0, 'stored transferred on decode');
  t.true(same(plain, before.subarray(KiB, 101 * KiB)));
});

test('corruption found in a worker comes back as FragfsError CORRUPT with the same message and fragment id', async (t) => {
  const data = textData(64 * KiB);
  const e = encodeBlock(data, secret);
  const damaged = new Uint8Array(e.stored);
  damaged[damaged.length - 1]! ^= 1;
  const wrongKey = new Uint8Array(32);
  for (const [what, stored, ref] of [
    ['flipped bit', damaged, e],
    ['wrong key', e.stored, { ...e, key: wrongKey }],
    ['wrong plainSize', e.stored, { ...e, plainSize: 5 }],
  ] as const) {
    let inline: unknown;
    try {
      decodeBlock(stored, ref);
    } catch (err) {
      inline = err;
    }
    const err = await t.throwsAsync(pool.decode(new Uint8Array(stored), ref), undefined, what);
    t.true(err instanceof FragfsError, what);
    t.is((err as FragfsError).code, 'CORRUPT', what);
    t.is((err as FragfsError).fragmentId, e.id, what);
    t.is(err!.message, (inline as Error).message, what);
  }
  // Other codes survive the trip too.
  const bad = await t.throwsAsync(pool.decode(new Uint8Array(e.stored), { ...e, id: 'XYZ' }));
  t.true(isFragfsError(bad, 'INVALID'));
});

test('many concurrent tasks of mixed sizes all come back right', async (t) => {
  const inputs = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? textData((i * 997) % (300 * KiB)) : randomData((i * 7919) % (200 * KiB))));
  const want = inputs.map((d) => encodeBlock(d, secret));
  const got = await Promise.all(inputs.map((d) => pool.encode(new Uint8Array(d))));
  t.deepEqual(got.map((g) => g.id), want.map((w) => w.id));
  const plains = await Promise.all(got.map((g) => pool.decode(g.stored, g)));
  for (let i = 0; i < inputs.length; i++) t.true(Buffer.from(plains[i]!).equals(Buffer.from(inputs[i]!)), `block ${i}`);
});

test('constructor checks its options', (t) => {
  t.true(isFragfsError(t.throws(() => new CodecPool({ convergenceSecret: new Uint8Array(16) })), 'INVALID'));
  t.true(isFragfsError(t.throws(() => new CodecPool({ convergenceSecret: secret, threads: 0 })), 'INVALID'));
  t.true(isFragfsError(t.throws(() => new CodecPool({ convergenceSecret: secret, threads: 1.5 })), 'INVALID'));
});

test('the pool keeps its own copy of the secret', async (t) => {
  const mine = new Uint8Array(secret);
  const p = new CodecPool({ convergenceSecret: mine, threads: 1, inlineBelow: 0 });
  mine.fill(0);
  try {
    const data = randomData(1000);
    t.deepEqual(summary(await p.encode(new Uint8Array(data))), summary(encodeBlock(data, secret)));
  } finally {
    await p.close();
  }
});

test('close() is idempotent, and use after close is a bug (plain Error)', async (t) => {
  const p = new CodecPool({ convergenceSecret: secret, threads: 1 });
  await p.encode(randomData(100 * KiB));
  await Promise.all([p.close(), p.close()]);
  const e = await t.throwsAsync(p.encode(randomData(10)));
  t.false(e instanceof FragfsError);
});

// Runs a tiny program in a fresh process; the pool must not keep it alive.
async function exitsPromptly(body: string): Promise<{ ms: number; stdout: string }> {
  const poolUrl = new URL('../../src/codec/codec-pool.js', import.meta.url).href;
  const program = `import { CodecPool } from ${JSON.stringify(poolUrl)};\n${body}`;
  const t0 = Date.now();
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', program], { timeout: 20_000, cwd: fileURLToPath(new URL('.', import.meta.url)) });
  return { ms: Date.now() - t0, stdout };
}

test('a process that never closes its pool still exits', async (t) => {
  const { ms, stdout } = await exitsPromptly(`
    const p = new CodecPool({ convergenceSecret: new Uint8Array(32), threads: 2, inlineBelow: 0 });
    const e = await p.encode(new Uint8Array(300000));
    console.log(e.plainSize);`);
  t.is(stdout.trim(), '300000');
  // The pool's idle timeout is 30 s: exiting well before it shows the threads do not hold the process.
  t.true(ms < 15_000, `took ${ms} ms`);
});

test('a process that closes its pool exits', async (t) => {
  const { stdout } = await exitsPromptly(`
    const p = new CodecPool({ convergenceSecret: new Uint8Array(32), threads: 2, inlineBelow: 0 });
    const e = await p.encode(new Uint8Array(300000));
    await p.close();
    console.log('closed', e.plainSize);`);
  t.is(stdout.trim(), 'closed 300000');
});

test('codec threads take the module hooks and warning switches of their process, and no V8 or per-process flag', (t) => {
  t.deepEqual(
    threadExecArgv(['--expose-gc', '--interrupt-budget=100000', '--import', 'a.mjs', '--max-old-space-size=64', '-r', 'b.cjs', '--stack-size', '900', '--enable-source-maps', '--conditions=dev', '--no-warnings', '--max-lazy']),
    ['--import', 'a.mjs', '-r', 'b.cjs', '--enable-source-maps', '--conditions=dev', '--no-warnings'],
  );
  t.deepEqual(threadExecArgv([]), []);
  t.deepEqual(threadExecArgv(['--import']), [], 'an option whose value is missing is left out');
});

test('a process started with V8 flags and heap sizes encodes through its threads', async (t) => {
  const poolUrl = new URL('../../src/codec/codec-pool.js', import.meta.url).href;
  const program = `import { CodecPool } from ${JSON.stringify(poolUrl)};
    const p = new CodecPool({ convergenceSecret: new Uint8Array(32), threads: 2, inlineBelow: 0 });
    const e = await p.encode(new Uint8Array(300000));
    await p.close();
    console.log('encoded', e.plainSize);`;
  const flags = ['--max-lazy', '--interrupt-budget=100000', '--expose-gc', '--max-old-space-size=256', '--stack-size=900', '--no-warnings'];
  const { stdout } = await run(process.execPath, [...flags, '--input-type=module', '-e', program], { timeout: 20_000 });
  t.is(stdout.trim(), 'encoded 300000');
});

test('encodeSync/decodeSync give the inline codec results', (t) => {
  const data = textData(5000);
  const e = defaultPool.encodeSync(data);
  t.deepEqual(summary(e), summary(encodeBlock(data, secret)));
  t.true(same(defaultPool.decodeSync(e.stored, e), data));
});

test('a key that is a view into a larger buffer decodes through a worker', async (t) => {
  const data = randomData(64 * KiB);
  const e = encodeBlock(data, secret);
  const holder = new Uint8Array(1000);
  holder.set(e.key, 100);
  const plain = await pool.decode(new Uint8Array(e.stored), { id: e.id, key: holder.subarray(100, 132), plainSize: data.length });
  t.true(same(plain, data));
});

test('encodeBulk: 300 small blocks asked in one turn come back as encodeBlock gives them, in tasks of at most BULK_BATCH; a view is left intact', async (t) => {
  const blocks = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? textData(1 + i * 37) : randomData(1 + i * 37)));
  const big = new Uint8Array(64 * KiB).fill(7);
  const view = big.subarray(KiB, 2 * KiB);
  let tasks = 0;
  const counting = new CodecPool({ convergenceSecret: secret, threads: 2 });
  t.teardown(() => counting.close());
  const inner = (counting as unknown as { pool: { run: (...a: unknown[]) => Promise<unknown> } }).pool;
  const run = inner.run.bind(inner);
  inner.run = (...a: unknown[]) => {
    tasks++;
    return run(...a);
  };
  const got = await Promise.all([...blocks.map((b) => counting.encodeBulk(new Uint8Array(b))), counting.encodeBulk(view)]);
  blocks.forEach((b, i) => t.deepEqual(summary(got[i]!), summary(encodeBlock(b, secret)), `block ${i}`));
  t.deepEqual(summary(got[300]!), summary(encodeBlock(big.subarray(KiB, 2 * KiB), secret)));
  t.is(view.byteLength, KiB);
  t.true(view.every((x) => x === 7));
  t.true(got.every((e) => e.stored.constructor === Uint8Array));
  // Blocks of INLINE_BELOW and more went one by one, the rest BULK_BATCH at a time.
  const small = blocks.filter((b) => b.length < INLINE_BELOW).length + 1;
  t.is(tasks, Math.ceil(small / BULK_BATCH) + (300 - small + 1));
});

test('encode into offered memory: the stored bytes are a view of it, the same as without; too small is not used', async (t) => {
  const plainBytes = 300_000;
  const plain = randomBytes(plainBytes);
  const plain2 = Buffer.from(plain);
  const want = encodeBlock(plain, secret);
  const into = Buffer.allocUnsafeSlow(storedCapacity(plainBytes));
  const intoBuffer = into.buffer;
  const got = await pool.encode(plain, into);
  t.is(into.length, 0, 'offered memory goes to the codec thread (transferred)');
  t.is(got.stored.byteOffset, 0);
  t.is(got.stored.buffer.byteLength, storedCapacity(plainBytes), 'the stored bytes came back in the offered memory');
  t.deepEqual(Buffer.from(got.stored), Buffer.from(want.stored));
  t.is(got.id, want.id);
  const inline = encodeBlock(plain2, secret, { into: Buffer.allocUnsafeSlow(storedCapacity(plain2.length)) });
  t.deepEqual(Buffer.from(inline.stored), Buffer.from(want.stored));
  t.not(intoBuffer, got.stored.buffer, 'a transferred buffer arrives as a new ArrayBuffer object');
  const small = await pool.encode(Buffer.from(plain2), Buffer.allocUnsafeSlow(1000));
  t.deepEqual(Buffer.from(small.stored), Buffer.from(want.stored));
  t.is(small.stored.buffer.byteLength, want.stored.length, 'its own memory when the offered is too small');
  const e = await t.throwsAsync(pool.encode(plain2, Buffer.from('a slice of the shared pool')));
  t.true(isFragfsError(e, 'INVALID'));
});

test('decode into offered memory: the plaintext is a view of it, the same as without; too small is not used; a corrupt block still fails', async (t) => {
  for (const plain of [randomBytes(200_000), Buffer.alloc(200_000, 'compressible ')]) {
    const enc = encodeBlock(plain, secret);
    const ref = { id: enc.id, key: enc.key, plainSize: plain.length };
    const cap = plain.length + 1000;
    const got = await pool.decode(Buffer.from(enc.stored), ref, Buffer.alloc(cap, 0xee));
    t.is(got.byteOffset, 0);
    t.is(got.buffer.byteLength, cap, 'the plaintext came back in the offered memory');
    t.true(Buffer.from(got).equals(plain));
    t.is(Buffer.from(got.buffer, plain.length, 1000).toString('hex'), 'ee'.repeat(1000), 'bytes past the plaintext untouched');
    const inline = decodeBlock(enc.stored, ref, Buffer.alloc(cap));
    t.true(Buffer.from(inline).equals(plain));
    const small = await pool.decode(Buffer.from(enc.stored), ref, Buffer.alloc(100));
    t.true(Buffer.from(small).equals(plain));
    t.is(small.buffer.byteLength, plain.length, 'its own memory when the offered is too small');
    const bad = Buffer.from(enc.stored);
    bad[bad.length - 1]! ^= 1;
    t.true(isFragfsError(await t.throwsAsync(pool.decode(bad, ref, Buffer.alloc(cap))), 'CORRUPT'));
  }
  t.true(isFragfsError(await t.throwsAsync(pool.decode(Buffer.alloc(10), { id: '0'.repeat(64), key: new Uint8Array(32) }, Buffer.from('pooled'))), 'INVALID'));
});
