/*
 * keyconfig.h - the configuration of `skr key import|create` (PROTOCOLS.md §7.5): the reference
 * sidecar's importkeyconfig.json schema unchanged (SCC tools/importkey, pkg/common/keyblob.go)
 * and our richer form (docs/cli.md "skr key"), parsed into one struct; the release policy it
 * describes; the key material (generated, or read from a PEM, DER, JWK, hex or raw file); and
 * the Key Vault / Managed HSM request bodies built from them.
 *
 * Every parse error names the member as a JSON path (key.akv.endpoint, claims[0][2].equals)
 * and what was expected; messages never contain a token or key material.
 *
 * Private key material goes from the EVP_PKEY / skr_secret straight into a wiped skr_buf
 * (the import body is written by hand); it never passes through jansson.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "buf.h"
#include "secret.h"

enum skr_keytype {
    SKR_KEYTYPE_OCT = 0,
    SKR_KEYTYPE_RSA,
    SKR_KEYTYPE_EC,
};

/* A parsed configuration. Free with skr_keyconfig_free(). */
struct skr_keyconfig {
    char name[128]; /* key.kid: the key name, 1..127 of [0-9A-Za-z-] */
    enum skr_keytype type;
    const char *kty;      /* "RSA-HSM", "EC-HSM" or "oct-HSM" (static) */
    unsigned int bits;    /* key.key_size (RSA 2048/3072/4096, oct 128/192/256); 0 = not given */
    const char *crv;      /* key.crv (EC: "P-256", "P-384", "P-521", static); NULL = not given */
    json_t *key_ops;      /* key.key_ops (an array of operation names) or NULL */
    bool exportable;      /* key.exportable, default true */
    bool immutable;       /* key.immutable, default false */
    char *authority;      /* https URL of key.authority.endpoint, or NULL */
    char *akv_endpoint;   /* key.akv.endpoint as written, or NULL */
    char api_version[64]; /* key.akv.api_version without "api-version="; "" = default */
    struct skr_secret *bearer_token; /* key.akv.bearer_token, NUL-terminated; NULL when absent
                                        or empty */
    struct skr_buf salt;             /* key_derivation.salt, hex-decoded (may be empty) */
    char *label;                     /* key_derivation.label, or NULL (the default label) */
    char *client_id;                 /* identity.client_id, or NULL */
    char *policy_file;               /* release_policy_file as written, or NULL */
    json_t *policy; /* the release policy (validated by lib/policy.c); NULL when the key is not
                       exportable or the policy is still to come from policy_file */
};

void skr_keyconfig_free(struct skr_keyconfig *kc);
DEFINE_CLEANUP(struct skr_keyconfig *, skr_keyconfig_free)

/*
 * Parses a configuration (at most SKR_MAX_KEY_CONFIG_BYTES). Unknown members are errors (the
 * members of the reference's structs that we do not use are accepted and ignored:
 * key.authority.tee_type and .api_version). An example value still holding its "<...>"
 * placeholder is named as such. SKR_E_MALFORMED / SKR_E_TOO_LARGE / SKR_E_UNSUPPORTED.
 */
SKR_NODISCARD skr_err skr_keyconfig_parse(struct skr_span text, struct skr_keyconfig **ret);

/* Sets kc->policy from the text of the file release_policy_file names (validated). */
SKR_NODISCARD skr_err skr_keyconfig_set_policy_text(struct skr_keyconfig *kc, struct skr_span text);

/*
 * A release policy document (a JSON object) validated by lib/policy.c, for requests: a new
 * reference to the same document on success. what names it in errors ("release_policy").
 */
SKR_NODISCARD skr_err skr_keyconfig_check_policy(json_t *policy, const char *what);

/*
 * The AKV release_policy request member: {"contentType":"application/json; charset=utf-8",
 * "data": base64url-nopad(compact policy JSON, member order kept)} plus "immutable": true when
 * immutable (omitted when false, as the reference does).
 */
SKR_NODISCARD skr_err skr_release_policy_request(const json_t *policy, bool immutable,
                                                 json_t **ret);

/* ---- key material ----------------------------------------------------------------------- */

struct skr_keymaterial {
    enum skr_keytype type;
    EVP_PKEY *pkey;         /* RSA or EC private key */
    struct skr_secret *oct; /* oct key bytes */
    unsigned int bits;      /* RSA modulus / oct key bits, EC field bits */
    const char *crv;        /* EC: "P-256", "P-384", "P-521" (static) */
    const char *format;     /* how it was read: "generated", "PEM (PKCS#8)", "DER (PKCS#1)",
                               "JWK", "hex", "raw" ... (static) */
};
void skr_keymaterial_done(struct skr_keymaterial *km);
static inline void
skr_keymaterial_donep(struct skr_keymaterial *km)
{
    skr_keymaterial_done(km);
}

/* A new key as kc says: RSA (key_size, default 2048, as the reference), EC (crv, default
 * P-256), oct (key_size, default 256) from RAND_priv_bytes. */
SKR_NODISCARD skr_err skr_keymaterial_generate(const struct skr_keyconfig *kc,
                                               struct skr_keymaterial *ret);

/*
 * A private key from a file's bytes, the format detected: PEM (PKCS#8 "PRIVATE KEY", PKCS#1
 * "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY"; encrypted PEM refused), a JWK (kty RSA, EC or oct,
 * "-HSM" forms accepted, private members required), hex text (an oct key), DER (PKCS#8,
 * PKCS#1, SEC1), or raw bytes of 16, 24 or 32 (an oct key, as the reference's -kh FILE reads
 * it). Only RSA 2048/3072/4096, EC P-256/P-384/P-521 and oct 128/192/256 are accepted. The
 * error names the format it detected and why that reading failed.
 */
SKR_NODISCARD skr_err skr_keymaterial_load(struct skr_span data, struct skr_keymaterial *ret);

/* The key material fits the configuration: type, and key_size / crv when given. */
SKR_NODISCARD skr_err skr_keymaterial_check(const struct skr_keyconfig *kc,
                                            const struct skr_keymaterial *km);

/* The public JWK of km (RSA/EC; oct: NULL) for comparing with the vault's answer. */
SKR_NODISCARD skr_err skr_keymaterial_public_jwk(const struct skr_keymaterial *km, json_t **ret);

/* ---- request bodies ----------------------------------------------------------------------- */

/*
 * The import body (PUT /keys/{name}), as the reference sends it: {"key": JWK incl. private
 * members (+ key_ops), "hsm": true, "attributes": {"exportable": ...}, "release_policy": ...}.
 * The JWK's kty is "RSA" / "EC" / "oct-HSM" (what the reference sends). Written by hand into
 * out (a wiped buffer); with redact every private member's value is "<redacted>".
 */
SKR_NODISCARD skr_err skr_keyconfig_import_body(const struct skr_keyconfig *kc,
                                                const struct skr_keymaterial *km, bool redact,
                                                struct skr_buf *out);

/* The create body (POST /keys/{name}/create): {"kty", "key_size" | "crv", "key_ops"?,
 * "attributes": {"exportable"}, "release_policy"?}. */
SKR_NODISCARD skr_err skr_keyconfig_create_body(const struct skr_keyconfig *kc,
                                                struct skr_buf *out);
