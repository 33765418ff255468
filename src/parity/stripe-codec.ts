// One stripe's arithmetic: its parity objects from its members, and any m lost shards (members or
// parity) from the others, each rebuilt shard checked against the hash the record holds for it.

import { blake3, toHex } from '../codec/blake3.js';
import { FragfsError, isFragfsError } from '../errors.js';
import type { Store } from '../store/store.js';
import { encodeParity, isContentAddressed, type StripeMember, type StripeRecord } from './parity-format.js';
import { rsEncode } from './rs-codec.js';

export type MemberRead = { bytes: Uint8Array; problem?: undefined } | { bytes?: undefined; problem: 'missing' | 'corrupt'; message: string };

/** A member as stored: present and whole (its hash is the record's, its size too), or why not. */
export async function readMember(store: Store, space: string, mb: StripeMember): Promise<MemberRead> {
  let bytes: Uint8Array;
  try {
    bytes = await store.get({ space, kind: mb.kind }, mb.id);
  } catch (e) {
    if (isFragfsError(e, 'MISSING_FRAGMENT')) return { problem: 'missing', message: 'missing from the store' };
    if (isFragfsError(e, 'CORRUPT')) return { problem: 'corrupt', message: e.message };
    throw e;
  }
  if (bytes.length !== mb.size) return { problem: 'corrupt', message: `${bytes.length} bytes, the stripe says ${mb.size}` };
  if (toHex(blake3(bytes)) !== mb.hash) return { problem: 'corrupt', message: 'its bytes do not hash to what the stripe holds' };
  return { bytes };
}

/** Whether `bytes` may be what `kind`/`id` names (a content-addressed kind: its hash is its id). */
export function selfChecks(kind: StripeMember['kind'], id: string, bytes: Uint8Array): boolean {
  return !isContentAddressed(kind) || toHex(blake3(bytes)) === id;
}

export interface RebuiltStripe {
  /** Every member's bytes, rebuilt ones included. */
  members: Uint8Array[];
  /** Every parity object, whole (record, index, shard). */
  parity: Buffer[];
}

/**
 * Fills in the shards that are undefined from those given (at least members.length of them).
 * Rebuilt members MUST hash to their record entry: otherwise CORRUPT (a shard given was damaged
 * in a way its own check did not see).
 */
export async function rebuildStripe(
  record: StripeRecord,
  recordBytes: Buffer,
  members: readonly (Uint8Array | undefined)[],
  parityShards: readonly (Uint8Array | undefined)[],
): Promise<RebuiltStripe> {
  const n = record.members.length;
  const { m, shardSize: S } = record;
  const data = Buffer.alloc(n * S);
  const parity = Buffer.alloc(m * S);
  const present: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = members[i];
    if (b) {
      data.set(b, i * S);
      present.push(i);
    } else targets.push(i);
  }
  for (let j = 0; j < m; j++) {
    const b = parityShards[j];
    if (b) {
      if (b.length !== S) throw new FragfsError('INVALID', `parity shard of ${b.length} bytes in a stripe of ${S}`);
      parity.set(b, j * S);
      present.push(n + j);
    } else targets.push(n + j);
  }
  if (present.length < n) throw new FragfsError('CORRUPT', `a stripe of ${n} members has ${present.length} good shards left`);
  if (targets.length > 0) await rsEncode(n, m, S, data, parity, present, targets);
  const outMembers: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const mb = record.members[i]!;
    if (members[i]) {
      outMembers.push(members[i]!);
      continue;
    }
    const b = Buffer.from(data.subarray(i * S, i * S + mb.size));
    if (toHex(blake3(b)) !== mb.hash) {
      throw new FragfsError('CORRUPT', `rebuilt ${mb.kind} fragment ${mb.id} does not hash to what its stripe holds`, { fragmentId: mb.id });
    }
    outMembers.push(b);
  }
  const outParity: Buffer[] = [];
  for (let j = 0; j < m; j++) outParity.push(encodeParity(recordBytes, j, parity.subarray(j * S, (j + 1) * S)));
  return { members: outMembers, parity: outParity };
}
