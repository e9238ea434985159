/*
 * imds.c - the IMDS emulator (http): managed identity tokens, THIM, and the Entra endpoints that
 * workload identity (MSAL) uses, all on one listener (PROTOCOLS.md §4.1, §6).
 *
 * Managed identity (§6.1):
 *   GET /metadata/identity/oauth2/token[/]?api-version=2018-02-01|2019-08-01&resource=R
 *       [&client_id=|&object_id=|&msi_res_id=]   header "Metadata: true" mandatory
 *   200 {"access_token","client_id","expires_in","expires_on","ext_expires_in","not_before",
 *        "refresh_token":"","resource","token_type":"Bearer"}, every value a string.
 *   Errors {"error","error_description"}: 400 invalid_request without the header (or with
 *   X-Forwarded-For, which IMDS refuses), for a missing or unknown api-version, a missing
 *   resource, several selectors, or a selector that is not emu.json's managed identity
 *   ("Identity not found"; GUIDs and resource ids compare case-insensitively); 400
 *   invalid_resource (AADSTS500011) for a resource that is not an https:// or api:// URI or a
 *   GUID.
 * THIM (§4.1): GET /metadata/THIM/amd/certification (header "Metadata: true") -> the THIM JSON
 *   of security-context/host-amd-cert-base64, decoded.
 *
 * Access tokens (emu_entra_issue): RS256 by the Entra key, header {"alg","kid","typ":"JWT"};
 * claims aud (the resource as given), iss "https://sts.windows.net/<tenant>/", iat = nbf =
 * now - 300 (as Entra backdates), exp = now + EMU_ENTRA_LIFETIME_S (3600 s: real managed
 * identity tokens live up to 24 h, one hour keeps expiry paths testable), appid, appidacr "2",
 * idp, oid, sub, tid, uti, ver "1.0", xms_mirid and xms_az_rid (= msi_res_id), and
 * "skr_emulated": true.
 *
 * Entra (§6.2), with <base> = the listener's URL (ctx->imds_url):
 *   GET /common/discovery/instance?api-version=1.1&authorization_endpoint=<base>/<t>/...
 *       -> {"tenant_discovery_endpoint":"<base>/<t>/v2.0/.well-known/openid-configuration",
 *           "api-version":"1.1","metadata":[{preferred_network, preferred_cache, aliases}]}
 *   GET /<tenant>/v2.0/.well-known/openid-configuration -> OIDC metadata (issuer
 *       "<base>/<tenant>/v2.0", token_endpoint, jwks_uri, ...)
 *   GET /<tenant>/discovery/v2.0/keys -> JWKS of the Entra certificate (kid, kty, use, n, e,
 *       x5t, x5c)
 *   POST /<tenant>/oauth2/v2.0/token (application/x-www-form-urlencoded) with
 *       grant_type=client_credentials, client_assertion_type=urn:ietf:params:oauth:
 *       client-assertion-type:jwt-bearer, client_assertion, client_id, scope "<R>/.default ..."
 *       -> {"token_type":"Bearer","expires_in":N,"ext_expires_in":N,"access_token"} (numbers).
 *   client_id must be emu.json's managed_identity.client_id or listed in the optional emu.json
 *   array "workload_client_ids" (init does not write it; add ids by hand). For such an extra
 *   client oid and sub are the client id (the emulator knows no service principal for it).
 *   The client assertion (the projected Kubernetes service account token) is parsed as a JWS
 *   but its signature is NOT checked: the emulator does not know the cluster issuer's keys
 *   (real Entra fetches them through the federated credential's issuer URL). It must carry
 *   iss and sub, an exp in the future (60 s skew) and an aud that is or contains
 *   "api://AzureADTokenExchange". Errors are AAD's {"error","error_description",
 *   "error_codes"}: 400 invalid_request / unsupported_grant_type / invalid_scope /
 *   unauthorized_client, 401 invalid_client for assertion problems.
 * Anything else: 404; a known path with another method: 405.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "b64.h"
#include "buf.h"
#include "emu.h"
#include "err.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "service.h"
#include "skr_limits.h"

#define IMDS_TOKEN_PATH      "/metadata/identity/oauth2/token"
#define IMDS_THIM_PATH       "/metadata/THIM/amd/certification"
#define ENTRA_DISCOVERY      "/common/discovery/instance"
#define ENTRA_OIDC_SUFFIX    "/v2.0/.well-known/openid-configuration"
#define ENTRA_KEYS_SUFFIX    "/discovery/v2.0/keys"
#define ENTRA_TOKEN_SUFFIX   "/oauth2/v2.0/token"
#define ENTRA_TOKEN_EXCHANGE "api://AzureADTokenExchange"
#define ENTRA_JWT_BEARER     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define EMU_MAX_RESOURCE     512u
#define EMU_MAX_FORM_VALUE   (SKR_MAX_JWT_BYTES)
#define EMU_URL_MAX          1024u

/* ---- small helpers ---------------------------------------------------------------------- */

static skr_err
respond_new(struct skr_http_response *resp, unsigned int status, json_t *v)
{
    skr_err e;

    ENSURE(v != NULL, SKR_E_NOMEM, "json_pack");
    e = skr_http_respond_json(resp, status, v);
    json_decref(v);
    return e;
}

/* IMDS error shape. */
static skr_err
imds_error(struct skr_http_response *resp, unsigned int status, const char *error, const char *desc)
{
    return respond_new(resp, status,
                       json_pack("{s:s, s:s}", "error", error, "error_description", desc));
}

/* AAD error shape: "AADSTS<code>: <desc>" plus error_codes. */
static skr_err
aad_error(struct skr_http_response *resp, unsigned int status, const char *error, unsigned int code,
          const char *desc)
{
    char msg[512];
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;

    snprintf(msg, sizeof(msg), "AADSTS%u: %s", code, desc);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
    return respond_new(resp, status,
                       json_pack("{s:s, s:s, s:[I], s:s}", "error", error, "error_description", msg,
                                 "error_codes", (json_int_t)code, "timestamp", ts));
}

static bool
is_guid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (strlen(s) != sizeof(shape) - 1) {
        return false;
    }
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* An https:// or api:// URI or a GUID, printable, without spaces, bounded. */
static bool
resource_ok(const char *r)
{
    size_t n = strlen(r);

    if (n == 0 || n > EMU_MAX_RESOURCE) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i] <= ' ' || r[i] >= 0x7f) {
            return false;
        }
    }
    if (is_guid(r)) {
        return true;
    }
    if (strncmp(r, "https://", 8) == 0) {
        return n > 8 && r[8] != '/';
    }
    if (strncmp(r, "api://", 6) == 0) {
        return n > 6;
    }
    return false;
}

static bool
starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* path == "/" + tenant + suffix: copies tenant (a single non-empty segment) into out. */
static bool
tenant_route(const char *path, const char *suffix, char *out, size_t out_len)
{
    size_t n;

    if (path[0] != '/' || !ends_with(path, suffix)) {
        return false;
    }
    n = strlen(path) - strlen(suffix) - 1;
    if (n == 0 || n >= out_len || memchr(path + 1, '/', n) != NULL) {
        return false;
    }
    memcpy(out, path + 1, n);
    out[n] = '\0';
    return true;
}

/* ---- tokens ----------------------------------------------------------------------------- */

static skr_err
random_id(char *out, size_t out_len)
{
    uint8_t raw[16];
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    TRY_OSSL(RAND_bytes(raw, sizeof(raw)), SKR_E_INTERNAL, "RAND_bytes");
    skr_buf_init(&b, 64);
    TRY(skr_b64_encode(skr_span_make(raw, sizeof(raw)), SKR_B64_URL, &b));
    ENSURE(b.len < out_len, SKR_E_INTERNAL, "id buffer");
    memcpy(out, b.ptr, b.len);
    out[b.len] = '\0';
    return SKR_OK;
}

/* True when client_id is emu.json's managed identity or one of "workload_client_ids". */
static bool
known_client(const struct emu_ctx *ctx, const char *client_id, bool *is_mi)
{
    const char *mi = emu_cfg_str(ctx, "managed_identity", "client_id");
    const json_t *extra = json_object_get(ctx->config, "workload_client_ids");
    size_t i;
    const json_t *v;

    *is_mi = mi != NULL && strcasecmp(mi, client_id) == 0;
    if (*is_mi) {
        return true;
    }
    json_array_foreach(extra, i, v)
    {
        if (json_is_string(v) && strcasecmp(json_string_value(v), client_id) == 0) {
            return true;
        }
    }
    return false;
}

skr_err
emu_entra_issue(struct emu_ctx *ctx, const char *resource, const char *client_id,
                struct skr_buf *out, int64_t *ret_exp)
{
    _cleanup_(json_decrefp) json_t *hdr = NULL;
    _cleanup_(json_decrefp) json_t *claims = NULL;
    const char *tenant = emu_cfg_str(ctx, NULL, "tenant_id");
    const char *mi_client = emu_cfg_str(ctx, "managed_identity", "client_id");
    const char *oid = emu_cfg_str(ctx, "managed_identity", "object_id");
    const char *res_id = emu_cfg_str(ctx, "managed_identity", "msi_res_id");
    char iss[256];
    char uti[32];
    bool is_mi = true;
    int64_t now = (int64_t)time(NULL);
    int64_t exp = now + EMU_ENTRA_LIFETIME_S;

    ENSURE(resource != NULL, SKR_E_INVALID_ARG, "no resource");
    ENSURE(tenant != NULL && mi_client != NULL && oid != NULL && res_id != NULL, SKR_E_MALFORMED,
           "emu.json: incomplete managed identity");
    if (client_id != NULL) {
        ENSURE(known_client(ctx, client_id, &is_mi), SKR_E_NOT_FOUND, "unknown client id");
    } else {
        client_id = mi_client;
    }
    TRY(emu_entra_issuer(ctx, iss, sizeof(iss)));
    TRY(random_id(uti, sizeof(uti)));
    hdr = json_pack("{s:s, s:s}", "kid", ctx->entra_kid, "typ", "JWT");
    ENSURE(hdr != NULL, SKR_E_NOMEM, "json_pack");
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "aud",
                       resource, "iss", iss, "idp", iss, "iat", (json_int_t)(now - 300), "nbf",
                       (json_int_t)(now - 300), "exp", (json_int_t)exp, "appid", client_id,
                       "appidacr", "2", "oid", is_mi ? oid : client_id, "sub",
                       is_mi ? oid : client_id, "tid", tenant, "uti", uti, "ver", "1.0");
    ENSURE(claims != NULL, SKR_E_NOMEM, "json_pack");
    if (is_mi) {
        TRY(skr_json_set(claims, "xms_mirid", json_string(res_id)));
        TRY(skr_json_set(claims, "xms_az_rid", json_string(res_id)));
    }
    TRY(skr_json_set(claims, "skr_emulated", json_true()));
    TRY(skr_jwt_sign_rs256(ctx->entra_key, hdr, claims, out));
    if (ret_exp != NULL) {
        *ret_exp = exp;
    }
    return SKR_OK;
}

/* ---- managed identity ------------------------------------------------------------------- */

static bool
metadata_header_ok(const struct skr_http_request *req)
{
    const char *m = skr_http_request_header(req, "Metadata");

    return m != NULL && strcmp(m, "true") == 0;
}

/* The one identity selector given (NULL when none); false when more than one. */
static bool
selector_of(const struct skr_http_request *req, const char **key, const char **value)
{
    static const char *const keys[] = { "client_id", "object_id", "msi_res_id" };
    unsigned n = 0;

    *key = NULL;
    *value = NULL;
    for (size_t i = 0; i < SKR_ARRAY_LEN(keys); i++) {
        const char *v = skr_http_request_query(req, keys[i]);
        if (v != NULL) {
            *key = keys[i];
            *value = v;
            n++;
        }
    }
    return n <= 1;
}

static skr_err
handle_mi_token(struct emu_ctx *ctx, const struct skr_http_request *req,
                struct skr_http_response *resp)
{
    _cleanup_(skr_buf_donep) struct skr_buf tok = { 0 };
    const char *api = skr_http_request_query(req, "api-version");
    const char *resource = skr_http_request_query(req, "resource");
    const char *sel = NULL;
    const char *sel_val = NULL;
    const char *want = NULL;
    const char *tok_str = NULL;
    char exp_s[24];
    char nbf_s[24];
    char in_s[24];
    int64_t exp = 0;
    int64_t now = (int64_t)time(NULL);

    if (!metadata_header_ok(req)) {
        return imds_error(resp, 400, "invalid_request", "Required metadata header not specified");
    }
    if (skr_http_request_header(req, "X-Forwarded-For") != NULL) {
        return imds_error(resp, 400, "invalid_request",
                          "Request contains the X-Forwarded-For header");
    }
    if (api == NULL) {
        return imds_error(resp, 400, "invalid_request",
                          "Required query variable 'api-version' is missing");
    }
    if (strcmp(api, "2018-02-01") != 0 && strcmp(api, "2019-08-01") != 0) {
        return imds_error(resp, 400, "invalid_request", "Invalid api-version");
    }
    if (resource == NULL || resource[0] == '\0') {
        return imds_error(resp, 400, "invalid_request",
                          "Required query variable 'resource' is missing");
    }
    if (!resource_ok(resource)) {
        return imds_error(resp, 400, "invalid_resource",
                          "AADSTS500011: The resource principal was not found in the tenant");
    }
    if (!selector_of(req, &sel, &sel_val)) {
        return imds_error(resp, 400, "invalid_request",
                          "Only one of client_id, object_id and msi_res_id may be given");
    }
    if (sel != NULL) {
        want = emu_cfg_str(ctx, "managed_identity", sel);
        if (want == NULL || strcasecmp(want, sel_val) != 0) {
            return imds_error(resp, 400, "invalid_request", "Identity not found");
        }
    }
    skr_buf_init(&tok, SKR_MAX_JWT_BYTES);
    TRY(emu_entra_issue(ctx, resource, NULL, &tok, &exp));
    TRY(skr_buf_cstr(&tok, &tok_str));
    snprintf(exp_s, sizeof(exp_s), "%lld", (long long)exp);
    snprintf(nbf_s, sizeof(nbf_s), "%lld", (long long)(now - 300));
    snprintf(in_s, sizeof(in_s), "%lld", (long long)(exp - now));
    return respond_new(
        resp, 200,
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "access_token", tok_str,
                  "client_id", emu_cfg_str(ctx, "managed_identity", "client_id"), "expires_in",
                  in_s, "expires_on", exp_s, "ext_expires_in", in_s, "not_before", nbf_s,
                  "refresh_token", "", "resource", resource, "token_type", "Bearer"));
}

static skr_err
handle_thim(struct emu_ctx *ctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    _cleanup_(skr_buf_donep) struct skr_buf path = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
    const char *p = NULL;

    if (!metadata_header_ok(req)) {
        return imds_error(resp, 400, "invalid_request", "Required metadata header not specified");
    }
    skr_buf_init(&path, 4096);
    TRY(skr_buf_printf(&path, "%s/%s", ctx->dir, EMU_SECCTX_HOST_AMD));
    TRY(skr_buf_cstr(&path, &p));
    skr_buf_init(&b64, SKR_MAX_FILE_BYTES);
    TRY(skr_read_file(p, &b64));
    skr_buf_reset(&resp->body);
    TRY(skr_b64_decode(skr_buf_span(&b64), SKR_B64_STD | SKR_B64_SKIP_WS, &resp->body));
    resp->status = 200;
    return skr_http_response_add_header(resp, "Content-Type", "application/json");
}

/* ---- Entra ------------------------------------------------------------------------------ */

static bool
tenant_ok(const struct emu_ctx *ctx, const char *tenant)
{
    const char *t = emu_cfg_str(ctx, NULL, "tenant_id");

    return t != NULL && strcasecmp(t, tenant) == 0;
}

static skr_err
unknown_tenant(struct skr_http_response *resp)
{
    return aad_error(resp, 400, "invalid_tenant", 90002, "Tenant not found.");
}

/* host:port of ctx->imds_url. */
static const char *
base_host(const struct emu_ctx *ctx)
{
    const char *s = strstr(ctx->imds_url, "://");

    return s != NULL ? s + 3 : ctx->imds_url;
}

static skr_err
handle_discovery(struct emu_ctx *ctx, const struct skr_http_request *req,
                 struct skr_http_response *resp)
{
    const char *api = skr_http_request_query(req, "api-version");
    const char *auth = skr_http_request_query(req, "authorization_endpoint");
    char tenant[128] = "{tenant}";
    char tde[EMU_URL_MAX];

    if (api == NULL || strcmp(api, "1.1") != 0) {
        return aad_error(resp, 400, "invalid_request", 900144,
                         "The request must contain api-version=1.1.");
    }
    if (auth != NULL) {
        /* <scheme>://<host>/<tenant>/... */
        const char *h = strstr(auth, "://");
        const char *t = h != NULL ? strchr(h + 3, '/') : NULL;
        const char *end = t != NULL ? strchr(t + 1, '/') : NULL;
        size_t n = end != NULL ? (size_t)(end - t - 1) : 0;
        if (n == 0 || n >= sizeof(tenant)) {
            return aad_error(resp, 400, "invalid_instance", 50049, "Unknown or invalid instance.");
        }
        memcpy(tenant, t + 1, n);
        tenant[n] = '\0';
    }
    snprintf(tde, sizeof(tde), "%s/%s%s", ctx->imds_url, tenant, ENTRA_OIDC_SUFFIX);
    return respond_new(resp, 200,
                       json_pack("{s:s, s:s, s:[{s:s, s:s, s:[s]}]}", "tenant_discovery_endpoint",
                                 tde, "api-version", "1.1", "metadata", "preferred_network",
                                 base_host(ctx), "preferred_cache", base_host(ctx), "aliases",
                                 base_host(ctx)));
}

static skr_err
handle_oidc(struct emu_ctx *ctx, const char *tenant, struct skr_http_response *resp)
{
    char issuer[EMU_URL_MAX];
    char token_ep[EMU_URL_MAX];
    char jwks[EMU_URL_MAX];
    char authz[EMU_URL_MAX];

    if (!tenant_ok(ctx, tenant)) {
        return unknown_tenant(resp);
    }
    snprintf(issuer, sizeof(issuer), "%s/%s/v2.0", ctx->imds_url, tenant);
    snprintf(token_ep, sizeof(token_ep), "%s/%s%s", ctx->imds_url, tenant, ENTRA_TOKEN_SUFFIX);
    snprintf(jwks, sizeof(jwks), "%s/%s%s", ctx->imds_url, tenant, ENTRA_KEYS_SUFFIX);
    snprintf(authz, sizeof(authz), "%s/%s/oauth2/v2.0/authorize", ctx->imds_url, tenant);
    return respond_new(
        resp, 200,
        json_pack("{s:s, s:[s, s], s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s], s:s, s:s, s:b}",
                  "token_endpoint", token_ep, "token_endpoint_auth_methods_supported",
                  "client_secret_post", "private_key_jwt", "jwks_uri", jwks, "issuer", issuer,
                  "authorization_endpoint", authz, "response_types_supported", "code",
                  "subject_types_supported", "pairwise", "id_token_signing_alg_values_supported",
                  "RS256", "scopes_supported", "openid", "tenant_region_scope", "EMU",
                  "cloud_instance_name", "skr-emu.invalid", "skr_emulated", 1));
}

static skr_err
handle_keys(struct emu_ctx *ctx, const char *tenant, struct skr_http_response *resp)
{
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf x5c = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf x5t = { 0 };
    _cleanup_(skr_ossl_freep) unsigned char *der = NULL;
    uint8_t sha1[SHA_DIGEST_LENGTH];
    const char *x5c_s = NULL;
    const char *x5t_s = NULL;
    int der_len;

    if (!tenant_ok(ctx, tenant)) {
        return unknown_tenant(resp);
    }
    der_len = i2d_X509(ctx->entra_cert, &der);
    ENSURE(der_len > 0, SKR_E_INTERNAL, "i2d_X509");
    SHA1(der, (size_t)der_len, sha1);
    skr_buf_init(&x5c, SKR_MAX_CERT_BYTES * 2);
    skr_buf_init(&x5t, 64);
    TRY(skr_b64_encode(skr_span_make(der, (size_t)der_len), SKR_B64_STD | SKR_B64_PAD, &x5c));
    TRY(skr_b64_encode(skr_span_make(sha1, sizeof(sha1)), SKR_B64_URL, &x5t));
    TRY(skr_buf_cstr(&x5c, &x5c_s));
    TRY(skr_buf_cstr(&x5t, &x5t_s));
    TRY(skr_jwk_from_pkey(ctx->entra_key, false, &jwk));
    TRY(skr_json_set(jwk, "kid", json_string(ctx->entra_kid)));
    TRY(skr_json_set(jwk, "use", json_string("sig")));
    TRY(skr_json_set(jwk, "x5t", json_string(x5t_s)));
    TRY(skr_json_set(jwk, "x5c", json_pack("[s]", x5c_s)));
    return respond_new(resp, 200, json_pack("{s:[O]}", "keys", jwk));
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Percent-decodes (and '+' -> ' ') s into a new string. */
static skr_err
form_decode(struct skr_span s, char **ret)
{
    _cleanup_free_ char *out = NULL;
    size_t o = 0;

    ENSURE(s.len <= EMU_MAX_FORM_VALUE, SKR_E_TOO_LARGE, "form value too long");
    out = malloc(s.len + 1);
    ENSURE(out != NULL, SKR_E_NOMEM, "malloc");
    for (size_t i = 0; i < s.len; i++) {
        int c = s.ptr[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < s.len ? hexval(s.ptr[i + 1]) : -1;
            int lo = i + 2 < s.len ? hexval(s.ptr[i + 2]) : -1;
            ENSURE(hi >= 0 && lo >= 0, SKR_E_MALFORMED, "bad percent escape in the form");
            c = hi * 16 + lo;
            i += 2;
        }
        ENSURE(c != 0, SKR_E_MALFORMED, "NUL in the form");
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *ret = TAKE_PTR(out);
    return SKR_OK;
}

/* The decoded value of key in an x-www-form-urlencoded body; *ret NULL when absent. A key
 * given twice is malformed. */
static skr_err
form_get(struct skr_span body, const char *key, char **ret)
{
    size_t klen = strlen(key);
    size_t i = 0;

    *ret = NULL;
    while (i < body.len) {
        size_t j = i;
        while (j < body.len && body.ptr[j] != '&') {
            j++;
        }
        if (j - i > klen && memcmp(body.ptr + i, key, klen) == 0 && body.ptr[i + klen] == '=') {
            if (*ret != NULL) {
                free(*ret);
                *ret = NULL;
                FAILF(SKR_E_MALFORMED, "form parameter %s given twice", key);
            }
            TRY(form_decode(skr_span_make(body.ptr + i + klen + 1, j - i - klen - 1), ret));
        }
        i = j + 1;
    }
    return SKR_OK;
}

/* The resource of the one "<R>/.default" scope in the space-separated list. */
bool
emu_entra_scope_resource(const char *scope, char *out, size_t out_len)
{
    static const char suffix[] = "/.default";
    bool found = false;
    const char *p = scope;

    while (*p != '\0') {
        const char *end = strchr(p, ' ');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n > sizeof(suffix) - 1 &&
            memcmp(p + n - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0) {
            size_t r = n - (sizeof(suffix) - 1);
            if (found || r >= out_len) {
                return false;
            }
            memcpy(out, p, r);
            out[r] = '\0';
            found = true;
        }
        p += n;
        while (*p == ' ') {
            p++;
        }
    }
    return found;
}

/* 0 when the assertion is acceptable, else the AADSTS code; *why says what is wrong. */
unsigned int
emu_entra_check_assertion(const char *assertion, const char **why)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    const json_t *aud;
    const json_t *exp;
    bool aud_ok = false;
    size_t i;
    const json_t *v;

    if (skr_jws_parse(skr_span_str(assertion), &jws) != SKR_OK || jws.claims == NULL) {
        *why = "The client assertion is not a JWT.";
        return 50027;
    }
    if (!json_is_string(json_object_get(jws.claims, "iss")) ||
        !json_is_string(json_object_get(jws.claims, "sub"))) {
        *why = "The client assertion has no iss or sub.";
        return 50027;
    }
    exp = json_object_get(jws.claims, "exp");
    if (!json_is_integer(exp) ||
        json_integer_value(exp) <= (json_int_t)time(NULL) - EMU_ENTRA_SKEW_S) {
        *why = "Client assertion is not within its valid time range.";
        return 700024;
    }
    aud = json_object_get(jws.claims, "aud");
    if (json_is_string(aud)) {
        aud_ok = strcmp(json_string_value(aud), ENTRA_TOKEN_EXCHANGE) == 0;
    }
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), ENTRA_TOKEN_EXCHANGE) == 0) {
            aud_ok = true;
        }
    }
    if (!aud_ok) {
        *why = "No matching federated identity record found for presented assertion audience.";
        return 700212;
    }
    return 0;
}

void
emu_token_form_done(struct emu_token_form *f)
{
    if (f == NULL) {
        return;
    }
    free(f->grant_type);
    free(f->assertion_type);
    free(f->assertion);
    free(f->client_id);
    free(f->scope);
    memset(f, 0, sizeof(*f));
}

skr_err
emu_entra_parse_token_form(struct skr_span body, struct emu_token_form *f)
{
    ENSURE(f != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(form_get(body, "grant_type", &f->grant_type));
    TRY(form_get(body, "client_assertion_type", &f->assertion_type));
    TRY(form_get(body, "client_assertion", &f->assertion));
    TRY(form_get(body, "client_id", &f->client_id));
    return form_get(body, "scope", &f->scope);
}

static skr_err
handle_entra_token(struct emu_ctx *ctx, const char *tenant, const struct skr_http_request *req,
                   struct skr_http_response *resp)
{
    _cleanup_(emu_token_form_done) struct emu_token_form f = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf tok = { 0 };
    const char *ctype = skr_http_request_header(req, "Content-Type");
    const char *why = NULL;
    const char *tok_str = NULL;
    char resource[EMU_MAX_RESOURCE + 1];
    unsigned int code;
    bool is_mi;
    int64_t exp = 0;
    int64_t now = (int64_t)time(NULL);

    if (!tenant_ok(ctx, tenant)) {
        return unknown_tenant(resp);
    }
    if (ctype == NULL || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
        return aad_error(resp, 400, "invalid_request", 900144,
                         "The request body must be application/x-www-form-urlencoded.");
    }
    if (emu_entra_parse_token_form(req->body, &f) != SKR_OK) {
        return aad_error(resp, 400, "invalid_request", 900144, "The request body is malformed.");
    }
    if (f.grant_type == NULL) {
        return aad_error(resp, 400, "invalid_request", 900144,
                         "The request body must contain the following parameter: "
                         "'grant_type'.");
    }
    if (strcmp(f.grant_type, "client_credentials") != 0) {
        return aad_error(resp, 400, "unsupported_grant_type", 70003,
                         "The app requested an unsupported grant type.");
    }
    if (f.client_id == NULL) {
        return aad_error(resp, 400, "invalid_request", 900144,
                         "The request body must contain the following parameter: "
                         "'client_id'.");
    }
    if (f.scope == NULL) {
        return aad_error(resp, 400, "invalid_request", 900144,
                         "The request body must contain the following parameter: 'scope'.");
    }
    if (f.assertion == NULL || f.assertion_type == NULL) {
        return aad_error(resp, 401, "invalid_client", 7000218,
                         "The request body must contain the following parameter: "
                         "'client_assertion' or 'client_secret'.");
    }
    if (strcmp(f.assertion_type, ENTRA_JWT_BEARER) != 0) {
        return aad_error(resp, 401, "invalid_client", 50027,
                         "client_assertion_type is not jwt-bearer.");
    }
    if (!known_client(ctx, f.client_id, &is_mi)) {
        return aad_error(resp, 400, "unauthorized_client", 700016,
                         "Application with the given identifier was not found in the "
                         "directory.");
    }
    if (!emu_entra_scope_resource(f.scope, resource, sizeof(resource)) || !resource_ok(resource)) {
        return aad_error(resp, 400, "invalid_scope", 1002012,
                         "The provided value for scope is not valid. Client credential flows "
                         "must have one scope value with /.default suffixed to the resource "
                         "identifier.");
    }
    code = emu_entra_check_assertion(f.assertion, &why);
    if (code != 0) {
        return aad_error(resp, 401, "invalid_client", code, why);
    }
    skr_buf_init(&tok, SKR_MAX_JWT_BYTES);
    TRY(emu_entra_issue(ctx, resource, f.client_id, &tok, &exp));
    TRY(skr_buf_cstr(&tok, &tok_str));
    return respond_new(resp, 200,
                       json_pack("{s:s, s:I, s:I, s:s}", "token_type", "Bearer", "expires_in",
                                 (json_int_t)(exp - now), "ext_expires_in", (json_int_t)(exp - now),
                                 "access_token", tok_str));
}

/* ---- routing ---------------------------------------------------------------------------- */

static skr_err
method_not_allowed(struct skr_http_response *resp)
{
    return imds_error(resp, 405, "invalid_request", "The HTTP method is not allowed");
}

skr_err
emu_imds_handle(void *vctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct emu_ctx *ctx = vctx;
    bool get = strcmp(req->method, "GET") == 0;
    char tenant[128];

    /* MSAL (@azure/msal-node) sends the token path with a trailing slash when
     * AZURE_POD_IDENTITY_AUTHORITY_HOST names the endpoint; AKS pod identity's NMI, which that
     * variable points at, routes both forms. */
    if (strcmp(req->path, IMDS_TOKEN_PATH) == 0 || strcmp(req->path, IMDS_TOKEN_PATH "/") == 0) {
        return get ? handle_mi_token(ctx, req, resp) : method_not_allowed(resp);
    }
    if (strcmp(req->path, IMDS_THIM_PATH) == 0) {
        return get ? handle_thim(ctx, req, resp) : method_not_allowed(resp);
    }
    if (starts_with(req->path, "/metadata/")) {
        return imds_error(resp, 404, "not_found", "No such IMDS endpoint");
    }
    if (strcmp(req->path, ENTRA_DISCOVERY) == 0) {
        return get ? handle_discovery(ctx, req, resp) : method_not_allowed(resp);
    }
    if (tenant_route(req->path, ENTRA_OIDC_SUFFIX, tenant, sizeof(tenant))) {
        return get ? handle_oidc(ctx, tenant, resp) : method_not_allowed(resp);
    }
    if (tenant_route(req->path, ENTRA_KEYS_SUFFIX, tenant, sizeof(tenant))) {
        return get ? handle_keys(ctx, tenant, resp) : method_not_allowed(resp);
    }
    if (tenant_route(req->path, ENTRA_TOKEN_SUFFIX, tenant, sizeof(tenant))) {
        return strcmp(req->method, "POST") == 0 ? handle_entra_token(ctx, tenant, req, resp)
                                                : method_not_allowed(resp);
    }
    return imds_error(resp, 404, "not_found", "No such endpoint");
}
