// Shares and groups on a real dir store (packs on): a link opens its folder and nothing else (every
// fragment of the store tried with every key the link leads to), people and groups open what was
// sealed to them and nothing after their removal, gc keeps shared folders, and trees written before
// folders had keys are shared after their folders are written again.

import test from 'ava';
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFragfsError } from '../../src/errors.js';
import { decodeMeta } from '../../src/fragment/meta-codec.js';
import type { Entry } from '../../src/fragment/tree-format.js';
import { PEOPLE_ADMIN_KEY_CONTEXT } from '../../src/people/admin-seal.js';
import { newIdentity, recipientOf } from '../../src/people/age-box.js';
import { Groups } from '../../src/people/groups.js';
import { updatePeople } from '../../src/people/people-config.js';
import { parseShareLink } from '../../src/people/share-link.js';
import { createShare, listShares, openShareLink, removeShare } from '../../src/people/shares.js';
import { runGc } from '../../src/gc/gc.js';
import { putPaths } from '../../src/repo/put.js';
import { Repo } from '../../src/repo/repo.js';
import { loadSnapshot, readDirEntries, resolveEntry, walkTree } from '../../src/repo/tree-reader.js';
import { readExtents } from '../../src/repo/tree-writer.js';
import { TEST_PASSPHRASE } from '../helpers/cli.js';
import { TEST_KDF_COST, tempDir } from '../helpers/stores.js';

const SECRET_NAMES = ['parent-only.txt', 'sibling', 'sibling-secret.txt', 'inside.txt', 'deeper', 'big.log'];

/** /a/{parent-only.txt, sibling/sibling-secret.txt, b/{inside.txt, deeper/x.txt, big.log (paged)}} */
async function makeStore(t: import('ava').ExecutionContext): Promise<{ repo: Repo; storePath: string; key: string; src: string }> {
  const work = await tempDir('fragfs-share-');
  t.teardown(work.remove);
  const src = join(work.path, 'src');
  await mkdir(join(src, 'a', 'sibling'), { recursive: true });
  await mkdir(join(src, 'a', 'b', 'deeper'), { recursive: true });
  await writeFile(join(src, 'a', 'parent-only.txt'), 'PARENT CONTENT\n');
  await writeFile(join(src, 'a', 'sibling', 'sibling-secret.txt'), 'SIBLING CONTENT\n');
  await writeFile(join(src, 'a', 'b', 'inside.txt'), 'INSIDE CONTENT\n');
  await writeFile(join(src, 'a', 'b', 'deeper', 'x.txt'), 'DEEP CONTENT\n');
  // 40 blocks of 64 KiB: more than fit inline, so the file has a manifest page (its own key too).
  await writeFile(join(src, 'a', 'b', 'big.log'), Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(65536, `block ${i} `))));
  await symlink('inside.txt', join(src, 'a', 'b', 'link'));
  const storePath = join(work.path, 'store');
  const repo = await Repo.init({ storePath, backend: 'dir', passphrase: TEST_PASSPHRASE, kdfCost: TEST_KDF_COST, blockSize: 65536, threads: 2 });
  t.teardown(() => repo.close());
  const key = (await putPaths(repo, [src])).key;
  return { repo, storePath, key, src };
}

/** Every meta fragment id of the space (packed ones included). */
async function metaIds(repo: Repo): Promise<string[]> {
  const out: string[] = [];
  for await (const id of repo.store.list(repo.metaNs)) out.push(id);
  return out;
}

test('a link to /a/b opens /a/b and below, and no other fragment of the store: not /a, not /a/sibling, not the snapshot', async (t) => {
  const { repo, key } = await makeStore(t);
  const shared = await createShare(repo, { snapshot: key, path: [Buffer.from('a'), Buffer.from('b')], to: [] });
  t.true(shared.files >= 3);

  // What the space's holder knows is in /src/a/b: its dir and manifest objects.
  const { snapshot } = await loadSnapshot(repo, key);
  const b = await resolveEntry(repo, snapshot.root, ['a', 'b'].map((s) => Buffer.from(s)));
  const inside = new Set<string>();
  await walkTree(repo, b, {
    entry: (e) => {
      if (e.dir) inside.add(e.dir);
      for (const p of e.pages ?? []) inside.add(p);
    },
  });
  t.true(inside.size >= 3);

  // What the link leads to: start from its body, then try every key learnt on every fragment.
  const opened = await openShareLink(shared.link, []);
  t.teardown(() => opened.repo.close());
  t.false(opened.repo.hasSpaceKeys);
  const keys: Uint8Array[] = [];
  const learn = (e: Entry): void => {
    if (e.dirKey) keys.push(e.dirKey);
    for (const k of e.pageKeys ?? []) keys.push(k);
  };
  learn(opened.snapshot.root);
  t.deepEqual(opened.snapshot.root.name, Buffer.alloc(0), 'the folder\'s own name stays behind');
  const all = await metaIds(repo);
  const opens = new Set<string>();
  const names: string[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const id of all) {
      if (opens.has(id)) continue;
      const bytes = await repo.store.get(repo.metaNs, id);
      for (const k of keys) {
        let obj;
        try {
          obj = decodeMeta(bytes, id, { fragmentKey: k });
        } catch {
          continue;
        }
        opens.add(id);
        grew = true;
        if (obj.kind === 'dir') {
          for (const e of obj.entries) {
            learn(e);
            names.push(e.name.toString());
          }
        }
        break;
      }
    }
  }
  t.deepEqual([...opens].sort(), [...inside].sort(), 'exactly the fragments of /a/b open');
  t.true(all.length > opens.size + 2, 'the snapshot, the top folders and the sibling stay closed');
  for (const n of ['parent-only.txt', 'sibling', 'sibling-secret.txt', 'a', 'b']) t.false(names.includes(n), n);
  t.true(names.includes('inside.txt') && names.includes('deeper'));

  // And the reading commands' path: what is inside reads; '..' does not exist.
  const entries = await readDirEntries(opened.repo, opened.snapshot.root, '/');
  t.deepEqual(entries.map((e) => e.name.toString()).sort(), ['big.log', 'deeper', 'inside.txt', 'link']);
  const big = entries.find((e) => e.name.toString() === 'big.log')!;
  t.truthy(big.pages && big.pageKeys);
  const xs = await readExtents(opened.repo, big, '/big.log');
  t.is(Buffer.from(await opened.repo.readBlock(xs[39]!, '/big.log')).subarray(0, 8).toString(), 'block 39');
  // The share's repo holds no space key: a snapshot object does not open with it.
  await t.throwsAsync(opened.repo.getMeta(key, 'snapshot'), { message: /a share does not hold|not known here/ });
});

test('fragfs.json and the link hold no name, content, passphrase or identity in clear', async (t) => {
  const { repo, storePath, key } = await makeStore(t);
  const alice = await newIdentity();
  const adminKey = repo.deriveKey(PEOPLE_ADMIN_KEY_CONTEXT);
  await updatePeople(storePath, repo.space, async (entry) => {
    const g = Groups.open(entry, adminKey);
    await g.create('secret-team', [await recipientOf(alice)]);
    await g.save(entry);
  });
  const a = await createShare(repo, { snapshot: key, path: [Buffer.from('a')], to: ['@secret-team'] });
  const b = await createShare(repo, { snapshot: key, path: [], to: [] });
  const config = await readFile(join(storePath, 'fragfs.json'), 'utf8');
  for (const text of [config, a.link, b.link]) {
    for (const secret of [...SECRET_NAMES, 'CONTENT', TEST_PASSPHRASE, 'secret-team', alice, 'AGE-SECRET-KEY', '/src/a']) {
      t.false(text.includes(secret), `${secret} in ${text.slice(0, 40)}`);
    }
  }
  // The space's holder lists both: the link share with its key, the people share without one.
  const listed = await listShares(repo);
  t.deepEqual(listed.map((x) => [x.id, x.link, x.path, x.to]), [[a.id, a.link, '/a', ['@secret-team']], [b.id, b.link, '/', []]]);
  t.false(JSON.stringify(listed).includes('"key"'));
  // The link names its store and share, nothing else readable.
  const parsed = parseShareLink(b.link);
  t.is(parsed.location, storePath);
  t.is(parsed.key?.length, 32);
  t.is(parseShareLink(a.link).key, undefined);
});

test('a share to people: recipients and members of the group (and of groups inside it) open it; others get exit 4; a member removed opens what was shared before, not after', async (t) => {
  const { repo, storePath, key } = await makeStore(t);
  const [alice, bob, carol, mallory] = await Promise.all([newIdentity(), newIdentity(), newIdentity(), newIdentity()]);
  const [A, B, C] = await Promise.all([alice, bob, carol].map((i) => recipientOf(i)));
  const adminKey = repo.deriveKey(PEOPLE_ADMIN_KEY_CONTEXT);
  const groups = async (f: (g: Groups) => Promise<unknown>): Promise<void> =>
    updatePeople(storePath, repo.space, async (entry) => {
      const g = Groups.open(entry, adminKey);
      await f(g);
      await g.save(entry);
    });
  await groups((g) => g.create('acme', [A!]));
  await groups((g) => g.create('research.acme', [B!, C!]));
  const path = [Buffer.from('a'), Buffer.from('b')];
  const before = await createShare(repo, { snapshot: key, path, to: ['@acme'] });
  const opensFor = async (link: string, who: string): Promise<boolean> => {
    try {
      const s = await openShareLink(link, [who]);
      await s.repo.close();
      return true;
    } catch (e) {
      t.true(isFragfsError(e, 'BAD_PASSPHRASE'), String(e));
      t.regex((e as Error).message, /none of the identities given can open it/);
      return false;
    }
  };
  t.deepEqual(await Promise.all([alice, bob, carol, mallory].map((i) => opensFor(before.link, i!))), [true, true, true, false]);
  const noId = await t.throwsAsync(openShareLink(before.link, []));
  t.true(isFragfsError(noId, 'NO_PASSPHRASE'), String(noId));

  await groups((g) => g.remove('research.acme', [C!]));
  const after = await createShare(repo, { snapshot: key, path, to: ['@acme'] });
  t.deepEqual(await Promise.all([alice, bob, carol].map((i) => opensFor(after.link, i!))), [true, true, false]);
  t.true(await opensFor(before.link, carol!), 'what carol could read before stays readable');
  const direct = await createShare(repo, { snapshot: key, path, to: [C!] });
  t.deepEqual(await Promise.all([alice, carol].map((i) => opensFor(direct.link, i!))), [false, true]);
});

test('gc keeps a shared folder after its snapshot is forgotten; once unshared, gc frees it', async (t) => {
  const { repo, storePath, key } = await makeStore(t);
  const shared = await createShare(repo, { snapshot: key, path: [Buffer.from('a'), Buffer.from('b')], to: [] });
  await repo.close();
  const forget = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE });
  t.teardown(() => forget.close());
  await forget.store.delete(forget.refNs, key);
  const first = await runGc(forget);
  t.is(first.snapshots, 0);
  t.true(first.freed > 0, 'the rest of the forgotten snapshot is freed');
  await forget.close();
  const s = await openShareLink(shared.link, []);
  const entries = await readDirEntries(s.repo, s.snapshot.root, '/');
  t.true(entries.some((e) => e.name.toString() === 'inside.txt'));
  await s.repo.close();

  const admin = await Repo.open({ storePath, passphrase: TEST_PASSPHRASE });
  t.teardown(() => admin.close());
  await removeShare(admin, shared.id);
  await t.throwsAsync(openShareLink(shared.link, []), { message: /not in the store/ });
  const second = await runGc(admin);
  t.true(second.freed > 0, 'the folder that only the share kept is freed');
  t.is(second.unreferenced, second.freed);
});

test('a snapshot of a store written before folders had keys is shared after its folders are written again (data untouched)', async (t) => {
  const work = await tempDir('fragfs-share-v2-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await cp(fileURLToPath(new URL('../../../fixtures/stores/v2/dir/', import.meta.url)), storePath, { recursive: true });
  const expected = JSON.parse(await readFile(fileURLToPath(new URL('../../../fixtures/stores/v2/expected.json', import.meta.url)), 'utf8')) as { passphrase: string; name: string };
  const repo = await Repo.open({ storePath, passphrase: expected.passphrase, threads: 2 });
  t.teardown(() => repo.close());
  let dataBefore = 0;
  for await (const _ of repo.store.list(repo.dataNs)) dataBefore++;
  const shared = await createShare(repo, { snapshot: expected.name, path: [], to: [] });
  let dataAfter = 0;
  for await (const _ of repo.store.list(repo.dataNs)) dataAfter++;
  t.is(dataAfter, dataBefore, 'no data block written again');
  const s = await openShareLink(shared.link, []);
  t.teardown(() => s.repo.close());
  let files = 0;
  let keyed = true;
  await walkTree(s.repo, s.snapshot.root, {
    entry: async (e, path) => {
      if (e.type === 'dir' && e.dirKey === undefined) keyed = false;
      if (e.pages && e.pageKeys === undefined) keyed = false;
      if (e.type === 'file') {
        files++;
        for (const x of await readExtents(s.repo, e, path)) await s.repo.readBlock(x, path);
      }
    },
  });
  t.true(keyed, 'every folder and page of the shared tree has its key');
  t.is(files, shared.files);
});
