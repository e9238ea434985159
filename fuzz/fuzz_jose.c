/*
 * fuzz_jose.c - lib/jose on arbitrary bytes: skr_jws_parse (the MAA token and the AKV release
 * JWS arrive from the network), then on a parsed JWS skr_jws_x5c, skr_jws_check_x5t and
 * skr_jws_verify with x5c[0]'s key and with two fixed keys; and the same bytes as JSON through
 * skr_jwk_to_pkey / skr_jwk_thumbprint (a JWK, or each key of a JWKS).
 *
 * Properties: no crash or leak; a parsed JWS has an object header with an alg other than
 * "none", a non-empty signature and a signing input of header '.' payload; a JWK that converts
 * converts back; a thumbprint is 43 base64url characters.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 7638 §3.1 (RSA-2048) and RFC 7517 A.1 (P-256) public keys: fixed, deterministic. */
static const char fixed_rsa[] =
    "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":"
    "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbb"
    "fAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lq"
    "t7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91Cb"
    "OpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a"
    "wapJzKnqDKgw\"}";
static const char fixed_ec[] = "{\"kty\":\"EC\",\"crv\":\"P-256\","
                               "\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","
                               "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\"}";

static EVP_PKEY *
fixed_key(const char *jwk_text)
{
    json_t *jwk = NULL;
    EVP_PKEY *k = NULL;

    if (skr_json_parse(skr_span_str(jwk_text), SKR_MAX_JSON_BYTES, &jwk) != SKR_OK ||
        skr_jwk_to_pkey(jwk, &k) != SKR_OK) {
        abort();
    }
    json_decref(jwk);
    return k;
}

/* Verification only ever says "no" with SKR_E_VERIFY (or runs out of memory). */
static void
verify(const struct skr_jws *j, EVP_PKEY *k)
{
    skr_err e = skr_jws_verify(j, k);

    if (e != SKR_OK && e != SKR_E_VERIFY && e != SKR_E_NOMEM) {
        abort();
    }
}

static void
check_jws(struct skr_jws *j)
{
    static EVP_PKEY *rsa;
    static EVP_PKEY *ec;
    STACK_OF(X509) *sk = NULL;

    if (rsa == NULL) {
        rsa = fixed_key(fixed_rsa);
        ec = fixed_key(fixed_ec);
    }
    if (!json_is_object(j->header) || j->alg == NULL || strcasecmp(j->alg, "none") == 0 ||
        j->signature.len == 0 || j->seg_hdr.len == 0 || j->seg_pay.len == 0 ||
        j->signing_input.len != j->seg_hdr.len + 1 + j->seg_pay.len ||
        j->signing_input.ptr[j->seg_hdr.len] != '.') {
        abort();
    }
    if (skr_jws_x5c(j, &sk) == SKR_OK) {
        X509 *leaf = sk_X509_value(sk, 0);
        EVP_PKEY *pk;
        skr_err e;

        if (sk_X509_num(sk) < 1 || sk_X509_num(sk) > SKR_MAX_CERT_CHAIN || leaf == NULL) {
            abort();
        }
        e = skr_jws_check_x5t(j, leaf, NULL);
        if (e != SKR_OK && e != SKR_E_VERIFY && e != SKR_E_MALFORMED) {
            abort();
        }
        pk = X509_get0_pubkey(leaf);
        if (pk != NULL) {
            verify(j, pk);
        }
        skr_x509_stack_free(sk);
    }
    verify(j, rsa);
    verify(j, ec);
}

static void
check_jwk(const json_t *jwk)
{
    char tp[SKR_THUMBPRINT_LEN];
    EVP_PKEY *k = NULL;

    if (skr_jwk_thumbprint(jwk, tp) == SKR_OK && strlen(tp) != SKR_THUMBPRINT_LEN - 1) {
        abort();
    }
    if (skr_jwk_to_pkey(jwk, &k) == SKR_OK) {
        json_t *back = NULL;

        if (k == NULL || skr_jwk_from_pkey(k, true, &back) != SKR_OK) {
            abort();
        }
        json_decref(back);
        EVP_PKEY_free(k);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_span in = skr_span_make(data, size);
    struct skr_jws j;
    json_t *v = NULL;

    if (skr_jws_parse(in, &j) == SKR_OK) {
        check_jws(&j);
        skr_jws_done(&j);
    }
    if (skr_json_parse(in, SKR_MAX_JSON_BYTES, &v) == SKR_OK) {
        json_t *keys = json_object_get(v, "keys");

        check_jwk(v);
        for (size_t i = 0; i < json_array_size(keys) && i < 8; i++) {
            check_jwk(json_array_get(keys, i));
        }
        json_decref(v);
    }
    ERR_clear_error();
    return 0;
}
