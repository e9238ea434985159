/*
 * ossl.h - cleanup wrappers for libcrypto handles (STYLE.md C9), in one place.
 */
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "compiler.h"

DEFINE_CLEANUP(EVP_PKEY *, EVP_PKEY_free)
DEFINE_CLEANUP(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_CLEANUP(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_CLEANUP(X509 *, X509_free)
DEFINE_CLEANUP(X509_STORE *, X509_STORE_free)
DEFINE_CLEANUP(X509_STORE_CTX *, X509_STORE_CTX_free)
DEFINE_CLEANUP(BIO *, BIO_free_all)
DEFINE_CLEANUP(BIGNUM *, BN_free)
DEFINE_CLEANUP(ECDSA_SIG *, ECDSA_SIG_free)
DEFINE_CLEANUP(ASN1_OBJECT *, ASN1_OBJECT_free)
DEFINE_CLEANUP(ASN1_TYPE *, ASN1_TYPE_free)

static inline void
skr_x509_stack_free(STACK_OF(X509) * sk)
{
    sk_X509_pop_free(sk, X509_free);
}
DEFINE_CLEANUP(STACK_OF(X509) *, skr_x509_stack_free)

static inline void
skr_ossl_freep(unsigned char **p)
{
    OPENSSL_free(*p);
}
