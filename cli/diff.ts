// `fragfs diff STORE A B`: what changed from snapshot A to snapshot B, one path a line with a sign
// (+ added, - removed, M content changed, U metadata only), or as JSON. Costs the folders that changed.

import type { Command } from 'commander';
import { jsonName, showName } from '../src/fragment/names.js';
import { diffTrees, type ChangeKind, type TreeChange } from '../src/repo/tree-diff.js';
import { loadSnapshot } from '../src/repo/tree-reader.js';
import { action, addStoreOptions, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';

interface DiffOptions extends StoreOptions {
  json?: boolean;
}

const SIGN: Record<ChangeKind, string> = { added: '+', removed: '-', changed: 'M', metadata: 'U' };

export function registerDiff(program: Command): void {
  addStoreOptions(
    program
      .command('diff')
      .description('what changed between two snapshots: + added, - removed, M content changed, U metadata only (mode, owner, mtime, xattrs)')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('<a>', 'the snapshot before: meta key, unique prefix of 8+ hex digits, or name')
      .argument('<b>', 'the snapshot after')
      .option('--json', 'print {a, b, changes: [{change, path, type, ...}], summary} as JSON'),
  ).action(
    action(async (store: string, aSpec: string, bSpec: string, opts: DiffOptions) => {
      await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        const a = await loadSnapshot(repo, aSpec);
        const b = await loadSnapshot(repo, bSpec);
        const changes: TreeChange[] = [];
        const stats = await diffTrees(
          repo,
          a.snapshot.root,
          b.snapshot.root,
          (c) => {
            if (opts.json) changes.push(c);
            else process.stdout.write(`${SIGN[c.kind]}  ${showName(c.path)}${c.type === 'dir' && c.path.length > 1 ? '/' : ''}\n`);
          },
          { a: a.snapshot, b: b.snapshot },
        );
        if (opts.json) {
          printJson({
            a: a.key,
            b: b.key,
            changes: changes.map((c) => ({
              change: c.kind,
              ...jsonName('path', c.path),
              type: c.type,
              ...(c.typeBefore === undefined ? {} : { typeBefore: c.typeBefore }),
              ...(c.sizeBefore === undefined ? {} : { sizeBefore: c.sizeBefore }),
              ...(c.size === undefined ? {} : { size: c.size }),
            })),
            summary: stats,
          });
          return;
        }
        process.stderr.write(
          `${stats.added} added, ${stats.removed} removed, ${stats.changed} changed, ${stats.metadata} metadata only` +
            ` (+${formatBytes(stats.addedBytes)}, -${formatBytes(stats.removedBytes)}); ${stats.dirsRead} folders read, ${stats.dirsSkipped} skipped as unchanged\n`,
        );
      });
    }),
  );
}
