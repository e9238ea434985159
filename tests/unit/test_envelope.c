/*
 * test_envelope.c - the SKRE format of skr encrypt/decrypt (lib/envelope.c,
 * docs/encryption-format.md): round trips for oct-128/192/256 and RSA-2048/3072/4096 keys, a
 * flipped bit in every byte of a file, every truncation, wrong keys, associated-data mismatch,
 * unknown versions and algorithms, the key loader's negatives (none of whose messages quote the
 * key), the RFC 7638 key id, and no secret left allocated after any test. The independent
 * implementation (pyca/cryptography) is checked in tests/cli/test_crypt.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "b64.h"
#include "envelope.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"

enum { K_OCT16, K_OCT24, K_OCT32, K_RSA2048, K_RSA3072, K_RSA4096, K_N };

static const size_t oct_len[3] = { 16, 24, 32 };
static const int rsa_bits[3] = { 2048, 3072, 4096 };
static char *jwk_text[K_N]; /* JSON of each key, private members included */
static char *other_oct32;   /* a second oct-256 key */
static char *other_rsa;     /* a second RSA-2048 key */
static char *rsa_pub;       /* public half of K_RSA2048 */
static size_t live_before;

/* RFC 7638 §3.1 */
static const char rfc7638_jwk[] =
    "{\"kty\":\"RSA\",\"n\":"
    "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7a"
    "PFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_"
    "RN5w6Cf0h4QyQ5v-"
    "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
    "bFTWh"
    "AI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\","
    "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";

/* ---- helpers -------------------------------------------------------------------------- */

static char *
dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(j);
    return s;
}

static char *
oct_jwk(size_t n)
{
    uint8_t raw[32];
    json_t *j = NULL;

    assert_int_equal(RAND_bytes(raw, (int)n), 1);
    assert_int_equal(skr_jwk_oct_new(skr_span_make(raw, n), &j), SKR_OK);
    return dump(j);
}

static char *
rsa_jwk(int bits, bool priv)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = EVP_RSA_gen((unsigned int)bits);
    json_t *j = NULL;

    assert_non_null(k);
    assert_int_equal(skr_jwk_from_pkey(k, priv, &j), SKR_OK);
    return dump(j);
}

static struct skr_env_key *
load(const char *text)
{
    struct skr_env_key *k = NULL;

    assert_int_equal(skr_env_key_from_jwk(skr_span_str(text), &k), SKR_OK);
    return k;
}

static void
expect_key_err(const char *text, skr_err want, const char *msg_part)
{
    struct skr_env_key *k = NULL;

    assert_int_equal(skr_env_key_from_jwk(skr_span_str(text), &k), want);
    assert_null(k);
    if (msg_part != NULL && strstr(skr_err_msg(), msg_part) == NULL) {
        fail_msg("message '%s' lacks '%s'", skr_err_msg(), msg_part);
    }
}

static void
seal(const struct skr_env_key *k, struct skr_span pt, const char *aad, struct skr_buf *out)
{
    skr_buf_init(out, SKR_MAX_CRYPT_BYTES);
    assert_int_equal(skr_env_encrypt(k, pt, skr_span_str(aad), out), SKR_OK);
}

/* Decrypts and returns the error; out stays empty on any failure. */
static skr_err
open_blob(const struct skr_env_key *k, struct skr_span blob, const char *aad)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    skr_err e;

    skr_buf_init(&out, SKR_MAX_CRYPT_BYTES);
    e = skr_env_decrypt(k, blob, skr_span_str(aad), &out);
    if (e != SKR_OK) {
        assert_int_equal(out.len, 0);
    }
    return e;
}

static void
expect_msg(const char *part)
{
    if (strstr(skr_err_msg(), part) == NULL) {
        fail_msg("message '%s' lacks '%s'", skr_err_msg(), part);
    }
}

static int
group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        jwk_text[K_OCT16 + i] = oct_jwk(oct_len[i]);
        jwk_text[K_RSA2048 + i] = rsa_jwk(rsa_bits[i], true);
    }
    other_oct32 = oct_jwk(32);
    other_rsa = rsa_jwk(2048, true);
    {
        json_t *j = json_loads(jwk_text[K_RSA2048], 0, NULL);
        EVP_PKEY *k = NULL;
        json_t *pub = NULL;

        if (j == NULL || skr_jwk_to_pkey(j, &k) != SKR_OK ||
            skr_jwk_from_pkey(k, false, &pub) != SKR_OK) {
            return -1;
        }
        rsa_pub = dump(pub);
        EVP_PKEY_free(k);
        json_decref(j);
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < K_N; i++) {
        free(jwk_text[i]);
    }
    free(other_oct32);
    free(other_rsa);
    free(rsa_pub);
    return 0;
}

static int
setup(void **state)
{
    (void)state;
    live_before = skr_secret_live();
    return 0;
}

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

/* ---- tests ---------------------------------------------------------------------------- */

static void
test_round_trips(void **state)
{
    static const size_t sizes[] = { 0, 1, 15, 16, 17, 1000, 70000 };
    static const char *const aads[] = { "", "dataset-7 v2" };
    static const enum skr_env_alg algs[K_N] = {
        SKR_ENV_A128GCM,
        SKR_ENV_A192GCM,
        SKR_ENV_A256GCM,
        SKR_ENV_RSA_OAEP_256_A256GCM,
        SKR_ENV_RSA_OAEP_256_A256GCM,
        SKR_ENV_RSA_OAEP_256_A256GCM,
    };
    static uint8_t pt[70000];

    (void)state;
    assert_int_equal(RAND_bytes(pt, sizeof(pt)), 1);
    for (size_t k = 0; k < K_N; k++) {
        _cleanup_(skr_env_key_freep) struct skr_env_key *key = load(jwk_text[k]);
        size_t wlen = k >= K_RSA2048 ? (size_t)rsa_bits[k - K_RSA2048] / 8 : 0;

        assert_int_equal(key->alg, algs[k]);
        assert_true(key->has_private);
        for (size_t s = 0; s < SKR_ARRAY_LEN(sizes); s++) {
            for (size_t a = 0; a < SKR_ARRAY_LEN(aads); a++) {
                _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };
                _cleanup_(skr_buf_donep) struct skr_buf back = { 0 };
                struct skr_env_blob b;

                seal(key, skr_span_make(pt, sizes[s]), aads[a], &blob);
                assert_int_equal(blob.len, SKR_ENV_FIXED_LEN + wlen + 12 + sizes[s] + 16);
                assert_int_equal(skr_env_parse(skr_buf_span(&blob), &b), SKR_OK);
                assert_int_equal(b.alg, algs[k]);
                assert_int_equal(b.wrapped_key.len, wlen);
                assert_int_equal(b.ciphertext.len, sizes[s]);
                assert_int_equal(b.header.len, SKR_ENV_FIXED_LEN + wlen + 12);
                assert_memory_equal(b.kid.ptr, key->kid, SKR_ENV_KID_LEN);
                assert_memory_equal(blob.ptr, "SKRE\x01", 5);
                skr_buf_init(&back, SKR_MAX_CRYPT_BYTES);
                assert_int_equal(
                    skr_env_decrypt(key, skr_buf_span(&blob), skr_span_str(aads[a]), &back),
                    SKR_OK);
                assert_int_equal(back.len, sizes[s]);
                if (sizes[s] > 0) {
                    assert_memory_equal(back.ptr, pt, sizes[s]);
                }
            }
        }
    }
}

static void
test_fresh_nonce_and_data_key(void **state)
{
    static const uint8_t pt[32] = { 0 };

    (void)state;
    for (size_t k = K_OCT32; k <= K_RSA2048; k++) {
        _cleanup_(skr_env_key_freep) struct skr_env_key *key = load(jwk_text[k]);
        _cleanup_(skr_buf_donep) struct skr_buf a = { 0 };
        _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
        struct skr_env_blob pa, pb;

        seal(key, skr_span_make(pt, sizeof(pt)), "", &a);
        seal(key, skr_span_make(pt, sizeof(pt)), "", &b);
        assert_int_equal(skr_env_parse(skr_buf_span(&a), &pa), SKR_OK);
        assert_int_equal(skr_env_parse(skr_buf_span(&b), &pb), SKR_OK);
        assert_false(skr_span_eq(pa.nonce, pb.nonce));
        assert_false(skr_span_eq(pa.ciphertext, pb.ciphertext));
        if (k == K_RSA2048) {
            assert_false(skr_span_eq(pa.wrapped_key, pb.wrapped_key));
        }
    }
}

/* Which error a flipped bit in each field gives (docs/encryption-format.md "Decryption"). */
static void
check_tamper(size_t k, size_t off, skr_err e)
{
    size_t w = k == K_RSA2048 ? 256 : 0;

    if (off < 4) {
        assert_int_equal(e, SKR_E_MALFORMED); /* magic */
    } else if (off == 4) {
        assert_int_equal(e, SKR_E_UNSUPPORTED); /* version */
    } else if (off == 5) {
        /* alg: 3 -> 2 (fits no 32-byte key), 4 -> 5 (unknown) */
        assert_int_equal(e, k == K_RSA2048 ? SKR_E_UNSUPPORTED : SKR_E_VERIFY);
    } else if (off < 8) {
        /* wrapped_key_len: nonzero for oct; 257 or 0 for RSA */
        assert_true(e == SKR_E_MALFORMED || e == SKR_E_TRUNCATED);
    } else if (off < 40) {
        assert_int_equal(e, SKR_E_VERIFY); /* kid */
        expect_msg("wrong key");
    } else if (off < 48) {
        assert_true(e == SKR_E_MALFORMED || e == SKR_E_TRUNCATED || e == SKR_E_TOO_LARGE);
    } else {
        /* wrapped key, nonce, ciphertext, tag: all one authentication failure */
        (void)w;
        assert_int_equal(e, SKR_E_VERIFY);
        expect_msg("authentication failed");
    }
}

static void
test_tamper_every_byte(void **state)
{
    static const uint8_t pt[33] = "thirty-three bytes of plain text";

    (void)state;
    for (size_t k = K_OCT32; k <= K_RSA2048; k++) {
        _cleanup_(skr_env_key_freep) struct skr_env_key *key = load(jwk_text[k]);
        _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };

        seal(key, skr_span_make(pt, sizeof(pt)), "aad", &blob);
        assert_int_equal(open_blob(key, skr_buf_span(&blob), "aad"), SKR_OK);
        for (size_t off = 0; off < blob.len; off++) {
            for (unsigned int bit = 0; bit < 8; bit += 7) {
                skr_err e;

                blob.ptr[off] ^= (uint8_t)(1u << bit);
                e = open_blob(key, skr_buf_span(&blob), "aad");
                blob.ptr[off] ^= (uint8_t)(1u << bit);
                if (e == SKR_OK) {
                    fail_msg("flipping bit %u of byte %zu went unnoticed", bit, off);
                }
                if (bit == 0) {
                    check_tamper(k, off, e);
                }
            }
        }
    }
}

static void
test_truncation(void **state)
{
    static const uint8_t pt[20] = "twenty bytes of text";

    (void)state;
    for (size_t k = K_OCT16; k <= K_RSA2048; k += K_RSA2048 - K_OCT16) {
        _cleanup_(skr_env_key_freep) struct skr_env_key *key = load(jwk_text[k]);
        _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };
        struct skr_env_blob b;

        seal(key, skr_span_make(pt, sizeof(pt)), "", &blob);
        for (size_t len = 0; len < blob.len; len++) {
            skr_err want = len < 4 ? SKR_E_MALFORMED : SKR_E_TRUNCATED;

            assert_int_equal(skr_env_parse(skr_span_make(blob.ptr, len), &b), want);
            assert_int_equal(open_blob(key, skr_span_make(blob.ptr, len), ""), want);
        }
        /* one byte too many */
        assert_int_equal(skr_buf_append_byte(&blob, 0), SKR_OK);
        assert_int_equal(open_blob(key, skr_buf_span(&blob), ""), SKR_E_MALFORMED);
        expect_msg("trailing");
    }
}

static void
test_wrong_key(void **state)
{
    static const uint8_t pt[8] = "8 bytes";
    struct {
        const char *enc, *dec;
    } pairs[] = {
        { jwk_text[K_OCT32], other_oct32 },         { jwk_text[K_RSA2048], other_rsa },
        { jwk_text[K_OCT16], jwk_text[K_RSA2048] }, { jwk_text[K_RSA3072], jwk_text[K_OCT32] },
        { jwk_text[K_OCT24], jwk_text[K_OCT16] },
    };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(pairs); i++) {
        _cleanup_(skr_env_key_freep) struct skr_env_key *ke = load(pairs[i].enc);
        _cleanup_(skr_env_key_freep) struct skr_env_key *kd = load(pairs[i].dec);
        _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };
        char want[SKR_ENV_KID_TXTLEN], have[SKR_ENV_KID_TXTLEN];

        seal(ke, skr_span_make(pt, sizeof(pt)), "", &blob);
        assert_int_equal(open_blob(kd, skr_buf_span(&blob), ""), SKR_E_VERIFY);
        skr_env_kid_text(ke->kid, want);
        skr_env_kid_text(kd->kid, have);
        expect_msg("wrong key");
        expect_msg(want);
        expect_msg(have);
    }
}

/* A file whose kid was rewritten to the key's (an attacker who knows the public kid) still
 * fails: the kid is in the AAD, and the RSA wrap or the GCM key is another key's. */
static void
test_forged_kid(void **state)
{
    static const uint8_t pt[8] = "8 bytes";

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        _cleanup_(skr_env_key_freep) struct skr_env_key *ke =
            load(i == 0 ? other_oct32 : other_rsa);
        _cleanup_(skr_env_key_freep) struct skr_env_key *kd =
            load(jwk_text[i == 0 ? K_OCT32 : K_RSA2048]);
        _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };

        seal(ke, skr_span_make(pt, sizeof(pt)), "", &blob);
        memcpy(blob.ptr + 8, kd->kid, SKR_ENV_KID_LEN);
        assert_int_equal(open_blob(kd, skr_buf_span(&blob), ""), SKR_E_VERIFY);
        expect_msg("authentication failed");
    }
}

static void
test_aad(void **state)
{
    static const uint8_t pt[8] = "8 bytes";
    static const char *const pairs[][2] = {
        { "a", "b" }, { "", "a" }, { "a", "" }, { "label", "labe" }, { "label", "label " },
    };

    (void)state;
    for (size_t k = K_OCT16; k <= K_RSA2048; k += K_RSA2048 - K_OCT16) {
        _cleanup_(skr_env_key_freep) struct skr_env_key *key = load(jwk_text[k]);

        for (size_t i = 0; i < SKR_ARRAY_LEN(pairs); i++) {
            _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };

            seal(key, skr_span_make(pt, sizeof(pt)), pairs[i][0], &blob);
            assert_int_equal(open_blob(key, skr_buf_span(&blob), pairs[i][1]), SKR_E_VERIFY);
            expect_msg("authentication failed");
            assert_int_equal(open_blob(key, skr_buf_span(&blob), pairs[i][0]), SKR_OK);
        }
        /* associated data longer than one GCM step, differing in its last byte */
        {
            static char big[70001];
            _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };

            memset(big, 'a', sizeof(big) - 1);
            seal(key, skr_span_make(pt, sizeof(pt)), big, &blob);
            assert_int_equal(open_blob(key, skr_buf_span(&blob), big), SKR_OK);
            big[sizeof(big) - 2] = 'b';
            assert_int_equal(open_blob(key, skr_buf_span(&blob), big), SKR_E_VERIFY);
        }
    }
}

static void
test_version_and_alg(void **state)
{
    static const uint8_t pt[8] = "8 bytes";
    static const uint8_t versions[] = { 0, 2, 0x81, 0xff };
    static const uint8_t algs[] = { 0, 5, 0x80, 0xff };
    _cleanup_(skr_env_key_freep) struct skr_env_key *key = load(jwk_text[K_OCT32]);
    _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };
    struct skr_env_blob b;

    (void)state;
    seal(key, skr_span_make(pt, sizeof(pt)), "", &blob);
    for (size_t i = 0; i < sizeof(versions); i++) {
        blob.ptr[4] = versions[i];
        assert_int_equal(skr_env_parse(skr_buf_span(&blob), &b), SKR_E_UNSUPPORTED);
        expect_msg("version");
    }
    blob.ptr[4] = 1;
    for (size_t i = 0; i < sizeof(algs); i++) {
        blob.ptr[5] = algs[i];
        assert_int_equal(skr_env_parse(skr_buf_span(&blob), &b), SKR_E_UNSUPPORTED);
        expect_msg("algorithm");
    }
    /* a known algorithm that does not fit the key */
    for (uint8_t a = SKR_ENV_A128GCM; a <= SKR_ENV_A192GCM; a++) {
        blob.ptr[5] = a;
        assert_int_equal(open_blob(key, skr_buf_span(&blob), ""), SKR_E_VERIFY);
        expect_msg("does not fit");
    }
    /* the RSA algorithm needs a wrapped key of a modulus size */
    blob.ptr[5] = SKR_ENV_RSA_OAEP_256_A256GCM;
    assert_int_equal(skr_env_parse(skr_buf_span(&blob), &b), SKR_E_MALFORMED);
    blob.ptr[5] = SKR_ENV_A256GCM;
    assert_int_equal(open_blob(key, skr_buf_span(&blob), ""), SKR_OK);
    assert_string_equal(skr_env_alg_name(SKR_ENV_A128GCM), "A128GCM");
    assert_string_equal(skr_env_alg_name(SKR_ENV_RSA_OAEP_256_A256GCM), "RSA-OAEP-256+A256GCM");
    assert_string_equal(skr_env_alg_name((enum skr_env_alg)0), "unknown");
    assert_string_equal(skr_env_alg_name((enum skr_env_alg)9), "unknown");
}

static void
test_length_fields(void **state)
{
    uint8_t h[SKR_ENV_FIXED_LEN + 12 + 16] = "SKRE\x01\x03";
    struct skr_env_blob b;

    (void)state;
    /* a valid empty oct file frame */
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_OK);
    assert_int_equal(b.ciphertext.len, 0);
    /* ciphertext_len past the limit, and at the top of the u64 range (no overflow) */
    skr_put_u64le(h + 40, (uint64_t)SKR_MAX_CRYPT_BYTES + 1);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_TOO_LARGE);
    skr_put_u64le(h + 40, UINT64_MAX);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_TOO_LARGE);
    skr_put_u64le(h + 40, SKR_MAX_CRYPT_BYTES);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_TRUNCATED);
    skr_put_u64le(h + 40, 0);
    /* wrapped key lengths */
    h[5] = SKR_ENV_RSA_OAEP_256_A256GCM;
    skr_put_u16le(h + 6, 255);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_MALFORMED);
    skr_put_u16le(h + 6, SKR_MAX_RSA_BITS / 8 + 1);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_MALFORMED);
    skr_put_u16le(h + 6, 0xffff);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_MALFORMED);
    skr_put_u16le(h + 6, 256);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_TRUNCATED);
    h[5] = SKR_ENV_A256GCM;
    skr_put_u16le(h + 6, 1);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), &b), SKR_E_MALFORMED);
    assert_int_equal(skr_env_parse(skr_span_make(NULL, 0), &b), SKR_E_MALFORMED);
    assert_int_equal(skr_env_parse(skr_span_make(h, sizeof(h)), NULL), SKR_E_INVALID_ARG);
}

static void
test_public_rsa(void **state)
{
    static const uint8_t pt[8] = "8 bytes";
    _cleanup_(skr_env_key_freep) struct skr_env_key *pub = load(rsa_pub);
    _cleanup_(skr_env_key_freep) struct skr_env_key *priv = load(jwk_text[K_RSA2048]);
    _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };

    (void)state;
    assert_false(pub->has_private);
    assert_memory_equal(pub->kid, priv->kid, SKR_ENV_KID_LEN);
    seal(pub, skr_span_make(pt, sizeof(pt)), "x", &blob);
    assert_int_equal(open_blob(pub, skr_buf_span(&blob), "x"), SKR_E_INVALID_ARG);
    expect_msg("private");
    assert_int_equal(open_blob(priv, skr_buf_span(&blob), "x"), SKR_OK);
}

static void
test_key_forms(void **state)
{
    _cleanup_(skr_env_key_freep) struct skr_env_key *bare = load(jwk_text[K_RSA3072]);
    _cleanup_(json_decrefp) json_t *inner = json_loads(jwk_text[K_RSA3072], 0, NULL);
    _cleanup_(json_decrefp) json_t *as_obj = json_pack("{sO}", "key", inner);
    _cleanup_(json_decrefp) json_t *as_str = json_pack("{ss}", "key", jwk_text[K_RSA3072]);
    _cleanup_free_ char *t_obj = json_dumps(as_obj, 0);
    _cleanup_free_ char *t_str = json_dumps(as_str, 0);
    _cleanup_(skr_env_key_freep) struct skr_env_key *k1 = load(t_obj);
    _cleanup_(skr_env_key_freep) struct skr_env_key *k2 = load(t_str);
    _cleanup_(json_decrefp) json_t *rfc = json_loads(rfc7638_jwk, 0, NULL);
    char tp[SKR_THUMBPRINT_LEN], kid[SKR_ENV_KID_TXTLEN];

    (void)state;
    assert_memory_equal(k1->kid, bare->kid, SKR_ENV_KID_LEN);
    assert_memory_equal(k2->kid, bare->kid, SKR_ENV_KID_LEN);
    /* the kid is the RFC 7638 thumbprint */
    assert_int_equal(skr_jwk_thumbprint(inner, tp), SKR_OK);
    skr_env_kid_text(bare->kid, kid);
    assert_string_equal(kid, tp);
    {
        _cleanup_(skr_env_key_freep) struct skr_env_key *r = load(rfc7638_jwk);

        assert_non_null(rfc);
        skr_env_kid_text(r->kid, kid);
        assert_string_equal(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_false(r->has_private);
    }
    /* an oct key's kid, and a modulus with a leading zero byte (as AKV writes it) */
    {
        _cleanup_(skr_env_key_freep) struct skr_env_key *o = load(jwk_text[K_OCT16]);
        _cleanup_(json_decrefp) json_t *oj = json_loads(jwk_text[K_OCT16], 0, NULL);
        _cleanup_(json_decrefp) json_t *z = json_deep_copy(inner);
        _cleanup_(skr_buf_donep) struct skr_buf n = { 0 };
        _cleanup_(skr_buf_donep) struct skr_buf n64 = { 0 };
        _cleanup_free_ char *zt = NULL;

        assert_int_equal(skr_jwk_thumbprint(oj, tp), SKR_OK);
        skr_env_kid_text(o->kid, kid);
        assert_string_equal(kid, tp);
        skr_buf_init(&n, 2048);
        skr_buf_init(&n64, 2048);
        assert_int_equal(skr_buf_append_byte(&n, 0), SKR_OK);
        assert_int_equal(skr_b64_decode(skr_span_str(json_string_value(json_object_get(z, "n"))),
                                        SKR_B64_URL, &n),
                         SKR_OK);
        assert_int_equal(skr_b64_encode(skr_buf_span(&n), SKR_B64_URL, &n64), SKR_OK);
        assert_int_equal(skr_buf_append_byte(&n64, 0), SKR_OK);
        assert_int_equal(json_object_set_new(z, "n", json_string((const char *)n64.ptr)), 0);
        zt = json_dumps(z, 0);
        {
            _cleanup_(skr_env_key_freep) struct skr_env_key *zk = load(zt);

            assert_memory_equal(zk->kid, bare->kid, SKR_ENV_KID_LEN);
        }
    }
}

static void
test_key_negative(void **state)
{
    static const char secretish[] = "{\"kty\":\"oct\",\"k\":\"SECRETSECRETSECRETSECRETSE\"";
    char big[SKR_MAX_KEY_FILE_BYTES + 2];
    struct skr_env_key *k = NULL;

    (void)state;
    expect_key_err("", SKR_E_MALFORMED, "not valid JSON");
    expect_key_err(secretish, SKR_E_MALFORMED, "not valid JSON");
    assert_null(strstr(skr_err_msg(), "SECRET"));
    expect_key_err("[1]", SKR_E_MALFORMED, "JSON object");
    expect_key_err("{}", SKR_E_MALFORMED, "expected a JWK");
    expect_key_err("{\"kty\":5}", SKR_E_MALFORMED, "expected a JWK");
    expect_key_err("{\"kty\":\"oct\"}", SKR_E_MALFORMED, "'k'");
    expect_key_err("{\"kty\":\"oct\",\"k\":7}", SKR_E_MALFORMED, "'k'");
    expect_key_err("{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}", SKR_E_MALFORMED,
                   "base64url");
    expect_key_err("{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAB\"}", SKR_E_MALFORMED,
                   "base64url");
    expect_key_err("{\"kty\":\"oct\",\"k\":\"\"}", SKR_E_UNSUPPORTED, "0 bytes");
    expect_key_err("{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAA\"}", SKR_E_UNSUPPORTED,
                   "19 bytes");
    expect_key_err("{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                   SKR_E_UNSUPPORTED, "AES-GCM needs 16, 24 or 32");
    expect_key_err("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}",
                   SKR_E_UNSUPPORTED, "EC keys are not supported");
    expect_key_err("{\"kty\":\"OKP\"}", SKR_E_UNSUPPORTED, "oct or RSA");
    expect_key_err("{\"kty\":\"oct-HSM\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAA\"}", SKR_E_UNSUPPORTED,
                   "oct or RSA");
    expect_key_err("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", SKR_E_UNSUPPORTED, NULL);
    expect_key_err("{\"key\":5}", SKR_E_MALFORMED, "neither");
    expect_key_err("{\"key\":\"not json SECRET\"}", SKR_E_MALFORMED, "not JSON");
    assert_null(strstr(skr_err_msg(), "SECRET"));
    expect_key_err("{\"key\":\"[]\"}", SKR_E_MALFORMED, "not a JWK");
    expect_key_err("{\"key\":{}}", SKR_E_MALFORMED, "not a JWK");
    memset(big, ' ', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    expect_key_err(big, SKR_E_TOO_LARGE, NULL);
    assert_int_equal(skr_env_key_from_jwk(skr_span_str("{}"), NULL), SKR_E_INVALID_ARG);
    assert_null(k);
    skr_env_key_free(NULL);
}

static void
test_api_misuse(void **state)
{
    static const uint8_t pt[4] = "abc";
    _cleanup_(skr_env_key_freep) struct skr_env_key *key = load(jwk_text[K_OCT16]);
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf blob = { 0 };

    (void)state;
    seal(key, skr_span_make(pt, sizeof(pt)), "", &blob);
    skr_buf_init(&out, 1024);
    assert_int_equal(skr_buf_append_byte(&out, 1), SKR_OK);
    assert_int_equal(skr_env_encrypt(key, skr_span_make(pt, sizeof(pt)), skr_span_str(""), &out),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_env_decrypt(key, skr_buf_span(&blob), skr_span_str(""), &out),
                     SKR_E_INVALID_ARG);
    skr_buf_reset(&out);
    assert_int_equal(skr_env_encrypt(NULL, skr_span_make(pt, sizeof(pt)), skr_span_str(""), &out),
                     SKR_E_INVALID_ARG);
    /* the size limit is checked before a byte is read */
    assert_int_equal(skr_env_encrypt(key, skr_span_make(pt, (size_t)SKR_MAX_CRYPT_BYTES + 1),
                                     skr_span_str(""), &out),
                     SKR_E_TOO_LARGE);
    assert_int_equal(out.len, 0);
    /* an output buffer too small for the result leaves it empty */
    skr_buf_done(&out);
    skr_buf_init(&out, 10);
    assert_int_equal(skr_env_encrypt(key, skr_span_make(pt, sizeof(pt)), skr_span_str(""), &out),
                     SKR_E_TOO_LARGE);
    assert_int_equal(out.len, 0);
    skr_buf_done(&out);
    skr_buf_init(&out, 2);
    assert_int_equal(skr_env_decrypt(key, skr_buf_span(&blob), skr_span_str(""), &out),
                     SKR_E_TOO_LARGE);
    assert_int_equal(out.len, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_nonce_and_data_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_kid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_and_alg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_rsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_misuse, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
