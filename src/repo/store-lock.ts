// The one-writer rule of a store space: whoever changes the live state (a read-write mount, a
// `snapshot` without a mount) holds STORE/live/<space>/lock, created with O_EXCL and naming its
// process. A lock whose process is gone (kill -9, power loss) is recovered with a warning; one whose
// process lives fails with LOCKED naming the pid. Read-only and snapshot mounts take no lock.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { localFolderOf } from '../remote/store-site.js';
import { FragfsError, fromFsError } from '../errors.js';
import { PRIVATE_FILE_MODE, mkdirPrivate, tightenPath } from '../store/private-modes.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** Boot id of the host when taken: a pid from an earlier boot is not this boot's process. */
  bootId: string;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22): defeats pid reuse. */
  procStart: string;
  startedMs: number;
  /** What holds it: "mount /mnt/x", "snapshot". */
  purpose: string;
}

/** This process, as a lock or lease names its holder. */
export function currentOwner(purpose: string): LockOwner {
  return {
    pid: process.pid,
    host: hostname(),
    bootId: readBootId(),
    procStart: procStartOf(process.pid) ?? '',
    startedMs: Date.now(),
    purpose,
  };
}

/** This machine's live state of a space: in the store folder, or a remote store's cache folder. */
export function liveDir(storePath: string, space: string): string {
  return join(localFolderOf(storePath), 'live', space);
}

export function lockPath(storePath: string, space: string): string {
  return join(liveDir(storePath, space), 'lock');
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** What /proc/<pid>/stat tells about a process: its state letter, kernel flags and start time. */
export interface ProcStat {
  /** Field 3: R, S, D, T, t, Z (zombie), X (dead), ... */
  state: string;
  /** Field 9: the kernel's PF_* flags. */
  flags: number;
  /** Field 22: start time in clock ticks since boot. */
  start: string;
}

/** PF_EXITING: the process is tearing itself down (after kill -9, a large address space takes a while). */
const PF_EXITING = 0x4;
/** Bit of SIGKILL (9) in the hex masks of /proc/<pid>/status. */
const SIGKILL_BIT = 1n << 8n;

export function parseProcStat(text: string): ProcStat | undefined {
  // Field 2 (comm) may hold spaces and parentheses: count fields after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  const [state, flags, start] = [rest[0], rest[6], rest[19]];
  if (state === undefined || flags === undefined || start === undefined) return undefined;
  return { state, flags: Number(flags), start };
}

function procStatOf(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function procStartOf(pid: number): string | undefined {
  return procStatOf(pid)?.start;
}

/** Whether a SIGKILL waits to be delivered to `pid` (it is as good as gone, but not yet exiting). */
function sigkillPending(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    for (const field of ['SigPnd', 'ShdPnd']) {
      const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
      if (m && (BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n) return true;
    }
  } catch {
    // Gone meanwhile: the caller reads /proc again.
  }
  return false;
}

/**
 * How a holder's process stands, from its /proc/<pid>/stat (and status): `dead` when it is gone, a
 * zombie (Z: exited, not yet reaped by its parent) or X; `exiting` when it was killed or is tearing
 * down; else `alive`.
 */
export function processState(stat: ProcStat, killPending = false): 'alive' | 'exiting' | 'dead' {
  if (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return 'dead';
  if ((stat.flags & PF_EXITING) !== 0 || killPending) return 'exiting';
  return 'alive';
}

/**
 * 'alive', 'exiting' (killed or tearing down: gone within moments), 'dead', or 'unknown' (another
 * host: nothing here can tell).
 */
export function ownerState(owner: LockOwner): 'alive' | 'exiting' | 'dead' | 'unknown' {
  if (owner.host !== hostname()) return 'unknown';
  const boot = readBootId();
  if (boot && owner.bootId && boot !== owner.bootId) return 'dead';
  const stat = procStatOf(owner.pid);
  if (stat === undefined) {
    try {
      process.kill(owner.pid, 0);
      return 'alive'; // exists but /proc unreadable: assume it is the owner
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'dead';
    }
  }
  if (owner.procStart && stat.start !== owner.procStart) return 'dead';
  return processState(stat, stat.state === 'Z' ? false : sigkillPending(owner.pid));
}

/** How long a holder that is exiting gets to be gone before the lock is refused: a kill -9'd mount of a large tree unmaps its LMDB files first. */
export const EXITING_HOLDER_WAIT_MS = 5000;
const EXITING_POLL_MS = 50;

/** The holder's state, waiting up to `waitMs` while it is exiting. */
async function settledOwnerState(owner: LockOwner, waitMs: number): Promise<ReturnType<typeof ownerState>> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const state = ownerState(owner);
    if (state !== 'exiting' || Date.now() >= deadline) return state;
    await new Promise((r) => setTimeout(r, EXITING_POLL_MS));
  }
}

function describe(owner: LockOwner): string {
  return `pid ${owner.pid} on ${owner.host} (${owner.purpose}, since ${new Date(owner.startedMs).toISOString()})`;
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockOwner;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (e instanceof SyntaxError) {
      // Torn write by a process killed while creating it: treat as a dead owner.
      return { pid: 0, host: hostname(), bootId: '', procStart: '', startedMs: 0, purpose: 'unreadable lock' };
    }
    throw fromFsError(e, 'reading the lock', path);
  }
}

export class StoreLock {
  private released = false;

  private constructor(
    readonly path: string,
    readonly owner: LockOwner,
  ) {}

  /**
   * Takes the lock of `space` in the store, or fails with LOCKED naming the live holder. A holder
   * that is a zombie (killed, not yet reaped by its parent) is dead; one that is exiting is waited
   * for up to a few seconds. `warn` gets one line when a dead holder's lock is recovered.
   */
  static async acquire(o: {
    storePath: string;
    space: string;
    purpose: string;
    warn?: (line: string) => void;
    /** How long to wait for a holder that is exiting (default EXITING_HOLDER_WAIT_MS). */
    exitingWaitMs?: number;
    /**
     * Another lock file of the same kind (gc takes STORE/gc/<space>/lock, whose folder the caller
     * made), and what its holder is doing, for the LOCKED message. Default: the live state's lock.
     */
    other?: { path: string; busy: string };
  }): Promise<StoreLock> {
    const warn = o.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
    const path = o.other?.path ?? lockPath(o.storePath, o.space);
    const busy = o.other?.busy ?? 'in use read-write';
    if (!o.other) await StoreLock.makeLiveDir(o.storePath, o.space);
    const owner = currentOwner(o.purpose);
    for (let attempt = 0; attempt < 5; attempt++) {

      // Write the content to a private file, then link it into place: link fails with EEXIST like
      // O_EXCL but the lock never exists half-written.
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
      try {
        const fh = await open(tmp, 'wx', PRIVATE_FILE_MODE);
        try {
          await fh.writeFile(`${JSON.stringify(owner)}\n`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        try {
          await link(tmp, path);
          return new StoreLock(path, owner);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        } finally {
          await unlink(tmp).catch(() => undefined);
        }
      } catch (e) {
        throw fromFsError(e, 'creating the lock', path);
      }
      const holder = await readOwner(path);
      if (holder === undefined) continue; // released meanwhile
      const state = await settledOwnerState(holder, o.exitingWaitMs ?? EXITING_HOLDER_WAIT_MS);
      if (state === 'alive' || state === 'exiting') {
        throw new FragfsError(
          'LOCKED',
          `the store space ${o.space} at ${o.storePath} is ${busy} by ${describe(holder)}`,
          { path },
        );
      }
      if (state === 'unknown') {
        throw new FragfsError(
          'LOCKED',
          `the store space ${o.space} at ${o.storePath} is locked by ${describe(holder)}; ` +
            `if no fragfs runs there, delete ${path}`,
          { path },
        );
      }
      // Dead holder: move its lock aside (only one recoverer's rename can win), then check that
      // what we moved is the dead one and not a lock a faster recoverer just took.
      const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
      try {
        await rename(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw fromFsError(e, 'recovering the lock', path);
      }
      const moved = await readOwner(aside);
      if (moved && moved.pid === holder.pid && moved.startedMs === holder.startedMs) {
        warn(`fragfs: recovered the lock of ${o.space} left by ${describe(holder)}, which is no longer running`);
        await unlink(aside).catch(() => undefined);
      } else {
        await link(aside, path).catch(() => undefined); // put the live one back
        await unlink(aside).catch(() => undefined);
      }
    }
    throw new FragfsError('LOCKED', `could not take the lock ${path} (it keeps changing hands)`, { path });
  }

  private static async makeLiveDir(storePath: string, space: string): Promise<void> {
    const dir = liveDir(storePath, space);
    try {
      // STORE/live/ and STORE/live/<space>/ hold the live tree: the owner's only, also in a store
      // an older fragfs made with looser modes.
      await mkdirPrivate(dir);
      await tightenPath(join(localFolderOf(storePath), 'live'));
      await tightenPath(dir);
    } catch (e) {
      throw fromFsError(e, 'creating the live state folder', dir);
    }
  }

  /** Removes the lock if it is still ours. Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const holder = await readOwner(this.path).catch(() => undefined);
    if (holder && holder.pid === this.owner.pid && holder.startedMs === this.owner.startedMs) {
      await unlink(this.path).catch(() => undefined);
    }
  }

  /** The current holder, if any (for status messages). */
  static async holder(storePath: string, space: string): Promise<{ owner: LockOwner; state: ReturnType<typeof ownerState> } | undefined> {
    const owner = await readOwner(lockPath(storePath, space));
    return owner ? { owner, state: ownerState(owner) } : undefined;
  }
}
