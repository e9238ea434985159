/*
 * cli.h - what the skr subcommands share: exit codes (DESIGN.md §4.3), error printing,
 * input loading and output.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "buf.h"
#include "snp_report.h"
#include "snp_verify.h"

enum skr_exit {
    SKR_EXIT_OK = 0,
    SKR_EXIT_DENIED = 1,   /* a check failed, a release was denied */
    SKR_EXIT_USAGE = 2,    /* bad usage or bad input */
    SKR_EXIT_UPSTREAM = 3, /* device, service or system failure */
};

/* Maps an error category to an exit code. */
int cli_exit_code(skr_err e);
/* Prints "skr: <what>: <detail>" to stderr and returns the exit code for e. */
int cli_fail(skr_err e, const char *what);
/* Prints a usage error and returns SKR_EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...) SKR_PRINTF(2, 3);

/* Reads a whole input file ("-" = stdin), bounded by SKR_MAX_FILE_BYTES. */
SKR_NODISCARD skr_err cli_read(const char *path, struct skr_buf *out);
/* Loads a report file (binary or hex, auto-detected). */
SKR_NODISCARD skr_err cli_load_report(const char *path, struct skr_snp_report *r,
                                      uint8_t raw[SKR_SNP_REPORT_LEN]);
/* Writes bytes to path ("-" or NULL = stdout). */
SKR_NODISCARD skr_err cli_write(const char *path, struct skr_span data);
/* Parses "text|json" style --format values; returns false when not in allowed (a
 * NULL-terminated list). */
bool cli_format_ok(const char *fmt, const char *const *allowed);
/* Prints a JSON value to stdout (indented) and frees it. */
SKR_NODISCARD skr_err cli_print_json(json_t *v);

/* Reads every certificate of a PEM file into *roots (created when NULL). */
SKR_NODISCARD skr_err cli_add_trust_root(const char *path, STACK_OF(X509) * *roots);
/* Prints a verification result as text or JSON; returns the exit code for e (OK or VERIFY). */
int cli_print_verify(const struct skr_snp_verify_result *res, const char *fmt, skr_err e);

int cmd_report(int argc, char **argv);
int cmd_certs(int argc, char **argv);
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_attest(int argc, char **argv);
int cmd_release(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
