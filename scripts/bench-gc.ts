// Garbage collection side by side with restic (a benchmark script, not a test): a tree of small
// files changes over N rounds and each round is saved (fragfs put, restic backup); then half of the
// snapshots are forgotten and the space freed (fragfs forget + gc, and forget --gc in one run; restic
// forget --prune). Prints
// the store's fragments, the time and peak memory of gc without and with a read-write mount of the
// store running (and writing), and the bytes each tool freed.
//
//   node dist/scripts/bench-gc.js [--files 22000] [--rounds 20] [--change 0.2] [--backend dir] [--json] [--keep]
//     [--stop-before-gc]   (with --keep: leaves the store forgotten and ready, to profile gc by hand)
//
// The dir backend is the default here because its folder shrinks as gc frees (du shows it, as it
// does for restic); an lmdb store keeps freed pages for reuse, so there only the freed fragment
// bytes tell.
//
// Needs restic on PATH for the side-by-side figures (scripts/install-peers.sh), and /dev/fuse for
// the run beside a mount.

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', 'bin', 'main.js');
const PASS = 'bench-gc passphrase';

interface Args {
  files: number;
  rounds: number;
  change: number;
  json: boolean;
  keep: boolean;
  backend: string;
}

function args(): Args {
  const a = process.argv.slice(2);
  const num = (flag: string, dflt: number) => {
    const i = a.indexOf(flag);
    return i >= 0 ? Number(a[i + 1]) : dflt;
  };
  const b = a.indexOf('--backend');
  return {
    files: num('--files', 22_000),
    rounds: num('--rounds', 20),
    change: num('--change', 0.2),
    json: a.includes('--json'),
    keep: a.includes('--keep'),
    backend: b >= 0 ? a[b + 1]! : 'dir',
  };
}

const env = { ...process.env, FRAGFS_PASSPHRASE: PASS, RESTIC_PASSWORD: PASS };

function run(cmd: string[], o: { cwd?: string } = {}): Promise<{ out: string; seconds: number; maxRssMiB: number }> {
  // GNU time's %M: the peak resident set of the command, in KiB.
  const started = process.hrtime.bigint();
  return new Promise((res, rej) =>
    execFile('/usr/bin/time', ['-f', '%M', ...cmd], { env, cwd: o.cwd, maxBuffer: 256 << 20 }, (err, out, errOut) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const lines = errOut.trim().split('\n');
      const maxRssMiB = Number(lines.at(-1)) / 1024;
      if (err) rej(new Error(`${cmd.join(' ')}: ${errOut || err.message}`));
      else res({ out, seconds, maxRssMiB });
    }),
  );
}

async function duBytes(path: string): Promise<number> {
  const r = await run(['du', '-sb', path]);
  return Number(r.out.split(/\s/)[0]);
}

/** Files of 1-4 KiB of text-like random bytes in 100 folders; `round` > 0 rewrites a share of them. */
async function makeTree(root: string, files: number, change: number, round: number): Promise<void> {
  for (let i = 0; i < files; i++) {
    if (round > 0 && (i * 7919 + round * 104_729) % 1000 >= change * 1000) continue;
    const dir = join(root, `d${i % 100}`, `e${Math.floor(i / 100) % 10}`);
    if (round === 0 && i < 1000) await mkdir(dir, { recursive: true });
    const size = 1024 + ((i * 2654435761) % 3072);
    await writeFile(join(dir, `f${i}.txt`), randomBytes(Math.ceil(size / 2)).toString('hex').slice(0, size));
  }
}

async function fragmentsOf(store: string): Promise<number> {
  const r = await run(['node', CLI, 'stats', store, '--json']);
  const s = JSON.parse(r.out) as { dataFragments: number; metaFragments: number };
  return s.dataFragments + s.metaFragments;
}

async function hasRestic(): Promise<boolean> {
  return new Promise((res) => execFile('restic', ['version'], (err) => res(!err)));
}

async function main(): Promise<void> {
  const a = args();
  const work = await mkdtemp(join(tmpdir(), 'fragfs-bench-gc-'));
  const tree = join(work, 'tree');
  const store = join(work, 'store');
  const restic = join(work, 'restic');
  const withRestic = await hasRestic();
  const out: Record<string, unknown> = { files: a.files, rounds: a.rounds, change: a.change, backend: a.backend };
  try {
    await run(['node', CLI, 'init', store, '--backend', a.backend]);
    if (withRestic) await run(['restic', '-r', restic, 'init', '-q']);
    let putSeconds = 0;
    let backupSeconds = 0;
    for (let round = 0; round < a.rounds; round++) {
      await makeTree(tree, a.files, a.change, round);
      putSeconds += (await run(['node', CLI, 'put', store, tree, '--no-progress'])).seconds;
      if (withRestic) backupSeconds += (await run(['restic', '-r', restic, 'backup', '-q', '--host', 'bench', '.'], { cwd: tree })).seconds;
      process.stderr.write(`round ${round + 1}/${a.rounds}\n`);
    }
    out['putSeconds'] = putSeconds;
    out['resticBackupSeconds'] = withRestic ? backupSeconds : null;
    out['fragments'] = await fragmentsOf(store);
    const keep = String(Math.ceil(a.rounds / 2));

    // One copy for `forget --gc`, the one-command form restic's `forget --prune` is.
    const oneRun = join(work, 'store-forget-gc');
    await run(['cp', '-a', store, oneRun]);
    // fragfs: forget half, then gc on two copies: alone, and beside a mount that writes.
    const forget = await run(['node', CLI, 'forget', store, '--keep-last', keep]);
    out['forgetSeconds'] = forget.seconds;
    const beside = join(work, 'store-beside');
    await run(['cp', '-a', store, beside]);
    if (process.argv.includes('--stop-before-gc')) {
      process.stderr.write(`store ready for gc at ${store} (a copy at ${beside})\n`);
      return;
    }
    const before = await duBytes(store);
    const dry = await run(['node', CLI, 'gc', store, '--dry-run', '--json']);
    const alone = await run(['node', CLI, 'gc', store, '--json']);
    const after = await duBytes(store);
    const report = JSON.parse(alone.out) as { freed: number; freedBytes: number };
    out['gc'] = {
      seconds: alone.seconds,
      peakRssMiB: alone.maxRssMiB,
      freedFragments: report.freed,
      freedBytes: report.freedBytes,
      storeBytesBefore: before,
      storeBytesAfter: after,
      dryRunSeconds: dry.seconds,
      dryRunFreedBytes: (JSON.parse(dry.out) as { unreferencedBytes: number }).unreferencedBytes,
    };
    const mp = join(work, 'mnt');
    await mkdir(mp);
    let mounted = false;
    try {
      await run(['node', CLI, 'mount', beside, mp, '--background']);
      mounted = true;
    } catch (e) {
      out['gcBesideMount'] = `not measured: ${(e as Error).message.split('\n')[0]}`;
    }
    if (mounted) {
      const writer = spawn('bash', ['-c', `i=0; while :; do i=$((i+1)); head -c 200000 /dev/urandom > ${mp}/w$((i % 50)); done`], { stdio: 'ignore' });
      try {
        const b = await run(['node', CLI, 'gc', beside, '--json']);
        const r = JSON.parse(b.out) as { freed: number; freedBytes: number; waitingFor: string[] };
        out['gcBesideMount'] = { seconds: b.seconds, peakRssMiB: b.maxRssMiB, freedFragments: r.freed, freedBytes: r.freedBytes, waitedFor: r.waitingFor };
      } finally {
        writer.kill('SIGKILL');
        await run(['node', CLI, 'umount', mp]).catch(() => undefined);
      }
      const v = await run(['node', CLI, 'verify', beside, '--no-progress']).catch((e: Error) => ({ out: e.message, seconds: 0, maxRssMiB: 0 }));
      (out['gcBesideMount'] as Record<string, unknown>)['verify'] = v.out.trim().split('\n').at(-1);
    }

    if (withRestic) {
      const rBefore = await duBytes(restic);
      const p = await run(['restic', '-r', restic, 'forget', '-q', '--keep-last', keep, '--prune']);
      const rAfter = await duBytes(restic);
      out['restic'] = { seconds: p.seconds, peakRssMiB: p.maxRssMiB, freedBytes: rBefore - rAfter, repoBytesBefore: rBefore, repoBytesAfter: rAfter };
    }
    {
      const before = await duBytes(oneRun);
      const f = await run(['node', CLI, 'forget', oneRun, '--keep-last', keep, '--gc', '--json']);
      const after = await duBytes(oneRun);
      const r = JSON.parse(f.out) as { gc: { freed: number; freedBytes: number; ms: number } };
      out['forgetGc'] = { seconds: f.seconds, peakRssMiB: f.maxRssMiB, gcSeconds: r.gc.ms / 1000, freedFragments: r.gc.freed, freedBytes: before - after, storeBytesBefore: before, storeBytesAfter: after };
    }
    if (a.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    else {
      const g = out['gc'] as { seconds: number; peakRssMiB: number; freedBytes: number; storeBytesBefore: number; storeBytesAfter: number; freedFragments: number };
      const r = out['restic'] as { seconds: number; freedBytes: number } | undefined;
      process.stdout.write(`${a.rounds} snapshots of ${a.files} files (${a.change * 100}% changed a round): ${String(out['fragments'])} fragments\n`);
      process.stdout.write(
        `fragfs gc (${a.backend}): ${g.seconds.toFixed(2)} s, peak ${g.peakRssMiB.toFixed(0)} MiB, freed ${g.freedFragments} fragments of ${g.freedBytes} bytes; ` +
          `store ${g.storeBytesBefore} -> ${g.storeBytesAfter} bytes on disk\n`,
      );
      process.stdout.write(`beside a writing mount: ${JSON.stringify(out['gcBesideMount'])}\n`);
      if (r) {
        process.stdout.write(`restic forget --prune: ${JSON.stringify(r)}\n`);
        process.stdout.write(
          `fragfs forget + gc / restic forget --prune: time ${((forget.seconds + g.seconds) / r.seconds).toFixed(2)}x, on-disk bytes freed ${((g.storeBytesBefore - g.storeBytesAfter) / r.freedBytes).toFixed(2)}x\n`,
        );
        const fg = out['forgetGc'] as { seconds: number; peakRssMiB: number; freedBytes: number };
        process.stdout.write(
          `fragfs forget --gc: ${JSON.stringify(fg)}\n` +
            `fragfs forget --gc / restic forget --prune: time ${(fg.seconds / r.seconds).toFixed(2)}x, on-disk bytes freed ${(fg.freedBytes / r.freedBytes).toFixed(2)}x, peak memory ${(fg.peakRssMiB / (out['restic'] as { peakRssMiB: number }).peakRssMiB).toFixed(2)}x\n`,
        );
      }
    }
  } finally {
    if (!a.keep) await rm(work, { recursive: true, force: true });
    else process.stderr.write(`kept ${work}\n`);
  }
}

await main();
