// index.html: the chart and the same tables as results.md, for a browser.

import type { BenchResults } from './results.js';
import { machineLine } from './report-markdown.js';
import { tables } from './report-table.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderHtml(res: BenchResults, svg: string): string {
  const o: string[] = [];
  o.push('<!doctype html><html><head><meta charset="utf-8">', `<title>fragfs bench ${esc(res.date)}</title>`);
  o.push('<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}</style>');
  o.push('</head><body>', `<h1>fragfs bench, ${res.mode} run, ${esc(res.date)}</h1>`, `<p>${esc(machineLine(res))}</p>`);
  o.push(`<p>Median of ${res.runs} runs (min–max). Ratio = ${esc(res.subject)} / peer; ✓ where ${esc(res.subject)} is better.</p>`);
  o.push(svg.replace(/^<\?xml[^>]*>/, ''));
  for (const t of tables(res)) {
    o.push(`<h2>${esc(t.title)}</h2><table><tr>${t.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`);
    for (const r of t.rows) o.push(`<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`);
    o.push('</table>');
  }
  o.push('<h2>Peers</h2><ul>');
  for (const p of res.peers) o.push(`<li>${esc(p.name)} (${p.kind}): ${p.available ? esc(p.version ?? 'ran') : 'not run: ' + esc(p.reason ?? '')}</li>`);
  o.push('</ul></body></html>');
  return o.join('\n') + '\n';
}
