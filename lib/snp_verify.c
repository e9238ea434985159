/*
 * snp_verify.c - local verification of an SEV-SNP report before anyone else sees it
 * (DESIGN.md §5 "verify before you trust"). Each check is recorded by a stable name with its
 * outcome and a detail string; a failure never stops the remaining checks, so one run tells
 * the user everything that is wrong.
 *
 * Sources: SNP ABI spec 56860 "ATTESTATION_REPORT" and "Signature" (ECDSA P-384 with SHA-384
 * over bytes 0x000..0x29F, r and s as 72-byte little-endian integers); AMD KDS spec 57230
 * (VCEK extensions, RSASSA-PSS chain); PROTOCOLS.md §2.1-2.4.
 */
#include "snp_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ecdsa.h>

#include "amd_roots.h"
#include "hex.h"
#include "json.h"
#include "ossl.h"

static void add_check(struct skr_snp_verify_result *res, const char *name, enum skr_check_status st,
                      const char *fmt, ...) SKR_PRINTF(4, 5);

static void
add_check(struct skr_snp_verify_result *res, const char *name, enum skr_check_status st,
          const char *fmt, ...)
{
    struct skr_check *c;
    va_list ap;

    if (res->n >= SKR_MAX_CHECKS) {
        return;
    }
    c = &res->checks[res->n++];
    c->name = name;
    c->status = st;
    va_start(ap, fmt);
    (void)vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
}

/* ---- signature ------------------------------------------------------------------------ */

/* A 72-byte little-endian integer as a BIGNUM; the top 24 bytes must be zero (P-384 values
 * have 48 significant bytes). */
static skr_err
le72_to_bn(const uint8_t *le, BIGNUM **ret)
{
    uint8_t be[48];

    for (size_t i = 48; i < 72; i++) {
        ENSURE(le[i] == 0, SKR_E_VERIFY, "signature component has nonzero high bytes");
    }
    for (size_t i = 0; i < 48; i++) {
        be[i] = le[47 - i];
    }
    *ret = BN_bin2bn(be, sizeof(be), NULL);
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

skr_err
skr_snp_verify_signature(struct skr_span raw, EVP_PKEY *vcek_pub)
{
    _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
    _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
    _cleanup_(skr_ossl_freep) unsigned char *der = NULL;
    BIGNUM *r = NULL;
    BIGNUM *s = NULL;
    int der_len;

    ENSURE(raw.len == SKR_SNP_REPORT_LEN && vcek_pub != NULL, SKR_E_INVALID_ARG,
           "report must be 1184 bytes");
    ENSURE(EVP_PKEY_is_a(vcek_pub, "EC"), SKR_E_VERIFY, "VCEK key is not an EC key");
    TRY(le72_to_bn(raw.ptr + 0x2A0, &r));
    if (le72_to_bn(raw.ptr + 0x2E8, &s) != SKR_OK) {
        BN_free(r);
        FAIL(SKR_E_VERIFY, "signature s has nonzero high bytes");
    }
    sig = ECDSA_SIG_new();
    if (sig == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        FAIL(SKR_E_NOMEM, "out of memory");
    }
    der_len = i2d_ECDSA_SIG(sig, &der);
    ENSURE(der_len > 0, SKR_E_NOMEM, "cannot encode signature");
    md = EVP_MD_CTX_new();
    ENSURE(md != NULL, SKR_E_NOMEM, "out of memory");
    TRY_OSSL(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, vcek_pub), SKR_E_VERIFY,
             "cannot set up ECDSA verification");
    if (EVP_DigestVerify(md, der, (size_t)der_len, raw.ptr, SKR_SNP_REPORT_SIGNED_LEN) != 1) {
        skr_err_clear();
        FAIL(SKR_E_VERIFY, "ECDSA P-384 signature does not verify with the VCEK");
    }
    return SKR_OK;
}

/* ---- chain ---------------------------------------------------------------------------- */

static bool
is_extra_root(X509 *cert, STACK_OF(X509) * extra)
{
    for (int i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
        if (X509_cmp(cert, sk_X509_value(extra, i)) == 0) {
            return true;
        }
    }
    return false;
}

/* child is issued and signed by parent: names chain and the signature verifies. */
static void
check_link(struct skr_snp_verify_result *res, const char *name, X509 *child, X509 *parent)
{
    char child_cn[64], parent_cn[64];
    EVP_PKEY *pub = X509_get0_pubkey(parent);

    skr_x509_cn(child, child_cn, sizeof(child_cn));
    skr_x509_cn(parent, parent_cn, sizeof(parent_cn));
    if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) != 0) {
        add_check(res, name, SKR_CHECK_FAIL, "%s is not issued by %s (issuer name differs)",
                  child_cn, parent_cn);
        return;
    }
    if (pub == NULL || X509_verify(child, pub) != 1) {
        skr_err_clear();
        add_check(res, name, SKR_CHECK_FAIL, "signature on %s does not verify with %s's key",
                  child_cn, parent_cn);
        return;
    }
    add_check(res, name, SKR_CHECK_PASS, "%s signed by %s", child_cn, parent_cn);
}

static void
check_validity(struct skr_snp_verify_result *res, X509 *const *certs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char cn[64];

        skr_x509_cn(certs[i], cn, sizeof(cn));
        if (X509_cmp_current_time(X509_get0_notBefore(certs[i])) >= 0) {
            add_check(res, "chain.validity", SKR_CHECK_FAIL, "%s is not valid yet", cn);
            return;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(certs[i])) <= 0) {
            add_check(res, "chain.validity", SKR_CHECK_FAIL, "%s has expired", cn);
            return;
        }
    }
    add_check(res, "chain.validity", SKR_CHECK_PASS, "all certificates within their validity");
}

static void
check_chain(struct skr_snp_verify_result *res, const struct skr_cert_set *certs,
            const struct skr_snp_verify_opts *opts, enum skr_snp_product p)
{
    _cleanup_(X509_freep) X509 *builtin_ask = NULL;
    _cleanup_(X509_freep) X509 *builtin_ark = NULL;
    enum skr_snp_product ark_product = SKR_SNP_PRODUCT_UNKNOWN;
    X509 *ask = certs->ask;
    X509 *ark = certs->ark;
    char cn[64];

    if ((ask == NULL || ark == NULL) &&
        skr_amd_roots_get(p, res->is_vlek, &builtin_ask, &builtin_ark) != SKR_OK) {
        add_check(res, "chain.ark_trusted", SKR_CHECK_FAIL,
                  "no ASK/ARK given and no built-in root for product %s", skr_snp_product_name(p));
        return;
    }
    ask = ask != NULL ? ask : builtin_ask;
    ark = ark != NULL ? ark : builtin_ark;
    skr_x509_cn(ark, cn, sizeof(cn));
    if (skr_amd_roots_is_ark(ark, &ark_product)) {
        if (p != SKR_SNP_PRODUCT_UNKNOWN && ark_product != p) {
            add_check(res, "chain.ark_trusted", SKR_CHECK_FAIL,
                      "%s is the AMD root of %s, but the report is from %s", cn,
                      skr_snp_product_name(ark_product), skr_snp_product_name(p));
        } else {
            add_check(res, "chain.ark_trusted", SKR_CHECK_PASS, "%s is the pinned AMD root", cn);
        }
    } else if (is_extra_root(ark, opts->extra_roots)) {
        add_check(res, "chain.ark_trusted", SKR_CHECK_PASS, "%s is an extra root given by option",
                  cn);
    } else {
        add_check(res, "chain.ark_trusted", SKR_CHECK_FAIL,
                  "%s is neither a pinned AMD root nor an extra root", cn);
    }
    check_link(res, "chain.ark_self", ark, ark);
    check_link(res, "chain.ask_ark", ask, ark);
    check_link(res, "chain.vcek_ask", certs->vcek, ask);
    if (opts->ignore_time) {
        add_check(res, "chain.validity", SKR_CHECK_SKIP, "validity periods not checked (option)");
    } else {
        X509 *all[3] = { certs->vcek, ask, ark };

        check_validity(res, all, 3);
    }
}

/* ---- TCB, chip id and the user's checks -------------------------------------------------- */

static void
check_tcb_vs_vcek(struct skr_snp_verify_result *res, const struct skr_snp_report *r,
                  const struct skr_vcek_ext *ext, enum skr_snp_product p)
{
    struct skr_snp_tcb t;
    char bad[160] = "";
    size_t used = 0;

    skr_snp_tcb_decode(r->reported_tcb, p, &t);
    struct {
        const char *name;
        bool has;
        uint8_t report;
        uint8_t vcek;
    } spl[] = {
        { "bl", ext->has_bl, t.bootloader, ext->bl },
        { "tee", ext->has_tee, t.tee, ext->tee },
        { "snp", ext->has_snp, t.snp, ext->snp },
        { "ucode", ext->has_ucode, t.microcode, ext->ucode },
        { "fmc", ext->has_fmc || p == SKR_SNP_PRODUCT_TURIN, t.fmc, ext->fmc },
    };

    for (size_t i = 0; i < SKR_ARRAY_LEN(spl); i++) {
        bool applies = i < 4 || p == SKR_SNP_PRODUCT_TURIN;
        int n;

        if (!applies || (spl[i].has && spl[i].report == spl[i].vcek)) {
            continue;
        }
        n = spl[i].has ? snprintf(bad + used, sizeof(bad) - used, "%s%s report=%u vcek=%u",
                                  used > 0 ? "," : "", spl[i].name, spl[i].report, spl[i].vcek)
                       : snprintf(bad + used, sizeof(bad) - used, "%s%s missing in VCEK",
                                  used > 0 ? "," : "", spl[i].name);
        if (n > 0 && (size_t)n < sizeof(bad) - used) {
            used += (size_t)n;
        }
    }
    if (used > 0) {
        add_check(res, "tcb.reported_vs_vcek", SKR_CHECK_FAIL,
                  "REPORTED_TCB %016llX does not match the VCEK: %s",
                  (unsigned long long)r->reported_tcb, bad);
        return;
    }
    add_check(res, "tcb.reported_vs_vcek", SKR_CHECK_PASS, "REPORTED_TCB %016llX matches the VCEK",
              (unsigned long long)r->reported_tcb);
}

static void
check_chip_id(struct skr_snp_verify_result *res, const struct skr_snp_report *r,
              const struct skr_vcek_ext *ext)
{
    if (res->is_vlek) {
        add_check(res, "chip_id.hwid", SKR_CHECK_SKIP, "VLEK certificates carry no hwID");
        return;
    }
    if (skr_span_is_zero(skr_span_make(r->chip_id, sizeof(r->chip_id)))) {
        add_check(res, "chip_id.hwid", SKR_CHECK_SKIP, "CHIP_ID is masked (all zero)");
        return;
    }
    if (ext->hwid_len == 0 || ext->hwid_len > sizeof(r->chip_id) ||
        memcmp(ext->hwid, r->chip_id, ext->hwid_len) != 0 ||
        !skr_span_is_zero(
            skr_span_make(r->chip_id + ext->hwid_len, sizeof(r->chip_id) - ext->hwid_len))) {
        add_check(res, "chip_id.hwid", SKR_CHECK_FAIL,
                  "CHIP_ID differs from the VCEK hwID (%zu bytes): certificate of another chip",
                  ext->hwid_len);
        return;
    }
    add_check(res, "chip_id.hwid", SKR_CHECK_PASS, "CHIP_ID equals the VCEK hwID");
}

static void
check_min_tcb(struct skr_snp_verify_result *res, const struct skr_snp_report *r,
              const struct skr_snp_tcb *min, enum skr_snp_product p)
{
    struct skr_snp_tcb t;

    skr_snp_tcb_decode(r->reported_tcb, p, &t);
    if (t.bootloader < min->bootloader || t.tee < min->tee || t.snp < min->snp ||
        t.microcode < min->microcode || (p == SKR_SNP_PRODUCT_TURIN && t.fmc < min->fmc)) {
        add_check(res, "tcb.minimum", SKR_CHECK_FAIL,
                  "reported bl=%u tee=%u snp=%u ucode=%u fmc=%u below minimum bl=%u tee=%u "
                  "snp=%u ucode=%u fmc=%u",
                  t.bootloader, t.tee, t.snp, t.microcode, t.fmc, min->bootloader, min->tee,
                  min->snp, min->microcode, min->fmc);
        return;
    }
    add_check(res, "tcb.minimum", SKR_CHECK_PASS, "reported TCB meets the minimum");
}

static void
check_bytes(struct skr_snp_verify_result *res, const char *name, const uint8_t *got,
            const uint8_t *want, size_t n)
{
    if (CRYPTO_memcmp(got, want, n) != 0) {
        char hex[2 * 64 + 1];

        skr_hex_fmt(got, n, hex);
        add_check(res, name, SKR_CHECK_FAIL, "report has %.*s%s", 64, hex, n > 32 ? "..." : "");
        return;
    }
    add_check(res, name, SKR_CHECK_PASS, "matches the expected value");
}

static void
check_user_options(struct skr_snp_verify_result *res, const struct skr_snp_report *r,
                   const struct skr_snp_verify_opts *o, enum skr_snp_product p)
{
    if (o->check_no_debug) {
        add_check(res, "policy.no_debug",
                  (r->policy & SKR_SNP_POLICY_DEBUG) != 0 ? SKR_CHECK_FAIL : SKR_CHECK_PASS,
                  "POLICY 0x%llx: debug %s", (unsigned long long)r->policy,
                  (r->policy & SKR_SNP_POLICY_DEBUG) != 0 ? "allowed" : "not allowed");
    }
    if (o->check_vmpl) {
        add_check(res, "vmpl", r->vmpl == o->vmpl ? SKR_CHECK_PASS : SKR_CHECK_FAIL,
                  "report VMPL %u, expected %u", r->vmpl, o->vmpl);
    }
    if (o->has_min_tcb) {
        check_min_tcb(res, r, &o->min_tcb, p);
    }
    if (o->has_host_data) {
        check_bytes(res, "host_data", r->host_data, o->host_data, sizeof(r->host_data));
    }
    if (o->has_measurement) {
        check_bytes(res, "measurement", r->measurement, o->measurement, sizeof(r->measurement));
    }
    if (o->has_report_data) {
        check_bytes(res, "report_data", r->report_data, o->report_data, sizeof(r->report_data));
    }
}

/* Fields the ABI says must be zero or one (SNP ABI "ATTESTATION_REPORT": MBZ). */
static void
check_format(struct skr_snp_verify_result *res, const struct skr_snp_report *r)
{
    if (r->sig_algo != SKR_SNP_SIG_ALGO_ECDSA_P384_SHA384) {
        add_check(res, "report.format", SKR_CHECK_FAIL, "SIGNATURE_ALGO %u is not ECDSA P-384 (1)",
                  r->sig_algo);
        return;
    }
    if ((r->policy & SKR_SNP_POLICY_RESERVED_1) == 0) {
        add_check(res, "report.format", SKR_CHECK_FAIL, "POLICY bit 17 must be 1");
        return;
    }
    if ((r->signer_info >> 5) != 0 || r->reserved_04c != 0) {
        add_check(res, "report.format", SKR_CHECK_FAIL, "must-be-zero bits are set");
        return;
    }
    add_check(res, "report.format", SKR_CHECK_PASS, "version %u, ECDSA P-384", r->version);
}

/* The AMD extensions a VCEK/VLEK must carry (KDS spec 57230): productName and the SPLs, hwID
 * on a VCEK, fmcSPL on Turin. A certificate without them is not a VCEK, whatever it is named. */
static bool
check_extensions(struct skr_snp_verify_result *res, X509 *cert, struct skr_vcek_ext *ext)
{
    const char *missing = NULL;

    if (skr_vcek_ext_decode(cert, ext) != SKR_OK) {
        add_check(res, "vcek.extensions", SKR_CHECK_FAIL, "%s", skr_err_msg());
        return false;
    }
    if (ext->product_name[0] == '\0') {
        missing = "productName";
    } else if (!ext->has_bl || !ext->has_tee || !ext->has_snp || !ext->has_ucode) {
        missing = "an SPL (blSPL, teeSPL, snpSPL, ucodeSPL)";
    } else if (!ext->is_vlek && ext->hwid_len == 0) {
        missing = "hwID";
    } else if (skr_vcek_ext_product(ext) == SKR_SNP_PRODUCT_TURIN && !ext->has_fmc) {
        missing = "fmcSPL (Turin)";
    }
    if (missing != NULL) {
        add_check(res, "vcek.extensions", SKR_CHECK_FAIL,
                  "not a VCEK/VLEK: AMD extension %s is missing", missing);
        return false;
    }
    add_check(res, "vcek.extensions", SKR_CHECK_PASS, "AMD extensions decoded (%s)",
              ext->product_name);
    return true;
}

static skr_err finish(const struct skr_snp_verify_result *res);

static enum skr_snp_product
pick_product(const struct skr_snp_report *r, const struct skr_vcek_ext *ext,
             const struct skr_snp_verify_opts *o)
{
    enum skr_snp_product p = o->product;

    if (p == SKR_SNP_PRODUCT_UNKNOWN) {
        p = skr_snp_report_product(r);
    }
    if (p == SKR_SNP_PRODUCT_UNKNOWN && ext != NULL) {
        p = skr_vcek_ext_product(ext);
    }
    return p;
}

skr_err
skr_snp_verify(const struct skr_snp_report *r, struct skr_span raw,
               const struct skr_cert_set *certs, const struct skr_snp_verify_opts *opts,
               struct skr_snp_verify_result *res)
{
    struct skr_vcek_ext ext;
    bool have_ext;
    unsigned signing_key;
    enum skr_snp_product p;

    ENSURE(r != NULL && certs != NULL && opts != NULL && res != NULL, SKR_E_INVALID_ARG,
           "NULL argument");
    ENSURE(raw.len == SKR_SNP_REPORT_LEN, SKR_E_INVALID_ARG, "report must be 1184 bytes");
    ENSURE(certs->vcek != NULL, SKR_E_INVALID_ARG, "no VCEK/VLEK certificate");
    memset(res, 0, sizeof(*res));

    check_format(res, r);
    have_ext = check_extensions(res, certs->vcek, &ext);
    p = pick_product(r, have_ext ? &ext : NULL, opts);
    res->product = p;
    if (p == SKR_SNP_PRODUCT_UNKNOWN) {
        add_check(res, "product", SKR_CHECK_FAIL,
                  "cannot tell the product (Milan, Genoa, Turin): pass it as an option");
    } else if (have_ext && skr_vcek_ext_product(&ext) != SKR_SNP_PRODUCT_UNKNOWN &&
               skr_vcek_ext_product(&ext) != p) {
        add_check(res, "product", SKR_CHECK_FAIL, "report is %s but the VCEK is for %s",
                  skr_snp_product_name(p), ext.product_name);
    } else {
        add_check(res, "product", SKR_CHECK_PASS, "%s", skr_snp_product_name(p));
    }
    res->is_vlek = have_ext && ext.is_vlek;
    signing_key = SKR_SNP_SIGNER_SIGNING_KEY(r->signer_info);
    if (signing_key != (res->is_vlek ? SKR_SNP_SIGNING_KEY_VLEK : SKR_SNP_SIGNING_KEY_VCEK)) {
        add_check(res, "report.signing_key", SKR_CHECK_FAIL,
                  "report SIGNING_KEY %u does not name a %s", signing_key,
                  res->is_vlek ? "VLEK" : "VCEK");
    } else {
        add_check(res, "report.signing_key", SKR_CHECK_PASS, "signed with the %s",
                  res->is_vlek ? "VLEK" : "VCEK");
    }
    if (skr_snp_verify_signature(raw, X509_get0_pubkey(certs->vcek)) == SKR_OK) {
        add_check(res, "report.signature", SKR_CHECK_PASS, "ECDSA P-384 signature verifies");
    } else {
        add_check(res, "report.signature", SKR_CHECK_FAIL, "%s", skr_err_msg());
    }
    check_chain(res, certs, opts, p);
    if (have_ext && p != SKR_SNP_PRODUCT_UNKNOWN) {
        check_tcb_vs_vcek(res, r, &ext, p);
        check_chip_id(res, r, &ext);
    }
    if (certs->has_tcbm) {
        add_check(res, "tcb.thim_tcbm",
                  certs->tcbm == r->reported_tcb ? SKR_CHECK_PASS : SKR_CHECK_FAIL,
                  "certificates are for TCB %016llX, report REPORTED_TCB is %016llX",
                  (unsigned long long)certs->tcbm, (unsigned long long)r->reported_tcb);
    }
    check_user_options(res, r, opts, p);
    return finish(res);
}

static skr_err
finish(const struct skr_snp_verify_result *res)
{
    const struct skr_check *bad = skr_snp_verify_first_failure(res);

    skr_err_clear();
    if (bad != NULL) {
        FAILF(SKR_E_VERIFY, "check %s failed: %s", bad->name, bad->detail);
    }
    return SKR_OK;
}

skr_err
skr_snp_verify_certs(const struct skr_cert_set *certs, const struct skr_snp_verify_opts *opts,
                     struct skr_snp_verify_result *res)
{
    struct skr_vcek_ext ext;
    bool have_ext;
    enum skr_snp_product p;

    ENSURE(certs != NULL && opts != NULL && res != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(certs->vcek != NULL, SKR_E_INVALID_ARG, "no VCEK/VLEK certificate");
    memset(res, 0, sizeof(*res));
    have_ext = check_extensions(res, certs->vcek, &ext);
    p = opts->product != SKR_SNP_PRODUCT_UNKNOWN ? opts->product
        : have_ext                               ? skr_vcek_ext_product(&ext)
                                                 : SKR_SNP_PRODUCT_UNKNOWN;
    res->product = p;
    res->is_vlek = have_ext && ext.is_vlek;
    if (have_ext && skr_vcek_ext_product(&ext) != SKR_SNP_PRODUCT_UNKNOWN &&
        skr_vcek_ext_product(&ext) != p) {
        add_check(res, "product", SKR_CHECK_FAIL, "%s was asked but the VCEK is for %s",
                  skr_snp_product_name(p), ext.product_name);
    } else {
        add_check(res, "product", p != SKR_SNP_PRODUCT_UNKNOWN ? SKR_CHECK_PASS : SKR_CHECK_FAIL,
                  "%s", skr_snp_product_name(p));
    }
    check_chain(res, certs, opts, p);
    return finish(res);
}

const struct skr_check *
skr_snp_verify_first_failure(const struct skr_snp_verify_result *res)
{
    for (size_t i = 0; i < res->n; i++) {
        if (res->checks[i].status == SKR_CHECK_FAIL) {
            return &res->checks[i];
        }
    }
    return NULL;
}

skr_err
skr_snp_verify_to_json(const struct skr_snp_verify_result *res, json_t **ret)
{
    static const char *const status_names[] = { "pass", "fail", "skip" };
    _cleanup_(json_decrefp) json_t *o = json_object();
    json_t *arr;

    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(o, "ok", json_boolean(skr_snp_verify_first_failure(res) == NULL)));
    TRY(skr_json_set(o, "product", json_string(skr_snp_product_name(res->product))));
    TRY(skr_json_set(o, "signing_key", json_string(res->is_vlek ? "vlek" : "vcek")));
    /* made only now: skr_json_set takes it even on failure, an earlier TRY would leak it */
    arr = json_array();
    TRY(skr_json_set(o, "checks", arr));
    for (size_t i = 0; i < res->n; i++) {
        json_t *c = json_pack("{s:s,s:s,s:s}", "name", res->checks[i].name, "status",
                              status_names[res->checks[i].status], "detail", res->checks[i].detail);

        ENSURE(c != NULL && json_array_append_new(arr, c) == 0, SKR_E_NOMEM, "out of memory");
    }
    *ret = TAKE_PTR(o);
    return SKR_OK;
}
