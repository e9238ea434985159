/*
 * kdf.c - HKDF-SHA256 through OpenSSL's EVP_KDF "HKDF" and the reference's key derived from
 * an RSA private exponent (kdf.h).
 */
#include "kdf.h"

#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "ossl.h"

DEFINE_CLEANUP(EVP_KDF *, EVP_KDF_free)
DEFINE_CLEANUP(EVP_KDF_CTX *, EVP_KDF_CTX_free)

static void
bn_clear_freep(BIGNUM **p)
{
    BN_clear_free(*p);
}

skr_err
skr_hkdf_sha256(struct skr_span ikm, struct skr_span salt, struct skr_span info, size_t out_len,
                struct skr_secret **ret)
{
    _cleanup_(EVP_KDF_freep) EVP_KDF *kdf = NULL;
    _cleanup_(EVP_KDF_CTX_freep) EVP_KDF_CTX *ctx = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *out = NULL;
    OSSL_PARAM params[6];
    size_t n = 0;
    char digest[] = "SHA256";

    ENSURE(ret != NULL && (ikm.ptr != NULL || ikm.len == 0), SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(ikm.len > 0, SKR_E_INVALID_ARG, "HKDF: empty input key material");
    ENSURE(out_len > 0 && out_len <= SKR_HKDF_SHA256_MAX_OUT, SKR_E_INVALID_ARG,
           "HKDF-SHA256: output length must be 1..8160 bytes");
    ENSURE(salt.len == 0 || salt.ptr != NULL, SKR_E_INVALID_ARG, "NULL salt");
    ENSURE(info.len == 0 || info.ptr != NULL, SKR_E_INVALID_ARG, "NULL info");
    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    ENSURE(kdf != NULL, SKR_E_INTERNAL, "HKDF is not available in libcrypto");
    ctx = EVP_KDF_CTX_new(kdf);
    ENSURE(ctx != NULL, SKR_E_NOMEM, "out of memory");
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)ikm.ptr, ikm.len);
    /* an absent salt is HMAC's empty key, i.e. HashLen zeros (RFC 5869 §2.2) */
    if (salt.len > 0) {
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        (void *)(uintptr_t)salt.ptr, salt.len);
    }
    if (info.len > 0) {
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                        (void *)(uintptr_t)info.ptr, info.len);
    }
    params[n] = OSSL_PARAM_construct_end();
    TRY(skr_secret_new(out_len, &out));
    TRY_OSSL(EVP_KDF_derive(ctx, out->ptr, out->len, params), SKR_E_INTERNAL, "HKDF-SHA256 failed");
    *ret = TAKE_PTR(out);
    return SKR_OK;
}

skr_err
skr_kdf_rsa_derive(EVP_PKEY *key, struct skr_span salt, const char *label, struct skr_secret **ret)
{
    _cleanup_(bn_clear_freep) BIGNUM *d = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *ikm = NULL;
    int n;

    ENSURE(key != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA, SKR_E_INVALID_ARG,
           "key derivation needs an RSA key");
    ENSURE(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &d) == 1 && d != NULL,
           SKR_E_INVALID_ARG, "key derivation needs the RSA private exponent");
    n = BN_num_bytes(d);
    ENSURE(n > 0, SKR_E_INVALID_ARG, "the RSA private exponent is zero");
    TRY(skr_secret_new((size_t)n, &ikm));
    /* BN_bn2bin writes the minimal big-endian form: no leading zeros, as big.Int.Bytes() */
    ENSURE(BN_bn2bin(d, ikm->ptr) == n, SKR_E_INTERNAL, "BN_bn2bin failed");
    if (label == NULL || label[0] == '\0') {
        label = SKR_KDF_DEFAULT_LABEL;
    }
    return skr_hkdf_sha256(skr_secret_span(ikm), salt, skr_span_str(label), SKR_KDF_KEY_LEN, ret);
}
