// Worker-thread side of CodecPool: runs encodeBlock/decodeBlock for piscina tasks. The convergence
// secret arrives once via workerData. Errors cross the thread boundary as plain data (a structured
// clone drops the FragfsError class and its code), and CodecPool rebuilds them.

import { move, transferableSymbol, valueSymbol } from 'piscina';
import { workerData } from 'node:worker_threads';
import { FragfsError } from '../errors.js';
import { writeCacheFileSync, type CacheFile } from '../store/cache-handoff.js';
import { decodeBlock, encodeBlock, owned, ownsBuffer, type EncodedBlock } from './block-codec.js';
import { letGo } from './gc-pacer.js';

/** What CodecPool passes at start: the space's convergence secret (32 bytes). */
export interface CodecWorkerData {
  convergenceSecret: Uint8Array;
}

export interface EncodeTask {
  plain: Uint8Array;
  compress?: boolean;
  encrypt?: boolean;
  /** Memory for the stored bytes (EncodeOptions.into), transferred with the task and back. */
  into?: Uint8Array;
}

/**
 * Many small blocks encoded in one task (CodecPool.encodeBulk): one round trip for all of them, and
 * one buffer each way. Block i is plain[sum of sizes before i ..) of `sizes[i]` bytes.
 */
export interface EncodeManyTask {
  plain: Uint8Array;
  sizes: number[];
}

/** encodeMany's answer: each block's result, its stored bytes laid end to end in `stored`. */
export interface EncodeManyResult {
  results: (Omit<EncodedBlock, 'stored'> | WorkerFailure)[];
  /** Block i's stored bytes are `storedSizes[i]` bytes, after those of the blocks before it. */
  storedSizes: number[];
  stored: Uint8Array;
}

export interface DecodeTask {
  stored: Uint8Array;
  id: string;
  key: Uint8Array;
  plainSize?: number;
  /** Where to cache `stored` once it verified (a remote store's fragment cache, cache-handoff.ts). */
  cacheFile?: CacheFile;
  /** Memory for the plaintext (decodeBlock's `into`), transferred with the task and back. */
  into?: Uint8Array;
}

/** decode's answer to a task with a cacheFile. */
export interface DecodeCachedResult {
  plain: Uint8Array;
  /** Whether the cache file is in place. */
  cached: boolean;
  /** The task's stored bytes, given back when they own their buffer. */
  stored?: Uint8Array;
}

/** A FragfsError flattened for the trip back to the main thread. */
export interface WorkerFailure {
  failure: { code: string; message: string; fragmentId?: string; path?: string };
}

const secret = (workerData as CodecWorkerData).convergenceSecret;

function failure(e: unknown): WorkerFailure {
  if (!(e instanceof FragfsError)) throw e; // a bug: let piscina carry it as an Error
  const f: WorkerFailure['failure'] = { code: e.code, message: e.message };
  if (e.fragmentId !== undefined) f.fragmentId = e.fragmentId;
  if (e.path !== undefined) f.path = e.path;
  return { failure: f };
}

/** Wraps `value` so piscina transfers (not copies) the given buffers back. */
function moving<T extends object>(value: T, buffers: ArrayBuffer[]): unknown {
  return move({
    get [transferableSymbol]() {
      return buffers;
    },
    get [valueSymbol]() {
      return value;
    },
  } as never);
}

export function encode(task: EncodeTask): unknown {
  let enc: EncodedBlock;
  try {
    enc = encodeBlock(task.plain, secret, {
      ...(task.compress === undefined ? {} : { compress: task.compress }),
      ...(task.encrypt === undefined ? {} : { encrypt: task.encrypt }),
      ...(task.into === undefined ? {} : { into: task.into }),
    });
  } catch (e) {
    return failure(e);
  }
  // Written into the caller's memory: a view of it goes back, with all of it.
  const intoUsed = task.into !== undefined && enc.stored.buffer === task.into.buffer;
  const stored = intoUsed ? enc.stored : owned(enc.stored);
  // The plaintext that came in and the cipher's output copied into `stored` are garbage now (and
  // the memory offered for the stored bytes, when they did not fit in it). The plaintext is not sent
  // back for reuse: dead buffers go at this thread's paced scavenges (gc-pacer.ts), where the JS
  // thread of a mount collects rarely (sent back, a mount writing 1 GiB peaked 20-45 MiB higher).
  letGo(task.plain.byteLength + stored.byteLength + (task.into !== undefined && !intoUsed ? task.into.byteLength : 0));
  return moving({ ...enc, stored }, [stored.buffer as ArrayBuffer]);
}

/**
 * Each block of the task encoded as `encode` would, answered in one message with one buffer to
 * transfer (their stored bytes end to end) rather than one a block.
 */
export function encodeMany(task: EncodeManyTask): unknown {
  const results: EncodeManyResult['results'] = [];
  const parts: Uint8Array[] = [];
  const storedSizes: number[] = [];
  let at = 0;
  let total = 0;
  for (const size of task.sizes) {
    const plain = task.plain.subarray(at, at + size);
    at += size;
    try {
      const { stored, ...rest } = encodeBlock(plain, secret);
      results.push(rest);
      parts.push(stored);
      storedSizes.push(stored.byteLength);
      total += stored.byteLength;
    } catch (e) {
      results.push(failure(e));
      storedSizes.push(0);
    }
  }
  const stored = new Uint8Array(total);
  let put = 0;
  for (const p of parts) {
    stored.set(p, put);
    put += p.byteLength;
  }
  letGo(task.plain.byteLength + 2 * total);
  const answer: EncodeManyResult = { results, storedSizes, stored };
  return moving(answer, [stored.buffer as ArrayBuffer]);
}

export function decode(task: DecodeTask): unknown {
  let plain: Uint8Array;
  try {
    const ref = task.plainSize === undefined ? { id: task.id, key: task.key } : task;
    const decoded = decodeBlock(task.stored, ref, task.into);
    // Decoded into the caller's memory: a view of it goes back, with all of it.
    plain = task.into !== undefined && decoded.buffer === task.into.buffer ? decoded : owned(decoded);
  } catch (e) {
    return failure(e);
  }
  // Only bytes that verified are cached, written from this thread, not the one serving requests.
  const cached = task.cacheFile === undefined ? undefined : writeCacheFileSync(task.cacheFile, task.stored);
  // The stored bytes go back with a cache write, to be filled by the next fetch
  // (src/store/buffer-recycle.ts); otherwise they are garbage now, as is the decipher's output.
  const stored = task.stored;
  const giveBack = cached !== undefined && ownsBuffer(stored);
  letGo((giveBack ? 0 : stored.byteLength) + plain.byteLength);
  if (cached === undefined) return plain.buffer === task.into?.buffer ? moving(plain, [plain.buffer as ArrayBuffer]) : move(plain);
  const answer: DecodeCachedResult = giveBack ? { plain, cached, stored } : { plain, cached };
  return moving(answer, giveBack ? [plain.buffer as ArrayBuffer, stored.buffer as ArrayBuffer] : [plain.buffer as ArrayBuffer]);
}
