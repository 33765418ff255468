// The protect pass: puts every stored object of a space that no stripe covers yet into a new
// stripe, and completes stripes a crash left with fewer parity objects than they name. It lists
// the member kinds and reads only what is new (stripe-view.ts remembers the rest), so every
// command that adds fragments can end with it. Memory: one stripe at a time, at most
// (k + m) x the largest member.

import { blake3, toHex } from '../codec/blake3.js';
import { isFragfsError } from '../errors.js';
import { Semaphore } from '../repo/semaphore.js';
import { PackStore } from '../pack/pack-store.js';
import type { Store } from '../store/store.js';
import { MAX_MEMBER_BYTES, MEMBER_KINDS, decodeParityHeader, encodeRecord, memberKey, type MemberKind, type StripeMember, type StripeRecord } from './parity-format.js';
import type { ParitySettings } from './parity-settings.js';
import { shardSizeFor } from './rs-codec.js';
import { readMember, rebuildStripe, selfChecks } from './stripe-codec.js';
import { addToView, loadStripes, parityNs, writeStripeCache, type StripeView } from './stripe-view.js';

export interface ProtectOptions {
  /** Where the parity objects go (parity-store.ts); default: the store itself. */
  parityStore?: Store;
  /** stripeCachePath(...) of the store, or undefined. */
  cachePath?: string;
  log?: (line: string) => void;
  /** Tests: called after each stripe is stored (a kill -9 test stops here). */
  afterStripe?: (n: number) => Promise<void> | void;
}

export interface ProtectReport {
  /** New stripes written, and the objects and bytes they cover. */
  stripes: number;
  members: number;
  memberBytes: number;
  /** Parity bytes written (new stripes and completed ones). */
  parityBytes: number;
  /** Stripes a crash had left without all their parity objects, completed. */
  completed: number;
  /** Objects left out: larger than MAX_MEMBER_BYTES, or not what their id says (repair or verify tells). */
  skipped: { kind: MemberKind; id: string; why: string }[];
  ms: number;
}

/** The store of a repo as its backend holds it: packs as packs (stripes protect stored objects). */
export function storedObjectsOf(store: Store): Store {
  return store instanceof PackStore ? store.inner : store;
}

/** Objects read at once while a stripe is gathered. */
const IN_FLIGHT = 8;

interface Candidate {
  kind: MemberKind;
  id: string;
  size: number;
}

/** Unprotected objects of the member kinds, with their stored sizes. */
export async function unprotectedObjects(store: Store, space: string, view: StripeView): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const limit = new Semaphore(IN_FLIGHT * 2);
  const sizing: Promise<void>[] = [];
  for (const kind of MEMBER_KINDS) {
    for await (const id of store.list({ space, kind })) {
      if (view.covered.has(memberKey(kind, id))) continue;
      sizing.push(
        limit.run(async () => {
          const size = await store.size({ space, kind }, id);
          if (size !== undefined) out.push({ kind, id, size });
        }),
      );
    }
  }
  await Promise.all(sizing);
  return out;
}

export async function protectStore(store: Store, space: string, settings: ParitySettings, o: ProtectOptions = {}): Promise<ProtectReport> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const report: ProtectReport = { stripes: 0, members: 0, memberBytes: 0, parityBytes: 0, completed: 0, skipped: [], ms: 0 };
  const ps = o.parityStore ?? store;
  const view = await loadStripes(ps, space, o.cachePath);
  const pns = parityNs(space);

  // Stripes a crash interrupted: their members are all there, some parity objects are not.
  for (const s of view.stripes.values()) {
    if (s.parity.size >= s.record.m) continue;
    const reads = await Promise.all(s.record.members.map((mb) => readMember(store, space, mb)));
    if (reads.some((r) => r.bytes === undefined)) continue; // damaged: for repair
    const rebuilt = await rebuildStripe(s.record, s.recordBytes, reads.map((r) => r.bytes), []);
    for (let j = 0; j < s.record.m; j++) {
      if (s.parity.has(j)) continue;
      const obj = rebuilt.parity[j]!;
      const id = toHex(blake3(obj));
      await ps.put(pns, id, obj);
      s.parity.set(j, id);
      report.parityBytes += obj.length;
    }
    report.completed++;
  }

  const todo = (await unprotectedObjects(store, space, view)).filter((c) => {
    if (c.size <= MAX_MEMBER_BYTES) return true;
    report.skipped.push({ kind: c.kind, id: c.id, why: `larger than ${MAX_MEMBER_BYTES} bytes` });
    return false;
  });
  // Like sizes together: a stripe's shards are as long as its longest member, so sorting by size
  // keeps the padding small.
  todo.sort((a, b) => b.size - a.size || (a.id < b.id ? -1 : 1));
  if (todo.length > 0) log(`parity: ${todo.length} objects to protect`);
  const limit = new Semaphore(IN_FLIGHT);
  for (let i = 0; i < todo.length; i += settings.k) {
    const chunk = todo.slice(i, i + settings.k);
    const read = await Promise.all(
      chunk.map((c) =>
        limit.run(async () => {
          try {
            return await store.get({ space, kind: c.kind }, c.id);
          } catch (e) {
            if (isFragfsError(e, 'MISSING_FRAGMENT')) return undefined; // deleted meanwhile (a gc)
            if (isFragfsError(e, 'CORRUPT')) return null;
            throw e;
          }
        }),
      ),
    );
    const members: StripeMember[] = [];
    const bytes: Uint8Array[] = [];
    chunk.forEach((c, j) => {
      const b = read[j];
      if (b === undefined) return;
      if (b === null || !selfChecks(c.kind, c.id, b)) {
        report.skipped.push({ kind: c.kind, id: c.id, why: 'its bytes do not hash to its id' });
        return;
      }
      members.push({ kind: c.kind, id: c.id, hash: toHex(blake3(b)), size: b.length });
      bytes.push(b);
    });
    if (members.length === 0) continue;
    const longest = Math.max(...members.map((mb) => mb.size));
    const record: StripeRecord = { members, m: settings.m, shardSize: shardSizeFor(longest) };
    const recordBytes = encodeRecord(record);
    const built = await rebuildStripe(record, recordBytes, bytes, []);
    const ids = built.parity.map((obj) => toHex(blake3(obj)));
    // Deferred: the sync() that ends the pass makes them durable, so stripes do not each wait on fsyncs.
    await Promise.all(built.parity.map((obj, j) => ps.put(pns, ids[j]!, obj, { deferred: true })));
    report.parityBytes += built.parity.reduce((a, obj) => a + obj.length, 0);
    ids.forEach((id, j) => addToView(view, id, decodeParityHeader(built.parity[j]!, id)));
    report.stripes++;
    report.members += members.length;
    report.memberBytes += members.reduce((a, mb) => a + mb.size, 0);
    await o.afterStripe?.(report.stripes);
  }
  await ps.sync();
  await writeStripeCache(o.cachePath, view);
  report.ms = Date.now() - started;
  return report;
}
