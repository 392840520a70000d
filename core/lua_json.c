/*
 * lua_json.c: the JSON functions of "mpic.core.util".
 *
 * Mapping: objects <-> tables with string keys, arrays <-> sequences,
 * null <-> util.null (a unique light userdata). An empty table encodes as {}
 * unless it carries the metatable util.array_mt. Invalid UTF-8 in strings is
 * replaced by U+FFFD on encode. Decoding (jansson) rejects duplicate keys.
 * The compact encoder writes text directly; pretty or sorted output, and
 * tables with number keys, go through jansson.
 */
#include "encode.h"
#include "lua_opts.h"
#include "lua_util.h"

#include <jansson.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int null_sentinel;
#define JSON_NULL ((void *)&null_sentinel)
#define ARRAY_MT "mpic.json.array"
#define MAX_DEPTH 64

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

/* ---- the JSON text encoder ----------------------------------------------------
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

/* A byte a JSON string holds as it is: printable ASCII (and DEL) except
 * '"' and '\\'. */
static inline int plain_byte(unsigned c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

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
        /* a run of bytes written as they are, copied at once */
        size_t run = i;
        while (run < n && plain_byte(s[run]))
            run++;
        if (run > i) {
            memcpy(o, s + i, run - i);
            o += run - i;
            i = run;
            if (i == n)
                break;
        }
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t l = mpic_utf8_seq_len(s + i, n - i);
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
    if (!lua_isnoneornil(L, 2)) {
        static const char *const known[] = {"pretty", "sort", NULL};
        luaL_checktype(L, 2, LUA_TTABLE);
        mpic_opt_check_keys(L, 2, "json_encode: ", known);
        if (mpic_opt_bool(L, 2, "json_encode: opts.", "pretty", 0))
            flags = JSON_INDENT(2) | JSON_ENCODE_ANY;
        if (mpic_opt_bool(L, 2, "json_encode: opts.", "sort", 0))
            flags |= JSON_SORT_KEYS;
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
    {"json_encode", l_json_encode},
    {"json_decode", l_json_decode},
    {NULL, NULL},
};

void mpic_util_register_json(lua_State *L)
{
    luaL_setfuncs(L, funcs, 0);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    luaL_newmetatable(L, ARRAY_MT);
    lua_pushliteral(L, "json array");
    lua_setfield(L, -2, "__name");
    lua_setfield(L, -2, "array_mt");
}
