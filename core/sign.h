/*
 * sign.h: Ed25519 keys and the canonical JSON encoding of signed evidence
 * (lua_sign.c), exposed to Lua as the module "mpic.core.sign". The audit
 * writer (audit.c) signs its checkpoints with a key object of this module.
 */
#ifndef MPIC_SIGN_H
#define MPIC_SIGN_H

#include <lua.h>
#include <openssl/evp.h>
#include <stddef.h>

int luaopen_mpic_sign(lua_State *L);

/* The private key at idx (a key object of "mpic.core.sign"); raises when idx
 * holds none. The key stays owned by the object (EVP_PKEY_up_ref to keep). */
EVP_PKEY *mpic_sign_check_private(lua_State *L, int idx);

/* The key id of a key: lowercase hex SHA-256 of its DER SubjectPublicKeyInfo
 * (65 bytes with the NUL). Returns 0, or -1 on failure. */
int mpic_sign_key_id(EVP_PKEY *key, char out[65]);

/* Ed25519 signature of msg into sig (64 bytes). Returns 0, or -1. */
int mpic_sign_raw(EVP_PKEY *key, const unsigned char *msg, size_t n, unsigned char sig[64]);

#endif
