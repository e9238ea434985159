/*
 * envelope.h - encrypting data with a released key: the versioned "SKRE" file format of
 * `skr encrypt` / `skr decrypt` (docs/encryption-format.md, issue #4 "Consuming the key").
 *
 * oct keys (16/24/32 bytes) encrypt directly with AES-128/192/256-GCM; RSA keys encrypt a fresh
 * AES-256-GCM data key with RSA-OAEP-256 (SHA-256, MGF1-SHA-256, empty label) to their public
 * half. Every file names its key by the RFC 7638 thumbprint, so a decrypt with the wrong key
 * fails before any cryptography; the header bytes and the caller's associated data are the GCM
 * AAD. Decrypted bytes reach the caller only after the tag verified. All functions are
 * thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "buf.h"
#include "secret.h"

#define SKR_ENV_MAGIC      "SKRE"
#define SKR_ENV_VERSION    1u
#define SKR_ENV_FIXED_LEN  48u /* magic, version, alg, wrapped_key_len, kid, ciphertext_len */
#define SKR_ENV_KID_LEN    32u /* SHA-256 RFC 7638 thumbprint, raw bytes */
#define SKR_ENV_NONCE_LEN  12u
#define SKR_ENV_TAG_LEN    16u
#define SKR_ENV_DATA_KEY   32u /* the AES-256 data key of the RSA envelope */
#define SKR_ENV_KID_TXTLEN 44u /* base64url of the kid, plus the NUL */

/* The algorithm byte (offset 5). Values are never reused. */
enum skr_env_alg {
    SKR_ENV_A128GCM = 1,             /* oct key of 16 bytes, AES-128-GCM */
    SKR_ENV_A192GCM = 2,             /* oct key of 24 bytes, AES-192-GCM */
    SKR_ENV_A256GCM = 3,             /* oct key of 32 bytes, AES-256-GCM */
    SKR_ENV_RSA_OAEP_256_A256GCM = 4 /* RSA-OAEP-256 wrapped AES-256-GCM data key */
};

/* A parsed file: every span points into the parsed input, which must outlive it. */
struct skr_env_blob {
    enum skr_env_alg alg;
    struct skr_span kid;         /* SKR_ENV_KID_LEN bytes */
    struct skr_span wrapped_key; /* empty for the oct algorithms */
    struct skr_span nonce;       /* SKR_ENV_NONCE_LEN bytes */
    struct skr_span header;      /* bytes 0 .. end of nonce: the first part of the GCM AAD */
    struct skr_span ciphertext;
    struct skr_span tag; /* SKR_ENV_TAG_LEN bytes */
};

/* A key loaded from a JWK. Key material lives in a skr_secret (oct) or in OpenSSL (RSA). */
struct skr_env_key {
    enum skr_env_alg alg;   /* what skr_env_encrypt produces with this key */
    struct skr_secret *aes; /* oct keys */
    EVP_PKEY *rsa;          /* RSA keys */
    bool has_private;       /* can decrypt (always true for oct keys) */
    uint8_t kid[SKR_ENV_KID_LEN];
};

/*
 * Loads a key from text: a JWK object, or skrd's /key/release response {"key":"<JWK as a JSON
 * string>"} (an object in place of the string is accepted too). kty "oct" with "k" of 16, 24 or
 * 32 bytes, or kty "RSA" of SKR_MIN_RSA_BITS..SKR_MAX_RSA_BITS bits, public or with all private
 * members (skr_jwk_to_pkey). Errors: SKR_E_MALFORMED (not JSON, no usable JWK: messages never
 * quote the text, which holds key material), SKR_E_UNSUPPORTED (EC, other kty, oct of another
 * size), SKR_E_TOO_LARGE (over SKR_MAX_KEY_FILE_BYTES). The JSON is parsed by jansson, whose
 * heap is not wiped unless the process installs a wiping allocator (skr does, cmd_crypt.c).
 * *ret is a new key; free it with skr_env_key_free.
 */
SKR_NODISCARD skr_err skr_env_key_from_jwk(struct skr_span text, struct skr_env_key **ret);
/* Wipes and frees; NULL is a no-op. */
void skr_env_key_free(struct skr_env_key *k);
DEFINE_CLEANUP(struct skr_env_key *, skr_env_key_free)

/* "A128GCM", "A192GCM", "A256GCM", "RSA-OAEP-256+A256GCM", or "unknown". Never NULL. */
const char *skr_env_alg_name(enum skr_env_alg alg);
/* base64url (no padding) of a kid: the RFC 7638 thumbprint as JOSE writes it. */
void skr_env_kid_text(const uint8_t kid[SKR_ENV_KID_LEN], char out[SKR_ENV_KID_TXTLEN]);

/*
 * Parses the framing of an encrypted file without any key. Errors: SKR_E_MALFORMED (magic, a
 * length field out of range, trailing bytes), SKR_E_TRUNCATED (shorter than its lengths say),
 * SKR_E_UNSUPPORTED (version or algorithm unknown), SKR_E_TOO_LARGE (ciphertext over
 * SKR_MAX_CRYPT_BYTES). *ret is written only on success.
 */
SKR_NODISCARD skr_err skr_env_parse(struct skr_span blob, struct skr_env_blob *ret);

/*
 * Encrypts plaintext (0..SKR_MAX_CRYPT_BYTES bytes) with key; aad (may be empty) is
 * authenticated, not stored. out must be empty; it receives the whole file. On failure out is
 * reset.
 */
SKR_NODISCARD skr_err skr_env_encrypt(const struct skr_env_key *key, struct skr_span plaintext,
                                      struct skr_span aad, struct skr_buf *out);

/*
 * Decrypts a file made by skr_env_encrypt with the same key and aad. out must be empty and
 * receives the plaintext only when the tag verified; on any failure it is reset (wiped).
 * Errors: those of skr_env_parse; SKR_E_VERIFY when the file names another key (the message
 * gives both thumbprints), when its algorithm does not fit the key, or when RSA-OAEP or the
 * GCM tag fails (one message for both: no oracle); SKR_E_INVALID_ARG for an RSA key without
 * its private members.
 */
SKR_NODISCARD skr_err skr_env_decrypt(const struct skr_env_key *key, struct skr_span blob,
                                      struct skr_span aad, struct skr_buf *out);
