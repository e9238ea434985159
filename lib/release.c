/*
 * release.c - libskr's release flow behind include/skr/skr.h (PROTOCOLS.md §1, issue #4 "The
 * flow"): options by name, the client (device, security context, HTTP client, vault trust,
 * transfer-key pool), the attest calls of the reference sidecar's /attest routes, the key
 * release with its denial explanation, and the error report every call fills.
 *
 * Owns: the copy of the options, the client and its caches, every string handed to callers
 * (each in wiped memory: skr_secret pages up to SKR_MAX_SECRET_BYTES, wiped heap beyond).
 * The library never reads the environment: skrd maps flags and variables onto option names.
 * Every client call is thread-safe; a release is coordinated here and done by the modules
 * (azure.c, jose.c, keywrap.c, snp_*.c), so this file only sequences stages and reports them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "b64.h"
#include "err.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "policy.h"
#include "release_int.h"

/* ---- options ------------------------------------------------------------------------------ */

typedef skr_err (*opt_check)(const char *v, uint64_t min, uint64_t max);

struct opt_def {
    const char *name;
    const char *def; /* NULL: none */
    opt_check check;
    uint64_t min, max;
};

static bool
all_chars(const char *v, size_t max, const char *extra)
{
    size_t n = strnlen(v, max + 1);

    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');

        if (!ok && (extra == NULL || strchr(extra, ch) == NULL)) {
            return false;
        }
    }
    return true;
}

static skr_err
check_device(const char *v, uint64_t min, uint64_t max)
{
    struct skr_snp_dev_cfg cfg;

    (void)min;
    (void)max;
    if (strcmp(v, "none") == 0) {
        return SKR_OK;
    }
    return skr_snp_dev_parse_spec(v, &cfg);
}

static skr_err
check_path(const char *v, uint64_t min, uint64_t max)
{
    size_t n = strnlen(v, 4097);

    (void)min;
    (void)max;
    ENSURE(n > 0 && n <= 4096, SKR_E_INVALID_ARG, "a path of 1 to 4096 characters is expected");
    for (size_t i = 0; i < n; i++) {
        ENSURE((unsigned char)v[i] >= 0x20 && v[i] != 0x7f, SKR_E_INVALID_ARG,
               "control characters are not allowed in a path");
    }
    return SKR_OK;
}

static skr_err
check_b64(const char *v, uint64_t min, uint64_t max)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };

    (void)min;
    (void)max;
    ENSURE(strnlen(v, REL_MAX_OPTION_BYTES + 1) <= REL_MAX_OPTION_BYTES, SKR_E_TOO_LARGE,
           "the value is too long");
    skr_buf_init(&out, REL_MAX_OPTION_BYTES);
    return skr_b64_decode(skr_span_str(v), SKR_B64_STD | SKR_B64_SKIP_WS, &out);
}

static skr_err
check_thim_b64(const char *v, uint64_t min, uint64_t max)
{
    _cleanup_(skr_thim_done) struct skr_thim t = { 0 };

    (void)min;
    (void)max;
    return skr_thim_parse_b64(skr_span_str(v), &t);
}

static skr_err
check_url(const char *v, uint64_t min, uint64_t max)
{
    (void)min;
    (void)max;
    ENSURE(strncasecmp(v, "http://", 7) == 0 || strncasecmp(v, "https://", 8) == 0,
           SKR_E_INVALID_ARG, "an http:// or https:// URL is expected");
    ENSURE(all_chars(v, 512, ":/.-_[]%~"), SKR_E_INVALID_ARG,
           "the URL has a character that is not allowed (or is over 512 characters)");
    return SKR_OK;
}

static skr_err
check_ident(const char *v, uint64_t min, uint64_t max)
{
    (void)min;
    (void)max;
    ENSURE(all_chars(v, 128, "-._"), SKR_E_INVALID_ARG,
           "1 to 128 letters, digits, '-', '.' or '_' are expected");
    return SKR_OK;
}

static skr_err
check_query(const char *v, uint64_t min, uint64_t max)
{
    (void)min;
    (void)max;
    ENSURE(all_chars(v, 128, "-._="), SKR_E_INVALID_ARG,
           "1 to 128 letters, digits, '-', '.', '_' or '=' are expected");
    return SKR_OK;
}

static skr_err
check_text(const char *v, uint64_t min, uint64_t max)
{
    size_t n = strnlen(v, 257);

    (void)min;
    (void)max;
    ENSURE(n > 0 && n <= 256, SKR_E_INVALID_ARG, "1 to 256 characters are expected");
    for (size_t i = 0; i < n; i++) {
        ENSURE(v[i] >= 0x20 && v[i] < 0x7f, SKR_E_INVALID_ARG,
               "only printable ASCII characters are allowed");
    }
    return SKR_OK;
}

static skr_err
check_cc_type(const char *v, uint64_t min, uint64_t max)
{
    (void)min;
    (void)max;
    ENSURE(strcasecmp(v, "AMD") == 0 || strcasecmp(v, "AzCache") == 0 ||
               strcasecmp(v, "LocalTHIM") == 0,
           SKR_E_INVALID_ARG, "AMD, AzCache or LocalTHIM is expected");
    return SKR_OK;
}

/* "host", "host:port", "https://host[:port]", optionally followed by the reference's
 * "/vcek/v1" path (SCC's default endpoint is "kdsintf.amd.com/vcek/v1"). */
static skr_err
cc_endpoint_base(const char *v, struct skr_buf *out)
{
    _cleanup_(skr_buf_donep) struct skr_buf tmp = { 0 };
    const char *s = NULL;
    size_t n = strnlen(v, 512);

    skr_buf_init(&tmp, 600);
    while (n > 0 && v[n - 1] == '/') {
        n--;
    }
    if (n >= 8 && strncmp(v + n - 8, "/vcek/v1", 8) == 0) {
        n -= 8;
    }
    TRY(skr_buf_append(&tmp, v, n));
    TRY(skr_buf_cstr(&tmp, &s));
    return skr_endpoint_base(s, out, NULL);
}

static skr_err
check_cc_endpoint(const char *v, uint64_t min, uint64_t max)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };

    (void)min;
    (void)max;
    skr_buf_init(&out, 600);
    return cc_endpoint_base(v, &out);
}

static skr_err
check_api(const char *v, uint64_t min, uint64_t max)
{
    (void)min;
    (void)max;
    ENSURE(all_chars(v, 32, "-."), SKR_E_INVALID_ARG, "an api-version such as 7.4 is expected");
    return SKR_OK;
}

static skr_err
check_enc(const char *v, uint64_t min, uint64_t max)
{
    enum skr_kw_alg alg;

    (void)min;
    (void)max;
    if (skr_kw_alg_parse(v, &alg) != SKR_OK) {
        FAIL(SKR_E_INVALID_ARG,
             "RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384 or CKM_RSA_AES_KEY_WRAP is expected");
    }
    return SKR_OK;
}

static skr_err
check_uint(const char *v, uint64_t min, uint64_t max)
{
    uint64_t x;

    if (skr_parse_u64(skr_span_str(v), false, min, max, &x) != SKR_OK) {
        FAILF(SKR_E_INVALID_ARG, "a whole number from %" PRIu64 " to %" PRIu64 " is expected", min,
              max);
    }
    return SKR_OK;
}

static skr_err
check_bits(const char *v, uint64_t min, uint64_t max)
{
    (void)min;
    (void)max;
    ENSURE(strcmp(v, "2048") == 0 || strcmp(v, "3072") == 0 || strcmp(v, "4096") == 0,
           SKR_E_INVALID_ARG, "2048, 3072 or 4096 is expected");
    return SKR_OK;
}

/* Indexed by enum rel_opt; skr.h documents the same names and defaults. */
static const struct opt_def opts[OPT_COUNT_] = {
    [OPT_SNP_DEVICE] = { "snp_device", "auto", check_device, 0, 0 },
    [OPT_SECURITY_CONTEXT_DIR] = { "security_context_dir", NULL, check_path, 0, 0 },
    [OPT_SECURITY_POLICY] = { "security_policy", NULL, check_b64, 0, 0 },
    [OPT_HOST_AMD_CERT] = { "host_amd_cert", NULL, check_thim_b64, 0, 0 },
    [OPT_UVM_REFERENCE_INFO] = { "uvm_reference_info", NULL, check_b64, 0, 0 },
    [OPT_IMDS_ENDPOINT] = { "imds_endpoint", "http://169.254.169.254", check_url, 0, 0 },
    [OPT_CA_FILE] = { "ca_file", NULL, check_path, 0, 0 },
    [OPT_TRUST_ROOT] = { "trust_root", NULL, check_path, 0, 0 },
    [OPT_CLIENT_ID] = { "client_id", NULL, check_ident, 0, 0 },
    [OPT_WI_CLIENT_ID] = { "wi_client_id", NULL, check_ident, 0, 0 },
    [OPT_WI_TENANT_ID] = { "wi_tenant_id", NULL, check_ident, 0, 0 },
    [OPT_WI_TOKEN_FILE] = { "wi_token_file", NULL, check_path, 0, 0 },
    [OPT_AUTHORITY_HOST] = { "authority_host", NULL, check_url, 0, 0 },
    [OPT_USER_AGENT] = { "user_agent", "ConfidentialSkrContainer", check_text, 0, 0 },
    [OPT_CERTCACHE_ENDPOINT_TYPE] = { "certcache_endpoint_type", "AMD", check_cc_type, 0, 0 },
    [OPT_CERTCACHE_ENDPOINT] = { "certcache_endpoint", NULL, check_cc_endpoint, 0, 0 },
    [OPT_CERTCACHE_TEE_TYPE] = { "certcache_tee_type", "SevSnpVM", check_ident, 0, 0 },
    [OPT_CERTCACHE_API_VERSION] = { "certcache_api_version", "api-version=2020-10-15-preview",
                                    check_query, 0, 0 },
    [OPT_CERTCACHE_CLIENT_ID] = { "certcache_client_id", "clientId=ConfidentialACI", check_query, 0,
                                  0 },
    [OPT_MAA_API_VERSION] = { "maa_api_version", "2022-08-01", check_api, 0, 0 },
    [OPT_AKV_API_VERSION] = { "akv_api_version", "7.4", check_api, 0, 0 },
    [OPT_RELEASE_ENC] = { "release_enc", "RSA_AES_KEY_WRAP_256", check_enc, 0, 0 },
    [OPT_TRANSFER_KEY_BITS] = { "transfer_key_bits", "2048", check_bits, 0, 0 },
    [OPT_POOL_SIZE] = { "pool_size", "2", check_uint, 0, REL_POOL_MAX },
    [OPT_REUSE_WINDOW_S] = { "reuse_window_s", "0", check_uint, 0, 3600 },
    [OPT_CONNECT_TIMEOUT_MS] = { "connect_timeout_ms", "3000", check_uint, 1, 600000 },
    [OPT_TIMEOUT_MS] = { "timeout_ms", "10000", check_uint, 1, 600000 },
    [OPT_RETRIES] = { "retries", "4", check_uint, 0, 8 },
    [OPT_RELEASE_DEADLINE_MS] = { "release_deadline_ms", "30000", check_uint, 1, 3600000 },
    [OPT_TOKEN_REFRESH_S] = { "token_refresh_s", "300", check_uint, 0, 86400 },
};

const char *
rel_opt_str(const struct skr_config *cfg, enum rel_opt o)
{
    return cfg->val[o] != NULL ? cfg->val[o] : opts[o].def;
}

unsigned int
rel_opt_uint(const struct skr_config *cfg, enum rel_opt o)
{
    uint64_t v = 0;

    if (skr_parse_u64(skr_span_str(rel_opt_str(cfg, o)), false, 0, UINT32_MAX, &v) != SKR_OK) {
        return 0; /* unreachable: skr_config_set checked it */
    }
    return (unsigned int)v;
}

DEFINE_CLEANUP(skr_config *, skr_config_free)

skr_err
skr_config_new(skr_config **ret)
{
    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    *ret = calloc(1, sizeof(**ret));
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static void
opt_free(char *v)
{
    if (v != NULL) {
        skr_wipe(v, strlen(v));
        free(v);
    }
}

void
skr_config_free(skr_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < OPT_COUNT_; i++) {
        opt_free(cfg->val[i]);
    }
    free(cfg);
}

/* The value as an error message may show it: printable, cut at 64 characters. */
static void
shown_value(const char *v, char out[80])
{
    size_t n = 0;

    for (; n < 64 && v[n] != '\0'; n++) {
        out[n] = v[n] >= 0x20 && v[n] < 0x7f ? v[n] : '?';
    }
    out[n] = '\0';
    if (v[n] != '\0') {
        memcpy(out + n, "...", 4);
    }
}

skr_err
skr_config_set(skr_config *cfg, const char *name, const char *value)
{
    char shown[80];
    char *copy;
    size_t i;

    ENSURE(cfg != NULL && name != NULL, SKR_E_INVALID_ARG, "NULL argument");
    for (i = 0; i < OPT_COUNT_; i++) {
        if (strcmp(opts[i].name, name) == 0) {
            break;
        }
    }
    if (i == OPT_COUNT_) {
        shown_value(name, shown);
        FAILF(SKR_E_INVALID_ARG, "unknown option \"%s\"", shown);
    }
    if (value == NULL || value[0] == '\0') {
        opt_free(cfg->val[i]);
        cfg->val[i] = NULL;
        return SKR_OK;
    }
    if (opts[i].check(value, opts[i].min, opts[i].max) != SKR_OK) {
        shown_value(value, shown);
        FAILF(SKR_E_INVALID_ARG, "option %s: invalid value \"%s\": %s", name, shown, skr_err_msg());
    }
    copy = strdup(value);
    ENSURE(copy != NULL, SKR_E_NOMEM, "out of memory");
    opt_free(cfg->val[i]);
    cfg->val[i] = copy;
    return SKR_OK;
}

static skr_err
config_copy(const skr_config *src, skr_config **ret)
{
    _cleanup_(skr_config_freep) skr_config *c = NULL;

    TRY(skr_config_new(&c));
    for (size_t i = 0; i < OPT_COUNT_; i++) {
        if (src->val[i] != NULL) {
            c->val[i] = strdup(src->val[i]);
            ENSURE(c->val[i] != NULL, SKR_E_NOMEM, "out of memory");
        }
    }
    *ret = TAKE_PTR(c);
    return SKR_OK;
}

/* ---- returned strings --------------------------------------------------------------------- */

/* In front of every string this library returns, so that skr_string_free can wipe it. */
struct str_hdr {
    uint64_t magic;
    struct skr_secret *sec; /* NULL: heap memory of total bytes */
    size_t total;
    uint64_t pad;
};

#define STR_MAGIC 0x736b722d73747231ull /* "skr-str1" */

static skr_err
str_new(struct skr_span s, char **ret)
{
    struct skr_secret *sec = NULL;
    struct str_hdr *h;
    size_t total = 0;

    TRY(skr_add_sz(sizeof(*h) + 1, s.len, &total));
    if (total <= SKR_MAX_SECRET_BYTES) {
        TRY(skr_secret_new(total, &sec));
        h = (struct str_hdr *)(void *)sec->ptr;
    } else {
        h = calloc(1, total);
        ENSURE(h != NULL, SKR_E_NOMEM, "out of memory");
    }
    *h = (struct str_hdr){ .magic = STR_MAGIC, .sec = sec, .total = total };
    if (s.len > 0) {
        memcpy(h + 1, s.ptr, s.len);
    }
    ((char *)(h + 1))[s.len] = '\0';
    *ret = (char *)(h + 1);
    return SKR_OK;
}

void
skr_string_free(char *s)
{
    struct str_hdr *h;

    if (s == NULL) {
        return;
    }
    h = (struct str_hdr *)(void *)s - 1;
    if (h->magic != STR_MAGIC) {
        return; /* not ours: leaking is safer than freeing a foreign pointer */
    }
    h->magic = 0;
    if (h->sec != NULL) {
        skr_secret_free(h->sec);
        return;
    }
    skr_wipe(h, h->total);
    free(h);
}

/* ---- calls, stages, error reports --------------------------------------------------------- */

uint64_t
rel_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

skr_err
rel_stage(struct rel_call *call, const char *stage)
{
    call->stage = stage;
    call->up = (struct skr_upstream){ 0 };
    if (call->deadline_ms != 0 && rel_now_ms() > call->deadline_ms) {
        FAILF(SKR_E_TIMEOUT, "the deadline of %u ms (release_deadline_ms) passed before stage %s",
              call->c->deadline_ms, stage);
    }
    return SKR_OK;
}

static void
call_init(struct rel_call *call, struct skr_client *c)
{
    *call = (struct rel_call){ .c = c, .stage = "input" };
    if (c != NULL && c->deadline_ms > 0) {
        call->deadline_ms = rel_now_ms() + c->deadline_ms;
    }
    /* Every HTTP request of this call (retries and backoff included) ends by the deadline:
     * checking only between stages let one retrying call run far past it. Both clocks are
     * CLOCK_MONOTONIC milliseconds. Each public call sets it anew on its thread. */
    skr_http_set_deadline(call->deadline_ms);
}

static const char *
upstream_hint(const char *stage, long status)
{
    if (strcmp(stage, "maa") == 0) {
        if (status == 0) {
            return "check that the MAA endpoint is reachable and trusted (maa_endpoint, ca_file)";
        }
        if (status >= 500 || status == 429 || status == 408) {
            return "MAA is unavailable: retry later";
        }
        return "check the MAA endpoint is the key's authority and accepts this platform's "
               "evidence";
    }
    if (strcmp(stage, "identity") == 0) {
        if (status == 0) {
            return "check that IMDS (imds_endpoint) or the workload identity authority is "
                   "reachable";
        }
        return "check the managed identity (client_id) or the workload identity settings "
               "(wi_client_id, wi_tenant_id, wi_token_file)";
    }
    if (status == 0) {
        return "check that the vault endpoint is reachable and its TLS chain trusted (ca_file)";
    }
    if (status == 401) {
        return "the vault refused the access token: check the identity and the token's audience "
               "(https://vault.azure.net or https://managedhsm.azure.net)";
    }
    if (status == 403) {
        return "grant the identity keys/release on the key, and check the key's release policy "
               "against the attestation claims";
    }
    if (status == 404) {
        return "check the key name (kid) and the vault endpoint";
    }
    if (status >= 500 || status == 429 || status == 408) {
        return "the vault is unavailable: retry later";
    }
    return "check the request: key name, release_enc, akv_api_version";
}

static const char *
generic_hint(const char *stage, skr_err e, long status)
{
    if (e == SKR_E_TIMEOUT) {
        return "the upstream services are slow or unreachable: check them, or raise "
               "release_deadline_ms / timeout_ms";
    }
    if (strcmp(stage, "device") == 0) {
        return e == SKR_E_NOT_FOUND
                   ? "run inside an SEV-SNP confidential container, or set snp_device to "
                     "emulated:DIR for tests"
                   : "check the guest's SEV-SNP device (driver, permissions, snp_device)";
    }
    if (strcmp(stage, "certs") == 0) {
        return "check the security context's host-amd-cert-base64, THIM (imds_endpoint) and "
               "certcache_endpoint_type / certcache_endpoint";
    }
    if (strcmp(stage, "verify") == 0) {
        return "the report or its certificates do not verify: check the certificate sources, "
               "and trust_root for a non-AMD (emulated) root";
    }
    if (strcmp(stage, "unwrap") == 0) {
        return "the vault's answer did not verify or unwrap: check that ca_file trusts the "
               "vault's TLS chain and that akv_endpoint is the vault's host name";
    }
    if (strcmp(stage, "config") == 0) {
        return "fix the option named in the message";
    }
    if (strcmp(stage, "input") == 0) {
        return "fix the request argument named in the message";
    }
    if (strcmp(stage, "maa") == 0 || strcmp(stage, "identity") == 0 || strcmp(stage, "akv") == 0) {
        return upstream_hint(stage, status);
    }
    return "";
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
    (void)snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* Fills *err from the call when e failed (or clears it); returns e. */
static skr_err
finish(struct rel_call *call, skr_err e, skr_error_info *err)
{
    if (err == NULL) {
        return e;
    }
    *err = (skr_error_info){ .err = e };
    if (e == SKR_OK) {
        return e;
    }
    copy_str(err->stage, sizeof(err->stage), call->stage);
    copy_str(err->message, sizeof(err->message),
             call->message[0] != '\0' ? call->message : skr_err_msg());
    err->upstream_status = call->up.status;
    copy_str(err->code, sizeof(err->code), call->up.code);
    copy_str(err->request_id, sizeof(err->request_id), call->up.request_id);
    copy_str(err->hint, sizeof(err->hint),
             call->hint[0] != '\0' ? call->hint : generic_hint(call->stage, e, call->up.status));
    return e;
}

/* ---- the client --------------------------------------------------------------------------- */

static skr_err
add_roots_file(const char *path, STACK_OF(X509) * roots)
{
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *certs = NULL;

    skr_buf_init(&file, SKR_MAX_PEM_BYTES);
    if (skr_read_file(path, &file) != SKR_OK) {
        FAILF(SKR_E_IO, "cannot read trusted root %s: %s", path, skr_err_msg());
    }
    if (skr_pem_read_certs(skr_buf_span(&file), &certs) != SKR_OK) {
        FAILF(SKR_E_MALFORMED, "trusted root %s: %s", path, skr_err_msg());
    }
    while (sk_X509_num(certs) > 0) {
        X509 *x = sk_X509_shift(certs);

        if (sk_X509_push(roots, x) <= 0) {
            X509_free(x);
            FAIL(SKR_E_NOMEM, "out of memory");
        }
    }
    return SKR_OK;
}

/* With emulated:DIR the platform's own ARK (DIR/ark.pem or DIR/snp/ark.pem) is trusted too. */
static skr_err
add_emulated_root(const char *dir, STACK_OF(X509) * roots)
{
    static const char *const rel[] = { "platform.json", "snp/platform.json" };
    static const char *const ark[] = { "ark.pem", "snp/ark.pem" };
    char path[4200];
    struct stat st;

    for (size_t i = 0; i < SKR_ARRAY_LEN(rel); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", dir, rel[i]);
        if (stat(path, &st) == 0) {
            (void)snprintf(path, sizeof(path), "%s/%s", dir, ark[i]);
            return add_roots_file(path, roots);
        }
    }
    FAILF(SKR_E_NOT_FOUND, "emulated platform %s has no platform.json", dir);
}

static skr_err
open_device(struct rel_call *call, struct skr_client *c)
{
    struct skr_snp_dev_cfg dc;
    const char *trust = rel_opt_str(c->cfg, OPT_TRUST_ROOT);

    const char *spec = rel_opt_str(c->cfg, OPT_SNP_DEVICE);
    bool none = strcmp(spec, "none") == 0;

    TRY(rel_stage(call, "device"));
    if (!none) {
        TRY(skr_snp_dev_parse_spec(spec, &dc));
        TRY(skr_snp_dev_open(&dc, &c->dev));
    }
    c->extra_roots = sk_X509_new_null();
    ENSURE(c->extra_roots != NULL, SKR_E_NOMEM, "out of memory");
    if (!none && dc.kind == SKR_SNP_DEV_EMULATED) {
        TRY(add_emulated_root(dc.path, c->extra_roots));
    }
    if (trust != NULL) {
        TRY(rel_stage(call, "config"));
        TRY(add_roots_file(trust, c->extra_roots));
    }
    return SKR_OK;
}

/* The security-context file name in dir when it exists (appended to b), else NULL. */
static skr_err
sc_file(const char *dir, const char *name, struct skr_buf *b, const char **ret)
{
    struct stat st;

    *ret = NULL;
    if (dir == NULL) {
        return SKR_OK;
    }
    skr_buf_reset(b);
    TRY(skr_buf_printf(b, "%s/%s", dir, name));
    TRY(skr_buf_cstr(b, ret));
    if (stat(*ret, &st) != 0) {
        *ret = NULL;
    }
    return SKR_OK;
}

/* The text of a security-context item: the file when present, else the option's value. */
static skr_err
sc_item(const struct skr_client *c, const char *name, enum rel_opt legacy, struct skr_buf *out)
{
    _cleanup_(skr_buf_donep) struct skr_buf path = { 0 };
    const char *dir = rel_opt_str(c->cfg, OPT_SECURITY_CONTEXT_DIR);
    const char *p = NULL;
    const char *v = rel_opt_str(c->cfg, legacy);

    skr_buf_init(&path, 4200);
    TRY(sc_file(dir, name, &path, &p));
    if (p != NULL) {
        if (skr_read_file(p, out) != SKR_OK) {
            FAILF(SKR_E_IO, "security context: cannot read %s: %s", p, skr_err_msg());
        }
        return SKR_OK;
    }
    return v != NULL ? skr_buf_append_str(out, v) : SKR_OK;
}

static void
trim_ws(struct skr_buf *b)
{
    while (b->len > 0 && (b->ptr[b->len - 1] == '\n' || b->ptr[b->len - 1] == '\r' ||
                          b->ptr[b->len - 1] == ' ' || b->ptr[b->len - 1] == '\t')) {
        b->len--;
    }
}

static skr_err
load_security_context(struct rel_call *call, struct skr_client *c)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    const char *dir = rel_opt_str(c->cfg, OPT_SECURITY_CONTEXT_DIR);
    struct stat st;

    TRY(rel_stage(call, "config"));
    if (dir != NULL && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        FAILF(SKR_E_NOT_FOUND, "security_context_dir %s is not a directory", dir);
    }
    skr_buf_init(&text, SKR_MAX_FILE_BYTES);
    TRY(sc_item(c, "security-policy-base64", OPT_SECURITY_POLICY, &text));
    if (skr_b64_decode(skr_buf_span(&text), SKR_B64_STD | SKR_B64_SKIP_WS, &c->policy) != SKR_OK) {
        FAILF(SKR_E_MALFORMED, "security policy (security-policy-base64): %s", skr_err_msg());
    }
    skr_buf_reset(&text);
    TRY(sc_item(c, "reference-info-base64", OPT_UVM_REFERENCE_INFO, &text));
    trim_ws(&text);
    TRY(skr_buf_append_span(&c->ref_info_b64, skr_buf_span(&text)));
    if (skr_b64_decode(skr_buf_span(&text), SKR_B64_STD | SKR_B64_SKIP_WS, &c->ref_info) !=
        SKR_OK) {
        FAILF(SKR_E_MALFORMED, "reference info (reference-info-base64): %s", skr_err_msg());
    }
    skr_buf_reset(&text);
    TRY(sc_item(c, "host-amd-cert-base64", OPT_HOST_AMD_CERT, &text));
    if (text.len > 0) {
        TRY(rel_stage(call, "certs"));
        if (skr_thim_parse_b64(skr_buf_span(&text), &c->sc_thim) != SKR_OK) {
            FAILF(SKR_E_MALFORMED, "host AMD certificate (host-amd-cert-base64): %s",
                  skr_err_msg());
        }
        c->has_sc_thim = true;
    }
    return SKR_OK;
}

static skr_err
setup_services(struct rel_call *call, struct skr_client *c)
{
    struct skr_http_client_opts o;
    _cleanup_(skr_buf_donep) struct skr_buf cc = { 0 };
    const char *type = rel_opt_str(c->cfg, OPT_CERTCACHE_ENDPOINT_TYPE);
    const char *ep = rel_opt_str(c->cfg, OPT_CERTCACHE_ENDPOINT);
    const char *s = NULL;

    TRY(rel_stage(call, "config"));
    skr_http_client_opts_init(&o);
    o.ca_file = rel_opt_str(c->cfg, OPT_CA_FILE);
    o.connect_timeout_ms = rel_opt_uint(c->cfg, OPT_CONNECT_TIMEOUT_MS);
    o.timeout_ms = rel_opt_uint(c->cfg, OPT_TIMEOUT_MS);
    o.retries = rel_opt_uint(c->cfg, OPT_RETRIES);
    TRY(skr_http_client_new(&o, &c->http));
    /* the release JWS chains to the same roots as the TLS connections: one store for both */
    ENSURE(X509_STORE_up_ref(skr_http_client_trust(c->http)) == 1, SKR_E_INTERNAL,
           "X509_STORE_up_ref");
    c->akv_trust = skr_http_client_trust(c->http);
    c->imds_base = strdup(rel_opt_str(c->cfg, OPT_IMDS_ENDPOINT));
    ENSURE(c->imds_base != NULL, SKR_E_NOMEM, "out of memory");
    c->cc_type = strcasecmp(type, "AMD") == 0       ? REL_CC_AMD
                 : strcasecmp(type, "AzCache") == 0 ? REL_CC_AZCACHE
                                                    : REL_CC_LOCAL_THIM;
    if (ep == NULL) {
        ep = c->cc_type == REL_CC_AZCACHE ? "global.acccache.azure.net" : "kdsintf.amd.com";
    }
    skr_buf_init(&cc, 600);
    TRY(cc_endpoint_base(ep, &cc));
    TRY(skr_buf_cstr(&cc, &s));
    c->cc_base = strdup(s);
    ENSURE(c->cc_base != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static skr_err
client_build(struct rel_call *call, const skr_config *cfg, struct skr_client *c)
{
    TRY(config_copy(cfg, &c->cfg));
    TRY(skr_kw_alg_parse(rel_opt_str(c->cfg, OPT_RELEASE_ENC), &c->enc));
    c->bits = rel_opt_uint(c->cfg, OPT_TRANSFER_KEY_BITS);
    c->pool_size = rel_opt_uint(c->cfg, OPT_POOL_SIZE);
    c->reuse_s = rel_opt_uint(c->cfg, OPT_REUSE_WINDOW_S);
    c->deadline_ms = rel_opt_uint(c->cfg, OPT_RELEASE_DEADLINE_MS);
    c->token_refresh_s = rel_opt_uint(c->cfg, OPT_TOKEN_REFRESH_S);
    TRY(load_security_context(call, c));
    TRY(setup_services(call, c));
    TRY(open_device(call, c));
    TRY(rel_stage(call, "config"));
    return rel_pool_new(c->bits, c->pool_size, &c->pool);
}

static void
reuse_clear(struct rel_reuse_entry *r)
{
    free(r->maa);
    EVP_PKEY_free(r->key);
    skr_secret_free(r->token);
    *r = (struct rel_reuse_entry){ 0 };
}

void
skr_client_free(skr_client *c)
{
    if (c == NULL) {
        return;
    }
    rel_pool_free(c->pool);
    for (size_t i = 0; i < REL_REUSE_MAX; i++) {
        reuse_clear(&c->reuse[i]);
    }
    rel_identity_done(c);
    rel_certs_done(c);
    skr_snp_dev_free(c->dev);
    skr_x509_stack_free(c->extra_roots);
    skr_buf_done(&c->policy);
    skr_buf_done(&c->ref_info);
    skr_buf_done(&c->ref_info_b64);
    skr_thim_done(&c->sc_thim);
    skr_http_client_free(c->http);
    X509_STORE_free(c->akv_trust);
    free(c->imds_base);
    free(c->cc_base);
    skr_config_free(c->cfg);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->dev_lock);
    free(c);
}

skr_err
skr_client_new(const skr_config *cfg, skr_client **ret, skr_error_info *err)
{
    struct rel_call call;
    struct skr_client *c;
    skr_err e;

    call_init(&call, NULL);
    call.stage = "config";
    if (cfg == NULL || ret == NULL) {
        return finish(&call, skr_err_at(SKR_E_INVALID_ARG, __FILE__, __LINE__, "NULL argument"),
                      err);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return finish(&call, skr_err_at(SKR_E_NOMEM, __FILE__, __LINE__, "out of memory"), err);
    }
    (void)pthread_mutex_init(&c->lock, NULL);
    (void)pthread_mutex_init(&c->dev_lock, NULL);
    skr_buf_init(&c->policy, SKR_MAX_FILE_BYTES);
    skr_buf_init(&c->ref_info, SKR_MAX_FILE_BYTES);
    skr_buf_init(&c->ref_info_b64, SKR_MAX_FILE_BYTES);
    call.c = c;
    e = client_build(&call, cfg, c);
    if (e != SKR_OK) {
        e = finish(&call, e, err);
        skr_client_free(c);
        return e;
    }
    *ret = c;
    return finish(&call, SKR_OK, err);
}

skr_err
rel_client_token(skr_client *c, const char *resource, struct skr_secret **ret, skr_error_info *err)
{
    struct rel_call call;
    skr_err e;

    call_init(&call, c);
    if (c == NULL || resource == NULL || ret == NULL) {
        return finish(&call, skr_err_at(SKR_E_INVALID_ARG, __FILE__, __LINE__, "NULL argument"),
                      err);
    }
    e = rel_identity_token(&call, resource, ret);
    return finish(&call, e, err);
}

void
rel_client_stats(struct skr_client *c, struct rel_stats *ret)
{
    pthread_mutex_lock(&c->lock);
    *ret = c->stats;
    pthread_mutex_unlock(&c->lock);
}

/* ---- attestation -------------------------------------------------------------------------- */

static skr_err
check_runtime(const uint8_t *p, size_t len)
{
    ENSURE(p != NULL || len == 0, SKR_E_INVALID_ARG, "runtime data is NULL with a length");
    ENSURE(len <= SKR_MAX_JSON_BYTES, SKR_E_TOO_LARGE, "runtime data is larger than 1 MiB");
    return SKR_OK;
}

static skr_err
attest_raw(struct rel_call *call, const uint8_t *rt, size_t len, uint8_t *report)
{
    _cleanup_(rel_evidence_donep) struct rel_evidence ev = { 0 };

    ENSURE(call->c != NULL && report != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(check_runtime(rt, len));
    TRY(rel_evidence_get(call, skr_span_make(rt, len), false, &ev));
    memcpy(report, ev.raw, SKR_SNP_REPORT_LEN);
    return SKR_OK;
}

skr_err
skr_attest_raw(skr_client *c, const uint8_t *runtime_data, size_t len,
               uint8_t report[SKR_REPORT_SIZE], skr_error_info *err)
{
    struct rel_call call;

    call_init(&call, c);
    return finish(&call, attest_raw(&call, runtime_data, len, report), err);
}

static skr_err
b64_member(json_t *o, const char *key, struct skr_span data)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    const char *s = NULL;

    skr_buf_init(&b, SKR_MAX_JSON_BYTES);
    TRY(skr_b64_encode(data, SKR_B64_STD | SKR_B64_PAD, &b));
    TRY(skr_buf_cstr(&b, &s));
    return skr_json_set(o, key, json_string(s));
}

static skr_err
attest_combined(struct rel_call *call, const uint8_t *rt, size_t len, char **ret)
{
    struct skr_client *c = call->c;
    _cleanup_(rel_evidence_donep) struct rel_evidence ev = { 0 };
    _cleanup_(json_decrefp) json_t *o = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf uvm = { 0 };
    const char *s = NULL;

    ENSURE(c != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(check_runtime(rt, len));
    TRY(rel_evidence_get(call, skr_span_make(rt, len), true, &ev));
    TRY(rel_stage(call, "input"));
    o = json_object();
    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    skr_buf_init(&uvm, SKR_MAX_FILE_BYTES);
    TRY(skr_buf_append_span(&uvm, skr_buf_span(&c->ref_info_b64)));
    TRY(skr_buf_cstr(&uvm, &s));
    TRY(skr_json_set(o, "endorsed_tcb", json_string(ev.tcbm)));
    TRY(b64_member(o, "endorsements", skr_buf_span(&ev.chain_pem)));
    TRY(b64_member(o, "evidence", skr_span_make(ev.raw, sizeof(ev.raw))));
    TRY(skr_json_set(o, "uvm_endorsements", json_string(s)));
    skr_buf_init(&out, SKR_MAX_JSON_BYTES);
    TRY(skr_json_dump(o, JSON_COMPACT | JSON_SORT_KEYS, &out));
    return str_new(skr_buf_span(&out), ret);
}

skr_err
skr_attest_combined(skr_client *c, const uint8_t *runtime_data, size_t len, char **ret_json,
                    skr_error_info *err)
{
    struct rel_call call;

    call_init(&call, c);
    return finish(&call, attest_combined(&call, runtime_data, len, ret_json), err);
}

static skr_err
maa_attest(struct rel_call *call, const char *maa, struct skr_span runtime,
           const struct rel_evidence *ev, struct skr_buf *token)
{
    struct skr_client *c = call->c;
    struct skr_maa_evidence mev = {
        .report = skr_span_make(ev->raw, sizeof(ev->raw)),
        .vcek_chain = skr_buf_span(&ev->chain_pem),
        .uvm_endorsement = skr_buf_span(&c->ref_info),
        .runtime_data = runtime,
        .init_data = skr_buf_span(&c->policy),
    };

    TRY(rel_stage(call, "maa"));
    pthread_mutex_lock(&c->lock);
    c->stats.maa_attests++;
    pthread_mutex_unlock(&c->lock);
    return skr_maa_attest(c->http, maa, rel_opt_str(c->cfg, OPT_MAA_API_VERSION),
                          rel_opt_str(c->cfg, OPT_USER_AGENT), &mev, token, &call->up);
}

static skr_err
check_endpoint(const char *ep, const char *what)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    ENSURE(ep != NULL && ep[0] != '\0', SKR_E_INVALID_ARG, what);
    skr_buf_init(&b, 600);
    return skr_endpoint_base(ep, &b, NULL);
}

static skr_err
attest_maa(struct rel_call *call, const char *maa, const uint8_t *rt, size_t len, char **ret)
{
    _cleanup_(rel_evidence_donep) struct rel_evidence ev = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf token = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;

    ENSURE(call->c != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(check_runtime(rt, len));
    TRY(check_endpoint(maa, "maa_endpoint is missing"));
    if (skr_json_parse(skr_span_make(rt, len), SKR_MAX_JSON_BYTES, &doc) != SKR_OK) {
        FAILF(SKR_E_MALFORMED, "runtime data must be JSON (MAA dataType JSON): %s", skr_err_msg());
    }
    TRY(rel_evidence_get(call, skr_span_make(rt, len), true, &ev));
    skr_buf_init(&token, SKR_MAX_JWT_BYTES + 1);
    TRY(maa_attest(call, maa, skr_span_make(rt, len), &ev, &token));
    return str_new(skr_span_str((const char *)token.ptr), ret);
}

skr_err
skr_attest_maa(skr_client *c, const char *maa_endpoint, const uint8_t *runtime_data, size_t len,
               char **ret_token, skr_error_info *err)
{
    struct rel_call call;

    call_init(&call, c);
    return finish(&call, attest_maa(&call, maa_endpoint, runtime_data, len, ret_token), err);
}

/* ---- transfer key and MAA token, fresh or from the reuse window ---------------------------- */

struct transfer {
    EVP_PKEY *key;
    char kid[SKR_THUMBPRINT_LEN];
    struct skr_secret *token; /* NUL-terminated MAA token */
    bool reused;
};

static void
transfer_done(struct transfer *t)
{
    EVP_PKEY_free(t->key);
    skr_secret_free(t->token);
    *t = (struct transfer){ 0 };
}

static bool
reuse_get(struct skr_client *c, const char *maa, struct transfer *t)
{
    int64_t now = (int64_t)time(NULL);
    bool hit = false;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < REL_REUSE_MAX && !hit; i++) {
        struct rel_reuse_entry *r = &c->reuse[i];

        if (r->maa == NULL || strcmp(r->maa, maa) != 0) {
            continue;
        }
        if (r->until <= now) {
            reuse_clear(r);
            continue;
        }
        if (skr_secret_from(skr_secret_span(r->token), &t->token) == SKR_OK &&
            EVP_PKEY_up_ref(r->key) == 1) {
            t->key = r->key;
            memcpy(t->kid, r->kid, sizeof(t->kid));
            t->reused = true;
            c->stats.reuse_hits++;
            hit = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (!hit) {
        skr_secret_free(t->token);
        t->token = NULL;
    }
    return hit;
}

static void
reuse_drop(struct skr_client *c, const char *maa)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < REL_REUSE_MAX; i++) {
        if (c->reuse[i].maa != NULL && strcmp(c->reuse[i].maa, maa) == 0) {
            reuse_clear(&c->reuse[i]);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/* The token's exp claim (0 when it has none). The signature is the vault's business. */
static int64_t
token_exp(const struct skr_secret *token)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    const json_t *exp;

    if (skr_jws_parse(skr_span_str((const char *)token->ptr), &jws) != SKR_OK ||
        jws.claims == NULL) {
        return 0;
    }
    exp = json_object_get(jws.claims, "exp");
    return json_is_integer(exp) ? (int64_t)json_integer_value(exp) : 0;
}

static void
reuse_put(struct skr_client *c, const char *maa, const struct transfer *t)
{
    int64_t now = (int64_t)time(NULL);
    int64_t exp = token_exp(t->token);
    int64_t until = now + (int64_t)c->reuse_s;
    struct rel_reuse_entry n = { 0 };
    struct rel_reuse_entry *slot = NULL;

    if (exp - REL_REUSE_EXP_MARGIN_S < until) {
        until = exp - REL_REUSE_EXP_MARGIN_S;
    }
    if (until <= now) {
        return; /* no exp, or about to expire: never kept past the token's life */
    }
    n.maa = strdup(maa);
    if (n.maa == NULL || EVP_PKEY_up_ref(t->key) != 1) {
        free(n.maa);
        return;
    }
    n.key = t->key;
    if (skr_secret_from(skr_secret_span(t->token), &n.token) != SKR_OK) {
        reuse_clear(&n);
        return;
    }
    memcpy(n.kid, t->kid, sizeof(n.kid));
    n.until = until;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < REL_REUSE_MAX; i++) {
        struct rel_reuse_entry *r = &c->reuse[i];

        if (r->maa != NULL && strcmp(r->maa, maa) == 0) {
            slot = r;
            break;
        }
        if (slot == NULL || r->maa == NULL || (slot->maa != NULL && r->until < slot->until)) {
            slot = r;
        }
    }
    reuse_clear(slot);
    *slot = n;
    pthread_mutex_unlock(&c->lock);
}

static skr_err
fresh_transfer(struct rel_call *call, const char *maa, struct transfer *t)
{
    struct skr_client *c = call->c;
    _cleanup_(skr_buf_donep) struct skr_buf jwks = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf token = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    _cleanup_(rel_evidence_donep) struct rel_evidence ev = { 0 };
    const char *kid;

    /* no device (snp_device none): fail before a transfer key is made for nothing */
    TRY(rel_stage(call, "device"));
    ENSURE(c->dev != NULL, SKR_E_NOT_FOUND,
           "no SEV-SNP device: the client was made with snp_device none");
    TRY(rel_stage(call, "internal"));
    TRY(rel_pool_take(c->pool, &t->key));
    skr_buf_init(&jwks, 1u << 16);
    TRY(skr_jwks_transfer_key(t->key, &jwks, &doc));
    kid =
        json_string_value(json_object_get(json_array_get(json_object_get(doc, "keys"), 0), "kid"));
    ENSURE(kid != NULL && strlen(kid) < sizeof(t->kid), SKR_E_INTERNAL, "transfer JWKS has no kid");
    memcpy(t->kid, kid, strlen(kid) + 1);
    TRY(rel_evidence_get(call, skr_buf_span(&jwks), true, &ev));
    skr_buf_init(&token, SKR_MAX_JWT_BYTES + 1);
    TRY(maa_attest(call, maa, skr_buf_span(&jwks), &ev, &token));
    TRY(skr_secret_from(skr_span_make(token.ptr, token.len + 1), &t->token));
    if (c->reuse_s > 0) {
        reuse_put(c, maa, t);
    }
    return SKR_OK;
}

/* ---- denial explanation ------------------------------------------------------------------- */

struct release_ctx {
    const skr_release_request *req;
    const char *bearer;
    const char *maa_token;
};

/* Turns a policy explanation into the call's message and hint. */
static void
explain_text(struct rel_call *call, const struct skr_policy_explain *x, const char *iss)
{
    const struct skr_policy_cond_result *ff = x->first_failure;

    if (x->allow) {
        copy_str(call->hint, sizeof(call->hint),
                 "the key's release policy accepts this attestation, so the vault refused the "
                 "identity: grant it keys/release on the key (e.g. Managed HSM Crypto User)");
        return;
    }
    if (x->closest < 0) {
        (void)snprintf(call->message, sizeof(call->message),
                       "key release denied: no authority in the key's release policy matches "
                       "the attestation token's issuer %s",
                       iss != NULL ? iss : "(none)");
        (void)snprintf(call->hint, sizeof(call->hint),
                       "check the MAA endpoint is the key's authority (the policy names %s)",
                       x->n_branches > 0 ? x->branches[0].authority->authority : "none");
        return;
    }
    if (ff == NULL || ff->cond == NULL || ff->cond->claim == NULL) {
        (void)snprintf(call->message, sizeof(call->message),
                       "key release denied by the key's release policy: %.400s", x->reason);
        return;
    }
    {
        const char *seen = ff->seen == SKR_POLICY_SEEN_VALUE ? ff->seen_text : NULL;
        char seen_q[200];

        if (seen != NULL) {
            (void)snprintf(seen_q, sizeof(seen_q), "\"%.190s\"", seen);
        } else {
            (void)snprintf(seen_q, sizeof(seen_q), "%s",
                           ff->seen == SKR_POLICY_SEEN_MISSING ? "no such claim" : ff->seen_type);
        }
        (void)snprintf(call->message, sizeof(call->message),
                       "key release denied by the key's release policy: claim %s must equal "
                       "\"%s\" but the attestation has %s",
                       ff->cond->claim, ff->cond->canonical, seen_q);
        (void)snprintf(call->hint, sizeof(call->hint),
                       "the key's release policy requires %.60s = %.66s; the container's is %.66s",
                       ff->cond->claim, ff->cond->canonical, seen_q);
    }
}

static void
explain_denial(struct rel_call *call, const struct release_ctx *rc)
{
    struct skr_client *c = call->c;
    struct skr_upstream saved = call->up;
    struct skr_upstream scratch = { 0 };
    _cleanup_(json_decrefp) json_t *bundle = NULL;
    _cleanup_(skr_policy_freep) struct skr_policy *pol = NULL;
    _cleanup_(skr_policy_explain_freep) struct skr_policy_explain *x = NULL;
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    const json_t *rp;

    copy_str(call->message, sizeof(call->message), skr_err_msg());
    if (skr_akv_get_key(c->http, rc->req->akv_endpoint, rc->req->kid,
                        rel_opt_str(c->cfg, OPT_AKV_API_VERSION), rc->bearer, &bundle,
                        &scratch) != SKR_OK) {
        copy_str(call->hint, sizeof(call->hint),
                 "the key's release policy could not be read to explain the denial: check the "
                 "policy against the attestation claims, and that the identity has "
                 "keys/release");
        call->up = saved;
        return;
    }
    rp = json_object_get(bundle, "release_policy");
    if (rp == NULL || skr_policy_parse_release(rp, &pol) != SKR_OK ||
        skr_jws_parse(skr_span_str(rc->maa_token), &jws) != SKR_OK || jws.claims == NULL ||
        skr_policy_explain(pol, NULL, jws.claims, &x) != SKR_OK) {
        copy_str(call->hint, sizeof(call->hint),
                 "the key's release policy could not be evaluated here: compare it with the "
                 "attestation token's claims (skr policy check)");
        call->up = saved;
        return;
    }
    explain_text(call, x, json_string_value(json_object_get(jws.claims, "iss")));
    call->up = saved;
}

/* ---- the release -------------------------------------------------------------------------- */

static bool
is_vault_resource(const char *r)
{
    return strcmp(r, "https://vault.azure.net") == 0 ||
           strcmp(r, "https://managedhsm.azure.net") == 0;
}

static skr_err
bearer_for(struct rel_call *call, const skr_release_request *req, const char *resource,
           struct skr_secret **ret)
{
    if (req->access_token != NULL && req->access_token[0] != '\0') {
        size_t n = strnlen(req->access_token, SKR_MAX_JWT_BYTES + 1);

        TRY(rel_stage(call, "identity"));
        ENSURE(n <= SKR_MAX_JWT_BYTES, SKR_E_TOO_LARGE, "access_token is too long");
        return skr_secret_from(skr_span_make(req->access_token, n + 1), ret);
    }
    return rel_identity_token(call, resource, ret);
}

static skr_err
vault_release(struct rel_call *call, const skr_release_request *req, const struct transfer *t,
              struct skr_buf *jws)
{
    struct skr_client *c = call->c;
    const char *resource = skr_akv_resource_for(req->akv_endpoint);
    _cleanup_(skr_secret_freep) struct skr_secret *bearer = NULL;
    struct release_ctx rc = { .req = req, .maa_token = (const char *)t->token->ptr };
    char challenge[sizeof(call->up.challenge_resource)];
    skr_err e;

    TRY(bearer_for(call, req, resource, &bearer));
    TRY(rel_stage(call, "akv"));
    e = skr_akv_release(c->http, req->akv_endpoint, req->kid,
                        rel_opt_str(c->cfg, OPT_AKV_API_VERSION), (const char *)bearer->ptr,
                        rc.maa_token, c->enc, jws, &call->up);
    copy_str(challenge, sizeof(challenge), call->up.challenge_resource);
    if (e != SKR_OK && call->up.status == 401 && req->access_token == NULL &&
        is_vault_resource(challenge) && strcmp(challenge, resource) != 0) {
        /* The vault names the audience it wants (a Managed HSM behind an IP or a custom name). */
        skr_secret_free(TAKE_PTR(bearer));
        TRY(bearer_for(call, req, challenge, &bearer));
        TRY(rel_stage(call, "akv"));
        skr_buf_reset(jws);
        e = skr_akv_release(c->http, req->akv_endpoint, req->kid,
                            rel_opt_str(c->cfg, OPT_AKV_API_VERSION), (const char *)bearer->ptr,
                            rc.maa_token, c->enc, jws, &call->up);
    }
    if (e != SKR_OK && call->up.status == 401 && req->access_token == NULL) {
        rel_identity_forget(c, resource);
    }
    if (e == SKR_E_POLICY) {
        rc.bearer = (const char *)bearer->ptr;
        explain_denial(call, &rc);
    }
    return e;
}

skr_err
rel_check_kid(const char *kid)
{
    size_t n = strnlen(kid, 2049);

    ENSURE(n <= 2048, SKR_E_INVALID_ARG, "kid is longer than 2048 characters");
    for (size_t i = 0; i < n; i++) {
        ENSURE(kid[i] > 0x20 && kid[i] < 0x7f, SKR_E_INVALID_ARG,
               "kid has a character that is not allowed");
    }
    return SKR_OK;
}

static skr_err
check_request(const skr_release_request *req)
{
    ENSURE(req != NULL, SKR_E_INVALID_ARG, "NULL release request");
    TRY(check_endpoint(req->maa_endpoint, "maa_endpoint is missing"));
    TRY(check_endpoint(req->akv_endpoint, "akv_endpoint is missing"));
    ENSURE(req->kid != NULL && req->kid[0] != '\0', SKR_E_INVALID_ARG, "kid is missing");
    return rel_check_kid(req->kid);
}

static skr_err
release(struct rel_call *call, const skr_release_request *req, char **ret)
{
    struct skr_client *c = call->c;
    _cleanup_(skr_buf_donep) struct skr_buf jws = { 0 };
    _cleanup_(skr_akv_released_done) struct skr_akv_released rel = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *jwk = NULL;
    struct transfer t = { 0 };
    skr_err e;

    ENSURE(c != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(check_request(req));
    if (c->reuse_s == 0 || !reuse_get(c, req->maa_endpoint, &t)) {
        e = fresh_transfer(call, req->maa_endpoint, &t);
        if (e != SKR_OK) {
            transfer_done(&t);
            return e;
        }
    }
    skr_buf_init(&jws, SKR_MAX_JWT_BYTES + 1);
    e = vault_release(call, req, &t, &jws);
    if (e == SKR_OK) {
        e = rel_stage(call, "unwrap");
    }
    if (e == SKR_OK) {
        e = skr_akv_release_verify(skr_buf_span(&jws), req->akv_endpoint, c->akv_trust, &rel);
    }
    if (e == SKR_OK) {
        e = skr_akv_unwrap_jwk(&rel, t.key, t.kid, &jwk);
    }
    if (e != SKR_OK && c->reuse_s > 0) {
        reuse_drop(c, req->maa_endpoint);
    }
    transfer_done(&t);
    TRY(e);
    return str_new(skr_secret_span(jwk), ret);
}

skr_err
skr_key_release(skr_client *c, const skr_release_request *req, char **ret_jwk, skr_error_info *err)
{
    struct rel_call call;

    call_init(&call, c);
    return finish(&call, release(&call, req, ret_jwk), err);
}

/* ---- fingerprint -------------------------------------------------------------------------- */

/* The string value of top-level member name in JSON text (a key is a quoted name followed by
 * ':'; JWK values are plain strings: an escape is refused). */
static skr_err
jwk_member(const char *jwk, const char *name, struct skr_span *ret)
{
    size_t n = strlen(name);
    const char *p = jwk;

    while ((p = strchr(p, '"')) != NULL) {
        const char *q = p + 1;

        if (strncmp(q, name, n) != 0 || q[n] != '"') {
            p = q;
            continue;
        }
        q += n + 1;
        q += strspn(q, " \t\r\n");
        if (*q != ':') {
            p = q;
            continue;
        }
        q++;
        q += strspn(q, " \t\r\n");
        ENSURE(*q == '"', SKR_E_MALFORMED, "JWK: a required member is not a string");
        q++;
        n = strcspn(q, "\"\\");
        ENSURE(q[n] == '"' && n > 0, SKR_E_MALFORMED,
               "JWK: a required member is not a plain string");
        *ret = skr_span_make(q, n);
        return SKR_OK;
    }
    FAILF(SKR_E_MALFORMED, "JWK: required member \"%s\" is missing", name);
}

skr_err
skr_jwk_fingerprint(const char *jwk, char out[SKR_FINGERPRINT_LEN])
{
    static const char *const rsa[] = { "e", "kty", "n", NULL };
    static const char *const ec[] = { "crv", "kty", "x", "y", NULL };
    static const char *const oct[] = { "k", "kty", NULL };
    _cleanup_(skr_buf_donep) struct skr_buf canon = { 0 };
    const char *const *members;
    struct skr_span kty;
    struct skr_span v;
    uint8_t md[32];

    ENSURE(jwk != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(strnlen(jwk, SKR_MAX_JSON_BYTES + 1) <= SKR_MAX_JSON_BYTES, SKR_E_TOO_LARGE,
           "JWK is too large");
    TRY(jwk_member(jwk, "kty", &kty));
    if (kty.len >= 3 && memcmp(kty.ptr, "RSA", 3) == 0) {
        members = rsa;
    } else if (kty.len >= 2 && memcmp(kty.ptr, "EC", 2) == 0) {
        members = ec;
    } else if (kty.len >= 3 && memcmp(kty.ptr, "oct", 3) == 0) {
        members = oct;
    } else {
        FAIL(SKR_E_UNSUPPORTED, "JWK: kty is not RSA, EC or oct");
    }
    /* RFC 7638 §3.2: required members only, sorted, no whitespace. */
    skr_buf_init(&canon, SKR_MAX_JSON_BYTES);
    TRY(skr_buf_append_byte(&canon, '{'));
    for (size_t i = 0; members[i] != NULL; i++) {
        TRY(jwk_member(jwk, members[i], &v));
        TRY(skr_buf_printf(&canon, "%s\"%s\":\"", i > 0 ? "," : "", members[i]));
        TRY(skr_buf_append_span(&canon, v));
        TRY(skr_buf_append_byte(&canon, '"'));
    }
    TRY(skr_buf_append_byte(&canon, '}'));
    (void)SHA256(canon.ptr, canon.len, md);
    skr_hex_fmt(md, sizeof(md), out);
    skr_wipe(md, sizeof(md));
    return SKR_OK;
}
