/*
 * server.c: the HTTP/1.1 server of the coordinator and agent APIs, on the
 * process event loop. libevent's evhttp parses requests (malformed HTTP is
 * answered by evhttp itself, an oversized body gets 413); TLS connections
 * are OpenSSL bufferevents created per connection, with client
 * certificates required and verified against a CA file when configured.
 * Each accepted request is copied into a plain struct and handed to the
 * caller's callback; the caller answers it later with mpic_server_respond.
 * Requests whose connection went away or whose server was freed are "dead":
 * answering them is a harmless no-op.
 * Hostile clients: every connection is tracked from accept (evhttp's
 * bufferevent callback sees each new one; the connection is picked up on
 * the next turn of the loop, when evhttp has made it) and counted per
 * listener and per client address: over either cap it is closed at once.
 * A deadline from accept closes a connection that has not brought a whole
 * request (TLS handshake included) in header_timeout_s, and a kept-alive
 * one that has not brought the next within idle_timeout_s of the previous
 * answer; bytes trickling in do not move it (evhttp's own timeout is per
 * read). accept() failing (EMFILE, ENFILE) disables the listener for
 * SERVER_ACCEPT_PAUSE_MS instead of looping, with one log line per
 * SERVER_LOG_EVERY_S. Duplicate or conflicting Content-Length, Content-Length
 * with Transfer-Encoding, a transfer-coding other than "chunked", and a body
 * on GET/HEAD get 400 and the connection is closed, so that nothing after
 * an ambiguous message is read as a request.
 * Also a small signal watcher (evsignal) for SIGTERM / SIGHUP handling.
 * Uses: libevent (evhttp, bufferevent_openssl, evsignal), OpenSSL 3.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <ctype.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#define SERVER_DEFAULT_MAX_BODY (1024 * 1024)
#define SERVER_DEFAULT_INFLIGHT 1000
#define SERVER_DEFAULT_IDLE_S 60
#define SERVER_MAX_HEADERS_SIZE (64 * 1024)
#define SERVER_MAX_SANS 64
#define SERVER_DEFAULT_MAX_CONNS 4096
#define SERVER_DEFAULT_MAX_CONNS_PER_ADDR 1024
#define SERVER_DEFAULT_HEADER_TIMEOUT_S 10
#define SERVER_ACCEPT_PAUSE_MS 250
#define SERVER_LOG_EVERY_S 10
/* libevent's evhttp_bind_socket listens with a backlog of 128: a burst of
 * connections larger than that (a coordinator opening its pool to an agent)
 * loses SYNs and waits for retransmission, seconds later. The kernel caps
 * this at net.core.somaxconn. */
#define SERVER_LISTEN_BACKLOG 4096

/* One log line per kind per SERVER_LOG_EVERY_S, with the count it stood for. */
struct ratelog {
    time_t last;
    unsigned long held;
};

/* Open connections from one client address. */
struct peer {
    struct peer *next; /* s->peers chain */
    int n;
    char addr[64];
};

/* A client connection, from accept to close. */
struct conn {
    struct mpic_server *srv;
    struct bufferevent *bev;         /* a reference while pending */
    struct evhttp_connection *evcon; /* NULL while pending */
    struct event *deadline;
    struct conn *next, *prev; /* s->conns, or s->pending (next only) */
    struct conn *hnext;       /* s->hash chain (by evcon) */
    int busy;                 /* a request is in the handler's hands or being answered */
    struct peer *peer;        /* its address's count (NULL: none yet) */
    char addr[64];
};

struct mpic_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct evconnlistener *listener; /* owned by bound */
    struct event *resume_ev;         /* re-enables the listener after accept() failed */
    struct event *pending_ev;        /* picks up new connections */
    SSL_CTX *ssl;
    int require_client_cert;
    mpic_server_cb cb;
    void *arg;
    int inflight, max_inflight, draining, port;
    int sending; /* answered, reply not yet fully written */
    int max_conns, max_per_addr, header_timeout_s, idle_timeout_s;
    char *health_path;
    struct mpic_server_req *reqs; /* accepted, not yet answered */
    struct conn *pending;         /* made by evhttp, not yet picked up */
    struct conn *conns;           /* open, tracked */
    struct conn **hash;           /* by evcon */
    struct peer **peers;          /* by address */
    size_t hmask;
    int nconns;
    struct mpic_server_stats stats;
    struct ratelog log_accept, log_refused, log_deadline;
    struct mpic_server *next_server; /* all_servers */
};

struct mpic_server_req {
    struct mpic_server *srv;    /* NULL once the server is gone */
    struct evhttp_request *req; /* NULL when dead */
    struct evhttp_connection *evcon;
    struct conn *conn; /* NULL once the connection is gone */
    struct mpic_server_req *next, *prev;
    struct mpic_server_reqinfo info;
};

/* Every live server: the listener's error callback gets evhttp's argument
 * (the evhttp), not ours, and finds its server here. */
static struct mpic_server *all_servers;

static void set_err(char *buf, size_t n, const char *fmt, const char *a)
{
    if (buf && n)
        snprintf(buf, n, fmt, a ? a : "");
}

static void ssl_err(char *buf, size_t n, const char *what, const char *file)
{
    char e[160];
    unsigned long code = ERR_get_error();
    ERR_error_string_n(code, e, sizeof e);
    ERR_clear_error();
    if (buf && n)
        snprintf(buf, n, "%s %s: %s", what, file, code ? e : "failed");
}

/* ---- request bookkeeping ------------------------------------------------- */

static void req_unlink(struct mpic_server_req *r)
{
    struct mpic_server *s = r->srv;
    if (!s)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
    s->inflight--;
    r->srv = NULL;
}

static void info_clear(struct mpic_server_reqinfo *in)
{
    free(in->path);
    free(in->query);
    for (size_t i = 0; i < in->n_headers; i++) {
        free(in->headers[i].name);
        free(in->headers[i].value);
    }
    free(in->headers);
    free(in->body);
    free(in->client_subject);
    for (size_t i = 0; i < in->n_client_sans; i++)
        free(in->client_sans[i]);
    free(in->client_sans);
    memset(in, 0, sizeof *in);
}

static void req_destroy(struct mpic_server_req *r)
{
    req_unlink(r);
    info_clear(&r->info);
    free(r);
}

/* ---- logging ------------------------------------------------------------- */

static void ratelog(struct ratelog *rl, const char *fmt, ...)
{
    time_t now = time(NULL);
    rl->held++;
    if (rl->last && now - rl->last < SERVER_LOG_EVERY_S)
        return;
    char msg[300], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (rl->held > 1)
        fprintf(stderr, "%s server: %s (%lu times since the last such line)\n", ts, msg, rl->held);
    else
        fprintf(stderr, "%s server: %s\n", ts, msg);
    rl->last = now;
    rl->held = 0;
}

/* ---- connections --------------------------------------------------------- */

static size_t conn_hash(const struct mpic_server *s, const struct evhttp_connection *evcon)
{
    uintptr_t v = (uintptr_t)evcon;
    v ^= v >> 17;
    v *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(v >> 16) & s->hmask;
}

static struct conn *conn_find(const struct mpic_server *s, const struct evhttp_connection *evcon)
{
    for (struct conn *c = s->hash[conn_hash(s, evcon)]; c; c = c->hnext)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static size_t addr_hash(const struct mpic_server *s, const char *a)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    return h & s->hmask;
}

/* Count one more connection from addr: the count, or 0 without memory. */
static int peer_add(struct conn *c)
{
    struct mpic_server *s = c->srv;
    size_t h = addr_hash(s, c->addr);
    struct peer *p = s->peers[h];
    while (p && strcmp(p->addr, c->addr) != 0)
        p = p->next;
    if (!p) {
        if (!(p = calloc(1, sizeof *p)))
            return 0;
        memcpy(p->addr, c->addr, sizeof p->addr);
        p->next = s->peers[h];
        s->peers[h] = p;
    }
    c->peer = p;
    return ++p->n;
}

static void peer_drop(struct conn *c)
{
    struct mpic_server *s = c->srv;
    struct peer *p = c->peer;
    if (!p || --p->n > 0)
        return;
    struct peer **pp = &s->peers[addr_hash(s, p->addr)];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    free(p);
}

/* Forget a tracked connection (it is closing, or we close it). */
static void conn_remove(struct conn *c)
{
    struct mpic_server *s = c->srv;
    peer_drop(c);
    struct conn **pp = &s->hash[conn_hash(s, c->evcon)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->deadline)
        event_free(c->deadline);
    free(c);
}

/* The connection is closing: requests still on it are either detached by
 * evhttp (evcon NULL: alive until answered, answering frees them) or about
 * to be freed with it (then they are dead to us). */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct conn *c = arg;
    struct mpic_server *s = c->srv;
    for (struct mpic_server_req *r = s->reqs; r; r = r->next) {
        if (r->evcon != evcon)
            continue;
        r->evcon = NULL;
        r->conn = NULL;
        if (r->req && evhttp_request_get_connection(r->req) != NULL)
            r->req = NULL;
    }
    conn_remove(c);
}

/* Close a connection of ours now (from the loop, never from inside evhttp). */
static void conn_close(struct conn *c)
{
    struct evhttp_connection *evcon = c->evcon;
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    on_conn_close(evcon, c);
    evhttp_connection_free(evcon);
}

static void arm_deadline(struct conn *c, int secs)
{
    struct timeval tv = {secs, 0};
    evtimer_add(c->deadline, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->busy) /* the handler has its request: the deadline does not apply */
        return;
    c->srv->stats.deadline_closed++;
    ratelog(&c->srv->log_deadline,
            "closed a connection from %s: no whole request within the deadline", c->addr);
    conn_close(c);
}

/* Pick up the connections evhttp made since the last turn: track them,
 * apply the caps, start their deadline. keep (the connection evhttp is
 * calling us about, if any) is tracked but never closed here. */
static void take_pending(struct mpic_server *s, struct evhttp_connection *keep)
{
    struct conn *c;
    while ((c = s->pending) != NULL) {
        s->pending = c->next;
        c->next = NULL;
        bufferevent_data_cb readcb = NULL;
        bufferevent_event_cb eventcb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(c->bev, &readcb, NULL, &eventcb, &cbarg);
        /* evhttp sets the connection as the argument of its bufferevent
         * callbacks; a freed bufferevent has none */
        struct evhttp_connection *evcon = cbarg;
        if (!readcb || !evcon || evhttp_connection_get_bufferevent(evcon) != c->bev ||
            evhttp_connection_get_server(evcon) != s->http) {
            bufferevent_decref(c->bev);
            free(c);
            continue;
        }
        bufferevent_decref(c->bev); /* evcon holds it from here */
        c->evcon = evcon;
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        snprintf(c->addr, sizeof c->addr, "%s", addr ? addr : "");
        size_t h = conn_hash(s, evcon);
        c->hnext = s->hash[h];
        s->hash[h] = c;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        evhttp_connection_set_closecb(evcon, on_conn_close, c);
        c->deadline = evtimer_new(s->base, on_deadline, c);
        int same = peer_add(c);
        if (evcon != keep &&
            (!c->deadline || !same || s->nconns > s->max_conns || same > s->max_per_addr)) {
            s->stats.refused_conns++;
            if (!c->deadline || !same)
                ratelog(&s->log_refused, "refused a connection from %s: out of memory", c->addr);
            else if (s->nconns > s->max_conns)
                ratelog(&s->log_refused,
                        "refused a connection from %s: %d connections open (the limit)", c->addr,
                        s->max_conns);
            else
                ratelog(&s->log_refused,
                        "refused a connection from %s: %d connections open from that address "
                        "(the limit)",
                        c->addr, s->max_per_addr);
            conn_close(c);
            continue;
        }
        if (c->deadline)
            arm_deadline(c, s->header_timeout_s);
    }
}

static void on_pending(evutil_socket_t fd, short what, void *arg) { take_pending(arg, NULL); }

/* A new connection (evhttp's bufferevent callback, before evhttp makes the
 * connection): its bufferevent, remembered until take_pending. */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    struct mpic_server *s = arg;
    struct bufferevent *bev;
    if (s->ssl) {
        SSL *ssl = SSL_new(s->ssl);
        if (!ssl)
            return NULL; /* evhttp falls back to an untracked plain one: on_request refuses it */
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
            SSL_free(ssl);
            return NULL;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!bev)
            return NULL;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) { /* untracked connections get no service (on_request) */
        bufferevent_free(bev);
        return NULL;
    }
    c->srv = s;
    c->bev = bev;
    bufferevent_incref(bev); /* until take_pending: evhttp may free it first */
    c->next = s->pending;
    s->pending = c;
    event_active(s->pending_ev, EV_TIMEOUT, 1);
    return bev;
}

/* accept() failed for a reason other than a retriable one (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM): stop accepting for a while instead of spinning on a
 * listening socket that stays readable. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct mpic_server *s = all_servers;
    while (s && s->listener != l)
        s = s->next_server;
    if (!s)
        return;
    s->stats.accept_errors++;
    evconnlistener_disable(l);
    struct timeval tv = {0, SERVER_ACCEPT_PAUSE_MS * 1000};
    evtimer_add(s->resume_ev, &tv);
    ratelog(&s->log_accept, "accept() failed on port %d: %s; accepting again in %d ms", s->port,
            evutil_socket_error_to_string(err), SERVER_ACCEPT_PAUSE_MS);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_server *s = arg;
    if (s->listener && !s->draining)
        evconnlistener_enable(s->listener);
}

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "UNKNOWN";
}

static int copy_headers(struct evhttp_request *req, struct mpic_server_reqinfo *in)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    size_t n = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    in->headers = calloc(n ? n : 1, sizeof *in->headers);
    if (!in->headers)
        return -ENOMEM;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        struct mpic_server_header *o = &in->headers[in->n_headers];
        o->name = strdup(kv->key);
        o->value = strdup(kv->value);
        if (!o->name || !o->value) {
            free(o->name);
            free(o->value);
            return -ENOMEM;
        }
        for (char *p = o->name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        in->n_headers++;
    }
    return 0;
}

static int add_san(struct mpic_server_reqinfo *in, const char *prefix, const char *v, size_t len)
{
    if (in->n_client_sans >= SERVER_MAX_SANS)
        return 0;
    size_t pl = strlen(prefix);
    char *s = malloc(pl + len + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, prefix, pl);
    memcpy(s + pl, v, len);
    s[pl + len] = '\0';
    if (strlen(s) != pl + len) { /* embedded NUL: not a usable identity */
        free(s);
        return 0;
    }
    in->client_sans[in->n_client_sans++] = s;
    return 0;
}

/* Subject and SANs of the verified client certificate. */
static int copy_client_cert(SSL *ssl, struct mpic_server_reqinfo *in)
{
    int rc = 0;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    GENERAL_NAMES *gens = NULL;
    BIO *bio = NULL;
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (!bio) {
        rc = -ENOMEM;
        goto out;
    }
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    in->client_subject = strndup(data, (size_t)len);
    if (!in->client_subject) {
        rc = -ENOMEM;
        goto out;
    }
    in->client_sans = calloc(SERVER_MAX_SANS, sizeof *in->client_sans);
    if (!in->client_sans) {
        rc = -ENOMEM;
        goto out;
    }
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL) {
            const ASN1_IA5STRING *v = g->d.ia5;
            const char *pfx = g->type == GEN_DNS ? "DNS:" : g->type == GEN_URI ? "URI:" : "email:";
            rc = add_san(in, pfx, (const char *)ASN1_STRING_get0_data(v),
                         (size_t)ASN1_STRING_length(v));
        } else if (g->type == GEN_IPADD) {
            char ip[INET6_ADDRSTRLEN] = "";
            int l = ASN1_STRING_length(g->d.ip);
            const unsigned char *b = ASN1_STRING_get0_data(g->d.ip);
            if (l == 4)
                inet_ntop(AF_INET, b, ip, sizeof ip);
            else if (l == 16)
                inet_ntop(AF_INET6, b, ip, sizeof ip);
            if (*ip)
                rc = add_san(in, "IP:", ip, strlen(ip));
        }
    }
out:
    GENERAL_NAMES_free(gens);
    BIO_free(bio);
    X509_free(cert);
    return rc;
}

static int copy_request(struct mpic_server *s, struct evhttp_request *req, SSL *ssl,
                        struct mpic_server_reqinfo *in)
{
    in->method = method_name(evhttp_request_get_command(req));
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    in->path = strdup(path && *path ? path : "/");
    if (!in->path)
        return -ENOMEM;
    if (query && !(in->query = strdup(query)))
        return -ENOMEM;
    if (copy_headers(req, in))
        return -ENOMEM;
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(b);
    in->body = malloc(len + 1);
    if (!in->body)
        return -ENOMEM;
    if (len)
        evbuffer_copyout(b, in->body, len);
    in->body[len] = '\0';
    in->body_len = len;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    snprintf(in->peer, sizeof in->peer, "%s", addr ? addr : "");
    in->peer_port = port;
    if (ssl) {
        in->tls = 1;
        return copy_client_cert(ssl, in);
    }
    return 0;
}

/* The answer to a request of c is written out: the connection waits for
 * its next request, which must come whole within the idle timeout. */
static void conn_answered(struct conn *c)
{
    c->busy = 0;
    arm_deadline(c, c->srv->idle_timeout_s);
}

static void on_simple_sent(struct evhttp_request *req, void *arg) { conn_answered(arg); }

static void send_simple(struct evhttp_request *req, struct conn *c, int code, const char *msg,
                        int close)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (c)
        evhttp_request_set_on_complete_cb(req, on_simple_sent, c);
    evhttp_add_header(oh, "Content-Type", "application/json");
    if (close)
        evhttp_add_header(oh, "Connection", "close");
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    evbuffer_add_printf(b, "{\"error\":\"%s\"}\n", msg);
    evhttp_send_reply(req, code, NULL, NULL);
}

static int all_digits(const char *v)
{
    if (!*v)
        return 0;
    for (; *v; v++)
        if (*v < '0' || *v > '9')
            return 0;
    return 1;
}

/* Why the message framing of req is ambiguous (RFC 9112 6.1, 6.3), or NULL.
 * evhttp reads the body by the first Content-Length, or by chunks when the
 * first Transfer-Encoding is "chunked", and ignores a body of GET or HEAD:
 * any disagreement between that and another reading is refused. */
static const char *framing_error(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    int ncl = 0, nte = 0;
    const char *cl = NULL, *te = NULL;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        if (evutil_ascii_strcasecmp(kv->key, "Content-Length") == 0) {
            ncl++;
            cl = kv->value;
        } else if (evutil_ascii_strcasecmp(kv->key, "Transfer-Encoding") == 0) {
            nte++;
            te = kv->value;
        }
    }
    if (ncl > 1)
        return "more than one Content-Length";
    if (ncl && nte)
        return "Content-Length together with Transfer-Encoding";
    if (nte > 1 || (nte && evutil_ascii_strcasecmp(te, "chunked") != 0))
        return "unsupported Transfer-Encoding (only chunked is accepted)";
    if (ncl && !all_digits(cl))
        return "malformed Content-Length";
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST &&
        (nte || (ncl && strspn(cl, "0") != strlen(cl))))
        return "a body on a request without one";
    return NULL;
}

static int is_health(const struct mpic_server *s, struct evhttp_request *req)
{
    if (!s->health_path)
        return 0;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
        return 0;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    return path && strcmp(path, s->health_path) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct mpic_server *s = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    SSL *ssl = NULL;
    if (s->pending) /* not expected: they are picked up before their first read */
        take_pending(s, evcon);
    struct conn *c = evcon ? conn_find(s, evcon) : NULL;
    if (!c || !c->deadline) { /* not tracked (out of memory at accept): no service */
        send_simple(req, NULL, 503, "connection not accepted", 1);
        return;
    }
    c->busy = 1;
    evtimer_del(c->deadline);
    const char *bad = framing_error(req);
    if (bad) {
        s->stats.bad_framing++;
        send_simple(req, c, 400, bad, 1);
        return;
    }
    if (s->draining) {
        send_simple(req, c, 503, "shutting down", 1);
        return;
    }
    int health = is_health(s, req);
    if (s->inflight >= s->max_inflight && !health) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        send_simple(req, c, 503, "too many requests in flight", 0);
        return;
    }
    if (s->ssl) {
        /* fail closed: a connection that is not TLS, or whose client
         * certificate did not verify, gets no service */
        ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
        if (!ssl) {
            send_simple(req, c, 403, "TLS required", 1);
            return;
        }
        if (s->require_client_cert) {
            X509 *peer = SSL_get1_peer_certificate(ssl);
            int good = peer && SSL_get_verify_result(ssl) == X509_V_OK;
            X509_free(peer);
            if (!good) {
                send_simple(req, c, 403, "client certificate required", 1);
                return;
            }
        }
    }
    struct mpic_server_req *r = calloc(1, sizeof *r);
    if (!r || copy_request(s, req, ssl, &r->info)) {
        if (r)
            info_clear(&r->info);
        free(r);
        send_simple(req, c, 500, "out of memory", 1);
        return;
    }
    r->info.health = health;
    /* replies go out as several writes (TLS records); without this, Nagle
     * and the peer's delayed ACK stall each answer on a kept-alive connection */
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    r->srv = s;
    r->req = req;
    r->evcon = evcon;
    r->conn = c;
    r->next = s->reqs;
    if (s->reqs)
        s->reqs->prev = r;
    s->reqs = r;
    s->inflight++;
    s->cb(r, s->arg);
}

static int tls_setup(struct mpic_server *s, const struct mpic_server_opts *o, char *errbuf,
                     size_t errlen)
{
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (!s->ssl) {
        ssl_err(errbuf, errlen, "TLS context", "");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(s->ssl, o->cert_file) != 1) {
        ssl_err(errbuf, errlen, "cannot load certificate", o->cert_file);
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl, o->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        ssl_err(errbuf, errlen, "cannot load private key", o->key_file);
        return -EINVAL;
    }
    if (o->client_ca_file) {
        if (SSL_CTX_load_verify_locations(s->ssl, o->client_ca_file, NULL) != 1) {
            ssl_err(errbuf, errlen, "cannot load client CA", o->client_ca_file);
            return -EINVAL;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(s->ssl, names);
        SSL_CTX_set_verify(
            s->ssl,
            SSL_VERIFY_PEER | (o->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
        SSL_CTX_set_verify_depth(s->ssl, 4);
    } else if (o->require_client_cert) {
        set_err(errbuf, errlen, "require_client_cert needs a client CA file%s", "");
        return -EINVAL;
    }
    s->require_client_cert = o->require_client_cert;
    return 0;
}

/* Hand a listener to evhttp, with our accept error callback. */
static struct evhttp_bound_socket *attach_listener(struct mpic_server *s, struct evconnlistener *l)
{
    struct evhttp_bound_socket *b = evhttp_bind_listener(s->http, l);
    if (!b) {
        evconnlistener_free(l);
        return NULL;
    }
    s->listener = l;
    evconnlistener_set_error_cb(l, on_accept_error);
    return b;
}

/* Listen on ADDRESS:PORT (a name or a numeric address) with our backlog and
 * hand the listener to evhttp. NULL with errno set on failure. */
static struct evhttp_bound_socket *bind_listener(struct mpic_server *s, const char *address,
                                                 int port)
{
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
    if (evutil_getaddrinfo(address, portstr, &hints, &ai) != 0 || !ai) {
        errno = EADDRNOTAVAIL;
        return NULL;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        s->base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        SERVER_LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    int saved = errno;
    evutil_freeaddrinfo(ai);
    if (!l) {
        errno = saved;
        return NULL;
    }
    return attach_listener(s, l);
}

/* Accept on fd, a listening socket bound by someone else (a worker's socket
 * inherited from its master, lua_workers.c): adopted, closed with the server. */
static struct evhttp_bound_socket *adopt_listener(struct mpic_server *s, int fd)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
        errno = ENOTSOCK;
        return NULL;
    }
    if (evutil_make_socket_nonblocking(fd) < 0 || evutil_make_socket_closeonexec(fd) < 0)
        return NULL;
    /* backlog 0: the socket is listening already (with its own backlog) */
    struct evconnlistener *l = evconnlistener_new(
        s->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!l)
        return NULL;
    return attach_listener(s, l);
}

int mpic_server_new(struct event_base *base, const struct mpic_server_opts *o, mpic_server_cb cb,
                    void *arg, struct mpic_server **out, char *errbuf, size_t errlen)
{
    int rc = 0;
    struct mpic_server *s = NULL;
    *out = NULL;
    if (!base || !o || !cb || !o->address || o->port < 0 || o->port > 65535) {
        set_err(errbuf, errlen, "bad server options%s", "");
        return -EINVAL;
    }
    if (!!o->cert_file != !!o->key_file) {
        set_err(errbuf, errlen, "TLS needs both a certificate and a key%s", "");
        return -EINVAL;
    }
    if (!o->cert_file && (o->client_ca_file || o->require_client_cert)) {
        set_err(errbuf, errlen, "client certificates need TLS (a certificate and a key)%s", "");
        return -EINVAL;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->base = base;
    s->cb = cb;
    s->arg = arg;
    s->max_inflight = o->max_inflight > 0 ? o->max_inflight : SERVER_DEFAULT_INFLIGHT;
    /* by default a client may hold as many connections as requests may be
     * in flight: the in-flight limit is what a busy client meets first */
    s->max_conns = o->max_conns > 0 ? o->max_conns : SERVER_DEFAULT_MAX_CONNS;
    if (o->max_conns <= 0 && s->max_conns < s->max_inflight + 64)
        s->max_conns = s->max_inflight + 64;
    s->max_per_addr =
        o->max_conns_per_addr > 0 ? o->max_conns_per_addr : SERVER_DEFAULT_MAX_CONNS_PER_ADDR;
    if (o->max_conns_per_addr <= 0 && s->max_per_addr < s->max_inflight + 64)
        s->max_per_addr = s->max_inflight + 64;
    s->header_timeout_s =
        o->header_timeout_s > 0 ? o->header_timeout_s : SERVER_DEFAULT_HEADER_TIMEOUT_S;
    s->idle_timeout_s = o->idle_timeout_s > 0 ? o->idle_timeout_s : SERVER_DEFAULT_IDLE_S;
    size_t nb = 64;
    while (nb < (size_t)s->max_conns && nb < ((size_t)1 << 20))
        nb <<= 1;
    s->hash = calloc(nb, sizeof *s->hash);
    s->peers = calloc(nb, sizeof *s->peers);
    s->hmask = nb - 1;
    s->pending_ev = event_new(base, -1, 0, on_pending, s);
    s->resume_ev = evtimer_new(base, on_resume, s);
    if (o->health_path)
        s->health_path = strdup(o->health_path);
    s->next_server = all_servers;
    all_servers = s;
    if (!s->hash || !s->peers || !s->pending_ev || !s->resume_ev ||
        (o->health_path && !s->health_path)) {
        rc = -ENOMEM;
        goto fail;
    }
    if (o->cert_file && (rc = tls_setup(s, o, errbuf, errlen)) != 0)
        goto fail;
    s->http = evhttp_new(base);
    if (!s->http) {
        rc = -ENOMEM;
        goto fail;
    }
    evhttp_set_max_body_size(s->http,
                             (ev_ssize_t)(o->max_body ? o->max_body : SERVER_DEFAULT_MAX_BODY));
    evhttp_set_max_headers_size(s->http, SERVER_MAX_HEADERS_SIZE);
    evhttp_set_timeout(s->http, s->idle_timeout_s);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_bevcb(s->http, make_bev, s);
    s->bound =
        o->listen_fd > 2 ? adopt_listener(s, o->listen_fd) : bind_listener(s, o->address, o->port);
    if (!s->bound) {
        char m[160];
        if (o->listen_fd > 2)
            snprintf(m, sizeof m, "inherited socket %d: %s", o->listen_fd, strerror(errno));
        else
            snprintf(m, sizeof m, "%s port %d: %s", o->address, o->port, strerror(errno));
        set_err(errbuf, errlen, "cannot listen on %s", m);
        rc = -EADDRINUSE;
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s->bound);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *out = s;
    return 0;
fail:
    mpic_server_free(s);
    return rc;
}

int mpic_server_port(const struct mpic_server *s) { return s->port; }

int mpic_server_inflight(const struct mpic_server *s) { return s->inflight; }

int mpic_server_sending(const struct mpic_server *s) { return s->sending; }

void mpic_server_stats(const struct mpic_server *s, struct mpic_server_stats *out)
{
    *out = s->stats;
    out->conns = s->nconns;
}

/* The reply has been written out (not called when the connection fails:
 * the count then stays high, and a drain waits only for its bound). */
static void on_sent(struct evhttp_request *req, void *arg)
{
    struct conn *c = arg;
    if (c->srv->sending > 0)
        c->srv->sending--;
    conn_answered(c);
}

void mpic_server_stop_accepting(struct mpic_server *s)
{
    if (s->bound) {
        evhttp_del_accept_socket(s->http, s->bound);
        s->bound = NULL;
        s->listener = NULL;
    }
    if (s->resume_ev)
        evtimer_del(s->resume_ev);
    s->draining = 1;
}

void mpic_server_free(struct mpic_server *s)
{
    if (!s)
        return;
    while (s->reqs) { /* the caller still owns them; they become dead */
        struct mpic_server_req *r = s->reqs;
        r->req = NULL;
        r->evcon = NULL;
        req_unlink(r);
    }
    if (s->http)
        evhttp_free(s->http); /* closes every connection: on_conn_close forgets them */
    while (s->conns)          /* evhttp did not report (not expected) */
        conn_remove(s->conns);
    while (s->pending) {
        struct conn *c = s->pending;
        s->pending = c->next;
        bufferevent_decref(c->bev);
        free(c);
    }
    for (struct mpic_server **pp = &all_servers; *pp; pp = &(*pp)->next_server)
        if (*pp == s) {
            *pp = s->next_server;
            break;
        }
    if (s->pending_ev)
        event_free(s->pending_ev);
    if (s->resume_ev)
        event_free(s->resume_ev);
    free(s->hash);
    free(s->peers);
    free(s->health_path);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    free(s);
}

const struct mpic_server_reqinfo *mpic_server_req_info(const struct mpic_server_req *r)
{
    return &r->info;
}

int mpic_server_req_dead(const struct mpic_server_req *r) { return r->req == NULL; }

int mpic_server_respond(struct mpic_server_req *r, int status, const char *const *headers,
                        size_t n_headers, const char *body, size_t body_len)
{
    if (!r->req) {
        req_destroy(r);
        return -EPIPE;
    }
    struct mpic_server *s = r->srv;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
    for (size_t i = 0; i < n_headers; i++)
        evhttp_add_header(oh, headers[2 * i], headers[2 * i + 1]); /* refuses CR/LF */
    if (s && s->draining)
        evhttp_add_header(oh, "Connection", "close");
    if (body_len)
        evbuffer_add(evhttp_request_get_output_buffer(r->req), body, body_len);
    if (status < 100 || status > 599)
        status = 500;
    if (s && r->conn && evhttp_request_get_connection(r->req)) {
        s->sending++;
        evhttp_request_set_on_complete_cb(r->req, on_sent, r->conn);
    }
    evhttp_send_reply(r->req, status, NULL, NULL);
    r->req = NULL;
    req_destroy(r);
    return 0;
}

void mpic_server_req_free(struct mpic_server_req *r)
{
    if (!r)
        return;
    if (r->req) {
        static const char msg[] = "{\"error\":\"internal error: the request was not answered\"}\n";
        mpic_server_respond(r, 500, NULL, 0, msg, sizeof msg - 1);
        return;
    }
    req_destroy(r);
}

/* ---- signals ------------------------------------------------------------- */

struct mpic_signal {
    struct event *ev;
    mpic_signal_cb cb;
    void *arg;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct mpic_signal *sg = arg;
    sg->cb((int)sig, sg->arg);
}

int mpic_signal_new(struct event_base *base, int signo, mpic_signal_cb cb, void *arg,
                    struct mpic_signal **out)
{
    struct mpic_signal *sg = calloc(1, sizeof *sg);
    *out = NULL;
    if (!sg)
        return -ENOMEM;
    sg->cb = cb;
    sg->arg = arg;
    sg->ev = evsignal_new(base, signo, on_signal, sg);
    if (!sg->ev || event_add(sg->ev, NULL) != 0) {
        if (sg->ev)
            event_free(sg->ev);
        free(sg);
        return -EINVAL;
    }
    *out = sg;
    return 0;
}

void mpic_signal_free(struct mpic_signal *sg)
{
    if (!sg)
        return;
    event_free(sg->ev);
    free(sg);
}
