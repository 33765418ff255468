// `fragfs put STORE PATH...`: stores files and trees without a mount; the meta key is the last line.

import type { Command } from 'commander';
import { putPaths } from '../src/repo/put.js';
import { checkSnapshotName } from '../src/repo/snapshot-name.js';
import { action, addStoreOptions, bytesProgress, printJson, withRepo, type StoreOptions } from './common.js';

interface PutCliOptions extends StoreOptions {
  name?: string;
  parent?: string;
  full?: boolean;
  json?: boolean;
  progress?: boolean;
}

export function registerPut(program: Command): void {
  addStoreOptions(
    program
      .command('put')
      .description('store files and folders; prints the meta key of what was stored as the last line')
      .argument('<store>', 'the store folder')
      .argument('<paths...>', 'files or folders to store (several become one folder)')
      .option('--name <name>', 'name the snapshot, for `snapshots`, `get NAME` and `mount --snapshot NAME`')
      .option(
        '--parent <key>',
        'take files whose size and mtime are unchanged from this snapshot without reading them (default: the latest snapshot of the same paths from this host)',
      )
      .option('--full', 'read every file, even one unchanged since the parent snapshot')
      .option('--no-progress', 'no progress bar, even on a terminal')
      .option('--json', 'print a JSON summary (the key is its "key" field)'),
  ).action(
    action(async (store: string, paths: string[], opts: PutCliOptions) => {
      // Before the passphrase and the KDF: a name that would be refused costs the user nothing.
      if (opts.name !== undefined) checkSnapshotName(opts.name);
      await withRepo(store, opts, async (repo) => {
        const progress = bytesProgress('put', opts.progress !== false && process.stderr.isTTY === true);
        const started = Date.now();
        let result;
        try {
          result = await putPaths(repo, paths, {
            ...(opts.name === undefined ? {} : { name: opts.name }),
            ...(opts.full ? { parent: false as const } : opts.parent === undefined ? {} : { parent: opts.parent }),
            onTotal: (n) => progress.setTotal(n),
            onBytes: (n) => progress.increment(n),
          });
        } finally {
          progress.stop();
        }
        const seconds = (Date.now() - started) / 1000;
        if (opts.json) {
          printJson({ ...result, seconds });
          return;
        }
        process.stderr.write(
          `stored ${result.files} files, ${result.dirs} folders, ${result.symlinks} symlinks, ${result.logicalBytes} bytes in ${seconds.toFixed(2)} s\n`,
        );
        if (result.parent !== undefined) {
          process.stderr.write(`${result.unchangedFiles} files unchanged since snapshot ${result.parent.slice(0, 12)} (not read)\n`);
        }
        process.stdout.write(`${result.key}\n`);
      });
    }),
  );
}
