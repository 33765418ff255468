/*
 * fragfs's FUSE addon that speaks the Linux FUSE protocol on /dev/fuse itself (no libfuse): it mounts
 * (mount(2) as root, the fusermount fd-passing protocol otherwise), negotiates INIT, reads requests on
 * one thread, hands them to JS in kernel order through a FIFO and a uv_async wake-up, and writes the
 * replies JS gives, each checked against a table of requests still awaiting one. kernel-binding.ts
 * types this interface (op codes, argument lists, array layouts); build-kernel.ts compiles this file.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <malloc.h>
#include <linux/fuse.h>
#include <node_api.h>
#include <uv.h>

extern char **environ;

#ifndef FRAGFS_SOURCE_MARK
#define FRAGFS_SOURCE_MARK "unknown"
#endif
/* build-kernel.ts finds this string in the binary to tell a stale build from a current one. */
__attribute__((used)) static const char source_mark[] = "fragfs-kernel-source:" FRAGFS_SOURCE_MARK;

#if FUSE_KERNEL_MINOR_VERSION < 28
#error "linux/fuse.h is older than protocol 7.28 (FUSE_MAX_PAGES); fragfs needs newer Linux headers"
#endif

/* Not a kernel opcode: the session ended (the kernel side is gone). kernel-binding.ts `Op.EXIT`. */
#define OP_EXIT 0

/* Attr and statfs array layouts: kernel-binding.ts `Attr` and `Statfs` MUST match. */
enum {
  A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLOCKS,
  A_ATIME_SEC, A_ATIME_NSEC, A_MTIME_SEC, A_MTIME_NSEC, A_CTIME_SEC, A_CTIME_NSEC, A_BLKSIZE, A_LEN
};
enum { S_BSIZE, S_FRSIZE, S_BLOCKS, S_BFREE, S_BAVAIL, S_FILES, S_FFREE, S_NAMEMAX, S_LEN };

/* The opcodes JS can receive, by name: opcodes() returns this table; kernel-binding.ts `Op` MUST equal it. */
static const struct { const char *name; uint32_t op; } OPCODES[] = {
  { "EXIT", OP_EXIT }, { "LOOKUP", FUSE_LOOKUP }, { "FORGET", FUSE_FORGET }, { "GETATTR", FUSE_GETATTR },
  { "SETATTR", FUSE_SETATTR }, { "READLINK", FUSE_READLINK }, { "SYMLINK", FUSE_SYMLINK }, { "MKNOD", FUSE_MKNOD },
  { "MKDIR", FUSE_MKDIR }, { "UNLINK", FUSE_UNLINK }, { "RMDIR", FUSE_RMDIR }, { "RENAME", FUSE_RENAME },
  { "LINK", FUSE_LINK }, { "OPEN", FUSE_OPEN }, { "READ", FUSE_READ }, { "WRITE", FUSE_WRITE },
  { "STATFS", FUSE_STATFS }, { "RELEASE", FUSE_RELEASE }, { "FSYNC", FUSE_FSYNC }, { "SETXATTR", FUSE_SETXATTR },
  { "GETXATTR", FUSE_GETXATTR }, { "LISTXATTR", FUSE_LISTXATTR }, { "REMOVEXATTR", FUSE_REMOVEXATTR },
  { "FLUSH", FUSE_FLUSH }, { "OPENDIR", FUSE_OPENDIR }, { "READDIR", FUSE_READDIR },
  { "RELEASEDIR", FUSE_RELEASEDIR }, { "FSYNCDIR", FUSE_FSYNCDIR }, { "ACCESS", FUSE_ACCESS },
  { "CREATE", FUSE_CREATE }, { "INTERRUPT", FUSE_INTERRUPT }, { "FALLOCATE", FUSE_FALLOCATE },
  { "READDIRPLUS", FUSE_READDIRPLUS }, { "RENAME2", FUSE_RENAME2 },
};

static const char *op_name(uint32_t op) {
  for (size_t i = 0; i < sizeof OPCODES / sizeof OPCODES[0]; i++)
    if (OPCODES[i].op == op) return OPCODES[i].name;
  return "?";
}

#define MAX_ARGS 10 /* SETATTR's */
#define TWO53 9007199254740992.0

/*
 * A write that fills at least half the read buffer (and 64 KiB) is handed to JS in the very buffer the
 * kernel copied it into (the reader takes a fresh one): a 1 MiB write is not copied again. Smaller ones
 * are copied into a buffer of their own size: JS may keep write data for a while (fragfs buffers it
 * until a block is full), and a 64 KiB write must not pin a 1 MiB buffer.
 */
#define ZERO_COPY_MIN (64 * 1024)
static bool zero_copy(size_t size, size_t bufsize) { return size >= ZERO_COPY_MIN && size * 2 >= bufsize; }

/*
 * Read buffers that zero-copy WRITE payloads gave back (releasePayload detaches the JS Buffer, which
 * frees it at once): the reader takes one of these instead of fresh memory. A payload left to the
 * garbage collector lived until V8's next full collection (30-80 MB of them during a 1 GiB write),
 * and each fresh 1 MiB buffer costs the reader about 256 page faults. Process-wide, as the buffers
 * outlive a session; a taker checks the size it needs (mounts may differ in max_write).
 */
#define SPARE_PAYLOADS 4
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static char *spare[SPARE_PAYLOADS];
static int spare_count;

static void give_spare(char *p) {
  pthread_mutex_lock(&spare_lock);
  if (spare_count < SPARE_PAYLOADS) {
    spare[spare_count++] = p;
    p = NULL;
  }
  pthread_mutex_unlock(&spare_lock);
  free(p);
}

static char *take_spare(size_t size) {
  char *p = NULL;
  pthread_mutex_lock(&spare_lock);
  for (int i = spare_count - 1; i >= 0; i--) {
    if (malloc_usable_size(spare[i]) >= size) {
      p = spare[i];
      spare[i] = spare[--spare_count];
      break;
    }
  }
  pthread_mutex_unlock(&spare_lock);
  return p ? p : malloc(size);
}

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct note note_t;
typedef struct notifier notifier_t;

/*
 * One queued item for the JS thread. Kinds: a request that takes a reply, a notice that takes none
 * (FORGET, EXIT), an INTERRUPT (resolved on the JS thread, where the table lives), a finished
 * notification (resolves its promise). Argument kinds: 'n' a number, 'b' bytes copied into `tail`,
 * 'w' write data inside `payload` (a whole read buffer, handed to the JS Buffer without a copy).
 */
enum { REC_REQ, REC_NOTICE, REC_INTERRUPT, REC_NOTE };
typedef struct arg { char kind; double num; const char *ptr; size_t len; } arg_t;
typedef struct rec {
  struct rec *next;
  int kind;
  uint32_t op;
  uint64_t kunique;  /* the kernel's unique (the INTERRUPT's own for REC_INTERRUPT) */
  uint64_t target;   /* REC_INTERRUPT: the kernel unique it interrupts */
  uint32_t size;     /* the most bytes the reply may carry (READ, READDIR*, *XATTR, READLINK, WRITE) */
  double hdr[4];     /* nodeid uid gid pid */
  int argc;
  arg_t argv[MAX_ARGS];
  char *payload;
  note_t *note;
  size_t used;
  char tail[];
} rec_t;

struct note {
  struct note *next;
  napi_deferred deferred;
  rec_t *rec; /* allocated with the note: the notifier thread never mallocs */
  int err;
  size_t len;
  char msg[];
};

struct notifier {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  note_t *head, *tail;
  struct state *st; /* NULL once the session is released: results are dropped */
  int fd;           /* its own dup of /dev/fuse: the session may close its fd while a write waits here */
  bool stop;
  int refs;         /* the session and the thread */
};

typedef struct negotiated {
  uint32_t kmajor, kminor, kflags, kflags2, kmax_readahead;
  uint32_t minor, flags, max_readahead, max_write, max_read, max_pages, max_background, congestion, time_gran;
} negotiated_t;

typedef struct state {
  napi_env env;
  napi_ref dispatch;
  napi_async_context actx;
  uv_async_t async;
  pthread_mutex_t lock;
  rec_t *head, *tail;    /* the FIFO, under lock */
  rec_t *exit_rec;       /* allocated up front: the end of the session must reach JS */
  int fd;                /* /dev/fuse, O_NONBLOCK | O_CLOEXEC */
  int wake[2];           /* release() writes here to get the reader out of poll() */
  char *buf;             /* the reader's buffer (replaced when a write takes it) */
  size_t bufsize;
  uint32_t max_name;
  pthread_t reader;
  bool reader_running;   /* JS thread: started and not joined */
  int stop;              /* atomic: release() asked the reader to end */
  int exited;            /* atomic: the reader saw the kernel side go (ENODEV) */
  int read_errno;        /* why the reader stopped, when not ENODEV */
  size_t outstanding;    /* requests in the table for this session (JS thread) */
  bool released, closed, napi_gone;
  notifier_t *notifier;
  negotiated_t neg;
} state_t;

/* Tags a handle object as ours, so release() can tell a released handle from a foreign object. */
static const napi_type_tag HANDLE_TAG = { 0x6672616766732d6bULL, 0x65726e656c2d6866ULL };

static long page_size(void) {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? p : 4096;
}

/* ---- napi error handling -------------------------------------------------------------------- */

static napi_value throw_type(napi_env env, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  (void) napi_throw_type_error(env, NULL, msg); /* nothing more to do if even that fails */
  return NULL;
}

static napi_value throw_error(napi_env env, const char *code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  (void) napi_throw_error(env, code, msg);
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

static napi_value throw_nomem(napi_env env) { return throw_error(env, "ENOMEM", "fragfs-fuse: out of memory"); }

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

/* ---- the table of requests awaiting a reply -------------------------------------------------- */

/*
 * Every request handed to JS gets an id of its own (the `unique` JS sees), unique in the process and
 * never reused, so a reply names exactly one request of one session; the kernel's own uniques restart
 * with each connection. Only JS threads touch the table, but worker threads each have theirs and may
 * load this addon too: one lock for all. Linear probing on id & mask (ids are sequential, so they
 * spread by themselves), deletion by backward shift (no tombstones).
 */
typedef struct pending {
  uint64_t id; /* 0: free slot */
  uint64_t kunique;
  state_t *st;
  uint32_t op;
  uint32_t size;
  bool interrupted;
} pending_t;

static struct {
  pthread_mutex_t lock;
  pending_t *slot;
  size_t mask; /* capacity - 1; capacity is a power of 2, 0 before the first insert */
  size_t count;
  uint64_t next_id;
} table = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 1 };

static void table_put_nolock(const pending_t *p) {
  size_t i = (size_t) p->id & table.mask;
  while (table.slot[i].id) i = (i + 1) & table.mask;
  table.slot[i] = *p;
  table.count++;
}

/* Rehashes into `cap` slots, keeping the entries for which keep(entry, arg) holds. */
static bool table_rebuild_nolock(size_t cap, bool (*keep)(const pending_t *, void *), void *arg) {
  pending_t *old = table.slot;
  size_t oldcap = table.slot ? table.mask + 1 : 0;
  pending_t *fresh = calloc(cap, sizeof *fresh);
  if (!fresh) return false;
  table.slot = fresh;
  table.mask = cap - 1;
  table.count = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].id && (!keep || keep(&old[i], arg))) table_put_nolock(&old[i]);
  free(old);
  return true;
}

/* A new request of `st`; returns its id, 0 when out of memory. */
static uint64_t table_add(state_t *st, uint64_t kunique, uint32_t op, uint32_t size) {
  pthread_mutex_lock(&table.lock);
  size_t cap = table.slot ? table.mask + 1 : 0;
  if ((table.count + 1) * 2 > cap && !table_rebuild_nolock(cap ? cap * 2 : 64, NULL, NULL)) {
    pthread_mutex_unlock(&table.lock);
    return 0;
  }
  pending_t p = { table.next_id++, kunique, st, op, size, false };
  table_put_nolock(&p);
  pthread_mutex_unlock(&table.lock);
  return p.id;
}

static ptrdiff_t table_find_nolock(uint64_t id) {
  if (!table.slot || !id) return -1;
  for (size_t i = (size_t) id & table.mask; table.slot[i].id; i = (i + 1) & table.mask)
    if (table.slot[i].id == id) return (ptrdiff_t) i;
  return -1;
}

/* A copy of the entry: other threads' inserts may move it. */
static bool table_get(uint64_t id, pending_t *out) {
  pthread_mutex_lock(&table.lock);
  ptrdiff_t i = table_find_nolock(id);
  if (i >= 0) *out = table.slot[i];
  pthread_mutex_unlock(&table.lock);
  return i >= 0;
}

static bool table_take(uint64_t id) {
  pthread_mutex_lock(&table.lock);
  ptrdiff_t found = table_find_nolock(id);
  if (found >= 0) {
    size_t i = (size_t) found, j = i;
    for (;;) {
      j = (j + 1) & table.mask;
      if (!table.slot[j].id) break;
      size_t home = (size_t) table.slot[j].id & table.mask;
      /* The entry at j stays if its home lies cyclically in (i, j]. */
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      table.slot[i] = table.slot[j];
      i = j;
    }
    table.slot[i].id = 0;
    table.count--;
  }
  pthread_mutex_unlock(&table.lock);
  return found >= 0;
}

/* INTERRUPT: finds `st`'s request with that kernel unique, marks it, gives its id. Rare: a scan. */
static bool table_interrupt(state_t *st, uint64_t kunique, uint64_t *id) {
  bool found = false;
  pthread_mutex_lock(&table.lock);
  for (size_t i = 0; table.slot && i <= table.mask; i++) {
    if (table.slot[i].id && table.slot[i].st == st && table.slot[i].kunique == kunique) {
      table.slot[i].interrupted = true;
      *id = table.slot[i].id;
      found = true;
      break;
    }
  }
  pthread_mutex_unlock(&table.lock);
  return found;
}

static bool keep_other(const pending_t *p, void *st) { return p->st != st; }

/* Environment teardown: nobody will answer `st`'s requests any more. */
static void table_drop_state(state_t *st) {
  pthread_mutex_lock(&table.lock);
  if (table.slot && !table_rebuild_nolock(table.mask + 1, keep_other, st)) {
    /* No memory for a new array: clear them in place (a scan per removal, at teardown only). */
    for (size_t i = 0; i <= table.mask; i++) {
      if (table.slot[i].id && table.slot[i].st == st) {
        uint64_t id = table.slot[i].id;
        pthread_mutex_unlock(&table.lock);
        table_take(id);
        pthread_mutex_lock(&table.lock);
        i = (size_t) -1; /* start over: the shift moved entries */
      }
    }
  }
  pthread_mutex_unlock(&table.lock);
}

/* ---- writing to the kernel (any thread) ----------------------------------------------------- */

/* One message: out header + body. Returns 0 or the errno of writev. */
static int write_msg(int fd, uint64_t unique, int32_t error, const struct iovec *body, int nbody) {
  struct fuse_out_header oh;
  struct iovec iov[8];
  size_t len = sizeof oh;
  for (int i = 0; i < nbody; i++) {
    iov[1 + i] = body[i];
    len += body[i].iov_len;
  }
  oh.len = (uint32_t) len;
  oh.error = error;
  oh.unique = unique;
  iov[0].iov_base = &oh;
  iov[0].iov_len = sizeof oh;
  ssize_t w;
  do w = writev(fd, iov, nbody + 1); while (w < 0 && errno == EINTR);
  return w < 0 ? errno : 0;
}

/* An error reply (or an empty success, err 0) the addon sends itself. */
static void reply_raw(state_t *st, uint64_t kunique, int err) { (void) write_msg(st->fd, kunique, -err, NULL, 0); }

/* ---- records and the FIFO ------------------------------------------------------------------- */

static double u64d(uint64_t v) { return v > (uint64_t) TWO53 ? TWO53 : (double) v; } /* clamp to 2^53 */
/* A timespec's seconds (the kernel's signed time64) as a double: exact within 2^53. */
static double ts_sec(uint64_t sec) { return (double) (int64_t) sec; }

static rec_t *rec_new(int kind, uint32_t op, const struct fuse_in_header *h, size_t tail) {
  rec_t *r = malloc(sizeof *r + tail);
  if (!r) return NULL;
  memset(r, 0, sizeof *r);
  r->kind = kind;
  r->op = op;
  if (h) {
    r->kunique = h->unique;
    r->hdr[0] = u64d(h->nodeid);
    r->hdr[1] = h->uid;
    r->hdr[2] = h->gid;
    r->hdr[3] = h->pid;
  }
  return r;
}

static void add_num(rec_t *r, double v) {
  arg_t *a = &r->argv[r->argc++];
  a->kind = 'n';
  a->num = v;
}

static void add_bytes(rec_t *r, const char *p, size_t n) {
  arg_t *a = &r->argv[r->argc++];
  a->kind = 'b';
  a->ptr = r->tail + r->used;
  a->len = n;
  if (n) memcpy(r->tail + r->used, p, n);
  r->used += n;
}

static void rec_free(rec_t *r) {
  free(r->payload);
  free(r);
}

/* Appends the chain first..last and wakes the JS thread (libuv coalesces wake-ups). */
static void push(state_t *st, rec_t *first, rec_t *last) {
  pthread_mutex_lock(&st->lock);
  if (st->tail) st->tail->next = first; else __atomic_store_n(&st->head, first, __ATOMIC_RELEASE); /* on_async may spin on head */
  st->tail = last;
  pthread_mutex_unlock(&st->lock);
  uv_async_send(&st->async);
}

static rec_t *take_all(state_t *st) {
  pthread_mutex_lock(&st->lock);
  rec_t *r = st->head;
  st->head = st->tail = NULL;
  pthread_mutex_unlock(&st->lock);
  return r;
}

/* ---- the reader thread ---------------------------------------------------------------------- */

/* Takes the next NUL-terminated string of the request; false when there is none. */
static bool take_str(const char **in, size_t *left, const char **s, size_t *len) {
  const char *z = memchr(*in, 0, *left);
  if (!z) return false;
  *s = *in;
  *len = (size_t) (z - *in);
  *left -= *len + 1;
  *in = z + 1;
  return true;
}

static bool is_capability(const char *name, size_t len) {
  return len == 19 && memcmp(name, "security.capability", 19) == 0;
}

/*
 * Parses one request into a record, or answers it here. Returns the record to queue (NULL: answered,
 * or a FORGET chain pushed already). The kernel never sends a malformed request; one is answered EIO.
 */
static rec_t *parse_request(state_t *st, size_t n) {
  char *buf = st->buf;
  const struct fuse_in_header *h = (const struct fuse_in_header *) buf;
  if (n < sizeof *h) return NULL;
  uint64_t unique = h->unique;
  uint32_t op = h->opcode;
  size_t ext = (size_t) h->total_extlen * 8; /* extensions (none negotiated): skipped */
  if (h->len != n || ext > n - sizeof *h) { reply_raw(st, unique, EIO); return NULL; }
  const char *in = buf + sizeof *h;
  size_t left = n - sizeof *h - ext;
  const char *name, *name2;
  size_t len, len2;
  rec_t *r = NULL;
  int err = 0;

#define IN(type, var)                                   \
  if (left < sizeof(type)) goto bad;                    \
  const type *var = (const type *) in;                  \
  in += sizeof(type);                                   \
  left -= sizeof(type)
#define NAME(s, l) do { if (!take_str(&in, &left, &s, &l)) goto bad; if (l > st->max_name) { err = ENAMETOOLONG; goto answer; } } while (0)
#define NEW(tail) do { if (!(r = rec_new(REC_REQ, op, h, (tail)))) { err = ENOMEM; goto answer; } } while (0)

  switch (op) {
  case FUSE_LOOKUP: case FUSE_UNLINK: case FUSE_RMDIR:
    NAME(name, len);
    NEW(len);
    add_bytes(r, name, len);
    break;
  case FUSE_FORGET: {
    IN(struct fuse_forget_in, f);
    r = rec_new(REC_NOTICE, FUSE_FORGET, h, 0);
    if (r) add_num(r, u64d(f->nlookup));
    break; /* no reply, whatever happens */
  }
  case FUSE_BATCH_FORGET: {
    IN(struct fuse_batch_forget_in, b);
    rec_t *first = NULL, *last = NULL;
    const struct fuse_forget_one *one = (const struct fuse_forget_one *) in;
    for (uint32_t i = 0; i < b->count && left >= sizeof *one; i++, one++, left -= sizeof *one) {
      rec_t *f = rec_new(REC_NOTICE, FUSE_FORGET, h, 0);
      if (!f) break;
      f->hdr[0] = u64d(one->nodeid);
      add_num(f, u64d(one->nlookup));
      if (last) last->next = f; else first = f;
      last = f;
    }
    if (first) push(st, first, last);
    return NULL;
  }
  case FUSE_GETATTR: {
    IN(struct fuse_getattr_in, g);
    NEW(0);
    add_num(r, g->getattr_flags & FUSE_GETATTR_FH ? u64d(g->fh) : -1);
    break;
  }
  case FUSE_SETATTR: {
    IN(struct fuse_setattr_in, s);
    NEW(0);
    add_num(r, s->valid);
    add_num(r, s->valid & FATTR_FH ? u64d(s->fh) : -1);
    add_num(r, s->mode);
    add_num(r, s->uid);
    add_num(r, s->gid);
    add_num(r, u64d(s->size));
    add_num(r, ts_sec(s->atime));
    add_num(r, s->atimensec);
    add_num(r, ts_sec(s->mtime));
    add_num(r, s->mtimensec);
    break;
  }
  case FUSE_READLINK:
    NEW(0);
    r->size = (uint32_t) page_size() - 1; /* the kernel reads a link into one page, NUL included */
    break;
  case FUSE_SYMLINK: /* name, then the target */
    NAME(name, len);
    if (!take_str(&in, &left, &name2, &len2)) goto bad;
    NEW(len + len2);
    add_bytes(r, name, len);
    add_bytes(r, name2, len2);
    break;
  case FUSE_MKNOD: {
    IN(struct fuse_mknod_in, m);
    NAME(name, len);
    NEW(len);
    add_bytes(r, name, len);
    add_num(r, m->mode);
    add_num(r, m->rdev);
    add_num(r, m->umask);
    break;
  }
  case FUSE_MKDIR: {
    IN(struct fuse_mkdir_in, m);
    NAME(name, len);
    NEW(len);
    add_bytes(r, name, len);
    add_num(r, m->mode);
    add_num(r, m->umask);
    break;
  }
  case FUSE_RENAME: case FUSE_RENAME2: {
    uint64_t newdir;
    uint32_t flags = 0;
    if (op == FUSE_RENAME) {
      IN(struct fuse_rename_in, rn);
      newdir = rn->newdir;
    } else {
      IN(struct fuse_rename2_in, rn);
      newdir = rn->newdir;
      flags = rn->flags;
    }
    NAME(name, len);
    NAME(name2, len2);
    NEW(len + len2);
    add_bytes(r, name, len);
    add_num(r, u64d(newdir));
    add_bytes(r, name2, len2);
    add_num(r, flags);
    break;
  }
  case FUSE_LINK: {
    IN(struct fuse_link_in, l);
    NAME(name, len);
    NEW(len);
    add_num(r, u64d(l->oldnodeid));
    add_bytes(r, name, len);
    break;
  }
  case FUSE_OPEN: case FUSE_OPENDIR: {
    IN(struct fuse_open_in, o);
    NEW(0);
    add_num(r, o->flags);
    break;
  }
  case FUSE_READ: case FUSE_READDIR: case FUSE_READDIRPLUS: {
    IN(struct fuse_read_in, rd);
    NEW(0);
    add_num(r, u64d(rd->fh));
    add_num(r, u64d(rd->offset));
    add_num(r, rd->size);
    r->size = rd->size;
    break;
  }
  case FUSE_WRITE: {
    IN(struct fuse_write_in, w);
    if (left < w->size) goto bad;
    char *fresh = zero_copy(w->size, st->bufsize) ? take_spare(st->bufsize) : NULL;
    if (!(r = rec_new(REC_REQ, op, h, fresh ? 0 : w->size))) {
      free(fresh);
      err = ENOMEM;
      goto answer;
    }
    add_num(r, u64d(w->fh));
    add_num(r, u64d(w->offset));
    if (fresh) {
      /* The record takes the read buffer (h, w and in stay valid: they point into it). */
      arg_t *a = &r->argv[r->argc++];
      a->kind = 'w';
      a->ptr = in;
      a->len = w->size;
      r->payload = buf;
      st->buf = fresh;
    } else {
      add_bytes(r, in, w->size);
    }
    add_num(r, w->write_flags);
    r->size = w->size;
    break;
  }
  case FUSE_STATFS:
    NEW(0);
    break;
  case FUSE_RELEASE: case FUSE_RELEASEDIR: {
    IN(struct fuse_release_in, rl);
    NEW(0);
    add_num(r, u64d(rl->fh));
    if (op == FUSE_RELEASE) add_num(r, rl->flags);
    break;
  }
  case FUSE_FSYNC: case FUSE_FSYNCDIR: {
    IN(struct fuse_fsync_in, f);
    NEW(0);
    add_num(r, u64d(f->fh));
    add_num(r, f->fsync_flags & FUSE_FSYNC_FDATASYNC ? 1 : 0);
    break;
  }
  case FUSE_SETXATTR: {
    /* FUSE_SETXATTR_EXT is never negotiated: the kernel sends the 8-byte form. */
    if (left < FUSE_COMPAT_SETXATTR_IN_SIZE) goto bad;
    const struct fuse_setxattr_in *s = (const struct fuse_setxattr_in *) in;
    uint32_t size = s->size, flags = s->flags;
    in += FUSE_COMPAT_SETXATTR_IN_SIZE;
    left -= FUSE_COMPAT_SETXATTR_IN_SIZE;
    if (!take_str(&in, &left, &name, &len) || left < size) goto bad;
    /*
     * FUSE mounts are nosuid, so file capabilities never apply; the kernel asks for
     * security.capability before every write (file_remove_privs): answered here, no trip to JS.
     */
    if (is_capability(name, len)) { err = EOPNOTSUPP; goto answer; }
    NEW(len + size);
    add_bytes(r, name, len);
    add_bytes(r, in, size);
    add_num(r, flags);
    break;
  }
  case FUSE_GETXATTR: {
    IN(struct fuse_getxattr_in, g);
    if (!take_str(&in, &left, &name, &len)) goto bad;
    if (is_capability(name, len)) { err = ENODATA; goto answer; }
    NEW(len);
    add_bytes(r, name, len);
    add_num(r, g->size);
    r->size = g->size;
    break;
  }
  case FUSE_LISTXATTR: {
    IN(struct fuse_getxattr_in, g);
    NEW(0);
    add_num(r, g->size);
    r->size = g->size;
    break;
  }
  case FUSE_REMOVEXATTR:
    if (!take_str(&in, &left, &name, &len)) goto bad;
    NEW(len);
    add_bytes(r, name, len);
    break;
  case FUSE_FLUSH: {
    IN(struct fuse_flush_in, f);
    NEW(0);
    add_num(r, u64d(f->fh));
    break;
  }
  case FUSE_ACCESS: {
    IN(struct fuse_access_in, a);
    NEW(0);
    add_num(r, a->mask);
    break;
  }
  case FUSE_CREATE: {
    IN(struct fuse_create_in, c);
    NAME(name, len);
    NEW(len);
    add_bytes(r, name, len);
    add_num(r, c->mode);
    add_num(r, c->flags);
    add_num(r, c->umask);
    break;
  }
  case FUSE_FALLOCATE: {
    IN(struct fuse_fallocate_in, f);
    NEW(0);
    add_num(r, u64d(f->fh));
    add_num(r, u64d(f->offset));
    add_num(r, u64d(f->length));
    add_num(r, f->mode);
    break;
  }
  case FUSE_INTERRUPT: {
    /* The table lives on the JS thread: it decides there whether the request is still awaited. */
    IN(struct fuse_interrupt_in, i);
    r = rec_new(REC_INTERRUPT, FUSE_INTERRUPT, h, 0);
    if (!r) return NULL; /* unanswered: the kernel resends it when the request is still waiting */
    r->target = i->unique;
    break;
  }
  case FUSE_DESTROY: /* fuseblk only: nothing to flush here, JS hears of the end through EXIT */
    err = 0;
    goto answer;
  case FUSE_NOTIFY_REPLY: /* a reply to a retrieve we never send: takes no answer */
    return NULL;
  case FUSE_INIT: /* answered in mount(); a second one is a protocol error */
    err = EIO;
    goto answer;
  default:
    /*
     * LSEEK, COPY_FILE_RANGE, SETUPMAPPING, IOCTL, POLL, BMAP, GETLK/SETLK/SETLKW and anything newer:
     * ENOSYS, which the kernel remembers and then handles itself (locks locally, seek generically).
     */
    err = ENOSYS;
    goto answer;
  }
#undef IN
#undef NAME
#undef NEW
  return r;

bad:
  err = EIO;
  /* FORGET and INTERRUPT take no reply, even when malformed */
  if (op == FUSE_FORGET || op == FUSE_BATCH_FORGET || op == FUSE_INTERRUPT) return NULL;
answer:
  if (r) rec_free(r);
  reply_raw(st, unique, err);
  return NULL;
}

/* Waits until /dev/fuse is readable (or in error); false when release() asks the reader to stop. */
static bool wait_readable(state_t *st) {
  struct pollfd p[2] = { { st->fd, POLLIN, 0 }, { st->wake[0], POLLIN, 0 } };
  for (;;) {
    if (__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) return false;
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (p[1].revents) return false;
    return true; /* readable, or POLLERR/POLLHUP: the read that follows says which */
  }
}

static void *reader_main(void *arg) {
  state_t *st = arg;
  for (;;) {
    if (__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) return NULL;
    ssize_t n = read(st->fd, st->buf, st->bufsize);
    if (n < 0) {
      int e = errno;
      if (e == EINTR || e == ENOENT) continue; /* ENOENT: an interrupted request vanished */
      if (e == EAGAIN) {
        if (!wait_readable(st)) return NULL;
        continue;
      }
      if (e != ENODEV) st->read_errno = e; /* ENODEV: unmounted */
      break;
    }
    rec_t *r = parse_request(st, (size_t) n);
    if (r) push(st, r, r);
  }
  /* The kernel side is gone: tell JS, whose release() joins this thread. */
  __atomic_store_n(&st->exited, 1, __ATOMIC_RELEASE);
  rec_t *r = st->exit_rec;
  st->exit_rec = NULL;
  push(st, r, r);
  return NULL;
}

/* ---- dispatch (JS thread) ------------------------------------------------------------------- */

static void free_payload(napi_env env, void *data, void *hint) {
  (void) env;
  (void) data;
  give_spare(hint); /* the whole read buffer; data points into it */
}

static napi_status arg_value(napi_env env, rec_t *r, const arg_t *a, napi_value *out) {
  if (a->kind == 'n') return napi_create_double(env, a->num, out);
  if (a->kind == 'w' && r->payload) {
    napi_status s = napi_create_external_buffer(env, a->len, (void *) a->ptr, free_payload, r->payload, out);
    if (s == napi_ok) r->payload = NULL; /* the Buffer owns it now */
    if (s != napi_no_external_buffers_allowed) return s;
  }
  return napi_create_buffer_copy(env, a->len, a->ptr, NULL, out);
}

static void resolve_note(napi_env env, note_t *n, int err) {
  napi_value v;
  NAPI_UNCAUGHT(napi_create_int32(env, err, &v));
  NAPI_UNCAUGHT(napi_resolve_deferred(env, n->deferred, v));
}

static void dispatch_one(state_t *st, rec_t *r) {
  napi_env env = st->env;
  napi_handle_scope scope;
  napi_value fn, recv, ret, argv[6 + MAX_ARGS];
  uint64_t id = 0;
  if (r->kind == REC_NOTE) {
    resolve_note(env, r->note, r->note->err);
    free(r->note); /* r is freed by the caller */
    r->note = NULL;
    return;
  }
  if (r->kind == REC_INTERRUPT) {
    uint64_t target;
    /* Not awaited (answered already): EAGAIN, as the protocol says; the kernel drops it if done. */
    if (!table_interrupt(st, r->target, &target)) { reply_raw(st, r->kunique, EAGAIN); return; }
    r->argc = 0;
    add_num(r, (double) target);
  }
  if (r->kind == REC_REQ) {
    if (!(id = table_add(st, r->kunique, r->op, r->size))) { reply_raw(st, r->kunique, ENOMEM); return; }
    st->outstanding++; /* before the call: JS may answer within it */
  }
  napi_status s = napi_open_handle_scope(env, &scope);
  if (s != napi_ok) { raise_uncaught(env, s, "napi_open_handle_scope"); return; }
  const char *what = "building the dispatch arguments";
  s = napi_get_reference_value(env, st->dispatch, &fn);
  if (s == napi_ok) s = napi_get_undefined(env, &recv);
  if (s == napi_ok) s = napi_create_uint32(env, r->op, &argv[0]);
  if (s == napi_ok) s = napi_create_double(env, (double) id, &argv[1]);
  for (int i = 0; s == napi_ok && i < 4; i++) s = napi_create_double(env, r->hdr[i], &argv[2 + i]);
  for (int i = 0; s == napi_ok && i < r->argc; i++) s = arg_value(env, r, &r->argv[i], &argv[6 + i]);
  if (s == napi_ok) {
    what = "dispatch";
    s = napi_call_function(env, recv, fn, (size_t) (6 + r->argc), argv, &ret);
  } else if (id && table_take(id)) {
    /* JS never saw it: answer it here. */
    reply_raw(st, r->kunique, EIO);
    st->outstanding--;
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
 * on a VM is an inter-processor interrupt and a VM exit. Measured with the libfuse addon on a 2-core
 * VM, untar of 10,000 files: 890 files/s without, 1,550-1,720 with 50 us, 1,700-1,740 with 100 or
 * 200 us; 20 us is too short to matter. The wait is bounded per batch, so an idle mount does not spin.
 *
 * Here the wait yields the CPU (sched_yield) instead of spinning on it: the reader thread, woken by
 * the next request, is often queued on the CPU the JS thread holds, and a busy spin kept it there until
 * the wait ran out. Measured with this addon and test/fuse/kernel-toy-fs.ts on a 2-core VM: a GETATTR
 * round trip takes 13 us without the wait, 75 us with a busy 100 us wait, 8.8 us with a yielding one;
 * untar of 10,000 files: 1,050-1,800 files/s with the busy wait, medians of 4,500 without and 5,750
 * with the yielding one (12 runs each, 1,800-8,000 spread).
 * FRAGFS_FUSE_SPIN_US overrides it (0: never wait).
 */
#define SPIN_JS_US_DEFAULT 100
static long spin_js_ns = -1;
/* The longest one wake-up keeps the JS thread before it returns to libuv. */
#define MAX_ASYNC_NS 2000000L

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void drop_rec(state_t *st, rec_t *r);

static void on_async(uv_async_t *handle) {
  state_t *st = handle->data;
  napi_env env = st->env;
  if (spin_js_ns < 0) {
    const char *e = getenv("FRAGFS_FUSE_SPIN_US");
    spin_js_ns = (e && *e ? atol(e) : SPIN_JS_US_DEFAULT) * 1000L;
  }
  long started = now_ns();
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
      else drop_rec(st, r);
      rec_free(r);
      r = next;
    }
    NAPI_UNCAUGHT(napi_close_callback_scope(env, cbscope));
    NAPI_UNCAUGHT(napi_close_handle_scope(env, scope));
    if (spin_js_ns <= 0 || st->released) break;
    long until = now_ns() + spin_js_ns;
    while (!__atomic_load_n(&st->head, __ATOMIC_ACQUIRE) && now_ns() < until) sched_yield();
    /*
     * A busy mount keeps this loop fed; past a bound, the rest of Node (timers, I/O completions a
     * reply may wait for) gets its turn, and the queue is taken up again on the next loop iteration.
     */
    if (now_ns() - started > MAX_ASYNC_NS) {
      if (__atomic_load_n(&st->head, __ATOMIC_ACQUIRE)) uv_async_send(&st->async);
      break;
    }
    r = take_all(st);
  }
}

/* ---- notifications (their own thread) ------------------------------------------------------- */

/*
 * The kernel handles a notification inside write(2), under locks a request may hold while it waits
 * for our answer (inval_entry takes the directory's lock; inval_inode waits for locked pages): written
 * from the JS thread, which is the one that answers, it could wait forever. A thread of its own writes
 * them; the result comes back through the FIFO and resolves the promise notify*() returned.
 */
static void notifier_unref_locked(notifier_t *nf) {
  bool last = --nf->refs == 0;
  pthread_mutex_unlock(&nf->lock);
  if (last) {
    close(nf->fd);
    pthread_cond_destroy(&nf->cond);
    pthread_mutex_destroy(&nf->lock);
    free(nf);
  }
}

static void *notifier_main(void *arg) {
  notifier_t *nf = arg;
  pthread_mutex_lock(&nf->lock);
  for (;;) {
    while (!nf->head && !nf->stop) pthread_cond_wait(&nf->cond, &nf->lock);
    note_t *n = nf->head;
    if (!n) break; /* stopped */
    nf->head = n->next;
    if (!nf->head) nf->tail = NULL;
    pthread_mutex_unlock(&nf->lock);
    ssize_t w;
    do w = write(nf->fd, n->msg, n->len); while (w < 0 && errno == EINTR);
    n->err = w < 0 ? errno : 0;
    pthread_mutex_lock(&nf->lock);
    if (nf->st) {
      push(nf->st, n->rec, n->rec); /* the session is alive while st is set (release clears it first) */
    } else {
      free(n->rec); /* the promise stays pending: its environment is gone or released */
      free(n);
    }
  }
  notifier_unref_locked(nf);
  return NULL;
}

/* Release: results no longer reach JS; notes not yet written are handed back to be settled. */
static note_t *notifier_detach(notifier_t *nf) {
  pthread_mutex_lock(&nf->lock);
  note_t *unsent = nf->head;
  nf->head = nf->tail = NULL;
  nf->st = NULL;
  nf->stop = true;
  pthread_cond_signal(&nf->cond);
  notifier_unref_locked(nf);
  return unsent;
}

/* ---- mount lifecycle ------------------------------------------------------------------------ */

/*
 * The last step, once the uv_async handle is closed and no request of the session awaits a reply:
 * /dev/fuse (when still mounted, closing it aborts the connection), the buffers and the state.
 */
static void finish(state_t *st) {
  if (st->fd >= 0) close(st->fd);
  if (st->wake[0] >= 0) close(st->wake[0]);
  if (st->wake[1] >= 0) close(st->wake[1]);
  free(st->buf);
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
  if (st->outstanding == 0) finish(st);
}

/* After each reply: the last answer a released session awaited frees it. */
static void answered(state_t *st) {
  if (--st->outstanding == 0 && st->closed) finish(st);
}

/* A record release() finds unhandled: requests JS never saw get EIO, notes settle. */
static void drop_rec(state_t *st, rec_t *r) {
  if (r->kind == REC_REQ) reply_raw(st, r->kunique, EIO);
  if (r->kind == REC_NOTE) {
    if (!st->napi_gone) resolve_note(st->env, r->note, r->note->err);
    free(r->note);
    r->note = NULL;
  }
}

/*
 * Stops the reader (it is in poll() or about to be: the wake-up pipe gets it out), answers what JS
 * never saw, detaches the notifier and closes the uv_async handle (so Node's loop may end). Requests
 * JS holds may still be answered: /dev/fuse stays open until the last of them is.
 */
static void teardown(state_t *st) {
  napi_env env = st->env;
  st->released = true;
  if (st->reader_running) {
    __atomic_store_n(&st->stop, 1, __ATOMIC_RELEASE);
    char c = 1;
    ssize_t w;
    do w = write(st->wake[1], &c, 1); while (w < 0 && errno == EINTR);
    pthread_join(st->reader, NULL);
    st->reader_running = false;
  }
  /* The notifier first: once detached it pushes nothing more into the FIFO drained below. */
  if (st->notifier) {
    for (note_t *n = notifier_detach(st->notifier), *next; n; n = next) {
      next = n->next;
      if (!st->napi_gone) resolve_note(env, n, ENOTCONN);
      free(n->rec);
      free(n);
    }
    st->notifier = NULL;
  }
  for (rec_t *r = take_all(st), *next; r; r = next) {
    next = r->next;
    drop_rec(st, r);
    rec_free(r);
  }
  if (st->exit_rec) rec_free(st->exit_rec);
  st->exit_rec = NULL;
  uv_close((uv_handle_t *) &st->async, on_closed);
}

/* Node is tearing the environment down with the session still alive (no release()). */
static void on_env_teardown(void *arg) {
  state_t *st = arg;
  st->napi_gone = true;
  table_drop_state(st); /* nobody is left to answer them; the fd closes with the handle */
  st->outstanding = 0;
  teardown(st);
}

/* ---- argument checks ------------------------------------------------------------------------ */

static bool get_number(napi_env env, napi_value v, const char *what, double *out) {
  napi_valuetype t;
  NAPI_BOOL(napi_typeof(env, v, &t));
  if (t != napi_number) return throw_type(env, "%s must be a number", what), false;
  NAPI_BOOL(napi_get_value_double(env, v, out));
  if (!isfinite(*out)) return throw_type(env, "%s must be finite", what), false;
  return true;
}

/* An integer in min..max. */
static bool get_int(napi_env env, napi_value v, const char *what, double min, double max, double *out) {
  if (!get_number(env, v, what, out)) return false;
  if (*out < min || *out > max || *out != floor(*out))
    return throw_type(env, "%s must be an integer in %.0f..%.0f", what, min, max), false;
  return true;
}

static bool get_doubles(napi_env env, napi_value v, const char *what, size_t min, const double **out, size_t *len) {
  bool is;
  napi_typedarray_type type;
  size_t length;
  void *data = NULL;
  NAPI_BOOL(napi_is_typedarray(env, v, &is));
  if (is) NAPI_BOOL(napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL));
  if (!is || type != napi_float64_array || length < min)
    return throw_type(env, "%s must be a Float64Array of at least %zu", what, min), false;
  *out = data;
  if (len) *len = length;
  return true;
}

/* A Buffer or any Uint8Array. */
static bool get_bytes(napi_env env, napi_value v, const char *what, const char **ptr, size_t *len) {
  bool is;
  napi_typedarray_type type;
  void *data = NULL;
  NAPI_BOOL(napi_is_typedarray(env, v, &is));
  if (is) NAPI_BOOL(napi_get_typedarray_info(env, v, &type, len, &data, NULL, NULL));
  if (!is || type != napi_uint8_array) return throw_type(env, "%s must be a Buffer", what), false;
  *ptr = data ? data : "";
  return true;
}

/* A name the kernel accepts: 1..FUSE_NAME_MAX (1024) bytes, no '/' and no NUL. */
static bool get_name(napi_env env, napi_value v, const char *what, const char **ptr, size_t *len) {
  if (!get_bytes(env, v, what, ptr, len)) return false;
  if (*len == 0 || *len > 1024 || memchr(*ptr, '/', *len) || memchr(*ptr, 0, *len))
    return throw_type(env, "%s must be 1..1024 bytes without '/' or NUL", what), false;
  return true;
}

/* A JS array of numbers or a Float64Array. */
typedef struct numlist { napi_value arr; const double *f64; uint32_t len; } numlist_t;

static bool get_numlist(napi_env env, napi_value v, const char *what, numlist_t *out) {
  bool is;
  out->arr = v;
  out->f64 = NULL;
  NAPI_BOOL(napi_is_array(env, v, &is));
  if (is) {
    NAPI_BOOL(napi_get_array_length(env, v, &out->len));
    return true;
  }
  size_t len;
  if (!get_doubles(env, v, what, 0, &out->f64, &len)) return false;
  out->len = len > UINT32_MAX ? UINT32_MAX : (uint32_t) len;
  return true;
}

static bool numlist_at(napi_env env, const numlist_t *l, uint32_t k, const char *what, double *out) {
  if (l->f64) {
    *out = l->f64[k];
    if (!isfinite(*out)) return throw_type(env, "%s[%u] must be finite", what, k), false;
    return true;
  }
  napi_value v;
  NAPI_BOOL(napi_get_element(env, l->arr, k, &v));
  char w[64];
  snprintf(w, sizeof w, "%s[%u]", what, k);
  return get_number(env, v, w, out);
}

static bool get_string(napi_env env, napi_value v, const char *what, char *out, size_t size) {
  napi_valuetype t;
  size_t len;
  NAPI_BOOL(napi_typeof(env, v, &t));
  if (t != napi_string) return throw_type(env, "%s must be a string", what), false;
  NAPI_BOOL(napi_get_value_string_utf8(env, v, NULL, 0, &len));
  if (len + 1 > size) return throw_type(env, "%s must be shorter than %zu bytes", what, size), false;
  NAPI_BOOL(napi_get_value_string_utf8(env, v, out, size, &len));
  if (strlen(out) != len) return throw_type(env, "%s must not contain NUL", what), false;
  return true;
}

/* ---- mount ---------------------------------------------------------------------------------- */

typedef struct mount_opts {
  char fsname[256];
  char subtype[64];
  char fusermount[PATH_MAX];
  bool read_only, default_permissions, allow_other, readdirplus, writeback;
  uint32_t max_write, max_read, max_readahead, max_background, max_name;
} mount_opts_t;

/* options.key when present (not undefined): *present set, value in *out. */
static bool opt_value(napi_env env, napi_value obj, const char *key, napi_value *out, bool *present) {
  napi_valuetype t;
  NAPI_BOOL(napi_get_named_property(env, obj, key, out));
  NAPI_BOOL(napi_typeof(env, *out, &t));
  *present = t != napi_undefined;
  return true;
}

static bool opt_bool(napi_env env, napi_value obj, const char *key, bool *out) {
  napi_value v;
  napi_valuetype t;
  bool present;
  if (!opt_value(env, obj, key, &v, &present)) return false;
  if (!present) return true;
  NAPI_BOOL(napi_typeof(env, v, &t));
  if (t != napi_boolean) return throw_type(env, "mount: options.%s must be a boolean", key), false;
  NAPI_BOOL(napi_get_value_bool(env, v, out));
  return true;
}

static bool opt_uint(napi_env env, napi_value obj, const char *key, double min, double max, uint32_t *out) {
  napi_value v;
  bool present;
  double d;
  char what[64];
  if (!opt_value(env, obj, key, &v, &present)) return false;
  if (!present) return true;
  snprintf(what, sizeof what, "mount: options.%s", key);
  if (!get_int(env, v, what, min, max, &d)) return false;
  *out = (uint32_t) d;
  return true;
}

static bool opt_string(napi_env env, napi_value obj, const char *key, char *out, size_t size) {
  napi_value v;
  bool present;
  char what[64];
  if (!opt_value(env, obj, key, &v, &present)) return false;
  if (!present) return true;
  snprintf(what, sizeof what, "mount: options.%s", key);
  return get_string(env, v, what, out, size);
}

static bool parse_options(napi_env env, napi_value v, mount_opts_t *o) {
  napi_valuetype t;
  bool read_given = false;
  memset(o, 0, sizeof *o);
  strcpy(o->fsname, "fragfs");
  strcpy(o->subtype, "fragfs");
  o->max_write = 1024 * 1024;
  o->max_readahead = 1024 * 1024;
  o->max_background = 64;
  o->max_name = 255;
  NAPI_BOOL(napi_typeof(env, v, &t));
  if (t == napi_undefined || t == napi_null) { o->max_read = o->max_write; return true; }
  if (t != napi_object) return throw_type(env, "mount: options must be an object"), false;
  napi_value mr;
  if (!opt_value(env, v, "maxReadBytes", &mr, &read_given)) return false;
  if (!opt_string(env, v, "fsname", o->fsname, sizeof o->fsname) ||
      !opt_string(env, v, "subtype", o->subtype, sizeof o->subtype) ||
      !opt_string(env, v, "fusermount", o->fusermount, sizeof o->fusermount) ||
      !opt_bool(env, v, "readOnly", &o->read_only) ||
      !opt_bool(env, v, "defaultPermissions", &o->default_permissions) ||
      !opt_bool(env, v, "allowOther", &o->allow_other) || !opt_bool(env, v, "readdirplus", &o->readdirplus) ||
      !opt_bool(env, v, "writebackCache", &o->writeback) ||
      !opt_uint(env, v, "maxWriteBytes", 4096, 32 * 1024 * 1024, &o->max_write) ||
      !opt_uint(env, v, "maxReadBytes", 4096, 32 * 1024 * 1024, &o->max_read) ||
      !opt_uint(env, v, "maxReadaheadBytes", 0, 4294967295.0, &o->max_readahead) ||
      !opt_uint(env, v, "maxBackground", 1, 65535, &o->max_background) ||
      !opt_uint(env, v, "maxNameBytes", 1, 1024, &o->max_name)) return false;
  if (!read_given) o->max_read = o->max_write;
  for (char *c = o->subtype; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
      return throw_type(env, "mount: options.subtype may hold only a-z, 0-9, '.', '_' and '-'"), false;
  if (!o->subtype[0]) return throw_type(env, "mount: options.subtype must not be empty"), false;
  /* The source column of /proc/mounts and a field of fusermount's -o list: no separators in it. */
  for (char *c = o->fsname; *c; c++)
    if (*c == ',' || *c == ' ' || *c == '\t' || *c == '\n' || *c == '\\') *c = '_';
  if (!o->fsname[0]) strcpy(o->fsname, "fragfs");
  return true;
}

/* The first executable `name` on PATH (execvp's default when unset); false when none. */
static bool find_on_path(const char *name, char *out, size_t size) {
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p;) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t) (end - p) : strlen(p);
    if (len > 0 && (size_t) snprintf(out, size, "%.*s/%s", (int) len, p, name) < size && access(out, X_OK) == 0)
      return true;
    p += len + (end ? 1 : 0);
  }
  return false;
}

/*
 * Runs fusermount (options.fusermount, else fusermount3 (fuse 3), else fusermount (fuse 2), both speak
 * the same protocol) with `args`; its stderr goes to errfd (-1: inherited). PATH is searched here, not
 * by posix_spawnp, which gives up with EACCES on the first unreadable PATH entry.
 */
static int spawn_fusermount(const mount_opts_t *o, char *const args[], int commfd, int errfd, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t sa;
  sigset_t none, dfl;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc) return rc;
  /* Node ignores SIGPIPE, and ignored signals survive exec: fusermount gets defaults and no mask. */
  sigemptyset(&none);
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  if ((rc = posix_spawnattr_init(&sa))) {
    posix_spawn_file_actions_destroy(&fa);
    return rc;
  }
  posix_spawnattr_setsigmask(&sa, &none);
  posix_spawnattr_setsigdefault(&sa, &dfl);
  posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  /* dup2 onto itself clears close-on-exec in the child only (POSIX; glibc >= 2.29, musl). */
  if (commfd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, commfd, commfd);
  if (!rc && errfd >= 0) rc = posix_spawn_file_actions_adddup2(&fa, errfd, 2);
  size_t n = 0;
  while (environ[n]) n++;
  char **envp = calloc(n + 2, sizeof *envp);
  char commenv[32];
  if (!envp) rc = ENOMEM;
  if (!rc) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (strncmp(environ[i], "_FUSE_COMMFD=", 13) != 0) envp[k++] = environ[i];
    if (commfd >= 0) {
      snprintf(commenv, sizeof commenv, "_FUSE_COMMFD=%d", commfd);
      envp[k++] = commenv;
    }
    envp[k] = NULL;
    char prog[PATH_MAX], *argv[16];
    int a = 0;
    if (o->fusermount[0]) snprintf(prog, sizeof prog, "%s", o->fusermount);
    else if (!find_on_path("fusermount3", prog, sizeof prog) && !find_on_path("fusermount", prog, sizeof prog)) rc = ENOENT;
    argv[a++] = prog;
    for (int i = 0; args[i] && a < 15; i++) argv[a++] = args[i];
    argv[a] = NULL;
    if (!rc) rc = posix_spawn(pid, prog, &fa, &sa, argv, envp);
  }
  free(envp);
  posix_spawnattr_destroy(&sa);
  posix_spawn_file_actions_destroy(&fa);
  return rc;
}

static int wait_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return status;
}

/* Reads what is left in a pipe whose writers are gone; keeps the first line, trimmed. */
static void read_first_line(int fd, char *out, size_t size) {
  size_t have = 0;
  ssize_t n;
  out[0] = 0;
  for (;;) {
    char tmp[512];
    n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t take = (size_t) n < size - 1 - have ? (size_t) n : size - 1 - have;
    memcpy(out + have, tmp, take);
    have += take;
  }
  out[have] = 0;
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
}

/* Lazy unmount when INIT fails after the mount is made. */
static void undo_mount(const mount_opts_t *o, const char *mp) {
  if (geteuid() == 0) {
    (void) umount2(mp, MNT_DETACH);
    return;
  }
  char u[] = "-u", z[] = "-z", dd[] = "--";
  char *args[] = { u, z, dd, (char *) mp, NULL };
  pid_t pid;
  if (spawn_fusermount(o, args, -1, -1, &pid) == 0) (void) wait_child(pid);
}

/* As root: mount(2) on a /dev/fuse we open. Returns the fd, or -1 with an exception thrown. */
static int mount_root(napi_env env, const mount_opts_t *o, const char *mp) {
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    throw_error(env, "ENODEV", "fragfs-fuse: cannot open /dev/fuse: %s (is the fuse module loaded?)", strerror(e));
    return -1;
  }
  char data[256], type[80];
  snprintf(data, sizeof data, "fd=%d,rootmode=40000,user_id=%u,group_id=%u%s%s,max_read=%u", fd, (unsigned) getuid(),
           (unsigned) getgid(), o->default_permissions ? ",default_permissions" : "",
           o->allow_other ? ",allow_other" : "", o->max_read);
  snprintf(type, sizeof type, "fuse.%s", o->subtype);
  unsigned long flags = MS_NOSUID | MS_NODEV | (o->read_only ? MS_RDONLY : 0);
  if (mount(o->fsname, mp, type, flags, data) != 0) {
    int e = errno;
    close(fd);
    throw_error(env, NULL, "fragfs-fuse: mount(2) of %s on %s failed: %s", type, mp, strerror(e));
    return -1;
  }
  return fd;
}

/*
 * Not root: fusermount (setuid root) opens /dev/fuse, mounts, and sends the fd back over a socket
 * named by _FUSE_COMMFD; libfuse does the same. Returns the fd, or -1 with an exception thrown.
 */
static int mount_fusermount(napi_env env, const mount_opts_t *o, const char *mp) {
  char opts[512], dd[] = "--", dash_o[] = "-o";
  snprintf(opts, sizeof opts, "fsname=%s,subtype=%s,nosuid,nodev,%s%s%s,max_read=%u", o->fsname, o->subtype,
           o->read_only ? "ro" : "rw", o->default_permissions ? ",default_permissions" : "",
           o->allow_other ? ",allow_other" : "", o->max_read);
  char *args[] = { dash_o, opts, dd, (char *) mp, NULL };
  int sv[2], ep[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    throw_error(env, NULL, "fragfs-fuse: socketpair: %s", strerror(errno));
    return -1;
  }
  if (pipe2(ep, O_CLOEXEC) != 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    throw_error(env, NULL, "fragfs-fuse: pipe: %s", strerror(e));
    return -1;
  }
  pid_t pid;
  int rc = spawn_fusermount(o, args, sv[1], ep[1], &pid);
  close(sv[1]);
  close(ep[1]);
  if (rc) {
    close(sv[0]);
    close(ep[0]);
    if (rc == ENOENT && !o->fusermount[0])
      throw_error(env, NULL, "fragfs-fuse: no fusermount3 or fusermount on PATH: install fuse3 (or fuse), or mount as root");
    else
      throw_error(env, NULL, "fragfs-fuse: cannot run %s: %s", o->fusermount[0] ? o->fusermount : "fusermount", strerror(rc));
    return -1;
  }
  /* One byte and the fd as SCM_RIGHTS; EOF when fusermount failed (it said why on stderr). */
  char byte;
  struct iovec iov = { &byte, 1 };
  union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int))]; } cm;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cm.space;
  msg.msg_controllen = sizeof cm.space;
  ssize_t n;
  do n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  int fd = -1;
  struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
  close(sv[0]);
  int status = wait_child(pid);
  char why[400];
  read_first_line(ep[0], why, sizeof why);
  close(ep[0]);
  if (fd < 0) {
    if (why[0]) throw_error(env, NULL, "fragfs-fuse: fusermount could not mount %s: %s", mp, why);
    else if (WIFEXITED(status)) throw_error(env, NULL, "fragfs-fuse: fusermount could not mount %s (exit status %d)", mp, WEXITSTATUS(status));
    else throw_error(env, NULL, "fragfs-fuse: fusermount could not mount %s (killed by signal %d)", mp, WTERMSIG(status));
    return -1;
  }
  if (why[0]) fprintf(stderr, "%s\n", why); /* a warning from a mount that worked: pass it on */
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/*
 * INIT is queued by the kernel while mount(2) runs, so it is there to read as soon as we hold the fd:
 * mount() answers it on the JS thread before it starts the reader, and returns with the connection
 * ready. Nothing can reach JS before, and no request waits on JS while we negotiate.
 * Returns NULL or why it failed.
 */
static const char *handshake(state_t *st, const mount_opts_t *o) {
  struct pollfd p = { st->fd, POLLIN, 0 };
  int n;
  do n = poll(&p, 1, 10000); while (n < 0 && errno == EINTR);
  if (n == 0) return "the kernel sent no INIT within 10 s";
  ssize_t got;
  do got = read(st->fd, st->buf, st->bufsize); while (got < 0 && errno == EINTR);
  if (got < 0) return strerror(errno);
  const struct fuse_in_header *h = (const struct fuse_in_header *) st->buf;
  const struct fuse_init_in *in = (const struct fuse_init_in *) (st->buf + sizeof *h);
  if ((size_t) got < sizeof *h + offsetof(struct fuse_init_in, flags2) || h->opcode != FUSE_INIT)
    return "the first request was not INIT";
  negotiated_t *ng = &st->neg;
  ng->kmajor = in->major;
  ng->kminor = in->minor;
  ng->kmax_readahead = in->max_readahead;
  ng->kflags = in->flags;
  ng->kflags2 = (size_t) got >= sizeof *h + offsetof(struct fuse_init_in, unused) && (in->flags & FUSE_INIT_EXT) ? in->flags2 : 0;
  if (in->major != FUSE_KERNEL_VERSION || in->minor < 23) {
    reply_raw(st, h->unique, EPROTO);
    return "the kernel speaks FUSE protocol older than 7.23 or not 7.x";
  }
  uint32_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES |
                  FUSE_CACHE_SYMLINKS;
  if (o->readdirplus) want |= FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
  if (o->writeback) want |= FUSE_WRITEBACK_CACHE;
  long page = page_size();
  uint32_t biggest = o->max_write > o->max_read ? o->max_write : o->max_read;
  uint32_t pages = (uint32_t) ((biggest + page - 1) / page);
  ng->minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION;
  ng->flags = want & in->flags;
  ng->max_readahead = in->max_readahead < o->max_readahead ? in->max_readahead : o->max_readahead;
  ng->max_write = o->max_write;
  ng->max_read = o->max_read;
  ng->max_pages = ng->flags & FUSE_MAX_PAGES ? (pages > 65535 ? 65535 : pages) : 0;
  ng->max_background = o->max_background;
  ng->congestion = o->max_background * 3 / 4;
  ng->time_gran = 1;
  struct fuse_init_out out;
  memset(&out, 0, sizeof out);
  out.major = FUSE_KERNEL_VERSION;
  out.minor = ng->minor;
  out.max_readahead = ng->max_readahead;
  out.flags = ng->flags;
  out.max_background = (uint16_t) ng->max_background;
  out.congestion_threshold = (uint16_t) (ng->congestion ? ng->congestion : 1);
  out.max_write = ng->max_write;
  out.time_gran = ng->time_gran;
  out.max_pages = (uint16_t) ng->max_pages;
  struct iovec body = { &out, sizeof out };
  int e = write_msg(st->fd, h->unique, 0, &body, 1);
  return e ? strerror(e) : NULL;
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = { NULL, NULL, NULL }, handle, name;
  napi_valuetype t;
  char mp[PATH_MAX];
  mount_opts_t o;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "mount(mountpoint, options, dispatch) takes 3 arguments");
  if (!get_string(env, argv[0], "mount: mountpoint", mp, sizeof mp)) return NULL;
  if (mp[0] != '/') return throw_type(env, "mount: mountpoint must be an absolute path");
  if (!parse_options(env, argv[1], &o)) return NULL;
  NAPI(napi_typeof(env, argv[2], &t));
  if (t != napi_function) return throw_type(env, "mount: dispatch must be a function");
  NAPI(napi_create_object(env, &handle));
  NAPI(napi_type_tag_object(env, handle, &HANDLE_TAG));
  NAPI(napi_create_string_utf8(env, "fragfs-fuse", NAPI_AUTO_LENGTH, &name));

  state_t *st = calloc(1, sizeof *st);
  if (!st) return throw_nomem(env);
  st->env = env;
  st->fd = st->wake[0] = st->wake[1] = -1;
  st->max_name = o.max_name;
  pthread_mutex_init(&st->lock, NULL);
  /* Big enough for a max_write WRITE and for a SETXATTR of the largest value (64 KiB) the kernel allows. */
  st->bufsize = (o.max_write > 69632 ? o.max_write : 69632) + 4096 + sizeof(struct fuse_in_header) +
                sizeof(struct fuse_write_in);
  if (!(st->buf = malloc(st->bufsize)) || !(st->exit_rec = rec_new(REC_NOTICE, OP_EXIT, NULL, 0))) {
    throw_nomem(env);
    goto fail;
  }
  if (pipe2(st->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw_error(env, NULL, "fragfs-fuse: pipe: %s", strerror(errno));
    goto fail;
  }
  /*
   * Only root opens /dev/fuse itself: it is often 0600, and fusermount (setuid) opens its own.
   * Either way the fd is close-on-exec: programs Node spawns must not keep the connection open.
   */
  st->fd = geteuid() == 0 ? mount_root(env, &o, mp) : mount_fusermount(env, &o, mp);
  if (st->fd < 0) goto fail;
  const char *why = handshake(st, &o);
  if (why) {
    undo_mount(&o, mp);
    throw_error(env, NULL, "fragfs-fuse: mounted %s but INIT failed: %s", mp, why);
    goto fail;
  }
  if (napi_create_reference(env, argv[2], 1, &st->dispatch) != napi_ok ||
      napi_async_init(env, NULL, name, &st->actx) != napi_ok) {
    throw_status(env, "mount: setting up the handle");
    goto fail_mounted;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_async_init(loop, &st->async, on_async) != 0) {
    throw_error(env, NULL, "fragfs-fuse: mount: uv_async_init failed");
    goto fail_mounted;
  }
  st->async.data = st;
  /* The reader takes no signals: Node owns them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int started = pthread_create(&st->reader, NULL, reader_main, st);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (started != 0) {
    throw_error(env, NULL, "fragfs-fuse: mount: cannot start the reader thread: %s", strerror(started));
    goto fail_mounted;
  }
  st->reader_running = true;
  if (napi_wrap(env, handle, st, NULL, NULL, NULL) != napi_ok ||
      napi_add_env_cleanup_hook(env, on_env_teardown, st) != napi_ok) {
    /* Cannot hand the session to JS: end it as release() would (the fd closes, the mount aborts). */
    throw_status(env, "mount: wrapping the handle");
    (void) napi_remove_wrap(env, handle, NULL);
    undo_mount(&o, mp);
    teardown(st);
    return NULL;
  }
  return handle;

fail_mounted:
  undo_mount(&o, mp);
fail: /* an exception is pending; undoing is best effort */
  if (st->dispatch) (void) napi_delete_reference(env, st->dispatch);
  if (st->actx) (void) napi_async_destroy(env, st->actx);
  if (st->exit_rec) rec_free(st->exit_rec);
  if (st->async.data) {
    st->napi_gone = true; /* on_closed: the references are deleted already */
    uv_close((uv_handle_t *) &st->async, on_closed); /* frees st */
  } else {
    finish(st);
  }
  return NULL;
}

/* The session of a handle from mount(): NULL with *released when released, NULL + TypeError when foreign. */
static state_t *get_handle(napi_env env, napi_value h, const char *fn, bool *released) {
  napi_valuetype t;
  bool ours = false;
  void *st = NULL;
  *released = false;
  if (napi_typeof(env, h, &t) != napi_ok) { throw_status(env, "napi_typeof"); return NULL; }
  if (t == napi_object && napi_check_object_type_tag(env, h, &HANDLE_TAG, &ours) != napi_ok) {
    throw_status(env, "napi_check_object_type_tag");
    return NULL;
  }
  if (!ours) { throw_type(env, "%s: not a handle from mount()", fn); return NULL; }
  if (napi_unwrap(env, h, &st) != napi_ok) { *released = true; return NULL; }
  return st;
}

static napi_value js_release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value h = NULL;
  bool released;
  NAPI(napi_get_cb_info(env, info, &argc, &h, NULL, NULL));
  if (argc < 1) return throw_type(env, "release(handle) takes a handle");
  state_t *st = get_handle(env, h, "release", &released);
  if (!st) return NULL; /* released before (idempotent), or thrown */
  NAPI(napi_remove_env_cleanup_hook(env, on_env_teardown, st));
  NAPI(napi_remove_wrap(env, h, NULL));
  teardown(st);
  return NULL;
}

static bool set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  NAPI_BOOL(napi_create_double(env, v, &n));
  NAPI_BOOL(napi_set_named_property(env, obj, key, n));
  return true;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value h = NULL, obj, b;
  bool released;
  NAPI(napi_get_cb_info(env, info, &argc, &h, NULL, NULL));
  if (argc < 1) return throw_type(env, "info(handle) takes a handle");
  state_t *st = get_handle(env, h, "info", &released);
  if (!st) return released ? throw_error(env, NULL, "fragfs-fuse: info: the handle is released") : NULL;
  const negotiated_t *n = &st->neg;
  NAPI(napi_create_object(env, &obj));
  if (!set_num(env, obj, "major", FUSE_KERNEL_VERSION) || !set_num(env, obj, "minor", n->minor) ||
      !set_num(env, obj, "flags", n->flags) || !set_num(env, obj, "maxWrite", n->max_write) ||
      !set_num(env, obj, "maxRead", n->max_read) || !set_num(env, obj, "maxPages", n->max_pages) ||
      !set_num(env, obj, "maxReadahead", n->max_readahead) || !set_num(env, obj, "maxBackground", n->max_background) ||
      !set_num(env, obj, "congestionThreshold", n->congestion) || !set_num(env, obj, "timeGran", n->time_gran) ||
      !set_num(env, obj, "kernelMinor", n->kminor) || !set_num(env, obj, "kernelFlags", n->kflags) ||
      !set_num(env, obj, "kernelFlags2", n->kflags2) || !set_num(env, obj, "kernelMaxReadahead", n->kmax_readahead) ||
      !set_num(env, obj, "maxNameBytes", st->max_name) || !set_num(env, obj, "outstanding", (double) st->outstanding) ||
      !set_num(env, obj, "readErrno", st->read_errno)) return NULL;
  NAPI(napi_get_boolean(env, __atomic_load_n(&st->exited, __ATOMIC_ACQUIRE) != 0, &b));
  NAPI(napi_set_named_property(env, obj, "exited", b));
  return obj;
}

static napi_value js_opcodes(napi_env env, napi_callback_info info) {
  (void) info;
  napi_value obj;
  NAPI(napi_create_object(env, &obj));
  for (size_t i = 0; i < sizeof OPCODES / sizeof OPCODES[0]; i++)
    if (!set_num(env, obj, OPCODES[i].name, OPCODES[i].op)) return NULL;
  return obj;
}

/* ---- replies (JS thread) -------------------------------------------------------------------- */

static uint64_t to_u64(double d) { return d > 0 && d < 18446744073709551616.0 ? (uint64_t) d : 0; }
static int64_t to_i64(double d) { return d > -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t) d : 0; }
static uint32_t to_u32(double d) { return d > 0 && d < 4294967296.0 ? (uint32_t) d : 0; }

/* A time given as (seconds, nanoseconds) doubles; a nanosecond count outside 0..1e9-1 (or NaN): 0. */
static void to_ts(double sec, double nsec, uint64_t *sec_out, uint32_t *nsec_out) {
  *sec_out = (uint64_t) to_i64(sec); /* the kernel reads it back as a signed time64_t */
  *nsec_out = nsec >= 0 && nsec < 1e9 ? (uint32_t) nsec : 0;
}

static void fill_attr(struct fuse_attr *fa, const double *a) {
  memset(fa, 0, sizeof *fa);
  fa->ino = to_u64(a[A_INO]);
  fa->mode = to_u32(a[A_MODE]);
  fa->nlink = to_u32(a[A_NLINK]);
  fa->uid = to_u32(a[A_UID]);
  fa->gid = to_u32(a[A_GID]);
  fa->rdev = to_u32(a[A_RDEV]);
  int64_t size = to_i64(a[A_SIZE]); /* the kernel refuses sizes above 2^63 - 1 */
  fa->size = size > 0 ? (uint64_t) size : 0;
  fa->blocks = to_u64(a[A_BLOCKS]);
  to_ts(a[A_ATIME_SEC], a[A_ATIME_NSEC], &fa->atime, &fa->atimensec);
  to_ts(a[A_MTIME_SEC], a[A_MTIME_NSEC], &fa->mtime, &fa->mtimensec);
  to_ts(a[A_CTIME_SEC], a[A_CTIME_NSEC], &fa->ctime, &fa->ctimensec);
  fa->blksize = to_u32(a[A_BLKSIZE]);
}

/* A timeout in seconds (fractional) as the kernel's (sec, nsec); NaN, negative: 0. */
static void timeout(double s, uint64_t *sec, uint32_t *nsec) {
  *sec = 0;
  *nsec = 0;
  if (!(s > 0)) return;
  if (s >= 1e18) { *sec = (uint64_t) 1e18; return; }
  *sec = (uint64_t) s;
  double frac = (s - (double) *sec) * 1e9;
  *nsec = frac >= 999999999.0 ? 999999999 : (uint32_t) frac;
}

#define BIT(op) (1ULL << (op))
/* Requests whose reply may carry no data: replyErr(unique, 0) is a complete answer to them. */
static const uint64_t EMPTY_OK = BIT(FUSE_UNLINK) | BIT(FUSE_RMDIR) | BIT(FUSE_RENAME) | BIT(FUSE_RENAME2) |
  BIT(FUSE_SETXATTR) | BIT(FUSE_REMOVEXATTR) | BIT(FUSE_FLUSH) | BIT(FUSE_RELEASE) | BIT(FUSE_RELEASEDIR) |
  BIT(FUSE_FSYNC) | BIT(FUSE_FSYNCDIR) | BIT(FUSE_ACCESS) | BIT(FUSE_FALLOCATE) | BIT(FUSE_READ) |
  BIT(FUSE_READDIR) | BIT(FUSE_READDIRPLUS);

/*
 * The request a reply names: it MUST be awaiting one (Error otherwise) and be of a kind this reply
 * answers (TypeError otherwise). Nothing is written on either failure; the request stays as it was.
 */
static bool get_pending(napi_env env, napi_value v, const char *fn, uint64_t ops, pending_t *p) {
  double d;
  if (!get_int(env, v, "unique", 0, TWO53, &d)) return false;
  if (!table_get((uint64_t) d, p) || p->st->env != env) {
    throw_error(env, "ERR_FUSE_NOT_AWAITING", "request %.0f is not awaiting a reply", d);
    return false;
  }
  if (p->op >= 64 || !(ops & BIT(p->op))) {
    throw_type(env, "%s cannot answer request %.0f (%s)", fn, d, op_name(p->op));
    return false;
  }
  return true;
}

/* Writes the reply of a checked request and forgets it; an unexpected refusal by the kernel throws. */
static napi_value send_reply(napi_env env, const pending_t *p, int err, const struct iovec *body, int nbody) {
  state_t *st = p->st;
  table_take(p->id);
  int e = write_msg(st->fd, p->kunique, -err, body, nbody);
  answered(st); /* may free st */
  /* ENOENT: the request is gone (interrupted, or the connection aborted); ENODEV: unmounted. */
  if (e && e != ENOENT && e != ENODEV)
    return throw_error(env, NULL, "fragfs-fuse: the kernel refused the reply to request %llu (%s): %s",
                       (unsigned long long) p->id, op_name(p->op), strerror(e));
  return NULL;
}

#define ALL_OPS (~0ULL)
#define REPLY_ARGS(n, fn)                                                                         \
  size_t argc = n;                                                                                \
  napi_value argv[n];                                                                             \
  pending_t p;                                                                                    \
  for (size_t i_ = 0; i_ < n; i_++) argv[i_] = NULL;                                              \
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                                     \
  if (argc < n) return throw_type(env, "%s takes %d arguments", fn, n)

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  double err;
  REPLY_ARGS(2, "replyErr");
  if (!get_pending(env, argv[0], "replyErr", ALL_OPS, &p) || !get_int(env, argv[1], "errno", 0, 4095, &err)) return NULL;
  if (err == 0 && !(p.op < 64 && (EMPTY_OK & BIT(p.op))))
    return throw_type(env, "replyErr(unique, 0) cannot answer %s: it needs data", op_name(p.op));
  return send_reply(env, &p, (int) err, NULL, 0);
}

static bool get_entry(napi_env env, napi_value *argv, const pending_t *p, struct fuse_entry_out *e) {
  const double *a;
  double et, at;
  memset(e, 0, sizeof *e);
  if (!get_doubles(env, argv[0], "attr", A_LEN, &a, NULL) || !get_number(env, argv[1], "entryTimeoutS", &et) ||
      !get_number(env, argv[2], "attrTimeoutS", &at)) return false;
  fill_attr(&e->attr, a);
  e->nodeid = e->attr.ino; /* 0: a negative entry, cached for entryTimeoutS */
  if (e->nodeid == 0 && p->op != FUSE_LOOKUP)
    return throw_type(env, "attr[INO] 0 (a negative entry) answers LOOKUP only, not %s", op_name(p->op)), false;
  if (e->nodeid == FUSE_ROOT_ID && p->op != FUSE_LOOKUP)
    return throw_type(env, "attr[INO] 1 is the root: %s cannot make it", op_name(p->op)), false;
  timeout(et, &e->entry_valid, &e->entry_valid_nsec);
  timeout(at, &e->attr_valid, &e->attr_valid_nsec);
  return true;
}

static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  struct fuse_entry_out e;
  REPLY_ARGS(4, "replyEntry");
  uint64_t ops = BIT(FUSE_LOOKUP) | BIT(FUSE_MKNOD) | BIT(FUSE_MKDIR) | BIT(FUSE_SYMLINK) | BIT(FUSE_LINK);
  if (!get_pending(env, argv[0], "replyEntry", ops, &p) || !get_entry(env, argv + 1, &p, &e)) return NULL;
  struct iovec body = { &e, sizeof e };
  return send_reply(env, &p, 0, &body, 1);
}

static bool get_open(napi_env env, napi_value *argv, struct fuse_open_out *o) {
  double fh, flags;
  memset(o, 0, sizeof *o);
  if (!get_int(env, argv[0], "fh", 0, TWO53, &fh) || !get_int(env, argv[1], "openFlags", 0, 15, &flags)) return false;
  o->fh = (uint64_t) fh;
  uint32_t f = (uint32_t) flags;
  o->open_flags = (f & 1 ? FOPEN_DIRECT_IO : 0) | (f & 2 ? FOPEN_KEEP_CACHE : 0) | (f & 4 ? FOPEN_NONSEEKABLE : 0) |
                  (f & 8 ? FOPEN_CACHE_DIR : 0);
  return true;
}

static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  struct { struct fuse_entry_out e; struct fuse_open_out o; } out;
  REPLY_ARGS(6, "replyCreate");
  if (!get_pending(env, argv[0], "replyCreate", BIT(FUSE_CREATE), &p) || !get_entry(env, argv + 1, &p, &out.e) ||
      !get_open(env, argv + 4, &out.o)) return NULL;
  struct iovec body[2] = { { &out.e, sizeof out.e }, { &out.o, sizeof out.o } };
  return send_reply(env, &p, 0, body, 2);
}

static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  const double *a;
  double at;
  struct fuse_attr_out out;
  REPLY_ARGS(3, "replyAttr");
  if (!get_pending(env, argv[0], "replyAttr", BIT(FUSE_GETATTR) | BIT(FUSE_SETATTR), &p) ||
      !get_doubles(env, argv[1], "attr", A_LEN, &a, NULL) || !get_number(env, argv[2], "attrTimeoutS", &at)) return NULL;
  memset(&out, 0, sizeof out);
  fill_attr(&out.attr, a);
  uint64_t sec;
  timeout(at, &sec, &out.attr_valid_nsec);
  out.attr_valid = sec;
  struct iovec body = { &out, sizeof out };
  return send_reply(env, &p, 0, &body, 1);
}

static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  struct fuse_open_out o;
  REPLY_ARGS(3, "replyOpen");
  if (!get_pending(env, argv[0], "replyOpen", BIT(FUSE_OPEN) | BIT(FUSE_OPENDIR), &p) || !get_open(env, argv + 1, &o))
    return NULL;
  struct iovec body = { &o, sizeof o };
  return send_reply(env, &p, 0, &body, 1);
}

static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  napi_valuetype t;
  const char *data = "";
  size_t have = 0;
  double length;
  REPLY_ARGS(3, "replyBuf");
  uint64_t ops = BIT(FUSE_READ) | BIT(FUSE_READLINK) | BIT(FUSE_GETXATTR) | BIT(FUSE_LISTXATTR);
  if (!get_pending(env, argv[0], "replyBuf", ops, &p)) return NULL;
  NAPI(napi_typeof(env, argv[1], &t));
  if (t != napi_null && !get_bytes(env, argv[1], "data", &data, &have)) return NULL;
  if (!get_int(env, argv[2], "length", 0, (double) have, &length)) return NULL;
  if ((p.op == FUSE_GETXATTR || p.op == FUSE_LISTXATTR) && p.size == 0)
    return throw_type(env, "replyBuf: the kernel asked for the size only (size 0): use replyXattrSize");
  if (length > p.size)
    return throw_type(env, "replyBuf: %.0f bytes exceed the %u the kernel asked for (%s)", length, p.size, op_name(p.op));
  struct iovec body = { (void *) data, (size_t) length };
  return send_reply(env, &p, 0, &body, 1);
}

static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  double count;
  REPLY_ARGS(2, "replyWrite");
  if (!get_pending(env, argv[0], "replyWrite", BIT(FUSE_WRITE), &p)) return NULL;
  if (!get_int(env, argv[1], "count", 0, p.size, &count)) return NULL; /* more than was sent: the kernel says EIO */
  struct fuse_write_out out = { (uint32_t) count, 0 };
  struct iovec body = { &out, sizeof out };
  return send_reply(env, &p, 0, &body, 1);
}

static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  const double *s;
  struct fuse_statfs_out out;
  REPLY_ARGS(2, "replyStatfs");
  if (!get_pending(env, argv[0], "replyStatfs", BIT(FUSE_STATFS), &p) ||
      !get_doubles(env, argv[1], "statfs", S_LEN, &s, NULL)) return NULL;
  memset(&out, 0, sizeof out);
  out.st.bsize = to_u32(s[S_BSIZE]);
  out.st.frsize = to_u32(s[S_FRSIZE]);
  out.st.blocks = to_u64(s[S_BLOCKS]);
  out.st.bfree = to_u64(s[S_BFREE]);
  out.st.bavail = to_u64(s[S_BAVAIL]);
  out.st.files = to_u64(s[S_FILES]);
  out.st.ffree = to_u64(s[S_FFREE]);
  out.st.namelen = to_u32(s[S_NAMEMAX]);
  struct iovec body = { &out, sizeof out };
  return send_reply(env, &p, 0, &body, 1);
}

static napi_value js_reply_xattr_size(napi_env env, napi_callback_info info) {
  double size;
  REPLY_ARGS(2, "replyXattrSize");
  if (!get_pending(env, argv[0], "replyXattrSize", BIT(FUSE_GETXATTR) | BIT(FUSE_LISTXATTR), &p) ||
      !get_int(env, argv[1], "size", 0, 4294967295.0, &size)) return NULL;
  if (p.size != 0) return throw_type(env, "replyXattrSize: the kernel asked for the data (size %u): use replyBuf", p.size);
  struct fuse_getxattr_out out = { (uint32_t) size, 0 };
  struct iovec body = { &out, sizeof out };
  return send_reply(env, &p, 0, &body, 1);
}

/*
 * READDIR and READDIRPLUS: packs entries while they fit in min(size, what the kernel asked for),
 * replies (nothing packed: the end of the directory) and returns how many it packed. A bad entry
 * throws before anything is written.
 */
static napi_value reply_dir(napi_env env, napi_callback_info info, bool plus) {
  const char *fn = plus ? "replyDirPlus" : "replyDir";
  double size;
  uint32_t n, k;
  numlist_t inos, modes, offsets, dinos;
  const double *attrs = NULL;
  size_t nattrs = 0;
  double et = 0, at = 0;
  napi_value names, result;
  size_t argc = 8;
  napi_value argv[8] = { NULL };
  pending_t p;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < (plus ? 7u : 6u)) return throw_type(env, "%s takes %d arguments", fn, plus ? 7 : 6);
  if (!get_pending(env, argv[0], fn, BIT(plus ? FUSE_READDIRPLUS : FUSE_READDIR), &p) ||
      !get_int(env, argv[1], "size", 0, 4294967295.0, &size)) return NULL;
  names = argv[2];
  bool is;
  NAPI(napi_is_array(env, names, &is));
  if (!is) return throw_type(env, "%s: names must be an array of Buffers", fn);
  NAPI(napi_get_array_length(env, names, &n));
  if (plus) {
    if (!get_doubles(env, argv[3], "attrs", 0, &attrs, &nattrs) || !get_numlist(env, argv[4], "offsets", &offsets) ||
        !get_number(env, argv[5], "entryTimeoutS", &et) || !get_number(env, argv[6], "attrTimeoutS", &at)) return NULL;
    napi_valuetype t = napi_undefined;
    if (argv[7]) NAPI(napi_typeof(env, argv[7], &t));
    dinos.len = 0;
    if (t != napi_undefined && !get_numlist(env, argv[7], "dInos", &dinos)) return NULL;
    if (nattrs < (size_t) n * A_LEN || offsets.len < n || (t != napi_undefined && dinos.len < n))
      return throw_type(env, "%s: attrs (n x ATTR_LENGTH), offsets and dInos must cover every name", fn);
  } else {
    if (!get_numlist(env, argv[3], "inos", &inos) || !get_numlist(env, argv[4], "modes", &modes) ||
        !get_numlist(env, argv[5], "offsets", &offsets)) return NULL;
    if (inos.len < n || modes.len < n || offsets.len < n)
      return throw_type(env, "%s: inos, modes and offsets must be as long as names", fn);
    dinos.len = 0;
  }
  size_t cap = size < p.size ? (size_t) size : p.size, pos = 0;
  char *buf = malloc(cap ? cap : 1);
  if (!buf) return throw_nomem(env);
  for (k = 0; k < n; k++) {
    napi_value v;
    const char *name;
    size_t len;
    double off, ino = 0, mode = 0;
    char what[40];
    snprintf(what, sizeof what, "names[%u]", k);
    if (napi_get_element(env, names, k, &v) != napi_ok) { throw_status(env, "napi_get_element"); goto fail; }
    if (!get_name(env, v, what, &name, &len) || !numlist_at(env, &offsets, k, "offsets", &off)) goto fail;
    size_t head = plus ? sizeof(struct fuse_direntplus) : sizeof(struct fuse_dirent);
    size_t reclen = FUSE_DIRENT_ALIGN(head + len);
    if (reclen > cap - pos) break;
    char *rec = buf + pos;
    memset(rec, 0, reclen);
    struct fuse_dirent *d;
    if (plus) {
      struct fuse_direntplus *dp = (struct fuse_direntplus *) rec;
      const double *a = attrs + (size_t) k * A_LEN;
      fill_attr(&dp->entry_out.attr, a);
      /* nodeid 0: "no entry for this name", which the kernel neither caches nor counts as a lookup. */
      dp->entry_out.nodeid = dp->entry_out.attr.ino;
      timeout(et, &dp->entry_out.entry_valid, &dp->entry_out.entry_valid_nsec);
      timeout(at, &dp->entry_out.attr_valid, &dp->entry_out.attr_valid_nsec);
      ino = a[A_INO];
      mode = a[A_MODE];
      if (ino == 0 && dinos.len && !numlist_at(env, &dinos, k, "dInos", &ino)) goto fail;
      d = &dp->dirent;
    } else {
      if (!numlist_at(env, &inos, k, "inos", &ino) || !numlist_at(env, &modes, k, "modes", &mode)) goto fail;
      d = (struct fuse_dirent *) rec;
    }
    d->ino = to_u64(ino);
    d->off = to_u64(off);
    d->namelen = (uint32_t) len;
    d->type = (to_u32(mode) & S_IFMT) >> 12;
    memcpy(d->name, name, len);
    pos += reclen;
  }
  struct iovec body = { buf, pos };
  send_reply(env, &p, 0, &body, 1);
  free(buf);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
  NAPI(napi_create_uint32(env, k, &result));
  return result;
fail:
  free(buf);
  return NULL;
}

static napi_value js_reply_dir(napi_env env, napi_callback_info info) { return reply_dir(env, info, false); }
static napi_value js_reply_dir_plus(napi_env env, napi_callback_info info) { return reply_dir(env, info, true); }

/* ---- notifications (JS thread side) --------------------------------------------------------- */

static napi_value resolved(napi_env env, int err) {
  napi_deferred d;
  napi_value promise, v;
  NAPI(napi_create_promise(env, &d, &promise));
  NAPI(napi_create_int32(env, err, &v));
  NAPI(napi_resolve_deferred(env, d, v));
  return promise;
}

static bool start_notifier(napi_env env, state_t *st) {
  notifier_t *nf = calloc(1, sizeof *nf);
  if (!nf) return throw_nomem(env), false;
  nf->fd = fcntl(st->fd, F_DUPFD_CLOEXEC, 0);
  if (nf->fd < 0) {
    free(nf);
    return throw_error(env, NULL, "fragfs-fuse: dup of /dev/fuse: %s", strerror(errno)), false;
  }
  pthread_mutex_init(&nf->lock, NULL);
  pthread_cond_init(&nf->cond, NULL);
  nf->st = st;
  nf->refs = 2;
  pthread_attr_t attr;
  pthread_t t;
  sigset_t all, old;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED); /* release() never waits for it */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&t, &attr, notifier_main, nf);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc) {
    close(nf->fd);
    pthread_cond_destroy(&nf->cond);
    pthread_mutex_destroy(&nf->lock);
    free(nf);
    return throw_error(env, NULL, "fragfs-fuse: cannot start the notifier thread: %s", strerror(rc)), false;
  }
  st->notifier = nf;
  return true;
}

/* Queues a built message (header filled here) and returns the promise of its errno. */
static napi_value queue_note(napi_env env, state_t *st, int code, const void *body, size_t blen, const char *name,
                             size_t nlen, bool nul) {
  napi_value promise;
  size_t len = sizeof(struct fuse_out_header) + blen + (name ? nlen + (nul ? 1 : 0) : 0);
  note_t *n = malloc(sizeof *n + len);
  rec_t *r = n ? rec_new(REC_NOTE, 0, NULL, 0) : NULL;
  if (!r) {
    free(n);
    return throw_nomem(env);
  }
  if (!st->notifier && !start_notifier(env, st)) {
    free(r);
    free(n);
    return NULL;
  }
  if (napi_create_promise(env, &n->deferred, &promise) != napi_ok) {
    free(r);
    free(n);
    throw_status(env, "napi_create_promise");
    return NULL;
  }
  struct fuse_out_header oh = { (uint32_t) len, code, 0 };
  memcpy(n->msg, &oh, sizeof oh);
  memcpy(n->msg + sizeof oh, body, blen);
  if (name) {
    memcpy(n->msg + sizeof oh + blen, name, nlen);
    if (nul) n->msg[sizeof oh + blen + nlen] = 0;
  }
  n->len = len;
  n->next = NULL;
  n->err = 0;
  n->rec = r;
  r->note = n;
  notifier_t *nf = st->notifier;
  pthread_mutex_lock(&nf->lock);
  if (nf->tail) nf->tail->next = n; else nf->head = n;
  nf->tail = n;
  pthread_cond_signal(&nf->cond);
  pthread_mutex_unlock(&nf->lock);
  return promise;
}

static napi_value js_notify_inval_inode(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4] = { NULL };
  double ino, off, len;
  bool released;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "notifyInvalInode(handle, ino, offset, length) takes 4 arguments");
  state_t *st = get_handle(env, argv[0], "notifyInvalInode", &released);
  if (!st && !released) return NULL;
  if (!get_int(env, argv[1], "ino", 1, TWO53, &ino) || !get_int(env, argv[2], "offset", -TWO53, TWO53, &off) ||
      !get_int(env, argv[3], "length", -TWO53, TWO53, &len)) return NULL;
  if (!st) return resolved(env, ENOTCONN);
  struct fuse_notify_inval_inode_out out = { (uint64_t) ino, (int64_t) off, (int64_t) len };
  return queue_note(env, st, FUSE_NOTIFY_INVAL_INODE, &out, sizeof out, NULL, 0, false);
}

static napi_value js_notify_inval_entry(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = { NULL };
  double parent;
  const char *name;
  size_t len;
  bool released;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "notifyInvalEntry(handle, parent, name) takes 3 arguments");
  state_t *st = get_handle(env, argv[0], "notifyInvalEntry", &released);
  if (!st && !released) return NULL;
  if (!get_int(env, argv[1], "parent", 1, TWO53, &parent) || !get_name(env, argv[2], "name", &name, &len)) return NULL;
  if (!st) return resolved(env, ENOTCONN);
  struct fuse_notify_inval_entry_out out = { (uint64_t) parent, (uint32_t) len, 0 };
  return queue_note(env, st, FUSE_NOTIFY_INVAL_ENTRY, &out, sizeof out, name, len, true);
}

/*
 * notifyStore(handle, ino, offset, data): copies data into the kernel's page cache of inode ino at
 * offset (FUSE_NOTIFY_STORE). The kernel overwrites the pages whatever they hold and grows its idea of
 * the file's size to offset + length: the caller MUST know no newer bytes can be there (see
 * kernel-adapter.ts). The bytes are copied here, so the Buffer may be reused at once.
 */
#define NOTIFY_STORE_MAX (4 << 20)
static napi_value js_notify_store(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4] = { NULL };
  double ino, off;
  const char *data;
  size_t len;
  bool released;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "notifyStore(handle, ino, offset, data) takes 4 arguments");
  state_t *st = get_handle(env, argv[0], "notifyStore", &released);
  if (!st && !released) return NULL;
  if (!get_int(env, argv[1], "ino", 1, TWO53, &ino) || !get_int(env, argv[2], "offset", 0, TWO53, &off) ||
      !get_bytes(env, argv[3], "data", &data, &len)) return NULL;
  if (len == 0 || len > NOTIFY_STORE_MAX) return throw_type(env, "data must be 1..%d bytes", NOTIFY_STORE_MAX);
  if (!st) return resolved(env, ENOTCONN);
  struct fuse_notify_store_out out = { (uint64_t) ino, (uint64_t) off, (uint32_t) len, 0 };
  return queue_note(env, st, FUSE_NOTIFY_STORE, &out, sizeof out, data, len, false);
}

/*
 * releasePayload(data): JS is done with a WRITE's data. Detaching its ArrayBuffer frees the read
 * buffer at once (free_payload) and leaves every view of it empty, so a view kept by mistake reads
 * nothing rather than freed memory. Only a buffer that is a whole ArrayBuffer is detached (never a
 * slice of a shared pool); anything else is left to the collector. Returns whether it detached.
 */
static napi_value js_release_payload(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ab, out;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_typed = false, done = false;
  if (argc >= 1) NAPI(napi_is_typedarray(env, argv[0], &is_typed));
  if (is_typed) {
    napi_typedarray_type type;
    size_t len, off, ab_len;
    void *data, *ab_data;
    NAPI(napi_get_typedarray_info(env, argv[0], &type, &len, &data, &ab, &off));
    NAPI(napi_get_arraybuffer_info(env, ab, &ab_data, &ab_len));
    bool detachable = type == napi_uint8_array && off == 0 && len == ab_len && len > 0;
    if (detachable) done = napi_detach_arraybuffer(env, ab) == napi_ok;
  }
  NAPI(napi_get_boolean(env, done, &out));
  return out;
}

/* trimMemory(): hands free malloc pages of every arena back to the system (malloc_trim(0)). */
static napi_value js_trim_memory(napi_env env, napi_callback_info info) {
  (void) info;
  napi_value out;
  NAPI(napi_get_boolean(env, malloc_trim(0) != 0, &out));
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
#define FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL }
    FN("mount", js_mount), FN("release", js_release), FN("info", js_info), FN("opcodes", js_opcodes),
    FN("replyErr", js_reply_err), FN("replyEntry", js_reply_entry), FN("replyCreate", js_reply_create),
    FN("replyAttr", js_reply_attr), FN("replyOpen", js_reply_open), FN("replyBuf", js_reply_buf),
    FN("replyWrite", js_reply_write), FN("replyStatfs", js_reply_statfs), FN("replyXattrSize", js_reply_xattr_size),
    FN("replyDir", js_reply_dir), FN("replyDirPlus", js_reply_dir_plus),
    FN("notifyInvalInode", js_notify_inval_inode), FN("notifyInvalEntry", js_notify_inval_entry),
    FN("notifyStore", js_notify_store), FN("trimMemory", js_trim_memory),
    FN("releasePayload", js_release_payload),
#undef FN
  };
  NAPI(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
