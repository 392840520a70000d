/*
 * lua_sandbox.h: bounded calls for untrusted Lua (policies, challenge
 * checks): the process-wide Lua allocator with per-call memory budgets, and
 * the module "mpic.core.sandbox" (lua_sandbox.c).
 */
#ifndef MPIC_LUA_SANDBOX_H
#define MPIC_LUA_SANDBOX_H

#include <lua.h>
#include <stddef.h>

/* The lua_Alloc of every state (main.c installs it): realloc/free that
 * charges growth to the running bounded call's memory budget and fails the
 * allocation when the budget would be exceeded. */
void *mpic_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

int luaopen_mpic_sandbox(lua_State *L);

#endif
