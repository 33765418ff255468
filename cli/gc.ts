// `fragfs gc STORE [--dry-run]`: deletes the fragments no snapshot and no live file needs, beside
// whatever else runs on the store (docs/DESIGN.md, "Garbage collection").

import type { Command } from 'commander';
import { checkWaitMs, DEFAULT_WAIT_MS, runGc, type GcReport } from '../src/gc/gc.js';
import type { Repo } from '../src/repo/repo.js';
import { action, addStoreOptions, formatBytes, printJson, withRepo, type StoreOptions } from './common.js';
import { statusProgress } from './progress.js';

interface GcCliOptions extends StoreOptions {
  dryRun?: boolean;
  json?: boolean;
  wait?: string;
  verbose?: boolean;
  progress?: boolean;
}

export function registerGc(program: Command): void {
  addStoreOptions(
    program
      .command('gc')
      .description('delete the fragments no snapshot and no live file needs (safe while a mount, put or sync runs)')
      .argument('<store>', 'the store folder or URL')
      .option('--dry-run', 'only count what would be freed')
      .option('--wait <seconds>', `how long to wait for running writers to see what gc condemns (default ${DEFAULT_WAIT_MS / 1000})`)
      .option('--json', 'print the report as JSON')
      .option('-v, --verbose', 'print each step')
      .option('--no-progress', 'no status line, even on a terminal'),
  ).action(
    action(async (store: string, opts: GcCliOptions) => {
      const waitMs = checkWaitMs(opts.wait === undefined ? DEFAULT_WAIT_MS : Number(opts.wait) * 1000);
      const report = await withRepo(store, { ...opts, readOnly: opts.dryRun === true }, (repo) =>
        gcWithStatus(repo, { dryRun: opts.dryRun === true, waitMs, verbose: opts.verbose === true, progress: opts.progress !== false }),
      );
      if (opts.json) {
        printJson(report);
        return;
      }
      process.stdout.write(gcSummary(report));
    }),
  );
}

/** gc of an open repo, its steps on one status line on a terminal (-v: every step on its own line). */
export async function gcWithStatus(repo: Repo, o: { dryRun: boolean; waitMs: number; verbose: boolean; progress: boolean }): Promise<GcReport> {
  // gc has no measure of how far it is: the status line names the step.
  const status = statusProgress('gc', o.progress && !o.verbose && process.stderr.isTTY === true);
  try {
    return await runGc(repo, {
      dryRun: o.dryRun,
      waitMs: o.waitMs,
      log: o.verbose ? (l: string) => process.stderr.write(`fragfs: ${l}\n`) : (l: string) => status.step(l.replace(/^gc: /, '')),
    });
  } finally {
    status.stop();
  }
}

/** The lines `fragfs gc` prints for its report. */
export function gcSummary(r: GcReport): string {
  const secs = (r.ms / 1000).toFixed(2);
  const head = `${count(r.fragments, 'fragment')}; ${count(r.snapshots, 'snapshot')} and ${count(r.liveFiles, 'live file')} need ${r.fragments - r.unreferenced}\n`;
  if (r.dryRun) {
    return `${head}would free ${count(r.unreferenced, 'fragment')}, ${formatBytes(r.unreferencedBytes)} (${r.unreferencedBytes} bytes), in ${secs} s (dry run: nothing deleted)\n`;
  }
  let out = `${head}freed ${count(r.freed, 'fragment')}, ${formatBytes(r.freedBytes)} (${r.freedBytes} bytes), in ${secs} s\n`;
  if (r.kept > 0) out += `kept ${r.kept} condemned fragments a writer started using meanwhile\n`;
  if (r.waitingFor.length > 0) {
    out += `deleted nothing condemned: ${r.waitingFor.length} writer(s) still running from before: ${r.waitingFor.join('; ')}; run gc again once they end\n`;
  }
  return out;
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}
