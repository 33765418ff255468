// Snapshot names: the rule itself, names checked before put stores anything, and resolution of what a
// user types where a name and a key prefix could shadow each other.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FragfsError, isFragfsError } from '../../src/errors.js';
import { encodeMeta } from '../../src/fragment/meta-codec.js';
import type { RefObject } from '../../src/fragment/tree-format.js';
import type { SpaceKeys } from '../../src/repo/keys.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { MAX_SNAPSHOT_NAME_BYTES, checkSnapshotName, snapshotNameProblem } from '../../src/repo/snapshot-name.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

test('names a user may give', (t) => {
  for (const name of ['monday', 'cafe', 'deadbee', 'release 1.2', 'naïve café ✓', '日本', 'a.b', '...', 'x'.repeat(MAX_SNAPSHOT_NAME_BYTES), 'v1-deadbeefcafe', 'DEADBEE']) {
    t.is(snapshotNameProblem(name), undefined, JSON.stringify(name));
  }
});

test('names that are refused, and why', (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['a\nb', /control character/],
    ['tab\there', /control character/],
    ['bell\u0007', /control character/],
    ['del\u007f', /control character/],
    ['csi\u009b', /control character/],
    ['monday\n', /control character/],
    [' monday', /white space/],
    ['monday ', /white space/],
    ['../x', /'\/'/],
    ['a/b', /'\/'/],
    ['/', /'\/'/],
    ['.', /"\."/],
    ['..', /"\.\."/],
    ['deadbeef', /hex digits/],
    ['DEADBEEF', /hex digits/],
    ['0123456789abcdef0123', /hex digits/],
    ['x'.repeat(MAX_SNAPSHOT_NAME_BYTES + 1), /longer than 255 bytes/],
    ['é'.repeat(128), /longer than 255 bytes/], // 256 bytes of UTF-8 in 128 characters
    ['lone \ud800 surrogate', /not valid Unicode/],
  ];
  for (const [name, why] of cases) {
    t.regex(snapshotNameProblem(name) ?? 'accepted', why, JSON.stringify(name));
    const e = t.throws(() => checkSnapshotName(name));
    t.true(isFragfsError(e, 'USAGE'), JSON.stringify(name));
    t.is(e!.message.split('\n').length, 1, 'the message is one line even for a name with a newline');
  }
});

async function newRepo(t: ExecutionContext): Promise<{ repo: Repo; work: string }> {
  const work = await tempDir('fragfs-names-');
  t.teardown(work.remove);
  const repo = await Repo.init({ storePath: join(work.path, 'store'), backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, threads: 1 });
  t.teardown(() => repo.close());
  return { repo, work: work.path };
}

async function count(repo: Repo): Promise<number> {
  let n = 0;
  for (const ns of [repo.dataNs, repo.metaNs, repo.refNs]) for await (const _ of repo.store.list(ns)) n++;
  return n;
}

test('put checks the name before it stores anything', async (t) => {
  const { repo, work } = await newRepo(t);
  const tree = join(work, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'a.txt'), 'hello\n');
  for (const name of ['', 'two\nlines', '../x', 'abcdef0123']) {
    const e = await t.throwsAsync(putPaths(repo, [tree], { name }));
    t.true(isFragfsError(e, 'USAGE'), String(e));
    t.is(await count(repo), 0, `nothing stored for ${JSON.stringify(name)}`);
  }
  const ok = await putPaths(repo, [tree], { name: 'fine' });
  t.is(await repo.resolveSnapshot('fine'), ok.key);
});

/** A ref as an older fragfs could have written it (its name unchecked). */
async function plantRef(repo: Repo, snapshot: string, name: string, createdMs: number): Promise<void> {
  const keys = Reflect.get(repo, 'keys') as SpaceKeys;
  const ref: RefObject = { kind: 'ref', v: 1, snapshot, name, createdMs, logicalBytes: 0 };
  await repo.store.put(repo.refNs, snapshot, encodeMeta(ref, keys).bytes);
}

test('resolveSnapshot: a text that is both a name and a key prefix, or a prefix of several keys, is BAD_KEY naming both', async (t) => {
  const { repo, work } = await newRepo(t);
  const tree = join(work, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'f'), 'content\n');
  const real = (await putPaths(repo, [tree])).key;
  // Resolution reads the refs only, so planted refs stand for snapshots an older fragfs wrote.
  const other = randomBytes(32).toString('hex');
  await plantRef(repo, other, real.slice(0, 8), Date.now());
  const both = await t.throwsAsync(repo.resolveSnapshot(real.slice(0, 8)));
  t.true(isFragfsError(both, 'BAD_KEY'), String(both));
  t.true(both!.message.includes(real) && both!.message.includes(other), both!.message);
  // A longer prefix still resolves.
  t.is(await repo.resolveSnapshot(real.slice(0, 9)), real);

  const twin = `${real.slice(0, 12)}${real[12] === '0' ? '1' : '0'}${'5'.repeat(51)}`;
  await plantRef(repo, twin, 'twin', Date.now());
  const ambiguous = await t.throwsAsync(repo.resolveSnapshot(real.slice(0, 10)));
  t.true(isFragfsError(ambiguous, 'BAD_KEY'), String(ambiguous));
  t.regex(ambiguous!.message, /ambiguous/);
  t.true(ambiguous!.message.includes(real) && ambiguous!.message.includes(twin), ambiguous!.message);
  t.is(await repo.resolveSnapshot(real.slice(0, 13)), real);
});

test('resolveSnapshot: newest of a name wins; short or unknown hex says how keys may be given', async (t) => {
  const { repo, work } = await newRepo(t);
  const tree = join(work, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'f'), 'one\n');
  const first = await putPaths(repo, [tree], { name: 'same' });
  await writeFile(join(tree, 'f'), 'two\n');
  const second = await putPaths(repo, [tree], { name: 'same', parent: false });
  t.is(await repo.resolveSnapshot('same'), second.key);
  t.is(await repo.resolveSnapshot(first.key.slice(0, 8)), first.key);

  const forms = /64 hex digits, a unique prefix of 8 or more, or its name/;
  for (const [text, code] of [
    ['abc', 'BAD_KEY'],
    ['1234567', 'BAD_KEY'],
    ['', 'BAD_KEY'],
    ['0000000000', 'NOT_FOUND'],
    ['no-such-name', 'NOT_FOUND'],
  ] as const) {
    const e = (await t.throwsAsync(repo.resolveSnapshot(text))) as FragfsError;
    t.is(e.code, code, `${JSON.stringify(text)}: ${e.message}`);
    t.regex(e.message, forms, JSON.stringify(text));
  }
});
