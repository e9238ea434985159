/*
 * test_emu_maa.c - the MAA emulator (src/emu/maa.c) behind a real TLS loopback server, driven
 * with the HTTP client trusting DIR/ca.pem.
 *
 * The group setup runs `skr-emu init` once (RSA-4096 keys take seconds), loads the context,
 * creates a second software platform (its chain is "another platform"), starts the server and
 * opens the emulated platform of DIR/snp, whose reports carry
 * REPORT_DATA = SHA-256(runtime data) || 32 zero bytes.
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
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "hex.h"
#include "http_client.h"
#include "http_server.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "service.h"
#include "snp_emu.h"
#include "snp_report.h"
#include "tdata.h"

extern char **environ;

#define RUNTIME_JSON                                                                               \
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"TransferKey\",\"key_ops\":[\"encrypt\"],"               \
    "\"e\":\"AQAB\",\"n\":\"2x8\"}],\"zeta\":1,\"alpha\":true}"

static char g_root[64];
static char g_dir[128];
static char g_other[128];
static struct emu_ctx g_ctx;
static struct skr_http_server *g_srv;
static struct skr_http_client *g_cli;
static struct skr_snp_emu *g_emu;
static struct skr_buf g_chain;       /* PEM VCEK + ASK + ARK of DIR/snp */
static struct skr_buf g_other_chain; /* PEM chain of another platform */
static struct skr_buf g_policy;      /* the security policy: SHA-256 is HOST_DATA */

/* ---- setup ------------------------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
run_init(const char *dir)
{
    const char *bd = getenv("SKR_BUILD_DIR");
    char exe[512];
    char a_init[] = "init";
    char a_dir[256];
    char *argv[4];
    pid_t pid;
    int status;

    if (bd == NULL || snprintf(exe, sizeof(exe), "%s/src/skr-emu", bd) >= (int)sizeof(exe)) {
        return -1;
    }
    if (snprintf(a_dir, sizeof(a_dir), "%s", dir) >= (int)sizeof(a_dir)) {
        return -1;
    }
    argv[0] = exe;
    argv[1] = a_init;
    argv[2] = a_dir;
    argv[3] = NULL;
    if (posix_spawn(&pid, exe, NULL, NULL, argv, environ) != 0) {
        return -1;
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return -1;
    }
    return 0;
}

static int
read_policy(void)
{
    char path[256];
    struct skr_buf b64;

    skr_buf_init(&b64, 1u << 20);
    skr_buf_init(&g_policy, 1u << 20);
    snprintf(path, sizeof(path), "%s/security-context/security-policy-base64", g_dir);
    if (skr_read_file(path, &b64) != SKR_OK ||
        skr_b64_decode(skr_buf_span(&b64), SKR_B64_STD | SKR_B64_SKIP_WS, &g_policy) != SKR_OK) {
        skr_buf_done(&b64);
        return -1;
    }
    skr_buf_done(&b64);
    return 0;
}

static int
setup(void **state)
{
    struct skr_snp_emu_params other = { 0 };
    struct skr_snp_emu *oe = NULL;
    char cert[256];
    char key[256];
    char ca[256];
    struct skr_http_server_cfg cfg = { .handler = emu_maa_handle, .handler_ctx = &g_ctx };
    struct skr_http_client_opts o;

    (void)state;
    snprintf(g_root, sizeof(g_root), "/tmp/skr-test-maa-XXXXXX");
    if (mkdtemp(g_root) == NULL) {
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "%s/emu", g_root);
    snprintf(g_other, sizeof(g_other), "%s/other", g_root);
    if (run_init(g_dir) != 0) {
        fprintf(stderr, "skr-emu init failed\n");
        return -1;
    }
    if (emu_ctx_load(g_dir, &g_ctx) != SKR_OK) {
        fprintf(stderr, "emu_ctx_load: %s\n", skr_err_detail());
        return -1;
    }
    if (skr_snp_emu_create(g_other, &other) != SKR_OK || skr_snp_emu_open(g_other, &oe) != SKR_OK) {
        fprintf(stderr, "other platform: %s\n", skr_err_detail());
        return -1;
    }
    skr_buf_init(&g_other_chain, 1u << 16);
    skr_buf_init(&g_chain, 1u << 16);
    if (skr_snp_emu_chain_pem(oe, &g_other_chain) != SKR_OK) {
        skr_snp_emu_free(oe);
        return -1;
    }
    skr_snp_emu_free(oe);
    if (skr_snp_emu_open(g_dir, &g_emu) != SKR_OK ||
        skr_snp_emu_chain_pem(g_emu, &g_chain) != SKR_OK || read_policy() != 0) {
        fprintf(stderr, "platform: %s\n", skr_err_detail());
        return -1;
    }
    snprintf(cert, sizeof(cert), "%s/tls.pem", g_dir);
    snprintf(key, sizeof(key), "%s/tls.key", g_dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", g_dir);
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    if (skr_http_server_start(&cfg, &g_srv) != SKR_OK) {
        fprintf(stderr, "server: %s\n", skr_err_detail());
        return -1;
    }
    snprintf(g_ctx.maa_url, sizeof(g_ctx.maa_url), "https://127.0.0.1:%u",
             (unsigned)skr_http_server_port(g_srv));
    skr_http_client_opts_init(&o);
    o.ca_file = ca;
    o.retries = 0;
    if (skr_http_client_new(&o, &g_cli) != SKR_OK) {
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    skr_http_client_free(g_cli);
    skr_http_server_stop(g_srv);
    skr_snp_emu_free(g_emu);
    emu_ctx_done(&g_ctx);
    skr_buf_done(&g_chain);
    skr_buf_done(&g_other_chain);
    skr_buf_done(&g_policy);
    return nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- request building --------------------------------------------------------------------- */

/* base64url of in (padded or not) as a malloc'd C string. */
static char *
b64u(struct skr_span in, bool pad)
{
    struct skr_buf b;
    const char *s;
    char *r;

    skr_buf_init(&b, 1u << 20);
    assert_int_equal(skr_b64_encode(in, SKR_B64_URL | (pad ? SKR_B64_PAD : 0), &b), SKR_OK);
    assert_int_equal(skr_buf_cstr(&b, &s), SKR_OK);
    r = strdup(s);
    assert_non_null(r);
    skr_buf_done(&b);
    return r;
}

/* A report of DIR/snp with REPORT_DATA = SHA-256(data) || zero. */
static void
make_report(struct skr_span data, uint8_t out[SKR_SNP_REPORT_LEN])
{
    uint8_t rd[64] = { 0 };
    struct skr_buf b;

    SHA256(data.ptr, data.len, rd);
    skr_buf_init(&b, 4096);
    assert_int_equal(skr_snp_emu_report(g_emu, rd, 0, &b), SKR_OK);
    assert_int_equal(b.len, SKR_SNP_REPORT_LEN);
    memcpy(out, b.ptr, SKR_SNP_REPORT_LEN);
    skr_buf_done(&b);
}

struct req {
    struct skr_span report; /* raw report bytes (any length) */
    struct skr_span chain;  /* PEM */
    bool pad;
    bool pretty;              /* bundle with whitespace, as the REST example */
    const char *endorsements; /* raw JSON text, or NULL */
    struct skr_span runtime;
    const char *runtime_type;
    struct skr_span init;
    const char *init_type; /* NULL: no initTimeData; "" : SCC's empty one */
    json_t *nonce;         /* stolen; NULL: none */
};

/* The request body as text (malloc'd). */
static char *
build_body(const struct req *q)
{
    char *rep = b64u(q->report, q->pad);
    char *chain = b64u(q->chain, q->pad);
    char *rt = b64u(q->runtime, q->pad);
    json_t *bundle = json_pack("{s:s, s:s}", "SnpReport", rep, "VcekCertChain", chain);
    json_t *body;
    char *bundle_txt;
    char *bundle_b64;
    char *out;

    assert_non_null(bundle);
    if (q->endorsements != NULL) {
        char *e = b64u(skr_span_str(q->endorsements), q->pad);

        json_object_set_new(bundle, "Endorsements", json_string(e));
        free(e);
    }
    bundle_txt = json_dumps(bundle, q->pretty ? JSON_INDENT(8) : JSON_COMPACT);
    assert_non_null(bundle_txt);
    bundle_b64 = b64u(skr_span_str(bundle_txt), q->pad);
    body = json_pack("{s:s, s:{s:s, s:s}}", "report", bundle_b64, "runtimeData", "data", rt,
                     "dataType", q->runtime_type != NULL ? q->runtime_type : "JSON");
    assert_non_null(body);
    if (q->init_type != NULL) {
        char *it = b64u(q->init, q->pad);

        json_object_set_new(body, "initTimeData",
                            json_pack("{s:s, s:s}", "data", it, "dataType", q->init_type));
        free(it);
    }
    if (q->nonce != NULL) {
        json_object_set_new(body, "nonce", q->nonce);
    }
    out = json_dumps(body, JSON_COMPACT);
    assert_non_null(out);
    json_decref(body);
    json_decref(bundle);
    free(bundle_txt);
    free(bundle_b64);
    free(rep);
    free(chain);
    free(rt);
    return out;
}

/* A default request for report raw (the caller may change members). */
static struct req
default_req(const uint8_t raw[SKR_SNP_REPORT_LEN])
{
    return (struct req){
        .report = skr_span_make(raw, SKR_SNP_REPORT_LEN),
        .chain = skr_buf_span(&g_chain),
        .pad = true,
        .runtime = skr_span_str(RUNTIME_JSON),
        .runtime_type = "JSON",
    };
}

struct resp {
    long status;
    json_t *body;
};

static struct resp
send_raw(const char *method, const char *path_query, struct skr_span body)
{
    static const char *const hdrs[] = { "Content-Type: application/json", NULL };
    struct skr_http_reply r = { 0 };
    struct resp out = { 0 };
    char url[512];

    snprintf(url, sizeof(url), "%s%s", g_ctx.maa_url, path_query);
    if (skr_http_request(g_cli, method, url, hdrs, body, &r) != SKR_OK) {
        fail_msg("%s %s: %s", method, path_query, skr_err_msg());
    }
    out.status = r.status;
    out.body = json_loadb((const char *)r.body.ptr, r.body.len, 0, NULL);
    skr_http_reply_done(&r);
    return out;
}

static struct resp
post_req(const char *path_query, const struct req *q)
{
    char *body = build_body(q);
    struct resp r = send_raw("POST", path_query, skr_span_str(body));

    free(body);
    return r;
}

#define ATTEST "/attest/SevSnpVm?api-version=2022-08-01"

/* The reply is a 400 MAA error whose message contains needle. */
static void
expect_error(struct resp r, long status, const char *code, const char *needle)
{
    const char *c = json_string_value(json_object_get(json_object_get(r.body, "error"), "code"));
    const char *m = json_string_value(json_object_get(json_object_get(r.body, "error"), "message"));

    if (r.status != status || c == NULL || m == NULL) {
        char *d = r.body != NULL ? json_dumps(r.body, 0) : NULL;

        fail_msg("want %ld, got %ld %s", status, r.status, d != NULL ? d : "(no JSON)");
    }
    if (code != NULL) {
        assert_string_equal(c, code);
    }
    if (strstr(m, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", m, needle);
    }
    json_decref(r.body);
}

static void
expect_400(const struct req *q, const char *needle)
{
    expect_error(post_req(ATTEST, q), 400, "InvalidParameter", needle);
}

/* ---- token checks ------------------------------------------------------------------------- */

/* The MAA signing key, as a client finds it: GET /certs, x5c[0]. */
static EVP_PKEY *
signer_from_certs(void)
{
    struct resp r = send_raw("GET", "/certs", skr_span_make(NULL, 0));
    json_t *k = json_array_get(json_object_get(r.body, "keys"), 0);
    const char *x5c = json_string_value(json_array_get(json_object_get(k, "x5c"), 0));
    struct skr_buf der;
    const unsigned char *p;
    X509 *x;
    EVP_PKEY *pk;

    assert_int_equal(r.status, 200);
    assert_non_null(x5c);
    skr_buf_init(&der, 1u << 16);
    assert_int_equal(skr_b64_decode(skr_span_str(x5c), SKR_B64_STD, &der), SKR_OK);
    p = der.ptr;
    x = d2i_X509(NULL, &p, (long)der.len);
    assert_non_null(x);
    pk = X509_get_pubkey(x);
    assert_non_null(pk);
    X509_free(x);
    skr_buf_done(&der);
    json_decref(r.body);
    return pk;
}

static void
want_type(const json_t *claims, const char *name, json_type type)
{
    const json_t *v = json_object_get(claims, name);

    if (v == NULL) {
        fail_msg("claim %s missing", name);
    }
    if (type == JSON_TRUE) {
        assert_true(json_is_boolean(v));
    } else if (json_typeof(v) != type) {
        fail_msg("claim %s has JSON type %d, want %d", name, json_typeof(v), type);
    }
}

static void
want_hex(const json_t *claims, const char *name, const uint8_t *p, size_t n)
{
    char hex[260];

    assert_true(2 * n + 1 <= sizeof(hex));
    skr_hex_fmt(p, n, hex);
    want_type(claims, name, JSON_STRING);
    assert_string_equal(json_string_value(json_object_get(claims, name)), hex);
}

/* Verifies the token of a 200 reply and returns its claims (new reference). */
static json_t *
token_claims(struct resp r)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    EVP_PKEY *pk;
    const char *tok;
    char jku[160];
    json_t *claims;

    if (r.status != 200) {
        char *d = r.body != NULL ? json_dumps(r.body, 0) : NULL;

        fail_msg("attest: %ld %s", r.status, d != NULL ? d : "(no JSON)");
    }
    tok = json_string_value(json_object_get(r.body, "token"));
    assert_non_null(tok);
    assert_int_equal(json_object_size(r.body), 1);
    assert_int_equal(skr_jws_parse(skr_span_str(tok), &jws), SKR_OK);
    pk = signer_from_certs();
    assert_int_equal(skr_jws_verify(&jws, pk), SKR_OK);
    EVP_PKEY_free(pk);
    assert_string_equal(jws.alg, "RS256");
    assert_string_equal(json_string_value(json_object_get(jws.header, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(jws.header, "kid")), g_ctx.maa_kid);
    snprintf(jku, sizeof(jku), "%s/certs", g_ctx.maa_url);
    assert_string_equal(json_string_value(json_object_get(jws.header, "jku")), jku);
    assert_int_equal(json_object_size(jws.header), 4);
    assert_non_null(jws.claims);
    claims = json_incref(jws.claims);
    json_decref(r.body);
    return claims;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void
test_happy_path(void **state)
{
    uint8_t raw[SKR_SNP_REPORT_LEN];
    struct skr_snp_report rep;
    struct skr_snp_tcb tcb;
    struct req q;
    json_t *c;
    json_t *want_rt;
    const char *jti;
    const struct skr_snp_emu_params *pp = skr_snp_emu_params(g_emu);
    static const char *const strings[] = {
        "iss", "jti", "nonce", "x-ms-ver", "x-ms-attestation-type", "x-ms-policy-hash",
    };

    (void)state;
    make_report(skr_span_str(RUNTIME_JSON), raw);
    assert_int_equal(skr_snp_report_parse(skr_span_make(raw, sizeof(raw)), &rep), SKR_OK);
    q = default_req(raw);
    q.nonce = json_string("nonce-123");
    c = token_claims(post_req(ATTEST, &q));

    for (size_t i = 0; i < SKR_ARRAY_LEN(strings); i++) {
        want_type(c, strings[i], JSON_STRING);
    }
    assert_string_equal(json_string_value(json_object_get(c, "iss")), g_ctx.maa_url);
    assert_string_equal(json_string_value(json_object_get(c, "nonce")), "nonce-123");
    assert_string_equal(json_string_value(json_object_get(c, "x-ms-ver")), "1.0");
    assert_string_equal(json_string_value(json_object_get(c, "x-ms-attestation-type")), "sevsnpvm");
    /* no endorsement vouches for the UVM: no compliance claim, as MAA */
    assert_null(json_object_get(c, "x-ms-compliance-status"));
    assert_int_equal(strlen(json_string_value(json_object_get(c, "x-ms-policy-hash"))), 43);
    jti = json_string_value(json_object_get(c, "jti"));
    assert_int_equal(strlen(jti), 64);
    assert_int_equal(strspn(jti, "0123456789abcdef"), 64);

    want_type(c, "iat", JSON_INTEGER);
    want_type(c, "nbf", JSON_INTEGER);
    want_type(c, "exp", JSON_INTEGER);
    assert_int_equal(json_integer_value(json_object_get(c, "nbf")),
                     json_integer_value(json_object_get(c, "iat")));
    assert_int_equal(json_integer_value(json_object_get(c, "exp")) -
                         json_integer_value(json_object_get(c, "iat")),
                     28800);

    /* x-ms-runtime is the runtime JSON, re-serialized with sorted keys */
    want_type(c, "x-ms-runtime", JSON_OBJECT);
    want_rt = json_loads(RUNTIME_JSON, 0, NULL);
    assert_true(json_equal(json_object_get(c, "x-ms-runtime"), want_rt));
    json_decref(want_rt);
    assert_string_equal(json_object_iter_key(json_object_iter(json_object_get(c, "x-ms-runtime"))),
                        "alpha");
    assert_null(json_object_get(c, "x-ms-inittime"));

    /* report claims */
    skr_snp_tcb_decode(rep.reported_tcb, SKR_SNP_PRODUCT_MILAN, &tcb);
    want_hex(c, "x-ms-sevsnpvm-authorkeydigest", rep.author_key_digest, 48);
    want_hex(c, "x-ms-sevsnpvm-familyId", rep.family_id, 16);
    want_hex(c, "x-ms-sevsnpvm-hostdata", pp->host_data, 32);
    want_hex(c, "x-ms-sevsnpvm-idkeydigest", rep.id_key_digest, 48);
    want_hex(c, "x-ms-sevsnpvm-imageId", rep.image_id, 16);
    want_hex(c, "x-ms-sevsnpvm-launchmeasurement", pp->measurement, 48);
    want_hex(c, "x-ms-sevsnpvm-reportdata", rep.report_data, 64);
    want_hex(c, "x-ms-sevsnpvm-reportid", rep.report_id, 32);
    want_type(c, "x-ms-sevsnpvm-is-debuggable", JSON_TRUE);
    want_type(c, "x-ms-sevsnpvm-migration-allowed", JSON_TRUE);
    want_type(c, "x-ms-sevsnpvm-smt-allowed", JSON_TRUE);
    assert_false(json_is_true(json_object_get(c, "x-ms-sevsnpvm-is-debuggable")));
    assert_false(json_is_true(json_object_get(c, "x-ms-sevsnpvm-migration-allowed")));
    assert_true(json_is_true(json_object_get(c, "x-ms-sevsnpvm-smt-allowed"))); /* 0x3001f */
    want_type(c, "x-ms-sevsnpvm-bootloader-svn", JSON_INTEGER);
    want_type(c, "x-ms-sevsnpvm-guestsvn", JSON_INTEGER);
    want_type(c, "x-ms-sevsnpvm-microcode-svn", JSON_INTEGER);
    want_type(c, "x-ms-sevsnpvm-snpfw-svn", JSON_INTEGER);
    want_type(c, "x-ms-sevsnpvm-tee-svn", JSON_INTEGER);
    want_type(c, "x-ms-sevsnpvm-vmpl", JSON_INTEGER);
    assert_int_equal(json_integer_value(json_object_get(c, "x-ms-sevsnpvm-bootloader-svn")),
                     tcb.bootloader);
    assert_int_equal(json_integer_value(json_object_get(c, "x-ms-sevsnpvm-microcode-svn")),
                     tcb.microcode);
    assert_int_equal(json_integer_value(json_object_get(c, "x-ms-sevsnpvm-snpfw-svn")), tcb.snp);
    assert_int_equal(json_integer_value(json_object_get(c, "x-ms-sevsnpvm-tee-svn")), tcb.tee);
    assert_int_equal(json_integer_value(json_object_get(c, "x-ms-sevsnpvm-guestsvn")),
                     pp->guest_svn);
    assert_int_equal(json_integer_value(json_object_get(c, "x-ms-sevsnpvm-vmpl")), 0);
    /* exactly the claim set: 6 strings + 3 times + runtime + 17 report claims (no compliance
     * status without an endorsement) */
    assert_int_equal(json_object_size(c), 6 + 3 + 1 + 17);
    json_decref(c);
}

static void
test_encodings_and_nonce(void **state)
{
    uint8_t raw[SKR_SNP_REPORT_LEN];
    struct req q;
    json_t *c;
    char *body;
    char *p;
    struct resp r;

    (void)state;
    make_report(skr_span_str(RUNTIME_JSON), raw);

    /* unpadded, pretty-printed bundle, nonce as a number */
    q = default_req(raw);
    q.pad = false;
    q.pretty = true;
    q.nonce = json_integer(1234567890123);
    c = token_claims(post_req(ATTEST, &q));
    assert_string_equal(json_string_value(json_object_get(c, "nonce")), "1234567890123");
    json_decref(c);

    /* no nonce: no claim */
    q = default_req(raw);
    c = token_claims(post_req(ATTEST, &q));
    assert_null(json_object_get(c, "nonce"));
    json_decref(c);

    /* SCC: a uint64 nonce past INT64_MAX, SCC's empty initTimeData */
    q = default_req(raw);
    q.init_type = "";
    q.init = skr_span_make(NULL, 0);
    q.nonce = json_integer(42);
    body = build_body(&q);
    p = strstr(body, "\"nonce\":42");
    assert_non_null(p);
    {
        char *big = NULL;
        int pre = (int)(p - body);
        const char *post = p + strlen("\"nonce\":42");

        assert_true(asprintf(&big, "%.*s\"nonce\": 18446744073709551615%s", pre, body, post) > 0);
        c = token_claims(send_raw("POST", ATTEST, skr_span_str(big)));
        assert_string_equal(json_string_value(json_object_get(c, "nonce")), "18446744073709551615");
        json_decref(c);
        free(big);
        /* past UINT64_MAX it is refused */
        assert_true(asprintf(&big, "%.*s\"nonce\": 98446744073709551615%s", pre, body, post) > 0);
        expect_error(send_raw("POST", ATTEST, skr_span_str(big)), 400, "InvalidParameter",
                     "request body");
        free(big);
    }
    free(body);

    /* standard base64 alphabet in the report is accepted too */
    q = default_req(raw);
    body = build_body(&q);
    for (p = body; *p != '\0'; p++) {
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    }
    c = token_claims(send_raw("POST", ATTEST, skr_span_str(body)));
    json_decref(c);
    free(body);

    /* Binary runtime data: bound, but no x-ms-runtime */
    {
        static const uint8_t bin[5] = { 0, 1, 2, 0xfe, 0xff };

        make_report(skr_span_make(bin, sizeof(bin)), raw);
        q = default_req(raw);
        q.runtime = skr_span_make(bin, sizeof(bin));
        q.runtime_type = "Binary";
        c = token_claims(post_req(ATTEST, &q));
        assert_null(json_object_get(c, "x-ms-runtime"));
        json_decref(c);
    }

    /* initTimeData = the security policy (HOST_DATA = its SHA-256); with an Endorsements */
    make_report(skr_span_str(RUNTIME_JSON), raw);
    q = default_req(raw);
    q.init = skr_buf_span(&g_policy);
    q.init_type = "Binary";
    q.endorsements = "{\"Uvm\":[\"0oRZ\"]}";
    c = token_claims(post_req(ATTEST, &q));
    assert_null(json_object_get(c, "x-ms-inittime"));
    /* a COSE_Sign1 cannot be verified offline: it does not make the UVM compliant */
    assert_null(json_object_get(c, "x-ms-compliance-status"));
    json_decref(c);

    /* the JSON stand-in init writes vouches for the measurement when it matches */
    for (int match = 0; match < 2; match++) {
        struct skr_snp_report rr;
        char hexm[2 * 48 + 1];
        char doc[256];
        char endorsements[512];
        _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
        const char *enc = NULL;

        assert_int_equal(skr_snp_report_parse(skr_span_make(raw, sizeof(raw)), &rr), SKR_OK);
        rr.measurement[0] ^= (uint8_t)(match == 0);
        skr_hex_fmt(rr.measurement, sizeof(rr.measurement), hexm);
        (void)snprintf(doc, sizeof(doc), "{\"x-ms-sevsnpvm-launchmeasurement\":\"%s\"}", hexm);
        skr_buf_init(&b64, 1024);
        assert_int_equal(skr_b64_encode(skr_span_str(doc), SKR_B64_URL, &b64), SKR_OK);
        assert_int_equal(skr_buf_cstr(&b64, &enc), SKR_OK);
        (void)snprintf(endorsements, sizeof(endorsements), "{\"Uvm\":[\"%s\"]}", enc);
        q = default_req(raw);
        q.endorsements = endorsements;
        c = token_claims(post_req(ATTEST, &q));
        if (match) {
            assert_string_equal(
                json_string_value(json_object_get(c, "x-ms-compliance-status")),
                json_string_value(json_object_get(g_ctx.config, "compliance_status")));
        } else {
            assert_null(json_object_get(c, "x-ms-compliance-status"));
        }
        json_decref(c);
    }

    /* path case variants and both api-versions */
    {
        static const char *const ok[] = {
            "/attest/SevSnpVm?api-version=2020-10-01",
            "/attest/SevSnpVM?api-version=2020-10-01",
            "/attest/sevsnpvm?api-version=2022-08-01",
            "/ATTEST/SEVSNPVM?api-version=2022-08-01",
        };

        for (size_t i = 0; i < SKR_ARRAY_LEN(ok); i++) {
            q = default_req(raw);
            c = token_claims(post_req(ok[i], &q));
            json_decref(c);
        }
    }
    q = default_req(raw);
    expect_error(post_req("/attest/SevSnpVm?api-version=2019-01-01", &q), 400,
                 "InvalidApiVersionParameter", "api-version");
    q = default_req(raw);
    expect_error(post_req("/attest/SevSnpVm", &q), 400, "MissingApiVersionParameter",
                 "api-version");
    q = default_req(raw);
    r = post_req("/attest/SevSnpVm/?api-version=2022-08-01", &q);
    expect_error(r, 404, "NotFound", "does not exist");
}

static void
test_binding_failures(void **state)
{
    uint8_t raw[SKR_SNP_REPORT_LEN];
    uint8_t rd[64] = { 0 };
    struct skr_buf b;
    struct req q;

    (void)state;
    /* REPORT_DATA of other data */
    make_report(skr_span_str("{\"other\":1}"), raw);
    q = default_req(raw);
    expect_400(&q, "report data");

    /* upper half of REPORT_DATA not zero */
    SHA256((const uint8_t *)RUNTIME_JSON, strlen(RUNTIME_JSON), rd);
    rd[40] = 1;
    skr_buf_init(&b, 4096);
    assert_int_equal(skr_snp_emu_report(g_emu, rd, 0, &b), SKR_OK);
    q = default_req(b.ptr);
    expect_400(&q, "REPORT_DATA[32..63]");
    skr_buf_done(&b);

    /* initTimeData whose hash is not HOST_DATA */
    make_report(skr_span_str(RUNTIME_JSON), raw);
    q = default_req(raw);
    q.init = skr_span_str("{\"not\":\"the policy\"}");
    q.init_type = "JSON";
    expect_400(&q, "host data");
}

static void
test_evidence_failures(void **state)
{
    uint8_t raw[SKR_SNP_REPORT_LEN];
    uint8_t bad[SKR_SNP_REPORT_LEN];
    STACK_OF(X509) * roots;
    struct req q;

    (void)state;
    make_report(skr_span_str(RUNTIME_JSON), raw);

    /* one bit flipped in MEASUREMENT */
    memcpy(bad, raw, sizeof(bad));
    bad[0x90] ^= 0x04;
    q = default_req(bad);
    expect_400(&q, "report.signature");

    /* the chain of another platform: neither signature nor root */
    q = default_req(raw);
    q.chain = skr_buf_span(&g_other_chain);
    expect_400(&q, "chain.ark_trusted");
    q = default_req(raw);
    q.chain = skr_buf_span(&g_other_chain);
    expect_400(&q, "report.signature");

    /* without the emulated root the emulated chain is not trusted */
    roots = g_ctx.snp_roots;
    g_ctx.snp_roots = NULL;
    q = default_req(raw);
    expect_400(&q, "SNP report verification failed: chain.ark_trusted");
    g_ctx.snp_roots = roots;

    /* truncated report (1183 bytes) */
    q = default_req(raw);
    q.report = skr_span_make(raw, SKR_SNP_REPORT_LEN - 1);
    expect_400(&q, "SnpReport");

    /* too long */
    {
        uint8_t longer[SKR_SNP_REPORT_LEN + 1] = { 0 };

        memcpy(longer, raw, sizeof(raw));
        q = default_req(raw);
        q.report = skr_span_make(longer, sizeof(longer));
        expect_400(&q, "SnpReport");
    }

    /* no certificate in the chain */
    q = default_req(raw);
    q.chain = skr_span_str("not a certificate");
    expect_400(&q, "VcekCertChain");

    /* Endorsements that are not {"Uvm":[...]} */
    q = default_req(raw);
    q.endorsements = "{\"Uvm\":\"x\"}";
    expect_400(&q, "Endorsements");
    q = default_req(raw);
    q.endorsements = "[1]";
    expect_400(&q, "Endorsements");
}

/* The REST example's real report is 1182 bytes; the SCC report with its real AMD chain passes
 * signature and chain and fails only on REPORT_DATA. */
static void
test_real_vectors(void **state)
{
    size_t n;
    uint8_t *rep;
    uint8_t *pem;
    size_t pem_n;
    struct req q;

    (void)state;
    rep = t_read_data("restspec/maa_AttestSevSnpVm_example_SnpReport_TRUNCATED_1182bytes.bin", &n);
    pem = t_read_data("restspec/maa_AttestSevSnpVm_example_VcekCertChain.pem", &pem_n);
    assert_int_equal(n, 1182);
    q = default_req(rep);
    q.report = skr_span_make(rep, n);
    q.chain = skr_span_make(pem, pem_n);
    q.pad = false;
    q.pretty = true;
    expect_400(&q, "SnpReport");
    free(rep);
    free(pem);

    rep = t_read_data("scc/test_data__snp_report.bin", &n);
    pem = t_read_data("scc/test_data__uvm_host_amd_certificate.pem", &pem_n);
    assert_int_equal(n, SKR_SNP_REPORT_LEN);
    q = default_req(rep);
    q.chain = skr_span_make(pem, pem_n);
    q.nonce = json_integer(7);
    q.init_type = "";
    expect_400(&q, "report data check failed");
    /* ... with the THIM JSON form of the same certificates too */
    free(pem);
    pem = t_read_data("scc/test_data__uvm_host_amd_certificate.json", &pem_n);
    q = default_req(rep);
    q.chain = skr_span_make(pem, pem_n);
    expect_400(&q, "REPORT_DATA[0..31]");
    free(rep);
    free(pem);
}

static void
test_malformed_requests(void **state)
{
    uint8_t raw[SKR_SNP_REPORT_LEN];
    struct req q;
    char *body;
    json_t *j;
    char *txt;

    (void)state;
    make_report(skr_span_str(RUNTIME_JSON), raw);

    expect_error(send_raw("POST", ATTEST, skr_span_str("{\"report\": ")), 400, "InvalidParameter",
                 "request body");
    expect_error(send_raw("POST", ATTEST, skr_span_str("[]")), 400, "InvalidParameter",
                 "request body");
    expect_error(send_raw("POST", ATTEST, skr_span_make(NULL, 0)), 400, "InvalidParameter",
                 "request body");

    /* members removed or replaced one at a time */
    q = default_req(raw);
    body = build_body(&q);
    j = json_loads(body, 0, NULL);
    assert_non_null(j);
    free(body);
    {
        static const struct {
            const char *key;
            const char *value; /* JSON, or NULL to delete */
            const char *needle;
        } cases[] = {
            { "runtimeData", NULL, "runtimeData is missing" },
            { "runtimeData", "\"abc\"", "runtimeData must be an object" },
            { "runtimeData", "{\"dataType\":\"JSON\"}", "runtimeData" },
            { "runtimeData", "{\"data\":\"e30\",\"dataType\":\"Text\"}", "dataType" },
            { "runtimeData", "{\"data\":\"e30\"}", "dataType" },
            { "runtimeData", "{\"data\":\"!!!\",\"dataType\":\"JSON\"}", "base64url" },
            { "runtimeData", "{\"data\":\"WzFd\",\"dataType\":\"JSON\"}", "runtimeData.data" },
            { "runtimeData", "{\"data\":\"bm90IGpzb24\",\"dataType\":\"JSON\"}",
              "runtimeData.data" },
            { "initTimeData", "{\"data\":\"e30\",\"dataType\":\"\"}", "initTimeData.dataType" },
            { "initTimeData", "7", "initTimeData must be an object" },
            { "report", NULL, "report" },
            { "report", "12", "report" },
            { "report", "\"%%%\"", "report is not valid base64url" },
            { "report", "\"e30\"", "SnpReport" },      /* {} */
            { "report", "\"WzFd\"", "report bundle" }, /* [1] */
            { "report", "\"eyJTbnBSZXBvcnQiOiJBQUFBIn0\"", "SnpReport" },
            { "nonce", "1.5", "nonce" },
            { "nonce", "{}", "nonce" },
        };

        for (size_t i = 0; i < SKR_ARRAY_LEN(cases); i++) {
            json_t *c = json_deep_copy(j);

            if (cases[i].value == NULL) {
                json_object_del(c, cases[i].key);
            } else {
                json_object_set_new(c, cases[i].key,
                                    json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
            }
            txt = json_dumps(c, JSON_COMPACT);
            expect_error(send_raw("POST", ATTEST, skr_span_str(txt)), 400, "InvalidParameter",
                         cases[i].needle);
            free(txt);
            json_decref(c);
        }
    }
    /* unknown members and draftPolicyForAttestation are ignored */
    json_object_set_new(j, "draftPolicyForAttestation", json_string("version=1.0;"));
    json_object_set_new(j, "somethingNew", json_true());
    txt = json_dumps(j, JSON_COMPACT);
    json_decref(token_claims(send_raw("POST", ATTEST, skr_span_str(txt))));
    free(txt);
    json_decref(j);
}

static void
test_routes(void **state)
{
    struct resp r;
    json_t *k;
    json_t *want;
    EVP_PKEY *pk;
    char url[160];
    const char *const members[] = { "kid", "kty", "x5c", "n", "e" };

    (void)state;
    r = send_raw("GET", "/certs", skr_span_make(NULL, 0));
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.body, "keys")), 1);
    k = json_array_get(json_object_get(r.body, "keys"), 0);
    for (size_t i = 0; i < SKR_ARRAY_LEN(members); i++) {
        if (json_object_get(k, members[i]) == NULL) {
            fail_msg("/certs key lacks %s", members[i]);
        }
    }
    assert_string_equal(json_string_value(json_object_get(k, "kid")), g_ctx.maa_kid);
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "RSA");
    assert_int_equal(json_array_size(json_object_get(k, "x5c")), 1);
    assert_null(json_object_get(k, "d"));
    /* n/e and x5c are the same key, and the key of the context */
    assert_int_equal(skr_jwk_to_pkey(k, &pk), SKR_OK);
    assert_int_equal(EVP_PKEY_eq(pk, g_ctx.maa_key), 1);
    EVP_PKEY_free(pk);
    pk = signer_from_certs();
    assert_int_equal(EVP_PKEY_eq(pk, g_ctx.maa_key), 1);
    EVP_PKEY_free(pk);
    json_decref(r.body);

    r = send_raw("GET", "/.well-known/openid-configuration", skr_span_make(NULL, 0));
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "issuer")), g_ctx.maa_url);
    snprintf(url, sizeof(url), "%s/certs", g_ctx.maa_url);
    assert_string_equal(json_string_value(json_object_get(r.body, "jwks_uri")), url);
    snprintf(url, sizeof(url), "%s/revoke", g_ctx.maa_url);
    assert_string_equal(json_string_value(json_object_get(r.body, "revocation_endpoint")), url);
    want = json_pack("[s]", "RS256");
    assert_true(json_equal(json_object_get(r.body, "id_token_signing_alg_values_supported"), want));
    json_decref(want);
    want = json_pack("[s,s]", "token", "none");
    assert_true(json_equal(json_object_get(r.body, "response_types_supported"), want));
    json_decref(want);
    assert_true(json_array_size(json_object_get(r.body, "claims_supported")) > 20);
    json_decref(r.body);

    expect_error(send_raw("GET", "/nothing", skr_span_make(NULL, 0)), 404, "NotFound", "exist");
    expect_error(
        send_raw("GET", "/attest/SgxEnclave?api-version=2022-08-01", skr_span_make(NULL, 0)), 404,
        "NotFound", "exist");
    expect_error(send_raw("GET", ATTEST, skr_span_make(NULL, 0)), 405, "MethodNotAllowed",
                 "method");
    expect_error(send_raw("POST", "/certs", skr_span_str("{}")), 405, "MethodNotAllowed", "method");
    expect_error(send_raw("DELETE", "/.well-known/openid-configuration", skr_span_make(NULL, 0)),
                 405, "MethodNotAllowed", "method");
}

/* The handler answers directly too (no server): the x-ms-error-code header. */
static void
test_error_header(void **state)
{
    struct skr_http_request req = {
        .method = "POST",
        .path = "/attest/SevSnpVm",
        .query = "",
        .body = skr_span_str("{}"),
        .remote_is_loopback = true,
    };
    struct skr_http_response resp = { .status = 200 };
    bool found = false;

    (void)state;
    skr_buf_init(&resp.body, 1u << 20);
    /* no api-version (query lookups need a live connection, so it reads as absent) */
    assert_int_equal(emu_maa_handle(&g_ctx, &req, &resp), SKR_OK);
    assert_int_equal(resp.status, 400);
    for (size_t i = 0; i < resp.n_headers; i++) {
        if (strcasecmp(resp.headers[i].name, "x-ms-error-code") == 0) {
            assert_string_equal(resp.headers[i].value, "MissingApiVersionParameter");
            found = true;
        }
        free(resp.headers[i].name);
        free(resp.headers[i].value);
    }
    assert_true(found);
    skr_buf_done(&resp.body);
}

int main(void);

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),       cmocka_unit_test(test_encodings_and_nonce),
        cmocka_unit_test(test_binding_failures), cmocka_unit_test(test_evidence_failures),
        cmocka_unit_test(test_real_vectors),     cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_routes),           cmocka_unit_test(test_error_header),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
