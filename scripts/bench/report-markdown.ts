// results.md: the machine, the peers (and why a missing one is missing), one table per section, failures.

import type { BenchResults } from './results.js';
import { markdownTable, tables } from './report-table.js';
import { fmtBytes } from './format.js';

export function machineLine(res: Pick<BenchResults, 'machine'>): string {
  const m = res.machine;
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}, kernel ${m.kernel}, ${m.disk}, Node ${m.node}`;
}

export function renderMarkdown(res: BenchResults): string {
  const out: string[] = [];
  out.push(`# fragfs bench, ${res.mode} run, ${res.date}`, '');
  out.push(`Machine: ${machineLine(res)}.`, '');
  out.push(
    `Each figure is the median of ${res.runs} runs with the min–max spread in brackets; peers run interleaved run by run. ` +
      `A ratio is ${res.subject} / peer of the medians; ✓ marks where ${res.subject} is better (a ratio above 1 for figures where higher is better, below 1 where lower is better). ` +
      `Total time ${res.totalSeconds.toFixed(0)} s.`,
    '',
  );
  out.push('## Peers', '', '| peer | used for | status | set up as |', '| :-- | :-- | :-- | :-- |');
  for (const p of res.peers)
    out.push(`| ${p.name} | ${p.kind === 'mount' ? '(a)–(d)' : '(e), (f)'} | ${p.available ? `ran (${p.version ?? ''})` : `not run: ${p.reason ?? ''}`} | ${p.setup} |`);
  out.push('', '## Workloads', '');
  for (const w of res.workloads) out.push(`- **${w.title}**${w.unavailable ? ` — not run: ${w.unavailable}` : ''}: ${w.description}${w.notes.length ? ' ' + w.notes.join('; ') + '.' : ''}`);
  out.push(`- **(g) Peak RSS**: the highest VmHWM of the process serving the folder (the mount process; for (e)/(f) the snapshot command and the snapshot mount), per step. The plain folder has no such process.`);
  out.push(`- Sizes: ${Object.entries(res.sizes).map(([k, v]) => `${k}=${/Bytes$/.test(k) ? fmtBytes(v as number) : v}`).join(', ')}.`);
  for (const t of tables(res)) out.push('', `## ${t.title}`, '', markdownTable(t));
  const failed = res.steps.filter((s) => s.status !== 'ok');
  if (failed.length) {
    out.push('', '## Failed steps', '');
    for (const s of failed) out.push(`- ${s.workload} run ${s.run} on ${s.peer}: ${s.status}${s.error ? ` — ${s.error}` : ''} (after ${s.seconds.toFixed(1)} s)`);
  }
  return out.join('\n') + '\n';
}
