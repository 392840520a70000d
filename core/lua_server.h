/*
 * lua_server.h: the Lua module "mpic.core.server" (HTTP server and signal
 * watcher for the coordinator and agent services).
 */
#ifndef MPIC_LUA_SERVER_H
#define MPIC_LUA_SERVER_H

#include <lua.h>

int luaopen_mpic_server(lua_State *L);

#endif
