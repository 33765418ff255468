/*
 * fragfs's low-level FUSE addon: binds libfuse 2.9's inode-based API (fuse_lowlevel.h) to Node without
 * ever blocking a thread on JS. One thread runs fuse_session_loop; each op handler copies what it needs
 * out of the request into a record, appends it to a FIFO and wakes the JS thread (uv_async), which
 * hands the records to JS `dispatch` in order. JS answers later, from the JS thread, through the reply
 * functions (fuse_reply_* are thread-safe). lowlevel-binding.ts types this interface (request codes,
 * arguments, array layouts); build-lowlevel.ts compiles this file.
 */
#define FUSE_USE_VERSION 26
#define NAPI_VERSION 8

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>

/* Request codes: lowlevel-binding.ts `Op` MUST match. */
enum {
  OP_EXIT, OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK,
  OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC,
  OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR,
  OP_REMOVEXATTR, OP_ACCESS, OP_CREATE
};
/* Attr and statfs array layouts: lowlevel-binding.ts `Attr` and `Statfs`. */
enum { A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLOCKS, A_ATIME, A_MTIME, A_CTIME, A_BLKSIZE, A_LEN };
enum { S_BSIZE, S_FRSIZE, S_BLOCKS, S_BFREE, S_BAVAIL, S_FILES, S_FFREE, S_FAVAIL, S_FSID, S_FLAG, S_NAMEMAX, S_LEN };

#define MAX_ARGS 9 /* SETATTR's */

/*
 * One queued request. Argument kinds: 'n' a number, 's' a string and 'b' bytes (both copied into
 * `tail`), 'w' the write payload (its own malloc, handed over to the JS Buffer without a second copy).
 */
typedef struct arg { char kind; double num; const char *ptr; size_t len; } arg_t;
typedef struct rec {
  struct rec *next;
  fuse_req_t req;
  int op, argc;
  arg_t argv[MAX_ARGS];
  char *payload;
  char tail[];
} rec_t;

typedef struct state {
  napi_env env;
  napi_ref dispatch;
  napi_async_context actx;
  uv_async_t async;
  pthread_mutex_t lock;
  rec_t *head, *tail;       /* the FIFO, under lock */
  rec_t *exit_rec;          /* allocated up front: the end of the session must reach JS */
  struct fuse_session *se;
  struct fuse_chan *ch;
  pthread_t thread;
  int loop_done;            /* atomic: fuse_session_loop returned */
  size_t inflight;          /* requests dispatched to JS and not answered yet (JS thread only) */
  bool released, closed, napi_gone;
} state_t;

/* Tags a handle object as ours, so release() can tell a released handle from a foreign object. */
static const napi_type_tag HANDLE_TAG = { 0x6672616766732d6cULL, 0x6c2d68616e646c65ULL };

/* ---- napi error handling -------------------------------------------------------------------- */

static napi_value throw_type(napi_env env, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  (void) napi_throw_type_error(env, NULL, msg); /* nothing more to do if even that fails */
  return NULL;
}

/* Turns a failed napi call into a JS exception, unless one is already pending. */
static void throw_status(napi_env env, const char *call) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  char msg[256];
  if (napi_get_last_error_info(env, &info) != napi_ok) info = NULL; /* first: the next call overwrites it */
  snprintf(msg, sizeof msg, "fragfs-fuse: %s failed: %s", call,
           info && info->error_message ? info->error_message : "unknown error");
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  (void) napi_throw_error(env, NULL, msg);
}

static napi_value throw_nomem(napi_env env) {
  (void) napi_throw_error(env, "ENOMEM", "fragfs-fuse: out of memory");
  return NULL;
}

/* In napi callbacks and their helpers: a failure throws, the callback returns undefined to JS. */
#define NAPI(call) do { if ((call) != napi_ok) { throw_status(env, #call); return NULL; } } while (0)
#define NAPI_BOOL(call) do { if ((call) != napi_ok) { throw_status(env, #call); return false; } } while (0)

/*
 * Outside napi callbacks (the uv_async callback, close callbacks) nobody can catch: a JS exception goes
 * to process 'uncaughtException', any other failure is a bug in this file and aborts.
 */
static void raise_uncaught(napi_env env, napi_status status, const char *call) {
  napi_value exc;
  if (status == napi_pending_exception && napi_get_and_clear_last_exception(env, &exc) == napi_ok &&
      napi_fatal_exception(env, exc) == napi_ok) return;
  napi_fatal_error("fragfs-fuse", NAPI_AUTO_LENGTH, call, NAPI_AUTO_LENGTH);
}
#define NAPI_UNCAUGHT(call) do { napi_status s_ = (call); if (s_ != napi_ok) raise_uncaught(env, s_, #call); } while (0)

/* ---- the queue (FUSE thread side) ----------------------------------------------------------- */

#define ST(req) ((state_t *) fuse_req_userdata(req))
#define D(x) ((double) (x))
#define FH(fi) ((fi) ? (double) (fi)->fh : -1.0)

static double ts_ms(const struct timespec *ts) { return (double) ts->tv_sec * 1000.0 + (double) ts->tv_nsec / 1e6; }

static void rec_free(rec_t *r) {
  free(r->payload);
  free(r);
}

/* Builds a record from fmt ("n" double, "s" const char *, "b"/"w" const char *, size_t); NULL: no memory. */
static rec_t *vrecord(fuse_req_t req, int op, const char *fmt, va_list ap) {
  va_list sizing;
  size_t extra = 0;
  va_copy(sizing, ap);
  for (const char *f = fmt; *f; f++) {
    if (*f == 'n') { (void) va_arg(sizing, double); continue; }
    const char *p = va_arg(sizing, const char *);
    if (*f == 's') { extra += strlen(p) + 1; continue; }
    size_t n = va_arg(sizing, size_t);
    if (*f == 'b') extra += n;
  }
  va_end(sizing);
  rec_t *r = malloc(sizeof *r + extra);
  if (!r) return NULL;
  r->next = NULL;
  r->req = req;
  r->op = op;
  r->argc = 0;
  r->payload = NULL;
  char *t = r->tail;
  for (const char *f = fmt; *f; f++) {
    arg_t *a = &r->argv[r->argc++];
    a->kind = *f;
    if (*f == 'n') { a->num = va_arg(ap, double); continue; }
    const char *p = va_arg(ap, const char *);
    size_t n = *f == 's' ? strlen(p) : va_arg(ap, size_t);
    if (*f == 'w' && n > 0) {
      /* libfuse reuses its receive buffer once the handler returns: this is the one copy. */
      if (!(r->payload = malloc(n))) { free(r); return NULL; }
      memcpy(r->payload, p, n);
      a->ptr = r->payload;
    } else {
      if (n > 0) memcpy(t, p, n);
      a->ptr = t;
      t += n;
      if (*f == 's') *t++ = '\0';
    }
    a->len = n;
  }
  return r;
}

static rec_t *record(fuse_req_t req, int op, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rec_t *r = vrecord(req, op, fmt, ap);
  va_end(ap);
  return r;
}

/* Appends the chain first..last and wakes the JS thread (libuv coalesces wake-ups). */
static void push(state_t *st, rec_t *first, rec_t *last) {
  int old;
  /*
   * release() may cancel this thread while it still runs (process end, still mounted). A cancel inside
   * uv_async_send would leave the handle "busy" and uv_close would spin forever: no cancel here.
   */
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  pthread_mutex_lock(&st->lock);
  if (st->tail) st->tail->next = first; else __atomic_store_n(&st->head, first, __ATOMIC_RELEASE); /* on_async may spin on head */
  st->tail = last;
  pthread_mutex_unlock(&st->lock);
  uv_async_send(&st->async);
  pthread_setcancelstate(old, NULL);
}

/* Queues one request for JS; answers ENOMEM itself when there is no memory for the record. */
static void queue(fuse_req_t req, int op, const char *fmt, ...) {
  state_t *st = ST(req);
  va_list ap;
  va_start(ap, fmt);
  rec_t *r = vrecord(req, op, fmt, ap);
  va_end(ap);
  if (r) push(st, r, r); else fuse_reply_err(req, ENOMEM);
}

/* ---- libfuse op handlers (FUSE thread): copy, queue, return ---------------------------------- */

typedef struct fuse_file_info fi_t;
#define CALLER(req) D(fuse_req_ctx(req)->uid), D(fuse_req_ctx(req)->gid)

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  (void) userdata;
  /* max_write comes from -o max_write (libfuse parses it); splice stays off. */
  conn->want |= conn->capable & (FUSE_CAP_BIG_WRITES | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_ASYNC_READ);
}

/* FORGET has no answer: reply now, queue one record per inode (req 0) for JS's lookup counts. */
static void ll_forget(fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  state_t *st = ST(req);
  fuse_reply_none(req);
  rec_t *r = record(NULL, OP_FORGET, "nn", D(ino), D(nlookup));
  if (r) push(st, r, r);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  state_t *st = ST(req);
  rec_t *first = NULL, *last = NULL;
  for (size_t i = 0; i < count; i++) {
    rec_t *r = record(NULL, OP_FORGET, "nn", D(forgets[i].ino), D(forgets[i].nlookup));
    if (!r) break;
    if (last) last->next = r; else first = r;
    last = r;
  }
  fuse_reply_none(req); /* after the loop: `forgets` lives in the request */
  if (first) push(st, first, last);
}

/* The plain handlers: Q(fn, libfuse's parameters, request code, what JS gets). */
#define Q(fn, params, op, fmt, ...) static void ll_##fn params { queue(req, op, fmt, __VA_ARGS__); }
Q(lookup, (fuse_req_t req, fuse_ino_t parent, const char *name), OP_LOOKUP, "ns", D(parent), name)
Q(getattr, (fuse_req_t req, fuse_ino_t ino, fi_t *fi), OP_GETATTR, "nn", D(ino), FH(fi))
Q(setattr, (fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set, fi_t *fi), OP_SETATTR, "nnnnnnnnn", D(ino),
  FH(fi), D(to_set), D(a->st_mode), D(a->st_uid), D(a->st_gid), D(a->st_size), ts_ms(&a->st_atim), ts_ms(&a->st_mtim))
Q(readlink, (fuse_req_t req, fuse_ino_t ino), OP_READLINK, "n", D(ino))
Q(mknod, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev), OP_MKNOD, "nsnnnn",
  D(parent), name, D(mode), D(rdev), CALLER(req))
Q(mkdir, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode), OP_MKDIR, "nsnnn", D(parent), name,
  D(mode), CALLER(req))
Q(unlink, (fuse_req_t req, fuse_ino_t parent, const char *name), OP_UNLINK, "ns", D(parent), name)
Q(rmdir, (fuse_req_t req, fuse_ino_t parent, const char *name), OP_RMDIR, "ns", D(parent), name)
Q(symlink, (fuse_req_t req, const char *target, fuse_ino_t parent, const char *name), OP_SYMLINK, "nssnn", D(parent),
  name, target, CALLER(req))
Q(rename, (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname), OP_RENAME,
  "nsns", D(parent), name, D(newparent), newname)
Q(link, (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname), OP_LINK, "nns", D(ino),
  D(newparent), newname)
Q(open, (fuse_req_t req, fuse_ino_t ino, fi_t *fi), OP_OPEN, "nn", D(ino), D(fi->flags))
Q(read, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fi_t *fi), OP_READ, "nnnn", D(ino), FH(fi), D(size),
  D(off))
Q(write, (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, fi_t *fi), OP_WRITE, "nnwn", D(ino),
  FH(fi), buf, size, D(off))
Q(flush, (fuse_req_t req, fuse_ino_t ino, fi_t *fi), OP_FLUSH, "nn", D(ino), FH(fi))
Q(release, (fuse_req_t req, fuse_ino_t ino, fi_t *fi), OP_RELEASE, "nnn", D(ino), FH(fi), D(fi->flags))
Q(fsync, (fuse_req_t req, fuse_ino_t ino, int datasync, fi_t *fi), OP_FSYNC, "nnn", D(ino), FH(fi), D(datasync != 0))
Q(opendir, (fuse_req_t req, fuse_ino_t ino, fi_t *fi), OP_OPENDIR, "nn", D(ino), D(fi->flags))
Q(readdir, (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fi_t *fi), OP_READDIR, "nnnn", D(ino), FH(fi),
  D(size), D(off))
Q(releasedir, (fuse_req_t req, fuse_ino_t ino, fi_t *fi), OP_RELEASEDIR, "nn", D(ino), FH(fi))
Q(fsyncdir, (fuse_req_t req, fuse_ino_t ino, int datasync, fi_t *fi), OP_FSYNCDIR, "nnn", D(ino), FH(fi),
  D(datasync != 0))
Q(statfs, (fuse_req_t req, fuse_ino_t ino), OP_STATFS, "n", D(ino))
Q(listxattr, (fuse_req_t req, fuse_ino_t ino, size_t size), OP_LISTXATTR, "nn", D(ino), D(size))
Q(removexattr, (fuse_req_t req, fuse_ino_t ino, const char *name), OP_REMOVEXATTR, "ns", D(ino), name)
Q(access, (fuse_req_t req, fuse_ino_t ino, int mask), OP_ACCESS, "nn", D(ino), D(mask))
Q(create, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, fi_t *fi), OP_CREATE, "nsnnnn",
  D(parent), name, D(mode), D(fi->flags), CALLER(req))
#undef Q

/*
 * FUSE mounts are nosuid, so file capabilities never apply; the kernel asks for security.capability
 * before every write (file_remove_privs): answering here saves a trip to JS per write.
 */
static bool is_capability(const char *name) { return strcmp(name, "security.capability") == 0; }

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  if (is_capability(name)) fuse_reply_err(req, EOPNOTSUPP);
  else queue(req, OP_SETXATTR, "nsbn", D(ino), name, value, size, D(flags));
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  if (is_capability(name)) fuse_reply_err(req, ENODATA);
  else queue(req, OP_GETXATTR, "nsn", D(ino), name, D(size));
}

static const struct fuse_lowlevel_ops ll_ops = {
  .init = ll_init, .lookup = ll_lookup, .forget = ll_forget, .forget_multi = ll_forget_multi,
  .getattr = ll_getattr, .setattr = ll_setattr, .readlink = ll_readlink, .mknod = ll_mknod,
  .mkdir = ll_mkdir, .unlink = ll_unlink, .rmdir = ll_rmdir, .symlink = ll_symlink, .rename = ll_rename,
  .link = ll_link, .open = ll_open, .read = ll_read, .write = ll_write, .flush = ll_flush,
  .release = ll_release, .fsync = ll_fsync, .opendir = ll_opendir, .readdir = ll_readdir,
  .releasedir = ll_releasedir, .fsyncdir = ll_fsyncdir, .statfs = ll_statfs, .setxattr = ll_setxattr,
  .getxattr = ll_getxattr, .listxattr = ll_listxattr, .removexattr = ll_removexattr, .access = ll_access,
  .create = ll_create,
};

static void *session_main(void *arg) {
  state_t *st = arg;
  fuse_session_loop(st->se);
  /* The kernel side is gone (fusermount -u): tell JS, whose release() joins this thread. */
  __atomic_store_n(&st->loop_done, 1, __ATOMIC_RELEASE);
  rec_t *r = st->exit_rec;
  st->exit_rec = NULL;
  push(st, r, r);
  return NULL;
}

/* ---- dispatch (JS thread) ------------------------------------------------------------------- */

static void free_payload(napi_env env, void *data, void *hint) {
  (void) env;
  (void) hint;
  free(data);
}

static napi_status arg_value(napi_env env, rec_t *r, const arg_t *a, napi_value *out) {
  if (a->kind == 'n') return napi_create_double(env, a->num, out);
  if (a->kind == 's') return napi_create_string_utf8(env, a->ptr, a->len, out);
  if (a->kind == 'w' && r->payload) {
    napi_status s = napi_create_external_buffer(env, a->len, r->payload, free_payload, NULL, out);
    if (s == napi_ok) r->payload = NULL; /* the Buffer owns it now */
    if (s != napi_no_external_buffers_allowed) return s;
  }
  return napi_create_buffer_copy(env, a->len, a->ptr, NULL, out); /* 'b', empty 'w', no external buffers */
}

static void dispatch_one(state_t *st, rec_t *r) {
  napi_env env = st->env;
  napi_handle_scope scope;
  napi_value fn, recv, ret, argv[2 + MAX_ARGS];
  napi_status s = napi_open_handle_scope(env, &scope);
  if (s != napi_ok) { raise_uncaught(env, s, "napi_open_handle_scope"); return; }
  const char *what = "building the dispatch arguments";
  s = napi_get_reference_value(env, st->dispatch, &fn);
  if (s == napi_ok) s = napi_get_undefined(env, &recv);
  if (s == napi_ok) s = napi_create_int32(env, r->op, &argv[0]);
  if (s == napi_ok) s = napi_create_double(env, (double) (uintptr_t) r->req, &argv[1]);
  if (r->req) st->inflight++; /* before the call: JS may answer within it */
  for (int i = 0; s == napi_ok && i < r->argc; i++) s = arg_value(env, r, &r->argv[i], &argv[2 + i]);
  if (s == napi_ok) {
    what = "dispatch";
    s = napi_call_function(env, recv, fn, (size_t) (2 + r->argc), argv, &ret);
  }
  /* A throwing dispatch is re-raised as uncaught; replying stays JS's job. */
  if (s != napi_ok) raise_uncaught(env, s, what);
  NAPI_UNCAUGHT(napi_close_handle_scope(env, scope));
}

/*
 * After a batch is dispatched (and the promise jobs it started have run, which is where most answers
 * are sent), the JS thread waits up to this long for the next request before it returns to libuv and
 * sleeps. A serial workload (tar, cp, find, one dd) sends its next request a few tens of microseconds
 * after our answer; sleeping in epoll in between costs a wake-up of the JS thread per request, which
 * on a VM is an inter-processor interrupt and a VM exit. Measured on a 2-core VM, untar of 10,000
 * files: 890 files/s without, 1,550-1,720 with 50 us, 1,700-1,740 with 100 or 200 us; 20 us is too
 * short to matter. The wait is bounded per batch, so an idle mount does not spin.
 * FRAGFS_FUSE_SPIN_US overrides it (0: never wait).
 */
#define SPIN_JS_US_DEFAULT 100
static long spin_js_ns = -1;

#if defined(__x86_64__) || defined(__i386__)
#define CPU_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_PAUSE() __asm__ __volatile__("yield")
#else
#define CPU_PAUSE() do {} while (0)
#endif

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static rec_t *take_all(state_t *st) {
  pthread_mutex_lock(&st->lock);
  rec_t *r = st->head;
  st->head = st->tail = NULL;
  pthread_mutex_unlock(&st->lock);
  return r;
}

static void on_async(uv_async_t *handle) {
  state_t *st = handle->data;
  napi_env env = st->env;
  if (spin_js_ns < 0) {
    const char *e = getenv("FRAGFS_FUSE_SPIN_US");
    spin_js_ns = (e && *e ? atol(e) : SPIN_JS_US_DEFAULT) * 1000L;
  }
  rec_t *r = take_all(st);
  while (r) {
    napi_handle_scope scope;
    napi_callback_scope cbscope;
    napi_value resource;
    /* One callback scope per batch: nextTicks and promise jobs run once the batch is dispatched. */
    NAPI_UNCAUGHT(napi_open_handle_scope(env, &scope));
    NAPI_UNCAUGHT(napi_create_object(env, &resource));
    NAPI_UNCAUGHT(napi_open_callback_scope(env, resource, st->actx, &cbscope));
    while (r) {
      rec_t *next = r->next;
      if (!st->released) dispatch_one(st, r); /* JS may call release() from dispatch (on EXIT) */
      else if (r->req) fuse_reply_err(r->req, EIO);
      rec_free(r);
      r = next;
    }
    NAPI_UNCAUGHT(napi_close_callback_scope(env, cbscope));
    NAPI_UNCAUGHT(napi_close_handle_scope(env, scope));
    if (spin_js_ns <= 0 || st->released) break;
    long until = now_ns() + spin_js_ns;
    while (!__atomic_load_n(&st->head, __ATOMIC_ACQUIRE) && now_ns() < until) CPU_PAUSE();
    r = take_all(st);
  }
}

/* ---- mount / release ------------------------------------------------------------------------ */

/*
 * The last step, once the uv_async handle is closed and JS answered every request it was given:
 * libfuse's session and channel (a reply needs both) and the state.
 */
static void finish(state_t *st) {
  if (st->se) {
    fuse_session_remove_chan(st->ch);
    fuse_session_destroy(st->se);
    fuse_chan_destroy(st->ch);
  }
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static void on_closed(uv_handle_t *handle) {
  state_t *st = handle->data;
  napi_env env = st->env;
  if (!st->napi_gone) { /* deleted here, not in release(): on_async may still run inside their scope */
    NAPI_UNCAUGHT(napi_delete_reference(env, st->dispatch));
    NAPI_UNCAUGHT(napi_async_destroy(env, st->actx));
  }
  st->closed = true;
  if (st->inflight == 0) finish(st);
}

/* After each reply: the last answer JS owed a released session frees it. */
static void answered(state_t *st) {
  if (--st->inflight == 0 && st->closed) finish(st);
}

/*
 * Ends the session thread, answers what JS never saw and closes the uv_async handle (so Node's loop
 * may end). Requests JS holds may still be answered: the session lives until the last answer.
 */
static void teardown(state_t *st) {
  st->released = true;
  if (!__atomic_load_n(&st->loop_done, __ATOMIC_ACQUIRE)) {
    /* Still mounted (process end): the thread sits in read(2) on /dev/fuse, a cancellation point. */
    fuse_session_exit(st->se);
    pthread_cancel(st->thread);
  }
  pthread_join(st->thread, NULL);
  /* Marked exited, libfuse does not print an error for each answer the kernel is no longer there for. */
  fuse_session_exit(st->se);
  for (rec_t *r = st->head, *next; r; r = next) {
    next = r->next;
    if (r->req) fuse_reply_err(r->req, EIO);
    rec_free(r);
  }
  st->head = st->tail = NULL;
  if (st->exit_rec) rec_free(st->exit_rec);
  st->exit_rec = NULL;
  uv_close((uv_handle_t *) &st->async, on_closed);
}

/* Node is tearing the environment down with the session still alive (no release()). */
static void on_env_teardown(void *arg) {
  state_t *st = arg;
  st->napi_gone = true;
  teardown(st);
}

static char *get_string(napi_env env, napi_value v, const char *what) {
  napi_valuetype t;
  size_t len;
  NAPI(napi_typeof(env, v, &t));
  if (t != napi_string) return throw_type(env, "%s must be a string", what), NULL;
  NAPI(napi_get_value_string_utf8(env, v, NULL, 0, &len));
  char *s = malloc(len + 1);
  if (!s) return throw_nomem(env), NULL;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    throw_status(env, "napi_get_value_string_utf8");
    return NULL;
  }
  return s;
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle, name;
  napi_valuetype t;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI(napi_typeof(env, argv[2], &t));
  if (t != napi_function) return throw_type(env, "mount: dispatch must be a function");
  NAPI(napi_create_object(env, &handle));
  NAPI(napi_type_tag_object(env, handle, &HANDLE_TAG));
  NAPI(napi_create_string_utf8(env, "fragfs-fuse", NAPI_AUTO_LENGTH, &name));
  char *mp = get_string(env, argv[0], "mount: mountpoint");
  char *opts = mp ? get_string(env, argv[1], "mount: options") : NULL;
  if (!opts) { free(mp); return NULL; }
  state_t *st = calloc(1, sizeof *st);
  if (!st || !(st->exit_rec = record(NULL, OP_EXIT, ""))) {
    free(st);
    st = NULL;
    throw_nomem(env);
    goto fail;
  }
  st->env = env;
  pthread_mutex_init(&st->lock, NULL);
  if (napi_create_reference(env, argv[2], 1, &st->dispatch) != napi_ok ||
      napi_async_init(env, NULL, name, &st->actx) != napi_ok || napi_wrap(env, handle, st, NULL, NULL, NULL) != napi_ok ||
      napi_add_env_cleanup_hook(env, on_env_teardown, st) != napi_ok) {
    throw_status(env, "mount: setting up the handle");
    goto fail;
  }
  char msg[512], prog[] = "fragfs", dash_o[] = "-o";
  char *fargv[] = { prog, dash_o, opts, NULL };
  struct fuse_args args = FUSE_ARGS_INIT(opts[0] ? 3 : 1, fargv);
  /* fuse_mount takes the mount options out of args and leaves libfuse's own; both print why they fail. */
  st->ch = fuse_mount(mp, &args);
  st->se = st->ch ? fuse_lowlevel_new(&args, &ll_ops, sizeof ll_ops, st) : NULL;
  fuse_opt_free_args(&args);
  if (!st->se) {
    if (st->ch) fuse_unmount(mp, st->ch); /* nothing uses the fresh mount yet */
    snprintf(msg, sizeof msg, "fragfs-fuse: the mount failed at %s (%s; libfuse printed the reason on stderr)", mp,
             st->ch ? "fuse_lowlevel_new: a bad option?" : "fuse_mount");
    (void) napi_throw_error(env, NULL, msg);
    goto fail;
  }
  fuse_session_add_chan(st->se, st->ch);
  /*
   * libfuse 2.9 opens /dev/fuse without O_CLOEXEC: every program Node spawns would inherit it and, if
   * Node dies, keep the dead connection open, hanging whoever waits on the mount (even itself).
   */
  fcntl(fuse_chan_fd(st->ch), F_SETFD, FD_CLOEXEC);
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_async_init(loop, &st->async, on_async) != 0) {
    throw_status(env, "mount: uv_async_init");
    goto fail_session;
  }
  st->async.data = st;
  /* The thread takes no signals: Node owns them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int started = pthread_create(&st->thread, NULL, session_main, st);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (started != 0) {
    (void) napi_throw_error(env, NULL, "fragfs-fuse: mount: cannot start the session thread");
    goto fail_session;
  }
  free(mp);
  free(opts);
  return handle;

fail_session:
  fuse_session_remove_chan(st->ch);
  fuse_session_destroy(st->se);
  fuse_unmount(mp, st->ch);
fail: /* an exception is pending; undoing is best effort */
  if (st) {
    (void) napi_remove_env_cleanup_hook(env, on_env_teardown, st);
    (void) napi_remove_wrap(env, handle, NULL);
    if (st->dispatch) (void) napi_delete_reference(env, st->dispatch);
    if (st->actx) (void) napi_async_destroy(env, st->actx);
    st->napi_gone = true;
    rec_free(st->exit_rec);
    st->se = NULL; /* undone above */
    if (st->async.data) uv_close((uv_handle_t *) &st->async, on_closed); /* frees st */
    else finish(st);
  }
  free(mp);
  free(opts);
  return NULL;
}

static napi_value js_release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value h;
  napi_valuetype t;
  bool ours = false;
  void *st;
  NAPI(napi_get_cb_info(env, info, &argc, &h, NULL, NULL));
  NAPI(napi_typeof(env, h, &t));
  if (t == napi_object) NAPI(napi_check_object_type_tag(env, h, &HANDLE_TAG, &ours));
  if (!ours) return throw_type(env, "release: not a handle from mount()");
  if (napi_unwrap(env, h, &st) != napi_ok) return NULL; /* released before */
  NAPI(napi_remove_env_cleanup_hook(env, on_env_teardown, st));
  NAPI(napi_remove_wrap(env, h, NULL));
  teardown(st);
  return NULL;
}

/* ---- replies (JS thread) -------------------------------------------------------------------- */

static uint64_t to_u64(double d) { return d > 0 && d < 18446744073709551616.0 ? (uint64_t) d : 0; }
static int64_t to_i64(double d) { return d > -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t) d : 0; }

/*
 * ms since the epoch (fractional) to a timespec: sec = floor(ms / 1000), nsec the rest, rounded. Within
 * JS Date's range (|ms| <= 8.64e15 < 2^53) sec * 1000 and ms - sec * 1000 are exact doubles.
 */
static struct timespec ms_to_ts(double ms) {
  struct timespec ts = { 0, 0 };
  if (!isfinite(ms)) return ts;
  ms = ms < -8.64e15 ? -8.64e15 : ms > 8.64e15 ? 8.64e15 : ms;
  int64_t sec = to_i64(ms / 1000.0);
  double rest = ms - (double) sec * 1000.0;
  if (rest < 0) { sec--; rest += 1000.0; } /* also fixes a quotient rounded up */
  int64_t nsec = (int64_t) (rest * 1e6 + 0.5);
  if (nsec >= 1000000000) { sec++; nsec -= 1000000000; }
  ts.tv_sec = (time_t) sec;
  ts.tv_nsec = (long) nsec;
  return ts;
}

static void fill_stat(struct stat *s, const double *a) {
  memset(s, 0, sizeof *s);
  s->st_ino = to_u64(a[A_INO]);
  s->st_mode = (mode_t) to_u64(a[A_MODE]);
  s->st_nlink = to_u64(a[A_NLINK]);
  s->st_uid = (uid_t) to_u64(a[A_UID]);
  s->st_gid = (gid_t) to_u64(a[A_GID]);
  s->st_rdev = to_u64(a[A_RDEV]);
  s->st_size = to_i64(a[A_SIZE]);
  s->st_blocks = to_i64(a[A_BLOCKS]);
  s->st_atim = ms_to_ts(a[A_ATIME]);
  s->st_mtim = ms_to_ts(a[A_MTIME]);
  s->st_ctim = ms_to_ts(a[A_CTIME]);
  s->st_blksize = to_i64(a[A_BLKSIZE]);
}

/* Argument checks: each throws a TypeError (or the napi error) and returns false. */
static bool get_number(napi_env env, napi_value v, const char *what, double *out) {
  napi_valuetype t;
  NAPI_BOOL(napi_typeof(env, v, &t));
  if (t != napi_number) return throw_type(env, "%s must be a number", what), false;
  NAPI_BOOL(napi_get_value_double(env, v, out));
  if (!isfinite(*out)) return throw_type(env, "%s must be finite", what), false;
  return true;
}

static bool get_count(napi_env env, napi_value v, const char *what, double max, size_t *out) {
  double d;
  if (!get_number(env, v, what, &d)) return false;
  if (d < 0 || d > max || d != (double) (size_t) d) return throw_type(env, "%s must be an integer in 0..%.0f", what, max), false;
  *out = (size_t) d;
  return true;
}

static bool get_req(napi_env env, napi_value v, fuse_req_t *out) {
  size_t n;
  if (!get_count(env, v, "req", 9007199254740992.0, &n)) return false;
  if (n == 0) return throw_type(env, "req must not be 0"), false;
  *out = (fuse_req_t) (uintptr_t) n;
  return true;
}

static bool get_doubles(napi_env env, napi_value v, const char *what, size_t min, const double **out) {
  bool is;
  napi_typedarray_type type;
  size_t length;
  void *data;
  NAPI_BOOL(napi_is_typedarray(env, v, &is));
  if (is) NAPI_BOOL(napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL));
  if (!is || type != napi_float64_array || length < min)
    return throw_type(env, "%s must be a Float64Array of %zu", what, min), false;
  *out = data;
  return true;
}

/* Every reply function: argv and req (checked) first, REPLY(fuse_reply_...) once all else is checked. */
#define REPLY_ARGS(n)                                                          \
  size_t argc = n;                                                             \
  napi_value argv[n];                                                          \
  fuse_req_t req;                                                              \
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                  \
  if (!get_req(env, argv[0], &req)) return NULL
/* The state is read before the reply frees req. */
#define REPLY(call) do { state_t *st_ = ST(req); call; answered(st_); } while (0)

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  size_t err;
  REPLY_ARGS(2);
  if (!get_count(env, argv[1], "errno", 4095, &err)) return NULL;
  REPLY(fuse_reply_err(req, (int) err));
  return NULL;
}

static napi_value js_reply_none(napi_env env, napi_callback_info info) {
  REPLY_ARGS(1);
  REPLY(fuse_reply_none(req));
  return NULL;
}

/* Reads (attr, generation, entryTimeoutS, attrTimeoutS) from argv[1..4]. */
static bool get_entry(napi_env env, napi_value *argv, struct fuse_entry_param *e) {
  const double *a;
  double gen;
  memset(e, 0, sizeof *e);
  if (!get_doubles(env, argv[0], "attr", A_LEN, &a) || !get_number(env, argv[1], "generation", &gen) ||
      !get_number(env, argv[2], "entryTimeoutS", &e->entry_timeout) ||
      !get_number(env, argv[3], "attrTimeoutS", &e->attr_timeout)) return false;
  e->ino = to_u64(a[A_INO]); /* 0: a negative entry, cached for entry_timeout */
  e->generation = to_u64(gen);
  fill_stat(&e->attr, a);
  return true;
}

static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  struct fuse_entry_param e;
  REPLY_ARGS(5);
  if (!get_entry(env, argv + 1, &e)) return NULL;
  REPLY(fuse_reply_entry(req, &e));
  return NULL;
}

static bool get_open(napi_env env, napi_value *argv, struct fuse_file_info *fi) {
  double fh;
  size_t flags;
  memset(fi, 0, sizeof *fi);
  if (!get_number(env, argv[0], "fh", &fh) || !get_count(env, argv[1], "openFlags", 7, &flags)) return false;
  fi->fh = to_u64(fh);
  fi->direct_io = (flags & 1) != 0;
  fi->keep_cache = (flags & 2) != 0;
  fi->nonseekable = (flags & 4) != 0;
  return true;
}

static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  REPLY_ARGS(7);
  if (!get_entry(env, argv + 1, &e) || !get_open(env, argv + 5, &fi)) return NULL;
  REPLY(fuse_reply_create(req, &e, &fi));
  return NULL;
}

static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  const double *a;
  double timeout;
  struct stat st;
  REPLY_ARGS(3);
  if (!get_doubles(env, argv[1], "attr", A_LEN, &a) || !get_number(env, argv[2], "attrTimeoutS", &timeout)) return NULL;
  fill_stat(&st, a);
  REPLY(fuse_reply_attr(req, &st, timeout));
  return NULL;
}

static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2);
  char *target = get_string(env, argv[1], "target");
  if (!target) return NULL;
  REPLY(fuse_reply_readlink(req, target));
  free(target);
  return NULL;
}

static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  struct fuse_file_info fi;
  REPLY_ARGS(3);
  if (!get_open(env, argv + 1, &fi)) return NULL;
  REPLY(fuse_reply_open(req, &fi));
  return NULL;
}

static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  napi_valuetype t;
  bool is = false;
  void *data = NULL;
  size_t have = 0, length;
  REPLY_ARGS(3);
  NAPI(napi_typeof(env, argv[1], &t));
  if (t != napi_null) {
    NAPI(napi_is_buffer(env, argv[1], &is));
    if (!is) return throw_type(env, "data must be a Buffer or null");
    NAPI(napi_get_buffer_info(env, argv[1], &data, &have));
  }
  if (!get_count(env, argv[2], "length", (double) have, &length)) return NULL;
  REPLY(fuse_reply_buf(req, data, length));
  return NULL;
}

static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  size_t count;
  REPLY_ARGS(2);
  if (!get_count(env, argv[1], "count", 4294967295.0, &count)) return NULL;
  REPLY(fuse_reply_write(req, count));
  return NULL;
}

static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  const double *s;
  struct statvfs v;
  REPLY_ARGS(2);
  if (!get_doubles(env, argv[1], "statfs", S_LEN, &s)) return NULL;
  memset(&v, 0, sizeof v);
  v.f_bsize = to_u64(s[S_BSIZE]);
  v.f_frsize = to_u64(s[S_FRSIZE]);
  v.f_blocks = to_u64(s[S_BLOCKS]);
  v.f_bfree = to_u64(s[S_BFREE]);
  v.f_bavail = to_u64(s[S_BAVAIL]);
  v.f_files = to_u64(s[S_FILES]);
  v.f_ffree = to_u64(s[S_FFREE]);
  v.f_favail = to_u64(s[S_FAVAIL]);
  v.f_fsid = to_u64(s[S_FSID]);
  v.f_flag = to_u64(s[S_FLAG]);
  v.f_namemax = to_u64(s[S_NAMEMAX]);
  REPLY(fuse_reply_statfs(req, &v));
  return NULL;
}

static napi_value js_reply_xattr_size(napi_env env, napi_callback_info info) {
  size_t size;
  REPLY_ARGS(2);
  if (!get_count(env, argv[1], "size", 4294967295.0, &size)) return NULL;
  REPLY(fuse_reply_xattr(req, size));
  return NULL;
}

static bool get_array(napi_env env, napi_value v, const char *what, uint32_t *len) {
  bool is;
  NAPI_BOOL(napi_is_array(env, v, &is));
  if (!is) return throw_type(env, "%s must be an array", what), false;
  NAPI_BOOL(napi_get_array_length(env, v, len));
  return true;
}

/* names[k], inos[k], modes[k]: the name into `small` or, when longer, a malloc'd copy (*name). */
static bool get_dir_entry(napi_env env, napi_value *arrays, uint32_t k, char *small, size_t smallsize,
                          char **name, struct stat *st) {
  napi_value v;
  napi_valuetype t;
  size_t len;
  double ino, mode;
  NAPI_BOOL(napi_get_element(env, arrays[0], k, &v));
  NAPI_BOOL(napi_typeof(env, v, &t));
  if (t != napi_string) return throw_type(env, "names[%u] must be a string", k), false;
  NAPI_BOOL(napi_get_value_string_utf8(env, v, NULL, 0, &len));
  if (!(*name = len < smallsize ? small : malloc(len + 1))) return throw_nomem(env), false;
  NAPI_BOOL(napi_get_value_string_utf8(env, v, *name, len + 1, &len));
  NAPI_BOOL(napi_get_element(env, arrays[1], k, &v));
  if (!get_number(env, v, "inos[k]", &ino)) return false;
  NAPI_BOOL(napi_get_element(env, arrays[2], k, &v));
  if (!get_number(env, v, "modes[k]", &mode)) return false;
  memset(st, 0, sizeof *st);
  st->st_ino = to_u64(ino);
  st->st_mode = (mode_t) to_u64(mode); /* only the type bits reach the kernel */
  return true;
}

/* Packs as many entries as fit in `size` bytes, replies, returns how many it packed. */
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  size_t size, pos = 0;
  double first;
  uint32_t n, ninos, nmodes, k;
  napi_value result;
  char small[256];
  REPLY_ARGS(6);
  if (!get_count(env, argv[1], "size", 16777216, &size) || !get_number(env, argv[2], "firstOffset", &first) ||
      !get_array(env, argv[3], "names", &n) || !get_array(env, argv[4], "inos", &ninos) ||
      !get_array(env, argv[5], "modes", &nmodes)) return NULL;
  if (ninos < n || nmodes < n) return throw_type(env, "inos and modes must be as long as names");
  char *buf = malloc(size ? size : 1);
  if (!buf) return throw_nomem(env);
  for (k = 0; k < n; k++) {
    char *name = NULL;
    struct stat st;
    bool ok = get_dir_entry(env, argv + 3, k, small, sizeof small, &name, &st);
    size_t need = ok ? fuse_add_direntry(req, buf + pos, size - pos, name, &st, (off_t) (first + k + 1)) : 0;
    if (name != small) free(name);
    if (!ok) { free(buf); return NULL; } /* thrown, nothing replied */
    if (need > size - pos) break;
    pos += need;
  }
  REPLY(fuse_reply_buf(req, buf, pos));
  free(buf);
  NAPI(napi_create_uint32(env, k, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
#define FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL }
    FN("mount", js_mount), FN("release", js_release), FN("replyErr", js_reply_err),
    FN("replyNone", js_reply_none), FN("replyEntry", js_reply_entry), FN("replyCreate", js_reply_create),
    FN("replyAttr", js_reply_attr), FN("replyReadlink", js_reply_readlink), FN("replyOpen", js_reply_open),
    FN("replyBuf", js_reply_buf), FN("replyWrite", js_reply_write), FN("replyStatfs", js_reply_statfs),
    FN("replyXattrSize", js_reply_xattr_size), FN("replyDir", js_reply_dir),
#undef FN
  };
  NAPI(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
