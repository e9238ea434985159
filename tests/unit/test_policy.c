/*
 * test_policy.c - lib/policy: the shared decision table tests/data/policy_cases.json (each case
 * also through the normalised JSON and the AKV release_policy round trips), the parse-error
 * table tests/data/policy_errors.json (error code and message), the release_policy and KeyBundle
 * forms, normalisation, size limits, and the explanation (first failing condition, value
 * seen, closest branch, text and JSON renderings).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "policy.h"
#include "tdata.h"

/* ---- helpers ------------------------------------------------------------------------- */

static json_t *
load_table(const char *rel)
{
    const char *dir = getenv("SKR_TEST_DATA");
    char path[1024];
    json_error_t jerr;
    json_t *j;

    assert_non_null(dir);
    assert_true(snprintf(path, sizeof(path), "%s/%s", dir, rel) < (int)sizeof(path));
    j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    }
    assert_true(json_is_array(j));
    return j;
}

static void
assert_contains(const char *hay, const char *needle)
{
    if (hay == NULL) {
        fail_msg("NULL text, wanted '%s'", needle);
        return;
    }
    if (strstr(hay, needle) == NULL) {
        fail_msg("'%s' lacks '%s'", hay, needle);
    }
}

static struct skr_policy *
parse_str(const char *s)
{
    struct skr_policy *p = NULL;

    if (skr_policy_parse(skr_span_str(s), &p) != SKR_OK) {
        fail_msg("parse failed: %s", skr_err_msg());
    }
    assert_non_null(p);
    return p;
}

static json_t *
parse_claims(const char *s)
{
    json_error_t jerr;
    json_t *j = json_loads(s, 0, &jerr);

    assert_non_null(j);
    return j;
}

static struct skr_policy *
parse_value(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    struct skr_policy *p;

    assert_non_null(s);
    p = parse_str(s);
    free(s);
    return p;
}

static bool
decide(const struct skr_policy *p, const char *iss, const json_t *claims)
{
    struct skr_policy_explain *x = NULL;
    bool allow = false;
    bool allow2 = true;

    assert_int_equal(skr_policy_explain(p, iss, claims, &x), SKR_OK);
    allow = x->allow;
    assert_int_equal(skr_policy_evaluate(p, iss, claims, &allow2), SKR_OK);
    assert_int_equal(allow, allow2);
    /* allow <=> some branch matches both issuer and conditions */
    {
        bool any = false;

        for (size_t i = 0; i < x->n_branches; i++) {
            any = any || (x->branches[i].authority_matches && x->branches[i].conditions_pass);
        }
        assert_int_equal(any, allow);
    }
    if (!allow && x->closest >= 0) {
        assert_non_null(x->first_failure);
        assert_false(x->first_failure->pass);
        assert_int_equal(x->first_failure->cond->kind, SKR_POLICY_CLAIM);
    }
    skr_policy_explain_free(x);
    return allow;
}

static char *
explain_text(const struct skr_policy *p, const char *iss, const json_t *claims,
             struct skr_policy_explain **ret_x)
{
    struct skr_policy_explain *x = NULL;
    struct skr_buf b;
    const char *s;
    char *copy;

    assert_int_equal(skr_policy_explain(p, iss, claims, &x), SKR_OK);
    skr_buf_init(&b, 1u << 20);
    assert_int_equal(skr_policy_explain_to_text(x, &b), SKR_OK);
    assert_int_equal(skr_buf_cstr(&b, &s), SKR_OK);
    copy = strdup(s);
    assert_non_null(copy);
    skr_buf_done(&b);
    if (ret_x != NULL) {
        *ret_x = x;
    } else {
        skr_policy_explain_free(x);
    }
    return copy;
}

static char *
dump_sorted(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

    assert_non_null(s);
    return s;
}

/* ---- the shared decision table ------------------------------------------------------- */

static void
test_case_table(void **state)
{
    json_t *table = load_table("policy_cases.json");
    size_t i;
    size_t n_allow = 0;

    (void)state;
    assert_true(json_array_size(table) >= 50);
    for (i = 0; i < json_array_size(table); i++) {
        json_t *c = json_array_get(table, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *iss_j = json_object_get(c, "iss");
        const char *iss = json_is_string(iss_j) ? json_string_value(iss_j) : NULL;
        json_t *claims = json_object_get(c, "claims");
        bool want = json_is_true(json_object_get(c, "allow"));
        struct skr_policy *p = NULL;
        struct skr_policy *p2 = NULL;
        struct skr_policy *p3 = NULL;
        json_t *norm = NULL;
        json_t *rel = NULL;
        json_t *xj = NULL;
        struct skr_policy_explain *x = NULL;
        char *s;

        assert_non_null(name);
        assert_true(json_is_boolean(json_object_get(c, "allow")));
        p = parse_value(json_object_get(c, "policy"));
        if (decide(p, iss, claims) != want) {
            s = explain_text(p, iss, claims, NULL);
            fail_msg("case %s: expected %s\n%s", name, want ? "allow" : "deny", s);
        }
        n_allow += want ? 1 : 0;

        /* the normalised form and the AKV release_policy form decide the same */
        assert_int_equal(skr_policy_to_json(p, &norm), SKR_OK);
        assert_string_equal(
            json_string_value(json_object_get(norm, "version")),
            json_string_value(json_object_get(json_object_get(c, "policy"), "version"))[0] == '0'
                ? "0.2"
                : "1.0.0");
        p2 = parse_value(norm);
        assert_int_equal(decide(p2, iss, claims), want);
        assert_int_equal(skr_policy_to_release(p, NULL, &rel), SKR_OK);
        assert_int_equal(skr_policy_parse_release(rel, &p3), SKR_OK);
        assert_int_equal(decide(p3, iss, claims), want);

        /* renderings always succeed and carry the decision */
        s = explain_text(p, iss, claims, &x);
        assert_contains(s, want ? ": ALLOW\n" : ": DENY\n");
        assert_int_equal(skr_policy_explain_to_json(x, &xj), SKR_OK);
        assert_int_equal(json_is_true(json_object_get(xj, "allow")), want);
        assert_int_equal(json_array_size(json_object_get(xj, "authorities")), p->n_authorities);
        free(s);
        json_decref(xj);
        skr_policy_explain_free(x);
        json_decref(norm);
        json_decref(rel);
        skr_policy_free(p);
        skr_policy_free(p2);
        skr_policy_free(p3);
    }
    /* the table is not one-sided */
    assert_true(n_allow >= 20);
    assert_true(json_array_size(table) - n_allow >= 20);
    json_decref(table);
}

static void
test_error_table(void **state)
{
    json_t *table = load_table("policy_errors.json");
    size_t i;

    (void)state;
    for (i = 0; i < json_array_size(table); i++) {
        json_t *c = json_array_get(table, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *code = json_string_value(json_object_get(c, "code"));
        const char *msg = json_string_value(json_object_get(c, "message"));
        json_t *text_j = json_object_get(c, "policy_text");
        char *text = text_j != NULL ? strdup(json_string_value(text_j))
                                    : json_dumps(json_object_get(c, "policy"), JSON_COMPACT);
        struct skr_policy *p = NULL;
        skr_err e;

        assert_non_null(name);
        assert_non_null(text);
        e = skr_policy_parse(skr_span_str(text), &p);
        if (e == SKR_OK) {
            fail_msg("case %s: parsed", name);
        }
        assert_null(p);
        if (strcmp(skr_err_name(e), code) != 0) {
            fail_msg("case %s: got %s (%s), want %s", name, skr_err_name(e), skr_err_msg(), code);
        }
        if (strstr(skr_err_msg(), msg) == NULL) {
            fail_msg("case %s: message '%s' lacks '%s'", name, skr_err_msg(), msg);
        }
        free(text);
    }
    json_decref(table);
}

/* ---- forms, normalisation, limits ---------------------------------------------------- */

static const char aci_policy[] =
    "{\"version\":\"1.0\",\"anyOf\":[{\"authority\":\"https://maa.test/\",\"allOf\":["
    "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
    "{\"claim\":\"x-ms-sevsnpvm-hostdata\",\"equals\":\"abc\"},"
    "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":\"false\"},"
    "{\"claim\":\"x-ms-sevsnpvm-vmpl\",\"equals\":0},"
    "{\"anyOf\":[{\"claim\":\"x-ms-compliance-status\",\"equals\":\"azure-compliant-uvm\"},"
    "{\"claim\":\"x-ms-compliance-status\",\"equals\":\"azure-signed-katacc-uvm\"}]}]}]}";

static const char aci_normalised[] =
    "{\"anyOf\":[{\"allOf\":["
    "{\"claim\":\"x-ms-attestation-type\",\"equals\":\"sevsnpvm\"},"
    "{\"claim\":\"x-ms-sevsnpvm-hostdata\",\"equals\":\"abc\"},"
    "{\"claim\":\"x-ms-sevsnpvm-is-debuggable\",\"equals\":\"false\"},"
    "{\"claim\":\"x-ms-sevsnpvm-vmpl\",\"equals\":0},"
    "{\"anyOf\":[{\"claim\":\"x-ms-compliance-status\",\"equals\":\"azure-compliant-uvm\"},"
    "{\"claim\":\"x-ms-compliance-status\",\"equals\":\"azure-signed-katacc-uvm\"}]}],"
    "\"authority\":\"https://maa.test/\"}],\"version\":\"1.0.0\"}";

static void
test_normalise(void **state)
{
    struct skr_policy *p = parse_str(aci_policy);
    json_t *j = NULL;
    char *s;

    (void)state;
    assert_string_equal(p->version, "1.0.0");
    assert_int_equal(p->n_authorities, 1);
    assert_string_equal(p->authorities[0].authority, "https://maa.test/");
    assert_int_equal(p->authorities[0].root.kind, SKR_POLICY_ALL_OF);
    assert_int_equal(p->authorities[0].root.n_children, 5);
    assert_string_equal(p->authorities[0].root.children[3].canonical, "0");
    assert_true(json_is_integer(p->authorities[0].root.children[3].value));
    assert_int_equal(p->authorities[0].root.children[4].kind, SKR_POLICY_ANY_OF);
    assert_int_equal(skr_policy_to_json(p, &j), SKR_OK);
    s = dump_sorted(j);
    assert_string_equal(s, aci_normalised);
    free(s);
    json_decref(j);
    skr_policy_free(p);

    /* the legacy 0.2 form is kept as written */
    p = parse_str("{\"version\":\"0.2\",\"anyOf\":[{\"authority\":\"a\",\"anyOf\":["
                  "{\"claim\":\"c\",\"condition\":\"equals\",\"value\":true},"
                  "{\"claim\":\"d\",\"equals\":\"x\"}]}]}");
    assert_string_equal(p->version, "0.2");
    assert_true(p->authorities[0].root.children[0].legacy_form);
    assert_string_equal(p->authorities[0].root.children[0].canonical, "true");
    assert_false(p->authorities[0].root.children[1].legacy_form);
    assert_int_equal(skr_policy_to_json(p, &j), SKR_OK);
    s = dump_sorted(j);
    assert_string_equal(s, "{\"anyOf\":[{\"anyOf\":[{\"claim\":\"c\",\"condition\":\"equals\","
                           "\"value\":true},{\"claim\":\"d\",\"equals\":\"x\"}],"
                           "\"authority\":\"a\"}],\"version\":\"0.2\"}");
    free(s);
    json_decref(j);
    skr_policy_free(p);
}

static void
test_release_forms(void **state)
{
    struct skr_policy *p = parse_str(aci_policy);
    struct skr_policy *q = NULL;
    struct skr_buf b64;
    struct skr_buf dec;
    json_t *rel = NULL;
    json_t *j = NULL;
    const char *data;
    const char *s;
    char *t;
    static const unsigned int flags[] = {
        SKR_B64_URL,
        SKR_B64_URL | SKR_B64_PAD,
        SKR_B64_STD,
        SKR_B64_STD | SKR_B64_PAD,
    };

    (void)state;
    /* to_release: default contentType, unpadded base64url of the sorted compact JSON */
    assert_int_equal(skr_policy_to_release(p, NULL, &rel), SKR_OK);
    assert_string_equal(json_string_value(json_object_get(rel, "contentType")),
                        "application/json; charset=utf-8");
    data = json_string_value(json_object_get(rel, "data"));
    assert_non_null(data);
    assert_null(strchr(data, '='));
    assert_null(strchr(data, '+'));
    assert_null(strchr(data, '/'));
    skr_buf_init(&dec, 1u << 16);
    assert_int_equal(skr_b64_decode(skr_span_str(data), SKR_B64_URL, &dec), SKR_OK);
    assert_int_equal(skr_buf_cstr(&dec, &s), SKR_OK);
    assert_string_equal(s, aci_normalised);
    json_decref(rel);
    rel = NULL;
    assert_int_equal(skr_policy_to_release(p, "application/json; charset=utf-8; version=1.0", &rel),
                     SKR_OK);
    assert_string_equal(json_string_value(json_object_get(rel, "contentType")),
                        "application/json; charset=utf-8; version=1.0");
    json_decref(rel);

    /* parse_release accepts both alphabets, padded or not */
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        skr_buf_init(&b64, 1u << 16);
        assert_int_equal(
            skr_b64_encode(skr_span_str("{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"a\","
                                        "\"allOf\":[{\"claim\":\"c\",\"equals\":\"~~~?\"}]}]}"),
                           flags[i], &b64),
            SKR_OK);
        assert_int_equal(skr_buf_cstr(&b64, &s), SKR_OK);
        rel = json_pack("{s:s}", "data", s);
        assert_non_null(rel);
        assert_int_equal(skr_policy_parse_release(rel, &q), SKR_OK);
        assert_string_equal(q->authorities[0].root.children[0].canonical, "~~~?");
        skr_policy_free(q);
        q = NULL;
        json_decref(rel);
        skr_buf_done(&b64);
    }

    /* contentType and data errors */
    rel = json_pack("{s:s,s:s}", "contentType", "text/plain", "data", "e30");
    assert_int_equal(skr_policy_parse_release(rel, &q), SKR_E_UNSUPPORTED);
    assert_msg_contains("contentType 'text/plain'");
    json_decref(rel);
    rel = json_pack("{s:s,s:s}", "contentType", "application/jsonx", "data", "e30");
    assert_int_equal(skr_policy_parse_release(rel, &q), SKR_E_UNSUPPORTED);
    json_decref(rel);
    rel = json_pack("{s:i,s:s}", "contentType", 1, "data", "e30");
    assert_int_equal(skr_policy_parse_release(rel, &q), SKR_E_MALFORMED);
    assert_msg_contains("'contentType' must be a string");
    json_decref(rel);
    rel = json_pack("{s:s}", "contentType", "application/json");
    assert_int_equal(skr_policy_parse_release(rel, &q), SKR_E_MALFORMED);
    assert_msg_contains("'data' is missing");
    json_decref(rel);
    rel = json_pack("{s:s}", "data", "e30*");
    assert_int_equal(skr_policy_parse_release(rel, &q), SKR_E_MALFORMED);
    assert_msg_contains("not base64");
    json_decref(rel);
    rel = json_pack("{s:s}", "data", "e30"); /* "{}" */
    assert_int_equal(skr_policy_parse_release(rel, &q), SKR_E_MALFORMED);
    assert_msg_contains("missing 'version' property");
    json_decref(rel);
    assert_int_equal(skr_policy_parse_release(NULL, &q), SKR_E_MALFORMED);
    assert_null(q);

    /* load(): plain text, release_policy object, KeyBundle */
    assert_int_equal(skr_policy_to_release(p, NULL, &rel), SKR_OK);
    t = json_dumps(rel, JSON_COMPACT);
    assert_non_null(t);
    assert_int_equal(skr_policy_load(skr_span_str(t), &q), SKR_OK);
    assert_string_equal(q->authorities[0].authority, "https://maa.test/");
    skr_policy_free(q);
    q = NULL;
    free(t);
    j = json_pack("{s:{s:b},s:O}", "attributes", "exportable", 1, "release_policy", rel);
    t = json_dumps(j, JSON_COMPACT);
    assert_int_equal(skr_policy_load(skr_span_str(t), &q), SKR_OK);
    assert_int_equal(q->authorities[0].root.n_children, 5);
    skr_policy_free(q);
    q = NULL;
    free(t);
    json_decref(j);
    json_decref(rel);
    assert_int_equal(skr_policy_load(skr_span_str(aci_policy), &q), SKR_OK);
    assert_string_equal(q->version, "1.0.0");
    skr_policy_free(q);
    q = NULL;
    assert_int_equal(skr_policy_load(skr_span_str("{\"anyOf\":[]}"), &q), SKR_E_MALFORMED);
    assert_msg_contains("missing 'version' property");
    assert_int_equal(skr_policy_load(skr_span_str("{\"data\":5}"), &q), SKR_E_MALFORMED);

    skr_buf_done(&dec);
    skr_policy_free(p);
}

static void
test_limits(void **state)
{
    struct skr_buf b;
    struct skr_policy *p = NULL;
    const char *s;

    (void)state;
    /* just over the text limit: rejected before parsing */
    skr_buf_init(&b, 1u << 20);
    assert_int_equal(skr_buf_append_str(&b, "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\""),
                     SKR_OK);
    while (b.len <= SKR_MAX_POLICY_BYTES) {
        assert_int_equal(skr_buf_append_str(&b, "aaaaaaaaaaaaaaaa"), SKR_OK);
    }
    assert_int_equal(skr_buf_append_str(&b, "\",\"allOf\":[{\"claim\":\"c\",\"equals\":\"x\"}]}]}"),
                     SKR_OK);
    assert_int_equal(skr_buf_cstr(&b, &s), SKR_OK);
    assert_int_equal(skr_policy_parse(skr_buf_span(&b), &p), SKR_E_TOO_LARGE);
    assert_msg_contains("larger than 65536 bytes");
    assert_int_equal(skr_policy_load(skr_buf_span(&b), &p), SKR_E_TOO_LARGE);
    assert_null(p);
    skr_buf_done(&b);

    /* authority longer than the name limit */
    skr_buf_init(&b, 1u << 20);
    assert_int_equal(skr_buf_append_str(&b, "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\""),
                     SKR_OK);
    for (int i = 0; i < SKR_POLICY_MAX_NAME + 1; i++) {
        assert_int_equal(skr_buf_append_byte(&b, 'h'), SKR_OK);
    }
    assert_int_equal(skr_buf_append_str(&b, "\",\"allOf\":[{\"claim\":\"c\",\"equals\":\"x\"}]}]}"),
                     SKR_OK);
    assert_int_equal(skr_policy_parse(skr_buf_span(&b), &p), SKR_E_TOO_LARGE);
    assert_msg_contains("'authority' is longer than 512 bytes");
    skr_buf_done(&b);

    /* JSON nested beyond the JSON parser's own depth */
    skr_buf_init(&b, 1u << 20);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(skr_buf_append_str(&b, "{\"anyOf\":["), SKR_OK);
    }
    assert_int_equal(skr_policy_parse(skr_buf_span(&b), &p), SKR_E_TOO_LARGE);
    assert_msg_contains("nested too deeply");
    skr_buf_done(&b);

    /* NUL inside names and values; control characters are not echoed */
    assert_int_equal(
        skr_policy_parse(skr_span_str("{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"a\","
                                      "\"allOf\":[{\"claim\":\"c\\u0000d\",\"equals\":\"x\"}]}]}"),
                         &p),
        SKR_E_MALFORMED);
    assert_int_equal(
        skr_policy_parse(skr_span_str("{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"a\","
                                      "\"allOf\":[{\"claim\":\"c\",\"\\u0001op\\n\":\"x\"}]}]}"),
                         &p),
        SKR_E_MALFORMED);
    assert_msg_contains("unknown operator '?op?'");
    assert_null(p);

    /* bad arguments */
    assert_int_equal(skr_policy_parse(skr_span_str("{}"), NULL), SKR_E_INVALID_ARG);
    assert_int_equal(skr_policy_parse_json(NULL, &p), SKR_E_MALFORMED);
    skr_policy_free(NULL);
    skr_policy_explain_free(NULL);
}

/* ---- explanation --------------------------------------------------------------------- */

static const char aci_claims[] =
    "{\"iss\":\"https://maa.test\",\"x-ms-attestation-type\":\"sevsnpvm\","
    "\"x-ms-sevsnpvm-hostdata\":\"def\",\"x-ms-sevsnpvm-is-debuggable\":false,"
    "\"x-ms-sevsnpvm-vmpl\":\"0\",\"x-ms-compliance-status\":\"azure-compliant-cvm\"}";

static void
test_explain_failure(void **state)
{
    struct skr_policy *p = parse_str(aci_policy);
    json_t *claims = parse_claims(aci_claims);
    struct skr_policy_explain *x = NULL;
    json_t *xj = NULL;
    json_t *ff;
    char *t;

    (void)state;
    t = explain_text(p, NULL, claims, &x);
    assert_false(x->allow);
    assert_string_equal(x->issuer, "https://maa.test");
    assert_int_equal(x->closest, 0);
    assert_true(x->branches[0].authority_matches);
    assert_false(x->branches[0].conditions_pass);
    assert_int_equal(x->branches[0].n_claims_pass, 3);
    assert_non_null(x->first_failure);
    assert_string_equal(x->first_failure->cond->claim, "x-ms-sevsnpvm-hostdata");
    assert_int_equal(x->first_failure->seen, SKR_POLICY_SEEN_VALUE);
    assert_string_equal(x->first_failure->seen_text, "def");
    assert_string_equal(x->reason, "denied: authority https://maa.test/: x-ms-sevsnpvm-hostdata: "
                                   "expected \"abc\", token has \"def\"");
    assert_contains(t, "release policy 1.0.0, token issuer https://maa.test: DENY\n");
    assert_contains(t, "authority https://maa.test/: matches the issuer; allOf not satisfied "
                       "(3 of 5 satisfied)\n");
    assert_contains(t, "\n  FAIL x-ms-sevsnpvm-hostdata: expected \"abc\", token has \"def\"\n");
    assert_contains(t,
                    "\n  PASS x-ms-sevsnpvm-is-debuggable: expected \"false\", token has false\n");
    assert_contains(t, "\n  PASS x-ms-sevsnpvm-vmpl: expected 0, token has \"0\"\n");
    assert_contains(t, "\n  FAIL anyOf (0 of 2 satisfied)\n    FAIL x-ms-compliance-status: "
                       "expected \"azure-compliant-uvm\", token has \"azure-compliant-cvm\"\n");

    assert_int_equal(skr_policy_explain_to_json(x, &xj), SKR_OK);
    assert_false(json_is_true(json_object_get(xj, "allow")));
    assert_int_equal(json_integer_value(json_object_get(xj, "closest")), 0);
    ff = json_object_get(xj, "first_failure");
    assert_string_equal(json_string_value(json_object_get(ff, "claim")), "x-ms-sevsnpvm-hostdata");
    assert_string_equal(json_string_value(json_object_get(ff, "expected")), "abc");
    assert_string_equal(json_string_value(json_object_get(ff, "seen")), "def");
    assert_string_equal(json_string_value(json_object_get(ff, "seen_type")), "string");
    assert_false(json_is_true(json_object_get(ff, "pass")));
    {
        json_t *a0 = json_array_get(json_object_get(xj, "authorities"), 0);
        json_t *conds = json_object_get(a0, "allOf");
        json_t *dbg = json_array_get(conds, 2);

        assert_true(json_is_true(json_object_get(a0, "matches_issuer")));
        assert_false(json_is_true(json_object_get(a0, "pass")));
        assert_int_equal(json_integer_value(json_object_get(a0, "claims_passed")), 3);
        assert_int_equal(json_array_size(conds), 5);
        assert_true(json_is_true(json_object_get(dbg, "pass")));
        assert_true(json_is_false(json_object_get(dbg, "seen")));
        assert_string_equal(json_string_value(json_object_get(dbg, "seen_type")), "boolean");
        assert_false(json_is_true(json_object_get(json_array_get(conds, 4), "pass")));
        assert_int_equal(json_array_size(json_object_get(json_array_get(conds, 4), "anyOf")), 2);
    }
    json_decref(xj);
    skr_policy_explain_free(x);
    free(t);

    /* fix the hostdata: the anyOf is now the first failure */
    json_object_set_new(claims, "x-ms-sevsnpvm-hostdata", json_string("abc"));
    t = explain_text(p, NULL, claims, &x);
    assert_false(x->allow);
    assert_string_equal(x->first_failure->cond->claim, "x-ms-compliance-status");
    assert_contains(x->reason,
                    "expected \"azure-compliant-uvm\", token has \"azure-compliant-cvm\"");
    skr_policy_explain_free(x);
    free(t);

    /* and the compliance status: released */
    json_object_set_new(claims, "x-ms-compliance-status", json_string("azure-signed-katacc-uvm"));
    t = explain_text(p, NULL, claims, &x);
    assert_true(x->allow);
    assert_null(x->first_failure);
    assert_int_equal(x->closest, 0);
    assert_contains(t, ": ALLOW\n");
    assert_contains(x->reason, "released: authority https://maa.test/");
    skr_policy_explain_free(x);
    free(t);
    json_decref(claims);
    skr_policy_free(p);
}

static void
test_explain_issuer_and_closest(void **state)
{
    struct skr_policy *p = parse_str(
        "{\"version\":\"1.0.0\",\"anyOf\":["
        "{\"authority\":\"https://other.test\",\"allOf\":[{\"claim\":\"a\",\"equals\":\"1\"}]},"
        "{\"authority\":\"https://maa.test\",\"allOf\":[{\"claim\":\"a\",\"equals\":\"1\"},"
        "{\"claim\":\"b\",\"equals\":\"9\"},{\"claim\":\"c\",\"equals\":\"9\"}]},"
        "{\"authority\":\"https://maa.test/\",\"allOf\":[{\"claim\":\"a\",\"equals\":\"1\"},"
        "{\"claim\":\"b\",\"equals\":\"2\"},{\"claim\":\"c\",\"equals\":\"9\"}]},"
        "{\"authority\":\"https://maa.test\",\"allOf\":[{\"claim\":\"a\",\"equals\":\"1\"},"
        "{\"claim\":\"b\",\"equals\":\"2\"},{\"claim\":\"d\",\"equals\":\"9\"}]}]}");
    json_t *claims = parse_claims("{\"a\":1,\"b\":2,\"c\":[3]}");
    struct skr_policy_explain *x = NULL;
    json_t *xj = NULL;
    char *t;

    (void)state;
    /* closest = the matching branch with most satisfied claims, first on a tie (index 2) */
    t = explain_text(p, "https://maa.test", claims, &x);
    assert_false(x->allow);
    assert_int_equal(x->closest, 2);
    assert_false(x->branches[0].authority_matches);
    assert_true(x->branches[0].conditions_pass);
    assert_int_equal(x->branches[1].n_claims_pass, 1);
    assert_int_equal(x->branches[2].n_claims_pass, 2);
    assert_int_equal(x->branches[3].n_claims_pass, 2);
    assert_string_equal(x->first_failure->cond->claim, "c");
    assert_int_equal(x->first_failure->seen, SKR_POLICY_SEEN_UNSUPPORTED);
    assert_string_equal(x->first_failure->seen_type, "array");
    assert_contains(x->reason, "c: expected \"9\", token has an array (array claims are not "
                               "supported)");
    assert_contains(t, "authority https://other.test: does not match the issuer; allOf satisfied");
    skr_policy_explain_free(x);
    free(t);

    /* no authority matches */
    t = explain_text(p, "https://evil.test", claims, &x);
    assert_false(x->allow);
    assert_int_equal(x->closest, -1);
    assert_null(x->first_failure);
    assert_string_equal(x->reason, "denied: no authority matches issuer https://evil.test");
    assert_contains(t, "token issuer https://evil.test: DENY\n");
    assert_int_equal(skr_policy_explain_to_json(x, &xj), SKR_OK);
    assert_true(json_is_null(json_object_get(xj, "closest")));
    assert_true(json_is_null(json_object_get(xj, "first_failure")));
    json_decref(xj);
    skr_policy_explain_free(x);
    free(t);

    /* no issuer at all */
    t = explain_text(p, NULL, claims, &x);
    assert_null(x->issuer);
    assert_contains(x->reason, "no 'iss' claim");
    assert_contains(t, "token issuer (none): DENY");
    assert_int_equal(skr_policy_explain_to_json(x, &xj), SKR_OK);
    assert_true(json_is_null(json_object_get(xj, "issuer")));
    json_decref(xj);
    skr_policy_explain_free(x);
    free(t);
    json_decref(claims);
    skr_policy_free(p);
}

static void
test_explain_seen_values(void **state)
{
    struct skr_policy *p = parse_str(
        "{\"version\":\"1.0.0\",\"anyOf\":[{\"authority\":\"a\",\"anyOf\":["
        "{\"claim\":\"missing\",\"equals\":\"x\"},{\"claim\":\"real\",\"equals\":\"1\"},"
        "{\"claim\":\"obj\",\"equals\":\"x\"},{\"claim\":\"nul\",\"equals\":\"null\"},"
        "{\"claim\":\"nulbyte\",\"equals\":\"a\"},{\"claim\":\"ctl\",\"equals\":\"x\"}]}]}");
    json_t *claims = json_pack("{s:f,s:{},s:n,s:s#,s:s}", "real", 1.0, "obj", "nul", "nulbyte",
                               "a\0b", (int)3, "ctl", "\x01\"q\"");
    struct skr_policy_explain *x = NULL;
    json_t *xj = NULL;
    json_t *conds;
    char *t;

    (void)state;
    assert_non_null(claims);
    t = explain_text(p, "a", claims, &x);
    assert_false(x->allow);
    assert_string_equal(x->first_failure->cond->claim, "missing");
    assert_int_equal(x->first_failure->seen, SKR_POLICY_SEEN_MISSING);
    assert_null(x->first_failure->seen_value);
    assert_contains(t, "  FAIL missing: expected \"x\", the token has no such claim\n");
    assert_contains(t, "  FAIL real: expected \"1\", token has the real number 1 (not compared)\n");
    assert_contains(t, "  FAIL obj: expected \"x\", token has an object (not comparable)\n");
    assert_contains(t, "  FAIL nul: expected \"null\", token has null\n");
    assert_contains(t, "  FAIL nulbyte: expected \"a\", token has \"a\\u0000b\"\n");
    assert_contains(t, "  FAIL ctl: expected \"x\", token has \"\\u0001\\\"q\\\"\"\n");
    assert_contains(t, "anyOf not satisfied (0 of 6 satisfied)");
    assert_int_equal(skr_policy_explain_to_json(x, &xj), SKR_OK);
    conds = json_object_get(json_array_get(json_object_get(xj, "authorities"), 0), "anyOf");
    assert_true(json_is_null(json_object_get(json_array_get(conds, 0), "seen")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(conds, 0), "seen_type")),
                        "missing");
    assert_string_equal(json_string_value(json_object_get(json_array_get(conds, 1), "seen_type")),
                        "real");
    assert_string_equal(json_string_value(json_object_get(json_array_get(conds, 3), "seen_type")),
                        "null");
    json_decref(xj);
    skr_policy_explain_free(x);
    free(t);

    /* long values are cut in the text */
    json_object_set_new(claims, "missing",
                        json_string("0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789"));
    t = explain_text(p, "a", claims, &x);
    assert_contains(t, "45678...\n");
    skr_policy_explain_free(x);
    free(t);

    /* argument checks */
    assert_int_equal(skr_policy_explain(p, "a", NULL, &x), SKR_E_INVALID_ARG);
    {
        json_t *arr = json_array();
        bool allow = true;

        assert_int_equal(skr_policy_evaluate(p, "a", arr, &allow), SKR_E_INVALID_ARG);
        assert_int_equal(skr_policy_evaluate(NULL, "a", claims, &allow), SKR_E_INVALID_ARG);
        assert_int_equal(skr_policy_evaluate(p, "a", claims, NULL), SKR_E_INVALID_ARG);
        json_decref(arr);
    }
    json_decref(claims);
    skr_policy_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_table),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_release_forms),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_explain_failure),
        cmocka_unit_test(test_explain_issuer_and_closest),
        cmocka_unit_test(test_explain_seen_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
