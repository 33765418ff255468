// Converts the live state of fragfs before layout 2 (an LMDB environment in clear, directly in
// STORE/live/<space>/: data.mdb and lock.mdb) into the encrypted layout in STORE/live/<space>/state/.
// Every inode, entry, extent, xattr, orphan and the inode counter are carried over; the snapshot
// caches are not (the next snapshot rebuilds them). The clear files are removed once the new state
// is durable. Their old disk blocks are the file system's to reuse: fragfs cannot scrub them.

import { rm, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { open } from 'lmdb';
import { FragfsError } from '../errors.js';
import { S_IFMT, msToNs, type InodeRecord } from './inode.js';
import type { LiveKeys } from './live-crypto.js';
import { LiveState } from './live-state.js';

/** The clear environment's data file, directly in the live folder. */
export const OLD_STATE_FILE = 'data.mdb';
const OLD_LOCK_FILE = 'lock.mdb';
const KEY_INO_BYTES = 6;

/** What the clear layout kept per inode (msgpack, target as text, times as ms). */
interface OldInode extends Omit<InodeRecord, 'target' | 'atimeNs' | 'mtimeNs' | 'ctimeNs'> {
  target?: string;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

export async function migrateLiveState(liveDir: string, newDir: string, keys: LiveKeys, owner: { uid: number; gid: number }): Promise<void> {
  const tmpDir = `${newDir}-converting`; // no dot: lmdb-js takes a path with an extension for a file
  await rm(tmpDir, { recursive: true, force: true });
  const old = open({ path: liveDir, readOnly: true, maxDbs: 16 });
  let state: LiveState | undefined;
  try {
    const inodes = old.openDB<OldInode, number>({ name: 'inodes' });
    const dirents = old.openDB<number, Buffer>({ name: 'dirents', keyEncoding: 'binary' });
    const extents = old.openDB<Buffer, Buffer>({ name: 'extents', keyEncoding: 'binary', encoding: 'binary' });
    const xattrs = old.openDB<Buffer, Buffer>({ name: 'xattrs', keyEncoding: 'binary', encoding: 'binary' });
    const counters = old.openDB<number, string>({ name: 'counters' });
    const orphans = old.openDB<boolean, number>({ name: 'orphans' });
    state = new LiveState({ path: tmpDir, readOnly: false, owner, keys });
    const s = state;
    const modes = new Map<number, number>();
    const xattrCounts = new Map<number, number>();
    for (const { key } of xattrs.getRange({})) {
      const ino = Buffer.from(key).readUIntBE(0, KEY_INO_BYTES);
      xattrCounts.set(ino, (xattrCounts.get(ino) ?? 0) + 1);
    }
    // Batches keep each transaction small; the whole conversion is redone if it is interrupted.
    const batch = <T>(items: Iterable<T>, fn: (x: T) => void) => {
      let pending: T[] = [];
      const flush = () => {
        const these = pending;
        pending = [];
        s.txn(() => these.forEach(fn));
      };
      for (const x of items) {
        pending.push(x);
        if (pending.length >= 10_000) flush();
      }
      flush();
    };
    batch(inodes.getRange({}), ({ key, value }) => {
      const { target, atimeMs, mtimeMs, ctimeMs, ...rest } = value;
      const rec: InodeRecord = { ...rest, atimeNs: msToNs(atimeMs), mtimeNs: msToNs(mtimeMs), ctimeNs: msToNs(ctimeMs), parents: [...rest.parents] };
      if (target !== undefined) rec.target = Buffer.from(target, 'utf8');
      const n = xattrCounts.get(key);
      if (n) rec.xattrs = n;
      modes.set(key, rec.mode);
      s.putInode(key, rec);
    });
    batch(dirents.getRange({}), ({ key, value }) => {
      const k = Buffer.from(key);
      s.putEntry(k.readUIntBE(0, KEY_INO_BYTES), k.subarray(KEY_INO_BYTES), value, (modes.get(value) ?? 0) & S_IFMT);
    });
    batch(extents.getRange({}), ({ key, value }) => {
      const k = Buffer.from(key);
      const v = Buffer.from(value);
      s.putExtent(k.readUIntBE(0, KEY_INO_BYTES), k.readUIntBE(KEY_INO_BYTES, KEY_INO_BYTES), {
        id: v.toString('hex', 0, 32),
        key: new Uint8Array(v.subarray(32, 64)),
        plainSize: v.readUInt32BE(64),
      });
    });
    batch(xattrs.getRange({}), ({ key, value }) => {
      const k = Buffer.from(key);
      s.putXattr(k.readUIntBE(0, KEY_INO_BYTES), k.subarray(KEY_INO_BYTES), Buffer.from(value));
    });
    batch(orphans.getKeys({}), (ino) => s.addOrphan(ino));
    const next = counters.get('nextIno');
    if (next !== undefined) s.txn(() => s.setNextIno(next));
    await s.sync();
  } catch (e) {
    await state?.close().catch(() => undefined);
    state = undefined;
    await old.close().catch(() => undefined);
    await rm(tmpDir, { recursive: true, force: true });
    if (e instanceof FragfsError) throw e;
    throw new FragfsError('IO', `converting the live state at ${liveDir} failed: ${(e as Error).message}`, { cause: e });
  }
  await state!.close();
  await old.close();
  await rm(newDir, { recursive: true, force: true });
  await rename(tmpDir, newDir);
  await rm(join(liveDir, OLD_STATE_FILE), { force: true });
  await rm(join(liveDir, OLD_LOCK_FILE), { force: true });
}
