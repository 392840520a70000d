/*
 * test_http.c: cmocka tests for core/http.c (one hop over the libcurl multi
 * socket API on libevent) and core/netaddr.c (strict parsing, reserved
 * blocks). The HTTP cases talk to an evhttp server running on 127.0.0.1 in
 * the same event loop, so no outside server is needed; they lift the
 * reserved-address guard (allow_reserved, as labs do), which
 * test_connect_guard.c tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "netaddr.h"

/* ---- netaddr -------------------------------------------------------------- */

static const char *reserved(const char *text)
{
    struct mpic_addr a;
    assert_int_equal(mpic_netaddr_parse(text, &a), 0);
    return mpic_netaddr_reserved(&a);
}

static void netaddr_reserved_blocks(void **state)
{
    assert_string_equal(reserved("10.10.10.10"), "[RFC1918]: Private-Use");
    assert_string_equal(reserved("127.0.0.1"), "[RFC1122]: Loopback");
    assert_string_equal(reserved("100.127.255.255"), "[RFC6598]: Shared Address Space");
    assert_null(reserved("100.128.0.0"));
    assert_string_equal(reserved("172.31.1.1"), "[RFC1918]: Private-Use");
    assert_null(reserved("172.32.0.1"));
    assert_string_equal(reserved("198.19.255.1"), "[RFC2544]: Benchmarking");
    assert_string_equal(reserved("239.1.1.1"), "[RFC5771]: Multicast Addresses");
    assert_string_equal(reserved("255.255.255.255"), "[RFC8190]: Limited Broadcast");
    assert_string_equal(reserved("0.1.2.3"), "[RFC791]: This network");
    assert_null(reserved("8.8.8.8"));
    assert_null(reserved("192.0.3.1"));
    assert_string_equal(reserved("::1"), "[RFC4291]: Loopback Address");
    assert_string_equal(reserved("::"), "[RFC4291]: Unspecified Address");
    assert_string_equal(reserved("3fff:aaa:aaaa:aaaa:abad:0ff1:cec0:ffee"),
                        "[RFC9637]: Documentation");
    assert_string_equal(reserved("2001:db8::1"), "[RFC3849]: Documentation");
    assert_string_equal(reserved("fe80::1"), "[RFC4291]: Link-Local Unicast");
    assert_string_equal(reserved("fd00::1"), "[RFC4193]: Unique-Local");
    assert_string_equal(reserved("ff02::1"), "[RFC4291]: Multicast Addresses");
    assert_string_equal(reserved("100::5"), "[RFC6666]: Discard-Only Address Block");
    assert_null(reserved("2606:4700::1"));
    assert_null(reserved("2001:4860::8888"));
}

static void netaddr_2001_23_only_special_parts(void **state)
{
    assert_string_equal(reserved("2001:0:1::1"), "[RFC4380]: TEREDO");
    assert_string_equal(reserved("2001:2::9"), "[RFC5180]: Benchmarking");
    assert_string_equal(reserved("2001:100::1"), "[RFC2928]: IETF Protocol Assignments");
    assert_null(reserved("2001:1::1"));   /* PCP anycast: globally reachable */
    assert_null(reserved("2001:3::1"));   /* AMT */
    assert_null(reserved("2001:20::1"));  /* ORCHIDv2 */
    assert_null(reserved("2001:200::1")); /* outside the /23 */
    assert_string_equal(reserved("2001:1::4"), "[RFC2928]: IETF Protocol Assignments");
}

static void netaddr_embedded_ipv4_judged(void **state)
{
    assert_string_equal(reserved("::ffff:10.0.0.1"), "[RFC1918]: Private-Use");
    assert_null(reserved("::ffff:8.8.8.8"));
    assert_string_equal(reserved("64:ff9b::7f00:1"), "[RFC1122]: Loopback");
    assert_null(reserved("64:ff9b::808:808"));
    assert_string_equal(reserved("64:ff9b:1::1"), "[RFC8215]: IPv4-IPv6 Translat.");
}

static void netaddr_parse_is_strict(void **state)
{
    struct mpic_addr a;
    char buf[64];
    assert_int_equal(mpic_netaddr_parse("1.2.00.3", &a), -EINVAL);
    assert_int_equal(mpic_netaddr_parse("01.2.3.4", &a), -EINVAL);
    assert_int_equal(mpic_netaddr_parse("1.2.3", &a), -EINVAL);
    assert_int_equal(mpic_netaddr_parse("[::1]", &a), -EINVAL);
    assert_int_equal(mpic_netaddr_parse("fe80::1%lo", &a), -EINVAL);
    assert_int_equal(mpic_netaddr_parse("example.com", &a), -EINVAL);
    assert_int_equal(mpic_netaddr_parse("2001:DB8:0:0::1", &a), 0);
    assert_int_equal(a.family, 6);
    assert_int_equal(mpic_netaddr_format(&a, buf, sizeof buf), 0);
    assert_string_equal(buf, "2001:db8::1");
    assert_int_equal(mpic_netaddr_parse("192.0.2.7", &a), 0);
    assert_int_equal(a.family, 4);
}

static void netaddr_sockaddr_from_literal(void **state)
{
    struct sockaddr_storage ss;
    unsigned int len = 0;
    assert_int_equal(mpic_netaddr_sockaddr("192.0.2.7", 443, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
    assert_int_equal(ntohs(s4->sin_port), 443);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xc0000207u);
    assert_int_equal(mpic_netaddr_sockaddr("2001:db8::5", 0, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(((const struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[15], 5);
    /* the same strictness as mpic_netaddr_parse, and a port range */
    assert_int_equal(mpic_netaddr_sockaddr("01.2.3.4", 80, &ss, &len), -EINVAL);
    assert_int_equal(mpic_netaddr_sockaddr("[::1]", 80, &ss, &len), -EINVAL);
    assert_int_equal(mpic_netaddr_sockaddr("192.0.2.7", 65536, &ss, &len), -EINVAL);
    assert_int_equal(mpic_netaddr_sockaddr("192.0.2.7", -1, &ss, &len), -EINVAL);
}

static void netaddr_icann_suffix_from_psl(void **state)
{
    char buf[256];
    assert_int_equal(mpic_netaddr_icann_suffix("cpu.letsencrypt.org", buf, sizeof buf), 0);
    assert_string_equal(buf, "org");
    assert_int_equal(mpic_netaddr_icann_suffix("www.example.co.uk", buf, sizeof buf), 0);
    assert_string_equal(buf, "co.uk");
    assert_int_equal(mpic_netaddr_icann_suffix("foo.github.io", buf, sizeof buf), 0);
    assert_string_equal(buf, "io"); /* github.io is in the PRIVATE section */
    assert_int_equal(mpic_netaddr_icann_suffix("my.tld.is.cpu", buf, sizeof buf), -ENOENT);
    assert_int_equal(mpic_netaddr_icann_suffix("invalid.invalid", buf, sizeof buf), -ENOENT);
    assert_int_equal(mpic_netaddr_icann_suffix("example.test", buf, sizeof buf), -ENOENT);
    assert_int_equal(mpic_netaddr_icann_suffix("x.well-known", buf, sizeof buf), -ENOENT);
}

static void netaddr_deprecated_v6_forms_refused(void **state)
{
    /* IPv4-compatible ::/96 (the unspecified and loopback addresses keep
     * their own entries) */
    assert_string_equal(reserved("::8.8.8.8"),
                        "[RFC4291]: Deprecated (IPv4-Compatible IPv6 Address, ::/96)");
    assert_string_equal(reserved("::7f00:1"),
                        "[RFC4291]: Deprecated (IPv4-Compatible IPv6 Address, ::/96)");
    assert_string_equal(reserved("::1"), "[RFC4291]: Loopback Address");
    assert_string_equal(reserved("::"), "[RFC4291]: Unspecified Address");
    assert_null(reserved("0:0:0:1::8.8.8.8")); /* /96 only: a bit outside it is ordinary */
    /* SIIT ::ffff:0:0:0/96 */
    assert_string_equal(reserved("::ffff:0:8.8.8.8"),
                        "[RFC2765]: Deprecated (SIIT IPv4-Translated Address, ::ffff:0:0:0/96)");
    assert_string_equal(reserved("::ffff:0:0:0"),
                        "[RFC2765]: Deprecated (SIIT IPv4-Translated Address, ::ffff:0:0:0/96)");
    assert_null(reserved("::1:ffff:0:808:808"));
    /* the mapped form is still judged by its IPv4 address */
    assert_null(reserved("::ffff:8.8.8.8"));
    /* site-local fec0::/10: fec0:: .. feff:... */
    assert_string_equal(reserved("fec0::1"),
                        "[RFC3879]: Deprecated (Site-Local Unicast, fec0::/10)");
    assert_string_equal(reserved("feff:ffff::1"),
                        "[RFC3879]: Deprecated (Site-Local Unicast, fec0::/10)");
    assert_string_equal(reserved("febf::1"), "[RFC4291]: Link-Local Unicast");
}

static void netaddr_sockaddr_classified(void **state)
{
    char text[64];
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "127.0.1.1", &s4.sin_addr);
    assert_string_equal(mpic_netaddr_sockaddr_reserved((struct sockaddr *)&s4, text, sizeof text),
                        "[RFC1122]: Loopback");
    assert_string_equal(text, "127.0.1.1");
    inet_pton(AF_INET, "8.8.4.4", &s4.sin_addr);
    assert_null(mpic_netaddr_sockaddr_reserved((struct sockaddr *)&s4, text, sizeof text));
    assert_string_equal(text, "8.8.4.4");
    inet_pton(AF_INET6, "::ffff:169.254.169.254", &s6.sin6_addr);
    assert_string_equal(mpic_netaddr_sockaddr_reserved((struct sockaddr *)&s6, text, sizeof text),
                        "[RFC3927]: Link Local");
    inet_pton(AF_INET6, "fec0::5", &s6.sin6_addr);
    assert_string_equal(mpic_netaddr_sockaddr_reserved((struct sockaddr *)&s6, text, sizeof text),
                        "[RFC3879]: Deprecated (Site-Local Unicast, fec0::/10)");
    assert_string_equal(text, "fec0::5");
    inet_pton(AF_INET6, "2606:4700::1111", &s6.sin6_addr);
    assert_null(mpic_netaddr_sockaddr_reserved((struct sockaddr *)&s6, text, sizeof text));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_non_null(mpic_netaddr_sockaddr_reserved(&un, text, sizeof text));
}

static void netaddr_icann_suffix_trailing_dot(void **state)
{
    char buf[256];
    /* one trailing dot is dropped first, so it cannot stand for a suffix */
    assert_int_equal(mpic_netaddr_icann_suffix("localhost.", buf, sizeof buf), -ENOENT);
    assert_int_equal(mpic_netaddr_icann_suffix("metadata.google.internal.", buf, sizeof buf),
                     -ENOENT);
    assert_int_equal(mpic_netaddr_icann_suffix("127.0.0.1.", buf, sizeof buf), -ENOENT);
    assert_int_equal(mpic_netaddr_icann_suffix("example.com..", buf, sizeof buf), -ENOENT);
    assert_int_equal(mpic_netaddr_icann_suffix("Example.COM.", buf, sizeof buf), 0);
    assert_string_equal(buf, "com");
}

static int vet(const char *host, char *why)
{
    char suffix[256];
    return mpic_netaddr_vet_name(host, suffix, sizeof suffix, why, 320);
}

static void netaddr_vet_name(void **state)
{
    char why[320], suffix[256];
    assert_int_equal(
        mpic_netaddr_vet_name("www.Example.co.uk.", suffix, sizeof suffix, why, sizeof why), 0);
    assert_string_equal(suffix, "co.uk");
    assert_int_equal(vet("example.com", why), 0); /* RFC 6761 6.5: an ordinary name */
    assert_int_equal(vet("foo.github.io", why), 0);

    /* special-use, with the registry entry as the reason */
    assert_int_equal(vet("localhost", why), -EPERM);
    assert_string_equal(why, "special-use name: [RFC6761]: localhost (loopback)");
    assert_int_equal(vet("localhost.", why), -EPERM);
    assert_int_equal(vet("a.b.LOCALHOST", why), -EPERM);
    assert_int_equal(vet("secret.corp.internal", why), -EPERM);
    assert_string_equal(why,
                        "special-use name: [ICANN 2024]: internal (private-use top-level domain)");
    assert_int_equal(vet("metadata.google.internal.", why), -EPERM);
    assert_int_equal(vet("printer.local", why), -EPERM);
    assert_non_null(strstr(why, "[RFC6762]"));
    assert_int_equal(vet("abc.onion", why), -EPERM); /* onion is in the PSL's ICANN section */
    assert_non_null(strstr(why, "[RFC7686]"));
    assert_int_equal(vet("nas.home.arpa", why), -EPERM);
    assert_non_null(strstr(why, "[RFC8375]"));
    assert_int_equal(vet("x.alt", why), -EPERM);
    assert_non_null(strstr(why, "[RFC9476]"));
    assert_int_equal(vet("shop.test", why), -EPERM);
    assert_int_equal(vet("invalid.invalid", why), -EPERM);
    assert_int_equal(vet("www.example", why), -EPERM);
    assert_int_equal(vet("ipv4only.arpa", why), -EPERM);
    assert_int_equal(vet("1.0.0.127.in-addr.arpa", why), -EPERM);
    assert_non_null(strstr(why, "[RFC3172]"));
    /* a label merely ending like a special name is not one */
    assert_int_equal(vet("notlocalhost.com", why), 0);
    assert_int_equal(vet("mytest.org", why), 0);

    /* no ICANN public suffix */
    assert_int_equal(vet("my.tld.is.cpu", why), -ENOENT);
    assert_int_equal(vet("corp.lan", why), -ENOENT);
    /* a bare suffix is not a name below one */
    assert_int_equal(vet("co.uk", why), -EEXIST);
    assert_int_equal(vet("com.", why), -EEXIST);
    /* malformed, numeric */
    assert_int_equal(vet("127.0.0.1.", why), -EINVAL);
    assert_non_null(strstr(why, "numeric"));
    assert_int_equal(vet("example.com..", why), -EINVAL);
    assert_int_equal(vet(".", why), -EINVAL);
    assert_int_equal(vet("", why), -EINVAL);
    assert_int_equal(vet("a..com", why), -EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof longname);
    for (int i = 63; i < 290; i += 64)
        longname[i] = '.';
    memcpy(longname + 290, ".com", 5);
    assert_int_equal(vet(longname, why), -EINVAL); /* 294 octets */
    assert_non_null(strstr(why, "253"));
}

/* ---- an evhttp server in the same loop -------------------------------------- */

struct lab {
    struct event_base *base;
    struct evhttp *srv;
    struct mpic_http *h;
    int port;    /* evhttp */
    int mute_fd; /* listens, never answers */
    int mute_port;
    int closed_port; /* nothing listens */
};

struct outcome {
    int called;
    struct mpic_http_req *req;
};

static void on_done(struct mpic_http_req *req, void *arg)
{
    struct outcome *o = arg;
    o->called++;
    o->req = req;
}

static void h_ok(struct evhttp_request *r, void *arg)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "hello");
    evhttp_add_header(evhttp_request_get_output_headers(r), "X-Test", "One");
    evhttp_send_reply(r, 200, "OK", b);
    evbuffer_free(b);
}

static void h_gone(struct evhttp_request *r, void *arg) { evhttp_send_reply(r, 410, "Gone", NULL); }

static void h_big(struct evhttp_request *r, void *arg)
{
    struct evbuffer *b = evbuffer_new();
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100; i++)
        evbuffer_add(b, chunk, sizeof chunk);
    evhttp_send_reply(r, 200, "OK", b);
    evbuffer_free(b);
}

static void h_redir(struct evhttp_request *r, void *arg)
{
    evhttp_add_header(evhttp_request_get_output_headers(r), "Location", "/ok?x=1");
    evhttp_send_reply(r, 302, "Found", NULL);
}

/* Echo the request headers the probe sent, one "name=value" per line. */
static void h_echo(struct evhttp_request *r, void *arg)
{
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *in = evhttp_request_get_input_headers(r);
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        evbuffer_add_printf(b, "%s=%s\n", kv->key, kv->value);
    evhttp_send_reply(r, 200, "OK", b);
    evbuffer_free(b);
}

static int tcp_listener(int *port, int do_listen)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        (do_listen && listen(fd, 16) != 0) || getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

static int lab_setup(void **state)
{
    struct lab *l = calloc(1, sizeof *l);
    l->base = event_base_new();
    l->srv = evhttp_new(l->base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(l->srv, "127.0.0.1", 0);
    if (!bs)
        return -1;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
    l->port = ntohs(sa.sin_port);
    evhttp_set_cb(l->srv, "/ok", h_ok, NULL);
    evhttp_set_cb(l->srv, "/gone", h_gone, NULL);
    evhttp_set_cb(l->srv, "/big", h_big, NULL);
    evhttp_set_cb(l->srv, "/redir", h_redir, NULL);
    evhttp_set_cb(l->srv, "/echo", h_echo, NULL);
    l->mute_fd = tcp_listener(&l->mute_port, 1);
    int cfd = tcp_listener(&l->closed_port, 0);
    close(cfd);
    if (l->mute_fd < 0 || mpic_http_new(l->base, 0, &l->h) != 0)
        return -1;
    *state = l;
    return 0;
}

static int lab_teardown(void **state)
{
    struct lab *l = *state;
    mpic_http_free(l->h);
    evhttp_free(l->srv);
    close(l->mute_fd);
    event_base_free(l->base);
    free(l);
    return 0;
}

/* Run the loop until o->called or ms elapse (bounded). */
static void run_until(struct lab *l, struct outcome *o, int ms)
{
    struct timeval tv = {0, 10000};
    for (int i = 0; i < ms / 10 && (!o || !o->called); i++) {
        event_base_loopexit(l->base, &tv);
        event_base_dispatch(l->base);
    }
}

static const struct mpic_http_result *get(struct lab *l, const char *path, struct mpic_http_opts *o,
                                          struct outcome *out)
{
    char url[256], err[128];
    struct mpic_http_req *req;
    struct mpic_http_opts d = {.allow_reserved = 1};
    if (!o)
        o = &d;
    if (!o->url) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", l->port, path);
        o->url = url;
    }
    memset(out, 0, sizeof *out);
    assert_int_equal(mpic_http_start(l->h, o, on_done, out, &req, err, sizeof err), 0);
    assert_int_equal(out->called, 0); /* never synchronous */
    run_until(l, out, 5000);
    assert_int_equal(out->called, 1);
    assert_ptr_equal(out->req, req);
    return mpic_http_result(req);
}

static void http_200_with_headers(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    const struct mpic_http_result *r = get(l, "/ok", NULL, &o);
    assert_int_equal(r->err, MPIC_OK);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->reason, "OK");
    assert_int_equal(r->body_len, 5);
    assert_memory_equal(r->body, "hello", 5);
    assert_int_equal(r->exceeded, 0);
    assert_string_equal(r->ip, "127.0.0.1");
    assert_int_equal(r->port, l->port);
    assert_string_equal(r->http_version, "1.1");
    int seen = 0;
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, "x-test") == 0 && strcmp(r->headers[i].value, "One") == 0)
            seen = 1;
    assert_true(seen);
    mpic_http_req_free(o.req);
}

static void http_410_is_a_response(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    const struct mpic_http_result *r = get(l, "/gone", NULL, &o);
    assert_int_equal(r->err, MPIC_OK);
    assert_int_equal(r->status, 410);
    assert_string_equal(r->reason, "Gone");
    mpic_http_req_free(o.req);
}

static void http_redirect_not_followed(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    const struct mpic_http_result *r = get(l, "/redir", NULL, &o);
    assert_int_equal(r->status, 302);
    assert_non_null(r->location);
    assert_string_equal(r->location, "/ok?x=1");
    mpic_http_req_free(o.req);
}

static void http_body_cap_exceeded(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    struct mpic_http_opts opt = {.allow_reserved = 1, .max_bytes = 128};
    const struct mpic_http_result *r = get(l, "/big", &opt, &o);
    assert_int_equal(r->err, MPIC_OK);
    assert_int_equal(r->exceeded, 1);
    assert_int_equal(r->body_len, 128);
    mpic_http_req_free(o.req);

    struct mpic_http_opts exact = {.allow_reserved = 1, .max_bytes = 100000};
    r = get(l, "/big", &exact, &o);
    assert_int_equal(r->exceeded, 0);
    assert_int_equal(r->body_len, 100000);
    mpic_http_req_free(o.req);
}

static void http_pinned_address_and_headers_sent(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    char url[128];
    const char *hdrs[] = {"X-A: b", "Host: evil.example", "Connection: keep-alive"};
    snprintf(url, sizeof url, "http://www.example.com:%d/echo", l->port);
    struct mpic_http_opts opt = {.allow_reserved = 1,
                                 .url = url,
                                 .connect_ip = "127.0.0.1",
                                 .headers = hdrs,
                                 .n_headers = 3,
                                 .user_agent = "mpic-test/1"};
    const struct mpic_http_result *r = get(l, NULL, &opt, &o);
    assert_int_equal(r->err, MPIC_OK);
    assert_int_equal(r->status, 200);
    char want[128];
    snprintf(want, sizeof want, "Host=www.example.com:%d\n", l->port);
    assert_non_null(strstr(r->body, want));
    assert_non_null(strstr(r->body, "User-Agent=mpic-test/1\n"));
    assert_non_null(strstr(r->body, "X-A=b\n"));
    assert_non_null(strstr(r->body, "Accept=*/*\n"));
    assert_non_null(strstr(r->body, "Connection=close\n"));
    assert_null(strstr(r->body, "evil"));
    assert_null(strstr(r->body, "keep-alive"));
    mpic_http_req_free(o.req);
}

static void http_name_without_connect_ip_refused(void **state)
{
    struct lab *l = *state;
    struct outcome o = {0};
    struct mpic_http_req *req = NULL;
    char err[128];
    struct mpic_http_opts opt = {.allow_reserved = 1, .url = "http://www.example.com/"};
    assert_int_equal(mpic_http_start(l->h, &opt, on_done, &o, &req, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "connect_ip"));
    opt.url = "ftp://127.0.0.1/";
    assert_int_equal(mpic_http_start(l->h, &opt, on_done, &o, &req, err, sizeof err), -EINVAL);
    opt.url = "http://127.0.0.1/";
    const char *bad[] = {"X-A: b\r\nX-B: c"};
    opt.headers = bad;
    opt.n_headers = 1;
    assert_int_equal(mpic_http_start(l->h, &opt, on_done, &o, &req, err, sizeof err), -EINVAL);
    assert_null(req);
}

static void http_connection_refused(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    char url[128], want[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", l->closed_port);
    struct mpic_http_opts opt = {.allow_reserved = 1, .url = url};
    const struct mpic_http_result *r = get(l, NULL, &opt, &o);
    assert_int_equal(r->err, MPIC_E_CONNECT);
    snprintf(want, sizeof want, "connect: Connection refused (127.0.0.1:%d)", l->closed_port);
    assert_string_equal(r->detail, want);
    mpic_http_req_free(o.req);
}

static void http_timeout_after_connect(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", l->mute_port);
    struct mpic_http_opts opt = {.allow_reserved = 1, .url = url, .timeout_ms = 300};
    const struct mpic_http_result *r = get(l, NULL, &opt, &o);
    assert_int_equal(r->err, MPIC_E_TIMEOUT);
    assert_non_null(strstr(r->detail, "Timeout after connect"));
    mpic_http_req_free(o.req);
}

/* A listener whose accept queue is full: further SYNs go unanswered. */
static void http_timeout_during_connect(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    char url[128];
    int port, fill[4];
    int fd = tcp_listener(&port, 0);
    assert_true(fd >= 0);
    assert_int_equal(listen(fd, 0), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct mpic_http_opts opt = {
        .allow_reserved = 1, .url = url, .connect_timeout_ms = 300, .timeout_ms = 2000};
    const struct mpic_http_result *r = get(l, NULL, &opt, &o);
    assert_int_equal(r->err, MPIC_E_TIMEOUT);
    assert_non_null(strstr(r->detail, "Timeout during connect (likely firewall problem)"));
    mpic_http_req_free(o.req);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(fd);
}

static void http_plain_http_on_tls_port(void **state)
{
    struct lab *l = *state;
    struct outcome o;
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/ok", l->port);
    struct mpic_http_opts opt = {.allow_reserved = 1, .url = url};
    const struct mpic_http_result *r = get(l, NULL, &opt, &o);
    assert_int_equal(r->err, MPIC_E_PROTOCOL);
    assert_non_null(strstr(r->detail, "Server only speaks HTTP, not TLS"));
    mpic_http_req_free(o.req);
}

static void http_cancel_in_flight_no_callback(void **state)
{
    struct lab *l = *state;
    struct outcome o = {0};
    struct mpic_http_req *req;
    char url[128], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", l->mute_port);
    struct mpic_http_opts opt = {.allow_reserved = 1, .url = url, .timeout_ms = 200};
    assert_int_equal(mpic_http_start(l->h, &opt, on_done, &o, &req, err, sizeof err), 0);
    run_until(l, NULL, 50); /* connected and waiting */
    assert_int_equal(mpic_http_active(l->h), 1);
    mpic_http_req_free(req);
    assert_int_equal(mpic_http_active(l->h), 0);
    run_until(l, NULL, 400); /* past the timeout: nothing may fire */
    assert_int_equal(o.called, 0);
}

static void http_many_concurrent(void **state)
{
    struct lab *l = *state;
    enum { N = 200 };
    struct outcome o[N];
    struct mpic_http_req *req[N];
    char url[128], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", l->port);
    struct mpic_http_opts opt = {.allow_reserved = 1, .url = url};
    memset(o, 0, sizeof o);
    for (int i = 0; i < N; i++)
        assert_int_equal(mpic_http_start(l->h, &opt, on_done, &o[i], &req[i], err, sizeof err), 0);
    for (int round = 0; round < 1000; round++) {
        int done = 0;
        for (int i = 0; i < N; i++)
            done += o[i].called;
        if (done == N)
            break;
        run_until(l, NULL, 10);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].called, 1);
        assert_int_equal(mpic_http_result(req[i])->status, 200);
        mpic_http_req_free(req[i]);
    }
}

int main(void)
{
    const struct CMUnitTest addr_tests[] = {
        cmocka_unit_test(netaddr_reserved_blocks),
        cmocka_unit_test(netaddr_2001_23_only_special_parts),
        cmocka_unit_test(netaddr_embedded_ipv4_judged),
        cmocka_unit_test(netaddr_parse_is_strict),
        cmocka_unit_test(netaddr_sockaddr_from_literal),
        cmocka_unit_test(netaddr_icann_suffix_from_psl),
        cmocka_unit_test(netaddr_deprecated_v6_forms_refused),
        cmocka_unit_test(netaddr_sockaddr_classified),
        cmocka_unit_test(netaddr_icann_suffix_trailing_dot),
        cmocka_unit_test(netaddr_vet_name),
    };
    const struct CMUnitTest http_tests[] = {
        cmocka_unit_test(http_200_with_headers),
        cmocka_unit_test(http_410_is_a_response),
        cmocka_unit_test(http_redirect_not_followed),
        cmocka_unit_test(http_body_cap_exceeded),
        cmocka_unit_test(http_pinned_address_and_headers_sent),
        cmocka_unit_test(http_name_without_connect_ip_refused),
        cmocka_unit_test(http_connection_refused),
        cmocka_unit_test(http_timeout_after_connect),
        cmocka_unit_test(http_timeout_during_connect),
        cmocka_unit_test(http_plain_http_on_tls_port),
        cmocka_unit_test(http_cancel_in_flight_no_callback),
        cmocka_unit_test(http_many_concurrent),
    };
    int failed = cmocka_run_group_tests_name("netaddr", addr_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("http", http_tests, lab_setup, lab_teardown);
    return failed ? 1 : 0;
}
