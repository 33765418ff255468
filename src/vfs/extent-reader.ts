// Reading a byte range of a file described by sorted extents (snapshot files), through the shared
// block cache and read-ahead policy; holes and bytes past an extent's plaintext read as zeros.

import type { Extent } from '../fragment/tree-format.js';
import type { BlockCache } from './block-cache.js';
import { readAhead, type ReadAheadState } from './prefetch.js';

/** Copies [inOff, inOff + n) of a block image whose valid bytes end at `validLen`; zeros past it. */
export function copyOrZero(src: Uint8Array, validLen: number, inOff: number, n: number, dst: Buffer, dstOff: number): void {
  const avail = Math.max(0, Math.min(n, validLen - inOff));
  if (avail > 0) dst.set(src.subarray(inOff, inOff + avail), dstOff);
  if (avail < n) dst.fill(0, dstOff + avail, dstOff + n);
}

/** Index of the last extent whose offset is <= pos, or -1. */
export function findExtent(extents: readonly Extent[], pos: number): number {
  let lo = 0;
  let hi = extents.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (extents[mid]!.offset <= pos) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export interface ExtentFile {
  extents: readonly Extent[];
  size: number;
  /** Path inside the tree, named by errors. */
  path: string;
}

export async function readExtentFile(
  cache: BlockCache,
  f: ExtentFile,
  dst: Buffer,
  length: number,
  position: number,
  ra: ReadAheadState,
  blockSize: number,
  readAheadBytes: number,
): Promise<number> {
  const end = Math.min(position + length, f.size);
  if (position >= end) return 0;
  const total = end - position;
  // Read-ahead is decided as the request arrives, not after its data is in: the kernel keeps two
  // reads of a stream in flight, and the one that waits for a block finishes after the next one,
  // which would look like a seek and collapse the window.
  const r = readAhead(ra, position, total, f.size, blockSize, readAheadBytes);
  if (r) {
    for (let j = Math.max(0, findExtent(f.extents, r.from)); j < f.extents.length; j++) {
      const e = f.extents[j]!;
      if (e.offset >= r.to) break;
      if (e.offset + e.plainSize > r.from) cache.prefetch(e, f.path);
    }
  }
  let done = 0;
  let i = findExtent(f.extents, position);
  while (done < total) {
    const pos = position + done;
    while (i + 1 < f.extents.length && f.extents[i + 1]!.offset <= pos) i++;
    const ext = i >= 0 ? f.extents[i] : undefined;
    if (ext && pos < ext.offset + ext.plainSize) {
      const inOff = pos - ext.offset;
      const n = Math.min(total - done, ext.plainSize - inOff);
      const plain = await cache.get(ext, f.path);
      copyOrZero(plain, plain.byteLength, inOff, n, dst, done);
      done += n;
    } else {
      // A hole up to the next extent (or the end).
      const next = f.extents[i + 1];
      const holeEnd = next ? Math.min(end, next.offset) : end;
      const n = holeEnd - pos;
      dst.fill(0, done, done + n);
      done += n;
    }
  }
  return total;
}

/** The cached plaintext of the extent holding `position`, clipped to the file's size (Vfs.cleanBlockAt). */
export function cachedExtentAt(cache: BlockCache, f: ExtentFile, position: number): { offset: number; data: Uint8Array } | undefined {
  const i = findExtent(f.extents, position);
  const ext = i >= 0 ? f.extents[i] : undefined;
  if (!ext || position >= ext.offset + ext.plainSize) return undefined;
  const plain = cache.peek(ext);
  const len = Math.min(plain?.byteLength ?? 0, f.size - ext.offset);
  return plain && len > 0 ? { offset: ext.offset, data: plain.subarray(0, len) } : undefined;
}
