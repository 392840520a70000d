/*
 * rt.h: the runtime every other C module builds on.
 *
 * One event loop per process (libevent's event_base) owns every socket and
 * timer. Tasks are Lua coroutines scheduled by task.c. A probe primitive
 * starts its I/O, then suspends the calling task with mpic_task_suspend();
 * the I/O completion callback marks the pending operation done and calls
 * mpic_pending_complete(), which queues the task to be resumed; the task then
 * continues in the lua_KFunction given to mpic_task_suspend, which turns the
 * C result into Lua values. A probe that finishes before it would yield
 * simply returns its results without suspending.
 *
 * Cancellation: when a task is cancelled while suspended (or after its
 * operation completed but before the continuation ran), the runtime calls
 * the cancel function given to mpic_task_suspend, which must therefore be
 * safe in both states and free the operation. After it returns, the I/O
 * module must never call back into that pending operation again (modules
 * whose library cannot cancel a single request, such as c-ares 1.18, keep a
 * private "orphaned" flag and drop the late completion themselves).
 */
#ifndef MPIC_RT_H
#define MPIC_RT_H

#include <lua.h>
#include <stdint.h>

struct event_base;
struct mpic_task;

/* The process-wide event loop (created by mpic_rt_init). */
struct event_base *mpic_loop(void);

/* Monotonic milliseconds. */
uint64_t mpic_now_ms(void);

/*
 * A pending operation, embedded by each I/O binding in its own request
 * struct. The binding fills task (mpic_task_current) before starting I/O.
 */
struct mpic_pending {
    struct mpic_task *task; /* NULL once orphaned */
    int done;               /* completion seen */
    int suspended;          /* the task yielded waiting for it */
};

/* The task running on coroutine L; raises a Lua error when L is not the
 * main coroutine of a task (e.g. inside coroutine.wrap). */
struct mpic_task *mpic_task_current(lua_State *L);

/* Call from the I/O completion callback: sets p->done and, if the task is
 * suspended on it, queues the task to run. Never runs Lua itself. */
void mpic_pending_complete(struct mpic_pending *p);

/*
 * Suspend the calling task until mpic_pending_complete(p). Must be the
 * return expression of a lua_CFunction: `return mpic_task_suspend(...)`.
 * k(L, LUA_YIELD, ctx) runs when the task resumes and returns the Lua
 * results. cancel(arg) is called if the task is cancelled first.
 * If p->done is already set, k runs immediately (no yield).
 * Exactly one of k and cancel runs for a suspension. When L cannot yield
 * (inside a sort comparator, gsub callback or metamethod) it calls cancel
 * and raises an error instead.
 */
int mpic_task_suspend(lua_State *L, struct mpic_pending *p, void (*cancel)(void *arg), void *arg,
                      lua_KFunction k, lua_KContext ctx);

/* Push `nil, err, detail` (the non-raising failure convention); returns 3. */
int mpic_push_fail(lua_State *L, const char *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
