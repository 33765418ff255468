// Names the installed packages whose install scripts npm runs (preinstall, install or postinstall,
// or a binding.gyp, for which npm runs `node-gyp rebuild`), one per line: setup.sh installs with
// --ignore-scripts and runs them itself (see there). Plain JavaScript: it runs before TypeScript is
// installed.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const names = new Set();

function visitFolder(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.startsWith('.')) continue;
    if (e.startsWith('@')) for (const s of readdirSync(join(dir, e))) visitPackage(join(dir, e, s));
    else visitPackage(join(dir, e));
  }
}

function visitPackage(dir) {
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    return;
  }
  const s = pkg.scripts ?? {};
  if (s.preinstall || s.install || s.postinstall || (pkg.gypfile !== false && existsSync(join(dir, 'binding.gyp')))) names.add(pkg.name);
  visitFolder(join(dir, 'node_modules'));
}

visitFolder('node_modules');
process.stdout.write([...names].sort().map((n) => `${n}\n`).join(''));
