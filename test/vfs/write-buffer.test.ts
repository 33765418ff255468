// WriteBuffer's bound on stores running at once is on the memory they hold: whole blocks take a
// slot each, small images a share of one (at least 1/16), so small files' stores overlap.

import test from 'ava';
import { WriteBuffer } from '../../src/vfs/write-buffer.js';

async function peakRunning(wb: WriteBuffer, n: number, weight: number): Promise<number> {
  let running = 0;
  let peak = 0;
  const release: (() => void)[] = [];
  const stores = Array.from({ length: n }, () =>
    wb.runStore(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => release.push(r));
      running--;
    }, weight),
  );
  // Let every store that may start start, then finish them one by one.
  for (let done = 0; done < n; ) {
    await new Promise((r) => setTimeout(r, 5));
    const batch = release.splice(0);
    for (const r of batch) r();
    done += batch.length;
  }
  await Promise.all(stores);
  return peak;
}

test('whole blocks run a slot each; 4 KiB images of 1 MiB blocks run sixteen to a slot', async (t) => {
  t.is(await peakRunning(new WriteBuffer(1 << 20, 2, 4), 40, 1), 2);
  t.is(await peakRunning(new WriteBuffer(1 << 20, 2, 4), 40, 4096 / (1 << 20)), 32);
  t.is(await peakRunning(new WriteBuffer(1 << 20, 2, 4), 40, 0.5), 4);
});
