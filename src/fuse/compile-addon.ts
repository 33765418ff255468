// Compiles one C file into a Node addon with the system C compiler, against Node's own headers and
// the libfuse 2.9 headers and library that fuse-shared-library (fuse-native's dependency) ships: no
// node-gyp, no network. Both fragfs addons (build-native.ts, build-lowlevel.ts) are built this way, so
// they load libfuse the same way.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { FragfsError } from '../errors.js';

/** fuse-native's folder and a require() that resolves its dependencies (napi-macros, fuse-shared-library). */
export function fuseNativeRequire(): { dir: string; require: NodeJS.Require } {
  const dir = dirname(createRequire(import.meta.url).resolve('fuse-native/package.json'));
  return { dir, require: createRequire(join(dir, 'index.js')) };
}

/**
 * cc -shared `cFile` -> `outFile`, with `includeDirs` before libfuse's. Written beside and renamed
 * over, so a process that has the old addon loaded keeps its mapping and a failed build leaves none.
 */
export async function compileAddon(o: { cFile: string; outFile: string; includeDirs?: string[]; quiet?: boolean }): Promise<string> {
  const shared = fuseNativeRequire().require('fuse-shared-library') as { include: string; lib: string };
  const nodeInclude = resolve(dirname(process.execPath), '..', 'include', 'node');
  if (!existsSync(join(nodeInclude, 'node_api.h'))) {
    throw new FragfsError('NOT_FOUND', `Node's C headers are not at ${nodeInclude} (node_api.h)`);
  }
  await mkdir(dirname(o.outFile), { recursive: true });
  const tmpOut = `${o.outFile}.tmp-${process.pid}`;
  const includes = [nodeInclude, ...(o.includeDirs ?? []), shared.include].flatMap((d) => ['-I', d]);
  const args = [
    '-shared', '-fPIC', '-O2', '-Wall', '-Wno-unused-result', '-Wno-unused-function', '-D_FILE_OFFSET_BITS=64',
    ...includes,
    o.cFile, shared.lib, '-lpthread', '-o', tmpOut,
  ];
  try {
    execFileSync(process.env['CC'] ?? 'cc', args, { stdio: o.quiet ? 'pipe' : 'inherit' });
  } catch (e) {
    await rm(tmpOut, { force: true });
    throw e;
  }
  await rename(tmpOut, o.outFile);
  return o.outFile;
}
