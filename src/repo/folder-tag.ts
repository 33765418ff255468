// A folder's source tag (FORMAT.md 2.3.6 `sourceTag`): what lets a put take a folder of files whole
// from its parent snapshot without reading the parent's listing of it. The tag binds a digest of the
// folder's entries as the put lstat'ed them (names, lstat fields with ctime and inode number,
// extended attributes) to the id of the listing written for them; a later put whose own lstats of
// the folder give the same digest, and whose parent entry names that listing with that tag, reuses
// the listing as it is. Only folders that hold no folders get one, and no file with another name
// inside the trees put (a hard-link group, numbered anew by each put); a file whose other names lie
// outside them (a tree made with `cp -al`, a rotated backup) is a plain file to the put.

import { blake3 } from '../codec/blake3.js';
import { compareNames } from '../fragment/names.js';
import { SOURCE_TAG_BYTES } from '../fragment/tree-format.js';
import type { SourceLstat, SourceStat } from '../local/source-stat.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../vfs/inode.js';

/** Domain of the digest, so it can never be mistaken for another BLAKE3 input of fragfs. */
const DIGEST_DOMAIN = Buffer.from('fragfs folder entries v1\0');
const TAG_DOMAIN = Buffer.from('fragfs source tag v1\0');
/** Fixed bytes of one entry in the digest's input (layout at summarizeFolder). */
const ENTRY_FIXED_BYTES = 64;

/** What a put needs of a folder of files to take it whole: its digest and what it counts. */
export interface FolderSummary {
  /** BLAKE3-256 of the folder's kept entries in name order (input at summarizeFolder). */
  digest: Uint8Array;
  files: number;
  /** Sum of its files' sizes. */
  plainBytes: number;
  symlinks: number;
  /** The latest mtime of its files (ns; -1n without files): put trusts files unread only before its racy bound. */
  newestFileMtimeNs: bigint;
  /**
   * `dev:ino` of its files with st_nlink > 1. The folder may be taken whole only when none of them
   * has a second name inside the trees put, which only the whole survey tells.
   */
  linkedInodes: string[];
}

const pad8 = (n: number): number => (n + 7) & ~7;

/**
 * The summary of a folder whose kept entries are `names` (any order) with their lstats `found` (as
 * scanFolder answers them, extended attributes read); undefined when it may not be taken whole by
 * its tag: an entry that could not be lstat'ed or whose attributes could not be listed, or a folder
 * among its entries (its own listing may change below an unchanged lstat). Files with several links
 * are listed in `linkedInodes` for the caller to check against the whole put's count of names.
 *
 * The digest's input, all little-endian: the domain string padded with zeros to a multiple of 8,
 * then per entry in name-byte order 64 bytes (u32 name length, mode, uid, gid, nlink, attribute
 * count; f64 size, rdev; i64 mtime ns, ctime ns; u64 inode number), the name padded with zeros to a
 * multiple of 8, and per attribute in name-byte order u32 name length, u32 value length, name and
 * value padded to a multiple of 8 (FORMAT.md 2.3.6).
 * st_dev is left out: it may change across boots while the files do not.
 */
export function summarizeFolder(names: readonly Buffer[], found: readonly SourceLstat[]): FolderSummary | undefined {
  let files = 0;
  let plainBytes = 0;
  let symlinks = 0;
  let newestFileMtimeNs = -1n;
  const linkedInodes: string[] = [];
  const ok: { st: SourceStat; xattrs?: [Buffer, Buffer][] }[] = [];
  for (const f of found) {
    if (f.st === undefined || f.xattrError !== undefined) return undefined;
    ok.push(f);
    const type = f.st.mode & S_IFMT;
    if (type === S_IFDIR) return undefined;
    if (type === S_IFREG) {
      if (f.st.nlink > 1) linkedInodes.push(`${f.st.dev}:${f.st.ino}`);
      files++;
      plainBytes += f.st.size;
      if (f.st.mtimeNs > newestFileMtimeNs) newestFileMtimeNs = f.st.mtimeNs;
    } else if (type === S_IFLNK) symlinks++;
  }
  const order = names.map((_, i) => i).sort((a, b) => compareNames(names[a]!, names[b]!));
  let total = pad8(DIGEST_DOMAIN.length);
  for (const i of order) {
    total += ENTRY_FIXED_BYTES + pad8(names[i]!.length);
    for (const [k, v] of ok[i]!.xattrs ?? []) total += 8 + pad8(k.length) + pad8(v.length);
  }
  // An ArrayBuffer of its own: 8-byte aligned for the 64-bit views.
  const buf = new ArrayBuffer(total);
  const bytes = new Uint8Array(buf);
  const u32 = new Uint32Array(buf);
  const f64 = new Float64Array(buf);
  const i64 = new BigInt64Array(buf);
  const u64 = new BigUint64Array(buf);
  bytes.set(DIGEST_DOMAIN, 0);
  let at = pad8(DIGEST_DOMAIN.length);
  for (const i of order) {
    const name = names[i]!;
    const f = ok[i]!;
    const st = f.st;
    const xattrs = f.xattrs === undefined || f.xattrs.length < 2 ? f.xattrs : [...f.xattrs].sort((a, b) => compareNames(a[0], b[0]));
    const q = at / 4;
    const d = at / 8;
    u32[q] = name.length;
    u32[q + 1] = st.mode;
    u32[q + 2] = st.uid;
    u32[q + 3] = st.gid;
    u32[q + 4] = st.nlink;
    u32[q + 5] = xattrs?.length ?? 0;
    f64[d + 3] = st.size;
    f64[d + 4] = st.rdev;
    i64[d + 5] = st.mtimeNs;
    i64[d + 6] = st.ctimeNs;
    u64[d + 7] = st.ino;
    at += ENTRY_FIXED_BYTES;
    bytes.set(name, at);
    at += pad8(name.length);
    for (const [k, v] of xattrs ?? []) {
      u32[at / 4] = k.length;
      u32[at / 4 + 1] = v.length;
      at += 8;
      bytes.set(k, at);
      at += pad8(k.length);
      bytes.set(v, at);
      at += pad8(v.length);
    }
  }
  return { digest: blake3(bytes), files, plainBytes, symlinks, newestFileMtimeNs, linkedInodes };
}

/** The tag a folder entry carries: its entries' digest bound to the id of the listing written for them. */
export function sourceTag(digest: Uint8Array, dirId: string): Uint8Array {
  const input = Buffer.concat([TAG_DOMAIN, digest, Buffer.from(dirId, 'hex')]);
  return blake3(input).slice(0, SOURCE_TAG_BYTES);
}
