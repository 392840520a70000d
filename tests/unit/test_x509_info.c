/*
 * test_x509_info.c: cmocka tests for x509_info.c. Certificates are built
 * in memory with OpenSSL's APIs (including shapes the openssl CLI refuses to
 * make, such as repeated extensions and undecodable SAN values).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "x509_info.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

struct ext_spec {
    const char *oid;
    int critical;
    const unsigned char *value;
    size_t len;
};

static EVP_PKEY *key_a, *key_b;

static int setup(void **state)
{
    key_a = EVP_EC_gen("P-256");
    key_b = EVP_EC_gen("P-256");
    return key_a && key_b ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    return 0;
}

/* Build a DER certificate for key_a with the given subject CN (NULL: only
 * O=lab), issuer CN (NULL: same name as subject), signed by signer. */
static unsigned char *make_cert(const char *cn, const char *issuer_cn, EVP_PKEY *signer,
                                const struct ext_spec *exts, size_t n, int *len)
{
    X509 *x = X509_new();
    X509_NAME *subj = X509_NAME_new(), *iss = X509_NAME_new();
    unsigned char *der = NULL;

    assert_non_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    if (cn)
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    else
        X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8, (const unsigned char *)"lab", -1, -1,
                                   0);
    if (issuer_cn)
        X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_UTF8, (const unsigned char *)issuer_cn, -1,
                                   -1, 0);
    X509_set_subject_name(x, subj);
    X509_set_issuer_name(x, issuer_cn ? iss : subj);
    X509_set_pubkey(x, key_a);
    for (size_t i = 0; i < n; i++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(exts[i].oid, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e;
        assert_non_null(obj);
        ASN1_OCTET_STRING_set(os, exts[i].value, (int)exts[i].len);
        e = X509_EXTENSION_create_by_OBJ(NULL, obj, exts[i].critical, os);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1); /* appends even when the OID repeats */
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
    }
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    *len = i2d_X509(x, &der);
    assert_true(*len > 0);
    X509_NAME_free(subj);
    X509_NAME_free(iss);
    X509_free(x);
    return der;
}

/* SEQUENCE { [2] "a.example" } */
static const unsigned char SAN_ONE_DNS[] = {0x30, 0x0b, 0x82, 0x09, 'a', '.', 'e',
                                            'x',  'a',  'm',  'p',  'l', 'e'};
/* SEQUENCE { [7] 127.0.0.1, [2] "b" } */
static const unsigned char SAN_IP_DNS[] = {0x30, 0x09, 0x87, 0x04, 127, 0, 0, 1, 0x82, 0x01, 'b'};
/* SEQUENCE { [8] OID 1.2.3 } (registeredID) */
static const unsigned char SAN_RID[] = {0x30, 0x04, 0x88, 0x02, 0x2a, 0x03};
static const unsigned char ACME_VAL[34] = {0x04, 0x20, 1, 2, 3};
#define ACME_OID "1.3.6.1.5.5.7.1.31"
#define SAN_OID "2.5.29.17"

static void test_dns_cert_fields(void **state)
{
    struct ext_spec e[] = {{SAN_OID, 0, SAN_ONE_DNS, sizeof SAN_ONE_DNS},
                           {ACME_OID, 1, ACME_VAL, sizeof ACME_VAL}};
    int len;
    unsigned char *der = make_cert("a.example", NULL, key_a, e, 2, &len);
    struct mpic_x509_info info;

    assert_int_equal(mpic_x509_info_parse(der, (size_t)len, &info), 0);
    assert_string_equal(info.common_name, "a.example");
    assert_int_equal(info.self_signed, 1);
    assert_int_equal(info.der_len, (size_t)len);
    assert_memory_equal(info.der, der, (size_t)len);
    assert_int_equal(info.n_exts, 2);
    assert_string_equal(info.exts[0].oid, SAN_OID);
    assert_int_equal(info.exts[0].critical, 0);
    assert_int_equal(info.exts[0].value_len, sizeof SAN_ONE_DNS);
    assert_string_equal(info.exts[1].oid, ACME_OID);
    assert_int_equal(info.exts[1].critical, 1);
    assert_memory_equal(info.exts[1].value, ACME_VAL, sizeof ACME_VAL);
    assert_int_equal(info.n_dup_oids, 0);
    assert_int_equal(info.san_present, 1);
    assert_int_equal(info.san_malformed, 0);
    assert_int_equal(info.san_single_dns, 1);
    assert_int_equal(info.n_sans, 1);
    assert_int_equal(info.sans[0].type, MPIC_SAN_DNS);
    assert_int_equal(info.sans[0].value_len, 9);
    assert_memory_equal(info.sans[0].value, "a.example", 9);
    mpic_x509_info_free(&info);
    OPENSSL_free(der);
}

static void test_san_types_and_no_cn(void **state)
{
    struct ext_spec e[] = {{SAN_OID, 0, SAN_IP_DNS, sizeof SAN_IP_DNS}};
    struct ext_spec r[] = {{SAN_OID, 0, SAN_RID, sizeof SAN_RID}};
    int len;
    unsigned char *der = make_cert(NULL, NULL, key_a, e, 1, &len);
    struct mpic_x509_info info;

    assert_int_equal(mpic_x509_info_parse(der, (size_t)len, &info), 0);
    assert_null(info.common_name);
    assert_int_equal(info.n_sans, 2);
    assert_int_equal(info.sans[0].type, MPIC_SAN_IP);
    assert_int_equal(info.sans[0].value_len, 4);
    assert_memory_equal(info.sans[0].value, "\x7f\0\0\x01", 4);
    assert_int_equal(info.sans[1].type, MPIC_SAN_DNS);
    assert_int_equal(info.san_single_dns, 0);
    mpic_x509_info_free(&info);
    OPENSSL_free(der);

    der = make_cert("x", NULL, key_a, r, 1, &len);
    assert_int_equal(mpic_x509_info_parse(der, (size_t)len, &info), 0);
    assert_int_equal(info.n_sans, 1);
    assert_int_equal(info.sans[0].type, MPIC_SAN_OTHER);
    assert_string_equal(mpic_x509_san_type_name(info.sans[0].type), "other");
    assert_memory_equal(info.sans[0].value, SAN_RID + 2,
                        sizeof SAN_RID - 2); /* whole GeneralName */
    mpic_x509_info_free(&info);
    OPENSSL_free(der);
}

static void test_duplicates_listed_once(void **state)
{
    struct ext_spec e[] = {{SAN_OID, 0, SAN_ONE_DNS, sizeof SAN_ONE_DNS},
                           {ACME_OID, 1, ACME_VAL, sizeof ACME_VAL},
                           {ACME_OID, 1, ACME_VAL, sizeof ACME_VAL},
                           {ACME_OID, 0, ACME_VAL, sizeof ACME_VAL},
                           {SAN_OID, 0, SAN_IP_DNS, sizeof SAN_IP_DNS}};
    int len;
    unsigned char *der = make_cert("a.example", NULL, key_a, e, 5, &len);
    struct mpic_x509_info info;

    assert_int_equal(mpic_x509_info_parse(der, (size_t)len, &info), 0);
    assert_int_equal(info.n_exts, 5);
    assert_int_equal(info.n_dup_oids, 2);
    assert_string_equal(info.dup_oids[0], ACME_OID);
    assert_string_equal(info.dup_oids[1], SAN_OID);
    /* SANs come from the first SAN extension */
    assert_int_equal(info.n_sans, 1);
    assert_int_equal(info.sans[0].type, MPIC_SAN_DNS);
    assert_int_equal(info.self_signed, 1);
    mpic_x509_info_free(&info);
    OPENSSL_free(der);
}

static void test_not_self_signed(void **state)
{
    int len;
    struct mpic_x509_info info;
    /* same subject and issuer, signed by another key */
    unsigned char *der = make_cert("a.example", NULL, key_b, NULL, 0, &len);
    assert_int_equal(mpic_x509_info_parse(der, (size_t)len, &info), 0);
    assert_int_equal(info.self_signed, 0);
    assert_int_equal(info.subject_der_len, info.issuer_der_len);
    assert_memory_equal(info.subject_der, info.issuer_der, info.subject_der_len);
    mpic_x509_info_free(&info);
    OPENSSL_free(der);
    /* own key, different issuer name */
    der = make_cert("a.example", "Some CA", key_a, NULL, 0, &len);
    assert_int_equal(mpic_x509_info_parse(der, (size_t)len, &info), 0);
    assert_int_equal(info.self_signed, 0);
    assert_int_equal(info.san_present, 0);
    assert_int_equal(info.n_exts, 0);
    mpic_x509_info_free(&info);
    OPENSSL_free(der);
}

static void test_malformed_san_value(void **state)
{
    static const unsigned char junk[] = {0x01, 0x02, 0x03};
    struct ext_spec e[] = {{SAN_OID, 0, junk, sizeof junk}};
    int len;
    unsigned char *der = make_cert("a.example", NULL, key_a, e, 1, &len);
    struct mpic_x509_info info;

    assert_int_equal(mpic_x509_info_parse(der, (size_t)len, &info), 0);
    assert_int_equal(info.san_present, 1);
    assert_int_equal(info.san_malformed, 1);
    assert_int_equal(info.n_sans, 0);
    assert_int_equal(info.san_single_dns, 0);
    assert_memory_equal(info.exts[0].value, junk, sizeof junk);
    mpic_x509_info_free(&info);
    OPENSSL_free(der);
}

static void test_bad_der_rejected(void **state)
{
    int len;
    unsigned char *der = make_cert("a.example", NULL, key_a, NULL, 0, &len);
    unsigned char *longer = malloc((size_t)len + 1);
    struct mpic_x509_info info;

    assert_int_equal(mpic_x509_info_parse(NULL, 0, &info), -1);
    assert_int_equal(mpic_x509_info_parse((const unsigned char *)"\x30", 1, &info), -1);
    for (int cut = 1; cut < len; cut += 7)
        assert_int_equal(mpic_x509_info_parse(der, (size_t)(len - cut), &info), -1);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    assert_int_equal(mpic_x509_info_parse(longer, (size_t)len + 1, &info), -1); /* trailing byte */
    assert_null(info.der);
    mpic_x509_info_free(&info); /* harmless after failure */
    free(longer);
    OPENSSL_free(der);
}

static void test_san_single_dns_exact_der(void **state)
{
    static const unsigned char two[] = {0x30, 0x06, 0x82, 0x01, 'a', 0x82, 0x01, 'b'};
    static const unsigned char trailing[] = {0x30, 0x03, 0x82, 0x01, 'a', 0x00};
    static const unsigned char ip[] = {0x30, 0x06, 0x87, 0x04, 1, 2, 3, 4};
    static const unsigned char long_form[] = {0x30, 0x81, 0x03, 0x82, 0x01, 'a'};
    static const unsigned char inner_short[] = {0x30, 0x03, 0x82, 0x02, 'a'};
    static const unsigned char empty[] = {0x30, 0x00};
    static const unsigned char huge[] = {0x30, 0x88, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff};

    assert_int_equal(mpic_x509_san_is_single_dns(SAN_ONE_DNS, sizeof SAN_ONE_DNS), 1);
    assert_int_equal(mpic_x509_san_is_single_dns(two, sizeof two), 0);
    assert_int_equal(mpic_x509_san_is_single_dns(trailing, sizeof trailing), 0);
    assert_int_equal(mpic_x509_san_is_single_dns(ip, sizeof ip), 0);
    assert_int_equal(mpic_x509_san_is_single_dns(long_form, sizeof long_form), 0);
    assert_int_equal(mpic_x509_san_is_single_dns(inner_short, sizeof inner_short), 0);
    assert_int_equal(mpic_x509_san_is_single_dns(empty, sizeof empty), 0);
    assert_int_equal(mpic_x509_san_is_single_dns(huge, sizeof huge), 0);
    assert_int_equal(mpic_x509_san_is_single_dns(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_cert_fields),          cmocka_unit_test(test_san_types_and_no_cn),
        cmocka_unit_test(test_duplicates_listed_once),   cmocka_unit_test(test_not_self_signed),
        cmocka_unit_test(test_malformed_san_value),      cmocka_unit_test(test_bad_der_rejected),
        cmocka_unit_test(test_san_single_dns_exact_der),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
