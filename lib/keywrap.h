/*
 * keywrap.h - unwrapping keys released by Azure Key Vault / Managed HSM (PROTOCOLS.md §7.4):
 * the CKM_RSA_AES_KEY_WRAP family (RSA-OAEP of an ephemeral AES key, then RFC 5649 AES key
 * wrap with padding of the key material), the inverse for the Key Vault emulator and tests,
 * and the PKCS#8 decoding of released RSA/EC keys.
 *
 * Unwrapped bytes only ever appear in a struct skr_secret, and only after the integrity check
 * passed. Every failure of RSA-OAEP or of the AES-KWP check is the same SKR_E_VERIFY with the
 * same message, so that errors are no decryption oracle. All functions are thread-safe.
 */
#pragma once

#include <stddef.h>

#include <openssl/evp.h>

#include "buf.h"
#include "secret.h"

/* The "enc" values of a release request / key_hsm header (PROTOCOLS.md §7.2). */
enum skr_kw_alg {
    SKR_KW_CKM_RSA_AES_KEY_WRAP = 0, /* "CKM_RSA_AES_KEY_WRAP": OAEP SHA-1, MGF1-SHA-1 */
    SKR_KW_RSA_AES_KEY_WRAP_256,     /* "RSA_AES_KEY_WRAP_256": OAEP SHA-256, MGF1-SHA-256 */
    SKR_KW_RSA_AES_KEY_WRAP_384,     /* "RSA_AES_KEY_WRAP_384": OAEP SHA-384, MGF1-SHA-384 */
};

/* Parses an "enc" name (exact, case-sensitive). SKR_E_UNSUPPORTED for any other name,
 * SKR_E_INVALID_ARG for NULL. */
SKR_NODISCARD skr_err skr_kw_alg_parse(const char *name, enum skr_kw_alg *ret);
/* The "enc" name of alg; "unknown" for a value outside the enum. Never NULL. */
const char *skr_kw_alg_name(enum skr_kw_alg alg);

/*
 * RFC 5649 AES key wrap with padding. kek is 16, 24 or 32 bytes (AES-128/192/256), else
 * SKR_E_INVALID_ARG. plaintext is 1..SKR_MAX_SECRET_BYTES - 8 bytes (SKR_E_INVALID_ARG), so
 * that every wrap fits the unwrap limit. The
 * 8 + roundup(plaintext.len, 8) output bytes are appended to out; on failure out is unchanged.
 */
SKR_NODISCARD skr_err skr_aes_kwp_wrap(struct skr_span kek, struct skr_span plaintext,
                                       struct skr_buf *out);

/*
 * Inverse of skr_aes_kwp_wrap. Errors: SKR_E_INVALID_ARG (kek size), SKR_E_MALFORMED
 * (ciphertext shorter than 16 bytes or not a multiple of 8), SKR_E_TOO_LARGE (longer than
 * SKR_MAX_SECRET_BYTES), SKR_E_VERIFY (RFC 5649 §3 integrity check: AIV, MLI range or
 * padding). On success *ret is a new secret the caller frees; on failure *ret is untouched and
 * no plaintext remains in memory.
 */
SKR_NODISCARD skr_err skr_aes_kwp_unwrap(struct skr_span kek, struct skr_span ciphertext,
                                         struct skr_secret **ret);

/* Length of a skr_rsa_aes_wrap output: modulus_len + 8 + roundup(plaintext_len, 8)
 * (e.g. RSA-2048 and a 1219-byte PKCS#8 key: 256 + 1232 = 1488). SKR_E_TOO_LARGE on overflow. */
SKR_NODISCARD skr_err skr_rsa_aes_wrapped_len(size_t modulus_len, size_t plaintext_len,
                                              size_t *ret);

/*
 * Unwraps a key_hsm ciphertext: RSA-OAEP(rsa_priv, hash of alg, empty label) of the first
 * modulus-length bytes (EVP_PKEY_get_size, not a fixed 256: PROTOCOLS.md pitfall 9) gives a
 * 16/24/32-byte AES key, which AES-KWP-unwraps the rest. rsa_priv is an RSA private key of
 * 2048..16384 bits (borrowed). Errors: SKR_E_INVALID_ARG (not an RSA key, bad size or alg),
 * SKR_E_MALFORMED (shorter than modulus + 16, or the rest not a multiple of 8),
 * SKR_E_TOO_LARGE, SKR_E_VERIFY (any decryption or integrity failure, one generic message).
 * On success *ret is a new secret holding the key material (PKCS#8 DER for RSA/EC keys, raw
 * bytes for oct keys); on failure *ret is untouched.
 */
SKR_NODISCARD skr_err skr_rsa_aes_unwrap(EVP_PKEY *rsa_priv, enum skr_kw_alg alg,
                                         struct skr_span ciphertext, struct skr_secret **ret);

/*
 * The inverse (Key Vault emulator, tests): a fresh AES-256 key from RAND_bytes, RSA-OAEP
 * encrypted to rsa_pub (RSA, 2048..16384 bits, borrowed), followed by the AES-KWP wrap of
 * plaintext (1..SKR_MAX_SECRET_BYTES - 8 bytes). The skr_rsa_aes_wrapped_len bytes are appended
 * to out; on failure out is unchanged.
 */
SKR_NODISCARD skr_err skr_rsa_aes_wrap(EVP_PKEY *rsa_pub, enum skr_kw_alg alg,
                                       struct skr_span plaintext, struct skr_buf *out);

/*
 * Decodes released RSA/EC key material: PKCS#8 PrivateKeyInfo DER (RFC 5208; EC keys carry an
 * RFC 5915 ECPrivateKey inside), as SCC's x509.ParsePKCS8PrivateKey. The whole span must be
 * one DER object. Errors: SKR_E_MALFORMED (not PKCS#8, trailing bytes, undecodable key),
 * SKR_E_UNSUPPORTED (a key type other than RSA or EC), SKR_E_TOO_LARGE. *ret is a new key the
 * caller frees with EVP_PKEY_free.
 */
SKR_NODISCARD skr_err skr_kw_pkcs8_to_pkey(struct skr_span der, EVP_PKEY **ret);
