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
#include <sys/socket.h>

#define SERVER_DEFAULT_MAX_BODY (1024 * 1024)
#define SERVER_DEFAULT_INFLIGHT 1000
#define SERVER_DEFAULT_IDLE_S 60
#define SERVER_MAX_HEADERS_SIZE (64 * 1024)
#define SERVER_MAX_SANS 64
/* libevent's evhttp_bind_socket listens with a backlog of 128: a burst of
 * connections larger than that (a coordinator opening its pool to an agent)
 * loses SYNs and waits for retransmission, seconds later. The kernel caps
 * this at net.core.somaxconn. */
#define SERVER_LISTEN_BACKLOG 4096

struct mpic_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *ssl;
    int require_client_cert;
    mpic_server_cb cb;
    void *arg;
    int inflight, max_inflight, draining, port;
    int sending; /* answered, reply not yet fully written */
    struct mpic_server_req *reqs; /* accepted, not yet answered */
};

struct mpic_server_req {
    struct mpic_server *srv;      /* NULL once the server is gone */
    struct evhttp_request *req;   /* NULL when dead */
    struct evhttp_connection *evcon;
    struct mpic_server_req *next, *prev;
    struct mpic_server_reqinfo info;
};

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

/* The connection is closing: requests still on it are either detached by
 * evhttp (evcon NULL: alive until answered, answering frees them) or about
 * to be freed with it (then they are dead to us). */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct mpic_server *s = arg;
    for (struct mpic_server_req *r = s->reqs; r; r = r->next) {
        if (r->evcon != evcon)
            continue;
        r->evcon = NULL;
        if (r->req && evhttp_request_get_connection(r->req) != NULL)
            r->req = NULL;
    }
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
            rc = add_san(in, pfx, (const char *)ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
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

static void send_simple(struct evhttp_request *req, int code, const char *msg, int close)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", "application/json");
    if (close)
        evhttp_add_header(oh, "Connection", "close");
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    evbuffer_add_printf(b, "{\"error\":\"%s\"}\n", msg);
    evhttp_send_reply(req, code, NULL, NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct mpic_server *s = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    SSL *ssl = NULL;
    if (s->draining) {
        send_simple(req, 503, "shutting down", 1);
        return;
    }
    if (s->inflight >= s->max_inflight) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        send_simple(req, 503, "too many requests in flight", 0);
        return;
    }
    if (s->ssl) {
        /* fail closed: a connection that is not TLS, or whose client
         * certificate did not verify, gets no service */
        ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
        if (!ssl) {
            send_simple(req, 403, "TLS required", 1);
            return;
        }
        if (s->require_client_cert) {
            X509 *peer = SSL_get1_peer_certificate(ssl);
            int good = peer && SSL_get_verify_result(ssl) == X509_V_OK;
            X509_free(peer);
            if (!good) {
                send_simple(req, 403, "client certificate required", 1);
                return;
            }
        }
    }
    struct mpic_server_req *r = calloc(1, sizeof *r);
    if (!r || copy_request(s, req, ssl, &r->info)) {
        if (r)
            info_clear(&r->info);
        free(r);
        send_simple(req, 500, "out of memory", 1);
        return;
    }
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
    r->next = s->reqs;
    if (s->reqs)
        s->reqs->prev = r;
    s->reqs = r;
    s->inflight++;
    evhttp_connection_set_closecb(evcon, on_conn_close, s);
    s->cb(r, s->arg);
}

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    struct mpic_server *s = arg;
    SSL *ssl = SSL_new(s->ssl);
    if (!ssl)
        return NULL; /* evhttp falls back to plain; on_request refuses it */
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static int tls_setup(struct mpic_server *s, const struct mpic_server_opts *o, char *errbuf, size_t errlen)
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
        SSL_CTX_set_verify(s->ssl,
                           SSL_VERIFY_PEER | (o->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
        SSL_CTX_set_verify_depth(s->ssl, 4);
    } else if (o->require_client_cert) {
        set_err(errbuf, errlen, "require_client_cert needs a client CA file%s", "");
        return -EINVAL;
    }
    s->require_client_cert = o->require_client_cert;
    return 0;
}

/* Listen on ADDRESS:PORT (a name or a numeric address) with our backlog and
 * hand the listener to evhttp. NULL with errno set on failure. */
static struct evhttp_bound_socket *bind_listener(struct mpic_server *s, const char *address, int port)
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
    struct evconnlistener *l =
        evconnlistener_new_bind(s->base, NULL, NULL,
                                LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                SERVER_LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    int saved = errno;
    evutil_freeaddrinfo(ai);
    if (!l) {
        errno = saved;
        return NULL;
    }
    struct evhttp_bound_socket *b = evhttp_bind_listener(s->http, l);
    if (!b)
        evconnlistener_free(l);
    return b;
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
    if (o->cert_file && (rc = tls_setup(s, o, errbuf, errlen)) != 0)
        goto fail;
    s->http = evhttp_new(base);
    if (!s->http) {
        rc = -ENOMEM;
        goto fail;
    }
    evhttp_set_max_body_size(s->http, (ev_ssize_t)(o->max_body ? o->max_body : SERVER_DEFAULT_MAX_BODY));
    evhttp_set_max_headers_size(s->http, SERVER_MAX_HEADERS_SIZE);
    evhttp_set_timeout(s->http, o->idle_timeout_s > 0 ? o->idle_timeout_s : SERVER_DEFAULT_IDLE_S);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(s->http, on_request, s);
    if (s->ssl)
        evhttp_set_bevcb(s->http, make_tls_bev, s);
    s->bound = bind_listener(s, o->address, o->port);
    if (!s->bound) {
        char m[160];
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

/* The reply has been written out (not called when the connection fails:
 * the count then stays high, and a drain waits only for its bound). */
static void on_sent(struct evhttp_request *req, void *arg)
{
    struct mpic_server *s = arg;
    if (s->sending > 0)
        s->sending--;
}

void mpic_server_stop_accepting(struct mpic_server *s)
{
    if (s->bound) {
        evhttp_del_accept_socket(s->http, s->bound);
        s->bound = NULL;
    }
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
        evhttp_free(s->http);
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
    if (s && evhttp_request_get_connection(r->req)) {
        s->sending++;
        evhttp_request_set_on_complete_cb(r->req, on_sent, s);
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
