/*
 * encode.h: byte encodings used by challenge values (no Lua, no allocation
 * beyond what the caller provides).
 */
#ifndef MPIC_ENCODE_H
#define MPIC_ENCODE_H

#include <stddef.h>

/* Output sizes (without the terminating NUL the functions also write). */
#define MPIC_B64_LEN(n) ((((n) + 2) / 3) * 4)
#define MPIC_B32_LEN(n) ((((n) + 4) / 5) * 8)

/* Standard base64 with padding (url=0), or base64url without padding (url=1).
 * out needs MPIC_B64_LEN(n)+1 bytes. Returns the length written. */
size_t mpic_base64(const unsigned char *in, size_t n, char *out, int url);
/* Decode standard or url alphabet, padding optional. Returns length or -1. */
long mpic_base64_decode(const char *in, size_t n, unsigned char *out);
/* RFC 4648 base32, lower-case, no padding. out needs MPIC_B32_LEN(n)+1. */
size_t mpic_base32(const unsigned char *in, size_t n, char *out);
/* RFC 4648 base32hex (the NSEC3 hash alphabet), lower-case, no padding. out
 * needs MPIC_B32_LEN(n)+1. */
size_t mpic_base32hex(const unsigned char *in, size_t n, char *out);
/* Lower-case hex. out needs 2n+1. */
void mpic_hex(const unsigned char *in, size_t n, char *out);
/* Length of the valid UTF-8 sequence at s (at most n >= 1 bytes): 1 for
 * ASCII; shortest form, no surrogates, at most U+10FFFF; 0 when invalid. */
size_t mpic_utf8_seq_len(const unsigned char *s, size_t n);
/* Copy s to out replacing invalid UTF-8 with U+FFFD; out needs 3n+1 bytes.
 * Returns the length written. */
size_t mpic_utf8_sanitize(const char *s, size_t n, char *out);
/* Great-circle distance in km (haversine, R = 6371.0088 km). */
double mpic_distance_km(double lat1, double lon1, double lat2, double lon2);

#endif
