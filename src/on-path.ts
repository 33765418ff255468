// Whether the machine has a program, for the native builds (the FUSE addon, the LMDB binding) that
// say what to install instead of failing halfway through a compile.

import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** True when `cmd` (a name looked up in PATH, or a path) exists. */
export function onPath(cmd: string): boolean {
  if (cmd.includes('/')) return existsSync(cmd);
  return (process.env['PATH'] ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, cmd)));
}
