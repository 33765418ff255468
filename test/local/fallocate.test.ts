// fallocateKeepSize: the addon's fallocate(FALLOC_FL_KEEP_SIZE) (local-fs.c) allocates blocks past a
// file's end without changing its size or bytes, answers failures as errnos (never a rejection), and
// answers ENOSPC on a full disk. The LMDB room reservation uses it, so an LMDB store reserves room
// with no fallocate program on the PATH (spawning one forked the whole writing process).

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { localAddon } from '../helpers/local-addon.js';
import { tempDir } from '../helpers/stores.js';
import { canMountTmpfs, tempFallocatesPastEnd, testIf } from '../helpers/capabilities.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';
import { openBackend } from '../../src/store/open-backend.js';
import { ns, randomId } from '../store/conformance.js';

const { ENOENT, ELOOP, ENOSPC } = constants.errno;
const MIB = 1024 * 1024;

testIf(tempFallocatesPastEnd, "the temp folder cannot allocate past a file's end")(
  'allocates past the end, keeping size and bytes; failures are errnos',
  async (t) => {
    const local = await localAddon(t);
    const tmp = await tempDir('fallocate-');
    t.teardown(tmp.remove);
    const file = join(tmp.path, 'f');
    const bytes = randomBytes(10_000);
    await writeFile(file, bytes);
    const before = await stat(file);
    t.is(await local.fallocateKeepSize(Buffer.from(file), before.size, 4 * MIB), 0);
    const after = await stat(file);
    t.is(after.size, bytes.length, 'the size does not change');
    t.true(after.blocks * 512 >= bytes.length + 4 * MIB, `${after.blocks * 512} bytes allocated`);
    t.true((await readFile(file)).equals(bytes), 'no byte changes');

    t.is(await local.fallocateKeepSize(Buffer.from(join(tmp.path, 'missing')), 0, 4096), ENOENT);
    await symlink(file, join(tmp.path, 'link'));
    t.is(await local.fallocateKeepSize(Buffer.from(join(tmp.path, 'link')), 0, 4096), ELOOP, 'a symlink is not followed');
    t.throws(() => local.fallocateKeepSize(Buffer.from(file), -1, 4096), { instanceOf: TypeError });
    t.throws(() => local.fallocateKeepSize(Buffer.from(file), 0, 0), { instanceOf: TypeError });
  },
);

testIf(canMountTmpfs, 'mounting a tmpfs needs root')('a full disk answers ENOSPC', async (t) => {
  const local = await localAddon(t);
  const disk = await mountTmpfs(t);
  const file = join(disk, 'f');
  await writeFile(file, 'x');
  await fillDisk(disk, 64 * 1024);
  t.is(await local.fallocateKeepSize(Buffer.from(file), 1, 4 * MIB), ENOSPC);
});

// Serial, so that no other test of this file runs while PATH is empty (ava runs serial tests first).
(tempFallocatesPastEnd ? test.serial : testIf(false, "the temp folder cannot allocate past a file's end"))(
  'an LMDB store reserves room ahead of its writes with no fallocate program on the PATH',
  async (t) => {
    await localAddon(t);
    const tmp = await tempDir('fallocate-lmdb-');
    t.teardown(tmp.remove);
    const path = process.env['PATH'];
    process.env['PATH'] = tmp.path; // nothing to run there
    t.teardown(() => {
      process.env['PATH'] = path;
    });
    const store = await openBackend('lmdb', join(tmp.path, 'store'));
    try {
      for (let i = 0; i < 8; i++) await store.put(ns('data', 'alpha'), randomId(), randomBytes(256 * 1024));
      const during = await stat(join(tmp.path, 'store', 'fragments.lmdb'));
      t.true(during.blocks * 512 > during.size + MIB, `${during.blocks * 512} bytes allocated for a ${during.size}-byte file`);
    } finally {
      await store.close();
    }
  },
);
