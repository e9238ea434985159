/*
 * fuzz_emu_attest.c - the MAA emulator's attest request parser (emu_maa_parse_attest) on
 * arbitrary bodies: the request JSON, the big-nonce fallback, the base64url report bundle,
 * SnpReport, VcekCertChain, Endorsements, runtimeData / initTimeData and the nonce.
 *
 * Properties: no crash or leak; a request that parses has a runtimeData, a VCEK, the raw
 * report is what was parsed, JSON data is an object and a nonce is a bounded string.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "service.h"
#include "snp_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_data(const struct emu_maa_data *d)
{
    if (!d->present && (d->parsed != NULL || d->bytes.len != 0)) {
        abort();
    }
    if (d->parsed != NULL && !json_is_object(d->parsed)) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct emu_attest_request *req = calloc(1, sizeof(*req));

    if (req == NULL) {
        abort();
    }
    if (emu_maa_parse_attest(skr_span_make(data, size), req) == SKR_OK) {
        struct skr_snp_report again;

        if (!req->runtime.present || req->certs.vcek == NULL) {
            abort();
        }
        if (skr_snp_report_parse(skr_span_make(req->raw, sizeof(req->raw)), &again) != SKR_OK ||
            again.version != req->report.version ||
            memcmp(again.report_data, req->report.report_data, sizeof(again.report_data)) != 0) {
            abort();
        }
        check_data(&req->runtime);
        check_data(&req->inittime);
        if (req->nonce != NULL &&
            (!json_is_string(req->nonce) || json_string_length(req->nonce) > 1024)) {
            abort();
        }
    }
    emu_attest_request_done(req);
    free(req);
    skr_err_clear();
    return 0;
}
