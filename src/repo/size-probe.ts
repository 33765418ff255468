// Whether the file system `get` writes to can hold a file of a given size, asked before the file is
// created: a probe file in the destination is sized to it (ftruncate: sparse, no data written) and
// back to zero. A size the snapshot declares but the destination cannot hold (EFBIG: ext4 stops at
// 16 TiB, FAT at 4 GiB, `ulimit -f` anywhere) is then a clear error before any of the file exists.

import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { joinName } from '../fragment/names.js';

/** Sizes every file system Linux writes to holds (FAT32's limit is 4 GiB - 1): not probed. */
export const UNPROBED_MAX_BYTES = 2 ** 31 - 1;

export class FileSizeProbe {
  private largestFit = UNPROBED_MAX_BYTES;
  private smallestRefused = Infinity;
  private probe: { fh: FileHandle; path: string | Buffer } | undefined;
  /** One probe at a time: files are restored in parallel. */
  private chain: Promise<unknown> = Promise.resolve();

  /** `dir`: a folder on the destination file system, where the probe file may live for a while. */
  constructor(private readonly dir: string | Buffer) {}

  /**
   * False when the destination refuses a file of `size` bytes. MUST be asked before such a file is
   * created. Sizes up to UNPROBED_MAX_BYTES and sizes like ones already asked about cost nothing.
   * A probe that fails for another reason answers true: creating the file then says what is wrong.
   */
  async holds(size: number): Promise<boolean> {
    if (size <= this.largestFit) return true;
    if (size >= this.smallestRefused) return false;
    const run = this.chain.then(() => this.try(size));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async try(size: number): Promise<boolean> {
    if (size <= this.largestFit) return true;
    if (size >= this.smallestRefused) return false;
    try {
      if (!this.probe) {
        const name = Buffer.from(`.fragfs-size-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
        const path = typeof this.dir === 'string' ? join(this.dir, name.toString()) : joinName(this.dir, name);
        this.probe = { fh: await open(path, 'wx', 0o600), path };
      }
      await this.probe.fh.truncate(size);
      await this.probe.fh.truncate(0);
      this.largestFit = size;
      return true;
    } catch (e) {
      const errno = (e as NodeJS.ErrnoException).code;
      // POSIX allows either for a length past the file system's largest file.
      if (errno === 'EFBIG' || errno === 'EINVAL') {
        this.smallestRefused = size;
        return false;
      }
      return true;
    }
  }

  /**
   * Removes the probe file. MUST be called before the folder holding it gets its final times (and
   * always at the end); `holds` may be asked again afterwards and makes a new one.
   */
  async close(): Promise<void> {
    await this.chain;
    const p = this.probe;
    this.probe = undefined;
    if (!p) return;
    await p.fh.close().catch(() => undefined);
    await unlink(p.path).catch(() => undefined);
  }
}
