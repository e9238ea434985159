/*
 * service.h - what the skr-emu services share while serving: the loaded DIR (keys,
 * certificates, configuration) and one handler per service. serve.c loads the context, starts
 * one skr_http_server per service with the handler below as its callback and the context as
 * handler_ctx, and fills the *_url fields once every listener is bound.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "http_server.h"
#include "keywrap.h"
#include "snp_certs.h"
#include "snp_report.h"

/* Token issuers' signing keys the Key Vault emulator found through OIDC discovery, kept for
 * EMU_ISSUER_KEY_TTL_S so that a release does not cost two HTTPS fetches and their TLS handshakes
 * (Key Vault caches an attestation provider's keys too). A kid not in the cache is fetched. */
#define EMU_ISSUER_KEYS      8
#define EMU_ISSUER_KEY_TTL_S 300

struct emu_issuer_key {
    char *iss; /* without a trailing '/' */
    char *kid;
    EVP_PKEY *key;
    int64_t until; /* Unix seconds */
};

struct emu_ctx {
    char *dir;
    json_t *config; /* emu.json */
    EVP_PKEY *maa_key;
    X509 *maa_cert;
    char maa_kid[64]; /* JWT header kid of MAA tokens */
    EVP_PKEY *entra_key;
    X509 *entra_cert;
    char entra_kid[64];
    EVP_PKEY *tls_key;          /* also signs Key Vault release JWS (x5c = tls_chain) */
    STACK_OF(X509) * tls_chain; /* leaf (localhost, 127.0.0.1, ::1), then the CA */
    X509 *ca;
    STACK_OF(X509) * snp_roots;  /* DIR/snp/ark.pem: trusted by MAA next to the AMD roots */
    char imds_url[80];           /* "http://127.0.0.1:P" */
    char maa_url[80];            /* "https://127.0.0.1:P" */
    char akv_url[80];            /* "https://127.0.0.1:P" */
    pthread_mutex_t store_lock;  /* the key store (DIR/keys/store.json) */
    pthread_mutex_t issuer_lock; /* issuer_keys */
    struct emu_issuer_key issuer_keys[EMU_ISSUER_KEYS];
};

/* Loads DIR as `skr-emu init` wrote it (paths in emu.h). */
SKR_NODISCARD skr_err emu_ctx_load(const char *dir, struct emu_ctx *ctx);
void emu_ctx_done(struct emu_ctx *ctx);

/* IMDS (http): managed identity tokens, THIM, and Entra (discovery, OIDC, token). */
skr_err emu_imds_handle(void *ctx, const struct skr_http_request *req,
                        struct skr_http_response *resp);
/* MAA (https): attest/SevSnpVm, /certs, /.well-known/openid-configuration. */
skr_err emu_maa_handle(void *ctx, const struct skr_http_request *req,
                       struct skr_http_response *resp);
/* Key Vault / Managed HSM (https): keys API and release. */
skr_err emu_akv_handle(void *ctx, const struct skr_http_request *req,
                       struct skr_http_response *resp);

/* Empties the issuer key cache (tests that change an issuer's metadata between requests). */
void emu_akv_forget_issuer_keys(struct emu_ctx *ctx);

/* Verifies an Entra access token issued by this emulator (signature with the Entra key, exp,
 * nbf, aud == audience or audience + "/"); *ret_claims is a new reference. */
SKR_NODISCARD skr_err emu_entra_verify(struct emu_ctx *ctx, const char *token, const char *audience,
                                       json_t **ret_claims);

/* ---- added by the IMDS/serve work (additive) ------------------------------------------ */

/* Clock skew tolerated on exp and nbf of Entra tokens. */
#define EMU_ENTRA_SKEW_S 60
/* Lifetime of the Entra tokens the emulator issues (real ones live 1-24 h). */
#define EMU_ENTRA_LIFETIME_S 3600

/* emu.json string member section.key (section NULL: top level), or NULL. Borrowed. */
const char *emu_cfg_str(const struct emu_ctx *ctx, const char *section, const char *key);
/* "https://sts.windows.net/<tenant_id>/": the iss of the emulator's Entra tokens. */
SKR_NODISCARD skr_err emu_entra_issuer(const struct emu_ctx *ctx, char *out, size_t out_len);
/* Issues an access token for resource (aud = resource as given), valid from now - 5 min to
 * now + EMU_ENTRA_LIFETIME_S, appended to out; *ret_exp (may be NULL) receives exp. client_id
 * NULL means emu.json's managed identity; otherwise it must be that identity's client id or be
 * listed in emu.json "workload_client_ids" (SKR_E_NOT_FOUND). Used by the token endpoints and
 * by tests that need a bearer token. */
SKR_NODISCARD skr_err emu_entra_issue(struct emu_ctx *ctx, const char *resource,
                                      const char *client_id, struct skr_buf *out, int64_t *ret_exp);

/* ---- request-body parsers, separate from the handlers so that they can be fuzzed without a
 * server (fuzz/fuzz_emu_*.c); the handlers call exactly these (additive) ------------------- */

/* runtimeData / initTimeData of an attest request. */
struct emu_maa_data {
    bool present;
    struct skr_buf bytes; /* the decoded data */
    json_t *parsed;       /* the data as a JSON object when dataType is "JSON", else NULL */
};

/* An attest request after parsing: everything MAA checks before any cryptography. */
struct emu_attest_request {
    struct skr_snp_report report;
    uint8_t raw[SKR_SNP_REPORT_LEN];
    struct skr_cert_set certs; /* VcekCertChain */
    struct emu_maa_data runtime;
    struct emu_maa_data inittime; /* present false when absent or SCC's empty form */
    json_t *nonce;                /* the nonce as a JSON string, or NULL */
    bool uvm_endorsed; /* an Endorsements.Uvm entry vouches for the report's MEASUREMENT */
};

/* Parses an attest request body (maa.c's header comment: the request, the report bundle,
 * SnpReport, VcekCertChain, Endorsements, runtimeData, initTimeData, nonce). *req must be
 * zeroed; release it with emu_attest_request_done whatever the result. The errors are the
 * client's (400 InvalidParameter with skr_err_msg()) except SKR_E_NOMEM / SKR_E_INTERNAL. */
SKR_NODISCARD skr_err emu_maa_parse_attest(struct skr_span body, struct emu_attest_request *req);
void emu_attest_request_done(struct emu_attest_request *req);

/* A client error a body parser found: the HTTP status, AKV error code and message to send. */
struct emu_reject {
    unsigned int status; /* 0: none (the error was not the client's) */
    const char *code;
    char msg[1024];
};

/* A Key Vault release body {"target","nonce"?,"enc"?}. */
struct emu_akv_release_body {
    json_t *body;       /* owns the strings below */
    const char *target; /* the attestation token, not yet verified */
    const char *nonce;  /* NULL when absent */
    enum skr_kw_alg alg;
};

/* A Key Vault import (PUT /keys/<name>) or create (POST /keys/<name>/create) body. */
struct emu_akv_key_body {
    json_t *body;
    const char *kty;   /* "RSA", "EC" or "oct" */
    bool hsm;          /* -HSM kty (or import's "hsm": true) */
    json_t *jwk;       /* import: the private JWK to store, normalised; create: NULL */
    json_t *key_ops;   /* validated, or the default for kty */
    bool exportable;   /* attributes.exportable, default false */
    bool enabled;      /* attributes.enabled, default true */
    json_t *policy;    /* the stored release_policy form, or NULL */
    unsigned int bits; /* create: key_size (RSA, oct) */
    const char *crv;   /* create: the EC curve */
};

/*
 * The AKV body parsers: SKR_OK, or SKR_E_POLICY with *rej filled for a client error, or
 * another error of ours. api_version is one of the supported versions ("7.0" ... "7.6").
 * *ret must be zeroed; release it with the _done function whatever the result.
 */
SKR_NODISCARD skr_err emu_akv_parse_release(struct skr_span body, const char *api_version,
                                            struct emu_akv_release_body *ret,
                                            struct emu_reject *rej);
void emu_akv_release_body_done(struct emu_akv_release_body *b);
SKR_NODISCARD skr_err emu_akv_parse_key(struct skr_span body, bool import, const char *api_version,
                                        struct emu_akv_key_body *ret, struct emu_reject *rej);
void emu_akv_key_body_done(struct emu_akv_key_body *b);

/* The Entra token request form (application/x-www-form-urlencoded); members NULL when absent. */
struct emu_token_form {
    char *grant_type;
    char *assertion_type; /* client_assertion_type */
    char *assertion;      /* client_assertion */
    char *client_id;
    char *scope;
};

/* Percent-decodes the five parameters; SKR_E_MALFORMED for a bad escape, a NUL, or a parameter
 * given twice, SKR_E_TOO_LARGE for a value over SKR_MAX_JWT_BYTES. *f must be zeroed; release
 * it with emu_token_form_done whatever the result. */
SKR_NODISCARD skr_err emu_entra_parse_token_form(struct skr_span body, struct emu_token_form *f);
void emu_token_form_done(struct emu_token_form *f);
/* The resource R of the one "R/.default" scope of a space-separated list (false: none, several,
 * or R does not fit out_len). */
bool emu_entra_scope_resource(const char *scope, char *out, size_t out_len);
/* 0 when a client assertion is acceptable (a JWS with iss, sub, a future exp and aud
 * api://AzureADTokenExchange; the signature is not checked), else the AADSTS code with *why. */
unsigned int emu_entra_check_assertion(const char *assertion, const char **why);
