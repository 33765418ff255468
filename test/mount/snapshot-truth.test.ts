// Close means saved, through a real mount: a writer loops write -> close -> rename over a file while
// snapshots are taken. Every snapshot holds the file as one whole version some writer closed, never
// empty or torn (before snapshots took their instant with data changes held, 66 of 300 held it at 0
// bytes, and `get` restored that with exit 0).

import test from 'ava';
import { spawn } from 'node:child_process';

import { controlRequest } from '../../src/fuse/control.js';
import { recordForStore } from '../../src/fuse/mount-registry.js';
import { Repo } from '../../src/repo/repo.js';
import { loadSnapshot, resolveEntry } from '../../src/repo/tree-reader.js';
import { readExtents } from '../../src/repo/tree-writer.js';
import { ensurePatchedAddon, fuseAvailable, initStore, makeEnv, mount, PASSPHRASE } from './helpers.js';

const enabled = fuseAvailable();
if (enabled) test.before(ensurePatchedAddon);
const maybe = enabled ? test : test.skip;

const SNAPSHOTS = 120;

maybe('a file written, closed and renamed in a loop is whole in every snapshot', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const m = await mount(t, e, store, 'mnt');
  // Each version is 20,000 bytes of its own number: a torn or empty file cannot pass for one.
  const writer = spawn(
    'bash',
    ['-c', `cd ${m.mountpoint} && i=0; while :; do i=$((i+1)); head -c 20000 /dev/zero | tr '\\0' "$(( i % 10 ))" > .tmp && mv .tmp saved; done`],
    { stdio: 'ignore' },
  );
  t.teardown(() => {
    writer.kill('SIGKILL');
  });
  await new Promise((r) => setTimeout(r, 300));
  const prevRuntime = process.env['FRAGFS_RUNTIME_DIR'];
  process.env['FRAGFS_RUNTIME_DIR'] = e.runtimeDir;
  const rec = await recordForStore(store, 'default');
  if (prevRuntime === undefined) delete process.env['FRAGFS_RUNTIME_DIR'];
  else process.env['FRAGFS_RUNTIME_DIR'] = prevRuntime;
  t.truthy(rec, 'the mount left its record in the store');
  const keys: string[] = [];
  for (let i = 0; i < SNAPSHOTS; i++) {
    const reply = await controlRequest(rec!.socket, { op: 'snapshot' });
    if (!reply?.ok) t.fail(`snapshot ${i} failed: ${JSON.stringify(reply)}`);
    else keys.push(reply.key!);
  }
  writer.kill('SIGKILL');
  // The store is read beside the mount (LMDB readers are safe next to its one writer).
  const repo = await Repo.open({ storePath: store, passphrase: PASSPHRASE, readOnly: true });
  try {
    const sizes = new Map<number, number>();
    for (const key of keys) {
      const { snapshot } = await loadSnapshot(repo, key);
      const entry = await resolveEntry(repo, snapshot.root, [Buffer.from('saved')]);
      sizes.set(entry.size, (sizes.get(entry.size) ?? 0) + 1);
      const parts: Buffer[] = [];
      for (const x of await readExtents(repo, entry)) parts.push(Buffer.from(await repo.readBlock(x)));
      const data = Buffer.concat(parts);
      t.is(data.length, 20_000, `snapshot ${key.slice(0, 8)} holds ${data.length} bytes`);
      t.true(data.every((c) => c === data[0]), 'one whole version');
    }
    t.deepEqual([...sizes.keys()], [20_000], `sizes seen: ${JSON.stringify([...sizes])}`);
  } finally {
    await repo.close();
  }
});
