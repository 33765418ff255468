// In-process throughput of the vfs layer (no FUSE): sequential write of incompressible data in
// 128 KiB writes, cold sequential read, small-file creation, snapshot cost after one change in
// a 10,000-file tree, and creating then removing files in one big folder.
// Usage: node dist/scripts/bench-vfs.js [--backend memory|lmdb|dir] [--mib N] [--files N] [--big-folder N]

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Repo } from '../src/repo/repo.js';
import { LiveVfs } from '../src/vfs/live-vfs.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const backend = arg('backend', 'lmdb') as 'memory' | 'lmdb' | 'dir';
const mib = Number(arg('mib', '1024'));
const smallFiles = Number(arg('files', '10000'));
const bigFolderFiles = Number(arg('big-folder', '20000'));
const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const CHUNK = 128 * 1024;

const dir = await mkdtemp(join(tmpdir(), 'fragfs-bench-vfs-'));
const repo =
  backend === 'memory'
    ? await Repo.openMemory()
    : await Repo.init({ storePath: join(dir, 'store'), backend, passphrase: 'bench', kdfCost: 10 });
const statePath = join(dir, 'live');
let vfs = await LiveVfs.open({ repo, statePath, owner: me });
const line = (what: string, value: string) => console.log(`${what.padEnd(52)} ${value}`);

const b = (name: string) => Buffer.from(name);
const ROOT = 1;

try {
  // --- sequential write
  const total = mib * 1024 * 1024;
  const pool = randomBytes(Math.min(total, 256 * 1024 * 1024) + CHUNK);
  let t0 = performance.now();
  const big = await vfs.create(ROOT, b('big'), 0o644, 1, me);
  for (let off = 0; off < total; off += CHUNK) {
    // Straight through the random pool, each pass shifted by 4,099 bytes: every block is distinct (no
    // dedup) and no block repeats bytes of its own (nothing for zstd to find), no RNG in the loop.
    const start = (off + Math.floor(off / (pool.length - CHUNK)) * 4099) % (pool.length - CHUNK);
    await vfs.write(big.attr.ino, big.fh, pool.subarray(start, start + CHUNK), CHUNK, off);
  }
  await vfs.release(big.attr.ino, big.fh);
  let s = (performance.now() - t0) / 1000;
  line(`sequential write ${mib} MiB, ${CHUNK / 1024} KiB writes (${backend})`, `${(total / 1e6 / s).toFixed(0)} MB/s`);

  // --- cold sequential read (fresh vfs: empty block cache)
  await vfs.close();
  vfs = await LiveVfs.open({ repo, statePath, owner: me });
  t0 = performance.now();
  const bigIno = (await vfs.lookup(ROOT, b('big'))).ino;
  const rh = await vfs.open(bigIno, 0);
  const buf = Buffer.alloc(CHUNK);
  for (let off = 0; off < total; off += CHUNK) await vfs.read(bigIno, rh, buf, CHUNK, off);
  await vfs.release(bigIno, rh);
  s = (performance.now() - t0) / 1000;
  line(`cold sequential read ${mib} MiB, ${CHUNK / 1024} KiB reads`, `${(total / 1e6 / s).toFixed(0)} MB/s`);

  // --- small files: create + write + release + utimens. Releases are not awaited, as the kernel
  // sends RELEASE after close returns: on a backend that packs, each waits for its pack.
  const small = randomBytes(2000);
  t0 = performance.now();
  let dirIno = ROOT;
  const smallReleases: Promise<void>[] = [];
  for (let i = 0; i < smallFiles; i++) {
    if (i % 100 === 0) dirIno = (await vfs.mkdir(ROOT, b(`d${i / 100}`), 0o755, me)).ino;
    const { attr, fh } = await vfs.create(dirIno, b(`f${i}`), 0o644, 1, me);
    small.writeUInt32LE(i, 0);
    await vfs.write(attr.ino, fh, small, 500 + (i % 1500), 0);
    smallReleases.push(vfs.release(attr.ino, fh));
    await vfs.setattr(attr.ino, undefined, { atimeNs: 1_700_000_000_000_000_000n, mtimeNs: 1_700_000_000_000_000_000n });
  }
  await Promise.all(smallReleases);
  s = (performance.now() - t0) / 1000;
  line(`${smallFiles} small files (create+write+release+utimens)`, `${(smallFiles / s).toFixed(0)} files/s`);

  // --- snapshots
  t0 = performance.now();
  await vfs.snapshot();
  line(`first snapshot of ${smallFiles} files + big file`, `${((performance.now() - t0) / 1000).toFixed(3)} s`);
  // One file in the middle of the tree (any --files count).
  const middle = Math.floor(smallFiles / 2);
  const middleDir = (await vfs.lookup(ROOT, b(`d${Math.floor(middle / 100)}`))).ino;
  const f = (await vfs.lookup(middleDir, b(`f${middle}`))).ino;
  const h = await vfs.open(f, 1);
  await vfs.write(f, h, Buffer.from('changed'), 7, 0);
  await vfs.release(f, h);
  t0 = performance.now();
  await vfs.snapshot();
  line('snapshot after changing one file', `${((performance.now() - t0) / 1000).toFixed(3)} s`);

  // --- one big folder: create + write + release (releases not awaited, as the kernel sends them
  // after close returns), then lookup + unlink of each
  const bigDir = (await vfs.mkdir(ROOT, b('big-folder'), 0o755, me)).ino;
  const releases: Promise<void>[] = [];
  t0 = performance.now();
  for (let i = 0; i < bigFolderFiles; i++) {
    const { attr, fh } = await vfs.create(bigDir, b(`file-${i}`), 0o644, 1, me);
    small.writeUInt32LE(i, 0);
    await vfs.write(attr.ino, fh, small, 1000 + (i % 1000), 0);
    releases.push(vfs.release(attr.ino, fh));
  }
  await Promise.all(releases);
  s = (performance.now() - t0) / 1000;
  line(`${bigFolderFiles} files created in one folder`, `${((s * 1e6) / bigFolderFiles).toFixed(0)} us a file`);
  t0 = performance.now();
  for (let i = 0; i < bigFolderFiles; i++) {
    await vfs.lookup(bigDir, b(`file-${i}`));
    await vfs.unlink(bigDir, b(`file-${i}`));
  }
  s = (performance.now() - t0) / 1000;
  line(`${bigFolderFiles} files removed from it`, `${((s * 1e6) / bigFolderFiles).toFixed(0)} us a file`);
} finally {
  await vfs.close();
  await repo.close();
  await rm(dir, { recursive: true, force: true });
}
