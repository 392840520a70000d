/*
 * lua_util.h: the parts of the Lua module "mpic.core.util", one file per
 * concern. Each function adds its functions to the table on top of the stack.
 */
#ifndef MPIC_LUA_UTIL_H
#define MPIC_LUA_UTIL_H

#include <lua.h>

/* lua_json.c: json_encode, json_decode, null, array_mt */
void mpic_util_register_json(lua_State *L);
/* lua_text.c: hex, base64, base64url, base64_decode, base32, utf8_sanitize,
 * idna_to_ascii, idna_check_alabel, regex_search */
void mpic_util_register_text(lua_State *L);
/* lua_crypto.c: sha256, random_bytes */
void mpic_util_register_crypto(lua_State *L);

#endif
