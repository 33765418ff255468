// A source entry's lstat as put reads it: the fields a snapshot entry keeps and the ones the walk
// compares, for a whole folder or a batch of paths at once. With the local-fs addon, one call lists
// the folder (scanDir) or takes the paths (lstatMany) and runs every lstat, and the extended
// attributes, on libuv's thread pool, answering packed records; without it, node:fs lists and lstats
// one path at a time and no attributes are read.

import { lstat, readdir } from 'node:fs/promises';
import { getSystemErrorMap } from 'node:util';
import { joinName } from '../fragment/names.js';
import type { LocalFs } from './local-fs.js';

export interface SourceStat {
  /** st_mode: the type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Bytes (a number: no file comes near 2^53 bytes). */
  size: number;
  mtimeNs: bigint;
  /**
   * Inode change time, ns: moves with every change to the inode (content, mode, owner, links,
   * extended attributes) and cannot be set back, so a folder's source tag (folder-tag.ts) holds it.
   */
  ctimeNs: bigint;
  dev: bigint;
  ino: bigint;
  rdev: number;
}

/** One path's lstat, or the error that stopped it; its extended attributes when they were asked for. */
export type SourceLstat =
  | { st: SourceStat; xattrs?: [Buffer, Buffer][]; xattrError?: NodeJS.ErrnoException }
  | { st?: undefined; error: NodeJS.ErrnoException };

/** Bytes of the header and of one record of lstatMany's and scanDir's answers (local-fs.c). */
const ANSWER_HEADER_BYTES = 8;
const LSTAT_RECORD_BYTES = 88;

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
  const words = wordsOf(await local.lstatMany(input, paths.length, xattrs));
  return paths.map((p, i) => readRecord(words, i, p));
}

/** A folder's entries: their names (bytes, in the order the folder lists them) and their lstats. */
export interface FolderScan {
  names: Buffer[];
  found: SourceLstat[];
}

/**
 * Every entry of folder `path` (but `.` and `..`) with its lstat and, with `xattrs`, its extended
 * attributes. The addon lists and lstats them in one call off the JS thread, the names views of its
 * answer; without it, node:fs lists them and lstats each (no attributes). A folder that cannot be
 * listed throws as node:fs's readdir does (an Error with `code`).
 */
export async function scanFolder(local: LocalFs | undefined, path: Buffer, xattrs: boolean): Promise<FolderScan> {
  if (local === undefined) {
    const names = await readdir(path, { encoding: 'buffer' });
    return { names, found: await lstatPaths(undefined, names.map((n) => joinName(path, n)), false) };
  }
  return readFolderScan(await local.scanDir(path, xattrs), path);
}

/**
 * The FolderScan of scanDir's answer `out` for folder `path` (names are views of `out`). Throws as
 * scanFolder does when the folder could not be listed.
 */
export function readFolderScan(out: Buffer, path: Buffer): FolderScan {
  const w = wordsOf(out);
  const count = w.u32[0]!;
  if (w.u32[1] !== 0) throw errnoError(w.u32[1]!, 'scandir', path);
  const names: Buffer[] = [];
  const found: SourceLstat[] = [];
  for (let i = 0; i < count; i++) {
    const q = (ANSWER_HEADER_BYTES + i * LSTAT_RECORD_BYTES) / 4;
    const at = w.u32[q + 18]!;
    const name = w.bytes.subarray(at, at + w.u32[q + 19]!);
    names.push(name);
    found.push(readRecord(w, i, name));
  }
  return { names, found };
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
        size: Number(st.size),
        mtimeNs: st.mtimeNs,
        ctimeNs: st.ctimeNs,
        dev: st.dev,
        ino: st.ino,
        rdev: Number(st.rdev),
      },
    };
  } catch (e) {
    return { error: e as NodeJS.ErrnoException };
  }
}

/** lstatMany's answer seen as 32- and 64-bit words (its records are 8-byte aligned). */
interface Words {
  bytes: Buffer;
  u32: Uint32Array;
  i64: BigInt64Array;
  u64: BigUint64Array;
}

/**
 * Typed-array views of `out`, copied first if its memory is not 8-byte aligned. Reading a record's
 * fields through them makes a BigInt in one step where Buffer.readBigUInt64LE took several (the
 * JavaScript side of lstatPaths on 100 entries: about 45 us with those reads, 15-20 us with these).
 */
function wordsOf(out: Buffer): Words {
  const bytes = out.byteOffset % 8 === 0 ? out : Buffer.from(new Uint8Array(out));
  const n = Math.floor(bytes.byteLength / 8);
  return {
    bytes,
    u32: new Uint32Array(bytes.buffer, bytes.byteOffset, n * 2),
    i64: new BigInt64Array(bytes.buffer, bytes.byteOffset, n),
    u64: new BigUint64Array(bytes.buffer, bytes.byteOffset, n),
  };
}

/**
 * Record `i` of an answer of lstatMany or scanDir for `path` (a name, for scanDir's; only messages
 * use it). An answer is an 8-byte header (u32 count, u32 errno of the listing) and the records; a
 * record, in bytes from its start, little-endian (local-fs.c, fill_record): 0 lstat errno, 4
 * attribute-list errno, 8 st_mode, 12 uid, 16 gid, 20 nlink (u32), 24 mtime ns (i64), 32 size, 40
 * ino, 48 dev, 56 rdev (u64), 64 offset and 68 length of its attributes in the answer, 72 offset and
 * 76 length of its name (scanDir), 80 ctime ns (i64).
 */
function readRecord(w: Words, i: number, path: Buffer): SourceLstat {
  const q = (ANSWER_HEADER_BYTES + i * LSTAT_RECORD_BYTES) / 4;
  const d = (ANSWER_HEADER_BYTES + i * LSTAT_RECORD_BYTES) / 8;
  const { u32, u64 } = w;
  if (u32[q] !== 0) return { error: errnoError(u32[q]!, 'lstat', path) };
  const st: SourceStat = {
    mode: u32[q + 2]!,
    uid: u32[q + 3]!,
    gid: u32[q + 4]!,
    nlink: u32[q + 5]!,
    mtimeNs: w.i64[d + 3]!,
    ctimeNs: w.i64[d + 10]!,
    size: u32[q + 8]! + u32[q + 9]! * 2 ** 32,
    ino: u64[d + 5]!,
    dev: u64[d + 6]!,
    rdev: u32[q + 14]! + u32[q + 15]! * 2 ** 32,
  };
  if (u32[q + 1] !== 0) return { st, xattrError: errnoError(u32[q + 1]!, 'llistxattr', path) };
  const blobLen = u32[q + 17]!;
  if (blobLen === 0) return { st };
  const out = w.bytes;
  const xattrs: [Buffer, Buffer][] = [];
  for (let at = u32[q + 16]!, end = at + blobLen; at < end; ) {
    const nameLen = out.readUInt32LE(at);
    const name = Buffer.from(out.subarray(at + 4, at + 4 + nameLen));
    at += 4 + nameLen;
    const valueLen = out.readUInt32LE(at);
    xattrs.push([name, Buffer.from(out.subarray(at + 4, at + 4 + valueLen))]);
    at += 4 + valueLen;
  }
  return { st, xattrs };
}
