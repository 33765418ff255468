// Many small files side by side (a benchmark script, not a test), for each tree size asked, in one run:
// - fragfs put vs restic backup of the tree: first run (s, peak RSS, store size, objects), then after
//   changing a few files a second run with the parent (s, peak RSS, objects);
// - a fragfs live mount vs gocryptfs: untar of the tree (files/s), du -s (s), two walks (find -ls) with
//   the mount process's own memory (RssAnon) after each, the first fragfs snapshot (s), creating and
//   removing many files in one folder (s);
// - a fragfs snapshot mount of the tree: its own memory after mounting and after each of two walks.
// Writes results.md and results.json under bench-results/<timestamp>-small-files/.
//
//   npm run build && node dist/scripts/bench-small-files.js [--files 300000,1000000] [options]
//
// Every step is bounded in time (--step-timeout); whatever the run mounts or starts is unmounted or
// ended, and its scratch folder removed, on exit, on an error and on SIGINT/SIGTERM.
// Needs /dev/fuse; restic and gocryptfs for the side-by-side figures (scripts/install-peers.sh).

import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cleanupNow, installCleanupHandlers } from './bench/cleanup.js';
import { fmtBytes } from './bench/format.js';
import { canDropCaches, dropCaches, rmrf } from './bench/fs-util.js';
import { machineInfo, type MachineInfo } from './bench/machine.js';
import { fragfsBackupPeer, fragfsMountPeer } from './bench/peer-fragfs.js';
import { fragfsSettings } from './bench/fragfs-cli.js';
import { gocryptfsPeer } from './bench/peer-gocryptfs.js';
import { resticPeer } from './bench/peer-restic.js';
import type { BackupInstance, BackupPeer, MountInstance, MountPeer, StepContext } from './bench/peer.js';
import { q, run } from './bench/proc.js';
import { fmtRatio, markdownTable } from './bench/report-table.js';
import { ownMemoryBytes, PeakRss } from './bench/rss.js';
import { fmtNum } from './bench/runner.js';
import { changeSmallFiles, makeSmallFilesTree, type SmallFilesTree } from './bench/small-files-tree.js';
import { machineLine } from './bench/report-markdown.js';

const MiB = 1 << 20;
const SUBJECT: string = 'fragfs';

const USAGE = `usage: node dist/scripts/bench-small-files.js [options]
  --files LIST         tree sizes in files, comma-separated (default 300000); 1-4 KiB each, 100 a folder
  --changes N          files changed before the second backup (default 10)
  --create N           files created, then removed, in one folder of each mount (default 100000)
  --seed N             seed of the generated tree (default 17)
  --skip LIST          peers to leave out, comma-separated: restic,gocryptfs
  --step-timeout S     bound on one step in seconds (default max(300, 3 ms a file))
  --no-drop-caches     do not drop the page cache and dentries before du and walks (they are dropped as root)
  --out DIR            results folder (default bench-results/<timestamp>-small-files)
  --tmp DIR            scratch folder on the disk to test (default the OS temp folder)
  --keep               keep the scratch folders
  --backend NAME       fragfs store backend: lmdb|dir|split (default lmdb; dir and split pack small fragments)
`;

interface Options {
  files: number[];
  changes: number;
  createFiles: number;
  seed: number;
  skip: string[];
  stepTimeoutS: number | undefined;
  dropCaches: boolean;
  out: string;
  tmp: string;
  keep: boolean;
}

function parseCount(s: string, what: string): number {
  const n = Number(s.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${what}: not a count: ${s}`);
  return n;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { files: [300_000], changes: 10, createFiles: 100_000, seed: 17, skip: [], stepTimeoutS: undefined, dropCaches: true, out: '', tmp: tmpdir(), keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--files': o.files = val().split(',').map((s) => parseCount(s, a)); break;
      case '--changes': o.changes = parseCount(val(), a); break;
      case '--create': o.createFiles = parseCount(val(), a); break;
      case '--seed': o.seed = parseCount(val(), a); break;
      case '--skip': o.skip = val().split(',').map((s) => s.trim()); break;
      case '--step-timeout': o.stepTimeoutS = parseCount(val(), a); break;
      case '--no-drop-caches': o.dropCaches = false; break;
      case '--out': o.out = val(); break;
      case '--tmp': o.tmp = val(); break;
      case '--keep': o.keep = true; break;
      case '--backend': {
        const b = val();
        if (!['lmdb', 'dir', 'split'].includes(b)) throw new Error('--backend is one of lmdb, dir, split');
        fragfsSettings.backend = b as typeof fragfsSettings.backend;
        break;
      }
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (o.files.length === 0 || o.files.some((n) => n < 100)) throw new Error('--files: each size is at least 100');
  return o;
}

const log = (line: string): void => void process.stderr.write(line + '\n');

// ---- figures ----

/** A figure of one peer: its value, or why there is none. */
type Cell = number | { failed: string };

interface Row {
  id: string;
  label: string;
  unit: string;
  better: 'lower' | 'higher';
  cells: Record<string, Cell>;
}

interface FigureTable {
  title: string;
  peers: string[];
  rows: Row[];
}

function table(title: string, peers: string[], rows: [id: string, label: string, unit: string, better: 'lower' | 'higher'][]): FigureTable {
  return { title, peers, rows: rows.map(([id, label, unit, better]) => ({ id, label, unit, better, cells: {} })) };
}

function setCell(t: FigureTable, rowId: string, peer: string, v: Cell): void {
  const row = t.rows.find((r) => r.id === rowId);
  if (!row) throw new Error(`no row ${rowId} in ${t.title}`);
  row.cells[peer] = v;
}

// ---- steps ----

/**
 * One peer's steps in one section, each bounded by the step time. A step that fails or reaches its
 * bound leaves the peer in an unknown state, so the peer's later steps in the section are not run
 * (their figures say why).
 */
class PeerSteps {
  private readonly ac = new AbortController();
  private peak = new PeakRss();
  failed: string | undefined;
  readonly ctx: StepContext;
  readonly failures: string[] = [];

  constructor(
    readonly peer: string,
    workDir: string,
    private readonly stepMs: number,
    drop: boolean,
  ) {
    const self = this;
    this.ctx = {
      get signal() {
        return self.ac.signal;
      },
      workDir,
      get rss() {
        return self.peak;
      },
      dropCaches: drop,
    };
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** fn's value, wall seconds and the peak VmHWM of the commands it ran with ctx.rss; undefined when it failed. */
  async step<T>(name: string, fn: () => Promise<T>): Promise<{ value: T; seconds: number; peakBytes: number | undefined } | undefined> {
    if (this.failed !== undefined) return undefined;
    this.peak.stop();
    this.peak = new PeakRss();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.ac.abort();
        reject(new Error(`timeout after ${this.stepMs / 1000} s`));
      }, this.stepMs);
    });
    const started = process.hrtime.bigint();
    try {
      const value = await Promise.race([fn(), bound]);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      log(`  ${this.peer.padEnd(9)} ${name}: ${seconds.toFixed(2)} s`);
      return { value, seconds, peakBytes: this.peak.peakBytes };
    } catch (e) {
      const why = this.ac.signal.aborted ? `timeout after ${this.stepMs / 1000} s` : (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
      this.failed = `${name}: ${why}`;
      this.failures.push(this.failed);
      log(`  ${this.peer.padEnd(9)} ${name}: FAILED ${why}`);
      return undefined;
    } finally {
      clearTimeout(timer);
      this.peak.stop();
    }
  }

  /** The cell for a figure whose step did not give one. */
  missing(): Cell {
    return { failed: this.failed ?? 'not measured' };
  }
}

/** `find ROOT -ls` to /dev/null: a walk that stats every entry, as ls -lR, du and rsync do. */
function walk(root: string, signal: AbortSignal): Promise<unknown> {
  return run([`find ${q(root)} -ls > /dev/null`], { shell: true, signal });
}

function mib(bytes: number | undefined): Cell {
  return bytes === undefined ? { failed: 'process gone' } : bytes / MiB;
}

// ---- one tree size ----

interface PeerVersions {
  [peer: string]: string;
}

interface SizeResult {
  files: number;
  folders: number;
  plainBytes: number;
  tarBytes: number;
  changedFiles: string[];
  generateSeconds: number;
  tables: FigureTable[];
  failures: string[];
  notes: string[];
}

async function backupSection(tree: SmallFilesTree, tmp: string, peers: BackupPeer[], o: Options, stepMs: number): Promise<{ backup: FigureTable; snap: FigureTable; failures: string[]; changed: string[] }> {
  const names = peers.map((p) => p.name);
  const backup = table(`put vs backup: ${fmtNum(tree.files)} files, then ${o.changes} changed`, names, [
    ['first_s', 'first run', 's', 'lower'],
    ['first_rss', 'first run, peak RSS (VmHWM)', 'MiB', 'lower'],
    ['first_disk', 'store on disk after the first run (du)', 'MiB', 'lower'],
    ['first_size', 'store file sizes after the first run (du -b)', 'MiB', 'lower'],
    ['first_objects', 'objects in the store after the first run', 'objects', 'lower'],
    ['second_s', `second run, ${o.changes} files changed, with the parent`, 's', 'lower'],
    ['second_rss', 'second run, peak RSS (VmHWM)', 'MiB', 'lower'],
    ['second_objects', 'objects added by the second run', 'objects', 'lower'],
  ]);
  const snap = table(`fragfs snapshot mount of the ${fmtNum(tree.files)}-file tree: the mount process's own memory`, [SUBJECT], [
    ['mounted', 'RssAnon after mounting', 'MiB', 'lower'],
    ['walk1_s', 'walk 1 (find -ls)', 's', 'lower'],
    ['walk1', 'RssAnon after walk 1', 'MiB', 'lower'],
    ['walk2_s', 'walk 2 (find -ls)', 's', 'lower'],
    ['walk2', 'RssAnon after walk 2', 'MiB', 'lower'],
  ]);
  const runs: { p: BackupPeer; s: PeerSteps; inst?: BackupInstance; objects?: number }[] = [];
  for (const p of peers) {
    const workDir = join(tmp, `backup-${p.name}`);
    await mkdir(workDir);
    runs.push({ p, s: new PeerSteps(p.name, workDir, stepMs, o.dropCaches) });
  }
  const failures: string[] = [];
  try {
    // Interleaved peer by peer: each run finds the tree in the page cache as the other did.
    for (const r of runs) {
      const made = await r.s.step('create', () => r.p.create(r.s.ctx));
      r.inst = made?.value;
      const first = await r.s.step('first run', () => r.inst!.backup(tree.parent, tree.name));
      setCell(backup, 'first_s', r.p.name, first ? first.seconds : r.s.missing());
      setCell(backup, 'first_rss', r.p.name, first ? mib(first.peakBytes) : r.s.missing());
      const disk = await r.s.step('store size', async () => ({ allocated: await r.inst!.storeBytes(), facts: await r.inst!.storeFacts?.() }));
      setCell(backup, 'first_disk', r.p.name, disk ? disk.value.allocated / MiB : r.s.missing());
      setCell(backup, 'first_size', r.p.name, disk?.value.facts ? disk.value.facts.apparentBytes / MiB : r.s.missing());
      setCell(backup, 'first_objects', r.p.name, disk?.value.facts ? disk.value.facts.objects : r.s.missing());
      r.objects = disk?.value.facts?.objects;
    }
    const changed = await changeSmallFiles(tree, o.changes);
    for (const r of runs) {
      const second = await r.s.step('second run', () => r.inst!.backup(tree.parent, tree.name));
      setCell(backup, 'second_s', r.p.name, second ? second.seconds : r.s.missing());
      setCell(backup, 'second_rss', r.p.name, second ? mib(second.peakBytes) : r.s.missing());
      const facts = await r.s.step('store objects', async () => r.inst!.storeFacts?.());
      setCell(backup, 'second_objects', r.p.name, facts?.value && r.objects !== undefined ? facts.value.objects - r.objects : r.s.missing());
    }
    const f = runs.find((r) => r.p.name === SUBJECT);
    if (f) {
      const view = await f.s.step('snapshot mount', () => f.inst!.openLatest(tree.name));
      if (view) {
        try {
          setCell(snap, 'mounted', SUBJECT, mib(ownMemoryBytes(view.value.pid())));
          for (const w of [1, 2]) {
            if (o.dropCaches) dropCaches();
            const done = await f.s.step(`snapshot mount walk ${w}`, () => walk(view.value.root, f.s.signal));
            setCell(snap, `walk${w}_s`, SUBJECT, done ? done.seconds : f.s.missing());
            setCell(snap, `walk${w}`, SUBJECT, done ? mib(ownMemoryBytes(view.value.pid())) : f.s.missing());
          }
        } finally {
          await view.value.close();
        }
      }
      for (const row of snap.rows) if (!(SUBJECT in row.cells)) row.cells[SUBJECT] = f.s.missing();
    }
    return { backup, snap, failures, changed };
  } finally {
    for (const r of runs) {
      await r.inst?.dispose().catch((e: unknown) => log(`  ${r.p.name}: dispose: ${String(e)}`));
      failures.push(...r.s.failures.map((x) => `${r.p.name}: ${x}`));
      await rmrf(r.s.ctx.workDir);
    }
  }
}

async function mountSection(tree: SmallFilesTree, tmp: string, peers: MountPeer[], o: Options, stepMs: number): Promise<{ mount: FigureTable; failures: string[] }> {
  const mount = table(`live mount: untar of ${fmtNum(tree.files)} files, walks, ${fmtNum(o.createFiles)} files in one folder`, peers.map((p) => p.name), [
    ['untar', 'untar of the tree', 'files/s', 'higher'],
    ['untar_anon', 'RssAnon after the untar', 'MiB', 'lower'],
    ['du', 'du -s of the tree', 's', 'lower'],
    ['walk1_s', 'walk 1 (find -ls)', 's', 'lower'],
    ['walk1', 'RssAnon after walk 1', 'MiB', 'lower'],
    ['walk2_s', 'walk 2 (find -ls)', 's', 'lower'],
    ['walk2', 'RssAnon after walk 2', 'MiB', 'lower'],
    ['snapshot', 'first snapshot after the untar', 's', 'lower'],
    ['snapshot_anon', 'RssAnon after the snapshot', 'MiB', 'lower'],
    ['create', `create ${fmtNum(o.createFiles)} empty files in one folder`, 's', 'lower'],
    ['remove', `remove them (rm -r)`, 's', 'lower'],
  ]);
  const failures: string[] = [];
  for (const p of peers) {
    const workDir = join(tmp, `mount-${p.name}`);
    await mkdir(workDir);
    const s = new PeerSteps(p.name, workDir, stepMs, o.dropCaches);
    let inst: MountInstance | undefined;
    const cell = (id: string, v: Cell | undefined): void => setCell(mount, id, p.name, v ?? s.missing());
    try {
      inst = (await s.step('mount', () => p.create(s.ctx)))?.value;
      const m = inst;
      const untar = await s.step('untar', () => run(['tar', '-xf', tree.tarball, '-C', m!.root], { signal: s.signal }));
      cell('untar', untar && tree.files / untar.seconds);
      cell('untar_anon', untar && mib(ownMemoryBytes(m!.pid())));
      if (o.dropCaches) dropCaches();
      const du = await s.step('du -s', () => run(['du', '-s', m!.root], { signal: s.signal }));
      cell('du', du?.seconds);
      for (const w of [1, 2]) {
        if (o.dropCaches) dropCaches();
        const done = await s.step(`walk ${w}`, () => walk(m!.root, s.signal));
        cell(`walk${w}_s`, done?.seconds);
        cell(`walk${w}`, done && mib(ownMemoryBytes(m!.pid())));
      }
      if (m?.snapshot) {
        const snap = await s.step('first snapshot', () => m.snapshot!());
        cell('snapshot', snap?.seconds);
        cell('snapshot_anon', snap && mib(ownMemoryBytes(m.pid())));
      }
      const many = join(m?.root ?? workDir, 'many');
      // xargs touch: one process creates thousands, so the figure is the mount's, not fork's.
      const create = await s.step(`create ${o.createFiles}`, () =>
        run([`mkdir ${q(many)} && cd ${q(many)} && seq -f 'f%.0f' 1 ${o.createFiles} | xargs touch`], { shell: true, signal: s.signal }),
      );
      cell('create', create?.seconds);
      const remove = await s.step(`remove ${o.createFiles}`, () => run(['rm', '-r', many], { signal: s.signal }));
      cell('remove', remove?.seconds);
    } finally {
      await inst?.dispose().catch((e: unknown) => log(`  ${p.name}: unmount: ${String(e)}`));
      failures.push(...s.failures.map((x) => `${p.name}: ${x}`));
      await rmrf(workDir);
    }
  }
  return { mount, failures };
}

// ---- report ----

function fmtCell(c: Cell | undefined): string {
  if (c === undefined) return '—';
  if (typeof c === 'number') return Number.isInteger(c) ? String(c) : fmtNum(c);
  return /timeout/.test(c.failed) ? 'timeout' : 'failed';
}

function renderTable(t: FigureTable): string {
  const others = t.peers.filter((p) => p !== SUBJECT);
  const peers = t.peers.filter((p) => p === SUBJECT).concat(others);
  const header = ['figure', 'unit', ...peers, ...others.map((p) => `${SUBJECT}/${p}`)];
  const rows = t.rows.map((r) => {
    const ratios = others.map((p) => {
      const a = r.cells[SUBJECT];
      const b = r.cells[p];
      if (typeof a !== 'number' || typeof b !== 'number' || b === 0) return '—';
      const x = a / b;
      return `${fmtRatio(x)}${(r.better === 'higher' ? x > 1 : x < 1) ? ' ✓' : ''}`;
    });
    return [r.label, `${r.unit}, ${r.better} better`, ...peers.map((p) => fmtCell(r.cells[p])), ...ratios];
  });
  return markdownTable({ header, rows });
}

interface Report {
  date: string;
  machine: MachineInfo;
  options: Omit<Options, 'out' | 'tmp' | 'keep' | 'stepTimeoutS'> & { stepTimeoutS: number[] };
  versions: PeerVersions;
  notRun: Record<string, string>;
  sizes: SizeResult[];
  totalSeconds: number;
}

function renderMarkdown(r: Report): string {
  const out: string[] = [];
  out.push(`# fragfs with many small files, ${r.date}`, '');
  out.push(`Machine: ${machineLine(r)}.`, '');
  out.push(
    `One run of each figure. Ratios are ${SUBJECT} / peer; ✓ marks where ${SUBJECT} is better. ` +
      `Peak RSS is the command's VmHWM (which counts the pages of the files it maps, like fragfs's LMDB store); ` +
      `RssAnon is the mount process's own memory (heap and stacks) at that moment, read from /proc. ` +
      `${r.options.dropCaches ? 'The page cache, dentries and inodes are dropped before du and each walk.' : 'Caches were not dropped before du and walks.'} ` +
      `Total time ${r.totalSeconds.toFixed(0)} s.`,
    '',
  );
  out.push('Versions: ' + Object.entries(r.versions).map(([k, v]) => `${k}: ${v}`).join('; ') + '.', '');
  for (const [k, v] of Object.entries(r.notRun)) out.push(`- ${k} not run: ${v}`);
  if (Object.keys(r.notRun).length) out.push('');
  for (const s of r.sizes) {
    out.push(
      `## ${fmtNum(s.files)} files`,
      '',
      `${fmtNum(s.files)} files of 1-4 KiB of code-like text (${fmtBytes(s.plainBytes)}) in ${s.folders} folders of 100, seed ${r.options.seed}; ` +
        `tarball ${fmtBytes(s.tarBytes)}, generated in ${s.generateSeconds.toFixed(1)} s. Changed before the second run: ${s.changedFiles.length} files (a line appended).`,
      '',
    );
    for (const t of s.tables) out.push(`### ${t.title}`, '', renderTable(t), '');
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.failures.length) out.push('', 'Failed steps:', '', ...s.failures.map((f) => `- ${f}`));
    out.push('');
  }
  return out.join('\n');
}

// ---- main ----

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  installCleanupHandlers();
  const t0 = Date.now();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const outDir = resolve(o.out || join('bench-results', `${date.replace(/:/g, '-')}-small-files`));
  if (o.dropCaches && !canDropCaches()) {
    o.dropCaches = false;
    log('NOTE: not root: caches are not dropped before du and walks');
  }
  const scratch: string[] = [];
  process.on('exit', () => {
    if (!o.keep) for (const d of scratch) rmSync(d, { recursive: true, force: true });
  });

  const versions: PeerVersions = {};
  const notRun: Record<string, string> = {};
  const ready = async <P extends BackupPeer | MountPeer>(ps: P[]): Promise<P[]> => {
    const ok: P[] = [];
    for (const p of ps) {
      if (o.skip.includes(p.name) && p.name !== SUBJECT) {
        notRun[p.name] = 'left out with --skip';
        continue;
      }
      const a = await p.check();
      if (a.ok) {
        ok.push(p);
        versions[p.name] = a.version;
      } else notRun[p.name] = a.reason;
    }
    return ok;
  };
  const backupPeers = await ready<BackupPeer>([fragfsBackupPeer, resticPeer]);
  const mountPeers = await ready<MountPeer>([fragfsMountPeer, gocryptfsPeer]);
  if (!backupPeers.some((p) => p.name === SUBJECT) || !mountPeers.some((p) => p.name === SUBJECT)) throw new Error(`fragfs cannot run here: ${notRun[SUBJECT] ?? 'unknown'}`);
  for (const [k, v] of Object.entries(notRun)) log(`NOTE: ${k} not run: ${v}`);

  const sizes: SizeResult[] = [];
  const stepTimeouts: number[] = [];
  try {
    for (const files of o.files) {
      const stepMs = (o.stepTimeoutS ?? Math.max(300, Math.ceil(files * 0.003))) * 1000;
      stepTimeouts.push(stepMs / 1000);
      const tmp = await mkdtemp(join(o.tmp, `fragfs-bench-small-${files}-`));
      scratch.push(tmp);
      log(`${fmtNum(files)} files: scratch ${tmp}, each step bounded by ${stepMs / 1000} s`);
      const tg = Date.now();
      const tree = await makeSmallFilesTree(tmp, files, o.seed, AbortSignal.timeout(stepMs));
      const generateSeconds = (Date.now() - tg) / 1000;
      log(`  tree: ${fmtNum(tree.files)} files, ${fmtBytes(tree.plainBytes)}, in ${generateSeconds.toFixed(1)} s`);
      const b = await backupSection(tree, tmp, backupPeers, o, stepMs);
      const m = await mountSection(tree, tmp, mountPeers, o, stepMs);
      sizes.push({
        files,
        folders: tree.folders,
        plainBytes: tree.plainBytes,
        tarBytes: tree.tarBytes,
        changedFiles: b.changed,
        generateSeconds,
        tables: [b.backup, m.mount, b.snap],
        failures: [...b.failures, ...m.failures],
        notes: [
          fragfsSettings.backend === 'lmdb'
            ? `objects: fragfs (lmdb backend) counts fragments (data and meta) and refs, each an object on an object-store backend; restic counts the files of its repository (packs, indexes, snapshots, keys)`
            : `objects: both count the files of their store (fragfs ${fragfsSettings.backend} backend: packs, their indexes, single fragments, refs, config; restic: packs, indexes, snapshots, keys)`,
          `store on disk (du) of an LMDB store includes blocks reserved ahead of writes (16-256 MiB); du -b is the sum of file sizes`,
        ],
      });
      if (!o.keep) {
        await rmrf(tmp);
        scratch.pop();
      }
    }
  } finally {
    cleanupNow();
  }
  const report: Report = {
    date,
    machine: await machineInfo(o.tmp),
    options: { files: o.files, changes: o.changes, createFiles: o.createFiles, seed: o.seed, skip: o.skip, stepTimeoutS: stepTimeouts, dropCaches: o.dropCaches },
    versions,
    notRun,
    sizes,
    totalSeconds: (Date.now() - t0) / 1000,
  };
  const md = renderMarkdown(report);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'results.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(join(outDir, 'results.md'), md);
  process.stdout.write('\n' + md + `\nresults: ${outDir}/results.md, results.json (${report.totalSeconds.toFixed(0)} s in all)\n`);
}

main().catch((e: unknown) => {
  log(`bench-small-files: ${e instanceof Error ? e.message : String(e)}`);
  cleanupNow();
  process.exit(1);
});
