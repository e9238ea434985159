/*
 * test_keywrap.c - RFC 5649 AES key wrap with padding (the §6 vectors, hand-built integrity
 * failures), the CKM_RSA_AES_KEY_WRAP family with RSA-2048/3072/4096 and all three hashes,
 * cross-checks against an independent implementation (pyca/cryptography, tests/unit/kw_wrap.py),
 * PKCS#8 decoding of released keys, and no secret left allocated after any test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "buf.h"
#include "hex.h"
#include "keywrap.h"
#include "ossl.h"
#include "secret.h"
#include "skr_limits.h"

/* RFC 5649 §6 */
#define RFC_KEK "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
#define RFC_P1  "c37b7e6492584340bed12207808941155068f738"
#define RFC_C1  "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"
#define RFC_P2  "466f7250617369"
#define RFC_C2  "afbeb0f07dfbf5419200f2ccb50bb24f"

static const int rsa_bits[3] = { 2048, 3072, 4096 };
static EVP_PKEY *rsa[3];     /* 2048, 3072, 4096 */
static EVP_PKEY *rsa_other;  /* a second RSA-2048 key */
static EVP_PKEY *ec_key;     /* P-256 */
static struct skr_buf pkcs8; /* PKCS#8 DER of rsa[0] */
static size_t live_before;

static const enum skr_kw_alg algs[3] = {
    SKR_KW_CKM_RSA_AES_KEY_WRAP,
    SKR_KW_RSA_AES_KEY_WRAP_256,
    SKR_KW_RSA_AES_KEY_WRAP_384,
};

/* ---- helpers -------------------------------------------------------------------------- */

static void
hex(const char *s, struct skr_buf *out)
{
    skr_buf_init(out, 4096);
    assert_int_equal(skr_hex_decode(skr_span_str(s), false, out), SKR_OK);
}

static void
der_pkcs8(EVP_PKEY *pkey, struct skr_buf *out)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
    unsigned char *der = NULL;
    int n;

    assert_non_null(p8);
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    assert_true(n > 0);
    skr_buf_init(out, SKR_MAX_SECRET_BYTES);
    assert_int_equal(skr_buf_append(out, der, (size_t)n), SKR_OK);
    OPENSSL_clear_free(der, (size_t)n);
}

static size_t
padded(size_t n)
{
    return (n + 7) / 8 * 8;
}

static void
expect_kwp_err(struct skr_span kek, struct skr_span ct, skr_err want)
{
    struct skr_secret *s = NULL;

    assert_int_equal(skr_aes_kwp_unwrap(kek, ct, &s), want);
    assert_null(s);
}

static void
expect_rsa_err(EVP_PKEY *k, enum skr_kw_alg alg, struct skr_span ct, skr_err want)
{
    struct skr_secret *s = NULL;

    assert_int_equal(skr_rsa_aes_unwrap(k, alg, ct, &s), want);
    assert_null(s);
}

/* Wraps pt with RSA key k and alg, checks the length, unwraps and compares. */
static void
rsa_round_trip(EVP_PKEY *k, enum skr_kw_alg alg, struct skr_span pt)
{
    _cleanup_(skr_buf_donep) struct skr_buf ct = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;
    size_t want = 0;

    skr_buf_init(&ct, 1u << 20);
    assert_int_equal(skr_rsa_aes_wrap(k, alg, pt, &ct), SKR_OK);
    assert_int_equal(skr_rsa_aes_wrapped_len((size_t)EVP_PKEY_get_size(k), pt.len, &want), SKR_OK);
    assert_int_equal(ct.len, want);
    assert_int_equal(ct.len, (size_t)EVP_PKEY_get_bits(k) / 8 + 8 + padded(pt.len));
    assert_int_equal(skr_rsa_aes_unwrap(k, alg, skr_buf_span(&ct), &s), SKR_OK);
    assert_int_equal(s->len, pt.len);
    assert_memory_equal(s->ptr, pt.ptr, pt.len);
}

/* ---- fixtures ------------------------------------------------------------------------- */

static int
group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        rsa[i] = EVP_RSA_gen((unsigned int)rsa_bits[i]);
        if (rsa[i] == NULL) {
            return -1;
        }
    }
    rsa_other = EVP_RSA_gen(2048);
    ec_key = EVP_EC_gen("P-256");
    if (rsa_other == NULL || ec_key == NULL) {
        return -1;
    }
    der_pkcs8(rsa[0], &pkcs8);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY_free(rsa[i]);
    }
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec_key);
    skr_buf_done(&pkcs8);
    return 0;
}

static int
setup(void **state)
{
    (void)state;
    live_before = skr_secret_live();
    return 0;
}

/* Every path frees its secrets: the live count is back where the test started. */
static int
teardown(void **state)
{
    (void)state;
    if (skr_secret_live() != live_before) {
        print_error("leaked %zu secret(s)\n", skr_secret_live() - live_before);
        return -1;
    }
    return 0;
}

/* ---- algorithm names ------------------------------------------------------------------ */

static void
test_alg_names(void **state)
{
    static const char *const names[3] = {
        "CKM_RSA_AES_KEY_WRAP",
        "RSA_AES_KEY_WRAP_256",
        "RSA_AES_KEY_WRAP_384",
    };
    static const char *const bad[] = {
        "",
        "RSA_AES_KEY_WRAP_512",
        "rsa_aes_key_wrap_256",
        "RSA_AES_KEY_WRAP_256 ",
        "CKM_RSA_AES_KEY_WRAP_PAD",
        "RSA-OAEP-256",
        "A256KW",
    };
    enum skr_kw_alg a = SKR_KW_RSA_AES_KEY_WRAP_384;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(skr_kw_alg_parse(names[i], &a), SKR_OK);
        assert_int_equal(a, algs[i]);
        assert_string_equal(skr_kw_alg_name(a), names[i]);
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        a = SKR_KW_RSA_AES_KEY_WRAP_256;
        assert_int_equal(skr_kw_alg_parse(bad[i], &a), SKR_E_UNSUPPORTED);
        assert_int_equal(a, SKR_KW_RSA_AES_KEY_WRAP_256);
    }
    assert_int_equal(skr_kw_alg_parse(NULL, &a), SKR_E_INVALID_ARG);
    assert_string_equal(skr_kw_alg_name((enum skr_kw_alg)3), "unknown");
    assert_string_equal(skr_kw_alg_name((enum skr_kw_alg) - 1), "unknown");
}

/* ---- RFC 5649 ------------------------------------------------------------------------- */

static void
test_rfc5649_vectors(void **state)
{
    static const char *const p_hex[2] = { RFC_P1, RFC_P2 };
    static const char *const c_hex[2] = { RFC_C1, RFC_C2 };
    _cleanup_(skr_buf_donep) struct skr_buf kek = { 0 };

    (void)state;
    hex(RFC_KEK, &kek);
    for (size_t i = 0; i < 2; i++) {
        _cleanup_(skr_buf_donep) struct skr_buf p = { 0 };
        _cleanup_(skr_buf_donep) struct skr_buf c = { 0 };
        _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
        _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;

        hex(p_hex[i], &p);
        hex(c_hex[i], &c);
        skr_buf_init(&out, 4096);
        assert_int_equal(skr_buf_append_str(&out, "xy"), SKR_OK);
        assert_int_equal(skr_aes_kwp_wrap(skr_buf_span(&kek), skr_buf_span(&p), &out), SKR_OK);
        /* appended after what was there */
        assert_int_equal(out.len, 2 + c.len);
        assert_memory_equal(out.ptr, "xy", 2);
        assert_memory_equal(out.ptr + 2, c.ptr, c.len);
        assert_int_equal(skr_aes_kwp_unwrap(skr_buf_span(&kek), skr_buf_span(&c), &s), SKR_OK);
        assert_int_equal(s->len, p.len);
        assert_memory_equal(s->ptr, p.ptr, p.len);
    }
}

static void
test_kwp_negative(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf kek = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf c1 = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf c2 = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    uint8_t k[33] = { 0 };
    uint8_t buf[64];
    struct skr_buf *cs[2] = { &c1, &c2 };

    (void)state;
    hex(RFC_KEK, &kek);
    hex(RFC_C1, &c1);
    hex(RFC_C2, &c2);

    /* wrong KEK: one bit, and another size */
    memcpy(k, kek.ptr, kek.len);
    k[23] ^= 0x01;
    expect_kwp_err(skr_span_make(k, 24), skr_buf_span(&c1), SKR_E_VERIFY);
    expect_kwp_err(skr_span_make(k, 24), skr_buf_span(&c2), SKR_E_VERIFY);
    expect_kwp_err(skr_span_make(kek.ptr, 16), skr_buf_span(&c1), SKR_E_VERIFY);
    expect_kwp_err(skr_span_make(k, 32), skr_buf_span(&c2), SKR_E_VERIFY);

    /* every byte flipped, low and high bit */
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < cs[v]->len; i++) {
            for (unsigned m = 0x01; m <= 0x80; m <<= 7) {
                memcpy(buf, cs[v]->ptr, cs[v]->len);
                buf[i] ^= (uint8_t)m;
                expect_kwp_err(skr_buf_span(&kek), skr_span_make(buf, cs[v]->len), SKR_E_VERIFY);
            }
        }
    }

    /* truncated by a block: still well-formed, fails the check */
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(c1.ptr, 24), SKR_E_VERIFY);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(c1.ptr + 8, 24), SKR_E_VERIFY);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(c1.ptr, 16), SKR_E_VERIFY);
    /* not a multiple of 8, or shorter than 16 */
    for (size_t n = 0; n < c1.len; n++) {
        if (n % 8 != 0 || n < 16) {
            expect_kwp_err(skr_buf_span(&kek), skr_span_make(c1.ptr, n), SKR_E_MALFORMED);
        }
    }
    memcpy(buf, c1.ptr, c1.len);
    buf[c1.len] = 0;
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(buf, c1.len + 1), SKR_E_MALFORMED);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(NULL, 0), SKR_E_MALFORMED);

    /* KEK sizes */
    for (size_t n = 0; n <= 33; n++) {
        if (n != 16 && n != 24 && n != 32) {
            expect_kwp_err(skr_span_make(k, n), skr_buf_span(&c1), SKR_E_INVALID_ARG);
        }
    }
    skr_buf_init(&out, 4096);
    assert_int_equal(skr_buf_append_str(&out, "keep"), SKR_OK);
    assert_int_equal(skr_aes_kwp_wrap(skr_span_make(k, 15), skr_span_str("x"), &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_aes_kwp_wrap(skr_span_make(k, 33), skr_span_str("x"), &out),
                     SKR_E_INVALID_ARG);
    /* RFC 5649 §4.1: the plaintext is at least one octet */
    assert_int_equal(skr_aes_kwp_wrap(skr_buf_span(&kek), skr_span_make(k, 0), &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(out.len, 4);
    assert_int_equal(skr_aes_kwp_unwrap(skr_buf_span(&kek), skr_buf_span(&c1), NULL),
                     SKR_E_INVALID_ARG);
}

/* Encrypts AIV || P with a chosen AIV: one AES-ECB block when P is 8 bytes (RFC 5649 §4.1),
 * else RFC 3394 W with the AIV as IV (OpenSSL's unpadded wrap takes A as its IV). */
static size_t
raw_wrap(struct skr_span kek, const uint8_t aiv[8], const uint8_t *p, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t in[16];
    int outl = 0;

    assert_non_null(ctx);
    if (n == 8) {
        memcpy(in, aiv, 8);
        memcpy(in + 8, p, 8);
        assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_192_ecb(), NULL, kek.ptr, NULL), 1);
        assert_int_equal(EVP_CIPHER_CTX_set_padding(ctx, 0), 1);
        assert_int_equal(EVP_EncryptUpdate(ctx, out, &outl, in, 16), 1);
        assert_int_equal(outl, 16);
    } else {
        EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_192_wrap(), NULL, kek.ptr, aiv), 1);
        assert_int_equal(EVP_EncryptUpdate(ctx, out, &outl, p, (int)n), 1);
        assert_int_equal(outl, (int)n + 8);
    }
    EVP_CIPHER_CTX_free(ctx);
    return (size_t)outl;
}

static void
aiv(uint8_t out[8], uint32_t magic, uint32_t mli)
{
    for (size_t i = 0; i < 4; i++) {
        out[i] = (uint8_t)(magic >> (24 - 8 * i));
        out[4 + i] = (uint8_t)(mli >> (24 - 8 * i));
    }
}

/* The RFC 5649 §3 checks one by one, on ciphertexts built around them. */
static void
test_kwp_integrity_checks(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf kek = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf c1 = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf c2 = { 0 };
    uint8_t p1[24] = { 0 }, p2[8] = { 0 };
    uint8_t a[8], out[40];
    size_t n;

    (void)state;
    hex(RFC_KEK, &kek);
    hex(RFC_C1, &c1);
    hex(RFC_C2, &c2);
    memcpy(p1, "\xc3\x7b\x7e\x64\x92\x58\x43\x40\xbe\xd1\x22\x07\x80\x89\x41\x15\x50\x68\xf7\x38",
           20);
    memcpy(p2, "\x46\x6f\x72\x50\x61\x73\x69", 7);

    /* the construction reproduces the RFC vectors ... */
    aiv(a, 0xA65959A6, 20);
    n = raw_wrap(skr_buf_span(&kek), a, p1, 24, out);
    assert_int_equal(n, c1.len);
    assert_memory_equal(out, c1.ptr, n);
    aiv(a, 0xA65959A6, 7);
    n = raw_wrap(skr_buf_span(&kek), a, p2, 8, out);
    assert_memory_equal(out, c2.ptr, n);

    /* ... and each broken field fails: magic, MLI above and below the range, padding */
    aiv(a, 0xA65959A7, 20);
    n = raw_wrap(skr_buf_span(&kek), a, p1, 24, out);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(out, n), SKR_E_VERIFY);
    aiv(a, 0xA6599A6A, 7);
    n = raw_wrap(skr_buf_span(&kek), a, p2, 8, out);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(out, n), SKR_E_VERIFY);
    for (uint32_t mli = 0; mli <= 30; mli++) {
        if (mli <= 16 || mli > 24) {
            aiv(a, 0xA65959A6, mli);
            n = raw_wrap(skr_buf_span(&kek), a, p1, 24, out);
            expect_kwp_err(skr_buf_span(&kek), skr_span_make(out, n), SKR_E_VERIFY);
        }
        if (mli == 0 || mli > 8) {
            aiv(a, 0xA65959A6, mli);
            n = raw_wrap(skr_buf_span(&kek), a, p2, 8, out);
            expect_kwp_err(skr_buf_span(&kek), skr_span_make(out, n), SKR_E_VERIFY);
        }
    }
    aiv(a, 0xA65959A6, 0xFFFFFFFF);
    n = raw_wrap(skr_buf_span(&kek), a, p1, 24, out);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(out, n), SKR_E_VERIFY);
    p1[23] = 0x01;
    aiv(a, 0xA65959A6, 20);
    n = raw_wrap(skr_buf_span(&kek), a, p1, 24, out);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(out, n), SKR_E_VERIFY);
    p2[7] = 0x80;
    aiv(a, 0xA65959A6, 7);
    n = raw_wrap(skr_buf_span(&kek), a, p2, 8, out);
    expect_kwp_err(skr_buf_span(&kek), skr_span_make(out, n), SKR_E_VERIFY);
    /* the same bytes are valid when MLI covers them */
    aiv(a, 0xA65959A6, 8);
    n = raw_wrap(skr_buf_span(&kek), a, p2, 8, out);
    {
        _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;

        assert_int_equal(skr_aes_kwp_unwrap(skr_buf_span(&kek), skr_span_make(out, n), &s), SKR_OK);
        assert_int_equal(s->len, 8);
        assert_memory_equal(s->ptr, p2, 8);
    }
}

static void
test_kwp_round_trips(void **state)
{
    static const size_t kek_lens[3] = { 16, 24, 32 };
    uint8_t kek[32], pt[80];

    (void)state;
    for (size_t i = 0; i < sizeof(kek); i++) {
        kek[i] = (uint8_t)(0x40 + i);
    }
    for (size_t i = 0; i < sizeof(pt); i++) {
        pt[i] = (uint8_t)(i * 7 + 1);
    }
    for (size_t k = 0; k < 3; k++) {
        for (size_t n = 1; n <= sizeof(pt); n++) {
            _cleanup_(skr_buf_donep) struct skr_buf c = { 0 };
            _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;
            struct skr_span kk = skr_span_make(kek, kek_lens[k]);

            skr_buf_init(&c, 4096);
            assert_int_equal(skr_aes_kwp_wrap(kk, skr_span_make(pt, n), &c), SKR_OK);
            assert_int_equal(c.len, 8 + padded(n));
            assert_int_equal(skr_aes_kwp_unwrap(kk, skr_buf_span(&c), &s), SKR_OK);
            assert_int_equal(s->len, n);
            assert_memory_equal(s->ptr, pt, n);
        }
    }
}

static void
test_kwp_limits(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf c = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;
    uint8_t *big = calloc(1, SKR_MAX_SECRET_BYTES + 32);
    uint8_t kek[32] = { 1 };

    (void)state;
    assert_non_null(big);
    skr_buf_init(&c, 1u << 20);
    assert_int_equal(
        skr_aes_kwp_wrap(skr_span_make(kek, 32), skr_span_make(big, SKR_MAX_SECRET_BYTES - 7), &c),
        SKR_E_INVALID_ARG);
    assert_int_equal(c.len, 0);
    assert_int_equal(
        skr_aes_kwp_wrap(skr_span_make(kek, 32), skr_span_make(big, SKR_MAX_SECRET_BYTES - 8), &c),
        SKR_OK);
    assert_int_equal(c.len, SKR_MAX_SECRET_BYTES);
    assert_int_equal(skr_aes_kwp_unwrap(skr_span_make(kek, 32), skr_buf_span(&c), &s), SKR_OK);
    assert_int_equal(s->len, SKR_MAX_SECRET_BYTES - 8);
    assert_true(skr_span_is_zero(skr_secret_span(s)));
    expect_kwp_err(skr_span_make(kek, 32), skr_span_make(big, SKR_MAX_SECRET_BYTES + 8),
                   SKR_E_TOO_LARGE);
    free(big);
}

/* ---- RSA + AES-KWP -------------------------------------------------------------------- */

static void
test_wrapped_len(void **state)
{
    size_t n = 0;

    (void)state;
    /* the real Managed HSM release (PROTOCOLS.md §7.4): PKCS#8 of RSA-2048 is 1219 bytes */
    assert_int_equal(skr_rsa_aes_wrapped_len(256, 1219, &n), SKR_OK);
    assert_int_equal(n, 1488);
    assert_int_equal(skr_rsa_aes_wrapped_len(256, 1193, &n), SKR_OK);
    assert_int_equal(n, 1464);
    assert_int_equal(skr_rsa_aes_wrapped_len(512, 32, &n), SKR_OK);
    assert_int_equal(n, 552);
    assert_int_equal(skr_rsa_aes_wrapped_len(256, SIZE_MAX, &n), SKR_E_TOO_LARGE);
    assert_int_equal(skr_rsa_aes_wrapped_len(SIZE_MAX - 10, 8, &n), SKR_E_TOO_LARGE);
}

static void
test_rsa_round_trips(void **state)
{
    uint8_t oct[32];

    (void)state;
    for (size_t i = 0; i < sizeof(oct); i++) {
        oct[i] = (uint8_t)(0xA0 ^ i);
    }
    for (size_t k = 0; k < 3; k++) {
        for (size_t a = 0; a < 3; a++) {
            rsa_round_trip(rsa[k], algs[a], skr_span_make(oct, sizeof(oct)));
            rsa_round_trip(rsa[k], algs[a], skr_buf_span(&pkcs8));
            rsa_round_trip(rsa[k], algs[a], skr_span_make(oct, 1));
        }
    }
}

/* The key material inside a released RSA or EC key decodes back to the same key. */
static void
test_rsa_released_keys(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf ec8 = { 0 };
    EVP_PKEY *keys[2] = { rsa_other, ec_key };

    (void)state;
    der_pkcs8(ec_key, &ec8);
    for (size_t i = 0; i < 2; i++) {
        _cleanup_(skr_buf_donep) struct skr_buf p8 = { 0 };
        _cleanup_(skr_buf_donep) struct skr_buf ct = { 0 };
        _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *back = NULL;
        size_t want = 0;

        der_pkcs8(keys[i], &p8);
        skr_buf_init(&ct, 1u << 16);
        assert_int_equal(
            skr_rsa_aes_wrap(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&p8), &ct), SKR_OK);
        assert_int_equal(skr_rsa_aes_wrapped_len(256, p8.len, &want), SKR_OK);
        assert_int_equal(ct.len, want);
        assert_int_equal(
            skr_rsa_aes_unwrap(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&ct), &s), SKR_OK);
        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_secret_span(s), &back), SKR_OK);
        assert_int_equal(EVP_PKEY_eq(back, keys[i]), 1);
    }
}

static void
test_rsa_negative(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf ct = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    char oaep_msg[384];
    uint8_t *tmp;

    (void)state;
    skr_buf_init(&ct, 1u << 16);
    assert_int_equal(
        skr_rsa_aes_wrap(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&pkcs8), &ct), SKR_OK);
    tmp = malloc(ct.len + 1);
    assert_non_null(tmp);

    /* algorithm mismatch, every pair */
    for (size_t w = 0; w < 3; w++) {
        _cleanup_(skr_buf_donep) struct skr_buf c = { 0 };

        skr_buf_init(&c, 1u << 16);
        assert_int_equal(skr_rsa_aes_wrap(rsa[0], algs[w], skr_span_str("0123456789abcdef"), &c),
                         SKR_OK);
        for (size_t u = 0; u < 3; u++) {
            if (u != w) {
                expect_rsa_err(rsa[0], algs[u], skr_buf_span(&c), SKR_E_VERIFY);
            }
        }
    }
    /* wrong RSA key of the same size; a public-only key cannot decrypt */
    expect_rsa_err(rsa_other, SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&ct), SKR_E_VERIFY);
    {
        unsigned char *der = NULL;
        const unsigned char *p;
        int n = i2d_PUBKEY(rsa[0], &der);
        EVP_PKEY *pub;
        struct skr_secret *s = NULL;

        assert_true(n > 0);
        p = der;
        pub = d2i_PUBKEY(NULL, &p, n);
        assert_non_null(pub);
        assert_int_not_equal(
            skr_rsa_aes_unwrap(pub, SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&ct), &s), SKR_OK);
        assert_null(s);
        EVP_PKEY_free(pub);
        OPENSSL_free(der);
    }

    /* a flipped byte in the OAEP block and in the key wrap, with one identical message */
    memcpy(tmp, ct.ptr, ct.len);
    tmp[10] ^= 0x20;
    expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(tmp, ct.len), SKR_E_VERIFY);
    (void)snprintf(oaep_msg, sizeof(oaep_msg), "%s", skr_err_msg());
    for (size_t i = 256; i < ct.len; i += 97) {
        memcpy(tmp, ct.ptr, ct.len);
        tmp[i] ^= 0x01;
        expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(tmp, ct.len),
                       SKR_E_VERIFY);
        assert_string_equal(skr_err_msg(), oaep_msg);
    }
    memcpy(tmp, ct.ptr, ct.len);
    tmp[ct.len - 1] ^= 0x80;
    expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(tmp, ct.len), SKR_E_VERIFY);
    assert_string_equal(skr_err_msg(), oaep_msg);

    /* truncations: by a block (well-formed, fails the check), by a byte, below the minimum */
    expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct.ptr, ct.len - 8),
                   SKR_E_VERIFY);
    expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct.ptr, ct.len - 1),
                   SKR_E_MALFORMED);
    memcpy(tmp, ct.ptr, ct.len);
    tmp[ct.len] = 0;
    expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(tmp, ct.len + 1),
                   SKR_E_MALFORMED);
    expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct.ptr, 256 + 16),
                   SKR_E_VERIFY);
    for (size_t n = 0; n < 256 + 16; n += 15) {
        expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct.ptr, n),
                       SKR_E_MALFORMED);
        assert_non_null(strstr(skr_err_msg(), "at least 272"));
    }
    expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct.ptr, 271),
                   SKR_E_MALFORMED);
    /* the minimum follows the modulus (not SCC's fixed 256): pitfall 9 */
    expect_rsa_err(rsa[1], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct.ptr, 399),
                   SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "at least 400"));
    expect_rsa_err(rsa[2], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct.ptr, 527),
                   SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "at least 528"));
    expect_rsa_err(rsa[1], SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&ct), SKR_E_VERIFY);

    /* caller errors */
    expect_rsa_err(ec_key, SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&ct), SKR_E_INVALID_ARG);
    expect_rsa_err(NULL, SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&ct), SKR_E_INVALID_ARG);
    expect_rsa_err(rsa[0], (enum skr_kw_alg)3, skr_buf_span(&ct), SKR_E_INVALID_ARG);
    assert_int_equal(
        skr_rsa_aes_unwrap(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_buf_span(&ct), NULL),
        SKR_E_INVALID_ARG);
    skr_buf_init(&out, 1u << 16);
    assert_int_equal(skr_buf_append_str(&out, "keep"), SKR_OK);
    assert_int_equal(skr_rsa_aes_wrap(ec_key, SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_str("k"), &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_rsa_aes_wrap(rsa[0], (enum skr_kw_alg)7, skr_span_str("k"), &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(
        skr_rsa_aes_wrap(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(NULL, 0), &out),
        SKR_E_INVALID_ARG);
    assert_int_equal(out.len, 4);
    free(tmp);
}

/* OAEP decrypts fine but yields no AES key size: the same generic failure. */
static void
test_rsa_bad_aes_key_len(void **state)
{
    static const size_t lens[] = { 0, 1, 15, 17, 20, 31, 33, 64 };
    uint8_t key[64] = { 7 };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(lens); i++) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(rsa[0], NULL);
        uint8_t ct[256 + 24] = { 0 };
        size_t n = 256;

        assert_non_null(ctx);
        assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
        assert_int_equal(EVP_PKEY_encrypt(ctx, ct, &n, key, lens[i]), 1);
        assert_int_equal(n, 256);
        expect_rsa_err(rsa[0], SKR_KW_RSA_AES_KEY_WRAP_256, skr_span_make(ct, sizeof(ct)),
                       SKR_E_VERIFY);
    }
}

/* ---- PKCS#8 --------------------------------------------------------------------------- */

static void
test_pkcs8(void **state)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    _cleanup_(skr_buf_donep) struct skr_buf ed8 = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf longer = { 0 };
    unsigned char *pkcs1 = NULL;
    int pkcs1_len;

    (void)state;
    assert_int_equal(skr_kw_pkcs8_to_pkey(skr_buf_span(&pkcs8), &k), SKR_OK);
    assert_int_equal(EVP_PKEY_eq(k, rsa[0]), 1);
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);

    /* PKCS#1 RSAPrivateKey is not PKCS#8 (SCC rejects it too) */
    pkcs1_len = i2d_PrivateKey(rsa[0], &pkcs1);
    assert_true(pkcs1_len > 0);
    {
        EVP_PKEY *x = NULL;

        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_span_make(pkcs1, (size_t)pkcs1_len), &x),
                         SKR_E_MALFORMED);
        assert_null(x);
        /* truncated, trailing byte, empty, garbage */
        for (size_t n = 0; n < pkcs8.len; n += 101) {
            assert_int_equal(skr_kw_pkcs8_to_pkey(skr_span_make(pkcs8.ptr, n), &x),
                             SKR_E_MALFORMED);
        }
        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_span_make(pkcs8.ptr, pkcs8.len - 1), &x),
                         SKR_E_MALFORMED);
        skr_buf_init(&longer, SKR_MAX_SECRET_BYTES);
        assert_int_equal(skr_buf_append_span(&longer, skr_buf_span(&pkcs8)), SKR_OK);
        assert_int_equal(skr_buf_append_byte(&longer, 0), SKR_OK);
        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_buf_span(&longer), &x), SKR_E_MALFORMED);
        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_span_str("not a key"), &x), SKR_E_MALFORMED);
        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_span_make(NULL, 0), &x), SKR_E_INVALID_ARG);
        /* a well-formed PKCS#8 of a key type AKV does not release */
        assert_non_null(ed);
        der_pkcs8(ed, &ed8);
        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_buf_span(&ed8), &x), SKR_E_UNSUPPORTED);
        assert_null(x);
    }
    OPENSSL_clear_free(pkcs1, (size_t)pkcs1_len);
    ERR_clear_error();
}

/* ---- independent implementation (pyca/cryptography) ----------------------------------- */

static char tmpdir[] = "/tmp/skr-kw-XXXXXX";

/* Runs tests/unit/kw_wrap.py; the test fails (never skips) when python3 or its module is
 * missing: scripts/install-deps installs python3-cryptography. */
static void
run_py(const char *const *args, size_t n)
{
    const char *src = getenv("SKR_SRC_DIR");
    char script[4096];
    const char *argv[10];
    int status = 0;
    pid_t pid;

    if (src == NULL) {
        fail_msg("SKR_SRC_DIR is not set (run through meson test)");
    }
    (void)snprintf(script, sizeof(script), "%s/tests/unit/kw_wrap.py", src);
    argv[0] = "python3";
    argv[1] = script;
    assert_true(n + 3 <= SKR_ARRAY_LEN(argv));
    for (size_t i = 0; i < n; i++) {
        argv[2 + i] = args[i];
    }
    argv[2 + n] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execvp("python3", (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("python3 %s failed (status %d): is python3-cryptography installed?", script,
                 status);
    }
}

static void
write_pem(const char *path, EVP_PKEY *k, bool priv)
{
    BIO *b = BIO_new_file(path, "w");

    assert_non_null(b);
    if (priv) {
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    } else {
        assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    }
    BIO_free(b);
}

static void
path_in(char *out, size_t n, const char *name)
{
    (void)snprintf(out, n, "%s/%s", tmpdir, name);
}

static void
test_python_interop(void **state)
{
    static const char *const aes_len[3] = { "16", "24", "32" };
    char pub[256], priv[256], in[256], blob[256], back[256];
    uint8_t odd[33];

    (void)state;
    assert_non_null(mkdtemp(tmpdir));
    path_in(pub, sizeof(pub), "pub.pem");
    path_in(priv, sizeof(priv), "priv.pem");
    path_in(in, sizeof(in), "in.bin");
    path_in(blob, sizeof(blob), "blob.bin");
    path_in(back, sizeof(back), "back.bin");
    for (size_t i = 0; i < sizeof(odd); i++) {
        odd[i] = (uint8_t)(0x5A + 3 * i);
    }

    for (size_t k = 0; k < 3; k++) {
        const char *alg = skr_kw_alg_name(algs[k]);

        write_pem(pub, rsa[k], false);
        write_pem(priv, rsa[k], true);

        /* python wraps (AES-128/192/256 K_aes), we unwrap */
        {
            const char *args[] = { "wrap", pub, alg, aes_len[k], in, blob };
            _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
            _cleanup_(skr_secret_freep) struct skr_secret *s = NULL;

            assert_int_equal(skr_write_file_atomic(in, skr_buf_span(&pkcs8), 0600), SKR_OK);
            run_py(args, SKR_ARRAY_LEN(args));
            skr_buf_init(&b, 1u << 16);
            assert_int_equal(skr_read_file(blob, &b), SKR_OK);
            assert_int_equal(b.len, (size_t)rsa_bits[k] / 8 + 8 + padded(pkcs8.len));
            assert_int_equal(skr_rsa_aes_unwrap(rsa[k], algs[k], skr_buf_span(&b), &s), SKR_OK);
            assert_int_equal(s->len, pkcs8.len);
            assert_memory_equal(s->ptr, pkcs8.ptr, pkcs8.len);
            /* and it is bound to its algorithm */
            expect_rsa_err(rsa[k], algs[(k + 1) % 3], skr_buf_span(&b), SKR_E_VERIFY);
        }
        /* we wrap, python unwraps */
        {
            const char *args[] = { "unwrap", priv, alg, blob, back };
            _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
            _cleanup_(skr_buf_donep) struct skr_buf r = { 0 };

            skr_buf_init(&b, 1u << 16);
            assert_int_equal(skr_rsa_aes_wrap(rsa[k], algs[k], skr_span_make(odd, sizeof(odd)), &b),
                             SKR_OK);
            assert_int_equal(skr_write_file_atomic(blob, skr_buf_span(&b), 0600), SKR_OK);
            run_py(args, SKR_ARRAY_LEN(args));
            skr_buf_init(&r, 1u << 16);
            assert_int_equal(skr_read_file(back, &r), SKR_OK);
            assert_int_equal(r.len, sizeof(odd));
            assert_memory_equal(r.ptr, odd, sizeof(odd));
        }
    }
    (void)unlink(pub);
    (void)unlink(priv);
    (void)unlink(in);
    (void)unlink(blob);
    (void)unlink(back);
    assert_int_equal(rmdir(tmpdir), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alg_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rfc5649_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kwp_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kwp_integrity_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kwp_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kwp_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapped_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_released_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_bad_aes_key_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pkcs8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_interop, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
