/*
 * test_emu_akv.c - the Key Vault / Managed HSM emulator (src/emu/akv.c) driven through a real
 * TLS loopback server: auth, import/create/get/update with the AKV.SKR rules, and release with
 * an attestation token verified through OIDC discovery served by a second TLS server in this
 * test (playing MAA's /.well-known/openid-configuration and /certs).
 */
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
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "buf.h"
#include "emu.h"
#include "http_client.h"
#include "http_server.h"
#include "jose.h"
#include "json.h"
#include "keywrap.h"
#include "ossl.h"
#include "secret.h"
#include "service.h"

#define HOSTDATA "73973b78d70cc68353426de188db5dfc57e5b766e399935fb73a61127ea26d20"

static struct {
    char root[256];
    char dir[300];
    struct emu_ctx ctx;
    struct skr_http_server *akv;
    struct skr_http_server *oidc;
    struct skr_http_client *client;
    EVP_PKEY *transfer;   /* the wrapping key put into x-ms-runtime.keys */
    json_t *transfer_jwk; /* its public JWK with kid and key_ops */
    char *token;          /* Entra token of the managed identity, vault audience */
} g;

/* ---- the fake MAA discovery server -------------------------------------------------------- */

/* When set, the metadata's jwks_uri points at another host (the release must refuse it). */
static bool g_jwks_elsewhere;

static skr_err
oidc_handle(void *vctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct emu_ctx *ctx = vctx;
    _cleanup_(json_decrefp) json_t *doc = NULL;
    char url[200];

    if (strcmp(req->path, "/.well-known/openid-configuration") == 0) {
        (void)snprintf(url, sizeof(url), "%s/certs",
                       g_jwks_elsewhere ? "https://localhost:1" : ctx->maa_url);
        doc = json_pack("{s:s, s:s}", "issuer", ctx->maa_url, "jwks_uri", url);
    } else if (strcmp(req->path, "/certs") == 0) {
        _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
        unsigned char *der = NULL;
        int len = i2d_X509(ctx->maa_cert, &der);
        const char *s = NULL;

        skr_buf_init(&b64, 1u << 16);
        TRY(skr_b64_encode(skr_span_make(der, (size_t)len), SKR_B64_STD | SKR_B64_PAD, &b64));
        OPENSSL_free(der);
        TRY(skr_buf_cstr(&b64, &s));
        doc = json_pack("{s:[{s:s, s:s, s:[s]}]}", "keys", "kid", ctx->maa_kid, "kty", "RSA", "x5c",
                        s);
    } else {
        return skr_http_respond_error_json(resp, 404, "NotFound", "no such path");
    }
    ENSURE(doc != NULL, SKR_E_NOMEM, "out of memory");
    return skr_http_respond_json(resp, 200, doc);
}

/* ---- setup ------------------------------------------------------------------------------- */

static struct skr_http_server *
start_server(struct emu_ctx *ctx, skr_http_handler h)
{
    struct skr_http_server_cfg cfg = { 0 };
    struct skr_http_server *srv = NULL;
    char cert[400];
    char key[400];

    (void)snprintf(cert, sizeof(cert), "%s/%s", g.dir, EMU_TLS_CERT);
    (void)snprintf(key, sizeof(key), "%s/%s", g.dir, EMU_TLS_KEY);
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    cfg.handler = h;
    cfg.handler_ctx = ctx;
    if (skr_http_server_start(&cfg, &srv) != SKR_OK) {
        fail_msg("server start: %s", skr_err_msg());
    }
    return srv;
}

static char *
entra_token(const char *aud, const char *oid, long exp_delta)
{
    _cleanup_(json_decrefp) json_t *claims = NULL;
    _cleanup_(json_decrefp) json_t *hdr = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    char iss[200];
    long now = (long)time(NULL);
    const char *s = NULL;

    assert_int_equal(emu_entra_issuer(&g.ctx, iss, sizeof(iss)), SKR_OK);
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "aud", aud, "iss", iss, "oid", oid, "iat",
                       (json_int_t)(now - 300), "nbf", (json_int_t)(now - 300), "exp",
                       (json_int_t)(now + exp_delta));
    hdr = json_pack("{s:s, s:s}", "kid", g.ctx.entra_kid, "typ", "JWT");
    assert_non_null(claims);
    skr_buf_init(&out, 1u << 16);
    assert_int_equal(skr_jwt_sign_rs256(g.ctx.entra_key, hdr, claims, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    return strdup(s);
}

static const char *
mi_oid(void)
{
    return emu_cfg_str(&g.ctx, "managed_identity", "object_id");
}

extern char **environ;

/* Runs argv (PATH searched) and returns its exit status, -1 when it did not exit normally. */
static int
run(char **argv)
{
    pid_t pid;
    int st = 0;

    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        return -1;
    }
    return WEXITSTATUS(st);
}

static int
setup(void **state)
{
    char prog[512];
    char a1[] = "init";
    char *argv[4];
    const char *build = getenv("SKR_BUILD_DIR");
    _cleanup_(json_decrefp) json_t *jwks = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf tmp = { 0 };

    (void)state;
    (void)snprintf(g.root, sizeof(g.root), "/tmp/skr-test-akv-XXXXXX");
    assert_non_null(mkdtemp(g.root));
    (void)snprintf(g.dir, sizeof(g.dir), "%s/emu", g.root);
    /* skr-emu init in a child (emu_cmd_init needs main.c's helpers) */
    (void)snprintf(prog, sizeof(prog), "%s/src/skr-emu", build != NULL ? build : ".");
    argv[0] = prog;
    argv[1] = a1;
    argv[2] = g.dir;
    argv[3] = NULL;
    assert_int_equal(run(argv), EMU_EXIT_OK);
    if (emu_ctx_load(g.dir, &g.ctx) != SKR_OK) {
        fail_msg("emu_ctx_load: %s", skr_err_msg());
    }
    g.akv = start_server(&g.ctx, emu_akv_handle);
    g.oidc = start_server(&g.ctx, oidc_handle);
    (void)snprintf(g.ctx.akv_url, sizeof(g.ctx.akv_url), "https://127.0.0.1:%u",
                   skr_http_server_port(g.akv));
    (void)snprintf(g.ctx.maa_url, sizeof(g.ctx.maa_url), "https://127.0.0.1:%u",
                   skr_http_server_port(g.oidc));
    (void)snprintf(g.ctx.imds_url, sizeof(g.ctx.imds_url), "http://127.0.0.1:9");

    struct skr_http_client_opts o;
    char ca[400];

    (void)snprintf(ca, sizeof(ca), "%s/%s", g.dir, EMU_CA_CERT);
    skr_http_client_opts_init(&o);
    o.ca_file = ca;
    o.retries = 0;
    assert_int_equal(skr_http_client_new(&o, &g.client), SKR_OK);

    g.transfer = EVP_RSA_gen(2048);
    assert_non_null(g.transfer);
    skr_buf_init(&tmp, 1u << 16);
    assert_int_equal(skr_jwks_transfer_key(g.transfer, &tmp, &jwks), SKR_OK);
    g.transfer_jwk = json_incref(json_array_get(json_object_get(jwks, "keys"), 0));
    g.token = entra_token("https://vault.azure.net", mi_oid(), 3600);
    return 0;
}

static void
rm_tree(const char *path)
{
    char a0[] = "rm";
    char a1[] = "-rf";
    char a2[300];
    char *argv[] = { a0, a1, a2, NULL };

    (void)snprintf(a2, sizeof(a2), "%s", path);
    (void)run(argv);
}

static int
teardown(void **state)
{
    (void)state;
    skr_http_server_stop(g.akv);
    skr_http_server_stop(g.oidc);
    skr_http_client_free(g.client);
    EVP_PKEY_free(g.transfer);
    json_decref(g.transfer_jwk);
    free(g.token);
    emu_ctx_done(&g.ctx);
    rm_tree(g.root);
    return 0;
}

/* ---- HTTP helpers -------------------------------------------------------------------------- */

struct reply {
    long status;
    json_t *body;
    char *www;
};

static void
reply_done(struct reply *r)
{
    json_decref(r->body);
    free(r->www);
    memset(r, 0, sizeof(*r));
}

static void
call_at(const char *base, const char *method, const char *path, const char *token,
        const json_t *body, struct reply *ret)
{
    _cleanup_(skr_http_reply_done) struct skr_http_reply rep = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    char url[600];
    char *auth = NULL;
    const char *headers[3] = { "Content-Type: application/json", NULL, NULL };

    memset(ret, 0, sizeof(*ret));
    (void)snprintf(url, sizeof(url), "%s%s", base, path);
    skr_buf_init(&text, 1u << 20);
    if (body != NULL) {
        assert_int_equal(skr_json_dump(body, JSON_COMPACT, &text), SKR_OK);
    }
    if (token != NULL) {
        size_t n = strlen(token) + 32;

        auth = malloc(n);
        assert_non_null(auth);
        (void)snprintf(auth, n, "Authorization: Bearer %s", token);
        headers[1] = auth;
    }
    if (skr_http_request(g.client, method, url, headers, skr_buf_span(&text), &rep) != SKR_OK) {
        fail_msg("request %s %s: %s", method, path, skr_err_msg());
    }
    free(auth);
    ret->status = rep.status;
    if (rep.body.len > 0) {
        assert_int_equal(skr_json_parse(skr_buf_span(&rep.body), 1u << 20, &ret->body), SKR_OK);
    }
    if (rep.www_authenticate != NULL) {
        ret->www = strdup(rep.www_authenticate);
    }
}

static void
call(const char *method, const char *path, const char *token, const json_t *body, struct reply *ret)
{
    call_at(g.ctx.akv_url, method, path, token, body, ret);
}

static const char *
err_code(const struct reply *r)
{
    return json_string_value(json_object_get(json_object_get(r->body, "error"), "code"));
}

static const char *
err_msg(const struct reply *r)
{
    const char *m =
        json_string_value(json_object_get(json_object_get(r->body, "error"), "message"));

    return m != NULL ? m : "";
}

static void
expect_error(const struct reply *r, long status, const char *code, const char *needle)
{
    if (r->status != status || strcmp(err_code(r) != NULL ? err_code(r) : "", code) != 0 ||
        strstr(err_msg(r), needle) == NULL) {
        fail_msg("expected %ld %s '%s', got %ld %s '%s'", status, code, needle, r->status,
                 err_code(r) != NULL ? err_code(r) : "(none)", err_msg(r));
    }
}

/* ---- builders ------------------------------------------------------------------------------ */

static json_t *
policy_json(const char *authority, const char *version, bool immutable)
{
    _cleanup_(json_decrefp) json_t *p = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
    const char *s = NULL;

    p = json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}, {s:s, s:b}]}]}", "version", version, "anyOf",
                  "authority", authority, "allOf", "claim", "x-ms-sevsnpvm-hostdata", "equals",
                  HOSTDATA, "claim", "x-ms-sevsnpvm-is-debuggable", "equals", 0);
    assert_non_null(p);
    skr_buf_init(&text, 1u << 16);
    skr_buf_init(&b64, 1u << 16);
    assert_int_equal(skr_json_dump(p, JSON_COMPACT, &text), SKR_OK);
    assert_int_equal(skr_b64_encode(skr_buf_span(&text), SKR_B64_URL, &b64), SKR_OK);
    assert_int_equal(skr_buf_cstr(&b64, &s), SKR_OK);
    return json_pack("{s:s, s:s, s:b}", "contentType", "application/json; charset=utf-8", "data", s,
                     "immutable", immutable);
}

static json_t *
import_body(json_t *jwk, bool exportable, json_t *policy)
{
    json_t *b = json_pack("{s:O, s:b, s:{s:b}}", "key", jwk, "hsm", 1, "attributes", "exportable",
                          exportable);

    assert_non_null(b);
    if (policy != NULL) {
        assert_int_equal(json_object_set_new(b, "release_policy", policy), 0);
    }
    return b;
}

static char *
maa_token(EVP_PKEY *signer, const char *iss, const char *hostdata, long exp_delta, bool with_keys)
{
    _cleanup_(json_decrefp) json_t *claims = NULL;
    _cleanup_(json_decrefp) json_t *hdr = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    char jku[200];
    long now = (long)time(NULL);
    const char *s = NULL;

    (void)snprintf(jku, sizeof(jku), "%s/certs", g.ctx.maa_url);
    claims = json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:b, s:i, s:{s:[O]}}", "iss", iss,
                       "iat", (json_int_t)(now - 10), "nbf", (json_int_t)(now - 10), "exp",
                       (json_int_t)(now + exp_delta), "x-ms-attestation-type", "sevsnpvm",
                       "x-ms-compliance-status", "azure-compliant-uvm", "x-ms-sevsnpvm-hostdata",
                       hostdata, "x-ms-sevsnpvm-is-debuggable", 0, "x-ms-sevsnpvm-vmpl", 0,
                       "x-ms-runtime", "keys", g.transfer_jwk);
    assert_non_null(claims);
    if (!with_keys) {
        assert_int_equal(json_object_set_new(claims, "x-ms-runtime", json_object()), 0);
    }
    hdr = json_pack("{s:s, s:s, s:s}", "jku", jku, "kid", g.ctx.maa_kid, "typ", "JWT");
    skr_buf_init(&out, 1u << 16);
    assert_int_equal(skr_jwt_sign_rs256(signer, hdr, claims, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    return strdup(s);
}

static char *
good_maa_token(void)
{
    return maa_token(g.ctx.maa_key, g.ctx.maa_url, HOSTDATA, 3600, true);
}

/* Imports jwk as name and returns the bundle (the test owns it). */
static json_t *
import_key(const char *name, json_t *jwk, bool exportable, json_t *policy)
{
    _cleanup_(json_decrefp) json_t *body = import_body(jwk, exportable, policy);
    struct reply r;
    char path[200];
    json_t *b = NULL;

    (void)snprintf(path, sizeof(path), "/keys/%s?api-version=7.4", name);
    call("PUT", path, g.token, body, &r);
    if (r.status != 200) {
        fail_msg("import %s: %ld %s", name, r.status, err_msg(&r));
    }
    b = json_incref(r.body);
    reply_done(&r);
    return b;
}

static json_t *
rsa_private_jwk(EVP_PKEY **ret_key)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    json_t *jwk = NULL;

    assert_non_null(k);
    assert_int_equal(skr_jwk_from_pkey(k, true, &jwk), SKR_OK);
    *ret_key = k;
    return jwk;
}

static void
bn_eq(EVP_PKEY *a, EVP_PKEY *b, const char *param)
{
    _cleanup_(BN_freep) BIGNUM *x = NULL;
    _cleanup_(BN_freep) BIGNUM *y = NULL;

    assert_int_equal(EVP_PKEY_get_bn_param(a, param, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(b, param, &y), 1);
    assert_int_equal(BN_cmp(x, y), 0);
}

/* ---- auth ------------------------------------------------------------------------------------ */

static void
test_no_bearer(void **state)
{
    struct reply r;
    char want[200];

    (void)state;
    call("GET", "/keys/k1?api-version=7.4", NULL, NULL, &r);
    expect_error(&r, 401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.");
    assert_non_null(r.www);
    (void)snprintf(want, sizeof(want),
                   "Bearer authorization=\"http://127.0.0.1:9/%s\", "
                   "resource=\"https://vault.azure.net\"",
                   emu_cfg_str(&g.ctx, NULL, "tenant_id"));
    assert_string_equal(r.www, want);
    reply_done(&r);

    /* playing a Managed HSM, the challenge names the managedhsm resource */
    assert_int_equal(
        json_object_set_new(g.ctx.config, "akv", json_pack("{s:s}", "flavor", "managedhsm")), 0);
    call("GET", "/keys/k1?api-version=7.4", NULL, NULL, &r);
    assert_non_null(r.www);
    assert_non_null(strstr(r.www, "resource=\"https://managedhsm.azure.net\""));
    reply_done(&r);
    assert_int_equal(json_object_del(g.ctx.config, "akv"), 0);

    /* "Bearer" without a token */
    call("GET", "/keys/k1?api-version=7.4", "", NULL, &r);
    expect_error(&r, 401, "Unauthorized", "AKV10000");
    reply_done(&r);
}

static void
test_bad_tokens(void **state)
{
    char *t = NULL;
    struct reply r;

    (void)state;
    t = entra_token("https://management.azure.com", mi_oid(), 3600);
    call("GET", "/keys/nokey?api-version=7.4", t, NULL, &r);
    expect_error(&r, 401, "Unauthorized", "audience");
    assert_non_null(r.www);
    reply_done(&r);
    free(t);

    t = entra_token("https://vault.azure.net", mi_oid(), -3600);
    call("GET", "/keys/nokey?api-version=7.4", t, NULL, &r);
    expect_error(&r, 401, "Unauthorized", "expired");
    reply_done(&r);
    free(t);

    call("GET", "/keys/nokey?api-version=7.4", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", NULL, &r);
    expect_error(&r, 401, "Unauthorized", "signature");
    reply_done(&r);

    /* a vault refuses a Managed HSM token ... */
    t = entra_token("https://managedhsm.azure.net/", mi_oid(), 3600);
    call("GET", "/keys/nokey?api-version=7.4", t, NULL, &r);
    expect_error(&r, 401, "Unauthorized", "expected audience https://vault.azure.net");
    reply_done(&r);

    /* ... which a Managed HSM takes (with a trailing slash), refusing a vault token */
    assert_int_equal(
        json_object_set_new(g.ctx.config, "akv", json_pack("{s:s}", "flavor", "managedhsm")), 0);
    call("GET", "/keys/nokey?api-version=7.4", t, NULL, &r);
    expect_error(&r, 404, "KeyNotFound", "A key with (name/id) nokey was not found");
    reply_done(&r);
    free(t);
    t = entra_token("https://vault.azure.net", mi_oid(), 3600);
    call("GET", "/keys/nokey?api-version=7.4", t, NULL, &r);
    expect_error(&r, 401, "Unauthorized", "expected audience https://managedhsm.azure.net");
    reply_done(&r);
    free(t);
    assert_int_equal(json_object_del(g.ctx.config, "akv"), 0);
}

/* ---- keys API ------------------------------------------------------------------------------ */

static void
test_import_rsa(void **state)
{
    EVP_PKEY *k = NULL;
    _cleanup_(json_decrefp) json_t *jwk = rsa_private_jwk(&k);
    _cleanup_(json_decrefp) json_t *b = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf pol = { 0 };
    const json_t *key = NULL;
    const json_t *attrs = NULL;
    const char *kid = NULL;
    char prefix[200];

    (void)state;
    b = import_key("rsa-imported", jwk, true, policy_json(g.ctx.maa_url, "1.0", false));
    key = json_object_get(b, "key");
    attrs = json_object_get(b, "attributes");
    assert_string_equal(json_string_value(json_object_get(key, "kty")), "RSA-HSM");
    assert_string_equal(json_string_value(json_object_get(key, "n")),
                        json_string_value(json_object_get(jwk, "n")));
    assert_null(json_object_get(key, "d"));
    assert_null(json_object_get(key, "p"));
    assert_true(json_is_array(json_object_get(key, "key_ops")));
    kid = json_string_value(json_object_get(key, "kid"));
    (void)snprintf(prefix, sizeof(prefix), "%s/keys/rsa-imported/", g.ctx.akv_url);
    assert_non_null(kid);
    assert_memory_equal(kid, prefix, strlen(prefix));
    assert_int_equal(strlen(kid), strlen(prefix) + 32);
    assert_int_equal(strspn(kid + strlen(prefix), "0123456789abcdef"), 32);
    assert_true(json_is_true(json_object_get(attrs, "exportable")));
    assert_true(json_is_true(json_object_get(attrs, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(attrs, "recoverableDays")), 7);
    assert_string_equal(json_string_value(json_object_get(attrs, "recoveryLevel")),
                        "CustomizedRecoverable+Purgeable");
    assert_true(json_is_integer(json_object_get(attrs, "created")));
    /* the policy comes back normalised ("1.0" -> "1.0.0"), unpadded base64url */
    const json_t *rp = json_object_get(b, "release_policy");
    const char *data = json_string_value(json_object_get(rp, "data"));

    assert_string_equal(json_string_value(json_object_get(rp, "contentType")),
                        "application/json; charset=utf-8");
    assert_true(json_is_false(json_object_get(rp, "immutable")));
    assert_null(strchr(data, '='));
    skr_buf_init(&pol, 1u << 16);
    assert_int_equal(skr_b64_decode(skr_span_str(data), SKR_B64_URL, &pol), SKR_OK);
    assert_int_equal(skr_buf_append_byte(&pol, 0), SKR_OK);
    assert_non_null(strstr((const char *)pol.ptr, "\"version\":\"1.0.0\""));
    assert_non_null(strstr((const char *)pol.ptr, HOSTDATA));
    EVP_PKEY_free(k);
}

static void
test_import_rules(void **state)
{
    EVP_PKEY *k = NULL;
    _cleanup_(json_decrefp) json_t *jwk = rsa_private_jwk(&k);
    json_t *body = NULL;
    json_t *pub = NULL;
    struct reply r;

    (void)state;
    body = import_body(jwk, true, NULL);
    call("PUT", "/keys/bad1?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "AKV.SKR.1004");
    reply_done(&r);
    json_decref(body);

    body = import_body(jwk, false, policy_json(g.ctx.maa_url, "1.0.0", false));
    call("PUT", "/keys/bad1?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "AKV.SKR.1005");
    reply_done(&r);
    json_decref(body);

    /* an exportable software key (kty RSA without "hsm": true) is refused by a vault */
    body = import_body(jwk, true, policy_json(g.ctx.maa_url, "1.0.0", false));
    assert_int_equal(json_object_set_new(body, "hsm", json_false()), 0);
    call("PUT", "/keys/bad1?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "AKV.SKR.1006");
    reply_done(&r);
    json_decref(body);

    /* a policy without version */
    body =
        import_body(jwk, true, json_pack("{s:s}", "data", "eyJhbnlPZiI6W119")); /* {"anyOf":[]} */
    call("PUT", "/keys/bad1?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "Key Release Policy:");
    reply_done(&r);
    json_decref(body);

    /* exportable needs api-version >= 7.3 */
    body = import_body(jwk, true, policy_json(g.ctx.maa_url, "1.0.0", false));
    call("PUT", "/keys/bad1?api-version=7.2", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "AKV.SKR.1001");
    reply_done(&r);
    call("PUT", "/keys/bad1?api-version=9.9", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "is not recognized");
    reply_done(&r);
    call("PUT", "/keys/bad1", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "api-version");
    reply_done(&r);
    call("PUT", "/keys/bad_name?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "key name is invalid");
    reply_done(&r);
    json_decref(body);

    /* public part only */
    pub = json_deep_copy(jwk);
    assert_int_equal(json_object_del(pub, "d"), 0);
    body = import_body(pub, false, NULL);
    call("PUT", "/keys/bad1?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "private");
    reply_done(&r);
    json_decref(body);
    json_decref(pub);

    /* unknown kty, broken body */
    body = json_pack("{s:{s:s}}", "key", "kty", "DSA");
    call("PUT", "/keys/bad1?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "kty");
    reply_done(&r);
    json_decref(body);
    body = json_pack("{s:{s:s, s:s}}", "key", "kty", "oct-HSM", "k", "AAEC"); /* 3 bytes */
    call("PUT", "/keys/bad1?api-version=7.4", g.token, body, &r);
    expect_error(&r, 400, "BadParameter", "not supported");
    reply_done(&r);
    json_decref(body);

    /* none of these created the key */
    call("GET", "/keys/bad1?api-version=7.4", g.token, NULL, &r);
    expect_error(&r, 404, "KeyNotFound", "bad1");
    reply_done(&r);
    EVP_PKEY_free(k);
}

static void
test_create(void **state)
{
    _cleanup_(json_decrefp) json_t *oct = NULL;
    _cleanup_(json_decrefp) json_t *ec = NULL;
    _cleanup_(json_decrefp) json_t *bad = NULL;
    struct reply r;
    const json_t *key = NULL;

    (void)state;
    oct = json_pack("{s:s, s:i, s:{s:b}, s:o}", "kty", "oct-HSM", "key_size", 256, "attributes",
                    "exportable", 1, "release_policy", policy_json(g.ctx.maa_url, "1.0.0", false));
    call("POST", "/keys/oct-created/create?api-version=7.5", g.token, oct, &r);
    assert_int_equal(r.status, 200);
    key = json_object_get(r.body, "key");
    assert_string_equal(json_string_value(json_object_get(key, "kty")), "oct-HSM");
    assert_null(json_object_get(key, "k"));
    reply_done(&r);

    ec = json_pack("{s:s, s:s, s:[s,s], s:{s:b}, s:o}", "kty", "EC-HSM", "crv", "P-256", "key_ops",
                   "sign", "verify", "attributes", "exportable", 1, "release_policy",
                   policy_json(g.ctx.maa_url, "1.0.0", false));
    call("POST", "/keys/ec-created/create?api-version=7.4", g.token, ec, &r);
    assert_int_equal(r.status, 200);
    key = json_object_get(r.body, "key");
    assert_string_equal(json_string_value(json_object_get(key, "kty")), "EC-HSM");
    assert_string_equal(json_string_value(json_object_get(key, "crv")), "P-256");
    assert_int_equal(strlen(json_string_value(json_object_get(key, "x"))), 43);
    assert_null(json_object_get(key, "d"));
    assert_int_equal(json_array_size(json_object_get(key, "key_ops")), 2);
    reply_done(&r);

    bad = json_pack("{s:s, s:i}", "kty", "RSA-HSM", "key_size", 1024);
    call("POST", "/keys/bad2/create?api-version=7.4", g.token, bad, &r);
    expect_error(&r, 400, "BadParameter", "key_size");
    reply_done(&r);
    json_decref(bad);
    bad = json_pack("{s:s, s:s}", "kty", "EC-HSM", "crv", "P-256K");
    call("POST", "/keys/bad2/create?api-version=7.4", g.token, bad, &r);
    expect_error(&r, 400, "BadParameter", "crv");
    reply_done(&r);
    json_decref(bad);
    bad = json_pack("{s:s, s:[s]}", "kty", "RSA-HSM", "key_ops", "fly");
    call("POST", "/keys/bad2/create?api-version=7.4", g.token, bad, &r);
    expect_error(&r, 400, "BadParameter", "key_ops");
    reply_done(&r);
}

static void
test_get(void **state)
{
    EVP_PKEY *k = NULL;
    _cleanup_(json_decrefp) json_t *jwk = rsa_private_jwk(&k);
    _cleanup_(json_decrefp) json_t *b1 = NULL;
    _cleanup_(json_decrefp) json_t *b2 = NULL;
    struct reply r;
    char path[300];
    const char *kid1 = NULL;

    (void)state;
    b1 = import_key("versioned", jwk, false, NULL);
    b2 = import_key("versioned", jwk, false, NULL);
    kid1 = json_string_value(json_object_get(json_object_get(b1, "key"), "kid"));
    assert_string_not_equal(kid1,
                            json_string_value(json_object_get(json_object_get(b2, "key"), "kid")));
    /* no version: the newest */
    call("GET", "/keys/versioned?api-version=7.4", g.token, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_equal(json_object_get(r.body, "key"), json_object_get(b2, "key")));
    assert_null(json_object_get(r.body, "release_policy"));
    reply_done(&r);
    /* an older version by id */
    (void)snprintf(path, sizeof(path), "/keys/versioned/%s?api-version=7.4",
                   kid1 + strlen(kid1) - 32);
    call("GET", path, g.token, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_equal(json_object_get(r.body, "key"), json_object_get(b1, "key")));
    reply_done(&r);
    call("GET", "/keys/versioned/0123456789abcdef0123456789abcdef?api-version=7.4", g.token, NULL,
         &r);
    expect_error(&r, 404, "KeyNotFound", "versioned/0123456789abcdef0123456789abcdef");
    reply_done(&r);
    call("GET", "/keys/missing?api-version=7.4", g.token, NULL, &r);
    expect_error(&r, 404, "KeyNotFound",
                 "A key with (name/id) missing was not found in this key "
                 "vault");
    reply_done(&r);
    call("DELETE", "/keys/versioned?api-version=7.4", g.token, NULL, &r);
    assert_int_equal(r.status, 405);
    reply_done(&r);
    call("GET", "/secrets/x?api-version=7.4", g.token, NULL, &r);
    assert_int_equal(r.status, 404);
    reply_done(&r);
    EVP_PKEY_free(k);
}

static void
test_patch(void **state)
{
    EVP_PKEY *k = NULL;
    _cleanup_(json_decrefp) json_t *jwk = rsa_private_jwk(&k);
    _cleanup_(json_decrefp) json_t *b = NULL;
    _cleanup_(json_decrefp) json_t *upd = NULL;
    struct reply r;
    const char *old_data = NULL;

    (void)state;
    json_decref(import_key("mutable", jwk, true, policy_json(g.ctx.maa_url, "1.0.0", false)));
    upd =
        json_pack("{s:o}", "release_policy", policy_json("https://other.example", "1.0.0", false));
    call("PATCH", "/keys/mutable?api-version=7.4", g.token, upd, &r);
    assert_int_equal(r.status, 200);
    reply_done(&r);

    b = import_key("frozen", jwk, true, policy_json(g.ctx.maa_url, "1.0.0", true));
    old_data = json_string_value(json_object_get(json_object_get(b, "release_policy"), "data"));
    assert_true(json_is_true(json_object_get(json_object_get(b, "release_policy"), "immutable")));
    call("PATCH", "/keys/frozen?api-version=7.4", g.token, upd, &r);
    expect_error(&r, 400, "BadParameter", "AKV.SKR.1020");
    reply_done(&r);
    call("GET", "/keys/frozen?api-version=7.4", g.token, NULL, &r);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.body, "release_policy"), "data")),
        old_data);
    reply_done(&r);
    /* exportable cannot change */
    json_decref(upd);
    upd = json_pack("{s:{s:b}}", "attributes", "exportable", 0);
    call("PATCH", "/keys/mutable?api-version=7.4", g.token, upd, &r);
    expect_error(&r, 400, "BadParameter", "AKV.SKR.1003");
    reply_done(&r);
    EVP_PKEY_free(k);
}

/* ---- release ----------------------------------------------------------------------------- */

/* Checks the JWS and returns its payload (new reference). */
static json_t *
check_release_jws(const char *value)
{
    struct skr_jws jws;
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *chain = NULL;
    _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
    _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    X509 *leaf = NULL;
    bool present = false;
    json_t *claims = NULL;

    assert_int_equal(skr_jws_parse(skr_span_str(value), &jws), SKR_OK);
    assert_int_equal(skr_jws_x5c(&jws, &chain), SKR_OK);
    leaf = sk_X509_value(chain, 0);
    assert_int_equal(skr_jws_verify(&jws, X509_get0_pubkey(leaf)), SKR_OK);
    assert_int_equal(skr_jws_check_x5t(&jws, leaf, &present), SKR_OK);
    assert_true(present);
    assert_string_equal(json_string_value(json_object_get(jws.header, "kid")),
                        json_string_value(json_object_get(jws.header, "x5t#S256")));
    /* the leaf is issued by the emulator's CA for 127.0.0.1 */
    assert_int_equal(X509_STORE_add_cert(store, g.ctx.ca), 1);
    assert_int_equal(X509_STORE_CTX_init(sctx, store, leaf, NULL), 1);
    assert_int_equal(X509_verify_cert(sctx), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    claims = json_incref(jws.claims);
    skr_jws_done(&jws);
    return claims;
}

/* Releases name; on 200 checks the JWS and returns the unwrapped key material. */
static struct skr_secret *
release(const char *name, const char *enc, const char *nonce, const char *target,
        enum skr_kw_alg alg, json_t **ret_payload)
{
    _cleanup_(json_decrefp) json_t *body = json_pack("{s:s}", "target", target);
    _cleanup_(json_decrefp) json_t *payload = NULL;
    _cleanup_(json_decrefp) json_t *hsm = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf tmp = { 0 };
    struct skr_secret *plain = NULL;
    struct reply r;
    char path[200];
    const json_t *req = NULL;
    const json_t *key = NULL;

    if (enc != NULL) {
        assert_int_equal(json_object_set_new(body, "enc", json_string(enc)), 0);
    }
    if (nonce != NULL) {
        assert_int_equal(json_object_set_new(body, "nonce", json_string(nonce)), 0);
    }
    (void)snprintf(path, sizeof(path), "/keys/%s/release?api-version=7.4", name);
    call("POST", path, g.token, body, &r);
    if (r.status != 200) {
        fail_msg("release %s: %ld %s", name, r.status, err_msg(&r));
    }
    payload = check_release_jws(json_string_value(json_object_get(r.body, "value")));
    reply_done(&r);
    req = json_object_get(payload, "request");
    key = json_object_get(json_object_get(json_object_get(payload, "response"), "key"), "key");
    assert_string_equal(json_string_value(json_object_get(req, "api-version")), "7.4");
    assert_string_equal(json_string_value(json_object_get(req, "enc")), skr_kw_alg_name(alg));
    assert_string_equal(json_string_value(json_object_get(req, "kid")),
                        json_string_value(json_object_get(key, "kid")));
    if (nonce != NULL) {
        assert_string_equal(json_string_value(json_object_get(req, "nonce")), nonce);
    } else {
        assert_null(json_object_get(req, "nonce"));
    }
    /* key_hsm */
    skr_buf_init(&tmp, 1u << 18);
    assert_int_equal(
        skr_b64_decode(skr_span_str(json_string_value(json_object_get(key, "key_hsm"))),
                       SKR_B64_URL, &tmp),
        SKR_OK);
    assert_int_equal(skr_json_parse(skr_buf_span(&tmp), 1u << 18, &hsm), SKR_OK);
    assert_string_equal(json_string_value(json_object_get(hsm, "schema_version")), "1.0");
    assert_string_equal(json_string_value(json_object_get(json_object_get(hsm, "header"), "alg")),
                        "dir");
    assert_string_equal(json_string_value(json_object_get(json_object_get(hsm, "header"), "enc")),
                        skr_kw_alg_name(alg));
    assert_string_equal(json_string_value(json_object_get(json_object_get(hsm, "header"), "kid")),
                        json_string_value(json_object_get(g.transfer_jwk, "kid")));
    skr_buf_reset(&tmp);
    assert_int_equal(
        skr_b64_decode(skr_span_str(json_string_value(json_object_get(hsm, "ciphertext"))),
                       SKR_B64_URL, &tmp),
        SKR_OK);
    assert_int_equal(skr_rsa_aes_unwrap(g.transfer, alg, skr_buf_span(&tmp), &plain), SKR_OK);
    if (ret_payload != NULL) {
        *ret_payload = TAKE_PTR(payload);
    }
    return plain;
}

static void
test_release_rsa(void **state)
{
    static const struct {
        const char *enc;
        enum skr_kw_alg alg;
    } cases[] = {
        { NULL, SKR_KW_CKM_RSA_AES_KEY_WRAP },
        { "CKM_RSA_AES_KEY_WRAP", SKR_KW_CKM_RSA_AES_KEY_WRAP },
        { "RSA_AES_KEY_WRAP_256", SKR_KW_RSA_AES_KEY_WRAP_256 },
        { "RSA_AES_KEY_WRAP_384", SKR_KW_RSA_AES_KEY_WRAP_384 },
    };
    EVP_PKEY *k = NULL;
    _cleanup_(json_decrefp) json_t *jwk = rsa_private_jwk(&k);
    char *target = good_maa_token();

    (void)state;
    json_decref(import_key("rsa-rel", jwk, true, policy_json(g.ctx.maa_url, "1.0.0", false)));
    for (size_t i = 0; i < SKR_ARRAY_LEN(cases); i++) {
        _cleanup_(json_decrefp) json_t *payload = NULL;
        struct skr_secret *plain = release("rsa-rel", cases[i].enc, i == 2 ? "nonce-123" : NULL,
                                           target, cases[i].alg, &payload);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *got = NULL;
        const json_t *bundle = json_object_get(json_object_get(payload, "response"), "key");

        assert_int_equal(skr_kw_pkcs8_to_pkey(skr_secret_span(plain), &got), SKR_OK);
        bn_eq(got, k, OSSL_PKEY_PARAM_RSA_N);
        bn_eq(got, k, OSSL_PKEY_PARAM_RSA_D);
        skr_secret_free(plain);
        assert_string_equal(json_string_value(json_object_get(json_object_get(bundle, "key"), "n")),
                            json_string_value(json_object_get(jwk, "n")));
        assert_true(
            json_is_true(json_object_get(json_object_get(bundle, "attributes"), "exportable")));
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(bundle, "release_policy"), "contentType")),
                            "application/json; charset=utf-8");
    }
    free(target);
    EVP_PKEY_free(k);
}

static void
test_release_oct_and_ec(void **state)
{
    static const uint8_t secret[32] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                        12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                        23, 24, 25, 26, 27, 28, 29, 30, 31, 0 };
    _cleanup_(json_decrefp) json_t *oct = NULL;
    _cleanup_(json_decrefp) json_t *ec = NULL;
    _cleanup_(json_decrefp) json_t *payload = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *got = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
    struct skr_secret *plain = NULL;
    char *target = good_maa_token();
    struct reply r;

    (void)state;
    assert_int_equal(skr_jwk_oct_new(skr_span_make(secret, sizeof(secret)), &oct), SKR_OK);
    assert_int_equal(json_object_set_new(oct, "kty", json_string("oct-HSM")), 0);
    json_decref(import_key("oct-rel", oct, true, policy_json(g.ctx.maa_url, "1.0.0", false)));
    plain =
        release("oct-rel", "RSA_AES_KEY_WRAP_256", NULL, target, SKR_KW_RSA_AES_KEY_WRAP_256, NULL);
    assert_int_equal(plain->len, sizeof(secret));
    assert_memory_equal(plain->ptr, secret, sizeof(secret));
    skr_secret_free(plain);

    /* EC-HSM created by the emulator: the released PKCS#8 matches the public key */
    ec = json_pack("{s:s, s:s, s:{s:b}, s:o}", "kty", "EC-HSM", "crv", "P-384", "attributes",
                   "exportable", 1, "release_policy", policy_json(g.ctx.maa_url, "1.0.0", false));
    call("POST", "/keys/ec-rel/create?api-version=7.4", g.token, ec, &r);
    assert_int_equal(r.status, 200);
    reply_done(&r);
    plain = release("ec-rel", NULL, NULL, target, SKR_KW_CKM_RSA_AES_KEY_WRAP, &payload);
    assert_int_equal(skr_kw_pkcs8_to_pkey(skr_secret_span(plain), &got), SKR_OK);
    skr_secret_free(plain);
    {
        json_t *k = json_deep_copy(
            json_object_get(json_object_get(json_object_get(payload, "response"), "key"), "key"));

        assert_int_equal(json_object_set_new(k, "kty", json_string("EC")), 0);
        assert_int_equal(json_object_del(k, "key_hsm"), 0);
        assert_int_equal(skr_jwk_to_pkey(k, &pub), SKR_OK);
        json_decref(k);
    }
    assert_int_equal(EVP_PKEY_eq(got, pub), 1);
    assert_int_equal(skr_secret_live(), 0);
    free(target);
}

static void
expect_release_error(const char *name, const char *target, const char *token, long status,
                     const char *code, const char *needle)
{
    _cleanup_(json_decrefp) json_t *body = json_pack("{s:s}", "target", target);
    struct reply r;
    char path[200];

    (void)snprintf(path, sizeof(path), "/keys/%s/release?api-version=7.4", name);
    call("POST", path, token, body, &r);
    expect_error(&r, status, code, needle);
    reply_done(&r);
}

static void
test_release_denied(void **state)
{
    EVP_PKEY *k = NULL;
    _cleanup_(json_decrefp) json_t *jwk = rsa_private_jwk(&k);
    char *t = NULL;
    char *other = NULL;
    char msg[200];

    (void)state;
    json_decref(import_key("deny", jwk, true, policy_json(g.ctx.maa_url, "1.0.0", false)));
    json_decref(import_key("not-exportable", jwk, false, NULL));

    /* mismatched claim: the message names it */
    t = maa_token(g.ctx.maa_key, g.ctx.maa_url, "00", 3600, true);
    expect_release_error("deny", t, g.token, 403, "Forbidden",
                         "Target environment attestation statement cannot be verified.");
    expect_release_error("deny", t, g.token, 403, "Forbidden", "x-ms-sevsnpvm-hostdata");
    free(t);

    /* expired */
    t = maa_token(g.ctx.maa_key, g.ctx.maa_url, HOSTDATA, -3600, true);
    expect_release_error("deny", t, g.token, 403, "Forbidden", "expired");
    free(t);

    /* another authority */
    t = maa_token(g.ctx.maa_key, "https://sharedeus.eus.attest.azure.net", HOSTDATA, 3600, true);
    expect_release_error("deny", t, g.token, 403, "Forbidden",
                         "no authority matches issuer https://sharedeus.eus.attest.azure.net");
    free(t);

    /* metadata that sends the key fetch to another host (the issuer's key is cached by now:
     * forget it so that the metadata is fetched again) */
    emu_akv_forget_issuer_keys(&g.ctx);
    g_jwks_elsewhere = true;
    t = maa_token(g.ctx.maa_key, g.ctx.maa_url, HOSTDATA, 3600, true);
    expect_release_error("deny", t, g.token, 403, "Forbidden", "not on the issuer's host");
    free(t);
    g_jwks_elsewhere = false;

    /* signed by a key the issuer does not publish */
    t = maa_token(g.transfer, g.ctx.maa_url, HOSTDATA, 3600, true);
    expect_release_error("deny", t, g.token, 403, "Forbidden", "signature");
    free(t);

    /* no wrapping key in x-ms-runtime */
    t = maa_token(g.ctx.maa_key, g.ctx.maa_url, HOSTDATA, 3600, false);
    expect_release_error("deny", t, g.token, 403, "Forbidden", "x-ms-runtime.keys");
    free(t);

    /* not a JWT; not exportable; unknown key; other identity */
    expect_release_error("deny", "not-a-jwt", g.token, 400, "BadParameter", "target");
    t = good_maa_token();
    expect_release_error("not-exportable", t, g.token, 400, "BadParameter", "not exportable");
    expect_release_error("nope", t, g.token, 404, "KeyNotFound", "nope");
    other = entra_token("https://vault.azure.net", "00000000-0000-0000-0000-000000000001", 3600);
    expect_release_error("deny", t, other, 403, "Forbidden", "Operation release is not allowed");
    (void)snprintf(msg, sizeof(msg), "enc");
    {
        _cleanup_(json_decrefp) json_t *body =
            json_pack("{s:s, s:s}", "target", t, "enc", "RSA_OAEP");
        struct reply r;

        call("POST", "/keys/deny/release?api-version=7.4", g.token, body, &r);
        expect_error(&r, 400, "BadParameter", msg);
        reply_done(&r);
        call("POST", "/keys/deny/release?api-version=7.2", g.token, body, &r);
        expect_error(&r, 400, "BadParameter", "AKV.SKR.1001");
        reply_done(&r);
    }
    free(other);
    free(t);
    EVP_PKEY_free(k);
}

/* ---- durability --------------------------------------------------------------------------- */

static void
test_store_survives(void **state)
{
    EVP_PKEY *k = NULL;
    _cleanup_(json_decrefp) json_t *jwk = rsa_private_jwk(&k);
    _cleanup_(json_decrefp) json_t *b = NULL;
    struct emu_ctx ctx2;
    struct skr_http_server *srv = NULL;
    struct reply r;
    char url[sizeof(ctx2.akv_url)];
    char path[400];
    struct stat st;

    (void)state;
    b = import_key("durable", jwk, true, policy_json(g.ctx.maa_url, "1.0.0", false));
    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, EMU_KEY_STORE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(emu_ctx_load(g.dir, &ctx2), SKR_OK);
    srv = start_server(&ctx2, emu_akv_handle);
    (void)snprintf(url, sizeof(url), "https://127.0.0.1:%u", skr_http_server_port(srv));
    (void)snprintf(ctx2.akv_url, sizeof(ctx2.akv_url), "%s", url);
    call_at(url, "GET", "/keys/durable?api-version=7.4", g.token, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.body, "key"), "n")),
                        json_string_value(json_object_get(jwk, "n")));
    assert_true(json_equal(json_object_get(r.body, "release_policy"),
                           json_object_get(b, "release_policy")));
    reply_done(&r);
    skr_http_server_stop(srv);
    emu_ctx_done(&ctx2);
    EVP_PKEY_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_bearer),
        cmocka_unit_test(test_bad_tokens),
        cmocka_unit_test(test_import_rsa),
        cmocka_unit_test(test_import_rules),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_release_rsa),
        cmocka_unit_test(test_release_oct_and_ec),
        cmocka_unit_test(test_release_denied),
        cmocka_unit_test(test_store_survives),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
