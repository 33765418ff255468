// Keeps a mount's own memory (RssAnon) near what its settings grant, as Go's soft memory limit
// (GOMEMLIMIT) does for a Go filesystem: V8 starts a full collection when its old generation reaches
// its limit or its external memory grows by 64 MiB, not when the process as a whole is large, so a
// walk or an untar left 60-110 MiB of dead buffers and promoted garbage in a mount until it went
// quiet (docs/DESIGN.md, "Memory of a mount").

import { readFileSync } from 'node:fs';

/** V8's `gc()` under --expose-gc, with the options its extension takes (V8 >= 9). */
export type CollectFn = (options?: { type: 'major' | 'minor'; execution: 'sync' | 'async' }) => unknown;

export interface MemoryPacerOptions {
  /** Above this many bytes of RssAnon the process runs a full collection (within the gaps below). */
  softLimitBytes: number;
  /** V8's gc(); the pacer does nothing without it. */
  collect: CollectFn | undefined;
  /** Called when a collection the pacer started ends (malloc_trim hands the freed pages back). */
  afterCollect: () => void;
  /** Reads the process's own memory in bytes; RssAnon from /proc by default. */
  ownBytes?: () => number | undefined;
}

/**
 * Collections cost the JS thread time in proportion to the live heap (tens of ms for a mount's 30-60
 * MB), so however far over the limit, a mount collects at most once per MIN_GAP_MS, and waits at
 * least GAP_PER_COLLECT_MS x the last one's duration: a process whose live memory alone exceeds the
 * limit spends at most about a tenth of its time collecting.
 */
export const MIN_GAP_MS = 1000;
export const GAP_PER_COLLECT_MS = 10;
/**
 * A collection that leaves the process above its limit found little garbage: the memory is in use
 * (a cache filled, a snapshot's work). The gap then doubles up to this while the mount is not busy,
 * so a mount idle above its limit is not woken to collect in vain every second; unless its memory
 * grows again by REGROWTH_BYTES (a snapshot, the write-ahead of folders).
 */
export const MAX_GAP_MS = 64_000;
/**
 * Growth past what the last fruitless collection left that ends the doubled wait at once: new
 * garbage (a walk after an untar that left the mount just above its limit), not memory in use.
 */
export const REGROWTH_BYTES = 16 * 1024 * 1024;

/**
 * What a mount needs beside its caches: node and its modules, two codec threads with their heaps, V8's
 * working heap (20-40 MB live) and the stores and reads in flight. Measured at default settings on an
 * untar of 100,000 small files and two walks of them (docs/DESIGN.md, "Memory of a mount"): with
 * 40 MiB less, the mount collected 104 times during the untar and took 13 % longer; with this, the
 * untar took 2-5 % longer for 50-70 MiB less.
 */
export const RUNTIME_ALLOWANCE_BYTES = 96 * 1024 * 1024;

/** The soft limit for a mount with these caches: the memory its settings grant plus the runtime's. */
export function softMemoryLimit(o: { cacheBytes: number; metaCacheBytes: number; writeBufferBytes: number }): number {
  return RUNTIME_ALLOWANCE_BYTES + o.cacheBytes + o.metaCacheBytes + o.writeBufferBytes;
}

/** RssAnon of this process in bytes, or undefined where /proc is not there. */
export function ownAnonBytes(): number | undefined {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * - `check()` MAY start one asynchronous full collection, never two at once, never within the gaps
 *   above; it MUST NOT block on it (the JS thread serves the kernel). It is cheap (one read of
 *   /proc/self/status) and meant to be called on a timer, busy or idle: a snapshot or the write-ahead
 *   of folders makes garbage without a single FUSE request.
 * - It reads /proc, never the mount point, so calling it from the mount's own thread is safe.
 */
export class MemoryPacer {
  private readonly o: MemoryPacerOptions;
  private running = false;
  /** Before this, no collection at all (MIN_GAP_MS, GAP_PER_COLLECT_MS). */
  private nextAllowedMs = 0;
  /** Before this, only regrowth past `floorBytes` starts one (MAX_GAP_MS, REGROWTH_BYTES). */
  private backoffUntilMs = 0;
  private floorBytes = 0;
  /** Collections in a row that left the process above its limit. */
  private fruitless = 0;
  /** Collections started, for tests and status. */
  collections = 0;

  constructor(o: MemoryPacerOptions) {
    this.o = o;
  }

  /**
   * `busy`: the mount served requests since the last check. A busy mount collects whenever it is over
   * its limit (within MIN_GAP_MS and GAP_PER_COLLECT_MS): its garbage grows with its work. The doubled
   * wait after fruitless collections holds only while it is not busy.
   */
  check(nowMs = Date.now(), busy = false): boolean {
    const collect = this.o.collect;
    if (!collect || this.running || nowMs < this.nextAllowedMs) return false;
    const own = (this.o.ownBytes ?? ownAnonBytes)();
    if (own === undefined || own <= this.o.softLimitBytes) return false;
    if (!busy && nowMs < this.backoffUntilMs && own < this.floorBytes + REGROWTH_BYTES) return false;
    this.running = true;
    this.collections++;
    const started = performance.now();
    const done = () => {
      const tookMs = performance.now() - started;
      this.running = false;
      this.o.afterCollect();
      const after = (this.o.ownBytes ?? ownAnonBytes)();
      this.fruitless = after !== undefined && after > this.o.softLimitBytes ? this.fruitless + 1 : 0;
      this.floorBytes = after ?? 0;
      const now = Date.now();
      this.nextAllowedMs = now + Math.max(MIN_GAP_MS, GAP_PER_COLLECT_MS * tookMs);
      this.backoffUntilMs = this.fruitless === 0 ? 0 : now + Math.min(MAX_GAP_MS, MIN_GAP_MS * 2 ** this.fruitless);
    };
    try {
      Promise.resolve(collect({ type: 'major', execution: 'async' })).then(done, done);
    } catch {
      done();
    }
    return true;
  }
}
