// `fragfs snapshots STORE`: the snapshots a store space names (its refs), oldest first: time, name,
// size, key, host, tags and the source paths (or mount) each was taken of.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { showName } from '../src/fragment/names.js';
import type { RefObject, SnapshotObject } from '../src/fragment/tree-format.js';
import type { Repo } from '../src/repo/repo.js';
import { tagList } from '../src/repo/snapshot-name.js';
import { action, addStoreOptions, collect, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';

interface SnapshotsOptions extends StoreOptions {
  json?: boolean;
  tag?: string[];
}

/** Snapshot objects read at once: the list costs one round trip per few snapshots on a remote store. */
const READ_AHEAD = 8;

export function registerSnapshots(program: Command): void {
  addStoreOptions(
    program
      .command('snapshots')
      .description('list the snapshots of a store: time, name, size, key (its first 12 digits; --json: all), host, tags, source paths')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .option('--tag <tag>', 'only snapshots with this tag (repeatable, or separated by commas: snapshots with all of them)', collect, [])
      .option('--json', 'print the list as JSON'),
  ).action(
    action(async (store: string, opts: SnapshotsOptions) => {
      const wanted = tagList(opts.tag);
      await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        const refs = (await repo.listRefs()).filter((r) => wanted.every((t) => r.tags?.includes(t)));
        const snaps = await readSnapshots(repo, refs);
        if (opts.json) {
          printJson(
            refs.map((r, i) => ({
              key: r.snapshot,
              name: r.name ?? null,
              tags: r.tags ?? [],
              time: new Date(r.createdMs).toISOString(),
              logicalBytes: r.logicalBytes,
              host: snaps[i]?.hostname ?? null,
              // As `ls -b` shows names: a source path that is not UTF-8 stays readable and unambiguous.
              source: snaps[i]?.source.map((p) => showName(p)) ?? null,
            })),
          );
          return;
        }
        if (refs.length === 0) {
          process.stderr.write(wanted.length === 0 ? 'fragfs: no snapshots yet\n' : `fragfs: no snapshots tagged ${wanted.join(', ')}\n`);
          return;
        }
        const rows = refs.map((r, i) => [
          new Date(r.createdMs).toISOString().replace('T', ' ').slice(0, 19),
          r.name ?? '-',
          formatBytes(r.logicalBytes),
          r.snapshot.slice(0, 12),
          snaps[i]?.hostname || '?',
          r.tags?.join(',') || '-',
          snaps[i] === undefined ? '?' : snaps[i]!.source.map((p) => showName(p)).join(' '),
        ]);
        const head = ['TIME', 'NAME', 'SIZE', 'KEY', 'HOST', 'TAGS', 'SOURCE'];
        const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
        const line = (row: string[]) =>
          `${row.map((cell, c) => (c === row.length - 1 ? cell : c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ')}\n`;
        process.stdout.write(line(head));
        for (const row of rows) process.stdout.write(line(row));
      });
    }),
  );
}

/** The snapshot object of each ref (undefined where it cannot be read: `verify` names why). */
async function readSnapshots(repo: Repo, refs: readonly RefObject[]): Promise<(SnapshotObject | undefined)[]> {
  const out: (SnapshotObject | undefined)[] = new Array(refs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < refs.length) {
      const i = next++;
      out[i] = await repo.getMeta(refs[i]!.snapshot, 'snapshot').catch((e: unknown) => {
        if (e instanceof FragfsError) return undefined;
        throw e;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_AHEAD, refs.length) }, worker));
  return out;
}
