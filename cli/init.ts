// `fragfs init STORE`: creates a store (or a new space in one) with a passphrase-wrapped master key,
// and prints a recovery key that opens it too, once (unless --no-recovery-key).

import type { Command } from 'commander';
import { parseParityShape } from '../src/parity/parity-settings.js';
import { parityStoreLocation } from './parity.js';
import { FragfsError } from '../src/errors.js';
import { checkBlockSize } from '../src/codec/block-size.js';
import { DEFAULT_KDF_COST, MAX_KDF_COST, MIN_KDF_COST } from '../src/repo/passphrase-kdf.js';
import { Repo } from '../src/repo/repo.js';
import { newRecoveryKey } from '../src/people/recovery-key.js';
import { LOCAL_BACKEND_NAMES, type BackendName } from '../src/store/store.js';
import { action, addStoreOptions, formatBytes, parseByteSize, printJson, readPassphrase, type StoreOptions } from './common.js';

interface InitOptions extends StoreOptions {
  backend: string;
  blockSize?: string;
  shareConvergenceWith?: string;
  shareSpace?: string;
  /** false with --no-packs. */
  packs?: boolean;
  /** K+M: the space keeps parity (src/parity). */
  parity?: string;
  parityStore?: string;
  /** false with --no-recovery-key. */
  recoveryKey?: boolean;
  kdfCost?: string;
  json?: boolean;
}

/** --kdf-cost: a whole number in the range a config may carry (passphrase-kdf.ts). */
function parseKdfCost(text: string): number {
  const n = /^\d{1,2}$/.test(text) ? Number(text) : NaN;
  if (!(n >= MIN_KDF_COST && n <= MAX_KDF_COST)) {
    throw new FragfsError('USAGE', `--kdf-cost takes a whole number from ${MIN_KDF_COST} to ${MAX_KDF_COST}, not ${JSON.stringify(text)}`);
  }
  return n;
}

export function registerInit(program: Command): void {
  addStoreOptions(
    program
      .command('init')
      .description('create a new store in an empty or new folder')
      .argument('<store>', 'folder for the store, or a URL: s3://BUCKET/PREFIX, sftp://USER@HOST/PATH, azure://ACCOUNT/CONTAINER/PREFIX, rclone:REMOTE:PATH')
      .option('--backend <name>', `where fragments live: ${LOCAL_BACKEND_NAMES.join(', ')} (for a URL: its service)`, 'lmdb')
      .option('--block-size <size>', 'block size, 64K to 4M (default 1M)')
      .option(
        '--share-convergence-with <store>',
        "dedup against another store: reuse its convergence secret (asks that store's passphrase via FRAGFS_SHARE_PASSPHRASE or the same passphrase)",
      )
      .option('--share-space <name>', 'the space of the store named by --share-convergence-with', 'default')
      .option('--no-packs', 'store every fragment as its own file or object (dir, split and remote stores gather small ones into packs)')
      .option('--parity <shape>', 'keep Reed-Solomon parity: stripes of up to K stored objects with M parity objects (e.g. 10+2)')
      .option('--parity-store <location>', 'with --parity: keep the parity objects in this folder or remote store URL instead of the store itself')
      .option('--no-recovery-key', 'make no recovery key (by default one is printed once: it opens the space like a passphrase)')
      .option(
        '--kdf-cost <n>',
        `scrypt cost of the passphrase, log2 of N, ${MIN_KDF_COST} to ${MAX_KDF_COST} (default ${DEFAULT_KDF_COST}): each step down halves the time to open the store and to guess its passphrase; for tests and throwaway stores`,
      )
      .option('--json', 'print the result as JSON'),
  ).action(
    action(async (store: string, opts: InitOptions) => {
      if (!LOCAL_BACKEND_NAMES.includes(opts.backend as BackendName)) {
        throw new FragfsError('USAGE', `unknown backend ${JSON.stringify(opts.backend)}: use lmdb, dir or split`);
      }
      if (opts.identity !== undefined) {
        throw new FragfsError('USAGE', 'init sets a passphrase; give identities access afterwards with fragfs key add --recipient');
      }
      const kdfCost = opts.kdfCost === undefined ? undefined : parseKdfCost(opts.kdfCost);
      const blockSize = opts.blockSize === undefined ? undefined : parseByteSize(opts.blockSize, '--block-size');
      if (blockSize !== undefined) checkBlockSize(blockSize);
      if (opts.parityStore !== undefined && opts.parity === undefined) throw new FragfsError('USAGE', '--parity-store goes with --parity K+M');
      const shape = opts.parity === undefined ? undefined : parseParityShape(opts.parity, '--parity');
      const parity = shape && opts.parityStore !== undefined ? { ...shape, store: parityStoreLocation(opts.parityStore, store) } : shape;
      // A store already there, or a folder that is not empty, is said before the passphrase is asked twice.
      await Repo.checkInitTarget({ storePath: store, backend: opts.backend as BackendName, ...(opts.space === undefined ? {} : { space: opts.space }) });
      const passphrase = await readPassphrase(opts, { confirm: true });
      const share = opts.shareConvergenceWith
        ? {
            storePath: opts.shareConvergenceWith,
            space: opts.shareSpace ?? 'default',
            passphrase: process.env['FRAGFS_SHARE_PASSPHRASE'] || passphrase,
          }
        : undefined;
      const recoveryKey = opts.recoveryKey === false ? undefined : newRecoveryKey();
      const repo = await Repo.init({
        storePath: store,
        backend: opts.backend as BackendName,
        passphrase,
        ...(opts.space === undefined ? {} : { space: opts.space }),
        ...(blockSize === undefined ? {} : { blockSize }),
        ...(share ? { shareConvergenceWith: share } : {}),
        ...(opts.packs === false ? { packs: false } : {}),
        ...(parity ? { parity } : {}),
        ...(recoveryKey === undefined ? {} : { recoveryKey }),
        ...(kdfCost === undefined ? {} : { kdfCost }),
      });
      const info = {
        store: repo.storePath,
        space: repo.space,
        backend: repo.store.backend,
        blockSize: repo.blockSize,
        convergenceId: repo.convergenceId,
      };
      await repo.close();
      if (recoveryKey !== undefined) {
        process.stderr.write(
          'fragfs: keep the recovery key below safe and offline: it opens the space wherever a passphrase is asked, and it is not shown again\n',
        );
      }
      if (opts.json) printJson({ ...info, ...(recoveryKey === undefined ? {} : { recoveryKey }) });
      else {
        process.stdout.write(
          `created fragfs store ${info.store} (space ${info.space}, backend ${info.backend}, blocks of ${formatBytes(info.blockSize)})\n`,
        );
        if (recoveryKey !== undefined) process.stdout.write(`recovery key: ${recoveryKey}\n`);
      }
    }),
  );
}
