/*
 * test_snp_report.c - lib/snp_report: parse/serialize round trips on every real report vector,
 * known field values, hex loading, the negative table (lengths, versions, bad hex), TCB
 * layouts, products, JSON and text output.
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

#include "buf.h"
#include "err.h"
#include "json.h"
#include "snp_report.h"
#include "tdata.h"

#define LEN SKR_SNP_REPORT_LEN

static void
load_vec_report(const char *rel, struct skr_snp_report *r, uint8_t raw[LEN])
{
    size_t n = 0;
    uint8_t *b = t_read_data(rel, &n);

    assert_int_equal(n, LEN);
    assert_int_equal(skr_snp_report_parse(skr_span_make(b, n), r), SKR_OK);
    memcpy(raw, b, LEN);
    free(b);
}

static const char *const bin_vectors[] = {
    "scc/test_data__snp_report.bin", "scc/platform_cert_fetcher_test__v3_report.bin",
    "gsg/attestation.bin",           "virtee/report_milan.bin",
    "psk/evidence_report.bin",
};

static void
test_vectors_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(bin_vectors); i++) {
        size_t n = 0;
        uint8_t *b = t_read_data(bin_vectors[i], &n);
        struct skr_snp_report r;
        struct skr_snp_report r2;
        uint8_t out[LEN];
        uint8_t raw[LEN];

        assert_int_equal(n, LEN);
        assert_int_equal(skr_snp_report_parse(skr_span_make(b, n), &r), SKR_OK);
        assert_true(r.version >= 2 && r.version <= 5);
        assert_int_equal(r.sig_algo, SKR_SNP_SIG_ALGO_ECDSA_P384_SHA384);
        memset(out, 0xAA, sizeof(out));
        skr_snp_report_serialize(&r, out);
        assert_memory_equal(out, b, LEN);

        /* load() of the binary gives the same report and raw bytes */
        memset(raw, 0, sizeof(raw));
        assert_int_equal(skr_snp_report_load(skr_span_make(b, n), &r2, raw), SKR_OK);
        assert_memory_equal(raw, b, LEN);
        assert_memory_equal(&r2, &r, sizeof(r));
        free(b);
    }
}

static void
test_scc_v2_fields(void **state)
{
    struct skr_snp_report r;
    uint8_t raw[LEN];
    char tcbm[17];
    struct skr_snp_tcb t;
    static const uint8_t host_prefix[] = { 0xca, 0xdd, 0x74, 0xf7 };

    (void)state;
    load_vec_report("scc/test_data__snp_report.bin", &r, raw);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.guest_svn, 2);
    assert_int_equal(r.policy, 0x3001f);
    assert_int_equal(r.vmpl, 0);
    assert_int_equal(r.sig_algo, 1);
    assert_int_equal(r.reported_tcb, 0x7308000000000003ull);
    assert_int_equal(r.current_tcb, 0x7308000000000003ull);
    assert_int_equal(r.platform_info, 1);
    assert_memory_equal(r.host_data, host_prefix, sizeof(host_prefix));
    assert_int_equal(r.current_major, 1);
    assert_int_equal(r.current_minor, 0x34);
    assert_int_equal(r.current_build, 4);
    skr_snp_tcb_tcbm(r.reported_tcb, tcbm);
    assert_string_equal(tcbm, "7308000000000003");
    skr_snp_tcb_decode(r.reported_tcb, SKR_SNP_PRODUCT_MILAN, &t);
    assert_int_equal(t.bootloader, 3);
    assert_int_equal(t.tee, 0);
    assert_int_equal(t.snp, 8);
    assert_int_equal(t.microcode, 115);
    assert_false(t.has_fmc);
    /* v2: no CPUID bytes, product unknown from the report alone */
    assert_int_equal(skr_snp_report_product(&r), SKR_SNP_PRODUCT_UNKNOWN);
    /* REPORT_ID_MA is all 0xFF without a migration agent (seen in vectors) */
    for (size_t i = 0; i < sizeof(r.report_id_ma); i++) {
        assert_int_equal(r.report_id_ma[i], 0xff);
    }
}

static void
test_scc_v3_fields(void **state)
{
    struct skr_snp_report r;
    uint8_t raw[LEN];
    struct skr_snp_tcb t;

    (void)state;
    load_vec_report("scc/platform_cert_fetcher_test__v3_report.bin", &r, raw);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.cpuid_fam_id, 0x19);
    assert_int_equal(r.cpuid_mod_id, 0x01);
    assert_int_equal(r.cpuid_step, 0x01);
    assert_int_equal(skr_snp_report_product(&r), SKR_SNP_PRODUCT_MILAN);
    assert_int_equal(r.reported_tcb, 0xdb18000000000004ull);
    assert_int_equal(r.platform_info, 0x25);
    skr_snp_tcb_decode(r.reported_tcb, skr_snp_report_product(&r), &t);
    assert_int_equal(t.microcode, 0xdb);
    assert_int_equal(t.snp, 0x18);
    assert_int_equal(t.tee, 0);
    assert_int_equal(t.bootloader, 4);
    assert_int_equal(skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_MILAN), r.reported_tcb);

    /* The same bytes read as v2 would not be Milan: CPUID is ignored before v3 */
    r.version = 2;
    assert_int_equal(skr_snp_report_product(&r), SKR_SNP_PRODUCT_UNKNOWN);
}

static void
assert_hex_equals_bin(const char *hex_rel, const char *bin_rel)
{
    size_t hn = 0;
    size_t bn = 0;
    uint8_t *h = t_read_data(hex_rel, &hn);
    uint8_t *b = t_read_data(bin_rel, &bn);
    struct skr_snp_report rh;
    struct skr_snp_report rb;
    uint8_t raw[LEN];

    assert_int_equal(bn, LEN);
    assert_int_not_equal(hn, LEN);
    assert_int_equal(skr_snp_report_load(skr_span_make(h, hn), &rh, raw), SKR_OK);
    assert_memory_equal(raw, b, LEN);
    assert_int_equal(skr_snp_report_load(skr_span_make(b, bn), &rb, NULL), SKR_OK);
    assert_memory_equal(&rh, &rb, sizeof(rh));
    free(h);
    free(b);
}

static void
test_hex_load(void **state)
{
    (void)state;
    assert_hex_equals_bin("virtee/report_milan.hex", "virtee/report_milan.bin");
    assert_hex_equals_bin("scc/platform_cert_fetcher_test__v3_report.hex",
                          "scc/platform_cert_fetcher_test__v3_report.bin");
}

/* Uppercase hex wrapped at 64 columns with CRLF, leading and trailing blanks. */
static char *
make_hex_text(const uint8_t *b, size_t n, size_t *ret_len)
{
    static const char digits[] = "0123456789ABCDEF";
    char *t = malloc(4 * n + 16);
    size_t o = 0;

    assert_non_null(t);
    t[o++] = ' ';
    t[o++] = '\t';
    for (size_t i = 0; i < n; i++) {
        t[o++] = digits[b[i] >> 4];
        t[o++] = digits[b[i] & 15];
        if (i % 32 == 31) {
            t[o++] = '\r';
            t[o++] = '\n';
        }
    }
    t[o++] = '\n';
    *ret_len = o;
    return t;
}

static void
test_hex_load_upper_ws(void **state)
{
    size_t bn = 0;
    size_t tn = 0;
    uint8_t *b = t_read_data("gsg/attestation.bin", &bn);
    char *t = make_hex_text(b, bn, &tn);
    struct skr_snp_report r;
    uint8_t raw[LEN];

    (void)state;
    assert_int_equal(skr_snp_report_load(skr_span_make(t, tn), &r, raw), SKR_OK);
    assert_memory_equal(raw, b, LEN);

    /* a bad digit in the middle */
    t[100] = 'g';
    assert_int_equal(skr_snp_report_load(skr_span_make(t, tn), &r, raw), SKR_E_MALFORMED);
    assert_msg_contains("expected a 1184-byte binary report or 2368 hex digits");
    free(t);
    free(b);
}

static void
test_hex_load_negative(void **state)
{
    size_t n = 0;
    uint8_t *h = t_read_data("virtee/report_milan.hex", &n);
    uint8_t *big = malloc(n + 2);
    struct skr_snp_report r;

    (void)state;
    assert_int_equal(n, 2 * LEN);
    /* odd number of digits: one short, one extra */
    assert_int_equal(skr_snp_report_load(skr_span_make(h, n - 1), &r, NULL), SKR_E_TRUNCATED);
    assert_msg_contains("2367 hex digits");
    assert_msg_contains("expected a 1184-byte binary report or 2368 hex digits");
    assert_non_null(big);
    memcpy(big, h, n);
    big[n] = '0';
    assert_int_equal(skr_snp_report_load(skr_span_make(big, n + 1), &r, NULL), SKR_E_TOO_LARGE);
    assert_msg_contains("2369 hex digits");
    big[n + 1] = '0';
    assert_int_equal(skr_snp_report_load(skr_span_make(big, n + 2), &r, NULL), SKR_E_TOO_LARGE);
    /* a non-hex printable character */
    memcpy(big, h, n);
    big[7] = 'x';
    assert_int_equal(skr_snp_report_load(skr_span_make(big, n), &r, NULL), SKR_E_MALFORMED);
    assert_msg_contains("offset 7");
    /* a hex text of exactly 1184 digits is not binary: it is a short hex report */
    assert_int_equal(skr_snp_report_load(skr_span_make(h, LEN), &r, NULL), SKR_E_TRUNCATED);
    assert_msg_contains("1184 hex digits");
    /* empty */
    assert_int_equal(skr_snp_report_load(skr_span_make(h, 0), &r, NULL), SKR_E_TRUNCATED);
    free(big);
    free(h);
}

static void
test_fake_v1_hex_rejected(void **state)
{
    size_t n = 0;
    uint8_t *h = t_read_data("scc/attestation_report_fetcher__fake_report_v1.hex", &n);
    struct skr_snp_report r;
    uint8_t raw[LEN];

    (void)state;
    memset(raw, 0x5a, sizeof(raw));
    assert_int_equal(skr_snp_report_load(skr_span_make(h, n), &r, raw), SKR_E_UNSUPPORTED);
    assert_msg_contains("report version 1 not supported (2..5)");
    /* raw_out untouched on failure */
    assert_int_equal(raw[0], 0x5a);
    free(h);
}

static void
test_bad_lengths(void **state)
{
    size_t n = 0;
    uint8_t *b = t_read_data("scc/test_data__snp_report.bin", &n);
    uint8_t *big = calloc(1, LEN + 1);
    struct skr_snp_report r;
    static const size_t short_lens[] = { 0, 1, 4, 0x2A0, LEN - 2, LEN - 1 };

    (void)state;
    assert_non_null(big);
    memcpy(big, b, n);
    for (size_t i = 0; i < SKR_ARRAY_LEN(short_lens); i++) {
        char want[32];

        memset(&r, 0x77, sizeof(r));
        assert_int_equal(skr_snp_report_parse(skr_span_make(b, short_lens[i]), &r),
                         SKR_E_TRUNCATED);
        snprintf(want, sizeof(want), "%zu bytes", short_lens[i]);
        assert_msg_contains(want);
        /* ret is written only on success */
        assert_int_equal(r.version, 0x77777777u);
    }
    assert_int_equal(skr_snp_report_parse(skr_span_make(big, LEN + 1), &r), SKR_E_TOO_LARGE);
    assert_msg_contains("1185 bytes");
    /* binary of the wrong length through load() */
    assert_int_equal(skr_snp_report_load(skr_span_make(big, LEN + 1), &r, NULL), SKR_E_TOO_LARGE);
    assert_msg_contains("expected a 1184-byte binary report or 2368 hex digits");
    assert_int_equal(skr_snp_report_load(skr_span_make(b, LEN - 1), &r, NULL), SKR_E_TRUNCATED);
    assert_msg_contains("expected a 1184-byte binary report or 2368 hex digits");
    free(big);
    free(b);
}

static void
test_restspec_truncated(void **state)
{
    size_t n = 0;
    uint8_t *b =
        t_read_data("restspec/maa_AttestSevSnpVm_example_SnpReport_TRUNCATED_1182bytes.bin", &n);
    struct skr_snp_report r;

    (void)state;
    assert_int_equal(n, 1182);
    assert_int_equal(skr_snp_report_parse(skr_span_make(b, n), &r), SKR_E_TRUNCATED);
    assert_msg_contains("1182 bytes");
    assert_int_equal(skr_snp_report_load(skr_span_make(b, n), &r, NULL), SKR_E_TRUNCATED);
    assert_msg_contains("1182 bytes");
    free(b);
}

static void
test_versions(void **state)
{
    struct skr_snp_report r;
    uint8_t raw[LEN];
    uint8_t out[LEN];
    static const uint32_t bad[] = { 0, 1, 6, 7, 0x100, 0xffffffffu };

    (void)state;
    load_vec_report("gsg/attestation.bin", &r, raw);
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        char want[64];

        skr_put_u32le(raw, bad[i]);
        assert_int_equal(skr_snp_report_parse(skr_span_make(raw, LEN), &r), SKR_E_UNSUPPORTED);
        snprintf(want, sizeof(want), "report version %u not supported (2..5)", bad[i]);
        assert_msg_contains(want);
    }
    for (uint32_t v = 2; v <= 5; v++) {
        skr_put_u32le(raw, v);
        assert_int_equal(skr_snp_report_parse(skr_span_make(raw, LEN), &r), SKR_OK);
        assert_int_equal(r.version, v);
        skr_snp_report_serialize(&r, out);
        assert_memory_equal(out, raw, LEN);
    }
}

/* Every reserved range is kept verbatim, and nonzero reserved bytes are not rejected. */
static void
test_reserved_kept(void **state)
{
    struct skr_snp_report r;
    uint8_t raw[LEN];
    uint8_t out[LEN];

    (void)state;
    load_vec_report("psk/evidence_report.bin", &r, raw);
    raw[0x04C] = 0x01;
    raw[0x18B] = 0x02;
    raw[0x19F] = 0x03;
    raw[0x1EB] = 0x04;
    raw[0x1EF] = 0x05;
    raw[0x1F8] = 0x06; /* LAUNCH_MIT_VECTOR bytes, reserved in v2 */
    raw[0x208] = 0x07;
    raw[0x29F] = 0x08;
    raw[0x2E7] = 0x09; /* high zero bytes of r */
    raw[0x330] = 0x0a;
    raw[LEN - 1] = 0x0b;
    assert_int_equal(skr_snp_report_parse(skr_span_make(raw, LEN), &r), SKR_OK);
    assert_int_equal(r.reserved_04c, 1);
    assert_int_equal(r.reserved_18b[0], 2);
    assert_int_equal(r.reserved_18b[20], 3);
    assert_int_equal(r.reserved_1eb, 4);
    assert_int_equal(r.reserved_1ef, 5);
    assert_int_equal(r.launch_mit_vector, 6);
    assert_int_equal(r.reserved_208[0], 7);
    assert_int_equal(r.reserved_208[151], 8);
    assert_int_equal(r.sig_r[71], 9);
    assert_int_equal(r.sig_reserved[0], 0x0a);
    assert_int_equal(r.sig_reserved[367], 0x0b);
    skr_snp_report_serialize(&r, out);
    assert_memory_equal(out, raw, LEN);
}

/* Each field lands at its documented offset. */
static void
test_field_offsets(void **state)
{
    uint8_t raw[LEN];
    struct skr_snp_report r;

    (void)state;
    for (size_t i = 0; i < LEN; i++) {
        raw[i] = (uint8_t)(i * 7 + 3);
    }
    skr_put_u32le(raw, 5);
    assert_int_equal(skr_snp_report_parse(skr_span_make(raw, LEN), &r), SKR_OK);
    assert_int_equal(r.guest_svn, skr_get_u32le(raw + 0x004));
    assert_int_equal(r.policy, skr_get_u64le(raw + 0x008));
    assert_memory_equal(r.family_id, raw + 0x010, 16);
    assert_memory_equal(r.image_id, raw + 0x020, 16);
    assert_int_equal(r.vmpl, skr_get_u32le(raw + 0x030));
    assert_int_equal(r.sig_algo, skr_get_u32le(raw + 0x034));
    assert_int_equal(r.current_tcb, skr_get_u64le(raw + 0x038));
    assert_int_equal(r.platform_info, skr_get_u64le(raw + 0x040));
    assert_int_equal(r.signer_info, skr_get_u32le(raw + 0x048));
    assert_memory_equal(r.report_data, raw + 0x050, 64);
    assert_memory_equal(r.measurement, raw + 0x090, 48);
    assert_memory_equal(r.host_data, raw + 0x0C0, 32);
    assert_memory_equal(r.id_key_digest, raw + 0x0E0, 48);
    assert_memory_equal(r.author_key_digest, raw + 0x110, 48);
    assert_memory_equal(r.report_id, raw + 0x140, 32);
    assert_memory_equal(r.report_id_ma, raw + 0x160, 32);
    assert_int_equal(r.reported_tcb, skr_get_u64le(raw + 0x180));
    assert_int_equal(r.cpuid_fam_id, raw[0x188]);
    assert_int_equal(r.cpuid_mod_id, raw[0x189]);
    assert_int_equal(r.cpuid_step, raw[0x18A]);
    assert_memory_equal(r.chip_id, raw + 0x1A0, 64);
    assert_int_equal(r.committed_tcb, skr_get_u64le(raw + 0x1E0));
    assert_int_equal(r.current_build, raw[0x1E8]);
    assert_int_equal(r.current_minor, raw[0x1E9]);
    assert_int_equal(r.current_major, raw[0x1EA]);
    assert_int_equal(r.committed_build, raw[0x1EC]);
    assert_int_equal(r.committed_minor, raw[0x1ED]);
    assert_int_equal(r.committed_major, raw[0x1EE]);
    assert_int_equal(r.launch_tcb, skr_get_u64le(raw + 0x1F0));
    assert_int_equal(r.launch_mit_vector, skr_get_u64le(raw + 0x1F8));
    assert_int_equal(r.current_mit_vector, skr_get_u64le(raw + 0x200));
    assert_memory_equal(r.sig_r, raw + 0x2A0, 72);
    assert_memory_equal(r.sig_s, raw + 0x2E8, 72);
    assert_memory_equal(r.sig_reserved, raw + 0x330, 368);
}

static void
test_tcb(void **state)
{
    struct skr_snp_tcb t;
    char tcbm[17];

    (void)state;
    /* CCF example, Turin layout */
    skr_snp_tcb_decode(0x1100000022334455ull, SKR_SNP_PRODUCT_TURIN, &t);
    assert_true(t.has_fmc);
    assert_int_equal(t.microcode, 0x11);
    assert_int_equal(t.snp, 0x22);
    assert_int_equal(t.tee, 0x33);
    assert_int_equal(t.bootloader, 0x44);
    assert_int_equal(t.fmc, 0x55);
    assert_int_equal(t.raw, 0x1100000022334455ull);
    assert_int_equal(skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_TURIN), 0x1100000022334455ull);

    /* the same raw value in the Milan/Genoa layout */
    skr_snp_tcb_decode(0x1100000022334455ull, SKR_SNP_PRODUCT_GENOA, &t);
    assert_false(t.has_fmc);
    assert_int_equal(t.fmc, 0);
    assert_int_equal(t.bootloader, 0x55);
    assert_int_equal(t.tee, 0x44);
    assert_int_equal(t.snp, 0x00);
    assert_int_equal(t.microcode, 0x11);
    /* reserved bytes are dropped by encode */
    assert_int_equal(skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_GENOA), 0x1100000000004455ull);

    /* MAA example: bytes 03 00 00 00 00 00 08 73 -> 3/0/8/115 */
    skr_snp_tcb_decode(0x7308000000000003ull, SKR_SNP_PRODUCT_UNKNOWN, &t);
    assert_int_equal(t.bootloader, 3);
    assert_int_equal(t.tee, 0);
    assert_int_equal(t.snp, 8);
    assert_int_equal(t.microcode, 0x73);
    t = (struct skr_snp_tcb){ .bootloader = 4, .tee = 0, .snp = 0x18, .microcode = 0xdb };
    assert_int_equal(skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_MILAN), 0xdb18000000000004ull);
    t = (struct skr_snp_tcb){ .fmc = 1, .bootloader = 2, .tee = 3, .snp = 4, .microcode = 5 };
    assert_int_equal(skr_snp_tcb_encode(&t, SKR_SNP_PRODUCT_TURIN), 0x0500000004030201ull);

    skr_snp_tcb_tcbm(0xdb18000000000004ull, tcbm);
    assert_string_equal(tcbm, "DB18000000000004");
    skr_snp_tcb_tcbm(0, tcbm);
    assert_string_equal(tcbm, "0000000000000000");
    skr_snp_tcb_tcbm(UINT64_MAX, tcbm);
    assert_string_equal(tcbm, "FFFFFFFFFFFFFFFF");
}

static void
test_products(void **state)
{
    enum skr_snp_product p = SKR_SNP_PRODUCT_UNKNOWN;
    static const struct {
        const char *s;
        enum skr_snp_product p;
    } good[] = {
        { "Milan", SKR_SNP_PRODUCT_MILAN }, { "milan", SKR_SNP_PRODUCT_MILAN },
        { "MILAN", SKR_SNP_PRODUCT_MILAN }, { "Milan-B0", SKR_SNP_PRODUCT_MILAN },
        { "Genoa", SKR_SNP_PRODUCT_GENOA }, { "Genoa-B1", SKR_SNP_PRODUCT_GENOA },
        { "Turin", SKR_SNP_PRODUCT_TURIN }, { "turin-B0", SKR_SNP_PRODUCT_TURIN },
    };
    static const char *const bad[] = { "",     "Mil",     "Milanx", "Milan-",
                                       "Rome", "unknown", " Milan", "Genoa B1" };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(good); i++) {
        p = SKR_SNP_PRODUCT_UNKNOWN;
        assert_int_equal(skr_snp_product_parse(good[i].s, &p), SKR_OK);
        assert_int_equal(p, good[i].p);
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
        p = SKR_SNP_PRODUCT_TURIN;
        assert_int_equal(skr_snp_product_parse(bad[i], &p), SKR_E_INVALID_ARG);
        assert_int_equal(p, SKR_SNP_PRODUCT_TURIN);
    }
    assert_int_equal(skr_snp_product_parse(NULL, &p), SKR_E_INVALID_ARG);

    assert_string_equal(skr_snp_product_name(SKR_SNP_PRODUCT_MILAN), "Milan");
    assert_string_equal(skr_snp_product_name(SKR_SNP_PRODUCT_GENOA), "Genoa");
    assert_string_equal(skr_snp_product_name(SKR_SNP_PRODUCT_TURIN), "Turin");
    assert_string_equal(skr_snp_product_name(SKR_SNP_PRODUCT_UNKNOWN), "unknown");
    assert_string_equal(skr_snp_product_name((enum skr_snp_product)42), "unknown");

    assert_int_equal(skr_snp_product_from_cpuid(0x19, 0x00), SKR_SNP_PRODUCT_MILAN);
    assert_int_equal(skr_snp_product_from_cpuid(0x19, 0x01), SKR_SNP_PRODUCT_MILAN);
    assert_int_equal(skr_snp_product_from_cpuid(0x19, 0x0F), SKR_SNP_PRODUCT_MILAN);
    assert_int_equal(skr_snp_product_from_cpuid(0x19, 0x10), SKR_SNP_PRODUCT_GENOA);
    assert_int_equal(skr_snp_product_from_cpuid(0x19, 0x11), SKR_SNP_PRODUCT_GENOA);
    assert_int_equal(skr_snp_product_from_cpuid(0x19, 0x1F), SKR_SNP_PRODUCT_GENOA);
    assert_int_equal(skr_snp_product_from_cpuid(0x19, 0x20), SKR_SNP_PRODUCT_UNKNOWN);
    assert_int_equal(skr_snp_product_from_cpuid(0x1A, 0x02), SKR_SNP_PRODUCT_TURIN);
    assert_int_equal(skr_snp_product_from_cpuid(0x1A, 0x11), SKR_SNP_PRODUCT_TURIN);
    assert_int_equal(skr_snp_product_from_cpuid(0x1A, 0x20), SKR_SNP_PRODUCT_UNKNOWN);
    assert_int_equal(skr_snp_product_from_cpuid(0x17, 0x01), SKR_SNP_PRODUCT_UNKNOWN);
    assert_int_equal(skr_snp_product_from_cpuid(0x00, 0x00), SKR_SNP_PRODUCT_UNKNOWN);
}

static const char *
jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_string(v)) {
        fail_msg("JSON member '%s' is not a string", key);
    }
    return json_string_value(v);
}

static json_int_t
jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_integer(v)) {
        fail_msg("JSON member '%s' is not an integer", key);
    }
    return json_integer_value(v);
}

static bool
jbool(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_boolean(v)) {
        fail_msg("JSON member '%s' is not a boolean", key);
    }
    return json_is_true(v);
}

static void
test_json_v2(void **state)
{
    struct skr_snp_report r;
    uint8_t raw[LEN];
    json_t *j = NULL;
    const json_t *o;
    char expect[97];

    (void)state;
    load_vec_report("scc/test_data__snp_report.bin", &r, raw);
    assert_int_equal(skr_snp_report_to_json(&r, SKR_SNP_PRODUCT_MILAN, &j), SKR_OK);
    assert_non_null(j);
    assert_int_equal(jint(j, "version"), 2);
    assert_int_equal(jint(j, "guest_svn"), 2);
    assert_int_equal(jint(j, "vmpl"), 0);
    assert_int_equal(jint(j, "signature_algo"), 1);
    assert_string_equal(jstr(j, "product"), "Milan");

    o = json_object_get(j, "policy");
    assert_true(json_is_object(o));
    assert_string_equal(jstr(o, "raw"), "0x3001f");
    assert_int_equal(jint(o, "abi_major"), 0);
    assert_int_equal(jint(o, "abi_minor"), 0x1f);
    assert_true(jbool(o, "smt"));
    assert_true(jbool(o, "reserved_must_be_one"));
    assert_false(jbool(o, "migrate_ma"));
    assert_false(jbool(o, "debug"));
    assert_false(jbool(o, "single_socket"));
    assert_false(jbool(o, "cxl_allow"));
    assert_false(jbool(o, "mem_aes_256_xts"));
    assert_false(jbool(o, "rapl_dis"));
    assert_false(jbool(o, "ciphertext_hiding"));
    assert_false(jbool(o, "page_swap_disable"));

    o = json_object_get(j, "reported_tcb");
    assert_true(json_is_object(o));
    assert_string_equal(jstr(o, "raw"), "7308000000000003");
    assert_int_equal(jint(o, "bootloader"), 3);
    assert_int_equal(jint(o, "tee"), 0);
    assert_int_equal(jint(o, "snp"), 8);
    assert_int_equal(jint(o, "microcode"), 115);
    assert_null(json_object_get(o, "fmc"));
    assert_true(json_is_object(json_object_get(j, "current_tcb")));
    assert_true(json_is_object(json_object_get(j, "committed_tcb")));
    assert_true(json_is_object(json_object_get(j, "launch_tcb")));

    o = json_object_get(j, "platform_info");
    assert_string_equal(jstr(o, "raw"), "0x1");
    assert_true(jbool(o, "smt_en"));
    assert_false(jbool(o, "tsme_en"));
    assert_false(jbool(o, "ecc_en"));
    assert_false(jbool(o, "rapl_dis"));
    assert_false(jbool(o, "ciphertext_hiding_en"));
    assert_false(jbool(o, "alias_check_complete"));
    assert_false(jbool(o, "tio_en"));

    o = json_object_get(j, "signer_info");
    assert_string_equal(jstr(o, "raw"), "0x0");
    assert_false(jbool(o, "author_key_en"));
    assert_false(jbool(o, "mask_chip_key"));
    assert_string_equal(jstr(o, "signing_key"), "vcek");

    assert_int_equal(strncmp(jstr(j, "host_data"), "cadd74f7", 8), 0);
    assert_int_equal(strlen(jstr(j, "host_data")), 64);
    assert_int_equal(strlen(jstr(j, "report_data")), 128);
    assert_int_equal(strlen(jstr(j, "measurement")), 96);
    assert_int_equal(strlen(jstr(j, "family_id")), 32);
    assert_int_equal(strlen(jstr(j, "image_id")), 32);
    assert_int_equal(strlen(jstr(j, "id_key_digest")), 96);
    assert_int_equal(strlen(jstr(j, "author_key_digest")), 96);
    assert_int_equal(strlen(jstr(j, "report_id")), 64);
    assert_string_equal(jstr(j, "report_id_ma"),
                        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
    assert_int_equal(strlen(jstr(j, "chip_id")), 128);
    assert_string_equal(jstr(j, "current_version"), "1.52.4");
    assert_string_equal(jstr(j, "committed_version"), "1.52.4");
    /* v2: no cpuid, no mitigation vectors */
    assert_null(json_object_get(j, "cpuid"));
    assert_null(json_object_get(j, "launch_mit_vector"));
    assert_null(json_object_get(j, "current_mit_vector"));

    /* signature r/s: big-endian of the low 48 bytes of the little-endian fields */
    o = json_object_get(j, "signature");
    assert_true(json_is_object(o));
    for (size_t i = 0; i < 48; i++) {
        snprintf(expect + 2 * i, 3, "%02x", raw[0x2A0 + 47 - i]);
    }
    assert_string_equal(jstr(o, "r"), expect);
    for (size_t i = 0; i < 48; i++) {
        snprintf(expect + 2 * i, 3, "%02x", raw[0x2E8 + 47 - i]);
    }
    assert_string_equal(jstr(o, "s"), expect);
    json_decref(j);
}

static void
test_json_v3_v5_turin(void **state)
{
    struct skr_snp_report r;
    uint8_t raw[LEN];
    json_t *j = NULL;
    const json_t *o;

    (void)state;
    load_vec_report("scc/platform_cert_fetcher_test__v3_report.bin", &r, raw);
    assert_int_equal(skr_snp_report_to_json(&r, skr_snp_report_product(&r), &j), SKR_OK);
    o = json_object_get(j, "cpuid");
    assert_true(json_is_object(o));
    assert_int_equal(jint(o, "fam_id"), 0x19);
    assert_int_equal(jint(o, "mod_id"), 1);
    assert_int_equal(jint(o, "step"), 1);
    assert_string_equal(jstr(j, "product"), "Milan");
    o = json_object_get(j, "reported_tcb");
    assert_string_equal(jstr(o, "raw"), "DB18000000000004");
    assert_int_equal(jint(o, "microcode"), 0xdb);
    o = json_object_get(j, "platform_info");
    assert_string_equal(jstr(o, "raw"), "0x25");
    assert_true(jbool(o, "smt_en"));
    assert_true(jbool(o, "ecc_en"));
    assert_true(jbool(o, "alias_check_complete"));
    assert_null(json_object_get(j, "launch_mit_vector"));
    json_decref(j);

    /* v5 on Turin with VLEK signing and reserved signing key */
    r.version = 5;
    r.launch_mit_vector = 0x1234;
    r.current_mit_vector = 0xffffffffffffffffull;
    r.signer_info = 1u << 2 | 1u;
    r.reported_tcb = 0x1100000022334455ull;
    assert_int_equal(skr_snp_report_to_json(&r, SKR_SNP_PRODUCT_TURIN, &j), SKR_OK);
    assert_string_equal(jstr(j, "launch_mit_vector"), "0x1234");
    assert_string_equal(jstr(j, "current_mit_vector"), "0xffffffffffffffff");
    assert_string_equal(jstr(j, "product"), "Turin");
    o = json_object_get(j, "reported_tcb");
    assert_string_equal(jstr(o, "raw"), "1100000022334455");
    assert_int_equal(jint(o, "fmc"), 0x55);
    assert_int_equal(jint(o, "bootloader"), 0x44);
    assert_int_equal(jint(o, "tee"), 0x33);
    assert_int_equal(jint(o, "snp"), 0x22);
    assert_int_equal(jint(o, "microcode"), 0x11);
    o = json_object_get(j, "signer_info");
    assert_string_equal(jstr(o, "signing_key"), "vlek");
    assert_true(jbool(o, "author_key_en"));
    json_decref(j);

    r.signer_info = 7u << 2 | 2u;
    assert_int_equal(skr_snp_report_to_json(&r, SKR_SNP_PRODUCT_TURIN, &j), SKR_OK);
    o = json_object_get(j, "signer_info");
    assert_string_equal(jstr(o, "signing_key"), "none");
    assert_true(jbool(o, "mask_chip_key"));
    json_decref(j);
    r.signer_info = 3u << 2;
    assert_int_equal(skr_snp_report_to_json(&r, SKR_SNP_PRODUCT_TURIN, &j), SKR_OK);
    o = json_object_get(j, "signer_info");
    assert_string_equal(jstr(o, "signing_key"), "reserved(3)");
    json_decref(j);
}

static void
assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) {
        fail_msg("text output lacks '%s':\n%s", needle, hay);
    }
}

static void
test_text(void **state)
{
    struct skr_snp_report r;
    uint8_t raw[LEN];
    struct skr_buf out;
    const char *s = NULL;

    (void)state;
    load_vec_report("scc/test_data__snp_report.bin", &r, raw);
    skr_buf_init(&out, 1u << 16);
    assert_int_equal(skr_snp_report_to_text(&r, SKR_SNP_PRODUCT_MILAN, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    assert_contains(s, "Version:");
    assert_contains(s, "Product:");
    assert_contains(s, "Milan\n");
    assert_contains(s, "0x000000000003001f");
    assert_contains(s, "Debug allowed:");
    assert_contains(s, "SMT allowed:");
    assert_contains(s, "Reported TCB:");
    assert_contains(s, "7308000000000003 (bootloader 3, tee 0, snp 8, microcode 115)");
    assert_contains(s, "Signing key:");
    assert_contains(s, "vcek");
    assert_contains(s, "Host data:");
    assert_contains(s, "cadd74f7");
    assert_contains(s, "Current version:");
    assert_contains(s, "1.52.4");
    assert_contains(s, "Signature r:");
    assert_true(strstr(s, "CPUID:") == NULL);
    assert_true(strstr(s, "fmc") == NULL);
    /* values are aligned: "Version:" and "Reported TCB:" values start in the same column */
    {
        const char *v = strstr(s, "Version:");
        const char *t = strstr(s, "Reported TCB:");
        size_t cv = strspn(v + strlen("Version:"), " ") + strlen("Version:");
        size_t ct = strspn(t + strlen("Reported TCB:"), " ") + strlen("Reported TCB:");

        assert_int_equal(cv, ct);
    }
    skr_buf_reset(&out);

    /* appends, v3 shows CPUID, Turin shows fmc */
    assert_int_equal(skr_buf_append_str(&out, "prefix\n"), SKR_OK);
    r.version = 3;
    r.cpuid_fam_id = 0x1A;
    r.cpuid_mod_id = 0x02;
    assert_int_equal(skr_snp_report_to_text(&r, SKR_SNP_PRODUCT_TURIN, &out), SKR_OK);
    assert_int_equal(skr_buf_cstr(&out, &s), SKR_OK);
    assert_int_equal(strncmp(s, "prefix\nVersion:", 15), 0);
    assert_contains(s, "CPUID:");
    assert_contains(s, "family 0x1a, model 0x02");
    assert_contains(s, "fmc ");
    assert_contains(s, "Turin\n");
    skr_buf_done(&out);

    /* a too-small output buffer fails cleanly */
    skr_buf_init(&out, 64);
    assert_int_not_equal(skr_snp_report_to_text(&r, SKR_SNP_PRODUCT_MILAN, &out), SKR_OK);
    skr_buf_done(&out);
}

/* Deterministic mutations of a real report: whatever parses must round-trip exactly. */
static void
test_mutation_round_trip(void **state)
{
    struct skr_snp_report r;
    uint8_t base[LEN];
    uint8_t raw[LEN];
    uint8_t out[LEN];
    uint32_t x = 0x12345678u;

    (void)state;
    load_vec_report("virtee/report_milan.bin", &r, base);
    for (int round = 0; round < 200; round++) {
        memcpy(raw, base, LEN);
        for (int k = 0; k < 16; k++) {
            x = x * 1103515245u + 12345u;
            raw[4 + (x >> 8) % (LEN - 4)] = (uint8_t)(x >> 24);
        }
        skr_put_u32le(raw, 2u + (uint32_t)round % 4u);
        assert_int_equal(skr_snp_report_parse(skr_span_make(raw, LEN), &r), SKR_OK);
        skr_snp_report_serialize(&r, out);
        assert_memory_equal(out, raw, LEN);
    }
}

int main(void);

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_round_trip),
        cmocka_unit_test(test_scc_v2_fields),
        cmocka_unit_test(test_scc_v3_fields),
        cmocka_unit_test(test_hex_load),
        cmocka_unit_test(test_hex_load_upper_ws),
        cmocka_unit_test(test_hex_load_negative),
        cmocka_unit_test(test_fake_v1_hex_rejected),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_restspec_truncated),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_reserved_kept),
        cmocka_unit_test(test_field_offsets),
        cmocka_unit_test(test_tcb),
        cmocka_unit_test(test_products),
        cmocka_unit_test(test_json_v2),
        cmocka_unit_test(test_json_v3_v5_turin),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_mutation_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
