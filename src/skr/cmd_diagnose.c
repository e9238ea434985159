/*
 * cmd_diagnose.c - `skr diagnose`: the release flow run step by step (lib/diagnose.h), each
 * step with its status, time and detail, ending with one sentence naming the first broken step
 * and its fix. The same result as JSON is skrd's GET /diagnose.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_client.h"
#include "diagnose.h"
#include "json.h"
#include "secret.h"
#include "skr_limits.h"

static const char usage_head[] =
    "usage: skr diagnose [--maa ENDPOINT] [--akv ENDPOINT] [--kid NAME] [--no-release]\n"
    "                    [--format text|json] [client options]\n"
    "\n"
    "Runs the Secure Key Release flow step by step and reports each step with its status (ok,\n"
    "warn, fail, skip), milliseconds and a detail line: SNP device, security context (HOST_DATA\n"
    "= SHA-256 of the security policy), certificates (their TCB vs the report's), report\n"
    "verification, identity token (audience, expiry; never the token), MAA attestation (issuer,\n"
    "claims), key (readable, exportable, release policy), release policy (evaluated against the\n"
    "fresh MAA claims: the unmet claim with expected and actual value), and a real key release\n"
    "(the key is unwrapped, then wiped at once: never shown or written). A step whose\n"
    "prerequisite failed is skipped. The last line names the first broken step and its fix.\n"
    "  --maa ENDPOINT       the MAA instance: host[:port] or https://host[:port]\n"
    "  --akv ENDPOINT       the key vault or managed HSM: host[:port] or https://host[:port]\n"
    "  --kid NAME           the key: its name, NAME/VERSION or its URL\n"
    "                       (without --maa the MAA, policy and release steps are skipped;\n"
    "                       without --akv and --kid the key, policy and release steps)\n"
    "  --no-release         skip the release attempt (the policy is still evaluated)\n"
    "  --format text|json   text (default): a table and the summary; json: {\"ok\",\"broken\",\n"
    "                       \"summary\",\"total_ms\",\"request\",\"steps\":[{\"name\",\"status\",\n"
    "                       \"ms\",\"detail\",\"fix\"}]}, as skrd's GET /diagnose\n"
    "client options:\n";

static const char usage_tail[] =
    "Exit 0 every step passed (warnings and skipped steps allowed), 1 a step failed,\n"
    "2 bad usage, 3 the tool itself failed.\n";

static const char *const formats[] = { "text", "json", NULL };

static int
usage_out(FILE *f)
{
    (void)fputs(usage_head, f);
    (void)fputs(cli_client_help, f);
    (void)fputs(usage_tail, f);
    return f == stdout ? SKR_EXIT_OK : SKR_EXIT_USAGE;
}

/* An unknown option: the whole usage on stderr. */
static int
bad_option(const void *ctx)
{
    (void)ctx;
    return usage_out(stderr);
}

static void
opts_donep(struct cli_client_opts *o)
{
    cli_client_done(o);
}

/* A token the user gave (--token, --token-file, AZURE_ACCESS_TOKEN), else NULL: diagnose then
 * uses the configured identity and describes it. Returns an exit code. */
static int
given_token(struct cli_client_opts *o, struct skr_secret **ret, const char **src)
{
    const char *env = secure_getenv("AZURE_ACCESS_TOKEN");

    *ret = NULL;
    if (o->token != NULL) {
        *src = "--token";
    } else if (o->token_file != NULL) {
        *src = "--token-file";
    } else if (env != NULL && env[0] != '\0') {
        *src = "AZURE_ACCESS_TOKEN";
    } else {
        return SKR_EXIT_OK;
    }
    return cli_bearer(o, NULL, "https://vault.azure.net", ret);
}

int
cmd_diagnose(int argc, char **argv)
{
    enum {
        OPT_MAA = 0x2000,
        OPT_AKV,
        OPT_KID,
        OPT_NO_RELEASE,
        OPT_FORMAT,
    };
    static const struct option longopts[] = {
        { "maa", required_argument, NULL, OPT_MAA },
        { "akv", required_argument, NULL, OPT_AKV },
        { "kid", required_argument, NULL, OPT_KID },
        { "no-release", no_argument, NULL, OPT_NO_RELEASE },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        CLI_CLIENT_LONGOPTS,
        { 0 },
    };
    _cleanup_(opts_donep) struct cli_client_opts o = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *token = NULL;
    _cleanup_(json_decrefp) json_t *res = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    struct skr_diag_request req = { 0 };
    const char *fmt = "text";
    int c;
    int rc;
    skr_err e;

    /* a diagnosis holds a vault token and unwraps a released key (then wipes it) */
    skr_json_wipe_on_free();
    if (skr_process_harden() != SKR_OK) {
        (void)fprintf(stderr, "skr: warning: %s\n", skr_err_msg());
    }
    rc = cli_client_init(&o, NULL);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_MAA:
            req.maa_endpoint = optarg;
            break;
        case OPT_AKV:
            req.akv_endpoint = optarg;
            break;
        case OPT_KID:
            req.kid = optarg;
            break;
        case OPT_NO_RELEASE:
            req.no_release = true;
            break;
        case OPT_FORMAT:
            fmt = optarg;
            if (!cli_format_ok(fmt, formats)) {
                return cli_usage_error(usage_head, "diagnose: --format: expected text or json");
            }
            break;
        case 'h':
            return usage_out(stdout);
        default:
            rc = cli_client_opt_or_usage(&o, c, optarg, bad_option, NULL);
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
        }
    }
    if (optind < argc) {
        return cli_usage_error(usage_head, "diagnose: unexpected argument '%.64s'", argv[optind]);
    }
    if ((req.akv_endpoint == NULL) != (req.kid == NULL)) {
        return cli_usage_error(usage_head, "diagnose: --akv and --kid go together");
    }
    rc = given_token(&o, &token, &req.token_source);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    if (token != NULL) {
        req.access_token = (const char *)token->ptr;
    }
    e = skr_diagnose(o.cfg, NULL, &req, &res);
    if (e != SKR_OK) {
        return cli_fail(e, "diagnose");
    }
    if (strcmp(fmt, "json") == 0) {
        e = cli_print_json(json_incref(res));
    } else {
        skr_buf_init(&text, SKR_MAX_JSON_BYTES);
        e = skr_diagnose_to_text(res, &text);
        if (e == SKR_OK) {
            e = cli_write(NULL, skr_buf_span(&text));
        }
    }
    if (e != SKR_OK) {
        return cli_fail(e, "diagnose: output");
    }
    return json_is_true(json_object_get(res, "ok")) ? SKR_EXIT_OK : SKR_EXIT_DENIED;
}
