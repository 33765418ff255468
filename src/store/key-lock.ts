// Serializes async operations on one key within this process: the split backend runs put, delete
// and the trash moves of one data fragment one at a time, because a put writes two files and a
// delete or purge may take a payload away for a moment (split-store.ts); within one process neither
// then sees the other half done.

/** Tail of the queue of each key that has an operation running or waiting. */
const tails = new Map<string, Promise<void>>();

/**
 * Runs `fn` once every operation queued before it under `key` has settled, and settles as `fn`
 * does. A failing operation does not block the ones after it. Keys with nothing queued hold no memory.
 */
export async function withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = tails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = before.then(() => mine);
  tails.set(key, tail);
  try {
    await before;
    return await fn();
  } finally {
    release();
    if (tails.get(key) === tail) tails.delete(key);
  }
}
