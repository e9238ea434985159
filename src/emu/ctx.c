/*
 * ctx.c - the serving context of skr-emu: DIR as `skr-emu init` wrote it (emu.h, init.c), loaded
 * once before the listeners start, and the verification of the Entra access tokens that the IMDS
 * emulator issues (used by the Key Vault emulator for its bearer tokens).
 *
 * Entra tokens of this emulator (issued by imds.c, see emu_entra_issue):
 *   header  {"alg":"RS256","kid":<emu.json entra.kid>,"typ":"JWT"}
 *   iss     "https://sts.windows.net/<tenant_id>/" (the v1 issuer real managed identity tokens
 *           carry)
 *   aud     the resource as the client asked for it (with or without a trailing '/')
 * emu_entra_verify accepts RS256 only, signed by DIR/entra/signing.key, with exp and nbf checked
 * against the clock with EMU_ENTRA_SKEW_S of tolerance.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "buf.h"
#include "emu.h"
#include "err.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "service.h"
#include "skr_limits.h"
#include "snp_certs.h"

#define EMU_PATH_MAX 4096u

static skr_err
read_rel(const char *dir, const char *rel, size_t max, struct skr_buf *out)
{
    _cleanup_(skr_buf_donep) struct skr_buf path = { 0 };
    const char *p = NULL;

    skr_buf_init(&path, EMU_PATH_MAX);
    TRY(skr_buf_printf(&path, "%s/%s", dir, rel));
    TRY(skr_buf_cstr(&path, &p));
    skr_buf_init(out, max);
    return skr_read_file(p, out);
}

static skr_err
load_key(const char *dir, const char *rel, EVP_PKEY **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };
    _cleanup_(BIO_free_allp) BIO *bio = NULL;

    TRY(read_rel(dir, rel, SKR_MAX_PEM_BYTES, &pem));
    ENSURE(pem.len <= INT32_MAX, SKR_E_TOO_LARGE, "key file too large");
    bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    ENSURE(bio != NULL, SKR_E_NOMEM, "BIO_new_mem_buf");
    *ret = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (*ret == NULL) {
        skr_err e =
            skr_err_atf(SKR_E_MALFORMED, __FILE__, __LINE__, "%s: not a PEM private key", rel);
        skr_err_add_ossl();
        return e;
    }
    return SKR_OK;
}

static skr_err
load_certs(const char *dir, const char *rel, STACK_OF(X509) * *ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };
    skr_err e;

    TRY(read_rel(dir, rel, SKR_MAX_PEM_BYTES, &pem));
    e = skr_pem_read_certs(skr_buf_span(&pem), ret);
    if (e != SKR_OK) {
        char why[sizeof(skr_err_last()->msg)];
        snprintf(why, sizeof(why), "%s", skr_err_msg()); /* FAILF overwrites the message */
        FAILF(e, "%s: %s", rel, why);
    }
    ENSURE(sk_X509_num(*ret) > 0, SKR_E_MALFORMED, "no certificate in a PEM file");
    return SKR_OK;
}

static skr_err
load_cert(const char *dir, const char *rel, X509 **ret)
{
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *sk = NULL;

    TRY(load_certs(dir, rel, &sk));
    *ret = sk_X509_shift(sk);
    return SKR_OK;
}

static skr_err
copy_kid(const json_t *config, const char *section, char *out, size_t out_len)
{
    json_t *sec = NULL;
    const char *kid = NULL;
    size_t n;

    TRY(skr_json_get_obj(config, section, &sec));
    TRY(skr_json_get_str(sec, "kid", &kid));
    n = strlen(kid);
    ENSURE(n > 0 && n < out_len, SKR_E_MALFORMED, "emu.json: kid empty or too long");
    memcpy(out, kid, n + 1);
    return SKR_OK;
}

static skr_err
check_config(const json_t *config)
{
    uint64_t version = 0;
    json_t *mi = NULL;
    const char *s = NULL;

    TRY(skr_json_get_u64(config, "version", &version));
    if (version != EMU_CONFIG_VERSION) {
        FAILF(SKR_E_UNSUPPORTED, "emu.json version %llu, expected %d", (unsigned long long)version,
              EMU_CONFIG_VERSION);
    }
    TRY(skr_json_get_str(config, "tenant_id", &s));
    TRY(skr_json_get_obj(config, "managed_identity", &mi));
    TRY(skr_json_get_str(mi, "client_id", &s));
    TRY(skr_json_get_str(mi, "object_id", &s));
    TRY(skr_json_get_str(mi, "msi_res_id", &s));
    return SKR_OK;
}

static skr_err
ctx_load(const char *dir, struct emu_ctx *ctx)
{
    _cleanup_(skr_buf_donep) struct skr_buf cfg = { 0 };

    ctx->dir = strdup(dir);
    ENSURE(ctx->dir != NULL, SKR_E_NOMEM, "strdup");
    TRY(read_rel(dir, EMU_CONFIG, SKR_MAX_JSON_BYTES, &cfg));
    TRY(skr_json_parse_object(skr_buf_span(&cfg), SKR_MAX_JSON_BYTES, EMU_CONFIG, &ctx->config));
    TRY(check_config(ctx->config));
    TRY(copy_kid(ctx->config, "maa", ctx->maa_kid, sizeof(ctx->maa_kid)));
    TRY(copy_kid(ctx->config, "entra", ctx->entra_kid, sizeof(ctx->entra_kid)));
    TRY(load_key(dir, EMU_MAA_KEY, &ctx->maa_key));
    TRY(load_cert(dir, EMU_MAA_CERT, &ctx->maa_cert));
    TRY(load_key(dir, EMU_ENTRA_KEY, &ctx->entra_key));
    TRY(load_cert(dir, EMU_ENTRA_CERT, &ctx->entra_cert));
    TRY(load_key(dir, EMU_TLS_KEY, &ctx->tls_key));
    TRY(load_certs(dir, EMU_TLS_CERT, &ctx->tls_chain));
    TRY(load_cert(dir, EMU_CA_CERT, &ctx->ca));
    TRY(load_certs(dir, EMU_SNP_DIR "/ark.pem", &ctx->snp_roots));
    ENSURE(X509_check_private_key(ctx->maa_cert, ctx->maa_key) == 1, SKR_E_MALFORMED,
           "maa/signing.pem does not match maa/signing.key");
    ENSURE(X509_check_private_key(ctx->entra_cert, ctx->entra_key) == 1, SKR_E_MALFORMED,
           "entra/signing.pem does not match entra/signing.key");
    ENSURE(X509_check_private_key(sk_X509_value(ctx->tls_chain, 0), ctx->tls_key) == 1,
           SKR_E_MALFORMED, "tls.pem does not match tls.key");
    return SKR_OK;
}

skr_err
emu_ctx_load(const char *dir, struct emu_ctx *ctx)
{
    skr_err e;

    memset(ctx, 0, sizeof(*ctx));
    ENSURE(dir != NULL && *dir != '\0', SKR_E_INVALID_ARG, "no DIR");
    ENSURE(pthread_mutex_init(&ctx->store_lock, NULL) == 0, SKR_E_NOMEM, "pthread_mutex_init");
    if (pthread_mutex_init(&ctx->issuer_lock, NULL) != 0) {
        pthread_mutex_destroy(&ctx->store_lock);
        FAIL(SKR_E_NOMEM, "pthread_mutex_init");
    }
    e = ctx_load(dir, ctx);
    if (e != SKR_OK) {
        emu_ctx_done(ctx);
    }
    return e;
}

void
emu_ctx_done(struct emu_ctx *ctx)
{
    if (ctx == NULL || ctx->dir == NULL) {
        return; /* never loaded (or already done) */
    }
    free(ctx->dir);
    json_decref(ctx->config);
    EVP_PKEY_free(ctx->maa_key);
    X509_free(ctx->maa_cert);
    EVP_PKEY_free(ctx->entra_key);
    X509_free(ctx->entra_cert);
    EVP_PKEY_free(ctx->tls_key);
    skr_x509_stack_free(ctx->tls_chain);
    X509_free(ctx->ca);
    skr_x509_stack_free(ctx->snp_roots);
    for (size_t i = 0; i < EMU_ISSUER_KEYS; i++) {
        free(ctx->issuer_keys[i].iss);
        free(ctx->issuer_keys[i].kid);
        EVP_PKEY_free(ctx->issuer_keys[i].key);
    }
    pthread_mutex_destroy(&ctx->issuer_lock);
    pthread_mutex_destroy(&ctx->store_lock);
    memset(ctx, 0, sizeof(*ctx));
}

const char *
emu_cfg_str(const struct emu_ctx *ctx, const char *section, const char *key)
{
    const json_t *obj = ctx->config;
    const json_t *v;

    if (section != NULL) {
        obj = json_object_get(obj, section);
    }
    v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

skr_err
emu_entra_issuer(const struct emu_ctx *ctx, char *out, size_t out_len)
{
    const char *tenant = emu_cfg_str(ctx, NULL, "tenant_id");
    int n;

    ENSURE(tenant != NULL, SKR_E_MALFORMED, "emu.json: no tenant_id");
    n = snprintf(out, out_len, "https://sts.windows.net/%s/", tenant);
    ENSURE(n > 0 && (size_t)n < out_len, SKR_E_TOO_LARGE, "issuer too long");
    return SKR_OK;
}

/* aud == audience, or they differ only by one trailing '/'. */
static bool
audience_matches(const char *aud, const char *audience)
{
    size_t a = strlen(aud);
    size_t b = strlen(audience);

    if (a == b) {
        return strcmp(aud, audience) == 0;
    }
    if (a == b + 1) {
        return aud[b] == '/' && strncmp(aud, audience, b) == 0;
    }
    if (b == a + 1) {
        return audience[a] == '/' && strncmp(aud, audience, a) == 0;
    }
    return false;
}

static skr_err
get_time(const json_t *claims, const char *key, int64_t *ret)
{
    const json_t *v = json_object_get(claims, key);

    if (!json_is_integer(v)) {
        FAILF(SKR_E_VERIFY, "token claim \"%s\" missing or not an integer", key);
    }
    *ret = json_integer_value(v);
    return SKR_OK;
}

skr_err
emu_entra_verify(struct emu_ctx *ctx, const char *token, const char *audience, json_t **ret_claims)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    char iss_want[256];
    const char *iss = NULL;
    const char *kid = NULL;
    const json_t *aud;
    int64_t exp;
    int64_t nbf;
    int64_t now = (int64_t)time(NULL);
    skr_err e;

    ENSURE(token != NULL && audience != NULL, SKR_E_INVALID_ARG, "no token or audience");
    e = skr_jws_parse(skr_span_str(token), &jws);
    if (e != SKR_OK) {
        char why[sizeof(skr_err_last()->msg)];
        snprintf(why, sizeof(why), "%s", skr_err_msg()); /* FAILF overwrites the message */
        FAILF(SKR_E_VERIFY, "access token is not a JWS: %s", why);
    }
    ENSURE(strcmp(jws.alg, "RS256") == 0, SKR_E_VERIFY, "access token alg is not RS256");
    kid = json_string_value(json_object_get(jws.header, "kid"));
    ENSURE(kid == NULL || strcmp(kid, ctx->entra_kid) == 0, SKR_E_VERIFY,
           "access token kid is not the emulator's Entra key");
    ENSURE(jws.claims != NULL, SKR_E_VERIFY, "access token payload is not a JSON object");
    e = skr_jws_verify(&jws, ctx->entra_key);
    if (e != SKR_OK) {
        FAIL(SKR_E_VERIFY, "access token signature does not verify with the Entra key");
    }
    TRY(emu_entra_issuer(ctx, iss_want, sizeof(iss_want)));
    iss = json_string_value(json_object_get(jws.claims, "iss"));
    ENSURE(iss != NULL && strcmp(iss, iss_want) == 0, SKR_E_VERIFY,
           "access token issuer is not this tenant");
    aud = json_object_get(jws.claims, "aud");
    ENSURE(json_is_string(aud) && audience_matches(json_string_value(aud), audience), SKR_E_VERIFY,
           "access token audience does not match");
    TRY(get_time(jws.claims, "exp", &exp));
    TRY(get_time(jws.claims, "nbf", &nbf));
    ENSURE(exp > now - EMU_ENTRA_SKEW_S, SKR_E_VERIFY, "access token expired");
    ENSURE(nbf <= now + EMU_ENTRA_SKEW_S, SKR_E_VERIFY, "access token not yet valid");
    if (ret_claims != NULL) {
        *ret_claims = json_incref(jws.claims);
    }
    return SKR_OK;
}
