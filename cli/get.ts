// `fragfs get STORE KEY[/path] DEST`: writes a snapshot (or a part of it) back to local disk.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { getSnapshotTree, getTree, type GetOptions, type GetResult } from '../src/repo/get.js';
import type { Repo } from '../src/repo/repo.js';
import { isShareLink, withShare } from './share-open.js';
import { showName } from '../src/fragment/names.js';
import { splitKeyPath } from '../src/repo/tree-reader.js';
import { argBytes } from './argv-bytes.js';
import { action, addStoreOptions, bytesProgress, printJson, withRepo, type StoreOptions } from './common.js';

interface GetCliOptions extends StoreOptions {
  identity?: string;
  json?: boolean;
  progress?: boolean;
}

export function registerGet(program: Command): void {
  addStoreOptions(
    program
      .command('get')
      .description('restore the tree a meta key (or snapshot name) names into DEST, byte for byte')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:); or a share link (fragfs:share:...[/path]), then KEY is left out')
      .argument('<key>', 'meta key or snapshot name, optionally followed by /path inside the tree')
      .argument('[dest]', 'where to write it: a new path (or an empty folder for a folder)')
      .option('--no-progress', 'no progress bar, even on a terminal')
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
      const run = async (repo: Repo, restore: (o: GetOptions) => Promise<GetResult>): Promise<void> => {
        const progress = bytesProgress('get', opts.progress !== false && process.stderr.isTTY === true);
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
        if (opts.json) printJson(result);
        else process.stderr.write(`restored ${result.files} files, ${result.dirs} folders, ${result.symlinks} symlinks into ${showName(destBytes)}\n`);
      };
      if (shared) {
        await withShare(key, opts, (s) => run(s.repo, (o) => getSnapshotTree(s.repo, s.label, s.snapshot, destBytes, o)));
      } else {
        await withRepo(storeArg, { ...opts, readOnly: true }, (repo) => run(repo, (o) => getTree(repo, key, destBytes, o)));
      }
    }),
  );
}
