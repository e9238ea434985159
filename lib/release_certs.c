/*
 * release_certs.c - the evidence of one attestation (PROTOCOLS.md §1 steps 3-5): a report
 * from the configured device whose REPORT_DATA is SHA-256(runtime data) followed by 32 zero
 * bytes (§5.1 binding rules), the VCEK chain for the report's (chip id, REPORTED_TCB), and the
 * local verification of both before any service sees them.
 *
 * Certificate sources, first match wins (a chain matches when its TCB equals REPORTED_TCB):
 *   1. the cache, keyed by chip id and TCB (REL_CERT_CACHE entries, least recently used out)
 *   2. the security context's host-amd-cert-base64 (THIM JSON) when its tcbm matches (§4.2)
 *   3. the certificate table the device returned with the report (§2.6)
 *   4. THIM from IMDS (§4.1)
 *   5. certcache_endpoint_type: AMD KDS (§2.5) or AzCache (§4.3); LocalTHIM adds nothing
 * When none matches we do what the reference does (SCC pkg/attest/attest.go): refresh the
 * certificates, fetch a new report (the platform may have moved to a new TCB since the last
 * one), refresh again, and fail naming both TCB values.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include "amd_roots.h"
#include "err.h"
#include "hex.h"
#include "ossl.h"
#include "release_int.h"
#include "snp_verify.h"

#define KDS_DEFAULT_BASE "https://kdsintf.amd.com"

void
rel_evidence_done(struct rel_evidence *ev)
{
    skr_buf_done(&ev->chain_pem);
    skr_wipe(ev->raw, sizeof(ev->raw));
}

void
rel_certs_done(struct skr_client *c)
{
    for (size_t i = 0; i < REL_CERT_CACHE; i++) {
        free(c->certs[i].chain_pem);
        c->certs[i] = (struct rel_cert_entry){ 0 };
    }
}

static void
count(struct skr_client *c, unsigned long *field)
{
    pthread_mutex_lock(&c->lock);
    (*field)++;
    pthread_mutex_unlock(&c->lock);
}

/* ---- the report --------------------------------------------------------------------------- */

static skr_err
get_report(struct rel_call *call, const uint8_t rd[64], struct rel_evidence *ev,
           struct skr_buf *table)
{
    struct skr_client *c = call->c;
    _cleanup_(skr_buf_donep) struct skr_buf raw = { 0 };
    skr_err e;

    TRY(rel_stage(call, "device"));
    ENSURE(c->dev != NULL, SKR_E_NOT_FOUND,
           "no SEV-SNP device: the client was made with snp_device none");
    skr_buf_init(&raw, SKR_SNP_REPORT_LEN);
    if (table != NULL) {
        skr_buf_reset(table);
    }
    pthread_mutex_lock(&c->dev_lock);
    e = skr_snp_dev_get_report(c->dev, rd, 0, &raw, table);
    pthread_mutex_unlock(&c->dev_lock);
    count(c, &c->stats.reports);
    TRY(e);
    ENSURE(raw.len == SKR_SNP_REPORT_LEN, SKR_E_DEVICE,
           "the device returned a report of the "
           "wrong size");
    if (skr_snp_report_parse(skr_buf_span(&raw), &ev->report) != SKR_OK) {
        FAILF(SKR_E_DEVICE, "the device returned a report that does not parse: %s", skr_err_msg());
    }
    memcpy(ev->raw, raw.ptr, SKR_SNP_REPORT_LEN);
    return SKR_OK;
}

/* ---- certificate sources ------------------------------------------------------------------ */

struct finder {
    struct rel_call *call;
    const struct skr_snp_report *report;
    struct skr_span table;
    enum skr_snp_product product;
    bool use_cache;
    /* the last chain that came back with another TCB */
    bool has_seen;
    uint64_t seen_tcb;
    const char *seen_from;
    /* the last source that failed outright */
    bool has_err;
    skr_err err;
    char err_msg[384];
    struct skr_upstream err_up;
};

/* A chain for the report, or nothing. */
struct cand {
    struct skr_buf pem;
    char tcbm[17];
    const char *source; /* a static string naming the source */
};

static void
note_err(struct finder *f, skr_err e, const char *source)
{
    f->has_err = true;
    f->err = e;
    (void)snprintf(f->err_msg, sizeof(f->err_msg), "%s: %s", source, skr_err_msg());
    f->err_up = f->call->up;
}

/* Accepts a chain with TCB tcb, or remembers it as seen. */
static bool
take(struct finder *f, uint64_t tcb, const char *source)
{
    if (tcb == f->report->reported_tcb) {
        return true;
    }
    f->has_seen = true;
    f->seen_tcb = tcb;
    f->seen_from = source;
    return false;
}

static skr_err
append_pem_cert(X509 *x, struct skr_buf *out)
{
    return skr_pem_write_cert(x, out);
}

/* VCEK, ASK, ARK as PEM; ASK/ARK from the built-in AMD roots when the set lacks them. */
static skr_err
set_to_pem(const struct skr_cert_set *s, enum skr_snp_product p, bool vlek, struct skr_buf *out)
{
    _cleanup_(X509_freep) X509 *ask = NULL;
    _cleanup_(X509_freep) X509 *ark = NULL;

    ENSURE(s->vcek != NULL, SKR_E_NOT_FOUND, "no VCEK among the certificates");
    if (s->ask == NULL || s->ark == NULL) {
        TRY(skr_amd_roots_get(p, vlek, &ask, &ark));
    }
    TRY(append_pem_cert(s->vcek, out));
    TRY(append_pem_cert(s->ask != NULL ? s->ask : ask, out));
    return append_pem_cert(s->ark != NULL ? s->ark : ark, out);
}

/* The TCB a chain's VCEK was issued for; its product fills *p when still unknown. */
static skr_err
vcek_tcb(X509 *vcek, enum skr_snp_product *p, uint64_t *ret)
{
    struct skr_vcek_ext ext;

    TRY(skr_vcek_ext_decode(vcek, &ext));
    if (*p == SKR_SNP_PRODUCT_UNKNOWN) {
        *p = skr_vcek_ext_product(&ext);
    }
    *ret = skr_vcek_ext_tcb(&ext, *p);
    return SKR_OK;
}

static skr_err
from_thim(struct finder *f, const struct skr_thim *t, const char *source, struct cand *ret,
          bool *found)
{
    if (!take(f, t->tcbm, source)) {
        return SKR_OK;
    }
    TRY(skr_buf_append_str(&ret->pem, t->vcek_pem));
    if (ret->pem.len > 0 && ret->pem.ptr[ret->pem.len - 1] != '\n') {
        TRY(skr_buf_append_byte(&ret->pem, '\n'));
    }
    TRY(skr_buf_append_str(&ret->pem, t->chain_pem));
    (void)snprintf(ret->tcbm, sizeof(ret->tcbm), "%s", t->tcbm_str);
    ret->source = source;
    *found = true;
    return SKR_OK;
}

static skr_err
from_set(struct finder *f, const struct skr_cert_set *s, const char *source, struct cand *ret,
         bool *found)
{
    struct skr_vcek_ext ext;
    uint64_t tcb = 0;

    ENSURE(s->vcek != NULL, SKR_E_NOT_FOUND, "no VCEK among the certificates");
    TRY(vcek_tcb(s->vcek, &f->product, &tcb));
    if (!take(f, tcb, source)) {
        return SKR_OK;
    }
    TRY(skr_vcek_ext_decode(s->vcek, &ext));
    TRY(set_to_pem(s, f->product, ext.is_vlek, &ret->pem));
    skr_snp_tcb_tcbm(tcb, ret->tcbm);
    ret->source = source;
    *found = true;
    return SKR_OK;
}

static skr_err
src_table(struct finder *f, struct cand *ret, bool *found)
{
    struct skr_cert_table t;
    _cleanup_(skr_cert_set_done) struct skr_cert_set s = { 0 };

    if (f->table.len == 0) {
        return SKR_OK;
    }
    TRY(skr_cert_table_parse(f->table, &t));
    TRY(skr_cert_set_from_table(&t, &s));
    if (s.vcek == NULL) {
        return SKR_OK; /* a VLEK-only or empty table: nothing for a VCEK report */
    }
    return from_set(f, &s, "the device's certificate table", ret, found);
}

static skr_err
src_imds_thim(struct finder *f, struct cand *ret, bool *found)
{
    struct skr_client *c = f->call->c;
    _cleanup_(skr_buf_donep) struct skr_buf json = { 0 };
    _cleanup_(skr_thim_done) struct skr_thim t = { 0 };

    skr_buf_init(&json, SKR_MAX_JSON_BYTES);
    TRY(skr_imds_thim(c->http, c->imds_base, &json, &f->call->up));
    TRY(skr_thim_parse(skr_buf_span(&json), &t));
    return from_thim(f, &t, "THIM (IMDS)", ret, found);
}

/* GET url; 2xx bodies are appended to out, anything else fails naming service and status. */
static skr_err
http_get(struct rel_call *call, const char *service, const char *url, struct skr_buf *out)
{
    _cleanup_(skr_http_reply_done) struct skr_http_reply rep = { 0 };
    skr_err e = skr_http_request(call->c->http, "GET", url, NULL, skr_span_make(NULL, 0), &rep);

    call->up.status = rep.status;
    call->up.attempts = rep.attempts;
    if (e != SKR_OK) {
        FAILF(e, "%s: %s", service, skr_err_msg());
    }
    if (rep.status < 200 || rep.status >= 300) {
        FAILF(rep.status == 404 ? SKR_E_NOT_FOUND : SKR_E_UPSTREAM, "%s returned HTTP %ld", service,
              rep.status);
    }
    return skr_buf_append_span(out, skr_buf_span(&rep.body));
}

static enum skr_snp_product
kds_product(const struct finder *f)
{
    enum skr_snp_product p = f->product;
    const char *tee = rel_opt_str(f->call->c->cfg, OPT_CERTCACHE_TEE_TYPE);

    if (p == SKR_SNP_PRODUCT_UNKNOWN && tee != NULL && skr_snp_product_parse(tee, &p) != SKR_OK) {
        p = SKR_SNP_PRODUCT_UNKNOWN;
    }
    return p != SKR_SNP_PRODUCT_UNKNOWN ? p : SKR_SNP_PRODUCT_MILAN;
}

/* A KDS URL with its host replaced by the configured endpoint. */
static skr_err
kds_rebase(const char *base, struct skr_buf *kds_url, const char **ret)
{
    _cleanup_(skr_buf_donep) struct skr_buf tail = { 0 };
    size_t pre = strlen(KDS_DEFAULT_BASE);

    ENSURE(kds_url->len > pre && memcmp(kds_url->ptr, KDS_DEFAULT_BASE, pre) == 0, SKR_E_INTERNAL,
           "unexpected KDS URL");
    skr_buf_init(&tail, 4096);
    TRY(skr_buf_append(&tail, kds_url->ptr + pre, kds_url->len - pre));
    skr_buf_reset(kds_url);
    TRY(skr_buf_append_str(kds_url, base));
    TRY(skr_buf_append_span(kds_url, skr_buf_span(&tail)));
    return skr_buf_cstr(kds_url, ret);
}

static skr_err
src_kds(struct finder *f, struct cand *ret, bool *found)
{
    struct skr_client *c = f->call->c;
    enum skr_snp_product p = kds_product(f);
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf der = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };
    _cleanup_(skr_cert_set_done) struct skr_cert_set s = { 0 };
    const char *u = NULL;

    skr_buf_init(&url, 4096);
    skr_buf_init(&der, SKR_MAX_CERT_BYTES);
    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    TRY(skr_kds_vcek_url(p, f->report->chip_id, f->report->reported_tcb, &url));
    TRY(kds_rebase(c->cc_base, &url, &u));
    TRY(http_get(f->call, "AMD KDS (VCEK)", u, &der));
    skr_buf_reset(&url);
    TRY(skr_kds_chain_url(p, false, &url));
    TRY(kds_rebase(c->cc_base, &url, &u));
    TRY(http_get(f->call, "AMD KDS (cert_chain)", u, &pem));
    /* DER VCEK first, then the PEM chain: one bundle the loader reads as a whole. */
    {
        const unsigned char *q = der.ptr;
        _cleanup_(X509_freep) X509 *vcek = d2i_X509(NULL, &q, (long)der.len);
        _cleanup_(skr_buf_donep) struct skr_buf all = { 0 };

        ENSURE(vcek != NULL && q == der.ptr + der.len, SKR_E_MALFORMED,
               "AMD KDS: the VCEK is not one DER certificate");
        skr_buf_init(&all, SKR_MAX_PEM_BYTES);
        TRY(append_pem_cert(vcek, &all));
        TRY(skr_buf_append_span(&all, skr_buf_span(&pem)));
        TRY(skr_cert_set_load(skr_buf_span(&all), &s));
    }
    f->product = p;
    return from_set(f, &s, "AMD KDS", ret, found);
}

static skr_err
query_part(const char *v, const char *key, struct skr_buf *out)
{
    size_t n = strlen(key);

    if (strncmp(v, key, n) == 0 && v[n] == '=') {
        return skr_buf_append_str(out, v);
    }
    return skr_buf_printf(out, "%s=%s", key, v);
}

static skr_err
src_azcache(struct finder *f, struct cand *ret, bool *found)
{
    struct skr_client *c = f->call->c;
    _cleanup_(skr_buf_donep) struct skr_buf url = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf pem = { 0 };
    _cleanup_(skr_cert_set_done) struct skr_cert_set s = { 0 };
    char chip[2 * 64 + 1];
    const char *u = NULL;

    skr_hex_fmt(f->report->chip_id, 64, chip);
    skr_buf_init(&url, 4096);
    skr_buf_init(&pem, SKR_MAX_PEM_BYTES);
    /* PROTOCOLS.md §4.3: the TCB is FormatUint(v, 16), not zero-padded. */
    TRY(skr_buf_printf(&url, "%s/%s/certificates/%s/%" PRIx64 "?", c->cc_base,
                       rel_opt_str(c->cfg, OPT_CERTCACHE_TEE_TYPE), chip, f->report->reported_tcb));
    TRY(query_part(rel_opt_str(c->cfg, OPT_CERTCACHE_API_VERSION), "api-version", &url));
    TRY(skr_buf_append_byte(&url, '&'));
    TRY(query_part(rel_opt_str(c->cfg, OPT_CERTCACHE_CLIENT_ID), "clientId", &url));
    TRY(skr_buf_cstr(&url, &u));
    TRY(http_get(f->call, "AzCache", u, &pem));
    TRY(skr_cert_set_load(skr_buf_span(&pem), &s));
    return from_set(f, &s, "AzCache", ret, found);
}

static bool
cache_get(struct finder *f, struct cand *ret)
{
    struct skr_client *c = f->call->c;
    bool hit = false;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < REL_CERT_CACHE && !hit; i++) {
        struct rel_cert_entry *e = &c->certs[i];

        if (e->used && e->tcb == f->report->reported_tcb &&
            memcmp(e->chip_id, f->report->chip_id, 64) == 0) {
            hit = skr_buf_append_str(&ret->pem, e->chain_pem) == SKR_OK;
            memcpy(ret->tcbm, e->tcbm, sizeof(ret->tcbm));
            ret->source = "the client's certificate cache";
            e->stamp = ++c->cert_clock;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void
cache_put(struct skr_client *c, const struct skr_snp_report *r, const struct cand *cand)
{
    struct rel_cert_entry *e = &c->certs[0];
    /* not strndup: the chain is not NUL-terminated in its buffer */
    char *pem = malloc(cand->pem.len + 1);

    if (pem == NULL) {
        return;
    }
    memcpy(pem, cand->pem.ptr, cand->pem.len);
    pem[cand->pem.len] = '\0';
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < REL_CERT_CACHE; i++) {
        struct rel_cert_entry *x = &c->certs[i];

        if (x->used && x->tcb == r->reported_tcb && memcmp(x->chip_id, r->chip_id, 64) == 0) {
            e = x;
            break;
        }
        if (!x->used || x->stamp < e->stamp) {
            e = x;
        }
    }
    free(e->chain_pem);
    *e = (struct rel_cert_entry){
        .used = true, .tcb = r->reported_tcb, .chain_pem = pem, .stamp = ++c->cert_clock
    };
    memcpy(e->chip_id, r->chip_id, 64);
    memcpy(e->tcbm, cand->tcbm, sizeof(e->tcbm));
    pthread_mutex_unlock(&c->lock);
}

static void
cache_drop(struct skr_client *c, const struct skr_snp_report *r)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < REL_CERT_CACHE; i++) {
        struct rel_cert_entry *x = &c->certs[i];

        if (x->used && x->tcb == r->reported_tcb && memcmp(x->chip_id, r->chip_id, 64) == 0) {
            free(x->chain_pem);
            *x = (struct rel_cert_entry){ 0 };
        }
    }
    pthread_mutex_unlock(&c->lock);
}

typedef skr_err (*source_fn)(struct finder *f, struct cand *ret, bool *found);

/* Runs one network/parsing source: its failure is remembered, not fatal. */
static void
try_source(struct finder *f, source_fn fn, const char *name, struct cand *ret, bool *found)
{
    skr_err e;

    if (*found) {
        return;
    }
    f->call->up = (struct skr_upstream){ 0 };
    e = fn(f, ret, found);
    if (e != SKR_OK) {
        *found = false;
        skr_buf_reset(&ret->pem);
        note_err(f, e, name);
    }
}

static skr_err
src_sc(struct finder *f, struct cand *ret, bool *found)
{
    return from_thim(f, &f->call->c->sc_thim, "the security context's host-amd-cert-base64", ret,
                     found);
}

/* Every source in order; *found tells whether one matched. */
static void
find_certs(struct finder *f, struct cand *ret, bool *found)
{
    struct skr_client *c = f->call->c;

    *found = f->use_cache && cache_get(f, ret);
    if (*found) {
        return;
    }
    count(c, &c->stats.cert_fetches);
    if (c->has_sc_thim) {
        try_source(f, src_sc, "security context", ret, found);
    }
    try_source(f, src_table, "device certificate table", ret, found);
    try_source(f, src_imds_thim, "THIM", ret, found);
    if (c->cc_type == REL_CC_AMD) {
        try_source(f, src_kds, "AMD KDS", ret, found);
    } else if (c->cc_type == REL_CC_AZCACHE) {
        try_source(f, src_azcache, "AzCache", ret, found);
    }
}

static skr_err
no_match(struct finder *f)
{
    char want[17];
    char seen[17];

    f->call->up = f->err_up;
    skr_snp_tcb_tcbm(f->report->reported_tcb, want);
    if (f->has_seen) {
        skr_snp_tcb_tcbm(f->seen_tcb, seen);
        (void)snprintf(f->call->hint, sizeof(f->call->hint),
                       "the platform's TCB is newer than its certificates (from %s); retry once "
                       "the host has the new VCEK, or set certcache_endpoint_type to AMD",
                       f->seen_from);
        FAILF(SKR_E_VERIFY,
              "SNP reported TCB value %" PRIu64 " (tcbm %s) doesn't match certificate TCB value "
              "%" PRIu64 " (tcbm %s), after refreshing the certificates and fetching a new "
              "report",
              f->report->reported_tcb, want, f->seen_tcb, seen);
    }
    if (f->has_err) {
        FAILF(f->err, "no certificate source has the VCEK for reported TCB %s; last failure: %s",
              want, f->err_msg);
    }
    FAILF(SKR_E_NOT_FOUND, "no certificate source has the VCEK for reported TCB %s", want);
}

static void
report_data_of(struct skr_span runtime, uint8_t rd[64])
{
    memset(rd, 0, 64);
    (void)SHA256(runtime.ptr != NULL ? runtime.ptr : (const uint8_t *)"", runtime.len, rd);
}

static skr_err
verify(struct rel_call *call, struct rel_evidence *ev, const uint8_t rd[64])
{
    _cleanup_(skr_cert_set_done) struct skr_cert_set set = { 0 };
    struct skr_snp_verify_opts opts = { 0 };
    struct skr_snp_verify_result res;
    const struct skr_check *bad;

    TRY(rel_stage(call, "verify"));
    TRY(skr_cert_set_load(skr_buf_span(&ev->chain_pem), &set));
    opts.extra_roots = call->c->extra_roots;
    opts.has_report_data = true;
    memcpy(opts.report_data, rd, 64);
    if (skr_snp_verify(&ev->report, skr_span_make(ev->raw, sizeof(ev->raw)), &set, &opts, &res) ==
        SKR_OK) {
        return SKR_OK;
    }
    bad = skr_snp_verify_first_failure(&res);
    if (bad == NULL) {
        FAILF(SKR_E_VERIFY, "the report did not verify locally: %s", skr_err_msg());
    }
    FAILF(SKR_E_VERIFY, "the report did not verify locally: check %s failed: %s", bad->name,
          bad->detail);
}

skr_err
rel_evidence_get(struct rel_call *call, struct skr_span runtime, bool need_certs,
                 struct rel_evidence *ev)
{
    _cleanup_(skr_buf_donep) struct skr_buf table = { 0 };
    struct finder f = { .call = call, .report = &ev->report, .use_cache = !call->no_cert_cache };
    struct cand cand = { 0 };
    uint8_t rd[64];
    bool found = false;
    skr_err e;

    report_data_of(runtime, rd);
    skr_buf_init(&ev->chain_pem, SKR_MAX_PEM_BYTES);
    skr_buf_init(&table, SKR_MAX_CERT_TABLE_BYTES);
    TRY(get_report(call, rd, ev, need_certs ? &table : NULL));
    if (!need_certs) {
        return SKR_OK;
    }
    skr_buf_init(&cand.pem, SKR_MAX_PEM_BYTES);
    for (int pass = 0; pass < 2 && !found; pass++) {
        if (pass == 1) {
            TRY(get_report(call, rd, ev, &table));
            f.use_cache = false;
        }
        TRY(rel_stage(call, "certs"));
        f.table = skr_buf_span(&table);
        f.product = skr_snp_report_product(&ev->report);
        find_certs(&f, &cand, &found);
    }
    if (!found) {
        skr_buf_done(&cand.pem);
        return no_match(&f);
    }
    e = skr_buf_append_span(&ev->chain_pem, skr_buf_span(&cand.pem));
    memcpy(ev->tcbm, cand.tcbm, sizeof(ev->tcbm));
    ev->source = cand.source;
    skr_buf_done(&cand.pem);
    TRY(e);
    call->up = (struct skr_upstream){ 0 };
    e = verify(call, ev, rd);
    if (e != SKR_OK) {
        cache_drop(call->c, &ev->report);
        return e;
    }
    {
        struct cand stored = { .pem = ev->chain_pem };

        memcpy(stored.tcbm, ev->tcbm, sizeof(stored.tcbm));
        cache_put(call->c, &ev->report, &stored);
    }
    return SKR_OK;
}
