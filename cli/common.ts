// What every fragfs command shares: store options, passphrase sources, opening a repo, progress on a
// TTY, JSON output, and the error boundary that turns a FragfsError into one line and its exit code.

import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { BUG_EXIT_CODE, FragfsError, fromFsError } from '../src/errors.js';
import { DEFAULT_SPACE, Repo, type Credentials } from '../src/repo/repo.js';
import { readIdentityFile } from '../src/people/age-box.js';

export interface StoreOptions {
  space?: string;
  passphraseFile?: string;
  identity?: string;
  cacheDir?: string;
  cacheMax?: string;
}

export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--space <name>', 'the space inside the store (one backend can hold several)', DEFAULT_SPACE)
    .option('--passphrase-file <file>', 'read the passphrase from this file (first line); else FRAGFS_PASSPHRASE or a prompt')
    .option('--identity <file>', 'open with an age identity file instead of a passphrase (default FRAGFS_IDENTITY)')
    .option('--cache-dir <dir>', 'where this machine keeps the state of remote stores (default FRAGFS_CACHE_DIR, else ~/.cache/fragfs)')
    .option('--cache-max <size>', 'remote stores: the most this machine keeps of their fragments, e.g. 10G (default FRAGFS_CACHE_MAX, else 1G; 0: none)')
    .hook('preAction', (_cmd, action) => {
      // Read wherever a store's local folder is needed (src/remote/store-site.ts), also by the
      // detached process of `mount --background`, which inherits the environment.
      const o = action.opts() as StoreOptions;
      if (o.cacheDir !== undefined) process.env['FRAGFS_CACHE_DIR'] = o.cacheDir;
      if (o.cacheMax !== undefined) process.env['FRAGFS_CACHE_MAX'] = String(o.cacheMax === '0' ? 0 : parseByteSize(o.cacheMax, '--cache-max'));
    });
}

/**
 * The passphrase, from (in order) --passphrase-file, FRAGFS_PASSPHRASE, or a hidden prompt on a TTY.
 * With none of them and no TTY, a clear NO_PASSPHRASE error rather than a hang.
 */
export async function readPassphrase(opts: StoreOptions, o: { confirm?: boolean; prompt?: string; ignoreEnv?: boolean } = {}): Promise<string> {
  if (opts.passphraseFile) {
    let text: string;
    try {
      text = await readFile(opts.passphraseFile, 'utf8');
    } catch (e) {
      throw fromFsError(e, 'reading the passphrase file', opts.passphraseFile);
    }
    const first = text.split(/\r?\n/)[0] ?? '';
    if (first.length === 0) throw new FragfsError('NO_PASSPHRASE', `the passphrase file ${opts.passphraseFile} is empty`);
    return first;
  }
  const env = o.ignoreEnv ? undefined : process.env['FRAGFS_PASSPHRASE'];
  if (env !== undefined && env.length > 0) return env;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new FragfsError(
      'NO_PASSPHRASE',
      'no passphrase: set FRAGFS_PASSPHRASE, pass --passphrase-file FILE, or run on a terminal to be asked',
    );
  }
  const prompt = o.prompt ?? 'Passphrase';
  const first = await promptHidden(`${prompt}: `);
  if (first.length === 0) throw new FragfsError('NO_PASSPHRASE', 'an empty passphrase');
  if (o.confirm) {
    const again = await promptHidden(`${prompt} again: `);
    if (again !== first) throw new FragfsError('USAGE', 'the two passphrases differ');
  }
  return first;
}

/**
 * A passphrase to set (passwd, key add): from --new-passphrase-file, FRAGFS_NEW_PASSPHRASE, or asked
 * twice on a TTY; never the one that opens the store.
 */
export async function readNewPassphrase(opts: { newPassphraseFile?: string }): Promise<string> {
  const env = process.env['FRAGFS_NEW_PASSPHRASE'];
  if (opts.newPassphraseFile === undefined && env !== undefined && env.length > 0) return env;
  if (opts.newPassphraseFile === undefined && (!process.stdin.isTTY || !process.stderr.isTTY)) {
    throw new FragfsError(
      'NO_PASSPHRASE',
      'no new passphrase: set FRAGFS_NEW_PASSPHRASE, pass --new-passphrase-file FILE, or run on a terminal to be asked',
    );
  }
  return readPassphrase(
    { ...(opts.newPassphraseFile === undefined ? {} : { passphraseFile: opts.newPassphraseFile }) },
    { confirm: true, prompt: 'New passphrase', ignoreEnv: true },
  );
}

/** The identity file a command opens stores with: --identity, else FRAGFS_IDENTITY, else none. */
export function identityFileOf(opts: StoreOptions): string | undefined {
  const env = process.env['FRAGFS_IDENTITY'];
  return opts.identity ?? (env !== undefined && env.length > 0 ? env : undefined);
}

/**
 * What opens the store: the identities of the identity file when there is one (then no passphrase is
 * asked), else the passphrase (readPassphrase).
 */
export async function readCredentials(opts: StoreOptions): Promise<Credentials> {
  const file = identityFileOf(opts);
  if (file !== undefined) return { identities: await readIdentityFile(file) };
  return { passphrase: await readPassphrase(opts) };
}

async function promptHidden(question: string): Promise<string> {
  process.stderr.write(question);
  let muted = true;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: sink, terminal: true });
  let onClose: (() => void) | undefined;
  try {
    return await new Promise<string>((resolveLine, reject) => {
      onClose = () => reject(new FragfsError('NO_PASSPHRASE', 'no passphrase entered'));
      rl.once('line', (line) => resolveLine(line));
      rl.once('SIGINT', () => reject(new FragfsError('INTERRUPTED', 'interrupted')));
      rl.once('close', onClose);
    });
  } finally {
    muted = false;
    // Only this prompt's listener: readline's own 'close' listener takes its keypress handler off
    // stdin, and without it a later prompt had this one echo what was typed there.
    if (onClose) rl.off('close', onClose);
    rl.close();
    process.stderr.write('\n');
  }
}

export async function openRepoForCli(storePath: string, opts: StoreOptions & { readOnly?: boolean }): Promise<Repo> {
  // A path without a store (or without that space) is said before a passphrase is asked for.
  await Repo.checkExists(storePath, opts.space ?? DEFAULT_SPACE);
  const credentials = await readCredentials(opts);
  return Repo.open({
    storePath,
    ...credentials,
    ...(opts.space === undefined ? {} : { space: opts.space }),
    ...(opts.readOnly === undefined ? {} : { readOnly: opts.readOnly }),
  });
}

/** Runs `fn` with an open repo and closes it whatever happens. */
export async function withRepo<T>(
  storePath: string,
  opts: StoreOptions & { readOnly?: boolean },
  fn: (repo: Repo) => Promise<T>,
): Promise<T> {
  const repo = await openRepoForCli(storePath, opts);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

/**
 * The error boundary of a command: a FragfsError (the user's or the environment's doing) prints one
 * line `fragfs: <message>` and exits with its documented code; anything else is a bug and prints
 * its stack with exit code 70.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      reportAndExit(e);
    }
  };
}

export function reportAndExit(e: unknown): never {
  if (e instanceof FragfsError) {
    process.stderr.write(`fragfs: ${e.message}\n`);
    if (process.env['FRAGFS_DEBUG']) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exit(e.exitCode);
  }
  process.stderr.write(`fragfs: internal error (a bug; please report it with this trace)\n`);
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(BUG_EXIT_CODE);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}

/** Progress in bytes on a TTY (stderr), nothing otherwise, so scripts and pipes see clean output. */
export interface Progress {
  setTotal(total: number): void;
  increment(delta: number): void;
  stop(): void;
}

/** A bar counting things (fragments) rather than bytes; `bytes` is shown beside the count. */
export function countProgress(label: string, unit: string, enabled = process.stderr.isTTY === true): Progress & { addBytes(n: number): void } {
  if (!enabled) return { setTotal() {}, increment() {}, stop() {}, addBytes() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {value}/{total} ${unit} | {bytes} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  const startMs = Date.now();
  let done = 0;
  let bytes = 0;
  const payload = () => ({ bytes: formatBytes(bytes), rate: formatBytes(bytes / Math.max(0.001, (Date.now() - startMs) / 1000)) });
  bar.start(0, 0, payload());
  return {
    setTotal(t) {
      bar.setTotal(t);
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

export function bytesProgress(label: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { setTotal() {}, increment() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {done}/{all} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const startMs = Date.now();
  let total = 0;
  let done = 0;
  const payload = () => ({
    done: formatBytes(done),
    all: formatBytes(total),
    rate: formatBytes(done / Math.max(0.001, (Date.now() - startMs) / 1000)),
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

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Parses sizes like 256M, 1GiB, 65536 (bytes). */
export function parseByteSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new FragfsError('USAGE', `${what}: not a size: ${JSON.stringify(text)} (e.g. 1048576, 512K, 1M, 2G)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}
