/*
 * task.c: the task scheduler. Tasks are Lua coroutines run one at a time by
 * a single loop that alternates between resuming ready tasks and one pass of
 * libevent's event_base_loop. Lua never runs inside a libevent callback:
 * callbacks only mark pending operations complete (mpic_pending_complete),
 * which puts the waiting task on the run queue.
 *
 * Provides the Lua module "mpic.core" (spawn, wait, wait_first, sleep,
 * cancel, current, now, yield) and the C runtime API of rt.h.
 * Uses: Lua 5.4 C API, libevent (event_base, timers).
 *
 * Ownership: each task is a full userdata (struct mpic_task) whose first
 * user value is its coroutine and second its outcome table. A task that has
 * not finished is anchored in the registry table LIVE (keyed by its address),
 * so it cannot be collected while it can still run. Structured lifetime: when
 * a task ends, its unfinished children are cancelled.
 */
#include "rt.h"
#include "task.h"

#include <event2/event.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASK_MT "mpic.task"
#define LIVE_KEY "mpic.live_tasks"

enum task_state { T_READY, T_RUNNING, T_SUSPENDED, T_DONE, T_ERROR, T_CANCELLED };
static const char *const state_names[] = {"ready", "running", "waiting",
                                          "done",  "error",   "cancelled"};

struct waitlink;

struct mpic_task {
    long id;
    lua_State *co;
    enum task_state state;
    int nargs; /* values on co's stack to pass to the next resume */
    int cancel_requested;
    struct mpic_task *parent, *first_child, *next_sib, *prev_sib;
    struct mpic_task *rq_next; /* run queue / reap queue link */
    int queued;
    struct mpic_pending *pending; /* what the task is suspended on */
    void (*cancel)(void *);
    void *cancel_arg;
    struct waitlink *waiters; /* wait operations watching this task */
};

/* A task waiting for `need` of `n` targets, with an optional timeout. */
struct waitlink {
    struct wait_op *op;
    struct mpic_task *target;
    int index; /* 1-based position in the caller's list */
    struct waitlink *next, *prev;
};

struct wait_op {
    struct mpic_pending p;
    int n, need, got, timed_out;
    struct event *timer;
    int *order; /* indices of finished targets, in completion order */
    struct waitlink links[];
};

struct sleep_op {
    struct mpic_pending p;
    struct event *ev;
};

static struct {
    struct event_base *base;
    lua_State *L; /* main state */
    struct mpic_task *current;
    struct mpic_task *rq_head, *rq_tail;
    struct mpic_task *reap; /* cancelled tasks whose coroutine must be reset */
    long next_id;
    long live;
    volatile sig_atomic_t interrupted; /* set by mpic_rt_interrupt (signal handler) */
} rt;

struct event_base *mpic_loop(void) { return rt.base; }

uint64_t mpic_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int mpic_push_fail(lua_State *L, const char *err, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, buf);
    return 3;
}

/* ---- run queue ---------------------------------------------------------- */

static void enqueue(struct mpic_task *t)
{
    if (t->queued)
        return;
    t->queued = 1;
    t->rq_next = NULL;
    if (rt.rq_tail)
        rt.rq_tail->rq_next = t;
    else
        rt.rq_head = t;
    rt.rq_tail = t;
}

static struct mpic_task *dequeue(void)
{
    struct mpic_task *t = rt.rq_head;
    if (!t)
        return NULL;
    rt.rq_head = t->rq_next;
    if (!rt.rq_head)
        rt.rq_tail = NULL;
    t->queued = 0;
    return t;
}

void mpic_pending_complete(struct mpic_pending *p)
{
    p->done = 1;
    if (p->suspended && p->task) {
        struct mpic_task *t = p->task;
        /* t->pending stays set until the continuation runs: a task cancelled
         * before it resumes still releases the operation through cancel() */
        t->state = T_READY;
        t->nargs = 0;
        enqueue(t);
    }
}

struct mpic_task *mpic_task_current(lua_State *L)
{
    struct mpic_task *t = *(struct mpic_task **)lua_getextraspace(L);
    if (!t || t != rt.current)
        luaL_error(L, "mpic: this primitive must be called from a task's own coroutine "
                      "(not from coroutine.wrap/create or outside a task)");
    return t;
}

int mpic_task_suspend(lua_State *L, struct mpic_pending *p, void (*cancel)(void *), void *arg,
                      lua_KFunction k, lua_KContext ctx)
{
    struct mpic_task *t = p->task;
    if (p->done)
        return k(L, LUA_OK, ctx);
    if (!lua_isyieldable(L)) {
        /* Inside a C call boundary (a table.sort comparator, a string.gsub
         * callback, __tostring, require...) lua_yieldk would raise, leaving
         * the operation armed to wake this task later, while it is waiting
         * on something else or already gone. Release it first. */
        p->task = NULL;
        if (cancel)
            cancel(arg);
        return luaL_error(L, "mpic: cannot wait for I/O inside a function called from C "
                             "(a sort comparator, gsub callback or metamethod); "
                             "call it from the task's own code");
    }
    p->suspended = 1;
    t->pending = p;
    t->cancel = cancel;
    t->cancel_arg = arg;
    return lua_yieldk(L, 0, ctx, k);
}

/* ---- task objects -------------------------------------------------------- */

static void push_live(lua_State *L, struct mpic_task *t)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
    lua_rawgetp(L, -1, t);
    lua_remove(L, -2);
}

static void set_live(lua_State *L, struct mpic_task *t, int idx)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
    lua_pushvalue(L, idx);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
}

static void unset_live(lua_State *L, struct mpic_task *t)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
    lua_pushnil(L);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
}

static void link_child(struct mpic_task *parent, struct mpic_task *t)
{
    t->parent = parent;
    if (!parent)
        return;
    t->next_sib = parent->first_child;
    if (parent->first_child)
        parent->first_child->prev_sib = t;
    parent->first_child = t;
}

static void unlink_child(struct mpic_task *t)
{
    if (!t->parent)
        return;
    if (t->prev_sib)
        t->prev_sib->next_sib = t->next_sib;
    else
        t->parent->first_child = t->next_sib;
    if (t->next_sib)
        t->next_sib->prev_sib = t->prev_sib;
    t->parent = t->next_sib = t->prev_sib = NULL;
}

/* Create a task for the function at the top of L's stack with nargs
 * arguments below... (fn, args...) are popped; the task userdata is pushed. */
static struct mpic_task *task_new(lua_State *L, int nargs)
{
    int fn = lua_gettop(L) - nargs;
    struct mpic_task *t = lua_newuserdatauv(L, sizeof *t, 2);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TASK_MT);
    t->id = ++rt.next_id;
    t->co = lua_newthread(L);
    lua_setiuservalue(L, -2, 1);
    *(struct mpic_task **)lua_getextraspace(t->co) = t;
    /* move fn and args onto the coroutine */
    lua_pushvalue(L, fn);
    for (int i = 1; i <= nargs; i++)
        lua_pushvalue(L, fn + i);
    lua_xmove(L, t->co, nargs + 1);
    t->nargs = nargs;
    /* leave only the userdata */
    lua_replace(L, fn);
    lua_settop(L, fn);
    set_live(L, t, -1);
    rt.live++;
    link_child(rt.current, t);
    t->state = T_READY;
    enqueue(t);
    return t;
}

static void wait_op_detach(struct wait_op *op);

/* Mark finished (state already set, outcome table at the top of the main
 * stack), wake waiters, cancel children, release the anchor. */
static void cancel_task(lua_State *L, struct mpic_task *t);

static void finish(lua_State *L, struct mpic_task *t)
{
    push_live(L, t);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 2);
    lua_pop(L, 2);
    while (t->waiters) {
        struct waitlink *w = t->waiters;
        struct wait_op *op = w->op;
        t->waiters = w->next;
        if (t->waiters)
            t->waiters->prev = NULL;
        w->target = NULL;
        op->order[op->got++] = w->index;
        if (op->got >= op->need && !op->p.done) {
            wait_op_detach(op);
            mpic_pending_complete(&op->p);
        }
    }
    while (t->first_child) {
        struct mpic_task *c = t->first_child;
        cancel_task(L, c);
        if (t->first_child == c) /* running child: cancelled at its next yield */
            unlink_child(c);
    }
    unlink_child(t);
    unset_live(L, t);
    rt.live--;
}

static void cancel_task(lua_State *L, struct mpic_task *t)
{
    if (t->state >= T_DONE)
        return;
    while (t->first_child) {
        struct mpic_task *c = t->first_child;
        cancel_task(L, c);
        if (t->first_child == c)
            unlink_child(c);
    }
    if (t->state == T_RUNNING) {
        t->cancel_requested = 1;
        return;
    }
    if (t->pending) {
        struct mpic_pending *p = t->pending;
        t->pending = NULL;
        p->task = NULL;
        if (t->cancel)
            t->cancel(t->cancel_arg);
    }
    if (t->queued) { /* unlink from the run queue */
        struct mpic_task **pp = &rt.rq_head, *prev = NULL;
        while (*pp && *pp != t) {
            prev = *pp;
            pp = &(*pp)->rq_next;
        }
        if (*pp) {
            *pp = t->rq_next;
            if (rt.rq_tail == t)
                rt.rq_tail = prev;
        }
        t->queued = 0;
    }
    t->state = T_CANCELLED;
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "ok");
    lua_pushliteral(L, "cancelled");
    lua_setfield(L, -2, "err");
    /* keep the coroutine reachable until it is reset outside any coroutine */
    push_live(L, t);
    t->rq_next = rt.reap;
    rt.reap = t;
    lua_getfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, (char *)t + 1); /* reap anchor */
    lua_pop(L, 2);
    finish(L, t);
}

static void reap(lua_State *L)
{
    while (rt.reap) {
        struct mpic_task *t = rt.reap;
        rt.reap = t->rq_next;
        lua_resetthread(t->co);
        lua_getfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
        lua_rawgetp(L, -1, (char *)t + 1);
        lua_pushnil(L);
        lua_setiuservalue(L, -2, 1); /* drop the coroutine */
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawsetp(L, -2, (char *)t + 1);
        lua_pop(L, 1);
        t->co = NULL;
    }
}

static int l_error_text(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/* Push onto L the text of the error value on top of the dead coroutine co.
 * A __tostring metamethod runs protected on L: co is dead (calling into it
 * would rethrow on the main thread), and the metamethod itself may fail. */
static void error_text(lua_State *L, lua_State *co)
{
    int tt = lua_type(co, -1);
    luaL_checkstack(L, 4, "error message");
    if (tt == LUA_TSTRING || tt == LUA_TNUMBER) {
        lua_pushstring(L, lua_tostring(co, -1));
        return;
    }
    lua_xmove(co, L, 1); /* the error value, now on L */
    if (luaL_getmetafield(L, -1, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushcfunction(L, l_error_text);
        lua_insert(L, -2);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
            return;
    }
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", lua_typename(L, tt));
}

/* Resume one task and handle how it stopped. */
static void run_task(lua_State *L, struct mpic_task *t)
{
    int nres = 0;
    t->state = T_RUNNING;
    t->pending = NULL; /* the continuation (k) now owns the completed operation */
    rt.current = t;
    int st = lua_resume(t->co, L, t->nargs, &nres);
    rt.current = NULL;
    t->nargs = 0;
    if (st == LUA_YIELD) {
        lua_pop(t->co, nres);
        if (t->pending) {
            t->state = T_SUSPENDED;
        } else { /* plain coroutine.yield(): give others a turn */
            t->state = T_READY;
            enqueue(t);
        }
        if (t->cancel_requested)
            cancel_task(L, t);
        return;
    }
    if (st == LUA_OK) {
        t->state = t->cancel_requested ? T_CANCELLED : T_DONE;
        lua_createtable(L, nres, 2);
        lua_pushboolean(L, t->state == T_DONE);
        lua_setfield(L, -2, "ok");
        if (t->state == T_CANCELLED) {
            lua_pushliteral(L, "cancelled");
            lua_setfield(L, -2, "err");
        }
        lua_pushinteger(L, nres);
        lua_setfield(L, -2, "n");
        lua_xmove(t->co, L, nres);
        for (int i = nres; i >= 1; i--)
            lua_rawseti(L, -(i + 1), i);
        finish(L, t);
        return;
    }
    /* error: keep the message and a traceback of the failed coroutine. The
     * message is kept on the main stack below the outcome table. */
    error_text(L, t->co);
    const char *msg = lua_tostring(L, -1);
    t->state = T_ERROR;
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "ok");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "err");
    luaL_traceback(L, t->co, msg, 0);
    lua_setfield(L, -2, "traceback");
    lua_settop(t->co, 0);
    finish(L, t);
    lua_pop(L, 1); /* msg */
}

/* ---- waiting ------------------------------------------------------------- */

static void wait_op_detach(struct wait_op *op)
{
    for (int i = 0; i < op->n; i++) {
        struct waitlink *w = &op->links[i];
        struct mpic_task *t = w->target;
        if (!t)
            continue;
        if (w->prev)
            w->prev->next = w->next;
        else
            t->waiters = w->next;
        if (w->next)
            w->next->prev = w->prev;
        w->target = NULL;
    }
    if (op->timer) {
        event_free(op->timer);
        op->timer = NULL;
    }
}

static void wait_op_free(struct wait_op *op)
{
    wait_op_detach(op);
    free(op->order);
    free(op);
}

static void wait_cancel(void *arg) { wait_op_free(arg); }

static void wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wait_op *op = arg;
    op->timed_out = 1;
    wait_op_detach(op);
    mpic_pending_complete(&op->p);
}

static struct mpic_task *check_task(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, TASK_MT);
}

static int opt_timeout(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    lua_Number ms = luaL_checknumber(L, idx);
    luaL_argcheck(L, ms >= 0, idx, "timeout must be >= 0 ms");
    return ms > 2e9 ? 2000000000 : (int)ms;
}

/* Start waiting for `need` of the tasks whose userdata are at stack slots
 * given by list (a table at index tidx) or a single task at tidx. */
static struct wait_op *wait_start(lua_State *L, struct mpic_task *self, int tidx, int single,
                                  int need, int timeout_ms)
{
    int n = single ? 1 : (int)luaL_len(L, tidx);
    struct wait_op *op = calloc(1, sizeof *op + (size_t)n * sizeof(struct waitlink));
    int *order = calloc((size_t)n + 1, sizeof(int));
    if (!op || !order) {
        free(op);
        free(order);
        luaL_error(L, "out of memory");
    }
    op->order = order;
    op->n = n;
    op->need = need;
    op->p.task = self;
    for (int i = 0; i < n; i++) {
        struct mpic_task *t;
        if (single) {
            t = check_task(L, tidx);
        } else {
            lua_rawgeti(L, tidx, i + 1);
            t = luaL_testudata(L, -1, TASK_MT);
            lua_pop(L, 1);
            if (!t) {
                wait_op_free(op);
                luaL_error(L, "bad task list: element %d is not a task", i + 1);
            }
        }
        if (t == self) {
            wait_op_free(op);
            luaL_error(L, "a task cannot wait for itself");
        }
        struct waitlink *w = &op->links[i];
        w->op = op;
        w->index = i + 1;
        if (t->state >= T_DONE) {
            op->order[op->got++] = i + 1;
            continue;
        }
        w->target = t;
        w->next = t->waiters;
        if (t->waiters)
            t->waiters->prev = w;
        t->waiters = w;
    }
    if (op->got >= op->need) {
        wait_op_detach(op);
        op->p.done = 1;
    } else if (timeout_ms >= 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        op->timer = evtimer_new(rt.base, wait_timeout_cb, op);
        if (!op->timer) {
            wait_op_free(op);
            luaL_error(L, "out of memory");
        }
        evtimer_add(op->timer, &tv);
    }
    return op;
}

/* Push a finished task's outcome as return values. */
static int push_outcome(lua_State *L, struct mpic_task *t, int idx)
{
    lua_getiuservalue(L, idx, 2);
    int r = lua_gettop(L);
    lua_getfield(L, r, "ok");
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ok) {
        lua_getfield(L, r, "n");
        int n = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        luaL_checkstack(L, n, "too many results");
        for (int i = 1; i <= n; i++)
            lua_rawgeti(L, r, i);
        return n;
    }
    lua_pushnil(L);
    if (t->state == T_CANCELLED) {
        lua_pushliteral(L, "cancelled");
        lua_pushfstring(L, "task %I was cancelled", (lua_Integer)t->id);
        return 3;
    }
    lua_pushliteral(L, "task_error");
    lua_getfield(L, r, "err");
    return 3;
}

static int k_wait(lua_State *L, int status, lua_KContext ctx)
{
    struct wait_op *op = (struct wait_op *)ctx;
    int timed_out = op->timed_out;
    wait_op_free(op);
    if (timed_out) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        lua_pushliteral(L, "wait timed out");
        return 3;
    }
    return push_outcome(L, check_task(L, 1), 1);
}

/* mpic.wait(task [, timeout_ms]) -> the task's results, or nil, "task_error", msg /
 * nil, "cancelled", msg / nil, "timeout", msg */
static int l_wait(lua_State *L)
{
    check_task(L, 1);
    int timeout_ms = opt_timeout(L, 2);
    struct mpic_task *self = mpic_task_current(L);
    lua_settop(L, 1);
    struct wait_op *op = wait_start(L, self, 1, 1, 1, timeout_ms);
    return mpic_task_suspend(L, &op->p, wait_cancel, op, k_wait, (lua_KContext)op);
}

static int k_wait_first(lua_State *L, int status, lua_KContext ctx)
{
    struct wait_op *op = (struct wait_op *)ctx;
    lua_createtable(L, op->got, 0);
    for (int i = 0; i < op->got; i++) {
        lua_rawgeti(L, 1, op->order[i]);
        lua_rawseti(L, -2, i + 1);
    }
    int timed_out = op->timed_out;
    wait_op_free(op);
    if (timed_out) {
        lua_pushliteral(L, "timeout");
        return 2;
    }
    return 1;
}

/* mpic.wait_first(tasks, k [, timeout_ms]) -> list of finished tasks in
 * completion order (at least k of them unless it returns list, "timeout").
 * mpic.wait_all(tasks [, timeout_ms]) is wait_first with k = #tasks. */
static int wait_first(lua_State *L, int need, int timeout_ms)
{
    struct mpic_task *self = mpic_task_current(L);
    lua_settop(L, 1);
    struct wait_op *op = wait_start(L, self, 1, 0, need, timeout_ms);
    return mpic_task_suspend(L, &op->p, wait_cancel, op, k_wait_first, (lua_KContext)op);
}

static int l_wait_first(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    lua_Integer k = luaL_optinteger(L, 2, 1);
    luaL_argcheck(L, k >= 0 && k <= n, 2, "count must be between 0 and #tasks");
    return wait_first(L, (int)k, opt_timeout(L, 3));
}

static int l_wait_all(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    return wait_first(L, (int)luaL_len(L, 1), opt_timeout(L, 2));
}

/* ---- sleep, spawn, cancel ------------------------------------------------ */

static void sleep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sleep_op *op = arg;
    mpic_pending_complete(&op->p);
}

static void sleep_cancel(void *arg)
{
    struct sleep_op *op = arg;
    event_free(op->ev);
    free(op);
}

static int k_sleep(lua_State *L, int status, lua_KContext ctx)
{
    sleep_cancel((void *)ctx);
    return 0;
}

static int l_sleep(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    luaL_argcheck(L, ms >= 0 && ms <= 2e9, 1, "sleep must be between 0 and 2e9 ms");
    struct mpic_task *self = mpic_task_current(L);
    struct sleep_op *op = calloc(1, sizeof *op);
    if (!op)
        return luaL_error(L, "out of memory");
    op->p.task = self;
    op->ev = evtimer_new(rt.base, sleep_cb, op);
    if (!op->ev) {
        free(op);
        return luaL_error(L, "out of memory");
    }
    long ims = (long)ms;
    struct timeval tv = {ims / 1000, (ims % 1000) * 1000};
    evtimer_add(op->ev, &tv);
    return mpic_task_suspend(L, &op->p, sleep_cancel, op, k_sleep, (lua_KContext)op);
}

/* mpic.spawn(fn, ...) -> task; the new task is a child of the caller. */
static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (!rt.current)
        return luaL_error(L, "mpic.spawn must be called from a task");
    task_new(L, lua_gettop(L) - 1);
    return 1;
}

static int l_cancel(lua_State *L)
{
    struct mpic_task *t = check_task(L, 1);
    cancel_task(L, t);
    return 0;
}

static int l_current(lua_State *L)
{
    if (!rt.current)
        return 0;
    push_live(L, rt.current);
    return 1;
}

static int l_now(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)mpic_now_ms());
    return 1;
}

static int l_stats(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, rt.live);
    lua_setfield(L, -2, "live_tasks");
    lua_pushinteger(L, rt.next_id);
    lua_setfield(L, -2, "spawned");
    return 1;
}

/* task methods */
static int l_task_status(lua_State *L)
{
    lua_pushstring(L, state_names[check_task(L, 1)->state]);
    return 1;
}

static int l_task_result(lua_State *L)
{
    struct mpic_task *t = check_task(L, 1);
    if (t->state < T_DONE)
        return luaL_error(L, "task %d has not finished", (int)t->id);
    return push_outcome(L, t, 1);
}

static int l_task_traceback(lua_State *L)
{
    check_task(L, 1);
    if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE)
        return 0;
    lua_getfield(L, -1, "traceback");
    return 1;
}

static int l_task_tostring(lua_State *L)
{
    struct mpic_task *t = check_task(L, 1);
    lua_pushfstring(L, "task %I (%s)", (lua_Integer)t->id, state_names[t->state]);
    return 1;
}

static int l_task_index(lua_State *L)
{
    struct mpic_task *t = check_task(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "id") == 0) {
        lua_pushinteger(L, t->id);
        return 1;
    }
    luaL_getmetafield(L, 1, "methods");
    lua_getfield(L, -1, k);
    return 1;
}

static const luaL_Reg task_methods[] = {{"status", l_task_status},
                                        {"result", l_task_result},
                                        {"traceback", l_task_traceback},
                                        {"cancel", l_cancel},
                                        {NULL, NULL}};

static const luaL_Reg core_funcs[] = {{"spawn", l_spawn},           {"wait", l_wait},
                                      {"wait_first", l_wait_first}, {"wait_all", l_wait_all},
                                      {"sleep", l_sleep},           {"cancel", l_cancel},
                                      {"current", l_current},       {"now", l_now},
                                      {"stats", l_stats},           {NULL, NULL}};

static int luaopen_mpic_core(lua_State *L)
{
    luaL_newlib(L, core_funcs);
    return 1;
}

int mpic_rt_init(lua_State *L)
{
    rt.base = event_base_new();
    if (!rt.base)
        return -1;
    rt.L = L;
    /* coroutines inherit the main thread's extra space: no task */
    *(struct mpic_task **)lua_getextraspace(L) = NULL;
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LIVE_KEY);
    luaL_newmetatable(L, TASK_MT);
    lua_pushcfunction(L, l_task_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_task_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, task_methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_mpic_core);
    lua_setfield(L, -2, "mpic.core");
    lua_pop(L, 1);
    return 0;
}

void mpic_rt_shutdown(lua_State *L)
{
    if (rt.base)
        event_base_free(rt.base);
    rt.base = NULL;
}

/* Sticky: the hook stays, so every further instruction of the coroutine
 * raises again and a pcall in the running code (or a sandboxed check's)
 * cannot swallow the interrupt; the coroutine ends with the error. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    luaL_error(L, "interrupted");
}

int mpic_rt_interrupted(void) { return rt.interrupted != 0; }

const void *mpic_rt_running(void) { return rt.current; }

/* Safe in a signal handler (lua_sethook is, by design, as in lua.c): a task
 * busy in Lua code stops at its next instruction count with an error; a
 * waiting one is cancelled by the loop. */
void mpic_rt_interrupt(void)
{
    rt.interrupted = 1;
    struct mpic_task *t = rt.current;
    if (t && t->co)
        lua_sethook(t->co, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    if (rt.base)
        event_base_loopbreak(rt.base);
}

/* Drive the loop until the root task ends. */
int mpic_rt_run_main(lua_State *L, int nargs)
{
    struct mpic_task *root = task_new(L, nargs);
    int rootidx = lua_gettop(L);
    rt.interrupted = 0;
    while (root->state < T_DONE) {
        struct mpic_task *t;
        while ((t = dequeue()) != NULL && root->state < T_DONE) {
            if (t->state == T_READY)
                run_task(L, t);
            reap(L);
        }
        if (root->state >= T_DONE)
            break;
        if (rt.interrupted) {
            rt.interrupted = 0;
            cancel_task(L, root);
            reap(L);
            break;
        }
        int r = event_base_loop(rt.base, rt.rq_head ? EVLOOP_NONBLOCK : EVLOOP_ONCE);
        if (r == 1 && !rt.rq_head && root->state < T_DONE) {
            /* nothing can ever wake a task again */
            cancel_task(L, root);
            reap(L);
            lua_getiuservalue(L, rootidx, 2);
            lua_pushliteral(L, "deadlock: every task is waiting and no I/O or timer is pending");
            lua_setfield(L, -2, "err");
            lua_pop(L, 1);
            break;
        }
    }
    reap(L);
    lua_getiuservalue(L, rootidx, 2);
    lua_remove(L, rootidx);
    return 1;
}
