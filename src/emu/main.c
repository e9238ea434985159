/*
 * skr-emu - local emulators for testing skr without Azure or SEV-SNP hardware.
 *
 *   skr-emu init DIR [options]   create a software SEV-SNP platform in DIR/snp (snp_emu.h)
 *   skr-emu serve ...            IMDS, MAA and Key Vault emulators (issue #3)
 *
 * Everything it creates is marked as emulated; skr only uses it when told to by name
 * (--snp-device emulated:DIR). Exit codes: 0 ok, 2 usage or input error, 3 failure.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"
#include "hex.h"
#include "snp_emu.h"
#include "snp_report.h"

#define EXIT_OK    0
#define EXIT_USAGE 2
#define EXIT_FAIL  3

#define PATH_CAP 4096u

static const char usage_text[] =
    "usage: skr-emu init DIR [options]\n"
    "       skr-emu serve\n"
    "       skr-emu --help\n"
    "\n"
    "init creates an emulated SEV-SNP platform in DIR/snp: an emulated AMD ARK/ASK (RSA-4096,\n"
    "RSASSA-PSS), a VCEK (EC P-384) with the AMD extensions, and the launch state its reports\n"
    "carry. Use it with 'skr report fetch --device emulated:DIR'. It is never used implicitly.\n"
    "\n"
    "init options:\n"
    "  --product Milan|Genoa|Turin   processor generation (default Milan)\n"
    "  --report-version N            ATTESTATION_REPORT version 2..5 (default 3)\n"
    "  --policy-hex HEX              guest POLICY (default 0x3001f)\n"
    "  --host-data HEX               HOST_DATA, 32 bytes (default zero)\n"
    "  --measurement HEX             MEASUREMENT, 48 bytes (default random)\n"
    "  --tcb HEX16                   TCB in the THIM tcbm form (default per product)\n"
    "  --chip-id HEX                 CHIP_ID, 64 bytes (Turin: 8; default random)\n"
    "  --force                       replace an existing platform\n"
    "  -h, --help                    this text\n";

enum opt_id {
    OPT_PRODUCT = 256,
    OPT_REPORT_VERSION,
    OPT_POLICY,
    OPT_HOST_DATA,
    OPT_MEASUREMENT,
    OPT_TCB,
    OPT_CHIP_ID,
    OPT_FORCE,
};

struct init_opts {
    const char *dir;
    struct skr_snp_emu_params params;
    bool force;
};

static int usage_error(const char *fmt, ...) SKR_PRINTF(1, 2);

static int
usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "skr-emu: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'skr-emu --help'.\n");
    return EXIT_USAGE;
}

static int
report_err(skr_err e, const char *what)
{
    fprintf(stderr, "skr-emu: %s: %s: %s\n", what, skr_err_str(e), skr_err_msg());
    return EXIT_FAIL;
}

/* Exactly n bytes of hex. */
static bool
parse_hex(const char *s, uint8_t *out, size_t n)
{
    return strlen(s) == 2 * n && skr_hex_decode_fixed(skr_span_str(s), out, n) == SKR_OK;
}

static bool
parse_policy(const char *s, uint64_t *ret)
{
    struct skr_span sp = skr_span_str(s);
    char buf[24];

    if (sp.len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        return skr_parse_u64(sp, true, 1, UINT64_MAX, ret) == SKR_OK;
    }
    if (sp.len == 0 || sp.len > 16) {
        return false;
    }
    (void)snprintf(buf, sizeof(buf), "0x%s", s);
    return skr_parse_u64(skr_span_str(buf), true, 1, UINT64_MAX, ret) == SKR_OK;
}

/* The THIM tcbm form: 16 hex digits, most significant byte (microcode) first. */
static bool
parse_tcbm(const char *s, uint64_t *ret)
{
    uint8_t b[8];
    uint64_t v = 0;

    if (!parse_hex(s, b, sizeof(b))) {
        return false;
    }
    for (size_t i = 0; i < sizeof(b); i++) {
        v = v << 8 | b[i];
    }
    *ret = v;
    return v != 0;
}

static int
parse_init_opt(int c, const char *arg, struct init_opts *o)
{
    struct skr_snp_emu_params *p = &o->params;
    uint64_t v;

    switch (c) {
    case OPT_PRODUCT:
        if (skr_snp_product_parse(arg, &p->product) != SKR_OK) {
            return usage_error("--product: \"%s\" is not Milan, Genoa or Turin", arg);
        }
        return EXIT_OK;
    case OPT_REPORT_VERSION:
        if (skr_parse_u64(skr_span_str(arg), false, 2, 5, &v) != SKR_OK) {
            return usage_error("--report-version: \"%s\" is not 2..5", arg);
        }
        p->report_version = (uint32_t)v;
        return EXIT_OK;
    case OPT_POLICY:
        if (!parse_policy(arg, &p->policy)) {
            return usage_error("--policy-hex: \"%s\" is not a non-zero 64-bit hex number", arg);
        }
        return EXIT_OK;
    case OPT_HOST_DATA:
        return parse_hex(arg, p->host_data, sizeof(p->host_data))
                   ? EXIT_OK
                   : usage_error("--host-data: \"%s\" is not 32 bytes of hex", arg);
    case OPT_MEASUREMENT:
        return parse_hex(arg, p->measurement, sizeof(p->measurement))
                   ? EXIT_OK
                   : usage_error("--measurement: \"%s\" is not 48 bytes of hex", arg);
    case OPT_TCB:
        return parse_tcbm(arg, &p->tcb)
                   ? EXIT_OK
                   : usage_error("--tcb: \"%s\" is not 16 hex digits (THIM tcbm form)", arg);
    case OPT_CHIP_ID:
        memset(p->chip_id, 0, sizeof(p->chip_id));
        if (parse_hex(arg, p->chip_id, 8) || parse_hex(arg, p->chip_id, sizeof(p->chip_id))) {
            return EXIT_OK;
        }
        return usage_error("--chip-id: \"%s\" is not 64 (or, for Turin, 8) bytes of hex", arg);
    case OPT_FORCE:
        o->force = true;
        return EXIT_OK;
    default:
        return usage_error("%s", "unknown option");
    }
}

static int
parse_init(int argc, char **argv, struct init_opts *o)
{
    static const struct option longopts[] = {
        { "product", required_argument, NULL, OPT_PRODUCT },
        { "report-version", required_argument, NULL, OPT_REPORT_VERSION },
        { "policy-hex", required_argument, NULL, OPT_POLICY },
        { "host-data", required_argument, NULL, OPT_HOST_DATA },
        { "measurement", required_argument, NULL, OPT_MEASUREMENT },
        { "tcb", required_argument, NULL, OPT_TCB },
        { "chip-id", required_argument, NULL, OPT_CHIP_ID },
        { "force", no_argument, NULL, OPT_FORCE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int rc;

        if (c == 'h') {
            fputs(usage_text, stdout);
            return -1;
        }
        if (c == '?') {
            return EXIT_USAGE;
        }
        rc = parse_init_opt(c, optarg, o);
        if (rc != EXIT_OK) {
            return rc;
        }
    }
    if (optind != argc - 1) {
        return usage_error("%s", "init takes exactly one directory");
    }
    o->dir = argv[optind];
    if (o->params.product != SKR_SNP_PRODUCT_TURIN &&
        skr_span_is_zero(skr_span_make(o->params.chip_id + 8, 56)) &&
        !skr_span_is_zero(skr_span_make(o->params.chip_id, 8))) {
        return usage_error("%s", "--chip-id: an 8-byte chip id is for --product Turin only");
    }
    return EXIT_OK;
}

/* mkdir -p */
static skr_err
make_dirs(const char *dir)
{
    char path[PATH_CAP];
    size_t len = strlen(dir);

    ENSURE(len > 0 && len < sizeof(path), SKR_E_INVALID_ARG, "directory name too long");
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        struct stat st;

        if (path[i] != '/' && path[i] != '\0') {
            continue;
        }
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 &&
            !(errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
            FAILF(SKR_E_IO, "cannot create directory %s: %s", path, strerror(errno));
        }
        path[i] = i < len ? '/' : '\0';
    }
    return SKR_OK;
}

static void
print_platform(const char *snp_dir, struct skr_snp_emu *e)
{
    const struct skr_snp_emu_params *p = skr_snp_emu_params(e);
    char tcbm[17];
    char chip[2 * 64 + 1];
    char meas[2 * 48 + 1];
    char host[2 * 32 + 1];

    skr_snp_tcb_tcbm(p->tcb, tcbm);
    skr_hex_fmt(p->chip_id, p->product == SKR_SNP_PRODUCT_TURIN ? 8 : 64, chip);
    skr_hex_fmt(p->measurement, sizeof(p->measurement), meas);
    skr_hex_fmt(p->host_data, sizeof(p->host_data), host);
    printf("created an EMULATED SEV-SNP platform in %s\n", snp_dir);
    printf("  files:          platform.json ark.pem ask.pem vcek.pem (keys: *.key, mode 0600)\n");
    printf("  product:        %s\n", skr_snp_product_name(p->product));
    printf("  report version: %u\n", p->report_version);
    printf("  policy:         0x%llx\n", (unsigned long long)p->policy);
    printf("  tcb (tcbm):     %s\n", tcbm);
    printf("  chip id:        %s\n", chip);
    printf("  measurement:    %s\n", meas);
    printf("  host data:      %s\n", host);
    printf("  vmpl floor:     %u\n", p->vmpl_floor);
}

static int
cmd_init(int argc, char **argv)
{
    struct init_opts o = { 0 };
    char snp_dir[PATH_CAP];
    char json[PATH_CAP + 16];
    struct skr_snp_emu *e = NULL;
    struct stat st;
    skr_err err;
    int rc = parse_init(argc, argv, &o);
    int n;

    if (rc != EXIT_OK) {
        return rc < 0 ? EXIT_OK : rc;
    }
    n = snprintf(snp_dir, sizeof(snp_dir), "%s/snp", o.dir);
    if (n < 0 || (size_t)n >= sizeof(snp_dir)) {
        return usage_error("%s", "directory name too long");
    }
    (void)snprintf(json, sizeof(json), "%s/platform.json", snp_dir);
    if (!o.force && stat(json, &st) == 0) {
        fprintf(stderr, "skr-emu: %s already holds a platform (use --force to replace it)\n",
                snp_dir);
        return EXIT_FAIL;
    }
    err = make_dirs(snp_dir);
    if (err != SKR_OK) {
        return report_err(err, "init");
    }
    err = skr_snp_emu_create(snp_dir, &o.params);
    if (err == SKR_E_INVALID_ARG) {
        fprintf(stderr, "skr-emu: init: %s\n", skr_err_msg());
        return EXIT_USAGE;
    }
    if (err != SKR_OK) {
        return report_err(err, "init");
    }
    err = skr_snp_emu_open(snp_dir, &e);
    if (err != SKR_OK) {
        return report_err(err, "reopening the new platform");
    }
    print_platform(snp_dir, e);
    skr_snp_emu_free(e);
    return EXIT_OK;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "init") == 0) {
        return cmd_init(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "serve") == 0) {
        fprintf(stderr, "skr-emu serve: not implemented yet (the IMDS, MAA and Key Vault "
                        "emulators arrive with issue #3)\n");
        return EXIT_USAGE;
    }
    return usage_error("unknown command \"%s\"", argv[1]);
}
