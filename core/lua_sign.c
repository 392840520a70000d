/*
 * lua_sign.c: Ed25519 signing and verification through OpenSSL 3 (EVP), and
 * the canonical JSON encoding that signed evidence is made of.
 *
 * Provides the Lua module "mpic.core.sign":
 *   generate() -> private_pem, public_pem          (a fresh Ed25519 key)
 *   private(pem) -> key | nil, "parameter", detail (Ed25519 only)
 *   public(pem) -> pub | nil, "parameter", detail  (Ed25519 only)
 *   key:sign(msg) -> 64-byte signature; key:public() -> pub; key:id()
 *   pub:verify(msg, sig) -> boolean; pub:pem() -> PEM text; pub:id()
 *     id: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo, the same as
 *     `openssl pkey -pubin -outform DER | openssl dgst -sha256`
 *   canonical(value) -> text | nil, why
 *     Deterministic JSON (docs/EVIDENCE.md): object keys sorted by their
 *     bytes, no whitespace, integers only (a float with an integral value is
 *     written as that integer, any other is refused), strings as UTF-8 with
 *     only '"', '\\' and the controls U+0000..U+001F escaped (\" \\ and
 *     \u00xx, lowercase hex), each byte of invalid UTF-8 replaced by U+FFFD
 *     (the rule of util.json_encode, so that canonical(x) equals
 *     canonical(json_decode(json_encode(x)))), nil and util.null as null, a
 *     table as an array when it is a non-empty sequence or carries the JSON
 *     array metatable, else as an object (string keys only). Depth <= 32.
 * Uses: OpenSSL 3 (EVP_PKEY Ed25519, EVP_Digest).
 */
#include "sign.h"
#include "encode.h"
#include "errors.h"
#include "rt.h"

#include <lauxlib.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRIV_MT "mpic.sign.private"
#define PUB_MT "mpic.sign.public"
#define ARRAY_MT "mpic.json.array" /* util.json_decode's array marker */
#define CANON_MAX_DEPTH 32

static EVP_PKEY **new_box(lua_State *L, const char *mt)
{
    EVP_PKEY **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, mt);
    return box;
}

static int key_gc(lua_State *L)
{
    EVP_PKEY **box = lua_touserdata(L, 1);
    if (box && *box) {
        EVP_PKEY_free(*box);
        *box = NULL;
    }
    return 0;
}

EVP_PKEY *mpic_sign_check_private(lua_State *L, int idx)
{
    EVP_PKEY **box = luaL_checkudata(L, idx, PRIV_MT);
    if (!*box)
        luaL_argerror(L, idx, "key already freed");
    return *box;
}

static EVP_PKEY *check_pub(lua_State *L, int idx)
{
    EVP_PKEY **box = luaL_testudata(L, idx, PUB_MT);
    if (!box)
        box = luaL_checkudata(L, idx, PRIV_MT); /* a private key verifies too */
    if (!*box)
        luaL_argerror(L, idx, "key already freed");
    return *box;
}

static int push_ssl_fail(lua_State *L, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "%s: %s", what, e ? buf : "no key");
}

int mpic_sign_key_id(EVP_PKEY *key, char out[65])
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0)
        return -1;
    int ok = EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok || mdlen != 32)
        return -1;
    static const char hexd[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hexd[md[i] >> 4];
        out[2 * i + 1] = hexd[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

int mpic_sign_raw(EVP_PKEY *key, const unsigned char *msg, size_t n, unsigned char sig[64])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = 64;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, msg, n) == 1 && siglen == 64;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : -1;
}

/* sign.generate() -> private_pem, public_pem */
static int l_generate(lua_State *L)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!k)
        return push_ssl_fail(L, "key generation");
    BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
    int ok = a && b && PEM_write_bio_PrivateKey(a, k, NULL, NULL, 0, NULL, NULL) == 1 &&
             PEM_write_bio_PUBKEY(b, k) == 1;
    EVP_PKEY_free(k);
    if (ok) {
        char *p;
        long n = BIO_get_mem_data(a, &p);
        lua_pushlstring(L, p, (size_t)n);
        n = BIO_get_mem_data(b, &p);
        lua_pushlstring(L, p, (size_t)n);
    }
    BIO_free(a);
    BIO_free(b);
    if (!ok)
        return push_ssl_fail(L, "key encoding");
    return 2;
}

static int load_key(lua_State *L, int private)
{
    size_t n;
    const char *pem = luaL_checklstring(L, 1, &n);
    BIO *bio = BIO_new_mem_buf(pem, n > INT32_MAX ? INT32_MAX : (int)n);
    if (!bio)
        return luaL_error(L, "out of memory");
    EVP_PKEY **box = new_box(L, private ? PRIV_MT : PUB_MT);
    *box = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                   : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!*box)
        return push_ssl_fail(L, private ? "not a PEM private key" : "not a PEM public key");
    if (EVP_PKEY_get_id(*box) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(*box);
        *box = NULL;
        return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "the key is not an Ed25519 key");
    }
    return 1;
}

static int l_private(lua_State *L) { return load_key(L, 1); }
static int l_public(lua_State *L) { return load_key(L, 0); }

/* key:sign(msg) -> signature (64 bytes) */
static int l_key_sign(lua_State *L)
{
    EVP_PKEY *k = mpic_sign_check_private(L, 1);
    size_t n;
    const char *msg = luaL_checklstring(L, 2, &n);
    unsigned char sig[64];
    if (mpic_sign_raw(k, (const unsigned char *)msg, n, sig) != 0)
        return luaL_error(L, "Ed25519 signing failed");
    lua_pushlstring(L, (const char *)sig, sizeof sig);
    return 1;
}

/* key:public() -> the public half as its own object */
static int l_key_public(lua_State *L)
{
    EVP_PKEY *k = mpic_sign_check_private(L, 1);
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != 32)
        return push_ssl_fail(L, "public key");
    EVP_PKEY **box = new_box(L, PUB_MT);
    *box = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
    if (!*box)
        return push_ssl_fail(L, "public key");
    return 1;
}

/* pub:verify(msg, sig) -> boolean (a signature of another length: false) */
static int l_verify(lua_State *L)
{
    EVP_PKEY *k = check_pub(L, 1);
    size_t n, sn;
    const char *msg = luaL_checklstring(L, 2, &n);
    const char *sig = luaL_checklstring(L, 3, &sn);
    int ok = 0;
    if (sn == 64) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(ctx, (const unsigned char *)sig, sn, (const unsigned char *)msg, n) ==
                 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
    }
    lua_pushboolean(L, ok);
    return 1;
}

static int l_pem(lua_State *L)
{
    EVP_PKEY *k = check_pub(L, 1);
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_PUBKEY(b, k) != 1) {
        BIO_free(b);
        return push_ssl_fail(L, "public key encoding");
    }
    char *p;
    long n = BIO_get_mem_data(b, &p);
    lua_pushlstring(L, p, (size_t)n);
    BIO_free(b);
    return 1;
}

static int l_id(lua_State *L)
{
    char id[65];
    if (mpic_sign_key_id(check_pub(L, 1), id) != 0)
        return push_ssl_fail(L, "key id");
    lua_pushstring(L, id);
    return 1;
}

/* ---- canonical JSON ------------------------------------------------------ */

struct skey {
    const char *s;
    size_t n;
};

static int skey_cmp(const void *a, const void *b)
{
    const struct skey *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, m);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* Array length of the table at idx, or -1 when it is an object. */
static lua_Integer canon_array_len(lua_State *L, int idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return -1;
        }
        count++;
    }
    if (count == 0) {
        int marked = 0;
        if (lua_getmetatable(L, idx)) {
            luaL_getmetatable(L, ARRAY_MT);
            marked = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
        }
        return marked ? 0 : -1;
    }
    return count == n ? n : -1;
}

/* The encoder writes into a plain growable C buffer (a Lua buffer cannot
 * stay on the stack while table values are pushed above it). */
struct cbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void cb_add(struct cbuf *c, const char *s, size_t n)
{
    if (c->oom)
        return;
    if (c->cap - c->len < n) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap - c->len < n) {
            if (cap > ((size_t)-1) / 2) {
                c->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(c->p, cap);
        if (!p) {
            c->oom = 1;
            return;
        }
        c->p = p;
        c->cap = cap;
    }
    memcpy(c->p + c->len, s, n);
    c->len += n;
}

static void cb_string(struct cbuf *c, const char *str, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    cb_add(c, "\"", 1);
    size_t i = 0, run = 0; /* run: start of plain bytes not yet copied */
    while (i < n) {
        unsigned ch = s[i];
        if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
            i++;
            continue;
        }
        if (ch >= 0x80) {
            size_t l = mpic_utf8_seq_len(s + i, n - i);
            if (l) {
                i += l;
                continue;
            }
        }
        cb_add(c, str + run, i - run);
        if (ch >= 0x80) {
            cb_add(c, "\xEF\xBF\xBD", 3);
        } else if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            cb_add(c, e, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', hexd[ch >> 4], hexd[ch & 15]};
            cb_add(c, u, 6);
        }
        i++;
        run = i;
    }
    cb_add(c, str + run, n - run);
    cb_add(c, "\"", 1);
}

static const char *cb_value(lua_State *L, struct cbuf *c, int idx, int depth)
{
    if (depth > CANON_MAX_DEPTH)
        return "nesting deeper than 32 levels (or a cycle)";
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TLIGHTUSERDATA: /* util.null */ cb_add(c, "null", 4); return NULL;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            cb_add(c, "true", 4);
        else
            cb_add(c, "false", 5);
        return NULL;
    case LUA_TNUMBER: {
        lua_Integer v;
        if (lua_isinteger(L, idx)) {
            v = lua_tointeger(L, idx);
        } else {
            lua_Number d = lua_tonumber(L, idx);
            if (!isfinite(d) || d != floor(d) || d < -9007199254740992.0 || d > 9007199254740992.0)
                return "a number is not an integer";
            v = (lua_Integer)d;
        }
        char num[32];
        int len = snprintf(num, sizeof num, "%lld", (long long)v);
        cb_add(c, num, (size_t)len);
        return NULL;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        cb_string(c, s, n);
        return NULL;
    }
    case LUA_TTABLE: break;
    default: return "a value cannot be encoded (not nil, boolean, number, string or table)";
    }
    luaL_checkstack(L, 6, "canonical nesting");
    idx = lua_absindex(L, idx);
    lua_Integer n = canon_array_len(L, idx);
    if (n >= 0) {
        cb_add(c, "[", 1);
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1)
                cb_add(c, ",", 1);
            lua_rawgeti(L, idx, i);
            const char *e = cb_value(L, c, -1, depth + 1);
            lua_pop(L, 1);
            if (e)
                return e;
        }
        cb_add(c, "]", 1);
        return NULL;
    }
    /* an object: its keys, sorted by bytes */
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            return "an object key is not a string";
        }
        count++;
    }
    struct skey *keys = count ? malloc(count * sizeof *keys) : NULL;
    if (count && !keys)
        return "out of memory";
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (k < count) {
            keys[k].s = lua_tolstring(L, -1, &keys[k].n); /* kept alive by the table */
            k++;
        }
    }
    if (k > 1) /* qsort wants a non-null array even for zero elements */
        qsort(keys, k, sizeof *keys, skey_cmp);
    cb_add(c, "{", 1);
    const char *err = NULL;
    for (size_t i = 0; i < k && !err; i++) {
        if (i)
            cb_add(c, ",", 1);
        cb_string(c, keys[i].s, keys[i].n);
        cb_add(c, ":", 1);
        lua_pushlstring(L, keys[i].s, keys[i].n);
        lua_rawget(L, idx);
        err = cb_value(L, c, -1, depth + 1);
        lua_pop(L, 1);
    }
    free(keys);
    if (err)
        return err;
    cb_add(c, "}", 1);
    return NULL;
}

/* sign.canonical(value) -> text | nil, why */
static int l_canonical(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    struct cbuf c = {NULL, 0, 0, 0};
    const char *err = cb_value(L, &c, 1, 0);
    if (!err && c.oom)
        err = "out of memory";
    if (err) {
        free(c.p);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushlstring(L, c.p ? c.p : "", c.len);
    free(c.p);
    return 1;
}

static const luaL_Reg priv_methods[] = {{"sign", l_key_sign}, {"public", l_key_public},
                                        {"verify", l_verify}, {"pem", l_pem},
                                        {"id", l_id},         {NULL, NULL}};
static const luaL_Reg pub_methods[] = {
    {"verify", l_verify}, {"pem", l_pem}, {"id", l_id}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"generate", l_generate},
                                 {"private", l_private},
                                 {"public", l_public},
                                 {"canonical", l_canonical},
                                 {NULL, NULL}};

static void new_mt(lua_State *L, const char *name, const luaL_Reg *methods)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, key_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}

int luaopen_mpic_sign(lua_State *L)
{
    new_mt(L, PRIV_MT, priv_methods);
    new_mt(L, PUB_MT, pub_methods);
    luaL_newlib(L, funcs);
    return 1;
}
