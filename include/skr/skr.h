/*
 * skr.h - public API of libskr.
 *
 * Only what is declared here is exported from libskr.so (the library is built with
 * -fvisibility=hidden). Types are opaque; every fallible call returns skr_err.
 * docs/api.md is the guide; examples/custom-app.c uses nothing but this header.
 */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>
#include <stdint.h>

#define SKR_VERSION "0.1.0"
#define SKR_API     __attribute__((visibility("default")))

/* Error categories: what a caller acts on (retry? bad input? denied?). */
#define SKR_ERRORS(X)                                                                              \
    X(SKR_OK, "ok")                                                                                \
    X(SKR_E_NOMEM, "out of memory")                                                                \
    X(SKR_E_INVALID_ARG, "invalid argument")                                                       \
    X(SKR_E_TRUNCATED, "input ended early")                                                        \
    X(SKR_E_MALFORMED, "input is malformed")                                                       \
    X(SKR_E_TOO_LARGE, "input exceeds a limit")                                                    \
    X(SKR_E_NOT_FOUND, "not found")                                                                \
    X(SKR_E_UNSUPPORTED, "not supported")                                                          \
    X(SKR_E_DEVICE, "SEV-SNP guest device error")                                                  \
    X(SKR_E_VERIFY, "verification failed")                                                         \
    X(SKR_E_POLICY, "evidence does not satisfy policy")                                            \
    X(SKR_E_UPSTREAM, "remote service returned an error")                                          \
    X(SKR_E_TIMEOUT, "timed out")                                                                  \
    X(SKR_E_IO, "I/O error")                                                                       \
    X(SKR_E_INTERNAL, "internal error")

typedef enum skr_err {
#define SKR_ERR_ENUM_(name, text) name,
    SKR_ERRORS(SKR_ERR_ENUM_)
#undef SKR_ERR_ENUM_
        SKR_ERR_COUNT_
} skr_err;

/* Human text for an error category; never NULL. */
SKR_API const char *skr_err_str(skr_err e);
/* Symbolic name ("SKR_E_MALFORMED"); never NULL. */
SKR_API const char *skr_err_name(skr_err e);
/* Detail of the last error raised on this thread: "<msg> (file.c:123)"; never NULL. */
SKR_API const char *skr_err_detail(void);
/* Library version string. */
SKR_API const char *skr_version(void);

/* ---- the release flow ---------------------------------------------------------------------
 *
 * A skr_config collects options by name (the names below; values are strings, parsed and
 * checked by skr_config_set). A skr_client is built from a config: it opens the SNP device,
 * loads the security context and the platform certificates, starts the transfer-key pool, and
 * serves any number of calls from any number of threads. Every call takes an optional
 * skr_error_info that says, on failure, which stage failed and why, in words a log can carry:
 * no secret, token or key material ever appears in it.
 *
 * Options (skrd's flags and SKR_* variables map onto these names one to one):
 *   snp_device          auto | tsm[:DIR] | sev-guest[:DEV] | sev[:DEV] | emulated:DIR  (auto)
 *                       | none: no device; identity and vault calls only (attestation and
 *                       release fail at stage "device")
 *   security_context_dir  directory with security-policy-base64, host-amd-cert-base64,
 *                       reference-info-base64 (default: none; skrd discovers it)
 *   security_policy     base64 rego policy (legacy UVM_SECURITY_POLICY; file wins)
 *   host_amd_cert       base64 THIM JSON (legacy UVM_HOST_AMD_CERTIFICATE; file wins)
 *   uvm_reference_info  base64 COSE_Sign1 (legacy UVM_REFERENCE_INFO; file wins)
 *   imds_endpoint       http://169.254.169.254
 *   ca_file             PEM of extra trust roots for TLS and the AKV release JWS chain
 *   trust_root          PEM of an extra trusted AMD ARK (an emulated platform's ark.pem is
 *                       trusted automatically with snp_device emulated:DIR)
 *   client_id           managed identity client id (optional)
 *   wi_client_id, wi_tenant_id, wi_token_file, authority_host
 *                       workload identity (all three of the first must be set to use it)
 *   user_agent          MAA User-Agent (ConfidentialSkrContainer)
 *   certcache_endpoint_type  where certificates come from when neither the security context
 *                       nor THIM has the report's TCB: AMD (AMD KDS, default) | AzCache |
 *                       LocalTHIM (THIM only), as the reference's SkrSideCarArgs "certcache"
 *   certcache_endpoint  host of that service (kdsintf.amd.com; global.acccache.azure.net),
 *                       "https://host:port" accepted for tests
 *   certcache_tee_type  SevSnpVM               certcache_api_version  (AzCache) api-version=...
 *   certcache_client_id (AzCache) clientId=... (ConfidentialACI)
 *   maa_api_version     2022-08-01          akv_api_version   7.4
 *   release_enc         RSA_AES_KEY_WRAP_256 | RSA_AES_KEY_WRAP_384 | CKM_RSA_AES_KEY_WRAP
 *   transfer_key_bits   2048 | 3072 | 4096  (2048)
 *   pool_size           transfer keys generated ahead in the background, 0..16 (2; 0 = off)
 *   reuse_window_s      seconds one transfer key and its MAA token serve repeated releases to
 *                       the same MAA endpoint, 0..3600 (0 = off: a fresh key for every release)
 *   connect_timeout_ms  per HTTP attempt (3000)    timeout_ms  per HTTP attempt (10000)
 *   retries             per HTTP call, 0..8 (4)    release_deadline_ms  whole release (30000)
 *   token_refresh_s     a cached vault token is renewed this long before it expires (300)
 */
typedef struct skr_config skr_config;
typedef struct skr_client skr_client;

/* What failed, for people and logs. Strings are NUL-terminated, possibly empty. */
typedef struct skr_error_info {
    skr_err err;
    char stage[16];       /* "input", "device", "certs", "verify", "maa", "identity", "akv",
                           * "unwrap", "config", or "internal" (transfer-key generation) */
    char message[512];    /* one sentence naming the cause */
    long upstream_status; /* HTTP status from MAA/IMDS/Entra/AKV, 0 when none */
    char code[64];        /* the service's error code, e.g. "AKV.SKR.1004", or "" */
    char request_id[128]; /* x-ms-request-id of the failing upstream call, or "" */
    char hint[256];       /* what to do about it, or "" */
} skr_error_info;

SKR_API skr_err skr_config_new(skr_config **ret);
SKR_API void skr_config_free(skr_config *cfg);
/* Sets option name to value (copied). SKR_E_INVALID_ARG for an unknown name or a bad value,
 * with skr_err_detail() naming both. NULL value restores the default. */
SKR_API skr_err skr_config_set(skr_config *cfg, const char *name, const char *value);

/* Opens everything cfg names; cfg may be freed afterwards. Fails with stage "device", "certs"
 * or "config" in err (may be NULL). */
SKR_API skr_err skr_client_new(const skr_config *cfg, skr_client **ret, skr_error_info *err);
/* Stops the key pool and frees everything, wiping secrets. NULL is a no-op. */
SKR_API void skr_client_free(skr_client *c);

/* SKR_REPORT_SIZE bytes of the SNP report whose REPORT_DATA[0..31] = SHA-256(runtime_data)
 * (rest zero), as the reference's /attest/raw. */
#define SKR_REPORT_SIZE 1184
SKR_API skr_err skr_attest_raw(skr_client *c, const uint8_t *runtime_data, size_t len,
                               uint8_t report[SKR_REPORT_SIZE], skr_error_info *err);
/* /attest/combined: JSON {"endorsed_tcb","endorsements","evidence","uvm_endorsements"};
 * *ret_json is freed with skr_string_free. */
SKR_API skr_err skr_attest_combined(skr_client *c, const uint8_t *runtime_data, size_t len,
                                    char **ret_json, skr_error_info *err);
/* /attest/maa: an MAA token for runtime_data (which must be JSON) from maa_endpoint. */
SKR_API skr_err skr_attest_maa(skr_client *c, const char *maa_endpoint, const uint8_t *runtime_data,
                               size_t len, char **ret_token, skr_error_info *err);

typedef struct skr_release_request {
    const char *maa_endpoint; /* e.g. "sharedeus2.eus2.attest.azure.net" */
    const char *akv_endpoint; /* e.g. "myhsm.managedhsm.azure.net" */
    const char *kid;          /* key name, "name/version", or key URL */
    const char *access_token; /* optional: the caller's token for the vault */
} skr_release_request;

/* The whole flow (DESIGN.md §1): *ret_jwk is the released key as a JWK (JSON text, private
 * material) in locked memory; free it with skr_string_free, which wipes it. */
SKR_API skr_err skr_key_release(skr_client *c, const skr_release_request *req, char **ret_jwk,
                                skr_error_info *err);

/* Frees a string returned by this library, wiping it first. NULL is a no-op. */
SKR_API void skr_string_free(char *s);

/* The RFC 7638 SHA-256 thumbprint of a JWK (kty RSA, EC or oct, with or without "-HSM"; e.g. a
 * released key) as 64 lowercase hex digits and a NUL: names a key in logs without revealing it
 * (for oct keys it is a hash of the secret: treat it as you would a key check value).
 * SKR_E_MALFORMED when a required member is missing or not a plain string. */
#define SKR_FINGERPRINT_LEN 65
SKR_API skr_err skr_jwk_fingerprint(const char *jwk, char out[SKR_FINGERPRINT_LEN]);

#ifdef __cplusplus
}
#endif
