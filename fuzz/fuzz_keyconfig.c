/*
 * fuzz_keyconfig.c - skr_keyconfig_parse (the import-key configuration of `skr key`) and
 * skr_keymaterial_load (key files) on arbitrary bytes.
 *
 * Properties: no crash or leak; a parsed exportable configuration has a policy (or names a
 * policy file) that lib/policy.c accepts, and its create body and release_policy request build
 * and parse again as JSON; a loaded key fits its configuration or is refused, and its import
 * body (redacted) parses as JSON. No secret stays allocated.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "keyconfig.h"
#include "secret.h"
#include "skr_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
reparse(const struct skr_buf *b)
{
    json_t *v = NULL;

    if (skr_json_parse(skr_buf_span(b), SKR_MAX_HTTP_BODY_BYTES, &v) != SKR_OK) {
        abort();
    }
    json_decref(v);
}

static void
check_config(struct skr_keyconfig *kc)
{
    struct skr_buf body;
    json_t *rp = NULL;

    if (kc->exportable && kc->policy == NULL && kc->policy_file == NULL) {
        abort();
    }
    if (kc->policy == NULL) {
        return;
    }
    if (skr_keyconfig_check_policy(kc->policy, "fuzz") != SKR_OK) {
        abort();
    }
    if (skr_release_policy_request(kc->policy, kc->immutable, &rp) != SKR_OK) {
        abort();
    }
    json_decref(rp);
    skr_buf_init(&body, SKR_MAX_HTTP_BODY_BYTES);
    if (skr_keyconfig_create_body(kc, &body) != SKR_OK) {
        abort();
    }
    reparse(&body);
    skr_buf_done(&body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_keyconfig *kc = NULL;
    struct skr_keymaterial km = { 0 };
    struct skr_span in = skr_span_make(data, size);

    if (skr_keyconfig_parse(in, &kc) == SKR_OK) {
        check_config(kc);
    }
    if (skr_keymaterial_load(in, &km) == SKR_OK && kc != NULL && kc->policy != NULL &&
        skr_keymaterial_check(kc, &km) == SKR_OK) {
        struct skr_buf body;

        skr_buf_init(&body, SKR_MAX_HTTP_BODY_BYTES);
        if (skr_keyconfig_import_body(kc, &km, true, &body) != SKR_OK) {
            abort();
        }
        reparse(&body);
        skr_buf_done(&body);
    }
    skr_keymaterial_done(&km);
    skr_keyconfig_free(kc);
    if (skr_secret_live() != 0) {
        abort();
    }
    return 0;
}
