/*
 * test_snp_verify.c - lib/snp_verify: every real vector verifies with every check passing;
 * the signature check alone (bit flips across the signed bytes and r/s, nonzero high bytes,
 * wrong key types); TCB, CHIP_ID, signing-key and format tampering; chains with the wrong
 * product's roots, a self-made root (trusted only through extra_roots), an imposter ARK and
 * expired/not-yet-valid roots; the user's optional checks; the JSON form; argument errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "amd_roots.h"
#include "buf.h"
#include "err.h"
#include "ossl.h"
#include "snp_certs.h"
#include "snp_report.h"
#include "snp_verify.h"

/* fail_msg() never returns (it longjmps out of the test); cmocka 1.1.5 does not say so, and gcc
 * -fanalyzer would follow a failed check into a NULL dereference. */
void _fail(const char *const file, const int line) __attribute__((noreturn));

#define SCC_REPORT  "scc/test_data__snp_report.bin"
#define SCC_THIM    "scc/test_data__uvm_host_amd_certificate.json"
#define SCC_PEM     "scc/test_data__uvm_host_amd_certificate.pem"
#define GSG_REPORT  "gsg/attestation.bin"
#define GSG_VCEK    "gsg/vcek.testcer"
#define VT_REPORT   "virtee/report_milan.bin"
#define VT_VCEK     "virtee/vcek_milan.der"
#define PSK_REPORT  "psk/evidence_report.bin"
#define PSK_CHAIN   "psk/endorsements_chain.pem"
#define TURIN_VCEK  "virtee/vcek_turin.der"
#define TURIN_CHAIN "virtee/cert_chain_turin"
#define GENOA_CHAIN "gsg/trust/ask_ark_genoa.pem"

#define OFF_R 0x2A0u
#define OFF_S 0x2E8u

/* ---- helpers ------------------------------------------------------------------------- */

/* Two RSA-2048 keys for the self-made ARK and ASK, generated once for the group. */
static EVP_PKEY *g_ark_key;
static EVP_PKEY *g_ask_key;

static void
load_file(const char *rel, struct skr_buf *b)
{
    const char *dir = getenv("SKR_TEST_DATA");
    char path[1024];

    assert_non_null(dir);
    assert_true(snprintf(path, sizeof(path), "%s/%s", dir, rel) < (int)sizeof(path));
    skr_buf_init(b, 1u << 20);
    if (skr_read_file(path, b) != SKR_OK) {
        fail_msg("cannot read %s: %s", path, skr_err_msg());
    }
}

struct vec {
    struct skr_snp_report r;
    uint8_t raw[SKR_SNP_REPORT_LEN];
    struct skr_cert_set certs;
};

static void
load_certs(const char *rel, struct skr_cert_set *s)
{
    struct skr_buf b;

    memset(s, 0, sizeof(*s));
    load_file(rel, &b);
    if (skr_cert_set_load(skr_buf_span(&b), s) != SKR_OK) {
        fail_msg("cannot load certificates %s: %s", rel, skr_err_msg());
    }
    skr_buf_done(&b);
    assert_non_null(s->vcek);
}

static void
vec_load(struct vec *v, const char *report, const char *certs)
{
    struct skr_buf b;

    memset(v, 0, sizeof(*v));
    load_file(report, &b);
    if (skr_snp_report_load(skr_buf_span(&b), &v->r, v->raw) != SKR_OK) {
        fail_msg("cannot load report %s: %s", report, skr_err_msg());
    }
    skr_buf_done(&b);
    load_certs(certs, &v->certs);
}

static void
vec_done(struct vec *v)
{
    skr_cert_set_done(&v->certs);
}

/* After editing v->r: the raw bytes follow, as the API requires. */
static void
vec_reserialize(struct vec *v)
{
    skr_snp_report_serialize(&v->r, v->raw);
}

static skr_err
vec_verify(const struct vec *v, const struct skr_snp_verify_opts *o,
           struct skr_snp_verify_result *res)
{
    return skr_snp_verify(&v->r, skr_span_make(v->raw, sizeof(v->raw)), &v->certs, o, res);
}

static const struct skr_check *
find_check(const struct skr_snp_verify_result *res, const char *name)
{
    for (size_t i = 0; i < res->n; i++) {
        if (strcmp(res->checks[i].name, name) == 0) {
            return &res->checks[i];
        }
    }
    return NULL;
}

static const char *
status_name(enum skr_check_status s)
{
    return s == SKR_CHECK_PASS ? "PASS" : s == SKR_CHECK_FAIL ? "FAIL" : "SKIP";
}

/* The named check is present once with status want; returns it. */
static const struct skr_check *
want_check(const struct skr_snp_verify_result *res, const char *name, enum skr_check_status want)
{
    const struct skr_check *c = find_check(res, name);
    size_t count = 0;

    if (c == NULL) {
        fail_msg("check %s missing", name);
    }
    for (size_t i = 0; i < res->n; i++) {
        count += strcmp(res->checks[i].name, name) == 0;
    }
    assert_int_equal(count, 1);
    if (c->status != want) {
        fail_msg("check %s is %s, expected %s: %s", name, status_name(c->status), status_name(want),
                 c->detail);
    }
    return c;
}

static void
expect_detail(const struct skr_check *c, const char *needle)
{
    if (strstr(c->detail, needle) == NULL) {
        fail_msg("detail of %s '%s' lacks '%s'", c->name, c->detail, needle);
    }
}

static void
expect_no_failure(const struct skr_snp_verify_result *res)
{
    const struct skr_check *bad = skr_snp_verify_first_failure(res);

    if (bad != NULL) {
        fail_msg("check %s failed: %s", bad->name, bad->detail);
    }
    for (size_t i = 0; i < res->n; i++) {
        assert_int_not_equal(res->checks[i].status, SKR_CHECK_FAIL);
    }
}

static size_t
count_failures(const struct skr_snp_verify_result *res)
{
    size_t n = 0;

    for (size_t i = 0; i < res->n; i++) {
        n += res->checks[i].status == SKR_CHECK_FAIL;
    }
    return n;
}

static X509_NAME *
cn_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();

    assert_non_null(n);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
    return n;
}

/* A certificate for pub, signed by signer (SHA-384, PKCS#1 v1.5), valid from now+nb to now+na
 * seconds. */
static X509 *
make_cert(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub, EVP_PKEY *signer,
          long nb, long na)
{
    static long serial = 1;
    X509 *x = X509_new();

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na));
    assert_int_equal(X509_set_subject_name(x, subject), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer), 1);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    assert_true(X509_sign(x, signer, EVP_sha384()) > 0);
    return x;
}

/* A self-signed "ARK" named cn, from the group's ARK key. */
static X509 *
make_ark(const char *cn, long nb, long na)
{
    X509_NAME *n = cn_name(cn);
    X509 *x = make_cert(n, n, g_ark_key, g_ark_key, nb, na);

    X509_NAME_free(n);
    return x;
}

/* An "ASK" signed by ark, with the subject the real VCEK names as its issuer (so the VCEK link
 * fails on the signature, not on the name). */
static X509 *
make_ask(X509 *ark, X509 *vcek)
{
    return make_cert(X509_get_issuer_name(vcek), X509_get_subject_name(ark), g_ask_key, g_ark_key,
                     -3600, 86400);
}

static STACK_OF(X509) * one_root(X509 *x)
{
    STACK_OF(X509) *sk = sk_X509_new_null();

    assert_non_null(sk);
    assert_true(sk_X509_push(sk, x) > 0);
    return sk;
}

static int
group_setup(void **state)
{
    (void)state;
    g_ark_key = EVP_RSA_gen(2048);
    g_ask_key = EVP_RSA_gen(2048);
    return g_ark_key != NULL && g_ask_key != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(g_ark_key);
    EVP_PKEY_free(g_ask_key);
    return 0;
}

/* ---- real vectors ---------------------------------------------------------------------- */

static const struct {
    const char *report;
    const char *certs;
    bool thim;
} vectors[] = {
    { SCC_REPORT, SCC_THIM, true },   { SCC_REPORT, SCC_PEM, false },
    { GSG_REPORT, GSG_VCEK, false },  { VT_REPORT, VT_VCEK, false },
    { PSK_REPORT, PSK_CHAIN, false },
};

static void
test_real_vectors(void **state)
{
    static const char *const must_pass[] = {
        "report.format",      "vcek.extensions",      "product",
        "report.signing_key", "report.signature",     "chain.ark_trusted",
        "chain.ark_self",     "chain.ask_ark",        "chain.vcek_ask",
        "chain.validity",     "tcb.reported_vs_vcek", "chip_id.hwid",
    };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(vectors); i++) {
        struct skr_snp_verify_opts opts = { 0 };
        struct skr_snp_verify_result res;
        struct vec v;
        skr_err e;

        vec_load(&v, vectors[i].report, vectors[i].certs);
        memset(&res, 0xA5, sizeof(res));
        e = vec_verify(&v, &opts, &res);
        if (e != SKR_OK) {
            fail_msg("%s with %s: %s", vectors[i].report, vectors[i].certs, skr_err_msg());
        }
        expect_no_failure(&res);
        assert_int_equal(res.product, SKR_SNP_PRODUCT_MILAN);
        assert_false(res.is_vlek);
        for (size_t k = 0; k < SKR_ARRAY_LEN(must_pass); k++) {
            want_check(&res, must_pass[k], SKR_CHECK_PASS);
        }
        expect_detail(find_check(&res, "chain.ark_trusted"), "ARK-Milan");
        if (vectors[i].thim) {
            assert_true(v.certs.has_tcbm);
            want_check(&res, "tcb.thim_tcbm", SKR_CHECK_PASS);
            assert_int_equal(res.n, SKR_ARRAY_LEN(must_pass) + 1);
        } else {
            assert_null(find_check(&res, "tcb.thim_tcbm"));
            assert_int_equal(res.n, SKR_ARRAY_LEN(must_pass));
        }
        /* no optional check ran */
        assert_null(find_check(&res, "policy.no_debug"));
        assert_null(find_check(&res, "vmpl"));
        assert_null(find_check(&res, "tcb.minimum"));
        /* the certificates alone verify too */
        e = skr_snp_verify_certs(&v.certs, &opts, &res);
        assert_int_equal(e, SKR_OK);
        expect_no_failure(&res);
        assert_int_equal(res.product, SKR_SNP_PRODUCT_MILAN);
        want_check(&res, "chain.vcek_ask", SKR_CHECK_PASS);
        assert_null(find_check(&res, "report.signature"));
        vec_done(&v);
    }
}

/* A THIM tcbm that differs from REPORTED_TCB fails tcb.thim_tcbm only. */
static void
test_thim_tcbm_mismatch(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    struct vec v;

    (void)state;
    vec_load(&v, SCC_REPORT, SCC_THIM);
    v.certs.tcbm ^= 1;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "tcb.thim_tcbm", SKR_CHECK_FAIL);
    want_check(&res, "report.signature", SKR_CHECK_PASS);
    assert_int_equal(count_failures(&res), 1);
    assert_string_equal(skr_snp_verify_first_failure(&res)->name, "tcb.thim_tcbm");
    vec_done(&v);
}

/* ---- signature alone ---------------------------------------------------------------------- */

static void
expect_sig_fails(const uint8_t *raw, EVP_PKEY *key, size_t off, const char *what)
{
    skr_err e = skr_snp_verify_signature(skr_span_make(raw, SKR_SNP_REPORT_LEN), key);

    if (e != SKR_E_VERIFY) {
        fail_msg("%s at 0x%zx: got %d, expected SKR_E_VERIFY", what, off, (int)e);
    }
}

static void
test_signature(void **state)
{
    struct vec v;
    uint8_t raw[SKR_SNP_REPORT_LEN];
    EVP_PKEY *key;
    size_t n_flips = 0;

    (void)state;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    key = X509_get0_pubkey(v.certs.vcek);
    assert_non_null(key);
    assert_int_equal(skr_snp_verify_signature(skr_span_make(v.raw, sizeof(v.raw)), key), SKR_OK);

    /* one bit flipped anywhere in the signed bytes */
    for (size_t off = 0; off < SKR_SNP_REPORT_SIGNED_LEN; off += 13) {
        memcpy(raw, v.raw, sizeof(raw));
        raw[off] ^= (uint8_t)(1u << (off % 8));
        expect_sig_fails(raw, key, off, "flip in signed bytes");
        n_flips++;
    }
    memcpy(raw, v.raw, sizeof(raw));
    raw[SKR_SNP_REPORT_SIGNED_LEN - 1] ^= 0x80;
    expect_sig_fails(raw, key, SKR_SNP_REPORT_SIGNED_LEN - 1, "flip in last signed byte");
    assert_true(n_flips > 50);

    /* one bit flipped in the significant 48 bytes of r and of s */
    for (size_t i = 0; i < 48; i += 5) {
        memcpy(raw, v.raw, sizeof(raw));
        raw[OFF_R + i] ^= (uint8_t)(1u << (i % 8));
        expect_sig_fails(raw, key, OFF_R + i, "flip in r");
        memcpy(raw, v.raw, sizeof(raw));
        raw[OFF_S + i] ^= (uint8_t)(1u << ((i + 3) % 8));
        expect_sig_fails(raw, key, OFF_S + i, "flip in s");
    }
    /* r and s swapped */
    memcpy(raw, v.raw, sizeof(raw));
    memcpy(raw + OFF_R, v.raw + OFF_S, 72);
    memcpy(raw + OFF_S, v.raw + OFF_R, 72);
    expect_sig_fails(raw, key, OFF_R, "r and s swapped");
    /* r or s zero */
    memcpy(raw, v.raw, sizeof(raw));
    memset(raw + OFF_R, 0, 72);
    expect_sig_fails(raw, key, OFF_R, "r zero");
    memcpy(raw, v.raw, sizeof(raw));
    memset(raw + OFF_S, 0, 72);
    expect_sig_fails(raw, key, OFF_S, "s zero");

    /* a nonzero byte in the high 24 bytes of r or s (valid low bytes kept) */
    for (size_t i = 48; i < 72; i += 7) {
        memcpy(raw, v.raw, sizeof(raw));
        raw[OFF_R + i] = 1;
        expect_sig_fails(raw, key, OFF_R + i, "high byte of r");
        memcpy(raw, v.raw, sizeof(raw));
        raw[OFF_S + i] = 0x80;
        expect_sig_fails(raw, key, OFF_S + i, "high byte of s");
    }
    memcpy(raw, v.raw, sizeof(raw));
    raw[OFF_R + 71] = 0xff;
    expect_sig_fails(raw, key, OFF_R + 71, "top byte of r");

    /* the original still verifies (nothing was changed in place) */
    assert_int_equal(skr_snp_verify_signature(skr_span_make(v.raw, sizeof(v.raw)), key), SKR_OK);
    vec_done(&v);
}

static void
test_signature_wrong_keys(void **state)
{
    struct vec v;
    struct skr_cert_set other;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *p256 = EVP_EC_gen("P-256");
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *p384 = EVP_EC_gen("P-384");
    struct skr_span raw;

    (void)state;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    raw = skr_span_make(v.raw, sizeof(v.raw));
    assert_non_null(p256);
    assert_non_null(p384);
    /* RSA key passed as the VCEK */
    assert_int_equal(skr_snp_verify_signature(raw, g_ark_key), SKR_E_VERIFY);
    /* EC keys of the wrong curve or just another P-384 key */
    assert_int_equal(skr_snp_verify_signature(raw, p256), SKR_E_VERIFY);
    assert_int_equal(skr_snp_verify_signature(raw, p384), SKR_E_VERIFY);
    /* another real VCEK (another chip) */
    load_certs(VT_VCEK, &other);
    assert_int_equal(skr_snp_verify_signature(raw, X509_get0_pubkey(other.vcek)), SKR_E_VERIFY);
    skr_cert_set_done(&other);
    /* the right key still verifies */
    assert_int_equal(skr_snp_verify_signature(raw, X509_get0_pubkey(v.certs.vcek)), SKR_OK);
    vec_done(&v);
}

/* ---- report tampering ----------------------------------------------------------------- */

static void
test_tcb_tampered(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    struct skr_snp_tcb t;
    const struct skr_check *c;
    struct vec v;

    (void)state;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    skr_snp_tcb_decode(v.r.reported_tcb, SKR_SNP_PRODUCT_MILAN, &t);
    assert_int_equal(t.snp, 5);
    assert_int_equal(t.bootloader, 2);

    /* SNP SPL raised by one */
    t.snp = 6;
    v.r.reported_tcb = skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_MILAN);
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "report.signature", SKR_CHECK_FAIL);
    c = want_check(&res, "tcb.reported_vs_vcek", SKR_CHECK_FAIL);
    expect_detail(c, "snp report=6 vcek=5");
    assert_null(strstr(c->detail, "bl report="));
    /* the chain itself is still fine */
    want_check(&res, "chain.vcek_ask", SKR_CHECK_PASS);
    want_check(&res, "chip_id.hwid", SKR_CHECK_PASS);
    assert_int_equal(count_failures(&res), 2);

    /* two components lowered: both named */
    t.snp = 4;
    t.bootloader = 1;
    v.r.reported_tcb = skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_MILAN);
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "report.signature", SKR_CHECK_FAIL);
    c = want_check(&res, "tcb.reported_vs_vcek", SKR_CHECK_FAIL);
    expect_detail(c, "bl report=1 vcek=2");
    expect_detail(c, "snp report=4 vcek=5");
    assert_null(strstr(c->detail, "tee report="));
    vec_done(&v);
}

static void
test_chip_id(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    struct vec v;

    (void)state;
    /* masked (all zero): hwID not compared, but the signature breaks */
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    memset(v.r.chip_id, 0, sizeof(v.r.chip_id));
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "chip_id.hwid", SKR_CHECK_SKIP), "masked");
    want_check(&res, "report.signature", SKR_CHECK_FAIL);
    want_check(&res, "tcb.reported_vs_vcek", SKR_CHECK_PASS);
    assert_int_equal(count_failures(&res), 1);
    vec_done(&v);

    /* one byte different: another chip */
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    v.r.chip_id[63] ^= 1;
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "chip_id.hwid", SKR_CHECK_FAIL);
    want_check(&res, "report.signature", SKR_CHECK_FAIL);
    vec_done(&v);

    /* a report with another chip's VCEK: chip id and signature fail, the chain passes */
    vec_load(&v, SCC_REPORT, GSG_VCEK);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "chip_id.hwid", SKR_CHECK_FAIL);
    want_check(&res, "report.signature", SKR_CHECK_FAIL);
    want_check(&res, "chain.vcek_ask", SKR_CHECK_PASS);
    vec_done(&v);
}

static void
test_signing_key_and_format(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    const struct skr_check *c;
    struct vec v;

    (void)state;
    vec_load(&v, VT_REPORT, VT_VCEK);
    assert_int_equal(SKR_SNP_SIGNER_SIGNING_KEY(v.r.signer_info), SKR_SNP_SIGNING_KEY_VCEK);
    v.r.signer_info = (v.r.signer_info & ~(7u << 2)) | (1u << 2);
    assert_int_equal(SKR_SNP_SIGNER_SIGNING_KEY(v.r.signer_info), SKR_SNP_SIGNING_KEY_VLEK);
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    c = want_check(&res, "report.signing_key", SKR_CHECK_FAIL);
    expect_detail(c, "SIGNING_KEY 1");
    want_check(&res, "report.signature", SKR_CHECK_FAIL);
    want_check(&res, "report.format", SKR_CHECK_PASS);
    /* the error message names the first failed check */
    assert_non_null(strstr(skr_err_msg(), "report.signing_key"));
    vec_done(&v);

    /* SIGNATURE_ALGO other than 1 */
    vec_load(&v, VT_REPORT, VT_VCEK);
    v.r.sig_algo = 2;
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "report.format", SKR_CHECK_FAIL), "SIGNATURE_ALGO 2");
    assert_string_equal(skr_snp_verify_first_failure(&res)->name, "report.format");
    vec_done(&v);

    /* POLICY bit 17 (must be one) cleared */
    vec_load(&v, VT_REPORT, VT_VCEK);
    v.r.policy &= ~SKR_SNP_POLICY_RESERVED_1;
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "report.format", SKR_CHECK_FAIL), "bit 17");
    vec_done(&v);

    /* must-be-zero SIGNER_INFO bits */
    vec_load(&v, VT_REPORT, VT_VCEK);
    v.r.signer_info |= 1u << 5;
    vec_reserialize(&v);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "report.format", SKR_CHECK_FAIL);
    vec_done(&v);
}

/* ---- chains ----------------------------------------------------------------------------- */

/* A set from a VCEK file plus a PEM ASK/ARK file, roles told apart by the ARK's CN prefix. */
static void
load_vcek_with_chain(const char *vcek_rel, const char *chain_rel, struct skr_cert_set *s)
{
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *sk = NULL;
    struct skr_buf b;

    load_certs(vcek_rel, s);
    assert_null(s->ask);
    assert_null(s->ark);
    load_file(chain_rel, &b);
    assert_int_equal(skr_pem_read_certs(skr_buf_span(&b), &sk), SKR_OK);
    skr_buf_done(&b);
    assert_int_equal(sk_X509_num(sk), 2);
    while (sk_X509_num(sk) > 0) {
        X509 *x = sk_X509_shift(sk);
        char cn[64];

        skr_x509_cn(x, cn, sizeof(cn));
        if (strncmp(cn, "ARK-", 4) == 0) {
            assert_null(s->ark);
            s->ark = x;
        } else {
            assert_null(s->ask);
            s->ask = x;
        }
    }
    assert_non_null(s->ask);
    assert_non_null(s->ark);
}

static void
test_turin_chain(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    struct skr_cert_set s;

    (void)state;
    load_vcek_with_chain(TURIN_VCEK, TURIN_CHAIN, &s);
    assert_int_equal(skr_snp_verify_certs(&s, &opts, &res), SKR_OK);
    expect_no_failure(&res);
    assert_int_equal(res.product, SKR_SNP_PRODUCT_TURIN);
    want_check(&res, "product", SKR_CHECK_PASS);
    expect_detail(want_check(&res, "chain.ark_trusted", SKR_CHECK_PASS), "ARK-Turin");
    want_check(&res, "chain.ark_self", SKR_CHECK_PASS);
    want_check(&res, "chain.ask_ark", SKR_CHECK_PASS);
    want_check(&res, "chain.vcek_ask", SKR_CHECK_PASS);
    want_check(&res, "chain.validity", SKR_CHECK_PASS);

    /* the Turin chain given, but the product forced to Milan: the ARK is Turin's */
    opts.product = SKR_SNP_PRODUCT_MILAN;
    assert_int_equal(skr_snp_verify_certs(&s, &opts, &res), SKR_E_VERIFY);
    assert_int_equal(res.product, SKR_SNP_PRODUCT_MILAN);
    want_check(&res, "product", SKR_CHECK_FAIL);
    want_check(&res, "chain.ark_trusted", SKR_CHECK_FAIL);
    skr_cert_set_done(&s);

    /* the VCEK alone: ASK/ARK come from the built-in Turin roots */
    load_certs(TURIN_VCEK, &s);
    opts.product = SKR_SNP_PRODUCT_UNKNOWN;
    assert_int_equal(skr_snp_verify_certs(&s, &opts, &res), SKR_OK);
    assert_int_equal(res.product, SKR_SNP_PRODUCT_TURIN);
    want_check(&res, "chain.vcek_ask", SKR_CHECK_PASS);
    /* ... and forced to Milan: the built-in Milan ASK did not sign it */
    opts.product = SKR_SNP_PRODUCT_MILAN;
    assert_int_equal(skr_snp_verify_certs(&s, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "chain.vcek_ask", SKR_CHECK_FAIL);
    skr_cert_set_done(&s);
}

static void
test_wrong_product_roots(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    const struct skr_check *c;
    struct vec v;

    (void)state;
    /* Milan VCEK with the Genoa ASK/ARK: pinned, but not the root of this product */
    memset(&v, 0, sizeof(v));
    {
        struct vec tmp;

        vec_load(&tmp, GSG_REPORT, GSG_VCEK);
        v.r = tmp.r;
        memcpy(v.raw, tmp.raw, sizeof(v.raw));
        vec_done(&tmp);
    }
    load_vcek_with_chain(GSG_VCEK, GENOA_CHAIN, &v.certs);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    assert_int_equal(res.product, SKR_SNP_PRODUCT_MILAN);
    c = want_check(&res, "chain.ark_trusted", SKR_CHECK_FAIL);
    expect_detail(c, "Genoa");
    want_check(&res, "chain.ask_ark", SKR_CHECK_PASS);
    want_check(&res, "chain.vcek_ask", SKR_CHECK_FAIL);
    want_check(&res, "report.signature", SKR_CHECK_PASS);
    assert_string_equal(skr_snp_verify_first_failure(&res)->name, "chain.ark_trusted");
    vec_done(&v);

    /* product forced to Genoa on a Milan report + VCEK */
    vec_load(&v, VT_REPORT, VT_VCEK);
    opts.product = SKR_SNP_PRODUCT_GENOA;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    assert_int_equal(res.product, SKR_SNP_PRODUCT_GENOA);
    c = want_check(&res, "product", SKR_CHECK_FAIL);
    expect_detail(c, "Milan");
    want_check(&res, "chain.vcek_ask", SKR_CHECK_FAIL);
    /* forced to the right product: all well */
    opts.product = SKR_SNP_PRODUCT_MILAN;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    want_check(&res, "product", SKR_CHECK_PASS);
    vec_done(&v);
}

static void
test_self_made_root(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *roots = NULL;
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *wrong_roots = NULL;
    const struct skr_check *c;
    struct vec v;

    (void)state;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    assert_null(v.certs.ask);
    assert_null(v.certs.ark);
    v.certs.ark = make_ark("ARK-Test", -3600, 86400);
    v.certs.ask = make_ask(v.certs.ark, v.certs.vcek);

    /* not trusted without extra roots */
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    c = want_check(&res, "chain.ark_trusted", SKR_CHECK_FAIL);
    expect_detail(c, "ARK-Test");
    expect_detail(c, "neither");
    want_check(&res, "chain.ark_self", SKR_CHECK_PASS);
    want_check(&res, "chain.ask_ark", SKR_CHECK_PASS);
    expect_detail(want_check(&res, "chain.vcek_ask", SKR_CHECK_FAIL), "does not verify");
    want_check(&res, "report.signature", SKR_CHECK_PASS);
    want_check(&res, "chain.validity", SKR_CHECK_PASS);

    /* an unrelated extra root does not help */
    wrong_roots = one_root(X509_dup(v.certs.ask));
    opts.extra_roots = wrong_roots;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "chain.ark_trusted", SKR_CHECK_FAIL);

    /* trusted as an extra root (a separate copy: compared by content) */
    roots = one_root(X509_dup(v.certs.ark));
    opts.extra_roots = roots;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "chain.ark_trusted", SKR_CHECK_PASS), "extra root");
    want_check(&res, "chain.ask_ark", SKR_CHECK_PASS);
    /* the real VCEK was not signed by the self-made ASK */
    want_check(&res, "chain.vcek_ask", SKR_CHECK_FAIL);
    assert_string_equal(skr_snp_verify_first_failure(&res)->name, "chain.vcek_ask");
    assert_int_equal(count_failures(&res), 1);

    /* the certificates alone: same outcome */
    assert_int_equal(skr_snp_verify_certs(&v.certs, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "chain.ark_trusted", SKR_CHECK_PASS);
    want_check(&res, "chain.vcek_ask", SKR_CHECK_FAIL);
    vec_done(&v);
}

/* A certificate that copies the name of the real Milan ARK is not the pinned root. */
static void
test_imposter_ark(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    _cleanup_(X509_freep) X509 *real_ask = NULL;
    _cleanup_(X509_freep) X509 *real_ark = NULL;
    enum skr_snp_product p = SKR_SNP_PRODUCT_UNKNOWN;
    struct vec v;

    (void)state;
    assert_int_equal(skr_amd_roots_get(SKR_SNP_PRODUCT_MILAN, false, &real_ask, &real_ark), SKR_OK);
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    v.certs.ark = make_cert(X509_get_subject_name(real_ark), X509_get_subject_name(real_ark),
                            g_ark_key, g_ark_key, -3600, 86400);
    assert_false(skr_amd_roots_is_ark(v.certs.ark, &p));
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "chain.ark_trusted", SKR_CHECK_FAIL), "ARK-Milan");
    want_check(&res, "chain.ark_self", SKR_CHECK_PASS);
    /* the built-in ASK is not signed by the imposter's key */
    expect_detail(want_check(&res, "chain.ask_ark", SKR_CHECK_FAIL), "does not verify");
    want_check(&res, "chain.vcek_ask", SKR_CHECK_PASS);
    vec_done(&v);
}

static void
test_validity(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *roots = NULL;
    struct vec v;

    (void)state;
    /* an expired extra root */
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    v.certs.ark = make_ark("ARK-Old", -2 * 86400, -86400);
    v.certs.ask = make_ask(v.certs.ark, v.certs.vcek);
    roots = one_root(X509_dup(v.certs.ark));
    opts.extra_roots = roots;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "chain.ark_trusted", SKR_CHECK_PASS);
    expect_detail(want_check(&res, "chain.validity", SKR_CHECK_FAIL), "expired");
    opts.ignore_time = true;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "chain.validity", SKR_CHECK_SKIP);
    assert_string_equal(skr_snp_verify_first_failure(&res)->name, "chain.vcek_ask");
    vec_done(&v);
    skr_x509_stack_free(TAKE_PTR(roots));

    /* a root that is not valid yet */
    opts.ignore_time = false;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    v.certs.ark = make_ark("ARK-Future", 86400, 2 * 86400);
    v.certs.ask = make_ask(v.certs.ark, v.certs.vcek);
    roots = one_root(X509_dup(v.certs.ark));
    opts.extra_roots = roots;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "chain.validity", SKR_CHECK_FAIL), "not valid yet");
    vec_done(&v);

    /* ignore_time on a real vector: validity skipped, everything else passes */
    opts.extra_roots = NULL;
    opts.ignore_time = true;
    vec_load(&v, SCC_REPORT, SCC_PEM);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    expect_detail(want_check(&res, "chain.validity", SKR_CHECK_SKIP), "option");
    want_check(&res, "chain.vcek_ask", SKR_CHECK_PASS);
    vec_done(&v);
}

/* Adds a raw extension (value bytes as given) to x and signs it again. */
static void
add_raw_ext(X509 *x, const char *oid, const uint8_t *v, size_t n)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext;

    assert_non_null(obj);
    assert_non_null(data);
    assert_int_equal(ASN1_OCTET_STRING_set(data, v, (int)n), 1);
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, data);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(data);
    ASN1_OBJECT_free(obj);
    assert_true(X509_sign(x, g_ark_key, EVP_sha384()) > 0);
}

/* A certificate that is not a VCEK (no AMD extensions, RSA key) in the VCEK's place. */
static void
test_not_a_vcek(void **state)
{
    static const uint8_t bad_int[] = { 0x04, 0x01, 0x02 }; /* an OCTET STRING, not an INTEGER */
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    struct vec v;

    (void)state;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    X509_free(v.certs.vcek);
    v.certs.vcek = make_ark("ARK-Test", -3600, 86400);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    /* the decoder treats every AMD extension as optional; verification requires them */
    expect_detail(want_check(&res, "vcek.extensions", SKR_CHECK_FAIL), "productName is missing");
    /* a v2 report has no CPUID, the certificate no productName */
    assert_int_equal(res.product, SKR_SNP_PRODUCT_UNKNOWN);
    want_check(&res, "product", SKR_CHECK_FAIL);
    expect_detail(want_check(&res, "report.signature", SKR_CHECK_FAIL), "not an EC key");
    want_check(&res, "chain.ark_trusted", SKR_CHECK_FAIL);
    assert_null(find_check(&res, "tcb.reported_vs_vcek"));
    assert_null(find_check(&res, "chip_id.hwid"));

    /* with the product given, the certificate is still refused as a VCEK; TCB and chip id are
     * not compared against extensions that are not there */
    opts.product = SKR_SNP_PRODUCT_MILAN;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "product", SKR_CHECK_PASS);
    want_check(&res, "vcek.extensions", SKR_CHECK_FAIL);
    assert_null(find_check(&res, "tcb.reported_vs_vcek"));
    assert_null(find_check(&res, "chip_id.hwid"));
    want_check(&res, "chain.vcek_ask", SKR_CHECK_FAIL);
    want_check(&res, "report.signature", SKR_CHECK_FAIL);

    opts.product = SKR_SNP_PRODUCT_UNKNOWN;
    assert_int_equal(skr_snp_verify_certs(&v.certs, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "product", SKR_CHECK_FAIL);

    /* a malformed blSPL extension: vcek.extensions fails, with the decoder's reason */
    add_raw_ext(v.certs.vcek, "1.3.6.1.4.1.3704.1.3.1", bad_int, sizeof(bad_int));
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "vcek.extensions", SKR_CHECK_FAIL), "INTEGER");
    assert_string_equal(skr_snp_verify_first_failure(&res)->name, "vcek.extensions");
    assert_null(find_check(&res, "tcb.reported_vs_vcek"));
    assert_int_equal(skr_snp_verify_certs(&v.certs, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "vcek.extensions", SKR_CHECK_FAIL);
    vec_done(&v);
}

/* ---- the user's options ----------------------------------------------------------------- */

static void
test_no_debug(void **state)
{
    struct skr_snp_verify_opts opts = { .check_no_debug = true };
    struct skr_snp_verify_result res;
    struct vec v;

    (void)state;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    assert_int_equal(v.r.policy, 0xb0000);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "policy.no_debug", SKR_CHECK_FAIL), "0xb0000");
    assert_int_equal(count_failures(&res), 1);
    assert_non_null(strstr(skr_err_msg(), "policy.no_debug"));
    vec_done(&v);

    vec_load(&v, SCC_REPORT, SCC_THIM);
    assert_int_equal(v.r.policy & SKR_SNP_POLICY_DEBUG, 0);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    want_check(&res, "policy.no_debug", SKR_CHECK_PASS);
    vec_done(&v);
}

static void
test_vmpl(void **state)
{
    struct skr_snp_verify_opts opts = { .check_vmpl = true };
    struct skr_snp_verify_result res;
    struct vec v;

    (void)state;
    vec_load(&v, SCC_REPORT, SCC_THIM);
    opts.vmpl = v.r.vmpl;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    want_check(&res, "vmpl", SKR_CHECK_PASS);
    opts.vmpl = v.r.vmpl + 1;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_detail(want_check(&res, "vmpl", SKR_CHECK_FAIL), "expected");
    assert_int_equal(count_failures(&res), 1);
    vec_done(&v);
}

static void
test_min_tcb(void **state)
{
    struct skr_snp_verify_opts opts = { .has_min_tcb = true };
    struct skr_snp_verify_result res;
    struct skr_snp_tcb t;
    struct vec v;

    (void)state;
    vec_load(&v, SCC_REPORT, SCC_THIM);
    skr_snp_tcb_decode(v.r.reported_tcb, SKR_SNP_PRODUCT_MILAN, &t);

    /* exactly the reported TCB */
    opts.min_tcb = t;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    want_check(&res, "tcb.minimum", SKR_CHECK_PASS);
    /* below it (all zero) */
    memset(&opts.min_tcb, 0, sizeof(opts.min_tcb));
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    want_check(&res, "tcb.minimum", SKR_CHECK_PASS);
    /* fmc only counts on Turin */
    opts.min_tcb = t;
    opts.min_tcb.fmc = 255;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    want_check(&res, "tcb.minimum", SKR_CHECK_PASS);

    /* each component one above */
    for (int k = 0; k < 4; k++) {
        opts.min_tcb = t;
        switch (k) {
        case 0:
            opts.min_tcb.bootloader++;
            break;
        case 1:
            opts.min_tcb.tee++;
            break;
        case 2:
            opts.min_tcb.snp++;
            break;
        default:
            opts.min_tcb.microcode++;
            break;
        }
        assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
        expect_detail(want_check(&res, "tcb.minimum", SKR_CHECK_FAIL), "below minimum");
        assert_int_equal(count_failures(&res), 1);
    }
    /* one component above, another below: still fails */
    opts.min_tcb = t;
    opts.min_tcb.snp++;
    opts.min_tcb.microcode = 0;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "tcb.minimum", SKR_CHECK_FAIL);
    vec_done(&v);
}

static void
test_expected_values(void **state)
{
    struct skr_snp_verify_opts opts = { .has_host_data = true,
                                        .has_measurement = true,
                                        .has_report_data = true };
    struct skr_snp_verify_result res;
    struct vec v;

    (void)state;
    vec_load(&v, SCC_REPORT, SCC_THIM);
    memcpy(opts.host_data, v.r.host_data, sizeof(opts.host_data));
    memcpy(opts.measurement, v.r.measurement, sizeof(opts.measurement));
    memcpy(opts.report_data, v.r.report_data, sizeof(opts.report_data));
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    want_check(&res, "host_data", SKR_CHECK_PASS);
    want_check(&res, "measurement", SKR_CHECK_PASS);
    want_check(&res, "report_data", SKR_CHECK_PASS);

    /* each wrong in its last byte, one at a time */
    opts.host_data[31] ^= 1;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "host_data", SKR_CHECK_FAIL);
    want_check(&res, "measurement", SKR_CHECK_PASS);
    assert_int_equal(count_failures(&res), 1);
    opts.host_data[31] ^= 1;
    opts.measurement[47] ^= 0x80;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "measurement", SKR_CHECK_FAIL);
    assert_int_equal(count_failures(&res), 1);
    opts.measurement[47] ^= 0x80;
    opts.report_data[0] ^= 0xff;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    want_check(&res, "report_data", SKR_CHECK_FAIL);
    assert_int_equal(count_failures(&res), 1);

    /* all three wrong: all reported, in order */
    opts.host_data[0] ^= 2;
    opts.measurement[0] ^= 2;
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    assert_int_equal(count_failures(&res), 3);
    assert_string_equal(skr_snp_verify_first_failure(&res)->name, "host_data");
    /* the detail shows what the report has */
    expect_detail(find_check(&res, "host_data"), "report has ");
    vec_done(&v);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void
expect_json(const struct skr_snp_verify_result *res, bool ok, const char *product)
{
    _cleanup_(json_decrefp) json_t *j = NULL;
    json_t *checks;

    assert_int_equal(skr_snp_verify_to_json(res, &j), SKR_OK);
    assert_non_null(j);
    assert_true(json_is_boolean(json_object_get(j, "ok")));
    assert_int_equal(json_is_true(json_object_get(j, "ok")), ok);
    assert_string_equal(json_string_value(json_object_get(j, "product")), product);
    checks = json_object_get(j, "checks");
    assert_true(json_is_array(checks));
    assert_int_equal(json_array_size(checks), res->n);
    for (size_t i = 0; i < res->n; i++) {
        json_t *c = json_array_get(checks, i);
        static const char *const names[] = { "pass", "fail", "skip" };

        assert_true(json_is_object(c));
        assert_string_equal(json_string_value(json_object_get(c, "name")), res->checks[i].name);
        assert_string_equal(json_string_value(json_object_get(c, "status")),
                            names[res->checks[i].status]);
        assert_string_equal(json_string_value(json_object_get(c, "detail")), res->checks[i].detail);
    }
}

static const char *
json_status_of(const struct skr_snp_verify_result *res, const char *name)
{
    static char out[16];
    _cleanup_(json_decrefp) json_t *j = NULL;
    size_t i;
    json_t *c;

    assert_int_equal(skr_snp_verify_to_json(res, &j), SKR_OK);
    json_array_foreach(json_object_get(j, "checks"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0) {
            assert_true(
                snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(c, "status"))) <
                (int)sizeof(out));
            return out;
        }
    }
    fail_msg("check %s not in JSON", name);
    return NULL;
}

static void
test_json(void **state)
{
    struct skr_snp_verify_opts opts = { .check_no_debug = true, .ignore_time = true };
    struct skr_snp_verify_result res;
    struct vec v;

    (void)state;
    vec_load(&v, SCC_REPORT, SCC_THIM);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_OK);
    expect_json(&res, true, "Milan");
    assert_string_equal(json_status_of(&res, "report.signature"), "pass");
    assert_string_equal(json_status_of(&res, "chain.validity"), "skip");
    vec_done(&v);

    vec_load(&v, GSG_REPORT, GSG_VCEK);
    assert_int_equal(vec_verify(&v, &opts, &res), SKR_E_VERIFY);
    expect_json(&res, false, "Milan");
    assert_string_equal(json_status_of(&res, "policy.no_debug"), "fail");
    assert_string_equal(json_status_of(&res, "chip_id.hwid"), "pass");
    vec_done(&v);

    /* Turin certificates alone */
    opts.check_no_debug = false;
    load_certs(TURIN_VCEK, &v.certs);
    assert_int_equal(skr_snp_verify_certs(&v.certs, &opts, &res), SKR_OK);
    expect_json(&res, true, "Turin");
    skr_cert_set_done(&v.certs);

    /* an empty result is ok with no checks */
    memset(&res, 0, sizeof(res));
    assert_null(skr_snp_verify_first_failure(&res));
    expect_json(&res, true, "unknown");
}

/* ---- argument errors --------------------------------------------------------------------- */

static void
test_invalid_args(void **state)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    struct skr_cert_set empty = { 0 };
    struct skr_span raw;
    uint8_t big[SKR_SNP_REPORT_LEN + 1];
    struct vec v;

    (void)state;
    vec_load(&v, GSG_REPORT, GSG_VCEK);
    raw = skr_span_make(v.raw, sizeof(v.raw));
    assert_int_equal(skr_snp_verify(NULL, raw, &v.certs, &opts, &res), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify(&v.r, raw, NULL, &opts, &res), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify(&v.r, raw, &v.certs, NULL, &res), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify(&v.r, raw, &v.certs, &opts, NULL), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify(&v.r, raw, &empty, &opts, &res), SKR_E_INVALID_ARG);
    /* raw of the wrong length */
    assert_int_equal(
        skr_snp_verify(&v.r, skr_span_make(v.raw, SKR_SNP_REPORT_LEN - 1), &v.certs, &opts, &res),
        SKR_E_INVALID_ARG);
    memcpy(big, v.raw, sizeof(v.raw));
    big[SKR_SNP_REPORT_LEN] = 0;
    assert_int_equal(skr_snp_verify(&v.r, skr_span_make(big, sizeof(big)), &v.certs, &opts, &res),
                     SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify(&v.r, skr_span_make(NULL, 0), &v.certs, &opts, &res),
                     SKR_E_INVALID_ARG);

    assert_int_equal(skr_snp_verify_certs(NULL, &opts, &res), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify_certs(&v.certs, NULL, &res), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify_certs(&v.certs, &opts, NULL), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify_certs(&empty, &opts, &res), SKR_E_INVALID_ARG);

    assert_int_equal(skr_snp_verify_signature(raw, NULL), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_verify_signature(skr_span_make(v.raw, SKR_SNP_REPORT_LEN - 1),
                                              X509_get0_pubkey(v.certs.vcek)),
                     SKR_E_INVALID_ARG);
    assert_int_equal(
        skr_snp_verify_signature(skr_span_make(big, sizeof(big)), X509_get0_pubkey(v.certs.vcek)),
        SKR_E_INVALID_ARG);

    /* after all that, the real call still succeeds */
    assert_int_equal(skr_snp_verify(&v.r, raw, &v.certs, &opts, &res), SKR_OK);
    vec_done(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_vectors),
        cmocka_unit_test(test_thim_tcbm_mismatch),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_signature_wrong_keys),
        cmocka_unit_test(test_tcb_tampered),
        cmocka_unit_test(test_chip_id),
        cmocka_unit_test(test_signing_key_and_format),
        cmocka_unit_test(test_turin_chain),
        cmocka_unit_test(test_wrong_product_roots),
        cmocka_unit_test(test_self_made_root),
        cmocka_unit_test(test_imposter_ark),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_not_a_vcek),
        cmocka_unit_test(test_no_debug),
        cmocka_unit_test(test_vmpl),
        cmocka_unit_test(test_min_tcb),
        cmocka_unit_test(test_expected_values),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_invalid_args),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
