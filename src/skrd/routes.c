/*
 * routes.c - skrd's HTTP API, the reference sidecar's routes and JSON (PROTOCOLS.md §8.1):
 *
 *   GET  /status            200 {"message":"Status OK"} | 503 {"message":"Status NOT OK",...}
 *   POST /attest/raw        {"runtime_data"} -> {"report": hex}
 *   POST /attest/combined   {"runtime_data"} -> {"endorsed_tcb","endorsements","evidence",
 *                                                 "uvm_endorsements"}
 *   POST /attest/maa        {"maa_endpoint","runtime_data"} -> {"token"}
 *   POST /key/release       {"maa_endpoint","akv_endpoint","kid","access_token"?}
 *                           -> {"key": "<JWK as a JSON string>"}
 *   GET  /diagnose?maa=&akv=&kid=[&no_release=1]
 *                           the release flow step by step (lib/diagnose.h), the JSON of
 *                           `skr diagnose --format json`; loopback and Unix socket peers only
 *
 * Errors are {"error": "..."} plus "stage", "code", "upstream_status", "request_id" and "hint"
 * when known; 400 for bad input, 403 for a failed attestation or release (500 for
 * /attest/combined) as the reference, 404, 405 with Allow, 413, 503 before the client is ready
 * or past --max-releases. One info line per request: route, status, duration, stage.
 *
 * The released key never passes through jansson: its response body is built by hand in a
 * wiped buffer that the server sends without copying and wipes afterwards.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "b64.h"
#include "diagnose.h"
#include "json.h"
#include "skr_limits.h"
#include "skrd.h"

struct outcome {
    char stage[16]; /* for the log line; "" on success */
};

typedef skr_err (*route_fn)(struct skrd_state *st, const struct skr_http_request *req,
                            struct skr_http_response *resp, struct outcome *out);

/* ---- answers --------------------------------------------------------------------------------- */

/* Printable ASCII copy of s (messages may be cut inside a UTF-8 sequence), then redacted. */
static void
safe_text(char *dst, size_t cap, const char *s)
{
    size_t n = 0;

    for (; s != NULL && n + 1 < cap && s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];

        dst[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[n] = '\0';
    (void)skr_log_redact(dst);
}

static skr_err
set_str_if(json_t *obj, const char *key, const char *value)
{
    char safe[600];

    if (value == NULL || value[0] == '\0') {
        return SKR_OK;
    }
    safe_text(safe, sizeof(safe), value);
    return skr_json_set(obj, key, json_string(safe));
}

/* {"error": message, "stage", and from info "code", "upstream_status", "request_id", "hint"}. */
static skr_err respond_error(struct skr_http_response *resp, unsigned int status, const char *stage,
                             const skr_error_info *info, struct outcome *out, const char *fmt, ...)
    SKR_PRINTF(6, 7);

static skr_err
respond_error(struct skr_http_response *resp, unsigned int status, const char *stage,
              const skr_error_info *info, struct outcome *out, const char *fmt, ...)
{
    _cleanup_(json_decrefp) json_t *v = json_object();
    char msg[600];
    va_list ap;

    ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    TRY(set_str_if(v, "error", msg[0] != '\0' ? msg : "error"));
    TRY(set_str_if(v, "stage", stage));
    if (info != NULL) {
        TRY(set_str_if(v, "code", info->code));
        if (info->upstream_status != 0) {
            TRY(skr_json_set(v, "upstream_status", json_integer(info->upstream_status)));
        }
        TRY(set_str_if(v, "request_id", info->request_id));
        TRY(set_str_if(v, "hint", info->hint));
    }
    if (out != NULL) {
        (void)snprintf(out->stage, sizeof(out->stage), "%s", stage != NULL ? stage : "");
    }
    return skr_http_respond_json(resp, status, v);
}

/* Bad input: 400 with stage "input". */
#define BAD_INPUT(resp, out, ...) respond_error((resp), 400, "input", NULL, (out), __VA_ARGS__)

/* A libskr failure: 400 when the library blames the input (stage "input"), else the route's
 * status with the library's stage. */
static skr_err
respond_lib_error(struct skr_http_response *resp, unsigned int status, const char *what, skr_err e,
                  const skr_error_info *info, struct outcome *out)
{
    const char *stage = info->stage[0] != '\0' ? info->stage : NULL;
    const char *msg = info->message[0] != '\0' ? info->message : skr_err_str(e);

    if ((stage == NULL && e == SKR_E_INVALID_ARG) ||
        (stage != NULL && strcmp(stage, "input") == 0)) {
        return respond_error(resp, 400, "input", info, out, "%s", msg);
    }
    if (stage == NULL) {
        stage = "internal";
    }
    return respond_error(resp, status, stage, info, out, "%s failed: %s", what, msg);
}

/* ---- request bodies -------------------------------------------------------------------------- */

/* The body as a JSON object, or a 400 already in resp (*ret stays NULL). */
static skr_err
parse_body(const struct skr_http_request *req, struct skr_http_response *resp, struct outcome *out,
           json_t **ret)
{
    skr_err e;

    *ret = NULL;
    if (req->body.len == 0) {
        return BAD_INPUT(resp, out, "request body is empty: expected a JSON object");
    }
    e = skr_json_parse_object(req->body, SKR_SKRD_MAX_BODY_BYTES, "request body", ret);
    if (e != SKR_OK) {
        return BAD_INPUT(resp, out, "%s", skr_err_msg());
    }
    return SKR_OK;
}

/* A string member: present (or optional), a string, not empty. On failure a 400 is in resp and
 * *ret is NULL; *ok says which. */
static skr_err
get_field(json_t *obj, const char *key, bool required, struct skr_http_response *resp,
          struct outcome *out, const char **ret, bool *ok)
{
    json_t *v = json_object_get(obj, key);

    *ret = NULL;
    *ok = false;
    if (v == NULL || (!required && json_is_null(v))) {
        if (required) {
            return BAD_INPUT(resp, out, "missing required field '%s'", key);
        }
        *ok = true;
        return SKR_OK;
    }
    if (!json_is_string(v)) {
        return BAD_INPUT(resp, out, "field '%s' must be a string%s", key,
                         json_is_null(v) ? ", not null" : "");
    }
    if (json_string_length(v) == 0) {
        if (!required) {
            *ok = true; /* "" means "not given", as in the reference */
            return SKR_OK;
        }
        return BAD_INPUT(resp, out, "field '%s' is empty", key);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return BAD_INPUT(resp, out, "field '%s' contains a NUL character", key);
    }
    *ret = json_string_value(v);
    *ok = true;
    return SKR_OK;
}

/* runtime_data: standard base64 (the reference's base64.StdEncoding), decoded into data. */
static skr_err
get_runtime_data(json_t *obj, struct skr_http_response *resp, struct outcome *out,
                 struct skr_buf *data, bool *ok)
{
    const char *s = NULL;
    skr_err e;

    TRY(get_field(obj, "runtime_data", true, resp, out, &s, ok));
    if (!*ok) {
        return SKR_OK;
    }
    *ok = false;
    skr_buf_init(data, SKR_SKRD_MAX_BODY_BYTES);
    e = skr_b64_decode(skr_span_str(s), SKR_B64_STD, data);
    if (e == SKR_E_NOMEM) {
        return e;
    }
    if (e != SKR_OK) {
        return BAD_INPUT(resp, out, "field 'runtime_data' is not valid standard base64: %s",
                         skr_err_msg());
    }
    *ok = true;
    return SKR_OK;
}

/* ---- readiness ------------------------------------------------------------------------------- */

static skr_client *
ready_client(struct skrd_state *st)
{
    if (atomic_load_explicit(&st->phase, memory_order_acquire) != SKRD_READY) {
        return NULL;
    }
    return st->client;
}

/* The reason skrd is not ready, for /status and the 503 of other routes. */
static const char *
not_ready_reason(struct skrd_state *st, const char **stage)
{
    if (atomic_load_explicit(&st->phase, memory_order_acquire) == SKRD_FAILED) {
        *stage = st->reason_stage[0] != '\0' ? st->reason_stage : NULL;
        return st->reason;
    }
    *stage = NULL;
    return "starting: opening the SNP device and loading the security context and certificates";
}

static skr_err
respond_not_ready(struct skrd_state *st, struct skr_http_response *resp, struct outcome *out)
{
    const char *stage = NULL;
    const char *why = not_ready_reason(st, &stage);

    return respond_error(resp, 503, stage, NULL, out, "skrd is not ready: %s", why);
}

/* ---- routes ---------------------------------------------------------------------------------- */

static skr_err
route_status(struct skrd_state *st, const struct skr_http_request *req,
             struct skr_http_response *resp, struct outcome *out)
{
    _cleanup_(json_decrefp) json_t *v = NULL;
    const char *stage = NULL;
    char why[600];

    (void)req;
    if (ready_client(st) != NULL) {
        v = json_pack("{s:s}", "message", "Status OK");
        ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
        return skr_http_respond_json(resp, 200, v);
    }
    safe_text(why, sizeof(why), not_ready_reason(st, &stage));
    v = json_pack("{s:s,s:s}", "message", "Status NOT OK", "error", why);
    ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
    if (stage != NULL) {
        TRY(skr_json_set(v, "stage", json_string(stage)));
    }
    (void)snprintf(out->stage, sizeof(out->stage), "%s", stage != NULL ? stage : "starting");
    return skr_http_respond_json(resp, 503, v);
}

static skr_err
route_attest_raw(struct skrd_state *st, const struct skr_http_request *req,
                 struct skr_http_response *resp, struct outcome *out)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    _cleanup_(json_decrefp) json_t *v = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf data = { 0 };
    skr_client *c = ready_client(st);
    uint8_t report[SKR_REPORT_SIZE];
    skr_error_info info = { 0 };
    bool ok = false;
    skr_err e;

    if (c == NULL) {
        return respond_not_ready(st, resp, out);
    }
    TRY(parse_body(req, resp, out, &body));
    if (body == NULL) {
        return SKR_OK;
    }
    TRY(get_runtime_data(body, resp, out, &data, &ok));
    if (!ok) {
        return SKR_OK;
    }
    e = skr_attest_raw(c, data.ptr, data.len, report, &info);
    if (e != SKR_OK) {
        return respond_lib_error(resp, 403, "attestation", e, &info, out);
    }
    v = json_object();
    ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set_hex(v, "report", report, sizeof(report)));
    return skr_http_respond_json(resp, 200, v);
}

static skr_err
route_attest_combined(struct skrd_state *st, const struct skr_http_request *req,
                      struct skr_http_response *resp, struct outcome *out)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf data = { 0 };
    skr_client *c = ready_client(st);
    skr_error_info info = { 0 };
    char *json = NULL;
    bool ok = false;
    skr_err e;

    if (c == NULL) {
        return respond_not_ready(st, resp, out);
    }
    TRY(parse_body(req, resp, out, &body));
    if (body == NULL) {
        return SKR_OK;
    }
    TRY(get_runtime_data(body, resp, out, &data, &ok));
    if (!ok) {
        return SKR_OK;
    }
    e = skr_attest_combined(c, data.ptr, data.len, &json, &info);
    if (e != SKR_OK) {
        /* The reference answers 500 here (403 on the other attestation routes). */
        return respond_lib_error(resp, 500, "attestation", e, &info, out);
    }
    skr_buf_reset(&resp->body);
    e = skr_buf_append_str(&resp->body, json);
    skr_string_free(json);
    TRY(e);
    TRY(skr_http_response_add_header(resp, "Content-Type", "application/json"));
    resp->status = 200;
    return SKR_OK;
}

static skr_err
route_attest_maa(struct skrd_state *st, const struct skr_http_request *req,
                 struct skr_http_response *resp, struct outcome *out)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    _cleanup_(json_decrefp) json_t *v = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf data = { 0 };
    skr_client *c = ready_client(st);
    skr_error_info info = { 0 };
    _cleanup_(json_decrefp) json_t *parsed = NULL;
    json_error_t jerr;
    const char *maa = NULL;
    char *token = NULL;
    bool ok = false;
    skr_err e;

    if (c == NULL) {
        return respond_not_ready(st, resp, out);
    }
    TRY(parse_body(req, resp, out, &body));
    if (body == NULL) {
        return SKR_OK;
    }
    TRY(get_field(body, "maa_endpoint", true, resp, out, &maa, &ok));
    if (!ok) {
        return SKR_OK;
    }
    TRY(get_runtime_data(body, resp, out, &data, &ok));
    if (!ok) {
        return SKR_OK;
    }
    /* MAA takes the runtime data as JSON (dataType "JSON"): say so here rather than relay
     * MAA's refusal as a failed attestation. */
    parsed = json_loadb((const char *)data.ptr, data.len, JSON_DECODE_ANY, &jerr);
    if (parsed == NULL) {
        return BAD_INPUT(resp, out,
                         "field 'runtime_data' must decode to JSON for /attest/maa: %s at "
                         "position %d",
                         jerr.text, jerr.position);
    }
    e = skr_attest_maa(c, maa, data.ptr, data.len, &token, &info);
    if (e != SKR_OK) {
        return respond_lib_error(resp, 403, "attestation", e, &info, out);
    }
    v = json_pack("{s:s}", "token", token);
    skr_string_free(token);
    ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
    return skr_http_respond_json(resp, 200, v);
}

/* Appends s as a JSON string (RFC 8259 §7) without any intermediate copy. */
static skr_err
append_json_string(struct skr_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    TRY(skr_buf_append_byte(b, '"'));
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            uint8_t esc[2] = { '\\', c };

            TRY(skr_buf_append(b, esc, sizeof(esc)));
        } else if (c < 0x20) {
            uint8_t esc[6] = { '\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15] };

            TRY(skr_buf_append(b, esc, sizeof(esc)));
        } else {
            TRY(skr_buf_append_byte(b, c));
        }
    }
    return skr_buf_append_byte(b, '"');
}

/* {"key":"<jwk escaped>"} into the response body, which is marked secret. */
static skr_err
respond_key(struct skr_http_response *resp, const char *jwk)
{
    static const char head[] = "{\"key\":";
    size_t n = strlen(jwk);

    skr_buf_reset(&resp->body);
    resp->secret_body = true;
    /* One allocation for the common case (a JWK has no characters that need escaping beyond a
     * few quotes), so that growth copies stay rare; every copy is wiped by skr_buf anyway. */
    TRY(skr_buf_reserve(&resp->body, n + n / 4 + sizeof(head) + 4));
    TRY(skr_buf_append_str(&resp->body, head));
    TRY(append_json_string(&resp->body, jwk));
    TRY(skr_buf_append_byte(&resp->body, '}'));
    TRY(skr_http_response_add_header(resp, "Content-Type", "application/json"));
    TRY(skr_http_response_add_header(resp, "Cache-Control", "no-store"));
    resp->status = 200;
    return SKR_OK;
}

static skr_err
release(struct skrd_state *st, skr_client *c, const struct skr_http_request *req,
        struct skr_http_response *resp, struct outcome *out)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    skr_release_request rr = { 0 };
    skr_error_info info = { 0 };
    char *jwk = NULL;
    bool ok = false;
    skr_err e;

    (void)st;
    TRY(parse_body(req, resp, out, &body));
    if (body == NULL) {
        return SKR_OK;
    }
    TRY(get_field(body, "maa_endpoint", true, resp, out, &rr.maa_endpoint, &ok));
    if (ok) {
        TRY(get_field(body, "akv_endpoint", true, resp, out, &rr.akv_endpoint, &ok));
    }
    if (ok) {
        TRY(get_field(body, "kid", true, resp, out, &rr.kid, &ok));
    }
    if (ok) {
        TRY(get_field(body, "access_token", false, resp, out, &rr.access_token, &ok));
    }
    if (!ok) {
        return SKR_OK;
    }
    e = skr_key_release(c, &rr, &jwk, &info);
    if (e != SKR_OK) {
        return respond_lib_error(resp, 403, "secure key release", e, &info, out);
    }
    e = respond_key(resp, jwk);
    skr_string_free(jwk);
    return e;
}

/*
 * Takes one of the --max-releases slots for a release or a diagnosis. When all are taken,
 * answers 503 with Retry-After (what names the work in the message), sets *e to the handler's
 * result and returns false. The caller gives a slot it got back with atomic_fetch_sub.
 */
static bool
admit(struct skrd_state *st, struct skr_http_response *resp, struct outcome *out, const char *what,
      skr_err *e)
{
    if (atomic_fetch_add(&st->releases, 1u) < st->max_releases) {
        return true;
    }
    atomic_fetch_sub(&st->releases, 1u);
    *e = respond_error(resp, 503, "input", NULL, out,
                       "too many concurrent %s (at most %u, --max-releases); retry shortly", what,
                       st->max_releases);
    if (*e == SKR_OK) {
        *e = skr_http_response_add_header(resp, "Retry-After", "1");
    }
    return false;
}

static skr_err
route_key_release(struct skrd_state *st, const struct skr_http_request *req,
                  struct skr_http_response *resp, struct outcome *out)
{
    skr_client *c = ready_client(st);
    skr_err e;

    if (c == NULL) {
        return respond_not_ready(st, resp, out);
    }
    if (!admit(st, resp, out, "key releases", &e)) {
        return e;
    }
    e = release(st, c, req, resp, out);
    atomic_fetch_sub(&st->releases, 1u);
    return e;
}

/* A yes/no query parameter: absent or 0/false -> false, 1/true -> true; else *ok is false. */
static bool
query_flag(const struct skr_http_request *req, const char *key, bool *ok)
{
    const char *v = skr_http_request_query(req, key);

    *ok = true;
    if (v == NULL || strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
        return false;
    }
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || v[0] == '\0') {
        return true;
    }
    *ok = false;
    return false;
}

/* GET /diagnose: for local callers only, since its details name the identity, the key and the
 * platform, and it makes a real release attempt. With a ready client it diagnoses through it;
 * before that (or when the client failed) it builds its own from the configuration. */
static skr_err
route_diagnose(struct skrd_state *st, const struct skr_http_request *req,
               struct skr_http_response *resp, struct outcome *out)
{
    _cleanup_(json_decrefp) json_t *v = NULL;
    struct skr_diag_request dr = { 0 };
    skr_client *c = ready_client(st);
    bool ok = false;
    skr_err e;

    if (!req->remote_is_loopback) {
        return respond_error(resp, 403, "input", NULL, out,
                             "GET /diagnose answers local callers only (a loopback address or "
                             "the Unix socket)");
    }
    if (c == NULL && st->lib_cfg == NULL) {
        return respond_not_ready(st, resp, out);
    }
    dr.maa_endpoint = skr_http_request_query(req, "maa");
    dr.akv_endpoint = skr_http_request_query(req, "akv");
    dr.kid = skr_http_request_query(req, "kid");
    dr.no_release = query_flag(req, "no_release", &ok);
    if (!ok) {
        return BAD_INPUT(resp, out, "query parameter 'no_release' must be 1, true, 0 or false");
    }
    if ((dr.akv_endpoint == NULL || dr.akv_endpoint[0] == '\0') !=
        (dr.kid == NULL || dr.kid[0] == '\0')) {
        return BAD_INPUT(resp, out, "query parameters 'akv' and 'kid' go together");
    }
    if (!admit(st, resp, out, "key releases and diagnoses", &e)) {
        return e;
    }
    e = skr_diagnose(st->lib_cfg, c, &dr, &v);
    atomic_fetch_sub(&st->releases, 1u);
    if (e == SKR_E_INVALID_ARG) {
        return BAD_INPUT(resp, out, "%s", skr_err_msg());
    }
    TRY(e);
    if (!json_is_true(json_object_get(v, "ok"))) {
        (void)snprintf(out->stage, sizeof(out->stage), "%s", "diagnose");
    }
    TRY(skr_http_respond_json(resp, 200, v));
    return skr_http_response_add_header(resp, "Cache-Control", "no-store");
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static const struct route {
    const char *path;
    const char *method;
    route_fn fn;
} routes[] = {
    { "/status", "GET", route_status },
    { "/attest/raw", "POST", route_attest_raw },
    { "/attest/combined", "POST", route_attest_combined },
    { "/attest/maa", "POST", route_attest_maa },
    { "/key/release", "POST", route_key_release },
    { "/diagnose", "GET", route_diagnose },
};

static double
elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* One line per request: method, route (unknown paths are not echoed), status, duration, stage. */
static void
log_request(const struct skr_http_request *req, const struct route *r, unsigned int status,
            double ms, const char *stage)
{
    char method[17];

    safe_text(method, sizeof(method), req->method);
    skr_log_info("%s %s -> %u in %.1f ms%s%s", method, r != NULL ? r->path : "(unknown route)",
                 status, ms, stage != NULL && stage[0] != '\0' ? " stage=" : "",
                 stage != NULL ? stage : "");
}

skr_err
skrd_handle(void *ctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct skrd_state *st = ctx;
    const struct route *r = NULL;
    struct outcome out = { 0 };
    struct timespec t0;
    skr_err e;

    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < SKR_ARRAY_LEN(routes); i++) {
        if (strcmp(req->path, routes[i].path) == 0) {
            r = &routes[i];
            break;
        }
    }
    if (r == NULL) {
        e = respond_error(resp, 404, "input", NULL, &out,
                          "no such route (routes: GET /status, POST /attest/raw, POST "
                          "/attest/combined, POST /attest/maa, POST /key/release, GET "
                          "/diagnose)");
    } else if (strcmp(req->method, r->method) != 0) {
        e = respond_error(resp, 405, "input", NULL, &out, "method not allowed: %s takes %s only",
                          r->path, r->method);
        if (e == SKR_OK) {
            e = skr_http_response_add_header(resp, "Allow", r->method);
        }
    } else {
        skr_log_debug("%s %s: %zu body bytes", r->method, r->path, req->body.len);
        e = r->fn(st, req, resp, &out);
    }
    log_request(req, r, e == SKR_OK ? resp->status : 500, elapsed_ms(&t0),
                e == SKR_OK ? out.stage : "internal");
    if (e != SKR_OK) {
        skr_log_err(e, "%s: internal error", r != NULL ? r->path : "request");
    }
    return e;
}

skr_err
skrd_handle_error(void *ctx, const struct skr_http_request *req, unsigned int status,
                  const char *message, struct skr_http_response *resp)
{
    const struct route *r = NULL;
    skr_err e;

    (void)ctx;
    for (size_t i = 0; i < SKR_ARRAY_LEN(routes); i++) {
        if (strcmp(req->path, routes[i].path) == 0) {
            r = &routes[i];
        }
    }
    if (status == 413) {
        e = respond_error(resp, 413, "input", NULL, NULL,
                          "request body exceeds the limit of %u bytes", SKR_SKRD_MAX_BODY_BYTES);
        log_request(req, r, 413, 0.0, "input");
        return e;
    }
    /* 500: skrd_handle already logged it. */
    return respond_error(resp, status, "internal", NULL, NULL, "internal error: %s", message);
}
