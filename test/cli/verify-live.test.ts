// `verify` of a whole store checks the live tree a read-write mount keeps between snapshots: a block
// only the live tree names is checked like a snapshot's and, missing or damaged, is reported with the
// live file that needs it (before, a missing one went unnoticed: nothing but the live state names it).

import test from 'ava';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { liveDir } from '../../src/repo/store-lock.js';
import { LiveVfs } from '../../src/vfs/live-vfs.js';
import { PathVfs } from '../vfs/path-vfs.js';
import { runCli } from '../helpers/cli.js';
import { createStore, openStore, tempDir } from '../helpers/stores.js';

test('verify reports a block the live tree needs that is missing, naming the live file', async (t) => {
  const work = await tempDir('fragfs-verify-live-');
  t.teardown(work.remove);
  const store = join(work.path, 'store');
  await createStore(store, 'dir');
  const repo = await openStore(store);
  const live = new PathVfs(await LiveVfs.open({ repo, statePath: liveDir(store, 'default'), owner: { uid: 0, gid: 0 } }));
  await live.mkdir('/docs', 0o755, { uid: 0, gid: 0 });
  const fh = await live.create('/docs/only-live.txt', 0o644, 1, { uid: 0, gid: 0 });
  await live.write('/docs/only-live.txt', fh, Buffer.from('never snapshotted '.repeat(100)), 1800, 0);
  await live.release('/docs/only-live.txt', fh);
  await live.close();
  await repo.close();

  const clean = await runCli(['verify', store]);
  t.is(clean.code, 0, clean.stdout + clean.stderr);
  t.regex(clean.stdout, /the live tree \(1 files\)/);
  t.regex(clean.stdout, /1 data fragments/);

  // The block is a file of its own or in a pack (no snapshot was taken: the packs hold only data).
  for (const kind of ['objects', 'packs']) {
    const folder = join(store, 'default', kind);
    for (const fan of await readdir(folder).catch(() => [])) for (const f of await readdir(join(folder, fan))) await rm(join(folder, fan, f));
  }
  const broken = await runCli(['verify', store]);
  t.is(broken.code, 6, broken.stdout + broken.stderr);
  t.regex(broken.stdout, /^missing data fragment [0-9a-f]{64}: .* needed by live:\/docs\/only-live\.txt$/m);
});
