// Data block size limits of a fragfs store and parsing of sizes given by users ("1M", "512K").

import { FragfsError } from '../errors.js';

export const MIN_BLOCK_SIZE = 64 * 1024;
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const MAX_BLOCK_SIZE = 4 * 1024 * 1024;

/** Throws INVALID unless `n` is an integer block size in [MIN_BLOCK_SIZE, MAX_BLOCK_SIZE]. */
export function checkBlockSize(n: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < MIN_BLOCK_SIZE || n > MAX_BLOCK_SIZE) {
    throw new FragfsError(
      'INVALID',
      `block size ${String(n)} is out of range: it must be a whole number of bytes from ` +
        `${MIN_BLOCK_SIZE} (64K) to ${MAX_BLOCK_SIZE} (4M)`,
    );
  }
  return n;
}

const UNIT_BYTES: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Parses a byte count: digits with an optional binary unit K, M, G or T (optionally followed by
 * "B" or "iB", any case) or a plain "B", e.g. "1048576", "512K", "1M", "4MiB". Units are powers
 * of 1024. Throws INVALID for anything else or a result that is not a safe integer.
 */
export function parseSize(s: string): number {
  const m = typeof s === 'string' ? /^\s*(\d+)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(s) : null;
  if (m === null) {
    throw new FragfsError('INVALID', `not a size: ${JSON.stringify(s)} (use bytes or K, M, G, e.g. 512K, 1M)`);
  }
  const n = Number(m[1]) * (m[2] === undefined ? 1 : UNIT_BYTES[m[2].toUpperCase()]!);
  if (!Number.isSafeInteger(n)) throw new FragfsError('INVALID', `size too large: ${JSON.stringify(s)}`);
  return n;
}
