/*
 * yaml.c: the Lua module "mpic.core.yaml": YAML text -> Lua value, using
 * libyaml's event parser. Generic; config validation happens in Lua.
 *
 * Scalars follow the YAML 1.2 core schema for plain scalars (null, booleans,
 * integers, floats); quoted or !!str-tagged scalars stay strings. Mapping
 * keys are always strings; duplicate keys are an error. Aliases refer to the
 * same Lua value as their anchor (no copying, so alias bombs cost nothing).
 * Nesting is limited; invalid UTF-8 is reported by libyaml with a position.
 *
 * yaml.load(text) -> value | nil, "line L column C: message"
 * Exactly one document is accepted; an empty stream gives nil.
 */
#include "util.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

struct yctx {
    yaml_parser_t parser;
    lua_State *L;
    int anchors; /* stack index of the anchors table */
    char err[256];
};

static int fail(struct yctx *c, const yaml_mark_t *m, const char *msg)
{
    snprintf(c->err, sizeof c->err, "line %lu column %lu: %s", (unsigned long)m->line + 1,
             (unsigned long)m->column + 1, msg);
    return -1;
}

static int next_event(struct yctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        const char *p = c->parser.problem ? c->parser.problem : "parse error";
        snprintf(c->err, sizeof c->err, "line %lu column %lu: %s%s%s",
                 (unsigned long)c->parser.problem_mark.line + 1,
                 (unsigned long)c->parser.problem_mark.column + 1, p, c->parser.context ? " " : "",
                 c->parser.context ? c->parser.context : "");
        return -1;
    }
    return 0;
}

static int eq(const char *s, const char *a, const char *b, const char *d)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, d) == 0;
}

static void push_plain_scalar(lua_State *L, const char *s, size_t n)
{
    char *end;
    if (n == 0 || (n == 1 && s[0] == '~') || eq(s, "null", "Null", "NULL")) {
        lua_pushnil(L);
        return;
    }
    if (eq(s, "true", "True", "TRUE")) {
        lua_pushboolean(L, 1);
        return;
    }
    if (eq(s, "false", "False", "FALSE")) {
        lua_pushboolean(L, 0);
        return;
    }
    if (strlen(s) == n) {
        errno = 0;
        const char *p = s + (s[0] == '-' || s[0] == '+');
        if (p[0] >= '0' && p[0] <= '9') {
            int base = 10;
            const char *digits = s;
            if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && s == p) {
                base = p[1] == 'x' ? 16 : 8;
                digits = p + 2;
            }
            long long v = strtoll(digits, &end, base);
            if (*end == '\0' && errno == 0 && end != digits) {
                lua_pushinteger(L, (lua_Integer)v);
                return;
            }
            errno = 0;
            double d = strtod(s, &end);
            if (*end == '\0' && errno == 0 && base == 10) {
                lua_pushnumber(L, d);
                return;
            }
        }
        if (eq(s, ".inf", ".Inf", ".INF") || eq(s, "+.inf", "+.Inf", "+.INF")) {
            lua_pushnumber(L, HUGE_VAL);
            return;
        }
        if (eq(s, "-.inf", "-.Inf", "-.INF")) {
            lua_pushnumber(L, -HUGE_VAL);
            return;
        }
        if (eq(s, ".nan", ".NaN", ".NAN")) {
            lua_pushnumber(L, NAN);
            return;
        }
    }
    lua_pushlstring(L, s, n);
}

static int parse_node(struct yctx *c, yaml_event_t *ev, int depth);

static void remember_anchor(struct yctx *c, const yaml_char_t *anchor)
{
    if (!anchor)
        return;
    lua_pushvalue(c->L, -1);
    lua_setfield(c->L, c->anchors, (const char *)anchor);
}

static int parse_collection_items(struct yctx *c, int mapping, int depth)
{
    lua_State *L = c->L;
    lua_Integer idx = 0;
    for (;;) {
        yaml_event_t ev;
        if (next_event(c, &ev))
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (!mapping) {
            if (parse_node(c, &ev, depth + 1))
                return -1;
            lua_rawseti(L, -2, ++idx);
            continue;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            int r = fail(c, &ev.start_mark, "mapping keys must be scalars");
            yaml_event_delete(&ev);
            return r;
        }
        lua_pushlstring(L, (const char *)ev.data.scalar.value, ev.data.scalar.length);
        yaml_mark_t mark = ev.start_mark;
        yaml_event_delete(&ev);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) != LUA_TNIL) {
            char msg[200];
            snprintf(msg, sizeof msg, "duplicate key '%.100s'", lua_tostring(L, -2));
            lua_pop(L, 2);
            return fail(c, &mark, msg);
        }
        lua_pop(L, 1);
        if (next_event(c, &ev) || parse_node(c, &ev, depth + 1))
            return -1;
        lua_rawset(L, -3);
    }
}

/* Consumes ev; pushes one value. */
static int parse_node(struct yctx *c, yaml_event_t *ev, int depth)
{
    lua_State *L = c->L;
    int r = 0;
    if (depth > MAX_DEPTH) {
        r = fail(c, &ev->start_mark, "nesting too deep");
        yaml_event_delete(ev);
        return r;
    }
    luaL_checkstack(L, 8, "yaml nesting");
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *tag = (const char *)ev->data.scalar.tag;
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag)
            push_plain_scalar(L, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        else
            lua_pushlstring(L, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        remember_anchor(c, ev->data.scalar.anchor);
        break;
    }
    case YAML_ALIAS_EVENT:
        if (lua_getfield(L, c->anchors, (const char *)ev->data.alias.anchor) == LUA_TNIL &&
            !lua_toboolean(L, -1)) {
            lua_pop(L, 1);
            r = fail(c, &ev->start_mark, "unknown alias");
        }
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int mapping = ev->type == YAML_MAPPING_START_EVENT;
        lua_newtable(L);
        remember_anchor(c,
                        mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
        yaml_event_delete(ev);
        r = parse_collection_items(c, mapping, depth);
        if (r)
            lua_pop(L, 1);
        return r;
    }
    default: r = fail(c, &ev->start_mark, "unexpected YAML event"); break;
    }
    yaml_event_delete(ev);
    return r;
}

/* Parse the whole stream; pushes the value of the single document. */
static int parse_stream(struct yctx *c)
{
    lua_State *L = c->L;
    yaml_event_t ev;
    int docs = 0;
    lua_pushnil(L); /* result */
    for (;;) {
        if (next_event(c, &ev))
            return -1;
        yaml_event_type_t type = ev.type;
        if (type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (type != YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (++docs > 1) {
            fail(c, &ev.start_mark, "more than one YAML document; expected exactly one");
            yaml_event_delete(&ev);
            return -1;
        }
        yaml_event_delete(&ev);
        lua_pop(L, 1);
        if (next_event(c, &ev) || parse_node(c, &ev, 0))
            return -1;
        if (next_event(c, &ev)) /* DOCUMENT_END */
            return -1;
        yaml_event_delete(&ev);
    }
}

static int l_load(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    struct yctx *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    if (!yaml_parser_initialize(&c->parser))
        return luaL_error(L, "yaml: out of memory");
    yaml_parser_set_input_string(&c->parser, (const unsigned char *)s, n);
    c->L = L;
    lua_newtable(L);
    c->anchors = lua_gettop(L);
    int top = lua_gettop(L);
    int r = parse_stream(c);
    yaml_parser_delete(&c->parser);
    if (r) {
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushstring(L, c->err);
        return 2;
    }
    return 1;
}

int luaopen_mpic_yaml(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_load);
    lua_setfield(L, -2, "load");
    return 1;
}
