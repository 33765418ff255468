// Crash-safe file writes for the file-tree backends (dir, split): temp file + fsync + rename, the
// fsync of directories that rename/unlink touched, and the removal of temp files a crash left behind.
//
// Why this order: rename(2) within one file system is atomic, so a reader or a crash sees either
// the old name state or the whole new file, never a prefix. fdatasync before the rename makes the
// file's bytes durable before its name can exist; the directory entry itself becomes durable only
// when its directory is fsynced, which callers may batch (see DirSyncer).

import { randomBytes } from 'node:crypto';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FragfsError, fromFsError } from '../errors.js';
import { PRIVATE_FILE_MODE } from './private-modes.js';

/** Temp files are named `<pid>-<seq>-<random>.tmp`; the pid lets a later process tell live from stray. */
const TEMP_RE = /^(\d+)-\d+-[0-9a-f]{8}\.tmp$/;
let tempSeq = 0;

/** Wall-clock start of this process: temp files older than this cannot belong to an in-flight put of ours. */
export const PROCESS_START_MS = Date.now() - process.uptime() * 1000;

export function tempName(): string {
  tempSeq = (tempSeq + 1) % Number.MAX_SAFE_INTEGER;
  return `${process.pid}-${tempSeq}-${randomBytes(4).toString('hex')}.tmp`;
}

export function isTempName(name: string): boolean {
  return TEMP_RE.test(name);
}

/**
 * Writes `bytes` to a fresh temp file in `tempDir` (mode 0600), fdatasyncs it and renames it to
 * `finalPath` (replacing any file there). On failure, a full disk included, the temp file is removed
 * and a FragfsError is thrown (NO_SPACE naming `finalPath` for ENOSPC): no partial file is left.
 * `tempDir` and `dirname(finalPath)` MUST exist and be on one file system.
 */
export async function writeFileAtomic(tempDir: string, finalPath: string, bytes: Uint8Array, what = 'cannot write fragment file'): Promise<void> {
  const tempPath = join(tempDir, tempName());
  let renamed = false;
  try {
    const fh = await open(tempPath, 'wx', PRIVATE_FILE_MODE);
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, written, bytes.length - written, written);
        written += bytesWritten;
      }
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tempPath, finalPath);
    renamed = true;
  } catch (e) {
    throw fromFsError(e, what, finalPath);
  } finally {
    if (!renamed) await unlink(tempPath).catch(() => undefined);
  }
}

/** fsyncs one directory so that entries created, renamed or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // A directory removed since it was touched has nothing left to make durable.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fromFsError(e, 'cannot sync directory', dir);
  } finally {
    await fh?.close();
  }
}

/**
 * Remembers directories whose entries changed since the last `sync()` and fsyncs them on demand.
 * A directory created by `mkdir` is recorded together with its parent (the new entry lives there).
 */
export class DirSyncer {
  private dirty = new Set<string>();

  touched(dir: string): void {
    this.dirty.add(dir);
  }

  created(dir: string): void {
    this.dirty.add(dir);
    this.dirty.add(dirname(dir));
  }

  async sync(): Promise<void> {
    const dirs = [...this.dirty];
    this.dirty.clear();
    try {
      // Deepest first is not needed for correctness (each fsync covers one directory's entries),
      // but a bounded parallelism keeps thousands of fan-out dirs from opening thousands of fds.
      for (let i = 0; i < dirs.length; i += 32) {
        await Promise.all(dirs.slice(i, i + 32).map(fsyncDir));
      }
    } catch (e) {
      // Whatever was not synced must be retried by the next sync.
      for (const d of dirs) this.dirty.add(d);
      throw e;
    }
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files a crashed writer left in `tempDir`: only names this module makes, only files
 * older than this process, and only when the writing process is gone (a same-pid file older than us
 * belongs to a previous process). Returns how many were removed. A missing `tempDir` is fine.
 */
export async function removeStrayTempFiles(tempDir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(tempDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw fromFsError(e, 'cannot list temp folder', tempDir);
  }
  let removed = 0;
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const p = join(tempDir, name);
    try {
      const st = await stat(p);
      if (st.mtimeMs >= PROCESS_START_MS) continue;
      if (pid !== process.pid && pidAlive(pid)) continue;
      await unlink(p);
      removed++;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw fromFsError(e, 'cannot remove stray temp file', p);
    }
  }
  return removed;
}

export function readOnlyError(what: string): FragfsError {
  return new FragfsError('READ_ONLY', `cannot ${what}: the store is open read-only`);
}
