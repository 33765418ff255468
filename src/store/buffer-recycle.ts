// Fragment-sized buffers kept for the next use of the same size: fetched fragments' bytes, given back
// by the codec thread that decoded them and taken for the next fetch, and the memory a whole block's
// stored bytes are encoded into, given back once the store has them (Repo.writeBlock). Memory already
// touched, where a fresh 1 MiB buffer costs about 256 page faults before the first byte is copied
// into it (a cold remote read spent 0.69 s of its JS thread's 6 s copying response chunks into fresh
// buffers, 0.04 s into recycled ones), and no garbage waiting outside V8's heap for a collection.

/**
 * Buffers kept at most (of all sizes together): a mount's read-ahead has 8 blocks in flight. Each
 * kept one counts in the process's memory, so no more.
 */
export const MAX_KEPT_BUFFERS = 8;
/** Smaller buffers are cheap to make: not kept. */
export const MIN_KEPT_BYTES = 256 * 1024;

const kept = new Map<number, ArrayBuffer[]>();
let keptCount = 0;

/** A buffer of exactly `bytes` bytes that owns its ArrayBuffer; its contents are anything. */
export function takeBuffer(bytes: number): Buffer {
  const list = kept.get(bytes);
  const ab = list?.pop();
  if (ab !== undefined) {
    keptCount--;
    if (list!.length === 0) kept.delete(bytes);
    return Buffer.from(ab, 0, bytes);
  }
  // Not from node's shared pool: the buffer is handed to a codec thread, which takes it whole.
  return Buffer.allocUnsafeSlow(bytes);
}

/**
 * Gives `ab` back: the caller MUST hold the only reference to it. When the pool is full, a buffer of
 * the size least recently given back makes room (sizes in use change: a read, then a write).
 */
export function giveBuffer(ab: ArrayBuffer): void {
  if (ab.byteLength < MIN_KEPT_BYTES) return;
  if (keptCount >= MAX_KEPT_BUFFERS) {
    const [oldest, oldList] = kept.entries().next().value as [number, ArrayBuffer[]];
    oldList.pop();
    keptCount--;
    if (oldList.length === 0) kept.delete(oldest);
  }
  let list = kept.get(ab.byteLength);
  // Re-inserted: the map's order is that of the sizes' last give.
  if (list !== undefined) kept.delete(ab.byteLength);
  else list = [];
  kept.set(ab.byteLength, list);
  list.push(ab);
  keptCount++;
}

/** Lets every kept buffer go (an idle process: they are memory it holds for nothing). */
export function dropKeptBuffers(): void {
  kept.clear();
  keptCount = 0;
}
