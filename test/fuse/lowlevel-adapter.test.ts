// The low-level adapter without a kernel: requests by inode number over a real LiveVfs, replies
// recorded. It checks the kernel-view bookkeeping a mount depends on: lookup counts and FORGET, one
// kernel inode for every name of a hard link, paths that follow renames, readdir offsets, setattr.

import test from 'ava';
import { constants as osConstants } from 'node:os';
import { LowLevelAdapter } from '../../src/fuse/lowlevel-adapter.js';
import { Attr as A, Op as LLOp, type LowLevelReplies } from '../../src/fuse/lowlevel-binding.js';
import { ME, O_RDWR, fixture } from '../vfs/vfs-helpers.js';

const { ENOENT, ENOTEMPTY } = osConstants.errno;
const O_CREAT = 0o100;

interface Reply {
  kind: string;
  args: unknown[];
}

/** Records replies; `call` sends one request and resolves with its reply. */
function harness(vfs: ConstructorParameters<typeof LowLevelAdapter>[0], negativeTimeoutS = 0) {
  const waiting = new Map<number, (r: Reply) => void>();
  let nextReq = 1;
  const settle = (kind: string) => (req: number, ...args: unknown[]) => {
    const done = waiting.get(req);
    if (!done) throw new Error(`reply ${kind} to unknown or answered request ${req}`);
    waiting.delete(req);
    // Arrays are reused by the adapter after the reply: keep copies.
    done({ kind, args: args.map((x) => (x instanceof Float64Array ? Float64Array.from(x) : Buffer.isBuffer(x) ? Buffer.from(x) : x)) });
  };
  const replies: LowLevelReplies = {
    replyErr: settle('err'),
    replyNone: settle('none'),
    replyEntry: settle('entry'),
    replyCreate: settle('create'),
    replyAttr: settle('attr'),
    replyReadlink: settle('readlink'),
    replyOpen: settle('open'),
    replyBuf: settle('buf'),
    replyWrite: settle('write'),
    replyStatfs: settle('statfs'),
    replyXattrSize: settle('xattrSize'),
    replyDir(req, size, first, names, inos, modes) {
      // As fuse_add_direntry would: entries of a 32-byte minimum while they fit.
      const fit = Math.min(names.length, Math.floor(size / 32));
      settle('dir')(req, first, names.slice(0, fit), inos.slice(0, fit), modes.slice(0, fit));
      return fit;
    },
  };
  const adapter = new LowLevelAdapter(vfs, replies, {
    entryTimeoutS: 1,
    attrTimeoutS: 1,
    negativeTimeoutS,
    keepCache: true,
    defaultCaller: ME,
    log: (line) => {
      throw new Error(`unexpected log: ${line}`);
    },
  });
  const call = (op: number, ...args: unknown[]) =>
    new Promise<Reply>((resolve) => {
      const req = nextReq++;
      waiting.set(req, resolve);
      adapter.dispatch(op, req, ...args);
    });
  const inoOf = (r: Reply) => {
    if (r.kind !== 'entry' && r.kind !== 'create') throw new Error(`expected an entry, got ${r.kind} ${String(r.args[0])}`);
    return (r.args[0] as Float64Array)[A.INO]!;
  };
  return { adapter, call, inoOf };
}

test('lookup holds an inode until FORGET drops its last reference', async (t) => {
  const fx = await fixture();
  try {
    const { adapter, call, inoOf } = harness(fx.vfs);
    const made = await call(LLOp.MKDIR, 1, 'd', 0o755, ME.uid, ME.gid);
    const d = inoOf(made);
    t.is(d, (await fx.vfs.getattr('/d')).ino);
    t.is(inoOf(await call(LLOp.LOOKUP, 1, 'd')), d);
    t.is(adapter.knownInodes, 2);
    adapter.dispatch(LLOp.FORGET, 0, d, 1);
    t.is(adapter.knownInodes, 2, 'one lookup is still held');
    adapter.dispatch(LLOp.FORGET, 0, d, 1);
    t.is(adapter.knownInodes, 1, 'only the root is left');
    const gone = await call(LLOp.GETATTR, d, -1);
    t.deepEqual(gone, { kind: 'err', args: [ENOENT] });
    const missing = await call(LLOp.LOOKUP, 1, 'nope');
    t.deepEqual(missing, { kind: 'err', args: [ENOENT] });
  } finally {
    await fx.done();
  }
});

test('a negative timeout answers a missing name with inode 0', async (t) => {
  const fx = await fixture();
  try {
    const { call } = harness(fx.vfs, 5);
    const r = await call(LLOp.LOOKUP, 1, 'nope');
    t.is(r.kind, 'entry');
    t.is((r.args[0] as Float64Array)[A.INO], 0);
    t.is(r.args[2], 5);
  } finally {
    await fx.done();
  }
});

test('every name of a hard link is one inode, reachable after the other name goes', async (t) => {
  const fx = await fixture();
  try {
    const { call, inoOf } = harness(fx.vfs);
    const created = await call(LLOp.CREATE, 1, 'a', 0o644, O_CREAT | O_RDWR, ME.uid, ME.gid);
    const ino = inoOf(created);
    const fh = created.args[4] as number;
    t.is((await call(LLOp.WRITE, ino, fh, Buffer.from('hello'), 0)).args[0], 5);
    t.is((await call(LLOp.RELEASE, ino, fh, 0)).kind, 'err');
    t.is(inoOf(await call(LLOp.LINK, ino, 1, 'b')), ino);
    t.deepEqual(await call(LLOp.UNLINK, 1, 'a'), { kind: 'err', args: [0] });
    const attr = await call(LLOp.GETATTR, ino, -1);
    t.is(attr.kind, 'attr');
    t.is((attr.args[0] as Float64Array)[A.NLINK], 1);
    t.is((attr.args[0] as Float64Array)[A.SIZE], 5);
    const opened = await call(LLOp.OPEN, ino, 0);
    const read = await call(LLOp.READ, ino, opened.args[0], 100, 0);
    t.is((read.args[0] as Buffer).subarray(0, read.args[1] as number).toString(), 'hello');
  } finally {
    await fx.done();
  }
});

test('paths follow a folder rename, and a rename over a name forgets the replaced inode', async (t) => {
  const fx = await fixture();
  try {
    const { call, inoOf } = harness(fx.vfs);
    const d = inoOf(await call(LLOp.MKDIR, 1, 'd', 0o755, ME.uid, ME.gid));
    const l = inoOf(await call(LLOp.SYMLINK, d, 'l', 'target', ME.uid, ME.gid));
    t.deepEqual(await call(LLOp.RENAME, 1, 'd', 1, 'e'), { kind: 'err', args: [0] });
    t.deepEqual(await call(LLOp.READLINK, l), { kind: 'readlink', args: ['target'] });
    t.true((await fx.vfs.getattr('/e/l')).ino === l);
    const x = inoOf(await call(LLOp.MKNOD, 1, 'x', 0o100644, 0, ME.uid, ME.gid));
    t.deepEqual(await call(LLOp.RENAME, 1, 'x', d, 'l'), { kind: 'err', args: [0] });
    t.is((await call(LLOp.GETATTR, l, -1)).kind, 'err', 'the replaced symlink has no name left');
    t.deepEqual(await call(LLOp.READLINK, x), { kind: 'err', args: [osConstants.errno.EINVAL] });
    t.deepEqual(await call(LLOp.RMDIR, 1, 'e'), { kind: 'err', args: [ENOTEMPTY] });
  } finally {
    await fx.done();
  }
});

test('readdir serves a listing in offsets and lists again after a rewind', async (t) => {
  const fx = await fixture();
  try {
    const { call } = harness(fx.vfs);
    for (let i = 0; i < 50; i++) await call(LLOp.MKNOD, 1, `f${String(i).padStart(2, '0')}`, 0o100644, 0, ME.uid, ME.gid);
    const fh = (await call(LLOp.OPENDIR, 1, 0)).args[0] as number;
    const names: string[] = [];
    let offset = 0;
    for (;;) {
      const r = await call(LLOp.READDIR, 1, fh, 320, offset);
      t.is(r.args[0], offset);
      const got = r.args[1] as string[];
      if (got.length === 0) break;
      t.true(got.length <= 10);
      names.push(...got);
      offset += got.length;
    }
    t.is(names.length, 52);
    t.deepEqual(names.slice(0, 2), ['.', '..']);
    t.is(new Set(names).size, 52);
    await call(LLOp.MKNOD, 1, 'late', 0o100644, 0, ME.uid, ME.gid);
    const again = await call(LLOp.READDIR, 1, fh, 1 << 16, 0);
    t.true((again.args[1] as string[]).includes('late'), 'offset 0 after a full read lists again');
    t.deepEqual(await call(LLOp.RELEASEDIR, 1, fh), { kind: 'err', args: [0] });
  } finally {
    await fx.done();
  }
});

test('setattr applies size and one time, keeps the other, and answers the new attributes', async (t) => {
  const fx = await fixture();
  try {
    const { call, inoOf } = harness(fx.vfs);
    const ino = inoOf(await call(LLOp.MKNOD, 1, 'f', 0o100644, 0, ME.uid, ME.gid));
    await fx.vfs.utimens('/f', 1_000_000, 2_000_000);
    const SET_MODE = 1;
    const SET_SIZE = 8;
    const SET_MTIME = 32;
    const r = await call(LLOp.SETATTR, ino, -1, SET_MODE | SET_SIZE | SET_MTIME, 0o600, 0, 0, 4096, 0, 5_000_000.5);
    t.is(r.kind, 'attr');
    const a = r.args[0] as Float64Array;
    t.is(a[A.MODE]! & 0o7777, 0o600);
    t.is(a[A.SIZE], 4096);
    t.is(a[A.MTIME_MS], 5_000_000.5);
    t.is(a[A.ATIME_MS], 1_000_000);
  } finally {
    await fx.done();
  }
});
