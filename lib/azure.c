/*
 * azure.c - the clients of the release flow's Azure services (azure.h): IMDS managed identity
 * and THIM (PROTOCOLS.md §4.1, §6.1), workload identity through Entra ID (§6.2), MAA
 * attest/SevSnpVm (§5.1-5.2), Key Vault / Managed HSM release and get (§7.1-7.2, §7.7), the
 * check of the release JWS (signature with x5c[0], x5t#S256, chain to trust, host name) and the
 * unwrapped key as the JWK the reference sidecar returns (SCC pkg/skr/skr.go, jwx marshalling).
 *
 * Retries are the HTTP client's (http_client.h); this module makes one skr_http_request per
 * call and judges the status. Tokens and key material stay in struct skr_secret or wiped
 * skr_bufs: token strings that jansson parsed are wiped in place before the document is
 * released, and private key values never enter jansson (the JWK text is written by hand).
 * Request bodies are built by hand only from characters that need no JSON escaping (base64url,
 * compact JWS, validated names); everything else goes through jansson.
 */
#include "azure.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_report.h"

#define AZ_RESOURCE_VAULT    "https://vault.azure.net"
#define AZ_RESOURCE_MHSM     "https://managedhsm.azure.net"
#define AZ_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define AZ_IMDS_TOKEN_PATH   "/metadata/identity/oauth2/token"
#define AZ_IMDS_API_VERSION  "2018-02-01"
#define AZ_THIM_PATH         "/metadata/THIM/amd/certification"
#define AZ_MAA_API_VERSION   "2022-08-01"
#define AZ_AKV_API_VERSION   "7.4"
#define AZ_JWT_BEARER        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* An endpoint as a user writes it: a DNS name is at most 253 characters (RFC 1035), plus a
 * scheme, a port and a slash. */
#define AZ_MAX_HOST     253u
#define AZ_MAX_ENDPOINT 512u
/* Base URLs of IMDS / the Entra authority, and every URL we build from them. */
#define AZ_MAX_BASE_URL 1024u
#define AZ_MAX_URL      4096u
/* Short identifiers we put into URLs: client ids, tenants, api-versions, key names (AKV: 1-127
 * of [0-9A-Za-z-]) and versions (32 hex characters in practice). */
#define AZ_MAX_ID        256u
#define AZ_MAX_KEY_NAME  127u
#define AZ_MAX_USERAGENT 512u
/* key_ops of a released key: AKV knows 8 operations; anything longer is not a key operation. */
#define AZ_MAX_KEY_OPS 16u
#define AZ_MAX_KEY_OP  32u
/* Unix time bounds for expires_on / expires_in: beyond them a value is garbage. */
#define AZ_MAX_EPOCH     ((uint64_t)1 << 40)
#define AZ_MAX_EXPIRES_S ((uint64_t)10 * 365 * 24 * 3600)
/* key_hsm: a wrapped RSA-8192 key plus the encrypted AES key, base64url of JSON. */
#define AZ_MAX_CIPHERTEXT (SKR_MAX_SECRET_BYTES + 2048u)
#define AZ_MAX_KEY_HSM    (4u * SKR_MAX_SECRET_BYTES)

/* ---- small helpers ------------------------------------------------------------------------ */

static bool
is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_b64url_char(char c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

/* Copies printable ASCII of s[0..n) into dst (cap bytes, NUL-terminated, cut); other bytes
 * become '?'. */
static void
copy_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t j = 0;

    if (cap == 0) {
        return;
    }
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        dst[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[j] = '\0';
}

/* Each byte visible ASCII (0x21..0x7e), 1..max bytes: safe inside an HTTP header. */
static bool
is_visible_token(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* A compact JWS: base64url segments and dots only, so it needs no JSON escaping. */
static bool
is_compact_jws(const char *s, size_t n)
{
    size_t dots = 0;

    if (n == 0 || n > SKR_MAX_JWT_BYTES) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            dots++;
        } else if (!is_b64url_char(s[i])) {
            return false;
        }
    }
    return dots == 2;
}

/* 1..max of [0-9A-Za-z] plus the characters of extra. */
static bool
is_ident(const char *s, size_t max, const char *extra)
{
    size_t n = strnlen(s, max + 1);

    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && strchr(extra, s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

/* RFC 3986 §2.3: unreserved characters stay, everything else is %XX. */
static skr_err
append_pct(struct skr_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (is_alnum((char)c) || c == '-' || c == '.' || c == '_' || c == '~') {
            TRY(skr_buf_append_byte(out, c));
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };

            TRY(skr_buf_append(out, e, sizeof(e)));
        }
    }
    return SKR_OK;
}

/* Wipes a string jansson holds (a token) before the document is released. */
static void
wipe_json_string(json_t *v)
{
    if (json_is_string(v)) {
        skr_wipe((char *)(uintptr_t)json_string_value(v), json_string_length(v));
    }
}

/* An http:// or https:// base URL without a trailing '/', query, fragment, userinfo or
 * whitespace (IMDS, the Entra authority) appended to out. */
static skr_err
http_base(const char *base, const char *what, struct skr_buf *out)
{
    size_t n;

    ENSURE(base != NULL, SKR_E_INVALID_ARG, "NULL base URL");
    n = strnlen(base, AZ_MAX_BASE_URL + 1);
    if (n > AZ_MAX_BASE_URL) {
        FAILF(SKR_E_INVALID_ARG, "%s URL is longer than %u characters", what, AZ_MAX_BASE_URL);
    }
    if (strncasecmp(base, "http://", 7) != 0 && strncasecmp(base, "https://", 8) != 0) {
        FAILF(SKR_E_INVALID_ARG, "%s URL must start with http:// or https://", what);
    }
    for (size_t i = 0; i < n; i++) {
        if (base[i] <= 0x20 || base[i] >= 0x7f || strchr("?#@\\\"", base[i]) != NULL) {
            FAILF(SKR_E_INVALID_ARG, "%s URL has a character that is not allowed at offset %zu",
                  what, i);
        }
    }
    while (n > 0 && base[n - 1] == '/') {
        n--;
    }
    if (n <= (strncasecmp(base, "https://", 8) == 0 ? 8u : 7u)) {
        FAILF(SKR_E_INVALID_ARG, "%s URL has no host", what);
    }
    return skr_buf_append(out, base, n);
}

/* ---- upstream errors ---------------------------------------------------------------------- */

/* Re-records the last error with the service's name in front. */
static skr_err
prefix_err(skr_err e, const char *service)
{
    char msg[sizeof((struct skr_err_site){ 0 }.msg)];

    copy_printable(msg, sizeof(msg), skr_err_msg(), strlen(skr_err_msg()));
    FAILF(e, "%s: %s", service, msg);
}

/* The value of parameter name in a WWW-Authenticate challenge (RFC 7235 auth-params). */
static void
challenge_param(const char *h, const char *name, char *dst, size_t cap)
{
    size_t n = strnlen(h, SKR_MAX_HTTP_HEADER_VALUE);
    size_t i = 0;
    size_t name_len = strlen(name);

    /* skip the scheme */
    while (i < n && h[i] != ' ') {
        i++;
    }
    while (i < n) {
        size_t k0;
        size_t k1;
        size_t v0;
        size_t v1;

        while (i < n && (h[i] == ' ' || h[i] == ',' || h[i] == '\t')) {
            i++;
        }
        k0 = i;
        while (i < n && h[i] != '=' && h[i] != ' ' && h[i] != ',') {
            i++;
        }
        k1 = i;
        if (i >= n || h[i] != '=') {
            continue;
        }
        i++;
        if (i < n && h[i] == '"') {
            v0 = ++i;
            while (i < n && h[i] != '"') {
                i++;
            }
            v1 = i;
            if (i < n) {
                i++;
            }
        } else {
            v0 = i;
            while (i < n && h[i] != ',' && h[i] != ' ') {
                i++;
            }
            v1 = i;
        }
        if (k1 - k0 == name_len && strncasecmp(h + k0, name, name_len) == 0) {
            copy_printable(dst, cap, h + v0, v1 - v0);
            return;
        }
    }
}

static void
copy_json_str(const json_t *v, char *dst, size_t cap)
{
    if (json_is_string(v)) {
        copy_printable(dst, cap, json_string_value(v), json_string_length(v));
    }
}

void
skr_upstream_parse_error(struct skr_span body, const char *www_authenticate,
                         struct skr_upstream *up)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    const json_t *err = NULL;

    if (up == NULL) {
        return;
    }
    if (www_authenticate != NULL) {
        challenge_param(www_authenticate, "resource", up->challenge_resource,
                        sizeof(up->challenge_resource));
    }
    if (body.len == 0 || skr_json_parse_object(body, SKR_MAX_JSON_BYTES, "error", &doc) != SKR_OK) {
        skr_err_clear();
        return;
    }
    err = json_object_get(doc, "error");
    if (json_is_object(err)) {
        /* AKV / MAA: {"error":{"code","message"}} */
        copy_json_str(json_object_get(err, "code"), up->code, sizeof(up->code));
        copy_json_str(json_object_get(err, "message"), up->message, sizeof(up->message));
    } else if (json_is_string(err)) {
        /* IMDS / Entra: {"error","error_description"} */
        copy_json_str(err, up->code, sizeof(up->code));
        copy_json_str(json_object_get(doc, "error_description"), up->message, sizeof(up->message));
    }
}

/* What a non-2xx status means for the caller (azure.h top comment). */
static skr_err
status_err(long status, bool is_release)
{
    if (status == 403 && is_release) {
        return SKR_E_POLICY;
    }
    if (status == 404) {
        return SKR_E_NOT_FOUND;
    }
    if (status >= 400 && status < 500 && status != 408 && status != 429) {
        return SKR_E_INVALID_ARG;
    }
    return SKR_E_UPSTREAM;
}

struct az_call {
    const char *service; /* names the service in errors */
    const char *method;
    const char *url;
    const char *const *headers;
    struct skr_span body;
    bool is_release; /* 403 is a policy decision */
};

/*
 * One exchange (with the client's retries). up is filled from the reply whatever happens;
 * a transport error keeps its code with the service named; a non-2xx status becomes the
 * error of status_err with the service's code and message.
 */
static skr_err
az_request(struct skr_http_client *c, const struct az_call *call, struct skr_http_reply *reply,
           struct skr_upstream *up)
{
    skr_err e = skr_http_request(c, call->method, call->url, call->headers, call->body, reply);

    up->status = reply->status;
    up->attempts = reply->attempts;
    if (reply->request_id != NULL) {
        copy_printable(up->request_id, sizeof(up->request_id), reply->request_id,
                       strnlen(reply->request_id, SKR_MAX_HTTP_HEADER_VALUE));
    }
    if (e != SKR_OK) {
        return prefix_err(e, call->service);
    }
    if (reply->status >= 200 && reply->status < 300) {
        return SKR_OK;
    }
    skr_upstream_parse_error(skr_buf_span(&reply->body), reply->www_authenticate, up);
    FAILF(status_err(reply->status, call->is_release), "%s returned HTTP %ld%s%s%s%s%s",
          call->service, reply->status, up->code[0] != '\0' ? " (" : "", up->code,
          up->code[0] != '\0' ? ")" : "", up->message[0] != '\0' ? ": " : "", up->message);
}

/* ---- endpoints ---------------------------------------------------------------------------- */

const char *
skr_akv_resource_for(const char *akv_endpoint)
{
    if (akv_endpoint != NULL && strstr(akv_endpoint, "managedhsm") != NULL) {
        return AZ_RESOURCE_MHSM;
    }
    return AZ_RESOURCE_VAULT;
}

static bool
is_host_char(char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

/* Splits an authority "host[:port]" / "[v6][:port]" into the host (brackets removed). */
static skr_err
split_authority(const char *a, size_t n, size_t *host_off, size_t *host_len)
{
    size_t port_off;

    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        char v6[64];
        unsigned char tmp[16];

        ENSURE(close != NULL, SKR_E_INVALID_ARG, "endpoint: '[' without ']'");
        *host_off = 1;
        *host_len = (size_t)(close - a) - 1;
        ENSURE(*host_len > 0 && *host_len < sizeof(v6), SKR_E_INVALID_ARG,
               "endpoint: bad IPv6 address");
        memcpy(v6, a + 1, *host_len);
        v6[*host_len] = '\0';
        ENSURE(inet_pton(AF_INET6, v6, tmp) == 1, SKR_E_INVALID_ARG, "endpoint: bad IPv6 address");
        port_off = *host_len + 2;
        ENSURE(port_off == n || a[port_off] == ':', SKR_E_INVALID_ARG,
               "endpoint: unexpected text after the IPv6 address");
    } else {
        const char *colon = memchr(a, ':', n);

        *host_off = 0;
        *host_len = colon != NULL ? (size_t)(colon - a) : n;
        port_off = *host_len;
        for (size_t i = 0; i < *host_len; i++) {
            ENSURE(is_host_char(a[i]), SKR_E_INVALID_ARG,
                   "endpoint: host name has a character that is not allowed");
        }
    }
    ENSURE(*host_len > 0, SKR_E_INVALID_ARG, "endpoint: empty host");
    if (*host_len > AZ_MAX_HOST) {
        FAILF(SKR_E_INVALID_ARG, "endpoint: host longer than %u characters", AZ_MAX_HOST);
    }
    if (port_off < n) {
        uint64_t port = 0;
        struct skr_span p = skr_span_make(a + port_off + 1, n - port_off - 1);

        ENSURE(p.len > 0 && p.len <= 5 && skr_parse_u64(p, false, 1, 65535, &port) == SKR_OK,
               SKR_E_INVALID_ARG, "endpoint: port must be 1..65535");
    }
    return SKR_OK;
}

skr_err
skr_endpoint_base(const char *endpoint, struct skr_buf *url_out, struct skr_buf *host_out)
{
    const char *a = endpoint;
    const char *scheme_end;
    size_t n;
    size_t host_off = 0;
    size_t host_len = 0;

    ENSURE(endpoint != NULL && url_out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    n = strnlen(endpoint, AZ_MAX_ENDPOINT + 1);
    if (n > AZ_MAX_ENDPOINT) {
        FAILF(SKR_E_INVALID_ARG, "endpoint longer than %u characters", AZ_MAX_ENDPOINT);
    }
    for (size_t i = 0; i < n; i++) {
        ENSURE(endpoint[i] > 0x20 && endpoint[i] < 0x7f, SKR_E_INVALID_ARG,
               "endpoint contains whitespace or a control character");
    }
    scheme_end = strstr(endpoint, "://");
    if (scheme_end != NULL) {
        ENSURE(scheme_end - endpoint == 5 && strncasecmp(endpoint, "https", 5) == 0,
               SKR_E_INVALID_ARG, "endpoint scheme must be https");
        a = scheme_end + 3;
        n -= 8;
    }
    if (n > 0 && a[n - 1] == '/') {
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        ENSURE(a[i] != '/', SKR_E_INVALID_ARG, "endpoint must not have a path");
        ENSURE(a[i] != '?' && a[i] != '#', SKR_E_INVALID_ARG,
               "endpoint must not have a query or fragment");
        ENSURE(a[i] != '@', SKR_E_INVALID_ARG, "endpoint must not have userinfo");
    }
    TRY(split_authority(a, n, &host_off, &host_len));
    TRY(skr_buf_append_str(url_out, "https://"));
    TRY(skr_buf_append(url_out, a, n));
    if (host_out != NULL) {
        TRY(skr_buf_append(host_out, a + host_off, host_len));
    }
    return SKR_OK;
}

/* ---- identity ----------------------------------------------------------------------------- */

void
skr_token_done(struct skr_token *t)
{
    if (t != NULL) {
        skr_secret_free(t->value);
        *t = (struct skr_token){ 0 };
    }
}

static skr_err
token_expiry(const json_t *doc, int64_t now, int64_t *ret)
{
    uint64_t v = 0;

    if (json_object_get(doc, "expires_on") != NULL &&
        skr_json_get_u64(doc, "expires_on", &v) == SKR_OK && v > 0 && v < AZ_MAX_EPOCH) {
        *ret = (int64_t)v;
        return SKR_OK;
    }
    skr_err_clear();
    ENSURE(json_object_get(doc, "expires_in") != NULL, SKR_E_MALFORMED,
           "token response: no usable expires_on or expires_in");
    TRY(skr_json_get_u64(doc, "expires_in", &v));
    ENSURE(v <= AZ_MAX_EXPIRES_S && now >= 0 && (uint64_t)now < AZ_MAX_EPOCH, SKR_E_MALFORMED,
           "token response: expires_in out of range");
    *ret = now + (int64_t)v;
    return SKR_OK;
}

static skr_err
token_from_doc(json_t *doc, int64_t now, struct skr_token *ret)
{
    json_t *tok = json_object_get(doc, "access_token");
    const char *type = NULL;
    struct skr_secret *s = NULL;
    int64_t exp = 0;
    size_t n;

    ENSURE(json_is_string(tok), SKR_E_MALFORMED,
           "token response: member 'access_token' missing or not a string");
    n = json_string_length(tok);
    ENSURE(n > 0 && n <= SKR_MAX_JWT_BYTES && strlen(json_string_value(tok)) == n &&
               is_visible_token(json_string_value(tok), SKR_MAX_JWT_BYTES),
           SKR_E_MALFORMED, "token response: access_token is empty, too long or not a token");
    TRY(skr_json_opt_str(doc, "token_type", &type));
    ENSURE(type == NULL || strcasecmp(type, "Bearer") == 0, SKR_E_MALFORMED,
           "token response: token_type is not Bearer");
    TRY(token_expiry(doc, now, &exp));
    TRY(skr_secret_new(n + 1, &s));
    memcpy(s->ptr, json_string_value(tok), n);
    s->len = n;
    *ret = (struct skr_token){ .value = s, .expires_on = exp };
    return SKR_OK;
}

skr_err
skr_token_parse(struct skr_span body, int64_t now, struct skr_token *ret)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    skr_err e;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(skr_json_parse_object(body, SKR_MAX_JSON_BYTES, "token response", &doc));
    e = token_from_doc(doc, now, ret);
    wipe_json_string(json_object_get(doc, "access_token"));
    wipe_json_string(json_object_get(doc, "refresh_token"));
    return e;
}

static skr_err
token_call(struct skr_http_client *c, const struct az_call *call, struct skr_token *ret,
           struct skr_upstream *up)
{
    _cleanup_(skr_http_reply_done) struct skr_http_reply reply = { 0 };
    skr_err e;

    TRY(az_request(c, call, &reply, up));
    e = skr_token_parse(skr_buf_span(&reply.body), (int64_t)time(NULL), ret);
    if (e != SKR_OK) {
        return prefix_err(e, call->service);
    }
    return SKR_OK;
}

skr_err
skr_imds_token(struct skr_http_client *c, const char *imds_base, const char *resource,
               const char *client_id, struct skr_token *ret, struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    static const char *const headers[] = { "Metadata: true", "Accept: application/json", NULL };
    struct skr_upstream scratch = { 0 };
    const char *u = NULL;

    up = up != NULL ? up : &scratch;
    *up = (struct skr_upstream){ 0 };
    ENSURE(c != NULL && resource != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(strnlen(resource, AZ_MAX_BASE_URL + 1) <= AZ_MAX_BASE_URL, SKR_E_INVALID_ARG,
           "IMDS: resource too long");
    ENSURE(client_id == NULL || is_visible_token(client_id, AZ_MAX_ID), SKR_E_INVALID_ARG,
           "IMDS: client_id is empty, too long or has spaces");
    skr_buf_init(&url, AZ_MAX_URL);
    TRY(http_base(imds_base, "IMDS", &url));
    TRY(skr_buf_append_str(&url,
                           AZ_IMDS_TOKEN_PATH "?api-version=" AZ_IMDS_API_VERSION "&resource="));
    TRY(append_pct(&url, resource, strlen(resource)));
    if (client_id != NULL) {
        TRY(skr_buf_append_str(&url, "&client_id="));
        TRY(append_pct(&url, client_id, strlen(client_id)));
    }
    TRY(skr_buf_cstr(&url, &u));
    return token_call(
        c, &(struct az_call){ .service = "IMDS", .method = "GET", .url = u, .headers = headers },
        ret, up);
}

/* A GUID or a DNS-like tenant name. */
static bool
valid_tenant(const char *t)
{
    return is_ident(t, AZ_MAX_HOST, ".-") && t[0] != '.' && t[0] != '-';
}

static skr_err
wi_form(const char *client_id, struct skr_span assertion, const char *resource,
        struct skr_buf *form)
{
    size_t rn = strlen(resource);

    TRY(skr_buf_append_str(form, "grant_type=client_credentials&client_assertion_type="));
    TRY(append_pct(form, AZ_JWT_BEARER, strlen(AZ_JWT_BEARER)));
    TRY(skr_buf_append_str(form, "&client_assertion="));
    TRY(append_pct(form, (const char *)assertion.ptr, assertion.len));
    TRY(skr_buf_append_str(form, "&client_id="));
    TRY(append_pct(form, client_id, strlen(client_id)));
    TRY(skr_buf_append_str(form, "&scope="));
    TRY(append_pct(form, resource, rn));
    /* scope = <resource>/.default (PROTOCOLS.md §6.2) */
    return skr_buf_append_str(form, rn > 0 && resource[rn - 1] == '/' ? ".default" : "%2F.default");
}

/* The assertion without surrounding ASCII whitespace. */
static struct skr_span
trim_span(struct skr_span s)
{
    while (s.len > 0 &&
           (s.ptr[0] == ' ' || s.ptr[0] == '\t' || s.ptr[0] == '\r' || s.ptr[0] == '\n')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t' ||
                         s.ptr[s.len - 1] == '\r' || s.ptr[s.len - 1] == '\n')) {
        s.len--;
    }
    return s;
}

skr_err
skr_wi_token(struct skr_http_client *c, const char *authority, const char *tenant,
             const char *client_id, struct skr_span assertion, const char *resource,
             struct skr_token *ret, struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf form = { 0 };
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8",
        "Accept: application/json",
        NULL,
    };
    struct skr_upstream scratch = { 0 };
    const char *u = NULL;

    up = up != NULL ? up : &scratch;
    *up = (struct skr_upstream){ 0 };
    ENSURE(c != NULL && tenant != NULL && client_id != NULL && resource != NULL && ret != NULL,
           SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(valid_tenant(tenant), SKR_E_INVALID_ARG,
           "workload identity: tenant must be a GUID or a domain name");
    ENSURE(is_visible_token(client_id, AZ_MAX_ID), SKR_E_INVALID_ARG,
           "workload identity: client_id is empty, too long or has spaces");
    ENSURE(is_visible_token(resource, AZ_MAX_BASE_URL), SKR_E_INVALID_ARG,
           "workload identity: resource is empty, too long or has spaces");
    assertion = trim_span(assertion);
    ENSURE(assertion.len > 0, SKR_E_INVALID_ARG,
           "workload identity: the federated token file is empty");
    ENSURE(assertion.len <= SKR_MAX_JWT_BYTES, SKR_E_TOO_LARGE,
           "workload identity: the federated token is too long");
    skr_buf_init(&url, AZ_MAX_URL);
    TRY(http_base(authority != NULL ? authority : AZ_DEFAULT_AUTHORITY, "authority", &url));
    TRY(skr_buf_printf(&url, "/%s/oauth2/v2.0/token", tenant));
    TRY(skr_buf_cstr(&url, &u));
    skr_buf_init(&form, 3u * SKR_MAX_JWT_BYTES + 3u * AZ_MAX_BASE_URL + 1024u);
    TRY(wi_form(client_id, assertion, resource, &form));
    return token_call(c,
                      &(struct az_call){ .service = "Entra ID",
                                         .method = "POST",
                                         .url = u,
                                         .headers = headers,
                                         .body = skr_buf_span(&form) },
                      ret, up);
}

skr_err
skr_imds_thim(struct skr_http_client *c, const char *imds_base, struct skr_buf *ret_json,
              struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_http_reply_done) struct skr_http_reply reply = { 0 };
    static const char *const headers[] = { "Metadata: true", "Accept: application/json", NULL };
    struct skr_upstream scratch = { 0 };
    const char *u = NULL;

    up = up != NULL ? up : &scratch;
    *up = (struct skr_upstream){ 0 };
    ENSURE(c != NULL && ret_json != NULL, SKR_E_INVALID_ARG, "NULL argument");
    skr_buf_init(&url, AZ_MAX_URL);
    TRY(http_base(imds_base, "IMDS", &url));
    TRY(skr_buf_append_str(&url, AZ_THIM_PATH));
    TRY(skr_buf_cstr(&url, &u));
    TRY(az_request(
        c, &(struct az_call){ .service = "THIM", .method = "GET", .url = u, .headers = headers },
        &reply, up));
    ENSURE(reply.body.len > 0, SKR_E_MALFORMED, "THIM: empty response");
    return skr_buf_append_span(ret_json, skr_buf_span(&reply.body));
}

/* ---- MAA ---------------------------------------------------------------------------------- */

static skr_err
append_b64url_pad(struct skr_buf *out, struct skr_span in)
{
    return skr_b64_encode(in, SKR_B64_URL | SKR_B64_PAD, out);
}

/* {"SnpReport","VcekCertChain","Endorsements"?} as SCC's maaReport (struct order). */
static skr_err
maa_bundle(const struct skr_maa_evidence *ev, struct skr_buf *out)
{
    TRY(skr_buf_append_str(out, "{\"SnpReport\":\""));
    TRY(append_b64url_pad(out, ev->report));
    TRY(skr_buf_append_str(out, "\",\"VcekCertChain\":\""));
    TRY(append_b64url_pad(out, ev->vcek_chain));
    if (ev->uvm_endorsement.len > 0) {
        _cleanup_(skr_buf_donep) struct skr_buf endo = { 0 };

        skr_buf_init(&endo, SKR_MAX_HTTP_BODY_BYTES);
        TRY(skr_buf_append_str(&endo, "{\"Uvm\":[\""));
        TRY(append_b64url_pad(&endo, ev->uvm_endorsement));
        TRY(skr_buf_append_str(&endo, "\"]}"));
        TRY(skr_buf_append_str(out, "\",\"Endorsements\":\""));
        TRY(append_b64url_pad(out, skr_buf_span(&endo)));
    }
    return skr_buf_append_str(out, "\"}");
}

skr_err
skr_maa_request_json(const struct skr_maa_evidence *ev, struct skr_buf *out)
{
    _cleanup_(skr_buf_donep) struct skr_buf bundle = { 0 };
    uint64_t nonce = 0;

    ENSURE(ev != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (ev->report.len != SKR_SNP_REPORT_LEN) {
        FAILF(SKR_E_INVALID_ARG, "MAA: the report has %zu bytes, not %u", ev->report.len,
              SKR_SNP_REPORT_LEN);
    }
    ENSURE(ev->vcek_chain.len > 0, SKR_E_INVALID_ARG, "MAA: no VCEK certificate chain");
    ENSURE(ev->runtime_data.len > 0, SKR_E_INVALID_ARG, "MAA: no runtime data");
    skr_buf_init(&bundle, SKR_MAX_HTTP_BODY_BYTES);
    TRY(maa_bundle(ev, &bundle));
    TRY_OSSL(RAND_bytes((unsigned char *)&nonce, sizeof(nonce)), SKR_E_INTERNAL,
             "RAND_bytes failed");
    /* a JSON number as SCC sends, kept within int64 so that every JSON parser reads it */
    nonce &= (uint64_t)INT64_MAX;
    /* SCC member order: report, runtimeData, initTimeData, nonce */
    TRY(skr_buf_append_str(out, "{\"report\":\""));
    TRY(append_b64url_pad(out, skr_buf_span(&bundle)));
    TRY(skr_buf_append_str(out, "\",\"runtimeData\":{\"data\":\""));
    TRY(append_b64url_pad(out, ev->runtime_data));
    TRY(skr_buf_append_str(out, "\",\"dataType\":\"JSON\"}"));
    if (ev->init_data.len > 0) {
        /* the security policy is rego, not JSON: MAA binds it through HOST_DATA only */
        TRY(skr_buf_append_str(out, ",\"initTimeData\":{\"data\":\""));
        TRY(append_b64url_pad(out, ev->init_data));
        TRY(skr_buf_append_str(out, "\",\"dataType\":\"Binary\"}"));
    }
    return skr_buf_printf(out, ",\"nonce\":%" PRIu64 "}", nonce);
}

/* Appends a JWS-shaped string member of a response object, NUL-terminated. */
static skr_err
jws_member(struct skr_span body, const char *what, const char *member, struct skr_buf *out)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    json_t *v = NULL;
    size_t start;
    const char *s = NULL;
    skr_err e;

    ENSURE(out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    start = out->len;
    TRY(skr_json_parse_object(body, SKR_MAX_JSON_BYTES, what, &doc));
    v = json_object_get(doc, member);
    if (!json_is_string(v)) {
        FAILF(SKR_E_MALFORMED, "%s: member '%s' missing or not a string", what, member);
    }
    if (!is_compact_jws(json_string_value(v), json_string_length(v))) {
        FAILF(SKR_E_MALFORMED, "%s: '%s' is empty, too long or not a compact JWS", what, member);
    }
    e = skr_buf_append(out, json_string_value(v), json_string_length(v));
    if (e == SKR_OK) {
        e = skr_buf_cstr(out, &s);
    }
    /* tokens: no copy outlives the document in jansson's heap */
    wipe_json_string(v);
    if (e != SKR_OK) {
        out->len = start;
        FAILF(SKR_E_TOO_LARGE, "%s: '%s' does not fit", what, member);
    }
    return SKR_OK;
}

skr_err
skr_maa_parse_response(struct skr_span body, struct skr_buf *ret_token)
{
    return jws_member(body, "MAA attest response", "token", ret_token);
}

/* An api-version: 1..AZ_MAX_ID of [0-9A-Za-z.-]. */
static skr_err
check_api_version(const char *v)
{
    ENSURE(is_ident(v, AZ_MAX_ID, ".-"), SKR_E_INVALID_ARG,
           "api-version must be letters, digits, '.' and '-'");
    return SKR_OK;
}

skr_err
skr_maa_attest(struct skr_http_client *c, const char *maa_endpoint, const char *api_version,
               const char *user_agent, const struct skr_maa_evidence *ev, struct skr_buf *ret_token,
               struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf body = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf ua = { 0 };
    _cleanup_(skr_http_reply_done) struct skr_http_reply reply = { 0 };
    const char *headers[4] = { "Content-Type: application/json", "Accept: application/json", NULL,
                               NULL };
    struct skr_upstream scratch = { 0 };
    const char *u = NULL;

    up = up != NULL ? up : &scratch;
    *up = (struct skr_upstream){ 0 };
    ENSURE(c != NULL && ev != NULL && ret_token != NULL, SKR_E_INVALID_ARG, "NULL argument");
    api_version = api_version != NULL ? api_version : AZ_MAA_API_VERSION;
    TRY(check_api_version(api_version));
    skr_buf_init(&url, AZ_MAX_URL);
    TRY(skr_endpoint_base(maa_endpoint, &url, NULL));
    TRY(skr_buf_printf(&url, "/attest/SevSnpVm?api-version=%s", api_version));
    TRY(skr_buf_cstr(&url, &u));
    if (user_agent != NULL) {
        size_t n = strnlen(user_agent, AZ_MAX_USERAGENT + 1);

        ENSURE(n > 0 && n <= AZ_MAX_USERAGENT, SKR_E_INVALID_ARG, "MAA: bad User-Agent length");
        for (size_t i = 0; i < n; i++) {
            ENSURE(user_agent[i] >= 0x20 && user_agent[i] < 0x7f, SKR_E_INVALID_ARG,
                   "MAA: User-Agent must be printable ASCII");
        }
        skr_buf_init(&ua, AZ_MAX_USERAGENT + 16);
        TRY(skr_buf_printf(&ua, "User-Agent: %s", user_agent));
        TRY(skr_buf_cstr(&ua, &headers[2]));
    }
    skr_buf_init(&body, SKR_MAX_HTTP_BODY_BYTES);
    TRY(skr_maa_request_json(ev, &body));
    TRY(az_request(c,
                   &(struct az_call){ .service = "MAA",
                                      .method = "POST",
                                      .url = u,
                                      .headers = headers,
                                      .body = skr_buf_span(&body) },
                   &reply, up));
    return skr_maa_parse_response(skr_buf_span(&reply.body), ret_token);
}

/* ---- AKV: requests -------------------------------------------------------------------------- */

static bool
valid_key_name(const char *s, size_t n)
{
    if (n == 0 || n > AZ_MAX_KEY_NAME) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && s[i] != '-') {
            return false;
        }
    }
    return true;
}

/* "name" or "name/version" (a trailing '/' dropped), each part checked. */
static skr_err
append_kid_path(const char *p, size_t n, struct skr_buf *out)
{
    const char *slash = NULL;

    if (n > 0 && p[n - 1] == '/') {
        n--;
    }
    slash = memchr(p, '/', n);
    if (slash == NULL) {
        ENSURE(valid_key_name(p, n), SKR_E_INVALID_ARG,
               "key name must be 1..127 of letters, digits and '-'");
    } else {
        size_t a = (size_t)(slash - p);

        ENSURE(valid_key_name(p, a) && valid_key_name(slash + 1, n - a - 1), SKR_E_INVALID_ARG,
               "key id must be name or name/version, each 1..127 of letters, digits and '-'");
    }
    return skr_buf_append(out, p, n);
}

/* {base}/keys/{name[/version]} for kid, which may be a full key URL on the same vault. */
static skr_err
akv_key_url(const char *akv_endpoint, const char *kid, struct skr_buf *url)
{
    size_t n;

    ENSURE(kid != NULL, SKR_E_INVALID_ARG, "NULL key id");
    n = strnlen(kid, AZ_MAX_URL + 1);
    ENSURE(n <= AZ_MAX_URL, SKR_E_INVALID_ARG, "key id too long");
    TRY(skr_endpoint_base(akv_endpoint, url, NULL));
    if (strncasecmp(kid, "https://", 8) == 0) {
        _cleanup_(skr_buf_donep) struct skr_buf base = { 0 };
        const char *path = strchr(kid + 8, '/');
        char authority[AZ_MAX_ENDPOINT + 1];
        size_t an;

        ENSURE(path != NULL && strncmp(path, "/keys/", 6) == 0, SKR_E_INVALID_ARG,
               "key URL must be https://<vault>/keys/<name>[/<version>]");
        an = (size_t)(path - kid);
        ENSURE(an < sizeof(authority), SKR_E_INVALID_ARG, "key URL too long");
        memcpy(authority, kid, an);
        authority[an] = '\0';
        skr_buf_init(&base, AZ_MAX_URL);
        TRY(skr_endpoint_base(authority, &base, NULL));
        ENSURE(base.len == url->len &&
                   strncasecmp((const char *)base.ptr, (const char *)url->ptr, url->len) == 0,
               SKR_E_INVALID_ARG, "key URL names another vault than the endpoint");
        TRY(skr_buf_append_str(url, "/keys/"));
        return append_kid_path(path + 6, strlen(path + 6), url);
    }
    TRY(skr_buf_append_str(url, "/keys/"));
    return append_kid_path(kid, n, url);
}

/* "Authorization: Bearer <bearer>" in a wiped buffer. */
static skr_err
auth_header(const char *bearer, struct skr_buf *out, const char **ret)
{
    ENSURE(bearer != NULL && is_visible_token(bearer, SKR_MAX_JWT_BYTES), SKR_E_INVALID_ARG,
           "AKV: the access token is empty, too long or not a token");
    TRY(skr_buf_append_str(out, "Authorization: Bearer "));
    TRY(skr_buf_append_str(out, bearer));
    return skr_buf_cstr(out, ret);
}

skr_err
skr_akv_release(struct skr_http_client *c, const char *akv_endpoint, const char *kid,
                const char *api_version, const char *bearer, const char *maa_token,
                enum skr_kw_alg enc, struct skr_buf *ret_jws, struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf auth = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf body = { 0 };
    _cleanup_(skr_http_reply_done) struct skr_http_reply reply = { 0 };
    const char *headers[4] = { NULL, "Content-Type: application/json", "Accept: application/json",
                               NULL };
    const char *enc_name = skr_kw_alg_name(enc);
    struct skr_upstream scratch = { 0 };
    const char *u = NULL;

    up = up != NULL ? up : &scratch;
    *up = (struct skr_upstream){ 0 };
    ENSURE(c != NULL && maa_token != NULL && ret_jws != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(strcmp(enc_name, "unknown") != 0, SKR_E_INVALID_ARG, "AKV: unknown enc algorithm");
    ENSURE(is_compact_jws(maa_token, strnlen(maa_token, SKR_MAX_JWT_BYTES + 1)), SKR_E_INVALID_ARG,
           "AKV: the attestation token is not a compact JWS");
    api_version = api_version != NULL ? api_version : AZ_AKV_API_VERSION;
    TRY(check_api_version(api_version));
    skr_buf_init(&url, AZ_MAX_URL);
    TRY(akv_key_url(akv_endpoint, kid, &url));
    TRY(skr_buf_printf(&url, "/release?api-version=%s", api_version));
    TRY(skr_buf_cstr(&url, &u));
    skr_buf_init(&auth, SKR_MAX_JWT_BYTES + 64);
    TRY(auth_header(bearer, &auth, &headers[0]));
    skr_buf_init(&body, SKR_MAX_JWT_BYTES + 256);
    TRY(skr_buf_printf(&body, "{\"target\":\"%s\",\"enc\":\"%s\"}", maa_token, enc_name));
    TRY(az_request(c,
                   &(struct az_call){ .service = "AKV",
                                      .method = "POST",
                                      .url = u,
                                      .headers = headers,
                                      .body = skr_buf_span(&body),
                                      .is_release = true },
                   &reply, up));
    return skr_akv_parse_release_response(skr_buf_span(&reply.body), ret_jws);
}

skr_err
skr_akv_parse_release_response(struct skr_span body, struct skr_buf *ret_jws)
{
    return jws_member(body, "AKV release response", "value", ret_jws);
}

skr_err
skr_akv_get_key(struct skr_http_client *c, const char *akv_endpoint, const char *kid,
                const char *api_version, const char *bearer, json_t **ret, struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf auth = { 0 };
    _cleanup_(skr_http_reply_done) struct skr_http_reply reply = { 0 };
    const char *headers[3] = { NULL, "Accept: application/json", NULL };
    struct skr_upstream scratch = { 0 };
    const char *u = NULL;

    up = up != NULL ? up : &scratch;
    *up = (struct skr_upstream){ 0 };
    ENSURE(c != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    api_version = api_version != NULL ? api_version : AZ_AKV_API_VERSION;
    TRY(check_api_version(api_version));
    skr_buf_init(&url, AZ_MAX_URL);
    TRY(akv_key_url(akv_endpoint, kid, &url));
    TRY(skr_buf_printf(&url, "?api-version=%s", api_version));
    TRY(skr_buf_cstr(&url, &u));
    skr_buf_init(&auth, SKR_MAX_JWT_BYTES + 64);
    TRY(auth_header(bearer, &auth, &headers[0]));
    TRY(az_request(
        c, &(struct az_call){ .service = "AKV", .method = "GET", .url = u, .headers = headers },
        &reply, up));
    return skr_json_parse_object(skr_buf_span(&reply.body), SKR_MAX_JSON_BYTES, "AKV key bundle",
                                 ret);
}

/* ---- AKV: keys with a body (import, create, update) ----------------------------------------- */

/* One keys call with a JSON body: url = {base}/keys/{kid}{suffix}?api-version=...; the key
 * bundle of a 2xx reply in *ret. kid must be a plain name unless allow_version. */
static skr_err
akv_key_call(struct skr_http_client *c, const char *method, const char *akv_endpoint,
             const char *kid, bool allow_version, const char *suffix, const char *api_version,
             const char *bearer, struct skr_span body, json_t **ret, struct skr_upstream *up)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf auth = { 0 };
    _cleanup_(skr_http_reply_done) struct skr_http_reply reply = { 0 };
    const char *headers[4] = { NULL, "Content-Type: application/json", "Accept: application/json",
                               NULL };
    struct skr_upstream scratch = { 0 };
    const char *u = NULL;

    up = up != NULL ? up : &scratch;
    *up = (struct skr_upstream){ 0 };
    ENSURE(c != NULL && kid != NULL && ret != NULL && body.ptr != NULL, SKR_E_INVALID_ARG,
           "NULL argument");
    ENSURE(body.len > 0 && body.len <= SKR_MAX_HTTP_BODY_BYTES, SKR_E_INVALID_ARG,
           "AKV: empty or oversized request body");
    ENSURE(allow_version || strchr(kid, '/') == NULL, SKR_E_INVALID_ARG,
           "AKV: expected a key name without a version");
    api_version = api_version != NULL ? api_version : AZ_AKV_API_VERSION;
    TRY(check_api_version(api_version));
    skr_buf_init(&url, AZ_MAX_URL);
    TRY(akv_key_url(akv_endpoint, kid, &url));
    TRY(skr_buf_printf(&url, "%s?api-version=%s", suffix, api_version));
    TRY(skr_buf_cstr(&url, &u));
    skr_buf_init(&auth, SKR_MAX_JWT_BYTES + 64);
    TRY(auth_header(bearer, &auth, &headers[0]));
    TRY(az_request(
        c,
        &(struct az_call){
            .service = "AKV", .method = method, .url = u, .headers = headers, .body = body },
        &reply, up));
    return skr_json_parse_object(skr_buf_span(&reply.body), SKR_MAX_JSON_BYTES, "AKV key bundle",
                                 ret);
}

skr_err
skr_akv_import_key(struct skr_http_client *c, const char *akv_endpoint, const char *name,
                   const char *api_version, const char *bearer, struct skr_span body, json_t **ret,
                   struct skr_upstream *up)
{
    return akv_key_call(c, "PUT", akv_endpoint, name, false, "", api_version, bearer, body, ret,
                        up);
}

skr_err
skr_akv_create_key(struct skr_http_client *c, const char *akv_endpoint, const char *name,
                   const char *api_version, const char *bearer, struct skr_span body, json_t **ret,
                   struct skr_upstream *up)
{
    return akv_key_call(c, "POST", akv_endpoint, name, false, "/create", api_version, bearer, body,
                        ret, up);
}

skr_err
skr_akv_update_key(struct skr_http_client *c, const char *akv_endpoint, const char *kid,
                   const char *api_version, const char *bearer, struct skr_span body, json_t **ret,
                   struct skr_upstream *up)
{
    return akv_key_call(c, "PATCH", akv_endpoint, kid, true, "", api_version, bearer, body, ret,
                        up);
}

/* ---- AKV: the release JWS ------------------------------------------------------------------ */

void
skr_akv_released_done(struct skr_akv_released *r)
{
    if (r == NULL) {
        return;
    }
    json_decref(r->payload);
    json_decref(r->key_hsm);
    skr_buf_done(&r->ciphertext);
    *r = (struct skr_akv_released){ 0 };
}

static void
skr_akv_released_donep(struct skr_akv_released *r)
{
    skr_akv_released_done(r);
}

static bool
valid_kty(const char *kty)
{
    static const char *const ok[] = { "RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM" };

    for (size_t i = 0; i < SKR_ARRAY_LEN(ok); i++) {
        if (strcmp(kty, ok[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* key_ops: strings of letters, digits, '-' and '_' (they are written into the JWK by hand). */
static skr_err
check_key_ops(const json_t *ops)
{
    size_t i;
    const json_t *op = NULL;

    ENSURE(json_is_array(ops), SKR_E_MALFORMED, "release payload: key_ops is not an array");
    ENSURE(json_array_size(ops) <= AZ_MAX_KEY_OPS, SKR_E_MALFORMED,
           "release payload: too many key_ops");
    json_array_foreach(ops, i, op)
    {
        ENSURE(json_is_string(op) && strlen(json_string_value(op)) == json_string_length(op) &&
                   is_ident(json_string_value(op), AZ_MAX_KEY_OP, "-_"),
               SKR_E_MALFORMED, "release payload: a key_ops entry is not an operation name");
    }
    return SKR_OK;
}

/* key_hsm: base64url of {"ciphertext","header":{"alg"?,"enc"?,"kid"},"schema_version"}. */
static skr_err
parse_key_hsm(const char *text, const char *request_enc, struct skr_akv_released *r)
{
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    const json_t *hdr = NULL;
    const char *ver = NULL;
    const char *ct = NULL;
    const char *enc = NULL;

    skr_buf_init(&raw, AZ_MAX_KEY_HSM + 3);
    if (skr_b64_decode(skr_span_str(text), SKR_B64_URL, &raw) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "release payload: key_hsm is not base64url");
    }
    TRY(skr_json_parse_object(skr_buf_span(&raw), AZ_MAX_KEY_HSM, "key_hsm", &r->key_hsm));
    TRY(skr_json_get_str(r->key_hsm, "schema_version", &ver));
    ENSURE(strcmp(ver, "1.0") == 0 || strcmp(ver, "1.0.0") == 0, SKR_E_MALFORMED,
           "key_hsm: schema_version is not 1.0 or 1.0.0");
    hdr = json_object_get(r->key_hsm, "header");
    ENSURE(json_is_object(hdr), SKR_E_MALFORMED,
           "key_hsm: member 'header' missing or not an object");
    TRY(skr_json_get_str(hdr, "kid", &r->wrap_kid));
    ENSURE(r->wrap_kid[0] != '\0', SKR_E_MALFORMED, "key_hsm: header.kid is empty");
    TRY(skr_json_opt_str(hdr, "enc", &enc));
    ENSURE(enc != NULL || request_enc != NULL, SKR_E_MALFORMED,
           "key_hsm: no header.enc and no request.enc");
    ENSURE(enc == NULL || request_enc == NULL || strcmp(enc, request_enc) == 0, SKR_E_MALFORMED,
           "key_hsm: header.enc differs from request.enc");
    TRY(skr_kw_alg_parse(enc != NULL ? enc : request_enc, &r->enc));
    TRY(skr_json_get_str(r->key_hsm, "ciphertext", &ct));
    skr_buf_init(&r->ciphertext, AZ_MAX_CIPHERTEXT + 3);
    if (skr_b64_decode(skr_span_str(ct), SKR_B64_URL, &r->ciphertext) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "key_hsm: ciphertext is not base64url or too long");
    }
    ENSURE(r->ciphertext.len > 0, SKR_E_MALFORMED, "key_hsm: empty ciphertext");
    return SKR_OK;
}

static skr_err
parse_payload(struct skr_span payload, struct skr_akv_released *r)
{
    const json_t *req = NULL;
    const json_t *key = NULL;
    const json_t *jwk = NULL;
    const char *request_enc = NULL;
    const char *key_hsm = NULL;

    TRY(skr_json_parse_object(payload, SKR_MAX_JWT_BYTES, "release payload", &r->payload));
    req = json_object_get(r->payload, "request");
    if (req != NULL) {
        ENSURE(json_is_object(req), SKR_E_MALFORMED, "release payload: request is not an object");
        TRY(skr_json_opt_str(req, "enc", &request_enc));
    }
    key = json_object_get(json_object_get(r->payload, "response"), "key");
    ENSURE(json_is_object(key), SKR_E_MALFORMED, "release payload: no response.key object");
    jwk = json_object_get(key, "key");
    ENSURE(json_is_object(jwk), SKR_E_MALFORMED, "release payload: no response.key.key object");
    TRY(skr_json_get_str(jwk, "kty", &r->kty));
    ENSURE(valid_kty(r->kty), SKR_E_MALFORMED,
           "release payload: kty is not RSA, RSA-HSM, EC, EC-HSM, oct or oct-HSM");
    r->key_ops = json_object_get(jwk, "key_ops");
    if (r->key_ops != NULL) {
        TRY(check_key_ops(r->key_ops));
    }
    TRY(skr_json_opt_str(jwk, "kid", &r->key_id));
    r->release_policy = json_object_get(key, "release_policy");
    ENSURE(r->release_policy == NULL || json_is_object(r->release_policy), SKR_E_MALFORMED,
           "release payload: release_policy is not an object");
    TRY(skr_json_get_str(jwk, "key_hsm", &key_hsm));
    return parse_key_hsm(key_hsm, request_enc, r);
}

skr_err
skr_akv_release_parse_payload(struct skr_span payload, struct skr_akv_released *ret)
{
    _cleanup_(skr_akv_released_donep) struct skr_akv_released r = { 0 };

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(parse_payload(payload, &r));
    *ret = r;
    r = (struct skr_akv_released){ 0 };
    return SKR_OK;
}

/* x5c[0] chains to trust with x5c[1..] as untrusted intermediates, for TLS server use. */
static skr_err
verify_chain(X509 *leaf, STACK_OF(X509) * x5c, X509_STORE *trust)
{
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *untrusted = sk_X509_new_null();
    _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();

    ENSURE(untrusted != NULL && ctx != NULL, SKR_E_NOMEM, "out of memory");
    for (int i = 1; i < sk_X509_num(x5c); i++) {
        X509 *c = sk_X509_value(x5c, i);

        ENSURE(X509_up_ref(c) == 1, SKR_E_INTERNAL, "X509_up_ref failed");
        if (sk_X509_push(untrusted, c) <= 0) {
            X509_free(c);
            FAIL(SKR_E_NOMEM, "out of memory");
        }
    }
    TRY_OSSL(X509_STORE_CTX_init(ctx, trust, leaf, untrusted), SKR_E_INTERNAL,
             "X509_STORE_CTX_init failed");
    TRY_OSSL(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), SKR_E_INTERNAL,
             "X509_STORE_CTX_set_purpose failed");
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);

        FAILF(SKR_E_VERIFY, "release JWS: the x5c chain does not verify to a trusted root: %s",
              X509_verify_cert_error_string(err));
    }
    return SKR_OK;
}

/* The leaf is issued for host: an IP literal against its IP SANs, else a DNS name check. */
static skr_err
verify_name(X509 *leaf, const char *host)
{
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    int rc = is_ip ? X509_check_ip_asc(leaf, host, 0)
                   : X509_check_host(leaf, host, strlen(host), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                     NULL);

    if (rc != 1) {
        FAILF(SKR_E_VERIFY, "release JWS: the signing certificate is not issued for %.253s", host);
    }
    return SKR_OK;
}

/* Signature with x5c[0], x5t#S256, chain and name (PROTOCOLS.md §7.2). */
static skr_err
verify_signer(const struct skr_jws *jws, const char *host, X509_STORE *trust)
{
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *x5c = NULL;
    X509 *leaf = NULL;
    EVP_PKEY *pub = NULL;
    skr_err e = skr_jws_x5c(jws, &x5c);

    if (e == SKR_E_NOT_FOUND) {
        FAIL(SKR_E_VERIFY, "release JWS: the header has no x5c");
    }
    if (e != SKR_OK) {
        return e;
    }
    leaf = sk_X509_value(x5c, 0);
    ENSURE(leaf != NULL, SKR_E_VERIFY, "release JWS: empty x5c");
    pub = X509_get0_pubkey(leaf);
    ENSURE(pub != NULL, SKR_E_VERIFY, "release JWS: x5c[0] has no usable public key");
    e = skr_jws_verify(jws, pub);
    if (e != SKR_OK) {
        return prefix_err(SKR_E_VERIFY, "release JWS: signature with x5c[0]");
    }
    TRY(skr_jws_check_x5t(jws, leaf, NULL));
    TRY(verify_chain(leaf, x5c, trust));
    return verify_name(leaf, host);
}

skr_err
skr_akv_release_verify(struct skr_span jws_text, const char *akv_endpoint, X509_STORE *trust,
                       struct skr_akv_released *ret)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf base = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf host = { 0 };
    const char *h = NULL;

    ENSURE(trust != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    skr_buf_init(&base, AZ_MAX_URL);
    skr_buf_init(&host, AZ_MAX_URL);
    TRY(skr_endpoint_base(akv_endpoint, &base, &host));
    TRY(skr_buf_cstr(&host, &h));
    TRY(skr_jws_parse(jws_text, &jws));
    TRY(verify_signer(&jws, h, trust));
    return skr_akv_release_parse_payload(skr_buf_span(&jws.payload), ret);
}

/* ---- the released key as a JWK -------------------------------------------------------------- */

/* A writer over secret memory: a first pass with p == NULL only counts. */
struct jw {
    char *p;
    size_t len;
};

static void
jw_put(struct jw *w, const char *s, size_t n)
{
    if (w->p != NULL) {
        memcpy(w->p + w->len, s, n);
    }
    w->len += n;
}

static void
jw_str(struct jw *w, const char *s)
{
    jw_put(w, s, strlen(s));
}

/* RFC 4648 §5 without padding, by hand, so the text exists only in w. */
static void
jw_b64url(struct jw *w, struct skr_span in)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;

    for (; i + 3 <= in.len; i += 3) {
        uint32_t v = (uint32_t)in.ptr[i] << 16 | (uint32_t)in.ptr[i + 1] << 8 | in.ptr[i + 2];
        char q[4] = { tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63] };

        jw_put(w, q, 4);
    }
    if (in.len - i == 1) {
        uint32_t v = (uint32_t)in.ptr[i] << 16;
        char q[2] = { tab[v >> 18], tab[(v >> 12) & 63] };

        jw_put(w, q, 2);
    } else if (in.len - i == 2) {
        uint32_t v = (uint32_t)in.ptr[i] << 16 | (uint32_t)in.ptr[i + 1] << 8;
        char q[3] = { tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63] };

        jw_put(w, q, 3);
    }
}

/* One JWK member: a base64url number, a plain string, or key_ops. */
struct jwk_member {
    const char *name;
    struct skr_span num;
    const char *text;
    const json_t *ops;
};

#define JWK_MAX_MEMBERS 11

struct jwk_out {
    struct jwk_member m[JWK_MAX_MEMBERS]; /* in sorted order of name */
    size_t n;
    struct skr_secret *num[8]; /* the numbers' bytes */
    size_t nnum;
};

static void
jwk_out_done(struct jwk_out *o)
{
    for (size_t i = 0; i < o->nnum; i++) {
        skr_secret_free(o->num[i]);
    }
    *o = (struct jwk_out){ 0 };
}

static void
jw_members(struct jw *w, const struct jwk_out *o)
{
    jw_str(w, "{");
    for (size_t i = 0; i < o->n; i++) {
        const struct jwk_member *m = &o->m[i];

        jw_str(w, i > 0 ? ",\"" : "\"");
        jw_str(w, m->name);
        jw_str(w, "\":");
        if (m->ops != NULL) {
            size_t j;
            const json_t *op = NULL;

            jw_str(w, "[");
            json_array_foreach(m->ops, j, op)
            {
                jw_str(w, j > 0 ? ",\"" : "\"");
                jw_str(w, json_string_value(op));
                jw_str(w, "\"");
            }
            jw_str(w, "]");
        } else if (m->text != NULL) {
            jw_str(w, "\"");
            jw_str(w, m->text);
            jw_str(w, "\"");
        } else {
            jw_str(w, "\"");
            jw_b64url(w, m->num);
            jw_str(w, "\"");
        }
    }
    jw_str(w, "}");
}

static skr_err
jwk_write(const struct jwk_out *o, struct skr_secret **ret)
{
    struct jw count = { 0 };
    struct jw w = { 0 };
    struct skr_secret *s = NULL;

    jw_members(&count, o);
    TRY(skr_secret_new(count.len + 1, &s));
    w.p = (char *)s->ptr;
    jw_members(&w, o);
    if (w.len != count.len) {
        skr_secret_free(s);
        FAIL(SKR_E_INTERNAL, "JWK writer: length drift");
    }
    s->ptr[w.len] = '\0';
    s->len = w.len;
    *ret = s;
    return SKR_OK;
}

static void
jwk_add(struct jwk_out *o, const char *name, struct skr_span num, const char *text)
{
    o->m[o->n++] = (struct jwk_member){ .name = name, .num = num, .text = text };
}

/* key_ops sorts between "k"/"e"/"d"... and "kty": added at its place by the callers. */
static void
jwk_add_ops(struct jwk_out *o, const json_t *ops)
{
    if (ops != NULL && json_array_size(ops) > 0) {
        o->m[o->n++] = (struct jwk_member){ .name = "key_ops", .ops = ops };
    }
}

static void
bn_clear_freep(BIGNUM **p)
{
    BN_clear_free(*p);
}

/* A BIGNUM parameter of pk as big-endian bytes (minimal, or left-padded to pad) in a secret. */
static skr_err
jwk_add_bn(struct jwk_out *o, EVP_PKEY *pk, const char *param, const char *name, size_t pad)
{
    _cleanup_(bn_clear_freep) BIGNUM *bn = NULL;
    struct skr_secret *s = NULL;
    size_t n;

    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1 || bn == NULL) {
        ERR_clear_error();
        FAILF(SKR_E_MALFORMED, "released key: no '%s' parameter", name);
    }
    n = pad > 0 ? pad : (size_t)BN_num_bytes(bn);
    ENSURE(n > 0 && (size_t)BN_num_bytes(bn) <= n, SKR_E_MALFORMED,
           "released key: a parameter is zero or too long");
    TRY(skr_secret_new(n, &s));
    o->num[o->nnum++] = s;
    ENSURE(BN_bn2binpad(bn, s->ptr, (int)n) == (int)n, SKR_E_INTERNAL, "BN_bn2binpad failed");
    jwk_add(o, name, skr_secret_span(s), NULL);
    return SKR_OK;
}

/* jwx rsaPrivateKey: d, dp, dq, e, key_ops, kty, n, p, q, qi (minimal big-endian). */
static skr_err
jwk_rsa(EVP_PKEY *pk, const json_t *ops, struct jwk_out *o)
{
    _cleanup_(bn_clear_freep) BIGNUM *f3 = NULL;

    ENSURE(EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA, SKR_E_MALFORMED,
           "released key: kty is RSA but the key material is not an RSA key");
    ENSURE(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR3, &f3) != 1, SKR_E_UNSUPPORTED,
           "released key: multi-prime RSA keys are not supported");
    ERR_clear_error();
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_D, "d", 0));
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, "dp", 0));
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, "dq", 0));
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_E, "e", 0));
    jwk_add_ops(o, ops);
    jwk_add(o, "kty", skr_span_make(NULL, 0), "RSA");
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_N, "n", 0));
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_FACTOR1, "p", 0));
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_FACTOR2, "q", 0));
    return jwk_add_bn(o, pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, "qi", 0);
}

/* jwx ecdsaPrivateKey: crv, d, key_ops, kty, x, y (each number at the field length). */
static skr_err
jwk_ec(EVP_PKEY *pk, const json_t *ops, struct jwk_out *o)
{
    static const struct {
        const char *group;
        const char *crv;
        size_t len;
    } curves[] = {
        { "prime256v1", "P-256", 32 },
        { "secp384r1", "P-384", 48 },
        { "secp521r1", "P-521", 66 },
    };
    char group[64] = "";
    size_t ci = SKR_ARRAY_LEN(curves);

    ENSURE(EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC, SKR_E_MALFORMED,
           "released key: kty is EC but the key material is not an EC key");
    TRY_OSSL(
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL),
        SKR_E_MALFORMED, "released key: EC key without a named curve");
    for (size_t i = 0; i < SKR_ARRAY_LEN(curves); i++) {
        if (strcmp(group, curves[i].group) == 0) {
            ci = i;
        }
    }
    ENSURE(ci < SKR_ARRAY_LEN(curves), SKR_E_UNSUPPORTED,
           "released key: EC curve is not P-256, P-384 or P-521");
    jwk_add(o, "crv", skr_span_make(NULL, 0), curves[ci].crv);
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_PRIV_KEY, "d", curves[ci].len));
    jwk_add_ops(o, ops);
    jwk_add(o, "kty", skr_span_make(NULL, 0), "EC");
    TRY(jwk_add_bn(o, pk, OSSL_PKEY_PARAM_EC_PUB_X, "x", curves[ci].len));
    return jwk_add_bn(o, pk, OSSL_PKEY_PARAM_EC_PUB_Y, "y", curves[ci].len);
}

static bool
kty_is(const char *kty, const char *base)
{
    size_t n = strlen(base);

    return strncmp(kty, base, n) == 0 && (kty[n] == '\0' || strcmp(kty + n, "-HSM") == 0);
}

skr_err
skr_akv_unwrap_jwk(const struct skr_akv_released *rel, EVP_PKEY *transfer_key,
                   const char *transfer_kid, struct skr_secret **ret)
{
    _cleanup_(skr_secret_freep) struct skr_secret *plain = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;
    _cleanup_(jwk_out_done) struct jwk_out o = { 0 };

    ENSURE(rel != NULL && rel->kty != NULL && rel->wrap_kid != NULL && transfer_key != NULL &&
               transfer_kid != NULL && ret != NULL,
           SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(strcmp(rel->wrap_kid, transfer_kid) == 0, SKR_E_VERIFY,
           "key_hsm is wrapped for another key than the transfer key (header.kid)");
    TRY(skr_rsa_aes_unwrap(transfer_key, rel->enc, skr_buf_span(&rel->ciphertext), &plain));
    if (kty_is(rel->kty, "oct")) {
        /* jwx symmetricKey: k, key_ops, kty */
        jwk_add(&o, "k", skr_secret_span(plain), NULL);
        jwk_add_ops(&o, rel->key_ops);
        jwk_add(&o, "kty", skr_span_make(NULL, 0), "oct");
        return jwk_write(&o, ret);
    }
    TRY(skr_kw_pkcs8_to_pkey(skr_secret_span(plain), &pk));
    if (kty_is(rel->kty, "RSA")) {
        TRY(jwk_rsa(pk, rel->key_ops, &o));
    } else if (kty_is(rel->kty, "EC")) {
        TRY(jwk_ec(pk, rel->key_ops, &o));
    } else {
        FAIL(SKR_E_UNSUPPORTED, "released key type is not supported");
    }
    return jwk_write(&o, ret);
}
