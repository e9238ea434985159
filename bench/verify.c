/*
 * verify.c - how fast a report is verified, as a ratio to the crypto floor measured in the
 * same run: a bare EVP ECDSA P-384 verification of the same 672 bytes with the same key.
 *
 *   floor            EVP_DigestVerify, DER signature prepared once (libcrypto only)
 *   signature        skr_snp_verify_signature: LE r/s -> DER, then the floor's work
 *   cached chain     parse + signature + TCB/chip checks with the chain verified once
 *   full             parse, load certificates from PEM, chain (2x RSA-PSS-4096) and all checks
 *
 * Usage: bench_verify REPORT CERTS [SECONDS per operation, default 2]
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "bench.h"
#include "buf.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_certs.h"
#include "snp_verify.h"

struct ctx {
    struct skr_span raw;
    struct skr_span certs_file;
    EVP_PKEY *vcek;
    unsigned char *der;
    int der_len;
    struct skr_cert_set certs;
};

static int
op_floor(struct ctx *c)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, c->vcek) == 1 &&
             EVP_DigestVerify(md, c->der, (size_t)c->der_len, c->raw.ptr,
                              SKR_SNP_REPORT_SIGNED_LEN) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

static int
op_signature(struct ctx *c)
{
    return skr_snp_verify_signature(c->raw, c->vcek) == SKR_OK;
}

/* What a verifier with a cached, already-verified chain does per report. */
static int
op_cached(struct ctx *c)
{
    struct skr_snp_report r;
    struct skr_vcek_ext ext;
    struct skr_snp_tcb t;

    if (skr_snp_report_parse(c->raw, &r) != SKR_OK ||
        skr_snp_verify_signature(c->raw, c->vcek) != SKR_OK ||
        skr_vcek_ext_decode(c->certs.vcek, &ext) != SKR_OK) {
        return 0;
    }
    skr_snp_tcb_decode(r.reported_tcb, SKR_SNP_PRODUCT_MILAN, &t);
    return t.snp == ext.snp && t.microcode == ext.ucode && memcmp(r.chip_id, ext.hwid, 64) == 0;
}

static int
op_full(struct ctx *c)
{
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    struct skr_cert_set set = { 0 };
    struct skr_snp_report r;
    int ok;

    if (skr_snp_report_parse(c->raw, &r) != SKR_OK ||
        skr_cert_set_load(c->certs_file, &set) != SKR_OK) {
        return 0;
    }
    ok = skr_snp_verify(&r, c->raw, &set, &opts, &res) == SKR_OK;
    skr_cert_set_done(&set);
    return ok;
}

static double
rate(int (*op)(struct ctx *), struct ctx *c, double seconds, double *ret_ms)
{
    double start = now(), end;
    long n = 0;

    do {
        for (int i = 0; i < 20; i++) {
            if (!op(c)) {
                (void)fprintf(stderr, "bench: operation failed: %s\n", skr_err_msg());
                return -1;
            }
        }
        n += 20;
        end = now();
    } while (end - start < seconds);
    *ret_ms = (end - start) * 1000.0 / (double)n;
    return (double)n / (end - start);
}

static int
setup(struct ctx *c, const char *report, const char *certs, struct skr_buf *rb, struct skr_buf *cb)
{
    _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = ECDSA_SIG_new();
    uint8_t be[48];
    BIGNUM *r, *s;

    skr_buf_init(rb, SKR_MAX_FILE_BYTES);
    skr_buf_init(cb, SKR_MAX_FILE_BYTES);
    if (skr_read_file(report, rb) != SKR_OK || rb->len != SKR_SNP_REPORT_LEN ||
        skr_read_file(certs, cb) != SKR_OK) {
        (void)fprintf(stderr, "bench: cannot read inputs: %s\n", skr_err_msg());
        return -1;
    }
    c->raw = skr_buf_span(rb);
    c->certs_file = skr_buf_span(cb);
    if (skr_cert_set_load(c->certs_file, &c->certs) != SKR_OK) {
        return -1;
    }
    c->vcek = X509_get0_pubkey(c->certs.vcek);
    for (int i = 0; i < 48; i++) {
        be[i] = c->raw.ptr[0x2A0 + 47 - i];
    }
    r = BN_bin2bn(be, 48, NULL);
    for (int i = 0; i < 48; i++) {
        be[i] = c->raw.ptr[0x2E8 + 47 - i];
    }
    s = BN_bin2bn(be, 48, NULL);
    if (sig == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        return -1;
    }
    c->der_len = i2d_ECDSA_SIG(sig, &c->der);
    return c->der_len > 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*op)(struct ctx *);
    } ops[] = {
        { "floor: EVP ECDSA P-384 verify", op_floor },
        { "skr_snp_verify_signature", op_signature },
        { "report, cached chain", op_cached },
        { "report + chain + all checks", op_full },
    };
    _cleanup_(skr_buf_donep) struct skr_buf rb = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf cb = { 0 };
    struct ctx c = { 0 };
    uint64_t seconds = 2;
    double floor_rate = 0;

    if (argc < 3 ||
        (argc > 3 && skr_parse_u64(skr_span_str(argv[3]), false, 1, 600, &seconds) != SKR_OK) ||
        setup(&c, argv[1], argv[2], &rb, &cb) != 0) {
        (void)fprintf(stderr, "usage: bench_verify REPORT CERTS [SECONDS]\n");
        return 2;
    }
    (void)printf("%-32s %12s %10s %10s\n", "operation", "ops/s", "ms/op", "vs floor");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        double ms = 0;
        double r = rate(ops[i].op, &c, (double)seconds, &ms);

        if (r < 0) {
            return 1;
        }
        if (i == 0) {
            floor_rate = r;
        }
        (void)printf("%-32s %12.0f %10.3f %9.1f%%\n", ops[i].name, r, ms, 100.0 * r / floor_rate);
    }
    skr_cert_set_done(&c.certs);
    OPENSSL_free(c.der);
    return 0;
}
