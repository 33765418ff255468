// Runs the block codec off the event loop, on every core: a piscina pool of codec-worker threads
// that hold the space's convergence secret. Tiny blocks are coded inline, where a thread
// round-trip would cost more than the work.

import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';
import { ERROR_CODES, FragfsError, type ErrorCode } from '../errors.js';
import {
  CONVERGENCE_SECRET_LEN,
  decodeBlock,
  encodeBlock,
  ownsBuffer,
  type DecodeRef,
  type EncodedBlock,
} from './block-codec.js';
import { giveBuffer } from '../store/buffer-recycle.js';
import { writeCacheFile, type CacheFile, type CacheHandoff } from '../store/cache-handoff.js';
import type { CodecWorkerData, DecodeCachedResult, DecodeTask, EncodeManyResult, EncodeManyTask, EncodeTask, WorkerFailure } from './codec-worker.js';

/** A decode task for the worker. */
function decodeTask(stored: Uint8Array, ref: DecodeRef): DecodeTask {
  // A key that is a view into a larger buffer (e.g. a decoded manifest) would clone that whole buffer.
  const key = ref?.key instanceof Uint8Array && !ownsBuffer(ref.key) ? new Uint8Array(ref.key) : ref?.key;
  const task: DecodeTask = { stored, id: ref?.id, key };
  if (ref?.plainSize !== undefined) task.plainSize = ref.plainSize;
  return task;
}

/** piscina's constructor, loaded on first use (it is CommonJS: require is synchronous). */
function loadPiscina(): typeof Piscina {
  return (createRequire(import.meta.url)('piscina') as { Piscina: typeof Piscina }).Piscina;
}

/**
 * Blocks shorter than this many bytes are coded on the calling thread by encode()/decode().
 * Measured with `node dist/scripts/bench-codec.js --only small` on a 2-core machine: one pool round
 * trip costs 240-280 us whatever the size up to 16 KiB, while inline encodeBlock takes about 35-50 us
 * for 1 KiB and 150-165 us for 16 KiB (decode 15-75 us). Below 16 KiB the pool only adds latency and
 * the event loop is blocked for less than a round trip would cost; from 64 KiB up (inline 220+ us)
 * the pool wins by keeping the loop free and using every core.
 */
export const INLINE_BELOW = 16 * 1024;

/**
 * Blocks sent in one task by encodeBulk at most. A 1-4 KiB block costs 35-80 us to encode, so 64 make
 * a task of a few milliseconds: the round trip (240-280 us) is paid once for all of them.
 */
export const BULK_BATCH = 64;

/**
 * Bulk tasks sent to the threads at once: one thread fewer than the pool has, since the writer that
 * makes many small blocks (put) keeps the main thread busy itself, and one queued task more would
 * have piscina start another thread (its own V8 heap and malloc arena). With the rest waiting here,
 * a first put of 100,000 files of 1-4 KiB on 2 cores ran one codec thread instead of two and
 * peaked at 214-222 MiB instead of 243-253, in the same 8.7-9.4 s.
 */
function bulkSlotsFor(threads: number): number {
  return Math.max(1, threads - 1);
}

/** V8's young generation of a codec thread, MiB (see the pool's constructor). */
const CODEC_THREAD_YOUNG_MB = 4;

export interface CodecPoolOptions {
  /** The space's convergence secret, 32 bytes; handed to each worker once. */
  convergenceSecret: Uint8Array;
  /** Worker threads; default os.availableParallelism(). */
  threads?: number;
  /** Override INLINE_BELOW (0 sends every block to the pool; tests and benchmarks use that). */
  inlineBelow?: number;
}

/** Small blocks for one encodeMany task, and whom to answer. */
interface BulkBatch {
  plains: Uint8Array[];
  waiters: { resolve: (e: EncodedBlock) => void; reject: (e: unknown) => void }[];
}

/** The worker file sits next to this one, both in src/ (as .ts) and in dist/ (as .js). */
const WORKER_URL = new URL('./codec-worker.js', import.meta.url).href;

/** Node options a codec thread takes from its process: how modules load, how warnings show. */
const THREAD_OPTION = /^(--(import|require|loader|experimental-loader|conditions)|-r|-C)$/;
const THREAD_SWITCH = /^--(enable-source-maps|no-warnings|no-deprecation|trace-warnings|trace-uncaught)$/;

/**
 * Of `execArgv` (process.execArgv's shape), what a codec thread is started with: module hooks and
 * conditions (with their values, `--import x` or `--import=x`) and the warning switches, nothing
 * else. A Worker given execArgv refuses V8's flags and Node's per-process options
 * (ERR_WORKER_INVALID_EXEC_ARGV, thrown where the pool starts its first thread, so `node
 * --max-lazy fragfs put` ended in a stack trace); those apply to the whole process, its threads
 * included, anyway. The mount process runs with --expose-gc and heap sizes (cli/mount.ts) that way.
 */
export function threadExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    if (THREAD_OPTION.test(name)) {
      if (eq >= 0) out.push(a);
      else if (i + 1 < execArgv.length) out.push(a, execArgv[++i]!);
    } else if (eq < 0 && THREAD_SWITCH.test(a)) {
      out.push(a);
    }
  }
  return out;
}

/**
 * Node options for the codec threads. piscina loads a worker file with require() first and import()
 * only when that fails. Since Node 20.19, require() of an ES module (codec-worker.js is one) loads it
 * synchronously (require(esm)), and a thread stopped while that synchronous instantiation runs (a
 * pool closed, a process ending while a thread still loads) aborts the whole process from V8:
 * "FATAL ERROR: v8::Module::IsGraphAsync must be used on an instantiated module" (Node's
 * ModuleWrap::InstantiateSync asks IsGraphAsync of a module whose instantiation was cut short).
 * With require(esm) off in the codec threads, that require() is refused at once and piscina loads
 * the module with import(), the ordinary asynchronous path, which a stopped thread leaves cleanly.
 */
const WORKER_EXEC_ARGV: string[] = [
  ...threadExecArgv(process.execArgv),
  ...((process.features as { require_module?: boolean }).require_module === true ? ['--no-experimental-require-module'] : []),
];

/** True for a transfer refused by postMessage, e.g. an ArrayBuffer a native module marked untransferable. */
function isCloneError(e: unknown): boolean {
  return (e as Error | undefined)?.name === 'DataCloneError';
}

function isFailure(r: unknown): r is WorkerFailure {
  return typeof r === 'object' && r !== null && 'failure' in r;
}

/** Rebuilds a FragfsError that crossed the thread boundary as plain data. */
function rethrow(f: WorkerFailure['failure']): never {
  if (!(f.code in ERROR_CODES)) throw new Error(`codec worker sent an unknown error code ${f.code}: ${f.message}`);
  throw new FragfsError(f.code as ErrorCode, f.message, {
    ...(f.fragmentId === undefined ? {} : { fragmentId: f.fragmentId }),
    ...(f.path === undefined ? {} : { path: f.path }),
  });
}

/**
 * A pool of codec threads for one convergence secret.
 * - encode/decode MUST give exactly what encodeBlock/decodeBlock give (same bytes, same errors).
 * - `plain` (encode) and `stored` (decode) MAY be transferred to a worker and so detached when they
 *   own their whole ArrayBuffer; callers MUST NOT reuse them. Views into larger buffers are copied.
 * - An idle pool does not keep the process alive; close() finishes in-flight tasks and stops the threads.
 */
export class CodecPool {
  readonly threads: number;
  readonly inlineBelow: number;
  /** Made with the first task: a command that gives the threads none (ls, snapshots) never loads piscina. */
  private piscina: Piscina | undefined;
  private readonly piscinaOptions: ConstructorParameters<typeof Piscina>[0];
  private readonly secret: Uint8Array;
  private closing: Promise<void> | undefined;
  /** Small blocks waiting for encodeBulk's next task, sent at the end of this turn of the event loop. */
  private bulk: BulkBatch | undefined;
  /** Full batches waiting for one of the bulkSlots. */
  private readonly bulkReady: BulkBatch[] = [];
  private bulkInFlight = 0;
  private readonly bulkSlots: number;

  constructor(o: CodecPoolOptions) {
    if (!(o?.convergenceSecret instanceof Uint8Array) || o.convergenceSecret.length !== CONVERGENCE_SECRET_LEN) {
      throw new FragfsError('INVALID', `convergence secret must be ${CONVERGENCE_SECRET_LEN} bytes`);
    }
    const threads = o.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
      throw new FragfsError('INVALID', `codec threads must be a whole number from 1 to 1024, got ${threads}`);
    }
    const inlineBelow = o.inlineBelow ?? INLINE_BELOW;
    if (!Number.isInteger(inlineBelow) || inlineBelow < 0) {
      throw new FragfsError('INVALID', `inlineBelow must be a whole number >= 0, got ${inlineBelow}`);
    }
    this.threads = threads;
    this.bulkSlots = bulkSlotsFor(threads);
    this.inlineBelow = inlineBelow;
    this.secret = new Uint8Array(o.convergenceSecret);
    const workerData: CodecWorkerData = { convergenceSecret: this.secret };
    this.piscinaOptions = {
      filename: WORKER_URL,
      // Threads start with the first task, not with the pool: a command that ends before needing one
      // (ls, snapshots, a small put) would otherwise end the process while they load their modules,
      // which Node 20 can abort on ("IsGraphAsync must be used on an instantiated module").
      minThreads: 0,
      maxThreads: threads,
      // Keep threads warm between bursts of writes; piscina unrefs idle threads, so this never
      // holds the process open (a CLI that forgets close() still exits).
      idleTimeout: 30_000,
      workerData,
      execArgv: WORKER_EXEC_ARGV,
      recordTiming: false,
      // A codec thread's garbage is mostly buffers outside the V8 heap (gc-pacer.ts paces those):
      // V8's default young generation (tens of MiB a thread) only held memory. With 4 MiB, a put of
      // 100,000 small files peaked at 265-270 MiB instead of 309-322, as fast (9.6-9.7 s vs 9.3-10.1).
      resourceLimits: { maxYoungGenerationSizeMb: CODEC_THREAD_YOUNG_MB },
      // A thread waits for its next task in its event loop, not in Atomics.wait: V8 frees native
      // buffers (the BLAKE3 binding's results among them) in tasks of that loop, which a thread
      // parked in Atomics.wait between tasks never ran. A put of 300,000 small files grew to 422 MiB
      // that way; with the loop, 281 MiB, as fast.
      atomics: 'disabled',
    };
  }

  private get pool(): Piscina {
    // Loaded here, not at the top: its 21 modules cost every command about 20 ms of start-up.
    this.piscina ??= new (loadPiscina())(this.piscinaOptions);
    return this.piscina;
  }

  /**
   * Encodes one block; see encodeBlock. `into` (EncodeOptions.into) MUST own its whole ArrayBuffer,
   * which the call takes: `stored` is then a view of it when the bytes fit, and the caller MUST NOT
   * use `into` itself afterwards.
   */
  async encode(plain: Uint8Array, into?: Uint8Array): Promise<EncodedBlock> {
    this.checkOpen();
    if (!(plain instanceof Uint8Array)) throw new FragfsError('INVALID', 'block plaintext must be a Uint8Array');
    if (into !== undefined && !ownsBuffer(into)) throw new FragfsError('INVALID', 'into must own its whole ArrayBuffer');
    if (plain.length < this.inlineBelow) return encodeBlock(plain, this.secret, into === undefined ? {} : { into });
    const r = await this.run<EncodeTask>('encode', into === undefined ? { plain } : { plain, into }, plain, into);
    if (isFailure(r)) rethrow(r.failure);
    return r as EncodedBlock;
  }

  /**
   * Encodes one block as encode() does, but a small one goes to a pool thread together with the other
   * small blocks asked for in the same turn of the event loop (at most BULK_BATCH a task): for a writer
   * of many small files (put), whose main thread would otherwise spend most of its time encoding them
   * inline, at the cost of a round trip's latency per block. `plain` is copied, not transferred; the
   * answer's `stored` is a view into a buffer the task's blocks share.
   */
  encodeBulk(plain: Uint8Array): Promise<EncodedBlock> {
    this.checkOpen();
    if (!(plain instanceof Uint8Array)) throw new FragfsError('INVALID', 'block plaintext must be a Uint8Array');
    if (plain.length >= this.inlineBelow || plain.length === 0) return this.encode(plain);
    return new Promise((resolve, reject) => {
      if (this.bulk === undefined) {
        const batch: BulkBatch = { plains: [], waiters: [] };
        this.bulk = batch;
        setImmediate(() => this.sealBulk(batch));
      }
      this.bulk.plains.push(plain);
      this.bulk.waiters.push({ resolve, reject });
      if (this.bulk.plains.length >= BULK_BATCH) this.sealBulk(this.bulk);
    });
  }

  /** Closes `batch` to new blocks and sends it when a bulk slot is free. */
  private sealBulk(batch: BulkBatch): void {
    if (this.bulk !== batch) return;
    this.bulk = undefined;
    this.bulkReady.push(batch);
    this.pumpBulk();
  }

  private pumpBulk(): void {
    while (this.bulkInFlight < this.bulkSlots && this.bulkReady.length > 0) {
      this.bulkInFlight++;
      this.sendBulk(this.bulkReady.shift()!).finally(() => {
        this.bulkInFlight--;
        this.pumpBulk();
      });
    }
  }

  /**
   * Sends the waiting small blocks as one task: their bytes copied into one buffer, transferred, and
   * their stored bytes back in one. Each EncodedBlock's `stored` is then a view into that answer's
   * buffer (not a buffer of its own: see EncodedBlock). Settles when the task has.
   */
  private sendBulk(batch: BulkBatch): Promise<void> {
    const sizes = batch.plains.map((p) => p.byteLength);
    const plain = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const p of batch.plains) {
      plain.set(p, at);
      at += p.byteLength;
    }
    const task: EncodeManyTask = { plain, sizes };
    return this.pool.run(task, { name: 'encodeMany', transferList: [plain.buffer] }).then(
      (r: unknown) => {
        const { results, storedSizes, stored } = r as EncodeManyResult;
        let off = 0;
        batch.waiters.forEach((w, i) => {
          const one = results[i];
          const size = storedSizes[i] ?? 0;
          const bytes = stored.subarray(off, off + size);
          off += size;
          if (one === undefined) w.reject(new Error(`codec worker answered ${results.length} of ${batch.waiters.length} blocks`));
          else if (isFailure(one)) {
            try {
              rethrow(one.failure);
            } catch (e) {
              w.reject(e);
            }
          } else w.resolve({ ...one, stored: bytes });
        });
      },
      (e: unknown) => batch.waiters.forEach((w) => w.reject(e)),
    );
  }

  /**
   * Decodes and verifies one block; see decodeBlock. Throws FragfsError CORRUPT naming the fragment.
   * `into` (decodeBlock's) MUST own its whole ArrayBuffer, which the call takes: the plaintext is
   * then a view of its start when it fits, and the caller MUST NOT use `into` itself afterwards.
   */
  async decode(stored: Uint8Array, ref: DecodeRef, into?: Uint8Array): Promise<Uint8Array> {
    this.checkOpen();
    if (!(stored instanceof Uint8Array)) throw new FragfsError('INVALID', 'stored block must be a Uint8Array');
    if (into !== undefined && !ownsBuffer(into)) throw new FragfsError('INVALID', 'into must own its whole ArrayBuffer');
    if (stored.length < this.inlineBelow) return decodeBlock(stored, ref, into);
    const task = decodeTask(stored, ref);
    if (into !== undefined) task.into = into;
    const r = await this.run<DecodeTask>('decode', task, stored, into);
    if (isFailure(r)) rethrow(r.failure);
    return r as Uint8Array;
  }

  /**
   * decode, and the cache write `h` left with `stored` (cache-handoff.ts) done by the thread that
   * decodes it, after the bytes verified; `h` is settled whatever happens. `stored` MUST NOT be
   * used by the caller afterwards (it may be detached, or still being written).
   */
  async decodeAndCache(stored: Uint8Array, ref: DecodeRef, h: CacheHandoff): Promise<Uint8Array> {
    let passedOn = false;
    try {
      this.checkOpen();
      if (!(stored instanceof Uint8Array)) throw new FragfsError('INVALID', 'stored block must be a Uint8Array');
      if (stored.length < this.inlineBelow) {
        const plain = decodeBlock(stored, ref);
        passedOn = true;
        void writeCacheFile(h, stored).then(h.settle);
        return plain;
      }
      // The handoff's paths alone: its settle() stays on this thread.
      const cacheFile: CacheFile = h.folder === undefined ? { tmpPath: h.tmpPath, path: h.path } : { tmpPath: h.tmpPath, path: h.path, folder: h.folder };
      const r = await this.run<DecodeTask>('decode', { ...decodeTask(stored, ref), cacheFile }, stored);
      if (isFailure(r)) rethrow(r.failure);
      const { plain, cached, stored: back } = r as DecodeCachedResult;
      passedOn = true;
      h.settle(cached);
      if (back !== undefined) giveBuffer(back.buffer as ArrayBuffer);
      return plain;
    } finally {
      // Not written: a failure before or in the decode.
      if (!passedOn) h.settle(false);
    }
  }

  /** encodeBlock on the calling thread with this pool's secret: for callers that hold a tiny block and want no await. */
  encodeSync(plain: Uint8Array): EncodedBlock {
    this.checkOpen();
    return encodeBlock(plain, this.secret);
  }

  /** decodeBlock on the calling thread. */
  decodeSync(stored: Uint8Array, ref: DecodeRef): Uint8Array {
    this.checkOpen();
    return decodeBlock(stored, ref);
  }

  /** Waits for tasks in flight, then stops every thread. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.piscina ? this.piscina.close() : Promise.resolve();
    return this.closing;
  }

  /** Runs a task, transferring `bytes` when it owns its buffer and copying it otherwise. */
  private async run<T extends { plain?: Uint8Array; stored?: Uint8Array }>(
    name: 'encode' | 'decode',
    task: T,
    bytes: Uint8Array,
    /** Memory that goes with the task whole (encode's `into`; it owns its buffer). */
    extra?: Uint8Array,
  ): Promise<unknown> {
    const field = name === 'encode' ? 'plain' : 'stored';
    const also = extra === undefined || extra.byteLength === 0 ? [] : [extra.buffer as ArrayBuffer];
    if (ownsBuffer(bytes) && bytes.byteLength > 0) {
      try {
        return await this.pool.run(task, { name, transferList: [bytes.buffer as ArrayBuffer, ...also] });
      } catch (e) {
        if (!isCloneError(e)) throw e;
        // Untransferable buffer: fall through to a copy (it was not detached).
      }
    }
    // A structured clone of a view copies its whole backing ArrayBuffer, so cut out just the view first.
    const copy = new Uint8Array(bytes);
    const copied = { ...task, [field]: copy };
    return this.pool.run(copied, { name, transferList: [copy.buffer, ...also] });
  }

  private checkOpen(): void {
    if (this.closing !== undefined) throw new Error('CodecPool used after close()'); // a bug
  }
}
