// readSmallFiles: the addon's batched read of small files (local-fs.c, readSmallFiles) answers each
// regular file's bytes exactly, with fstats that match node:fs's; a missing path, a path through a
// file and a symlink (O_NOFOLLOW) fail with their errno; a FIFO and a folder are not read; a file of
// exactly the bound is read and one byte more is not; a batch far larger than put's comes back whole
// and in order.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { localAddon } from '../helpers/local-addon.js';
import { readSmallFiles } from '../../src/local/small-files.js';
import { tempDir } from '../helpers/stores.js';

const BOUND = 65535;

test('regular files byte for byte with both fstats; failures and non-files by errno and stage', async (t) => {
  const local = await localAddon(t);
  const tmp = await tempDir('small-files-');
  t.teardown(tmp.remove);
  const dir = tmp.path;
  const contents: Record<string, Buffer> = {
    text: Buffer.from('twelve bytes'),
    binary: Buffer.from([0, 0xff, 0, 1, 0x80, 0, 0, 0x7f]),
    empty: Buffer.alloc(0),
    zeros: Buffer.alloc(4096),
    bound: randomBytes(BOUND),
    over: randomBytes(BOUND + 1),
  };
  for (const [name, bytes] of Object.entries(contents)) await writeFile(join(dir, name), bytes);
  await symlink('text', join(dir, 'link'));
  await mkdir(join(dir, 'sub'));
  t.is(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0);
  const names = ['text', 'binary', 'empty', 'zeros', 'bound', 'over', 'link', 'sub', 'fifo', 'missing', 'text/inside'];
  const odd = Buffer.concat([Buffer.from(dir + '/caf'), Buffer.from([0xe9])]);
  await writeFile(odd, 'latin');
  const paths = [...names.map((n) => Buffer.from(join(dir, n))), odd];

  const got = await readSmallFiles(local, paths, BOUND);
  t.is(got.length, paths.length);
  for (const name of ['text', 'binary', 'empty', 'zeros', 'bound']) {
    const r = got[names.indexOf(name)]!;
    if (!r.ok) {
      t.fail(`${name}: ${r.stage} ${r.error?.code ?? ''}`);
      continue;
    }
    t.true(r.bytes.equals(contents[name]!), name);
    const st = await stat(join(dir, name), { bigint: true });
    t.deepEqual(
      [r.st.mode, r.st.uid, r.st.gid, BigInt(r.st.nlink), r.st.size, r.st.mtimeNs, r.st.ctimeNs, r.st.ino, r.st.dev],
      [st.mode, st.uid, st.gid, st.nlink, st.size, st.mtimeNs, st.ctimeNs, st.ino, st.dev],
      name,
    );
    t.deepEqual(r.after, { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }, name);
    t.true(r.startedNs % 1_000_000n === 0n && r.startedNs >= st.ctimeNs - 1_000_000n, name);
  }
  const last = got[paths.length - 1]!;
  t.true(last.ok && last.bytes.toString() === 'latin');
  const failed = (name: string): [string, string | undefined] => {
    const r = got[names.indexOf(name)]!;
    return r.ok ? ['read', undefined] : [r.stage, r.error?.code];
  };
  t.deepEqual(failed('over'), ['too-large', undefined]);
  t.deepEqual(failed('link'), ['open', 'ELOOP']);
  t.deepEqual(failed('sub'), ['not-regular', undefined]);
  t.deepEqual(failed('fifo'), ['not-regular', undefined], 'a FIFO is opened without blocking and not read');
  t.deepEqual(failed('missing'), ['open', 'ENOENT']);
  t.deepEqual(failed('text/inside'), ['open', 'ENOTDIR']);
});

test('each answer owns its bytes: detaching one leaves the others whole', async (t) => {
  const local = await localAddon(t);
  const tmp = await tempDir('small-files-own-');
  t.teardown(tmp.remove);
  const paths = [0, 1, 2].map((i) => Buffer.from(join(tmp.path, `f${i}`)));
  for (const [i, p] of paths.entries()) await writeFile(p, Buffer.alloc(100, i + 1));
  const got = await readSmallFiles(local, paths, BOUND);
  const bytes = got.map((r) => (r.ok ? r.bytes : Buffer.alloc(0)));
  const memory = bytes[0]!.buffer as ArrayBuffer;
  structuredClone(memory, { transfer: [memory] });
  t.is(bytes[0]!.length, 0);
  t.true(bytes[1]!.equals(Buffer.alloc(100, 2)));
  t.true(bytes[2]!.equals(Buffer.alloc(100, 3)));
});

test('a batch of 3,000 paths, every fifth one missing, comes back in order', async (t) => {
  const local = await localAddon(t);
  const tmp = await tempDir('small-files-big-');
  t.teardown(tmp.remove);
  const paths: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    const p = join(tmp.path, `f${i}`);
    if (i % 5 !== 0) await writeFile(p, Buffer.alloc(i, i % 251));
    paths.push(Buffer.from(p));
  }
  const got = await readSmallFiles(local, paths, BOUND);
  t.is(got.length, 3000);
  t.true(got.every((r, i) => (i % 5 === 0 ? !r.ok && r.error?.code === 'ENOENT' : r.ok && r.bytes.equals(Buffer.alloc(i, i % 251)))));
});

test('readSmallFiles refuses paths that do not match the count, and a bound of 4 GiB or more, before any call', async (t) => {
  const local = await localAddon(t);
  t.throws(() => local.readSmallFiles(Buffer.from('/a\0/b\0'), 3, 10), { message: /NUL-terminated/ });
  t.throws(() => local.readSmallFiles(Buffer.from('/a\0/b'), 1, 10), { message: /NUL-terminated/ });
  t.throws(() => local.readSmallFiles(Buffer.from('/a\0'), 1, 2 ** 32), { message: /maxBytes/ });
});
