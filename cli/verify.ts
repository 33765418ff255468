// `fragfs verify STORE [KEY]`: checks every fragment; names each bad one and the files that need it.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { verifyStore } from '../src/repo/verify.js';
import { action, addStoreOptions, bytesProgress, printJson, withRepo, type StoreOptions } from './common.js';

interface VerifyCliOptions extends StoreOptions {
  json?: boolean;
  progress?: boolean;
}

export function registerVerify(program: Command): void {
  addStoreOptions(
    program
      .command('verify')
      .description('read back and check every fragment of one snapshot, or of the whole store; exit 6 if any is bad')
      .argument('<store>', 'the store folder')
      .argument('[key]', 'meta key or snapshot name (default: every snapshot, and every other fragment)')
      .option('--no-progress', 'no progress bar, even on a terminal')
      .option('--json', 'print the report as JSON'),
  ).action(
    action(async (store: string, key: string | undefined, opts: VerifyCliOptions) => {
      const report = await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        const progress = bytesProgress('verify', opts.progress !== false && process.stderr.isTTY === true);
        try {
          return await verifyStore(repo, key, { onTotal: (n) => progress.setTotal(n), onBytes: (n) => progress.increment(n) });
        } finally {
          progress.stop();
        }
      });
      if (opts.json) printJson(report);
      else {
        for (const p of report.problems) {
          const users = p.usedBy.length > 0 ? ` — needed by ${p.usedBy.join(', ')}` : '';
          process.stdout.write(`${p.problem} ${p.kind} fragment ${p.fragmentId}: ${p.message.replace(`fragment ${p.fragmentId}: `, '')}${users}\n`);
        }
        process.stdout.write(
          `checked ${report.snapshots} snapshots (the totals of ${report.treesChecked} trees), ${report.metaChecked} metadata and ${report.dataChecked} data fragments` +
            `${report.unreferencedChecked ? `, ${report.unreferencedChecked} unreferenced` : ''}: ` +
            `${report.problems.length === 0 ? 'no problems' : `${report.problems.length} problems`}\n`,
        );
      }
      if (report.problems.length > 0) {
        throw new FragfsError('CORRUPT', `${report.problems.length} problems: corrupt or missing fragments, or trees that do not hold what their snapshots declare (listed above)`);
      }
    }),
  );
}
