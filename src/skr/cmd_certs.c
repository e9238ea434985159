/*
 * cmd_certs.c - `skr certs show|kds-url`: what is in a certificate file, and where AMD's KDS
 * serves the VCEK and chain for a given report.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>

#include "cli.h"
#include "hex.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_certs.h"

static const char usage[] =
    "usage: skr certs show FILE [--format text|json]\n"
    "       skr certs verify FILE [--product P] [--trust-root PEM]... [--ignore-time]\n"
    "                             [--format text|json]\n"
    "       skr certs kds-url REPORT [--product Milan|Genoa|Turin] [--vlek]\n"
    "\n"
    "show:    FILE is a PEM bundle, a DER certificate, THIM JSON, a host-amd-cert-base64 file\n"
    "         or an extended-report certificate table; prints each certificate's role,\n"
    "         subject, validity, SHA-256 fingerprint and the VCEK's AMD extensions.\n"
    "verify:  checks the chain VCEK (or VLEK) -> ASK -> ARK up to a pinned AMD root (or a\n"
    "         --trust-root), without a report. A missing ASK/ARK is taken from the built-in\n"
    "         roots. Exit 0 when every check passes, 1 when one fails.\n"
    "kds-url: prints the AMD KDS URLs of the VCEK matching REPORT's chip id and REPORTED_TCB,\n"
    "         of the certificate chain and of the CRL. The product comes from the report's\n"
    "         CPUID bytes (version 3 and later) or from --product.\n";

static const char *const formats[] = { "text", "json", NULL };

static json_t *
time_json(const ASN1_TIME *t)
{
    struct tm tm;
    char s[32];

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        return json_string("?");
    }
    return json_string(s);
}

static skr_err
ext_json(X509 *cert, json_t *o)
{
    struct skr_vcek_ext e;
    _cleanup_(json_decrefp) json_t *x = json_object();

    ENSURE(x != NULL, SKR_E_NOMEM, "out of memory");
    if (skr_vcek_ext_decode(cert, &e) != SKR_OK) {
        return skr_json_set(o, "amd_extensions_error", json_string(skr_err_msg()));
    }
    if (e.has_struct_version) {
        TRY(skr_json_set(x, "struct_version", json_integer(e.struct_version)));
    }
    TRY(skr_json_set(x, "product_name", json_string(e.product_name)));
    if (e.has_bl) {
        TRY(skr_json_set(x, "bl_spl", json_integer(e.bl)));
    }
    if (e.has_tee) {
        TRY(skr_json_set(x, "tee_spl", json_integer(e.tee)));
    }
    if (e.has_snp) {
        TRY(skr_json_set(x, "snp_spl", json_integer(e.snp)));
    }
    if (e.has_ucode) {
        TRY(skr_json_set(x, "ucode_spl", json_integer(e.ucode)));
    }
    if (e.has_fmc) {
        TRY(skr_json_set(x, "fmc_spl", json_integer(e.fmc)));
    }
    if (e.hwid_len > 0) {
        TRY(skr_json_set_hex(x, "hwid", e.hwid, e.hwid_len));
    }
    if (e.csp_id[0] != '\0') {
        TRY(skr_json_set(x, "csp_id", json_string(e.csp_id)));
    }
    return skr_json_set(o, "amd_extensions", TAKE_PTR(x));
}

static skr_err
cert_json(const char *role, X509 *cert, json_t *arr)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    unsigned char fp[EVP_MAX_MD_SIZE];
    unsigned int fp_len = 0;
    char cn[128];

    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(o, "role", json_string(role)));
    skr_x509_cn(cert, cn, sizeof(cn));
    TRY(skr_json_set(o, "subject_cn", json_string(cn)));
    X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, cn, sizeof(cn));
    TRY(skr_json_set(o, "issuer_cn", json_string(cn)));
    TRY(skr_json_set(o, "not_before", time_json(X509_get0_notBefore(cert))));
    TRY(skr_json_set(o, "not_after", time_json(X509_get0_notAfter(cert))));
    TRY(skr_json_set(o, "key", json_string(EVP_PKEY_get0_type_name(X509_get0_pubkey(cert)))));
    ENSURE(X509_digest(cert, EVP_sha256(), fp, &fp_len) == 1, SKR_E_INTERNAL, "digest failed");
    TRY(skr_json_set_hex(o, "sha256", fp, fp_len));
    if (strcmp(role, "vcek") == 0 || strcmp(role, "vlek") == 0) {
        TRY(ext_json(cert, o));
    }
    ENSURE(json_array_append_new(arr, TAKE_PTR(o)) == 0, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static skr_err
set_json(const struct skr_cert_set *s, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    json_t *arr = json_array();
    struct skr_vcek_ext e;
    bool vlek = skr_vcek_ext_decode(s->vcek, &e) == SKR_OK && e.is_vlek;

    ENSURE(o != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(o, "certificates", arr));
    TRY(cert_json(vlek ? "vlek" : "vcek", s->vcek, arr));
    if (s->ask != NULL) {
        TRY(cert_json(vlek ? "asvk" : "ask", s->ask, arr));
    }
    if (s->ark != NULL) {
        TRY(cert_json("ark", s->ark, arr));
    }
    if (s->has_tcbm) {
        char tcbm[17];

        skr_snp_tcb_tcbm(s->tcbm, tcbm);
        TRY(skr_json_set(o, "tcbm", json_string(tcbm)));
    }
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

static void
print_set_text(json_t *j)
{
    json_t *arr = json_object_get(j, "certificates");
    json_t *c;
    size_t i;

    json_array_foreach(arr, i, c)
    {
        json_t *ext = json_object_get(c, "amd_extensions");
        const char *key;
        json_t *v;

        (void)printf("%-5s %s (issuer %s)\n", json_string_value(json_object_get(c, "role")),
                     json_string_value(json_object_get(c, "subject_cn")),
                     json_string_value(json_object_get(c, "issuer_cn")));
        (void)printf("      valid %s .. %s, %s key\n",
                     json_string_value(json_object_get(c, "not_before")),
                     json_string_value(json_object_get(c, "not_after")),
                     json_string_value(json_object_get(c, "key")));
        (void)printf("      sha256 %s\n", json_string_value(json_object_get(c, "sha256")));
        json_object_foreach(ext, key, v)
        {
            if (json_is_string(v)) {
                (void)printf("      %-15s %s\n", key, json_string_value(v));
            } else {
                (void)printf("      %-15s %lld\n", key, (long long)json_integer_value(v));
            }
        }
    }
    if (json_object_get(j, "tcbm") != NULL) {
        (void)printf("tcbm  %s (THIM)\n", json_string_value(json_object_get(j, "tcbm")));
    }
}

static int
certs_show(int argc, char **argv)
{
    static const struct option opts[] = {
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    struct skr_cert_set set = { 0 };
    json_t *j = NULL;
    const char *fmt = "text";
    skr_err e;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f') {
            fmt = optarg;
        } else if (c == 'h') {
            (void)fputs(usage, stdout);
            return SKR_EXIT_OK;
        } else {
            return cli_usage_error(usage, "bad option");
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(usage, "expected one FILE");
    }
    if (!cli_format_ok(fmt, formats)) {
        return cli_usage_error(usage, "--format: expected text or json");
    }
    e = cli_read(argv[optind], &file);
    if (e == SKR_OK) {
        e = skr_cert_set_load(skr_buf_span(&file), &set);
    }
    if (e != SKR_OK) {
        return cli_fail(e, argv[optind]);
    }
    e = set_json(&set, &j);
    skr_cert_set_done(&set);
    if (e != SKR_OK) {
        json_decref(j);
        return cli_fail(e, "output");
    }
    if (strcmp(fmt, "json") == 0) {
        e = cli_print_json(j);
        return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, "output");
    }
    print_set_text(j);
    json_decref(j);
    return SKR_EXIT_OK;
}

static int
certs_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        { "product", required_argument, NULL, 'p' }, { "trust-root", required_argument, NULL, 't' },
        { "ignore-time", no_argument, NULL, 'T' },   { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },          { 0 },
    };
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *roots = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    struct skr_snp_verify_opts vo = { 0 };
    struct skr_snp_verify_result res;
    struct skr_cert_set set = { 0 };
    const char *fmt = "text";
    skr_err e = SKR_OK;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p') {
            e = skr_snp_product_parse(optarg, &vo.product);
        } else if (c == 't') {
            e = cli_add_trust_root(optarg, &roots);
        } else if (c == 'T') {
            vo.ignore_time = true;
        } else if (c == 'f') {
            fmt = optarg;
        } else if (c == 'h') {
            (void)fputs(usage, stdout);
            return SKR_EXIT_OK;
        } else {
            return cli_usage_error(usage, "bad option");
        }
        if (e != SKR_OK) {
            return cli_usage_error(usage, "%s", skr_err_msg());
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(usage, "expected one FILE");
    }
    if (!cli_format_ok(fmt, formats)) {
        return cli_usage_error(usage, "--format: expected text or json");
    }
    vo.extra_roots = roots;
    e = cli_read(argv[optind], &file);
    if (e == SKR_OK) {
        e = skr_cert_set_load(skr_buf_span(&file), &set);
    }
    if (e != SKR_OK) {
        return cli_fail(e, argv[optind]);
    }
    e = skr_snp_verify_certs(&set, &vo, &res);
    skr_cert_set_done(&set);
    if (e != SKR_OK && e != SKR_E_VERIFY) {
        return cli_fail(e, "verify");
    }
    return cli_print_verify(&res, fmt, e);
}

static int
certs_kds_url(int argc, char **argv)
{
    static const struct option opts[] = {
        { "product", required_argument, NULL, 'p' },
        { "vlek", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    enum skr_snp_product p = SKR_SNP_PRODUCT_UNKNOWN;
    struct skr_snp_report r;
    uint8_t raw[SKR_SNP_REPORT_LEN];
    bool vlek = false;
    const char *s;
    skr_err e;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'p') {
            if (skr_snp_product_parse(optarg, &p) != SKR_OK) {
                return cli_usage_error(usage, "--product: expected Milan, Genoa or Turin");
            }
        } else if (c == 'V') {
            vlek = true;
        } else if (c == 'h') {
            (void)fputs(usage, stdout);
            return SKR_EXIT_OK;
        } else {
            return cli_usage_error(usage, "bad option");
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(usage, "expected one REPORT file");
    }
    e = cli_load_report(argv[optind], &r, raw);
    if (e != SKR_OK) {
        return cli_fail(e, "report");
    }
    if (p == SKR_SNP_PRODUCT_UNKNOWN) {
        p = skr_snp_report_product(&r);
    }
    if (p == SKR_SNP_PRODUCT_UNKNOWN) {
        return cli_usage_error(usage, "report version %u carries no CPUID: pass --product",
                               r.version);
    }
    skr_buf_init(&url, 4096);
    if (!vlek) {
        e = skr_kds_vcek_url(p, r.chip_id, r.reported_tcb, &url);
        if (e == SKR_OK && (e = skr_buf_cstr(&url, &s)) == SKR_OK) {
            (void)printf("vcek       %s\n", s);
        }
        skr_buf_reset(&url);
    }
    if (e == SKR_OK && (e = skr_kds_chain_url(p, vlek, &url)) == SKR_OK &&
        (e = skr_buf_cstr(&url, &s)) == SKR_OK) {
        (void)printf("cert_chain %s\n", s);
        skr_buf_reset(&url);
    }
    if (e == SKR_OK && (e = skr_kds_crl_url(p, vlek, &url)) == SKR_OK &&
        (e = skr_buf_cstr(&url, &s)) == SKR_OK) {
        (void)printf("crl        %s\n", s);
    }
    return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, "kds-url");
}

int
cmd_certs(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    optind = 1;
    if (sub == NULL) {
        return cli_usage_error(usage, "expected show, verify or kds-url");
    }
    if (strcmp(sub, "show") == 0) {
        return certs_show(argc - 1, argv + 1);
    }
    if (strcmp(sub, "verify") == 0) {
        return certs_verify(argc - 1, argv + 1);
    }
    if (strcmp(sub, "kds-url") == 0) {
        return certs_kds_url(argc - 1, argv + 1);
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        (void)fputs(usage, stdout);
        return SKR_EXIT_OK;
    }
    return cli_usage_error(usage, "unknown certs command '%s'", sub);
}
