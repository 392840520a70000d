/*
 * dns.h: per-perspective DNS resolvers on c-ares, driven by libevent.
 *
 * A resolver wraps one c-ares channel (never shared, no cache, no hosts file,
 * no search list). A query sends our own message (dns_wire.c) and reports a
 * parsed reply, or a failure kind from errors.h with a human-readable detail,
 * through a C callback. Lua-free; lua_dns.c binds it.
 */
#ifndef MPIC_DNS_H
#define MPIC_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "dns_wire.h"
#include "errors.h"

struct event_base;
struct mpic_dns_resolver;
struct mpic_dns_query;

/*
 * A server is "ip:port" or "[v6]:port" (port optional: 53), reached over
 * UDP and TCP through c-ares, or an encrypted resolver (dns_enc.h):
 * "tls://IP[:PORT][#NAME]" (DNS-over-TLS) or "https://HOST[:PORT]/PATH[#IP]"
 * (DNS-over-HTTPS). A list with an encrypted entry is tried in order, one
 * server per try, moving to the next on a failure to get an answer
 * (timeout, connection, TLS); an answer (any rcode) ends the query, as with
 * c-ares. Each try is bounded by timeout_ms, all of them by lifetime_ms.
 */
struct mpic_dns_config {
    const char *const *servers;
    size_t n_servers;
    int timeout_ms;  /* per try, > 0 */
    int tries;       /* > 0 */
    int lifetime_ms; /* whole query bound; 0 means timeout_ms * tries */
    const char *source_ipv4, *source_ipv6, *interface; /* optional */
    int tcp_only;
    const char *ca_file; /* tls:// and https:// servers: the CA file their
                            certificates must chain to (NULL: system store) */
};

struct mpic_dns_result {
    enum mpic_err err;  /* MPIC_OK, or a failure kind */
    const char *detail; /* failure text (NULL on success) */
    const char *name;   /* query name, trailing dot */
    uint16_t qtype;
    struct mpic_dns_reply *reply; /* when a response was parsed (also on
                                     SERVFAIL etc.); the callback may take
                                     it over by setting this to NULL */
    const char *server;           /* "ip:port" of the answering server, or the
                            configured list when unknown */
    uint64_t elapsed_ms;
};

/* Callback: runs once per query unless the query was cancelled first. The
 * result and everything it points to (except a reply taken over) are valid
 * only during the call. The callback must not free the resolver. */
typedef void (*mpic_dns_cb)(void *arg, struct mpic_dns_result *res);

int mpic_dns_resolver_new(struct event_base *base, const struct mpic_dns_config *cfg,
                          struct mpic_dns_resolver **out, char *err, size_t errlen);
/* Pending queries complete with MPIC_E_CANCELLED before this returns. */
void mpic_dns_resolver_free(struct mpic_dns_resolver *r);
/* The configured server list, comma-separated. */
const char *mpic_dns_resolver_servers(const struct mpic_dns_resolver *r);
/* Connections the encrypted servers opened so far (0 for UDP/TCP only). */
unsigned long mpic_dns_resolver_connections(const struct mpic_dns_resolver *r);

/*
 * Start a query. name must already be normalized (mpic_dns_name_normalize),
 * qtype one of the supported query types. *out is set before any I/O, and
 * the callback may run before this returns (then the query is already gone:
 * the callback should clear the caller's copy of *out). Returns 0 or -1
 * (bad arguments / out of memory; no callback then).
 */
int mpic_dns_query_start(struct mpic_dns_resolver *r, const char *name, uint16_t qtype,
                         mpic_dns_cb cb, void *arg, struct mpic_dns_query **out);
/* Drop a pending query: its callback will never run. */
void mpic_dns_query_cancel(struct mpic_dns_query *q);

#endif
