// A snapshot writes sub-folders side by side: on a store that packs (dir), folders written one after
// another each waited for a pack of their own; side by side they share packs. The snapshot still
// reads back as the live tree.

import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Repo } from '../../src/repo/repo.js';
import { LiveVfs } from '../../src/vfs/live-vfs.js';
import { SnapshotVfs } from '../../src/vfs/snapshot-vfs.js';
import { PathVfs } from './path-vfs.js';
import { ME, walk } from './vfs-helpers.js';

const b = (s: string) => Buffer.from(s);

test('the first snapshot of 260 new folders on a dir store shares metadata packs and reads back whole', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-snap-side-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const repo = await Repo.init({ storePath: join(dir, 'store'), backend: 'dir', passphrase: 'x', kdfCost: 10 });
  const live = await LiveVfs.open({ repo, statePath: join(dir, 'live'), owner: ME });
  try {
    for (let d = 0; d < 20; d++) {
      const top = (await live.mkdir(1, b(`d${d}`), 0o755, ME)).ino;
      for (let s = 0; s < 12; s++) {
        const sub = (await live.mkdir(top, b(`s${s}`), 0o755, ME)).ino;
        for (let f = 0; f < 3; f++) {
          const { attr, fh } = await live.create(sub, b(`f${f}`), 0o644, 1, ME);
          const body = b(`file ${d}/${s}/${f}`);
          await live.write(attr.ino, fh, body, body.length, 0);
          await live.release(attr.ino, fh);
        }
      }
    }
    const packsBefore = await count(repo, 'pack');
    const key = await live.snapshot();
    const metaPacks = (await count(repo, 'pack')) - packsBefore;
    t.log(`261 folders and the snapshot object in ${metaPacks} new packs`);
    // One after another, each folder waited for a pack of its own: 261 or more.
    t.true(metaPacks < 130, `${metaPacks} packs`);
    const snap = new PathVfs(await SnapshotVfs.open({ repo, key }));
    t.deepEqual(await walk(snap), await walk(new PathVfs(live)));
  } finally {
    await live.close();
    await repo.close();
  }
});

async function count(repo: Repo, kind: 'pack'): Promise<number> {
  let n = 0;
  const inner = (repo.store as unknown as { inner: { list(ns: unknown): AsyncIterable<string> } }).inner;
  for await (const _ of inner.list({ space: repo.space, kind })) n++;
  return n;
}
