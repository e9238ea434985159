/*
 * test_release.c - libskr's release flow (lib/release*.c) through the public API of skr.h,
 * against the emulator's IMDS, MAA and Key Vault services run in this process on loopback
 * (DIR made by `skr-emu init`). Each service sits behind a wrapper that counts requests, so
 * "the second release did not call MAA" is read from the MAA server itself. A fourth TLS
 * server plays AMD KDS and AzCache for the certificate-source tests: it serves a VCEK that this
 * test issues (signed with the emulated ASK) for a TCB the security context, the device's
 * certificate table and THIM do not have.
 */
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "skr/skr.h"

#include "b64.h"
#include "buf.h"
#include "emu.h"
#include "hex.h"
#include "http_client.h"
#include "http_server.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "release_int.h"
#include "secret.h"
#include "service.h"
#include "snp_certs.h"
#include "snp_emu.h"
#include "snp_report.h"

/* ---- the in-process services ------------------------------------------------------------ */

struct svc {
    skr_http_handler inner;
    struct emu_ctx *ctx;
    atomic_uint requests;
    atomic_uint attests; /* MAA: attest calls */
    atomic_uint thim;    /* IMDS: THIM calls */
    atomic_uint delay_ms;
    struct skr_http_server *srv;
};

static struct {
    char root[256];
    char dir[300];
    char mismatch[320]; /* an emulated platform whose REPORTED_TCB has no certificate anywhere */
    struct emu_ctx ctx;
    struct svc imds, maa, akv;
    struct skr_http_server *kds;
    atomic_uint kds_requests, azc_requests;
    char kds_url[80];
    char maa_host[80], akv_host[80];
    char hostdata[65];
    char sc_tcbm[17];  /* the security context's tcbm */
    char new_tcbm[17]; /* the mismatch platform's TCB */
    uint64_t new_tcb;
    uint8_t chip[64];
    X509 *new_vcek; /* issued by this test for new_tcb */
    EVP_PKEY *rsa;  /* the key imported as RSA-HSM "rel-rsa" */
    char wi_client[64];
    char wi_file[400];
} g;

static skr_err
svc_handle(void *vs, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct svc *s = vs;

    atomic_fetch_add(&s->requests, 1);
    if (strstr(req->path, "attest") != NULL || strstr(req->path, "Attest") != NULL) {
        atomic_fetch_add(&s->attests, 1);
    }
    if (strstr(req->path, "THIM") != NULL) {
        atomic_fetch_add(&s->thim, 1);
    }
    resp->delay_ms = atomic_load(&s->delay_ms);
    return s->inner(s->ctx, req, resp);
}

static void
start_svc(struct svc *s, skr_http_handler h, bool tls)
{
    struct skr_http_server_cfg cfg = { 0 };
    char cert[400];
    char key[400];

    s->inner = h;
    s->ctx = &g.ctx;
    (void)snprintf(cert, sizeof(cert), "%s/%s", g.dir, EMU_TLS_CERT);
    (void)snprintf(key, sizeof(key), "%s/%s", g.dir, EMU_TLS_KEY);
    if (tls) {
        cfg.tls_cert_file = cert;
        cfg.tls_key_file = key;
    }
    cfg.handler = svc_handle;
    cfg.handler_ctx = s;
    if (skr_http_server_start(&cfg, &s->srv) != SKR_OK) {
        fail_msg("server start: %s", skr_err_msg());
    }
}

/* ---- AMD KDS and AzCache, played by this test --------------------------------------------- */

static skr_err
append_file(const char *rel, struct skr_buf *out)
{
    char path[600];

    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, rel);
    return skr_read_file(path, out);
}

static skr_err
kds_handle(void *unused, const struct skr_http_request *req, struct skr_http_response *resp)
{
    char chip[129];
    char prefix[300];

    (void)unused;
    skr_hex_fmt(g.chip, 64, chip);
    if (strcmp(req->path, "/vcek/v1/Milan/cert_chain") == 0) {
        atomic_fetch_add(&g.kds_requests, 1);
        TRY(append_file("snp/ask.pem", &resp->body));
        return append_file("snp/ark.pem", &resp->body);
    }
    (void)snprintf(prefix, sizeof(prefix), "/vcek/v1/Milan/%s", chip);
    if (strcmp(req->path, prefix) == 0) {
        unsigned char *der = NULL;
        int len = i2d_X509(g.new_vcek, &der);
        char want[40];
        skr_err e;

        atomic_fetch_add(&g.kds_requests, 1);
        (void)snprintf(want, sizeof(want), "%u", (unsigned)(g.new_tcb >> 56));
        if (skr_http_request_query(req, "ucodeSPL") == NULL ||
            strcmp(skr_http_request_query(req, "ucodeSPL"), want) != 0) {
            OPENSSL_free(der);
            resp->status = 404;
            return SKR_OK;
        }
        e = skr_buf_append(&resp->body, der, (size_t)len);
        OPENSSL_free(der);
        return e;
    }
    (void)snprintf(prefix, sizeof(prefix), "/SevSnpVM/certificates/%s/%llx", chip,
                   (unsigned long long)g.new_tcb);
    if (strcmp(req->path, prefix) == 0) {
        const char *api = skr_http_request_query(req, "api-version");
        const char *cid = skr_http_request_query(req, "clientId");

        atomic_fetch_add(&g.azc_requests, 1);
        if (api == NULL || cid == NULL || strcmp(cid, "ConfidentialACI") != 0) {
            resp->status = 400;
            return SKR_OK;
        }
        TRY(skr_pem_write_cert(g.new_vcek, &resp->body));
        TRY(append_file("snp/ask.pem", &resp->body));
        return append_file("snp/ark.pem", &resp->body);
    }
    resp->status = 404;
    return SKR_OK;
}

/* ---- setup -------------------------------------------------------------------------------- */

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

static void
rm_tree(const char *path)
{
    char a0[] = "rm";
    char a1[] = "-rf";
    char a2[400];
    char *argv[] = { a0, a1, a2, NULL };

    (void)snprintf(a2, sizeof(a2), "%s", path);
    (void)run(argv);
}

static void
read_text(const char *path, struct skr_buf *out)
{
    skr_buf_init(out, 1u << 20);
    if (skr_read_file(path, out) != SKR_OK) {
        fail_msg("read %s: %s", path, skr_err_msg());
    }
}

static void
write_text(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "we");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static char *
bearer(const char *resource)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    const char *s = NULL;

    skr_buf_init(&out, 1u << 16);
    assert_int_equal(emu_entra_issue(&g.ctx, resource, NULL, &out, NULL), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    return strdup(s);
}

static long
akv_put(const char *name, const json_t *body)
{
    _cleanup_(skr_http_client_freep) struct skr_http_client *hc = NULL;
    _cleanup_(skr_http_reply_done) struct skr_http_reply rep = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    struct skr_http_client_opts o;
    char url[300];
    char ca[400];
    char auth[8192];
    char *tok = bearer("https://vault.azure.net");
    const char *headers[] = { "Content-Type: application/json", auth, NULL };

    (void)snprintf(ca, sizeof(ca), "%s/%s", g.dir, EMU_CA_CERT);
    skr_http_client_opts_init(&o);
    o.ca_file = ca;
    o.retries = 0;
    assert_int_equal(skr_http_client_new(&o, &hc), SKR_OK);
    (void)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    free(tok);
    (void)snprintf(url, sizeof(url), "%s/keys/%s?api-version=7.4", g.ctx.akv_url, name);
    skr_buf_init(&text, 1u << 20);
    assert_int_equal(skr_json_dump(body, JSON_COMPACT, &text), SKR_OK);
    assert_int_equal(skr_http_request(hc, "PUT", url, headers, skr_buf_span(&text), &rep), SKR_OK);
    return rep.status;
}

static void
import_rsa(const char *name, const char *hostdata)
{
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(json_decrefp) json_t *policy = NULL;
    _cleanup_(json_decrefp) json_t *body = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf ptext = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf pb64 = { 0 };
    const char *s = NULL;
    long st;

    assert_int_equal(skr_jwk_from_pkey(g.rsa, true, &jwk), SKR_OK);
    assert_int_equal(json_object_set_new(jwk, "kty", json_string("RSA-HSM")), 0);
    policy =
        json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}", "version", "1.0.0", "anyOf",
                  "authority", g.ctx.maa_url, "allOf", "claim", "x-ms-sevsnpvm-hostdata", "equals",
                  hostdata, "claim", "x-ms-sevsnpvm-is-debuggable", "equals", "false");
    assert_non_null(policy);
    skr_buf_init(&ptext, 1u << 16);
    skr_buf_init(&pb64, 1u << 16);
    assert_int_equal(skr_json_dump(policy, JSON_COMPACT, &ptext), SKR_OK);
    assert_int_equal(skr_b64_encode(skr_buf_span(&ptext), SKR_B64_URL, &pb64), SKR_OK);
    assert_int_equal(skr_buf_cstr(&pb64, &s), SKR_OK);
    body = json_pack("{s:O, s:b, s:{s:b}, s:{s:s, s:s}}", "key", jwk, "hsm", 1, "attributes",
                     "exportable", 1, "release_policy", "contentType",
                     "application/json; charset=utf-8", "data", s);
    assert_non_null(body);
    st = akv_put(name, body);
    if (st != 200) {
        fail_msg("import %s: HTTP %ld", name, st);
    }
}

/* RSASSA-PSS SHA-384 as the emulated ASK signs. */
static void
sign_pss(X509 *cert, EVP_PKEY *key)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    assert_non_null(mctx);
    assert_int_equal(EVP_DigestSignInit(mctx, &pctx, EVP_sha384(), NULL, key), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()), 1);
    assert_true(X509_sign_ctx(cert, mctx) > 0);
    EVP_MD_CTX_free(mctx);
}

/* The platform's VCEK re-issued for ucodeSPL + 1, and a copy of the platform claiming that TCB
 * (its reports are signed by the same VCEK key, so only the new certificate verifies them). */
static void
make_mismatch_platform(void)
{
    static const char *const files[] = { "ark.pem", "ask.pem", "vcek.pem", "vcek.key" };
    _cleanup_(skr_buf_donep) struct skr_buf pj = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    struct skr_snp_tcb t;
    uint64_t old_tcb = 0;
    char path[600];
    FILE *f;
    EVP_PKEY *ask_key;
    ASN1_OBJECT *oid;
    ASN1_OCTET_STRING *val;
    int idx;
    uint8_t der[4];

    (void)snprintf(g.mismatch, sizeof(g.mismatch), "%s/mismatch", g.root);
    assert_int_equal(mkdir(g.mismatch, 0700), 0);
    for (size_t i = 0; i < SKR_ARRAY_LEN(files); i++) {
        _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

        (void)snprintf(path, sizeof(path), "%s/snp/%s", g.dir, files[i]);
        read_text(path, &b);
        (void)snprintf(path, sizeof(path), "%s/%s", g.mismatch, files[i]);
        write_text(path, b.ptr, b.len);
    }
    (void)snprintf(path, sizeof(path), "%s/snp/platform.json", g.dir);
    read_text(path, &pj);
    assert_int_equal(skr_json_parse(skr_buf_span(&pj), 1u << 20, &doc), SKR_OK);
    assert_int_equal(
        skr_parse_hex_u64(skr_span_str(json_string_value(json_object_get(doc, "tcb"))), &old_tcb),
        SKR_OK);
    skr_snp_tcb_decode(old_tcb, SKR_SNP_PRODUCT_MILAN, &t);
    t.microcode++;
    g.new_tcb = skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_MILAN);
    skr_snp_tcb_tcbm(g.new_tcb, g.new_tcbm);
    assert_int_equal(json_object_set_new(doc, "tcb", json_string(g.new_tcbm)), 0);
    skr_buf_init(&out, 1u << 20);
    assert_int_equal(skr_json_dump(doc, JSON_INDENT(2), &out), SKR_OK);
    (void)snprintf(path, sizeof(path), "%s/platform.json", g.mismatch);
    write_text(path, out.ptr, out.len);

    /* the new VCEK: same key and extensions, ucodeSPL + 1, signed by the ASK */
    (void)snprintf(path, sizeof(path), "%s/snp/vcek.pem", g.dir);
    f = fopen(path, "re");
    assert_non_null(f);
    g.new_vcek = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(g.new_vcek);
    (void)snprintf(path, sizeof(path), "%s/snp/ask.key", g.dir);
    f = fopen(path, "re");
    assert_non_null(f);
    ask_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(ask_key);
    oid = OBJ_txt2obj("1.3.6.1.4.1.3704.1.3.8", 1);
    idx = X509_get_ext_by_OBJ(g.new_vcek, oid, -1);
    ASN1_OBJECT_free(oid);
    assert_true(idx >= 0);
    der[0] = 0x02;
    der[1] = t.microcode >= 0x80 ? 2 : 1;
    der[2] = t.microcode >= 0x80 ? 0 : t.microcode;
    der[3] = t.microcode;
    val = ASN1_OCTET_STRING_new();
    assert_int_equal(ASN1_OCTET_STRING_set(val, der, der[1] + 2), 1);
    assert_int_equal(X509_EXTENSION_set_data(X509_get_ext(g.new_vcek, idx), val), 1);
    ASN1_OCTET_STRING_free(val);
    sign_pss(g.new_vcek, ask_key);
    EVP_PKEY_free(ask_key);
}

static int
setup(void **state)
{
    char prog[512];
    char a1[] = "init";
    char *argv[4];
    char path[600];
    const char *build = getenv("SKR_BUILD_DIR");
    _cleanup_(skr_buf_donep) struct skr_buf pol = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf dec = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf cfgtext = { 0 };
    _cleanup_(json_decrefp) json_t *cfg = NULL;
    _cleanup_(skr_thim_done) struct skr_thim thim = { 0 };
    uint8_t md[32];

    (void)state;
    (void)snprintf(g.root, sizeof(g.root), "/tmp/skr-test-release-XXXXXX");
    assert_non_null(mkdtemp(g.root));
    (void)snprintf(g.dir, sizeof(g.dir), "%s/emu", g.root);
    (void)snprintf(prog, sizeof(prog), "%s/src/skr-emu", build != NULL ? build : ".");
    argv[0] = prog;
    argv[1] = a1;
    argv[2] = g.dir;
    argv[3] = NULL;
    assert_int_equal(run(argv), EMU_EXIT_OK);

    /* a workload identity Entra knows but the vault does not grant release */
    (void)snprintf(g.wi_client, sizeof(g.wi_client), "6f1c1b9e-3a57-4d3e-9a55-0c2d5a7e9b11");
    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, EMU_CONFIG);
    read_text(path, &cfgtext);
    assert_int_equal(skr_json_parse(skr_buf_span(&cfgtext), 1u << 20, &cfg), SKR_OK);
    assert_int_equal(json_object_set_new(cfg, "workload_client_ids", json_pack("[s]", g.wi_client)),
                     0);
    skr_buf_reset(&cfgtext);
    assert_int_equal(skr_json_dump(cfg, JSON_INDENT(2), &cfgtext), SKR_OK);
    write_text(path, cfgtext.ptr, cfgtext.len);

    if (emu_ctx_load(g.dir, &g.ctx) != SKR_OK) {
        fail_msg("emu_ctx_load: %s", skr_err_msg());
    }
    start_svc(&g.imds, emu_imds_handle, false);
    start_svc(&g.maa, emu_maa_handle, true);
    start_svc(&g.akv, emu_akv_handle, true);
    (void)snprintf(g.ctx.imds_url, sizeof(g.ctx.imds_url), "http://127.0.0.1:%u",
                   skr_http_server_port(g.imds.srv));
    (void)snprintf(g.ctx.maa_url, sizeof(g.ctx.maa_url), "https://127.0.0.1:%u",
                   skr_http_server_port(g.maa.srv));
    (void)snprintf(g.ctx.akv_url, sizeof(g.ctx.akv_url), "https://127.0.0.1:%u",
                   skr_http_server_port(g.akv.srv));
    (void)snprintf(g.maa_host, sizeof(g.maa_host), "127.0.0.1:%u", skr_http_server_port(g.maa.srv));
    (void)snprintf(g.akv_host, sizeof(g.akv_host), "127.0.0.1:%u", skr_http_server_port(g.akv.srv));
    {
        struct skr_http_server_cfg kc = { 0 };
        char cert[400];
        char key[400];

        (void)snprintf(cert, sizeof(cert), "%s/%s", g.dir, EMU_TLS_CERT);
        (void)snprintf(key, sizeof(key), "%s/%s", g.dir, EMU_TLS_KEY);
        kc.tls_cert_file = cert;
        kc.tls_key_file = key;
        kc.handler = kds_handle;
        assert_int_equal(skr_http_server_start(&kc, &g.kds), SKR_OK);
        (void)snprintf(g.kds_url, sizeof(g.kds_url), "https://127.0.0.1:%u",
                       skr_http_server_port(g.kds));
    }

    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, EMU_SECCTX_POLICY);
    read_text(path, &pol);
    skr_buf_init(&dec, 1u << 20);
    assert_int_equal(skr_b64_decode(skr_buf_span(&pol), SKR_B64_STD | SKR_B64_SKIP_WS, &dec),
                     SKR_OK);
    SHA256(dec.ptr, dec.len, md);
    skr_hex_fmt(md, 32, g.hostdata);
    skr_buf_reset(&pol);
    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, EMU_SECCTX_HOST_AMD);
    assert_int_equal(skr_read_file(path, &pol), SKR_OK);
    assert_int_equal(skr_thim_parse_b64(skr_buf_span(&pol), &thim), SKR_OK);
    skr_snp_tcb_tcbm(thim.tcbm, g.sc_tcbm);

    g.rsa = EVP_RSA_gen(2048);
    assert_non_null(g.rsa);
    import_rsa("rel-rsa", g.hostdata);
    import_rsa("rel-mismatch", "00000000000000000000000000000000000000000000000000000000000000ff");
    make_mismatch_platform();
    {
        struct skr_snp_emu *emu = NULL;

        assert_int_equal(skr_snp_emu_open(g.dir, &emu), SKR_OK);
        memcpy(g.chip, skr_snp_emu_params(emu)->chip_id, 64);
        skr_snp_emu_free(emu);
    }
    (void)snprintf(g.wi_file, sizeof(g.wi_file), "%s/wi-token", g.root);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    skr_http_server_stop(g.imds.srv);
    skr_http_server_stop(g.maa.srv);
    skr_http_server_stop(g.akv.srv);
    skr_http_server_stop(g.kds);
    X509_free(g.new_vcek);
    EVP_PKEY_free(g.rsa);
    emu_ctx_done(&g.ctx);
    rm_tree(g.root);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* A config for the emulated platform and the in-process services, plus NULL-terminated pairs. */
static skr_config *
config(const char *first, ...)
{
    skr_config *cfg = NULL;
    char path[600];
    va_list ap;
    const char *name = first;

    assert_int_equal(skr_config_new(&cfg), SKR_OK);
    (void)snprintf(path, sizeof(path), "emulated:%s", g.dir);
    assert_int_equal(skr_config_set(cfg, "snp_device", path), SKR_OK);
    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, EMU_SECCTX_DIR);
    assert_int_equal(skr_config_set(cfg, "security_context_dir", path), SKR_OK);
    assert_int_equal(skr_config_set(cfg, "imds_endpoint", g.ctx.imds_url), SKR_OK);
    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, EMU_CA_CERT);
    assert_int_equal(skr_config_set(cfg, "ca_file", path), SKR_OK);
    assert_int_equal(skr_config_set(cfg, "retries", "0"), SKR_OK);
    assert_int_equal(skr_config_set(cfg, "pool_size", "1"), SKR_OK);
    if (getenv("SKR_TEST_SLOW") != NULL) {
        /* make valgrind: client and emulator run 20-50 times slower under memcheck; libcurl's
         * connect timeout covers the TLS handshake, which the in-process emulator answers */
        assert_int_equal(skr_config_set(cfg, "connect_timeout_ms", "300000"), SKR_OK);
        assert_int_equal(skr_config_set(cfg, "timeout_ms", "300000"), SKR_OK);
        assert_int_equal(skr_config_set(cfg, "release_deadline_ms", "900000"), SKR_OK);
    }
    va_start(ap, first);
    while (name != NULL) {
        const char *value = va_arg(ap, const char *);

        if (skr_config_set(cfg, name, value) != SKR_OK) {
            fail_msg("config %s: %s", name, skr_err_detail());
        }
        name = va_arg(ap, const char *);
    }
    va_end(ap);
    return cfg;
}

static skr_client *
client(skr_config *cfg)
{
    skr_client *c = NULL;
    skr_error_info e;

    if (skr_client_new(cfg, &c, &e) != SKR_OK) {
        fail_msg("client: [%s] %s", e.stage, e.message);
    }
    skr_config_free(cfg);
    return c;
}

static skr_err
release(skr_client *c, const char *kid, char **jwk, skr_error_info *e)
{
    skr_release_request req = { .maa_endpoint = g.maa_host,
                                .akv_endpoint = g.akv_host,
                                .kid = kid };

    return skr_key_release(c, &req, jwk, e);
}

/* The released JWK is the imported key. */
static void
assert_same_rsa(const char *jwk_text)
{
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;

    assert_int_equal(skr_json_parse(skr_span_str(jwk_text), 1u << 16, &jwk), SKR_OK);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
    assert_non_null(json_object_get(jwk, "d"));
    assert_int_equal(skr_jwk_to_pkey(jwk, &k), SKR_OK);
    assert_int_equal(EVP_PKEY_eq(k, g.rsa), 1);
}

static void
release_ok(skr_client *c)
{
    char *jwk = NULL;
    skr_error_info e;

    if (release(c, "rel-rsa", &jwk, &e) != SKR_OK) {
        fail_msg("release: [%s] %s (hint: %s)", e.stage, e.message, e.hint);
    }
    assert_int_equal(e.err, SKR_OK);
    assert_same_rsa(jwk);
    skr_string_free(jwk);
}

/* ---- config --------------------------------------------------------------------------------- */

static void
bad_value(const char *name, const char *value)
{
    skr_config *cfg = NULL;

    assert_int_equal(skr_config_new(&cfg), SKR_OK);
    assert_int_equal(skr_config_set(cfg, name, value), SKR_E_INVALID_ARG);
    /* the detail names the option and the value */
    if (strstr(skr_err_detail(), name) == NULL) {
        fail_msg("%s: detail does not name the option: %s", name, skr_err_detail());
    }
    if (strlen(value) < 40 && strpbrk(value, "\t\n") == NULL &&
        strstr(skr_err_detail(), value) == NULL) {
        fail_msg("%s: detail does not name the value: %s", name, skr_err_detail());
    }
    skr_config_free(cfg);
}

static void
test_config(void **state)
{
    skr_config *cfg = NULL;

    (void)state;
    bad_value("snp_device", "floppy");
    bad_value("snp_device", "emulated");
    bad_value("pool_size", "17");
    bad_value("pool_size", "-1");
    bad_value("pool_size", "2x");
    bad_value("transfer_key_bits", "1024");
    bad_value("reuse_window_s", "3601");
    bad_value("retries", "9");
    bad_value("release_enc", "RSA_OAEP");
    bad_value("imds_endpoint", "ftp://169.254.169.254");
    bad_value("imds_endpoint", "http://a b");
    bad_value("authority_host", "login.microsoftonline.com");
    bad_value("certcache_endpoint_type", "Intel");
    bad_value("certcache_endpoint", "ftp://kds");
    bad_value("certcache_endpoint", "https://kds/other/path");
    bad_value("security_policy", "not*base64");
    bad_value("host_amd_cert", "bm90IGpzb24=");
    bad_value("client_id", "a b");
    bad_value("wi_tenant_id", "x/y");
    bad_value("user_agent", "tab\there");
    bad_value("maa_api_version", "2022-08-01&x=y");
    bad_value("ca_file", "a\nb");
    bad_value("connect_timeout_ms", "0");
    bad_value("release_deadline_ms", "99999999999");

    assert_int_equal(skr_config_new(&cfg), SKR_OK);
    assert_int_equal(skr_config_set(cfg, "no_such_option", "1"), SKR_E_INVALID_ARG);
    assert_non_null(strstr(skr_err_detail(), "no_such_option"));
    assert_int_equal(skr_config_set(NULL, "pool_size", "1"), SKR_E_INVALID_ARG);
    assert_int_equal(skr_config_set(cfg, NULL, "1"), SKR_E_INVALID_ARG);
    /* good values, then NULL and "" restore the defaults */
    assert_int_equal(skr_config_set(cfg, "pool_size", "0"), SKR_OK);
    assert_int_equal(skr_config_set(cfg, "certcache_endpoint", "kdsintf.amd.com/vcek/v1"), SKR_OK);
    assert_int_equal(skr_config_set(cfg, "certcache_endpoint_type", "AzCache"), SKR_OK);
    assert_int_equal(skr_config_set(cfg, "release_enc", "CKM_RSA_AES_KEY_WRAP"), SKR_OK);
    assert_string_equal(rel_opt_str(cfg, OPT_POOL_SIZE), "0");
    assert_int_equal(skr_config_set(cfg, "pool_size", NULL), SKR_OK);
    assert_string_equal(rel_opt_str(cfg, OPT_POOL_SIZE), "2");
    assert_int_equal(skr_config_set(cfg, "release_enc", ""), SKR_OK);
    assert_string_equal(rel_opt_str(cfg, OPT_RELEASE_ENC), "RSA_AES_KEY_WRAP_256");
    assert_string_equal(rel_opt_str(cfg, OPT_USER_AGENT), "ConfidentialSkrContainer");
    assert_int_equal(rel_opt_uint(cfg, OPT_RELEASE_DEADLINE_MS), 30000);
    skr_config_free(cfg);
    skr_config_free(NULL);
    skr_client_free(NULL);
    skr_string_free(NULL);
}

static void
test_client_errors(void **state)
{
    skr_client *c = NULL;
    skr_config *cfg = NULL;
    skr_error_info e;
    char path[600];

    (void)state;
    assert_int_equal(skr_client_new(NULL, &c, &e), SKR_E_INVALID_ARG);
    assert_string_equal(e.stage, "config");

    /* no SEV-SNP device: stage device, "not an SEV-SNP guest" */
    if (access("/dev/sev-guest", F_OK) != 0 && access("/dev/sev", F_OK) != 0 &&
        access("/sys/kernel/config/tsm/report", F_OK) != 0) {
        cfg = config("snp_device", "auto", NULL);
        assert_int_equal(skr_client_new(cfg, &c, &e), SKR_E_NOT_FOUND);
        assert_null(c);
        assert_string_equal(e.stage, "device");
        assert_non_null(strstr(e.message, "not an SEV-SNP guest"));
        assert_non_null(strstr(e.hint, "emulated:DIR"));
        skr_config_free(cfg);
    }
    /* a device path that is not an emulated platform */
    (void)snprintf(path, sizeof(path), "emulated:%s/nowhere", g.root);
    cfg = config("snp_device", path, NULL);
    assert_int_not_equal(skr_client_new(cfg, &c, &e), SKR_OK);
    assert_string_equal(e.stage, "device");
    skr_config_free(cfg);

    /* a security context directory that does not exist */
    (void)snprintf(path, sizeof(path), "%s/no-such-dir", g.root);
    cfg = config("security_context_dir", path, NULL);
    assert_int_equal(skr_client_new(cfg, &c, &e), SKR_E_NOT_FOUND);
    assert_string_equal(e.stage, "config");
    assert_non_null(strstr(e.message, "no-such-dir"));
    skr_config_free(cfg);

    /* a broken host-amd-cert-base64 */
    (void)snprintf(path, sizeof(path), "%s/sc-bad", g.root);
    assert_int_equal(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/sc-bad/host-amd-cert-base64", g.root);
    write_text(path, "e30=", 4); /* "{}" */
    (void)snprintf(path, sizeof(path), "%s/sc-bad", g.root);
    cfg = config("security_context_dir", path, NULL);
    assert_int_equal(skr_client_new(cfg, &c, &e), SKR_E_MALFORMED);
    assert_string_equal(e.stage, "certs");
    assert_non_null(strstr(e.message, "host-amd-cert-base64"));
    skr_config_free(cfg);

    /* an unreadable trust root */
    (void)snprintf(path, sizeof(path), "%s/no-ark.pem", g.root);
    cfg = config("trust_root", path, NULL);
    assert_int_equal(skr_client_new(cfg, &c, &e), SKR_E_IO);
    assert_string_equal(e.stage, "config");
    skr_config_free(cfg);
}

/* ---- the flow ------------------------------------------------------------------------------- */

static void
test_release_pool(void **state)
{
    size_t live = skr_secret_live();
    skr_client *c;
    struct rel_stats st;
    unsigned int maa0 = atomic_load(&g.maa.attests);

    (void)state;
    c = client(config("pool_size", "2", NULL));
    /* the background thread fills the pool (bounded wait, not a timing assertion) */
    for (int i = 0; i < 600 && rel_pool_ready(c->pool) < 2; i++) {
        usleep(50000);
    }
    assert_int_equal(rel_pool_ready(c->pool), 2);
    release_ok(c);
    release_ok(c);
    rel_client_stats(c, &st);
    assert_int_equal(st.maa_attests, 2);
    assert_int_equal(st.reuse_hits, 0);
    assert_int_equal(atomic_load(&g.maa.attests) - maa0, 2);
    /* one vault token fetched, then cached */
    assert_int_equal(st.token_fetches, 1);
    /* certificates came from the security context once, then from the cache */
    assert_int_equal(st.cert_fetches, 1);
    skr_client_free(c);
    assert_int_equal(skr_secret_live(), live);
}

static void
test_release_no_pool(void **state)
{
    skr_client *c;

    (void)state;
    c = client(config("pool_size", "0", "transfer_key_bits", "3072", "release_enc",
                      "RSA_AES_KEY_WRAP_384", NULL));
    assert_int_equal(rel_pool_ready(c->pool), 0);
    release_ok(c);
    assert_int_equal(rel_pool_generated(c->pool), 1);
    assert_int_equal(rel_pool_ready(c->pool), 0);
    skr_client_free(c);

    c = client(config("pool_size", "0", "release_enc", "CKM_RSA_AES_KEY_WRAP", NULL));
    release_ok(c);
    skr_client_free(c);
}

static void
test_reuse_window(void **state)
{
    skr_client *c;
    struct rel_stats st;
    unsigned int maa0;

    (void)state;
    c = client(config("reuse_window_s", "600", NULL));
    maa0 = atomic_load(&g.maa.attests);
    release_ok(c);
    release_ok(c);
    release_ok(c);
    /* MAA saw one attest call: the later releases cost the vault call only */
    assert_int_equal(atomic_load(&g.maa.attests) - maa0, 1);
    rel_client_stats(c, &st);
    assert_int_equal(st.reuse_hits, 2);
    assert_int_equal(st.reports, 1);
    skr_client_free(c);

    /* off (the default): every release attests */
    c = client(config(NULL, NULL));
    maa0 = atomic_load(&g.maa.attests);
    release_ok(c);
    release_ok(c);
    assert_int_equal(atomic_load(&g.maa.attests) - maa0, 2);
    skr_client_free(c);
}

struct thr {
    skr_client *c;
    int failures;
};

static void *
thr_main(void *arg)
{
    struct thr *t = arg;

    for (int i = 0; i < 2; i++) {
        char *jwk = NULL;
        skr_error_info e;

        if (release(t->c, "rel-rsa", &jwk, &e) != SKR_OK) {
            t->failures++;
        }
        skr_string_free(jwk);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    skr_client *c;
    pthread_t th[4];
    struct thr t[4];

    (void)state;
    c = client(config("pool_size", "2", NULL));
    for (size_t i = 0; i < 4; i++) {
        t[i] = (struct thr){ .c = c };
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(t[i].failures, 0);
    }
    skr_client_free(c);
}

static void
test_access_token_and_challenge(void **state)
{
    skr_client *c;
    char *tok = bearer("https://vault.azure.net");
    skr_release_request req = { .maa_endpoint = g.maa_host,
                                .akv_endpoint = g.akv_host,
                                .kid = "rel-rsa",
                                .access_token = tok };
    skr_error_info e;
    char *jwk = NULL;
    struct rel_stats st;
    json_t *akv;

    (void)state;
    c = client(config(NULL, NULL));
    /* the caller's token: IMDS is not asked */
    assert_int_equal(skr_key_release(c, &req, &jwk, &e), SKR_OK);
    assert_same_rsa(jwk);
    skr_string_free(jwk);
    rel_client_stats(c, &st);
    assert_int_equal(st.token_fetches, 0);
    /* a token the vault refuses: 401, stage akv */
    req.access_token = "eyJhbGciOiJub25lIn0.eyJhIjoxfQ.c2ln";
    assert_int_equal(skr_key_release(c, &req, &jwk, &e), SKR_E_INVALID_ARG);
    assert_string_equal(e.stage, "akv");
    assert_int_equal(e.upstream_status, 401);
    assert_null(strstr(e.message, "eyJ"));
    free(tok);

    /* Managed HSM flavour on 127.0.0.1: the vault audience is refused with a challenge naming
     * https://managedhsm.azure.net; the client fetches that token and retries once */
    akv = json_object_get(g.ctx.config, "akv");
    if (akv == NULL) {
        akv = json_object();
        assert_int_equal(json_object_set_new(g.ctx.config, "akv", akv), 0);
    }
    assert_int_equal(json_object_set_new(akv, "flavor", json_string("managedhsm")), 0);
    release_ok(c);
    rel_client_stats(c, &st);
    assert_int_equal(st.token_fetches, 2);
    assert_int_equal(json_object_del(akv, "flavor"), 0);
    skr_client_free(c);
}

static void
test_workload_identity(void **state)
{
    skr_client *c;
    skr_error_info e;
    char *jwk = NULL;
    char assertion[400];
    long now = (long)time(NULL);
    _cleanup_(skr_buf_donep) struct skr_buf hdr = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf cl = { 0 };
    char claims[300];
    const char *h = NULL;
    const char *p = NULL;

    (void)state;
    /* a projected service-account token (the emulated Entra does not check its signature) */
    (void)snprintf(claims, sizeof(claims),
                   "{\"aud\":[\"api://AzureADTokenExchange\"],\"iss\":\"https://oidc.example/\","
                   "\"sub\":\"system:serviceaccount:default:skr\",\"iat\":%ld,\"exp\":%ld}",
                   now, now + 3600);
    skr_buf_init(&hdr, 1024);
    skr_buf_init(&cl, 1024);
    assert_int_equal(
        skr_b64_encode(skr_span_str("{\"alg\":\"RS256\",\"typ\":\"JWT\"}"), SKR_B64_URL, &hdr),
        SKR_OK);
    assert_int_equal(skr_b64_encode(skr_span_str(claims), SKR_B64_URL, &cl), SKR_OK);
    assert_int_equal(skr_buf_cstr(&hdr, &h), SKR_OK);
    assert_int_equal(skr_buf_cstr(&cl, &p), SKR_OK);
    (void)snprintf(assertion, sizeof(assertion), "%s.%s.c2ln\n", h, p);
    write_text(g.wi_file, assertion, strlen(assertion));

    c = client(config("wi_client_id", g.wi_client, "wi_tenant_id",
                      emu_cfg_str(&g.ctx, NULL, "tenant_id"), "wi_token_file", g.wi_file,
                      "authority_host", g.ctx.imds_url, NULL));
    /* Entra issues the token; the vault does not grant this identity release: the policy
     * itself accepts the attestation, so the hint says to grant keys/release */
    assert_int_equal(release(c, "rel-rsa", &jwk, &e), SKR_E_POLICY);
    assert_null(jwk);
    assert_string_equal(e.stage, "akv");
    assert_int_equal(e.upstream_status, 403);
    assert_non_null(strstr(e.hint, "keys/release"));
    skr_client_free(c);

    /* the token file is read when a token is needed: a missing file is an identity error */
    c = client(config("wi_client_id", g.wi_client, "wi_tenant_id",
                      emu_cfg_str(&g.ctx, NULL, "tenant_id"), "wi_token_file", "/nonexistent/t",
                      "authority_host", g.ctx.imds_url, NULL));
    assert_int_equal(release(c, "rel-rsa", &jwk, &e), SKR_E_IO);
    assert_string_equal(e.stage, "identity");
    assert_non_null(strstr(e.message, "federated token file"));
    skr_client_free(c);
}

/* ---- failures and their stages -------------------------------------------------------------- */

static void
test_errors(void **state)
{
    skr_client *c;
    skr_error_info e;
    char *jwk = NULL;
    skr_release_request req = { .maa_endpoint = g.maa_host,
                                .akv_endpoint = g.akv_host,
                                .kid = "rel-rsa" };

    (void)state;
    c = client(config(NULL, NULL));

    /* unknown key: akv, 404 */
    assert_int_equal(release(c, "no-such-key", &jwk, &e), SKR_E_NOT_FOUND);
    assert_null(jwk);
    assert_string_equal(e.stage, "akv");
    assert_int_equal(e.upstream_status, 404);
    assert_non_null(strstr(e.hint, "kid"));

    /* policy mismatch: akv, 403, the message names the failing claim and both values */
    assert_int_equal(release(c, "rel-mismatch", &jwk, &e), SKR_E_POLICY);
    assert_string_equal(e.stage, "akv");
    assert_int_equal(e.upstream_status, 403);
    assert_non_null(strstr(e.message, "x-ms-sevsnpvm-hostdata"));
    assert_non_null(
        strstr(e.message, "00000000000000000000000000000000000000000000000000000000000000ff"));
    assert_non_null(strstr(e.message, g.hostdata));
    assert_non_null(strstr(e.hint, "x-ms-sevsnpvm-hostdata"));

    /* MAA down: nothing listens */
    req.maa_endpoint = "127.0.0.1:1";
    assert_int_equal(skr_key_release(c, &req, &jwk, &e), SKR_E_UPSTREAM);
    assert_string_equal(e.stage, "maa");
    assert_int_equal(e.upstream_status, 0);
    assert_non_null(strstr(e.hint, "MAA"));

    /* wrong MAA endpoint: a server that is not MAA (the vault) answers 404 */
    req.maa_endpoint = g.akv_host;
    assert_int_not_equal(skr_key_release(c, &req, &jwk, &e), SKR_OK);
    assert_string_equal(e.stage, "maa");
    assert_true(e.upstream_status >= 400);
    assert_non_null(strstr(e.hint, "authority"));

    /* bad input */
    req.maa_endpoint = "ftp://maa";
    assert_int_equal(skr_key_release(c, &req, &jwk, &e), SKR_E_INVALID_ARG);
    assert_string_equal(e.stage, "input");
    req.maa_endpoint = g.maa_host;
    req.kid = "";
    assert_int_equal(skr_key_release(c, &req, &jwk, &e), SKR_E_INVALID_ARG);
    assert_string_equal(e.stage, "input");
    req.kid = "bad key";
    assert_int_equal(skr_key_release(c, &req, &jwk, &e), SKR_E_INVALID_ARG);
    assert_string_equal(e.stage, "input");
    assert_int_equal(skr_key_release(c, NULL, &jwk, &e), SKR_E_INVALID_ARG);
    assert_int_equal(skr_key_release(NULL, &req, &jwk, &e), SKR_E_INVALID_ARG);
    /* a NULL err is allowed */
    assert_int_equal(release(c, "no-such-key", &jwk, NULL), SKR_E_NOT_FOUND);
    skr_client_free(c);

    /* vault down */
    c = client(config(NULL, NULL));
    req.kid = "rel-rsa";
    req.akv_endpoint = "127.0.0.1:1";
    assert_int_equal(skr_key_release(c, &req, &jwk, &e), SKR_E_UPSTREAM);
    assert_string_equal(e.stage, "akv");
    skr_client_free(c);

    /* IMDS down: identity */
    c = client(config("imds_endpoint", "http://127.0.0.1:1", NULL));
    assert_int_equal(release(c, "rel-rsa", &jwk, &e), SKR_E_UPSTREAM);
    assert_string_equal(e.stage, "identity");
    skr_client_free(c);
}

static void
test_deadline(void **state)
{
    skr_client *c;
    skr_error_info e;
    char *jwk = NULL;

    (void)state;
    /* MAA answers after 300 ms; the whole release may take 100 ms: the stage after MAA fails */
    c = client(config("release_deadline_ms", "100", NULL));
    atomic_store(&g.maa.delay_ms, 300);
    assert_int_equal(release(c, "rel-rsa", &jwk, &e), SKR_E_TIMEOUT);
    atomic_store(&g.maa.delay_ms, 0);
    assert_null(jwk);
    assert_non_null(strstr(e.message, "deadline"));
    assert_non_null(strstr(e.message, e.stage));
    assert_non_null(strstr(e.hint, "release_deadline_ms"));
    skr_client_free(c);
}

/* ---- attestation routes ------------------------------------------------------------------ */

static void
test_attest(void **state)
{
    skr_client *c;
    skr_error_info e;
    uint8_t report[SKR_REPORT_SIZE];
    const char rt[] = "{\"hello\":\"world\"}";
    uint8_t md[32];
    struct skr_snp_report r;
    char *json = NULL;
    char *tok = NULL;
    _cleanup_(json_decrefp) json_t *doc = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf ref = { 0 };
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    char path[600];
    unsigned int maa0 = atomic_load(&g.maa.attests);

    (void)state;
    c = client(config(NULL, NULL));
    /* raw: REPORT_DATA = SHA-256(runtime data) || 32 zero bytes; no network */
    assert_int_equal(skr_attest_raw(c, (const uint8_t *)rt, strlen(rt), report, &e), SKR_OK);
    assert_int_equal(skr_snp_report_parse(skr_span_make(report, sizeof(report)), &r), SKR_OK);
    SHA256((const uint8_t *)rt, strlen(rt), md);
    assert_memory_equal(r.report_data, md, 32);
    assert_true(skr_span_is_zero(skr_span_make(r.report_data + 32, 32)));
    assert_int_equal(skr_attest_raw(c, NULL, 5, report, &e), SKR_E_INVALID_ARG);
    assert_string_equal(e.stage, "input");
    assert_int_equal(skr_attest_raw(c, NULL, 0, report, &e), SKR_OK);

    /* combined: the four fields of PROTOCOLS.md §8.1 */
    assert_int_equal(skr_attest_combined(c, (const uint8_t *)rt, strlen(rt), &json, &e), SKR_OK);
    assert_int_equal(skr_json_parse(skr_span_str(json), 1u << 20, &doc), SKR_OK);
    skr_string_free(json);
    assert_string_equal(json_string_value(json_object_get(doc, "endorsed_tcb")), g.sc_tcbm);
    skr_buf_init(&b, 1u << 20);
    assert_int_equal(
        skr_b64_decode(skr_span_str(json_string_value(json_object_get(doc, "evidence"))),
                       SKR_B64_STD, &b),
        SKR_OK);
    assert_int_equal(b.len, SKR_REPORT_SIZE);
    assert_int_equal(skr_snp_report_parse(skr_buf_span(&b), &r), SKR_OK);
    assert_memory_equal(r.report_data, md, 32);
    skr_buf_reset(&b);
    assert_int_equal(
        skr_b64_decode(skr_span_str(json_string_value(json_object_get(doc, "endorsements"))),
                       SKR_B64_STD, &b),
        SKR_OK);
    assert_int_equal(skr_buf_append_byte(&b, 0), SKR_OK);
    assert_non_null(strstr((const char *)b.ptr, "BEGIN CERTIFICATE"));
    (void)snprintf(path, sizeof(path), "%s/%s", g.dir, EMU_SECCTX_REF_INFO);
    read_text(path, &ref);
    while (ref.len > 0 && ref.ptr[ref.len - 1] == '\n') {
        ref.len--;
    }
    assert_int_equal(skr_buf_append_byte(&ref, 0), SKR_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "uvm_endorsements")),
                        (const char *)ref.ptr);

    /* maa: JSON runtime data only */
    assert_int_equal(skr_attest_maa(c, g.maa_host, (const uint8_t *)"not json", 8, &tok, &e),
                     SKR_E_MALFORMED);
    assert_string_equal(e.stage, "input");
    assert_int_equal(skr_attest_maa(c, "", (const uint8_t *)rt, strlen(rt), &tok, &e),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_attest_maa(c, g.maa_host, (const uint8_t *)rt, strlen(rt), &tok, &e),
                     SKR_OK);
    assert_int_equal(skr_jws_parse(skr_span_str(tok), &jws), SKR_OK);
    skr_string_free(tok);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(jws.claims, "x-ms-runtime"), "hello")),
        "world");
    assert_string_equal(json_string_value(json_object_get(jws.claims, "x-ms-sevsnpvm-hostdata")),
                        g.hostdata);
    assert_int_equal(atomic_load(&g.maa.attests) - maa0, 1);
    skr_client_free(c);
}

/* ---- certificate sources ------------------------------------------------------------------ */

static char *
combined_tcbm(skr_client *c, skr_error_info *e)
{
    char *json = NULL;
    _cleanup_(json_decrefp) json_t *doc = NULL;

    if (skr_attest_combined(c, (const uint8_t *)"{}", 2, &json, e) != SKR_OK) {
        return NULL;
    }
    assert_int_equal(skr_json_parse(skr_span_str(json), 1u << 20, &doc), SKR_OK);
    skr_string_free(json);
    return strdup(json_string_value(json_object_get(doc, "endorsed_tcb")));
}

static void
test_cert_sources(void **state)
{
    skr_client *c;
    skr_error_info e;
    char *tcbm;
    char dev[400];
    unsigned int thim0, kds0, azc0;

    (void)state;
    /* 1. security context: neither THIM nor KDS asked */
    thim0 = atomic_load(&g.imds.thim);
    kds0 = atomic_load(&g.kds_requests);
    c = client(config("certcache_endpoint", g.kds_url, NULL));
    tcbm = combined_tcbm(c, &e);
    assert_non_null(tcbm);
    assert_string_equal(tcbm, g.sc_tcbm);
    free(tcbm);
    assert_int_equal(atomic_load(&g.imds.thim), thim0);
    assert_int_equal(atomic_load(&g.kds_requests), kds0);
    skr_client_free(c);

    /* 2. no security context: the device's certificate table, still no network */
    c = client(config("security_context_dir", NULL, "certcache_endpoint", g.kds_url, NULL));
    tcbm = combined_tcbm(c, &e);
    assert_non_null(tcbm);
    assert_string_equal(tcbm, g.sc_tcbm);
    free(tcbm);
    assert_int_equal(atomic_load(&g.imds.thim), thim0);
    assert_int_equal(atomic_load(&g.kds_requests), kds0);
    skr_client_free(c);

    /* 3. a report whose TCB nobody local has: security context, table and THIM are passed
     * over, AMD KDS (played here) has it */
    (void)snprintf(dev, sizeof(dev), "emulated:%s", g.mismatch);
    c = client(config("snp_device", dev, "certcache_endpoint", g.kds_url, NULL));
    tcbm = combined_tcbm(c, &e);
    if (tcbm == NULL) {
        fail_msg("KDS: [%s] %s", e.stage, e.message);
    }
    assert_string_equal(tcbm, g.new_tcbm);
    free(tcbm);
    assert_true(atomic_load(&g.imds.thim) > thim0);
    assert_int_equal(atomic_load(&g.kds_requests) - kds0, 2);
    /* cached now: no more KDS calls */
    tcbm = combined_tcbm(c, &e);
    assert_non_null(tcbm);
    free(tcbm);
    assert_int_equal(atomic_load(&g.kds_requests) - kds0, 2);
    skr_client_free(c);

    /* 4. the same from AzCache */
    azc0 = atomic_load(&g.azc_requests);
    c = client(config("snp_device", dev, "certcache_endpoint_type", "AzCache", "certcache_endpoint",
                      g.kds_url, NULL));
    tcbm = combined_tcbm(c, &e);
    if (tcbm == NULL) {
        fail_msg("AzCache: [%s] %s", e.stage, e.message);
    }
    assert_string_equal(tcbm, g.new_tcbm);
    free(tcbm);
    assert_int_equal(atomic_load(&g.azc_requests) - azc0, 1);
    skr_client_free(c);

    /* 5. nobody has it: the reference's recovery, then both TCB values in the message */
    c = client(config("snp_device", dev, "certcache_endpoint_type", "LocalTHIM", NULL));
    assert_null(combined_tcbm(c, &e));
    assert_int_equal(e.err, SKR_E_VERIFY);
    assert_string_equal(e.stage, "certs");
    assert_non_null(strstr(e.message, g.new_tcbm));
    assert_non_null(strstr(e.message, g.sc_tcbm));
    assert_non_null(strstr(e.message, "doesn't match"));
    {
        struct rel_stats st;

        rel_client_stats(c, &st);
        assert_int_equal(st.reports, 2); /* a new report was fetched before giving up */
    }
    skr_client_free(c);

    /* 6. KDS unreachable: the failure names the source */
    c = client(config("snp_device", dev, "certcache_endpoint", "https://127.0.0.1:1", NULL));
    assert_null(combined_tcbm(c, &e));
    assert_string_equal(e.stage, "certs");
    skr_client_free(c);
}

/* Evidence that does not verify is stopped before MAA: a platform whose ARK is not trusted. */
static void
test_verify_before_maa(void **state)
{
    skr_client *c;
    skr_error_info e;
    char *jwk = NULL;
    char dir[400];
    char dev[420];
    char src[600];
    char dst[600];
    unsigned int maa0 = atomic_load(&g.maa.attests);
    static const char *const files[] = { "platform.json", "ask.pem", "vcek.pem", "vcek.key" };

    (void)state;
    /* same platform, but the ARK next to it is some other self-signed root */
    (void)snprintf(dir, sizeof(dir), "%s/untrusted", g.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    for (size_t i = 0; i < SKR_ARRAY_LEN(files); i++) {
        _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

        (void)snprintf(src, sizeof(src), "%s/snp/%s", g.dir, files[i]);
        read_text(src, &b);
        (void)snprintf(dst, sizeof(dst), "%s/%s", dir, files[i]);
        write_text(dst, b.ptr, b.len);
    }
    {
        _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

        (void)snprintf(src, sizeof(src), "%s/%s", g.dir, EMU_CA_CERT);
        read_text(src, &b);
        (void)snprintf(dst, sizeof(dst), "%s/ark.pem", dir);
        write_text(dst, b.ptr, b.len);
    }
    (void)snprintf(dev, sizeof(dev), "emulated:%s", dir);
    c = client(config("snp_device", dev, NULL));
    assert_int_equal(release(c, "rel-rsa", &jwk, &e), SKR_E_VERIFY);
    assert_string_equal(e.stage, "verify");
    assert_non_null(strstr(e.message, "check"));
    assert_int_equal(atomic_load(&g.maa.attests), maa0);
    skr_client_free(c);
}

/* A key generated inline stops when the thread's deadline has passed, and is made without one. */
static void
test_pool_deadline(void **state)
{
    struct rel_pool *p = NULL;
    EVP_PKEY *k = NULL;

    (void)state;
    assert_int_equal(rel_pool_new(2048, 0, &p), SKR_OK);
    skr_http_set_deadline(skr_http_now_ms() - 1);
    assert_int_equal(rel_pool_take(p, &k), SKR_E_TIMEOUT);
    assert_null(k);
    assert_non_null(strstr(skr_err_msg(), "transfer key"));
    skr_http_set_deadline(skr_http_now_ms() + 600000);
    assert_int_equal(rel_pool_take(p, &k), SKR_OK);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    EVP_PKEY_free(k);
    k = NULL;
    skr_http_set_deadline(0);
    assert_int_equal(rel_pool_take(p, &k), SKR_OK);
    EVP_PKEY_free(k);
    rel_pool_free(p);
}

static void
test_fingerprint(void **state)
{
    char fp[SKR_FINGERPRINT_LEN];
    char tp[SKR_THUMBPRINT_LEN];
    char want[SKR_FINGERPRINT_LEN];
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    const char *s = NULL;

    (void)state;
    assert_int_equal(skr_jwk_from_pkey(g.rsa, true, &jwk), SKR_OK);
    skr_buf_init(&text, 1u << 16);
    assert_int_equal(skr_json_dump(jwk, JSON_COMPACT | JSON_SORT_KEYS, &text), SKR_OK);
    assert_int_equal(skr_buf_cstr(&text, &s), SKR_OK);
    assert_int_equal(skr_jwk_fingerprint(s, fp), SKR_OK);
    /* the same as jose.c's RFC 7638 thumbprint, in hex */
    assert_int_equal(skr_jwk_thumbprint(jwk, tp), SKR_OK);
    skr_buf_init(&raw, 64);
    assert_int_equal(skr_b64_decode(skr_span_str(tp), SKR_B64_URL, &raw), SKR_OK);
    skr_hex_fmt(raw.ptr, raw.len, want);
    assert_string_equal(fp, want);
    /* an oct key (RFC 7638 §3.2 members k, kty) and an EC one */
    assert_int_equal(skr_jwk_fingerprint("{\"kty\":\"oct\",\"k\":\"AAEC\"}", fp), SKR_OK);
    assert_int_equal(
        skr_jwk_fingerprint("{\"crv\":\"P-256\",\"kty\":\"EC-HSM\",\"x\":\"AA\",\"y\":\"AQ\"}", fp),
        SKR_OK);
    /* negatives */
    assert_int_equal(skr_jwk_fingerprint("{\"k\":\"AAEC\"}", fp), SKR_E_MALFORMED);
    assert_int_equal(skr_jwk_fingerprint("{\"kty\":\"oct\"}", fp), SKR_E_MALFORMED);
    assert_int_equal(skr_jwk_fingerprint("{\"kty\":\"oct\",\"k\":1}", fp), SKR_E_MALFORMED);
    assert_int_equal(skr_jwk_fingerprint("{\"kty\":\"oct\",\"k\":\"a\\\"b\"}", fp),
                     SKR_E_MALFORMED);
    assert_int_equal(skr_jwk_fingerprint("{\"kty\":\"OKP\",\"x\":\"AA\"}", fp), SKR_E_UNSUPPORTED);
    assert_int_equal(skr_jwk_fingerprint(NULL, fp), SKR_E_INVALID_ARG);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_pool_deadline),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_release_pool),
        cmocka_unit_test(test_release_no_pool),
        cmocka_unit_test(test_reuse_window),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_access_token_and_challenge),
        cmocka_unit_test(test_workload_identity),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_attest),
        cmocka_unit_test(test_cert_sources),
        cmocka_unit_test(test_verify_before_maa),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
