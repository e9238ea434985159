/*
 * json.h - JSON helpers on jansson: bounded parsing (size, depth, no duplicate keys, no NUL)
 * and typed field access whose errors name the field and what was expected.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

/* jansson >= 2.9 provides json_decrefp() for _cleanup_(json_decrefp). */

/* Parses in (at most max_bytes, depth <= SKR_MAX_JSON_DEPTH). *ret is a new reference. */
/*
 * Makes jansson wipe every block it frees, for the rest of the process: programs whose JSON may
 * hold secrets (request bodies with tokens, key files) call it once at start-up; the library
 * never does. The size comes from malloc_usable_size rather than a header, because libjose
 * releases some jansson results (json_dumps) with plain free().
 */
void skr_json_wipe_on_free(void);

SKR_NODISCARD skr_err skr_json_parse(struct skr_span in, size_t max_bytes, json_t **ret);
/* Same, but the top-level value must be an object. what names the document in errors. */
SKR_NODISCARD skr_err skr_json_parse_object(struct skr_span in, size_t max_bytes, const char *what,
                                            json_t **ret);

/* Required members: SKR_E_MALFORMED naming key when absent or of the wrong type.
 * Returned pointers are borrowed from obj. */
SKR_NODISCARD skr_err skr_json_get_str(const json_t *obj, const char *key, const char **ret);
SKR_NODISCARD skr_err skr_json_get_obj(const json_t *obj, const char *key, json_t **ret);
SKR_NODISCARD skr_err skr_json_get_arr(const json_t *obj, const char *key, json_t **ret);
SKR_NODISCARD skr_err skr_json_get_bool(const json_t *obj, const char *key, bool *ret);
/* A non-negative integer given as a JSON number or as a decimal string. */
SKR_NODISCARD skr_err skr_json_get_u64(const json_t *obj, const char *key, uint64_t *ret);
/* Optional members: *ret = NULL (or unchanged for scalars) and SKR_OK when absent;
 * wrong type is still an error. */
SKR_NODISCARD skr_err skr_json_opt_str(const json_t *obj, const char *key, const char **ret);

/* Appends the serialization of v (jansson flags, e.g. JSON_COMPACT|JSON_SORT_KEYS). */
SKR_NODISCARD skr_err skr_json_dump(const json_t *v, size_t flags, struct skr_buf *out);

/* Builders that fail with SKR_E_NOMEM rather than returning -1. v's reference is stolen. */
SKR_NODISCARD skr_err skr_json_set(json_t *obj, const char *key, json_t *v);
SKR_NODISCARD skr_err skr_json_set_hex(json_t *obj, const char *key, const uint8_t *p, size_t n);
