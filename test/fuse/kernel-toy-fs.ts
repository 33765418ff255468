// A small in-memory filesystem served through the kernel binding, for the kernel-channel tests and for
// throughput measurements: inodes by number, names as bytes (latin1 keys, so every byte but '/' and
// NUL survives), and a "null" mode whose files discard what is written and read back zeros.
//
// As a program: node dist/test/fuse/kernel-toy-fs.js MOUNTPOINT [--null] [--writeback] [--readdirplus]
//   [--max-write=BYTES] [--stats] [--exit-after-ms=MS]   prints "ready <info as JSON>" once mounted
//   and "exit" when the kernel side is gone (fusermount -u), then releases the session and ends by
//   itself; --stats first prints how many READ and WRITE requests of each size it got;
//   --exit-after-ms calls process.exit(0) that long after mounting, still mounted.

import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import {
  Attr as A,
  ensureKernelBinding,
  type KernelBinding,
  type KernelHandle,
  type KernelMountOptions,
  Op,
  SetattrValid as V,
  Statfs as S,
} from '../../src/fuse/kernel-binding.js';

const E = osConstants.errno;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_TRUNC = 0o1000;
const RENAME_NOREPLACE = 1;

interface Inode {
  attr: Float64Array;
  /** Directory entries: name bytes as latin1 -> inode. */
  children?: Map<string, number>;
  data: Buffer;
  target?: Buffer;
  xattrs: Map<string, Buffer>;
  /** Lookup references the kernel holds. */
  lookups: number;
  parent: number;
}

export interface ToyOptions {
  /** Files discard writes (their size still grows) and read as zeros: for throughput measurements. */
  nullData?: boolean;
  entryTimeoutS?: number;
  attrTimeoutS?: number;
  /** Answer from a later macrotask instead of inside dispatch (replies arrive out of dispatch). */
  deferReplies?: boolean;
  /** Sees each request first; returns true when it answered it itself. */
  hook?: (op: number, unique: number, nodeid: number, args: unknown[]) => boolean;
}

const ZEROS = Buffer.alloc(32 * 1024 * 1024);

/** A time in ms as the attribute array's (seconds, nanoseconds) at `at`, `at + 1`. */
function stamp(a: Float64Array, at: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  a[at] = sec;
  a[at + 1] = Math.round((ms - sec * 1000) * 1e6);
}

export class ToyFs {
  readonly counts = new Map<number, number>();
  readonly writeSizes: number[] = [];
  readonly readSizes: number[] = [];
  /** Errors thrown by the binding's replies (none expected). */
  readonly replyErrors: unknown[] = [];
  readonly nodes = new Map<number, Inode>();
  handle: KernelHandle | undefined;
  readonly exited: Promise<void>;
  private exitDone!: () => void;
  private nextIno = 2;
  private nextFh = 1;
  private readonly dirSnapshots = new Map<number, Array<{ name: Buffer; ino: number }>>();
  private readonly entryT: number;
  private readonly attrT: number;

  constructor(readonly binding: KernelBinding, readonly opts: ToyOptions = {}) {
    this.entryT = opts.entryTimeoutS ?? 1;
    this.attrT = opts.attrTimeoutS ?? 1;
    this.exited = new Promise((done) => (this.exitDone = done));
    const now = Date.now();
    this.nodes.set(1, {
      attr: this.newAttr(1, S_IFDIR | 0o755, process.getuid?.() ?? 0, process.getgid?.() ?? 0, now),
      children: new Map(),
      data: Buffer.alloc(0),
      xattrs: new Map(),
      lookups: 1,
      parent: 1,
    });
  }

  mount(mountpoint: string, options: KernelMountOptions = {}): KernelHandle {
    this.handle = this.binding.mount(mountpoint, options, this.dispatch);
    return this.handle;
  }

  count(op: number): number {
    return this.counts.get(op) ?? 0;
  }

  resetCounts(): void {
    this.counts.clear();
    this.writeSizes.length = 0;
    this.readSizes.length = 0;
  }

  /** Adds a file straight into the tree (the kernel has not seen it: no cached entry). */
  addFile(parent: number, name: Buffer, data: Buffer): number {
    const ino = this.nextIno++;
    const node: Inode = { attr: this.newAttr(ino, S_IFREG | 0o644, 0, 0, Date.now()), data, xattrs: new Map(), lookups: 0, parent };
    node.attr[A.SIZE] = data.length;
    this.nodes.set(ino, node);
    this.nodes.get(parent)!.children!.set(name.toString('latin1'), ino);
    return ino;
  }

  /** The bytes of root entry `name`, if any. */
  fileData(name: Buffer, parent = 1): Buffer | undefined {
    const ino = this.nodes.get(parent)?.children?.get(name.toString('latin1'));
    return ino === undefined ? undefined : this.nodes.get(ino)?.data.subarray(0, this.nodes.get(ino)!.attr[A.SIZE]);
  }

  private newAttr(ino: number, mode: number, uid: number, gid: number, now: number): Float64Array {
    const a = new Float64Array(A.LENGTH);
    a[A.INO] = ino;
    a[A.MODE] = mode;
    a[A.NLINK] = (mode & S_IFMT) === S_IFDIR ? 2 : 1;
    a[A.UID] = uid;
    a[A.GID] = gid;
    for (const at of [A.ATIME_SEC, A.MTIME_SEC, A.CTIME_SEC]) stamp(a, at, now);
    a[A.BLKSIZE] = 4096;
    return a;
  }

  private reply(fn: () => void): void {
    const run = () => {
      try {
        fn();
      } catch (e) {
        this.replyErrors.push(e);
      }
    };
    if (this.opts.deferReplies) setImmediate(run);
    else run();
  }

  private err(unique: number, errno: number): void {
    this.reply(() => this.binding.replyErr(unique, errno));
  }

  private entry(unique: number, node: Inode): void {
    node.lookups++;
    const attr = Float64Array.from(node.attr);
    this.reply(() => this.binding.replyEntry(unique, attr, this.entryT, this.attrT));
  }

  private makeNode(unique: number, parent: number, name: Buffer, mode: number, uid: number, gid: number): Inode | undefined {
    const dir = this.nodes.get(parent);
    if (!dir?.children) {
      this.err(unique, E.ENOTDIR);
      return undefined;
    }
    const key = name.toString('latin1');
    if (dir.children.has(key)) {
      this.err(unique, E.EEXIST);
      return undefined;
    }
    const ino = this.nextIno++;
    const node: Inode = { attr: this.newAttr(ino, mode, uid, gid, Date.now()), data: Buffer.alloc(0), xattrs: new Map(), lookups: 0, parent };
    if ((mode & S_IFMT) === S_IFDIR) {
      node.children = new Map();
      dir.attr[A.NLINK]! += 1;
    }
    this.nodes.set(ino, node);
    dir.children.set(key, ino);
    stamp(dir.attr, A.MTIME_SEC, Date.now());
    stamp(dir.attr, A.CTIME_SEC, Date.now());
    return node;
  }

  private dropName(dir: Inode, key: string): void {
    const ino = dir.children!.get(key);
    if (ino === undefined) return;
    dir.children!.delete(key);
    const node = this.nodes.get(ino)!;
    if (node.children) dir.attr[A.NLINK]! -= 1;
    node.attr[A.NLINK] = node.children ? 0 : node.attr[A.NLINK]! - 1;
    this.maybeFree(ino, node);
  }

  private maybeFree(ino: number, node: Inode): void {
    if (node.attr[A.NLINK]! <= 0 && node.lookups <= 0 && ino !== 1) this.nodes.delete(ino);
  }

  private setSize(node: Inode, size: number): void {
    if (!this.opts.nullData) {
      if (size > node.data.length) {
        const grown = Buffer.alloc(Math.max(size, Math.min(node.data.length * 2, size + 64 * 1024 * 1024)));
        node.data.copy(grown);
        node.data = grown;
      } else if (size < node.attr[A.SIZE]!) {
        node.data.fill(0, size, node.attr[A.SIZE]);
      }
    }
    node.attr[A.SIZE] = size;
    node.attr[A.BLOCKS] = Math.ceil(size / 512);
  }

  readonly dispatch = (op: number, unique: number, nodeid: number, uid: number, gid: number, pid: number, ...args: unknown[]): void => {
    void pid;
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    if (this.opts.hook?.(op, unique, nodeid, args)) return;
    const node = this.nodes.get(nodeid);
    const num = (i: number) => args[i] as number;
    const buf = (i: number) => args[i] as Buffer;
    switch (op) {
      case Op.EXIT:
        if (this.handle) this.binding.release(this.handle);
        this.exitDone();
        return;
      case Op.FORGET:
        if (node) {
          node.lookups -= num(0);
          this.maybeFree(nodeid, node);
        }
        return;
      case Op.INTERRUPT:
        return;
    }
    if (!node) {
      this.err(unique, E.ENOENT);
      return;
    }
    switch (op) {
      case Op.LOOKUP: {
        const ino = node.children?.get(buf(0).toString('latin1'));
        if (ino === undefined) this.err(unique, E.ENOENT);
        else this.entry(unique, this.nodes.get(ino)!);
        return;
      }
      case Op.GETATTR: {
        const attr = Float64Array.from(node.attr);
        this.reply(() => this.binding.replyAttr(unique, attr, this.attrT));
        return;
      }
      case Op.SETATTR: {
        const [valid, , mode, auid, agid, size, asec, ansec, msec, mnsec] = args as number[];
        const now = Date.now();
        if (valid! & V.MODE) node.attr[A.MODE] = (node.attr[A.MODE]! & S_IFMT) | (mode! & 0o7777);
        if (valid! & V.UID) node.attr[A.UID] = auid!;
        if (valid! & V.GID) node.attr[A.GID] = agid!;
        if (valid! & V.SIZE) this.setSize(node, size!);
        if (valid! & V.ATIME) {
          if (valid! & V.ATIME_NOW) stamp(node.attr, A.ATIME_SEC, now);
          else [node.attr[A.ATIME_SEC], node.attr[A.ATIME_NSEC]] = [asec!, ansec!];
        }
        if (valid! & V.MTIME) {
          if (valid! & V.MTIME_NOW) stamp(node.attr, A.MTIME_SEC, now);
          else [node.attr[A.MTIME_SEC], node.attr[A.MTIME_NSEC]] = [msec!, mnsec!];
        }
        stamp(node.attr, A.CTIME_SEC, now);
        const attr = Float64Array.from(node.attr);
        this.reply(() => this.binding.replyAttr(unique, attr, this.attrT));
        return;
      }
      case Op.READLINK: {
        const t = node.target;
        if (!t) this.err(unique, E.EINVAL);
        else this.reply(() => this.binding.replyBuf(unique, t, t.length));
        return;
      }
      case Op.SYMLINK: {
        const made = this.makeNode(unique, nodeid, buf(0), S_IFLNK | 0o777, uid, gid);
        if (!made) return;
        made.target = Buffer.from(buf(1));
        made.attr[A.SIZE] = made.target.length;
        this.entry(unique, made);
        return;
      }
      case Op.MKNOD:
      case Op.MKDIR: {
        const mode = op === Op.MKDIR ? S_IFDIR | (num(1) & 0o7777) : num(1);
        const made = this.makeNode(unique, nodeid, buf(0), mode, uid, gid);
        if (made) this.entry(unique, made);
        return;
      }
      case Op.CREATE: {
        const made = this.makeNode(unique, nodeid, buf(0), S_IFREG | (num(1) & 0o7777), uid, gid);
        if (!made) return;
        made.lookups++;
        const attr = Float64Array.from(made.attr);
        const fh = this.nextFh++;
        this.reply(() => this.binding.replyCreate(unique, attr, this.entryT, this.attrT, fh, 0));
        return;
      }
      case Op.UNLINK:
      case Op.RMDIR: {
        const key = buf(0).toString('latin1');
        const ino = node.children?.get(key);
        const child = ino === undefined ? undefined : this.nodes.get(ino);
        if (!child) return this.err(unique, E.ENOENT);
        if (op === Op.RMDIR && !child.children) return this.err(unique, E.ENOTDIR);
        if (op === Op.UNLINK && child.children) return this.err(unique, E.EISDIR);
        if (child.children && child.children.size > 0) return this.err(unique, E.ENOTEMPTY);
        this.dropName(node, key);
        this.err(unique, 0);
        return;
      }
      case Op.RENAME:
      case Op.RENAME2: {
        const [name, newParent, newName, flags] = args as [Buffer, number, Buffer, number];
        const to = this.nodes.get(newParent);
        const key = name.toString('latin1');
        const newKey = newName.toString('latin1');
        const ino = node.children?.get(key);
        if (ino === undefined || !to?.children) return this.err(unique, E.ENOENT);
        if (flags & ~RENAME_NOREPLACE) return this.err(unique, E.EINVAL);
        const existing = to.children.get(newKey);
        if (existing !== undefined && flags & RENAME_NOREPLACE) return this.err(unique, E.EEXIST);
        if (existing !== undefined && existing !== ino) {
          const victim = this.nodes.get(existing)!;
          if (victim.children && victim.children.size > 0) return this.err(unique, E.ENOTEMPTY);
          this.dropName(to, newKey);
        }
        node.children!.delete(key);
        to.children.set(newKey, ino);
        this.nodes.get(ino)!.parent = newParent;
        this.err(unique, 0);
        return;
      }
      case Op.LINK: {
        const [oldNodeid, newName] = args as [number, Buffer];
        const target = this.nodes.get(oldNodeid);
        if (!target || !node.children) return this.err(unique, E.ENOENT);
        const key = newName.toString('latin1');
        if (node.children.has(key)) return this.err(unique, E.EEXIST);
        node.children.set(key, oldNodeid);
        target.attr[A.NLINK]! += 1;
        this.entry(unique, target);
        return;
      }
      case Op.OPEN: {
        if (num(0) & O_TRUNC) this.setSize(node, 0);
        const fh = this.nextFh++;
        this.reply(() => this.binding.replyOpen(unique, fh, 0));
        return;
      }
      case Op.READ: {
        const [, offset, size] = args as number[];
        this.readSizes.push(size!);
        const end = Math.min(node.attr[A.SIZE]!, offset! + size!);
        const n = Math.max(0, end - offset!);
        const data = this.opts.nullData ? ZEROS.subarray(0, n) : node.data.subarray(offset!, offset! + n);
        this.reply(() => this.binding.replyBuf(unique, data, n));
        return;
      }
      case Op.WRITE: {
        const [, offset, data] = args as [number, number, Buffer];
        this.writeSizes.push(data.length);
        const end = offset + data.length;
        if (end > node.attr[A.SIZE]!) this.setSize(node, end);
        if (!this.opts.nullData) data.copy(node.data, offset);
        stamp(node.attr, A.MTIME_SEC, Date.now());
        stamp(node.attr, A.CTIME_SEC, Date.now());
        this.reply(() => this.binding.replyWrite(unique, data.length));
        return;
      }
      case Op.STATFS: {
        const s = new Float64Array(S.LENGTH);
        s[S.BSIZE] = s[S.FRSIZE] = 4096;
        s[S.BLOCKS] = s[S.BFREE] = s[S.BAVAIL] = 1 << 20;
        s[S.FILES] = 1 << 20;
        s[S.FFREE] = (1 << 20) - this.nodes.size;
        s[S.NAMEMAX] = 255;
        this.reply(() => this.binding.replyStatfs(unique, s));
        return;
      }
      case Op.RELEASE:
      case Op.FLUSH:
      case Op.FSYNC:
      case Op.FSYNCDIR:
      case Op.ACCESS:
        this.err(unique, 0);
        return;
      case Op.RELEASEDIR:
        this.dirSnapshots.delete(num(0));
        this.err(unique, 0);
        return;
      case Op.OPENDIR: {
        if (!node.children) return this.err(unique, E.ENOTDIR);
        const fh = this.nextFh++;
        this.reply(() => this.binding.replyOpen(unique, fh, 0));
        return;
      }
      case Op.READDIR:
      case Op.READDIRPLUS: {
        const [fh, offset, size] = args as number[];
        if (!node.children) return this.err(unique, E.ENOTDIR);
        let list = this.dirSnapshots.get(fh!);
        if (!list || offset === 0) {
          list = [
            { name: Buffer.from('.'), ino: nodeid },
            { name: Buffer.from('..'), ino: node.parent },
            ...[...node.children].map(([k, ino]) => ({ name: Buffer.from(k, 'latin1'), ino })),
          ];
          this.dirSnapshots.set(fh!, list);
        }
        // Entry k's cookie is k + 1: the kernel continues from there.
        const rest: Array<{ name: Buffer; ino: number; off: number }> = [];
        for (let k = offset!; k < list.length; k++) if (this.nodes.has(list[k]!.ino)) rest.push({ ...list[k]!, off: k + 1 });
        const names = rest.map((e) => e.name);
        const offsets = rest.map((e) => e.off);
        if (op === Op.READDIR) {
          const inos = rest.map((e) => e.ino);
          const modes = rest.map((e) => this.nodes.get(e.ino)!.attr[A.MODE]!);
          this.reply(() => void this.binding.replyDir(unique, size!, names, inos, modes, offsets));
        } else {
          const attrs = new Float64Array(rest.length * A.LENGTH);
          rest.forEach((e, k) => attrs.set(this.nodes.get(e.ino)!.attr, k * A.LENGTH));
          this.reply(() => {
            const packed = this.binding.replyDirPlus(unique, size!, names, attrs, offsets, this.entryT, this.attrT);
            // Every packed entry but "." and ".." is a lookup reference.
            for (let k = 0; k < packed; k++) {
              const nm = names[k]!.toString('latin1');
              if (nm !== '.' && nm !== '..') this.nodes.get(rest[k]!.ino)!.lookups++;
            }
          });
        }
        return;
      }
      case Op.SETXATTR: {
        const [name, value] = args as [Buffer, Buffer];
        node.xattrs.set(name.toString('latin1'), Buffer.from(value));
        this.err(unique, 0);
        return;
      }
      case Op.GETXATTR: {
        const [name, size] = args as [Buffer, number];
        const v = node.xattrs.get(name.toString('latin1'));
        if (!v) return this.err(unique, E.ENODATA);
        if (size === 0) this.reply(() => this.binding.replyXattrSize(unique, v.length));
        else if (size < v.length) this.err(unique, E.ERANGE);
        else this.reply(() => this.binding.replyBuf(unique, v, v.length));
        return;
      }
      case Op.LISTXATTR: {
        const size = num(0);
        const list = Buffer.concat([...node.xattrs.keys()].map((k) => Buffer.concat([Buffer.from(k, 'latin1'), Buffer.alloc(1)])));
        if (size === 0) this.reply(() => this.binding.replyXattrSize(unique, list.length));
        else if (size < list.length) this.err(unique, E.ERANGE);
        else this.reply(() => this.binding.replyBuf(unique, list, list.length));
        return;
      }
      case Op.REMOVEXATTR: {
        if (!node.xattrs.delete(buf(0).toString('latin1'))) return this.err(unique, E.ENODATA);
        this.err(unique, 0);
        return;
      }
      case Op.FALLOCATE:
        this.err(unique, E.EOPNOTSUPP);
        return;
      default:
        this.err(unique, E.ENOSYS);
    }
  };
}

/** The program: mounts a toy fs and serves it until the kernel side goes away. */
async function main(argv: string[]): Promise<void> {
  const mountpoint = argv.find((a) => !a.startsWith('--'));
  if (!mountpoint) throw new Error('usage: kernel-toy-fs MOUNTPOINT [--null] [--writeback] [--readdirplus] [--max-write=BYTES] [--stats] [--exit-after-ms=MS]');
  const flag = (name: string) => argv.includes(`--${name}`);
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const binding = await ensureKernelBinding();
  const fs = new ToyFs(binding, { nullData: flag('null') });
  const maxWrite = value('max-write');
  const handle = fs.mount(resolve(mountpoint), {
    writebackCache: flag('writeback'),
    readdirplus: flag('readdirplus'),
    ...(maxWrite ? { maxWriteBytes: Number(maxWrite) } : {}),
  });
  process.stdout.write(`ready ${JSON.stringify(binding.info(handle))}\n`);
  const exitAfter = value('exit-after-ms');
  if (exitAfter) setTimeout(() => process.exit(0), Number(exitAfter));
  await fs.exited;
  if (flag('stats')) {
    const histogram = (sizes: number[]) => {
      const h: Record<string, number> = {};
      for (const n of sizes) h[`${n / 1024}K`] = (h[`${n / 1024}K`] ?? 0) + 1;
      return h;
    };
    process.stdout.write(`stats ${JSON.stringify({ writes: histogram(fs.writeSizes), reads: histogram(fs.readSizes) })}\n`);
  }
  process.stdout.write('exit\n');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
