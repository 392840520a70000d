/*
 * dns_wire.c: DNS query building, reply parsing and name validation.
 *
 * Provides the functions declared in dns_wire.h. Uses c-ares only for
 * ares_expand_name (compressed names, with its own loop and bound checks)
 * and libidn2 for U-label to A-label conversion. Every read from a reply is
 * checked against the message length; section counts only bound loops that
 * are also bounded by the bytes actually present.
 */
#include "dns_wire.h"
#include "encode.h"

#include <ares.h>
#include <arpa/inet.h>
#include <idn2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HDR_LEN 12

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int mpic_dns_name_normalize(const char *in, char *out, size_t cap, char *err, size_t errlen)
{
    char *idn = NULL, *buf = NULL;
    const char *name;
    size_t len, label = 0, i;
    int non_ascii = 0, rc = -1;

    if (!in || !*in) {
        set_err(err, errlen, "empty name");
        goto out;
    }
    len = strlen(in);
    if (len > 1024) {
        set_err(err, errlen, "name too long");
        goto out;
    }
    buf = strdup(in);
    if (!buf) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    if (len > 0 && buf[len - 1] == '.')
        buf[--len] = '\0';
    for (i = 0; i < len; i++)
        if ((unsigned char)buf[i] >= 0x80)
            non_ascii = 1;
    name = buf;
    if (non_ascii) {
        int r = idn2_to_ascii_8z(buf, &idn, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (r != IDN2_OK) {
            set_err(err, errlen, "invalid internationalized name: %s", idn2_strerror(r));
            goto out;
        }
        name = idn;
        len = strlen(name);
        if (len > 0 && name[len - 1] == '.')
            len--;
    }
    if (len == 0) {
        set_err(err, errlen, "empty name");
        goto out;
    }
    if (len > 253) {
        set_err(err, errlen, "name is %zu bytes long, more than 253", len);
        goto out;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0) {
                set_err(err, errlen, "empty label at offset %zu", i);
                goto out;
            }
            label = 0;
            continue;
        }
        if (!is_label_char(c)) {
            set_err(err, errlen, "invalid character 0x%02x at offset %zu", c, i);
            goto out;
        }
        if (++label > 63) {
            set_err(err, errlen, "label longer than 63 bytes");
            goto out;
        }
    }
    if (label == 0) {
        set_err(err, errlen, "empty label at end");
        goto out;
    }
    if (len + 1 > cap) {
        set_err(err, errlen, "name too long");
        goto out;
    }
    memcpy(out, name, len);
    out[len] = '\0';
    rc = 0;
out:
    if (idn)
        idn2_free(idn);
    free(buf);
    return rc;
}

int mpic_dns_name_to_wire(const char *name, unsigned char *out, size_t cap)
{
    size_t pos = 0, nlen = strlen(name);
    const char *p = name, *dot;

    if (nlen && name[nlen - 1] == '.')
        nlen--;
    if (nlen == 0 || nlen > 253 || cap < nlen + 2)
        return -1;
    while (p < name + nlen) {
        size_t l;
        dot = memchr(p, '.', (size_t)(name + nlen - p));
        l = dot ? (size_t)(dot - p) : (size_t)(name + nlen - p);
        if (l == 0 || l > 63)
            return -1;
        out[pos++] = (unsigned char)l;
        memcpy(out + pos, p, l);
        pos += l;
        p += l + (dot ? 1 : 0);
    }
    out[pos++] = 0;
    return (int)pos;
}

int mpic_dns_wire_build_query(const char *name, uint16_t qtype, uint16_t id, unsigned char *buf,
                              size_t cap)
{
    size_t pos = HDR_LEN, nlen = strlen(name);
    int n;

    if (nlen && name[nlen - 1] == '.')
        nlen--;
    /* header + name (nlen + 2) + qtype/qclass + OPT RR (11) */
    if (nlen == 0 || nlen > 253 || cap < HDR_LEN + nlen + 2 + 4 + 11)
        return -1;
    memset(buf, 0, HDR_LEN);
    buf[0] = id >> 8;
    buf[1] = id & 0xff;
    buf[2] = 0x01; /* RD */
    buf[3] = 0x20; /* AD; CD stays 0 */
    buf[5] = 1;    /* QDCOUNT */
    buf[11] = 1;   /* ARCOUNT: the OPT RR */
    n = mpic_dns_name_to_wire(name, buf + pos, cap - pos);
    if (n < 0)
        return -1;
    pos += (size_t)n;
    buf[pos++] = qtype >> 8;
    buf[pos++] = qtype & 0xff;
    buf[pos++] = 0;
    buf[pos++] = 1; /* IN */
    /* OPT: root owner, type 41, class = UDP size, TTL 0 (DO=0, or DO=1 for
     * DS so that a denial carries its NSEC/NSEC3 proof), rdlen 0 */
    buf[pos++] = 0;
    buf[pos++] = 0;
    buf[pos++] = MPIC_DNS_T_OPT;
    buf[pos++] = MPIC_DNS_EDNS_SIZE >> 8;
    buf[pos++] = MPIC_DNS_EDNS_SIZE & 0xff;
    memset(buf + pos, 0, 6);
    if (qtype == MPIC_DNS_T_DS)
        buf[pos + 2] = 0x80; /* DO */
    pos += 6;
    return (int)pos;
}

static uint16_t rd16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The wire length of a name in the presentation form ares_expand_name gives
 * (labels joined by dots, "\DDD" and "\X" escapes, no trailing dot): its
 * label octets, one length octet per label and the root's. */
static size_t wire_len_of(const char *s)
{
    size_t n = 1, octets = 0; /* the root's octet */
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            n += octets + 1;
            octets = 0;
            continue;
        }
        if (*p == '\\' && p[1]) {
            if (p[1] >= '0' && p[1] <= '9' && p[2] && p[3])
                p += 3;
            else
                p++;
        }
        octets++;
    }
    return octets ? n + octets + 1 : n;
}

/* Expand the name at msg+*pos; advance *pos; result with trailing dot. A
 * name of more than 255 octets (RFC 1035 3.1), which compression pointers
 * can assemble and ares_expand_name does not refuse, is an error. */
static int read_name(const unsigned char *msg, size_t len, size_t *pos, size_t limit, char **out)
{
    char *s = NULL, *r;
    long enc = 0;
    size_t sl;

    if (*pos >= limit || limit > len)
        return -1;
    if (ares_expand_name(msg + *pos, msg, (int)len, &s, &enc) != ARES_SUCCESS)
        return -1;
    if (enc <= 0 || (size_t)enc > limit - *pos || wire_len_of(s) > 255) {
        ares_free_string(s);
        return -1;
    }
    sl = strlen(s);
    r = malloc(sl + 2);
    if (!r) {
        ares_free_string(s);
        return -1;
    }
    memcpy(r, s, sl);
    if (sl == 0 || r[sl - 1] != '.')
        r[sl++] = '.';
    r[sl] = '\0';
    ares_free_string(s);
    *pos += (size_t)enc;
    *out = r;
    return 0;
}

static void rr_clear(struct mpic_dns_rr *rr)
{
    free(rr->owner);
    free(rr->text);
    free(rr->rname);
    free(rr->strings);
    memset(rr, 0, sizeof *rr);
}

static void denial_clear(struct mpic_dns_denial *d)
{
    free(d->owner);
    free(d->next);
    memset(d, 0, sizeof *d);
}

void mpic_dns_reply_free(struct mpic_dns_reply *r)
{
    size_t i;
    if (!r)
        return;
    for (i = 0; i < r->n_answers; i++)
        rr_clear(&r->answers[i]);
    free(r->answers);
    for (i = 0; i < r->n_denials; i++)
        denial_clear(&r->denials[i]);
    free(r->denials);
    for (i = 0; i < r->n_cname; i++)
        free(r->cname_chain[i]);
    free(r->qname);
    free(r->ede_text);
    free(r->msg);
    free(r);
}

/* Typed rdata of an answer RR at msg[off, off+rdlen). */
static int parse_rdata(const unsigned char *msg, size_t len, size_t off, size_t rdlen,
                       struct mpic_dns_rr *rr)
{
    size_t end = off + rdlen, pos = off, n = 0;
    char addr[INET6_ADDRSTRLEN];

    switch (rr->type) {
    case MPIC_DNS_T_A:
    case MPIC_DNS_T_AAAA:
        if (rdlen != (rr->type == MPIC_DNS_T_A ? 4u : 16u))
            return -1;
        if (!inet_ntop(rr->type == MPIC_DNS_T_A ? AF_INET : AF_INET6, msg + off, addr, sizeof addr))
            return -1;
        rr->text = strdup(addr);
        return rr->text ? 0 : -1;
    case MPIC_DNS_T_CNAME:
    case MPIC_DNS_T_PTR:
    case MPIC_DNS_T_NS:
        if (read_name(msg, len, &pos, end, &rr->text) < 0 || pos != end)
            return -1;
        return 0;
    case MPIC_DNS_T_SOA:
        if (read_name(msg, len, &pos, end, &rr->text) < 0 ||
            read_name(msg, len, &pos, end, &rr->rname) < 0 || end - pos != 20)
            return -1;
        for (n = 0; n < 5; n++)
            rr->soa[n] = rd32(msg + pos + 4 * n);
        return 0;
    case MPIC_DNS_T_TXT:
        /* count first, then fill; each string is <len><bytes> */
        while (pos < end) {
            pos += 1u + msg[pos];
            n++;
        }
        if (pos != end)
            return -1;
        if (n) {
            rr->strings = calloc(n, sizeof *rr->strings);
            if (!rr->strings)
                return -1;
        }
        for (pos = off; pos < end; pos += 1u + msg[pos]) {
            rr->strings[rr->n_strings].p = msg + pos + 1;
            rr->strings[rr->n_strings].len = msg[pos];
            rr->n_strings++;
        }
        return 0;
    case MPIC_DNS_T_CAA:
        if (rdlen < 2 || msg[off + 1] == 0 || (size_t)msg[off + 1] > rdlen - 2)
            return -1;
        rr->caa_flags = msg[off];
        rr->caa_tag.p = msg + off + 2;
        rr->caa_tag.len = msg[off + 1];
        rr->caa_value.p = rr->caa_tag.p + rr->caa_tag.len;
        rr->caa_value.len = rdlen - 2 - rr->caa_tag.len;
        return 0;
    default: return 0;
    }
}

int mpic_dns_bitmap_parse(const unsigned char *p, size_t len, uint16_t *out, size_t cap, size_t *n)
{
    size_t pos = 0, i;
    int last = -1;
    unsigned bit;

    *n = 0;
    if (len == 0)
        return -1;
    while (pos < len) {
        unsigned window, blen;
        if (len - pos < 2)
            return -1;
        window = p[pos];
        blen = p[pos + 1];
        pos += 2;
        if ((int)window <= last || blen == 0 || blen > 32 || blen > len - pos ||
            p[pos + blen - 1] == 0)
            return -1;
        last = (int)window;
        for (i = 0; i < blen; i++)
            for (bit = 0; bit < 8; bit++) {
                if (!(p[pos + i] & (0x80u >> bit)))
                    continue;
                if (*n == cap)
                    return -1;
                out[(*n)++] = (uint16_t)(window * 256u + i * 8u + bit);
            }
        pos += blen;
    }
    return 0;
}

/* An authority NSEC/NSEC3 record at msg[off, off+rdlen) into d (owner set by
 * the caller). -1 when malformed; d is then cleared by the caller. */
static int parse_denial(const unsigned char *msg, size_t len, size_t off, size_t rdlen,
                        struct mpic_dns_denial *d)
{
    size_t end = off + rdlen, pos = off, saltlen, hashlen;

    if (d->type == MPIC_DNS_T_NSEC) {
        if (read_name(msg, len, &pos, end, &d->next) < 0)
            return -1;
    } else {
        if (end - pos < 5)
            return -1;
        d->hash_alg = msg[pos];
        d->flags = msg[pos + 1];
        d->iterations = rd16(msg + pos + 2);
        saltlen = msg[pos + 4];
        pos += 5;
        if (saltlen > end - pos)
            return -1;
        d->salt.p = msg + pos;
        d->salt.len = saltlen;
        pos += saltlen;
        if (end - pos < 1)
            return -1;
        hashlen = msg[pos++];
        if (hashlen == 0 || hashlen > end - pos)
            return -1;
        /* 255 bytes give at most 408 base32hex digits */
        d->next = malloc(hashlen * 8 / 5 + 2);
        if (!d->next)
            return -1;
        mpic_base32hex(msg + pos, hashlen, d->next);
        pos += hashlen;
    }
    return mpic_dns_bitmap_parse(msg + pos, end - pos, d->types, MPIC_DNS_MAX_TYPES, &d->n_types);
}

/* Keep an authority-section NSEC/NSEC3 record; malformed or surplus ones
 * are counted and dropped. Returns -1 only when out of memory. */
static int keep_denial(struct mpic_dns_reply *r, const struct mpic_dns_rr *rr, size_t off)
{
    struct mpic_dns_denial *d;

    if (r->n_denials == MPIC_DNS_MAX_DENIAL || rr->rclass != 1) {
        r->n_denials_dropped++;
        return 0;
    }
    if (!r->denials && !(r->denials = calloc(MPIC_DNS_MAX_DENIAL, sizeof *r->denials)))
        return -1;
    d = &r->denials[r->n_denials];
    d->type = rr->type;
    d->owner = strdup(rr->owner);
    if (!d->owner)
        return -1;
    if (parse_denial(r->msg, r->len, off, rr->rdata.len, d) < 0) {
        denial_clear(d);
        r->n_denials_dropped++;
        return 0;
    }
    r->n_denials++;
    return 0;
}

/* RFC 8914: option 15 inside the OPT rdata. */
static int parse_opt(struct mpic_dns_reply *r, size_t off, size_t rdlen, uint32_t ttl)
{
    size_t pos = off, end = off + rdlen;

    r->has_opt = 1;
    r->rcode |= (int)((ttl >> 24) & 0xff) << 4;
    while (pos < end) {
        uint16_t code, olen;
        if (end - pos < 4)
            return -1;
        code = rd16(r->msg + pos);
        olen = rd16(r->msg + pos + 2);
        pos += 4;
        if (olen > end - pos)
            return -1;
        if (code == 15 && r->ede_code < 0) {
            if (olen < 2)
                return -1;
            r->ede_code = rd16(r->msg + pos);
            r->ede_text_len = olen - 2u;
            r->ede_text = malloc(r->ede_text_len + 1);
            if (!r->ede_text)
                return -1;
            memcpy(r->ede_text, r->msg + pos + 2, r->ede_text_len);
            r->ede_text[r->ede_text_len] = '\0';
        }
        pos += olen;
    }
    return 0;
}

static int name_seen(struct mpic_dns_reply *r, const char *name)
{
    size_t i;
    if (strcasecmp(name, r->qname) == 0)
        return 1;
    for (i = 0; i < r->n_cname; i++)
        if (strcasecmp(name, r->cname_chain[i]) == 0)
            return 1;
    return 0;
}

/* Follow CNAMEs from the question name through the answer section. */
static int build_chain(struct mpic_dns_reply *r)
{
    const char *cur = r->qname;
    size_t i, steps;

    for (steps = 0; steps <= MPIC_DNS_MAX_CNAME; steps++) {
        const struct mpic_dns_rr *hit = NULL;
        for (i = 0; i < r->n_answers; i++) {
            const struct mpic_dns_rr *rr = &r->answers[i];
            if (rr->type == MPIC_DNS_T_CNAME && strcasecmp(rr->owner, cur) == 0) {
                hit = rr;
                break;
            }
        }
        if (!hit)
            return 0;
        if (r->n_cname == MPIC_DNS_MAX_CNAME) {
            r->cname_too_long = 1;
            return 0;
        }
        if (name_seen(r, hit->text)) {
            r->cname_loop = 1;
            return 0;
        }
        r->cname_chain[r->n_cname] = strdup(hit->text);
        if (!r->cname_chain[r->n_cname])
            return -1;
        cur = r->cname_chain[r->n_cname++];
        if (r->qtype == MPIC_DNS_T_CNAME)
            return 0; /* the CNAME itself is the answer */
    }
    return 0;
}

int mpic_dns_wire_parse(const unsigned char *buf, size_t len, struct mpic_dns_reply **out,
                        char *err, size_t errlen)
{
    struct mpic_dns_reply *r = NULL;
    size_t pos = HDR_LEN, i, max_rr;
    unsigned qd, an, ns, ar, sec;
    int rc = -1;

    *out = NULL;
    if (!buf || len < HDR_LEN || len > 65535) {
        set_err(err, errlen, "message of %zu bytes is not a DNS message", len);
        return -1;
    }
    r = calloc(1, sizeof *r);
    if (!r || !(r->msg = malloc(len))) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    memcpy(r->msg, buf, len);
    r->len = len;
    r->ede_code = -1;
    if (!(buf[2] & 0x80) || ((buf[2] >> 3) & 0xf) != 0) {
        set_err(err, errlen, "not a standard query response");
        goto out;
    }
    r->aa = !!(buf[2] & 0x04);
    r->tc = !!(buf[2] & 0x02);
    r->rd = !!(buf[2] & 0x01);
    r->ra = !!(buf[3] & 0x80);
    r->ad = !!(buf[3] & 0x20);
    r->cd = !!(buf[3] & 0x10);
    r->rcode = buf[3] & 0x0f;
    qd = rd16(buf + 4);
    an = rd16(buf + 6);
    ns = rd16(buf + 8);
    ar = rd16(buf + 10);
    if (qd != 1) {
        set_err(err, errlen, "reply has %u questions, expected 1", qd);
        goto out;
    }
    if (read_name(r->msg, len, &pos, len, &r->qname) < 0 || len - pos < 4) {
        set_err(err, errlen, "malformed question section");
        goto out;
    }
    r->qtype = rd16(r->msg + pos);
    pos += 4;
    /* an RR takes at least 11 bytes: this bounds the allocation */
    max_rr = (len - pos) / 11;
    if (an > max_rr) {
        set_err(err, errlen, "answer count %u exceeds the message", an);
        goto out;
    }
    if (an && !(r->answers = calloc(an, sizeof *r->answers))) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    for (sec = 0; sec < 3; sec++) {
        unsigned count = sec == 0 ? an : sec == 1 ? ns : ar;
        for (i = 0; i < count; i++) {
            struct mpic_dns_rr tmp, *rr = sec == 0 ? &r->answers[r->n_answers] : &tmp;
            uint16_t rdlen;
            memset(&tmp, 0, sizeof tmp);
            if (read_name(r->msg, len, &pos, len, &rr->owner) < 0 || len - pos < 10) {
                free(rr->owner);
                rr->owner = NULL;
                set_err(err, errlen, "malformed resource record %zu in section %u", i, sec + 1);
                goto out;
            }
            if (sec == 0)
                r->n_answers++; /* owned from here on */
            rr->type = rd16(r->msg + pos);
            rr->rclass = rd16(r->msg + pos + 2);
            rr->ttl = rd32(r->msg + pos + 4);
            rdlen = rd16(r->msg + pos + 8);
            pos += 10;
            if (rdlen > len - pos) {
                set_err(err, errlen, "rdata of record %zu in section %u overruns the message", i,
                        sec + 1);
                rr_clear(&tmp);
                goto out;
            }
            rr->rdata.p = r->msg + pos;
            rr->rdata.len = rdlen;
            if (sec == 0 && parse_rdata(r->msg, len, pos, rdlen, rr) < 0) {
                set_err(err, errlen, "malformed %s record for %s",
                        mpic_dns_type_name(rr->type) ? mpic_dns_type_name(rr->type) : "?",
                        rr->owner);
                goto out;
            }
            if (sec == 1 && (rr->type == MPIC_DNS_T_NSEC || rr->type == MPIC_DNS_T_NSEC3) &&
                keep_denial(r, rr, pos) < 0) {
                set_err(err, errlen, "out of memory");
                rr_clear(&tmp);
                goto out;
            }
            if (sec == 2 && rr->type == MPIC_DNS_T_OPT) {
                if (r->has_opt || strcmp(rr->owner, ".") != 0 ||
                    parse_opt(r, pos, rdlen, rr->ttl) < 0) {
                    set_err(err, errlen, "malformed OPT record");
                    rr_clear(&tmp);
                    goto out;
                }
            }
            rr_clear(&tmp);
            pos += rdlen;
        }
    }
    if (build_chain(r) < 0) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    mpic_dns_reply_free(r);
    return rc;
}

static const struct {
    uint16_t type;
    const char *name;
    int query;
} types[] = {
    {MPIC_DNS_T_A, "A", 1},
    {MPIC_DNS_T_NS, "NS", 1},
    {MPIC_DNS_T_CNAME, "CNAME", 1},
    {MPIC_DNS_T_SOA, "SOA", 1},
    {MPIC_DNS_T_PTR, "PTR", 1},
    {MPIC_DNS_T_TXT, "TXT", 1},
    {MPIC_DNS_T_AAAA, "AAAA", 1},
    {MPIC_DNS_T_CAA, "CAA", 1},
    {MPIC_DNS_T_OPT, "OPT", 0},
    {15, "MX", 0},
    {33, "SRV", 0},
    {39, "DNAME", 0},
    {MPIC_DNS_T_DS, "DS", 1},
    {MPIC_DNS_T_RRSIG, "RRSIG", 0},
    {MPIC_DNS_T_NSEC, "NSEC", 0},
    {48, "DNSKEY", 0},
    {MPIC_DNS_T_NSEC3, "NSEC3", 0},
};

const char *mpic_dns_type_name(uint16_t type)
{
    size_t i;
    for (i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type)
            return types[i].name;
    return NULL;
}

uint16_t mpic_dns_qtype_from_name(const char *name)
{
    size_t i;
    if (!name)
        return 0;
    for (i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].query && strcasecmp(types[i].name, name) == 0)
            return types[i].type;
    return 0;
}

const char *mpic_dns_rcode_name(int rcode, char *buf, size_t cap)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH", "NOTZONE"};
    if (rcode >= 0 && rcode < (int)(sizeof names / sizeof names[0]))
        return names[rcode];
    if (rcode == 16)
        return "BADVERS";
    snprintf(buf, cap, "RCODE%d", rcode);
    return buf;
}
