// The vfs-wide write buffer: dirty block images of every open file, in least-recently-written
// order, bounded in bytes, and the bound on blocks being encoded and stored at once (backpressure).

import type { BlockRef } from '../fragment/tree-format.js';

/** Sized with the block cache's default (block-cache.ts). */
export const DEFAULT_WRITE_BUFFER_BYTES = 8 * 1024 * 1024;
/** The smallest share of a store slot a store takes (so at most 16 stores per slot run at once). */
const MIN_STORE_WEIGHT = 1 / 16;

/** Bytes written into a block, in write order (a later span wins where two overlap). */
export interface PatchSpan {
  readonly inOff: number;
  readonly bytes: Buffer;
}

/**
 * Writes into a stored block, kept without reading the block: a small random write then costs a
 * copy of its own bytes, not a fragment load and decode or a copy of the whole block. The block is
 * read once, when the patch is stored, read from, cut by a truncate, or grows past its bounds
 * (see OpenFile).
 */
export interface BlockPatch {
  /** The committed block the spans lie over. */
  readonly base: BlockRef;
  readonly spans: PatchSpan[];
  /** Sum of the spans' lengths. */
  bytes: number;
  /** The spans cover [0, prefix) without a gap. */
  prefix: number;
}

/** One block image not yet handed to the store. Bytes at and past `len` are zeros by definition. */
export interface DirtyBlock {
  readonly owner: { storeBlock(blockNo: number): void };
  readonly blockNo: number;
  /** The image (empty while `patch` is set). */
  data: Buffer;
  len: number;
  /** Started from the stored block (a rewrite in place) rather than from nothing (a fill). */
  loaded?: boolean;
  /** Set: the image is `patch.base` with the spans laid over it, not yet assembled. */
  patch?: BlockPatch;
  /** Bytes this block counts against the budget (kept by WriteBuffer). */
  charged?: number;
}

function memoryOf(b: DirtyBlock): number {
  return b.data.byteLength + (b.patch?.bytes ?? 0);
}

export class WriteBuffer {
  private readonly order = new Set<DirtyBlock>();
  private bytes = 0;
  /** Stores running, in slots (a whole block is one; see `weight` of runStore). */
  private running = 0;
  /** Stores scheduled but not finished (running or waiting for a slot), in slots. */
  private pending = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly roomWaiters: (() => void)[] = [];

  constructor(
    readonly budgetBytes: number,
    /** Stores running at once (encoding on the pool + put). */
    readonly maxRunning: number,
    /** Stores scheduled at once; writers wait above this. */
    readonly maxPending: number,
  ) {}

  get bufferedBytes(): number {
    return this.bytes;
  }

  add(b: DirtyBlock): void {
    this.order.add(b);
    b.charged = memoryOf(b);
    this.bytes += b.charged;
  }

  /** The block was just written: it becomes the most recent. */
  touch(b: DirtyBlock): void {
    this.order.delete(b);
    this.order.add(b);
  }

  /** The block's image or patch changed size. */
  recharge(b: DirtyBlock): void {
    if (!this.order.has(b)) return;
    const now = memoryOf(b);
    this.bytes += now - (b.charged ?? 0);
    b.charged = now;
  }

  remove(b: DirtyBlock): void {
    if (this.order.delete(b)) this.bytes -= b.charged ?? 0;
  }

  /** Over budget: hand the least recently written blocks to the store (without waiting). */
  evictIfOver(): void {
    while (this.bytes > this.budgetBytes) {
      const oldest = this.order.values().next().value as DirtyBlock | undefined;
      if (!oldest) return;
      oldest.owner.storeBlock(oldest.blockNo); // removes it from `order`
      if (this.order.has(oldest)) this.remove(oldest);
    }
  }

  /** Resolves when a writer may go on: fewer than maxPending stores scheduled. */
  async waitRoom(): Promise<void> {
    while (this.pending >= this.maxPending) await new Promise<void>((r) => this.roomWaiters.push(r));
  }

  /**
   * Runs one store under the bound on stores running at once. `weight` is the share of a slot it
   * takes, its image's bytes over the block size (at least MIN_STORE_WEIGHT): the bound is on the
   * memory stores hold (image and encoded copy), so a small file's store takes a sliver of a slot and
   * many of them overlap their latency (an untar is a stream of 1-4 KiB stores).
   */
  async runStore<T>(fn: () => Promise<T>, weight = 1): Promise<T> {
    const w = Math.min(1, Math.max(MIN_STORE_WEIGHT, weight));
    this.pending += w;
    try {
      while (this.running > 0 && this.running + w > this.maxRunning) await new Promise<void>((r) => this.slotWaiters.push(r));
      this.running += w;
      try {
        return await fn();
      } finally {
        this.running -= w;
        // Every waiter looks again: a freed whole slot may let many small stores in.
        for (const r of this.slotWaiters.splice(0)) r();
      }
    } finally {
      this.pending -= w;
      const waiters = this.roomWaiters.splice(0);
      for (const w of waiters) w();
    }
  }
}
