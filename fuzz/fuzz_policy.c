/*
 * fuzz_policy.c - skr_policy_parse and skr_policy_load on arbitrary bytes.
 *
 * Properties: no crash or leak; a parsed policy evaluates against a fixed ACI-like claim set
 * with and without an issuer, its explanation renders as text and JSON, and its normalised
 * JSON and AKV release_policy forms parse again and reach the same decision.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char claims_text[] =
    "{\"iss\":\"https://sharedeus2.eus2.attest.azure.net\",\"x-ms-ver\":\"1.0\","
    "\"x-ms-attestation-type\":\"sevsnpvm\",\"x-ms-compliance-status\":\"azure-compliant-uvm\","
    "\"x-ms-sevsnpvm-hostdata\":"
    "\"73973b78d70cc68353426de188db5dfc57e5b766e399935fb73a61127ea26d20\","
    "\"x-ms-sevsnpvm-is-debuggable\":false,\"x-ms-sevsnpvm-vmpl\":0,\"x-ms-sevsnpvm-guestsvn\":1,"
    "\"sdk-test\":true,\"a.b\":\"literal\",\"a\":{\"b\":\"nested\",\"c\":{\"d\":\"x\"}},"
    "\"r\":1.5,\"n\":null,\"arr\":[\"x\"],"
    "\"x-ms-isolation-tee\":{\"x-ms-attestation-type\":\"sevsnpvm\","
    "\"x-ms-compliance-status\":\"azure-compliant-cvm\"},"
    "\"x-ms-runtime\":{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"TransferKey\"}]}}";

static const char *const issuers[] = {
    NULL,
    "https://sharedeus2.eus2.attest.azure.net/",
    "https://maa.test",
    "a",
};

static bool
decide(const struct skr_policy *p, const char *iss, const json_t *claims)
{
    struct skr_policy_explain *x = NULL;
    struct skr_buf text;
    json_t *j = NULL;
    bool allow;
    bool allow2 = false;

    if (skr_policy_explain(p, iss, claims, &x) != SKR_OK) {
        abort();
    }
    allow = x->allow;
    if (!allow && x->closest >= 0 && x->first_failure == NULL) {
        abort();
    }
    skr_buf_init(&text, 1u << 22);
    if (skr_policy_explain_to_text(x, &text) != SKR_OK || text.len == 0) {
        abort();
    }
    skr_buf_done(&text);
    if (skr_policy_explain_to_json(x, &j) != SKR_OK) {
        abort();
    }
    json_decref(j);
    skr_policy_explain_free(x);
    if (skr_policy_evaluate(p, iss, claims, &allow2) != SKR_OK || allow2 != allow) {
        abort();
    }
    return allow;
}

static void
check_policy(const struct skr_policy *p, const json_t *claims)
{
    struct skr_policy *again = NULL;
    json_t *norm = NULL;
    json_t *rel = NULL;

    if (skr_policy_to_json(p, &norm) != SKR_OK || skr_policy_parse_json(norm, &again) != SKR_OK) {
        abort();
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(issuers); i++) {
        if (decide(p, issuers[i], claims) != decide(again, issuers[i], claims)) {
            abort();
        }
    }
    skr_policy_free(again);
    again = NULL;
    if (skr_policy_to_release(p, NULL, &rel) != SKR_OK ||
        skr_policy_parse_release(rel, &again) != SKR_OK) {
        abort();
    }
    if (decide(p, NULL, claims) != decide(again, NULL, claims)) {
        abort();
    }
    skr_policy_free(again);
    json_decref(rel);
    json_decref(norm);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *claims;
    struct skr_policy *p = NULL;

    if (claims == NULL) {
        json_error_t jerr;

        claims = json_loads(claims_text, 0, &jerr);
        if (claims == NULL) {
            abort();
        }
    }
    if (skr_policy_parse(skr_span_make(data, size), &p) == SKR_OK) {
        check_policy(p, claims);
        skr_policy_free(p);
        p = NULL;
    }
    if (skr_policy_load(skr_span_make(data, size), &p) == SKR_OK) {
        check_policy(p, claims);
        skr_policy_free(p);
    }
    skr_err_clear();
    return 0;
}
