// Wraps any ObjectBackend with what a remote service needs and none of them should write twice:
// a bound on calls in flight, a timeout per attempt, retries with exponential backoff and jitter on
// the failures worth retrying, cancellation, and one clear FragfsError when retries give up.

import { FragfsError } from '../errors.js';
import { Semaphore } from '../repo/semaphore.js';
import {
  checkListPrefix,
  checkObjectKey,
  type CallOptions,
  type ObjectBackend,
  type ObjectEntry,
  type PutOptions,
} from './object-backend.js';
import { RemoteFailure, failureToError, isTransientNetworkError } from './remote-failure.js';
import { raceAbort } from './race-abort.js';

export interface ResilienceOptions {
  /** Calls in flight at most (default: the backend's parallelism, or FRAGFS_REMOTE_CONNECTIONS). */
  connections?: number;
  /** One attempt's limit in ms (default 60 s, or FRAGFS_REMOTE_TIMEOUT in seconds). */
  timeoutMs?: number;
  /** Attempts per call, the first included (default 6, or FRAGFS_REMOTE_RETRIES + 1). */
  attempts?: number;
  /** First backoff in ms, doubled per retry up to 10 s, with full jitter (default 200). */
  backoffMs?: number;
  /** Aborts every call in flight and every later one (the process is stopping). */
  signal?: AbortSignal;
}

const MAX_BACKOFF_MS = 10_000;

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new FragfsError('USAGE', `${name} must be a non-negative number, not ${v}`);
  return n;
}

export class ResilientBackend implements ObjectBackend {
  readonly url: string;
  readonly parallelism: number;
  private readonly gate: Semaphore;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  /** Calls that were retried, and attempts made, since opening (stats for benchmarks and tests). */
  retries = 0;
  calls = 0;
  /**
   * Set when as many attempts in a row as a call may make (of any calls, none answered between)
   * got no answer in the timeout: a service that holds requests, as a Ceph cluster with a full OSD
   * does. Until `until`, calls fail at once with that failure instead of each waiting out its own
   * attempts behind the bound on calls in flight: a command with hundreds of calls queued ends in
   * about one timeout, not in hours. After the window one attempt tries the service again (a mount
   * goes on once it answers); an answer clears it.
   */
  private down: { until: number; cause: unknown; attempts: number } | undefined;
  /** Attempts in a row that got no answer in the timeout, of any calls. */
  private silentAttempts = 0;

  constructor(
    readonly inner: ObjectBackend,
    private readonly o: ResilienceOptions = {},
  ) {
    this.url = inner.url;
    this.parallelism = o.connections ?? envNumber('FRAGFS_REMOTE_CONNECTIONS') ?? inner.parallelism;
    this.gate = new Semaphore(Math.max(1, Math.floor(this.parallelism)));
    const timeoutS = envNumber('FRAGFS_REMOTE_TIMEOUT');
    this.timeoutMs = o.timeoutMs ?? (timeoutS === undefined ? 60_000 : timeoutS * 1000);
    const retries = envNumber('FRAGFS_REMOTE_RETRIES');
    this.attempts = Math.max(1, o.attempts ?? (retries === undefined ? 6 : Math.floor(retries) + 1));
    this.backoffMs = o.backoffMs ?? 200;
  }

  async get(key: string, o?: CallOptions): Promise<Uint8Array | undefined> {
    checkObjectKey(key);
    return this.call(`reading ${key}`, o, (c) => this.inner.get(key, c));
  }

  /** Always given: a service without ranged reads is read whole and the range cut from it. */
  async getRange(key: string, offset: number, length: number, o?: CallOptions): Promise<Uint8Array | undefined> {
    checkObjectKey(key);
    const inner = this.inner;
    if (!inner.getRange) {
      const whole = await this.get(key, o);
      return whole?.subarray(Math.min(offset, whole.length), Math.min(offset + length, whole.length));
    }
    return this.call(`reading ${length} bytes at ${offset} of ${key}`, o, (c) => inner.getRange!(key, offset, length, c));
  }

  async put(key: string, bytes: Uint8Array, o: PutOptions & CallOptions = {}): Promise<boolean> {
    checkObjectKey(key);
    const ifAbsent = o.ifAbsent ?? false;
    // A create whose answer was lost and is retried finds its own object and says `false`: callers of
    // ifAbsent write a token they read back (remote-lease.ts), so that is not taken for another's.
    return this.call(`writing ${key}`, o, (c) => this.inner.put(key, bytes, { ...c, ifAbsent }));
  }

  async size(key: string, o?: CallOptions): Promise<number | undefined> {
    checkObjectKey(key);
    return this.call(`looking up ${key}`, o, (c) => this.inner.size(key, c));
  }

  async delete(key: string, o?: CallOptions): Promise<void> {
    checkObjectKey(key);
    return this.call(`deleting ${key}`, o, (c) => this.inner.delete(key, c));
  }

  /**
   * A listing that fails part-way is started again and skips what it already yielded, so callers
   * still see each key once. One page at a time holds a connection; the consumer's pace does not.
   */
  async *list(prefix: string, o?: CallOptions): AsyncIterable<ObjectEntry> {
    checkListPrefix(prefix);
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      this.calls++;
      try {
        for await (const entry of this.inner.list(prefix, this.attemptOptions(o, undefined))) {
          if (seen.has(entry.key)) continue;
          seen.add(entry.key);
          yield entry;
        }
        return;
      } catch (e) {
        if (!this.retryable(e, o) || attempt >= this.attempts) throw failureToError(e, `listing ${prefix || '/'}`, this.url, attempt);
        this.retries++;
        await this.pause(attempt, o);
      }
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async call<T>(what: string, o: CallOptions | undefined, fn: (c: CallOptions) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.calls++;
      await this.gate.acquire();
      const down = this.down;
      if (down !== undefined && Date.now() < down.until && !(o?.signal?.aborted || this.o.signal?.aborted)) {
        this.gate.release();
        const why = down.cause instanceof Error ? down.cause.message : String(down.cause);
        throw new FragfsError('REMOTE', `${this.url}: ${what}: not tried: the service failed another call just before: ${why} (${down.attempts} attempts)`, { cause: down.cause, path: this.url });
      }
      const timer = new AbortController();
      const timeout = setTimeout(() => timer.abort(new RemoteFailure('retry', `no answer in ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      try {
        const answer = await raceAbort(fn(this.attemptOptions(o, timer.signal)), timer.signal);
        this.silentAttempts = 0;
        this.down = undefined;
        return answer;
      } catch (e) {
        const retryable = this.retryable(e, o);
        // Only silence counts: each attempt of a queued call would cost the whole timeout, where a
        // refused connection fails in milliseconds and an error is an answer.
        if (timer.signal.aborted && retryable) {
          if (++this.silentAttempts >= this.attempts) {
            this.down = { until: Date.now() + this.timeoutMs, cause: e, attempts: this.silentAttempts };
            throw failureToError(e, what, this.url, attempt);
          }
        } else this.silentAttempts = 0;
        if (!retryable || attempt >= this.attempts) throw failureToError(e, what, this.url, attempt);
        this.retries++;
      } finally {
        clearTimeout(timeout);
        this.gate.release();
      }
      await this.pause(attempt, o);
    }
  }

  private attemptOptions(o: CallOptions | undefined, timeout: AbortSignal | undefined): CallOptions {
    const signals = [o?.signal, this.o.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    return signals.length === 0 ? {} : { signal: signals.length === 1 ? signals[0]! : AbortSignal.any(signals) };
  }

  private retryable(e: unknown, o: CallOptions | undefined): boolean {
    if (o?.signal?.aborted || this.o.signal?.aborted) return false;
    if (e instanceof RemoteFailure) return e.kind === 'retry';
    if (e instanceof FragfsError) return false;
    return isTransientNetworkError(e);
  }

  private async pause(attempt: number, o: CallOptions | undefined): Promise<void> {
    const cap = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** (attempt - 1));
    const ms = cap / 2 + Math.random() * (cap / 2);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      const stop = o?.signal ?? this.o.signal;
      stop?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(new FragfsError('INTERRUPTED', 'interrupted while waiting to retry a remote call'));
        },
        { once: true },
      );
    });
  }
}

