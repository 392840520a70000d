/*
 * test_dns_wire.c: unit tests for dns_wire.c (query building, reply parsing,
 * name validation). Replies are assembled byte by byte by a small builder
 * below; a mutation loop checks that damaged messages never crash the parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns_wire.h"

struct msg {
    unsigned char b[4096];
    size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void put8(struct msg *m, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(m, &c, 1);
}
static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}
static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}
/* uncompressed name from dotted text ("" = root) */
static void putname(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)l);
        put(m, name, l);
        name += l + (dot ? 1 : 0);
    }
    put8(m, 0);
}

/* header + question; flags3 holds RA/AD/CD/rcode */
static void start(struct msg *m, unsigned flags2, unsigned flags3, unsigned an, unsigned ns,
                  unsigned ar, const char *qname, unsigned qtype)
{
    m->n = 0;
    put16(m, 0x1234);
    put8(m, 0x80 | flags2);
    put8(m, flags3);
    put16(m, 1);
    put16(m, an);
    put16(m, ns);
    put16(m, ar);
    putname(m, qname);
    put16(m, qtype);
    put16(m, 1);
}

/* RR header with a compression pointer to the question name (offset 12) */
static void rr_hdr_ptr(struct msg *m, unsigned type, uint32_t ttl, unsigned rdlen)
{
    put16(m, 0xc00c);
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    put16(m, rdlen);
}
static void rr_hdr(struct msg *m, const char *owner, unsigned type, uint32_t ttl, unsigned rdlen)
{
    putname(m, owner);
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    put16(m, rdlen);
}
static unsigned name_len(const char *n) { return (unsigned)strlen(n) + (*n ? 2 : 1); }

static void test_build_query_flags(void **state)
{
    unsigned char b[512];
    int n = mpic_dns_wire_build_query("Www.Example.", MPIC_DNS_T_TXT, 0xabcd, b, sizeof b);
    assert_int_equal(n, 12 + 13 + 4 + 11);
    assert_int_equal(b[0], 0xab);
    assert_int_equal(b[2], 0x01); /* RD only */
    assert_int_equal(b[3], 0x20); /* AD set, CD clear */
    assert_int_equal(b[5], 1);    /* one question */
    assert_int_equal(b[11], 1);   /* one additional: OPT */
    assert_memory_equal(b + 12, "\003Www\007Example\000", 13);
    assert_int_equal(b[12 + 13 + 1], 16);     /* qtype TXT */
    assert_int_equal(b[12 + 13 + 4 + 2], 41); /* OPT */
    assert_int_equal((b[12 + 13 + 4 + 3] << 8) | b[12 + 13 + 4 + 4], 4096);
    assert_int_equal(b[12 + 13 + 4 + 6], 0); /* DO=0 (TTL bytes) */
    assert_int_equal(b[12 + 13 + 4 + 7], 0);
    assert_int_equal(mpic_dns_wire_build_query("a..b", 1, 1, b, sizeof b), -1);
    assert_int_equal(mpic_dns_wire_build_query("example", 1, 1, b, 20), -1);
    /* DS queries ask for the DNSSEC records (DO=1): a denial brings its NSEC */
    n = mpic_dns_wire_build_query("Www.Example.", MPIC_DNS_T_DS, 1, b, sizeof b);
    assert_int_equal(n, 12 + 13 + 4 + 11);
    assert_int_equal(b[12 + 13 + 1], 43);
    assert_int_equal(b[12 + 13 + 4 + 7], 0x80); /* DO */
    assert_int_equal(b[12 + 13 + 4 + 8], 0);
}

static void test_bitmap_parse(void **state)
{
    uint16_t t[8];
    size_t n = 99;
    /* NS(2) RRSIG(46) NSEC(47) in window 0, CAA(257) in window 1 */
    static const unsigned char ok[] = {0, 6, 0x20, 0, 0, 0, 0, 0x03, 1, 1, 0x40};
    static const unsigned char order[] = {1, 1, 0x40, 0, 1, 0x20};
    static const unsigned char dup[] = {0, 1, 0x20, 0, 1, 0x40};
    static const unsigned char trunc1[] = {0, 6, 0x20, 0, 0};
    static const unsigned char trunc2[] = {0, 1, 0x20, 1};
    static const unsigned char zero_len[] = {0, 0};
    static const unsigned char too_long[34] = {0, 33, 0x20};
    static const unsigned char padded[] = {0, 2, 0x20, 0};
    static const unsigned char many[] = {0, 2, 0xff, 0xff};
    (void)state;

    assert_int_equal(mpic_dns_bitmap_parse(ok, sizeof ok, t, 8, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(t[0], MPIC_DNS_T_NS);
    assert_int_equal(t[1], MPIC_DNS_T_RRSIG);
    assert_int_equal(t[2], MPIC_DNS_T_NSEC);
    assert_int_equal(t[3], MPIC_DNS_T_CAA);
    assert_int_equal(mpic_dns_bitmap_parse(ok, 0, t, 8, &n), -1); /* empty */
    assert_int_equal(mpic_dns_bitmap_parse(order, sizeof order, t, 8, &n), -1);
    assert_int_equal(mpic_dns_bitmap_parse(dup, sizeof dup, t, 8, &n), -1);
    assert_int_equal(mpic_dns_bitmap_parse(trunc1, sizeof trunc1, t, 8, &n), -1);
    assert_int_equal(mpic_dns_bitmap_parse(trunc2, sizeof trunc2, t, 8, &n), -1);
    assert_int_equal(mpic_dns_bitmap_parse(zero_len, sizeof zero_len, t, 8, &n), -1);
    assert_int_equal(mpic_dns_bitmap_parse(too_long, sizeof too_long, t, 8, &n), -1);
    assert_int_equal(mpic_dns_bitmap_parse(padded, sizeof padded, t, 8, &n), -1);
    assert_int_equal(mpic_dns_bitmap_parse(many, sizeof many, t, 8, &n), -1); /* 16 > cap */
    assert_int_equal(mpic_dns_bitmap_parse(ok, 3, t, 8, &n), -1);    /* cut inside a window */
    assert_int_equal(mpic_dns_bitmap_parse(ok + 8, 3, t, 8, &n), 0); /* window 1 alone */
    assert_int_equal(n, 1);
    assert_int_equal(t[0], MPIC_DNS_T_CAA);
}

/* A DS NODATA with an NSEC, an NSEC3 and a malformed NSEC in authority. */
static void test_parse_authority_denials(void **state)
{
    struct msg m;
    struct mpic_dns_reply *r;
    char err[200];
    static const unsigned char hash[20] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                           0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
                                           0x0f, 0x10, 0x11, 0x12, 0x13, 0x14};
    int i;
    (void)state;

    start(&m, 0x01, 0xa0, 0, 5, 0, "cut.sec.test", MPIC_DNS_T_DS);
    rr_hdr(&m, "sec.test", MPIC_DNS_T_SOA, 60, 6 + 20);
    put(&m, "\001a\000\001b\000", 6);
    put(&m, "\0\0\0\1\0\0\0\1\0\0\0\1\0\0\0\1\0\0\0\1", 20);
    /* NSEC cut.sec.test -> z.sec.test: NS RRSIG NSEC */
    rr_hdr_ptr(&m, MPIC_DNS_T_NSEC, 60, name_len("z.sec.test") + 2 + 6);
    putname(&m, "z.sec.test");
    put(&m, "\000\006\040\000\000\000\000\003", 8);
    /* NSEC with a window out of order: dropped */
    rr_hdr(&m, "y.sec.test", MPIC_DNS_T_NSEC, 60, name_len("z.sec.test") + 6);
    putname(&m, "z.sec.test");
    put(&m, "\001\001\100\000\001\040", 6);
    /* NSEC3 SHA-1, opt-out, 0 iterations, salt ab, next hash, bitmap: NS */
    rr_hdr(&m, "0123456789abcdefghijklmnopqrstuv.sec.test", MPIC_DNS_T_NSEC3, 60,
           5 + 1 + 1 + 20 + 3);
    put(&m, "\001\001\000\000\001\253\024", 7);
    put(&m, hash, 20);
    put(&m, "\000\001\040", 3);
    /* an RRSIG in authority is skipped */
    rr_hdr(&m, "sec.test", MPIC_DNS_T_RRSIG, 60, 3);
    put(&m, "abc", 3);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    assert_int_equal(r->ad, 1);
    assert_int_equal(r->n_answers, 0);
    assert_int_equal(r->n_denials, 2);
    assert_int_equal(r->n_denials_dropped, 1);
    assert_string_equal(r->denials[0].owner, "cut.sec.test.");
    assert_int_equal(r->denials[0].type, MPIC_DNS_T_NSEC);
    assert_string_equal(r->denials[0].next, "z.sec.test.");
    assert_int_equal(r->denials[0].n_types, 3);
    assert_int_equal(r->denials[0].types[0], MPIC_DNS_T_NS);
    assert_int_equal(r->denials[0].types[1], MPIC_DNS_T_RRSIG);
    assert_int_equal(r->denials[0].types[2], MPIC_DNS_T_NSEC);
    assert_int_equal(r->denials[1].type, MPIC_DNS_T_NSEC3);
    assert_int_equal(r->denials[1].hash_alg, 1);
    assert_int_equal(r->denials[1].flags, 1);
    assert_int_equal(r->denials[1].iterations, 0);
    assert_int_equal(r->denials[1].salt.len, 1);
    assert_int_equal(r->denials[1].salt.p[0], 0xab);
    assert_string_equal(r->denials[1].next, "041061050o3gg28a1c60q3gf208h44ok");
    assert_int_equal(r->denials[1].n_types, 1);
    assert_int_equal(r->denials[1].types[0], MPIC_DNS_T_NS);
    mpic_dns_reply_free(r);

    /* more than MPIC_DNS_MAX_DENIAL records: the rest are dropped, not an error */
    start(&m, 0x01, 0xa0, 0, MPIC_DNS_MAX_DENIAL + 3, 0, "cut.sec.test", MPIC_DNS_T_DS);
    for (i = 0; i < MPIC_DNS_MAX_DENIAL + 3; i++) {
        rr_hdr_ptr(&m, MPIC_DNS_T_NSEC, 60, 3 + 3);
        put(&m, "\001z\000\000\001\040", 6);
    }
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    assert_int_equal(r->n_denials, MPIC_DNS_MAX_DENIAL);
    assert_int_equal(r->n_denials_dropped, 3);
    mpic_dns_reply_free(r);
}

static void test_name_normalize(void **state)
{
    char out[300], err[200];
    char big[400];

    assert_int_equal(mpic_dns_name_normalize("Example.COM.", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "Example.COM");
    assert_int_equal(
        mpic_dns_name_normalize("_acme-challenge.x.test", out, sizeof out, err, sizeof err), 0);
    assert_int_equal(mpic_dns_name_normalize("b\xc3\xbc"
                                             "cher.example",
                                             out, sizeof out, err, sizeof err),
                     0);
    assert_string_equal(out, "xn--bcher-kva.example");
    assert_int_equal(mpic_dns_name_normalize("a..b", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty label"));
    assert_int_equal(mpic_dns_name_normalize("", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(mpic_dns_name_normalize(".", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(mpic_dns_name_normalize("a b.example", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid character"));
    assert_int_equal(mpic_dns_name_normalize("\xff\xfe.example", out, sizeof out, err, sizeof err),
                     -1);
    memset(big, 'a', 64);
    strcpy(big + 64, ".example");
    assert_int_equal(mpic_dns_name_normalize(big, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "63"));
    strcpy(big + 63, ".example"); /* a 63-byte label is fine */
    assert_int_equal(mpic_dns_name_normalize(big, out, sizeof out, err, sizeof err), 0);
    /* 254 bytes total */
    for (int i = 0; i < 254; i++)
        big[i] = (i % 2) ? '.' : 'a';
    big[253] = 'a';
    big[254] = '\0';
    assert_int_equal(mpic_dns_name_normalize(big, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "253"));
    big[252] = '\0'; /* "a.a....a" 252 bytes with trailing dot -> 251 */
    assert_int_equal(mpic_dns_name_normalize(big, out, sizeof out, err, sizeof err), 0);
}

static void test_parse_txt_and_caa(void **state)
{
    struct msg m;
    struct mpic_dns_reply *r;
    char err[200];

    start(&m, 0x01, 0x80 | 0x20, 2, 0, 0, "t.victim.test", MPIC_DNS_T_TXT);
    rr_hdr_ptr(&m, MPIC_DNS_T_TXT, 300, 1 + 2 + 1 + 3);
    put(&m, "\002ab\003c\000d", 7);
    rr_hdr_ptr(&m, MPIC_DNS_T_CAA, 60, 2 + 5 + 3);
    put(&m, "\200\005issueabc", 10);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    assert_int_equal(r->rcode, 0);
    assert_true(r->ad);
    assert_true(r->ra);
    assert_false(r->tc);
    assert_string_equal(r->qname, "t.victim.test.");
    assert_int_equal(r->n_answers, 2);
    assert_string_equal(r->answers[0].owner, "t.victim.test.");
    assert_int_equal(r->answers[0].ttl, 300);
    assert_int_equal(r->answers[0].n_strings, 2);
    assert_int_equal(r->answers[0].strings[1].len, 3);
    assert_memory_equal(r->answers[0].strings[1].p, "c\000d", 3);
    assert_int_equal(r->answers[1].caa_flags, 128);
    assert_int_equal(r->answers[1].caa_tag.len, 5);
    assert_memory_equal(r->answers[1].caa_tag.p, "issue", 5);
    assert_int_equal(r->answers[1].caa_value.len, 3);
    assert_int_equal(r->ede_code, -1);
    mpic_dns_reply_free(r);
}

static void test_parse_cname_chain_and_loop(void **state)
{
    static const char *names[] = {"a.test", "b.test", "c.test", "d.test", "e.test"};
    struct msg m;
    struct mpic_dns_reply *r;
    char err[200];
    int i;

    start(&m, 0x01, 0x80, 5, 0, 0, "a.test", MPIC_DNS_T_A);
    for (i = 0; i < 4; i++) {
        rr_hdr(&m, names[i], MPIC_DNS_T_CNAME, 60, name_len(names[i + 1]));
        putname(&m, names[i + 1]);
    }
    rr_hdr(&m, "E.test", MPIC_DNS_T_A, 60, 4);
    put(&m, "\xc0\x00\x02\x01", 4);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    assert_int_equal(r->n_cname, 4);
    assert_string_equal(r->cname_chain[0], "b.test.");
    assert_string_equal(r->cname_chain[3], "e.test.");
    assert_false(r->cname_loop);
    assert_string_equal(r->answers[4].text, "192.0.2.1");
    assert_string_equal(r->answers[4].owner, "E.test."); /* case kept */
    mpic_dns_reply_free(r);

    start(&m, 0x01, 0x80, 2, 0, 0, "a.test", MPIC_DNS_T_TXT);
    rr_hdr(&m, "a.test", MPIC_DNS_T_CNAME, 60, name_len("b.test"));
    putname(&m, "b.test");
    rr_hdr(&m, "b.test", MPIC_DNS_T_CNAME, 60, name_len("A.TEST"));
    putname(&m, "A.TEST");
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    assert_true(r->cname_loop);
    assert_int_equal(r->n_cname, 1);
    mpic_dns_reply_free(r);
}

static void test_parse_ede_and_soa(void **state)
{
    struct msg m;
    struct mpic_dns_reply *r;
    char err[200];

    start(&m, 0x01, 0x80 | 2, 0, 1, 1, "x.test", MPIC_DNS_T_CAA);
    rr_hdr(&m, "test", MPIC_DNS_T_SOA, 60, name_len("ns.test") + name_len("h.test") + 20);
    putname(&m, "ns.test");
    putname(&m, "h.test");
    put32(&m, 7);
    put32(&m, 1);
    put32(&m, 2);
    put32(&m, 3);
    put32(&m, 4);
    /* OPT with EDE 6 "sig" and a padding option before it */
    put8(&m, 0);
    put16(&m, MPIC_DNS_T_OPT);
    put16(&m, 1232);
    put32(&m, 0);
    put16(&m, 4 + 2 + 4 + 5);
    put16(&m, 12);
    put16(&m, 2);
    put16(&m, 0);
    put16(&m, 15);
    put16(&m, 5);
    put16(&m, 6);
    put(&m, "sig", 3);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    assert_int_equal(r->rcode, 2);
    assert_int_equal(r->n_answers, 0); /* authority SOA is not an answer */
    assert_true(r->has_opt);
    assert_int_equal(r->ede_code, 6);
    assert_int_equal(r->ede_text_len, 3);
    assert_string_equal(r->ede_text, "sig");
    mpic_dns_reply_free(r);

    /* SOA as an answer, with extended rcode bits in the OPT TTL */
    start(&m, 0x01, 0x80, 1, 0, 1, "test", MPIC_DNS_T_SOA);
    rr_hdr_ptr(&m, MPIC_DNS_T_SOA, 60, 2 + name_len("h.test") + 20);
    put16(&m, 0xc00c);
    putname(&m, "h.test");
    put32(&m, 2024010101u);
    put32(&m, 1);
    put32(&m, 2);
    put32(&m, 3);
    put32(&m, 4);
    put8(&m, 0);
    put16(&m, MPIC_DNS_T_OPT);
    put16(&m, 4096);
    put32(&m, 0x01000000);
    put16(&m, 0);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    assert_string_equal(r->answers[0].text, "test.");
    assert_string_equal(r->answers[0].rname, "h.test.");
    assert_int_equal(r->answers[0].soa[0], 2024010101u);
    assert_int_equal(r->answers[0].soa[4], 4);
    assert_int_equal(r->rcode, 16); /* BADVERS */
    mpic_dns_reply_free(r);
}

static void test_parse_rejects_malformed(void **state)
{
    struct msg m;
    struct mpic_dns_reply *r = (void *)1;
    char err[200];

    /* answer count larger than the message */
    start(&m, 0x01, 0x80, 60000, 0, 0, "x.test", MPIC_DNS_T_A);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
    assert_null(r);
    /* rdata overrun */
    start(&m, 0x01, 0x80, 1, 0, 0, "x.test", MPIC_DNS_T_A);
    rr_hdr_ptr(&m, MPIC_DNS_T_A, 60, 40);
    put(&m, "\1\2\3\4", 4);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "overruns"));
    /* A with 5 bytes */
    start(&m, 0x01, 0x80, 1, 0, 0, "x.test", MPIC_DNS_T_A);
    rr_hdr_ptr(&m, MPIC_DNS_T_A, 60, 5);
    put(&m, "\1\2\3\4\5", 5);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
    /* TXT string running past rdata */
    start(&m, 0x01, 0x80, 1, 0, 0, "x.test", MPIC_DNS_T_TXT);
    rr_hdr_ptr(&m, MPIC_DNS_T_TXT, 60, 3);
    put(&m, "\005ab", 3);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
    /* compression pointer loop in an owner name */
    start(&m, 0x01, 0x80, 1, 0, 0, "x.test", MPIC_DNS_T_A);
    put16(&m, 0xc000 | (unsigned)m.n);
    put16(&m, 1);
    put16(&m, 1);
    put32(&m, 1);
    put16(&m, 4);
    put32(&m, 1);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
    /* a query (QR=0) is not a reply */
    start(&m, 0x01, 0x80, 0, 0, 0, "x.test", MPIC_DNS_T_A);
    m.b[2] &= 0x7f;
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
    /* short header */
    assert_int_equal(mpic_dns_wire_parse(m.b, 5, &r, err, sizeof err), -1);
    /* CAA with zero-length tag */
    start(&m, 0x01, 0x80, 1, 0, 0, "x.test", MPIC_DNS_T_CAA);
    rr_hdr_ptr(&m, MPIC_DNS_T_CAA, 60, 2);
    put(&m, "\000\000", 2);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
}

/* A name of 255 octets parses; 256 do not (RFC 1035 3.1), also when
 * compression pointers assemble it, and with bytes that print as escapes. */
static void put_label(struct msg *m, unsigned char c, size_t len)
{
    unsigned char l[63];
    memset(l, c, len);
    put8(m, (unsigned)len);
    put(m, l, len);
}
/* "x.test" A reply whose answer owner is `labels` labels of 63 octets and a
 * pointer to the question name */
static void reply_with_long_owner(struct msg *m, int labels)
{
    start(m, 0x01, 0x80, 1, 0, 0, "x.test", MPIC_DNS_T_A);
    for (int i = 0; i < labels; i++)
        put_label(m, 'y', 63);
    put16(m, 0xc00c);
    put16(m, MPIC_DNS_T_A);
    put16(m, 1);
    put32(m, 60);
    put16(m, 4);
    put32(m, 0x7f000001);
}
static void test_parse_name_length_limit(void **state)
{
    struct msg m;
    struct mpic_dns_reply *r = NULL;
    char err[200];
    (void)state;
    for (int esc = 0; esc < 2; esc++) {
        unsigned char c = esc ? 0x1a : 'x';
        for (size_t last = 61; last <= 62; last++) {
            /* question name: three labels of 63 and one of `last`: 255 or 256 octets */
            m.n = 0;
            put16(&m, 0x1234);
            put16(&m, 0x8180);
            put16(&m, 1);
            put16(&m, 0);
            put16(&m, 0);
            put16(&m, 0);
            for (int i = 0; i < 3; i++)
                put_label(&m, c, 63);
            put_label(&m, c, last);
            put8(&m, 0);
            put16(&m, MPIC_DNS_T_A);
            put16(&m, 1);
            r = NULL;
            int rc = mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err);
            if (last == 61) {
                assert_int_equal(rc, 0);
                mpic_dns_reply_free(r);
            } else {
                assert_int_equal(rc, -1);
                assert_null(r);
            }
        }
    }
    /* an owner of four labels of 63 before a pointer to "x.test": 264 octets */
    reply_with_long_owner(&m, 4);
    r = NULL;
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), -1);
    assert_null(r);
    /* three labels of 63 before it: 200 octets, parsed */
    reply_with_long_owner(&m, 3);
    assert_int_equal(mpic_dns_wire_parse(m.b, m.n, &r, err, sizeof err), 0);
    mpic_dns_reply_free(r);
}

/* Random damage to a valid reply: the parser must return cleanly. */
static void test_parse_mutations_never_crash(void **state)
{
    struct msg m, d;
    struct mpic_dns_reply *r;
    char err[200];
    unsigned seed = 12345;
    int i, j, ok = 0, bad = 0;

    start(&m, 0x01, 0x80, 3, 0, 1, "a.test", MPIC_DNS_T_TXT);
    rr_hdr_ptr(&m, MPIC_DNS_T_CNAME, 60, 4);
    put(&m, "\001b\xc0\x0e", 4);
    rr_hdr(&m, "b.test", MPIC_DNS_T_TXT, 60, 4);
    put(&m, "\003xyz", 4);
    rr_hdr_ptr(&m, MPIC_DNS_T_CAA, 60, 7);
    put(&m, "\000\005issue", 7);
    put8(&m, 0);
    put16(&m, 41);
    put16(&m, 4096);
    put32(&m, 0);
    put16(&m, 6);
    put16(&m, 15);
    put16(&m, 2);
    put16(&m, 9);
    for (i = 0; i < 20000; i++) {
        d = m;
        for (j = 0; j < 1 + i % 4; j++) {
            seed = seed * 1103515245u + 12345u;
            d.b[12 + (seed >> 8) % (d.n - 12)] = (unsigned char)(seed >> 20);
        }
        seed = seed * 1103515245u + 12345u;
        if (i % 7 == 0)
            d.n = 12 + (seed >> 8) % (d.n - 12);
        if (mpic_dns_wire_parse(d.b, d.n, &r, err, sizeof err) == 0) {
            ok++;
            mpic_dns_reply_free(r);
        } else {
            bad++;
        }
    }
    assert_true(ok > 0);
    assert_true(bad > 0);
}

static void test_type_and_rcode_names(void **state)
{
    char b[16];
    assert_int_equal(mpic_dns_qtype_from_name("caa"), MPIC_DNS_T_CAA);
    assert_int_equal(mpic_dns_qtype_from_name("TXT"), MPIC_DNS_T_TXT);
    assert_int_equal(mpic_dns_qtype_from_name("MX"), 0); /* not a supported query type */
    assert_int_equal(mpic_dns_qtype_from_name("OPT"), 0);
    assert_string_equal(mpic_dns_rcode_name(3, b, sizeof b), "NXDOMAIN");
    assert_string_equal(mpic_dns_rcode_name(5, b, sizeof b), "REFUSED");
    assert_string_equal(mpic_dns_rcode_name(23, b, sizeof b), "RCODE23");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_query_flags),
        cmocka_unit_test(test_bitmap_parse),
        cmocka_unit_test(test_parse_authority_denials),
        cmocka_unit_test(test_name_normalize),
        cmocka_unit_test(test_parse_txt_and_caa),
        cmocka_unit_test(test_parse_cname_chain_and_loop),
        cmocka_unit_test(test_parse_ede_and_soa),
        cmocka_unit_test(test_parse_rejects_malformed),
        cmocka_unit_test(test_parse_name_length_limit),
        cmocka_unit_test(test_parse_mutations_never_crash),
        cmocka_unit_test(test_type_and_rcode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
