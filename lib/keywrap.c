/*
 * keywrap.c - the CKM_RSA_AES_KEY_WRAP family used by Azure Key Vault / Managed HSM secure key
 * release (PROTOCOLS.md §7.4; MicrosoftDocs byok-specification.md "Key Transfer Blob"; PKCS#11
 * v2.40 §2.1.21 CKM_RSA_AES_KEY_WRAP; SCC akv.go RsaAESKeyUnwrap):
 *
 *   ciphertext = RSA-OAEP(wrapping key, K_aes) || AES-KWP(K_aes, key material)
 *
 * AES-KWP is RFC 5649, done by OpenSSL's EVP_aes_*_wrap_pad (which implements the §3 integrity
 * check: AIV A65959A6, 8*(n-1) < MLI <= 8*n, zero padding). Plaintext is decrypted into a
 * temporary skr_secret and copied into the caller's secret only after that check passed.
 */
#include "keywrap.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ossl.h"
#include "skr_limits.h"

/* One message for every decryption failure: which step failed is an oracle (Bleichenbacher /
 * Manger style), so callers and logs never learn it. */
#define UNWRAP_FAILED "cannot unwrap key: decryption or integrity check failed"

/* RFC 5649 §4.1: the AIV block and the shortest ciphertext (one 8-byte block of output). */
#define KWP_BLOCK   8u
#define KWP_MIN_LEN 16u

/* The unwrap decrypts into a temporary secret as long as the ciphertext (OpenSSL's
 * CRYPTO_128_unwrap_pad may cleanse that much of its output on failure), so a ciphertext is at
 * most one secret and a plaintext 8 bytes less: RSA-4096 PKCS#8 is ~2.4 KiB. */
#define KWP_MAX_LEN           SKR_MAX_SECRET_BYTES
#define KWP_MAX_PLAINTEXT_LEN (SKR_MAX_SECRET_BYTES - KWP_BLOCK)

/* AKV wrapping keys are RSA-2048 or larger; 16384 bits bounds the work a caller can ask for. */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384

/* The ephemeral AES key of skr_rsa_aes_wrap (PROTOCOLS.md §7.4: "Emulator: use 32 bytes"). */
#define WRAP_AES_KEY_LEN 32u

static const char *const alg_names[] = {
    [SKR_KW_CKM_RSA_AES_KEY_WRAP] = "CKM_RSA_AES_KEY_WRAP",
    [SKR_KW_RSA_AES_KEY_WRAP_256] = "RSA_AES_KEY_WRAP_256",
    [SKR_KW_RSA_AES_KEY_WRAP_384] = "RSA_AES_KEY_WRAP_384",
};

static void
cipher_ctx_freep(EVP_CIPHER_CTX **p)
{
    EVP_CIPHER_CTX_free(*p);
}

static void
pkcs8_freep(PKCS8_PRIV_KEY_INFO **p)
{
    PKCS8_PRIV_KEY_INFO_free(*p);
}

skr_err
skr_kw_alg_parse(const char *name, enum skr_kw_alg *ret)
{
    ENSURE(name != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    for (size_t i = 0; i < SKR_ARRAY_LEN(alg_names); i++) {
        if (strcmp(name, alg_names[i]) == 0) {
            *ret = (enum skr_kw_alg)i;
            return SKR_OK;
        }
    }
    FAIL(SKR_E_UNSUPPORTED,
         "unsupported key wrap algorithm (expected CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 "
         "or RSA_AES_KEY_WRAP_384)");
}

const char *
skr_kw_alg_name(enum skr_kw_alg alg)
{
    if ((size_t)alg >= SKR_ARRAY_LEN(alg_names)) {
        return "unknown";
    }
    return alg_names[alg];
}

/* ---- RFC 5649 AES key wrap with padding ----------------------------------------------- */

static const EVP_CIPHER *
kwp_cipher(size_t kek_len)
{
    switch (kek_len) {
    case 16:
        return EVP_aes_128_wrap_pad();
    case 24:
        return EVP_aes_192_wrap_pad();
    case 32:
        return EVP_aes_256_wrap_pad();
    default:
        return NULL;
    }
}

static skr_err
kwp_init(struct skr_span kek, int enc, EVP_CIPHER_CTX **ret)
{
    _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
    const EVP_CIPHER *cipher = kwp_cipher(kek.len);

    ENSURE(cipher != NULL && kek.ptr != NULL, SKR_E_INVALID_ARG,
           "AES key wrap KEK must be 16, 24 or 32 bytes");
    ctx = EVP_CIPHER_CTX_new();
    ENSURE(ctx != NULL, SKR_E_NOMEM, "out of memory");
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    TRY_OSSL(EVP_CipherInit_ex(ctx, cipher, NULL, kek.ptr, NULL, enc), SKR_E_INTERNAL,
             "cannot set up AES key wrap");
    *ret = TAKE_PTR(ctx);
    return SKR_OK;
}

skr_err
skr_aes_kwp_wrap(struct skr_span kek, struct skr_span plaintext, struct skr_buf *out)
{
    _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
    _cleanup_free_ uint8_t *raw = NULL;
    size_t want;
    int outl = 0;

    ENSURE(out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(plaintext.ptr != NULL && plaintext.len > 0 && plaintext.len <= KWP_MAX_PLAINTEXT_LEN,
           SKR_E_INVALID_ARG, "AES key wrap plaintext must be 1..65528 bytes");
    TRY(kwp_init(kek, 1, &ctx));
    want = KWP_BLOCK + (plaintext.len + KWP_BLOCK - 1) / KWP_BLOCK * KWP_BLOCK;
    /* OpenSSL's EVP layer may ask for one block more room than it writes. */
    raw = malloc(want + KWP_BLOCK);
    ENSURE(raw != NULL, SKR_E_NOMEM, "out of memory");
    TRY_OSSL(EVP_CipherUpdate(ctx, raw, &outl, plaintext.ptr, (int)plaintext.len), SKR_E_INTERNAL,
             "AES key wrap failed");
    ENSURE(outl >= 0 && (size_t)outl == want, SKR_E_INTERNAL, "AES key wrap output length");
    return skr_buf_append(out, raw, want);
}

/* The unwrap proper, with the kek and length checks done; the plaintext stays in a temporary
 * secret until OpenSSL's RFC 5649 check passed. */
static skr_err
kwp_unwrap(struct skr_span kek, struct skr_span ciphertext, struct skr_secret **ret)
{
    _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *tmp = NULL;
    int outl = 0;

    TRY(kwp_init(kek, 0, &ctx));
    TRY(skr_secret_new(ciphertext.len, &tmp));
    if (EVP_CipherUpdate(ctx, tmp->ptr, &outl, ciphertext.ptr, (int)ciphertext.len) != 1 ||
        outl <= 0 || (size_t)outl > ciphertext.len - KWP_BLOCK) {
        ERR_clear_error();
        FAIL(SKR_E_VERIFY, UNWRAP_FAILED);
    }
    return skr_secret_from(skr_span_make(tmp->ptr, (size_t)outl), ret);
}

static skr_err
kwp_check_len(size_t len)
{
    if (len < KWP_MIN_LEN || len % KWP_BLOCK != 0) {
        FAILF(SKR_E_MALFORMED,
              "AES key wrap ciphertext is %zu bytes; it must be a multiple of 8 and at least 16",
              len);
    }
    ENSURE(len <= KWP_MAX_LEN, SKR_E_TOO_LARGE,
           "AES key wrap ciphertext exceeds the secret size limit");
    return SKR_OK;
}

skr_err
skr_aes_kwp_unwrap(struct skr_span kek, struct skr_span ciphertext, struct skr_secret **ret)
{
    ENSURE(ret != NULL && (ciphertext.ptr != NULL || ciphertext.len == 0), SKR_E_INVALID_ARG,
           "NULL argument");
    ENSURE(kwp_cipher(kek.len) != NULL && kek.ptr != NULL, SKR_E_INVALID_ARG,
           "AES key wrap KEK must be 16, 24 or 32 bytes");
    TRY(kwp_check_len(ciphertext.len));
    return kwp_unwrap(kek, ciphertext, ret);
}

/* ---- RSA-OAEP + AES-KWP --------------------------------------------------------------- */

static const EVP_MD *
oaep_md(enum skr_kw_alg alg)
{
    switch (alg) {
    case SKR_KW_CKM_RSA_AES_KEY_WRAP:
        return EVP_sha1();
    case SKR_KW_RSA_AES_KEY_WRAP_256:
        return EVP_sha256();
    case SKR_KW_RSA_AES_KEY_WRAP_384:
        return EVP_sha384();
    default:
        return NULL;
    }
}

/* Checks the key and alg and sets up an OAEP context (label empty, MGF1 hash = OAEP hash). */
static skr_err
oaep_ctx(EVP_PKEY *pkey, enum skr_kw_alg alg, int enc, EVP_PKEY_CTX **ret, size_t *ret_mod_len)
{
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    const EVP_MD *md = oaep_md(alg);
    int bits;

    ENSURE(pkey != NULL, SKR_E_INVALID_ARG, "NULL key");
    ENSURE(md != NULL, SKR_E_INVALID_ARG, "unknown key wrap algorithm");
    ENSURE(EVP_PKEY_is_a(pkey, "RSA"), SKR_E_INVALID_ARG, "key wrap key is not an RSA key");
    bits = EVP_PKEY_get_bits(pkey);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
        FAILF(SKR_E_INVALID_ARG, "RSA key wrap key has %d bits; 2048..16384 supported", bits);
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    ENSURE(ctx != NULL, SKR_E_NOMEM, "out of memory");
    if (enc) {
        TRY_OSSL(EVP_PKEY_encrypt_init(ctx), SKR_E_INVALID_ARG, "cannot use key for RSA-OAEP");
    } else {
        TRY_OSSL(EVP_PKEY_decrypt_init(ctx), SKR_E_INVALID_ARG, "cannot use key for RSA-OAEP");
    }
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), SKR_E_INTERNAL,
             "cannot select RSA-OAEP");
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), SKR_E_INTERNAL, "cannot set OAEP hash");
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), SKR_E_INTERNAL, "cannot set MGF1 hash");
    *ret_mod_len = (size_t)EVP_PKEY_get_size(pkey);
    *ret = TAKE_PTR(ctx);
    return SKR_OK;
}

skr_err
skr_rsa_aes_wrapped_len(size_t modulus_len, size_t plaintext_len, size_t *ret)
{
    size_t padded;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(skr_add_sz(plaintext_len, KWP_BLOCK - 1, &padded));
    padded = padded / KWP_BLOCK * KWP_BLOCK;
    TRY(skr_add_sz(padded, KWP_BLOCK, &padded));
    return skr_add_sz(modulus_len, padded, ret);
}

/* RSA-OAEP-decrypts the AES key. Every failure, including a decrypted key of a length AES
 * does not have, is the one generic SKR_E_VERIFY. */
static skr_err
oaep_decrypt_key(EVP_PKEY_CTX *ctx, struct skr_span block, struct skr_secret **ret)
{
    _cleanup_(skr_secret_freep) struct skr_secret *tmp = NULL;
    size_t len = block.len;

    TRY(skr_secret_new(block.len, &tmp));
    if (EVP_PKEY_decrypt(ctx, tmp->ptr, &len, block.ptr, block.len) != 1 ||
        kwp_cipher(len) == NULL) {
        ERR_clear_error();
        FAIL(SKR_E_VERIFY, UNWRAP_FAILED);
    }
    return skr_secret_from(skr_span_make(tmp->ptr, len), ret);
}

skr_err
skr_rsa_aes_unwrap(EVP_PKEY *rsa_priv, enum skr_kw_alg alg, struct skr_span ciphertext,
                   struct skr_secret **ret)
{
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *aes_key = NULL;
    struct skr_span block, rest;
    struct skr_rd rd;
    size_t mod_len = 0;

    ENSURE(ret != NULL && (ciphertext.ptr != NULL || ciphertext.len == 0), SKR_E_INVALID_ARG,
           "NULL argument");
    TRY(oaep_ctx(rsa_priv, alg, 0, &ctx, &mod_len));
    if (ciphertext.len < mod_len || ciphertext.len - mod_len < KWP_MIN_LEN) {
        FAILF(SKR_E_MALFORMED,
              "wrapped key is %zu bytes; %s with a %zu-bit RSA key needs at least %zu "
              "(%zu-byte RSA-OAEP block + 16-byte AES key wrap)",
              ciphertext.len, skr_kw_alg_name(alg), mod_len * 8, mod_len + KWP_MIN_LEN, mod_len);
    }
    skr_rd_init(&rd, ciphertext);
    TRY(skr_rd_bytes(&rd, mod_len, &block));
    TRY(skr_rd_bytes(&rd, skr_rd_left(&rd), &rest));
    TRY(kwp_check_len(rest.len));
    TRY(oaep_decrypt_key(ctx, block, &aes_key));
    return kwp_unwrap(skr_secret_span(aes_key), rest, ret);
}

skr_err
skr_rsa_aes_wrap(EVP_PKEY *rsa_pub, enum skr_kw_alg alg, struct skr_span plaintext,
                 struct skr_buf *out)
{
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *aes_key = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf tmp = { 0 };
    uint8_t block[RSA_MAX_BITS / 8];
    size_t mod_len = 0, len = sizeof(block);

    ENSURE(out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(oaep_ctx(rsa_pub, alg, 1, &ctx, &mod_len));
    TRY(skr_secret_new(WRAP_AES_KEY_LEN, &aes_key));
    TRY_OSSL(RAND_bytes(aes_key->ptr, (int)aes_key->len), SKR_E_INTERNAL,
             "no random bytes for the AES key");
    TRY_OSSL(EVP_PKEY_encrypt(ctx, block, &len, aes_key->ptr, aes_key->len), SKR_E_INTERNAL,
             "RSA-OAEP encryption failed");
    ENSURE(len == mod_len, SKR_E_INTERNAL, "RSA-OAEP output length");
    /* The wrap is built aside so that out is unchanged on failure. */
    skr_buf_init(&tmp, mod_len + SKR_MAX_SECRET_BYTES + 2 * KWP_BLOCK);
    TRY(skr_buf_append(&tmp, block, len));
    TRY(skr_aes_kwp_wrap(skr_secret_span(aes_key), plaintext, &tmp));
    return skr_buf_append_span(out, skr_buf_span(&tmp));
}

/* ---- released key material ------------------------------------------------------------ */

/*
 * The released key is decoded here, DER walked in place, rather than by EVP_PKCS82PKEY: in
 * OpenSSL 3.0 that goes through the DER decoders, which copy the key into buffers they free
 * without wiping. tests/cli/test_hygiene.sh found the raw bytes of an EC key's d (and, in a
 * smaller program, an RSA key's p) in freed heap after skr_client_free. Here every byte of the
 * key stays in the caller's secret and in p8 (PKCS8_PRIV_KEY_INFO_free clears its key octets);
 * the numbers go into secure BIGNUMs and through OSSL_PARAM_BLD (whose private part is freed
 * with OPENSSL_secure_clear_free) into EVP_PKEY_fromdata.
 */

/* One DER TLV of the given (single-byte) tag, definite length, contents in *val. */
static skr_err
der_tlv(struct skr_rd *rd, uint8_t tag, struct skr_span *val)
{
    uint8_t t = 0;
    uint8_t b = 0;
    size_t len = 0;

    TRY(skr_rd_u8(rd, &t));
    TRY(skr_rd_u8(rd, &b));
    ENSURE(t == tag, SKR_E_MALFORMED, "PKCS#8 key: unexpected DER tag");
    if (b < 0x80) {
        len = b;
    } else {
        size_t n = b & 0x7fu;

        ENSURE(n >= 1 && n <= 3, SKR_E_MALFORMED, "PKCS#8 key: bad DER length");
        for (size_t i = 0; i < n; i++) {
            TRY(skr_rd_u8(rd, &b));
            len = len << 8 | b;
        }
    }
    return skr_rd_bytes(rd, len, val);
}

/* True when the next TLV in rd has this tag (rd unchanged). */
static bool
der_next_is(const struct skr_rd *rd, uint8_t tag)
{
    struct skr_rd peek = *rd;
    uint8_t t = 0;

    return skr_rd_u8(&peek, &t) == SKR_OK && t == tag;
}

static void
param_bld_freep(OSSL_PARAM_BLD **p)
{
    OSSL_PARAM_BLD_free(*p);
}

static void
params_freep(OSSL_PARAM **p)
{
    OSSL_PARAM_free(*p);
}

/* The numbers of a key being built: OSSL_PARAM_BLD_push_BN keeps the pointer until
 * OSSL_PARAM_BLD_to_param, so they live until the key is made. */
struct key_nums {
    BIGNUM *bn[8];
    size_t n;
    unsigned char *pub; /* an EC public point (OSSL_PARAM_BLD_push_octet_string keeps it too) */
};

static void
key_nums_done(struct key_nums *k)
{
    for (size_t i = 0; i < k->n; i++) {
        BN_clear_free(k->bn[i]);
    }
    k->n = 0;
    OPENSSL_free(k->pub);
    k->pub = NULL;
}

/* A new secure BIGNUM of bytes v, owned by k. */
static skr_err
key_num(struct key_nums *k, struct skr_span v, BIGNUM **ret)
{
    BIGNUM *bn;

    ENSURE(k->n < SKR_ARRAY_LEN(k->bn), SKR_E_INTERNAL, "too many key numbers");
    bn = BN_secure_new();
    ENSURE(bn != NULL, SKR_E_NOMEM, "out of memory");
    k->bn[k->n++] = bn;
    ENSURE(BN_bin2bn(v.ptr, (int)v.len, bn) != NULL, SKR_E_NOMEM, "out of memory");
    *ret = bn;
    return SKR_OK;
}

/* A non-negative DER INTEGER pushed as param name. */
static skr_err
push_int(OSSL_PARAM_BLD *bld, struct key_nums *k, struct skr_rd *rd, const char *name)
{
    struct skr_span v;
    BIGNUM *bn = NULL;

    TRY(der_tlv(rd, 0x02, &v));
    ENSURE(v.len > 0 && v.len <= 2048 && (v.ptr[0] & 0x80u) == 0, SKR_E_MALFORMED,
           "PKCS#8 key: bad INTEGER");
    TRY(key_num(k, v, &bn));
    TRY_OSSL(OSSL_PARAM_BLD_push_BN(bld, name, bn), SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

/* RFC 8017 A.1.2 RSAPrivateKey, two primes (version 0). */
static skr_err
rsa_params(OSSL_PARAM_BLD *bld, struct key_nums *k, struct skr_rd *rd)
{
    static const char *const names[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    struct skr_span v;

    TRY(der_tlv(rd, 0x02, &v));
    ENSURE(v.len == 1 && v.ptr[0] == 0, SKR_E_UNSUPPORTED,
           "PKCS#8 RSA key: only two-prime keys (version 0) are supported");
    for (size_t i = 0; i < SKR_ARRAY_LEN(names); i++) {
        TRY(push_int(bld, k, rd, names[i]));
    }
    ENSURE(skr_rd_left(rd) == 0, SKR_E_MALFORMED, "PKCS#8 RSA key: trailing data");
    return SKR_OK;
}

/* RFC 5915 ECPrivateKey (version 1) on the named curve of the AlgorithmIdentifier; the public
 * point is computed from d (a [1] publicKey, when present, is not trusted instead). */
static skr_err
ec_params(OSSL_PARAM_BLD *bld, struct key_nums *k, struct skr_rd *rd, const X509_ALGOR *alg)
{
    BIGNUM *d = NULL;
    const ASN1_OBJECT *curve = NULL;
    const void *pval = NULL;
    EC_GROUP *group = NULL;
    EC_POINT *point = NULL;
    struct skr_span v;
    const char *name;
    int ptype = 0;
    size_t pub_len = 0;
    int nid;

    X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    ENSURE(ptype == V_ASN1_OBJECT && pval != NULL, SKR_E_UNSUPPORTED,
           "PKCS#8 EC key: only named curves are supported");
    curve = pval;
    nid = OBJ_obj2nid(curve);
    name = OBJ_nid2sn(nid);
    ENSURE(nid != NID_undef && name != NULL, SKR_E_UNSUPPORTED, "PKCS#8 EC key: unknown curve");
    TRY(der_tlv(rd, 0x02, &v));
    ENSURE(v.len == 1 && v.ptr[0] == 1, SKR_E_MALFORMED, "PKCS#8 EC key: version is not 1");
    TRY(der_tlv(rd, 0x04, &v));
    ENSURE(v.len > 0 && v.len <= 66, SKR_E_MALFORMED, "PKCS#8 EC key: bad private key length");
    TRY(key_num(k, v, &d));
    if (der_next_is(rd, 0xa0)) {
        TRY(der_tlv(rd, 0xa0, &v)); /* the same curve repeated; the AlgorithmIdentifier rules */
    }
    if (der_next_is(rd, 0xa1)) {
        TRY(der_tlv(rd, 0xa1, &v));
    }
    ENSURE(skr_rd_left(rd) == 0, SKR_E_MALFORMED, "PKCS#8 EC key: trailing data");

    group = EC_GROUP_new_by_curve_name(nid);
    ENSURE(group != NULL, SKR_E_UNSUPPORTED, "PKCS#8 EC key: unsupported curve");
    point = EC_POINT_new(group);
    if (point == NULL || BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(group)) >= 0 ||
        EC_POINT_mul(group, point, d, NULL, NULL, NULL) != 1 ||
        (pub_len =
             EC_POINT_point2buf(group, point, POINT_CONVERSION_UNCOMPRESSED, &k->pub, NULL)) == 0) {
        EC_POINT_free(point);
        EC_GROUP_free(group);
        ERR_clear_error();
        FAIL(SKR_E_MALFORMED, "PKCS#8 EC key: private key out of range");
    }
    EC_POINT_free(point);
    EC_GROUP_free(group);
    TRY_OSSL(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, name, 0) &&
                 OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) &&
                 OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->pub, pub_len),
             SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

skr_err
skr_kw_pkcs8_to_pkey(struct skr_span der, EVP_PKEY **ret)
{
    _cleanup_(pkcs8_freep) PKCS8_PRIV_KEY_INFO *p8 = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    _cleanup_(param_bld_freep) OSSL_PARAM_BLD *bld = NULL;
    _cleanup_(params_freep) OSSL_PARAM *params = NULL;
    _cleanup_(key_nums_done) struct key_nums nums = { 0 };
    const unsigned char *p = der.ptr;
    const unsigned char *key = NULL;
    const ASN1_OBJECT *obj = NULL;
    const X509_ALGOR *alg = NULL;
    struct skr_rd rd;
    struct skr_span seq;
    int key_len = 0;
    int nid;

    ENSURE(ret != NULL && der.ptr != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(der.len <= SKR_MAX_SECRET_BYTES, SKR_E_TOO_LARGE, "key material exceeds the limit");
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der.len);
    if (p8 == NULL || p != der.ptr + der.len ||
        PKCS8_pkey_get0(&obj, &key, &key_len, &alg, p8) != 1 || key == NULL || key_len <= 0) {
        ERR_clear_error();
        FAIL(SKR_E_MALFORMED, "key material is not one PKCS#8 PrivateKeyInfo");
    }
    nid = OBJ_obj2nid(obj);
    ENSURE(nid == NID_rsaEncryption || nid == NID_X9_62_id_ecPublicKey, SKR_E_UNSUPPORTED,
           "released key is neither RSA nor EC");
    bld = OSSL_PARAM_BLD_new();
    ENSURE(bld != NULL, SKR_E_NOMEM, "out of memory");
    skr_rd_init(&rd, skr_span_make(key, (size_t)key_len));
    if (der_tlv(&rd, 0x30, &seq) != SKR_OK || skr_rd_left(&rd) != 0) {
        FAIL(SKR_E_MALFORMED, "PKCS#8 key cannot be decoded");
    }
    skr_rd_init(&rd, seq);
    if (nid == NID_rsaEncryption) {
        TRY(rsa_params(bld, &nums, &rd));
    } else {
        TRY(ec_params(bld, &nums, &rd, alg));
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, nid == NID_rsaEncryption ? "RSA" : "EC", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
        ERR_clear_error();
        FAIL(SKR_E_MALFORMED, "PKCS#8 key cannot be decoded");
    }
    *ret = TAKE_PTR(pkey);
    return SKR_OK;
}
