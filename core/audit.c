/*
 * audit.c: the audit log writer with group commit. One writer per path keeps
 * the file open (O_APPEND) and owns one worker thread. A task appending a
 * line queues it and yields; the worker takes everything queued, writes it
 * with writev, makes the batch durable with one fdatasync, and signals the
 * loop through an eventfd; the loop side then completes every waiting task
 * (mpic_pending_complete). Being the only writer of its file, the worker
 * writes lines whole and in queue order, so they never interleave or tear; a
 * batch whose write fails is cut back off the file and every append in it
 * fails. The worker reopens the path when the file was renamed or removed
 * (log rotation).
 *
 * The chain (docs/EVIDENCE.md): the writer turns each line `{...}` into
 * `{"prev":"<hex SHA-256 of the previous line>","seq":N,...}` as it writes
 * it, in file order, so that removing, inserting, reordering or editing a
 * line breaks the chain at the next one. The first line of a new log has
 * prev = 64 zeros and seq 1; a writer opening an existing log continues from
 * its last line (a log ending in a partial line is refused), and a rotated
 * log's new file continues from the last hash of the old one (the head stays
 * in memory across the reopen). The head is the worker's: a failed batch
 * puts it back. One writer per file and per process: two processes appending
 * to one file would fork the chain (several workers need one file each).
 * A checkpoint is a line the writer makes itself: {"prev","seq","checkpoint":
 * {"head","key_id","lines","time"},"signature"}, signed (Ed25519, the key of
 * writer:set_key) over the canonical bytes of the checkpoint object.
 *
 * Provides the Lua module "mpic.core.audit":
 *   open(path [, fsync]) -> writer | nil, "internal", detail
 *   writer:append(line) -> true | nil, "internal", detail  (yields until the
 *       line is written and, when fsync, on disk; must run in a task)
 *       line must be a JSON object with at least one member ('{"...').
 *   writer:set_key(key [, seal_ms]) (a private key of mpic.core.sign) for
 *       checkpoints; with seal_ms >= 0 every batch is sealed: the worker
 *       writes a checkpoint right after the batch's last line, in the same
 *       write, before any line of it is handed back, and under load it waits
 *       until seal_ms have passed since the previous seal before writing, so
 *       that one signature covers every line queued meanwhile. -1: no seals.
 *   writer:checkpoint() -> true | nil, "internal", detail (as append)
 *   writer:head() -> hex head hash, seq of the last line written
 *   writer:append_blocking(line), writer:checkpoint_blocking(): the same,
 *       for code outside any task: the caller blocks instead of yielding
 * Uses: pthreads, eventfd, libevent (the loop of rt.h), task suspension,
 * OpenSSL (SHA-256; Ed25519 through sign.h).
 */
#include "audit.h"
#include "encode.h"
#include "errors.h"
#include "rt.h"
#include "sign.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define WRITER_MT "mpic.audit.writer"
#define BATCH_IOV 256
#define CHAIN_ROOM 128              /* room before a line for its chain prefix */
#define CHECKPOINT_BYTES 512        /* a checkpoint line, whole */
#define TAIL_MAX (16 * 1024 * 1024) /* the longest last line read at open */

struct audit_writer;

struct audit_req {
    struct mpic_pending p;
    struct audit_writer *w;
    struct audit_req *next;
    int err;          /* errno of the failed step, 0 once durable */
    const char *what; /* the failed step: "open", "write", "fsync" */
    int orphaned;     /* the task was cancelled: the loop side frees it */
    int blocking;     /* appended outside any task: the caller waits on done_cv */
    int finished;     /* (blocking) the worker is done with it; under mu */
    int checkpoint;   /* a checkpoint: the worker makes the whole line */
    size_t len;       /* the final line and its '\n' (once chained) */
    char *line;       /* the final line, inside buf */
    size_t in_len;    /* the caller's line and its '\n', at buf + CHAIN_ROOM */
    char buf[];
};

struct chain_key {
    EVP_PKEY *key;
    char id[65];
    struct chain_key *older; /* kept: the worker may still sign with one */
};

struct audit_writer {
    char *path;
    int fd, fsync, efd;
    dev_t dev;
    ino_t ino;
    struct event *ev;
    int ev_added, started;
    long inflight; /* queued and not yet handed back (loop thread only) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t done_cv;            /* a blocking append's batch is done */
    struct audit_req *q_head, *q_tail; /* for the worker */
    struct audit_req *d_head, *d_tail; /* finished, for the loop */
    unsigned char head[32];            /* hash of the last line (worker's) */
    unsigned long long seq;            /* seq of the last line (worker's) */
    unsigned char pub_head[32];        /* a copy for writer:head(), under mu */
    unsigned long long pub_seq;
    struct chain_key *key; /* signs checkpoints; under mu */
    int seal_ms;           /* -1: no seals; else seal batches, at most one per seal_ms; under mu */
    struct timespec last_seal; /* (worker's) */
    struct audit_req *seal;    /* the seal checkpoint, reused (worker's) */
    struct audit_writer *next;
};

static void hex32(const unsigned char *h, char out[65])
{
    static const char hexd[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hexd[h[i] >> 4];
        out[2 * i + 1] = hexd[h[i] & 15];
    }
    out[64] = '\0';
}

/* The seq of a chained line (its fixed prefix), or 0. */
static unsigned long long line_seq(const char *s, size_t n)
{
    static const char a[] = "{\"prev\":\"", b[] = "\",\"seq\":";
    if (n < 9 + 64 + 8 + 2 || memcmp(s, a, 9) != 0 || memcmp(s + 73, b, 8) != 0)
        return 0;
    for (int i = 9; i < 73; i++)
        if (!strchr("0123456789abcdef", s[i]) || !s[i])
            return 0;
    unsigned long long v = 0;
    size_t i = 81;
    for (; i < n && i < 81 + 19 && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (unsigned long long)(s[i] - '0');
    return i < n && s[i] == ',' ? v : 0;
}

/* Continue the chain of the log already in w->path: its last line's hash
 * and seq. Returns 0, or -1 with why. */
static int load_head(struct audit_writer *w, char *why, size_t whylen)
{
    memset(w->head, 0, sizeof w->head);
    w->seq = 0;
    int fd = open(w->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "read %s: %s", w->path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    char buf[65536];
    EVP_MD_CTX *md = NULL;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "stat %s: %s", w->path, strerror(errno));
        goto out;
    }
    off_t end = st.st_size;
    if (end == 0) {
        rc = 0;
        goto out;
    }
    if (pread(fd, buf, 1, end - 1) != 1 || buf[0] != '\n') {
        snprintf(why, whylen, "%s ends with a partial line: repair the log before appending to it",
                 w->path);
        goto out;
    }
    off_t stop = end - 1, scan = stop, start = 0;
    while (scan > 0) {
        size_t chunk = scan > (off_t)sizeof buf ? sizeof buf : (size_t)scan;
        off_t from = scan - (off_t)chunk;
        if (pread(fd, buf, chunk, from) != (ssize_t)chunk) {
            snprintf(why, whylen, "read %s: %s", w->path, strerror(errno));
            goto out;
        }
        size_t i = chunk;
        while (i > 0 && buf[i - 1] != '\n')
            i--;
        if (i > 0) {
            start = from + (off_t)i;
            break;
        }
        scan = from;
        if (stop - scan > TAIL_MAX) {
            snprintf(why, whylen, "%s: the last line is longer than %d bytes", w->path, TAIL_MAX);
            goto out;
        }
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        snprintf(why, whylen, "sha256: out of memory");
        goto out;
    }
    for (off_t pos = start; pos < stop;) {
        size_t chunk = stop - pos > (off_t)sizeof buf ? sizeof buf : (size_t)(stop - pos);
        if (pread(fd, buf, chunk, pos) != (ssize_t)chunk) {
            snprintf(why, whylen, "read %s: %s", w->path, strerror(errno));
            goto out;
        }
        if (pos == start)
            w->seq = line_seq(buf, chunk);
        EVP_DigestUpdate(md, buf, chunk);
        pos += (off_t)chunk;
    }
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(md, w->head, &len) != 1 || len != 32) {
        snprintf(why, whylen, "sha256 failed");
        goto out;
    }
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    close(fd);
    memcpy(w->pub_head, w->head, sizeof w->head);
    w->pub_seq = w->seq;
    return rc;
}

/* Make r's final line: the chain prefix before the caller's line, or a
 * whole signed checkpoint; then advance the head. Returns 0, or -1 (no key,
 * signing failed). Runs on the worker, or on the loop before it started. */
static int chain_line(struct audit_writer *w, struct audit_req *r)
{
    char prev[65];
    hex32(w->head, prev);
    unsigned long long seq = w->seq + 1;
    if (r->checkpoint) {
        pthread_mutex_lock(&w->mu);
        struct chain_key *k = w->key;
        pthread_mutex_unlock(&w->mu);
        if (!k)
            return -1;
        char t[32], body[256], sig64[100];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int bn = snprintf(body, sizeof body,
                          "{\"head\":\"%s\",\"key_id\":\"%s\",\"lines\":%llu,\"time\":\"%s\"}",
                          prev, k->id, w->seq, t);
        unsigned char sig[64];
        if (bn <= 0 || bn >= (int)sizeof body ||
            mpic_sign_raw(k->key, (unsigned char *)body, (size_t)bn, sig) != 0)
            return -1;
        size_t sn = mpic_base64(sig, sizeof sig, sig64, 0);
        sig64[sn] = '\0';
        int n = snprintf(r->buf, CHECKPOINT_BYTES,
                         "{\"prev\":\"%s\",\"seq\":%llu,\"checkpoint\":%s,\"signature\":\"%s\"}\n",
                         prev, seq, body, sig64);
        if (n <= 0 || n >= CHECKPOINT_BYTES)
            return -1;
        r->line = r->buf;
        r->len = (size_t)n;
    } else {
        char pre[CHAIN_ROOM];
        int pn = snprintf(pre, sizeof pre, "{\"prev\":\"%s\",\"seq\":%llu,", prev, seq);
        if (pn <= 0 || pn > CHAIN_ROOM)
            return -1;
        /* the prefix ends where the caller's '{' was */
        r->line = r->buf + CHAIN_ROOM + 1 - pn;
        memcpy(r->line, pre, (size_t)pn);
        r->len = (size_t)pn + r->in_len - 1;
    }
    if (mpic_sha256(r->line, r->len - 1, w->head) != 0)
        return -1;
    w->seq = seq;
    return 0;
}

static void publish_head(struct audit_writer *w)
{
    pthread_mutex_lock(&w->mu);
    memcpy(w->pub_head, w->head, sizeof w->head);
    w->pub_seq = w->seq;
    pthread_mutex_unlock(&w->mu);
}

/* Writers live as long as the process (a handful of paths at most). */
static struct audit_writer *writers;

static int open_log(struct audit_writer *w)
{
    int fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->dev = st.st_dev;
    w->ino = st.st_ino;
    return 0;
}

/* Worker: reopen when the path no longer names the open file. */
static int check_rotation(struct audit_writer *w)
{
    struct stat st;
    if (w->fd >= 0 && stat(w->path, &st) == 0 && st.st_dev == w->dev && st.st_ino == w->ino)
        return 0;
    return open_log(w);
}

/* Worker: write the batch, then sync it. On failure, sets *err and *what
 * and cuts what this batch wrote back off the file when nothing else
 * wrote to it meanwhile. */
/* The seal of a batch: a checkpoint written after its last line, in the
 * same write, so that no line of the batch is handed back before a signed
 * checkpoint covers it. NULL when the batch needs none (it ends with a
 * checkpoint already) or on allocation failure (then *err is set). */
static struct audit_req *seal_for(struct audit_writer *w, struct audit_req *tail, int *err)
{
    if (tail->checkpoint)
        return NULL;
    if (!w->seal && !(w->seal = malloc(sizeof *w->seal + CHECKPOINT_BYTES))) {
        *err = ENOMEM;
        return NULL;
    }
    memset(w->seal, 0, sizeof *w->seal);
    w->seal->checkpoint = 1;
    return w->seal;
}

static void write_batch(struct audit_writer *w, int fsync, int seal, struct audit_req *r, int *err,
                        const char **what)
{
    int rc = check_rotation(w);
    if (rc < 0) {
        *err = -rc;
        *what = "open";
        return;
    }
    unsigned char head0[32];
    unsigned long long seq0 = w->seq;
    memcpy(head0, w->head, sizeof head0);
    struct audit_req *tail = r, *sealer = NULL;
    while (tail->next)
        tail = tail->next;
    if (seal && !(sealer = seal_for(w, tail, err)) && *err) {
        *what = "seal";
        return;
    }
    tail->next = sealer; /* unlinked again below: the seal is the writer's */
    for (struct audit_req *s = r; s; s = s->next) {
        if (chain_line(w, s) != 0) {
            tail->next = NULL;
            memcpy(w->head, head0, sizeof head0);
            w->seq = seq0;
            *err = EINVAL;
            *what = s->checkpoint ? "checkpoint (no key, or signing failed)" : "chain";
            return;
        }
    }
    off_t start = lseek(w->fd, 0, SEEK_END);
    size_t written = 0, r_off = 0;
    struct iovec iov[BATCH_IOV];
    while (r) {
        int n = 0;
        size_t off = r_off;
        for (struct audit_req *s = r; s && n < BATCH_IOV; s = s->next, off = 0, n++) {
            iov[n].iov_base = s->line + off;
            iov[n].iov_len = s->len - off;
        }
        ssize_t k = writev(w->fd, iov, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            *err = k < 0 ? errno : EIO;
            *what = "write";
            break;
        }
        written += (size_t)k;
        size_t left = (size_t)k;
        while (r && left >= r->len - r_off) {
            left -= r->len - r_off;
            r = r->next;
            r_off = 0;
        }
        if (r)
            r_off += left;
    }
    if (!*err && fsync && fdatasync(w->fd) != 0) {
        *err = errno;
        *what = "fsync";
    }
    if (*err && written > 0 && start >= 0) {
        struct stat st;
        if (fstat(w->fd, &st) == 0 && st.st_size == start + (off_t)written) {
            if (ftruncate(w->fd, start) != 0) {
                /* the appends fail anyway; a partial line may remain */
            }
        }
    }
    tail->next = NULL;
    if (*err) { /* none of the batch counts: the chain goes on from before it */
        memcpy(w->head, head0, sizeof head0);
        w->seq = seq0;
    } else if (sealer) {
        clock_gettime(CLOCK_MONOTONIC, &w->last_seal);
    }
    publish_head(w);
}

/* Milliseconds from t to now (monotonic). */
static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void *worker_main(void *arg)
{
    struct audit_writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->q_head)
            pthread_cond_wait(&w->cv, &w->mu);
        int fsync = w->fsync, seal_ms = w->seal_ms;
        long wait_ms = seal_ms > 0 ? seal_ms - ms_since(&w->last_seal) : 0;
        if (wait_ms > 0) {
            /* under load: gather lines until a seal is due, so that one
             * signature covers the whole batch (at most one per seal_ms) */
            pthread_mutex_unlock(&w->mu);
            struct timespec d = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
            while (nanosleep(&d, &d) != 0 && errno == EINTR)
                ;
            pthread_mutex_lock(&w->mu);
        }
        struct audit_req *batch = w->q_head, *tail = w->q_tail;
        w->q_head = w->q_tail = NULL;
        pthread_mutex_unlock(&w->mu);

        int err = 0;
        const char *what = NULL;
        write_batch(w, fsync, seal_ms >= 0, batch, &err, &what);
        int any_blocking = 0;
        pthread_mutex_lock(&w->mu);
        for (struct audit_req *r = batch; r; r = r->next) {
            r->err = err;
            r->what = what;
            if (r->blocking) {
                r->finished = 1;
                any_blocking = 1;
            }
        }
        if (any_blocking)
            pthread_cond_broadcast(&w->done_cv);
        if (w->d_tail)
            w->d_tail->next = batch;
        else
            w->d_head = batch;
        w->d_tail = tail;
        pthread_mutex_unlock(&w->mu);
        uint64_t one = 1;
        while (write(w->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    return NULL;
}

/* Loop side: hand finished appends back to their tasks. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct audit_writer *w = arg;
    uint64_t v;
    (void)what;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&w->mu);
    struct audit_req *r = w->d_head;
    w->d_head = w->d_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (r) {
        struct audit_req *next = r->next;
        r->next = NULL;
        w->inflight--;
        if (r->orphaned)
            free(r);
        else
            mpic_pending_complete(&r->p);
        r = next;
    }
    /* no event while idle: an idle writer must not keep the loop alive */
    if (w->inflight == 0 && w->ev_added) {
        event_del(w->ev);
        w->ev_added = 0;
    }
}

static int start_worker(struct audit_writer *w)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the loop thread */
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pthread_detach(w->thread);
    w->started = 1;
    return 0;
}

static struct audit_writer *writer_new(const char *path, int fsync, int *err, char *why,
                                       size_t whylen)
{
    struct audit_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        *err = ENOMEM;
        return NULL;
    }
    w->fd = w->efd = -1;
    w->fsync = fsync;
    w->seal_ms = -1;
    int rc = open_log(w);
    if (rc == 0 && load_head(w, why, whylen) != 0)
        rc = -EINVAL;
    if (rc == 0) {
        w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        rc = w->efd < 0 ? -errno : 0;
    }
    if (rc == 0) {
        w->ev = event_new(mpic_loop(), w->efd, EV_READ | EV_PERSIST, on_done, w);
        rc = w->ev ? 0 : -ENOMEM;
    }
    if (rc == 0 && (pthread_mutex_init(&w->mu, NULL) != 0 || pthread_cond_init(&w->cv, NULL) != 0 ||
                    pthread_cond_init(&w->done_cv, NULL) != 0))
        rc = -ENOMEM;
    if (rc < 0) {
        if (w->ev)
            event_free(w->ev);
        if (w->efd >= 0)
            close(w->efd);
        if (w->fd >= 0)
            close(w->fd);
        free(w->path);
        free(w);
        *err = -rc;
        return NULL;
    }
    w->next = writers;
    writers = w;
    return w;
}

/* audit.open(path [, fsync]) -> writer (one per path; fsync once asked
 * for a path stays on) | nil, "internal", detail */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fsync = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    struct audit_writer *w = writers;
    while (w && strcmp(w->path, path) != 0)
        w = w->next;
    if (w) {
        if (fsync && !w->fsync) {
            pthread_mutex_lock(&w->mu);
            w->fsync = 1;
            pthread_mutex_unlock(&w->mu);
        }
    } else {
        int err = 0;
        char why[512] = "";
        w = writer_new(path, fsync, &err, why, sizeof why);
        if (!w && why[0])
            return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "%s", why);
        if (!w)
            return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "open %s: %s", path,
                                  strerror(err));
    }
    struct audit_writer **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = w;
    luaL_setmetatable(L, WRITER_MT);
    return 1;
}

static void req_cancel(void *arg)
{
    struct audit_req *r = arg;
    if (r->p.done)
        free(r); /* already handed back: in no list any more */
    else
        r->orphaned = 1; /* still with the worker: on_done frees it */
}

static int k_append(lua_State *L, int status, lua_KContext ctx)
{
    struct audit_req *r = (struct audit_req *)ctx;
    (void)status;
    if (r->err) {
        int n = mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "%s %s: %s", r->what, r->w->path,
                               strerror(r->err));
        free(r);
        return n;
    }
    free(r);
    lua_pushboolean(L, 1);
    return 1;
}

/* A request for line (n bytes, no newline), or a checkpoint when line is
 * NULL; NULL when out of memory. */
static struct audit_req *req_new(struct audit_writer *w, const char *line, size_t n)
{
    size_t cap = line ? CHAIN_ROOM + n + 1 : CHECKPOINT_BYTES;
    struct audit_req *r = malloc(sizeof *r + cap);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->w = w;
    if (line) {
        memcpy(r->buf + CHAIN_ROOM, line, n);
        r->buf[CHAIN_ROOM + n] = '\n';
        r->in_len = n + 1;
    } else {
        r->checkpoint = 1;
    }
    return r;
}

/* Read under mu: whether batches are sealed, whether a key is set. */
static int is_sealed(struct audit_writer *w)
{
    pthread_mutex_lock(&w->mu);
    int seal = w->seal_ms >= 0;
    pthread_mutex_unlock(&w->mu);
    return seal;
}

static int has_key(struct audit_writer *w)
{
    pthread_mutex_lock(&w->mu);
    int has = w->key != NULL;
    pthread_mutex_unlock(&w->mu);
    return has;
}

/* The request of writer:append*(line): the line checked (a JSON object with
 * members, no newline), copied; raises on misuse or out of memory. */
static struct audit_req *line_req(lua_State *L, struct audit_writer *w)
{
    size_t n;
    const char *line = luaL_checklstring(L, 2, &n);
    luaL_argcheck(L, !memchr(line, '\n', n), 2, "line must not contain a newline");
    luaL_argcheck(L, n >= 2 && line[0] == '{' && line[1] == '"', 2,
                  "line must be a JSON object with members");
    struct audit_req *r = req_new(w, line, n);
    if (!r)
        luaL_error(L, "out of memory");
    return r;
}

/* Without fsync there is nothing to group: the loop thread writes the line
 * itself (one write, O_APPEND) and the task does not yield. Used only while
 * the writer has never synced, so the worker never runs at the same time. */
static int append_direct(lua_State *L, struct audit_writer *w, struct audit_req *r)
{
    const char *what = "open";
    unsigned char head0[32];
    unsigned long long seq0 = w->seq;
    memcpy(head0, w->head, sizeof head0);
    int rc = check_rotation(w);
    if (rc == 0 && chain_line(w, r) != 0) {
        what = r->checkpoint ? "checkpoint (no key, or signing failed)" : "chain";
        rc = -EINVAL;
    } else if (rc == 0) {
        what = "write";
        ssize_t k;
        do
            k = write(w->fd, r->line, r->len);
        while (k < 0 && errno == EINTR);
        if (k == (ssize_t)r->len) {
            free(r);
            publish_head(w);
            lua_pushboolean(L, 1);
            return 1;
        }
        rc = k < 0 ? -errno : -EIO;
        if (k > 0) { /* cut what was written off again when it is the file's end */
            struct stat st;
            off_t end = lseek(w->fd, 0, SEEK_END);
            if (end >= k && fstat(w->fd, &st) == 0 && st.st_size == end &&
                ftruncate(w->fd, end - k) != 0) {
                /* the append fails anyway */
            }
        }
        memcpy(w->head, head0, sizeof head0);
        w->seq = seq0;
    }
    free(r);
    return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "%s %s: %s", what, w->path,
                          strerror(rc < 0 ? -rc : EIO));
}

/* Queue r for the writer thread, watching its eventfd first; returns with
 * w->mu held (the caller unlocks, or waits on done_cv), or -1 (mu not held)
 * when the eventfd cannot be watched. */
static int queue_for_writer(struct audit_writer *w, struct audit_req *r)
{
    if (!w->ev_added) {
        if (event_add(w->ev, NULL) != 0)
            return -1;
        w->ev_added = 1;
    }
    w->inflight++;
    pthread_mutex_lock(&w->mu);
    if (w->q_tail)
        w->q_tail->next = r;
    else
        w->q_head = r;
    w->q_tail = r;
    pthread_cond_signal(&w->cv);
    return 0;
}

static int enqueue(lua_State *L, struct audit_writer *w, struct mpic_task *t, struct audit_req *r)
{
    if (!w->started && !w->fsync && !is_sealed(w))
        return append_direct(L, w, r);
    if (!w->started) {
        int rc = start_worker(w);
        if (rc < 0) {
            free(r);
            return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "audit writer thread: %s",
                                  strerror(-rc));
        }
    }
    r->p.task = t;
    if (queue_for_writer(w, r) != 0) {
        free(r);
        return luaL_error(L, "audit: cannot watch the writer's eventfd");
    }
    pthread_mutex_unlock(&w->mu);
    return mpic_task_suspend(L, &r->p, req_cancel, r, k_append, (lua_KContext)r);
}

/* Outside any task (nothing to suspend): the same chained append, the
 * caller blocked until it is written (and synced when fsync). Before the
 * worker ever started, the loop thread writes it itself; after, the line
 * goes through the worker's queue, so that the chain keeps one writer. */
static int append_blocking(lua_State *L, struct audit_writer *w, struct audit_req *r)
{
    if (!w->started && is_sealed(w)) {
        int rc = start_worker(w);
        if (rc < 0) {
            free(r);
            return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "audit writer thread: %s",
                                  strerror(-rc));
        }
    }
    if (!w->started) {
        int n = append_direct(L, w, r); /* frees r */
        if (lua_toboolean(L, -n) && w->fsync && fdatasync(w->fd) != 0) {
            lua_pop(L, n);
            return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "fsync %s: %s", w->path,
                                  strerror(errno));
        }
        return n;
    }
    r->blocking = 1;
    /* the loop side hands r back (and frees it) once it runs */
    if (queue_for_writer(w, r) != 0) {
        free(r);
        return luaL_error(L, "audit: cannot watch the writer's eventfd");
    }
    while (!r->finished)
        pthread_cond_wait(&w->done_cv, &w->mu);
    int err = r->err;
    const char *what = r->what;
    r->orphaned = 1; /* on_done (this thread, later) frees it */
    pthread_mutex_unlock(&w->mu);
    if (err)
        return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "%s %s: %s", what, w->path,
                              strerror(err));
    lua_pushboolean(L, 1);
    return 1;
}

/* writer:append_blocking(line) / writer:checkpoint_blocking(): as append
 * and checkpoint, for code outside any task (no yield; blocks instead). */
static int l_append_blocking(lua_State *L)
{
    struct audit_writer *w = *(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT);
    return append_blocking(L, w, line_req(L, w));
}

static int l_checkpoint_blocking(lua_State *L)
{
    struct audit_writer *w = *(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT);
    if (!has_key(w))
        return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "checkpoint %s: no signing key",
                              w->path);
    struct audit_req *r = req_new(w, NULL, 0);
    if (!r)
        return luaL_error(L, "out of memory");
    return append_blocking(L, w, r);
}

/* writer:append(line) -> true | nil, "internal", detail */
static int l_append(lua_State *L)
{
    struct audit_writer *w = *(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT);
    struct mpic_task *t = mpic_task_current(L); /* raises outside a task */
    return enqueue(L, w, t, line_req(L, w));
}

/* writer:checkpoint() -> true | nil, "internal", detail */
static int l_checkpoint(lua_State *L)
{
    struct audit_writer *w = *(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT);
    if (!has_key(w))
        return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "checkpoint %s: no signing key",
                              w->path);
    struct mpic_task *t = mpic_task_current(L); /* raises outside a task */
    struct audit_req *r = req_new(w, NULL, 0);
    if (!r)
        return luaL_error(L, "out of memory");
    return enqueue(L, w, t, r);
}

/* writer:set_key(key): the checkpoint signing key (the last one set signs) */
static int l_set_key(lua_State *L)
{
    struct audit_writer *w = *(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT);
    EVP_PKEY *key = mpic_sign_check_private(L, 2);
    lua_Integer seal_ms = luaL_optinteger(L, 3, -1);
    luaL_argcheck(L, seal_ms >= -1 && seal_ms <= 60000, 3, "seal_ms must be -1..60000");
    struct chain_key *k = calloc(1, sizeof *k);
    if (!k)
        return luaL_error(L, "out of memory");
    if (mpic_sign_key_id(key, k->id) != 0) {
        free(k);
        return luaL_error(L, "audit: cannot compute the key id");
    }
    pthread_mutex_lock(&w->mu);
    w->seal_ms = (int)seal_ms;
    if (w->key && strcmp(w->key->id, k->id) == 0) {
        pthread_mutex_unlock(&w->mu);
        free(k);
        return 0;
    }
    EVP_PKEY_up_ref(key);
    k->key = key;
    k->older = w->key;
    w->key = k;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* writer:head() -> hex hash of the last line written, its seq */
static int l_head(lua_State *L)
{
    struct audit_writer *w = *(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT);
    char hex[65];
    pthread_mutex_lock(&w->mu);
    hex32(w->pub_head, hex);
    lua_Integer seq = (lua_Integer)w->pub_seq;
    pthread_mutex_unlock(&w->mu);
    lua_pushstring(L, hex);
    lua_pushinteger(L, seq);
    return 2;
}

static int l_writer_path(lua_State *L)
{
    lua_pushstring(L, (*(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT))->path);
    return 1;
}

static const luaL_Reg writer_methods[] = {{"append", l_append},
                                          {"checkpoint", l_checkpoint},
                                          {"append_blocking", l_append_blocking},
                                          {"checkpoint_blocking", l_checkpoint_blocking},
                                          {"set_key", l_set_key},
                                          {"head", l_head},
                                          {"path", l_writer_path},
                                          {NULL, NULL}};
static const luaL_Reg funcs[] = {{"open", l_open}, {NULL, NULL}};

int luaopen_mpic_audit(lua_State *L)
{
    if (luaL_newmetatable(L, WRITER_MT)) {
        luaL_newlib(L, writer_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "mpic.audit.writer");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
