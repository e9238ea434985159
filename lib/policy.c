/*
 * policy.c - Key Vault release policy: parse, evaluate, explain (PROTOCOLS.md §7.5-§7.6 and
 * pitfall 12; grammar from MicrosoftDocs key-management-policy-grammar.md).
 *
 * Evaluation always walks the whole policy and records every comparison, so the decision the
 * emulator takes and the explanation `skr policy check` / `skr diagnose` print are the same
 * computation. Choices where Key Vault's behaviour is undocumented are listed in policy.h.
 */
#include "policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "json.h"
#include "skr_limits.h"

#define PATH_MAX_LEN 160
/* Longest value rendering in explanations, and one "claim: expected X, token has Y". */
#define SHOW_MAX 200
#define DESC_LEN (SHOW_MAX * 2 + 200)

static const char *const reserved_ops[] = {
    "notEquals", "less", "lessOrEquals", "greater", "greaterOrEquals", "exists",
};

/* A name from the input, fit for an error message: printable ASCII, at most 64 characters. */
static void
clip(const char *s, size_t len, char *out, size_t n)
{
    size_t o = 0;
    size_t i;

    for (i = 0; i < len && o + 4 < n && i < 64; i++) {
        uint8_t c = (uint8_t)s[i];

        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < len && o + 4 <= n) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
}

static void
clip_str(const char *s, char *out, size_t n)
{
    clip(s, strlen(s), out, n);
}

/* ---- freeing ---------------------------------------------------------------------------- */

static void
cond_done(struct skr_policy_cond *c)
{
    for (size_t i = 0; i < c->n_children; i++) {
        cond_done(&c->children[i]);
    }
    free(c->children);
    free(c->claim);
    free(c->canonical);
    json_decref(c->value);
    *c = (struct skr_policy_cond){ 0 };
}

void
skr_policy_free(struct skr_policy *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n_authorities; i++) {
        free(p->authorities[i].authority);
        cond_done(&p->authorities[i].root);
    }
    free(p->authorities);
    free(p);
}

/* ---- parsing ---------------------------------------------------------------------------- */

struct pctx {
    bool legacy; /* version 0.2 */
    size_t nodes;
};

/* A non-empty string member without NUL, at most SKR_POLICY_MAX_NAME bytes, copied. */
static skr_err
get_name(const json_t *v, const char *path, const char *key, char **ret)
{
    size_t len;

    if (v == NULL) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: missing '%s'", path, key);
    }
    if (!json_is_string(v)) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: '%s' must be a string", path, key);
    }
    len = json_string_length(v);
    if (len == 0) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: '%s' is empty", path, key);
    }
    if (len > SKR_POLICY_MAX_NAME) {
        FAILF(SKR_E_TOO_LARGE, "release policy: %s: '%s' is longer than %u bytes", path, key,
              SKR_POLICY_MAX_NAME);
    }
    if (strlen(json_string_value(v)) != len) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: '%s' contains a NUL character", path, key);
    }
    *ret = strdup(json_string_value(v));
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

/* Canonical string form shared by policy values and claim values (policy.h). */
static skr_err
canonical_scalar(const json_t *v, char **ret)
{
    char tmp[32];
    const char *s = tmp;

    if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (json_is_integer(v)) {
        (void)snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_true(v)) {
        s = "true";
    } else if (json_is_false(v)) {
        s = "false";
    } else {
        FAIL(SKR_E_INTERNAL, "not a comparable scalar");
    }
    *ret = strdup(s);
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static skr_err
parse_value(const json_t *v, const char *path, const char *claim, struct skr_policy_cond *c)
{
    char name[80];

    clip_str(claim, name, sizeof(name));
    if (json_is_real(v)) {
        FAILF(SKR_E_UNSUPPORTED,
              "release policy: %s: claim '%s': real-number values are not supported "
              "(write the value as a string or an integer)",
              path, name);
    }
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            FAILF(SKR_E_MALFORMED, "release policy: %s: claim '%s': value contains a NUL", path,
                  name);
        }
        ENSURE(json_string_length(v) <= SKR_MAX_POLICY_BYTES, SKR_E_TOO_LARGE,
               "release policy: value too long");
        c->value = json_stringn(json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        c->value = json_integer(json_integer_value(v));
    } else if (json_is_boolean(v)) {
        c->value = json_boolean(json_is_true(v));
    } else {
        FAILF(SKR_E_MALFORMED,
              "release policy: %s: claim '%s': value must be a string, number or boolean, not %s",
              path, name,
              json_is_object(v)  ? "an object"
              : json_is_array(v) ? "an array"
                                 : "null");
    }
    ENSURE(c->value != NULL, SKR_E_NOMEM, "out of memory");
    return canonical_scalar(c->value, &c->canonical);
}

static bool
is_reserved_op(const char *key)
{
    for (size_t i = 0; i < SKR_ARRAY_LEN(reserved_ops); i++) {
        if (strcmp(key, reserved_ops[i]) == 0) {
            return true;
        }
    }
    return false;
}

static skr_err
parse_claim(const struct pctx *ctx, json_t *o, const char *path, struct skr_policy_cond *c)
{
    json_t *equals = NULL;
    json_t *lcond = NULL;
    json_t *lvalue = NULL;
    const char *key;
    json_t *v;
    char name[80];
    char k[80];

    c->kind = SKR_POLICY_CLAIM;
    TRY(get_name(json_object_get(o, "claim"), path, "claim", &c->claim));
    clip_str(c->claim, name, sizeof(name));
    for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        clip_str(key, k, sizeof(k));
        if (strcmp(key, "claim") == 0) {
            continue;
        }
        if (strcmp(key, "equals") == 0) {
            equals = v;
        } else if (strcmp(key, "condition") == 0) {
            lcond = v;
        } else if (strcmp(key, "value") == 0) {
            lvalue = v;
        } else if (is_reserved_op(key)) {
            FAILF(SKR_E_UNSUPPORTED,
                  "release policy: %s: claim '%s': operator '%s' is not supported "
                  "(Key Vault implements only 'equals')",
                  path, name, k);
        } else if (strcmp(key, "anyOf") == 0 || strcmp(key, "allOf") == 0) {
            FAILF(SKR_E_MALFORMED,
                  "release policy: %s: a condition has either 'claim' or '%s', not both", path, k);
        } else {
            FAILF(SKR_E_MALFORMED, "release policy: %s: claim '%s': unknown operator '%s'", path,
                  name, k);
        }
    }
    if (equals != NULL) {
        if (lcond != NULL || lvalue != NULL) {
            FAILF(SKR_E_MALFORMED,
                  "release policy: %s: claim '%s': mixes 'equals' with the 0.2 "
                  "'condition'/'value' form",
                  path, name);
        }
        return parse_value(equals, path, c->claim, c);
    }
    if (lcond == NULL && lvalue == NULL) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: claim '%s' has no operator (expected 'equals')",
              path, name);
    }
    if (!ctx->legacy) {
        FAILF(SKR_E_MALFORMED,
              "release policy: %s: claim '%s': the 'condition'/'value' form needs version 0.2 "
              "(use \"equals\": value)",
              path, name);
    }
    if (lcond == NULL || !json_is_string(lcond)) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: claim '%s': 'condition' must be a string", path,
              name);
    }
    if (strcmp(json_string_value(lcond), "equals") != 0) {
        clip(json_string_value(lcond), json_string_length(lcond), k, sizeof(k));
        if (is_reserved_op(json_string_value(lcond))) {
            FAILF(SKR_E_UNSUPPORTED,
                  "release policy: %s: claim '%s': operator '%s' is not supported "
                  "(Key Vault implements only 'equals')",
                  path, name, k);
        }
        FAILF(SKR_E_MALFORMED, "release policy: %s: claim '%s': unknown operator '%s'", path, name,
              k);
    }
    if (lvalue == NULL) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: claim '%s': missing 'value'", path, name);
    }
    c->legacy_form = true;
    return parse_value(lvalue, path, c->claim, c);
}

static skr_err parse_cond(struct pctx *ctx, json_t *o, size_t depth, const char *path,
                          struct skr_policy_cond *c);

/* A list of conditions under an allOf/anyOf member; depth counts list levels from 1. */
static skr_err
parse_list(struct pctx *ctx, json_t *arr, bool all_of, size_t depth, const char *path,
           struct skr_policy_cond *group)
{
    const char *op = all_of ? "allOf" : "anyOf";
    size_t n;

    group->kind = all_of ? SKR_POLICY_ALL_OF : SKR_POLICY_ANY_OF;
    if (depth > SKR_POLICY_MAX_DEPTH) {
        FAILF(SKR_E_TOO_LARGE, "release policy: %s: conditions nested deeper than %d levels", path,
              SKR_POLICY_MAX_DEPTH);
    }
    if (!json_is_array(arr)) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: '%s' must be an array", path, op);
    }
    n = json_array_size(arr);
    if (n == 0) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: '%s' is empty", path, op);
    }
    if (n > SKR_POLICY_MAX_LIST) {
        FAILF(SKR_E_TOO_LARGE, "release policy: %s: '%s' has %zu entries (limit %d)", path, op, n,
              SKR_POLICY_MAX_LIST);
    }
    if (ctx->nodes + n > SKR_POLICY_MAX_NODES) {
        FAILF(SKR_E_TOO_LARGE, "release policy: more than %d conditions", SKR_POLICY_MAX_NODES);
    }
    ctx->nodes += n;
    group->children = calloc(n, sizeof(*group->children));
    ENSURE(group->children != NULL, SKR_E_NOMEM, "out of memory");
    group->n_children = n;
    for (size_t i = 0; i < n; i++) {
        char sub[PATH_MAX_LEN];

        (void)snprintf(sub, sizeof(sub), "%s.%s[%zu]", path, op, i);
        TRY(parse_cond(ctx, json_array_get(arr, i), depth, sub, &group->children[i]));
    }
    return SKR_OK;
}

static skr_err
parse_cond(struct pctx *ctx, json_t *o, size_t depth, const char *path, struct skr_policy_cond *c)
{
    json_t *any = NULL;
    json_t *all = NULL;

    if (!json_is_object(o)) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: a condition must be an object", path);
    }
    if (json_object_get(o, "claim") != NULL) {
        return parse_claim(ctx, o, path, c);
    }
    any = json_object_get(o, "anyOf");
    all = json_object_get(o, "allOf");
    if (any != NULL && all != NULL) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: a condition has 'anyOf' or 'allOf', not both",
              path);
    }
    if (any == NULL && all == NULL) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: a condition needs 'claim', 'anyOf' or 'allOf'",
              path);
    }
    if (json_object_size(o) != 1) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: unknown member next to '%s'", path,
              any != NULL ? "anyOf" : "allOf");
    }
    return parse_list(ctx, any != NULL ? any : all, all != NULL, depth + 1, path, c);
}

static skr_err
parse_authority(struct pctx *ctx, json_t *o, const char *path, struct skr_policy_authority *a)
{
    json_t *any = NULL;
    json_t *all = NULL;
    const char *key;
    json_t *v;
    char k[80];

    if (!json_is_object(o)) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: an authority entry must be an object", path);
    }
    for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        if (strcmp(key, "authority") == 0) {
            continue;
        }
        if (strcmp(key, "anyOf") == 0) {
            any = v;
        } else if (strcmp(key, "allOf") == 0) {
            all = v;
        } else {
            clip_str(key, k, sizeof(k));
            if (strcmp(key, "claim") == 0) {
                FAILF(SKR_E_MALFORMED,
                      "release policy: %s: a claim condition must be inside the authority's "
                      "'allOf' or 'anyOf'",
                      path);
            }
            FAILF(SKR_E_MALFORMED, "release policy: %s: unknown member '%s'", path, k);
        }
    }
    TRY(get_name(json_object_get(o, "authority"), path, "authority", &a->authority));
    if (any != NULL && all != NULL) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: an authority has 'allOf' or 'anyOf', not both",
              path);
    }
    if (any == NULL && all == NULL) {
        FAILF(SKR_E_MALFORMED, "release policy: %s: an authority needs 'allOf' or 'anyOf'", path);
    }
    return parse_list(ctx, any != NULL ? any : all, all != NULL, 1, path, &a->root);
}

skr_err
skr_policy_parse_json(json_t *obj, struct skr_policy **ret)
{
    _cleanup_(skr_policy_freep) struct skr_policy *p = NULL;
    struct pctx ctx = { 0 };
    const char *key;
    json_t *v;
    json_t *ver = NULL;
    json_t *any = NULL;
    size_t n;
    char k[80];

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(json_is_object(obj), SKR_E_MALFORMED, "release policy: expected a JSON object");
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        if (strcmp(key, "version") == 0) {
            ver = v;
        } else if (strcmp(key, "anyOf") == 0) {
            any = v;
        } else {
            clip_str(key, k, sizeof(k));
            if (strcmp(key, "allOf") == 0) {
                FAILF(SKR_E_MALFORMED,
                      "release policy: top level must be 'anyOf' (of authorities), not 'allOf'");
            }
            FAILF(SKR_E_MALFORMED, "release policy: unknown top-level member '%s'", k);
        }
    }
    ENSURE(ver != NULL, SKR_E_MALFORMED, "release policy: missing 'version' property");
    ENSURE(json_is_string(ver), SKR_E_MALFORMED, "release policy: 'version' must be a string");
    p = calloc(1, sizeof(*p));
    ENSURE(p != NULL, SKR_E_NOMEM, "out of memory");
    if (strcmp(json_string_value(ver), "1.0.0") == 0 ||
        strcmp(json_string_value(ver), "1.0") == 0) {
        (void)snprintf(p->version, sizeof(p->version), "1.0.0");
    } else if (strcmp(json_string_value(ver), "0.2") == 0) {
        (void)snprintf(p->version, sizeof(p->version), "0.2");
        ctx.legacy = true;
    } else {
        clip(json_string_value(ver), json_string_length(ver), k, sizeof(k));
        FAILF(SKR_E_UNSUPPORTED,
              "release policy: unsupported version '%s' (expected 1.0.0, 1.0 or 0.2)", k);
    }
    ENSURE(any != NULL, SKR_E_MALFORMED, "release policy: missing 'anyOf' property");
    ENSURE(json_is_array(any), SKR_E_MALFORMED,
           "release policy: 'anyOf' must be an array of authorities");
    n = json_array_size(any);
    ENSURE(n > 0, SKR_E_MALFORMED, "release policy: 'anyOf' is empty (no authority)");
    if (n > SKR_POLICY_MAX_LIST) {
        FAILF(SKR_E_TOO_LARGE, "release policy: 'anyOf' has %zu authorities (limit %d)", n,
              SKR_POLICY_MAX_LIST);
    }
    p->authorities = calloc(n, sizeof(*p->authorities));
    ENSURE(p->authorities != NULL, SKR_E_NOMEM, "out of memory");
    p->n_authorities = n;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX_LEN];

        (void)snprintf(path, sizeof(path), "anyOf[%zu]", i);
        TRY(parse_authority(&ctx, json_array_get(any, i), path, &p->authorities[i]));
    }
    *ret = TAKE_PTR(p);
    return SKR_OK;
}

skr_err
skr_policy_parse(struct skr_span text, struct skr_policy **ret)
{
    _cleanup_(json_decrefp) json_t *j = NULL;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (text.len > SKR_MAX_POLICY_BYTES) {
        FAILF(SKR_E_TOO_LARGE, "release policy: larger than %u bytes", SKR_MAX_POLICY_BYTES);
    }
    TRY(skr_json_parse_object(text, SKR_MAX_POLICY_BYTES, "release policy", &j));
    return skr_policy_parse_json(j, ret);
}

/* "application/json" optionally followed by parameters ("; charset=utf-8; version=1.0"). */
static bool
is_json_content_type(const char *ct)
{
    static const char prefix[] = "application/json";
    size_t n = sizeof(prefix) - 1;

    if (strncasecmp(ct, prefix, n) != 0) {
        return false;
    }
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

skr_err
skr_policy_parse_release(const json_t *release_policy, struct skr_policy **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    const char *ct = NULL;
    const char *data = NULL;
    skr_err e;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(json_is_object(release_policy), SKR_E_MALFORMED,
           "release_policy: expected a JSON object");
    if (skr_json_opt_str(release_policy, "contentType", &ct) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "release_policy: 'contentType' must be a string");
    }
    if (ct != NULL && !is_json_content_type(ct)) {
        char c[80];

        clip_str(ct, c, sizeof(c));
        FAILF(SKR_E_UNSUPPORTED, "release_policy: contentType '%s' is not application/json", c);
    }
    if (skr_json_get_str(release_policy, "data", &data) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "release_policy: 'data' is missing or not a string");
    }
    skr_buf_init(&text, SKR_MAX_POLICY_BYTES);
    e = skr_b64_decode(skr_span_str(data), SKR_B64_ANY, &text);
    if (e == SKR_E_TOO_LARGE || e == SKR_E_NOMEM) {
        FAILF(e, "release_policy: decoded 'data' is larger than %u bytes", SKR_MAX_POLICY_BYTES);
    }
    ENSURE(e == SKR_OK, SKR_E_MALFORMED, "release_policy: 'data' is not base64 or base64url");
    return skr_policy_parse(skr_buf_span(&text), ret);
}

skr_err
skr_policy_load(struct skr_span text, struct skr_policy **ret)
{
    _cleanup_(json_decrefp) json_t *j = NULL;
    json_t *rp = NULL;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(skr_json_parse_object(text, SKR_MAX_JSON_BYTES, "release policy", &j));
    rp = json_object_get(j, "release_policy");
    if (json_is_object(rp)) {
        return skr_policy_parse_release(rp, ret);
    }
    if (json_object_get(j, "data") != NULL && json_object_get(j, "anyOf") == NULL &&
        json_object_get(j, "version") == NULL) {
        return skr_policy_parse_release(j, ret);
    }
    if (text.len > SKR_MAX_POLICY_BYTES) {
        FAILF(SKR_E_TOO_LARGE, "release policy: larger than %u bytes", SKR_MAX_POLICY_BYTES);
    }
    return skr_policy_parse_json(j, ret);
}

/* ---- serialization ---------------------------------------------------------------------- */

static skr_err
cond_to_json(const struct skr_policy_cond *c, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    _cleanup_(json_decrefp) json_t *arr = NULL;

    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    if (c->kind == SKR_POLICY_CLAIM) {
        TRY(skr_json_set(o, "claim", json_string(c->claim)));
        if (c->legacy_form) {
            TRY(skr_json_set(o, "condition", json_string("equals")));
            TRY(skr_json_set(o, "value", json_incref(c->value)));
        } else {
            TRY(skr_json_set(o, "equals", json_incref(c->value)));
        }
        *ret = TAKE_PTR(o);
        return SKR_OK;
    }
    arr = json_array();
    ENSURE(arr != NULL, SKR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_children; i++) {
        json_t *child = NULL;

        TRY(cond_to_json(&c->children[i], &child));
        ENSURE(json_array_append_new(arr, child) == 0, SKR_E_NOMEM, "out of memory");
    }
    TRY(skr_json_set(o, c->kind == SKR_POLICY_ALL_OF ? "allOf" : "anyOf", TAKE_PTR(arr)));
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

skr_err
skr_policy_to_json(const struct skr_policy *p, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    _cleanup_(json_decrefp) json_t *auths = json_array();

    ENSURE(p != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(o != NULL && auths != NULL, SKR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_authorities; i++) {
        const struct skr_policy_authority *a = &p->authorities[i];
        json_t *entry = NULL;

        /* The root is an allOf/anyOf group: its object form is exactly the authority entry
         * minus the "authority" member. */
        TRY(cond_to_json(&a->root, &entry));
        ENSURE(json_array_append_new(auths, entry) == 0, SKR_E_NOMEM, "out of memory");
        TRY(skr_json_set(entry, "authority", json_string(a->authority)));
    }
    TRY(skr_json_set(o, "anyOf", TAKE_PTR(auths)));
    TRY(skr_json_set(o, "version", json_string(p->version)));
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

skr_err
skr_policy_to_release(const struct skr_policy *p, const char *content_type, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *pj = NULL;
    _cleanup_(json_decrefp) json_t *o = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
    const char *s;

    ENSURE(p != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(skr_policy_to_json(p, &pj));
    skr_buf_init(&text, SKR_MAX_JSON_BYTES);
    TRY(skr_json_dump(pj, JSON_COMPACT | JSON_SORT_KEYS, &text));
    skr_buf_init(&b64, SKR_MAX_JSON_BYTES * 2);
    TRY(skr_b64_encode(skr_buf_span(&text), SKR_B64_URL, &b64));
    TRY(skr_buf_cstr(&b64, &s));
    o = json_object();
    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(
        o, "contentType",
        json_string(content_type != NULL ? content_type : "application/json; charset=utf-8")));
    TRY(skr_json_set(o, "data", json_string(s)));
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* The claim named name: literally at the top level first, then as a dotted path. */
static json_t *
claim_lookup(const json_t *claims, const char *name)
{
    json_t *v = json_object_get(claims, name);
    const json_t *cur = claims;
    const char *seg = name;

    if (v != NULL || strchr(name, '.') == NULL) {
        return v;
    }
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot != NULL ? (size_t)(dot - seg) : strlen(seg);

        if (len == 0 || !json_is_object(cur)) {
            return NULL;
        }
        v = json_object_getn(cur, seg, len);
        if (v == NULL || dot == NULL) {
            return v;
        }
        cur = v;
        seg = dot + 1;
    }
}

static const char *
type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    default:
        return "unknown";
    }
}

static skr_err
eval_claim(const struct skr_policy_cond *c, const json_t *claims, struct skr_policy_cond_result *r,
           size_t *n_pass)
{
    json_t *v = claim_lookup(claims, c->claim);

    if (v == NULL) {
        r->seen = SKR_POLICY_SEEN_MISSING;
        r->seen_type = "missing";
        return SKR_OK;
    }
    r->seen_value = json_incref(v);
    r->seen_type = type_name(v);
    if (json_is_string(v) || json_is_integer(v) || json_is_boolean(v)) {
        r->seen = SKR_POLICY_SEEN_VALUE;
        TRY(canonical_scalar(v, &r->seen_text));
        /* lengths too: a claim string may carry an embedded NUL */
        r->pass = (!json_is_string(v) || strlen(r->seen_text) == json_string_length(v)) &&
                  strcmp(r->seen_text, c->canonical) == 0;
    } else {
        r->seen = SKR_POLICY_SEEN_UNSUPPORTED;
        if (json_is_real(v)) {
            char tmp[40];

            (void)snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(v));
            r->seen_text = strdup(tmp);
            ENSURE(r->seen_text != NULL, SKR_E_NOMEM, "out of memory");
        }
    }
    if (r->pass) {
        (*n_pass)++;
    }
    return SKR_OK;
}

static skr_err
eval_cond(const struct skr_policy_cond *c, const json_t *claims, struct skr_policy_cond_result *r,
          size_t *n_pass)
{
    size_t n_true = 0;

    r->cond = c;
    if (c->kind == SKR_POLICY_CLAIM) {
        return eval_claim(c, claims, r, n_pass);
    }
    r->children = calloc(c->n_children, sizeof(*r->children));
    ENSURE(r->children != NULL, SKR_E_NOMEM, "out of memory");
    r->n_children = c->n_children;
    /* every child is evaluated (no short cut) so the explanation is complete */
    for (size_t i = 0; i < c->n_children; i++) {
        TRY(eval_cond(&c->children[i], claims, &r->children[i], n_pass));
        n_true += r->children[i].pass ? 1 : 0;
    }
    r->pass = c->kind == SKR_POLICY_ALL_OF ? n_true == c->n_children : n_true > 0;
    return SKR_OK;
}

/* Issuer comparison: one trailing '/' is ignored on either side, the rest is exact. */
static bool
authority_matches(const char *authority, const char *iss)
{
    size_t a = strlen(authority);
    size_t b = strlen(iss);

    if (a > 0 && authority[a - 1] == '/') {
        a--;
    }
    if (b > 0 && iss[b - 1] == '/') {
        b--;
    }
    return a == b && memcmp(authority, iss, a) == 0;
}

/* First failing claim condition beneath a failing node, depth first. */
static const struct skr_policy_cond_result *
first_failure(const struct skr_policy_cond_result *r)
{
    if (r->pass) {
        return NULL;
    }
    if (r->cond->kind == SKR_POLICY_CLAIM) {
        return r;
    }
    for (size_t i = 0; i < r->n_children; i++) {
        const struct skr_policy_cond_result *f = first_failure(&r->children[i]);

        if (f != NULL) {
            return f;
        }
    }
    return NULL;
}

static void
cond_result_done(struct skr_policy_cond_result *r)
{
    for (size_t i = 0; i < r->n_children; i++) {
        cond_result_done(&r->children[i]);
    }
    free(r->children);
    free(r->seen_text);
    json_decref(r->seen_value);
}

void
skr_policy_explain_free(struct skr_policy_explain *x)
{
    if (x == NULL) {
        return;
    }
    for (size_t i = 0; i < x->n_branches; i++) {
        cond_result_done(&x->branches[i].root);
    }
    free(x->branches);
    free(x->issuer);
    free(x);
}

/* A JSON rendering of v for humans, cut at SHOW_MAX characters. */
static void
show_value(const json_t *v, char *out, size_t n)
{
    char *s = NULL;

    if (json_is_object(v) || json_is_array(v)) {
        (void)snprintf(out, n, "%s", json_is_object(v) ? "an object" : "an array");
        return;
    }
    s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s == NULL) {
        (void)snprintf(out, n, "(unprintable)");
        return;
    }
    if (strlen(s) > SHOW_MAX) {
        (void)snprintf(out, n, "%.*s...", SHOW_MAX, s);
    } else {
        (void)snprintf(out, n, "%s", s);
    }
    free(s);
}

/* "claim: expected X, token has Y" for one claim result. */
static void
describe_claim(const struct skr_policy_cond_result *r, char *out, size_t n)
{
    char expected[SHOW_MAX + 8];
    char seen[SHOW_MAX + 64];
    char name[80];

    clip_str(r->cond->claim, name, sizeof(name));
    show_value(r->cond->value, expected, sizeof(expected));
    if (r->seen == SKR_POLICY_SEEN_MISSING) {
        (void)snprintf(seen, sizeof(seen), "the token has no such claim");
    } else {
        char v[SHOW_MAX + 8];

        show_value(r->seen_value, v, sizeof(v));
        if (r->seen == SKR_POLICY_SEEN_VALUE) {
            (void)snprintf(seen, sizeof(seen), "token has %s", v);
        } else if (json_is_array(r->seen_value)) {
            (void)snprintf(seen, sizeof(seen),
                           "token has an array (array claims are not supported)");
        } else if (json_is_object(r->seen_value)) {
            (void)snprintf(seen, sizeof(seen), "token has an object (not comparable)");
        } else if (json_is_real(r->seen_value)) {
            (void)snprintf(seen, sizeof(seen), "token has the real number %s (not compared)",
                           r->seen_text != NULL ? r->seen_text : v);
        } else {
            (void)snprintf(seen, sizeof(seen), "token has null");
        }
    }
    (void)snprintf(out, n, "%s: expected %s, %s", name, expected, seen);
}

skr_err
skr_policy_explain(const struct skr_policy *p, const char *iss, const json_t *claims,
                   struct skr_policy_explain **ret)
{
    _cleanup_(skr_policy_explain_freep) struct skr_policy_explain *x = NULL;
    size_t best = 0;
    char who[80];

    ENSURE(p != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(json_is_object(claims), SKR_E_INVALID_ARG, "token claims must be a JSON object");
    if (iss == NULL && json_is_string(json_object_get(claims, "iss"))) {
        iss = json_string_value(json_object_get(claims, "iss"));
    }
    x = calloc(1, sizeof(*x));
    ENSURE(x != NULL, SKR_E_NOMEM, "out of memory");
    x->version = p->version;
    x->closest = -1;
    if (iss != NULL) {
        x->issuer = strdup(iss);
        ENSURE(x->issuer != NULL, SKR_E_NOMEM, "out of memory");
    }
    x->branches = calloc(p->n_authorities, sizeof(*x->branches));
    ENSURE(x->branches != NULL || p->n_authorities == 0, SKR_E_NOMEM, "out of memory");
    x->n_branches = p->n_authorities;
    for (size_t i = 0; i < p->n_authorities; i++) {
        struct skr_policy_branch *b = &x->branches[i];

        b->authority = &p->authorities[i];
        b->authority_matches = iss != NULL && authority_matches(b->authority->authority, iss);
        TRY(eval_cond(&b->authority->root, claims, &b->root, &b->n_claims_pass));
        b->conditions_pass = b->root.pass;
        if (b->authority_matches && b->conditions_pass && !x->allow) {
            x->allow = true;
            x->closest = (long)i;
        }
    }
    if (x->allow) {
        clip_str(p->authorities[x->closest].authority, who, sizeof(who));
        (void)snprintf(x->reason, sizeof(x->reason),
                       "released: authority %s (anyOf[%ld]) is satisfied", who, x->closest);
        *ret = TAKE_PTR(x);
        return SKR_OK;
    }
    for (size_t i = 0; i < x->n_branches; i++) {
        if (x->branches[i].authority_matches &&
            (x->closest < 0 || x->branches[i].n_claims_pass > best)) {
            x->closest = (long)i;
            best = x->branches[i].n_claims_pass;
        }
    }
    if (x->closest < 0) {
        if (iss == NULL) {
            (void)snprintf(x->reason, sizeof(x->reason),
                           "denied: the token has no 'iss' claim, so no authority matches");
        } else {
            clip_str(iss, who, sizeof(who));
            (void)snprintf(x->reason, sizeof(x->reason), "denied: no authority matches issuer %s",
                           who);
        }
    } else {
        char what[DESC_LEN];

        x->first_failure = first_failure(&x->branches[x->closest].root);
        clip_str(p->authorities[x->closest].authority, who, sizeof(who));
        if (x->first_failure != NULL) {
            describe_claim(x->first_failure, what, sizeof(what));
        } else {
            (void)snprintf(what, sizeof(what), "conditions not satisfied");
        }
        (void)snprintf(x->reason, sizeof(x->reason), "denied: authority %s: %s", who, what);
    }
    *ret = TAKE_PTR(x);
    return SKR_OK;
}

skr_err
skr_policy_evaluate(const struct skr_policy *p, const char *iss, const json_t *claims,
                    bool *ret_allow)
{
    _cleanup_(skr_policy_explain_freep) struct skr_policy_explain *x = NULL;

    ENSURE(ret_allow != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(skr_policy_explain(p, iss, claims, &x));
    *ret_allow = x->allow;
    return SKR_OK;
}

/* ---- rendering -------------------------------------------------------------------------- */

static skr_err
result_to_json(const struct skr_policy_cond_result *r, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    _cleanup_(json_decrefp) json_t *arr = NULL;

    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    if (r->cond->kind == SKR_POLICY_CLAIM) {
        TRY(skr_json_set(o, "claim", json_string(r->cond->claim)));
        TRY(skr_json_set(o, "expected", json_incref(r->cond->value)));
        TRY(skr_json_set(o, "seen",
                         r->seen_value != NULL ? json_incref(r->seen_value) : json_null()));
        TRY(skr_json_set(o, "seen_type", json_string(r->seen_type)));
    } else {
        arr = json_array();
        ENSURE(arr != NULL, SKR_E_NOMEM, "out of memory");
        for (size_t i = 0; i < r->n_children; i++) {
            json_t *child = NULL;

            TRY(result_to_json(&r->children[i], &child));
            ENSURE(json_array_append_new(arr, child) == 0, SKR_E_NOMEM, "out of memory");
        }
        TRY(skr_json_set(o, r->cond->kind == SKR_POLICY_ALL_OF ? "allOf" : "anyOf", TAKE_PTR(arr)));
    }
    TRY(skr_json_set(o, "pass", json_boolean(r->pass)));
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

skr_err
skr_policy_explain_to_json(const struct skr_policy_explain *x, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    _cleanup_(json_decrefp) json_t *arr = json_array();
    json_t *ff = NULL;

    ENSURE(x != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(o != NULL && arr != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(o, "allow", json_boolean(x->allow)));
    TRY(skr_json_set(o, "version", json_string(x->version)));
    TRY(skr_json_set(o, "issuer", x->issuer != NULL ? json_string(x->issuer) : json_null()));
    TRY(skr_json_set(o, "reason", json_string(x->reason)));
    TRY(skr_json_set(o, "closest", x->closest >= 0 ? json_integer(x->closest) : json_null()));
    if (x->first_failure != NULL) {
        TRY(result_to_json(x->first_failure, &ff));
        TRY(skr_json_set(o, "first_failure", ff));
    } else {
        TRY(skr_json_set(o, "first_failure", json_null()));
    }
    for (size_t i = 0; i < x->n_branches; i++) {
        const struct skr_policy_branch *b = &x->branches[i];
        json_t *e = NULL;

        /* the root result renders as {"allOf"|"anyOf": [...], "pass": ...} */
        TRY(result_to_json(&b->root, &e));
        ENSURE(json_array_append_new(arr, e) == 0, SKR_E_NOMEM, "out of memory");
        TRY(skr_json_set(e, "authority", json_string(b->authority->authority)));
        TRY(skr_json_set(e, "matches_issuer", json_boolean(b->authority_matches)));
        TRY(skr_json_set(e, "conditions_pass", json_boolean(b->conditions_pass)));
        TRY(skr_json_set(e, "claims_passed", json_integer((json_int_t)b->n_claims_pass)));
        TRY(skr_json_set(e, "pass", json_boolean(b->authority_matches && b->conditions_pass)));
    }
    TRY(skr_json_set(o, "authorities", TAKE_PTR(arr)));
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

static skr_err
indent(struct skr_buf *out, size_t level)
{
    for (size_t i = 0; i < level; i++) {
        TRY(skr_buf_append_str(out, "  "));
    }
    return SKR_OK;
}

static skr_err
result_to_text(const struct skr_policy_cond_result *r, size_t level, struct skr_buf *out)
{
    const char *verdict = r->pass ? "PASS" : "FAIL";
    size_t n_true = 0;

    TRY(indent(out, level));
    if (r->cond->kind == SKR_POLICY_CLAIM) {
        char line[DESC_LEN];

        describe_claim(r, line, sizeof(line));
        return skr_buf_printf(out, "%s %s\n", verdict, line);
    }
    for (size_t i = 0; i < r->n_children; i++) {
        n_true += r->children[i].pass ? 1 : 0;
    }
    TRY(skr_buf_printf(out, "%s %s (%zu of %zu satisfied)\n", verdict,
                       r->cond->kind == SKR_POLICY_ALL_OF ? "allOf" : "anyOf", n_true,
                       r->n_children));
    for (size_t i = 0; i < r->n_children; i++) {
        TRY(result_to_text(&r->children[i], level + 1, out));
    }
    return SKR_OK;
}

skr_err
skr_policy_explain_to_text(const struct skr_policy_explain *x, struct skr_buf *out)
{
    char iss[80];

    ENSURE(x != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (x->issuer != NULL) {
        clip_str(x->issuer, iss, sizeof(iss));
    } else {
        (void)snprintf(iss, sizeof(iss), "(none)");
    }
    TRY(skr_buf_printf(out, "release policy %s, token issuer %s: %s\n", x->version, iss,
                       x->allow ? "ALLOW" : "DENY"));
    for (size_t i = 0; i < x->n_branches; i++) {
        const struct skr_policy_branch *b = &x->branches[i];
        const struct skr_policy_cond_result *root = &b->root;
        size_t n_true = 0;
        char who[80];

        for (size_t k = 0; k < root->n_children; k++) {
            n_true += root->children[k].pass ? 1 : 0;
        }
        clip_str(b->authority->authority, who, sizeof(who));
        TRY(skr_buf_printf(
            out, "authority %s: %s; %s %s (%zu of %zu satisfied)\n", who,
            b->authority_matches ? "matches the issuer" : "does not match the issuer",
            root->cond->kind == SKR_POLICY_ALL_OF ? "allOf" : "anyOf",
            b->conditions_pass ? "satisfied" : "not satisfied", n_true, root->n_children));
        for (size_t k = 0; k < root->n_children; k++) {
            TRY(result_to_text(&root->children[k], 1, out));
        }
    }
    return skr_buf_printf(out, "%s\n", x->reason);
}
