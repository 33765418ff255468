// Workloads (a) and (b): a sequential write of incompressible data through the folder, fsync at the end;
// then, after a remount with caches dropped, a cold sequential read, and a warm one right after.

import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { incompressible } from './data.js';
import type { MountInstance, StepContext } from './peer.js';
import { checkAbort, MB, timed, type MountWorkload, type StepOutput } from './workload.js';

const IO = 1 << 20;
let data: Buffer | undefined;

async function writeAll(path: string, buf: Buffer, signal: AbortSignal): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < buf.length; off += IO) {
      checkAbort(signal);
      const n = Math.min(IO, buf.length - off);
      let done = 0;
      while (done < n) done += (await fh.write(buf, off + done, n - done, off + done)).bytesWritten;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads the whole file; checks its length and its first and last MiB against what was written. */
async function readAll(path: string, expect: Buffer, signal: AbortSignal): Promise<void> {
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(IO);
  let pos = 0;
  try {
    for (;;) {
      checkAbort(signal);
      const { bytesRead } = await fh.read(buf, 0, IO, pos);
      if (bytesRead === 0) break;
      if ((pos === 0 || pos + bytesRead === expect.length) && !buf.subarray(0, bytesRead).equals(expect.subarray(pos, pos + bytesRead)))
        throw new Error(`read back different bytes at offset ${pos}`);
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  if (pos !== expect.length) throw new Error(`read back ${pos} bytes of ${expect.length}`);
}

export const seqWorkload: MountWorkload = {
  id: 'seq',
  title: 'Sequential write and read',
  short: 'sequential write and read',
  peerKind: 'mount',
  describe: (s) =>
    `(a) write ${s.seqBytes / (1 << 20)} MiB of incompressible data in 1 MiB writes, fsync, close; (b) unmount, drop caches, mount, read it all (cold), read it again (warm). MB = 10^6 bytes.`,
  metrics: [
    { id: 'write', section: 'a', label: 'sequential write', unit: 'MB/s', better: 'higher' },
    { id: 'readCold', section: 'b', label: 'sequential read, cold', unit: 'MB/s', better: 'higher' },
    { id: 'readWarm', section: 'b', label: 'sequential read, warm', unit: 'MB/s', better: 'higher' },
  ],
  async prepare({ sizes }) {
    data = incompressible(sizes.seqBytes, 'seq');
  },
  async run(inst: MountInstance, ctx: StepContext): Promise<StepOutput> {
    if (!data) throw new Error('seq: not prepared');
    const buf = data;
    const file = join(inst.root, 'seq.bin');
    const w = await timed(() => writeAll(file, buf, ctx.signal));
    await inst.remount();
    const cold = await timed(() => readAll(file, buf, ctx.signal));
    const warm = await timed(() => readAll(file, buf, ctx.signal));
    return { values: { write: buf.length / MB / w, readCold: buf.length / MB / cold, readWarm: buf.length / MB / warm } };
  },
};
