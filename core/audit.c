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
 * Provides the Lua module "mpic.core.audit":
 *   open(path [, fsync]) -> writer | nil, "internal", detail
 *   writer:append(line) -> true | nil, "internal", detail  (yields until the
 *       line is written and, when fsync, on disk; must run in a task)
 * Uses: pthreads, eventfd, libevent (the loop of rt.h), task suspension.
 */
#include "audit.h"
#include "errors.h"
#include "rt.h"

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
#include <unistd.h>

#define WRITER_MT "mpic.audit.writer"
#define BATCH_IOV 256

struct audit_writer;

struct audit_req {
    struct mpic_pending p;
    struct audit_writer *w;
    struct audit_req *next;
    int err;          /* errno of the failed step, 0 once durable */
    const char *what; /* the failed step: "open", "write", "fsync" */
    int orphaned;     /* the task was cancelled: the loop side frees it */
    size_t len;
    char line[]; /* the line and its '\n' */
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
    struct audit_req *q_head, *q_tail; /* for the worker */
    struct audit_req *d_head, *d_tail; /* finished, for the loop */
    struct audit_writer *next;
};

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
static void write_batch(struct audit_writer *w, int fsync, struct audit_req *r, int *err,
                        const char **what)
{
    int rc = check_rotation(w);
    if (rc < 0) {
        *err = -rc;
        *what = "open";
        return;
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
}

static void *worker_main(void *arg)
{
    struct audit_writer *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->q_head)
            pthread_cond_wait(&w->cv, &w->mu);
        struct audit_req *batch = w->q_head, *tail = w->q_tail;
        int fsync = w->fsync;
        w->q_head = w->q_tail = NULL;
        pthread_mutex_unlock(&w->mu);

        int err = 0;
        const char *what = NULL;
        write_batch(w, fsync, batch, &err, &what);
        for (struct audit_req *r = batch; r; r = r->next) {
            r->err = err;
            r->what = what;
        }
        pthread_mutex_lock(&w->mu);
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

static struct audit_writer *writer_new(const char *path, int fsync, int *err)
{
    struct audit_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        *err = ENOMEM;
        return NULL;
    }
    w->fd = w->efd = -1;
    w->fsync = fsync;
    int rc = open_log(w);
    if (rc == 0) {
        w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        rc = w->efd < 0 ? -errno : 0;
    }
    if (rc == 0) {
        w->ev = event_new(mpic_loop(), w->efd, EV_READ | EV_PERSIST, on_done, w);
        rc = w->ev ? 0 : -ENOMEM;
    }
    if (rc == 0 && (pthread_mutex_init(&w->mu, NULL) != 0 || pthread_cond_init(&w->cv, NULL) != 0))
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
        w = writer_new(path, fsync, &err);
        if (!w)
            return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "open %s: %s", path, strerror(err));
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

/* Without fsync there is nothing to group: the loop thread writes the line
 * itself (one writev, O_APPEND) and the task does not yield. Used only while
 * the writer has never synced, so the worker never runs at the same time. */
static int append_direct(lua_State *L, struct audit_writer *w, const char *line, size_t n)
{
    struct iovec iov[2] = {{(void *)line, n}, {"\n", 1}};
    const char *what = "open";
    int rc = check_rotation(w);
    if (rc == 0) {
        what = "write";
        ssize_t k;
        do
            k = writev(w->fd, iov, 2);
        while (k < 0 && errno == EINTR);
        if (k == (ssize_t)n + 1) {
            lua_pushboolean(L, 1);
            return 1;
        }
        rc = k < 0 ? -errno : -EIO;
        if (k > 0) { /* a torn line: cut it off again when it is the file's end */
            struct stat st;
            off_t end = lseek(w->fd, 0, SEEK_END);
            if (end >= k && fstat(w->fd, &st) == 0 && st.st_size == end && ftruncate(w->fd, end - k) != 0) {
                /* the append fails anyway */
            }
        }
    }
    return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "%s %s: %s", what, w->path, strerror(-rc));
}

/* writer:append(line) -> true | nil, "internal", detail */
static int l_append(lua_State *L)
{
    struct audit_writer *w = *(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT);
    size_t n;
    const char *line = luaL_checklstring(L, 2, &n);
    luaL_argcheck(L, !memchr(line, '\n', n), 2, "line must not contain a newline");
    struct mpic_task *t = mpic_task_current(L);
    if (!w->fsync && !w->started)
        return append_direct(L, w, line, n);
    if (!w->started) {
        int rc = start_worker(w);
        if (rc < 0)
            return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "audit writer thread: %s", strerror(-rc));
    }
    struct audit_req *r = malloc(sizeof *r + n + 1);
    if (!r)
        return luaL_error(L, "out of memory");
    memset(r, 0, sizeof *r);
    r->p.task = t;
    r->w = w;
    r->len = n + 1;
    memcpy(r->line, line, n);
    r->line[n] = '\n';
    if (!w->ev_added) {
        if (event_add(w->ev, NULL) != 0) {
            free(r);
            return luaL_error(L, "audit: cannot watch the writer's eventfd");
        }
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
    pthread_mutex_unlock(&w->mu);
    return mpic_task_suspend(L, &r->p, req_cancel, r, k_append, (lua_KContext)r);
}

static int l_writer_path(lua_State *L)
{
    lua_pushstring(L, (*(struct audit_writer **)luaL_checkudata(L, 1, WRITER_MT))->path);
    return 1;
}

static const luaL_Reg writer_methods[] = {{"append", l_append}, {"path", l_writer_path}, {NULL, NULL}};
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
