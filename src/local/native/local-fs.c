/*
 * fragfs's addon for the local file system calls Node has no API for, used by `put` and `get`:
 * extended attributes of a path without following a symlink (llistxattr, lgetxattr, lsetxattr) and
 * mknod (FIFOs, sockets, device nodes). Each is one synchronous system call on the calling thread,
 * like fs.lstatSync: they touch an inode the caller has just looked at. Failures throw an Error
 * whose `code` is the errno name (as node:fs does). local-fs.ts types and builds this file.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
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

/* lgetxattrs(path: Buffer): [name: Buffer, value: Buffer][] in the order llistxattr gives. */
static napi_value js_lgetxattrs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out = NULL;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "lgetxattrs(path)"); return NULL; }
  char *path = cstring_arg(env, argv[0], "lgetxattrs: path must be a Buffer without NUL");
  if (path == NULL) return NULL;
  char *names = NULL, *value = NULL;
  /* The list and each value may change between the size query and the read (ERANGE): ask again. */
  for (int attempt = 0; attempt < 8; attempt++) {
    free(names);
    names = NULL;
    ssize_t want = llistxattr(path, NULL, 0);
    if (want < 0) { int e = errno; free(path); return throw_errno(env, e, "llistxattr"); }
    names = malloc(want > 0 ? (size_t) want : 1);
    if (names == NULL) { free(path); napi_throw_error(env, "ENOMEM", "fragfs-local: out of memory"); return NULL; }
    ssize_t got = want == 0 ? 0 : llistxattr(path, names, (size_t) want);
    if (got < 0 && errno == ERANGE) continue;
    if (got < 0) { int e = errno; free(names); free(path); return throw_errno(env, e, "llistxattr"); }
    if (napi_create_array(env, &out) != napi_ok) { free(names); free(path); return NULL; }
    uint32_t n = 0;
    for (ssize_t at = 0; at < got;) {
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
        int e = errno;
        free(value); free(names); free(path);
        return throw_errno(env, e, "lgetxattr");
      }
      napi_value pair, nbuf, vbuf;
      if (napi_create_buffer_copy(env, nlen, name, NULL, &nbuf) != napi_ok ||
          napi_create_buffer_copy(env, (size_t) vlen, value, NULL, &vbuf) != napi_ok ||
          napi_create_array_with_length(env, 2, &pair) != napi_ok ||
          napi_set_element(env, pair, 0, nbuf) != napi_ok || napi_set_element(env, pair, 1, vbuf) != napi_ok ||
          napi_set_element(env, out, n++, pair) != napi_ok) {
        free(value); free(names); free(path);
        return NULL;
      }
    }
    break;
  }
  free(value);
  free(names);
  free(path);
  if (out == NULL) return throw_errno(env, ERANGE, "llistxattr"); /* the list never held still */
  return out;
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

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "lgetxattrs", NULL, js_lgetxattrs, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  NAPI(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
