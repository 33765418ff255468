// The fragfs command line: one commander program, one file per command under cli/.

import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { closeRemoteBackends } from '../src/remote/store-site.js';
import { useFixedLmdb } from '../src/store/lmdb-binding.js';
import { reportAndExit } from './common.js';
import { quietOnClosedStdout } from './stdout-pipe.js';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded when needed: a run of one command loads only its own (every module
 * loaded costs start-up time, about a third of a second for all of them), help and completion all.
 * In help order.
 */
const COMMANDS: readonly [names: readonly string[], load: () => Promise<Register>][] = [
  [['init'], async () => (await import('./init.js')).registerInit],
  [['put'], async () => (await import('./put.js')).registerPut],
  [['get'], async () => (await import('./get.js')).registerGet],
  [['ls'], async () => (await import('./ls.js')).registerLs],
  [['cat'], async () => (await import('./cat.js')).registerCat],
  [['mount'], async () => (await import('./mount.js')).registerMount],
  [['umount', 'unmount'], async () => (await import('./umount.js')).registerUmount],
  [['snapshot'], async () => (await import('./snapshot.js')).registerSnapshot],
  [['snapshots'], async () => (await import('./snapshots.js')).registerSnapshots],
  [['diff'], async () => (await import('./diff.js')).registerDiff],
  [['find'], async () => (await import('./find.js')).registerFind],
  [['forget'], async () => (await import('./forget.js')).registerForget],
  [['sync'], async () => (await import('./sync.js')).registerSync],
  [['stats'], async () => (await import('./stats.js')).registerStats],
  [['verify'], async () => (await import('./verify.js')).registerVerify],
  [['gc'], async () => (await import('./gc.js')).registerGc],
  [['parity'], async () => (await import('./parity.js')).registerParity],
  [['repair'], async () => (await import('./repair.js')).registerRepair],
  [['passwd'], async () => (await import('./passwd.js')).registerPasswd],
  [['key'], async () => (await import('./key.js')).registerKey],
  [['id'], async () => (await import('./id.js')).registerId],
  [['share', 'shares', 'unshare'], async () => (await import('./share.js')).registerShare],
  [['group'], async () => (await import('./group.js')).registerGroup],
  [['completion'], async () => (await import('./completion.js')).registerCompletion],
  [['man'], async () => (await import('./man.js')).registerMan],
];

/** Commands that read the whole program (every command's options), so they need every module. */
const NEED_ALL = new Set(['completion', 'man']);

/**
 * The program with the commands `argv` may run: the one it names, or every one (no command, an
 * unknown one, help, completion, man), so help and "did you mean" see them all.
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('fragfs')
    .description('an encrypted, deduplicated, content-addressed store you can mount as a folder')
    .version(packageVersion())
    .showHelpAfterError('(run fragfs <command> --help for usage)')
    .exitOverride();
  const first = argv[2];
  const named = first === undefined || NEED_ALL.has(first) ? undefined : COMMANDS.find(([names]) => names.includes(first));
  const registers = await Promise.all((named ? [named] : COMMANDS).map(([, load]) => load()));
  for (const register of registers) register(program);
  return program;
}

/** The version of the installed package (this code's file, dist/bin/chunk-*.js or tsc's dist/cli/program.js, is two folders below package.json). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  // A second line of defence: every store file is created 0600 and every folder 0700 explicitly,
  // and a file a library creates on its own (an LMDB environment, a socket) gets no more than that
  // either. `get` sets the modes a snapshot recorded explicitly, so restored trees are unaffected.
  process.umask(0o077);
  quietOnClosedStdout();
  try {
    // Before any command module loads lmdb-js: an installed package builds its fixed LMDB binding
    // at the first command that opens a store (docs/DESIGN.md, "LMDB opened by several processes").
    const first = process.argv[2];
    const opensStores = first !== undefined && !NEED_ALL.has(first) && !process.argv.some((a) => a === '--help' || a === '-h' || a === '--version' || a === '-V');
    await useFixedLmdb({
      build: opensStores,
      onBuild: () => process.stderr.write('fragfs: building its LMDB binding with two upstream fixes, once (under a minute)\n'),
    });
  } catch (e) {
    reportAndExit(e);
  }
  const program = await buildProgram(process.argv);
  try {
    await program.parseAsync(process.argv);
    await closeRemoteBackends();
  } catch (e) {
    const code = (e as { code?: string; exitCode?: number }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      // commander already printed the message or the help text.
      process.exit((e as { exitCode?: number }).exitCode === 0 ? 0 : 2);
    }
    reportAndExit(e);
  }
}

await main();
