// Throughput of a real fragfs mount (not a test): sequential write and read (cold and warm) of
// incompressible data, untar of many small files, find and du over them, a snapshot after a one-file
// change, and the mount process's peak RSS in each phase.
//
// Run as root (drop_caches) on a machine with /dev/fuse:
//   node dist/scripts/bench-mount.js [--size-mib 1024] [--files 10000] [--json] [--keep]

import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', 'bin', 'main.js');

interface Phase {
  phase: string;
  value: number;
  unit: string;
  seconds: number;
  peakRssMiB: number;
  /** Anonymous memory only: VmRSS also counts pages of the mmapped LMDB store file. */
  peakAnonMiB: number;
}

function args(): { sizeMiB: number; files: number; json: boolean; keep: boolean } {
  const a = process.argv.slice(2);
  const num = (flag: string, dflt: number) => {
    const i = a.indexOf(flag);
    return i >= 0 ? Number(a[i + 1]) : dflt;
  };
  return { sizeMiB: num('--size-mib', 1024), files: num('--files', 10_000), json: a.includes('--json'), keep: a.includes('--keep') };
}

function sh(script: string, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((res, rej) =>
    execFile('bash', ['-o', 'pipefail', '-c', script], { env: env ?? process.env, maxBuffer: 64 << 20 }, (err, out, errOut) =>
      err ? rej(new Error(`${script}: ${errOut || err.message}`)) : res(out),
    ),
  );
}

async function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): Promise<number> {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Runs `fn` while sampling the mount process's RSS every 50 ms; returns its seconds and the peak. */
async function measured<T>(
  pid: () => number,
  fn: () => Promise<T>,
): Promise<{ result: T; seconds: number; peakRssMiB: number; peakAnonMiB: number }> {
  let peak = await rssKiB(pid(), 'VmRSS');
  let anon = await rssKiB(pid(), 'RssAnon');
  const timer = setInterval(() => {
    void rssKiB(pid(), 'VmRSS').then((k) => (peak = Math.max(peak, k)));
    void rssKiB(pid(), 'RssAnon').then((k) => (anon = Math.max(anon, k)));
  }, 50);
  const start = process.hrtime.bigint();
  try {
    const result = await fn();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    peak = Math.max(peak, await rssKiB(pid(), 'VmRSS'));
    anon = Math.max(anon, await rssKiB(pid(), 'RssAnon'));
    return { result, seconds, peakRssMiB: peak / 1024, peakAnonMiB: anon / 1024 };
  } finally {
    clearInterval(timer);
  }
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = Buffer.alloc(1 << 20);
  for (let done = 0; done < bytes; done += chunk.length) {
    randomFillSync(chunk);
    if (!out.write(Buffer.from(chunk))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
}

/** A tree of small text-like files (1-8 KiB, partly repetitive like source code), as a tarball. */
async function makeTarball(root: string, files: number): Promise<string> {
  const tree = join(root, 'tree');
  const perDir = 100;
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let d = 0; d * perDir < files; d++) {
    const dir = join(tree, `d${String(d).padStart(3, '0')}`, `sub${d % 7}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < perDir && d * perDir + f < files; f++) {
      const size = 1024 + Math.floor(rnd() * 7168);
      const line = `export const v${d}_${f} = ${Math.floor(rnd() * 1e9)}; // ${'x'.repeat(Math.floor(rnd() * 40))}\n`;
      const body = Buffer.alloc(size);
      for (let i = 0; i < size; i += line.length) body.write(line, i);
      await writeFile(join(dir, `file${f}.ts`), body);
    }
  }
  const tarball = join(root, 'tree.tar');
  await sh(`tar -cf ${tarball} -C ${tree} .`);
  return tarball;
}

async function main(): Promise<void> {
  const o = args();
  const root = await mkdtemp(join(tmpdir(), 'fragfs-bench-mount-'));
  const env: NodeJS.ProcessEnv = { ...process.env, FRAGFS_PASSPHRASE: 'bench passphrase', FRAGFS_RUNTIME_DIR: join(root, 'run') };
  const store = join(root, 'store');
  const mnt = join(root, 'mnt');
  await mkdir(mnt);
  const log = (s: string) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  const fragfs = (a: string) => sh(`${JSON.stringify(process.execPath)} ${CLI} ${a}`, env);
  let pid = 0;
  const mount = async () => {
    await fragfs(`mount ${store} ${mnt} --background`);
    const rec = JSON.parse(await sh(`cat ${env['FRAGFS_RUNTIME_DIR']}/*.json`)) as { pid: number };
    pid = rec.pid;
  };
  const results: Phase[] = [];
  const add = (phase: string, value: number, unit: string, m: { seconds: number; peakRssMiB: number; peakAnonMiB: number }) => {
    results.push({ phase, value, unit, seconds: m.seconds, peakRssMiB: m.peakRssMiB, peakAnonMiB: m.peakAnonMiB });
    log(`${phase}: ${value.toFixed(2)} ${unit} (${m.seconds.toFixed(2)} s, peak RSS ${m.peakRssMiB.toFixed(0)} MiB, anon ${m.peakAnonMiB.toFixed(0)} MiB)`);
  };
  try {
    log(`preparing ${o.sizeMiB} MiB of random data and a ${o.files}-file tarball in ${root}`);
    const src = join(root, 'random.bin');
    await writeRandomFile(src, o.sizeMiB << 20);
    const tarball = await makeTarball(root, o.files);
    await fragfs(`init ${store}`);
    await mount();
    const bytes = o.sizeMiB * 1024 * 1024;

    // Source in page cache and nothing left to write back (the source, the tarball): measure the
    // mount, not the disk catching up with what the preparation wrote.
    await sh(`cat ${src} > /dev/null; sync`);
    const w = await measured(() => pid, () => sh(`dd if=${src} of=${mnt}/big bs=1M conv=fsync 2>/dev/null`));
    add('sequential write (dd bs=1M conv=fsync)', bytes / 1e6 / w.seconds, 'MB/s', w);

    await fragfs(`umount ${mnt}`);
    await sh('sync; echo 3 > /proc/sys/vm/drop_caches');
    await mount();
    const rc = await measured(() => pid, () => sh(`dd if=${mnt}/big of=/dev/null bs=1M 2>/dev/null`));
    add('sequential read, cold (remount + drop_caches)', bytes / 1e6 / rc.seconds, 'MB/s', rc);
    const rw = await measured(() => pid, () => sh(`dd if=${mnt}/big of=/dev/null bs=1M 2>/dev/null`));
    add('sequential read, warm', bytes / 1e6 / rw.seconds, 'MB/s', rw);

    const ut = await measured(() => pid, () => sh(`mkdir ${mnt}/tree && tar -xf ${tarball} -C ${mnt}/tree`));
    add('untar small files', o.files / ut.seconds, 'files/s', ut);
    const fd = await measured(() => pid, () => sh(`find ${mnt}/tree | wc -l`));
    add('find over the tree', fd.seconds, 's', fd);
    const du = await measured(() => pid, () => sh(`du -s ${mnt}/tree`));
    add('du over the tree', du.seconds, 's', du);

    const first = await measured(() => pid, () => fragfs(`snapshot ${store} --json`));
    add('first snapshot (whole tree)', (JSON.parse(first.result) as { seconds: number }).seconds, 's', first);
    await sh(`echo changed >> ${mnt}/tree/d000/sub0/file0.ts`);
    const snap = await measured(() => pid, () => fragfs(`snapshot ${store} --json`));
    add('snapshot after a one-file change', (JSON.parse(snap.result) as { seconds: number }).seconds, 's', snap);

    const hwm = (await rssKiB(pid, 'VmHWM')) / 1024;
    log(`mount process VmHWM since the remount: ${hwm.toFixed(0)} MiB`);
    await fragfs(`umount ${mnt}`);

    if (o.json) {
      process.stdout.write(`${JSON.stringify({ sizeMiB: o.sizeMiB, files: o.files, results, vmHwmMiB: hwm }, null, 2)}\n`);
    } else {
      const w1 = Math.max(...results.map((r) => r.phase.length));
      process.stdout.write(`\n${'phase'.padEnd(w1)}  ${'result'.padStart(14)}  ${'seconds'.padStart(8)}  peak RSS (anon)\n`);
      for (const r of results) {
        process.stdout.write(
          `${r.phase.padEnd(w1)}  ${`${r.value.toFixed(r.unit === 's' ? 3 : 0)} ${r.unit}`.padStart(14)}  ${r.seconds.toFixed(2).padStart(8)}  ${r.peakRssMiB.toFixed(0)} MiB (${r.peakAnonMiB.toFixed(0)} MiB)\n`,
        );
      }
    }
  } finally {
    await sh(`fusermount -uz ${mnt} 2>/dev/null || true`);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (!o.keep) await rm(root, { recursive: true, force: true });
  }
}

await main();

