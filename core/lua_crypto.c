/*
 * lua_crypto.c: the hashing and randomness functions of "mpic.core.util"
 * (OpenSSL). Signatures live in lua_sign.c.
 */
#include "lua_util.h"
#include "util.h"

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>

/* SHA-256 fetched once: EVP_sha256() makes every EVP_Digest call look the
 * algorithm up again in the provider store (a lock and a hash lookup). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

int mpic_sha256(const void *data, size_t n, unsigned char out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    unsigned int len = 0;
    const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
    return EVP_Digest(data, n, out, &len, md, NULL) == 1 && len == 32 ? 0 : -1;
}

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[32];
    if (mpic_sha256(s, n, md) != 0)
        return luaL_error(L, "sha256 failed");
    lua_pushlstring(L, (const char *)md, sizeof md);
    return 1;
}

static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1, "0..4096 bytes");
    unsigned char buf[4096];
    if (RAND_bytes(buf, (int)n) != 1)
        return luaL_error(L, "RAND_bytes failed");
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"sha256", l_sha256},
    {"random_bytes", l_random_bytes},
    {NULL, NULL},
};

void mpic_util_register_crypto(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
