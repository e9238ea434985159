/*
 * cmd_key.c - `skr key import|create|get|policy`: keys with a release policy in Azure Key Vault
 * or Managed HSM (PROTOCOLS.md §7.5), configured by the reference's importkeyconfig.json or
 * our richer form (lib/keyconfig.h), the reference's derived symmetric key (lib/kdf.h), and the
 * decoded release policy of a key, shown or replaced.
 *
 * Nothing reaches the vault before the whole request is valid: configuration, policy (through
 * lib/policy.c), key material and the --derive-out target are checked first; every bad input
 * exits 2 with the file and the member named.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure.h"
#include "b64.h"
#include "cli.h"
#include "cli_client.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "kdf.h"
#include "keyconfig.h"
#include "policy.h"
#include "release_int.h"
#include "skr_limits.h"

static const char usage[] =
    "usage: skr key import CONFIG.json [--key-file FILE] [--derive-out FILE [--force]]\n"
    "                      [--akv ENDPOINT] [--name NAME] [--api-version V] [--dry-run]\n"
    "                      [CLIENT OPTIONS]\n"
    "       skr key create CONFIG.json [--akv ENDPOINT] [--name NAME] [--api-version V]\n"
    "                      [--dry-run] [CLIENT OPTIONS]\n"
    "       skr key get NAME --akv ENDPOINT [--version V] [--format text|json]\n"
    "                      [--api-version V] [CLIENT OPTIONS]\n"
    "       skr key policy NAME --akv ENDPOINT [--version V] [--set FILE [--immutable]]\n"
    "                      [--dry-run] [--api-version V] [CLIENT OPTIONS]\n"
    "\n"
    "import: makes an HSM key (exportable, with the release policy of CONFIG.json, unless\n"
    "        key.exportable is false) and imports it (PUT /keys/NAME). CONFIG.json is the\n"
    "        reference sidecar's importkeyconfig.json (key.kid/kty/key_ops/authority/akv,\n"
    "        key_derivation, claims, identity) or our richer form (docs/operator.md). The key\n"
    "        is generated (RSA-HSM 2048/3072/4096, EC-HSM P-256/P-384/P-521, oct-HSM\n"
    "        128/192/256) unless --key-file gives it. Prints the key id and the release policy\n"
    "        (compact JSON) on standard output. The private key is never written to disk.\n"
    "create: the vault generates the key (POST /keys/NAME/create) with the same policy.\n"
    "get:    shows the key (public part, attributes) and its decoded release policy.\n"
    "policy: prints the key's decoded release policy, or replaces it with --set (PATCH).\n"
    "\n"
    "  --key-file FILE     import this private key: PEM (PKCS#8, PKCS#1, SEC1), DER, a JWK,\n"
    "                      hex text (oct) or 16/24/32 raw bytes (oct); the format is detected\n"
    "  --derive-out FILE   (import, RSA-HSM) write the 32-byte HKDF-SHA256 key the reference\n"
    "                      derives from the private exponent (salt and label from\n"
    "                      key_derivation; its keyfile.bin), mode 0600, before the import; it\n"
    "                      is removed again when the import fails\n"
    "  --force             replace an existing --derive-out FILE\n"
    "  --akv ENDPOINT      the vault (host or https URL; import/create: overrides key.akv)\n"
    "  --name NAME         the key name (overrides key.kid)\n"
    "  --api-version V     Key Vault api-version (default: key.akv.api_version, else 7.4)\n"
    "  --dry-run           print the request ({\"method\",\"url\",\"body\"}) with private members\n"
    "                      as \"<redacted>\" and send nothing\n"
    "  --version V         (get, policy) a key version (default: the newest)\n"
    "  --format text|json  (get) text, or the key bundle with release_policy.policy decoded\n"
    "  --set FILE          (policy) replace the release policy with FILE (policy JSON,\n"
    "                      checked before it is sent); for key policy this replaces the\n"
    "                      client flag --set NAME=VALUE below\n"
    "  --immutable         (policy --set) make the new policy immutable (cannot be undone)\n"
    "  --help              this text\n"
    "CLIENT OPTIONS:\n"
    "%s"
    "  The vault token: --token, --token-file, AZURE_ACCESS_TOKEN, else a non-empty\n"
    "  key.akv.bearer_token of CONFIG.json, else the identity; identity.client_id of\n"
    "  CONFIG.json is the managed identity's client id unless --client-id is given.\n"
    "Exit: 0 ok; 1 no release policy (policy); 2 bad usage or input, or the vault refused the\n"
    "request's content (HTTP 400, e.g. AKV.SKR.1020 immutable policy); 3 the vault or the\n"
    "identity failed (401, 403: missing keys/import, keys/create, keys/get or keys/update\n"
    "permission, 404, 5xx, network).\n";

static const char *const get_formats[] = { "text", "json", NULL };

enum key_cmd {
    KEY_IMPORT = 0,
    KEY_CREATE,
    KEY_GET,
    KEY_POLICY,
};

enum key_opt {
    OPT_KEY_FILE = 0x2000,
    OPT_DERIVE_OUT,
    OPT_FORCE,
    OPT_AKV,
    OPT_NAME,
    OPT_API_VERSION,
    OPT_DRY_RUN,
    OPT_VERSION,
    OPT_FORMAT,
    OPT_SET_POLICY,
    OPT_IMMUTABLE,
};

struct key_args {
    enum key_cmd cmd;
    const char *sub;
    const char *arg; /* CONFIG.json or NAME */
    const char *key_file;
    const char *derive_out;
    bool force;
    const char *akv;
    const char *name;
    const char *api_version;
    bool dry_run;
    const char *version;
    const char *format;
    const char *set_file;
    bool immutable;
    bool client_id_given;
    struct cli_client_opts o;
};

/* A usage error (the full usage text is long: `skr key --help` prints it). */
#define usage_error(...) cli_usage_error("see skr key --help\n", __VA_ARGS__)

static void
print_usage(FILE *f)
{
    (void)fprintf(f, usage, cli_client_help);
}

/* An unknown option of subcommand ctx (its name). */
static int
bad_option(const void *ctx)
{
    return usage_error("%s: bad option (see skr key --help)", (const char *)ctx);
}

/* ---- vault calls and their errors ------------------------------------------------------- */

static const char *
permission_for(enum key_cmd cmd, bool set)
{
    switch (cmd) {
    case KEY_IMPORT:
        return "keys/import";
    case KEY_CREATE:
        return "keys/create";
    default:
        return set ? "keys/update" : "keys/get";
    }
}

/* Prints a failed vault call with its upstream detail and a hint; returns the exit code:
 * 2 when the vault refused the request's content (400), else 3. */
static int
vault_fail(skr_err e, const struct key_args *a, const struct skr_upstream *up)
{
    (void)fprintf(stderr, "skr: key %s: %s", a->sub, skr_err_msg());
    if (up->request_id[0] != '\0') {
        (void)fprintf(stderr, " [request id %s]", up->request_id);
    }
    (void)fputc('\n', stderr);
    if (up->status == 401) {
        (void)fprintf(
            stderr, "hint: the vault refused the token: it must be an Entra token for %s%s%s\n",
            up->challenge_resource[0] != '\0' ? up->challenge_resource : "the vault's resource",
            up->challenge_resource[0] != '\0' ? "" : " (https://vault.azure.net or ",
            up->challenge_resource[0] != '\0' ? "" : "https://managedhsm.azure.net)");
        return SKR_EXIT_UPSTREAM;
    }
    if (up->status == 403) {
        (void)fprintf(stderr,
                      "hint: the identity lacks the %s permission on this vault (an access "
                      "policy, or an RBAC role such as Key Vault Crypto Officer / Managed HSM "
                      "Crypto Officer)\n",
                      permission_for(a->cmd, a->set_file != NULL));
        return SKR_EXIT_UPSTREAM;
    }
    if (up->status == 404) {
        (void)fputs("hint: no such key (or version) in this vault: check the name and --akv\n",
                    stderr);
        return SKR_EXIT_UPSTREAM;
    }
    if (up->status == 400) {
        if (strstr(up->message, "AKV.SKR.1020") != NULL) {
            (void)fputs("hint: the key's release policy is immutable; import a new key (or a new "
                        "name) instead\n",
                        stderr);
        }
        return SKR_EXIT_USAGE;
    }
    (void)e;
    return SKR_EXIT_UPSTREAM;
}

/* The client (snp_device none, no transfer-key pool) and the vault token. */
static int
vault_session(struct key_args *a, const struct skr_keyconfig *kc, const char *akv,
              skr_client **ret_c, struct skr_secret **ret_tok)
{
    const char *env = secure_getenv("AZURE_ACCESS_TOKEN");
    int rc;

    if (kc != NULL && kc->client_id != NULL && !a->client_id_given) {
        rc = cli_client_opt(&a->o, CLI_OPT_CLIENT_ID, kc->client_id);
        if (rc != SKR_EXIT_OK) {
            return rc;
        }
    }
    if (skr_config_set(a->o.cfg, "pool_size", "0") != SKR_OK) {
        return cli_fail(SKR_E_INTERNAL, "config");
    }
    rc = cli_client_new(&a->o, "client", ret_c);
    if (rc != SKR_EXIT_OK) {
        return rc;
    }
    if (a->o.token == NULL && a->o.token_file == NULL && (env == NULL || env[0] == '\0') &&
        kc != NULL && kc->bearer_token != NULL) {
        if (skr_secret_from(skr_secret_span(kc->bearer_token), ret_tok) != SKR_OK) {
            return cli_fail(SKR_E_NOMEM, "token");
        }
        return SKR_EXIT_OK;
    }
    return cli_bearer(&a->o, *ret_c, skr_akv_resource_for(akv), ret_tok);
}

static const char *
api_version_of(const struct key_args *a, const struct skr_keyconfig *kc)
{
    if (a->api_version != NULL) {
        return a->api_version;
    }
    if (kc->api_version[0] != '\0') {
        return kc->api_version;
    }
    return NULL;
}

/* {base}/keys/{name}{suffix}?api-version=V for --dry-run. */
static skr_err
request_url(const char *akv, const char *name, const char *suffix, const char *api,
            struct skr_buf *out)
{
    TRY(skr_endpoint_base(akv, out, NULL));
    TRY(skr_buf_printf(out, "/keys/%s%s?api-version=%s", name, suffix, api != NULL ? api : "7.4"));
    return skr_buf_append_byte(out, '\0');
}

static int
print_dry_run(const char *method, const char *akv, const char *name, const char *suffix,
              const char *api, struct skr_span body)
{
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(json_decrefp) json_t *b = NULL;
    json_t *out = NULL;
    skr_err e;

    skr_buf_init(&url, 4096);
    e = request_url(akv, name, suffix, api, &url);
    if (e != SKR_OK) {
        return cli_fail(e, "--akv");
    }
    e = skr_json_parse(body, SKR_MAX_HTTP_BODY_BYTES, &b);
    if (e != SKR_OK) {
        return cli_fail(e, "request body");
    }
    out = json_pack("{s:s, s:s, s:O}", "method", method, "url", (const char *)url.ptr, "body", b);
    if (out == NULL) {
        return cli_fail(SKR_E_NOMEM, "dry run");
    }
    e = cli_print_json(out);
    return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, "output");
}

/* The decoded release policy of a key bundle (new reference), or NULL when it has none. */
static skr_err
decoded_policy(json_t *bundle, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    json_t *rp = json_object_get(bundle, "release_policy");
    const char *data = NULL;

    *ret = NULL;
    if (rp == NULL || json_is_null(rp)) {
        return SKR_OK;
    }
    ENSURE(json_is_object(rp), SKR_E_MALFORMED, "AKV key bundle: release_policy is not an object");
    TRY(skr_json_get_str(rp, "data", &data));
    skr_buf_init(&text, SKR_MAX_POLICY_BYTES);
    if (skr_b64_decode(skr_span_str(data), SKR_B64_ANY, &text) != SKR_OK) {
        FAIL(SKR_E_MALFORMED, "AKV key bundle: release_policy.data is not base64url");
    }
    return skr_json_parse(skr_buf_span(&text), SKR_MAX_POLICY_BYTES, ret);
}

/* ---- import / create ------------------------------------------------------------------------ */

/* The policy file a configuration names, relative to the configuration's directory. */
static int
load_policy_file(const char *config_path, struct skr_keyconfig *kc)
{
    _cleanup_(skr_buf_donep) struct skr_buf path = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    const char *slash = strrchr(config_path, '/');
    skr_err e;

    skr_buf_init(&path, 8192);
    if (kc->policy_file[0] != '/' && slash != NULL) {
        e = skr_buf_append(&path, config_path, (size_t)(slash - config_path) + 1);
        if (e != SKR_OK) {
            return cli_fail(e, config_path);
        }
    }
    e = skr_buf_append_str(&path, kc->policy_file);
    if (e == SKR_OK) {
        e = skr_buf_append_byte(&path, '\0');
    }
    if (e != SKR_OK) {
        return cli_fail(e, config_path);
    }
    e = cli_read((const char *)path.ptr, &text);
    if (e == SKR_OK) {
        e = skr_keyconfig_set_policy_text(kc, skr_buf_span(&text));
    }
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: %s: release_policy_file %s: %s\n", config_path,
                      (const char *)path.ptr, skr_err_msg());
        return cli_exit_code(e);
    }
    return SKR_EXIT_OK;
}

/* --derive-out: refuse an existing file without --force, and an unwritable directory. */
static int
check_derive_target(const char *path, bool force)
{
    char dir[4096];
    char *slash;
    struct stat st;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        (void)fprintf(stderr, "skr: --derive-out: the path is longer than %zu bytes\n",
                      sizeof(dir) - 1);
        return SKR_EXIT_USAGE;
    }
    if (lstat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            (void)fprintf(stderr, "skr: --derive-out %s: is a directory (expected a file name)\n",
                          path);
            return SKR_EXIT_USAGE;
        }
        if (!force) {
            (void)fprintf(stderr,
                          "skr: --derive-out %s: the file exists (give --force to replace it)\n",
                          path);
            return SKR_EXIT_USAGE;
        }
    } else if (errno != ENOENT) {
        (void)fprintf(stderr, "skr: --derive-out %s: %s\n", path, strerror(errno));
        return SKR_EXIT_USAGE;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    if (access(dir, W_OK | X_OK) != 0) {
        (void)fprintf(stderr, "skr: --derive-out %s: cannot create files in directory %s (%s)\n",
                      path, dir, strerror(errno));
        return SKR_EXIT_USAGE;
    }
    return SKR_EXIT_OK;
}

/* The vault's key has the public part we sent (RSA n/e, EC crv/x/y). */
static bool
public_matches(const json_t *mine, const json_t *theirs)
{
    static const char *const members[] = { "n", "e", "crv", "x", "y" };

    for (size_t i = 0; i < SKR_ARRAY_LEN(members); i++) {
        json_t *v = json_object_get(mine, members[i]);

        if (v != NULL && !json_equal(v, json_object_get(theirs, members[i]))) {
            return false;
        }
    }
    return true;
}

/* The configuration named by a (with --name and --akv applied), or NULL with *ret_rc the exit
 * code. */
static struct skr_keyconfig *
load_config(struct key_args *a, int *ret_rc)
{
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_keyconfig_freep) struct skr_keyconfig *kc = NULL;
    skr_err e;

    e = cli_read(a->arg, &text);
    if (e == SKR_OK) {
        e = skr_keyconfig_parse(skr_buf_span(&text), &kc);
    }
    if (e != SKR_OK) {
        *ret_rc = cli_fail(e, a->arg);
        return NULL;
    }
    if (kc->policy_file != NULL) {
        *ret_rc = load_policy_file(a->arg, kc);
        if (*ret_rc != SKR_EXIT_OK) {
            return NULL;
        }
    }
    if (a->name != NULL) {
        (void)snprintf(kc->name, sizeof(kc->name), "%s", a->name);
    }
    if (kc->name[0] == '\0') {
        (void)fprintf(stderr,
                      "skr: %s: key.kid: missing or empty (expected the key name; or "
                      "give --name)\n",
                      a->arg);
        *ret_rc = SKR_EXIT_USAGE;
        return NULL;
    }
    if (a->akv != NULL) {
        free(kc->akv_endpoint);
        /* kc owns the copy (skr_keyconfig_free frees it). gcc 12 -fanalyzer does not keep this
         * store into a config that skr_keyconfig_parse (another file) allocated, and reports a
         * false leak at the check. */
        SKR_ANALYZER_IGNORE("-Wanalyzer-malloc-leak")
        kc->akv_endpoint = strdup(a->akv);
        if (kc->akv_endpoint == NULL) {
            *ret_rc = cli_fail(SKR_E_NOMEM, "--akv");
            return NULL;
        }
        SKR_ANALYZER_END
    }
    if (kc->akv_endpoint == NULL) {
        (void)fprintf(stderr,
                      "skr: %s: key.akv.endpoint: missing (expected the vault's host "
                      "name; or give --akv)\n",
                      a->arg);
        *ret_rc = SKR_EXIT_USAGE;
        return NULL;
    }
    skr_buf_init(&url, 4096);
    e = request_url(kc->akv_endpoint, kc->name, "", api_version_of(a, kc), &url);
    if (e != SKR_OK) {
        *ret_rc = cli_fail(e, a->akv != NULL ? "--akv" : a->arg);
        return NULL;
    }
    *ret_rc = SKR_EXIT_OK;
    return TAKE_PTR(kc);
}

static int
load_key_material(const struct key_args *a, const struct skr_keyconfig *kc,
                  struct skr_keymaterial *km)
{
    _cleanup_(skr_buf_donep) struct skr_buf data = { 0 };
    skr_err e;

    if (a->key_file == NULL) {
        e = skr_keymaterial_generate(kc, km);
        return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, "key generation");
    }
    skr_buf_init(&data, SKR_MAX_SECRET_BYTES);
    e = skr_read_file(a->key_file, &data);
    if (e == SKR_OK) {
        e = skr_keymaterial_load(skr_buf_span(&data), km);
    }
    if (e != SKR_OK) {
        return cli_fail(e, a->key_file);
    }
    e = skr_keymaterial_check(kc, km);
    if (e != SKR_OK) {
        (void)fprintf(stderr, "skr: %s: %s (in %s)\n", a->key_file, skr_err_msg(), a->arg);
        return cli_exit_code(e);
    }
    return SKR_EXIT_OK;
}

static int
print_result(const struct key_args *a, const struct skr_keyconfig *kc,
             const struct skr_keymaterial *km, json_t *bundle)
{
    _cleanup_(json_decrefp) json_t *mine = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf pol = { 0 };
    json_t *key = json_object_get(bundle, "key");
    const char *kid = json_string_value(json_object_get(key, "kid"));
    skr_err e;

    if (kid == NULL) {
        (void)fprintf(stderr, "skr: key %s: the vault's answer has no key.kid\n", a->sub);
        return SKR_EXIT_UPSTREAM;
    }
    if (km != NULL) {
        e = skr_keymaterial_public_jwk(km, &mine);
        if (e != SKR_OK) {
            return cli_fail(e, "key");
        }
        if (mine != NULL && !public_matches(mine, key)) {
            (void)fprintf(stderr,
                          "skr: key %s: the vault's key %s does not have the public part of the "
                          "key that was sent\n",
                          a->sub, kid);
            return SKR_EXIT_UPSTREAM;
        }
    }
    skr_buf_init(&pol, SKR_MAX_POLICY_BYTES + 2);
    if (kc->policy != NULL) {
        e = skr_json_dump(kc->policy, JSON_COMPACT | JSON_PRESERVE_ORDER, &pol);
        if (e != SKR_OK) {
            return cli_fail(e, "output");
        }
    }
    (void)printf("%s\n", kid);
    if (pol.len > 0) {
        (void)printf("%.*s\n", (int)pol.len, (const char *)pol.ptr);
    }
    if (fflush(stdout) != 0) {
        return cli_fail(SKR_E_IO, "output");
    }
    return SKR_EXIT_OK;
}

static int
key_new(struct key_args *a)
{
    _cleanup_(skr_keyconfig_freep) struct skr_keyconfig *kc = NULL;
    _cleanup_(skr_keymaterial_donep) struct skr_keymaterial km = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *derived = NULL;
    _cleanup_(skr_secret_freep) struct skr_secret *tok = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf body = { 0 };
    _cleanup_(json_decrefp) json_t *bundle = NULL;
    struct skr_upstream up = { 0 };
    skr_client *c = NULL;
    bool import = a->cmd == KEY_IMPORT;
    const char *api;
    bool wrote = false;
    skr_err e;
    int rc;

    kc = load_config(a, &rc);
    if (kc == NULL) {
        return rc;
    }
    api = api_version_of(a, kc);
    if (import) {
        if (a->derive_out != NULL && kc->type != SKR_KEYTYPE_RSA) {
            (void)fprintf(stderr, "skr: --derive-out: only for RSA-HSM keys (%s has key.kty %s)\n",
                          a->arg, kc->kty);
            return SKR_EXIT_USAGE;
        }
        rc = load_key_material(a, kc, &km);
        if (rc != SKR_EXIT_OK) {
            return rc;
        }
        if (a->derive_out != NULL) {
            if (!a->dry_run) {
                rc = check_derive_target(a->derive_out, a->force);
                if (rc != SKR_EXIT_OK) {
                    return rc;
                }
            }
            e = skr_kdf_rsa_derive(km.pkey, skr_buf_span(&kc->salt), kc->label, &derived);
            if (e != SKR_OK) {
                return cli_fail(e, "--derive-out");
            }
        }
    }
    skr_buf_init(&body, SKR_MAX_HTTP_BODY_BYTES);
    e = import ? skr_keyconfig_import_body(kc, &km, a->dry_run, &body)
               : skr_keyconfig_create_body(kc, &body);
    if (e != SKR_OK) {
        return cli_fail(e, a->arg);
    }
    if (a->dry_run) {
        if (a->derive_out != NULL) {
            (void)fprintf(stderr, "skr: dry run: %s not written\n", a->derive_out);
        }
        return print_dry_run(import ? "PUT" : "POST", kc->akv_endpoint, kc->name,
                             import ? "" : "/create", api, skr_buf_span(&body));
    }
    rc = vault_session(a, kc, kc->akv_endpoint, &c, &tok);
    if (rc != SKR_EXIT_OK) {
        skr_client_free(c);
        return rc;
    }
    if (derived != NULL) {
        e = skr_write_file_atomic(a->derive_out, skr_secret_span(derived), 0600);
        if (e != SKR_OK) {
            skr_client_free(c);
            return cli_fail(e, a->derive_out);
        }
        wrote = true;
    }
    e = import ? skr_akv_import_key(c->http, kc->akv_endpoint, kc->name, api,
                                    (const char *)tok->ptr, skr_buf_span(&body), &bundle, &up)
               : skr_akv_create_key(c->http, kc->akv_endpoint, kc->name, api,
                                    (const char *)tok->ptr, skr_buf_span(&body), &bundle, &up);
    skr_client_free(c);
    if (e != SKR_OK) {
        rc = vault_fail(e, a, &up);
        if (wrote) {
            (void)unlink(a->derive_out);
            (void)fprintf(stderr, "skr: %s removed (the key was not imported)\n", a->derive_out);
        }
        return rc;
    }
    rc = print_result(a, kc, import ? &km : NULL, bundle);
    if (rc == SKR_EXIT_OK) {
        (void)fprintf(stderr, "skr: %s %s key (%s, %s%s)\n", import ? "imported" : "created",
                      kc->kty, import ? km.format : "generated by the vault",
                      kc->exportable ? "exportable" : "not exportable",
                      kc->immutable ? ", immutable release policy" : "");
        if (wrote) {
            _cleanup_(skr_buf_donep) struct skr_buf salt = { 0 };

            skr_buf_init(&salt, 2 * SKR_MAX_KDF_SALT_BYTES + 1);
            if (skr_hex_encode(skr_buf_span(&kc->salt), false, &salt) == SKR_OK &&
                skr_buf_append_byte(&salt, '\0') == SKR_OK) {
                (void)fprintf(stderr,
                              "skr: derived key written to %s (HKDF-SHA256, salt '%s', label "
                              "'%s')\n",
                              a->derive_out, (const char *)salt.ptr,
                              kc->label != NULL ? kc->label : SKR_KDF_DEFAULT_LABEL);
            }
        }
    }
    return rc;
}

/* ---- get / policy --------------------------------------------------------------------------- */

static skr_err
kid_of(const struct key_args *a, struct skr_buf *out)
{
    if (a->version != NULL) {
        TRY(skr_buf_printf(out, "%s/%s", a->arg, a->version));
    } else {
        TRY(skr_buf_append_str(out, a->arg));
    }
    return skr_buf_append_byte(out, '\0');
}

static void
print_member(const char *label, json_t *v)
{
    if (json_is_string(v)) {
        (void)printf("%-12s %s\n", label, json_string_value(v));
    } else if (v != NULL) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

        (void)printf("%-12s %s\n", label, s != NULL ? s : "?");
        free(s);
    }
}

static skr_err
print_get_text(json_t *bundle, json_t *policy)
{
    json_t *key = json_object_get(bundle, "key");
    json_t *attrs = json_object_get(bundle, "attributes");
    json_t *rp = json_object_get(bundle, "release_policy");
    json_t *n = json_object_get(key, "n");
    const char *k;
    json_t *v;

    print_member("kid:", json_object_get(key, "kid"));
    print_member("kty:", json_object_get(key, "kty"));
    print_member("key_ops:", json_object_get(key, "key_ops"));
    if (json_is_string(n)) {
        _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };

        skr_buf_init(&raw, 4096);
        if (skr_b64_decode(skr_span_str(json_string_value(n)), SKR_B64_URL, &raw) == SKR_OK) {
            (void)printf("%-12s %zu bits\n", "modulus:", raw.len * 8);
        }
        print_member("n:", n);
        print_member("e:", json_object_get(key, "e"));
    }
    print_member("crv:", json_object_get(key, "crv"));
    print_member("x:", json_object_get(key, "x"));
    print_member("y:", json_object_get(key, "y"));
    json_object_foreach(attrs, k, v)
    {
        char label[48];

        (void)snprintf(label, sizeof(label), "%.40s:", k);
        print_member(label, v);
    }
    if (policy == NULL) {
        (void)printf("release policy: none\n");
        return SKR_OK;
    }
    (void)printf("release policy (contentType %s, immutable %s):\n",
                 json_string_value(json_object_get(rp, "contentType")) != NULL
                     ? json_string_value(json_object_get(rp, "contentType"))
                     : "?",
                 json_is_true(json_object_get(rp, "immutable")) ? "true" : "false");
    return cli_print_json(json_incref(policy));
}

static int
key_show(struct key_args *a)
{
    _cleanup_(skr_buf_donep) struct skr_buf kid = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf body = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *tok = NULL;
    _cleanup_(json_decrefp) json_t *bundle = NULL;
    _cleanup_(json_decrefp) json_t *policy = NULL;
    _cleanup_(json_decrefp) json_t *newpol = NULL;
    struct skr_upstream up = { 0 };
    skr_client *c = NULL;
    skr_err e;
    int rc;

    skr_buf_init(&kid, 1024);
    e = kid_of(a, &kid);
    if (e == SKR_OK) {
        _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };

        skr_buf_init(&url, 4096);
        e = request_url(a->akv, (const char *)kid.ptr, "", a->api_version, &url);
    }
    if (e != SKR_OK) {
        return cli_fail(e, "--akv / NAME");
    }
    if (a->set_file != NULL) {
        _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
        _cleanup_(json_decrefp) json_t *doc = NULL;
        json_t *rp = NULL;

        e = cli_read(a->set_file, &text);
        if (e == SKR_OK) {
            e = skr_json_parse_object(skr_buf_span(&text), SKR_MAX_POLICY_BYTES, "policy", &doc);
        }
        if (e == SKR_OK) {
            e = skr_keyconfig_check_policy(doc, "policy");
        }
        if (e == SKR_OK) {
            e = skr_release_policy_request(doc, a->immutable, &rp);
        }
        if (e == SKR_OK) {
            newpol = json_pack("{s:o}", "release_policy", rp);
            e = newpol != NULL ? SKR_OK : SKR_E_NOMEM;
        }
        skr_buf_init(&body, SKR_MAX_HTTP_BODY_BYTES);
        if (e == SKR_OK) {
            e = skr_json_dump(newpol, JSON_COMPACT | JSON_PRESERVE_ORDER, &body);
        }
        if (e != SKR_OK) {
            return cli_fail(e, a->set_file);
        }
        if (a->dry_run) {
            return print_dry_run("PATCH", a->akv, (const char *)kid.ptr, "", a->api_version,
                                 skr_buf_span(&body));
        }
    }
    rc = vault_session(a, NULL, a->akv, &c, &tok);
    if (rc != SKR_EXIT_OK) {
        skr_client_free(c);
        return rc;
    }
    if (a->set_file != NULL) {
        e = skr_akv_update_key(c->http, a->akv, (const char *)kid.ptr, a->api_version,
                               (const char *)tok->ptr, skr_buf_span(&body), &bundle, &up);
    } else {
        e = skr_akv_get_key(c->http, a->akv, (const char *)kid.ptr, a->api_version,
                            (const char *)tok->ptr, &bundle, &up);
    }
    skr_client_free(c);
    if (e != SKR_OK) {
        return vault_fail(e, a, &up);
    }
    e = decoded_policy(bundle, &policy);
    if (e != SKR_OK) {
        return cli_fail(e, "key bundle");
    }
    if (a->cmd == KEY_POLICY) {
        if (policy == NULL) {
            (void)fprintf(stderr, "skr: key %s has no release policy (it is not exportable)\n",
                          a->arg);
            return SKR_EXIT_DENIED;
        }
        e = cli_print_json(TAKE_PTR(policy));
    } else if (strcmp(a->format, "json") == 0) {
        json_t *rp = json_object_get(bundle, "release_policy");

        if (json_is_object(rp) && policy != NULL) {
            e = skr_json_set(rp, "policy", TAKE_PTR(policy));
        }
        if (e == SKR_OK) {
            e = cli_print_json(TAKE_PTR(bundle));
        }
    } else {
        e = print_get_text(bundle, policy);
    }
    return e == SKR_OK ? SKR_EXIT_OK : cli_fail(e, "output");
}

/* ---- arguments ------------------------------------------------------------------------------ */

static int
check_args(struct key_args *a)
{
    bool is_new = a->cmd == KEY_IMPORT || a->cmd == KEY_CREATE;

    if ((a->key_file != NULL || a->derive_out != NULL || a->force) && a->cmd != KEY_IMPORT) {
        return usage_error("%s: --key-file, --derive-out and --force are for key import only",
                           a->sub);
    }
    if (a->force && a->derive_out == NULL) {
        return usage_error("%s: --force only applies to --derive-out", a->sub);
    }
    if (a->name != NULL && !is_new) {
        return usage_error("%s: --name is for import and create (NAME is the argument here)",
                           a->sub);
    }
    if ((a->version != NULL) && is_new) {
        return usage_error("%s: --version is for get and policy", a->sub);
    }
    if (a->format != NULL && a->cmd != KEY_GET) {
        return usage_error("%s: --format is for key get", a->sub);
    }
    if ((a->set_file != NULL || a->immutable) && a->cmd != KEY_POLICY) {
        return usage_error("%s: --set FILE and --immutable are for key policy", a->sub);
    }
    if (a->immutable && a->set_file == NULL) {
        return usage_error("%s: --immutable needs --set FILE", a->sub);
    }
    if (a->dry_run && a->cmd == KEY_GET) {
        return usage_error("%s: --dry-run is for import, create and policy --set", a->sub);
    }
    if (a->dry_run && a->cmd == KEY_POLICY && a->set_file == NULL) {
        return usage_error("%s: --dry-run needs --set FILE", a->sub);
    }
    if (!is_new && a->akv == NULL) {
        return usage_error("%s: --akv ENDPOINT is required", a->sub);
    }
    if (a->format == NULL) {
        a->format = "text";
    }
    if (!cli_format_ok(a->format, get_formats)) {
        return usage_error("--format: expected text or json, got '%.32s'", a->format);
    }
    if (a->name != NULL && (a->name[0] == '\0' || strlen(a->name) > 127 ||
                            strspn(a->name, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                            "OPQRSTUVWXYZ-") != strlen(a->name))) {
        return usage_error("--name: expected 1..127 letters, digits and '-', got '%.64s'", a->name);
    }
    return SKR_EXIT_OK;
}

static int
parse_args(int argc, char **argv, struct key_args *a)
{
#define KEY_LONGOPTS                                                                               \
    { "key-file", required_argument, NULL, OPT_KEY_FILE },                                         \
        { "derive-out", required_argument, NULL, OPT_DERIVE_OUT },                                 \
        { "force", no_argument, NULL, OPT_FORCE }, { "akv", required_argument, NULL, OPT_AKV },    \
        { "name", required_argument, NULL, OPT_NAME },                                             \
        { "api-version", required_argument, NULL, OPT_API_VERSION },                               \
        { "dry-run", no_argument, NULL, OPT_DRY_RUN },                                             \
        { "version", required_argument, NULL, OPT_VERSION },                                       \
        { "format", required_argument, NULL, OPT_FORMAT },                                         \
        { "immutable", no_argument, NULL, OPT_IMMUTABLE },                                         \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }
    /* key policy: --set FILE precedes the shared flags, so that it wins over their --set */
    static const struct option policy_opts[] = {
        { "set", required_argument, NULL, OPT_SET_POLICY },
        KEY_LONGOPTS,
        CLI_CLIENT_LONGOPTS,
        { 0 },
    };
    static const struct option other_opts[] = {
        KEY_LONGOPTS,
        CLI_CLIENT_LONGOPTS,
        { 0 },
    };
    const struct option *opts = a->cmd == KEY_POLICY ? policy_opts : other_opts;
    int c;
    int rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SET_POLICY:
            a->set_file = optarg;
            break;
        case OPT_KEY_FILE:
            a->key_file = optarg;
            break;
        case OPT_DERIVE_OUT:
            a->derive_out = optarg;
            break;
        case OPT_FORCE:
            a->force = true;
            break;
        case OPT_AKV:
            a->akv = optarg;
            break;
        case OPT_NAME:
            a->name = optarg;
            break;
        case OPT_API_VERSION:
            a->api_version = optarg;
            break;
        case OPT_DRY_RUN:
            a->dry_run = true;
            break;
        case OPT_VERSION:
            a->version = optarg;
            break;
        case OPT_FORMAT:
            a->format = optarg;
            break;
        case OPT_IMMUTABLE:
            a->immutable = true;
            break;
        case 'h':
            print_usage(stdout);
            return -1;
        default:
            if (c == CLI_OPT_CLIENT_ID) {
                a->client_id_given = true;
            }
            rc = cli_client_opt_or_usage(&a->o, c, optarg, bad_option, a->sub);
            if (rc != SKR_EXIT_OK) {
                return rc;
            }
        }
    }
    if (optind + 1 != argc) {
        if (a->cmd == KEY_IMPORT || a->cmd == KEY_CREATE) {
            return usage_error("%s: expected one CONFIG.json", a->sub);
        }
        return usage_error("%s: expected one key NAME", a->sub);
    }
    a->arg = argv[optind];
    return check_args(a);
}

int
cmd_key(int argc, char **argv)
{
    static const struct {
        const char *name;
        enum key_cmd cmd;
    } subs[] = {
        { "import", KEY_IMPORT },
        { "create", KEY_CREATE },
        { "get", KEY_GET },
        { "policy", KEY_POLICY },
    };
    struct key_args a = { 0 };
    const char *sub = argc > 1 ? argv[1] : NULL;
    bool found = false;
    int rc;

    optind = 1;
    if (sub == NULL) {
        print_usage(stderr);
        (void)fputs("skr: key: expected import, create, get or policy\n", stderr);
        return SKR_EXIT_USAGE;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        print_usage(stdout);
        return SKR_EXIT_OK;
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(subs); i++) {
        if (strcmp(sub, subs[i].name) == 0) {
            a.cmd = subs[i].cmd;
            found = true;
        }
    }
    if (!found) {
        return usage_error("key: unknown command '%.32s' (expected import, create, get or "
                           "policy)",
                           sub);
    }
    a.sub = sub;
    /* the key files, configurations and vault answers parsed here may hold key material or
     * tokens: every jansson block is wiped when freed (STYLE.md C10) */
    skr_json_wipe_on_free();
    rc = cli_client_init(&a.o, "none");
    if (rc == SKR_EXIT_OK) {
        rc = parse_args(argc - 1, argv + 1, &a);
        if (rc == -1) {
            rc = SKR_EXIT_OK;
        } else if (rc == SKR_EXIT_OK) {
            rc = a.cmd == KEY_IMPORT || a.cmd == KEY_CREATE ? key_new(&a) : key_show(&a);
        }
    }
    cli_client_done(&a.o);
    return rc;
}
