/*
 * diagnose.c - the release flow step by step, for `skr diagnose` and skrd's GET /diagnose
 * (diagnose.h lists the steps).
 *
 * Each step uses the flow's own pieces (release_certs.c for the report, the certificate sources
 * and their TCB recovery; azure.c for MAA and the vault; policy.c for the decision Key Vault
 * makes) so that what it reports is what a release would meet. Nothing secret leaves here: the
 * vault token and the MAA token stay in wiped memory and only their claims are described; the
 * released key is unwrapped to prove the release works and freed (wiped) at once.
 */
#include "diagnose.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/sha.h>

#include "b64.h"
#include "err.h"
#include "hex.h"
#include "jose.h"
#include "json.h"
#include "ossl.h"
#include "policy.h"
#include "release_int.h"
#include "snp_verify.h"

/* One step's detail line and its fix: long enough for two URLs, a key id and two hex digests. */
#define DIAG_DETAIL 1024
#define DIAG_CAUSE  640
#define DIAG_FIX    512
/* Values shown in the summary sentence are cut to this many characters (hex digests). */
#define DIAG_SHORT 12

enum step_id {
    S_DEVICE = 0,
    S_SECCTX,
    S_CERTS,
    S_VERIFY,
    S_IDENTITY,
    S_MAA,
    S_KEY,
    S_POLICY,
    S_RELEASE,
};

const char *const skr_diag_step_names[SKR_DIAG_STEP_COUNT] = {
    "SNP device",     "security context", "certificates", "report verification",
    "identity token", "MAA attestation",  "key",          "release policy",
    "key release",
};

enum step_status {
    ST_PENDING = 0,
    ST_OK,
    ST_WARN,
    ST_FAIL,
    ST_SKIP,
};

static const char *const status_names[] = { "skip", "ok", "warn", "fail", "skip" };

struct step {
    enum step_status status;
    uint64_t ms;
    char detail[DIAG_DETAIL];
    char cause[DIAG_CAUSE]; /* for the summary; "" = the detail */
    char fix[DIAG_FIX];
};

struct diag {
    const struct skr_config *cfg;
    const struct skr_diag_request *req;
    const char *maa, *akv, *kid; /* NULL when not given */
    struct step s[SKR_DIAG_STEP_COUNT];
    uint64_t t0;
    skr_client *c;   /* the client the steps use (borrowed or own) */
    skr_client *own; /* built here */
    bool have_probe;
    struct skr_snp_report probe;
    EVP_PKEY *tkey;
    char tkid[SKR_THUMBPRINT_LEN];
    struct skr_buf jwks;
    bool have_ev;
    struct rel_evidence ev;
    struct skr_secret *bearer;
    char oid[96];
    struct skr_buf maa_token;
    struct skr_jws maa_jws;
    json_t *bundle;
    struct skr_policy *pol;
};

DEFINE_CLEANUP(skr_config *, skr_config_free)

static const char *
given(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* ---- step records ------------------------------------------------------------------------- */

static void put(char *dst, size_t cap, const char *fmt, ...) SKR_PRINTF(3, 4);
static void add(char *dst, size_t cap, const char *fmt, ...) SKR_PRINTF(3, 4);

static void
put(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

static void
add(char *dst, size_t cap, const char *fmt, ...)
{
    size_t n = strnlen(dst, cap);
    va_list ap;

    if (n + 1 >= cap) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(dst + n, cap - n, fmt, ap);
    va_end(ap);
}

static void
begin(struct diag *d)
{
    d->t0 = rel_now_ms();
}

/* Closes step i with status st; the caller fills detail, cause and fix. */
static struct step *
done(struct diag *d, enum step_id i, enum step_status st)
{
    struct step *s = &d->s[i];

    s->status = st;
    s->ms = rel_now_ms() - d->t0;
    return s;
}

static void
skip(struct diag *d, enum step_id i, const char *why)
{
    struct step *s = &d->s[i];

    if (s->status == ST_PENDING) {
        s->status = ST_SKIP;
        s->ms = 0;
        put(s->detail, sizeof(s->detail), "%s", why);
    }
}

static bool
passed(const struct diag *d, enum step_id i)
{
    return d->s[i].status == ST_OK || d->s[i].status == ST_WARN;
}

/* "skipped: <step> failed" for the steps that need step i. */
static void
skip_after(struct diag *d, enum step_id need, enum step_id i)
{
    char why[128];

    put(why, sizeof(why), "not run: step \"%s\" %s", skr_diag_step_names[need],
        d->s[need].status == ST_FAIL ? "failed" : "did not run");
    skip(d, i, why);
}

/* A value as the summary shows it: at most DIAG_SHORT characters, then an ellipsis. */
static void
short_value(const char *v, char *out, size_t cap)
{
    if (strlen(v) > DIAG_SHORT + 2) {
        put(out, cap, "%.*s\u2026", DIAG_SHORT, v);
    } else {
        put(out, cap, "%s", v);
    }
}

/* " (HTTP 403, Forbidden: message)" from an upstream record; "" when nothing arrived. */
static void
up_text(const struct skr_upstream *up, char *out, size_t cap)
{
    out[0] = '\0';
    if (up->status == 0) {
        return;
    }
    put(out, cap, " (HTTP %ld", up->status);
    if (up->code[0] != '\0') {
        add(out, cap, ", %s", up->code);
    }
    if (up->message[0] != '\0') {
        add(out, cap, ": %s", up->message);
    }
    add(out, cap, ")");
}

/* " [request id X]" for a detail line (the error message already names status and code). */
static void
req_id(const struct skr_upstream *up, char *out, size_t cap)
{
    out[0] = '\0';
    if (up->request_id[0] != '\0') {
        put(out, cap, " [request id %s]", up->request_id);
    }
}

static void
deadline_start(struct diag *d, struct rel_call *call)
{
    uint64_t dl = rel_now_ms() + rel_opt_uint(d->c->cfg, OPT_RELEASE_DEADLINE_MS);

    if (call != NULL) {
        *call = (struct rel_call){ .c = d->c, .stage = "input", .no_cert_cache = true };
        call->deadline_ms = dl;
    }
    skr_http_set_deadline(dl);
}

/* ---- SNP device ----------------------------------------------------------------------------- */

static skr_err
probe_config(struct diag *d, const char *spec, const char **name)
{
    struct skr_snp_dev_cfg dc;
    _cleanup_(skr_snp_dev_freep) struct skr_snp_dev *dev = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    uint8_t rd[64] = { 0 };

    ENSURE(strcmp(spec, "none") != 0, SKR_E_NOT_FOUND,
           "snp_device is none: no SEV-SNP device is used");
    TRY(skr_snp_dev_parse_spec(spec, &dc));
    TRY(skr_snp_dev_open(&dc, &dev));
    *name = skr_snp_dev_name(dev);
    skr_buf_init(&raw, SKR_SNP_REPORT_LEN);
    TRY(skr_snp_dev_get_report(dev, rd, 0, &raw, NULL));
    ENSURE(raw.len == SKR_SNP_REPORT_LEN, SKR_E_DEVICE,
           "the device returned a report of the wrong size");
    return skr_snp_report_parse(skr_buf_span(&raw), &d->probe);
}

static skr_err
probe_client(struct diag *d, const char **name)
{
    struct rel_call call;
    _cleanup_(rel_evidence_donep) struct rel_evidence ev = { 0 };

    ENSURE(d->c->dev != NULL, SKR_E_NOT_FOUND,
           "the client was made with snp_device none: no SEV-SNP device is used");
    *name = skr_snp_dev_name(d->c->dev);
    deadline_start(d, &call);
    TRY(rel_evidence_get(&call, skr_span_make(NULL, 0), false, &ev));
    d->probe = ev.report;
    return SKR_OK;
}

static void
step_device(struct diag *d)
{
    const char *spec = rel_opt_str(d->cfg, OPT_SNP_DEVICE);
    const char *name = "?";
    char tcbm[17];
    struct step *s;
    skr_err e;

    begin(d);
    e = d->c != NULL ? probe_client(d, &name) : probe_config(d, spec, &name);
    if (e != SKR_OK) {
        s = done(d, S_DEVICE, ST_FAIL);
        put(s->detail, sizeof(s->detail), "%s: %s", spec, skr_err_msg());
        put(s->cause, sizeof(s->cause), "no usable SEV-SNP device (snp_device %s): %s", spec,
            skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s",
            e == SKR_E_NOT_FOUND
                ? "run inside an SEV-SNP confidential container or VM (/dev/sev-guest, /dev/sev or "
                  "configfs-tsm; ACI confidential SKU, AKS confidential node pool), or use "
                  "--snp-device emulated:DIR for tests"
                : "check the guest's SEV-SNP device: driver, permissions and --snp-device");
        return;
    }
    d->have_probe = true;
    skr_snp_tcb_tcbm(d->probe.reported_tcb, tcbm);
    s = done(d, S_DEVICE, (d->probe.policy & SKR_SNP_POLICY_DEBUG) != 0 ? ST_WARN : ST_OK);
    put(s->detail, sizeof(s->detail),
        "%s opened (%s); report v%" PRIu32 " (%s), VMPL %" PRIu32 ", guest policy 0x%" PRIx64
        ", reported TCB %s",
        spec, name, d->probe.version, skr_snp_product_name(skr_snp_report_product(&d->probe)),
        d->probe.vmpl, d->probe.policy, tcbm);
    if (s->status == ST_WARN) {
        add(s->detail, sizeof(s->detail),
            "; the guest policy allows debugging (bit 19): MAA reports "
            "x-ms-sevsnpvm-is-debuggable true");
        put(s->fix, sizeof(s->fix), "%s",
            "production deployments run without debugging: a key whose release policy requires "
            "x-ms-sevsnpvm-is-debuggable false is not released to this guest");
    }
}

/* ---- security context ----------------------------------------------------------------------- */

enum sc_src {
    SC_ABSENT = 0,
    SC_FILE,
    SC_OPTION,
};

/* An item's text: the file in dir when it exists, else the legacy option's value. */
static skr_err
sc_load(const struct diag *d, const char *dir, const char *name, enum rel_opt legacy,
        struct skr_buf *out, enum sc_src *src)
{
    char path[4200];
    struct stat st;
    const char *v = rel_opt_str(d->cfg, legacy);

    *src = SC_ABSENT;
    if (dir != NULL) {
        put(path, sizeof(path), "%s/%s", dir, name);
        if (stat(path, &st) == 0) {
            if (skr_read_file(path, out) != SKR_OK) {
                FAILF(SKR_E_IO, "cannot read %s: %s", path, skr_err_msg());
            }
            *src = SC_FILE;
            return SKR_OK;
        }
    }
    if (v != NULL) {
        *src = SC_OPTION;
        return skr_buf_append_str(out, v);
    }
    return SKR_OK;
}

static const char *
src_name(enum sc_src s)
{
    return s == SC_FILE ? "" : " (from the legacy variable)";
}

static void
step_secctx(struct diag *d)
{
    static const char fix_dir[] =
        "point --security-context-dir (skrd: UVM_SECURITY_CONTEXT_DIR) at the directory ACI "
        "mounts for this container group (/security-context-*)";
    const char *dir = rel_opt_str(d->cfg, OPT_SECURITY_CONTEXT_DIR);
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf dec = { 0 };
    _cleanup_(skr_thim_done) struct skr_thim thim = { 0 };
    struct step *s = &d->s[S_SECCTX];
    enum sc_src src = SC_ABSENT;
    enum sc_src srcs[3];
    uint8_t md[32];
    char hex_pol[65] = "";
    char hex_rep[65];
    char a[32];
    char b[32];
    struct stat st;
    bool has_policy = false;
    bool warn = false;

    begin(d);
    if (dir != NULL && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        s = done(d, S_SECCTX, ST_FAIL);
        put(s->detail, sizeof(s->detail), "security_context_dir %s is not a directory", dir);
        put(s->fix, sizeof(s->fix), "%s", fix_dir);
        return;
    }
    put(s->detail, sizeof(s->detail), "%s: ", dir != NULL ? dir : "no directory");
    skr_buf_init(&text, SKR_MAX_FILE_BYTES);
    skr_buf_init(&dec, SKR_MAX_FILE_BYTES);

    /* security-policy-base64: its SHA-256 is the HOST_DATA the platform measured at launch */
    if (sc_load(d, dir, "security-policy-base64", OPT_SECURITY_POLICY, &text, &src) != SKR_OK ||
        (src != SC_ABSENT &&
         skr_b64_decode(skr_buf_span(&text), SKR_B64_STD | SKR_B64_SKIP_WS, &dec) != SKR_OK)) {
        s = done(d, S_SECCTX, ST_FAIL);
        add(s->detail, sizeof(s->detail), "security-policy-base64: %s", skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s", fix_dir);
        return;
    }
    srcs[0] = src;
    if (src != SC_ABSENT && dec.len > 0) {
        has_policy = true;
        (void)SHA256(dec.ptr, dec.len, md);
        skr_hex_fmt(md, sizeof(md), hex_pol);
        add(s->detail, sizeof(s->detail), "security-policy-base64%s (%zu bytes, SHA-256 %s), ",
            src_name(src), dec.len, hex_pol);
    } else {
        add(s->detail, sizeof(s->detail), "security-policy-base64 absent, ");
    }

    /* host-amd-cert-base64: THIM JSON of the VCEK (compared with the report in "certificates") */
    skr_buf_reset(&text);
    if (sc_load(d, dir, "host-amd-cert-base64", OPT_HOST_AMD_CERT, &text, &src) != SKR_OK ||
        (src != SC_ABSENT && skr_thim_parse_b64(skr_buf_span(&text), &thim) != SKR_OK)) {
        s = done(d, S_SECCTX, ST_FAIL);
        add(s->detail, sizeof(s->detail), "host-amd-cert-base64: %s", skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s", fix_dir);
        return;
    }
    srcs[1] = src;
    if (src != SC_ABSENT) {
        add(s->detail, sizeof(s->detail), "host-amd-cert-base64%s (THIM tcbm %s), ", src_name(src),
            thim.tcbm_str);
    } else {
        add(s->detail, sizeof(s->detail), "host-amd-cert-base64 absent, ");
    }

    /* reference-info-base64: the UVM endorsement MAA checks (x-ms-compliance-status) */
    skr_buf_reset(&text);
    skr_buf_reset(&dec);
    if (sc_load(d, dir, "reference-info-base64", OPT_UVM_REFERENCE_INFO, &text, &src) != SKR_OK ||
        (src != SC_ABSENT &&
         skr_b64_decode(skr_buf_span(&text), SKR_B64_STD | SKR_B64_SKIP_WS, &dec) != SKR_OK)) {
        s = done(d, S_SECCTX, ST_FAIL);
        add(s->detail, sizeof(s->detail), "reference-info-base64: %s", skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s", fix_dir);
        return;
    }
    srcs[2] = src;
    if (src != SC_ABSENT) {
        add(s->detail, sizeof(s->detail), "reference-info-base64%s (%zu bytes)", src_name(src),
            dec.len);
    } else {
        add(s->detail, sizeof(s->detail), "reference-info-base64 absent");
    }

    if (srcs[0] == SC_ABSENT && srcs[1] == SC_ABSENT && srcs[2] == SC_ABSENT) {
        s = done(d, S_SECCTX, ST_WARN);
        put(s->detail, sizeof(s->detail), "%s",
            "no security context given: MAA receives no security policy (initTimeData) and no "
            "UVM endorsement, and certificates come from the device or THIM");
        put(s->fix, sizeof(s->fix), "%s", fix_dir);
        return;
    }
    if (!d->have_probe) {
        add(s->detail, sizeof(s->detail), "; HOST_DATA not compared: no report");
    } else if (has_policy) {
        skr_hex_fmt(d->probe.host_data, sizeof(d->probe.host_data), hex_rep);
        if (CRYPTO_memcmp(md, d->probe.host_data, sizeof(md)) != 0) {
            s = done(d, S_SECCTX, ST_FAIL);
            add(s->detail, sizeof(s->detail), "; the report's HOST_DATA is %s", hex_rep);
            short_value(hex_pol, a, sizeof(a));
            short_value(hex_rep, b, sizeof(b));
            put(s->cause, sizeof(s->cause),
                "the security policy hashes to %s but the platform's HOST_DATA is %s", a, b);
            put(s->fix, sizeof(s->fix),
                "use the security context of this container group: %s; the policy there is the "
                "one the platform measured at launch",
                fix_dir);
            return;
        }
        add(s->detail, sizeof(s->detail), "; HOST_DATA = SHA-256 of the policy");
    } else {
        warn = !skr_span_is_zero(skr_span_make(d->probe.host_data, 32));
        if (warn) {
            add(s->detail, sizeof(s->detail),
                "; the report has a HOST_DATA but no security policy is given to match it");
            put(s->fix, sizeof(s->fix), "%s", fix_dir);
        }
    }
    done(d, S_SECCTX, warn ? ST_WARN : ST_OK);
}

/* ---- the client ----------------------------------------------------------------------------- */

/* A copy of the configuration for diagnose's own client: no key pool thread, no reuse window
 * (every attestation is fresh), and no device when the device step failed. */
static skr_err
own_config(const struct diag *d, skr_config **ret)
{
    _cleanup_(skr_config_freep) skr_config *c = NULL;

    TRY(skr_config_new(&c));
    for (size_t i = 0; i < OPT_COUNT_; i++) {
        if (d->cfg->val[i] != NULL) {
            c->val[i] = strdup(d->cfg->val[i]);
            ENSURE(c->val[i] != NULL, SKR_E_NOMEM, "out of memory");
        }
    }
    TRY(skr_config_set(c, "pool_size", "0"));
    TRY(skr_config_set(c, "reuse_window_s", "0"));
    if (!passed(d, S_DEVICE)) {
        TRY(skr_config_set(c, "snp_device", "none"));
    }
    *ret = TAKE_PTR(c);
    return SKR_OK;
}

/* Builds the client when none was given. false (with the failure recorded on the first step
 * that needs it) when it cannot be built. */
static bool
build_client(struct diag *d, skr_err *fatal)
{
    _cleanup_(skr_config_freep) skr_config *cc = NULL;
    skr_error_info info;
    enum step_id at = passed(d, S_DEVICE) ? S_CERTS : S_IDENTITY;
    struct step *s;
    skr_err e;

    if (d->c != NULL) {
        return true;
    }
    begin(d);
    e = own_config(d, &cc);
    if (e != SKR_OK) {
        *fatal = e;
        return false;
    }
    if (skr_client_new(cc, &d->own, &info) == SKR_OK) {
        d->c = d->own;
        return true;
    }
    if (info.err == SKR_E_NOMEM) {
        *fatal = SKR_E_NOMEM;
        return false;
    }
    s = done(d, at, ST_FAIL);
    put(s->detail, sizeof(s->detail), "cannot build the client (stage %s): %s", info.stage,
        info.message);
    put(s->fix, sizeof(s->fix), "%s", info.hint[0] != '\0' ? info.hint : "fix the option named");
    return false;
}

/* ---- certificates and verification ---------------------------------------------------------- */

static skr_err
transfer_key(struct diag *d)
{
    _cleanup_(json_decrefp) json_t *doc = NULL;
    const char *kid;

    deadline_start(d, NULL);
    TRY(rel_pool_take(d->c->pool, &d->tkey));
    skr_buf_init(&d->jwks, 1u << 16);
    TRY(skr_jwks_transfer_key(d->tkey, &d->jwks, &doc));
    kid =
        json_string_value(json_object_get(json_array_get(json_object_get(doc, "keys"), 0), "kid"));
    ENSURE(kid != NULL && strlen(kid) < sizeof(d->tkid), SKR_E_INTERNAL,
           "transfer JWKS has no kid");
    memcpy(d->tkid, kid, strlen(kid) + 1);
    return SKR_OK;
}

/*
 * No transfer key: the certificates step (the first that needs one, for REPORT_DATA) fails and
 * says why, and the steps after it are skipped as usual. A slow key generation is a finding of
 * the diagnosis (an empty pool on a slow machine), not an internal error of it.
 */
static void
transfer_key_failed(struct diag *d, skr_err e)
{
    struct step *s = done(d, S_CERTS, ST_FAIL);

    put(s->detail, sizeof(s->detail), "no transfer key: %s", skr_err_msg());
    if (e == SKR_E_TIMEOUT) {
        put(s->fix, sizeof(s->fix),
            "generating the RSA-%u transfer key took longer than release_deadline_ms (%u ms): "
            "raise release_deadline_ms, or keep pool_size above 0 so that keys are made ahead",
            rel_opt_uint(d->cfg, OPT_TRANSFER_KEY_BITS),
            rel_opt_uint(d->cfg, OPT_RELEASE_DEADLINE_MS));
    } else {
        put(s->fix, sizeof(s->fix), "check transfer_key_bits and the OpenSSL build");
    }
}

static void
report_data(const struct diag *d, uint8_t rd[64])
{
    memset(rd, 0, 64);
    (void)SHA256(d->jwks.ptr, d->jwks.len, rd);
}

/* The verification checks again, to count and name them (the flow only says pass or fail). */
static void
verify_detail(struct diag *d, struct step *s)
{
    _cleanup_(skr_cert_set_done) struct skr_cert_set set = { 0 };
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    size_t pass = 0;

    opts.extra_roots = d->c->extra_roots;
    opts.has_report_data = true;
    report_data(d, opts.report_data);
    if (skr_cert_set_load(skr_buf_span(&d->ev.chain_pem), &set) != SKR_OK ||
        skr_snp_verify(&d->ev.report, skr_span_make(d->ev.raw, sizeof(d->ev.raw)), &set, &opts,
                       &res) != SKR_OK) {
        put(s->detail, sizeof(s->detail), "the report verified in the flow");
        return;
    }
    for (size_t i = 0; i < res.n; i++) {
        pass += res.checks[i].status == SKR_CHECK_PASS;
    }
    put(s->detail, sizeof(s->detail),
        "%zu checks passed (%s, %s): signature by the VCEK, VCEK -> ASK -> ARK, TCB, REPORT_DATA "
        "= SHA-256 of the transfer key",
        pass, skr_snp_product_name(res.product), res.is_vlek ? "VLEK" : "VCEK");
}

static void
step_certs(struct diag *d)
{
    const struct skr_client *c = d->c;
    struct rel_call call;
    char want[17] = "?";
    char sc[64] = "";
    struct step *s;
    skr_err e;

    if (!passed(d, S_DEVICE)) {
        skip_after(d, S_DEVICE, S_CERTS);
        return;
    }
    begin(d);
    deadline_start(d, &call);
    e = rel_evidence_get(&call, skr_buf_span(&d->jwks), true, &d->ev);
    if (strcmp(call.stage, "device") != 0) {
        skr_snp_tcb_tcbm(d->ev.report.reported_tcb, want);
    }
    if (c->has_sc_thim) {
        put(sc, sizeof(sc), "; security context host-amd-cert tcbm %s", c->sc_thim.tcbm_str);
    }
    if (e == SKR_OK || strcmp(call.stage, "verify") == 0) {
        bool sc_stale = c->has_sc_thim && c->sc_thim.tcbm != d->ev.report.reported_tcb;

        s = done(d, S_CERTS, sc_stale ? ST_WARN : ST_OK);
        put(s->detail, sizeof(s->detail), "report TCB %s%s; chain from %s (VCEK tcbm %s)", want, sc,
            d->ev.source != NULL ? d->ev.source : "?", d->ev.tcbm);
        if (sc_stale) {
            add(s->detail, sizeof(s->detail),
                "; the security context's certificate is for another TCB (recovered)");
            put(s->fix, sizeof(s->fix), "%s",
                "the host's certificate is stale; the flow recovers through the sources above, at "
                "the cost of extra lookups");
        }
        if (e != SKR_OK) {
            d->s[S_VERIFY].status = ST_FAIL;
            put(d->s[S_VERIFY].detail, sizeof(d->s[S_VERIFY].detail), "%s", skr_err_msg());
            put(d->s[S_VERIFY].fix, sizeof(d->s[S_VERIFY].fix), "%s",
                "the report or its certificates do not verify: check the certificate sources, "
                "and --trust-root for a non-AMD (emulated) root");
            return;
        }
        d->have_ev = true;
        return;
    }
    s = done(d, S_CERTS, ST_FAIL);
    if (strcmp(call.stage, "device") == 0) {
        put(s->detail, sizeof(s->detail), "the device failed to produce a report: %s",
            skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s", "check the guest's SEV-SNP device");
        return;
    }
    put(s->detail, sizeof(s->detail), "report TCB %s%s; %s", want, sc, skr_err_msg());
    put(s->cause, sizeof(s->cause), "%s%s",
        call.hint[0] != '\0' ? "certificate TCB mismatch: " : "", skr_err_msg());
    put(s->fix, sizeof(s->fix), "%s",
        call.hint[0] != '\0'
            ? call.hint
            : "check the security context's host-amd-cert-base64, THIM (--imds-endpoint) and "
              "certcache_endpoint_type / certcache_endpoint");
}

static void
step_verify(struct diag *d)
{
    struct step *s;

    if (d->s[S_VERIFY].status != ST_PENDING) {
        return; /* failed inside the certificates step */
    }
    if (!passed(d, S_CERTS)) {
        skip_after(d, S_CERTS, S_VERIFY);
        return;
    }
    begin(d);
    s = done(d, S_VERIFY, ST_OK);
    verify_detail(d, s);
}

/* ---- identity ---------------------------------------------------------------------------------
 */

static const char *
claim_str(const json_t *claims, const char *name)
{
    const char *v = json_string_value(json_object_get(claims, name));

    return v != NULL ? v : "";
}

/* A claim value as text: strings as-is, integers and booleans in their canonical form. */
static void
claim_text(const json_t *claims, const char *name, char *out, size_t cap)
{
    const json_t *v = json_object_get(claims, name);

    if (json_is_string(v)) {
        put(out, cap, "%s", json_string_value(v));
    } else if (json_is_boolean(v)) {
        put(out, cap, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_integer(v)) {
        put(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else {
        put(out, cap, "%s", v == NULL ? "(absent)" : "(not a string)");
    }
}

static void
identity_name(const struct diag *d, char *out, size_t cap)
{
    const struct skr_config *cfg = d->c->cfg;
    const char *wi_client = rel_opt_str(cfg, OPT_WI_CLIENT_ID);
    const char *wi_tenant = rel_opt_str(cfg, OPT_WI_TENANT_ID);
    const char *wi_file = rel_opt_str(cfg, OPT_WI_TOKEN_FILE);
    const char *mi = rel_opt_str(cfg, OPT_CLIENT_ID);

    if (given(d->req->access_token) != NULL) {
        put(out, cap, "the token given by %s",
            d->req->token_source != NULL ? d->req->token_source : "the caller");
    } else if (wi_client != NULL && wi_tenant != NULL && wi_file != NULL) {
        put(out, cap, "workload identity (tenant %s, client %s)", wi_tenant, wi_client);
    } else {
        put(out, cap, "managed identity from IMDS %s (%s%s)", rel_opt_str(cfg, OPT_IMDS_ENDPOINT),
            mi != NULL ? "client_id " : "the VM's only identity", mi != NULL ? mi : "");
    }
}

static bool
same_resource(const char *a, const char *b)
{
    size_t na = strlen(a);
    size_t nb = strlen(b);

    na -= na > 0 && a[na - 1] == '/';
    nb -= nb > 0 && b[nb - 1] == '/';
    return na == nb && strncmp(a, b, na) == 0;
}

static void
step_identity(struct diag *d)
{
    const char *resource =
        d->akv != NULL ? skr_akv_resource_for(d->akv) : "https://vault.azure.net";
    _cleanup_(skr_jws_donep) struct skr_jws jws = { 0 };
    struct rel_call call;
    char who[300];
    char up[400];
    struct step *s;
    skr_err e;

    if (d->s[S_IDENTITY].status != ST_PENDING) {
        return; /* the client could not be built */
    }
    begin(d);
    identity_name(d, who, sizeof(who));
    if (given(d->req->access_token) != NULL) {
        size_t n = strnlen(d->req->access_token, SKR_MAX_JWT_BYTES + 1);

        e = n <= SKR_MAX_JWT_BYTES
                ? skr_secret_from(skr_span_make(d->req->access_token, n + 1), &d->bearer)
                : SKR_E_TOO_LARGE;
        call.up = (struct skr_upstream){ 0 };
    } else {
        deadline_start(d, &call);
        e = rel_identity_token(&call, resource, &d->bearer);
    }
    if (e != SKR_OK) {
        s = done(d, S_IDENTITY, ST_FAIL);
        req_id(&call.up, up, sizeof(up));
        put(s->detail, sizeof(s->detail), "%s: no token for %s: %s%s", who, resource, skr_err_msg(),
            up);
        put(s->fix, sizeof(s->fix), "%s",
            call.up.status == 0 ? "check that IMDS (--imds-endpoint) or the workload identity "
                                  "authority (AZURE_AUTHORITY_HOST) is reachable"
                                : "check the managed identity (--client-id) or the workload "
                                  "identity settings (AZURE_CLIENT_ID, AZURE_TENANT_ID, "
                                  "AZURE_FEDERATED_TOKEN_FILE)");
        return;
    }
    if (skr_jws_parse(skr_span_str((const char *)d->bearer->ptr), &jws) != SKR_OK ||
        jws.claims == NULL) {
        s = done(d, S_IDENTITY, ST_OK);
        put(s->detail, sizeof(s->detail),
            "%s: a token for %s (not a JWT: audience and expiry unknown)", who, resource);
        return;
    }
    {
        const char *aud = claim_str(jws.claims, "aud");
        const json_t *exp = json_object_get(jws.claims, "exp");
        long long left =
            json_is_integer(exp) ? (long long)json_integer_value(exp) - (long long)time(NULL) : 0;
        const char *appid = claim_str(jws.claims, "appid");

        put(d->oid, sizeof(d->oid), "%s", claim_str(jws.claims, "oid"));
        if (appid[0] == '\0') {
            appid = claim_str(jws.claims, "azp");
        }
        s = done(d, S_IDENTITY, ST_OK);
        put(s->detail, sizeof(s->detail), "%s: token for audience %s, oid %s%s%s, ", who,
            aud[0] != '\0' ? aud : "(none)", d->oid[0] != '\0' ? d->oid : "(none)",
            appid[0] != '\0' ? ", app " : "", appid);
        if (!json_is_integer(exp)) {
            add(s->detail, sizeof(s->detail), "no expiry");
        } else if (left <= 0) {
            s->status = ST_FAIL;
            add(s->detail, sizeof(s->detail), "expired %lld s ago", -left);
            put(s->cause, sizeof(s->cause), "the vault token expired %lld s ago", -left);
            put(s->fix, sizeof(s->fix), "%s", "get a new token");
            return;
        } else {
            add(s->detail, sizeof(s->detail), "expires in %lld s", left);
        }
        if (aud[0] != '\0' && !same_resource(aud, resource)) {
            s->status = ST_WARN;
            add(s->detail, sizeof(s->detail), "; the vault expects audience %s", resource);
            put(s->fix, sizeof(s->fix), "get a token for %s", resource);
        }
    }
}

/* ---- MAA ------------------------------------------------------------------------------------ */

static void
step_maa(struct diag *d)
{
    struct skr_client *c = d->c;
    struct skr_maa_evidence mev;
    struct skr_upstream upr = { 0 };
    char up[400];
    char v[6][200];
    struct step *s;
    skr_err e;

    if (d->maa == NULL) {
        skip(d, S_MAA, "not run: no MAA endpoint given (--maa)");
        return;
    }
    if (!d->have_ev) {
        skip_after(d,
                   !passed(d, S_DEVICE)  ? S_DEVICE
                   : !passed(d, S_CERTS) ? S_CERTS
                                         : S_VERIFY,
                   S_MAA);
        return;
    }
    begin(d);
    mev = (struct skr_maa_evidence){
        .report = skr_span_make(d->ev.raw, sizeof(d->ev.raw)),
        .vcek_chain = skr_buf_span(&d->ev.chain_pem),
        .uvm_endorsement = skr_buf_span(&c->ref_info),
        .runtime_data = skr_buf_span(&d->jwks),
        .init_data = skr_buf_span(&c->policy),
    };
    deadline_start(d, NULL);
    skr_buf_init(&d->maa_token, SKR_MAX_JWT_BYTES + 1);
    e = skr_maa_attest(c->http, d->maa, rel_opt_str(c->cfg, OPT_MAA_API_VERSION),
                       rel_opt_str(c->cfg, OPT_USER_AGENT), &mev, &d->maa_token, &upr);
    if (e == SKR_OK &&
        (skr_jws_parse(skr_span_str((const char *)d->maa_token.ptr), &d->maa_jws) != SKR_OK ||
         d->maa_jws.claims == NULL)) {
        e = SKR_E_MALFORMED;
        (void)skr_err_at(e, __FILE__, __LINE__, "the MAA token is not a JWT with claims");
    }
    if (e != SKR_OK) {
        s = done(d, S_MAA, ST_FAIL);
        req_id(&upr, up, sizeof(up));
        put(s->detail, sizeof(s->detail), "%s: %s%s", d->maa, skr_err_msg(), up);
        if (upr.status == 0) {
            put(s->fix, sizeof(s->fix), "%s",
                "check that the MAA endpoint is reachable and its TLS chain trusted (--maa, "
                "--ca-file)");
        } else if (upr.status >= 500 || upr.status == 429 || upr.status == 408) {
            put(s->fix, sizeof(s->fix), "%s", "MAA is unavailable: retry later");
        } else {
            put(s->fix, sizeof(s->fix), "%s",
                "MAA refused the evidence: check the endpoint and what its message names "
                "(report, VCEK chain, security policy, UVM endorsement)");
        }
        return;
    }
    {
        const json_t *cl = d->maa_jws.claims;
        const json_t *exp = json_object_get(cl, "exp");

        claim_text(cl, "x-ms-attestation-type", v[0], sizeof(v[0]));
        claim_text(cl, "x-ms-compliance-status", v[1], sizeof(v[1]));
        claim_text(cl, "x-ms-sevsnpvm-hostdata", v[2], sizeof(v[2]));
        claim_text(cl, "x-ms-sevsnpvm-is-debuggable", v[3], sizeof(v[3]));
        claim_text(cl, "x-ms-sevsnpvm-vmpl", v[4], sizeof(v[4]));
        put(v[5], sizeof(v[5]), "%s", claim_str(cl, "iss"));
        s = done(d, S_MAA, ST_OK);
        put(s->detail, sizeof(s->detail),
            "token from %s: iss %s, x-ms-attestation-type %s, x-ms-compliance-status %s, "
            "x-ms-sevsnpvm-hostdata %s, x-ms-sevsnpvm-is-debuggable %s, x-ms-sevsnpvm-vmpl %s",
            d->maa, v[5][0] != '\0' ? v[5] : "(none)", v[0], v[1], v[2], v[3], v[4]);
        if (json_is_integer(exp)) {
            add(s->detail, sizeof(s->detail), ", expires in %lld s",
                (long long)json_integer_value(exp) - (long long)time(NULL));
        }
    }
}

/* ---- the key ----------------------------------------------------------------------------------
 */

static void
key_failed(struct diag *d, skr_err e, const struct skr_upstream *upr)
{
    struct step *s;
    char up[400];
    char rid[160];

    up_text(upr, up, sizeof(up));
    if (upr->status == 403) {
        s = done(d, S_KEY, ST_WARN);
        put(s->detail, sizeof(s->detail),
            "cannot read key %s: %s: its release policy cannot be evaluated here", d->kid,
            skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s",
            "grant the identity keys/get too (reading the key is what explains a denial)");
        return;
    }
    s = done(d, S_KEY, ST_FAIL);
    req_id(upr, rid, sizeof(rid));
    put(s->detail, sizeof(s->detail), "GET key %s on %s: %s%s", d->kid, d->akv, skr_err_msg(), rid);
    if (upr->status == 404 || e == SKR_E_NOT_FOUND) {
        put(s->cause, sizeof(s->cause), "there is no key %s in %s", d->kid, d->akv);
        put(s->fix, sizeof(s->fix), "%s", "check --kid and --akv (skr key get NAME)");
    } else if (upr->status == 401) {
        put(s->cause, sizeof(s->cause), "the vault refused the token%s", up);
        put(s->fix, sizeof(s->fix), "the token must be for audience %s, from the vault's tenant",
            upr->challenge_resource[0] != '\0' ? upr->challenge_resource
                                               : skr_akv_resource_for(d->akv));
    } else if (upr->status == 0) {
        put(s->fix, sizeof(s->fix), "%s",
            "check that the vault is reachable and its TLS chain trusted (--akv, --ca-file)");
    } else if (upr->status >= 500 || upr->status == 429) {
        put(s->fix, sizeof(s->fix), "%s", "the vault is unavailable: retry later");
    } else {
        put(s->fix, sizeof(s->fix), "%s", "check the key name (--kid) and --set akv_api_version");
    }
}

static void
step_key(struct diag *d)
{
    struct skr_client *c = d->c;
    struct skr_upstream upr = { 0 };
    const json_t *attrs;
    const json_t *key;
    const json_t *rp;
    struct step *s;
    skr_err e;

    if (d->akv == NULL || d->kid == NULL) {
        skip(d, S_KEY, "not run: no vault and key given (--akv, --kid)");
        return;
    }
    if (!passed(d, S_IDENTITY)) {
        skip_after(d, S_IDENTITY, S_KEY);
        return;
    }
    begin(d);
    deadline_start(d, NULL);
    e = skr_akv_get_key(c->http, d->akv, d->kid, rel_opt_str(c->cfg, OPT_AKV_API_VERSION),
                        (const char *)d->bearer->ptr, &d->bundle, &upr);
    if (e != SKR_OK) {
        key_failed(d, e, &upr);
        return;
    }
    key = json_object_get(d->bundle, "key");
    attrs = json_object_get(d->bundle, "attributes");
    rp = json_object_get(d->bundle, "release_policy");
    s = done(d, S_KEY, ST_OK);
    put(s->detail, sizeof(s->detail), "%s: kty %s", claim_str(key, "kid"), claim_str(key, "kty"));
    if (json_is_false(json_object_get(attrs, "enabled"))) {
        s->status = ST_FAIL;
        put(s->cause, sizeof(s->cause), "key %s is disabled", d->kid);
        put(s->fix, sizeof(s->fix), "%s", "enable the key");
        return;
    }
    if (!json_is_true(json_object_get(attrs, "exportable"))) {
        s->status = ST_FAIL;
        add(s->detail, sizeof(s->detail), ", not exportable (attributes.exportable is %s)",
            json_is_false(json_object_get(attrs, "exportable")) ? "false" : "absent");
        put(s->cause, sizeof(s->cause), "key %s is not exportable", d->kid);
        put(s->fix, sizeof(s->fix), "%s",
            "Secure Key Release needs an exportable key with a release policy: create or import "
            "the key again with exportable true (skr key import CONFIG.json)");
        return;
    }
    add(s->detail, sizeof(s->detail), ", exportable");
    if (rp == NULL) {
        s->status = ST_FAIL;
        put(s->cause, sizeof(s->cause), "key %s has no release policy", d->kid);
        put(s->fix, sizeof(s->fix), "%s",
            "give the key a release policy (skr key policy NAME --set FILE)");
        return;
    }
    if (skr_policy_parse_release(rp, &d->pol) != SKR_OK) {
        s->status = ST_FAIL;
        add(s->detail, sizeof(s->detail), ", release policy does not parse: %s", skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s",
            "replace the release policy (skr policy build, skr key policy NAME --set FILE)");
        return;
    }
    add(s->detail, sizeof(s->detail), ", release policy %s%s with %zu authorit%s:", d->pol->version,
        json_is_true(json_object_get(rp, "immutable")) ? " (immutable)" : "", d->pol->n_authorities,
        d->pol->n_authorities == 1 ? "y" : "ies");
    for (size_t i = 0; i < d->pol->n_authorities && i < 4; i++) {
        add(s->detail, sizeof(s->detail), " %s", d->pol->authorities[i].authority);
    }
}

/* ---- the release policy ------------------------------------------------------------------- */

static const char *
claim_fix(const char *claim)
{
    if (strcmp(claim, "x-ms-sevsnpvm-hostdata") == 0) {
        return "import the key with the policy digest of the deployed security policy (skr "
               "policy digest security-policy-base64), or deploy the container group with the "
               "security policy the key expects";
    }
    if (strcmp(claim, "x-ms-sevsnpvm-is-debuggable") == 0) {
        return "the guest runs with debugging allowed (SNP guest policy bit 19): deploy it "
               "without debugging, or use a test key whose policy does not require "
               "x-ms-sevsnpvm-is-debuggable false";
    }
    if (strcmp(claim, "x-ms-compliance-status") == 0) {
        return "the container group does not run on an Azure-compliant UVM (check the "
               "security context's reference-info-base64), or the claim's value is misspelled "
               "in the policy";
    }
    return "change the key's release policy (skr key policy NAME --set FILE) or the deployment "
           "so that the claim matches";
}

static void
step_policy(struct diag *d)
{
    _cleanup_(skr_policy_explain_freep) struct skr_policy_explain *x = NULL;
    const struct skr_policy_cond_result *ff;
    struct step *s;
    char a[48];
    char b[48];
    skr_err e;

    if (d->akv == NULL || d->kid == NULL || d->maa == NULL) {
        skip(d, S_POLICY, "not run: needs --maa, --akv and --kid");
        return;
    }
    if (d->s[S_KEY].status == ST_WARN && d->pol == NULL) {
        skip(d, S_POLICY, "not run: the key's release policy could not be read");
        return;
    }
    if (d->pol == NULL) {
        skip_after(d, passed(d, S_IDENTITY) ? S_KEY : S_IDENTITY, S_POLICY);
        return;
    }
    if (!passed(d, S_MAA)) {
        skip_after(d, S_MAA, S_POLICY);
        return;
    }
    begin(d);
    e = skr_policy_explain(d->pol, NULL, d->maa_jws.claims, &x);
    if (e != SKR_OK) {
        s = done(d, S_POLICY, ST_FAIL);
        put(s->detail, sizeof(s->detail), "cannot evaluate the policy: %s", skr_err_msg());
        return;
    }
    if (x->allow) {
        const struct skr_policy_branch *br = &x->branches[x->closest];

        s = done(d, S_POLICY, ST_OK);
        put(s->detail, sizeof(s->detail),
            "allows this attestation: authority %s matches the MAA issuer, %zu claim "
            "condition%s met",
            br->authority->authority, br->n_claims_pass, br->n_claims_pass == 1 ? "" : "s");
        return;
    }
    s = done(d, S_POLICY, ST_FAIL);
    if (x->closest < 0) {
        const char *names = x->n_branches > 0 ? x->branches[0].authority->authority : "none";

        put(s->detail, sizeof(s->detail),
            "no authority of the release policy matches the MAA issuer %s (the policy names %s%s)",
            x->issuer != NULL ? x->issuer : "(none)", names, x->n_branches > 1 ? ", ..." : "");
        put(s->cause, sizeof(s->cause),
            "the policy's authority %s is not the MAA issuer %s (wrong MAA authority)", names,
            x->issuer != NULL ? x->issuer : "(none)");
        put(s->fix, sizeof(s->fix),
            "import the key with authority %s, the MAA endpoint the release uses, or release "
            "through the MAA the policy names",
            x->issuer != NULL ? x->issuer : d->maa);
        return;
    }
    ff = x->first_failure;
    if (ff == NULL || ff->cond == NULL || ff->cond->claim == NULL) {
        put(s->detail, sizeof(s->detail), "denies this attestation: %s", x->reason);
        put(s->fix, sizeof(s->fix), "%s",
            "compare the policy with the MAA claims (skr policy check)");
        return;
    }
    {
        const char *seen = ff->seen == SKR_POLICY_SEEN_VALUE     ? ff->seen_text
                           : ff->seen == SKR_POLICY_SEEN_MISSING ? "no such claim"
                                                                 : ff->seen_type;

        put(s->detail, sizeof(s->detail),
            "denies this attestation (authority %s): claim %s must equal \"%s\" but the platform "
            "reports %s%s%s",
            x->branches[x->closest].authority->authority, ff->cond->claim, ff->cond->canonical,
            ff->seen == SKR_POLICY_SEEN_VALUE ? "\"" : "", seen,
            ff->seen == SKR_POLICY_SEEN_VALUE ? "\"" : "");
        short_value(ff->cond->canonical, a, sizeof(a));
        short_value(seen, b, sizeof(b));
        put(s->cause, sizeof(s->cause), "claim %s must equal %s but the platform reports %s",
            ff->cond->claim, a, b);
        put(s->fix, sizeof(s->fix), "%s",
            ff->seen == SKR_POLICY_SEEN_MISSING
                ? "the MAA token has no such claim: check the claim's name in the key's release "
                  "policy"
                : claim_fix(ff->cond->claim));
    }
}

/* ---- the release ------------------------------------------------------------------------------
 */

static skr_err
release_and_discard(struct diag *d, struct skr_upstream *upr, const char **stage, char *kty,
                    size_t cap)
{
    struct skr_client *c = d->c;
    _cleanup_(skr_buf_donep) struct skr_buf jws = { 0 };
    _cleanup_(skr_akv_released_done) struct skr_akv_released rel = { 0 };
    _cleanup_(skr_secret_freep) struct skr_secret *jwk = NULL;

    *stage = "akv";
    skr_buf_init(&jws, SKR_MAX_JWT_BYTES + 1);
    deadline_start(d, NULL);
    TRY(skr_akv_release(c->http, d->akv, d->kid, rel_opt_str(c->cfg, OPT_AKV_API_VERSION),
                        (const char *)d->bearer->ptr, (const char *)d->maa_token.ptr, c->enc, &jws,
                        upr));
    *stage = "unwrap";
    TRY(skr_akv_release_verify(skr_buf_span(&jws), d->akv, c->akv_trust, &rel));
    TRY(skr_akv_unwrap_jwk(&rel, d->tkey, d->tkid, &jwk));
    put(kty, cap, "%s", rel.kty != NULL ? rel.kty : "?");
    return SKR_OK; /* jwk is wiped and freed here: the released key is never kept */
}

static void
step_release(struct diag *d)
{
    struct skr_upstream upr = { 0 };
    const char *stage = "akv";
    char kty[32] = "";
    char rid[160];
    char up[400];
    struct step *s;

    if (d->req->no_release) {
        skip(d, S_RELEASE, "not run: --no-release");
        return;
    }
    if (d->akv == NULL || d->kid == NULL || d->maa == NULL) {
        skip(d, S_RELEASE, "not run: needs --maa, --akv and --kid");
        return;
    }
    if (!passed(d, S_MAA) || !passed(d, S_IDENTITY)) {
        skip_after(d, passed(d, S_MAA) ? S_IDENTITY : S_MAA, S_RELEASE);
        return;
    }
    if (d->s[S_KEY].status == ST_FAIL || d->s[S_POLICY].status == ST_FAIL) {
        skip_after(d, d->s[S_KEY].status == ST_FAIL ? S_KEY : S_POLICY, S_RELEASE);
        return;
    }
    begin(d);
    if (release_and_discard(d, &upr, &stage, kty, sizeof(kty)) == SKR_OK) {
        s = done(d, S_RELEASE, ST_OK);
        put(s->detail, sizeof(s->detail),
            "released %s: the JWS verified, the %s key unwrapped with the transfer key and "
            "discarded at once",
            d->kid, kty);
        return;
    }
    s = done(d, S_RELEASE, ST_FAIL);
    up_text(&upr, up, sizeof(up));
    if (strcmp(stage, "unwrap") == 0) {
        put(s->detail, sizeof(s->detail), "the vault's answer did not verify or unwrap: %s",
            skr_err_msg());
        put(s->fix, sizeof(s->fix), "%s",
            "check that --ca-file trusts the vault's TLS chain and that --akv is the vault's "
            "host name");
        return;
    }
    req_id(&upr, rid, sizeof(rid));
    put(s->detail, sizeof(s->detail), "POST release %s: %s%s", d->kid, skr_err_msg(), rid);
    if (upr.status == 403 && d->s[S_POLICY].status == ST_OK) {
        put(s->cause, sizeof(s->cause),
            "the vault refused the release%s although the release policy allows this "
            "attestation: the identity%s%s lacks the release permission",
            up, d->oid[0] != '\0' ? " oid " : "", d->oid);
        put(s->fix, sizeof(s->fix), "%s",
            "grant the identity the release permission on the key (keys/release: Key Vault "
            "Crypto Service Release User, or Managed HSM Crypto Service Release User)");
    } else if (upr.status == 403) {
        put(s->fix, sizeof(s->fix), "%s",
            "grant the identity the release permission (keys/release) and check the key's "
            "release policy against the MAA claims (skr policy check)");
    } else if (upr.status == 401) {
        put(s->fix, sizeof(s->fix), "the vault refused the token: it must be for audience %s",
            upr.challenge_resource[0] != '\0' ? upr.challenge_resource
                                              : skr_akv_resource_for(d->akv));
    } else if (upr.status == 0) {
        put(s->fix, sizeof(s->fix), "%s",
            "check that the vault is reachable and its TLS chain trusted (--akv, --ca-file)");
    } else if (upr.status >= 500 || upr.status == 429) {
        put(s->fix, sizeof(s->fix), "%s", "the vault is unavailable: retry later");
    } else {
        put(s->fix, sizeof(s->fix), "%s",
            "check that the key is exportable, --set release_enc and --set akv_api_version");
    }
}

/* ---- the result ----------------------------------------------------------------------------- */

static void
trim_period(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '.' || s[n - 1] == ' ')) {
        s[--n] = '\0';
    }
}

/* A JSON string of s; bytes that do not make UTF-8 (a path from the configuration) become
 * '?' rather than failing the whole result. */
static json_t *
jstr(const char *s)
{
    char copy[DIAG_CAUSE + DIAG_FIX + DIAG_DETAIL];
    json_t *v = json_string(s);
    size_t n = 0;

    if (v != NULL) {
        return v;
    }
    for (; s[n] != '\0' && n + 1 < sizeof(copy); n++) {
        copy[n] = (unsigned char)s[n] < 0x80 ? s[n] : '?';
    }
    copy[n] = '\0';
    return json_string(copy);
}

static skr_err
result_json(struct diag *d, uint64_t total_ms, json_t **ret)
{
    _cleanup_(json_decrefp) json_t *o = json_object();
    _cleanup_(json_decrefp) json_t *req = json_object();
    _cleanup_(json_decrefp) json_t *steps = json_array();
    char summary[DIAG_CAUSE + DIAG_FIX + 128];
    long broken = -1;
    size_t n_warn = 0;
    size_t n_skip = 0;

    ENSURE(o != NULL && req != NULL && steps != NULL, SKR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < SKR_DIAG_STEP_COUNT; i++) {
        struct step *s = &d->s[i];
        json_t *j;

        if (s->status == ST_PENDING) {
            s->status = ST_SKIP;
            put(s->detail, sizeof(s->detail), "%s", "not run");
        }
        trim_period(s->fix);
        trim_period(s->cause);
        if (s->status == ST_FAIL && broken < 0) {
            broken = (long)i;
        }
        n_warn += s->status == ST_WARN;
        n_skip += s->status == ST_SKIP;
        j = json_pack("{s:s,s:s,s:I,s:o}", "name", skr_diag_step_names[i], "status",
                      status_names[s->status], "ms", (json_int_t)s->ms, "detail", jstr(s->detail));
        ENSURE(j != NULL, SKR_E_NOMEM, "out of memory");
        if (s->fix[0] != '\0' && s->status != ST_OK) {
            TRY(skr_json_set(j, "fix", jstr(s->fix)));
        }
        ENSURE(json_array_append_new(steps, j) == 0, SKR_E_NOMEM, "out of memory");
    }
    if (broken >= 0) {
        const struct step *s = &d->s[broken];

        put(summary, sizeof(summary), "Broken: %s \u2014 %s", skr_diag_step_names[broken],
            s->cause[0] != '\0' ? s->cause : s->detail);
        trim_period(summary);
        if (s->fix[0] != '\0') {
            add(summary, sizeof(summary), ": %s", s->fix);
        }
        add(summary, sizeof(summary), ".");
    } else if (d->s[S_RELEASE].status == ST_OK) {
        put(summary, sizeof(summary),
            "OK: every step passed%s; the key was released and discarded at once.",
            n_warn > 0 ? " (with warnings)" : "");
    } else {
        put(summary, sizeof(summary), "OK: no step failed (%zu warning%s, %zu skipped).", n_warn,
            n_warn == 1 ? "" : "s", n_skip);
    }
    TRY(skr_json_set(o, "ok", json_boolean(broken < 0)));
    TRY(skr_json_set(o, "broken",
                     broken >= 0 ? json_string(skr_diag_step_names[broken]) : json_null()));
    TRY(skr_json_set(o, "summary", jstr(summary)));
    TRY(skr_json_set(o, "total_ms", json_integer((json_int_t)total_ms)));
    TRY(skr_json_set(req, "maa", d->maa != NULL ? jstr(d->maa) : json_null()));
    TRY(skr_json_set(req, "akv", d->akv != NULL ? jstr(d->akv) : json_null()));
    TRY(skr_json_set(req, "kid", d->kid != NULL ? jstr(d->kid) : json_null()));
    TRY(skr_json_set(req, "release", json_boolean(!d->req->no_release)));
    TRY(skr_json_set(o, "request", TAKE_PTR(req)));
    /* "steps" last, after the short members */
    TRY(skr_json_set(o, "steps", TAKE_PTR(steps)));
    *ret = TAKE_PTR(o);
    return SKR_OK;
}

static skr_err
check_request(const struct skr_diag_request *req)
{
    _cleanup_(skr_buf_donep) struct skr_buf b = { 0 };

    skr_buf_init(&b, 600);
    if (given(req->maa_endpoint) != NULL &&
        skr_endpoint_base(req->maa_endpoint, &b, NULL) != SKR_OK) {
        FAILF(SKR_E_INVALID_ARG, "MAA endpoint: %s", skr_err_msg());
    }
    skr_buf_reset(&b);
    if (given(req->akv_endpoint) != NULL &&
        skr_endpoint_base(req->akv_endpoint, &b, NULL) != SKR_OK) {
        FAILF(SKR_E_INVALID_ARG, "vault endpoint: %s", skr_err_msg());
    }
    if (given(req->kid) != NULL) {
        TRY(rel_check_kid(req->kid));
    }
    return SKR_OK;
}

static void
diag_done(struct diag *d)
{
    skr_http_set_deadline(0);
    skr_policy_free(d->pol);
    json_decref(d->bundle);
    skr_jws_done(&d->maa_jws);
    skr_buf_done(&d->maa_token);
    skr_secret_free(d->bearer);
    rel_evidence_done(&d->ev);
    skr_buf_done(&d->jwks);
    EVP_PKEY_free(d->tkey);
    skr_client_free(d->own);
}

skr_err
skr_diagnose(const skr_config *cfg, skr_client *c, const struct skr_diag_request *req, json_t **ret)
{
    struct diag d = { 0 };
    uint64_t t_start = rel_now_ms();
    skr_err fatal = SKR_OK;
    skr_err e;

    ENSURE(req != NULL && ret != NULL && (cfg != NULL || c != NULL), SKR_E_INVALID_ARG,
           "NULL argument");
    TRY(check_request(req));
    d.cfg = cfg != NULL ? cfg : c->cfg;
    d.req = req;
    d.c = c;
    d.maa = given(req->maa_endpoint);
    d.akv = given(req->akv_endpoint);
    d.kid = given(req->kid);
    skr_buf_init(&d.jwks, 1u << 16);
    skr_buf_init(&d.maa_token, SKR_MAX_JWT_BYTES + 1);

    step_device(&d);
    step_secctx(&d);
    if (build_client(&d, &fatal)) {
        if (passed(&d, S_DEVICE)) {
            begin(&d);
            e = transfer_key(&d);
            if (e != SKR_OK) {
                transfer_key_failed(&d, e);
            }
        }
        if (fatal == SKR_OK) {
            if (d.s[S_CERTS].status == ST_PENDING) {
                step_certs(&d);
            }
            step_verify(&d);
            step_identity(&d);
            step_maa(&d);
            step_key(&d);
            step_policy(&d);
            step_release(&d);
        }
    } else {
        for (size_t i = S_CERTS; i < SKR_DIAG_STEP_COUNT; i++) {
            skip(&d, (enum step_id)i, "not run: no client");
        }
    }
    if (fatal != SKR_OK) {
        diag_done(&d);
        return fatal;
    }
    e = result_json(&d, rel_now_ms() - t_start, ret);
    diag_done(&d);
    return e;
}

/* ---- text -------------------------------------------------------------------------------------
 */

skr_err
skr_diagnose_to_text(const json_t *d, struct skr_buf *out)
{
    const json_t *steps = json_object_get(d, "steps");
    size_t i;
    const json_t *s;

    TRY(skr_buf_printf(out, "%-6s  %-19s  %6s  %s\n", "STATUS", "STEP", "MS", "DETAIL"));
    json_array_foreach(steps, i, s)
    {
        const char *st = claim_str(s, "status");
        const char *fix = json_string_value(json_object_get(s, "fix"));

        TRY(skr_buf_printf(out, "%-6s  %-19s  %6" JSON_INTEGER_FORMAT "  %s\n",
                           strcmp(st, "fail") == 0 ? "FAIL" : st, claim_str(s, "name"),
                           json_integer_value(json_object_get(s, "ms")), claim_str(s, "detail")));
        if (fix != NULL) {
            TRY(skr_buf_printf(out, "%-6s  %-19s  %6s  fix: %s\n", "", "", "", fix));
        }
    }
    return skr_buf_printf(out, "%s\n", claim_str(d, "summary"));
}
