// Runs the steps. Run 1 on every peer, then run 2 on every peer, ... so drift of the machine lands on all
// peers alike; the order of peers rotates from run to run so no peer always goes first. A mount peer gets
// one fresh folder per run that the mount workloads use in turn (a new store per workload would mostly
// measure store creation); a backup peer gets a fresh repository per step. Every step is bounded in time;
// a step that fails or times out takes its mount down, and the next step starts on a new one.

import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { rmrf } from './fs-util.js';
import type { BackupPeer, MountInstance, MountPeer, StepContext } from './peer.js';
import { AbortedError } from './proc.js';
import type { StepRecord } from './results.js';
import { PeakRss, resetPeak } from './rss.js';
import type { BackupWorkload, MountWorkload, StepOutput } from './workload.js';

export interface RunPlan {
  runs: number;
  stepTimeoutMs: number;
  tmp: string;
  dropCaches: boolean;
  log: (line: string) => void;
}

const DISPOSE_BOUND_MS = 90_000;

function rotate<T>(xs: T[], by: number): T[] {
  if (xs.length === 0) return xs;
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} took over ${ms / 1000} s`)), ms);
    }),
  ]);
}

/** The per-step part of a context: its own abort signal (the time bound) and its own RSS probe. */
class Bound {
  readonly ctrl = new AbortController();
  readonly rss = new PeakRss();
  timedOut = false;
  private readonly timer: NodeJS.Timeout;
  readonly aborted: Promise<never>;
  constructor(ms: number) {
    this.aborted = new Promise<never>((_, rej) => {
      this.ctrl.signal.addEventListener('abort', () => rej(new AbortedError()), { once: true });
    });
    this.aborted.catch(() => undefined);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.ctrl.abort();
    }, ms);
  }
  end(): void {
    clearTimeout(this.timer);
    this.rss.stop();
  }
}

/** Runs body under bound b and fills rec; the caller cleans up. */
async function measure(rec: StepRecord, b: Bound, body: () => Promise<StepOutput>): Promise<void> {
  const t0 = Date.now();
  try {
    const out = await Promise.race([body(), b.aborted]);
    rec.values = out.values;
    if (out.notes) rec.notes = out.notes;
  } catch (e) {
    rec.status = b.timedOut ? 'timeout' : 'error';
    rec.values = {};
    if (!b.timedOut) rec.error = ((e as Error).message ?? String(e)).split('\n')[0]!.slice(0, 300);
    b.ctrl.abort();
  } finally {
    b.end();
    rec.rssBytes = b.rss.peakBytes;
    rec.anonBytes = b.rss.peakAnonBytes;
    rec.seconds = (Date.now() - t0) / 1000;
  }
}

function logStep(plan: RunPlan, rec: StepRecord): void {
  const figs = Object.entries(rec.values).map(([k, v]) => `${k}=${fmtNum(v)}`).join(' ');
  const rss =
    (rec.rssBytes ? ` rss=${(rec.rssBytes / (1 << 20)).toFixed(0)}MiB` : '') + (rec.anonBytes ? ` anon=${(rec.anonBytes / (1 << 20)).toFixed(0)}MiB` : '');
  const what = rec.status === 'ok' ? figs + rss : rec.status + (rec.error ? ': ' + rec.error : '');
  plan.log(`  [run ${rec.run}/${plan.runs} ${rec.workload}] ${rec.peer.padEnd(9)} ${what} (${rec.seconds.toFixed(1)} s)`);
}

/** One mount peer in one run: a new folder, each mount workload in turn on it, then unmount. */
async function mountSession(ws: MountWorkload[], peer: MountPeer, runNo: number, plan: RunPlan): Promise<StepRecord[]> {
  const workDir = await mkdtemp(join(plan.tmp, `run${runNo}-${peer.name}-`));
  let bound = new Bound(plan.stepTimeoutMs);
  bound.end();
  // Mounts keep their context for remounts: it always answers with the current step's signal and probe.
  const ctxFor = (dir: string): StepContext => ({
    get signal() {
      return bound.ctrl.signal;
    },
    get rss() {
      return bound.rss;
    },
    workDir: dir,
    dropCaches: plan.dropCaches,
  });
  const ctx = ctxFor(workDir);
  const out: StepRecord[] = [];
  let inst: MountInstance | undefined;
  let fresh = 0;
  const dispose = async (): Promise<void> => {
    const i = inst;
    inst = undefined;
    if (i) await bounded(i.dispose(), DISPOSE_BOUND_MS, 'unmounting').catch((e: Error) => plan.log(`  cleanup: ${e.message}`));
  };
  try {
    for (const w of ws) {
      bound = new Bound(plan.stepTimeoutMs);
      const rec: StepRecord = { workload: w.id, peer: peer.name, run: runNo, status: 'ok', seconds: 0, values: {} };
      // Nothing left to write back from the inputs or the step before, so no peer shares the disk
      // with another's writeback. (It did not explain why fragfs's first write of a full run is
      // about half as fast as its later ones: that stayed, see README.)
      spawnSync('sync');
      await measure(rec, bound, async () => {
        if (!inst) {
          const dir = join(workDir, `m${fresh++}`);
          await mkdir(dir);
          inst = await peer.create(ctxFor(dir));
        }
        const i = inst;
        // Peak RSS per workload: restart the kernel's high-water mark of a mount that served the last one.
        resetPeak(i.pid());
        const unwatch = bound.rss.watch(() => i.pid());
        try {
          return await w.run(i, ctx);
        } finally {
          unwatch();
        }
      });
      if (rec.status !== 'ok') await dispose();
      out.push(rec);
      logStep(plan, rec);
    }
  } finally {
    await dispose();
    await rmrf(workDir).catch(() => undefined);
  }
  return out;
}

export async function runMountWorkloads(ws: MountWorkload[], peers: MountPeer[], plan: RunPlan): Promise<StepRecord[]> {
  const out: StepRecord[] = [];
  if (ws.length === 0) return out;
  for (let r = 1; r <= plan.runs; r++) for (const p of rotate(peers, r - 1)) out.push(...(await mountSession(ws, p, r, plan)));
  return out;
}

export async function runBackupWorkload(w: BackupWorkload, peers: BackupPeer[], plan: RunPlan): Promise<StepRecord[]> {
  const out: StepRecord[] = [];
  for (let r = 1; r <= plan.runs; r++) {
    for (const peer of rotate(peers, r - 1)) {
      const workDir = await mkdtemp(join(plan.tmp, `run${r}-${w.id}-${peer.name}-`));
      const b = new Bound(plan.stepTimeoutMs);
      const ctx: StepContext = { signal: b.ctrl.signal, rss: b.rss, workDir, dropCaches: plan.dropCaches };
      const rec: StepRecord = { workload: w.id, peer: peer.name, run: r, status: 'ok', seconds: 0, values: {} };
      let dispose: (() => Promise<void>) | undefined;
      spawnSync('sync');
      await measure(rec, b, async () => {
        const inst = await peer.create(ctx);
        dispose = () => inst.dispose();
        return w.run(inst, ctx);
      });
      if (dispose) await bounded(dispose(), DISPOSE_BOUND_MS, 'unmounting').catch((e: Error) => plan.log(`  cleanup: ${e.message}`));
      await rmrf(workDir).catch(() => undefined);
      out.push(rec);
      logStep(plan, rec);
    }
  }
  return out;
}

export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}
