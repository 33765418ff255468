// A store is input. Each way of lying in metadata that test/helpers/hostile-store.ts forges must
// stop get with a clear FragfsError naming the fragment and the path before any work on the lie,
// be reported by verify, and be refused the same way by a snapshot mount; legitimate sharing of a
// folder's fragment must not be mistaken for it.

import { PathVfs } from '../vfs/path-vfs.js';
import test from 'ava';
import { open as openFile, readdir, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FragfsError, isFragfsError, type ErrorCode } from '../../src/errors.js';
import type { DirObject, Entry, SnapshotObject } from '../../src/fragment/tree-format.js';
import { getTree } from '../../src/repo/get.js';
import { Repo } from '../../src/repo/repo.js';
import { storeStats } from '../../src/repo/stats.js';
import { writeSnapshot } from '../../src/repo/tree-writer.js';
import { verifyStore, type VerifyProblem } from '../../src/repo/verify.js';
import { SnapshotVfs } from '../../src/vfs/snapshot-vfs.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { buildHostileStore, writeDirId, type HostileCase, type HostileStore } from '../helpers/hostile-store.js';
import { tempDir } from '../helpers/stores.js';
import { tempRefusesHugeFiles, testIf } from '../helpers/capabilities.js';

let work: Awaited<ReturnType<typeof tempDir>>;
let store: HostileStore;
let repo: Repo;
let restores = 0;

test.before(async () => {
  work = await tempDir('fragfs-hostile-');
  store = await buildHostileStore(join(work.path, 'store'));
  repo = await Repo.open({ storePath: store.storePath, passphrase: TEST_PASSPHRASE, readOnly: true, threads: 2 });
});

test.after.always(async () => {
  await repo?.close();
  await work?.remove();
});

interface Refusal {
  code: ErrorCode;
  message: RegExp;
  /** Which fragment the error names: the case's own, or the snapshot (its totals). */
  names: 'fragment' | 'snapshot';
  path: string;
}

/** What get must fail with (undefined: get succeeds), and what verify must report (undefined: nothing). */
const CASES: Record<HostileCase, { get?: Refusal; verify?: { message: RegExp; names: 'fragment' | 'snapshot'; usedBy: string[] } }> = {
  'past-size': {
    get: { code: 'CORRUPT', message: /short\.txt.*ends at 6, past the file's size 3/, names: 'fragment', path: '/bad' },
    verify: { message: /past the file's size 3/, names: 'fragment', usedBy: ['/bad'] },
  },
  'past-size-paged': {
    get: { code: 'CORRUPT', message: /ends at 6, past the file's size 3 \(in \/bad\/paged\.txt\)/, names: 'fragment', path: '/bad/paged.txt' },
    verify: { message: /past the file's size 3/, names: 'fragment', usedBy: ['/bad/paged.txt'] },
  },
  overlap: {
    get: { code: 'CORRUPT', message: /overlap\.bin.*overlaps/, names: 'fragment', path: '/bad' },
    verify: { message: /overlaps/, names: 'fragment', usedBy: ['/bad'] },
  },
  'overlap-paged': {
    get: { code: 'CORRUPT', message: /overlaps or precedes.*\(in \/bad\/overlap\.bin\)/, names: 'fragment', path: '/bad/overlap.bin' },
    verify: { message: /overlaps/, names: 'fragment', usedBy: ['/bad/overlap.bin'] },
  },
  'dir-is-manifest': {
    get: { code: 'CORRUPT', message: /is a manifest, expected a dir/, names: 'fragment', path: '/bad' },
    verify: { message: /is a manifest, expected a dir/, names: 'fragment', usedBy: ['/bad'] },
  },
  'link-conflict': {
    get: { code: 'CORRUPT', message: /\/bad\/b\.txt is in hard-link group 1 with \/ok\.txt but differs/, names: 'fragment', path: '/bad/b.txt' },
    verify: { message: /\/bad\/b\.txt is in hard-link group 1 with \/ok\.txt but differs/, names: 'fragment', usedBy: ['/bad/b.txt', '/ok.txt'] },
  },
  'symlink-nul': {
    get: { code: 'CORRUPT', message: /target is not a valid path/, names: 'fragment', path: '/bad' },
    verify: { message: /target is not a valid path/, names: 'fragment', usedBy: ['/bad'] },
  },
  'slash-name': {
    get: { code: 'CORRUPT', message: /contains '\/'/, names: 'fragment', path: '/bad' },
    verify: { message: /contains '\/'/, names: 'fragment', usedBy: ['/bad'] },
  },
  'dag-bomb': {
    get: { code: 'CORRUPT', message: /the tree holds more entries than its snapshot declares: more folders \(42\)/, names: 'snapshot', path: '' },
    verify: { message: /more entries than its snapshot declares: it declares 2 files, 42 folders.*the tree holds 1099511627777 files/, names: 'snapshot', usedBy: [] },
  },
  'huge-declared': {},
  'huge-undeclared': {
    get: { code: 'CORRUPT', message: /more entries than its snapshot declares: more bytes \(6\), at \/bad\/huge\.img/, names: 'snapshot', path: '/bad/huge.img' },
    verify: { message: /more entries than its snapshot declares/, names: 'snapshot', usedBy: [] },
  },
  'big-sparse': {},
  fewer: {
    verify: { message: /does not hold what its snapshot declares: it declares 5 files, 1 folders and 6 bytes, the tree holds 1 files/, names: 'snapshot', usedBy: [] },
  },
  'shared-folders': {},
};

function dest(): string {
  return join(work.path, `restore-${restores++}`);
}

function users(p: VerifyProblem): string[] {
  return p.usedBy.filter((u) => !u.startsWith('snapshot ')).map((u) => u.replace(/^[0-9a-f]{12}:/, ''));
}

for (const [name, expect] of Object.entries(CASES) as [HostileCase, (typeof CASES)[HostileCase]][]) {
  const getting = expect.get ? `fails with ${expect.get.code}` : name === 'huge-declared' ? 'fails with FILE_TOO_BIG' : 'restores it';
  const maybe = name === 'huge-declared' ? testIf(tempRefusesHugeFiles, 'the temp file system holds 2^50-byte files: a refusal cannot be tested') : test;
  maybe(`${name}: get ${getting}, verify ${expect.verify ? 'reports it' : 'finds nothing'}`, async (t) => {
    const key = store.keys[name];
    const to = dest();
    const started = Date.now();
    if (expect.get) {
      const err = await t.throwsAsync(getTree(repo, key, to));
      t.true(isFragfsError(err, expect.get.code), String(err));
      t.regex(err!.message, expect.get.message);
      const named = expect.get.names === 'snapshot' ? key : store.fragments[name];
      t.is((err as FragfsError).fragmentId, named);
      t.regex(err!.message, new RegExp(named!));
      if (expect.get.path !== '') t.is((err as FragfsError).path, expect.get.path);
    } else if (name === 'huge-declared') {
      const err = await t.throwsAsync(getTree(repo, key, to));
      t.true(isFragfsError(err, 'FILE_TOO_BIG'), String(err));
      t.regex(err!.message, /\/bad\/huge\.img in snapshot [0-9a-f]{12} is 1125899906842624 bytes, more than the file system at .* holds/);
      t.is((err as FragfsError).path, '/bad/huge.img');
      // Refused before it was created, and the probe is gone.
      t.deepEqual(await readdir(join(to, 'bad')), []);
      t.deepEqual((await readdir(to)).sort(), ['bad', 'ok.txt']);
    } else {
      const got = await getTree(repo, key, to);
      t.is(await readFile(join(to, 'ok.txt'), 'utf8'), 'hello\n');
      if (name === 'shared-folders') {
        t.is(got.files, 3);
        t.is(await readFile(join(to, 'bad', 'one', 'inner.txt'), 'utf8'), 'hello\n');
        t.is(await readFile(join(to, 'bad', 'two', 'inner.txt'), 'utf8'), 'hello\n');
      }
    }
    t.true(Date.now() - started < 60_000, 'get stops promptly');

    const report = await verifyStore(repo, key);
    if (!expect.verify) {
      t.deepEqual(report.problems, []);
      t.is(report.treesChecked, 1);
      return;
    }
    const named = expect.verify.names === 'snapshot' ? key : store.fragments[name]!;
    t.is(report.problems.length, 1, JSON.stringify(report.problems, null, 1));
    const p = report.problems[0]!;
    t.is(p.fragmentId, named);
    t.is(p.kind, 'meta');
    t.is(p.problem, 'corrupt');
    t.regex(p.message, expect.verify.message);
    t.deepEqual(users(p), expect.verify.usedBy);
  });
}

test('verify of the whole store reports every hostile case once and checks the others', async (t) => {
  const report = await verifyStore(repo, undefined);
  const expected = Object.entries(CASES).filter(([, c]) => c.verify !== undefined).length;
  t.is(report.problems.length, expected, report.problems.map((p) => p.message).join('\n'));
  t.is(report.snapshots, Object.keys(CASES).length);
  t.is(report.unreferencedChecked, 0);
});

test('stats of a store holding a 2^40-file DAG finishes: it reads each fragment once', async (t) => {
  const mem = await Repo.openMemory({ threads: 1 });
  t.teardown(() => mem.close());
  let level = await writeDirId(mem, []);
  for (let i = 0; i < 40; i++) level = await writeDirId(mem, [dirEntry('a', level), dirEntry('b', level)]);
  await writeSnapshot(mem, dirEntry('', level), { source: [], files: 0, dirs: 40, logicalBytes: 0 });
  const started = Date.now();
  const s = await storeStats(mem);
  t.is(s.snapshots, 1);
  t.is(s.metaFragments, 42);
  t.true(Date.now() - started < 30_000);
});

test('a snapshot mount refuses the same files get refuses, for the same reasons', async (t) => {
  for (const [name, path, message] of [
    ['past-size', '/bad/short.txt', /past the file's size 3/],
    ['past-size-paged', '/bad/paged.txt', /past the file's size 3/],
    ['overlap', '/bad/overlap.bin', /overlaps/],
    ['overlap-paged', '/bad/overlap.bin', /overlaps/],
  ] as const) {
    const vfs = new PathVfs(await SnapshotVfs.open({ repo, key: store.keys[name] }));
    try {
      const err = await t.throwsAsync(async () => {
        const fh = await vfs.open(path, 0);
        await vfs.read(path, fh, Buffer.alloc(100), 100, 0);
      });
      t.true(isFragfsError(err, 'CORRUPT'), `${name}: ${String(err)}`);
      t.regex(err!.message, message, name);
    } finally {
      await vfs.close();
    }
  }
});

test('a cycle of dir fragments (a hash collision away) is reported by verify and stops get', async (t) => {
  const self = 'c'.repeat(64);
  const key = 'a'.repeat(64);
  const entry = (name: string): Entry => ({ name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, size: 0, dir: self });
  const loop: DirObject = { kind: 'dir', v: 1, entries: [entry('loop')] };
  const snapshot: SnapshotObject = {
    kind: 'snapshot',
    v: 1,
    createdMs: 0,
    source: [],
    hostname: 'h',
    blockSize: 65536,
    root: entry(''),
    files: 0,
    dirs: 5,
    logicalBytes: 0,
  };
  // A store that answers for its ids without checking them: the one way to serve a cycle.
  const fake = {
    resolveSnapshot: async () => key,
    getMeta: async (id: string) => (id === key ? snapshot : loop),
    store: { list: async function* () {} },
  } as unknown as Repo;
  const report = await verifyStore(fake, key);
  t.is(report.problems.length, 1, JSON.stringify(report.problems));
  t.is(report.problems[0]!.fragmentId, self);
  t.regex(report.problems[0]!.message, /contains itself \(a cycle\) at \/loop/);
  t.is(report.treesChecked, 0);

  const err = await t.throwsAsync(getTree(fake, key, dest()));
  t.true(isFragfsError(err, 'CORRUPT'), String(err));
  t.regex(err!.message, /more entries than its snapshot declares: more folders \(5\), at \/loop\/loop\/loop\/loop\/loop\/loop/);
});

function dirEntry(name: string, id: string): Entry {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, size: 0, dir: id };
}


