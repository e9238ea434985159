/*
 * test_emu_imds.c - the IMDS emulator (src/emu/imds.c) and the serving context (ctx.c) through
 * a real loopback skr_http_server: managed identity tokens with each identity selector (string
 * fields, an RS256 JWT that verifies with the Entra certificate, the claims), emu_entra_verify
 * (audience, expiry, tampering, foreign keys and issuers), IMDS errors, THIM, and the Entra
 * workload identity flow (discovery, OIDC metadata, JWKS, client_credentials with a
 * client_assertion). One DIR is made with `skr-emu init` for the whole binary.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/pem.h>

#include "b64.h"
#include "emu.h"
#include "http_client.h"
#include "http_server.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "service.h"
#include "snp_certs.h"

static char dir[64];
static struct emu_ctx ctx;
static struct skr_http_server *srv;
static struct skr_http_client *client;
static const char *tenant;
static const char *mi_client;
static const char *mi_object;
static const char *mi_res;

#define RESOURCE     "https://vault.azure.net"
#define RESOURCE_ENC "https%3A%2F%2Fvault.azure.net"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
setup(void **state)
{
    char prog[512];
    char init_arg[] = "init";
    char *argv[] = { prog, init_arg, dir, NULL };
    const char *build = getenv("SKR_BUILD_DIR");
    pid_t pid;
    int status = 0;
    struct skr_http_server_cfg cfg = { .handler = emu_imds_handle, .handler_ctx = &ctx };
    struct skr_http_client_opts o;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/skr-emu-imds-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/emu");
    /* skr-emu init in a child (emu_cmd_init lives next to main.c's helpers) */
    snprintf(prog, sizeof(prog), "%s/src/skr-emu", build != NULL ? build : ".");
    if (posix_spawn(&pid, prog, NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != EMU_EXIT_OK) {
        return -1;
    }
    if (emu_ctx_load(dir, &ctx) != SKR_OK) {
        return -1;
    }
    if (skr_http_server_start(&cfg, &srv) != SKR_OK) {
        return -1;
    }
    snprintf(ctx.imds_url, sizeof(ctx.imds_url), "http://127.0.0.1:%u",
             (unsigned)skr_http_server_port(srv));
    skr_http_client_opts_init(&o);
    o.retries = 0;
    if (skr_http_client_new(&o, &client) != SKR_OK) {
        return -1;
    }
    tenant = emu_cfg_str(&ctx, NULL, "tenant_id");
    mi_client = emu_cfg_str(&ctx, "managed_identity", "client_id");
    mi_object = emu_cfg_str(&ctx, "managed_identity", "object_id");
    mi_res = emu_cfg_str(&ctx, "managed_identity", "msi_res_id");
    return tenant != NULL && mi_client != NULL && mi_object != NULL && mi_res != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    skr_http_client_free(client);
    skr_http_server_stop(srv);
    emu_ctx_done(&ctx);
    *strrchr(dir, '/') = '\0';
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void
url_encode(const char *s, char *out, size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        assert_true(o + 4 < out_len);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* Sends method to imds_url + path with headers and body; returns the status; *ret_json is the
 * parsed body (or NULL when not JSON). */
static long
call(const char *method, const char *path, const char *const *headers, const char *body,
     json_t **ret_json, struct skr_http_reply *keep)
{
    char url[8192];
    struct skr_http_reply r = { 0 };
    long status;

    snprintf(url, sizeof(url), "%s%s", ctx.imds_url, path);
    assert_int_equal(skr_http_request(client, method, url, headers, skr_span_str(body), &r),
                     SKR_OK);
    status = r.status;
    if (ret_json != NULL) {
        *ret_json = json_loadb((const char *)r.body.ptr, r.body.len, 0, NULL);
    }
    if (keep != NULL) {
        *keep = r;
    } else {
        skr_http_reply_done(&r);
    }
    return status;
}

static const char *const md_hdr[] = { "Metadata: true", NULL };

static long
get_md(const char *path, json_t **ret)
{
    return call("GET", path, md_hdr, NULL, ret, NULL);
}

static void
assert_imds_error(json_t *v, const char *error, const char *desc)
{
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "error")), error);
    if (desc != NULL) {
        assert_string_equal(json_string_value(json_object_get(v, "error_description")), desc);
    }
}

static EVP_PKEY *
entra_pub_from_file(void)
{
    char path[128];
    FILE *f;
    X509 *x;
    EVP_PKEY *k;

    snprintf(path, sizeof(path), "%s/%s", dir, EMU_ENTRA_CERT);
    f = fopen(path, "re");
    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    k = X509_get_pubkey(x);
    X509_free(x);
    assert_non_null(k);
    return k;
}

static int64_t
int_claim(const json_t *claims, const char *key)
{
    const json_t *v = json_object_get(claims, key);

    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const char *
str_claim(const json_t *claims, const char *key)
{
    const json_t *v = json_object_get(claims, key);

    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* ---- managed identity tokens ------------------------------------------------------------ */

static void
check_token_response(json_t *v, const char *resource)
{
    static const char *const keys[] = { "access_token",  "client_id",      "expires_in",
                                        "expires_on",    "ext_expires_in", "not_before",
                                        "refresh_token", "resource",       "token_type" };
    const char *k;
    json_t *m;
    uint64_t exp_on;
    uint64_t nbf;
    uint64_t exp_in;
    int64_t now = (int64_t)time(NULL);

    assert_non_null(v);
    assert_int_equal(json_object_size(v), SKR_ARRAY_LEN(keys));
    for (size_t i = 0; i < SKR_ARRAY_LEN(keys); i++) {
        assert_true(json_is_string(json_object_get(v, keys[i])));
    }
    json_object_foreach(v, k, m)
    {
        assert_true(json_is_string(m)); /* every value a string, as IMDS sends them */
    }
    assert_string_equal(str_claim(v, "token_type"), "Bearer");
    assert_string_equal(str_claim(v, "refresh_token"), "");
    assert_string_equal(str_claim(v, "resource"), resource);
    assert_string_equal(str_claim(v, "client_id"), mi_client);
    assert_int_equal(skr_json_get_u64(v, "expires_on", &exp_on), SKR_OK);
    assert_int_equal(skr_json_get_u64(v, "not_before", &nbf), SKR_OK);
    assert_int_equal(skr_json_get_u64(v, "expires_in", &exp_in), SKR_OK);
    assert_true(exp_on > (uint64_t)now + 3500 && exp_on <= (uint64_t)now + 3601);
    assert_true(nbf <= (uint64_t)now);
    assert_true(exp_in >= 3590 && exp_in <= 3600);
    assert_string_equal(str_claim(v, "ext_expires_in"), str_claim(v, "expires_in"));
}

static void
test_token_selectors(void **state)
{
    char path[2048];
    char res_enc[1024];
    char upper[64];
    const char *sel[][2] = {
        { "", "" },
        { "&client_id=", mi_client },
        { "&object_id=", mi_object },
        { "&msi_res_id=", mi_res },
        { "&client_id=", upper },
    };

    (void)state;
    snprintf(upper, sizeof(upper), "%s", mi_client);
    for (char *p = upper; *p != '\0'; p++) {
        if (*p >= 'a' && *p <= 'f') {
            *p = (char)(*p - 'a' + 'A'); /* GUIDs compare case-insensitively */
        }
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(sel); i++) {
        _cleanup_(json_decrefp) json_t *v = NULL;
        url_encode(sel[i][1], res_enc, sizeof(res_enc));
        snprintf(path, sizeof(path),
                 "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s%s%s",
                 RESOURCE_ENC, sel[i][0], res_enc);
        assert_int_equal(get_md(path, &v), 200);
        check_token_response(v, RESOURCE);
    }
    /* MSAL's form under AZURE_POD_IDENTITY_AUTHORITY_HOST: the path with a trailing slash */
    {
        _cleanup_(json_decrefp) json_t *v = NULL;
        assert_int_equal(
            get_md("/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=" RESOURCE_ENC,
                   &v),
            200);
        check_token_response(v, RESOURCE);
    }
    {
        _cleanup_(json_decrefp) json_t *v = NULL;
        assert_int_equal(
            get_md(
                "/metadata/identity/oauth2/token//?api-version=2018-02-01&resource=" RESOURCE_ENC,
                &v),
            404);
    }
}

static void
test_token_jwt(void **state)
{
    _cleanup_(json_decrefp) json_t *v = NULL;
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = entra_pub_from_file();
    const json_t *c;
    int64_t now = (int64_t)time(NULL);
    char iss[256];

    (void)state;
    assert_int_equal(get_md("/metadata/identity/oauth2/token?api-version=2019-08-01&resource="
                            "https%3A%2F%2Fmanagedhsm.azure.net%2F",
                            &v),
                     200);
    assert_int_equal(skr_jws_parse(skr_span_str(str_claim(v, "access_token")), &jws), SKR_OK);
    assert_int_equal(skr_jws_verify(&jws, pub), SKR_OK);
    assert_string_equal(jws.alg, "RS256");
    assert_string_equal(str_claim(jws.header, "kid"), ctx.entra_kid);
    assert_string_equal(
        str_claim(jws.header, "kid"),
        json_string_value(json_object_get(json_object_get(ctx.config, "entra"), "kid")));
    assert_string_equal(str_claim(jws.header, "typ"), "JWT");
    c = jws.claims;
    assert_non_null(c);
    snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", tenant);
    assert_string_equal(str_claim(c, "aud"), "https://managedhsm.azure.net/");
    assert_string_equal(str_claim(c, "iss"), iss);
    assert_string_equal(str_claim(c, "oid"), mi_object);
    assert_string_equal(str_claim(c, "sub"), mi_object);
    assert_string_equal(str_claim(c, "appid"), mi_client);
    assert_string_equal(str_claim(c, "tid"), tenant);
    assert_string_equal(str_claim(c, "xms_az_rid"), mi_res);
    assert_true(int_claim(c, "exp") - now >= 3590 && int_claim(c, "exp") - now <= 3600);
    assert_true(int_claim(c, "nbf") <= now);
    assert_true(int_claim(c, "iat") <= now);
    assert_int_equal(int_claim(c, "exp"), atoll(str_claim(v, "expires_on")));

    /* the same token is not valid under the MAA key */
    assert_int_equal(skr_jws_verify(&jws, ctx.maa_key), SKR_E_VERIFY);
}

/* Signs claims with key under the Entra kid. */
static char *
sign(EVP_PKEY *key, json_t *claims)
{
    _cleanup_(json_decrefp) json_t *hdr =
        json_pack("{s:s, s:s}", "kid", ctx.entra_kid, "typ", "JWT");
    struct skr_buf out;
    const char *s = NULL;
    char *r;

    skr_buf_init(&out, SKR_MAX_JWT_BYTES);
    assert_int_equal(skr_jwt_sign_rs256(key, hdr, claims, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    r = strdup(s);
    skr_buf_done(&out);
    json_decref(claims);
    return r;
}

static void
test_entra_verify(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf tok = { 0 };
    _cleanup_free_ char *expired = NULL;
    _cleanup_free_ char *future = NULL;
    _cleanup_free_ char *foreign = NULL;
    _cleanup_free_ char *other_iss = NULL;
    _cleanup_free_ char *tampered = NULL;
    _cleanup_free_ char *skewed = NULL;
    const char *t = NULL;
    json_t *claims = NULL;
    int64_t exp = 0;
    int64_t now = (int64_t)time(NULL);
    char iss[256];

    (void)state;
    skr_buf_init(&tok, SKR_MAX_JWT_BYTES);
    assert_int_equal(emu_entra_issue(&ctx, RESOURCE, NULL, &tok, &exp), SKR_OK);
    assert_int_equal(skr_buf_cstr(&tok, &t), SKR_OK);
    assert_int_equal(emu_entra_verify(&ctx, t, RESOURCE, &claims), SKR_OK);
    assert_string_equal(str_claim(claims, "oid"), mi_object);
    assert_int_equal(int_claim(claims, "exp"), exp);
    json_decref(claims);
    /* with or without a trailing '/' on either side */
    assert_int_equal(emu_entra_verify(&ctx, t, RESOURCE "/", NULL), SKR_OK);
    assert_int_equal(emu_entra_verify(&ctx, t, "https://management.azure.com", NULL), SKR_E_VERIFY);
    assert_int_equal(emu_entra_verify(&ctx, t, RESOURCE "//", NULL), SKR_E_VERIFY);
    assert_int_equal(emu_entra_verify(&ctx, t, "https://vault.azure.ne", NULL), SKR_E_VERIFY);
    assert_int_equal(emu_entra_verify(&ctx, "not.a.jwt", RESOURCE, NULL), SKR_E_VERIFY);
    assert_int_equal(emu_entra_verify(&ctx, "", RESOURCE, NULL), SKR_E_VERIFY);

    /* tampered payload: flip one character of the payload segment */
    tampered = strdup(t);
    {
        char *dot = strchr(tampered, '.');
        assert_non_null(dot);
        dot[5] = dot[5] == 'A' ? 'B' : 'A';
    }
    assert_int_equal(emu_entra_verify(&ctx, tampered, RESOURCE, NULL), SKR_E_VERIFY);

    snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", tenant);
    expired =
        sign(ctx.entra_key, json_pack("{s:s, s:s, s:I, s:I}", "aud", RESOURCE, "iss", iss, "nbf",
                                      (json_int_t)(now - 7200), "exp", (json_int_t)(now - 120)));
    assert_int_equal(emu_entra_verify(&ctx, expired, RESOURCE, NULL), SKR_E_VERIFY);
    skewed =
        sign(ctx.entra_key, json_pack("{s:s, s:s, s:I, s:I}", "aud", RESOURCE, "iss", iss, "nbf",
                                      (json_int_t)(now + 30), "exp", (json_int_t)(now - 30)));
    assert_int_equal(emu_entra_verify(&ctx, skewed, RESOURCE, NULL), SKR_OK); /* 60 s skew */
    future =
        sign(ctx.entra_key, json_pack("{s:s, s:s, s:I, s:I}", "aud", RESOURCE, "iss", iss, "nbf",
                                      (json_int_t)(now + 600), "exp", (json_int_t)(now + 3600)));
    assert_int_equal(emu_entra_verify(&ctx, future, RESOURCE, NULL), SKR_E_VERIFY);
    foreign = sign(ctx.maa_key, json_pack("{s:s, s:s, s:I, s:I}", "aud", RESOURCE, "iss", iss,
                                          "nbf", (json_int_t)now, "exp", (json_int_t)(now + 60)));
    assert_int_equal(emu_entra_verify(&ctx, foreign, RESOURCE, NULL), SKR_E_VERIFY);
    other_iss = sign(ctx.entra_key,
                     json_pack("{s:s, s:s, s:I, s:I}", "aud", RESOURCE, "iss",
                               "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
                               "nbf", (json_int_t)now, "exp", (json_int_t)(now + 60)));
    assert_int_equal(emu_entra_verify(&ctx, other_iss, RESOURCE, NULL), SKR_E_VERIFY);
}

static void
test_token_errors(void **state)
{
    char path[1024];
    json_t *v = NULL;
    const char *const upper_hdr[] = { "Metadata: True", NULL };
    const char *const xff_hdr[] = { "Metadata: true", "X-Forwarded-For: 10.0.0.1", NULL };
    const char *base =
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" RESOURCE_ENC;

    (void)state;
    assert_int_equal(call("GET", base, NULL, NULL, &v, NULL), 400);
    assert_imds_error(v, "invalid_request", "Required metadata header not specified");
    json_decref(v);
    assert_int_equal(call("GET", base, upper_hdr, NULL, &v, NULL), 400);
    assert_imds_error(v, "invalid_request", "Required metadata header not specified");
    json_decref(v);
    assert_int_equal(call("GET", base, xff_hdr, NULL, &v, NULL), 400);
    assert_imds_error(v, "invalid_request", NULL);
    json_decref(v);
    assert_int_equal(get_md("/metadata/identity/oauth2/token?resource=" RESOURCE_ENC, &v), 400);
    assert_imds_error(v, "invalid_request", NULL);
    json_decref(v);
    assert_int_equal(
        get_md("/metadata/identity/oauth2/token?api-version=2017-01-01&resource=" RESOURCE_ENC, &v),
        400);
    assert_imds_error(v, "invalid_request", "Invalid api-version");
    json_decref(v);
    assert_int_equal(get_md("/metadata/identity/oauth2/token?api-version=2018-02-01", &v), 400);
    assert_imds_error(v, "invalid_request", "Required query variable 'resource' is missing");
    json_decref(v);
    assert_int_equal(get_md("/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
                            "not%20a%20uri",
                            &v),
                     400);
    assert_imds_error(v, "invalid_resource", NULL);
    json_decref(v);
    assert_int_equal(get_md("/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
                            "http%3A%2F%2Fvault.azure.net",
                            &v),
                     400);
    assert_imds_error(v, "invalid_resource", NULL);
    json_decref(v);
    /* identities that are not emu.json's */
    snprintf(path, sizeof(path), "%s&client_id=00000000-0000-0000-0000-000000000001", base);
    assert_int_equal(get_md(path, &v), 400);
    assert_imds_error(v, "invalid_request", "Identity not found");
    json_decref(v);
    snprintf(path, sizeof(path), "%s&object_id=%s", base, mi_client); /* a client id as oid */
    assert_int_equal(get_md(path, &v), 400);
    assert_imds_error(v, "invalid_request", "Identity not found");
    json_decref(v);
    snprintf(path, sizeof(path), "%s&msi_res_id=%%2Fsubscriptions%%2Fother", base);
    assert_int_equal(get_md(path, &v), 400);
    assert_imds_error(v, "invalid_request", "Identity not found");
    json_decref(v);
    snprintf(path, sizeof(path), "%s&client_id=%s&object_id=%s", base, mi_client, mi_object);
    assert_int_equal(get_md(path, &v), 400);
    assert_imds_error(v, "invalid_request", NULL);
    json_decref(v);
    /* routes */
    assert_int_equal(call("POST", base, md_hdr, "", &v, NULL), 405);
    json_decref(v);
    assert_int_equal(get_md("/metadata/instance?api-version=2021-02-01", &v), 404);
    json_decref(v);
    assert_int_equal(get_md("/nothing/here", &v), 404);
    json_decref(v);
}

/* ---- THIM ------------------------------------------------------------------------------- */

static void
test_thim(void **state)
{
    struct skr_http_reply r = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf decoded = { 0 };
    struct skr_thim thim = { 0 };
    char path[128];
    json_t *v = NULL;

    (void)state;
    assert_int_equal(call("GET", "/metadata/THIM/amd/certification", md_hdr, NULL, NULL, &r), 200);
    assert_non_null(r.content_type);
    assert_string_equal(r.content_type, "application/json");
    snprintf(path, sizeof(path), "%s/%s", dir, EMU_SECCTX_HOST_AMD);
    skr_buf_init(&file, SKR_MAX_FILE_BYTES);
    skr_buf_init(&decoded, SKR_MAX_FILE_BYTES);
    assert_int_equal(skr_read_file(path, &file), SKR_OK);
    assert_int_equal(skr_b64_decode(skr_buf_span(&file), SKR_B64_STD | SKR_B64_SKIP_WS, &decoded),
                     SKR_OK);
    assert_int_equal(r.body.len, decoded.len);
    assert_memory_equal(r.body.ptr, decoded.ptr, decoded.len);
    assert_int_equal(skr_thim_parse(skr_buf_span(&r.body), &thim), SKR_OK);
    assert_non_null(strstr(thim.vcek_pem, "BEGIN CERTIFICATE"));
    assert_non_null(strstr(thim.chain_pem, "BEGIN CERTIFICATE"));
    skr_thim_done(&thim);
    skr_http_reply_done(&r);

    assert_int_equal(call("GET", "/metadata/THIM/amd/certification", NULL, NULL, &v, NULL), 400);
    assert_imds_error(v, "invalid_request", "Required metadata header not specified");
    json_decref(v);
}

/* ---- Entra ------------------------------------------------------------------------------ */

static const char *
suffix_path(const char *url)
{
    size_t n = strlen(ctx.imds_url);

    assert_int_equal(strncmp(url, ctx.imds_url, n), 0);
    return url + n;
}

static void
test_entra_discovery(void **state)
{
    char path[2048];
    char auth[512];
    char enc[1024];
    char want[512];
    _cleanup_(json_decrefp) json_t *disc = NULL;
    _cleanup_(json_decrefp) json_t *oidc = NULL;
    _cleanup_(json_decrefp) json_t *jwks = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf der = { 0 };
    _cleanup_(skr_ossl_freep) unsigned char *cert_der = NULL;
    const json_t *key;
    json_t *v = NULL;
    int cert_len;

    (void)state;
    snprintf(auth, sizeof(auth), "%s/%s/oauth2/v2.0/authorize", ctx.imds_url, tenant);
    url_encode(auth, enc, sizeof(enc));
    snprintf(path, sizeof(path),
             "/common/discovery/instance?api-version=1.1&authorization_endpoint=%s", enc);
    assert_int_equal(call("GET", path, NULL, NULL, &disc, NULL), 200);
    snprintf(want, sizeof(want), "%s/%s/v2.0/.well-known/openid-configuration", ctx.imds_url,
             tenant);
    assert_string_equal(str_claim(disc, "tenant_discovery_endpoint"), want);
    assert_string_equal(str_claim(disc, "api-version"), "1.1");
    assert_true(json_is_array(json_object_get(disc, "metadata")));
    assert_int_equal(
        call("GET", "/common/discovery/instance?api-version=1.0", NULL, NULL, &v, NULL), 400);
    json_decref(v);

    assert_int_equal(call("GET", suffix_path(want), NULL, NULL, &oidc, NULL), 200);
    snprintf(want, sizeof(want), "%s/%s/oauth2/v2.0/token", ctx.imds_url, tenant);
    assert_string_equal(str_claim(oidc, "token_endpoint"), want);
    snprintf(want, sizeof(want), "%s/%s/v2.0", ctx.imds_url, tenant);
    assert_string_equal(str_claim(oidc, "issuer"), want);
    assert_int_equal(call("GET",
                          "/00000000-0000-0000-0000-000000000000/v2.0/.well-known/"
                          "openid-configuration",
                          NULL, NULL, &v, NULL),
                     400);
    assert_string_equal(str_claim(v, "error"), "invalid_tenant");
    json_decref(v);

    assert_int_equal(call("GET", suffix_path(str_claim(oidc, "jwks_uri")), NULL, NULL, &jwks, NULL),
                     200);
    assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
    key = json_array_get(json_object_get(jwks, "keys"), 0);
    assert_string_equal(str_claim(key, "kid"), ctx.entra_kid);
    assert_string_equal(str_claim(key, "kty"), "RSA");
    assert_int_equal(skr_jwk_to_pkey(key, &k), SKR_OK);
    assert_int_equal(EVP_PKEY_eq(k, ctx.entra_key), 1);
    skr_buf_init(&der, SKR_MAX_CERT_BYTES);
    assert_int_equal(skr_b64_decode(skr_span_str(json_string_value(
                                        json_array_get(json_object_get(key, "x5c"), 0))),
                                    SKR_B64_STD, &der),
                     SKR_OK);
    cert_len = i2d_X509(ctx.entra_cert, &cert_der);
    assert_int_equal((size_t)cert_len, der.len);
    assert_memory_equal(cert_der, der.ptr, der.len);
}

/* A projected service account token look-alike, signed by a key the emulator does not know. */
static char *
assertion(const char *aud, int64_t exp_delta)
{
    int64_t now = (int64_t)time(NULL);
    _cleanup_(json_decrefp) json_t *hdr = json_pack("{s:s}", "kid", "k8s");
    json_t *claims = json_pack("{s:s, s:s, s:I, s:I}", "iss", "https://oidc.example/cluster", "sub",
                               "system:serviceaccount:default:app", "iat", (json_int_t)now, "exp",
                               (json_int_t)(now + exp_delta));
    struct skr_buf out;
    const char *s = NULL;
    char *r;

    if (aud != NULL) {
        assert_int_equal(json_object_set_new(claims, "aud", json_pack("[s]", aud)), 0);
    }
    skr_buf_init(&out, SKR_MAX_JWT_BYTES);
    assert_int_equal(skr_jwt_sign_rs256(ctx.maa_key, hdr, claims, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    r = strdup(s);
    skr_buf_done(&out);
    json_decref(claims);
    return r;
}

static const char *const form_hdr[] = {
    "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL
};

static long
post_token(const char *tenant_id, const char *grant, const char *client_id, const char *scope,
           const char *assertion_jwt, json_t **ret)
{
    char path[256];
    char body[16384];
    char scope_enc[512];

    snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", tenant_id);
    url_encode(scope, scope_enc, sizeof(scope_enc));
    snprintf(body, sizeof(body),
             "grant_type=%s&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
             "assertion-type%%3Ajwt-bearer&client_assertion=%s&client_id=%s&client_info=1&"
             "scope=%s",
             grant, assertion_jwt, client_id, scope_enc);
    return call("POST", path, form_hdr, body, ret, NULL);
}

static void
assert_aad_error(json_t *v, const char *error, const char *code)
{
    assert_non_null(v);
    assert_string_equal(str_claim(v, "error"), error);
    assert_non_null(strstr(str_claim(v, "error_description"), code));
    assert_true(json_is_array(json_object_get(v, "error_codes")));
}

static void
test_entra_token(void **state)
{
    _cleanup_free_ char *good = assertion("api://AzureADTokenExchange", 600);
    _cleanup_free_ char *expired = assertion("api://AzureADTokenExchange", -600);
    _cleanup_free_ char *wrong_aud = assertion("https://kubernetes.default.svc", 600);
    _cleanup_free_ char *no_aud = assertion(NULL, 600);
    const char *scope = RESOURCE "/.default openid offline_access profile";
    json_t *v = NULL;
    json_t *claims = NULL;

    (void)state;
    assert_int_equal(post_token(tenant, "client_credentials", mi_client, scope, good, &v), 200);
    assert_string_equal(str_claim(v, "token_type"), "Bearer");
    assert_true(json_is_integer(json_object_get(v, "expires_in"))); /* numbers, not strings */
    assert_true(json_is_integer(json_object_get(v, "ext_expires_in")));
    assert_true(int_claim(v, "expires_in") >= 3590 && int_claim(v, "expires_in") <= 3600);
    assert_int_equal(emu_entra_verify(&ctx, str_claim(v, "access_token"), RESOURCE, &claims),
                     SKR_OK);
    assert_string_equal(str_claim(claims, "appid"), mi_client);
    assert_string_equal(str_claim(claims, "oid"), mi_object);
    assert_string_equal(str_claim(claims, "aud"), RESOURCE);
    json_decref(claims);
    json_decref(v);

    assert_int_equal(post_token(tenant, "client_credentials", mi_client, scope, expired, &v), 401);
    assert_aad_error(v, "invalid_client", "AADSTS700024");
    json_decref(v);
    assert_int_equal(post_token(tenant, "client_credentials", mi_client, scope, wrong_aud, &v),
                     401);
    assert_aad_error(v, "invalid_client", "AADSTS700212");
    json_decref(v);
    assert_int_equal(post_token(tenant, "client_credentials", mi_client, scope, no_aud, &v), 401);
    assert_aad_error(v, "invalid_client", "AADSTS700212");
    json_decref(v);
    assert_int_equal(post_token(tenant, "client_credentials", mi_client, scope, "garbage", &v),
                     401);
    assert_aad_error(v, "invalid_client", "AADSTS50027");
    json_decref(v);
    assert_int_equal(post_token(tenant, "client_credentials",
                                "00000000-0000-0000-0000-000000000001", scope, good, &v),
                     400);
    assert_aad_error(v, "unauthorized_client", "AADSTS700016");
    json_decref(v);
    assert_int_equal(post_token(tenant, "password", mi_client, scope, good, &v), 400);
    assert_aad_error(v, "unsupported_grant_type", "AADSTS70003");
    json_decref(v);
    assert_int_equal(post_token(tenant, "client_credentials", mi_client, RESOURCE, good, &v), 400);
    assert_aad_error(v, "invalid_scope", "AADSTS1002012");
    json_decref(v);
    assert_int_equal(post_token(tenant, "client_credentials", mi_client,
                                RESOURCE "/.default https://x.example/.default", good, &v),
                     400);
    assert_aad_error(v, "invalid_scope", "AADSTS1002012");
    json_decref(v);
    assert_int_equal(post_token("00000000-0000-0000-0000-000000000000", "client_credentials",
                                mi_client, scope, good, &v),
                     400);
    assert_aad_error(v, "invalid_tenant", "AADSTS90002");
    json_decref(v);
    /* not a form, no assertion, a GET */
    {
        char path[256];
        snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", tenant);
        assert_int_equal(call("POST", path, NULL, "{}", &v, NULL), 400);
        assert_aad_error(v, "invalid_request", "AADSTS900144");
        json_decref(v);
        assert_int_equal(call("POST", path, form_hdr,
                              "grant_type=client_credentials&scope=x%2F.default&client_id=a", &v,
                              NULL),
                         401);
        assert_aad_error(v, "invalid_client", "AADSTS7000218");
        json_decref(v);
        assert_int_equal(call("POST", path, form_hdr,
                              "grant_type=client_credentials&"
                              "grant_type=client_credentials",
                              &v, NULL),
                         400);
        json_decref(v);
        assert_int_equal(call("POST", path, form_hdr, "grant_type=%zz", &v, NULL), 400);
        json_decref(v);
        assert_int_equal(call("GET", path, NULL, NULL, &v, NULL), 405);
        json_decref(v);
    }
}

/* ---- the context ------------------------------------------------------------------------ */

static void
test_ctx_load_errors(void **state)
{
    struct emu_ctx c;
    char bad[128];
    char path[192];
    FILE *f;

    (void)state;
    assert_int_not_equal(emu_ctx_load("/nonexistent/skr-emu", &c), SKR_OK);
    snprintf(bad, sizeof(bad), "%s.bad", dir);
    assert_int_equal(mkdir(bad, 0700), 0);
    snprintf(path, sizeof(path), "%s/emu.json", bad);
    f = fopen(path, "we");
    assert_non_null(f);
    fputs("{\"version\":2,\"tenant_id\":\"t\",\"managed_identity\":{}}", f);
    fclose(f);
    assert_int_equal(emu_ctx_load(bad, &c), SKR_E_UNSUPPORTED);
    f = fopen(path, "we");
    assert_non_null(f);
    fputs("{\"version\":1,\"tenant_id\":\"t\",\"managed_identity\":{\"client_id\":\"c\"}}", f);
    fclose(f);
    assert_int_equal(emu_ctx_load(bad, &c), SKR_E_MALFORMED);
    f = fopen(path, "we");
    assert_non_null(f);
    fputs("{\"version\":1,\"tenant_id\":\"t\",\"managed_identity\":{\"client_id\":\"c\","
          "\"object_id\":\"o\",\"msi_res_id\":\"r\"},\"maa\":{\"kid\":\"a\"},"
          "\"entra\":{\"kid\":\"b\"}}",
          f);
    fclose(f);
    assert_int_equal(emu_ctx_load(bad, &c), SKR_E_NOT_FOUND); /* no keys */
    emu_ctx_done(&c);                                         /* no-op after a failed load */
    assert_int_equal(remove(path), 0);
    assert_int_equal(rmdir(bad), 0);

    /* the loaded context holds what init wrote */
    assert_int_equal(sk_X509_num(ctx.tls_chain), 2);
    assert_int_equal(sk_X509_num(ctx.snp_roots), 1);
    assert_int_equal(X509_cmp(sk_X509_value(ctx.tls_chain, 1), ctx.ca), 0);
    assert_int_equal(EVP_PKEY_get_bits(ctx.entra_key), 2048);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_selectors),
        cmocka_unit_test(test_token_jwt),
        cmocka_unit_test(test_entra_verify),
        cmocka_unit_test(test_token_errors),
        cmocka_unit_test(test_thim),
        cmocka_unit_test(test_entra_discovery),
        cmocka_unit_test(test_entra_token),
        cmocka_unit_test(test_ctx_load_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
