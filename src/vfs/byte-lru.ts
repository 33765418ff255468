// A least-recently-used map bounded in bytes, for the mount's metadata caches (decoded inodes and
// entries, live-state keys, decoded snapshot folders). Each value states its own cost in bytes; the
// oldest values go when the sum passes the limit, so a walk of any size leaves at most `maxBytes`.

interface Node<K, V> {
  key: K;
  value: V;
  bytes: number;
  /** Towards the least recent. */
  older: Node<K, V> | undefined;
  /** Towards the most recent. */
  newer: Node<K, V> | undefined;
}

/**
 * Recency is a linked list through the map's values, not the Map's insertion order: deleting and
 * re-adding on every hit leaves holes at the front of V8's ordered table, which `keys().next()`
 * then walks past on every eviction (a walk of 20,000 entries spent most of its time there).
 */
export class ByteLru<K, V> {
  private readonly map = new Map<K, Node<K, V>>();
  private oldest: Node<K, V> | undefined;
  private newest: Node<K, V> | undefined;
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
    const n = this.map.get(key);
    if (n === undefined) return undefined;
    if (n !== this.newest) {
      this.unlink(n);
      this.append(n);
    }
    return n.value;
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
    const bytes = this.costOf(value, key);
    const had = this.map.get(key);
    if (had !== undefined && bytes <= this.maxBytes) {
      // Replaced in place: a Map delete and set of one key, over and over (a folder's inode on every
      // create in it), cost time in proportion to the Map's size in V8 (15 us at 20,000 entries).
      this.usedBytes += bytes - had.bytes;
      had.value = value;
      had.bytes = bytes;
      if (had !== this.newest) {
        this.unlink(had);
        this.append(had);
      }
      while (this.usedBytes > this.maxBytes && this.oldest !== undefined && this.oldest !== had) this.delete(this.oldest.key);
      return;
    }
    this.delete(key);
    if (bytes > this.maxBytes) return;
    const n: Node<K, V> = { key, value, bytes, older: undefined, newer: undefined };
    this.map.set(key, n);
    this.append(n);
    this.usedBytes += bytes;
    while (this.usedBytes > this.maxBytes && this.oldest !== undefined) this.delete(this.oldest.key);
  }

  /**
   * Adds `value` only when it fits beside what is kept, evicting nothing (a key already kept is
   * left as it is). For what a scan meets on the way: a walk bigger than the limit then neither
   * pushes out what is in use nor pays an eviction per entry.
   */
  offer(key: K, value: V): void {
    if (this.map.has(key)) return;
    const bytes = this.costOf(value, key);
    if (this.usedBytes + bytes > this.maxBytes) return;
    const n: Node<K, V> = { key, value, bytes, older: undefined, newer: undefined };
    this.map.set(key, n);
    this.append(n);
    this.usedBytes += bytes;
  }

  delete(key: K): boolean {
    const n = this.map.get(key);
    if (n === undefined) return false;
    this.map.delete(key);
    this.unlink(n);
    this.usedBytes -= n.bytes;
    return true;
  }

  clear(): void {
    this.map.clear();
    this.oldest = this.newest = undefined;
    this.usedBytes = 0;
  }

  private unlink(n: Node<K, V>): void {
    if (n.older) n.older.newer = n.newer;
    else this.oldest = n.newer;
    if (n.newer) n.newer.older = n.older;
    else this.newest = n.older;
    n.older = n.newer = undefined;
  }

  private append(n: Node<K, V>): void {
    n.older = this.newest;
    if (this.newest) this.newest.newer = n;
    else this.oldest = n;
    this.newest = n;
  }
}
