/*
 * lua_http.c: the Lua module "mpic.core.http". Provides
 *   get(url, opts)          one yielding HTTP(S) hop (http.c) -> result table
 *                           or nil, kind, detail; opts.method/body/ca/cert/key
 *                           make it any request, with mutual TLS (opts.pinned_key
 *                           pins the server's public key), and
 *                           opts.keepalive lets it reuse a connection (agent channel).
 *                           Every connection's address is checked in C when the
 *                           socket is opened and a reserved one is refused
 *                           (nil, "reserved_address", why) unless
 *                           opts.allow_reserved (labs; the perspective passes its
 *                           network.allow_reserved_ips with each request); a
 *                           keepalive request is the agent channel, the CA's own
 *                           infrastructure, and defaults to allow_reserved = true
 *   request(url, opts)      the same function under a neutral name
 *   is_reserved(ip)         true, "[RFC1918]: Private-Use" | false (netaddr.c)
 *   parse_ip(text)          normalised text, family (4|6) | nil
 *   psl_icann_suffix(host)  the host's ICANN public suffix | nil, reason
 *   vet_name(host)          the ICANN public suffix of a name that may be
 *                           validated | nil, reason, kind ("special_use",
 *                           "no_suffix", "bare_suffix", "malformed",
 *                           "unavailable"; netaddr.c)
 *   url_parse(url [, base]) the URL split into parts | nil, reason
 *   set_channel_connections(n)  connections a keepalive channel may open to
 *                           one host at once (default CHANNEL_CONNECTIONS)
 *   active()                requests in flight
 * Uses the task runtime of rt.h (mpic_task_suspend) and two mpic_http
 * contexts per process, created on first use on mpic_loop(): one for probes
 * (a fresh connection each, up to HTTP_DEFAULT_HOST_CONNECTIONS per host) and
 * one for keepalive channels (agents), whose small pool of reused
 * connections keeps a burst of checks from opening hundreds of TLS
 * connections to one agent at once; requests beyond it wait their turn.
 */
#include "lua_http.h"

#include "http.h"
#include "netaddr.h"
#include "rt.h"

#include <errno.h>
#include "lua_opts.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_MAX_CALLER_HEADERS 64

enum { CTX_PROBE, CTX_CHANNEL, CTX_COUNT };
#define CHANNEL_CONNECTIONS 32L

static struct mpic_http *g_http[CTX_COUNT];
static long g_channel_connections = CHANNEL_CONNECTIONS;

struct lreq {
    struct mpic_pending p;
    struct mpic_http_req *req;
    char url[];
};

static struct mpic_http *http_ctx(lua_State *L, int which)
{
    long cap = which == CTX_CHANNEL ? g_channel_connections : HTTP_DEFAULT_HOST_CONNECTIONS;
    if (!g_http[which] && mpic_http_new(mpic_loop(), cap, &g_http[which]) != 0)
        luaL_error(L, "http: cannot initialise libcurl");
    return g_http[which];
}

static void on_done(struct mpic_http_req *req, void *arg)
{
    struct lreq *r = arg;
    mpic_pending_complete(&r->p);
}

static void on_cancel(void *arg)
{
    struct lreq *r = arg;
    mpic_http_req_abandon(r->req);
    free(r);
}

static int k_done(lua_State *L, int status, lua_KContext ctx)
{
    struct lreq *r = (struct lreq *)ctx;
    const struct mpic_http_result *res = mpic_http_result(r->req);
    int n;

    if (res->err != MPIC_OK) {
        n = mpic_push_fail(L, mpic_err_name(res->err), "%s", res->detail);
    } else {
        lua_createtable(L, 0, 12);
        lua_pushinteger(L, res->status);
        lua_setfield(L, -2, "status");
        lua_pushstring(L, res->reason ? res->reason : "");
        lua_setfield(L, -2, "reason");
        lua_createtable(L, (int)res->n_headers, 0);
        for (size_t i = 0; i < res->n_headers; i++) {
            lua_createtable(L, 2, 0);
            lua_pushstring(L, res->headers[i].name);
            lua_rawseti(L, -2, 1);
            lua_pushstring(L, res->headers[i].value);
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, "headers");
        if (res->location) {
            lua_pushstring(L, res->location);
            lua_setfield(L, -2, "location");
        }
        lua_pushlstring(L, res->body ? res->body : "", res->body_len);
        lua_setfield(L, -2, "body");
        lua_pushboolean(L, res->exceeded);
        lua_setfield(L, -2, "exceeded");
        lua_pushstring(L, res->ip);
        lua_setfield(L, -2, "ip");
        lua_pushinteger(L, res->port);
        lua_setfield(L, -2, "port");
        lua_pushinteger(L, res->elapsed_ms);
        lua_setfield(L, -2, "elapsed_ms");
        lua_pushstring(L, res->http_version);
        lua_setfield(L, -2, "http_version");
        lua_pushboolean(L, res->reused);
        lua_setfield(L, -2, "reused");
        lua_pushstring(L, r->url);
        lua_setfield(L, -2, "url");
        n = 1;
    }
    mpic_http_req_free(r->req);
    free(r);
    return n;
}

/* opts.headers = {["X-A"] = "b", ...}: "Name: value" lines, sorted by name so
 * the wire order is stable. The strings are anchored in a table at slot. */
static size_t collect_headers(lua_State *L, int t, const char **lines, int anchor)
{
    size_t n = 0;
    if (lua_getfield(L, t, "headers") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "http.get: opts.headers must be a table of name = value");
    int h = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, h)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "http.get: opts.headers must map strings to strings");
        if (n >= HTTP_MAX_CALLER_HEADERS)
            luaL_error(L, "http.get: too many headers (max %d)", HTTP_MAX_CALLER_HEADERS);
        lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
        lua_rawseti(L, anchor, (lua_Integer)n + 1);
        lua_pop(L, 1);
        n++;
    }
    lua_pop(L, 1);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, anchor, (lua_Integer)i + 1);
        lines[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    /* insertion sort: at most 64 entries */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            const char *tmp = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = tmp;
        }
    return n;
}

static int l_get(lua_State *L)
{
    const char *lines[HTTP_MAX_CALLER_HEADERS];
    struct mpic_http_opts o = {0};
    char err[256];
    size_t ulen;
    const char *url = luaL_checklstring(L, 1, &ulen);
    struct mpic_task *t = mpic_task_current(L);

    /* curl would fetch the text before the NUL, not the URL that was checked */
    luaL_argcheck(L, strlen(url) == ulen, 1, "URL contains a NUL byte");

    if (!lua_isnoneornil(L, 2)) {
        static const char *const known[] = {"connect_ip",
                                            "user_agent",
                                            "source_ip",
                                            "interface",
                                            "connect_port",
                                            "system_resolver",
                                            "connect_timeout_ms",
                                            "timeout_ms",
                                            "max_bytes",
                                            "verify_tls",
                                            "method",
                                            "body",
                                            "ca",
                                            "cert",
                                            "key",
                                            "pinned_key",
                                            "keepalive",
                                            "allow_reserved",
                                            "headers",
                                            NULL};
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_settop(L, 2);
        mpic_opt_check_keys(L, 2, "http.get: ", known);
        lua_newtable(L); /* 3: anchors the header strings until the request starts */
        o.connect_ip = mpic_opt_string(L, 2, "http.get: opts.", "connect_ip");
        o.user_agent = mpic_opt_string(L, 2, "http.get: opts.", "user_agent");
        o.source_ip = mpic_opt_string(L, 2, "http.get: opts.", "source_ip");
        o.interface = mpic_opt_string(L, 2, "http.get: opts.", "interface");
        o.connect_port = (long)mpic_opt_int(L, 2, "http.get: opts.", "connect_port", 0, 1, 65535);
        o.system_resolver = mpic_opt_bool(L, 2, "http.get: opts.", "system_resolver", 0);
        o.connect_timeout_ms =
            (long)mpic_opt_int(L, 2, "http.get: opts.", "connect_timeout_ms", 0, 1, 600000);
        o.timeout_ms = (long)mpic_opt_int(L, 2, "http.get: opts.", "timeout_ms", 0, 1, 3600000);
        o.max_bytes =
            (size_t)mpic_opt_int(L, 2, "http.get: opts.", "max_bytes", 0, 1, 256 * 1024 * 1024);
        o.verify_tls = mpic_opt_bool(L, 2, "http.get: opts.", "verify_tls", 0);
        o.method = mpic_opt_string(L, 2, "http.get: opts.", "method");
        if (o.method && strcmp(o.method, "GET") != 0 && strcmp(o.method, "POST") != 0 &&
            strcmp(o.method, "HEAD") != 0 && strcmp(o.method, "PUT") != 0 &&
            strcmp(o.method, "DELETE") != 0)
            luaL_error(L, "http.get: opts.method must be GET, POST, HEAD, PUT or DELETE");
        if (lua_getfield(L, 2, "body") != LUA_TNIL) {
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "http.get: opts.body must be a string");
            o.body = lua_tolstring(L, -1, &o.body_len); /* anchored in opts */
        }
        lua_pop(L, 1);
        o.ca_file = mpic_opt_string(L, 2, "http.get: opts.", "ca");
        o.cert_file = mpic_opt_string(L, 2, "http.get: opts.", "cert");
        o.key_file = mpic_opt_string(L, 2, "http.get: opts.", "key");
        o.pinned_key = mpic_opt_string(L, 2, "http.get: opts.", "pinned_key");
        o.keepalive = mpic_opt_bool(L, 2, "http.get: opts.", "keepalive", 0);
        o.allow_reserved = mpic_opt_bool(L, 2, "http.get: opts.", "allow_reserved", o.keepalive);
        o.headers = lines;
        o.n_headers = collect_headers(L, 2, lines, 3);
    }
    o.url = url;
    struct mpic_http *h = http_ctx(L, o.keepalive ? CTX_CHANNEL : CTX_PROBE);
    struct lreq *r = calloc(1, sizeof *r + ulen + 1);
    if (!r)
        return luaL_error(L, "http.get: out of memory");
    memcpy(r->url, url, ulen + 1);
    r->p.task = t;
    int rc = mpic_http_start(h, &o, on_done, r, &r->req, err, sizeof err);
    if (rc < 0) {
        free(r);
        if (rc == -ENOMEM)
            return luaL_error(L, "http.get: out of memory");
        return luaL_error(L, "http.get: %s", err);
    }
    return mpic_task_suspend(L, &r->p, on_cancel, r, k_done, (lua_KContext)r);
}

static int l_parse_ip(lua_State *L)
{
    struct mpic_addr a;
    char buf[64];
    const char *s = luaL_checkstring(L, 1);
    if (mpic_netaddr_parse(s, &a) != 0 || mpic_netaddr_format(&a, buf, sizeof buf) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, buf);
    lua_pushinteger(L, a.family);
    return 2;
}

static int l_is_reserved(lua_State *L)
{
    struct mpic_addr a;
    const char *s = luaL_checkstring(L, 1);
    if (mpic_netaddr_parse(s, &a) != 0)
        return luaL_argerror(L, 1, "not an IP address");
    const char *why = mpic_netaddr_reserved(&a);
    lua_pushboolean(L, why != NULL);
    if (!why)
        return 1;
    lua_pushstring(L, why);
    return 2;
}

static int l_psl_icann_suffix(lua_State *L)
{
    char buf[256];
    const char *host = luaL_checkstring(L, 1);
    int rc = mpic_netaddr_icann_suffix(host, buf, sizeof buf);
    if (rc == 0) {
        lua_pushstring(L, buf);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, rc == -ENOSYS   ? "public suffix list unavailable (libpsl)"
                      : rc == -ENOENT ? "no ICANN public suffix"
                                      : "host too long");
    return 2;
}

static int l_vet_name(lua_State *L)
{
    char suffix[256], why[320];
    size_t n;
    const char *host = luaL_checklstring(L, 1, &n);
    if (strlen(host) != n) {
        lua_pushnil(L);
        lua_pushstring(L, "NUL byte in name");
        lua_pushstring(L, "malformed");
        return 3;
    }
    int rc = mpic_netaddr_vet_name(host, suffix, sizeof suffix, why, sizeof why);
    if (rc == 0) {
        lua_pushstring(L, suffix);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, why);
    lua_pushstring(L, rc == -EPERM    ? "special_use"
                      : rc == -ENOENT ? "no_suffix"
                      : rc == -EEXIST ? "bare_suffix"
                      : rc == -ENOSYS ? "unavailable"
                                      : "malformed");
    return 3;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static int l_url_parse(lua_State *L)
{
    struct mpic_url u;
    const char *url = luaL_checkstring(L, 1);
    const char *base = luaL_optstring(L, 2, NULL);
    int rc = mpic_http_url_parse(base, url, &u);
    if (rc == MPIC_URL_NOMEM)
        return luaL_error(L, "url_parse: out of memory");
    if (rc != MPIC_URL_OK) {
        lua_pushnil(L);
        lua_pushstring(L, rc == MPIC_URL_NO_HOST    ? "no_host"
                          : rc == MPIC_URL_BAD_HOST ? "bad_host"
                                                    : "malformed");
        return 2;
    }
    lua_createtable(L, 0, 9);
    set_str(L, "url", u.url);
    set_str(L, "scheme", u.scheme);
    set_str(L, "host", u.host);
    set_str(L, "zone", u.zone);
    set_str(L, "path", u.path);
    set_str(L, "query", u.query);
    lua_pushinteger(L, u.port);
    lua_setfield(L, -2, "port");
    lua_pushboolean(L, u.port_explicit);
    lua_setfield(L, -2, "port_explicit");
    if (u.host_is_ip) {
        lua_pushinteger(L, u.host_is_ip);
        lua_setfield(L, -2, "ip_family");
    }
    mpic_http_url_clear(&u);
    return 1;
}

static int l_active(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)(mpic_http_active(g_http[CTX_PROBE]) +
                                     mpic_http_active(g_http[CTX_CHANNEL])));
    return 1;
}

static int l_set_channel_connections(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 100000, 1, "must be between 1 and 100000");
    g_channel_connections = (long)n;
    if (g_http[CTX_CHANNEL])
        mpic_http_set_max_host_connections(g_http[CTX_CHANNEL], g_channel_connections);
    return 0;
}

/* Frees the contexts at lua_close when nothing is in flight (a request still
 * owned by a suspended task is left to the process exit). */
static int l_ctx_gc(lua_State *L)
{
    (void)L;
    for (int i = 0; i < CTX_COUNT; i++) {
        if (g_http[i] && mpic_http_active(g_http[i]) == 0) {
            mpic_http_free(g_http[i]);
            g_http[i] = NULL;
        }
    }
    return 0;
}

int luaopen_mpic_http(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"get", l_get},
        {"request", l_get},
        {"parse_ip", l_parse_ip},
        {"is_reserved", l_is_reserved},
        {"psl_icann_suffix", l_psl_icann_suffix},
        {"vet_name", l_vet_name},
        {"url_parse", l_url_parse},
        {"active", l_active},
        {"set_channel_connections", l_set_channel_connections},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_newuserdatauv(L, 1, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "mpic.http.ctx_guard");
    return 1;
}
