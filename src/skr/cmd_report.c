/*
 * cmd_report.c - `skr report fetch|show|verify`: the replacements for the reference sidecar's
 * get-snp-report, hex2report and verbose-report tools, plus local verification.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli.h"
#include "hex.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_certs.h"
#include "snp_dev.h"
#include "snp_verify.h"

static const char usage[] =
    "usage: skr report fetch [--device D] [--vmpl N] [--report-data HEX | --runtime-data FILE]\n"
    "                        [--format hex|bin|json|text] [--out FILE] [--certs-out FILE]\n"
    "       skr report show FILE [--format text|json|hex|bin] [--product Milan|Genoa|Turin]\n"
    "       skr report verify FILE --certs FILE [--product P] [--trust-root PEM]...\n"
    "                         [--no-debug] [--vmpl N] [--min-tcb SPEC] [--host-data HEX]\n"
    "                         [--measurement HEX] [--report-data HEX] [--ignore-time]\n"
    "                         [--format text|json]\n"
    "\n"
    "fetch:  D is auto (configfs-tsm, then /dev/sev-guest, then /dev/sev), tsm[:DIR],\n"
    "        sev-guest[:DEV], sev[:DEV] or emulated:DIR (a software platform made by\n"
    "        'skr-emu init'; never used unless named). Default from $SKR_SNP_DEVICE, else auto.\n"
    "        --report-data HEX   up to 64 bytes for REPORT_DATA (zero-padded)\n"
    "        --runtime-data FILE REPORT_DATA[0..31] = SHA-256(FILE), as MAA expects\n"
    "        --certs-out FILE    also write the host's certificates (PEM) when it supplies them\n"
    "show:   FILE is 1184 binary bytes or 2368 hex digits (auto-detected); '-' is stdin.\n"
    "verify: --certs is a PEM bundle, a DER VCEK, THIM JSON, a host-amd-cert-base64 file or a\n"
    "        certificate table; a missing ASK/ARK is taken from the built-in AMD roots.\n"
    "        --trust-root adds a trusted ARK (e.g. an emulated platform's ark.pem).\n"
    "        --min-tcb bl=N,tee=N,snp=N,ucode=N[,fmc=N]  minimum per TCB component.\n"
    "        Exit 0 when every check passes, 1 when one fails (each is named).\n";

static const char *const show_formats[] = { "text", "json", "hex", "bin", NULL };
static const char *const verify_formats[] = { "text", "json", NULL };
static const char *const fetch_formats[] = { "hex", "bin", "json", "text", NULL };

static skr_err
print_report(const struct skr_snp_report *r, const uint8_t *raw, enum skr_snp_product p,
             const char *fmt, const char *out)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    skr_buf_init(&b, SKR_MAX_JSON_BYTES);
    if (strcmp(fmt, "bin") == 0) {
        return cli_write(out, skr_span_make(raw, SKR_SNP_REPORT_LEN));
    }
    if (strcmp(fmt, "hex") == 0) {
        TRY(skr_hex_encode(skr_span_make(raw, SKR_SNP_REPORT_LEN), false, &b));
        TRY(skr_buf_append_byte(&b, '\n'));
    } else if (strcmp(fmt, "json") == 0) {
        _cleanup_(json_decrefp) json_t *j = NULL;

        TRY(skr_snp_report_to_json(r, p, &j));
        TRY(skr_json_dump(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER, &b));
        TRY(skr_buf_append_byte(&b, '\n'));
    } else {
        TRY(skr_snp_report_to_text(r, p, &b));
    }
    return cli_write(out, skr_buf_span(&b));
}

static skr_err
parse_report_data(const char *hex, const char *runtime_file, uint8_t out[64])
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    memset(out, 0, 64);
    if (hex != NULL) {
        skr_buf_init(&b, 64);
        if (skr_hex_decode(skr_span_str(hex), false, &b) != SKR_OK) {
            FAIL(SKR_E_INVALID_ARG, "--report-data: expected up to 128 hex digits (64 bytes)");
        }
        memcpy(out, b.ptr, b.len);
        return SKR_OK;
    }
    if (runtime_file != NULL) {
        unsigned int n = 0;

        TRY(cli_read(runtime_file, &b));
        ENSURE(EVP_Digest(b.ptr, b.len, out, &n, EVP_sha256(), NULL) == 1 && n == 32,
               SKR_E_INTERNAL, "SHA-256 failed");
    }
    return SKR_OK;
}

static skr_err
write_host_certs(struct skr_span table, const char *path)
{
    struct skr_cert_table t;
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };

    TRY(skr_cert_table_parse(table, &t));
    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    for (size_t i = 0; i < t.n; i++) {
        const unsigned char *p = t.entries[i].der.ptr;
        _cleanup_(X509_freep) X509 *x = d2i_X509(NULL, &p, (long)t.entries[i].der.len);

        ENSURE(x != NULL, SKR_E_MALFORMED, "host certificate table holds a bad certificate");
        TRY(skr_pem_write_cert(x, &pem));
    }
    return cli_write(path, skr_buf_span(&pem));
}

static int
report_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        { "device", required_argument, NULL, 'd' },
        { "vmpl", required_argument, NULL, 'v' },
        { "report-data", required_argument, NULL, 'r' },
        { "runtime-data", required_argument, NULL, 'R' },
        { "format", required_argument, NULL, 'f' },
        { "out", required_argument, NULL, 'o' },
        { "certs-out", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *device = secure_getenv("SKR_SNP_DEVICE");
    const char *fmt = "hex", *out = NULL, *certs_out = NULL, *rd_hex = NULL, *rd_file = NULL;
    uint64_t vmpl = 0;
    struct skr_snp_dev_cfg cfg;
    _cleanup_(skr_snp_dev_freep) struct skr_snp_dev *dev = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf certs = { 0 };
    struct skr_snp_report r;
    uint8_t report_data[64];
    skr_err e;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            device = optarg;
            break;
        case 'v':
            if (skr_parse_u64(skr_span_str(optarg), false, 0, 3, &vmpl) != SKR_OK) {
                return cli_usage_error(usage, "--vmpl: expected 0..3");
            }
            break;
        case 'r':
            rd_hex = optarg;
            break;
        case 'R':
            rd_file = optarg;
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'c':
            certs_out = optarg;
            break;
        case 'h':
            (void)fputs(usage, stdout);
            return SKR_EXIT_OK;
        default:
            return cli_usage_error(usage, "bad option");
        }
    }
    if (optind != argc) {
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    }
    if (rd_hex != NULL && rd_file != NULL) {
        return cli_usage_error(usage, "--report-data and --runtime-data exclude each other");
    }
    if (!cli_format_ok(fmt, fetch_formats)) {
        return cli_usage_error(usage, "--format: expected hex, bin, json or text");
    }
    e = parse_report_data(rd_hex, rd_file, report_data);
    if (e != SKR_OK) {
        return cli_fail(e, "report data");
    }
    e = skr_snp_dev_parse_spec(device != NULL ? device : "auto", &cfg);
    if (e != SKR_OK) {
        return cli_fail(e, "--device");
    }
    e = skr_snp_dev_open(&cfg, &dev);
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: %s\n", skr_err_msg());
        return SKR_EXIT_UPSTREAM;
    }
    if (strcmp(skr_snp_dev_name(dev), "emulated") == 0) {
        (void)fprintf(stderr,
                      "skr: WARNING: using the EMULATED SEV-SNP platform in %s: this "
                      "report does not come from hardware\n",
                      cfg.path);
    }
    skr_buf_init(&raw, SKR_SNP_REPORT_LEN);
    skr_buf_init(&certs, SKR_MAX_CERT_TABLE_BYTES);
    e = skr_snp_dev_get_report(dev, report_data, (uint32_t)vmpl, &raw,
                               certs_out != NULL ? &certs : NULL);
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: %s: %s\n", skr_snp_dev_name(dev), skr_err_msg());
        return SKR_EXIT_UPSTREAM;
    }
    e = skr_snp_report_parse(skr_buf_span(&raw), &r);
    if (e != SKR_OK) {
        return cli_fail(SKR_E_DEVICE, "the device returned a report that does not parse");
    }
    if (certs_out != NULL) {
        if (certs.len == 0) {
            (void)fprintf(stderr, "skr: the host supplied no certificates; %s not written\n",
                          certs_out);
        } else if ((e = write_host_certs(skr_buf_span(&certs), certs_out)) != SKR_OK) {
            return cli_fail(e, "host certificates");
        }
    }
    e = print_report(&r, raw.ptr, skr_snp_report_product(&r), fmt, out);
    return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, "output");
}

static int
report_show(int argc, char **argv)
{
    static const struct option opts[] = {
        { "format", required_argument, NULL, 'f' },
        { "product", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *fmt = "text";
    enum skr_snp_product p = SKR_SNP_PRODUCT_UNKNOWN;
    struct skr_snp_report r;
    uint8_t raw[SKR_SNP_REPORT_LEN];
    skr_err e;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = optarg;
            break;
        case 'p':
            if (skr_snp_product_parse(optarg, &p) != SKR_OK) {
                return cli_usage_error(usage, "--product: expected Milan, Genoa or Turin");
            }
            break;
        case 'h':
            (void)fputs(usage, stdout);
            return SKR_EXIT_OK;
        default:
            return cli_usage_error(usage, "bad option");
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(usage, "expected one report FILE");
    }
    if (!cli_format_ok(fmt, show_formats)) {
        return cli_usage_error(usage, "--format: expected text, json, hex or bin");
    }
    e = cli_load_report(argv[optind], &r, raw);
    if (e != SKR_OK) {
        return cli_fail(e, "report");
    }
    if (p == SKR_SNP_PRODUCT_UNKNOWN) {
        p = skr_snp_report_product(&r);
    }
    e = print_report(&r, raw, p, fmt, NULL);
    return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, "output");
}

/* "bl=3,tee=0,snp=8,ucode=115[,fmc=1]" */
static skr_err
parse_min_tcb(const char *spec, struct skr_snp_tcb *ret)
{
    char copy[128];
    char *save = NULL;

    ENSURE(strlen(spec) < sizeof(copy), SKR_E_INVALID_ARG, "--min-tcb: too long");
    memcpy(copy, spec, strlen(spec) + 1);
    memset(ret, 0, sizeof(*ret));
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        uint64_t v;

        ENSURE(eq != NULL, SKR_E_INVALID_ARG, "--min-tcb: expected NAME=VALUE pairs");
        *eq = '\0';
        ENSURE(skr_parse_u64(skr_span_str(eq + 1), false, 0, 255, &v) == SKR_OK, SKR_E_INVALID_ARG,
               "--min-tcb: values are 0..255");
        if (strcmp(tok, "bl") == 0) {
            ret->bootloader = (uint8_t)v;
        } else if (strcmp(tok, "tee") == 0) {
            ret->tee = (uint8_t)v;
        } else if (strcmp(tok, "snp") == 0) {
            ret->snp = (uint8_t)v;
        } else if (strcmp(tok, "ucode") == 0) {
            ret->microcode = (uint8_t)v;
        } else if (strcmp(tok, "fmc") == 0) {
            ret->fmc = (uint8_t)v;
        } else {
            FAILF(SKR_E_INVALID_ARG,
                  "--min-tcb: unknown component '%.16s' (bl, tee, snp, ucode, "
                  "fmc)",
                  tok);
        }
    }
    return SKR_OK;
}

static skr_err
hex_option(const char *name, const char *hex, uint8_t *out, size_t n)
{
    if (skr_hex_decode_fixed(skr_span_str(hex), out, n) != SKR_OK) {
        FAILF(SKR_E_INVALID_ARG, "--%s: expected %zu hex digits", name, 2 * n);
    }
    return SKR_OK;
}

struct verify_args {
    const char *certs;
    const char *fmt;
    struct skr_snp_verify_opts opts;
};

static int
parse_verify_args(int argc, char **argv, struct verify_args *a)
{
    static const struct option opts[] = {
        { "certs", required_argument, NULL, 'c' },
        { "product", required_argument, NULL, 'p' },
        { "trust-root", required_argument, NULL, 't' },
        { "no-debug", no_argument, NULL, 'D' },
        { "vmpl", required_argument, NULL, 'v' },
        { "min-tcb", required_argument, NULL, 'm' },
        { "host-data", required_argument, NULL, 'H' },
        { "measurement", required_argument, NULL, 'M' },
        { "report-data", required_argument, NULL, 'r' },
        { "ignore-time", no_argument, NULL, 'T' },
        { "format", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    skr_err e = SKR_OK;
    uint64_t v;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->certs = optarg;
            break;
        case 'p':
            e = skr_snp_product_parse(optarg, &a->opts.product);
            break;
        case 't':
            e = cli_add_trust_root(optarg, &a->opts.extra_roots);
            break;
        case 'D':
            a->opts.check_no_debug = true;
            break;
        case 'v':
            e = skr_parse_u64(skr_span_str(optarg), false, 0, 3, &v);
            a->opts.check_vmpl = true;
            a->opts.vmpl = (uint32_t)v;
            break;
        case 'm':
            e = parse_min_tcb(optarg, &a->opts.min_tcb);
            a->opts.has_min_tcb = true;
            break;
        case 'H':
            e = hex_option("host-data", optarg, a->opts.host_data, 32);
            a->opts.has_host_data = true;
            break;
        case 'M':
            e = hex_option("measurement", optarg, a->opts.measurement, 48);
            a->opts.has_measurement = true;
            break;
        case 'r':
            e = hex_option("report-data", optarg, a->opts.report_data, 64);
            a->opts.has_report_data = true;
            break;
        case 'T':
            a->opts.ignore_time = true;
            break;
        case 'f':
            a->fmt = optarg;
            break;
        case 'h':
            (void)fputs(usage, stdout);
            return -1;
        default:
            return cli_usage_error(usage, "bad option");
        }
        if (e != SKR_OK) {
            return cli_usage_error(usage, "%s", skr_err_msg());
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(usage, "expected one report FILE");
    }
    if (a->certs == NULL) {
        return cli_usage_error(usage, "no certificates: pass --certs FILE (PEM, DER, THIM JSON, "
                                      "host-amd-cert-base64 or a certificate table)");
    }
    if (!cli_format_ok(a->fmt, verify_formats)) {
        return cli_usage_error(usage, "--format: expected text or json");
    }
    return SKR_EXIT_OK;
}

static int
report_verify(int argc, char **argv)
{
    struct verify_args a = { .fmt = "text" };
    _cleanup_(skr_x509_stack_freep) STACK_OF(X509) *roots = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    struct skr_snp_verify_result res;
    struct skr_cert_set certs = { 0 };
    struct skr_snp_report r;
    uint8_t raw[SKR_SNP_REPORT_LEN];
    skr_err e;
    int rc;

    rc = parse_verify_args(argc, argv, &a);
    roots = a.opts.extra_roots;
    if (rc != SKR_EXIT_OK) {
        return rc < 0 ? SKR_EXIT_OK : rc;
    }
    e = cli_load_report(argv[optind], &r, raw);
    if (e != SKR_OK) {
        return cli_fail(e, "report");
    }
    e = cli_read(a.certs, &file);
    if (e == SKR_OK) {
        e = skr_cert_set_load(skr_buf_span(&file), &certs);
    }
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: certificates %s: %s\n", a.certs, skr_err_msg());
        return SKR_EXIT_USAGE;
    }
    e = skr_snp_verify(&r, skr_span_make(raw, sizeof(raw)), &certs, &a.opts, &res);
    skr_cert_set_done(&certs);
    if (e != SKR_OK && e != SKR_E_VERIFY) {
        return cli_fail(e, "verify");
    }
    return cli_print_verify(&res, a.fmt, e);
}

int
cmd_report(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    optind = 1;
    if (sub == NULL) {
        return cli_usage_error(usage, "expected fetch, show or verify");
    }
    if (strcmp(sub, "fetch") == 0) {
        return report_fetch(argc - 1, argv + 1);
    }
    if (strcmp(sub, "show") == 0) {
        return report_show(argc - 1, argv + 1);
    }
    if (strcmp(sub, "verify") == 0) {
        return report_verify(argc - 1, argv + 1);
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        (void)fputs(usage, stdout);
        return SKR_EXIT_OK;
    }
    return cli_usage_error(usage, "unknown report command '%s'", sub);
}
