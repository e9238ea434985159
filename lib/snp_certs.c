/*
 * snp_certs.c - AMD platform certificates: THIM JSON (PROTOCOLS.md §4.1-4.2), the
 * extended-report certificate table (§2.6), VCEK/VLEK extensions (§2.3), KDS URLs (§2.5) and
 * certificate bundles in any of the forms users hand us.
 */
#include "snp_certs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "err.h"
#include "hex.h"
#include "json.h"
#include "ossl.h"

/* Re-raises the last error with a prefix naming the context, keeping the original site (the
 * inner message is copied first because it lives in the same slot). */
static skr_err
reraise(skr_err e, const char *prefix)
{
    const struct skr_err_site *site = skr_err_last();
    const char *file = site->file != NULL ? site->file : __FILE__;
    int line = site->file != NULL ? site->line : __LINE__;
    char inner[sizeof(site->msg)];

    (void)snprintf(inner, sizeof(inner), "%s", skr_err_msg());
    return skr_err_atf(e, file, line, "%s: %s", prefix, inner);
}

/* ---- THIM ---------------------------------------------------------------------------- */

/* 1..16 hex digits, no prefix, no sign, no whitespace. */
static skr_err
parse_tcbm(const char *s, uint64_t *ret)
{
    ENSURE(skr_parse_hex_u64(skr_span_str(s), ret) == SKR_OK, SKR_E_MALFORMED,
           "THIM JSON: field 'tcbm': expected 1-16 hex digits");
    return SKR_OK;
}

static skr_err
dup_str(const char *s, char **ret)
{
    char *d = strdup(s);

    ENSURE(d != NULL, SKR_E_NOMEM, "out of memory");
    *ret = d;
    return SKR_OK;
}

static skr_err
thim_get_str(const json_t *obj, const char *key, char **ret)
{
    const char *s = NULL;
    skr_err e = skr_json_get_str(obj, key, &s);

    if (e != SKR_OK) {
        return reraise(e, "THIM JSON");
    }
    return dup_str(s, ret);
}

skr_err
skr_thim_parse(struct skr_span json, struct skr_thim *ret)
{
    _cleanup_(json_decrefp) json_t *obj = NULL;
    _cleanup_(skr_thim_done) struct skr_thim t = { 0 };
    const char *cc = NULL;
    skr_err e;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(skr_json_parse_object(json, SKR_MAX_JSON_BYTES, "THIM JSON", &obj));
    TRY(thim_get_str(obj, "vcekCert", &t.vcek_pem));
    TRY(thim_get_str(obj, "certificateChain", &t.chain_pem));
    TRY(thim_get_str(obj, "tcbm", &t.tcbm_str));
    TRY(parse_tcbm(t.tcbm_str, &t.tcbm));
    e = skr_json_opt_str(obj, "cacheControl", &cc);
    if (e != SKR_OK) {
        return reraise(e, "THIM JSON");
    }
    if (cc != NULL) {
        TRY(dup_str(cc, &t.cache_control));
    }
    *ret = TAKE_STRUCT(t);
    return SKR_OK;
}

skr_err
skr_thim_parse_b64(struct skr_span b64, struct skr_thim *ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
    skr_err e;

    ENSURE(b64.len <= SKR_MAX_FILE_BYTES, SKR_E_TOO_LARGE, "host-amd-cert-base64: too large");
    skr_buf_init(&json, SKR_MAX_JSON_BYTES);
    e = skr_b64_decode(b64, SKR_B64_STD | SKR_B64_SKIP_WS, &json);
    if (e != SKR_OK) {
        return reraise(e, "host-amd-cert-base64");
    }
    return skr_thim_parse(skr_buf_span(&json), ret);
}

void
skr_thim_done(struct skr_thim *t)
{
    if (t == NULL) {
        return;
    }
    free(t->vcek_pem);
    free(t->chain_pem);
    free(t->tcbm_str);
    free(t->cache_control);
    *t = (struct skr_thim){ 0 };
}

/* ---- certificate table --------------------------------------------------------------- */

#define CERT_TABLE_ENTRY_LEN 24u

/* RFC 4122 string order (go-sev-guest copies uuid.UUID bytes). */
static const uint8_t guid_vcek[16] = { 0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                       0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd };
static const uint8_t guid_vlek[16] = { 0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                       0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1 };
static const uint8_t guid_ask[16] = { 0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                      0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82 };
static const uint8_t guid_ark[16] = { 0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                      0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae };

const char *
skr_cert_kind_name(enum skr_cert_kind k)
{
    switch (k) {
    case SKR_CERT_VCEK:
        return "vcek";
    case SKR_CERT_VLEK:
        return "vlek";
    case SKR_CERT_ASK:
        return "ask";
    case SKR_CERT_ARK:
        return "ark";
    case SKR_CERT_OTHER:
    default:
        return "other";
    }
}

const uint8_t *
skr_cert_kind_guid(enum skr_cert_kind k)
{
    switch (k) {
    case SKR_CERT_VCEK:
        return guid_vcek;
    case SKR_CERT_VLEK:
        return guid_vlek;
    case SKR_CERT_ASK:
        return guid_ask;
    case SKR_CERT_ARK:
        return guid_ark;
    case SKR_CERT_OTHER:
    default:
        return NULL;
    }
}

static enum skr_cert_kind
kind_from_guid(const uint8_t guid[16])
{
    static const enum skr_cert_kind kinds[] = { SKR_CERT_VCEK, SKR_CERT_VLEK, SKR_CERT_ASK,
                                                SKR_CERT_ARK };

    for (size_t i = 0; i < SKR_ARRAY_LEN(kinds); i++) {
        const uint8_t *g = skr_cert_kind_guid(kinds[i]);

        if (g != NULL && memcmp(guid, g, 16) == 0) {
            return kinds[i];
        }
    }
    return SKR_CERT_OTHER;
}

skr_err
skr_cert_table_parse(struct skr_span blob, struct skr_cert_table *ret)
{
    struct skr_cert_table t = { .n = 0 };
    uint32_t offs[SKR_MAX_CERT_TABLE_ENTRIES];
    struct skr_rd rd;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(blob.len <= SKR_MAX_CERT_TABLE_BYTES, SKR_E_TOO_LARGE,
           "certificate table exceeds the size limit");
    skr_rd_init(&rd, blob);
    for (;;) {
        struct skr_cert_entry *ent;
        struct skr_rd cert_rd;
        uint8_t guid[16];
        uint32_t off;
        uint32_t len;

        if (skr_rd_left(&rd) < CERT_TABLE_ENTRY_LEN) {
            FAILF(SKR_E_MALFORMED,
                  "certificate table: no all-zero terminator entry within %zu bytes", blob.len);
        }
        TRY(skr_rd_copy(&rd, guid, sizeof(guid)));
        TRY(skr_rd_u32le(&rd, &off));
        TRY(skr_rd_u32le(&rd, &len));
        if (skr_span_is_zero(skr_span_make(guid, sizeof(guid)))) {
            if (off == 0 && len == 0) {
                break;
            }
            FAILF(SKR_E_MALFORMED, "certificate table entry %zu: zero GUID", t.n);
        }
        if (t.n == SKR_MAX_CERT_TABLE_ENTRIES) {
            FAILF(SKR_E_TOO_LARGE, "certificate table: more than %u entries",
                  (unsigned)SKR_MAX_CERT_TABLE_ENTRIES);
        }
        if (len == 0 || len > SKR_MAX_CERT_BYTES) {
            FAILF(SKR_E_MALFORMED, "certificate table entry %zu: bad length %" PRIu32, t.n, len);
        }
        ent = &t.entries[t.n];
        skr_rd_init(&cert_rd, blob);
        if (skr_rd_skip(&cert_rd, off) != SKR_OK ||
            skr_rd_bytes(&cert_rd, len, &ent->der) != SKR_OK) {
            FAILF(SKR_E_MALFORMED,
                  "certificate table entry %zu: [%" PRIu32 ", +%" PRIu32
                  ") is outside the %zu-byte blob",
                  t.n, off, len, blob.len);
        }
        memcpy(ent->guid, guid, sizeof(guid));
        ent->kind = kind_from_guid(guid);
        offs[t.n++] = off;
    }
    /* The certificates follow the header; none may overlap it. */
    for (size_t i = 0; i < t.n; i++) {
        if (offs[i] < rd.off) {
            FAILF(SKR_E_MALFORMED, "certificate table entry %zu: overlaps the table header", i);
        }
    }
    *ret = t;
    return SKR_OK;
}

skr_err
skr_cert_table_build(const struct skr_cert_entry *entries, size_t n, struct skr_buf *out)
{
    uint8_t hdr[CERT_TABLE_ENTRY_LEN];
    size_t total;
    size_t off;

    ENSURE(out != NULL && (entries != NULL || n == 0), SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(n <= SKR_MAX_CERT_TABLE_ENTRIES, SKR_E_TOO_LARGE, "too many certificate table entries");
    total = (n + 1) * CERT_TABLE_ENTRY_LEN;
    for (size_t i = 0; i < n; i++) {
        ENSURE(entries[i].der.len > 0 && entries[i].der.len <= SKR_MAX_CERT_BYTES,
               SKR_E_INVALID_ARG, "certificate table entry: bad certificate length");
        TRY(skr_add_sz(total, entries[i].der.len, &total));
    }
    ENSURE(total <= SKR_MAX_CERT_TABLE_BYTES, SKR_E_TOO_LARGE,
           "certificate table exceeds the size limit");
    TRY(skr_buf_reserve(out, total));
    off = (n + 1) * CERT_TABLE_ENTRY_LEN;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *guid = skr_cert_kind_guid(entries[i].kind);

        memcpy(hdr, guid != NULL ? guid : entries[i].guid, 16);
        skr_put_u32le(hdr + 16, (uint32_t)off);
        skr_put_u32le(hdr + 20, (uint32_t)entries[i].der.len);
        TRY(skr_buf_append(out, hdr, sizeof(hdr)));
        off += entries[i].der.len;
    }
    memset(hdr, 0, sizeof(hdr));
    TRY(skr_buf_append(out, hdr, sizeof(hdr)));
    for (size_t i = 0; i < n; i++) {
        TRY(skr_buf_append_span(out, entries[i].der));
    }
    return SKR_OK;
}

/* ---- VCEK / VLEK extensions ----------------------------------------------------------- */

#define AMD_OID_PREFIX "1.3.6.1.4.1.3704.1."

skr_err
skr_vcek_ext_int(struct skr_span der, uint8_t *ret)
{
    uint8_t len;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(der.len >= 2, SKR_E_TRUNCATED, "INTEGER: truncated");
    ENSURE(der.ptr[0] == 0x02, SKR_E_MALFORMED, "INTEGER: wrong tag");
    len = der.ptr[1];
    ENSURE(len != 0, SKR_E_MALFORMED, "INTEGER: zero length");
    ENSURE(len <= 2, SKR_E_MALFORMED, "INTEGER: value out of range 0..255");
    ENSURE(der.len >= 2u + len, SKR_E_TRUNCATED, "INTEGER: truncated");
    ENSURE(der.len == 2u + len, SKR_E_MALFORMED, "INTEGER: trailing bytes");
    if (len == 1) {
        ENSURE(der.ptr[2] < 0x80, SKR_E_MALFORMED, "INTEGER: negative value");
        *ret = der.ptr[2];
        return SKR_OK;
    }
    ENSURE(der.ptr[2] == 0x00 || der.ptr[2] == 0xff, SKR_E_MALFORMED,
           "INTEGER: value out of range 0..255");
    ENSURE(der.ptr[2] == 0x00, SKR_E_MALFORMED, "INTEGER: negative value");
    ENSURE(der.ptr[3] >= 0x80, SKR_E_MALFORMED, "INTEGER: non-minimal encoding");
    *ret = der.ptr[3];
    return SKR_OK;
}

skr_err
skr_vcek_ext_ia5(struct skr_span der, char *out, size_t cap)
{
    size_t len;
    size_t hl = 2;

    ENSURE(out != NULL && cap > 0, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(der.len >= 2, SKR_E_TRUNCATED, "IA5String: truncated");
    ENSURE(der.ptr[0] == 0x16, SKR_E_MALFORMED, "IA5String: wrong tag");
    len = der.ptr[1];
    if (len == 0x81) {
        ENSURE(der.len >= 3, SKR_E_TRUNCATED, "IA5String: truncated");
        len = der.ptr[2];
        hl = 3;
        ENSURE(len >= 0x80, SKR_E_MALFORMED, "IA5String: non-minimal length");
    } else {
        ENSURE(len < 0x80, SKR_E_MALFORMED, "IA5String: unsupported length form");
    }
    ENSURE(der.len - hl >= len, SKR_E_TRUNCATED, "IA5String: truncated");
    ENSURE(der.len - hl == len, SKR_E_MALFORMED, "IA5String: trailing bytes");
    ENSURE(len < cap, SKR_E_MALFORMED, "IA5String: too long");
    for (size_t i = 0; i < len; i++) {
        uint8_t c = der.ptr[hl + i];

        ENSURE(c >= 0x20 && c < 0x7f, SKR_E_MALFORMED, "IA5String: non-printable character");
    }
    memcpy(out, der.ptr + hl, len);
    out[len] = '\0';
    return SKR_OK;
}

enum amd_ext {
    EXT_STRUCT_VERSION,
    EXT_PRODUCT_NAME,
    EXT_BL,
    EXT_TEE,
    EXT_SNP,
    EXT_UCODE,
    EXT_FMC,
    EXT_HWID,
    EXT_CSP_ID,
    EXT_COUNT_,
};

static const struct {
    const char *suffix; /* after AMD_OID_PREFIX */
    const char *name;
} amd_exts[EXT_COUNT_] = {
    [EXT_STRUCT_VERSION] = { "1", "structVersion" },
    [EXT_PRODUCT_NAME] = { "2", "productName" },
    [EXT_BL] = { "3.1", "blSPL" },
    [EXT_TEE] = { "3.2", "teeSPL" },
    [EXT_SNP] = { "3.3", "snpSPL" },
    [EXT_UCODE] = { "3.8", "ucodeSPL" },
    [EXT_FMC] = { "3.9", "fmcSPL" },
    [EXT_HWID] = { "4", "hwID" },
    [EXT_CSP_ID] = { "5", "cspId" },
};

static skr_err
ext_int(struct skr_span v, bool *has, uint8_t *out)
{
    TRY(skr_vcek_ext_int(v, out));
    *has = true;
    return SKR_OK;
}

static skr_err
decode_one(enum amd_ext which, struct skr_span v, struct skr_vcek_ext *e)
{
    uint8_t sv = 0;

    switch (which) {
    case EXT_STRUCT_VERSION:
        TRY(skr_vcek_ext_int(v, &sv));
        e->struct_version = sv;
        e->has_struct_version = true;
        return SKR_OK;
    case EXT_PRODUCT_NAME:
        return skr_vcek_ext_ia5(v, e->product_name, sizeof(e->product_name));
    case EXT_BL:
        return ext_int(v, &e->has_bl, &e->bl);
    case EXT_TEE:
        return ext_int(v, &e->has_tee, &e->tee);
    case EXT_SNP:
        return ext_int(v, &e->has_snp, &e->snp);
    case EXT_UCODE:
        return ext_int(v, &e->has_ucode, &e->ucode);
    case EXT_FMC:
        return ext_int(v, &e->has_fmc, &e->fmc);
    case EXT_HWID:
        /* raw bytes: no inner tag (PROTOCOLS.md §2.3) */
        ENSURE(v.len >= 1 && v.len <= SKR_VCEK_HWID_MAX, SKR_E_MALFORMED, "bad length");
        memcpy(e->hwid, v.ptr, v.len);
        e->hwid_len = v.len;
        return SKR_OK;
    case EXT_CSP_ID:
        return skr_vcek_ext_ia5(v, e->csp_id, sizeof(e->csp_id));
    case EXT_COUNT_:
    default:
        FAIL(SKR_E_INTERNAL, "unknown extension");
    }
}

static int
find_amd_ext(const char *oid)
{
    size_t pl = strlen(AMD_OID_PREFIX);

    if (strncmp(oid, AMD_OID_PREFIX, pl) != 0) {
        return -1;
    }
    for (int i = 0; i < EXT_COUNT_; i++) {
        if (strcmp(oid + pl, amd_exts[i].suffix) == 0) {
            return i;
        }
    }
    return -1;
}

skr_err
skr_vcek_ext_decode(X509 *cert, struct skr_vcek_ext *ret)
{
    struct skr_vcek_ext e = { .has_struct_version = false };
    bool seen[EXT_COUNT_] = { false };
    char cn[64];
    int n;

    ENSURE(cert != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    n = X509_get_ext_count(cert);
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(cert, i);
        ASN1_OCTET_STRING *data;
        char oid[80];
        int olen;
        int which;
        skr_err err;

        if (ext == NULL) {
            continue;
        }
        olen = OBJ_obj2txt(oid, (int)sizeof(oid), X509_EXTENSION_get_object(ext), 1);
        if (olen <= 0 || (size_t)olen >= sizeof(oid)) {
            continue; /* not one of ours: ours are short */
        }
        which = find_amd_ext(oid);
        if (which < 0) {
            continue;
        }
        if (seen[which]) {
            FAILF(SKR_E_MALFORMED, "VCEK extension %s (%s) appears twice", amd_exts[which].name,
                  oid);
        }
        seen[which] = true;
        data = X509_EXTENSION_get_data(ext);
        ENSURE(data != NULL, SKR_E_MALFORMED, "VCEK extension without a value");
        err = decode_one(
            (enum amd_ext)which,
            skr_span_make(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data)), &e);
        if (err != SKR_OK) {
            char prefix[128];

            (void)snprintf(prefix, sizeof(prefix), "VCEK extension %s (%s)", amd_exts[which].name,
                           oid);
            return reraise(err, prefix);
        }
    }
    ERR_clear_error();
    skr_x509_cn(cert, cn, sizeof(cn));
    e.is_vlek = strcmp(cn, "SEV-VLEK") == 0;
    *ret = e;
    return SKR_OK;
}

enum skr_snp_product
skr_vcek_ext_product(const struct skr_vcek_ext *e)
{
    enum skr_snp_product p = SKR_SNP_PRODUCT_UNKNOWN;

    if (e == NULL || e->product_name[0] == '\0') {
        return SKR_SNP_PRODUCT_UNKNOWN;
    }
    if (skr_snp_product_parse(e->product_name, &p) != SKR_OK) {
        return SKR_SNP_PRODUCT_UNKNOWN;
    }
    return p;
}

uint64_t
skr_vcek_ext_tcb(const struct skr_vcek_ext *e, enum skr_snp_product p)
{
    struct skr_snp_tcb t = {
        .has_fmc = p == SKR_SNP_PRODUCT_TURIN,
        .fmc = e->fmc,
        .bootloader = e->bl,
        .tee = e->tee,
        .snp = e->snp,
        .microcode = e->ucode,
    };

    return skr_snp_tcb_encode(&t, p);
}

/* ---- KDS URLs ------------------------------------------------------------------------ */

#define KDS_BASE "https://kdsintf.amd.com"

static skr_err
kds_product(enum skr_snp_product p, const char **ret)
{
    switch (p) {
    case SKR_SNP_PRODUCT_MILAN:
    case SKR_SNP_PRODUCT_GENOA:
    case SKR_SNP_PRODUCT_TURIN:
        *ret = skr_snp_product_name(p);
        return SKR_OK;
    case SKR_SNP_PRODUCT_UNKNOWN:
    default:
        FAIL(SKR_E_INVALID_ARG, "product unknown: pass --product");
    }
}

skr_err
skr_kds_vcek_url(enum skr_snp_product p, const uint8_t chip_id[64], uint64_t reported_tcb,
                 struct skr_buf *out)
{
    const char *name = NULL;
    char hwid[2 * 64 + 1];
    struct skr_snp_tcb t;

    ENSURE(chip_id != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(kds_product(p, &name));
    skr_snp_tcb_decode(reported_tcb, p, &t);
    if (p == SKR_SNP_PRODUCT_TURIN) {
        skr_hex_fmt(chip_id, 8, hwid);
        return skr_buf_printf(out,
                              KDS_BASE "/vcek/v1/%s/%s?fmcSPL=%u&blSPL=%u&teeSPL=%u&snpSPL=%u"
                                       "&ucodeSPL=%u",
                              name, hwid, t.fmc, t.bootloader, t.tee, t.snp, t.microcode);
    }
    skr_hex_fmt(chip_id, 64, hwid);
    return skr_buf_printf(out, KDS_BASE "/vcek/v1/%s/%s?blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
                          name, hwid, t.bootloader, t.tee, t.snp, t.microcode);
}

static skr_err
kds_url(enum skr_snp_product p, bool vlek, const char *what, struct skr_buf *out)
{
    const char *name = NULL;

    ENSURE(out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(kds_product(p, &name));
    return skr_buf_printf(out, KDS_BASE "/%s/v1/%s/%s", vlek ? "vlek" : "vcek", name, what);
}

skr_err
skr_kds_chain_url(enum skr_snp_product p, bool vlek, struct skr_buf *out)
{
    return kds_url(p, vlek, "cert_chain", out);
}

skr_err
skr_kds_crl_url(enum skr_snp_product p, bool vlek, struct skr_buf *out)
{
    return kds_url(p, vlek, "crl", out);
}

/* ---- PEM / bundles ------------------------------------------------------------------- */

skr_err
skr_pem_read_certs(struct skr_span pem, STACK_OF(X509) * *ret)
{
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *sk = NULL;
    _cleanup_(BIO_free_allp) BIO *bio = NULL;
    unsigned long last;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(pem.len <= SKR_MAX_PEM_BYTES, SKR_E_TOO_LARGE, "PEM text exceeds the size limit");
    sk = sk_X509_new_null();
    ENSURE(sk != NULL, SKR_E_NOMEM, "out of memory");
    bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    ENSURE(bio != NULL, SKR_E_NOMEM, "out of memory");
    ERR_clear_error();
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x == NULL) {
            break;
        }
        if (sk_X509_num(sk) == SKR_MAX_CERT_CHAIN) {
            X509_free(x);
            FAILF(SKR_E_TOO_LARGE, "PEM: more than %d certificates", SKR_MAX_CERT_CHAIN);
        }
        if (sk_X509_push(sk, x) <= 0) {
            X509_free(x);
            FAIL(SKR_E_NOMEM, "out of memory");
        }
    }
    /* The loop ends with "no start line" at the end of the text; anything else is damage. */
    last = ERR_peek_last_error();
    if (last != 0 &&
        !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
        skr_err e = skr_err_at(SKR_E_MALFORMED, __FILE__, __LINE__, "PEM: damaged certificate");

        skr_err_add_ossl();
        return e;
    }
    ERR_clear_error();
    ENSURE(sk_X509_num(sk) > 0, SKR_E_MALFORMED, "PEM: no certificate found");
    *ret = TAKE_PTR(sk);
    return SKR_OK;
}

skr_err
skr_pem_write_cert(X509 *cert, struct skr_buf *out)
{
    _cleanup_(BIO_free_allp) BIO *bio = NULL;
    char *p = NULL;
    long n;

    ENSURE(cert != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    bio = BIO_new(BIO_s_mem());
    ENSURE(bio != NULL, SKR_E_NOMEM, "out of memory");
    TRY_OSSL(PEM_write_bio_X509(bio, cert), SKR_E_INTERNAL, "PEM_write_bio_X509 failed");
    n = BIO_get_mem_data(bio, &p);
    ENSURE(n > 0 && p != NULL, SKR_E_INTERNAL, "PEM_write_bio_X509 wrote nothing");
    return skr_buf_append(out, p, (size_t)n);
}

skr_err
skr_pem_write_key(EVP_PKEY *key, struct skr_buf *out)
{
    _cleanup_(BIO_free_allp) BIO *bio = NULL;
    char *p = NULL;
    long n;

    ENSURE(key != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    bio = BIO_new(BIO_s_secmem());
    ENSURE(bio != NULL, SKR_E_NOMEM, "out of memory");
    TRY_OSSL(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), SKR_E_INTERNAL,
             "cannot encode a private key");
    n = BIO_get_mem_data(bio, &p);
    ENSURE(n > 0 && p != NULL, SKR_E_INTERNAL, "PEM_write_bio_PrivateKey wrote nothing");
    return skr_buf_append(out, p, (size_t)n);
}

void
skr_x509_cn(X509 *cert, char *out, size_t cap)
{
    X509_NAME *name;
    X509_NAME_ENTRY *ent;
    ASN1_STRING *data;
    unsigned char *utf8 = NULL;
    int idx;
    int n;
    size_t k = 0;

    if (out == NULL || cap == 0) {
        return;
    }
    out[0] = '\0';
    if (cert == NULL || (name = X509_get_subject_name(cert)) == NULL) {
        return;
    }
    idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    ent = idx >= 0 ? X509_NAME_get_entry(name, idx) : NULL;
    data = ent != NULL ? X509_NAME_ENTRY_get_data(ent) : NULL;
    if (data == NULL) {
        return;
    }
    n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0 || utf8 == NULL) {
        ERR_clear_error();
        return;
    }
    /* Printable ASCII only: the name may end up in a message. */
    for (int i = 0; i < n && k + 1 < cap; i++) {
        out[k++] = (utf8[i] >= 0x20 && utf8[i] < 0x7f) ? (char)utf8[i] : '?';
    }
    out[k] = '\0';
    OPENSSL_free(utf8);
}

static const char *const product_names[] = { "Milan", "Genoa", "Turin" };

static bool
is_product(const char *s)
{
    for (size_t i = 0; i < SKR_ARRAY_LEN(product_names); i++) {
        if (strcmp(s, product_names[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool
has_prefix(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);

    if (strncmp(s, prefix, n) != 0) {
        return false;
    }
    *rest = s + n;
    return true;
}

/* Role of a certificate in a bundle by its subject CN. */
static skr_err
cert_role(X509 *cert, enum skr_cert_kind *ret)
{
    char cn[64];
    const char *rest = NULL;

    skr_x509_cn(cert, cn, sizeof(cn));
    if (strcmp(cn, "SEV-VCEK") == 0) {
        *ret = SKR_CERT_VCEK;
        return SKR_OK;
    }
    if (strcmp(cn, "SEV-VLEK") == 0) {
        *ret = SKR_CERT_VLEK;
        return SKR_OK;
    }
    if (has_prefix(cn, "ARK-", &rest) && is_product(rest)) {
        *ret = SKR_CERT_ARK;
        return SKR_OK;
    }
    if ((has_prefix(cn, "SEV-VLEK-", &rest) && is_product(rest)) ||
        (has_prefix(cn, "SEV-", &rest) && is_product(rest))) {
        *ret = SKR_CERT_ASK;
        return SKR_OK;
    }
    FAILF(SKR_E_MALFORMED, "certificate with unexpected subject CN '%s'", cn);
}

/* Puts cert (a new reference is taken) into its slot; duplicates are an error. */
static skr_err
set_put(struct skr_cert_set *s, X509 *cert, enum skr_cert_kind kind)
{
    X509 **slot;

    switch (kind) {
    case SKR_CERT_VCEK:
    case SKR_CERT_VLEK:
        slot = &s->vcek;
        break;
    case SKR_CERT_ASK:
        slot = &s->ask;
        break;
    case SKR_CERT_ARK:
        slot = &s->ark;
        break;
    case SKR_CERT_OTHER:
    default:
        return SKR_OK;
    }
    if (*slot != NULL) {
        FAILF(SKR_E_MALFORMED, "more than one %s certificate",
              kind == SKR_CERT_ASK   ? "ASK/ASVK"
              : kind == SKR_CERT_ARK ? "ARK"
                                     : "VCEK/VLEK");
    }
    TRY_OSSL(X509_up_ref(cert), SKR_E_INTERNAL, "X509_up_ref failed");
    *slot = cert;
    return SKR_OK;
}

static skr_err
set_add_pem(struct skr_cert_set *s, struct skr_span pem)
{
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *sk = NULL;

    TRY(skr_pem_read_certs(pem, &sk));
    for (int i = 0; i < sk_X509_num(sk); i++) {
        X509 *x = sk_X509_value(sk, i);
        enum skr_cert_kind kind = SKR_CERT_OTHER;

        TRY(cert_role(x, &kind));
        TRY(set_put(s, x, kind));
    }
    return SKR_OK;
}

static skr_err
set_from_thim(const struct skr_thim *t, struct skr_cert_set *s)
{
    skr_err e = set_add_pem(s, skr_span_str(t->vcek_pem));

    if (e != SKR_OK) {
        return reraise(e, "THIM vcekCert");
    }
    e = set_add_pem(s, skr_span_str(t->chain_pem));
    if (e != SKR_OK) {
        return reraise(e, "THIM certificateChain");
    }
    s->has_tcbm = true;
    s->tcbm = t->tcbm;
    return SKR_OK;
}

/* A whole DER certificate, nothing after it. */
static skr_err
d2i_exact(struct skr_span der, X509 **ret)
{
    const unsigned char *p = der.ptr;
    X509 *x;

    ENSURE(der.len > 0 && der.len <= SKR_MAX_CERT_BYTES, SKR_E_MALFORMED,
           "DER certificate: bad length");
    x = d2i_X509(NULL, &p, (long)der.len);
    if (x == NULL) {
        skr_err e = skr_err_at(SKR_E_MALFORMED, __FILE__, __LINE__, "DER certificate: invalid");

        skr_err_add_ossl();
        return e;
    }
    if ((size_t)(p - der.ptr) != der.len) {
        X509_free(x);
        FAIL(SKR_E_MALFORMED, "DER certificate: trailing bytes");
    }
    *ret = x;
    return SKR_OK;
}

skr_err
skr_cert_set_from_table(const struct skr_cert_table *t, struct skr_cert_set *ret)
{
    _cleanup_(skr_cert_set_done) struct skr_cert_set s = { 0 };

    ENSURE(t != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    for (size_t i = 0; i < t->n && i < SKR_MAX_CERT_TABLE_ENTRIES; i++) {
        _cleanup_(X509_freep) X509 *x = NULL;
        skr_err e;

        if (t->entries[i].kind == SKR_CERT_OTHER) {
            continue;
        }
        e = d2i_exact(t->entries[i].der, &x);
        if (e == SKR_OK) {
            e = set_put(&s, x, t->entries[i].kind);
        }
        if (e != SKR_OK) {
            char prefix[64];

            (void)snprintf(prefix, sizeof(prefix), "certificate table entry %zu (%s)", i,
                           skr_cert_kind_name(t->entries[i].kind));
            return reraise(e, prefix);
        }
    }
    ENSURE(s.vcek != NULL, SKR_E_MALFORMED, "no VCEK/VLEK certificate in certificate table");
    *ret = s;
    s = (struct skr_cert_set){ 0 };
    return SKR_OK;
}

static bool
is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
starts_with(struct skr_span s, const char *prefix)
{
    size_t n = strlen(prefix);

    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

static bool
looks_like_table(struct skr_span s)
{
    return s.len >= CERT_TABLE_ENTRY_LEN && kind_from_guid(s.ptr) != SKR_CERT_OTHER;
}

static skr_err
load_any(struct skr_span file, struct skr_cert_set *s, const char **what)
{
    struct skr_span text;

    ENSURE(file.len > 0, SKR_E_MALFORMED, "certificate file is empty");
    /* Binary forms first, on the bytes as given. */
    if (file.ptr[0] == 0x30) {
        _cleanup_(X509_freep) X509 *x = NULL;

        if (d2i_exact(file, &x) == SKR_OK) {
            enum skr_cert_kind kind = SKR_CERT_OTHER;

            *what = "DER certificate";
            TRY(cert_role(x, &kind));
            return set_put(s, x, kind);
        }
        ERR_clear_error();
    }
    if (looks_like_table(file)) {
        struct skr_cert_table t;

        *what = "certificate table";
        TRY(skr_cert_table_parse(file, &t));
        return skr_cert_set_from_table(&t, s);
    }
    {
        struct skr_rd rd;
        size_t ws = 0;

        while (ws < file.len && is_ws(file.ptr[ws])) {
            ws++;
        }
        skr_rd_init(&rd, file);
        TRY(skr_rd_skip(&rd, ws));
        TRY(skr_rd_bytes(&rd, skr_rd_left(&rd), &text));
    }
    ENSURE(text.len > 0, SKR_E_MALFORMED, "certificate file is empty");
    if (starts_with(text, "-----BEGIN")) {
        *what = "PEM bundle";
        return set_add_pem(s, text);
    }
    if (text.ptr[0] == '{') {
        _cleanup_(skr_thim_done) struct skr_thim t = { 0 };

        *what = "THIM JSON";
        TRY(skr_thim_parse(text, &t));
        return set_from_thim(&t, s);
    }
    {
        _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
        _cleanup_(skr_thim_done) struct skr_thim t = { 0 };

        skr_buf_init(&json, SKR_MAX_JSON_BYTES);
        if (skr_b64_decode(text, SKR_B64_STD | SKR_B64_SKIP_WS, &json) != SKR_OK || json.len == 0 ||
            json.ptr[0] != '{') {
            FAIL(SKR_E_MALFORMED, "unrecognised certificate file (expected PEM, DER, THIM JSON, "
                                  "host-amd-cert-base64 or a certificate table)");
        }
        *what = "host-amd-cert-base64";
        TRY(skr_thim_parse(skr_buf_span(&json), &t));
        return set_from_thim(&t, s);
    }
}

skr_err
skr_cert_set_load(struct skr_span file, struct skr_cert_set *ret)
{
    _cleanup_(skr_cert_set_done) struct skr_cert_set s = { 0 };
    const char *what = "input";

    ENSURE(ret != NULL && (file.ptr != NULL || file.len == 0), SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(file.len <= SKR_MAX_FILE_BYTES, SKR_E_TOO_LARGE, "certificate file exceeds the limit");
    TRY(load_any(file, &s, &what));
    if (s.vcek == NULL) {
        FAILF(SKR_E_MALFORMED, "no VCEK/VLEK certificate in %s", what);
    }
    *ret = s;
    s = (struct skr_cert_set){ 0 };
    return SKR_OK;
}

void
skr_cert_set_done(struct skr_cert_set *s)
{
    if (s == NULL) {
        return;
    }
    X509_free(s->vcek);
    X509_free(s->ask);
    X509_free(s->ark);
    *s = (struct skr_cert_set){ 0 };
}
