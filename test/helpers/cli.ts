// Runs the built fragfs CLI as a child process, the way a user or a script would.

import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'main.js');
export const TEST_PASSPHRASE = 'test passphrase: correct horse battery staple';
/**
 * `init` options for stores tests make: scrypt at 2^10 instead of the default 2^17, so that each later
 * command opens the store in milliseconds, not 0.8 s. Tests of the default leave them out.
 */
export const FAST_KDF: readonly string[] = ['--kdf-cost', '10'];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], o: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, FRAGFS_PASSPHRASE: TEST_PASSPHRASE, ...o.env };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(o.input ?? '');
  });
}

/** The meta key a put printed: its last stdout line. */
export function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1]!.trim();
}

/**
 * A user's mistake or a refusal: exit `code`, one line on stderr starting "fragfs: " and matching
 * `pattern`, no stack trace, nothing on stdout.
 */
export function oneLineError(t: ExecutionContext, r: CliResult, code: number, pattern: RegExp): void {
  t.is(r.code, code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, `one line: ${r.stderr}`);
  t.regex(lines[0]!, /^fragfs: /);
  t.regex(lines[0]!, pattern);
  t.notRegex(r.stderr, /\n\s+at /);
  t.is(r.stdout, '');
}
