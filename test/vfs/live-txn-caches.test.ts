// The live state's decoded-record caches across failed transactions: a failure that changed nothing
// (ENOENT, EEXIST, ENOTEMPTY) keeps them, so the next requests read nothing again; a transaction
// that changed an inode and then failed leaves no trace of the change, in the caches or in LMDB.

import test from 'ava';
import { FragfsError } from '../../src/errors.js';
import type { LiveState } from '../../src/vfs/live-state.js';
import { ME, fixture } from './vfs-helpers.js';

const ROOT = 1;
const b = (s: string) => Buffer.from(s);

/** Counts the state's LMDB reads while `fn` runs. */
async function readsDuring(state: LiveState, fn: () => Promise<unknown>): Promise<number> {
  const records = (state as unknown as { records: { get: (...a: unknown[]) => unknown } }).records;
  const get = records.get;
  let n = 0;
  records.get = function (this: unknown, ...a: unknown[]) {
    n++;
    return get.apply(this, a);
  };
  try {
    await fn();
  } finally {
    records.get = get;
  }
  return n;
}

test('failures that change nothing keep the caches; a failure after a change leaves no trace of it', async (t) => {
  const fx = await fixture({ backend: 'lmdb' });
  try {
    const live = fx.live;
    const state = (live as unknown as { state: LiveState }).state;
    const dir = await live.mkdir(ROOT, b('d'), 0o755, ME);
    const files: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { attr, fh } = await live.create(dir.ino, b(`f${i}`), 0o644, 1, ME);
      await live.release(attr.ino, fh);
      files.push(attr.ino);
    }
    await live.unlink(dir.ino, b('f0'));
    const again = async () => {
      for (let i = 1; i < 20; i++) await live.lookup(dir.ino, b(`f${i}`));
      for (const ino of files.slice(1)) await live.getattr(ino);
    };
    await again();
    t.is(await readsDuring(state, again), 0, 'everything is cached');
    // The kernel's SETATTR of the ctime of a file it just unlinked, a mkdir of a name taken, an
    // rmdir of a full folder: each fails before changing anything.
    await t.throwsAsync(live.setattr(files[0]!, undefined, { mtimeNs: 1_700_000_000_000_000_000n }), { instanceOf: FragfsError, message: /no such/ });
    await t.throwsAsync(live.mkdir(dir.ino, b('f3'), 0o755, ME), { instanceOf: FragfsError });
    await t.throwsAsync(live.rmdir(ROOT, b('d')), { instanceOf: FragfsError });
    t.is(await readsDuring(state, again), 0, 'still cached after the failures');

    // A change, then a failure in the same transaction: rolled back everywhere.
    const before = state.getInode(files[5]!)!;
    t.throws(() =>
      state.txn(() => {
        state.putInode(files[5]!, { ...before, mode: before.mode ^ 0o077, parents: before.parents.slice() });
        throw new FragfsError('IO', 'failed half way');
      }),
    );
    t.is(state.getInode(files[5]!)!.mode, before.mode, 'the cache does not hold the rolled-back record');
    t.is((await live.getattr(files[5]!)).mode, before.mode);
  } finally {
    await fx.done();
  }
});
