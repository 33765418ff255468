// What a local store takes on disk and what is left beside it: the figures `df` shows for a
// read-write mount (statfs). The store folder is walked in the background (its files' allocated
// blocks, as du counts them) at most every REWALK_MS, so a statfs never waits on more than a
// short first walk; a lmdb store is one file and a packed store a few, so the walk is cheap.

import { lstat, opendir, statfs as fsStatfs } from 'node:fs/promises';
import { join } from 'node:path';

/** A statfs answered after this long since the last walk starts another. */
const REWALK_MS = 30_000;
/** How long the first statfs waits for the first walk. */
const FIRST_WAIT_MS = 1000;
/** The unit statfs counts blocks in (frsize). */
export const STATFS_UNIT_BYTES = 4096;
/** What a remote store reports as its room: a petabyte, as JuiceFS does for "no quota". */
export const REMOTE_CAPACITY_BYTES = 2 ** 50;

export interface StoreUsageFigures {
  /** Bytes the store's files take on disk (0 before the first walk ends). */
  usedBytes: number;
  /** Bytes free for an unprivileged writer on the disk holding the store. */
  availBytes: number;
}

export class StoreUsage {
  private usedBytes = 0;
  private walkedMs = 0;
  private walking: Promise<void> | undefined;

  /** `folder`: the store folder (local stores); undefined for a remote store. */
  constructor(private readonly folder: string | undefined) {}

  /** The figures now; MUST NOT fail (a statfs answers whatever it can). */
  async figures(): Promise<StoreUsageFigures> {
    if (this.folder === undefined) return { usedBytes: 0, availBytes: REMOTE_CAPACITY_BYTES };
    const first = this.walkedMs === 0;
    if (this.walking === undefined && Date.now() - this.walkedMs > REWALK_MS) {
      this.walking = this.walk().finally(() => {
        this.walkedMs = Date.now();
        this.walking = undefined;
      });
    }
    if (first && this.walking) await Promise.race([this.walking, new Promise((r) => setTimeout(r, FIRST_WAIT_MS).unref())]);
    let availBytes = 0;
    try {
      const st = await fsStatfs(this.folder);
      availBytes = st.bavail * st.bsize;
    } catch {
      // a store folder that went away: no room
    }
    return { usedBytes: this.usedBytes, availBytes };
  }

  private async walk(): Promise<void> {
    let total = 0;
    const visit = async (dir: string): Promise<void> => {
      let handle;
      try {
        handle = await opendir(dir);
      } catch {
        return;
      }
      for await (const d of handle) {
        const p = join(dir, d.name);
        if (d.isDirectory()) await visit(p);
        else {
          const st = await lstat(p).catch(() => undefined);
          if (st) total += st.blocks * 512;
        }
      }
    };
    await visit(this.folder!);
    this.usedBytes = total;
  }
}
