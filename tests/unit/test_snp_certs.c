/*
 * test_snp_certs.c - lib/snp_certs and lib/amd_roots: THIM JSON and host-amd-cert-base64,
 * certificate table build/parse and its negative table, VCEK/VLEK extensions on the real VCEKs
 * (Milan, Turin) and on synthetic certificates, the DER INTEGER/IA5String decoders, KDS URLs,
 * certificate-set loading from every accepted format, and the pinned built-in AMD roots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "amd_roots.h"
#include "b64.h"
#include "buf.h"
#include "err.h"
#include "hex.h"
#include "ossl.h"
#include "snp_certs.h"
#include "snp_report.h"
#include "tdata.h"

/* ---- helpers ------------------------------------------------------------------------- */

static X509 *
der_cert(const uint8_t *p, size_t n)
{
    const unsigned char *q = p;
    X509 *x = d2i_X509(NULL, &q, (long)n);

    assert_non_null(x);
    assert_ptr_equal(q, p + n);
    return x;
}

static X509 *
load_der(const char *rel)
{
    size_t n = 0;
    uint8_t *b = t_read_data(rel, &n);
    X509 *x = der_cert(b, n);

    free(b);
    return x;
}

/* The certificates of a PEM vector, in file order. */
static STACK_OF(X509) * load_pem(const char *rel)
{
    size_t n = 0;
    uint8_t *b = t_read_data(rel, &n);
    STACK_OF(X509) *sk = NULL;

    assert_int_equal(skr_pem_read_certs(skr_span_make(b, n), &sk), SKR_OK);
    free(b);
    return sk;
}

static size_t
cert_der(X509 *x, uint8_t **ret)
{
    unsigned char *p = NULL;
    int n = i2d_X509(x, &p);

    assert_true(n > 0);
    *ret = p;
    return (size_t)n;
}

static void
assert_cn(X509 *x, const char *want)
{
    char cn[64];

    assert_non_null(x);
    skr_x509_cn(x, cn, sizeof(cn));
    assert_string_equal(cn, want);
}

struct ext_spec {
    const char *oid;
    const uint8_t *v;
    size_t n;
};

/* A signed throwaway certificate (P-256) with subject CN=cn and the given raw extensions. */
static X509 *
make_cert(const char *cn, const struct ext_spec *exts, size_t n_exts)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    EVP_PKEY *key = EVP_EC_gen("P-256");

    assert_non_null(x);
    assert_non_null(name);
    assert_non_null(key);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    X509_NAME_free(name);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    for (size_t i = 0; i < n_exts; i++) {
        ASN1_OBJECT *o = OBJ_txt2obj(exts[i].oid, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e;

        assert_non_null(o);
        assert_non_null(os);
        assert_int_equal(ASN1_OCTET_STRING_set(os, exts[i].v, (int)exts[i].n), 1);
        e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(o);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return x;
}

static const uint8_t guid_vcek[16] = { 0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                       0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd };
static const uint8_t guid_vlek[16] = { 0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                       0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1 };
static const uint8_t guid_ask[16] = { 0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                      0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82 };
static const uint8_t guid_ark[16] = { 0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                      0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae };
static const uint8_t guid_unknown[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                          0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };

/* ---- THIM ---------------------------------------------------------------------------- */

static void
test_thim_json(void **state)
{
    size_t n = 0;
    uint8_t *b = t_read_data("scc/test_data__uvm_host_amd_certificate.json", &n);
    struct skr_thim t;

    (void)state;
    assert_int_equal(skr_thim_parse(skr_span_make(b, n), &t), SKR_OK);
    assert_int_equal(t.tcbm, 0x7308000000000003ull);
    assert_string_equal(t.tcbm_str, "7308000000000003");
    assert_non_null(t.cache_control);
    assert_string_equal(t.cache_control, "86400");
    assert_int_equal(strncmp(t.vcek_pem, "-----BEGIN CERTIFICATE-----\n", 28), 0);
    assert_int_equal(strncmp(t.chain_pem, "-----BEGIN CERTIFICATE-----\n", 28), 0);
    skr_thim_done(&t);
    assert_null(t.vcek_pem);
    assert_null(t.cache_control);
    skr_thim_done(&t); /* twice is harmless */
    free(b);
}

static void
test_thim_b64(void **state)
{
    size_t n = 0;
    uint8_t *b = t_read_data("scc/security-context-test/host-amd-cert-base64", &n);
    struct skr_thim t;
    STACK_OF(X509) *sk = NULL;

    (void)state;
    assert_int_equal(skr_thim_parse_b64(skr_span_make(b, n), &t), SKR_OK);
    assert_int_equal(t.tcbm, 0x7308000000000003ull);
    assert_string_equal(t.cache_control, "86400");
    assert_int_equal(skr_pem_read_certs(skr_span_str(t.chain_pem), &sk), SKR_OK);
    assert_int_equal(sk_X509_num(sk), 2);
    assert_cn(sk_X509_value(sk, 0), "SEV-Milan");
    assert_cn(sk_X509_value(sk, 1), "ARK-Milan");
    skr_x509_stack_free(sk);
    skr_thim_done(&t);

    /* base64 with embedded newlines is accepted */
    {
        struct skr_buf wrapped;

        skr_buf_init(&wrapped, 1u << 20);
        for (size_t i = 0; i < n; i += 64) {
            assert_int_equal(skr_buf_append(&wrapped, b + i, n - i < 64 ? n - i : 64), SKR_OK);
            assert_int_equal(skr_buf_append_str(&wrapped, "\r\n"), SKR_OK);
        }
        assert_int_equal(skr_thim_parse_b64(skr_buf_span(&wrapped), &t), SKR_OK);
        assert_int_equal(t.tcbm, 0x7308000000000003ull);
        skr_thim_done(&t);
        skr_buf_done(&wrapped);
    }

    /* not base64 / base64 of something that is not a THIM object */
    assert_int_equal(skr_thim_parse_b64(skr_span_str("!!!!"), &t), SKR_E_MALFORMED);
    assert_int_equal(skr_thim_parse_b64(skr_span_str("W10="), &t), SKR_E_MALFORMED); /* [] */
    free(b);
}

static void
test_thim_negative(void **state)
{
    static const struct {
        const char *json;
        skr_err want;
        const char *msg;
    } cases[] = {
        { "{\"certificateChain\":\"c\",\"tcbm\":\"1\"}", SKR_E_MALFORMED, "vcekCert" },
        { "{\"vcekCert\":\"v\",\"tcbm\":\"1\"}", SKR_E_MALFORMED, "certificateChain" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\"}", SKR_E_MALFORMED, "tcbm" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":7308}", SKR_E_MALFORMED,
          "tcbm" },
        { "{\"vcekCert\":1,\"certificateChain\":\"c\",\"tcbm\":\"1\"}", SKR_E_MALFORMED,
          "vcekCert" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":\"73080000000000031\"}",
          SKR_E_MALFORMED, "expected 1-16 hex digits" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":\"73G8\"}", SKR_E_MALFORMED,
          "expected 1-16 hex digits" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":\"\"}", SKR_E_MALFORMED,
          "expected 1-16 hex digits" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":\"0x73\"}", SKR_E_MALFORMED,
          "expected 1-16 hex digits" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":\" 73\"}", SKR_E_MALFORMED,
          "expected 1-16 hex digits" },
        { "{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":\"1\",\"cacheControl\":5}",
          SKR_E_MALFORMED, "cacheControl" },
        { "{\"vcekCert\":\"v\",\"vcekCert\":\"w\",\"certificateChain\":\"c\",\"tcbm\":\"1\"}",
          SKR_E_MALFORMED, "THIM JSON" },
        { "{\"vcekCert\":\"v\",", SKR_E_MALFORMED, "THIM JSON" },
        { "[\"vcekCert\"]", SKR_E_MALFORMED, "THIM JSON" },
        { "", SKR_E_MALFORMED, "THIM JSON" },
    };
    struct skr_thim t;

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(cases); i++) {
        memset(&t, 0x5a, sizeof(t));
        if (skr_thim_parse(skr_span_str(cases[i].json), &t) != cases[i].want) {
            fail_msg("case %zu (%s) not rejected as expected", i, cases[i].json);
        }
        assert_msg_contains(cases[i].msg);
        /* ret untouched on failure */
        assert_int_equal(((uint8_t *)&t)[0], 0x5a);
    }

    /* boundaries that must work: 1 and 16 digits, lowercase, no cacheControl */
    assert_int_equal(
        skr_thim_parse(
            skr_span_str("{\"vcekCert\":\"v\",\"certificateChain\":\"c\",\"tcbm\":\"f\"}"), &t),
        SKR_OK);
    assert_int_equal(t.tcbm, 15);
    assert_null(t.cache_control);
    skr_thim_done(&t);
    assert_int_equal(skr_thim_parse(skr_span_str("{\"vcekCert\":\"v\",\"certificateChain\":\"c\","
                                                 "\"tcbm\":\"ffffffffFFFFFFFF\",\"x\":[1]}"),
                                    &t),
                     SKR_OK);
    assert_int_equal(t.tcbm, UINT64_MAX);
    skr_thim_done(&t);

    /* done() on zeroed and half-filled structs */
    memset(&t, 0, sizeof(t));
    skr_thim_done(&t);
    t.vcek_pem = strdup("x");
    assert_non_null(t.vcek_pem);
    skr_thim_done(&t);
    assert_null(t.vcek_pem);
    skr_thim_done(NULL);
}

/* ---- certificate table --------------------------------------------------------------- */

static void
put_entry(uint8_t *p, const uint8_t guid[16], uint32_t off, uint32_t len)
{
    memcpy(p, guid, 16);
    skr_put_u32le(p + 16, off);
    skr_put_u32le(p + 20, len);
}

static void
test_cert_table_round_trip(void **state)
{
    STACK_OF(X509) *chain = load_pem("gsg/trust/ask_ark_milan.pem");
    X509 *vcek = load_der("virtee/vcek_milan.der");
    uint8_t *der[3];
    size_t der_len[3];
    static const uint8_t other[] = "not a certificate";
    struct skr_cert_entry in[4];
    struct skr_cert_table t;
    struct skr_cert_set s;
    struct skr_buf blob;
    size_t off;

    (void)state;
    der_len[0] = cert_der(vcek, &der[0]);
    der_len[1] = cert_der(sk_X509_value(chain, 0), &der[1]);
    der_len[2] = cert_der(sk_X509_value(chain, 1), &der[2]);
    memset(in, 0, sizeof(in));
    in[0] =
        (struct skr_cert_entry){ .kind = SKR_CERT_ARK, .der = skr_span_make(der[2], der_len[2]) };
    in[1] = (struct skr_cert_entry){ .kind = SKR_CERT_OTHER,
                                     .der = skr_span_make(other, sizeof(other)) };
    memcpy(in[1].guid, guid_unknown, 16);
    in[2] =
        (struct skr_cert_entry){ .kind = SKR_CERT_VCEK, .der = skr_span_make(der[0], der_len[0]) };
    in[3] =
        (struct skr_cert_entry){ .kind = SKR_CERT_ASK, .der = skr_span_make(der[1], der_len[1]) };

    skr_buf_init(&blob, SKR_MAX_CERT_TABLE_BYTES);
    assert_int_equal(skr_cert_table_build(in, 4, &blob), SKR_OK);
    assert_int_equal(blob.len, 5 * 24 + der_len[0] + der_len[1] + der_len[2] + sizeof(other));
    /* wire layout: GUID bytes in RFC 4122 string order, offsets from the blob start */
    assert_memory_equal(blob.ptr, guid_ark, 16);
    assert_int_equal(skr_get_u32le(blob.ptr + 16), 5 * 24);
    assert_int_equal(skr_get_u32le(blob.ptr + 20), der_len[2]);
    assert_memory_equal(blob.ptr + 24, guid_unknown, 16);
    assert_memory_equal(blob.ptr + 48, guid_vcek, 16);
    assert_memory_equal(blob.ptr + 72, guid_ask, 16);
    assert_true(skr_span_is_zero(skr_span_make(blob.ptr + 96, 24)));

    assert_int_equal(skr_cert_table_parse(skr_buf_span(&blob), &t), SKR_OK);
    assert_int_equal(t.n, 4);
    off = 5 * 24;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(t.entries[i].kind, in[i].kind);
        assert_int_equal(t.entries[i].der.len, in[i].der.len);
        assert_memory_equal(t.entries[i].der.ptr, in[i].der.ptr, in[i].der.len);
        assert_ptr_equal(t.entries[i].der.ptr, blob.ptr + off);
        off += in[i].der.len;
    }
    assert_memory_equal(t.entries[1].guid, guid_unknown, 16);
    assert_memory_equal(t.entries[2].guid, guid_vcek, 16);

    /* table -> cert set */
    assert_int_equal(skr_cert_set_from_table(&t, &s), SKR_OK);
    assert_int_equal(X509_cmp(s.vcek, vcek), 0);
    assert_cn(s.ask, "SEV-Milan");
    assert_cn(s.ark, "ARK-Milan");
    assert_false(s.has_tcbm);
    skr_cert_set_done(&s);
    assert_null(s.vcek);

    /* the blob is also accepted by cert_set_load */
    assert_int_equal(skr_cert_set_load(skr_buf_span(&blob), &s), SKR_OK);
    assert_int_equal(X509_cmp(s.vcek, vcek), 0);
    assert_non_null(s.ask);
    assert_non_null(s.ark);
    skr_cert_set_done(&s);

    /* build appends; a VLEK entry gets the VLEK GUID */
    skr_buf_reset(&blob);
    assert_int_equal(skr_buf_append_str(&blob, "xy"), SKR_OK);
    in[0] =
        (struct skr_cert_entry){ .kind = SKR_CERT_VLEK, .der = skr_span_make(der[0], der_len[0]) };
    assert_int_equal(skr_cert_table_build(in, 1, &blob), SKR_OK);
    assert_memory_equal(blob.ptr, "xy", 2);
    assert_memory_equal(blob.ptr + 2, guid_vlek, 16);
    assert_int_equal(skr_get_u32le(blob.ptr + 18), 48);
    assert_int_equal(skr_cert_table_parse(skr_span_make(blob.ptr + 2, blob.len - 2), &t), SKR_OK);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.entries[0].kind, SKR_CERT_VLEK);

    /* the empty table (just a terminator) */
    skr_buf_reset(&blob);
    assert_int_equal(skr_cert_table_build(in, 0, &blob), SKR_OK);
    assert_int_equal(blob.len, 24);
    assert_int_equal(skr_cert_table_parse(skr_buf_span(&blob), &t), SKR_OK);
    assert_int_equal(t.n, 0);
    assert_int_equal(skr_cert_set_from_table(&t, &s), SKR_E_MALFORMED);
    assert_msg_contains("no VCEK/VLEK certificate in certificate table");

    skr_buf_done(&blob);
    for (size_t i = 0; i < 3; i++) {
        OPENSSL_free(der[i]);
    }
    X509_free(vcek);
    skr_x509_stack_free(chain);
}

static void
test_cert_table_negative(void **state)
{
    uint8_t b[17 * 24 + 24 + 64] = { 0 };
    struct skr_cert_table t;
    struct skr_cert_entry many[SKR_MAX_CERT_TABLE_ENTRIES + 1];
    struct skr_buf out;
    uint8_t *big;

    (void)state;
    /* empty and truncated header */
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 0), &t), SKR_E_MALFORMED);
    memset(b, 0, sizeof(b));
    put_entry(b, guid_vcek, 24, 4);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 30), &t), SKR_E_MALFORMED);
    assert_msg_contains("terminator");
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 23), &t), SKR_E_MALFORMED);

    /* no terminator before the end of the blob */
    put_entry(b, guid_vcek, 0, 48);
    put_entry(b + 24, guid_ask, 0, 48);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 48), &t), SKR_E_MALFORMED);
    assert_msg_contains("terminator");

    /* a minimal valid table, then each field broken */
    memset(b, 0, sizeof(b));
    put_entry(b, guid_vcek, 48, 4);
    memset(b + 48, 0x30, 4);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_OK);
    assert_int_equal(t.n, 1);
    /* one byte short of the certificate */
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 51), &t), SKR_E_MALFORMED);
    assert_msg_contains("outside");
    /* offset past the end */
    put_entry(b, guid_vcek, 1000, 4);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    assert_msg_contains("outside");
    /* offset + length overflows 32 bits */
    put_entry(b, guid_vcek, 0xffffffffu, 4);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    assert_msg_contains("outside");
    put_entry(b, guid_vcek, 0xfffffffcu, 8);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    /* length 0, length too large (with and without overflow) */
    put_entry(b, guid_vcek, 48, 0);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    assert_msg_contains("bad length");
    put_entry(b, guid_vcek, 48, SKR_MAX_CERT_BYTES + 1);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    put_entry(b, guid_vcek, 48, 0xffffffffu);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    /* certificate overlapping the header */
    put_entry(b, guid_vcek, 0, 4);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    assert_msg_contains("overlaps");
    put_entry(b, guid_vcek, 47, 4);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    /* zero GUID with a non-zero offset/length is not a terminator */
    put_entry(b, guid_vcek, 48, 4);
    put_entry(b + 24, (const uint8_t[16]){ 0 }, 48, 4);
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 52), &t), SKR_E_MALFORMED);
    assert_msg_contains("zero GUID");

    /* 16 entries are fine, 17 are too many */
    memset(b, 0, sizeof(b));
    for (size_t i = 0; i < 17; i++) {
        put_entry(b + 24 * i, guid_unknown, 17 * 24 + 24, 1);
    }
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 17 * 24 + 24 + 1), &t), SKR_E_TOO_LARGE);
    memset(b + 16 * 24, 0, 24);
    for (size_t i = 0; i < 16; i++) {
        put_entry(b + 24 * i, guid_unknown, 17 * 24, 1);
    }
    assert_int_equal(skr_cert_table_parse(skr_span_make(b, 17 * 24 + 1), &t), SKR_OK);
    assert_int_equal(t.n, 16);

    /* a blob over the size limit */
    big = calloc(1, SKR_MAX_CERT_TABLE_BYTES + 1);
    assert_non_null(big);
    assert_int_equal(skr_cert_table_parse(skr_span_make(big, SKR_MAX_CERT_TABLE_BYTES + 1), &t),
                     SKR_E_TOO_LARGE);
    /* ...while an all-zero blob within the limit is an empty table */
    assert_int_equal(skr_cert_table_parse(skr_span_make(big, 100), &t), SKR_OK);
    assert_int_equal(t.n, 0);

    /* build: too many entries, empty or huge certificates, total over the limit */
    skr_buf_init(&out, SKR_MAX_CERT_TABLE_BYTES);
    for (size_t i = 0; i < SKR_ARRAY_LEN(many); i++) {
        many[i] = (struct skr_cert_entry){ .kind = SKR_CERT_ARK, .der = skr_span_make(b, 1) };
    }
    assert_int_equal(skr_cert_table_build(many, SKR_ARRAY_LEN(many), &out), SKR_E_TOO_LARGE);
    many[0].der = skr_span_make(b, 0);
    assert_int_equal(skr_cert_table_build(many, 1, &out), SKR_E_INVALID_ARG);
    many[0].der = skr_span_make(big, SKR_MAX_CERT_BYTES + 1);
    assert_int_equal(skr_cert_table_build(many, 1, &out), SKR_E_INVALID_ARG);
    for (size_t i = 0; i < 5; i++) {
        many[i].der = skr_span_make(big, SKR_MAX_CERT_BYTES);
    }
    assert_int_equal(skr_cert_table_build(many, 5, &out), SKR_E_TOO_LARGE);
    assert_int_equal(out.len, 0);
    skr_buf_done(&out);
    free(big);
}

static void
test_cert_kinds(void **state)
{
    (void)state;
    assert_string_equal(skr_cert_kind_name(SKR_CERT_VCEK), "vcek");
    assert_string_equal(skr_cert_kind_name(SKR_CERT_VLEK), "vlek");
    assert_string_equal(skr_cert_kind_name(SKR_CERT_ASK), "ask");
    assert_string_equal(skr_cert_kind_name(SKR_CERT_ARK), "ark");
    assert_string_equal(skr_cert_kind_name(SKR_CERT_OTHER), "other");
    assert_string_equal(skr_cert_kind_name((enum skr_cert_kind)99), "other");
    assert_memory_equal(skr_cert_kind_guid(SKR_CERT_VCEK), guid_vcek, 16);
    assert_memory_equal(skr_cert_kind_guid(SKR_CERT_VLEK), guid_vlek, 16);
    assert_memory_equal(skr_cert_kind_guid(SKR_CERT_ASK), guid_ask, 16);
    assert_memory_equal(skr_cert_kind_guid(SKR_CERT_ARK), guid_ark, 16);
    assert_null(skr_cert_kind_guid(SKR_CERT_OTHER));
}

/* ---- VCEK extensions ----------------------------------------------------------------- */

static void
test_vcek_ext_gsg(void **state)
{
    X509 *x = load_der("gsg/vcek.testcer");
    struct skr_vcek_ext e;
    size_t n = 0;
    uint8_t *report = t_read_data("gsg/attestation.bin", &n);

    (void)state;
    assert_int_equal(skr_vcek_ext_decode(x, &e), SKR_OK);
    assert_true(e.has_struct_version);
    assert_int_equal(e.struct_version, 0);
    assert_string_equal(e.product_name, "Milan-B0");
    assert_true(e.has_bl && e.has_tee && e.has_snp && e.has_ucode);
    assert_false(e.has_fmc);
    assert_int_equal(e.bl, 2);
    assert_int_equal(e.tee, 0);
    assert_int_equal(e.snp, 5);
    assert_int_equal(e.ucode, 0x44);
    assert_int_equal(e.hwid_len, 64);
    /* hwID is the CHIP_ID of the matching report (offset 0x1A0) */
    assert_int_equal(n, SKR_SNP_REPORT_LEN);
    assert_memory_equal(e.hwid, report + 0x1A0, 64);
    assert_string_equal(e.csp_id, "");
    assert_false(e.is_vlek);
    assert_int_equal(skr_vcek_ext_product(&e), SKR_SNP_PRODUCT_MILAN);
    /* the TCB it was issued for is the report's REPORTED_TCB */
    assert_int_equal(skr_vcek_ext_tcb(&e, SKR_SNP_PRODUCT_MILAN), skr_get_u64le(report + 0x180));
    assert_int_equal(skr_vcek_ext_tcb(&e, SKR_SNP_PRODUCT_MILAN), 0x4405000000000002ull);
    free(report);
    X509_free(x);
}

static void
test_vcek_ext_virtee_milan(void **state)
{
    X509 *x = load_der("virtee/vcek_milan.der");
    struct skr_vcek_ext e;
    static const uint8_t hwid_head[] = { 0xd4, 0x95, 0x54, 0xec, 0x71, 0x7f, 0x4e, 0x5b };
    static const uint8_t hwid_tail[] = { 0x2e, 0x2f, 0x87, 0xa4, 0x4d, 0x54, 0x1e, 0xb6 };

    (void)state;
    assert_int_equal(skr_vcek_ext_decode(x, &e), SKR_OK);
    assert_int_equal(e.struct_version, 0);
    assert_string_equal(e.product_name, "Milan-B0");
    assert_int_equal(e.bl, 3);
    assert_int_equal(e.tee, 0);
    assert_int_equal(e.snp, 8);
    assert_int_equal(e.ucode, 115);
    assert_false(e.has_fmc);
    assert_int_equal(e.hwid_len, 64);
    assert_memory_equal(e.hwid, hwid_head, 8);
    assert_memory_equal(e.hwid + 56, hwid_tail, 8);
    assert_int_equal(skr_vcek_ext_product(&e), SKR_SNP_PRODUCT_MILAN);
    assert_int_equal(skr_vcek_ext_tcb(&e, SKR_SNP_PRODUCT_MILAN), 0x7308000000000003ull);
    X509_free(x);
}

static void
test_vcek_ext_virtee_turin(void **state)
{
    X509 *x = load_der("virtee/vcek_turin.der");
    struct skr_vcek_ext e;
    static const uint8_t hwid[] = { 0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d };

    (void)state;
    assert_int_equal(skr_vcek_ext_decode(x, &e), SKR_OK);
    assert_true(e.has_struct_version);
    assert_int_equal(e.struct_version, 1);
    assert_string_equal(e.product_name, "Turin");
    assert_true(e.has_fmc && e.has_bl && e.has_tee && e.has_snp && e.has_ucode);
    assert_int_equal(e.fmc, 0);
    assert_int_equal(e.bl, 0);
    assert_int_equal(e.tee, 0);
    assert_int_equal(e.snp, 0);
    assert_int_equal(e.ucode, 9);
    assert_int_equal(e.hwid_len, 8);
    assert_memory_equal(e.hwid, hwid, 8);
    assert_false(e.is_vlek);
    assert_int_equal(skr_vcek_ext_product(&e), SKR_SNP_PRODUCT_TURIN);
    assert_int_equal(skr_vcek_ext_tcb(&e, SKR_SNP_PRODUCT_TURIN), 0x0900000000000000ull);
    X509_free(x);
}

#define OID(s) "1.3.6.1.4.1.3704.1." s

static void
test_vcek_ext_synthetic(void **state)
{
    static const uint8_t v_sv[] = { 0x02, 0x01, 0x00 };
    static const uint8_t v_name[] = { 0x16, 0x08, 'G', 'e', 'n', 'o', 'a', '-', 'B', '1' };
    static const uint8_t v_bl[] = { 0x02, 0x02, 0x00, 0x80 };
    static const uint8_t v_tee[] = { 0x02, 0x01, 0x7f };
    static const uint8_t v_snp[] = { 0x02, 0x02, 0x00, 0xff };
    static const uint8_t v_ucode[] = { 0x02, 0x02, 0x00, 0xdb };
    static const uint8_t v_csp[] = { 0x16, 0x05, 'A', 'z', 'u', 'r', 'e' };
    static const uint8_t v_neg[] = { 0x02, 0x01, 0x80 };
    static const uint8_t v_hwid65[65] = { 1 };
    static const uint8_t v_ucode_bad_tag[] = { 0x04, 0x01, 0x05 };
    const struct ext_spec good[] = {
        { OID("1"), v_sv, sizeof(v_sv) },     { OID("2"), v_name, sizeof(v_name) },
        { OID("3.1"), v_bl, sizeof(v_bl) },   { OID("3.2"), v_tee, sizeof(v_tee) },
        { OID("3.3"), v_snp, sizeof(v_snp) }, { OID("3.8"), v_ucode, sizeof(v_ucode) },
        { OID("5"), v_csp, sizeof(v_csp) },   { OID("3.4"), v_neg, sizeof(v_neg) }, /* ignored */
        { OID("99"), v_neg, sizeof(v_neg) }, /* unknown: ignored */
    };
    struct skr_vcek_ext e;
    X509 *x;

    (void)state;
    x = make_cert("SEV-VLEK", good, SKR_ARRAY_LEN(good));
    assert_int_equal(skr_vcek_ext_decode(x, &e), SKR_OK);
    assert_true(e.is_vlek);
    assert_string_equal(e.product_name, "Genoa-B1");
    assert_int_equal(skr_vcek_ext_product(&e), SKR_SNP_PRODUCT_GENOA);
    assert_int_equal(e.bl, 0x80);
    assert_int_equal(e.tee, 0x7f);
    assert_int_equal(e.snp, 0xff);
    assert_int_equal(e.ucode, 0xdb); /* the reference sidecar's Value[2] would read 0x00 */
    assert_string_equal(e.csp_id, "Azure");
    assert_int_equal(e.hwid_len, 0);
    assert_false(e.has_fmc);
    assert_int_equal(skr_vcek_ext_tcb(&e, SKR_SNP_PRODUCT_GENOA), 0xdbff000000007f80ull);
    X509_free(x);

    /* no AMD extensions at all: nothing present, product unknown */
    x = make_cert("SEV-VCEK", NULL, 0);
    assert_int_equal(skr_vcek_ext_decode(x, &e), SKR_OK);
    assert_false(e.has_struct_version || e.has_bl || e.has_ucode || e.is_vlek);
    assert_int_equal(e.hwid_len, 0);
    assert_int_equal(skr_vcek_ext_product(&e), SKR_SNP_PRODUCT_UNKNOWN);
    X509_free(x);

    /* bad productName: unknown product */
    {
        static const uint8_t v_odd[] = { 0x16, 0x04, 'R', 'o', 'm', 'e' };
        const struct ext_spec odd[] = { { OID("2"), v_odd, sizeof(v_odd) } };

        x = make_cert("SEV-VCEK", odd, 1);
        assert_int_equal(skr_vcek_ext_decode(x, &e), SKR_OK);
        assert_int_equal(skr_vcek_ext_product(&e), SKR_SNP_PRODUCT_UNKNOWN);
        X509_free(x);
    }

    /* negative: each error names the extension */
    {
        const struct {
            struct ext_spec ext[2];
            size_t n;
            const char *msg;
        } bad[] = {
            { { { OID("3.8"), v_neg, sizeof(v_neg) } }, 1, "ucodeSPL" },
            { { { OID("3.8"), v_ucode_bad_tag, sizeof(v_ucode_bad_tag) } }, 1, "ucodeSPL" },
            { { { OID("1"), v_name, sizeof(v_name) } }, 1, "structVersion" },
            { { { OID("2"), v_sv, sizeof(v_sv) } }, 1, "productName" },
            { { { OID("4"), v_hwid65, sizeof(v_hwid65) } }, 1, "hwID" },
            { { { OID("3.9"), v_neg, sizeof(v_neg) } }, 1, "fmcSPL" },
            { { { OID("3.1"), v_bl, sizeof(v_bl) }, { OID("3.1"), v_tee, sizeof(v_tee) } },
              2,
              "twice" },
        };

        for (size_t i = 0; i < SKR_ARRAY_LEN(bad); i++) {
            x = make_cert("SEV-VCEK", bad[i].ext, bad[i].n);
            memset(&e, 0x5a, sizeof(e));
            assert_int_equal(skr_vcek_ext_decode(x, &e), SKR_E_MALFORMED);
            assert_msg_contains(bad[i].msg);
            assert_int_equal(((uint8_t *)&e)[0], 0x5a);
            X509_free(x);
        }
    }
}

static void
test_vcek_ext_int(void **state)
{
    static const struct {
        uint8_t b[8];
        size_t n;
        skr_err want;
        uint8_t v;
    } cases[] = {
        { { 0x02, 0x01, 0x00 }, 3, SKR_OK, 0 },
        { { 0x02, 0x01, 0x7f }, 3, SKR_OK, 127 },
        { { 0x02, 0x01, 0x44 }, 3, SKR_OK, 0x44 },
        { { 0x02, 0x02, 0x00, 0x80 }, 4, SKR_OK, 128 },
        { { 0x02, 0x02, 0x00, 0xdb }, 4, SKR_OK, 219 },
        { { 0x02, 0x02, 0x00, 0xff }, 4, SKR_OK, 255 },
        { { 0x02, 0x01, 0x80 }, 3, SKR_E_MALFORMED, 0 },       /* negative */
        { { 0x02, 0x01, 0xff }, 3, SKR_E_MALFORMED, 0 },       /* -1 */
        { { 0x02, 0x02, 0x00, 0x7f }, 4, SKR_E_MALFORMED, 0 }, /* non-minimal */
        { { 0x02, 0x02, 0x00, 0x00 }, 4, SKR_E_MALFORMED, 0 }, /* non-minimal */
        { { 0x02, 0x02, 0x01, 0x00 }, 4, SKR_E_MALFORMED, 0 }, /* 256 */
        { { 0x02, 0x02, 0xff, 0x80 }, 4, SKR_E_MALFORMED, 0 }, /* -128, padded */
        { { 0x03, 0x01, 0x00 }, 3, SKR_E_MALFORMED, 0 },       /* BIT STRING */
        { { 0x04, 0x01, 0x05 }, 3, SKR_E_MALFORMED, 0 },       /* OCTET STRING */
        { { 0x02, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01 }, 7, SKR_E_MALFORMED, 0 },
        { { 0x02, 0x00 }, 2, SKR_E_MALFORMED, 0 },             /* empty INTEGER */
        { { 0x02, 0x81, 0x01, 0x05 }, 4, SKR_E_MALFORMED, 0 }, /* long form */
        { { 0x02, 0x01, 0x05, 0x00 }, 4, SKR_E_MALFORMED, 0 }, /* trailing byte */
        { { 0x02, 0x01 }, 2, SKR_E_TRUNCATED, 0 },
        { { 0x02, 0x02, 0x00 }, 3, SKR_E_TRUNCATED, 0 },
        { { 0x02 }, 1, SKR_E_TRUNCATED, 0 },
        { { 0 }, 0, SKR_E_TRUNCATED, 0 },
    };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(cases); i++) {
        uint8_t v = 0xee;
        skr_err got = skr_vcek_ext_int(skr_span_make(cases[i].b, cases[i].n), &v);

        if (got != cases[i].want) {
            fail_msg("case %zu: got %s want %s", i, skr_err_name(got), skr_err_name(cases[i].want));
        }
        assert_int_equal(v, cases[i].want == SKR_OK ? cases[i].v : 0xee);
    }
}

static void
test_vcek_ext_ia5(void **state)
{
    uint8_t long_str[3 + 130];
    char out[200];
    char small[6];

    (void)state;
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x05Turin", 7), out, sizeof(out)), SKR_OK);
    assert_string_equal(out, "Turin");
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x00", 2), out, sizeof(out)), SKR_OK);
    assert_string_equal(out, "");
    /* exactly fits: 5 chars + NUL in 6 */
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x05Turin", 7), small, sizeof(small)),
                     SKR_OK);
    assert_string_equal(small, "Turin");
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x06Turin!", 8), small, sizeof(small)),
                     SKR_E_MALFORMED);
    /* long form length */
    long_str[0] = 0x16;
    long_str[1] = 0x81;
    long_str[2] = 130;
    memset(long_str + 3, 'a', 130);
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make(long_str, sizeof(long_str)), out, sizeof(out)),
                     SKR_OK);
    assert_int_equal(strlen(out), 130);
    /* negatives */
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x0c\x05Turin", 7), out, sizeof(out)),
                     SKR_E_MALFORMED); /* UTF8String */
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x06Turin", 7), out, sizeof(out)),
                     SKR_E_TRUNCATED);
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x04Turin", 7), out, sizeof(out)),
                     SKR_E_MALFORMED);
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16", 1), out, sizeof(out)), SKR_E_TRUNCATED);
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x81\x05Turin", 8), out, sizeof(out)),
                     SKR_E_MALFORMED); /* non-minimal long form */
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x82\x00\x05Turin", 9), out, sizeof(out)),
                     SKR_E_MALFORMED);
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x03T\x00n", 5), out, sizeof(out)),
                     SKR_E_MALFORMED); /* embedded NUL */
    assert_int_equal(skr_vcek_ext_ia5(skr_span_make("\x16\x03T\nn", 5), out, sizeof(out)),
                     SKR_E_MALFORMED);
}

/* ---- KDS URLs ------------------------------------------------------------------------ */

static void
test_kds_urls(void **state)
{
    size_t n = 0;
    uint8_t *report = t_read_data("scc/test_data__snp_report.bin", &n);
    struct skr_buf url;
    const char *s = NULL;
    uint8_t chip[64];
    struct skr_snp_tcb tcb = { .fmc = 1, .bootloader = 2, .tee = 3, .snp = 4, .microcode = 219 };

    (void)state;
    skr_buf_init(&url, 4096);
    assert_int_equal(n, SKR_SNP_REPORT_LEN);
    assert_int_equal(skr_kds_vcek_url(SKR_SNP_PRODUCT_MILAN, report + 0x1A0,
                                      skr_get_u64le(report + 0x180), &url),
                     SKR_OK);
    assert_int_equal(skr_buf_cstr(&url, &s), SKR_OK);
    assert_string_equal(s, "https://kdsintf.amd.com/vcek/v1/Milan/"
                           "b12164b45a2a27426e04ab52c5781d404fe2eab35ef5c4f714ce0fc23d2fb3f3"
                           "e65631710244a4edfad191616be3366e48a6352b35128d748458bc9c282d0f5a"
                           "?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115");

    /* Genoa: same shape, decimal without padding */
    skr_buf_reset(&url);
    memset(chip, 0xab, sizeof(chip));
    assert_int_equal(skr_kds_vcek_url(SKR_SNP_PRODUCT_GENOA, chip,
                                      skr_snp_tcb_encode(&tcb, SKR_SNP_PRODUCT_GENOA), &url),
                     SKR_OK);
    assert_int_equal(skr_buf_cstr(&url, &s), SKR_OK);
    assert_non_null(strstr(s, "https://kdsintf.amd.com/vcek/v1/Genoa/abababab"));
    assert_non_null(strstr(s, "abab?blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=219"));
    assert_int_equal(strlen(s), strlen("https://kdsintf.amd.com/vcek/v1/Genoa/") + 128 +
                                    strlen("?blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=219"));

    /* Turin: 8-byte hwid, fmcSPL first, Turin TCB layout */
    skr_buf_reset(&url);
    memset(chip, 0, sizeof(chip));
    memcpy(chip, "\x1e\x55\x0a\x8e\xe5\xcf\x9f\x4d", 8);
    assert_int_equal(skr_kds_vcek_url(SKR_SNP_PRODUCT_TURIN, chip, 0xdb00000004030201ull, &url),
                     SKR_OK);
    assert_int_equal(skr_buf_cstr(&url, &s), SKR_OK);
    assert_string_equal(s, "https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d"
                           "?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=219");

    skr_buf_reset(&url);
    assert_int_equal(skr_kds_chain_url(SKR_SNP_PRODUCT_MILAN, false, &url), SKR_OK);
    assert_int_equal(skr_buf_cstr(&url, &s), SKR_OK);
    assert_string_equal(s, "https://kdsintf.amd.com/vcek/v1/Milan/cert_chain");
    skr_buf_reset(&url);
    assert_int_equal(skr_kds_chain_url(SKR_SNP_PRODUCT_GENOA, true, &url), SKR_OK);
    assert_int_equal(skr_buf_cstr(&url, &s), SKR_OK);
    assert_string_equal(s, "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain");
    skr_buf_reset(&url);
    assert_int_equal(skr_kds_crl_url(SKR_SNP_PRODUCT_TURIN, false, &url), SKR_OK);
    assert_int_equal(skr_buf_cstr(&url, &s), SKR_OK);
    assert_string_equal(s, "https://kdsintf.amd.com/vcek/v1/Turin/crl");
    skr_buf_reset(&url);
    assert_int_equal(skr_kds_crl_url(SKR_SNP_PRODUCT_MILAN, true, &url), SKR_OK);
    assert_int_equal(skr_buf_cstr(&url, &s), SKR_OK);
    assert_string_equal(s, "https://kdsintf.amd.com/vlek/v1/Milan/crl");

    /* unknown product */
    skr_buf_reset(&url);
    assert_int_equal(skr_kds_vcek_url(SKR_SNP_PRODUCT_UNKNOWN, chip, 0, &url), SKR_E_INVALID_ARG);
    assert_msg_contains("product unknown: pass --product");
    assert_int_equal(skr_kds_chain_url(SKR_SNP_PRODUCT_UNKNOWN, false, &url), SKR_E_INVALID_ARG);
    assert_int_equal(skr_kds_crl_url((enum skr_snp_product)42, true, &url), SKR_E_INVALID_ARG);
    assert_int_equal(url.len, 0);
    skr_buf_done(&url);
    free(report);
}

/* ---- bundles ------------------------------------------------------------------------- */

static void
load_ok(const char *rel, struct skr_cert_set *s)
{
    size_t n = 0;
    uint8_t *b = t_read_data(rel, &n);

    if (skr_cert_set_load(skr_span_make(b, n), s) != SKR_OK) {
        fail_msg("%s: %s", rel, skr_err_detail());
    }
    free(b);
}

static void
test_cert_set_formats(void **state)
{
    X509 *scc_vcek;
    STACK_OF(X509) *scc = load_pem("scc/test_data__uvm_host_amd_certificate.pem");
    struct skr_cert_set s;
    const char *const thim_forms[] = {
        "scc/test_data__uvm_host_amd_certificate.json",
        "scc/security-context-test/host-amd-cert-base64",
    };

    (void)state;
    assert_int_equal(sk_X509_num(scc), 3);
    scc_vcek = sk_X509_value(scc, 0);

    /* PEM bundle VCEK, ASK, ARK */
    load_ok("scc/test_data__uvm_host_amd_certificate.pem", &s);
    assert_int_equal(X509_cmp(s.vcek, scc_vcek), 0);
    assert_cn(s.vcek, "SEV-VCEK");
    assert_cn(s.ask, "SEV-Milan");
    assert_cn(s.ark, "ARK-Milan");
    assert_false(s.has_tcbm);
    skr_cert_set_done(&s);
    assert_null(s.vcek);
    assert_null(s.ark);

    /* THIM JSON (the same VCEK as the PEM) and the security-context base64 form (another chip):
     * a VCEK signed by the ASK, with tcbm */
    for (size_t i = 0; i < SKR_ARRAY_LEN(thim_forms); i++) {
        load_ok(thim_forms[i], &s);
        if (i == 0) {
            assert_int_equal(X509_cmp(s.vcek, scc_vcek), 0);
        } else {
            assert_int_not_equal(X509_cmp(s.vcek, scc_vcek), 0);
        }
        assert_cn(s.vcek, "SEV-VCEK");
        assert_int_equal(X509_verify(s.vcek, X509_get0_pubkey(s.ask)), 1);
        assert_cn(s.ask, "SEV-Milan");
        assert_cn(s.ark, "ARK-Milan");
        assert_true(s.has_tcbm);
        assert_int_equal(s.tcbm, 0x7308000000000003ull);
        skr_cert_set_done(&s);
    }

    /* single DER VCEK */
    load_ok("virtee/vcek_milan.der", &s);
    assert_cn(s.vcek, "SEV-VCEK");
    assert_null(s.ask);
    assert_null(s.ark);
    skr_cert_set_done(&s);
    load_ok("virtee/vcek_turin.der", &s);
    assert_non_null(s.vcek);
    skr_cert_set_done(&s);

    /* PEM bundle in another order, with leading whitespace and text around it */
    {
        struct skr_buf b;

        skr_buf_init(&b, 1u << 20);
        assert_int_equal(skr_buf_append_str(&b, " \n\t\r\n"), SKR_OK);
        assert_int_equal(skr_pem_write_cert(sk_X509_value(scc, 2), &b), SKR_OK);
        assert_int_equal(skr_buf_append_str(&b, "some comment\n"), SKR_OK);
        assert_int_equal(skr_pem_write_cert(sk_X509_value(scc, 0), &b), SKR_OK);
        assert_int_equal(skr_cert_set_load(skr_buf_span(&b), &s), SKR_OK);
        assert_int_equal(X509_cmp(s.vcek, scc_vcek), 0);
        assert_null(s.ask);
        assert_cn(s.ark, "ARK-Milan");
        skr_cert_set_done(&s);
        skr_buf_done(&b);
    }
    skr_x509_stack_free(scc);
}

static void
expect_load_fail(struct skr_span in, skr_err want, const char *msg)
{
    struct skr_cert_set s;

    memset(&s, 0x5a, sizeof(s));
    if (skr_cert_set_load(in, &s) != want) {
        fail_msg("expected %s (%s), got: %s", skr_err_name(want), msg, skr_err_detail());
    }
    assert_msg_contains(msg);
    assert_int_equal(((uint8_t *)&s)[0], 0x5a);
}

static void
test_cert_set_negative(void **state)
{
    size_t n = 0;
    uint8_t *b;
    struct skr_buf buf;
    X509 *odd;

    (void)state;
    skr_buf_init(&buf, 1u << 20);

    /* a chain without a VCEK, in each form that can carry one */
    b = t_read_data("gsg/trust/ask_ark_milan.pem", &n);
    expect_load_fail(skr_span_make(b, n), SKR_E_MALFORMED,
                     "no VCEK/VLEK certificate in PEM bundle");
    free(b);
    /* ASVK (SEV-VLEK-Milan) is recognised as the ASK role: still "no VCEK" */
    b = t_read_data("gsg/milanvlek.testcer", &n);
    expect_load_fail(skr_span_make(b, n), SKR_E_MALFORMED,
                     "no VCEK/VLEK certificate in PEM bundle");
    free(b);
    /* a single DER ARK */
    {
        STACK_OF(X509) *sk = load_pem("gsg/trust/ask_ark_turin_vcek.pem");
        uint8_t *der = NULL;
        size_t der_len = cert_der(sk_X509_value(sk, 1), &der);

        expect_load_fail(skr_span_make(der, der_len), SKR_E_MALFORMED,
                         "no VCEK/VLEK certificate in DER certificate");
        /* truncated DER is not recognised as anything */
        expect_load_fail(skr_span_make(der, der_len - 1), SKR_E_MALFORMED, "unrecognised");
        OPENSSL_free(der);
        skr_x509_stack_free(sk);
    }

    /* duplicate role */
    b = t_read_data("scc/test_data__uvm_host_amd_certificate.pem", &n);
    assert_int_equal(skr_buf_append(&buf, b, n), SKR_OK);
    assert_int_equal(skr_buf_append(&buf, b, n), SKR_OK);
    expect_load_fail(skr_buf_span(&buf), SKR_E_MALFORMED, "more than one VCEK/VLEK");
    /* more than SKR_MAX_CERT_CHAIN certificates */
    assert_int_equal(skr_buf_append(&buf, b, n), SKR_OK);
    expect_load_fail(skr_buf_span(&buf), SKR_E_TOO_LARGE, "more than");
    /* damaged base64 inside a PEM block */
    skr_buf_reset(&buf);
    assert_int_equal(skr_buf_append(&buf, b, n), SKR_OK);
    buf.ptr[100] = '*';
    expect_load_fail(skr_buf_span(&buf), SKR_E_MALFORMED, "PEM");
    /* a PEM header without any certificate */
    expect_load_fail(skr_span_str("-----BEGIN nothing"), SKR_E_MALFORMED, "no certificate");
    free(b);

    /* a certificate with an unknown CN names it */
    odd = make_cert("Example Corp Root", NULL, 0);
    skr_buf_reset(&buf);
    assert_int_equal(skr_pem_write_cert(odd, &buf), SKR_OK);
    expect_load_fail(skr_buf_span(&buf), SKR_E_MALFORMED, "'Example Corp Root'");
    X509_free(odd);
    odd = make_cert("ARK-Rome", NULL, 0);
    skr_buf_reset(&buf);
    assert_int_equal(skr_pem_write_cert(odd, &buf), SKR_OK);
    expect_load_fail(skr_buf_span(&buf), SKR_E_MALFORMED, "'ARK-Rome'");
    X509_free(odd);

    /* THIM with a damaged certificate / wrong field */
    expect_load_fail(skr_span_str("{\"vcekCert\":\"x\",\"certificateChain\":\"c\",\"tcbm\":\"1\"}"),
                     SKR_E_MALFORMED, "THIM vcekCert");
    expect_load_fail(skr_span_str("{\"vcekCert\":\"x\",\"certificateChain\":\"c\"}"),
                     SKR_E_MALFORMED, "tcbm");

    /* junk, empty, whitespace only, base64 of junk */
    expect_load_fail(skr_span_str("hello world"), SKR_E_MALFORMED, "unrecognised");
    expect_load_fail(skr_span_str("aGVsbG8="), SKR_E_MALFORMED, "unrecognised");
    expect_load_fail(skr_span_make("", 0), SKR_E_MALFORMED, "empty");
    expect_load_fail(skr_span_str(" \n\n"), SKR_E_MALFORMED, "empty");
    expect_load_fail(skr_span_make("\x30\x82\x01", 3), SKR_E_MALFORMED, "unrecognised");

    /* a table whose VCEK entry is not DER */
    {
        uint8_t t[48 + 4] = { 0 };

        put_entry(t, guid_vcek, 48, 4);
        memcpy(t + 48, "\x30\x02\x05\x00", 4);
        expect_load_fail(skr_span_make(t, sizeof(t)), SKR_E_MALFORMED,
                         "certificate table entry 0 (vcek)");
        t[16] = 200; /* offset outside */
        expect_load_fail(skr_span_make(t, sizeof(t)), SKR_E_MALFORMED, "outside");
    }
    skr_buf_done(&buf);
}

static void
test_pem_helpers(void **state)
{
    STACK_OF(X509) *sk = NULL;
    X509 *vcek = load_der("virtee/vcek_milan.der");
    struct skr_buf b;
    char cn[4];

    (void)state;
    skr_buf_init(&b, 1u << 16);
    assert_int_equal(skr_pem_write_cert(vcek, &b), SKR_OK);
    assert_int_equal(memcmp(b.ptr, "-----BEGIN CERTIFICATE-----\n", 28), 0);
    assert_int_equal(skr_pem_read_certs(skr_buf_span(&b), &sk), SKR_OK);
    assert_int_equal(sk_X509_num(sk), 1);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 0), vcek), 0);
    skr_x509_stack_free(sk);
    sk = NULL;

    assert_int_equal(skr_pem_read_certs(skr_span_str("junk"), &sk), SKR_E_MALFORMED);
    assert_null(sk);
    assert_int_equal(skr_pem_read_certs(skr_span_make("", 0), &sk), SKR_E_MALFORMED);
    assert_null(sk);

    /* skr_x509_cn truncates to cap */
    skr_x509_cn(vcek, cn, sizeof(cn));
    assert_string_equal(cn, "SEV");
    skr_x509_cn(NULL, cn, sizeof(cn));
    assert_string_equal(cn, "");

    skr_buf_done(&b);
    X509_free(vcek);
}

/* ---- built-in AMD roots -------------------------------------------------------------- */

static void
test_amd_roots(void **state)
{
    static const struct {
        enum skr_snp_product p;
        const char *name;
        const char *files[2];
        const char *ark_sha256;
    } products[] = {
        { SKR_SNP_PRODUCT_MILAN,
          "Milan",
          { "gsg/trust/ask_ark_milan.pem", "gsg/trust/ask_ark_milan_vlek.pem" },
          "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd" },
        { SKR_SNP_PRODUCT_GENOA,
          "Genoa",
          { "gsg/trust/ask_ark_genoa.pem", "gsg/trust/ask_ark_genoa_vlek.pem" },
          "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1" },
        { SKR_SNP_PRODUCT_TURIN,
          "Turin",
          { "gsg/trust/ask_ark_turin_vcek.pem", "gsg/trust/ask_ark_turin_vlek.pem" },
          "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a" },
    };

    (void)state;
    for (size_t i = 0; i < SKR_ARRAY_LEN(products); i++) {
        for (size_t vlek = 0; vlek < 2; vlek++) {
            STACK_OF(X509) *file = load_pem(products[i].files[vlek]);
            X509 *ask = NULL;
            X509 *ark = NULL;
            uint8_t *der = NULL;
            size_t der_len;
            uint8_t md[32];
            char hex[65];
            char want_cn[32];
            enum skr_snp_product p = SKR_SNP_PRODUCT_UNKNOWN;

            assert_int_equal(skr_amd_roots_get(products[i].p, vlek != 0, &ask, &ark), SKR_OK);
            /* identical to the KDS cert_chain file: ASK/ASVK then ARK */
            assert_int_equal(sk_X509_num(file), 2);
            assert_int_equal(X509_cmp(ask, sk_X509_value(file, 0)), 0);
            assert_int_equal(X509_cmp(ark, sk_X509_value(file, 1)), 0);
            (void)snprintf(want_cn, sizeof(want_cn), "%s%s", vlek ? "SEV-VLEK-" : "SEV-",
                           products[i].name);
            assert_cn(ask, want_cn);
            (void)snprintf(want_cn, sizeof(want_cn), "ARK-%s", products[i].name);
            assert_cn(ark, want_cn);
            /* the pin */
            der_len = cert_der(ark, &der);
            assert_non_null(SHA256(der, der_len, md));
            skr_hex_fmt(md, sizeof(md), hex);
            assert_string_equal(hex, products[i].ark_sha256);
            OPENSSL_free(der);
            /* the ARK signed the ASK, and itself */
            assert_int_equal(X509_verify(ask, X509_get0_pubkey(ark)), 1);
            assert_int_equal(X509_verify(ark, X509_get0_pubkey(ark)), 1);
            /* is_ark: the ARK (also the copy from the file) yes, the ASK no */
            assert_true(skr_amd_roots_is_ark(ark, &p));
            assert_int_equal(p, products[i].p);
            p = SKR_SNP_PRODUCT_UNKNOWN;
            assert_true(skr_amd_roots_is_ark(sk_X509_value(file, 1), &p));
            assert_int_equal(p, products[i].p);
            assert_true(skr_amd_roots_is_ark(ark, NULL));
            assert_false(skr_amd_roots_is_ark(ask, &p));
            assert_false(skr_amd_roots_is_ark(sk_X509_value(file, 0), NULL));
            /* new references: freeing ours leaves the built-ins intact */
            X509_free(ask);
            X509_free(ark);
            skr_x509_stack_free(file);
        }
    }

    /* VCEK and VLEK chains share the ARK */
    {
        X509 *a1 = NULL;
        X509 *r1 = NULL;
        X509 *a2 = NULL;
        X509 *r2 = NULL;

        assert_int_equal(skr_amd_roots_get(SKR_SNP_PRODUCT_GENOA, false, &a1, &r1), SKR_OK);
        assert_int_equal(skr_amd_roots_get(SKR_SNP_PRODUCT_GENOA, true, &a2, &r2), SKR_OK);
        assert_int_equal(X509_cmp(r1, r2), 0);
        assert_int_not_equal(X509_cmp(a1, a2), 0);
        X509_free(a1);
        X509_free(r1);
        X509_free(a2);
        X509_free(r2);
    }

    /* a VCEK and a self-made certificate are not ARKs; neither is a Milan ARK lookalike */
    {
        X509 *vcek = load_der("virtee/vcek_milan.der");
        X509 *fake = make_cert("ARK-Milan", NULL, 0);
        X509 *ask = NULL;
        X509 *ark = NULL;

        assert_false(skr_amd_roots_is_ark(vcek, NULL));
        assert_false(skr_amd_roots_is_ark(fake, NULL));
        assert_false(skr_amd_roots_is_ark(NULL, NULL));
        assert_int_equal(skr_amd_roots_get(SKR_SNP_PRODUCT_UNKNOWN, false, &ask, &ark),
                         SKR_E_INVALID_ARG);
        assert_null(ask);
        assert_null(ark);
        X509_free(fake);
        X509_free(vcek);
    }
}

int main(void);

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thim_json),
        cmocka_unit_test(test_thim_b64),
        cmocka_unit_test(test_thim_negative),
        cmocka_unit_test(test_cert_table_round_trip),
        cmocka_unit_test(test_cert_table_negative),
        cmocka_unit_test(test_cert_kinds),
        cmocka_unit_test(test_vcek_ext_gsg),
        cmocka_unit_test(test_vcek_ext_virtee_milan),
        cmocka_unit_test(test_vcek_ext_virtee_turin),
        cmocka_unit_test(test_vcek_ext_synthetic),
        cmocka_unit_test(test_vcek_ext_int),
        cmocka_unit_test(test_vcek_ext_ia5),
        cmocka_unit_test(test_kds_urls),
        cmocka_unit_test(test_cert_set_formats),
        cmocka_unit_test(test_cert_set_negative),
        cmocka_unit_test(test_pem_helpers),
        cmocka_unit_test(test_amd_roots),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
