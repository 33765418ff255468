// The per-section tables every report shares (markdown, console, HTML): one row per figure, one column per
// peer (median and min-max spread), then one subject/peer ratio column per other peer.

import type { BenchResults, MetricResult } from './results.js';
import { fmtNum } from './runner.js';
import type { Section } from './workload.js';

export const SECTION_TITLES: Record<Section, string> = {
  a: '(a) Sequential write',
  b: '(b) Sequential read',
  c: '(c) Source tree: untar, find, tar',
  d: '(d) Random 4 KiB I/O',
  e: '(e) Backup-style: snapshot, change 5 %, snapshot again',
  f: '(f) Read back from a snapshot',
  g: '(g) Peak memory of the process serving each peer',
};

/** A figure's row label: section (g) names the workload and which memory figure it is. */
export function rowLabel(spec: { section: Section; label: string }): string {
  if (spec.section !== 'g') return spec.label;
  return spec.label.replace(/^peak RSS in (.*)$/, '$1: RSS (VmHWM)').replace(/^peak own memory \(RssAnon\) in (.*)$/, '$1: own memory (RssAnon)');
}

export interface Table {
  section: Section;
  title: string;
  header: string[];
  rows: string[][];
}

/** True when the subject is better than the peer on this figure. */
export function subjectBetter(m: MetricResult, r: number): boolean {
  return m.spec.better === 'higher' ? r > 1 : r < 1;
}

export function cell(m: MetricResult, peer: string): string {
  const f = m.peers[peer];
  if (!f) return '—';
  const s = f.summary;
  const fails = f.failures.length > 0 ? ` (${f.failures.length} ${f.failures.every((x) => x === 'timeout') ? 'timeout' : 'failed'})` : '';
  if (!s) return f.failures.length ? (f.failures.every((x) => x === 'timeout') ? 'timeout' : 'failed') : 'n/a';
  const spread = s.n > 1 ? ` (${fmtNum(s.min)}–${fmtNum(s.max)})` : '';
  return `${fmtNum(s.median)}${spread}${fails}`;
}

export function fmtRatio(r: number): string {
  return r >= 0.1 ? r.toFixed(2) : r.toPrecision(2);
}

export function ratioCell(m: MetricResult, peer: string): string {
  const r = m.ratios[peer];
  if (r === undefined) return '—';
  return `${fmtRatio(r)}${subjectBetter(m, r) ? ' ✓' : ''}`;
}

export function tables(res: BenchResults): Table[] {
  const out: Table[] = [];
  for (const section of Object.keys(SECTION_TITLES) as Section[]) {
    const ms = res.metrics.filter((m) => m.spec.section === section);
    if (ms.length === 0) continue;
    // Peers of a section: the union over its figures, subject first, in the order the peers were listed.
    const names = res.peers.map((p) => p.name).filter((n, i, a) => a.indexOf(n) === i);
    const peers = names.filter((n) => ms.some((m) => n in m.peers)).sort((x, y) => (x === res.subject ? -1 : y === res.subject ? 1 : 0));
    const others = peers.filter((p) => p !== res.subject);
    const header = ['figure', 'unit', ...peers, ...others.map((p) => `${res.subject}/${p}`)];
    const rows = ms.map((m) => {
      const label = rowLabel(m.spec);
      const unit = `${m.spec.unit}, ${m.spec.better === 'higher' ? 'higher' : 'lower'} better`;
      return [label, unit, ...peers.map((p) => (p in m.peers ? cell(m, p) : '—')), ...others.map((p) => (p in m.peers ? ratioCell(m, p) : '—'))];
    });
    out.push({ section, title: SECTION_TITLES[section], header, rows });
  }
  return out;
}

export function markdownTable(t: Pick<Table, 'header' | 'rows'>, pad = false): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => [...(r[i] ?? '')].length)));
  const line = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (pad ? c + ' '.repeat(Math.max(0, widths[i]! - [...c].length)) : c)).join(' | ') + ' |';
  const sep = '|' + t.header.map((_, i) => (i < 2 ? ' :-- ' : ' --: ').replace(/-+/, pad ? '-'.repeat(Math.max(3, widths[i]! - 1)) : '---')).join('|') + '|';
  return [line(t.header), sep, ...t.rows.map(line)].join('\n');
}
