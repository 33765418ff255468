// Running the commands a benchmark drives: bounded by an abort signal, killed as a process group, their
// output captured, and (optionally) their peak RSS followed while they run.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { PeakRss } from './rss.js';
import { disownPid, ownPid } from './cleanup.js';

export interface CmdOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Follow the child's peak RSS while it runs. */
  rss?: PeakRss;
  /** Bash -o pipefail -c CMD instead of argv. */
  shell?: boolean;
  /** Do not throw on a non-zero exit. */
  allowFail?: boolean;
  input?: string;
}

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

export class CmdError extends Error {
  constructor(
    message: string,
    readonly result: CmdResult,
  ) {
    super(message);
  }
}

export class AbortedError extends Error {
  constructor() {
    super('aborted (time bound reached)');
  }
}

const OUTPUT_KEEP = 64 * 1024;

/** Runs argv[0] with argv[1..]; resolves when it exits; rejects on non-zero exit (unless allowFail) or abort. */
export function run(argv: string[], o: CmdOptions = {}): Promise<CmdResult> {
  if (argv.length === 0) throw new Error('run: empty argv');
  const [cmd, args] = o.shell ? ['bash', ['-o', 'pipefail', '-c', argv.join(' ')]] : [argv[0]!, argv.slice(1)];
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(new AbortedError());
    const started = process.hrtime.bigint();
    // Own process group, so a time bound can end the whole pipeline and nothing else.
    const child = spawn(cmd, args, {
      cwd: o.cwd,
      env: o.env ?? process.env,
      detached: true,
      stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid !== undefined) ownPid(pid);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout = (stdout + d.toString('utf8')).slice(-OUTPUT_KEEP);
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-OUTPUT_KEEP);
    });
    if (o.input !== undefined) child.stdin?.end(o.input);
    const unwatch = pid !== undefined && o.rss ? o.rss.watchPid(pid) : undefined;
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      if (pid !== undefined) killGroup(pid);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      o.signal?.removeEventListener('abort', onAbort);
      unwatch?.();
      if (pid !== undefined) disownPid(pid);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code) => {
      o.signal?.removeEventListener('abort', onAbort);
      unwatch?.(true);
      if (pid !== undefined) disownPid(pid);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const result: CmdResult = { code, stdout, stderr, seconds };
      if (aborted) return reject(new AbortedError());
      if (code !== 0 && !o.allowFail) {
        const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-3).join(' | ');
        return reject(new CmdError(`${[cmd, ...args].join(' ').slice(0, 200)} exited ${code}: ${tail}`, result));
      }
      resolve(result);
    });
  });
}

export function killGroup(pid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

export async function which(name: string): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until pid has exited, at most `ms`; true when it did. */
export async function waitExit(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!isAlive(pid) || isZombie(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** Single-quotes s for bash. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
