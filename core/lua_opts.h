/*
 * lua_opts.h: reading option tables in the Lua bindings, one way for all of
 * them. Misuse raises "<who><key> must be ..." (who is e.g. "http.get: opts.").
 * Every binding that takes an options table refuses a key it does not know
 * (mpic_opt_check_keys), so a misspelt limit or safety switch is an error,
 * not a silent default.
 */
#ifndef MPIC_LUA_OPTS_H
#define MPIC_LUA_OPTS_H

#include <lua.h>

/* Raises "<who>unknown option <key>" for the first key of the table at index
 * t (a string or not: it is named with luaL_tolstring) that is not in known,
 * a NULL-terminated list. Only the table's own keys count (not __index). */
void mpic_opt_check_keys(lua_State *L, int t, const char *who, const char *const known[]);

/* Field key of the table at index t: NULL when absent, the string otherwise
 * (it stays reachable from the table); raises when it is not a string. */
const char *mpic_opt_string(lua_State *L, int t, const char *who, const char *key);

/* Field key of the table at index t: def when absent, the integer otherwise;
 * raises when it is not an integer in [lo, hi]. */
lua_Integer mpic_opt_int(lua_State *L, int t, const char *who, const char *key, lua_Integer def,
                         lua_Integer lo, lua_Integer hi);

/* Field key of the table at index t: def when absent, the boolean otherwise;
 * raises when it is not a boolean. */
int mpic_opt_bool(lua_State *L, int t, const char *who, const char *key, int def);

#endif
