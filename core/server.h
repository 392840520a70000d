/*
 * server.h: an HTTP/1.1 server on the process event loop (libevent evhttp),
 * optionally over TLS (bufferevent_openssl) with optional required client
 * certificates verified against a CA file. Bounded: request body size (413),
 * requests in flight (503, except the health path), open connections per
 * listener and per client address (refused at accept), the time from accept
 * to a whole request (TLS handshake, head and body: a client that trickles
 * bytes cannot stretch it), idle connection timeout; accept() failing for
 * want of descriptors pauses the listener instead of spinning. Ambiguous
 * request framing (RFC 9112 6.3) gets 400 and the connection is closed.
 * Knows nothing of Lua:
 * every accepted request is handed to a C callback, which owns it until it
 * calls mpic_server_respond() or mpic_server_req_free().
 * Also: a signal watcher on the same loop (SIGTERM, SIGHUP for the service).
 */
#ifndef MPIC_SERVER_H
#define MPIC_SERVER_H

#include <stddef.h>

struct event_base;
struct mpic_server;
struct mpic_server_req;

struct mpic_server_opts {
    const char *address;   /* "127.0.0.1", "::1", "0.0.0.0" */
    int port;              /* 0: an ephemeral port (see mpic_server_port) */
    const char *cert_file; /* PEM; enables TLS (with key_file) */
    const char *key_file;
    const char *client_ca_file; /* PEM CA bundle for client certificates */
    int require_client_cert;    /* 1: handshake fails without a valid client cert */
    size_t max_body;            /* 0: 1 MiB */
    int max_inflight;           /* 0: 1000 */
    int idle_timeout_s;         /* 0: 60 */
    int max_conns;              /* open connections; 0: max(4096, max_inflight + 64) */
    int max_conns_per_addr;     /* from one client address; 0: max(1024, max_inflight + 64) */
    int header_timeout_s;       /* accept -> whole first request; 0: 10 */
    const char *health_path;    /* GET/HEAD of this path pass the in-flight limit; NULL: none */
    int listen_fd;              /* > 2: accept on this listening socket (adopted: closed with the
                                 * server) instead of binding address:port; 0: bind */
};

/* A request as the handler sees it. Strings are NUL-terminated copies. */
struct mpic_server_header {
    char *name; /* lower-cased */
    char *value;
};

struct mpic_server_reqinfo {
    const char *method; /* "GET", "POST", ... */
    char *path;         /* the path of the request URI, as sent (not percent-decoded) */
    char *query;        /* raw query string or NULL */
    struct mpic_server_header *headers;
    size_t n_headers;
    char *body;
    size_t body_len;
    char peer[64];
    int peer_port;
    int tls;    /* 1 when the connection is TLS */
    int health; /* 1 for a GET/HEAD of the health path (exempt from the in-flight limit) */
    char *client_subject; /* RFC 2253 subject of the verified client cert, or NULL */
    char **client_sans;   /* "DNS:name", "URI:...", "IP:..." entries */
    size_t n_client_sans;
};

/* Called once per accepted request; ownership of req passes to the callee. */
typedef void (*mpic_server_cb)(struct mpic_server_req *req, void *arg);

/* Create, bind and start listening. errbuf receives a reason on failure.
 * Returns 0, -EINVAL (bad options / TLS files), -EADDRINUSE-like codes, -ENOMEM. */
int mpic_server_new(struct event_base *base, const struct mpic_server_opts *o, mpic_server_cb cb,
                    void *arg, struct mpic_server **out, char *errbuf, size_t errlen);

/* The bound port (useful with port 0). */
int mpic_server_port(const struct mpic_server *s);

/* Stop accepting connections; requests on open connections get 503 from now
 * on. Requests already accepted stay valid and can still be answered. */
void mpic_server_stop_accepting(struct mpic_server *s);

/* Requests accepted and not yet answered. */
int mpic_server_inflight(const struct mpic_server *s);

/* Counters of the connection guards (since the server started). */
struct mpic_server_stats {
    int conns;                     /* open connections now */
    unsigned long refused_conns;   /* over max_conns or max_conns_per_addr */
    unsigned long deadline_closed; /* no whole request within the deadline */
    unsigned long accept_errors;   /* accept() failures (EMFILE, ENFILE, ...) */
    unsigned long bad_framing;     /* 400 for ambiguous framing */
};
void mpic_server_stats(const struct mpic_server *s, struct mpic_server_stats *out);

/* Answers not yet fully written to their connection (wait for 0, with a
 * bound, before freeing the server, so that drained replies are delivered). */
int mpic_server_sending(const struct mpic_server *s);

/* Free the server: closes every connection. Requests still owned by the
 * caller become dead (respond is then a no-op); free them as usual. */
void mpic_server_free(struct mpic_server *s);

const struct mpic_server_reqinfo *mpic_server_req_info(const struct mpic_server_req *r);

/* 1 when the request can no longer be answered (server freed or the
 * connection is known to be gone). */
int mpic_server_req_dead(const struct mpic_server_req *r);

/* Answer and free the request. headers: n pairs name/value (may be NULL).
 * Returns 0, or -EPIPE when the request was dead (nothing sent). */
int mpic_server_respond(struct mpic_server_req *r, int status, const char *const *headers,
                        size_t n_headers, const char *body, size_t body_len);

/* Free a request without answering it: a live one gets 500. */
void mpic_server_req_free(struct mpic_server_req *r);

/* ---- signals ------------------------------------------------------------- */

struct mpic_signal;
typedef void (*mpic_signal_cb)(int signo, void *arg);

/* Watch signo on the loop; cb runs from the loop (never from the handler). */
int mpic_signal_new(struct event_base *base, int signo, mpic_signal_cb cb, void *arg,
                    struct mpic_signal **out);
void mpic_signal_free(struct mpic_signal *sg);

#endif
