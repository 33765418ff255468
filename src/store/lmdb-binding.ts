// The LMDB binding fragfs runs on: lmdb-js built from its own sources with two fixes from LMDB
// upstream that lmdb-js 3.5.6 lacks (docs/DESIGN.md, "LMDB opened by several processes"). Owns the
// fixes, the build (node-gyp from npm, Node's own headers, no network) and where the build lives:
// node_modules/lmdb/build/Release in a checkout (scripts/build-lmdb.sh, run by setup), else a
// per-user cache folder that lmdb-js is pointed at (LMDB_PREBUILD) before it first loads.
//
// Run: node dist/src/store/lmdb-binding.js patch FILE   (applies the fixes to an mdb.c in place)

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FragfsError } from '../errors.js';
import { onPath } from '../on-path.js';
import { runAsScript } from '../package-files.js';

interface MdbFix {
  /** Written into the patched source: a source that carries it has the fix. */
  readonly mark: string;
  readonly old: string;
  readonly new: string;
}

/** The fixes, in the words of the mdb.c of lmdb-js 3.5.6 (dependencies/lmdb/libraries/liblmdb). */
export const MDB_FIXES: readonly MdbFix[] = [
  {
    // LMDB ITS#9496 (0.9.29): every opener wrote the shared txnid, which could roll back another
    // process's commit (its reads then came back wrong, its commits failed "mdb_page_touch no parent").
    mark: 'fragfs: ITS#9496',
    old: '\tif (env->me_txns)\n\t\tenv->me_txns->mti_txnid = meta.mm_txnid;\n\n#if MDB_DEBUG',
    new:
      '\t/* fragfs: ITS#9496: only the first opener, under the exclusive lock, sets the shared txnid\n' +
      "\t * (mdb_env_share_locks); a later opener writing it here can roll back another process's commit. */\n\n#if MDB_DEBUG",
  },
  {
    // LMDB ITS#10095 (0.9.32): the last closer destroyed the robust mutexes of the lock file while
    // another process could be waiting for the shared lock; that one then failed EINVAL.
    mark: 'fragfs: ITS#10095',
    old:
      '\t\tif (excl == 0)\n\t\t\tmdb_env_excl_lock(env, &excl);\n\t\tif (excl > 0) {\n' +
      '\t\t\tpthread_mutex_destroy(env->me_txns->mti_rmutex);\n' +
      '\t\t\tpthread_mutex_destroy(env->me_txns->mti_wmutex);\n' +
      '\t\t\tpthread_mutex_destroy(env->me_txns->mti_sync_mutex);\n\t\t}\n',
    new:
      '\t\t/* fragfs: ITS#10095: the robust mutexes are left as they are; destroying them broke an\n' +
      '\t\t * opener waiting for the shared lock, and the next exclusive opener initialises them. */\n',
  },
];

const MDB_C = join('dependencies', 'lmdb', 'libraries', 'liblmdb', 'mdb.c');

/** `source` with every fix applied; throws when a fix that is missing cannot be placed. */
export function patchMdbSource(source: string): { text: string; changed: boolean } {
  let text = source;
  for (const fix of MDB_FIXES) {
    if (text.includes(fix.mark)) continue;
    if (text.split(fix.old).length !== 2) {
      throw new FragfsError('NOT_SUPPORTED', `lmdb-js's mdb.c is not the one fragfs's LMDB fixes were written for (${fix.mark.slice(8)}): lmdb 3.5.6 is expected`);
    }
    text = text.replace(fix.old, fix.new);
  }
  return { text, changed: text !== source };
}

/** True when `source` carries every fix. */
export function mdbSourceIsFixed(source: string): boolean {
  return MDB_FIXES.every((f) => source.includes(f.mark));
}

/** The folder of package `name` as `from` (a file) resolves it: its entry point's nearest package.json of that name (lmdb exports no ./package.json). */
function packageDirOf(name: string, from: string): string {
  let dir = dirname(createRequire(from).resolve(name));
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === name) return dir;
    } catch {
      // No package.json here: look further up.
    }
    const up = dirname(dir);
    if (up === dir) throw new FragfsError('NOT_FOUND', `the ${name} package's folder was not found from ${from}`);
    dir = up;
  }
}

/** The folder of the lmdb package this module loads. */
export function lmdbPackageDir(): string {
  return packageDirOf('lmdb', fileURLToPath(import.meta.url));
}

/** $XDG_CACHE_HOME/fragfs/lmdb-<mark> (default ~/.cache): lmdb's version, Node's module ABI and the fixes. */
export function lmdbCacheDir(pkgDir: string): string {
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const mark = createHash('sha256')
    .update(`${version}\0${process.versions.modules}\0${JSON.stringify(MDB_FIXES)}`)
    .digest('hex')
    .slice(0, 16);
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'fragfs', `lmdb-${mark}`);
}

const BINARY = join('build', 'Release', 'lmdb.node');

/**
 * Where a fixed build is, without building: the lmdb package itself when its mdb.c carries the fixes
 * and it has a build (a checkout after setup), else the cache folder when it has one, else undefined.
 */
export function findFixedLmdb(pkgDir = lmdbPackageDir()): { dir: string; inPackage: boolean } | undefined {
  if (existsSync(join(pkgDir, BINARY))) {
    try {
      if (mdbSourceIsFixed(readFileSync(join(pkgDir, MDB_C), 'latin1'))) return { dir: pkgDir, inPackage: true };
    } catch {
      // No source beside the build: not one fragfs made.
    }
  }
  const cached = lmdbCacheDir(pkgDir);
  return existsSync(join(cached, BINARY)) ? { dir: cached, inPackage: false } : undefined;
}

/** npm's own node-gyp: beside the npm that comes with Node, or where PATH finds npm. */
function nodeGypScript(): string | undefined {
  const rel = join('node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const candidates = [resolve(dirname(process.execPath), '..', 'lib', rel)];
  for (const d of (process.env['PATH'] ?? '').split(delimiter)) {
    if (d !== '' && existsSync(join(d, 'npm'))) candidates.push(resolve(d, '..', 'lib', rel));
  }
  return candidates.find((f) => existsSync(f));
}

/** Node's prefix when it holds Node's C headers (include/node/node_api.h), so node-gyp needs no download. */
function nodeDir(): string | undefined {
  const dir = resolve(dirname(process.execPath), '..');
  return existsSync(join(dir, 'include', 'node', 'node_api.h')) ? dir : undefined;
}

/**
 * Builds lmdb-js from the sources in `pkgDir` with the fixes into `outDir` (its build/Release), in
 * a folder beside it renamed into place, so a concurrent build or a failed one leaves nothing half
 * made. Throws NOT_SUPPORTED with one line saying what to install when a tool is missing.
 */
export async function buildFixedLmdb(pkgDir: string, outDir: string): Promise<void> {
  const missing = ['g++', 'make', 'python3'].filter((t) => !onPath(t));
  const gyp = nodeGypScript();
  const headers = nodeDir();
  if (missing.length > 0 || gyp === undefined || headers === undefined) {
    const what = [
      ...(missing.length > 0 ? [`apt install ${missing.join(' ')}`] : []),
      ...(gyp === undefined ? ["npm (its node-gyp)"] : []),
      ...(headers === undefined ? ["Node's C headers (Node from nodejs.org or libnode-dev)"] : []),
    ].join(', ');
    throw new FragfsError('NOT_SUPPORTED', `fragfs builds its LMDB binding once, with two upstream fixes, and needs: ${what}`);
  }
  const tmp = `${outDir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  try {
    for (const part of ['binding.gyp', 'src', 'dependencies', 'package.json']) await cp(join(pkgDir, part), join(tmp, part), { recursive: true });
    // binding.gyp asks require('node-addon-api') for its headers, from the folder it builds in.
    const addonApi = packageDirOf('node-addon-api', join(pkgDir, 'package.json'));
    await mkdir(join(tmp, 'node_modules'));
    await symlink(addonApi, join(tmp, 'node_modules', 'node-addon-api'));
    const mdb = join(tmp, MDB_C);
    await writeFile(mdb, patchMdbSource(await readFile(mdb, 'latin1')).text, 'latin1');
    await new Promise<void>((done, fail) => {
      // make -j (one job per core): 14 compile units, 43 s on one core of the test machine, 22 s on two.
      execFile(process.execPath, [gyp, 'rebuild', '--jobs=max', `--nodedir=${headers}`], { cwd: tmp, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (!err) return done();
        const lines = `${stderr}\n${stdout}`.split('\n');
        const first = lines.find((l) => /error/i.test(l)) ?? err.message;
        fail(new FragfsError('NOT_SUPPORTED', `fragfs could not build its LMDB binding: ${first.trim()}`, { cause: err }));
      });
    });
    // What is kept is the binary: lmdb-js finds it in build/Release.
    for (const part of ['src', 'dependencies', 'node_modules', 'build/Release/obj.target', 'build/Release/.deps']) await rm(join(tmp, part), { recursive: true, force: true });
    try {
      await rename(tmp, outDir);
    } catch (e) {
      // Another process finished the same build first: theirs is as good.
      if (!existsSync(join(outDir, BINARY))) throw e;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Makes lmdb-js load a fixed build: call before anything imports 'lmdb'. With `build` false (a
 * command that opens no store) it only points at a build that exists. LMDB_PREBUILD set by the user
 * is left alone.
 */
export async function useFixedLmdb(o: { build: boolean; onBuild?: () => void }): Promise<void> {
  if (process.env['LMDB_PREBUILD']) return;
  const pkgDir = lmdbPackageDir();
  let found = findFixedLmdb(pkgDir);
  if (found === undefined && o.build) {
    o.onBuild?.();
    const dir = lmdbCacheDir(pkgDir);
    await buildFixedLmdb(pkgDir, dir);
    found = { dir, inPackage: false };
  }
  if (found !== undefined && !found.inPackage) process.env['LMDB_PREBUILD'] = found.dir;
}

if (runAsScript(import.meta.url, 'lmdb-binding.js')) {
  const [verb, file] = process.argv.slice(2);
  if (verb !== 'patch' || file === undefined) {
    process.stderr.write('usage: node lmdb-binding.js patch MDB_C\n');
    process.exit(2);
  }
  try {
    const { text, changed } = patchMdbSource(await readFile(file, 'latin1'));
    if (changed) await writeFile(file, text, 'latin1');
    process.stdout.write(changed ? 'patched\n' : 'unchanged\n');
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
}
