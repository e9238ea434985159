/*
 * snp_dev.h - where SEV-SNP reports come from, behind one interface (PROTOCOLS.md §3):
 *   tsm        configfs-tsm, /sys/kernel/config/tsm/report (Linux >= 6.7), generation-checked
 *   sev-guest  /dev/sev-guest ioctls SNP_GET_REPORT / SNP_GET_EXT_REPORT (Linux >= 6.0)
 *   sev        /dev/sev legacy ACI 5.15 kernel layout (SEV_SNP_GUEST_MSG_REPORT)
 *   emulated   a software platform in a directory (snp_emu.h); only when asked for by name
 * Auto-detection order: tsm, sev-guest, sev. Nothing is ever faked implicitly.
 */
#pragma once

#include <stdint.h>

#include "buf.h"

enum skr_snp_dev_kind {
    SKR_SNP_DEV_AUTO = 0,
    SKR_SNP_DEV_TSM,
    SKR_SNP_DEV_SEV_GUEST,
    SKR_SNP_DEV_SEV,
    SKR_SNP_DEV_EMULATED,
};

struct skr_snp_dev_cfg {
    enum skr_snp_dev_kind kind;
    /* Backend location override: device node (sev-guest, sev), configfs report directory
     * (tsm, default /sys/kernel/config/tsm/report) or platform directory (emulated). NULL means
     * the default. */
    const char *path;
    /* Prefix for every default path, for tests of auto-detection (NULL or "" = "/"). */
    const char *sysroot;
};

struct skr_snp_dev;

/* Parses "auto", "tsm[:DIR]", "sev-guest[:DEV]", "sev[:DEV]", "emulated:DIR" into cfg (path
 * points into spec, which must outlive cfg). */
SKR_NODISCARD skr_err skr_snp_dev_parse_spec(const char *spec, struct skr_snp_dev_cfg *ret);

/* Opens a backend. AUTO tries tsm, sev-guest, sev in that order; none present gives
 * SKR_E_NOT_FOUND "not an SEV-SNP guest: no /dev/sev-guest, /dev/sev or configfs-tsm". */
SKR_NODISCARD skr_err skr_snp_dev_open(const struct skr_snp_dev_cfg *cfg, struct skr_snp_dev **ret);
void skr_snp_dev_free(struct skr_snp_dev *d);
DEFINE_CLEANUP(struct skr_snp_dev *, skr_snp_dev_free)

/* "tsm", "sev-guest", "sev" or "emulated". */
const char *skr_snp_dev_name(const struct skr_snp_dev *d);

/* Requests a report binding report_data at privilege level vmpl. ret_report receives exactly
 * SKR_SNP_REPORT_LEN bytes. When ret_certs is not NULL the backend also returns the host's
 * certificate table (SNP_GET_EXT_REPORT / auxblob / emulated chain); it is left empty when the
 * host supplies none. Appends to the buffers. */
SKR_NODISCARD skr_err skr_snp_dev_get_report(struct skr_snp_dev *d, const uint8_t report_data[64],
                                             uint32_t vmpl, struct skr_buf *ret_report,
                                             struct skr_buf *ret_certs);

/* Test seam: the ioctl backends call through this (default: ioctl(2)). */
typedef int (*skr_ioctl_fn)(int fd, unsigned long req, void *arg);
void skr_snp_dev_set_ioctl(struct skr_snp_dev *d, skr_ioctl_fn fn);

/* Test seam for the tsm backend: hook runs right after the entry directory is created and
 * again after inblob is written, so a test can play the kernel's part on a plain directory. */
void skr_snp_dev_set_tsm_hook(struct skr_snp_dev *d, void (*hook)(const char *entry_dir, void *arg),
                              void *arg);
