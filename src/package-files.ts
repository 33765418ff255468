// Where fragfs's own files are, whichever compiled file asks: tsc's output (dist/src/fuse/x.js) and
// the bundled CLI (dist/bin/chunk-*.js, scripts/bundle-cli.ts) sit at different depths below the
// package, so a path relative to the asking module would differ between the two.

import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder of fragfs's package.json (the repo, or an installed package's folder). */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return (root = dir);
    const up = dirname(dir);
    // No package.json above: the layout of the repo, two folders below it (dist/src/ or dist/bin/).
    if (up === dir) return (root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'));
    dir = up;
  }
}

/** A path below the package's folder. */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/**
 * Whether the process was started as `node FILE` for this module's own file. In the bundled CLI a
 * module shares its file with others (main.js among them), so the file's name must be its own too.
 */
export function runAsScript(moduleUrl: string, fileName: string): boolean {
  const path = fileURLToPath(moduleUrl);
  return process.argv[1] !== undefined && basename(path) === fileName && resolve(process.argv[1]) === path;
}
