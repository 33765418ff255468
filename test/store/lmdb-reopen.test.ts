// LMDB opened by one process while another commits to it: fragfs does this all the time (gc, stats
// and verify read a running mount's live state; every command opens fragments.lmdb beside a mount).
// lmdb-js 3.5.6 as published let each opener write the shared transaction id, which rolled back the
// writer's commits (LMDB ITS#9496): reads came back wrong and commits failed "mdb_page_touch no
// parent". scripts/build-lmdb.sh builds lmdb-js with upstream's fix; this fails without it.

import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/stores.js';

const run = promisify(execFile);
const CHILD = new URL('./lmdb-reopen-child.js', import.meta.url).pathname;

test('a writer keeps every commit while another process opens and closes the environment hundreds of times', async (t) => {
  t.timeout(60_000);
  const tmp = await tempDir('fragfs-lmdb-reopen-');
  t.teardown(() => tmp.remove());
  const dir = join(tmp.path, 'env');
  // The environment exists before the reader's first open.
  await run(process.execPath, [CHILD, 'writer', dir, '200']);
  const [w, r] = await Promise.all([
    run(process.execPath, [CHILD, 'writer', dir, '6000']).catch((e: { stdout?: string; stderr?: string }) => e),
    run(process.execPath, [CHILD, 'reopener', dir, '6000']).catch((e: { stdout?: string; stderr?: string }) => e),
  ]);
  const opens = Number(/opens (\d+)/.exec(String(r.stdout))?.[1] ?? 0);
  t.log(`${String(w.stdout).trim()}; ${opens} read-only opens beside it`);
  t.true(opens >= 300, `the reader opened the environment ${opens} times: ${String(r.stderr)}`);
  t.regex(String(w.stdout), /writes \d+ bad 0\b/, `the writer's own commits read back wrong or failed: ${String(w.stdout)}${String(w.stderr)}`);
});
