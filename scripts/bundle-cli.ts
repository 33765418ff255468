// Bundles the compiled CLI (dist/cli/main.js and what it imports) into dist/bin/, the files the
// package's `fragfs` and `mount.fragfs` run. Node 20 loads an ES module graph file by file, each
// with its own resolve, read and compile on the main thread: `fragfs stats` loaded about 100 of
// fragfs's modules and spent about half of its 0.6 s of CPU in the module loader. Bundled, each
// command loads a handful of files. Dependencies stay external (native addons, CommonJS packages
// that find their own files), but for hash-wasm (below). Run after tsc: node dist/scripts/bundle-cli.js

import { build, type Plugin } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Packages bundled in; every other one is loaded from node_modules as it is. */
const INLINE = new Set(['hash-wasm']);

/** Leaves every bare import (a package, a node: builtin) outside the bundle, but for INLINE. */
const dependenciesOutside: Plugin = {
  name: 'dependencies-outside',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      const name = /^(@[^/]+\/[^/]+|[^/]+)/.exec(a.path)?.[1];
      return name !== undefined && INLINE.has(name) ? undefined : { external: true };
    });
  },
};

const out = join(dist, 'bin');

await rm(out, { recursive: true, force: true });
await build({
  // Flat: code in any chunk finds the codec worker as ./codec-worker.js (src/codec/codec-pool.ts),
  // mount-helper.js finds main.js beside it, and every file is two folders below package.json.
  entryPoints: {
    main: join(dist, 'cli', 'main.js'),
    'mount-helper': join(dist, 'cli', 'mount-helper.js'),
    'codec-worker': join(dist, 'src', 'codec', 'codec-worker.js'),
  },
  outdir: out,
  bundle: true,
  // Each command's module stays a chunk of its own, loaded when that command runs (cli/program.ts).
  splitting: true,
  chunkNames: 'chunk-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  plugins: [dependenciesOutside],
  // hash-wasm's ES module build, which the bundle tree-shakes to its BLAKE3: its package points
  // Node at a 280 KB UMD file of every algorithm, which Node's CommonJS lexer reads at each start
  // (0.09 s of CPU, a fifth of a short command).
  mainFields: ['module', 'main'],
  // Not minified: a bug's stack trace names the functions as the source does.
  minify: false,
  logLevel: 'warning',
});
