/*
 * tls.h: the TLS-ALPN probe (RFC 8737) as a Lua-free C module.
 *
 * mpic_tls_probe_start() connects to ip:port on a non-blocking socket driven
 * by the given libevent base, performs a TLS 1.2/1.3 handshake offering only
 * the configured ALPN protocol, captures the negotiated ALPN, the protocol
 * version and the leaf certificate's DER, and closes without sending
 * application data. The callback runs exactly once, always from the event
 * loop (never from inside mpic_tls_probe_start), unless the probe is
 * cancelled first.
 */
#ifndef MPIC_TLS_H
#define MPIC_TLS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mpic_tls_probe;

struct mpic_tls_opts {
    const char *sni;        /* server name to send; NULL or "" sends none */
    const char *alpn;       /* protocol offered; NULL means "acme-tls/1" */
    int connect_timeout_ms; /* <= 0: 10000 */
    int timeout_ms;         /* total, connect + handshake; <= 0: 10000 */
    const char *source_ip;  /* optional local address to bind */
    const char *interface;  /* optional SO_BINDTODEVICE interface */
    int allow_reserved;     /* 0 (the default, also with NULL opts): a destination in a
                               reserved block (netaddr.c) is refused with
                               MPIC_E_RESERVED_ADDRESS before the socket is opened.
                               1: labs only */
};

struct mpic_tls_result {
    int err;          /* 0, or an enum mpic_err kind (errors.h) */
    char detail[256]; /* human text for err, prefixed with "ip: " */
    char alpn[256];   /* negotiated protocol, "" when none */
    int has_alpn;
    char version[32];        /* "TLSv1.3", ... */
    unsigned char *cert_der; /* leaf DER (malloc); the callback may take it and set NULL */
    size_t cert_der_len;
    uint64_t elapsed_ms;
};

typedef void (*mpic_tls_cb)(struct mpic_tls_result *res, void *arg);

/* Start a probe. Returns 0 and sets *out, or a negative value on misuse
 * (bad IP text, port out of range, NULL callback) or resource failure, in
 * which case the callback is never called. */
int mpic_tls_probe_start(struct event_base *base, const char *ip, int port,
                         const struct mpic_tls_opts *opts, mpic_tls_cb cb, void *arg,
                         struct mpic_tls_probe **out);

/* Stop a probe that has not yet called back: frees the SSL object, closes
 * the socket, frees the events. The callback will not be called. */
void mpic_tls_probe_cancel(struct mpic_tls_probe *p);

/* Reverse-DNS name of an IP literal without the trailing dot:
 * "127.0.0.1" -> "1.0.0.127.in-addr.arpa", IPv6 -> 32 nibbles + ".ip6.arpa".
 * Returns 0, or -1 for a non-IP or a short buffer (>= 74 bytes is enough). */
int mpic_tls_reverse_name(const char *ip, char *out, size_t outlen);

/* Free the shared SSL_CTX (at process exit; optional). */
void mpic_tls_shutdown(void);

#endif
