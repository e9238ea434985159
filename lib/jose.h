/*
 * jose.h - JWS / JWT / JWK (RFC 7515, 7517, 7518, 7519, 7638) for the release flow: the MAA
 * token (PROTOCOLS.md §5.3), the AKV/mHSM release JWS (§7.2), the transfer-key JWKS (§1 step 2)
 * and the emulators that sign tokens.
 *
 * Signing, verification, JWK <-> EVP_PKEY conversion and thumbprints are done by libjose
 * (DESIGN.md §3); this module adds what libjose leaves to its callers: a strict compact
 * serialization parser with size limits, an algorithm allow-list bound to the key type, x5c
 * chains and x5t#S256 checks.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"

/* Length of a SHA-256 thumbprint as base64url without padding, plus the NUL. */
#define SKR_THUMBPRINT_LEN 44

/*
 * A parsed compact JWS. All members are owned by the struct (the compact text is copied), so
 * it outlives the input. Release with skr_jws_done().
 */
struct skr_jws {
    struct skr_buf compact;        /* copy of the compact serialization */
    struct skr_span seg_hdr;       /* base64url header segment (into compact) */
    struct skr_span seg_pay;       /* base64url payload segment (into compact) */
    struct skr_span seg_sig;       /* base64url signature segment (into compact) */
    struct skr_span signing_input; /* "<header>.<payload>" (into compact) */
    json_t *header;                /* decoded protected header, a JSON object */
    const char *alg;               /* header "alg", borrowed from header; never "none" */
    struct skr_buf payload;        /* decoded payload bytes */
    json_t *claims;                /* payload parsed as a JSON object, or NULL when it is not one */
    struct skr_buf signature;      /* decoded signature bytes */
};

/*
 * Parses a compact JWS: exactly three base64url segments without padding (RFC 7515 §7.1; '=',
 * '+', '/' and whitespace are rejected, as are non-canonical final characters), at most
 * SKR_MAX_JWT_BYTES. The header must be a JSON object with a string "alg" other than "none"
 * and without "crit" (no extension is understood). The signature segment must not be empty.
 * Nothing is verified. On failure *ret is left zeroed.
 */
SKR_NODISCARD skr_err skr_jws_parse(struct skr_span compact, struct skr_jws *ret);
void skr_jws_done(struct skr_jws *jws);
static inline void
skr_jws_donep(struct skr_jws *jws)
{
    skr_jws_done(jws);
}

/*
 * Verifies the signature with key. Allowed: RS256/RS384/RS512 and PS256/PS384/PS512 with an
 * RSA key of 2048..SKR_MAX_RSA_BITS bits; ES256/ES384/ES512 with a P-256/P-384/P-521 key
 * respectively. Any other alg, or an alg that does not fit the key, fails with
 * SKR_E_VERIFY; so does a signature that does not verify.
 */
SKR_NODISCARD skr_err skr_jws_verify(const struct skr_jws *jws, EVP_PKEY *key);

/*
 * Decodes header "x5c": an array of 1..SKR_MAX_CERT_CHAIN strings, each STANDARD base64 of a
 * DER certificate (RFC 7515 §4.1.6; padding optional). Order is kept (x5c[0] is the signer).
 * SKR_E_NOT_FOUND when the header has no x5c.
 */
SKR_NODISCARD skr_err skr_jws_x5c(const struct skr_jws *jws, STACK_OF(X509) * *ret);

/* base64url-nopad SHA-256 of cert's DER: the value of x5t#S256 (and of AKV's "kid"). */
SKR_NODISCARD skr_err skr_x509_thumbprint_s256(X509 *cert, char out[SKR_THUMBPRINT_LEN]);

/*
 * When the header carries "x5t#S256", checks that it equals the thumbprint of leaf
 * (SKR_E_VERIFY otherwise); SKR_OK when absent. *present (may be NULL) tells which.
 */
SKR_NODISCARD skr_err skr_jws_check_x5t(const struct skr_jws *jws, X509 *leaf, bool *present);

/*
 * Signs claims as a compact JWT with RS256 (for the MAA / Entra emulators). The header is
 * {"alg":"RS256"} plus the members of header_extra (may be NULL; e.g. kid, jku, x5c, typ; it
 * must not contain "alg"), serialized with sorted keys. claims is serialized compactly in its
 * own member order. The result is appended to out.
 */
SKR_NODISCARD skr_err skr_jwt_sign_rs256(EVP_PKEY *priv, const json_t *header_extra,
                                         const json_t *claims, struct skr_buf *out);

/*
 * JWK of an RSA or EC (P-256/P-384/P-521) key, members per RFC 7518 §6 in base64url without
 * padding (RSA "n" without leading zero bytes; EC coordinates at full field length). Private
 * members only when include_private (and the key has them). *ret is a new reference.
 */
SKR_NODISCARD skr_err skr_jwk_from_pkey(EVP_PKEY *key, bool include_private, json_t **ret);

/*
 * Key of a JWK: kty "RSA" (n, e; private when d, p, q, dp, dq, qi are all present; "oth" is
 * not supported; modulus 2048..SKR_MAX_RSA_BITS bits, leading zero bytes tolerated) or "EC"
 * (crv P-256/P-384/P-521; x, y and d at exactly the field length; the point must be on the
 * curve and d must match it). Every number must be strict base64url without padding.
 * "oct" keys are refused (SKR_E_UNSUPPORTED): use the JSON directly.
 */
SKR_NODISCARD skr_err skr_jwk_to_pkey(const json_t *jwk, EVP_PKEY **ret);

/* RFC 7638 SHA-256 thumbprint of an RSA, EC or oct JWK, base64url without padding. */
SKR_NODISCARD skr_err skr_jwk_thumbprint(const json_t *jwk, char out[SKR_THUMBPRINT_LEN]);

/* {"k":<base64url-nopad secret>,"kty":"oct"} (1..SKR_MAX_SECRET_BYTES bytes). The result holds
 * key material: callers drop it as soon as it is serialized. */
SKR_NODISCARD skr_err skr_jwk_oct_new(struct skr_span secret, json_t **ret);

/*
 * The transfer-key JWKS exactly as SCC builds it (PROTOCOLS.md §1 step 2):
 * {"keys":[{"e":…,"key_ops":["encrypt"],"kid":<RFC 7638 thumbprint>,"kty":"RSA","n":…}]},
 * serialized with JSON_COMPACT|JSON_SORT_KEYS and appended to out. key must be RSA (its public
 * half is used). *ret_jwks (may be NULL) receives the same document as JSON.
 */
SKR_NODISCARD skr_err skr_jwks_transfer_key(EVP_PKEY *key, struct skr_buf *out, json_t **ret_jwks);
