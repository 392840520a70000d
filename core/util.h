/*
 * util.h: Lua modules implemented in C that are not probes.
 */
#ifndef MPIC_UTIL_H
#define MPIC_UTIL_H

#include <lua.h>

int luaopen_mpic_util(lua_State *L); /* "mpic.core.util" (lua_util.c) */
int luaopen_mpic_yaml(lua_State *L); /* "mpic.core.yaml" (yaml.c) */

#endif
