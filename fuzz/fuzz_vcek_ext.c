/*
 * fuzz_vcek_ext.c - d2i_X509 on arbitrary bytes, then skr_vcek_ext_decode and the product and
 * TCB helpers; the raw input also goes to skr_vcek_ext_int and skr_vcek_ext_ia5.
 *
 * Properties: no crash or leak; decoded strings are NUL-terminated within their arrays;
 * hwID length within bounds; an accepted INTEGER is 3 or 4 bytes and re-encodes to the input.
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
check_int(const uint8_t *data, size_t size)
{
    uint8_t v = 0;
    uint8_t enc[4] = { 0x02, 0x01, 0, 0 };
    size_t n = 3;

    if (skr_vcek_ext_int(skr_span_make(data, size), &v) != SKR_OK) {
        return;
    }
    if (v >= 0x80) {
        enc[1] = 2;
        enc[3] = v;
        n = 4;
    } else {
        enc[2] = v;
    }
    if (size != n || memcmp(enc, data, n) != 0) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    struct skr_vcek_ext e;
    char s[64];

    if (x != NULL && skr_vcek_ext_decode(x, &e) == SKR_OK) {
        static const enum skr_snp_product products[] = { SKR_SNP_PRODUCT_MILAN,
                                                         SKR_SNP_PRODUCT_TURIN };

        if (memchr(e.product_name, 0, sizeof(e.product_name)) == NULL ||
            memchr(e.csp_id, 0, sizeof(e.csp_id)) == NULL || e.hwid_len > SKR_VCEK_HWID_MAX) {
            abort();
        }
        (void)skr_vcek_ext_product(&e);
        for (size_t i = 0; i < SKR_ARRAY_LEN(products); i++) {
            (void)skr_vcek_ext_tcb(&e, products[i]);
        }
    }
    X509_free(x);
    check_int(data, size);
    if (skr_vcek_ext_ia5(skr_span_make(data, size), s, sizeof(s)) == SKR_OK &&
        memchr(s, 0, sizeof(s)) == NULL) {
        abort();
    }
    ERR_clear_error();
    return 0;
}
