// `npm run bench [-- --quick]`: the same workloads on fragfs and its peers (gocryptfs, rclone mount, a
// plain folder; restic and borg for the backup workloads), interleaved run by run, reported as medians,
// spreads and fragfs/peer ratios in bench-results/<timestamp>/ (results.md, results.json, chart.svg,
// index.html). Issue 4 names the workloads; scripts/bench/ holds one piece each.

import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cleanupNow, installCleanupHandlers } from './bench/cleanup.js';
import { fragfsSettings } from './bench/fragfs-cli.js';
import { canDropCaches, rmrf } from './bench/fs-util.js';
import { machineInfo } from './bench/machine.js';
import { parseOptions } from './bench/options.js';
import { checkPeers } from './bench/peers.js';
import { renderHtml } from './bench/report-html.js';
import { renderMarkdown } from './bench/report-markdown.js';
import { renderSvg } from './bench/report-svg.js';
import { markdownTable, tables } from './bench/report-table.js';
import { buildMetrics, type BenchResults, type StepRecord, type WorkloadInfo } from './bench/results.js';
import { runBackupWorkload, runMountWorkloads } from './bench/runner.js';
import { backupWorkload } from './bench/workload-backup.js';
import { fioWorkload } from './bench/workload-fio.js';
import { seqWorkload } from './bench/workload-seq.js';
import { treeWorkload } from './bench/workload-tree.js';
import type { BackupWorkload, MountWorkload, Workload } from './bench/workload.js';

const WORKLOADS: Workload[] = [seqWorkload, treeWorkload, fioWorkload, backupWorkload];

const log = (line: string): void => void process.stderr.write(line + '\n');

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  installCleanupHandlers();
  fragfsSettings.backend = opts.fragfsBackend;
  const t0 = Date.now();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const outDir = resolve(opts.outDir || join('bench-results', date.replace(/:/g, '-')));

  if (opts.installPeers) {
    log('installing peers (scripts/install-peers.sh)');
    const script = resolve(new URL('.', import.meta.url).pathname, '../../scripts/install-peers.sh');
    const r = spawnSync('bash', [script], { stdio: 'inherit' });
    if (r.status !== 0) log(`install-peers.sh exited ${r.status}; going on with what is installed`);
  }

  const tmp = await mkdtemp(join(opts.tmpDir, 'fragfs-bench-'));
  try {
    const drop = canDropCaches();
    log(`fragfs bench, ${opts.quick ? 'quick' : 'full'} mode, ${opts.runs} runs; scratch ${tmp}${drop ? '' : ' (not root: cold reads only remount, caches are not dropped)'}`);
    log('peers:');
    const peers = await checkPeers(opts.skip, log, opts.baseline || undefined);
    if (!peers.infos.some((p) => p.name === opts.subject && p.available))
      log(`NOTE: the subject ${opts.subject} cannot run here; peers are measured, ratios stay empty`);

    const infos: WorkloadInfo[] = [];
    const steps: StepRecord[] = [];
    const chosen = WORKLOADS.filter((w) => opts.only.length === 0 || opts.only.includes(w.id));
    const plan = { runs: opts.runs, stepTimeoutMs: opts.sizes.stepTimeoutMs, tmp, dropCaches: drop, log };
    // Inputs first (not timed), then the runs.
    const ready: Workload[] = [];
    for (const w of chosen) {
      const runPeers = w.peerKind === 'mount' ? peers.mount : peers.backup;
      const info: WorkloadInfo = { id: w.id, title: w.title, description: '', peers: runPeers.map((p) => p.name), notes: [] };
      infos.push(info);
      info.unavailable = (await w.unavailable?.()) ?? (runPeers.length === 0 ? 'no peer can run it here' : undefined);
      if (info.unavailable) log(`${w.title}: not run, ${info.unavailable}`);
      else {
        const tp = Date.now();
        await w.prepare({ tmp, sizes: opts.sizes });
        log(`${w.title}: inputs ready in ${((Date.now() - tp) / 1000).toFixed(1)} s`);
        ready.push(w);
      }
      info.description = w.describe(opts.sizes);
    }
    const mountWs = ready.filter((w): w is MountWorkload => w.peerKind === 'mount');
    if (mountWs.length) {
      log(`mount workloads (${mountWs.map((w) => w.id).join(', ')}) on ${peers.mount.map((p) => p.name).join(', ')}:`);
      steps.push(...(await runMountWorkloads(mountWs, peers.mount, plan)));
    }
    for (const w of ready.filter((x): x is BackupWorkload => x.peerKind === 'backup')) {
      log(`${w.title} on ${peers.backup.map((p) => p.name).join(', ')}:`);
      steps.push(...(await runBackupWorkload(w, peers.backup, plan)));
    }
    for (const info of infos) {
      const notes = new Set(steps.filter((r) => r.workload === info.id).flatMap((r) => (r.notes ?? []).map((n) => `${r.peer}: ${n}`)));
      info.notes = [...notes];
    }

    const res: BenchResults = {
      date,
      machine: await machineInfo(tmp),
      mode: opts.quick ? 'quick' : 'full',
      runs: opts.runs,
      subject: opts.subject,
      sizes: opts.sizes,
      peers: peers.infos,
      workloads: infos,
      steps,
      metrics: buildMetrics(chosen, infos, steps, opts.subject),
      totalSeconds: (Date.now() - t0) / 1000,
    };
    await mkdir(outDir, { recursive: true });
    const svg = renderSvg(res);
    await writeFile(join(outDir, 'results.json'), JSON.stringify(res, null, 2) + '\n');
    await writeFile(join(outDir, 'results.md'), renderMarkdown(res));
    await writeFile(join(outDir, 'chart.svg'), svg);
    await writeFile(join(outDir, 'index.html'), renderHtml(res, svg));

    const out: string[] = [''];
    for (const t of tables(res)) out.push(t.title, markdownTable(t, true), '');
    out.push(`ratio = ${res.subject}/peer of the medians, ✓ = ${res.subject} better; median (min–max) of ${res.runs} runs`);
    out.push(`results: ${outDir}/results.md, results.json, chart.svg, index.html (${res.totalSeconds.toFixed(0)} s in all)`);
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    cleanupNow();
    await rmrf(tmp).catch(() => undefined);
  }
}

main().catch((e: unknown) => {
  log(`bench: ${e instanceof Error ? e.message : String(e)}`);
  cleanupNow();
  process.exit(1);
});
