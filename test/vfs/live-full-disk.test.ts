// The live state opened with a writable map (LiveState `writableMap`) on a disk that fills up: LMDB's
// commits are stores into a sparse file's memory there, where a page the disk cannot hold is SIGBUS.
// Every metadata change must meet NO_SPACE first (the reserve's guard), the state must stay whole, and
// changes must go on once space is freed. A SIGBUS would end this test's process.

import test from 'ava';
import { rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FragfsError } from '../../src/errors.js';
import { Repo } from '../../src/repo/repo.js';
import { LmdbSpaceReserve, MAPPED_MARGIN_BYTES } from '../../src/store/lmdb-space-reserve.js';
import { LiveVfs } from '../../src/vfs/live-vfs.js';
import { canMountTmpfs, testIf } from '../helpers/capabilities.js';
import { localAddon } from '../helpers/local-addon.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';

const ME = { uid: 0, gid: 0 };
const ROOT = 1;
const MIB = 1024 * 1024;
const nameOf = (i: number) => Buffer.from(`entry-${i}-${'n'.repeat(180)}`);

testIf(canMountTmpfs, 'mounting a tmpfs needs root')(
  'a writable-map live state on a full disk answers NO_SPACE to metadata changes, never SIGBUS, and goes on once space is freed',
  async (t) => {
    const disk = await mountTmpfs(t, 48);
    const repo = await Repo.openMemory();
    const statePath = join(disk, 'live');
    let vfs = await LiveVfs.open({ repo, statePath, owner: ME });
    const data = join(statePath, 'state', 'data.mdb');
    try {
      const dir = (await vfs.mkdir(ROOT, Buffer.from('d'), 0o755, ME)).ino;
      const st = await stat(data);
      t.true(st.size > st.blocks * 512, `data.mdb is a sparse map (${st.size} bytes, ${st.blocks * 512} allocated): the writable map is in use`);

      const ballast = await fillDisk(disk, 512 * 1024);
      let made = 0;
      let failure: unknown;
      for (; made < 200_000; made++) {
        try {
          await vfs.mknod(dir, nameOf(made), 0o100644, 0, ME);
        } catch (e) {
          failure = e;
          break;
        }
      }
      t.true(failure instanceof FragfsError && failure.code === 'NO_SPACE', `the change that found no room: ${String(failure)}`);
      t.log(`${made} entries made before the disk was full`);
      for (const change of [
        () => vfs.mkdir(dir, Buffer.from('another'), 0o755, ME),
        () => vfs.setattr(dir, undefined, { mode: 0o700 }),
        () => vfs.symlink(dir, Buffer.from('link'), Buffer.from('target'), ME),
      ]) {
        const e = await change().then(
          () => undefined,
          (err: unknown) => err,
        );
        // A change may still fit in what is reserved; if it does not, it is NO_SPACE.
        if (e !== undefined) t.true(e instanceof FragfsError && e.code === 'NO_SPACE', String(e));
      }

      await rm(ballast);
      await vfs.mknod(dir, nameOf(made), 0o100644, 0, ME);
      await vfs.close();
      vfs = await LiveVfs.open({ repo, statePath, owner: ME });
      const again = (await vfs.lookup(ROOT, Buffer.from('d'))).ino;
      for (const i of [0, Math.floor(made / 2), made - 1, made]) t.truthy(await vfs.lookup(again, nameOf(i)), `entry ${i} is kept`);
    } finally {
      await vfs.close();
      await repo.close();
    }
  },
);

testIf(canMountTmpfs, 'mounting a tmpfs needs root')(
  "the reserve's guard allocates the holes a writable map's transaction may store into, refuses when the disk cannot, and gives back the rest",
  async (t) => {
    const local = await localAddon(t);
    const disk = await mountTmpfs(t, 48);
    const path = join(disk, 'data.mdb');
    // As LMDB leaves it with a writable map: as large as the map, with holes past its pages.
    await writeFile(path, Buffer.alloc(64 * 1024, 1));
    await truncate(path, 64 * MIB);
    let used = 64 * 1024;
    const reserve = new LmdbSpaceReserve(path, 4096, {
      usedBytes: () => used,
      fallocateSync: (punch, offset, length) => local.fallocateSync(Buffer.from(path), punch, offset, length),
    });
    const allocated = async () => (await stat(path)).blocks * 512;

    reserve.guardSync('test');
    t.true((await allocated()) >= used + MAPPED_MARGIN_BYTES, `the margin past the pages is allocated (${await allocated()} bytes)`);
    const before = await allocated();
    reserve.guardSync('test');
    t.is(await allocated(), before, 'a guard within the reservation allocates nothing');

    await fillDisk(disk);
    used = before; // LMDB's pages grew to the end of what was reserved
    t.throws(() => reserve.guardSync('cannot change the live state'), { instanceOf: FragfsError, message: /cannot change the live state: the disk is full/ });

    reserve.giveBack();
    t.true((await allocated()) <= used + 64 * 1024, `what lay past the pages is given back (${await allocated()} bytes for ${used})`);
    t.is((await stat(path)).size, 64 * MIB, 'the file keeps its size (the map)');
  },
);
