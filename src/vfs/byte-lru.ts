// A least-recently-used map bounded in bytes, for the mount's metadata caches (decoded inodes and
// entries, live-state keys, decoded snapshot folders). Each value states its own cost in bytes; the
// oldest values go when the sum passes the limit, so a walk of any size leaves at most `maxBytes`.

export class ByteLru<K, V> {
  /** Insertion order is recency order: a hit is moved to the end. */
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private usedBytes = 0;

  /**
   * `costOf` MUST return an estimate of what the value and its key hold in memory (JS objects
   * included), a positive number; it is asked once per `set`.
   */
  constructor(
    readonly maxBytes: number,
    private readonly costOf: (value: V, key: K) => number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** What the values held count for, by their stated costs. */
  get bytes(): number {
    return this.usedBytes;
  }

  /** The value, made the most recent. */
  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  /** The value, without making it more recent. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Adds or replaces; a value costing more than the whole limit is not kept. */
  set(key: K, value: V): void {
    this.delete(key);
    const bytes = this.costOf(value, key);
    if (bytes > this.maxBytes) return;
    this.map.set(key, { value, bytes });
    this.usedBytes += bytes;
    while (this.usedBytes > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  delete(key: K): boolean {
    const hit = this.map.get(key);
    if (hit === undefined) return false;
    this.map.delete(key);
    this.usedBytes -= hit.bytes;
    return true;
  }

  clear(): void {
    this.map.clear();
    this.usedBytes = 0;
  }
}
