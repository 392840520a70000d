/*
 * util.h: Lua modules implemented in C that are not probes.
 */
#ifndef MPIC_UTIL_H
#define MPIC_UTIL_H

#include <lua.h>
#include <stddef.h>

int luaopen_mpic_util(lua_State *L); /* "mpic.core.util" (lua_util.c) */
int luaopen_mpic_yaml(lua_State *L); /* "mpic.core.yaml" (yaml.c) */

/* SHA-256 of n bytes into out; 0 on success (lua_crypto.c). Thread-safe. */
int mpic_sha256(const void *data, size_t n, unsigned char out[32]);

#endif
