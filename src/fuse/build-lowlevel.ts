// Builds fragfs's low-level FUSE addon (dist/native/fragfs-fuse/fragfs_fuse.node) from
// src/fuse/native/fragfs-fuse.c, with compile-addon.ts like the patched fuse-native addon.
// FRAGFS_LOWLEVEL_BINDING=/path/to/fragfs_fuse.node puts the addon there instead, and
// lowlevel-binding.ts loads it from there: for building and testing outside the repo's dist.
//
// Run: node dist/src/fuse/build-lowlevel.js   (prints the addon's path; needs cc and those headers)

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FragfsError } from '../errors.js';
import { compileAddon } from './compile-addon.js';

const here = dirname(fileURLToPath(import.meta.url));
const override = process.env['FRAGFS_LOWLEVEL_BINDING'];

/** The addon: <repo>/dist/native/fragfs-fuse/fragfs_fuse.node, or FRAGFS_LOWLEVEL_BINDING when set. */
export const LOWLEVEL_BINDING_FILE = override
  ? resolve(override)
  : resolve(here, '../../native/fragfs-fuse/fragfs_fuse.node');

/** The C source, read from the repo (dist/src/fuse/ -> src/fuse/native/). */
const C_SOURCE = resolve(here, '../../../src/fuse/native/fragfs-fuse.c');

export async function buildLowLevelBinding(o: { quiet?: boolean } = {}): Promise<string> {
  if (!existsSync(C_SOURCE)) {
    throw new FragfsError('NOT_FOUND', `the addon's C source is not at ${C_SOURCE} (build from the fragfs repo)`, { path: C_SOURCE });
  }
  return compileAddon({ cFile: C_SOURCE, outFile: LOWLEVEL_BINDING_FILE, quiet: o.quiet === true });
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const file = await buildLowLevelBinding();
  process.stdout.write(`${file}\n`);
}
