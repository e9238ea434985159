/*
 * emu.h - what the skr-emu subcommands share: exit codes, diagnostics, and the names of the
 * files `skr-emu init` creates under DIR (the layout is described at the top of init.c), so
 * that the servers read exactly what init wrote.
 */
#pragma once

#include "err.h"

#define EMU_EXIT_OK    0
#define EMU_EXIT_USAGE 2
#define EMU_EXIT_FAIL  3

/* Paths relative to DIR. */
#define EMU_CONFIG          "emu.json"
#define EMU_CA_CERT         "ca.pem"
#define EMU_CA_KEY          "ca.key"
#define EMU_TLS_CERT        "tls.pem" /* leaf, then the CA */
#define EMU_TLS_KEY         "tls.key"
#define EMU_MAA_DIR         "maa"
#define EMU_MAA_CERT        "maa/signing.pem"
#define EMU_MAA_KEY         "maa/signing.key"
#define EMU_ENTRA_DIR       "entra"
#define EMU_ENTRA_CERT      "entra/signing.pem"
#define EMU_ENTRA_KEY       "entra/signing.key"
#define EMU_SNP_DIR         "snp"
#define EMU_SECCTX_DIR      "security-context"
#define EMU_SECCTX_POLICY   "security-context/security-policy-base64"
#define EMU_SECCTX_HOST_AMD "security-context/host-amd-cert-base64"
#define EMU_SECCTX_REF_INFO "security-context/reference-info-base64"
#define EMU_KEYS_DIR        "keys"
#define EMU_KEY_STORE       "keys/store.json"

/* User-Agent of the Key Vault emulator's fetches of an attestation issuer's metadata and keys;
 * serve.c never injects faults into them (Azure-internal traffic). */
#define EMU_AKV_USER_AGENT "skr-emu-akv"

/* emu.json "version". */
#define EMU_CONFIG_VERSION 1

/* The whole --help text (main.c). */
extern const char emu_usage_text[];

/* "skr-emu: <message>" plus a pointer to --help on stderr; returns EMU_EXIT_USAGE. */
int emu_usage_error(const char *fmt, ...) SKR_PRINTF(1, 2);
/* "skr-emu: <what>: <error>: <message>" on stderr; returns EMU_EXIT_FAIL. */
int emu_report_err(skr_err e, const char *what);

/* skr-emu init DIR [options]; argv[0] is "init". Returns the exit code. */
int emu_cmd_init(int argc, char **argv);
/* skr-emu serve DIR [options]; argv[0] is "serve". Returns the exit code. */
int emu_cmd_serve(int argc, char **argv);
