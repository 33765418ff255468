// Read-ahead policy shared by live and snapshot files: detects sequential reads per open handle and
// says which byte range to load ahead, growing the window while the stream stays sequential.

export const DEFAULT_READ_AHEAD_BYTES = 8 * 1024 * 1024;

/** Per-handle read position tracking. */
export interface ReadAheadState {
  lastEnd: number;
  /** Bytes of consecutive sequential reads (drives the window size). */
  streak: number;
  /** Everything below this offset has already been asked for. */
  issuedTo: number;
}

export function newReadAheadState(): ReadAheadState {
  return { lastEnd: -1, streak: 0, issuedTo: 0 };
}

/**
 * How far (in requests of the current size) a read may land from where the stream ended and still
 * count as part of it. The kernel keeps several reads of one stream in flight and libfuse's threads
 * hand them to JS in no fixed order, so a stream arrives slightly shuffled: taken strictly, every
 * swap looked like a seek and collapsed the window (measured: no block loading 40 % of a 1 GiB read).
 */
const REORDER_REQUESTS = 16;

/**
 * Records a read of [pos, pos + len) and returns the range to prefetch, or undefined when the read
 * is not part of a sequential stream. The window doubles from one block up to `maxBytes`.
 */
export function readAhead(
  st: ReadAheadState,
  pos: number,
  len: number,
  fileSize: number,
  blockSize: number,
  maxBytes: number = DEFAULT_READ_AHEAD_BYTES,
): { from: number; to: number } | undefined {
  const started = pos === 0 && st.lastEnd === -1;
  const near = st.lastEnd >= 0 && Math.abs(pos - st.lastEnd) <= REORDER_REQUESTS * Math.max(len, 1);
  if (!started && !near) {
    st.lastEnd = pos + len;
    st.streak = 0;
    st.issuedTo = 0;
    return undefined;
  }
  st.lastEnd = Math.max(st.lastEnd, pos + len);
  st.streak += len;
  const window = Math.min(maxBytes, Math.max(blockSize, 2 ** Math.ceil(Math.log2(Math.max(1, st.streak))) * 2));
  const from = Math.max(st.lastEnd, st.issuedTo);
  const to = Math.min(fileSize, st.lastEnd + window);
  if (to <= from) return undefined;
  st.issuedTo = to;
  return { from, to };
}
