// Shared set-up for the vfs tests: a repo (memory or a real LMDB store in a temp dir), a live vfs
// on a temp state folder (driven by path through PathVfs, as the kernel drives it by lookups), and
// small read/write helpers by path.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Repo } from '../../src/repo/repo.js';
import { LiveVfs, type LiveVfsOptions } from '../../src/vfs/live-vfs.js';
import { PathVfs } from './path-vfs.js';

export { PathVfs };

export const ME = { uid: 1000, gid: 1000 };
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_EXCL = 0o200;

export interface Fixture {
  dir: string;
  repo: Repo;
  /** The live vfs, addressed by path. */
  vfs: PathVfs;
  /** The same vfs itself (inodes and name bytes). */
  readonly live: LiveVfs;
  statePath: string;
  reopen(o?: Partial<LiveVfsOptions>): Promise<PathVfs>;
  done(): Promise<void>;
}

export async function fixture(
  o: { backend?: 'memory' | 'lmdb'; blockSize?: number; vfs?: Partial<LiveVfsOptions> } = {},
): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-vfs-'));
  const blockSize = o.blockSize ?? 64 * 1024;
  const repo =
    o.backend === 'lmdb'
      ? await Repo.init({ storePath: join(dir, 'store'), backend: 'lmdb', passphrase: 'vfs test', kdfCost: 10, blockSize })
      : await Repo.openMemory({ blockSize });
  const statePath = join(dir, 'live');
  const fx: Fixture = {
    dir,
    repo,
    statePath,
    vfs: new PathVfs(await LiveVfs.open({ repo, statePath, owner: ME, ...o.vfs })),
    get live() {
      return fx.vfs.inner as LiveVfs;
    },
    async reopen(extra = {}) {
      fx.vfs = new PathVfs(await LiveVfs.open({ repo: fx.repo, statePath, owner: ME, ...o.vfs, ...extra }));
      return fx.vfs;
    },
    async done() {
      await fx.vfs.close().catch(() => undefined);
      await fx.repo.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

export async function writeFile(vfs: PathVfs, path: string, data: Buffer, mode = 0o644): Promise<void> {
  const fh = await vfs.create(path, mode, O_WRONLY | O_TRUNC, ME);
  if (data.length > 0) await vfs.write(path, fh, data, data.length, 0);
  await vfs.release(path, fh);
}

export async function readFile(vfs: PathVfs, path: string): Promise<Buffer> {
  const { size } = await vfs.getattr(path);
  const fh = await vfs.open(path, O_RDONLY);
  try {
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const chunk = Buffer.alloc(Math.min(256 * 1024, size - done));
      const n = await vfs.read(path, fh, chunk, chunk.length, done);
      if (n === 0) break;
      chunk.copy(buf, done, 0, n);
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    await vfs.release(path, fh);
  }
}

export function pseudoRandom(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Every path below `dir` (depth first) with what it holds, for comparing two trees. */
export async function walk(vfs: PathVfs, dir = '/'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const names = (await vfs.readdir(dir)).sort();
  for (const name of names) {
    const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
    const a = await vfs.getattr(p);
    const type = a.mode & 0o170000;
    let desc = `mode=${a.mode.toString(8)} uid=${a.uid} gid=${a.gid} size=${a.size} mtime=${a.mtimeNs}`;
    const xattrs = (await vfs.listxattr(p)).sort();
    for (const x of xattrs) desc += ` x:${x}=${(await vfs.getxattr(p, x)).toString('hex')}`;
    if (type === 0o040000) {
      out.set(p, desc);
      for (const [k, v] of await walk(vfs, p)) out.set(k, v);
    } else if (type === 0o120000) {
      out.set(p, `${desc} -> ${await vfs.readlink(p)}`);
    } else if (type === 0o100000) {
      const data = await readFile(vfs, p);
      out.set(p, `${desc} sha=${(await import('node:crypto')).createHash('sha256').update(data).digest('hex')}`);
    } else out.set(p, desc);
  }
  return out;
}
