/*
 * lua_text.c: the text functions of "mpic.core.util": hex, base64 and base32
 * (encode.c), UTF-8 repair, IDNA (libidn2) and regular expressions (PCRE2
 * with match and depth limits against ReDoS).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "encode.h"
#include "lua_util.h"

#include <idn2.h>
#include <lauxlib.h>
#include <pcre2.h>
#include <string.h>

static int l_hex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 2 * n + 1);
    mpic_hex((const unsigned char *)s, n, out);
    luaL_pushresultsize(&b, 2 * n);
    return 1;
}

static int push_b64(lua_State *L, int url)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, MPIC_B64_LEN(n) + 1);
    luaL_pushresultsize(&b, mpic_base64((const unsigned char *)s, n, out, url));
    return 1;
}

static int l_base64(lua_State *L) { return push_b64(L, 0); }
static int l_base64url(lua_State *L) { return push_b64(L, 1); }

static int l_base64_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n + 1);
    long r = mpic_base64_decode(s, n, (unsigned char *)out);
    if (r < 0) {
        luaL_pushresultsize(&b, 0);
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64");
        return 2;
    }
    luaL_pushresultsize(&b, (size_t)r);
    return 1;
}

static int l_base32(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, MPIC_B32_LEN(n) + 1);
    luaL_pushresultsize(&b, mpic_base32((const unsigned char *)s, n, out));
    return 1;
}

static int l_utf8_sanitize(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 3 * n + 1);
    luaL_pushresultsize(&b, mpic_utf8_sanitize(s, n, out));
    return 1;
}

/* util.idna_to_ascii(label) -> A-label (IDNA2008, UTS #46 non-transitional
 * mapping, NFC input) or nil, err. For one label or a whole name. */
static int l_idna_to_ascii(lua_State *L)
{
    const char *in = luaL_checkstring(L, 1);
    char *out = NULL;
    int rc = idn2_to_ascii_8z(in, &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        lua_pushnil(L);
        lua_pushstring(L, idn2_strerror(rc));
        return 2;
    }
    lua_pushstring(L, out);
    idn2_free(out);
    return 1;
}

/* util.idna_check_alabel(label) -> true or nil, err: an "xn--" label must
 * decode to a valid U-label that encodes back to exactly the same text. */
static int l_idna_check_alabel(lua_State *L)
{
    const char *in = luaL_checkstring(L, 1);
    char *u = NULL, *back = NULL;
    int rc = idn2_to_unicode_8z8z(in, &u, 0);
    if (rc == IDN2_OK)
        rc = idn2_to_ascii_8z(u, &back, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    int same = rc == IDN2_OK && back && strcmp(back, in) == 0;
    idn2_free(u);
    idn2_free(back);
    if (!same) {
        lua_pushnil(L);
        lua_pushstring(L, rc == IDN2_OK ? "A-label does not round-trip" : idn2_strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* util.regex_search(pattern, subject [, caseless]) -> true/false, or nil, err */
static int l_regex_search(lua_State *L)
{
    size_t plen, slen;
    const char *pat = luaL_checklstring(L, 1, &plen);
    const char *subj = luaL_checklstring(L, 2, &slen);
    int caseless = lua_toboolean(L, 3);
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat, plen,
                      (caseless ? PCRE2_CASELESS : 0) | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                      &errcode, &erroff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        lua_pushnil(L);
        lua_pushfstring(L, "invalid regex at offset %d: %s", (int)erroff, (const char *)msg);
        return 2;
    }
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = -1;
    if (mc && md) {
        pcre2_set_match_limit(mc, 100000);
        pcre2_set_depth_limit(mc, 1000);
        rc = pcre2_match(re, (PCRE2_SPTR)subj, slen, 0, 0, md, mc);
    }
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    pcre2_code_free(re);
    if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH) {
        lua_pushboolean(L, rc >= 0);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT
                          ? "regex match limit exceeded"
                          : "regex match failed");
    return 2;
}

static const luaL_Reg funcs[] = {
    {"hex", l_hex},
    {"base64", l_base64},
    {"base64url", l_base64url},
    {"base64_decode", l_base64_decode},
    {"base32", l_base32},
    {"utf8_sanitize", l_utf8_sanitize},
    {"idna_to_ascii", l_idna_to_ascii},
    {"idna_check_alabel", l_idna_check_alabel},
    {"regex_search", l_regex_search},
    {NULL, NULL},
};

void mpic_util_register_text(lua_State *L) { luaL_setfuncs(L, funcs, 0); }
