// A store with one snapshot per way a writer holding the store's keys (an attacker, or a buggy
// fragfs) can lie in metadata: fragments encrypted under the right key, shaped to crash, mislead or
// exhaust a reader. Fragments that fragfs's own write-side schema check refuses are forged here
// without it, the way an attacker would write them.

import { blake3, toHex } from '../../src/codec/blake3.js';
import { metaToWire } from '../../src/fragment/meta-schema.js';
import { hasOwnKey, sealMetaBody, sealOwnKeyBody, type MetaKeys } from '../../src/fragment/meta-codec.js';
import { META_COMPRESSION_NONE, META_ENCRYPTION_AES256GCM_OWN_KEY, META_ENCRYPTION_AES256GCM_SIV, packPlain, packSolmet } from '../../src/fragment/solmet.js';
import { META_VERSION, type BlockRef, type Entry, type Extent, type MetaObject } from '../../src/fragment/tree-format.js';
import { DEFAULT_SPACE, Repo } from '../../src/repo/repo.js';
import { readStoreConfig, unlockSpace } from '../../src/repo/store-config.js';
import type { TreeTotals } from '../../src/repo/tree-limits.js';
import { writeDir, writeSnapshot } from '../../src/repo/tree-writer.js';
import { TEST_PASSPHRASE } from './cli.js';
import { TEST_KDF_COST } from './stores.js';

export const HOSTILE_BLOCK_SIZE = 65536;

/** Every case is a snapshot named like it: a folder holding `ok.txt` ("hello\n") and the trouble. */
export const HOSTILE_CASES = [
  'past-size', // /bad/short.txt: size 3, an inline block of 6 bytes
  'past-size-paged', // /bad/paged.txt: size 3, a manifest page with a block of 6 bytes
  'overlap', // /bad/overlap.bin: inline blocks [0, 6) and [3, 9)
  'overlap-paged', // /bad/overlap.bin: two valid manifest pages, the second overlapping the first
  'dir-is-manifest', // /bad: a dir entry whose `dir` id names a manifest page
  'link-conflict', // /ok.txt and /bad/b.txt: hard-link group 1, different sizes and content
  'symlink-nul', // /bad/link: a symlink target with a NUL byte
  'slash-name', // /bad/x/y: an entry name with '/'
  'dag-bomb', // /bad: 40 levels of a dir holding the one below twice: 2^40 files, declared 1
  'huge-declared', // /bad/huge.img: 2^50 bytes, and the snapshot declares it
  'huge-undeclared', // /bad/huge.img: 2^50 bytes, the snapshot declares 6 bytes in all
  'big-sparse', // legitimate: /bad/big.img, 16 MiB of holes (too big under a small `ulimit -f`)
  'fewer', // an honest tree whose snapshot declares more files than it holds
  'shared-folders', // legitimate: /bad/one and /bad/two are the same dir fragment (identical folders)
] as const;
export type HostileCase = (typeof HOSTILE_CASES)[number];

export interface HostileStore {
  storePath: string;
  /** Meta key of each case's snapshot (also its name). */
  keys: Record<HostileCase, string>;
  /** The forged or shared fragment each case is about (for messages), when it has one. */
  fragments: Partial<Record<HostileCase, string>>;
}

const MTIME = 1_700_000_000_000_000_000n;

function file(name: string, size: number, content: Pick<Entry, 'blocks' | 'pages'>, extra: Partial<Entry> = {}): Entry {
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: MTIME, size, ...content, ...extra };
}

function dir(name: string, id: string): Entry {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: MTIME, size: 0, dir: id };
}

/** The metadata keys of the store's default space, as anyone with the passphrase has them. */
export async function metaKeysOf(storePath: string): Promise<MetaKeys> {
  const config = await readStoreConfig(storePath);
  return (await unlockSpace(config, DEFAULT_SPACE, TEST_PASSPHRASE, storePath)).keys;
}

/** writeDir's id alone: the hostile trees name folders by id; readers with the space's keys need no more. */
export async function writeDirId(repo: Repo, entries: Entry[]): Promise<string> {
  return (await writeDir(repo, entries)).id;
}

/** Stores `obj` as a meta fragment under the right key, without the write-side schema check. */
export async function forgeMeta(repo: Repo, keys: MetaKeys, obj: MetaObject): Promise<string> {
  const x = packPlain(metaToWire(obj));
  // Sealed as its version says (FORMAT.md 2.2), so what the test finds wrong is the object, not the seal.
  const bytes = hasOwnKey(obj)
    ? packSolmet({ encryption: META_ENCRYPTION_AES256GCM_OWN_KEY, compression: META_COMPRESSION_NONE, body: sealOwnKeyBody(x, keys).body })
    : packSolmet({ encryption: META_ENCRYPTION_AES256GCM_SIV, compression: META_COMPRESSION_NONE, body: sealMetaBody(x, keys) });
  const id = toHex(blake3(bytes));
  await repo.store.put(repo.metaNs, id, bytes);
  return id;
}

export async function buildHostileStore(storePath: string): Promise<HostileStore> {
  const repo = await Repo.init({
    storePath,
    backend: 'dir',
    passphrase: TEST_PASSPHRASE,
    kdfCost: TEST_KDF_COST,
    blockSize: HOSTILE_BLOCK_SIZE,
    threads: 2,
  });
  try {
    const keys = await metaKeysOf(storePath);
    const hello: BlockRef = await repo.writeBlock(Buffer.from('hello\n'));
    const at = (offset: number): Extent => ({ offset, ...hello });
    const ok = file('ok.txt', 6, { blocks: [at(0)] });
    const forgedDir = (entries: Entry[]): Promise<string> => forgeMeta(repo, keys, { kind: 'dir', v: META_VERSION, entries });
    const page = (blocks: Extent[]): Promise<string> => repo.putMeta({ kind: 'manifest', v: META_VERSION, blocks });
    const out: HostileStore = { storePath, keys: {} as Record<HostileCase, string>, fragments: {} };

    /** A snapshot of / = { ok.txt, bad -> badDir }, declaring `totals` (default: what it holds, as put counts). */
    const snap = async (name: HostileCase, badDir: string | undefined, totals: TreeTotals, extra: Entry[] = []): Promise<void> => {
      const entries = [ok, ...extra];
      if (badDir !== undefined) entries.push(dir('bad', badDir));
      const root = dir('', await writeDirId(repo, entries));
      out.keys[name] = await writeSnapshot(repo, root, { source: [Buffer.from('/hostile')], name, ...totals });
    };
    // ok.txt and /bad, as put counts: the top folder too.
    const honest = (files: number, bytes: number): TreeTotals => ({ files: 1 + files, dirs: 2, logicalBytes: 6 + bytes });

    out.fragments['past-size'] = await forgedDir([file('short.txt', 3, { blocks: [at(0)] })]);
    await snap('past-size', out.fragments['past-size'], honest(1, 3));

    out.fragments['past-size-paged'] = await page([at(0)]);
    await snap(
      'past-size-paged',
      await writeDirId(repo, [file('paged.txt', 3, { pages: [out.fragments['past-size-paged']] })]),
      honest(1, 3),
    );

    out.fragments.overlap = await forgedDir([file('overlap.bin', 9, { blocks: [at(0), at(3)] })]);
    await snap('overlap', out.fragments.overlap, honest(1, 9));

    out.fragments['overlap-paged'] = await page([at(3)]);
    await snap(
      'overlap-paged',
      await writeDirId(repo, [file('overlap.bin', 9, { pages: [await page([at(0)]), out.fragments['overlap-paged']] })]),
      honest(1, 9),
    );

    out.fragments['dir-is-manifest'] = await page([at(0)]);
    await snap('dir-is-manifest', out.fragments['dir-is-manifest'], { files: 1, dirs: 2, logicalBytes: 6 });

    {
      const linked = { ...ok, link: 1 };
      out.fragments['link-conflict'] = await writeDirId(repo, [file('b.txt', 3, { blocks: [] }, { link: 1 })]);
      const root = dir('', await writeDirId(repo, [dir('bad', out.fragments['link-conflict']), linked]));
      out.keys['link-conflict'] = await writeSnapshot(repo, root, { source: [Buffer.from('/hostile')], name: 'link-conflict', files: 1, dirs: 2, logicalBytes: 6 });
    }

    out.fragments['symlink-nul'] = await forgedDir([
      { name: Buffer.from('link'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: MTIME, size: 3, target: Buffer.from('a\0b') },
    ]);
    await snap('symlink-nul', out.fragments['symlink-nul'], { files: 1, dirs: 2, logicalBytes: 6 });

    out.fragments['slash-name'] = await forgedDir([file('x/y', 6, { blocks: [at(0)] })]);
    await snap('slash-name', out.fragments['slash-name'], honest(1, 6));

    {
      let level = await writeDirId(repo, [file('f', 0, { blocks: [] })]);
      for (let i = 0; i < 40; i++) level = await writeDirId(repo, [dir('a', level), dir('b', level)]);
      out.fragments['dag-bomb'] = level;
      // What a tree of 40 nested folders and one empty file would declare.
      await snap('dag-bomb', level, { files: 2, dirs: 42, logicalBytes: 6 });
    }

    out.fragments['huge-declared'] = await writeDirId(repo, [file('huge.img', 2 ** 50, { blocks: [] })]);
    await snap('huge-declared', out.fragments['huge-declared'], honest(1, 2 ** 50));
    out.fragments['huge-undeclared'] = out.fragments['huge-declared'];
    await snap('huge-undeclared', out.fragments['huge-undeclared'], { files: 2, dirs: 2, logicalBytes: 6 });

    out.fragments['big-sparse'] = await writeDirId(repo, [file('big.img', 16 * 1024 * 1024, { blocks: [] })]);
    await snap('big-sparse', out.fragments['big-sparse'], honest(1, 16 * 1024 * 1024));

    await snap('fewer', undefined, { files: 5, dirs: 1, logicalBytes: 6 });

    {
      const same = await writeDirId(repo, [file('inner.txt', 6, { blocks: [at(0)] })]);
      out.fragments['shared-folders'] = same;
      const bad = await writeDirId(repo, [dir('one', same), dir('two', same)]);
      // ok.txt + two inner.txt; /, /bad, /bad/one, /bad/two.
      await snap('shared-folders', bad, { files: 3, dirs: 4, logicalBytes: 18 });
    }
    return out;
  } finally {
    await repo.close();
  }
}
