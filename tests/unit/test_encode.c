/*
 * test_encode.c: encodings and distance (encode.c) against published vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "encode.h"
#include "errors.h"

static void base64_rfc4648_vectors(void **state)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char buf[64];
    for (size_t i = 0; i < 7; i++) {
        mpic_base64((const unsigned char *)in[i], strlen(in[i]), buf, 0);
        assert_string_equal(buf, out[i]);
    }
}

static void base64url_has_no_padding(void **state)
{
    char buf[16];
    assert_int_equal(mpic_base64((const unsigned char *)"\xfb\xff", 2, buf, 1), 3);
    assert_string_equal(buf, "-_8");
}

static void base64_decode_rejects_bad_input(void **state)
{
    unsigned char out[16];
    assert_int_equal(mpic_base64_decode("Zm9vYg==", 8, out), 4);
    assert_memory_equal(out, "foob", 4);
    assert_int_equal(mpic_base64_decode("Z", 1, out), -1);
    assert_int_equal(mpic_base64_decode("Zm9$", 4, out), -1);
}

static void base32_rfc4648_vectors_lowercase_unpadded(void **state)
{
    const char *in[] = {"f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"};
    char buf[64];
    for (size_t i = 0; i < 6; i++) {
        mpic_base32((const unsigned char *)in[i], strlen(in[i]), buf);
        assert_string_equal(buf, out[i]);
    }
}

static void base32hex_rfc4648_vectors_lowercase_unpadded(void **state)
{
    const char *in[] = {"f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"co", "cpng", "cpnmu", "cpnmuog", "cpnmuoj1", "cpnmuoj1e8"};
    char buf[64];
    for (size_t i = 0; i < 6; i++) {
        mpic_base32hex((const unsigned char *)in[i], strlen(in[i]), buf);
        assert_string_equal(buf, out[i]);
    }
}

static void utf8_sanitize_replaces_invalid_sequences(void **state)
{
    char out[64];
    /* stray continuation, overlong NUL, surrogate, truncated sequence */
    const char in[] = "a\x80"
                      "b\xc0\x80"
                      "c\xed\xa0\x80"
                      "d\xe2\x82";
    size_t n = mpic_utf8_sanitize(in, sizeof in - 1, out);
    assert_int_equal(n, strlen(out));
    assert_non_null(strstr(out, "a\xef\xbf\xbd"
                                "b"));
    assert_null(strchr(out, '\x80'));
    /* valid multi-byte text is kept */
    n = mpic_utf8_sanitize("caf\xc3\xa9", 5, out);
    assert_string_equal(out, "caf\xc3\xa9");
}

static void haversine_matches_reference_pairs(void **state)
{
    /* Frankfurt-Paris ~478 km; Dublin-London ~463 km (REFERENCE 6.3) */
    double fp = mpic_distance_km(50.1109, 8.6821, 48.8566, 2.3522);
    double dl = mpic_distance_km(53.3498, -6.2603, 51.5072, -0.1276);
    assert_true(fp > 470 && fp < 485);
    assert_true(dl > 455 && dl < 470);
    assert_true(mpic_distance_km(0, 0, 0, 0) == 0);
    assert_true(mpic_distance_km(90, 0, -90, 0) > 20015 && mpic_distance_km(90, 0, -90, 0) < 20016);
}

static void error_vocabulary_is_closed(void **state)
{
    assert_string_equal(mpic_err_name(MPIC_E_TIMEOUT), "timeout");
    assert_string_equal(mpic_err_name(MPIC_E_NXDOMAIN), "nxdomain");
    assert_int_equal(mpic_err_completed(MPIC_E_NXDOMAIN), 1);
    assert_int_equal(mpic_err_completed(MPIC_E_TIMEOUT), 0);
    assert_string_equal(mpic_err_name((enum mpic_err)999), "internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_rfc4648_vectors),
        cmocka_unit_test(base64url_has_no_padding),
        cmocka_unit_test(base64_decode_rejects_bad_input),
        cmocka_unit_test(base32_rfc4648_vectors_lowercase_unpadded),
        cmocka_unit_test(base32hex_rfc4648_vectors_lowercase_unpadded),
        cmocka_unit_test(utf8_sanitize_replaces_invalid_sequences),
        cmocka_unit_test(haversine_matches_reference_pairs),
        cmocka_unit_test(error_vocabulary_is_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
