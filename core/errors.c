/*
 * errors.c: names and classes of the probe failure kinds listed in errors.h,
 * and the Lua module "mpic.core.errors" that hands the same table to Lua
 * (lua/mpic/error_types.lua owns it there), so that whether a failure kind
 * is a definite answer is written down once.
 * Uses: Lua 5.4 (the binding only).
 */
#include "errors.h"

#include <lauxlib.h>
#include <lua.h>

static const struct {
    const char *name;
    int completed;
} kinds[] = {{"ok", 1},
#define X(e, n, c) {n, c},
             MPIC_ERRORS(X)
#undef X
};

const char *mpic_err_name(enum mpic_err e)
{
    if ((int)e <= 0 || e >= MPIC_E__COUNT)
        return "internal";
    return kinds[e].name;
}

int mpic_err_completed(enum mpic_err e)
{
    if ((int)e <= 0 || e >= MPIC_E__COUNT)
        return 0;
    return kinds[e].completed;
}

int luaopen_mpic_errors(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_createtable(L, MPIC_E__COUNT - 1, 0);
    lua_createtable(L, 0, MPIC_E__COUNT - 1);
    for (int e = 1; e < MPIC_E__COUNT; e++) {
        lua_pushstring(L, kinds[e].name);
        lua_rawseti(L, -3, e);
        lua_pushboolean(L, kinds[e].completed);
        lua_setfield(L, -2, kinds[e].name);
    }
    lua_setfield(L, -3, "completed");
    lua_setfield(L, -2, "names");
    return 1;
}
