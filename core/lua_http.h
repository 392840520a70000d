/*
 * lua_http.h: the Lua module "mpic.core.http" (lua_http.c).
 */
#ifndef MPIC_LUA_HTTP_H
#define MPIC_LUA_HTTP_H

#include <lua.h>

int luaopen_mpic_http(lua_State *L);

#endif
