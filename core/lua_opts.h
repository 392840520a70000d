/*
 * lua_opts.h: reading option tables in the Lua bindings, one way for all of
 * them. Misuse raises "<who><key> must be ..." (who is e.g. "http.get: opts.").
 */
#ifndef MPIC_LUA_OPTS_H
#define MPIC_LUA_OPTS_H

#include <lua.h>

/* Field key of the table at index t: NULL when absent, the string otherwise
 * (it stays reachable from the table); raises when it is not a string. */
const char *mpic_opt_string(lua_State *L, int t, const char *who, const char *key);

/* Field key of the table at index t: def when absent, the integer otherwise;
 * raises when it is not an integer in [lo, hi]. */
lua_Integer mpic_opt_int(lua_State *L, int t, const char *who, const char *key, lua_Integer def,
                         lua_Integer lo, lua_Integer hi);

#endif
