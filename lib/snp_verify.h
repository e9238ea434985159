/*
 * snp_verify.h - local verification of an SEV-SNP report (PROTOCOLS.md §2.1, §2.3-2.4):
 * signature (ECDSA P-384/SHA-384 over bytes 0x000..0x29F, r/s 72-byte little-endian), chain
 * VCEK -> ASK -> ARK (RSASSA-PSS SHA-384) to a pinned AMD root or an extra root given by
 * option, TCB consistency (REPORTED_TCB vs VCEK extensions, CHIP_ID vs hwID), and checks the
 * user asks for. Every check is reported by name with its outcome.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "snp_certs.h"
#include "snp_report.h"

#define SKR_MAX_CHECKS 40

enum skr_check_status {
    SKR_CHECK_PASS = 0,
    SKR_CHECK_FAIL,
    SKR_CHECK_SKIP,
};

struct skr_check {
    const char *name; /* stable, e.g. "report.signature", "chain.ask_ark" */
    enum skr_check_status status;
    char detail[200];
};

struct skr_snp_verify_result {
    struct skr_check checks[SKR_MAX_CHECKS];
    size_t n;
    enum skr_snp_product product;
    bool is_vlek;
};

/* Optional checks: each is applied only when its has_/check_ flag is set. */
struct skr_snp_verify_opts {
    enum skr_snp_product product; /* UNKNOWN => report CPUID, then VCEK productName */
    STACK_OF(X509) * extra_roots; /* extra trusted ARKs (e.g. an emulated platform) */
    bool check_no_debug;
    bool check_vmpl;
    uint32_t vmpl;
    bool has_min_tcb;
    struct skr_snp_tcb min_tcb; /* compared per component; fmc only on Turin */
    bool has_host_data;
    uint8_t host_data[32];
    bool has_measurement;
    uint8_t measurement[48];
    bool has_report_data;
    uint8_t report_data[64];
    bool ignore_time; /* skip certificate validity periods */
};

/* Runs every check. Returns SKR_OK when all ran and none failed, SKR_E_VERIFY when any failed
 * (result names them), other errors only for caller bugs (NULL args). raw must be the exact
 * 1184 bytes r was parsed from. */
SKR_NODISCARD skr_err skr_snp_verify(const struct skr_snp_report *r, struct skr_span raw,
                                     const struct skr_cert_set *certs,
                                     const struct skr_snp_verify_opts *opts,
                                     struct skr_snp_verify_result *res);

/* The certificates alone (no report): VCEK extensions, product, chain to a trusted root and
 * validity. Same return convention as skr_snp_verify. */
SKR_NODISCARD skr_err skr_snp_verify_certs(const struct skr_cert_set *certs,
                                           const struct skr_snp_verify_opts *opts,
                                           struct skr_snp_verify_result *res);

/* The signature check alone against a VCEK public key (for callers that cache the chain). */
SKR_NODISCARD skr_err skr_snp_verify_signature(struct skr_span raw, EVP_PKEY *vcek_pub);

/* First failed check, or NULL. */
const struct skr_check *skr_snp_verify_first_failure(const struct skr_snp_verify_result *res);
/* The result as JSON {"ok":bool,"product":..,"checks":[{"name","status","detail"}]}. */
SKR_NODISCARD skr_err skr_snp_verify_to_json(const struct skr_snp_verify_result *res, json_t **ret);
