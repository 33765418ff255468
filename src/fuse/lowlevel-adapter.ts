// Translates libfuse's low-level requests (inode numbers, queued by the fragfs-fuse addon) into the
// Vfs's path-based calls and their results into replies. It owns the kernel's view of the tree: which
// inode numbers the kernel holds (lookup counts, FORGET) and one name per inode to build a path from.
// Like fuse-adapter.ts it holds no filesystem logic: a FragfsError becomes its errno, anything else
// is a bug (stack logged once) answered EIO.
//
// Node ids are the Vfs's own inode numbers (the root is 1 in both), so every name of a hard link is
// one kernel inode and the kernel may cache attributes: a change through one name is seen through
// all. That is what lets a read-write mount use attribute and entry timeouts, which libfuse 2's
// path-based high-level API cannot (each name there is its own kernel inode).

import { constants as osConstants } from 'node:os';
import { FragfsError } from '../errors.js';
import type { Attr, AttrChanges, Caller, DirEntry, Vfs } from '../vfs/vfs-api.js';
import { PREFERRED_IO_BYTES, UNSUPPORTED_XATTRS } from './fuse-adapter.js';
import { Attr as A, Op as LLOp, OpenReply, SetAttr, Statfs as S, type LowLevelReplies } from './lowlevel-binding.js';

const { EIO, ENOSYS, EOPNOTSUPP, ENODATA, ERANGE } = osConstants.errno;
const ROOT = 1;
const S_IFDIR = 0o040000;
const O_DIRECT = (osConstants as unknown as Record<string, number>)['O_DIRECT'] ?? 0o40000;
const { MODE: SET_MODE, UID: SET_UID, GID: SET_GID, SIZE: SET_SIZE, ATIME: SET_ATIME, MTIME: SET_MTIME, ATIME_NOW: SET_ATIME_NOW, MTIME_NOW: SET_MTIME_NOW } = SetAttr;
/** The smallest dirent fuse_add_direntry writes (24-byte header, name padded to 8). */
const MIN_DIRENT_BYTES = 32;


export interface LowLevelAdapterOptions {
  /** Seconds the kernel may trust a name -> inode answer, an inode's attributes, a "no such name". */
  entryTimeoutS: number;
  attrTimeoutS: number;
  negativeTimeoutS: number;
  /**
   * Keep a file's page cache across opens. Safe whenever the kernel sees every change, which holds for
   * both kinds of fragfs mount: a snapshot never changes, and a read-write mount is the store's only writer.
   */
  keepCache: boolean;
  /** Owner of new inodes when the kernel does not say who the caller is. */
  defaultCaller: Caller;
  log?: (line: string) => void;
  /** Count requests per op with their answer latency (reported by `opStatsReport`). */
  opStats?: boolean;
}

interface NameRef {
  parent: number;
  name: string;
}

/** An inode the kernel knows: how many lookups it holds, and its names it has seen. */
interface KernelNode {
  lookups: number;
  names: NameRef[];
  /** For messages about an inode with no name left (unlinked, still open). */
  lastPath: string;
}

interface DirHandle {
  ino: number;
  path: string;
  names: string[];
  inos: number[];
  modes: number[];
  /** Served from offset 0 once: the next offset-0 read is a rewinddir and lists again. */
  served: boolean;
}

interface Counter {
  count: number;
  errors: number;
  totalNs: bigint;
  maxNs: bigint;
}

const keyOf = (parent: number, name: string) => `${parent}/${name}`;

/**
 * Directory handles are the adapter's own, numbered from here; file handles are the Vfs's (small
 * numbers). The kernel passes a handle with getattr and setattr when it has one (fstat, ftruncate).
 */
const DIR_FH_BASE = 2 ** 40;
const isFileHandle = (fh: number) => fh >= 0 && fh < DIR_FH_BASE;

export class LowLevelAdapter {
  private readonly nodes = new Map<number, KernelNode>();
  private readonly byName = new Map<string, number>();
  private readonly dirs = new Map<number, DirHandle>();
  private nextDirFh = DIR_FH_BASE;
  private readonly attrOut = new Float64Array(A.LENGTH);
  private readonly statfsOut = new Float64Array(S.LENGTH);
  private readonly readBuffers: Buffer[] = [];
  private readonly loggedBugs = new Set<string>();
  private readonly log: (line: string) => void;
  private readonly counters = new Map<string, Counter>();
  private readonly started = process.hrtime.bigint();
  /** Called once when the kernel side of the mount is gone. */
  onExit: () => void = () => undefined;

  constructor(
    private readonly vfs: Vfs,
    private readonly out: LowLevelReplies,
    private readonly o: LowLevelAdapterOptions,
  ) {
    this.log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.nodes.set(ROOT, { lookups: 1, names: [], lastPath: '/' });
  }

  /** How many inodes the kernel holds references to (tests check FORGET is honoured). */
  get knownInodes(): number {
    return this.nodes.size;
  }

  /** The addon's dispatch callback: one call per kernel request, in arrival order. */
  readonly dispatch = (op: number, req: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown, i?: unknown): void => {
    switch (op) {
      case LLOp.EXIT:
        this.onExit();
        return;
      case LLOp.FORGET:
        this.forget(a as number, b as number);
        return;
    }
    const name = OP_NAMES[op] ?? `op${op}`;
    const t0 = this.o.opStats ? process.hrtime.bigint() : 0n;
    let p: Promise<void>;
    try {
      p = this.handle(op, req, a, b, c, d, e, f, g, h, i);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => this.count(name, t0, false),
      (err: unknown) => {
        this.count(name, t0, true);
        this.out.replyErr(req, this.errnoOf(err, name, req));
      },
    );
  };

  private count(name: string, t0: bigint, failed: boolean): void {
    if (!this.o.opStats) return;
    const ns = process.hrtime.bigint() - t0;
    let c = this.counters.get(name);
    if (!c) this.counters.set(name, (c = { count: 0, errors: 0, totalNs: 0n, maxNs: 0n }));
    c.count++;
    if (failed) c.errors++;
    c.totalNs += ns;
    if (ns > c.maxNs) c.maxNs = ns;
  }

  /** One line per op kind seen, busiest first (`fragfs mount --op-stats`). */
  opStatsReport(): string {
    const wallS = Number(process.hrtime.bigint() - this.started) / 1e9;
    const lines = [`fragfs: FUSE ops over ${wallS.toFixed(1)} s (count, errors, mean and max µs until the answer)`];
    for (const [name, c] of [...this.counters].sort((x, y) => y[1].count - x[1].count)) {
      const meanUs = Number(c.totalNs / BigInt(c.count)) / 1000;
      lines.push(`  ${name.padEnd(12)} ${String(c.count).padStart(9)} ${String(c.errors).padStart(8)} ${meanUs.toFixed(1).padStart(9)} ${(Number(c.maxNs) / 1000).toFixed(0).padStart(9)}`);
    }
    return lines.join('\n');
  }

  private errnoOf(e: unknown, op: string, req: number): number {
    if (e instanceof FragfsError) return e.errno;
    const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
    if (!this.loggedBugs.has(stack) && this.loggedBugs.size < 1000) {
      this.loggedBugs.add(stack);
      this.log(`fragfs: internal error in ${op} (request ${req}; a bug, answered EIO): ${stack}`);
    }
    return EIO;
  }

  // --- the kernel's inodes and their names

  private pathOf(ino: number): string {
    if (ino === ROOT) return '/';
    const node = this.nodes.get(ino);
    const ref = node?.names[0];
    if (!node || !ref) throw new FragfsError('NOT_FOUND', `inode ${ino}: no name left`, node ? { path: node.lastPath } : {});
    const parent = this.pathOf(ref.parent);
    return parent === '/' ? `/${ref.name}` : `${parent}/${ref.name}`;
  }

  private childPath(parent: number, name: string): string {
    const p = this.pathOf(parent);
    return p === '/' ? `/${name}` : `${p}/${name}`;
  }

  /** Path for an op on an open file: its name if it has one, else the last it had (messages only). */
  private handlePath(ino: number): string {
    const node = this.nodes.get(ino);
    if (ino === ROOT) return '/';
    return node?.lastPath ?? `inode ${ino}`;
  }

  /** Records that the kernel now holds one more lookup of attr.ino under parent/name. */
  private remember(parent: number, name: string, path: string, ino: number): void {
    if (ino === ROOT) return;
    this.addName(parent, name, ino);
    const node = this.nodes.get(ino)!;
    node.lookups++;
    node.lastPath = path;
  }

  private addName(parent: number, name: string, ino: number): void {
    const key = keyOf(parent, name);
    const was = this.byName.get(key);
    if (was !== undefined && was !== ino) this.dropName(parent, name);
    let node = this.nodes.get(ino);
    if (!node) this.nodes.set(ino, (node = { lookups: 0, names: [], lastPath: '' }));
    if (was !== ino) {
      node.names.push({ parent, name });
      this.byName.set(key, ino);
    }
  }

  private dropName(parent: number, name: string): void {
    const key = keyOf(parent, name);
    const ino = this.byName.get(key);
    if (ino === undefined) return;
    this.byName.delete(key);
    const node = this.nodes.get(ino);
    if (node) node.names = node.names.filter((r) => r.parent !== parent || r.name !== name);
  }

  private forget(ino: number, n: number): void {
    if (ino === ROOT) return;
    const node = this.nodes.get(ino);
    if (!node) return;
    node.lookups -= n;
    if (node.lookups > 0) return;
    for (const r of node.names) {
      const key = keyOf(r.parent, r.name);
      if (this.byName.get(key) === ino) this.byName.delete(key);
    }
    this.nodes.delete(ino);
  }

  // --- replies

  private fillAttr(a: Attr): Float64Array {
    const o = this.attrOut;
    o[A.INO] = a.ino;
    o[A.MODE] = a.mode;
    o[A.NLINK] = a.nlink;
    o[A.UID] = a.uid;
    o[A.GID] = a.gid;
    o[A.RDEV] = a.rdev;
    o[A.SIZE] = a.size;
    o[A.BLOCKS] = a.blocks;
    o[A.ATIME_MS] = a.atimeMs;
    o[A.MTIME_MS] = a.mtimeMs;
    o[A.CTIME_MS] = a.ctimeMs;
    o[A.BLKSIZE] = PREFERRED_IO_BYTES;
    return o;
  }

  private replyEntry(req: number, parent: number, name: string, path: string, a: Attr): void {
    this.remember(parent, name, path, a.ino);
    this.out.replyEntry(req, this.fillAttr(a), 0, this.o.entryTimeoutS, this.o.attrTimeoutS);
  }

  private callerOf(uid: unknown, gid: unknown): Caller {
    return {
      uid: typeof uid === 'number' ? uid : this.o.defaultCaller.uid,
      gid: typeof gid === 'number' ? gid : this.o.defaultCaller.gid,
    };
  }

  private takeReadBuffer(size: number): Buffer {
    if (size === PREFERRED_IO_BYTES) return this.readBuffers.pop() ?? Buffer.allocUnsafeSlow(size);
    return Buffer.allocUnsafe(size);
  }

  private giveReadBuffer(b: Buffer): void {
    // The addon copies a reply into the kernel before replyBuf returns, so the buffer is free again.
    if (b.length === PREFERRED_IO_BYTES && this.readBuffers.length < 64) this.readBuffers.push(b);
  }

  // --- requests

  private async handle(op: number, req: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown, i?: unknown): Promise<void> {
    const vfs = this.vfs;
    const out = this.out;
    switch (op) {
      case LLOp.LOOKUP: {
        const path = this.childPath(a as number, b as string);
        let attr: Attr;
        try {
          attr = await vfs.getattr(path);
        } catch (err) {
          if (err instanceof FragfsError && err.code === 'NOT_FOUND' && this.o.negativeTimeoutS > 0) {
            // ino 0: "no such name", and the kernel may remember that for negativeTimeoutS.
            this.attrOut.fill(0);
            out.replyEntry(req, this.attrOut, 0, this.o.negativeTimeoutS, 0);
            return;
          }
          throw err;
        }
        this.replyEntry(req, a as number, b as string, path, attr);
        return;
      }
      case LLOp.GETATTR: {
        const ino = a as number;
        const fh = b as number;
        const attr = isFileHandle(fh) ? await vfs.fgetattr(this.handlePath(ino), fh) : await vfs.getattr(this.pathOf(ino));
        out.replyAttr(req, this.fillAttr(attr), this.o.attrTimeoutS);
        return;
      }
      case LLOp.SETATTR: {
        await this.setattr(req, a as number, b as number, c as number, d as number, e as number, f as number, g as number, h as number, i as number);
        return;
      }
      case LLOp.READLINK:
        out.replyReadlink(req, await vfs.readlink(this.pathOf(a as number)));
        return;
      case LLOp.MKNOD: {
        const path = this.childPath(a as number, b as string);
        await vfs.mknod(path, c as number, d as number, this.callerOf(e, f));
        this.replyEntry(req, a as number, b as string, path, await vfs.getattr(path));
        return;
      }
      case LLOp.MKDIR: {
        const path = this.childPath(a as number, b as string);
        await vfs.mkdir(path, c as number, this.callerOf(d, e));
        this.replyEntry(req, a as number, b as string, path, await vfs.getattr(path));
        return;
      }
      case LLOp.UNLINK:
      case LLOp.RMDIR: {
        const path = this.childPath(a as number, b as string);
        await (op === LLOp.UNLINK ? vfs.unlink(path) : vfs.rmdir(path));
        this.dropName(a as number, b as string);
        out.replyErr(req, 0);
        return;
      }
      case LLOp.SYMLINK: {
        const path = this.childPath(a as number, b as string);
        await vfs.symlink(c as string, path, this.callerOf(d, e));
        this.replyEntry(req, a as number, b as string, path, await vfs.getattr(path));
        return;
      }
      case LLOp.RENAME: {
        const [parent, name, newParent, newName] = [a as number, b as string, c as number, d as string];
        const from = this.childPath(parent, name);
        const to = this.childPath(newParent, newName);
        await vfs.rename(from, to);
        const moved = this.byName.get(keyOf(parent, name));
        const replaced = this.byName.get(keyOf(newParent, newName));
        // Two names of one inode: rename(2) does nothing and both names stay.
        if (moved === undefined || moved !== replaced) {
          this.dropName(newParent, newName);
          if (moved !== undefined) {
            this.dropName(parent, name);
            this.addName(newParent, newName, moved);
            this.nodes.get(moved)!.lastPath = to;
          }
        }
        out.replyErr(req, 0);
        return;
      }
      case LLOp.LINK: {
        const path = this.childPath(b as number, c as string);
        await vfs.link(this.pathOf(a as number), path);
        this.replyEntry(req, b as number, c as string, path, await vfs.getattr(path));
        return;
      }
      case LLOp.OPEN: {
        const flags = b as number;
        const fh = await vfs.open(this.pathOf(a as number), flags);
        out.replyOpen(req, fh, this.openFlags(flags));
        return;
      }
      case LLOp.READ: {
        const size = c as number;
        const buf = this.takeReadBuffer(size);
        try {
          const n = await vfs.read(this.handlePath(a as number), b as number, buf, size, d as number);
          out.replyBuf(req, buf, n);
        } finally {
          this.giveReadBuffer(buf);
        }
        return;
      }
      case LLOp.WRITE: {
        const data = c as Buffer;
        out.replyWrite(req, await vfs.write(this.handlePath(a as number), b as number, data, data.length, d as number));
        return;
      }
      case LLOp.FLUSH:
        // The Vfs's flush stores nothing (release does, see vfs-api.ts), so the kernel need not ask:
        // ENOSYS makes it stop sending FLUSH for this mount (fc->no_flush), and close(2) succeeds
        // without a round trip. One request fewer per file in `tar x` or `cp -a`.
        await vfs.flush(this.handlePath(a as number), b as number);
        out.replyErr(req, ENOSYS);
        return;
      case LLOp.RELEASE:
        await vfs.release(this.handlePath(a as number), b as number);
        out.replyErr(req, 0);
        return;
      case LLOp.FSYNC:
        await vfs.fsync(this.handlePath(a as number), b as number, c === 1);
        out.replyErr(req, 0);
        return;
      case LLOp.OPENDIR: {
        const ino = a as number;
        const path = this.pathOf(ino);
        const dir: DirHandle = { ino, path, names: [], inos: [], modes: [], served: false };
        await this.list(dir);
        const fh = this.nextDirFh++;
        this.dirs.set(fh, dir);
        out.replyOpen(req, fh, 0);
        return;
      }
      case LLOp.READDIR: {
        const dir = this.dirs.get(b as number);
        if (!dir) throw new FragfsError('BAD_FD', `directory handle ${String(b)} is not open`);
        const size = c as number;
        const offset = d as number;
        if (offset === 0) {
          if (dir.served) await this.list(dir);
          dir.served = true;
        }
        const end = Math.min(dir.names.length, offset + Math.ceil(size / MIN_DIRENT_BYTES) + 1);
        out.replyDir(req, size, offset, dir.names.slice(offset, end), dir.inos.slice(offset, end), dir.modes.slice(offset, end));
        return;
      }
      case LLOp.RELEASEDIR:
        this.dirs.delete(b as number);
        out.replyErr(req, 0);
        return;
      case LLOp.FSYNCDIR:
        // The Vfs has no per-directory sync: making every directory change durable is flushAll.
        if (!vfs.readOnly) await vfs.flushAll();
        out.replyErr(req, 0);
        return;
      case LLOp.STATFS: {
        const s = await vfs.statfs('/');
        const o = this.statfsOut;
        o[S.BSIZE] = s.bsize;
        o[S.FRSIZE] = s.frsize;
        o[S.BLOCKS] = s.blocks;
        o[S.BFREE] = s.bfree;
        o[S.BAVAIL] = s.bavail;
        o[S.FILES] = s.files;
        o[S.FFREE] = s.ffree;
        o[S.FAVAIL] = s.favail;
        o[S.FSID] = 0;
        o[S.FLAG] = 0;
        o[S.NAMEMAX] = s.namemax;
        out.replyStatfs(req, o);
        return;
      }
      case LLOp.SETXATTR: {
        const name = b as string;
        if (UNSUPPORTED_XATTRS.has(name)) {
          out.replyErr(req, EOPNOTSUPP);
          return;
        }
        await vfs.setxattr(this.pathOf(a as number), name, c as Buffer, d as number);
        out.replyErr(req, 0);
        return;
      }
      case LLOp.GETXATTR: {
        const name = b as string;
        if (UNSUPPORTED_XATTRS.has(name)) {
          out.replyErr(req, ENODATA);
          return;
        }
        this.replySized(req, await vfs.getxattr(this.pathOf(a as number), name), c as number);
        return;
      }
      case LLOp.LISTXATTR: {
        const names = await vfs.listxattr(this.pathOf(a as number));
        this.replySized(req, Buffer.concat(names.map((n) => Buffer.from(`${n}\0`))), b as number);
        return;
      }
      case LLOp.REMOVEXATTR:
        await vfs.removexattr(this.pathOf(a as number), b as string);
        out.replyErr(req, 0);
        return;
      case LLOp.ACCESS:
        await vfs.access(this.pathOf(a as number), b as number);
        out.replyErr(req, 0);
        return;
      case LLOp.CREATE: {
        const [parent, name, mode, flags] = [a as number, b as string, c as number, d as number];
        const path = this.childPath(parent, name);
        const fh = await vfs.create(path, mode, flags, this.callerOf(e, f));
        let attr: Attr;
        try {
          attr = await vfs.fgetattr(path, fh);
        } catch (err) {
          await vfs.release(path, fh).catch(() => undefined);
          throw err;
        }
        this.remember(parent, name, path, attr.ino);
        out.replyCreate(req, this.fillAttr(attr), 0, this.o.entryTimeoutS, this.o.attrTimeoutS, fh, this.openFlags(flags));
        return;
      }
      default:
        throw new FragfsError('NOT_SUPPORTED', `FUSE request ${op} is not implemented`);
    }
  }

  private openFlags(flags: number): number {
    if (flags & O_DIRECT) return OpenReply.DIRECT_IO;
    return this.o.keepCache ? OpenReply.KEEP_CACHE : 0;
  }

  /** getxattr/listxattr: size 0 asks for the length; a too-small buffer is ERANGE (getxattr(2)). */
  private replySized(req: number, value: Buffer, size: number): void {
    if (size === 0) this.out.replyXattrSize(req, value.length);
    else if (value.length > size) this.out.replyErr(req, ERANGE);
    else this.out.replyBuf(req, value, value.length);
  }

  private async list(dir: DirHandle): Promise<void> {
    const entries: DirEntry[] = await this.vfs.readdirEntries(dir.path);
    const parentIno = dir.ino === ROOT ? ROOT : (this.nodes.get(dir.ino)?.names[0]?.parent ?? ROOT);
    dir.names = ['.', '..'];
    dir.inos = [dir.ino, parentIno];
    dir.modes = [S_IFDIR, S_IFDIR];
    for (const en of entries) {
      dir.names.push(en.name);
      dir.inos.push(en.ino);
      dir.modes.push(en.mode);
    }
  }

  /** One setattr request: the Vfs applies it (vfs-api.ts) and answers with the new attributes. */
  private async setattr(req: number, ino: number, fh: number, valid: number, mode: number, uid: number, gid: number, size: number, atimeMs: number, mtimeMs: number): Promise<void> {
    const byHandle = isFileHandle(fh);
    const path = byHandle ? this.handlePath(ino) : this.pathOf(ino);
    const now = Date.now();
    const changes: AttrChanges = {};
    if (valid & SET_MODE) changes.mode = mode;
    if (valid & SET_UID) changes.uid = uid;
    if (valid & SET_GID) changes.gid = gid;
    if (valid & SET_SIZE) changes.size = size;
    if (valid & (SET_ATIME | SET_ATIME_NOW)) changes.atimeMs = valid & SET_ATIME_NOW ? now : atimeMs;
    if (valid & (SET_MTIME | SET_MTIME_NOW)) changes.mtimeMs = valid & SET_MTIME_NOW ? now : mtimeMs;
    const attr = await this.vfs.setattr(path, byHandle ? fh : undefined, changes);
    this.out.replyAttr(req, this.fillAttr(attr), this.o.attrTimeoutS);
  }
}

const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(LLOp).map(([k, v]) => [v, k.toLowerCase()]));
