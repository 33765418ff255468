// Builds fragfs's low-level FUSE addon (dist/native/fragfs-fuse/fragfs_fuse.node) from
// src/fuse/native/fragfs-fuse.c with the system C compiler, against the libfuse 2.9 headers and library
// that fuse-shared-library ships and Node's own headers: no node-gyp, no network. The flags and the
// link line are buildPatchedBinding()'s (build-native.ts), so both addons load libfuse the same way.
// FRAGFS_LOWLEVEL_BINDING=/path/to/fragfs_fuse.node puts the addon there instead, and
// lowlevel-binding.ts loads it from there: for building and testing outside the repo's dist.
//
// Run: node dist/src/fuse/build-lowlevel.js   (prints the addon's path; needs cc and those headers)

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FragfsError } from '../errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const override = process.env['FRAGFS_LOWLEVEL_BINDING'];

/** The addon: <repo>/dist/native/fragfs-fuse/fragfs_fuse.node, or FRAGFS_LOWLEVEL_BINDING when set. */
export const LOWLEVEL_BINDING_FILE = override
  ? resolve(override)
  : resolve(here, '../../native/fragfs-fuse/fragfs_fuse.node');

/** The C source, read from the repo (dist/src/fuse/ -> src/fuse/native/). */
const C_SOURCE = resolve(here, '../../../src/fuse/native/fragfs-fuse.c');

export async function buildLowLevelBinding(o: { quiet?: boolean } = {}): Promise<string> {
  const require = createRequire(import.meta.url);
  const fuseNativeDir = dirname(require.resolve('fuse-native/package.json'));
  // fuse-shared-library is fuse-native's dependency: resolve it from there, as build-native.ts does.
  const shared = createRequire(join(fuseNativeDir, 'index.js'))('fuse-shared-library') as { include: string; lib: string };
  const nodeInclude = resolve(dirname(process.execPath), '..', 'include', 'node');
  if (!existsSync(join(nodeInclude, 'node_api.h'))) {
    throw new FragfsError('NOT_FOUND', `Node's C headers are not at ${nodeInclude} (node_api.h)`);
  }
  if (!existsSync(C_SOURCE)) {
    throw new FragfsError('NOT_FOUND', `the addon's C source is not at ${C_SOURCE} (build from the fragfs repo)`, { path: C_SOURCE });
  }
  await mkdir(dirname(LOWLEVEL_BINDING_FILE), { recursive: true });
  // Written beside and renamed over: a process that has the old addon loaded keeps its mapping.
  const tmpOut = `${LOWLEVEL_BINDING_FILE}.tmp-${process.pid}`;
  const args = [
    '-shared', '-fPIC', '-O2', '-Wall', '-Wno-unused-result', '-Wno-unused-function', '-D_FILE_OFFSET_BITS=64',
    '-I', nodeInclude, '-I', shared.include,
    C_SOURCE, shared.lib, '-lpthread', '-o', tmpOut,
  ];
  try {
    execFileSync(process.env['CC'] ?? 'cc', args, { stdio: o.quiet ? 'pipe' : 'inherit' });
  } catch (e) {
    await rm(tmpOut, { force: true });
    throw e;
  }
  await rename(tmpOut, LOWLEVEL_BINDING_FILE);
  return LOWLEVEL_BINDING_FILE;
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const file = await buildLowLevelBinding();
  process.stdout.write(`${file}\n`);
}
