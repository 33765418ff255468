#!/usr/bin/env node
// The fragfs command line: one commander program, one file per command under cli/.

import './env.js';
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { registerCat } from './cat.js';
import { closeRemoteBackends } from '../src/remote/store-site.js';
import { reportAndExit } from './common.js';
import { quietOnClosedStdout } from './stdout-pipe.js';
import { registerCompletion } from './completion.js';
import { registerDiff } from './diff.js';
import { registerFind } from './find.js';
import { registerForget } from './forget.js';
import { registerGc } from './gc.js';
import { registerGet } from './get.js';
import { registerGroup } from './group.js';
import { registerId } from './id.js';
import { registerInit } from './init.js';
import { registerKey } from './key.js';
import { registerLs } from './ls.js';
import { registerMan } from './man.js';
import { registerMount } from './mount.js';
import { registerParity } from './parity.js';
import { registerPasswd } from './passwd.js';
import { registerPut } from './put.js';
import { registerRepair } from './repair.js';
import { registerSnapshot } from './snapshot.js';
import { registerShare } from './share.js';
import { registerSnapshots } from './snapshots.js';
import { registerStats } from './stats.js';
import { registerSync } from './sync.js';
import { registerUmount } from './umount.js';
import { registerVerify } from './verify.js';

export function buildProgram(): Command {
  const program = new Command('fragfs')
    .description('an encrypted, deduplicated, content-addressed store you can mount as a folder')
    .version(packageVersion())
    .showHelpAfterError('(run fragfs <command> --help for usage)')
    .exitOverride();
  for (const register of [
    registerInit,
    registerPut,
    registerGet,
    registerLs,
    registerCat,
    registerMount,
    registerUmount,
    registerSnapshot,
    registerSnapshots,
    registerDiff,
    registerFind,
    registerForget,
    registerSync,
    registerStats,
    registerVerify,
    registerGc,
    registerParity,
    registerRepair,
    registerPasswd,
    registerKey,
    registerId,
    registerShare,
    registerGroup,
    registerCompletion,
    registerMan,
  ]) {
    register(program);
  }
  return program;
}

/** The version of the installed package (dist/cli/main.js is two folders below package.json). */
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
  const program = buildProgram();
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
