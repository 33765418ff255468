// The rclone backend through `rclone serve restic --stdio` on an on-the-fly local remote (`:local:`
// and a temporary folder, so no server and no rclone config): the object and Store conformance
// suites, the key mapping of rclone-names.ts with its awkward keys, a missing program, a child
// killed or a call aborted mid-way, and the modes of what rclone creates.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { FragfsError } from '../../src/errors.js';
import type { ObjectBackend } from '../../src/remote/object-backend.js';
import { RcloneBackend, openRcloneBackend } from '../../src/remote/rclone-backend.js';
import { keyOfName, listPaths, nameOfKey, objectPath } from '../../src/remote/rclone-names.js';
import { RemoteFailure } from '../../src/remote/remote-failure.js';
import { ResilientBackend } from '../../src/remote/resilient-backend.js';
import { runObjectConformance } from './object-conformance.js';

function hasRclone(): boolean {
  const given = process.env['FRAGFS_RCLONE'];
  const candidates = given ? [given] : (process.env['PATH'] ?? '').split(delimiter).map((d) => join(d, 'rclone'));
  return candidates.some((c) => {
    try {
      accessSync(c, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

async function freshFolder(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'fragfs-rclone-'));
}

async function openLocal(dir: string): Promise<RcloneBackend> {
  return (await openRcloneBackend({ scheme: 'rclone', remote: `:local:${dir}` })) as RcloneBackend;
}

async function listAll(b: ObjectBackend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of b.list(prefix)) out.push(e.key);
  return out.sort();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (const started = Date.now(); !cond(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() - started > 10_000) throw new Error(`timed out waiting until ${what}`);
  }
}

// The mapping needs no rclone.
test('rclone names: self-describing names, data fan-out for fragment keys, case escaped', (t) => {
  const id = 'ab' + '12'.repeat(31);
  t.is(objectPath(`default/objects/ab/${id}`), `/default/objects/data/${id}+ab+objects+default`);
  t.is(objectPath(`default/trash/meta/ab/${id}`), `/default/trash/meta/data/${id}+ab+meta+trash+default`);
  t.is(objectPath(`default/refs/${id}`), `/default/refs/keys/${id}+refs+default`);
  t.is(objectPath('fragfs.json'), '/keys/fragfs.json+');
  t.is(objectPath('lease/default'), '/lease/keys/default+lease');
  t.is(objectPath('Gc/Default/mark'), '/=gc/=default/keys/mark+=default+=gc');
  for (const key of ['fragfs.json', 'a/b', 'A/b', 'a/B', 'x/data/ab/abcd', 'keys/fragfs.json/x', `s/objects/ab/${id}`, 'a.b/-_/Z9']) {
    t.is(keyOfName(nameOfKey(key)), key);
    t.false(objectPath(key).slice(1).split('/').slice(0, -1).join('/').includes('+'), 'no folder holds a +');
  }
  t.is(nameOfKey('A/b') === nameOfKey('a/b'), false);
  for (const stray of ['notes.txt', '+a', 'a++b', 'A+b', 'a+..', 'x=+y', 'a b+c']) t.is(keyOfName(stray), undefined, stray);
  t.deepEqual(listPaths(''), ['/']);
  t.deepEqual(listPaths('default/objects/'), ['/default/objects/']);
  t.deepEqual(listPaths('default/objects/ab/'), ['/default/objects/ab/', '/default/objects/data/']);
  // rclone would fan a listing of x/data/ab out to x/data/ab/ab: its parent is listed instead.
  t.deepEqual(listPaths('x/data/ab/'), ['/x/data/']);
  t.deepEqual(listPaths('data/data/'), ['/data/']);
  t.throws(() => objectPath(`${'a'.repeat(200)}/${'b'.repeat(100)}`), { instanceOf: FragfsError });
});

if (!hasRclone()) {
  const why = 'rclone: the rclone program is missing (install it: scripts/setup.sh does; or set FRAGFS_RCLONE)';
  if (process.env['CI']) {
    test(why, (t) => {
      t.log(why);
      t.fail('the rclone tests need rclone under CI');
    });
  } else {
    test.skip(why, () => undefined);
  }
} else {
  runObjectConformance(test, 'rclone', async () => {
    const dir = await freshFolder();
    return { open: () => openLocal(dir), remove: () => rm(dir, { recursive: true, force: true }) };
  });

  test('rclone: awkward keys (data/keys folders, fan-out prefixes, case) never alias and list exactly', async (t) => {
    const dir = await freshFolder();
    const b = await openLocal(dir);
    try {
      const id = 'ab' + 'cd'.repeat(31);
      const keys = [
        'fragfs.json',
        'keys/fragfs.json/x',
        'data/ab',
        'data/data/ab/abx',
        'x/ab/abcd',
        'x/data/ab/abcd',
        'x/data/abcd',
        'x/keys/k',
        'X/keys/k',
        'ab/abab',
        'ab/zz',
        `s/objects/ab/${id}`,
        `s/trash/objects/ab/${id}`,
        `s/refs/${id}`,
        'lease/s',
        'gc/s/mark',
      ];
      await Promise.all(keys.map((k, i) => b.put(k, Buffer.from(`v${i}`))));
      for (const [i, k] of keys.entries()) t.is(Buffer.from((await b.get(k))!).toString(), `v${i}`, k);
      const prefixes = new Set(['']);
      for (const k of keys) {
        const segs = k.split('/');
        for (let n = 1; n < segs.length; n++) prefixes.add(`${segs.slice(0, n).join('/')}/`);
      }
      for (const p of prefixes) t.deepEqual(await listAll(b, p), keys.filter((k) => k.startsWith(p)).sort(), `list ${p || '(all)'}`);
    } finally {
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('rclone: each object ends with a 16-byte trailer; a prefix left by a cut-off write is refused, never returned', async (t) => {
    const dir = await freshFolder();
    const b = await openLocal(dir);
    try {
      const bytes = randomBytes(100_000);
      await b.put('t/obj', bytes);
      const file = join(dir, 't', 'keys', 'obj+t');
      const stored = await readFile(file);
      t.is(stored.byteLength, bytes.byteLength + 16);
      t.true(stored.subarray(0, bytes.byteLength).equals(bytes));
      t.is(await b.size('t/obj'), bytes.byteLength);
      t.deepEqual(
        (await (async () => {
          const out = [];
          for await (const e of b.list('t/')) out.push(e);
          return out;
        })()),
        [{ key: 't/obj', size: bytes.byteLength }],
      );
      // What rclone's local remote leaves when it is killed in the middle of a put.
      await writeFile(file, stored.subarray(0, 65_536));
      const e = await t.throwsAsync(b.get('t/obj'), { instanceOf: RemoteFailure });
      t.is((e as RemoteFailure).kind, 'retry');
      t.regex(e!.message, /incomplete/);
    } finally {
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('rclone: a missing program is one line saying to install rclone', async (t) => {
    const saved = process.env['FRAGFS_RCLONE'];
    process.env['FRAGFS_RCLONE'] = '/nonexistent';
    // The program is looked up before the first await: the variable is put back at once, so the
    // tests running beside this one never see it.
    const opening = openRcloneBackend({ scheme: 'rclone', remote: ':local:/tmp' });
    if (saved === undefined) delete process.env['FRAGFS_RCLONE'];
    else process.env['FRAGFS_RCLONE'] = saved;
    const e = await t.throwsAsync(opening, { instanceOf: FragfsError });
    t.is(e!.code, 'NOT_SUPPORTED');
    t.false(e!.message.includes('\n'));
    t.regex(e!.message, /\/nonexistent.*install.*rclone/);
  });

  test('rclone: a remote rclone cannot open fails at once, with what rclone said', async (t) => {
    const b = new ResilientBackend(await openRcloneBackend({ scheme: 'rclone', remote: 'fragfs-no-such-remote:x' }), { backoffMs: 1 });
    try {
      const e = await t.throwsAsync(b.get('a/b'), { instanceOf: FragfsError });
      t.is(e!.code, 'REMOTE');
      t.false(e!.message.includes('\n'));
      t.regex(e!.message, /fragfs-no-such-remote/);
      t.is(b.retries, 0);
    } finally {
      await b.close();
    }
  });

  test('rclone: a child killed mid-call fails that call with retry, and the next call respawns it', async (t) => {
    const dir = await freshFolder();
    const b = await openLocal(dir);
    try {
      t.true(await b.put('k/one', Buffer.from('one')));
      const pid = b.pid!;
      t.true(alive(pid));
      const big = b.put('k/big', randomBytes(64 * 1024 * 1024));
      process.kill(pid, 'SIGKILL');
      const e = await t.throwsAsync(big, { instanceOf: RemoteFailure });
      t.is((e as RemoteFailure).kind, 'retry');
      t.false(e!.message.includes('\n'));
      await until('the child is gone', () => !alive(pid));
      t.is(Buffer.from((await b.get('k/one'))!).toString(), 'one');
      t.not(b.pid, pid);
      t.true(await b.put('k/two', Buffer.from('two')));
      // The killed upload may have left a prefix of k/big (rclone's local remote writes in place).
      t.deepEqual((await listAll(b, 'k/')).filter((k) => k !== 'k/big'), ['k/one', 'k/two']);
      // Through the retry layer a call that meets a dead child is retried and succeeds.
      const r = new ResilientBackend(b, { backoffMs: 1 });
      process.kill(b.pid!, 'SIGKILL');
      t.is(Buffer.from((await r.get('k/two'))!).toString(), 'two');
    } finally {
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('rclone: an aborted call rejects at once; close ends the child', async (t) => {
    const dir = await freshFolder();
    const b = await openLocal(dir);
    try {
      await b.put('a/small', Buffer.from('x'));
      const ac = new AbortController();
      const started = Date.now();
      const put = b.put('a/big', randomBytes(64 * 1024 * 1024), { signal: ac.signal });
      setTimeout(() => ac.abort(new RemoteFailure('retry', 'test abort')), 5);
      await t.throwsAsync(put, { message: 'test abort' });
      t.true(Date.now() - started < 10_000);
      t.is(Buffer.from((await b.get('a/small'))!).toString(), 'x');
      const pid = b.pid!;
      await b.close();
      t.false(alive(pid));
    } finally {
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('rclone: the local remote creates files 0600 and folders 0700 (the child runs under umask 077)', async (t) => {
    const dir = await freshFolder();
    const b = await openLocal(dir);
    try {
      await b.put('fragfs.json', Buffer.from('{}'));
      await b.put(`s/objects/ab/ab${'0'.repeat(62)}`, Buffer.from('f'));
      await b.put('gc/s/mark', Buffer.from('m'));
      const modes: string[] = [];
      const walk = async (d: string): Promise<void> => {
        for (const name of await readdir(d)) {
          const p = join(d, name);
          const st = await lstat(p);
          modes.push(`${(st.mode & 0o777).toString(8)} ${st.isDirectory() ? 'dir' : 'file'} ${p.slice(dir.length)}`);
          if (st.isDirectory()) await walk(p);
        }
      };
      await walk(dir);
      t.true(modes.length >= 10, modes.join('\n'));
      for (const m of modes) t.regex(m, /^(700 dir|600 file) /);
    } finally {
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
