/*
 * test_azure.c - lib/azure.c against the real emulator services (src/emu), each on a loopback
 * server in this process: IMDS (http: managed identity, THIM, Entra), MAA and Key Vault (https,
 * the emulator's TLS chain). The evidence comes from the emulated SNP platform of `skr-emu
 * init` (skr_snp_dev_open on emulated:DIR), so MAA verifies a real report; the keys released
 * are imported through the emulator's PUT /keys API with a release policy bound to that
 * platform. Also the response parsers on their own, with negative tables.
 */
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "azure.h"
#include "b64.h"
#include "buf.h"
#include "emu.h"
#include "hex.h"
#include "http_client.h"
#include "http_server.h"
#include "jose.h"
#include "json.h"
#include "keywrap.h"
#include "ossl.h"
#include "secret.h"
#include "service.h"
#include "snp_certs.h"
#include "snp_dev.h"
#include "snp_report.h"

/* fail_msg() never returns (it longjmps out of the test); cmocka 1.1.5 does not say so, and gcc
 * -fanalyzer would follow a failed check into a NULL dereference. */
void _fail(const char *const file, const int line) __attribute__((noreturn));

#define VAULT "https://vault.azure.net"

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

static struct {
    char root[256];
    char dir[300];
    char ca[400];
    struct emu_ctx ctx;
    struct skr_http_server *imds;
    struct skr_http_server *maa;
    struct skr_http_server *akv;
    struct skr_http_client *client;
    X509_STORE *trust;  /* system roots + the emulator CA */
    EVP_PKEY *transfer; /* the transfer key whose JWKS is the runtime data */
    char transfer_kid[SKR_THUMBPRINT_LEN];
    struct skr_buf jwks;   /* the runtime data */
    struct skr_buf report; /* bound to SHA-256(jwks) */
    struct skr_buf chain;  /* VCEK + ASK + ARK from THIM */
    struct skr_buf policy; /* decoded security policy (HOST_DATA preimage) */
    struct skr_buf refinfo;
    char hostdata[65];
    char *bearer;    /* vault token of the managed identity */
    char *maa_token; /* a token for the transfer key */
} g;

/* ---- setup ---------------------------------------------------------------------------------- */

extern char **environ;

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

static struct skr_http_server *
start_server(skr_http_handler h, bool tls)
{
    struct skr_http_server_cfg cfg = { 0 };
    struct skr_http_server *srv = NULL;
    char cert[400];
    char key[400];

    (void)snprintf(cert, sizeof(cert), "%s/%s", g.dir, EMU_TLS_CERT);
    (void)snprintf(key, sizeof(key), "%s/%s", g.dir, EMU_TLS_KEY);
    if (tls) {
        cfg.tls_cert_file = cert;
        cfg.tls_key_file = key;
    }
    cfg.handler = h;
    cfg.handler_ctx = &g.ctx;
    if (skr_http_server_start(&cfg, &srv) != SKR_OK) {
        fail_msg("server start: %s", skr_err_msg());
    }
    return srv;
}

static void
read_b64_file(const char *rel, struct skr_buf *out)
{
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    char path[512];

    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, rel);
    skr_buf_init(&raw, 1u << 20);
    assert_int_equal(skr_read_file(path, &raw), SKR_OK);
    skr_buf_init(out, 1u << 20);
    assert_int_equal(skr_b64_decode(skr_buf_span(&raw), SKR_B64_STD | SKR_B64_SKIP_WS, out),
                     SKR_OK);
}

static void
fetch_report(struct skr_span runtime, struct skr_buf *out)
{
    _cleanup_(skr_snp_dev_freep) struct skr_snp_dev *dev = NULL;
    struct skr_snp_dev_cfg cfg;
    uint8_t rd[64] = { 0 };
    char spec[400];

    (void)snprintf(spec, sizeof(spec), "emulated:%s", g.dir);
    assert_int_equal(skr_snp_dev_parse_spec(spec, &cfg), SKR_OK);
    if (skr_snp_dev_open(&cfg, &dev) != SKR_OK) {
        fail_msg("snp dev: %s", skr_err_msg());
    }
    SHA256(runtime.ptr, runtime.len, rd);
    skr_buf_init(out, 1u << 16);
    assert_int_equal(skr_snp_dev_get_report(dev, rd, 0, out, NULL), SKR_OK);
    assert_int_equal(out->len, SKR_SNP_REPORT_LEN);
}

static char *
secret_strdup(const struct skr_token *t)
{
    char *s = dup_bytes((const char *)t->value->ptr, t->value->len);

    assert_non_null(s);
    return s;
}

static void
get_maa_token(void)
{
    _cleanup_(skr_buf_donep) struct skr_buf tok = { 0 };
    struct skr_maa_evidence ev = {
        .report = skr_buf_span(&g.report),
        .vcek_chain = skr_buf_span(&g.chain),
        .uvm_endorsement = skr_buf_span(&g.refinfo),
        .runtime_data = skr_buf_span(&g.jwks),
        .init_data = skr_buf_span(&g.policy),
    };
    struct skr_upstream up;
    const char *s = NULL;

    skr_buf_init(&tok, 1u << 20);
    if (skr_maa_attest(g.client, g.ctx.maa_url, NULL, "ConfidentialSkrContainer", &ev, &tok, &up) !=
        SKR_OK) {
        fail_msg("MAA attest: %s", skr_err_msg());
    }
    assert_int_equal(up.status, 200);
    assert_int_equal(skr_buf_cstr(&tok, &s), SKR_OK);
    g.maa_token = strdup(s);
}

static void
setup_evidence(void)
{
    _cleanup_(skr_buf_donep) struct skr_buf thim_json = { 0 };
    _cleanup_(json_decrefp) json_t *jwks = NULL;
    struct skr_thim thim;
    uint8_t hd[32];
    struct skr_token tok = { 0 };

    g.transfer = EVP_RSA_gen(2048);
    assert_non_null(g.transfer);
    skr_buf_init(&g.jwks, 1u << 16);
    assert_int_equal(skr_jwks_transfer_key(g.transfer, &g.jwks, &jwks), SKR_OK);
    (void)snprintf(g.transfer_kid, sizeof(g.transfer_kid), "%s",
                   json_string_value(
                       json_object_get(json_array_get(json_object_get(jwks, "keys"), 0), "kid")));
    fetch_report(skr_buf_span(&g.jwks), &g.report);

    skr_buf_init(&thim_json, 1u << 20);
    assert_int_equal(skr_imds_thim(g.client, g.ctx.imds_url, &thim_json, NULL), SKR_OK);
    assert_int_equal(skr_thim_parse(skr_buf_span(&thim_json), &thim), SKR_OK);
    skr_buf_init(&g.chain, 1u << 16);
    assert_int_equal(skr_buf_append_str(&g.chain, thim.vcek_pem), SKR_OK);
    assert_int_equal(skr_buf_append_str(&g.chain, thim.chain_pem), SKR_OK);
    skr_thim_done(&thim);

    read_b64_file(EMU_SECCTX_POLICY, &g.policy);
    read_b64_file(EMU_SECCTX_REF_INFO, &g.refinfo);
    SHA256(g.policy.ptr, g.policy.len, hd);
    for (size_t i = 0; i < 32; i++) {
        (void)snprintf(g.hostdata + 2 * i, 3, "%02x", hd[i]);
    }
    if (skr_imds_token(g.client, g.ctx.imds_url, VAULT, NULL, &tok, NULL) != SKR_OK) {
        fail_msg("IMDS token: %s", skr_err_msg());
    }
    g.bearer = secret_strdup(&tok);
    skr_token_done(&tok);
    get_maa_token();
}

static int
setup(void **state)
{
    char prog[512];
    char a1[] = "init";
    char *argv[4];
    const char *build = getenv("SKR_BUILD_DIR");
    struct skr_http_client_opts o;

    (void)state;
    (void)snprintf(g.root, sizeof(g.root), "/tmp/skr-test-azure-XXXXXX");
    assert_non_null(mkdtemp(g.root));
    (void)snprintf(g.dir, sizeof(g.dir), "%s/emu", g.root);
    (void)snprintf(prog, sizeof(prog), "%s/src/skr-emu", build != NULL ? build : ".");
    argv[0] = prog;
    argv[1] = a1;
    argv[2] = g.dir;
    argv[3] = NULL;
    assert_int_equal(run(argv), EMU_EXIT_OK);
    if (emu_ctx_load(g.dir, &g.ctx) != SKR_OK) {
        fail_msg("emu_ctx_load: %s", skr_err_msg());
    }
    g.imds = start_server(emu_imds_handle, false);
    g.maa = start_server(emu_maa_handle, true);
    g.akv = start_server(emu_akv_handle, true);
    (void)snprintf(g.ctx.imds_url, sizeof(g.ctx.imds_url), "http://127.0.0.1:%u",
                   skr_http_server_port(g.imds));
    (void)snprintf(g.ctx.maa_url, sizeof(g.ctx.maa_url), "https://127.0.0.1:%u",
                   skr_http_server_port(g.maa));
    (void)snprintf(g.ctx.akv_url, sizeof(g.ctx.akv_url), "https://127.0.0.1:%u",
                   skr_http_server_port(g.akv));

    (void)snprintf(g.ca, sizeof(g.ca), "%s/%s", g.dir, EMU_CA_CERT);
    skr_http_client_opts_init(&o);
    o.ca_file = g.ca;
    o.retries = 0;
    assert_int_equal(skr_http_client_new(&o, &g.client), SKR_OK);
    assert_int_equal(skr_http_trust_new(g.ca, &g.trust), SKR_OK);
    setup_evidence();
    return 0;
}

static int
teardown(void **state)
{
    char a0[] = "rm";
    char a1[] = "-rf";
    char *argv[] = { a0, a1, g.root, NULL };

    (void)state;
    skr_http_server_stop(g.imds);
    skr_http_server_stop(g.maa);
    skr_http_server_stop(g.akv);
    skr_http_client_free(g.client);
    X509_STORE_free(g.trust);
    EVP_PKEY_free(g.transfer);
    skr_buf_done(&g.jwks);
    skr_buf_done(&g.report);
    skr_buf_done(&g.chain);
    skr_buf_done(&g.policy);
    skr_buf_done(&g.refinfo);
    free(g.bearer);
    free(g.maa_token);
    emu_ctx_done(&g.ctx);
    (void)run(argv);
    assert_int_equal(skr_secret_live(), 0);
    return 0;
}

/* ---- endpoints ------------------------------------------------------------------------------ */

static void
expect_base(const char *in, const char *url, const char *host)
{
    _cleanup_(skr_buf_donep) struct skr_buf u = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf h = { 0 };
    const char *us = NULL;
    const char *hs = NULL;

    skr_buf_init(&u, 1024);
    skr_buf_init(&h, 1024);
    if (skr_endpoint_base(in, &u, &h) != SKR_OK) {
        fail_msg("'%s': %s", in, skr_err_msg());
    }
    assert_int_equal(skr_buf_cstr(&u, &us), SKR_OK);
    assert_int_equal(skr_buf_cstr(&h, &hs), SKR_OK);
    assert_string_equal(us, url);
    assert_string_equal(hs, host);
}

static void
expect_bad_base(const char *in, const char *needle)
{
    _cleanup_(skr_buf_donep) struct skr_buf u = { 0 };

    skr_buf_init(&u, 1024);
    if (skr_endpoint_base(in, &u, NULL) != SKR_E_INVALID_ARG ||
        strstr(skr_err_msg(), needle) == NULL) {
        fail_msg("'%s': expected an error naming '%s', got '%s'", in, needle, skr_err_msg());
    }
    assert_int_equal(u.len, 0);
}

static void
test_endpoint_base(void **state)
{
    char long_host[300];

    (void)state;
    expect_base("myvault.vault.azure.net", "https://myvault.vault.azure.net",
                "myvault.vault.azure.net");
    expect_base("myvault.vault.azure.net/", "https://myvault.vault.azure.net",
                "myvault.vault.azure.net");
    expect_base("host:8443", "https://host:8443", "host");
    expect_base("https://sharedeus.eus.attest.azure.net", "https://sharedeus.eus.attest.azure.net",
                "sharedeus.eus.attest.azure.net");
    expect_base("HTTPS://127.0.0.1:443/", "https://127.0.0.1:443", "127.0.0.1");
    expect_base("[::1]:8443", "https://[::1]:8443", "::1");
    expect_base("https://[::1]", "https://[::1]", "::1");

    expect_bad_base("http://host", "scheme");
    expect_bad_base("ftp://host", "scheme");
    expect_bad_base("host/keys", "path");
    expect_bad_base("https://host/x/", "path");
    expect_bad_base("host?x=1", "query");
    expect_bad_base("host#f", "fragment");
    expect_bad_base("user@host", "userinfo");
    expect_bad_base(" host", "whitespace");
    expect_bad_base("host\n", "whitespace");
    expect_bad_base("", "empty host");
    expect_bad_base("https://", "empty host");
    expect_bad_base("https://:443", "empty host");
    expect_bad_base("host:0", "port");
    expect_bad_base("host:65536", "port");
    expect_bad_base("host:", "port");
    expect_bad_base("host:12ab", "port");
    expect_bad_base("::1", "empty host");
    expect_bad_base("[::1", "']'");
    expect_bad_base("[nothex]:1", "IPv6");
    expect_bad_base("[::1]x", "after the IPv6");
    expect_bad_base("ho_st!", "not allowed");
    memset(long_host, 'a', 254);
    long_host[254] = '\0';
    expect_bad_base(long_host, "longer than 253");
}

static void
test_endpoint_base_long(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf u = { 0 };
    char host[254];

    (void)state;
    memset(host, 'b', 253);
    host[253] = '\0';
    skr_buf_init(&u, 1024);
    assert_int_equal(skr_endpoint_base(host, &u, NULL), SKR_OK);
    assert_int_equal(u.len, 8 + 253);
    assert_int_equal(skr_endpoint_base(NULL, &u, NULL), SKR_E_INVALID_ARG);
}

static void
test_resource_for(void **state)
{
    (void)state;
    assert_string_equal(skr_akv_resource_for("myhsm.managedhsm.azure.net"),
                        "https://managedhsm.azure.net");
    assert_string_equal(skr_akv_resource_for("https://x.managedhsm.azure.net/"),
                        "https://managedhsm.azure.net");
    assert_string_equal(skr_akv_resource_for("myvault.vault.azure.net"), VAULT);
    assert_string_equal(skr_akv_resource_for("127.0.0.1:8443"), VAULT);
    assert_string_equal(skr_akv_resource_for(NULL), VAULT);
}

/* ---- parsers -------------------------------------------------------------------------------- */

static skr_err
parse_token(const char *body, struct skr_token *t)
{
    return skr_token_parse(skr_span_str(body), 1000, t);
}

static void
test_token_parse(void **state)
{
    struct skr_token t = { 0 };
    static const struct {
        const char *body;
        skr_err err;
    } bad[] = {
        { "", SKR_E_MALFORMED },
        { "[]", SKR_E_MALFORMED },
        { "{\"expires_in\":10}", SKR_E_MALFORMED },
        { "{\"access_token\":1,\"expires_in\":10}", SKR_E_MALFORMED },
        { "{\"access_token\":\"\",\"expires_in\":10}", SKR_E_MALFORMED },
        { "{\"access_token\":\"a b\",\"expires_in\":10}", SKR_E_MALFORMED },
        { "{\"access_token\":\"a\\r\\nX: y\",\"expires_in\":10}", SKR_E_MALFORMED },
        { "{\"access_token\":\"a\\u0000b\",\"expires_in\":10}", SKR_E_MALFORMED },
        { "{\"access_token\":\"abc\"}", SKR_E_MALFORMED },
        { "{\"access_token\":\"abc\",\"expires_in\":\"soon\"}", SKR_E_MALFORMED },
        { "{\"access_token\":\"abc\",\"expires_in\":-5}", SKR_E_MALFORMED },
        { "{\"access_token\":\"abc\",\"expires_in\":999999999999}", SKR_E_MALFORMED },
        { "{\"access_token\":\"abc\",\"expires_in\":10,\"token_type\":\"MAC\"}", SKR_E_MALFORMED },
        { "{\"access_token\":\"abc\",\"access_token\":\"d\",\"expires_in\":10}", SKR_E_MALFORMED },
    };

    (void)state;
    /* IMDS: strings */
    assert_int_equal(parse_token("{\"access_token\":\"eyJ.a.b\",\"expires_in\":\"3599\","
                                 "\"expires_on\":\"1506484173\",\"token_type\":\"Bearer\"}",
                                 &t),
                     SKR_OK);
    assert_int_equal(t.value->len, 7);
    assert_memory_equal(t.value->ptr, "eyJ.a.b", 8); /* NUL-terminated */
    assert_int_equal(t.expires_on, 1506484173);
    skr_token_done(&t);
    /* Entra v2: numbers, no expires_on */
    assert_int_equal(parse_token("{\"token_type\":\"Bearer\",\"expires_in\":3599,"
                                 "\"ext_expires_in\":3599,\"access_token\":\"tok\"}",
                                 &t),
                     SKR_OK);
    assert_int_equal(t.expires_on, 1000 + 3599);
    skr_token_done(&t);
    /* an unusable expires_on falls back to expires_in */
    assert_int_equal(parse_token("{\"access_token\":\"tok\",\"expires_on\":\"09/14/2017 00:00\","
                                 "\"expires_in\":60}",
                                 &t),
                     SKR_OK);
    assert_int_equal(t.expires_on, 1060);
    skr_token_done(&t);
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        t.value = NULL;
        if (parse_token(bad[i].body, &t) != bad[i].err) {
            fail_msg("case %zu (%s): expected %s, got '%s'", i, bad[i].body,
                     skr_err_name(bad[i].err), skr_err_msg());
        }
        assert_null(t.value);
    }
}

static void
test_jws_responses(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    static const char *const bad[] = {
        "",
        "{}",
        "{\"token\":1}",
        "{\"token\":\"\"}",
        "{\"token\":\"a.b\"}",
        "{\"token\":\"a.b.c.d\"}",
        "{\"token\":\"a.b.c\\\"\"}",
        "{\"token\":\"a+b.c.d\"}",
        "{\"Token\":\"a.b.c\"}",
        "[\"a.b.c\"]",
    };

    (void)state;
    skr_buf_init(&out, 1u << 20);
    assert_int_equal(skr_maa_parse_response(skr_span_str("{\"token\":\"aa.bb.cc\"}"), &out),
                     SKR_OK);
    assert_string_equal((const char *)out.ptr, "aa.bb.cc");
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        skr_buf_reset(&out);
        if (skr_maa_parse_response(skr_span_str(bad[i]), &out) == SKR_OK) {
            fail_msg("case %zu accepted: %s", i, bad[i]);
        }
        assert_int_equal(out.len, 0);
    }
    skr_buf_reset(&out);
    assert_int_equal(skr_akv_parse_release_response(skr_span_str("{\"value\":\"x.y.z\"}"), &out),
                     SKR_OK);
    assert_string_equal((const char *)out.ptr, "x.y.z");
    skr_buf_reset(&out);
    assert_int_equal(skr_akv_parse_release_response(skr_span_str("{\"value\":\"eyJ9\"}"), &out),
                     SKR_E_MALFORMED);
}

static void
test_upstream_error(void **state)
{
    struct skr_upstream up = { 0 };
    char longmsg[600];

    (void)state;
    skr_upstream_parse_error(
        skr_span_str("{\"error\":{\"code\":\"Forbidden\",\"message\":\"denied\\u0001 here\"}}"),
        NULL, &up);
    assert_string_equal(up.code, "Forbidden");
    assert_string_equal(up.message, "denied? here");
    up = (struct skr_upstream){ 0 };
    skr_upstream_parse_error(skr_span_str("{\"error\":\"invalid_resource\","
                                          "\"error_description\":\"AADSTS500011: no\"}"),
                             "Bearer authorization=\"https://login.windows.net/t\", "
                             "resource=\"https://vault.azure.net\"",
                             &up);
    assert_string_equal(up.code, "invalid_resource");
    assert_string_equal(up.message, "AADSTS500011: no");
    assert_string_equal(up.challenge_resource, VAULT);
    up = (struct skr_upstream){ 0 };
    skr_upstream_parse_error(skr_span_str("<html>bad gateway</html>"),
                             "Bearer resource=https://managedhsm.azure.net,authorization=x", &up);
    assert_string_equal(up.code, "");
    assert_string_equal(up.message, "");
    assert_string_equal(up.challenge_resource, "https://managedhsm.azure.net");
    up = (struct skr_upstream){ 0 };
    skr_upstream_parse_error(skr_span_str("{\"error\":[1]}"), "Bearer", &up);
    skr_upstream_parse_error(skr_span_str("{\"error\":{\"code\":7}}"), "Bearer resource", &up);
    skr_upstream_parse_error(skr_span_str("{}"), "Bearer a=\"unterminated", &up);
    assert_string_equal(up.code, "");
    assert_string_equal(up.challenge_resource, "");
    /* long messages are cut */
    memset(longmsg, 'm', sizeof(longmsg));
    memcpy(longmsg, "{\"error\":{\"message\":\"", 21);
    memcpy(longmsg + sizeof(longmsg) - 4, "\"}}", 4);
    skr_upstream_parse_error(skr_span_str(longmsg), NULL, &up);
    assert_int_equal(strlen(up.message), sizeof(up.message) - 1);
    skr_upstream_parse_error(skr_span_str("{}"), NULL, NULL);
}

/* A key_hsm of ciphertext bytes, and a payload around it. */
static char *
make_payload(const char *kty, const char *request_enc, const char *hsm_json_fmt)
{
    _cleanup_(skr_buf_donep) struct skr_buf hsm = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    const char *s = NULL;

    skr_buf_init(&hsm, 1u << 16);
    skr_buf_init(&out, 1u << 16);
    assert_int_equal(skr_b64_encode(skr_span_str(hsm_json_fmt), SKR_B64_URL, &hsm), SKR_OK);
    assert_int_equal(skr_buf_cstr(&hsm, &s), SKR_OK);
    assert_int_equal(skr_buf_printf(&out,
                                    "{%s%s%s\"response\":{\"key\":{\"attributes\":{},\"key\":"
                                    "{\"key_hsm\":\"%s\",\"key_ops\":[\"encrypt\",\"decrypt\"],"
                                    "\"kid\":\"https://v/keys/k/1\",\"kty\":\"%s\"},"
                                    "\"release_policy\":{\"data\":\"e30\"}}}}",
                                    request_enc != NULL ? "\"request\":{\"enc\":\"" : "",
                                    request_enc != NULL ? request_enc : "",
                                    request_enc != NULL ? "\"}," : "", s, kty),
                     SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    return strdup(s);
}

#define GOOD_HSM                                                                                   \
    "{\"ciphertext\":\"AAECAwQ\",\"header\":{\"alg\":\"dir\",\"enc\":\"RSA_AES_KEY_WRAP_256\","    \
    "\"kid\":\"tk\"},\"schema_version\":\"1.0\"}"

static void
expect_payload(const char *payload, skr_err err, const char *needle)
{
    struct skr_akv_released r = { 0 };
    skr_err e = skr_akv_release_parse_payload(skr_span_str(payload), &r);

    if (e != err || (err != SKR_OK && strstr(skr_err_msg(), needle) == NULL)) {
        fail_msg("payload %s: expected %s '%s', got %s '%s'", payload, skr_err_name(err), needle,
                 skr_err_name(e), skr_err_msg());
    }
    if (err != SKR_OK) {
        assert_null(r.payload);
        assert_null(r.key_hsm);
    }
    skr_akv_released_done(&r);
}

static void
test_release_payload(void **state)
{
    struct skr_akv_released r = { 0 };
    char *p = make_payload("oct-HSM", "RSA_AES_KEY_WRAP_256", GOOD_HSM);
    static const struct {
        const char *kty;
        const char *enc;
        const char *hsm;
        skr_err err;
        const char *needle;
    } bad[] = {
        { "foo", NULL, GOOD_HSM, SKR_E_MALFORMED, "kty" },
        { "oct-hsm", NULL, GOOD_HSM, SKR_E_MALFORMED, "kty" },
        { "RSA", "CKM_RSA_AES_KEY_WRAP", GOOD_HSM, SKR_E_MALFORMED, "differs" },
        { "RSA", NULL, "[]", SKR_E_MALFORMED, "key_hsm" },
        { "RSA", NULL, "not json", SKR_E_MALFORMED, "key_hsm" },
        { "RSA", NULL,
          "{\"header\":{\"enc\":\"RSA_AES_KEY_WRAP_256\",\"kid\":\"tk\"},\"schema_version\":"
          "\"1.0\"}",
          SKR_E_MALFORMED, "ciphertext" },
        { "RSA", NULL,
          "{\"ciphertext\":\"\",\"header\":{\"enc\":\"RSA_AES_KEY_WRAP_256\",\"kid\":\"tk\"},"
          "\"schema_version\":\"1.0\"}",
          SKR_E_MALFORMED, "empty ciphertext" },
        { "RSA", NULL,
          "{\"ciphertext\":\"AA+/\",\"header\":{\"enc\":\"RSA_AES_KEY_WRAP_256\",\"kid\":\"tk\"},"
          "\"schema_version\":\"1.0\"}",
          SKR_E_MALFORMED, "ciphertext" },
        { "RSA", NULL,
          "{\"ciphertext\":\"AAEC\",\"header\":{\"enc\":\"RSA_AES_KEY_WRAP_256\",\"kid\":\"tk\"},"
          "\"schema_version\":\"2.0\"}",
          SKR_E_MALFORMED, "schema_version" },
        { "RSA", NULL,
          "{\"ciphertext\":\"AAEC\",\"header\":{\"enc\":\"RSA_AES_KEY_WRAP_256\"},"
          "\"schema_version\":\"1.0\"}",
          SKR_E_MALFORMED, "kid" },
        { "RSA", NULL,
          "{\"ciphertext\":\"AAEC\",\"header\":{\"enc\":\"RSA_AES_KEY_WRAP_256\",\"kid\":\"\"},"
          "\"schema_version\":\"1.0\"}",
          SKR_E_MALFORMED, "kid" },
        { "RSA", NULL,
          "{\"ciphertext\":\"AAEC\",\"header\":{\"kid\":\"tk\"},\"schema_version\":\"1.0\"}",
          SKR_E_MALFORMED, "enc" },
        { "RSA", NULL,
          "{\"ciphertext\":\"AAEC\",\"header\":{\"enc\":\"A256KW\",\"kid\":\"tk\"},"
          "\"schema_version\":\"1.0\"}",
          SKR_E_UNSUPPORTED, "" },
        { "RSA", NULL, "{\"ciphertext\":\"AAEC\",\"header\":7,\"schema_version\":\"1.0\"}",
          SKR_E_MALFORMED, "header" },
    };
    static const char *const bad_docs[] = {
        "",
        "null",
        "{}",
        "{\"request\":1,\"response\":{}}",
        "{\"response\":{\"key\":1}}",
        "{\"response\":{\"key\":{\"key\":{}}}}",
        "{\"response\":{\"key\":{\"key\":{\"kty\":\"oct\"}}}}",
        "{\"response\":{\"key\":{\"key\":{\"kty\":\"oct\",\"key_hsm\":\"!!\"}}}}",
        "{\"response\":{\"key\":{\"key\":{\"kty\":\"oct\",\"key_hsm\":1}}}}",
        "{\"response\":{\"key\":{\"key\":{\"kty\":\"oct\",\"key_ops\":\"sign\",\"key_hsm\":\"e30\"}"
        "}}}",
        "{\"response\":{\"key\":{\"key\":{\"kty\":\"oct\",\"key_ops\":[\"a\\\"b\"],"
        "\"key_hsm\":\"e30\"}}}}",
        "{\"response\":{\"key\":{\"key\":{\"kty\":\"oct\",\"key_ops\":[1],\"key_hsm\":\"e30\"}}}}",
        "{\"response\":{\"key\":{\"release_policy\":\"x\",\"key\":{\"kty\":\"oct\",\"key_hsm\":"
        "\"e30\"}}}}",
    };

    (void)state;
    assert_int_equal(skr_akv_release_parse_payload(skr_span_str(p), &r), SKR_OK);
    assert_string_equal(r.kty, "oct-HSM");
    assert_string_equal(r.key_id, "https://v/keys/k/1");
    assert_string_equal(r.wrap_kid, "tk");
    assert_int_equal(r.enc, SKR_KW_RSA_AES_KEY_WRAP_256);
    assert_int_equal(json_array_size(r.key_ops), 2);
    assert_non_null(r.release_policy);
    assert_int_equal(r.ciphertext.len, 5);
    assert_memory_equal(r.ciphertext.ptr, "\x00\x01\x02\x03\x04", 5);
    skr_akv_released_done(&r);
    free(p);
    /* enc from request alone; schema 1.0.0 */
    p = make_payload("EC", "RSA_AES_KEY_WRAP_384",
                     "{\"ciphertext\":\"AAEC\",\"header\":{\"kid\":\"tk\"},"
                     "\"schema_version\":\"1.0.0\"}");
    assert_int_equal(skr_akv_release_parse_payload(skr_span_str(p), &r), SKR_OK);
    assert_int_equal(r.enc, SKR_KW_RSA_AES_KEY_WRAP_384);
    skr_akv_released_done(&r);
    free(p);
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        p = make_payload(bad[i].kty, bad[i].enc, bad[i].hsm);
        expect_payload(p, bad[i].err, bad[i].needle);
        free(p);
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad_docs); i++) {
        expect_payload(bad_docs[i], SKR_E_MALFORMED, "");
    }
}

static void
test_maa_request_json(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf dec = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf inner = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    _cleanup_(json_decrefp) json_t *bundle = NULL;
    uint8_t report[SKR_SNP_REPORT_LEN] = { 0 };
    struct skr_maa_evidence ev = {
        .report = skr_span_make(report, sizeof(report)),
        .vcek_chain = skr_span_str("PEM?"),
        .uvm_endorsement = skr_span_str("\xd2\x84"
                                        "cose>"),
        .runtime_data = skr_span_str("{\"keys\":[]}"),
        .init_data = skr_span_str("package policy\n"),
    };
    const char *t = NULL;
    const char *rep = NULL;

    (void)state;
    memset(report, 0xfb, sizeof(report));
    skr_buf_init(&out, 1u << 20);
    skr_buf_init(&dec, 1u << 20);
    skr_buf_init(&inner, 1u << 20);
    assert_int_equal(skr_maa_request_json(&ev, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &t), SKR_OK);
    /* SCC member order and padded base64url */
    assert_true(strncmp(t, "{\"report\":\"", 11) == 0);
    assert_true(strstr(t, "\"runtimeData\"") < strstr(t, "\"initTimeData\""));
    assert_true(strstr(t, "\"initTimeData\"") < strstr(t, "\"nonce\":"));
    assert_non_null(strstr(t, "\"runtimeData\":{\"data\":\"eyJrZXlzIjpbXX0=\",\"dataType\":"
                              "\"JSON\"}"));
    assert_non_null(strstr(t, "\"dataType\":\"Binary\""));
    assert_int_equal(skr_json_parse_object(skr_buf_span(&out), 1u << 20, "req", &doc), SKR_OK);
    assert_true(json_is_integer(json_object_get(doc, "nonce")));
    rep = json_string_value(json_object_get(doc, "report"));
    assert_int_equal(strlen(rep) % 4, 0);
    assert_null(strpbrk(rep, "+/"));
    assert_int_equal(skr_b64_decode(skr_span_str(rep), SKR_B64_URL, &dec), SKR_OK);
    assert_int_equal(skr_json_parse_object(skr_buf_span(&dec), 1u << 20, "bundle", &bundle),
                     SKR_OK);
    assert_true(strncmp((const char *)dec.ptr, "{\"SnpReport\":\"", 14) == 0);
    assert_int_equal(
        skr_b64_decode(skr_span_str(json_string_value(json_object_get(bundle, "Endorsements"))),
                       SKR_B64_URL, &inner),
        SKR_OK);
    assert_int_equal(inner.len, strlen("{\"Uvm\":[\"0oRjb3NlPg==\"]}"));
    assert_memory_equal(inner.ptr, "{\"Uvm\":[\"0oRjb3NlPg==\"]}", inner.len);

    /* no endorsement, no init data: both members left out */
    ev.uvm_endorsement = skr_span_make(NULL, 0);
    ev.init_data = skr_span_make(NULL, 0);
    skr_buf_reset(&out);
    assert_int_equal(skr_maa_request_json(&ev, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &t), SKR_OK);
    assert_null(strstr(t, "initTimeData"));
    skr_buf_reset(&dec);
    json_decref(doc);
    assert_int_equal(skr_json_parse_object(skr_buf_span(&out), 1u << 20, "req", &doc), SKR_OK);
    assert_int_equal(skr_b64_decode(skr_span_str(json_string_value(json_object_get(doc, "report"))),
                                    SKR_B64_URL, &dec),
                     SKR_OK);
    assert_int_equal(skr_buf_cstr(&dec, &t), SKR_OK);
    assert_null(strstr(t, "Endorsements"));

    ev.report = skr_span_make(report, 100);
    assert_int_equal(skr_maa_request_json(&ev, &out), SKR_E_INVALID_ARG);
    ev.report = skr_span_make(report, sizeof(report));
    ev.runtime_data = skr_span_make(NULL, 0);
    assert_int_equal(skr_maa_request_json(&ev, &out), SKR_E_INVALID_ARG);
}

/* ---- identity and THIM against the emulator ---------------------------------------------- */

static void
check_vault_token(const struct skr_token *t)
{
    _cleanup_(json_decrefp) json_t *claims = NULL;
    char *s = secret_strdup(t);
    time_t now = time(NULL);

    if (emu_entra_verify(&g.ctx, s, VAULT, &claims) != SKR_OK) {
        fail_msg("token does not verify: %s", skr_err_msg());
    }
    assert_true(t->expires_on > now && t->expires_on <= now + 2 * EMU_ENTRA_LIFETIME_S);
    free(s);
}

static void
test_imds_token(void **state)
{
    struct skr_token t = { 0 };
    struct skr_upstream up;
    const char *client_id = emu_cfg_str(&g.ctx, "managed_identity", "client_id");
    char base[120];

    (void)state;
    assert_int_equal(skr_imds_token(g.client, g.ctx.imds_url, VAULT, NULL, &t, &up), SKR_OK);
    assert_int_equal(up.status, 200);
    assert_int_equal(up.attempts, 1);
    check_vault_token(&t);
    skr_token_done(&t);
    /* with client_id, and a base URL with a trailing '/' */
    (void)snprintf(base, sizeof(base), "%s/", g.ctx.imds_url);
    assert_int_equal(skr_imds_token(g.client, base, VAULT, client_id, &t, &up), SKR_OK);
    check_vault_token(&t);
    skr_token_done(&t);

    /* an identity that does not exist */
    assert_int_equal(skr_imds_token(g.client, g.ctx.imds_url, VAULT,
                                    "00000000-0000-0000-0000-000000000001", &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 400);
    assert_string_equal(up.code, "invalid_request");
    assert_non_null(strstr(up.message, "Identity not found"));
    assert_non_null(strstr(skr_err_msg(), "IMDS returned HTTP 400 (invalid_request)"));
    assert_null(t.value);
    /* an invalid resource and a missing one */
    assert_int_equal(skr_imds_token(g.client, g.ctx.imds_url, "not a uri", NULL, &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 400);
    assert_string_equal(up.code, "invalid_resource");
    assert_int_equal(skr_imds_token(g.client, g.ctx.imds_url, "", NULL, &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 400);
    assert_string_equal(up.code, "invalid_request");
    /* bad arguments never reach the network */
    assert_int_equal(skr_imds_token(g.client, g.ctx.imds_url, VAULT, "a b", &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 0);
    assert_int_equal(skr_imds_token(g.client, "169.254.169.254", VAULT, NULL, &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_imds_token(g.client, "http://", VAULT, NULL, &t, &up), SKR_E_INVALID_ARG);
    assert_int_equal(skr_imds_token(g.client, "http://h/?x", VAULT, NULL, &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_imds_token(g.client, g.ctx.imds_url, NULL, NULL, &t, &up),
                     SKR_E_INVALID_ARG);
    /* nothing listening */
    assert_int_equal(skr_imds_token(g.client, "http://127.0.0.1:1", VAULT, NULL, &t, NULL),
                     SKR_E_UPSTREAM);
    assert_non_null(strstr(skr_err_msg(), "IMDS: "));
}

/* A projected service account token: signature unchecked by Entra's emulator. */
static char *
assertion(long exp_delta)
{
    _cleanup_(json_decrefp) json_t *claims = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    long now = (long)time(NULL);
    const char *s = NULL;

    claims = json_pack("{s:s, s:s, s:[s], s:I, s:I}", "iss", "https://oidc.example/cluster", "sub",
                       "system:serviceaccount:default:skr", "aud", "api://AzureADTokenExchange",
                       "iat", (json_int_t)(now - 10), "exp", (json_int_t)(now + exp_delta));
    assert_non_null(claims);
    skr_buf_init(&out, 1u << 16);
    assert_int_equal(skr_buf_append_str(&out, "\n  "), SKR_OK);
    assert_int_equal(skr_jwt_sign_rs256(g.transfer, NULL, claims, &out), SKR_OK);
    assert_int_equal(skr_buf_append_str(&out, "\n"), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    return strdup(s);
}

static void
test_wi_token(void **state)
{
    struct skr_token t = { 0 };
    struct skr_upstream up;
    const char *client_id = emu_cfg_str(&g.ctx, "managed_identity", "client_id");
    const char *tenant = emu_cfg_str(&g.ctx, NULL, "tenant_id");
    char *a = assertion(600);
    char *expired = assertion(-3600);
    char authority[120];

    (void)state;
    assert_non_null(client_id);
    assert_non_null(tenant);
    assert_int_equal(
        skr_wi_token(g.client, g.ctx.imds_url, tenant, client_id, skr_span_str(a), VAULT, &t, &up),
        SKR_OK);
    assert_int_equal(up.status, 200);
    check_vault_token(&t);
    skr_token_done(&t);
    /* trailing '/' on the authority, resource with a trailing '/' */
    (void)snprintf(authority, sizeof(authority), "%s/", g.ctx.imds_url);
    assert_int_equal(
        skr_wi_token(g.client, authority, tenant, client_id, skr_span_str(a), VAULT "/", &t, &up),
        SKR_OK);
    skr_token_done(&t);

    /* Entra's errors */
    assert_int_equal(skr_wi_token(g.client, g.ctx.imds_url, tenant, client_id,
                                  skr_span_str(expired), VAULT, &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 401);
    assert_string_equal(up.code, "invalid_client");
    assert_non_null(strstr(skr_err_msg(), "Entra ID returned HTTP 401"));
    assert_int_equal(skr_wi_token(g.client, g.ctx.imds_url, tenant,
                                  "00000000-0000-0000-0000-00000000000f", skr_span_str(a), VAULT,
                                  &t, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 400);
    assert_string_equal(up.code, "unauthorized_client");
    assert_null(t.value);
    /* checked before any request */
    assert_int_equal(skr_wi_token(g.client, g.ctx.imds_url, "ten/ant", client_id, skr_span_str(a),
                                  VAULT, &t, &up),
                     SKR_E_INVALID_ARG);
    assert_non_null(strstr(skr_err_msg(), "tenant"));
    assert_int_equal(
        skr_wi_token(g.client, g.ctx.imds_url, "", client_id, skr_span_str(a), VAULT, &t, &up),
        SKR_E_INVALID_ARG);
    assert_int_equal(skr_wi_token(g.client, g.ctx.imds_url, tenant, client_id,
                                  skr_span_str(" \n\t "), VAULT, &t, &up),
                     SKR_E_INVALID_ARG);
    assert_non_null(strstr(skr_err_msg(), "empty"));
    assert_int_equal(
        skr_wi_token(g.client, "ftp://x", tenant, client_id, skr_span_str(a), VAULT, &t, &up),
        SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 0);
    free(a);
    free(expired);
}

static void
test_thim(void **state)
{
    _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
    struct skr_thim thim;
    struct skr_snp_report rep;
    struct skr_upstream up;

    (void)state;
    skr_buf_init(&json, 1u << 20);
    assert_int_equal(skr_imds_thim(g.client, g.ctx.imds_url, &json, &up), SKR_OK);
    assert_int_equal(up.status, 200);
    assert_int_equal(skr_thim_parse(skr_buf_span(&json), &thim), SKR_OK);
    assert_int_equal(skr_snp_report_parse(skr_buf_span(&g.report), &rep), SKR_OK);
    assert_int_equal(thim.tcbm, rep.reported_tcb);
    skr_thim_done(&thim);
    assert_int_equal(skr_imds_thim(g.client, "http://127.0.0.1:1", &json, &up), SKR_E_UPSTREAM);
    assert_non_null(strstr(skr_err_msg(), "THIM: "));
}

/* ---- MAA --------------------------------------------------------------------------------------
 */

static json_t *
jwt_claims(const char *jwt)
{
    struct skr_jws jws = { 0 };
    json_t *c = NULL;

    assert_int_equal(skr_jws_parse(skr_span_str(jwt), &jws), SKR_OK);
    c = json_incref(jws.claims);
    skr_jws_done(&jws);
    assert_non_null(c);
    return c;
}

static void
test_maa_attest(void **state)
{
    _cleanup_(json_decrefp) json_t *claims = jwt_claims(g.maa_token);
    _cleanup_(skr_buf_donep) struct skr_buf tok = { 0 };
    const json_t *key =
        json_array_get(json_object_get(json_object_get(claims, "x-ms-runtime"), "keys"), 0);
    struct skr_maa_evidence ev = {
        .report = skr_buf_span(&g.report),
        .vcek_chain = skr_buf_span(&g.chain),
        .runtime_data = skr_span_str("{\"keys\":[]}"),
        .init_data = skr_buf_span(&g.policy),
    };
    struct skr_upstream up;

    (void)state;
    assert_string_equal(json_string_value(json_object_get(claims, "x-ms-sevsnpvm-hostdata")),
                        g.hostdata);
    assert_string_equal(json_string_value(json_object_get(key, "kid")), g.transfer_kid);
    assert_string_equal(json_string_value(json_object_get(claims, "x-ms-compliance-status")),
                        "azure-compliant-uvm");
    assert_string_equal(json_string_value(json_object_get(claims, "iss")), g.ctx.maa_url);

    /* REPORT_DATA does not bind this runtime data */
    skr_buf_init(&tok, 1u << 20);
    assert_int_equal(skr_maa_attest(g.client, g.ctx.maa_url, "2020-10-01", NULL, &ev, &tok, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 400);
    assert_string_equal(up.code, "InvalidParameter");
    assert_non_null(strstr(up.message, "REPORT_DATA"));
    assert_non_null(strstr(skr_err_msg(), "MAA returned HTTP 400 (InvalidParameter)"));
    assert_int_equal(tok.len, 0);
    /* the security policy does not match HOST_DATA */
    ev.runtime_data = skr_buf_span(&g.jwks);
    ev.init_data = skr_span_str("another policy");
    assert_int_equal(skr_maa_attest(g.client, g.ctx.maa_url, NULL, NULL, &ev, &tok, &up),
                     SKR_E_INVALID_ARG);
    assert_non_null(strstr(up.message, "HOST_DATA"));
    /* an api-version MAA does not know; bad arguments */
    ev.init_data = skr_buf_span(&g.policy);
    assert_int_equal(skr_maa_attest(g.client, g.ctx.maa_url, "1999-01-01", NULL, &ev, &tok, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 400);
    assert_int_equal(skr_maa_attest(g.client, g.ctx.maa_url, "x&y=1", NULL, &ev, &tok, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 0);
    assert_int_equal(skr_maa_attest(g.client, g.ctx.maa_url, NULL, "ua\r\nX: 1", &ev, &tok, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_maa_attest(g.client, "http://x", NULL, NULL, &ev, &tok, &up),
                     SKR_E_INVALID_ARG);
    /* nothing listening */
    assert_int_equal(skr_maa_attest(g.client, "127.0.0.1:1", NULL, NULL, &ev, &tok, &up),
                     SKR_E_UPSTREAM);
    assert_non_null(strstr(skr_err_msg(), "MAA: "));
    assert_int_equal(tok.len, 0);
}

/* ---- AKV --------------------------------------------------------------------------------------
 */

static char *
b64url(struct skr_span in)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    const char *s = NULL;

    skr_buf_init(&b, 1u << 20);
    assert_int_equal(skr_b64_encode(in, SKR_B64_URL, &b), SKR_OK);
    assert_int_equal(skr_buf_cstr(&b, &s), SKR_OK);
    return strdup(s);
}

static json_t *
release_policy(const char *hostdata)
{
    _cleanup_(json_decrefp) json_t *p = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    json_t *rp = NULL;
    char *data = NULL;

    p = json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}]}", "version", "1.0.0",
                  "anyOf", "authority", g.ctx.maa_url, "allOf", "claim", "x-ms-sevsnpvm-hostdata",
                  "equals", hostdata, "claim", "x-ms-sevsnpvm-is-debuggable", "equals", "false",
                  "claim", "x-ms-attestation-type", "equals", "sevsnpvm");
    assert_non_null(p);
    skr_buf_init(&text, 1u << 16);
    assert_int_equal(skr_json_dump(p, JSON_COMPACT, &text), SKR_OK);
    data = b64url(skr_buf_span(&text));
    rp = json_pack("{s:s, s:s}", "contentType", "application/json; charset=utf-8", "data", data);
    free(data);
    return rp;
}

/* PUT /keys/name with jwk (stolen) and a policy on hostdata; returns the key bundle. */
static json_t *
import_key(const char *name, json_t *jwk, const char *hostdata)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    _cleanup_(skr_http_reply_done) struct skr_http_reply rep = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    char url[300];
    char *auth = NULL;
    const char *headers[3] = { "Content-Type: application/json", NULL, NULL };
    json_t *bundle = NULL;

    body = json_pack("{s:o, s:b, s:{s:b}, s:o}", "key", jwk, "hsm", 1, "attributes", "exportable",
                     1, "release_policy", release_policy(hostdata));
    assert_non_null(body);
    (void)snprintf(url, sizeof(url), "%s/keys/%s?api-version=7.4", g.ctx.akv_url, name);
    auth = malloc(strlen(g.bearer) + 32);
    assert_non_null(auth);
    (void)snprintf(auth, strlen(g.bearer) + 32, "Authorization: Bearer %s", g.bearer);
    headers[1] = auth;
    skr_buf_init(&text, 1u << 20);
    assert_int_equal(skr_json_dump(body, JSON_COMPACT, &text), SKR_OK);
    assert_int_equal(skr_http_request(g.client, "PUT", url, headers, skr_buf_span(&text), &rep),
                     SKR_OK);
    free(auth);
    if (rep.status != 200) {
        fail_msg("import %s: %ld %.*s", name, rep.status, (int)rep.body.len,
                 (const char *)rep.body.ptr);
    }
    assert_int_equal(skr_json_parse(skr_buf_span(&rep.body), 1u << 20, &bundle), SKR_OK);
    return bundle;
}

/* strdup that fails the test when out of memory. */
static char *
t_strdup(const char *s)
{
    char *d = strdup(s);

    if (d == NULL) {
        fail_msg("out of memory");
    }
    return d;
}

/* Releases name and returns the JWS text (the test frees it). */
static skr_err
release(const char *endpoint, const char *kid, const char *bearer, enum skr_kw_alg enc, char **ret,
        struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf jws = { 0 };
    const char *s = NULL;

    skr_buf_init(&jws, 1u << 20);
    TRY(skr_akv_release(g.client, endpoint, kid, NULL, bearer, g.maa_token, enc, &jws, up));
    assert_int_equal(skr_buf_cstr(&jws, &s), SKR_OK);
    *ret = t_strdup(s);
    return SKR_OK;
}

/* Compares two base64url numbers by value (leading zero bytes ignored). */
static void
num_eq(const json_t *a, const json_t *b, const char *member)
{
    _cleanup_(skr_buf_donep) struct skr_buf x = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf y = { 0 };
    size_t i = 0;
    size_t j = 0;

    skr_buf_init(&x, 1u << 16);
    skr_buf_init(&y, 1u << 16);
    assert_true(json_is_string(json_object_get(a, member)));
    assert_true(json_is_string(json_object_get(b, member)));
    assert_int_equal(skr_b64_decode(skr_span_str(json_string_value(json_object_get(a, member))),
                                    SKR_B64_URL, &x),
                     SKR_OK);
    assert_int_equal(skr_b64_decode(skr_span_str(json_string_value(json_object_get(b, member))),
                                    SKR_B64_URL, &y),
                     SKR_OK);
    while (i < x.len && x.ptr[i] == 0) {
        i++;
    }
    while (j < y.len && y.ptr[j] == 0) {
        j++;
    }
    if (x.len - i != y.len - j || memcmp(x.ptr + i, y.ptr + j, x.len - i) != 0) {
        fail_msg("JWK member '%s' differs", member);
    }
}

/* The released JWK text against the imported JWK: members, values, key_ops, sorted form. */
static void
check_jwk(const struct skr_secret *text, const json_t *imported, const char *kty)
{
    _cleanup_(json_decrefp) json_t *got = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf canon = { 0 };
    static const char *const rsa[] = { "d", "dp", "dq", "e", "n", "p", "q", "qi" };
    static const char *const ec[] = { "d", "x", "y" };

    assert_int_equal(text->ptr[text->len], '\0');
    assert_int_equal(skr_json_parse_object(skr_secret_span(text), 1u << 16, "jwk", &got), SKR_OK);
    skr_buf_init(&canon, 1u << 16);
    assert_int_equal(skr_json_dump(got, JSON_COMPACT | JSON_SORT_KEYS, &canon), SKR_OK);
    assert_int_equal(canon.len, text->len);
    assert_memory_equal(canon.ptr, text->ptr, text->len);
    assert_string_equal(json_string_value(json_object_get(got, "kty")), kty);
    assert_true(json_equal(json_object_get(got, "key_ops"), json_object_get(imported, "key_ops")));
    if (strcmp(kty, "oct") == 0) {
        assert_int_equal(json_object_size(got), 3);
        assert_string_equal(json_string_value(json_object_get(got, "k")),
                            json_string_value(json_object_get(imported, "k")));
    } else if (strcmp(kty, "RSA") == 0) {
        assert_int_equal(json_object_size(got), 10);
        for (size_t i = 0; i < SKR_ARRAY_LEN(rsa); i++) {
            num_eq(got, imported, rsa[i]);
            /* jwx: minimal big-endian, no leading zero byte ("AA" prefix) */
            assert_true(strncmp(json_string_value(json_object_get(got, rsa[i])), "AA", 2) != 0);
        }
    } else {
        assert_int_equal(json_object_size(got), 6);
        assert_string_equal(json_string_value(json_object_get(got, "crv")),
                            json_string_value(json_object_get(imported, "crv")));
        for (size_t i = 0; i < SKR_ARRAY_LEN(ec); i++) {
            /* jwx: the field length (P-256: 32 bytes = 43 characters) */
            assert_string_equal(json_string_value(json_object_get(got, ec[i])),
                                json_string_value(json_object_get(imported, ec[i])));
        }
    }
}

static void
release_and_check(const char *name, const json_t *imported, const char *kty)
{
    static const enum skr_kw_alg algs[] = { SKR_KW_CKM_RSA_AES_KEY_WRAP,
                                            SKR_KW_RSA_AES_KEY_WRAP_256,
                                            SKR_KW_RSA_AES_KEY_WRAP_384 };

    for (size_t i = 0; i < SKR_ARRAY_LEN(algs); i++) {
        struct skr_akv_released rel = { 0 };
        struct skr_secret *jwk = NULL;
        struct skr_upstream up;
        char *jws = NULL;

        if (release(g.ctx.akv_url, name, g.bearer, algs[i], &jws, &up) != SKR_OK) {
            fail_msg("release %s %s: %s", name, skr_kw_alg_name(algs[i]), skr_err_msg());
        }
        assert_int_equal(up.status, 200);
        if (skr_akv_release_verify(skr_span_str(jws), g.ctx.akv_url, g.trust, &rel) != SKR_OK) {
            fail_msg("verify %s: %s", name, skr_err_msg());
        }
        assert_int_equal(rel.enc, algs[i]);
        assert_string_equal(rel.wrap_kid, g.transfer_kid);
        assert_non_null(rel.release_policy);
        if (skr_akv_unwrap_jwk(&rel, g.transfer, g.transfer_kid, &jwk) != SKR_OK) {
            fail_msg("unwrap %s: %s", name, skr_err_msg());
        }
        check_jwk(jwk, imported, kty);
        skr_secret_free(jwk);
        skr_akv_released_done(&rel);
        free(jws);
    }
}

static json_t *
pkey_jwk(EVP_PKEY *pk, const char *kty)
{
    json_t *jwk = NULL;

    assert_non_null(pk);
    assert_int_equal(skr_jwk_from_pkey(pk, true, &jwk), SKR_OK);
    assert_int_equal(json_object_set_new(jwk, "kty", json_string(kty)), 0);
    EVP_PKEY_free(pk);
    return jwk;
}

static void
test_release_rsa(void **state)
{
    json_t *jwk = pkey_jwk(EVP_RSA_gen(2048), "RSA-HSM");
    _cleanup_(json_decrefp) json_t *want = json_deep_copy(jwk);
    _cleanup_(json_decrefp) json_t *bundle = NULL;

    (void)state;
    assert_int_equal(
        json_object_set_new(jwk, "key_ops",
                            json_pack("[s,s,s,s]", "encrypt", "decrypt", "wrapKey", "unwrapKey")),
        0);
    assert_int_equal(json_object_set(want, "key_ops", json_object_get(jwk, "key_ops")), 0);
    bundle = import_key("rsa-hsm", jwk, g.hostdata);
    release_and_check("rsa-hsm", want, "RSA");
}

static void
test_release_ec(void **state)
{
    static const char *const curves[] = { "P-256", "P-384", "P-521" };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(curves); i++) {
        json_t *jwk = pkey_jwk(EVP_EC_gen(curves[i]), "EC-HSM");
        _cleanup_(json_decrefp) json_t *want = NULL;
        _cleanup_(json_decrefp) json_t *bundle = NULL;
        char name[32];

        assert_int_equal(json_object_set_new(jwk, "key_ops", json_pack("[s,s]", "sign", "verify")),
                         0);
        want = json_deep_copy(jwk);
        (void)snprintf(name, sizeof(name), "ec-hsm-%zu", i);
        bundle = import_key(name, jwk, g.hostdata);
        release_and_check(name, want, "EC");
    }
}

static void
test_release_oct(void **state)
{
    uint8_t k[32];
    char *k64 = NULL;
    _cleanup_(json_decrefp) json_t *want = NULL;
    _cleanup_(json_decrefp) json_t *bundle = NULL;

    (void)state;
    assert_int_equal(RAND_bytes(k, sizeof(k)), 1);
    k64 = b64url(skr_span_make(k, sizeof(k)));
    want = json_pack("{s:s, s:s, s:[s,s]}", "kty", "oct-HSM", "k", k64, "key_ops", "encrypt",
                     "decrypt");
    free(k64);
    bundle = import_key("oct-hsm", json_deep_copy(want), g.hostdata);
    release_and_check("oct-hsm", want, "oct");
}

static json_t *
oct_key(void)
{
    uint8_t k[32];
    char *k64 = NULL;
    json_t *j = NULL;

    assert_int_equal(RAND_bytes(k, sizeof(k)), 1);
    k64 = b64url(skr_span_make(k, sizeof(k)));
    j = json_pack("{s:s, s:s}", "kty", "oct-HSM", "k", k64);
    free(k64);
    return j;
}

static void
test_release_errors(void **state)
{
    _cleanup_(json_decrefp) json_t *b1 = import_key("denied", oct_key(),
                                                    "00"
                                                    "00000000000000"
                                                    "000000000000000000000000000000000000000000"
                                                    "00000000");
    _cleanup_(json_decrefp) json_t *b2 = import_key("okkey", oct_key(), g.hostdata);
    const char *kid = json_string_value(json_object_get(json_object_get(b2, "key"), "kid"));
    struct skr_upstream up;
    char other[200];
    _cleanup_free_ char *jws = NULL; /* set only by a release that succeeded */
    char *wrong_aud = NULL;
    _cleanup_(json_decrefp) json_t *bundle = NULL;

    (void)state;
    /* policy denial: 403 -> SKR_E_POLICY with the service's message */
    assert_int_equal(
        release(g.ctx.akv_url, "denied", g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
        SKR_E_POLICY);
    assert_int_equal(up.status, 403);
    assert_string_equal(up.code, "Forbidden");
    assert_non_null(strstr(up.message, "x-ms-sevsnpvm-hostdata"));
    assert_non_null(strstr(skr_err_msg(), "AKV returned HTTP 403 (Forbidden)"));
    assert_non_null(strstr(skr_err_msg(), "x-ms-sevsnpvm-hostdata"));
    /* unknown key */
    assert_int_equal(
        release(g.ctx.akv_url, "nokey", g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
        SKR_E_NOT_FOUND);
    assert_int_equal(up.status, 404);
    /* bad bearer: 401 with the challenge */
    assert_int_equal(
        release(g.ctx.akv_url, "okkey", "bogus.token.x", SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
        SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 401);
    assert_string_equal(up.challenge_resource, VAULT);
    assert_string_equal(up.code, "Unauthorized");
    /* a token for another audience */
    {
        struct skr_token t = { 0 };

        assert_int_equal(skr_imds_token(g.client, g.ctx.imds_url, "https://managedhsm.azure.net",
                                        NULL, &t, NULL),
                         SKR_OK);
        wrong_aud = secret_strdup(&t);
        skr_token_done(&t);
    }
    assert_int_equal(
        release(g.ctx.akv_url, "okkey", wrong_aud, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
        SKR_E_INVALID_ARG);
    assert_int_equal(up.status, 401);
    assert_string_equal(up.challenge_resource, VAULT);
    free(wrong_aud);

    /* kid forms: a full key URL (with version) on the same vault, and name/version */
    assert_non_null(kid);
    assert_int_equal(release(g.ctx.akv_url, kid, g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
                     SKR_OK);
    free(jws);
    jws = NULL;
    assert_int_equal(release(g.ctx.akv_url, strstr(kid, "/keys/") + 6, g.bearer,
                             SKR_KW_CKM_RSA_AES_KEY_WRAP, &jws, &up),
                     SKR_OK);
    free(jws);
    jws = NULL;
    (void)snprintf(other, sizeof(other), "https://other.vault.azure.net/keys/okkey");
    assert_int_equal(
        release(g.ctx.akv_url, other, g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
        SKR_E_INVALID_ARG);
    assert_non_null(strstr(skr_err_msg(), "another vault"));
    assert_int_equal(up.status, 0);
    static const char *const bad_kids[] = { "",    "a_b", "a/b/c", "../x",
                                            "a?b", "a b", "/a",    "https://h/k/x" };
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad_kids); i++) {
        if (release(g.ctx.akv_url, bad_kids[i], g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up) !=
            SKR_E_INVALID_ARG) {
            fail_msg("kid '%s' accepted", bad_kids[i]);
        }
    }
    assert_int_equal(release(g.ctx.akv_url, "okkey", "a b", SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
                     SKR_E_INVALID_ARG);
    assert_int_equal(release(g.ctx.akv_url, "okkey", g.bearer, (enum skr_kw_alg)9, &jws, &up),
                     SKR_E_INVALID_ARG);
    /* AKV down */
    assert_int_equal(
        release("127.0.0.1:1", "okkey", g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
        SKR_E_UPSTREAM);
    assert_non_null(strstr(skr_err_msg(), "AKV: "));

    /* get key */
    assert_int_equal(
        skr_akv_get_key(g.client, g.ctx.akv_url, "okkey", NULL, g.bearer, &bundle, &up), SKR_OK);
    assert_non_null(json_object_get(bundle, "release_policy"));
    assert_int_equal(
        skr_akv_get_key(g.client, g.ctx.akv_url, "nokey", NULL, g.bearer, &bundle, &up),
        SKR_E_NOT_FOUND);
}

/* Flips character i of s to another base64url character. */
static void
flip(char *s, size_t i)
{
    s[i] = s[i] == 'A' ? 'B' : 'A';
}

static void
expect_verify_fail(const char *jws, const char *endpoint, X509_STORE *trust, const char *needle)
{
    struct skr_akv_released rel = { 0 };
    skr_err e = skr_akv_release_verify(skr_span_str(jws), endpoint, trust, &rel);

    if (e != SKR_E_VERIFY || strstr(skr_err_msg(), needle) == NULL) {
        fail_msg("expected SKR_E_VERIFY '%s', got %s '%s'", needle, skr_err_name(e), skr_err_msg());
    }
    assert_null(rel.payload);
}

/* Signs payload with key under header extra (RS256). */
static char *
sign(EVP_PKEY *key, json_t *extra, const char *payload)
{
    _cleanup_(json_decrefp) json_t *claims = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    const char *s = NULL;

    assert_int_equal(skr_json_parse(skr_span_str(payload), 1u << 20, &claims), SKR_OK);
    skr_buf_init(&out, 1u << 20);
    assert_int_equal(skr_jwt_sign_rs256(key, extra, claims, &out), SKR_OK);
    json_decref(extra);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    return strdup(s);
}

static void
test_release_verify(void **state)
{
    _cleanup_(json_decrefp) json_t *b = import_key("tamper", oct_key(), g.hostdata);
    _cleanup_(X509_STORE_freep) X509_STORE *sys = NULL;
    struct skr_jws parsed = { 0 };
    struct skr_akv_released rel = { 0 };
    struct skr_secret *jwk = NULL;
    struct skr_upstream up;
    char *jws = NULL;
    char *t = NULL;
    char *p1 = NULL;
    char *p2 = NULL;
    char ep[500];
    EVP_PKEY *other = EVP_RSA_gen(2048);

    (void)state;
    if (release(g.ctx.akv_url, "tamper", g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up) !=
        SKR_OK) {
        fail_msg("release: %s", skr_err_msg());
    }
    p1 = strchr(jws, '.');
    p2 = p1 != NULL ? strchr(p1 + 1, '.') : NULL;
    if (p2 == NULL) {
        fail_msg("the released JWS has no three parts");
    }
    /* the untouched JWS verifies, also for the endpoint written as host:port */
    (void)snprintf(ep, sizeof(ep), "%.100s", g.ctx.akv_url + 8);
    assert_int_equal(skr_akv_release_verify(skr_span_str(jws), ep, g.trust, &rel), SKR_OK);
    /* unwrap for another kid, or with another key under the right kid */
    assert_int_equal(skr_akv_unwrap_jwk(&rel, g.transfer, "other-kid", &jwk), SKR_E_VERIFY);
    assert_int_equal(skr_akv_unwrap_jwk(&rel, other, g.transfer_kid, &jwk), SKR_E_VERIFY);
    assert_null(jwk);
    skr_akv_released_done(&rel);

    /* a byte of the payload, of the signature */
    t = t_strdup(jws);
    flip(t, (size_t)(p1 - jws) + (size_t)(p2 - p1) / 2);
    expect_verify_fail(t, g.ctx.akv_url, g.trust, "signature");
    free(t);
    t = t_strdup(jws);
    flip(t, (size_t)(p2 - jws) + strlen(p2) / 2);
    expect_verify_fail(t, g.ctx.akv_url, g.trust, "signature");
    free(t);
    /* another host name, another IP address */
    expect_verify_fail(jws, "https://vault.example.net", g.trust, "not issued for");
    (void)snprintf(ep, sizeof(ep), "127.0.0.2:%u", skr_http_server_port(g.akv));
    expect_verify_fail(jws, ep, g.trust, "not issued for 127.0.0.2");
    /* localhost is a name of the leaf: the name check passes */
    assert_int_equal(skr_akv_release_verify(skr_span_str(jws), "localhost", g.trust, &rel), SKR_OK);
    skr_akv_released_done(&rel);
    /* a trust store without the emulator CA */
    assert_int_equal(skr_http_trust_new(NULL, &sys), SKR_OK);
    expect_verify_fail(jws, g.ctx.akv_url, sys, "trusted root");
    assert_int_equal(skr_http_trust_new("/nonexistent/ca.pem", &sys), SKR_E_IO);

    /* crafted JWS: no x5c; a wrong x5t#S256; signed by a key that is not x5c[0]'s */
    assert_int_equal(skr_jws_parse(skr_span_str(jws), &parsed), SKR_OK);
    {
        char *payload = dup_bytes((const char *)parsed.payload.ptr, parsed.payload.len);
        json_t *x5c = json_object_get(parsed.header, "x5c");

        t = sign(g.ctx.tls_key, NULL, payload);
        expect_verify_fail(t, g.ctx.akv_url, g.trust, "no x5c");
        free(t);
        t = sign(g.ctx.tls_key,
                 json_pack("{s:O, s:s}", "x5c", x5c, "x5t#S256",
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                 payload);
        expect_verify_fail(t, g.ctx.akv_url, g.trust, "");
        free(t);
        t = sign(other, json_pack("{s:O}", "x5c", x5c), payload);
        expect_verify_fail(t, g.ctx.akv_url, g.trust, "signature");
        free(t);
        /* properly signed, only the x5c of the real service: accepted */
        t = sign(g.ctx.tls_key, json_pack("{s:O}", "x5c", x5c), payload);
        assert_int_equal(skr_akv_release_verify(skr_span_str(t), g.ctx.akv_url, g.trust, &rel),
                         SKR_OK);
        skr_akv_released_done(&rel);
        free(t);
        /* signed, but the payload is not a release payload */
        t = sign(g.ctx.tls_key, json_pack("{s:O}", "x5c", x5c), "{\"response\":{}}");
        assert_int_equal(skr_akv_release_verify(skr_span_str(t), g.ctx.akv_url, g.trust, &rel),
                         SKR_E_MALFORMED);
        free(t);
        free(payload);
    }
    skr_jws_done(&parsed);
    assert_int_equal(
        skr_akv_release_verify(skr_span_str("not a jws"), g.ctx.akv_url, g.trust, &rel),
        SKR_E_MALFORMED);
    assert_int_equal(skr_akv_release_verify(skr_span_str(jws), "http://x", g.trust, &rel),
                     SKR_E_INVALID_ARG);
    EVP_PKEY_free(other);
    free(jws);
}

/* ---- statuses and headers no emulator sends: a canned server ---------------------------- */

static struct {
    unsigned int status;
    const char *body;
} canned;

static skr_err
canned_handle(void *ctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    (void)ctx;
    (void)req;
    TRY(skr_http_response_add_header(resp, "x-ms-request-id", "req-1 \tend"));
    TRY(skr_http_response_add_header(resp, "Content-Type", "application/json"));
    resp->status = canned.status;
    return skr_buf_append_str(&resp->body, canned.body);
}

static void
test_statuses(void **state)
{
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv =
        start_server(canned_handle, true);
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    _cleanup_(json_decrefp) json_t *bundle = NULL;
    struct skr_maa_evidence ev = {
        .report = skr_buf_span(&g.report),
        .vcek_chain = skr_buf_span(&g.chain),
        .runtime_data = skr_buf_span(&g.jwks),
    };
    struct skr_token t = { 0 };
    struct skr_upstream up;
    char ep[64];
    char base[80];
    static const struct {
        unsigned int status;
        skr_err release;
        skr_err other;
    } cases[] = {
        { 500, SKR_E_UPSTREAM, SKR_E_UPSTREAM },
        { 503, SKR_E_UPSTREAM, SKR_E_UPSTREAM },
        { 429, SKR_E_UPSTREAM, SKR_E_UPSTREAM },
        { 408, SKR_E_UPSTREAM, SKR_E_UPSTREAM },
        { 400, SKR_E_INVALID_ARG, SKR_E_INVALID_ARG },
        { 409, SKR_E_INVALID_ARG, SKR_E_INVALID_ARG },
        { 403, SKR_E_POLICY, SKR_E_INVALID_ARG },
        { 404, SKR_E_NOT_FOUND, SKR_E_NOT_FOUND },
        { 302, SKR_E_UPSTREAM, SKR_E_UPSTREAM },
    };
    _cleanup_free_ char *jws = NULL; /* set only by a release that succeeded */

    (void)state;
    (void)snprintf(ep, sizeof(ep), "127.0.0.1:%u", skr_http_server_port(srv));
    (void)snprintf(base, sizeof(base), "https://%s", ep);
    skr_buf_init(&out, 1u << 20);
    canned.body = "{\"error\":{\"code\":\"Boom\",\"message\":\"it broke\"}}";
    for (size_t i = 0; i < SKR_ARRAY_LEN(cases); i++) {
        canned.status = cases[i].status;
        assert_int_equal(release(ep, "k", g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
                         cases[i].release);
        assert_int_equal(up.status, (long)cases[i].status);
        assert_int_equal(up.attempts, 1);
        assert_string_equal(up.request_id, "req-1 ?end");
        assert_string_equal(up.code, "Boom");
        assert_string_equal(up.message, "it broke");
        assert_non_null(strstr(skr_err_msg(), "AKV returned HTTP"));
        assert_non_null(strstr(skr_err_msg(), "(Boom): it broke"));
        assert_int_equal(skr_maa_attest(g.client, ep, NULL, NULL, &ev, &out, &up), cases[i].other);
        assert_int_equal(skr_akv_get_key(g.client, ep, "k", NULL, g.bearer, &bundle, &up),
                         cases[i].other);
        assert_int_equal(skr_imds_token(g.client, base, VAULT, NULL, &t, &up), cases[i].other);
        assert_non_null(strstr(skr_err_msg(), "IMDS returned HTTP"));
    }
    assert_int_equal(out.len, 0);
    /* 200 with bodies that are not what the service sends */
    canned.status = 200;
    canned.body = "<html>";
    assert_int_equal(skr_maa_attest(g.client, ep, NULL, NULL, &ev, &out, &up), SKR_E_MALFORMED);
    assert_int_equal(release(ep, "k", g.bearer, SKR_KW_RSA_AES_KEY_WRAP_256, &jws, &up),
                     SKR_E_MALFORMED);
    assert_int_equal(skr_akv_get_key(g.client, ep, "k", NULL, g.bearer, &bundle, &up),
                     SKR_E_MALFORMED);
    assert_int_equal(skr_imds_token(g.client, base, VAULT, NULL, &t, &up), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "IMDS: "));
    canned.body = "";
    assert_int_equal(skr_imds_thim(g.client, base, &out, &up), SKR_E_MALFORMED);
    canned.body = "{\"access_token\":\"x\"}";
    assert_int_equal(skr_wi_token(g.client, base, "t", "c", skr_span_str("a.b.c"), VAULT, &t, &up),
                     SKR_E_MALFORMED);
    assert_null(t.value);
    /* the server's certificate does not verify without the CA */
    {
        _cleanup_(skr_http_client_freep) struct skr_http_client *plain = NULL;
        struct skr_http_client_opts o;

        skr_http_client_opts_init(&o);
        o.retries = 0;
        assert_int_equal(skr_http_client_new(&o, &plain), SKR_OK);
        assert_int_equal(skr_maa_attest(plain, ep, NULL, NULL, &ev, &out, &up), SKR_E_VERIFY);
        assert_non_null(strstr(skr_err_msg(), "MAA: "));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_base_long),
        cmocka_unit_test(test_resource_for),
        cmocka_unit_test(test_token_parse),
        cmocka_unit_test(test_jws_responses),
        cmocka_unit_test(test_upstream_error),
        cmocka_unit_test(test_release_payload),
        cmocka_unit_test(test_maa_request_json),
        cmocka_unit_test(test_endpoint_base),
        cmocka_unit_test(test_imds_token),
        cmocka_unit_test(test_wi_token),
        cmocka_unit_test(test_thim),
        cmocka_unit_test(test_maa_attest),
        cmocka_unit_test(test_release_rsa),
        cmocka_unit_test(test_release_ec),
        cmocka_unit_test(test_release_oct),
        cmocka_unit_test(test_release_errors),
        cmocka_unit_test(test_release_verify),
        cmocka_unit_test(test_statuses),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
