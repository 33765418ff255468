// The hostile store of test/helpers/hostile-store.ts through the real CLI: each command that meets a
// lie fails with the documented exit code and one line naming the fragment and the path, never a
// stack trace or exit 70, and verify lists it; commands that do not touch the lie work as usual.

import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_PATH, TEST_PASSPHRASE, runCli, type CliResult } from '../helpers/cli.js';
import { buildHostileStore, type HostileCase, type HostileStore } from '../helpers/hostile-store.js';
import { tempDir } from '../helpers/stores.js';
import { tempRefusesHugeFiles, testIf } from '../helpers/capabilities.js';

let work: Awaited<ReturnType<typeof tempDir>>;
let store: HostileStore;
let n = 0;

test.before(async () => {
  work = await tempDir('fragfs-cli-hostile-');
  store = await buildHostileStore(join(work.path, 'store'));
});

test.after.always(async () => {
  await work?.remove();
});

/** exit code and the pattern of the one stderr line (0: success, output not checked). */
type Outcome = [number, RegExp?];

interface CaseRuns {
  get: Outcome;
  /** Path inside the snapshot for cat and ls (undefined: the command has nothing to read there). */
  cat?: [string, Outcome];
  ls?: [string, Outcome];
  /** verify KEY: 6 and a stdout pattern, or 0. */
  verify: Outcome;
}

const FRAG = (c: HostileCase): string => store.fragments[c]!;
const KEY = (c: HostileCase): string => store.keys[c];

const RUNS: Record<HostileCase, () => CaseRuns> = {
  'past-size': () => ({
    get: [6, new RegExp(`metadata fragment ${FRAG('past-size')} is corrupt: .*past the file's size 3 \\(in /bad\\)`)],
    cat: ['bad/short.txt', [6, new RegExp(`${FRAG('past-size')}.*past the file's size`)]],
    ls: ['bad', [6, new RegExp(`${FRAG('past-size')}.*past the file's size`)]],
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('past-size')}: .*past the file's size 3.*needed by [0-9a-f]{12}:/bad`)],
  }),
  'past-size-paged': () => ({
    get: [6, new RegExp(`manifest page ${FRAG('past-size-paged')} is corrupt: .*past the file's size 3 \\(in /bad/paged\\.txt\\)`)],
    cat: ['bad/paged.txt', [6, new RegExp(`${FRAG('past-size-paged')}.*past the file's size 3 \\(in /bad/paged\\.txt\\)`)]],
    ls: ['bad', [0]], // a listing reads no manifest
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('past-size-paged')}: .*needed by [0-9a-f]{12}:/bad/paged\\.txt`)],
  }),
  overlap: () => ({
    get: [6, new RegExp(`${FRAG('overlap')} is corrupt: .*overlaps.*\\(in /bad\\)`)],
    cat: ['bad/overlap.bin', [6, new RegExp(`${FRAG('overlap')}.*overlaps`)]],
    ls: ['bad', [6, new RegExp(`${FRAG('overlap')}.*overlaps`)]],
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('overlap')}: .*overlaps`)],
  }),
  'overlap-paged': () => ({
    get: [6, new RegExp(`manifest page ${FRAG('overlap-paged')} is corrupt: .*overlaps .*\\(in /bad/overlap\\.bin\\)`)],
    cat: ['bad/overlap.bin', [6, new RegExp(`${FRAG('overlap-paged')}.*overlaps`)]],
    ls: ['bad', [0]],
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('overlap-paged')}: .*needed by [0-9a-f]{12}:/bad/overlap\\.bin`)],
  }),
  'dir-is-manifest': () => ({
    get: [6, new RegExp(`fragment ${FRAG('dir-is-manifest')} of /bad is a manifest, expected a dir`)],
    cat: ['bad/x', [6, /is a manifest, expected a dir/]],
    ls: ['bad', [6, /is a manifest, expected a dir/]],
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('dir-is-manifest')}: .*expected a dir`)],
  }),
  'link-conflict': () => ({
    get: [6, new RegExp(`${FRAG('link-conflict')} is corrupt: /bad/b\\.txt is in hard-link group 1 with /ok\\.txt but differs`)],
    // One name alone is a consistent file: nothing to compare it with.
    cat: ['bad/b.txt', [0]],
    ls: ['bad', [0]],
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('link-conflict')}: .*hard-link group 1.*needed by [0-9a-f]{12}:/bad/b\\.txt`)],
  }),
  'symlink-nul': () => ({
    get: [6, new RegExp(`${FRAG('symlink-nul')} is corrupt: .*target is not a valid path \\(in /bad\\)`)],
    cat: ['bad/link', [6, /target is not a valid path/]],
    ls: ['bad', [6, /target is not a valid path/]],
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('symlink-nul')}: .*target`)],
  }),
  'slash-name': () => ({
    get: [6, new RegExp(`${FRAG('slash-name')} is corrupt: entry name x/y contains '/' \\(in /bad\\)`)],
    cat: ['bad/x', [6, /contains '\/'/]],
    ls: ['bad', [6, /contains '\/'/]],
    verify: [6, new RegExp(`corrupt meta fragment ${FRAG('slash-name')}: .*contains '/'`)],
  }),
  'dag-bomb': () => ({
    get: [6, new RegExp(`snapshot ${KEY('dag-bomb')}: the tree holds more entries than its snapshot declares: more folders \\(42\\), at /bad/`)],
    // One path of the 2^40 is an ordinary empty file; a listing is one fragment.
    cat: [`bad/${'a/'.repeat(40)}f`, [0]],
    ls: ['bad', [0]],
    verify: [6, new RegExp(`corrupt meta fragment ${KEY('dag-bomb')}: snapshot ${KEY('dag-bomb')}: the tree holds more entries than its snapshot declares`)],
  }),
  'huge-declared': () => ({
    get: [10, /\/bad\/huge\.img in snapshot [0-9a-f]{12} is 1125899906842624 bytes, more than the file system at .* holds/],
    ls: ['bad', [0]],
    verify: [0],
  }),
  'huge-undeclared': () => ({
    get: [6, /the tree holds more entries than its snapshot declares: more bytes \(6\), at \/bad\/huge\.img/],
    cat: ['bad/huge.img', [6, /more entries than its snapshot declares: more bytes \(6\), at \/bad\/huge\.img/]],
    ls: ['bad', [0]],
    verify: [6, /the tree holds more entries than its snapshot declares/],
  }),
  'big-sparse': () => ({ get: [0], cat: ['bad/big.img', [0]], ls: ['bad', [0]], verify: [0] }),
  fewer: () => ({ get: [0], ls: ['', [0]], verify: [6, /does not hold what its snapshot declares/] }),
  'shared-folders': () => ({ get: [0], cat: ['bad/two/inner.txt', [0]], ls: ['bad', [0]], verify: [0] }),
};

function expectOutcome(t: ExecutionContext, what: string, r: CliResult, [code, pattern]: Outcome, stdout = false): void {
  t.is(r.code, code, `${what}: stdout ${r.stdout.slice(0, 500)}\nstderr: ${r.stderr}`);
  t.notRegex(r.stderr, /\n\s+at |internal error/, `${what}: no stack trace`);
  if (code === 0) return;
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, `${what}: one line, got: ${r.stderr}`);
  t.regex(lines[0]!, /^fragfs: /, what);
  if (pattern) t.regex(stdout ? r.stdout : lines[0]!, pattern, what);
}

for (const c of Object.keys(RUNS) as HostileCase[]) {
  const maybe = c === 'huge-declared' ? testIf(tempRefusesHugeFiles, 'the temp file system holds 2^50-byte files: a refusal cannot be tested') : test;
  maybe(`${c}: get, cat, ls and verify`, async (t) => {
    const runs = RUNS[c]();
    const key = KEY(c);
    expectOutcome(t, 'get', await runCli(['get', store.storePath, key, join(work.path, `restore-${n++}`)]), runs.get);
    if (runs.cat) {
      const r = await runCli(['cat', store.storePath, `${key}/${runs.cat[0]}`]);
      expectOutcome(t, 'cat', r, runs.cat[1]);
    }
    if (runs.ls) expectOutcome(t, 'ls', await runCli(['ls', store.storePath, `${key}/${runs.ls[0]}`]), runs.ls[1]);
    const verify = await runCli(['verify', store.storePath, key]);
    expectOutcome(t, 'verify', { ...verify, stderr: verify.stderr.replace(/^(?!fragfs: ).*\n/gm, '') }, [verify.code === 0 ? 0 : 6], true);
    t.is(verify.code, runs.verify[0], verify.stdout);
    if (runs.verify[1]) t.regex(verify.stdout, runs.verify[1]);
    if (runs.verify[0] === 0) t.regex(verify.stdout, /no problems/);
  });
}

test('big-sparse: a file larger than `ulimit -f` allows: get exits 10 naming it, and leaves no part of it', async (t) => {
  const to = join(work.path, `restore-${n++}`);
  const r = await new Promise<CliResult>((resolve, reject) => {
    const child = spawn('bash', ['-c', 'ulimit -f 1024 && exec "$0" "$@"', process.execPath, CLI_PATH, 'get', store.storePath, KEY('big-sparse'), to], {
      env: { ...process.env, FRAGFS_PASSPHRASE: TEST_PASSPHRASE },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  expectOutcome(t, 'get under ulimit -f', r, [10, /\/bad\/big\.img in snapshot [0-9a-f]{12} is 16777216 bytes, more than the file system at .*big\.img holds/]);
  t.deepEqual(await readdir(join(to, 'bad')), []);
});

