// The committed stores of every earlier format (fixtures/stores/v1, v2, made once each by
// scripts/make-golden-store.ts) must open and restore byte for byte with today's code, and today's
// encoders, given the objects those stores hold, must give the very fragment ids they hold: a format
// change that breaks or silently forks old stores fails here.
// The fixtures are only ever read: each test works on a copy in a temp folder.

import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { cp, lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeGoldenTree, type GoldenExpected } from '../../scripts/make-golden-store.js';
import { FragfsError, isFragfsError } from '../../src/errors.js';
import type { Entry } from '../../src/fragment/tree-format.js';
import { getTree } from '../../src/repo/get.js';
import { Repo } from '../../src/repo/repo.js';
import { loadSnapshot, walkTree } from '../../src/repo/tree-reader.js';
import { readExtents } from '../../src/repo/tree-writer.js';
import { verifyStore } from '../../src/repo/verify.js';
import { tempDir } from '../helpers/stores.js';

const BACKENDS = ['dir', 'split'] as const;
type Backend = (typeof BACKENDS)[number];

for (const version of ['v1', 'v2'] as const) {
const FIXTURES = fileURLToPath(new URL(`../../../fixtures/stores/${version}/`, import.meta.url));
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as GoldenExpected;

/** A fresh copy of one golden store, opened; closed and removed when the test ends. */
async function openCopy(t: ExecutionContext, backend: Backend): Promise<{ repo: Repo; work: string; storePath: string }> {
  const work = await tempDir('fragfs-golden-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await cp(join(FIXTURES, backend), storePath, { recursive: true });
  const repo = await Repo.open({ storePath, passphrase: expected.passphrase, threads: 2 });
  t.teardown(() => repo.close());
  return { repo, work: work.path, storePath };
}

test(`${version}: expected.json describes the tree the golden stores were made from`, (t) => {
  t.is(expected.format, 'fragfs golden store v1');
  t.is(expected.blockSize, 65536);
  t.deepEqual(Object.keys(expected.backends).sort(), [...BACKENDS]);
  const types = new Set(expected.paths.map((p) => p.type));
  t.deepEqual([...types].sort(), ['dir', 'file', 'symlink']);
  t.true(expected.paths.some((p) => p.linkGroup !== undefined));
  // The paged log has more extents than fit inline (32): the stores hold a manifest page.
  t.true(expected.backends.dir!.blocks['data/paged.log']!.length > 32);
});

for (const backend of BACKENDS) {
  const exp = expected.backends[backend]!;

  test(`${version} ${backend}: the golden store restores every path exactly`, async (t) => {
    const { repo, work } = await openCopy(t, backend);
    t.is(repo.blockSize, expected.blockSize);
    t.is(await repo.resolveSnapshot(expected.name), exp.metaKey);
    t.is(await repo.resolveSnapshot(exp.metaKey.slice(0, 12)), exp.metaKey);
    const refs = await repo.listRefs();
    t.deepEqual(
      refs.map((r) => [r.snapshot, r.name]),
      [[exp.metaKey, expected.name]],
    );

    const dest = join(work, 'restored');
    const got = await getTree(repo, expected.name, dest);
    t.is(got.key, exp.metaKey);
    t.deepEqual(got.skipped, []);
    t.deepEqual(await describeGoldenTree(dest), expected.paths);

    // The holes of the sparse file (blocks 1, 2 and the short block 4) are not written.
    const sparse = await lstat(join(dest, 'data', 'sparse.img'));
    t.true(sparse.blocks * 512 <= sparse.size - 2 * expected.blockSize, `sparse.img allocates ${sparse.blocks * 512} bytes`);
  });

  test(`${version} ${backend}: today's encoders give the ids the golden store holds (no format drift)`, async (t) => {
    const { repo } = await openCopy(t, backend);
    const count = async (ns: typeof repo.metaNs): Promise<number> => {
      let n = 0;
      for await (const _ of repo.store.list(ns)) n++;
      return n;
    };
    const metaBefore = await count(repo.metaNs);
    const dataBefore = await count(repo.dataNs);

    const { key, snapshot } = await loadSnapshot(repo, exp.metaKey);
    t.is(key, exp.metaKey);
    // Re-encoding what was decoded must land on the same id: else equal trees stop sharing fragments
    // with old snapshots, and the meta key of an unchanged tree changes.
    t.is(await repo.putMeta(snapshot), exp.metaKey, 'snapshot object re-encodes to the meta key');
    const blocks: Record<string, [number, number, string][]> = {};
    const extents = new Map<string, Entry['blocks']>();
    let metaObjects = 1;
    await walkTree(repo, snapshot.root, {
      entry: async (e, path) => {
        if (e.type === 'dir' && e.dir !== undefined) {
          const dir = await repo.getMeta(e.dir, 'dir', path);
          t.is(await repo.putMeta(dir), e.dir, `dir object of ${path} re-encodes to its id`);
          metaObjects++;
        }
        for (const page of e.pages ?? []) {
          const obj = await repo.getMeta(page, 'manifest', path);
          t.is(await repo.putMeta(obj), page, `manifest page of ${path} re-encodes to its id`);
          metaObjects++;
        }
        if (e.type === 'file') {
          const xs = await readExtents(repo, e, path);
          blocks[path === '/' ? '.' : path.slice(1)] = xs.map((x) => [x.offset, x.plainSize, x.id]);
          extents.set(path, xs);
        }
      },
    });
    t.deepEqual(blocks, exp.blocks, 'file manifests as written');
    t.true(metaObjects >= 10);

    // Every data block: decoded, then encoded again under the same convergence secret: same key, same id.
    const seen = new Set<string>();
    for (const [path, xs] of extents) {
      for (const x of xs ?? []) {
        if (seen.has(x.id)) continue;
        seen.add(x.id);
        const plain = await repo.readBlock(x, path);
        t.is(plain.length, x.plainSize);
        const again = await repo.writeBlock(plain);
        t.is(again.id, x.id, `block at ${x.offset} of ${path} re-encodes to its id`);
        t.is(Buffer.from(again.key).toString('hex'), Buffer.from(x.key).toString('hex'));
      }
    }
    // Nothing new was written: every fragment the re-encoding produced was already there.
    t.is(await count(repo.metaNs), metaBefore);
    t.is(await count(repo.dataNs), dataBefore);
    t.is(dataBefore, seen.size);
    t.is(metaBefore, metaObjects);
  });

  test(`${version} ${backend}: verify finds no problems in the golden store`, async (t) => {
    const { repo } = await openCopy(t, backend);
    const report = await verifyStore(repo, undefined);
    t.deepEqual(report.problems, []);
    t.is(report.snapshots, 1);
    t.is(report.unreferencedChecked, 0);
    const distinctBlocks = new Set(Object.values(exp.blocks).flatMap((xs) => xs.map((x) => x[2])));
    t.is(report.dataChecked, distinctBlocks.size);
    t.is(report.plainBytesChecked, sumDistinct(exp.blocks));
    let metaFragments = 0;
    for await (const _ of repo.store.list(repo.metaNs)) metaFragments++;
    t.is(report.metaChecked, metaFragments, 'the snapshot, every dir object and the manifest page');
  });

  // v2 stores pack their small fragments: a flipped byte in a pack is test/pack's business.
  if (version === 'v1') test(`${version} ${backend}: a flipped byte in one data fragment fails get with CORRUPT naming that fragment`, async (t) => {
    const { repo, storePath, work } = await openCopy(t, backend);
    const [, [offset, , victim]] = exp.blocks['data/random.bin']! as [unknown, [number, number, string]];
    t.is(offset, expected.blockSize);
    // dir: the whole fragment; split: the payload (ciphertext), its header beside it.
    const file = join(storePath, 'default', 'objects', victim.slice(0, 2), victim.slice(2));
    const fh = await open(file, 'r+');
    try {
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, 4000);
      b[0] = b[0]! ^ 0x01;
      await fh.write(b, 0, 1, 4000);
    } finally {
      await fh.close();
    }
    const err = await t.throwsAsync(getTree(repo, expected.name, join(work, 'restored')));
    t.true(isFragfsError(err, 'CORRUPT'), String(err));
    t.is((err as FragfsError).fragmentId, victim);
    t.is((err as FragfsError).path, '/data/random.bin');
    t.regex(err!.message, new RegExp(victim));

    // verify names it too, with the file that needs it, and nothing else.
    const report = await verifyStore(repo, undefined);
    t.deepEqual(
      report.problems.map((p) => [p.fragmentId, p.kind, p.problem, p.usedBy.map((u) => u.replace(/^[0-9a-f]{12}:/, ''))]),
      [[victim, 'data', 'corrupt', ['/data/random.bin']]],
    );
  });
}

test(`${version}: the golden store refuses a wrong passphrase`, async (t) => {
  const work = await tempDir('fragfs-golden-');
  t.teardown(work.remove);
  const storePath = join(work.path, 'store');
  await cp(join(FIXTURES, 'dir'), storePath, { recursive: true });
  const err = await t.throwsAsync(Repo.open({ storePath, passphrase: 'fragfs golden v2' }));
  t.true(isFragfsError(err, 'BAD_PASSPHRASE'), String(err));
});

}

/** Plain bytes of the distinct data blocks of a manifest listing. */
function sumDistinct(blocks: Record<string, [number, number, string][]>): number {
  const sizes = new Map<string, number>();
  for (const xs of Object.values(blocks)) for (const [, size, id] of xs) sizes.set(id, size);
  let n = 0;
  for (const s of sizes.values()) n += s;
  return n;
}
