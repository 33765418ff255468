// `fragfs put STORE PATH...`: stores files and trees without a mount; the meta key is the last line,
// also when files changed or vanished while they were read (then with warnings and exit INCOMPLETE).

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { ExcludePatterns, readExcludeFile } from '../src/repo/exclude-patterns.js';
import { putPaths } from '../src/repo/put.js';
import { PutSurvey } from '../src/repo/put-survey.js';
import { argBytes } from './argv-bytes.js';
import { showName } from '../src/fragment/names.js';
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
  quiet?: boolean;
  verbose?: boolean;
  exclude: string[];
  excludeFile: string[];
  excludeCaches?: boolean;
  oneFileSystem?: boolean;
  stdinName?: string;
}


export function registerPut(program: Command): void {
  addStoreOptions(
    program
      .command('put')
      .description(
        'store files and folders; prints the meta key of what was stored as the last line (exit 11 when files changed, vanished or could not be read while they were stored: each is named)',
      )
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('<paths...>', 'files or folders to store (several become one folder); `-`: one file read from stdin')
      .option('--name <name>', 'name the snapshot, for `snapshots`, `get NAME` and `mount --snapshot NAME` (refused when another snapshot has it)')
      .option('--replace', 'with --name: move the name from the snapshot that has it to this one')
      .option('--tag <tag>', 'tag the snapshot (repeatable, or tags separated by commas): `snapshots --tag` lists by it', collect, [])
      .option(
        '--parent <key>',
        'take files whose size and mtime are unchanged from this snapshot without reading them (default: the latest snapshot of the same paths from this host)',
      )
      .option('--full', 'read every file, even one unchanged since the parent snapshot')
      .option('--exclude <pattern>', 'leave out paths matching this glob (`*.o`, `cache/tmp`, `/abs/path`, `**`); repeatable', collect, [])
      .option('--exclude-file <file>', 'leave out paths matching the patterns in FILE, one a line (# comments); repeatable', collect, [])
      .option('--exclude-caches', 'keep only the CACHEDIR.TAG of folders tagged as caches')
      .option('--one-file-system', 'do not enter folders on another file system (mount points, fragfs mounts among them)')
      .option('--stdin-name <name>', 'with `-`: the name of the file read from stdin', 'stdin')
      .option('-q, --quiet', 'print only the meta key (and warnings)')
      .option('-v, --verbose', 'name each path the exclude options leave out')
      .option('--no-progress', 'no progress bar, even on a terminal')
      .option('--json', 'print a JSON summary (the key is its "key" field)'),
  ).action(
    action(async (store: string, paths: string[], opts: PutCliOptions) => {
      // Before the passphrase and the KDF: a name that would be refused costs the user nothing.
      if (opts.name !== undefined) checkSnapshotName(opts.name);
      const tags = tagList(opts.tag);
      const fromStdin = paths.length === 1 && paths[0] === '-';
      if (!fromStdin && paths.includes('-')) throw new FragfsError('USAGE', 'put -: stdin is one file on its own; give no other path');
      if (fromStdin && process.stdin.isTTY) throw new FragfsError('USAGE', 'put -: stdin is a terminal; pipe the file in (put STORE - < FILE)');
      const patterns = [...opts.exclude];
      for (const f of opts.excludeFile) patterns.push(...(await readExcludeFile(f)));
      const exclude = new ExcludePatterns(patterns);
      const rules = { exclude, ...(opts.excludeCaches ? { excludeCaches: true } : {}), ...(opts.oneFileSystem ? { oneFileSystem: true } : {}) };
      // The survey of the paths needs no store: it runs while the passphrase's KDF does.
      const survey = fromStdin ? undefined : new PutSurvey(paths.map(argBytes), rules);
      await withRepo(store, opts, async (repo) => {
        repo.purpose = 'put';
        if (opts.name !== undefined) await checkNameFree(repo, opts.name, opts.replace === true);
        const progress = bytesProgress('put', opts.progress !== false && !opts.quiet && !opts.verbose && process.stderr.isTTY === true);
        const started = Date.now();
        let result;
        try {
          result = await putPaths(repo, fromStdin ? [] : paths.map(argBytes), {
            ...(opts.name === undefined ? {} : { name: opts.name }),
            ...(tags.length === 0 ? {} : { tags }),
            ...(fromStdin ? { stdin: { stream: process.stdin, name: argBytes(opts.stdinName ?? 'stdin') } } : {}),
            ...rules,
            ...(survey === undefined ? {} : { survey }),
            ...(opts.verbose
              ? {
                  onLeftOut: (p: Buffer, why: string) =>
                    process.stderr.write(`fragfs: ${why === 'excluded' ? 'excluded' : why === 'cache' ? 'cache folder, only its CACHEDIR.TAG kept:' : 'on another file system, not entered:'} ${showName(p)}\n`),
                }
              : {}),
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
        if (!opts.quiet) for (const n of result.notices) process.stderr.write(`fragfs: note: ${n}\n`);
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
        if (opts.quiet) {
          process.stdout.write(`${result.key}\n`);
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
