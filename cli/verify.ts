// `fragfs verify STORE [KEY]`: checks every fragment; names each bad one and the files that need it.

import type { Command } from 'commander';
import { FragfsError } from '../src/errors.js';
import { liveDir } from '../src/repo/store-lock.js';
import { verifyStore } from '../src/repo/verify.js';
import { liveBlocks } from '../src/vfs/live-verify.js';
import { parityCoverage, type ParityCoverage } from '../src/parity/coverage.js';
import type { ParitySettings } from '../src/parity/parity-settings.js';
import { storedObjectsOf } from '../src/parity/protect.js';
import { withParityPlace } from '../src/parity/parity-store.js';
import { stripeCachePath } from '../src/parity/stripe-view.js';
import { coverageLine } from './parity.js';
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
      .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
      .argument('[key]', 'meta key or snapshot name (default: every snapshot, the live tree of the mount, and every other fragment)')
      .option('--no-progress', 'no progress bar, even on a terminal')
      .option('--json', 'print the report as JSON'),
  ).action(
    action(async (store: string, key: string | undefined, opts: VerifyCliOptions) => {
      let liveFiles: number | undefined;
      let parity: { shape: ParitySettings; coverage: ParityCoverage } | undefined;
      const report = await withRepo(store, { ...opts, readOnly: true }, async (repo) => {
        // Unprotected data is a line, not a problem: the next write or `fragfs parity --set` covers it.
        if (key === undefined && repo.parity) {
          const members = storedObjectsOf(repo.store);
          const coverage = await withParityPlace(repo.parity, members, { readOnly: true }, (parityStore) =>
            parityCoverage(members, repo.space, stripeCachePath(repo.storePath, repo.space), parityStore),
          );
          parity = { shape: repo.parity, coverage };
        }
        // The whole store includes the live tree a read-write mount keeps between snapshots.
        const live = key === undefined ? await liveBlocks(repo, liveDir(repo.storePath, repo.space)) : undefined;
        liveFiles = live?.files;
        const progress = bytesProgress('verify', opts.progress !== false && process.stderr.isTTY === true);
        try {
          const r = await verifyStore(repo, key, {
            onTotal: (n) => progress.setTotal(n),
            onBytes: (n) => progress.increment(n),
            ...(live ? { extraBlocks: live.blocks } : {}),
          });
          for (const p of live?.problems ?? []) {
            r.problems.push({ fragmentId: p.fragmentId ?? '-', kind: 'live', problem: 'corrupt', message: p.message, usedBy: [] });
          }
          return r;
        } finally {
          progress.stop();
        }
      });
      if (opts.json) printJson({ ...report, ...(liveFiles === undefined ? {} : { liveFiles }), ...(parity ? { parity: { ...parity.shape, ...parity.coverage } } : {}) });
      else {
        for (const p of report.problems) {
          const users = p.usedBy.length > 0 ? ` — needed by ${p.usedBy.join(', ')}` : '';
          process.stdout.write(`${p.problem} ${p.kind} fragment ${p.fragmentId}: ${p.message.replace(`fragment ${p.fragmentId}: `, '')}${users}\n`);
        }
        process.stdout.write(
          `checked ${report.snapshots} snapshots (the totals of ${report.treesChecked} trees)${liveFiles === undefined ? '' : `, the live tree (${liveFiles} files)`}, ${report.metaChecked} metadata and ${report.dataChecked} data fragments${report.packsChecked ? ` and ${report.packsChecked} packs` : ''}` +
            `: ${report.problems.length === 0 ? 'no problems' : `${report.problems.length} problems`}` +
            `${report.unreferencedChecked ? `; ${report.unreferencedChecked} more fragments no snapshot or live file needs are intact and reclaimable (fragfs gc frees them)` : ''}\n`,
        );
        if (parity) process.stdout.write(`${coverageLine(parity.shape, parity.coverage)}\n`);
      }
      if (report.problems.length > 0) {
        throw new FragfsError('CORRUPT', `${report.problems.length} problems: corrupt or missing fragments, or trees that do not hold what their snapshots declare (listed above)`);
      }
    }),
  );
}
