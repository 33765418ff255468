// fragfs on an S3 service side by side with restic (first and second backup of the bench's mixed tree)
// and rclone mount (a cold sequential read of the tree's large files), in one run against one Ceph
// radosgw this script starts on loopback (scripts/servers/s3.sh) and stops at the end, also on an
// error or SIGINT. Every tool talks to the service through a counting proxy started here, so the
// requests each one makes are counted by kind. Prints a markdown table; writes results.json and
// results.md under bench-results/. A benchmark script, not a test.
//
//   npx tsc -p tsconfig.json && node dist/scripts/bench-remote.js [--size 1G] [--keep] [--out DIR] [--tmp DIR]
//
// Needs root (to drop the page cache before cold reads), /dev/fuse, restic, rclone, and Ceph (ceph-mon,
// ceph-osd, ceph-mgr, radosgw) for the server.

import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupNow, installCleanupHandlers } from './bench/cleanup.js';
import { BENCH_PASSPHRASE, FRAGFS_MAIN, fragfs } from './bench/fragfs-cli.js';
import { adoptMount, apparentBytes, canDropCaches, dropCaches, fuseUnmount, isMounted, rmrf, waitMounted } from './bench/fs-util.js';
import { machineInfo } from './bench/machine.js';
import { makeMixedTrees } from './bench/mixed-tree.js';
import { q, run, which, type CmdOptions, type CmdResult } from './bench/proc.js';
import { diffCounts, startCountingProxy, type CountingProxy, type ProxyCounts } from './bench/s3-proxy.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const S3_SH = join(REPO, 'scripts', 'servers', 's3.sh');
const BUCKET = 'bench';
const FRAGFS_URL = `s3://${BUCKET}/fragfs`;
const RESTIC_PASSWORD = 'bench-passphrase';
const REGION = 'us-east-1';
const STEP_MS = 45 * 60_000;
const MB = 1e6;
const MiB = 1 << 20;

const USAGE = `usage: node dist/scripts/bench-remote.js [options]
  --size SIZE   bytes of the mixed tree, e.g. 256M, 1G (default 1G; M and G are MiB and GiB)
  --keep        keep the scratch folder (trees, caches, the server's folder and logs)
  --out DIR     results folder (default bench-results/<timestamp>-remote)
  --tmp DIR     scratch folder (default the OS temp folder)
`;

interface Options {
  size: number;
  keep: boolean;
  out: string;
  tmp: string;
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(s.trim());
  if (!m) throw new Error(`not a size: ${s} (e.g. 256M, 1G)`);
  const mult = { '': 1, K: 1 << 10, M: MiB, G: 1 << 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.round(Number(m[1]) * mult);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { size: 1 << 30, keep: false, out: '', tmp: tmpdir() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--size': o.size = parseSize(val()); break;
      case '--keep': o.keep = true; break;
      case '--out': o.out = val(); break;
      case '--tmp': o.tmp = val(); break;
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (o.size < 16 * MiB) throw new Error('--size is at least 16M');
  return o;
}

const log = (line: string): void => void process.stderr.write(line + '\n');

/** One measured command: its wall time and what went through the proxy meanwhile. */
interface Measured {
  seconds: number;
  traffic: ProxyCounts;
  /** The command's own CPU seconds (user + system, its children included) and peak RSS, by GNU time. */
  cpuSeconds?: number;
  maxRssMiB?: number;
}

interface BackupFigures {
  first: Measured & { storedBytes: number; objects: number; summary?: unknown };
  second: Measured & { storedBytes: number; objects: number; growthBytes: number; summary?: unknown };
  init: Measured;
}

interface ReadFigures extends Measured {
  bytes: number;
  mbPerSecond: number;
  mount: Measured;
  unmountSeconds: number;
}

interface CommandRecord {
  step: string;
  command: string;
}

/** The environment every child gets: the machine's, without anything that would steer the tools elsewhere. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(AWS_|RCLONE_|RESTIC_|FRAGFS_)/.test(k)) delete env[k];
  return env;
}

/**
 * The same, for this process itself (children it starts through helpers that merge process.env, like
 * fragfs-cli.ts's): AWS_CA_BUNDLE in particular, which rclone refuses to start with (LoadCustomCABundleError).
 */
function scrubOwnEnv(): void {
  for (const k of Object.keys(process.env)) if (/^(AWS_|RCLONE_|RESTIC_|FRAGFS_)/.test(k)) delete process.env[k];
}

/** The env vars a command was given beyond baseEnv, secrets masked, for the report. */
function shown(env: NodeJS.ProcessEnv, argv: string[], cwd?: string): string {
  const base = baseEnv();
  const vars = Object.entries(env)
    .filter(([k, v]) => v !== undefined && base[k] !== v && k !== 'UV_THREADPOOL_SIZE')
    .map(([k, v]) => `${k}=${/SECRET|PASSWORD|PASSPHRASE|ACCESS_KEY/.test(k) ? '…' : q(v!)}`);
  const cmd = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) || ['>', '|', '&&'].includes(a) ? a : q(a))).join(' ');
  return `${cwd ? `(cd ${q(cwd)} && ` : ''}${vars.join(' ')}${vars.length ? ' ' : ''}${cmd}${cwd ? ')' : ''}`;
}

async function toolVersion(argv: string[]): Promise<string> {
  const r = await run(argv, { allowFail: true, env: baseEnv() });
  return (r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? 'unknown';
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  installCleanupHandlers();
  scrubOwnEnv();
  const t0 = Date.now();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const outDir = resolve(opts.out || join('bench-results', `${date.replace(/:/g, '-')}-remote`));

  for (const tool of ['restic', 'rclone', 'fusermount', 'radosgw', 'ceph-mon', 'ceph-osd']) if (!(await which(tool))) throw new Error(`${tool} is not on PATH`);
  try {
    await stat(FRAGFS_MAIN);
  } catch {
    throw new Error(`${FRAGFS_MAIN} does not exist: build first (npx tsc -p tsconfig.json)`);
  }
  const hasGnuTime = await stat('/usr/bin/time').then(() => true, () => false);
  const drop = canDropCaches();
  if (!drop) log('NOTE: not root: the page cache cannot be dropped, so the "cold" reads are only freshly mounted');

  const tmp = await mkdtemp(join(opts.tmp, 'fragfs-bench-remote-'));
  const s3Dir = join(tmp, 's3');
  let s3Running = false;
  let proxy: CountingProxy | undefined;
  let s3: S3Client | undefined;
  const stopS3 = (): void => {
    if (!s3Running) return;
    s3Running = false;
    spawnSync('bash', [S3_SH, 'stop', s3Dir], { stdio: 'ignore', timeout: 60_000 });
  };
  // On any exit (cleanup.ts unmounts and kills what it registered first, this listener runs after).
  process.on('exit', () => {
    stopS3();
    if (!opts.keep) rmSync(tmp, { recursive: true, force: true });
  });

  const commands: CommandRecord[] = [];
  const notes: string[] = [];
  try {
    log(`fragfs remote bench: ${opts.size / MiB} MiB mixed tree; scratch ${tmp}`);
    let tp = Date.now();
    const trees = await makeMixedTrees(tmp, opts.size);
    const nextBytes = await apparentBytes(trees.next);
    const media = [0, 1, 2, 3].map((i) => join('media', `large${i}.bin`));
    let mediaBytes = 0;
    for (const m of media) mediaBytes += (await stat(join(trees.next, m))).size;
    log(`trees ready in ${((Date.now() - tp) / 1000).toFixed(1)} s: base ${(trees.baseBytes / MB).toFixed(0)} MB in ${trees.files} files, next ${(nextBytes / MB).toFixed(0)} MB (${(trees.changedBytes / MB).toFixed(1)} MB changed)`);

    // The server, and the proxy every measured command goes through.
    tp = Date.now();
    s3Running = true;
    await run(['bash', S3_SH, 'start', s3Dir], { env: baseEnv(), signal: AbortSignal.timeout(180_000) });
    const server: Record<string, string> = {};
    for (const line of readFileSync(join(s3Dir, 'env'), 'utf8').split('\n')) {
      const m = /^export (\w+)=(.*)$/.exec(line.trim());
      if (m) server[m[1]!] = m[2]!;
    }
    const endpoint = server['FRAGFS_TEST_S3_ENDPOINT']!;
    const accessKeyId = server['FRAGFS_TEST_S3_ACCESS_KEY']!;
    const secretAccessKey = server['FRAGFS_TEST_S3_SECRET_KEY']!;
    log(`radosgw on ${endpoint} in ${((Date.now() - tp) / 1000).toFixed(1)} s`);
    proxy = await startCountingProxy(endpoint);
    const px = proxy;
    log(`counting proxy on ${px.endpoint}`);
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    s3 = new S3Client({ endpoint, forcePathStyle: true, region: REGION, credentials: { accessKeyId, secretAccessKey } });
    const client = s3;
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));

    const listed = async (prefix: string): Promise<{ bytes: number; objects: number }> => {
      let bytes = 0;
      let objects = 0;
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
        for (const o of r.Contents ?? []) {
          bytes += o.Size ?? 0;
          objects++;
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token !== undefined);
      return { bytes, objects };
    };

    const keys = { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: REGION };
    const fragfsEnv = (ep: string, cacheDir: string): NodeJS.ProcessEnv => ({ ...baseEnv(), ...keys, AWS_ENDPOINT_URL: ep, FRAGFS_CACHE_DIR: cacheDir });
    const resticEnv: NodeJS.ProcessEnv = { ...baseEnv(), ...keys, RESTIC_PASSWORD, RESTIC_CACHE_DIR: join(tmp, 'restic-cache') };
    const rcloneEnv = (ep: string): NodeJS.ProcessEnv => ({
      ...baseEnv(),
      RCLONE_CONFIG: '/dev/null',
      RCLONE_S3_PROVIDER: 'Ceph',
      RCLONE_S3_ENDPOINT: ep,
      RCLONE_S3_ACCESS_KEY_ID: accessKeyId,
      RCLONE_S3_SECRET_ACCESS_KEY: secretAccessKey,
    });
    const resticRepo = `s3:${px.endpoint}/${BUCKET}/restic`;

    /** Runs one command through the proxy and measures it; `fragfsCmd` runs dist/bin/main.js. */
    const measure = async (step: string, argv: string[], o: CmdOptions & { fragfsCmd?: boolean; dropFirst?: boolean; display?: string[] }): Promise<Measured & { result: CmdResult }> => {
      const env = o.fragfsCmd ? { ...o.env, FRAGFS_PASSPHRASE: BENCH_PASSPHRASE } : o.env ?? baseEnv();
      commands.push({ step, command: shown(env, o.display ?? (o.fragfsCmd ? ['node', 'dist/bin/main.js', ...argv] : argv), o.cwd) });
      if (o.dropFirst && drop) dropCaches();
      const before = px.counts();
      px.resetPeak();
      const runOpts: CmdOptions = { env, cwd: o.cwd, shell: o.shell, signal: AbortSignal.timeout(STEP_MS) };
      // GNU time around a plain command (not a shell pipeline): its CPU time tells where the wall time went.
      const timeIt = !o.shell && hasGnuTime;
      const full = o.fragfsCmd ? [process.execPath, FRAGFS_MAIN, ...argv] : argv;
      const result = await run(timeIt ? ['/usr/bin/time', '-f', 'GNUTIME %U %S %M', ...full] : full, runOpts);
      const traffic = diffCounts(px.counts(), before);
      const tm = /GNUTIME ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(result.stderr);
      const cpu = tm ? { cpuSeconds: Number(tm[1]) + Number(tm[2]), maxRssMiB: Number(tm[3]) / 1024 } : {};
      log(`  ${step}: ${result.seconds.toFixed(2)} s${cpu.cpuSeconds !== undefined ? ` (CPU ${cpu.cpuSeconds.toFixed(1)} s)` : ''}, ${requestsCell(traffic)}`);
      return { seconds: result.seconds, traffic, result, ...cpu };
    };

    // The tree sits at the same path for both backups (parent/tree), so both tools find the first
    // backup as the second's parent by path (as scripts/bench/workload-backup.ts does).
    const parent = join(tmp, 'backup-src');
    await mkdir(parent);
    const treePath = join(parent, 'tree');
    const asTree = async <T>(dir: string, f: () => Promise<T>): Promise<T> => {
      await rename(dir, treePath);
      try {
        return await f();
      } finally {
        await rename(treePath, dir);
      }
    };

    // 1. fragfs: init, put base, put next.
    log('fragfs put:');
    const fEnv = fragfsEnv(px.endpoint, join(tmp, 'fragfs-cache'));
    const fInit = await measure('fragfs init', ['init', FRAGFS_URL], { env: fEnv, fragfsCmd: true });
    const fPut1 = await asTree(trees.base, () => measure('fragfs put (first)', ['put', FRAGFS_URL, treePath, '--no-progress', '--json'], { env: fEnv, fragfsCmd: true, dropFirst: true }));
    const fStored1 = await listed('fragfs/');
    const fPut2 = await asTree(trees.next, () => measure('fragfs put (second)', ['put', FRAGFS_URL, treePath, '--no-progress', '--json'], { env: fEnv, fragfsCmd: true, dropFirst: true }));
    const fStored2 = await listed('fragfs/');
    const put1Json = JSON.parse(fPut1.result.stdout) as Record<string, unknown>;
    const put2Json = JSON.parse(fPut2.result.stdout) as { key: string } & Record<string, unknown>;
    const snapshotKey = put2Json.key;
    if (put2Json['parent'] !== put1Json['key']) notes.push(`fragfs: the second put did not take the first as its parent (parent ${String(put2Json['parent'])})`);
    // Store statistics, straight to the service (outside any measured step).
    const fStats = JSON.parse((await fragfs(['stats', FRAGFS_URL, '--json'], { env: fragfsEnv(endpoint, join(tmp, 'fragfs-cache')) })).stdout) as Record<string, unknown>;
    const fragfsBackup: BackupFigures = {
      init: { seconds: fInit.seconds, traffic: fInit.traffic, cpuSeconds: fInit.cpuSeconds },
      first: { seconds: fPut1.seconds, traffic: fPut1.traffic, cpuSeconds: fPut1.cpuSeconds, maxRssMiB: fPut1.maxRssMiB, storedBytes: fStored1.bytes, objects: fStored1.objects, summary: put1Json },
      second: { seconds: fPut2.seconds, traffic: fPut2.traffic, cpuSeconds: fPut2.cpuSeconds, maxRssMiB: fPut2.maxRssMiB, storedBytes: fStored2.bytes, objects: fStored2.objects, growthBytes: fStored2.bytes - fStored1.bytes, summary: put2Json },
    };

    // 2. restic: init, backup base, backup next (from the same path, so the first is the parent).
    log('restic backup:');
    const summaryOf = (out: string): unknown => {
      const line = out.trim().split('\n').reverse().find((l) => l.includes('"message_type":"summary"'));
      return line ? (JSON.parse(line) as unknown) : undefined;
    };
    const rInit = await measure('restic init', ['restic', '-r', resticRepo, 'init', '-q'], { env: resticEnv });
    const rB1 = await asTree(trees.base, () => measure('restic backup (first)', ['restic', '-r', resticRepo, 'backup', '--json', '--host', 'bench', 'tree'], { env: resticEnv, cwd: parent, dropFirst: true }));
    const rStored1 = await listed('restic/');
    const rB2 = await asTree(trees.next, () => measure('restic backup (second)', ['restic', '-r', resticRepo, 'backup', '--json', '--host', 'bench', 'tree'], { env: resticEnv, cwd: parent, dropFirst: true }));
    const rStored2 = await listed('restic/');
    const r2Summary = summaryOf(rB2.result.stdout) as { files_unmodified?: number } | undefined;
    const resticBackup: BackupFigures = {
      init: { seconds: rInit.seconds, traffic: rInit.traffic, cpuSeconds: rInit.cpuSeconds },
      first: { seconds: rB1.seconds, traffic: rB1.traffic, cpuSeconds: rB1.cpuSeconds, maxRssMiB: rB1.maxRssMiB, storedBytes: rStored1.bytes, objects: rStored1.objects, summary: summaryOf(rB1.result.stdout) },
      second: { seconds: rB2.seconds, traffic: rB2.traffic, cpuSeconds: rB2.cpuSeconds, maxRssMiB: rB2.maxRssMiB, storedBytes: rStored2.bytes, objects: rStored2.objects, growthBytes: rStored2.bytes - rStored1.bytes, summary: r2Summary },
    };
    if (!r2Summary?.files_unmodified) notes.push('restic: the second backup found no unmodified files (no parent snapshot?)');

    // 3. Cold sequential read of the four large files of the second snapshot, each tool through the
    // proxy (counted) and then straight to radosgw (to show the proxy is not what limits the read).
    const readThrough = async (who: string, mp: string, mountStep: () => Promise<Measured>, unmount: (pid: number | undefined) => Promise<void>): Promise<ReadFigures> => {
      await mkdir(mp, { recursive: true });
      const mount = await mountStep();
      await waitMounted(mp, 30_000);
      const pid = adoptMount(mp);
      try {
        for (const m of media) {
          const want = (await stat(join(trees.next, m))).size;
          const got = (await stat(join(mp, m))).size;
          if (got !== want) throw new Error(`${who}: ${m} is ${got} bytes in the mount, ${want} in the tree`);
        }
        const files = media.map((m) => join(mp, m));
        const read = await measure(`${who} cold read`, ['cat', ...files.map(q), '>', '/dev/null'], { shell: true, dropFirst: true, display: ['cat', ...files, '>', '/dev/null'] });
        const tu = Date.now();
        await unmount(pid);
        return { seconds: read.seconds, traffic: read.traffic, bytes: mediaBytes, mbPerSecond: mediaBytes / MB / read.seconds, mount, unmountSeconds: (Date.now() - tu) / 1000 };
      } finally {
        if (isMounted(mp)) await fuseUnmount(mp, pid);
      }
    };

    const fragfsReadVia = async (via: 'proxy' | 'direct'): Promise<ReadFigures> => {
      log(`fragfs mount (${via}), cold read:`);
      // A fresh cache folder each time: nothing of the store is on this machine before the mount.
      const readCache = await mkdtemp(join(tmp, `fragfs-read-cache-${via}-`));
      const env = fragfsEnv(via === 'proxy' ? px.endpoint : endpoint, readCache);
      const mp = join(tmp, `mnt-fragfs-${via}`);
      return readThrough(
        `fragfs (${via})`,
        mp,
        () => measure(`fragfs mount (${via})`, ['mount', FRAGFS_URL, mp, '--background', '--snapshot', snapshotKey], { env, fragfsCmd: true }),
        async (pid) => {
          commands.push({ step: `fragfs umount (${via})`, command: `node dist/bin/main.js umount ${mp}` });
          await fragfs(['umount', mp], { env, signal: AbortSignal.timeout(120_000) });
          await fuseUnmount(mp, pid);
        },
      );
    };
    const fragfsRead = await fragfsReadVia('proxy');
    const fragfsReadDirect = await fragfsReadVia('direct');

    log('rclone copy (setup, not measured):');
    const rcloneSrc = `:s3:${BUCKET}/rclone`;
    const copyArgv = ['rclone', 'copy', join(trees.next, 'media'), `${rcloneSrc}/media`];
    commands.push({ step: 'rclone copy (setup, straight to radosgw)', command: shown(rcloneEnv(endpoint), copyArgv) });
    tp = Date.now();
    await run(copyArgv, { env: rcloneEnv(endpoint), signal: AbortSignal.timeout(STEP_MS) });
    log(`  rclone copy: ${((Date.now() - tp) / 1000).toFixed(2)} s`);
    const rcloneStored = await listed('rclone/');
    const rcloneReadVia = async (via: 'proxy' | 'direct'): Promise<ReadFigures> => {
      log(`rclone mount (${via}), cold read:`);
      const mp = join(tmp, `mnt-rclone-${via}`);
      const argv = ['rclone', 'mount', rcloneSrc, mp, '--read-only', '--vfs-cache-mode', 'off', '--daemon', '-q'];
      return readThrough(
        `rclone (${via})`,
        mp,
        () => measure(`rclone mount (${via})`, argv, { env: rcloneEnv(via === 'proxy' ? px.endpoint : endpoint) }),
        async (pid) => {
          commands.push({ step: `rclone unmount (${via})`, command: `fusermount -u ${mp}` });
          await fuseUnmount(mp, pid);
        },
      );
    };
    const rcloneRead = await rcloneReadVia('proxy');
    const rcloneReadDirect = await rcloneReadVia('direct');

    // Results.
    const versions = {
      fragfs: `${(await toolVersion([process.execPath, FRAGFS_MAIN, '--version'])).trim()} (${await gitRev()})`,
      restic: await toolVersion(['restic', 'version']),
      rclone: await toolVersion(['rclone', 'version']),
      radosgw: await toolVersion(['radosgw', '--version']),
      node: process.version,
    };
    const ratio = (a: number, b: number): number | null => (b > 0 && Number.isFinite(a / b) ? a / b : null);
    const ratios = {
      'fragfs/restic': {
        firstSeconds: ratio(fragfsBackup.first.seconds, resticBackup.first.seconds),
        storedAfterFirst: ratio(fragfsBackup.first.storedBytes, resticBackup.first.storedBytes),
        firstRequests: ratio(fragfsBackup.first.traffic.total, resticBackup.first.traffic.total),
        secondSeconds: ratio(fragfsBackup.second.seconds, resticBackup.second.seconds),
        growthBySecond: ratio(fragfsBackup.second.growthBytes, resticBackup.second.growthBytes),
        secondRequests: ratio(fragfsBackup.second.traffic.total, resticBackup.second.traffic.total),
        storedInAll: ratio(fragfsBackup.second.storedBytes, resticBackup.second.storedBytes),
      },
      'fragfs/rclone': {
        readMBps: ratio(fragfsRead.mbPerSecond, rcloneRead.mbPerSecond),
        readMBpsDirect: ratio(fragfsReadDirect.mbPerSecond, rcloneReadDirect.mbPerSecond),
        readRequests: ratio(fragfsRead.traffic.total, rcloneRead.traffic.total),
      },
    };
    notes.push(
      `the counting proxy runs in the bench's own process (one thread; "proxy CPU" is that process's CPU time over the step's wall time),` +
        ` on a machine of ${(await machineInfo(tmp)).cores} cores shared with radosgw and the tool measured; the reads are repeated straight to radosgw to show what the proxy costs`,
    );
    notes.push('rclone reads plain objects (no encryption, no chunking); fragfs decrypts and reassembles 1 MiB fragments');
    if (!drop) notes.push('not root: the page cache was not dropped before reads');

    const res = {
      kind: 'remote',
      date,
      machine: await machineInfo(tmp),
      service: `Ceph radosgw (scripts/servers/s3.sh: one mon, one memstore OSD, beast frontend) on 127.0.0.1, through a counting proxy`,
      size: {
        requested: opts.size,
        baseBytes: trees.baseBytes,
        nextBytes,
        changedBytes: trees.changedBytes,
        files: trees.files,
        mediaFiles: media,
        mediaBytes,
      },
      versions,
      backup: { fragfs: fragfsBackup, restic: resticBackup, fragfsStats: fStats },
      read: { fragfs: fragfsRead, rclone: rcloneRead, fragfsDirect: fragfsReadDirect, rcloneDirect: rcloneReadDirect, rcloneStoredBytes: rcloneStored.bytes },
      ratios,
      commands,
      notes,
      totalSeconds: (Date.now() - t0) / 1000,
    };
    const md = renderMarkdown(res);
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'results.json'), JSON.stringify(res, null, 2) + '\n');
    await writeFile(join(outDir, 'results.md'), md);
    process.stdout.write('\n' + md + `\nresults: ${outDir}/results.md, results.json (${res.totalSeconds.toFixed(0)} s in all)\n`);
  } finally {
    cleanupNow();
    s3?.destroy();
    await proxy?.close().catch(() => undefined);
    stopS3();
    if (opts.keep) log(`kept ${tmp}`);
    else await rmrf(tmp).catch(() => undefined);
  }
}

async function gitRev(): Promise<string> {
  const r = await run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], { allowFail: true });
  if (r.code !== 0) return 'no git';
  const dirty = await run(['git', '-C', REPO, 'status', '--porcelain', '--untracked-files=no'], { allowFail: true });
  return `${r.stdout.trim()}${dirty.stdout.trim() ? ' + uncommitted changes' : ''}`;
}

// ---- report ----

function requestsCell(t: ProxyCounts): string {
  const order = ['PUT', 'GET', 'HEAD', 'LIST', 'POST', 'DELETE', 'OTHER'];
  const parts = order.filter((k) => t.requests[k]).map((k) => `${k} ${t.requests[k]}`);
  const misses = [t.notFound ? `${t.notFound} × 404` : '', t.errors ? `${t.errors} errors` : ''].filter(Boolean).join(', ');
  return `${t.total}${parts.length ? ` (${parts.join(', ')})` : ''}${misses ? `; ${misses}` : ''}`;
}

function cpuCell(m: Measured): string {
  return m.cpuSeconds === undefined ? '–' : `${f(m.cpuSeconds)}, ${f(m.maxRssMiB ?? 0, 0)}`;
}

/** Mean request time, mean requests open at once, the proxy's CPU share: where a step's time went. */
function timingCell(m: Measured): string {
  const t = m.traffic;
  if (t.total === 0) return '–';
  return `${f((t.openSeconds / t.total) * 1000)} ms, ${f(t.openSeconds / m.seconds)}, ${f((t.cpuSeconds / m.seconds) * 100, 0)} %`;
}

const f = (n: number, d = 1): string => n.toFixed(d);
const rf = (n: number | null): string => (n === null ? '–' : `${n.toFixed(2)}×`);

interface Report {
  date: string;
  size: { requested: number; baseBytes: number; nextBytes: number; changedBytes: number; files: number; mediaBytes: number };
  versions: Record<string, string>;
  backup: { fragfs: BackupFigures; restic: BackupFigures };
  read: { fragfs: ReadFigures; rclone: ReadFigures; fragfsDirect: ReadFigures; rcloneDirect: ReadFigures };
  ratios: { 'fragfs/restic': Record<string, number | null>; 'fragfs/rclone': Record<string, number | null> };
  commands: CommandRecord[];
  notes: string[];
}

function renderMarkdown(r: Report): string {
  const F = r.backup.fragfs;
  const R = r.backup.restic;
  const rr = r.ratios['fragfs/restic'];
  const out: string[] = [];
  out.push(`# fragfs on S3 (radosgw on loopback), ${r.date}`, '');
  out.push(
    `## Backup: ${f(r.size.baseBytes / MB, 0)} MB mixed tree (${r.size.files} files), then ${f(r.size.changedBytes / MB)} MB of it changed`,
    '',
  );
  out.push('| | fragfs put | restic backup | fragfs/restic |', '|---|---:|---:|---:|');
  out.push(`| first backup, s | ${f(F.first.seconds, 2)} | ${f(R.first.seconds, 2)} | ${rf(rr['firstSeconds'])} |`);
  out.push(`| first backup, MB/s of tree | ${f(r.size.baseBytes / MB / F.first.seconds)} | ${f(r.size.baseBytes / MB / R.first.seconds)} | ${rf(rr['firstSeconds'] ? 1 / rr['firstSeconds'] : null)} |`);
  out.push(`| stored after first, MB (objects) | ${f(F.first.storedBytes / MB)} (${F.first.objects}) | ${f(R.first.storedBytes / MB)} (${R.first.objects}) | ${rf(rr['storedAfterFirst'])} |`);
  out.push(`| requests, first backup | ${requestsCell(F.first.traffic)} | ${requestsCell(R.first.traffic)} | ${rf(rr['firstRequests'])} |`);
  out.push(`| uploaded by first, MB | ${f(F.first.traffic.bytesUp / MB)} | ${f(R.first.traffic.bytesUp / MB)} | ${rf(F.first.traffic.bytesUp / R.first.traffic.bytesUp)} |`);
  out.push(`| most requests in flight, first | ${F.first.traffic.maxInFlight} | ${R.first.traffic.maxInFlight} | |`);
  out.push(`| first: CPU s (user+sys), peak RSS MiB | ${cpuCell(F.first)} | ${cpuCell(R.first)} | |`);
  out.push(`| first: mean request time, mean in flight, proxy CPU | ${timingCell(F.first)} | ${timingCell(R.first)} | |`);
  out.push(`| second backup, s | ${f(F.second.seconds, 2)} | ${f(R.second.seconds, 2)} | ${rf(rr['secondSeconds'])} |`);
  out.push(`| growth by second, MB | ${f(F.second.growthBytes / MB, 2)} | ${f(R.second.growthBytes / MB, 2)} | ${rf(rr['growthBySecond'])} |`);
  out.push(`| requests, second backup | ${requestsCell(F.second.traffic)} | ${requestsCell(R.second.traffic)} | ${rf(rr['secondRequests'])} |`);
  out.push(`| second: CPU s (user+sys), peak RSS MiB | ${cpuCell(F.second)} | ${cpuCell(R.second)} | |`);
  out.push(`| second: mean request time, mean in flight, proxy CPU | ${timingCell(F.second)} | ${timingCell(R.second)} | |`);
  out.push(`| stored in all, MB (objects) | ${f(F.second.storedBytes / MB)} (${F.second.objects}) | ${f(R.second.storedBytes / MB)} (${R.second.objects}) | ${rf(rr['storedInAll'])} |`);
  out.push(`| init: s, requests | ${f(F.init.seconds, 2)}, ${requestsCell(F.init.traffic)} | ${f(R.init.seconds, 2)}, ${requestsCell(R.init.traffic)} | |`);
  out.push('');
  const FR = r.read.fragfs;
  const CR = r.read.rclone;
  const cr = r.ratios['fragfs/rclone'];
  out.push(`## Cold sequential read of the 4 large files (${f(r.size.mediaBytes / MB, 0)} MB) through a read-only mount, page cache dropped`, '');
  out.push('| | fragfs mount --snapshot | rclone mount --vfs-cache-mode off | fragfs/rclone |', '|---|---:|---:|---:|');
  out.push(`| read, MB/s | ${f(FR.mbPerSecond)} | ${f(CR.mbPerSecond)} | ${rf(cr['readMBps'])} |`);
  out.push(`| read, s | ${f(FR.seconds, 2)} | ${f(CR.seconds, 2)} | ${rf(FR.seconds / CR.seconds)} |`);
  out.push(`| read straight to radosgw (no proxy), MB/s | ${f(r.read.fragfsDirect.mbPerSecond)} | ${f(r.read.rcloneDirect.mbPerSecond)} | ${rf(cr['readMBpsDirect'])} |`);
  out.push(`| read: mean request time, mean in flight, proxy CPU | ${timingCell(FR)} | ${timingCell(CR)} | |`);
  out.push(`| requests during read | ${requestsCell(FR.traffic)} | ${requestsCell(CR.traffic)} | ${rf(cr['readRequests'])} |`);
  out.push(`| downloaded during read, MB | ${f(FR.traffic.bytesDown / MB)} | ${f(CR.traffic.bytesDown / MB)} | ${rf(FR.traffic.bytesDown / CR.traffic.bytesDown)} |`);
  out.push(`| most requests in flight, read | ${FR.traffic.maxInFlight} | ${CR.traffic.maxInFlight} | |`);
  out.push(`| mount until ready, s (requests) | ${f(FR.mount.seconds, 2)} (${FR.mount.traffic.total}) | ${f(CR.mount.seconds, 2)} (${CR.mount.traffic.total}) | |`);
  out.push(`| mount until ready, straight, s | ${f(r.read.fragfsDirect.mount.seconds, 2)} | ${f(r.read.rcloneDirect.mount.seconds, 2)} | |`);
  out.push(`| unmount, s | ${f(FR.unmountSeconds, 2)} | ${f(CR.unmountSeconds, 2)} | |`);
  out.push('');
  out.push('MB = 10^6 bytes; stored = the sum of object sizes under each prefix (ListObjectsV2); requests counted by the proxy, LIST = a GET on the bucket; ratio < 1 is fragfs better for times, bytes and requests, > 1 for MB/s.', '');
  out.push('Versions: ' + Object.entries(r.versions).map(([k, v]) => `${k}: ${v}`).join('; '), '');
  out.push(`Commands (the endpoints are the counting proxy's, but for the rclone copy that sets up its bucket):`, '');
  for (const c of r.commands) out.push(`- ${c.step}: \`${c.command}\``);
  out.push('');
  if (r.notes.length) {
    out.push('Notes:', '');
    for (const n of r.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

main().catch((e: unknown) => {
  log(`bench-remote: ${e instanceof Error ? e.message : String(e)}`);
  cleanupNow();
  process.exit(1);
});
