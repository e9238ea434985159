/*
 * serve.c - `skr-emu serve DIR`: the IMDS (http), MAA (https) and Key Vault (https) emulators
 * in one process (DESIGN.md §4.2, issue #3).
 *
 * Order: parse and check every option (a non-loopback --host without --allow-non-loopback, a
 * bad port or a bad --fault is a usage error, exit 2, before anything is bound); block SIGINT
 * and SIGTERM (the server threads inherit the mask, so only sigwait sees them); load DIR
 * (service.h); start the three listeners (TLS from DIR/tls.pem and tls.key); fill the context's
 * URLs; write DIR/endpoints.json atomically
 *   {"imds":"http://H:P","maa":"https://H:P","akv":"https://H:P"}
 * print the endpoints; wait for SIGINT/SIGTERM; stop the listeners (joining every connection
 * thread); remove endpoints.json; exit 0. A failure to load DIR or to bind exits 3.
 *
 * Faults (--fault SERVICE:KIND:RATE[:ARG], repeatable, at most EMU_MAX_FAULTS per service):
 * SERVICE is imds, maa, akv or all; KIND is status (ARG = HTTP status 400..599; 429 and 503 add
 * "Retry-After: 1"), delay (ARG = milliseconds, at most SKR_HTTP_MAX_FAULT_DELAY_MS; the real
 * answer follows the delay) or drop (no ARG: the connection is closed without an answer); RATE
 * is a probability 0..1. SERVICE:KIND:ARG:RATE is accepted too when the canonical reading is
 * invalid (e.g. imds:status:503:1.0). For each request every fault of the service is drawn in
 * the order given; the first status or drop that fires replaces the handler, delays add up. The
 * draws come from a xorshift64* generator per service (behind a mutex) seeded from --seed and
 * the service's index, so a seeded run with the same request sequence is reproducible; without
 * --seed the seed is random and printed. The Key Vault emulator's own fetches of the MAA
 * issuer's metadata and keys (User-Agent EMU_AKV_USER_AGENT) are never faulted: faults model the
 * client's network, and no client can retry what Key Vault fetches internally.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "buf.h"
#include "emu.h"
#include "err.h"
#include "http_server.h"
#include "json.h"
#include "service.h"

#define EMU_MAX_FAULTS     8
#define EMU_ENDPOINTS_FILE "endpoints.json"
#define EMU_N_SERVICES     3

enum fault_kind {
    FAULT_STATUS,
    FAULT_DELAY,
    FAULT_DROP,
};

struct fault {
    enum fault_kind kind;
    double rate;
    unsigned int arg;
};

enum svc_id {
    SVC_IMDS = 0,
    SVC_MAA = 1,
    SVC_AKV = 2,
};

static const char *const svc_names[EMU_N_SERVICES] = { "imds", "maa", "akv" };

/* One listener: its handler, faults and PRNG. */
struct service {
    enum svc_id id;
    skr_http_handler inner;
    struct emu_ctx *ctx;
    struct fault faults[EMU_MAX_FAULTS];
    size_t n_faults;
    pthread_mutex_t lock;
    uint64_t state; /* xorshift64* */
    struct skr_http_server *srv;
};

struct serve_opts {
    const char *dir;
    const char *host;
    uint16_t ports[EMU_N_SERVICES];
    bool allow_non_loopback;
    bool seeded;
    uint64_t seed;
};

/* ---- PRNG ------------------------------------------------------------------------------- */

static uint64_t
splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A uniform double in [0, 1). */
static double
next_unit(struct service *s)
{
    uint64_t x;

    pthread_mutex_lock(&s->lock);
    x = s->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->state = x;
    pthread_mutex_unlock(&s->lock);
    return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) / (double)(1ULL << 53);
}

/* ---- the fault wrapper ------------------------------------------------------------------ */

static skr_err
fault_status(const struct service *s, unsigned int status, struct skr_http_response *resp)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "injected fault: status %u (skr-emu --fault)", status);
    if (status == 429 || status == 503) {
        TRY(skr_http_response_add_header(resp, "Retry-After", "1"));
    }
    if (s->id == SVC_IMDS) {
        _cleanup_(json_decrefp) json_t *v =
            json_pack("{s:s, s:s}", "error", "injected_fault", "error_description", msg);
        ENSURE(v != NULL, SKR_E_NOMEM, "json_pack");
        return skr_http_respond_json(resp, status, v);
    }
    return skr_http_respond_error_json(resp, status, "InjectedFault", msg);
}

/* Set once every listener is bound and the context's URLs are filled: the handlers read those
 * URLs (token issuers, challenges), so a request that arrives earlier is told to come back. */
static atomic_bool serving_ready;

static skr_err
serve_handle(void *vs, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct service *s = vs;
    unsigned long delay = 0;
    const char *ua = NULL;

    if (!atomic_load_explicit(&serving_ready, memory_order_acquire)) {
        TRY(skr_http_response_add_header(resp, "Retry-After", "1"));
        return skr_http_respond_error_json(resp, 503, "ServiceUnavailable",
                                           "skr-emu is starting; retry");
    }
    /* Faults model the network between a client and Azure: the Key Vault emulator's own fetches
     * of the MAA issuer's metadata and keys (User-Agent EMU_AKV_USER_AGENT) are Azure-internal
     * traffic that no client could retry, so they are never faulted. */
    ua = skr_http_request_header(req, "User-Agent");
    if (ua != NULL && strcmp(ua, EMU_AKV_USER_AGENT) == 0) {
        return s->inner(s->ctx, req, resp);
    }
    for (size_t i = 0; i < s->n_faults; i++) {
        const struct fault *f = &s->faults[i];
        if (f->rate <= 0.0 || next_unit(s) >= f->rate) {
            continue;
        }
        if (f->kind == FAULT_DELAY) {
            delay += f->arg;
            continue;
        }
        resp->delay_ms =
            (unsigned int)(delay < SKR_HTTP_MAX_FAULT_DELAY_MS ? delay
                                                               : SKR_HTTP_MAX_FAULT_DELAY_MS);
        if (f->kind == FAULT_DROP) {
            resp->drop_connection = true;
            return SKR_OK;
        }
        return fault_status(s, f->arg, resp);
    }
    resp->delay_ms =
        (unsigned int)(delay < SKR_HTTP_MAX_FAULT_DELAY_MS ? delay : SKR_HTTP_MAX_FAULT_DELAY_MS);
    return s->inner(s->ctx, req, resp);
}

/* ---- option parsing --------------------------------------------------------------------- */

static bool
parse_rate(const char *s, double *ret)
{
    char *end = NULL;
    double d;

    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ') {
        return false;
    }
    errno = 0;
    d = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(d) || d < 0.0 || d > 1.0) {
        return false;
    }
    *ret = d;
    return true;
}

static bool
parse_uint(const char *s, uint64_t min, uint64_t max, unsigned int *ret)
{
    uint64_t v;

    if (skr_parse_u64(skr_span_str(s), false, min, max, &v) != SKR_OK) {
        return false;
    }
    *ret = (unsigned int)v;
    return true;
}

static bool
parse_arg(enum fault_kind kind, const char *s, unsigned int *ret)
{
    if (kind == FAULT_STATUS) {
        return parse_uint(s, 400, 599, ret);
    }
    return parse_uint(s, 0, SKR_HTTP_MAX_FAULT_DELAY_MS, ret);
}

static int
parse_fault(const char *spec, struct service *svcs)
{
    char buf[128];
    char *field[4] = { NULL, NULL, NULL, NULL };
    size_t n = 0;
    struct fault f = { 0 };
    char *p;
    bool all;
    int svc = -1;

    if (strlen(spec) >= sizeof(buf)) {
        return emu_usage_error("--fault: spec too long");
    }
    memcpy(buf, spec, strlen(spec) + 1);
    p = buf;
    field[n++] = p;
    while ((p = strchr(p, ':')) != NULL) {
        *p++ = '\0';
        if (n == SKR_ARRAY_LEN(field)) {
            return emu_usage_error("--fault '%s': too many ':' parts "
                                   "(SERVICE:KIND:RATE[:ARG])",
                                   spec);
        }
        field[n++] = p;
    }
    if (n < 3) {
        return emu_usage_error("--fault '%s': expected SERVICE:KIND:RATE[:ARG]", spec);
    }
    all = strcmp(field[0], "all") == 0;
    for (size_t i = 0; i < EMU_N_SERVICES; i++) {
        if (strcmp(field[0], svc_names[i]) == 0) {
            svc = (int)i;
        }
    }
    if (!all && svc < 0) {
        return emu_usage_error("--fault '%s': unknown service '%s' (imds, maa, akv or all)", spec,
                               field[0]);
    }
    if (strcmp(field[1], "status") == 0) {
        f.kind = FAULT_STATUS;
    } else if (strcmp(field[1], "delay") == 0) {
        f.kind = FAULT_DELAY;
    } else if (strcmp(field[1], "drop") == 0) {
        f.kind = FAULT_DROP;
    } else {
        return emu_usage_error("--fault '%s': unknown kind '%s' (status, delay or drop)", spec,
                               field[1]);
    }
    if (f.kind == FAULT_DROP) {
        if (n != 3) {
            return emu_usage_error("--fault '%s': drop takes no ARG", spec);
        }
        if (!parse_rate(field[2], &f.rate)) {
            return emu_usage_error("--fault '%s': bad RATE '%s' (a number from 0 to 1)", spec,
                                   field[2]);
        }
    } else {
        if (n != 4) {
            return emu_usage_error("--fault '%s': %s needs an ARG (%s)", spec, field[1],
                                   f.kind == FAULT_STATUS ? "an HTTP status" : "milliseconds");
        }
        if (!(parse_rate(field[2], &f.rate) && parse_arg(f.kind, field[3], &f.arg)) &&
            !(parse_arg(f.kind, field[2], &f.arg) && parse_rate(field[3], &f.rate))) {
            if (!parse_rate(field[2], &f.rate) && !parse_rate(field[3], &f.rate)) {
                return emu_usage_error("--fault '%s': bad RATE (a number from 0 to 1)", spec);
            }
            return emu_usage_error("--fault '%s': bad ARG (%s)", spec,
                                   f.kind == FAULT_STATUS ? "an HTTP status 400..599"
                                                          : "milliseconds 0..60000");
        }
    }
    for (size_t i = 0; i < EMU_N_SERVICES; i++) {
        if (!all && (int)i != svc) {
            continue;
        }
        if (svcs[i].n_faults == EMU_MAX_FAULTS) {
            return emu_usage_error("--fault: more than %d faults for %s", EMU_MAX_FAULTS,
                                   svc_names[i]);
        }
        svcs[i].faults[svcs[i].n_faults++] = f;
    }
    return EMU_EXIT_OK;
}

static bool
host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcmp(host, "localhost") == 0) {
        return true;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        return IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return false;
}

static bool
host_is_numeric(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    return strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, &a4) == 1 ||
           inet_pton(AF_INET6, host, &a6) == 1;
}

static int
parse_serve(int argc, char **argv, struct serve_opts *o, struct service *svcs)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "imds-port", required_argument, NULL, 'i' },
        { "maa-port", required_argument, NULL, 'm' },
        { "akv-port", required_argument, NULL, 'a' },
        { "fault", required_argument, NULL, 'f' },
        { "seed", required_argument, NULL, 's' },
        { "allow-non-loopback", no_argument, NULL, 'A' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    int rc;
    unsigned int port;

    o->host = "127.0.0.1";
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            o->host = optarg;
            break;
        case 'i':
        case 'm':
        case 'a':
            if (!parse_uint(optarg, 0, 65535, &port)) {
                return emu_usage_error("bad port '%s' (0..65535)", optarg);
            }
            o->ports[c == 'i' ? SVC_IMDS : c == 'm' ? SVC_MAA : SVC_AKV] = (uint16_t)port;
            break;
        case 'f':
            rc = parse_fault(optarg, svcs);
            if (rc != EMU_EXIT_OK) {
                return rc;
            }
            break;
        case 's':
            if (skr_parse_u64(skr_span_str(optarg), true, 0, UINT64_MAX, &o->seed) != SKR_OK) {
                return emu_usage_error("bad --seed '%s' (an unsigned integer)", optarg);
            }
            o->seeded = true;
            break;
        case 'A':
            o->allow_non_loopback = true;
            break;
        case 'h':
            fputs(emu_usage_text, stdout);
            return -1;
        default:
            return emu_usage_error("serve: unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) {
        return emu_usage_error("serve: expected exactly one DIR");
    }
    o->dir = argv[optind];
    if (!host_is_numeric(o->host)) {
        return emu_usage_error("--host '%s': a numeric IPv4/IPv6 address or localhost", o->host);
    }
    if (!host_is_loopback(o->host) && !o->allow_non_loopback) {
        return emu_usage_error("--host %s is not a loopback address: the emulators hand out "
                               "tokens and keys to anyone who can connect; pass "
                               "--allow-non-loopback to do it anyway",
                               o->host);
    }
    return EMU_EXIT_OK;
}

/* ---- serving ---------------------------------------------------------------------------- */

static void
format_url(char *out, size_t out_len, const char *scheme, const char *host, uint16_t port)
{
    bool v6 = strchr(host, ':') != NULL;

    snprintf(out, out_len, "%s://%s%s%s:%u", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)port);
}

static skr_err
path_in(const char *dir, const char *rel, struct skr_buf *b, const char **ret)
{
    skr_buf_init(b, 4096);
    TRY(skr_buf_printf(b, "%s/%s", dir, rel));
    return skr_buf_cstr(b, ret);
}

static skr_err
start_all(const struct serve_opts *o, struct emu_ctx *ctx, struct service *svcs)
{
    static const skr_http_handler handlers[EMU_N_SERVICES] = { emu_imds_handle, emu_maa_handle,
                                                               emu_akv_handle };
    _cleanup_(skr_buf_donep) struct skr_buf cert = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf key = { 0 };
    const char *cert_path = NULL;
    const char *key_path = NULL;

    TRY(path_in(o->dir, EMU_TLS_CERT, &cert, &cert_path));
    TRY(path_in(o->dir, EMU_TLS_KEY, &key, &key_path));
    for (size_t i = 0; i < EMU_N_SERVICES; i++) {
        struct skr_http_server_cfg cfg = {
            .host = o->host,
            .port = o->ports[i],
            .allow_non_loopback = o->allow_non_loopback,
            .tls_cert_file = i == SVC_IMDS ? NULL : cert_path,
            .tls_key_file = i == SVC_IMDS ? NULL : key_path,
            .handler = serve_handle,
            .handler_ctx = &svcs[i],
        };
        svcs[i].inner = handlers[i];
        svcs[i].ctx = ctx;
        skr_err e = skr_http_server_start(&cfg, &svcs[i].srv);
        if (e != SKR_OK) {
            char why[sizeof(skr_err_last()->msg)];
            snprintf(why, sizeof(why), "%s", skr_err_msg()); /* FAILF overwrites the message */
            FAILF(e, "%s listener on %s port %u: %s", svc_names[i], o->host, (unsigned)o->ports[i],
                  why);
        }
    }
    format_url(ctx->imds_url, sizeof(ctx->imds_url), "http", o->host,
               skr_http_server_port(svcs[SVC_IMDS].srv));
    format_url(ctx->maa_url, sizeof(ctx->maa_url), "https", o->host,
               skr_http_server_port(svcs[SVC_MAA].srv));
    format_url(ctx->akv_url, sizeof(ctx->akv_url), "https", o->host,
               skr_http_server_port(svcs[SVC_AKV].srv));
    atomic_store_explicit(&serving_ready, true, memory_order_release);
    return SKR_OK;
}

static skr_err
write_endpoints(const char *dir, const struct emu_ctx *ctx)
{
    _cleanup_(json_decrefp) json_t *v = NULL;
    _cleanup_(skr_buf_donep) struct skr_buf text = { 0 };
    _cleanup_(skr_buf_donep) struct skr_buf path = { 0 };
    const char *p = NULL;

    v = json_pack("{s:s, s:s, s:s}", "imds", ctx->imds_url, "maa", ctx->maa_url, "akv",
                  ctx->akv_url);
    ENSURE(v != NULL, SKR_E_NOMEM, "json_pack");
    skr_buf_init(&text, 4096);
    TRY(skr_json_dump(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER, &text));
    TRY(skr_buf_append_byte(&text, '\n'));
    TRY(path_in(dir, EMU_ENDPOINTS_FILE, &path, &p));
    return skr_write_file_atomic(p, skr_buf_span(&text), 0644);
}

static void
remove_endpoints(const char *dir)
{
    _cleanup_(skr_buf_donep) struct skr_buf path = { 0 };
    const char *p = NULL;

    if (path_in(dir, EMU_ENDPOINTS_FILE, &path, &p) == SKR_OK) {
        (void)unlink(p);
    }
}

static void
stop_all(struct service *svcs)
{
    for (size_t i = 0; i < EMU_N_SERVICES; i++) {
        skr_http_server_stop(svcs[i].srv);
        svcs[i].srv = NULL;
    }
}

static int
run(const struct serve_opts *o, struct service *svcs, const sigset_t *mask)
{
    struct emu_ctx ctx;
    skr_err e;
    int sig = 0;

    e = emu_ctx_load(o->dir, &ctx);
    if (e != SKR_OK) {
        return emu_report_err(e, o->dir);
    }
    e = start_all(o, &ctx, svcs);
    if (e == SKR_OK) {
        e = write_endpoints(o->dir, &ctx);
    }
    if (e != SKR_OK) {
        int rc = emu_report_err(e, "serve");
        stop_all(svcs);
        emu_ctx_done(&ctx);
        return rc;
    }
    printf("skr-emu serve: EMULATOR - nothing here is trusted by real Azure or AMD verifiers\n"
           "  imds  %s\n  maa   %s\n  akv   %s\n"
           "  endpoints: %s/%s   TLS trust: %s/%s\n  fault seed: %llu\n",
           ctx.imds_url, ctx.maa_url, ctx.akv_url, o->dir, EMU_ENDPOINTS_FILE, o->dir, EMU_CA_CERT,
           (unsigned long long)o->seed);
    fflush(stdout);
    while (sigwait(mask, &sig) != 0 || (sig != SIGINT && sig != SIGTERM)) {
        /* only SIGINT and SIGTERM are in the mask */
    }
    printf("skr-emu serve: signal %d, stopping\n", sig);
    fflush(stdout);
    stop_all(svcs);
    remove_endpoints(o->dir);
    emu_ctx_done(&ctx);
    return EMU_EXIT_OK;
}

int
emu_cmd_serve(int argc, char **argv)
{
    struct serve_opts o = { 0 };
    struct service svcs[EMU_N_SERVICES];
    sigset_t mask;
    int rc;

    memset(svcs, 0, sizeof(svcs));
    for (size_t i = 0; i < EMU_N_SERVICES; i++) {
        svcs[i].id = (enum svc_id)i;
    }
    rc = parse_serve(argc, argv, &o, svcs);
    if (rc != EMU_EXIT_OK) {
        return rc < 0 ? EMU_EXIT_OK : rc;
    }
    if (!o.seeded) {
        if (RAND_bytes((unsigned char *)&o.seed, sizeof(o.seed)) != 1) {
            fprintf(stderr, "skr-emu: RAND_bytes failed\n");
            return EMU_EXIT_FAIL;
        }
    }
    for (size_t i = 0; i < EMU_N_SERVICES; i++) {
        svcs[i].state = splitmix64(o.seed ^ (0x100000001b3ULL * (i + 1)));
        if (svcs[i].state == 0) {
            svcs[i].state = 1;
        }
        pthread_mutex_init(&svcs[i].lock, NULL);
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    /* A shell starts background jobs with SIGINT ignored, and an ignored signal never reaches
     * sigwait: restore the default action (harmless while the signals are blocked). */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) {
        fprintf(stderr, "skr-emu: cannot block signals\n");
        return EMU_EXIT_FAIL;
    }
    rc = run(&o, svcs, &mask);
    for (size_t i = 0; i < EMU_N_SERVICES; i++) {
        pthread_mutex_destroy(&svcs[i].lock);
    }
    return rc;
}
