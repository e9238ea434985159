/*
 * json.c - bounded JSON parsing on jansson and typed member access. Parsing rejects duplicate
 * keys (two values for one claim is an ambiguity an attacker can use), NUL characters, input
 * over a size limit and nesting over SKR_MAX_JSON_DEPTH (checked before jansson recurses).
 */
#include "json.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "skr_limits.h"

static void
wiping_free(void *p)
{
    if (p != NULL) {
        skr_wipe(p, malloc_usable_size(p));
        free(p);
    }
}

void
skr_json_wipe_on_free(void)
{
    json_set_alloc_funcs(malloc, wiping_free);
}

/* Depth of [ and { outside strings; jansson itself validates the rest. */
static skr_err
check_depth(struct skr_span in)
{
    size_t depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < in.len; i++) {
        uint8_t c = in.ptr[i];

        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            ENSURE(++depth <= SKR_MAX_JSON_DEPTH, SKR_E_TOO_LARGE, "JSON nested too deeply");
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return SKR_OK;
}

skr_err
skr_json_parse(struct skr_span in, size_t max_bytes, json_t **ret)
{
    json_error_t jerr;
    json_t *v = NULL;

    ENSURE(in.len <= max_bytes, SKR_E_TOO_LARGE, "JSON document exceeds the size limit");
    TRY(check_depth(in));
    v = json_loadb((const char *)in.ptr, in.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (v == NULL) {
        FAILF(SKR_E_MALFORMED, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
              jerr.text);
    }
    *ret = v;
    return SKR_OK;
}

skr_err
skr_json_parse_object(struct skr_span in, size_t max_bytes, const char *what, json_t **ret)
{
    json_t *v = NULL;
    skr_err e = skr_json_parse(in, max_bytes, &v);

    if (e != SKR_OK) {
        char inner[sizeof(skr_err_last()->msg)];

        (void)snprintf(inner, sizeof(inner), "%s", skr_err_msg());
        FAILF(e, "%s: %s", what, inner);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        FAILF(SKR_E_MALFORMED, "%s: expected a JSON object", what);
    }
    *ret = v;
    return SKR_OK;
}

static skr_err
get_member(const json_t *obj, const char *key, json_t **ret)
{
    json_t *v = NULL;

    ENSURE(json_is_object(obj), SKR_E_MALFORMED, "expected a JSON object");
    v = json_object_get(obj, key);
    if (v == NULL) {
        FAILF(SKR_E_MALFORMED, "field '%s' is missing", key);
    }
    *ret = v;
    return SKR_OK;
}

skr_err
skr_json_get_str(const json_t *obj, const char *key, const char **ret)
{
    json_t *v = NULL;

    TRY(get_member(obj, key, &v));
    if (!json_is_string(v)) {
        FAILF(SKR_E_MALFORMED, "field '%s': expected a string", key);
    }
    *ret = json_string_value(v);
    return SKR_OK;
}

skr_err
skr_json_opt_str(const json_t *obj, const char *key, const char **ret)
{
    json_t *v = NULL;

    ENSURE(json_is_object(obj), SKR_E_MALFORMED, "expected a JSON object");
    v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        *ret = NULL;
        return SKR_OK;
    }
    if (!json_is_string(v)) {
        FAILF(SKR_E_MALFORMED, "field '%s': expected a string", key);
    }
    *ret = json_string_value(v);
    return SKR_OK;
}

skr_err
skr_json_get_obj(const json_t *obj, const char *key, json_t **ret)
{
    json_t *v = NULL;

    TRY(get_member(obj, key, &v));
    if (!json_is_object(v)) {
        FAILF(SKR_E_MALFORMED, "field '%s': expected an object", key);
    }
    *ret = v;
    return SKR_OK;
}

skr_err
skr_json_get_arr(const json_t *obj, const char *key, json_t **ret)
{
    json_t *v = NULL;

    TRY(get_member(obj, key, &v));
    if (!json_is_array(v)) {
        FAILF(SKR_E_MALFORMED, "field '%s': expected an array", key);
    }
    *ret = v;
    return SKR_OK;
}

skr_err
skr_json_get_bool(const json_t *obj, const char *key, bool *ret)
{
    json_t *v = NULL;

    TRY(get_member(obj, key, &v));
    if (!json_is_boolean(v)) {
        FAILF(SKR_E_MALFORMED, "field '%s': expected true or false", key);
    }
    *ret = json_is_true(v);
    return SKR_OK;
}

skr_err
skr_json_get_u64(const json_t *obj, const char *key, uint64_t *ret)
{
    json_t *v = NULL;

    TRY(get_member(obj, key, &v));
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ret = (uint64_t)json_integer_value(v);
        return SKR_OK;
    }
    if (json_is_string(v)) {
        uint64_t n;

        if (skr_parse_u64(skr_span_str(json_string_value(v)), false, 0, UINT64_MAX, &n) == SKR_OK) {
            *ret = n;
            return SKR_OK;
        }
    }
    FAILF(SKR_E_MALFORMED, "field '%s': expected a non-negative integer", key);
}

static int
dump_cb(const char *chunk, size_t size, void *data)
{
    return skr_buf_append(data, chunk, size) == SKR_OK ? 0 : -1;
}

skr_err
skr_json_dump(const json_t *v, size_t flags, struct skr_buf *out)
{
    ENSURE(v != NULL, SKR_E_INVALID_ARG, "NULL JSON value");
    ENSURE(json_dump_callback(v, dump_cb, out, flags) == 0, SKR_E_TOO_LARGE,
           "JSON output exceeds the buffer limit");
    return SKR_OK;
}

skr_err
skr_json_set(json_t *obj, const char *key, json_t *v)
{
    ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
    ENSURE(json_object_set_new(obj, key, v) == 0, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

skr_err
skr_json_set_hex(json_t *obj, const char *key, const uint8_t *p, size_t n)
{
    _cleanup_(skr_buf_donep) struct skr_buf hex = { 0 };
    const char *s;

    skr_buf_init(&hex, 2 * n + 1);
    TRY(skr_hex_encode(skr_span_make(p, n), false, &hex));
    TRY(skr_buf_cstr(&hex, &s));
    return skr_json_set(obj, key, json_stringn(s, hex.len));
}
