// The write lease of a space in a remote store: one read-write mount (or offline snapshot) at a time
// across every machine, held by an object that is created with a conditional write and renewed,
// and that expires when its holder's machine is gone. Services give a create-if-absent but no
// compare-and-swap, so leases are numbered: `<space>/lease/<generation>`. Taking the lease is
// creating the next generation; of two machines that race for it, only one create succeeds. The
// holder is the highest generation that is neither released nor expired (docs/DESIGN.md, "Remote
// stores"; docs/FORMAT.md section 3).

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { FragfsError } from '../errors.js';
import type { ObjectBackend } from './object-backend.js';

/** Lease object layout version. */
export const LEASE_FORMAT = 1;
/** How long a lease lives without renewal (FRAGFS_LEASE_SECONDS overrides, for tests). */
export const DEFAULT_LEASE_MS = 120_000;
/** Clocks of two machines may differ: a lease counts as expired only this much after its expiry. */
export const CLOCK_SKEW_MS = 15_000;

/** What a lease object holds. The holder's description is sealed: no host or path in clear. */
export interface LeaseRecord {
  format: number;
  token: string;
  startedMs: number;
  expiresMs: number;
  released: boolean;
  /** Sealed JSON of LeaseHolder (opened with the space's key). */
  holder: unknown;
}

export interface LeaseHolder {
  host: string;
  pid: number;
  purpose: string;
}

/** Seals and opens the holder's description with a key of the space. */
export interface LeaseSealer {
  seal(plain: Uint8Array): unknown;
  open(sealed: unknown): Uint8Array | undefined;
}

const GEN_DIGITS = 12;

export function leasePrefix(space: string): string {
  return `${space}/lease/`;
}

function leaseKey(space: string, gen: number): string {
  return `${leasePrefix(space)}${String(gen).padStart(GEN_DIGITS, '0')}`;
}

function leaseMs(): number {
  const s = Number(process.env['FRAGFS_LEASE_SECONDS']);
  return Number.isFinite(s) && s > 0 ? s * 1000 : DEFAULT_LEASE_MS;
}

function parseRecord(bytes: Uint8Array | undefined): LeaseRecord | undefined {
  if (bytes === undefined) return undefined;
  try {
    const r = JSON.parse(Buffer.from(bytes).toString('utf8')) as LeaseRecord;
    if (r.format === LEASE_FORMAT && typeof r.token === 'string' && Number.isFinite(r.expiresMs)) return r;
  } catch {
    // A torn or foreign object: treated as expired below, so it never blocks the store for good.
  }
  return { format: 0, token: '', startedMs: 0, expiresMs: 0, released: true, holder: undefined };
}

export class RemoteLease {
  private timer: NodeJS.Timeout | undefined;
  private lost = false;
  private closed = false;

  private constructor(
    private readonly objects: ObjectBackend,
    private readonly space: string,
    private readonly gen: number,
    private record: LeaseRecord,
    private readonly ttlMs: number,
    private readonly onLost: (why: string) => void,
  ) {}

  /**
   * Takes the lease of `space`, or fails with LOCKED naming the holder (when its description opens)
   * and when its lease runs out. `onLost` is told when a renewal finds that another machine took
   * the lease (this one had not renewed in time: a suspended laptop, a partition).
   */
  static async acquire(o: {
    objects: ObjectBackend;
    space: string;
    purpose: string;
    sealer: LeaseSealer;
    onLost?: (why: string) => void;
    nowMs?: () => number;
  }): Promise<RemoteLease> {
    const now = o.nowMs ?? Date.now;
    const ttlMs = leaseMs();
    for (let attempt = 0; attempt < 5; attempt++) {
      const top = await RemoteLease.highest(o.objects, o.space);
      if (top) {
        const current = parseRecord(await o.objects.get(leaseKey(o.space, top)));
        if (current && !current.released && now() <= current.expiresMs + CLOCK_SKEW_MS) {
          const who = RemoteLease.describe(current, o.sealer);
          const until = new Date(current.expiresMs + CLOCK_SKEW_MS).toISOString();
          throw new FragfsError(
            'LOCKED',
            `the store space ${o.space} at ${o.objects.url} is in use read-write by ${who}; its lease runs until ${until} unless renewed`,
          );
        }
      }
      const gen = (top ?? 0) + 1;
      const holder: LeaseHolder = { host: hostname(), pid: process.pid, purpose: o.purpose };
      const record: LeaseRecord = {
        format: LEASE_FORMAT,
        token: randomBytes(16).toString('hex'),
        startedMs: now(),
        expiresMs: now() + ttlMs,
        released: false,
        holder: o.sealer.seal(Buffer.from(JSON.stringify(holder))),
      };
      const created = await o.objects.put(leaseKey(o.space, gen), Buffer.from(JSON.stringify(record)), { ifAbsent: true });
      // A create whose answer was lost and was retried says `false` for its own object: the token tells.
      const mine = created || parseRecord(await o.objects.get(leaseKey(o.space, gen)))?.token === record.token;
      if (!mine) continue; // another machine took this generation first: look again
      const lease = new RemoteLease(o.objects, o.space, gen, record, ttlMs, o.onLost ?? (() => undefined));
      await lease.dropOlder();
      lease.schedule();
      return lease;
    }
    throw new FragfsError('LOCKED', `could not take the lease of ${o.space} at ${o.objects.url} (it keeps changing hands)`);
  }

  /** The highest generation on file, or undefined. */
  private static async highest(objects: ObjectBackend, space: string): Promise<number | undefined> {
    let top: number | undefined;
    for await (const { key } of objects.list(leasePrefix(space))) {
      const tail = key.slice(leasePrefix(space).length);
      if (!/^\d+$/.test(tail)) continue;
      const n = Number(tail);
      if (top === undefined || n > top) top = n;
    }
    return top;
  }

  private static describe(r: LeaseRecord, sealer: LeaseSealer): string {
    const plain = r.holder === undefined ? undefined : sealer.open(r.holder);
    if (plain) {
      try {
        const h = JSON.parse(Buffer.from(plain).toString('utf8')) as LeaseHolder;
        return `${h.purpose} (pid ${h.pid} on ${h.host})`;
      } catch {
        // fall through
      }
    }
    return 'another machine';
  }

  /** Generations below this one are history once it is taken. */
  private async dropOlder(): Promise<void> {
    for await (const { key } of this.objects.list(leasePrefix(this.space))) {
      const tail = key.slice(leasePrefix(this.space).length);
      if (/^\d+$/.test(tail) && Number(tail) < this.gen) await this.objects.delete(key).catch(() => undefined);
    }
  }

  private schedule(): void {
    if (this.closed || this.lost) return;
    this.timer = setTimeout(() => void this.renew().finally(() => this.schedule()), Math.max(1000, this.ttlMs / 4));
    this.timer.unref();
  }

  /** Whether a renewal found the lease taken by another machine. */
  get isLost(): boolean {
    return this.lost;
  }

  /**
   * Extends the lease, after checking that no later generation exists. A failed renewal is tried
   * again at the next tick; the lease stays valid until its expiry meanwhile.
   */
  async renew(): Promise<void> {
    if (this.closed || this.lost) return;
    try {
      const top = await RemoteLease.highest(this.objects, this.space);
      if (top !== undefined && top > this.gen) {
        this.lost = true;
        this.onLost(`the lease of ${this.space} at ${this.objects.url} was taken by another machine`);
        return;
      }
      const next = { ...this.record, expiresMs: Date.now() + this.ttlMs };
      await this.objects.put(leaseKey(this.space, this.gen), Buffer.from(JSON.stringify(next)));
      this.record = next;
    } catch {
      // Transient: ResilientBackend already retried; the next tick tries again.
    }
  }

  /** Gives the lease up (marks it released; another machine may take it at once). */
  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.lost) return;
    const top = await RemoteLease.highest(this.objects, this.space).catch(() => undefined);
    if (top !== undefined && top > this.gen) return;
    await this.objects.put(leaseKey(this.space, this.gen), Buffer.from(JSON.stringify({ ...this.record, released: true })));
  }
}
