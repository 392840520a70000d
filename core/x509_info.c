/*
 * x509_info.c: decode one DER certificate into struct mpic_x509_info.
 *
 * Provides the data the acme-tls-alpn-01 checks need (every extension with
 * its raw value and critical flag, duplicate OIDs, SAN entries with their
 * exact bytes, the subject CN, a strict self-signed test) without judging
 * it; the judging is done in Lua. Uses OpenSSL's X509 decoder; inputs come
 * from the network (or a fuzzer), so every length is checked.
 */
#include "x509_info.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
    unsigned char *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

const char *mpic_x509_san_type_name(enum mpic_san_type t)
{
    switch (t) {
    case MPIC_SAN_DNS: return "dns";
    case MPIC_SAN_IP: return "ip";
    case MPIC_SAN_EMAIL: return "email";
    case MPIC_SAN_URI: return "uri";
    default: return "other";
    }
}

/* Read a DER definite length at p (n bytes left). Returns the number of
 * length octets, or 0 when absent, indefinite or not minimally encoded. */
static size_t der_len(const unsigned char *p, size_t n, size_t *len)
{
    if (n < 1 || p[0] == 0x80)
        return 0;
    if (p[0] < 0x80) {
        *len = p[0];
        return 1;
    }
    size_t k = p[0] & 0x7f;
    if (k > sizeof(size_t) || k + 1 > n || p[1] == 0)
        return 0;
    size_t v = 0;
    for (size_t i = 0; i < k; i++)
        v = (v << 8) | p[1 + i];
    if (v < 0x80)
        return 0; /* should have used the short form */
    *len = v;
    return k + 1;
}

int mpic_x509_san_is_single_dns(const unsigned char *buf, size_t len)
{
    size_t l1, l2, h1, h2;
    if (!buf || len < 2 || buf[0] != 0x30)
        return 0;
    h1 = der_len(buf + 1, len - 1, &l1);
    if (!h1 || l1 != len - 1 - h1)
        return 0;
    const unsigned char *q = buf + 1 + h1;
    if (l1 < 2 || q[0] != 0x82)
        return 0;
    h2 = der_len(q + 1, l1 - 1, &l2);
    return h2 && l2 == l1 - 1 - h2;
}

static int add_san(struct mpic_x509_info *info, const GENERAL_NAME *gn)
{
    struct mpic_x509_san *s = &info->sans[info->n_sans];
    const ASN1_STRING *str = NULL;
    unsigned char *der = NULL;
    int n;

    switch (gn->type) {
    case GEN_DNS:
        s->type = MPIC_SAN_DNS;
        str = gn->d.dNSName;
        break;
    case GEN_IPADD:
        s->type = MPIC_SAN_IP;
        str = gn->d.iPAddress;
        break;
    case GEN_EMAIL:
        s->type = MPIC_SAN_EMAIL;
        str = gn->d.rfc822Name;
        break;
    case GEN_URI:
        s->type = MPIC_SAN_URI;
        str = gn->d.uniformResourceIdentifier;
        break;
    default: s->type = MPIC_SAN_OTHER; break;
    }
    if (str) {
        s->value_len = (size_t)ASN1_STRING_length(str);
        s->value = dup_bytes(ASN1_STRING_get0_data(str), s->value_len);
    } else {
        n = i2d_GENERAL_NAME((GENERAL_NAME *)gn, &der);
        if (n < 0)
            return -1;
        s->value_len = (size_t)n;
        s->value = dup_bytes(der, s->value_len);
        OPENSSL_free(der);
    }
    if (!s->value)
        return -1;
    if (s->type == MPIC_SAN_IP && s->value_len != 4 && s->value_len != 16) {
        /* an iPAddress is 4 or 16 bytes: anything else is not an address */
        s->type = MPIC_SAN_OTHER;
        info->san_malformed = 1;
    }
    info->n_sans++;
    return 0;
}

static int parse_sans(struct mpic_x509_info *info, const struct mpic_x509_ext *e)
{
    const unsigned char *p = e->value;
    GENERAL_NAMES *names;
    int rc = 0, n;

    info->san_present = 1;
    info->san_single_dns = mpic_x509_san_is_single_dns(e->value, e->value_len);
    names = d2i_GENERAL_NAMES(NULL, &p, (long)e->value_len);
    if (!names || p != e->value + e->value_len) {
        info->san_malformed = 1;
        goto out;
    }
    n = sk_GENERAL_NAME_num(names);
    info->sans = calloc(n > 0 ? (size_t)n : 1, sizeof *info->sans);
    if (!info->sans) {
        rc = -1;
        goto out;
    }
    for (int i = 0; i < n && rc == 0; i++)
        rc = add_san(info, sk_GENERAL_NAME_value(names, i));
out:
    GENERAL_NAMES_free(names);
    return rc;
}

static void note_duplicate(struct mpic_x509_info *info, size_t idx)
{
    const char *oid = info->exts[idx].oid;
    size_t i;
    for (i = 0; i < idx; i++)
        if (strcmp(info->exts[i].oid, oid) == 0)
            break;
    if (i == idx)
        return; /* first occurrence */
    for (i = 0; i < info->n_dup_oids; i++)
        if (strcmp(info->dup_oids[i], oid) == 0)
            return; /* already listed */
    memcpy(info->dup_oids[info->n_dup_oids++], oid, sizeof info->dup_oids[0]);
}

static int parse_exts(struct mpic_x509_info *info, const X509 *x)
{
    int n = X509_get_ext_count(x);
    const struct mpic_x509_ext *san = NULL;

    if (n <= 0)
        return 0;
    info->exts = calloc((size_t)n, sizeof *info->exts);
    info->dup_oids = calloc((size_t)n, sizeof *info->dup_oids);
    if (!info->exts || !info->dup_oids)
        return -1;
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(x, i);
        struct mpic_x509_ext *e = &info->exts[i];
        const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
        int olen = OBJ_obj2txt(e->oid, sizeof e->oid, X509_EXTENSION_get_object(ext), 1);
        if (olen < 0 || (size_t)olen >= sizeof e->oid)
            snprintf(e->oid, sizeof e->oid, "invalid");
        e->critical = X509_EXTENSION_get_critical(ext) > 0;
        e->value_len = (size_t)ASN1_STRING_length(v);
        e->value = dup_bytes(ASN1_STRING_get0_data(v), e->value_len);
        if (!e->value)
            return -1;
        info->n_exts++;
        note_duplicate(info, (size_t)i);
        if (!san && strcmp(e->oid, "2.5.29.17") == 0)
            san = e;
    }
    return san ? parse_sans(info, san) : 0;
}

static int parse_names(struct mpic_x509_info *info, X509 *x)
{
    const unsigned char *p;
    size_t n;
    X509_NAME *subj = X509_get_subject_name(x);

    if (!X509_NAME_get0_der(subj, &p, &n) || !(info->subject_der = dup_bytes(p, n)))
        return -1;
    info->subject_der_len = n;
    if (!X509_NAME_get0_der(X509_get_issuer_name(x), &p, &n) ||
        !(info->issuer_der = dup_bytes(p, n)))
        return -1;
    info->issuer_der_len = n;

    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx >= 0) {
        unsigned char *utf8 = NULL;
        X509_NAME_ENTRY *ent = X509_NAME_get_entry(subj, idx);
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ent));
        if (len >= 0) {
            info->common_name = malloc((size_t)len + 1);
            if (info->common_name) {
                memcpy(info->common_name, utf8, (size_t)len);
                info->common_name[len] = '\0';
            }
        }
        OPENSSL_free(utf8);
        if (len >= 0 && !info->common_name)
            return -1;
    }
    return 0;
}

int mpic_x509_info_parse(const unsigned char *der, size_t len, struct mpic_x509_info *out)
{
    const unsigned char *p = der;
    X509 *x = NULL;
    EVP_PKEY *pk;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (!der || len == 0 || len > 1024 * 1024)
        return -1;
    x = d2i_X509(NULL, &p, (long)len);
    if (!x || p != der + len)
        goto out;
    out->der = dup_bytes(der, len);
    if (!out->der)
        goto out;
    out->der_len = len;
    if (parse_names(out, x) < 0 || parse_exts(out, x) < 0)
        goto out;
    pk = X509_get0_pubkey(x);
    out->self_signed = pk && X509_verify(x, pk) == 1 &&
                       out->subject_der_len == out->issuer_der_len &&
                       memcmp(out->subject_der, out->issuer_der, out->subject_der_len) == 0;
    rc = 0;
out:
    X509_free(x);
    ERR_clear_error();
    if (rc < 0) {
        mpic_x509_info_free(out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

void mpic_x509_info_free(struct mpic_x509_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->n_exts; i++)
        free(info->exts[i].value);
    for (size_t i = 0; i < info->n_sans; i++)
        free(info->sans[i].value);
    free(info->exts);
    free(info->dup_oids);
    free(info->sans);
    free(info->der);
    free(info->subject_der);
    free(info->issuer_der);
    free(info->common_name);
    memset(info, 0, sizeof *info);
}
