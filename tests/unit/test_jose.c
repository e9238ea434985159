/*
 * test_jose.c - lib/jose: the real Managed HSM release JWS (parse, x5c, x5t#S256/kid, RS256
 * verification, single-character tampering), the MAA REST example token and the SDK mock
 * token (claims), RS256 sign/verify round trips, PS256/ES256 through the same verifier,
 * algorithm confusion (none, HS256, PS256 header over an RS256 signature, key type vs alg),
 * malformed compact forms, x5c errors, JWK conversion both ways with its negative cases,
 * RFC 7638 thumbprints (RFC vector and an independent computation), oct JWKs and the
 * transfer-key JWKS byte layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_certs.h"
#include "tdata.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* A vector without its trailing whitespace (some files end with a newline). */
static uint8_t *
read_vec(const char *rel, size_t *ret_len)
{
    size_t n = 0;
    uint8_t *buf = t_read_data(rel, &n);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        n--;
    }
    *ret_len = n;
    return buf;
}

static void
expect_err(skr_err got, skr_err want, const char *needle)
{
    if (got != want) {
        fail_msg("got %s, want %s (%s)", skr_err_name(got), skr_err_name(want), skr_err_msg());
    }
    if (needle != NULL) {
        assert_msg_contains(needle);
    }
}

static EVP_PKEY *
gen_rsa(unsigned int bits)
{
    EVP_PKEY *k = EVP_RSA_gen(bits);

    assert_non_null(k);
    return k;
}

static EVP_PKEY *
gen_ec(const char *curve)
{
    EVP_PKEY *k = EVP_EC_gen(curve);

    assert_non_null(k);
    return k;
}

/* Appends base64url-nopad(s) to out. */
static void
put_b64url(struct skr_buf *out, const void *p, size_t n)
{
    assert_int_equal(skr_b64_encode(skr_span_make(p, n), SKR_B64_URL, out), SKR_OK);
}

/* "<b64url hdr>.<b64url payload>." into out (signing input plus the dot). */
static void
make_input(struct skr_buf *out, const char *hdr, const char *payload)
{
    skr_buf_init(out, SKR_MAX_JWT_BYTES * 2);
    put_b64url(out, hdr, strlen(hdr));
    assert_int_equal(skr_buf_append_byte(out, '.'), SKR_OK);
    put_b64url(out, payload, strlen(payload));
}

static void
make_jws(struct skr_buf *out, const char *hdr, const char *payload, const uint8_t *sig,
         size_t siglen)
{
    make_input(out, hdr, payload);
    assert_int_equal(skr_buf_append_byte(out, '.'), SKR_OK);
    put_b64url(out, sig, siglen);
}

static skr_err
parse_str(const char *s, struct skr_jws *j)
{
    return skr_jws_parse(skr_span_str(s), j);
}

/* Signs data with key: RSA PKCS#1 v1.5 or PSS with md, or ECDSA as raw r||s of n bytes. */
static size_t
raw_sign(EVP_PKEY *key, const EVP_MD *md, bool pss, size_t ec_n, struct skr_span data, uint8_t *sig,
         size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t der[1200];
    size_t len = sizeof(der);

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, key), 1);
    if (pss) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    assert_int_equal(EVP_DigestSign(ctx, der, &len, data.ptr, data.len), 1);
    EVP_MD_CTX_free(ctx);
    if (ec_n == 0) {
        assert_true(len <= cap);
        memcpy(sig, der, len);
        return len;
    }
    {
        const unsigned char *p = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
        const BIGNUM *r = NULL;
        const BIGNUM *s = NULL;

        assert_non_null(es);
        assert_true(2 * ec_n <= cap);
        ECDSA_SIG_get0(es, &r, &s);
        assert_int_equal(BN_bn2binpad(r, sig, (int)ec_n), (int)ec_n);
        assert_int_equal(BN_bn2binpad(s, sig + ec_n, (int)ec_n), (int)ec_n);
        ECDSA_SIG_free(es);
        return 2 * ec_n;
    }
}

/* A compact JWS with the given header signed by raw_sign. */
static void
make_signed(struct skr_buf *out, const char *hdr, const char *payload, EVP_PKEY *key,
            const EVP_MD *md, bool pss, size_t ec_n)
{
    uint8_t sig[1100];
    size_t n;

    make_input(out, hdr, payload);
    n = raw_sign(key, md, pss, ec_n, skr_buf_span(out), sig, sizeof(sig));
    assert_int_equal(skr_buf_append_byte(out, '.'), SKR_OK);
    put_b64url(out, sig, n);
}

static void
b64url_of_sha256(const void *p, size_t n, char out[SKR_THUMBPRINT_LEN])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    struct skr_buf b;

    assert_int_equal(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL), 1);
    skr_buf_init(&b, 64);
    put_b64url(&b, md, mdlen);
    assert_int_equal(b.len, 43);
    memcpy(out, b.ptr, 43);
    out[43] = '\0';
    skr_buf_done(&b);
}

static json_t *
json_of(const char *s)
{
    json_t *v = NULL;

    assert_int_equal(skr_json_parse(skr_span_str(s), SKR_MAX_JSON_BYTES, &v), SKR_OK);
    return v;
}

/* ---- the real Managed HSM release response ---------------------------------------------- */

static void
test_mhsm_release(void **state)
{
    size_t n;
    uint8_t *raw = read_vec("mhsm/mhsm_release_response.jws", &n);
    struct skr_jws j;
    STACK_OF(X509) *sk = NULL;
    EVP_PKEY *other;
    char cn[256];
    char tp[SKR_THUMBPRINT_LEN];
    const char *kid = NULL;
    const char *enc = NULL;
    json_t *req = NULL;
    bool present = false;

    (void)state;
    assert_int_equal(skr_jws_parse(skr_span_make(raw, n), &j), SKR_OK);
    assert_string_equal(j.alg, "RS256");
    assert_int_equal(j.signature.len, 256);
    assert_int_equal(j.signing_input.len, j.seg_hdr.len + 1 + j.seg_pay.len);
    assert_non_null(j.claims);
    assert_int_equal(skr_json_get_obj(j.claims, "request", &req), SKR_OK);
    assert_int_equal(skr_json_get_str(req, "enc", &enc), SKR_OK);
    assert_string_equal(enc, "RSA_AES_KEY_WRAP_256");

    assert_int_equal(skr_jws_x5c(&j, &sk), SKR_OK);
    assert_int_equal(sk_X509_num(sk), 3);
    skr_x509_cn(sk_X509_value(sk, 0), cn, sizeof(cn));
    assert_string_equal(cn, "*.malegeskrkvhsm.managedhsm.azure.net");
    skr_x509_cn(sk_X509_value(sk, 2), cn, sizeof(cn));
    assert_string_equal(cn, "DigiCert Global Root G2");

    /* x5t#S256 present and right; kid == x5t#S256 (AKV convention). */
    assert_int_equal(skr_jws_check_x5t(&j, sk_X509_value(sk, 0), &present), SKR_OK);
    assert_true(present);
    assert_int_equal(skr_x509_thumbprint_s256(sk_X509_value(sk, 0), tp), SKR_OK);
    assert_int_equal(skr_json_get_str(j.header, "kid", &kid), SKR_OK);
    assert_string_equal(kid, tp);
    assert_string_equal(tp, "o-ws5cbM7gZJZVQ-LUVvwT9qs-m2z-Pbfyd6o2dQba4");
    expect_err(skr_jws_check_x5t(&j, sk_X509_value(sk, 1), NULL), SKR_E_VERIFY, "x5t#S256");

    /* RS256 with x5c[0]'s key verifies; with the issuer's key or a fresh key it does not. */
    assert_int_equal(skr_jws_verify(&j, X509_get0_pubkey(sk_X509_value(sk, 0))), SKR_OK);
    expect_err(skr_jws_verify(&j, X509_get0_pubkey(sk_X509_value(sk, 1))), SKR_E_VERIFY,
               "does not verify");
    other = gen_rsa(2048);
    expect_err(skr_jws_verify(&j, other), SKR_E_VERIFY, "does not verify");
    EVP_PKEY_free(other);

    skr_x509_stack_free(sk);
    skr_jws_done(&j);
    assert_null(j.header);
    skr_jws_done(&j); /* idempotent */
    free(raw);
}

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Every sampled single-character change in any segment stops the JWS from verifying. */
static void
test_mhsm_tamper(void **state)
{
    size_t n;
    uint8_t *raw = read_vec("mhsm/mhsm_release_response.jws", &n);
    struct skr_jws j;
    STACK_OF(X509) *sk = NULL;
    EVP_PKEY *leaf;
    size_t dot1;
    size_t dot2;
    size_t tried = 0;

    (void)state;
    assert_int_equal(skr_jws_parse(skr_span_make(raw, n), &j), SKR_OK);
    assert_int_equal(skr_jws_x5c(&j, &sk), SKR_OK);
    leaf = X509_get0_pubkey(sk_X509_value(sk, 0));
    dot1 = j.seg_hdr.len;
    dot2 = dot1 + 1 + j.seg_pay.len;
    skr_jws_done(&j);

    for (size_t i = 0; i < n; i++) {
        bool edge = i == 0 || i + 1 == dot1 || i == dot1 + 1 || i + 1 == dot2 || i == dot2 + 1 ||
                    i + 1 == n;
        uint8_t orig = raw[i];
        skr_err e;

        if (i == dot1 || i == dot2 || (!edge && i % 97 != 0)) {
            continue;
        }
        for (int k = 0; k < 2; k++) {
            /* a neighbour in the alphabet, and one far away */
            const char *pos = strchr(b64url_alpha, orig);

            assert_non_null(pos);
            raw[i] = (uint8_t)b64url_alpha[((size_t)(pos - b64url_alpha) + (k == 0 ? 1 : 33)) % 64];
            e = skr_jws_parse(skr_span_make(raw, n), &j);
            if (e == SKR_OK) {
                e = skr_jws_verify(&j, leaf);
                skr_jws_done(&j);
            }
            if (e == SKR_OK) {
                fail_msg("change at offset %zu still verifies", i);
            }
            tried++;
        }
        raw[i] = orig;
    }
    assert_true(tried > 250);
    /* and untouched it still verifies */
    assert_int_equal(skr_jws_parse(skr_span_make(raw, n), &j), SKR_OK);
    assert_int_equal(skr_jws_verify(&j, leaf), SKR_OK);
    skr_jws_done(&j);
    skr_x509_stack_free(sk);
    free(raw);
}

/* ---- MAA example token and SDK mock token ------------------------------------------------ */

static void
test_maa_example_token(void **state)
{
    size_t n;
    uint8_t *raw = read_vec("restspec/maa_AttestSevSnpVm_example_token.jwt", &n);
    struct skr_jws j;
    STACK_OF(X509) *sk = NULL;
    EVP_PKEY *k;
    const char *s = NULL;
    uint64_t iat = 0;
    uint64_t exp = 0;
    bool b = true;

    (void)state;
    assert_int_equal(skr_jws_parse(skr_span_make(raw, n), &j), SKR_OK);
    assert_string_equal(j.alg, "RS256");
    assert_int_equal(skr_json_get_str(j.header, "kid", &s), SKR_OK);
    assert_string_equal(s, "NiBnE1F+mmlfQeIhyDbQsUR9WS6dRPX9dXmHDnZoEpU=");
    assert_int_equal(skr_json_get_str(j.header, "jku", &s), SKR_OK);
    assert_string_equal(s, "https://tenanttests.us/certs");
    assert_non_null(j.claims);
    assert_int_equal(skr_json_get_str(j.claims, "x-ms-attestation-type", &s), SKR_OK);
    assert_string_equal(s, "sevsnpvm");
    assert_int_equal(skr_json_get_str(j.claims, "x-ms-ver", &s), SKR_OK);
    assert_string_equal(s, "1.0");
    assert_int_equal(skr_json_get_u64(j.claims, "iat", &iat), SKR_OK);
    assert_int_equal(skr_json_get_u64(j.claims, "exp", &exp), SKR_OK);
    assert_int_equal(exp - iat, 28800);
    assert_int_equal(skr_json_get_bool(j.claims, "x-ms-sevsnpvm-is-debuggable", &b), SKR_OK);
    assert_false(b);
    assert_int_equal(skr_json_get_str(j.claims, "x-ms-sevsnpvm-reportdata", &s), SKR_OK);
    assert_int_equal(strlen(s), 128);

    /* No x5c, and no key we own verifies it (fake issuer). */
    expect_err(skr_jws_x5c(&j, &sk), SKR_E_NOT_FOUND, "x5c");
    k = gen_rsa(2048);
    expect_err(skr_jws_verify(&j, k), SKR_E_VERIFY, NULL);
    EVP_PKEY_free(k);
    skr_jws_done(&j);
    free(raw);
}

static void
test_mock_token(void **state)
{
    size_t n;
    uint8_t *raw = read_vec("mhsm/mock_attestation_token.jwt", &n);
    struct skr_jws j;
    json_t *rt = NULL;
    json_t *keys = NULL;
    const char *s = NULL;
    EVP_PKEY *k = NULL;

    (void)state;
    assert_int_equal(skr_jws_parse(skr_span_make(raw, n), &j), SKR_OK);
    assert_int_equal(skr_json_get_str(j.header, "typ", &s), SKR_OK);
    assert_string_equal(s, "JWT");
    assert_int_equal(skr_json_get_obj(j.claims, "x-ms-runtime", &rt), SKR_OK);
    assert_int_equal(skr_json_get_arr(rt, "keys", &keys), SKR_OK);
    assert_int_equal(skr_json_get_str(json_array_get(keys, 0), "kid", &s), SKR_OK);
    assert_string_equal(s, "fake-release-key");
    /* The runtime key is a usable RSA JWK. */
    assert_int_equal(skr_jwk_to_pkey(json_array_get(keys, 0), &k), SKR_OK);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
    expect_err(skr_jws_verify(&j, k), SKR_E_VERIFY, "does not verify");
    EVP_PKEY_free(k);
    skr_jws_done(&j);
    free(raw);
}

/* ---- signing, other algorithms, confusion ----------------------------------------------- */

static void
test_sign_roundtrip(void **state)
{
    EVP_PKEY *k = gen_rsa(2048);
    EVP_PKEY *other = gen_rsa(3072);
    EVP_PKEY *ec = gen_ec("P-256");
    EVP_PKEY *pub = NULL;
    json_t *hx = json_of("{\"typ\":\"JWT\",\"kid\":\"k1\",\"jku\":\"https://maa.local/certs\"}");
    json_t *claims = json_of("{\"iss\":\"https://maa.local\",\"iat\":1,\"x-ms-ver\":\"1.0\","
                             "\"b\":[1,2,{}]}");
    struct skr_buf out;
    struct skr_buf hdr;
    struct skr_jws j;
    const char *s = NULL;
    json_t *bad;
    uint8_t *der = NULL;
    int derlen;

    (void)state;
    skr_buf_init(&out, SKR_MAX_JWT_BYTES);
    assert_int_equal(skr_jwt_sign_rs256(k, hx, claims, &out), SKR_OK);
    assert_int_equal(skr_jws_parse(skr_buf_span(&out), &j), SKR_OK);
    /* header: sorted keys, compact, alg added */
    skr_buf_init(&hdr, 4096);
    assert_int_equal(skr_b64_decode(j.seg_hdr, SKR_B64_URL, &hdr), SKR_OK);
    assert_int_equal(skr_buf_cstr(&hdr, &s), SKR_OK);
    assert_string_equal(s, "{\"alg\":\"RS256\",\"jku\":\"https://maa.local/certs\",\"kid\":\"k1\","
                           "\"typ\":\"JWT\"}");
    /* payload: claims in their own order */
    assert_int_equal(j.payload.len, strlen("{\"iss\":\"https://maa.local\",\"iat\":1,"
                                           "\"x-ms-ver\":\"1.0\",\"b\":[1,2,{}]}"));
    assert_memory_equal(j.payload.ptr, "{\"iss\":\"https://maa.local\",\"iat\":1,", 34);
    assert_true(json_equal(j.claims, claims));
    assert_int_equal(skr_jws_verify(&j, k), SKR_OK);
    /* verify with the public half only */
    derlen = i2d_PUBKEY(k, &der);
    assert_true(derlen > 0);
    {
        const unsigned char *p = der;

        pub = d2i_PUBKEY(NULL, &p, derlen);
        assert_non_null(pub);
    }
    assert_int_equal(skr_jws_verify(&j, pub), SKR_OK);
    expect_err(skr_jws_verify(&j, other), SKR_E_VERIFY, "does not verify");
    skr_jws_done(&j);

    /* NULL header_extra */
    skr_buf_reset(&out);
    assert_int_equal(skr_jwt_sign_rs256(k, NULL, claims, &out), SKR_OK);
    assert_int_equal(skr_jws_parse(skr_buf_span(&out), &j), SKR_OK);
    assert_int_equal(json_object_size(j.header), 1);
    assert_int_equal(skr_jws_verify(&j, k), SKR_OK);
    skr_jws_done(&j);

    /* refusals */
    bad = json_of("{\"alg\":\"none\"}");
    expect_err(skr_jwt_sign_rs256(k, bad, claims, &out), SKR_E_INVALID_ARG, "alg");
    expect_err(skr_jwt_sign_rs256(k, hx, bad, &out), SKR_OK, NULL); /* claims may be any object */
    json_decref(bad);
    bad = json_of("[1]");
    expect_err(skr_jwt_sign_rs256(k, hx, bad, &out), SKR_E_INVALID_ARG, "object");
    expect_err(skr_jwt_sign_rs256(k, bad, claims, &out), SKR_E_INVALID_ARG, "object");
    json_decref(bad);
    expect_err(skr_jwt_sign_rs256(ec, hx, claims, &out), SKR_E_INVALID_ARG, "RSA");
    expect_err(skr_jwt_sign_rs256(pub, hx, claims, &out), SKR_E_INVALID_ARG, "private");

    OPENSSL_free(der);
    skr_buf_done(&hdr);
    skr_buf_done(&out);
    json_decref(hx);
    json_decref(claims);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pub);
}

static void
check_alg(EVP_PKEY *key, const char *alg, const EVP_MD *md, bool pss, size_t ec_n)
{
    char hdr[64];
    struct skr_buf b;
    struct skr_jws j;

    (void)snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", alg);
    make_signed(&b, hdr, "{\"a\":1}", key, md, pss, ec_n);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    if (skr_jws_verify(&j, key) != SKR_OK) {
        fail_msg("%s does not verify: %s", alg, skr_err_msg());
    }
    skr_jws_done(&j);
    skr_buf_done(&b);
}

static void
test_other_algs(void **state)
{
    EVP_PKEY *rsa = gen_rsa(2048);
    EVP_PKEY *p256 = gen_ec("P-256");
    EVP_PKEY *p384 = gen_ec("P-384");
    EVP_PKEY *p521 = gen_ec("P-521");

    (void)state;
    check_alg(rsa, "RS256", EVP_sha256(), false, 0);
    check_alg(rsa, "RS384", EVP_sha384(), false, 0);
    check_alg(rsa, "RS512", EVP_sha512(), false, 0);
    check_alg(rsa, "PS256", EVP_sha256(), true, 0);
    check_alg(rsa, "PS384", EVP_sha384(), true, 0);
    check_alg(rsa, "PS512", EVP_sha512(), true, 0);
    check_alg(p256, "ES256", EVP_sha256(), false, 32);
    check_alg(p384, "ES384", EVP_sha384(), false, 48);
    check_alg(p521, "ES512", EVP_sha512(), false, 66);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
}

static void
test_alg_confusion(void **state)
{
    EVP_PKEY *rsa = gen_rsa(2048);
    EVP_PKEY *p256 = gen_ec("P-256");
    EVP_PKEY *p384 = gen_ec("P-384");
    struct skr_buf b;
    struct skr_jws j;
    uint8_t mac[32];
    unsigned int maclen = 0;
    uint8_t *der = NULL;
    int derlen;

    (void)state;
    /* alg none, with or without a signature, any case */
    make_jws(&b, "{\"alg\":\"none\"}", "{}", (const uint8_t *)"x", 1);
    expect_err(skr_jws_parse(skr_buf_span(&b), &j), SKR_E_VERIFY, "'none'");
    assert_null(j.header);
    skr_buf_done(&b);
    make_jws(&b, "{\"alg\":\"NoNe\"}", "{}", (const uint8_t *)"x", 1);
    expect_err(skr_jws_parse(skr_buf_span(&b), &j), SKR_E_VERIFY, "'none'");
    skr_buf_done(&b);
    make_input(&b, "{\"alg\":\"none\"}", "{}");
    assert_int_equal(skr_buf_append_byte(&b, '.'), SKR_OK);
    expect_err(skr_jws_parse(skr_buf_span(&b), &j), SKR_E_MALFORMED, "empty signature");
    skr_buf_done(&b);

    /* HS256 keyed with the RSA public key's DER (the classic confusion): parses, never verifies */
    derlen = i2d_PUBKEY(rsa, &der);
    assert_true(derlen > 0);
    make_input(&b, "{\"alg\":\"HS256\"}", "{\"a\":1}");
    assert_non_null(HMAC(EVP_sha256(), der, derlen, b.ptr, b.len, mac, &maclen));
    assert_int_equal(skr_buf_append_byte(&b, '.'), SKR_OK);
    put_b64url(&b, mac, maclen);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, rsa), SKR_E_VERIFY, "not one of");
    skr_jws_done(&j);
    skr_buf_done(&b);

    /* header says PS256, signature is RS256 (PKCS#1 v1.5) over the same input */
    make_signed(&b, "{\"alg\":\"PS256\"}", "{\"a\":1}", rsa, EVP_sha256(), false, 0);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, rsa), SKR_E_VERIFY, "PS256 signature does not verify");
    skr_jws_done(&j);
    skr_buf_done(&b);
    /* header RS256, signature PSS */
    make_signed(&b, "{\"alg\":\"RS256\"}", "{\"a\":1}", rsa, EVP_sha256(), true, 0);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, rsa), SKR_E_VERIFY, "RS256 signature does not verify");
    skr_jws_done(&j);
    skr_buf_done(&b);
    /* RS384 header over an RS256 signature */
    make_signed(&b, "{\"alg\":\"RS384\"}", "{\"a\":1}", rsa, EVP_sha256(), false, 0);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, rsa), SKR_E_VERIFY, "does not verify");
    skr_jws_done(&j);
    skr_buf_done(&b);

    /* key type vs alg */
    make_signed(&b, "{\"alg\":\"ES256\"}", "{\"a\":1}", p256, EVP_sha256(), false, 32);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    assert_int_equal(skr_jws_verify(&j, p256), SKR_OK);
    expect_err(skr_jws_verify(&j, rsa), SKR_E_VERIFY, "needs an EC key");
    expect_err(skr_jws_verify(&j, p384), SKR_E_VERIFY, "prime256v1");
    skr_jws_done(&j);
    skr_buf_done(&b);
    make_signed(&b, "{\"alg\":\"ES384\"}", "{\"a\":1}", p256, EVP_sha384(), false, 32);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, p256), SKR_E_VERIFY, "secp384r1");
    skr_jws_done(&j);
    skr_buf_done(&b);
    make_signed(&b, "{\"alg\":\"RS256\"}", "{\"a\":1}", rsa, EVP_sha256(), false, 0);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, p256), SKR_E_VERIFY, "needs an RSA key");
    skr_jws_done(&j);
    skr_buf_done(&b);
    /* ES256 signature in DER form instead of r||s */
    make_signed(&b, "{\"alg\":\"ES256\"}", "{\"a\":1}", p256, EVP_sha256(), false, 0);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, p256), SKR_E_VERIFY, "does not verify");
    skr_jws_done(&j);
    skr_buf_done(&b);
    /* unknown / lower-case alg names */
    make_signed(&b, "{\"alg\":\"rs256\"}", "{\"a\":1}", rsa, EVP_sha256(), false, 0);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, rsa), SKR_E_VERIFY, "not one of");
    skr_jws_done(&j);
    skr_buf_done(&b);

    OPENSSL_free(der);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
}

static void
test_small_rsa_refused(void **state)
{
    EVP_PKEY *small = gen_rsa(1024);
    struct skr_buf b;
    struct skr_jws j;
    json_t *claims = json_of("{}");
    json_t *jwk = NULL;

    (void)state;
    make_signed(&b, "{\"alg\":\"RS256\"}", "{\"a\":1}", small, EVP_sha256(), false, 0);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    expect_err(skr_jws_verify(&j, small), SKR_E_VERIFY, "1024 bits");
    skr_jws_done(&j);
    expect_err(skr_jwt_sign_rs256(small, NULL, claims, &b), SKR_E_UNSUPPORTED, "1024");
    expect_err(skr_jwk_from_pkey(small, false, &jwk), SKR_E_UNSUPPORTED, "1024");
    skr_buf_done(&b);
    json_decref(claims);
    EVP_PKEY_free(small);
}

/* ---- malformed compact serializations --------------------------------------------------- */

static void
test_malformed(void **state)
{
    /* {"alg":"RS256"} and {} */
    static const struct {
        const char *in;
        skr_err code;
        const char *msg;
    } cases[] = {
        { "", SKR_E_MALFORMED, "empty input" },
        { "eyJhbGciOiJSUzI1NiJ9.e30", SKR_E_MALFORMED, "found 2" },
        { "eyJhbGciOiJSUzI1NiJ9", SKR_E_MALFORMED, "found 1" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AAAA.AAAA", SKR_E_MALFORMED, "found 4" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AAAA.", SKR_E_MALFORMED, "found 4" },
        { ".e30.AAAA", SKR_E_MALFORMED, "empty header" },
        { "eyJhbGciOiJSUzI1NiJ9..AAAA", SKR_E_MALFORMED, "empty payload" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.", SKR_E_MALFORMED, "empty signature" },
        { "..", SKR_E_MALFORMED, "empty header" },
        { "eyJhbGciOiJSUzI1NiJ9.e30=.AAAA", SKR_E_MALFORMED, "padding" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AAA=", SKR_E_MALFORMED, "padding" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AA+A", SKR_E_MALFORMED, "standard base64" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AA/A", SKR_E_MALFORMED, "standard base64" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AA A", SKR_E_MALFORMED, "invalid base64url character" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AAAA\n", SKR_E_MALFORMED, "invalid base64url character" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AAAAA", SKR_E_MALFORMED, "impossible length" },
        { "eyJhbGciOiJSUzI1NiJ9.e31.AAAA", SKR_E_MALFORMED, "non-canonical" },
        { "eyJhbGciOiJSUzI1NiJ9.e30.AB", SKR_E_MALFORMED, "non-canonical" },
        /* [1] */
        { "WzFd.e30.AAAA", SKR_E_MALFORMED, "expected a JSON object" },
        /* {"typ":"JWT"} */
        { "eyJ0eXAiOiJKV1QifQ.e30.AAAA", SKR_E_MALFORMED, "'alg' missing" },
        /* {"alg":1} */
        { "eyJhbGciOjF9.e30.AAAA", SKR_E_MALFORMED, "'alg' missing or not a string" },
        /* {"alg":"RS256" (truncated JSON) */
        { "eyJhbGciOiJSUzI1NiI.e30.AAAA", SKR_E_MALFORMED, "JWS header" },
        /* {"alg":"RS256","alg":"none"} duplicate keys */
        { "eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AAAA", SKR_E_MALFORMED, "JWS header" },
        /* {"alg":"RS256","crit":["b64"],"b64":false} */
        { "eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiYjY0Il0sImI2NCI6ZmFsc2V9.e30.AAAA", SKR_E_UNSUPPORTED,
          "crit" },
    };
    struct skr_jws j;
    struct skr_buf big;
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        skr_err e = parse_str(cases[i].in, &j);

        if (e != cases[i].code) {
            fail_msg("case %zu: got %s (%s)", i, skr_err_name(e), skr_err_msg());
        }
        assert_msg_contains(cases[i].msg);
        assert_null(j.header);
        assert_null(j.compact.ptr);
    }

    /* size limit: one byte over is refused before anything else; at the limit it parses */
    skr_buf_init(&big, SKR_MAX_JWT_BYTES + 1);
    assert_int_equal(skr_buf_append_str(&big, "eyJhbGciOiJSUzI1NiJ9.e30."), SKR_OK);
    n = SKR_MAX_JWT_BYTES - big.len;
    assert_int_equal(skr_buf_reserve(&big, n + 1), SKR_OK);
    memset(big.ptr + big.len, 'A', n + 1);
    big.len += n + 1;
    expect_err(skr_jws_parse(skr_buf_span(&big), &j), SKR_E_TOO_LARGE, "exceeds the limit");
    /* the signature is capped far below the total limit */
    expect_err(skr_jws_parse(skr_span_make(big.ptr, big.len - 1), &j), SKR_E_MALFORMED,
               "signature segment longer");
    skr_buf_done(&big);

    /* a payload that is not JSON still parses; claims stay NULL */
    assert_int_equal(parse_str("eyJhbGciOiJSUzI1NiJ9.aGVsbG8.AAAA", &j), SKR_OK);
    assert_null(j.claims);
    assert_int_equal(j.payload.len, 5);
    assert_memory_equal(j.payload.ptr, "hello", 5);
    assert_int_equal(j.signature.len, 3);
    skr_jws_done(&j);
    /* a JSON array payload is not a claims set */
    assert_int_equal(parse_str("eyJhbGciOiJSUzI1NiJ9.WzFd.AAAA", &j), SKR_OK);
    assert_null(j.claims);
    skr_jws_done(&j);
    /* the compact copy outlives the input */
    {
        char tmp[] = "eyJhbGciOiJSUzI1NiJ9.e30.AAAA";

        assert_int_equal(parse_str(tmp, &j), SKR_OK);
        memset(tmp, 'x', sizeof(tmp) - 1);
        assert_true(skr_span_eq_str(j.seg_pay, "e30"));
        assert_true(skr_span_eq_str(j.signing_input, "eyJhbGciOiJSUzI1NiJ9.e30"));
        skr_jws_done(&j);
    }
    expect_err(skr_jws_parse(skr_span_str("a.b.c"), NULL), SKR_E_INVALID_ARG, NULL);
}

/* ---- x5c -------------------------------------------------------------------------------- */

static void
x5c_case(const char *hdr, skr_err want, const char *msg)
{
    struct skr_buf b;
    struct skr_jws j;
    STACK_OF(X509) *sk = NULL;

    make_jws(&b, hdr, "{}", (const uint8_t *)"sig", 3);
    expect_err(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK, NULL);
    expect_err(skr_jws_x5c(&j, &sk), want, msg);
    assert_null(sk);
    skr_jws_done(&j);
    skr_buf_done(&b);
}

static void
test_x5c_errors(void **state)
{
    size_t n;
    uint8_t *raw = read_vec("mhsm/mhsm_release_response.jws", &n);
    struct skr_jws j;
    json_t *x5c;
    char *leaf;
    char *hdr;
    size_t cap;
    struct skr_buf b;
    STACK_OF(X509) *sk = NULL;

    (void)state;
    x5c_case("{\"alg\":\"RS256\",\"x5c\":\"MII\"}", SKR_E_MALFORMED, "not an array");
    x5c_case("{\"alg\":\"RS256\",\"x5c\":[]}", SKR_E_MALFORMED, "0 certificates");
    x5c_case("{\"alg\":\"RS256\",\"x5c\":[1]}", SKR_E_MALFORMED, "x5c[0] is not a string");
    x5c_case("{\"alg\":\"RS256\",\"x5c\":[\"AAAA\"]}", SKR_E_MALFORMED, "not one DER");
    x5c_case("{\"alg\":\"RS256\",\"x5c\":[\"A-_A\"]}", SKR_E_MALFORMED, "x5c[0]");
    x5c_case("{\"alg\":\"RS256\",\"x5c\":[\"AAAAA\"]}", SKR_E_MALFORMED, "x5c[0]");
    x5c_case("{\"alg\":\"RS256\",\"x5c\":[\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"]}",
             SKR_E_MALFORMED, "9 certificates");

    /* real leaf: OK alone; with a trailing byte in the DER, or followed by garbage, refused */
    assert_int_equal(skr_jws_parse(skr_span_make(raw, n), &j), SKR_OK);
    x5c = json_object_get(j.header, "x5c");
    leaf = strdup(json_string_value(json_array_get(x5c, 0)));
    assert_non_null(leaf);
    cap = strlen(leaf) + 200;
    hdr = malloc(cap);
    assert_non_null(hdr);
    (void)snprintf(hdr, cap, "{\"alg\":\"RS256\",\"x5c\":[\"%s\"]}", leaf);
    make_jws(&b, hdr, "{}", (const uint8_t *)"sig", 3);
    skr_jws_done(&j);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    assert_int_equal(skr_jws_x5c(&j, &sk), SKR_OK);
    assert_int_equal(sk_X509_num(sk), 1);
    {
        bool present = true;

        assert_int_equal(skr_jws_check_x5t(&j, sk_X509_value(sk, 0), &present), SKR_OK);
        assert_false(present);
    }
    skr_x509_stack_free(sk);
    sk = NULL;
    skr_jws_done(&j);
    skr_buf_done(&b);
    {
        /* the leaf's DER plus one trailing byte */
        struct skr_buf der;
        struct skr_buf txt;
        const char *t = NULL;

        skr_buf_init(&der, 1u << 16);
        skr_buf_init(&txt, 1u << 16);
        assert_int_equal(skr_b64_decode(skr_span_str(leaf), SKR_B64_STD, &der), SKR_OK);
        assert_int_equal(skr_buf_append_byte(&der, 0), SKR_OK);
        assert_int_equal(skr_b64_encode(skr_buf_span(&der), SKR_B64_STD | SKR_B64_PAD, &txt),
                         SKR_OK);
        assert_int_equal(skr_buf_cstr(&txt, &t), SKR_OK);
        (void)snprintf(hdr, cap, "{\"alg\":\"RS256\",\"x5c\":[\"%s\"]}", t);
        x5c_case(hdr, SKR_E_MALFORMED, "not one DER");
        /* base64url alphabet in x5c is refused (RFC 7515 §4.1.6 says standard base64) */
        size_t swapped = 0;

        for (size_t i = 0; i < txt.len; i++) {
            if (txt.ptr[i] == '+' || txt.ptr[i] == '/') {
                txt.ptr[i] = txt.ptr[i] == '+' ? '-' : '_';
                swapped++;
            }
        }
        assert_true(swapped > 0);
        (void)snprintf(hdr, cap, "{\"alg\":\"RS256\",\"x5c\":[\"%s\"]}", t);
        x5c_case(hdr, SKR_E_MALFORMED, "invalid character");
        skr_buf_done(&der);
        skr_buf_done(&txt);
    }
    (void)snprintf(hdr, cap, "{\"alg\":\"RS256\",\"x5c\":[\"%s\",\"AAAA\"]}", leaf);
    x5c_case(hdr, SKR_E_MALFORMED, "x5c[1] is not one DER");

    /* x5t#S256 of the wrong type, or a wrong value */
    (void)snprintf(hdr, cap, "{\"alg\":\"RS256\",\"x5c\":[\"%s\"],\"x5t#S256\":5}", leaf);
    make_jws(&b, hdr, "{}", (const uint8_t *)"sig", 3);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    assert_int_equal(skr_jws_x5c(&j, &sk), SKR_OK);
    expect_err(skr_jws_check_x5t(&j, sk_X509_value(sk, 0), NULL), SKR_E_MALFORMED, "not a string");
    skr_x509_stack_free(sk);
    skr_jws_done(&j);
    skr_buf_done(&b);
    (void)snprintf(hdr, cap,
                   "{\"alg\":\"RS256\",\"x5c\":[\"%s\"],"
                   "\"x5t#S256\":\"o-ws5cbM7gZJZVQ-LUVvwT9qs-m2z-Pbfyd6o2dQba5\"}",
                   leaf);
    make_jws(&b, hdr, "{}", (const uint8_t *)"sig", 3);
    assert_int_equal(skr_jws_parse(skr_buf_span(&b), &j), SKR_OK);
    assert_int_equal(skr_jws_x5c(&j, &sk), SKR_OK);
    expect_err(skr_jws_check_x5t(&j, sk_X509_value(sk, 0), NULL), SKR_E_VERIFY, "x5t#S256");
    skr_x509_stack_free(sk);
    skr_jws_done(&j);
    skr_buf_done(&b);

    free(leaf);
    free(hdr);
    free(raw);
}

/* ---- JWK -------------------------------------------------------------------------------- */

static void
jwk_roundtrip(EVP_PKEY *k, const char *kty, const char *crv, size_t coord_len)
{
    json_t *pub = NULL;
    json_t *priv = NULL;
    EVP_PKEY *k2 = NULL;
    EVP_PKEY *k3 = NULL;
    const char *s = NULL;
    struct skr_buf b;
    struct skr_buf sig;
    struct skr_jws j;

    assert_int_equal(skr_jwk_from_pkey(k, false, &pub), SKR_OK);
    assert_int_equal(skr_json_get_str(pub, "kty", &s), SKR_OK);
    assert_string_equal(s, kty);
    assert_null(json_object_get(pub, "d"));
    assert_null(json_object_get(pub, "p"));
    skr_buf_init(&b, 2048);
    if (crv != NULL) {
        assert_int_equal(skr_json_get_str(pub, "crv", &s), SKR_OK);
        assert_string_equal(s, crv);
        assert_int_equal(skr_json_get_str(pub, "x", &s), SKR_OK);
        assert_int_equal(skr_b64_decode(skr_span_str(s), SKR_B64_URL, &b), SKR_OK);
        assert_int_equal(b.len, coord_len);
    } else {
        assert_int_equal(skr_json_get_str(pub, "n", &s), SKR_OK);
        assert_null(strchr(s, '='));
        assert_int_equal(skr_b64_decode(skr_span_str(s), SKR_B64_URL, &b), SKR_OK);
        assert_int_equal(b.len, (size_t)EVP_PKEY_get_bits(k) / 8);
        assert_int_not_equal(b.ptr[0], 0);
        assert_int_equal(skr_json_get_str(pub, "e", &s), SKR_OK);
        assert_string_equal(s, "AQAB");
    }
    skr_buf_done(&b);
    expect_err(skr_jwk_to_pkey(pub, &k2), SKR_OK, NULL);
    assert_int_equal(EVP_PKEY_eq(k, k2), 1);

    assert_int_equal(skr_jwk_from_pkey(k, true, &priv), SKR_OK);
    assert_non_null(json_object_get(priv, "d"));
    assert_int_equal(skr_jwk_to_pkey(priv, &k3), SKR_OK);
    assert_int_equal(EVP_PKEY_eq(k, k3), 1);
    /* the converted private key signs what the original key verifies */
    if (crv == NULL) {
        json_t *claims = json_of("{\"x\":true}");

        skr_buf_init(&sig, SKR_MAX_JWT_BYTES);
        assert_int_equal(skr_jwt_sign_rs256(k3, NULL, claims, &sig), SKR_OK);
        json_decref(claims);
    } else {
        const EVP_MD *md = coord_len == 32   ? EVP_sha256()
                           : coord_len == 48 ? EVP_sha384()
                                             : EVP_sha512();
        const char *hdr = coord_len == 32   ? "{\"alg\":\"ES256\"}"
                          : coord_len == 48 ? "{\"alg\":\"ES384\"}"
                                            : "{\"alg\":\"ES512\"}";

        make_signed(&sig, hdr, "{}", k3, md, false, coord_len);
    }
    assert_int_equal(skr_jws_parse(skr_buf_span(&sig), &j), SKR_OK);
    assert_int_equal(skr_jws_verify(&j, k), SKR_OK);
    skr_jws_done(&j);
    skr_buf_done(&sig);

    json_decref(pub);
    json_decref(priv);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
}

static void
test_jwk_roundtrip(void **state)
{
    EVP_PKEY *k;

    (void)state;
    k = gen_rsa(2048);
    jwk_roundtrip(k, "RSA", NULL, 0);
    EVP_PKEY_free(k);
    k = gen_rsa(3072);
    jwk_roundtrip(k, "RSA", NULL, 0);
    EVP_PKEY_free(k);
    k = gen_ec("P-256");
    jwk_roundtrip(k, "EC", "P-256", 32);
    EVP_PKEY_free(k);
    k = gen_ec("P-384");
    jwk_roundtrip(k, "EC", "P-384", 48);
    EVP_PKEY_free(k);
    k = gen_ec("P-521");
    jwk_roundtrip(k, "EC", "P-521", 66);
    EVP_PKEY_free(k);

    /* keys JOSE cannot name */
    k = gen_ec("secp256k1");
    {
        json_t *jwk = NULL;

        expect_err(skr_jwk_from_pkey(k, false, &jwk), SKR_E_UNSUPPORTED, "curve");
        EVP_PKEY_free(k);
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(k);
        expect_err(skr_jwk_from_pkey(k, false, &jwk), SKR_E_UNSUPPORTED, "neither RSA nor EC");
        assert_null(jwk);
    }
    EVP_PKEY_free(k);
}

/* The JWK AKV imported, with a leading zero byte on n (PROTOCOLS.md §0). */
static void
test_jwk_imported(void **state)
{
    size_t n;
    uint8_t *raw = read_vec("mhsm/imported_rsa_private_jwk.json", &n);
    json_t *jwk = NULL;
    json_t *pub = NULL;
    EVP_PKEY *k = NULL;
    const char *n_in = NULL;
    const char *n_out = NULL;
    struct skr_buf a;
    struct skr_buf b;

    (void)state;
    assert_int_equal(skr_json_parse(skr_span_make(raw, n), SKR_MAX_JSON_BYTES, &jwk), SKR_OK);
    assert_int_equal(skr_jwk_to_pkey(jwk, &k), SKR_OK);
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    assert_int_equal(skr_jwk_from_pkey(k, false, &pub), SKR_OK);
    assert_int_equal(skr_json_get_str(jwk, "n", &n_in), SKR_OK);
    assert_int_equal(skr_json_get_str(pub, "n", &n_out), SKR_OK);
    assert_memory_equal(n_in, "AKCR", 4);
    assert_memory_equal(n_out, "oJFN", 4);
    skr_buf_init(&a, 1024);
    skr_buf_init(&b, 1024);
    assert_int_equal(skr_b64_decode(skr_span_str(n_in), SKR_B64_URL, &a), SKR_OK);
    assert_int_equal(skr_b64_decode(skr_span_str(n_out), SKR_B64_URL, &b), SKR_OK);
    assert_int_equal(a.len, 257);
    assert_int_equal(b.len, 256);
    assert_memory_equal(a.ptr + 1, b.ptr, 256);
    skr_buf_done(&a);
    skr_buf_done(&b);
    json_decref(jwk);
    json_decref(pub);
    EVP_PKEY_free(k);
    free(raw);
}

/* Replaces member key of a copy of jwk (NULL value: removes it) and expects to_pkey to fail. */
static void
jwk_bad(const json_t *jwk, const char *key, json_t *value, skr_err want, const char *msg)
{
    json_t *c = json_deep_copy(jwk);
    EVP_PKEY *k = NULL;

    assert_non_null(c);
    if (value == NULL) {
        json_object_del(c, key);
    } else {
        assert_int_equal(json_object_set_new(c, key, value), 0);
    }
    expect_err(skr_jwk_to_pkey(c, &k), want, msg);
    assert_null(k);
    json_decref(c);
}

static void
test_jwk_invalid(void **state)
{
    EVP_PKEY *rsa = gen_rsa(2048);
    EVP_PKEY *rsa2 = gen_rsa(2048);
    EVP_PKEY *ec = gen_ec("P-256");
    EVP_PKEY *ec2 = gen_ec("P-256");
    EVP_PKEY *small = gen_rsa(1024);
    json_t *r = NULL;
    json_t *r2 = NULL;
    json_t *e = NULL;
    json_t *e2 = NULL;
    json_t *v;
    EVP_PKEY *k = NULL;

    (void)state;
    assert_int_equal(skr_jwk_from_pkey(rsa, true, &r), SKR_OK);
    assert_int_equal(skr_jwk_from_pkey(rsa2, true, &r2), SKR_OK);
    assert_int_equal(skr_jwk_from_pkey(ec, true, &e), SKR_OK);
    assert_int_equal(skr_jwk_from_pkey(ec2, true, &e2), SKR_OK);

    /* RSA */
    jwk_bad(r, "n", NULL, SKR_E_MALFORMED, "'n' missing");
    jwk_bad(r, "e", json_integer(65537), SKR_E_MALFORMED, "'e' missing or not a string");
    jwk_bad(r, "e", json_string("AQAB="), SKR_E_MALFORMED, "padding");
    jwk_bad(r, "e", json_string("AQ+B"), SKR_E_MALFORMED, "standard base64");
    jwk_bad(r, "e", json_string("A!AB"), SKR_E_MALFORMED, "invalid base64url");
    jwk_bad(r, "e", json_string(""), SKR_E_MALFORMED, "0 bytes");
    jwk_bad(r, "e", json_string("AQABAQABAQABAQAB"), SKR_E_MALFORMED, "longer than 8");
    jwk_bad(r, "d", json_copy(json_object_get(r2, "d")), SKR_E_MALFORMED, "consistency");
    jwk_bad(r, "p", json_copy(json_object_get(r2, "p")), SKR_E_MALFORMED, "consistency");
    jwk_bad(r, "dq", NULL, SKR_E_UNSUPPORTED, "without 'dq'");
    jwk_bad(r, "oth", json_array(), SKR_E_UNSUPPORTED, "oth");
    jwk_bad(r, "kty", json_string("rsa"), SKR_E_UNSUPPORTED, "kty");
    jwk_bad(r, "kty", NULL, SKR_E_MALFORMED, "'kty'");
    jwk_bad(r, "kty", json_string("oct"), SKR_E_UNSUPPORTED, "oct");
    /* a public key with a 1024-bit modulus */
    assert_int_equal(skr_jwk_from_pkey(rsa, false, &v), SKR_OK);
    {
        json_t *sj = NULL;
        struct skr_buf nb;
        BIGNUM *bn = NULL;
        uint8_t nbuf[128];

        assert_int_equal(EVP_PKEY_get_bn_param(small, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
        assert_int_equal(BN_bn2bin(bn, nbuf), 128);
        BN_free(bn);
        skr_buf_init(&nb, 512);
        put_b64url(&nb, nbuf, sizeof(nbuf));
        sj = json_stringn((const char *)nb.ptr, nb.len);
        skr_buf_done(&nb);
        jwk_bad(v, "n", sj, SKR_E_UNSUPPORTED, "1024 bits");
    }
    json_decref(v);

    /* EC */
    jwk_bad(e, "crv", json_string("P-192"), SKR_E_UNSUPPORTED, "crv");
    jwk_bad(e, "crv", json_string("secp256k1"), SKR_E_UNSUPPORTED, "crv");
    jwk_bad(e, "crv", json_string("P-384"), SKR_E_MALFORMED, "'x' has 32 bytes");
    jwk_bad(e, "crv", NULL, SKR_E_MALFORMED, "crv");
    jwk_bad(e, "y", NULL, SKR_E_MALFORMED, "'y' missing");
    jwk_bad(e, "x", json_string("AAAA"), SKR_E_MALFORMED, "'x' has 3 bytes");
    jwk_bad(e, "x", json_copy(json_object_get(e2, "x")), SKR_E_MALFORMED, NULL);
    /* libjose itself refuses a d that does not match (x, y) */
    jwk_bad(e, "d", json_copy(json_object_get(e2, "d")), SKR_E_MALFORMED, "EC");
    jwk_bad(e, "d", json_string("AQAB"), SKR_E_MALFORMED, "'d' has 3 bytes");
    {
        json_t *pubonly = json_deep_copy(e);

        json_object_del(pubonly, "d");
        /* point not on the curve: a public-only key with another key's x */
        jwk_bad(pubonly, "x", json_copy(json_object_get(e2, "x")), SKR_E_MALFORMED, NULL);
        json_decref(pubonly);
    }

    /* not an object, empty */
    v = json_of("[]");
    expect_err(skr_jwk_to_pkey(v, &k), SKR_E_MALFORMED, "not a JSON object");
    json_decref(v);
    v = json_of("{}");
    expect_err(skr_jwk_to_pkey(v, &k), SKR_E_MALFORMED, "'kty'");
    json_decref(v);
    assert_null(k);

    json_decref(r);
    json_decref(r2);
    json_decref(e);
    json_decref(e2);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(small);
}

static const char rfc7638_jwk[] =
    "{\"kty\":\"RSA\",\"n\":"
    "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7"
    "aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4Q"
    "yQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd"
    "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\","
    "\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";

static void
test_thumbprint(void **state)
{
    json_t *jwk = json_of(rfc7638_jwk);
    const char *rsa_canon = "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"AQAB\"}";
    json_t *v;
    EVP_PKEY *k = NULL;
    EVP_PKEY *ec = gen_ec("P-384");
    json_t *ej = NULL;
    char tp[SKR_THUMBPRINT_LEN];
    char want[SKR_THUMBPRINT_LEN];
    char canon[512];
    int len;

    (void)state;
    assert_int_equal(skr_jwk_thumbprint(jwk, tp), SKR_OK);
    assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    assert_int_equal(skr_jwk_to_pkey(jwk, &k), SKR_OK);
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    EVP_PKEY_free(k);
    /* member order and extra members do not matter */
    v = json_of("{\"e\":\"AQAB\",\"use\":\"enc\",\"n\":\"AQAB\",\"kty\":\"RSA\"}");
    assert_int_equal(skr_jwk_thumbprint(v, tp), SKR_OK);
    b64url_of_sha256(rsa_canon, strlen(rsa_canon), want);
    assert_string_equal(tp, want);
    json_decref(v);

    /* EC, computed independently over the RFC 7638 §3.2 canonical form */
    assert_int_equal(skr_jwk_from_pkey(ec, true, &ej), SKR_OK);
    assert_int_equal(skr_jwk_thumbprint(ej, tp), SKR_OK);
    len = snprintf(
        canon, sizeof(canon), "{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
        json_string_value(json_object_get(ej, "x")), json_string_value(json_object_get(ej, "y")));
    assert_true(len > 0 && (size_t)len < sizeof(canon));
    b64url_of_sha256(canon, (size_t)len, want);
    assert_string_equal(tp, want);

    /* negative */
    v = json_of("{\"kty\":\"RSA\",\"e\":\"AQAB\"}");
    expect_err(skr_jwk_thumbprint(v, tp), SKR_E_MALFORMED, "'n'");
    json_decref(v);
    v = json_of("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":5}");
    expect_err(skr_jwk_thumbprint(v, tp), SKR_E_MALFORMED, "'y'");
    json_decref(v);
    v = json_of("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}");
    expect_err(skr_jwk_thumbprint(v, tp), SKR_E_UNSUPPORTED, "kty");
    json_decref(v);
    v = json_of("{\"n\":\"AQAB\",\"e\":\"AQAB\"}");
    expect_err(skr_jwk_thumbprint(v, tp), SKR_E_MALFORMED, "'kty'");
    json_decref(v);

    json_decref(ej);
    json_decref(jwk);
    EVP_PKEY_free(ec);
}

static void
test_oct(void **state)
{
    static const uint8_t secret[] = { 0x01, 0x02, 0x03, 0xfb, 0xff };
    json_t *jwk = NULL;
    EVP_PKEY *k = NULL;
    struct skr_buf b;
    const char *s = NULL;
    const char *oct_canon = "{\"k\":\"AQID-_8\",\"kty\":\"oct\"}";
    char tp[SKR_THUMBPRINT_LEN];
    char want[SKR_THUMBPRINT_LEN];

    (void)state;
    assert_int_equal(skr_jwk_oct_new(skr_span_make(secret, sizeof(secret)), &jwk), SKR_OK);
    skr_buf_init(&b, 256);
    assert_int_equal(skr_json_dump(jwk, JSON_COMPACT | JSON_SORT_KEYS, &b), SKR_OK);
    assert_int_equal(skr_buf_cstr(&b, &s), SKR_OK);
    assert_string_equal(s, oct_canon);
    skr_buf_done(&b);
    assert_int_equal(skr_jwk_thumbprint(jwk, tp), SKR_OK);
    b64url_of_sha256(oct_canon, strlen(oct_canon), want);
    assert_string_equal(tp, want);
    expect_err(skr_jwk_to_pkey(jwk, &k), SKR_E_UNSUPPORTED, "oct");
    json_decref(jwk);
    jwk = NULL;
    expect_err(skr_jwk_oct_new(skr_span_make(secret, 0), &jwk), SKR_E_INVALID_ARG, "secret");
    assert_null(jwk);
}

static void
test_transfer_jwks(void **state)
{
    EVP_PKEY *k = gen_rsa(2048);
    EVP_PKEY *ec = gen_ec("P-256");
    struct skr_buf out;
    json_t *jwks = NULL;
    json_t *pub = NULL;
    const char *s = NULL;
    char canon[1024];
    char want_kid[SKR_THUMBPRINT_LEN];
    char want[1200];
    const char *n;
    int len;

    (void)state;
    skr_buf_init(&out, SKR_MAX_JSON_BYTES);
    assert_int_equal(skr_jwks_transfer_key(k, &out, &jwks), SKR_OK);
    assert_int_equal(skr_jwk_from_pkey(k, false, &pub), SKR_OK);
    n = json_string_value(json_object_get(pub, "n"));
    assert_non_null(n);
    len = snprintf(canon, sizeof(canon), "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}", n);
    assert_true(len > 0 && (size_t)len < sizeof(canon));
    b64url_of_sha256(canon, (size_t)len, want_kid);
    len = snprintf(want, sizeof(want),
                   "{\"keys\":[{\"e\":\"AQAB\",\"key_ops\":[\"encrypt\"],\"kid\":\"%s\","
                   "\"kty\":\"RSA\",\"n\":\"%s\"}]}",
                   want_kid, n);
    assert_true(len > 0 && (size_t)len < sizeof(want));
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    assert_string_equal(s, want);
    assert_non_null(jwks);
    assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
    json_decref(jwks);
    jwks = NULL;
    /* the JWKS round-trips into the same key */
    {
        json_t *doc = json_of(s);
        EVP_PKEY *k2 = NULL;

        assert_int_equal(skr_jwk_to_pkey(json_array_get(json_object_get(doc, "keys"), 0), &k2),
                         SKR_OK);
        assert_int_equal(EVP_PKEY_eq(k, k2), 1);
        EVP_PKEY_free(k2);
        json_decref(doc);
    }
    /* NULL ret_jwks is allowed; EC is refused */
    skr_buf_reset(&out);
    assert_int_equal(skr_jwks_transfer_key(k, &out, NULL), SKR_OK);
    assert_int_equal(out.len, strlen(want));
    expect_err(skr_jwks_transfer_key(ec, &out, &jwks), SKR_E_INVALID_ARG, "RSA");
    assert_null(jwks);

    skr_buf_done(&out);
    json_decref(pub);
    EVP_PKEY_free(k);
    EVP_PKEY_free(ec);
}

int main(void);

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mhsm_release),
        cmocka_unit_test(test_mhsm_tamper),
        cmocka_unit_test(test_maa_example_token),
        cmocka_unit_test(test_mock_token),
        cmocka_unit_test(test_sign_roundtrip),
        cmocka_unit_test(test_other_algs),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_small_rsa_refused),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_x5c_errors),
        cmocka_unit_test(test_jwk_roundtrip),
        cmocka_unit_test(test_jwk_imported),
        cmocka_unit_test(test_jwk_invalid),
        cmocka_unit_test(test_thumbprint),
        cmocka_unit_test(test_oct),
        cmocka_unit_test(test_transfer_jwks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
