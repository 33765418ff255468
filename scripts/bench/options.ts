// Command-line options of the bench and the sizes of each mode (--quick keeps a run under 3 minutes).

import { tmpdir } from 'node:os';
import { resolve } from 'node:path';

export interface Sizes {
  /** (a), (b): bytes written then read sequentially. */
  seqBytes: number;
  /** (c): files in the synthetic source tree. */
  treeFiles: number;
  /** (d): fio file size and milliseconds per job (random read, then random write). */
  fioBytes: number;
  fioMs: number;
  /** (e), (f): bytes of the mixed tree. */
  mixedBytes: number;
  /** Bound on one step (one workload on one peer in one run). */
  stepTimeoutMs: number;
}

export interface BenchOptions {
  quick: boolean;
  runs: number;
  installPeers: boolean;
  /** Workload ids to run (seq, tree, fio, backup); all when empty. */
  only: string[];
  /** Peer names to leave out. */
  skip: string[];
  /** The peer the ratios are about: fragfs, or another for checking the harness itself. */
  subject: string;
  fragfsBackend: string;
  /** Another build's dist/bin/main.js, measured beside this one as the peer fragfs-base; '' for none. */
  baseline: string;
  outDir: string;
  tmpDir: string;
  sizes: Sizes;
}

const MiB = 1 << 20;
const GiB = 1 << 30;

export const QUICK: Sizes = {
  seqBytes: 48 * MiB,
  treeFiles: 500,
  fioBytes: 16 * MiB,
  fioMs: 700,
  mixedBytes: 16 * MiB,
  stepTimeoutMs: 40_000,
};

export const FULL: Sizes = {
  seqBytes: GiB,
  treeFiles: 12_000,
  fioBytes: 256 * MiB,
  fioMs: 8000,
  mixedBytes: GiB,
  stepTimeoutMs: 600_000,
};

export const USAGE = `usage: npm run bench -- [options]
  --quick              small sizes, 3 runs, under 3 minutes
  --runs N             runs per figure (default 3, at least 3 for a spread)
  --install-peers      apt-get install the peers first (gocryptfs rclone restic borgbackup fio)
  --only LIST          workloads to run, comma-separated: seq,tree,fio,backup
  --skip LIST          peers to leave out, comma-separated: gocryptfs,rclone,plain,restic,borg
  --subject NAME       the peer the ratios compare (default fragfs)
  --backend NAME       fragfs store backend: lmdb|dir|split (default lmdb)
  --baseline PATH      another build's dist/bin/main.js (a worktree of an earlier commit), measured
                       beside this build as the peer fragfs-base (e.g. --skip gocryptfs,rclone,plain,restic,borg)
  --out DIR            results folder (default bench-results/<timestamp>)
  --tmp DIR            scratch folder on the disk to test (default the OS temp folder)
`;

export function parseOptions(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    quick: false,
    runs: 3,
    installPeers: false,
    only: [],
    skip: [],
    subject: 'fragfs',
    fragfsBackend: 'lmdb',
    baseline: '',
    outDir: '',
    tmpDir: tmpdir(),
    sizes: FULL,
  };
  const list = (v: string | undefined): string[] => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--quick': o.quick = true; break;
      case '--runs': o.runs = Number(val()); break;
      case '--install-peers': o.installPeers = true; break;
      case '--only': o.only = list(val()); break;
      case '--skip': o.skip = list(val()); break;
      case '--subject': o.subject = val(); break;
      case '--backend': o.fragfsBackend = val(); break;
      case '--baseline': o.baseline = resolve(val()); break;
      case '--out': o.outDir = val(); break;
      case '--tmp': o.tmpDir = val(); break;
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs needs a positive integer');
  if (!['lmdb', 'dir', 'split'].includes(o.fragfsBackend)) throw new Error('--backend is one of lmdb, dir, split');
  o.sizes = o.quick ? QUICK : FULL;
  return o;
}
