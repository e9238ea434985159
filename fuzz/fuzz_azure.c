/*
 * fuzz_azure.c - the parsers of what Azure services send back (lib/azure.c), on arbitrary bytes:
 * IMDS / Entra token responses, the MAA attest response, the AKV release response and its JWS
 * payload (key_hsm included), error bodies and WWW-Authenticate challenges, endpoints, the
 * released-key JWK writer, and the whole release JWS check.
 *
 * Input: byte 0 selects the target (sel % 8), the rest is its input:
 *   0 skr_token_parse          1 skr_maa_parse_response     2 skr_akv_parse_release_response
 *   3 skr_akv_release_parse_payload, then skr_akv_unwrap_jwk with the fixed key below (the
 *     corpus holds payloads wrapped for it, so the JWK writer is reached)
 *   4 skr_upstream_parse_error: body, then after the first NUL the WWW-Authenticate value
 *   5 skr_endpoint_base (the input as a C string)
 *   6 the JWK writer on arbitrary key material: byte 1 picks kty (oct, RSA-HSM, EC) and the
 *     wrap algorithm, the rest is wrapped to the fixed key and unwrapped by skr_akv_unwrap_jwk
 *   7 skr_akv_release_verify against an empty trust store and the endpoint "localhost"
 *
 * Properties: no crash or leak, no secret left allocated; a parsed token is visible ASCII and
 * NUL-terminated; JWS members are three dot-separated segments; endpoints are https:// URLs
 * with a 1..253 character host; a released JWK is a JSON object whose compact sorted
 * serialization is exactly the text written by hand.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "azure.h"
#include "buf.h"
#include "err.h"
#include "fuzz_key.h"
#include "json.h"
#include "keywrap.h"
#include "ossl.h"
#include "secret.h"
#include "skr_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KID "fuzz-transfer-key"

/* A NUL-terminated copy of n bytes that need not be terminated (strndup may read past them
 * under ASan's strict_string_checks). */
static char *
dup_bytes(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static void
check_jwk(const struct skr_secret *s)
{
    json_t *doc = NULL;
    struct skr_buf canon;

    if (s->ptr[s->len] != '\0' ||
        skr_json_parse_object(skr_secret_span(s), SKR_MAX_SECRET_BYTES, "jwk", &doc) != SKR_OK) {
        abort();
    }
    skr_buf_init(&canon, 4 * SKR_MAX_SECRET_BYTES);
    if (skr_json_dump(doc, JSON_COMPACT | JSON_SORT_KEYS, &canon) != SKR_OK ||
        canon.len != s->len || memcmp(canon.ptr, s->ptr, s->len) != 0 ||
        !json_is_string(json_object_get(doc, "kty"))) {
        abort();
    }
    skr_buf_done(&canon);
    json_decref(doc);
}

static void
unwrap(const struct skr_akv_released *rel)
{
    struct skr_secret *jwk = NULL;

    if (skr_akv_unwrap_jwk(rel, fuzz_key(), rel->wrap_kid, &jwk) == SKR_OK) {
        check_jwk(jwk);
        skr_secret_free(jwk);
    }
}

static void
fuzz_token(struct skr_span in)
{
    struct skr_token t = { 0 };

    if (skr_token_parse(in, 1700000000, &t) != SKR_OK) {
        return;
    }
    if (t.value == NULL || t.value->len == 0 || t.value->ptr[t.value->len] != '\0') {
        abort();
    }
    for (size_t i = 0; i < t.value->len; i++) {
        if (t.value->ptr[i] < 0x21 || t.value->ptr[i] > 0x7e) {
            abort();
        }
    }
    skr_token_done(&t);
}

static void
fuzz_jws_member(struct skr_span in, bool maa)
{
    struct skr_buf out;
    const char *p = NULL;

    skr_buf_init(&out, SKR_MAX_JSON_BYTES);
    if ((maa ? skr_maa_parse_response(in, &out) : skr_akv_parse_release_response(in, &out)) ==
        SKR_OK) {
        p = strchr((const char *)out.ptr, '.');
        if (p == NULL || strchr(p + 1, '.') == NULL || strlen((const char *)out.ptr) != out.len) {
            abort();
        }
    } else if (out.len != 0) {
        abort();
    }
    skr_buf_done(&out);
}

static void
fuzz_payload(struct skr_span in)
{
    struct skr_akv_released r = { 0 };

    if (skr_akv_release_parse_payload(in, &r) != SKR_OK) {
        if (r.payload != NULL || r.key_hsm != NULL) {
            abort();
        }
        return;
    }
    if (r.kty == NULL || r.wrap_kid == NULL || r.wrap_kid[0] == '\0' || r.ciphertext.len == 0) {
        abort();
    }
    unwrap(&r);
    skr_akv_released_done(&r);
}

static void
fuzz_error(const uint8_t *data, size_t size)
{
    struct skr_upstream up = { 0 };
    const uint8_t *nul = memchr(data, 0, size);
    char *hdr = NULL;

    if (nul != NULL) {
        size_t off = (size_t)(nul - data) + 1;

        hdr = dup_bytes((const char *)data + off, size - off);
        size = off - 1;
    }
    skr_upstream_parse_error(skr_span_make(data, size), hdr, &up);
    for (const char *s = up.code; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7e) {
            abort();
        }
    }
    if (strlen(up.message) >= sizeof(up.message) ||
        strlen(up.challenge_resource) >= sizeof(up.challenge_resource)) {
        abort();
    }
    free(hdr);
}

static void
fuzz_endpoint(const uint8_t *data, size_t size)
{
    char *s = dup_bytes((const char *)data, size);
    struct skr_buf url;
    struct skr_buf host;

    if (s == NULL) {
        return;
    }
    skr_buf_init(&url, 4096);
    skr_buf_init(&host, 4096);
    if (skr_endpoint_base(s, &url, &host) == SKR_OK) {
        if (url.len < 9 || memcmp(url.ptr, "https://", 8) != 0 || host.len == 0 || host.len > 253) {
            abort();
        }
    }
    skr_buf_done(&url);
    skr_buf_done(&host);
    free(s);
}

static void
fuzz_writer(const uint8_t *data, size_t size)
{
    static const char *const kty[] = { "oct", "RSA-HSM", "EC" };
    struct skr_akv_released r = { 0 };

    if (size < 2 || size - 1 > SKR_MAX_SECRET_BYTES - 8) {
        return;
    }
    r.kty = kty[data[0] % 3];
    r.enc = (enum skr_kw_alg)((data[0] / 3) % 3);
    r.wrap_kid = FUZZ_KID;
    skr_buf_init(&r.ciphertext, 2 * SKR_MAX_SECRET_BYTES);
    if (skr_rsa_aes_wrap(fuzz_key(), r.enc, skr_span_make(data + 1, size - 1), &r.ciphertext) !=
        SKR_OK) {
        abort();
    }
    unwrap(&r);
    skr_buf_done(&r.ciphertext);
}

static void
fuzz_verify(struct skr_span in)
{
    static X509_STORE *empty;
    struct skr_akv_released r = { 0 };

    if (empty == NULL) {
        empty = X509_STORE_new();
        if (empty == NULL) {
            abort();
        }
    }
    /* nothing chains to an empty store: success would be a bug */
    if (skr_akv_release_verify(in, "localhost", empty, &r) == SKR_OK) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_span in;

    if (size == 0) {
        return 0;
    }
    in = skr_span_make(data + 1, size - 1);
    switch (data[0] % 8) {
    case 0:
        fuzz_token(in);
        break;
    case 1:
        fuzz_jws_member(in, true);
        break;
    case 2:
        fuzz_jws_member(in, false);
        break;
    case 3:
        fuzz_payload(in);
        break;
    case 4:
        fuzz_error(data + 1, size - 1);
        break;
    case 5:
        fuzz_endpoint(data + 1, size - 1);
        break;
    case 6:
        fuzz_writer(data + 1, size - 1);
        break;
    default:
        fuzz_verify(in);
        break;
    }
    if (skr_secret_live() != 0) {
        abort();
    }
    ERR_clear_error();
    return 0;
}
