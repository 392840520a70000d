/*
 * fuzz_x509.c: libFuzzer target for the certificate inspector
 * (mpic_x509_info_parse of x509_info.c) on arbitrary DER, plus the
 * single-dNSName SAN test on the raw bytes. Every returned buffer is read in
 * full so that AddressSanitizer sees a wrong length.
 * Uses: x509_info.h.
 */
#include "x509_info.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned sink;

static void touch(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        sink += b[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mpic_x509_info info;
    sink += (unsigned)mpic_x509_san_is_single_dns(data, size);
    if (mpic_x509_info_parse(data, size, &info) == 0) {
        touch(info.der, info.der_len);
        if (info.common_name)
            touch(info.common_name, strlen(info.common_name) + 1);
        touch(info.subject_der, info.subject_der_len);
        touch(info.issuer_der, info.issuer_der_len);
        for (size_t i = 0; i < info.n_exts; i++) {
            if (!memchr(info.exts[i].oid, '\0', sizeof info.exts[i].oid))
                abort();
            touch(info.exts[i].value, info.exts[i].value_len);
        }
        for (size_t i = 0; i < info.n_dup_oids; i++)
            if (!memchr(info.dup_oids[i], '\0', sizeof info.dup_oids[i]))
                abort();
        for (size_t i = 0; i < info.n_sans; i++) {
            touch(info.sans[i].value, info.sans[i].value_len);
            if (info.sans[i].type == MPIC_SAN_IP && info.sans[i].value_len != 4 &&
                info.sans[i].value_len != 16)
                abort();
            sink += (unsigned)strlen(mpic_x509_san_type_name(info.sans[i].type));
        }
        if (info.san_single_dns && info.n_sans != 1)
            abort();
    }
    mpic_x509_info_free(&info);
    return 0;
}
