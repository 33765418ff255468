// How `fragfs umount MOUNTPOINT` and `fragfs snapshot STORE` find the process serving a mount.
// Every mount writes a record keyed by its mount point in a per-user runtime folder; a read-write
// mount also writes one inside its store space (STORE/live/<space>/mount.json). Both name the pid and
// the control socket. Records are hints: the socket answering (or the pid being alive) is the truth,
// so a record left by a killed process is recognised as stale and cleared.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { liveDir } from '../repo/store-lock.js';

export interface MountRecord {
  mountpoint: string;
  storePath: string;
  space: string;
  pid: number;
  readOnly: boolean;
  /** Meta key of a snapshot mount. */
  snapshot?: string;
  /** Unix socket of the mount process's control channel. */
  socket: string;
  /** Where a --background mount process writes its messages. */
  logFile?: string;
  startedMs: number;
}

/** Unix socket paths are limited to 107 bytes on Linux; keep a margin. */
const SOCKET_PATH_MAX = 100;

/** /run/fragfs for root, $XDG_RUNTIME_DIR/fragfs for a user session, else $TMPDIR/fragfs-<uid>. */
export function runtimeDir(): string {
  const env = process.env['FRAGFS_RUNTIME_DIR'];
  if (env) return env;
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/fragfs';
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg) return join(xdg, 'fragfs');
  return join(tmpdir(), `fragfs-${uid}`);
}

export async function ensureRuntimeDir(): Promise<string> {
  const dir = runtimeDir();
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch {
    // /run not writable (e.g. a container without /run): fall back to the temp folder.
    const fallback = join(tmpdir(), `fragfs-${process.getuid?.() ?? 0}`);
    await mkdir(fallback, { recursive: true, mode: 0o700 });
    process.env['FRAGFS_RUNTIME_DIR'] = fallback;
    return fallback;
  }
  return dir;
}

function keyOf(mountpoint: string): string {
  return createHash('sha256').update(mountpoint).digest('hex').slice(0, 24);
}

export const recordPathFor = (mountpoint: string) => join(runtimeDir(), `${keyOf(mountpoint)}.json`);
export const logPathFor = (mountpoint: string) => join(runtimeDir(), `${keyOf(mountpoint)}.log`);
export const storeRecordPath = (storePath: string, space: string) => join(liveDir(storePath, space), 'mount.json');

/** STORE/live/<space>/control.sock for a read-write mount when short enough, else in the runtime folder. */
export function socketPathFor(o: { mountpoint: string; storePath: string; space: string; readOnly: boolean }): string {
  if (!o.readOnly) {
    const inStore = join(liveDir(o.storePath, o.space), 'control.sock');
    if (Buffer.byteLength(inStore) <= SOCKET_PATH_MAX) return inStore;
  }
  return join(runtimeDir(), `${keyOf(o.mountpoint)}.sock`);
}

async function writeAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

async function readRecord(path: string): Promise<MountRecord | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as MountRecord;
  } catch {
    return undefined;
  }
}

export async function writeRecords(rec: MountRecord): Promise<void> {
  await ensureRuntimeDir();
  await writeAtomic(recordPathFor(rec.mountpoint), rec);
  if (!rec.readOnly) await writeAtomic(storeRecordPath(rec.storePath, rec.space), rec);
}

/** Removes the records that still name `pid` (a newer mount may have replaced them). */
export async function removeRecords(rec: MountRecord): Promise<void> {
  const paths = [recordPathFor(rec.mountpoint)];
  if (!rec.readOnly) paths.push(storeRecordPath(rec.storePath, rec.space));
  for (const p of paths) {
    const cur = await readRecord(p);
    if (cur && cur.pid === rec.pid) await unlink(p).catch(() => undefined);
  }
}

export const recordForMountpoint = (mountpoint: string) => readRecord(recordPathFor(mountpoint));
export const recordForStore = (storePath: string, space: string) => readRecord(storeRecordPath(storePath, space));

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
