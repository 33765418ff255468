// `fragfs share STORE KEY[/path]|./folder [--to RECIPIENT|@GROUP ...]`, `fragfs shares STORE` and
// `fragfs unshare STORE ID`: hand one folder of the store to a link or to people, list, take back.

import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { createShare, listShares, removeShare } from '../src/people/shares.js';
import { putPaths } from '../src/repo/put.js';
import { splitKeyPath } from '../src/repo/tree-reader.js';
import { argBytes } from './argv-bytes.js';
import { action, addStoreOptions, printJson, withRepo, type StoreOptions } from './common.js';

interface ShareCliOptions extends StoreOptions {
  to?: string[];
  json?: boolean;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** `./x`, `../x` or `/x` that is a local folder or file: put it first. */
async function isLocalPath(arg: string): Promise<boolean> {
  if (!/^(\.{1,2}\/|\/)/.test(arg)) return false;
  try {
    await stat(arg);
    return true;
  } catch {
    return false;
  }
}

export function registerShare(program: Command): void {
  addStoreOptions(
    program
      .command('share')
      .description('share one folder (or file) of a snapshot: prints a link that opens it and nothing else; a local ./path is put first')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('<what>', 'meta key or snapshot name, optionally /path inside it; or a local ./folder to put and share')
      .option('--to <recipient>', 'an age recipient (age1...) or @group that may open it (repeatable); none: whoever holds the link', collect)
      .option('--json', 'print the share as JSON'),
  ).action(
    action(async (store: string, what: string, opts: ShareCliOptions) => {
      const to = opts.to ?? [];
      await withRepo(store, opts, async (repo) => {
        let snapshot: string;
        let path: Buffer[] = [];
        if (await isLocalPath(what)) {
          repo.purpose = 'put';
          snapshot = (await putPaths(repo, [argBytes(what)])).key;
        } else {
          const spec = splitKeyPath(argBytes(what));
          snapshot = spec.key;
          path = spec.path;
        }
        const started = process.hrtime.bigint();
        const s = await createShare(repo, { snapshot, path, to });
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (opts.json) printJson({ ...s, ms });
        else {
          process.stderr.write(
            `shared ${s.path} of ${s.snapshot.slice(0, 12)} (${s.files} files, ${s.dirs} folders) ${to.length > 0 ? `to ${to.join(', ')}` : 'to whoever holds this link'} in ${ms.toFixed(0)} ms\n`,
          );
          process.stdout.write(`${s.link}\n`);
        }
      });
    }),
  );

  addStoreOptions(
    program
      .command('shares')
      .description('list what was shared from this space, to whom')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .option('--json', 'print the shares as JSON'),
  ).action(
    action(async (store: string, opts: ShareCliOptions) => {
      await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        const shares = await listShares(repo);
        if (opts.json) {
          printJson(shares);
          return;
        }
        for (const s of shares) {
          const when = new Date(s.createdMs).toISOString().replace('T', ' ').slice(0, 19);
          process.stdout.write(`${s.id}  ${when}  ${s.snapshot.slice(0, 12)}${s.path === '/' ? '' : s.path}  ${s.to.length > 0 ? s.to.join(',') : '(link)'}\n`);
        }
      });
    }),
  );

  addStoreOptions(
    program
      .command('unshare')
      .description('remove a share from the store: its link stops opening')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('<id>', 'the share id (`fragfs shares`)'),
  ).action(
    action(async (store: string, id: string, opts: ShareCliOptions) => {
      if (!/^[0-9a-f]{32}$/.test(id)) throw new FragfsError('USAGE', `not a share id: ${JSON.stringify(id)} (32 hex digits, from fragfs shares)`);
      await withRepo(store, opts, (repo) => removeShare(repo, id));
      process.stderr.write(`removed share ${id}\n`);
    }),
  );
}
