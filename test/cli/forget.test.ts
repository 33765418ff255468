// `fragfs forget` through the real CLI: snapshots given by key prefix or name go, --dry-run removes
// nothing, a policy removes the refs it does not keep, and errors are one line with the documented
// exit code. Six real snapshots are made by `put`; their refs are then dated over four days.

import test, { type ExecutionContext } from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lastLine, oneLineError, runCli, type CliResult } from '../helpers/cli.js';
import { createStore, openStore, tempDir } from '../helpers/stores.js';

let work: Awaited<ReturnType<typeof tempDir>>;
let store: string;
/** keys[i] is snapshot i + 1, oldest first. */
const keys: string[] = [];

/** Names and (UTC) times the six refs get: two on 1 January, one on the 2nd, two on the 3rd, one on the 4th. */
const PLAN: { name?: string; time: string }[] = [
  { name: 'alpha', time: '2025-01-01T10:00:00Z' },
  { time: '2025-01-01T11:00:00Z' },
  { time: '2025-01-02T10:00:00Z' },
  { name: 'delta', time: '2025-01-03T10:00:00Z' },
  { time: '2025-01-03T12:00:00Z' },
  { time: '2025-01-04T10:00:00Z' },
];

test.before(async () => {
  work = await tempDir('fragfs-cli-forget-');
  store = join(work.path, 'store');
  await createStore(store, 'lmdb');
  const tree = join(work.path, 'tree');
  await mkdir(tree);
  for (const [i, p] of PLAN.entries()) {
    await writeFile(join(tree, 'note.txt'), `version ${i + 1}\n`);
    const r = await runCli(['put', store, tree, '--no-progress', ...(p.name === undefined ? [] : ['--name', p.name])]);
    if (r.code !== 0) throw new Error(`put failed: ${r.stderr}`);
    keys.push(lastLine(r.stdout));
  }
  // Re-date the refs: a ref is replaced by deleting it and putting it again (a put of an existing
  // id may be skipped).
  const repo = await openStore(store);
  try {
    for (const ref of await repo.listRefs()) {
      const i = keys.indexOf(ref.snapshot);
      await repo.store.delete(repo.refNs, ref.snapshot);
      await repo.putRef({ ...ref, createdMs: Date.parse(PLAN[i]!.time) });
    }
    await repo.sync();
  } finally {
    await repo.close();
  }
});

test.after.always(async () => {
  await work?.remove();
});

/** The keys `snapshots --json` lists, oldest first. */
async function listed(): Promise<string[]> {
  const r = await runCli(['snapshots', store, '--json']);
  if (r.code !== 0) throw new Error(`snapshots failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { key: string }[]).map((s) => s.key);
}

test.serial('the refs are dated as planned', async (t) => {
  t.deepEqual(await listed(), keys);
});

test.serial('neither snapshots nor a policy, or a bad option value, is a usage error before any passphrase', async (t) => {
  const noPassphrase = { env: { FRAGFS_PASSPHRASE: undefined } };
  oneLineError(t, await runCli(['forget', store], noPassphrase), 2, /give the snapshots to remove, or a --keep-\* policy/);
  oneLineError(t, await runCli(['forget', store, '--keep-last', '0'], noPassphrase), 2, /--keep-\* policy/);
  oneLineError(t, await runCli(['forget', store, '--keep-daily', 'seven'], noPassphrase), 2, /^fragfs: --keep-daily "seven"/);
  oneLineError(t, await runCli(['forget', store, '--keep-within', '2w'], noPassphrase), 2, /^fragfs: --keep-within "2w"/);
  oneLineError(t, await runCli(['forget', store, '--keep-within', '0d'], noPassphrase), 2, /keeps nothing/);
  const unknownOption = await runCli(['forget', store, '--keep-fortnightly', '2'], noPassphrase);
  t.is(unknownOption.code, 2);
  t.deepEqual(await listed(), keys);
});

test.serial('an unknown key or name is one line with exit 5, and nothing is removed', async (t) => {
  oneLineError(t, await runCli(['forget', store, 'deadbeef00']), 5, /no snapshot whose meta key starts with deadbeef00/);
  oneLineError(t, await runCli(['forget', store, keys[0]!.slice(0, 8), 'no-such-name']), 5, /no snapshot named "no-such-name"/);
  oneLineError(t, await runCli(['forget', store, 'abc']), 5, /not a meta key/);
  oneLineError(t, await runCli(['forget', join(work.path, 'nowhere'), keys[0]!]), 3, /nowhere/);
  t.deepEqual(await listed(), keys, 'the valid key given with a wrong one stays');
});

test.serial('--dry-run lists what would go and what stays, and removes nothing', async (t) => {
  const r = await runCli(['forget', store, '--keep-daily', '2', '--dry-run']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.regex(lines[0]!, /^ACTION\s+TIME \(UTC\)\s+NAME\s+SIZE\s+KEY\s+REASONS$/);
  t.is(lines.length, 1 + 6 + 1);
  // Oldest first; the newest of each of the two newest days stays.
  const actions = lines.slice(1, 7).map((l) => l.split(/\s+/)[0]);
  t.deepEqual(actions, ['remove', 'remove', 'remove', 'remove', 'keep', 'keep']);
  t.true(lines[1]!.includes(keys[0]!) && lines[1]!.includes('alpha') && lines[1]!.includes('2025-01-01 10:00:00'));
  t.regex(lines[1]!, /kept by no policy$/);
  t.regex(lines[6]!, /daily snapshot$/);
  t.regex(lines[7]!, /^would remove 4 of 6 snapshots \(--dry-run: nothing was removed\); .*later gc/);
  t.deepEqual(await listed(), keys);
});

test.serial('forget by key prefix, then by name', async (t) => {
  const byKey = await runCli(['forget', store, keys[2]!.slice(0, 10)]);
  t.is(byKey.code, 0, byKey.stderr);
  const last = lastLine(byKey.stdout);
  t.regex(last, /^removed 1 of 6 snapshots; forget removes refs only: the fragments stay in the store until a later gc frees them$/);
  t.regex(byKey.stdout, new RegExp(`remove .*${keys[2]}  given on the command line`));
  t.deepEqual(await listed(), [keys[0], keys[1], keys[3], keys[4], keys[5]]);

  const byName = await runCli(['forget', store, 'delta']);
  t.is(byName.code, 0, byName.stderr);
  t.regex(lastLine(byName.stdout), /^removed 1 of 5 snapshots/);
  t.deepEqual(await listed(), [keys[0], keys[1], keys[4], keys[5]]);
  // The name is gone with its ref.
  oneLineError(t, await runCli(['get', store, 'delta', join(work.path, 'delta')]), 5, /no snapshot named "delta"/);
});

test.serial('a policy removes the refs it does not keep; --keep-name keeps the named; kept snapshots still read', async (t) => {
  const r = await runCli(['forget', store, '--keep-daily', '1', '--keep-name', '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    dryRun: boolean;
    total: number;
    kept: number;
    removed: number;
    snapshots: { key: string; name: string | null; time: string; action: string; reasons: string[] }[];
  };
  t.false(out.dryRun);
  t.deepEqual([out.total, out.kept, out.removed], [4, 2, 2]);
  t.deepEqual(
    out.snapshots.map((s) => [s.key, s.name, s.action, s.reasons]),
    [
      [keys[0], 'alpha', 'keep', ['named']],
      [keys[1], null, 'remove', ['kept by no policy']],
      [keys[4], null, 'remove', ['kept by no policy']],
      [keys[5], null, 'keep', ['daily snapshot']],
    ],
  );
  t.is(out.snapshots[0]!.time, '2025-01-01T10:00:00.000Z');
  t.deepEqual(await listed(), [keys[0], keys[5]]);

  const text = await runCli(['snapshots', store]);
  t.false(text.stdout.includes(keys[1]!));
  t.false(text.stdout.includes(keys[4]!));

  for (const [spec, version] of [[keys[5]!, 6], ['alpha', 1]] as const) {
    const dest = join(work.path, `restored-${version}`);
    const get = await runCli(['get', store, spec, dest]);
    t.is(get.code, 0, get.stderr);
    t.is(await readFile(join(dest, 'note.txt'), 'utf8'), `version ${version}\n`);
  }
});

test.serial('only refs go: a forgotten snapshot reads by its full key until a gc, but cannot be forgotten twice', async (t) => {
  const dest = join(work.path, 'forgotten-2');
  const get = await runCli(['get', store, keys[1]!, dest]);
  t.is(get.code, 0, get.stderr);
  t.is(await readFile(join(dest, 'note.txt'), 'utf8'), 'version 2\n');
  oneLineError(t, await runCli(['forget', store, keys[1]!]), 5, new RegExp(`no snapshot with meta key ${keys[1]} is listed`));
  oneLineError(t, await runCli(['forget', store, keys[1]!.slice(0, 12)]), 5, /no snapshot whose meta key starts with/);
  // Unreferenced fragments are not problems.
  const verify = await runCli(['verify', store]);
  t.is(verify.code, 0, verify.stderr);
  t.regex(verify.stdout, /: no problems; \d+ more fragments no snapshot or live file needs are intact and reclaimable/);
});

test.serial('a policy over what is left, and --help says UTC and gc', async (t) => {
  const r = await runCli(['forget', store, '--keep-last', '1']);
  t.is(r.code, 0, r.stderr);
  t.regex(lastLine(r.stdout), /^removed 1 of 2 snapshots/);
  t.deepEqual(await listed(), [keys[5]]);
  const help = await runCli(['forget', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /UTC/);
  t.regex(help.stdout, /later gc/);
  t.regex(help.stdout, /--keep-within <duration>/);
});
