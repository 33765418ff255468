// Peak resident memory of the processes a workload step drives (workload (g)): polls VmHWM in
// /proc/<pid>/status, the kernel's own high-water mark, so a short peak between polls is not missed.
// VmHWM also counts pages of files the process maps (fragfs's LMDB store and live state), which the
// kernel may drop at any time; RssAnon, the process's own memory, is polled beside it.

import { readFileSync, writeFileSync } from 'node:fs';

const POLL_MS = 100;

/** /proc/<pid>/status, or undefined when the process is gone or unreadable. */
function status(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
}

/** A `Field:  N kB` line of a status text, in bytes. */
function field(text: string | undefined, name: 'VmHWM' | 'RssAnon'): number | undefined {
  const m = text === undefined ? null : new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * The highest VmHWM (and sampled RssAnon) seen over every process handed to it during one step. A mount process is followed
 * through `watch(getPid)` (the pid changes on a remount); a command through `watchPid`.
 */
export class PeakRss {
  private peak = 0;
  private peakAnon = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  get peakBytes(): number | undefined {
    return this.peak > 0 ? this.peak : undefined;
  }

  /** Highest RssAnon among the polls (every 100 ms): a shorter peak can be missed. */
  get peakAnonBytes(): number | undefined {
    return this.peakAnon > 0 ? this.peakAnon : undefined;
  }

  private sample(pid: number | undefined): void {
    if (pid === undefined) return;
    const text = status(pid);
    const v = field(text, 'VmHWM');
    if (v !== undefined && v > this.peak) this.peak = v;
    const a = field(text, 'RssAnon');
    if (a !== undefined && a > this.peakAnon) this.peakAnon = a;
  }

  watch(getPid: () => number | undefined): (final?: boolean) => void {
    this.sample(getPid());
    const t = setInterval(() => this.sample(getPid()), POLL_MS);
    t.unref();
    this.timers.add(t);
    return (final = true) => {
      if (final) this.sample(getPid());
      clearInterval(t);
      this.timers.delete(t);
    };
  }

  watchPid(pid: number): (final?: boolean) => void {
    return this.watch(() => pid);
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
  }
}

/** pid's own memory now (RssAnon: its heap and stacks, not the file pages it maps), or undefined when it is gone. */
export function ownMemoryBytes(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : field(status(pid), 'RssAnon');
}

/** Resets pid's VmHWM to its current RSS (clear_refs 5, Linux 4.0+, root or the owner); false if it could not. */
export function resetPeak(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
