// `fragfs find STORE PATTERN`: the paths matching a glob in every snapshot (or those given by
// --snapshot or --tag), one a line with the snapshot they are in. Folders shared between snapshots
// are searched once.

import type { Command } from 'commander';
import { jsonName, showName } from '../src/fragment/names.js';
import type { RefObject } from '../src/fragment/tree-format.js';
import { tagList } from '../src/repo/snapshot-name.js';
import { TreeFinder } from '../src/repo/tree-find.js';
import { loadSnapshot } from '../src/repo/tree-reader.js';
import { action, addStoreOptions, collect, printJson, withRepo, type StoreOptions } from './common.js';

interface FindOptions extends StoreOptions {
  json?: boolean;
  ignoreCase?: boolean;
  snapshot?: string[];
  tag?: string[];
}

export function registerFind(program: Command): void {
  addStoreOptions(
    program
      .command('find')
      .description(
        "find paths across snapshots by a glob: without '/' it matches names (*.jpg), with '/' whole paths (/home/*/notes.txt from the top, src/**/*.ts below any folder); prints time, key, name and path",
      )
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('<pattern>', 'a glob: * and ? within a name, ** across folders, [a-z] classes')
      .option('-i, --ignore-case', 'match regardless of case')
      .option('--snapshot <key>', 'search only this snapshot (key, prefix or name; repeatable)', collect, [])
      .option('--tag <tag>', 'search only snapshots with this tag (repeatable: with all of them)', collect, [])
      .option('--json', 'print the matches as JSON'),
  ).action(
    action(async (store: string, pattern: string, opts: FindOptions) => {
      const wanted = tagList(opts.tag);
      await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        const finder = new TreeFinder(repo, pattern, { ignoreCase: opts.ignoreCase === true });
        let refs: RefObject[] = (await repo.listRefs()).filter((r) => wanted.every((t) => r.tags?.includes(t)));
        if (opts.snapshot !== undefined && opts.snapshot.length > 0) {
          const keys = new Set<string>();
          for (const spec of opts.snapshot) keys.add(await repo.resolveSnapshot(spec));
          refs = refs.filter((r) => keys.has(r.snapshot));
        }
        const json: unknown[] = [];
        let found = 0;
        for (const ref of refs) {
          const { snapshot } = await loadSnapshot(repo, ref.snapshot);
          const when = new Date(ref.createdMs).toISOString();
          for (const f of await finder.find(snapshot.root)) {
            found++;
            if (opts.json) {
              json.push({
                key: ref.snapshot,
                name: ref.name ?? null,
                time: when,
                ...jsonName('path', f.path),
                type: f.entry.type,
                size: f.entry.size,
                mtime: new Date(Number(f.entry.mtimeNs / 1_000_000n)).toISOString(),
              });
            } else {
              const shown = `${showName(f.path)}${f.entry.type === 'dir' && f.path.length > 1 ? '/' : ''}`;
              process.stdout.write(`${when.replace('T', ' ').slice(0, 19)}  ${ref.snapshot.slice(0, 12)}  ${ref.name ?? '-'}  ${shown}\n`);
            }
          }
        }
        if (opts.json) printJson(json);
        else process.stderr.write(`${found} match${found === 1 ? '' : 'es'} in ${refs.length} snapshot${refs.length === 1 ? '' : 's'} (${finder.dirsRead} folders read)\n`);
      });
    }),
  );
}
