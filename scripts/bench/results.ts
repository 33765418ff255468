// The shape of a bench's results (what results.json holds) and how the per-step records become figures:
// one summary per peer per metric, the subject/peer ratio of the medians, and the (g) peak RSS figures.

import type { Sizes } from './options.js';
import { ratio, summarize, type Summary } from './stats.js';
import type { MetricSpec, Workload } from './workload.js';
import type { MachineInfo } from './machine.js';

export interface PeerInfo {
  name: string;
  kind: 'mount' | 'backup';
  available: boolean;
  version?: string;
  reason?: string;
  setup: string;
}

export interface StepRecord {
  workload: string;
  peer: string;
  run: number;
  status: 'ok' | 'timeout' | 'error';
  seconds: number;
  values: Record<string, number>;
  rssBytes?: number;
  /** Peak RssAnon (memory of the process's own, without mapped file pages), polled. */
  anonBytes?: number;
  error?: string;
  notes?: string[];
}

export interface PeerFigure {
  summary?: Summary;
  samples: number[];
  /** 'timeout' or an error message, per failed run. */
  failures: string[];
}

export interface MetricResult {
  workload: string;
  spec: MetricSpec;
  peers: Record<string, PeerFigure>;
  /** subject median / peer median, per peer other than the subject. */
  ratios: Record<string, number | undefined>;
}

export interface WorkloadInfo {
  id: string;
  title: string;
  description: string;
  peers: string[];
  unavailable?: string;
  notes: string[];
}

export interface BenchResults {
  date: string;
  machine: MachineInfo;
  mode: 'quick' | 'full';
  runs: number;
  subject: string;
  sizes: Sizes;
  peers: PeerInfo[];
  workloads: WorkloadInfo[];
  steps: StepRecord[];
  metrics: MetricResult[];
  totalSeconds: number;
}

export function rssSpec(w: { id: string; short: string }): MetricSpec {
  return { id: 'rss', section: 'g', label: `peak RSS in ${w.short}`, unit: 'MiB', better: 'lower' };
}

export function anonSpec(w: { id: string; short: string }): MetricSpec {
  return { id: 'anon', section: 'g', label: `peak own memory (RssAnon) in ${w.short}`, unit: 'MiB', better: 'lower' };
}

export function buildMetrics(workloads: Workload[], infos: WorkloadInfo[], steps: StepRecord[], subject: string): MetricResult[] {
  const out: MetricResult[] = [];
  const collect = (wid: string, spec: MetricSpec, peers: string[], value: (s: StepRecord) => number | undefined): void => {
    const res: MetricResult = { workload: wid, spec, peers: {}, ratios: {} };
    for (const p of peers) {
      const mine = steps.filter((s) => s.workload === wid && s.peer === p);
      const samples = mine.filter((s) => s.status === 'ok').map(value).filter((v): v is number => v !== undefined);
      const failures = mine.filter((s) => s.status !== 'ok').map((s) => (s.status === 'timeout' ? 'timeout' : s.error ?? 'error'));
      res.peers[p] = { summary: summarize(samples), samples, failures };
    }
    for (const p of peers) if (p !== subject) res.ratios[p] = ratio(res.peers[subject]?.summary, res.peers[p]?.summary);
    out.push(res);
  };
  for (const w of workloads) {
    const info = infos.find((i) => i.id === w.id);
    if (!info || info.unavailable) continue;
    for (const spec of w.metrics) collect(w.id, spec, info.peers, (s) => s.values[spec.id]);
  }
  for (const w of workloads) {
    const info = infos.find((i) => i.id === w.id);
    if (!info || info.unavailable) continue;
    // A peer with no process of its own (the plain folder) has no RSS figure at all.
    const withProcess = info.peers.filter((p) => steps.some((s) => s.workload === w.id && s.peer === p && (s.rssBytes !== undefined || s.status !== 'ok')));
    collect(w.id, rssSpec(w), withProcess, (s) => (s.rssBytes === undefined ? undefined : s.rssBytes / (1 << 20)));
    collect(w.id, anonSpec(w), withProcess, (s) => (s.anonBytes === undefined ? undefined : s.anonBytes / (1 << 20)));
  }
  return out;
}
