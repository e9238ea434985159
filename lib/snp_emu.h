/*
 * snp_emu.h - a software SEV-SNP platform (PROTOCOLS.md §2). Never used unless configured by
 * name (emulated:DIR). It holds an emulated AMD chain - ARK and ASK as RSA-4096 RSASSA-PSS
 * (SHA-384, MGF1-SHA-384, salt 48), a VCEK as ECDSA P-384 with the real KDS extension OIDs
 * (structVersion, productName, SPLs, hwID = chip id) - and the launch state it reports
 * (measurement, HOST_DATA, policy, TCB, chip id). Reports it produces verify with the same
 * code as real ones, given the emulated ARK as an extra root.
 *
 * Directory layout (DIR or DIR/snp/, private keys mode 0600):
 *   platform.json  launch state      ark.pem ask.pem vcek.pem   certificates
 *   ark.key ask.key vcek.key         private keys (PEM PKCS#8)
 */
#pragma once

#include <stdint.h>

#include "buf.h"
#include "snp_report.h"

struct skr_snp_emu_params {
    enum skr_snp_product product; /* UNKNOWN => Milan */
    uint32_t report_version;      /* 0 => 3 */
    uint64_t policy;              /* 0 => 0x3001f (the ACI value) */
    uint64_t tcb;                 /* 0 => a plausible current TCB for the product */
    uint32_t guest_svn;
    uint32_t vmpl_floor;     /* lowest VMPL a guest may request */
    uint8_t measurement[48]; /* all zero => random */
    uint8_t host_data[32];
    uint8_t family_id[16];
    uint8_t image_id[16];
    uint8_t chip_id[64]; /* all zero => random (Turin: 8 bytes, rest zero) */
};

struct skr_snp_emu;

/* Creates a platform in dir (created if missing; dir/snp is NOT implied). */
SKR_NODISCARD skr_err skr_snp_emu_create(const char *dir, const struct skr_snp_emu_params *p);
/* Opens a platform from dir, or from dir/snp when dir has no platform.json. */
SKR_NODISCARD skr_err skr_snp_emu_open(const char *dir, struct skr_snp_emu **ret);
void skr_snp_emu_free(struct skr_snp_emu *e);
DEFINE_CLEANUP(struct skr_snp_emu *, skr_snp_emu_free)

/* Produces a signed report (1184 bytes, appended to out). */
SKR_NODISCARD skr_err skr_snp_emu_report(struct skr_snp_emu *e, const uint8_t report_data[64],
                                         uint32_t vmpl, struct skr_buf *out);
/* Appends the platform's certificate table (VCEK, ASK, ARK) to out. */
SKR_NODISCARD skr_err skr_snp_emu_cert_table(struct skr_snp_emu *e, struct skr_buf *out);
/* Appends PEM VCEK + ASK + ARK to out. */
SKR_NODISCARD skr_err skr_snp_emu_chain_pem(struct skr_snp_emu *e, struct skr_buf *out);
const struct skr_snp_emu_params *skr_snp_emu_params(const struct skr_snp_emu *e);
