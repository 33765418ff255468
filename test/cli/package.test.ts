// The package as a user gets it: `npm pack` holds the compiled code and the addon's C source, and no
// binary compiled here, no tests and no fixtures; installed with `npm i -g` into a fresh prefix, its
// `fragfs` builds its LMDB binding with LMDB's two fixes at the first command that opens a store (a
// binding three processes opening and closing one environment do not break), builds the FUSE addon
// at the first mount and mounts (real mount, as root in CI); it reports the package's version and
// comes with mount.fragfs, the man page and shell completion.

import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fuseAvailable, run } from '../mount/helpers.js';

const REPO = process.cwd();

const REOPEN_CHILD = new URL('../store/lmdb-reopen-child.js', import.meta.url).pathname;

test('npm pack ships code and the addon source only; an npm i -g of it mounts, building the addon on first use', async (t) => {
  t.timeout(600_000);
  const work = await mkdtemp(join(tmpdir(), 'fragfs-package-'));
  t.teardown(async () => {
    await run('fusermount', ['-uz', join(work, 'mnt')]);
    await rm(work, { recursive: true, force: true });
  });
  // What `prepack` does after the build (scripts are off here: the build is the test's own).
  const man = await run(process.execPath, ['dist/bin/main.js', 'man', '--output', 'dist/man/fragfs.1'], { cwd: REPO });
  t.is(man.code, 0, man.stderr);
  const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: REPO, timeoutMs: 120_000 });
  t.is(packed.code, 0, packed.stderr);
  const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info[0]!.files.map((f) => f.path);
  t.true(files.includes('dist/bin/main.js'));
  t.true(files.includes('src/fuse/native/fuse-kernel.c'), 'the addon is built where it is installed, from its source');
  t.true(files.includes('src/local/native/local-fs.c'), 'so is the local-fs addon (xattrs, special files)');
  t.true(files.includes('dist/bin/mount-helper.js'), 'the mount helper for mount -t fuse.fragfs and fstab');
  t.true(files.includes('dist/man/fragfs.1'), 'the manual page');
  t.deepEqual(files.filter((f) => f.endsWith('.node')), [], 'no binary compiled on this machine');
  t.deepEqual(files.filter((f) => /(^|\/)(test|fixtures|scripts|\.ci)\//.test(f)), [], 'no tests, fixtures or scripts');
  t.true(files.length < 200, `${files.length} files`);

  const prefix = join(work, 'prefix');
  const home = join(work, 'home');
  await mkdir(home);
  // Offline first: the dependencies are in npm's cache since setup ran `npm ci`.
  const installed = await run(
    'npm',
    ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(work, info[0]!.filename)],
    { cwd: work, timeoutMs: 300_000 },
  );
  t.is(installed.code, 0, installed.stderr);
  const fragfs = join(prefix, 'bin', 'fragfs');
  t.true(existsSync(fragfs));
  const pkgDir = join(prefix, 'lib', 'node_modules', 'fragfs');
  t.false(existsSync(join(pkgDir, 'dist', 'native')), 'nothing built at install');

  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), FRAGFS_PASSPHRASE: 'package test', FRAGFS_RUNTIME_DIR: join(work, 'run') };
  delete env['FRAGFS_KERNEL_BINDING'];
  const cli = (args: string[]) => run(fragfs, args, { cwd: work, env, timeoutMs: 300_000 });
  t.is((await cli(['--help'])).code, 0);
  const version = await cli(['--version']);
  t.is(version.stdout.trim(), (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
  t.true(existsSync(join(prefix, 'bin', 'mount.fragfs')), 'mount.fragfs is installed beside fragfs');
  t.true(existsSync(join(prefix, 'share', 'man', 'man1', 'fragfs.1')), 'man fragfs finds the page');
  t.regex((await cli(['completion', 'bash'])).stdout, /complete -o filenames -F _fragfs_complete fragfs/);
  t.false(existsSync(join(home, '.cache', 'fragfs')), 'help, version and completion build nothing');
  const init = await cli(['init', join(work, 'vault')]);
  t.is(init.code, 0, init.stderr);
  t.regex(init.stderr, /building its LMDB binding with two upstream fixes/);
  const cached = (await readdir(join(home, '.cache', 'fragfs'))).filter((d) => d.startsWith('lmdb-'));
  t.is(cached.length, 1, cached.join(' '));
  const lmdbDir = join(home, '.cache', 'fragfs', cached[0]!);
  // The installed fragfs loads that build, not lmdb-js's prebuilt binding: the LMDB binary mapped
  // into a `fragfs stats` process when it ends.
  const mapsProbe = join(work, 'maps-probe.mjs');
  await writeFile(
    mapsProbe,
    `import { readFileSync } from 'node:fs';
     process.on('exit', () => process.stderr.write('LMDB ' + [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(' ').pop()).filter((f) => /lmdb.*[.]node$/.test(f)))].join(' ') + '\\n'));`,
  );
  const loads = await run(process.execPath, ['--import', mapsProbe, fragfs, 'stats', join(work, 'vault')], { cwd: work, env });
  t.is(loads.code, 0, loads.stderr);
  t.is(/^LMDB (.*)$/m.exec(loads.stderr)?.[1], join(lmdbDir, 'build', 'Release', 'lmdb.node'), loads.stderr);
  // Three processes opening and closing one environment: lmdb-js's prebuilt binding fails them
  // "Invalid argument" within a second or two (LMDB ITS#10095); the fixed build does not.
  const envDir = join(work, 'lmdb-env');
  t.is((await run(process.execPath, [REOPEN_CHILD, 'writer', envDir, '100'])).code, 0);
  const openers = await Promise.all(
    [1, 2, 3].map(async (i) => {
      await sleep(i * 50);
      return run(process.execPath, [REOPEN_CHILD, 'reopener', envDir, '3000'], { env: { ...env, LMDB_PREBUILD: lmdbDir } });
    }),
  );
  for (const o of openers) t.regex(o.stdout, /opens \d+/, o.stderr);
  if (!fuseAvailable()) {
    t.log('no /dev/fuse or fusermount here: the mount of the installed package is not tried');
    return;
  }
  await mkdir(join(work, 'mnt'));
  const mounted = await cli(['mount', join(work, 'vault'), join(work, 'mnt'), '--background']);
  t.is(mounted.code, 0, mounted.stderr);
  await writeFile(join(work, 'mnt', 'hello'), 'from the installed package\n');
  t.deepEqual(await readdir(join(work, 'mnt')), ['hello']);
  const umount = await cli(['umount', join(work, 'mnt')]);
  t.is(umount.code, 0, umount.stderr);
  const built = existsSync(join(pkgDir, 'dist', 'native', 'fragfs-fuse', 'fuse_kernel.node')) || existsSync(join(home, '.cache', 'fragfs'));
  t.true(built, 'the first mount built the addon');
});
