/*
 * fuzz_snp_report.c - skr_snp_report_parse and skr_snp_report_load on arbitrary bytes.
 *
 * Properties: no crash or leak; whatever parses serializes back to exactly the input
 * (reserved ranges are kept); JSON and text output succeed for every parsed report and every
 * product layout; load() of the same bytes agrees with parse() on its raw output.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "snp_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_outputs(const struct skr_snp_report *r)
{
    static const enum skr_snp_product products[] = {
        SKR_SNP_PRODUCT_UNKNOWN,
        SKR_SNP_PRODUCT_MILAN,
        SKR_SNP_PRODUCT_TURIN,
    };

    for (size_t i = 0; i < SKR_ARRAY_LEN(products); i++) {
        json_t *j = NULL;
        struct skr_buf text;

        if (skr_snp_report_to_json(r, products[i], &j) != SKR_OK || j == NULL) {
            abort();
        }
        json_decref(j);
        skr_buf_init(&text, 1u << 16);
        if (skr_snp_report_to_text(r, products[i], &text) != SKR_OK || text.len == 0) {
            abort();
        }
        skr_buf_done(&text);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_snp_report r;
    uint8_t out[SKR_SNP_REPORT_LEN];

    if (skr_snp_report_parse(skr_span_make(data, size), &r) == SKR_OK) {
        if (size != SKR_SNP_REPORT_LEN) {
            abort();
        }
        skr_snp_report_serialize(&r, out);
        if (memcmp(out, data, SKR_SNP_REPORT_LEN) != 0) {
            abort();
        }
        (void)skr_snp_report_product(&r);
        check_outputs(&r);
    }

    /* load() accepts binary or hex text; whatever it returns must re-serialize to raw_out. */
    if (skr_snp_report_load(skr_span_make(data, size), &r, out) == SKR_OK) {
        uint8_t again[SKR_SNP_REPORT_LEN];

        skr_snp_report_serialize(&r, again);
        if (memcmp(again, out, SKR_SNP_REPORT_LEN) != 0) {
            abort();
        }
        check_outputs(&r);
    }
    skr_err_clear();
    return 0;
}
