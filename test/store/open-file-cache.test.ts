// Read handles a file-tree store keeps between range reads: they read what a fresh open reads, are
// bounded in number, let go of a file the store is about to move, and close when idle.

import test from 'ava';
import { readdir, readlink, mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDLE_CLOSE_MS, OpenFileCache } from '../../src/store/open-file-cache.js';

/** Paths this process holds open now (Linux: /proc/self/fd). */
async function openPaths(): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    try {
      out.push(await readlink(`/proc/self/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

async function read(c: OpenFileCache, path: string, offset: number, length: number): Promise<string> {
  return c.with(path, async (fh) => {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf.toString();
  });
}

test('reads through a kept handle, bounded in number, forgotten before a move, closed when idle', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-ofc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = Array.from({ length: 6 }, (_, i) => join(dir, `f${i}`));
  for (const [i, f] of files.entries()) await writeFile(f, `file number ${i}`);
  const c = new OpenFileCache(4);
  for (const f of files) t.is(await read(c, f, 5, 6), 'number');
  t.is(await read(c, files[5]!, 12, 1), '5');
  const held = (await openPaths()).filter((p) => p.startsWith(dir));
  t.true(held.length <= 4, `${held.length} handles kept`);
  t.true(held.includes(files[5]!));

  // Forgotten before the store moves it: the handle goes, and the next read opens the new place.
  c.forget(files[5]!);
  await new Promise((r) => setTimeout(r, 20));
  t.false((await openPaths()).includes(files[5]!));
  await rename(files[5]!, join(dir, 'moved'));
  await t.throwsAsync(read(c, files[5]!, 0, 4), { code: 'ENOENT' });

  // Idle handles close on their own.
  await new Promise((r) => setTimeout(r, 2 * IDLE_CLOSE_MS + 200));
  t.deepEqual((await openPaths()).filter((p) => p.startsWith(dir)), []);
  await c.closeAll();
});

test('closeAll closes every handle', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fragfs-ofc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const c = new OpenFileCache();
  for (let i = 0; i < 10; i++) {
    await writeFile(join(dir, `f${i}`), 'x');
    await read(c, join(dir, `f${i}`), 0, 1);
  }
  t.is((await openPaths()).filter((p) => p.startsWith(dir)).length, 10);
  await c.closeAll();
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual((await openPaths()).filter((p) => p.startsWith(dir)), []);
});
