/*
 * test_kdf.c - HKDF-SHA256 against RFC 5869 Appendix A (test cases 1-3), its argument bounds,
 * the reference's RSA derivation (kdf.h) and no secret left allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "buf.h"
#include "hex.h"
#include "kdf.h"
#include "ossl.h"
#include "secret.h"

/* Decodes hex into a static buffer slot (tests only). */
static struct skr_span
hx(const char *h, uint8_t *buf, size_t cap)
{
    size_t n = strlen(h) / 2;

    assert_true(n <= cap);
    assert_int_equal(skr_hex_decode_fixed(skr_span_str(h), buf, n), SKR_OK);
    return skr_span_make(buf, n);
}

static void
check_hkdf(const char *ikm, const char *salt, const char *info, size_t len, const char *okm)
{
    uint8_t a[128], b[128], c[128], want[128];
    struct skr_secret *out = NULL;

    assert_int_equal(skr_hkdf_sha256(hx(ikm, a, sizeof(a)), hx(salt, b, sizeof(b)),
                                     hx(info, c, sizeof(c)), len, &out),
                     SKR_OK);
    assert_int_equal(out->len, len);
    assert_memory_equal(out->ptr, hx(okm, want, sizeof(want)).ptr, len);
    skr_secret_free(out);
}

/* RFC 5869 A.1 */
static void
test_rfc5869_case1(void **state)
{
    (void)state;
    check_hkdf(
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9", 42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

/* RFC 5869 A.2: long inputs */
static void
test_rfc5869_case2(void **state)
{
    (void)state;
    check_hkdf(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728"
        "292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788"
        "898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8"
        "d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb"
        "41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

/* RFC 5869 A.3: empty salt and info (the reference's derivation without key_derivation.salt) */
static void
test_rfc5869_case3(void **state)
{
    (void)state;
    check_hkdf(
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

static void
test_bounds(void **state)
{
    struct skr_secret *out = NULL;
    uint8_t k[8] = { 1 };

    (void)state;
    assert_int_equal(skr_hkdf_sha256(skr_span_make(k, 0), skr_span_make(NULL, 0),
                                     skr_span_make(NULL, 0), 32, &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_hkdf_sha256(skr_span_make(k, 8), skr_span_make(NULL, 0),
                                     skr_span_make(NULL, 0), 0, &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_hkdf_sha256(skr_span_make(k, 8), skr_span_make(NULL, 0),
                                     skr_span_make(NULL, 0), SKR_HKDF_SHA256_MAX_OUT + 1, &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_hkdf_sha256(skr_span_make(k, 8), skr_span_make(NULL, 0),
                                     skr_span_make(NULL, 0), SKR_HKDF_SHA256_MAX_OUT, &out),
                     SKR_OK);
    assert_int_equal(out->len, SKR_HKDF_SHA256_MAX_OUT);
    skr_secret_free(out);
}

/* The RSA derivation = HKDF(d without leading zeros, salt, label or the default label). */
static void
test_rsa_derive(void **state)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    BIGNUM *d = NULL;
    uint8_t dbuf[512];
    uint8_t salt[4] = { 0xde, 0xad, 0xbe, 0xef };
    struct skr_secret *a = NULL, *b = NULL;
    int n;

    (void)state;
    assert_non_null(rsa);
    assert_non_null(ec);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_D, &d), 1);
    n = BN_bn2bin(d, dbuf);
    BN_clear_free(d);
    assert_int_not_equal(dbuf[0], 0);
    assert_int_equal(skr_kdf_rsa_derive(rsa, skr_span_make(salt, 4), NULL, &a), SKR_OK);
    assert_int_equal(a->len, SKR_KDF_KEY_LEN);
    assert_int_equal(skr_hkdf_sha256(skr_span_make(dbuf, (size_t)n), skr_span_make(salt, 4),
                                     skr_span_str(SKR_KDF_DEFAULT_LABEL), 32, &b),
                     SKR_OK);
    assert_memory_equal(a->ptr, b->ptr, 32);
    skr_secret_free(a);
    skr_secret_free(b);
    /* "" is the default label too; another label gives another key */
    assert_int_equal(skr_kdf_rsa_derive(rsa, skr_span_make(salt, 4), "", &a), SKR_OK);
    assert_int_equal(skr_kdf_rsa_derive(rsa, skr_span_make(salt, 4), "other", &b), SKR_OK);
    assert_memory_not_equal(a->ptr, b->ptr, 32);
    skr_secret_free(a);
    skr_secret_free(b);
    assert_int_equal(skr_kdf_rsa_derive(ec, skr_span_make(NULL, 0), NULL, &a), SKR_E_INVALID_ARG);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    assert_int_equal(skr_secret_live(), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869_case1), cmocka_unit_test(test_rfc5869_case2),
        cmocka_unit_test(test_rfc5869_case3), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_rsa_derive),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
