/*
 * http.c: single-hop HTTP(S) GET requests for the probes. Provides the
 * mpic_http_* API of http.h: a per-loop libcurl multi handle driven through
 * CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION by libevent events, strict
 * request options (HTTP/1.1 only, HTTP/2 for the DoH transport alone, no
 * proxy, no cookies, no automatic redirects, http/https only, TLS >= 1.2, connection pinned to a caller
 * supplied address so curl never resolves a name), the reserved-address
 * guard at connect time (CURLOPT_OPENSOCKETFUNCTION sees the address curl is
 * about to connect to, CURLOPT_PREREQFUNCTION the address of the connection
 * a request is about to use, kept-alive ones included), a hard body cap, and a mapping of curl outcomes onto
 * the error kinds of errors.h. Uses libcurl, libevent, netaddr.c and libc;
 * knows nothing of Lua.
 */
#include "http.h"
#include "netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HTTP_DEFAULT_TIMEOUT_MS 10000L
#define HTTP_MAX_CACHED_CONNECTIONS 65536L
#define HTTP_DEFAULT_MAX_BYTES (1024u * 1024u)
#define HTTP_MAX_HEADER_BYTES (64u * 1024u)
#define HTTP_MAX_HEADERS 256u

struct mpic_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct mpic_http_req *reqs; /* doubly linked list of live requests */
    size_t active;
};

struct http_sock {
    struct mpic_http *h;
    curl_socket_t fd;
    struct event *ev;
};

struct mpic_http_req {
    struct mpic_http *h;
    CURL *easy;
    struct curl_slist *hdrs;
    struct curl_slist *connect_to;
    mpic_http_cb cb;
    void *arg;
    struct mpic_http_req *prev, *next;
    size_t max_bytes;
    size_t body_cap; /* allocated size of res.body */
    size_t header_bytes;
    int header_overflow;
    int finished;
    int keepalive; /* the connection may serve later requests */
    int abandoned; /* the owner left: free on completion, no callback */
    char fallback_ip[64];
    long fallback_port;
    int allow_reserved;
    char refused[200]; /* why the guard refused a connection, "" otherwise */
    int opened;        /* sockets the guard let curl open */
    char errbuf[CURL_ERROR_SIZE];
    struct mpic_http_result res;
};

/* ---- result helpers ---------------------------------------------------- */

static void clear_headers(struct mpic_http_result *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->n_headers = 0;
    r->location = NULL;
    free(r->reason);
    r->reason = NULL;
}

static char *dup_trimmed(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- curl data callbacks ------------------------------------------------ */

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    struct mpic_http_req *q = ud;
    struct mpic_http_result *r = &q->res;
    size_t len = size * n;

    q->header_bytes += len;
    if (q->header_bytes > HTTP_MAX_HEADER_BYTES) {
        q->header_overflow = 1;
        return 0;
    }
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A new status line (after 1xx, or the first): start afresh. */
        clear_headers(r);
        const char *sp = memchr(buf, ' ', len);
        const char *end = buf + len;
        if (sp) {
            sp++;
            const char *sp2 = memchr(sp, ' ', (size_t)(end - sp));
            r->reason = sp2 ? dup_trimmed(sp2 + 1, (size_t)(end - sp2 - 1)) : dup_trimmed("", 0);
        } else {
            r->reason = dup_trimmed("", 0);
        }
        return r->reason ? len : 0;
    }
    if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n'))
        return len; /* end of headers */
    if ((buf[0] == ' ' || buf[0] == '\t') && r->n_headers > 0) {
        /* obsolete line folding: append to the previous value */
        struct mpic_http_header *last = &r->headers[r->n_headers - 1];
        char *more = dup_trimmed(buf, len);
        if (!more)
            return 0;
        size_t a = strlen(last->value), b = strlen(more);
        char *v = realloc(last->value, a + b + 2);
        if (!v) {
            free(more);
            return 0;
        }
        v[a] = ' ';
        memcpy(v + a + 1, more, b + 1);
        last->value = v;
        free(more);
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon || colon == buf)
        return len; /* not a header line: ignore */
    if (r->n_headers >= HTTP_MAX_HEADERS) {
        q->header_overflow = 1;
        return 0;
    }
    struct mpic_http_header *nh = realloc(r->headers, (r->n_headers + 1) * sizeof *nh);
    if (!nh)
        return 0;
    r->headers = nh;
    char *name = dup_trimmed(buf, (size_t)(colon - buf));
    char *value = dup_trimmed(colon + 1, (size_t)(buf + len - colon - 1));
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    nh[r->n_headers].name = name;
    nh[r->n_headers].value = value;
    r->n_headers++;
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    struct mpic_http_req *q = ud;
    struct mpic_http_result *r = &q->res;
    size_t len = size * n, take = len;

    if (r->body_len + len > q->max_bytes) {
        take = q->max_bytes - r->body_len;
        r->exceeded = 1;
    }
    if (r->body_len + take + 1 > q->body_cap) {
        size_t cap = q->body_cap ? q->body_cap : 1024;
        while (cap < r->body_len + take + 1)
            cap *= 2;
        if (cap > q->max_bytes + 1)
            cap = q->max_bytes + 1;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        q->body_cap = cap;
    }
    memcpy(r->body + r->body_len, buf, take);
    r->body_len += take;
    r->body[r->body_len] = '\0';
    return r->exceeded ? 0 : len; /* 0 aborts the transfer at the cap */
}

/* ---- completion ----------------------------------------------------------- */

static void set_fail(struct mpic_http_result *r, enum mpic_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fail(struct mpic_http_result *r, enum mpic_err e, const char *fmt, ...)
{
    va_list ap;
    r->err = e;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

static void fill_result(struct mpic_http_req *q, CURLcode rc)
{
    struct mpic_http_result *r = &q->res;
    CURL *e = q->easy;
    char *ip = NULL;
    long port = 0, osErr = 0, httpver = 0;
    curl_off_t total = 0, connected = 0;

    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &osErr);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &httpver);
    long connects = 0;
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    r->reused = connects == 0;
    snprintf(r->ip, sizeof r->ip, "%s", ip && *ip ? ip : q->fallback_ip);
    if (port <= 0)
        port = q->fallback_port;
    r->port = port;
    r->elapsed_ms = (long)(total / 1000);
    r->http_version = httpver == CURL_HTTP_VERSION_1_0   ? "1.0"
                      : httpver == CURL_HTTP_VERSION_1_1 ? "1.1"
                      : httpver == CURL_HTTP_VERSION_2_0 ? "2"
                                                         : "";
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, "location") == 0) {
            r->location = r->headers[i].value;
            break;
        }
    const char *msg = q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc);
    const char *where = r->ip;
    char ep[96];
    if (port > 0)
        snprintf(ep, sizeof ep, strchr(where, ':') ? "[%s]:%ld" : "%s:%ld", where, port);
    else
        snprintf(ep, sizeof ep, "%s", where);

    if (q->refused[0] &&
        ((rc == CURLE_COULDNT_CONNECT && q->opened == 0) || rc == CURLE_ABORTED_BY_CALLBACK)) {
        set_fail(r, MPIC_E_RESERVED_ADDRESS, "%s", q->refused);
        return;
    }
    switch (rc) {
    case CURLE_OK: r->err = MPIC_OK; break;
    case CURLE_WRITE_ERROR:
        if (r->exceeded)
            r->err = MPIC_OK;
        else if (q->header_overflow)
            set_fail(r, MPIC_E_TOO_LARGE, "Response headers too large (%s)", ep);
        else
            set_fail(r, MPIC_E_INTERNAL, "%s", msg);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        if (connected > 0)
            set_fail(r, MPIC_E_TIMEOUT,
                     "Timeout after connect (your server may be slow or overloaded) (%s)", ep);
        else
            set_fail(r, MPIC_E_TIMEOUT, "Timeout during connect (likely firewall problem) (%s)",
                     ep);
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (osErr)
            set_fail(r, MPIC_E_CONNECT, "connect: %s (%s)", strerror((int)osErr), ep);
        else
            set_fail(r, MPIC_E_CONNECT, "connect: %s (%s)", msg, ep);
        break;
    case CURLE_INTERFACE_FAILED: set_fail(r, MPIC_E_CONNECT, "bind: %s", msg); break;
    case CURLE_GOT_NOTHING:
        set_fail(r, MPIC_E_CONNECT, "connect: Empty reply from server (%s)", ep);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        if (strstr(msg, "wrong version number") || strstr(msg, "packet length too long") ||
            strstr(msg, "record layer failure"))
            set_fail(r, MPIC_E_PROTOCOL, "Server only speaks HTTP, not TLS (%s)", ep);
        else
            set_fail(r, MPIC_E_TLS, "tls: %s (%s)", msg, ep);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED: set_fail(r, MPIC_E_TLS, "tls: %s (%s)", msg, ep); break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        set_fail(r, MPIC_E_PROTOCOL, "Malformed HTTP response: %s (%s)", msg, ep);
        break;
    default: set_fail(r, MPIC_E_CONNECT, "Error getting validation data: %s (%s)", msg, ep); break;
    }
    if (r->err != MPIC_OK) {
        /* no partial response is reported on failure */
        clear_headers(r);
        r->status = 0;
    }
}

static void unlink_req(struct mpic_http_req *q)
{
    struct mpic_http *h = q->h;
    if (q->prev)
        q->prev->next = q->next;
    else if (h->reqs == q)
        h->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void release_easy(struct mpic_http_req *q)
{
    if (q->easy) {
        curl_multi_remove_handle(q->h->multi, q->easy);
        curl_easy_cleanup(q->easy);
        q->easy = NULL;
        q->h->active--;
    }
    curl_slist_free_all(q->hdrs);
    curl_slist_free_all(q->connect_to);
    q->hdrs = q->connect_to = NULL;
}

static void check_done(struct mpic_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct mpic_http_req *q = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        if (!q || q->finished)
            continue;
        if (q->abandoned) {
            mpic_http_req_free(q);
            continue;
        }
        fill_result(q, rc);
        release_easy(q);
        unlink_req(q);
        q->finished = 1;
        q->cb(q, q->arg);
    }
}

/* ---- libevent glue -------------------------------------------------------- */

/* libcurl opens its sockets without close-on-exec: a child process (a shell
 * command run by a script) must not inherit a probe's connection. */
static int on_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return CURL_SOCKOPT_ERROR;
    return CURL_SOCKOPT_OK;
}

/* Every socket curl opens comes through here with the address it will
 * connect to: a name curl resolved, a CURLOPT_CONNECT_TO pin, an IP literal
 * of the URL alike. A reserved destination is refused before the socket
 * exists (curl then fails with CURLE_COULDNT_CONNECT; fill_result reports
 * the reason). */
static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct mpic_http_req *q = clientp;
    if (!q->allow_reserved) {
        char text[64];
        const char *why = mpic_netaddr_sockaddr_reserved(&a->addr, text, sizeof text);
        if (why) {
            snprintf(q->refused, sizeof q->refused,
                     "%s is in a reserved address block: %s (refused at connect)", text, why);
            return CURL_SOCKET_BAD;
        }
    }
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd != CURL_SOCKET_BAD)
        q->opened++;
    return fd;
}

/* Before each request is sent, on a new connection or a kept-alive one
 * (which did not pass through on_opensocket for this request): the same
 * check on the address the connection goes to. */
static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct mpic_http_req *q = clientp;
    struct mpic_addr a;
    const char *why;
    if (q->allow_reserved)
        return CURL_PREREQFUNC_OK;
    if (!primary_ip || mpic_netaddr_parse(primary_ip, &a) != 0)
        why = "[mpic]: Address not known";
    else
        why = mpic_netaddr_reserved(&a);
    if (!why)
        return CURL_PREREQFUNC_OK;
    snprintf(q->refused, sizeof q->refused,
             "%s is in a reserved address block: %s (refused at connect)",
             primary_ip ? primary_ip : "?", why);
    return CURL_PREREQFUNC_ABORT;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_http *h = arg;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct mpic_http *h = userp;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
    } else {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(h->timer, &tv);
    }
    return 0;
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_http *h = arg;
    int running, flags = 0;
    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct mpic_http *h = userp;
    struct http_sock *hs = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (hs) {
            if (hs->ev) /* NULL when re-arming it failed */
                event_free(hs->ev);
            free(hs);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (!hs) {
        hs = calloc(1, sizeof *hs);
        if (!hs)
            return -1;
        hs->h = h;
        hs->fd = s;
        curl_multi_assign(h->multi, s, hs);
    } else if (hs->ev) {
        event_free(hs->ev);
    }
    hs->ev = event_new(h->base, s, kind, on_sock, h);
    if (!hs->ev || event_add(hs->ev, NULL) != 0)
        return -1;
    return 0;
}

/* ---- public API ----------------------------------------------------------- */

int mpic_http_new(struct event_base *base, long max_host_connections, struct mpic_http **out)
{
    static int global_done;
    struct mpic_http *h = NULL;
    int rc = -ENOMEM;

    *out = NULL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -EIO;
        global_done = 1;
    }
    h = calloc(1, sizeof *h);
    if (!h)
        goto fail;
    h->base = base;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(base, on_timer, h);
    if (!h->multi || !h->timer)
        goto fail;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    /* HTTP/2 requests (http2 option) share a connection as streams */
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    mpic_http_set_max_host_connections(h, max_host_connections);
    /* curl sizes its connection cache by default from the number of
     * transfers in progress and closes the oldest connection beyond it: the
     * kept-alive agent connections were torn down and rebuilt (a TLS
     * handshake each) as that number moved (1,512 new connections for 36,000
     * agent requests in the service bench, 172 with this). The per-host
     * bound above is the real limit. */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, HTTP_MAX_CACHED_CONNECTIONS);
    *out = h;
    return 0;
fail:
    mpic_http_free(h);
    return rc;
}

void mpic_http_set_max_host_connections(struct mpic_http *h, long n)
{
    /* bound the connections one host can take: further transfers wait in
     * curl's queue (their timeouts run) instead of opening more */
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      n > 0 ? n : HTTP_DEFAULT_HOST_CONNECTIONS);
}

void mpic_http_free(struct mpic_http *h)
{
    if (!h)
        return;
    while (h->reqs)
        mpic_http_req_free(h->reqs);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    if (h->timer)
        event_free(h->timer);
    free(h);
}

size_t mpic_http_active(const struct mpic_http *h) { return h ? h->active : 0; }

const struct mpic_http_result *mpic_http_result(const struct mpic_http_req *req)
{
    return &req->res;
}

void mpic_http_req_free(struct mpic_http_req *q)
{
    if (!q)
        return;
    release_easy(q);
    unlink_req(q);
    clear_headers(&q->res);
    free(q->res.body);
    free(q);
}

void mpic_http_req_abandon(struct mpic_http_req *q)
{
    long sent = 0;
    if (!q)
        return;
    /* A request already sent on a kept-alive connection: removing it now
     * would close the connection (its answer is still due), and the next
     * request would pay for a new TLS connection. Let the answer arrive,
     * within the request's own timeout, and drop it then. */
    if (q->keepalive && q->easy && !q->finished &&
        curl_easy_getinfo(q->easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent > 0) {
        q->abandoned = 1;
        q->cb = NULL;
        q->arg = NULL;
        return;
    }
    mpic_http_req_free(q);
}

static int is_ip_literal(const char *s, char *norm, size_t normlen)
{
    struct mpic_addr a;
    char tmp[64];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        if (n - 2 >= sizeof tmp)
            return 0;
        memcpy(tmp, s + 1, n - 2);
        tmp[n - 2] = '\0';
        if (mpic_netaddr_parse(tmp, &a) != 0 || a.family != 6)
            return 0;
    } else if (mpic_netaddr_parse(s, &a) != 0) {
        return 0;
    }
    return mpic_netaddr_format(&a, norm, normlen) == 0 ? a.family : 0;
}

/* Header lines from the caller: "Name: value" with a token name and no
 * control characters. Host, Connection and Content-Length are ours. */
static int add_caller_headers(struct mpic_http_req *q, const struct mpic_http_opts *o,
                              int *has_accept, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < o->n_headers; i++) {
        const char *line = o->headers[i];
        const char *colon = line ? strchr(line, ':') : NULL;
        if (!colon || colon == line) {
            snprintf(errbuf, errlen, "header %zu: expected \"Name: value\"", i + 1);
            return -EINVAL;
        }
        for (const char *p = line; p < colon; p++)
            if (*p <= ' ' || *p >= 127 || strchr("()<>@,;\\\"/[]?={}", *p)) {
                snprintf(errbuf, errlen, "header %zu: invalid name", i + 1);
                return -EINVAL;
            }
        for (const char *p = colon + 1; *p; p++)
            if ((unsigned char)*p < ' ' && *p != '\t') {
                snprintf(errbuf, errlen, "header %zu: control character in value", i + 1);
                return -EINVAL;
            }
        size_t nl = (size_t)(colon - line);
        if ((nl == 4 && strncasecmp(line, "host", 4) == 0) ||
            (nl == 10 && strncasecmp(line, "connection", 10) == 0) ||
            (nl == 14 && strncasecmp(line, "content-length", 14) == 0))
            continue;
        if (nl == 6 && strncasecmp(line, "accept", 6) == 0)
            *has_accept = 1;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char tmp[8192];
        if (strlen(line) + 2 > sizeof tmp) {
            snprintf(errbuf, errlen, "header %zu: too long", i + 1);
            return -EINVAL;
        }
        if (*v)
            snprintf(tmp, sizeof tmp, "%.*s: %s", (int)nl, line, v);
        else
            snprintf(tmp, sizeof tmp, "%.*s;", (int)nl, line); /* curl's "empty value" form */
        struct curl_slist *l = curl_slist_append(q->hdrs, tmp);
        if (!l)
            return -ENOMEM;
        q->hdrs = l;
    }
    return 0;
}

static int check_url(const char *url, const char *connect_ip, int system_resolver, char *ipnorm,
                     size_t iplen, long *port, char *errbuf, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *zone = NULL, *ptext = NULL;
    int rc = -EINVAL;

    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        snprintf(errbuf, errlen, "malformed URL");
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_ZONEID, &zone, 0);
    if (curl_url_get(u, CURLUPART_PORT, &ptext, CURLU_DEFAULT_PORT) == CURLUE_OK && ptext)
        *port = strtol(ptext, NULL, 10);
    if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(errbuf, errlen, "URL scheme must be http or https");
        goto out;
    }
    if (!host || !*host) {
        snprintf(errbuf, errlen, "URL has no host");
        goto out;
    }
    if (zone) {
        snprintf(errbuf, errlen, "URL host carries a zone ID");
        goto out;
    }
    if (connect_ip) {
        if (!is_ip_literal(connect_ip, ipnorm, iplen) || connect_ip[0] == '[') {
            snprintf(errbuf, errlen, "connect_ip is not an IP address");
            goto out;
        }
    } else if (!is_ip_literal(host, ipnorm, iplen) && !system_resolver) {
        snprintf(errbuf, errlen, "connect_ip is required for a name host");
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(zone);
    curl_free(ptext);
    curl_url_cleanup(u);
    return rc;
}

#define SETOPT(opt, val)                                              \
    do {                                                              \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK) {              \
            snprintf(errbuf, errlen, "curl option %s refused", #opt); \
            rc = -EINVAL;                                             \
            goto fail;                                                \
        }                                                             \
    } while (0)

int mpic_http_start(struct mpic_http *h, const struct mpic_http_opts *o, mpic_http_cb cb, void *arg,
                    struct mpic_http_req **out, char *errbuf, size_t errlen)
{
    struct mpic_http_req *q = NULL;
    CURL *e = NULL;
    char ipnorm[64] = "";
    char tmp[160];
    long port = 0;
    int rc, has_accept = 0;

    *out = NULL;
    if (errlen)
        errbuf[0] = '\0';
    if (!h || !o || !o->url || !cb) {
        snprintf(errbuf, errlen, "missing url or callback");
        return -EINVAL;
    }
    if (o->source_ip && o->interface) {
        snprintf(errbuf, errlen, "give source_ip or interface, not both");
        return -EINVAL;
    }
    rc = check_url(o->url, o->connect_ip, o->system_resolver, ipnorm, sizeof ipnorm, &port, errbuf,
                   errlen);
    if (rc < 0)
        return rc;
    q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->h = h;
    q->cb = cb;
    q->keepalive = o->keepalive;
    q->allow_reserved = o->allow_reserved;
    q->arg = arg;
    q->max_bytes = o->max_bytes ? o->max_bytes : HTTP_DEFAULT_MAX_BYTES;
    snprintf(q->fallback_ip, sizeof q->fallback_ip, "%s", ipnorm);
    q->fallback_port = o->connect_port > 0 ? o->connect_port : port;
    rc = add_caller_headers(q, o, &has_accept, errbuf, errlen);
    if (rc < 0)
        goto fail;
    rc = -ENOMEM;
    struct curl_slist *l = has_accept ? q->hdrs : curl_slist_append(q->hdrs, "Accept: */*");
    if (!l)
        goto fail;
    q->hdrs = l;
    if (!o->keepalive) {
        if (!(l = curl_slist_append(q->hdrs, "Connection: close")))
            goto fail;
        q->hdrs = l;
    }
    if (o->connect_ip) {
        /* any host, any port -> this address, same port: curl never resolves */
        if (o->connect_port > 0 && o->connect_port < 65536)
            snprintf(tmp, sizeof tmp, strchr(ipnorm, ':') ? "::[%s]:%ld" : "::%s:%ld", ipnorm,
                     o->connect_port);
        else
            snprintf(tmp, sizeof tmp, strchr(ipnorm, ':') ? "::[%s]:" : "::%s:", ipnorm);
        if (!(q->connect_to = curl_slist_append(NULL, tmp)))
            goto fail;
    }
    if (!(e = q->easy = curl_easy_init()))
        goto fail;
    SETOPT(CURLOPT_URL, o->url);
    SETOPT(CURLOPT_PRIVATE, q);
    SETOPT(CURLOPT_ERRORBUFFER, q->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    SETOPT(CURLOPT_OPENSOCKETDATA, q);
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, q);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_PROXY, "");
    SETOPT(CURLOPT_NOPROXY, "*");
    if (o->http2) {
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        SETOPT(CURLOPT_PIPEWAIT, 1L);
    } else {
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SETOPT(CURLOPT_SSL_VERIFYPEER, o->verify_tls ? 1L : 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, o->verify_tls ? 2L : 0L);
    /* probes never share a connection; the agent channel may keep one */
    SETOPT(CURLOPT_FORBID_REUSE, o->keepalive ? 0L : 1L);
    SETOPT(CURLOPT_FRESH_CONNECT, o->keepalive ? 0L : 1L);
    SETOPT(CURLOPT_PATH_AS_IS, 1L);
    SETOPT(CURLOPT_HTTPHEADER, q->hdrs);
    if (q->connect_to)
        SETOPT(CURLOPT_CONNECT_TO, q->connect_to);
    if (o->user_agent)
        SETOPT(CURLOPT_USERAGENT, o->user_agent);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
           o->connect_timeout_ms > 0 ? o->connect_timeout_ms : HTTP_DEFAULT_TIMEOUT_MS);
    SETOPT(CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS);
    if (o->source_ip) {
        char sn[64];
        if (!is_ip_literal(o->source_ip, sn, sizeof sn) || o->source_ip[0] == '[') {
            snprintf(errbuf, errlen, "source_ip is not an IP address");
            rc = -EINVAL;
            goto fail;
        }
        snprintf(tmp, sizeof tmp, "host!%s", sn);
        SETOPT(CURLOPT_INTERFACE, tmp);
    } else if (o->interface) {
        snprintf(tmp, sizeof tmp, "if!%s", o->interface);
        SETOPT(CURLOPT_INTERFACE, tmp);
    }
    if (o->method && strcmp(o->method, "GET") != 0) {
        if (strcmp(o->method, "POST") == 0)
            SETOPT(CURLOPT_POST, 1L);
        else if (strcmp(o->method, "HEAD") == 0)
            SETOPT(CURLOPT_NOBODY, 1L);
        else
            SETOPT(CURLOPT_CUSTOMREQUEST, o->method);
    }
    if (o->body || (o->method && strcmp(o->method, "POST") == 0)) {
        /* always give the body: a POST without one would read stdin */
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(o->body ? o->body_len : 0));
        SETOPT(CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
    }
    if (o->ca_file) {
        SETOPT(CURLOPT_CAINFO, o->ca_file);
        SETOPT(CURLOPT_CAPATH, (char *)NULL);
    }
    if (!!o->cert_file != !!o->key_file) {
        snprintf(errbuf, errlen, "a client certificate needs both cert_file and key_file");
        rc = -EINVAL;
        goto fail;
    }
    if (o->cert_file) {
        SETOPT(CURLOPT_SSLCERT, o->cert_file);
        SETOPT(CURLOPT_SSLKEY, o->key_file);
    }
    if (o->pinned_key) {
        if (strncmp(o->pinned_key, "sha256//", 8) != 0) {
            snprintf(errbuf, errlen, "pinned_key must be sha256//BASE64[;sha256//BASE64...]");
            rc = -EINVAL;
            goto fail;
        }
        SETOPT(CURLOPT_PINNEDPUBLICKEY, o->pinned_key);
    }
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, q);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, q);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        snprintf(errbuf, errlen, "curl_multi_add_handle failed");
        rc = -EIO;
        goto fail;
    }
    h->active++;
    q->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = q;
    h->reqs = q;
    *out = q;
    return 0;
fail:
    if (q) {
        if (q->easy) {
            curl_easy_cleanup(q->easy);
            q->easy = NULL;
        }
        curl_slist_free_all(q->hdrs);
        curl_slist_free_all(q->connect_to);
        free(q);
    }
    return rc;
}
