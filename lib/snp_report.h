/*
 * snp_report.h - the SEV-SNP ATTESTATION_REPORT (SNP ABI spec 56860, "ATTESTATION_REPORT
 * Structure"; PROTOCOLS.md §2.1) decoded field by field, versions 2..5, and TCB_VERSION (§2.2).
 *
 * The host struct holds decoded values; the wire layout exists only as offsets in
 * snp_report.c. Reserved ranges are kept verbatim so parse -> serialize is byte-identical.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

#define SKR_SNP_REPORT_LEN                 0x4A0u /* 1184 */
#define SKR_SNP_REPORT_SIGNED_LEN          0x2A0u /* bytes covered by the signature */
#define SKR_SNP_REPORT_MIN_VERSION         2u
#define SKR_SNP_REPORT_MAX_VERSION         5u
#define SKR_SNP_SIG_ALGO_ECDSA_P384_SHA384 1u

/* POLICY bits */
#define SKR_SNP_POLICY_ABI_MINOR(p)      ((unsigned)((p)&0xffu))
#define SKR_SNP_POLICY_ABI_MAJOR(p)      ((unsigned)(((p) >> 8) & 0xffu))
#define SKR_SNP_POLICY_SMT               (1ull << 16)
#define SKR_SNP_POLICY_RESERVED_1        (1ull << 17) /* must be 1 */
#define SKR_SNP_POLICY_MIGRATE_MA        (1ull << 18)
#define SKR_SNP_POLICY_DEBUG             (1ull << 19)
#define SKR_SNP_POLICY_SINGLE_SOCKET     (1ull << 20)
#define SKR_SNP_POLICY_CXL_ALLOW         (1ull << 21)
#define SKR_SNP_POLICY_MEM_AES_256_XTS   (1ull << 22)
#define SKR_SNP_POLICY_RAPL_DIS          (1ull << 23)
#define SKR_SNP_POLICY_CIPHERTEXT_HIDING (1ull << 24)
#define SKR_SNP_POLICY_PAGE_SWAP_DISABLE (1ull << 25)

/* PLATFORM_INFO bits */
#define SKR_SNP_PLATFORM_SMT_EN               (1ull << 0)
#define SKR_SNP_PLATFORM_TSME_EN              (1ull << 1)
#define SKR_SNP_PLATFORM_ECC_EN               (1ull << 2)
#define SKR_SNP_PLATFORM_RAPL_DIS             (1ull << 3)
#define SKR_SNP_PLATFORM_CIPHERTEXT_HIDING_EN (1ull << 4)
#define SKR_SNP_PLATFORM_ALIAS_CHECK_COMPLETE (1ull << 5)
#define SKR_SNP_PLATFORM_TIO_EN               (1ull << 7)

/* SIGNER_INFO fields */
#define SKR_SNP_SIGNER_AUTHOR_KEY_EN(s) ((unsigned)((s)&1u))
#define SKR_SNP_SIGNER_MASK_CHIP_KEY(s) ((unsigned)(((s) >> 1) & 1u))
#define SKR_SNP_SIGNER_SIGNING_KEY(s)   ((unsigned)(((s) >> 2) & 7u))
#define SKR_SNP_SIGNING_KEY_VCEK        0u
#define SKR_SNP_SIGNING_KEY_VLEK        1u
#define SKR_SNP_SIGNING_KEY_NONE        7u

enum skr_snp_product {
    SKR_SNP_PRODUCT_UNKNOWN = 0,
    SKR_SNP_PRODUCT_MILAN,
    SKR_SNP_PRODUCT_GENOA,
    SKR_SNP_PRODUCT_TURIN,
};

/* "Milan", "Genoa", "Turin" or "unknown". */
const char *skr_snp_product_name(enum skr_snp_product p);
/* Accepts "Milan", "milan", "Milan-B0", "Genoa-B1", "Turin" (a VCEK productName or a user option).
 */
SKR_NODISCARD skr_err skr_snp_product_parse(const char *s, enum skr_snp_product *ret);
/* From the v3+ CPUID bytes: family 0x19 model 0x0x Milan, 0x1x Genoa; family 0x1A Turin. */
enum skr_snp_product skr_snp_product_from_cpuid(uint8_t fam, uint8_t mod);

/* TCB_VERSION decoded. Milan/Genoa: byte0 BL, 1 TEE, 2..5 reserved, 6 SNP, 7 UCODE.
 * Turin: byte0 FMC, 1 BL, 2 TEE, 3 SNP, 4..6 reserved, 7 UCODE. */
struct skr_snp_tcb {
    uint64_t raw;
    bool has_fmc; /* Turin layout */
    uint8_t fmc;
    uint8_t bootloader;
    uint8_t tee;
    uint8_t snp;
    uint8_t microcode;
};

/* Decodes raw per the product's layout (Turin => Turin layout, anything else => Milan/Genoa). */
void skr_snp_tcb_decode(uint64_t raw, enum skr_snp_product p, struct skr_snp_tcb *ret);
/* Encodes the components (reserved bytes zero) per the product's layout. */
uint64_t skr_snp_tcb_encode(const struct skr_snp_tcb *tcb, enum skr_snp_product p);
/* THIM tcbm form: 16 uppercase hex digits of the uint64 (PROTOCOLS.md §4.1). out >= 17 bytes. */
void skr_snp_tcb_tcbm(uint64_t raw, char out[17]);

struct skr_snp_report {
    uint32_t version;
    uint32_t guest_svn;
    uint64_t policy;
    uint8_t family_id[16];
    uint8_t image_id[16];
    uint32_t vmpl;
    uint32_t sig_algo;
    uint64_t current_tcb;
    uint64_t platform_info;
    uint32_t signer_info;
    uint32_t reserved_04c;
    uint8_t report_data[64];
    uint8_t measurement[48];
    uint8_t host_data[32];
    uint8_t id_key_digest[48];
    uint8_t author_key_digest[48];
    uint8_t report_id[32];
    uint8_t report_id_ma[32];
    uint64_t reported_tcb;
    /* 0x188..0x18A: CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP (v3+; reserved bytes in v2) */
    uint8_t cpuid_fam_id;
    uint8_t cpuid_mod_id;
    uint8_t cpuid_step;
    uint8_t reserved_18b[21];
    uint8_t chip_id[64];
    uint64_t committed_tcb;
    uint8_t current_build;
    uint8_t current_minor;
    uint8_t current_major;
    uint8_t reserved_1eb;
    uint8_t committed_build;
    uint8_t committed_minor;
    uint8_t committed_major;
    uint8_t reserved_1ef;
    uint64_t launch_tcb;
    /* 0x1F8..0x207: LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR (v5; reserved bytes before v5) */
    uint64_t launch_mit_vector;
    uint64_t current_mit_vector;
    uint8_t reserved_208[152];
    /* SIGNATURE: r and s as 72-byte little-endian integers, then 368 reserved bytes */
    uint8_t sig_r[72];
    uint8_t sig_s[72];
    uint8_t sig_reserved[368];
};

/* Parses exactly SKR_SNP_REPORT_LEN bytes, VERSION 2..5. Anything else: SKR_E_TRUNCATED,
 * SKR_E_TOO_LARGE or SKR_E_UNSUPPORTED (version) with a message saying what was seen. */
SKR_NODISCARD skr_err skr_snp_report_parse(struct skr_span in, struct skr_snp_report *ret);
/* Serializes into out (SKR_SNP_REPORT_LEN bytes). */
void skr_snp_report_serialize(const struct skr_snp_report *r, uint8_t out[SKR_SNP_REPORT_LEN]);
/* Loads a report from file contents: 1184 raw bytes, or 2368 hex digits (either case,
 * whitespace allowed). raw_out (optional) receives the 1184 bytes. */
SKR_NODISCARD skr_err skr_snp_report_load(struct skr_span file, struct skr_snp_report *ret,
                                          uint8_t raw_out[SKR_SNP_REPORT_LEN]);

/* Product from the report alone: CPUID bytes (v3+); for v2 UNKNOWN (callers then use the VCEK
 * productName or an explicit option). */
enum skr_snp_product skr_snp_report_product(const struct skr_snp_report *r);

/* Stable JSON: field names as in PROTOCOLS.md §2.1 in snake_case, byte fields lowercase hex,
 * decoded policy / platform_info / signer_info / TCB objects. product selects the TCB layout. */
SKR_NODISCARD skr_err skr_snp_report_to_json(const struct skr_snp_report *r, enum skr_snp_product p,
                                             json_t **ret);
/* Readable multi-line text of the same content, appended to out. */
SKR_NODISCARD skr_err skr_snp_report_to_text(const struct skr_snp_report *r, enum skr_snp_product p,
                                             struct skr_buf *out);
