/*
 * snp_certs.h - AMD platform certificates: THIM JSON and host-amd-cert-base64 (PROTOCOLS.md
 * §4.1-4.2), the extended-report certificate table (§2.6), VCEK/VLEK extensions (§2.3),
 * AMD KDS URLs (§2.5), and certificate bundles from PEM/DER/THIM/base64 files.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "buf.h"
#include "skr_limits.h"
#include "snp_report.h"

/* ---- THIM ---------------------------------------------------------------------------- */

struct skr_thim {
    char *vcek_pem;      /* "vcekCert" */
    char *chain_pem;     /* "certificateChain" (ASK then ARK) */
    char *tcbm_str;      /* "tcbm" verbatim */
    uint64_t tcbm;       /* parsed as big-endian hex of the uint64 REPORTED_TCB */
    char *cache_control; /* "cacheControl" or NULL */
};

/* Parses THIM JSON (all values strings; tcbm 1..16 hex digits). */
SKR_NODISCARD skr_err skr_thim_parse(struct skr_span json, struct skr_thim *ret);
/* Parses a host-amd-cert-base64 file: standard base64 (whitespace ignored) of THIM JSON. */
SKR_NODISCARD skr_err skr_thim_parse_b64(struct skr_span b64, struct skr_thim *ret);
void skr_thim_done(struct skr_thim *t);

/* ---- extended-report certificate table (GHCB spec 56421 §4.1.8.1) ----------------------- */

enum skr_cert_kind {
    SKR_CERT_OTHER = 0,
    SKR_CERT_VCEK,
    SKR_CERT_VLEK,
    SKR_CERT_ASK, /* ASK or ASVK: same GUID */
    SKR_CERT_ARK,
};

struct skr_cert_entry {
    uint8_t guid[16]; /* RFC 4122 byte order, as go-sev-guest copies it */
    enum skr_cert_kind kind;
    struct skr_span der; /* borrowed from the table blob */
};

struct skr_cert_table {
    struct skr_cert_entry entries[SKR_MAX_CERT_TABLE_ENTRIES];
    size_t n;
};

/* Parses a table blob (24-byte entries, all-zero terminator, offsets from blob start, each
 * [offset, offset+length) inside the blob). Entries borrow from blob. */
SKR_NODISCARD skr_err skr_cert_table_parse(struct skr_span blob, struct skr_cert_table *ret);
/* Builds a blob from entries (guid set from kind unless kind is OTHER), appended to out. */
SKR_NODISCARD skr_err skr_cert_table_build(const struct skr_cert_entry *entries, size_t n,
                                           struct skr_buf *out);
const char *skr_cert_kind_name(enum skr_cert_kind k);
/* The GUID of a kind (NULL for OTHER). */
const uint8_t *skr_cert_kind_guid(enum skr_cert_kind k);

/* ---- VCEK / VLEK extensions (AMD KDS spec 57230; PROTOCOLS.md §2.3) --------------------- */

#define SKR_VCEK_HWID_MAX 64

struct skr_vcek_ext {
    bool has_struct_version;
    uint32_t struct_version;
    char product_name[32]; /* IA5String, "" when absent */
    bool has_bl, has_tee, has_snp, has_ucode, has_fmc;
    uint8_t bl, tee, snp, ucode, fmc;
    uint8_t hwid[SKR_VCEK_HWID_MAX];
    size_t hwid_len; /* 0 when absent (VLEK) */
    char csp_id[64]; /* VLEK only, "" when absent */
    bool is_vlek;    /* subject CN=SEV-VLEK */
};

/* Decodes the AMD extensions of cert. INTEGERs are decoded as DER (values >= 0x80 carry a
 * leading 0x00); hwID is raw bytes without a tag. */
SKR_NODISCARD skr_err skr_vcek_ext_decode(X509 *cert, struct skr_vcek_ext *ret);
/* Decodes a DER INTEGER extension value (the bytes inside extnValue) in 0..255. */
SKR_NODISCARD skr_err skr_vcek_ext_int(struct skr_span der, uint8_t *ret);
/* Decodes a DER IA5String extension value into out (NUL-terminated, at most cap-1 chars). */
SKR_NODISCARD skr_err skr_vcek_ext_ia5(struct skr_span der, char *out, size_t cap);
/* Product from productName ("Milan-B0" -> MILAN). */
enum skr_snp_product skr_vcek_ext_product(const struct skr_vcek_ext *e);
/* The TCB a VCEK was issued for, as a raw uint64 in the product's layout. */
uint64_t skr_vcek_ext_tcb(const struct skr_vcek_ext *e, enum skr_snp_product p);

/* ---- AMD KDS URLs (host kdsintf.amd.com) -------------------------------------------- */

/* VCEK: https://kdsintf.amd.com/vcek/v1/{P}/{hwid
 * hex}?[fmcSPL=..&]blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=.. Milan/Genoa use the 64-byte chip id,
 * Turin its first 8 bytes and adds fmcSPL. */
SKR_NODISCARD skr_err skr_kds_vcek_url(enum skr_snp_product p, const uint8_t chip_id[64],
                                       uint64_t reported_tcb, struct skr_buf *out);
/* Chain: https://kdsintf.amd.com/{vcek|vlek}/v1/{P}/cert_chain */
SKR_NODISCARD skr_err skr_kds_chain_url(enum skr_snp_product p, bool vlek, struct skr_buf *out);
/* CRL: https://kdsintf.amd.com/{vcek|vlek}/v1/{P}/crl */
SKR_NODISCARD skr_err skr_kds_crl_url(enum skr_snp_product p, bool vlek, struct skr_buf *out);

/* ---- certificate bundles -------------------------------------------------------------- */

/* What a user hands us as "the certificates": VCEK/VLEK and optionally ASK/ASVK and ARK. */
struct skr_cert_set {
    X509 *vcek; /* or VLEK */
    X509 *ask;  /* or ASVK; NULL => built-in for the product */
    X509 *ark;  /* NULL => built-in for the product */
    bool has_tcbm;
    uint64_t tcbm; /* from THIM, when the source was THIM */
};

/* Loads certificates from file contents in any of: PEM bundle (any order; roles told apart by
 * subject CN: SEV-VCEK/SEV-VLEK, SEV-<P>/SEV-VLEK-<P>, ARK-<P>), a single DER certificate,
 * THIM JSON, a host-amd-cert-base64 file, or an extended-report certificate table. */
SKR_NODISCARD skr_err skr_cert_set_load(struct skr_span file, struct skr_cert_set *ret);
/* Fills the set from a parsed certificate table (DER copies; borrowed spans not kept). */
SKR_NODISCARD skr_err skr_cert_set_from_table(const struct skr_cert_table *t,
                                              struct skr_cert_set *ret);
void skr_cert_set_done(struct skr_cert_set *s);

/* Reads every certificate in PEM text (at most SKR_MAX_CERT_CHAIN). */
SKR_NODISCARD skr_err skr_pem_read_certs(struct skr_span pem, STACK_OF(X509) * *ret);
/* Appends the PEM encoding of cert to out. */
SKR_NODISCARD skr_err skr_pem_write_cert(X509 *cert, struct skr_buf *out);
/* Appends the PEM PKCS#8 encoding of a private key to out (encoded in OpenSSL's secure heap,
 * so the only plaintext copy left is out, which skr_buf wipes when it is freed). */
SKR_NODISCARD skr_err skr_pem_write_key(EVP_PKEY *key, struct skr_buf *out);
/* Subject common name into out ("" when absent). */
void skr_x509_cn(X509 *cert, char *out, size_t cap);
