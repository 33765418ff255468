// `fragfs stats STORE`: sizes, counts and savings of a store.

import type { Command } from 'commander';
import { storeStats } from '../src/repo/stats.js';
import { action, addStoreOptions, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';

export function registerStats(program: Command): void {
  addStoreOptions(
    program
      .command('stats')
      .description('show logical and stored bytes, dedup and compression ratios, fragment counts')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .option('--json', 'print the figures as JSON'),
  ).action(
    action(async (store: string, opts: StoreOptions & { json?: boolean }) => {
      await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        const s = await storeStats(repo);
        if (opts.json) {
          printJson({ store: repo.storePath, space: repo.space, backend: repo.store.backend, blockSize: repo.blockSize, ...s });
          return;
        }
        const rows: [string, string][] = [
          ['store', `${repo.storePath} (space ${repo.space}, ${repo.store.backend}, blocks of ${formatBytes(repo.blockSize)})`],
          ['snapshots', String(s.snapshots)],
          ['logical bytes', `${formatBytes(s.logicalBytes)} (${s.logicalBytes})`],
          ['unique plaintext', `${formatBytes(s.uniquePlainBytes)} (${s.uniquePlainBytes})`],
          ['stored data', `${formatBytes(s.dataStoredBytes)} in ${s.dataFragments} fragments`],
          ['stored metadata', `${formatBytes(s.metaStoredBytes)} in ${s.metaFragments} fragments, ${s.refs} refs`],
          ['reclaimable', `${formatBytes(s.reclaimableBytes)} in ${s.reclaimableFragments} fragments no snapshot or live file needs (fragfs gc frees them)`],
          ['dedup ratio', times(s.dedupRatio)],
          ['compression ratio', times(s.compressionRatio)],
          ['overall', times(s.overallRatio)],
        ];
        const w = Math.max(...rows.map((r) => r[0].length));
        for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
      });
    }),
  );
}

/** A ratio as "1.85x"; "-" when there is nothing to compare (no snapshot data yet). */
function times(r: number | null): string {
  return r === null ? '-' : `${r.toFixed(2)}x`;
}
