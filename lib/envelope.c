/*
 * envelope.c - the "SKRE" format of `skr encrypt` / `skr decrypt` (docs/encryption-format.md):
 * loading a released key from its JWK, and one-shot AES-GCM encryption, directly with an oct
 * key or under an RSA-OAEP-256 wrapped data key (RFC 8017 §7.1 with SHA-256 and MGF1-SHA-256,
 * as JWA's "RSA-OAEP-256", RFC 7518 §4.3). GCM is NIST SP 800-38D with a random 96-bit nonce
 * and a 128-bit tag; the key id is the RFC 7638 SHA-256 thumbprint of the key's canonical JWK.
 *
 * Layout (all integers little-endian):
 *   0   4  magic "SKRE"            6   2  wrapped_key_len      40  8  ciphertext_len
 *   4   1  version (1)             8  32  kid                  48  W  wrapped key
 *   5   1  alg                    48+W 12 nonce                then C ciphertext, 16 tag
 * AAD = bytes 0 .. 48+W+12 (the header) followed by the caller's associated data.
 */
#include "envelope.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "b64.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"

/* One message for every decryption failure after the key matched: which step failed (OAEP,
 * data key length, tag) would be an oracle. */
#define AUTH_FAILED                                                                                \
    "authentication failed: the file, its header or the associated data (--aad) was changed, "     \
    "or it was not encrypted with this key"

/* EVP takes int lengths: GCM runs over the data in steps of this size (small enough that the
 * unit tests cross a step boundary). */
#define GCM_STEP (64u << 10)

static const char *const alg_names[] = {
    [SKR_ENV_A128GCM] = "A128GCM",
    [SKR_ENV_A192GCM] = "A192GCM",
    [SKR_ENV_A256GCM] = "A256GCM",
    [SKR_ENV_RSA_OAEP_256_A256GCM] = "RSA-OAEP-256+A256GCM",
};

static void
cipher_ctx_freep(EVP_CIPHER_CTX **p)
{
    EVP_CIPHER_CTX_free(*p);
}

const char *
skr_env_alg_name(enum skr_env_alg alg)
{
    if ((size_t)alg >= SKR_ARRAY_LEN(alg_names) || alg_names[alg] == NULL) {
        return "unknown";
    }
    return alg_names[alg];
}

void
skr_env_kid_text(const uint8_t kid[SKR_ENV_KID_LEN], char out[SKR_ENV_KID_TXTLEN])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;

    /* RFC 4648 §5 without padding: 32 bytes -> 43 characters. */
    for (size_t i = 0; i < SKR_ENV_KID_LEN; i += 3) {
        uint32_t v = (uint32_t)kid[i] << 16;
        size_t n = SKR_ENV_KID_LEN - i < 3 ? SKR_ENV_KID_LEN - i : 3;

        if (n > 1) {
            v |= (uint32_t)kid[i + 1] << 8;
        }
        if (n > 2) {
            v |= kid[i + 2];
        }
        for (size_t c = 0; c < n + 1; c++) {
            out[o++] = alphabet[(v >> (18 - 6 * c)) & 63u];
        }
    }
    out[o] = '\0';
}

/* ---- keys --------------------------------------------------------------------------------- */

void
skr_env_key_free(struct skr_env_key *k)
{
    if (k == NULL) {
        return;
    }
    skr_secret_free(k->aes);
    EVP_PKEY_free(k->rsa);
    skr_wipe(k, sizeof(*k));
    free(k);
}

static skr_err
kid_from_jwk(const json_t *jwk, uint8_t kid[SKR_ENV_KID_LEN])
{
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    char text[SKR_THUMBPRINT_LEN];

    TRY(skr_jwk_thumbprint(jwk, text));
    skr_buf_init(&raw, SKR_ENV_KID_LEN + 3);
    TRY(skr_b64_decode(skr_span_str(text), SKR_B64_URL, &raw));
    ENSURE(raw.len == SKR_ENV_KID_LEN, SKR_E_INTERNAL, "thumbprint length");
    memcpy(kid, raw.ptr, SKR_ENV_KID_LEN);
    return SKR_OK;
}

static skr_err
key_oct(const json_t *jwk, struct skr_env_key *k)
{
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    json_t *v = json_object_get(jwk, "k");

    ENSURE(json_is_string(v), SKR_E_MALFORMED, "oct JWK: member 'k' missing or not a string");
    /* room for the decoder's whole-quantum reservation; the size is checked below */
    skr_buf_init(&raw, SKR_MAX_SECRET_BYTES);
    if (skr_b64_decode(skr_span_make(json_string_value(v), json_string_length(v)),
                       SKR_B64_URL | SKR_B64_STRICT, &raw) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "oct JWK: member 'k' is not strict base64url (RFC 7515 §2)");
    }
    switch (raw.len) {
    case 16:
        k->alg = SKR_ENV_A128GCM;
        break;
    case 24:
        k->alg = SKR_ENV_A192GCM;
        break;
    case 32:
        k->alg = SKR_ENV_A256GCM;
        break;
    default:
        FAILF(SKR_E_UNSUPPORTED,
              "oct key is %zu bytes; AES-GCM needs 16, 24 or 32 (AES-128/192/256)", raw.len);
    }
    TRY(skr_secret_from(skr_buf_span(&raw), &k->aes));
    k->has_private = true;
    /* 'k' decoded strictly, so its text is the canonical one RFC 7638 hashes. */
    return kid_from_jwk(jwk, k->kid);
}

static skr_err
key_rsa(const json_t *jwk, struct skr_env_key *k)
{
    _cleanup_(json_decrefp) json_t *pub = NULL;
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *check = NULL;
    int bits;

    TRY(skr_jwk_to_pkey(jwk, &k->rsa));
    /* A key that parses is not yet one that encrypts (an even n, e = 1): refuse it here, by
     * name, rather than fail inside RSA-OAEP (found by fuzz_envelope). */
    bits = EVP_PKEY_get_bits(k->rsa);
    if (bits < SKR_ENV_MIN_RSA_BITS || bits > SKR_MAX_RSA_BITS) {
        FAILF(SKR_E_UNSUPPORTED, "RSA key is %d bits: expected %d to %d", bits,
              SKR_ENV_MIN_RSA_BITS, SKR_MAX_RSA_BITS);
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, k->rsa, NULL);
    ENSURE(check != NULL, SKR_E_NOMEM, "out of memory");
    if (EVP_PKEY_public_check(check) != 1) {
        ERR_clear_error();
        FAIL(SKR_E_MALFORMED, "RSA key: n and e do not form a valid public key");
    }
    k->alg = SKR_ENV_RSA_OAEP_256_A256GCM;
    k->has_private = json_object_get(jwk, "d") != NULL;
    /* The thumbprint of the canonical public JWK: AKV's "n" may carry a leading zero byte. */
    TRY(skr_jwk_from_pkey(k->rsa, false, &pub));
    return kid_from_jwk(pub, k->kid);
}

/* The JWK inside text: the object itself, or its "key" member (a JSON string or object). */
static skr_err
find_jwk(json_t *doc, json_t **ret)
{
    json_t *inner = json_object_get(doc, "key");
    json_t *parsed = NULL;

    if (json_object_get(doc, "kty") != NULL || inner == NULL) {
        ENSURE(json_is_string(json_object_get(doc, "kty")), SKR_E_MALFORMED,
               "key: expected a JWK (with \"kty\") or a /key/release response {\"key\": ...}");
        *ret = json_incref(doc);
        return SKR_OK;
    }
    if (json_is_object(inner)) {
        *ret = json_incref(inner);
    } else {
        ENSURE(json_is_string(inner), SKR_E_MALFORMED,
               "key: member \"key\" is neither a JWK string nor a JWK object");
        if (skr_json_parse(skr_span_make(json_string_value(inner), json_string_length(inner)),
                           SKR_MAX_KEY_FILE_BYTES, &parsed) != SKR_OK) {
            FAIL(SKR_E_MALFORMED, "key: member \"key\" is not JSON (text withheld: key material)");
        }
        *ret = parsed;
    }
    ENSURE(json_is_string(json_object_get(*ret, "kty")), SKR_E_MALFORMED,
           "key: member \"key\" is not a JWK (no \"kty\")");
    return SKR_OK;
}

static skr_err
key_from_doc(json_t *doc, struct skr_env_key *k)
{
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    const char *kty = NULL;

    TRY(find_jwk(doc, &jwk));
    kty = json_string_value(json_object_get(jwk, "kty"));
    if (strcmp(kty, "oct") == 0) {
        return key_oct(jwk, k);
    }
    if (strcmp(kty, "RSA") == 0) {
        return key_rsa(jwk, k);
    }
    if (strcmp(kty, "EC") == 0) {
        FAIL(SKR_E_UNSUPPORTED,
             "EC keys are not supported for encryption: use an oct (AES) or RSA key");
    }
    FAIL(SKR_E_UNSUPPORTED, "JWK kty is not supported for encryption: use an oct or RSA key");
}

skr_err
skr_env_key_from_jwk(struct skr_span text, struct skr_env_key **ret)
{
    _cleanup_(skr_env_key_freep) struct skr_env_key *k = NULL;
    _cleanup_(json_decrefp) json_t *doc = NULL;

    ENSURE(ret != NULL && (text.ptr != NULL || text.len == 0), SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(text.len <= SKR_MAX_KEY_FILE_BYTES, SKR_E_TOO_LARGE, "key: larger than 64 KiB");
    /* jansson's messages quote the text around an error: never shown, it holds key material */
    if (skr_json_parse(text, SKR_MAX_KEY_FILE_BYTES, &doc) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "key: not valid JSON (text withheld: key material)");
    }
    ENSURE(json_is_object(doc), SKR_E_MALFORMED, "key: expected a JSON object (a JWK)");
    k = calloc(1, sizeof(*k));
    ENSURE(k != NULL, SKR_E_NOMEM, "out of memory");
    TRY(key_from_doc(doc, k));
    *ret = TAKE_PTR(k);
    return SKR_OK;
}

/* ---- framing -------------------------------------------------------------------------- */

static bool
alg_known(uint8_t a)
{
    return a >= SKR_ENV_A128GCM && a <= SKR_ENV_RSA_OAEP_256_A256GCM;
}

static skr_err
check_wrapped_len(enum skr_env_alg alg, uint16_t w)
{
    if (alg != SKR_ENV_RSA_OAEP_256_A256GCM) {
        ENSURE(w == 0, SKR_E_MALFORMED, "wrapped_key_len must be 0 for an oct-key algorithm");
        return SKR_OK;
    }
    if (w < SKR_MIN_RSA_BITS / 8 || w > SKR_MAX_RSA_BITS / 8) {
        FAILF(SKR_E_MALFORMED, "wrapped_key_len %u is not an RSA modulus size (%u..%u bytes)",
              (unsigned)w, SKR_MIN_RSA_BITS / 8, SKR_MAX_RSA_BITS / 8);
    }
    return SKR_OK;
}

static skr_err
check_total(struct skr_span blob, size_t w, uint64_t c)
{
    size_t want = SKR_ENV_FIXED_LEN + w + SKR_ENV_NONCE_LEN + SKR_ENV_TAG_LEN;

    /* c <= SKR_MAX_CRYPT_BYTES was checked, so this cannot overflow */
    want += (size_t)c;
    if (blob.len < want) {
        FAILF(SKR_E_TRUNCATED, "file is %zu bytes but its header says %zu: it was cut short",
              blob.len, want);
    }
    if (blob.len > want) {
        FAILF(SKR_E_MALFORMED, "file is %zu bytes but its header says %zu: trailing bytes",
              blob.len, want);
    }
    return SKR_OK;
}

skr_err
skr_env_parse(struct skr_span blob, struct skr_env_blob *ret)
{
    struct skr_env_blob b = { 0 };
    struct skr_span magic;
    struct skr_rd rd;
    uint8_t version, alg;
    uint16_t w;
    uint64_t c;

    ENSURE(ret != NULL && (blob.ptr != NULL || blob.len == 0), SKR_E_INVALID_ARG, "NULL argument");
    skr_rd_init(&rd, blob);
    if (skr_rd_bytes(&rd, 4, &magic) != SKR_OK || !skr_span_eq_str(magic, SKR_ENV_MAGIC)) {
        FAIL(SKR_E_MALFORMED, "not an skr encrypted file (no \"SKRE\" magic)");
    }
    ENSURE(blob.len >= SKR_ENV_FIXED_LEN, SKR_E_TRUNCATED,
           "file ends inside its 48-byte fixed header");
    TRY(skr_rd_u8(&rd, &version));
    if (version != SKR_ENV_VERSION) {
        FAILF(SKR_E_UNSUPPORTED, "format version %u is not supported (this skr reads version 1)",
              (unsigned)version);
    }
    TRY(skr_rd_u8(&rd, &alg));
    if (!alg_known(alg)) {
        FAILF(SKR_E_UNSUPPORTED, "algorithm id %u is not supported (1..4 are defined)",
              (unsigned)alg);
    }
    b.alg = (enum skr_env_alg)alg;
    TRY(skr_rd_u16le(&rd, &w));
    TRY(check_wrapped_len(b.alg, w));
    TRY(skr_rd_bytes(&rd, SKR_ENV_KID_LEN, &b.kid));
    TRY(skr_rd_u64le(&rd, &c));
    if (c > SKR_MAX_CRYPT_BYTES) {
        FAILF(SKR_E_TOO_LARGE, "ciphertext_len %llu exceeds the 1 GiB limit",
              (unsigned long long)c);
    }
    ENSURE(rd.off == SKR_ENV_FIXED_LEN, SKR_E_INTERNAL, "layout drift");
    TRY(check_total(blob, w, c));
    TRY(skr_rd_bytes(&rd, w, &b.wrapped_key));
    TRY(skr_rd_bytes(&rd, SKR_ENV_NONCE_LEN, &b.nonce));
    b.header = skr_span_make(blob.ptr, rd.off);
    TRY(skr_rd_bytes(&rd, (size_t)c, &b.ciphertext));
    TRY(skr_rd_bytes(&rd, SKR_ENV_TAG_LEN, &b.tag));
    ENSURE(skr_rd_left(&rd) == 0, SKR_E_INTERNAL, "length accounting");
    *ret = b;
    return SKR_OK;
}

/* ---- crypto ------------------------------------------------------------------------------- */

static const EVP_CIPHER *
gcm_cipher(enum skr_env_alg alg)
{
    switch (alg) {
    case SKR_ENV_A128GCM:
        return EVP_aes_128_gcm();
    case SKR_ENV_A192GCM:
        return EVP_aes_192_gcm();
    default:
        return EVP_aes_256_gcm();
    }
}

/* RFC 7518 §4.3: OAEP with SHA-256 and MGF1-SHA-256, empty label. */
static skr_err
oaep_ctx(EVP_PKEY *rsa, int enc, EVP_PKEY_CTX **ret)
{
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
    ENSURE(ctx != NULL, SKR_E_NOMEM, "out of memory");
    if (enc) {
        TRY_OSSL(EVP_PKEY_encrypt_init(ctx), SKR_E_INTERNAL, "cannot use key for RSA-OAEP");
    } else {
        TRY_OSSL(EVP_PKEY_decrypt_init(ctx), SKR_E_INTERNAL, "cannot use key for RSA-OAEP");
    }
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), SKR_E_INTERNAL,
             "cannot select RSA-OAEP");
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), SKR_E_INTERNAL,
             "cannot set OAEP hash");
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), SKR_E_INTERNAL,
             "cannot set MGF1 hash");
    *ret = TAKE_PTR(ctx);
    return SKR_OK;
}

/* GCM over in (in steps EVP's int lengths allow) into out (in.len bytes); the AAD is header
 * then aad. For decryption tag is the expected tag; for encryption it receives the tag. */
struct gcm_op {
    enum skr_env_alg alg;
    struct skr_span key, nonce, header, aad, in;
    uint8_t *out;
    uint8_t *tag;
    int enc;
};

static skr_err
gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, struct skr_span in)
{
    int outl = 0;

    if (in.len == 0) {
        return SKR_OK;
    }
    ENSURE(in.len <= GCM_STEP, SKR_E_INTERNAL, "GCM step too large");
    TRY_OSSL(EVP_CipherUpdate(ctx, out, &outl, in.ptr, (int)in.len), SKR_E_INTERNAL,
             "AES-GCM failed");
    ENSURE(out == NULL || (size_t)outl == in.len, SKR_E_INTERNAL, "AES-GCM output length");
    return SKR_OK;
}

static skr_err
gcm_run(const struct gcm_op *op)
{
    _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t none[SKR_ENV_TAG_LEN]; /* GCM's final step writes no data */
    struct skr_rd rd;
    int outl = 0;

    ENSURE(ctx != NULL, SKR_E_NOMEM, "out of memory");
    TRY_OSSL(EVP_CipherInit_ex(ctx, gcm_cipher(op->alg), NULL, NULL, NULL, op->enc), SKR_E_INTERNAL,
             "cannot set up AES-GCM");
    TRY_OSSL(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SKR_ENV_NONCE_LEN, NULL),
             SKR_E_INTERNAL, "cannot set the GCM nonce length");
    TRY_OSSL(EVP_CipherInit_ex(ctx, NULL, NULL, op->key.ptr, op->nonce.ptr, op->enc),
             SKR_E_INTERNAL, "cannot set the AES-GCM key");
    TRY(gcm_update(ctx, NULL, op->header));
    for (skr_rd_init(&rd, op->aad); skr_rd_left(&rd) > 0;) {
        struct skr_span s;

        TRY(skr_rd_bytes(&rd, skr_rd_left(&rd) < GCM_STEP ? skr_rd_left(&rd) : GCM_STEP, &s));
        TRY(gcm_update(ctx, NULL, s));
    }
    for (skr_rd_init(&rd, op->in); skr_rd_left(&rd) > 0;) {
        size_t off = rd.off;
        struct skr_span s;

        TRY(skr_rd_bytes(&rd, skr_rd_left(&rd) < GCM_STEP ? skr_rd_left(&rd) : GCM_STEP, &s));
        TRY(gcm_update(ctx, op->out + off, s));
    }
    if (!op->enc) {
        TRY_OSSL(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SKR_ENV_TAG_LEN, op->tag),
                 SKR_E_INTERNAL, "cannot set the GCM tag");
        if (EVP_CipherFinal_ex(ctx, none, &outl) != 1) {
            ERR_clear_error();
            FAIL(SKR_E_VERIFY, AUTH_FAILED);
        }
        return SKR_OK;
    }
    TRY_OSSL(EVP_CipherFinal_ex(ctx, none, &outl), SKR_E_INTERNAL, "AES-GCM failed");
    TRY_OSSL(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SKR_ENV_TAG_LEN, op->tag),
             SKR_E_INTERNAL, "cannot get the GCM tag");
    return SKR_OK;
}

/* The data key and its RSA-OAEP-256 wrap (empty for oct keys, which are the data key). */
static skr_err
data_key(const struct skr_env_key *key, struct skr_secret **ret_dk, struct skr_buf *wrapped)
{
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *dk = NULL;
    size_t len;

    if (key->alg != SKR_ENV_RSA_OAEP_256_A256GCM) {
        return skr_secret_from(skr_secret_span(key->aes), ret_dk);
    }
    len = (size_t)EVP_PKEY_get_size(key->rsa);
    TRY(skr_secret_new(SKR_ENV_DATA_KEY, &dk));
    TRY_OSSL(RAND_bytes(dk->ptr, (int)dk->len), SKR_E_INTERNAL, "no random bytes for the key");
    TRY(oaep_ctx(key->rsa, 1, &ctx));
    TRY(skr_buf_reserve(wrapped, len));
    TRY_OSSL(EVP_PKEY_encrypt(ctx, wrapped->ptr, &len, dk->ptr, dk->len), SKR_E_INTERNAL,
             "RSA-OAEP encryption failed");
    ENSURE(len == (size_t)EVP_PKEY_get_size(key->rsa), SKR_E_INTERNAL, "RSA-OAEP output length");
    wrapped->len = len;
    *ret_dk = TAKE_PTR(dk);
    return SKR_OK;
}

static skr_err
encrypt(const struct skr_env_key *key, struct skr_span pt, struct skr_span aad, struct skr_buf *out)
{
    _cleanup_(skr_secret_freep) struct skr_secret *dk = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf wrapped = { 0 };
    uint8_t fixed[SKR_ENV_FIXED_LEN], nonce[SKR_ENV_NONCE_LEN];
    struct gcm_op op = { .alg = key->alg, .aad = aad, .in = pt, .enc = 1 };
    size_t hdr_len;

    skr_buf_init(&wrapped, SKR_MAX_RSA_BITS / 8);
    TRY(data_key(key, &dk, &wrapped));
    TRY_OSSL(RAND_bytes(nonce, sizeof(nonce)), SKR_E_INTERNAL, "no random bytes for the nonce");
    memcpy(fixed, SKR_ENV_MAGIC, 4);
    fixed[4] = SKR_ENV_VERSION;
    fixed[5] = (uint8_t)key->alg;
    skr_put_u16le(fixed + 6, (uint16_t)wrapped.len);
    memcpy(fixed + 8, key->kid, SKR_ENV_KID_LEN);
    skr_put_u64le(fixed + 40, pt.len);
    hdr_len = sizeof(fixed) + wrapped.len + sizeof(nonce);
    TRY(skr_buf_reserve(out, hdr_len + pt.len + SKR_ENV_TAG_LEN));
    TRY(skr_buf_append(out, fixed, sizeof(fixed)));
    TRY(skr_buf_append_span(out, skr_buf_span(&wrapped)));
    TRY(skr_buf_append(out, nonce, sizeof(nonce)));
    op.key = skr_secret_span(dk);
    op.nonce = skr_span_make(nonce, sizeof(nonce));
    op.header = skr_span_make(out->ptr, hdr_len);
    op.out = out->ptr + hdr_len;
    op.tag = out->ptr + hdr_len + pt.len;
    TRY(gcm_run(&op));
    out->len = hdr_len + pt.len + SKR_ENV_TAG_LEN;
    return SKR_OK;
}

skr_err
skr_env_encrypt(const struct skr_env_key *key, struct skr_span plaintext, struct skr_span aad,
                struct skr_buf *out)
{
    skr_err e;

    ENSURE(key != NULL && out != NULL && out->len == 0, SKR_E_INVALID_ARG,
           "NULL argument or non-empty output");
    ENSURE((plaintext.ptr != NULL || plaintext.len == 0) && (aad.ptr != NULL || aad.len == 0),
           SKR_E_INVALID_ARG, "NULL argument");
    if (plaintext.len > SKR_MAX_CRYPT_BYTES) {
        FAILF(SKR_E_TOO_LARGE, "input is %zu bytes; the limit is 1 GiB (%u bytes)", plaintext.len,
              SKR_MAX_CRYPT_BYTES);
    }
    e = encrypt(key, plaintext, aad, out);
    if (e != SKR_OK) {
        skr_buf_reset(out);
    }
    return e;
}

/* RSA-OAEP-256 unwrap of the data key; every failure is the one AUTH_FAILED. */
static skr_err
unwrap_data_key(const struct skr_env_key *key, struct skr_span wrapped, struct skr_secret **ret)
{
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *tmp = NULL;
    size_t len = wrapped.len;

    ENSURE(wrapped.len == (size_t)EVP_PKEY_get_size(key->rsa), SKR_E_VERIFY, AUTH_FAILED);
    TRY(oaep_ctx(key->rsa, 0, &ctx));
    TRY(skr_secret_new(wrapped.len, &tmp));
    if (EVP_PKEY_decrypt(ctx, tmp->ptr, &len, wrapped.ptr, wrapped.len) != 1 ||
        len != SKR_ENV_DATA_KEY) {
        ERR_clear_error();
        FAIL(SKR_E_VERIFY, AUTH_FAILED);
    }
    return skr_secret_from(skr_span_make(tmp->ptr, len), ret);
}

static skr_err
check_key(const struct skr_env_key *key, const struct skr_env_blob *b)
{
    char want[SKR_ENV_KID_TXTLEN], have[SKR_ENV_KID_TXTLEN];

    if (CRYPTO_memcmp(b->kid.ptr, key->kid, SKR_ENV_KID_LEN) != 0) {
        skr_env_kid_text(b->kid.ptr, want);
        skr_env_kid_text(key->kid, have);
        FAILF(SKR_E_VERIFY, "wrong key: the file was encrypted to key %s, the key given is %s",
              want, have);
    }
    if (b->alg != key->alg) {
        FAILF(SKR_E_VERIFY, "the file's algorithm %s does not fit this key (%s): header altered",
              skr_env_alg_name(b->alg), skr_env_alg_name(key->alg));
    }
    ENSURE(key->has_private, SKR_E_INVALID_ARG,
           "the RSA key has only public members: decrypting needs its private key (d, p, q, "
           "dp, dq, qi)");
    return SKR_OK;
}

static skr_err
decrypt(const struct skr_env_key *key, struct skr_span blob, struct skr_span aad,
        struct skr_buf *out)
{
    _cleanup_(skr_secret_freep) struct skr_secret *dk = NULL;
    struct gcm_op op = { .aad = aad, .enc = 0 };
    uint8_t tag[SKR_ENV_TAG_LEN];
    struct skr_env_blob b;

    TRY(skr_env_parse(blob, &b));
    TRY(check_key(key, &b));
    if (b.alg == SKR_ENV_RSA_OAEP_256_A256GCM) {
        TRY(unwrap_data_key(key, b.wrapped_key, &dk));
    } else {
        TRY(skr_secret_from(skr_secret_span(key->aes), &dk));
    }
    /* decrypted into reserved room past out->len, which counts it only after the tag verified */
    TRY(skr_buf_reserve(out, b.ciphertext.len));
    op.alg = b.alg;
    op.key = skr_secret_span(dk);
    op.nonce = b.nonce;
    op.header = b.header;
    op.in = b.ciphertext;
    op.out = out->ptr;
    memcpy(tag, b.tag.ptr, sizeof(tag));
    op.tag = tag;
    TRY(gcm_run(&op));
    out->len = b.ciphertext.len;
    return SKR_OK;
}

skr_err
skr_env_decrypt(const struct skr_env_key *key, struct skr_span blob, struct skr_span aad,
                struct skr_buf *out)
{
    skr_err e;

    ENSURE(key != NULL && out != NULL && out->len == 0, SKR_E_INVALID_ARG,
           "NULL argument or non-empty output");
    ENSURE((blob.ptr != NULL || blob.len == 0) && (aad.ptr != NULL || aad.len == 0),
           SKR_E_INVALID_ARG, "NULL argument");
    e = decrypt(key, blob, aad, out);
    if (e != SKR_OK) {
        /* wipes the room the unverified plaintext was written to */
        if (out->ptr != NULL) {
            skr_wipe(out->ptr, out->cap);
        }
        skr_buf_reset(out);
    }
    return e;
}
