/*
 * cli_client.c - the flags that make a libskr client and the bearer token of the commands
 * that call Entra-protected services (cli_client.h).
 */
#define _GNU_SOURCE /* secure_getenv */
#include "cli_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "release_int.h"
#include "skr_limits.h"

const char cli_client_help[] =
    "  --snp-device DEV        auto, sev-guest[:DEV], sev[:DEV], tsm[:DIR], emulated:DIR or\n"
    "                          none\n"
    "  --security-context-dir DIR\n"
    "                          security-policy-base64, host-amd-cert-base64 and\n"
    "                          reference-info-base64 of the container group\n"
    "  --imds-endpoint URL     IMDS: managed identity and THIM (http://169.254.169.254)\n"
    "  --ca-file PEM           extra trust roots for TLS and the Key Vault release JWS chain\n"
    "  --trust-root PEM        an extra trusted AMD root key certificate\n"
    "  --client-id ID          the managed identity's client id (default: the only one)\n"
    "  --set NAME=VALUE        any libskr option by name (docs/api.md), e.g. --set\n"
    "                          maa_api_version=2022-08-01\n"
    "  --token TOKEN           bearer token for the vault (visible to other local users in\n"
    "                          the process list: prefer --token-file or AZURE_ACCESS_TOKEN)\n"
    "  --token-file FILE       a file whose first line is the bearer token\n"
    "  Identity, first that applies: --token, --token-file, AZURE_ACCESS_TOKEN; workload\n"
    "  identity when AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE are set\n"
    "  (AZURE_AUTHORITY_HOST optional); else the IMDS managed identity.\n";

/* Sets one libskr option, printing the failure as a usage error naming the flag. */
static int
set_opt(struct cli_client_opts *o, const char *flag, const char *name, const char *value)
{
    skr_err e = skr_config_set(o->cfg, name, value);

    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: %s: %s\n", flag, skr_err_detail());
        return cli_exit_code(e);
    }
    return SKR_EXIT_OK;
}

int
cli_client_init(struct cli_client_opts *o, const char *default_device)
{
    static const struct {
        const char *env, *name;
    } wi[] = {
        { "AZURE_CLIENT_ID", "wi_client_id" },
        { "AZURE_TENANT_ID", "wi_tenant_id" },
        { "AZURE_FEDERATED_TOKEN_FILE", "wi_token_file" },
        { "AZURE_AUTHORITY_HOST", "authority_host" },
    };
    bool have_wi = true;
    int rc;

    *o = (struct cli_client_opts){ 0 };
    if (skr_config_new(&o->cfg) != SKR_OK) {
        (void)fputs("skr: out of memory\n", stderr);
        return SKR_EXIT_UPSTREAM;
    }
    if (default_device != NULL) {
        rc = set_opt(o, "snp_device", "snp_device", default_device);
        if (rc != SKR_EXIT_OK) {
            return rc;
        }
    } else {
        /* the commands that use the platform read SKR_SNP_DEVICE as skrd and report fetch do */
        const char *dev = secure_getenv("SKR_SNP_DEVICE");

        if (dev != NULL && dev[0] != '\0') {
            rc = set_opt(o, "SKR_SNP_DEVICE", "snp_device", dev);
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
            o->device_set = true;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        const char *v = secure_getenv(wi[i].env);

        have_wi = have_wi && v != NULL && v[0] != '\0';
    }
    if (!have_wi) {
        return SKR_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(wi) / sizeof(wi[0]); i++) {
        const char *v = secure_getenv(wi[i].env);

        if (v != NULL && v[0] != '\0') {
            rc = set_opt(o, wi[i].env, wi[i].name, v);
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
        }
    }
    return SKR_EXIT_OK;
}

void
cli_client_done(struct cli_client_opts *o)
{
    skr_config_free(o->cfg);
    o->cfg = NULL;
}

int
cli_client_opt(struct cli_client_opts *o, int opt, const char *arg)
{
    char name[64];
    const char *eq;

    switch (opt) {
    case CLI_OPT_SNP_DEVICE:
        o->device_set = true;
        return set_opt(o, "--snp-device", "snp_device", arg);
    case CLI_OPT_SECURITY_CONTEXT_DIR:
        return set_opt(o, "--security-context-dir", "security_context_dir", arg);
    case CLI_OPT_IMDS_ENDPOINT:
        return set_opt(o, "--imds-endpoint", "imds_endpoint", arg);
    case CLI_OPT_CA_FILE:
        return set_opt(o, "--ca-file", "ca_file", arg);
    case CLI_OPT_TRUST_ROOT:
        return set_opt(o, "--trust-root", "trust_root", arg);
    case CLI_OPT_CLIENT_ID:
        return set_opt(o, "--client-id", "client_id", arg);
    case CLI_OPT_TOKEN:
        o->token = arg;
        return SKR_EXIT_OK;
    case CLI_OPT_TOKEN_FILE:
        o->token_file = arg;
        return SKR_EXIT_OK;
    case CLI_OPT_SET:
        eq = strchr(arg, '=');
        if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(name)) {
            (void)fprintf(stderr, "skr: --set: expected NAME=VALUE, got '%.64s'\n", arg);
            return SKR_EXIT_USAGE;
        }
        memcpy(name, arg, (size_t)(eq - arg));
        name[eq - arg] = '\0';
        if (strcmp(name, "snp_device") == 0) {
            o->device_set = true;
        }
        return set_opt(o, "--set", name, eq + 1);
    default:
        return -1;
    }
}

int
cli_client_opt_or_usage(struct cli_client_opts *o, int opt, const char *arg,
                        int (*bad_option)(const void *ctx), const void *ctx)
{
    int rc = cli_client_opt(o, opt, arg);

    return rc < 0 ? bad_option(ctx) : rc;
}

int
cli_fail_info(const skr_error_info *info, const char *what)
{
    (void)fprintf(stderr, "skr: %s: %s: %s", what, info->stage[0] != '\0' ? info->stage : "?",
                  info->message);
    if (info->upstream_status != 0) {
        (void)fprintf(stderr, " [HTTP %ld", info->upstream_status);
        if (info->code[0] != '\0') {
            (void)fprintf(stderr, ", %s", info->code);
        }
        if (info->request_id[0] != '\0') {
            (void)fprintf(stderr, ", request id %s", info->request_id);
        }
        (void)fputc(']', stderr);
    }
    (void)fputc('\n', stderr);
    if (info->hint[0] != '\0') {
        (void)fprintf(stderr, "hint: %s\n", info->hint);
    }
    if (info->err == SKR_E_POLICY || info->err == SKR_E_VERIFY) {
        return SKR_EXIT_DENIED;
    }
    if (strcmp(info->stage, "config") == 0 || strcmp(info->stage, "input") == 0) {
        return SKR_EXIT_USAGE;
    }
    return SKR_EXIT_UPSTREAM;
}

int
cli_client_new(struct cli_client_opts *o, const char *what, skr_client **ret)
{
    skr_error_info info;

    if (skr_client_new(o->cfg, ret, &info) != SKR_OK) {
        return cli_fail_info(&info, what);
    }
    return SKR_EXIT_OK;
}

/* A bearer token lives in a skr_secret with its NUL: the smaller of a JWT's and a secret's
 * bound (a secret of SKR_MAX_JWT_BYTES could not be allocated). */
#define MAX_BEARER                                                                                 \
    (SKR_MAX_JWT_BYTES < SKR_MAX_SECRET_BYTES ? SKR_MAX_JWT_BYTES : SKR_MAX_SECRET_BYTES - 1u)

/* A token given directly: visible ASCII only, bounded like any JWT. */
static int
token_from(const char *src, struct skr_span t, struct skr_secret **ret)
{
    while (t.len > 0 && (t.ptr[t.len - 1] == '\n' || t.ptr[t.len - 1] == '\r' ||
                         t.ptr[t.len - 1] == ' ' || t.ptr[t.len - 1] == '\t')) {
        t.len--;
    }
    if (t.len == 0 || t.len > MAX_BEARER) {
        (void)fprintf(stderr, "skr: %s: the token is empty or longer than %u bytes\n", src,
                      (unsigned int)MAX_BEARER);
        return SKR_EXIT_USAGE;
    }
    for (size_t i = 0; i < t.len; i++) {
        if (t.ptr[i] <= 0x20 || t.ptr[i] >= 0x7f) {
            (void)fprintf(stderr,
                          "skr: %s: the token has a character that is not visible ASCII "
                          "(at byte %zu)\n",
                          src, i);
            return SKR_EXIT_USAGE;
        }
    }
    if (skr_secret_new(t.len + 1, ret) != SKR_OK) {
        (void)fputs("skr: out of memory\n", stderr);
        return SKR_EXIT_UPSTREAM;
    }
    memcpy((*ret)->ptr, t.ptr, t.len);
    (*ret)->ptr[t.len] = '\0';
    return SKR_EXIT_OK;
}

/* The first line of a token file, read into wiped memory. */
static int
token_from_file(const char *path, struct skr_secret **ret)
{
    _cleanup_(skr_secret_freep) struct skr_secret *raw = NULL;
    FILE *f;
    size_t n;
    char what[300];

    if (skr_secret_new(MAX_BEARER + 1, &raw) != SKR_OK) {
        (void)fputs("skr: out of memory\n", stderr);
        return SKR_EXIT_UPSTREAM;
    }
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    if (f == NULL) {
        (void)fprintf(stderr, "skr: --token-file %s: cannot open it\n", path);
        return SKR_EXIT_USAGE;
    }
    n = fread(raw->ptr, 1, raw->len, f);
    if (f != stdin) {
        (void)fclose(f);
    }
    for (size_t i = 0; i < n; i++) {
        if (raw->ptr[i] == '\n') {
            n = i;
            break;
        }
    }
    (void)snprintf(what, sizeof(what), "--token-file %s", path);
    return token_from(what, skr_span_make(raw->ptr, n), ret);
}

int
cli_bearer(struct cli_client_opts *o, skr_client *c, const char *resource, struct skr_secret **ret)
{
    skr_client *own = NULL;
    skr_error_info info;
    const char *env;
    skr_err e;
    int rc;

    if (o->token != NULL) {
        return token_from("--token", skr_span_make(o->token, strlen(o->token)), ret);
    }
    if (o->token_file != NULL) {
        return token_from_file(o->token_file, ret);
    }
    env = secure_getenv("AZURE_ACCESS_TOKEN");
    if (env != NULL && env[0] != '\0') {
        return token_from("AZURE_ACCESS_TOKEN", skr_span_make(env, strlen(env)), ret);
    }
    if (c == NULL) {
        if (!o->device_set) {
            rc = set_opt(o, "snp_device", "snp_device", "none");
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
        }
        rc = cli_client_new(o, "identity", &own);
        if (rc != SKR_EXIT_OK) {
            return rc;
        }
        c = own;
    }
    e = rel_client_token(c, resource, ret, &info);
    skr_client_free(own);
    if (e != SKR_OK) {
        return cli_fail_info(&info, "token");
    }
    return SKR_EXIT_OK;
}
