/*
 * service.h - what the skr-emu services share while serving: the loaded DIR (keys,
 * certificates, configuration) and one handler per service. serve.c loads the context, starts
 * one skr_http_server per service with the handler below as its callback and the context as
 * handler_ctx, and fills the *_url fields once every listener is bound.
 */
#pragma once

#include <pthread.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "http_server.h"

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
    STACK_OF(X509) * snp_roots; /* DIR/snp/ark.pem: trusted by MAA next to the AMD roots */
    char imds_url[80];          /* "http://127.0.0.1:P" */
    char maa_url[80];           /* "https://127.0.0.1:P" */
    char akv_url[80];           /* "https://127.0.0.1:P" */
    pthread_mutex_t store_lock; /* the key store (DIR/keys/store.json) */
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
