/*
 * task.h: the task scheduler's entry points for the command line (main.c).
 * Bindings use rt.h instead.
 */
#ifndef MPIC_TASK_H
#define MPIC_TASK_H

#include <lua.h>

/* Create the event loop and register the task library in L
 * (package.preload["mpic.core"]). Returns 0 or -1. */
int mpic_rt_init(lua_State *L);
void mpic_rt_shutdown(lua_State *L);

/*
 * Run the function on top of L's stack (below it nargs arguments) as the
 * root task and drive the loop until that task ends. On return the stack
 * holds the task's status and results as a table:
 * {ok=true, n=..., ...} or {ok=false, err=msg, traceback=tb}.
 * Must be called inside a protected call.
 */
int mpic_rt_run_main(lua_State *L, int nargs);

/* Ask the loop to stop and cancel the running root task (SIGINT in the REPL). */
void mpic_rt_interrupt(void);

/* Nonzero from mpic_rt_interrupt until the loop has cancelled the root task
 * (bounded calls poll it: lua_sandbox.c). */
int mpic_rt_interrupted(void);

/* The task whose coroutine is running now (NULL between tasks); an opaque
 * identity for the allocator's budgets (lua_sandbox.c). */
const void *mpic_rt_running(void);

#endif
