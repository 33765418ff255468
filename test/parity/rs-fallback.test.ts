// The TypeScript Reed-Solomon code against the addon it stands in for: for every shape a stripe can
// have (1..24 members, 1..6 parity), random data and shard sizes (aligned or not, packets halved or
// not), its parity and its rebuilds are the addon's byte for byte, whole buffers compared; on its
// own it rebuilds any m lost shards; it gives the parity vector; and a store protected with one
// codec is repaired through the CLI with the other, where the addon does not load at all.

import test, { type ExecutionContext } from 'ava';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { rsFallback } from '../../src/parity/rs-fallback.js';
import { rsCodecName, type RsBinding } from '../../src/parity/rs-codec.js';
import { encodeRecord, type StripeMember } from '../../src/parity/parity-format.js';
import { rebuildStripe } from '../../src/parity/stripe-codec.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/stores.js';
import { describeTree } from '../helpers/tree-compare.js';
import { createParityStore, damage, makeTree, pick, putTree, shardsOf, stripesOf, type Damage } from './parity-helpers.js';

// This process computes with the fallback wherever it goes through rs-codec.ts.
process.env['FRAGFS_RS'] = 'js';

function loadNative(): RsBinding | undefined {
  try {
    return createRequire(import.meta.url)('@ronomon/reed-solomon') as RsBinding;
  } catch {
    return undefined;
  }
}
const native = loadNative();
// Without the addon (scripts/setup.sh builds it) there is nothing to compare with.
const withNative = native ? test : test.skip;

function run(lib: RsBinding, context: unknown, sources: number, targets: number, data: Buffer, parity: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    lib.encode(context, sources, targets, data, 0, data.length, parity, 0, parity.length, (e) => (e ? reject(e) : resolve()));
  });
}

const contexts = new Map<string, { js: unknown; native: unknown }>();
function contextsFor(k: number, m: number): { js: unknown; native: unknown } {
  let c = contexts.get(`${k}+${m}`);
  if (!c) {
    c = { js: rsFallback.create(k, m), native: native?.create(k, m) };
    contexts.set(`${k}+${m}`, c);
  }
  return c;
}

/** A shard size as a stripe may have: a multiple of 8, from 8 bytes to `max`. */
function randomShardSize(max: number): number {
  return 8 * randomInt(1, max / 8 + 1);
}

function bits(indexes: readonly number[]): number {
  return indexes.reduce((a, i) => a | (1 << i), 0);
}

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

async function encodeBoth(k: number, m: number, data: Buffer): Promise<{ js: Buffer; native: Buffer }> {
  const c = contextsFor(k, m);
  const S = data.length / k;
  const js = Buffer.alloc(m * S);
  const nat = Buffer.alloc(m * S);
  await run(rsFallback, c.js, bits(range(k)), bits(range(m, k)), Buffer.from(data), js);
  await run(native!, c.native, bits(range(k)), bits(range(m, k)), data, nat);
  return { js, native: nat };
}

withNative('every shape: the parity of random data is the addon\'s, byte for byte', async (t) => {
  for (let k = 1; k <= 24; k++) {
    for (let m = 1; m <= 6; m++) {
      // Small shards (packets of a few bytes, often not a multiple of 4), a shard whose packets
      // are an odd number of bytes, one whose packets are halved to fit the cache, and one at random.
      for (const S of [8, 8 * randomInt(1, 40), 65544, 131072, randomShardSize(200_000)]) {
        const data = randomBytes(k * S);
        const got = await encodeBoth(k, m, data);
        if (!got.js.equals(got.native)) t.fail(`${k}+${m}, shards of ${S} bytes: parity differs`);
      }
    }
  }
  t.pass();
});

withNative('10+2 with 1 MiB shards and with shards of an encrypted 1 MiB block: the addon\'s parity', async (t) => {
  for (const S of [1 << 20, 1_048_616]) {
    const got = await encodeBoth(10, 2, randomBytes(10 * S));
    t.true(got.js.equals(got.native), `shards of ${S} bytes`);
  }
});

withNative('random losses rebuilt from random sources: both codecs leave the same bytes, the originals', async (t) => {
  for (let round = 0; round < 300; round++) {
    const k = randomInt(1, 25);
    const m = randomInt(1, 7);
    const S = round % 10 === 0 ? randomShardSize(300_000) : randomShardSize(4096);
    const data = randomBytes(k * S);
    const parity = (await encodeBoth(k, m, data)).native;
    const lost = pick(range(k + m), randomInt(1, m + 1));
    // Sometimes fewer than all survivors are sources (a repair that could not read some of them).
    const survivors = range(k + m).filter((i) => !lost.includes(i));
    const sources = round % 3 === 0 ? pick(survivors, randomInt(k, survivors.length + 1)) : survivors;
    const garbage = (b: Buffer, i: number): void => {
      if (!sources.includes(i)) randomBytes(S).copy(b, (i < k ? i : i - k) * S);
    };
    const dJs = Buffer.from(data);
    const pJs = Buffer.from(parity);
    for (const i of range(k + m)) garbage(i < k ? dJs : pJs, i);
    const dNat = Buffer.from(dJs);
    const pNat = Buffer.from(pJs);
    const c = contextsFor(k, m);
    await run(rsFallback, c.js, bits(sources), bits(lost), dJs, pJs);
    await run(native!, c.native, bits(sources), bits(lost), dNat, pNat);
    const what = `${k}+${m}, shards of ${S}, lost ${lost.join(',')}, sources ${[...sources].sort((a, b) => a - b).join(',')}`;
    if (!dJs.equals(dNat) || !pJs.equals(pNat)) t.fail(`${what}: the codecs differ`);
    for (const i of lost) {
      const got = i < k ? dJs.subarray(i * S, (i + 1) * S) : pJs.subarray((i - k) * S, (i - k + 1) * S);
      const want = i < k ? data.subarray(i * S, (i + 1) * S) : parity.subarray((i - k) * S, (i - k + 1) * S);
      if (!got.equals(want)) t.fail(`${what}: shard ${i} not rebuilt`);
    }
  }
  t.pass();
});

/** Every set of at most m of the k + m shard indexes. */
function lossSets(n: number, m: number): number[][] {
  const out: number[][] = [];
  const walk = (from: number, chosen: number[]): void => {
    if (chosen.length > 0) out.push(chosen);
    if (chosen.length === m) return;
    for (let i = from; i < n; i++) walk(i + 1, [...chosen, i]);
  };
  walk(0, []);
  return out;
}

async function checkRebuilds(t: ExecutionContext, k: number, m: number, S: number, sets: number[][]): Promise<void> {
  const context = rsFallback.create(k, m);
  const data = randomBytes(k * S);
  const parity = Buffer.alloc(m * S);
  await run(rsFallback, context, bits(range(k)), bits(range(m, k)), data, parity);
  for (const lost of sets) {
    const d = Buffer.from(data);
    const p = Buffer.from(parity);
    for (const i of lost) (i < k ? d : p).fill(0xa5, (i < k ? i : i - k) * S, (i < k ? i + 1 : i - k + 1) * S);
    await run(rsFallback, context, bits(range(k + m).filter((i) => !lost.includes(i))), bits(lost), d, p);
    if (!d.equals(data) || !p.equals(parity)) t.fail(`${k}+${m}, shards of ${S}: losing ${lost.join(',')} not undone`);
  }
}

test('on its own, the fallback rebuilds every loss of up to m shards, data or parity', async (t) => {
  await checkRebuilds(t, 10, 2, 4104, lossSets(12, 2));
  await checkRebuilds(t, 5, 4, 1000, lossSets(9, 4));
  await checkRebuilds(t, 3, 6, 816, lossSets(9, 6));
  await checkRebuilds(t, 13, 3, 2048, lossSets(16, 3));
  // 24+6 has 768,211 sets of losses: a random hundred of each size.
  await checkRebuilds(t, 24, 6, 800, range(6, 1).flatMap((n) => range(100).map(() => pick(range(30), n))));
  t.pass();
});

test('the fallback gives the parity vector (made by the addon) and rebuilds it, through rs-codec', async (t) => {
  t.is(rsCodecName(), 'js');
  const v = JSON.parse(readFileSync(new URL('../../../fixtures/vectors/parity/parity-v1.json', import.meta.url), 'utf8')) as {
    m: number;
    shardSize: number;
    members: (StripeMember & { bytes: string })[];
    parity: { bytes: string }[];
  };
  const record = { members: v.members.map(({ bytes: _b, ...mb }) => mb), m: v.m, shardSize: v.shardSize };
  const recordBytes = encodeRecord(record);
  const bytes = v.members.map((mb) => Buffer.from(mb.bytes, 'hex'));
  const built = await rebuildStripe(record, recordBytes, bytes, []);
  t.deepEqual(built.parity.map((p) => p.toString('hex')), v.parity.map((p) => p.bytes));
  const shards = built.parity.map((p) => p.subarray(p.length - v.shardSize));
  const again = await rebuildStripe(record, recordBytes, [undefined, bytes[1], undefined], shards);
  t.deepEqual(again.members.map((b) => Buffer.from(b).toString('hex')), v.members.map((mb) => mb.bytes));
});

test('create refuses shapes the addon refuses, encode its bad arguments', (t) => {
  t.throws(() => rsFallback.create(0, 2), { message: 'k < 1' });
  t.throws(() => rsFallback.create(25, 2), { message: 'k > MAX_K' });
  t.throws(() => rsFallback.create(10, 7), { message: 'm > MAX_M' });
  const c = rsFallback.create(4, 2);
  const d = Buffer.alloc(4 * 16);
  const p = Buffer.alloc(2 * 16);
  t.throws(() => rsFallback.encode(c, 0b0111, 0b110000, d, 0, d.length, p, 0, p.length, () => {}), { message: 'sources < k' });
  t.throws(() => rsFallback.encode(c, 0b1111, 0b011000, d, 0, d.length, p, 0, p.length, () => {}), { message: '(sources & targets) != 0' });
  t.throws(() => rsFallback.encode(c, 0b111100, 0b000011, d, 0, 4 * 12, p, 0, 2 * 12, () => {}), { message: 'shardSize % 8 != 0' });
});

// Through the CLI: a store protected by one codec, damaged, is repaired by the other.
let work: Awaited<ReturnType<typeof tempDir>> | undefined;
test.after.always(async () => {
  await work?.remove();
});

function ok(t: ExecutionContext, r: CliResult, what: string): CliResult {
  t.is(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

test.serial('a store protected by the addon is repaired through the CLI where it does not load, and the other way round', async (t) => {
  work = await tempDir('fragfs-rs-js-');
  const store = join(work.path, 'store');
  await createParityStore(store, 'dir', { k: 4, m: 2 });
  // A machine without the addon: its require fails, as when it was never built.
  const hook = join(work.path, 'no-rs-addon.cjs');
  await writeFile(
    hook,
    `const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === '@ronomon/reed-solomon') throw new Error('Cannot find module: the addon is not built');
  return load.call(this, request, ...rest);
};
`,
  );
  const noAddon = { FRAGFS_RS: undefined, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --require ${hook}` };
  // Without the addon here, the other side is the fallback as well, forced.
  const withAddon = { FRAGFS_RS: native ? 'native' : 'js' };
  const trees: { key: string; tree: string }[] = [];
  for (const [round, [protectWith, repairWith]] of [[withAddon, noAddon], [noAddon, withAddon]].entries()) {
    const tree = join(work.path, `tree-${round}`);
    await makeTree(tree, 20, `r${round}`);
    const before = new Set((await stripesOf(store)).map((s) => s.stripeId));
    const r = await runCli(['put', store, tree], { env: protectWith });
    t.is(r.code, 0, r.stderr);
    trees.push({ key: r.stdout.trim().split('\n').pop()!, tree });
    const fresh = (await stripesOf(store)).filter((s) => !before.has(s.stripeId) && s.record.members.length >= 2);
    t.true(fresh.length >= 2, `${fresh.length} new stripes`);
    const damaged: Damage[] = [];
    for (const s of pick(fresh, 2)) {
      // Two members where the stripe has them (the decoding matrix), else a member and a parity object.
      const members = shardsOf(s).filter((x) => x.kind !== 'parity');
      const hit = members.length >= 2 ? pick(members, 2) : [...pick(members, 1), ...pick(shardsOf(s).filter((x) => x.kind === 'parity'), 1)];
      damaged.push(...hit.map((x, i) => ({ ...x, how: i === 0 ? ('corrupt' as const) : ('delete' as const) })));
    }
    await damage(store, damaged);
    if (round === 0) {
      // FRAGFS_RS reaches the codec's choice in the CLI, and the hook does keep the addon out.
      const unknown = await runCli(['repair', store], { env: { FRAGFS_PASSPHRASE: undefined, FRAGFS_RS: 'wasm' } });
      t.not(unknown.code, 0, unknown.stdout);
      t.regex(unknown.stderr, /FRAGFS_RS is "wasm": it may be js or native/);
      const forced = await runCli(['repair', store], { env: { ...noAddon, FRAGFS_PASSPHRASE: undefined, FRAGFS_RS: 'native' } });
      t.not(forced.code, 0, forced.stdout);
      t.regex(forced.stderr, /FRAGFS_RS=native, but the @ronomon\/reed-solomon addon is not built/);
    }
    const rep = ok(t, await runCli(['repair', store], { env: { ...repairWith, FRAGFS_PASSPHRASE: undefined } }), `repair, round ${round}`);
    t.is(rep.stdout.split('\n').filter((l) => l.startsWith('rebuilt ')).length, damaged.length, rep.stdout);
    t.regex(rep.stdout, / 0 lost/);
    const v = ok(t, await runCli(['verify', store]), 'verify');
    t.regex(v.stdout, /: no problems/);
    for (const [i, s] of trees.entries()) {
      const dest = join(work.path, `out-${round}-${i}`);
      ok(t, await runCli(['get', store, s.key, dest]), `get ${s.key}`);
      t.deepEqual(await describeTree(dest), await describeTree(s.tree), `round ${round}: snapshot ${i} byte-identical`);
    }
  }
});
