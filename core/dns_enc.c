/*
 * dns_enc.c: DNS-over-TLS (RFC 7858) and DNS-over-HTTPS (RFC 8484) resolver
 * transports (dns_enc.h).
 *
 * DoT: one TCP+TLS connection per resolver at a time, a libevent OpenSSL
 * bufferevent on our own non-blocking socket (bound to the perspective's
 * source address or interface). Queries are framed with the two-byte length
 * of RFC 1035 4.2.2 and pipelined: each is written as soon as it starts,
 * several are in flight on the connection at once, answers are matched by
 * message ID (unique among the queries in flight) and question, in any
 * order (RFC 7766 6.2.1.1). A connection the resolver closes, or one that
 * fails, fails the queries still waiting on it (dns.c retries them within
 * the query's tries and lifetime) and the next query opens a new one. A
 * connection that stays silent past a query's timeout is retired: new
 * queries go to a new connection, the old one is closed once its last query
 * is over. The TLS handshake is bounded by connect_timeout_ms.
 *
 * DoH: a POST of the message as application/dns-message (ID 0, RFC 8484
 * 4.1) through the libcurl multi wrapper (http.c), one multi handle per
 * resolver, kept-alive connections, HTTP/2 over TLS where the server offers
 * it (ALPN) with the requests multiplexed as streams of one connection.
 *
 * Both verify the resolver's certificate (chain to ca_file or the system
 * store, name or address); a failure fails the query with kind "tls" and
 * the verifier's reason. Resolvers are the CA's own infrastructure, like
 * agents: the reserved-address guard of the probes does not apply to them.
 */
#include "dns_enc.h"

#include "http.h"
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DOT_DEFAULT_PORT 853
#define MAX_ENTRY 512
#define MAX_MSG 65535

struct dot_conn {
    struct mpic_dns_enc *e;
    struct bufferevent *bev;
    SSL *ssl; /* owned by bev */
    struct event *hs_timer;
    int ready;   /* handshake done */
    int retired; /* no new queries; freed with its last one */
    size_t n_q;  /* queries waiting on it */
    uint64_t last_read_ms;
    struct dot_conn *next;
};

struct mpic_dns_enc {
    struct event_base *base;
    int kind;
    char label[MAX_ENTRY + 1];
    int connect_timeout_ms;
    char *interface, *source_ip;
    /* DoT */
    SSL_CTX *ctx;
    struct sockaddr_storage sa;
    socklen_t salen;
    char verify_name[256]; /* host name or IP text */
    int verify_is_ip;
    struct dot_conn *conns; /* every live connection; the first non-retired is current */
    unsigned char *rbuf;    /* one frame */
    /* DoH */
    struct mpic_http *http;
    char *url;
    char connect_ip[64];
    char *ca_file;
    unsigned long n_conns;
    struct mpic_dns_enc_query *queries; /* every pending query */
};

struct mpic_dns_enc_query {
    struct mpic_dns_enc *e;
    mpic_dns_enc_cb cb;
    void *arg;
    struct event *timer;
    struct mpic_dns_enc_query *prev, *next;
    struct dot_conn *conn;      /* DoT */
    struct mpic_http_req *hreq; /* DoH */
    enum mpic_err pend_err;     /* a failure found before any I/O */
    char pend_detail[512];
    uint64_t sent_ms;
    int timeout_ms;
    int unsent; /* DoT: waits for the handshake */
    uint16_t id;
    size_t len;
    unsigned char msg[2 + 512]; /* length prefix, then the message */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int mpic_dns_enc_scheme(const char *entry)
{
    if (!entry)
        return MPIC_DNS_ENC_NONE;
    if (strncasecmp(entry, "tls://", 6) == 0)
        return MPIC_DNS_ENC_DOT;
    if (strncasecmp(entry, "https://", 8) == 0)
        return MPIC_DNS_ENC_DOH;
    return MPIC_DNS_ENC_NONE;
}

const char *mpic_dns_enc_label(const struct mpic_dns_enc *e) { return e->label; }

unsigned long mpic_dns_enc_connections(const struct mpic_dns_enc *e) { return e ? e->n_conns : 0; }

/* ---- queries ------------------------------------------------------------ */

static void unlink_query(struct mpic_dns_enc_query *q);

static void query_free(struct mpic_dns_enc_query *q)
{
    unlink_query(q);
    if (q->timer)
        event_free(q->timer);
    if (q->hreq)
        mpic_http_req_abandon(q->hreq);
    free(q);
}

/* Deliver and free. */
static void deliver(struct mpic_dns_enc_query *q, enum mpic_err err, const char *detail,
                    const unsigned char *msg, size_t len)
{
    mpic_dns_enc_cb cb = q->cb;
    void *arg = q->arg;
    query_free(q);
    cb(arg, err, detail, msg, len);
}

static void deliver_fail(struct mpic_dns_enc_query *q, enum mpic_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void deliver_fail(struct mpic_dns_enc_query *q, enum mpic_err err, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    deliver(q, err, detail, NULL, 0);
}

/* The answer answers q: same ID, one question, the same question bytes
 * (name compared without regard to ASCII case). */
static int answer_matches(const struct mpic_dns_enc_query *q, const unsigned char *m, size_t n)
{
    const unsigned char *qm = q->msg + 2;
    size_t qend = 12, i;
    /* the question section of our own query: the name, type, class */
    while (qend < q->len && qm[qend] != 0)
        qend += (size_t)qm[qend] + 1;
    qend += 5;
    if (qend > q->len || n < qend || m[0] != qm[0] || m[1] != qm[1] || m[4] != 0 || m[5] != 1)
        return 0;
    for (i = 12; i < qend; i++) {
        unsigned char a = m[i], b = qm[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a + 32);
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b + 32);
        if (a != b)
            return 0;
    }
    return 1;
}

/* ---- DoT connections ------------------------------------------------------ */

static void conn_free(struct dot_conn *c)
{
    struct dot_conn **pp;
    for (pp = &c->e->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (c->hs_timer)
        event_free(c->hs_timer);
    if (c->bev)
        bufferevent_free(c->bev); /* frees the SSL object, closes the socket */
    free(c);
}

static void unlink_query(struct mpic_dns_enc_query *q)
{
    struct mpic_dns_enc *e = q->e;
    if (q->prev)
        q->prev->next = q->next;
    else if (e->queries == q)
        e->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    if (q->conn) {
        struct dot_conn *c = q->conn;
        q->conn = NULL;
        c->n_q--;
        if (c->retired && c->n_q == 0)
            conn_free(c);
    }
}

/* Fail every query waiting on c with err/detail and close c. */
static void conn_fail(struct dot_conn *c, enum mpic_err err, const char *detail)
{
    struct mpic_dns_enc *e = c->e;
    struct mpic_dns_enc_query *q, *next, *failed = NULL;

    /* take them off first: their callbacks may start new queries */
    for (q = e->queries; q; q = next) {
        next = q->next;
        if (q->conn != c)
            continue;
        c->retired = 1; /* keeps c alive until the loop below is done */
        q->conn = NULL;
        c->n_q--;
        if (q->prev)
            q->prev->next = q->next;
        else
            e->queries = q->next;
        if (q->next)
            q->next->prev = q->prev;
        q->prev = NULL;
        q->next = failed;
        failed = q;
    }
    conn_free(c);
    for (q = failed; q; q = next) {
        next = q->next;
        q->next = NULL;
        deliver(q, err, detail, NULL, 0);
    }
}

/* Whether the TCP connection under a failed handshake was ever made; when
 * not, *err holds the reason when the kernel still has it. */
static int tcp_connected(evutil_socket_t fd, int *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss, el = sizeof *err;
    int soerr = 0;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) == 0 && soerr) {
        *err = soerr;
        return 0;
    }
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    return 1;
}

static void on_dot_event(struct bufferevent *bev, short what, void *arg)
{
    struct dot_conn *c = arg;
    struct mpic_dns_enc *e = c->e;
    char detail[512], ossl[200] = "";
    unsigned long oe, first = 0;
    int sockerr = EVUTIL_SOCKET_ERROR();

    if (what & BEV_EVENT_CONNECTED) {
        struct mpic_dns_enc_query *q;
        c->ready = 1;
        if (c->hs_timer)
            evtimer_del(c->hs_timer);
        for (q = e->queries; q; q = q->next)
            if (q->conn == c && q->unsent) {
                q->unsent = 0;
                q->sent_ms = now_ms();
                if (bufferevent_write(c->bev, q->msg, q->len + 2) != 0) {
                    conn_fail(c, MPIC_E_INTERNAL,
                              "DNS problem: cannot write to the resolver connection");
                    return;
                }
            }
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    while ((oe = bufferevent_get_openssl_error(bev)))
        if (!first)
            first = oe;
    if (first)
        ERR_error_string_n(first, ossl, sizeof ossl);
    if (!c->ready) {
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK) {
            snprintf(detail, sizeof detail,
                     "DNS problem: the resolver's certificate does not verify: %s (%.200s)",
                     X509_verify_cert_error_string(vr), e->label);
            conn_fail(c, MPIC_E_TLS, detail);
        } else if (!tcp_connected(bufferevent_getfd(bev), &sockerr)) {
            snprintf(detail, sizeof detail,
                     "DNS problem: cannot connect to the resolver: %s (%.200s)",
                     sockerr ? strerror(sockerr) : "connection failed", e->label);
            conn_fail(c, MPIC_E_CONNECT, detail);
        } else if (first) {
            const char *why = ERR_reason_error_string(first);
            snprintf(detail, sizeof detail,
                     "DNS problem: TLS handshake with the resolver failed: %s (%.200s)",
                     why ? why : ossl, e->label);
            conn_fail(c, MPIC_E_TLS, detail);
        } else {
            snprintf(
                detail, sizeof detail,
                "DNS problem: the resolver closed the connection during the TLS handshake (%.200s)",
                e->label);
            conn_fail(c, MPIC_E_TLS, detail);
        }
        return;
    }
    if (first) {
        const char *why = ERR_reason_error_string(first);
        snprintf(detail, sizeof detail,
                 "DNS problem: TLS error on the resolver connection: %s (%.200s)", why ? why : ossl,
                 e->label);
        conn_fail(c, MPIC_E_TLS, detail);
        return;
    }
    snprintf(detail, sizeof detail,
             "DNS problem: the resolver closed the connection before answering (%.200s)", e->label);
    conn_fail(c, MPIC_E_CONNECT, detail);
}

static void on_dot_read(struct bufferevent *bev, void *arg)
{
    struct dot_conn *c = arg;
    struct mpic_dns_enc *e = c->e;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned char hdr[2];
    size_t n;

    c->last_read_ms = now_ms();
    c->n_q++; /* held: answering its last query must not free c here */
    /* bounded: every pass consumes a whole frame from a finite buffer */
    while (evbuffer_get_length(in) >= 2) {
        struct mpic_dns_enc_query *q;
        evbuffer_copyout(in, hdr, 2);
        n = (size_t)hdr[0] << 8 | hdr[1];
        if (evbuffer_get_length(in) < 2 + n)
            break;
        evbuffer_drain(in, 2);
        evbuffer_remove(in, e->rbuf, n);
        if (n < 12) {
            char detail[512];
            snprintf(
                detail, sizeof detail,
                "DNS problem: malformed response from the resolver (%zu-byte message) (%.200s)", n,
                e->label);
            conn_fail(c, MPIC_E_DNS, detail); /* frees c */
            return;
        }
        for (q = e->queries; q; q = q->next)
            if (q->conn == c && q->id == ((uint16_t)(e->rbuf[0] << 8 | e->rbuf[1])))
                break;
        if (!q)
            continue; /* a late answer to a query given up */
        if (!answer_matches(q, e->rbuf, n)) {
            deliver_fail(q, MPIC_E_DNS,
                         "DNS problem: the resolver's answer does not match the question (%.200s)",
                         e->label);
            continue;
        }
        deliver(q, MPIC_OK, NULL, e->rbuf, n);
    }
    if (--c->n_q == 0 && c->retired)
        conn_free(c);
}

static void on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct dot_conn *c = arg;
    char detail[512];
    snprintf(detail, sizeof detail,
             "DNS problem: no TLS connection to the resolver within %d ms (%.200s)",
             c->e->connect_timeout_ms, c->e->label);
    conn_fail(c, MPIC_E_TIMEOUT, detail);
}

/* Open a new current connection; NULL with detail filled on failure. */
static struct dot_conn *conn_open(struct mpic_dns_enc *e, enum mpic_err *err, char *detail,
                                  size_t dlen)
{
    struct dot_conn *c = NULL;
    SSL *ssl = NULL;
    int fd = -1, one = 1;
    struct timeval tv;

    *err = MPIC_E_CONNECT;
    fd = socket(e->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(detail, dlen, "DNS problem: socket: %s (%.200s)", strerror(errno), e->label);
        return NULL;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (e->interface && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, e->interface,
                                   (socklen_t)strlen(e->interface)) < 0) {
        snprintf(detail, dlen, "DNS problem: bind to interface %s: %s (%.200s)", e->interface,
                 strerror(errno), e->label);
        goto fail;
    }
    if (e->source_ip) {
        struct sockaddr_storage src;
        unsigned int srclen;
        if (mpic_netaddr_sockaddr(e->source_ip, 0, &src, &srclen) != 0 ||
            src.ss_family != e->sa.ss_family || bind(fd, (struct sockaddr *)&src, srclen) < 0) {
            snprintf(detail, dlen, "DNS problem: bind %s: %s (%.200s)", e->source_ip,
                     strerror(errno), e->label);
            goto fail;
        }
    }
    *err = MPIC_E_INTERNAL;
    snprintf(detail, dlen, "DNS problem: out of memory (%.200s)", e->label);
    c = calloc(1, sizeof *c);
    ssl = SSL_new(e->ctx);
    if (!c || !ssl)
        goto fail;
    c->e = e;
    if (!e->verify_is_ip && !SSL_set_tlsext_host_name(ssl, e->verify_name))
        goto fail;
    if (e->verify_is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), e->verify_name)
                        : !SSL_set1_host(ssl, e->verify_name))
        goto fail;
    c->bev = bufferevent_openssl_socket_new(e->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!c->bev)
        goto fail;
    c->ssl = ssl;
    ssl = NULL;
    fd = -1; /* the bufferevent owns both now */
    c->hs_timer = evtimer_new(e->base, on_hs_timeout, c);
    if (!c->hs_timer)
        goto fail;
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, on_dot_read, NULL, on_dot_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&e->sa, (int)e->salen) < 0) {
        *err = MPIC_E_CONNECT;
        snprintf(detail, dlen, "DNS problem: cannot connect to the resolver: %s (%.200s)",
                 strerror(errno), e->label);
        goto fail;
    }
    tv.tv_sec = e->connect_timeout_ms / 1000;
    tv.tv_usec = (e->connect_timeout_ms % 1000) * 1000;
    evtimer_add(c->hs_timer, &tv);
    c->next = e->conns;
    e->conns = c;
    e->n_conns++;
    ERR_clear_error();
    return c;
fail:
    if (c) {
        if (c->hs_timer)
            event_free(c->hs_timer);
        if (c->bev)
            bufferevent_free(c->bev);
        free(c);
    }
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return NULL;
}

static struct dot_conn *current_conn(struct mpic_dns_enc *e)
{
    struct dot_conn *c;
    for (c = e->conns; c; c = c->next)
        if (!c->retired)
            return c;
    return NULL;
}

static int id_in_use(struct mpic_dns_enc *e, struct dot_conn *c, uint16_t id)
{
    struct mpic_dns_enc_query *q;
    for (q = e->queries; q; q = q->next)
        if (q->conn == c && q->id == id)
            return 1;
    return 0;
}

static void dot_send(struct mpic_dns_enc_query *q)
{
    struct mpic_dns_enc *e = q->e;
    struct dot_conn *c = current_conn(e);
    unsigned char rnd[2];
    int i;

    if (!c) {
        enum mpic_err oerr = MPIC_OK;
        c = conn_open(e, &oerr, q->pend_detail, sizeof q->pend_detail);
        if (!c) {
            q->pend_err = oerr;
            return;
        }
    }
    /* a fresh random ID not in flight on this connection (bounded tries:
     * 65536 IDs, and a connection never holds that many queries) */
    for (i = 0; i < 64; i++) {
        if (RAND_bytes(rnd, 2) != 1)
            rnd[0] = (unsigned char)rand(), rnd[1] = (unsigned char)rand();
        q->id = (uint16_t)(rnd[0] << 8 | rnd[1]);
        if (!id_in_use(e, c, q->id))
            break;
    }
    if (i == 64) {
        q->pend_err = MPIC_E_INTERNAL;
        snprintf(q->pend_detail, sizeof q->pend_detail,
                 "DNS problem: no free message ID on the resolver connection (%.200s)", e->label);
        return;
    }
    q->msg[2] = rnd[0];
    q->msg[3] = rnd[1];
    q->conn = c;
    c->n_q++;
    q->sent_ms = now_ms();
    if (!c->ready) {
        q->unsent = 1; /* written once the handshake is done */
        return;
    }
    if (bufferevent_write(c->bev, q->msg, q->len + 2) != 0) {
        q->pend_err = MPIC_E_INTERNAL;
        snprintf(q->pend_detail, sizeof q->pend_detail,
                 "DNS problem: cannot write to the resolver connection (%.200s)", e->label);
    }
}

/* ---- DoH ----------------------------------------------------------------- */

static const char *header(const struct mpic_http_result *r, const char *name)
{
    size_t i;
    for (i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static void on_doh_done(struct mpic_http_req *req, void *arg)
{
    struct mpic_dns_enc_query *q = arg;
    struct mpic_dns_enc *e = q->e;
    const struct mpic_http_result *r = mpic_http_result(req);
    const char *ct;

    q->hreq = NULL; /* freed below, after the result is read */
    if (!r->reused && r->err != MPIC_E_CONNECT)
        e->n_conns++;
    if (r->err != MPIC_OK) {
        deliver_fail(q, r->err, "DNS problem: DoH request failed: %s (%.200s)", r->detail,
                     e->label);
    } else if (r->status != 200) {
        deliver_fail(q, MPIC_E_DNS, "DNS problem: the DoH server answered HTTP %ld (%.200s)",
                     r->status, e->label);
    } else if (!(ct = header(r, "content-type")) ||
               strncasecmp(ct, "application/dns-message", 23) != 0) {
        deliver_fail(q, MPIC_E_PROTOCOL,
                     "DNS problem: the DoH answer is not application/dns-message (%.200s)",
                     e->label);
    } else if (r->exceeded) {
        deliver_fail(q, MPIC_E_DNS, "DNS problem: the DoH answer is longer than %d bytes (%.200s)",
                     MAX_MSG, e->label);
    } else if (r->body_len < 12 ||
               !answer_matches(q, (const unsigned char *)r->body, r->body_len)) {
        deliver_fail(q, MPIC_E_DNS,
                     "DNS problem: the resolver's answer does not match the question (%.200s)",
                     e->label);
    } else {
        memcpy(e->rbuf, r->body, r->body_len);
        deliver(q, MPIC_OK, NULL, e->rbuf, r->body_len);
    }
    mpic_http_req_free(req);
}

static void doh_send(struct mpic_dns_enc_query *q)
{
    struct mpic_dns_enc *e = q->e;
    static const char *const headers[] = {"Content-Type: application/dns-message",
                                          "Accept: application/dns-message"};
    struct mpic_http_opts o;
    char errbuf[200];
    int rc;

    memset(&o, 0, sizeof o);
    o.url = e->url;
    o.connect_ip = e->connect_ip[0] ? e->connect_ip : NULL;
    o.system_resolver = 1; /* a name without '#IP': the CA's infrastructure */
    o.headers = headers;
    o.n_headers = 2;
    o.method = "POST";
    o.body = (const char *)q->msg + 2;
    o.body_len = q->len;
    o.connect_timeout_ms = e->connect_timeout_ms;
    o.timeout_ms = q->timeout_ms + 1000; /* our own timer fires first */
    o.max_bytes = MAX_MSG;
    o.verify_tls = 1;
    o.ca_file = e->ca_file;
    o.keepalive = 1;
    o.http2 = 1;
    o.allow_reserved = 1; /* a resolver, not a target */
    if (e->interface)
        o.interface = e->interface;
    else
        o.source_ip = e->source_ip;
    q->msg[2] = q->msg[3] = 0; /* RFC 8484 4.1: ID 0, cache friendly */
    q->id = 0;
    q->sent_ms = now_ms();
    rc = mpic_http_start(e->http, &o, on_doh_done, q, &q->hreq, errbuf, sizeof errbuf);
    if (rc < 0) {
        q->hreq = NULL;
        q->pend_err = MPIC_E_INTERNAL;
        snprintf(q->pend_detail, sizeof q->pend_detail,
                 "DNS problem: DoH request refused: %s (%.200s)",
                 errbuf[0] ? errbuf : "out of memory", e->label);
    }
}

/* ---- query API ------------------------------------------------------------- */

static void on_query_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_dns_enc_query *q = arg;
    struct dot_conn *c = q->conn;

    if (q->pend_err) {
        deliver_fail(q, q->pend_err, "%s", q->pend_detail);
        return;
    }
    /* nothing heard on the connection since this query went out: retire
     * it, so that the next query does not wait on a dead connection */
    if (c && !c->retired && c->last_read_ms < q->sent_ms)
        c->retired = 1;
    deliver_fail(q, MPIC_E_TIMEOUT,
                 "DNS problem: no answer from the resolver within %d ms (%.200s)", q->timeout_ms,
                 q->e->label);
}

int mpic_dns_enc_query_start(struct mpic_dns_enc *e, const unsigned char *query, size_t len,
                             int timeout_ms, mpic_dns_enc_cb cb, void *arg,
                             struct mpic_dns_enc_query **out)
{
    struct mpic_dns_enc_query *q;
    struct timeval tv;

    *out = NULL;
    if (!e || !query || len < 12 || len > 512 || timeout_ms <= 0 || !cb)
        return -1;
    q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    q->timer = evtimer_new(e->base, on_query_timer, q);
    if (!q->timer) {
        free(q);
        return -1;
    }
    q->e = e;
    q->cb = cb;
    q->arg = arg;
    q->len = len;
    q->timeout_ms = timeout_ms;
    q->msg[0] = (unsigned char)(len >> 8);
    q->msg[1] = (unsigned char)len;
    memcpy(q->msg + 2, query, len);
    q->next = e->queries;
    if (e->queries)
        e->queries->prev = q;
    e->queries = q;
    if (e->kind == MPIC_DNS_ENC_DOT)
        dot_send(q);
    else
        doh_send(q);
    if (q->pend_err) {
        tv.tv_sec = 0; /* report from the loop */
        tv.tv_usec = 0;
    } else {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
    }
    evtimer_add(q->timer, &tv);
    *out = q;
    return 0;
}

void mpic_dns_enc_query_cancel(struct mpic_dns_enc_query *q)
{
    if (q)
        query_free(q);
}

/* ---- resolver ------------------------------------------------------------ */

static int parse_port(const char *s, int *port)
{
    char *end;
    long v;
    if (!*s || strspn(s, "0123456789") != strlen(s))
        return -1;
    v = strtol(s, &end, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int valid_host_name(const char *s)
{
    size_t n = strlen(s), label = 0, i;
    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

/* "tls://IP[:PORT][#NAME]" / "tls://[IPv6][:PORT][#NAME]" */
static int parse_dot(struct mpic_dns_enc *e, const char *entry, char *err, size_t errlen)
{
    char buf[MAX_ENTRY + 1], *hash, *host, *port_s = NULL;
    struct mpic_addr a;
    int port = DOT_DEFAULT_PORT;

    snprintf(buf, sizeof buf, "%s", entry + 6);
    hash = strchr(buf, '#');
    if (hash) {
        *hash++ = '\0';
        if (!valid_host_name(hash)) {
            set_err(err, errlen, "\"%s\": the name after '#' is not a host name", entry);
            return -1;
        }
    }
    host = buf;
    if (host[0] == '[') {
        char *close = strchr(host, ']');
        if (!close) {
            set_err(err, errlen, "\"%s\": missing ']'", entry);
            return -1;
        }
        *close = '\0';
        host++;
        if (close[1] == ':')
            port_s = close + 2;
        else if (close[1]) {
            set_err(err, errlen, "\"%s\": expected tls://[IPv6]:PORT", entry);
            return -1;
        }
    } else if ((port_s = strchr(host, ':'))) {
        *port_s++ = '\0';
    }
    if (port_s && parse_port(port_s, &port) < 0) {
        set_err(err, errlen, "\"%s\": the port is not a number 1-65535", entry);
        return -1;
    }
    if (mpic_netaddr_parse(host, &a) != 0 || (buf[0] == '[') != (a.family == 6)) {
        set_err(err, errlen,
                "\"%s\": expected tls://IP[:PORT][#NAME] (the resolver's address, the name its "
                "certificate carries)",
                entry);
        return -1;
    }
    memset(&e->sa, 0, sizeof e->sa);
    if (a.family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&e->sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        memcpy(&s4->sin_addr, a.bytes, 4);
        e->salen = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&e->sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        memcpy(&s6->sin6_addr, a.bytes, 16);
        e->salen = sizeof *s6;
    }
    if (hash) {
        snprintf(e->verify_name, sizeof e->verify_name, "%s", hash);
    } else {
        mpic_netaddr_format(&a, e->verify_name, sizeof e->verify_name);
        e->verify_is_ip = 1;
    }
    return 0;
}

/* "https://HOST[:PORT]/PATH[#IP]" */
static int parse_doh(struct mpic_dns_enc *e, const char *entry, char *err, size_t errlen)
{
    char buf[MAX_ENTRY + 1], *hash;
    struct mpic_url u;
    struct mpic_addr a;
    int rc;

    snprintf(buf, sizeof buf, "%s", entry);
    hash = strchr(buf, '#');
    if (hash) {
        *hash++ = '\0';
        if (mpic_netaddr_parse(hash, &a) != 0) {
            set_err(err, errlen,
                    "\"%s\": the part after '#' is not an IP address (the address to "
                    "connect to)",
                    entry);
            return -1;
        }
        mpic_netaddr_format(&a, e->connect_ip, sizeof e->connect_ip);
    }
    memset(&u, 0, sizeof u);
    rc = mpic_http_url_parse(NULL, buf, &u);
    if (rc != MPIC_URL_OK || !u.scheme || strcmp(u.scheme, "https") != 0 || !u.host || !*u.host) {
        mpic_http_url_clear(&u);
        set_err(err, errlen, "\"%s\": expected https://HOST[:PORT]/PATH[#IP]", entry);
        return -1;
    }
    if (u.query || !u.path || strcmp(u.path, "/") == 0) {
        mpic_http_url_clear(&u);
        set_err(err, errlen,
                "\"%s\": a DoH URL names the query path (e.g. /dns-query) and no "
                "query string",
                entry);
        return -1;
    }
    e->url = strdup(buf);
    mpic_http_url_clear(&u);
    if (!e->url) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int mpic_dns_enc_new(struct event_base *base, const struct mpic_dns_enc_config *cfg,
                     struct mpic_dns_enc **out, char *err, size_t errlen)
{
    struct mpic_dns_enc *e;
    int kind;

    *out = NULL;
    if (!base || !cfg || !cfg->entry || cfg->connect_timeout_ms <= 0) {
        set_err(err, errlen, "bad encrypted resolver configuration");
        return -1;
    }
    kind = mpic_dns_enc_scheme(cfg->entry);
    if (kind == MPIC_DNS_ENC_NONE || strlen(cfg->entry) > MAX_ENTRY) {
        set_err(err, errlen, "\"%.80s\": not a tls:// or https:// resolver (at most %d bytes)",
                cfg->entry, MAX_ENTRY);
        return -1;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    e->base = base;
    e->kind = kind;
    e->connect_timeout_ms = cfg->connect_timeout_ms;
    snprintf(e->label, sizeof e->label, "%s", cfg->entry);
    e->rbuf = malloc(MAX_MSG + 1);
    if (!e->rbuf) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    if ((kind == MPIC_DNS_ENC_DOT ? parse_dot(e, cfg->entry, err, errlen)
                                  : parse_doh(e, cfg->entry, err, errlen)) < 0)
        goto fail;
    if (cfg->interface && *cfg->interface) {
        if (strlen(cfg->interface) >= 32 || !(e->interface = strdup(cfg->interface))) {
            set_err(err, errlen, "bad interface name");
            goto fail;
        }
    } else {
        int v6 = kind == MPIC_DNS_ENC_DOT ? e->sa.ss_family == AF_INET6
                                          : strchr(e->connect_ip, ':') != NULL;
        const char *src = v6 ? cfg->source_ipv6 : cfg->source_ipv4;
        if (src && !(e->source_ip = strdup(src))) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    }
    /* the CA file is read now (an unreadable one is a configuration error)
     * and, for DoT, kept in the connection context */
    e->ctx = SSL_CTX_new(TLS_client_method());
    if (!e->ctx || !SSL_CTX_set_min_proto_version(e->ctx, TLS1_2_VERSION)) {
        set_err(err, errlen, "TLS context: out of memory");
        goto fail;
    }
    SSL_CTX_set_verify(e->ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->ca_file) {
        if (SSL_CTX_load_verify_locations(e->ctx, cfg->ca_file, NULL) != 1) {
            set_err(err, errlen, "cannot load the resolver CA file %s", cfg->ca_file);
            ERR_clear_error();
            goto fail;
        }
        if (!(e->ca_file = strdup(cfg->ca_file))) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(e->ctx) != 1) {
        set_err(err, errlen, "cannot load the system trust store");
        ERR_clear_error();
        goto fail;
    }
    if (kind == MPIC_DNS_ENC_DOH) {
        SSL_CTX_free(e->ctx);
        e->ctx = NULL;
        if (mpic_http_new(base, 0, &e->http) != 0) {
            set_err(err, errlen, "cannot create the HTTP context");
            goto fail;
        }
    }
    *out = e;
    return 0;
fail:
    mpic_dns_enc_free(e);
    return -1;
}

void mpic_dns_enc_free(struct mpic_dns_enc *e)
{
    char detail[MAX_ENTRY + 64];
    if (!e)
        return;
    snprintf(detail, sizeof detail, "DNS problem: resolver closed while waiting for %s", e->label);
    /* bounded: every pass removes one query, and callbacks may not start
     * new ones on a resolver being freed (the owner is freeing it) */
    while (e->queries)
        deliver(e->queries, MPIC_E_CANCELLED, detail, NULL, 0);
    while (e->conns)
        conn_free(e->conns);
    if (e->http)
        mpic_http_free(e->http);
    SSL_CTX_free(e->ctx);
    free(e->rbuf);
    free(e->url);
    free(e->ca_file);
    free(e->interface);
    free(e->source_ip);
    free(e);
}
