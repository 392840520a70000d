/*
 * lua_opts.c: option-table readers shared by the Lua bindings (lua_opts.h).
 * Uses: the Lua C API only.
 */
#include "lua_opts.h"

#include <lauxlib.h>

const char *mpic_opt_string(lua_State *L, int t, const char *who, const char *key)
{
    const char *s = NULL;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s%s must be a string", who, key);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1); /* the string stays reachable from the table */
    return s;
}

lua_Integer mpic_opt_int(lua_State *L, int t, const char *who, const char *key, lua_Integer def,
                         lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = def;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        int isnum = 0;
        v = lua_tointegerx(L, -1, &isnum);
        if (!isnum || v < lo || v > hi)
            luaL_error(L, "%s%s must be an integer in [%I, %I]", who, key, lo, hi);
    }
    lua_pop(L, 1);
    return v;
}
