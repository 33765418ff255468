// The writer's side of garbage collection (docs/DESIGN.md, "Garbage collection"): every read-write
// opening of a store space holds a lease in the space's gc place (gc-place.ts: STORE/gc/<space>/
// or the remote store's <space>/gc/), follows the gc mark, and pins
// each condemned fragment it is about to use, so that a gc running beside it never deletes a
// fragment it has named or is about to name.
//
// The rules this class keeps (gc.ts relies on them):
// 1. hold() is awaited before a writer checks for, writes or names a fragment; for a fragment the
//    current mark condemns, it records a durable pin first (or fails, and the write with it).
// 2. The lease advertises mark k (knownMark) only once every operation begun before the writer
//    learned of k has ended with what it wrote named by a root (the live state or a ref). So when
//    every lease shows k, whatever a writer took before knowing k is reachable, and whatever it took
//    after is pinned.

import { FragfsError } from '../errors.js';
import { currentOwner } from '../repo/store-lock.js';
import type { FragmentKind, Namespace, Store } from '../store/store.js';
import { condemnedKeys, parsePinKey, pinKey, newLeaseId, type Lease, type Mark } from './gc-files.js';
import { LOCAL_POLL_MS, LocalGcPlace, type GcPlace } from './gc-place.js';

/** How often a writer looks for a new mark in a local store; gc waits for leases at about this pace. */
export const MARK_POLL_MS = LOCAL_POLL_MS;

export class GcGuard {
  private readonly lease: Lease;
  /** The mark being followed (pins are recorded under its number); undefined before any, or once swept. */
  private condemned: Set<string> | undefined;
  private following = 0;
  /** Operations in flight: token -> the mark count at its start. */
  private readonly ops = new Map<number, number>();
  private nextToken = 1;
  /** How many marks were learned (a token begun before a learning blocks advertising it). */
  private learned = 0;
  private pending: { mark: number; learned: number } | undefined;
  private readonly base: number;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private lastStamp = '';
  private ended = false;
  private leaseWrites: Promise<void> = Promise.resolve();
  /** Remote: the expiry of the last lease write that succeeded (writes stop being trusted after it). */
  private confirmedUntil: number | undefined;
  private lapsed = false;

  private constructor(
    private readonly place: GcPlace,
    private readonly space: string,
    private readonly store: Store,
    purpose: string,
  ) {
    const owner = currentOwner(purpose);
    // In a remote store the lease is read by anyone with access to the bucket: no host, path or
    // boot id there, only what the writer is (its purpose's first word) and its pid.
    this.lease =
      place.kind === 'remote'
        ? { ...owner, host: '', bootId: '', procStart: '', purpose: purpose.split(' ')[0] ?? 'write', id: newLeaseId(), knownMark: 0 }
        : { ...owner, id: newLeaseId(), knownMark: 0 };
    this.stampLease();
    // The opening itself is one operation: a writer that never says otherwise (put, sync, a
    // snapshot without a mount) holds back sweeps until it closes.
    this.base = this.begin();
  }

  /** `place` defaults to the local store folder `storePath`. */
  static async start(o: { storePath?: string; place?: GcPlace; space: string; store: Store; purpose: string }): Promise<GcGuard> {
    const place = o.place ?? new LocalGcPlace(o.storePath ?? '', o.space);
    const g = new GcGuard(place, o.space, o.store, o.purpose);
    await place.prepare();
    await place.writeLease(g.lease);
    g.confirmedUntil = g.lease.expiresMs;
    await g.poll();
    g.timer = setInterval(() => {
      void g.poll();
    }, place.pollMs);
    g.timer.unref();
    return g;
  }

  /** A remote lease lives leaseMs (REMOTE_LEASE_MS) from now: gc counts its writer alive until then (and a margin). */
  private stampLease(): void {
    if (this.place.kind !== 'remote') return;
    const now = Date.now();
    this.lease.renewedMs = now;
    this.lease.expiresMs = now + this.place.leaseMs;
  }

  /** The opening stops counting as an operation in flight: the caller brackets its own with begin/end. */
  releaseBase(): void {
    this.end(this.base);
  }

  /** An operation that will take or write fragments and then name them by a root begins. */
  begin(): number {
    const t = this.nextToken++;
    this.ops.set(t, this.learned);
    return t;
  }

  /** ... and ends: what it took is named by a root now (or was dropped). */
  end(token: number): void {
    if (!this.ops.delete(token)) return;
    this.advertise();
  }

  /**
   * Awaited before a fragment is checked for, written or named. For a fragment the followed mark
   * condemns, records a durable pin and returns true: a write of it must then be `fresh` (see
   * PutOptions in src/store/store.ts), not skipped because it looks present. With `exists`, the caller names the fragment without writing
   * it: it is also brought back from the gc trash and must then be present (else MISSING_FRAGMENT).
   */
  async hold(kind: FragmentKind, id: string, exists = false): Promise<boolean> {
    const key = pinKey(kind, id);
    this.checkHeld();
    if (this.condemned === undefined || !this.condemned.has(key)) return false;
    // A pin that cannot be written (a full disk) fails this write alone, as the write itself would.
    await this.place.appendPins(this.lease.id, this.following, [key]);
    if (exists) {
      const ns: Namespace = { space: this.space, kind };
      await this.store.untrash(ns, id);
      if (!(await this.store.has(ns, id))) {
        throw new FragfsError('MISSING_FRAGMENT', `fragment ${id} (${kind}) was collected by a gc running at the same time; try again`, { fragmentId: id });
      }
    }
    return true;
  }

  /**
   * A remote lease that went unrenewed past its expiry may have been judged dead by a gc, which then
   * swept without waiting for this writer: nothing it names can be trusted to be kept any more, so
   * every later write of this opening fails (a new opening starts a new lease).
   */
  private checkHeld(): void {
    if (this.hasLapsed()) {
      throw new FragfsError('REMOTE', `this writer could not renew its gc lease in ${this.space} in time (the store was out of reach); close and open the store again`);
    }
  }

  /** Once lapsed, always: a renewal after the expiry must not make the lease look unbroken. */
  private hasLapsed(): boolean {
    if (this.place.kind !== 'remote') return false;
    if (Date.now() > (this.confirmedUntil ?? 0)) this.lapsed = true;
    return this.lapsed;
  }

  /** Stops following marks and removes the lease. Idempotent. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    await this.polling?.catch(() => undefined);
    await this.leaseWrites;
    await this.place.removeLease(this.lease.id);
  }

  /** Reads the mark now instead of at the next tick (gc reads leases; tests use it to order steps). */
  refresh(): Promise<void> {
    return this.poll();
  }

  private poll(): Promise<void> {
    if (this.ended) return Promise.resolve();
    // A look that fails (the store folder unreachable for a moment) is tried again at the next
    // tick; meanwhile this lease does not show the mark, so no gc sweeps it: safe, only later.
    this.polling ??= this.pollOnce()
      .catch(() => undefined)
      .finally(() => {
        this.polling = undefined;
      });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    if (this.place.kind === 'remote') await this.renew();
    const stamp = await this.place.markStamp();
    if (stamp === this.lastStamp) {
      this.advertise(); // again, after a lease write that failed
      return;
    }
    let m: Mark | undefined;
    try {
      m = await this.place.readMark();
    } catch (e) {
      // A damaged mark: no gc sweeps past it (gc refuses it until it is deleted, then numbers the
      // next mark above every lease's), so nothing is condemned that this writer could use.
      if (e instanceof FragfsError && e.code === 'CORRUPT') {
        this.lastStamp = stamp;
        return;
      }
      throw e;
    }
    if (m !== undefined) {
      // A sweep finished: what it deleted is forgotten before nothing is condemned any more (a
      // packing store would otherwise find a fragment in a pack that is gone).
      if (m.swept && this.condemned !== undefined) await this.store.forgetGone?.();
      this.learn(m);
      // Fragments pinned while a gc that then stopped had them in the trash.
      if (!m.swept) await this.restorePinned(m.mark);
      this.advertise();
    }
    // Only now: a look that failed half-way is made again.
    this.lastStamp = stamp;
  }

  private learn(m: Mark): void {
    if (m.mark === this.following && !m.swept) return;
    this.following = m.mark;
    this.condemned = m.swept ? undefined : condemnedKeys(m);
    this.learned++;
    this.pending = { mark: m.mark, learned: this.learned };
  }

  private async restorePinned(mark: number): Promise<void> {
    const pins = await this.place.readPins(mark);
    for (const p of pins) {
      const { kind, id } = parsePinKey(p);
      await this.store.untrash({ space: this.space, kind }, id);
    }
  }

  /** Remote: rewrites the lease with a later expiry (in turn with advertising writes). */
  private renew(): Promise<void> {
    this.leaseWrites = this.leaseWrites.then(async () => {
      if (this.ended || this.hasLapsed()) return;
      this.stampLease();
      const shown = { ...this.lease };
      try {
        await this.place.writeLease(shown);
        this.confirmedUntil = shown.expiresMs;
      } catch {
        // Tried again at the next tick; writes go on until the last confirmed expiry.
      }
    });
    return this.leaseWrites;
  }

  /** Advertises the pending mark once no operation begun before it was learned is in flight. */
  private advertise(): void {
    const p = this.pending;
    if (!p || this.ended) return;
    for (const learnedAtStart of this.ops.values()) if (learnedAtStart < p.learned) return;
    this.pending = undefined;
    // One write at a time, in order: the file never goes back to an older mark.
    this.leaseWrites = this.leaseWrites.then(async () => {
      if (this.ended || this.hasLapsed()) return;
      this.stampLease();
      const shown = { ...this.lease, knownMark: p.mark };
      try {
        await this.place.writeLease(shown);
        this.lease.knownMark = p.mark;
        if (shown.expiresMs !== undefined) this.confirmedUntil = shown.expiresMs;
      } catch {
        // A full disk, say: the next tick writes it again (a newer mark learned meanwhile wins).
        this.pending ??= p;
      }
    });
  }
}
