// Decrypted data blocks shared by every open file of a vfs: an LRU bounded in bytes, keyed by
// fragment id, with one load in flight per fragment. Only verified plaintext ever enters it.

import { LRUCache } from 'lru-cache';
import type { BlockRef } from '../fragment/tree-format.js';
import type { Repo } from '../repo/repo.js';

/**
 * 16 MiB, with the write buffer's 8 MiB: sized for the 160 MiB of its own memory a mount may hold at
 * default settings (docs/DESIGN.md, "Memory of a mount", which says where it is still above);
 * `--cache-size` raises both.
 */
export const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;

export class BlockCache {
  private readonly lru: LRUCache<string, Uint8Array>;
  private readonly loading = new Map<string, Promise<Uint8Array>>();

  constructor(
    private readonly repo: Repo,
    readonly cacheBytes: number = DEFAULT_CACHE_BYTES,
  ) {
    // lru-cache needs maxSize >= 1; a zero-byte cache still dedups concurrent loads.
    this.lru = new LRUCache({ maxSize: Math.max(1, cacheBytes), sizeCalculation: (v) => Math.max(1, v.byteLength) });
  }

  /**
   * The verified plaintext of `ref`. MUST NOT be modified by the caller. Fails with CORRUPT or
   * MISSING_FRAGMENT naming the fragment and `where` (the file path).
   */
  get(ref: BlockRef, where: string): Promise<Uint8Array> {
    const hit = this.lru.get(ref.id);
    if (hit) return Promise.resolve(hit);
    return this.load(ref, where);
  }

  /** The plaintext of `ref` when it is cached, without loading it or making it more recent. */
  peek(ref: BlockRef): Uint8Array | undefined {
    return this.lru.peek(ref.id);
  }

  /** Starts loading `ref` unless cached or loading; errors surface on the `get` that needs it. */
  prefetch(ref: BlockRef, where: string): void {
    if (this.lru.has(ref.id) || this.loading.has(ref.id)) return;
    this.load(ref, where).catch(() => undefined);
  }

  /** Puts a block we just wrote (it is verified by construction: we hold the plaintext). */
  remember(ref: BlockRef, plain: Uint8Array): void {
    if (plain.byteLength === ref.plainSize) this.lru.set(ref.id, plain);
  }

  private load(ref: BlockRef, where: string): Promise<Uint8Array> {
    const pending = this.loading.get(ref.id);
    if (pending) return pending;
    const p = this.repo.readBlock(ref, where).then(
      (plain) => {
        this.loading.delete(ref.id);
        this.lru.set(ref.id, plain);
        return plain;
      },
      (e: unknown) => {
        this.loading.delete(ref.id);
        throw e;
      },
    );
    this.loading.set(ref.id, p);
    return p;
  }
}
