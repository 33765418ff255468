// Progress on stderr when it is a terminal, nothing otherwise (scripts and pipes see clean output):
// a bar in bytes (put, get, verify) or in things (sync's fragments), and a status line for work
// without a measure (gc's steps). The ETA comes from the average rate since the first unit of work,
// shown once there is enough of it to mean something, so it settles instead of jumping about.

import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';
import { formatBytes } from './common.js';

export interface Progress {
  /** The total to reach; until it is called the bar says it is still counting. */
  setTotal(total: number): void;
  increment(delta: number): void;
  stop(): void;
}

/** Work seen before an ETA is shown: some seconds of it and a share of the total. */
const ETA_MIN_MS = 3000;
const ETA_MIN_SHARE = 0.01;

/**
 * The time left, from the average rate since work began (not a short window: a slow start or a
 * burst of small files moves it little). Undefined while too little is done to tell.
 */
export class EtaEstimator {
  private startMs: number | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Call with each update; `done` and `total` in the same unit. Milliseconds left, or undefined. */
  remainingMs(done: number, total: number | undefined): number | undefined {
    const t = this.now();
    if (done > 0) this.startMs ??= t;
    if (this.startMs === undefined || total === undefined || total <= 0) return undefined;
    const elapsed = t - this.startMs;
    if (elapsed < ETA_MIN_MS || done < total * ETA_MIN_SHARE) return undefined;
    if (done >= total) return 0;
    return ((total - done) * elapsed) / done;
  }

  /** Bytes (or things) per second since work began. */
  rate(done: number): number {
    if (this.startMs === undefined) return 0;
    return done / Math.max(0.001, (this.now() - this.startMs) / 1000);
  }
}

/** 7s, 45s, 3m10s, 1h05m: rounded so that it does not flicker (to 5 s, then to 10 s past two minutes). */
export function formatEta(ms: number | undefined): string {
  if (ms === undefined) return '--';
  const s = Math.ceil(ms / 1000);
  if (s < 10) return `${s}s`;
  if (s < 120) return `${Math.ceil(s / 5) * 5}s`;
  const r = Math.ceil(s / 10) * 10;
  if (r < 3600) return `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s`;
  return `${Math.floor(r / 3600)}h${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}m`;
}

function makeBar(label: string, format: string): cliProgress.SingleBar {
  // Loaded only when a bar is shown (a terminal): its modules cost every other command about 14 ms.
  const bars = createRequire(import.meta.url)('cli-progress') as typeof cliProgress;
  return new bars.SingleBar(
    { stream: process.stderr, format: `${label} ${format}`, hideCursor: true, clearOnComplete: true, fps: 5 },
    bars.Presets.shades_classic,
  );
}

/** Progress in bytes; `enabled` defaults to stderr being a terminal. */
export function bytesProgress(label: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { setTotal() {}, increment() {}, stop() {} };
  const bar = makeBar(label, '[{bar}] {pct} | {done}/{all} | {rate}/s | ETA {eta}');
  const eta = new EtaEstimator();
  let total: number | undefined;
  let done = 0;
  const payload = () => ({
    pct: total === undefined ? '  ?%' : `${String(Math.floor((100 * Math.min(done, total)) / Math.max(1, total))).padStart(3)}%`,
    done: formatBytes(done),
    all: total === undefined ? 'counting' : formatBytes(total),
    rate: formatBytes(eta.rate(done)),
    eta: formatEta(eta.remainingMs(done, total)),
  });
  bar.start(1, 0, payload());
  return {
    setTotal(t) {
      total = t;
      bar.setTotal(Math.max(1, t));
      bar.update(done, payload());
    },
    increment(delta) {
      done += delta;
      bar.update(done, payload());
    },
    stop() {
      bar.stop();
    },
  };
}

/** A bar counting things (fragments) rather than bytes; `bytes` is shown beside the count. */
export function countProgress(label: string, unit: string, enabled = process.stderr.isTTY === true): Progress & { addBytes(n: number): void } {
  if (!enabled) return { setTotal() {}, increment() {}, stop() {}, addBytes() {} };
  const bar = makeBar(label, `[{bar}] {done}/{all} ${unit} | {bytes} | {rate}/s | ETA {eta}`);
  const eta = new EtaEstimator();
  let total: number | undefined;
  let done = 0;
  let bytes = 0;
  const payload = () => ({
    done,
    all: total === undefined ? 'counting' : total,
    bytes: formatBytes(bytes),
    rate: formatBytes(eta.rate(bytes)),
    eta: formatEta(eta.remainingMs(done, total)),
  });
  bar.start(1, 0, payload());
  return {
    setTotal(t) {
      total = t;
      bar.setTotal(Math.max(1, t));
      bar.update(done, payload());
    },
    increment(delta) {
      done += delta;
      bar.update(done, payload());
    },
    addBytes(n) {
      bytes += n;
    },
    stop() {
      bar.stop();
    },
  };
}

/** One line saying what is being done and for how long, for work without a measure (gc's steps). */
export function statusProgress(label: string, enabled = process.stderr.isTTY === true): { step(text: string): void; stop(): void } {
  if (!enabled) return { step() {}, stop() {} };
  const startMs = Date.now();
  let text = 'starting';
  let shown = 0;
  const draw = (): void => {
    const line = `${label}: ${text} (${formatEta(Date.now() - startMs)})`.slice(0, Math.max(20, (process.stderr.columns ?? 80) - 1));
    process.stderr.write(`\r${line}\x1b[K`);
    shown = line.length;
  };
  draw();
  const timer = setInterval(draw, 1000);
  timer.unref();
  return {
    step(t) {
      text = t;
      draw();
    },
    stop() {
      clearInterval(timer);
      if (shown > 0) process.stderr.write('\r\x1b[K');
    },
  };
}
