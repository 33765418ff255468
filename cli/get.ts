// `fragfs get STORE KEY[/path] DEST`: writes a snapshot (or a part of it) back to local disk, or one
// file of it to stdout when DEST is `-`.

import type { Command } from 'commander';
import { getSnapshotToStream, getSnapshotTree, getToStream, getTree, type GetOptions, type GetResult } from '../src/repo/get.js';
import { FragfsError } from '../src/errors.js';
import type { Repo } from '../src/repo/repo.js';
import { isShareLink, withShare } from './share-open.js';
import { showName } from '../src/fragment/names.js';
import { splitKeyPath } from '../src/repo/tree-reader.js';
import { argBytes } from './argv-bytes.js';
import { action, addStoreOptions, bytesProgress, printJson, withRepo, type StoreOptions } from './common.js';

interface GetCliOptions extends StoreOptions {
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

/** Writes to stdout, waiting when the pipe is full (a pipe reader that quit ends the process: see main.ts). */
function writeStdout(chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (e) => (e ? reject(e) : resolve()));
  });
}

export function registerGet(program: Command): void {
  addStoreOptions(
    program
      .command('get')
      .description('restore the tree a meta key (or snapshot name) names into DEST, byte for byte')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:); or a share link (fragfs:share:...[/path]), then KEY is left out')
      .argument('<key>', 'meta key or snapshot name, optionally followed by /path inside the tree')
      .argument('[dest]', 'where to write it: a new path (or an empty folder for a folder); `-`: the file to stdout')
      .option('--no-progress', 'no progress bar, even on a terminal')
      .option('-q, --quiet', 'no summary and no progress bar')
      .option('--json', 'print a JSON summary'),
  ).action(
    action(async (storeArg: string, keyArg: string, destArg: string | undefined, opts: GetCliOptions) => {
      // `get LINK[/path] DEST`: the link stands for STORE and KEY.
      const shared = isShareLink(storeArg);
      const [keySpec, dest] = shared ? [storeArg, keyArg] : [keyArg, destArg];
      if (dest === undefined || (shared && destArg !== undefined)) {
        throw new FragfsError('USAGE', shared ? 'get LINK[/path] DEST takes two arguments' : 'get needs STORE KEY[/path] DEST');
      }
      const { key, path } = splitKeyPath(argBytes(keySpec));
      const destBytes = argBytes(dest);
      if (dest === '-') {
        const toStdout = async (stream: (o: Pick<GetOptions, 'onTotal' | 'onBytes'>) => Promise<unknown>): Promise<void> => {
          const progress = bytesProgress('get', opts.progress !== false && !opts.quiet && process.stderr.isTTY === true);
          try {
            await stream({ onTotal: (n) => progress.setTotal(n), onBytes: (n) => progress.increment(n) });
          } finally {
            progress.stop();
          }
        };
        if (shared) await withShare(key, opts, (s) => toStdout((o) => getSnapshotToStream(s.repo, s.snapshot, path, writeStdout, o)));
        else await withRepo(storeArg, { ...opts, readOnly: true }, (repo) => toStdout((o) => getToStream(repo, key, path, writeStdout, o)));
        return;
      }
      const run = async (repo: Repo, restore: (o: GetOptions) => Promise<GetResult>): Promise<void> => {
        const progress = bytesProgress('get', opts.progress !== false && !opts.quiet && process.stderr.isTTY === true);
        let result;
        try {
          result = await restore({
            path,
            onTotal: (n) => progress.setTotal(n),
            onBytes: (n) => progress.increment(n),
          });
        } finally {
          progress.stop();
        }
        for (const s of result.skipped) process.stderr.write(`fragfs: skipped ${s}: cannot be recreated here\n`);
        for (const w of result.warnings) process.stderr.write(`fragfs: warning: ${w}\n`);
        if (opts.json) printJson(result);
        else if (!opts.quiet) process.stderr.write(`restored ${result.files} files, ${result.dirs} folders, ${result.symlinks} symlinks into ${showName(destBytes)}\n`);
      };
      if (shared) {
        await withShare(key, opts, (s) => run(s.repo, (o) => getSnapshotTree(s.repo, s.label, s.snapshot, destBytes, o)));
      } else {
        await withRepo(storeArg, { ...opts, readOnly: true }, (repo) => run(repo, (o) => getTree(repo, key, destBytes, o)));
      }
    }),
  );
}
