/*
 * lua_tls.h: entry point of the Lua module "mpic.core.tls" (lua_tls.c).
 */
#ifndef MPIC_LUA_TLS_H
#define MPIC_LUA_TLS_H

#include <lua.h>

int luaopen_mpic_tls(lua_State *L);

#endif
