/*
 * test_connect_guard.c: cmocka tests for the reserved-address guard at
 * connect time in core/http.c (CURLOPT_OPENSOCKETFUNCTION) and core/tls.c.
 * Each case points a probe at a TCP listener this test opens on 127.0.0.1
 * and never answers: with the guard on, the probe must fail with
 * MPIC_E_RESERVED_ADDRESS and the listener must have no connection waiting;
 * the same probe with allow_reserved set must reach it (so the listener is
 * known to work and a missing guard would be seen).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "http.h"
#include "tls.h"

struct lab {
    struct event_base *base;
    struct mpic_http *h;
    int fd; /* the listener: non-blocking, never answers */
    int port;
};

static int lab_setup(void **state)
{
    struct lab *l = calloc(1, sizeof *l);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    if (!l)
        return -1;
    l->base = event_base_new();
    if (!l->base || mpic_http_new(l->base, 0, &l->h) != 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(l->fd, 16) != 0 || getsockname(l->fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    l->port = ntohs(sa.sin_port);
    *state = l;
    return 0;
}

static int lab_teardown(void **state)
{
    struct lab *l = *state;
    mpic_http_free(l->h);
    close(l->fd);
    event_base_free(l->base);
    mpic_tls_shutdown();
    free(l);
    return 0;
}

/* Connections that reached the listener since the last call (each closed). */
static int accepted(struct lab *l)
{
    int n = 0, c;
    while (n < 100 && (c = accept(l->fd, NULL, NULL)) >= 0) {
        close(c);
        n++;
    }
    return n;
}

/* Run the loop until *done or ms elapse (bounded). */
static void run_until(struct lab *l, const int *done, int ms)
{
    struct timeval tv = {0, 10000};
    for (int i = 0; i < ms / 10 && !*done; i++) {
        event_base_loopexit(l->base, &tv);
        event_base_dispatch(l->base);
    }
}

/* ---- HTTP ------------------------------------------------------------------- */

struct hout {
    int called;
    enum mpic_err err;
    char detail[320];
};

static void on_http(struct mpic_http_req *req, void *arg)
{
    struct hout *o = arg;
    const struct mpic_http_result *r = mpic_http_result(req);
    o->called = 1;
    o->err = r->err;
    snprintf(o->detail, sizeof o->detail, "%s", r->detail);
    mpic_http_req_free(req);
}

static void http_run(struct lab *l, struct mpic_http_opts *o, struct hout *out)
{
    struct mpic_http_req *req;
    char err[128];
    memset(out, 0, sizeof *out);
    o->timeout_ms = 300;
    assert_int_equal(mpic_http_start(l->h, o, on_http, out, &req, err, sizeof err), 0);
    run_until(l, &out->called, 3000);
    assert_int_equal(out->called, 1);
}

static void http_guard_refuses_loopback_literal(void **state)
{
    struct lab *l = *state;
    struct hout o;
    char url[128], want[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/.well-known/acme-challenge/x", l->port);
    struct mpic_http_opts opt = {.url = url};
    http_run(l, &opt, &o);
    assert_int_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    snprintf(want, sizeof want,
             "127.0.0.1 is in a reserved address block: [RFC1122]: Loopback (refused at connect)");
    assert_string_equal(o.detail, want);
    assert_int_equal(accepted(l), 0);

    /* the same request with the guard lifted (labs) reaches the listener */
    struct mpic_http_opts lab = {.url = url, .allow_reserved = 1};
    http_run(l, &lab, &o);
    assert_int_not_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_int_equal(accepted(l), 1);
}

static void http_guard_sees_the_pinned_address(void **state)
{
    struct lab *l = *state;
    struct hout o;
    char url[128];
    /* a public-looking name pinned to loopback: the guard judges the address */
    snprintf(url, sizeof url, "http://www.example.com:%d/", l->port);
    struct mpic_http_opts opt = {.url = url, .connect_ip = "127.0.0.1"};
    http_run(l, &opt, &o);
    assert_int_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_int_equal(accepted(l), 0);

    /* IPv4-mapped loopback over an IPv6 socket: judged by the IPv4 address */
    struct mpic_http_opts mapped = {.url = url, .connect_ip = "::ffff:127.0.0.1"};
    http_run(l, &mapped, &o);
    assert_int_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_non_null(strstr(o.detail, "[RFC1122]: Loopback"));
    assert_int_equal(accepted(l), 0);

    /* a kept-alive request is vetted too unless it says otherwise */
    struct mpic_http_opts keep = {.url = url, .connect_ip = "127.0.0.1", .keepalive = 1};
    http_run(l, &keep, &o);
    assert_int_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_int_equal(accepted(l), 0);
}

/* ---- TLS-ALPN ----------------------------------------------------------------- */

struct tout {
    int called;
    int err;
    char detail[256];
};

static void on_tls(struct mpic_tls_result *res, void *arg)
{
    struct tout *o = arg;
    o->called = 1;
    o->err = res->err;
    snprintf(o->detail, sizeof o->detail, "%s", res->detail);
}

static void tls_run(struct lab *l, const char *ip, const struct mpic_tls_opts *opts,
                    struct tout *out)
{
    struct mpic_tls_probe *p = NULL;
    memset(out, 0, sizeof *out);
    assert_int_equal(mpic_tls_probe_start(l->base, ip, l->port, opts, on_tls, out, &p), 0);
    assert_int_equal(out->called, 0); /* never synchronous */
    run_until(l, &out->called, 3000);
    assert_int_equal(out->called, 1);
}

static void tls_guard_refuses_loopback(void **state)
{
    struct lab *l = *state;
    struct tout o;
    struct mpic_tls_opts opts = {.sni = "example.com", .timeout_ms = 300};

    tls_run(l, "127.0.0.1", &opts, &o);
    assert_int_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_string_equal(o.detail, "127.0.0.1: in a reserved address block: [RFC1122]: Loopback "
                                  "(refused at connect)");
    assert_int_equal(accepted(l), 0);

    /* no options at all: the guard is on */
    tls_run(l, "127.0.0.1", NULL, &o);
    assert_int_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_int_equal(accepted(l), 0);

    tls_run(l, "::ffff:127.0.0.1", &opts, &o);
    assert_int_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_int_equal(accepted(l), 0);

    /* lifted (labs): the handshake starts, the listener sees the connection */
    struct mpic_tls_opts lab = {.sni = "example.com", .timeout_ms = 300, .allow_reserved = 1};
    tls_run(l, "127.0.0.1", &lab, &o);
    assert_int_not_equal(o.err, MPIC_E_RESERVED_ADDRESS);
    assert_int_equal(accepted(l), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_guard_refuses_loopback_literal),
        cmocka_unit_test(http_guard_sees_the_pinned_address),
        cmocka_unit_test(tls_guard_refuses_loopback),
    };
    return cmocka_run_group_tests_name("connect_guard", tests, lab_setup, lab_teardown);
}
