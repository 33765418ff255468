// `fragfs sync SRC DST [KEY]`: copies what one snapshot needs (or everything) into another store.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { existsSync } from 'node:fs';
import { HEAD_NAME, newestHead } from '../src/remote/remote-head.js';
import { isRemoteLocation, storeLocation } from '../src/remote/store-site.js';
import { DEFAULT_SPACE } from '../src/repo/repo.js';
import { liveDir } from '../src/repo/store-lock.js';
import { stateDirOf } from '../src/vfs/live-vfs.js';
import { takeSnapshot } from './snapshot.js';
import { syncStore } from '../src/repo/sync.js';
import { LOCAL_BACKEND_NAMES, type BackendName } from '../src/store/store.js';
import { action, addStoreOptions, countProgress, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';

interface SyncCliOptions extends StoreOptions {
  backend?: string;
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

export function registerSync(program: Command): void {
  addStoreOptions(
    program
      .command('sync')
      .description('copy the fragments one snapshot needs (or all, with a local store\'s live tree as its head snapshot) into another store, local or remote, which then opens with the same passphrase')
      .argument('<src>', 'the source store: a folder or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('<dst>', 'the destination store, a folder or a URL (created if missing)')
      .argument('[key]', 'meta key or snapshot name (default: every fragment)')
      .option('--backend <name>', 'backend for a new destination: lmdb, dir or split (default: the source\'s)')
      .option('--no-progress', 'no progress bar, even on a terminal')
      .option('-q, --quiet', 'no summary and no progress bar')
      .option('--json', 'print a JSON summary'),
  ).action(
    action(async (src: string, dst: string, key: string | undefined, opts: SyncCliOptions) => {
      // Both names are checked before either store is opened: a mistyped URL costs no passphrase.
      const srcLocation = storeLocation(src);
      storeLocation(dst);
      const space = opts.space ?? DEFAULT_SPACE;
      // A local store's live tree goes along as its head (when it changed since the last head), so
      // a machine that mounts the copy read-write starts from it.
      const carryHead = key === undefined && !isRemoteLocation(srcLocation) && existsSync(stateDirOf(liveDir(srcLocation, space)));
      if (opts.backend !== undefined && !LOCAL_BACKEND_NAMES.includes(opts.backend as BackendName)) {
        throw new FragfsError('USAGE', `unknown backend ${JSON.stringify(opts.backend)}: use lmdb, dir or split`);
      }
      // Made once the store is open: nothing drawn before a NO_STORE or a passphrase prompt.
      let progress = countProgress('sync', 'fragments', false);
      let result;
      try {
        result = await withRepo(src, { ...opts, readOnly: !carryHead }, async (repo) => {
          progress = countProgress('sync', 'fragments', opts.progress !== false && !opts.quiet && process.stderr.isTTY === true);
          if (carryHead) {
            const last = (await newestHead(repo))?.snapshot.root.dir;
            await takeSnapshot(srcLocation, space, HEAD_NAME, { opts, repo, ...(last === undefined ? {} : { unlessRoot: last }) });
          }
          return syncStore(repo, dst, key, {
            ...(opts.backend === undefined ? {} : { backend: opts.backend as BackendName }),
            onQueued: (n) => progress.setTotal(n),
            onFragment: (bytes) => {
              progress.addBytes(bytes);
              progress.increment(1);
            },
          });
        });
      } finally {
        progress.stop();
      }
      if (opts.json) printJson(result);
      else if (!opts.quiet) {
        process.stdout.write(
          `copied ${result.copiedFragments} fragments (${formatBytes(result.copiedBytes)}${result.copiedPacks > 0 ? `, ${result.copiedPacks} packs as they are` : ''}), ${result.presentFragments} already there, ${result.snapshots} snapshots, into ${result.dest}\n`,
        );
      }
    }),
  );
}
