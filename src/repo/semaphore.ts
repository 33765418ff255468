// A counting semaphore: bounds work in flight (blocks being encoded, files open) so memory and file
// descriptors stay bounded whatever the size of the tree.

export class Semaphore {
  /**
   * Waiters in arrival order, served from `head`: Array.shift copies the whole array, which made
   * releasing quadratic when tens of thousands of tasks queue at once (a gc sizing 47,000 fragments
   * spent a second in it).
   */
  private waiters: (() => void)[] = [];
  private head = 0;
  private available: number;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`semaphore capacity ${capacity}`);
    this.available = capacity;
  }

  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Takes a unit only when one is free at once: for work that MAY instead run in its caller's turn. */
  tryAcquire(): boolean {
    if (this.available === 0) return false;
    this.available--;
    return true;
  }

  release(): void {
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      this.waiters[this.head++] = undefined as unknown as () => void;
      // Compacted when the served part is at least half the array: amortized O(1) per waiter.
      if (this.head === this.waiters.length) {
        this.waiters = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      next();
    } else this.available++;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/**
 * Like Promise.all, but waits for every promise to settle before rethrowing the first failure, so
 * no task is still using a file handle or the repo when the caller cleans up.
 */
export async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
