/*
 * fuzz_ip.c: libFuzzer target for the strict IP parser and the reserved
 * block lookup (netaddr.c). Properties checked: an accepted text is also
 * accepted by inet_pton with the same bytes (our parser is stricter, never
 * looser), the canonical form re-parses to the same address, and the
 * reserved lookup gives the same answer for both. Also runs the public
 * suffix lookup on the text.
 * Uses: netaddr.h, inet_pton.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct mpic_addr a, b;
    char canon[64], suffix[256];
    unsigned char raw[16];
    if (mpic_netaddr_parse(text, &a) == 0) {
        if (a.family != 4 && a.family != 6)
            abort();
        int af = a.family == 4 ? AF_INET : AF_INET6;
        if (inet_pton(af, text, raw) != 1 || memcmp(raw, a.bytes, a.family == 4 ? 4 : 16) != 0) {
            fprintf(stderr, "netaddr: accepted \"%s\" but inet_pton disagrees\n", text);
            abort();
        }
        if (mpic_netaddr_format(&a, canon, sizeof canon) != 0 ||
            mpic_netaddr_parse(canon, &b) != 0 || b.family != a.family ||
            memcmp(a.bytes, b.bytes, a.family == 4 ? 4 : 16) != 0) {
            fprintf(stderr, "netaddr: \"%s\" does not round-trip\n", text);
            abort();
        }
        const char *r1 = mpic_netaddr_reserved(&a), *r2 = mpic_netaddr_reserved(&b);
        if ((r1 == NULL) != (r2 == NULL))
            abort();
    }
    (void)mpic_netaddr_icann_suffix(text, suffix, sizeof suffix);
    free(text);
    return 0;
}
