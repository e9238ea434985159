/*
 * kdf.h - HKDF-SHA256 (RFC 5869) and the reference's symmetric key derived from an RSA key
 * (PROTOCOLS.md §8.3: SCC tools/importkey -out and cmd/remotefs): IKM = the private exponent d,
 * big-endian, without leading zero bytes (Go's big.Int.Bytes()), salt = the hex-decoded
 * key_derivation.salt (empty when absent), info = key_derivation.label or
 * "Symmetric Encryption Key", 32 bytes of output.
 *
 * Outputs only ever live in struct skr_secret.
 */
#pragma once

#include <openssl/evp.h>

#include "buf.h"
#include "secret.h"

/* The label the reference uses when key_derivation.label is empty. */
#define SKR_KDF_DEFAULT_LABEL "Symmetric Encryption Key"
/* Length of the derived key (the reference's keyfile.bin, a LUKS key file). */
#define SKR_KDF_KEY_LEN 32u
/* HKDF-SHA256 output is at most 255 hash lengths (RFC 5869 §2.3). */
#define SKR_HKDF_SHA256_MAX_OUT (255u * 32u)

/* HKDF-SHA256 of ikm (non-empty) with salt and info (either may be empty), out_len bytes
 * (1..SKR_HKDF_SHA256_MAX_OUT), into a new secret. */
SKR_NODISCARD skr_err skr_hkdf_sha256(struct skr_span ikm, struct skr_span salt,
                                      struct skr_span info, size_t out_len,
                                      struct skr_secret **ret);

/* The reference's derivation from an RSA private key; label NULL or "" means the default.
 * SKR_E_INVALID_ARG when key is not an RSA key with its private exponent. */
SKR_NODISCARD skr_err skr_kdf_rsa_derive(EVP_PKEY *key, struct skr_span salt, const char *label,
                                         struct skr_secret **ret);
