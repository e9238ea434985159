/*
 * test_snp_emu.c - the software SNP platform: files and modes, report contents, the report
 * signature (checked directly with libcrypto, not through our verifier), the emulated AMD chain
 * and the VCEK extensions, Turin specifics, and the errors of create/open/report.
 *
 * RSA-4096 key generation takes seconds, so one Milan and one Turin platform are created in
 * the group setup and shared by every test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "json.h"
#include "limits.h"
#include "ossl.h"
#include "snp_certs.h"
#include "snp_emu.h"
#include "snp_report.h"

static char root[64];
static char milan_dir[128];
static char turin_dir[128];

static const uint8_t host_data[32] = { 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4 };
static const uint8_t family_id[16] = { 0xf0, 0x0d };
static const uint8_t image_id[16] = { 0x1a, 0x9e };

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
path_in(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);

    assert_true(n > 0 && (size_t)n < cap);
}

static int
setup(void **state)
{
    struct skr_snp_emu_params p = { .guest_svn = 7, .vmpl_floor = 1 };
    struct skr_snp_emu_params t = { .product = SKR_SNP_PRODUCT_TURIN, .report_version = 5 };

    (void)state;
    memcpy(p.host_data, host_data, sizeof(host_data));
    memcpy(p.family_id, family_id, sizeof(family_id));
    memcpy(p.image_id, image_id, sizeof(image_id));
    (void)snprintf(root, sizeof(root), "/tmp/skr-test-emu-XXXXXX");
    if (mkdtemp(root) == NULL) {
        return -1;
    }
    (void)snprintf(milan_dir, sizeof(milan_dir), "%s/milan", root);
    (void)snprintf(turin_dir, sizeof(turin_dir), "%s/turin", root);
    if (skr_snp_emu_create(milan_dir, &p) != SKR_OK) {
        fprintf(stderr, "create milan: %s\n", skr_err_detail());
        return -1;
    }
    if (skr_snp_emu_create(turin_dir, &t) != SKR_OK) {
        fprintf(stderr, "create turin: %s\n", skr_err_detail());
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    return nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct skr_snp_emu *
open_emu(const char *dir)
{
    struct skr_snp_emu *e = NULL;

    if (skr_snp_emu_open(dir, &e) != SKR_OK) {
        fail_msg("open %s: %s", dir, skr_err_detail());
    }
    return e;
}

static X509 *
load_pem(const char *dir, const char *name)
{
    char path[256];
    FILE *f;
    X509 *x;

    path_in(path, sizeof(path), dir, name);
    f = fopen(path, "re");
    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void
copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    struct skr_buf b;
    char path[256];

    skr_buf_init(&b, SKR_MAX_FILE_BYTES);
    path_in(path, sizeof(path), from_dir, name);
    assert_int_equal(skr_read_file(path, &b), SKR_OK);
    path_in(path, sizeof(path), to_dir, name);
    assert_int_equal(skr_write_file_atomic(path, skr_buf_span(&b), 0600), SKR_OK);
    skr_buf_done(&b);
}

/* A copy of the Milan platform in root/name, to be damaged by a test. */
static void
copy_platform(const char *name, char *out, size_t cap)
{
    static const char *const files[] = { "platform.json", "ark.pem", "ask.pem", "vcek.pem",
                                         "vcek.key",      "ark.key", "ask.key" };

    path_in(out, cap, root, name);
    assert_int_equal(mkdir(out, 0700), 0);
    for (size_t i = 0; i < SKR_ARRAY_LEN(files); i++) {
        copy_file(milan_dir, out, files[i]);
    }
}

static void
get_report(struct skr_snp_emu *e, const uint8_t rd[64], uint32_t vmpl, uint8_t raw[1184],
           struct skr_snp_report *r)
{
    struct skr_buf out;

    skr_buf_init(&out, 4096);
    assert_int_equal(skr_snp_emu_report(e, rd, vmpl, &out), SKR_OK);
    assert_int_equal(out.len, SKR_SNP_REPORT_LEN);
    memcpy(raw, out.ptr, SKR_SNP_REPORT_LEN);
    skr_buf_done(&out);
    assert_int_equal(skr_snp_report_parse(skr_span_make(raw, SKR_SNP_REPORT_LEN), r), SKR_OK);
}

/* PROTOCOLS.md §2.1: reverse each 72-byte little-endian field, DER-encode, verify. */
static int
verify_sig(X509 *vcek, const uint8_t raw[1184])
{
    uint8_t rb[72];
    uint8_t sb[72];
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r;
    BIGNUM *s;
    unsigned char *der = NULL;
    int der_len;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    for (size_t i = 0; i < 72; i++) {
        rb[i] = raw[0x2A0 + 71 - i];
        sb[i] = raw[0x2E8 + 71 - i];
    }
    r = BN_bin2bn(rb, sizeof(rb), NULL);
    s = BN_bin2bn(sb, sizeof(sb), NULL);
    assert_int_equal(ECDSA_SIG_set0(sig, r, s), 1);
    der_len = i2d_ECDSA_SIG(sig, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, X509_get0_pubkey(vcek)),
                     1);
    ok = EVP_DigestVerify(ctx, der, (size_t)der_len, raw, 0x2A0);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

static void
test_files(void **state)
{
    static const char *const keys[] = { "ark.key", "ask.key", "vcek.key" };
    static const char *const pub[] = { "ark.pem", "ask.pem", "vcek.pem", "platform.json" };
    char path[256];
    struct stat st;

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(keys); i++) {
        path_in(path, sizeof(path), milan_dir, keys[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(pub); i++) {
        path_in(path, sizeof(path), milan_dir, pub[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
    }
}

static void
test_open_params(void **state)
{
    struct skr_snp_emu *e = open_emu(milan_dir);
    const struct skr_snp_emu_params *p = skr_snp_emu_params(e);
    struct skr_snp_tcb t;
    static const uint8_t zero48[48] = { 0 };

    (void)state;
    assert_int_equal(p->product, SKR_SNP_PRODUCT_MILAN);
    assert_int_equal(p->report_version, 3);
    assert_int_equal(p->policy, 0x3001f);
    assert_int_equal(p->guest_svn, 7);
    assert_int_equal(p->vmpl_floor, 1);
    assert_memory_equal(p->host_data, host_data, sizeof(host_data));
    assert_memory_equal(p->family_id, family_id, sizeof(family_id));
    assert_memory_equal(p->image_id, image_id, sizeof(image_id));
    assert_memory_not_equal(p->measurement, zero48, sizeof(zero48));
    /* Milan defaults: a 64-byte random chip id; microcode >= 0x80 exercises DER 02 02 00 XX. */
    assert_memory_not_equal(p->chip_id + 32, zero48, 32);
    skr_snp_tcb_decode(p->tcb, SKR_SNP_PRODUCT_MILAN, &t);
    assert_int_equal(t.microcode, 0xdb);
    assert_int_equal(t.bootloader, 3);
    skr_snp_emu_free(e);

    /* Opening the parent of a platform finds parent/snp (the skr-emu init layout). */
    {
        char snp_dir[256];
        char parent[256];

        path_in(parent, sizeof(parent), root, "parent");
        assert_int_equal(mkdir(parent, 0700), 0);
        path_in(snp_dir, sizeof(snp_dir), parent, "snp");
        assert_int_equal(mkdir(snp_dir, 0700), 0);
        copy_file(milan_dir, snp_dir, "platform.json");
        copy_file(milan_dir, snp_dir, "ark.pem");
        copy_file(milan_dir, snp_dir, "ask.pem");
        copy_file(milan_dir, snp_dir, "vcek.pem");
        copy_file(milan_dir, snp_dir, "vcek.key");
        e = open_emu(parent);
        assert_int_equal(skr_snp_emu_params(e)->guest_svn, 7);
        skr_snp_emu_free(e);
    }
}

static void
test_report(void **state)
{
    struct skr_snp_emu *e = open_emu(milan_dir);
    const struct skr_snp_emu_params *p = skr_snp_emu_params(e);
    X509 *vcek = load_pem(milan_dir, "vcek.pem");
    uint8_t rd[64];
    uint8_t raw[1184];
    uint8_t ff[32];
    struct skr_snp_report r;

    (void)state;
    for (size_t i = 0; i < sizeof(rd); i++) {
        rd[i] = (uint8_t)(i * 7 + 1);
    }
    get_report(e, rd, 2, raw, &r);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.vmpl, 2);
    assert_int_equal(r.guest_svn, 7);
    assert_int_equal(r.policy, 0x3001f);
    assert_int_equal(r.sig_algo, 1);
    assert_int_equal(r.signer_info, 0);
    assert_int_equal(r.platform_info, 3);
    assert_int_equal(r.current_tcb, p->tcb);
    assert_int_equal(r.reported_tcb, p->tcb);
    assert_int_equal(r.committed_tcb, p->tcb);
    assert_int_equal(r.launch_tcb, p->tcb);
    assert_int_equal(r.cpuid_fam_id, 0x19);
    assert_int_equal(r.cpuid_mod_id, 0x01);
    assert_int_equal(skr_snp_report_product(&r), SKR_SNP_PRODUCT_MILAN);
    assert_memory_equal(r.report_data, rd, sizeof(rd));
    assert_memory_equal(r.measurement, p->measurement, 48);
    assert_memory_equal(r.host_data, host_data, 32);
    assert_memory_equal(r.family_id, family_id, 16);
    assert_memory_equal(r.image_id, image_id, 16);
    assert_memory_equal(r.chip_id, p->chip_id, 64);
    memset(ff, 0xff, sizeof(ff));
    assert_memory_equal(r.report_id_ma, ff, sizeof(ff));
    /* 48 significant bytes then 24 zero bytes in each of r and s. */
    assert_true(skr_span_is_zero(skr_span_make(raw + 0x2A0 + 48, 24)));
    assert_true(skr_span_is_zero(skr_span_make(raw + 0x330, 368)));

    assert_int_equal(verify_sig(vcek, raw), 1);
    raw[0x50] ^= 1; /* REPORT_DATA is covered by the signature */
    assert_int_not_equal(verify_sig(vcek, raw), 1);
    raw[0x50] ^= 1;
    raw[0x2A0] ^= 1; /* and a damaged r does not verify */
    assert_int_not_equal(verify_sig(vcek, raw), 1);

    /* Two reports differ in REPORT_ID (random) but both verify. */
    {
        uint8_t raw2[1184];
        struct skr_snp_report r2;

        get_report(e, rd, 1, raw2, &r2);
        assert_memory_not_equal(r.report_id, r2.report_id, 32);
        assert_int_equal(verify_sig(vcek, raw2), 1);
    }
    X509_free(vcek);
    skr_snp_emu_free(e);
}

static void
test_vmpl_limits(void **state)
{
    struct skr_snp_emu *e = open_emu(milan_dir);
    uint8_t rd[64] = { 0 };
    struct skr_buf out;

    (void)state;
    skr_buf_init(&out, 4096);
    assert_int_equal(skr_snp_emu_report(e, rd, 0, &out), SKR_E_INVALID_ARG); /* floor is 1 */
    assert_int_equal(skr_snp_emu_report(e, rd, 4, &out), SKR_E_INVALID_ARG);
    assert_int_equal(out.len, 0);
    assert_int_equal(skr_snp_emu_report(e, rd, 3, &out), SKR_OK);
    assert_int_equal(out.len, SKR_SNP_REPORT_LEN);
    skr_buf_done(&out);
    skr_snp_emu_free(e);
}

static void
test_chain(void **state)
{
    X509 *ark = load_pem(milan_dir, "ark.pem");
    X509 *ask = load_pem(milan_dir, "ask.pem");
    X509 *vcek = load_pem(milan_dir, "vcek.pem");
    char cn[64];
    char org[64];

    (void)state;
    assert_int_equal(X509_verify(vcek, X509_get0_pubkey(ask)), 1);
    assert_int_equal(X509_verify(ask, X509_get0_pubkey(ark)), 1);
    assert_int_equal(X509_verify(ark, X509_get0_pubkey(ark)), 1);
    assert_int_not_equal(X509_verify(vcek, X509_get0_pubkey(ark)), 1);
    assert_int_equal(X509_get_signature_nid(vcek), NID_rsassaPss);
    assert_int_equal(X509_get_signature_nid(ask), NID_rsassaPss);
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(ark)), 4096);
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(vcek), "EC"));
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(vcek)), 384);
    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(vcek)), 0);
    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(ark)), 0x10000);
    skr_x509_cn(ark, cn, sizeof(cn));
    assert_string_equal(cn, "ARK-Milan");
    skr_x509_cn(ask, cn, sizeof(cn));
    assert_string_equal(cn, "SEV-Milan");
    skr_x509_cn(vcek, cn, sizeof(cn));
    assert_string_equal(cn, "SEV-VCEK");
    /* Never mistakable for AMD's own certificates. */
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(ark), NID_organizationName, org,
                                          sizeof(org)) > 0);
    assert_string_equal(org, "skr emulated AMD");
    assert_int_equal(X509_check_ca(ark), 1);
    assert_int_equal(X509_check_ca(vcek), 0);
    X509_free(ark);
    X509_free(ask);
    X509_free(vcek);
}

static void
test_vcek_ext(void **state)
{
    struct skr_snp_emu *e = open_emu(milan_dir);
    const struct skr_snp_emu_params *p = skr_snp_emu_params(e);
    X509 *vcek = load_pem(milan_dir, "vcek.pem");
    struct skr_vcek_ext x;

    (void)state;
    assert_int_equal(skr_vcek_ext_decode(vcek, &x), SKR_OK);
    assert_true(x.has_struct_version);
    assert_int_equal(x.struct_version, 0);
    assert_string_equal(x.product_name, "Milan-B0");
    assert_int_equal(skr_vcek_ext_product(&x), SKR_SNP_PRODUCT_MILAN);
    assert_false(x.has_fmc);
    assert_int_equal(x.ucode, 0xdb);
    assert_int_equal(skr_vcek_ext_tcb(&x, SKR_SNP_PRODUCT_MILAN), p->tcb);
    assert_int_equal(x.hwid_len, 64);
    assert_memory_equal(x.hwid, p->chip_id, 64);
    assert_false(x.is_vlek);
    X509_free(vcek);
    skr_snp_emu_free(e);
}

static void
test_cert_table_and_pem(void **state)
{
    struct skr_snp_emu *e = open_emu(milan_dir);
    X509 *vcek = load_pem(milan_dir, "vcek.pem");
    X509 *ark = load_pem(milan_dir, "ark.pem");
    struct skr_buf tb;
    struct skr_buf pem;
    struct skr_cert_table t;
    unsigned char *der = NULL;
    int der_len;
    STACK_OF(X509) *sk = NULL;
    char cn[64];

    (void)state;
    skr_buf_init(&tb, SKR_MAX_CERT_TABLE_BYTES);
    assert_int_equal(skr_snp_emu_cert_table(e, &tb), SKR_OK);
    assert_int_equal(skr_cert_table_parse(skr_buf_span(&tb), &t), SKR_OK);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.entries[0].kind, SKR_CERT_VCEK);
    assert_int_equal(t.entries[1].kind, SKR_CERT_ASK);
    assert_int_equal(t.entries[2].kind, SKR_CERT_ARK);
    der_len = i2d_X509(vcek, &der);
    assert_int_equal(t.entries[0].der.len, (size_t)der_len);
    assert_memory_equal(t.entries[0].der.ptr, der, (size_t)der_len);
    OPENSSL_free(der);
    der = NULL;
    der_len = i2d_X509(ark, &der);
    assert_int_equal(t.entries[2].der.len, (size_t)der_len);
    assert_memory_equal(t.entries[2].der.ptr, der, (size_t)der_len);
    OPENSSL_free(der);

    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    assert_int_equal(skr_snp_emu_chain_pem(e, &pem), SKR_OK);
    assert_int_equal(skr_pem_read_certs(skr_buf_span(&pem), &sk), SKR_OK);
    assert_int_equal(sk_X509_num(sk), 3);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 0), vcek), 0);
    skr_x509_cn(sk_X509_value(sk, 1), cn, sizeof(cn));
    assert_string_equal(cn, "SEV-Milan");
    assert_int_equal(X509_cmp(sk_X509_value(sk, 2), ark), 0);
    sk_X509_pop_free(sk, X509_free);
    skr_buf_done(&pem);
    skr_buf_done(&tb);
    X509_free(vcek);
    X509_free(ark);
    skr_snp_emu_free(e);
}

static void
test_turin(void **state)
{
    struct skr_snp_emu *e = open_emu(turin_dir);
    const struct skr_snp_emu_params *p = skr_snp_emu_params(e);
    X509 *vcek = load_pem(turin_dir, "vcek.pem");
    X509 *ark = load_pem(turin_dir, "ark.pem");
    struct skr_vcek_ext x;
    struct skr_snp_report r;
    uint8_t rd[64] = { 9 };
    uint8_t raw[1184];
    char cn[64];

    (void)state;
    assert_int_equal(p->product, SKR_SNP_PRODUCT_TURIN);
    assert_true(skr_span_is_zero(skr_span_make(p->chip_id + 8, 56)));
    assert_false(skr_span_is_zero(skr_span_make(p->chip_id, 8)));
    assert_int_equal(skr_vcek_ext_decode(vcek, &x), SKR_OK);
    assert_int_equal(x.struct_version, 1);
    assert_string_equal(x.product_name, "Turin");
    assert_true(x.has_fmc);
    assert_int_equal(x.hwid_len, 8);
    assert_memory_equal(x.hwid, p->chip_id, 8);
    assert_int_equal(skr_vcek_ext_tcb(&x, SKR_SNP_PRODUCT_TURIN), p->tcb);
    skr_x509_cn(ark, cn, sizeof(cn));
    assert_string_equal(cn, "ARK-Turin");
    assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(ark)), 0x30000);

    get_report(e, rd, 0, raw, &r);
    assert_int_equal(r.version, 5);
    assert_int_equal(r.cpuid_fam_id, 0x1A);
    assert_int_equal(r.cpuid_mod_id, 0x02);
    assert_int_equal(skr_snp_report_product(&r), SKR_SNP_PRODUCT_TURIN);
    assert_memory_equal(r.chip_id, p->chip_id, 64);
    assert_int_equal(verify_sig(vcek, raw), 1);
    X509_free(vcek);
    X509_free(ark);
    skr_snp_emu_free(e);
}

static void
test_report_v2(void **state)
{
    char dir[256];
    char path[256];
    struct skr_buf b;
    json_t *o = NULL;
    struct skr_snp_emu *e;
    struct skr_snp_report r;
    uint8_t rd[64] = { 1 };
    uint8_t raw[1184];
    X509 *vcek;

    (void)state;
    copy_platform("v2", dir, sizeof(dir));
    path_in(path, sizeof(path), dir, "platform.json");
    skr_buf_init(&b, SKR_MAX_FILE_BYTES);
    assert_int_equal(skr_read_file(path, &b), SKR_OK);
    assert_int_equal(skr_json_parse_object(skr_buf_span(&b), SKR_MAX_FILE_BYTES, "p", &o), SKR_OK);
    assert_int_equal(json_object_set_new(o, "report_version", json_integer(2)), 0);
    skr_buf_reset(&b);
    assert_int_equal(skr_json_dump(o, JSON_COMPACT, &b), SKR_OK);
    assert_int_equal(skr_write_file_atomic(path, skr_buf_span(&b), 0644), SKR_OK);
    json_decref(o);

    e = open_emu(dir);
    get_report(e, rd, 1, raw, &r);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.cpuid_fam_id, 0);
    assert_int_equal(r.cpuid_mod_id, 0);
    vcek = load_pem(dir, "vcek.pem");
    assert_int_equal(verify_sig(vcek, raw), 1);
    X509_free(vcek);
    skr_snp_emu_free(e);

    /* A version outside 2..5 in the file is rejected. */
    skr_buf_reset(&b);
    assert_int_equal(skr_read_file(path, &b), SKR_OK);
    assert_int_equal(skr_json_parse_object(skr_buf_span(&b), SKR_MAX_FILE_BYTES, "p", &o), SKR_OK);
    assert_int_equal(json_object_set_new(o, "report_version", json_integer(6)), 0);
    skr_buf_reset(&b);
    assert_int_equal(skr_json_dump(o, JSON_COMPACT, &b), SKR_OK);
    assert_int_equal(skr_write_file_atomic(path, skr_buf_span(&b), 0644), SKR_OK);
    json_decref(o);
    e = NULL;
    assert_int_equal(skr_snp_emu_open(dir, &e), SKR_E_MALFORMED);
    assert_null(e);
    skr_buf_done(&b);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
    char path[256];

    path_in(path, sizeof(path), dir, name);
    assert_int_equal(skr_write_file_atomic(path, skr_span_str(text), 0600), SKR_OK);
}

static void
test_open_errors(void **state)
{
    struct skr_snp_emu *e = NULL;
    char dir[256];

    (void)state;
    assert_int_equal(skr_snp_emu_open("/nonexistent/skr-emu", &e), SKR_E_NOT_FOUND);
    assert_non_null(strstr(skr_err_msg(), "no emulated SNP platform"));
    assert_null(e);
    assert_int_equal(skr_snp_emu_open(root, &e), SKR_E_NOT_FOUND); /* exists, no platform */

    /* A VCEK key from another platform does not match the VCEK certificate. */
    copy_platform("wrongkey", dir, sizeof(dir));
    copy_file(turin_dir, dir, "vcek.key");
    assert_int_equal(skr_snp_emu_open(dir, &e), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "does not match"));
    assert_null(e);

    /* A VCEK not signed by this platform's ASK. */
    copy_platform("wrongask", dir, sizeof(dir));
    copy_file(turin_dir, dir, "ask.pem");
    assert_int_equal(skr_snp_emu_open(dir, &e), SKR_E_MALFORMED);
    assert_non_null(strstr(skr_err_msg(), "not signed"));

    /* Damaged files. */
    copy_platform("badjson", dir, sizeof(dir));
    write_text(dir, "platform.json", "{\"product\":\"Milan\"");
    assert_int_not_equal(skr_snp_emu_open(dir, &e), SKR_OK);
    write_text(dir, "platform.json",
               "{\"product\":\"Milan\",\"report_version\":3,\"policy\":\"0x3001f\",\"tcb\":\"12\","
               "\"guest_svn\":0,\"vmpl_floor\":0}");
    assert_int_equal(skr_snp_emu_open(dir, &e), SKR_E_MALFORMED);
    assert_null(e);

    copy_platform("badpem", dir, sizeof(dir));
    write_text(dir, "vcek.pem", "not a certificate\n");
    assert_int_equal(skr_snp_emu_open(dir, &e), SKR_E_MALFORMED);
    copy_platform("nokey", dir, sizeof(dir));
    {
        char path[256];

        path_in(path, sizeof(path), dir, "vcek.key");
        assert_int_equal(unlink(path), 0);
    }
    assert_int_equal(skr_snp_emu_open(dir, &e), SKR_E_NOT_FOUND);
    assert_null(e);
}

static void
test_create_errors(void **state)
{
    struct skr_snp_emu_params p = { .report_version = 6 };
    char dir[256];
    char path[256];
    struct stat st;

    (void)state;
    path_in(dir, sizeof(dir), root, "never");
    assert_int_equal(skr_snp_emu_create(dir, &p), SKR_E_INVALID_ARG);
    p = (struct skr_snp_emu_params){ .report_version = 1 };
    assert_int_equal(skr_snp_emu_create(dir, &p), SKR_E_INVALID_ARG);
    p = (struct skr_snp_emu_params){ .vmpl_floor = 4 };
    assert_int_equal(skr_snp_emu_create(dir, &p), SKR_E_INVALID_ARG);
    p = (struct skr_snp_emu_params){ .product = SKR_SNP_PRODUCT_TURIN };
    p.chip_id[40] = 1; /* Turin chip ids have 8 bytes */
    assert_int_equal(skr_snp_emu_create(dir, &p), SKR_E_INVALID_ARG);
    assert_int_equal(skr_snp_emu_create("", NULL), SKR_E_INVALID_ARG);
    /* Rejected before anything is written. */
    assert_int_not_equal(stat(dir, &st), 0);
    /* A file in the way of the directory. */
    path_in(path, sizeof(path), root, "afile");
    write_text(root, "afile", "x");
    assert_int_equal(skr_snp_emu_create(path, NULL), SKR_E_IO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_open_params),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_vmpl_limits),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_vcek_ext),
        cmocka_unit_test(test_cert_table_and_pem),
        cmocka_unit_test(test_turin),
        cmocka_unit_test(test_report_v2),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_create_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
