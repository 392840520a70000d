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

/* A socket address for an IP literal (as mpic_netaddr_parse) and a port
 * (0..65535); *len gets its length. Returns 0 or -EINVAL. */
struct sockaddr_storage;
int mpic_netaddr_sockaddr(const char *text, int port, struct sockaddr_storage *ss,
                          unsigned int *len);

/* Canonical text (inet_ntop form). Returns 0 or -ENOSPC. */
int mpic_netaddr_format(const struct mpic_addr *a, char *buf, size_t len);

/* The registry entry ("[RFC1918]: Private-Use") when a is in a reserved
 * block, or NULL. IPv4-mapped and NAT64 (64:ff9b::/96) addresses are judged
 * by the IPv4 address they carry. The deprecated IPv4-compatible (::/96),
 * SIIT (::ffff:0:0:0/96) and site-local (fec0::/10) forms are refused too. */
const char *mpic_netaddr_reserved(const struct mpic_addr *a);

/* The same for the destination of a socket (AF_INET or AF_INET6; any other
 * family is refused), with its text form written to text (>= 46 bytes). */
struct sockaddr;
const char *mpic_netaddr_sockaddr_reserved(const struct sockaddr *sa, char *text, size_t len);

/*
 * The longest suffix of host (A-labels, any case, at most one trailing dot,
 * which is dropped first) that is in the ICANN section of the Public Suffix
 * List (libpsl with the system's publicsuffix data; the implicit "*" rule is
 * not applied). Writes it to out (lower case, no trailing dot) and returns
 * 0; -ENOENT when host has no ICANN suffix or is malformed (an empty label),
 * -ENOSYS when libpsl cannot be loaded, -ENOSPC when out is too small.
 */
int mpic_netaddr_icann_suffix(const char *host, char *out, size_t len);

/* The registry entry ("[RFC6761]: localhost (loopback)") when name (lower
 * case, no trailing dot) is a special-use name or below one (localhost,
 * invalid, test, example, local, onion, alt, internal, home.arpa, the other
 * .arpa names, arpa), or NULL. */
const char *mpic_netaddr_special_name(const char *name);

/*
 * Vet a DNS name as a validation target or redirect host outside labs: one
 * trailing dot is dropped and the name lower-cased first; it must not be
 * special-use, its last label must not be numeric, and it must be below an
 * ICANN public suffix (a bare suffix such as "co.uk" is refused). Returns 0
 * with the suffix in suffix; otherwise a reason in why and -EINVAL
 * (malformed, numeric last label), -EPERM (special-use), -ENOENT (no ICANN
 * suffix), -EEXIST (a bare public suffix), -ENOSYS (libpsl unavailable) or
 * -ENOSPC.
 */
int mpic_netaddr_vet_name(const char *host, char *suffix, size_t len, char *why, size_t wlen);

#endif
