// A folder's source tag (src/repo/folder-tag.ts): its digest answers every lstat field a listing
// or a later change shows (ctime and the inode number among them, st_dev not), its format is pinned
// by a vector, and it refuses folders it cannot stand for. Through put: an unchanged re-put reads
// no listing of a folder of files, and what the tag must not hide is stored: an extended attribute
// set, a symlink replaced at the same length and mtime, a file young enough to be racy, a folder
// --verbose must list; files whose second name lies outside the tree (`cp -al`) are plain files to
// it, one whose second name joins the put is a hard link again.

import test from 'ava';
import { blake3 as refBlake3 } from '@noble/hashes/blake3.js';
import { link, mkdir, readlink, rm, stat as fsStat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceLstat, SourceStat } from '../../src/local/source-stat.js';
import { sourceTag, summarizeFolder } from '../../src/repo/folder-tag.js';
import { getTree } from '../../src/repo/get.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { loadSnapshot, readDirEntries } from '../../src/repo/tree-reader.js';
import { ExcludePatterns } from '../../src/repo/exclude-patterns.js';
import { localAddon } from '../helpers/local-addon.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

const stat = (o: Partial<SourceStat> = {}): SourceStat => ({
  mode: 0o100644,
  uid: 1000,
  gid: 1000,
  nlink: 1,
  size: 1234,
  mtimeNs: 1_700_000_000_123_456_789n,
  ctimeNs: 1_700_000_001_000_000_000n,
  dev: 2049n,
  ino: 131_077n,
  rdev: 0,
  ...o,
});
const names = [Buffer.from('b'), Buffer.from([0x61, 0xff])];
const lstats = (): SourceLstat[] => [
  { st: stat(), xattrs: [[Buffer.from('user.z'), Buffer.from('1')], [Buffer.from('user.a'), Buffer.alloc(0)]] },
  { st: stat({ mode: 0o120777, size: 3, ino: 131_078n }) },
];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The digest's input for `lstats()` built by hand from FORMAT.md 2.3.6, field by field. */
function documentedInput(): Buffer {
  const domain = Buffer.from('fragfs folder entries v1\0');
  const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
  const entry = (name: Buffer, st: SourceStat, xattrs: [Buffer, Buffer][]): Buffer => {
    const fixed = Buffer.alloc(64);
    [name.length, st.mode, st.uid, st.gid, st.nlink, xattrs.length].forEach((v, i) => fixed.writeUInt32LE(v, i * 4));
    fixed.writeDoubleLE(st.size, 24);
    fixed.writeDoubleLE(st.rdev, 32);
    fixed.writeBigInt64LE(st.mtimeNs, 40);
    fixed.writeBigInt64LE(st.ctimeNs, 48);
    fixed.writeBigUInt64LE(st.ino, 56);
    const attrs = xattrs.map(([k, v]) => {
      const lens = Buffer.alloc(8);
      lens.writeUInt32LE(k.length, 0);
      lens.writeUInt32LE(v.length, 4);
      return Buffer.concat([lens, pad(k), pad(v)]);
    });
    return Buffer.concat([fixed, pad(name), ...attrs]);
  };
  const [file, link] = lstats();
  // Name-byte order: 0x61 0xff ('a\xff', the symlink) before 'b'; attributes by name: user.a, user.z.
  return Buffer.concat([
    pad(domain),
    entry(names[1]!, link!.st!, []),
    entry(names[0]!, file!.st!, [
      [Buffer.from('user.a'), Buffer.alloc(0)],
      [Buffer.from('user.z'), Buffer.from('1')],
    ]),
  ]);
}

test('the digest of a pinned folder (FORMAT.md 2.3.6 sourceTag): the documented input, and a vector', (t) => {
  const s = summarizeFolder(names, lstats())!;
  t.is(hex(s.digest), hex(refBlake3(documentedInput())), 'BLAKE3 of the documented input (reference BLAKE3)');
  t.is(hex(s.digest), '6a424e28c82ccc2b64e24297686f9508cd9fe05b6b63a22afa7d18f97e4aa359');
  const dirId = 'ab'.repeat(32);
  const tagInput = Buffer.concat([Buffer.from('fragfs source tag v1\0'), s.digest, Buffer.from(dirId, 'hex')]);
  t.is(hex(sourceTag(s.digest, dirId)), hex(refBlake3(tagInput)).slice(0, 32));
  t.is(hex(sourceTag(s.digest, dirId)), 'fe67b75acdd3e6dcebdda193162722f0');
  t.deepEqual({ files: s.files, plainBytes: s.plainBytes, symlinks: s.symlinks, newest: s.newestFileMtimeNs }, { files: 1, plainBytes: 1234, symlinks: 1, newest: 1_700_000_000_123_456_789n });
});

test('every field a change shows moves the digest; st_dev, the listing order and the attributes order do not', (t) => {
  const base = hex(summarizeFolder(names, lstats())!.digest);
  const changes: [string, Partial<SourceStat>][] = [
    ['mode', { mode: 0o100600 }],
    ['uid', { uid: 0 }],
    ['gid', { gid: 0 }],
    ['nlink', { nlink: 0 }],
    ['size', { size: 1235 }],
    ['rdev', { rdev: 1 }],
    ['mtime', { mtimeNs: 1_700_000_000_123_456_788n }],
    ['ctime', { ctimeNs: 1_700_000_001_000_000_001n }],
    ['inode', { ino: 9n }],
  ];
  for (const [what, change] of changes) {
    const l = lstats();
    l[0] = { ...l[0]!, st: { ...l[0]!.st!, ...change } } as SourceLstat;
    t.not(hex(summarizeFolder(names, l)!.digest), base, what);
  }
  const value = lstats();
  value[0] = { st: stat(), xattrs: [[Buffer.from('user.z'), Buffer.from('2')], [Buffer.from('user.a'), Buffer.alloc(0)]] };
  t.not(hex(summarizeFolder(names, value)!.digest), base, 'an attribute value');
  t.not(hex(summarizeFolder([Buffer.from('c'), names[1]!], lstats())!.digest), base, 'a name');
  const dev = lstats();
  dev[0] = { ...dev[0]!, st: stat({ dev: 7n }) } as SourceLstat;
  t.is(hex(summarizeFolder(names, dev)!.digest), base, 'st_dev');
  t.is(hex(summarizeFolder([...names].reverse(), lstats().reverse())!.digest), base, 'listing order');
  const swapped = lstats();
  swapped[0] = { st: stat(), xattrs: [[Buffer.from('user.a'), Buffer.alloc(0)], [Buffer.from('user.z'), Buffer.from('1')]] };
  t.is(hex(summarizeFolder(names, swapped)!.digest), base, 'attributes order');
  const s = summarizeFolder(names, lstats())!;
  t.not(hex(sourceTag(s.digest, 'ab'.repeat(32))), hex(sourceTag(s.digest, 'ac'.repeat(32))), 'the tag binds the listing id');
});

test('no summary for a folder holding a folder, an entry that failed lstat or whose attributes failed; files with several links are listed', (t) => {
  const linked = summarizeFolder(names, [lstats()[0]!, { st: stat({ nlink: 2, dev: 5n, ino: 77n }) }]);
  t.deepEqual(linked?.linkedInodes, ['5:77']);
  t.deepEqual(summarizeFolder(names, lstats())?.linkedInodes, []);
  const error = Object.assign(new Error('EACCES'), { code: 'EACCES' });
  const cases: [string, SourceLstat][] = [
    ['a folder', { st: stat({ mode: 0o40755 }) }],
    ['a failed lstat', { error }],
    ['failed attributes', { st: stat(), xattrError: error }],
  ];
  for (const [what, bad] of cases) t.is(summarizeFolder(names, [lstats()[0]!, bad]), undefined, what);
  t.not(summarizeFolder([], []), undefined, 'an empty folder has one');
});

interface Fixture {
  repo: Repo;
  tree: string;
  work: string;
}

/** A tree of three folders of files, an hour old (outside the racy window), put once. */
async function fixture(t: { teardown: (f: () => Promise<void>) => void }): Promise<Fixture> {
  const tmp = await tempDir('folder-tag-');
  t.teardown(tmp.remove);
  const tree = join(tmp.path, 'tree');
  const hourAgo = new Date(Date.now() - 3600_000);
  for (const d of ['a', 'b', 'c']) {
    await mkdir(join(tree, d), { recursive: true });
    for (let i = 0; i < 5; i++) {
      await writeFile(join(tree, d, `f${i}`), `${d} ${i}\n`.repeat(i + 1));
      await utimes(join(tree, d, `f${i}`), hourAgo, hourAgo);
    }
  }
  await symlink('f0-to', join(tree, 'c', 'link'));
  const repo = await Repo.init({ storePath: join(tmp.path, 'store'), backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST });
  t.teardown(() => repo.close());
  await putPaths(repo, [tree]);
  return { repo, tree, work: tmp.path };
}

/** The meta ids of kind `kind` the repo reads while `f` runs. */
async function metaRead<T>(repo: Repo, kind: string, f: () => Promise<T>): Promise<{ result: T; ids: Set<string> }> {
  const ids = new Set<string>();
  const get = repo.getMeta.bind(repo);
  repo.getMeta = (async (id: string, k: string, ...rest: unknown[]) => {
    if (k === kind) ids.add(id);
    return (get as (...a: unknown[]) => unknown)(id, k, ...rest);
  }) as typeof repo.getMeta;
  try {
    return { result: await f(), ids };
  } finally {
    repo.getMeta = get;
  }
}

async function folderEntries(repo: Repo, key: string): Promise<Map<string, { dir?: string; sourceTag?: Uint8Array }>> {
  const { snapshot } = await loadSnapshot(repo, key);
  return new Map((await readDirEntries(repo, snapshot.root, '/')).map((e) => [e.name.toString(), e]));
}

test('an unchanged re-put reads no listing of a folder of files and takes each whole by its tag', async (t) => {
  await localAddon(t);
  const { repo, tree } = await fixture(t);
  const first = (await repo.listRefs()).at(-1)!.snapshot;
  const before = await folderEntries(repo, first);
  for (const e of before.values()) t.is(e.sourceTag?.length, 16);
  const leafIds = [...before.values()].map((e) => e.dir!);
  const { result: r, ids } = await metaRead(repo, 'dir', () => putPaths(repo, [tree]));
  t.is(r.parent, first);
  t.is(r.unchangedDirs, 4);
  t.is(r.unchangedFiles, 15);
  t.is(r.files, 15);
  t.is(r.symlinks, 1);
  t.deepEqual(leafIds.filter((id) => ids.has(id)), [], 'no listing of a, b or c was read');
  t.true(ids.size > 0, 'the top folder was read');
  t.deepEqual(await folderEntries(repo, r.key), before);
});

test('what the tag must not hide is stored: an attribute set, a symlink replaced at the same length and mtime', async (t) => {
  const local = await localAddon(t);
  const { repo, tree, work } = await fixture(t);
  const file = Buffer.from(join(tree, 'a', 'f2'));
  local.lsetxattr(file, Buffer.from('user.note'), Buffer.from('set after the put'));
  const link = join(tree, 'c', 'link');
  const linkMtime = (await import('node:fs/promises')).lstat(link, { bigint: true });
  await rm(link);
  await symlink('f1-to', link);
  local.lutimens(Buffer.from(link), (await linkMtime).atimeNs, (await linkMtime).mtimeNs);
  const r = await putPaths(repo, [tree]);
  t.is(r.unchangedDirs, 1, 'only b is taken whole');
  const out = join(work, 'out');
  await getTree(repo, r.key, out);
  t.deepEqual(local.lgetxattrs(Buffer.from(join(out, 'a', 'f2'))), [[Buffer.from('user.note'), Buffer.from('set after the put')]]);
  t.is(await readlink(join(out, 'c', 'link')), 'f1-to');
});

test('a folder holding a file young enough to be racy is listed and the file read; --verbose lists every folder', async (t) => {
  await localAddon(t);
  const { repo, tree } = await fixture(t);
  // A second put right away: its parent is so young that every file of the tree lies in its racy window.
  const now = new Date();
  await utimes(join(tree, 'b', 'f1'), now, now);
  await putPaths(repo, [tree]);
  const { result: r, ids } = await metaRead(repo, 'dir', () => putPaths(repo, [tree]));
  const entries = await folderEntries(repo, r.parent!);
  t.true(ids.has(entries.get('b')!.dir!), "b's listing was read: f1 is racy");
  t.false(ids.has(entries.get('a')!.dir!));
  t.is(r.unchangedFiles, 14, 'f1 was read');
  const left: string[] = [];
  const { ids: verbose } = await metaRead(repo, 'dir', () =>
    putPaths(repo, [tree], { exclude: new ExcludePatterns(['f4']), onLeftOut: (p) => void left.push(p.toString()) }),
  );
  t.is(left.length, 3, 'each folder named its f4');
  t.true(verbose.size >= 4, 'every listing read');
});

test('a keep rule added since the parent is applied to folders whose files did not change', async (t) => {
  await localAddon(t);
  const { repo, tree } = await fixture(t);
  const r = await putPaths(repo, [tree], { exclude: new ExcludePatterns(['f4']) });
  t.is(r.files, 12);
  const { snapshot } = await loadSnapshot(repo, r.key);
  for (const folder of await readDirEntries(repo, snapshot.root, '/')) {
    const names = (await readDirEntries(repo, folder, '/')).map((e) => e.name.toString());
    t.false(names.includes('f4'), `${folder.name.toString()} holds no f4`);
  }
  // The rule dropped again: the files come back (read again, as the parent lacks them).
  t.is((await putPaths(repo, [tree])).files, 15);
});

test('files whose other names lie outside the tree do not stop a folder being taken whole; one whose other name joins the put does', async (t) => {
  await localAddon(t);
  const { repo, tree, work } = await fixture(t);
  // As `cp -al` leaves a tree: every file of a has a second name, outside the tree.
  const outside = join(work, 'outside');
  await mkdir(outside);
  for (let i = 0; i < 5; i++) await link(join(tree, 'a', `f${i}`), join(outside, `f${i}`));
  // b's f0 gets its second name in z, a folder of the tree the first put leaves out.
  await mkdir(join(tree, 'z'));
  await link(join(tree, 'b', 'f0'), join(tree, 'z', 'f0'));
  const first = await putPaths(repo, [tree], { exclude: new ExcludePatterns(['z']) });
  const tagged = await folderEntries(repo, first.key);
  t.is(tagged.get('a')?.sourceTag?.length, 16, 'a is tagged although its files have two links');
  t.is(tagged.get('b')?.sourceTag?.length, 16, 'b is tagged: its linked file has one name in the put');
  const { result: again, ids } = await metaRead(repo, 'dir', () => putPaths(repo, [tree], { exclude: new ExcludePatterns(['z']) }));
  t.is(again.parent, first.key);
  t.false(ids.has(tagged.get('a')!.dir!), "a's listing was not read");
  t.false(ids.has(tagged.get('b')!.dir!), "b's listing was not read");
  t.is(again.unchangedFiles, 15);
  // Without the rule, b/f0 and z/f0 are one inode with two names in the put: b is listed again
  // and both names come back as one hard-linked file.
  const { result: whole, ids: read } = await metaRead(repo, 'dir', () => putPaths(repo, [tree], { parent: again.key }));
  t.true(read.has(tagged.get('b')!.dir!), "b's listing was read");
  t.false(read.has(tagged.get('a')!.dir!), 'a is still taken whole');
  const entries = await folderEntries(repo, whole.key);
  t.is(entries.get('b')?.sourceTag, undefined, 'a folder holding a hard-link group member carries no tag');
  const out = join(work, 'out');
  await getTree(repo, whole.key, out);
  const [b0, z0] = await Promise.all([fsStat(join(out, 'b', 'f0')), fsStat(join(out, 'z', 'f0'))]);
  t.is(b0.ino, z0.ino, 'b/f0 and z/f0 come back as one file');
  t.is(b0.nlink, 2);
});
