// `fragfs put STORE PATH...`: stores files and trees without a mount; the meta key is the last line,
// also when files changed or vanished while they were read (then with warnings and exit INCOMPLETE).

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { putPaths } from '../src/repo/put.js';
import { argBytes } from './argv-bytes.js';
import { checkNameFree, moveName } from '../src/repo/snapshot-claim.js';
import { checkSnapshotName, tagList } from '../src/repo/snapshot-name.js';
import { action, addStoreOptions, bytesProgress, collect, printJson, withRepo, type StoreOptions } from './common.js';

interface PutCliOptions extends StoreOptions {
  name?: string;
  tag?: string[];
  replace?: boolean;
  parent?: string;
  full?: boolean;
  json?: boolean;
  progress?: boolean;
}

export function registerPut(program: Command): void {
  addStoreOptions(
    program
      .command('put')
      .description(
        'store files and folders; prints the meta key of what was stored as the last line (exit 11 when files changed, vanished or could not be read while they were stored: each is named)',
      )
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('<paths...>', 'files or folders to store (several become one folder)')
      .option('--name <name>', 'name the snapshot, for `snapshots`, `get NAME` and `mount --snapshot NAME` (refused when another snapshot has it)')
      .option('--replace', 'with --name: move the name from the snapshot that has it to this one')
      .option('--tag <tag>', 'tag the snapshot (repeatable, or tags separated by commas): `snapshots --tag` lists by it', collect, [])
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
      const tags = tagList(opts.tag);
      await withRepo(store, opts, async (repo) => {
        repo.purpose = 'put';
        if (opts.name !== undefined) await checkNameFree(repo, opts.name, opts.replace === true);
        const progress = bytesProgress('put', opts.progress !== false && process.stderr.isTTY === true);
        const started = Date.now();
        let result;
        try {
          result = await putPaths(repo, paths.map(argBytes), {
            ...(opts.name === undefined ? {} : { name: opts.name }),
            ...(tags.length === 0 ? {} : { tags }),
            ...(opts.full ? { parent: false as const } : opts.parent === undefined ? {} : { parent: opts.parent }),
            onTotal: (n) => progress.setTotal(n),
            onBytes: (n) => progress.increment(n),
          });
        } finally {
          progress.stop();
        }
        const seconds = (Date.now() - started) / 1000;
        if (opts.name !== undefined && opts.replace) {
          for (const old of await moveName(repo, opts.name, result.key)) {
            process.stderr.write(`fragfs: snapshot ${old.slice(0, 12)} is no longer named ${JSON.stringify(opts.name)}\n`);
          }
        }
        // After the progress bar, so the lines stay whole on a terminal.
        for (const w of result.warnings) process.stderr.write(`fragfs: warning: ${w}\n`);
        const incomplete = (): void => {
          if (result.warnings.length === 0) return;
          throw new FragfsError(
            'INCOMPLETE',
            `put completed with ${result.warnings.length} warning${result.warnings.length === 1 ? '' : 's'}: snapshot ${result.key.slice(0, 12)} holds the files named above as they were read, or leaves them out`,
          );
        };
        if (opts.json) {
          printJson({ ...result, seconds });
          incomplete();
          return;
        }
        process.stderr.write(
          `stored ${result.files} files, ${result.dirs} folders, ${result.symlinks} symlinks, ${result.logicalBytes} bytes in ${seconds.toFixed(2)} s\n`,
        );
        if (result.parent !== undefined) {
          process.stderr.write(
            `${result.unchangedFiles} files unchanged since snapshot ${result.parent.slice(0, 12)} (not read), ${result.unchangedDirs} folders taken whole\n`,
          );
        }
        if (result.rereadFiles > 0) process.stderr.write(`${result.rereadFiles} files changed while they were read and were read again\n`);
        process.stdout.write(`${result.key}\n`);
        incomplete();
      });
    }),
  );
}
