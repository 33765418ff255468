// SnapshotVfs keeps memory bounded: decoded folders stay within metaCacheBytes however many are
// walked, a folder's slot lives while the kernel holds the folder (lookups and listed entries,
// given back by forget), and numbers handed out stay valid while their folder is held.

import test from 'ava';
import { isFragfsError } from '../../src/errors.js';
import { SnapshotVfs } from '../../src/vfs/snapshot-vfs.js';
import { ROOT_INO } from '../../src/vfs/vfs-api.js';
import { ME, fixture, writeFile } from './vfs-helpers.js';

test('a walk of many folders through a tiny folder cache, then forget: numbers stay right while held and go when forgotten', async (t) => {
  const fx = await fixture();
  try {
    const v = fx.vfs;
    for (let d = 0; d < 30; d++) {
      await v.mkdir(`/d${d}`, 0o755, ME);
      for (let f = 0; f < 20; f++) await writeFile(v, `/d${d}/f${f}`, Buffer.from(`${d}/${f}`));
    }
    const key = await v.snapshot();
    // 8 KiB holds about one of these folders: every other one is decoded again from the store.
    const s = await SnapshotVfs.open({ repo: fx.repo, key, metaCacheBytes: 8 * 1024 });
    const root = await s.readdir(ROOT_INO, true);
    s.listed(root.map((e) => e.ino));
    const held = new Map<number, number[]>();
    for (const dir of root) {
      const kids = await s.readdir(dir.ino, true);
      s.listed(kids.map((e) => e.ino));
      held.set(dir.ino, kids.map((k) => k.ino));
    }
    // Every number is still what it was, though its folder was evicted from the cache meanwhile.
    const d7 = root.find((e) => e.name.toString() === 'd7')!;
    const f3 = (await s.lookup(d7.ino, Buffer.from('f3'))).ino;
    t.is(f3, held.get(d7.ino)![(await s.readdir(d7.ino, false)).findIndex((e) => e.name.toString() === 'f3')]);
    t.is((await s.getattr(f3)).size, 3); // "7/3"
    // The kernel lets go of d7 (its listed reference; the files are not counted): its slot goes.
    s.forget(d7.ino, 1);
    const gone = await s.getattr(f3).then(() => undefined, (e: unknown) => e);
    t.true(isFragfsError(gone, 'NOT_FOUND'), 'a number under a forgotten folder is no longer served');
    // Reached again, the folder gets a new slot, and its files new numbers that work.
    const again = await s.lookup(ROOT_INO, Buffer.from('d7'));
    t.is(again.ino, d7.ino);
    const f3again = await s.lookup(d7.ino, Buffer.from('f3'));
    t.not(f3again.ino, f3);
    t.is(f3again.size, 3);
    // d8 was listed once: forgetting nothing of it (another folder) leaves it served.
    const d8 = root.find((e) => e.name.toString() === 'd8')!;
    s.forget(d7.ino, 1);
    t.is((await s.getattr(held.get(d8.ino)![0]!)).size > 0, true);
    await s.close();
  } finally {
    await fx.done();
  }
});
