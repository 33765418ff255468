// A source entry's lstat as put reads it: the fields a snapshot entry keeps and the ones the walk
// compares, for a batch of paths at once. With the local-fs addon, one call per batch runs every lstat
// (and the extended attributes) on libuv's thread pool and hands back packed records (local-fs.c,
// lstatMany); without it, node:fs lstats one path at a time and no attributes are read.

import { lstat } from 'node:fs/promises';
import { getSystemErrorMap } from 'node:util';
import type { LocalFs } from './local-fs.js';

export interface SourceStat {
  /** st_mode: the type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: bigint;
  mtimeNs: bigint;
  dev: bigint;
  ino: bigint;
  rdev: number;
}

/** One path's lstat, or the error that stopped it; its extended attributes when they were asked for. */
export type SourceLstat =
  | { st: SourceStat; xattrs?: [Buffer, Buffer][]; xattrError?: NodeJS.ErrnoException }
  | { st?: undefined; error: NodeJS.ErrnoException };

/** Bytes of one record of lstatMany's answer (local-fs.c, LSTAT_RECORD). */
export const LSTAT_RECORD_BYTES = 80;

/** S_IFMT and the type values of st_mode (Linux, <sys/stat.h>). */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

const errorMap = getSystemErrorMap();

/** An Error like node:fs's for errno `e` (positive) of `call` on `path`. */
function errnoError(e: number, call: string, path: Buffer): NodeJS.ErrnoException {
  const [code, text] = errorMap.get(-e) ?? ['EIO', `errno ${e}`];
  return Object.assign(new Error(`${code}: ${text}, ${call} '${path.toString('latin1')}'`), { code, errno: -e, syscall: call });
}

/**
 * lstat of each of `paths` (without following a last symlink) and, with `xattrs`, the extended
 * attributes of each one whose lstat succeeded; one answer per path, in order. The addon (`local`)
 * reads them all in one call off the JS thread; undefined: node:fs, one lstat each, no attributes.
 */
export async function lstatPaths(local: LocalFs | undefined, paths: Buffer[], xattrs: boolean): Promise<SourceLstat[]> {
  if (local === undefined) return Promise.all(paths.map((p) => lstatOne(p)));
  const input = Buffer.allocUnsafe(paths.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const p of paths) {
    input.set(p, at); // TypedArray.set: Buffer.copy's binding call costs more for short paths
    at += p.length;
    input[at++] = 0;
  }
  const out = await local.lstatMany(input, paths.length, xattrs);
  return paths.map((p, i) => readRecord(out, i, p));
}

async function lstatOne(path: Buffer): Promise<SourceLstat> {
  try {
    const st = await lstat(path, { bigint: true });
    return {
      st: {
        mode: Number(st.mode),
        uid: Number(st.uid),
        gid: Number(st.gid),
        nlink: Number(st.nlink),
        size: st.size,
        mtimeNs: st.mtimeNs,
        dev: st.dev,
        ino: st.ino,
        rdev: Number(st.rdev),
      },
    };
  } catch (e) {
    return { error: e as NodeJS.ErrnoException };
  }
}

/** Record `i` of lstatMany's answer `out` for `path` (the layout: local-fs.c, lstat_many_execute). */
function readRecord(out: Buffer, i: number, path: Buffer): SourceLstat {
  const r = i * LSTAT_RECORD_BYTES;
  const statErrno = out.readUInt32LE(r);
  if (statErrno !== 0) return { error: errnoError(statErrno, 'lstat', path) };
  const st: SourceStat = {
    mode: out.readUInt32LE(r + 8),
    uid: out.readUInt32LE(r + 12),
    gid: out.readUInt32LE(r + 16),
    mtimeNs: out.readBigInt64LE(r + 24) * 1_000_000_000n + BigInt(out.readUInt32LE(r + 20)),
    size: out.readBigUInt64LE(r + 32),
    nlink: Number(out.readBigUInt64LE(r + 40)),
    ino: out.readBigUInt64LE(r + 48),
    dev: out.readBigUInt64LE(r + 56),
    rdev: Number(out.readBigUInt64LE(r + 64)),
  };
  const xattrErrno = out.readUInt32LE(r + 4);
  if (xattrErrno !== 0) return { st, xattrError: errnoError(xattrErrno, 'llistxattr', path) };
  const blobLen = out.readUInt32LE(r + 76);
  if (blobLen === 0) return { st };
  const xattrs: [Buffer, Buffer][] = [];
  for (let at = out.readUInt32LE(r + 72), end = at + blobLen; at < end; ) {
    const nameLen = out.readUInt32LE(at);
    const name = Buffer.from(out.subarray(at + 4, at + 4 + nameLen));
    at += 4 + nameLen;
    const valueLen = out.readUInt32LE(at);
    xattrs.push([name, Buffer.from(out.subarray(at + 4, at + 4 + valueLen))]);
    at += 4 + valueLen;
  }
  return { st, xattrs };
}
