// chart.svg, written by hand: one horizontal bar per figure and peer, the subject/peer ratio on a log
// scale around 1, green where the subject is better, red where it is worse.

import type { BenchResults } from './results.js';
import { fmtRatio, rowLabel, subjectBetter, SECTION_TITLES } from './report-table.js';

const W = 980;
const LABEL_W = 330;
const ROW_H = 20;
const PLOT_W = W - LABEL_W - 60;
const MAX_LOG2 = 5; // the axis spans 1/32 .. 32; beyond that a bar is clipped and says so

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function renderSvg(res: BenchResults): string {
  // factor > 1: the subject is better by that factor, whichever way the figure counts; bars point right.
  type Item = { kind: 'head'; text: string } | { kind: 'bar'; label: string; ratio: number; factor: number; better: boolean };
  const items: Item[] = [];
  let lastSection = '';
  for (const m of res.metrics) {
    const bars = Object.entries(m.ratios).filter((e): e is [string, number] => e[1] !== undefined && e[1] > 0);
    if (bars.length === 0) continue;
    if (m.spec.section !== lastSection) {
      items.push({ kind: 'head', text: SECTION_TITLES[m.spec.section] });
      lastSection = m.spec.section;
    }
    const label = rowLabel(m.spec);
    for (const [peer, r] of bars)
      items.push({ kind: 'bar', label: `${label} vs ${peer}`, ratio: r, factor: m.spec.better === 'higher' ? r : 1 / r, better: subjectBetter(m, r) });
  }
  const top = 70;
  const H = top + items.length * ROW_H + 50;
  const x1 = LABEL_W + PLOT_W / 2;
  const xOf = (r: number): number => x1 + (Math.max(-MAX_LOG2, Math.min(MAX_LOG2, Math.log2(r))) / MAX_LOG2) * (PLOT_W / 2);
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="12" y="24" font-size="16" font-weight="bold">${esc(`${res.subject} / peer, median of ${res.runs} runs (${res.mode}, ${res.date.slice(0, 10)})`)}</text>`);
  o.push(`<text x="12" y="44" fill="#444">${esc(`right/green: ${res.subject} better by that factor, left/red: worse (log scale); the numbers are ${res.subject}/peer ratios`)}</text>`);
  // grid
  for (let k = -MAX_LOG2; k <= MAX_LOG2; k++) {
    const x = xOf(2 ** k);
    o.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${H - 40}" stroke="${k === 0 ? '#000' : '#ddd'}"/>`);
    const t = k >= 0 ? `${2 ** k}` : `1/${2 ** -k}`;
    o.push(`<text x="${x}" y="${H - 24}" text-anchor="middle" fill="#444">${t}</text>`);
  }
  items.forEach((it, i) => {
    const y = top + i * ROW_H;
    if (it.kind === 'head') {
      o.push(`<text x="12" y="${y + 14}" font-weight="bold">${esc(it.text)}</text>`);
      return;
    }
    o.push(`<text x="${LABEL_W - 8}" y="${y + 14}" text-anchor="end">${esc(it.label)}</text>`);
    const x = xOf(it.factor);
    const left = x < x1;
    const [a, b] = left ? [x, x1] : [x1, x];
    o.push(`<rect x="${a.toFixed(1)}" y="${y + 3}" width="${Math.max(1, b - a).toFixed(1)}" height="${ROW_H - 6}" fill="${it.better ? '#2e9d4f' : '#d0443e'}"/>`);
    const text = fmtRatio(it.ratio) + (Math.abs(Math.log2(it.factor)) > MAX_LOG2 ? ' (off scale)' : '');
    // Outside the bar when there is room, else inside it in white, so a label never runs into the names.
    const room = left ? a - LABEL_W : W - b;
    const inside = room < 90;
    const [tx, anchor] = inside ? (left ? [a + 4, 'start'] : [b - 4, 'end']) : left ? [a - 4, 'end'] : [b + 4, 'start'];
    o.push(`<text x="${tx.toFixed(1)}" y="${y + 14}" text-anchor="${anchor}" fill="${inside ? '#fff' : '#000'}">${esc(text)}</text>`);
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}
