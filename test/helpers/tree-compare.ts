// Compares two local trees the way a user would check a restore: names, types, modes, sizes,
// symlink targets, contents, mtimes (to the millisecond) and hard-link identity.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeRecord {
  path: string;
  type: string;
  mode: number;
  size: number;
  mtimeMs: number;
  target?: string;
  sha256?: string;
  /** Index of the first path with the same inode, for hard links. */
  linkOf?: string;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function describeTree(root: string, o: { mtimes?: boolean } = {}): Promise<TreeRecord[]> {
  const out: TreeRecord[] = [];
  const inodes = new Map<string, string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    const st = await lstat(abs);
    const rec: TreeRecord = {
      path: rel,
      type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other',
      mode: st.mode & 0o7777,
      size: st.isDirectory() ? 0 : st.size,
      mtimeMs: o.mtimes === false ? 0 : Math.floor(st.mtimeMs),
    };
    if (st.isSymbolicLink()) rec.target = await readlink(abs);
    if (st.isFile()) {
      rec.sha256 = await sha256(abs);
      if (st.nlink > 1) {
        const id = `${st.dev}:${st.ino}`;
        const first = inodes.get(id);
        if (first === undefined) inodes.set(id, rel);
        else rec.linkOf = first;
      }
    }
    out.push(rec);
    if (st.isDirectory()) {
      for (const name of (await readdir(abs)).sort()) await walk(join(abs, name), rel === '' ? name : `${rel}/${name}`);
    }
  };
  await walk(root, '');
  return out;
}
