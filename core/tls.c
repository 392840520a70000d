/*
 * tls.c: the TLS-ALPN probe (RFC 8737 / RFC 8738) on our own sockets.
 *
 * Provides mpic_tls_probe_start/cancel and mpic_tls_reverse_name (tls.h).
 * Uses a non-blocking TCP socket watched by libevent events (EV_WRITE for
 * connect completion, then EV_READ/EV_WRITE as SSL_connect asks), two timer
 * events (connect and total timeouts), and one shared OpenSSL client
 * SSL_CTX: TLS 1.2 minimum, no verification, ALPN set per connection.
 * Failures are mapped onto the errors.h vocabulary with an "ip: " prefixed
 * detail; nothing here knows about Lua. A destination in a reserved block
 * (netaddr.c) is refused before the socket exists unless the caller's
 * options allow it (labs).
 */
#include "tls.h"

#include "errors.h"
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000

enum phase { PH_CONNECT, PH_HANDSHAKE };

struct mpic_tls_probe {
    struct event_base *base;
    int fd;
    SSL *ssl;
    struct event *ev_read, *ev_write;
    struct event *ev_total, *ev_connect, *ev_done;
    mpic_tls_cb cb;
    void *arg;
    enum phase phase;
    char ip[INET6_ADDRSTRLEN];
    int connect_timeout_ms, timeout_ms;
    uint64_t start_ms;
    unsigned char hdr[5]; /* first record header received */
    int hdr_seen;
    struct mpic_tls_result res;
};

static SSL_CTX *g_ctx;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static SSL_CTX *client_ctx(void)
{
    if (g_ctx)
        return g_ctx;
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c)
        return NULL;
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    g_ctx = c;
    return g_ctx;
}

void mpic_tls_shutdown(void)
{
    SSL_CTX_free(g_ctx);
    g_ctx = NULL;
}

int mpic_tls_reverse_name(const char *ip, char *out, size_t outlen)
{
    struct mpic_addr addr;
    const unsigned char *a = addr.bytes;
    static const char hex[] = "0123456789abcdef";
    int n;

    if (!ip || !out || mpic_netaddr_parse(ip, &addr) != 0)
        return -1;
    if (addr.family == 4) {
        n = snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
        return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
    }
    if (outlen < 32 * 2 + sizeof "ip6.arpa")
        return -1;
    char *p = out;
    for (int i = 15; i >= 0; i--) {
        *p++ = hex[a[i] & 0xf];
        *p++ = '.';
        *p++ = hex[a[i] >> 4];
        *p++ = '.';
    }
    memcpy(p, "ip6.arpa", sizeof "ip6.arpa");
    return 0;
}

/* Tear down the I/O: SSL object, socket, events. Safe to call twice. */
static void release_io(struct mpic_tls_probe *p)
{
    if (p->ev_read)
        event_free(p->ev_read);
    if (p->ev_write)
        event_free(p->ev_write);
    if (p->ev_total)
        event_free(p->ev_total);
    if (p->ev_connect)
        event_free(p->ev_connect);
    if (p->ev_done)
        event_free(p->ev_done);
    p->ev_read = p->ev_write = p->ev_total = p->ev_connect = p->ev_done = NULL;
    if (p->ssl)
        SSL_free(p->ssl);
    p->ssl = NULL;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static void probe_free(struct mpic_tls_probe *p)
{
    release_io(p);
    free(p->res.cert_der);
    free(p);
}

/* Deliver the result and free the probe. */
static void finish(struct mpic_tls_probe *p)
{
    p->res.elapsed_ms = now_ms() - p->start_ms;
    release_io(p);
    p->cb(&p->res, p->arg);
    probe_free(p);
}

static void set_fail(struct mpic_tls_probe *p, enum mpic_err kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fail(struct mpic_tls_probe *p, enum mpic_err kind, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(p->res.detail, sizeof p->res.detail, "%s: ", p->ip);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof p->res.detail)
        vsnprintf(p->res.detail + n, sizeof p->res.detail - (size_t)n, fmt, ap);
    va_end(ap);
    p->res.err = kind;
}

static void fail(struct mpic_tls_probe *p, enum mpic_err kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct mpic_tls_probe *p, enum mpic_err kind, const char *fmt, ...)
{
    va_list ap;
    char buf[200];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    set_fail(p, kind, "%s", buf);
    ERR_clear_error();
    finish(p);
}

static void on_done(evutil_socket_t fd, short what, void *arg) { finish(arg); }

static int looks_like_http(const unsigned char *h, int n)
{
    return n >= 4 && (memcmp(h, "HTTP", 4) == 0 || memcmp(h, "<htm", 4) == 0 ||
                      memcmp(h, "<!DO", 4) == 0 || memcmp(h, "<HTM", 4) == 0);
}

static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    struct mpic_tls_probe *p = arg;
    if (!write_p && content_type == SSL3_RT_HEADER && !p->hdr_seen && len >= 5) {
        memcpy(p->hdr, buf, 5);
        p->hdr_seen = 1;
    }
}

/* Map an SSL_ERROR_SSL failure onto tls / protocol. */
static void fail_ssl(struct mpic_tls_probe *p)
{
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    const char *why = ERR_reason_error_string(e);

    if (p->hdr_seen && looks_like_http(p->hdr, 5)) {
        fail(p, MPIC_E_PROTOCOL, "Server only speaks HTTP, not TLS");
        return;
    }
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET &&
        reason < SSL_AD_REASON_OFFSET + 256) {
        int alert = reason - SSL_AD_REASON_OFFSET;
        if (alert == SSL_AD_PROTOCOL_VERSION)
            fail(p, MPIC_E_TLS, "protocol version not supported (alert from server)");
        else
            fail(p, MPIC_E_TLS, "TLS alert from server: %s", SSL_alert_desc_string_long(alert));
        return;
    }
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_VERSION_TOO_LOW ||
         reason == SSL_R_WRONG_SSL_VERSION || reason == SSL_R_NO_PROTOCOLS_AVAILABLE)) {
        fail(p, MPIC_E_TLS, "protocol version not supported");
        return;
    }
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG)) {
        fail(p, MPIC_E_TLS, "not a TLS server (%s)", why ? why : "bad record");
        return;
    }
    fail(p, MPIC_E_TLS, "TLS handshake failed: %s", why ? why : "unknown error");
}

static void handshake_done(struct mpic_tls_probe *p)
{
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    X509 *cert;

    SSL_get0_alpn_selected(p->ssl, &alpn, &alpn_len);
    if (alpn && alpn_len > 0 && alpn_len < sizeof p->res.alpn) {
        memcpy(p->res.alpn, alpn, alpn_len);
        p->res.alpn[alpn_len] = '\0';
        p->res.has_alpn = 1;
    }
    snprintf(p->res.version, sizeof p->res.version, "%s", SSL_get_version(p->ssl));
    cert = SSL_get1_peer_certificate(p->ssl);
    if (cert) {
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);
        if (n > 0) {
            p->res.cert_der = malloc((size_t)n);
            if (p->res.cert_der) {
                memcpy(p->res.cert_der, der, (size_t)n);
                p->res.cert_der_len = (size_t)n;
            }
        }
        OPENSSL_free(der);
        X509_free(cert);
    }
    /* best effort close_notify; never wait for the peer's */
    SSL_set_quiet_shutdown(p->ssl, 0);
    SSL_shutdown(p->ssl);
    if (!p->res.cert_der) {
        fail(p, MPIC_E_TLS, "server sent no certificate");
        return;
    }
    ERR_clear_error();
    finish(p);
}

static void handshake_step(struct mpic_tls_probe *p)
{
    int r, e;

    ERR_clear_error();
    errno = 0;
    r = SSL_connect(p->ssl);
    if (r == 1) {
        handshake_done(p);
        return;
    }
    e = SSL_get_error(p->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ: event_add(p->ev_read, NULL); return;
    case SSL_ERROR_WANT_WRITE: event_add(p->ev_write, NULL); return;
    case SSL_ERROR_SSL: fail_ssl(p); return;
    case SSL_ERROR_ZERO_RETURN:
        fail(p, MPIC_E_TLS, "connection closed by server during TLS handshake");
        return;
    default:
        if (errno)
            fail(p, MPIC_E_TLS, "TLS handshake failed: %s", strerror(errno));
        else
            fail(p, MPIC_E_TLS, "connection closed by server during TLS handshake");
        return;
    }
}

static void start_handshake(struct mpic_tls_probe *p)
{
    p->phase = PH_HANDSHAKE;
    if (p->ev_connect)
        event_del(p->ev_connect);
    handshake_step(p);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_tls_probe *p = arg;
    if (p->phase == PH_CONNECT) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            fail(p, MPIC_E_CONNECT, "%s", strerror(err));
            return;
        }
        start_handshake(p);
        return;
    }
    handshake_step(p);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_tls_probe *p = arg;
    if (p->phase == PH_CONNECT)
        fail(p, MPIC_E_TIMEOUT, "timeout during connect (no answer within %d ms)",
             p->ev_connect ? p->connect_timeout_ms : p->timeout_ms);
    else
        fail(p, MPIC_E_TIMEOUT, "timeout during TLS handshake (after %d ms)", p->timeout_ms);
}

static void add_timer(struct event *ev, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(ev, &tv);
}

/* Build the SSL object for a connected socket; returns 0 or -1. */
static int setup_ssl(struct mpic_tls_probe *p, const struct mpic_tls_opts *o)
{
    const char *alpn = (o && o->alpn) ? o->alpn : "acme-tls/1";
    size_t alen = strlen(alpn);
    unsigned char wire[256];
    SSL_CTX *ctx = client_ctx();

    if (!ctx || alen == 0 || alen > 255)
        return -1;
    p->ssl = SSL_new(ctx);
    if (!p->ssl || !SSL_set_fd(p->ssl, p->fd))
        return -1;
    wire[0] = (unsigned char)alen;
    memcpy(wire + 1, alpn, alen);
    if (SSL_set_alpn_protos(p->ssl, wire, (unsigned)alen + 1) != 0) /* 0 is success */
        return -1;
    if (o && o->sni && o->sni[0] && !SSL_set_tlsext_host_name(p->ssl, o->sni))
        return -1;
    SSL_set_msg_callback(p->ssl, msg_cb);
    SSL_set_msg_callback_arg(p->ssl, p);
    SSL_set_connect_state(p->ssl);
    return 0;
}

/* Open, bind and connect the socket. Returns 0 (connect started or done),
 * -1 for a resource failure; network failures are recorded in p->res. */
static int open_socket(struct mpic_tls_probe *p, const struct sockaddr *sa, socklen_t salen,
                       const struct mpic_tls_opts *o)
{
    p->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        set_fail(p, MPIC_E_CONNECT, "socket: %s", strerror(errno));
        return 0;
    }
    if (o && o->interface && o->interface[0] &&
        setsockopt(p->fd, SOL_SOCKET, SO_BINDTODEVICE, o->interface,
                   (socklen_t)strlen(o->interface)) < 0) {
        set_fail(p, MPIC_E_CONNECT, "bind to interface %s: %s", o->interface, strerror(errno));
        return 0;
    }
    if (o && o->source_ip && o->source_ip[0]) {
        struct sockaddr_storage src;
        unsigned int srclen;
        if (mpic_netaddr_sockaddr(o->source_ip, 0, &src, &srclen) != 0 ||
            src.ss_family != sa->sa_family) {
            set_fail(p, MPIC_E_CONNECT, "source address %s is not %s", o->source_ip,
                     sa->sa_family == AF_INET ? "IPv4" : "IPv6");
            return 0;
        }
        if (bind(p->fd, (struct sockaddr *)&src, srclen) < 0) {
            set_fail(p, MPIC_E_CONNECT, "bind %s: %s", o->source_ip, strerror(errno));
            return 0;
        }
    }
    if (setup_ssl(p, o) < 0)
        return -1;
    if (connect(p->fd, sa, salen) == 0) {
        p->phase = PH_HANDSHAKE;
        return 0;
    }
    if (errno != EINPROGRESS) {
        set_fail(p, MPIC_E_CONNECT, "%s", strerror(errno));
        return 0;
    }
    return 0;
}

int mpic_tls_probe_start(struct event_base *base, const char *ip, int port,
                         const struct mpic_tls_opts *o, mpic_tls_cb cb, void *arg,
                         struct mpic_tls_probe **out)
{
    struct sockaddr_storage ss;
    socklen_t salen;
    struct mpic_tls_probe *p = NULL;
    int rc = -1;

    memset(&ss, 0, sizeof ss);
    if (!base || !ip || !cb || !out || port <= 0 || port > 65535)
        return -1;
    unsigned int sslen;
    if (mpic_netaddr_sockaddr(ip, port, &ss, &sslen) != 0)
        return -1;
    salen = (socklen_t)sslen;
    p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->fd = -1;
    p->base = base;
    p->cb = cb;
    p->arg = arg;
    p->phase = PH_CONNECT;
    p->start_ms = now_ms();
    p->timeout_ms = (o && o->timeout_ms > 0) ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    p->connect_timeout_ms =
        (o && o->connect_timeout_ms > 0) ? o->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
    inet_ntop(ss.ss_family,
              ss.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
                                      : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
              p->ip, sizeof p->ip);

    p->ev_done = event_new(base, -1, 0, on_done, p);
    p->ev_total = evtimer_new(base, on_timeout, p);
    if (!p->ev_done || !p->ev_total)
        goto out;
    const char *reserved = NULL;
    if (!(o && o->allow_reserved)) {
        char text[64];
        reserved = mpic_netaddr_sockaddr_reserved((struct sockaddr *)&ss, text, sizeof text);
        if (reserved)
            set_fail(p, MPIC_E_RESERVED_ADDRESS,
                     "in a reserved address block: %s (refused at connect)", reserved);
    }
    if (!reserved && open_socket(p, (struct sockaddr *)&ss, salen, o) < 0)
        goto out;
    if (p->res.err) { /* failed before any I/O: report from the loop */
        event_active(p->ev_done, EV_TIMEOUT, 0);
        *out = p;
        return 0;
    }
    p->ev_read = event_new(base, p->fd, EV_READ, on_io, p);
    p->ev_write = event_new(base, p->fd, EV_WRITE, on_io, p);
    if (!p->ev_read || !p->ev_write)
        goto out;
    add_timer(p->ev_total, p->timeout_ms);
    if (p->phase == PH_CONNECT) {
        if (p->connect_timeout_ms < p->timeout_ms) {
            p->ev_connect = evtimer_new(base, on_timeout, p);
            if (!p->ev_connect)
                goto out;
            add_timer(p->ev_connect, p->connect_timeout_ms);
        }
        event_add(p->ev_write, NULL);
    } else {
        event_add(p->ev_write, NULL); /* connected at once: handshake from the loop */
    }
    *out = p;
    rc = 0;
out:
    if (rc < 0 && p)
        probe_free(p);
    ERR_clear_error();
    return rc;
}

void mpic_tls_probe_cancel(struct mpic_tls_probe *p)
{
    if (p)
        probe_free(p);
}
