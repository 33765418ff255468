// Small source files read whole in one addon call (local-fs.c, readSmallFiles): for each path, the
// fstat the read began from, the bytes, and the fstat after, so put can judge the read as readOnce
// judges its own without a JavaScript round trip per file. Only the addon reads this way; without
// it put reads file by file.

import { getSystemErrorMap } from 'node:util';
import type { LocalFs } from './local-fs.js';

/** One file's fstat as readSmallFiles took it (the fields a stored file and its checks need). */
export interface SmallStat {
  mode: bigint;
  uid: bigint;
  gid: bigint;
  nlink: number;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
}

/** Which call of a file's read failed, or why it was not read (local-fs.c's record, offset 4). */
export type SmallReadStage = 'open' | 'fstat' | 'read' | 'fstat-after' | 'not-regular' | 'too-large';
const STAGES: readonly (SmallReadStage | undefined)[] = [undefined, 'open', 'fstat', 'read', 'fstat-after', 'not-regular', 'too-large'];

/**
 * One path's answer: read (`bytes` from byte 0, at most the first fstat's size), with both fstats and
 * the wall clock (ns, whole ms) when the read began; or where it stopped and, for a failed call, why.
 */
export type SmallRead =
  | { ok: true; st: SmallStat; bytes: Buffer; after: { size: bigint; mtimeNs: bigint; ctimeNs: bigint }; startedNs: bigint }
  | { ok: false; stage: SmallReadStage; error?: NodeJS.ErrnoException; st?: SmallStat };

const HEADER_BYTES = 8;
const RECORD_BYTES = 104;

const errorMap = getSystemErrorMap();

function errnoError(e: number, call: string, path: Buffer): NodeJS.ErrnoException {
  const [code, text] = errorMap.get(-e) ?? ['EIO', `errno ${e}`];
  return Object.assign(new Error(`${code}: ${text}, ${call} '${path.toString('latin1')}'`), { code, errno: -e, syscall: call });
}

/**
 * Reads each of `paths` whole when it is a regular file of at most `maxBytes`, in one call off the JS
 * thread; one answer per path, in order. Each answer's bytes are its own memory (repo.writeBlock may
 * hand a block's memory to a worker).
 */
export async function readSmallFiles(local: LocalFs, paths: readonly Buffer[], maxBytes: number): Promise<SmallRead[]> {
  const input = Buffer.allocUnsafe(paths.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const p of paths) {
    input.set(p, at);
    at += p.length;
    input[at++] = 0;
  }
  let out = await local.readSmallFiles(input, paths.length, maxBytes);
  if (out.byteOffset % 8 !== 0) out = Buffer.from(new Uint8Array(out));
  const words = Math.floor(out.byteLength / 8);
  const u32 = new Uint32Array(out.buffer, out.byteOffset, words * 2);
  const i64 = new BigInt64Array(out.buffer, out.byteOffset, words);
  const u64 = new BigUint64Array(out.buffer, out.byteOffset, words);
  return paths.map((path, i): SmallRead => {
    const q = (HEADER_BYTES + i * RECORD_BYTES) / 4;
    const d = (HEADER_BYTES + i * RECORD_BYTES) / 8;
    const errno = u32[q]!;
    const stage = STAGES[u32[q + 1]!];
    if (stage === 'open' || stage === 'fstat') return { ok: false, stage, error: errnoError(errno, stage, path) };
    const st: SmallStat = {
      mode: BigInt(u32[q + 2]!),
      uid: BigInt(u32[q + 3]!),
      gid: BigInt(u32[q + 4]!),
      nlink: u32[q + 5]!,
      mtimeNs: i64[d + 3]!,
      ctimeNs: i64[d + 4]!,
      size: u64[d + 5]!,
      ino: u64[d + 6]!,
      dev: u64[d + 7]!,
    };
    if (stage !== undefined) return errno !== 0 ? { ok: false, stage, st, error: errnoError(errno, stage === 'read' ? 'read' : 'fstat', path) } : { ok: false, stage, st };
    const from = u32[q + 24]!;
    const length = u32[q + 25]!;
    const bytes = Buffer.allocUnsafeSlow(length);
    bytes.set(out.subarray(from, from + length));
    return { ok: true, st, bytes, after: { size: u64[d + 8]!, mtimeNs: i64[d + 9]!, ctimeNs: i64[d + 10]! }, startedNs: i64[d + 11]! };
  });
}
