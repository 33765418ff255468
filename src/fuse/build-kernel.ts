// Builds fragfs's FUSE kernel-protocol addon (native/fuse-kernel.c) with the system C compiler, against
// Node's headers and Linux's <linux/fuse.h> only: no node-gyp, no libfuse, no network. Also decides
// where the addon lives: FRAGFS_KERNEL_BINDING when set, else dist/native/fragfs-fuse/fuse_kernel.node
// in the repo, else (an installed package whose folder is not writable) a per-user cache folder.
//
// Run: node dist/src/fuse/build-kernel.js   (prints the addon's path)

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants, existsSync } from 'node:fs';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { FragfsError } from '../errors.js';
import { onPath } from '../on-path.js';
import { packagePath, runAsScript } from '../package-files.js';

/** The addon in the repo's (or package's) dist: <root>/dist/native/fragfs-fuse/fuse_kernel.node. */
export const DEFAULT_KERNEL_BINDING_FILE = packagePath('dist', 'native', 'fragfs-fuse', 'fuse_kernel.node');

/**
 * Where the C source may be, first found wins: the package's src (the repo, and what `npm pack` ships),
 * and dist/native-src/, where other packaging may copy it.
 */
export const KERNEL_C_SOURCE_CANDIDATES: readonly string[] = [packagePath('src', 'fuse', 'native', 'fuse-kernel.c'), packagePath('dist', 'native-src', 'fuse-kernel.c')];

/** Node's C headers (node_api.h, uv.h): <prefix>/include/node beside the running node binary. */
export const NODE_INCLUDE_DIR = resolve(dirname(process.execPath), '..', 'include', 'node');

/** The kernel's protocol header the addon is written against. */
const LINUX_FUSE_HEADER = '/usr/include/linux/fuse.h';

export function findKernelSource(): string | undefined {
  return KERNEL_C_SOURCE_CANDIDATES.find((f) => existsSync(f));
}

/**
 * Identifies a build: the C source and Node's module ABI. The addon carries it as a string
 * ("fragfs-kernel-source:<mark>"), so a stale build is told apart without loading it.
 */
export function kernelSourceMark(source: Buffer): string {
  return createHash('sha256').update(source).update('\0').update(process.versions.modules).digest('hex').slice(0, 16);
}

/** $XDG_CACHE_HOME/fragfs/addon-<mark>/fuse_kernel.node (default ~/.cache). */
export function kernelCacheFile(mark: string): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'fragfs', `addon-${mark}`, 'fuse_kernel.node');
}

/** True when `file` is a build of the source with this mark. */
export async function kernelAddonIsCurrent(file: string, mark: string): Promise<boolean> {
  try {
    return (await readFile(file)).includes(`fragfs-kernel-source:${mark}`);
  } catch {
    return false;
  }
}

/** The compiler to use; throws NOT_SUPPORTED with one line saying what to install when a piece is missing. */
export function checkKernelToolchain(): string {
  const cc = process.env['CC'] || 'cc';
  const hasCc = onPath(cc);
  const hasFuseH = existsSync(LINUX_FUSE_HEADER);
  if (!hasCc || !hasFuseH) {
    const missing = !hasCc && !hasFuseH ? 'a C compiler and Linux\'s headers' : !hasCc ? 'a C compiler' : 'Linux\'s headers (linux/fuse.h)';
    const pkgs = [...(hasCc ? [] : ['gcc']), ...(hasFuseH ? [] : ['linux-libc-dev'])].join(' ');
    throw new FragfsError('NOT_SUPPORTED', `fragfs needs ${missing} to build its FUSE addon: apt install ${pkgs}`);
  }
  if (!existsSync(join(NODE_INCLUDE_DIR, 'node_api.h'))) {
    throw new FragfsError(
      'NOT_SUPPORTED',
      `fragfs needs Node's C headers to build its FUSE addon (no node_api.h in ${NODE_INCLUDE_DIR}): install Node from nodejs.org or your distribution's libnode-dev`,
    );
  }
  return cc;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { maxBuffer: 4 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) {
        if (stderr.trim() !== '') process.stderr.write(stderr);
        done();
        return;
      }
      const first = stderr.split('\n').find((l) => /error/i.test(l)) ?? stderr.split('\n')[0] ?? '';
      fail(new FragfsError('NOT_SUPPORTED', `fragfs could not compile its FUSE addon: ${first.trim() || err.message}`, { cause: err }));
    });
  });
}

/**
 * cc -shared `cFile` -> `outFile`. Written beside and renamed over, so a process that has the old
 * addon loaded keeps its mapping and a failed build leaves nothing behind.
 */
export async function compileKernelAddon(cFile: string, outFile: string): Promise<string> {
  const cc = checkKernelToolchain();
  const mark = kernelSourceMark(await readFile(cFile));
  await mkdir(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.tmp-${process.pid}`;
  const args = [
    '-shared', '-fPIC', '-O2', '-Wall', '-D_FILE_OFFSET_BITS=64', `-DFRAGFS_SOURCE_MARK="${mark}"`,
    '-I', NODE_INCLUDE_DIR, cFile, '-lpthread', '-o', tmp,
  ];
  try {
    await run(cc, args);
    await rename(tmp, outFile);
  } finally {
    await rm(tmp, { force: true });
  }
  return outFile;
}

/** Builds the addon into `outFile` (default: FRAGFS_KERNEL_BINDING, else the repo's dist). */
export async function buildKernelBinding(o: { outFile?: string } = {}): Promise<string> {
  const cFile = findKernelSource();
  if (cFile === undefined) {
    throw new FragfsError('NOT_FOUND', `the FUSE addon's C source is in none of: ${KERNEL_C_SOURCE_CANDIDATES.join(', ')}`);
  }
  const override = process.env['FRAGFS_KERNEL_BINDING'];
  return compileKernelAddon(cFile, o.outFile ?? (override ? resolve(override) : DEFAULT_KERNEL_BINDING_FILE));
}

/** True when `file` could be created: its nearest existing folder is writable. */
async function canCreate(file: string): Promise<boolean> {
  let dir = dirname(file);
  while (!existsSync(dir)) {
    const up = dirname(dir);
    if (up === dir) return false;
    dir = up;
  }
  try {
    await access(dir, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of a current addon, built first when needed: FRAGFS_KERNEL_BINDING when set (built there
 * if missing or stale); else the repo's dist (built there if missing or stale and writable); else the
 * cache folder (an installed package builds at first mount). Without the C source, an existing
 * addon is taken as it is.
 */
export async function locateKernelBinding(): Promise<string> {
  const cFile = findKernelSource();
  const mark = cFile === undefined ? undefined : kernelSourceMark(await readFile(cFile));
  const usable = async (f: string) => existsSync(f) && (mark === undefined || (await kernelAddonIsCurrent(f, mark)));
  const override = process.env['FRAGFS_KERNEL_BINDING'];
  const candidates = override ? [resolve(override)] : [DEFAULT_KERNEL_BINDING_FILE];
  if (await usable(candidates[0]!)) return candidates[0]!;
  if (cFile === undefined || mark === undefined) {
    throw new FragfsError(
      'NOT_FOUND',
      `the FUSE addon is not at ${candidates[0]!} and its C source is in none of: ${KERNEL_C_SOURCE_CANDIDATES.join(', ')}`,
    );
  }
  if (override || (await canCreate(DEFAULT_KERNEL_BINDING_FILE))) return compileKernelAddon(cFile, candidates[0]!);
  const cached = kernelCacheFile(mark);
  if (await usable(cached)) return cached;
  return compileKernelAddon(cFile, cached);
}

if (runAsScript(import.meta.url, 'build-kernel.js')) {
  const file = await buildKernelBinding();
  process.stdout.write(`${file}\n`);
}
