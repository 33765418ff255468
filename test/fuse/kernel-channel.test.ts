// Real mounts through the kernel-protocol addon: names as bytes end to end, readdir and readdirplus,
// 1 MiB requests, one reply per request (checked), INTERRUPT, unmount and process death, a mount by a
// user other than root. This process serves the toy filesystems it mounts, so it never touches a
// mount point synchronously: child processes (python3, dd, ls, stat) do.

import test, { type ExecutionContext } from 'ava';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  Attr as A,
  ensureKernelBinding,
  InitFlag,
  type KernelMountOptions,
  Op,
} from '../../src/fuse/kernel-binding.js';
import { type ToyOptions, ToyFs } from './kernel-toy-fs.js';

const E = osConstants.errno;
const MiB = 1024 * 1024;
const TOY_PROGRAM = fileURLToPath(new URL('./kernel-toy-fs.js', import.meta.url));

const haveFuse = existsSync('/dev/fuse');
if (!haveFuse) console.log('kernel-channel: /dev/fuse is missing, so every mount test here is skipped');
const withFuse = haveFuse ? test : test.skip;

interface Ran {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell; never rejects (the caller checks code), killed after timeoutMs. */
function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<Ran> {
  return new Promise((done) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * MiB, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      done({
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stdout,
        stderr,
      });
    });
  });
}

async function ok(t: ExecutionContext, cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0) t.fail(`${cmd} ${args.join(' ')} -> ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

const py = (t: ExecutionContext, script: string, ...args: string[]) => ok(t, 'python3', ['-c', script, ...args]);

const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

async function isMounted(mp: string): Promise<boolean> {
  return (await readFile('/proc/self/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === mp);
}

/** Unmounts (lazily if a plain unmount fails) and removes the folder; never throws. */
async function cleanup(mp: string): Promise<void> {
  if (await isMounted(mp)) {
    const r = await run('fusermount', ['-u', mp], 10_000);
    if (r.code !== 0) await run('fusermount', ['-u', '-z', mp], 10_000);
  }
  await rmdir(mp).catch(() => undefined);
}

/** Mounts a toy fs served by this process; the teardown unmounts it and waits for EXIT. */
async function mountToy(t: ExecutionContext, toy: ToyOptions = {}, options: KernelMountOptions = {}) {
  const binding = await ensureKernelBinding();
  const mp = await mkdtemp(join(tmpdir(), 'fragfs-kc-'));
  const fs = new ToyFs(binding, toy);
  try {
    fs.mount(mp, options);
  } catch (e) {
    await rmdir(mp);
    throw e;
  }
  const released = () => {
    try {
      binding.info(fs.handle!);
      return false;
    } catch {
      return true;
    }
  };
  t.teardown(async () => {
    const wasReleased = released(); // by the test itself: no EXIT will come
    await cleanup(mp);
    const exited = wasReleased || (await Promise.race([fs.exited.then(() => true), delay(5000).then(() => false)]));
    if (!exited) binding.release(fs.handle!);
    if (fs.replyErrors.length > 0) throw new Error(`replies of the toy fs threw: ${fs.replyErrors.map(String).join('; ')}`);
  });
  return { binding, fs, mp, handle: fs.handle! };
}

/** Starts the toy fs program in a child (optionally through a prefix such as setpriv), resolves once it is mounted. */
async function spawnToy(
  t: ExecutionContext,
  mp: string,
  prefix: string[] = [],
  flags: string[] = [],
): Promise<{ child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> }> {
  const argv = [...prefix, process.execPath, TOY_PROGRAM, mp, ...flags];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': the child's last output can still be in the pipe when 'exit' comes.
  let closed = false;
  const exit = new Promise<number | null>((done) =>
    child.on('close', (code) => {
      closed = true;
      done(code);
    }),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
    await cleanup(mp);
  });
  const ready = await Promise.race([
    (async () => {
      // Until 'close', not until the exit code: a child that exits soon after mounting
      // (--exit-after-ms) may have its 'ready' still in the pipe when its exit code is known.
      while (!out.includes('ready') && !closed) await delay(20);
      return out.includes('ready');
    })(),
    delay(30_000).then(() => false),
  ]);
  if (!ready) throw new Error(`the toy fs did not mount: ${err.trim() || out.trim()}`);
  return { child, out: () => out, err: () => err, exit };
}

/** Waits for a promise up to ms; 'timeout' when it did not settle. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, delay(ms).then(() => 'timeout' as const)]);
}

test('the Op table equals the addon\'s opcodes()', async (t) => {
  const binding = await ensureKernelBinding();
  t.deepEqual(binding.opcodes(), { ...Op });
});

test('bad arguments throw TypeErrors and never crash', async (t) => {
  const b = await ensureKernelBinding();
  t.throws(() => b.replyErr('1' as unknown as number, 5), { instanceOf: TypeError });
  t.throws(() => (b.replyErr as (u: number) => void)(1), { instanceOf: TypeError });
  t.throws(() => b.replyErr(1.5, 5), { instanceOf: TypeError });
  t.throws(() => b.replyErr(123456789, 5), { message: /request 123456789 is not awaiting a reply/ });
  t.throws(() => b.replyErr(0, 5), { message: /request 0 is not awaiting a reply/ });
  t.throws(() => b.release({}), { instanceOf: TypeError });
  t.throws(() => b.info({}), { instanceOf: TypeError });
  t.throws(() => b.mount('relative', {}, () => undefined), { instanceOf: TypeError });
  t.throws(() => b.mount('/tmp', { maxWriteBytes: 100 }, () => undefined), { instanceOf: TypeError });
  t.throws(() => b.mount('/tmp', { subtype: 'a,b' }, () => undefined), { instanceOf: TypeError });
  t.throws(() => b.mount('/tmp', { readOnly: 1 as unknown as boolean }, () => undefined), { instanceOf: TypeError });
  t.throws(() => b.mount('/tmp', {}, 'x' as unknown as () => void), { instanceOf: TypeError });
  t.throws(() => b.replyDir(1, 4096, ['x' as unknown as Buffer], [1], [0], [1]), { message: /not awaiting/ });
  await t.throwsAsync(async () => b.notifyInvalInode({}, 1, 0, 0), { instanceOf: TypeError });
});

withFuse('a mount that fails is an Error with the reason', async (t) => {
  const b = await ensureKernelBinding();
  t.throws(() => b.mount('/nonexistent/fragfs-kc', {}, () => undefined), { message: /No such file or directory|fusermount/ });
});

withFuse('names are bytes: every byte but / and NUL, two names differing in one byte are two files, 255 bytes at most', async (t) => {
  const { fs, mp } = await mountToy(t, { deferReplies: true });
  const out = await py(
    t,
    `
import os, sys, json, errno
os.chdir(sys.argv[1])
for i in range(1, 256):
    if i == 0x2f: continue
    fd = os.open(b'a' + bytes([i]), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, bytes([i, i, i]))
    os.close(fd)
listed = sorted(os.listdir(b'.'))
def read(n):
    with open(n, 'rb') as f: return f.read().hex()
fd = os.open(b'x' * 255, os.O_CREAT | os.O_WRONLY, 0o644); os.close(fd)
try:
    os.open(b'y' * 256, os.O_CREAT | os.O_WRONLY, 0o644); too_long = 'created'
except OSError as e:
    too_long = errno.errorcode[e.errno]
try:
    os.stat(b'z' * 256); stat_long = 'found'
except OSError as e:
    stat_long = errno.errorcode[e.errno]
print(json.dumps({'listed': [n.hex() for n in listed], 'ff': read(b'a\\xff'), 'fe': read(b'a\\xfe'),
                  'long': os.path.exists(b'x' * 255), 'too_long': too_long, 'stat_long': stat_long}))
`,
    mp,
  );
  const r = JSON.parse(out) as { listed: string[]; ff: string; fe: string; long: boolean; too_long: string; stat_long: string };
  const expected: string[] = [];
  for (let i = 1; i < 256; i++) if (i !== 0x2f) expected.push(Buffer.from([0x61, i]).toString('hex'));
  t.deepEqual(r.listed, [...expected].sort());
  expected.push(Buffer.alloc(255, 'x').toString('hex'));
  t.is(r.ff, 'ffffff');
  t.is(r.fe, 'fefefe');
  t.true(r.long);
  t.is(r.too_long, 'ENAMETOOLONG');
  t.is(r.stat_long, 'ENAMETOOLONG');
  // The fs got the very bytes, and no 256-byte name reached it.
  const stored = [...fs.nodes.get(1)!.children!.keys()].map((k) => Buffer.from(k, 'latin1').toString('hex')).sort();
  t.deepEqual(stored, expected.sort());
  t.deepEqual(fs.fileData(Buffer.from([0x61, 0xff])), Buffer.from([0xff, 0xff, 0xff]));
  t.deepEqual(fs.fileData(Buffer.from([0x61, 0xfe])), Buffer.from([0xfe, 0xfe, 0xfe]));
});

for (const readdirplus of [false, true]) {
  withFuse(`readdir${readdirplus ? 'plus' : ''}: ls -la lists every entry${readdirplus ? '; entries come with attributes, so no LOOKUP follows' : ''}`, async (t) => {
    const { fs, mp, binding, handle } = await mountToy(t, { entryTimeoutS: 60, attrTimeoutS: 60 }, { readdirplus });
    t.is((binding.info(handle).flags & InitFlag.DO_READDIRPLUS) !== 0, readdirplus);
    const names: string[] = [];
    for (let i = 0; i < 40; i++) {
      const name = `file-${String(i).padStart(2, '0')}`;
      names.push(name);
      fs.addFile(1, Buffer.from(name), Buffer.alloc(i * 100, i));
    }
    fs.resetCounts();
    const listing = await ok(t, 'ls', ['-la', mp]);
    const rows = listing.split('\n').filter((l) => /file-\d\d$/.test(l));
    t.deepEqual(rows.map((l) => l.split(/\s+/).at(-1)), names);
    t.deepEqual(rows.map((l) => Number(l.split(/\s+/)[4])), names.map((_n, i) => i * 100));
    if (readdirplus) {
      t.true(fs.count(Op.READDIRPLUS) > 0);
      t.is(fs.count(Op.READDIR), 0);
      t.is(fs.count(Op.LOOKUP), 0, 'ls -la needed no LOOKUP');
      fs.resetCounts();
      await ok(t, 'stat', names.map((n) => join(mp, n)));
      t.is(fs.count(Op.LOOKUP), 0, 'stat needed no LOOKUP');
      t.is(fs.count(Op.GETATTR), 0);
      // 40 files, each one lookup reference from READDIRPLUS.
      t.deepEqual(names.map((n) => fs.nodes.get(fs.nodes.get(1)!.children!.get(n)!)!.lookups), names.map(() => 1));
    } else {
      t.true(fs.count(Op.READDIR) > 0);
      t.is(fs.count(Op.READDIRPLUS), 0);
      t.true(fs.count(Op.LOOKUP) >= 40);
    }
  });
}

withFuse('large requests: 1 MiB writes and reads with O_DIRECT, 1 MiB write-back with the writeback cache, data intact', async (t) => {
  const { fs, mp, binding, handle } = await mountToy(t, {}, { maxWriteBytes: MiB });
  const info = binding.info(handle);
  t.is(info.maxWrite, MiB);
  t.is(info.maxRead, MiB);
  t.is(info.maxPages, 256);
  t.true((info.flags & InitFlag.MAX_PAGES) !== 0);
  const src = join(tmpdir(), `fragfs-kc-src-${process.pid}-${Date.now()}`);
  t.teardown(() => rm(src, { force: true }));
  const data = randomBytes(8 * MiB);
  await writeFile(src, data);
  fs.resetCounts();
  await ok(t, 'dd', [`if=${src}`, `of=${mp}/f`, 'bs=1M', 'count=8', 'oflag=direct', 'status=none']);
  t.deepEqual(fs.writeSizes, Array(8).fill(MiB));
  t.true(fs.fileData(Buffer.from('f'))!.equals(data));
  fs.resetCounts();
  const back = join(tmpdir(), `fragfs-kc-back-${process.pid}-${Date.now()}`);
  t.teardown(() => rm(back, { force: true }));
  await ok(t, 'dd', [`if=${mp}/f`, `of=${back}`, 'bs=1M', 'iflag=direct', 'status=none']);
  t.true(fs.readSizes.length >= 8);
  t.deepEqual(fs.readSizes.slice(0, 8), Array(8).fill(MiB));
  t.true((await readFile(back)).equals(data));

  const wb = await mountToy(t, {}, { maxWriteBytes: MiB, writebackCache: true });
  t.true((wb.binding.info(wb.handle).flags & InitFlag.WRITEBACK_CACHE) !== 0);
  wb.fs.resetCounts();
  await ok(t, 'dd', [`if=${src}`, `of=${wb.mp}/g`, 'bs=1M', 'count=8', 'conv=fsync', 'status=none']);
  t.log(`write-back WRITE sizes (KiB): ${wb.fs.writeSizes.map((s) => s / 1024).join(' ')}`);
  t.is(Math.max(...wb.fs.writeSizes), MiB);
  t.true(wb.fs.fileData(Buffer.from('g'))!.equals(data));
});

withFuse('reply once: a second reply, a reply of the wrong kind and a reply to an unknown request throw; the mount goes on', async (t) => {
  const caught: Record<string, unknown> = {};
  let target = -1;
  let done = false;
  const { fs, mp, binding, handle } = await mountToy(t, {
    attrTimeoutS: 0,
    hook: (op, unique, nodeid) => {
      if (op !== Op.GETATTR || nodeid !== target || done) return false;
      done = true;
      const attr = Float64Array.from(fs.nodes.get(target)!.attr);
      try {
        binding.replyEntry(unique, attr, 1, 1);
      } catch (e) {
        caught['wrongKind'] = e;
      }
      try {
        binding.replyErr(unique, 0);
      } catch (e) {
        caught['emptyAttr'] = e;
      }
      binding.replyAttr(unique, attr, 0);
      try {
        binding.replyAttr(unique, attr, 0);
      } catch (e) {
        caught['second'] = e;
      }
      try {
        binding.replyErr(unique + 1_000_000, E.EIO);
      } catch (e) {
        caught['unknown'] = e;
      }
      return true;
    },
  });
  target = fs.addFile(1, Buffer.from('f'), Buffer.from('hello'));
  t.is((await ok(t, 'stat', ['-c', '%s', `${mp}/f`])).trim(), '5');
  t.true(done);
  t.true(caught['wrongKind'] instanceof TypeError);
  t.regex((caught['wrongKind'] as Error).message, /replyEntry cannot answer request \d+ \(GETATTR\)/);
  t.true(caught['emptyAttr'] instanceof TypeError);
  t.true(caught['second'] instanceof Error);
  t.regex((caught['second'] as Error).message, /^request \d+ is not awaiting a reply$/);
  t.is((caught['second'] as Error & { code: string }).code, 'ERR_FUSE_NOT_AWAITING');
  t.regex((caught['unknown'] as Error).message, /is not awaiting a reply/);
  // The mount goes on working.
  t.is((await ok(t, 'cat', [`${mp}/f`])), 'hello');
  t.is((await ok(t, 'stat', ['-c', '%s', `${mp}/f`])).trim(), '5');
  t.is(binding.info(handle).outstanding, 0);
});

withFuse('INTERRUPT names the waiting request; answering it EINTR ends the interrupted call', async (t) => {
  let held = 0;
  let interrupted = -1;
  let target = -1;
  let interruptReplyError: unknown;
  const { fs, mp, binding } = await mountToy(t, {
    hook: (op, unique, nodeid, args) => {
      if (op === Op.OPEN && nodeid === target && held === 0) {
        held = unique; // not answered until interrupted
        return true;
      }
      if (op === Op.INTERRUPT) {
        interrupted = args[0] as number;
        try {
          binding.replyErr(unique, E.EINTR); // unique is 0: INTERRUPT takes no reply
        } catch (e) {
          interruptReplyError = e;
        }
        if (interrupted === held) binding.replyErr(held, E.EINTR);
        return true;
      }
      return false;
    },
  });
  target = fs.addFile(1, Buffer.from('slow'), Buffer.from('x'));
  const out = await py(
    t,
    `
import os, sys, signal
class Alarm(Exception): pass
def on_alarm(sig, frame): raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.3)
try:
    os.open(sys.argv[1], os.O_RDONLY); print('opened')
except Alarm:
    print('alarm')
`,
    `${mp}/slow`,
  );
  t.is(out.trim(), 'alarm');
  t.not(held, 0);
  t.is(interrupted, held);
  t.regex((interruptReplyError as Error).message, /request 0 is not awaiting a reply/);
  t.is(await ok(t, 'cat', [`${mp}/slow`]), 'x');
});

withFuse('unmounted from outside: EXIT reaches dispatch, release() returns at once and the process ends by itself', async (t) => {
  const mp = await mkdtemp(join(tmpdir(), 'fragfs-kc-'));
  const toy = await spawnToy(t, mp);
  t.true(await isMounted(mp));
  await ok(t, 'fusermount', ['-u', mp]);
  const code = await within(toy.exit, 20_000);
  t.is(code, 0, `the child ended by itself (stderr: ${toy.err().trim()})`);
  t.regex(toy.out(), /\nexit\n$/);
  t.false(await isMounted(mp));

  // In this process too: EXIT, then release() returns promptly.
  const { fs, mp: mp2, binding, handle } = await mountToy(t);
  await ok(t, 'fusermount', ['-u', mp2]);
  t.not(await within(fs.exited, 20_000), 'timeout');
  t.throws(() => binding.info(handle), { message: /released/ });
  t.notThrows(() => binding.release(handle), 'release is idempotent');
  t.is(await binding.notifyInvalInode(handle, 1, 0, 0), E.ENOTCONN);
});

withFuse('a killed server leaves a dead mount (ENOTCONN) that fusermount -u -z clears', async (t) => {
  const mp = await mkdtemp(join(tmpdir(), 'fragfs-kc-'));
  const toy = await spawnToy(t, mp);
  toy.child.kill('SIGKILL');
  t.not(await within(toy.exit, 20_000), 'timeout');
  const r = await run('stat', [mp], 10_000);
  t.not(r.code, 0);
  t.regex(r.stderr, /Transport endpoint is not connected/);
  await ok(t, 'fusermount', ['-u', '-z', mp], 10_000);
  t.false(await isMounted(mp));
});

withFuse('programs this process starts do not inherit /dev/fuse', async (t) => {
  await mountToy(t);
  const fds = await ok(t, 'sh', ['-c', 'ls -l /proc/$$/fd']);
  t.notRegex(fds, /fuse/);
});

withFuse('process.exit() while mounted: the process ends, the mount is left dead (ENOTCONN) for fusermount -u -z', async (t) => {
  const mp = await mkdtemp(join(tmpdir(), 'fragfs-kc-'));
  const toy = await spawnToy(t, mp, [], ['--exit-after-ms=100']);
  t.is(await within(toy.exit, 20_000), 0);
  const r = await run('stat', [mp], 10_000);
  t.regex(r.stderr, /Transport endpoint is not connected/);
  await ok(t, 'fusermount', ['-u', '-z', mp], 10_000);
  t.false(await isMounted(mp));
});

withFuse('release() on a live mount: a request JS holds may still be answered, then /dev/fuse closes', async (t) => {
  let held = 0;
  let target = -1;
  const { fs, mp, binding, handle } = await mountToy(t, {
    attrTimeoutS: 0,
    hook: (op, unique, nodeid) => {
      if (op === Op.GETATTR && nodeid === target && held === 0) {
        held = unique;
        return true;
      }
      return false;
    },
  });
  target = fs.addFile(1, Buffer.from('h'), Buffer.from('12345678'));
  const statting = run('stat', ['-c', '%s', `${mp}/h`], 20_000);
  while (held === 0) await delay(10);
  binding.release(handle);
  t.throws(() => binding.info(handle), { message: /released/ });
  binding.replyAttr(held, Float64Array.from(fs.nodes.get(target)!.attr), 0);
  const r = await statting;
  t.is(r.stdout.trim(), '8', 'the held request was answered after release()');
  t.throws(() => binding.replyAttr(held, Float64Array.from(fs.nodes.get(target)!.attr), 0), { message: /not awaiting a reply/ });
  // Its last request answered, the session closed /dev/fuse: the mount is dead until unmounted.
  const after = await run('stat', [mp], 10_000);
  t.regex(after.stderr, /Transport endpoint is not connected|Software caused connection abort/);
});

withFuse('many requests at once: 200 LOOKUPs held, then answered in a shuffled order', async (t) => {
  const held: Array<{ unique: number; name: string }> = [];
  let holding = true;
  const { fs, mp, binding, handle } = await mountToy(t, {
    hook: (op, unique, nodeid, args) => {
      if (op !== Op.LOOKUP || nodeid !== 1 || !holding) return false;
      held.push({ unique, name: (args[0] as Buffer).toString('latin1') });
      return true;
    },
  });
  const N = 200;
  for (let i = 0; i < N; i++) fs.addFile(1, Buffer.from(`m${i}`), Buffer.alloc(i));
  const statting = py(
    t,
    `
import os, sys, threading, json
sizes = {}
def one(i):
    sizes[i] = os.stat(os.path.join(sys.argv[1], f'm{i}')).st_size
threads = [threading.Thread(target=one, args=(i,)) for i in range(${N})]
for th in threads: th.start()
for th in threads: th.join()
print(json.dumps([sizes[i] for i in range(${N})]))
`,
    mp,
  );
  const started = Date.now();
  while (held.length < N && Date.now() - started < 20_000) await delay(20);
  t.is(held.length, N, 'every LOOKUP reached JS while the others waited');
  t.is(binding.info(handle).outstanding, N);
  holding = false;
  const order = held.map((h, i) => ({ h, k: (i * 7919) % N })).sort((a, b) => a.k - b.k);
  for (const { h } of order) {
    const ino = fs.nodes.get(1)!.children!.get(h.name)!;
    const node = fs.nodes.get(ino)!;
    node.lookups++;
    binding.replyEntry(h.unique, Float64Array.from(node.attr), 1, 1);
  }
  t.deepEqual(JSON.parse(await statting), Array.from({ length: N }, (_v, i) => i));
  t.is(binding.info(handle).outstanding, 0);
  for (const h of held) t.throws(() => binding.replyErr(h.unique, E.EIO), { message: /not awaiting/ });
});

withFuse('notifications: invalidating an entry and an inode resolve with the kernel\'s errno', async (t) => {
  const { fs, mp, binding, handle } = await mountToy(t, { entryTimeoutS: 60, attrTimeoutS: 60 });
  const ino = fs.addFile(1, Buffer.from('n'), Buffer.from('one'));
  await ok(t, 'stat', [`${mp}/n`]);
  fs.resetCounts();
  await ok(t, 'stat', [`${mp}/n`]);
  t.is(fs.count(Op.LOOKUP) + fs.count(Op.GETATTR), 0, 'cached');
  // The inode first: FUSE evicts an inode (and FORGETs it) as soon as its last dentry goes.
  t.is(await binding.notifyInvalInode(handle, ino, 0, 0), 0);
  t.is(await binding.notifyInvalEntry(handle, 1, Buffer.from('n')), 0);
  await ok(t, 'stat', [`${mp}/n`]);
  t.true(fs.count(Op.LOOKUP) >= 1, 'looked up again');
  t.is(await binding.notifyInvalEntry(handle, 1, Buffer.from('never-seen')), E.ENOENT);
  t.is(await binding.notifyInvalInode(handle, 999_999, 0, 0), E.ENOENT);
});

/**
 * Conditions outside the code for a mount by `nobody`: root to drop privileges, setpriv, and a
 * /dev/fuse nobody may open (fuse 2's fusermount opens it as the calling user; distributions ship it
 * 0666, some containers 0600).
 */
function nobodyMountBlocker(): string | undefined {
  if (process.getuid?.() !== 0) return 'the test must run as root to start a process as nobody';
  const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  try {
    execFileSync('setpriv', [...asNobody, 'sh', '-c', 'test -r /dev/fuse -a -w /dev/fuse'], { stdio: 'pipe' });
  } catch {
    return 'nobody may not open /dev/fuse here (its mode is not 0666), and fusermount opens it as the calling user';
  }
  try {
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', '0'], { stdio: 'pipe' });
  } catch (e) {
    return `nobody cannot run ${process.execPath} through setpriv: ${(e as Error).message.split('\n')[0]}`;
  }
  try {
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', `test -r ${TOY_PROGRAM}`]);
  } catch {
    return `nobody cannot read ${TOY_PROGRAM}`;
  }
  return undefined;
}
const nobodyBlocker = haveFuse ? nobodyMountBlocker() : 'no /dev/fuse';
if (nobodyBlocker) console.log(`kernel-channel: the mount by nobody is skipped: ${nobodyBlocker}`);

(nobodyBlocker ? test.skip : test)('a user other than root mounts through fusermount', async (t) => {
  const mp = await mkdtemp(join(tmpdir(), 'fragfs-kc-'));
  await chown(mp, 65534, 65534);
  const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  const toy = await spawnToy(t, mp, asNobody);
  const line = (await readFile('/proc/self/mounts', 'utf8')).split('\n').find((l) => l.split(' ')[1] === mp) ?? '';
  t.regex(line, /fuse\.fragfs .*user_id=65534,group_id=65534/);
  const out = await ok(t, asNobody[0]!, [...asNobody.slice(1), 'sh', '-c', `echo hi > ${mp}/f && cat ${mp}/f && stat -c %U ${mp}/f`]);
  t.is(out, 'hi\nnobody\n');
  await ok(t, 'fusermount', ['-u', mp]);
  t.is(await within(toy.exit, 20_000), 0);
});

(haveFuse ? test.serial : test.skip)('timing: 10,000 GETATTRs through the toy fs', async (t) => {
  const { fs, mp } = await mountToy(t, { attrTimeoutS: 0 });
  fs.addFile(1, Buffer.from('s'), Buffer.from('x'));
  fs.resetCounts();
  const out = await py(
    t,
    `
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
t0 = time.perf_counter()
for _ in range(10000): os.fstat(fd)
print(time.perf_counter() - t0)
`,
    `${mp}/s`,
  );
  const seconds = Number(out.trim());
  t.true(fs.count(Op.GETATTR) >= 10_000);
  t.log(`10,000 fstat -> ${fs.count(Op.GETATTR)} GETATTRs in ${(seconds * 1000).toFixed(0)} ms (${(seconds * 100).toFixed(1)} us each)`);
});

withFuse('attributes survive the trip: times to the nanosecond, sizes, modes, owners', async (t) => {
  const { fs, mp } = await mountToy(t, { attrTimeoutS: 0 });
  const ino = fs.addFile(1, Buffer.from('t'), Buffer.alloc(12345));
  const attr = fs.nodes.get(ino)!.attr;
  [attr[A.MTIME_SEC], attr[A.MTIME_NSEC]] = [1_700_000_000, 123_250_007];
  [attr[A.ATIME_SEC], attr[A.ATIME_NSEC]] = [-2, 499_750_000]; // before the epoch: -1.50025 s
  attr[A.UID] = 1234;
  attr[A.GID] = 5678;
  attr[A.MODE] = 0o100640;
  const out = await py(
    t,
    `
import os, sys, json
s = os.stat(sys.argv[1])
print(json.dumps([str(x) for x in (s.st_mtime_ns, s.st_atime_ns, s.st_size, s.st_uid, s.st_gid, s.st_mode, s.st_ino)]))
`,
    `${mp}/t`,
  );
  t.deepEqual(JSON.parse(out), ['1700000000123250007', '-1500250000', '12345', '1234', '5678', String(0o100640), String(ino)]);
});

test('releasePayload detaches a buffer that is a whole ArrayBuffer and leaves a slice of a shared one alone', async (t) => {
  const b = await ensureKernelBinding();
  const whole = Buffer.allocUnsafeSlow(1 << 20).fill(7);
  t.true(b.releasePayload(whole));
  t.is(whole.length, 0, 'every view reads as empty: nothing points at freed memory');
  t.is(whole.buffer.byteLength, 0);
  const pooled = Buffer.from('from the shared pool');
  t.true(pooled.buffer.byteLength > pooled.length);
  t.false(b.releasePayload(pooled));
  t.is(pooled.toString(), 'from the shared pool');
  const view = new Uint8Array(new ArrayBuffer(100), 10, 20);
  t.false(b.releasePayload(view), 'part of its buffer');
  t.is(view.length, 20);
  t.false(b.releasePayload(new Uint8Array(0)));
});

test.serial('trimMemory hands freed pages in the middle of the heap back to the system', async (t) => {
  const b = await ensureKernelBinding();
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const rssAnon = () => Number(/RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
  // 64 KiB buffers come from malloc's heap (below its mmap threshold); keeping every 16th leaves the
  // freed ones as holes that glibc does not give back by itself.
  let chunks: Buffer[] | undefined = Array.from({ length: 2048 }, () => Buffer.allocUnsafeSlow(64 * 1024).fill(1));
  const kept = chunks.filter((_, i) => i % 16 === 0);
  chunks = undefined;
  gc();
  gc();
  const before = rssAnon();
  t.is(typeof b.trimMemory(), 'boolean');
  const after = rssAnon();
  t.log(`RssAnon ${before >> 20} -> ${after >> 20} MiB`);
  t.true(before - after > 64 * 1024 * 1024, `released ${(before - after) >> 20} MiB`);
  t.is(kept.length, 128);
});
