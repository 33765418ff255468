// Translates the kernel's FUSE requests (as the fuse-kernel addon dispatches them) into Vfs calls and
// their results into replies. Both sides speak inode numbers and name bytes, so each request is one
// call: no path is rebuilt and nothing is kept per inode. It holds no filesystem logic: a FragfsError
// becomes its errno, anything else is a bug, logged once (without names: logs hold none) and answered
// EIO. Directory listings are the one state it keeps, per open directory, so that READDIR offsets
// stay stable while the directory changes.

import { constants as osConstants } from 'node:os';
import { FragfsError } from '../errors.js';
import type { Attr, AttrChanges, Caller, DirEntry, Vfs } from '../vfs/vfs-api.js';
import { nowNs } from '../vfs/inode.js';
import { Attr as A, InitFlag, Op, OpenReply, SetattrValid as V, Statfs as S, WriteFlag, type KernelReplies } from './kernel-binding.js';

const { EIO, ENOSYS, EOPNOTSUPP, ENODATA, ERANGE } = osConstants.errno;
const S_IFDIR = 0o040000;
const O_DIRECT = 0o40000;
const O_DIRECTORY = 0o200000;
/** st_blksize: the preferred I/O size cp, dd and stdio use; one FUSE request at most. */
export const PREFERRED_IO_BYTES = 1024 * 1024;

/**
 * xattrs fragfs refuses (EOPNOTSUPP on set, ENODATA on get), as a filesystem without the feature does.
 * POSIX ACLs: fragfs does not map them onto the mode, so storing them would let `cp -a` believe an
 * ACL set the permissions and skip its chmod; tools fall back to chmod. security.capability: FUSE
 * mounts are nosuid, so capabilities never apply (the addon answers it without JS).
 */
export const UNSUPPORTED_XATTRS: ReadonlySet<string> = new Set(['system.posix_acl_access', 'system.posix_acl_default', 'security.capability']);

export interface KernelAdapterOptions {
  /** Seconds the kernel may trust a name -> inode answer, an inode's attributes, a "no such name". */
  entryTimeoutS: number;
  attrTimeoutS: number;
  negativeTimeoutS: number;
  /**
   * Keep a file's page cache across opens. Safe whenever the kernel sees every change, which holds for
   * both kinds of fragfs mount: a snapshot never changes, and a read-write mount is the store's only writer.
   */
  keepCache: boolean;
  /** Let the kernel cache directory listings across opens (snapshot mounts: nothing changes). */
  cacheDirs: boolean;
  /** Where internal errors are logged (stderr by default). */
  log?: (line: string) => void;
  /** Count requests per op with their answer latency (reported by `opStatsReport`). */
  opStats?: boolean;
}

/** What INIT granted (KernelInfo.flags: InitFlag bits). */
export interface Granted {
  flags: number;
}

/** A directory open for listing: taken at offset 0, served by index (offsets are index + 1). */
interface DirListing {
  ino: number;
  entries: DirEntry[] | undefined;
  plus: boolean;
}

interface Counter {
  count: number;
  errors: number;
  inFlight: number;
  maxInFlight: number;
  totalNs: bigint;
  maxNs: bigint;
}

const O_ACCMODE = 3;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
/** Reads smaller than this (random reads; the kernel's read-ahead asks for more) fill the page cache with their whole block. */
const FILL_BELOW = 128 * 1024;
/** Page-cache fills queued at once (each holds a copy of its block until the kernel takes it). */
const MAX_FILLS = 8;

const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k.toLowerCase()]));
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

export class KernelAdapter {
  private readonly dirs = new Map<number, DirListing>();
  private readonly attrOut = new Float64Array(A.LENGTH);
  private readonly statfsOut = new Float64Array(S.LENGTH);
  private readonly readBuffers: Buffer[] = [];
  private readonly loggedBugs = new Set<string>();
  private readonly log: (line: string) => void;
  private readonly counters = new Map<string, Counter>();
  private readonly started = process.hrtime.bigint();
  /** Requests seen so far (the mount gives memory back once they stop coming). */
  requests = 0;
  /** Called once when the kernel side of the mount is gone. */
  onExit: () => void = () => undefined;
  /**
   * Copies bytes into the kernel's page cache of an inode (the addon's notifyStore), set once the
   * mount is up; resolves with the kernel's errno. See `fillAround` for when it is safe.
   */
  fillPages: ((ino: number, offset: number, data: Uint8Array) => Promise<number>) | undefined;
  /**
   * What INIT granted, set once the mount is up. Read at the first OPEN or CREATE, which the kernel
   * sends only after INIT; without it the adapter assumes nothing was granted.
   */
  granted: (() => Granted) | undefined;
  /** Drops the kernel's cached attributes of an inode (notifyInvalInode without data), set once the mount is up. */
  invalidateAttrs: ((ino: number) => Promise<unknown>) | undefined;
  private writebackGranted: boolean | undefined;
  /** Per inode: handles open with write access or O_TRUNC, and size changes under way. */
  private readonly changers = new Map<number, number>();
  /** Handles counted in `changers`: fh -> ino. */
  private readonly writeFhs = new Map<number, number>();
  /** CREATE requests under way (each may truncate an inode not known until it answers). */
  private creating = 0;
  /** Page-cache fills the kernel has not taken yet, per inode. */
  private readonly fills = new Map<number, Set<Promise<unknown>>>();
  private fillsQueued = 0;

  constructor(
    private readonly vfs: Vfs,
    private readonly out: KernelReplies,
    private readonly o: KernelAdapterOptions,
  ) {
    this.log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  }

  /** The addon's dispatch callback: one call per kernel request, in arrival order. */
  readonly dispatch = (op: number, unique: number, nodeid: number, uid: number, gid: number, _pid: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown, i?: unknown, j?: unknown): void => {
    this.requests++;
    switch (op) {
      case Op.EXIT:
        this.onExit();
        return;
      case Op.FORGET:
        this.vfs.forget(nodeid, typeof a === 'number' ? a : 1);
        return;
      case Op.INTERRUPT:
        // Every request here finishes on its own soon; answering it normally is allowed.
        return;
    }
    const name = OP_NAMES[op] ?? `op${op}`;
    const c0 = this.o.opStats ? this.begin(name) : undefined;
    let p: Promise<void>;
    try {
      p = this.handle(op, unique, nodeid, { uid, gid }, a, b, c, d, e, f, g, h, i, j);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => c0 && this.end(c0, false),
      (err: unknown) => {
        if (c0) this.end(c0, true);
        this.out.replyErr(unique, this.errnoOf(err, name, nodeid));
      },
    );
  };

  // --- op statistics (`fragfs mount --op-stats`)

  private begin(name: string): { c: Counter; t0: bigint } {
    let c = this.counters.get(name);
    if (!c) this.counters.set(name, (c = { count: 0, errors: 0, inFlight: 0, maxInFlight: 0, totalNs: 0n, maxNs: 0n }));
    c.inFlight++;
    if (c.inFlight > c.maxInFlight) c.maxInFlight = c.inFlight;
    return { c, t0: process.hrtime.bigint() };
  }

  private end(s: { c: Counter; t0: bigint }, failed: boolean): void {
    const ns = process.hrtime.bigint() - s.t0;
    s.c.inFlight--;
    s.c.count++;
    if (failed) s.c.errors++;
    s.c.totalNs += ns;
    if (ns > s.c.maxNs) s.c.maxNs = ns;
  }

  /** One line per op kind seen, busiest first. */
  opStatsReport(): string {
    const wallS = Number(process.hrtime.bigint() - this.started) / 1e9;
    const lines = [`fragfs: FUSE requests over ${wallS.toFixed(1)} s (count, errors, mean and max µs until the answer, most in flight)`];
    for (const [name, c] of [...this.counters].sort((x, y) => y[1].count - x[1].count)) {
      const meanUs = c.count ? Number(c.totalNs / BigInt(c.count)) / 1000 : 0;
      lines.push(
        `  ${name.padEnd(12)} ${String(c.count).padStart(9)} ${String(c.errors).padStart(8)} ${meanUs.toFixed(1).padStart(9)} ${(Number(c.maxNs) / 1000).toFixed(0).padStart(9)} ${String(c.maxInFlight).padStart(6)}`,
      );
    }
    return lines.join('\n');
  }

  /** errno of a failure. A bug is logged once by its stack frames, never its message (it may hold a name). */
  private errnoOf(e: unknown, op: string, ino: number): number {
    if (e instanceof FragfsError) return e.errno;
    const err = e instanceof Error ? e : new Error(String(e));
    const frames = (err.stack ?? '').split('\n').filter((l) => l.startsWith('    at ')).slice(0, 8).join('\n');
    const detail = process.env['FRAGFS_DEBUG'] ? `${err.message}\n` : '';
    const key = `${op}:${frames}`;
    if (!this.loggedBugs.has(key) && this.loggedBugs.size < 1000) {
      this.loggedBugs.add(key);
      this.log(`fragfs: internal error in ${op} on inode ${ino} (a bug, answered EIO): ${err.name}\n${detail}${frames}`);
    }
    return EIO;
  }

  // --- page-cache fills
  //
  // The kernel's page cache holds 4 KiB pages and fragfs decodes 1 MiB blocks: a random 4 KiB read
  // costs a whole block, and the next read of that block asks again. After a small read, the block's
  // other pages are handed to the kernel too (FUSE_NOTIFY_STORE), so later reads of them never leave
  // the kernel and the block cache need not hold the file.
  //
  // The kernel copies a fill over its pages whatever they hold and grows its file size to the fill's
  // end, so a fill MUST NOT carry bytes older than the kernel's: it is made only while no handle of
  // the inode may write (write access or O_TRUNC) and no size change is under way, from the block as
  // committed now (Vfs.cleanBlockAt: nothing of it buffered or in flight), clipped to the file's
  // size. Whatever may change the bytes first waits until the inode's queued fills have reached the
  // kernel: OPEN for writing, SETATTR of the size, and CREATE (which waits for every inode's). With
  // the writeback cache the kernel writes dirty pages back at close, before RELEASE, so an inode with
  // no writing handle has no dirty page.

  private changing(ino: number): void {
    this.changers.set(ino, (this.changers.get(ino) ?? 0) + 1);
  }

  private changed(ino: number): void {
    const n = (this.changers.get(ino) ?? 1) - 1;
    if (n > 0) this.changers.set(ino, n);
    else this.changers.delete(ino);
  }

  /** Resolves once every fill queued for `ino` (undefined: for any inode) has reached the kernel. */
  private async fillsLanded(ino?: number): Promise<void> {
    const sets = ino === undefined ? [...this.fills.values()] : [this.fills.get(ino) ?? new Set()];
    const ps = sets.flatMap((x) => [...x]);
    if (ps.length > 0) await Promise.all(ps);
  }

  /** After a small read of [position, position + n): hands the rest of its block to the kernel. */
  private fillAround(ino: number, fh: number, position: number, size: number, n: number): void {
    const fill = this.fillPages;
    if (!fill || size >= FILL_BELOW || n === 0 || this.creating > 0 || this.changers.has(ino) || this.fillsQueued >= MAX_FILLS) return;
    const b = this.vfs.cleanBlockAt?.(ino, fh, position);
    if (!b || (b.offset >= position && b.offset + b.data.byteLength <= position + n)) return;
    let set = this.fills.get(ino);
    if (!set) this.fills.set(ino, (set = new Set()));
    this.fillsQueued++;
    const p: Promise<unknown> = fill(ino, b.offset, b.data)
      .catch(() => undefined)
      .finally(() => {
        this.fillsQueued--;
        set.delete(p);
        if (set.size === 0 && this.fills.get(ino) === set) this.fills.delete(ino);
      });
    set.add(p);
  }

  // --- replies

  private fill(a: Attr, o: Float64Array = this.attrOut, at = 0): Float64Array {
    o[at + A.INO] = a.ino;
    o[at + A.MODE] = a.mode;
    o[at + A.NLINK] = a.nlink;
    o[at + A.UID] = a.uid;
    o[at + A.GID] = a.gid;
    o[at + A.RDEV] = a.rdev;
    o[at + A.SIZE] = a.size;
    o[at + A.BLOCKS] = a.blocks;
    putTime(o, at + A.ATIME_SEC, a.atimeNs);
    putTime(o, at + A.MTIME_SEC, a.mtimeNs);
    putTime(o, at + A.CTIME_SEC, a.ctimeNs);
    o[at + A.BLKSIZE] = PREFERRED_IO_BYTES;
    return o;
  }

  private entry(unique: number, a: Attr): void {
    this.out.replyEntry(unique, this.fill(a), this.o.entryTimeoutS, this.o.attrTimeoutS);
  }

  /** Whether INIT granted the write-back cache (asked once, at the first OPEN or CREATE). */
  private writeback(): boolean {
    this.writebackGranted ??= ((this.granted?.().flags ?? 0) & InitFlag.WRITEBACK_CACHE) !== 0;
    return this.writebackGranted;
  }

  /**
   * The open flags the vfs is given. With the write-back cache the kernel handles O_APPEND itself: it
   * writes at its own end of file and later writes the pages back at their offsets, through any
   * handle open for writing. A vfs that also appended would write them a second time at its end.
   */
  private vfsFlags(flags: number): number {
    return this.writeback() ? flags & ~O_APPEND : flags;
  }

  private openFlags(flags: number): number {
    // With the write-back cache the kernel serves O_DIRECT itself (through the page cache's direct I/O
    // path), updating its times and clearing setuid as it goes. A handle answered DIRECT_IO would
    // bypass both: the kernel keeps a regular file's mtime itself in that mode and never takes fragfs's,
    // so `stat` showed the time before the write for as long as the inode stayed cached.
    if ((flags & O_DIRECT) !== 0 && !this.writeback()) return OpenReply.DIRECT_IO;
    return this.o.keepCache ? OpenReply.KEEP_CACHE : 0;
  }

  private takeReadBuffer(size: number): Buffer {
    if (size === PREFERRED_IO_BYTES) return this.readBuffers.pop() ?? Buffer.allocUnsafeSlow(size);
    return Buffer.allocUnsafe(size);
  }

  private giveReadBuffer(buf: Buffer): void {
    // The addon copies a reply before replyBuf returns, so the buffer is free again.
    if (buf.length === PREFERRED_IO_BYTES && this.readBuffers.length < 16) this.readBuffers.push(buf);
  }

  /** getxattr/listxattr: size 0 asks for the length; a too-small buffer is ERANGE (getxattr(2)). */
  private sized(unique: number, value: Buffer, size: number): void {
    if (size === 0) this.out.replyXattrSize(unique, value.length);
    else if (value.length > size) this.out.replyErr(unique, ERANGE);
    else this.out.replyBuf(unique, value, value.length);
  }

  // --- requests

  private async handle(op: number, unique: number, ino: number, caller: Caller, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown, i?: unknown, j?: unknown): Promise<void> {
    const vfs = this.vfs;
    const out = this.out;
    switch (op) {
      case Op.LOOKUP: {
        let attr: Attr;
        try {
          attr = await vfs.lookup(ino, a as Buffer);
        } catch (err) {
          if (err instanceof FragfsError && err.code === 'NOT_FOUND' && this.o.negativeTimeoutS > 0) {
            // ino 0: "no such name", and the kernel may remember that for negativeTimeoutS.
            this.attrOut.fill(0);
            out.replyEntry(unique, this.attrOut, this.o.negativeTimeoutS, 0);
            return;
          }
          throw err;
        }
        this.entry(unique, attr);
        return;
      }
      case Op.GETATTR: {
        const fh = a as number;
        out.replyAttr(unique, this.fill(await vfs.getattr(ino, fh >= 0 ? fh : undefined)), this.o.attrTimeoutS);
        return;
      }
      case Op.SETATTR: {
        const valid = a as number;
        const sizing = (valid & V.SIZE) !== 0;
        if (sizing) {
          this.changing(ino);
          await this.fillsLanded(ino);
        }
        try {
          out.replyAttr(unique, this.fill(await vfs.setattr(ino, fhOf(valid, b as number), changesOf(valid, c, d, e, f, [g, h], [i, j]))), this.o.attrTimeoutS);
        } finally {
          if (sizing) this.changed(ino);
        }
        return;
      }
      case Op.READLINK: {
        const target = await vfs.readlink(ino);
        out.replyBuf(unique, target, target.length);
        return;
      }
      case Op.SYMLINK:
        this.entry(unique, await vfs.symlink(ino, a as Buffer, b as Buffer, caller));
        return;
      case Op.MKNOD:
        this.entry(unique, await vfs.mknod(ino, a as Buffer, b as number, c as number, caller));
        return;
      case Op.MKDIR:
        this.entry(unique, await vfs.mkdir(ino, a as Buffer, b as number, caller));
        return;
      case Op.UNLINK:
        await vfs.unlink(ino, a as Buffer);
        out.replyErr(unique, 0);
        return;
      case Op.RMDIR:
        await vfs.rmdir(ino, a as Buffer);
        out.replyErr(unique, 0);
        return;
      case Op.RENAME:
      case Op.RENAME2:
        await vfs.rename(ino, a as Buffer, b as number, c as Buffer, (d as number) ?? 0);
        out.replyErr(unique, 0);
        return;
      case Op.LINK:
        this.entry(unique, await vfs.link(a as number, ino, b as Buffer));
        return;
      case Op.OPEN: {
        const flags = this.vfsFlags(a as number);
        if ((flags & O_ACCMODE) === 0 && (flags & O_TRUNC) === 0) {
          out.replyOpen(unique, await vfs.open(ino, flags), this.openFlags(flags));
          return;
        }
        this.changing(ino);
        let fh: number;
        try {
          await this.fillsLanded(ino);
          fh = await vfs.open(ino, flags);
        } catch (err) {
          this.changed(ino);
          throw err;
        }
        this.writeFhs.set(fh, ino);
        out.replyOpen(unique, fh, this.openFlags(flags));
        return;
      }
      case Op.READ: {
        const size = c as number;
        const buf = this.takeReadBuffer(size);
        try {
          const n = await vfs.read(ino, a as number, buf, size, b as number);
          out.replyBuf(unique, buf, n);
          this.fillAround(ino, a as number, b as number, size, n);
        } finally {
          this.giveReadBuffer(buf);
        }
        return;
      }
      case Op.WRITE: {
        const data = c as Buffer;
        // The kernel flags writes of processes without CAP_FSETID that bypass its page cache (the
        // cached path clears the bits with a SETATTR of its own first). It keeps the mode it cached
        // and `stat -c %a` asks for nothing else, so a mode the write changes is invalidated before
        // the write is answered.
        try {
          const kill = ((d as number) & WriteFlag.KILL_SUIDGID) !== 0 && ((await vfs.getattr(ino, a as number)).mode & 0o6000) !== 0;
          const written = await vfs.write(ino, a as number, data, data.length, b as number, kill);
          if (kill) await this.invalidateAttrs?.(ino);
          out.replyWrite(unique, written);
        } finally {
          // The vfs copies what it keeps (Vfs.write's contract), so a 1 MiB payload can go now
          // rather than at V8's next full collection.
          out.releasePayload?.(data);
        }
        return;
      }
      case Op.STATFS: {
        const s = await vfs.statfs();
        const o = this.statfsOut;
        o[S.BSIZE] = s.bsize;
        o[S.FRSIZE] = s.frsize;
        o[S.BLOCKS] = s.blocks;
        o[S.BFREE] = s.bfree;
        o[S.BAVAIL] = s.bavail;
        o[S.FILES] = s.files;
        o[S.FFREE] = s.ffree;
        o[S.NAMEMAX] = s.namemax;
        out.replyStatfs(unique, o);
        return;
      }
      case Op.RELEASE: {
        const fh = a as number;
        // Taken now: the Vfs may give the number to another open before release() returns.
        const wino = this.writeFhs.get(fh);
        this.writeFhs.delete(fh);
        try {
          // Nobody waits for a RELEASE (close(2) has returned), but its flush (a block encoded and
          // committed) ran before the request right behind it, mostly the writer's next LOOKUP or
          // CREATE: started from the check phase, it runs once the requests already here are
          // answered. Untar of 12,000 files: LOOKUP 61.6 -> 51.5 us, CREATE 134 -> 113 us.
          await new Promise((r) => setImmediate(r));
          await vfs.release(ino, fh);
        } finally {
          // Counted down once the file's buffered bytes are committed: until then a fill could be older.
          if (wino !== undefined) this.changed(wino);
        }
        out.replyErr(unique, 0);
        return;
      }
      case Op.FSYNC:
        await vfs.fsync(ino, a as number, b === 1);
        out.replyErr(unique, 0);
        return;
      case Op.SETXATTR: {
        const name = a as Buffer;
        if (UNSUPPORTED_XATTRS.has(name.toString('latin1'))) {
          out.replyErr(unique, EOPNOTSUPP);
          return;
        }
        await vfs.setxattr(ino, name, b as Buffer, c as number);
        out.replyErr(unique, 0);
        return;
      }
      case Op.GETXATTR: {
        const name = a as Buffer;
        if (UNSUPPORTED_XATTRS.has(name.toString('latin1'))) {
          out.replyErr(unique, ENODATA);
          return;
        }
        this.sized(unique, await vfs.getxattr(ino, name), b as number);
        return;
      }
      case Op.LISTXATTR: {
        const names = await vfs.listxattr(ino);
        this.sized(unique, Buffer.concat(names.flatMap((n) => [n, Buffer.alloc(1)])), a as number);
        return;
      }
      case Op.REMOVEXATTR:
        await vfs.removexattr(ino, a as Buffer);
        out.replyErr(unique, 0);
        return;
      case Op.FLUSH:
        // The Vfs stores a file's last block at RELEASE (vfs-api.ts), so the kernel need not ask:
        // ENOSYS makes it stop sending FLUSH for this mount, and close(2) needs no round trip.
        await vfs.flush(ino, a as number);
        out.replyErr(unique, ENOSYS);
        return;
      case Op.OPENDIR: {
        const fh = await vfs.open(ino, O_DIRECTORY);
        this.dirs.set(fh, { ino, entries: undefined, plus: false });
        out.replyOpen(unique, fh, this.o.cacheDirs ? OpenReply.CACHE_DIR | OpenReply.KEEP_CACHE : 0);
        return;
      }
      case Op.READDIR:
      case Op.READDIRPLUS:
        await this.readdir(unique, ino, a as number, b as number, c as number, op === Op.READDIRPLUS);
        return;
      case Op.RELEASEDIR: {
        const fh = a as number;
        this.dirs.delete(fh);
        await vfs.release(ino, fh);
        out.replyErr(unique, 0);
        return;
      }
      case Op.FSYNCDIR:
        // The Vfs has no per-directory sync: making every directory change durable is flushAll.
        if (!vfs.readOnly) await vfs.flushAll();
        out.replyErr(unique, 0);
        return;
      case Op.ACCESS:
        await vfs.access(ino, a as number);
        out.replyErr(unique, 0);
        return;
      case Op.CREATE: {
        const flags = this.vfsFlags(c as number);
        this.creating++;
        let made: { attr: Attr; fh: number };
        try {
          await this.fillsLanded();
          made = await vfs.create(ino, a as Buffer, b as number, flags, caller);
          if ((flags & O_ACCMODE) !== 0 || (flags & O_TRUNC) !== 0) {
            this.changing(made.attr.ino);
            this.writeFhs.set(made.fh, made.attr.ino);
          }
        } finally {
          this.creating--;
        }
        const { attr, fh } = made;
        out.replyCreate(unique, this.fill(attr), this.o.entryTimeoutS, this.o.attrTimeoutS, fh, this.openFlags(flags));
        return;
      }
      case Op.FALLOCATE:
        await vfs.fallocate(ino, a as number, d as number, b as number, c as number);
        out.replyErr(unique, 0);
        return;
      default:
        throw new FragfsError('NOT_SUPPORTED', `FUSE request ${op} is not implemented`);
    }
  }

  /** READDIR and READDIRPLUS: the listing is taken at offset 0 (again on rewinddir) and served by index. */
  private async readdir(unique: number, ino: number, fh: number, offset: number, size: number, plus: boolean): Promise<void> {
    let d = this.dirs.get(fh);
    if (!d) {
      // A directory opened before this adapter, or without OPENDIR: list it for this request.
      d = { ino, entries: undefined, plus };
    }
    // A listing with attributes serves a plain READDIR too: the kernel asks for the rest of a
    // directory without them after its first READDIRPLUS (READDIRPLUS_AUTO), and listing the
    // directory again for it cost a third of `du`'s time.
    if (offset === 0 || d.entries === undefined || (plus && !d.plus)) {
      d.entries = await this.vfs.readdir(ino, plus);
      d.plus = plus;
      if (this.dirs.has(fh)) this.dirs.set(fh, d);
    }
    // Offsets: 1 is after '.', 2 after '..', 2 + k + 1 after entries[k].
    const entries = d.entries;
    const from = Math.max(0, offset);
    const names: Buffer[] = [];
    const inos: number[] = [];
    const modes: number[] = [];
    const offsets: number[] = [];
    const self = plus ? await this.vfs.getattr(ino) : undefined;
    const want = Math.min(entries.length + 2 - from, Math.ceil(size / 32) + 1);
    for (let k = from; k < from + want; k++) {
      if (k === 0 || k === 1) {
        names.push(k === 0 ? DOT : DOTDOT);
        inos.push(ino);
        modes.push(S_IFDIR);
      } else {
        const x = entries[k - 2]!;
        names.push(x.name);
        inos.push(x.ino);
        modes.push(x.mode);
      }
      offsets.push(k + 1);
    }
    if (!plus) {
      this.out.replyDir(unique, size, names, inos, modes, offsets);
      return;
    }
    const attrs = new Float64Array(names.length * A.LENGTH);
    for (let i = 0; i < names.length; i++) {
      const k = from + i;
      const at = i * A.LENGTH;
      if (k < 2) this.fill(self!, attrs, at);
      else this.fill(entries[k - 2]!.attr!, attrs, at);
    }
    const sent = this.out.replyDirPlus(unique, size, names, attrs, offsets, this.o.entryTimeoutS, this.o.attrTimeoutS);
    // Each entry the kernel received is a reference (the dots are not); those not sent come again.
    if (this.vfs.listed) {
      const got: number[] = [];
      for (let i = 0; i < sent; i++) if (from + i >= 2) got.push(inos[i]!);
      if (got.length > 0) this.vfs.listed(got);
    }
  }
}

/** The handle a SETATTR came through (ftruncate, fchmod), or undefined. */
function fhOf(valid: number, fh: number): number | undefined {
  return valid & V.FH && fh >= 0 ? fh : undefined;
}

const NS_PER_S = 1_000_000_000n;

/** The last time putTime split: an answer's three times are often one (a create, a write). */
let lastNs = 0n;
let lastSec = 0;
let lastNsec = 0;

/** A time in ns as the attribute array's (seconds, nanoseconds) at `o[at]`, `o[at + 1]`. */
function putTime(o: Float64Array, at: number, ns: bigint): void {
  if (ns !== lastNs) {
    let sec = ns / NS_PER_S;
    let nsec = ns - sec * NS_PER_S;
    if (nsec < 0n) {
      sec -= 1n;
      nsec += NS_PER_S;
    }
    lastNs = ns;
    lastSec = Number(sec);
    lastNsec = Number(nsec);
  }
  o[at] = lastSec;
  o[at + 1] = lastNsec;
}

/** Beyond a signed 64-bit ns count: the vfs answers EINVAL. */
const BAD_TIME = 1n << 64n;

/** A SETATTR's (seconds, nanoseconds) as ns; what is no timespec (not whole, nsec out of range): BAD_TIME. */
function timeOf([sec, nsec]: [unknown, unknown]): bigint {
  if (!Number.isInteger(sec) || !Number.isInteger(nsec) || (nsec as number) < 0 || (nsec as number) >= 1e9) return BAD_TIME;
  return BigInt(sec as number) * NS_PER_S + BigInt(nsec as number);
}

/** What a SETATTR changes, from its valid bits. */
function changesOf(valid: number, mode: unknown, uid: unknown, gid: unknown, size: unknown, atime: [unknown, unknown], mtime: [unknown, unknown]): AttrChanges {
  const now = nowNs();
  const c: AttrChanges = {};
  if (valid & V.MODE) c.mode = mode as number;
  if (valid & V.UID) c.uid = uid as number;
  if (valid & V.GID) c.gid = gid as number;
  if (valid & V.SIZE) c.size = size as number;
  if (valid & V.ATIME) c.atimeNs = valid & V.ATIME_NOW ? now : timeOf(atime);
  if (valid & V.MTIME) c.mtimeNs = valid & V.MTIME_NOW ? now : timeOf(mtime);
  return c;
}
