// What this machine lets a test do, decided once when a test file loads: tests that need something
// missing are registered as skipped, with one loud line saying what is missing (a test that passes
// without running would hide it).

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const isLinuxRoot = process.platform === 'linux' && process.getuid?.() === 0;

/** Root on Linux, so a small tmpfs can be mounted to fill a disk for real. */
export const canMountTmpfs: boolean = (() => {
  if (!isLinuxRoot) return false;
  const dir = mkdtempSync(join(tmpdir(), 'fragfs-probe-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status !== 0) return false;
    spawnSync('umount', [dir]);
    return true;
  } finally {
    rmdirSync(dir);
  }
})();

/** Root with a `nobody` account and runuser, so the CLI can be run as an unprivileged user. */
export const canRunAsNobody: boolean =
  isLinuxRoot && spawnSync('id', ['nobody']).status === 0 && spawnSync('runuser', ['-u', 'nobody', '--', 'true']).status === 0;

const warned = new Set<string>();

/** `test` when `ok`, else `test.skip` with a warning naming what is missing (once per reason). */
export function testIf(ok: boolean, missing: string): typeof test {
  if (!ok && !warned.has(missing)) {
    warned.add(missing);
    console.warn(`!!! SKIPPED here: ${missing}`);
  }
  return ok ? test : (test.skip as unknown as typeof test);
}

/**
 * The temp folder's file system refuses a 2^50-byte file (ext4 stops at 16 TiB): what a test of
 * `get`'s FILE_TOO_BIG needs. A file system that holds it (tmpfs, xfs) has nothing to refuse.
 */
export const tempRefusesHugeFiles: boolean = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'fragfs-probe-'));
  const file = join(dir, 'sparse');
  try {
    return spawnSync('truncate', ['-s', String(2 ** 50), file]).status !== 0;
  } finally {
    spawnSync('rm', ['-rf', dir]);
  }
})();

/** The temp folder's file system allocates blocks past a file's end (fallocate --keep-size): what the LMDB room reservation uses. */
export const tempFallocatesPastEnd: boolean = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'fragfs-probe-'));
  try {
    writeFileSync(join(dir, 'f'), '');
    return spawnSync('fallocate', ['--keep-size', '--length', '65536', join(dir, 'f')]).status === 0;
  } finally {
    spawnSync('rm', ['-rf', dir]);
  }
})();

/** The temp folder's file system keeps user.* extended attributes (what put's xattr tests store and restore). */
export const tempHasUserXattrs: boolean = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'fragfs-probe-'));
  try {
    writeFileSync(join(dir, 'f'), '');
    return spawnSync('python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "user.probe", b"1")', join(dir, 'f')]).status === 0;
  } finally {
    spawnSync('rm', ['-rf', dir]);
  }
})();
