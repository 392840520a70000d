/*
 * fuzz_dns_wire.c: libFuzzer target for the DNS reply parser
 * (mpic_dns_wire_parse of dns_wire.c). Every parsed field is read back in
 * full so that AddressSanitizer sees any pointer or length that leaves the
 * message, and the structural promises of dns_wire.h are asserted.
 * Uses: dns_wire.h.
 */
#include "dns_wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned sink;

static void touch(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        sink += b[i];
}

static void touch_str(const char *s)
{
    if (s)
        touch(s, strlen(s) + 1);
}

/* rdata must point inside the reply's own copy of the message */
static void check_bytes(const struct mpic_dns_reply *r, struct mpic_dns_bytes b)
{
    if (b.len == 0)
        return;
    if (!b.p || b.p < r->msg || b.p + b.len > r->msg + r->len) {
        fprintf(stderr, "dns_wire: byte string outside the message\n");
        abort();
    }
    touch(b.p, b.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mpic_dns_reply *r = NULL;
    char err[256];
    err[0] = '\0';
    if (mpic_dns_wire_parse(data, size, &r, err, sizeof err) != 0) {
        if (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0') {
            fprintf(stderr, "dns_wire: failure without a reason\n");
            abort();
        }
        if (r)
            mpic_dns_reply_free(r);
        return 0;
    }
    if (!r || r->len != size || (size && memcmp(r->msg, data, size) != 0))
        abort();
    touch_str(r->qname);
    if (r->n_cname > MPIC_DNS_MAX_CNAME)
        abort();
    for (size_t i = 0; i < r->n_cname; i++)
        touch_str(r->cname_chain[i]);
    if (r->ede_text)
        touch(r->ede_text, r->ede_text_len + 1);
    char rb[32];
    touch_str(mpic_dns_rcode_name(r->rcode, rb, sizeof rb));
    touch_str(mpic_dns_type_name(r->qtype));
    for (size_t i = 0; i < r->n_answers; i++) {
        const struct mpic_dns_rr *rr = &r->answers[i];
        touch_str(rr->owner);
        /* presentation form: up to 255 wire octets, each possibly a \DDD escape */
        if (rr->owner && strlen(rr->owner) > 4 * 255 + 1)
            abort();
        touch_str(rr->text);
        touch_str(rr->rname);
        check_bytes(r, rr->rdata);
        for (size_t k = 0; k < rr->n_strings; k++)
            check_bytes(r, rr->strings[k]);
        check_bytes(r, rr->caa_tag);
        check_bytes(r, rr->caa_value);
    }
    if (r->n_denials > MPIC_DNS_MAX_DENIAL || (r->n_denials && !r->denials))
        abort();
    for (size_t i = 0; i < r->n_denials; i++) {
        const struct mpic_dns_denial *d = &r->denials[i];
        if ((d->type != MPIC_DNS_T_NSEC && d->type != MPIC_DNS_T_NSEC3) || !d->owner || !d->next ||
            d->n_types == 0 || d->n_types > MPIC_DNS_MAX_TYPES)
            abort();
        touch_str(d->owner);
        touch_str(d->next);
        for (size_t k = 1; k < d->n_types; k++)
            if (d->types[k] <= d->types[k - 1])
                abort(); /* ascending, no repeats */
        check_bytes(r, d->salt);
    }
    mpic_dns_reply_free(r);
    return 0;
}
