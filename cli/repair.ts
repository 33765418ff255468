// `fragfs repair STORE [--dry-run]`: rebuilds missing and corrupt objects from their stripes,
// without the passphrase; with one (--passphrase-file or FRAGFS_PASSPHRASE) it also names the
// files and snapshots that need what could not be rebuilt. Exit 6 when something stays lost.

import type { Command } from 'commander';
import { openKeyless } from '../src/parity/parity-admin.js';
import { protectStore } from '../src/parity/protect.js';
import { lostError, repairStore, type RepairItem } from '../src/parity/repair.js';
import { DEFAULT_SPACE } from '../src/repo/repo.js';
import { verifyStore } from '../src/repo/verify.js';
import { action, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';

interface RepairCliOptions extends StoreOptions {
  dryRun?: boolean;
  json?: boolean;
}

function line(verb: string, it: RepairItem): string {
  return `${verb} ${it.kind} ${it.id} (${it.problem}${it.message && it.message !== 'missing from the store' ? `: ${it.message}` : ''})\n`;
}

export function registerRepair(program: Command): void {
  program
    .command('repair')
    .description('rebuild missing or corrupt fragments from parity, without the passphrase; exit 6 if some cannot be rebuilt')
    .argument('<store>', 'the store: a folder, or a URL (s3://, sftp://, azure://, rclone:)')
    .option('--space <name>', 'the space inside the store', DEFAULT_SPACE)
    .option('--dry-run', 'report what is damaged and what can be rebuilt; write nothing')
    .option('--passphrase-file <file>', 'optional: with the passphrase (or FRAGFS_PASSPHRASE), name the files that need what is lost')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (storePath: string, opts: RepairCliOptions) => {
        const space = opts.space ?? DEFAULT_SPACE;
        const dryRun = opts.dryRun === true;
        const k = await openKeyless(storePath, space, { readOnly: dryRun });
        let report;
        let covered;
        try {
          report = await repairStore(k.store, space, { dryRun, parityStore: k.parityStore, cachePath: k.cachePath });
          // Stripes that lost every parity object, and objects written since, get stripes again.
          if (!dryRun && k.settings) covered = await protectStore(k.store, space, k.settings, { parityStore: k.parityStore, cachePath: k.cachePath });
        } finally {
          await k.close();
        }
        let neededBy: { fragmentId: string; kind: string; usedBy: string[] }[] = [];
        const canName = opts.passphraseFile !== undefined || (process.env['FRAGFS_PASSPHRASE'] ?? '') !== '';
        if (report.lost.length > 0 && canName) {
          const v = await withRepo(storePath, { ...opts, readOnly: true }, (repo) => verifyStore(repo, undefined));
          neededBy = v.problems.filter((p) => p.usedBy.length > 0);
        }
        if (opts.json) printJson({ ...report, ...(covered ? { protected: covered } : {}), ...(canName ? { neededBy } : {}) });
        else {
          for (const it of report.rebuilt) process.stdout.write(line(dryRun ? 'can rebuild' : 'rebuilt', it));
          for (const it of report.lost) process.stdout.write(line('lost', it));
          for (const id of report.unreadableParity) process.stdout.write(`${dryRun ? 'would remove' : 'removed'} unreadable parity object ${id}\n`);
          for (const p of neededBy) process.stdout.write(`lost ${p.kind} fragment ${p.fragmentId} is needed by ${p.usedBy.join(', ')}\n`);
          process.stdout.write(
            `checked ${report.stripes} stripes (${report.membersChecked} objects, ${report.parityChecked} parity objects) and ${report.unprotectedChecked} objects in no stripe, ${formatBytes(report.bytesRead)} in ${(report.ms / 1000).toFixed(1)} s: ` +
              `${report.rebuilt.length} ${dryRun ? 'can be rebuilt' : 'rebuilt'}, ${report.lost.length} lost` +
              `${covered && covered.stripes > 0 ? `; ${covered.members} objects put into ${covered.stripes} new stripes` : ''}\n`,
          );
        }
        const lost = lostError(report);
        if (lost) throw lost;
      }),
    );
}
