// What a workload is: a named set of figures (each in one of issue 4's sections a-g, with its unit and
// which way is better), prepared once per bench and run once per peer per run.

import type { BackupInstance, MountInstance, StepContext } from './peer.js';
import type { Sizes } from './options.js';

export type Section = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g';

export interface MetricSpec {
  id: string;
  section: Section;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

export interface StepOutput {
  values: Record<string, number>;
  notes?: string[];
}

export interface PrepareContext {
  tmp: string;
  sizes: Sizes;
}

interface WorkloadBase {
  id: string;
  title: string;
  /** A few words, for chart labels. */
  short: string;
  /** One line on what is measured and how, for the report. */
  describe(sizes: Sizes): string;
  metrics: MetricSpec[];
  /** Once per bench, before any run; inputs shared by every step. */
  prepare(p: PrepareContext): Promise<void>;
  /** Why it cannot run here (e.g. fio missing), or undefined. */
  unavailable?(): Promise<string | undefined>;
}

export interface MountWorkload extends WorkloadBase {
  peerKind: 'mount';
  run(inst: MountInstance, ctx: StepContext): Promise<StepOutput>;
}

export interface BackupWorkload extends WorkloadBase {
  peerKind: 'backup';
  run(inst: BackupInstance, ctx: StepContext): Promise<StepOutput>;
}

export type Workload = MountWorkload | BackupWorkload;

/** Seconds of an async action. */
export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export function checkAbort(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('aborted (time bound reached)');
}

export const MB = 1e6;
