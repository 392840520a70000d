/*
 * lua_dns.c: the Lua module "mpic.core.dns". Provides
 *   resolver{servers=, timeout_ms=, tries=, lifetime_ms=, source_ipv4=,
 *            source_ipv6=, interface=, tcp_only=, ca_file=}
 *                                    -> resolver userdata; a server is
 *                                    "IP[:PORT]", "[IPv6]:PORT",
 *                                    "tls://IP[:PORT][#NAME]" (DoT) or
 *                                    "https://HOST[:PORT]/PATH[#IP]" (DoH),
 *                                    ca_file the CA of the encrypted ones
 *   res:query(name, rtype [, opts])  yields; -> result table, or
 *                                    nil, kind, detail, partial (opts: no
 *                                    options yet, any key is refused)
 *   res:close()                      (also __gc / __close)
 *   res:servers()                    the configured servers, comma-separated
 *   res:connections()                connections the encrypted servers opened
 *   valid_name(name)                 A-label form (no trailing dot) | nil, detail
 *   nsec3_hash(name, salt_hex, iterations)
 *                                    RFC 5155 hash (SHA-1) of name, lower-case
 *                                    base32hex | nil, detail
 * Uses dns.c / dns_wire.c on mpic_loop() and the task runtime of rt.h.
 * Only translates: C results become plain Lua tables.
 */
#include "lua_dns.h"

#include "dns.h"
#include "encode.h"
#include "rt.h"

#include "lua_opts.h"

#include <lauxlib.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESOLVER_MT "mpic.dns.resolver"

struct lres {
    struct mpic_dns_resolver *r;
};

struct lreq {
    struct mpic_pending p;
    struct mpic_dns_query *q; /* NULL once completed */
    enum mpic_err err;
    char *detail;
    char *server;
    uint64_t elapsed_ms;
    struct mpic_dns_reply *reply;
    uint16_t qtype;
    char name[MPIC_DNS_MAX_NAME + 1];
};

static void lreq_free(struct lreq *q)
{
    free(q->detail);
    free(q->server);
    mpic_dns_reply_free(q->reply);
    free(q);
}

static void on_done(void *arg, struct mpic_dns_result *res)
{
    struct lreq *q = arg;
    q->q = NULL;
    q->err = res->err;
    q->detail = res->detail ? strdup(res->detail) : NULL;
    q->server = res->server ? strdup(res->server) : NULL;
    q->elapsed_ms = res->elapsed_ms;
    q->reply = res->reply;
    res->reply = NULL;
    if (res->err != MPIC_OK && !q->detail)
        q->err = MPIC_E_INTERNAL; /* out of memory: still fail closed */
    mpic_pending_complete(&q->p);
}

static void on_cancel(void *arg)
{
    struct lreq *q = arg;
    mpic_dns_query_cancel(q->q);
    lreq_free(q);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_bytes(lua_State *L, const char *k, const struct mpic_dns_bytes *b)
{
    lua_pushlstring(L, (const char *)b->p, b->len);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void push_type(lua_State *L, uint16_t t)
{
    const char *n = mpic_dns_type_name(t);
    if (n)
        lua_pushstring(L, n);
    else
        lua_pushfstring(L, "TYPE%d", (int)t);
}

static void push_rr(lua_State *L, const struct mpic_dns_rr *rr)
{
    size_t i;
    luaL_Buffer b;

    lua_createtable(L, 0, 8);
    set_str(L, "name", rr->owner);
    push_type(L, rr->type);
    lua_setfield(L, -2, "type");
    if (rr->rclass == 1)
        lua_pushliteral(L, "IN");
    else
        lua_pushfstring(L, "CLASS%d", (int)rr->rclass);
    lua_setfield(L, -2, "class");
    set_int(L, "ttl", rr->ttl);
    switch (rr->type) {
    case MPIC_DNS_T_A:
    case MPIC_DNS_T_AAAA: set_str(L, "address", rr->text); break;
    case MPIC_DNS_T_CNAME:
    case MPIC_DNS_T_PTR:
    case MPIC_DNS_T_NS: set_str(L, "target", rr->text); break;
    case MPIC_DNS_T_SOA:
        set_str(L, "mname", rr->text);
        set_str(L, "rname", rr->rname);
        set_int(L, "serial", rr->soa[0]);
        set_int(L, "refresh", rr->soa[1]);
        set_int(L, "retry", rr->soa[2]);
        set_int(L, "expire", rr->soa[3]);
        set_int(L, "minimum", rr->soa[4]);
        break;
    case MPIC_DNS_T_TXT:
        lua_createtable(L, (int)rr->n_strings, 0);
        for (i = 0; i < rr->n_strings; i++) {
            lua_pushlstring(L, (const char *)rr->strings[i].p, rr->strings[i].len);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, "strings");
        luaL_buffinit(L, &b);
        for (i = 0; i < rr->n_strings; i++)
            luaL_addlstring(&b, (const char *)rr->strings[i].p, rr->strings[i].len);
        luaL_pushresult(&b);
        lua_setfield(L, -2, "value");
        break;
    case MPIC_DNS_T_CAA:
        set_int(L, "flags", rr->caa_flags);
        lua_pushboolean(L, rr->caa_flags & 128);
        lua_setfield(L, -2, "critical");
        set_bytes(L, "tag", &rr->caa_tag);
        set_bytes(L, "value", &rr->caa_value);
        break;
    default: set_bytes(L, "rdata", &rr->rdata); break;
    }
}

static void push_hex(lua_State *L, const struct mpic_dns_bytes *b)
{
    char hex[2 * 255 + 1]; /* an NSEC3 salt is at most 255 bytes */
    size_t n = b->len < 255 ? b->len : 255;
    mpic_hex(b->p, n, hex);
    lua_pushlstring(L, hex, 2 * n);
}

/* r.authority: the NSEC/NSEC3 records of the authority section, as
 * {owner=, type="NSEC"|"NSEC3", next=, types={NS=true, ...}} plus algorithm,
 * flags, opt_out, iterations and salt (hex) for NSEC3. Absent when there are
 * none (most answers: only DS queries ask for DNSSEC records). */
static void push_denials(lua_State *L, const struct mpic_dns_reply *rep)
{
    size_t i, j;

    if (rep->n_denials == 0)
        return;
    lua_createtable(L, (int)rep->n_denials, 0);
    for (i = 0; i < rep->n_denials; i++) {
        const struct mpic_dns_denial *d = &rep->denials[i];
        lua_createtable(L, 0, 8);
        set_str(L, "owner", d->owner);
        push_type(L, d->type);
        lua_setfield(L, -2, "type");
        set_str(L, "next", d->next);
        lua_createtable(L, 0, (int)d->n_types);
        for (j = 0; j < d->n_types; j++) {
            push_type(L, d->types[j]);
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
        }
        lua_setfield(L, -2, "types");
        if (d->type == MPIC_DNS_T_NSEC3) {
            set_int(L, "algorithm", d->hash_alg);
            set_int(L, "flags", d->flags);
            lua_pushboolean(L, d->flags & 1);
            lua_setfield(L, -2, "opt_out");
            set_int(L, "iterations", d->iterations);
            push_hex(L, &d->salt);
            lua_setfield(L, -2, "salt");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "authority");
}

/* The result table (also the `partial` of a failure). */
static void push_result(lua_State *L, const struct lreq *q)
{
    const struct mpic_dns_reply *rep = q->reply;
    char rcbuf[16];
    size_t i;
    int nrec = 0;

    lua_createtable(L, 0, 12);
    set_str(L, "name", q->name);
    push_type(L, q->qtype);
    lua_setfield(L, -2, "type");
    set_str(L, "server", q->server ? q->server : "");
    set_int(L, "elapsed_ms", (lua_Integer)q->elapsed_ms);
    if (!rep)
        return;
    set_str(L, "rcode", mpic_dns_rcode_name(rep->rcode, rcbuf, sizeof rcbuf));
    lua_pushboolean(L, rep->ad);
    lua_setfield(L, -2, "ad");
    lua_pushboolean(L, rep->tc);
    lua_setfield(L, -2, "tc");
    lua_pushboolean(L, rep->aa);
    lua_setfield(L, -2, "aa");
    lua_createtable(L, (int)rep->n_answers, 0); /* answers */
    lua_createtable(L, 0, 0);                   /* records */
    for (i = 0; i < rep->n_answers; i++) {
        push_rr(L, &rep->answers[i]);
        if (rep->answers[i].type == q->qtype) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, -3, ++nrec);
        }
        lua_rawseti(L, -3, (lua_Integer)i + 1);
    }
    lua_setfield(L, -3, "records");
    lua_setfield(L, -2, "answers");
    lua_createtable(L, (int)rep->n_cname, 0);
    for (i = 0; i < rep->n_cname; i++) {
        lua_pushstring(L, rep->cname_chain[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "cname_chain");
    if (rep->ede_code >= 0) {
        lua_createtable(L, 0, 2);
        set_int(L, "code", rep->ede_code);
        lua_pushlstring(L, rep->ede_text ? rep->ede_text : "", rep->ede_text_len);
        lua_setfield(L, -2, "text");
        lua_setfield(L, -2, "ede");
    }
    push_denials(L, rep);
}

static int k_done(lua_State *L, int status, lua_KContext ctx)
{
    struct lreq *q = (struct lreq *)ctx;
    int n;

    /* pushes below raise only on memory errors */
    if (q->err != MPIC_OK) {
        n = mpic_push_fail(L, mpic_err_name(q->err), "%s",
                           q->detail ? q->detail : "DNS problem: out of memory");
        if (q->reply)
            push_result(L, q);
        else
            lua_pushnil(L);
        n++;
    } else {
        push_result(L, q);
        n = 1;
    }
    lreq_free(q);
    return n;
}

static struct lres *check_res(lua_State *L)
{
    struct lres *u = luaL_checkudata(L, 1, RESOLVER_MT);
    if (!u->r)
        luaL_error(L, "dns: resolver is closed");
    return u;
}

static int l_query(lua_State *L)
{
    struct lres *u = check_res(L);
    size_t namelen;
    const char *name = luaL_checklstring(L, 2, &namelen);
    const char *tname = luaL_checkstring(L, 3);
    struct mpic_task *t;
    struct lreq *q;
    uint16_t qtype;
    size_t nl;
    char norm[MPIC_DNS_MAX_NAME + 1], err[200];

    if (!lua_isnoneornil(L, 4)) {
        static const char *const known[] = {NULL}; /* no query options yet */
        luaL_checktype(L, 4, LUA_TTABLE);
        mpic_opt_check_keys(L, 4, "dns.query: ", known);
    }
    qtype = mpic_dns_qtype_from_name(tname);
    if (!qtype)
        return luaL_argerror(L, 3,
                             "unsupported query type (A, AAAA, CNAME, TXT, CAA, PTR, NS, SOA, DS)");
    t = mpic_task_current(L);
    if (strlen(name) != namelen)
        return mpic_push_fail(L, "invalid_target", "invalid DNS name: contains a NUL byte");
    if (mpic_dns_name_normalize(name, norm, sizeof norm, err, sizeof err) < 0)
        return mpic_push_fail(L, "invalid_target", "invalid DNS name \"%.300s\": %s", name, err);
    q = calloc(1, sizeof *q);
    if (!q)
        return luaL_error(L, "dns: out of memory");
    q->p.task = t;
    q->qtype = qtype;
    nl = strlen(norm); /* <= 253 after normalization */
    memcpy(q->name, norm, nl < sizeof q->name - 2 ? nl : sizeof q->name - 2);
    strcpy(q->name + (nl < sizeof q->name - 2 ? nl : sizeof q->name - 2), ".");
    if (mpic_dns_query_start(u->r, norm, qtype, on_done, q, &q->q) < 0) {
        free(q);
        return mpic_push_fail(L, "internal", "DNS problem: cannot start the query for %s", norm);
    }
    return mpic_task_suspend(L, &q->p, on_cancel, q, k_done, (lua_KContext)q);
}

static int l_close(lua_State *L)
{
    struct lres *u = luaL_checkudata(L, 1, RESOLVER_MT);
    if (u->r) {
        mpic_dns_resolver_free(u->r);
        u->r = NULL;
    }
    return 0;
}

static int l_servers(lua_State *L)
{
    struct lres *u = check_res(L);
    lua_pushstring(L, mpic_dns_resolver_servers(u->r));
    return 1;
}

static int l_connections(lua_State *L)
{
    struct lres *u = check_res(L);
    lua_pushinteger(L, (lua_Integer)mpic_dns_resolver_connections(u->r));
    return 1;
}

static int l_tostring(lua_State *L)
{
    struct lres *u = luaL_checkudata(L, 1, RESOLVER_MT);
    lua_pushfstring(L, "dns.resolver(%s)", u->r ? mpic_dns_resolver_servers(u->r) : "closed");
    return 1;
}

static int l_resolver(lua_State *L)
{
    static const char *const known[] = {"servers",     "timeout_ms",  "tries",     "lifetime_ms",
                                        "source_ipv4", "source_ipv6", "interface", "tcp_only",
                                        "ca_file",     NULL};
    struct mpic_dns_config cfg;
    const char *servers[16];
    struct lres *u;
    char err[256];
    size_t n, i;

    luaL_checktype(L, 1, LUA_TTABLE);
    mpic_opt_check_keys(L, 1, "dns.resolver: ", known);
    memset(&cfg, 0, sizeof cfg);
    if (lua_getfield(L, 1, "servers") != LUA_TTABLE)
        return luaL_error(L, "dns.resolver: servers must be a list of \"ip:port\" strings");
    n = lua_rawlen(L, -1);
    if (n == 0 || n > sizeof servers / sizeof servers[0])
        return luaL_error(L, "dns.resolver: servers must hold 1 to 16 entries");
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "dns.resolver: servers[%d] must be a string", (int)i + 1);
        servers[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* anchored by the servers table */
    }
    lua_pop(L, 1);
    cfg.servers = servers;
    cfg.n_servers = n;
    cfg.timeout_ms = (int)mpic_opt_int(L, 1, "dns.resolver: ", "timeout_ms", 2000, 1, 600000);
    cfg.tries = (int)mpic_opt_int(L, 1, "dns.resolver: ", "tries", 3, 1, 20);
    cfg.lifetime_ms = (int)mpic_opt_int(L, 1, "dns.resolver: ", "lifetime_ms", 0, 0, 3600000);
    cfg.source_ipv4 = mpic_opt_string(L, 1, "dns.resolver: ", "source_ipv4");
    cfg.source_ipv6 = mpic_opt_string(L, 1, "dns.resolver: ", "source_ipv6");
    cfg.interface = mpic_opt_string(L, 1, "dns.resolver: ", "interface");
    cfg.ca_file = mpic_opt_string(L, 1, "dns.resolver: ", "ca_file");
    cfg.tcp_only = mpic_opt_bool(L, 1, "dns.resolver: ", "tcp_only", 0);

    /* userdata first, then the resource it guards */
    u = lua_newuserdatauv(L, sizeof *u, 0);
    u->r = NULL;
    luaL_setmetatable(L, RESOLVER_MT);
    if (mpic_dns_resolver_new(mpic_loop(), &cfg, &u->r, err, sizeof err) < 0)
        return luaL_error(L, "dns.resolver: %s", err);
    return 1;
}

static int l_valid_name(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    char out[MPIC_DNS_MAX_NAME + 1], err[200];
    if (strlen(name) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "name contains a NUL byte");
        return 2;
    }
    if (mpic_dns_name_normalize(name, out, sizeof out, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, out);
    return 1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 5155 §5: IH(salt, x, 0) = H(x || salt), IH(salt, x, k) =
 * H(IH(salt, x, k-1) || salt), x the canonical (lower-case) wire form. */
static int l_nsec3_hash(lua_State *L)
{
    size_t len, slen, i, wl;
    int n = -1;
    const char *name = luaL_checklstring(L, 1, &len);
    const char *shex = luaL_optlstring(L, 2, "", &slen);
    lua_Integer iter = luaL_checkinteger(L, 3);
    unsigned char wire[256 + 255], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char norm[MPIC_DNS_MAX_NAME + 1], err[200], out[EVP_MAX_MD_SIZE * 8 / 5 + 2];
    lua_Integer k;

    /* the wire form leaves room for the salt after it */
    if (strlen(name) == len &&
        mpic_dns_name_normalize(name, norm, sizeof norm, err, sizeof err) == 0)
        n = mpic_dns_name_to_wire(norm, wire, sizeof wire - 255);
    if (n < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid name");
        return 2;
    }
    if (slen % 2 || slen / 2 > 255 || iter < 0 || iter > 2500) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid salt or iteration count");
        return 2;
    }
    wl = (size_t)n;
    for (i = 0; i < wl; i++) /* canonical form: lower case (length bytes are < 64) */
        if (wire[i] >= 'A' && wire[i] <= 'Z')
            wire[i] = (unsigned char)(wire[i] + 32);
    for (i = 0; i < slen; i += 2) {
        int hi = hexval(shex[i]), lo = hexval(shex[i + 1]);
        if (hi < 0 || lo < 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "invalid salt or iteration count");
            return 2;
        }
        wire[wl + i / 2] = (unsigned char)(hi * 16 + lo);
    }
    /* wire holds x || salt; later rounds hash digest || salt */
    for (k = 0; k <= iter; k++) {
        if (!EVP_Digest(wire, wl + slen / 2, md, &mdlen, EVP_sha1(), NULL))
            return luaL_error(L, "dns.nsec3_hash: SHA-1 failed");
        if (k == 0) {
            memmove(wire + mdlen, wire + wl, slen / 2);
            wl = mdlen;
        }
        memcpy(wire, md, mdlen);
    }
    mpic_base32hex(md, mdlen, out);
    lua_pushstring(L, out);
    return 1;
}

int luaopen_mpic_dns(lua_State *L)
{
    static const luaL_Reg methods[] = {{"query", l_query},
                                       {"close", l_close},
                                       {"servers", l_servers},
                                       {"connections", l_connections},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"resolver", l_resolver},
                                     {"valid_name", l_valid_name},
                                     {"nsec3_hash", l_nsec3_hash},
                                     {NULL, NULL}};

    if (luaL_newmetatable(L, RESOLVER_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
