// Which stripes a space has and which stored objects they cover, learned from the headers of its
// parity objects (each carries its stripe's record, parity-format.ts). A local file remembers the
// headers already read (ids and sizes of ciphertext only, like the store's own listings), so a
// pass reads only the headers of parity objects written since; the listing of the parity kind
// stays the truth: a remembered header whose object is gone is forgotten.

import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isFragfsError } from '../errors.js';
import { liveDir } from '../repo/store-lock.js';
import { Semaphore } from '../repo/semaphore.js';
import { PRIVATE_FILE_MODE, mkdirPrivate } from '../store/private-modes.js';
import { getRangeOf, type Namespace, type Store } from '../store/store.js';
import { RECORD_FIXED_BYTES, decodeParityHeader, encodeRecord, headerBytesOf, memberKey, type ParityHeader, type StripeRecord } from './parity-format.js';

export interface Stripe {
  stripeId: string;
  record: StripeRecord;
  /** encodeRecord(record): what leads each of its parity objects. */
  recordBytes: Buffer;
  /** Parity objects present, by index. */
  parity: Map<number, string>;
}

export interface StripeView {
  stripes: Map<string, Stripe>;
  /** memberKey(kind, id) -> the stripe that covers it (the first one seen, when two do). */
  covered: Map<string, string>;
  /** Parity objects whose header does not parse: damaged, their stripe unknown from them. */
  unreadable: string[];
}

/** Header reads in flight. */
const IN_FLIGHT = 16;
const CACHE_VERSION = 1;

/** Where this machine remembers the parity headers of `space` (undefined: a memory store). */
export function stripeCachePath(storePath: string, space: string): string | undefined {
  return storePath === '' ? undefined : join(liveDir(storePath, space), 'parity-headers.json');
}

export function parityNs(space: string): Namespace {
  return { space, kind: 'parity' };
}

async function readCache(path: string | undefined): Promise<Map<string, string>> {
  if (path === undefined) return new Map();
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as { v?: unknown; headers?: Record<string, unknown> };
    if (v.v !== CACHE_VERSION || typeof v.headers !== 'object' || v.headers === null) return new Map();
    return new Map(Object.entries(v.headers).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    // Missing or damaged: a hint only, learned again from the store.
    return new Map();
  }
}

/** Writes the remembered headers (atomically); a failure leaves the old file, which stays a hint. */
export async function writeStripeCache(path: string | undefined, view: StripeView): Promise<void> {
  if (path === undefined) return;
  const headers: Record<string, string> = {};
  for (const s of view.stripes.values()) {
    for (const [index, id] of s.parity) {
      const head = Buffer.alloc(4);
      head[0] = index;
      headers[id] = Buffer.concat([s.recordBytes, head]).toString('hex');
    }
  }
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdirPrivate(dirname(path));
    await writeFile(tmp, JSON.stringify({ v: CACHE_VERSION, headers }), { mode: PRIVATE_FILE_MODE });
    await rename(tmp, path);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** The header, undefined when the object is gone, null when it does not parse. */
async function readHeader(store: Store, ns: Namespace, id: string): Promise<ParityHeader | undefined | null> {
  try {
    const fixed = await getRangeOf(store, ns, id, 0, RECORD_FIXED_BYTES);
    const n = headerBytesOf(fixed, id);
    return decodeParityHeader(await getRangeOf(store, ns, id, 0, n), id);
  } catch (e) {
    if (isFragfsError(e, 'MISSING_FRAGMENT')) return undefined;
    if (isFragfsError(e, 'CORRUPT')) return null;
    throw e;
  }
}

/** Adds one parity object's header to `view`. */
export function addToView(view: StripeView, id: string, h: ParityHeader): Stripe {
  let s = view.stripes.get(h.stripeId);
  if (!s) {
    const record: StripeRecord = { members: h.members, m: h.m, shardSize: h.shardSize };
    s = { stripeId: h.stripeId, record, recordBytes: encodeRecord(record), parity: new Map() };
    view.stripes.set(h.stripeId, s);
    for (const mb of h.members) {
      const key = memberKey(mb.kind, mb.id);
      if (!view.covered.has(key)) view.covered.set(key, h.stripeId);
    }
  }
  s.parity.set(h.index, id);
  return s;
}

/** The stripes of `space`, from a listing of its parity objects (headers read only when not remembered). */
export async function loadStripes(store: Store, space: string, cachePath: string | undefined): Promise<StripeView> {
  const ns = parityNs(space);
  const cache = await readCache(cachePath);
  const view: StripeView = { stripes: new Map(), covered: new Map(), unreadable: [] };
  const limit = new Semaphore(IN_FLIGHT);
  const reads: Promise<void>[] = [];
  for await (const id of store.list(ns)) {
    const hex = cache.get(id);
    if (hex !== undefined) {
      try {
        addToView(view, id, decodeParityHeader(Buffer.from(hex, 'hex'), id));
        continue;
      } catch {
        // A damaged cache entry: read the object's own header.
      }
    }
    reads.push(
      limit.run(async () => {
        const h = await readHeader(store, ns, id);
        if (h === null) view.unreadable.push(id);
        else if (h !== undefined) addToView(view, id, h);
      }),
    );
  }
  await Promise.all(reads);
  return view;
}
