// Real-mount test support: stores in temp folders, mounts served by a child `fragfs mount
// --background` process, shell commands run as child processes, and teardown that always unmounts.
// Never touch a mount with synchronous fs calls from the process that serves it; here the ava worker
// serves nothing, and still only child processes and async fs touch the mount.

import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { FAST_KDF } from '../helpers/cli.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The built CLI; FRAGFS_TEST_CLI may point at another entry (e.g. while a command is not wired in yet). */
export const CLI = process.env['FRAGFS_TEST_CLI'] ?? join(here, '..', '..', 'bin', 'main.js');
export const PASSPHRASE = 'mount test passphrase';

/** What helpers need from a test (or from a shared before hook, via sharedCtx). */
export interface Ctx {
  fail(message: string): void;
  teardown(fn: () => Promise<void> | void): void;
  pass?: ExecutionContext['pass'];
}

/** A Ctx for test.before: failures throw, teardowns run in `cleanup` (call it from test.after.always). */
export function sharedCtx(): Ctx & { cleanup(): Promise<void> } {
  const fns: (() => Promise<void> | void)[] = [];
  return {
    fail(message: string) {
      throw new Error(message);
    },
    teardown(fn) {
      fns.push(fn);
    },
    async cleanup() {
      for (const fn of fns.reverse()) await fn();
    },
  };
}

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Whether real mounts can run here; prints a loud banner when they cannot. */
export function fuseAvailable(): boolean {
  const missing: string[] = [];
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse');
  if (!['/bin/fusermount', '/usr/bin/fusermount', '/usr/local/bin/fusermount'].some((p) => existsSync(p))) missing.push('fusermount');
  if (missing.length === 0) return true;
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!!! REAL-MOUNT TESTS SKIPPED: ${missing.join(' and ')} not available on this machine.\n!!! Nothing about FUSE mounts was tested. Run them where /dev/fuse exists (CI runs them as root).\n${bar}\n`);
  return false;
}

export function hasTool(name: string): boolean {
  return (process.env['PATH'] ?? '/usr/bin:/bin').split(':').some((d) => existsSync(join(d, name)));
}

/** The FUSE addon (setup.sh builds it, a mount would too): built once here if this checkout has not. */
export async function ensurePatchedAddon(): Promise<void> {
  const { ensureKernelBinding } = await import('../../src/fuse/kernel-binding.js');
  await ensureKernelBinding();
}

export function run(cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<ShResult> {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = o.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), o.timeoutMs) : undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => {
      stderr += String(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolveRun({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a child that exits without reading its input
    child.stdin.end(o.input ?? '');
  });
}

/** bash -c, failing the test with the output when the exit code is not `expect` (default 0). */
export async function sh(t: Ctx, script: string, o: { cwd?: string; expect?: number | 'any'; timeoutMs?: number } = {}): Promise<ShResult> {
  const r = await run('bash', ['-o', 'pipefail', '-c', script], { ...(o.cwd ? { cwd: o.cwd } : {}), timeoutMs: o.timeoutMs ?? 180_000 });
  const expect = o.expect ?? 0;
  if (expect !== 'any' && r.code !== expect) {
    t.fail(`\`${script}\` exited ${r.code} (expected ${expect})\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  } else {
    t.pass?.(); // the exit code was checked: that is an assertion
  }
  return r;
}

export interface Env {
  root: string;
  /** Per-test runtime folder: mount records, sockets and background logs stay out of /run. */
  runtimeDir: string;
  env: NodeJS.ProcessEnv;
}

/** A temp folder, removed in teardown after every mount under it is gone. */
export async function makeEnv(t: Ctx): Promise<Env> {
  const root = await mkdtemp(join(tmpdir(), 'fragfs-mount-'));
  const runtimeDir = join(root, 'run');
  await mkdir(runtimeDir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, FRAGFS_PASSPHRASE: PASSPHRASE, FRAGFS_RUNTIME_DIR: runtimeDir };
  t.teardown(async () => {
    // Anything still mounted below root (a failed test): detach before deleting.
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    for (const line of mounts.split('\n')) {
      const mp = line.split(' ')[1]?.replace(/\\040/g, ' ');
      if (mp?.startsWith(root)) await run('fusermount', ['-uz', mp]);
    }
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
  });
  return { root, runtimeDir, env };
}

export function fragfs(e: Env, args: string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ShResult> {
  return run(process.execPath, [CLI, ...args], { env: { ...e.env, ...o.env }, timeoutMs: o.timeoutMs ?? 180_000 });
}

export async function initStore(t: Ctx, e: Env, name = 'store', extra: string[] = []): Promise<string> {
  const store = join(e.root, name);
  const r = await fragfs(e, ['init', store, ...FAST_KDF, ...extra]);
  if (r.code !== 0) t.fail(`fragfs init failed: ${r.stderr}`);
  return store;
}

/** Mounts still up; if the worker exits without running teardowns (a hung test), detach them. */
const live = new Map<string, number>();
process.on('exit', () => {
  for (const [mp, pid] of live) {
    spawnSync('fusermount', ['-uz', mp]);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
});

export interface Mounted {
  mountpoint: string;
  /** The mount process (from its record). */
  pid: number;
  logFile?: string;
  umount(): Promise<ShResult>;
}

/** `fragfs mount --background`; teardown unmounts (and kills the process if it hangs on). */
export async function mount(t: Ctx, e: Env, store: string, name: string, extra: string[] = []): Promise<Mounted> {
  const mountpoint = join(e.root, name);
  await mkdir(mountpoint, { recursive: true });
  const r = await fragfs(e, ['mount', store, mountpoint, '--background', ...extra]);
  if (r.code !== 0) {
    t.fail(`fragfs mount failed (${r.code}): ${r.stderr}`);
    throw new Error(`mount failed: ${r.stderr}`);
  }
  if (r.stdout.trim().split('\n').pop() !== mountpoint) t.fail(`mount --background printed ${JSON.stringify(r.stdout)}, not the mount point`);
  const rec = await readRecord(e, mountpoint);
  const m: Mounted = {
    mountpoint,
    pid: rec.pid,
    ...(rec.logFile ? { logFile: rec.logFile } : {}),
    umount: () => fragfs(e, ['umount', mountpoint]),
  };
  live.set(mountpoint, rec.pid);
  t.teardown(async () => {
    live.delete(mountpoint);
    if (!(await isMounted(mountpoint))) return;
    const u = await m.umount();
    if (u.code !== 0) await run('fusermount', ['-uz', mountpoint]);
    if (pidAlive(m.pid)) process.kill(m.pid, 'SIGKILL');
  });
  return m;
}

export async function readRecord(e: Env, mountpoint: string): Promise<{ pid: number; logFile?: string }> {
  const { recordPathFor } = await import('../../src/fuse/mount-registry.js');
  const prev = process.env['FRAGFS_RUNTIME_DIR'];
  process.env['FRAGFS_RUNTIME_DIR'] = e.runtimeDir;
  try {
    return JSON.parse(await readFile(recordPathFor(mountpoint), 'utf8')) as { pid: number; logFile?: string };
  } finally {
    if (prev === undefined) delete process.env['FRAGFS_RUNTIME_DIR'];
    else process.env['FRAGFS_RUNTIME_DIR'] = prev;
  }
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[1]?.replace(/\\040/g, ' ') === mountpoint);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A python3 one-off (xattrs, errno probes) run as a child process. */
export function py(script: string, cwd?: string): Promise<ShResult> {
  return run('python3', ['-c', script], cwd ? { cwd } : {});
}

export const execFileText = (cmd: string, args: string[]) =>
  new Promise<string>((res, rej) => execFile(cmd, args, (err, out) => (err ? rej(err) : res(out))));
