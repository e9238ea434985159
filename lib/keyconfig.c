/*
 * keyconfig.c - import-key configurations, key material and the Key Vault request bodies of
 * `skr key import|create` (keyconfig.h).
 */
#include "keyconfig.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "azure.h"
#include "b64.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "policy.h"
#include "skr_limits.h"

#define KC_CONTENT_TYPE "application/json; charset=utf-8"
/* Key Vault's JsonWebKeyOperation values; a key has each at most once. */
#define KC_MAX_KEY_OPS 8u
/* Shown member names and values are cut to this many characters in messages. */
#define KC_SHOW 64u
/* api-version values are short ("7.4", "7.6-preview.2", "2025-07-01"). */
#define KC_MAX_API_VERSION 63u

static const char *const known_key_ops[] = {
    "encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export",
};

/* ---- helpers -------------------------------------------------------------------------------- */

/* A printable copy of s (other bytes as '?'), cut to KC_SHOW characters. */
static const char *
show(const char *s, char buf[KC_SHOW + 4])
{
    size_t j = 0;

    for (size_t i = 0; s[i] != '\0' && j < KC_SHOW; i++) {
        unsigned char c = (unsigned char)s[i];

        buf[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (strlen(s) > KC_SHOW) {
        buf[j++] = '.';
        buf[j++] = '.';
        buf[j++] = '.';
    }
    buf[j] = '\0';
    return buf;
}

static bool
is_placeholder(const char *s)
{
    size_t n = strlen(s);

    return n >= 2 && s[0] == '<' && s[n - 1] == '>';
}

/* Rejects members of obj that are not in allowed (NULL-terminated). */
static skr_err
check_members(json_t *obj, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    char b[KC_SHOW + 4];
    char list[256] = "";

    json_object_foreach(obj, k, v)
    {
        bool known = false;

        for (size_t i = 0; allowed[i] != NULL; i++) {
            known = known || strcmp(k, allowed[i]) == 0;
        }
        if (!known) {
            size_t off = 0;

            for (size_t i = 0; allowed[i] != NULL && off < sizeof(list); i++) {
                int w =
                    snprintf(list + off, sizeof(list) - off, "%s%s", i > 0 ? ", " : "", allowed[i]);

                if (w < 0) {
                    break;
                }
                off += (size_t)w;
            }
            FAILF(SKR_E_MALFORMED, "%s%s%s: unknown member (expected one of: %s)", path,
                  path[0] != '\0' ? "." : "", show(k, b), list);
        }
    }
    return SKR_OK;
}

/* An optional object member: *ret NULL when absent. */
static skr_err
opt_obj(json_t *obj, const char *key, const char *path, json_t **ret)
{
    json_t *v = json_object_get(obj, key);

    *ret = NULL;
    if (v == NULL) {
        return SKR_OK;
    }
    if (!json_is_object(v)) {
        FAILF(SKR_E_MALFORMED, "%s: expected a JSON object", path);
    }
    *ret = v;
    return SKR_OK;
}

/*
 * An optional string member: *ret NULL when absent; a string with a NUL, longer than max, or
 * still an example's "<...>" placeholder is an error that names path and says what was expected.
 */
static skr_err
opt_string(json_t *obj, const char *key, const char *path, size_t max, const char *expected,
           const char **ret)
{
    json_t *v = json_object_get(obj, key);
    char b[KC_SHOW + 4];

    *ret = NULL;
    if (v == NULL) {
        return SKR_OK;
    }
    if (!json_is_string(v)) {
        FAILF(SKR_E_MALFORMED, "%s: expected a string (%s)", path, expected);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        FAILF(SKR_E_MALFORMED, "%s: the string contains a NUL character (expected %s)", path,
              expected);
    }
    if (json_string_length(v) > max) {
        FAILF(SKR_E_TOO_LARGE, "%s: longer than %zu characters (expected %s)", path, max, expected);
    }
    if (is_placeholder(json_string_value(v))) {
        FAILF(SKR_E_MALFORMED, "%s: still the example's placeholder %s: expected %s", path,
              show(json_string_value(v), b), expected);
    }
    *ret = json_string_value(v);
    return SKR_OK;
}

static skr_err
opt_bool(json_t *obj, const char *key, const char *path, bool *ret)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL) {
        return SKR_OK;
    }
    if (!json_is_boolean(v)) {
        FAILF(SKR_E_MALFORMED, "%s: expected true or false", path);
    }
    *ret = json_is_true(v);
    return SKR_OK;
}

static skr_err
dup_str(const char *s, char **ret)
{
    *ret = strdup(s);
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static bool
valid_key_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 127) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

/* Copies the last error's message (so it can be quoted in a new one). */
static void
last_msg(char *buf, size_t cap)
{
    (void)snprintf(buf, cap, "%s", skr_err_msg());
}

void
skr_keyconfig_free(struct skr_keyconfig *kc)
{
    if (kc == NULL) {
        return;
    }
    json_decref(kc->key_ops);
    json_decref(kc->policy);
    free(kc->authority);
    free(kc->akv_endpoint);
    skr_secret_free(kc->bearer_token);
    skr_buf_done(&kc->salt);
    free(kc->label);
    free(kc->client_id);
    free(kc->policy_file);
    free(kc);
}

/* ---- the release policy ------------------------------------------------------------------- */

skr_err
skr_keyconfig_check_policy(json_t *policy, const char *what)
{
    _cleanup_(skr_policy_freep) struct skr_policy *p = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    skr_err e;
    char msg[384];

    ENSURE(policy != NULL && what != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (!json_is_object(policy)) {
        FAILF(SKR_E_MALFORMED, "%s: expected a release policy object {\"version\", \"anyOf\"}",
              what);
    }
    skr_buf_init(&text, SKR_MAX_POLICY_BYTES);
    e = skr_json_dump(policy, JSON_COMPACT | JSON_PRESERVE_ORDER, &text);
    if (e != SKR_OK) {
        FAILF(SKR_E_TOO_LARGE, "%s: larger than %u bytes", what, SKR_MAX_POLICY_BYTES);
    }
    e = skr_policy_parse_json(policy, &p);
    if (e != SKR_OK) {
        const char *m = msg;

        last_msg(msg, sizeof(msg));
        if (strncmp(m, "release policy: ", 16) == 0) {
            m += 16;
        }
        FAILF(e, "%s: %s", what, m);
    }
    return SKR_OK;
}

skr_err
skr_release_policy_request(const json_t *policy, bool immutable, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf data = { 0 };
    _cleanup_(json_decrefp) json_t *o = json_object();

    ENSURE(policy != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    skr_buf_init(&text, SKR_MAX_POLICY_BYTES);
    skr_buf_init(&data, 2 * SKR_MAX_POLICY_BYTES);
    TRY(skr_json_dump(policy, JSON_COMPACT | JSON_PRESERVE_ORDER, &text));
    TRY(skr_b64_encode(skr_buf_span(&text), SKR_B64_URL, &data));
    TRY(skr_json_set(o, "contentType", json_string(KC_CONTENT_TYPE)));
    TRY(skr_json_set(o, "data", json_stringn((const char *)data.ptr, data.len)));
    if (immutable) {
        TRY(skr_json_set(o, "immutable", json_true()));
    }
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

/* claims[i][j] -> {"claim": NAME, "equals": VALUE} (a new object in the reference's order). */
static skr_err
parse_claim(json_t *c, size_t i, size_t j, json_t **ret)
{
    static const char *const members[] = { "claim", "equals", NULL };
    _cleanup_(json_decrefp) json_t *o = json_object();
    char path[64];
    char b[KC_SHOW + 4];
    const char *name = NULL;
    json_t *eq;

    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    (void)snprintf(path, sizeof(path), "claims[%zu][%zu]", i, j);
    if (!json_is_object(c)) {
        FAILF(SKR_E_MALFORMED, "%s: expected an object {\"claim\": NAME, \"equals\": VALUE}", path);
    }
    TRY(check_members(c, path, members));
    (void)snprintf(path, sizeof(path), "claims[%zu][%zu].claim", i, j);
    TRY(opt_string(c, "claim", path, SKR_POLICY_MAX_NAME, "a claim name", &name));
    if (name == NULL || name[0] == '\0') {
        FAILF(SKR_E_MALFORMED,
              "%s: missing or empty (expected a claim name such as "
              "x-ms-sevsnpvm-hostdata)",
              path);
    }
    (void)snprintf(path, sizeof(path), "claims[%zu][%zu].equals", i, j);
    eq = json_object_get(c, "equals");
    if (eq == NULL) {
        FAILF(SKR_E_MALFORMED, "%s: missing (expected the value claim '%s' must have)", path,
              show(name, b));
    }
    if (!json_is_string(eq) && !json_is_integer(eq) && !json_is_boolean(eq)) {
        FAILF(SKR_E_MALFORMED, "%s: expected a string, integer or boolean", path);
    }
    if (json_is_string(eq)) {
        const char *s = NULL;

        TRY(opt_string(c, "equals", path, SKR_POLICY_MAX_NAME, "the claim's value", &s));
    }
    TRY(skr_json_set(o, "claim", json_string(name)));
    TRY(skr_json_set(o, "equals", json_deep_copy(eq)));
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

/* The reference's policy: one anyOf entry per inner list, all with the same authority. */
static skr_err
policy_from_claims(json_t *claims, const char *authority, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *doc = json_object();
    _cleanup_(json_decrefp) json_t *any = json_array();
    size_t i;
    json_t *inner;

    ENSURE(doc != NULL && any != NULL, SKR_E_NOMEM, "out of memory");
    if (!json_is_array(claims) || json_array_size(claims) == 0) {
        FAIL(SKR_E_MALFORMED, "claims: expected a non-empty list of lists of {\"claim\", "
                              "\"equals\"} (each inner list: claims that must all hold)");
    }
    if (json_array_size(claims) > SKR_POLICY_MAX_LIST) {
        FAILF(SKR_E_TOO_LARGE, "claims: more than %d lists", SKR_POLICY_MAX_LIST);
    }
    if (authority == NULL) {
        FAIL(SKR_E_MALFORMED, "key.authority.endpoint: missing (expected the MAA endpoint "
                              "whose tokens the policy accepts, e.g. "
                              "sharedeus.eus.attest.azure.net)");
    }
    json_array_foreach(claims, i, inner)
    {
        _cleanup_(json_decrefp) json_t *branch = json_object();
        _cleanup_(json_decrefp) json_t *all = json_array();
        size_t j;
        json_t *c;

        ENSURE(branch != NULL && all != NULL, SKR_E_NOMEM, "out of memory");
        if (!json_is_array(inner) || json_array_size(inner) == 0) {
            FAILF(SKR_E_MALFORMED,
                  "claims[%zu]: expected a non-empty list of {\"claim\", \"equals\"}", i);
        }
        if (json_array_size(inner) > SKR_POLICY_MAX_LIST) {
            FAILF(SKR_E_TOO_LARGE, "claims[%zu]: more than %d claims", i, SKR_POLICY_MAX_LIST);
        }
        json_array_foreach(inner, j, c)
        {
            json_t *o = NULL;

            TRY(parse_claim(c, i, j, &o));
            ENSURE(json_array_append_new(all, o) == 0, SKR_E_NOMEM, "out of memory");
        }
        TRY(skr_json_set(branch, "authority", json_string(authority)));
        TRY(skr_json_set(branch, "allOf", TAKE_PTR(all)));
        ENSURE(json_array_append(any, branch) == 0, SKR_E_NOMEM, "out of memory");
    }
    TRY(skr_json_set(doc, "version", json_string("1.0.0")));
    TRY(skr_json_set(doc, "anyOf", TAKE_PTR(any)));
    TRY(skr_keyconfig_check_policy(doc, "claims"));
    *ret = TAKE_PTR(doc);
    return SKR_OK;
}

skr_err
skr_keyconfig_set_policy_text(struct skr_keyconfig *kc, struct skr_span text)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    char msg[384];
    skr_err e;

    ENSURE(kc != NULL, SKR_E_INVALID_ARG, "NULL argument");
    e = skr_json_parse_object(text, SKR_MAX_POLICY_BYTES, "release policy", &doc);
    if (e != SKR_OK) {
        last_msg(msg, sizeof(msg));
        FAILF(e, "release_policy_file: %s", msg);
    }
    TRY(skr_keyconfig_check_policy(doc, "release_policy_file"));
    json_decref(kc->policy);
    kc->policy = TAKE_PTR(doc);
    return SKR_OK;
}

/* ---- the configuration ---------------------------------------------------------------------- */

static skr_err
parse_kty(json_t *key, struct skr_keyconfig *kc)
{
    const char *kty = NULL;
    char b[KC_SHOW + 4];

    TRY(opt_string(key, "kty", "key.kty", 16, "RSA-HSM, EC-HSM or oct-HSM", &kty));
    if (kty == NULL || kty[0] == '\0' || strcmp(kty, "oct-HSM") == 0) {
        kc->type = SKR_KEYTYPE_OCT;
        kc->kty = "oct-HSM";
    } else if (strcmp(kty, "RSA-HSM") == 0) {
        kc->type = SKR_KEYTYPE_RSA;
        kc->kty = "RSA-HSM";
    } else if (strcmp(kty, "EC-HSM") == 0) {
        kc->type = SKR_KEYTYPE_EC;
        kc->kty = "EC-HSM";
    } else {
        FAILF(SKR_E_MALFORMED,
              "key.kty: '%s' is not supported: expected RSA-HSM, EC-HSM or oct-HSM (\"\" means "
              "oct-HSM; exportable keys must be HSM keys)",
              show(kty, b));
    }
    return SKR_OK;
}

static skr_err
parse_size(json_t *key, struct skr_keyconfig *kc)
{
    json_t *size = json_object_get(key, "key_size");
    const char *crv = NULL;

    if (size != NULL) {
        json_int_t v = json_integer_value(size);

        if (kc->type == SKR_KEYTYPE_EC) {
            FAIL(SKR_E_MALFORMED, "key.key_size: not for EC-HSM keys (expected key.crv: P-256, "
                                  "P-384 or P-521)");
        }
        if (!json_is_integer(size)) {
            FAIL(SKR_E_MALFORMED, "key.key_size: expected an integer number of bits");
        }
        if (kc->type == SKR_KEYTYPE_RSA && v != 2048 && v != 3072 && v != 4096) {
            FAIL(SKR_E_MALFORMED, "key.key_size: expected 2048, 3072 or 4096 for RSA-HSM");
        }
        if (kc->type == SKR_KEYTYPE_OCT && v != 128 && v != 192 && v != 256) {
            FAIL(SKR_E_MALFORMED, "key.key_size: expected 128, 192 or 256 for oct-HSM");
        }
        kc->bits = (unsigned int)v;
    }
    TRY(opt_string(key, "crv", "key.crv", 16, "P-256, P-384 or P-521", &crv));
    if (crv != NULL) {
        static const char *const curves[] = { "P-256", "P-384", "P-521" };

        if (kc->type != SKR_KEYTYPE_EC) {
            FAIL(SKR_E_MALFORMED, "key.crv: only for EC-HSM keys");
        }
        for (size_t i = 0; i < SKR_ARRAY_LEN(curves); i++) {
            if (strcmp(crv, curves[i]) == 0) {
                kc->crv = curves[i];
            }
        }
        if (kc->crv == NULL) {
            FAIL(SKR_E_MALFORMED, "key.crv: expected P-256, P-384 or P-521");
        }
    }
    return SKR_OK;
}

static skr_err
parse_key_ops(json_t *key, struct skr_keyconfig *kc)
{
    json_t *ops = json_object_get(key, "key_ops");
    size_t i;
    json_t *op;
    char b[KC_SHOW + 4];

    if (ops == NULL || json_is_null(ops)) {
        return SKR_OK; /* Go's nil slice: the vault's default operations */
    }
    if (!json_is_array(ops) || json_array_size(ops) > KC_MAX_KEY_OPS) {
        FAILF(SKR_E_MALFORMED,
              "key.key_ops: expected a list of at most %u operations (encrypt, "
              "decrypt, sign, verify, wrapKey, unwrapKey, import, export)",
              KC_MAX_KEY_OPS);
    }
    json_array_foreach(ops, i, op)
    {
        bool known = false;

        if (!json_is_string(op)) {
            FAILF(SKR_E_MALFORMED, "key.key_ops[%zu]: expected a string", i);
        }
        for (size_t j = 0; j < SKR_ARRAY_LEN(known_key_ops); j++) {
            known = known || strcmp(json_string_value(op), known_key_ops[j]) == 0;
        }
        if (!known) {
            FAILF(SKR_E_MALFORMED,
                  "key.key_ops[%zu]: '%s' is not an operation (expected encrypt, decrypt, sign, "
                  "verify, wrapKey, unwrapKey, import or export)",
                  i, show(json_string_value(op), b));
        }
        for (size_t j = 0; j < i; j++) {
            if (json_equal(op, json_array_get(ops, j))) {
                FAILF(SKR_E_MALFORMED, "key.key_ops[%zu]: '%s' is listed twice", i,
                      json_string_value(op));
            }
        }
    }
    kc->key_ops = json_incref(ops);
    return SKR_OK;
}

/* An endpoint as host[:port] or https://host[:port][/]; *ret (may be NULL) = the https URL. */
static skr_err
check_endpoint(const char *ep, const char *path, const char *expected, char **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    const char *u = NULL;
    char msg[384];

    skr_buf_init(&url, 1024);
    if (ep[0] == '\0') {
        FAILF(SKR_E_MALFORMED, "%s: empty (expected %s)", path, expected);
    }
    if (skr_endpoint_base(ep, &url, NULL) != SKR_OK) {
        last_msg(msg, sizeof(msg));
        FAILF(SKR_E_MALFORMED, "%s: %s (expected %s)", path, msg, expected);
    }
    if (ret != NULL) {
        TRY(skr_buf_cstr(&url, &u));
        TRY(dup_str(u, ret));
    }
    return SKR_OK;
}

static skr_err
parse_akv(json_t *akv, struct skr_keyconfig *kc)
{
    static const char *const members[] = { "endpoint", "api_version", "bearer_token", NULL };
    const char *ep = NULL;
    const char *api = NULL;
    const char *tok = NULL;

    if (akv == NULL) {
        return SKR_OK;
    }
    TRY(check_members(akv, "key.akv", members));
    TRY(opt_string(akv, "endpoint", "key.akv.endpoint", 512,
                   "the vault's host name, e.g. myvault.vault.azure.net", &ep));
    if (ep != NULL) {
        TRY(check_endpoint(ep, "key.akv.endpoint",
                           "the vault's host name, e.g. myvault.vault.azure.net", NULL));
        TRY(dup_str(ep, &kc->akv_endpoint));
    }
    TRY(opt_string(akv, "api_version", "key.akv.api_version", KC_MAX_API_VERSION + 12,
                   "api-version=7.4 or 7.4", &api));
    if (api != NULL && api[0] != '\0') {
        if (strncmp(api, "api-version=", 12) == 0) {
            api += 12;
        }
        if (api[0] == '\0' || strlen(api) > KC_MAX_API_VERSION) {
            FAIL(SKR_E_MALFORMED, "key.akv.api_version: expected api-version=7.4 or 7.4");
        }
        for (const char *p = api; *p != '\0'; p++) {
            char c = *p;

            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '.' || c == '-')) {
                FAIL(SKR_E_MALFORMED, "key.akv.api_version: expected api-version=7.4 or 7.4 "
                                      "(letters, digits, '.' and '-')");
            }
        }
        (void)snprintf(kc->api_version, sizeof(kc->api_version), "%s", api);
    }
    /* the token is never shown: a placeholder is reported without its text */
    tok = json_string_value(json_object_get(akv, "bearer_token"));
    if (json_object_get(akv, "bearer_token") != NULL && tok == NULL) {
        FAIL(SKR_E_MALFORMED, "key.akv.bearer_token: expected a string (an access token for the "
                              "vault) or \"\"");
    }
    if (tok != NULL && tok[0] != '\0') {
        size_t n = json_string_length(json_object_get(akv, "bearer_token"));

        if (is_placeholder(tok)) {
            FAIL(SKR_E_MALFORMED, "key.akv.bearer_token: still the example's placeholder: "
                                  "expected an access token for the vault, or \"\" to use "
                                  "--token, --token-file, AZURE_ACCESS_TOKEN or the identity");
        }
        if (n > SKR_MAX_JWT_BYTES) {
            FAILF(SKR_E_TOO_LARGE, "key.akv.bearer_token: longer than %u bytes",
                  (unsigned int)SKR_MAX_JWT_BYTES);
        }
        for (size_t i = 0; i < n; i++) {
            if (tok[i] <= 0x20 || tok[i] >= 0x7f) {
                FAILF(SKR_E_MALFORMED,
                      "key.akv.bearer_token: character %zu is not visible ASCII (expected an "
                      "access token)",
                      i);
            }
        }
        TRY(skr_secret_new(n + 1, &kc->bearer_token));
        memcpy(kc->bearer_token->ptr, tok, n);
        kc->bearer_token->ptr[n] = '\0';
    }
    return SKR_OK;
}

static skr_err
parse_key(json_t *key, struct skr_keyconfig *kc)
{
    static const char *const members[] = { "kid",      "kty", "key_ops",    "authority", "akv",
                                           "key_size", "crv", "exportable", "immutable", NULL };
    static const char *const auth_members[] = { "endpoint", "tee_type", "api_version", NULL };
    const char *kid = NULL;
    json_t *auth = NULL;
    json_t *akv = NULL;
    char b[KC_SHOW + 4];

    TRY(check_members(key, "key", members));
    TRY(opt_string(key, "kid", "key.kid", 127, "the key name: 1..127 letters, digits and '-'",
                   &kid));
    if (kid != NULL && kid[0] != '\0') {
        if (!valid_key_name(kid)) {
            FAILF(SKR_E_MALFORMED,
                  "key.kid: '%s' is not a key name (expected 1..127 letters, digits and '-')",
                  show(kid, b));
        }
        (void)snprintf(kc->name, sizeof(kc->name), "%s", kid);
    }
    TRY(parse_kty(key, kc));
    TRY(parse_size(key, kc));
    TRY(parse_key_ops(key, kc));
    TRY(opt_bool(key, "exportable", "key.exportable", &kc->exportable));
    TRY(opt_bool(key, "immutable", "key.immutable", &kc->immutable));
    TRY(opt_obj(key, "authority", "key.authority", &auth));
    if (auth != NULL) {
        const char *ep = NULL;
        const char *ignored = NULL;

        TRY(check_members(auth, "key.authority", auth_members));
        TRY(opt_string(auth, "tee_type", "key.authority.tee_type", 64, "a TEE type", &ignored));
        TRY(opt_string(auth, "api_version", "key.authority.api_version", 64, "an api-version",
                       &ignored));
        TRY(opt_string(auth, "endpoint", "key.authority.endpoint", 512,
                       "the MAA endpoint, e.g. sharedeus.eus.attest.azure.net", &ep));
        if (ep != NULL) {
            TRY(check_endpoint(ep, "key.authority.endpoint",
                               "the MAA endpoint, e.g. sharedeus.eus.attest.azure.net",
                               &kc->authority));
        }
    }
    TRY(opt_obj(key, "akv", "key.akv", &akv));
    return parse_akv(akv, kc);
}

static skr_err
parse_kdf(json_t *kd, struct skr_keyconfig *kc)
{
    static const char *const members[] = { "salt", "label", NULL };
    const char *salt = NULL;
    const char *label = NULL;

    if (kd == NULL) {
        return SKR_OK;
    }
    TRY(check_members(kd, "key_derivation", members));
    TRY(opt_string(kd, "salt", "key_derivation.salt", 2 * SKR_MAX_KDF_SALT_BYTES,
                   "hex digits (an even number)", &salt));
    if (salt != NULL && salt[0] != '\0') {
        if (strlen(salt) % 2 != 0 ||
            skr_hex_decode(skr_span_str(salt), false, &kc->salt) != SKR_OK) {
            FAIL(SKR_E_MALFORMED,
                 "key_derivation.salt: expected hex digits (an even number of 0-9 a-f A-F)");
        }
    }
    TRY(opt_string(kd, "label", "key_derivation.label", SKR_MAX_KDF_LABEL, "a label (text)",
                   &label));
    if (label != NULL && label[0] != '\0') {
        TRY(dup_str(label, &kc->label));
    }
    return SKR_OK;
}

static skr_err
parse_policy_source(json_t *doc, struct skr_keyconfig *kc)
{
    json_t *claims = json_object_get(doc, "claims");
    json_t *rp = json_object_get(doc, "release_policy");
    json_t *rpf = json_object_get(doc, "release_policy_file");
    int n = (claims != NULL) + (rp != NULL) + (rpf != NULL);

    if (!kc->exportable) {
        if (n > 0) {
            FAIL(SKR_E_MALFORMED, "key.exportable is false: a non-exportable key must not have a "
                                  "release policy (remove claims / release_policy / "
                                  "release_policy_file)");
        }
        if (kc->immutable) {
            FAIL(SKR_E_MALFORMED, "key.immutable: only for an exportable key's release policy");
        }
        return SKR_OK;
    }
    if (n == 0) {
        FAIL(SKR_E_MALFORMED, "claims: missing (an exportable key needs a release policy: give "
                              "claims, the reference's list of allOf lists, or release_policy, "
                              "a policy object, or release_policy_file, a path)");
    }
    if (n > 1) {
        FAILF(SKR_E_MALFORMED,
              "%s: not together with %s (expected exactly one of claims, release_policy and "
              "release_policy_file)",
              rpf != NULL ? "release_policy_file" : "release_policy",
              claims != NULL ? "claims" : "release_policy");
    }
    if (claims != NULL) {
        return policy_from_claims(claims, kc->authority, &kc->policy);
    }
    if (rp != NULL) {
        TRY(skr_keyconfig_check_policy(rp, "release_policy"));
        kc->policy = json_deep_copy(rp);
        ENSURE(kc->policy != NULL, SKR_E_NOMEM, "out of memory");
        return SKR_OK;
    }
    {
        const char *path = NULL;

        TRY(opt_string(doc, "release_policy_file", "release_policy_file", 4096,
                       "a path to a policy JSON file", &path));
        if (path == NULL || path[0] == '\0') {
            FAIL(SKR_E_MALFORMED, "release_policy_file: empty (expected a path)");
        }
        return dup_str(path, &kc->policy_file);
    }
}

skr_err
skr_keyconfig_parse(struct skr_span text, struct skr_keyconfig **ret)
{
    static const char *const members[] = { "key",      "key_derivation", "claims",
                                           "identity", "release_policy", "release_policy_file",
                                           NULL };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    _cleanup_(skr_keyconfig_freep) struct skr_keyconfig *kc = NULL;
    json_t *key = NULL;
    json_t *kd = NULL;
    json_t *id = NULL;
    char msg[384];
    skr_err e;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (text.len > SKR_MAX_KEY_CONFIG_BYTES) {
        FAILF(SKR_E_TOO_LARGE, "larger than %u bytes", SKR_MAX_KEY_CONFIG_BYTES);
    }
    e = skr_json_parse_object(text, SKR_MAX_KEY_CONFIG_BYTES, "key configuration", &doc);
    if (e != SKR_OK) {
        last_msg(msg, sizeof(msg));
        FAILF(e, "%s", msg);
    }
    kc = calloc(1, sizeof(*kc));
    ENSURE(kc != NULL, SKR_E_NOMEM, "out of memory");
    kc->exportable = true;
    skr_buf_init(&kc->salt, SKR_MAX_KDF_SALT_BYTES);
    TRY(check_members(doc, "", members));
    key = json_object_get(doc, "key");
    if (key == NULL) {
        FAIL(SKR_E_MALFORMED, "key: missing (expected {\"kid\", \"kty\", \"authority\", \"akv\"})");
    }
    TRY(opt_obj(doc, "key", "key", &key));
    TRY(parse_key(key, kc));
    TRY(opt_obj(doc, "key_derivation", "key_derivation", &kd));
    TRY(parse_kdf(kd, kc));
    TRY(opt_obj(doc, "identity", "identity", &id));
    if (id != NULL) {
        static const char *const id_members[] = { "client_id", NULL };
        const char *cid = NULL;

        TRY(check_members(id, "identity", id_members));
        TRY(opt_string(id, "client_id", "identity.client_id", 128,
                       "the managed identity's client id", &cid));
        if (cid != NULL && cid[0] != '\0') {
            TRY(dup_str(cid, &kc->client_id));
        }
    }
    TRY(parse_policy_source(doc, kc));
    *ret = TAKE_PTR(kc);
    return SKR_OK;
}

/* ---- key material ----------------------------------------------------------------------- */

void
skr_keymaterial_done(struct skr_keymaterial *km)
{
    if (km == NULL) {
        return;
    }
    EVP_PKEY_free(km->pkey);
    skr_secret_free(km->oct);
    *km = (struct skr_keymaterial){ 0 };
}

/* type, bits and crv of an RSA or EC key within the supported sizes. */
static skr_err
classify_pkey(struct skr_keymaterial *km)
{
    int id = EVP_PKEY_get_base_id(km->pkey);
    int bits = EVP_PKEY_get_bits(km->pkey);

    if (id == EVP_PKEY_RSA) {
        if (bits != 2048 && bits != 3072 && bits != 4096) {
            FAILF(SKR_E_UNSUPPORTED, "an RSA key of %d bits (expected 2048, 3072 or 4096)", bits);
        }
        km->type = SKR_KEYTYPE_RSA;
        km->bits = (unsigned int)bits;
        return SKR_OK;
    }
    if (id == EVP_PKEY_EC) {
        char group[64] = "";
        size_t n = 0;

        if (EVP_PKEY_get_utf8_string_param(km->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &n) != 1) {
            FAIL(SKR_E_UNSUPPORTED, "an EC key on an unnamed curve (expected P-256, P-384 or "
                                    "P-521)");
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            km->crv = "P-256";
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            km->crv = "P-384";
        } else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
            km->crv = "P-521";
        } else {
            FAILF(SKR_E_UNSUPPORTED, "an EC key on curve %.32s (expected P-256, P-384 or P-521)",
                  group);
        }
        km->type = SKR_KEYTYPE_EC;
        km->bits = (unsigned int)bits;
        return SKR_OK;
    }
    FAIL(SKR_E_UNSUPPORTED, "a private key that is neither RSA nor EC");
}

skr_err
skr_keymaterial_generate(const struct skr_keyconfig *kc, struct skr_keymaterial *ret)
{
    struct skr_keymaterial km = { .type = kc->type, .format = "generated" };

    ENSURE(kc != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (kc->type == SKR_KEYTYPE_OCT) {
        km.bits = kc->bits != 0 ? kc->bits : 256;
        TRY(skr_secret_new(km.bits / 8, &km.oct));
        if (RAND_priv_bytes(km.oct->ptr, (int)km.oct->len) != 1) {
            skr_keymaterial_done(&km);
            FAIL(SKR_E_INTERNAL, "RAND_priv_bytes failed");
        }
    } else if (kc->type == SKR_KEYTYPE_RSA) {
        km.pkey = EVP_RSA_gen(kc->bits != 0 ? kc->bits : 2048);
        ENSURE(km.pkey != NULL, SKR_E_INTERNAL, "RSA key generation failed");
    } else {
        char crv[8];

        (void)snprintf(crv, sizeof(crv), "%s", kc->crv != NULL ? kc->crv : "P-256");
        km.pkey = EVP_EC_gen(crv);
        ENSURE(km.pkey != NULL, SKR_E_INTERNAL, "EC key generation failed");
    }
    if (km.pkey != NULL) {
        skr_err e = classify_pkey(&km);

        if (e != SKR_OK) {
            skr_keymaterial_done(&km);
            return e;
        }
    }
    *ret = km;
    return SKR_OK;
}

static bool
is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static struct skr_span
trim(struct skr_span s)
{
    while (s.len > 0 && is_ws(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_ws(s.ptr[s.len - 1])) {
        s.len--;
    }
    return s;
}

static bool
is_hex_text(struct skr_span s)
{
    size_t digits = 0;

    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];

        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
            digits++;
        } else if (!is_ws(c)) {
            return false;
        }
    }
    return digits > 0;
}

static skr_err
oct_from(struct skr_span bytes, const char *format, struct skr_keymaterial *km)
{
    if (bytes.len != 16 && bytes.len != 24 && bytes.len != 32) {
        FAILF(SKR_E_UNSUPPORTED, "%s: an oct key of %zu bytes (expected 16, 24 or 32)", format,
              bytes.len);
    }
    TRY(skr_secret_from(bytes, &km->oct));
    km->type = SKR_KEYTYPE_OCT;
    km->bits = (unsigned int)bytes.len * 8;
    km->format = format;
    return SKR_OK;
}

static bool
contains(struct skr_span s, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= s.len; i++) {
        if (CRYPTO_memcmp(s.ptr + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static skr_err
load_pem(struct skr_span t, struct skr_keymaterial *km)
{
    _cleanup_(BIO_free_allp) BIO *bio = NULL;
    static const struct {
        const char *label, *format;
    } kinds[] = {
        { "-----BEGIN PRIVATE KEY-----", "PEM (PKCS#8)" },
        { "-----BEGIN RSA PRIVATE KEY-----", "PEM (PKCS#1)" },
        { "-----BEGIN EC PRIVATE KEY-----", "PEM (SEC1)" },
    };
    const char *format = NULL;

    for (size_t i = 0; i < SKR_ARRAY_LEN(kinds); i++) {
        size_t n = strlen(kinds[i].label);

        if (t.len >= n && CRYPTO_memcmp(t.ptr, kinds[i].label, n) == 0) {
            format = kinds[i].format;
        }
    }
    if (format == NULL) {
        if (t.len >= 29 && CRYPTO_memcmp(t.ptr, "-----BEGIN ENCRYPTED PRIVATE", 28) == 0) {
            FAIL(SKR_E_UNSUPPORTED, "PEM: an encrypted private key (decrypt it first, e.g. "
                                    "openssl pkey -in FILE -out PLAIN.pem)");
        }
        FAIL(SKR_E_MALFORMED, "PEM: expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY "
                              "block (a public key or certificate cannot be imported)");
    }
    if (contains(t, "Proc-Type: 4,ENCRYPTED")) {
        FAIL(SKR_E_UNSUPPORTED, "PEM: an encrypted private key (decrypt it first, e.g. openssl "
                                "pkey -in FILE -out PLAIN.pem)");
    }
    ENSURE(t.len <= SKR_MAX_SECRET_BYTES, SKR_E_TOO_LARGE, "PEM: larger than 64 KiB");
    bio = BIO_new_mem_buf(t.ptr, (int)t.len);
    ENSURE(bio != NULL, SKR_E_NOMEM, "out of memory");
    km->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (km->pkey == NULL) {
        skr_err e = skr_err_atf(SKR_E_MALFORMED, __FILE__, __LINE__,
                                "%s: not a readable private key", format);

        skr_err_add_ossl();
        return e;
    }
    km->format = format;
    return SKR_OK;
}

static skr_err
load_der(struct skr_span d, struct skr_keymaterial *km)
{
    const unsigned char *p = d.ptr;
    PKCS8_PRIV_KEY_INFO *p8;

    ENSURE(d.len <= SKR_MAX_SECRET_BYTES, SKR_E_TOO_LARGE, "DER: larger than 64 KiB");
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)d.len);
    if (p8 != NULL) {
        bool whole = p == d.ptr + d.len;

        km->pkey = whole ? EVP_PKCS82PKEY(p8) : NULL;
        PKCS8_PRIV_KEY_INFO_free(p8);
        if (km->pkey == NULL) {
            skr_err e = skr_err_at(SKR_E_MALFORMED, __FILE__, __LINE__,
                                   whole ? "DER (PKCS#8): not a usable RSA or EC private key"
                                         : "DER (PKCS#8): bytes after the key");

            skr_err_add_ossl();
            return e;
        }
        km->format = "DER (PKCS#8)";
        return SKR_OK;
    }
    ERR_clear_error();
    p = d.ptr;
    km->pkey = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, (long)d.len);
    if (km->pkey != NULL && p == d.ptr + d.len) {
        km->format = "DER (PKCS#1)";
        return SKR_OK;
    }
    EVP_PKEY_free(km->pkey);
    ERR_clear_error();
    p = d.ptr;
    km->pkey = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)d.len);
    if (km->pkey != NULL && p == d.ptr + d.len) {
        km->format = "DER (SEC1)";
        return SKR_OK;
    }
    EVP_PKEY_free(km->pkey);
    km->pkey = NULL;
    ERR_clear_error();
    FAIL(SKR_E_MALFORMED, "DER: not a PKCS#8, PKCS#1 or SEC1 private key");
}

/* Re-reads a key through PKCS#8 (in wiped memory), so that a key libjose built through the
 * legacy EC_KEY / RSA structures answers every provider parameter query. */
static skr_err
normalise_pkey(struct skr_keymaterial *km)
{
    _cleanup_(skr_buf_donep) struct skr_buf der = { 0 };
    unsigned char *p = NULL;
    const unsigned char *q;
    EVP_PKEY *pk;
    int n;

    n = i2d_PrivateKey(km->pkey, NULL);
    ENSURE(n > 0 && (size_t)n <= SKR_MAX_SECRET_BYTES, SKR_E_INTERNAL, "cannot encode the key");
    skr_buf_init(&der, SKR_MAX_SECRET_BYTES);
    TRY(skr_buf_reserve(&der, (size_t)n));
    p = der.ptr;
    ENSURE(i2d_PrivateKey(km->pkey, &p) == n, SKR_E_INTERNAL, "cannot encode the key");
    der.len = (size_t)n;
    q = der.ptr;
    pk = d2i_AutoPrivateKey(NULL, &q, n);
    ENSURE(pk != NULL, SKR_E_INTERNAL, "cannot decode the key");
    EVP_PKEY_free(km->pkey);
    km->pkey = pk;
    return SKR_OK;
}

static skr_err
load_jwk(struct skr_span t, struct skr_keymaterial *km)
{
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(json_decrefp) json_t *copy = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf k = { 0 };
    const char *kty = NULL;
    char msg[384];

    if (skr_json_parse_object(t, SKR_MAX_SECRET_BYTES, "JWK", &jwk) != SKR_OK) {
        last_msg(msg, sizeof(msg));
        FAILF(SKR_E_MALFORMED, "JWK: %s", msg);
    }
    kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL) {
        FAIL(SKR_E_MALFORMED, "JWK: kty: missing (expected RSA, EC or oct)");
    }
    if (strcmp(kty, "oct") == 0 || strcmp(kty, "oct-HSM") == 0) {
        const char *kv = json_string_value(json_object_get(jwk, "k"));

        skr_buf_init(&k, 64);
        if (kv == NULL || skr_b64_decode(skr_span_str(kv), SKR_B64_URL, &k) != SKR_OK) {
            FAIL(SKR_E_MALFORMED, "JWK: k: expected the key bytes in base64url");
        }
        return oct_from(skr_buf_span(&k), "JWK", km);
    }
    if (strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0 && strcmp(kty, "EC") != 0 &&
        strcmp(kty, "EC-HSM") != 0) {
        FAIL(SKR_E_MALFORMED, "JWK: kty: expected RSA, EC or oct (or their -HSM forms)");
    }
    if (json_object_get(jwk, "d") == NULL) {
        FAIL(SKR_E_MALFORMED, "JWK: d: missing (a public key cannot be imported: expected the "
                              "private members)");
    }
    copy = json_deep_copy(jwk);
    ENSURE(copy != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(copy, "kty", json_string(kty[0] == 'R' ? "RSA" : "EC")));
    if (skr_jwk_to_pkey(copy, &km->pkey) != SKR_OK) {
        last_msg(msg, sizeof(msg));
        FAILF(SKR_E_MALFORMED, "JWK: %s", msg);
    }
    km->format = "JWK";
    return normalise_pkey(km);
}

skr_err
skr_keymaterial_load(struct skr_span data, struct skr_keymaterial *ret)
{
    struct skr_keymaterial km = { 0 };
    struct skr_span t = trim(data);
    skr_err e;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (t.len == 0) {
        FAIL(SKR_E_MALFORMED, "empty (expected a PEM, DER, JWK, hex or raw key)");
    }
    if (t.len >= 10 && CRYPTO_memcmp(t.ptr, "-----BEGIN", 10) == 0) {
        e = load_pem(t, &km);
    } else if (t.ptr[0] == '{') {
        e = load_jwk(t, &km);
    } else if (is_hex_text(t)) {
        _cleanup_(skr_buf_donep) struct skr_buf k = { 0 };

        skr_buf_init(&k, SKR_MAX_SECRET_BYTES);
        if (skr_hex_decode(t, true, &k) != SKR_OK) {
            FAIL(SKR_E_MALFORMED, "hex: expected an even number of hex digits");
        }
        e = oct_from(skr_buf_span(&k), "hex", &km);
    } else if ((data.len == 16 || data.len == 24 || data.len == 32) &&
               !(data.ptr[0] == 0x30 && data.len > 2 && data.ptr[1] == data.len - 2)) {
        e = oct_from(data, "raw", &km);
    } else {
        e = load_der(data, &km);
    }
    if (e == SKR_OK && km.pkey != NULL) {
        e = classify_pkey(&km);
        if (e != SKR_OK) {
            char msg[384];

            last_msg(msg, sizeof(msg));
            e = skr_err_atf(e, __FILE__, __LINE__, "%s: %s", km.format, msg);
        }
    }
    if (e != SKR_OK) {
        skr_keymaterial_done(&km);
        return e;
    }
    *ret = km;
    return SKR_OK;
}

static const char *
type_name(enum skr_keytype t)
{
    return t == SKR_KEYTYPE_RSA ? "RSA" : t == SKR_KEYTYPE_EC ? "EC" : "oct";
}

skr_err
skr_keymaterial_check(const struct skr_keyconfig *kc, const struct skr_keymaterial *km)
{
    ENSURE(kc != NULL && km != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (kc->type != km->type) {
        FAILF(SKR_E_MALFORMED, "%s: an %s key, but key.kty is %s", km->format, type_name(km->type),
              kc->kty);
    }
    if (kc->bits != 0 && km->type != SKR_KEYTYPE_EC && kc->bits != km->bits) {
        FAILF(SKR_E_MALFORMED, "%s: a key of %u bits, but key.key_size is %u", km->format, km->bits,
              kc->bits);
    }
    if (kc->crv != NULL && km->type == SKR_KEYTYPE_EC && strcmp(kc->crv, km->crv) != 0) {
        FAILF(SKR_E_MALFORMED, "%s: a key on %s, but key.crv is %s", km->format, km->crv, kc->crv);
    }
    return SKR_OK;
}

skr_err
skr_keymaterial_public_jwk(const struct skr_keymaterial *km, json_t **ret)
{
    ENSURE(km != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    *ret = NULL;
    if (km->pkey == NULL) {
        return SKR_OK;
    }
    return skr_jwk_from_pkey(km->pkey, false, ret);
}

/* ---- request bodies ----------------------------------------------------------------------- */

/* ,"name":"<base64url of the big-endian bytes of param>" (pad: at least that many bytes). */
static skr_err
append_bn(struct skr_buf *out, EVP_PKEY *pk, const char *name, const char *param, size_t pad,
          bool redact)
{
    BIGNUM *bn = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *bytes = NULL;
    int n;
    skr_err e = SKR_OK;

    TRY(skr_buf_printf(out, ",\"%s\":\"", name));
    if (redact) {
        TRY(skr_buf_append_str(out, "<redacted>"));
        return skr_buf_append_byte(out, '"');
    }
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1 || bn == NULL) {
        FAILF(SKR_E_INVALID_ARG, "the key has no %s", name);
    }
    n = BN_num_bytes(bn);
    if ((size_t)n < pad) {
        n = (int)pad;
    }
    e = skr_secret_new(n > 0 ? (size_t)n : 1, &bytes);
    if (e == SKR_OK && BN_bn2binpad(bn, bytes->ptr, n) != n) {
        e = skr_err_at(SKR_E_INTERNAL, __FILE__, __LINE__, "BN_bn2binpad failed");
    }
    BN_clear_free(bn);
    TRY(e);
    TRY(skr_b64_encode(skr_secret_span(bytes), SKR_B64_URL, out));
    return skr_buf_append_byte(out, '"');
}

/* ,"name":<compact JSON of v> */
static skr_err
append_json(struct skr_buf *out, const char *name, const json_t *v)
{
    TRY(skr_buf_printf(out, ",\"%s\":", name));
    return skr_json_dump(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY, out);
}

static skr_err
append_tail(const struct skr_keyconfig *kc, struct skr_buf *out)
{
    _cleanup_(json_decrefp) json_t *rp = NULL;

    TRY(skr_buf_printf(out, ",\"hsm\":true,\"attributes\":{\"exportable\":%s}",
                       kc->exportable ? "true" : "false"));
    if (kc->exportable) {
        ENSURE(kc->policy != NULL, SKR_E_INVALID_ARG, "no release policy");
        TRY(skr_release_policy_request(kc->policy, kc->immutable, &rp));
        TRY(append_json(out, "release_policy", rp));
    }
    return skr_buf_append_byte(out, '}');
}

skr_err
skr_keyconfig_import_body(const struct skr_keyconfig *kc, const struct skr_keymaterial *km,
                          bool redact, struct skr_buf *out)
{
    ENSURE(kc != NULL && km != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(skr_keymaterial_check(kc, km));
    if (km->type == SKR_KEYTYPE_OCT) {
        ENSURE(km->oct != NULL, SKR_E_INVALID_ARG, "no oct key");
        TRY(skr_buf_append_str(out, "{\"key\":{\"kty\":\"oct-HSM\""));
        if (kc->key_ops != NULL) {
            TRY(append_json(out, "key_ops", kc->key_ops));
        }
        TRY(skr_buf_append_str(out, ",\"k\":\""));
        if (redact) {
            TRY(skr_buf_append_str(out, "<redacted>"));
        } else {
            TRY(skr_b64_encode(skr_secret_span(km->oct), SKR_B64_URL, out));
        }
        TRY(skr_buf_printf(out, "\",\"key_size\":%zu}", km->oct->len * 8));
        return append_tail(kc, out);
    }
    ENSURE(km->pkey != NULL, SKR_E_INVALID_ARG, "no private key");
    if (km->type == SKR_KEYTYPE_RSA) {
        /* members in jwx's (sorted) order, as the reference marshals them */
        TRY(skr_buf_append_str(out, "{\"key\":{\"kty\":\"RSA\""));
        TRY(append_bn(out, km->pkey, "d", OSSL_PKEY_PARAM_RSA_D, 0, redact));
        TRY(append_bn(out, km->pkey, "dp", OSSL_PKEY_PARAM_RSA_EXPONENT1, 0, redact));
        TRY(append_bn(out, km->pkey, "dq", OSSL_PKEY_PARAM_RSA_EXPONENT2, 0, redact));
        TRY(append_bn(out, km->pkey, "e", OSSL_PKEY_PARAM_RSA_E, 0, false));
        if (kc->key_ops != NULL) {
            TRY(append_json(out, "key_ops", kc->key_ops));
        }
        TRY(append_bn(out, km->pkey, "n", OSSL_PKEY_PARAM_RSA_N, 0, false));
        TRY(append_bn(out, km->pkey, "p", OSSL_PKEY_PARAM_RSA_FACTOR1, 0, redact));
        TRY(append_bn(out, km->pkey, "q", OSSL_PKEY_PARAM_RSA_FACTOR2, 0, redact));
        TRY(append_bn(out, km->pkey, "qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0, redact));
    } else {
        size_t flen = (km->bits + 7) / 8;

        TRY(skr_buf_printf(out, "{\"key\":{\"kty\":\"EC\",\"crv\":\"%s\"", km->crv));
        TRY(append_bn(out, km->pkey, "d", OSSL_PKEY_PARAM_PRIV_KEY, flen, redact));
        if (kc->key_ops != NULL) {
            TRY(append_json(out, "key_ops", kc->key_ops));
        }
        TRY(append_bn(out, km->pkey, "x", OSSL_PKEY_PARAM_EC_PUB_X, flen, false));
        TRY(append_bn(out, km->pkey, "y", OSSL_PKEY_PARAM_EC_PUB_Y, flen, false));
    }
    TRY(skr_buf_append_byte(out, '}'));
    return append_tail(kc, out);
}

skr_err
skr_keyconfig_create_body(const struct skr_keyconfig *kc, struct skr_buf *out)
{
    _cleanup_(json_decrefp) json_t *b = json_object();
    _cleanup_(json_decrefp) json_t *attrs = json_object();
    json_t *rp = NULL;

    ENSURE(kc != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(b != NULL && attrs != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(b, "kty", json_string(kc->kty)));
    if (kc->type == SKR_KEYTYPE_EC) {
        TRY(skr_json_set(b, "crv", json_string(kc->crv != NULL ? kc->crv : "P-256")));
    } else {
        unsigned int def = kc->type == SKR_KEYTYPE_RSA ? 2048 : 256;

        TRY(skr_json_set(b, "key_size", json_integer(kc->bits != 0 ? kc->bits : def)));
    }
    if (kc->key_ops != NULL) {
        TRY(skr_json_set(b, "key_ops", json_deep_copy(kc->key_ops)));
    }
    TRY(skr_json_set(attrs, "exportable", json_boolean(kc->exportable)));
    TRY(skr_json_set(b, "attributes", TAKE_PTR(attrs)));
    if (kc->exportable) {
        ENSURE(kc->policy != NULL, SKR_E_INVALID_ARG, "no release policy");
        TRY(skr_release_policy_request(kc->policy, kc->immutable, &rp));
        TRY(skr_json_set(b, "release_policy", rp));
    }
    return skr_json_dump(b, JSON_COMPACT | JSON_PRESERVE_ORDER, out);
}
