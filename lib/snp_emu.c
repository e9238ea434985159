/*
 * snp_emu.c - a software SEV-SNP platform (snp_emu.h). It owns an emulated AMD key hierarchy
 * (ARK -> ASK -> VCEK, PROTOCOLS.md §2.3-2.4) and a launch state, and signs
 * ATTESTATION_REPORTs (§2.1) the way the AMD-SP does: ECDSA P-384 over bytes 0x000..0x29F with
 * r and s stored as 72-byte little-endian integers.
 *
 * Everything it writes is marked as emulated (O=skr emulated AMD) so that no one mistakes its
 * certificates for AMD's; verifiers only accept them when handed the emulated ARK explicitly.
 */
#include "snp_emu.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_certs.h"
#include "snp_report.h"

#define EMU_PATH_MAX    4096u
#define EMU_DAY_SECONDS (24L * 60 * 60)
#define EMU_YEAR_DAYS   365L

struct skr_snp_emu {
    struct skr_snp_emu_params p;
    EVP_PKEY *vcek_key;
    X509 *ark;
    X509 *ask;
    X509 *vcek;
};

/* The three certificates a platform holds, in the order every output lists them. */
enum emu_cert { EMU_VCEK = 0, EMU_ASK, EMU_ARK, EMU_CERT_COUNT };

/* ---- small helpers -------------------------------------------------------------------- */

static skr_err
join_path(struct skr_buf *b, const char *dir, const char *name, const char **ret)
{
    skr_buf_reset(b);
    TRY(skr_buf_printf(b, "%s/%s", dir, name));
    return skr_buf_cstr(b, ret);
}

static skr_err
random_bytes(uint8_t *p, size_t n)
{
    TRY_OSSL(RAND_bytes(p, (int)n), SKR_E_INTERNAL, "RAND_bytes failed");
    return SKR_OK;
}

/* A plausible current TCB per product; Milan's microcode 0xdb exercises the DER INTEGER form
 * with a leading zero byte (PROTOCOLS.md §2.3). */
static uint64_t
default_tcb(enum skr_snp_product p)
{
    struct skr_snp_tcb t = { 0 };

    switch (p) {
    case SKR_SNP_PRODUCT_GENOA:
        t = (struct skr_snp_tcb){ .bootloader = 9, .tee = 0, .snp = 0x17, .microcode = 0x48 };
        break;
    case SKR_SNP_PRODUCT_TURIN:
        t = (struct skr_snp_tcb){
            .has_fmc = true, .fmc = 1, .bootloader = 1, .tee = 1, .snp = 3, .microcode = 0x44
        };
        break;
    default:
        t = (struct skr_snp_tcb){ .bootloader = 3, .tee = 0, .snp = 0x16, .microcode = 0xdb };
        break;
    }
    return skr_snp_tcb_encode(&t, p);
}

static const char *
product_name_ext(enum skr_snp_product p)
{
    switch (p) {
    case SKR_SNP_PRODUCT_GENOA:
        return "Genoa-B1";
    case SKR_SNP_PRODUCT_TURIN:
        return "Turin";
    default:
        return "Milan-B0";
    }
}

static size_t
hwid_len(enum skr_snp_product p)
{
    return p == SKR_SNP_PRODUCT_TURIN ? 8 : 64;
}

static skr_err
fill_defaults(const struct skr_snp_emu_params *in, struct skr_snp_emu_params *out)
{
    *out = *in;
    if (out->product == SKR_SNP_PRODUCT_UNKNOWN) {
        out->product = SKR_SNP_PRODUCT_MILAN;
    }
    ENSURE(out->product == SKR_SNP_PRODUCT_MILAN || out->product == SKR_SNP_PRODUCT_GENOA ||
               out->product == SKR_SNP_PRODUCT_TURIN,
           SKR_E_INVALID_ARG, "unknown product");
    if (out->report_version == 0) {
        out->report_version = 3;
    }
    if (out->report_version < SKR_SNP_REPORT_MIN_VERSION ||
        out->report_version > SKR_SNP_REPORT_MAX_VERSION) {
        FAILF(SKR_E_INVALID_ARG, "report version %u is not in 2..5", out->report_version);
    }
    if (out->vmpl_floor > 3) {
        FAILF(SKR_E_INVALID_ARG, "vmpl floor %u is not in 0..3", out->vmpl_floor);
    }
    if (out->policy == 0) {
        out->policy = 0x3001f;
    }
    if (out->tcb == 0) {
        out->tcb = default_tcb(out->product);
    }
    if (skr_span_is_zero(skr_span_make(out->measurement, sizeof(out->measurement)))) {
        TRY(random_bytes(out->measurement, sizeof(out->measurement)));
    }
    if (skr_span_is_zero(skr_span_make(out->chip_id, sizeof(out->chip_id)))) {
        TRY(random_bytes(out->chip_id, hwid_len(out->product)));
    }
    if (out->product == SKR_SNP_PRODUCT_TURIN) {
        /* Turin reports carry an 8-byte chip id, the rest zero (PROTOCOLS.md §2.1). */
        ENSURE(skr_span_is_zero(skr_span_make(out->chip_id + 8, sizeof(out->chip_id) - 8)),
               SKR_E_INVALID_ARG, "a Turin chip id has 8 bytes");
    }
    return SKR_OK;
}

/* ---- key and certificate generation --------------------------------------------------- */

static skr_err
gen_rsa4096(EVP_PKEY **ret)
{
    EVP_PKEY *k = EVP_RSA_gen(4096);

    if (k == NULL) {
        skr_err e = skr_err_at(SKR_E_INTERNAL, __FILE__, __LINE__, "RSA-4096 keygen failed");
        skr_err_add_ossl();
        return e;
    }
    *ret = k;
    return SKR_OK;
}

static skr_err
gen_p384(EVP_PKEY **ret)
{
    EVP_PKEY *k = EVP_EC_gen("P-384");

    if (k == NULL) {
        skr_err e = skr_err_at(SKR_E_INTERNAL, __FILE__, __LINE__, "P-384 keygen failed");
        skr_err_add_ossl();
        return e;
    }
    *ret = k;
    return SKR_OK;
}

/* C=US, O=skr emulated AMD, OU=Engineering, CN=cn */
static skr_err
make_name(const char *cn, X509_NAME **ret)
{
    X509_NAME *n = X509_NAME_new();
    static const char *const keys[] = { "C", "O", "OU", "CN" };
    const char *vals[] = { "US", "skr emulated AMD", "Engineering", cn };

    ENSURE(n != NULL, SKR_E_NOMEM, "X509_NAME_new failed");
    for (size_t i = 0; i < SKR_ARRAY_LEN(keys); i++) {
        if (X509_NAME_add_entry_by_txt(n, keys[i], MBSTRING_ASC, (const unsigned char *)vals[i], -1,
                                       -1, 0) != 1) {
            X509_NAME_free(n);
            FAIL(SKR_E_INTERNAL, "cannot build a certificate name");
        }
    }
    *ret = n;
    return SKR_OK;
}

static skr_err
add_ext_conf(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ENSURE(ext != NULL, SKR_E_INTERNAL, "cannot build a certificate extension");
    if (X509_add_ext(cert, ext, -1) != 1) {
        X509_EXTENSION_free(ext);
        FAIL(SKR_E_INTERNAL, "cannot add a certificate extension");
    }
    X509_EXTENSION_free(ext);
    return SKR_OK;
}

/* Adds a non-critical extension whose extnValue holds exactly the bytes given. */
static skr_err
add_ext_raw(X509 *cert, const char *oid, const uint8_t *der, size_t len)
{
    _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    int ok = 0;

    if (obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, der, (int)len) == 1) {
        ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
    }
    if (ext != NULL) {
        ok = X509_add_ext(cert, ext, -1);
    }
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ENSURE(ok == 1, SKR_E_INTERNAL, "cannot add a VCEK extension");
    return SKR_OK;
}

/* DER INTEGER via libcrypto, so 0x80..0xff get their leading zero (02 02 00 XX). */
static skr_err
add_ext_int(X509 *cert, const char *oid, long v)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    _cleanup_(skr_ossl_freep) unsigned char *der = NULL;
    int len = -1;

    if (ai != NULL && ASN1_INTEGER_set(ai, v) == 1) {
        len = i2d_ASN1_INTEGER(ai, &der);
    }
    ASN1_INTEGER_free(ai);
    ENSURE(len > 0, SKR_E_INTERNAL, "cannot encode an INTEGER extension");
    return add_ext_raw(cert, oid, der, (size_t)len);
}

static skr_err
add_ext_ia5(X509 *cert, const char *oid, const char *s)
{
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    _cleanup_(skr_ossl_freep) unsigned char *der = NULL;
    int len = -1;

    if (ia5 != NULL && ASN1_STRING_set(ia5, s, -1) == 1) {
        len = i2d_ASN1_IA5STRING(ia5, &der);
    }
    ASN1_IA5STRING_free(ia5);
    ENSURE(len > 0, SKR_E_INTERNAL, "cannot encode an IA5String extension");
    return add_ext_raw(cert, oid, der, (size_t)len);
}

/* AMD KDS spec 57230: the VCEK extensions (PROTOCOLS.md §2.3). */
static skr_err
add_vcek_exts(X509 *cert, const struct skr_snp_emu_params *p)
{
    struct skr_snp_tcb t;
    bool turin = p->product == SKR_SNP_PRODUCT_TURIN;

    skr_snp_tcb_decode(p->tcb, p->product, &t);
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.1", turin ? 1 : 0));
    TRY(add_ext_ia5(cert, "1.3.6.1.4.1.3704.1.2", product_name_ext(p->product)));
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.1", t.bootloader));
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.2", t.tee));
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.3", t.snp));
    if (!turin) {
        TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.4", 0));
    }
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.5", 0));
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.6", 0));
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.7", 0));
    TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.8", t.microcode));
    if (turin) {
        TRY(add_ext_int(cert, "1.3.6.1.4.1.3704.1.3.9", t.fmc));
    }
    /* hwID: the chip id as raw bytes, no OCTET STRING tag, as AMD's KDS issues it. */
    return add_ext_raw(cert, "1.3.6.1.4.1.3704.1.4", p->chip_id, hwid_len(p->product));
}

/* RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48: how AMD's ARK and ASK sign (§2.4). */
static skr_err
sign_pss(X509 *cert, EVP_PKEY *key)
{
    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    ENSURE(mctx != NULL, SKR_E_NOMEM, "EVP_MD_CTX_new failed");
    TRY_OSSL(EVP_DigestSignInit(mctx, &pctx, EVP_sha384(), NULL, key), SKR_E_INTERNAL,
             "EVP_DigestSignInit failed");
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), SKR_E_INTERNAL,
             "cannot select RSA-PSS");
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48), SKR_E_INTERNAL,
             "cannot set the PSS salt length");
    TRY_OSSL(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()), SKR_E_INTERNAL,
             "cannot set the MGF1 digest");
    if (X509_sign_ctx(cert, mctx) <= 0) {
        skr_err e = skr_err_at(SKR_E_INTERNAL, __FILE__, __LINE__, "certificate signing failed");
        skr_err_add_ossl();
        return e;
    }
    return SKR_OK;
}

struct cert_spec {
    const char *cn;
    long serial;
    long days;
    bool is_ca;
    EVP_PKEY *subject_key;
    X509 *issuer; /* NULL: self-signed */
    EVP_PKEY *issuer_key;
};

static skr_err
set_names(X509 *x, const struct cert_spec *s)
{
    X509_NAME *subject = NULL;

    TRY(make_name(s->cn, &subject));
    if (X509_set_subject_name(x, subject) != 1 ||
        X509_set_issuer_name(x, s->issuer != NULL ? X509_get_subject_name(s->issuer) : subject) !=
            1) {
        X509_NAME_free(subject);
        FAIL(SKR_E_INTERNAL, "cannot set certificate names");
    }
    X509_NAME_free(subject);
    return SKR_OK;
}

static skr_err
make_cert(const struct cert_spec *s, const struct skr_snp_emu_params *p, X509 **ret)
{
    _cleanup_(X509_freep) X509 *x = X509_new();

    ENSURE(x != NULL, SKR_E_NOMEM, "X509_new failed");
    TRY_OSSL(X509_set_version(x, 2), SKR_E_INTERNAL, "X509_set_version failed");
    TRY_OSSL(ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial), SKR_E_INTERNAL,
             "cannot set the serial number");
    ENSURE(X509_gmtime_adj(X509_getm_notBefore(x), -EMU_DAY_SECONDS) != NULL, SKR_E_INTERNAL,
           "cannot set notBefore");
    ENSURE(X509_time_adj_ex(X509_getm_notAfter(x), (int)s->days, 0, NULL) != NULL, SKR_E_INTERNAL,
           "cannot set notAfter");
    TRY(set_names(x, s));
    TRY_OSSL(X509_set_pubkey(x, s->subject_key), SKR_E_INTERNAL, "X509_set_pubkey failed");
    if (s->is_ca) {
        X509 *issuer = s->issuer != NULL ? s->issuer : x;

        TRY(add_ext_conf(x, issuer, NID_basic_constraints, "critical,CA:TRUE"));
        TRY(add_ext_conf(x, issuer, NID_key_usage,
                         "critical,digitalSignature,keyCertSign,cRLSign"));
        TRY(add_ext_conf(x, issuer, NID_subject_key_identifier, "hash"));
    } else {
        TRY(add_vcek_exts(x, p));
    }
    TRY(sign_pss(x, s->issuer_key));
    *ret = TAKE_PTR(x);
    return SKR_OK;
}

/* ---- files ---------------------------------------------------------------------------- */

static skr_err
write_pem(const struct skr_buf *pem, const char *dir, const char *name, unsigned mode)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;

    skr_buf_init(&pb, EMU_PATH_MAX);
    TRY(join_path(&pb, dir, name, &path));
    return skr_write_file_atomic(path, skr_buf_span(pem), mode);
}

static skr_err
write_key(EVP_PKEY *key, const char *dir, const char *name)
{
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };

    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    TRY(skr_pem_write_key(key, &pem));
    return write_pem(&pem, dir, name, 0600);
}

static skr_err
write_cert(X509 *cert, const char *dir, const char *name)
{
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };

    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    TRY(skr_pem_write_cert(cert, &pem));
    return write_pem(&pem, dir, name, 0644);
}

static skr_err
params_to_json(const struct skr_snp_emu_params *p, struct skr_buf *out)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    char tcbm[17];
    char policy[24];

    ENSURE(o != NULL, SKR_E_NOMEM, "json_object failed");
    skr_snp_tcb_tcbm(p->tcb, tcbm);
    (void)snprintf(policy, sizeof(policy), "0x%llx", (unsigned long long)p->policy);
    TRY(skr_json_set(o, "product", json_string(skr_snp_product_name(p->product))));
    TRY(skr_json_set(o, "report_version", json_integer(p->report_version)));
    TRY(skr_json_set(o, "policy", json_string(policy)));
    TRY(skr_json_set(o, "tcb", json_string(tcbm)));
    TRY(skr_json_set(o, "guest_svn", json_integer(p->guest_svn)));
    TRY(skr_json_set(o, "vmpl_floor", json_integer(p->vmpl_floor)));
    TRY(skr_json_set_hex(o, "measurement", p->measurement, sizeof(p->measurement)));
    TRY(skr_json_set_hex(o, "host_data", p->host_data, sizeof(p->host_data)));
    TRY(skr_json_set_hex(o, "family_id", p->family_id, sizeof(p->family_id)));
    TRY(skr_json_set_hex(o, "image_id", p->image_id, sizeof(p->image_id)));
    TRY(skr_json_set_hex(o, "chip_id", p->chip_id, sizeof(p->chip_id)));
    TRY(skr_json_dump(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER, out));
    return skr_buf_append_byte(out, '\n');
}

static skr_err
ensure_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0755) == 0) {
        return SKR_OK;
    }
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        return SKR_OK;
    }
    FAILF(SKR_E_IO, "cannot create directory %s: %s", dir, strerror(errno));
}

skr_err
skr_snp_emu_create(const char *dir, const struct skr_snp_emu_params *params)
{
    static const struct skr_snp_emu_params zero = { 0 };
    struct skr_snp_emu_params p;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *ark_key = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *ask_key = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *vcek_key = NULL;
    _cleanup_(X509_freep) X509 *ark = NULL;
    _cleanup_(X509_freep) X509 *ask = NULL;
    _cleanup_(X509_freep) X509 *vcek = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;
    char ark_cn[32];
    char ask_cn[32];
    long serial_base;

    ENSURE(dir != NULL && dir[0] != '\0', SKR_E_INVALID_ARG, "no platform directory");
    TRY(fill_defaults(params != NULL ? params : &zero, &p));
    TRY(ensure_dir(dir));
    TRY(gen_rsa4096(&ark_key));
    TRY(gen_rsa4096(&ask_key));
    TRY(gen_p384(&vcek_key));

    (void)snprintf(ark_cn, sizeof(ark_cn), "ARK-%s", skr_snp_product_name(p.product));
    (void)snprintf(ask_cn, sizeof(ask_cn), "SEV-%s", skr_snp_product_name(p.product));
    /* AMD's serial scheme: 0x10000 Milan, 0x20000 Genoa, 0x30000 Turin; ASK = ARK + 1. */
    serial_base = 0x10000L * (long)p.product;
    TRY(make_cert(&(struct cert_spec){ .cn = ark_cn,
                                       .serial = serial_base,
                                       .days = 25 * EMU_YEAR_DAYS,
                                       .is_ca = true,
                                       .subject_key = ark_key,
                                       .issuer_key = ark_key },
                  &p, &ark));
    TRY(make_cert(&(struct cert_spec){ .cn = ask_cn,
                                       .serial = serial_base + 1,
                                       .days = 25 * EMU_YEAR_DAYS,
                                       .is_ca = true,
                                       .subject_key = ask_key,
                                       .issuer = ark,
                                       .issuer_key = ark_key },
                  &p, &ask));
    TRY(make_cert(&(struct cert_spec){ .cn = "SEV-VCEK",
                                       .serial = 0,
                                       .days = 7 * EMU_YEAR_DAYS,
                                       .subject_key = vcek_key,
                                       .issuer = ask,
                                       .issuer_key = ask_key },
                  &p, &vcek));

    TRY(write_key(ark_key, dir, "ark.key"));
    TRY(write_key(ask_key, dir, "ask.key"));
    TRY(write_key(vcek_key, dir, "vcek.key"));
    TRY(write_cert(ark, dir, "ark.pem"));
    TRY(write_cert(ask, dir, "ask.pem"));
    TRY(write_cert(vcek, dir, "vcek.pem"));
    skr_buf_init(&json, SKR_MAX_JSON_BYTES);
    TRY(params_to_json(&p, &json));
    skr_buf_init(&pb, EMU_PATH_MAX);
    TRY(join_path(&pb, dir, "platform.json", &path));
    /* Written last: its presence marks a complete platform. */
    return skr_write_file_atomic(path, skr_buf_span(&json), 0644);
}

/* ---- open ----------------------------------------------------------------------------- */

static skr_err
json_hex(const json_t *o, const char *key, uint8_t *out, size_t n)
{
    const char *s;

    TRY(skr_json_get_str(o, key, &s));
    if (skr_hex_decode_fixed(skr_span_str(s), out, n) != SKR_OK) {
        FAILF(SKR_E_MALFORMED, "platform.json: \"%s\" must be %zu bytes of hex", key, n);
    }
    return SKR_OK;
}

static skr_err
json_u32(const json_t *o, const char *key, uint32_t max, uint32_t *ret)
{
    uint64_t v;

    TRY(skr_json_get_u64(o, key, &v));
    if (v > max) {
        FAILF(SKR_E_MALFORMED, "platform.json: \"%s\" is larger than %u", key, max);
    }
    *ret = (uint32_t)v;
    return SKR_OK;
}

/* "tcb" is the THIM tcbm form: 16 hex digits, most significant byte first. */
static skr_err
parse_tcbm(const char *s, uint64_t *ret)
{
    uint8_t b[8];
    uint64_t v = 0;

    if (strlen(s) != 16 || skr_hex_decode_fixed(skr_span_str(s), b, sizeof(b)) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "platform.json: \"tcb\" must be 16 hex digits");
    }
    for (size_t i = 0; i < sizeof(b); i++) {
        v = v << 8 | b[i];
    }
    *ret = v;
    return SKR_OK;
}

static skr_err
params_from_json(struct skr_span text, struct skr_snp_emu_params *p)
{
    _cleanup_(json_decrefp) json_t *o = NULL;
    const char *s;

    TRY(skr_json_parse_object(text, SKR_MAX_JSON_BYTES, "platform.json", &o));
    TRY(skr_json_get_str(o, "product", &s));
    TRY(skr_snp_product_parse(s, &p->product));
    TRY(json_u32(o, "report_version", SKR_SNP_REPORT_MAX_VERSION, &p->report_version));
    ENSURE(p->report_version >= SKR_SNP_REPORT_MIN_VERSION, SKR_E_MALFORMED,
           "platform.json: \"report_version\" must be 2..5");
    TRY(skr_json_get_str(o, "policy", &s));
    if (skr_parse_u64(skr_span_str(s), true, 0, UINT64_MAX, &p->policy) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "platform.json: \"policy\" must be a 0x-prefixed hex number");
    }
    TRY(skr_json_get_str(o, "tcb", &s));
    TRY(parse_tcbm(s, &p->tcb));
    TRY(json_u32(o, "guest_svn", UINT32_MAX, &p->guest_svn));
    TRY(json_u32(o, "vmpl_floor", 3, &p->vmpl_floor));
    TRY(json_hex(o, "measurement", p->measurement, sizeof(p->measurement)));
    TRY(json_hex(o, "host_data", p->host_data, sizeof(p->host_data)));
    TRY(json_hex(o, "family_id", p->family_id, sizeof(p->family_id)));
    TRY(json_hex(o, "image_id", p->image_id, sizeof(p->image_id)));
    TRY(json_hex(o, "chip_id", p->chip_id, sizeof(p->chip_id)));
    return SKR_OK;
}

static skr_err
read_in(const char *dir, const char *name, size_t max, struct skr_buf *b)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;

    skr_buf_init(&pb, EMU_PATH_MAX);
    TRY(join_path(&pb, dir, name, &path));
    skr_buf_init(b, max);
    return skr_read_file(path, b);
}

static skr_err
load_cert(const char *dir, const char *name, X509 **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    _cleanup_(BIO_free_allp) BIO *bio = NULL;
    X509 *x;

    TRY(read_in(dir, name, SKR_MAX_PEM_BYTES, &b));
    bio = BIO_new_mem_buf(b.ptr, (int)b.len);
    ENSURE(bio != NULL, SKR_E_NOMEM, "BIO_new_mem_buf failed");
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (x == NULL) {
        FAILF(SKR_E_MALFORMED, "%s/%s: not a PEM certificate", dir, name);
    }
    *ret = x;
    return SKR_OK;
}

static skr_err
load_key(const char *dir, const char *name, EVP_PKEY **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    _cleanup_(BIO_free_allp) BIO *bio = NULL;
    EVP_PKEY *k;

    TRY(read_in(dir, name, SKR_MAX_PEM_BYTES, &b));
    bio = BIO_new_mem_buf(b.ptr, (int)b.len);
    ENSURE(bio != NULL, SKR_E_NOMEM, "BIO_new_mem_buf failed");
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (k == NULL) {
        FAILF(SKR_E_MALFORMED, "%s/%s: not a PEM private key", dir, name);
    }
    *ret = k;
    return SKR_OK;
}

static skr_err
find_platform_dir(const char *dir, struct skr_buf *b, const char **ret)
{
    const char *path;
    struct stat st;

    TRY(join_path(b, dir, "platform.json", &path));
    if (stat(path, &st) == 0) {
        *ret = dir;
        return SKR_OK;
    }
    TRY(join_path(b, dir, "snp/platform.json", &path));
    if (stat(path, &st) == 0) {
        return join_path(b, dir, "snp", ret);
    }
    FAILF(SKR_E_NOT_FOUND,
          "no emulated SNP platform in %s (neither %s/platform.json nor %s/snp/platform.json; "
          "create one with skr-emu init)",
          dir, dir, dir);
}

static skr_err
check_vcek(struct skr_snp_emu *e)
{
    EVP_PKEY *ask_pub = X509_get0_pubkey(e->ask);

    ENSURE(X509_check_private_key(e->vcek, e->vcek_key) == 1, SKR_E_MALFORMED,
           "vcek.key does not match vcek.pem");
    ENSURE(EVP_PKEY_is_a(e->vcek_key, "EC") && EVP_PKEY_get_bits(e->vcek_key) == 384,
           SKR_E_MALFORMED, "vcek.key is not an EC P-384 key");
    ENSURE(ask_pub != NULL && X509_verify(e->vcek, ask_pub) == 1, SKR_E_MALFORMED,
           "vcek.pem is not signed by ask.pem");
    return SKR_OK;
}

skr_err
skr_snp_emu_open(const char *dir, struct skr_snp_emu **ret)
{
    _cleanup_(skr_snp_emu_freep) struct skr_snp_emu *e = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
    const char *pdir;

    ENSURE(dir != NULL && dir[0] != '\0', SKR_E_INVALID_ARG, "no platform directory");
    skr_buf_init(&pb, EMU_PATH_MAX);
    TRY(find_platform_dir(dir, &pb, &pdir));
    e = calloc(1, sizeof(*e));
    ENSURE(e != NULL, SKR_E_NOMEM, "out of memory");
    TRY(read_in(pdir, "platform.json", SKR_MAX_JSON_BYTES, &json));
    TRY(params_from_json(skr_buf_span(&json), &e->p));
    TRY(load_cert(pdir, "ark.pem", &e->ark));
    TRY(load_cert(pdir, "ask.pem", &e->ask));
    TRY(load_cert(pdir, "vcek.pem", &e->vcek));
    TRY(load_key(pdir, "vcek.key", &e->vcek_key));
    TRY(check_vcek(e));
    *ret = TAKE_PTR(e);
    return SKR_OK;
}

void
skr_snp_emu_free(struct skr_snp_emu *e)
{
    if (e == NULL) {
        return;
    }
    EVP_PKEY_free(e->vcek_key);
    X509_free(e->ark);
    X509_free(e->ask);
    X509_free(e->vcek);
    skr_wipe(e, sizeof(*e));
    free(e);
}

const struct skr_snp_emu_params *
skr_snp_emu_params(const struct skr_snp_emu *e)
{
    return &e->p;
}

/* ---- reports -------------------------------------------------------------------------- */

static void
set_cpuid(struct skr_snp_report *r, enum skr_snp_product p)
{
    switch (p) {
    case SKR_SNP_PRODUCT_GENOA:
        r->cpuid_fam_id = 0x19;
        r->cpuid_mod_id = 0x11;
        r->cpuid_step = 0x01;
        break;
    case SKR_SNP_PRODUCT_TURIN:
        r->cpuid_fam_id = 0x1A;
        r->cpuid_mod_id = 0x02;
        r->cpuid_step = 0x00;
        break;
    default:
        r->cpuid_fam_id = 0x19;
        r->cpuid_mod_id = 0x01;
        r->cpuid_step = 0x01;
        break;
    }
}

static skr_err
build_report(const struct skr_snp_emu *e, const uint8_t report_data[64], uint32_t vmpl,
             struct skr_snp_report *r)
{
    const struct skr_snp_emu_params *p = &e->p;

    *r = (struct skr_snp_report){
        .version = p->report_version,
        .guest_svn = p->guest_svn,
        .policy = p->policy,
        .vmpl = vmpl,
        .sig_algo = SKR_SNP_SIG_ALGO_ECDSA_P384_SHA384,
        .current_tcb = p->tcb,
        .platform_info = SKR_SNP_PLATFORM_SMT_EN | SKR_SNP_PLATFORM_TSME_EN,
        .signer_info = 0, /* VCEK, chip key not masked, no author key */
        .reported_tcb = p->tcb,
        .committed_tcb = p->tcb,
        .launch_tcb = p->tcb,
        .current_major = 1,
        .current_minor = 55,
        .current_build = 21,
        .committed_major = 1,
        .committed_minor = 55,
        .committed_build = 21,
    };
    memcpy(r->family_id, p->family_id, sizeof(r->family_id));
    memcpy(r->image_id, p->image_id, sizeof(r->image_id));
    memcpy(r->report_data, report_data, sizeof(r->report_data));
    memcpy(r->measurement, p->measurement, sizeof(r->measurement));
    memcpy(r->host_data, p->host_data, sizeof(r->host_data));
    memcpy(r->chip_id, p->chip_id, sizeof(r->chip_id));
    memset(r->report_id_ma, 0xff, sizeof(r->report_id_ma));
    if (r->version >= 3) {
        set_cpuid(r, p->product);
    }
    return random_bytes(r->report_id, sizeof(r->report_id));
}

/* ECDSA P-384 / SHA-384 over bytes 0x000..0x29F; r and s as 72-byte little-endian
 * integers (PROTOCOLS.md §2.1 "Signature"). */
static skr_err
sign_report(EVP_PKEY *key, const uint8_t *msg, uint8_t r_out[72], uint8_t s_out[72])
{
    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
    uint8_t der[160];
    size_t der_len = sizeof(der);
    const unsigned char *q = der;
    const BIGNUM *r;
    const BIGNUM *s;

    ENSURE(mctx != NULL, SKR_E_NOMEM, "EVP_MD_CTX_new failed");
    TRY_OSSL(EVP_DigestSignInit(mctx, NULL, EVP_sha384(), NULL, key), SKR_E_INTERNAL,
             "EVP_DigestSignInit failed");
    TRY_OSSL(EVP_DigestSign(mctx, der, &der_len, msg, SKR_SNP_REPORT_SIGNED_LEN), SKR_E_INTERNAL,
             "report signing failed");
    sig = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
    ENSURE(sig != NULL, SKR_E_INTERNAL, "cannot decode our own ECDSA signature");
    ECDSA_SIG_get0(sig, &r, &s);
    ENSURE(BN_bn2lebinpad(r, r_out, 72) == 72 && BN_bn2lebinpad(s, s_out, 72) == 72, SKR_E_INTERNAL,
           "cannot encode the signature");
    return SKR_OK;
}

skr_err
skr_snp_emu_report(struct skr_snp_emu *e, const uint8_t report_data[64], uint32_t vmpl,
                   struct skr_buf *out)
{
    struct skr_snp_report r;
    uint8_t raw[SKR_SNP_REPORT_LEN];

    ENSURE(e != NULL && report_data != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (vmpl > 3 || vmpl < e->p.vmpl_floor) {
        FAILF(SKR_E_INVALID_ARG, "VMPL %u is not allowed on this platform (allowed: %u..3)", vmpl,
              e->p.vmpl_floor);
    }
    TRY(build_report(e, report_data, vmpl, &r));
    skr_snp_report_serialize(&r, raw);
    TRY(sign_report(e->vcek_key, raw, r.sig_r, r.sig_s));
    skr_snp_report_serialize(&r, raw);
    return skr_buf_append(out, raw, sizeof(raw));
}

/* ---- certificates --------------------------------------------------------------------- */

static X509 *
cert_of(const struct skr_snp_emu *e, enum emu_cert c)
{
    switch (c) {
    case EMU_VCEK:
        return e->vcek;
    case EMU_ASK:
        return e->ask;
    default:
        return e->ark;
    }
}

skr_err
skr_snp_emu_cert_table(struct skr_snp_emu *e, struct skr_buf *out)
{
    static const enum skr_cert_kind kinds[EMU_CERT_COUNT] = { SKR_CERT_VCEK, SKR_CERT_ASK,
                                                              SKR_CERT_ARK };
    struct skr_cert_entry entries[EMU_CERT_COUNT] = { 0 };
    unsigned char *der[EMU_CERT_COUNT] = { NULL };
    skr_err err = SKR_OK;

    ENSURE(e != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    for (size_t i = 0; i < EMU_CERT_COUNT; i++) {
        int len = i2d_X509(cert_of(e, (enum emu_cert)i), &der[i]);

        if (len <= 0) {
            err = skr_err_at(SKR_E_INTERNAL, __FILE__, __LINE__, "cannot DER-encode a cert");
            break;
        }
        entries[i] =
            (struct skr_cert_entry){ .kind = kinds[i], .der = skr_span_make(der[i], (size_t)len) };
    }
    if (err == SKR_OK) {
        err = skr_cert_table_build(entries, EMU_CERT_COUNT, out);
    }
    for (size_t i = 0; i < EMU_CERT_COUNT; i++) {
        OPENSSL_free(der[i]);
    }
    return err;
}

skr_err
skr_snp_emu_chain_pem(struct skr_snp_emu *e, struct skr_buf *out)
{
    ENSURE(e != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    for (size_t i = 0; i < EMU_CERT_COUNT; i++) {
        TRY(skr_pem_write_cert(cert_of(e, (enum emu_cert)i), out));
    }
    return SKR_OK;
}
