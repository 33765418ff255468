// Open read handles of a file-tree store's files, kept for a moment after use, so that reading many
// ranges of one file (the fragments of a pack, one by one) costs one pread each instead of an
// open, a pread and a close. A fragment file is never changed in place (written under a temporary
// name and renamed, and named by the hash of its bytes), so a handle kept open reads what a fresh
// open would: at worst a file moved to the trash a moment ago, whose bytes are still the right ones.
// The store forgets a path before it moves or deletes that file, so its disk space is not held.

import { open, type FileHandle } from 'node:fs/promises';

interface Held {
  handle: Promise<FileHandle>;
  /** Reads using the handle now. */
  users: number;
  /** Forgotten (evicted, or its file moved): closed when its last user is done. */
  dropped: boolean;
  lastUsedMs: number;
}

/** How long an unused handle stays open. */
export const IDLE_CLOSE_MS = 1000;

export class OpenFileCache {
  /** By path, least recently used first (Map order, refreshed on use). */
  private readonly held = new Map<string, Held>();
  private sweeper: NodeJS.Timeout | undefined;

  /** `maxOpen` bounds the file descriptors kept (those in use by a read may exceed it for a moment). */
  constructor(private readonly maxOpen = 64) {}

  /**
   * Runs `fn` with a read handle of `path`. A failure to open (ENOENT included) is thrown as
   * `open` throws it, and nothing is kept.
   */
  async with<T>(path: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let h = this.held.get(path);
    if (h !== undefined) {
      this.held.delete(path);
      this.held.set(path, h);
    } else {
      h = { handle: open(path, 'r'), users: 0, dropped: false, lastUsedMs: 0 };
      this.held.set(path, h);
      this.trim();
    }
    h.users++;
    let fh: FileHandle;
    try {
      fh = await h.handle;
    } catch (e) {
      h.users--;
      if (this.held.get(path) === h) this.held.delete(path);
      throw e;
    }
    try {
      return await fn(fh);
    } finally {
      h.users--;
      h.lastUsedMs = Date.now();
      if (h.dropped) this.closeIfUnused(h);
      else this.armSweeper();
    }
  }

  /** Closes the handle of `path` (once unused): the file is about to be moved or deleted. */
  forget(path: string): void {
    const h = this.held.get(path);
    if (h === undefined) return;
    this.held.delete(path);
    h.dropped = true;
    this.closeIfUnused(h);
  }

  /** Closes every handle (those in use, when their reads end). */
  async closeAll(): Promise<void> {
    if (this.sweeper) clearTimeout(this.sweeper);
    this.sweeper = undefined;
    const all = [...this.held.values()];
    this.held.clear();
    for (const h of all) h.dropped = true;
    await Promise.all(all.filter((h) => h.users === 0).map((h) => h.handle.then((fh) => fh.close()).catch(() => undefined)));
  }

  private trim(): void {
    for (const [path, h] of this.held) {
      if (this.held.size <= this.maxOpen) break;
      if (h.users > 0) continue;
      this.forget(path);
    }
  }

  private closeIfUnused(h: Held): void {
    if (h.users > 0) return;
    // A handle that failed to open has nothing to close.
    h.handle.then((fh) => fh.close()).catch(() => undefined);
  }

  /** One timer for all: closes handles unused for IDLE_CLOSE_MS; it does not keep the process alive. */
  private armSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      const now = Date.now();
      for (const [path, h] of this.held) {
        if (h.users === 0 && now - h.lastUsedMs >= IDLE_CLOSE_MS) this.forget(path);
      }
      if (this.held.size > 0) this.armSweeper();
    }, IDLE_CLOSE_MS);
    this.sweeper.unref();
  }
}
