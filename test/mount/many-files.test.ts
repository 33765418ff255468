// Many small files through real mounts: walking the tree twice leaves the mount process's own
// memory (RssAnon) within what its caches' limits allow, on the live mount and on a snapshot mount;
// and a snapshot taken after a bulk write and a quiet moment writes almost no metadata, because
// the mount wrote the folders ahead of it.

import test from 'ava';
import { readFile } from 'node:fs/promises';
import { ensurePatchedAddon, fragfs, fuseAvailable, initStore, makeEnv, mount, py, sh, type Ctx, type Env } from './helpers.js';

const enabled = fuseAvailable();
const maybe = enabled ? test : test.skip;
if (enabled) test.before(ensurePatchedAddon);

const MIB = 1024 * 1024;
const DIRS = 100;
const FILES_PER_DIR = 200;
/** The limits the mounts run with: a small block cache and metadata cache. */
const CACHE_BYTES = 8 * MIB;
const META_CACHE_BYTES = 4 * MIB;
/**
 * What a mount holds beyond its caches whatever it has walked: V8's heap up to its first
 * mark-compact (64 MiB, MOUNT_NODE_FLAGS), the write buffer (16 MiB), the codec workers' heaps and
 * malloc's slack. Measured after two walks of 20,000-30,000 entries: 50-55 MiB above the mount's start.
 */
const FIXED_BYTES = 96 * MIB;

async function rssAnonBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /RssAnon:\s+(\d+) kB/.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no RssAnon for pid ${pid}`);
  return Number(kb) * 1024;
}

/** The mount gives memory back once requests stop (one collection after 2 quiet seconds). */
const settle = () => new Promise((r) => setTimeout(r, 3500));

async function metaFragments(t: Ctx, e: Env, store: string): Promise<number> {
  const r = await fragfs(e, ['stats', store, '--json']);
  if (r.code !== 0) t.fail(`stats failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { metaFragments: number }).metaFragments;
}

/** Two walks that read every entry's attributes: `find -ls` and `du`, each past the kernel's 1 s entry cache. */
async function walkTwice(t: Ctx, dir: string): Promise<void> {
  const want = DIRS * FILES_PER_DIR + DIRS + 1;
  const n = await sh(t, `find ${dir} -ls | wc -l`);
  if (Number(n.stdout.trim()) !== want) t.fail(`find saw ${n.stdout.trim()} entries, not ${want}`);
  await new Promise((r) => setTimeout(r, 1200));
  await sh(t, `ls -lR ${dir} > /dev/null && du -s ${dir} > /dev/null`);
}

maybe('20,000 files: a snapshot after the bulk write costs its object, and walks of the live and the snapshot mount stay within the memory limits imply', async (t) => {
  const e = await makeEnv(t);
  const store = await initStore(t, e);
  const limits = ['--cache-size', `${CACHE_BYTES}`, '--meta-cache-size', `${META_CACHE_BYTES}`];
  const m = await mount(t, e, store, 'mnt', limits);
  const start = await rssAnonBytes(m.pid);
  // 100 folders of 200 small files, written through the mount by a child process.
  const w = await py(`import os\nfor d in range(${DIRS}):\n  os.mkdir('d%d' % d)\n  for f in range(${FILES_PER_DIR}):\n    with open('d%d/f%d' % (d, f), 'wb') as h: h.write(b'%d/%d' % (d, f))\n`, m.mountpoint);
  if (w.code !== 0) t.fail(`writing the files failed: ${w.stderr}`);
  // A quiet moment: every folder is written ahead of the snapshot.
  await settle();
  const before = await metaFragments(t, e, store);
  const t0 = Date.now();
  const snap = await fragfs(e, ['snapshot', store, '--json']);
  const snapshotMs = Date.now() - t0;
  if (snap.code !== 0) t.fail(`snapshot failed: ${snap.stderr}`);
  const added = (await metaFragments(t, e, store)) - before;
  t.log(`first snapshot after ${DIRS * FILES_PER_DIR} files: ${snapshotMs} ms, ${added} metadata fragments written`);
  // The snapshot object, and the root if it was written a moment before the snapshot asked.
  t.true(added <= 2, `the snapshot wrote ${added} metadata fragments`);
  t.true(snapshotMs < 10_000, `the snapshot took ${snapshotMs} ms`);

  await walkTwice(t, m.mountpoint);
  await settle();
  const live = await rssAnonBytes(m.pid);
  const liveBound = start + CACHE_BYTES + META_CACHE_BYTES + FIXED_BYTES;
  t.log(`live mount RssAnon: ${(start / MIB).toFixed(0)} MiB at start, ${(live / MIB).toFixed(0)} MiB after two walks (bound ${(liveBound / MIB).toFixed(0)})`);
  t.true(live <= liveBound, `live mount: ${(live / MIB).toFixed(0)} MiB after two walks`);
  const key = (JSON.parse(snap.stdout) as { key: string }).key;
  await m.umount();

  const s = await mount(t, e, store, 'snap', ['--snapshot', key, ...limits]);
  const snapStart = await rssAnonBytes(s.pid);
  await walkTwice(t, s.mountpoint);
  await settle();
  const walked = await rssAnonBytes(s.pid);
  const snapBound = snapStart + CACHE_BYTES + META_CACHE_BYTES + FIXED_BYTES;
  t.log(`snapshot mount RssAnon: ${(snapStart / MIB).toFixed(0)} MiB at start, ${(walked / MIB).toFixed(0)} MiB after two walks (bound ${(snapBound / MIB).toFixed(0)})`);
  t.true(walked <= snapBound, `snapshot mount: ${(walked / MIB).toFixed(0)} MiB after two walks`);
  const r = await s.umount();
  if (r.code !== 0) t.fail(`umount: ${r.stderr}`);
});
