// Per-op counters for a mount (`fragfs mount --op-stats`): how many requests of each kind the kernel
// sent and how long the JS side took to answer them. It is how one finds which ops a workload costs
// (e.g. that `tar x` sends a getxattr per write) without libfuse's per-request trace.

import type { KernelOps } from './fuse-native.js';

interface Counter {
  count: number;
  /** Requests of this kind being answered now, and the most at once. */
  inFlight: number;
  maxInFlight: number;
  errors: number;
  totalNs: bigint;
  maxNs: bigint;
}

export interface OpStats {
  readonly ops: KernelOps;
  /** One line per op kind seen, busiest first. */
  report(): string;
}

/** Wraps every op of `inner` so its callback records count, errors and latency. */
export function withOpStats(inner: KernelOps): OpStats {
  const counters = new Map<string, Counter>();
  const started = process.hrtime.bigint();
  const wrapped: Record<string, unknown> = {};
  for (const name of Object.keys(inner) as (keyof KernelOps)[]) {
    const fn = inner[name] as (...a: unknown[]) => void;
    wrapped[name] = (...args: unknown[]) => {
      const t0 = process.hrtime.bigint();
      let c = counters.get(name);
      if (c === undefined) counters.set(name, (c = { count: 0, inFlight: 0, maxInFlight: 0, errors: 0, totalNs: 0n, maxNs: 0n }));
      const counter = c;
      counter.inFlight++;
      if (counter.inFlight > counter.maxInFlight) counter.maxInFlight = counter.inFlight;
      const cb = args[args.length - 1] as (res: number, ...v: unknown[]) => void;
      args[args.length - 1] = (res: number, ...v: unknown[]) => {
        const ns = process.hrtime.bigint() - t0;
        const c = counter;
        c.inFlight--;
        c.count++;
        if (res < 0) c.errors++;
        c.totalNs += ns;
        if (ns > c.maxNs) c.maxNs = ns;
        cb(res, ...v);
      };
      fn.apply(inner, args);
    };
  }
  return {
    ops: wrapped as unknown as KernelOps,
    report() {
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      const rows = [...counters].sort((a, b) => b[1].count - a[1].count);
      const lines = [`fragfs: FUSE ops over ${wallS.toFixed(1)} s (count, errors, mean and max µs in the JS answer, most at once)`];
      for (const [name, c] of rows) {
        const meanUs = Number(c.totalNs / BigInt(c.count)) / 1000;
        lines.push(
          `  ${name.padEnd(12)} ${String(c.count).padStart(9)} ${String(c.errors).padStart(8)} ${meanUs.toFixed(1).padStart(9)} ${(Number(c.maxNs) / 1000).toFixed(0).padStart(9)} ${String(c.maxInFlight).padStart(5)}`,
        );
      }
      return lines.join('\n');
    },
  };
}
