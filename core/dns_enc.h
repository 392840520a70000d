/*
 * dns_enc.h: encrypted resolver transports for the DNS probe.
 *
 * One mpic_dns_enc is one resolver reached over DNS-over-TLS (RFC 7858,
 * "tls://IP[:PORT][#NAME]", port 853 by default) or DNS-over-HTTPS (RFC 8484,
 * "https://HOST[:PORT]/PATH[#IP]"). The caller hands over a query message
 * (dns_wire.c) and gets back the raw answer or a failure kind of errors.h
 * with a detail; dns.c turns answers into results exactly as for UDP/TCP.
 * The resolver's certificate is always verified: against ca_file when given,
 * else the system trust store, for NAME (DoT: the name after '#', else the
 * IP address) or the URL's host (DoH). Lua-free.
 */
#ifndef MPIC_DNS_ENC_H
#define MPIC_DNS_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

struct event_base;
struct mpic_dns_enc;
struct mpic_dns_enc_query;

enum { MPIC_DNS_ENC_NONE = 0, MPIC_DNS_ENC_DOT = 1, MPIC_DNS_ENC_DOH = 2 };

/* The transport a resolver entry names by its scheme: MPIC_DNS_ENC_DOT for
 * "tls://", MPIC_DNS_ENC_DOH for "https://", MPIC_DNS_ENC_NONE otherwise
 * (a plain IP[:PORT] entry). */
int mpic_dns_enc_scheme(const char *entry);

struct mpic_dns_enc_config {
    const char *entry;      /* "tls://..." or "https://..." */
    const char *ca_file;    /* PEM CA bundle; NULL: the system trust store */
    int connect_timeout_ms; /* bound on TCP connect + TLS handshake, > 0 */
    const char *source_ipv4, *source_ipv6, *interface; /* optional */
};

int mpic_dns_enc_new(struct event_base *base, const struct mpic_dns_enc_config *cfg,
                     struct mpic_dns_enc **out, char *err, size_t errlen);
/* Pending queries complete with MPIC_E_CANCELLED before this returns. */
void mpic_dns_enc_free(struct mpic_dns_enc *e);
/* The entry as configured. */
const char *mpic_dns_enc_label(const struct mpic_dns_enc *e);
/* Connections opened so far (DoT: TCP+TLS connections; DoH: requests that
 * did not ride on a kept-alive connection). */
unsigned long mpic_dns_enc_connections(const struct mpic_dns_enc *e);

/*
 * Callback: err is MPIC_OK with the answer msg/len (its ID and question
 * already matched to the query), or a failure kind with a detail. Runs once
 * per query, always from the event loop, unless the query was cancelled.
 */
typedef void (*mpic_dns_enc_cb)(void *arg, enum mpic_err err, const char *detail,
                                const unsigned char *msg, size_t len);

/* Send query (a whole DNS message, len 12..512; its ID is replaced) and
 * wait at most timeout_ms for the answer. Returns 0 and *out, or -1 (bad
 * arguments, out of memory; no callback then). */
int mpic_dns_enc_query_start(struct mpic_dns_enc *e, const unsigned char *query, size_t len,
                             int timeout_ms, mpic_dns_enc_cb cb, void *arg,
                             struct mpic_dns_enc_query **out);
/* Drop a pending query: its callback never runs. */
void mpic_dns_enc_query_cancel(struct mpic_dns_enc_query *q);

#endif
