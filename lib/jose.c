/*
 * jose.c - JWS / JWT / JWK on libjose (DESIGN.md §3). libjose signs, verifies, converts keys
 * and computes thumbprints; the code here is what libjose leaves to its callers: the compact
 * serialization (libjose speaks the JSON serializations only) parsed strictly and bounded, an
 * algorithm allow-list bound to the key type (libjose would accept whatever alg a header names
 * as long as the key can do it), x5c chains and x5t#S256 (PROTOCOLS.md §0, §5.3, §7.2).
 */
#include "jose.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jose/jwk.h>
#include <jose/jws.h>
#include <jose/openssl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "b64.h"
#include "err.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"

/* Largest signature we decode: RSA-8192 is 1024 bytes, ES512 132. */
#define MAX_SIG_BYTES (SKR_MAX_RSA_BITS / 8)

/* Re-raises the last error with a prefix naming the context, keeping the original site. */
static skr_err
reraise(skr_err e, const char *prefix)
{
    const struct skr_err_site *site = skr_err_last();
    const char *file = site->file != NULL ? site->file : __FILE__;
    int line = site->file != NULL ? site->line : __LINE__;
    char inner[sizeof(site->msg)];

    (void)snprintf(inner, sizeof(inner), "%s", skr_err_msg());
    return skr_err_atf(e, file, line, "%s: %s", prefix, inner);
}

/* ---- libjose configuration: its errors go to our message, never to stderr -------------- */

struct jose_ctx {
    jose_cfg_t *cfg;
    char msg[160];
};

static void SKR_PRINTF(5, 0)
    jose_err_cb(void *misc, const char *file, int line, uint64_t err, const char *fmt, va_list ap)
{
    struct jose_ctx *c = misc;

    (void)file;
    (void)line;
    (void)err;
    (void)vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
}

static skr_err
jose_ctx_init(struct jose_ctx *c)
{
    *c = (struct jose_ctx){ 0 };
    c->cfg = jose_cfg();
    ENSURE(c->cfg != NULL, SKR_E_NOMEM, "out of memory");
    jose_cfg_set_err_func(c->cfg, jose_err_cb, c);
    return SKR_OK;
}

static void
jose_ctx_done(struct jose_ctx *c)
{
    if (c->cfg != NULL) {
        jose_cfg_decref(c->cfg);
        c->cfg = NULL;
    }
}

/* Text for a libjose failure: its own message, else OpenSSL's first queued reason. */
static const char *
jose_ctx_msg(struct jose_ctx *c)
{
    unsigned long e = ERR_peek_error();

    if (c->msg[0] == '\0' && e != 0) {
        (void)snprintf(c->msg, sizeof(c->msg), "%s", ERR_reason_error_string(e));
    }
    ERR_clear_error();
    return c->msg[0] != '\0' ? c->msg : "no detail";
}

/* ---- strict base64url ------------------------------------------------------------------ */

/* base64url without padding as RFC 7515 §2 defines it, canonical only, appended to out. */
static skr_err
b64url_strict(struct skr_span in, const char *what, struct skr_buf *out)
{
    skr_err e = skr_b64_decode(in, SKR_B64_URL | SKR_B64_STRICT, out);

    if (e != SKR_OK) {
        return reraise(e, what);
    }
    return SKR_OK;
}

static skr_err
b64url_encode_str(struct skr_span in, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    json_t *s;

    skr_buf_init(&b, SKR_MAX_JSON_BYTES);
    TRY(skr_b64_encode(in, SKR_B64_URL, &b));
    s = json_stringn((const char *)b.ptr, b.len);
    ENSURE(s != NULL, SKR_E_NOMEM, "out of memory");
    *ret = s;
    return SKR_OK;
}

/* ---- compact JWS parsing ---------------------------------------------------------------- */

void
skr_jws_done(struct skr_jws *jws)
{
    if (jws == NULL) {
        return;
    }
    skr_buf_done(&jws->compact);
    skr_buf_done(&jws->payload);
    skr_buf_done(&jws->signature);
    json_decref(jws->header);
    json_decref(jws->claims);
    *jws = (struct skr_jws){ 0 };
}

skr_err
skr_jws_parse(struct skr_span compact, struct skr_jws *ret)
{
    _cleanup_(skr_jws_donep) struct skr_jws j = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf hdr = { 0 };
    size_t dots[2];
    size_t ndots = 0;
    json_t *crit;

    ENSURE(ret != NULL && (compact.ptr != NULL || compact.len == 0), SKR_E_INVALID_ARG,
           "NULL argument");
    *ret = (struct skr_jws){ 0 };
    ENSURE(compact.len > 0, SKR_E_MALFORMED, "JWS: empty input");
    if (compact.len > SKR_MAX_JWT_BYTES) {
        FAILF(SKR_E_TOO_LARGE, "JWS: %zu bytes exceeds the limit of %u", compact.len,
              SKR_MAX_JWT_BYTES);
    }
    for (size_t i = 0; i < compact.len; i++) {
        if (compact.ptr[i] != '.') {
            continue;
        }
        if (ndots < 2) {
            dots[ndots] = i;
        }
        ndots++;
    }
    if (ndots != 2) {
        FAILF(SKR_E_MALFORMED,
              "JWS compact serialization: expected 3 '.'-separated segments, found %zu", ndots + 1);
    }

    skr_buf_init(&j.compact, SKR_MAX_JWT_BYTES);
    TRY(skr_buf_append_span(&j.compact, compact));
    j.seg_hdr = skr_span_make(j.compact.ptr, dots[0]);
    j.seg_pay = skr_span_make(j.compact.ptr + dots[0] + 1, dots[1] - dots[0] - 1);
    j.seg_sig = skr_span_make(j.compact.ptr + dots[1] + 1, compact.len - dots[1] - 1);
    j.signing_input = skr_span_make(j.compact.ptr, dots[1]);
    ENSURE(j.seg_hdr.len > 0, SKR_E_MALFORMED, "JWS: empty header segment");
    ENSURE(j.seg_pay.len > 0, SKR_E_MALFORMED,
           "JWS: empty payload segment (detached payloads are not supported)");
    ENSURE(j.seg_sig.len > 0, SKR_E_MALFORMED, "JWS: empty signature segment (unsecured JWS)");

    skr_buf_init(&hdr, SKR_MAX_JWT_BYTES);
    TRY(b64url_strict(j.seg_hdr, "JWS header segment", &hdr));
    TRY(skr_json_parse_object(skr_buf_span(&hdr), SKR_MAX_JWT_BYTES, "JWS header", &j.header));
    if (skr_json_get_str(j.header, "alg", &j.alg) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "JWS header: member 'alg' missing or not a string");
    }
    if (strcasecmp(j.alg, "none") == 0) {
        FAIL(SKR_E_VERIFY, "JWS header: alg 'none' (unsecured JWS) is refused");
    }
    crit = json_object_get(j.header, "crit");
    ENSURE(crit == NULL, SKR_E_UNSUPPORTED,
           "JWS header: 'crit' names extensions this implementation does not understand");

    skr_buf_init(&j.payload, SKR_MAX_JWT_BYTES);
    TRY(b64url_strict(j.seg_pay, "JWS payload segment", &j.payload));
    skr_buf_init(&j.signature, MAX_SIG_BYTES);
    if (j.seg_sig.len > (MAX_SIG_BYTES + 2) / 3 * 4) {
        FAILF(SKR_E_MALFORMED, "JWS: signature segment longer than %d bytes", MAX_SIG_BYTES);
    }
    TRY(b64url_strict(j.seg_sig, "JWS signature segment", &j.signature));

    /* Claims are a convenience: a payload that is not a JSON object is still a JWS. */
    if (skr_json_parse_object(skr_buf_span(&j.payload), SKR_MAX_JWT_BYTES, "JWT claims",
                              &j.claims) != SKR_OK) {
        j.claims = NULL;
        skr_err_clear();
    }

    *ret = j;
    j = (struct skr_jws){ 0 };
    return SKR_OK;
}

/* ---- verification ----------------------------------------------------------------------- */

struct alg_info {
    const char *name;
    int key_type;      /* EVP_PKEY_RSA or EVP_PKEY_EC */
    const char *group; /* EC: the only curve allowed (RFC 7518 §3.4) */
};

static const struct alg_info algs[] = {
    { "RS256", EVP_PKEY_RSA, NULL },        { "RS384", EVP_PKEY_RSA, NULL },
    { "RS512", EVP_PKEY_RSA, NULL },        { "PS256", EVP_PKEY_RSA, NULL },
    { "PS384", EVP_PKEY_RSA, NULL },        { "PS512", EVP_PKEY_RSA, NULL },
    { "ES256", EVP_PKEY_EC, "prime256v1" }, { "ES384", EVP_PKEY_EC, "secp384r1" },
    { "ES512", EVP_PKEY_EC, "secp521r1" },
};

static const struct alg_info *
alg_find(const char *name)
{
    for (size_t i = 0; i < SKR_ARRAY_LEN(algs); i++) {
        if (strcmp(algs[i].name, name) == 0) {
            return &algs[i];
        }
    }
    return NULL;
}

/* The JWK "crv" of an EC key, or NULL for a curve JOSE does not name. */
static const char *
ec_crv(EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;

    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
        ERR_clear_error();
        return NULL;
    }
    if (strcmp(group, "prime256v1") == 0) {
        return "P-256";
    }
    if (strcmp(group, "secp384r1") == 0) {
        return "P-384";
    }
    if (strcmp(group, "secp521r1") == 0) {
        return "P-521";
    }
    return NULL;
}

/* RSA within [SKR_MIN_RSA_BITS, SKR_MAX_RSA_BITS] or EC on a JOSE curve. */
static skr_err
check_key_kind(EVP_PKEY *key, const char *what)
{
    int type = EVP_PKEY_get_base_id(key);

    if (type == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(key);

        if (bits < SKR_MIN_RSA_BITS || bits > SKR_MAX_RSA_BITS) {
            FAILF(SKR_E_UNSUPPORTED, "%s: RSA modulus of %d bits is outside %d..%d", what, bits,
                  SKR_MIN_RSA_BITS, SKR_MAX_RSA_BITS);
        }
        return SKR_OK;
    }
    if (type == EVP_PKEY_EC) {
        if (ec_crv(key) == NULL) {
            FAILF(SKR_E_UNSUPPORTED, "%s: EC curve is not P-256, P-384 or P-521", what);
        }
        return SKR_OK;
    }
    FAILF(SKR_E_UNSUPPORTED, "%s: key type is neither RSA nor EC", what);
}

/* libjose's JWK of key with the private members removed. */
static skr_err
public_jwk(struct jose_ctx *c, EVP_PKEY *key, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *jwk = jose_openssl_jwk_from_EVP_PKEY(c->cfg, key);

    if (jwk == NULL) {
        FAILF(SKR_E_INTERNAL, "libjose: cannot convert key to JWK: %s", jose_ctx_msg(c));
    }
    if (!jose_jwk_pub(c->cfg, jwk)) {
        FAILF(SKR_E_INTERNAL, "libjose: cannot reduce JWK to its public part: %s", jose_ctx_msg(c));
    }
    *ret = TAKE_PTR(jwk);
    return SKR_OK;
}

static skr_err
span_json_str(struct skr_span s, json_t **ret)
{
    json_t *v = json_stringn((const char *)s.ptr, s.len);

    ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
    *ret = v;
    return SKR_OK;
}

/*
 * libjose verifies the flattened JSON serialization, whose members are exactly our three
 * compact segments, verbatim (RFC 7515 §7.2.2): no re-encoding, so the signing input is the
 * one the signer produced. The JWK given to libjose carries "alg" as well, so libjose refuses
 * any other header alg on its own (a second check of the allow-list above).
 */
skr_err
skr_jws_verify(const struct skr_jws *jws, EVP_PKEY *key)
{
    _cleanup_(jose_ctx_done) struct jose_ctx c = { 0 };
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(json_decrefp) json_t *flat = NULL;
    const struct alg_info *ai;
    json_t *v = NULL;

    ENSURE(jws != NULL && key != NULL && jws->header != NULL && jws->alg != NULL, SKR_E_INVALID_ARG,
           "NULL argument");
    ai = alg_find(jws->alg);
    ENSURE(ai != NULL, SKR_E_VERIFY,
           "JWS: header alg is not one of RS256/384/512, PS256/384/512, ES256/384/512");
    if (EVP_PKEY_get_base_id(key) != ai->key_type) {
        FAILF(SKR_E_VERIFY, "JWS: alg %s needs an %s key", ai->name,
              ai->key_type == EVP_PKEY_RSA ? "RSA" : "EC");
    }
    if (check_key_kind(key, "JWS verification key") != SKR_OK) {
        return reraise(SKR_E_VERIFY, "JWS");
    }
    if (ai->group != NULL) {
        char group[64];
        size_t len = 0;

        if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1 ||
            strcmp(group, ai->group) != 0) {
            ERR_clear_error();
            FAILF(SKR_E_VERIFY, "JWS: alg %s needs a key on %s", ai->name, ai->group);
        }
    }

    TRY(jose_ctx_init(&c));
    TRY(public_jwk(&c, key, &jwk));
    TRY(skr_json_set(jwk, "alg", json_string(ai->name)));

    flat = json_object();
    ENSURE(flat != NULL, SKR_E_NOMEM, "out of memory");
    TRY(span_json_str(jws->seg_hdr, &v));
    TRY(skr_json_set(flat, "protected", v));
    TRY(span_json_str(jws->seg_pay, &v));
    TRY(skr_json_set(flat, "payload", v));
    TRY(span_json_str(jws->seg_sig, &v));
    TRY(skr_json_set(flat, "signature", v));

    if (!jose_jws_ver(c.cfg, flat, NULL, jwk, false)) {
        FAILF(SKR_E_VERIFY, "JWS: %s signature does not verify (%s)", ai->name, jose_ctx_msg(&c));
    }
    return SKR_OK;
}

/* ---- x5c / x5t#S256 ------------------------------------------------------------------- */

skr_err
skr_jws_x5c(const struct skr_jws *jws, STACK_OF(X509) * *ret)
{
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *sk = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf der = { 0 };
    json_t *arr;
    size_t n;

    ENSURE(jws != NULL && jws->header != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    arr = json_object_get(jws->header, "x5c");
    ENSURE(arr != NULL, SKR_E_NOT_FOUND, "JWS header: no 'x5c'");
    ENSURE(json_is_array(arr), SKR_E_MALFORMED, "JWS header: 'x5c' is not an array");
    n = json_array_size(arr);
    if (n == 0 || n > SKR_MAX_CERT_CHAIN) {
        FAILF(SKR_E_MALFORMED, "JWS header: 'x5c' has %zu certificates (expected 1..%d)", n,
              SKR_MAX_CERT_CHAIN);
    }
    sk = sk_X509_new_null();
    ENSURE(sk != NULL, SKR_E_NOMEM, "out of memory");
    skr_buf_init(&der, SKR_MAX_CERT_BYTES);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        const unsigned char *p;
        X509 *cert;
        skr_err e;

        if (!json_is_string(s)) {
            FAILF(SKR_E_MALFORMED, "JWS header: x5c[%zu] is not a string", i);
        }
        skr_buf_reset(&der);
        /* RFC 7515 §4.1.6: standard base64 (not base64url) of the DER. */
        e = skr_b64_decode(skr_span_make(json_string_value(s), json_string_length(s)), SKR_B64_STD,
                           &der);
        if (e != SKR_OK) {
            char what[48];

            (void)snprintf(what, sizeof(what), "JWS header: x5c[%zu]", i);
            return reraise(e, what);
        }
        p = der.ptr;
        cert = d2i_X509(NULL, &p, (long)der.len);
        if (cert == NULL || p != der.ptr + der.len) {
            X509_free(cert);
            ERR_clear_error();
            FAILF(SKR_E_MALFORMED, "JWS header: x5c[%zu] is not one DER certificate", i);
        }
        if (sk_X509_push(sk, cert) <= 0) {
            X509_free(cert);
            FAIL(SKR_E_NOMEM, "out of memory");
        }
    }
    *ret = TAKE_PTR(sk);
    return SKR_OK;
}

skr_err
skr_x509_thumbprint_s256(X509 *cert, char out[SKR_THUMBPRINT_LEN])
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    ENSURE(cert != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY_OSSL(X509_digest(cert, EVP_sha256(), md, &mdlen), SKR_E_INTERNAL,
             "cannot hash certificate");
    skr_buf_init(&b, SKR_THUMBPRINT_LEN);
    TRY(skr_b64_encode(skr_span_make(md, mdlen), SKR_B64_URL, &b));
    ENSURE(b.len == SKR_THUMBPRINT_LEN - 1, SKR_E_INTERNAL, "thumbprint length");
    memcpy(out, b.ptr, b.len);
    out[b.len] = '\0';
    return SKR_OK;
}

skr_err
skr_jws_check_x5t(const struct skr_jws *jws, X509 *leaf, bool *present)
{
    char tp[SKR_THUMBPRINT_LEN];
    json_t *v;

    ENSURE(jws != NULL && jws->header != NULL && leaf != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (present != NULL) {
        *present = false;
    }
    v = json_object_get(jws->header, "x5t#S256");
    if (v == NULL) {
        return SKR_OK;
    }
    ENSURE(json_is_string(v), SKR_E_MALFORMED, "JWS header: 'x5t#S256' is not a string");
    if (present != NULL) {
        *present = true;
    }
    TRY(skr_x509_thumbprint_s256(leaf, tp));
    ENSURE(strcmp(json_string_value(v), tp) == 0, SKR_E_VERIFY,
           "JWS header: 'x5t#S256' does not match the SHA-256 thumbprint of x5c[0]");
    return SKR_OK;
}

/* ---- signing ------------------------------------------------------------------------------ */

static skr_err
append_member(struct skr_buf *out, const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_string(v)) {
        FAILF(SKR_E_INTERNAL, "libjose: signed JWS lacks '%s'", key);
    }
    return skr_buf_append(out, json_string_value(v), json_string_length(v));
}

skr_err
skr_jwt_sign_rs256(EVP_PKEY *priv, const json_t *header_extra, const json_t *claims,
                   struct skr_buf *out)
{
    _cleanup_(jose_ctx_done) struct jose_ctx c = { 0 };
    _cleanup_(json_decrefp) json_t *hdr = NULL;
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(json_decrefp) json_t *flat = NULL;
    _cleanup_(json_decrefp) json_t *sig = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf payload = { 0 };
    json_t *v = NULL;
    size_t start;

    ENSURE(priv != NULL && claims != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(json_is_object(claims), SKR_E_INVALID_ARG, "JWT claims must be a JSON object");
    ENSURE(EVP_PKEY_get_base_id(priv) == EVP_PKEY_RSA, SKR_E_INVALID_ARG, "RS256 needs an RSA key");
    TRY(check_key_kind(priv, "RS256 signing key"));

    if (header_extra != NULL) {
        ENSURE(json_is_object(header_extra), SKR_E_INVALID_ARG,
               "JWS header members must be a JSON object");
        ENSURE(json_object_get(header_extra, "alg") == NULL, SKR_E_INVALID_ARG,
               "JWS header members must not set 'alg'");
        hdr = json_deep_copy(header_extra);
    } else {
        hdr = json_object();
    }
    ENSURE(hdr != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(hdr, "alg", json_string("RS256")));

    skr_buf_init(&payload, SKR_MAX_JWT_BYTES);
    TRY(skr_json_dump(claims, JSON_COMPACT, &payload));

    TRY(jose_ctx_init(&c));
    jwk = jose_openssl_jwk_from_EVP_PKEY(c.cfg, priv);
    if (jwk == NULL) {
        FAILF(SKR_E_INVALID_ARG, "libjose: cannot convert signing key: %s", jose_ctx_msg(&c));
    }
    ENSURE(json_object_get(jwk, "d") != NULL, SKR_E_INVALID_ARG,
           "RS256 signing needs a private key");
    TRY(skr_json_set(jwk, "alg", json_string("RS256")));

    flat = json_object();
    sig = json_object();
    ENSURE(flat != NULL && sig != NULL, SKR_E_NOMEM, "out of memory");
    TRY(b64url_encode_str(skr_buf_span(&payload), &v));
    TRY(skr_json_set(flat, "payload", v));
    /* libjose serializes an object "protected" with JSON_SORT_KEYS|JSON_COMPACT. */
    TRY(skr_json_set(sig, "protected", json_incref(hdr)));
    if (!jose_jws_sig(c.cfg, flat, sig, jwk)) {
        FAILF(SKR_E_INTERNAL, "libjose: RS256 signing failed: %s", jose_ctx_msg(&c));
    }

    start = out->len;
    if (append_member(out, flat, "protected") != SKR_OK ||
        skr_buf_append_byte(out, '.') != SKR_OK || append_member(out, flat, "payload") != SKR_OK ||
        skr_buf_append_byte(out, '.') != SKR_OK ||
        append_member(out, flat, "signature") != SKR_OK) {
        out->len = start;
        return skr_err_last()->code;
    }
    return SKR_OK;
}

/* ---- JWK ------------------------------------------------------------------------------ */

skr_err
skr_jwk_from_pkey(EVP_PKEY *key, bool include_private, json_t **ret)
{
    _cleanup_(jose_ctx_done) struct jose_ctx c = { 0 };
    _cleanup_(json_decrefp) json_t *jwk = NULL;

    ENSURE(key != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(check_key_kind(key, "JWK"));
    TRY(jose_ctx_init(&c));
    if (!include_private) {
        TRY(public_jwk(&c, key, &jwk));
        *ret = TAKE_PTR(jwk);
        return SKR_OK;
    }
    jwk = jose_openssl_jwk_from_EVP_PKEY(c.cfg, key);
    if (jwk == NULL) {
        FAILF(SKR_E_INTERNAL, "libjose: cannot convert key to JWK: %s", jose_ctx_msg(&c));
    }
    *ret = TAKE_PTR(jwk);
    return SKR_OK;
}

/* Member key of jwk: a strict base64url string decoding to min..max bytes (size in *len). */
static skr_err
jwk_num(const json_t *jwk, const char *key, size_t min, size_t max, size_t *len)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    json_t *v = json_object_get(jwk, key);
    char what[32];

    if (!json_is_string(v)) {
        FAILF(SKR_E_MALFORMED, "JWK: member '%s' missing or not a string", key);
    }
    (void)snprintf(what, sizeof(what), "JWK member '%s'", key);
    /* room for the decoder's whole-quantum reservation; the length is checked below */
    skr_buf_init(&b, max + 3);
    if (b64url_strict(skr_span_make(json_string_value(v), json_string_length(v)), what, &b) !=
        SKR_OK) {
        skr_err e = skr_err_last()->code;

        return e == SKR_E_TOO_LARGE
                   ? skr_err_atf(SKR_E_MALFORMED, __FILE__, __LINE__,
                                 "JWK: member '%s' longer than %zu bytes", key, max)
                   : e;
    }
    if (b.len < min || b.len > max) {
        FAILF(SKR_E_MALFORMED, "JWK: member '%s' has %zu bytes (expected %zu..%zu)", key, b.len,
              min, max);
    }
    if (len != NULL) {
        *len = b.len;
    }
    return SKR_OK;
}

static skr_err
jwk_check_rsa(const json_t *jwk, bool *is_private)
{
    static const char *const crt[] = { "p", "q", "dp", "dq", "qi" };
    /* The modulus may carry leading zero bytes (AKV imports do, PROTOCOLS.md §0). */
    const size_t nmax = SKR_MAX_RSA_BITS / 8 + 1;

    TRY(jwk_num(jwk, "n", 1, nmax, NULL));
    TRY(jwk_num(jwk, "e", 1, 8, NULL));
    *is_private = json_object_get(jwk, "d") != NULL;
    if (!*is_private) {
        return SKR_OK;
    }
    ENSURE(json_object_get(jwk, "oth") == NULL, SKR_E_UNSUPPORTED,
           "JWK: multi-prime RSA ('oth') is not supported");
    TRY(jwk_num(jwk, "d", 1, nmax, NULL));
    for (size_t i = 0; i < SKR_ARRAY_LEN(crt); i++) {
        if (json_object_get(jwk, crt[i]) == NULL) {
            FAILF(SKR_E_UNSUPPORTED, "JWK: RSA private key without '%s' is not supported", crt[i]);
        }
        TRY(jwk_num(jwk, crt[i], 1, nmax, NULL));
    }
    return SKR_OK;
}

static skr_err
jwk_check_ec(const json_t *jwk, const char **group, bool *is_private)
{
    static const struct {
        const char *crv;
        const char *group;
        size_t len;
    } curves[] = {
        { "P-256", "prime256v1", 32 },
        { "P-384", "secp384r1", 48 },
        { "P-521", "secp521r1", 66 },
    };
    const char *crv = NULL;

    if (skr_json_get_str(jwk, "crv", &crv) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "JWK: EC member 'crv' missing or not a string");
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(curves); i++) {
        if (strcmp(crv, curves[i].crv) != 0) {
            continue;
        }
        /* RFC 7518 §6.2.1.2-6.2.2.1: coordinates and d at exactly the field length. */
        TRY(jwk_num(jwk, "x", curves[i].len, curves[i].len, NULL));
        TRY(jwk_num(jwk, "y", curves[i].len, curves[i].len, NULL));
        *is_private = json_object_get(jwk, "d") != NULL;
        if (*is_private) {
            TRY(jwk_num(jwk, "d", curves[i].len, curves[i].len, NULL));
        }
        *group = curves[i].group;
        return SKR_OK;
    }
    FAIL(SKR_E_UNSUPPORTED, "JWK: EC 'crv' is not P-256, P-384 or P-521");
}

skr_err
skr_jwk_to_pkey(const json_t *jwk, EVP_PKEY **ret)
{
    _cleanup_(jose_ctx_done) struct jose_ctx c = { 0 };
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *pctx = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
    const char *kty = NULL;
    const char *group = NULL;
    bool is_private = false;
    int want;
    int ok;

    ENSURE(jwk != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(json_is_object(jwk), SKR_E_MALFORMED, "JWK: not a JSON object");
    if (skr_json_get_str(jwk, "kty", &kty) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "JWK: member 'kty' missing or not a string");
    }
    if (strcmp(kty, "RSA") == 0) {
        want = EVP_PKEY_RSA;
        TRY(jwk_check_rsa(jwk, &is_private));
    } else if (strcmp(kty, "EC") == 0) {
        want = EVP_PKEY_EC;
        TRY(jwk_check_ec(jwk, &group, &is_private));
    } else if (strcmp(kty, "oct") == 0) {
        FAIL(SKR_E_UNSUPPORTED, "JWK: kty 'oct' is a symmetric key, not converted to EVP_PKEY");
    } else {
        FAIL(SKR_E_UNSUPPORTED, "JWK: kty is not RSA or EC");
    }

    TRY(jose_ctx_init(&c));
    key = jose_openssl_jwk_to_EVP_PKEY(c.cfg, jwk);
    if (key == NULL) {
        FAILF(SKR_E_MALFORMED, "JWK: not a valid %s key (%s)", kty, jose_ctx_msg(&c));
    }
    ENSURE(EVP_PKEY_get_base_id(key) == want, SKR_E_MALFORMED, "JWK: converted key type differs");
    TRY(check_key_kind(key, "JWK"));
    if (group != NULL) {
        char name[64];
        size_t len = 0;

        if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1 ||
            strcmp(name, group) != 0) {
            ERR_clear_error();
            FAIL(SKR_E_MALFORMED, "JWK: converted key is on the wrong curve");
        }
    }

    /* A public point must be on its curve; a private key must match its public half. The RSA
     * public check is skipped: OpenSSL's runs a primality test on n, costly and of no use to a
     * verifier (a bad modulus only makes signatures fail). */
    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    ENSURE(pctx != NULL, SKR_E_NOMEM, "out of memory");
    if (is_private) {
        ok = EVP_PKEY_pairwise_check(pctx);
    } else if (want == EVP_PKEY_EC) {
        ok = EVP_PKEY_public_check(pctx);
    } else {
        ok = 1;
    }
    if (ok != 1) {
        ERR_clear_error();
        FAILF(SKR_E_MALFORMED, "JWK: %s %s key fails OpenSSL's consistency check", kty,
              is_private ? "private" : "public");
    }
    *ret = TAKE_PTR(key);
    return SKR_OK;
}

skr_err
skr_jwk_thumbprint(const json_t *jwk, char out[SKR_THUMBPRINT_LEN])
{
    static const struct {
        const char *kty;
        const char *members[3];
    } required[] = {
        /* RFC 7638 §3.2 */
        { "RSA", { "e", "n", NULL } },
        { "EC", { "crv", "x", "y" } },
        { "oct", { "k", NULL, NULL } },
    };
    _cleanup_(jose_ctx_done) struct jose_ctx c = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    uint8_t md[32];
    const char *kty = NULL;
    size_t i;

    ENSURE(jwk != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(json_is_object(jwk), SKR_E_MALFORMED, "JWK: not a JSON object");
    if (skr_json_get_str(jwk, "kty", &kty) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "JWK: member 'kty' missing or not a string");
    }
    for (i = 0; i < SKR_ARRAY_LEN(required); i++) {
        if (strcmp(kty, required[i].kty) == 0) {
            break;
        }
    }
    ENSURE(i < SKR_ARRAY_LEN(required), SKR_E_UNSUPPORTED,
           "JWK thumbprint: kty is not RSA, EC or oct");
    for (size_t m = 0; m < 3 && required[i].members[m] != NULL; m++) {
        if (!json_is_string(json_object_get(jwk, required[i].members[m]))) {
            FAILF(SKR_E_MALFORMED, "JWK: member '%s' missing or not a string",
                  required[i].members[m]);
        }
    }

    TRY(jose_ctx_init(&c));
    if (jose_jwk_thp_buf(c.cfg, jwk, "S256", md, sizeof(md)) != sizeof(md)) {
        FAILF(SKR_E_INTERNAL, "libjose: JWK thumbprint failed: %s", jose_ctx_msg(&c));
    }
    skr_buf_init(&b, SKR_THUMBPRINT_LEN);
    TRY(skr_b64_encode(skr_span_make(md, sizeof(md)), SKR_B64_URL, &b));
    ENSURE(b.len == SKR_THUMBPRINT_LEN - 1, SKR_E_INTERNAL, "thumbprint length");
    memcpy(out, b.ptr, b.len);
    out[b.len] = '\0';
    return SKR_OK;
}

skr_err
skr_jwk_oct_new(struct skr_span secret, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    json_t *k = NULL;

    ENSURE(ret != NULL && secret.ptr != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(secret.len >= 1 && secret.len <= SKR_MAX_SECRET_BYTES, SKR_E_INVALID_ARG,
           "oct JWK: secret must be 1..SKR_MAX_SECRET_BYTES bytes");
    jwk = json_object();
    ENSURE(jwk != NULL, SKR_E_NOMEM, "out of memory");
    TRY(b64url_encode_str(secret, &k));
    TRY(skr_json_set(jwk, "k", k));
    TRY(skr_json_set(jwk, "kty", json_string("oct")));
    *ret = TAKE_PTR(jwk);
    return SKR_OK;
}

static skr_err
copy_member(json_t *dst, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);

    ENSURE(json_is_string(v), SKR_E_INTERNAL, "JWK member missing");
    return skr_json_set(dst, key, json_incref(v));
}

skr_err
skr_jwks_transfer_key(EVP_PKEY *key, struct skr_buf *out, json_t **ret_jwks)
{
    _cleanup_(json_decrefp) json_t *full = NULL;
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(json_decrefp) json_t *jwks = NULL;
    json_t *arr = NULL;
    json_t *ops = NULL;
    char kid[SKR_THUMBPRINT_LEN];

    ENSURE(key != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA, SKR_E_INVALID_ARG,
           "transfer key must be RSA (AKV wraps with RSA-OAEP)");
    TRY(skr_jwk_from_pkey(key, false, &full));
    /* Exactly e, kty, n from the key, whatever else the converter adds. */
    jwk = json_object();
    ENSURE(jwk != NULL, SKR_E_NOMEM, "out of memory");
    TRY(copy_member(jwk, full, "e"));
    TRY(copy_member(jwk, full, "kty"));
    TRY(copy_member(jwk, full, "n"));
    TRY(skr_jwk_thumbprint(jwk, kid));
    ops = json_array();
    ENSURE(ops != NULL, SKR_E_NOMEM, "out of memory");
    if (json_array_append_new(ops, json_string("encrypt")) != 0) {
        json_decref(ops);
        FAIL(SKR_E_NOMEM, "out of memory");
    }
    TRY(skr_json_set(jwk, "key_ops", ops));
    TRY(skr_json_set(jwk, "kid", json_string(kid)));

    arr = json_array();
    ENSURE(arr != NULL, SKR_E_NOMEM, "out of memory");
    if (json_array_append(arr, jwk) != 0) {
        json_decref(arr);
        FAIL(SKR_E_NOMEM, "out of memory");
    }
    jwks = json_object();
    ENSURE(jwks != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(jwks, "keys", arr));
    TRY(skr_json_dump(jwks, JSON_COMPACT | JSON_SORT_KEYS, out));
    if (ret_jwks != NULL) {
        *ret_jwks = TAKE_PTR(jwks);
    }
    return SKR_OK;
}
