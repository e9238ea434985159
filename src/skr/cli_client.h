/*
 * cli_client.h - the flags that make a libskr client, shared by the skr commands that talk to
 * the SNP platform or the Azure services (attest, release, token, key, diagnose), and the
 * bearer token those commands present to Entra-protected services.
 *
 * A command adds CLI_CLIENT_LONGOPTS to its getopt_long table, hands every option it does not
 * know to cli_client_opt(), prints cli_client_help in its --help, and builds the client with
 * cli_client_new() or gets a vault token with cli_bearer().
 */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include "skr/skr.h"

#include "secret.h"

/* getopt_long values of the shared flags (above any short option character). */
enum cli_client_optval {
    CLI_OPT_SNP_DEVICE = 0x1000,
    CLI_OPT_SECURITY_CONTEXT_DIR,
    CLI_OPT_IMDS_ENDPOINT,
    CLI_OPT_CA_FILE,
    CLI_OPT_TRUST_ROOT,
    CLI_OPT_CLIENT_ID,
    CLI_OPT_SET,
    CLI_OPT_TOKEN,
    CLI_OPT_TOKEN_FILE,
};

#define CLI_CLIENT_LONGOPTS                                                                        \
    { "snp-device", required_argument, NULL, CLI_OPT_SNP_DEVICE },                                 \
        { "security-context-dir", required_argument, NULL, CLI_OPT_SECURITY_CONTEXT_DIR },         \
        { "imds-endpoint", required_argument, NULL, CLI_OPT_IMDS_ENDPOINT },                       \
        { "ca-file", required_argument, NULL, CLI_OPT_CA_FILE },                                   \
        { "trust-root", required_argument, NULL, CLI_OPT_TRUST_ROOT },                             \
        { "client-id", required_argument, NULL, CLI_OPT_CLIENT_ID },                               \
        { "set", required_argument, NULL, CLI_OPT_SET },                                           \
        { "token", required_argument, NULL, CLI_OPT_TOKEN },                                       \
    {                                                                                              \
        "token-file", required_argument, NULL, CLI_OPT_TOKEN_FILE                                  \
    }

/* The --help text of the shared flags (each line indented two spaces, ends in a newline). */
extern const char cli_client_help[];

struct cli_client_opts {
    skr_config *cfg;
    const char *token;      /* --token (NULL: none) */
    const char *token_file; /* --token-file (NULL: none) */
    bool device_set;        /* --snp-device was given */
};

/*
 * Starts the options: a new config with snp_device default_device ("none" for commands that
 * never touch the platform; NULL: SKR_SNP_DEVICE when set, else libskr's "auto"), then
 * workload identity from
 * AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST when
 * the first three are all set. Returns an exit code (0 ok).
 */
int cli_client_init(struct cli_client_opts *o, const char *default_device);
/* Frees the config. */
void cli_client_done(struct cli_client_opts *o);

/*
 * One getopt_long result: -1 when opt is not a shared flag (the caller handles it), 0 when it
 * was taken, else the exit code of a bad value (the message printed, naming the flag).
 * --set NAME=VALUE sets any libskr option by name (include/skr/skr.h).
 */
int cli_client_opt(struct cli_client_opts *o, int opt, const char *arg);

/*
 * cli_client_opt() for the default: branch of a command's getopt loop: an option that is not a
 * shared flag (getopt's '?' included) goes to bad_option(ctx), which prints the command's usage
 * error and returns its exit code. Returns 0 when the flag was taken, else the exit code.
 */
int cli_client_opt_or_usage(struct cli_client_opts *o, int opt, const char *arg,
                            int (*bad_option)(const void *ctx), const void *ctx);

/* Builds the client; on failure prints "skr: <what>: <stage>: <message>" and the hint, and
 * returns the exit code. Returns 0 with *ret set on success. */
int cli_client_new(struct cli_client_opts *o, const char *what, skr_client **ret);

/*
 * A bearer token for resource (e.g. "https://vault.azure.net"): --token, else the first line
 * of --token-file, else AZURE_ACCESS_TOKEN, else the configured identity (workload identity or
 * the IMDS managed identity, client_id optional) through a client with snp_device none when
 * c is NULL. Returns 0 with *ret a new secret holding the NUL-terminated token, else prints
 * why and returns the exit code.
 */
int cli_bearer(struct cli_client_opts *o, skr_client *c, const char *resource,
               struct skr_secret **ret);

/* Prints a libskr failure as "skr: <what>: <stage>: <message> [HTTP n, code, request id]" and
 * "hint: ..." on stderr; returns the exit code (1 for a policy or verification failure, 2 for
 * bad input or configuration, 3 for device and upstream errors). */
int cli_fail_info(const skr_error_info *info, const char *what);
