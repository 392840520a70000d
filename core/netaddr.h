/*
 * netaddr.h: strict IP address parsing and the IANA special-purpose address
 * registries (IPv4 and IPv6) used to refuse probes towards reserved blocks.
 */
#ifndef MPIC_NETADDR_H
#define MPIC_NETADDR_H

#include <stddef.h>

struct mpic_addr {
    int family;              /* 4 or 6 */
    unsigned char bytes[16]; /* network order; 4 used for IPv4 */
};

/* Parse an IPv4 dotted quad (no leading zeros) or an RFC 4291 IPv6 text
 * form (no brackets, no zone). Returns 0 or -EINVAL. */
int mpic_netaddr_parse(const char *text, struct mpic_addr *out);

/* Canonical text (inet_ntop form). Returns 0 or -ENOSPC. */
int mpic_netaddr_format(const struct mpic_addr *a, char *buf, size_t len);

/* The registry entry ("[RFC1918]: Private-Use") when a is in a reserved
 * block, or NULL. IPv4-mapped and NAT64 (64:ff9b::/96) addresses are judged
 * by the IPv4 address they carry. */
const char *mpic_netaddr_reserved(const struct mpic_addr *a);

/*
 * The longest suffix of host (lower-case A-labels, no trailing dot) that is
 * in the ICANN section of the Public Suffix List (libpsl with the system's
 * publicsuffix data; the implicit "*" rule is not applied). Writes it to out
 * and returns 0; -ENOENT when host has no ICANN suffix, -ENOSYS when libpsl
 * cannot be loaded, -ENOSPC when out is too small.
 */
int mpic_netaddr_icann_suffix(const char *host, char *out, size_t len);

#endif
