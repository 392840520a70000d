/*
 * dns_wire.h: DNS message building and parsing for the DNS probe.
 *
 * Builds query messages (RD=1, AD=1, one question, an OPT RR advertising a
 * 4096-byte UDP payload, CD=0; DO=1 for DS queries only, so that a denial
 * comes back with its NSEC/NSEC3 records) and parses raw replies into plain C
 * structures: header flags, rcode (extended with the OPT upper bits), the
 * answer section with typed rdata, the CNAME chain starting at the question
 * name, the NSEC/NSEC3 records of the authority section (owner, type bitmap,
 * NSEC3 parameters) and the RFC 8914 Extended DNS Error from the OPT RR. The
 * parser never trusts counts or lengths from the message. Names are validated
 * and turned into A-labels with libidn2. Lua-free.
 */
#ifndef MPIC_DNS_WIRE_H
#define MPIC_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

enum {
    MPIC_DNS_T_A = 1,
    MPIC_DNS_T_NS = 2,
    MPIC_DNS_T_CNAME = 5,
    MPIC_DNS_T_SOA = 6,
    MPIC_DNS_T_PTR = 12,
    MPIC_DNS_T_TXT = 16,
    MPIC_DNS_T_AAAA = 28,
    MPIC_DNS_T_OPT = 41,
    MPIC_DNS_T_DS = 43,
    MPIC_DNS_T_RRSIG = 46,
    MPIC_DNS_T_NSEC = 47,
    MPIC_DNS_T_NSEC3 = 50,
    MPIC_DNS_T_CAA = 257,
};

#define MPIC_DNS_MAX_CNAME 16   /* longest CNAME chain reported */
#define MPIC_DNS_MAX_NAME 254   /* presentation length incl. trailing dot */
#define MPIC_DNS_EDNS_SIZE 4096 /* advertised UDP payload */
#define MPIC_DNS_MAX_DENIAL 16  /* authority NSEC/NSEC3 records kept */
#define MPIC_DNS_MAX_TYPES 256  /* types kept from one bitmap */

/* A byte string pointing into the reply's own copy of the message. */
struct mpic_dns_bytes {
    const unsigned char *p;
    size_t len;
};

struct mpic_dns_rr {
    char *owner; /* presentation form as received, trailing dot */
    uint16_t type;
    uint16_t rclass;
    uint32_t ttl;
    struct mpic_dns_bytes rdata; /* raw rdata, always set */
    /* A/AAAA: address text; CNAME/PTR/NS: target with trailing dot;
     * SOA: mname. NULL for other types. */
    char *text;
    char *rname;                    /* SOA only */
    uint32_t soa[5];                /* serial, refresh, retry, expire, minimum */
    struct mpic_dns_bytes *strings; /* TXT character-strings */
    size_t n_strings;
    uint8_t caa_flags;
    struct mpic_dns_bytes caa_tag, caa_value;
};

/* An NSEC or NSEC3 record of the authority section. */
struct mpic_dns_denial {
    char *owner;   /* presentation form, trailing dot */
    uint16_t type; /* MPIC_DNS_T_NSEC or MPIC_DNS_T_NSEC3 */
    /* NSEC: next owner name (trailing dot); NSEC3: next hashed owner in
     * lower-case base32hex without padding */
    char *next;
    uint16_t types[MPIC_DNS_MAX_TYPES]; /* from the type bitmap, ascending */
    size_t n_types;
    /* NSEC3 only */
    uint8_t hash_alg, flags;
    uint16_t iterations;
    struct mpic_dns_bytes salt;
};

struct mpic_dns_reply {
    unsigned char *msg; /* owned copy of the message */
    size_t len;
    int rcode; /* header rcode, extended by the OPT RR when present */
    int aa, tc, rd, ra, ad, cd;
    char *qname; /* question name, trailing dot */
    uint16_t qtype;
    struct mpic_dns_rr *answers;
    size_t n_answers;
    char *cname_chain[MPIC_DNS_MAX_CNAME];
    size_t n_cname;
    int cname_loop;     /* a CNAME target repeats an earlier name */
    int cname_too_long; /* more than MPIC_DNS_MAX_CNAME links */
    /* authority NSEC/NSEC3 records that parsed; malformed ones and those
     * beyond MPIC_DNS_MAX_DENIAL are left out (n_denials_dropped).
     * Allocated with the first one; NULL when there is none. */
    struct mpic_dns_denial *denials;
    size_t n_denials;
    size_t n_denials_dropped;
    int has_opt;
    int ede_code;   /* -1 when absent */
    char *ede_text; /* NUL-terminated copy (may hold inner NULs), or NULL */
    size_t ede_text_len;
};

/* Turn a host name (UTF-8 or ASCII, trailing dot optional) into its A-label
 * form without the trailing dot. Returns 0, or -1 with err filled. */
int mpic_dns_name_normalize(const char *in, char *out, size_t cap, char *err, size_t errlen);

/* The wire form of name (normalized, trailing dot optional: labels of 1 to
 * 63 bytes, then the root label), as given (no case change). Returns its
 * length or -1 when the name is bad or does not fit in cap. */
int mpic_dns_name_to_wire(const char *name, unsigned char *out, size_t cap);

/* Build a query for name (normalized, trailing dot optional). Returns the
 * message length (> 0) or -1 when it does not fit in cap or the name is bad. */
int mpic_dns_wire_build_query(const char *name, uint16_t qtype, uint16_t id, unsigned char *buf,
                              size_t cap);

/* Parse a reply. Returns 0 and *out (free with mpic_dns_reply_free), or -1
 * with err filled when the message is malformed. */
int mpic_dns_wire_parse(const unsigned char *buf, size_t len, struct mpic_dns_reply **out,
                        char *err, size_t errlen);
void mpic_dns_reply_free(struct mpic_dns_reply *r);

/* Decode an NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2): windows in strictly
 * increasing order, each 1 to 32 bytes long without a trailing zero byte.
 * Fills out[] in ascending order and *n. Returns 0, or -1 when the bitmap is
 * empty, truncated, out of order, padded, or lists more than cap types. */
int mpic_dns_bitmap_parse(const unsigned char *p, size_t len, uint16_t *out, size_t cap, size_t *n);

/* "A", "TXT", ... or NULL for types we do not name. */
const char *mpic_dns_type_name(uint16_t type);
/* Query type from its name (case-insensitive), 0 when not a supported
 * query type (A, AAAA, CNAME, TXT, CAA, PTR, NS, SOA, DS). */
uint16_t mpic_dns_qtype_from_name(const char *name);
/* "NOERROR", "SERVFAIL", ... ("RCODE<n>" for unnamed codes, in buf). */
const char *mpic_dns_rcode_name(int rcode, char *buf, size_t cap);

#endif
