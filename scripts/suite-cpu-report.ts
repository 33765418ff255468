// Sums up a FRAGFS_SUITE_CPU log (suite-cpu-probe.ts): CPU seconds per test file, its own and its
// children's, and how long its worker lived, most CPU first.
// Usage: node dist/scripts/suite-cpu-report.js LOG [--top N]

import { readFileSync } from 'node:fs';

const [logPath, ...rest] = process.argv.slice(2);
if (!logPath) {
  process.stderr.write('usage: node dist/scripts/suite-cpu-report.js LOG [--top N]\n');
  process.exit(2);
}
const top = rest[0] === '--top' ? Number(rest[1]) : Infinity;

const files = new Map<string, string>();
const rows: { file: string; cpuS: number; selfS: number; childrenS: number; wallS: number; startS: number }[] = [];
const exits: string[][] = [];
for (const line of readFileSync(logPath, 'utf8').split('\n')) {
  const p = line.split(' ');
  if (p[0] === 'file') files.set(p[1]!, p[2]!);
  else if (p[0] === 'exit') exits.push(p);
}
const firstMs = Math.min(...exits.map((p) => Number(p[2])));
for (const [, pid, startMs, endMs, selfS, childrenS] of exits) {
  rows.push({
    file: files.get(pid!) ?? `(pid ${pid})`,
    cpuS: Number(selfS) + Number(childrenS),
    selfS: Number(selfS),
    childrenS: Number(childrenS),
    wallS: (Number(endMs) - Number(startMs)) / 1000,
    startS: (Number(startMs) - firstMs) / 1000,
  });
}
rows.sort((a, b) => b.cpuS - a.cpuS);
const sum = (k: 'cpuS' | 'wallS') => rows.reduce((s, r) => s + r[k], 0);
process.stdout.write(`${rows.length} test file${rows.length === 1 ? '' : 's'}: ${sum('cpuS').toFixed(0)} CPU-s counted, ${sum('wallS').toFixed(0)} s of worker lifetime\n`);
process.stdout.write('  CPU-s   self  children  lifetime  start  file\n');
for (const r of rows.slice(0, top)) {
  process.stdout.write(
    `${r.cpuS.toFixed(1).padStart(7)} ${r.selfS.toFixed(1).padStart(6)} ${r.childrenS.toFixed(1).padStart(9)} ${r.wallS.toFixed(1).padStart(9)} ${r.startS.toFixed(0).padStart(6)}  ${r.file}\n`,
  );
}
