// The LMDB fixes fragfs builds lmdb-js with (src/store/lmdb-binding.ts): placed once each, refused
// on a source they were not written for, and present in this checkout's build after setup.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FragfsError } from '../../src/errors.js';
import { findFixedLmdb, lmdbPackageDir, MDB_FIXES, mdbSourceIsFixed, patchMdbSource } from '../../src/store/lmdb-binding.js';

test('each fix replaces its passage once, carries its mark, and a second patch changes nothing', (t) => {
  const source = `/* head */\n${MDB_FIXES.map((f) => `${f.old}\n/* between */\n`).join('')}/* tail */\n`;
  t.false(mdbSourceIsFixed(source));
  const once = patchMdbSource(source);
  t.true(once.changed);
  t.true(mdbSourceIsFixed(once.text));
  for (const f of MDB_FIXES) t.false(once.text.includes(f.old), f.mark);
  t.true(once.text.startsWith('/* head */\n') && once.text.endsWith('/* tail */\n'));
  t.deepEqual(patchMdbSource(once.text), { text: once.text, changed: false });
  // A source that has the first fix already gets only the second.
  const half = source.replace(MDB_FIXES[0]!.old, MDB_FIXES[0]!.new);
  t.is(patchMdbSource(half).text, once.text);
});

test('a source without a passage to fix is refused, not half patched', (t) => {
  const source = `${MDB_FIXES[0]!.old}\n`;
  const e = t.throws(() => patchMdbSource(source));
  t.true(e instanceof FragfsError && e.code === 'NOT_SUPPORTED', String(e));
  t.regex(e!.message, /ITS#10095/);
  const twice = `${MDB_FIXES[0]!.old}\n${MDB_FIXES[0]!.old}\n${MDB_FIXES[1]!.old}`;
  t.throws(() => patchMdbSource(twice), { message: /ITS#9496/ });
});

test("this checkout's lmdb-js carries both fixes and is the build lmdb-js loads", (t) => {
  const pkg = lmdbPackageDir();
  t.true(mdbSourceIsFixed(readFileSync(join(pkg, 'dependencies/lmdb/libraries/liblmdb/mdb.c'), 'latin1')), 'scripts/build-lmdb.sh patched mdb.c');
  t.deepEqual(findFixedLmdb(pkg), { dir: pkg, inPackage: true });
});
