// The files through which `gc` and the writers of a store space coordinate (docs/DESIGN.md section
// "Garbage collection"), under STORE/gc/<space>/: the mark (fragments condemned by the last gc run),
// one lease per running writer (which mark it has seen), and the pins writers record for condemned
// fragments they use. They hold fragment ids, counts, times and process ids: no name, content or key.

import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import type { LockOwner } from '../repo/store-lock.js';
import type { FragmentKind } from '../store/store.js';
import { fsyncDir, writeFileAtomic } from '../store/atomic-file.js';
import { PRIVATE_FILE_MODE, mkdirPrivate } from '../store/private-modes.js';

/** Layout version of the mark file's header. */
export const MARK_FORMAT = 1;
const ID_BYTES = 32;
const LEASE_SUFFIX = '.json';

export function gcDir(storePath: string, space: string): string {
  return join(storePath, 'gc', space);
}

export function gcLockPath(storePath: string, space: string): string {
  return join(gcDir(storePath, space), 'lock');
}

/** Makes STORE/gc/<space>/ with its leases/ and pins/ folders (0700). */
export async function makeGcDirs(storePath: string, space: string): Promise<void> {
  const dir = gcDir(storePath, space);
  try {
    await mkdirPrivate(join(dir, 'leases'));
    await mkdirPrivate(join(dir, 'pins'));
  } catch (e) {
    throw fromFsError(e, 'creating the gc folder', dir);
  }
}

/** What one gc run condemned: fragments no root named when it looked. */
export interface Mark {
  /** Counts up from 1, one per gc run that marks. */
  mark: number;
  createdMs: number;
  /** True once a gc run has swept it: writers need no pins for it any more. */
  swept: boolean;
  data: string[];
  meta: string[];
}

/** Writes the mark atomically (temp file, fsync, rename, fsync of the folder). */
export async function writeMark(storePath: string, space: string, m: Mark): Promise<void> {
  await writeSmallFile(gcDir(storePath, space), 'mark', encodeMark(m));
}

/** The mark, or undefined when no gc has marked yet. A damaged mark is CORRUPT. */
export async function readMark(storePath: string, space: string): Promise<Mark | undefined> {
  const path = join(gcDir(storePath, space), 'mark');
  let b: Buffer;
  try {
    b = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromFsError(e, 'reading the gc mark', path);
  }
  return parseMark(b, path, path);
}

/** The mark's bytes, in the local file and the remote object alike (docs/FORMAT.md section 3). */
export function encodeMark(m: Mark): Buffer {
  const header = Buffer.from(
    `${JSON.stringify({ format: MARK_FORMAT, mark: m.mark, createdMs: m.createdMs, swept: m.swept, data: m.data.length, meta: m.meta.length })}\n`,
  );
  const ids = Buffer.allocUnsafe(ID_BYTES * (m.data.length + m.meta.length));
  let at = 0;
  for (const id of [...m.data, ...m.meta]) at += ids.write(id, at, ID_BYTES, 'hex');
  return Buffer.concat([header, ids]);
}

/** A damaged mark is CORRUPT (gc refuses it until it is deleted). */
export function parseMark(b: Buffer, where: string, path?: string): Mark {
  const nl = b.indexOf(10);
  let h: { format?: unknown; mark?: unknown; createdMs?: unknown; swept?: unknown; data?: unknown; meta?: unknown };
  try {
    h = JSON.parse(b.subarray(0, nl).toString('utf8')) as typeof h;
  } catch {
    h = {};
  }
  const count = (x: unknown) => (Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : -1);
  const nData = count(h.data);
  const nMeta = count(h.meta);
  if (nl < 0 || h.format !== MARK_FORMAT || count(h.mark) < 1 || nData < 0 || nMeta < 0 || b.length !== nl + 1 + ID_BYTES * (nData + nMeta)) {
    throw new FragfsError('CORRUPT', `the gc mark ${where} is damaged; delete it and run gc again`, path === undefined ? {} : { path });
  }
  const ids: string[] = [];
  for (let at = nl + 1; at < b.length; at += ID_BYTES) ids.push(b.toString('hex', at, at + ID_BYTES));
  return {
    mark: h.mark as number,
    createdMs: Number(h.createdMs) || 0,
    swept: h.swept === true,
    data: ids.slice(0, nData),
    meta: ids.slice(nData),
  };
}

/** How a fragment is named in a pin file and in the sets built from a mark: "data:<id>", "meta:<id>". */
export function pinKey(kind: FragmentKind, id: string): string {
  return `${kind}:${id}`;
}

export function parsePinKey(key: string): { kind: 'data' | 'meta'; id: string } {
  const [kind, id] = key.split(':') as ['data' | 'meta', string];
  return { kind, id };
}

/** The mark's fragments as pin keys. */
export function condemnedKeys(m: Mark): Set<string> {
  return new Set([...m.data.map((id) => pinKey('data', id)), ...m.meta.map((id) => pinKey('meta', id))]);
}

/** A running writer: its process, and the last mark whose condemned fragments it pins. */
export interface Lease extends LockOwner {
  id: string;
  /** 0 before any mark. */
  knownMark: number;
  /** A remote store's lease only: when its writer last renewed it, and until when it holds without renewal. */
  renewedMs?: number;
  expiresMs?: number;
}

export function newLeaseId(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

export async function writeLease(storePath: string, space: string, lease: Lease): Promise<void> {
  await writeSmallFile(join(gcDir(storePath, space), 'leases'), `${lease.id}${LEASE_SUFFIX}`, Buffer.from(`${JSON.stringify(lease)}\n`));
}

export async function removeLease(storePath: string, space: string, id: string): Promise<void> {
  await unlink(join(gcDir(storePath, space), 'leases', `${id}${LEASE_SUFFIX}`)).catch(() => undefined);
}

/** Every lease on file; one that cannot be parsed (a torn write of a killed writer) comes back with pid 0. */
export async function readLeases(storePath: string, space: string): Promise<Lease[]> {
  const dir = join(gcDir(storePath, space), 'leases');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fromFsError(e, 'listing gc leases', dir);
  }
  const out: Lease[] = [];
  for (const n of names) {
    if (!n.endsWith(LEASE_SUFFIX)) continue;
    const id = n.slice(0, -LEASE_SUFFIX.length);
    try {
      const l = JSON.parse(await readFile(join(dir, n), 'utf8')) as Lease;
      out.push({ ...l, id });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      out.push({ id, pid: 0, host: '', bootId: '', procStart: '', startedMs: 0, purpose: 'unreadable lease', knownMark: 0 });
    }
  }
  return out;
}

/** Appends pins (kind:id lines) for `mark` to this lease's pin file and fsyncs it before returning. */
export async function appendPins(storePath: string, space: string, leaseId: string, mark: number, pins: string[]): Promise<void> {
  if (pins.length === 0) return;
  const dir = join(gcDir(storePath, space), 'pins');
  const path = join(dir, `${leaseId}.${mark}`);
  let fh;
  try {
    fh = await open(path, 'a', PRIVATE_FILE_MODE);
    await fh.writeFile(pins.map((p) => `${p}\n`).join(''));
    await fh.sync();
  } catch (e) {
    throw fromFsError(e, 'recording gc pins', path);
  } finally {
    await fh?.close();
  }
  // The file's name must be durable too when it was just made.
  await fsyncDir(dir);
}

/** Every pin recorded for `mark`, as "data:<id>" / "meta:<id>". A torn last line is ignored. */
export async function readPins(storePath: string, space: string, mark: number): Promise<Set<string>> {
  const dir = join(gcDir(storePath, space), 'pins');
  const out = new Set<string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw fromFsError(e, 'listing gc pins', dir);
  }
  for (const n of names) {
    if (!n.endsWith(`.${mark}`)) continue;
    const text = await readFile(join(dir, n), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^(data|meta):[0-9a-f]{64}$/.test(line)) out.add(line);
  }
  return out;
}

/** Removes pin files of marks before `mark` (nothing reads them any more). */
export async function removeOldPins(storePath: string, space: string, mark: number): Promise<void> {
  const dir = join(gcDir(storePath, space), 'pins');
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    const m = /\.(\d+)$/.exec(n);
    if (m && Number(m[1]) < mark) await unlink(join(dir, n)).catch(() => undefined);
  }
}

/** Whole or not at all (temp file, fdatasync, rename), and its name durable (fsync of the folder). */
async function writeSmallFile(dir: string, name: string, bytes: Buffer): Promise<void> {
  await writeFileAtomic(dir, join(dir, name), bytes, 'cannot write a gc file');
  await fsyncDir(dir);
}
