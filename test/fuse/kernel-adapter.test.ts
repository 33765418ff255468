// The adapter without a kernel: requests dispatched to a real LiveVfs as the addon would (several in
// one batch, none awaited before the next is sent), replies recorded. The kernel addresses inodes, so
// renames racing opens, stats and truncates of the same batch must never answer ENOENT for an inode
// that exists or change another inode than the one addressed (checked against a model, fast-check);
// and READDIRPLUS, negative entries and setattr come back as the kernel expects.

import test from 'ava';
import fc from 'fast-check';
import { constants as osConstants } from 'node:os';
import { KernelAdapter } from '../../src/fuse/kernel-adapter.js';
import { Attr as A, Op, SetattrValid as V, type KernelReplies } from '../../src/fuse/kernel-binding.js';
import { ME, O_RDWR, fixture, type Fixture } from '../vfs/vfs-helpers.js';

const { ENOENT } = osConstants.errno;

interface Reply {
  kind: string;
  args: unknown[];
}

/** Records replies; `send` dispatches one request and resolves with its reply, without waiting to send the next. */
function harness(fx: Fixture) {
  const waiting = new Map<number, (r: Reply) => void>();
  /** Replies and payload releases, in the order they came. */
  const events: string[] = [];
  const released: Uint8Array[] = [];
  let nextUnique = 1;
  const settle = (kind: string) => (unique: number, ...args: unknown[]) => {
    const done = waiting.get(unique);
    if (!done) throw new Error(`reply ${kind} to unknown or answered request ${unique}`);
    waiting.delete(unique);
    events.push(`reply ${kind}`);
    // Arrays are reused by the adapter after the reply: keep copies.
    done({ kind, args: args.map((x) => (x instanceof Float64Array ? Float64Array.from(x) : Buffer.isBuffer(x) ? Buffer.from(x) : x)) });
  };
  const replies: KernelReplies = {
    replyErr: settle('err'),
    replyEntry: settle('entry'),
    replyCreate: settle('create'),
    replyAttr: settle('attr'),
    replyOpen: settle('open'),
    replyBuf: settle('buf'),
    replyWrite: settle('write'),
    releasePayload(data) {
      events.push('release');
      released.push(data);
      return true;
    },
    replyStatfs: settle('statfs'),
    replyXattrSize: settle('xattrSize'),
    replyDir(unique, size, names, inos, modes, offsets) {
      const fit = Math.min(names.length, Math.floor(size / 32));
      settle('dir')(unique, names.slice(0, fit), Array.from(inos).slice(0, fit), Array.from(modes).slice(0, fit), Array.from(offsets).slice(0, fit));
      return fit;
    },
    replyDirPlus(unique, size, names, attrs, offsets) {
      const fit = Math.min(names.length, Math.floor(size / 160));
      settle('dirplus')(unique, names.slice(0, fit), attrs.slice(0, fit * A.LENGTH), Array.from(offsets).slice(0, fit));
      return fit;
    },
  };
  const adapter = new KernelAdapter(fx.live, replies, {
    entryTimeoutS: 1,
    attrTimeoutS: 1,
    negativeTimeoutS: 1,
    keepCache: true,
    cacheDirs: false,
    log: (line) => {
      throw new Error(`unexpected log: ${line}`);
    },
  });
  const send = (op: number, nodeid: number, ...args: unknown[]): Promise<Reply> => {
    const unique = nextUnique++;
    const p = new Promise<Reply>((resolve) => waiting.set(unique, resolve));
    adapter.dispatch(op, unique, nodeid, ME.uid, ME.gid, 1, ...args);
    return p;
  };
  return { send, events, released };
}

const b = (s: string) => Buffer.from(s);

test('renames racing opens, stats and truncates in one batch: no spurious ENOENT, no change to another inode', async (t) => {
  const fx = await fixture();
  try {
    const { send } = harness(fx);
    const live = fx.live;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('rename' as const), from: fc.nat(5), to: fc.nat(5), dir: fc.nat(2), toDir: fc.nat(2) }),
            fc.record({ kind: fc.constant('getattr' as const), file: fc.nat(5) }),
            fc.record({ kind: fc.constant('open' as const), file: fc.nat(5) }),
            fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(5), size: fc.nat(50) }),
          ),
          { minLength: 4, maxLength: 24 },
        ),
        async (ops) => {
          // A fresh subtree: three folders, two files each (sizes 10..60), folder 2 inside folder 1.
          const top = (await live.mkdir(1, b(`run${run++}`), 0o755, ME)).ino;
          const d0 = (await live.mkdir(top, b('d0'), 0o755, ME)).ino;
          const d1 = (await live.mkdir(top, b('d1'), 0o755, ME)).ino;
          const d2 = (await live.mkdir(d1, b('d2'), 0o755, ME)).ino;
          const dirs = [d0, d1, d2];
          const files: number[] = [];
          const size = new Map<number, number>();
          for (let i = 0; i < 6; i++) {
            const { attr, fh } = await live.create(dirs[i % 3]!, b(`f${i}`), 0o644, O_RDWR, ME);
            await live.write(attr.ino, fh, Buffer.alloc(10 + 10 * i, i), 10 + 10 * i, 0);
            await live.release(attr.ino, fh);
            files.push(attr.ino);
            size.set(attr.ino, 10 + 10 * i);
          }
          // One batch: every request is sent before any is answered.
          const pending: { op: (typeof ops)[number]; reply: Promise<Reply> }[] = [];
          for (const [k, op] of ops.entries()) {
            let reply: Promise<Reply>;
            if (op.kind === 'rename') {
              // Names f0..f5 live in d(i % 3): most renames name an existing entry, some do not. Each
              // target name is new, so no rename replaces (and frees) a file the model still counts.
              reply = send(Op.RENAME, dirs[op.dir]!, b(`f${op.from}`), dirs[op.toDir]!, b(`g${op.to}-${k}`), 0);
            } else if (op.kind === 'getattr') {
              reply = send(Op.GETATTR, files[op.file]!, -1);
            } else if (op.kind === 'open') {
              reply = send(Op.OPEN, files[op.file]!, 0);
            } else {
              size.set(files[op.file]!, op.size); // the model: a truncate changes the inode addressed, only it
              reply = send(Op.SETATTR, files[op.file]!, V.SIZE, -1, 0, 0, 0, op.size, 0, 0, 0, 0);
            }
            pending.push({ op, reply });
          }
          for (const { op, reply } of pending) {
            const r = await reply;
            if (op.kind === 'rename') continue; // a name may be gone already: ENOENT is right there
            t.not(r.kind === 'err' ? r.args[0] : 0, ENOENT, `${op.kind} of an inode that exists`);
            if (r.kind === 'open') await live.release(files[(op as { file: number }).file]!, r.args[0] as number);
          }
          // Truncates of one inode apply in the order sent (the kernel sends them one at a time per inode).
          for (const ino of files) t.is((await live.getattr(ino)).size, size.get(ino)!, `inode ${ino}`);
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await fx.done();
  }
});

test('LOOKUP of a missing name is a negative entry; READDIRPLUS gives attributes and stable offsets', async (t) => {
  const fx = await fixture();
  try {
    const { send } = harness(fx);
    const neg = await send(Op.LOOKUP, 1, b('nope'));
    t.is(neg.kind, 'entry');
    t.is((neg.args[0] as Float64Array)[A.INO], 0, 'ino 0: a negative entry');
    for (let i = 0; i < 30; i++) await fx.vfs.mkdir(`/dir${String(i).padStart(2, '0')}`, 0o750, ME);
    const open = await send(Op.OPENDIR, 1, 0);
    const fh = open.args[0] as number;
    const seen: string[] = [];
    let offset = 0;
    for (;;) {
      const r = await send(Op.READDIRPLUS, 1, fh, offset, 160 * 7);
      const names = r.args[0] as Buffer[];
      if (names.length === 0) break;
      const attrs = r.args[1] as Float64Array;
      names.forEach((n, i) => {
        seen.push(n.toString());
        if (n.toString().startsWith('dir')) t.is(attrs[i * A.LENGTH + A.MODE]! & 0o7777, 0o750);
      });
      offset = (r.args[2] as number[]).at(-1)!;
    }
    t.is(seen.length, 32);
    t.deepEqual(seen.slice(0, 2), ['.', '..']);
    t.is(new Set(seen).size, 32, 'no entry twice across pages');
    t.is((await send(Op.RELEASEDIR, 1, fh)).kind, 'err');
  } finally {
    await fx.done();
  }
});

test('a WRITE\'s data is released once it is answered, and what the file holds is the vfs\'s own copy', async (t) => {
  const fx = await fixture();
  try {
    const { send, events, released } = harness(fx);
    const { attr, fh } = await fx.live.create(1, b('w'), 0o644, O_RDWR, ME);
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const want = Buffer.from(data);
    const r = await send(Op.WRITE, attr.ino, fh, 4096, data, 0);
    t.deepEqual(r, { kind: 'write', args: [data.length] });
    t.is(released.length, 1);
    t.is(released[0], data, 'the very buffer the request brought');
    t.deepEqual(events.slice(-2), ['reply write', 'release'], 'released after the reply');
    // The payload is gone: what the file reads back cannot come from it.
    data.fill(0xee);
    const back = Buffer.alloc(want.length);
    t.is(await fx.live.read(attr.ino, fh, back, back.length, 4096), want.length);
    t.true(back.equals(want));
    // A write that fails releases its data too.
    const bad = Buffer.alloc(10);
    const e = await send(Op.WRITE, attr.ino, 9999, 0, bad, 0);
    t.is(e.kind, 'err');
    t.is(released.at(-1), bad);
    await fx.live.release(attr.ino, fh);
  } finally {
    await fx.done();
  }
});
