// Store backend throughput: put then get of N x 1 MiB random fragments (default 1 GiB) on each
// on-disk backend with a fixed number of concurrent operations, printing MB/s (1 MB = 10^6 bytes).
// Usage: node dist/scripts/bench-store.js [--count 1024] [--size-kib 1024] [--concurrency 8]
//        [--backends lmdb,dir,split] [--dir <parent of the temp stores, default os.tmpdir()>]

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openBackend } from '../src/store/open-backend.js';
import { BACKEND_NAMES, type BackendName, type Namespace } from '../src/store/store.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1024' },
    'size-kib': { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '8' },
    backends: { type: 'string', default: 'lmdb,dir,split' },
    dir: { type: 'string', default: tmpdir() },
  },
});
const count = Number(values.count);
const size = Number(values['size-kib']) * 1024;
const concurrency = Number(values.concurrency);
const backends = values.backends.split(',') as BackendName[];
for (const b of backends) if (!BACKEND_NAMES.includes(b)) throw new Error(`unknown backend ${b}`);

// A pool of distinct random buffers, reused under fresh ids: backends neither compress nor dedup
// by content, so this measures the same I/O as `count` distinct fragments without 1 GiB of RAM.
const POOL = 64;
const pool = Array.from({ length: POOL }, () => {
  const b = randomBytes(size);
  b[0] = 0xc0; // an encoded block's status byte: split stores it as payload + header
  return b;
});
const ns: Namespace = { space: 'bench', kind: 'data' };

async function runPool(n: number, op: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await op(next++);
    }),
  );
}

function mbps(bytes: number, ms: number): string {
  return ((bytes / 1e6) / (ms / 1000)).toFixed(0);
}

console.log(
  `bench-store: ${count} x ${size / 1024} KiB fragments (${((count * size) / 2 ** 30).toFixed(2)} GiB), ` +
    `${concurrency} concurrent ops, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, under ${values.dir}`,
);
for (const backend of backends) {
  const dir = await mkdtemp(join(values.dir, `fragfs-bench-${backend}-`));
  try {
    const ids = Array.from({ length: count }, () => randomBytes(32).toString('hex'));
    let store = await openBackend(backend, dir);
    let t0 = performance.now();
    await runPool(count, (i) => store.put(ns, ids[i]!, pool[i % POOL]!));
    await store.sync(); // count the batched directory fsyncs of dir/split too
    const putMs = performance.now() - t0;
    await store.close();

    // Reopen so reads do not start from any in-process state; the page cache stays warm.
    store = await openBackend(backend, dir);
    t0 = performance.now();
    let readBytes = 0;
    await runPool(count, async (i) => {
      const got = await store.get(ns, ids[i]!);
      readBytes += got.length; // after the await: `x += await y` would read x before it
    });
    const getMs = performance.now() - t0;
    await store.close();
    if (readBytes !== count * size) throw new Error(`${backend}: read ${readBytes} bytes, expected ${count * size}`);
    console.log(
      `${backend.padEnd(6)} put ${mbps(count * size, putMs).padStart(5)} MB/s (${(putMs / 1000).toFixed(2)} s)   ` +
        `get ${mbps(readBytes, getMs).padStart(5)} MB/s (${(getMs / 1000).toFixed(2)} s)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
