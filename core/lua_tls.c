/*
 * lua_tls.c: the Lua module "mpic.core.tls".
 *
 *   tls.alpn(ip, port, opts)   -> result table | nil, kind, detail   (yields)
 *                                 a reserved ip is refused in tls.c ("reserved_address")
 *                                 unless opts.allow_reserved (labs)
 *   tls.reverse_name(ip)       -> "1.0.0.127.in-addr.arpa" / "...ip6.arpa"
 *   tls.parse_cert(der)        -> cert table | nil, "protocol", detail
 *
 * Only translates: the probe is tls.c, certificate decoding is x509_info.c,
 * suspension and cancellation follow rt.h. Arguments are checked (and raise)
 * before anything is allocated; network outcomes never raise.
 */
#include "errors.h"
#include "lua_tls.h"
#include "netaddr.h"
#include "rt.h"
#include "tls.h"
#include "x509_info.h"

#include <arpa/inet.h>
#include "lua_opts.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_req {
    struct mpic_pending p;
    struct mpic_tls_probe *probe; /* NULL once it called back */
    struct mpic_tls_result res;
    char ip[64];
    int port;
    char sni[256];
};

static void set_bytes(lua_State *L, const char *key, const unsigned char *p, size_t n)
{
    lua_pushlstring(L, (const char *)p, n);
    lua_setfield(L, -2, key);
}

/* Push the cert table for a decoded certificate. */
static void push_cert(lua_State *L, const struct mpic_x509_info *c)
{
    const struct mpic_x509_ext *san_ext = NULL;

    lua_createtable(L, 0, 12);
    set_bytes(L, "der", c->der, c->der_len);
    if (c->common_name) {
        lua_pushstring(L, c->common_name);
        lua_setfield(L, -2, "common_name");
    }
    lua_pushboolean(L, c->self_signed);
    lua_setfield(L, -2, "self_signed");
    set_bytes(L, "subject_der", c->subject_der, c->subject_der_len);
    set_bytes(L, "issuer_der", c->issuer_der, c->issuer_der_len);

    lua_createtable(L, (int)c->n_exts, 0);
    for (size_t i = 0; i < c->n_exts; i++) {
        const struct mpic_x509_ext *e = &c->exts[i];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, e->oid);
        lua_setfield(L, -2, "oid");
        lua_pushboolean(L, e->critical);
        lua_setfield(L, -2, "critical");
        set_bytes(L, "value", e->value, e->value_len);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        if (!san_ext && strcmp(e->oid, "2.5.29.17") == 0)
            san_ext = e;
    }
    lua_setfield(L, -2, "extensions");

    lua_createtable(L, (int)c->n_dup_oids, 0);
    for (size_t i = 0; i < c->n_dup_oids; i++) {
        lua_pushstring(L, c->dup_oids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "duplicate_extensions");

    lua_createtable(L, (int)c->n_sans, 0);
    for (size_t i = 0; i < c->n_sans; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, mpic_x509_san_type_name(c->sans[i].type));
        lua_setfield(L, -2, "type");
        set_bytes(L, "value", c->sans[i].value, c->sans[i].value_len);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "san");
    if (san_ext)
        set_bytes(L, "san_der", san_ext->value, san_ext->value_len);
    lua_pushboolean(L, c->san_malformed);
    lua_setfield(L, -2, "san_malformed");
    lua_pushboolean(L, c->san_single_dns);
    lua_setfield(L, -2, "san_single_dns");
}

/* A userdata that owns a decoded certificate, so that a memory error while
 * building tables cannot leak it (freed by __gc). */
#define INFO_MT "mpic.tls.x509_info"

static int info_gc(lua_State *L)
{
    mpic_x509_info_free(luaL_checkudata(L, 1, INFO_MT));
    return 0;
}

static struct mpic_x509_info *new_info_box(lua_State *L)
{
    struct mpic_x509_info *info = lua_newuserdatauv(L, sizeof *info, 0);
    memset(info, 0, sizeof *info);
    luaL_setmetatable(L, INFO_MT);
    return info;
}

static int l_parse_cert(lua_State *L)
{
    size_t n;
    const char *der = luaL_checklstring(L, 1, &n);
    struct mpic_x509_info *info = new_info_box(L);

    if (mpic_x509_info_parse((const unsigned char *)der, n, info) < 0)
        return mpic_push_fail(L, mpic_err_name(MPIC_E_PROTOCOL), "not a DER X.509 certificate");
    push_cert(L, info);
    mpic_x509_info_free(info);
    return 1;
}

static int l_reverse_name(lua_State *L)
{
    const char *ip = luaL_checkstring(L, 1);
    char out[80];
    if (mpic_tls_reverse_name(ip, out, sizeof out) < 0)
        return luaL_argerror(L, 1, "not an IP address");
    lua_pushstring(L, out);
    return 1;
}

/* ---- tls.alpn ----------------------------------------------------------- */

static void on_result(struct mpic_tls_result *res, void *arg)
{
    struct tls_req *r = arg;
    r->res = *res;
    res->cert_der = NULL; /* ours now */
    r->probe = NULL;
    mpic_pending_complete(&r->p);
}

static void req_free(struct tls_req *r)
{
    if (r->probe)
        mpic_tls_probe_cancel(r->probe);
    free(r->res.cert_der);
    free(r);
}

static void req_cancel(void *arg) { req_free(arg); }

static int k_alpn(lua_State *L, int status, lua_KContext ctx)
{
    struct tls_req *r = (struct tls_req *)ctx;
    struct tls_req copy;
    struct mpic_x509_info *info;
    int rc;

    /* take what we need and free r before anything that may raise */
    copy = *r;
    copy.res.cert_der = NULL;
    info = new_info_box(L);
    rc = r->res.err ? -1 : mpic_x509_info_parse(r->res.cert_der, r->res.cert_der_len, info);
    req_free(r);
    if (copy.res.err)
        return mpic_push_fail(L, mpic_err_name((enum mpic_err)copy.res.err), "%s", copy.res.detail);
    if (rc < 0)
        return mpic_push_fail(L, mpic_err_name(MPIC_E_TLS),
                              "%s: server certificate could not be decoded", copy.ip);
    lua_createtable(L, 0, 8);
    if (copy.res.has_alpn) {
        lua_pushstring(L, copy.res.alpn);
        lua_setfield(L, -2, "alpn");
    }
    lua_pushstring(L, copy.res.version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, copy.ip);
    lua_setfield(L, -2, "ip");
    lua_pushinteger(L, copy.port);
    lua_setfield(L, -2, "port");
    if (copy.sni[0]) {
        lua_pushstring(L, copy.sni);
        lua_setfield(L, -2, "sni");
    }
    lua_pushinteger(L, (lua_Integer)copy.res.elapsed_ms);
    lua_setfield(L, -2, "elapsed_ms");
    push_cert(L, info);
    lua_setfield(L, -2, "cert");
    mpic_x509_info_free(info);
    return 1;
}

static int l_alpn(lua_State *L)
{
    struct mpic_task *t = mpic_task_current(L);
    const char *ip = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    struct mpic_tls_opts o;
    struct mpic_addr addr;
    struct tls_req *r;

    memset(&o, 0, sizeof o);
    luaL_argcheck(L, port > 0 && port <= 65535, 2, "port must be 1..65535");
    luaL_argcheck(L, mpic_netaddr_parse(ip, &addr) == 0, 1, "not an IP address");
    if (!lua_isnoneornil(L, 3)) {
        static const char *const known[] = {
            "sni",       "timeout_ms", "connect_timeout_ms", "source_ip",
            "interface", "alpn",       "allow_reserved",     NULL};
        luaL_checktype(L, 3, LUA_TTABLE);
        mpic_opt_check_keys(L, 3, "tls.alpn: ", known);
        o.sni = mpic_opt_string(L, 3, "tls.alpn: opts.", "sni");
        o.alpn = mpic_opt_string(L, 3, "tls.alpn: opts.", "alpn");
        o.source_ip = mpic_opt_string(L, 3, "tls.alpn: opts.", "source_ip");
        o.interface = mpic_opt_string(L, 3, "tls.alpn: opts.", "interface");
        o.timeout_ms = (int)mpic_opt_int(L, 3, "tls.alpn: opts.", "timeout_ms", 0, 1, 600000);
        o.connect_timeout_ms =
            (int)mpic_opt_int(L, 3, "tls.alpn: opts.", "connect_timeout_ms", 0, 1, 600000);
        o.allow_reserved = mpic_opt_bool(L, 3, "tls.alpn: opts.", "allow_reserved", 0);
        if (o.sni && strlen(o.sni) > 253)
            luaL_error(L, "tls.alpn: opts.sni longer than 253 bytes");
        if (o.alpn && (o.alpn[0] == '\0' || strlen(o.alpn) > 255))
            luaL_error(L, "tls.alpn: opts.alpn must be 1..255 bytes");
        if (o.source_ip && mpic_netaddr_parse(o.source_ip, &addr) != 0)
            luaL_error(L, "tls.alpn: opts.source_ip is not an IP address");
    }

    r = calloc(1, sizeof *r);
    if (!r)
        return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "out of memory");
    r->p.task = t;
    r->port = (int)port;
    snprintf(r->ip, sizeof r->ip, "%s", ip);
    if (o.sni)
        snprintf(r->sni, sizeof r->sni, "%s", o.sni);
    if (mpic_tls_probe_start(mpic_loop(), ip, (int)port, &o, on_result, r, &r->probe) < 0) {
        free(r);
        return mpic_push_fail(L, mpic_err_name(MPIC_E_INTERNAL), "%s: could not start TLS probe",
                              ip);
    }
    return mpic_task_suspend(L, &r->p, req_cancel, r, k_alpn, (lua_KContext)r);
}

static const luaL_Reg funcs[] = {
    {"alpn", l_alpn},
    {"reverse_name", l_reverse_name},
    {"parse_cert", l_parse_cert},
    {NULL, NULL},
};

int luaopen_mpic_tls(lua_State *L)
{
    if (luaL_newmetatable(L, INFO_MT)) {
        lua_pushcfunction(L, info_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
