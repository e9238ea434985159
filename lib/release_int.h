/*
 * release_int.h - the insides of libskr's release flow (include/skr/skr.h, PROTOCOLS.md §1),
 * shared by release.c (options, client, the public entry points, error reports),
 * release_pool.c (transfer keys generated ahead by one background thread), release_certs.c
 * (report, platform certificates with their cache and the TCB-mismatch recovery, local
 * verification) and release_identity.c (vault tokens and their cache). Complete here so that
 * tests can look inside (STYLE.md C2); nothing in it is exported from libskr.so.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "skr/skr.h"

#include "azure.h"
#include "buf.h"
#include "http_client.h"
#include "jose.h"
#include "keywrap.h"
#include "secret.h"
#include "snp_certs.h"
#include "snp_dev.h"
#include "snp_report.h"

/* Certificate chains kept per (chip id, reported TCB): one platform has one chip and a TCB
 * changes a few times a year, so 8 covers a host migration or two without growing. */
#define REL_CERT_CACHE 8
/* Vault tokens kept per (resource, identity): a client talks to one or two vault kinds. */
#define REL_TOKEN_CACHE 8
/* MAA endpoints whose transfer key and token the reuse window keeps. */
#define REL_REUSE_MAX 8
/* Largest pool_size a caller may configure: RSA-4096 keys take ~1 s each to make. */
#define REL_POOL_MAX 16
/* A workload identity federated token file: a Kubernetes projected token is ~1-2 KiB. */
#define REL_MAX_WI_TOKEN_BYTES (64u * 1024u)
/* An option value: base64 security policies are the largest (rego text, < 1 MiB decoded). */
#define REL_MAX_OPTION_BYTES (2u * 1024u * 1024u)
/* Seconds before the MAA token's exp at which the reuse window stops using it, so the vault
 * never sees a token that expires in flight. */
#define REL_REUSE_EXP_MARGIN_S 60

enum rel_opt {
    OPT_SNP_DEVICE = 0,
    OPT_SECURITY_CONTEXT_DIR,
    OPT_SECURITY_POLICY,
    OPT_HOST_AMD_CERT,
    OPT_UVM_REFERENCE_INFO,
    OPT_IMDS_ENDPOINT,
    OPT_CA_FILE,
    OPT_TRUST_ROOT,
    OPT_CLIENT_ID,
    OPT_WI_CLIENT_ID,
    OPT_WI_TENANT_ID,
    OPT_WI_TOKEN_FILE,
    OPT_AUTHORITY_HOST,
    OPT_USER_AGENT,
    OPT_CERTCACHE_ENDPOINT_TYPE,
    OPT_CERTCACHE_ENDPOINT,
    OPT_CERTCACHE_TEE_TYPE,
    OPT_CERTCACHE_API_VERSION,
    OPT_CERTCACHE_CLIENT_ID,
    OPT_MAA_API_VERSION,
    OPT_AKV_API_VERSION,
    OPT_RELEASE_ENC,
    OPT_TRANSFER_KEY_BITS,
    OPT_POOL_SIZE,
    OPT_REUSE_WINDOW_S,
    OPT_CONNECT_TIMEOUT_MS,
    OPT_TIMEOUT_MS,
    OPT_RETRIES,
    OPT_RELEASE_DEADLINE_MS,
    OPT_TOKEN_REFRESH_S,
    OPT_COUNT_,
};

/* Values as set (NULL: the default); each was checked by skr_config_set. */
struct skr_config {
    char *val[OPT_COUNT_];
};

/* The value of an option, the default when unset (NULL when the default is "none"). */
const char *rel_opt_str(const struct skr_config *cfg, enum rel_opt o);
/* A numeric option (already range-checked). */
unsigned int rel_opt_uint(const struct skr_config *cfg, enum rel_opt o);

enum rel_certcache {
    REL_CC_AMD = 0,
    REL_CC_AZCACHE,
    REL_CC_LOCAL_THIM,
};

/* ---- transfer-key pool (release_pool.c) --------------------------------------------------- */

struct rel_pool;

/* Starts a pool of size keys of bits (size 0: no thread, every take generates inline). */
SKR_NODISCARD skr_err rel_pool_new(unsigned int bits, unsigned int size, struct rel_pool **ret);
/* Stops and joins the thread, frees the keys. NULL is a no-op. */
void rel_pool_free(struct rel_pool *p);
/* A fresh key (from the pool when one is ready, else generated now, stopped with SKR_E_TIMEOUT
 * when the calling thread's deadline (skr_http_deadline) passes); the caller owns it. */
SKR_NODISCARD skr_err rel_pool_take(struct rel_pool *p, EVP_PKEY **ret);
/* Keys ready now (tests). */
size_t rel_pool_ready(struct rel_pool *p);
/* Keys generated in total, by the thread and inline (tests). */
size_t rel_pool_generated(struct rel_pool *p);

/* ---- the client --------------------------------------------------------------------------- */

struct rel_cert_entry {
    bool used;
    uint8_t chip_id[64];
    uint64_t tcb;
    char *chain_pem; /* VCEK, ASK, ARK */
    char tcbm[17];   /* endorsed_tcb */
    uint64_t stamp;  /* last use, for eviction */
};

struct rel_token_entry {
    char *resource;
    char *identity;
    struct skr_secret *token; /* NUL-terminated */
    int64_t expires_on;
};

struct rel_reuse_entry {
    char *maa; /* the MAA endpoint as the caller wrote it */
    EVP_PKEY *key;
    char kid[SKR_THUMBPRINT_LEN];
    struct skr_secret *token; /* the MAA token, NUL-terminated */
    int64_t until;            /* Unix seconds */
};

/* Counters a test can read (and a daemon could export). */
struct rel_stats {
    unsigned long maa_attests;   /* MAA calls made */
    unsigned long reports;       /* reports requested from the device */
    unsigned long reuse_hits;    /* releases served by the reuse window */
    unsigned long token_fetches; /* vault tokens fetched (not from the cache) */
    unsigned long cert_fetches;  /* certificate source lookups past the cache */
};

struct skr_client {
    struct skr_config *cfg; /* a copy */
    enum skr_kw_alg enc;
    unsigned int bits, pool_size, reuse_s, deadline_ms, token_refresh_s;
    enum rel_certcache cc_type;
    char *cc_base; /* https://host[:port] of the certificate cache */
    char *imds_base;
    struct skr_snp_dev *dev;
    pthread_mutex_t dev_lock; /* one device request at a time */
    STACK_OF(X509) * extra_roots;
    struct skr_buf policy;       /* decoded security policy (initTimeData) */
    struct skr_buf ref_info;     /* decoded reference info (UVM endorsement) */
    struct skr_buf ref_info_b64; /* verbatim, for /attest/combined */
    bool has_sc_thim;
    struct skr_thim sc_thim;
    struct skr_http_client *http;
    X509_STORE *akv_trust;
    struct rel_pool *pool;
    pthread_mutex_t lock; /* caches, reuse window, stats */
    struct rel_cert_entry certs[REL_CERT_CACHE];
    uint64_t cert_clock;
    struct rel_token_entry tokens[REL_TOKEN_CACHE];
    struct rel_reuse_entry reuse[REL_REUSE_MAX];
    struct rel_stats stats;
};

/* A bearer token for resource from the client's identity (workload identity, else IMDS; the
 * token cache first), for the operator CLI: *ret is a new secret holding the NUL-terminated
 * token. Fills *err (stage "identity") on failure. Not exported from libskr.so. */
SKR_NODISCARD skr_err rel_client_token(skr_client *c, const char *resource, struct skr_secret **ret,
                                       skr_error_info *err);
/* A snapshot of the counters. */
void rel_client_stats(struct skr_client *c, struct rel_stats *ret);
/* A key name as a release request may carry it: at most 2048 printable ASCII characters
 * without spaces (skr_key_release and skr diagnose check it before any network call). */
SKR_NODISCARD skr_err rel_check_kid(const char *kid);

/* ---- one call: its stage, deadline and the upstream detail of its last exchange ------------ */

struct rel_call {
    struct skr_client *c;
    const char *stage;
    uint64_t deadline_ms; /* CLOCK_MONOTONIC milliseconds; 0: none */
    struct skr_upstream up;
    char message[512];  /* replaces the error message when set */
    char hint[256];     /* replaces the stage's generic hint when set */
    bool no_cert_cache; /* skr diagnose: look the certificates up past the cache */
};

/* Enters stage: fails with SKR_E_TIMEOUT naming it when the deadline has passed. */
SKR_NODISCARD skr_err rel_stage(struct rel_call *call, const char *stage);
uint64_t rel_now_ms(void);

/* ---- evidence (release_certs.c) ----------------------------------------------------------- */

struct rel_evidence {
    uint8_t raw[SKR_SNP_REPORT_LEN];
    struct skr_snp_report report;
    struct skr_buf chain_pem; /* VCEK, ASK, ARK */
    char tcbm[17];            /* THIM tcbm of the chain (endorsed_tcb) */
    const char *source;       /* where the chain came from (a static string), NULL: none yet */
};
void rel_evidence_done(struct rel_evidence *ev);
static inline void
rel_evidence_donep(struct rel_evidence *ev)
{
    rel_evidence_done(ev);
}

/* A report whose REPORT_DATA is SHA-256(runtime) then 32 zero bytes (stage "device"); with
 * need_certs also the matching certificate chain (stage "certs", with the reference's
 * TCB-mismatch recovery) verified locally (stage "verify"). *ev must be zeroed. */
SKR_NODISCARD skr_err rel_evidence_get(struct rel_call *call, struct skr_span runtime,
                                       bool need_certs, struct rel_evidence *ev);
/* Frees the certificate cache. */
void rel_certs_done(struct skr_client *c);

/* ---- identity (release_identity.c) -------------------------------------------------------- */

/* A bearer token for resource from the configured identity (cache first). *ret is a new
 * secret holding the NUL-terminated token. Stage "identity". */
SKR_NODISCARD skr_err rel_identity_token(struct rel_call *call, const char *resource,
                                         struct skr_secret **ret);
/* Forgets the cached token for resource (after the vault refused it). */
void rel_identity_forget(struct skr_client *c, const char *resource);
void rel_identity_done(struct skr_client *c);
