/*
 * init.c - `skr-emu init DIR`: everything the offline Azure stack needs (DESIGN.md §4.2).
 *
 * Layout of DIR (names in emu.h; private keys PEM PKCS#8, mode 0600; every file written
 * atomically):
 *   ca.pem, ca.key            self-signed CA: EC P-256, CN "skr-emu CA", basicConstraints
 *                             CA:TRUE (critical), keyUsage keyCertSign+cRLSign, 10 years
 *   tls.pem, tls.key          TLS server certificate from the CA: RSA-2048 (the Key Vault
 *                             emulator signs release JWS with it, RS256 as the real service),
 *                             CN localhost, SANs DNS:localhost IP:127.0.0.1 IP:::1, EKU
 *                             serverAuth, 1 year; tls.pem holds the leaf then the CA (the JWS
 *                             x5c is issued for the vault's host name)
 *   maa/signing.pem, .key     MAA token signing key, RSA-2048, cert from the CA
 *   entra/signing.pem, .key   Entra (managed identity) token signing key, likewise
 *   snp/                      the software SEV-SNP platform (snp_emu.h) that
 *                             --snp-device emulated:DIR signs with; HOST_DATA = SHA-256 of
 *                             the security policy unless --host-data overrides it
 *   security-context/         as ACI lays it out (PROTOCOLS.md §4.2), standard base64 with
 *                             padding and no newline:
 *     security-policy-base64    the rego policy text (--policy, default ACI's allow-all)
 *     host-amd-cert-base64      compact THIM JSON (§4.1) {"vcekCert","tcbm","certificateChain"
 *                               (ASK then ARK),"cacheControl":"86400"} of the platform
 *     reference-info-base64     the real file is a COSE_Sign1 UVM endorsement signed by
 *                               Microsoft (§4.4), which cannot be made offline. This one is
 *                               JSON {"x-ms-sevsnpvm-guestsvn":"<n>",
 *                               "x-ms-sevsnpvm-launchmeasurement":"<96 hex>","emulated":true}
 *                               (the COSE payload's members); only the MAA emulator reads it
 *   keys/store.json           empty key store {"version":1,"keys":{}}; keys/ is mode 0700
 *   emu.json                  {"version":1,"emulated":true,"tenant_id","subscription_id",
 *                             "managed_identity":{"client_id","object_id","msi_res_id"},
 *                             "maa":{"kid"},"entra":{"kid"},"compliance_status"}; kids are
 *                             RFC 7638 thumbprints of the signing keys. Written last: its
 *                             presence marks a complete DIR, and init refuses to replace it
 *                             without --force.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "b64.h"
#include "buf.h"
#include "emu.h"
#include "err.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "skr_limits.h"
#include "snp_certs.h"
#include "snp_emu.h"
#include "snp_report.h"

#define INIT_PATH_MAX    4096u
#define INIT_DAY_SECONDS (24L * 60 * 60)
#define INIT_CA_DAYS     (10L * 365)
#define INIT_LEAF_DAYS   365L

/*
 * ACI's allow-all rego policy, byte for byte as the ACI tooling (az confcom, CCF's
 * tests/infra/snp.py) ships it: its SHA-256 is the documented HOST_DATA
 * cadd74f71ebb8fbf9782baab649612520f3c416bc5ce9ac768808ddc8d9b031c.
 */
static const char default_policy[] =
    "package policy\n"
    "\n"
    "api_svn := \"0.10.0\"\n"
    "\n"
    "mount_device := {\"allowed\": true}\n"
    "mount_overlay := {\"allowed\": true}\n"
    "create_container := {\"allowed\": true, \"allow_stdio_access\": true}\n"
    "unmount_device := {\"allowed\": true}\n"
    "unmount_overlay := {\"allowed\": true}\n"
    "exec_in_container := {\"allowed\": true}\n"
    "exec_external := {\"allowed\": true, \"allow_stdio_access\": true}\n"
    "shutdown_container := {\"allowed\": true}\n"
    "signal_container_process := {\"allowed\": true}\n"
    "plan9_mount := {\"allowed\": true}\n"
    "plan9_unmount := {\"allowed\": true}\n"
    "get_properties := {\"allowed\": true}\n"
    "dump_stacks := {\"allowed\": true}\n"
    "runtime_logging := {\"allowed\": true}\n"
    "load_fragment := {\"allowed\": true}\n"
    "scratch_mount := {\"allowed\": true}\n"
    "scratch_unmount := {\"allowed\": true}\n";

enum opt_id {
    OPT_PRODUCT = 256,
    OPT_REPORT_VERSION,
    OPT_POLICY_HEX,
    OPT_HOST_DATA,
    OPT_MEASUREMENT,
    OPT_TCB,
    OPT_CHIP_ID,
    OPT_FORCE,
    OPT_POLICY,
};

struct init_opts {
    const char *dir;
    const char *policy_file; /* NULL: default_policy */
    struct skr_snp_emu_params params;
    bool host_data_given;
    bool force;
};

/* What init made, for the summary. */
struct init_result {
    char tenant_id[37];
    char client_id[37];
    char maa_kid[SKR_THUMBPRINT_LEN];
    char entra_kid[SKR_THUMBPRINT_LEN];
};

/* ---- option parsing ------------------------------------------------------------------- */

/* Exactly n bytes of hex. */
static bool
parse_hex(const char *s, uint8_t *out, size_t n)
{
    return strlen(s) == 2 * n && skr_hex_decode_fixed(skr_span_str(s), out, n) == SKR_OK;
}

static bool
parse_policy_hex(const char *s, uint64_t *ret)
{
    struct skr_span sp = skr_span_str(s);
    char buf[24];

    if (sp.len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        return skr_parse_u64(sp, true, 1, UINT64_MAX, ret) == SKR_OK;
    }
    if (sp.len == 0 || sp.len > 16) {
        return false;
    }
    (void)snprintf(buf, sizeof(buf), "0x%s", s);
    return skr_parse_u64(skr_span_str(buf), true, 1, UINT64_MAX, ret) == SKR_OK;
}

/* The THIM tcbm form: 16 hex digits, most significant byte (microcode) first. */
static bool
parse_tcbm(const char *s, uint64_t *ret)
{
    uint8_t b[8];
    uint64_t v = 0;

    if (!parse_hex(s, b, sizeof(b))) {
        return false;
    }
    for (size_t i = 0; i < sizeof(b); i++) {
        v = v << 8 | b[i];
    }
    *ret = v;
    return v != 0;
}

static int
parse_init_opt(int c, const char *arg, struct init_opts *o)
{
    struct skr_snp_emu_params *p = &o->params;
    uint64_t v;

    switch (c) {
    case OPT_POLICY:
        o->policy_file = arg;
        return EMU_EXIT_OK;
    case OPT_PRODUCT:
        if (skr_snp_product_parse(arg, &p->product) != SKR_OK) {
            return emu_usage_error("--product: \"%s\" is not Milan, Genoa or Turin", arg);
        }
        return EMU_EXIT_OK;
    case OPT_REPORT_VERSION:
        if (skr_parse_u64(skr_span_str(arg), false, 2, 5, &v) != SKR_OK) {
            return emu_usage_error("--report-version: \"%s\" is not 2..5", arg);
        }
        p->report_version = (uint32_t)v;
        return EMU_EXIT_OK;
    case OPT_POLICY_HEX:
        if (!parse_policy_hex(arg, &p->policy)) {
            return emu_usage_error("--policy-hex: \"%s\" is not a non-zero 64-bit hex number", arg);
        }
        return EMU_EXIT_OK;
    case OPT_HOST_DATA:
        o->host_data_given = true;
        return parse_hex(arg, p->host_data, sizeof(p->host_data))
                   ? EMU_EXIT_OK
                   : emu_usage_error("--host-data: \"%s\" is not 32 bytes of hex", arg);
    case OPT_MEASUREMENT:
        return parse_hex(arg, p->measurement, sizeof(p->measurement))
                   ? EMU_EXIT_OK
                   : emu_usage_error("--measurement: \"%s\" is not 48 bytes of hex", arg);
    case OPT_TCB:
        return parse_tcbm(arg, &p->tcb)
                   ? EMU_EXIT_OK
                   : emu_usage_error("--tcb: \"%s\" is not 16 hex digits (THIM tcbm form)", arg);
    case OPT_CHIP_ID:
        memset(p->chip_id, 0, sizeof(p->chip_id));
        if (parse_hex(arg, p->chip_id, 8) || parse_hex(arg, p->chip_id, sizeof(p->chip_id))) {
            return EMU_EXIT_OK;
        }
        return emu_usage_error("--chip-id: \"%s\" is not 64 (or, for Turin, 8) bytes of hex", arg);
    case OPT_FORCE:
        o->force = true;
        return EMU_EXIT_OK;
    default:
        return emu_usage_error("%s", "unknown option");
    }
}

/* EMU_EXIT_OK to go on, -1 after --help, else an exit code. */
static int
parse_init(int argc, char **argv, struct init_opts *o)
{
    static const struct option longopts[] = {
        { "policy", required_argument, NULL, OPT_POLICY },
        { "product", required_argument, NULL, OPT_PRODUCT },
        { "report-version", required_argument, NULL, OPT_REPORT_VERSION },
        { "policy-hex", required_argument, NULL, OPT_POLICY_HEX },
        { "host-data", required_argument, NULL, OPT_HOST_DATA },
        { "measurement", required_argument, NULL, OPT_MEASUREMENT },
        { "tcb", required_argument, NULL, OPT_TCB },
        { "chip-id", required_argument, NULL, OPT_CHIP_ID },
        { "force", no_argument, NULL, OPT_FORCE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int rc;

        if (c == 'h') {
            fputs(emu_usage_text, stdout);
            return -1;
        }
        if (c == '?') {
            return EMU_EXIT_USAGE;
        }
        rc = parse_init_opt(c, optarg, o);
        if (rc != EMU_EXIT_OK) {
            return rc;
        }
    }
    if (optind != argc - 1) {
        return emu_usage_error("%s", "init takes exactly one directory");
    }
    o->dir = argv[optind];
    if (o->dir[0] == '\0' || strlen(o->dir) > INIT_PATH_MAX / 2) {
        return emu_usage_error("%s", "the directory name is empty or too long");
    }
    if (o->params.product != SKR_SNP_PRODUCT_TURIN &&
        skr_span_is_zero(skr_span_make(o->params.chip_id + 8, 56)) &&
        !skr_span_is_zero(skr_span_make(o->params.chip_id, 8))) {
        return emu_usage_error("%s", "--chip-id: an 8-byte chip id is for --product Turin only");
    }
    return EMU_EXIT_OK;
}

/* ---- paths and files ------------------------------------------------------------------ */

static skr_err
path_of(struct skr_buf *b, const char *dir, const char *rel, const char **ret)
{
    skr_buf_reset(b);
    TRY(skr_buf_printf(b, "%s/%s", dir, rel));
    return skr_buf_cstr(b, ret);
}

static bool
exists(const char *dir, const char *rel)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;
    struct stat st;

    skr_buf_init(&pb, INIT_PATH_MAX);
    return path_of(&pb, dir, rel, &path) == SKR_OK && lstat(path, &st) == 0;
}

/* mkdir -p, new components 0755. */
static skr_err
make_dirs(const char *dir)
{
    char path[INIT_PATH_MAX];
    size_t len = strlen(dir);

    ENSURE(len > 0 && len < sizeof(path), SKR_E_INVALID_ARG, "directory name too long");
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        struct stat st;

        if (path[i] != '/' && path[i] != '\0') {
            continue;
        }
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 &&
            !(errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
            FAILF(SKR_E_IO, "cannot create directory %s: %s", path, strerror(errno));
        }
        path[i] = i < len ? '/' : '\0';
    }
    return SKR_OK;
}

/* DIR/rel as a directory of exactly the given mode (an existing one is chmod-ed). */
static skr_err
make_subdir(const char *dir, const char *rel, unsigned mode)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;
    struct stat st;

    skr_buf_init(&pb, INIT_PATH_MAX);
    TRY(path_of(&pb, dir, rel, &path));
    if (mkdir(path, (mode_t)mode) != 0) {
        if (errno != EEXIST || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            FAILF(SKR_E_IO, "cannot create directory %s: %s", path, strerror(errno));
        }
    }
    if (chmod(path, (mode_t)mode) != 0) {
        FAILF(SKR_E_IO, "cannot chmod %s: %s", path, strerror(errno));
    }
    return SKR_OK;
}

static skr_err
write_file(const char *dir, const char *rel, struct skr_span data, unsigned mode)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;

    skr_buf_init(&pb, INIT_PATH_MAX);
    TRY(path_of(&pb, dir, rel, &path));
    return skr_write_file_atomic(path, data, mode);
}

/* PEM PKCS#8, mode 0600. */
static skr_err
write_key(EVP_PKEY *key, const char *dir, const char *rel)
{
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };

    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    TRY(skr_pem_write_key(key, &pem));
    return write_file(dir, rel, skr_buf_span(&pem), 0600);
}

/* One or two certificates (second may be NULL) as a PEM bundle, mode 0644. */
static skr_err
write_certs(X509 *first, X509 *second, const char *dir, const char *rel)
{
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };

    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    TRY(skr_pem_write_cert(first, &pem));
    if (second != NULL) {
        TRY(skr_pem_write_cert(second, &pem));
    }
    return write_file(dir, rel, skr_buf_span(&pem), 0644);
}

/* Standard base64 with padding, no newline: the security-context encoding. */
static skr_err
write_b64(const char *dir, const char *rel, struct skr_span data)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    skr_buf_init(&b, 2 * SKR_MAX_FILE_BYTES);
    TRY(skr_b64_encode(data, SKR_B64_STD | SKR_B64_PAD, &b));
    return write_file(dir, rel, skr_buf_span(&b), 0644);
}

/* Indented, in member order, with a final newline. */
static skr_err
write_json(const char *dir, const char *rel, const json_t *v)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    skr_buf_init(&b, SKR_MAX_JSON_BYTES);
    TRY(skr_json_dump(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER, &b));
    TRY(skr_buf_append_byte(&b, '\n'));
    return write_file(dir, rel, skr_buf_span(&b), 0644);
}

/* ---- keys and certificates ------------------------------------------------------------ */

static skr_err
gen_key(bool rsa, EVP_PKEY **ret)
{
    EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");

    if (k == NULL) {
        skr_err e = skr_err_at(SKR_E_INTERNAL, __FILE__, __LINE__, "key generation failed");
        skr_err_add_ossl();
        return e;
    }
    *ret = k;
    return SKR_OK;
}

enum cert_kind { CERT_CA, CERT_TLS, CERT_SIGNING };

struct cert_spec {
    enum cert_kind kind;
    const char *cn;
    long days;
    EVP_PKEY *key;        /* subject key */
    X509 *issuer;         /* NULL: self-signed */
    EVP_PKEY *issuer_key; /* NULL: self-signed */
};

static skr_err
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        skr_err e = skr_err_atf(SKR_E_INTERNAL, __FILE__, __LINE__,
                                "cannot build certificate extension %s", OBJ_nid2sn(nid));
        skr_err_add_ossl();
        return e;
    }
    if (X509_add_ext(cert, ext, -1) != 1) {
        X509_EXTENSION_free(ext);
        FAIL(SKR_E_INTERNAL, "cannot add a certificate extension");
    }
    X509_EXTENSION_free(ext);
    return SKR_OK;
}

/* O=skr emulator, CN=cn */
static skr_err
set_names(X509 *x, const char *cn, X509 *issuer)
{
    X509_NAME *n = X509_NAME_new();
    bool ok = n != NULL;

    ok = ok && X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                                          (const unsigned char *)"skr emulator", -1, -1, 0) == 1;
    ok = ok && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                          0) == 1;
    ok = ok && X509_set_subject_name(x, n) == 1;
    ok = ok && X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n) == 1;
    X509_NAME_free(n);
    ENSURE(ok, SKR_E_INTERNAL, "cannot set certificate names");
    return SKR_OK;
}

/* 16 random bytes, positive and non-zero (RFC 5280 §4.1.2.2). */
static skr_err
set_serial(X509 *x)
{
    uint8_t b[16];
    _cleanup_(BN_freep) BIGNUM *bn = NULL;

    TRY_OSSL(RAND_bytes(b, sizeof(b)), SKR_E_INTERNAL, "RAND_bytes failed");
    b[0] = (uint8_t)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    ENSURE(bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL, SKR_E_INTERNAL,
           "cannot set the serial number");
    return SKR_OK;
}

static skr_err
add_kind_exts(X509 *x, X509 *issuer, enum cert_kind kind)
{
    TRY(add_ext(x, issuer, NID_subject_key_identifier, "hash"));
    if (kind == CERT_CA) {
        TRY(add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE"));
        return add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    TRY(add_ext(x, issuer, NID_authority_key_identifier, "keyid:always"));
    TRY(add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE"));
    TRY(add_ext(x, issuer, NID_key_usage, "critical,digitalSignature"));
    if (kind == CERT_TLS) {
        TRY(add_ext(x, issuer, NID_ext_key_usage, "serverAuth"));
        return add_ext(x, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    }
    return SKR_OK;
}

static skr_err
make_cert(const struct cert_spec *s, X509 **ret)
{
    _cleanup_(X509_freep) X509 *x = X509_new();
    EVP_PKEY *signer = s->issuer_key != NULL ? s->issuer_key : s->key;

    ENSURE(x != NULL, SKR_E_NOMEM, "X509_new failed");
    TRY_OSSL(X509_set_version(x, 2), SKR_E_INTERNAL, "X509_set_version failed");
    TRY(set_serial(x));
    /* A day of slack for clocks that lag behind the one that made the certificate. */
    ENSURE(X509_gmtime_adj(X509_getm_notBefore(x), -INIT_DAY_SECONDS) != NULL, SKR_E_INTERNAL,
           "cannot set notBefore");
    ENSURE(X509_time_adj_ex(X509_getm_notAfter(x), (int)s->days, 0, NULL) != NULL, SKR_E_INTERNAL,
           "cannot set notAfter");
    TRY(set_names(x, s->cn, s->issuer));
    TRY_OSSL(X509_set_pubkey(x, s->key), SKR_E_INTERNAL, "X509_set_pubkey failed");
    TRY(add_kind_exts(x, s->issuer != NULL ? s->issuer : x, s->kind));
    if (X509_sign(x, signer, EVP_sha256()) <= 0) {
        skr_err e = skr_err_at(SKR_E_INTERNAL, __FILE__, __LINE__, "certificate signing failed");
        skr_err_add_ossl();
        return e;
    }
    *ret = TAKE_PTR(x);
    return SKR_OK;
}

/* The CA, then the TLS certificate it issues. */
static skr_err
make_ca_and_tls(const char *dir, EVP_PKEY **ca_key_ret, X509 **ca_ret)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *tls_key = NULL;
    _cleanup_(X509_freep) X509 *ca = NULL;
    _cleanup_(X509_freep) X509 *tls = NULL;

    TRY(gen_key(false, &ca_key));
    TRY(make_cert(
        &(struct cert_spec){
            .kind = CERT_CA, .cn = "skr-emu CA", .days = INIT_CA_DAYS, .key = ca_key },
        &ca));
    TRY(gen_key(true, &tls_key));
    TRY(make_cert(&(struct cert_spec){ .kind = CERT_TLS,
                                       .cn = "localhost",
                                       .days = INIT_LEAF_DAYS,
                                       .key = tls_key,
                                       .issuer = ca,
                                       .issuer_key = ca_key },
                  &tls));
    TRY(write_key(ca_key, dir, EMU_CA_KEY));
    TRY(write_certs(ca, NULL, dir, EMU_CA_CERT));
    TRY(write_key(tls_key, dir, EMU_TLS_KEY));
    TRY(write_certs(tls, ca, dir, EMU_TLS_CERT));
    *ca_key_ret = TAKE_PTR(ca_key);
    *ca_ret = TAKE_PTR(ca);
    return SKR_OK;
}

/* An RSA-2048 token signing key with a certificate from the CA; kid = RFC 7638 thumbprint. */
static skr_err
make_signer(const char *dir, const char *cn, const char *key_rel, const char *cert_rel,
            EVP_PKEY *ca_key, X509 *ca, char kid[SKR_THUMBPRINT_LEN])
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
    _cleanup_(X509_freep) X509 *cert = NULL;
    _cleanup_(json_decrefp) json_t *jwk = NULL;

    TRY(gen_key(true, &key));
    TRY(make_cert(&(struct cert_spec){ .kind = CERT_SIGNING,
                                       .cn = cn,
                                       .days = INIT_LEAF_DAYS,
                                       .key = key,
                                       .issuer = ca,
                                       .issuer_key = ca_key },
                  &cert));
    TRY(skr_jwk_from_pkey(key, false, &jwk));
    TRY(skr_jwk_thumbprint(jwk, kid));
    TRY(write_key(key, dir, key_rel));
    return write_certs(cert, NULL, dir, cert_rel);
}

/* ---- security context ----------------------------------------------------------------- */

static skr_err
read_rel(const char *dir, const char *rel, struct skr_buf *out)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    const char *path;

    skr_buf_init(&pb, INIT_PATH_MAX);
    TRY(path_of(&pb, dir, rel, &path));
    return skr_read_file(path, out);
}

/* host-amd-cert-base64: THIM JSON (PROTOCOLS.md §4.1) of the platform's certificates. */
static skr_err
write_host_amd_cert(const char *dir, const struct skr_snp_emu_params *p)
{
    _cleanup_(skr_buf_donep) struct skr_buf vcek = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf chain = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
    _cleanup_(json_decrefp) json_t *o = json_object();
    const char *vcek_s;
    const char *chain_s;
    char tcbm[17];

    ENSURE(o != NULL, SKR_E_NOMEM, "json_object failed");
    skr_buf_init(&vcek, SKR_MAX_PEM_BYTES);
    skr_buf_init(&chain, SKR_MAX_PEM_BYTES);
    TRY(read_rel(dir, EMU_SNP_DIR "/vcek.pem", &vcek));
    TRY(read_rel(dir, EMU_SNP_DIR "/ask.pem", &chain));
    TRY(read_rel(dir, EMU_SNP_DIR "/ark.pem", &chain));
    TRY(skr_buf_cstr(&vcek, &vcek_s));
    TRY(skr_buf_cstr(&chain, &chain_s));
    skr_snp_tcb_tcbm(p->tcb, tcbm);
    TRY(skr_json_set(o, "vcekCert", json_string(vcek_s)));
    TRY(skr_json_set(o, "tcbm", json_string(tcbm)));
    TRY(skr_json_set(o, "certificateChain", json_string(chain_s)));
    TRY(skr_json_set(o, "cacheControl", json_string("86400")));
    skr_buf_init(&json, SKR_MAX_JSON_BYTES);
    TRY(skr_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER, &json));
    return write_b64(dir, EMU_SECCTX_HOST_AMD, skr_buf_span(&json));
}

/* reference-info-base64: the COSE payload's members as plain JSON (see the top comment). */
static skr_err
write_reference_info(const char *dir, const struct skr_snp_emu_params *p)
{
    _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
    _cleanup_(json_decrefp) json_t *o = json_object();
    char svn[16];
    char meas[2 * sizeof(p->measurement) + 1];

    ENSURE(o != NULL, SKR_E_NOMEM, "json_object failed");
    (void)snprintf(svn, sizeof(svn), "%u", p->guest_svn);
    skr_hex_fmt(p->measurement, sizeof(p->measurement), meas);
    TRY(skr_json_set(o, "x-ms-sevsnpvm-guestsvn", json_string(svn)));
    TRY(skr_json_set(o, "x-ms-sevsnpvm-launchmeasurement", json_string(meas)));
    TRY(skr_json_set(o, "emulated", json_true()));
    skr_buf_init(&json, SKR_MAX_JSON_BYTES);
    TRY(skr_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER, &json));
    return write_b64(dir, EMU_SECCTX_REF_INFO, skr_buf_span(&json));
}

/* ---- emu.json and the key store ------------------------------------------------------- */

/* A random (version 4) GUID, lowercase, as Azure prints them. */
static skr_err
random_guid(char out[37])
{
    uint8_t b[16];
    char hex[33];

    TRY_OSSL(RAND_bytes(b, sizeof(b)), SKR_E_INTERNAL, "RAND_bytes failed");
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    skr_hex_fmt(b, sizeof(b), hex);
    (void)snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
                   hex + 20);
    return SKR_OK;
}

static skr_err
write_config(const char *dir, struct init_result *r)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    _cleanup_(skr_buf_donep) struct skr_buf res_id = { 0 };
    char subscription[37];
    char object_id[37];
    const char *res;

    ENSURE(o != NULL, SKR_E_NOMEM, "json_object failed");
    TRY(random_guid(r->tenant_id));
    TRY(random_guid(subscription));
    TRY(random_guid(r->client_id));
    TRY(random_guid(object_id));
    skr_buf_init(&res_id, INIT_PATH_MAX);
    TRY(skr_buf_printf(&res_id,
                       "/subscriptions/%s/resourceGroups/skr-emu/providers/"
                       "Microsoft.ManagedIdentity/userAssignedIdentities/skr-emu",
                       subscription));
    TRY(skr_buf_cstr(&res_id, &res));
    TRY(skr_json_set(o, "version", json_integer(EMU_CONFIG_VERSION)));
    TRY(skr_json_set(o, "emulated", json_true()));
    TRY(skr_json_set(o, "tenant_id", json_string(r->tenant_id)));
    TRY(skr_json_set(o, "subscription_id", json_string(subscription)));
    TRY(skr_json_set(o, "managed_identity",
                     json_pack("{s:s, s:s, s:s}", "client_id", r->client_id, "object_id", object_id,
                               "msi_res_id", res)));
    TRY(skr_json_set(o, "maa", json_pack("{s:s}", "kid", r->maa_kid)));
    TRY(skr_json_set(o, "entra", json_pack("{s:s}", "kid", r->entra_kid)));
    TRY(skr_json_set(o, "compliance_status", json_string("azure-compliant-uvm")));
    return write_json(dir, EMU_CONFIG, o);
}

/* keys/ (0700) with an empty store, replacing any store already there. */
static skr_err
write_key_store(const char *dir)
{
    _cleanup_(json_decrefp) json_t *o = json_pack("{s:i, s:{}}", "version", 1, "keys");

    ENSURE(o != NULL, SKR_E_NOMEM, "json_pack failed");
    TRY(make_subdir(dir, EMU_KEYS_DIR, 0700));
    return write_json(dir, EMU_KEY_STORE, o);
}

/* ---- init ----------------------------------------------------------------------------- */

static skr_err
sha256(struct skr_span data, uint8_t out[32])
{
    unsigned int len = 0;

    TRY_OSSL(EVP_Digest(data.ptr, data.len, out, &len, EVP_sha256(), NULL), SKR_E_INTERNAL,
             "SHA-256 failed");
    ENSURE(len == 32, SKR_E_INTERNAL, "SHA-256 length");
    return SKR_OK;
}

/* The policy text into out; an exit code on failure (input errors are EMU_EXIT_USAGE). */
static int
load_policy(const struct init_opts *o, struct skr_buf *out)
{
    skr_err e;

    if (o->policy_file == NULL) {
        e = skr_buf_append_str(out, default_policy);
        return e == SKR_OK ? EMU_EXIT_OK : emu_report_err(e, "default policy");
    }
    e = skr_read_file(o->policy_file, out);
    if (e != SKR_OK) {
        fprintf(stderr, "skr-emu: --policy %s: %s\n", o->policy_file, skr_err_msg());
        return EMU_EXIT_USAGE;
    }
    if (out->len == 0) {
        fprintf(stderr, "skr-emu: --policy %s: the policy is empty\n", o->policy_file);
        return EMU_EXIT_USAGE;
    }
    return EMU_EXIT_OK;
}

static skr_err
create_all(const struct init_opts *o, struct skr_span policy, struct skr_snp_emu_params *p,
           struct init_result *r)
{
    _cleanup_(skr_buf_donep) struct skr_buf pb = { 0 };
    _cleanup_(skr_snp_emu_freep) struct skr_snp_emu *e = NULL;
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL;
    _cleanup_(X509_freep) X509 *ca = NULL;
    const char *snp_dir;

    TRY(make_dirs(o->dir));
    TRY(make_subdir(o->dir, EMU_SNP_DIR, 0755));
    TRY(make_subdir(o->dir, EMU_MAA_DIR, 0755));
    TRY(make_subdir(o->dir, EMU_ENTRA_DIR, 0755));
    TRY(make_subdir(o->dir, EMU_SECCTX_DIR, 0755));

    skr_buf_init(&pb, INIT_PATH_MAX);
    TRY(path_of(&pb, o->dir, EMU_SNP_DIR, &snp_dir));
    TRY(skr_snp_emu_create(snp_dir, &o->params));
    TRY(skr_snp_emu_open(snp_dir, &e));
    *p = *skr_snp_emu_params(e);

    TRY(make_ca_and_tls(o->dir, &ca_key, &ca));
    TRY(make_signer(o->dir, "skr-emu MAA signing", EMU_MAA_KEY, EMU_MAA_CERT, ca_key, ca,
                    r->maa_kid));
    TRY(make_signer(o->dir, "skr-emu Entra signing", EMU_ENTRA_KEY, EMU_ENTRA_CERT, ca_key, ca,
                    r->entra_kid));

    TRY(write_b64(o->dir, EMU_SECCTX_POLICY, policy));
    TRY(write_host_amd_cert(o->dir, p));
    TRY(write_reference_info(o->dir, p));
    TRY(write_key_store(o->dir));
    /* Last: its presence marks a complete DIR. */
    return write_config(o->dir, r);
}

static void
print_summary(const char *dir, const struct skr_snp_emu_params *p, const struct init_result *r)
{
    char tcbm[17];
    char chip[2 * 64 + 1];
    char meas[2 * 48 + 1];
    char host[2 * 32 + 1];

    skr_snp_tcb_tcbm(p->tcb, tcbm);
    skr_hex_fmt(p->chip_id, p->product == SKR_SNP_PRODUCT_TURIN ? 8 : 64, chip);
    skr_hex_fmt(p->measurement, sizeof(p->measurement), meas);
    skr_hex_fmt(p->host_data, sizeof(p->host_data), host);
    printf("created an EMULATED offline Azure stack in %s\n", dir);
    printf("  %s/%s  %s/%s\n", dir, EMU_CA_CERT, dir, EMU_CA_KEY);
    printf("  %s/%s  %s/%s\n", dir, EMU_TLS_CERT, dir, EMU_TLS_KEY);
    printf("  %s/%s  %s/%s\n", dir, EMU_MAA_CERT, dir, EMU_MAA_KEY);
    printf("  %s/%s  %s/%s\n", dir, EMU_ENTRA_CERT, dir, EMU_ENTRA_KEY);
    printf("  %s/%s/  platform.json ark.pem ask.pem vcek.pem (keys: *.key)\n", dir, EMU_SNP_DIR);
    printf("  %s/%s\n", dir, EMU_SECCTX_POLICY);
    printf("  %s/%s\n", dir, EMU_SECCTX_HOST_AMD);
    printf("  %s/%s (JSON, not a COSE_Sign1)\n", dir, EMU_SECCTX_REF_INFO);
    printf("  %s/%s\n", dir, EMU_KEY_STORE);
    printf("  %s/%s\n", dir, EMU_CONFIG);
    printf("SEV-SNP platform (%s/%s):\n", dir, EMU_SNP_DIR);
    printf("  product:        %s\n", skr_snp_product_name(p->product));
    printf("  report version: %u\n", p->report_version);
    printf("  policy:         0x%llx\n", (unsigned long long)p->policy);
    printf("  tcb (tcbm):     %s\n", tcbm);
    printf("  chip id:        %s\n", chip);
    printf("  measurement:    %s\n", meas);
    printf("  host data:      %s\n", host);
    printf("  vmpl floor:     %u\n", p->vmpl_floor);
    printf("identities:\n");
    printf("  tenant id:      %s\n", r->tenant_id);
    printf("  client id:      %s\n", r->client_id);
    printf("  MAA kid:        %s\n", r->maa_kid);
    printf("  Entra kid:      %s\n", r->entra_kid);
    printf("NOTE: this is an EMULATOR. The CA, the AMD chain, the MAA and Entra keys and the UVM\n"
           "reference info are made up here; no real verifier trusts them. Use them for tests "
           "only.\n");
}

int
emu_cmd_init(int argc, char **argv)
{
    struct init_opts o = { 0 };
    struct skr_snp_emu_params p = { 0 };
    struct init_result r = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf policy = { 0 };
    skr_err err;
    int rc = parse_init(argc, argv, &o);

    if (rc != EMU_EXIT_OK) {
        return rc < 0 ? EMU_EXIT_OK : rc;
    }
    skr_buf_init(&policy, SKR_MAX_FILE_BYTES);
    rc = load_policy(&o, &policy);
    if (rc != EMU_EXIT_OK) {
        return rc;
    }
    if (!o.force && (exists(o.dir, EMU_CONFIG) || exists(o.dir, EMU_SNP_DIR "/platform.json"))) {
        fprintf(stderr,
                "skr-emu: %s already holds an emulator state (%s or %s/platform.json); use "
                "--force to replace it, key store included\n",
                o.dir, EMU_CONFIG, EMU_SNP_DIR);
        return EMU_EXIT_FAIL;
    }
    if (o.host_data_given) {
        fprintf(stderr, "skr-emu: warning: --host-data given: HOST_DATA will not be the SHA-256 "
                        "of the security policy, as it is in ACI\n");
    } else {
        err = sha256(skr_buf_span(&policy), o.params.host_data);
        if (err != SKR_OK) {
            return emu_report_err(err, "init");
        }
    }
    err = create_all(&o, skr_buf_span(&policy), &p, &r);
    if (err == SKR_E_INVALID_ARG) {
        fprintf(stderr, "skr-emu: init: %s\n", skr_err_msg());
        return EMU_EXIT_USAGE;
    }
    if (err != SKR_OK) {
        return emu_report_err(err, "init");
    }
    print_summary(o.dir, &p, &r);
    return EMU_EXIT_OK;
}
