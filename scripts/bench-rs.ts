// Reed-Solomon throughput (a benchmark script, not a test): the addon and the TypeScript fallback
// side by side, encoding the m parity shards of a stripe and rebuilding two lost data shards, in MB/s
// of data shards (k x shard size per call), one call at a time. Shards of exactly 1 MiB, and of
// 1,048,616 bytes (an encrypted 1 MiB block rounded to 8: its packets are an odd number of bytes,
// which the fallback copies to aligned scratch first). Each figure is the best of --rounds rounds of
// --seconds each, the median beside it: on a shared machine the best is the code's own speed.
//
//   node dist/scripts/bench-rs.js [--shape 10+2] [--seconds 1] [--rounds 5] [--json]

import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { RsBinding } from '../src/parity/rs-codec.js';
import { rsFallback } from '../src/parity/rs-fallback.js';

const argv = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}
const [k, m] = option('--shape', '10+2').split('+').map(Number) as [number, number];
const seconds = Number(option('--seconds', '1'));
const rounds = Number(option('--rounds', '5'));
const asJson = argv.includes('--json');

let native: RsBinding | undefined;
try {
  native = createRequire(import.meta.url)('@ronomon/reed-solomon') as RsBinding;
} catch {
  native = undefined;
}

function run(lib: RsBinding, context: unknown, sources: number, targets: number, data: Buffer, parity: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    lib.encode(context, sources, targets, data, 0, data.length, parity, 0, parity.length, (e) => (e ? reject(e) : resolve()));
  });
}

/** MB/s of data shards over repeated calls for about `seconds`, after a warm-up. */
async function measure(lib: RsBinding, shardSize: number, lose: 'parity' | 'two data'): Promise<{ best: number; median: number }> {
  const context = lib.create(k, m);
  const data = randomBytes(k * shardSize);
  const parity = Buffer.alloc(m * shardSize);
  const all = (1 << (k + m)) - 1;
  const parityBits = ((1 << m) - 1) << k;
  await run(lib, context, all ^ parityBits, parityBits, data, parity);
  const targets = lose === 'parity' ? parityBits : 0b11;
  for (let i = 0; i < 3; i++) await run(lib, context, all ^ targets, targets, data, parity);
  const speeds: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let calls = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < seconds) {
      await run(lib, context, all ^ targets, targets, data, parity);
      calls++;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    }
    speeds.push((calls * k * shardSize) / 1e6 / elapsed);
  }
  speeds.sort((a, b) => a - b);
  return { best: speeds[speeds.length - 1]!, median: speeds[Math.floor(speeds.length / 2)]! };
}

const rows: { codec: string; shardSize: number; work: string; MBps: number; medianMBps: number }[] = [];
for (const [codec, lib] of [['native', native], ['js', rsFallback]] as const) {
  if (!lib) continue;
  for (const shardSize of [1 << 20, 1_048_616]) {
    for (const work of ['parity', 'two data'] as const) {
      const { best, median } = await measure(lib, shardSize, work);
      rows.push({ codec, shardSize, work: work === 'parity' ? `encode ${m} parity` : 'rebuild 2 data', MBps: best, medianMBps: median });
    }
  }
}
if (asJson) {
  console.log(JSON.stringify({ shape: `${k}+${m}`, rows }, null, 2));
} else {
  if (!native) console.log('(the @ronomon/reed-solomon addon is not built: the fallback only)');
  for (const r of rows) console.log(`${k}+${m} ${r.codec.padEnd(6)} shards of ${String(r.shardSize).padStart(9)} B  ${r.work.padEnd(16)} ${r.MBps.toFixed(0).padStart(6)} MB/s (median ${r.medianMBps.toFixed(0)})`);
}
