/*
 * lua_server.c: the Lua module "mpic.core.server" over server.c. Provides
 *   listen{address=, port=, tls={cert=, key=, client_ca=, require_client_cert=},
 *          max_body=, max_inflight=, idle_timeout_s=, max_connections=,
 *          max_connections_per_address=, header_timeout_s=, health_path=, fd=}
 *       -> server | nil, kind, detail
 *   (health_path: GET/HEAD of it pass the in-flight limit and are queued
 *   ahead of the other requests; fd: accept on this inherited listening
 *   socket instead of binding address and port, as a worker of
 *   lua/mpic/service/workers.lua does)
 *   server:next()          yields until a request arrives -> request | nil, "closed"
 *   server:port(), server:inflight() (not answered), server:sending() (answers
 *       not yet written out), server:stats() (connection guards: conns,
 *       refused_conns, deadline_closed, accept_errors, bad_framing),
 *       server:stop_accepting(), server:close()
 *   request fields: method, path, query, headers (lower-cased names), body,
 *       peer, peer_port, tls, client_subject, client_sans (list)
 *   request:respond(status [, headers] [, body]) -> true | nil, "closed", msg
 *   request:dead()
 *   signals{"TERM", "HUP", ...} -> watcher; watcher:next() yields -> "TERM"...;
 *       watcher:close()
 * Requests are queued in C until a task takes them with server:next();
 * the Lua side runs each one as its own task (lua/mpic/service/serve.lua). A
 * request object collected without an answer gets a 500.
 * Uses: server.c, the task runtime of rt.h (mpic_task_suspend).
 */
#include "lua_server.h"

#include "rt.h"
#include "server.h"

#include <errno.h>
#include "lua_opts.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define SERVER_MT "mpic.server"
#define REQ_MT "mpic.server.request"
#define HANDLE_MT "mpic.server.handle"
#define SIG_MT "mpic.signals"
#define MAX_RESPONSE_HEADERS 32
#define MAX_SIGNALS 8
#define SIG_RING 16

struct qnode {
    struct mpic_server_req *r;
    struct qnode *next;
};

struct waiter {
    struct mpic_pending p;
    struct mpic_server_req *got;
    struct lsrv *ls;
};

struct lsrv {
    struct mpic_server *s;
    struct qnode *head, *tail;
    struct waiter *w; /* the task blocked in next(), if any */
    int closed, draining;
};

struct lhandle {
    struct mpic_server_req *r; /* NULL once answered */
};

/* ---- server -------------------------------------------------------------- */

static void on_req(struct mpic_server_req *r, void *arg)
{
    struct lsrv *ls = arg;
    if (ls->w) {
        struct waiter *w = ls->w;
        ls->w = NULL;
        w->got = r;
        mpic_pending_complete(&w->p);
        return;
    }
    struct qnode *n = malloc(sizeof *n);
    if (!n) {
        mpic_server_req_free(r);
        return;
    }
    n->r = r;
    n->next = NULL;
    if (mpic_server_req_info(r)->health && ls->head) { /* ahead of the queue */
        n->next = ls->head;
        ls->head = n;
        return;
    }
    if (ls->tail)
        ls->tail->next = n;
    else
        ls->head = n;
    ls->tail = n;
}

static struct lsrv *check_srv(lua_State *L, int idx) { return luaL_checkudata(L, idx, SERVER_MT); }

static void srv_close(struct lsrv *ls)
{
    if (ls->closed)
        return;
    ls->closed = 1;
    while (ls->head) {
        struct qnode *n = ls->head;
        ls->head = n->next;
        mpic_server_req_free(n->r);
        free(n);
    }
    ls->tail = NULL;
    if (ls->w) {
        struct waiter *w = ls->w;
        ls->w = NULL;
        mpic_pending_complete(&w->p);
    }
    mpic_server_free(ls->s);
    ls->s = NULL;
}

static int l_listen(lua_State *L)
{
    struct mpic_server_opts o = {0};
    char err[320] = "";
    static const char *const known[] = {"address",
                                        "port",
                                        "max_body",
                                        "max_inflight",
                                        "idle_timeout_s",
                                        "max_connections",
                                        "max_connections_per_address",
                                        "header_timeout_s",
                                        "health_path",
                                        "fd",
                                        "tls",
                                        NULL};
    static const char *const known_tls[] = {"cert", "key", "client_ca", "require_client_cert",
                                            NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    mpic_opt_check_keys(L, 1, "server.listen: ", known);
    o.address = mpic_opt_string(L, 1, "server.listen: ", "address");
    if (!o.address)
        o.address = "127.0.0.1";
    o.port = (int)mpic_opt_int(L, 1, "server.listen: ", "port", 0, 0, 65535);
    o.max_body = (size_t)mpic_opt_int(L, 1, "server.listen: ", "max_body", 1024 * 1024, 1,
                                      256 * 1024 * 1024);
    o.max_inflight = (int)mpic_opt_int(L, 1, "server.listen: ", "max_inflight", 1000, 1, 1000000);
    o.idle_timeout_s = (int)mpic_opt_int(L, 1, "server.listen: ", "idle_timeout_s", 60, 1, 3600);
    o.max_conns = (int)mpic_opt_int(L, 1, "server.listen: ", "max_connections", 0, 0, 1000000);
    o.max_conns_per_addr =
        (int)mpic_opt_int(L, 1, "server.listen: ", "max_connections_per_address", 0, 0, 1000000);
    o.header_timeout_s =
        (int)mpic_opt_int(L, 1, "server.listen: ", "header_timeout_s", 10, 1, 3600);
    o.health_path = mpic_opt_string(L, 1, "server.listen: ", "health_path");
    o.listen_fd = (int)mpic_opt_int(L, 1, "server.listen: ", "fd", 0, 0, 1000000);
    if (o.listen_fd != 0 && o.listen_fd < 3)
        return luaL_error(L, "server.listen: fd must be an inherited socket (3 or above)");
    if (lua_getfield(L, 1, "tls") != LUA_TNIL) {
        luaL_argcheck(L, lua_istable(L, 2), 1, "tls must be a table");
        mpic_opt_check_keys(L, 2, "server.listen: tls: ", known_tls);
        o.cert_file = mpic_opt_string(L, 2, "server.listen: tls.", "cert");
        o.key_file = mpic_opt_string(L, 2, "server.listen: tls.", "key");
        o.client_ca_file = mpic_opt_string(L, 2, "server.listen: tls.", "client_ca");
        if (!o.cert_file || !o.key_file)
            return luaL_error(L, "server.listen: tls needs cert and key");
        o.require_client_cert = mpic_opt_bool(L, 2, "server.listen: tls.", "require_client_cert",
                                              o.client_ca_file != NULL);
    }
    struct lsrv *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    memset(ls, 0, sizeof *ls);
    ls->closed = 1; /* until the server exists: __gc has nothing to do */
    luaL_setmetatable(L, SERVER_MT);
    int rc = mpic_server_new(mpic_loop(), &o, on_req, ls, &ls->s, err, sizeof err);
    if (rc < 0) {
        const char *kind = rc == -EINVAL   ? (o.cert_file ? "tls" : "internal")
                           : rc == -ENOMEM ? "internal"
                                           : "connect";
        return mpic_push_fail(L, kind, "%s", err);
    }
    ls->closed = 0;
    return 1;
}

static int k_next(lua_State *L, int status, lua_KContext ctx);

static void next_cancel(void *arg)
{
    struct waiter *w = arg;
    if (w->ls && w->ls->w == w)
        w->ls->w = NULL;
    if (w->got)
        mpic_server_req_free(w->got);
    free(w);
}

static void push_request(lua_State *L, struct mpic_server_req *r);

static int k_next(lua_State *L, int status, lua_KContext ctx)
{
    struct waiter *w = (struct waiter *)ctx;
    struct mpic_server_req *r = w->got;
    free(w);
    if (!r) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    push_request(L, r);
    return 1;
}

static int l_next(lua_State *L)
{
    struct lsrv *ls = check_srv(L, 1);
    struct mpic_task *t = mpic_task_current(L);
    if (ls->w)
        return luaL_error(L, "server:next: another task is already waiting on this server");
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        return luaL_error(L, "server:next: out of memory");
    w->p.task = t;
    w->ls = ls;
    if (ls->head) {
        struct qnode *n = ls->head;
        ls->head = n->next;
        if (!ls->head)
            ls->tail = NULL;
        w->got = n->r;
        free(n);
        w->p.done = 1;
    } else if (ls->closed || ls->draining) {
        w->p.done = 1;
    } else {
        ls->w = w;
    }
    return mpic_task_suspend(L, &w->p, next_cancel, w, k_next, (lua_KContext)w);
}

static int l_port(lua_State *L)
{
    struct lsrv *ls = check_srv(L, 1);
    if (!ls->s)
        return 0;
    lua_pushinteger(L, mpic_server_port(ls->s));
    return 1;
}

static int l_inflight(lua_State *L)
{
    struct lsrv *ls = check_srv(L, 1);
    lua_pushinteger(L, ls->s ? mpic_server_inflight(ls->s) : 0);
    return 1;
}

/* Stop accepting; a task blocked in next() with nothing queued gets "closed". */
static int l_sending(lua_State *L)
{
    struct lsrv *ls = check_srv(L, 1);
    lua_pushinteger(L, ls->s ? mpic_server_sending(ls->s) : 0);
    return 1;
}

static int l_stats(lua_State *L)
{
    struct lsrv *ls = check_srv(L, 1);
    struct mpic_server_stats st = {0};
    if (ls->s)
        mpic_server_stats(ls->s, &st);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, st.conns);
    lua_setfield(L, -2, "conns");
    lua_pushinteger(L, (lua_Integer)st.refused_conns);
    lua_setfield(L, -2, "refused_conns");
    lua_pushinteger(L, (lua_Integer)st.deadline_closed);
    lua_setfield(L, -2, "deadline_closed");
    lua_pushinteger(L, (lua_Integer)st.accept_errors);
    lua_setfield(L, -2, "accept_errors");
    lua_pushinteger(L, (lua_Integer)st.bad_framing);
    lua_setfield(L, -2, "bad_framing");
    return 1;
}

static int l_stop_accepting(lua_State *L)
{
    struct lsrv *ls = check_srv(L, 1);
    if (ls->s)
        mpic_server_stop_accepting(ls->s);
    ls->draining = 1;
    if (ls->w && !ls->head) {
        struct waiter *w = ls->w;
        ls->w = NULL;
        mpic_pending_complete(&w->p);
    }
    return 0;
}

static int l_close(lua_State *L)
{
    srv_close(check_srv(L, 1));
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

static void setstr(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void push_request(lua_State *L, struct mpic_server_req *r)
{
    const struct mpic_server_reqinfo *in = mpic_server_req_info(r);
    lua_createtable(L, 0, 12);
    struct lhandle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->r = r;
    luaL_setmetatable(L, HANDLE_MT);
    lua_setfield(L, -2, "_handle");
    setstr(L, "method", in->method);
    setstr(L, "path", in->path);
    setstr(L, "query", in->query);
    lua_createtable(L, 0, (int)in->n_headers);
    for (size_t i = 0; i < in->n_headers; i++) {
        /* repeated headers are joined with ", " (RFC 9110 5.3) */
        if (lua_getfield(L, -1, in->headers[i].name) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushstring(L, in->headers[i].value);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, in->headers[i].value);
        }
        lua_setfield(L, -2, in->headers[i].name);
    }
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, in->body ? in->body : "", in->body_len);
    lua_setfield(L, -2, "body");
    setstr(L, "peer", in->peer);
    lua_pushinteger(L, in->peer_port);
    lua_setfield(L, -2, "peer_port");
    lua_pushboolean(L, in->tls);
    lua_setfield(L, -2, "tls");
    setstr(L, "client_subject", in->client_subject);
    lua_createtable(L, (int)in->n_client_sans, 0);
    for (size_t i = 0; i < in->n_client_sans; i++) {
        lua_pushstring(L, in->client_sans[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "client_sans");
    luaL_setmetatable(L, REQ_MT);
}

static struct lhandle *req_handle(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "_handle");
    struct lhandle *h = luaL_testudata(L, -1, HANDLE_MT);
    if (!h)
        luaL_error(L, "not a server request");
    lua_pop(L, 1); /* still anchored by the request table */
    return h;
}

/* request:respond(status [, headers] [, body]) */
static int l_respond(lua_State *L)
{
    struct lhandle *h = req_handle(L, 1);
    lua_Integer status = luaL_checkinteger(L, 2);
    luaL_argcheck(L, status >= 100 && status <= 599, 2, "status must be in [100, 599]");
    const char *hdr[2 * MAX_RESPONSE_HEADERS];
    size_t nh = 0, blen = 0;
    const char *body = luaL_optlstring(L, 4, "", &blen);
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "respond: headers must map strings to strings");
            if (nh >= MAX_RESPONSE_HEADERS)
                return luaL_error(L, "respond: more than %d headers", MAX_RESPONSE_HEADERS);
            hdr[2 * nh] = lua_tostring(L, -2);
            hdr[2 * nh + 1] = lua_tostring(L, -1); /* anchored in the headers table */
            nh++;
            lua_pop(L, 1);
        }
    }
    if (!h->r)
        return mpic_push_fail(L, "protocol", "the request was already answered");
    struct mpic_server_req *r = h->r;
    h->r = NULL;
    if (mpic_server_respond(r, (int)status, hdr, nh, body, blen) < 0)
        return mpic_push_fail(L, "connect", "the client is gone");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_dead(lua_State *L)
{
    struct lhandle *h = req_handle(L, 1);
    lua_pushboolean(L, !h->r || mpic_server_req_dead(h->r));
    return 1;
}

static int l_handle_gc(lua_State *L)
{
    struct lhandle *h = luaL_checkudata(L, 1, HANDLE_MT);
    if (h->r) {
        mpic_server_req_free(h->r);
        h->r = NULL;
    }
    return 0;
}

static int l_srv_gc(lua_State *L)
{
    srv_close(check_srv(L, 1));
    return 0;
}

/* ---- signals ------------------------------------------------------------- */

struct sigwait {
    struct mpic_pending p;
    int signo;
    struct lsig *lg;
};

struct lsig {
    struct mpic_signal *sg[MAX_SIGNALS];
    int n;
    int ring[SIG_RING];
    int rhead, rlen;
    struct sigwait *w;
};

static const struct {
    const char *name;
    int signo;
} sig_names[] = {{"TERM", SIGTERM}, {"HUP", SIGHUP},   {"INT", SIGINT},  {"USR1", SIGUSR1},
                 {"USR2", SIGUSR2}, {"QUIT", SIGQUIT}, {"CHLD", SIGCHLD}};

static const char *sig_name(int signo)
{
    for (size_t i = 0; i < sizeof sig_names / sizeof sig_names[0]; i++)
        if (sig_names[i].signo == signo)
            return sig_names[i].name;
    return "?";
}

static void on_sig(int signo, void *arg)
{
    struct lsig *lg = arg;
    if (lg->w) {
        struct sigwait *w = lg->w;
        lg->w = NULL;
        w->signo = signo;
        mpic_pending_complete(&w->p);
        return;
    }
    if (lg->rlen < SIG_RING)
        lg->ring[(lg->rhead + lg->rlen++) % SIG_RING] = signo;
}

static void lsig_close(struct lsig *lg)
{
    for (int i = 0; i < lg->n; i++)
        mpic_signal_free(lg->sg[i]);
    lg->n = 0;
    if (lg->w) {
        struct sigwait *w = lg->w;
        lg->w = NULL;
        mpic_pending_complete(&w->p);
    }
}

static int l_signals(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= MAX_SIGNALS, 1, "between 1 and 8 signal names");
    int nums[MAX_SIGNALS];
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        const char *name = luaL_checkstring(L, -1);
        nums[i - 1] = 0;
        for (size_t j = 0; j < sizeof sig_names / sizeof sig_names[0]; j++)
            if (strcmp(sig_names[j].name, name) == 0)
                nums[i - 1] = sig_names[j].signo;
        if (!nums[i - 1])
            return luaL_error(L, "signals: unknown signal name %s", name);
        lua_pop(L, 1);
    }
    struct lsig *lg = lua_newuserdatauv(L, sizeof *lg, 0);
    memset(lg, 0, sizeof *lg);
    luaL_setmetatable(L, SIG_MT);
    for (int i = 0; i < (int)n; i++) {
        if (mpic_signal_new(mpic_loop(), nums[i], on_sig, lg, &lg->sg[lg->n]) != 0) {
            lsig_close(lg);
            return luaL_error(L, "signals: cannot watch SIG%s", sig_name(nums[i]));
        }
        lg->n++;
    }
    return 1;
}

static void sigwait_cancel(void *arg)
{
    struct sigwait *w = arg;
    if (w->lg && w->lg->w == w)
        w->lg->w = NULL;
    free(w);
}

static int k_sig(lua_State *L, int status, lua_KContext ctx)
{
    struct sigwait *w = (struct sigwait *)ctx;
    int signo = w->signo;
    free(w);
    if (!signo) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushstring(L, sig_name(signo));
    return 1;
}

static int l_sig_next(lua_State *L)
{
    struct lsig *lg = luaL_checkudata(L, 1, SIG_MT);
    struct mpic_task *t = mpic_task_current(L);
    if (lg->w)
        return luaL_error(L, "signals:next: another task is already waiting");
    struct sigwait *w = calloc(1, sizeof *w);
    if (!w)
        return luaL_error(L, "signals:next: out of memory");
    w->p.task = t;
    w->lg = lg;
    if (lg->rlen > 0) {
        w->signo = lg->ring[lg->rhead];
        lg->rhead = (lg->rhead + 1) % SIG_RING;
        lg->rlen--;
        w->p.done = 1;
    } else if (lg->n == 0) {
        w->p.done = 1;
    } else {
        lg->w = w;
    }
    return mpic_task_suspend(L, &w->p, sigwait_cancel, w, k_sig, (lua_KContext)w);
}

static int l_sig_close(lua_State *L)
{
    lsig_close(luaL_checkudata(L, 1, SIG_MT));
    return 0;
}

/* ---- module -------------------------------------------------------------- */

static const luaL_Reg srv_methods[] = {
    {"next", l_next},       {"port", l_port},   {"inflight", l_inflight},
    {"sending", l_sending}, {"stats", l_stats}, {"stop_accepting", l_stop_accepting},
    {"close", l_close},     {NULL, NULL}};
static const luaL_Reg req_methods[] = {{"respond", l_respond}, {"dead", l_dead}, {NULL, NULL}};
static const luaL_Reg sig_methods[] = {{"next", l_sig_next}, {"close", l_sig_close}, {NULL, NULL}};
static const luaL_Reg funcs[] = {{"listen", l_listen}, {"signals", l_signals}, {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    if (gc) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}

int luaopen_mpic_server(lua_State *L)
{
    new_class(L, SERVER_MT, srv_methods, l_srv_gc);
    new_class(L, REQ_MT, req_methods, NULL);
    new_class(L, SIG_MT, sig_methods, l_sig_close);
    luaL_newmetatable(L, HANDLE_MT);
    lua_pushcfunction(L, l_handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
