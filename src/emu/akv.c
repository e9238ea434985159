/*
 * akv.c - the Key Vault / Managed HSM emulator (PROTOCOLS.md §7, issue #3): the keys API
 * (import, create, get, update of the release policy) and secure key release.
 *
 * Wire behaviour, and where it is a choice rather than a copy of the real service:
 *   - Every request needs "Authorization: Bearer <Entra token>" signed by this emulator's
 *     Entra key (emu_entra_verify) for audience https://vault.azure.net, or
 *     https://managedhsm.azure.net when emu.json "akv":{"flavor":"managedhsm"} plays a Managed
 *     HSM; the other audience is refused as Azure refuses it. Missing bearer: 401 with AKV's JSON
 * body and the challenge WWW-Authenticate: Bearer authorization="<imds_url>/<tenant>",
 * resource="https://vault.azure.net" (the emulated Entra authority lives on the IMDS listener;
 * emu.json "akv":{"flavor":"managedhsm"} names https://managedhsm.azure.net instead). A
 * rejected token: 401 whose message names the cause (audience, expiry, signature...).
 *   - api-version: 7.0 .. 7.6 (and their -preview forms) and 2025-07-01 are accepted; exportable
 * keys, release policies and release need >= 7.3 (AKV.SKR.1001), as the real service.
 *   - Key versions are 32 lowercase hex characters; key ids are
 *     "https://<Host header>/keys/<name>/<version>" (ctx->akv_url without a usable Host).
 *   - Rules of §7.7: exportable keys need a release policy (AKV.SKR.1004), non-exportable keys
 *     must not have one (AKV.SKR.1005), an immutable policy cannot be replaced (AKV.SKR.1020),
 *     exportable cannot change on update (AKV.SKR.1003). Policies are parsed by lib/policy.c
 *     and stored normalised (skr_policy_to_release), as AKV returns them.
 *   - Release permission is per identity (token "oid"): emu.json "akv":{"release_identities":
 *     [oid, ...]} when present, else the managed identity init made (managed_identity.object_id).
 *     Other callers get 403 "Operation release is not allowed". The other operations are open to
 *     any valid token.
 *   - Release verifies the target token through its issuer's OIDC discovery over HTTPS (trusting
 *     DIR/ca.pem in addition to the system roots, the http client's CA-file rule), only for an
 *     issuer that one of the key's policy authorities names (otherwise the emulator would fetch
 *     any URL a caller writes into a token), and only from a jwks_uri on the issuer's own
 *     scheme://host:port. The signing key is picked by header kid from jwks_uri; x5c[0] when
 * present, else n/e. exp is required, nbf optional, 60 s of skew. Failures are 403 "Target
 * environment attestation statement cannot be verified. <cause>"; a policy denial appends the
 * policy explanation's one-line reason (it names the first unmet condition or the unmatched
 * authority).
 *   - Releasing a non-exportable key is 400 BadParameter (the real text is not public).
 *   - The release JWS is signed with the TLS key and carries the TLS chain as x5c (the leaf is
 *     issued for localhost / 127.0.0.1, the vault's host names), kid = x5t#S256 of the leaf.
 *     `skr-emu init` makes an RSA-2048 TLS key, so releases are RS256 as the real service's
 *     (an EC key would give ES256/ES384: SCC verifies with the header's alg).
 *
 * Key store: DIR/keys/store.json (mode 0600 in a 0700 directory: it holds private keys),
 *   {"version":1,"keys":{"<name>":{"versions":[<entry>, ...]}}}, the newest version last;
 *   entry = {"version","kty","key_ops","jwk" (private JWK: RSA / EC members, or oct "k"),
 *            "created","updated","enabled","exportable","release_policy"?}.
 * It is read for every request and rewritten atomically (skr_write_file_atomic) on every change,
 * under ctx->store_lock, so changes are durable and a restarted server sees them.
 *
 * Not implemented: list/delete/backup/restore/rotate, key operations (encrypt, sign, wrap...),
 * attributes other than exportable/enabled (exp, nbf, tags are ignored), x5c chain validation of
 * the attestation signer's certificate (the TLS connection to the issuer is what is trusted).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "b64.h"
#include "buf.h"
#include "emu.h"
#include "err.h"
#include "hex.h"
#include "http_client.h"
#include "jose.h"
#include "json.h"
#include "keywrap.h"
#include "ossl.h"
#include "policy.h"
#include "secret.h"
#include "service.h"
#include "skr_limits.h"

#define AKV_RESOURCE_VAULT "https://vault.azure.net"
#define AKV_RESOURCE_MHSM  "https://managedhsm.azure.net"
#define AKV_DENY_PREFIX    "Target environment attestation statement cannot be verified. "
#define AKV_MAX_STORE      (16u << 20) /* the store file (RSA-4096 entries are ~3.5 KiB) */
#define AKV_MAX_NAME       127u        /* key names: 1-127 of [0-9a-zA-Z-] */
#define AKV_VERSION_BYTES  16u         /* 32 hex characters */
#define AKV_MAX_NONCE      1024u
#define AKV_MAX_KEY_OPS    8u
#define AKV_SKEW_S         60
#define AKV_PATH_MAX       4096u
#define AKV_MAX_URL        2048u
#define AKV_RECOVERY_LEVEL "CustomizedRecoverable+Purgeable"
#define AKV_RECOVERABLE    7
#define AKV_CONTENT_TYPE   "application/json; charset=utf-8"

struct akv_req {
    struct emu_ctx *ctx;
    const struct skr_http_request *req;
    struct skr_http_response *resp;
    const char *api_version;
    char base[320]; /* "https://host[:port]", prefix of key ids */
    json_t *caller; /* claims of the bearer token */
    /* a rejection, sent instead of a 500 when fail_status != 0 */
    unsigned int fail_status;
    const char *fail_code;
    char fail_msg[1024];
};

static const char *const supported_api_versions[] = {
    "7.0",
    "7.1",
    "7.2",
    "7.3-preview",
    "7.3",
    "7.4-preview.1",
    "7.4",
    "7.5",
    "7.5-preview.1",
    "7.6",
    "7.6-preview.1",
    "7.6-preview.2",
    /* the date-form versions that followed 7.6 (@azure/keyvault-keys 4.10 sends this one) */
    "2025-07-01",
};

static const char *const known_key_ops[] = {
    "encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export",
};

/* ---- rejections --------------------------------------------------------------------------- */

static skr_err reject(struct akv_req *r, unsigned int status, const char *code, const char *fmt,
                      ...) SKR_PRINTF(4, 5);

/* Records an HTTP error for the caller and returns SKR_E_POLICY so that it unwinds. */
static skr_err
reject(struct akv_req *r, unsigned int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    r->fail_status = status;
    r->fail_code = code;
    va_start(ap, fmt);
    (void)vsnprintf(r->fail_msg, sizeof(r->fail_msg), fmt, ap);
    va_end(ap);
    return skr_err_at(SKR_E_POLICY, __FILE__, __LINE__, "request rejected");
}

/* The resource the 401 challenge names: emu.json "akv":{"flavor":"managedhsm"} plays a Managed
 * HSM, anything else (the default) a Key Vault. */
static const char *
challenge_resource(const struct emu_ctx *ctx)
{
    const char *flavor =
        ctx == NULL
            ? NULL
            : json_string_value(json_object_get(json_object_get(ctx->config, "akv"), "flavor"));

    return flavor != NULL && strcmp(flavor, "managedhsm") == 0 ? AKV_RESOURCE_MHSM
                                                               : AKV_RESOURCE_VAULT;
}

static skr_err
add_challenge(struct akv_req *r)
{
    const char *tenant = json_string_value(json_object_get(r->ctx->config, "tenant_id"));
    char v[512];

    if (tenant == NULL) {
        tenant = "common";
    }
    ENSURE(snprintf(v, sizeof(v), "Bearer authorization=\"%s/%s\", resource=\"%s\"",
                    r->ctx->imds_url, tenant, challenge_resource(r->ctx)) < (int)sizeof(v),
           SKR_E_INTERNAL, "challenge too long");
    return skr_http_response_add_header(r->resp, "WWW-Authenticate", v);
}

static skr_err
send_rejection(struct akv_req *r)
{
    if (r->fail_status == 401) {
        TRY(add_challenge(r));
    }
    return skr_http_respond_error_json(r->resp, r->fail_status, r->fail_code, r->fail_msg);
}

/* ---- small helpers ------------------------------------------------------------------------ */

static bool
is_name_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static bool
valid_name(const char *s, size_t len)
{
    if (len == 0 || len > AKV_MAX_NAME) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_name_char(s[i])) {
            return false;
        }
    }
    return true;
}

static bool
valid_version(const char *s)
{
    size_t n = strlen(s);

    if (n != 2 * AKV_VERSION_BYTES) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static bool
api_at_least_73(const char *v)
{
    /* "7.<digit>..." or a date form, which all came after 7.6 */
    return v[0] != '7' || v[2] >= '3';
}

static bool
valid_host(const char *h)
{
    size_t n = strlen(h);

    if (n == 0 || n > 255) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = h[i];

        if (!(is_name_char(c) || c == '.' || c == ':' || c == '[' || c == ']')) {
            return false;
        }
    }
    return true;
}

static json_int_t
now_s(void)
{
    return (json_int_t)time(NULL);
}

static skr_err
new_version(char out[2 * AKV_VERSION_BYTES + 1])
{
    uint8_t raw[AKV_VERSION_BYTES];

    TRY_OSSL(RAND_bytes(raw, sizeof(raw)), SKR_E_INTERNAL, "RAND_bytes failed");
    skr_hex_fmt(raw, sizeof(raw), out);
    return SKR_OK;
}

static skr_err
key_id(const struct akv_req *r, const char *name, const char *version, char *out, size_t n)
{
    ENSURE(snprintf(out, n, "%s/keys/%s/%s", r->base, name, version) < (int)n, SKR_E_INTERNAL,
           "key id too long");
    return SKR_OK;
}

static skr_err
set_str(json_t *o, const char *key, const char *v)
{
    return skr_json_set(o, key, json_string(v));
}

/* ---- the key store ------------------------------------------------------------------------ */

static skr_err
store_path(const struct emu_ctx *ctx, char *out, size_t n)
{
    ENSURE(snprintf(out, n, "%s/%s", ctx->dir, EMU_KEY_STORE) < (int)n, SKR_E_INVALID_ARG,
           "key store path too long");
    return SKR_OK;
}

/* Loads the store; the caller holds store_lock. */
static skr_err
store_load(const struct emu_ctx *ctx, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(json_decrefp) json_t *s = NULL;
    char path[AKV_PATH_MAX];
    json_t *keys = NULL;

    TRY(store_path(ctx, path, sizeof(path)));
    skr_buf_init(&text, AKV_MAX_STORE);
    TRY(skr_read_file(path, &text));
    TRY(skr_json_parse_object(skr_buf_span(&text), AKV_MAX_STORE, "key store", &s));
    TRY(skr_json_get_obj(s, "keys", &keys));
    *ret = TAKE_PTR(s);
    return SKR_OK;
}

static skr_err
store_save(const struct emu_ctx *ctx, const json_t *s)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    char path[AKV_PATH_MAX];

    TRY(store_path(ctx, path, sizeof(path)));
    skr_buf_init(&text, AKV_MAX_STORE);
    TRY(skr_json_dump(s, JSON_INDENT(1) | JSON_SORT_KEYS, &text));
    TRY(skr_buf_append_byte(&text, '\n'));
    return skr_write_file_atomic(path, skr_buf_span(&text), 0600);
}

/* The entry of name (newest version when version is NULL), borrowed from s, or NULL. */
static json_t *
store_find(json_t *s, const char *name, const char *version)
{
    json_t *versions =
        json_object_get(json_object_get(json_object_get(s, "keys"), name), "versions");
    size_t n = json_array_size(versions);

    if (n == 0) {
        return NULL;
    }
    if (version == NULL) {
        return json_array_get(versions, n - 1);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(versions, i);

        if (json_is_string(json_object_get(e, "version")) &&
            strcmp(json_string_value(json_object_get(e, "version")), version) == 0) {
            return e;
        }
    }
    return NULL;
}

static skr_err
store_append(json_t *s, const char *name, json_t *entry)
{
    json_t *keys = json_object_get(s, "keys");
    json_t *k = json_object_get(keys, name);
    json_t *versions = NULL;

    if (k == NULL) {
        TRY(skr_json_set(keys, name, json_pack("{s:[]}", "versions")));
        k = json_object_get(keys, name);
    }
    versions = json_object_get(k, "versions");
    ENSURE(json_is_array(versions), SKR_E_MALFORMED, "key store: 'versions' is not an array");
    ENSURE(json_array_append(versions, entry) == 0, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static skr_err
key_not_found(struct akv_req *r, const char *name, const char *version)
{
    return reject(r, 404, "KeyNotFound",
                  "A key with (name/id) %s%s%s was not found in this key vault. If you recently "
                  "deleted this key you may be able to recover it using the correct recovery "
                  "command. For help resolving this issue, please see "
                  "https://go.microsoft.com/fwlink/?linkid=2125182",
                  name, version != NULL ? "/" : "", version != NULL ? version : "");
}

/* A deep copy of the entry (name, version), read under the lock. */
static skr_err
store_get_copy(struct akv_req *r, const char *name, const char *version, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *s = NULL;
    json_t *e = NULL;
    skr_err err;

    if (pthread_mutex_lock(&r->ctx->store_lock) != 0) {
        FAIL(SKR_E_INTERNAL, "cannot take the key store lock");
    }
    err = store_load(r->ctx, &s);
    (void)pthread_mutex_unlock(&r->ctx->store_lock);
    TRY(err);
    e = store_find(s, name, version);
    if (e == NULL) {
        return key_not_found(r, name, version);
    }
    *ret = json_deep_copy(e);
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

/* ---- KeyBundle ----------------------------------------------------------------------------- */

static skr_err
bundle_attributes(const json_t *entry, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *a = json_object();

    ENSURE(a != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(a, "created", json_deep_copy(json_object_get(entry, "created"))));
    TRY(skr_json_set(a, "enabled", json_boolean(json_is_true(json_object_get(entry, "enabled")))));
    TRY(skr_json_set(a, "exportable",
                     json_boolean(json_is_true(json_object_get(entry, "exportable")))));
    TRY(skr_json_set(a, "recoverableDays", json_integer(AKV_RECOVERABLE)));
    TRY(set_str(a, "recoveryLevel", AKV_RECOVERY_LEVEL));
    TRY(skr_json_set(a, "updated", json_deep_copy(json_object_get(entry, "updated"))));
    *ret = TAKE_PTR(a);
    return SKR_OK;
}

/* The public JWK of an entry with kty, key_ops and kid. */
static skr_err
bundle_key(const struct akv_req *r, const char *name, const json_t *entry, json_t **ret)
{
    static const char *const pub_members[] = { "n", "e", "crv", "x", "y" };
    _cleanup_(json_decrefp) json_t *k = json_object();
    const json_t *jwk = json_object_get(entry, "jwk");
    const char *version = json_string_value(json_object_get(entry, "version"));
    char kid[600];

    ENSURE(k != NULL, SKR_E_NOMEM, "out of memory");
    ENSURE(json_is_object(jwk) && version != NULL, SKR_E_MALFORMED,
           "key store: entry without 'jwk' or 'version'");
    for (size_t i = 0; i < SKR_ARRAY_LEN(pub_members); i++) {
        json_t *v = json_object_get(jwk, pub_members[i]);

        if (v != NULL) {
            TRY(skr_json_set(k, pub_members[i], json_deep_copy(v)));
        }
    }
    TRY(key_id(r, name, version, kid, sizeof(kid)));
    TRY(skr_json_set(k, "key_ops", json_deep_copy(json_object_get(entry, "key_ops"))));
    TRY(set_str(k, "kid", kid));
    TRY(skr_json_set(k, "kty", json_deep_copy(json_object_get(entry, "kty"))));
    *ret = TAKE_PTR(k);
    return SKR_OK;
}

/* release_policy as returned: {"contentType","data"} plus "immutable" in a KeyBundle. */
static skr_err
bundle_policy(const json_t *entry, bool with_immutable, json_t **ret)
{
    const json_t *rp = json_object_get(entry, "release_policy");
    _cleanup_(json_decrefp) json_t *o = NULL;

    *ret = NULL;
    if (rp == NULL) {
        return SKR_OK;
    }
    o = json_object();
    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(o, "contentType", json_deep_copy(json_object_get(rp, "contentType"))));
    TRY(skr_json_set(o, "data", json_deep_copy(json_object_get(rp, "data"))));
    if (with_immutable) {
        TRY(skr_json_set(o, "immutable",
                         json_boolean(json_is_true(json_object_get(rp, "immutable")))));
    }
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

static skr_err
bundle_json(const struct akv_req *r, const char *name, const json_t *entry, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *b = json_object();
    json_t *v = NULL;

    ENSURE(b != NULL, SKR_E_NOMEM, "out of memory");
    TRY(bundle_attributes(entry, &v));
    TRY(skr_json_set(b, "attributes", v));
    TRY(bundle_key(r, name, entry, &v));
    TRY(skr_json_set(b, "key", v));
    TRY(bundle_policy(entry, true, &v));
    if (v != NULL) {
        TRY(skr_json_set(b, "release_policy", v));
    }
    *ret = TAKE_PTR(b);
    return SKR_OK;
}

static skr_err
respond_bundle(struct akv_req *r, const char *name, const json_t *entry)
{
    _cleanup_(json_decrefp) json_t *b = NULL;

    TRY(bundle_json(r, name, entry, &b));
    return skr_http_respond_json(r->resp, 200, b);
}

/* ---- request parsing ---------------------------------------------------------------------- */

static skr_err
parse_body(struct akv_req *r, struct skr_span body, json_t **ret)
{
    if (body.len == 0) {
        return reject(r, 400, "BadParameter", "The request body is missing");
    }
    if (skr_json_parse_object(body, SKR_MAX_HTTP_BODY_BYTES, "request body", ret) != SKR_OK) {
        return reject(r, 400, "BadParameter", "The request body is not valid JSON: %s",
                      skr_err_msg());
    }
    return SKR_OK;
}

static skr_err
opt_bool(struct akv_req *r, const json_t *o, const char *key, bool *ret)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v)) {
        return SKR_OK;
    }
    if (!json_is_boolean(v)) {
        return reject(r, 400, "BadParameter", "Property '%s' must be a boolean", key);
    }
    *ret = json_is_true(v);
    return SKR_OK;
}

/* attributes.exportable / attributes.enabled (both optional). */
static skr_err
parse_attributes(struct akv_req *r, const json_t *body, bool *exportable, bool *enabled)
{
    const json_t *a = json_object_get(body, "attributes");

    if (a == NULL || json_is_null(a)) {
        return SKR_OK;
    }
    if (!json_is_object(a)) {
        return reject(r, 400, "BadParameter", "Property 'attributes' must be an object");
    }
    TRY(opt_bool(r, a, "exportable", exportable));
    return opt_bool(r, a, "enabled", enabled);
}

/* key_ops from o (validated), or the default for the key type. *ret is new. */
static skr_err
parse_key_ops(struct akv_req *r, const json_t *o, const char *base_kty, json_t **ret)
{
    const json_t *ops = json_object_get(o, "key_ops");
    size_t i;
    json_t *v = NULL;

    if (ops == NULL || json_is_null(ops)) {
        if (strcmp(base_kty, "RSA") == 0) {
            /* the order a real mHSM returned (PROTOCOLS.md §7.2) */
            *ret = json_pack("[s,s,s,s,s,s]", "wrapKey", "decrypt", "encrypt", "unwrapKey", "sign",
                             "verify");
        } else if (strcmp(base_kty, "EC") == 0) {
            *ret = json_pack("[s,s]", "sign", "verify");
        } else {
            *ret = json_pack("[s,s,s,s]", "encrypt", "decrypt", "wrapKey", "unwrapKey");
        }
        ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
        return SKR_OK;
    }
    if (!json_is_array(ops) || json_array_size(ops) > AKV_MAX_KEY_OPS) {
        return reject(r, 400, "BadParameter",
                      "Property 'key_ops' must be an array of at most %u "
                      "operations",
                      AKV_MAX_KEY_OPS);
    }
    json_array_foreach(ops, i, v)
    {
        bool known = false;

        for (size_t j = 0; j < SKR_ARRAY_LEN(known_key_ops) && json_is_string(v); j++) {
            known = known || strcmp(json_string_value(v), known_key_ops[j]) == 0;
        }
        if (!known) {
            return reject(r, 400, "BadParameter",
                          "Property 'key_ops' has an invalid operation "
                          "at index %zu",
                          i);
        }
    }
    *ret = json_deep_copy(ops);
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

/*
 * The release_policy of a create/import/update body against the exportable rule; *ret is the
 * stored form {"contentType","data" (normalised),"immutable"} or NULL.
 */
static skr_err
parse_release_policy(struct akv_req *r, const json_t *body, bool exportable, json_t **ret)
{
    _cleanup_(skr_policy_freep) struct skr_policy *p = NULL;
    _cleanup_(json_decrefp) json_t *stored = NULL;
    const json_t *rp = json_object_get(body, "release_policy");
    bool immutable = false;

    *ret = NULL;
    if (rp != NULL && json_is_null(rp)) {
        rp = NULL;
    }
    if (exportable && rp == NULL) {
        return reject(r, 400, "BadParameter",
                      "AKV.SKR.1004: Exportable keys must have a release policy.");
    }
    if (!exportable && rp != NULL) {
        return reject(r, 400, "BadParameter",
                      "AKV.SKR.1005: Non-exportable keys must not have a release policy.");
    }
    if (rp == NULL) {
        return SKR_OK;
    }
    if (!api_at_least_73(r->api_version)) {
        return reject(r, 400, "BadParameter",
                      "AKV.SKR.1001: Exportable keys and release policies need api-version "
                      "7.3-preview or later.");
    }
    if (!json_is_object(rp)) {
        return reject(r, 400, "BadParameter",
                      "Key Release Policy: 'release_policy' must be an "
                      "object");
    }
    TRY(opt_bool(r, rp, "immutable", &immutable));
    if (skr_policy_parse_release(rp, &p) != SKR_OK) {
        const char *m = skr_err_msg();

        /* "release policy: missing 'version' property" -> mHSM's
         * "Key Release Policy: missing 'version' property" */
        if (strncmp(m, "release policy: ", 16) == 0) {
            m += 16;
        }
        return reject(r, 400, "BadParameter", "Key Release Policy: %s", m);
    }
    TRY(skr_policy_to_release(p, AKV_CONTENT_TYPE, &stored));
    TRY(skr_json_set(stored, "immutable", json_boolean(immutable)));
    *ret = TAKE_PTR(stored);
    return SKR_OK;
}

/* kty "RSA" / "RSA-HSM" / "EC" / "EC-HSM" / "oct" / "oct-HSM": *ret_base without "-HSM". */
static skr_err
parse_kty(struct akv_req *r, const char *kty, const char **ret_base, bool *ret_hsm)
{
    static const char *const bases[] = { "RSA", "EC", "oct" };

    for (size_t i = 0; kty != NULL && i < SKR_ARRAY_LEN(bases); i++) {
        size_t n = strlen(bases[i]);

        if (strncmp(kty, bases[i], n) == 0 && (kty[n] == '\0' || strcmp(kty + n, "-HSM") == 0)) {
            *ret_base = bases[i];
            *ret_hsm = kty[n] != '\0';
            return SKR_OK;
        }
    }
    return reject(r, 400, "BadParameter",
                  "Property 'kty' must be one of RSA, RSA-HSM, EC, EC-HSM, "
                  "oct, oct-HSM");
}

/* A new entry (without version timestamps yet) around a private JWK. */
static skr_err
entry_new(const char *base_kty, bool hsm, json_t *jwk, json_t *key_ops, bool exportable,
          bool enabled, json_t *policy, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *e = json_object();
    char version[2 * AKV_VERSION_BYTES + 1];
    char kty[16];
    json_int_t now = now_s();

    ENSURE(e != NULL, SKR_E_NOMEM, "out of memory");
    (void)snprintf(kty, sizeof(kty), "%s%s", base_kty, hsm ? "-HSM" : "");
    TRY(new_version(version));
    TRY(set_str(e, "version", version));
    TRY(set_str(e, "kty", kty));
    TRY(skr_json_set(e, "key_ops", json_incref(key_ops)));
    TRY(skr_json_set(e, "jwk", json_incref(jwk)));
    TRY(skr_json_set(e, "created", json_integer(now)));
    TRY(skr_json_set(e, "updated", json_integer(now)));
    TRY(skr_json_set(e, "enabled", json_boolean(enabled)));
    TRY(skr_json_set(e, "exportable", json_boolean(exportable)));
    if (policy != NULL) {
        TRY(skr_json_set(e, "release_policy", json_incref(policy)));
    }
    *ret = TAKE_PTR(e);
    return SKR_OK;
}

/* Appends entry under name and saves the store. */
static skr_err
store_add(struct akv_req *r, const char *name, json_t *entry)
{
    _cleanup_(json_decrefp) json_t *s = NULL;
    skr_err err;

    if (pthread_mutex_lock(&r->ctx->store_lock) != 0) {
        FAIL(SKR_E_INTERNAL, "cannot take the key store lock");
    }
    err = store_load(r->ctx, &s);
    if (err == SKR_OK) {
        err = store_append(s, name, entry);
    }
    if (err == SKR_OK) {
        err = store_save(r->ctx, s);
    }
    (void)pthread_mutex_unlock(&r->ctx->store_lock);
    return err;
}

/* ---- import / create ---------------------------------------------------------------------- */

/* The private JWK to store for an imported RSA / EC JWK (normalised by a round trip). */
static skr_err
import_asym(struct akv_req *r, const json_t *key, const char *base, json_t **ret)
{
    static const char *const rsa_members[] = { "n", "e", "d", "p", "q", "dp", "dq", "qi" };
    static const char *const ec_members[] = { "crv", "x", "y", "d" };
    bool rsa = strcmp(base, "RSA") == 0;
    const char *const *members = rsa ? rsa_members : ec_members;
    size_t n = rsa ? SKR_ARRAY_LEN(rsa_members) : SKR_ARRAY_LEN(ec_members);
    _cleanup_(json_decrefp) json_t *clean = json_object();
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;
    int bits;

    ENSURE(clean != NULL, SKR_E_NOMEM, "out of memory");
    if (json_object_get(key, "d") == NULL) {
        return reject(r, 400, "BadParameter", "The key to import has no private part ('d')");
    }
    TRY(set_str(clean, "kty", base));
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(key, members[i]);

        if (v != NULL) {
            TRY(skr_json_set(clean, members[i], json_incref(v)));
        }
    }
    if (skr_jwk_to_pkey(clean, &pk) != SKR_OK) {
        return reject(r, 400, "BadParameter", "The key to import is invalid: %s", skr_err_msg());
    }
    bits = EVP_PKEY_get_bits(pk);
    if (rsa && bits != 2048 && bits != 3072 && bits != 4096) {
        return reject(r, 400, "BadParameter",
                      "RSA key size %d is not supported (2048, 3072, "
                      "4096)",
                      bits);
    }
    return skr_jwk_from_pkey(pk, true, ret);
}

static skr_err
import_oct(struct akv_req *r, const json_t *key, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf k = { 0 };
    const char *text = json_string_value(json_object_get(key, "k"));

    skr_buf_init(&k, 64);
    if (text == NULL || skr_b64_decode(skr_span_str(text), SKR_B64_URL, &k) != SKR_OK) {
        return reject(r, 400, "BadParameter", "Property 'key.k' is missing or not base64url");
    }
    if (k.len != 16 && k.len != 24 && k.len != 32) {
        return reject(r, 400, "BadParameter",
                      "oct key size %zu bits is not supported (128, 192, "
                      "256)",
                      k.len * 8);
    }
    return skr_jwk_oct_new(skr_buf_span(&k), ret);
}

/* Validates key_size / crv of a create body before any key generation. */
static skr_err
parse_gen_params(struct akv_req *r, const json_t *body, struct emu_akv_key_body *out)
{
    const json_t *size = json_object_get(body, "key_size");

    if (strcmp(out->kty, "RSA") == 0) {
        json_int_t bits = size == NULL ? 2048 : json_integer_value(size);

        if (!(size == NULL || json_is_integer(size)) ||
            (bits != 2048 && bits != 3072 && bits != 4096)) {
            return reject(r, 400, "BadParameter",
                          "Property 'key_size' must be 2048, 3072 or "
                          "4096 for RSA keys");
        }
        out->bits = (unsigned int)bits;
    } else if (strcmp(out->kty, "EC") == 0) {
        const json_t *crv = json_object_get(body, "crv");
        const char *c = crv == NULL ? "P-256" : json_string_value(crv);

        if (c == NULL ||
            (strcmp(c, "P-256") != 0 && strcmp(c, "P-384") != 0 && strcmp(c, "P-521") != 0)) {
            return reject(r, 400, "BadParameter", "Property 'crv' must be P-256, P-384 or P-521");
        }
        out->crv = c;
    } else {
        json_int_t bits = size == NULL ? 256 : json_integer_value(size);

        if (!(size == NULL || json_is_integer(size)) ||
            (bits != 128 && bits != 192 && bits != 256)) {
            return reject(r, 400, "BadParameter",
                          "Property 'key_size' must be 128, 192 or 256 for "
                          "oct keys");
        }
        out->bits = (unsigned int)bits;
    }
    return SKR_OK;
}

/* PROTOCOLS.md §7.7: a (premium) vault refuses exportable software keys, AKV.SKR.1006; a
 * Managed HSM holds only HSM keys, whatever kty the request spells. */
static skr_err
check_exportable_hsm(struct akv_req *r, const struct emu_akv_key_body *k)
{
    if (k->exportable && !k->hsm && strcmp(challenge_resource(r->ctx), AKV_RESOURCE_VAULT) == 0) {
        return reject(r, 400, "BadParameter",
                      "AKV.SKR.1006: Exportable keys must be HSM keys (kty RSA-HSM, EC-HSM or "
                      "oct-HSM, or \"hsm\": true).");
    }
    return SKR_OK;
}

/*
 * An import or create body, in the order the checks have always run: import validates the key,
 * then attributes, the api-version of an exportable key, key_ops and the release policy; create
 * validates kty, attributes, key_ops, the release policy and then key_size / crv, and finally
 * takes key_ops from a "key" object when the body has one.
 */
static skr_err
parse_key_body(struct akv_req *r, struct skr_span text, bool import, struct emu_akv_key_body *out)
{
    const json_t *key = NULL;
    const json_t *ops_src = NULL;
    bool want_hsm = false;

    out->enabled = true;
    TRY(parse_body(r, text, &out->body));
    if (import) {
        key = json_object_get(out->body, "key");
        if (!json_is_object(key)) {
            return reject(r, 400, "BadParameter", "Property 'key' is required and must be a JWK");
        }
        TRY(parse_kty(r, json_string_value(json_object_get(key, "kty")), &out->kty, &out->hsm));
        TRY(opt_bool(r, out->body, "hsm", &want_hsm));
        out->hsm = out->hsm || want_hsm;
        if (strcmp(out->kty, "oct") == 0) {
            TRY(import_oct(r, key, &out->jwk));
        } else {
            TRY(import_asym(r, key, out->kty, &out->jwk));
        }
        TRY(parse_attributes(r, out->body, &out->exportable, &out->enabled));
        if (out->exportable && !api_at_least_73(r->api_version)) {
            return reject(r, 400, "BadParameter",
                          "AKV.SKR.1001: Exportable keys need api-version 7.3-preview or later.");
        }
        TRY(check_exportable_hsm(r, out));
        TRY(parse_key_ops(r, key, out->kty, &out->key_ops));
        return parse_release_policy(r, out->body, out->exportable, &out->policy);
    }
    TRY(parse_kty(r, json_string_value(json_object_get(out->body, "kty")), &out->kty, &out->hsm));
    TRY(parse_attributes(r, out->body, &out->exportable, &out->enabled));
    TRY(check_exportable_hsm(r, out));
    TRY(parse_key_ops(r, out->body, out->kty, &out->key_ops));
    TRY(parse_release_policy(r, out->body, out->exportable, &out->policy));
    TRY(parse_gen_params(r, out->body, out));
    ops_src = json_object_get(out->body, "key");
    if (json_is_object(ops_src)) {
        json_decref(out->key_ops);
        out->key_ops = NULL;
        TRY(parse_key_ops(r, ops_src, out->kty, &out->key_ops));
    }
    return SKR_OK;
}

static skr_err
gen_pkey(const struct emu_akv_key_body *b, json_t **ret)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;

    if (strcmp(b->kty, "RSA") == 0) {
        pk = EVP_RSA_gen(b->bits);
    } else {
        pk = EVP_EC_gen(b->crv);
    }
    ENSURE(pk != NULL, SKR_E_INTERNAL, "key generation failed");
    return skr_jwk_from_pkey(pk, true, ret);
}

static skr_err
gen_oct(const struct emu_akv_key_body *b, json_t **ret)
{
    _cleanup_(skr_secret_freep) struct skr_secret *k = NULL;

    TRY(skr_secret_new(b->bits / 8, &k));
    TRY_OSSL(RAND_bytes(k->ptr, (int)k->len), SKR_E_INTERNAL, "RAND_bytes failed");
    return skr_jwk_oct_new(skr_secret_span(k), ret);
}

/* PUT /keys/<name> (import) and POST /keys/<name>/create. */
static skr_err
op_new_key(struct akv_req *r, const char *name, bool import)
{
    _cleanup_(emu_akv_key_body_done) struct emu_akv_key_body b = { 0 };
    _cleanup_(json_decrefp) json_t *entry = NULL;

    TRY(parse_key_body(r, r->req->body, import, &b));
    if (!import) {
        if (strcmp(b.kty, "oct") == 0) {
            TRY(gen_oct(&b, &b.jwk));
        } else {
            TRY(gen_pkey(&b, &b.jwk));
        }
    }
    TRY(entry_new(b.kty, b.hsm, b.jwk, b.key_ops, b.exportable, b.enabled, b.policy, &entry));
    TRY(store_add(r, name, entry));
    return respond_bundle(r, name, entry);
}

/* ---- get / update ------------------------------------------------------------------------- */

static skr_err
op_get(struct akv_req *r, const char *name, const char *version)
{
    _cleanup_(json_decrefp) json_t *entry = NULL;

    TRY(store_get_copy(r, name, version, &entry));
    return respond_bundle(r, name, entry);
}

/* Applies an update body to entry (under the lock). */
static skr_err
update_entry(struct akv_req *r, const json_t *body, json_t *entry)
{
    bool exportable = json_is_true(json_object_get(entry, "exportable"));
    bool new_exportable = exportable;
    bool enabled = json_is_true(json_object_get(entry, "enabled"));
    const json_t *cur = json_object_get(entry, "release_policy");
    const json_t *ops = json_object_get(body, "key_ops");

    TRY(parse_attributes(r, body, &new_exportable, &enabled));
    if (new_exportable != exportable) {
        return reject(r, 400, "BadParameter",
                      "AKV.SKR.1003: The exportable attribute of an existing key cannot be "
                      "changed.");
    }
    if (json_object_get(body, "release_policy") != NULL) {
        _cleanup_(json_decrefp) json_t *policy = NULL;

        if (json_is_true(json_object_get(cur, "immutable"))) {
            return reject(r, 400, "BadParameter",
                          "AKV.SKR.1020: The key release policy is immutable and cannot be "
                          "modified.");
        }
        TRY(parse_release_policy(r, body, exportable, &policy));
        if (policy != NULL) {
            TRY(skr_json_set(entry, "release_policy", TAKE_PTR(policy)));
        }
    }
    if (ops != NULL) {
        _cleanup_(json_decrefp) json_t *new_ops = NULL;
        const char *kty = json_string_value(json_object_get(entry, "kty"));

        TRY(parse_key_ops(r, body, kty != NULL ? kty : "RSA", &new_ops));
        TRY(skr_json_set(entry, "key_ops", TAKE_PTR(new_ops)));
    }
    TRY(skr_json_set(entry, "enabled", json_boolean(enabled)));
    return skr_json_set(entry, "updated", json_integer(now_s()));
}

static skr_err
update_locked(struct akv_req *r, const char *name, const char *version, const json_t *body,
              json_t **ret_entry)
{
    _cleanup_(json_decrefp) json_t *s = NULL;
    json_t *entry = NULL;

    TRY(store_load(r->ctx, &s));
    entry = store_find(s, name, version);
    if (entry == NULL) {
        return key_not_found(r, name, version);
    }
    TRY(update_entry(r, body, entry));
    TRY(store_save(r->ctx, s));
    *ret_entry = json_incref(entry);
    return SKR_OK;
}

static skr_err
op_update(struct akv_req *r, const char *name, const char *version)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    _cleanup_(json_decrefp) json_t *entry = NULL;
    skr_err err;

    TRY(parse_body(r, r->req->body, &body));
    if (pthread_mutex_lock(&r->ctx->store_lock) != 0) {
        FAIL(SKR_E_INTERNAL, "cannot take the key store lock");
    }
    err = update_locked(r, name, version, body, &entry);
    (void)pthread_mutex_unlock(&r->ctx->store_lock);
    TRY(err);
    return respond_bundle(r, name, entry);
}

/* ---- release: verifying the attestation token --------------------------------------------- */

static skr_err
http_client(const struct akv_req *r, struct skr_http_client **ret)
{
    struct skr_http_client_opts o;
    char ca[AKV_PATH_MAX];

    ENSURE(snprintf(ca, sizeof(ca), "%s/%s", r->ctx->dir, EMU_CA_CERT) < (int)sizeof(ca),
           SKR_E_INVALID_ARG, "CA path too long");
    skr_http_client_opts_init(&o);
    o.ca_file = ca;
    o.connect_timeout_ms = 2000;
    o.timeout_ms = 5000;
    o.retries = 1;
    o.retry_base_ms = 100;
    o.retry_cap_ms = 500;
    o.max_response_bytes = SKR_MAX_JSON_BYTES;
    o.user_agent = EMU_AKV_USER_AGENT;
    return skr_http_client_new(&o, ret);
}

/* GET url (https only) and parse a JSON object; failures become a 403 naming what. */
static skr_err
fetch_json(struct akv_req *r, struct skr_http_client *c, const char *url, const char *what,
           json_t **ret)
{
    _cleanup_(skr_http_reply_done) struct skr_http_reply rep = { 0 };
    skr_err err;

    if (strncmp(url, "https://", 8) != 0 || strlen(url) > AKV_MAX_URL) {
        return reject(r, 403, "Forbidden", AKV_DENY_PREFIX "The %s URL is not an https URL.", what);
    }
    err = skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &rep);
    if (err != SKR_OK) {
        return reject(r, 403, "Forbidden", AKV_DENY_PREFIX "Cannot fetch the %s: %s", what,
                      skr_err_msg());
    }
    if (rep.status != 200) {
        return reject(r, 403, "Forbidden", AKV_DENY_PREFIX "Fetching the %s returned HTTP %ld.",
                      what, rep.status);
    }
    if (skr_json_parse_object(skr_buf_span(&rep.body), SKR_MAX_JSON_BYTES, what, ret) != SKR_OK) {
        return reject(r, 403, "Forbidden", AKV_DENY_PREFIX "The %s is not a JSON object: %s", what,
                      skr_err_msg());
    }
    return SKR_OK;
}

/* The verification key of JWKS entry k: x5c[0]'s key, else the JWK members. */
static skr_err
jwks_entry_key(struct akv_req *r, const json_t *k, EVP_PKEY **ret)
{
    static const char *const members[] = { "kty", "n", "e", "crv", "x", "y" };
    const json_t *x5c = json_object_get(k, "x5c");
    _cleanup_(json_decrefp) json_t *pub = NULL;

    if (json_array_size(x5c) > 0) {
        _cleanup_(skr_buf_donep) struct skr_buf der = { 0 };
        _cleanup_(X509_freep) X509 *cert = NULL;
        const char *b64 = json_string_value(json_array_get(x5c, 0));
        const uint8_t *p = NULL;

        skr_buf_init(&der, SKR_MAX_CERT_BYTES);
        if (b64 == NULL || skr_b64_decode(skr_span_str(b64), SKR_B64_STD, &der) != SKR_OK) {
            return reject(r, 403, "Forbidden",
                          AKV_DENY_PREFIX "The issuer's signing key has a "
                                          "malformed x5c.");
        }
        p = der.ptr;
        cert = d2i_X509(NULL, &p, (long)der.len);
        if (cert == NULL || p != der.ptr + der.len) {
            return reject(r, 403, "Forbidden",
                          AKV_DENY_PREFIX "The issuer's signing key has an "
                                          "undecodable x5c certificate.");
        }
        *ret = X509_get_pubkey(cert);
        ENSURE(*ret != NULL, SKR_E_MALFORMED, "certificate without a public key");
        return SKR_OK;
    }
    pub = json_object();
    ENSURE(pub != NULL, SKR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < SKR_ARRAY_LEN(members); i++) {
        json_t *v = json_object_get(k, members[i]);

        if (v != NULL) {
            TRY(skr_json_set(pub, members[i], json_incref(v)));
        }
    }
    if (skr_jwk_to_pkey(pub, ret) != SKR_OK) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The issuer's signing key is not a "
                                      "usable JWK: %s",
                      skr_err_msg());
    }
    return SKR_OK;
}

/* Finds the issuer's key for kid through OIDC discovery. */
static skr_err
issuer_key_fetch(struct akv_req *r, const char *iss, const char *kid, EVP_PKEY **ret)
{
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = NULL;
    _cleanup_(json_decrefp) json_t *meta = NULL;
    _cleanup_(json_decrefp) json_t *jwks = NULL;
    char url[AKV_MAX_URL + 64];
    size_t n = strlen(iss);
    const char *jwks_uri = NULL;
    const json_t *keys = NULL;
    size_t i;
    json_t *k = NULL;

    if (n > 0 && iss[n - 1] == '/') {
        n--;
    }
    if (n > AKV_MAX_URL) {
        return reject(r, 403, "Forbidden", AKV_DENY_PREFIX "The token issuer is too long.");
    }
    (void)snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)n, iss);
    TRY(http_client(r, &c));
    TRY(fetch_json(r, c, url, "issuer's OpenID metadata", &meta));
    jwks_uri = json_string_value(json_object_get(meta, "jwks_uri"));
    if (jwks_uri == NULL) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The issuer's OpenID metadata has no "
                                      "jwks_uri.");
    }
    /* The keys must come from the issuer's own origin: metadata cannot send us elsewhere. */
    {
        const char *after = strstr(url, "://");
        const char *end = after != NULL ? strchr(after + 3, '/') : NULL;
        size_t origin = end != NULL ? (size_t)(end - url) : 0;

        if (origin == 0 || strncmp(jwks_uri, url, origin) != 0 ||
            (jwks_uri[origin] != '/' && jwks_uri[origin] != '\0')) {
            return reject(r, 403, "Forbidden",
                          AKV_DENY_PREFIX "The issuer's jwks_uri is not on the issuer's host.");
        }
    }
    TRY(fetch_json(r, c, jwks_uri, "issuer's JWKS", &jwks));
    keys = json_object_get(jwks, "keys");
    json_array_foreach(keys, i, k)
    {
        const char *id = json_string_value(json_object_get(k, "kid"));

        if (id != NULL && strcmp(id, kid) == 0) {
            return jwks_entry_key(r, k, ret);
        }
    }
    return reject(r, 403, "Forbidden",
                  AKV_DENY_PREFIX "The issuer %.200s has no signing key "
                                  "with the token's kid.",
                  iss);
}

/* The cached key of (iss, kid) when fresh: a new reference in *ret, else *ret stays NULL. */
static void
issuer_cache_get(struct emu_ctx *ctx, const char *iss, size_t n, const char *kid, EVP_PKEY **ret)
{
    int64_t now = (int64_t)now_s();

    if (pthread_mutex_lock(&ctx->issuer_lock) != 0) {
        return;
    }
    for (size_t i = 0; i < EMU_ISSUER_KEYS; i++) {
        struct emu_issuer_key *k = &ctx->issuer_keys[i];

        if (k->key != NULL && k->until > now && strlen(k->iss) == n &&
            strncmp(k->iss, iss, n) == 0 && strcmp(k->kid, kid) == 0 &&
            EVP_PKEY_up_ref(k->key) == 1) {
            *ret = k->key;
            break;
        }
    }
    (void)pthread_mutex_unlock(&ctx->issuer_lock);
}

/* Keeps (iss, kid) -> key, replacing an expired entry or the one that expires first. Failing to
 * cache only costs a fetch next time. */
static void
issuer_cache_put(struct emu_ctx *ctx, const char *iss, size_t n, const char *kid, EVP_PKEY *key)
{
    struct emu_issuer_key *slot = NULL;
    char *iss_copy = strndup(iss, n);
    char *kid_copy = strdup(kid);

    if (iss_copy == NULL || kid_copy == NULL || EVP_PKEY_up_ref(key) != 1) {
        free(iss_copy);
        free(kid_copy);
        return;
    }
    if (pthread_mutex_lock(&ctx->issuer_lock) != 0) {
        free(iss_copy);
        free(kid_copy);
        EVP_PKEY_free(key);
        return;
    }
    for (size_t i = 0; i < EMU_ISSUER_KEYS; i++) {
        struct emu_issuer_key *k = &ctx->issuer_keys[i];

        if (slot == NULL || k->key == NULL || k->until < slot->until) {
            slot = k;
        }
        if (k->key == NULL) {
            break;
        }
    }
    free(slot->iss);
    free(slot->kid);
    EVP_PKEY_free(slot->key);
    *slot = (struct emu_issuer_key){ .iss = iss_copy,
                                     .kid = kid_copy,
                                     .key = key,
                                     .until = (int64_t)now_s() + EMU_ISSUER_KEY_TTL_S };
    (void)pthread_mutex_unlock(&ctx->issuer_lock);
}

void
emu_akv_forget_issuer_keys(struct emu_ctx *ctx)
{
    if (pthread_mutex_lock(&ctx->issuer_lock) != 0) {
        return;
    }
    for (size_t i = 0; i < EMU_ISSUER_KEYS; i++) {
        struct emu_issuer_key *k = &ctx->issuer_keys[i];

        free(k->iss);
        free(k->kid);
        EVP_PKEY_free(k->key);
        *k = (struct emu_issuer_key){ 0 };
    }
    (void)pthread_mutex_unlock(&ctx->issuer_lock);
}

/* Finds the issuer's key for kid: the cache, else OIDC discovery. */
static skr_err
issuer_key(struct akv_req *r, const char *iss, const char *kid, EVP_PKEY **ret)
{
    size_t n = strlen(iss);

    if (n > 0 && iss[n - 1] == '/') {
        n--;
    }
    issuer_cache_get(r->ctx, iss, n, kid, ret);
    if (*ret != NULL) {
        return SKR_OK;
    }
    TRY(issuer_key_fetch(r, iss, kid, ret));
    issuer_cache_put(r->ctx, iss, n, kid, *ret);
    return SKR_OK;
}

static skr_err
check_times(struct akv_req *r, const json_t *claims)
{
    const json_t *exp = json_object_get(claims, "exp");
    const json_t *nbf = json_object_get(claims, "nbf");
    json_int_t now = now_s();

    if (!json_is_integer(exp)) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The attestation token has no 'exp' "
                                      "claim.");
    }
    if (now > json_integer_value(exp) + AKV_SKEW_S) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The attestation token expired at "
                                      "%lld (now %lld).",
                      (long long)json_integer_value(exp), (long long)now);
    }
    if (nbf != NULL && !json_is_integer(nbf)) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The attestation token's 'nbf' is "
                                      "not a number.");
    }
    if (nbf != NULL && json_integer_value(nbf) > now + AKV_SKEW_S) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The attestation token is not valid "
                                      "before %lld (now %lld).",
                      (long long)json_integer_value(nbf), (long long)now);
    }
    return SKR_OK;
}

static bool
any_authority_matches(const struct skr_policy_explain *x)
{
    for (size_t i = 0; i < x->n_branches; i++) {
        if (x->branches[i].authority_matches) {
            return true;
        }
    }
    return false;
}

/*
 * Verifies target and evaluates the key's policy; on success *ret_claims holds the verified
 * claims (new reference).
 */
static skr_err
verify_target(struct akv_req *r, const json_t *entry, const char *target, json_t **ret_claims)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    _cleanup_(skr_policy_freep) struct skr_policy *p = NULL;
    _cleanup_(skr_policy_explain_freep) struct skr_policy_explain *x = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
    const char *iss = NULL;
    const char *kid = NULL;

    if (skr_jws_parse(skr_span_str(target), &jws) != SKR_OK || !json_is_object(jws.claims)) {
        return reject(r, 400, "BadParameter", "Property 'target' is not a JWT: %s", skr_err_msg());
    }
    TRY(skr_policy_parse_release(json_object_get(entry, "release_policy"), &p));
    iss = json_string_value(json_object_get(jws.claims, "iss"));
    /* Only an issuer that the policy names is ever contacted. */
    TRY(skr_policy_explain(p, iss, jws.claims, &x));
    if (!any_authority_matches(x)) {
        return reject(r, 403, "Forbidden", AKV_DENY_PREFIX "%s", x->reason);
    }
    kid = json_string_value(json_object_get(jws.header, "kid"));
    if (kid == NULL) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The attestation token header has "
                                      "no 'kid'.");
    }
    TRY(issuer_key(r, iss, kid, &key));
    if (skr_jws_verify(&jws, key) != SKR_OK) {
        return reject(r, 403, "Forbidden",
                      AKV_DENY_PREFIX "The attestation token signature "
                                      "does not verify with the issuer's key: %s",
                      skr_err_msg());
    }
    TRY(check_times(r, jws.claims));
    if (!x->allow) {
        return reject(r, 403, "Forbidden", AKV_DENY_PREFIX "%s", x->reason);
    }
    *ret_claims = json_incref(jws.claims);
    return SKR_OK;
}

/* ---- release: wrapping and the JWS ------------------------------------------------------- */

/* PROTOCOLS.md §7.3: the first RSA key of x-ms-runtime.keys with a kid usable for encryption. */
static skr_err
wrapping_key(struct akv_req *r, const json_t *claims, EVP_PKEY **ret, const char **ret_kid)
{
    const json_t *keys = json_object_get(json_object_get(claims, "x-ms-runtime"), "keys");
    size_t i;
    json_t *k = NULL;

    json_array_foreach(keys, i, k)
    {
        const char *kty = json_string_value(json_object_get(k, "kty"));
        const char *kid = json_string_value(json_object_get(k, "kid"));
        const char *use = json_string_value(json_object_get(k, "use"));
        const char *key_use = json_string_value(json_object_get(k, "key_use"));
        const json_t *ops = json_object_get(k, "key_ops");
        bool enc = (use != NULL && strcmp(use, "enc") == 0) ||
                   (key_use != NULL && strcmp(key_use, "enc") == 0);
        _cleanup_(json_decrefp) json_t *pub = NULL;
        size_t j;
        json_t *op = NULL;

        json_array_foreach(ops, j, op)
        {
            enc = enc || (json_is_string(op) && strcmp(json_string_value(op), "encrypt") == 0);
        }
        if (kty == NULL || strcmp(kty, "RSA") != 0 || kid == NULL || !enc) {
            continue;
        }
        pub = json_pack("{s:s, s:O, s:O}", "kty", "RSA", "n", json_object_get(k, "n"), "e",
                        json_object_get(k, "e"));
        if (pub == NULL || skr_jwk_to_pkey(pub, ret) != SKR_OK) {
            return reject(r, 400, "BadParameter",
                          "The wrapping key '%.100s' in the attestation "
                          "token's x-ms-runtime.keys is not a valid RSA key.",
                          kid);
        }
        *ret_kid = kid;
        return SKR_OK;
    }
    return reject(r, 403, "Forbidden",
                  AKV_DENY_PREFIX "The attestation token's x-ms-runtime.keys "
                                  "has no RSA key with a kid usable for encryption.");
}

/* The key material to release: PKCS#8 DER for RSA / EC, the raw bytes for oct. */
static skr_err
key_material(const json_t *entry, struct skr_secret **ret)
{
    const json_t *jwk = json_object_get(entry, "jwk");
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *der = NULL;
    int len;
    skr_err err;

    ENSURE(kty != NULL, SKR_E_MALFORMED, "key store: JWK without kty");
    if (strcmp(kty, "oct") == 0) {
        _cleanup_(skr_buf_donep) struct skr_buf k = { 0 };
        const char *text = json_string_value(json_object_get(jwk, "k"));

        skr_buf_init(&k, 64);
        ENSURE(text != NULL, SKR_E_MALFORMED, "key store: oct JWK without k");
        TRY(skr_b64_decode(skr_span_str(text), SKR_B64_URL, &k));
        return skr_secret_from(skr_buf_span(&k), ret);
    }
    TRY(skr_jwk_to_pkey(jwk, &pk));
    p8 = EVP_PKEY2PKCS8(pk);
    ENSURE(p8 != NULL, SKR_E_INTERNAL, "cannot encode the key as PKCS#8");
    len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    ENSURE(len > 0 && der != NULL, SKR_E_INTERNAL, "cannot encode the key as PKCS#8");
    err = skr_secret_from(skr_span_make(der, (size_t)len), ret);
    OPENSSL_clear_free(der, (size_t)len);
    return err;
}

static skr_err
b64url_str(struct skr_span in, struct skr_buf *out, const char **ret)
{
    TRY(skr_b64_encode(in, SKR_B64_URL, out));
    return skr_buf_cstr(out, ret);
}

/* key_hsm = base64url-nopad({"ciphertext","header":{"alg":"dir","enc","kid"},"schema_version"}). */
static skr_err
make_key_hsm(const json_t *entry, EVP_PKEY *wrap_key, const char *wrap_kid, enum skr_kw_alg alg,
             struct skr_buf *out, const char **ret)
{
    _cleanup_(skr_secret_freep) struct skr_secret *plain = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf ct = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf ct64 = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf doc = { 0 };
    _cleanup_(json_decrefp) json_t *o = NULL;
    const char *ct_text = NULL;

    TRY(key_material(entry, &plain));
    skr_buf_init(&ct, SKR_MAX_SECRET_BYTES * 2);
    TRY(skr_rsa_aes_wrap(wrap_key, alg, skr_secret_span(plain), &ct));
    skr_buf_init(&ct64, SKR_MAX_SECRET_BYTES * 3);
    TRY(b64url_str(skr_buf_span(&ct), &ct64, &ct_text));
    o = json_pack("{s:s, s:{s:s, s:s, s:s}, s:s}", "ciphertext", ct_text, "header", "alg", "dir",
                  "enc", skr_kw_alg_name(alg), "kid", wrap_kid, "schema_version", "1.0");
    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    skr_buf_init(&doc, SKR_MAX_SECRET_BYTES * 4);
    TRY(skr_json_dump(o, JSON_COMPACT | JSON_SORT_KEYS, &doc));
    return b64url_str(skr_buf_span(&doc), out, ret);
}

/* ECDSA DER signature -> JOSE r || s (RFC 7518 §3.4). */
static skr_err
ecdsa_to_jose(EVP_PKEY *key, struct skr_span der, struct skr_buf *out)
{
    _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
    const unsigned char *p = der.ptr;
    const BIGNUM *rr = NULL;
    const BIGNUM *ss = NULL;
    size_t n = ((size_t)EVP_PKEY_get_bits(key) + 7) / 8;
    uint8_t buf[2 * 66];

    ENSURE(n > 0 && 2 * n <= sizeof(buf), SKR_E_INTERNAL, "unexpected EC key size");
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der.len);
    ENSURE(sig != NULL, SKR_E_INTERNAL, "cannot decode the ECDSA signature");
    ECDSA_SIG_get0(sig, &rr, &ss);
    ENSURE(BN_bn2binpad(rr, buf, (int)n) == (int)n && BN_bn2binpad(ss, buf + n, (int)n) == (int)n,
           SKR_E_INTERNAL, "ECDSA signature too long");
    return skr_buf_append(out, buf, 2 * n);
}

/* Signs payload as a compact JWS with the TLS key, x5c = the TLS chain (see the top). */
static skr_err
sign_release(const struct emu_ctx *ctx, const json_t *payload, struct skr_buf *out)
{
    _cleanup_(json_decrefp) json_t *hdr = NULL;
    _cleanup_(json_decrefp) json_t *x5c = json_array();
    _cleanup_(skr_buf_donep) struct skr_buf tmp = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf sig = { 0 };
    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
    X509 *leaf = sk_X509_value(ctx->tls_chain, 0);
    char thumb[SKR_THUMBPRINT_LEN];
    bool is_ec = EVP_PKEY_get_base_id(ctx->tls_key) == EVP_PKEY_EC;
    int bits = EVP_PKEY_get_bits(ctx->tls_key);
    const char *alg = is_ec ? (bits > 256 ? "ES384" : "ES256") : "RS256";
    const EVP_MD *hash = is_ec && bits > 256 ? EVP_sha384() : EVP_sha256();
    size_t start = out->len;
    size_t siglen = 0;

    ENSURE(leaf != NULL && x5c != NULL, SKR_E_INVALID_ARG, "no TLS certificate to sign with");
    skr_buf_init(&tmp, SKR_MAX_HTTP_BODY_BYTES);
    ENSURE(!is_ec || bits <= 384, SKR_E_UNSUPPORTED, "TLS key curve not supported for signing");
    TRY(skr_x509_thumbprint_s256(leaf, thumb));
    for (int i = 0; i < sk_X509_num(ctx->tls_chain); i++) {
        _cleanup_(skr_ossl_freep) unsigned char *der = NULL;
        int len = i2d_X509(sk_X509_value(ctx->tls_chain, i), &der);
        const char *s = NULL;

        ENSURE(len > 0, SKR_E_INTERNAL, "cannot encode a certificate");
        skr_buf_reset(&tmp);
        TRY(skr_b64_encode(skr_span_make(der, (size_t)len), SKR_B64_STD | SKR_B64_PAD, &tmp));
        TRY(skr_buf_cstr(&tmp, &s));
        ENSURE(json_array_append_new(x5c, json_string(s)) == 0, SKR_E_NOMEM, "out of memory");
    }
    hdr =
        json_pack("{s:s, s:s, s:O, s:s}", "alg", alg, "kid", thumb, "x5c", x5c, "x5t#S256", thumb);
    ENSURE(hdr != NULL, SKR_E_NOMEM, "out of memory");

    skr_buf_reset(&tmp);
    TRY(skr_json_dump(hdr, JSON_COMPACT | JSON_SORT_KEYS, &tmp));
    TRY(skr_b64_encode(skr_buf_span(&tmp), SKR_B64_URL, out));
    TRY(skr_buf_append_byte(out, '.'));
    skr_buf_reset(&tmp);
    TRY(skr_json_dump(payload, JSON_COMPACT | JSON_SORT_KEYS, &tmp));
    TRY(skr_b64_encode(skr_buf_span(&tmp), SKR_B64_URL, out));

    md = EVP_MD_CTX_new();
    ENSURE(md != NULL, SKR_E_NOMEM, "out of memory");
    TRY_OSSL(EVP_DigestSignInit(md, NULL, hash, NULL, ctx->tls_key), SKR_E_INTERNAL,
             "cannot start signing");
    TRY_OSSL(EVP_DigestSign(md, NULL, &siglen, out->ptr + start, out->len - start), SKR_E_INTERNAL,
             "cannot size the signature");
    skr_buf_init(&sig, SKR_MAX_HTTP_BODY_BYTES);
    TRY(skr_buf_reserve(&sig, siglen));
    TRY_OSSL(EVP_DigestSign(md, sig.ptr, &siglen, out->ptr + start, out->len - start),
             SKR_E_INTERNAL, "signing failed");
    sig.len = siglen;
    skr_buf_reset(&tmp);
    if (is_ec) {
        TRY(ecdsa_to_jose(ctx->tls_key, skr_buf_span(&sig), &tmp));
    } else {
        TRY(skr_buf_append_span(&tmp, skr_buf_span(&sig)));
    }
    TRY(skr_buf_append_byte(out, '.'));
    return skr_b64_encode(skr_buf_span(&tmp), SKR_B64_URL, out);
}

static bool
may_release(const struct akv_req *r)
{
    const char *oid = json_string_value(json_object_get(r->caller, "oid"));
    const json_t *list =
        json_object_get(json_object_get(r->ctx->config, "akv"), "release_identities");
    const char *mi = json_string_value(
        json_object_get(json_object_get(r->ctx->config, "managed_identity"), "object_id"));
    size_t i;
    json_t *v = NULL;

    if (oid == NULL) {
        return false;
    }
    if (json_is_array(list)) {
        json_array_foreach(list, i, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), oid) == 0) {
                return true;
            }
        }
        return false;
    }
    return mi != NULL && strcmp(mi, oid) == 0;
}

static skr_err
release_payload(struct akv_req *r, const char *name, const json_t *entry, const char *key_hsm,
                enum skr_kw_alg alg, const char *nonce, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *request = NULL;
    _cleanup_(json_decrefp) json_t *bundle = json_object();
    json_t *v = NULL;
    json_t *key = NULL;
    const char *version = json_string_value(json_object_get(entry, "version"));
    char kid[600];

    ENSURE(bundle != NULL && version != NULL, SKR_E_NOMEM, "out of memory");
    TRY(key_id(r, name, version, kid, sizeof(kid)));
    request = json_pack("{s:s, s:s, s:s}", "api-version", r->api_version, "enc",
                        skr_kw_alg_name(alg), "kid", kid);
    ENSURE(request != NULL, SKR_E_NOMEM, "out of memory");
    if (nonce != NULL) {
        TRY(set_str(request, "nonce", nonce));
    }
    TRY(bundle_attributes(entry, &v));
    TRY(skr_json_set(bundle, "attributes", v));
    TRY(bundle_key(r, name, entry, &key));
    TRY(skr_json_set(bundle, "key", key));
    TRY(set_str(key, "key_hsm", key_hsm));
    TRY(bundle_policy(entry, false, &v));
    if (v != NULL) {
        TRY(skr_json_set(bundle, "release_policy", v));
    }
    *ret = json_pack("{s:O, s:{s:O}}", "request", request, "response", "key", bundle);
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

/* {"target","nonce"?,"enc"?} of a release request. */
static skr_err
parse_release_body(struct akv_req *r, struct skr_span text, struct emu_akv_release_body *out)
{
    const json_t *body = NULL;

    out->alg = SKR_KW_CKM_RSA_AES_KEY_WRAP;
    TRY(parse_body(r, text, &out->body));
    body = out->body;
    out->target = json_string_value(json_object_get(body, "target"));
    if (out->target == NULL) {
        return reject(r, 400, "BadParameter",
                      "Property 'target' is required and must be a "
                      "string");
    }
    if (json_object_get(body, "nonce") != NULL) {
        out->nonce = json_string_value(json_object_get(body, "nonce"));
        if (out->nonce == NULL || strlen(out->nonce) > AKV_MAX_NONCE) {
            return reject(r, 400, "BadParameter",
                          "Property 'nonce' must be a string of at most "
                          "%u characters",
                          AKV_MAX_NONCE);
        }
    }
    if (json_object_get(body, "enc") != NULL) {
        const char *enc = json_string_value(json_object_get(body, "enc"));

        if (enc == NULL || skr_kw_alg_parse(enc, &out->alg) != SKR_OK) {
            return reject(r, 400, "BadParameter",
                          "Property 'enc' must be CKM_RSA_AES_KEY_WRAP, "
                          "RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384");
        }
    }
    return SKR_OK;
}

static skr_err
op_release(struct akv_req *r, const char *name, const char *version)
{
    _cleanup_(emu_akv_release_body_done) struct emu_akv_release_body rb = { 0 };
    _cleanup_(json_decrefp) json_t *entry = NULL;
    _cleanup_(json_decrefp) json_t *claims = NULL;
    _cleanup_(json_decrefp) json_t *payload = NULL;
    _cleanup_(json_decrefp) json_t *answer = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *wrap_key = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf key_hsm = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf jws = { 0 };
    const char *wrap_kid = NULL;
    const char *key_hsm_text = NULL;
    const char *jws_text = NULL;

    if (!api_at_least_73(r->api_version)) {
        return reject(r, 400, "BadParameter",
                      "AKV.SKR.1001: Key release needs api-version 7.3-preview or later.");
    }
    if (!may_release(r)) {
        return reject(r, 403, "Forbidden",
                      "Operation release is not allowed on key %s for the "
                      "caller: only the identities granted release in emu.json may release "
                      "keys.",
                      name);
    }
    TRY(parse_release_body(r, r->req->body, &rb));
    TRY(store_get_copy(r, name, version, &entry));
    if (!json_is_true(json_object_get(entry, "exportable")) ||
        json_object_get(entry, "release_policy") == NULL) {
        return reject(r, 400, "BadParameter",
                      "Key %s is not exportable: only keys with "
                      "attributes.exportable = true can be released.",
                      name);
    }
    if (!json_is_true(json_object_get(entry, "enabled"))) {
        return reject(r, 403, "Forbidden", "Operation release is not allowed on a disabled key.");
    }
    TRY(verify_target(r, entry, rb.target, &claims));
    TRY(wrapping_key(r, claims, &wrap_key, &wrap_kid));
    skr_buf_init(&key_hsm, SKR_MAX_HTTP_BODY_BYTES);
    TRY(make_key_hsm(entry, wrap_key, wrap_kid, rb.alg, &key_hsm, &key_hsm_text));
    TRY(release_payload(r, name, entry, key_hsm_text, rb.alg, rb.nonce, &payload));
    skr_buf_init(&jws, SKR_MAX_HTTP_BODY_BYTES);
    TRY(sign_release(r->ctx, payload, &jws));
    TRY(skr_buf_cstr(&jws, &jws_text));
    answer = json_pack("{s:s}", "value", jws_text);
    ENSURE(answer != NULL, SKR_E_NOMEM, "out of memory");
    return skr_http_respond_json(r->resp, 200, answer);
}

/* ---- authentication and dispatch ---------------------------------------------------------- */

static skr_err
authenticate(struct akv_req *r)
{
    const char *h = skr_http_request_header(r->req, "Authorization");
    char why[400];

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
        return reject(r, 401, "Unauthorized",
                      "AKV10000: Request is missing a Bearer or PoP token.");
    }
    /* A vault takes vault.azure.net tokens, a Managed HSM managedhsm.azure.net ones: a client
     * that asks for the wrong resource must fail here as it would on Azure. */
    if (emu_entra_verify(r->ctx, h + 7, challenge_resource(r->ctx), &r->caller) == SKR_OK) {
        return SKR_OK;
    }
    (void)snprintf(why, sizeof(why), "%s", skr_err_msg());
    return reject(r, 401, "Unauthorized",
                  "AKV10022: The bearer token was rejected: %s (expected audience %s).", why,
                  challenge_resource(r->ctx));
}

static skr_err
check_api_version(struct akv_req *r)
{
    const char *v = skr_http_request_query(r->req, "api-version");

    if (v == NULL || v[0] == '\0') {
        return reject(r, 400, "BadParameter", "The api-version query parameter is missing.");
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(supported_api_versions); i++) {
        if (strcmp(v, supported_api_versions[i]) == 0) {
            r->api_version = supported_api_versions[i];
            return SKR_OK;
        }
    }
    return reject(r, 400, "BadParameter",
                  "The specified version (%.40s) is not recognized. "
                  "Consider using the latest supported version (7.5).",
                  v);
}

static skr_err
set_base(struct akv_req *r)
{
    const char *host = skr_http_request_header(r->req, "Host");

    if (host != NULL && valid_host(host)) {
        (void)snprintf(r->base, sizeof(r->base), "https://%s", host);
    } else {
        (void)snprintf(r->base, sizeof(r->base), "%s", r->ctx->akv_url);
    }
    return SKR_OK;
}

#define AKV_MAX_SEGS 4

static skr_err
dispatch(struct akv_req *r)
{
    char path[512];
    char *segs[AKV_MAX_SEGS + 1] = { 0 };
    size_t n = 0;
    const char *m = r->req->method;
    char *p = path;

    TRY(authenticate(r));
    TRY(check_api_version(r));
    TRY(set_base(r));
    if (r->req->path[0] != '/' || strlen(r->req->path) >= sizeof(path)) {
        return reject(r, 404, "NotFound", "The requested resource does not exist.");
    }
    (void)snprintf(path, sizeof(path), "%s", r->req->path + 1);
    /* split on '/', one trailing slash tolerated */
    while (*p != '\0' && n <= AKV_MAX_SEGS) {
        char *slash = strchr(p, '/');

        segs[n++] = p;
        if (slash == NULL) {
            break;
        }
        *slash = '\0';
        p = slash + 1;
    }
    if (n < 2 || n > AKV_MAX_SEGS || strcmp(segs[0], "keys") != 0) {
        return reject(r, 404, "NotFound", "The requested resource does not exist.");
    }
    if (!valid_name(segs[1], strlen(segs[1]))) {
        return reject(r, 400, "BadParameter",
                      "The key name is invalid: names are 1-127 "
                      "characters of 0-9, a-z, A-Z and '-'.");
    }
    if (n == 2 && strcmp(m, "PUT") == 0) {
        return op_new_key(r, segs[1], true);
    }
    if (n == 2 && strcmp(m, "GET") == 0) {
        return op_get(r, segs[1], NULL);
    }
    if (n == 2 && strcmp(m, "PATCH") == 0) {
        return op_update(r, segs[1], NULL);
    }
    if (n == 3 && strcmp(segs[2], "create") == 0 && strcmp(m, "POST") == 0) {
        return op_new_key(r, segs[1], false);
    }
    if (n == 3 && strcmp(segs[2], "release") == 0 && strcmp(m, "POST") == 0) {
        return op_release(r, segs[1], NULL);
    }
    if (n == 3 && (strcmp(m, "GET") == 0 || strcmp(m, "PATCH") == 0)) {
        if (!valid_version(segs[2])) {
            return key_not_found(r, segs[1], NULL);
        }
        return m[0] == 'G' ? op_get(r, segs[1], segs[2]) : op_update(r, segs[1], segs[2]);
    }
    if (n == 4 && strcmp(segs[3], "release") == 0 && strcmp(m, "POST") == 0) {
        if (!valid_version(segs[2])) {
            return key_not_found(r, segs[1], NULL);
        }
        return op_release(r, segs[1], segs[2]);
    }
    return reject(r, 405, "MethodNotAllowed", "The operation is not supported by the emulator.");
}

skr_err
emu_akv_handle(void *ctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct akv_req r = { .ctx = ctx, .req = req, .resp = resp };
    skr_err err;

    ENSURE(ctx != NULL && req != NULL && resp != NULL, SKR_E_INVALID_ARG, "NULL argument");
    err = dispatch(&r);
    json_decref(r.caller);
    if (err != SKR_OK && r.fail_status != 0) {
        skr_err_clear();
        return send_rejection(&r);
    }
    return err;
}

/* ---- the body parsers without a server (service.h) ---------------------------------------- */

static skr_err
public_result(skr_err err, const struct akv_req *r, struct emu_reject *rej)
{
    if (rej != NULL) {
        rej->status = 0;
        rej->code = NULL;
        rej->msg[0] = '\0';
        if (err != SKR_OK && r->fail_status != 0) {
            rej->status = r->fail_status;
            rej->code = r->fail_code;
            (void)snprintf(rej->msg, sizeof(rej->msg), "%s", r->fail_msg);
        }
    }
    return err;
}

static skr_err
public_req(const char *api_version, struct akv_req *r)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; api_version != NULL && i < SKR_ARRAY_LEN(supported_api_versions); i++) {
        if (strcmp(api_version, supported_api_versions[i]) == 0) {
            r->api_version = supported_api_versions[i];
            return SKR_OK;
        }
    }
    FAIL(SKR_E_INVALID_ARG, "unsupported api-version");
}

skr_err
emu_akv_parse_release(struct skr_span body, const char *api_version,
                      struct emu_akv_release_body *ret, struct emu_reject *rej)
{
    struct akv_req r;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(public_req(api_version, &r));
    return public_result(parse_release_body(&r, body, ret), &r, rej);
}

void
emu_akv_release_body_done(struct emu_akv_release_body *b)
{
    if (b == NULL) {
        return;
    }
    json_decref(b->body);
    memset(b, 0, sizeof(*b));
}

skr_err
emu_akv_parse_key(struct skr_span body, bool import, const char *api_version,
                  struct emu_akv_key_body *ret, struct emu_reject *rej)
{
    struct akv_req r;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(public_req(api_version, &r));
    return public_result(parse_key_body(&r, body, import, ret), &r, rej);
}

void
emu_akv_key_body_done(struct emu_akv_key_body *b)
{
    if (b == NULL) {
        return;
    }
    json_decref(b->body);
    json_decref(b->jwk);
    json_decref(b->key_ops);
    json_decref(b->policy);
    memset(b, 0, sizeof(*b));
}
