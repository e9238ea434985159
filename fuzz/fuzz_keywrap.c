/*
 * fuzz_keywrap.c - the key unwrap paths on arbitrary bytes: skr_aes_kwp_unwrap (RFC 5649) and
 * skr_rsa_aes_unwrap (CKM_RSA_AES_KEY_WRAP family), then PKCS#8 decoding of what unwraps.
 *
 * Input: byte 0 selects the KEK size (16/24/32 bytes: sel % 3) and the algorithm
 * ((sel / 3) % 3: CKM_RSA_AES_KEY_WRAP, _256, _384); the rest is the ciphertext for both paths.
 * The KEK is fixed (bytes 0x00, 0x01, ...) and so is the RSA-2048 key below, so the corpus can
 * hold valid wraps that reach the AES-KWP and PKCS#8 code behind RSA-OAEP, and every run is
 * deterministic. The key is parsed once per process, outside the hot loop.
 *
 * Properties: no crash or leak, no secret left allocated; a successful AES-KWP unwrap re-wraps
 * to exactly the input (RFC 5649 is deterministic); an unwrapped plaintext is never empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "buf.h"
#include "err.h"
#include "fuzz_key.h"
#include "keywrap.h"
#include "ossl.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_kwp(struct skr_span kek, struct skr_span ct)
{
    _cleanup_(skr_buf_donep) struct skr_buf again = { 0 };
    struct skr_secret *s = NULL;

    if (skr_aes_kwp_unwrap(kek, ct, &s) != SKR_OK) {
        if (s != NULL) {
            abort();
        }
        return;
    }
    skr_buf_init(&again, ct.len);
    if (s->len == 0 || skr_aes_kwp_wrap(kek, skr_secret_span(s), &again) != SKR_OK ||
        !skr_span_eq(skr_buf_span(&again), ct)) {
        abort();
    }
    skr_secret_free(s);
}

static void
check_rsa(enum skr_kw_alg alg, struct skr_span ct)
{
    struct skr_secret *s = NULL;
    EVP_PKEY *k = NULL;

    if (skr_rsa_aes_unwrap(fuzz_key(), alg, ct, &s) != SKR_OK) {
        if (s != NULL) {
            abort();
        }
        return;
    }
    if (s->len == 0) {
        abort();
    }
    if (skr_kw_pkcs8_to_pkey(skr_secret_span(s), &k) == SKR_OK) {
        EVP_PKEY_free(k);
    }
    skr_secret_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t kek[32] = {
        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    };
    static const size_t kek_lens[3] = { 16, 24, 32 };
    static const enum skr_kw_alg algs[3] = {
        SKR_KW_CKM_RSA_AES_KEY_WRAP,
        SKR_KW_RSA_AES_KEY_WRAP_256,
        SKR_KW_RSA_AES_KEY_WRAP_384,
    };
    size_t live = skr_secret_live();
    struct skr_span ct;

    if (size < 1) {
        return 0;
    }
    ct = skr_span_make(data + 1, size - 1);
    check_kwp(skr_span_make(kek, kek_lens[data[0] % 3]), ct);
    check_rsa(algs[(data[0] / 3) % 3], ct);
    if (skr_secret_live() != live) {
        abort();
    }
    ERR_clear_error();
    return 0;
}
