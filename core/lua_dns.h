/*
 * lua_dns.h: the Lua module "mpic.core.dns" (lua_dns.c).
 */
#ifndef MPIC_LUA_DNS_H
#define MPIC_LUA_DNS_H

#include <lua.h>

int luaopen_mpic_dns(lua_State *L);

#endif
