// Parity side by side with par2 (a benchmark script, not a test): a store of --size-mib of random
// files (most in 1 MiB blocks stored on their own, some small ones in packs) is protected with
// K+M parity; 1 % of its stored objects (at most one per stripe) are deleted and repaired. Then
// par2 (par2cmdline) protects the same stored objects at the same redundancy (M/K), and repairs the
// same deletions. Prints creation throughput (MB/s of protected bytes) and overhead (%), repair
// time, and par2's figures beside them. Both run on files the page cache holds (the data was just
// written), so the figures compare computation and I/O paths, not the disk.
//
//   node dist/scripts/bench-parity.js [--size-mib 1024] [--shape 10+2] [--backend dir] [--json] [--keep]
//
// Needs par2 on PATH for the side-by-side figures (Debian: apt-get install par2); without it only
// fragfs's figures are printed.

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openKeyless, setParitySettings } from '../src/parity/parity-admin.js';
import { parseParityShape } from '../src/parity/parity-settings.js';
import { protectStore } from '../src/parity/protect.js';
import { repairStore } from '../src/parity/repair.js';
import { loadStripes } from '../src/parity/stripe-view.js';
import { KIND_DIRS } from '../src/store/dir-store.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', 'bin', 'main.js');
const PASS = 'bench-parity passphrase';

function arg(flag: string, dflt: string): string {
  const a = process.argv.slice(2);
  const i = a.indexOf(flag);
  return i >= 0 && a[i + 1] !== undefined ? a[i + 1]! : dflt;
}
const sizeMiB = Number(arg('--size-mib', '1024'));
const shape = parseParityShape(arg('--shape', '10+2'), '--shape');
const backend = arg('--backend', 'dir');
const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');

function run(cmd: string, args: string[], cwd?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, env: { ...process.env, FRAGFS_PASSPHRASE: PASS }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function has(cmd: string): Promise<boolean> {
  return new Promise((resolve) => execFile('sh', ['-c', `command -v ${cmd}`], (e) => resolve(!e)));
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  }
  return out;
}

const log = (l: string): void => {
  if (!json) process.stderr.write(`${l}\n`);
};

const work = await mkdtemp(join(tmpdir(), 'fragfs-bench-parity-'));
try {
  const tree = join(work, 'tree');
  const store = join(work, 'store');
  await mkdir(join(tree, 'small'), { recursive: true });
  // 97 % in files of 4 MiB, 3 % in files of 16 KiB (packed on dir and split).
  const big = Math.floor((sizeMiB * 0.97) / 4);
  for (let i = 0; i < big; i++) await writeFile(join(tree, `big-${i}.bin`), randomBytes(4 << 20));
  const small = Math.floor((sizeMiB * 0.03 * 1024) / 16);
  for (let i = 0; i < small; i++) await writeFile(join(tree, 'small', `s-${i}.bin`), randomBytes(16 << 10));
  log(`bench-parity: ${big} files of 4 MiB and ${small} of 16 KiB in ${tree}`);
  for (const step of [
    ['init', store, '--backend', backend],
    ['put', store, tree],
  ]) {
    const r = await run(process.execPath, [CLI, ...step]);
    if (r.code !== 0) throw new Error(`${step[0]}: ${r.out}`);
  }
  await rm(tree, { recursive: true });

  // fragfs: protect everything, then lose 1 % of the objects (one per stripe at most) and repair.
  await setParitySettings(store, 'default', shape);
  let k = await openKeyless(store, 'default', { readOnly: false });
  const p = await protectStore(k.store, 'default', shape, { cachePath: k.cachePath });
  const view = await loadStripes(k.store, 'default', k.cachePath);
  await k.close();
  const objects = [...view.stripes.values()].reduce((a, s) => a + s.record.members.length, 0);
  const lossCount = Math.max(1, Math.round(objects / 100));
  const stripes = [...view.stripes.values()].sort(() => Math.random() - 0.5).slice(0, lossCount);
  const lost = stripes.map((s) => s.record.members[Math.floor(Math.random() * s.record.members.length)]!);
  const lostFiles = lost.map((mb) => join(store, 'default', KIND_DIRS[mb.kind], mb.id.slice(0, 2), mb.id.slice(2)));
  const fragfs = {
    shape: `${shape.k}+${shape.m}`,
    objects,
    protectedMB: p.memberBytes / 1e6,
    createSeconds: p.ms / 1000,
    createMBps: p.memberBytes / 1e6 / (p.ms / 1000),
    overheadPct: (100 * p.parityBytes) / p.memberBytes,
    lost: lost.length,
    repairSeconds: 0,
    rebuilt: 0,
  };
  log(`fragfs: ${objects} objects (${fragfs.protectedMB.toFixed(0)} MB) protected in ${fragfs.createSeconds.toFixed(1)} s: ${fragfs.createMBps.toFixed(0)} MB/s, overhead ${fragfs.overheadPct.toFixed(1)} %`);
  for (const f of lostFiles) await unlink(f);
  k = await openKeyless(store, 'default', { readOnly: false });
  const r = await repairStore(k.store, 'default', { cachePath: k.cachePath });
  await k.close();
  fragfs.repairSeconds = r.ms / 1000;
  fragfs.rebuilt = r.rebuilt.length;
  if (r.lost.length > 0 || r.rebuilt.length !== lost.length) throw new Error(`repair rebuilt ${r.rebuilt.length} of ${lost.length}, lost ${r.lost.length}`);
  log(`fragfs: ${lost.length} objects lost (1 %), repaired in ${fragfs.repairSeconds.toFixed(1)} s (it reads and checks the whole store)`);

  // par2 on the same stored objects (parity objects left out), at redundancy M/K.
  let par2: Record<string, number> | undefined;
  if (await has('par2')) {
    const base = join(store, 'default');
    const files: string[] = [];
    for (const kind of ['data', 'meta', 'pack', 'index'] as const) {
      try {
        files.push(...(await filesUnder(join(base, KIND_DIRS[kind]))).map((f) => relative(base, f)));
      } catch {
        // a kind this store has none of
      }
    }
    let bytes = 0;
    for (const f of files) bytes += (await stat(join(base, f))).size;
    const redundancy = Math.round((100 * shape.m) / shape.k);
    let t0 = Date.now();
    // In the store's space folder, with relative names, so that repair finds the files where create saw them.
    const c = await run('par2', ['create', '-q', `-r${redundancy}`, '-n1', 'rec.par2', ...files], base);
    const createSeconds = (Date.now() - t0) / 1000;
    if (c.code !== 0) throw new Error(`par2 create: ${c.out}`);
    let parBytes = 0;
    for (const f of await readdir(base)) if (f.endsWith('.par2')) parBytes += (await stat(join(base, f))).size;
    for (const f of lostFiles) await unlink(f);
    t0 = Date.now();
    const rp = await run('par2', ['repair', '-q', 'rec.par2'], base);
    const repairSeconds = (Date.now() - t0) / 1000;
    if (rp.code !== 0) throw new Error(`par2 repair: ${rp.out.slice(-2000)}`);
    par2 = { files: files.length, MB: bytes / 1e6, redundancyPct: redundancy, createSeconds, createMBps: bytes / 1e6 / createSeconds, overheadPct: (100 * parBytes) / bytes, repairSeconds };
    log(`par2 -r${redundancy}: ${files.length} files (${(bytes / 1e6).toFixed(0)} MB) in ${createSeconds.toFixed(1)} s: ${par2['createMBps']!.toFixed(1)} MB/s, overhead ${par2['overheadPct']!.toFixed(1)} %; repair of the same ${lost.length} files ${repairSeconds.toFixed(1)} s`);
    log(`fragfs / par2: creation ${(fragfs.createMBps / par2['createMBps']!).toFixed(1)}x, repair ${(repairSeconds / fragfs.repairSeconds).toFixed(1)}x`);
  } else log('par2 is not on PATH (Debian: apt-get install par2): no side-by-side figures');
  if (json) process.stdout.write(`${JSON.stringify({ sizeMiB, fragfs, par2: par2 ?? null }, null, 2)}\n`);
} finally {
  if (keep) process.stderr.write(`bench-parity: kept ${work}\n`);
  else await rm(work, { recursive: true, force: true });
}
