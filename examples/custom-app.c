/*
 * custom-app.c - the "custom implementation" path of Secure Key Release: an application that
 * links libskr and does steps 4-7 of the flow itself, with no sidecar:
 *   4. get an SEV-SNP report bound to a fresh transfer key, with its certificates, verified;
 *   5. have MAA attest it;
 *   6. get a token for the vault and ask it to release the key to the attested transfer key;
 *   7. unwrap the key, and use it: here we only print its type and a SHA-256 fingerprint
 *      (RFC 7638), never the key itself.
 *
 * It includes nothing but <skr/skr.h> and links libskr.so alone, so building it proves the
 * public API is exported. Against the emulator (see docs/api.md):
 *
 *   custom-app --snp-device emulated:EMU --security-context-dir EMU/security-context \
 *       --imds http://127.0.0.1:P --ca-file EMU/ca.pem \
 *       --maa 127.0.0.1:P --akv 127.0.0.1:P --kid mykey
 *
 * Exit codes as skr's: 0 released, 1 denied by policy, 2 bad usage, 3 any other failure.
 */
#include <getopt.h>
#include <skr/skr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: custom-app --maa HOST --akv HOST --kid NAME [options]\n"
    "  --maa, --maa-endpoint HOST     MAA instance (e.g. sharedeus2.eus2.attest.azure.net)\n"
    "  --akv, --akv-endpoint HOST     Key Vault or Managed HSM (e.g. myhsm.managedhsm.azure.net)\n"
    "  --kid NAME                     key name, name/version or key URL\n"
    "  --snp-device SPEC              auto | tsm | sev-guest | sev | emulated:DIR (auto)\n"
    "  --security-context-dir DIR     security-policy-base64, host-amd-cert-base64, ...\n"
    "  --imds, --imds-endpoint URL    IMDS (http://169.254.169.254)\n"
    "  --ca-file PEM                  extra TLS / release-JWS trust roots\n"
    "  --trust-root PEM               extra trusted AMD root (ARK)\n"
    "  --client-id ID                 managed identity client id\n"
    "  --access-token-file FILE       use this bearer token for the vault instead\n"
    "  --set NAME=VALUE               any other libskr option (see docs/api.md)\n"
    "  --releases N                   release N times (shows the pool / reuse window at work)\n";

struct app {
    skr_config *cfg;
    skr_release_request req;
    char *token;
    unsigned long releases;
};

static int
set_opt(skr_config *cfg, const char *name, const char *value)
{
    if (skr_config_set(cfg, name, value) != SKR_OK) {
        (void)fprintf(stderr, "custom-app: %s\n", skr_err_detail());
        return 2;
    }
    return 0;
}

static int
set_pair(skr_config *cfg, const char *arg)
{
    char name[64];
    const char *eq = strchr(arg, '=');
    size_t n = eq != NULL ? (size_t)(eq - arg) : 0;

    if (eq == NULL || n == 0 || n >= sizeof(name)) {
        (void)fprintf(stderr, "custom-app: --set expects NAME=VALUE\n");
        return 2;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    return set_opt(cfg, name, eq + 1);
}

static int
read_token(const char *path, char **ret)
{
    FILE *f = fopen(path, "re");
    char *buf = calloc(1, 65536);
    size_t n;

    if (f == NULL || buf == NULL) {
        (void)fprintf(stderr, "custom-app: cannot read %s\n", path);
        if (f != NULL) {
            (void)fclose(f);
        }
        free(buf);
        return 2;
    }
    n = fread(buf, 1, 65535, f);
    (void)fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        buf[--n] = '\0';
    }
    *ret = buf;
    return 0;
}

static int
parse_args(int argc, char **argv, struct app *a)
{
    static const struct option lopts[] = {
        { "maa", required_argument, NULL, 'm' },
        { "maa-endpoint", required_argument, NULL, 'm' },
        { "akv", required_argument, NULL, 'a' },
        { "akv-endpoint", required_argument, NULL, 'a' },
        { "kid", required_argument, NULL, 'k' },
        { "snp-device", required_argument, NULL, 'd' },
        { "security-context-dir", required_argument, NULL, 's' },
        { "imds", required_argument, NULL, 'i' },
        { "imds-endpoint", required_argument, NULL, 'i' },
        { "ca-file", required_argument, NULL, 'c' },
        { "trust-root", required_argument, NULL, 't' },
        { "client-id", required_argument, NULL, 'u' },
        { "access-token-file", required_argument, NULL, 'T' },
        { "set", required_argument, NULL, 'o' },
        { "releases", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    int rc = 0;

    while (rc == 0 && (ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            a->req.maa_endpoint = optarg;
            break;
        case 'a':
            a->req.akv_endpoint = optarg;
            break;
        case 'k':
            a->req.kid = optarg;
            break;
        case 'd':
            rc = set_opt(a->cfg, "snp_device", optarg);
            break;
        case 's':
            rc = set_opt(a->cfg, "security_context_dir", optarg);
            break;
        case 'i':
            rc = set_opt(a->cfg, "imds_endpoint", optarg);
            break;
        case 'c':
            rc = set_opt(a->cfg, "ca_file", optarg);
            break;
        case 't':
            rc = set_opt(a->cfg, "trust_root", optarg);
            break;
        case 'u':
            rc = set_opt(a->cfg, "client_id", optarg);
            break;
        case 'T':
            rc = read_token(optarg, &a->token);
            a->req.access_token = a->token;
            break;
        case 'o':
            rc = set_pair(a->cfg, optarg);
            break;
        case 'n': {
            char *end = NULL;

            a->releases = strtoul(optarg, &end, 10);
            rc = (*end != '\0' || a->releases == 0 || a->releases > 1000) ? 2 : 0;
            break;
        }
        case 'h':
            (void)fputs(usage, stdout);
            exit(0);
        default:
            rc = 2;
            break;
        }
    }
    if (rc == 0 && (a->req.maa_endpoint == NULL || a->req.akv_endpoint == NULL ||
                    a->req.kid == NULL || optind != argc)) {
        rc = 2;
    }
    if (rc == 2) {
        (void)fputs(usage, stderr);
    }
    return rc;
}

static int
report_error(const char *what, const skr_error_info *e)
{
    (void)fprintf(stderr, "custom-app: %s failed at stage %s: %s\n", what, e->stage, e->message);
    if (e->upstream_status != 0 || e->code[0] != '\0' || e->request_id[0] != '\0') {
        (void)fprintf(stderr, "custom-app:   upstream status %ld, code '%s', request id '%s'\n",
                      e->upstream_status, e->code, e->request_id);
    }
    if (e->hint[0] != '\0') {
        (void)fprintf(stderr, "custom-app:   hint: %s\n", e->hint);
    }
    if (e->err == SKR_E_POLICY) {
        return 1;
    }
    return e->err == SKR_E_INVALID_ARG && strcmp(e->stage, "config") == 0 ? 2 : 3;
}

/* Step 7: use the key. We print what identifies it, never its private members. */
static int
use_key(const char *jwk)
{
    char fp[SKR_FINGERPRINT_LEN];
    const char *k = strstr(jwk, "\"kty\":\"");
    size_t n;

    if (k == NULL || skr_jwk_fingerprint(jwk, fp) != SKR_OK) {
        (void)fprintf(stderr, "custom-app: the released JWK has no usable kty\n");
        return 3;
    }
    k += 7;
    n = strcspn(k, "\"");
    (void)printf("kty: %.*s\n", (int)n, k);
    (void)printf("sha256-fingerprint (RFC 7638): %s\n", fp);
    return 0;
}

int
main(int argc, char **argv)
{
    struct app a = { .releases = 1 };
    skr_client *c = NULL;
    skr_error_info e;
    char *jwk = NULL;
    int rc;

    (void)printf("custom-app: libskr %s\n", skr_version());
    if (skr_config_new(&a.cfg) != SKR_OK) {
        return 3;
    }
    rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        skr_config_free(a.cfg);
        free(a.token);
        return rc;
    }
    /* Step 4 starts here: the client opens the device and loads the security context. */
    if (skr_client_new(a.cfg, &c, &e) != SKR_OK) {
        skr_config_free(a.cfg);
        free(a.token);
        return report_error("opening the client", &e);
    }
    skr_config_free(a.cfg);
    for (unsigned long i = 0; i < a.releases && rc == 0; i++) {
        /* Steps 4-7: report + certificates, MAA, vault token, release, unwrap. */
        if (skr_key_release(c, &a.req, &jwk, &e) != SKR_OK) {
            rc = report_error("the release", &e);
            break;
        }
        (void)printf("released %s from %s (attested by %s)\n", a.req.kid, a.req.akv_endpoint,
                     a.req.maa_endpoint);
        rc = use_key(jwk);
        skr_string_free(jwk);
        jwk = NULL;
    }
    skr_client_free(c);
    if (a.token != NULL) {
        explicit_bzero(a.token, strlen(a.token));
        free(a.token);
    }
    return rc;
}
