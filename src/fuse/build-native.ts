// Builds fragfs's patched copy of the fuse-native addon (dist/native/fuse-native/build/Release/fuse.node).
// fuse-native 2.2.6 (unmaintained) passes atime twice to utimens, so no mtime ever reaches the
// filesystem (rsync, cp -a, tar and make all depend on it), turns UTIME_NOW/UTIME_OMIT into garbage
// dates, drops mtime-only updates (tar x) and hides create's open flags and the caller's uid/gid. The patch fixes exactly those in
// the upstream C source from node_modules, answers security.capability in C, lets a lone waiting
// request spin briefly before it sleeps, and compiles it (compile-addon.ts); index.js of
// fuse-native then loads it through node-gyp-build's FUSE_NATIVE_PREBUILD override (fuse-native.ts).
//
// Run: node dist/src/fuse/build-native.js   (needs cc, Node's headers and the libfuse headers that
// fuse-shared-library ships; no network).

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FragfsError } from '../errors.js';
import { compileAddon, fuseNativeRequire } from './compile-addon.js';

/** Where the patched addon lives: node-gyp-build looks in <dir>/build/Release. */
export const PATCHED_BINDING_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../native/fuse-native');
export const PATCHED_BINDING_FILE = join(PATCHED_BINDING_DIR, 'build', 'Release', 'fuse.node');

/** ms value the patched addon sends for UTIME_OMIT ("leave this time as it is"). */
export const TIME_OMIT_MS = Number.MAX_SAFE_INTEGER;

const HELPERS = `
#include <time.h>
#include <sys/stat.h>
/* fragfs: UTIME_NOW is the current time, UTIME_OMIT a sentinel (2^53-1 ms) the adapter skips. */
static uint64_t fragfs_time_ms (const struct timespec* ts) {
  if (ts->tv_nsec == UTIME_OMIT) return 9007199254740991ULL;
  if (ts->tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return ((uint64_t) now.tv_sec * 1000) + (now.tv_nsec / 1000000);
  }
  return ((uint64_t) ts->tv_sec * 1000) + (ts->tv_nsec / 1000000);
}
#include <errno.h>
#include <string.h>
/*
 * fragfs: FUSE mounts are nosuid, so file capabilities never apply and fragfs does not keep them.
 * The kernel asks for security.capability before every write (file_remove_privs): answering here
 * saves a round trip to JS per write request (gocryptfs does the same, its issue 515).
 */
static int fragfs_is_capability (const char *name) { return strcmp(name, "security.capability") == 0; }
#define FRAGFS_CALLER(l) { struct fuse_context *fc = fuse_get_context(); l->uid = fc->uid; l->gid = fc->gid; }
/*
 * fragfs: a FUSE thread hands each request to the JS thread and sleeps on a semaphore until JS
 * answers. A request answered in tens of microseconds (a getattr, a lookup) then pays a futex wake-up
 * of the sleeping thread, which on a VM costs about as much as the answer. When it is the only
 * request waiting (a serial walk: find, tar, cp), the thread spins briefly first. With several
 * requests waiting (parallel reads and writes) nobody spins, so the JS thread and the codec workers
 * keep the cores. Measured on a 2-core VM: find -ls -32 %, tar x -20 %, sequential I/O unchanged.
 */
#if defined(__x86_64__) || defined(__i386__)
#define FRAGFS_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define FRAGFS_PAUSE() __asm__ __volatile__("yield")
#else
#define FRAGFS_PAUSE() do {} while (0)
#endif
#define FRAGFS_SPIN 4000
static int fragfs_waiting = 0;
static void fragfs_wait (uv_sem_t *sem) {
  int alone = __atomic_add_fetch(&fragfs_waiting, 1, __ATOMIC_SEQ_CST) == 1;
  if (alone) {
    for (int i = 0; i < FRAGFS_SPIN; i++) {
      if (uv_sem_trywait(sem) == 0) goto done;
      if (__atomic_load_n(&fragfs_waiting, __ATOMIC_RELAXED) > 1) break;
      FRAGFS_PAUSE();
    }
  }
  uv_sem_wait(sem);
done:
  __atomic_sub_fetch(&fragfs_waiting, 1, __ATOMIC_SEQ_CST);
}
`;

/** [what, before, after]: each `before` MUST occur exactly once in the upstream source. */
const EDITS: Array<[string, string, string]> = [
  ['helpers', '// Methods\n', `${HELPERS}\n// Methods\n`],
  [
    'requests wait with a short spin when alone',
    `  uv_async_send(&(l->async));\\
  uv_sem_wait(&(l->sem));\\
  return l->res;`,
    `  uv_async_send(&(l->async));\\
  fragfs_wait(&(l->sem));\\
  return l->res;`,
  ],
  [
    'utimens passes mtime',
    `  l->atime = timespec_to_uint64(&tv[0]);
  l->mtime = timespec_to_uint64(&tv[1]);
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)`,
    `  l->atime = fragfs_time_ms(&tv[0]);
  l->mtime = fragfs_time_ms(&tv[1]);
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)`,
  ],
  [
    // libfuse 2.9 drops a setattr that sets only one of atime/mtime (tar x, touch -m) unless the
    // filesystem says it understands UTIME_OMIT/UTIME_NOW.
    'utimens accepts UTIME_OMIT',
    '  if (implemented[op_init]) ops.init = fuse_native_init;\n',
    '  if (implemented[op_init]) ops.init = fuse_native_init;\n  ops.flag_utime_omit_ok = 1;\n',
  ],
  [
    'create passes flags and caller',
    `FUSE_METHOD(create, 2, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {
  l->path = path;
  l->mode = mode;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
}`,
    `FUSE_METHOD(create, 5, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {
  l->path = path;
  l->mode = mode;
  l->info = info;
  FRAGFS_CALLER(l)
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->info->flags, &(argv[4]));
  napi_create_uint32(env, l->uid, &(argv[5]));
  napi_create_uint32(env, l->gid, &(argv[6]));
}`,
  ],
  [
    'getxattr answers security.capability without JS',
    `FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size), {
  l->path = path;`,
    `FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size), {
  if (fragfs_is_capability(name)) return -ENODATA;
  l->path = path;`,
  ],
  [
    'mknod passes caller',
    `FUSE_METHOD_VOID(mknod, 3, 0, (const char *path, mode_t mode, dev_t dev), {
  l->path = path;
  l->mode = mode;
  l->dev = dev;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->dev, &(argv[4]));
}`,
    `FUSE_METHOD_VOID(mknod, 5, 0, (const char *path, mode_t mode, dev_t dev), {
  l->path = path;
  l->mode = mode;
  l->dev = dev;
  FRAGFS_CALLER(l)
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->dev, &(argv[4]));
  napi_create_uint32(env, l->uid, &(argv[5]));
  napi_create_uint32(env, l->gid, &(argv[6]));
}`,
  ],
  [
    'symlink passes caller',
    `FUSE_METHOD_VOID(symlink, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
}`,
    `FUSE_METHOD_VOID(symlink, 4, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
  FRAGFS_CALLER(l)
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
  napi_create_uint32(env, l->uid, &(argv[4]));
  napi_create_uint32(env, l->gid, &(argv[5]));
}`,
  ],
  [
    'mkdir passes caller',
    `FUSE_METHOD_VOID(mkdir, 2, 0, (const char *path, mode_t mode), {
  l->path = path;
  l->mode = mode;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
}`,
    `FUSE_METHOD_VOID(mkdir, 4, 0, (const char *path, mode_t mode), {
  l->path = path;
  l->mode = mode;
  FRAGFS_CALLER(l)
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->uid, &(argv[4]));
  napi_create_uint32(env, l->gid, &(argv[5]));
}`,
  ],
];

export function patchSource(source: string): string {
  let out = source;
  for (const [what, before, after] of EDITS) {
    const first = out.indexOf(before);
    if (first < 0 || out.indexOf(before, first + 1) >= 0) {
      throw new FragfsError('INVALID', `fuse-native source does not match the expected upstream 2.2.6 (${what})`);
    }
    out = out.slice(0, first) + after + out.slice(first + before.length);
  }
  return out;
}

export async function buildPatchedBinding(o: { quiet?: boolean } = {}): Promise<string> {
  const fuseNative = fuseNativeRequire();
  const napiMacrosDir = dirname(fuseNative.require.resolve('napi-macros/package.json'));
  const source = patchSource(await readFile(join(fuseNative.dir, 'fuse-native.c'), 'utf8'));
  await mkdir(PATCHED_BINDING_DIR, { recursive: true });
  const cFile = join(PATCHED_BINDING_DIR, 'fuse-native-fragfs.c');
  await writeFile(cFile, source);
  return compileAddon({ cFile, outFile: PATCHED_BINDING_FILE, includeDirs: [napiMacrosDir], quiet: o.quiet === true });
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const file = await buildPatchedBinding();
  process.stdout.write(`${file}\n`);
}
