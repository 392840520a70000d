/*
 * x509_info.h: a certificate (DER bytes) turned into a plain C struct holding
 * what the acme-tls-alpn-01 checks need: extensions with their raw values,
 * duplicate extension OIDs, SAN entries with their exact bytes, the subject
 * CN and a strict self-signed test. Lua-free; also the fuzzing entry point.
 */
#ifndef MPIC_X509_INFO_H
#define MPIC_X509_INFO_H

#include <stddef.h>

enum mpic_san_type {
    MPIC_SAN_DNS,
    MPIC_SAN_IP,
    MPIC_SAN_EMAIL,
    MPIC_SAN_URI,
    MPIC_SAN_OTHER, /* value is the DER of the whole GeneralName */
};

struct mpic_x509_ext {
    char oid[96]; /* dotted text, e.g. "2.5.29.17" */
    int critical;
    unsigned char *value; /* raw extnValue content (inside the OCTET STRING) */
    size_t value_len;
};

struct mpic_x509_san {
    enum mpic_san_type type;
    unsigned char *value; /* dns/email/uri: the IA5String bytes; ip: 4 or 16 raw bytes */
    size_t value_len;
};

struct mpic_x509_info {
    unsigned char *der;
    size_t der_len;
    char *common_name; /* UTF-8, NULL when the subject has no CN */
    int self_signed;   /* own signature verifies AND subject DER == issuer DER */
    unsigned char *subject_der;
    size_t subject_der_len;
    unsigned char *issuer_der;
    size_t issuer_der_len;
    struct mpic_x509_ext *exts;
    size_t n_exts;
    char (*dup_oids)[96]; /* each duplicated OID once */
    size_t n_dup_oids;
    int san_present;   /* a 2.5.29.17 extension exists (the first one is used) */
    int san_malformed; /* it exists but does not decode as GeneralNames */
    struct mpic_x509_san *sans;
    size_t n_sans;
    int san_single_dns; /* the SAN extnValue DER is exactly SEQUENCE { [2] IA5 } */
};

/* Parse DER; returns 0, or -1 (out zeroed) when it is not a certificate.
 * Release with mpic_x509_info_free even on failure (harmless). */
int mpic_x509_info_parse(const unsigned char *der, size_t len, struct mpic_x509_info *out);
void mpic_x509_info_free(struct mpic_x509_info *info);

/* Name of a SAN type: "dns", "ip", "email", "uri", "other". */
const char *mpic_x509_san_type_name(enum mpic_san_type t);

/* 1 when buf/len (a SAN extnValue) is exactly one dNSName entry in DER. */
int mpic_x509_san_is_single_dns(const unsigned char *buf, size_t len);

#endif
