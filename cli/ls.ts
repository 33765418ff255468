// `fragfs ls STORE KEY[/path]`: lists a folder of a snapshot (or shows one entry), like `ls -l`.

import type { Command } from 'commander';
import { jsonName, showName } from '../src/fragment/names.js';
import type { Entry } from '../src/fragment/tree-format.js';
import { readDirEntries, resolveEntry, showTreePath } from '../src/repo/tree-reader.js';
import { action, addStoreOptions, printJson, type StoreOptions } from './common.js';
import { withTree } from './share-open.js';

interface LsOptions extends StoreOptions {
  json?: boolean;
}

const TYPE_CHAR: Record<Entry['type'], string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  fifo: 'p',
  chardev: 'c',
  blockdev: 'b',
  socket: 's',
};

export function modeString(e: Entry): string {
  const rwx = (bits: number) => `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`;
  return `${TYPE_CHAR[e.type]}${rwx(e.mode >> 6)}${rwx(e.mode >> 3)}${rwx(e.mode)}`;
}

export function registerLs(program: Command): void {
  addStoreOptions(
    program
      .command('ls')
      .description('list a folder of a snapshot')
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:); or a share link LINK[/path], then KEY is left out')
      .argument('[key]', 'meta key or snapshot name, optionally followed by /path inside the tree')
      .option('--json', 'print entries as JSON'),
  ).action(
    action(async (store: string, keySpec: string | undefined, opts: LsOptions) => {
      await withTree(store, keySpec, opts, async (repo, _key, snapshot, path) => {
        const entry = await resolveEntry(repo, snapshot.root, path);
        const entries = entry.type === 'dir' ? await readDirEntries(repo, entry, showTreePath(path)) : [entry];
        if (opts.json) {
          printJson(
            // Names that are not UTF-8 also come as base64 (nameBase64, targetBase64): nothing is lost.
            entries.map((e) => ({
              ...jsonName('name', e.name),
              type: e.type,
              mode: e.mode,
              uid: e.uid,
              gid: e.gid,
              size: e.size,
              mtime: new Date(Number(e.mtimeNs / 1_000_000n)).toISOString(),
              ...(e.target === undefined ? {} : jsonName('target', e.target)),
            })),
          );
          return;
        }
        const width = Math.max(1, ...entries.map((e) => String(e.size).length));
        for (const e of entries) {
          const when = new Date(Number(e.mtimeNs / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19);
          // As `ls -b`: bytes that are not printable UTF-8 are shown as \ooo.
          const name = e.type === 'symlink' ? `${showName(e.name)} -> ${showName(e.target ?? Buffer.alloc(0))}` : showName(e.name);
          process.stdout.write(`${modeString(e)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${String(e.size).padStart(width)} ${when} ${name}\n`);
        }
      });
    }),
  );
}
