// Where gc and the writers of a space keep their coordination files (docs/DESIGN.md, "Garbage
// collection"): the local store folder (STORE/gc/<space>/, gc-files.ts) or the remote store itself
// (`<space>/gc/...` objects, docs/FORMAT.md section 3), behind one interface so that gc.ts and
// gc-guard.ts run the same protocol on both. Also: how a lease is judged alive on each.

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { FragfsError } from '../errors.js';
import { StoreLock, ownerState } from '../repo/store-lock.js';
import type { ObjectBackend } from '../remote/object-backend.js';
import { ObjectStore } from '../remote/object-store.js';
import { isRemoteLocation, remoteBackendOf } from '../remote/store-site.js';
import type { Repo } from '../repo/repo.js';
import { CLOCK_SKEW_MS } from '../remote/remote-lease.js';
import {
  appendPins,
  encodeMark,
  gcDir,
  gcLockPath,
  makeGcDirs,
  parseMark,
  readLeases,
  readMark,
  readPins,
  removeLease,
  removeOldPins,
  writeLease,
  writeMark,
  type Lease,
  type Mark,
} from './gc-files.js';

export interface GcLock {
  release(): Promise<void>;
}

export interface GcPlace {
  /** 'local' leases are judged by pid and boot id; 'remote' ones by their renewal time. */
  readonly kind: 'local' | 'remote';
  /** How often a writer looks at the mark (and renews a remote lease). */
  readonly pollMs: number;
  /** Remote: how long a writer's lease holds without renewal. */
  readonly leaseMs: number;
  /** Makes what must exist before the first write (local folders). */
  prepare(): Promise<void>;
  readMark(): Promise<Mark | undefined>;
  writeMark(m: Mark): Promise<void>;
  /** Changes whenever the mark is rewritten: a writer reads the mark only then. '' when there is none. */
  markStamp(): Promise<string>;
  writeLease(l: Lease): Promise<void>;
  removeLease(id: string): Promise<void>;
  readLeases(): Promise<Lease[]>;
  appendPins(leaseId: string, mark: number, pins: string[]): Promise<void>;
  readPins(mark: number): Promise<Set<string>>;
  removeOldPins(mark: number): Promise<void>;
  /** One gc per space at a time; LOCKED when another runs. */
  lock(): Promise<GcLock>;
}

/** How long a remote writer's lease lives without renewal; it is renewed every REMOTE_POLL_MS. */
export const REMOTE_LEASE_MS = 120_000;
/** A remote service is asked at this pace (one small get and one put per writer), not once a second. */
export const REMOTE_POLL_MS = 5000;
export const LOCAL_POLL_MS = 1000;

/**
 * Whether gc must still wait for this lease's holder: a local one while its process lives (an
 * unparsable one is dead), a remote one until it has gone unrenewed past its expiry and the margin
 * for clocks that differ between machines.
 */
export function leaseState(place: GcPlace, l: Lease, nowMs = Date.now()): 'alive' | 'dead' {
  if (l.pid === 0) return 'dead';
  if (place.kind === 'remote') return typeof l.expiresMs === 'number' && nowMs <= l.expiresMs + CLOCK_SKEW_MS ? 'alive' : 'dead';
  return ownerState(l) === 'dead' ? 'dead' : 'alive';
}

/** The remote service under a repo's store, if it is one (a URL, or an ObjectStore given to a test). */
export async function objectsOf(repo: Pick<Repo, 'storePath' | 'store'>): Promise<ObjectBackend | undefined> {
  if (repo.store instanceof ObjectStore) return repo.store.objects;
  if (isRemoteLocation(repo.storePath)) return remoteBackendOf(repo.storePath);
  return undefined;
}

/** Where a repo's gc files are; undefined for a store in memory (no gc runs there). */
export async function gcPlaceOf(repo: Pick<Repo, 'storePath' | 'store' | 'space'>): Promise<GcPlace | undefined> {
  const objects = await objectsOf(repo);
  if (objects) return new RemoteGcPlace(objects, repo.space);
  return repo.storePath === '' ? undefined : new LocalGcPlace(repo.storePath, repo.space);
}

/** STORE/gc/<space>/: today's files, unchanged. */
export class LocalGcPlace implements GcPlace {
  readonly kind = 'local' as const;
  readonly pollMs = LOCAL_POLL_MS;
  readonly leaseMs = 0;
  constructor(
    private readonly storePath: string,
    private readonly space: string,
  ) {}
  prepare(): Promise<void> {
    return makeGcDirs(this.storePath, this.space);
  }
  readMark(): Promise<Mark | undefined> {
    return readMark(this.storePath, this.space);
  }
  writeMark(m: Mark): Promise<void> {
    return writeMark(this.storePath, this.space, m);
  }
  async markStamp(): Promise<string> {
    // Cheap: a gc writes the mark to a new file and renames it into place, so its inode changes.
    const st = await stat(`${gcDir(this.storePath, this.space)}/mark`).catch(() => undefined);
    return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '';
  }
  writeLease(l: Lease): Promise<void> {
    return writeLease(this.storePath, this.space, l);
  }
  removeLease(id: string): Promise<void> {
    return removeLease(this.storePath, this.space, id);
  }
  readLeases(): Promise<Lease[]> {
    return readLeases(this.storePath, this.space);
  }
  appendPins(leaseId: string, mark: number, pins: string[]): Promise<void> {
    return appendPins(this.storePath, this.space, leaseId, mark, pins);
  }
  readPins(mark: number): Promise<Set<string>> {
    return readPins(this.storePath, this.space, mark);
  }
  removeOldPins(mark: number): Promise<void> {
    return removeOldPins(this.storePath, this.space, mark);
  }
  async lock(): Promise<GcLock> {
    await makeGcDirs(this.storePath, this.space);
    return StoreLock.acquire({
      storePath: this.storePath,
      space: this.space,
      purpose: 'gc',
      other: { path: gcLockPath(this.storePath, this.space), busy: 'being garbage-collected' },
    });
  }
}

const PIN_RE = /^(data|meta):[0-9a-f]{64}$/;
const LOCK_DIGITS = 12;

/**
 * `<space>/gc/` in the remote store. Objects cannot be appended to or renamed, so each append of
 * pins is an object of its own (`pins/<lease id>.<mark>.<seq>`), and the mark's header is a second
 * small object (`mark-head`) written after the mark, which writers poll instead of the mark itself.
 */
export class RemoteGcPlace implements GcPlace {
  readonly kind = 'remote' as const;
  readonly pollMs: number;
  readonly leaseMs: number;
  private seq = 0;
  private readonly prefix: string;

  constructor(
    private readonly objects: ObjectBackend,
    private readonly space: string,
    /** Tests only: shorter times. */
    o: { pollMs?: number; leaseMs?: number } = {},
  ) {
    this.prefix = `${space}/gc/`;
    this.pollMs = o.pollMs ?? REMOTE_POLL_MS;
    this.leaseMs = o.leaseMs ?? REMOTE_LEASE_MS;
  }

  async prepare(): Promise<void> {}

  async readMark(): Promise<Mark | undefined> {
    const key = `${this.prefix}mark`;
    const b = await this.objects.get(key);
    return b === undefined ? undefined : parseMark(Buffer.from(b), `${this.objects.url} ${key}`);
  }

  async writeMark(m: Mark): Promise<void> {
    const bytes = encodeMark(m);
    await this.objects.put(`${this.prefix}mark`, bytes);
    // After the mark: a writer that sees a new head reads a mark at least as new.
    const head = `${bytes.subarray(0, bytes.indexOf(10)).toString('utf8')} ${randomBytes(8).toString('hex')}`;
    await this.objects.put(`${this.prefix}mark-head`, Buffer.from(head));
  }

  async markStamp(): Promise<string> {
    const b = await this.objects.get(`${this.prefix}mark-head`);
    return b === undefined ? '' : Buffer.from(b).toString('utf8');
  }

  async writeLease(l: Lease): Promise<void> {
    await this.objects.put(`${this.prefix}leases/${l.id}`, Buffer.from(`${JSON.stringify(l)}\n`));
  }

  async removeLease(id: string): Promise<void> {
    await this.objects.delete(`${this.prefix}leases/${id}`).catch(() => undefined);
  }

  async readLeases(): Promise<Lease[]> {
    const out: Lease[] = [];
    const dir = `${this.prefix}leases/`;
    for await (const { key } of this.objects.list(dir)) {
      const id = key.slice(dir.length);
      const b = await this.objects.get(key);
      if (b === undefined) continue;
      try {
        out.push({ ...(JSON.parse(Buffer.from(b).toString('utf8')) as Lease), id });
      } catch {
        out.push({ id, pid: 0, host: '', bootId: '', procStart: '', startedMs: 0, purpose: 'unreadable lease', knownMark: 0 });
      }
    }
    return out;
  }

  async appendPins(leaseId: string, mark: number, pins: string[]): Promise<void> {
    if (pins.length === 0) return;
    // A put is durable when it resolves (ObjectBackend contract): the pin is, before the writer looks.
    const key = `${this.prefix}pins/${leaseId}.${mark}.${++this.seq}-${randomBytes(4).toString('hex')}`;
    await this.objects.put(key, Buffer.from(pins.map((p) => `${p}\n`).join('')));
  }

  async readPins(mark: number): Promise<Set<string>> {
    const out = new Set<string>();
    for (const key of await this.pinKeys()) {
      if (pinMarkOf(key) !== mark) continue;
      const b = await this.objects.get(key);
      if (b === undefined) continue;
      for (const line of Buffer.from(b).toString('utf8').split('\n')) if (PIN_RE.test(line)) out.add(line);
    }
    return out;
  }

  async removeOldPins(mark: number): Promise<void> {
    for (const key of await this.pinKeys()) {
      const m = pinMarkOf(key);
      if (m !== undefined && m < mark) await this.objects.delete(key).catch(() => undefined);
    }
  }

  private async pinKeys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const { key } of this.objects.list(`${this.prefix}pins/`)) keys.push(key);
    return keys;
  }

  /**
   * Numbered create-only objects, as remote-lease.ts takes the write lease: `lock/<generation>`.
   * The lock is held by the highest generation not released and not expired; gc renews it while it
   * runs, so one that crashed blocks the next only until its expiry.
   */
  async lock(): Promise<GcLock> {
    const dir = `${this.prefix}lock/`;
    const keyOf = (gen: number) => `${dir}${String(gen).padStart(LOCK_DIGITS, '0')}`;
    const highest = async (): Promise<number> => {
      let top = 0;
      for await (const { key } of this.objects.list(dir)) {
        const tail = key.slice(dir.length);
        if (/^\d+$/.test(tail)) top = Math.max(top, Number(tail));
      }
      return top;
    };
    for (let attempt = 0; attempt < 5; attempt++) {
      const top = await highest();
      if (top > 0) {
        const cur = parseLock(await this.objects.get(keyOf(top)));
        if (cur && !cur.released && Date.now() <= cur.expiresMs + CLOCK_SKEW_MS) {
          throw new FragfsError(
            'LOCKED',
            `the store space ${this.space} at ${this.objects.url} is being garbage-collected (its gc lock runs until ${new Date(cur.expiresMs + CLOCK_SKEW_MS).toISOString()} unless renewed)`,
          );
        }
      }
      const gen = top + 1;
      let rec: LockRecord = { token: randomBytes(16).toString('hex'), expiresMs: Date.now() + REMOTE_LEASE_MS, released: false };
      const created = await this.objects.put(keyOf(gen), Buffer.from(JSON.stringify(rec)), { ifAbsent: true });
      // A create whose answer was lost and was retried says `false` for its own object: the token tells.
      if (!created && parseLock(await this.objects.get(keyOf(gen)))?.token !== rec.token) continue;
      for await (const { key } of this.objects.list(dir)) {
        const tail = key.slice(dir.length);
        if (/^\d+$/.test(tail) && Number(tail) < gen) await this.objects.delete(key).catch(() => undefined);
      }
      const timer = setInterval(() => {
        const next = { ...rec, expiresMs: Date.now() + REMOTE_LEASE_MS };
        void this.objects
          .put(keyOf(gen), Buffer.from(JSON.stringify(next)))
          .then(() => {
            rec = next;
          })
          .catch(() => undefined);
      }, REMOTE_LEASE_MS / 4);
      timer.unref();
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          clearInterval(timer);
          await this.objects.put(keyOf(gen), Buffer.from(JSON.stringify({ ...rec, released: true })));
        },
      };
    }
    throw new FragfsError('LOCKED', `could not take the gc lock of ${this.space} at ${this.objects.url} (it keeps changing hands)`);
  }
}

interface LockRecord {
  token: string;
  expiresMs: number;
  released: boolean;
}

function parseLock(b: Uint8Array | undefined): LockRecord | undefined {
  if (b === undefined) return undefined;
  try {
    const r = JSON.parse(Buffer.from(b).toString('utf8')) as LockRecord;
    if (typeof r.token === 'string' && Number.isFinite(r.expiresMs)) return r;
  } catch {
    // A torn or foreign object: expired, so it never blocks gc for good.
  }
  return { token: '', expiresMs: 0, released: true };
}

/** The mark number in `<lease id>.<mark>.<seq>`. */
function pinMarkOf(key: string): number | undefined {
  const m = /\.(\d+)\.[0-9a-f-]+$/.exec(key);
  return m ? Number(m[1]) : undefined;
}
