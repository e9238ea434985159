/*
 * cmd_token.c - `skr token`, `skr attest` and `skr release`: an Entra access token from this
 * machine's identity, an MAA token for this platform, and the whole key release flow, through
 * libskr (include/skr/skr.h; rel_client_token of lib/release_int.h for the identity token).
 *
 * Tokens and released keys are secrets (STYLE.md C10): they are held in skr_secret or wiped
 * buffers, go to stdout or to the one file the user named (mode 0600, atomically), and never
 * into a message. --decode shows a token's header and claims with the signature redacted and
 * never the token itself.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "b64.h"
#include "cli.h"
#include "cli_client.h"
#include "jose.h"
#include "json.h"
#include "release_int.h"
#include "secret.h"
#include "skr_limits.h"

static const char usage_token[] =
    "usage: skr token --resource R [--client-id ID] [--imds-endpoint URL] [--ca-file PEM]\n"
    "                 [--set NAME=VALUE] [--decode] [--format text|json] [--out FILE]\n"
    "       skr token --decode (--token-file FILE | --token TOKEN) [--format text|json]\n"
    "                 [--out FILE]\n"
    "\n"
    "Gets a Microsoft Entra access token for resource R from this machine's identity: workload\n"
    "identity when AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE are set\n"
    "(AZURE_AUTHORITY_HOST optional), else the IMDS managed identity. AZURE_ACCESS_TOKEN is\n"
    "not used. The token is a credential: it goes to stdout (or --out FILE) and nowhere else;\n"
    "do not paste it into tickets or logs (--decode shows what is in it without it).\n"
    "  --resource R        the audience: https://vault.azure.net, https://managedhsm.azure.net,\n"
    "                      any absolute https:// URL, an app ID URI (api://...) or an\n"
    "                      application id (GUID)\n"
    "  --client-id ID      the user-assigned managed identity's client id (IMDS; workload\n"
    "                      identity uses AZURE_CLIENT_ID)\n"
    "  --imds-endpoint URL IMDS (http://169.254.169.254)\n"
    "  --ca-file PEM       extra trust roots for TLS (an Entra authority on https)\n"
    "  --set NAME=VALUE    any libskr option by name (docs/api.md), e.g. --set retries=0\n"
    "  --decode            instead of the token, print its JOSE header and claims (JSON, the\n"
    "                      signature redacted) and its audience, issuer, subject, object id,\n"
    "                      app id and expiry (absolute and in seconds; an expired token is\n"
    "                      said to be expired)\n"
    "  --token-file FILE   with --decode: decode a token you already have, the first line of\n"
    "                      FILE ('-' for standard input), instead of getting one\n"
    "  --token TOKEN       with --decode: the same, from the command line\n"
    "  --format text|json  text (default): the token, or the decoded JSON then the summary;\n"
    "                      json: {\"token\":...}, or "
    "{\"header\",\"claims\",\"signature\",\"summary\"}\n"
    "  --out FILE          write the output to FILE (mode 0600, replaced atomically) instead\n"
    "                      of stdout\n"
    "Exit 0 ok, 2 bad usage or input (a bad --resource, an unreadable or malformed token),\n"
    "3 identity error (IMDS or Entra unreachable or refusing; the service's error is named).\n";

static const char usage_attest[] =
    "usage: skr attest --maa ENDPOINT [--runtime-data FILE] [--decode] [--format text|json]\n"
    "                  [--out FILE] [--snp-device DEV] [--security-context-dir DIR]\n"
    "                  [--imds-endpoint URL] [--ca-file PEM] [--trust-root PEM]\n"
    "                  [--set NAME=VALUE]\n"
    "\n"
    "Gets an SEV-SNP report of this platform whose REPORT_DATA is the SHA-256 of the runtime\n"
    "data, has Microsoft Azure Attestation verify it with its certificates and the UVM\n"
    "endorsements, and prints the MAA token: a JWT carrying the platform's claims\n"
    "(x-ms-sevsnpvm-hostdata, x-ms-sevsnpvm-is-debuggable, x-ms-runtime, ...), as skrd's\n"
    "POST /attest/maa. 'skr policy check POLICY TOKEN' tells whether a key's release policy\n"
    "accepts it.\n"
    "  --maa ENDPOINT       the MAA instance: host[:port] or https://host[:port] (e.g.\n"
    "                       sharedeus2.eus2.attest.azure.net)\n"
    "  --runtime-data FILE  JSON to bind (MAA dataType JSON; at most 1 MiB; '-' for standard\n"
    "                       input), returned as the x-ms-runtime claim. Default: {}\n"
    "  --decode             instead of the token, print its JOSE header and claims (JSON, the\n"
    "                       signature redacted) and its issuer and expiry\n"
    "  --format text|json   text (default): the token, or the decoded JSON then the summary;\n"
    "                       json: {\"token\":...}, or {\"header\",\"claims\",\"signature\",\n"
    "                       \"summary\"}\n"
    "  --out FILE           write the output to FILE (mode 0600, replaced atomically) instead\n"
    "                       of stdout\n"
    "  --snp-device DEV     auto (default), sev-guest[:DEV], sev[:DEV], tsm[:DIR] or\n"
    "                       emulated:DIR\n"
    "  --security-context-dir DIR\n"
    "                       security-policy-base64, host-amd-cert-base64 and\n"
    "                       reference-info-base64 of the container group\n"
    "  --imds-endpoint URL  IMDS for THIM certificates (http://169.254.169.254)\n"
    "  --ca-file PEM        extra trust roots for TLS\n"
    "  --trust-root PEM     an extra trusted AMD root key certificate\n"
    "  --set NAME=VALUE     any libskr option by name (docs/api.md), e.g. --set\n"
    "                       maa_api_version=2022-08-01\n"
    "Exit 0 ok, 1 the report failed local verification, 2 bad usage or input, 3 device,\n"
    "certificate or MAA error (the stage is named).\n";

static const char usage_release_head[] =
    "usage: skr release --maa ENDPOINT --akv ENDPOINT --kid NAME [--out FILE|-] [--force]\n"
    "                   [--format text|json] [client options]\n"
    "\n"
    "Runs the whole Secure Key Release flow, as skrd's POST /key/release: a fresh RSA transfer\n"
    "key, an SEV-SNP report binding it, an MAA token, the Key Vault release call with the\n"
    "vault token of this machine's identity, the release JWS verified and the key unwrapped.\n"
    "Prints the key type and the key's RFC 7638 SHA-256 fingerprint (for an oct key a hash of\n"
    "the secret: treat it as a key check value); the key itself only where --out says.\n"
    "  --maa ENDPOINT       the MAA instance: host[:port] or https://host[:port]\n"
    "  --akv ENDPOINT       the key vault or managed HSM: host[:port] or https://host[:port]\n"
    "  --kid NAME           the key: its name, NAME/VERSION or its URL\n"
    "  --out FILE|-         write the released key (a private JWK) to FILE, mode 0600,\n"
    "                       atomically; an existing FILE is refused unless --force. '-'\n"
    "                       writes it to stdout (the summary then goes to stderr)\n"
    "  --force              replace an existing --out FILE\n"
    "  --format text|json   the summary as text or as {\"kid\",\"kty\",\"size\"|\"crv\",\n"
    "                       \"fingerprint\",\"out\"}\n"
    "client options:\n";

static const char usage_release_tail[] =
    "Exit 0 released, 1 denied by the key's release policy (the failing claim is named) or a\n"
    "verification failed, 2 bad usage or input, 3 device, identity, MAA or Key Vault error\n"
    "(a key that does not exist: HTTP 404).\n";

static const char *const formats[] = { "text", "json", NULL };

/* --resource: IMDS takes it in a query string and Entra as a scope; real resources (vault,
 * management, app ID URIs) are well under 100 characters, 512 bounds what we send. */
#define MAX_RESOURCE 512u

/* Runtime data for MAA: the library's bound (one JSON document from a peer). */
#define MAX_RUNTIME_DATA SKR_MAX_JSON_BYTES

/* Output of one command (a token, a decoded token, a summary): a token plus its pretty-printed
 * claims fits in a few times the largest token. */
#define MAX_OUTPUT (4u * SKR_MAX_JWT_BYTES)

static void
opts_donep(struct cli_client_opts *o)
{
    cli_client_done(o);
}

static void
client_freep(skr_client **c)
{
    skr_client_free(*c);
}

static void
string_freep(char **s)
{
    skr_string_free(*s);
}

static void
usage_release(FILE *f)
{
    (void)fputs(usage_release_head, f);
    (void)fputs(cli_client_help, f);
    (void)fputs(usage_release_tail, f);
}

/* An unknown option of token or attest: "bad option" and the usage text ctx. */
static int
bad_option(const void *ctx)
{
    return cli_usage_error(ctx, "bad option");
}

/* An unknown option of release: the whole usage on stderr. */
static int
bad_release_option(const void *ctx)
{
    (void)ctx;
    usage_release(stderr);
    return SKR_EXIT_USAGE;
}

/* ---- output ------------------------------------------------------------------------------ */

/* Writes data to stdout (path NULL or "-") or to path (mode 0600, atomically). */
static int
emit(const char *path, struct skr_span data)
{
    skr_err e;

    if (path == NULL || strcmp(path, "-") == 0) {
        if (fwrite(data.ptr, 1, data.len, stdout) != data.len || fflush(stdout) != 0) {
            (void)fputs("skr: cannot write to standard output\n", stderr);
            return SKR_EXIT_UPSTREAM;
        }
        return SKR_EXIT_OK;
    }
    e = skr_write_file_atomic(path, data, 0600);
    if (e != SKR_OK) {
        return cli_fail(e, path);
    }
    return SKR_EXIT_OK;
}

/* The token alone: "TOKEN\n" (text) or {"token": TOKEN} (json), then emitted. */
static int
emit_token(const char *path, const char *fmt, const char *token)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    skr_err e;

    skr_buf_init(&out, MAX_OUTPUT);
    if (strcmp(fmt, "json") == 0) {
        doc = json_pack("{s:s}", "token", token);
        e = doc != NULL ? skr_json_dump(doc, JSON_INDENT(2), &out) : SKR_E_NOMEM;
    } else {
        e = skr_buf_append_str(&out, token);
    }
    if (e == SKR_OK) {
        e = skr_buf_append_byte(&out, '\n');
    }
    if (e != SKR_OK) {
        return cli_fail(e, "output");
    }
    return emit(path, skr_buf_span(&out));
}

/* ---- --decode ---------------------------------------------------------------------------- */

/* NumericDate bound: +-1e15 s (30 million years) keeps t - now and gmtime_r from overflowing. */
#define MAX_TIME ((json_int_t)1000000000000000LL)

/* A NumericDate claim (RFC 7519 §2) in seconds; false when absent or not a number in range. */
static bool
claim_time(const json_t *claims, const char *name, int64_t *ret)
{
    const json_t *v = json_object_get(claims, name);

    if (json_is_integer(v) && json_integer_value(v) > -MAX_TIME &&
        json_integer_value(v) < MAX_TIME) {
        *ret = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v) && json_real_value(v) > -(double)MAX_TIME &&
        json_real_value(v) < (double)MAX_TIME) {
        *ret = (int64_t)json_real_value(v);
        return true;
    }
    return false;
}

/* ISO 8601 UTC, or the number itself when the C library cannot represent it. */
static void
format_time(int64_t t, char out[40])
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        (void)snprintf(out, 40, "%lld", (long long)t);
    }
}

/* A claim as one line of text: a string as is, an array of strings joined with ", ", anything
 * else as compact JSON. */
static skr_err
claim_text(const json_t *v, struct skr_buf *out)
{
    size_t i;
    const json_t *item;

    if (json_is_string(v)) {
        return skr_buf_append_str(out, json_string_value(v));
    }
    if (json_is_array(v)) {
        bool all_str = true;

        json_array_foreach(v, i, item)
        {
            all_str = all_str && json_is_string(item);
        }
        if (all_str) {
            json_array_foreach(v, i, item)
            {
                TRY(skr_buf_printf(out, "%s%s", i > 0 ? ", " : "", json_string_value(item)));
            }
            return SKR_OK;
        }
    }
    return skr_json_dump(v, JSON_COMPACT, out);
}

/* The identity claims a summary names: claim, text label, JSON member. */
static const struct {
    const char *claim, *label, *member;
} summary_claims[] = {
    { "aud", "audience:", "audience" },   { "iss", "issuer:", "issuer" },
    { "sub", "subject:", "subject" },     { "oid", "object id:", "object_id" },
    { "appid", "app id:", "app_id" },     { "azp", "app id:", "app_id" },
    { "tid", "tenant id:", "tenant_id" },
};

/* {"audience",...,"issued_at","not_before","expires","expires_in_s","expired"}: the members
 * whose claims the token has. */
static skr_err
build_summary(const json_t *claims, int64_t now, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *s = json_object();
    static const struct {
        const char *claim, *member;
    } times[] = { { "iat", "issued_at" }, { "nbf", "not_before" }, { "exp", "expires" } };
    int64_t t;
    char when[40];

    ENSURE(s != NULL, SKR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < SKR_ARRAY_LEN(summary_claims); i++) {
        const json_t *v = json_object_get(claims, summary_claims[i].claim);

        if (v != NULL && json_object_get(s, summary_claims[i].member) == NULL) {
            TRY(skr_json_set(s, summary_claims[i].member, json_deep_copy(v)));
        }
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(times); i++) {
        if (claim_time(claims, times[i].claim, &t)) {
            format_time(t, when);
            TRY(skr_json_set(s, times[i].member, json_string(when)));
        }
    }
    if (claim_time(claims, "nbf", &t) && t > now) {
        TRY(skr_json_set(s, "not_yet_valid_s", json_integer((json_int_t)(t - now))));
    }
    if (claim_time(claims, "exp", &t)) {
        TRY(skr_json_set(s, "expires_in_s", json_integer((json_int_t)(t - now))));
        TRY(skr_json_set(s, "expired", json_boolean(t <= now)));
    }
    *ret = TAKE_PTR(s);
    return SKR_OK;
}

/* The summary as "label: value" lines. */
static skr_err
summary_text(const json_t *claims, int64_t now, struct skr_buf *out)
{
    bool have_app = false;
    int64_t t;
    char when[40];

    for (size_t i = 0; i < SKR_ARRAY_LEN(summary_claims); i++) {
        const json_t *v = json_object_get(claims, summary_claims[i].claim);
        bool is_app = strcmp(summary_claims[i].member, "app_id") == 0;

        if (v == NULL || (is_app && have_app)) {
            continue;
        }
        have_app = have_app || is_app;
        TRY(skr_buf_printf(out, "%-12s", summary_claims[i].label));
        TRY(claim_text(v, out));
        TRY(skr_buf_append_byte(out, '\n'));
    }
    if (claim_time(claims, "iat", &t)) {
        format_time(t, when);
        TRY(skr_buf_printf(out, "issued at:  %s\n", when));
    }
    if (claim_time(claims, "nbf", &t)) {
        format_time(t, when);
        if (t > now) {
            TRY(skr_buf_printf(out, "not before: %s (NOT YET VALID: valid in %lld s)\n", when,
                               (long long)(t - now)));
        } else {
            TRY(skr_buf_printf(out, "not before: %s\n", when));
        }
    }
    if (claim_time(claims, "exp", &t)) {
        format_time(t, when);
        if (t <= now) {
            TRY(skr_buf_printf(out, "expires:    %s (EXPIRED %lld s ago)\n", when,
                               (long long)(now - t)));
        } else {
            TRY(skr_buf_printf(out, "expires:    %s (in %lld s)\n", when, (long long)(t - now)));
        }
    } else {
        TRY(skr_buf_append_str(out, "expires:    unknown (no exp claim, or not a date)\n"));
    }
    return SKR_OK;
}

/*
 * Decodes a compact JWT into out: {"header","claims","signature":"<redacted, N bytes>"}
 * pretty-printed then the summary lines (text), or the same object with "summary" (json).
 * The token itself never reaches out.
 */
static skr_err
decode_token(struct skr_span token, const char *fmt, struct skr_buf *out)
{
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    json_t *summary = NULL;
    int64_t now = (int64_t)time(NULL);
    char sig[64];

    TRY(skr_jws_parse(token, &jws));
    ENSURE(jws.claims != NULL, SKR_E_MALFORMED,
           "the payload is not a JSON object: not a JWT with claims");
    (void)snprintf(sig, sizeof(sig), "<redacted, %zu bytes>", jws.signature.len);
    doc =
        json_pack("{s:O, s:O, s:s}", "header", jws.header, "claims", jws.claims, "signature", sig);
    ENSURE(doc != NULL, SKR_E_NOMEM, "out of memory");
    if (strcmp(fmt, "json") == 0) {
        TRY(build_summary(jws.claims, now, &summary));
        TRY(skr_json_set(doc, "summary", summary));
        TRY(skr_json_dump(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER, out));
        return skr_buf_append_byte(out, '\n');
    }
    TRY(skr_json_dump(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER, out));
    TRY(skr_buf_append_byte(out, '\n'));
    return summary_text(jws.claims, now, out);
}

/* Decodes token and emits the result; what names the token's source in errors. A malformed
 * token is bad input when the user gave it (given), an upstream fault when a service did. */
static int
emit_decoded(const char *path, const char *fmt, const char *token, const char *what, bool given)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    skr_err e;

    skr_buf_init(&out, MAX_OUTPUT);
    e = decode_token(skr_span_str(token), fmt, &out);
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: %s: not a JWT: %s\n", what, skr_err_msg());
        return given ? SKR_EXIT_USAGE : SKR_EXIT_UPSTREAM;
    }
    return emit(path, skr_buf_span(&out));
}

/* ---- skr token --------------------------------------------------------------------------- */

static bool
is_hex_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 8-4-4-4-12 hex digits. */
static bool
is_guid(const char *s)
{
    if (strlen(s) != 36) {
        return false;
    }
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !is_hex_char(s[i])) {
            return false;
        }
    }
    return true;
}

/* An absolute https:// URL with a host, an api:// app ID URI, or a GUID; visible ASCII. */
static bool
resource_ok(const char *r)
{
    size_t n = strnlen(r, MAX_RESOURCE + 1);

    if (n == 0 || n > MAX_RESOURCE) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i] <= 0x20 || r[i] >= 0x7f) {
            return false;
        }
    }
    if (strncmp(r, "https://", 8) == 0) {
        return r[8] != '\0' && r[8] != '/' && r[8] != ':' && r[8] != '?' && r[8] != '#';
    }
    if (strncmp(r, "api://", 6) == 0) {
        return r[6] != '\0';
    }
    return is_guid(r);
}

/* A token for resource from the configured identity (AZURE_ACCESS_TOKEN is not consulted). */
static int
identity_token(struct cli_client_opts *o, const char *resource, struct skr_secret **ret)
{
    _cleanup_(client_freep) skr_client *c = NULL;
    skr_error_info info;
    int rc;

    rc = cli_client_new(o, "token", &c);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    if (rel_client_token(c, resource, ret, &info) != SKR_OK) {
        return cli_fail_info(&info, "token");
    }
    return SKR_EXIT_OK;
}

enum {
    OPT_RESOURCE = 0x2000,
    OPT_DECODE,
    OPT_FORMAT,
    OPT_OUT,
    OPT_MAA,
    OPT_RUNTIME_DATA,
    OPT_AKV,
    OPT_KID,
    OPT_FORCE,
};

int
cmd_token(int argc, char **argv)
{
    static const struct option opts[] = {
        { "resource", required_argument, NULL, OPT_RESOURCE },
        { "client-id", required_argument, NULL, CLI_OPT_CLIENT_ID },
        { "imds-endpoint", required_argument, NULL, CLI_OPT_IMDS_ENDPOINT },
        { "ca-file", required_argument, NULL, CLI_OPT_CA_FILE },
        { "set", required_argument, NULL, CLI_OPT_SET },
        { "token", required_argument, NULL, CLI_OPT_TOKEN },
        { "token-file", required_argument, NULL, CLI_OPT_TOKEN_FILE },
        { "decode", no_argument, NULL, OPT_DECODE },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "out", required_argument, NULL, OPT_OUT },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    _cleanup_(opts_donep) struct cli_client_opts o = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *tok = NULL;
    const char *resource = NULL;
    const char *fmt = "text";
    const char *out = NULL;
    bool decode = false;
    bool given;
    int c;
    int rc;

    skr_json_wipe_on_free();
    rc = cli_client_init(&o, "none");
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_RESOURCE:
            resource = optarg;
            break;
        case OPT_DECODE:
            decode = true;
            break;
        case OPT_FORMAT:
            fmt = optarg;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        case 'h':
            (void)fputs(usage_token, stdout);
            return SKR_EXIT_OK;
        default:
            rc = cli_client_opt_or_usage(&o, c, optarg, bad_option, usage_token);
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
        }
    }
    if (optind != argc) {
        return cli_usage_error(usage_token, "token: unexpected argument '%s'", argv[optind]);
    }
    if (!cli_format_ok(fmt, formats)) {
        return cli_usage_error(usage_token, "--format: expected text or json, got '%s'", fmt);
    }
    given = o.token != NULL || o.token_file != NULL;
    if (given && !decode) {
        return cli_usage_error(usage_token, "--token and --token-file are only for --decode "
                                            "(decoding a token you already have)");
    }
    if (given && resource != NULL) {
        return cli_usage_error(usage_token, "--resource gets a new token: it does not go with "
                                            "--token or --token-file");
    }
    if (given && o.token != NULL && o.token_file != NULL) {
        return cli_usage_error(usage_token, "--token and --token-file exclude each other");
    }
    if (given) {
        rc = cli_bearer(&o, NULL, "", &tok);
    } else if (resource == NULL) {
        return cli_usage_error(usage_token, "--resource is required (e.g. --resource "
                                            "https://vault.azure.net)");
    } else if (!resource_ok(resource)) {
        return cli_usage_error(usage_token,
                               "--resource '%.100s': expected an absolute https:// URL (e.g. "
                               "https://vault.azure.net), an app ID URI (api://...) or an "
                               "application id (GUID), at most %u characters",
                               resource, MAX_RESOURCE);
    } else {
        rc = identity_token(&o, resource, &tok);
    }
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    if (decode) {
        char what[300];

        if (o.token_file != NULL) {
            (void)snprintf(what, sizeof(what), "--token-file %s", o.token_file);
        } else {
            (void)snprintf(what, sizeof(what), "%s",
                           o.token != NULL ? "--token" : "the identity's token");
        }
        return emit_decoded(out, fmt, (const char *)tok->ptr, what, given);
    }
    return emit_token(out, fmt, (const char *)tok->ptr);
}

/* ---- skr attest -------------------------------------------------------------------------- */

/* Runtime data from path, which must be one JSON document (MAA dataType JSON). */
static int
read_runtime_data(const char *path, struct skr_buf *data)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    skr_err e;

    skr_buf_init(data, MAX_RUNTIME_DATA);
    e = skr_read_file(path, data);
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: --runtime-data %s: %s\n", path, skr_err_msg());
        return e == SKR_E_TOO_LARGE ? SKR_EXIT_USAGE : cli_exit_code(e);
    }
    if (skr_json_parse(skr_buf_span(data), MAX_RUNTIME_DATA, &doc) != SKR_OK) {
        (void)fprintf(stderr,
                      "skr: --runtime-data %s: expected one JSON document (MAA takes runtime "
                      "data as JSON): %s\n",
                      path, skr_err_msg());
        return SKR_EXIT_USAGE;
    }
    return SKR_EXIT_OK;
}

int
cmd_attest(int argc, char **argv)
{
    static const struct option opts[] = {
        { "maa", required_argument, NULL, OPT_MAA },
        { "runtime-data", required_argument, NULL, OPT_RUNTIME_DATA },
        { "decode", no_argument, NULL, OPT_DECODE },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "out", required_argument, NULL, OPT_OUT },
        { "snp-device", required_argument, NULL, CLI_OPT_SNP_DEVICE },
        { "security-context-dir", required_argument, NULL, CLI_OPT_SECURITY_CONTEXT_DIR },
        { "imds-endpoint", required_argument, NULL, CLI_OPT_IMDS_ENDPOINT },
        { "ca-file", required_argument, NULL, CLI_OPT_CA_FILE },
        { "trust-root", required_argument, NULL, CLI_OPT_TRUST_ROOT },
        { "set", required_argument, NULL, CLI_OPT_SET },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    _cleanup_(opts_donep) struct cli_client_opts o = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf data = { 0 };
    _cleanup_(client_freep) skr_client *client = NULL;
    _cleanup_(string_freep) char *token = NULL;
    skr_error_info info;
    const char *maa = NULL;
    const char *rt = NULL;
    const char *fmt = "text";
    const char *out = NULL;
    bool decode = false;
    int c;
    int rc;

    skr_json_wipe_on_free();
    rc = cli_client_init(&o, NULL);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_MAA:
            maa = optarg;
            break;
        case OPT_RUNTIME_DATA:
            rt = optarg;
            break;
        case OPT_DECODE:
            decode = true;
            break;
        case OPT_FORMAT:
            fmt = optarg;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        case 'h':
            (void)fputs(usage_attest, stdout);
            return SKR_EXIT_OK;
        default:
            rc = cli_client_opt_or_usage(&o, c, optarg, bad_option, usage_attest);
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
        }
    }
    if (optind != argc) {
        return cli_usage_error(usage_attest, "attest: unexpected argument '%s'", argv[optind]);
    }
    if (maa == NULL || maa[0] == '\0') {
        return cli_usage_error(usage_attest, "--maa ENDPOINT is required");
    }
    if (!cli_format_ok(fmt, formats)) {
        return cli_usage_error(usage_attest, "--format: expected text or json, got '%s'", fmt);
    }
    if (rt != NULL) {
        rc = read_runtime_data(rt, &data);
    } else {
        skr_buf_init(&data, MAX_RUNTIME_DATA);
        rc = skr_buf_append_str(&data, "{}") == SKR_OK ? SKR_EXIT_OK : SKR_EXIT_UPSTREAM;
    }
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    rc = cli_client_new(&o, "attest", &client);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    if (skr_attest_maa(client, maa, data.ptr, data.len, &token, &info) != SKR_OK) {
        return cli_fail_info(&info, "attest");
    }
    if (decode) {
        return emit_decoded(out, fmt, token, "the MAA token", false);
    }
    return emit_token(out, fmt, token);
}

/* ---- skr release ------------------------------------------------------------------------- */

/* The released key's type and size: "RSA" with bits, "EC" with crv, "oct" with bits. */
struct key_desc {
    char kty[16];
    char crv[16];
    unsigned int bits;
};

/* Bits of the big-endian number in base64url text s (leading zeros not counted). */
static unsigned int
number_bits(const char *s)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };
    size_t i = 0;
    unsigned int bits;
    uint8_t top;

    skr_buf_init(&b, SKR_MAX_RSA_BITS / 8 + 8);
    if (skr_b64_decode(skr_span_str(s), SKR_B64_URL, &b) != SKR_OK) {
        return 0;
    }
    while (i < b.len && b.ptr[i] == 0) {
        i++;
    }
    if (i == b.len) {
        return 0;
    }
    bits = (unsigned int)((b.len - i) * 8);
    for (top = b.ptr[i]; (top & 0x80) == 0; top = (uint8_t)(top << 1)) {
        bits--;
    }
    return bits;
}

/* Reads kty and the size from the JWK text (jansson wipes what it frees: see cmd_release). */
static skr_err
describe_key(const char *jwk, struct key_desc *d)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    const char *kty = NULL;
    const char *v = NULL;
    size_t n;

    *d = (struct key_desc){ 0 };
    TRY(skr_json_parse_object(skr_span_str(jwk), SKR_MAX_JSON_BYTES, "released key", &doc));
    TRY(skr_json_get_str(doc, "kty", &kty));
    n = strlen(kty);
    if (n > 4 && strcmp(kty + n - 4, "-HSM") == 0) {
        n -= 4;
    }
    ENSURE(n < sizeof(d->kty), SKR_E_MALFORMED, "released key: kty is too long");
    memcpy(d->kty, kty, n);
    d->kty[n] = '\0';
    if (strcmp(d->kty, "RSA") == 0 && skr_json_opt_str(doc, "n", &v) == SKR_OK && v != NULL) {
        d->bits = number_bits(v);
    } else if (strcmp(d->kty, "EC") == 0 && skr_json_opt_str(doc, "crv", &v) == SKR_OK &&
               v != NULL) {
        (void)snprintf(d->crv, sizeof(d->crv), "%s", v);
    } else if (strcmp(d->kty, "oct") == 0 && skr_json_opt_str(doc, "k", &v) == SKR_OK &&
               v != NULL) {
        /* unpadded base64url: 4 characters per 3 bytes, no decoding of the secret needed */
        d->bits = (unsigned int)(strlen(v) * 3 / 4 * 8);
    }
    return SKR_OK;
}

static skr_err
release_summary(const char *kid, const struct key_desc *d, const char *fp, const char *out,
                const char *fmt, struct skr_buf *b)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    bool to_file = out != NULL && strcmp(out, "-") != 0;

    if (strcmp(fmt, "json") == 0) {
        doc = json_pack("{s:s, s:s}", "kid", kid, "kty", d->kty);
        ENSURE(doc != NULL, SKR_E_NOMEM, "out of memory");
        if (d->crv[0] != '\0') {
            TRY(skr_json_set(doc, "crv", json_string(d->crv)));
        } else if (d->bits != 0) {
            TRY(skr_json_set(doc, "size", json_integer((json_int_t)d->bits)));
        }
        TRY(skr_json_set(doc, "fingerprint", json_string(fp)));
        TRY(skr_json_set(doc, "out", out != NULL ? json_string(out) : json_null()));
        TRY(skr_json_dump(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER, b));
        return skr_buf_append_byte(b, '\n');
    }
    TRY(skr_buf_printf(b, "released:    %s\n", kid));
    if (d->crv[0] != '\0') {
        TRY(skr_buf_printf(b, "key type:    %s %s\n", d->kty, d->crv));
    } else if (d->bits != 0) {
        TRY(skr_buf_printf(b, "key type:    %s %u bits\n", d->kty, d->bits));
    } else {
        TRY(skr_buf_printf(b, "key type:    %s\n", d->kty));
    }
    TRY(skr_buf_printf(b, "fingerprint: %s\n", fp));
    if (to_file) {
        return skr_buf_printf(b, "written to:  %s (mode 0600)\n", out);
    }
    if (out != NULL) {
        return skr_buf_append_str(b, "written to:  standard output\n");
    }
    return skr_buf_append_str(b, "written to:  nowhere (--out FILE or --out - to get the key)\n");
}

/* True when path names something that exists (a dangling symlink included). */
static bool
path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* The caller's vault token when one is given (--token, --token-file, AZURE_ACCESS_TOKEN);
 * *ret stays NULL when the client's identity is to be used. */
static int
given_vault_token(struct cli_client_opts *o, const char *akv, struct skr_secret **ret)
{
    const char *env = secure_getenv("AZURE_ACCESS_TOKEN");

    if (o->token == NULL && o->token_file == NULL && (env == NULL || env[0] == '\0')) {
        return SKR_EXIT_OK;
    }
    return cli_bearer(o, NULL, skr_akv_resource_for(akv), ret);
}

/* Writes the released key where --out says: stdout, or FILE (0600, atomically). */
static int
write_key(const char *out, bool force, const char *jwk)
{
    skr_err e;

    if (strcmp(out, "-") == 0) {
        if (fputs(jwk, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
            (void)fputs("skr: cannot write the key to standard output\n", stderr);
            return SKR_EXIT_UPSTREAM;
        }
        return SKR_EXIT_OK;
    }
    if (!force && path_exists(out)) {
        (void)fprintf(stderr,
                      "skr: --out %s: the file appeared while the key was released; not "
                      "replaced (use --force)\n",
                      out);
        return SKR_EXIT_USAGE;
    }
    e = skr_write_file_atomic(out, skr_span_str(jwk), 0600);
    if (e != SKR_OK) {
        return cli_fail(e, out);
    }
    return SKR_EXIT_OK;
}

int
cmd_release(int argc, char **argv)
{
    static const struct option opts[] = {
        { "maa", required_argument, NULL, OPT_MAA },
        { "akv", required_argument, NULL, OPT_AKV },
        { "kid", required_argument, NULL, OPT_KID },
        { "out", required_argument, NULL, OPT_OUT },
        { "force", no_argument, NULL, OPT_FORCE },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "help", no_argument, NULL, 'h' },
        CLI_CLIENT_LONGOPTS,
        { 0 },
    };
    _cleanup_(opts_donep) struct cli_client_opts o = { 0 };
    _cleanup_(client_freep) skr_client *client = NULL;
    _cleanup_(string_freep) char *jwk = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *bearer = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf summary = { 0 };
    skr_release_request req = { 0 };
    skr_error_info info;
    struct key_desc desc;
    char fp[SKR_FINGERPRINT_LEN];
    const char *fmt = "text";
    const char *out = NULL;
    bool force = false;
    skr_err e;
    int c;
    int rc;

    skr_json_wipe_on_free(); /* the released JWK is parsed: no copy of it is left behind */
    if (skr_process_harden() != SKR_OK) {
        (void)fprintf(stderr, "skr: warning: %s\n", skr_err_msg());
    }
    rc = cli_client_init(&o, NULL);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
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
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_FORCE:
            force = true;
            break;
        case OPT_FORMAT:
            fmt = optarg;
            break;
        case 'h':
            usage_release(stdout);
            return SKR_EXIT_OK;
        default:
            rc = cli_client_opt_or_usage(&o, c, optarg, bad_release_option, NULL);
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
        }
    }
    if (optind != argc) {
        (void)fprintf(stderr, "skr: release: unexpected argument '%s'\n", argv[optind]);
        return SKR_EXIT_USAGE;
    }
    if (req.maa_endpoint == NULL || req.akv_endpoint == NULL || req.kid == NULL) {
        (void)fprintf(stderr, "skr: release: --maa, --akv and --kid are required\n");
        usage_release(stderr);
        return SKR_EXIT_USAGE;
    }
    if (!cli_format_ok(fmt, formats)) {
        (void)fprintf(stderr, "skr: --format: expected text or json, got '%s'\n", fmt);
        return SKR_EXIT_USAGE;
    }
    if (out != NULL && out[0] == '\0') {
        (void)fputs("skr: --out: expected a file name or -\n", stderr);
        return SKR_EXIT_USAGE;
    }
    if (out != NULL && strcmp(out, "-") != 0 && !force && path_exists(out)) {
        (void)fprintf(stderr, "skr: --out %s: the file exists; not replaced (use --force)\n", out);
        return SKR_EXIT_USAGE;
    }
    rc = given_vault_token(&o, req.akv_endpoint, &bearer);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    req.access_token = bearer != NULL ? (const char *)bearer->ptr : NULL;
    rc = cli_client_new(&o, "release", &client);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    if (skr_key_release(client, &req, &jwk, &info) != SKR_OK) {
        return cli_fail_info(&info, "release");
    }
    e = skr_jwk_fingerprint(jwk, fp);
    if (e == SKR_OK) {
        e = describe_key(jwk, &desc);
    }
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: release: the released key is not a usable JWK: %s\n",
                      skr_err_msg());
        return SKR_EXIT_UPSTREAM;
    }
    if (out != NULL) {
        rc = write_key(out, force, jwk);
        if (rc != SKR_EXIT_OK) {
            return rc;
        }
    }
    skr_buf_init(&summary, 4096);
    e = release_summary(req.kid, &desc, fp, out, fmt, &summary);
    if (e != SKR_OK) {
        return cli_fail(e, "output");
    }
    if (out != NULL && strcmp(out, "-") == 0) {
        (void)fwrite(summary.ptr, 1, summary.len, stderr);
        return SKR_EXIT_OK;
    }
    return emit(NULL, skr_buf_span(&summary));
}
