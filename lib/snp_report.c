/*
 * snp_report.c - the SEV-SNP ATTESTATION_REPORT: parse, serialize, load from a file, and
 * present as JSON or text; TCB_VERSION decoding; product names.
 *
 * Layout: AMD SEV-SNP Firmware ABI spec 56860, "ATTESTATION_REPORT Structure", versions 2..5,
 * as in PROTOCOLS.md §2.1; TCB_VERSION per §2.2. The wire layout exists only as the offsets
 * below. Reserved ranges are kept verbatim so that serialize(parse(x)) == x for every input that
 * parses; they are not checked here (verification decides what to make of them).
 */
#include "snp_report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "json.h"

/* Wire offsets (SNP ABI 56860 Table "ATTESTATION_REPORT Structure"). */
#define OFF_VERSION            0x000u
#define OFF_GUEST_SVN          0x004u
#define OFF_POLICY             0x008u
#define OFF_FAMILY_ID          0x010u
#define OFF_IMAGE_ID           0x020u
#define OFF_VMPL               0x030u
#define OFF_SIG_ALGO           0x034u
#define OFF_CURRENT_TCB        0x038u
#define OFF_PLATFORM_INFO      0x040u
#define OFF_SIGNER_INFO        0x048u
#define OFF_RESERVED_04C       0x04Cu
#define OFF_REPORT_DATA        0x050u
#define OFF_MEASUREMENT        0x090u
#define OFF_HOST_DATA          0x0C0u
#define OFF_ID_KEY_DIGEST      0x0E0u
#define OFF_AUTHOR_KEY_DIGEST  0x110u
#define OFF_REPORT_ID          0x140u
#define OFF_REPORT_ID_MA       0x160u
#define OFF_REPORTED_TCB       0x180u
#define OFF_CPUID_FAM_ID       0x188u
#define OFF_CPUID_MOD_ID       0x189u
#define OFF_CPUID_STEP         0x18Au
#define OFF_RESERVED_18B       0x18Bu
#define OFF_CHIP_ID            0x1A0u
#define OFF_COMMITTED_TCB      0x1E0u
#define OFF_CURRENT_BUILD      0x1E8u
#define OFF_CURRENT_MINOR      0x1E9u
#define OFF_CURRENT_MAJOR      0x1EAu
#define OFF_RESERVED_1EB       0x1EBu
#define OFF_COMMITTED_BUILD    0x1ECu
#define OFF_COMMITTED_MINOR    0x1EDu
#define OFF_COMMITTED_MAJOR    0x1EEu
#define OFF_RESERVED_1EF       0x1EFu
#define OFF_LAUNCH_TCB         0x1F0u
#define OFF_LAUNCH_MIT_VECTOR  0x1F8u
#define OFF_CURRENT_MIT_VECTOR 0x200u
#define OFF_RESERVED_208       0x208u
#define OFF_SIG_R              0x2A0u
#define OFF_SIG_S              0x2E8u
#define OFF_SIG_RESERVED       0x330u

/* r and s are 72-byte little-endian integers of which the low 48 bytes are significant. */
#define SIG_COMPONENT_BYTES 48u

_Static_assert(OFF_SIG_R == SKR_SNP_REPORT_SIGNED_LEN, "signature starts after signed bytes");
_Static_assert(OFF_SIG_RESERVED + 368u == SKR_SNP_REPORT_LEN, "report is 0x4A0 bytes");

/* Products */

const char *
skr_snp_product_name(enum skr_snp_product p)
{
    switch (p) {
    case SKR_SNP_PRODUCT_MILAN:
        return "Milan";
    case SKR_SNP_PRODUCT_GENOA:
        return "Genoa";
    case SKR_SNP_PRODUCT_TURIN:
        return "Turin";
    case SKR_SNP_PRODUCT_UNKNOWN:
    default:
        return "unknown";
    }
}

/* True when s is name (any case), alone or followed by "-<stepping>" (a KDS productName). */
static bool
product_matches(const char *s, const char *name)
{
    size_t n = strlen(name);

    if (strncasecmp(s, name, n) != 0) {
        return false;
    }
    return s[n] == '\0' || (s[n] == '-' && s[n + 1] != '\0');
}

skr_err
skr_snp_product_parse(const char *s, enum skr_snp_product *ret)
{
    static const enum skr_snp_product all[] = {
        SKR_SNP_PRODUCT_MILAN,
        SKR_SNP_PRODUCT_GENOA,
        SKR_SNP_PRODUCT_TURIN,
    };

    ENSURE(s != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    for (size_t i = 0; i < SKR_ARRAY_LEN(all); i++) {
        if (product_matches(s, skr_snp_product_name(all[i]))) {
            *ret = all[i];
            return SKR_OK;
        }
    }
    FAIL(SKR_E_INVALID_ARG, "unknown SEV-SNP product (expected Milan, Genoa or Turin)");
}

enum skr_snp_product
skr_snp_product_from_cpuid(uint8_t fam, uint8_t mod)
{
    /* go-sev-guest: milanModel = 0|1, genoaModel = (1<<4)|1; Turin is family 0x1A. */
    if (fam == 0x19 && mod <= 0x0F) {
        return SKR_SNP_PRODUCT_MILAN;
    }
    if (fam == 0x19 && mod >= 0x10 && mod <= 0x1F) {
        return SKR_SNP_PRODUCT_GENOA;
    }
    if (fam == 0x1A && mod <= 0x1F) {
        return SKR_SNP_PRODUCT_TURIN;
    }
    return SKR_SNP_PRODUCT_UNKNOWN;
}

enum skr_snp_product
skr_snp_report_product(const struct skr_snp_report *r)
{
    /* v2 reports carry no CPUID bytes (0x188..0x18A are reserved there). */
    if (r->version < 3) {
        return SKR_SNP_PRODUCT_UNKNOWN;
    }
    return skr_snp_product_from_cpuid(r->cpuid_fam_id, r->cpuid_mod_id);
}

/* TCB_VERSION (PROTOCOLS.md §2.2) */

static uint8_t
tcb_byte(uint64_t raw, unsigned idx)
{
    return (uint8_t)((raw >> (8u * idx)) & 0xffu);
}

void
skr_snp_tcb_decode(uint64_t raw, enum skr_snp_product p, struct skr_snp_tcb *ret)
{
    struct skr_snp_tcb t = { .raw = raw };

    if (p == SKR_SNP_PRODUCT_TURIN) {
        t.has_fmc = true;
        t.fmc = tcb_byte(raw, 0);
        t.bootloader = tcb_byte(raw, 1);
        t.tee = tcb_byte(raw, 2);
        t.snp = tcb_byte(raw, 3);
        t.microcode = tcb_byte(raw, 7);
    } else {
        t.bootloader = tcb_byte(raw, 0);
        t.tee = tcb_byte(raw, 1);
        t.snp = tcb_byte(raw, 6);
        t.microcode = tcb_byte(raw, 7);
    }
    *ret = t;
}

uint64_t
skr_snp_tcb_encode(const struct skr_snp_tcb *tcb, enum skr_snp_product p)
{
    if (p == SKR_SNP_PRODUCT_TURIN) {
        return (uint64_t)tcb->fmc | (uint64_t)tcb->bootloader << 8 | (uint64_t)tcb->tee << 16 |
               (uint64_t)tcb->snp << 24 | (uint64_t)tcb->microcode << 56;
    }
    return (uint64_t)tcb->bootloader | (uint64_t)tcb->tee << 8 | (uint64_t)tcb->snp << 48 |
           (uint64_t)tcb->microcode << 56;
}

void
skr_snp_tcb_tcbm(uint64_t raw, char out[17])
{
    int n = snprintf(out, 17, "%016" PRIX64, raw);

    if (n != 16) {
        out[0] = '\0';
    }
}

/* Parse / serialize */

static skr_err
parse_body(struct skr_rd *rd, struct skr_snp_report *r)
{
    TRY(skr_rd_u32le(rd, &r->guest_svn));                                     /* 0x004 */
    TRY(skr_rd_u64le(rd, &r->policy));                                        /* 0x008 */
    TRY(skr_rd_copy(rd, r->family_id, sizeof(r->family_id)));                 /* 0x010 */
    TRY(skr_rd_copy(rd, r->image_id, sizeof(r->image_id)));                   /* 0x020 */
    TRY(skr_rd_u32le(rd, &r->vmpl));                                          /* 0x030 */
    TRY(skr_rd_u32le(rd, &r->sig_algo));                                      /* 0x034 */
    TRY(skr_rd_u64le(rd, &r->current_tcb));                                   /* 0x038 */
    TRY(skr_rd_u64le(rd, &r->platform_info));                                 /* 0x040 */
    TRY(skr_rd_u32le(rd, &r->signer_info));                                   /* 0x048 */
    TRY(skr_rd_u32le(rd, &r->reserved_04c));                                  /* 0x04C */
    TRY(skr_rd_copy(rd, r->report_data, sizeof(r->report_data)));             /* 0x050 */
    TRY(skr_rd_copy(rd, r->measurement, sizeof(r->measurement)));             /* 0x090 */
    TRY(skr_rd_copy(rd, r->host_data, sizeof(r->host_data)));                 /* 0x0C0 */
    TRY(skr_rd_copy(rd, r->id_key_digest, sizeof(r->id_key_digest)));         /* 0x0E0 */
    TRY(skr_rd_copy(rd, r->author_key_digest, sizeof(r->author_key_digest))); /* 0x110 */
    TRY(skr_rd_copy(rd, r->report_id, sizeof(r->report_id)));                 /* 0x140 */
    TRY(skr_rd_copy(rd, r->report_id_ma, sizeof(r->report_id_ma)));           /* 0x160 */
    TRY(skr_rd_u64le(rd, &r->reported_tcb));                                  /* 0x180 */
    TRY(skr_rd_u8(rd, &r->cpuid_fam_id));                                     /* 0x188 */
    TRY(skr_rd_u8(rd, &r->cpuid_mod_id));                                     /* 0x189 */
    TRY(skr_rd_u8(rd, &r->cpuid_step));                                       /* 0x18A */
    TRY(skr_rd_copy(rd, r->reserved_18b, sizeof(r->reserved_18b)));           /* 0x18B */
    TRY(skr_rd_copy(rd, r->chip_id, sizeof(r->chip_id)));                     /* 0x1A0 */
    TRY(skr_rd_u64le(rd, &r->committed_tcb));                                 /* 0x1E0 */
    TRY(skr_rd_u8(rd, &r->current_build));                                    /* 0x1E8 */
    TRY(skr_rd_u8(rd, &r->current_minor));                                    /* 0x1E9 */
    TRY(skr_rd_u8(rd, &r->current_major));                                    /* 0x1EA */
    TRY(skr_rd_u8(rd, &r->reserved_1eb));                                     /* 0x1EB */
    TRY(skr_rd_u8(rd, &r->committed_build));                                  /* 0x1EC */
    TRY(skr_rd_u8(rd, &r->committed_minor));                                  /* 0x1ED */
    TRY(skr_rd_u8(rd, &r->committed_major));                                  /* 0x1EE */
    TRY(skr_rd_u8(rd, &r->reserved_1ef));                                     /* 0x1EF */
    TRY(skr_rd_u64le(rd, &r->launch_tcb));                                    /* 0x1F0 */
    TRY(skr_rd_u64le(rd, &r->launch_mit_vector));                             /* 0x1F8 */
    TRY(skr_rd_u64le(rd, &r->current_mit_vector));                            /* 0x200 */
    TRY(skr_rd_copy(rd, r->reserved_208, sizeof(r->reserved_208)));           /* 0x208 */
    ENSURE(rd->off == SKR_SNP_REPORT_SIGNED_LEN, SKR_E_INTERNAL, "report layout drift");
    TRY(skr_rd_copy(rd, r->sig_r, sizeof(r->sig_r)));               /* 0x2A0 */
    TRY(skr_rd_copy(rd, r->sig_s, sizeof(r->sig_s)));               /* 0x2E8 */
    TRY(skr_rd_copy(rd, r->sig_reserved, sizeof(r->sig_reserved))); /* 0x330 */
    ENSURE(rd->off == SKR_SNP_REPORT_LEN, SKR_E_INTERNAL, "report layout drift");
    return SKR_OK;
}

skr_err
skr_snp_report_parse(struct skr_span in, struct skr_snp_report *ret)
{
    struct skr_snp_report r = { 0 };
    struct skr_rd rd;

    ENSURE(ret != NULL && (in.ptr != NULL || in.len == 0), SKR_E_INVALID_ARG, "NULL argument");
    if (in.len < SKR_SNP_REPORT_LEN) {
        FAILF(SKR_E_TRUNCATED, "attestation report is %zu bytes, expected %u", in.len,
              SKR_SNP_REPORT_LEN);
    }
    if (in.len > SKR_SNP_REPORT_LEN) {
        FAILF(SKR_E_TOO_LARGE, "attestation report is %zu bytes, expected %u", in.len,
              SKR_SNP_REPORT_LEN);
    }

    skr_rd_init(&rd, in);
    TRY(skr_rd_u32le(&rd, &r.version)); /* 0x000 */
    if (r.version < SKR_SNP_REPORT_MIN_VERSION || r.version > SKR_SNP_REPORT_MAX_VERSION) {
        FAILF(SKR_E_UNSUPPORTED, "report version %" PRIu32 " not supported (%u..%u)", r.version,
              SKR_SNP_REPORT_MIN_VERSION, SKR_SNP_REPORT_MAX_VERSION);
    }
    TRY(parse_body(&rd, &r));

    *ret = r;
    return SKR_OK;
}

void
skr_snp_report_serialize(const struct skr_snp_report *r, uint8_t out[SKR_SNP_REPORT_LEN])
{
    skr_put_u32le(out + OFF_VERSION, r->version);
    skr_put_u32le(out + OFF_GUEST_SVN, r->guest_svn);
    skr_put_u64le(out + OFF_POLICY, r->policy);
    memcpy(out + OFF_FAMILY_ID, r->family_id, sizeof(r->family_id));
    memcpy(out + OFF_IMAGE_ID, r->image_id, sizeof(r->image_id));
    skr_put_u32le(out + OFF_VMPL, r->vmpl);
    skr_put_u32le(out + OFF_SIG_ALGO, r->sig_algo);
    skr_put_u64le(out + OFF_CURRENT_TCB, r->current_tcb);
    skr_put_u64le(out + OFF_PLATFORM_INFO, r->platform_info);
    skr_put_u32le(out + OFF_SIGNER_INFO, r->signer_info);
    skr_put_u32le(out + OFF_RESERVED_04C, r->reserved_04c);
    memcpy(out + OFF_REPORT_DATA, r->report_data, sizeof(r->report_data));
    memcpy(out + OFF_MEASUREMENT, r->measurement, sizeof(r->measurement));
    memcpy(out + OFF_HOST_DATA, r->host_data, sizeof(r->host_data));
    memcpy(out + OFF_ID_KEY_DIGEST, r->id_key_digest, sizeof(r->id_key_digest));
    memcpy(out + OFF_AUTHOR_KEY_DIGEST, r->author_key_digest, sizeof(r->author_key_digest));
    memcpy(out + OFF_REPORT_ID, r->report_id, sizeof(r->report_id));
    memcpy(out + OFF_REPORT_ID_MA, r->report_id_ma, sizeof(r->report_id_ma));
    skr_put_u64le(out + OFF_REPORTED_TCB, r->reported_tcb);
    out[OFF_CPUID_FAM_ID] = r->cpuid_fam_id;
    out[OFF_CPUID_MOD_ID] = r->cpuid_mod_id;
    out[OFF_CPUID_STEP] = r->cpuid_step;
    memcpy(out + OFF_RESERVED_18B, r->reserved_18b, sizeof(r->reserved_18b));
    memcpy(out + OFF_CHIP_ID, r->chip_id, sizeof(r->chip_id));
    skr_put_u64le(out + OFF_COMMITTED_TCB, r->committed_tcb);
    out[OFF_CURRENT_BUILD] = r->current_build;
    out[OFF_CURRENT_MINOR] = r->current_minor;
    out[OFF_CURRENT_MAJOR] = r->current_major;
    out[OFF_RESERVED_1EB] = r->reserved_1eb;
    out[OFF_COMMITTED_BUILD] = r->committed_build;
    out[OFF_COMMITTED_MINOR] = r->committed_minor;
    out[OFF_COMMITTED_MAJOR] = r->committed_major;
    out[OFF_RESERVED_1EF] = r->reserved_1ef;
    skr_put_u64le(out + OFF_LAUNCH_TCB, r->launch_tcb);
    skr_put_u64le(out + OFF_LAUNCH_MIT_VECTOR, r->launch_mit_vector);
    skr_put_u64le(out + OFF_CURRENT_MIT_VECTOR, r->current_mit_vector);
    memcpy(out + OFF_RESERVED_208, r->reserved_208, sizeof(r->reserved_208));
    memcpy(out + OFF_SIG_R, r->sig_r, sizeof(r->sig_r));
    memcpy(out + OFF_SIG_S, r->sig_s, sizeof(r->sig_s));
    memcpy(out + OFF_SIG_RESERVED, r->sig_reserved, sizeof(r->sig_reserved));
}

/* Loading from a file */

#define LOAD_EXPECTED "expected a 1184-byte binary report or 2368 hex digits"

/* The whitespace skr_hex_decode skips. */
static bool
is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
is_hex_digit(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Counts hex digits; *ret_bad is the offset of the first byte that is neither a hex digit nor
 * whitespace, or s.len when there is none. */
static size_t
count_hex_digits(struct skr_span s, size_t *ret_bad)
{
    size_t digits = 0;

    *ret_bad = s.len;
    for (size_t i = 0; i < s.len; i++) {
        if (is_hex_digit(s.ptr[i])) {
            digits++;
        } else if (!is_space(s.ptr[i])) {
            *ret_bad = i;
            return digits;
        }
    }
    return digits;
}

/* Text files are printable ASCII and whitespace; anything else means binary. */
static bool
looks_binary(struct skr_span s)
{
    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];

        if (!is_space(c) && (c < 0x20 || c > 0x7e)) {
            return true;
        }
    }
    return false;
}

static skr_err
load_hex(struct skr_span file, struct skr_snp_report *r, uint8_t raw[SKR_SNP_REPORT_LEN])
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    size_t bad = 0;
    size_t digits = count_hex_digits(file, &bad);

    if (bad < file.len) {
        if (looks_binary(file)) {
            FAILF(file.len < SKR_SNP_REPORT_LEN ? SKR_E_TRUNCATED : SKR_E_TOO_LARGE,
                  "report file is %zu bytes of binary data: " LOAD_EXPECTED, file.len);
        }
        FAILF(SKR_E_MALFORMED, "report text has a non-hex character at offset %zu: " LOAD_EXPECTED,
              bad);
    }
    if (digits != 2u * SKR_SNP_REPORT_LEN) {
        FAILF(digits < 2u * SKR_SNP_REPORT_LEN ? SKR_E_TRUNCATED : SKR_E_TOO_LARGE,
              "report text has %zu hex digits: " LOAD_EXPECTED, digits);
    }

    /* skr_hex_decode reserves half the text length, whitespace included. */
    skr_buf_init(&b, file.len / 2 + 1);
    TRY(skr_hex_decode(file, true, &b));
    ENSURE(b.len == SKR_SNP_REPORT_LEN, SKR_E_INTERNAL, "hex report decoded to the wrong length");
    TRY(skr_snp_report_parse(skr_buf_span(&b), r));
    memcpy(raw, b.ptr, SKR_SNP_REPORT_LEN);
    return SKR_OK;
}

skr_err
skr_snp_report_load(struct skr_span file, struct skr_snp_report *ret,
                    uint8_t raw_out[SKR_SNP_REPORT_LEN])
{
    struct skr_snp_report r = { 0 };
    uint8_t raw[SKR_SNP_REPORT_LEN] = { 0 };
    size_t bad = 0;

    ENSURE(ret != NULL && (file.ptr != NULL || file.len == 0), SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(file.len > 0, SKR_E_TRUNCATED, "report file is empty: " LOAD_EXPECTED);

    (void)count_hex_digits(file, &bad);
    if (file.len == SKR_SNP_REPORT_LEN && bad < file.len) {
        TRY(skr_snp_report_parse(file, &r));
        memcpy(raw, file.ptr, SKR_SNP_REPORT_LEN);
    } else {
        TRY(load_hex(file, &r, raw));
    }

    *ret = r;
    if (raw_out != NULL) {
        memcpy(raw_out, raw, SKR_SNP_REPORT_LEN);
    }
    return SKR_OK;
}

/* JSON */

static skr_err
set_new(json_t *obj, const char *key, json_t *v)
{
    ENSURE(v != NULL, SKR_E_NOMEM, "out of memory building JSON");
    return skr_json_set(obj, key, v);
}

static skr_err
set_int(json_t *obj, const char *key, uint64_t v)
{
    /* Only used for values of at most 32 bits, which fit json_int_t. */
    return set_new(obj, key, json_integer((json_int_t)v));
}

static skr_err
set_bool(json_t *obj, const char *key, bool v)
{
    return set_new(obj, key, json_boolean(v));
}

static skr_err
set_str(json_t *obj, const char *key, const char *s)
{
    return set_new(obj, key, json_string(s));
}

static skr_err
set_hex64(json_t *obj, const char *key, uint64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof(s), "0x%" PRIx64, v);

    ENSURE(n > 0 && (size_t)n < sizeof(s), SKR_E_INTERNAL, "number formatting failed");
    return set_str(obj, key, s);
}

static skr_err
new_obj(json_t **ret)
{
    *ret = json_object();
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory building JSON");
    return SKR_OK;
}

static skr_err
json_policy(uint64_t p, json_t *parent)
{
    _cleanup_(json_decrefp) json_t *o = NULL;

    TRY(new_obj(&o));
    TRY(set_hex64(o, "raw", p));
    TRY(set_int(o, "abi_major", SKR_SNP_POLICY_ABI_MAJOR(p)));
    TRY(set_int(o, "abi_minor", SKR_SNP_POLICY_ABI_MINOR(p)));
    TRY(set_bool(o, "smt", (p & SKR_SNP_POLICY_SMT) != 0));
    TRY(set_bool(o, "reserved_must_be_one", (p & SKR_SNP_POLICY_RESERVED_1) != 0));
    TRY(set_bool(o, "migrate_ma", (p & SKR_SNP_POLICY_MIGRATE_MA) != 0));
    TRY(set_bool(o, "debug", (p & SKR_SNP_POLICY_DEBUG) != 0));
    TRY(set_bool(o, "single_socket", (p & SKR_SNP_POLICY_SINGLE_SOCKET) != 0));
    TRY(set_bool(o, "cxl_allow", (p & SKR_SNP_POLICY_CXL_ALLOW) != 0));
    TRY(set_bool(o, "mem_aes_256_xts", (p & SKR_SNP_POLICY_MEM_AES_256_XTS) != 0));
    TRY(set_bool(o, "rapl_dis", (p & SKR_SNP_POLICY_RAPL_DIS) != 0));
    TRY(set_bool(o, "ciphertext_hiding", (p & SKR_SNP_POLICY_CIPHERTEXT_HIDING) != 0));
    TRY(set_bool(o, "page_swap_disable", (p & SKR_SNP_POLICY_PAGE_SWAP_DISABLE) != 0));
    return skr_json_set(parent, "policy", TAKE_PTR(o));
}

static skr_err
json_platform_info(uint64_t pi, json_t *parent)
{
    _cleanup_(json_decrefp) json_t *o = NULL;

    TRY(new_obj(&o));
    TRY(set_hex64(o, "raw", pi));
    TRY(set_bool(o, "smt_en", (pi & SKR_SNP_PLATFORM_SMT_EN) != 0));
    TRY(set_bool(o, "tsme_en", (pi & SKR_SNP_PLATFORM_TSME_EN) != 0));
    TRY(set_bool(o, "ecc_en", (pi & SKR_SNP_PLATFORM_ECC_EN) != 0));
    TRY(set_bool(o, "rapl_dis", (pi & SKR_SNP_PLATFORM_RAPL_DIS) != 0));
    TRY(set_bool(o, "ciphertext_hiding_en", (pi & SKR_SNP_PLATFORM_CIPHERTEXT_HIDING_EN) != 0));
    TRY(set_bool(o, "alias_check_complete", (pi & SKR_SNP_PLATFORM_ALIAS_CHECK_COMPLETE) != 0));
    TRY(set_bool(o, "tio_en", (pi & SKR_SNP_PLATFORM_TIO_EN) != 0));
    return skr_json_set(parent, "platform_info", TAKE_PTR(o));
}

/* "vcek", "vlek", "none" or "reserved(N)" into out (>= 16 bytes). */
static void
signing_key_name(uint32_t signer_info, char *out, size_t out_len)
{
    unsigned k = SKR_SNP_SIGNER_SIGNING_KEY(signer_info);
    const char *name = NULL;
    int n;

    if (k == SKR_SNP_SIGNING_KEY_VCEK) {
        name = "vcek";
    } else if (k == SKR_SNP_SIGNING_KEY_VLEK) {
        name = "vlek";
    } else if (k == SKR_SNP_SIGNING_KEY_NONE) {
        name = "none";
    }
    if (name != NULL) {
        n = snprintf(out, out_len, "%s", name);
    } else {
        n = snprintf(out, out_len, "reserved(%u)", k);
    }
    if (n < 0 || (size_t)n >= out_len) {
        out[0] = '\0';
    }
}

static skr_err
json_signer_info(uint32_t si, json_t *parent)
{
    _cleanup_(json_decrefp) json_t *o = NULL;
    char key[16];

    signing_key_name(si, key, sizeof(key));
    TRY(new_obj(&o));
    TRY(set_hex64(o, "raw", si));
    TRY(set_bool(o, "author_key_en", SKR_SNP_SIGNER_AUTHOR_KEY_EN(si) != 0));
    TRY(set_bool(o, "mask_chip_key", SKR_SNP_SIGNER_MASK_CHIP_KEY(si) != 0));
    TRY(set_str(o, "signing_key", key));
    return skr_json_set(parent, "signer_info", TAKE_PTR(o));
}

static skr_err
json_tcb(uint64_t raw, enum skr_snp_product p, const char *key, json_t *parent)
{
    _cleanup_(json_decrefp) json_t *o = NULL;
    struct skr_snp_tcb t;
    char tcbm[17];

    skr_snp_tcb_decode(raw, p, &t);
    skr_snp_tcb_tcbm(raw, tcbm);
    TRY(new_obj(&o));
    TRY(set_str(o, "raw", tcbm));
    TRY(set_int(o, "bootloader", t.bootloader));
    TRY(set_int(o, "tee", t.tee));
    TRY(set_int(o, "snp", t.snp));
    TRY(set_int(o, "microcode", t.microcode));
    if (t.has_fmc) {
        TRY(set_int(o, "fmc", t.fmc));
    }
    return skr_json_set(parent, key, TAKE_PTR(o));
}

static skr_err
json_version(uint8_t major, uint8_t minor, uint8_t build, const char *key, json_t *parent)
{
    char s[16];
    int n = snprintf(s, sizeof(s), "%u.%u.%u", major, minor, build);

    ENSURE(n > 0 && (size_t)n < sizeof(s), SKR_E_INTERNAL, "version formatting failed");
    return set_str(parent, key, s);
}

/* The 48 significant bytes of a 72-byte little-endian signature component, big-endian. */
static void
sig_component_be(const uint8_t le[72], uint8_t be[SIG_COMPONENT_BYTES])
{
    for (size_t i = 0; i < SIG_COMPONENT_BYTES; i++) {
        be[SIG_COMPONENT_BYTES - 1 - i] = le[i];
    }
}

static skr_err
json_signature(const struct skr_snp_report *r, json_t *parent)
{
    _cleanup_(json_decrefp) json_t *o = NULL;
    uint8_t be[SIG_COMPONENT_BYTES];

    TRY(new_obj(&o));
    sig_component_be(r->sig_r, be);
    TRY(skr_json_set_hex(o, "r", be, sizeof(be)));
    sig_component_be(r->sig_s, be);
    TRY(skr_json_set_hex(o, "s", be, sizeof(be)));
    return skr_json_set(parent, "signature", TAKE_PTR(o));
}

static skr_err
json_cpuid(const struct skr_snp_report *r, json_t *parent)
{
    _cleanup_(json_decrefp) json_t *o = NULL;

    TRY(new_obj(&o));
    TRY(set_int(o, "fam_id", r->cpuid_fam_id));
    TRY(set_int(o, "mod_id", r->cpuid_mod_id));
    TRY(set_int(o, "step", r->cpuid_step));
    return skr_json_set(parent, "cpuid", TAKE_PTR(o));
}

static skr_err
json_digests(const struct skr_snp_report *r, json_t *o)
{
    TRY(skr_json_set_hex(o, "report_data", r->report_data, sizeof(r->report_data)));
    TRY(skr_json_set_hex(o, "measurement", r->measurement, sizeof(r->measurement)));
    TRY(skr_json_set_hex(o, "host_data", r->host_data, sizeof(r->host_data)));
    TRY(skr_json_set_hex(o, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest)));
    TRY(skr_json_set_hex(o, "author_key_digest", r->author_key_digest,
                         sizeof(r->author_key_digest)));
    TRY(skr_json_set_hex(o, "report_id", r->report_id, sizeof(r->report_id)));
    TRY(skr_json_set_hex(o, "report_id_ma", r->report_id_ma, sizeof(r->report_id_ma)));
    return SKR_OK;
}

skr_err
skr_snp_report_to_json(const struct skr_snp_report *r, enum skr_snp_product p, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *o = NULL;

    ENSURE(r != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(new_obj(&o));
    TRY(set_int(o, "version", r->version));
    TRY(set_int(o, "guest_svn", r->guest_svn));
    TRY(json_policy(r->policy, o));
    TRY(skr_json_set_hex(o, "family_id", r->family_id, sizeof(r->family_id)));
    TRY(skr_json_set_hex(o, "image_id", r->image_id, sizeof(r->image_id)));
    TRY(set_int(o, "vmpl", r->vmpl));
    TRY(set_int(o, "signature_algo", r->sig_algo));
    TRY(json_tcb(r->current_tcb, p, "current_tcb", o));
    TRY(json_platform_info(r->platform_info, o));
    TRY(json_signer_info(r->signer_info, o));
    TRY(json_digests(r, o));
    TRY(json_tcb(r->reported_tcb, p, "reported_tcb", o));
    if (r->version >= 3) {
        TRY(json_cpuid(r, o));
    }
    TRY(skr_json_set_hex(o, "chip_id", r->chip_id, sizeof(r->chip_id)));
    TRY(json_tcb(r->committed_tcb, p, "committed_tcb", o));
    TRY(json_version(r->current_major, r->current_minor, r->current_build, "current_version", o));
    TRY(json_version(r->committed_major, r->committed_minor, r->committed_build,
                     "committed_version", o));
    TRY(json_tcb(r->launch_tcb, p, "launch_tcb", o));
    if (r->version >= 5) {
        TRY(set_hex64(o, "launch_mit_vector", r->launch_mit_vector));
        TRY(set_hex64(o, "current_mit_vector", r->current_mit_vector));
    }
    TRY(json_signature(r, o));
    TRY(set_str(o, "product", skr_snp_product_name(p)));

    *ret = TAKE_PTR(o);
    return SKR_OK;
}

/* Text */

#define TEXT_NAME_WIDTH 26

/* One "Name:   value" line; the value is formatted into a bounded local buffer. */
static skr_err SKR_PRINTF(3, 4) kv(struct skr_buf *out, const char *name, const char *fmt, ...)
{
    char val[160];
    va_list ap;
    int n;
    size_t name_len = strlen(name);
    int pad = name_len < TEXT_NAME_WIDTH ? (int)(TEXT_NAME_WIDTH - name_len) : 1;

    va_start(ap, fmt);
    n = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    ENSURE(n >= 0 && (size_t)n < sizeof(val), SKR_E_INTERNAL, "report text line too long");
    return skr_buf_printf(out, "%s:%*s%s\n", name, pad, "", val);
}

static skr_err
kv_hex(struct skr_buf *out, const char *name, const uint8_t *p, size_t n)
{
    char hex[2 * 64 + 1];

    ENSURE(n <= 64, SKR_E_INTERNAL, "hex field too long for text output");
    skr_hex_fmt(p, n, hex);
    return kv(out, name, "%s", hex);
}

static skr_err
kv_flag(struct skr_buf *out, const char *name, uint64_t v, uint64_t bit)
{
    return kv(out, name, "%s", (v & bit) != 0 ? "yes" : "no");
}

static skr_err
text_policy(uint64_t p, struct skr_buf *out)
{
    TRY(kv(out, "Policy", "0x%016" PRIx64, p));
    TRY(kv(out, "  ABI version", "%u.%u", SKR_SNP_POLICY_ABI_MAJOR(p),
           SKR_SNP_POLICY_ABI_MINOR(p)));
    TRY(kv_flag(out, "  SMT allowed", p, SKR_SNP_POLICY_SMT));
    TRY(kv_flag(out, "  Reserved (must be 1)", p, SKR_SNP_POLICY_RESERVED_1));
    TRY(kv_flag(out, "  Migration agent", p, SKR_SNP_POLICY_MIGRATE_MA));
    TRY(kv_flag(out, "  Debug allowed", p, SKR_SNP_POLICY_DEBUG));
    TRY(kv_flag(out, "  Single socket", p, SKR_SNP_POLICY_SINGLE_SOCKET));
    TRY(kv_flag(out, "  CXL allowed", p, SKR_SNP_POLICY_CXL_ALLOW));
    TRY(kv_flag(out, "  AES-256-XTS required", p, SKR_SNP_POLICY_MEM_AES_256_XTS));
    TRY(kv_flag(out, "  RAPL disabled", p, SKR_SNP_POLICY_RAPL_DIS));
    TRY(kv_flag(out, "  Ciphertext hiding", p, SKR_SNP_POLICY_CIPHERTEXT_HIDING));
    TRY(kv_flag(out, "  Page swap disabled", p, SKR_SNP_POLICY_PAGE_SWAP_DISABLE));
    return SKR_OK;
}

static skr_err
text_platform_info(uint64_t pi, struct skr_buf *out)
{
    TRY(kv(out, "Platform info", "0x%016" PRIx64, pi));
    TRY(kv_flag(out, "  SMT enabled", pi, SKR_SNP_PLATFORM_SMT_EN));
    TRY(kv_flag(out, "  TSME enabled", pi, SKR_SNP_PLATFORM_TSME_EN));
    TRY(kv_flag(out, "  ECC enabled", pi, SKR_SNP_PLATFORM_ECC_EN));
    TRY(kv_flag(out, "  RAPL disabled", pi, SKR_SNP_PLATFORM_RAPL_DIS));
    TRY(kv_flag(out, "  Ciphertext hiding", pi, SKR_SNP_PLATFORM_CIPHERTEXT_HIDING_EN));
    TRY(kv_flag(out, "  Alias check complete", pi, SKR_SNP_PLATFORM_ALIAS_CHECK_COMPLETE));
    TRY(kv_flag(out, "  TIO enabled", pi, SKR_SNP_PLATFORM_TIO_EN));
    return SKR_OK;
}

static skr_err
text_signer_info(uint32_t si, struct skr_buf *out)
{
    char key[16];

    signing_key_name(si, key, sizeof(key));
    TRY(kv(out, "Signer info", "0x%08" PRIx32, si));
    TRY(kv_flag(out, "  Author key enabled", si, 1u));
    TRY(kv_flag(out, "  Mask chip key", si, 2u));
    TRY(kv(out, "  Signing key", "%s", key));
    return SKR_OK;
}

static skr_err
text_tcb(uint64_t raw, enum skr_snp_product p, const char *name, struct skr_buf *out)
{
    struct skr_snp_tcb t;
    char tcbm[17];

    skr_snp_tcb_decode(raw, p, &t);
    skr_snp_tcb_tcbm(raw, tcbm);
    if (t.has_fmc) {
        return kv(out, name, "%s (fmc %u, bootloader %u, tee %u, snp %u, microcode %u)", tcbm,
                  t.fmc, t.bootloader, t.tee, t.snp, t.microcode);
    }
    return kv(out, name, "%s (bootloader %u, tee %u, snp %u, microcode %u)", tcbm, t.bootloader,
              t.tee, t.snp, t.microcode);
}

static skr_err
text_signature(const struct skr_snp_report *r, struct skr_buf *out)
{
    uint8_t be[SIG_COMPONENT_BYTES];

    sig_component_be(r->sig_r, be);
    TRY(kv_hex(out, "Signature r", be, sizeof(be)));
    sig_component_be(r->sig_s, be);
    TRY(kv_hex(out, "Signature s", be, sizeof(be)));
    return SKR_OK;
}

skr_err
skr_snp_report_to_text(const struct skr_snp_report *r, enum skr_snp_product p, struct skr_buf *out)
{
    ENSURE(r != NULL && out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    TRY(kv(out, "Version", "%" PRIu32, r->version));
    TRY(kv(out, "Product", "%s", skr_snp_product_name(p)));
    TRY(kv(out, "Guest SVN", "%" PRIu32, r->guest_svn));
    TRY(text_policy(r->policy, out));
    TRY(kv_hex(out, "Family ID", r->family_id, sizeof(r->family_id)));
    TRY(kv_hex(out, "Image ID", r->image_id, sizeof(r->image_id)));
    TRY(kv(out, "VMPL", "%" PRIu32, r->vmpl));
    TRY(kv(out, "Signature algorithm", "%" PRIu32 "%s", r->sig_algo,
           r->sig_algo == SKR_SNP_SIG_ALGO_ECDSA_P384_SHA384 ? " (ECDSA P-384 SHA-384)" : ""));
    TRY(text_tcb(r->current_tcb, p, "Current TCB", out));
    TRY(text_platform_info(r->platform_info, out));
    TRY(text_signer_info(r->signer_info, out));
    TRY(kv_hex(out, "Report data", r->report_data, sizeof(r->report_data)));
    TRY(kv_hex(out, "Measurement", r->measurement, sizeof(r->measurement)));
    TRY(kv_hex(out, "Host data", r->host_data, sizeof(r->host_data)));
    TRY(kv_hex(out, "ID key digest", r->id_key_digest, sizeof(r->id_key_digest)));
    TRY(kv_hex(out, "Author key digest", r->author_key_digest, sizeof(r->author_key_digest)));
    TRY(kv_hex(out, "Report ID", r->report_id, sizeof(r->report_id)));
    TRY(kv_hex(out, "Report ID MA", r->report_id_ma, sizeof(r->report_id_ma)));
    TRY(text_tcb(r->reported_tcb, p, "Reported TCB", out));
    if (r->version >= 3) {
        TRY(kv(out, "CPUID", "family 0x%02x, model 0x%02x, stepping 0x%02x", r->cpuid_fam_id,
               r->cpuid_mod_id, r->cpuid_step));
    }
    TRY(kv_hex(out, "Chip ID", r->chip_id, sizeof(r->chip_id)));
    TRY(text_tcb(r->committed_tcb, p, "Committed TCB", out));
    TRY(kv(out, "Current version", "%u.%u.%u", r->current_major, r->current_minor,
           r->current_build));
    TRY(kv(out, "Committed version", "%u.%u.%u", r->committed_major, r->committed_minor,
           r->committed_build));
    TRY(text_tcb(r->launch_tcb, p, "Launch TCB", out));
    if (r->version >= 5) {
        TRY(kv(out, "Launch mitigation vector", "0x%016" PRIx64, r->launch_mit_vector));
        TRY(kv(out, "Current mitigation vector", "0x%016" PRIx64, r->current_mit_vector));
    }
    TRY(text_signature(r, out));
    return SKR_OK;
}
