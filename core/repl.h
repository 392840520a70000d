/*
 * repl.h: the interactive Lua REPL (`mpic repl`).
 */
#ifndef MPIC_REPL_H
#define MPIC_REPL_H

#include <lua.h>

/* Run the REPL on L (set up by main.c) until end of input. argv holds the
 * arguments after "repl" (e.g. --config FILE). Returns the exit status. */
int mpic_repl_run(lua_State *L, int argc, char **argv);

#endif
