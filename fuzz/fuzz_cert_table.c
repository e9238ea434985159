/*
 * fuzz_cert_table.c - skr_cert_table_parse on arbitrary bytes, then every entry through
 * d2i_X509, skr_cert_set_from_table, and skr_cert_set_load (format auto-detection).
 *
 * Properties: no crash or leak; every parsed entry lies inside the input; a parsed table
 * rebuilt with skr_cert_table_build parses back to the same entries.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "snp_certs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_rebuild(const struct skr_cert_table *t)
{
    struct skr_cert_table t2;
    struct skr_buf blob;

    skr_buf_init(&blob, SKR_MAX_CERT_TABLE_BYTES);
    /* an input table may alias certificates, so a rebuilt one can exceed the limit */
    if (skr_cert_table_build(t->entries, t->n, &blob) != SKR_OK) {
        skr_buf_done(&blob);
        return;
    }
    if (skr_cert_table_parse(skr_buf_span(&blob), &t2) != SKR_OK || t2.n != t->n) {
        abort();
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t2.entries[i].kind != t->entries[i].kind ||
            memcmp(t2.entries[i].guid, t->entries[i].guid, 16) != 0 ||
            !skr_span_eq(t2.entries[i].der, t->entries[i].der)) {
            abort();
        }
    }
    skr_buf_done(&blob);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_cert_table t;
    struct skr_cert_set s;

    if (skr_cert_table_parse(skr_span_make(data, size), &t) == SKR_OK) {
        if (t.n > SKR_MAX_CERT_TABLE_ENTRIES) {
            abort();
        }
        for (size_t i = 0; i < t.n; i++) {
            const unsigned char *p = t.entries[i].der.ptr;
            X509 *x;

            if (t.entries[i].der.len == 0 || p < data || p + t.entries[i].der.len > data + size) {
                abort();
            }
            x = d2i_X509(NULL, &p, (long)t.entries[i].der.len);
            X509_free(x);
        }
        check_rebuild(&t);
        if (skr_cert_set_from_table(&t, &s) == SKR_OK) {
            if (s.vcek == NULL) {
                abort();
            }
            skr_cert_set_done(&s);
        }
    }
    if (skr_cert_set_load(skr_span_make(data, size), &s) == SKR_OK) {
        if (s.vcek == NULL) {
            abort();
        }
        skr_cert_set_done(&s);
    }
    ERR_clear_error();
    return 0;
}
