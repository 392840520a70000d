/*
 * audit.h: the group-commit audit log writer (audit.c), exposed to Lua as
 * the module "mpic.core.audit" (also reachable as mpic.core.util.audit).
 */
#ifndef MPIC_AUDIT_H
#define MPIC_AUDIT_H

#include <lua.h>

int luaopen_mpic_audit(lua_State *L);

#endif
