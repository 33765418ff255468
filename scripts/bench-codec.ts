// Codec benchmark (npm run bench:codec): the raw speed of each primitive the block codec is built
// from, encodeBlock/decodeBlock on one core, the CodecPool on all cores, the cost of a pool round
// trip for small blocks (why CodecPool codes tiny blocks inline), and put/get through Repo on each
// disk backend. Prints a table, or JSON with --json.
//
//   node dist/scripts/bench-codec.js [--json] [--quick] [--no-backends] [--backend-mib N]
//                                    [--only primitives|one-core|pool|small|backends]

import { Blake3Hasher, blake3 as nativeBlake3 } from '@napi-rs/blake-hash';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { decodeBlock, encodeBlock, type EncodedBlock } from '../src/codec/block-codec.js';
import { CodecPool } from '../src/codec/codec-pool.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');

const MiB = 1024 * 1024;
const args = new Set(process.argv.slice(2));
const asJson = args.has('--json');
const quick = args.has('--quick');
const backendMiB = (() => {
  const i = process.argv.indexOf('--backend-mib');
  return i > 0 ? Number(process.argv[i + 1]) : quick ? 128 : 1024;
})();
const only = (() => {
  const i = process.argv.indexOf('--only');
  return i > 0 ? process.argv[i + 1] : undefined;
})();
const runs = (group: string): boolean => only === undefined || only === group;
/** Seconds each single-thread measurement runs for. */
const MIN_SECONDS = quick ? 0.3 : 1;

interface Row {
  group: string;
  name: string;
  /** Decimal megabytes (10^6 bytes) of plaintext per second. */
  mbPerS?: number;
  /** Microseconds per operation, for the small-block latency rows. */
  usPerOp?: number;
  note?: string;
}
const rows: Row[] = [];

function log(s: string): void {
  if (!asJson) process.stdout.write(`${s}\n`);
}

// --- data -----------------------------------------------------------------------------------

/** Small deterministic PRNG (mulberry32) so text-like data is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VOCABULARY = (
  'the of and to in is was that for on with as by at from his her it an are were be this which ' +
  'or have had not but they one all their there been has when who more will would no if out so ' +
  'said what up its about into than them can only other new some could time these two may then ' +
  'do first any my now such like our over man me even most made after also did many before must ' +
  'through back years where much your way well down should because each just those people how ' +
  'too little state good very make world still own see men work long get here between both life ' +
  'being under never day same another know while last might us great old year off come since ' +
  'against go came right used take three store block fragment snapshot mount folder encrypted ' +
  'river mountain window garden letter morning evening question answer number system program'
).split(' ');

/** Pseudo-English: words from a fixed vocabulary, sentences and line breaks; compresses ~3x with zstd -1. */
function textLike(n: number, seed = 1): Uint8Array {
  const rnd = prng(seed);
  const parts: string[] = [];
  let len = 0;
  let word = 0;
  while (len < n) {
    let w = VOCABULARY[Math.floor(rnd() * VOCABULARY.length)]!;
    if (word === 0) w = w[0]!.toUpperCase() + w.slice(1);
    word++;
    const end = word > 4 && rnd() < 0.12;
    const piece = end ? `${w}.${rnd() < 0.2 ? '\n' : ' '}` : `${w}${rnd() < 0.06 ? ', ' : ' '}`;
    if (end) word = 0;
    parts.push(piece);
    len += piece.length;
  }
  return new Uint8Array(Buffer.from(parts.join('')).subarray(0, n));
}

function randomData(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

// --- timing ---------------------------------------------------------------------------------

/** Runs `fn` (which handles `bytes` per call) for at least MIN_SECONDS; returns MB/s. */
function rate(bytes: number, fn: () => void): number {
  for (let i = 0; i < 3; i++) fn(); // warm up
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let elapsedNs = 0n;
  while (elapsedNs < BigInt(Math.round(MIN_SECONDS * 1e9))) {
    fn();
    calls++;
    elapsedNs = process.hrtime.bigint() - t0;
  }
  return (bytes * calls) / (Number(elapsedNs) / 1e9) / 1e6;
}

function usPerCall(fn: () => void): number {
  for (let i = 0; i < 50; i++) fn();
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let elapsedNs = 0n;
  while (elapsedNs < BigInt(Math.round(MIN_SECONDS * 0.5e9))) {
    fn();
    calls++;
    elapsedNs = process.hrtime.bigint() - t0;
  }
  return Number(elapsedNs) / 1e3 / calls;
}

async function usPerAsyncCall(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 50; i++) await fn();
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let elapsedNs = 0n;
  while (elapsedNs < BigInt(Math.round(MIN_SECONDS * 0.5e9))) {
    await fn();
    calls++;
    elapsedNs = process.hrtime.bigint() - t0;
  }
  return Number(elapsedNs) / 1e3 / calls;
}

/** Runs `count` async tasks with at most `inFlight` at once; returns seconds. */
async function pipelined(count: number, inFlight: number, task: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  const lanes = Array.from({ length: Math.min(inFlight, count) }, async () => {
    while (next < count) await task(next++);
  });
  await Promise.all(lanes);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function add(group: string, name: string, mbPerS: number, note?: string): void {
  rows.push({ group, name, mbPerS, ...(note ? { note } : {}) });
  log(`  ${name.padEnd(46)} ${mbPerS.toFixed(0).padStart(7)} MB/s${note ? `  ${note}` : ''}`);
}

// --- sections -------------------------------------------------------------------------------

const secret = new Uint8Array(randomBytes(32));
const rnd1M = randomData(MiB);
const txt1M = textLike(MiB);

function benchPrimitives(): void {
  log('raw primitives, one core, 1 MiB buffers');
  const key = new Uint8Array(randomBytes(32));
  const nonce = new Uint8Array(12);
  add('primitives', 'BLAKE3 (native)', rate(MiB, () => nativeBlake3(rnd1M)));
  add('primitives', 'BLAKE3 keyed (native)', rate(MiB, () => Blake3Hasher.newKeyed(key as Buffer).update(rnd1M).digestBuffer()));
  add('primitives', 'AES-256-GCM encrypt (node:crypto)', rate(MiB, () => {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.update(rnd1M);
    c.final();
    c.getAuthTag();
  }));
  const cctx = new zstd.CCtx();
  const dst = new Uint8Array(zstd.compressBound(MiB));
  const txtSize = cctx.compress(dst, txt1M, 1);
  const rndSize = cctx.compress(dst, rnd1M, 1);
  add('primitives', 'zstd -1 compress, random', rate(MiB, () => cctx.compress(dst, rnd1M, 1)), `ratio ${(MiB / rndSize).toFixed(2)}`);
  add('primitives', 'zstd -1 compress, text-like', rate(MiB, () => cctx.compress(dst, txt1M, 1)), `ratio ${(MiB / txtSize).toFixed(2)}`);
  const txtC = dst.slice(0, cctx.compress(dst, txt1M, 1));
  const dctx = new zstd.DCtx();
  const out = new Uint8Array(MiB);
  add('primitives', 'zstd decompress, text-like', rate(MiB, () => dctx.decompress(out, txtC)));
  add('primitives', 'crc32 (node:zlib)', rate(MiB, () => crc32(rnd1M)));
}

function benchOneCore(): void {
  log('encodeBlock / decodeBlock, one core, 1 MiB blocks');
  for (const [label, data] of [['random', rnd1M], ['text-like', txt1M]] as const) {
    const enc = encodeBlock(data, secret);
    add('one-core', `encodeBlock ${label}`, rate(MiB, () => encodeBlock(data, secret)), `stored ${enc.stored.length} B`);
    add('one-core', `decodeBlock ${label}`, rate(MiB, () => decodeBlock(enc.stored, enc)));
  }
}

async function benchPool(): Promise<void> {
  const threads = availableParallelism();
  const inFlight = threads * 4;
  const count = quick ? 64 : 256;
  log(`CodecPool, ${threads} threads, ${inFlight} tasks in flight, ${count} x 1 MiB`);
  const pool = new CodecPool({ convergenceSecret: secret, inlineBelow: 0 });
  try {
    // Warm the threads (module load, first allocations) before timing.
    await Promise.all(Array.from({ length: threads * 2 }, () => pool.encode(randomData(MiB))));
    for (const [label, data] of [['random', rnd1M], ['text-like', txt1M]] as const) {
      // Each task transfers its input, so every task gets its own copy made before the clock starts.
      const inputs = Array.from({ length: count }, () => new Uint8Array(data));
      const encoded: EncodedBlock[] = new Array(count);
      const encS = await pipelined(count, inFlight, async (i) => {
        encoded[i] = await pool.encode(inputs[i]!);
      });
      add('pool', `pool encode ${label}`, (count * MiB) / encS / 1e6);
      const decS = await pipelined(count, inFlight, async (i) => {
        const e = encoded[i]!;
        await pool.decode(e.stored, e);
      });
      add('pool', `pool decode ${label}`, (count * MiB) / decS / 1e6);
    }
  } finally {
    await pool.close();
  }
}

/** Inline call vs one pool round trip, per block size: the data behind CodecPool's INLINE_BELOW. */
async function benchSmall(): Promise<void> {
  log('small blocks (random data): inline codec vs pool round trips, microseconds per block');
  const pool = new CodecPool({ convergenceSecret: secret, threads: 1, inlineBelow: 0 });
  const wide = new CodecPool({ convergenceSecret: secret, inlineBelow: 0 });
  const inFlight = wide.threads * 8;
  try {
    await pool.encode(randomData(4096));
    await Promise.all(Array.from({ length: inFlight }, () => wide.encode(randomData(4096))));
    for (const size of [1024, 4096, 16384, 65536, 262144]) {
      const data = randomData(size);
      const enc = encodeBlock(data, secret);
      const inlineEnc = usPerCall(() => encodeBlock(data, secret));
      const inlineDec = usPerCall(() => decodeBlock(enc.stored, enc));
      const poolEnc = await usPerAsyncCall(() => pool.encode(new Uint8Array(data)));
      const poolDec = await usPerAsyncCall(() => pool.decode(new Uint8Array(enc.stored), enc));
      const count = Math.max(200, Math.min(5000, Math.round((quick ? 50 : 200) * MiB / size)));
      const inputs = Array.from({ length: count }, () => new Uint8Array(data));
      const wideS = await pipelined(count, inFlight, (i) => wide.encode(inputs[i]!));
      const poolWide = (wideS * 1e6) / count;
      const kib = `${size / 1024} KiB`;
      for (const [name, us] of [
        [`inline encode ${kib}`, inlineEnc],
        [`pool encode ${kib} (1 in flight)`, poolEnc],
        [`pool encode ${kib} (${inFlight} in flight, ${wide.threads} threads), per block`, poolWide],
        [`inline decode ${kib}`, inlineDec],
        [`pool decode ${kib} (1 in flight)`, poolDec],
      ] as const) {
        rows.push({ group: 'small', name, usPerOp: us, mbPerS: size / us });
        log(`  ${name.padEnd(56)} ${us.toFixed(1).padStart(7)} us   ${(size / us).toFixed(0).padStart(6)} MB/s`);
      }
    }
  } finally {
    await pool.close();
    await wide.close();
  }
}

// ===== benchBackends: put/get through Repo on each disk backend ================================
// Runs only when dist/src/repo/repo.js exists and exports Repo (the repository layer is separate
// from the codec and may be absent in a partial build).
async function benchBackends(): Promise<void> {
  const repoJs = fileURLToPath(new URL('../src/repo/repo.js', import.meta.url));
  if (!existsSync(repoJs)) {
    log(`backends: skipped (${repoJs} not built)`);
    return;
  }
  const mod = (await import(repoJs)) as { Repo?: RepoLike };
  const Repo = mod.Repo;
  if (Repo === undefined || typeof Repo.init !== 'function') {
    log('backends: skipped (src/repo/repo.js does not export Repo)');
    return;
  }
  const threads = availableParallelism();
  const inFlight = threads * 2;
  const blocks = backendMiB;
  log(`Repo put/get of a ${blocks} MiB file (1 MiB random blocks, ${inFlight} in flight), per backend`);
  // Distinct blocks from a few random templates (block number stamped in), so nothing dedups
  // and generating data does not dominate.
  const templates = Array.from({ length: 8 }, () => randomData(MiB));
  const blockOf = (i: number): Uint8Array => {
    const b = new Uint8Array(templates[i % templates.length]!);
    new DataView(b.buffer).setFloat64(0, i);
    return b;
  };
  for (const backend of ['lmdb', 'dir', 'split']) {
    const dir = await mkdtemp(join(tmpdir(), `fragfs-bench-${backend}-`));
    try {
      const storePath = join(dir, 'store');
      let repo = await Repo.init({ storePath, backend, passphrase: 'bench passphrase' });
      const refs: unknown[] = new Array(blocks);
      let putS: number;
      try {
        putS = await pipelined(blocks, inFlight, async (i) => {
          refs[i] = await repo.writeBlock(blockOf(i));
        });
        const t0 = process.hrtime.bigint();
        await repo.sync();
        putS += Number(process.hrtime.bigint() - t0) / 1e9;
      } finally {
        await repo.close();
      }
      // Reopen so reads come from the backend, not from anything the writer kept.
      repo = await Repo.open({ storePath, passphrase: 'bench passphrase' });
      let getS: number;
      try {
        getS = await pipelined(blocks, inFlight, async (i) => {
          await repo.readBlock(refs[i]);
        });
      } finally {
        await repo.close();
      }
      add('backends', `${backend}: put ${blocks} MiB (incl. sync)`, (blocks * MiB) / putS / 1e6);
      add('backends', `${backend}: get ${blocks} MiB (page cache warm)`, (blocks * MiB) / getS / 1e6);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

interface RepoInstance {
  writeBlock(plain: Uint8Array): Promise<unknown>;
  readBlock(ref: unknown): Promise<Uint8Array>;
  sync(): Promise<void>;
  close(): Promise<void>;
}
interface RepoLike {
  init(o: { storePath: string; backend: string; passphrase: string }): Promise<RepoInstance>;
  open(o: { storePath: string; passphrase: string }): Promise<RepoInstance>;
}
// ===== end benchBackends =======================================================================

async function main(): Promise<void> {
  log(`fragfs codec benchmark: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'})`);
  if (runs('primitives')) benchPrimitives();
  if (runs('one-core')) benchOneCore();
  if (runs('pool')) await benchPool();
  if (runs('small')) await benchSmall();
  if (runs('backends') && !args.has('--no-backends')) await benchBackends();
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ node: process.version, cores: availableParallelism(), rows }, null, 2)}\n`);
  }
}

await main();
