// `fragfs repair`: reads every stripe of a space, finds members and parity objects that are missing
// or whose bytes are not what the stripe says, rebuilds each one its stripe allows and writes it
// back only once its hash checks. It needs no key: the stripe records and the ids it checks are
// hashes and sizes of ciphertext. Memory: one stripe at a time.

import { blake3, toHex } from '../codec/blake3.js';
import { FragfsError, isFragfsError } from '../errors.js';
import { Semaphore } from '../repo/semaphore.js';
import type { FragmentKind, Store } from '../store/store.js';
import { memberKey } from './parity-format.js';
import { unprotectedObjects } from './protect.js';
import { readMember, rebuildStripe, selfChecks } from './stripe-codec.js';
import { loadStripes, parityNs, writeStripeCache, type Stripe } from './stripe-view.js';

export interface RepairItem {
  kind: FragmentKind;
  id: string;
  problem: 'missing' | 'corrupt';
  message: string;
  /** The stripe it belongs to (none: an object no stripe covers). */
  stripe?: string;
}

export interface RepairReport {
  dryRun: boolean;
  stripes: number;
  membersChecked: number;
  parityChecked: number;
  /** Objects outside every stripe, checked as far as their ids allow. */
  unprotectedChecked: number;
  bytesRead: number;
  /** Rebuilt and written back (or, with dryRun, that would be). */
  rebuilt: RepairItem[];
  /** Damaged and beyond what their stripe can rebuild, or in no stripe. */
  lost: RepairItem[];
  /** Parity objects whose record does not parse: removed (their stripes rebuild them). */
  unreadableParity: string[];
  ms: number;
}

export interface RepairOptions {
  dryRun?: boolean;
  /** Where the parity objects are (parity-store.ts); default: the store itself. */
  parityStore?: Store;
  cachePath?: string;
  log?: (line: string) => void;
  /** Tests: called after each stripe is done (a kill -9 test stops here). */
  afterStripe?: (n: number) => Promise<void> | void;
}

const IN_FLIGHT = 8;

type ParityRead = { shard: Uint8Array } | { shard?: undefined; problem: 'missing' | 'corrupt'; message: string; id?: string };

async function readParity(store: Store, space: string, s: Stripe, index: number): Promise<ParityRead> {
  const id = s.parity.get(index);
  if (id === undefined) return { problem: 'missing', message: 'missing from the store' };
  let bytes: Uint8Array;
  try {
    bytes = await store.get(parityNs(space), id);
  } catch (e) {
    if (isFragfsError(e, 'MISSING_FRAGMENT')) return { problem: 'missing', message: 'missing from the store', id };
    if (isFragfsError(e, 'CORRUPT')) return { problem: 'corrupt', message: e.message, id };
    throw e;
  }
  const head = s.recordBytes.length;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (toHex(blake3(b)) !== id) return { problem: 'corrupt', message: 'its bytes do not hash to its id', id };
  if (b.length !== head + 4 + s.record.shardSize || !b.subarray(0, head).equals(s.recordBytes) || b[head] !== index) {
    return { problem: 'corrupt', message: 'not the parity object its stripe names', id };
  }
  return { shard: b.subarray(head + 4) };
}

/** Writes a rebuilt object in place of a damaged one: the damaged copy goes first (a put of a present id may keep it). */
async function writeBack(store: Store, ns: { space: string; kind: FragmentKind }, id: string, bytes: Uint8Array): Promise<void> {
  await store.delete(ns, id);
  await store.put(ns, id, bytes);
}

export async function repairStore(store: Store, space: string, o: RepairOptions = {}): Promise<RepairReport> {
  const started = Date.now();
  const dryRun = o.dryRun === true;
  const log = o.log ?? (() => undefined);
  const report: RepairReport = {
    dryRun,
    stripes: 0,
    membersChecked: 0,
    parityChecked: 0,
    unprotectedChecked: 0,
    bytesRead: 0,
    rebuilt: [],
    lost: [],
    unreadableParity: [],
    ms: 0,
  };
  const ps = o.parityStore ?? store;
  const view = await loadStripes(ps, space, o.cachePath);
  const pns = parityNs(space);
  const limit = new Semaphore(IN_FLIGHT);
  const rewrittenParity = new Set<string>();
  let done = 0;
  for (const s of view.stripes.values()) {
    report.stripes++;
    const { members, m } = s.record;
    const reads = await Promise.all(members.map((mb) => limit.run(() => readMember(store, space, mb))));
    const parity = await Promise.all(Array.from({ length: m }, (_, j) => limit.run(() => readParity(ps, space, s, j))));
    report.membersChecked += members.length;
    report.parityChecked += m;
    for (const r of reads) report.bytesRead += r.bytes?.length ?? 0;
    for (const p of parity) report.bytesRead += p.shard ? p.shard.length + s.recordBytes.length + 4 : 0;
    const badMembers = members.map((mb, i) => ({ mb, r: reads[i]! })).filter((x) => x.r.bytes === undefined);
    const badParity = parity.map((p, j) => ({ j, p })).filter((x) => x.p.shard === undefined);
    if (badMembers.length + badParity.length === 0) {
      await o.afterStripe?.(++done);
      continue;
    }
    const memberItems: RepairItem[] = badMembers.map(({ mb, r }) => ({
      kind: mb.kind,
      id: mb.id,
      problem: r.problem ?? 'corrupt',
      message: r.problem === undefined ? '' : r.message,
      stripe: s.stripeId,
    }));
    const parityItems: RepairItem[] = badParity.map(({ j, p }) => ({
      kind: 'parity',
      id: (p.shard === undefined ? p.id : undefined) ?? `(parity ${j} of stripe ${s.stripeId})`,
      problem: p.shard === undefined ? p.problem : 'missing',
      message: p.shard === undefined ? p.message : '',
      stripe: s.stripeId,
    }));
    const items = [...memberItems, ...parityItems];
    let rebuilt: Awaited<ReturnType<typeof rebuildStripe>> | undefined;
    if (members.length - badMembers.length + m - badParity.length >= members.length) {
      try {
        rebuilt = await rebuildStripe(
          s.record,
          s.recordBytes,
          reads.map((r) => r.bytes),
          parity.map((p) => p.shard),
        );
      } catch (e) {
        if (!isFragfsError(e, 'CORRUPT')) throw e;
        log(`repair: stripe ${s.stripeId}: ${e.message}`);
      }
    }
    if (!rebuilt) {
      report.lost.push(...items);
      await o.afterStripe?.(++done);
      continue;
    }
    for (const { mb } of badMembers) {
      const i = members.indexOf(mb);
      if (!dryRun) await writeBack(store, { space, kind: mb.kind }, mb.id, rebuilt.members[i]!);
    }
    for (const [x, { j }] of badParity.entries()) {
      const obj = rebuilt.parity[j]!;
      const id = toHex(blake3(obj));
      parityItems[x]!.id = id;
      if (!dryRun) {
        const old = s.parity.get(j);
        await writeBack(ps, pns, id, obj);
        if (old !== undefined && old !== id) await ps.delete(pns, old);
        s.parity.set(j, id);
      }
      rewrittenParity.add(id);
    }
    report.rebuilt.push(...items);
    log(`repair: stripe ${s.stripeId}: ${items.length} objects ${dryRun ? 'can be rebuilt' : 'rebuilt'}`);
    await o.afterStripe?.(++done);
  }

  // A parity object whose record does not parse protects nothing it can name: the stripe it
  // belonged to rebuilt its shard above (under the same id, when only its bytes were damaged).
  for (const id of view.unreadable) {
    if (rewrittenParity.has(id)) continue;
    report.unreadableParity.push(id);
    if (!dryRun) await ps.delete(pns, id);
  }

  // What no stripe covers can only be checked against its id.
  const loose = await unprotectedObjects(store, space, view);
  await Promise.all(
    loose.map((c) =>
      limit.run(async () => {
        report.unprotectedChecked++;
        let bytes: Uint8Array;
        try {
          bytes = await store.get({ space, kind: c.kind }, c.id);
        } catch (e) {
          if (isFragfsError(e, 'MISSING_FRAGMENT')) return;
          if (!isFragfsError(e, 'CORRUPT')) throw e;
          report.lost.push({ kind: c.kind, id: c.id, problem: 'corrupt', message: `${e.message} (in no stripe)` });
          return;
        }
        report.bytesRead += bytes.length;
        if (!selfChecks(c.kind, c.id, bytes)) report.lost.push({ kind: c.kind, id: c.id, problem: 'corrupt', message: 'its bytes do not hash to its id (in no stripe)' });
      }),
    ),
  );
  if (!dryRun) {
    await store.sync();
    if (ps !== store) await ps.sync();
    await writeStripeCache(o.cachePath, view);
  }
  report.ms = Date.now() - started;
  return report;
}

/** The one error a repair that left something damaged ends with (exit 6). */
export function lostError(report: RepairReport): FragfsError | undefined {
  if (report.lost.length === 0) return undefined;
  const keys = new Set(report.lost.map((l) => memberKey(l.kind, l.id)));
  return new FragfsError('CORRUPT', `${keys.size} objects are damaged beyond what parity can rebuild (listed above)`);
}
