// The local file system calls Node lacks (native/local-fs.c): extended attributes of a path without
// following symlinks, mknod for FIFOs, sockets and device nodes, a batch of lstats off the JS thread,
// a batch of small files read whole off it, and fallocate (KEEP_SIZE, PUNCH_HOLE) for the LMDB space reserve.
// Built with the system C compiler against Node's headers on first use (or by scripts/setup.sh),
// like the FUSE addon (build-kernel.ts):
// dist/native/fragfs-local/local_fs.node in the repo, else a per-user cache folder. A machine that
// cannot build it still puts and gets: without xattrs and special files, with a warning saying why.

import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NODE_INCLUDE_DIR, kernelSourceMark } from '../fuse/build-kernel.js';
import { packagePath, runAsScript } from '../package-files.js';

export interface LocalFs {
  /**
   * Every extended attribute of `path` (a symlink's own), as [name, value] pairs. MUST throw an Error
   * whose `code` is the errno name when the path cannot be read (ENOTSUP: the file system keeps none).
   */
  lgetxattrs(path: Buffer): [Buffer, Buffer][];
  /** Creates or replaces one attribute of `path` (not following a symlink); throws with `code` like node:fs. */
  lsetxattr(path: Buffer, name: Buffer, value: Buffer): void;
  /** mknod(2): `mode` holds the type bits (S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK) and the permissions. */
  mknod(path: Buffer, mode: number, rdev: number): void;
  /** utimensat(2) of `path` (a symlink's own times), to the nanosecond; throws with `code` like node:fs. */
  lutimens(path: Buffer, atimeNs: bigint, mtimeNs: bigint): void;
  /**
   * lstat, and with `xattrs` the extended attributes, of `count` NUL-terminated paths held back to
   * back in `paths`, off the JS thread. MUST answer one record per path (source-stat.ts reads them),
   * an lstat's or attribute list's failure as that record's errno, never as a rejection.
   */
  lstatMany(paths: Buffer, count: number, xattrs: boolean): Promise<Buffer>;
  /**
   * Every entry of folder `path` but `.` and `..`, listed and lstat'ed (with `xattrs`, their
   * attributes read) off the JS thread, in the answer lstatMany gives plus each entry's name. MUST
   * answer a folder that cannot be listed with the errno in the answer's header, not a rejection.
   */
  scanDir(path: Buffer, xattrs: boolean): Promise<Buffer>;
  /**
   * Each of `count` NUL-terminated paths held back to back in `paths` opened (O_NOFOLLOW), fstat'ed,
   * read up to that size when it is a regular file of at most `maxBytes`, fstat'ed again and closed,
   * off the JS thread. MUST answer one record per path (small-files.ts reads them), a failure as that
   * record's errno, never as a rejection.
   */
  readSmallFiles(paths: Buffer, count: number, maxBytes: number): Promise<Buffer>;
  /**
   * fallocate(2) with FALLOC_FL_KEEP_SIZE of [offset, offset + length) of the file `path` (not
   * following a symlink), off the JS thread. MUST resolve with 0 or the errno, never reject.
   */
  fallocateKeepSize(path: Buffer, offset: number, length: number): Promise<number>;
  /**
   * fallocate(2) of [offset, offset + length) of `path` on the calling thread, keeping its size:
   * allocating (FALLOC_FL_KEEP_SIZE) or, with `punch`, freeing (FALLOC_FL_PUNCH_HOLE) the blocks.
   * MUST return 0 or the errno, never throw for a failure of the call itself.
   */
  fallocateSync(path: Buffer, punch: boolean, offset: number, length: number): number;
}

/** The C source, in the package's src (the repo, and what `npm pack` ships). */
const SOURCE_CANDIDATES = [packagePath('src', 'local', 'native', 'local-fs.c')];

const DEFAULT_FILE = packagePath('dist', 'native', 'fragfs-local', 'local_fs.node');

let loading: Promise<LocalFs | Error> | undefined;

/**
 * The addon, built first when missing or stale; an Error (not thrown) saying why when it cannot be had,
 * so a caller can go on without it. Once per process.
 */
export function localFs(): Promise<LocalFs | Error> {
  loading ??= load().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  return loading;
}

async function load(): Promise<LocalFs> {
  const cFile = SOURCE_CANDIDATES.find((f) => existsSync(f));
  if (cFile === undefined) {
    if (existsSync(DEFAULT_FILE)) return createRequire(import.meta.url)(DEFAULT_FILE) as LocalFs;
    throw new Error(`the local-fs addon's C source is in none of: ${SOURCE_CANDIDATES.join(', ')}`);
  }
  const mark = kernelSourceMark(await readFile(cFile));
  const cached = join(process.env['XDG_CACHE_HOME'] || join(process.env['HOME'] ?? '/tmp', '.cache'), 'fragfs', `local-${mark}`, 'local_fs.node');
  for (const file of [DEFAULT_FILE, cached]) {
    if (await isCurrent(file, mark)) return createRequire(import.meta.url)(file) as LocalFs;
  }
  let built: string;
  try {
    built = await compile(cFile, DEFAULT_FILE, mark);
  } catch {
    built = await compile(cFile, cached, mark);
  }
  return createRequire(import.meta.url)(built) as LocalFs;
}

/** cc -shared `cFile` -> `outFile`, written beside and renamed over (a failed build leaves nothing). */
async function compile(cFile: string, outFile: string, mark: string): Promise<string> {
  await mkdir(dirname(outFile), { recursive: true, mode: 0o755 });
  const tmp = `${outFile}.tmp-${process.pid}`;
  const args = ['-shared', '-fPIC', '-O2', '-Wall', `-DFRAGFS_SOURCE_MARK="${mark}"`, '-I', NODE_INCLUDE_DIR, cFile, '-o', tmp];
  try {
    await new Promise<void>((done, fail) =>
      execFile(process.env['CC'] || 'cc', args, (err, _out, stderr) => {
        if (!err) done();
        else fail(new Error(`cannot compile ${cFile}: ${stderr.split('\n').find((l) => /error/i.test(l))?.trim() ?? err.message}`));
      }),
    );
    await rename(tmp, outFile);
  } finally {
    await rm(tmp, { force: true });
  }
  return outFile;
}

async function isCurrent(file: string, mark: string): Promise<boolean> {
  try {
    return (await readFile(file)).includes(`fragfs-local-source:${mark}`);
  } catch {
    return false;
  }
}

if (runAsScript(import.meta.url, 'local-fs.js')) {
  const r = await localFs();
  if (r instanceof Error) {
    process.stderr.write(`fragfs: cannot build the local-fs addon: ${r.message}\n`);
    process.exit(1);
  }
  process.stdout.write('local-fs addon ready\n');
}
