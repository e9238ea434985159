/*
 * emu.c - how many key releases per second the emulator's Key Vault sustains, as a ratio to
 * the crypto floor of one release measured in the same run.
 *
 * In-process: the real emu_akv_handle and emu_maa_handle (the issuer's OIDC metadata and JWKS
 * that a release fetches) on loopback TLS servers over DIR (made by `skr-emu init DIR`). One
 * exportable 256-bit oct key with a release policy is imported, then CLIENTS threads share one
 * skr_http_client (connection reuse) and POST /keys/<name>/release for SECONDS, with a bearer
 * token from emu_entra_issue and an MAA-style token signed with DIR's MAA key whose
 * x-ms-runtime.keys holds an RSA-2048 transfer key. Reported: releases/s, p50 and p99 latency.
 *
 * The floor is what one release must compute, timed with libcrypto directly:
 *   RS256 verify of the MAA token (MAA key)       RSA-OAEP (SHA-1) encrypt of an AES-256 key
 *   AES-256-KWP wrap of the 32-byte key           RS256 signature of the release JWS (TLS key)
 *   RS256 verify of the bearer token (Entra key)
 * floor = 1 / sum(1 / rate of each). What the emulator adds on top is mostly its TLS: each
 * release fetches the issuer's metadata and JWKS over new HTTPS connections, and reads the key
 * store file.
 *
 * Usage: bench_emu DIR [SECONDS 1..600, default 3] [CLIENTS 1..16, default 2]
 */
#include "emu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "b64.h"
#include "bench.h"
#include "buf.h"
#include "err.h"
#include "http_client.h"
#include "http_server.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "service.h"

#define BENCH_KEY        "bench-oct"
#define BENCH_API        "7.4"
#define BENCH_MAX_CLIENT 16
#define BENCH_MAX_SAMPLE 2000000u

static void
die(const char *what)
{
    (void)fprintf(stderr, "bench_emu: %s: %s\n", what, skr_err_msg());
    exit(1);
}

/* ---- setup ------------------------------------------------------------------------------- */

static struct skr_http_server *
start_server(const char *dir, struct emu_ctx *ctx, skr_http_handler h)
{
    struct skr_http_server_cfg cfg = { 0 };
    struct skr_http_server *srv = NULL;
    char cert[600];
    char key[600];

    (void)snprintf(cert, sizeof(cert), "%s/%s", dir, EMU_TLS_CERT);
    (void)snprintf(key, sizeof(key), "%s/%s", dir, EMU_TLS_KEY);
    cfg.tls_cert_file = cert;
    cfg.tls_key_file = key;
    cfg.handler = h;
    cfg.handler_ctx = ctx;
    if (skr_http_server_start(&cfg, &srv) != SKR_OK) {
        die("server start");
    }
    return srv;
}

static char *
b64url(const void *p, size_t n)
{
    struct skr_buf b;
    const char *s = NULL;
    char *out;

    skr_buf_init(&b, 1u << 20);
    if (skr_b64_encode(skr_span_make(p, n), SKR_B64_URL, &b) != SKR_OK ||
        skr_buf_cstr(&b, &s) != SKR_OK) {
        die("base64url");
    }
    out = strdup(s);
    skr_buf_done(&b);
    return out;
}

static char *
dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);

    if (s == NULL) {
        (void)fprintf(stderr, "bench_emu: out of memory\n");
        exit(1);
    }
    return s;
}

/* The MAA-style target token: signed by DIR's MAA key, x-ms-runtime.keys = the transfer key. */
static char *
maa_token(struct emu_ctx *ctx, EVP_PKEY *transfer)
{
    struct skr_buf tmp;
    struct skr_buf out;
    json_t *jwks = NULL;
    json_t *claims;
    json_t *hdr;
    json_int_t t = (json_int_t)time(NULL);
    const char *s = NULL;
    char jku[200];
    char *ret;

    skr_buf_init(&tmp, 1u << 16);
    skr_buf_init(&out, 1u << 16);
    if (skr_jwks_transfer_key(transfer, &tmp, &jwks) != SKR_OK) {
        die("transfer key");
    }
    (void)json_object_set_new(json_array_get(json_object_get(jwks, "keys"), 0), "use",
                              json_string("enc"));
    (void)snprintf(jku, sizeof(jku), "%s/certs", ctx->maa_url);
    claims =
        json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:b, s:i, s:O}", "iss", ctx->maa_url, "iat", t,
                  "nbf", t, "exp", t + 28800, "x-ms-attestation-type", "sevsnpvm",
                  "x-ms-compliance-status", "azure-compliant-uvm", "x-ms-sevsnpvm-is-debuggable", 0,
                  "x-ms-sevsnpvm-vmpl", 0, "x-ms-runtime", jwks);
    hdr = json_pack("{s:s, s:s, s:s}", "jku", jku, "kid", ctx->maa_kid, "typ", "JWT");
    if (claims == NULL || hdr == NULL ||
        skr_jwt_sign_rs256(ctx->maa_key, hdr, claims, &out) != SKR_OK ||
        skr_buf_cstr(&out, &s) != SKR_OK) {
        die("MAA token");
    }
    ret = strdup(s);
    json_decref(claims);
    json_decref(hdr);
    json_decref(jwks);
    skr_buf_done(&tmp);
    skr_buf_done(&out);
    return ret;
}

/* ---- the client threads ----------------------------------------------------------------- */

struct bench {
    struct skr_http_client *client;
    char release_url[300];
    const char *headers[3];
    char *body;
    double until;
};

struct worker {
    struct bench *b;
    pthread_t thread;
    double *lat; /* seconds per release */
    size_t n;
    size_t failures;
};

static bool
release_once(struct bench *b, struct skr_buf *ret_body)
{
    struct skr_http_reply rep = { 0 };
    bool ok = skr_http_request(b->client, "POST", b->release_url, b->headers, skr_span_str(b->body),
                               &rep) == SKR_OK &&
              rep.status == 200;

    if (ret_body != NULL && skr_buf_append_span(ret_body, skr_buf_span(&rep.body)) != SKR_OK) {
        ok = false;
    }
    skr_http_reply_done(&rep);
    return ok;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    while (w->n < BENCH_MAX_SAMPLE) {
        double t0 = now();
        bool ok = release_once(w->b, NULL);
        double t1 = now();

        if (t0 >= w->b->until) {
            break;
        }
        if (ok) {
            w->lat[w->n++] = t1 - t0;
        } else {
            w->failures++;
        }
    }
    skr_err_clear();
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* ---- the crypto floor -------------------------------------------------------------------- */

struct floor_ctx {
    EVP_PKEY *maa_pub;
    struct skr_jws maa_tok;
    EVP_PKEY *entra_pub;
    struct skr_jws bearer;
    EVP_PKEY *transfer;
    EVP_PKEY *tls_key;
    uint8_t *jws_input; /* the signing input of a real release JWS */
    size_t jws_input_len;
    uint8_t aes_key[32];
    uint8_t secret[32];
};

static int
op_verify(EVP_PKEY *key, const struct skr_jws *j)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, j->signature.ptr, j->signature.len, j->signing_input.ptr,
                              j->signing_input.len) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

static int
op_maa_verify(struct floor_ctx *c)
{
    return op_verify(c->maa_pub, &c->maa_tok);
}

static int
op_bearer_verify(struct floor_ctx *c)
{
    return op_verify(c->entra_pub, &c->bearer);
}

static int
op_oaep(struct floor_ctx *c)
{
    EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_from_pkey(NULL, c->transfer, NULL);
    uint8_t out[512];
    size_t len = sizeof(out);
    int ok = p != NULL && EVP_PKEY_encrypt_init(p) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(p, EVP_sha1()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(p, EVP_sha1()) == 1 &&
             EVP_PKEY_encrypt(p, out, &len, c->aes_key, sizeof(c->aes_key)) == 1;

    EVP_PKEY_CTX_free(p);
    return ok;
}

static int
op_kwp(struct floor_ctx *c)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    uint8_t out[64];
    int len = 0;
    int fin = 0;
    int ok;

    if (x == NULL) {
        return 0;
    }
    EVP_CIPHER_CTX_set_flags(x, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    ok = EVP_EncryptInit_ex(x, EVP_aes_256_wrap_pad(), NULL, c->aes_key, NULL) == 1 &&
         EVP_EncryptUpdate(x, out, &len, c->secret, (int)sizeof(c->secret)) == 1 &&
         EVP_EncryptFinal_ex(x, out + len, &fin) == 1 && len + fin == 40;
    EVP_CIPHER_CTX_free(x);
    return ok;
}

static int
op_jws_sign(struct floor_ctx *c)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t sig[1024];
    size_t len = sizeof(sig);
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->tls_key) == 1 &&
             EVP_DigestSign(md, sig, &len, c->jws_input, c->jws_input_len) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

static const struct {
    const char *name;
    int (*fn)(struct floor_ctx *);
} floor_ops[] = {
    { "RS256 verify, MAA token", op_maa_verify }, { "RSA-2048 OAEP encrypt", op_oaep },
    { "AES-256-KWP wrap (32 B)", op_kwp },        { "RS256 sign, release JWS", op_jws_sign },
    { "RS256 verify, bearer", op_bearer_verify },
};

static double
rate(int (*fn)(struct floor_ctx *), struct floor_ctx *c, double seconds)
{
    double t0 = now();
    double t = t0;
    unsigned long n = 0;

    while (t - t0 < seconds) {
        for (int i = 0; i < 16; i++) {
            if (!fn(c)) {
                (void)fprintf(stderr, "bench_emu: a floor operation failed\n");
                exit(1);
            }
        }
        n += 16;
        t = now();
    }
    return (double)n / (t - t0);
}

static EVP_PKEY *
public_of(X509 *cert)
{
    EVP_PKEY *k = X509_get_pubkey(cert);

    if (k == NULL) {
        (void)fprintf(stderr, "bench_emu: certificate without a key\n");
        exit(1);
    }
    return k;
}

/* ---- main -------------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    struct emu_ctx ctx;
    struct bench b = { 0 };
    struct worker w[BENCH_MAX_CLIENT];
    struct floor_ctx fc;
    struct skr_http_server *akv;
    struct skr_http_server *maa;
    struct skr_http_client_opts o;
    struct skr_buf tok;
    struct skr_buf reply;
    char ca[600];
    char url[300];
    char auth[8192];
    const char *bearer = NULL;
    char *maa_tok;
    char *pol_b64;
    char *k_b64;
    char *import_body;
    json_t *pol;
    json_t *body;
    json_t *answer;
    struct skr_http_reply rep = { 0 };
    uint64_t secs = 3;
    uint64_t nclients = 2;
    double seconds;
    long clients;
    double t_start;
    double elapsed;
    double *all;
    size_t total = 0;
    size_t failures = 0;
    double floor_sum = 0;
    double ours;

    if (argc < 2 ||
        (argc > 2 && skr_parse_u64(skr_span_str(argv[2]), false, 1, 600, &secs) != SKR_OK) ||
        (argc > 3 &&
         skr_parse_u64(skr_span_str(argv[3]), false, 1, BENCH_MAX_CLIENT, &nclients) != SKR_OK)) {
        (void)fprintf(stderr, "usage: bench_emu DIR [SECONDS] [CLIENTS 1..%d]\n", BENCH_MAX_CLIENT);
        return 2;
    }
    seconds = (double)secs;
    clients = (long)nclients;
    memset(&ctx, 0, sizeof(ctx));
    if (emu_ctx_load(argv[1], &ctx) != SKR_OK) {
        die("emu_ctx_load (make DIR with `skr-emu init DIR`)");
    }
    akv = start_server(argv[1], &ctx, emu_akv_handle);
    maa = start_server(argv[1], &ctx, emu_maa_handle);
    (void)snprintf(ctx.akv_url, sizeof(ctx.akv_url), "https://127.0.0.1:%u",
                   skr_http_server_port(akv));
    (void)snprintf(ctx.maa_url, sizeof(ctx.maa_url), "https://127.0.0.1:%u",
                   skr_http_server_port(maa));
    (void)snprintf(ctx.imds_url, sizeof(ctx.imds_url), "http://127.0.0.1:9");

    (void)snprintf(ca, sizeof(ca), "%s/%s", argv[1], EMU_CA_CERT);
    skr_http_client_opts_init(&o);
    o.ca_file = ca;
    o.retries = 0;
    o.timeout_ms = 30000;
    if (skr_http_client_new(&o, &b.client) != SKR_OK) {
        die("client");
    }
    skr_buf_init(&tok, 1u << 16);
    if (emu_entra_issue(&ctx, "https://vault.azure.net", NULL, &tok, NULL) != SKR_OK ||
        skr_buf_cstr(&tok, &bearer) != SKR_OK) {
        die("bearer token");
    }
    (void)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
    b.headers[0] = auth;
    b.headers[1] = "Content-Type: application/json";
    b.headers[2] = NULL;

    /* the key: 256-bit oct, exportable, released to this emulator's MAA tokens */
    memset(&fc, 0, sizeof(fc));
    if (RAND_bytes(fc.secret, sizeof(fc.secret)) != 1 ||
        RAND_bytes(fc.aes_key, sizeof(fc.aes_key)) != 1) {
        return 1;
    }
    pol = json_pack("{s:s, s:[{s:s, s:[{s:s, s:b}]}]}", "version", "1.0.0", "anyOf", "authority",
                    ctx.maa_url, "allOf", "claim", "x-ms-sevsnpvm-is-debuggable", "equals", 0);
    {
        char *text = dump(pol);

        pol_b64 = b64url(text, strlen(text));
        free(text);
    }
    k_b64 = b64url(fc.secret, sizeof(fc.secret));
    body = json_pack("{s:{s:s, s:s}, s:{s:b}, s:{s:s, s:s}}", "key", "kty", "oct-HSM", "k", k_b64,
                     "attributes", "exportable", 1, "release_policy", "contentType",
                     "application/json; charset=utf-8", "data", pol_b64);
    import_body = dump(body);
    (void)snprintf(url, sizeof(url), "%s/keys/%s?api-version=%s", ctx.akv_url, BENCH_KEY,
                   BENCH_API);
    if (skr_http_request(b.client, "PUT", url, b.headers, skr_span_str(import_body), &rep) !=
            SKR_OK ||
        rep.status != 200) {
        (void)fprintf(stderr, "bench_emu: import failed (HTTP %ld): %.*s\n", rep.status,
                      (int)rep.body.len, (const char *)rep.body.ptr);
        return 1;
    }
    skr_http_reply_done(&rep);

    fc.transfer = EVP_RSA_gen(2048);
    if (fc.transfer == NULL) {
        return 1;
    }
    maa_tok = maa_token(&ctx, fc.transfer);
    answer = json_pack("{s:s}", "target", maa_tok);
    b.body = dump(answer);
    (void)snprintf(b.release_url, sizeof(b.release_url), "%s/keys/%s/release?api-version=%s",
                   ctx.akv_url, BENCH_KEY, BENCH_API);

    /* one release to check the setup and to keep a real release JWS for the floor */
    skr_buf_init(&reply, 1u << 20);
    if (!release_once(&b, &reply)) {
        (void)fprintf(stderr, "bench_emu: release failed: %s %.*s\n", skr_err_msg(), (int)reply.len,
                      (const char *)reply.ptr);
        return 1;
    }
    {
        json_t *r = NULL;
        struct skr_jws rel = { 0 };

        if (skr_json_parse_object(skr_buf_span(&reply), 1u << 20, "release", &r) != SKR_OK ||
            !json_is_string(json_object_get(r, "value")) ||
            skr_jws_parse(skr_span_str(json_string_value(json_object_get(r, "value"))), &rel) !=
                SKR_OK) {
            die("release answer");
        }
        fc.jws_input = malloc(rel.signing_input.len);
        if (fc.jws_input == NULL) {
            return 1;
        }
        memcpy(fc.jws_input, rel.signing_input.ptr, rel.signing_input.len);
        fc.jws_input_len = rel.signing_input.len;
        skr_jws_done(&rel);
        json_decref(r);
    }

    /* the release rate */
    b.until = now() + seconds;
    t_start = now();
    for (long i = 0; i < clients; i++) {
        w[i] = (struct worker){ .b = &b };
        w[i].lat = calloc(BENCH_MAX_SAMPLE, sizeof(double));
        if (w[i].lat == NULL || pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            return 1;
        }
    }
    for (long i = 0; i < clients; i++) {
        (void)pthread_join(w[i].thread, NULL);
        total += w[i].n;
        failures += w[i].failures;
    }
    elapsed = now() - t_start;
    all = calloc(total + 1, sizeof(double));
    if (all == NULL) {
        return 1;
    }
    for (long i = 0, k = 0; i < clients; i++) {
        memcpy(all + k, w[i].lat, w[i].n * sizeof(double));
        k += (long)w[i].n;
        free(w[i].lat);
    }
    qsort(all, total, sizeof(double), cmp_double);
    ours = (double)total / elapsed;
    printf("== emulator: %ld client threads, %.1f s, one shared skr_http_client\n", clients,
           elapsed);
    printf("releases/s %.1f\n", ours);
    if (total > 0) {
        printf("latency p50 %.2f ms  p99 %.2f ms  (%zu releases, %zu failed)\n",
               1e3 * all[total / 2], 1e3 * all[(size_t)((double)(total - 1) * 0.99)], total,
               failures);
    }

    /* the floor */
    fc.maa_pub = public_of(ctx.maa_cert);
    fc.entra_pub = public_of(ctx.entra_cert);
    fc.tls_key = ctx.tls_key;
    if (skr_jws_parse(skr_span_str(maa_tok), &fc.maa_tok) != SKR_OK ||
        skr_jws_parse(skr_span_str(bearer), &fc.bearer) != SKR_OK) {
        die("token parse");
    }
    printf("\n== crypto floor of one release (libcrypto, one thread)\n");
    for (size_t i = 0; i < SKR_ARRAY_LEN(floor_ops); i++) {
        double r = rate(floor_ops[i].fn, &fc, seconds / 5 < 0.3 ? 0.3 : seconds / 5);

        printf("%-28s %10.0f ops/s\n", floor_ops[i].name, r);
        floor_sum += 1.0 / r;
    }
    printf("floor (1 / sum of times)      %10.1f releases/s\n", 1.0 / floor_sum);
    printf("\nemulator releases/s = %.1f%% of the floor (crypto %.2f ms per release; the "
           "emulator spends %.2f ms of wall time per release)\n",
           100.0 * ours * floor_sum, 1e3 * floor_sum, ours > 0 ? 1e3 / ours : 0.0);

    skr_jws_done(&fc.maa_tok);
    skr_jws_done(&fc.bearer);
    EVP_PKEY_free(fc.maa_pub);
    EVP_PKEY_free(fc.entra_pub);
    EVP_PKEY_free(fc.transfer);
    free(fc.jws_input);
    free(all);
    free(maa_tok);
    free(pol_b64);
    free(k_b64);
    free(import_body);
    free(b.body);
    json_decref(pol);
    json_decref(body);
    json_decref(answer);
    skr_buf_done(&reply);
    skr_buf_done(&tok);
    skr_http_client_free(b.client);
    skr_http_server_stop(akv);
    skr_http_server_stop(maa);
    emu_ctx_done(&ctx);
    return failures == 0 ? 0 : 1;
}
