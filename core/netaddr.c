/*
 * netaddr.c: strict IP text parsing and reserved-block lookup. Provides the
 * mpic_netaddr_* functions of netaddr.h; the block lists restate the IANA
 * IPv4 and IPv6 Special-Purpose Address Registries (blocks that are not
 * globally reachable, plus documentation, benchmarking and multicast
 * ranges). Also the ICANN public-suffix lookup. Uses libc (inet_pton and
 * inet_ntop; glibc's inet_pton refuses leading-zero IPv4 octets) and libpsl
 * (the newest of its built-in and Debian's publicsuffix data).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpsl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

struct block {
    unsigned char net[16];
    int bits;
    const char *name;
};

static const struct block v4_blocks[] = {
    {{0, 0, 0, 0}, 8, "[RFC791]: This network"},
    {{10, 0, 0, 0}, 8, "[RFC1918]: Private-Use"},
    {{100, 64, 0, 0}, 10, "[RFC6598]: Shared Address Space"},
    {{127, 0, 0, 0}, 8, "[RFC1122]: Loopback"},
    {{169, 254, 0, 0}, 16, "[RFC3927]: Link Local"},
    {{172, 16, 0, 0}, 12, "[RFC1918]: Private-Use"},
    {{192, 0, 0, 0}, 24, "[RFC6890]: IETF Protocol Assignments"},
    {{192, 0, 2, 0}, 24, "[RFC5737]: Documentation (TEST-NET-1)"},
    {{192, 88, 99, 0}, 24, "[RFC7526]: Deprecated (6to4 Relay Anycast)"},
    {{192, 168, 0, 0}, 16, "[RFC1918]: Private-Use"},
    {{198, 18, 0, 0}, 15, "[RFC2544]: Benchmarking"},
    {{198, 51, 100, 0}, 24, "[RFC5737]: Documentation (TEST-NET-2)"},
    {{203, 0, 113, 0}, 24, "[RFC5737]: Documentation (TEST-NET-3)"},
    {{224, 0, 0, 0}, 4, "[RFC5771]: Multicast Addresses"},
    {{255, 255, 255, 255}, 32, "[RFC8190]: Limited Broadcast"},
    {{240, 0, 0, 0}, 4, "[RFC1112]: Reserved"},
};

/* Globally reachable parts of 2001::/23, checked before the /23 itself. */
static const struct block v6_exempt[] = {
    {{0x20, 0x01, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "PCP Anycast"},
    {{0x20, 0x01, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 128, "TURN Anycast"},
    {{0x20, 0x01, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}, 128, "DNS-SD SRP Anycast"},
    {{0x20, 0x01, 0, 0x03}, 32, "AMT"},
    {{0x20, 0x01, 0, 0x04, 0x01, 0x12}, 48, "AS112-v6"},
    {{0x20, 0x01, 0, 0x20}, 28, "ORCHIDv2"},
    {{0x20, 0x01, 0, 0x30}, 28, "Drone Remote ID Protocol Entity Tags"},
};

static const struct block v6_blocks[] = {
    {{0}, 128, "[RFC4291]: Unspecified Address"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "[RFC4291]: Loopback Address"},
    /* deprecated forms a careful CA refuses outright (not in the IANA
     * registry as special-purpose, but never a legitimate destination) */
    {{0}, 96, "[RFC4291]: Deprecated (IPv4-Compatible IPv6 Address, ::/96)"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0},
     96,
     "[RFC2765]: Deprecated (SIIT IPv4-Translated Address, ::ffff:0:0:0/96)"},
    {{0xfe, 0xc0}, 10, "[RFC3879]: Deprecated (Site-Local Unicast, fec0::/10)"},
    {{0, 0x64, 0xff, 0x9b, 0, 0x01}, 48, "[RFC8215]: IPv4-IPv6 Translat."},
    {{0x01, 0, 0, 0, 0, 0, 0, 0}, 64, "[RFC6666]: Discard-Only Address Block"},
    {{0x01, 0, 0, 0, 0, 0, 0, 0x01}, 64, "[RFC9780]: Dummy IPv6 Prefix"},
    {{0x20, 0x01, 0, 0}, 32, "[RFC4380]: TEREDO"},
    {{0x20, 0x01, 0, 0x02, 0, 0}, 48, "[RFC5180]: Benchmarking"},
    {{0x20, 0x01, 0, 0x10}, 28, "[RFC4843]: Deprecated (previously ORCHID)"},
    {{0x20, 0x01, 0, 0}, 23, "[RFC2928]: IETF Protocol Assignments"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "[RFC3849]: Documentation"},
    {{0x20, 0x02}, 16, "[RFC3056]: 6to4"},
    {{0x3f, 0xff, 0, 0}, 20, "[RFC9637]: Documentation"},
    {{0x5f, 0x00}, 16, "[RFC9602]: Segment Routing (SRv6) SIDs"},
    {{0xfc, 0}, 7, "[RFC4193]: Unique-Local"},
    {{0xfe, 0x80}, 10, "[RFC4291]: Link-Local Unicast"},
    {{0xff, 0}, 8, "[RFC4291]: Multicast Addresses"},
};

static int in_block(const unsigned char *a, const struct block *b)
{
    int full = b->bits / 8, rest = b->bits % 8;
    if (memcmp(a, b->net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b->net[full] & mask);
}

static const char *lookup(const unsigned char *a, const struct block *tab, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (in_block(a, &tab[i]))
            return tab[i].name;
    return NULL;
}

int mpic_netaddr_parse(const char *text, struct mpic_addr *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return -EINVAL;
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->family = 6;
        return 0;
    }
    return -EINVAL;
}

int mpic_netaddr_sockaddr(const char *text, int port, struct sockaddr_storage *ss,
                          unsigned int *len)
{
    struct mpic_addr a;
    memset(ss, 0, sizeof *ss);
    if (port < 0 || port > 65535 || mpic_netaddr_parse(text, &a) != 0)
        return -EINVAL;
    if (a.family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        memcpy(&s4->sin_addr, a.bytes, 4);
        *len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        memcpy(&s6->sin6_addr, a.bytes, 16);
        *len = sizeof *s6;
    }
    return 0;
}

int mpic_netaddr_format(const struct mpic_addr *a, char *buf, size_t len)
{
    if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->bytes, buf, (socklen_t)len))
        return -ENOSPC;
    return 0;
}

const char *mpic_netaddr_reserved(const struct mpic_addr *a)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

    if (a->family == 4)
        return lookup(a->bytes, v4_blocks, sizeof v4_blocks / sizeof v4_blocks[0]);
    if (a->family != 6)
        return "[mpic]: Unknown address family";
    if (memcmp(a->bytes, mapped, 12) == 0 || memcmp(a->bytes, nat64, 12) == 0)
        return lookup(a->bytes + 12, v4_blocks, sizeof v4_blocks / sizeof v4_blocks[0]);
    if (lookup(a->bytes, v6_exempt, sizeof v6_exempt / sizeof v6_exempt[0]))
        return NULL;
    return lookup(a->bytes, v6_blocks, sizeof v6_blocks / sizeof v6_blocks[0]);
}

const char *mpic_netaddr_sockaddr_reserved(const struct sockaddr *sa, char *text, size_t len)
{
    struct mpic_addr a;
    memset(&a, 0, sizeof a);
    if (len)
        text[0] = '\0';
    if (sa && sa->sa_family == AF_INET) {
        a.family = 4;
        memcpy(a.bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        a.family = 6;
        memcpy(a.bytes, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        snprintf(text, len, "(family %d)", sa ? (int)sa->sa_family : -1);
        return "[mpic]: Not an IP address family";
    }
    if (mpic_netaddr_format(&a, text, len) < 0 && len)
        text[0] = '\0';
    return mpic_netaddr_reserved(&a);
}

/* ---- public suffix list (libpsl) ------------------------------------------ */

static const psl_ctx_t *psl_get(void)
{
    static const psl_ctx_t *ctx;
    static int tried;
    if (!tried) {
        tried = 1;
        ctx = psl_latest(NULL);
        if (!ctx)
            ctx = psl_builtin();
    }
    return ctx;
}

/* host lower-cased, without one trailing dot, into out (>= 254 bytes).
 * -EINVAL for an empty name, an empty label or more than 253 octets. */
static int canon_name(const char *host, char *out, size_t len, const char **why)
{
    size_t n = host ? strlen(host) : 0;
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (n == 0) {
        *why = "empty name";
        return -EINVAL;
    }
    if (host[n - 1] == '.') {
        *why = "empty label";
        return -EINVAL;
    }
    if (n > 253 || n >= len) {
        *why = "name longer than 253 octets";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c == '.' && (i == 0 || host[i - 1] == '.')) {
            *why = "empty label";
            return -EINVAL;
        }
        if (c <= ' ' || c == 127) {
            *why = "control character or space in name";
            return -EINVAL;
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[n] = '\0';
    return 0;
}

int mpic_netaddr_icann_suffix(const char *host, char *out, size_t len)
{
    char name[256];
    const char *why;
    const psl_ctx_t *ctx = psl_get();
    if (!ctx)
        return -ENOSYS;
    if (canon_name(host, name, sizeof name, &why) < 0)
        return -ENOENT;
    for (const char *p = name; p && *p; p = strchr(p, '.'), p = p ? p + 1 : NULL) {
        if (psl_is_public_suffix2(ctx, p, PSL_TYPE_ICANN | PSL_TYPE_NO_STAR_RULE)) {
            if ((size_t)snprintf(out, len, "%s", p) >= len)
                return -ENOSPC;
            return 0;
        }
    }
    return -ENOENT;
}

/* ---- special-use names ----------------------------------------------------- */

/* The IANA Special-Use Domain Names registry (RFC 6761 and later), the
 * private-use .internal, and .arpa (infrastructure only, RFC 3172: reverse
 * mapping zones are never a certificate's subject). A name equal to an entry
 * or below it is special-use; the first match wins, so the specific .arpa
 * entries come before .arpa itself. */
static const struct {
    const char *name;
    const char *why;
} special_names[] = {
    {"localhost", "[RFC6761]: localhost (loopback)"},
    {"invalid", "[RFC6761]: invalid (never resolves)"},
    {"test", "[RFC6761]: test (testing)"},
    {"example", "[RFC6761]: example (documentation)"},
    {"local", "[RFC6762]: local (Multicast DNS, link-local)"},
    {"onion", "[RFC7686]: onion (Tor onion services)"},
    {"alt", "[RFC9476]: alt (non-DNS name spaces)"},
    {"internal", "[ICANN 2024]: internal (private-use top-level domain)"},
    {"home.arpa", "[RFC8375]: home.arpa (home networks)"},
    {"ipv4only.arpa", "[RFC8880]: ipv4only.arpa (NAT64 discovery)"},
    {"resolver.arpa", "[RFC9462]: resolver.arpa (resolver discovery)"},
    {"service.arpa", "[RFC9665]: service.arpa (DNS-SD service registration)"},
    {"arpa", "[RFC3172]: arpa (infrastructure, reverse mapping)"},
};

const char *mpic_netaddr_special_name(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof special_names / sizeof special_names[0]; i++) {
        const char *s = special_names[i].name;
        size_t k = strlen(s);
        if (n == k ? strcmp(name, s) == 0
                   : n > k && name[n - k - 1] == '.' && strcmp(name + n - k, s) == 0)
            return special_names[i].why;
    }
    return NULL;
}

int mpic_netaddr_vet_name(const char *host, char *suffix, size_t len, char *why, size_t wlen)
{
    char name[256];
    const char *what = NULL, *last;
    int rc = canon_name(host, name, sizeof name, &what);

    if (rc < 0) {
        snprintf(why, wlen, "%s", what);
        return rc;
    }
    last = strrchr(name, '.');
    last = last ? last + 1 : name;
    if (strspn(last, "0123456789") == strlen(last)) {
        snprintf(why, wlen, "the last label is numeric (an IP address is not a name): %s", name);
        return -EINVAL;
    }
    if ((what = mpic_netaddr_special_name(name))) {
        snprintf(why, wlen, "special-use name: %s", what);
        return -EPERM;
    }
    rc = mpic_netaddr_icann_suffix(name, suffix, len);
    if (rc == -ENOSYS) {
        snprintf(why, wlen, "public suffix list unavailable (libpsl)");
        return rc;
    }
    if (rc == -ENOSPC) {
        snprintf(why, wlen, "name too long");
        return rc;
    }
    if (rc < 0) {
        snprintf(why, wlen, "not below an ICANN public suffix: %s", name);
        return -ENOENT;
    }
    if (strcmp(suffix, name) == 0) {
        snprintf(why, wlen, "a public suffix itself, not a name below one: %s", name);
        return -EEXIST;
    }
    if (wlen)
        why[0] = '\0';
    return 0;
}
