// How the benchmark drives fragfs: its own CLI (dist/bin/main.js) as a user runs it, with the passphrase
// in FRAGFS_PASSPHRASE, so the figures include everything a user pays for.

import { access } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type CmdOptions, type CmdResult } from './proc.js';

/** dist/scripts/bench/fragfs-cli.js -> dist/bin/main.js */
export const FRAGFS_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/main.js');
export const BENCH_PASSPHRASE = 'fragfs-bench-passphrase';

export interface FragfsSettings {
  backend: string;
}
export const fragfsSettings: FragfsSettings = { backend: 'lmdb' };

/** Runs `main` (this build's CLI unless another build's is named, as `--baseline` does). */
export function fragfs(args: string[], o: CmdOptions = {}, main: string = FRAGFS_MAIN): Promise<CmdResult> {
  return run([process.execPath, main, ...args], {
    ...o,
    env: { ...process.env, ...o.env, FRAGFS_PASSPHRASE: BENCH_PASSPHRASE },
  });
}

export async function fragfsPresent(main: string = FRAGFS_MAIN): Promise<string | undefined> {
  try {
    await access(main);
  } catch {
    return `${main} does not exist (run npm run build)`;
  }
  return undefined;
}

/** The last non-empty line of stdout: where put and snapshot print the meta key. */
export function lastLine(out: string): string {
  const lines = out.trim().split('\n').filter((l) => l.trim().length > 0);
  return (lines[lines.length - 1] ?? '').trim();
}

export function metaKey(out: string, what: string): string {
  const key = lastLine(out);
  if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`fragfs ${what} printed no meta key as its last line (got ${JSON.stringify(key.slice(0, 80))})`);
  return key;
}
