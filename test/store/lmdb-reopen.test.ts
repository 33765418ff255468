// LMDB opened by one process while another commits to it: fragfs does this all the time (gc, stats
// and verify read a running mount's live state; every command opens fragments.lmdb beside a mount).
// lmdb-js 3.5.6 as published let each opener write the shared transaction id, which rolled back the
// writer's commits (LMDB ITS#9496): reads came back wrong and commits failed "mdb_page_touch no
// parent". It also let the last process to close destroy the lock file's mutexes while another
// waited to open (LMDB ITS#10095): that one's transactions then failed EINVAL. The two openers
// here outlive the writer by a second, so they close and open alone as well.
// scripts/build-lmdb.sh builds lmdb-js with upstream's fixes; this fails without either.

import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/stores.js';

const run = promisify(execFile);
const CHILD = new URL('./lmdb-reopen-child.js', import.meta.url).pathname;

test('a writer keeps every commit while two other processes open and close the environment hundreds of times', async (t) => {
  t.timeout(60_000);
  const tmp = await tempDir('fragfs-lmdb-reopen-');
  t.teardown(() => tmp.remove());
  const dir = join(tmp.path, 'env');
  // The environment exists before the reader's first open.
  await run(process.execPath, [CHILD, 'writer', dir, '200']);
  const child = (role: string, ms: number) =>
    run(process.execPath, [CHILD, role, dir, String(ms)]).catch((e: { stdout?: string; stderr?: string }) => e);
  const [w, ...readers] = await Promise.all([child('writer', 6000), child('reopener', 7000), child('reopener', 7000)]);
  const opens = readers.map((r) => Number(/opens (\d+)/.exec(String(r.stdout))?.[1] ?? 0));
  t.log(`${String(w.stdout).trim()}; ${opens.join(' and ')} read-only opens beside it`);
  for (const [i, r] of readers.entries()) {
    t.true(opens[i]! >= 300, `a reader opened the environment ${opens[i]} times: ${String(r.stderr)}`);
  }
  t.regex(String(w.stdout), /writes \d+ bad 0\b/, `the writer's own commits read back wrong or failed: ${String(w.stdout)}${String(w.stderr)}`);
});
