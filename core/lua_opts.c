/*
 * lua_opts.c: option-table readers shared by the Lua bindings (lua_opts.h).
 * Uses: the Lua C API only.
 */
#include "lua_opts.h"

#include <lauxlib.h>

#include <string.h>

void mpic_opt_check_keys(lua_State *L, int t, const char *who, const char *const known[])
{
    t = lua_absindex(L, t);
    luaL_checkstack(L, 3, "options");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int ok = 0;
        lua_pop(L, 1); /* the value */
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t len;
            const char *k = lua_tolstring(L, -1, &len);
            /* a key with a NUL inside is no known key ("tries\0x" is not "tries") */
            for (size_t i = 0; known[i] && !ok; i++)
                ok = strlen(known[i]) == len && memcmp(k, known[i], len) == 0;
        }
        if (!ok)
            luaL_error(L, "%sunknown option %s", who, luaL_tolstring(L, -1, NULL));
    }
}

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

int mpic_opt_bool(lua_State *L, int t, const char *who, const char *key, int def)
{
    int v = def;
    int ty = lua_getfield(L, t, key);
    if (ty != LUA_TNIL) {
        if (ty != LUA_TBOOLEAN)
            luaL_error(L, "%s%s must be a boolean", who, key);
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}
