/*
 * lua_util.c: the Lua module "mpic.core.util": hashes (OpenSSL), encodings
 * (encode.c), JSON (jansson), regular expressions (PCRE2 with match and
 * depth limits against ReDoS), great-circle distance, random bytes.
 *
 * JSON mapping: objects <-> tables with string keys, arrays <-> sequences,
 * null <-> util.null (a unique light userdata). An empty table encodes as {}
 * unless it carries the metatable util.array_mt. Invalid UTF-8 in strings is
 * replaced by U+FFFD on encode. Decoding rejects duplicate keys.
 * util.audit is the audit log writer of audit.c ("mpic.core.audit").
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "audit.h"
#include "encode.h"
#include "lua_fs.h"
#include "util.h"

#include <idn2.h>
#include <jansson.h>
#include <lauxlib.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pcre2.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int null_sentinel;
#define JSON_NULL ((void *)&null_sentinel)
#define ARRAY_MT "mpic.json.array"
#define MAX_DEPTH 64

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[32];
    unsigned int len = 0;
    if (!EVP_Digest(s, n, md, &len, EVP_sha256(), NULL))
        return luaL_error(L, "sha256 failed");
    lua_pushlstring(L, (const char *)md, len);
    return 1;
}

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

static int l_distance_km(lua_State *L)
{
    lua_pushnumber(L, mpic_distance_km(luaL_checknumber(L, 1), luaL_checknumber(L, 2),
                                       luaL_checknumber(L, 3), luaL_checknumber(L, 4)));
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

static int l_time_ns(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
    return 1;
}

/* util.append_line(path, line [, sync]) -> true | nil, err
 * Appends line plus a newline with one O_APPEND write (so concurrent
 * writers never interleave inside a line), then fsyncs when sync is true.
 * Used for the audit log: the record is durable before the verdict leaves. */
static int l_append_line(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *line = luaL_checklstring(L, 2, &n);
    int sync = lua_isnone(L, 3) ? 1 : lua_toboolean(L, 3);
    if (memchr(line, '\n', n))
        return luaL_argerror(L, 2, "line must not contain a newline");
    char *buf = malloc(n + 1);
    if (!buf)
        return luaL_error(L, "out of memory");
    memcpy(buf, line, n);
    buf[n] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    const char *what = "open";
    size_t off = 0;
    if (fd >= 0) {
        what = "write";
        while (off < n + 1) {
            ssize_t w = write(fd, buf + off, n + 1 - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (off == n + 1 && sync && fsync(fd) != 0)
            off = 0, what = "fsync";
    }
    int err = errno;
    free(buf);
    if (fd >= 0)
        close(fd);
    if (fd < 0 || off != n + 1) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
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

/* ---- regex ---------------------------------------------------------------- */

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

/* ---- JSON ------------------------------------------------------------------ */

static json_t *to_json(lua_State *L, int idx, int depth, const char **err);

static json_t *string_to_json(lua_State *L, int idx)
{
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    char *clean = malloc(3 * n + 1);
    if (!clean)
        return NULL;
    size_t m = mpic_utf8_sanitize(s, n, clean);
    json_t *j = json_stringn_nocheck(clean, m);
    free(clean);
    return j;
}

static int is_array(lua_State *L, int idx, size_t *len)
{
    size_t n = lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1 || (size_t)k > n) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    *len = n;
    if (count == 0) { /* empty: array only when marked */
        int marked = 0;
        if (lua_getmetatable(L, idx)) {
            luaL_getmetatable(L, ARRAY_MT);
            marked = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
        }
        return marked;
    }
    return count == n;
}

static json_t *table_to_json(lua_State *L, int idx, int depth, const char **err)
{
    size_t n;
    json_t *j;
    if (is_array(L, idx, &n)) {
        j = json_array();
        for (size_t i = 1; j && i <= n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            json_t *v = to_json(L, lua_gettop(L), depth + 1, err);
            lua_pop(L, 1);
            if (!v || json_array_append_new(j, v)) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    }
    j = json_object();
    lua_pushnil(L);
    while (j && lua_next(L, idx)) {
        int vt = lua_gettop(L);
        const char *key;
        char numkey[64];
        if (lua_type(L, vt - 1) == LUA_TSTRING) {
            key = lua_tostring(L, vt - 1);
        } else if (lua_type(L, vt - 1) == LUA_TNUMBER) {
            lua_Number kn = lua_tonumber(L, vt - 1);
            snprintf(numkey, sizeof numkey, "%.14g", kn);
            key = numkey;
        } else {
            *err = "table key is not a string or number";
            lua_pop(L, 2);
            json_decref(j);
            return NULL;
        }
        json_t *v = to_json(L, vt, depth + 1, err);
        lua_pop(L, 1);
        if (!v || json_object_set_new(j, key, v)) {
            lua_pop(L, 1);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

static json_t *to_json(lua_State *L, int idx, int depth, const char **err)
{
    if (depth > MAX_DEPTH) {
        *err = "nesting too deep (or a cycle)";
        return NULL;
    }
    luaL_checkstack(L, 8, "json nesting");
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer(lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) {
            *err = "number is not finite";
            return NULL;
        }
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: return string_to_json(L, idx);
    case LUA_TTABLE: return table_to_json(L, idx, depth, err);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == JSON_NULL)
            return json_null();
        /* fall through */
    default: *err = "value cannot be encoded as JSON"; return NULL;
    }
}

/* ---- JSON text encoder ----------------------------------------------------
 * The default (compact) encoding writes JSON text straight from the Lua
 * values into one growable buffer reused from call to call: no jansson tree,
 * no per-string allocation. Its output is the text jansson's compact dump
 * gives for the same values (same escapes, same number forms), except for
 * keys: invalid UTF-8 in a key is replaced like in values (jansson refused
 * the key) and a key holding a NUL byte is written whole (jansson cut it
 * there). A non-array table with a number key takes the jansson path, which
 * merges a number key with the equal string key. */

struct jbuf {
    char *p;
    size_t len, cap;
};

static struct jbuf jtext;

#define JBUF_KEEP (1u << 20) /* a larger buffer is released after use */

static int jb_reserve(struct jbuf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes; shortest form,
 * no surrogates, at most U+10FFFF), or 0 (mpic_utf8_sanitize's rule). */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], min;
    size_t len;
    if (c < 0xC2 || c > 0xF4)
        return 0; /* continuation byte, overlong 2-byte lead, or past U+10FFFF */
    if (c < 0xE0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if (c < 0xF0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else {
        len = 4, min = 0x10000, c &= 0x07;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

/* A JSON string: escapes as jansson (\" \\ \b \f \n \r \t, other controls
 * as \u00XX), invalid UTF-8 bytes as U+FFFD each. */
static int jb_string(struct jbuf *b, const char *str, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    /* worst case: every byte becomes \u00XX (6) or U+FFFD (3) */
    if (n > ((size_t)-1 - 2) / 6 || jb_reserve(b, 6 * n + 2))
        return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_valid_len(s + i, n - i);
            if (l == 0) {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
                i++;
            } else {
                memcpy(o, s + i, l);
                o += l;
                i += l;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u', *o++ = '0', *o++ = '0';
            *o++ = hexd[c >> 4];
            *o++ = hexd[c & 15];
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

static int jb_raw(struct jbuf *b, const char *s, size_t n)
{
    if (jb_reserve(b, n))
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* A real as jansson writes it: %.17g, ".0" added when it would read back
 * as an integer, exponent without '+' or leading zeros. */
static int jb_real(struct jbuf *b, double v)
{
    char num[40];
    int len = snprintf(num, sizeof num - 3, "%.17g", v);
    if (len < 0 || len >= (int)sizeof num - 3)
        return -1;
    if (!strchr(num, '.') && !strchr(num, 'e')) {
        memcpy(num + len, ".0", 3);
        len += 2;
    }
    char *e = strchr(num, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(num + len - end) + 1);
            len -= (int)(end - start);
        }
    }
    return jb_raw(b, num, (size_t)len);
}

enum { ENC_OK = 0, ENC_ERR = -1, ENC_JANSSON = -2 };

static int is_array(lua_State *L, int idx, size_t *len);

static int enc_value(lua_State *L, struct jbuf *b, int idx, int depth, const char **err)
{
    if (depth > MAX_DEPTH) {
        *err = "nesting too deep (or a cycle)";
        return ENC_ERR;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return jb_raw(b, "null", 4) ? ENC_ERR : ENC_OK;
    case LUA_TBOOLEAN:
        return (lua_toboolean(L, idx) ? jb_raw(b, "true", 4) : jb_raw(b, "false", 5)) ? ENC_ERR
                                                                                      : ENC_OK;
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx)) {
            char num[32];
            int len = snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
            return jb_raw(b, num, (size_t)len) ? ENC_ERR : ENC_OK;
        }
        lua_Number v = lua_tonumber(L, idx);
        if (!isfinite(v)) {
            *err = "number is not finite";
            return ENC_ERR;
        }
        return jb_real(b, v) ? ENC_ERR : ENC_OK;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return jb_string(b, s, n) ? ENC_ERR : ENC_OK;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == JSON_NULL)
            return jb_raw(b, "null", 4) ? ENC_ERR : ENC_OK;
        break;
    case LUA_TTABLE: break;
    default: *err = "value cannot be encoded as JSON"; return ENC_ERR;
    }
    if (lua_type(L, idx) != LUA_TTABLE) {
        *err = "value cannot be encoded as JSON";
        return ENC_ERR;
    }
    luaL_checkstack(L, 8, "json nesting");
    size_t n;
    int rc;
    if (is_array(L, idx, &n)) {
        if (jb_raw(b, "[", 1))
            return ENC_ERR;
        for (size_t i = 1; i <= n; i++) {
            if (i > 1 && jb_raw(b, ",", 1))
                return ENC_ERR;
            lua_rawgeti(L, idx, (lua_Integer)i);
            rc = enc_value(L, b, lua_gettop(L), depth + 1, err);
            lua_pop(L, 1);
            if (rc != ENC_OK)
                return rc;
        }
        return jb_raw(b, "]", 1) ? ENC_ERR : ENC_OK;
    }
    if (jb_raw(b, "{", 1))
        return ENC_ERR;
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int vt = lua_gettop(L);
        int kt = lua_type(L, vt - 1);
        if (kt != LUA_TSTRING) {
            if (kt != LUA_TNUMBER)
                *err = "table key is not a string or number";
            lua_pop(L, 2);
            return kt == LUA_TNUMBER ? ENC_JANSSON : ENC_ERR;
        }
        size_t kn;
        const char *k = lua_tolstring(L, vt - 1, &kn);
        if ((!first && jb_raw(b, ",", 1)) || jb_string(b, k, kn) || jb_raw(b, ":", 1)) {
            lua_pop(L, 2);
            return ENC_ERR;
        }
        first = 0;
        rc = enc_value(L, b, vt, depth + 1, err);
        lua_pop(L, 1);
        if (rc != ENC_OK) {
            lua_pop(L, 1);
            return rc;
        }
    }
    return jb_raw(b, "}", 1) ? ENC_ERR : ENC_OK;
}

/* util.json_encode(value [, {pretty=true, sort=true}]) -> string or nil, err */
static int l_json_encode(lua_State *L)
{
    const char *err = "out of memory";
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "pretty");
        if (lua_toboolean(L, -1))
            flags = JSON_INDENT(2) | JSON_ENCODE_ANY;
        lua_getfield(L, 2, "sort");
        if (lua_toboolean(L, -1))
            flags |= JSON_SORT_KEYS;
        lua_pop(L, 2);
    }
    lua_settop(L, 1);
    if (flags == (JSON_COMPACT | JSON_ENCODE_ANY)) {
        jtext.len = 0;
        int rc = enc_value(L, &jtext, 1, 0, &err);
        if (rc == ENC_OK)
            lua_pushlstring(L, jtext.p, jtext.len);
        if (jtext.cap > JBUF_KEEP) {
            free(jtext.p);
            jtext.p = NULL;
            jtext.cap = 0;
        }
        jtext.len = 0;
        if (rc == ENC_OK)
            return 1;
        if (rc == ENC_ERR) {
            lua_pushnil(L);
            lua_pushstring(L, err);
            return 2;
        }
        lua_settop(L, 1); /* ENC_JANSSON: a number key in an object */
    }
    json_t *j = to_json(L, 1, 0, &err);
    if (!j) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    char *s = json_dumps(j, flags);
    json_decref(j);
    if (!s)
        return luaL_error(L, "json encode failed");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

/* Depth of a decoded document, bounded: decode refuses what encode would. */
static int json_too_deep(json_t *j, int depth)
{
    if (depth > MAX_DEPTH)
        return 1;
    size_t i;
    const char *k;
    json_t *v;
    if (json_is_object(j)) {
        json_object_foreach(j, k, v)
        {
            if (json_too_deep(v, depth + 1))
                return 1;
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            if (json_too_deep(v, depth + 1))
                return 1;
        }
    }
    return 0;
}

static void push_json(lua_State *L, json_t *j, int depth)
{
    luaL_checkstack(L, 4, "json nesting");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach(j, k, v)
        {
            push_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        lua_createtable(L, (int)json_array_size(j), 0);
        luaL_setmetatable(L, ARRAY_MT);
        json_array_foreach(j, i, v)
        {
            push_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(j)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    default: lua_pushlightuserdata(L, JSON_NULL); break;
    }
}

/* util.json_decode(text) -> value, or nil, "line L column C: message" */
static int l_json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    json_error_t e;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!j) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON at line %d column %d: %s", e.line, e.column, e.text);
        return 2;
    }
    if (json_too_deep(j, 0)) {
        json_decref(j);
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON: nesting deeper than %d levels", MAX_DEPTH);
        return 2;
    }
    push_json(L, j, 0);
    json_decref(j);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"sha256", l_sha256},
    {"hex", l_hex},
    {"base64", l_base64},
    {"base64url", l_base64url},
    {"base64_decode", l_base64_decode},
    {"base32", l_base32},
    {"utf8_sanitize", l_utf8_sanitize},
    {"distance_km", l_distance_km},
    {"random_bytes", l_random_bytes},
    {"regex_search", l_regex_search},
    {"time_ns", l_time_ns},
    {"idna_to_ascii", l_idna_to_ascii},
    {"idna_check_alabel", l_idna_check_alabel},
    {"isatty", l_isatty},
    {"append_line", l_append_line},
    {"json_encode", l_json_encode},
    {"json_decode", l_json_decode},
    {NULL, NULL},
};

int luaopen_mpic_util(lua_State *L)
{
    luaL_newlib(L, funcs);
    mpic_fs_register(L); /* listdir, filetype, mkdir (lua_fs.c) */
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    luaL_newmetatable(L, ARRAY_MT);
    lua_pushliteral(L, "json array");
    lua_setfield(L, -2, "__name");
    lua_setfield(L, -2, "array_mt");
    luaopen_mpic_audit(L); /* the group-commit audit writer (audit.c) */
    lua_setfield(L, -2, "audit");
    return 1;
}
