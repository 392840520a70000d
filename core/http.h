/*
 * http.h: one HTTP(S) request hop on the process event loop (libcurl multi
 * socket API driven by libevent). No redirects are followed here; the
 * redirect policy lives in lua/mpic/fetch.lua. This module knows nothing of
 * Lua: callers pass an event_base and a C completion callback.
 */
#ifndef MPIC_HTTP_H
#define MPIC_HTTP_H

#include <stddef.h>

#include "errors.h"

struct event_base;
struct mpic_http;     /* one per event loop: the CURLM and its events */
struct mpic_http_req; /* one request hop */

struct mpic_http_opts {
    const char *url;            /* http:// or https:// only */
    const char *connect_ip;     /* required when the URL host is a name */
    long connect_port;          /* 0: the URL's port; else connect here (labs) */
    int system_resolver;        /* a name host without connect_ip is resolved by curl
                                   (the CA's own infrastructure only, e.g. agents) */
    const char *const *headers; /* "Name: value" lines, n_headers of them */
    size_t n_headers;
    const char *user_agent;  /* NULL: no User-Agent unless in headers */
    long connect_timeout_ms; /* 0: 10000 */
    long timeout_ms;         /* whole hop; 0: 10000 */
    size_t max_bytes;        /* body cap; 0: 1 MiB */
    const char *source_ip;   /* bind address, or NULL */
    const char *interface;   /* bind interface name, or NULL */
    int verify_tls;          /* 0: certificates are not verified */
    /* requests other than a plain GET (the agent channel) */
    const char *method; /* NULL: GET; "POST", ... */
    const char *body;   /* request body (copied at start), or NULL */
    size_t body_len;
    const char *ca_file;   /* PEM: verify the server against this CA only (with verify_tls) */
    const char *cert_file; /* PEM client certificate (mutual TLS), with key_file */
    const char *key_file;
    const char *pinned_key; /* "sha256//BASE64[;sha256//...]": the server's public key must
                               be one of these (CURLOPT_PINNEDPUBLICKEY), or NULL */
    int keepalive;          /* 1: the connection may be reused by a later keepalive
                              request (never by a probe, which always connects afresh) */
    int allow_reserved;     /* 0 (the default): the address of every connection is
                              checked when the socket is opened, and one in a reserved
                              block (netaddr.c) is refused with MPIC_E_RESERVED_ADDRESS
                              before any packet is sent. 1: labs, and the agent channel
                              (the CA's own infrastructure, not a probe) */
    int http2;              /* 1: HTTP/2 over TLS where the server offers it (ALPN), a
                              request waiting to share (multiplex) a connection being set
                              up rather than opening another; HTTP/1.1 otherwise. 0: HTTP/1.1
                              only (every probe) */
};

struct mpic_http_header {
    char *name; /* lower-cased */
    char *value;
};

struct mpic_http_result {
    enum mpic_err err; /* MPIC_OK when a response was received */
    char detail[320];  /* failure detail, "" on success */
    long status;
    char *reason;
    struct mpic_http_header *headers;
    size_t n_headers;
    const char *location; /* points into headers, or NULL */
    char *body;           /* NUL-terminated for convenience; body_len bytes */
    size_t body_len;
    int exceeded; /* more than max_bytes body bytes arrived */
    char ip[64];  /* address actually connected to */
    long port;
    long elapsed_ms;
    const char *http_version; /* "1.0", "1.1", "2" or "" */
    int reused;               /* 1: answered on a kept-alive connection */
};

typedef void (*mpic_http_cb)(struct mpic_http_req *req, void *arg);

/* Create/free a per-loop context. Freeing cancels pending requests (their
 * callbacks are not called). A context opens at most max_host_connections
 * (<= 0: HTTP_DEFAULT_HOST_CONNECTIONS) connections to one host and port at
 * once; further requests to it wait for one of them. */
#define HTTP_DEFAULT_HOST_CONNECTIONS 256L
int mpic_http_new(struct event_base *base, long max_host_connections, struct mpic_http **out);
void mpic_http_set_max_host_connections(struct mpic_http *h, long n);

/* The owner no longer wants the result (a cancelled check). Like
 * mpic_http_req_free, except that a keepalive request whose request has been
 * sent finishes in the background (within its timeout), so that its
 * connection stays reusable; it is freed then, without a callback. */
void mpic_http_req_abandon(struct mpic_http_req *q);
void mpic_http_free(struct mpic_http *h);

/*
 * Validate the options and start a request. On success *out is the request
 * and cb(req, arg) is called later, exactly once, from the event loop (never
 * from inside mpic_http_start), unless the request is cancelled first. After
 * the callback the owner reads mpic_http_result() and frees the request with
 * mpic_http_req_free(). Returns -EINVAL for bad options (with a message in
 * errbuf), -ENOMEM, or another negative code.
 */
int mpic_http_start(struct mpic_http *h, const struct mpic_http_opts *o, mpic_http_cb cb, void *arg,
                    struct mpic_http_req **out, char *errbuf, size_t errlen);

const struct mpic_http_result *mpic_http_result(const struct mpic_http_req *req);

/* Stop a request (pending or finished) and free it; no callback afterwards. */
void mpic_http_req_free(struct mpic_http_req *req);

/* A URL split by libcurl's URL parser. Strings are malloc'd (NULL when
 * absent); host is lower-cased and without IPv6 brackets. */
struct mpic_url {
    char *url; /* the whole URL, normalised, with the lower-cased host */
    char *scheme;
    char *host;
    char *zone;
    char *path;
    char *query;
    long port;         /* explicit port, or the scheme's default */
    int port_explicit; /* 1 when the URL names a port */
    int host_is_ip;    /* 4 or 6 for an IP literal, else 0 */
};

enum mpic_url_status {
    MPIC_URL_OK = 0,
    MPIC_URL_MALFORMED = -1,
    MPIC_URL_NO_HOST = -2,
    MPIC_URL_BAD_HOST = -3, /* invalid host name or IPv6 literal */
    MPIC_URL_NOMEM = -4,
};

/* Parse url, resolved against base when base is not NULL. Any scheme is
 * accepted here (the caller decides). Returns an mpic_url_status. */
int mpic_http_url_parse(const char *base, const char *url, struct mpic_url *out);
void mpic_http_url_clear(struct mpic_url *u);

/* Number of requests in flight (for tests and metrics). */
size_t mpic_http_active(const struct mpic_http *h);

#endif
