/*
 * dns.c: per-perspective DNS resolvers (c-ares 1.18 channels on libevent).
 *
 * Provides the resolver and query functions of dns.h. Uses c-ares for
 * transport only (server selection, retries on timeouts and network errors,
 * UDP to TCP on truncation): every query message is built by dns_wire.c and
 * sent with ares_send, every reply is parsed by dns_wire.c. c-ares sockets
 * and its timeout are driven by libevent events (ARES_OPT_SOCK_STATE_CB,
 * ares_process_fd, ares_timeout). A per-query lifetime timer bounds the whole
 * query, since c-ares doubles the per-try timeout on each round. c-ares 1.18
 * cannot cancel one query, so a cancelled query is only marked orphaned and
 * freed silently when c-ares lets go of it.
 *
 * A server list with an encrypted resolver (tls://, https://; dns_enc.c) is
 * a "composite" resolver instead: one backend per entry (a one-server c-ares
 * channel for a plain entry, an encrypted transport otherwise), tried in
 * order, one backend per try, until an answer or the tries or lifetime run
 * out. Its answers go through the same classification as c-ares's.
 */
#include "dns.h"
#include "dns_enc.h"
#include "netaddr.h"

#include <ares.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Receive buffer asked for each c-ares socket (bytes). */
#define MPIC_DNS_RCVBUF (4 << 20)

struct sock_ev {
    ares_socket_t fd;
    struct event *ev;
    struct sock_ev *next;
    char peer[INET6_ADDRSTRLEN + 8]; /* "ip:port" of the connected server, once asked */
};

struct mpic_dns_resolver {
    struct event_base *base;
    ares_channel ch;
    int have_ch;
    struct event *timer;
    struct sock_ev *socks;
    char *servers_csv;
    int lifetime_ms;
    int try_timeout_ms;   /* c-ares's per-try timeout (ARES_OPT_TIMEOUTMS) */
    uint64_t timer_at_ms; /* when the armed timer fires (monotonic ms) */
    ares_socket_t cur_fd; /* socket being processed, for the answering server */
    /* composite resolver (an encrypted entry in the list); have_ch is 0 */
    struct dns_backend *backs;
    size_t n_backs;
    int tries;
};

struct dns_backend {
    struct mpic_dns_resolver *plain; /* one server, one try */
    struct mpic_dns_enc *enc;
};

struct mpic_dns_query {
    struct mpic_dns_resolver *res;
    mpic_dns_cb cb;
    void *arg;
    int orphaned; /* cancelled, or already reported (lifetime expired) */
    struct event *deadline;
    uint64_t start_ms;
    uint16_t qtype;
    /* composite queries: owned here, freed once reported or cancelled */
    int composite;
    unsigned attempt; /* tries started */
    struct mpic_dns_query *sub_plain;
    struct mpic_dns_enc_query *sub_enc;
    size_t len;
    unsigned char msg[512];
    char name[]; /* with the trailing dot; sized to fit */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Arm the timer for c-ares's next timeout. ares_timeout() walks every
 * outstanding query, so with thousands in flight it is asked only when the
 * answer can be earlier than the armed timer: every try c-ares starts times
 * out at least try_timeout_ms after its start, so an armed timer due no
 * later than now + try_timeout_ms already fires in time. A timer that fires
 * early (its query answered) costs one idle ares_process_fd and a re-read. */
static void rearm(struct mpic_dns_resolver *r, int force)
{
    struct timeval tv, *tvp;
    uint64_t now;
    if (!r->have_ch)
        return;
    now = now_ms();
    if (!force && evtimer_pending(r->timer, NULL) &&
        r->timer_at_ms <= now + (uint64_t)r->try_timeout_ms)
        return;
    tvp = ares_timeout(r->ch, NULL, &tv);
    if (tvp) {
        /* rounded up: the timer fires no later than this */
        r->timer_at_ms =
            now + (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u + 1u;
        evtimer_add(r->timer, tvp);
    } else {
        evtimer_del(r->timer);
    }
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_dns_resolver *r = arg;
    r->cur_fd = fd;
    ares_process_fd(r->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    r->cur_fd = ARES_SOCKET_BAD;
    rearm(r, 0);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_dns_resolver *r = arg;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(r, 1);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct mpic_dns_resolver *r = data;
    struct sock_ev **pp, *s = NULL;

    for (pp = &r->socks; *pp; pp = &(*pp)->next)
        if ((*pp)->fd == fd) {
            s = *pp;
            break;
        }
    if (s) {
        if (s->ev) /* NULL when re-arming it failed */
            event_free(s->ev);
        s->ev = NULL;
        if (!readable && !writable) {
            *pp = s->next;
            free(s);
            return;
        }
    } else {
        if (!readable && !writable)
            return;
        s = calloc(1, sizeof *s);
        if (!s)
            return; /* the query will time out */
        s->fd = fd;
        s->next = r->socks;
        r->socks = s;
    }
    s->ev = event_new(r->base, fd,
                      (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0) | EV_PERSIST),
                      on_io, r);
    if (s->ev)
        event_add(s->ev, NULL);
}

static const char *ede_name(int code)
{
    static const char *const names[] = {
        "Other",
        "Unsupported DNSKEY Algorithm",
        "Unsupported DS Digest Type",
        "Stale Answer",
        "Forged Answer",
        "DNSSEC Indeterminate",
        "DNSSEC Bogus",
        "Signature Expired",
        "Signature Not Yet Valid",
        "DNSKEY Missing",
        "RRSIGs Missing",
        "No Zone Key Bit Set",
        "NSEC Missing",
        "Cached Error",
        "Not Ready",
        "Blocked",
        "Censored",
        "Filtered",
        "Prohibited",
        "Stale NXDOMAIN Answer",
        "Not Authoritative",
        "Not Supported",
        "No Reachable Authority",
        "Network Error",
        "Invalid Data",
    };
    if (code >= 0 && code < (int)(sizeof names / sizeof names[0]))
        return names[code];
    return "Unknown Error";
}

/* EDE text as printable ASCII (other bytes become '?'). */
static void ede_suffix(const struct mpic_dns_reply *rep, char *buf, size_t cap)
{
    char text[256];
    size_t i, n = 0;
    buf[0] = '\0';
    if (rep->ede_code < 0)
        return;
    for (i = 0; i < rep->ede_text_len && n + 1 < sizeof text; i++) {
        unsigned char c = (unsigned char)rep->ede_text[i];
        text[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    text[n] = '\0';
    snprintf(buf, cap, "%s (EDE %d)%s%s", ede_name(rep->ede_code), rep->ede_code, n ? ": " : "",
             text);
}

static void peer_text(ares_socket_t fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN];

    buf[0] = '\0';
    if (fd == ARES_SOCKET_BAD || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip))
            snprintf(buf, cap, "%s:%u", ip, ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip))
            snprintf(buf, cap, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    }
}

/* The server an answer came from: the peer of the socket being processed.
 * c-ares connects each socket to one server, so the text is asked of the
 * kernel once per socket and kept until c-ares closes it. */
static const char *answering_server(struct mpic_dns_resolver *r)
{
    struct sock_ev *s;
    if (r->cur_fd == ARES_SOCKET_BAD)
        return NULL;
    for (s = r->socks; s; s = s->next)
        if (s->fd == r->cur_fd)
            break;
    if (!s)
        return NULL;
    if (!s->peer[0])
        peer_text(s->fd, s->peer, sizeof s->peer);
    return s->peer[0] ? s->peer : NULL;
}

/* Turn a c-ares outcome into a result and deliver it. A composite query
 * passes the server that answered (via), or a failure of its own (status
 * -1 with kind fail_err and detail fail_detail). */
static void report_via(struct mpic_dns_query *q, int status, const unsigned char *abuf, int alen,
                       const char *via, enum mpic_err fail_err, const char *fail_detail)
{
    struct mpic_dns_result res;
    struct mpic_dns_reply *rep = NULL;
    char detail[768], perr[160], ede[320], rcbuf[16];
    const char *server;
    const char *tname = mpic_dns_type_name(q->qtype);
    const char *rc;

    memset(&res, 0, sizeof res);
    res.name = q->name;
    res.qtype = q->qtype;
    res.server = q->res->servers_csv;
    res.elapsed_ms = now_ms() - q->start_ms;
    res.detail = detail;
    detail[0] = '\0';

    if (via)
        res.server = via;
    switch (status) {
    case -1:
        res.err = fail_err;
        snprintf(detail, sizeof detail, "%s", fail_detail);
        goto deliver;
    case ARES_SUCCESS: break;
    case ARES_ETIMEOUT:
        res.err = MPIC_E_TIMEOUT;
        snprintf(detail, sizeof detail, "DNS problem: query timed out looking up %s for %s", tname,
                 q->name);
        goto deliver;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        res.err = MPIC_E_CANCELLED;
        snprintf(detail, sizeof detail, "DNS problem: resolver closed while looking up %s for %s",
                 tname, q->name);
        goto deliver;
    default:
        res.err = MPIC_E_DNS;
        snprintf(detail, sizeof detail, "DNS problem: networking error looking up %s for %s (%s)",
                 tname, q->name, ares_strerror(status));
        goto deliver;
    }

    server = via ? NULL : answering_server(q->res);
    if (server)
        res.server = server;
    if (alen <= 0 || mpic_dns_wire_parse(abuf, (size_t)alen, &rep, perr, sizeof perr) < 0) {
        res.err = MPIC_E_DNS;
        snprintf(detail, sizeof detail, "DNS problem: malformed response looking up %s for %s (%s)",
                 tname, q->name, alen <= 0 ? "empty" : perr);
        goto deliver;
    }
    res.reply = rep;
    ede_suffix(rep, ede, sizeof ede);
    rc = mpic_dns_rcode_name(rep->rcode, rcbuf, sizeof rcbuf);
    if (rep->tc) {
        res.err = MPIC_E_DNS;
        snprintf(detail, sizeof detail, "DNS problem: response was truncated looking up %s for %s",
                 tname, q->name);
    } else if (rep->rcode == 0 || rep->rcode == 3) {
        if (rep->cname_loop || rep->cname_too_long) {
            res.err = MPIC_E_DNS;
            snprintf(detail, sizeof detail, "DNS problem: %s looking up %s for %s",
                     rep->cname_loop ? "CNAME loop" : "CNAME chain longer than 16", tname, q->name);
        }
        res.detail = res.err ? detail : NULL;
    } else if (rep->rcode == 2) {
        if (rep->ede_code >= 5 && rep->ede_code <= 12) {
            res.err = MPIC_E_DNSSEC_BOGUS;
            snprintf(detail, sizeof detail, "DNS problem: looking up %s for %s: %s", tname, q->name,
                     ede);
        } else {
            res.err = MPIC_E_SERVFAIL;
            snprintf(detail, sizeof detail,
                     "DNS problem: SERVFAIL looking up %s for %s - the domain's nameservers may be "
                     "malfunctioning%s%s",
                     tname, q->name, ede[0] ? ": " : "", ede);
        }
    } else {
        res.err = rep->rcode == 5 ? MPIC_E_REFUSED : MPIC_E_DNS;
        snprintf(detail, sizeof detail, "DNS problem: %s looking up %s for %s%s%s", rc, tname,
                 q->name, ede[0] ? ": " : "", ede);
    }
deliver:
    if (res.err == MPIC_OK)
        res.detail = NULL;
    q->cb(q->arg, &res);
    mpic_dns_reply_free(res.reply);
}

static void report(struct mpic_dns_query *q, int status, const unsigned char *abuf, int alen)
{
    report_via(q, status, abuf, alen, NULL, MPIC_OK, NULL);
}

static void on_ares_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct mpic_dns_query *q = arg;
    if (!q->orphaned) {
        q->orphaned = 1;
        report(q, status, abuf, alen);
    }
    if (q->deadline)
        event_free(q->deadline);
    free(q);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_dns_query *q = arg;
    if (q->orphaned)
        return;
    q->orphaned = 1; /* c-ares still owns q; on_ares_done frees it */
    report(q, ARES_ETIMEOUT, NULL, 0);
}

static void composite_free(struct mpic_dns_query *q);

void mpic_dns_query_cancel(struct mpic_dns_query *q)
{
    if (!q)
        return;
    if (q->composite) {
        composite_free(q);
        return;
    }
    q->orphaned = 1;
    if (q->deadline)
        evtimer_del(q->deadline);
}

static int composite_start(struct mpic_dns_resolver *r, const char *name, uint16_t qtype,
                           mpic_dns_cb cb, void *arg, struct mpic_dns_query **out);

int mpic_dns_query_start(struct mpic_dns_resolver *r, const char *name, uint16_t qtype,
                         mpic_dns_cb cb, void *arg, struct mpic_dns_query **out)
{
    unsigned char buf[512];
    struct mpic_dns_query *q;
    struct timeval tv;
    size_t nl;
    int len;

    *out = NULL;
    if (r && r->backs)
        return composite_start(r, name, qtype, cb, arg, out);
    if (!r || !r->have_ch || !name || !cb || !mpic_dns_type_name(qtype))
        return -1;
    nl = strlen(name);
    if (nl && name[nl - 1] == '.')
        nl--;
    len = mpic_dns_wire_build_query(name, qtype, 0, buf, sizeof buf);
    if (len < 0 || nl + 1 > MPIC_DNS_MAX_NAME)
        return -1;
    q = calloc(1, sizeof *q + nl + 2);
    if (!q)
        return -1;
    q->deadline = evtimer_new(r->base, on_deadline, q);
    if (!q->deadline) {
        free(q);
        return -1;
    }
    q->res = r;
    q->cb = cb;
    q->arg = arg;
    q->qtype = qtype;
    q->start_ms = now_ms();
    memcpy(q->name, name, nl);
    q->name[nl] = '.';
    q->name[nl + 1] = '\0';
    tv.tv_sec = r->lifetime_ms / 1000;
    tv.tv_usec = (r->lifetime_ms % 1000) * 1000;
    evtimer_add(q->deadline, &tv);
    *out = q;
    ares_send(r->ch, buf, len, on_ares_done, q); /* may complete at once */
    rearm(r, 0);
    return 0;
}

const char *mpic_dns_resolver_servers(const struct mpic_dns_resolver *r) { return r->servers_csv; }

void mpic_dns_resolver_free(struct mpic_dns_resolver *r)
{
    struct sock_ev *s, *next;
    if (!r)
        return;
    if (r->have_ch)
        ares_destroy(r->ch); /* pending queries end with ARES_EDESTRUCTION */
    r->have_ch = 0;
    /* a composite's pending queries end with MPIC_E_CANCELLED from their
     * backend (never retried) */
    for (size_t i = 0; r->backs && i < r->n_backs; i++) {
        mpic_dns_resolver_free(r->backs[i].plain);
        mpic_dns_enc_free(r->backs[i].enc);
        r->backs[i].plain = NULL;
        r->backs[i].enc = NULL;
    }
    free(r->backs);
    r->backs = NULL;
    for (s = r->socks; s; s = next) {
        next = s->next;
        if (s->ev)
            event_free(s->ev);
        free(s);
    }
    if (r->timer)
        event_free(r->timer);
    free(r->servers_csv);
    free(r);
}

static int join_servers(const struct mpic_dns_config *cfg, char **out, char *err, size_t errlen)
{
    size_t i, total = 1;
    char *csv;

    if (!cfg->servers || cfg->n_servers == 0) {
        set_err(err, errlen, "no DNS servers configured");
        return -1;
    }
    for (i = 0; i < cfg->n_servers; i++) {
        const char *s = cfg->servers[i];
        if (!s || !*s || strlen(s) > (mpic_dns_enc_scheme(s) ? 512u : 64u) || strpbrk(s, ", \t")) {
            set_err(err, errlen, "bad DNS server entry %zu", i + 1);
            return -1;
        }
        total += strlen(s) + 1;
    }
    csv = calloc(1, total);
    if (!csv) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < cfg->n_servers; i++) {
        if (i)
            strcat(csv, ",");
        strcat(csv, cfg->servers[i]);
    }
    *out = csv;
    return 0;
}

static int composite_new(struct mpic_dns_resolver *r, struct event_base *base,
                         const struct mpic_dns_config *cfg, char *err, size_t errlen);

int mpic_dns_resolver_new(struct event_base *base, const struct mpic_dns_config *cfg,
                          struct mpic_dns_resolver **out, char *err, size_t errlen)
{
    static int lib_ready;
    struct mpic_dns_resolver *r = NULL;
    struct ares_options o;
    char lookups[] = "b";
    int rc, optmask;

    *out = NULL;
    if (!base || !cfg || cfg->timeout_ms <= 0 || cfg->tries <= 0 || cfg->tries > 20 ||
        cfg->lifetime_ms < 0) {
        set_err(err, errlen, "bad resolver configuration (timeout_ms and tries must be > 0)");
        return -1;
    }
    if (!lib_ready) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
            set_err(err, errlen, "c-ares initialisation failed");
            return -1;
        }
        lib_ready = 1;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    r->base = base;
    r->cur_fd = ARES_SOCKET_BAD;
    r->lifetime_ms = cfg->lifetime_ms ? cfg->lifetime_ms : cfg->timeout_ms * cfg->tries;
    r->try_timeout_ms = cfg->timeout_ms;
    if (join_servers(cfg, &r->servers_csv, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < cfg->n_servers; i++)
        if (mpic_dns_enc_scheme(cfg->servers[i])) {
            if (composite_new(r, base, cfg, err, errlen) < 0)
                goto fail;
            *out = r;
            return 0;
        }
    r->timer = evtimer_new(base, on_timer, r);
    if (!r->timer) {
        set_err(err, errlen, "cannot create timer");
        goto fail;
    }
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP | ARES_FLAG_EDNS |
              (cfg->tcp_only ? ARES_FLAG_USEVC : 0);
    o.timeout = cfg->timeout_ms;
    o.tries = cfg->tries;
    o.lookups = lookups;
    o.ednspsz = MPIC_DNS_EDNS_SIZE;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = r;
    o.ndomains = 0;
    o.domains = NULL;
    /* A burst of answers to hundreds of queries in flight on one socket
     * overflows the default receive buffer (about 200 KB, some 270 answers
     * on loopback): the dropped answers come back only after a retry
     * timeout. The kernel caps the request at net.core.rmem_max. */
    o.socket_receive_buffer_size = MPIC_DNS_RCVBUF;
    optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
              ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_STATE_CB | ARES_OPT_DOMAINS | ARES_OPT_SOCK_RCVBUF;
    rc = ares_init_options(&r->ch, &o, optmask);
    if (rc != ARES_SUCCESS) {
        set_err(err, errlen, "c-ares channel: %s", ares_strerror(rc));
        goto fail;
    }
    r->have_ch = 1;
    rc = ares_set_servers_ports_csv(r->ch, r->servers_csv);
    if (rc != ARES_SUCCESS) {
        set_err(err, errlen, "bad DNS server list \"%s\": %s", r->servers_csv, ares_strerror(rc));
        goto fail;
    }
    if (cfg->source_ipv4) {
        struct mpic_addr a;
        if (mpic_netaddr_parse(cfg->source_ipv4, &a) != 0 || a.family != 4) {
            set_err(err, errlen, "bad source_ipv4 \"%s\"", cfg->source_ipv4);
            goto fail;
        }
        ares_set_local_ip4(r->ch, (unsigned)a.bytes[0] << 24 | (unsigned)a.bytes[1] << 16 |
                                      (unsigned)a.bytes[2] << 8 | a.bytes[3]);
    }
    if (cfg->source_ipv6) {
        struct mpic_addr a6;
        if (mpic_netaddr_parse(cfg->source_ipv6, &a6) != 0 || a6.family != 6) {
            set_err(err, errlen, "bad source_ipv6 \"%s\"", cfg->source_ipv6);
            goto fail;
        }
        ares_set_local_ip6(r->ch, a6.bytes);
    }
    if (cfg->interface) {
        if (!*cfg->interface || strlen(cfg->interface) >= 32) {
            set_err(err, errlen, "bad interface name");
            goto fail;
        }
        ares_set_local_dev(r->ch, cfg->interface);
    }
    *out = r;
    return 0;
fail:
    mpic_dns_resolver_free(r);
    return -1;
}

/* ---- composite resolvers (an encrypted server in the list) ---------------- */

unsigned long mpic_dns_resolver_connections(const struct mpic_dns_resolver *r)
{
    unsigned long n = 0;
    for (size_t i = 0; r && r->backs && i < r->n_backs; i++)
        n += mpic_dns_enc_connections(r->backs[i].enc);
    return n;
}

static int composite_new(struct mpic_dns_resolver *r, struct event_base *base,
                         const struct mpic_dns_config *cfg, char *err, size_t errlen)
{
    char sub_err[256];
    r->backs = calloc(cfg->n_servers, sizeof *r->backs);
    if (!r->backs) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    r->n_backs = cfg->n_servers;
    r->tries = cfg->tries;
    if (!cfg->lifetime_ms) /* every server tried `tries` times, as c-ares does */
        r->lifetime_ms = cfg->timeout_ms * cfg->tries * (int)cfg->n_servers;
    for (size_t i = 0; i < cfg->n_servers; i++) {
        const char *s = cfg->servers[i];
        if (mpic_dns_enc_scheme(s)) {
            struct mpic_dns_enc_config ec = {
                .entry = s,
                .ca_file = cfg->ca_file,
                .connect_timeout_ms = cfg->timeout_ms,
                .source_ipv4 = cfg->source_ipv4,
                .source_ipv6 = cfg->source_ipv6,
                .interface = cfg->interface,
            };
            if (mpic_dns_enc_new(base, &ec, &r->backs[i].enc, sub_err, sizeof sub_err) < 0) {
                set_err(err, errlen, "DNS server entry %zu: %s", i + 1, sub_err);
                return -1;
            }
        } else {
            struct mpic_dns_config pc = *cfg;
            pc.servers = &cfg->servers[i];
            pc.n_servers = 1;
            pc.tries = 1;
            pc.lifetime_ms = cfg->timeout_ms;
            if (mpic_dns_resolver_new(base, &pc, &r->backs[i].plain, sub_err, sizeof sub_err) < 0) {
                set_err(err, errlen, "DNS server entry %zu: %s", i + 1, sub_err);
                return -1;
            }
        }
    }
    return 0;
}

static void composite_free(struct mpic_dns_query *q)
{
    struct mpic_dns_query *sp = q->sub_plain;
    struct mpic_dns_enc_query *se = q->sub_enc;
    q->sub_plain = NULL;
    q->sub_enc = NULL;
    mpic_dns_query_cancel(sp);
    mpic_dns_enc_query_cancel(se);
    if (q->deadline)
        event_free(q->deadline);
    free(q);
}

/* A failure to get an answer from this server: the next one may have it. */
static int retryable(enum mpic_err e, int has_reply)
{
    return e == MPIC_E_TIMEOUT || e == MPIC_E_CONNECT || e == MPIC_E_TLS || e == MPIC_E_PROTOCOL ||
           (e == MPIC_E_DNS && !has_reply);
}

static int composite_try(struct mpic_dns_query *q);

/* Retry when allowed, else report; returns after q may be freed. */
static void composite_failed(struct mpic_dns_query *q, enum mpic_err e, const char *detail,
                             int has_reply)
{
    if (retryable(e, has_reply) && q->attempt < (unsigned)q->res->tries * q->res->n_backs) {
        if (composite_try(q) == 0)
            return;
        e = MPIC_E_INTERNAL;
        detail = "DNS problem: cannot start the next try";
    }
    report_via(q, -1, NULL, 0, q->res->servers_csv, e, detail);
    composite_free(q);
}

static void on_sub_plain(void *arg, struct mpic_dns_result *res)
{
    struct mpic_dns_query *q = arg;
    q->sub_plain = NULL;
    if (res->err != MPIC_OK && retryable(res->err, res->reply != NULL) &&
        q->attempt < (unsigned)q->res->tries * q->res->n_backs) {
        composite_failed(q, res->err, res->detail, res->reply != NULL);
        return;
    }
    res->elapsed_ms = now_ms() - q->start_ms;
    q->cb(q->arg, res);
    composite_free(q);
}

static void on_sub_enc(void *arg, enum mpic_err err, const char *detail, const unsigned char *msg,
                       size_t len)
{
    struct mpic_dns_query *q = arg;
    const char *via = mpic_dns_enc_label(q->res->backs[(q->attempt - 1) % q->res->n_backs].enc);
    q->sub_enc = NULL;
    if (err != MPIC_OK) {
        composite_failed(q, err, detail, 0);
        return;
    }
    report_via(q, ARES_SUCCESS, msg, (int)len, via, MPIC_OK, NULL);
    composite_free(q);
}

/* Start the next try on the next backend; 0, or -1 when it cannot start. */
static int composite_try(struct mpic_dns_query *q)
{
    struct mpic_dns_resolver *r = q->res;
    struct dns_backend *b = &r->backs[q->attempt % r->n_backs];
    q->attempt++;
    if (b->enc)
        return mpic_dns_enc_query_start(b->enc, q->msg, q->len, r->try_timeout_ms, on_sub_enc, q,
                                        &q->sub_enc);
    /* the callback may run before this returns (and free q) */
    return mpic_dns_query_start(b->plain, q->name, q->qtype, on_sub_plain, q, &q->sub_plain);
}

static void on_composite_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct mpic_dns_query *q = arg;
    struct mpic_dns_query *sp = q->sub_plain;
    struct mpic_dns_enc_query *se = q->sub_enc;
    q->sub_plain = NULL;
    q->sub_enc = NULL;
    mpic_dns_query_cancel(sp);
    mpic_dns_enc_query_cancel(se);
    report_via(q, ARES_ETIMEOUT, NULL, 0, q->res->servers_csv, MPIC_OK, NULL);
    composite_free(q);
}

static int composite_start(struct mpic_dns_resolver *r, const char *name, uint16_t qtype,
                           mpic_dns_cb cb, void *arg, struct mpic_dns_query **out)
{
    struct mpic_dns_query *q;
    struct timeval tv;
    size_t nl;
    int len;

    if (!name || !cb || !mpic_dns_type_name(qtype))
        return -1;
    nl = strlen(name);
    if (nl && name[nl - 1] == '.')
        nl--;
    if (nl + 1 > MPIC_DNS_MAX_NAME)
        return -1;
    q = calloc(1, sizeof *q + nl + 2);
    if (!q)
        return -1;
    len = mpic_dns_wire_build_query(name, qtype, 0, q->msg, sizeof q->msg);
    q->deadline = evtimer_new(r->base, on_composite_deadline, q);
    if (len < 0 || !q->deadline) {
        if (q->deadline)
            event_free(q->deadline);
        free(q);
        return -1;
    }
    q->composite = 1;
    q->len = (size_t)len;
    q->res = r;
    q->cb = cb;
    q->arg = arg;
    q->qtype = qtype;
    q->start_ms = now_ms();
    memcpy(q->name, name, nl);
    q->name[nl] = '.';
    q->name[nl + 1] = '\0';
    tv.tv_sec = r->lifetime_ms / 1000;
    tv.tv_usec = (r->lifetime_ms % 1000) * 1000;
    evtimer_add(q->deadline, &tv);
    *out = q;
    if (composite_try(q) < 0) {
        *out = NULL;
        composite_free(q);
        return -1;
    }
    return 0;
}
