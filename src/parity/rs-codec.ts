// Reed-Solomon over the bytes of a stripe: @ronomon/reed-solomon (Cauchy bit-matrices over
// GF(2^w), native C run on the libuv pool) when its addon loads, else the same code in TypeScript
// (rs-fallback.ts), which writes the same bytes; FRAGFS_RS=js or =native forces one of them.

import { createRequire } from 'node:module';
import { FragfsError } from '../errors.js';
import { rsFallback } from './rs-fallback.js';

/** The addon's interface, which rs-fallback.ts also offers. */
export interface RsBinding {
  MAX_K: number;
  MAX_M: number;
  create(k: number, m: number): unknown;
  encode(
    context: unknown,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    end: (error?: Error) => void,
  ): void;
}

/** Which implementation computes parity in this process. */
export type RsCodecName = 'native' | 'js';

let binding: RsBinding | undefined;
let bindingName: RsCodecName | undefined;
const contexts = new Map<string, unknown>();

function rs(): RsBinding {
  if (binding) return binding;
  const wanted = process.env['FRAGFS_RS'];
  if (wanted !== undefined && wanted !== '' && wanted !== 'js' && wanted !== 'native') {
    throw new FragfsError('USAGE', `FRAGFS_RS is ${JSON.stringify(wanted)}: it may be js or native`);
  }
  if (wanted !== 'js') {
    try {
      binding = createRequire(import.meta.url)('@ronomon/reed-solomon') as RsBinding;
      bindingName = 'native';
      return binding;
    } catch (e) {
      // npm runs no install scripts: without a compiler (scripts/setup.sh) the addon is not built,
      // and the TypeScript code, slower but byte-identical, does the work instead.
      if (wanted === 'native') {
        throw new FragfsError('NOT_SUPPORTED', `FRAGFS_RS=native, but the @ronomon/reed-solomon addon is not built (run scripts/setup.sh): ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
  binding = rsFallback;
  bindingName = 'js';
  return binding;
}

/** The implementation parity uses here: the addon, or the TypeScript code when it is not built. */
export function rsCodecName(): RsCodecName {
  rs();
  return bindingName!;
}

/** The most data and parity shards one stripe can have (the library's bounds). */
export const RS_MAX_K = 24;
export const RS_MAX_M = 6;
/** Shards are a whole number of this many bytes (the library works in 64-bit words). */
export const SHARD_ALIGN = 8;

export function shardSizeFor(longestBytes: number): number {
  return Math.max(SHARD_ALIGN, Math.ceil(longestBytes / SHARD_ALIGN) * SHARD_ALIGN);
}

/**
 * Computes the shards named by `targets` from those named by `present`, in place. Shard i < k is
 * `data[i * shardSize ..]`, shard k + j is `parity[j * shardSize ..]`. MUST be given at least k
 * present shards; targets and present MUST NOT overlap.
 */
export function rsEncode(
  k: number,
  m: number,
  shardSize: number,
  data: Buffer,
  parity: Buffer,
  present: readonly number[],
  targets: readonly number[],
): Promise<void> {
  const lib = rs();
  if (k < 1 || k > RS_MAX_K || m < 1 || m > RS_MAX_M) throw new FragfsError('INVALID', `no Reed-Solomon code ${k}+${m} (1..${RS_MAX_K} + 1..${RS_MAX_M})`);
  if (present.length < k) throw new FragfsError('INVALID', `${present.length} shards cannot rebuild a stripe of ${k}`);
  const key = `${k}+${m}`;
  let context = contexts.get(key);
  if (context === undefined) {
    context = lib.create(k, m);
    contexts.set(key, context);
  }
  let sources = 0;
  for (const i of present) sources |= 1 << i;
  let targetBits = 0;
  for (const i of targets) targetBits |= 1 << i;
  return new Promise((resolve, reject) => {
    lib.encode(context, sources, targetBits, data, 0, k * shardSize, parity, 0, m * shardSize, (error) => {
      if (error) reject(new FragfsError('INVALID', `Reed-Solomon ${key}: ${error.message}`));
      else resolve();
    });
  });
}
