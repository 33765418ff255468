// A Repo over an ObjectStore on an in-memory service (memory-objects.ts), with random keys: what a
// remote store is to the layers above, without a server. Its gc files live in that service, so a
// second backend opened on the same root plays a writer on another machine.

import { ObjectStore } from '../../src/remote/object-store.js';
import { Repo } from '../../src/repo/repo.js';
import type { MemoryObjectRoot } from './memory-objects.js';

export async function openObjectRepo(root: MemoryObjectRoot, o: { blockSize?: number } = {}): Promise<Repo> {
  return Repo.openMemory({ store: new ObjectStore(root.open()), threads: 2, ...(o.blockSize === undefined ? {} : { blockSize: o.blockSize }) });
}
