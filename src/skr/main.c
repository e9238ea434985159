/*
 * main.c - the skr operator CLI: dispatch to subcommands and the helpers they share.
 * Results go to stdout, diagnostics to stderr; exit codes 0 ok, 1 check failed or denied,
 * 2 bad usage or input, 3 device, upstream or system error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_certs.h"

static const char usage[] =
    "usage: skr <command> [options]\n"
    "\n"
    "commands:\n"
    "  report fetch     get an SEV-SNP attestation report from the platform\n"
    "  report show      decode a report (binary or hex) as text or JSON\n"
    "  report verify    verify a report's signature, certificate chain and TCB\n"
    "  certs show       list the certificates in a PEM, DER, THIM or certificate-table file\n"
    "  certs verify     verify a VCEK/VLEK certificate chain up to a pinned AMD root\n"
    "  certs kds-url    print the AMD KDS URLs for a report's VCEK and chain\n"
    "  encrypt          encrypt data with a released key (JWK)\n"
    "  decrypt          decrypt data with a released key (JWK)\n"
    "  policy digest    the HOST_DATA (SHA-256) of a confidential computing security policy\n"
    "  policy build     a release policy JSON from claims and an MAA authority\n"
    "  policy check     evaluate a release policy against a token's claims: allow or deny, why\n"
    "  key create       create a key in the vault with a release policy\n"
    "  key import       import a key (generated, or from a file) with a release policy\n"
    "  key get          show a key and its decoded release policy\n"
    "  key policy       show or replace a key's release policy\n"
    "  token            get an Entra access token (managed or workload identity)\n"
    "  attest           get an MAA token for this platform\n"
    "  release          release a key through the whole flow (the sidecar's /key/release)\n"
    "  diagnose         run the release flow step by step and name the first broken step\n"
    "  version          print the version\n"
    "\n"
    "Run 'skr <command> --help' for the options of a command.\n"
    "Exit codes: 0 ok, 1 check failed, 2 bad usage or input, 3 device or upstream error.\n";

int
cli_exit_code(skr_err e)
{
    switch (e) {
    case SKR_OK:
        return SKR_EXIT_OK;
    case SKR_E_VERIFY:
    case SKR_E_POLICY:
        return SKR_EXIT_DENIED;
    case SKR_E_INVALID_ARG:
    case SKR_E_TRUNCATED:
    case SKR_E_MALFORMED:
    case SKR_E_TOO_LARGE:
    case SKR_E_NOT_FOUND:
    case SKR_E_UNSUPPORTED:
        return SKR_EXIT_USAGE;
    default:
        return SKR_EXIT_UPSTREAM;
    }
}

int
cli_fail(skr_err e, const char *what)
{
    (void)fprintf(stderr, "skr: %s: %s\n", what, skr_err_msg());
    return cli_exit_code(e);
}

int
cli_usage_error(const char *use, const char *fmt, ...)
{
    va_list ap;

    (void)fputs("skr: ", stderr);
    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
    (void)fprintf(stderr, "\n%s", use);
    return SKR_EXIT_USAGE;
}

skr_err
cli_read(const char *path, struct skr_buf *out)
{
    skr_buf_init(out, SKR_MAX_FILE_BYTES);
    return skr_read_file(path, out);
}

skr_err
cli_load_report(const char *path, struct skr_snp_report *r, uint8_t raw[SKR_SNP_REPORT_LEN])
{
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    skr_err e;

    TRY(cli_read(path, &file));
    e = skr_snp_report_load(skr_buf_span(&file), r, raw);
    if (e != SKR_OK) {
        char inner[256];

        (void)snprintf(inner, sizeof(inner), "%s", skr_err_msg());
        FAILF(e, "%s: %s", path, inner);
    }
    return SKR_OK;
}

skr_err
cli_write(const char *path, struct skr_span data)
{
    FILE *f = stdout;

    if (path != NULL && strcmp(path, "-") != 0) {
        return skr_write_file_atomic(path, data, 0644);
    }
    ENSURE(fwrite(data.ptr, 1, data.len, f) == data.len && fflush(f) == 0, SKR_E_IO,
           "cannot write to standard output");
    return SKR_OK;
}

bool
cli_format_ok(const char *fmt, const char *const *allowed)
{
    for (size_t i = 0; allowed[i] != NULL; i++) {
        if (strcmp(fmt, allowed[i]) == 0) {
            return true;
        }
    }
    return false;
}

skr_err
cli_print_json(json_t *v)
{
    _cleanup_(json_decrefp) json_t *owned = v;
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };

    skr_buf_init(&out, SKR_MAX_JSON_BYTES);
    TRY(skr_json_dump(owned, JSON_INDENT(2) | JSON_PRESERVE_ORDER, &out));
    TRY(skr_buf_append_byte(&out, '\n'));
    return cli_write(NULL, skr_buf_span(&out));
}

skr_err
cli_add_trust_root(const char *path, STACK_OF(X509) * *roots)
{
    _cleanup_(skr_buf_donep) struct skr_buf file = { 0 };
    STACK_OF(X509) *certs = NULL;

    TRY(cli_read(path, &file));
    TRY(skr_pem_read_certs(skr_buf_span(&file), &certs));
    if (*roots == NULL) {
        *roots = sk_X509_new_null();
        if (*roots == NULL) {
            skr_x509_stack_free(certs);
            FAIL(SKR_E_NOMEM, "out of memory");
        }
    }
    while (sk_X509_num(certs) > 0) {
        X509 *x = sk_X509_shift(certs);

        if (sk_X509_push(*roots, x) <= 0) {
            X509_free(x);
            skr_x509_stack_free(certs);
            FAIL(SKR_E_NOMEM, "out of memory");
        }
    }
    skr_x509_stack_free(certs);
    return SKR_OK;
}

static void
print_verify_text(const struct skr_snp_verify_result *res)
{
    static const char *const tags[] = { "PASS", "FAIL", "skip" };
    const struct skr_check *bad = skr_snp_verify_first_failure(res);

    for (size_t i = 0; i < res->n; i++) {
        (void)printf("%s  %-22s %s\n", tags[res->checks[i].status], res->checks[i].name,
                     res->checks[i].detail);
    }
    if (bad == NULL) {
        (void)printf("result: verified (%s, %s)\n", skr_snp_product_name(res->product),
                     res->is_vlek ? "VLEK" : "VCEK");
    } else {
        (void)printf("result: NOT verified: %s failed\n", bad->name);
    }
}

int
cli_print_verify(const struct skr_snp_verify_result *res, const char *fmt, skr_err e)
{
    if (strcmp(fmt, "json") == 0) {
        json_t *j = NULL;
        skr_err je = skr_snp_verify_to_json(res, &j);

        if (je == SKR_OK) {
            je = cli_print_json(j);
        }
        if (je != SKR_OK) {
            return cli_fail(je, "output");
        }
    } else {
        print_verify_text(res);
    }
    return e == SKR_OK ? SKR_EXIT_OK : SKR_EXIT_DENIED;
}

int
main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (cmd == NULL || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        (void)fputs(usage, cmd == NULL ? stderr : stdout);
        return cmd == NULL ? SKR_EXIT_USAGE : SKR_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        (void)printf("skr %s (%s)\n", skr_version(), OpenSSL_version(OPENSSL_VERSION));
        return SKR_EXIT_OK;
    }
    if (strcmp(cmd, "report") == 0) {
        return cmd_report(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "certs") == 0) {
        return cmd_certs(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "encrypt") == 0) {
        return cmd_encrypt(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "decrypt") == 0) {
        return cmd_decrypt(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "policy") == 0) {
        return cmd_policy(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "key") == 0) {
        return cmd_key(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "token") == 0) {
        return cmd_token(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "attest") == 0) {
        return cmd_attest(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "release") == 0) {
        return cmd_release(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "diagnose") == 0) {
        return cmd_diagnose(argc - 1, argv + 1);
    }
    return cli_usage_error(usage, "unknown command '%s'", cmd);
}
