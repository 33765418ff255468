/*
 * fragfs's addon for the local file system calls Node has no API for, used by `put` and `get`:
 * extended attributes of a path without following a symlink (llistxattr, lgetxattr, lsetxattr) and
 * mknod (FIFOs, sockets, device nodes), each one synchronous call on the calling thread, like
 * fs.lstatSync: they touch an inode the caller has just looked at; and scanDir and lstatMany, a
 * folder's (or a batch of paths') lstats and extended attributes in one call run on libuv's thread
 * pool; and readSmallFiles, a batch of small files opened, fstat'ed, read and fstat'ed again on the
 * thread pool, so `put` spends no JavaScript round trip per small file; and fallocateKeepSize, for the
 * LMDB space reserve, on the thread pool too. Failures throw an Error
 * whose `code` is the errno name (as node:fs does). local-fs.ts types and builds this file.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#ifndef FRAGFS_SOURCE_MARK
#define FRAGFS_SOURCE_MARK "unknown"
#endif
/* Lets a loader tell a stale build from the current source without loading it. */
__attribute__((used)) static const char source_mark[] = "fragfs-local-source:" FRAGFS_SOURCE_MARK;

#define NAPI(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "fragfs-local: " #call " failed"); return NULL; } } while (0)

static const char *errno_name(int e) {
  switch (e) {
    case ENOENT: return "ENOENT"; case EACCES: return "EACCES"; case EPERM: return "EPERM";
    case ENOTSUP: return "ENOTSUP"; case ENODATA: return "ENODATA"; case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG"; case ENOSPC: return "ENOSPC"; case EDQUOT: return "EDQUOT";
    case EEXIST: return "EEXIST"; case ENOTDIR: return "ENOTDIR"; case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG"; case EIO: return "EIO"; case EROFS: return "EROFS";
    case EINVAL: return "EINVAL"; case ENOMEM: return "ENOMEM"; case ESTALE: return "ESTALE";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *call) {
  napi_value code, msg, err, num;
  if (napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  char text[160];
  snprintf(text, sizeof text, "%s: %s", call, strerror(e));
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) != napi_ok) return NULL;
  if (napi_create_error(env, code, msg, &err) != napi_ok) return NULL;
  if (napi_create_int32(env, -e, &num) == napi_ok) napi_set_named_property(env, err, "errno", num);
  napi_set_named_property(env, err, "code", code);
  napi_throw(env, err);
  return NULL;
}

/* A NUL-terminated copy of a Buffer argument (a path or an xattr name); NULL with an exception set. */
static char *cstring_arg(napi_env env, napi_value v, const char *what) {
  bool is_buf = false;
  void *data;
  size_t len;
  if (napi_is_buffer(env, v, &is_buf) != napi_ok || !is_buf) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return NULL;
  if (memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "fragfs-local: out of memory");
    return NULL;
  }
  memcpy(s, data, len);
  s[len] = 0;
  return s;
}

/* A growable byte buffer; `failed` once an allocation failed (its bytes are then incomplete). */
typedef struct { unsigned char *data; size_t len, cap; int failed; } growbuf;

static int grow(growbuf *b, size_t more) {
  if (b->failed) return 0;
  if (b->len + more <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  unsigned char *d = realloc(b->data, cap);
  if (d == NULL) { b->failed = 1; return 0; }
  b->data = d;
  b->cap = cap;
  return 1;
}

/* Little-endian words at `p`: the answers' byte order, whatever the machine's. */
static void put_u32_at(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char) (v >> (8 * i));
}

static void put_u64_at(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char) (v >> (8 * i));
}

static uint32_t get_u32_at(const unsigned char *p) {
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void put_u32(growbuf *b, uint32_t v) {
  if (!grow(b, 4)) return;
  put_u32_at(b->data + b->len, v);
  b->len += 4;
}

static void put_bytes(growbuf *b, const void *p, size_t n) {
  if (!grow(b, n)) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

/*
 * Appends every extended attribute of `path` (a symlink's own) to `out` as [u32 LE name length][name]
 * [u32 LE value length][value], in the order llistxattr gives; 0, or the errno that stopped it (what
 * it appended is then to be dropped). The list and each value may change between the size query and
 * the read (ERANGE): asked again, at most 8 times.
 */
static int read_xattrs(const char *path, growbuf *out) {
  char *names = NULL, *value = NULL;
  size_t start = out->len;
  int result = ERANGE; /* the list never held still */
  for (int attempt = 0; attempt < 8; attempt++) {
    free(names);
    names = NULL;
    out->len = start;
    ssize_t want = llistxattr(path, NULL, 0);
    if (want < 0) { result = errno; break; }
    if (want == 0) { result = 0; break; }
    names = malloc((size_t) want);
    if (names == NULL) { result = ENOMEM; break; }
    ssize_t got = llistxattr(path, names, (size_t) want);
    if (got < 0 && errno == ERANGE) continue;
    if (got < 0) { result = errno; break; }
    result = 0;
    for (ssize_t at = 0; at < got && result == 0;) {
      const char *name = names + at;
      size_t nlen = strlen(name);
      at += (ssize_t) nlen + 1;
      if (nlen == 0) continue;
      ssize_t vlen = 0;
      for (int tries = 0; tries < 8; tries++) {
        vlen = lgetxattr(path, name, NULL, 0);
        if (vlen < 0) break;
        free(value);
        value = malloc(vlen > 0 ? (size_t) vlen : 1);
        if (value == NULL) { vlen = -1; errno = ENOMEM; break; }
        ssize_t v = vlen == 0 ? 0 : lgetxattr(path, name, value, (size_t) vlen);
        if (v >= 0) { vlen = v; break; }
        if (errno != ERANGE) { vlen = -1; break; }
      }
      if (vlen < 0) {
        if (errno == ENODATA) continue; /* removed since the list: not there */
        result = errno;
        break;
      }
      put_u32(out, (uint32_t) nlen);
      put_bytes(out, name, nlen);
      put_u32(out, (uint32_t) vlen);
      put_bytes(out, value, (size_t) vlen);
    }
    break;
  }
  free(value);
  free(names);
  if (result == 0 && out->failed) result = ENOMEM;
  if (result != 0) out->len = start;
  return result;
}

/* lgetxattrs(path: Buffer): [name: Buffer, value: Buffer][] in the order llistxattr gives. */
static napi_value js_lgetxattrs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "lgetxattrs(path)"); return NULL; }
  char *path = cstring_arg(env, argv[0], "lgetxattrs: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  growbuf b = { 0 };
  int e = read_xattrs(path, &b);
  free(path);
  if (e != 0) { free(b.data); return throw_errno(env, e, e == ERANGE ? "llistxattr" : "lgetxattr"); }
  if (napi_create_array(env, &out) != napi_ok) { free(b.data); return NULL; }
  uint32_t n = 0;
  for (size_t at = 0; at < b.len;) {
    uint32_t len[2];
    napi_value buf[2], pair;
    for (int k = 0; k < 2; k++) {
      len[k] = get_u32_at(b.data + at);
      at += 4;
      if (napi_create_buffer_copy(env, len[k], b.data + at, NULL, &buf[k]) != napi_ok) { free(b.data); return NULL; }
      at += len[k];
    }
    if (napi_create_array_with_length(env, 2, &pair) != napi_ok || napi_set_element(env, pair, 0, buf[0]) != napi_ok ||
        napi_set_element(env, pair, 1, buf[1]) != napi_ok || napi_set_element(env, out, n++, pair) != napi_ok) {
      free(b.data);
      return NULL;
    }
  }
  free(b.data);
  return out;
}

/*
 * lstatMany(paths: Buffer, count: number, xattrs: boolean): Promise<Buffer>. `paths` holds `count`
 * NUL-terminated paths back to back. Runs on libuv's thread pool: one lstat (and with `xattrs`, the
 * extended attributes) per path, so a folder's entries cost one call from JavaScript instead of
 * two each.
 * scanDir(path: Buffer, xattrs: boolean): Promise<Buffer>. The same for every entry of folder `path`
 * (but `.` and `..`), listed first: one call a folder, and no name crosses into JavaScript alone.
 * The answer of both: an 8-byte header (u32 count, u32 errno of the listing), `count` records of
 * LSTAT_RECORD bytes (layout in source-stat.ts, `readRecord`), then the names (scanDir) and the
 * extended attributes' bytes the records point into. All little-endian.
 */
#define LSTAT_HEADER 8
#define LSTAT_RECORD 88

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  /* lstatMany: `count` NUL-terminated paths; scanDir: the folder's path. */
  char *paths;
  uint32_t count;
  int xattrs;
  int scan;
  growbuf out;
} lstat_batch;

/*
 * Fills record `i` of `out` from an lstat's result `r` (0, or the errno) and `st`; with `xattrs`,
 * appends the attributes of `path` (needed only then) and points the record at them.
 */
static void fill_record(growbuf *out, uint32_t i, int r, const struct stat *st, const char *path, int xattrs) {
  size_t at = LSTAT_HEADER + (size_t) i * LSTAT_RECORD;
  if (r != 0) {
    put_u32_at(out->data + at, (uint32_t) r);
    return;
  }
  size_t blob = out->len;
  int xe = xattrs ? read_xattrs(path, out) : 0;
  if (out->failed) return;
  /* After read_xattrs: it may have moved the buffer. */
  unsigned char *rec = out->data + at;
  put_u32_at(rec + 4, (uint32_t) xe);
  put_u32_at(rec + 8, st->st_mode);
  put_u32_at(rec + 12, st->st_uid);
  put_u32_at(rec + 16, st->st_gid);
  put_u32_at(rec + 20, st->st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t) st->st_nlink);
  /* Nanoseconds since the epoch fit an int64 until 2262, as in FORMAT.md's mtimeNs. */
  put_u64_at(rec + 24, (uint64_t) ((int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec));
  put_u64_at(rec + 32, (uint64_t) st->st_size);
  put_u64_at(rec + 40, (uint64_t) st->st_ino);
  put_u64_at(rec + 48, (uint64_t) st->st_dev);
  put_u64_at(rec + 56, (uint64_t) st->st_rdev);
  put_u32_at(rec + 64, (uint32_t) blob);
  put_u32_at(rec + 68, (uint32_t) (out->len - blob));
  put_u64_at(rec + 80, (uint64_t) ((int64_t) st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec));
}

/* The header and `count` zeroed records; 0 when out of memory. */
static int start_answer(growbuf *out, uint32_t count) {
  size_t head = LSTAT_HEADER + (size_t) count * LSTAT_RECORD;
  if (!grow(out, head)) return 0;
  memset(out->data, 0, head);
  put_u32_at(out->data, count);
  out->len = head;
  return 1;
}

static void scan_dir(lstat_batch *b) {
  DIR *d = opendir(b->paths);
  if (d == NULL) {
    int e = errno;
    if (start_answer(&b->out, 0)) put_u32_at(b->out.data + 4, (uint32_t) e);
    return;
  }
  /* The names first (NUL-terminated, back to back): the records come before them in the answer. */
  growbuf names = { 0 };
  uint32_t count = 0;
  int listing = 0;
  for (;;) {
    /* readdir's end and its failure look alike but for errno, which nothing between may touch. */
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      listing = errno;
      break;
    }
    const char *n = de->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    put_bytes(&names, n, strlen(n) + 1);
    count++;
  }
  if (names.failed || !start_answer(&b->out, count)) {
    b->out.failed = 1;
    free(names.data);
    closedir(d);
    return;
  }
  put_u32_at(b->out.data + 4, (uint32_t) listing);
  size_t dir_len = strlen(b->paths);
  char path[PATH_MAX + NAME_MAX + 2];
  int fd = dirfd(d);
  size_t at = 0;
  for (uint32_t i = 0; i < count; i++) {
    const char *n = (const char *) names.data + at;
    size_t len = strlen(n);
    size_t name_at = b->out.len;
    put_bytes(&b->out, n, len);
    if (b->out.failed) break;
    unsigned char *rec = b->out.data + LSTAT_HEADER + (size_t) i * LSTAT_RECORD;
    put_u32_at(rec + 72, (uint32_t) name_at);
    put_u32_at(rec + 76, (uint32_t) len);
    struct stat st;
    int r = fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
    int full = dir_len + 1 + len < sizeof path;
    if (full) {
      memcpy(path, b->paths, dir_len);
      path[dir_len] = '/';
      memcpy(path + dir_len + 1, n, len + 1);
    }
    /* A path too long for the attribute calls: its record says so, as an lstat of it would. */
    fill_record(&b->out, i, r, &st, path, b->xattrs && full);
    if (r == 0 && b->xattrs && !full) put_u32_at(b->out.data + LSTAT_HEADER + (size_t) i * LSTAT_RECORD + 4, ENAMETOOLONG);
    if (b->out.failed) break;
    at += len + 1;
  }
  free(names.data);
  closedir(d);
}

static void lstat_many_execute(napi_env env, void *data) {
  (void) env;
  lstat_batch *b = data;
  if (b->scan) {
    scan_dir(b);
    return;
  }
  if (!start_answer(&b->out, b->count)) return;
  const char *path = b->paths;
  for (uint32_t i = 0; i < b->count; i++, path += strlen(path) + 1) {
    struct stat st;
    int r = lstat(path, &st) == 0 ? 0 : errno;
    fill_record(&b->out, i, r, &st, path, b->xattrs);
    if (b->out.failed) return;
  }
}

/* A batch's promise: resolved with a copy of its answer, or rejected with ENOMEM when it ran out. */
static void settle_batch(napi_env env, napi_status status, napi_deferred deferred, const growbuf *out, const char *what) {
  napi_value result;
  if (status == napi_ok && !out->failed && napi_create_buffer_copy(env, out->len, out->data, NULL, &result) == napi_ok) {
    napi_resolve_deferred(env, deferred, result);
  } else {
    napi_value code, msg, err;
    napi_create_string_utf8(env, "ENOMEM", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &err);
    napi_set_named_property(env, err, "code", code);
    napi_reject_deferred(env, deferred, err);
  }
}

static void lstat_many_complete(napi_env env, napi_status status, void *data) {
  lstat_batch *b = data;
  settle_batch(env, status, b->deferred, &b->out, "lstatMany/scanDir: out of memory");
  napi_delete_async_work(env, b->work);
  free(b->out.data);
  free(b->paths);
  free(b);
}

/*
 * A promise for `data`'s work, queued on libuv's thread pool: `execute` runs there, `complete` on the
 * JS thread settles `*deferred`. NULL when any step fails (the caller frees `data` and throws; a
 * promise made before the failure stays pending, and the throw is what the caller sees).
 */
static napi_value queue_work(napi_env env, const char *resource, napi_async_execute_callback execute,
                             napi_async_complete_callback complete, void *data, napi_async_work *work, napi_deferred *deferred) {
  napi_value name, promise;
  if (napi_create_promise(env, deferred, &promise) != napi_ok || napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, data, work) != napi_ok || napi_queue_async_work(env, *work) != napi_ok) {
    return NULL;
  }
  return promise;
}

/* Queues `b` on the thread pool; its promise, or NULL with an exception set (and `b` freed). */
static napi_value queue_batch(napi_env env, lstat_batch *b, const char *resource) {
  napi_value promise = queue_work(env, resource, lstat_many_execute, lstat_many_complete, b, &b->work, &b->deferred);
  if (promise == NULL) {
    free(b->paths);
    free(b);
    napi_throw_error(env, NULL, "fragfs-local: cannot queue a batch of lstats");
  }
  return promise;
}

static napi_value js_scan_dir(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool xattrs;
  if (argc < 2 || napi_get_value_bool(env, argv[1], &xattrs) != napi_ok) {
    napi_throw_type_error(env, NULL, "scanDir(path: Buffer, xattrs: boolean)");
    return NULL;
  }
  char *path = cstring_arg(env, argv[0], "scanDir: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  lstat_batch *b = calloc(1, sizeof *b);
  if (b == NULL) {
    free(path);
    napi_throw_error(env, "ENOMEM", "fragfs-local: out of memory");
    return NULL;
  }
  b->paths = path;
  b->xattrs = xattrs;
  b->scan = 1;
  return queue_batch(env, b, "fragfs-scan-dir");
}

/*
 * A copy of `v`, a Buffer of exactly `count` NUL-terminated paths back to back (so a pool thread
 * never reads past it); NULL with an exception set otherwise.
 */
static char *paths_arg(napi_env env, napi_value v, uint32_t count, const char *what) {
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  uint32_t nuls = 0;
  for (size_t k = 0; k < len; k++) nuls += ((const char *) data)[k] == 0;
  if (nuls != count || (len > 0 && ((const char *) data)[len - 1] != 0)) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char *copy = malloc(len ? len : 1);
  if (copy == NULL) {
    napi_throw_error(env, "ENOMEM", "fragfs-local: out of memory");
    return NULL;
  }
  memcpy(copy, data, len);
  return copy;
}

static napi_value js_lstat_many(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_buf = false;
  uint32_t count;
  bool xattrs;
  if (argc < 3 || napi_is_buffer(env, argv[0], &is_buf) != napi_ok || !is_buf || napi_get_value_uint32(env, argv[1], &count) != napi_ok ||
      napi_get_value_bool(env, argv[2], &xattrs) != napi_ok) {
    napi_throw_type_error(env, NULL, "lstatMany(paths: Buffer, count: number, xattrs: boolean)");
    return NULL;
  }
  char *paths = paths_arg(env, argv[0], count, "lstatMany: paths must be `count` NUL-terminated paths");
  if (paths == NULL) return NULL;
  lstat_batch *b = calloc(1, sizeof *b);
  if (b == NULL) {
    free(paths);
    napi_throw_error(env, "ENOMEM", "fragfs-local: out of memory");
    return NULL;
  }
  b->paths = paths;
  b->count = count;
  b->xattrs = xattrs;
  return queue_batch(env, b, "fragfs-lstat-many");
}

/*
 * readSmallFiles(paths: Buffer, count: number, maxBytes: number): Promise<Buffer>. `paths` holds
 * `count` NUL-terminated paths back to back. On libuv's thread pool, each path is opened (not
 * following a symlink, not blocking on a FIFO swapped in), fstat'ed, read from byte 0 up to the size
 * that fstat gave (a regular file of at most `maxBytes` only), fstat'ed again and closed: what put's
 * readOnce does in four JavaScript round trips a file. Whether the read held still is the caller's
 * call, from the two fstats and the time the read began.
 * The answer: an 8-byte header (u32 count, u32 0), `count` records of SMALL_RECORD bytes, then the
 * bytes read. A record, in bytes from its start: 0 errno (0: read), 4 the call that failed (1 open,
 * 2 fstat, 3 read, 4 the second fstat; 5 not a regular file, 6 larger than maxBytes: nothing read),
 * 8 st_mode, 12 uid, 16 gid, 20 nlink (u32), 24 mtime ns, 32 ctime ns (i64), 40 size, 48 ino, 56
 * dev (u64), 64 size, 72 mtime ns, 80 ctime ns of the second fstat, 88 the wall clock (ns) when
 * the read began, 96 offset and 100 length of the bytes read. All little-endian.
 */
#define SMALL_RECORD 104

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *paths;
  uint32_t count;
  uint64_t max_bytes;
  growbuf out;
} small_batch;

static int64_t ns_of(const struct timespec *t) {
  return (int64_t) t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Reads file `path` into `out` and fills record `rec_at`; the record's errno and stage say how far it got. */
static void read_small(growbuf *out, size_t rec_at, const char *path, uint64_t max_bytes) {
  int stage = 1;
  int e = 0;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { e = errno; goto done; }
  struct stat st, after;
  stage = 2;
  if (fstat(fd, &st) != 0) { e = errno; goto done; }
  unsigned char *rec = out->data + rec_at;
  put_u32_at(rec + 8, st.st_mode);
  put_u32_at(rec + 12, st.st_uid);
  put_u32_at(rec + 16, st.st_gid);
  put_u32_at(rec + 20, st.st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t) st.st_nlink);
  put_u64_at(rec + 24, (uint64_t) ns_of(&st.st_mtim));
  put_u64_at(rec + 32, (uint64_t) ns_of(&st.st_ctim));
  put_u64_at(rec + 40, (uint64_t) st.st_size);
  put_u64_at(rec + 48, (uint64_t) st.st_ino);
  put_u64_at(rec + 56, (uint64_t) st.st_dev);
  if (!S_ISREG(st.st_mode)) { stage = 5; goto done; }
  if ((uint64_t) st.st_size > max_bytes) { stage = 6; goto done; }
  /* As readOnce takes Date.now(): milliseconds, so the racy rule draws the same line. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  put_u64_at(rec + 88, (uint64_t) (ns_of(&now) / 1000000 * 1000000));
  size_t want = (size_t) st.st_size;
  if (!grow(out, want)) goto done;
  size_t data_at = out->len, got = 0;
  stage = 3;
  while (got < want) {
    ssize_t n = pread(fd, out->data + data_at + got, want - got, (off_t) got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { e = errno; goto done; }
    if (n == 0) break; /* EOF before the size fstat gave: the file shrank */
    got += (size_t) n;
  }
  out->len += got;
  stage = 4;
  if (fstat(fd, &after) != 0) { e = errno; goto done; }
  /* After grow: it may have moved the buffer. */
  rec = out->data + rec_at;
  put_u64_at(rec + 64, (uint64_t) after.st_size);
  put_u64_at(rec + 72, (uint64_t) ns_of(&after.st_mtim));
  put_u64_at(rec + 80, (uint64_t) ns_of(&after.st_ctim));
  put_u32_at(rec + 96, (uint32_t) data_at);
  put_u32_at(rec + 100, (uint32_t) got);
  stage = 0;
done:
  if (fd >= 0) close(fd);
  if (out->failed) return;
  put_u32_at(out->data + rec_at, (uint32_t) e);
  put_u32_at(out->data + rec_at + 4, (uint32_t) stage);
}

static void read_small_execute(napi_env env, void *data) {
  (void) env;
  small_batch *b = data;
  size_t head = LSTAT_HEADER + (size_t) b->count * SMALL_RECORD;
  if (!grow(&b->out, head)) return;
  memset(b->out.data, 0, head);
  put_u32_at(b->out.data, b->count);
  b->out.len = head;
  const char *path = b->paths;
  for (uint32_t i = 0; i < b->count && !b->out.failed; i++, path += strlen(path) + 1) {
    read_small(&b->out, LSTAT_HEADER + (size_t) i * SMALL_RECORD, path, b->max_bytes);
  }
}

static void read_small_complete(napi_env env, napi_status status, void *data) {
  small_batch *b = data;
  settle_batch(env, status, b->deferred, &b->out, "readSmallFiles: out of memory");
  napi_delete_async_work(env, b->work);
  free(b->out.data);
  free(b->paths);
  free(b);
}

static napi_value js_read_small_files(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_buf = false;
  uint32_t count;
  double max_bytes;
  if (argc < 3 || napi_is_buffer(env, argv[0], &is_buf) != napi_ok || !is_buf || napi_get_value_uint32(env, argv[1], &count) != napi_ok ||
      napi_get_value_double(env, argv[2], &max_bytes) != napi_ok || !(max_bytes >= 0) || max_bytes > (double) UINT32_MAX) {
    napi_throw_type_error(env, NULL, "readSmallFiles(paths: Buffer, count: number, maxBytes: number (below 4 GiB))");
    return NULL;
  }
  char *paths = paths_arg(env, argv[0], count, "readSmallFiles: paths must be `count` NUL-terminated paths");
  if (paths == NULL) return NULL;
  small_batch *b = calloc(1, sizeof *b);
  if (b == NULL) {
    free(paths);
    napi_throw_error(env, "ENOMEM", "fragfs-local: out of memory");
    return NULL;
  }
  b->paths = paths;
  b->count = count;
  b->max_bytes = (uint64_t) max_bytes;
  napi_value promise = queue_work(env, "fragfs-read-small-files", read_small_execute, read_small_complete, b, &b->work, &b->deferred);
  if (promise == NULL) {
    free(b->paths);
    free(b);
    napi_throw_error(env, NULL, "fragfs-local: cannot queue a batch of reads");
    return NULL;
  }
  return promise;
}

/* lsetxattr(path: Buffer, name: Buffer, value: Buffer): creates or replaces one attribute. */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, NULL, "lsetxattr(path, name, value)"); return NULL; }
  bool is_buf = false;
  void *value;
  size_t vlen;
  NAPI(napi_is_buffer(env, argv[2], &is_buf));
  if (!is_buf) { napi_throw_type_error(env, NULL, "lsetxattr: value must be a Buffer"); return NULL; }
  NAPI(napi_get_buffer_info(env, argv[2], &value, &vlen));
  char *path = cstring_arg(env, argv[0], "lsetxattr: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  char *name = cstring_arg(env, argv[1], "lsetxattr: name must be a Buffer without NUL");
  if (name == NULL) { free(path); return NULL; }
  int r = lsetxattr(path, name, value, vlen, 0);
  int e = errno;
  free(name);
  free(path);
  if (r != 0) return throw_errno(env, e, "lsetxattr");
  return NULL;
}

/* mknod(path: Buffer, mode: number (type and permission bits), rdev: number (st_rdev's encoding)). */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, NULL, "mknod(path, mode, rdev)"); return NULL; }
  uint32_t mode;
  double rdev;
  NAPI(napi_get_value_uint32(env, argv[1], &mode));
  NAPI(napi_get_value_double(env, argv[2], &rdev));
  char *path = cstring_arg(env, argv[0], "mknod: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  int r = mknod(path, (mode_t) mode, (dev_t) rdev);
  int e = errno;
  free(path);
  if (r != 0) return throw_errno(env, e, "mknod");
  return NULL;
}

/* A time in ns since the epoch (a BigInt, negative before 1970) as a timespec (tv_nsec in 0..1e9-1). */
static bool timespec_arg(napi_env env, napi_value v, struct timespec *ts) {
  int64_t ns;
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, v, &ns, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, NULL, "lutimens: times must be BigInts of ns within 64 bits");
    return false;
  }
  int64_t sec = ns / 1000000000, rem = ns % 1000000000;
  if (rem < 0) { rem += 1000000000; sec -= 1; }
  ts->tv_sec = (time_t) sec;
  ts->tv_nsec = (long) rem;
  return true;
}

/*
 * lutimens(path: Buffer, atimeNs: bigint, mtimeNs: bigint): utimensat(2) without following a symlink,
 * to the nanosecond (node's utimes takes seconds as a float and keeps microseconds).
 */
static napi_value js_lutimens(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, NULL, "lutimens(path, atimeNs, mtimeNs)"); return NULL; }
  struct timespec times[2];
  if (!timespec_arg(env, argv[1], &times[0]) || !timespec_arg(env, argv[2], &times[1])) return NULL;
  char *path = cstring_arg(env, argv[0], "lutimens: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  int r = utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW);
  int e = errno;
  free(path);
  if (r != 0) return throw_errno(env, e, "utimensat");
  return NULL;
}

/*
 * fallocate(FALLOC_FL_KEEP_SIZE) of [offset, offset + length) of `path`, on the thread pool: it may
 * wait for the disk. The LMDB space reserve (lmdb-space-reserve.ts) runs it while a mount or put
 * writes; util-linux's fallocate did it before, but spawning a program forks the whole process, and
 * every page the process wrote afterwards took a copy-on-write fault.
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  off_t offset, length;
  int err;
} falloc_job;

static void falloc_execute(napi_env env, void *data) {
  (void) env;
  falloc_job *j = data;
  int fd = open(j->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) { j->err = errno; return; }
  int r;
  do r = fallocate(fd, FALLOC_FL_KEEP_SIZE, j->offset, j->length); while (r != 0 && errno == EINTR);
  j->err = r == 0 ? 0 : errno;
  close(fd);
}

static void falloc_complete(napi_env env, napi_status status, void *data) {
  falloc_job *j = data;
  napi_value v;
  if (napi_create_int32(env, status == napi_ok ? j->err : EIO, &v) == napi_ok) napi_resolve_deferred(env, j->deferred, v);
  napi_delete_async_work(env, j->work);
  free(j->path);
  free(j);
}

/* fallocateKeepSize(path: Buffer, offset: number, length: number): Promise<number>, 0 or the errno. */
static napi_value js_fallocate_keep_size(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t offset, length;
  if (argc < 3 || napi_get_value_int64(env, argv[1], &offset) != napi_ok || napi_get_value_int64(env, argv[2], &length) != napi_ok ||
      offset < 0 || length <= 0) {
    napi_throw_type_error(env, NULL, "fallocateKeepSize(path: Buffer, offset >= 0, length > 0)");
    return NULL;
  }
  char *path = cstring_arg(env, argv[0], "fallocateKeepSize: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  falloc_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    free(path);
    napi_throw_error(env, "ENOMEM", "fragfs-local: out of memory");
    return NULL;
  }
  j->path = path;
  j->offset = (off_t) offset;
  j->length = (off_t) length;
  napi_value promise = queue_work(env, "fragfs:fallocate", falloc_execute, falloc_complete, j, &j->work, &j->deferred);
  if (promise == NULL) {
    free(j->path);
    free(j);
    napi_throw_error(env, NULL, "fragfs-local: cannot queue a fallocate");
    return NULL;
  }
  return promise;
}

/*
 * fallocateSync(path: Buffer, punch: boolean, offset: number, length: number): number, 0 or the errno.
 * On the calling thread: the live state's room (lmdb-space-reserve.ts) needs its blocks before a
 * write transaction starts (with a writable map, LMDB's writes are stores into memory, and a store
 * into a hole the disk cannot fill is SIGBUS, not ENOSPC); `punch` gives back what was reserved
 * (FALLOC_FL_PUNCH_HOLE) when the live state closes. Both keep the file's size.
 */
static napi_value js_fallocate_sync(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool punch;
  int64_t offset, length;
  if (argc < 4 || napi_get_value_bool(env, argv[1], &punch) != napi_ok || napi_get_value_int64(env, argv[2], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok || offset < 0 || length <= 0) {
    napi_throw_type_error(env, NULL, "fallocateSync(path: Buffer, punch: boolean, offset >= 0, length > 0)");
    return NULL;
  }
  char *path = cstring_arg(env, argv[0], "fallocateSync: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  int err = 0;
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) err = errno;
  else {
    int mode = FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : 0);
    int r;
    do r = fallocate(fd, mode, (off_t) offset, (off_t) length); while (r != 0 && errno == EINTR);
    if (r != 0) err = errno;
    close(fd);
  }
  free(path);
  napi_value v;
  NAPI(napi_create_int32(env, err, &v));
  return v;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "lgetxattrs", NULL, js_lgetxattrs, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lutimens", NULL, js_lutimens, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lstatMany", NULL, js_lstat_many, NULL, NULL, NULL, napi_enumerable, NULL },
    { "scanDir", NULL, js_scan_dir, NULL, NULL, NULL, napi_enumerable, NULL },
    { "readSmallFiles", NULL, js_read_small_files, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fallocateKeepSize", NULL, js_fallocate_keep_size, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fallocateSync", NULL, js_fallocate_sync, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  NAPI(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
