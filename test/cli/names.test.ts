// Snapshot names through the CLI: a name that cannot be one is a usage error (exit 2, one line)
// before a passphrase is asked for or anything is written.

import test, { type ExecutionContext } from 'ava';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lastLine, runCli, type CliResult } from '../helpers/cli.js';
import { createStore, tempDir } from '../helpers/stores.js';

let work: Awaited<ReturnType<typeof tempDir>>;
let store: string;
let tree: string;

test.before(async () => {
  work = await tempDir('fragfs-cli-names-');
  store = join(work.path, 'store');
  tree = join(work.path, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'a.txt'), 'hello\n');
  await createStore(store, 'dir');
});

test.after.always(async () => {
  await work?.remove();
});

function usage(t: ExecutionContext, r: CliResult, pattern: RegExp): void {
  t.is(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, `one line: ${r.stderr}`);
  t.regex(lines[0]!, /^fragfs: --name /);
  t.regex(lines[0]!, pattern);
}

/** Every file under the store folder (fragments, config), to see that nothing was written. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath ?? e.path, e.name));
  }
  return out.sort();
}

test.serial('put --name refuses empty, multi-line, path-like and key-like names before storing anything', async (t) => {
  const before = await files(store);
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['two\nlines', /control character/],
    ['../x', /'\/'/],
    ['..', /"\.\."/],
    ['12345678', /hex digits/],
    ['x'.repeat(256), /255 bytes/],
  ];
  for (const [name, why] of cases) {
    // No passphrase in the environment: the name is refused before one is needed.
    usage(t, await runCli(['put', store, tree, '--name', name], { env: { FRAGFS_PASSPHRASE: undefined } }), why);
  }
  t.deepEqual(await files(store), before, 'the store is unchanged');
  const ok = await runCli(['put', store, tree, '--name', 'monday']);
  t.is(ok.code, 0, ok.stderr);
  const key = lastLine(ok.stdout);
  const cat = await runCli(['cat', store, 'monday/a.txt']);
  t.is(cat.stdout, 'hello\n');
  const ls = await runCli(['ls', store, key.slice(0, 8)]);
  t.is(ls.code, 0, ls.stderr);
});

test.serial('snapshot --name is checked before the store is locked or the live state opened', async (t) => {
  const before = await readdir(store);
  for (const name of ['', 'a\nb', 'x/y', 'cafebabe00']) {
    usage(t, await runCli(['snapshot', store, '--name', name], { env: { FRAGFS_PASSPHRASE: undefined } }), /cannot name a snapshot/);
  }
  t.deepEqual(await readdir(store), before, 'no live/ folder was made');
});

test.serial('an unknown or too short key says how a snapshot may be given', async (t) => {
  for (const text of ['abc', '0123456789', 'no-such-name']) {
    const r = await runCli(['ls', store, text]);
    t.is(r.code, 5, r.stderr);
    t.regex(r.stderr, /64 hex digits, a unique prefix of 8 or more, or its name/);
  }
});
