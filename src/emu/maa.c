/*
 * maa.c - the Microsoft Azure Attestation emulator (PROTOCOLS.md §5; issue #3), served over
 * HTTPS by serve.c with emu_maa_handle as the handler:
 *
 *   POST /attest/SevSnpVm?api-version=2020-10-01|2022-08-01   (path case-insensitive)
 *   GET  /certs                                 JWKS of the token signing key (x5c and n/e)
 *   GET  /.well-known/openid-configuration      OIDC metadata (issuer, jwks_uri, ...)
 *
 * Attest request (§5.1): "report" is base64url (either alphabet, padded or not) of the report
 * bundle JSON {"SnpReport","VcekCertChain","Endorsements"?}; "runtimeData" {"data","dataType"}
 * is required; "initTimeData" is optional and SCC's {"data":"","dataType":""} counts as absent;
 * "nonce" may be a string or an integer (SCC sends a uint64 number, also past INT64_MAX);
 * "draftPolicyForAttestation" is accepted and ignored (the emulator always applies its default
 * policy, whose hash is x-ms-policy-hash); unknown members are ignored.
 *
 * Checks, in order, each failing with 400 {"error":{"code":"InvalidParameter","message":...}}
 * (and header x-ms-error-code) whose message names the check:
 *   the request and bundle parse; SnpReport is exactly one 1184-byte report; VcekCertChain
 *   loads; skr_snp_verify (signature, chain to the real AMD roots or the emulated ARK, validity,
 *   TCB vs VCEK, CHIP_ID vs hwID) passes - the message names the first failed check and lists
 *   the others; REPORT_DATA[0..31] == SHA-256(runtimeData) and REPORT_DATA[32..63] is zero;
 *   HOST_DATA == SHA-256(initTimeData) when given.
 * Endorsements, when present, must decode to {"Uvm":[base64url strings]}; the COSE_Sign1 UVM
 * endorsements inside are not verified (they are Microsoft-signed; none exist offline).
 *
 * Token (§5.3): RS256 with the MAA key, header {"alg","jku":<url>/certs,"kid","typ":"JWT"},
 * claims serialized with sorted keys (as the real service does, nested objects included),
 * 8 h lifetime, x-ms-compliance-status = emu.json "compliance_status" (default
 * "azure-compliant-uvm") only when an Endorsements.Uvm entry vouches for MEASUREMENT (the JSON
 * stand-in init writes; a real COSE_Sign1 cannot be verified offline), x-ms-runtime / x-ms-inittime
 * = the data parsed as a JSON object when dataType is "JSON" (a "Binary" payload only binds the
 * report).
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "b64.h"
#include "buf.h"
#include "err.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "service.h"
#include "skr_limits.h"
#include "snp_certs.h"
#include "snp_report.h"
#include "snp_verify.h"

#define MAA_PATH_ATTEST     "/attest/SevSnpVm"
#define MAA_PATH_CERTS      "/certs"
#define MAA_PATH_OPENID     "/.well-known/openid-configuration"
#define MAA_TOKEN_LIFETIME  28800 /* 8 h, as both real examples */
#define MAA_ERR_PARAM       "InvalidParameter"
#define MAA_DEFAULT_COMPLY  "azure-compliant-uvm"
#define MAA_MAX_NONCE_CHARS 1024u /* a nonce is echoed into the token; real ones are < 100 */

/* The policy the emulator applies to every request (permit all): x-ms-policy-hash is
 * BASE64URL(SHA256(UTF8(BASE64URL(UTF8(this text))))). */
static const char maa_default_policy[] = "version= 1.0;\n"
                                         "authorizationrules\n"
                                         "{\n"
                                         "    => permit();\n"
                                         "};\n";

static const char *const maa_api_versions[] = { "2020-10-01", "2022-08-01" };

static const char *const maa_claims_supported[] = {
    "iss",
    "iat",
    "nbf",
    "exp",
    "jti",
    "nonce",
    "x-ms-ver",
    "x-ms-attestation-type",
    "x-ms-compliance-status",
    "x-ms-policy-hash",
    "x-ms-runtime",
    "x-ms-inittime",
    "x-ms-sevsnpvm-authorkeydigest",
    "x-ms-sevsnpvm-bootloader-svn",
    "x-ms-sevsnpvm-familyId",
    "x-ms-sevsnpvm-guestsvn",
    "x-ms-sevsnpvm-hostdata",
    "x-ms-sevsnpvm-idkeydigest",
    "x-ms-sevsnpvm-imageId",
    "x-ms-sevsnpvm-is-debuggable",
    "x-ms-sevsnpvm-launchmeasurement",
    "x-ms-sevsnpvm-microcode-svn",
    "x-ms-sevsnpvm-migration-allowed",
    "x-ms-sevsnpvm-reportdata",
    "x-ms-sevsnpvm-reportid",
    "x-ms-sevsnpvm-smt-allowed",
    "x-ms-sevsnpvm-snpfw-svn",
    "x-ms-sevsnpvm-tee-svn",
    "x-ms-sevsnpvm-vmpl",
};

/* ---- helpers ------------------------------------------------------------------------- */

/* Prefixes the last error message with what (keeping the code). */
static skr_err
err_in(skr_err e, const char *what)
{
    char msg[sizeof(((struct skr_err_site *)NULL)->msg)];

    snprintf(msg, sizeof(msg), "%s", skr_err_msg());
    return skr_err_atf(e, __FILE__, __LINE__, "%s: %s", what, msg);
}

#define TRY_IN(expr, what)                                                                         \
    do {                                                                                           \
        skr_err try_in_err_ = (expr);                                                              \
        if (try_in_err_ != SKR_OK) {                                                               \
            return err_in(try_in_err_, (what));                                                    \
        }                                                                                          \
    } while (0)

/* Errors that the request caused (400); anything else is ours (500). */
static bool
is_client_error(skr_err e)
{
    switch (e) {
    case SKR_E_INVALID_ARG:
    case SKR_E_TRUNCATED:
    case SKR_E_MALFORMED:
    case SKR_E_TOO_LARGE:
    case SKR_E_NOT_FOUND:
    case SKR_E_UNSUPPORTED:
    case SKR_E_VERIFY:
    case SKR_E_POLICY:
        return true;
    default:
        return false;
    }
}

static skr_err
respond_error(struct skr_http_response *resp, unsigned int status, const char *code,
              const char *message)
{
    TRY(skr_http_respond_error_json(resp, status, code, message));
    return skr_http_response_add_header(resp, "x-ms-error-code", code);
}

static skr_err
sha256(struct skr_span in, uint8_t out[SHA256_DIGEST_LENGTH])
{
    TRY_OSSL(EVP_Digest(in.ptr, in.len, out, NULL, EVP_sha256(), NULL), SKR_E_INTERNAL,
             "SHA-256 failed");
    return SKR_OK;
}

/* Decodes a base64url (or base64) string member, padded or not, into out. */
static skr_err
decode_b64(const char *s, const char *what, struct skr_buf *out)
{
    skr_err e = skr_b64_decode(skr_span_str(s), SKR_B64_ANY, out);

    if (e != SKR_OK) {
        FAILF(SKR_E_MALFORMED, "%s is not valid base64url", what);
    }
    return SKR_OK;
}

/* ---- request body ---------------------------------------------------------------------- */

/*
 * jansson refuses integers past INT64_MAX, but SCC sends "nonce" as a Go uint64. When the body
 * does not parse, a copy with the first unescaped "nonce": <1..20 digits> quoted is tried once;
 * the original error stands when that does not help.
 */
static skr_err
quote_big_nonce(struct skr_span body, struct skr_buf *out)
{
    static const char key[] = "\"nonce\"";
    const size_t klen = sizeof(key) - 1;

    for (size_t i = 0; i + klen <= body.len; i++) {
        size_t j = i + klen;
        size_t d0;

        if (memcmp(body.ptr + i, key, klen) != 0 || (i > 0 && body.ptr[i - 1] == '\\')) {
            continue;
        }
        while (j < body.len && strchr(" \t\r\n", body.ptr[j]) != NULL && body.ptr[j] != '\0') {
            j++;
        }
        if (j >= body.len || body.ptr[j] != ':') {
            continue;
        }
        j++;
        while (j < body.len && strchr(" \t\r\n", body.ptr[j]) != NULL && body.ptr[j] != '\0') {
            j++;
        }
        d0 = j;
        while (j < body.len && body.ptr[j] >= '0' && body.ptr[j] <= '9') {
            j++;
        }
        if (j == d0 || j - d0 > 20) {
            continue;
        }
        TRY(skr_buf_append(out, body.ptr, d0));
        TRY(skr_buf_append_byte(out, '"'));
        TRY(skr_buf_append(out, body.ptr + d0, j - d0));
        TRY(skr_buf_append_byte(out, '"'));
        TRY(skr_buf_append(out, body.ptr + j, body.len - j));
        return SKR_OK;
    }
    FAIL(SKR_E_NOT_FOUND, "no numeric nonce");
}

static skr_err
parse_request(struct skr_span body, json_t **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf copy = { 0 };
    const char *nonce;

    ENSURE(body.len > 0, SKR_E_MALFORMED, "request body is empty");
    if (skr_json_parse_object(body, SKR_MAX_HTTP_BODY_BYTES, "request body", ret) == SKR_OK) {
        return SKR_OK;
    }
    skr_buf_init(&copy, SKR_MAX_HTTP_BODY_BYTES + 2);
    if (quote_big_nonce(body, &copy) != SKR_OK ||
        skr_json_parse_object(skr_buf_span(&copy), SKR_MAX_HTTP_BODY_BYTES + 2, "request body",
                              ret) != SKR_OK) {
        /* the original message */
        TRY(skr_json_parse_object(body, SKR_MAX_HTTP_BODY_BYTES, "request body", ret));
        FAIL(SKR_E_INTERNAL, "request body parsed on the second attempt");
    }
    nonce = json_string_value(json_object_get(*ret, "nonce"));
    if (nonce == NULL ||
        skr_parse_u64(skr_span_str(nonce), false, 0, UINT64_MAX, &(uint64_t){ 0 }) != SKR_OK) {
        json_decref(*ret);
        *ret = NULL;
        FAIL(SKR_E_MALFORMED, "request body: nonce is out of range (integers up to 2^64-1)");
    }
    return SKR_OK;
}

/* "nonce": a string, or an integer rendered in decimal; *ret NULL when absent. */
static skr_err
get_nonce(const json_t *req, json_t **ret)
{
    const json_t *n = json_object_get(req, "nonce");

    *ret = NULL;
    if (n == NULL || json_is_null(n)) {
        return SKR_OK;
    }
    if (json_is_string(n)) {
        ENSURE(json_string_length(n) <= MAA_MAX_NONCE_CHARS, SKR_E_TOO_LARGE,
               "nonce is longer than 1024 characters");
        *ret = json_stringn(json_string_value(n), json_string_length(n));
    } else if (json_is_integer(n)) {
        char s[32];

        snprintf(s, sizeof(s), "%lld", (long long)json_integer_value(n));
        *ret = json_string(s);
    } else {
        FAIL(SKR_E_MALFORMED, "nonce must be a string or an integer");
    }
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

static void
maa_data_done(struct emu_maa_data *d)
{
    skr_buf_done(&d->bytes);
    json_decref(d->parsed);
    d->parsed = NULL;
}

/*
 * Reads {"data": b64url, "dataType": "JSON"|"Binary"} named what. With allow_empty, a missing
 * member, null, or an empty "data" (SCC's {"data":"","dataType":""}) means absent.
 */
static skr_err
get_data(const json_t *req, const char *what, bool allow_empty, struct emu_maa_data *ret)
{
    const json_t *o = json_object_get(req, what);
    const char *data;
    const char *type;
    char label[64];

    skr_buf_init(&ret->bytes, SKR_MAX_HTTP_BODY_BYTES);
    ret->present = false;
    ret->parsed = NULL;
    if (allow_empty && (o == NULL || json_is_null(o))) {
        return SKR_OK;
    }
    if (o == NULL) {
        FAILF(SKR_E_MALFORMED, "%s is missing", what);
    }
    if (!json_is_object(o)) {
        FAILF(SKR_E_MALFORMED, "%s must be an object", what);
    }
    TRY_IN(skr_json_get_str(o, "data", &data), what);
    if (allow_empty && data[0] == '\0') {
        return SKR_OK;
    }
    TRY_IN(skr_json_get_str(o, "dataType", &type), what);
    snprintf(label, sizeof(label), "%s.data", what);
    TRY(decode_b64(data, label, &ret->bytes));
    if (strcasecmp(type, "JSON") == 0) {
        TRY(skr_json_parse_object(skr_buf_span(&ret->bytes), SKR_MAX_JSON_BYTES, label,
                                  &ret->parsed));
    } else if (strcasecmp(type, "Binary") != 0) {
        FAILF(SKR_E_MALFORMED, "%s.dataType must be \"JSON\" or \"Binary\"", what);
    }
    ret->present = true;
    return SKR_OK;
}

/* Does a decoded Uvm entry vouch for MEASUREMENT? A real entry is a COSE_Sign1 signed by
 * Microsoft (PROTOCOLS.md §4.4) that the emulator cannot verify, so it never does; the JSON
 * stand-in `skr-emu init` writes to reference-info-base64 does when its
 * x-ms-sevsnpvm-launchmeasurement equals the report's. */
static bool
uvm_vouches(struct skr_span entry, const struct skr_snp_report *r)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    char want[2 * sizeof(r->measurement) + 1];
    const char *m;

    if (skr_json_parse_object(entry, SKR_MAX_JSON_BYTES, "Uvm entry", &doc) != SKR_OK) {
        skr_err_clear();
        return false;
    }
    m = json_string_value(json_object_get(doc, "x-ms-sevsnpvm-launchmeasurement"));
    skr_hex_fmt(r->measurement, sizeof(r->measurement), want);
    return m != NULL && strcasecmp(m, want) == 0;
}

static skr_err
check_endorsements(const json_t *bundle, struct emu_attest_request *ev)
{
    _cleanup_(skr_buf_donep) struct skr_buf dec = { 0 };
    _cleanup_(json_decrefp) json_t *e = NULL;
    const json_t *s = json_object_get(bundle, "Endorsements");
    json_t *uvm;
    const json_t *v;
    size_t i;

    if (s == NULL) {
        return SKR_OK;
    }
    ENSURE(json_is_string(s), SKR_E_MALFORMED, "report bundle: Endorsements must be a string");
    skr_buf_init(&dec, SKR_MAX_HTTP_BODY_BYTES);
    TRY(decode_b64(json_string_value(s), "Endorsements", &dec));
    TRY(skr_json_parse_object(skr_buf_span(&dec), SKR_MAX_JSON_BYTES, "Endorsements", &e));
    TRY_IN(skr_json_get_arr(e, "Uvm", &uvm), "Endorsements");
    json_array_foreach(uvm, i, v)
    {
        skr_buf_reset(&dec);
        ENSURE(json_is_string(v), SKR_E_MALFORMED, "Endorsements.Uvm entries must be strings");
        TRY(decode_b64(json_string_value(v), "an Endorsements.Uvm entry", &dec));
        ev->uvm_endorsed = ev->uvm_endorsed || uvm_vouches(skr_buf_span(&dec), &ev->report);
    }
    return SKR_OK;
}

static skr_err
parse_evidence(const char *report_b64, struct emu_attest_request *ev)
{
    _cleanup_(skr_buf_donep) struct skr_buf dec = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf part = { 0 };
    _cleanup_(json_decrefp) json_t *bundle = NULL;
    const char *s;
    skr_err e;

    skr_buf_init(&dec, SKR_MAX_HTTP_BODY_BYTES);
    skr_buf_init(&part, SKR_MAX_HTTP_BODY_BYTES);
    TRY(decode_b64(report_b64, "report", &dec));
    TRY(skr_json_parse_object(skr_buf_span(&dec), SKR_MAX_JSON_BYTES, "report bundle", &bundle));
    TRY_IN(skr_json_get_str(bundle, "SnpReport", &s), "report bundle");
    TRY(decode_b64(s, "report bundle SnpReport", &part));
    TRY_IN(skr_snp_report_parse(skr_buf_span(&part), &ev->report), "SnpReport");
    memcpy(ev->raw, part.ptr, SKR_SNP_REPORT_LEN);
    skr_buf_reset(&part);
    TRY_IN(skr_json_get_str(bundle, "VcekCertChain", &s), "report bundle");
    TRY(decode_b64(s, "report bundle VcekCertChain", &part));
    e = skr_cert_set_load(skr_buf_span(&part), &ev->certs);
    if (e != SKR_OK) {
        return err_in(e == SKR_E_NOMEM ? e : SKR_E_MALFORMED, "VcekCertChain");
    }
    ENSURE(ev->certs.vcek != NULL, SKR_E_MALFORMED, "VcekCertChain holds no VCEK or VLEK");
    return check_endorsements(bundle, ev);
}

/* skr_snp_verify with the emulated roots; on failure the message names the checks. */
static skr_err
verify_evidence(struct emu_ctx *ctx, struct emu_attest_request *ev,
                enum skr_snp_product *ret_product)
{
    struct skr_snp_verify_opts opts = { .extra_roots = ctx->snp_roots };
    struct skr_snp_verify_result res;
    const struct skr_check *first;
    char others[160] = "";
    size_t used = 0;
    skr_err e;

    memset(&res, 0, sizeof(res));
    e = skr_snp_verify(&ev->report, skr_span_make(ev->raw, sizeof(ev->raw)), &ev->certs, &opts,
                       &res);
    *ret_product = res.product;
    if (e == SKR_OK) {
        return SKR_OK;
    }
    first = skr_snp_verify_first_failure(&res);
    if (first == NULL) {
        return err_in(e, "SNP report verification");
    }
    for (size_t i = 0; i < res.n; i++) {
        const struct skr_check *c = &res.checks[i];
        int n;

        if (c->status != SKR_CHECK_FAIL || c == first || used >= sizeof(others)) {
            continue;
        }
        n = snprintf(others + used, sizeof(others) - used, "%s%s", used == 0 ? "" : ", ", c->name);
        used = n < 0 ? sizeof(others) : used + (size_t)n;
    }
    FAILF(SKR_E_VERIFY, "SNP report verification failed: %s: %s%s%s%s", first->name, first->detail,
          others[0] != '\0' ? " (also failed: " : "", others, others[0] != '\0' ? ")" : "");
}

static skr_err
check_binding(const struct skr_snp_report *r, const struct emu_maa_data *rt,
              const struct emu_maa_data *it)
{
    uint8_t h[SHA256_DIGEST_LENGTH];

    TRY(sha256(skr_buf_span(&rt->bytes), h));
    ENSURE(memcmp(r->report_data, h, sizeof(h)) == 0, SKR_E_VERIFY,
           "report data check failed: REPORT_DATA[0..31] is not SHA-256 of runtimeData");
    ENSURE(skr_span_is_zero(skr_span_make(r->report_data + 32, 32)), SKR_E_VERIFY,
           "report data check failed: REPORT_DATA[32..63] is not zero");
    if (it->present) {
        TRY(sha256(skr_buf_span(&it->bytes), h));
        ENSURE(memcmp(r->host_data, h, sizeof(h)) == 0, SKR_E_VERIFY,
               "host data check failed: HOST_DATA is not SHA-256 of initTimeData");
    }
    return SKR_OK;
}

/* ---- token ------------------------------------------------------------------------------ */

static skr_err
policy_hash(json_t *claims)
{
    _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };
    uint8_t h[SHA256_DIGEST_LENGTH];
    const char *s;

    skr_buf_init(&b64, 4096);
    skr_buf_init(&out, 64);
    TRY(skr_b64_encode(skr_span_make(maa_default_policy, sizeof(maa_default_policy) - 1),
                       SKR_B64_URL, &b64));
    TRY(sha256(skr_buf_span(&b64), h));
    TRY(skr_b64_encode(skr_span_make(h, sizeof(h)), SKR_B64_URL, &out));
    TRY(skr_buf_cstr(&out, &s));
    return skr_json_set(claims, "x-ms-policy-hash", json_string(s));
}

static skr_err
set_int(json_t *o, const char *key, json_int_t v)
{
    return skr_json_set(o, key, json_integer(v));
}

static skr_err
set_bool(json_t *o, const char *key, bool v)
{
    return skr_json_set(o, key, json_boolean(v));
}

static skr_err
report_claims(json_t *c, const struct skr_snp_report *r, enum skr_snp_product p)
{
    struct skr_snp_tcb tcb;

    skr_snp_tcb_decode(r->reported_tcb, p, &tcb);
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-authorkeydigest", r->author_key_digest,
                         sizeof(r->author_key_digest)));
    TRY(set_int(c, "x-ms-sevsnpvm-bootloader-svn", tcb.bootloader));
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-familyId", r->family_id, sizeof(r->family_id)));
    TRY(set_int(c, "x-ms-sevsnpvm-guestsvn", r->guest_svn));
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-hostdata", r->host_data, sizeof(r->host_data)));
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-idkeydigest", r->id_key_digest,
                         sizeof(r->id_key_digest)));
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-imageId", r->image_id, sizeof(r->image_id)));
    TRY(set_bool(c, "x-ms-sevsnpvm-is-debuggable", (r->policy & SKR_SNP_POLICY_DEBUG) != 0));
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-launchmeasurement", r->measurement,
                         sizeof(r->measurement)));
    TRY(set_int(c, "x-ms-sevsnpvm-microcode-svn", tcb.microcode));
    TRY(set_bool(c, "x-ms-sevsnpvm-migration-allowed",
                 (r->policy & SKR_SNP_POLICY_MIGRATE_MA) != 0));
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-reportdata", r->report_data, sizeof(r->report_data)));
    TRY(skr_json_set_hex(c, "x-ms-sevsnpvm-reportid", r->report_id, sizeof(r->report_id)));
    TRY(set_bool(c, "x-ms-sevsnpvm-smt-allowed", (r->policy & SKR_SNP_POLICY_SMT) != 0));
    TRY(set_int(c, "x-ms-sevsnpvm-snpfw-svn", tcb.snp));
    TRY(set_int(c, "x-ms-sevsnpvm-tee-svn", tcb.tee));
    return set_int(c, "x-ms-sevsnpvm-vmpl", r->vmpl);
}

static skr_err
issue_token(struct emu_ctx *ctx, const struct emu_attest_request *ev, enum skr_snp_product p,
            struct skr_buf *out)
{
    const struct skr_snp_report *r = &ev->report;
    const struct emu_maa_data *rt = &ev->runtime;
    const struct emu_maa_data *it = &ev->inittime;
    json_t *nonce = ev->nonce;
    _cleanup_(json_decrefp) json_t *c = json_object();
    _cleanup_(json_decrefp) json_t *sorted = NULL;
    _cleanup_(json_decrefp) json_t *hdr = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf ser = { 0 };
    char jku[sizeof(ctx->maa_url) + sizeof(MAA_PATH_CERTS)];
    uint8_t rnd[32];
    char jti[2 * sizeof(rnd) + 1];
    const char *comply = NULL;
    json_int_t now = (json_int_t)time(NULL);

    ENSURE(c != NULL, SKR_E_NOMEM, "out of memory");
    ENSURE(ctx->maa_url[0] != '\0' && ctx->maa_key != NULL, SKR_E_INTERNAL,
           "MAA emulator not configured");
    TRY_OSSL(RAND_bytes(rnd, sizeof(rnd)), SKR_E_INTERNAL, "RAND_bytes failed");
    skr_hex_fmt(rnd, sizeof(rnd), jti);
    if (ctx->config != NULL) {
        comply = json_string_value(json_object_get(ctx->config, "compliance_status"));
    }
    TRY(skr_json_set(c, "iss", json_string(ctx->maa_url)));
    TRY(set_int(c, "iat", now));
    TRY(set_int(c, "nbf", now));
    TRY(set_int(c, "exp", now + MAA_TOKEN_LIFETIME));
    TRY(skr_json_set(c, "jti", json_string(jti)));
    if (nonce != NULL) {
        TRY(skr_json_set(c, "nonce", json_incref(nonce)));
    }
    TRY(skr_json_set(c, "x-ms-ver", json_string("1.0")));
    TRY(skr_json_set(c, "x-ms-attestation-type", json_string("sevsnpvm")));
    /* MAA says the UVM is compliant only when an endorsement vouches for the measurement
     * (PROTOCOLS.md §4.4); without one the claim is absent, and policies requiring it deny. */
    if (ev->uvm_endorsed) {
        TRY(skr_json_set(c, "x-ms-compliance-status",
                         json_string(comply != NULL ? comply : MAA_DEFAULT_COMPLY)));
    }
    TRY(policy_hash(c));
    if (rt->parsed != NULL) {
        TRY(skr_json_set(c, "x-ms-runtime", json_incref(rt->parsed)));
    }
    if (it->parsed != NULL) {
        TRY(skr_json_set(c, "x-ms-inittime", json_incref(it->parsed)));
    }
    TRY(report_claims(c, r, p));

    /* sorted keys at every level, as MAA serializes its tokens */
    skr_buf_init(&ser, SKR_MAX_JWT_BYTES);
    TRY(skr_json_dump(c, JSON_COMPACT | JSON_SORT_KEYS, &ser));
    TRY(skr_json_parse(skr_buf_span(&ser), SKR_MAX_JWT_BYTES, &sorted));

    snprintf(jku, sizeof(jku), "%s%s", ctx->maa_url, MAA_PATH_CERTS);
    hdr = json_pack("{s:s, s:s, s:s}", "jku", jku, "kid", ctx->maa_kid, "typ", "JWT");
    ENSURE(hdr != NULL, SKR_E_NOMEM, "out of memory");
    return skr_jwt_sign_rs256(ctx->maa_key, hdr, sorted, out);
}

void
emu_attest_request_done(struct emu_attest_request *req)
{
    if (req == NULL) {
        return;
    }
    skr_cert_set_done(&req->certs);
    maa_data_done(&req->runtime);
    maa_data_done(&req->inittime);
    json_decref(req->nonce);
    req->nonce = NULL;
}

skr_err
emu_maa_parse_attest(struct skr_span body, struct emu_attest_request *out)
{
    _cleanup_(json_decrefp) json_t *req = NULL;
    const char *report;

    ENSURE(out != NULL, SKR_E_INVALID_ARG, "NULL argument");
    skr_buf_init(&out->runtime.bytes, SKR_MAX_HTTP_BODY_BYTES);
    skr_buf_init(&out->inittime.bytes, SKR_MAX_HTTP_BODY_BYTES);
    TRY(parse_request(body, &req));
    TRY_IN(skr_json_get_str(req, "report", &report), "request");
    TRY(get_data(req, "runtimeData", false, &out->runtime));
    TRY(get_data(req, "initTimeData", true, &out->inittime));
    TRY(get_nonce(req, &out->nonce));
    return parse_evidence(report, out);
}

/* Everything after routing: fills *ret_token or fails with a message for the client. */
static skr_err
attest(struct emu_ctx *ctx, struct skr_span body, struct skr_buf *token)
{
    _cleanup_free_ struct emu_attest_request *ev = calloc(1, sizeof(*ev));
    enum skr_snp_product product;
    skr_err e;

    ENSURE(ev != NULL, SKR_E_NOMEM, "out of memory");
    e = emu_maa_parse_attest(body, ev);
    if (e == SKR_OK) {
        e = verify_evidence(ctx, ev, &product);
    }
    if (e == SKR_OK) {
        e = check_binding(&ev->report, &ev->runtime, &ev->inittime);
    }
    if (e == SKR_OK) {
        e = issue_token(ctx, ev, product, token);
    }
    emu_attest_request_done(ev);
    return e;
}

/* ---- routes ----------------------------------------------------------------------------- */

static skr_err
handle_attest(struct emu_ctx *ctx, const struct skr_http_request *req,
              struct skr_http_response *resp)
{
    _cleanup_(skr_buf_donep) struct skr_buf token = { 0 };
    _cleanup_(json_decrefp) json_t *out = NULL;
    const char *v = skr_http_request_query(req, "api-version");
    bool known = false;
    const char *s;
    skr_err e;

    if (v == NULL) {
        return respond_error(resp, 400, "MissingApiVersionParameter",
                             "The api-version query parameter (?api-version=) is required");
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(maa_api_versions); i++) {
        known = known || strcmp(v, maa_api_versions[i]) == 0;
    }
    if (!known) {
        return respond_error(resp, 400, "InvalidApiVersionParameter",
                             "Unsupported api-version: the emulator serves SevSnpVm attestation "
                             "for 2020-10-01 and 2022-08-01");
    }
    skr_buf_init(&token, SKR_MAX_JWT_BYTES);
    e = attest(ctx, req->body, &token);
    if (e != SKR_OK) {
        if (!is_client_error(e)) {
            return e;
        }
        return respond_error(resp, 400, MAA_ERR_PARAM, skr_err_msg());
    }
    TRY(skr_buf_cstr(&token, &s));
    out = json_pack("{s:s}", "token", s);
    ENSURE(out != NULL, SKR_E_NOMEM, "out of memory");
    return skr_http_respond_json(resp, 200, out);
}

static skr_err
handle_certs(struct emu_ctx *ctx, struct skr_http_response *resp)
{
    _cleanup_(json_decrefp) json_t *jwk = NULL;
    _cleanup_(json_decrefp) json_t *out = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf b64 = { 0 };
    _cleanup_(skr_ossl_freep) unsigned char *der = NULL;
    const char *s;
    int n;

    ENSURE(ctx->maa_key != NULL && ctx->maa_cert != NULL, SKR_E_INTERNAL,
           "MAA emulator not configured");
    n = i2d_X509(ctx->maa_cert, &der);
    ENSURE(n > 0, SKR_E_INTERNAL, "cannot encode the MAA certificate");
    skr_buf_init(&b64, 4 * SKR_MAX_CERT_BYTES);
    TRY(skr_b64_encode(skr_span_make(der, (size_t)n), SKR_B64_STD | SKR_B64_PAD, &b64));
    TRY(skr_buf_cstr(&b64, &s));
    TRY(skr_jwk_from_pkey(ctx->maa_key, false, &jwk));
    TRY(skr_json_set(jwk, "kid", json_string(ctx->maa_kid)));
    TRY(skr_json_set(jwk, "x5c", json_pack("[s]", s)));
    out = json_pack("{s:[O]}", "keys", jwk);
    ENSURE(out != NULL, SKR_E_NOMEM, "out of memory");
    return skr_http_respond_json(resp, 200, out);
}

static skr_err
handle_openid(struct emu_ctx *ctx, struct skr_http_response *resp)
{
    _cleanup_(json_decrefp) json_t *out = json_object();
    json_t *claims = json_array();
    char url[sizeof(ctx->maa_url) + 32];

    if (claims == NULL || out == NULL) {
        json_decref(claims);
        FAIL(SKR_E_NOMEM, "out of memory");
    }
    TRY(skr_json_set(out, "claims_supported", claims));
    for (size_t i = 0; i < SKR_ARRAY_LEN(maa_claims_supported); i++) {
        ENSURE(json_array_append_new(claims, json_string(maa_claims_supported[i])) == 0,
               SKR_E_NOMEM, "out of memory");
    }
    TRY(skr_json_set(out, "id_token_signing_alg_values_supported", json_pack("[s]", "RS256")));
    TRY(skr_json_set(out, "issuer", json_string(ctx->maa_url)));
    snprintf(url, sizeof(url), "%s%s", ctx->maa_url, MAA_PATH_CERTS);
    TRY(skr_json_set(out, "jwks_uri", json_string(url)));
    TRY(skr_json_set(out, "response_types_supported", json_pack("[s,s]", "token", "none")));
    snprintf(url, sizeof(url), "%s/revoke", ctx->maa_url);
    TRY(skr_json_set(out, "revocation_endpoint", json_string(url)));
    return skr_http_respond_json(resp, 200, out);
}

static skr_err
method_not_allowed(struct skr_http_response *resp, const char *allow)
{
    TRY(respond_error(resp, 405, "MethodNotAllowed",
                      "The requested method is not allowed for this resource"));
    return skr_http_response_add_header(resp, "Allow", allow);
}

skr_err
emu_maa_handle(void *vctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct emu_ctx *ctx = vctx;

    ENSURE(ctx != NULL && req != NULL && resp != NULL, SKR_E_INVALID_ARG, "NULL argument");
    if (strcasecmp(req->path, MAA_PATH_ATTEST) == 0) {
        if (strcmp(req->method, "POST") != 0) {
            return method_not_allowed(resp, "POST");
        }
        return handle_attest(ctx, req, resp);
    }
    if (strcasecmp(req->path, MAA_PATH_CERTS) == 0 || strcasecmp(req->path, MAA_PATH_OPENID) == 0) {
        if (strcmp(req->method, "GET") != 0) {
            return method_not_allowed(resp, "GET");
        }
        if (strcasecmp(req->path, MAA_PATH_CERTS) == 0) {
            return handle_certs(ctx, resp);
        }
        return handle_openid(ctx, resp);
    }
    return respond_error(resp, 404, "NotFound", "The requested resource does not exist");
}
