/*
 * fuzz_emu_release.c - the Key Vault emulator's body parsers on arbitrary bodies: the release
 * body {"target","nonce","enc"} and the import / create bodies (JWK, attributes, key_ops,
 * release_policy, key_size / crv), each with an old and a current api-version.
 *
 * Properties: no crash or leak; a rejection always carries a 4xx status, a code and a message;
 * a parsed body is consistent (an exportable key has a policy and a non-exportable one none,
 * an import has a private JWK, create a key size or curve, an oct JWK has 16/24/32 bytes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const versions[] = { "7.2", "7.4" };

static void
check_reject(skr_err e, const struct emu_reject *rej)
{
    if (e == SKR_OK) {
        if (rej->status != 0) {
            abort();
        }
        return;
    }
    if (e == SKR_E_POLICY &&
        (rej->status < 400 || rej->status > 499 || rej->code == NULL || rej->msg[0] == '\0')) {
        abort();
    }
}

static void
check_key(const struct emu_akv_key_body *b, bool import)
{
    if (b->key_ops == NULL || !json_is_array(b->key_ops) || b->kty == NULL) {
        abort();
    }
    if (b->exportable != (b->policy != NULL)) {
        abort();
    }
    if (import && (b->jwk == NULL || json_object_get(b->jwk, "kty") == NULL)) {
        abort();
    }
    if (!import && (b->jwk != NULL || (b->bits == 0 && b->crv == NULL))) {
        abort();
    }
    if (b->policy != NULL && (!json_is_string(json_object_get(b->policy, "data")) ||
                              !json_is_boolean(json_object_get(b->policy, "immutable")))) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_span body = skr_span_make(data, size);

    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        struct emu_akv_release_body rb = { 0 };
        struct emu_reject rej = { 0 };
        skr_err e = emu_akv_parse_release(body, versions[v], &rb, &rej);

        check_reject(e, &rej);
        if (e == SKR_OK && (rb.target == NULL || (rb.nonce != NULL && strlen(rb.nonce) > 1024))) {
            abort();
        }
        emu_akv_release_body_done(&rb);
        for (int import = 0; import <= 1; import++) {
            struct emu_akv_key_body kb = { 0 };

            e = emu_akv_parse_key(body, import != 0, versions[v], &kb, &rej);
            check_reject(e, &rej);
            if (e == SKR_OK) {
                check_key(&kb, import != 0);
            }
            emu_akv_key_body_done(&kb);
        }
    }
    skr_err_clear();
    return 0;
}
