/*
 * config.c - skrd's configuration (DESIGN.md §4.1, PROTOCOLS.md §4.2 and §8.1).
 *
 * Sources, strongest first: flags (one or two dashes, "-name value" or "-name=value", as Go's
 * flag package takes them), then environment variables (the reference's Port, LogLevel,
 * LogFile, SkrSideCarArgs, the UVM_* and AZURE_* variables, and SKR_* for the new options),
 * then up to two positional arguments as the reference's skr.sh takes them (SkrSideCarArgs,
 * then Port), then defaults. SkrSideCarArgs is standard base64 of
 * {"certcache":{...},"identity":{"client_id"},"maaconfig":{"user_agent"}}: unknown members are
 * ignored and member names match case-insensitively, as Go's encoding/json does; a member of
 * the wrong type is an error naming it.
 *
 * Every value ends up in one table with the place it came from, which --check-config prints.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "b64.h"
#include "json.h"
#include "skr_limits.h"
#include "skrd.h"

const char skrd_usage[] =
    "usage: skrd [flags] [SkrSideCarArgs [Port]]\n"
    "\n"
    "The SKR sidecar: attestation and Secure Key Release over HTTP on localhost, a drop-in\n"
    "replacement for the reference sidecar (confidential-sidecar-containers cmd/skr). Flags\n"
    "take one or two dashes and 'flag value' or 'flag=value'. A flag wins over its variable.\n"
    "\n"
    "reference flags (variable):\n"
    "  -port N                 TCP port on the listen address (Port; default 8080; 0 with\n"
    "                          --socket: Unix socket only)\n"
    "  -base64 B64             standard base64 JSON "
    "{\"certcache\":{\"endpoint_type\",\"endpoint\",\n"
    "                          "
    "\"tee_type\",\"api_version\",\"client_id\"},\"identity\":{\"client_id\"},\n"
    "                          \"maaconfig\":{\"user_agent\"}} (SkrSideCarArgs)\n"
    "  -loglevel LEVEL         trace, debug, info, warning, error, fatal, panic (LogLevel;\n"
    "                          default warning)\n"
    "  -logfile PATH           append logs to PATH instead of stderr (LogFile)\n"
    "  -server_type http       only http is supported (ServerType)\n"
    "\n"
    "platform and services (variable):\n"
    "  --snp-device DEV        auto, sev-guest[:DEV], sev[:DEV], tsm[:DIR] or emulated:DIR\n"
    "                          (SKR_SNP_DEVICE; default auto)\n"
    "  --security-context-dir DIR\n"
    "                          security-policy-base64, host-amd-cert-base64 and\n"
    "                          reference-info-base64 (UVM_SECURITY_CONTEXT_DIR; default: the\n"
    "                          first /security-context-* directory, else the variables\n"
    "                          UVM_SECURITY_POLICY, UVM_HOST_AMD_CERTIFICATE, UVM_REFERENCE_INFO)\n"
    "  --imds-endpoint URL     IMDS and THIM (SKR_IMDS_ENDPOINT; default http://169.254.169.254)\n"
    "  --ca-file PEM           extra trust roots for TLS and the Key Vault JWS chain\n"
    "                          (SKR_CA_FILE)\n"
    "  --trust-root PEM        an extra trusted AMD root key certificate (SKR_TRUST_ROOT)\n"
    "  workload identity: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE,\n"
    "  AZURE_AUTHORITY_HOST; otherwise the managed identity of IMDS\n"
    "\n"
    "release flow (variable):\n"
    "  --transfer-key-bits N   2048, 3072 or 4096 (SKR_TRANSFER_KEY_BITS; default 2048)\n"
    "  --pool-size N           transfer keys made ahead, 0..16 (SKR_POOL_SIZE; default 2)\n"
    "  --reuse-window S        seconds one transfer key and MAA token serve repeated releases,\n"
    "                          0..3600 (SKR_REUSE_WINDOW; default 0 = a fresh key every time)\n"
    "  --release-enc ALG       RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384 or CKM_RSA_AES_KEY_WRAP\n"
    "                          (SKR_RELEASE_ENC; default RSA_AES_KEY_WRAP_256)\n"
    "  --retries N             retries per HTTP call, 0..8 (SKR_RETRIES; default 4)\n"
    "  --timeout-ms MS         per HTTP attempt (SKR_TIMEOUT_MS; default 10000)\n"
    "  --connect-timeout-ms MS per connection attempt (SKR_CONNECT_TIMEOUT_MS; default 3000)\n"
    "  --release-deadline-ms MS\n"
    "                          a whole release (SKR_RELEASE_DEADLINE_MS; default 30000)\n"
    "  --token-refresh S       renew a cached vault token S seconds before it expires\n"
    "                          (SKR_TOKEN_REFRESH; default 300)\n"
    "\n"
    "serving (variable):\n"
    "  --listen ADDR           numeric address or localhost (SKR_LISTEN; default 127.0.0.1)\n"
    "  --allow-non-loopback    allow a --listen address other than loopback\n"
    "                          (SKR_ALLOW_NON_LOOPBACK=1): key release becomes reachable from\n"
    "                          outside the container group\n"
    "  --socket PATH           also serve on a Unix socket, mode 0600 (SKR_SOCKET)\n"
    "  --max-releases N        concurrent /key/release calls, 1..64; more get 503 at once\n"
    "                          (SKR_MAX_RELEASES; default 8)\n"
    "  --no-sandbox            skip no-new-privs and the seccomp allow-list applied before\n"
    "                          serving (SKR_NO_SANDBOX=1; for strace or valgrind only:\n"
    "                          docs/security.md)\n"
    "\n"
    "  --check-config          print the effective configuration (JSON, with the source of each\n"
    "                          value) and exit\n"
    "  --help                  this text\n"
    "  --version               the version\n"
    "\n"
    "Routes: GET /status, POST /attest/raw, /attest/combined, /attest/maa, /key/release,\n"
    "GET /diagnose?maa=&akv=&kid= (local callers only) (docs/skrd.md). Exit codes: 0 ok (also\n"
    "after SIGTERM), 1 cannot start, 2 bad configuration.\n";

/* ---- the settings table ---------------------------------------------------------------------- */

enum setting_id {
    S_PORT,
    S_LISTEN,
    S_ALLOW_NON_LOOPBACK,
    S_NO_SANDBOX,
    S_SOCKET,
    S_MAX_RELEASES,
    S_LOG_LEVEL,
    S_LOG_FILE,
    S_SIDECAR_ARGS,
    S_SERVER_TYPE,
    S_LIB_FIRST, /* everything from here on is a skr_config option of the same name */
    S_SNP_DEVICE = S_LIB_FIRST,
    S_SECURITY_CONTEXT_DIR,
    S_SECURITY_POLICY,
    S_HOST_AMD_CERT,
    S_UVM_REFERENCE_INFO,
    S_IMDS_ENDPOINT,
    S_CA_FILE,
    S_TRUST_ROOT,
    S_TRANSFER_KEY_BITS,
    S_POOL_SIZE,
    S_REUSE_WINDOW,
    S_RELEASE_ENC,
    S_RETRIES,
    S_TIMEOUT_MS,
    S_CONNECT_TIMEOUT_MS,
    S_RELEASE_DEADLINE_MS,
    S_TOKEN_REFRESH,
    S_CLIENT_ID,
    S_USER_AGENT,
    S_CERTCACHE_ENDPOINT_TYPE,
    S_CERTCACHE_ENDPOINT,
    S_CERTCACHE_TEE_TYPE,
    S_CERTCACHE_API_VERSION,
    S_CERTCACHE_CLIENT_ID,
    S_WI_CLIENT_ID,
    S_WI_TENANT_ID,
    S_WI_TOKEN_FILE,
    S_AUTHORITY_HOST,
    S_COUNT,
};

struct setting {
    const char *name;  /* key in --check-config; the skr_config option for S_LIB_FIRST.. */
    const char *flag;  /* without dashes, or NULL */
    const char *env;   /* or NULL */
    const char *deflt; /* skrd's own default (lib options: NULL, libskr decides) */
    bool is_bool;
    bool summarize; /* large blob: --check-config shows its length only */
};

static const struct setting settings[S_COUNT] = {
    [S_PORT] = { "port", "port", "Port", "8080", false, false },
    [S_LISTEN] = { "listen", "listen", "SKR_LISTEN", "127.0.0.1", false, false },
    [S_ALLOW_NON_LOOPBACK] = { "allow_non_loopback", "allow-non-loopback", "SKR_ALLOW_NON_LOOPBACK",
                               "false", true, false },
    [S_NO_SANDBOX] = { "no_sandbox", "no-sandbox", "SKR_NO_SANDBOX", "false", true, false },
    [S_SOCKET] = { "socket", "socket", "SKR_SOCKET", NULL, false, false },
    [S_MAX_RELEASES] = { "max_releases", "max-releases", "SKR_MAX_RELEASES", "8", false, false },
    [S_LOG_LEVEL] = { "log_level", "loglevel", "LogLevel", "warning", false, false },
    [S_LOG_FILE] = { "log_file", "logfile", "LogFile", NULL, false, false },
    [S_SIDECAR_ARGS] = { "sidecar_args", "base64", "SkrSideCarArgs", NULL, false, true },
    [S_SERVER_TYPE] = { "server_type", "server_type", "ServerType", "http", false, false },
    [S_SNP_DEVICE] = { "snp_device", "snp-device", "SKR_SNP_DEVICE", NULL, false, false },
    [S_SECURITY_CONTEXT_DIR] = { "security_context_dir", "security-context-dir",
                                 "UVM_SECURITY_CONTEXT_DIR", NULL, false, false },
    [S_SECURITY_POLICY] = { "security_policy", NULL, "UVM_SECURITY_POLICY", NULL, false, true },
    [S_HOST_AMD_CERT] = { "host_amd_cert", NULL, "UVM_HOST_AMD_CERTIFICATE", NULL, false, true },
    [S_UVM_REFERENCE_INFO] = { "uvm_reference_info", NULL, "UVM_REFERENCE_INFO", NULL, false,
                               true },
    [S_IMDS_ENDPOINT] = { "imds_endpoint", "imds-endpoint", "SKR_IMDS_ENDPOINT", NULL, false,
                          false },
    [S_CA_FILE] = { "ca_file", "ca-file", "SKR_CA_FILE", NULL, false, false },
    [S_TRUST_ROOT] = { "trust_root", "trust-root", "SKR_TRUST_ROOT", NULL, false, false },
    [S_TRANSFER_KEY_BITS] = { "transfer_key_bits", "transfer-key-bits", "SKR_TRANSFER_KEY_BITS",
                              NULL, false, false },
    [S_POOL_SIZE] = { "pool_size", "pool-size", "SKR_POOL_SIZE", NULL, false, false },
    [S_REUSE_WINDOW] = { "reuse_window_s", "reuse-window", "SKR_REUSE_WINDOW", NULL, false, false },
    [S_RELEASE_ENC] = { "release_enc", "release-enc", "SKR_RELEASE_ENC", NULL, false, false },
    [S_RETRIES] = { "retries", "retries", "SKR_RETRIES", NULL, false, false },
    [S_TIMEOUT_MS] = { "timeout_ms", "timeout-ms", "SKR_TIMEOUT_MS", NULL, false, false },
    [S_CONNECT_TIMEOUT_MS] = { "connect_timeout_ms", "connect-timeout-ms", "SKR_CONNECT_TIMEOUT_MS",
                               NULL, false, false },
    [S_RELEASE_DEADLINE_MS] = { "release_deadline_ms", "release-deadline-ms",
                                "SKR_RELEASE_DEADLINE_MS", NULL, false, false },
    [S_TOKEN_REFRESH] = { "token_refresh_s", "token-refresh", "SKR_TOKEN_REFRESH", NULL, false,
                          false },
    [S_CLIENT_ID] = { "client_id", NULL, NULL, NULL, false, false },
    [S_USER_AGENT] = { "user_agent", NULL, NULL, NULL, false, false },
    [S_CERTCACHE_ENDPOINT_TYPE] = { "certcache_endpoint_type", NULL, NULL, NULL, false, false },
    [S_CERTCACHE_ENDPOINT] = { "certcache_endpoint", NULL, NULL, NULL, false, false },
    [S_CERTCACHE_TEE_TYPE] = { "certcache_tee_type", NULL, NULL, NULL, false, false },
    [S_CERTCACHE_API_VERSION] = { "certcache_api_version", NULL, NULL, NULL, false, false },
    [S_CERTCACHE_CLIENT_ID] = { "certcache_client_id", NULL, NULL, NULL, false, false },
    [S_WI_CLIENT_ID] = { "wi_client_id", NULL, "AZURE_CLIENT_ID", NULL, false, false },
    [S_WI_TENANT_ID] = { "wi_tenant_id", NULL, "AZURE_TENANT_ID", NULL, false, false },
    [S_WI_TOKEN_FILE] = { "wi_token_file", NULL, "AZURE_FEDERATED_TOKEN_FILE", NULL, false, false },
    [S_AUTHORITY_HOST] = { "authority_host", NULL, "AZURE_AUTHORITY_HOST", NULL, false, false },
};

/* SkrSideCarArgs members -> settings. */
static const struct {
    const char *object;
    const char *member;
    enum setting_id id;
} sidecar_members[] = {
    { "certcache", "endpoint_type", S_CERTCACHE_ENDPOINT_TYPE },
    { "certcache", "endpoint", S_CERTCACHE_ENDPOINT },
    { "certcache", "tee_type", S_CERTCACHE_TEE_TYPE },
    { "certcache", "api_version", S_CERTCACHE_API_VERSION },
    { "certcache", "client_id", S_CERTCACHE_CLIENT_ID },
    { "identity", "client_id", S_CLIENT_ID },
    { "maaconfig", "user_agent", S_USER_AGENT },
};

/* Where Confidential AKS puts the security context when nothing else says (SCC info.go). */
static const char aks_context_dir[] = "/opt/confidential-containers/share/kata-containers";

/* What the loader collected; values are copies (argv and environ are not kept). */
struct value {
    char *value; /* NULL: unset */
    char source[112];
};

struct loader {
    struct value v[S_COUNT];
    const char *positional[2];
    size_t n_positional;
    bool check_config;
    bool help;
    bool version;
};

/* Prints "skrd: <fmt>" to stderr; returns SKRD_EXIT_USAGE. */
static int SKR_PRINTF(1, 2) usage_error(const char *fmt, ...)
{
    va_list ap;

    (void)fputs("skrd: ", stderr);
    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
    (void)fputs("\nRun 'skrd --help' for the flags.\n", stderr);
    return SKRD_EXIT_USAGE;
}

static int
set_value(struct value *v, const char *value, size_t len, const char *source)
{
    char *copy = strndup(value, len);

    if (copy == NULL) {
        (void)fputs("skrd: out of memory\n", stderr);
        return SKRD_EXIT_FAIL;
    }
    free(v->value);
    /*
     * copy is owned by *v from here on (loader_done frees it). v is &l->v[i] at an index gcc 12
     * -fanalyzer does not track, and it loses the store: a false "leak of copy" at the return.
     */
    SKR_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
    v->value = copy;
    (void)snprintf(v->source, sizeof(v->source), "%s", source);
    return SKRD_EXIT_OK;
    SKR_ANALYZER_END
}

static void
loader_done(struct loader *l)
{
    for (size_t i = 0; i < S_COUNT; i++) {
        free(l->v[i].value);
        l->v[i].value = NULL;
    }
}

/* Go's strconv.ParseBool spellings. */
static bool
parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
    static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };

    for (size_t i = 0; i < SKR_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *ret = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *ret = false;
            return true;
        }
    }
    return false;
}

/* ---- flags ----------------------------------------------------------------------------------- */

static int
find_flag(const char *name, size_t len)
{
    for (int i = 0; i < S_COUNT; i++) {
        if (settings[i].flag != NULL && strlen(settings[i].flag) == len &&
            strncmp(settings[i].flag, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

static bool
name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncmp(name, want, len) == 0;
}

/* Flags that only select an action, and the reference's flags skrd does not implement. */
static int
action_flag(struct loader *l, const char *arg, const char *name, size_t len, const char *eq)
{
    bool b = true;

    if (eq != NULL && !parse_bool(eq + 1, &b)) {
        return usage_error("invalid boolean value \"%.64s\" for flag %s", eq + 1, arg);
    }
    if (name_is(name, len, "help") || name_is(name, len, "h")) {
        l->help = l->help || b;
    } else if (name_is(name, len, "version")) {
        l->version = l->version || b;
    } else if (name_is(name, len, "check-config")) {
        l->check_config = l->check_config || b;
    } else if (b) {
        /* allowTestingMismatchedTCB: the reference corrupts the TCB for its own tests. */
        return usage_error("flag -%.*s is not supported by skrd", (int)len, name);
    }
    return SKRD_EXIT_OK;
}

static bool
is_action_flag(const char *name, size_t len)
{
    return name_is(name, len, "help") || name_is(name, len, "h") || name_is(name, len, "version") ||
           name_is(name, len, "check-config") || name_is(name, len, "allowTestingMismatchedTCB");
}

/* The reference's key-wrapping mode (-infile -keypath -outfile) is not a daemon feature. */
static bool
is_unsupported_flag(const char *name, size_t len)
{
    return name_is(name, len, "infile") || name_is(name, len, "keypath") ||
           name_is(name, len, "outfile");
}

static int
parse_flags(struct loader *l, int argc, char **argv)
{
    int i = 1;

    for (; i < argc; i++) {
        const char *arg = argv[i];
        const char *name = NULL;
        const char *eq = NULL;
        size_t len = 0;
        int id = -1;
        int rc = 0;
        char src[96];

        if (arg[0] != '-' || arg[1] == '\0') {
            break; /* the first non-flag ends the flags, as in Go */
        }
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        name = arg[1] == '-' ? arg + 2 : arg + 1;
        if (name[0] == '\0' || name[0] == '-' || name[0] == '=') {
            return usage_error("bad flag syntax: %.64s", arg);
        }
        eq = strchr(name, '=');
        len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (is_action_flag(name, len)) {
            rc = action_flag(l, arg, name, len, eq);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (is_unsupported_flag(name, len)) {
            return usage_error("flag -%.*s (the reference's key-wrapping mode) is not supported "
                               "by skrd",
                               (int)len, name);
        }
        id = find_flag(name, len);
        if (id < 0) {
            return usage_error("flag provided but not defined: -%.*s", (int)len,
                               len > 64 ? "(too long)" : name);
        }
        (void)snprintf(src, sizeof(src), "flag %s%s", arg[1] == '-' ? "--" : "-",
                       settings[id].flag);
        if (settings[id].is_bool) {
            bool b = true;

            if (eq != NULL && !parse_bool(eq + 1, &b)) {
                return usage_error("invalid boolean value \"%.64s\" for flag %s", eq + 1, src + 5);
            }
            rc = set_value(&l->v[id], b ? "true" : "false", b ? 4 : 5, src);
        } else if (eq != NULL) {
            rc = set_value(&l->v[id], eq + 1, strlen(eq + 1), src);
        } else {
            if (i + 1 >= argc) {
                return usage_error("flag needs an argument: %s", src + 5);
            }
            i++;
            rc = set_value(&l->v[id], argv[i], strlen(argv[i]), src);
        }
        if (rc != 0) {
            return rc;
        }
    }
    for (; i < argc; i++) {
        if (l->n_positional >= SKR_ARRAY_LEN(l->positional)) {
            return usage_error("unexpected argument \"%.64s\" (at most two: SkrSideCarArgs and "
                               "Port, as skr.sh takes them)",
                               argv[i]);
        }
        l->positional[l->n_positional++] = argv[i];
    }
    return SKRD_EXIT_OK;
}

/* ---- environment and positional arguments ---------------------------------------------------- */

static int
read_env(struct loader *l)
{
    for (int i = 0; i < S_COUNT; i++) {
        const char *e = NULL;
        char src[96];
        int rc = 0;

        if (l->v[i].value != NULL || settings[i].env == NULL) {
            continue;
        }
        e = secure_getenv(settings[i].env);
        if (e == NULL || e[0] == '\0') {
            continue; /* empty means unset, as in skr.sh */
        }
        (void)snprintf(src, sizeof(src), "env %s", settings[i].env);
        rc = set_value(&l->v[i], e, strlen(e), src);
        if (rc != 0) {
            return rc;
        }
    }
    return SKRD_EXIT_OK;
}

/* skr.sh's "$1" (SkrSideCarArgs) and "$2" (Port), used when neither flag nor variable is set. */
static int
read_positional(struct loader *l)
{
    static const enum setting_id ids[] = { S_SIDECAR_ARGS, S_PORT };
    static const char *const srcs[] = { "argument 1", "argument 2" };

    for (size_t i = 0; i < l->n_positional; i++) {
        int rc = 0;

        if (l->v[ids[i]].value != NULL || l->positional[i][0] == '\0') {
            continue;
        }
        rc = set_value(&l->v[ids[i]], l->positional[i], strlen(l->positional[i]), srcs[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return SKRD_EXIT_OK;
}

/* ---- SkrSideCarArgs -------------------------------------------------------------------------- */

/* A member by name: exact, else the first case-insensitive match (Go's encoding/json). */
static json_t *
member(json_t *obj, const char *name)
{
    const char *key = NULL;
    json_t *v = json_object_get(obj, name);

    if (v != NULL) {
        return v;
    }
    json_object_foreach(obj, key, v)
    {
        if (strcasecmp(key, name) == 0) {
            return v;
        }
    }
    return NULL;
}

static int
read_sidecar_args(struct loader *l)
{
    const struct value *a = &l->v[S_SIDECAR_ARGS];
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    _cleanup_(json_decrefp) json_t *doc = NULL;
    json_error_t jerr;
    skr_err e;

    if (a->value == NULL) {
        return SKRD_EXIT_OK;
    }
    skr_buf_init(&raw, SKR_SKRD_MAX_ARGS_BYTES);
    e = skr_b64_decode(skr_span_str(a->value), SKR_B64_STD | SKR_B64_SKIP_WS, &raw);
    if (e != SKR_OK) {
        return usage_error("SkrSideCarArgs (%s): not valid standard base64: %s", a->source,
                           skr_err_msg());
    }
    if (raw.len == 0) {
        return SKRD_EXIT_OK;
    }
    doc = json_loadb((const char *)raw.ptr, raw.len, JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        return usage_error("SkrSideCarArgs (%s): not valid JSON at line %d column %d: %s",
                           a->source, jerr.line, jerr.column, jerr.text);
    }
    if (json_is_null(doc)) {
        return SKRD_EXIT_OK;
    }
    if (!json_is_object(doc)) {
        return usage_error("SkrSideCarArgs (%s): expected a JSON object", a->source);
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(sidecar_members); i++) {
        json_t *obj = member(doc, sidecar_members[i].object);
        json_t *v = NULL;
        char src[112];
        int rc = 0;

        if (obj == NULL || json_is_null(obj)) {
            continue;
        }
        if (!json_is_object(obj)) {
            return usage_error("SkrSideCarArgs (%s): member '%s' must be an object", a->source,
                               sidecar_members[i].object);
        }
        v = member(obj, sidecar_members[i].member);
        if (v == NULL || json_is_null(v)) {
            continue;
        }
        if (!json_is_string(v)) {
            return usage_error("SkrSideCarArgs (%s): member '%s.%s' must be a string", a->source,
                               sidecar_members[i].object, sidecar_members[i].member);
        }
        if (json_string_length(v) == 0) {
            continue; /* Go leaves "" as "not given" */
        }
        if (snprintf(src, sizeof(src), "SkrSideCarArgs %s.%s (%s)", sidecar_members[i].object,
                     sidecar_members[i].member, a->source) < 0) {
            return SKRD_EXIT_FAIL;
        }
        rc = set_value(&l->v[sidecar_members[i].id], json_string_value(v), json_string_length(v),
                       src);
        if (rc != 0) {
            return rc;
        }
    }
    return SKRD_EXIT_OK;
}

/* ---- security context discovery -------------------------------------------------------------- */

static int
byte_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int
has_context_name(const struct dirent *d)
{
    return strstr(d->d_name, "security-context-") != NULL;
}

static bool
is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* PROTOCOLS.md §4.2: the first entry of / containing "security-context-" (in byte order, as Go's
 * os.ReadDir), else the Confidential AKS directory when it exists; else none (the legacy
 * UVM_* variables then carry the context). */
static int
discover_context(struct loader *l)
{
    struct dirent **list = NULL;
    int n = scandir("/", &list, has_context_name, byte_order);
    int rc = SKRD_EXIT_OK;

    if (n > 0) {
        char path[300];

        (void)snprintf(path, sizeof(path), "/%s", list[0]->d_name);
        rc = set_value(&l->v[S_SECURITY_CONTEXT_DIR], path, strlen(path),
                       "discovered (first /security-context-*)");
    }
    for (int i = 0; i < n; i++) {
        free(list[i]);
    }
    free(list);
    if (n <= 0 && is_dir(aks_context_dir)) {
        rc = set_value(&l->v[S_SECURITY_CONTEXT_DIR], aks_context_dir, strlen(aks_context_dir),
                       "discovered (Confidential AKS default)");
    }
    return rc;
}

/* ---- checks of skrd's own settings ----------------------------------------------------------- */

/* "<where>: invalid value ...": where is the flag, variable or member the value came from. */
static int
bad_value(const struct value *v, const char *what, const char *why)
{
    bool named = strncmp(v->source, "flag ", 5) == 0 || strncmp(v->source, "env ", 4) == 0 ||
                 strncmp(v->source, "SkrSideCarArgs", 14) == 0 ||
                 strncmp(v->source, "argument", 8) == 0;

    if (named) {
        return usage_error("%s: invalid value \"%.64s\": %s", v->source, v->value, why);
    }
    return usage_error("%s (%s): invalid value \"%.64s\": %s", what, v->source, v->value, why);
}

static int
check_u64(const struct value *v, const char *what, uint64_t min, uint64_t max, uint64_t *ret)
{
    char why[96];

    if (skr_parse_u64(skr_span_str(v->value), false, min, max, ret) != SKR_OK) {
        (void)snprintf(why, sizeof(why), "expected a decimal number from %llu to %llu",
                       (unsigned long long)min, (unsigned long long)max);
        return bad_value(v, what, why);
    }
    return SKRD_EXIT_OK;
}

static bool
address_is_loopback(const char *s, bool *ret)
{
    struct in_addr a4;
    struct in6_addr a6;
    static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (strcmp(s, "localhost") == 0) {
        *ret = true;
        return true;
    }
    if (inet_pton(AF_INET, s, &a4) == 1) {
        *ret = (ntohl(a4.s_addr) >> 24) == 127;
        return true;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        *ret = IN6_IS_ADDR_LOOPBACK(&a6) ||
               (memcmp(a6.s6_addr, v4_mapped, sizeof(v4_mapped)) == 0 && a6.s6_addr[12] == 127);
        return true;
    }
    return false;
}

static int
check_own(struct loader *l, struct skrd_config *cfg)
{
    struct value *v = l->v;
    uint64_t n = 0;
    int rc = 0;
    struct sockaddr_un sun;

    rc = check_u64(&v[S_PORT], "port", 0, 65535, &n);
    if (rc != 0) {
        return rc;
    }
    cfg->port = (uint16_t)n;
    rc = check_u64(&v[S_MAX_RELEASES], "max-releases", 1, SKR_SKRD_MAX_RELEASES, &n);
    if (rc != 0) {
        return rc;
    }
    cfg->max_releases = (unsigned int)n;
    if (skr_log_level_parse(v[S_LOG_LEVEL].value, &cfg->log_level) != SKR_OK) {
        return bad_value(&v[S_LOG_LEVEL], "loglevel",
                         "expected trace, debug, info, warning, error, fatal or panic");
    }
    if (!parse_bool(v[S_ALLOW_NON_LOOPBACK].value, &cfg->allow_non_loopback)) {
        return bad_value(&v[S_ALLOW_NON_LOOPBACK], "allow-non-loopback",
                         "expected true or false (1 or 0)");
    }
    if (!parse_bool(v[S_NO_SANDBOX].value, &cfg->no_sandbox)) {
        return bad_value(&v[S_NO_SANDBOX], "no-sandbox", "expected true or false (1 or 0)");
    }
    if (strcmp(v[S_SERVER_TYPE].value, "http") != 0) {
        return bad_value(&v[S_SERVER_TYPE], "server_type",
                         "only http is supported (the gRPC key provider is not implemented)");
    }
    if (!address_is_loopback(v[S_LISTEN].value, &cfg->listen_is_loopback)) {
        return bad_value(&v[S_LISTEN], "listen",
                         "expected a numeric IPv4 or IPv6 address or localhost");
    }
    if (!cfg->listen_is_loopback && !cfg->allow_non_loopback) {
        return bad_value(&v[S_LISTEN], "listen",
                         "not a loopback address: key release would be reachable from outside "
                         "the container group (add --allow-non-loopback if that is intended)");
    }
    if (v[S_SOCKET].value != NULL && strlen(v[S_SOCKET].value) >= sizeof(sun.sun_path)) {
        return bad_value(&v[S_SOCKET], "socket", "a Unix socket path is at most 107 bytes");
    }
    if (cfg->port == 0 && v[S_SOCKET].value == NULL) {
        return bad_value(&v[S_PORT], "port", "port 0 means no TCP listener and needs --socket");
    }
    if (v[S_LOG_FILE].value != NULL && v[S_LOG_FILE].value[0] == '\0') {
        return bad_value(&v[S_LOG_FILE], "logfile", "empty path");
    }
    cfg->listen = v[S_LISTEN].value != NULL ? strdup(v[S_LISTEN].value) : NULL;
    cfg->socket_path = v[S_SOCKET].value != NULL ? strdup(v[S_SOCKET].value) : NULL;
    cfg->log_file = v[S_LOG_FILE].value != NULL ? strdup(v[S_LOG_FILE].value) : NULL;
    if (cfg->listen == NULL || (v[S_SOCKET].value != NULL && cfg->socket_path == NULL) ||
        (v[S_LOG_FILE].value != NULL && cfg->log_file == NULL)) {
        (void)fputs("skrd: out of memory\n", stderr);
        return SKRD_EXIT_FAIL;
    }
    return SKRD_EXIT_OK;
}

/* Files the library reads later: a missing one is a configuration error now, naming its flag. */
static int
check_paths(const struct loader *l)
{
    static const enum setting_id files[] = { S_CA_FILE, S_TRUST_ROOT };
    const struct value *dir = &l->v[S_SECURITY_CONTEXT_DIR];

    for (size_t i = 0; i < SKR_ARRAY_LEN(files); i++) {
        const struct value *v = &l->v[files[i]];
        struct stat st;

        if (v->value != NULL && (stat(v->value, &st) != 0 || !S_ISREG(st.st_mode))) {
            return bad_value(v, settings[files[i]].flag, "not a readable file");
        }
    }
    if (dir->value != NULL && !is_dir(dir->value)) {
        return bad_value(dir, "security-context-dir", "not a directory");
    }
    return SKRD_EXIT_OK;
}

static int
build_lib_config(const struct loader *l, struct skrd_config *cfg)
{
    if (skr_config_new(&cfg->lib) != SKR_OK) {
        (void)fputs("skrd: out of memory\n", stderr);
        return SKRD_EXIT_FAIL;
    }
    for (int i = S_LIB_FIRST; i < S_COUNT; i++) {
        const struct value *v = &l->v[i];

        if (v->value == NULL) {
            continue;
        }
        if (skr_config_set(cfg->lib, settings[i].name, v->value) != SKR_OK) {
            const char *what = settings[i].flag != NULL ? settings[i].flag : settings[i].name;

            if (settings[i].summarize) {
                return usage_error("%s: %s", v->source, skr_err_msg());
            }
            return bad_value(v, what, skr_err_msg());
        }
    }
    return SKRD_EXIT_OK;
}

/* ---- the effective configuration ------------------------------------------------------------- */

static skr_err
add_setting(json_t *obj, const struct setting *s, const struct value *v)
{
    json_t *entry = NULL;

    if (v->value == NULL) {
        const char *why = s - settings < S_LIB_FIRST ? "unset" : "default (libskr)";

        if (s == &settings[S_SECURITY_CONTEXT_DIR]) {
            why = "not found (the UVM_* variables, if any, are used)";
        }
        entry = json_pack("{s:n,s:s}", "value", "source", why);
    } else if (s->summarize) {
        entry = json_pack("{s:I,s:s}", "bytes", (json_int_t)strlen(v->value), "source", v->source);
    } else {
        entry = json_pack("{s:s%,s:s}", "value", v->value, strlen(v->value), "source", v->source);
    }
    ENSURE(entry != NULL, SKR_E_MALFORMED, "a setting is not valid UTF-8");
    return skr_json_set(obj, s->name, entry);
}

static skr_err
build_effective(const struct loader *l, struct skrd_config *cfg)
{
    _cleanup_(json_decrefp) json_t *root = json_object();
    json_t *listeners = json_array();
    json_t *all = json_object();
    char tcp[128];

    ENSURE(root != NULL && listeners != NULL && all != NULL, SKR_E_NOMEM, "out of memory");
    TRY(skr_json_set(root, "version", json_string(SKR_VERSION)));
    TRY(skr_json_set(root, "listeners", listeners));
    TRY(skr_json_set(root, "settings", all));
    if (cfg->port != 0) {
        bool v6 = strchr(cfg->listen, ':') != NULL;

        (void)snprintf(tcp, sizeof(tcp), "http://%s%s%s:%u", v6 ? "[" : "", cfg->listen,
                       v6 ? "]" : "", (unsigned int)cfg->port);
        ENSURE(json_array_append_new(listeners, json_string(tcp)) == 0, SKR_E_NOMEM,
               "out of memory");
    }
    if (cfg->socket_path != NULL) {
        json_t *s = json_pack("s+", "unix:", cfg->socket_path);

        ENSURE(s != NULL && json_array_append_new(listeners, s) == 0, SKR_E_MALFORMED,
               "socket path is not valid UTF-8");
    }
    for (int i = 0; i < S_COUNT; i++) {
        TRY(add_setting(all, &settings[i], &l->v[i]));
    }
    cfg->effective = TAKE_PTR(root);
    return SKR_OK;
}

/* ---- entry points ---------------------------------------------------------------------------- */

static int
load(struct loader *l, struct skrd_config *cfg, int argc, char **argv)
{
    int rc = parse_flags(l, argc, argv);

    if (rc != 0) {
        return rc;
    }
    if (l->help) {
        cfg->action = SKRD_HELP;
        return SKRD_EXIT_OK;
    }
    if (l->version) {
        cfg->action = SKRD_VERSION;
        return SKRD_EXIT_OK;
    }
    cfg->action = l->check_config ? SKRD_CHECK_CONFIG : SKRD_RUN;
    rc = read_env(l);
    if (rc == 0) {
        rc = read_positional(l);
    }
    if (rc == 0) {
        rc = read_sidecar_args(l);
    }
    if (rc == 0 && l->v[S_SECURITY_CONTEXT_DIR].value == NULL) {
        rc = discover_context(l);
    }
    /* skrd's own defaults become values (their source stays "default"). */
    for (int i = 0; rc == 0 && i < S_LIB_FIRST; i++) {
        if (l->v[i].value == NULL && settings[i].deflt != NULL) {
            rc = set_value(&l->v[i], settings[i].deflt, strlen(settings[i].deflt), "default");
        }
    }
    if (rc == 0) {
        rc = check_own(l, cfg);
    }
    if (rc == 0) {
        rc = check_paths(l);
    }
    if (rc == 0) {
        rc = build_lib_config(l, cfg);
    }
    if (rc == 0 && build_effective(l, cfg) != SKR_OK) {
        (void)fprintf(stderr, "skrd: %s\n", skr_err_msg());
        rc = SKRD_EXIT_USAGE;
    }
    return rc;
}

int
skrd_config_load(struct skrd_config *cfg, int argc, char **argv)
{
    struct loader l = { 0 };
    int rc = 0;

    *cfg = (struct skrd_config){ .action = SKRD_RUN, .log_level = SKR_LOG_WARN };
    rc = load(&l, cfg, argc, argv);
    loader_done(&l);
    return rc;
}

void
skrd_config_done(struct skrd_config *cfg)
{
    free(cfg->listen);
    free(cfg->socket_path);
    free(cfg->log_file);
    skr_config_free(cfg->lib);
    json_decref(cfg->effective);
    *cfg = (struct skrd_config){ 0 };
}
