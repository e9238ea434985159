/*
 * fuzz_thim.c - skr_thim_parse and skr_thim_parse_b64 on arbitrary bytes (THIM JSON and the
 * ACI host-amd-cert-base64 file), and the certificates of a parsed THIM through PEM reading.
 *
 * Properties: no crash or leak; a parsed THIM has all required strings and its tcbm equals
 * the hex value of tcbm_str.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "ossl.h"
#include "snp_certs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_thim(struct skr_thim *t)
{
    size_t n;
    uint64_t v = 0;
    STACK_OF(X509) *sk = NULL;

    if (t->vcek_pem == NULL || t->chain_pem == NULL || t->tcbm_str == NULL) {
        abort();
    }
    n = strlen(t->tcbm_str);
    if (n < 1 || n > 16) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        char c = t->tcbm_str[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;

        if (d > 15) {
            abort();
        }
        v = v << 4 | d;
    }
    if (v != t->tcbm) {
        abort();
    }
    if (skr_pem_read_certs(skr_span_str(t->chain_pem), &sk) == SKR_OK) {
        skr_x509_stack_free(sk);
    }
    skr_thim_done(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_thim t;
    struct skr_cert_set s;

    if (skr_thim_parse(skr_span_make(data, size), &t) == SKR_OK) {
        check_thim(&t);
    }
    if (skr_thim_parse_b64(skr_span_make(data, size), &t) == SKR_OK) {
        check_thim(&t);
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
