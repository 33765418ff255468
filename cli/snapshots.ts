// `fragfs snapshots STORE`: the snapshots a store space names (its refs), oldest first: time, name,
// meta key and logical size.

import type { Command } from 'commander';
import { action, addStoreOptions, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';

interface SnapshotsOptions extends StoreOptions {
  json?: boolean;
}

export function registerSnapshots(program: Command): void {
  addStoreOptions(
    program
      .command('snapshots')
      .description('list the snapshots of a store: time, name, meta key, logical size')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .option('--json', 'print the list as JSON'),
  ).action(
    action(async (store: string, opts: SnapshotsOptions) => {
      await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        const refs = await repo.listRefs();
        if (opts.json) {
          printJson(
            refs.map((r) => ({
              key: r.snapshot,
              name: r.name ?? null,
              time: new Date(r.createdMs).toISOString(),
              logicalBytes: r.logicalBytes,
            })),
          );
          return;
        }
        if (refs.length === 0) {
          process.stderr.write('fragfs: no snapshots yet\n');
          return;
        }
        const nameWidth = Math.max(4, ...refs.map((r) => (r.name ?? '-').length));
        process.stdout.write(`${'TIME'.padEnd(19)}  ${'NAME'.padEnd(nameWidth)}  ${'SIZE'.padStart(10)}  KEY\n`);
        for (const r of refs) {
          const when = new Date(r.createdMs).toISOString().replace('T', ' ').slice(0, 19);
          process.stdout.write(
            `${when}  ${(r.name ?? '-').padEnd(nameWidth)}  ${formatBytes(r.logicalBytes).padStart(10)}  ${r.snapshot}\n`,
          );
        }
      });
    }),
  );
}
