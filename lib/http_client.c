/*
 * http_client.c - HTTP(S) requests with bounded size, time and retries on libcurl
 * (DESIGN.md §3: "timeouts, TLS, connection reuse").
 *
 * Security settings are fixed, not options: http/https only (CURLOPT_PROTOCOLS_STR), no
 * redirects (a redirect from IMDS or AKV is an error, not a hint), peer and host verification
 * always on, no signals (CURLOPT_NOSIGNAL: we run in threads). A CA file adds trust roots to
 * the system's.
 *
 * Trust roots are loaded once per client into one X509_STORE that every TLS connection of the
 * client uses (CURLOPT_SSL_CTX_FUNCTION), instead of libcurl parsing the CA bundle again for
 * every new connection: with 32 releases in flight that was 32 copies of ~140 certificates,
 * and a few milliseconds of CPU per connection. The store is the system roots plus the CA
 * file (skr_http_trust_new), the same set the release JWS chains to, so libskr's client uses
 * this one store for both (about 700 KiB of heap for Debian's bundle, held once).
 *
 * Retries (RFC 9110 §15.5.9/§15.6 and Azure guidance): 408, 429, 500, 502, 503, 504,
 * timeouts and connection failures, with "full jitter" exponential backoff (a uniform wait in
 * [0, min(cap, base * 2^n)]); a Retry-After in seconds replaces the backoff, capped the same.
 */
#include "http_client.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ossl.h"
#include "skr_limits.h"

struct skr_http_client {
    struct skr_http_client_opts o;
    char *ca_file;
    char *user_agent;
    /* Connections, TLS sessions and DNS answers are shared between requests and threads. */
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    X509_STORE *trust; /* the CA file (or libcurl's default bundle) + the system CA directory */
};

/* State of one request while curl runs it. */
struct transfer {
    struct skr_http_reply *reply;
    size_t header_bytes;
    bool body_too_large;
    bool headers_too_large;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void
curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
skr_http_client_opts_init(struct skr_http_client_opts *o)
{
    *o = (struct skr_http_client_opts){
        .connect_timeout_ms = SKR_HTTP_CONNECT_TIMEOUT_MS,
        .timeout_ms = SKR_HTTP_TIMEOUT_MS,
        .max_response_bytes = SKR_MAX_HTTP_BODY_BYTES,
        .retries = SKR_HTTP_RETRIES,
        .retry_base_ms = SKR_HTTP_RETRY_BASE_MS,
        .retry_cap_ms = SKR_HTTP_RETRY_CAP_MS,
    };
}

/* ---- the client ------------------------------------------------------------------------ */

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    struct skr_http_client *c = ud;

    if ((unsigned int)data < CURL_LOCK_DATA_LAST) {
        pthread_mutex_lock(&c->locks[data]);
    }
}

static void
share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    struct skr_http_client *c = ud;

    if ((unsigned int)data < CURL_LOCK_DATA_LAST) {
        pthread_mutex_unlock(&c->locks[data]);
    }
}

void
skr_http_client_free(struct skr_http_client *c)
{
    if (c == NULL) {
        return;
    }
    if (c->share != NULL) {
        curl_share_cleanup(c->share);
    }
    for (size_t i = 0; i < SKR_ARRAY_LEN(c->locks); i++) {
        pthread_mutex_destroy(&c->locks[i]);
    }
    X509_STORE_free(c->trust);
    free(c->ca_file);
    free(c->user_agent);
    free(c);
}

skr_err
skr_http_trust_new(const char *ca_file, X509_STORE **ret)
{
    _cleanup_(X509_STORE_freep) X509_STORE *st = NULL;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    st = X509_STORE_new();
    ENSURE(st != NULL, SKR_E_NOMEM, "out of memory");
    /* OpenSSL's own lookups: the bundle file (loaded now) and the hashed directory (read on
     * demand); a missing bundle is not an error */
    TRY_OSSL(X509_STORE_set_default_paths(st), SKR_E_INTERNAL, "cannot use the system roots");
    if (ca_file != NULL) {
        if (X509_STORE_load_file(st, ca_file) != 1) {
            skr_err e = skr_err_atf(SKR_E_IO, __FILE__, __LINE__,
                                    "cannot load CA certificates from %s", ca_file);

            skr_err_add_ossl();
            return e;
        }
    }
    ERR_clear_error();
    *ret = TAKE_PTR(st);
    return SKR_OK;
}

X509_STORE *
skr_http_client_trust(const struct skr_http_client *c)
{
    return c->trust;
}

/* CURLOPT_SSL_CTX_FUNCTION: every new TLS connection verifies with the client's store. */
static CURLcode
use_trust(CURL *h, void *ssl_ctx, void *ud)
{
    struct skr_http_client *c = ud;

    (void)h;
    SSL_CTX_set1_cert_store(ssl_ctx, c->trust); /* takes a reference */
    /* a connection waiting in the cache keeps no 2 x 17 KiB record buffers */
    (void)SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    return CURLE_OK;
}

static skr_err
dup_opt(const char *s, char **ret)
{
    if (s == NULL) {
        *ret = NULL;
        return SKR_OK;
    }
    *ret = strdup(s);
    ENSURE(*ret != NULL, SKR_E_NOMEM, "out of memory");
    return SKR_OK;
}

skr_err
skr_http_client_new(const struct skr_http_client_opts *opts, struct skr_http_client **ret)
{
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = NULL;
    bool share_ok = true;

    ENSURE(opts != NULL && ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(opts->connect_timeout_ms != 0 && opts->timeout_ms != 0, SKR_E_INVALID_ARG,
           "HTTP timeouts must be non-zero");
    ENSURE(opts->max_response_bytes != 0, SKR_E_INVALID_ARG,
           "HTTP response size limit must be non-zero");
    ENSURE(opts->retries <= SKR_HTTP_MAX_RETRIES, SKR_E_INVALID_ARG, "too many HTTP retries");
    if (opts->ca_file != NULL) {
        int fd = open(opts->ca_file, O_RDONLY | O_CLOEXEC);

        ENSURE(fd >= 0, SKR_E_INVALID_ARG, "cannot open the CA file");
        close(fd);
    }
    ENSURE(pthread_once(&curl_once, curl_init) == 0 && curl_init_result == CURLE_OK, SKR_E_INTERNAL,
           "cannot initialise libcurl");

    c = calloc(1, sizeof(*c));
    ENSURE(c != NULL, SKR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < SKR_ARRAY_LEN(c->locks); i++) {
        pthread_mutex_init(&c->locks[i], NULL);
    }
    c->o = *opts;
    TRY(dup_opt(opts->ca_file, &c->ca_file));
    TRY(dup_opt(opts->user_agent != NULL ? opts->user_agent : "skr/" SKR_VERSION, &c->user_agent));
    c->o.ca_file = c->ca_file;
    c->o.user_agent = c->user_agent;
    TRY(skr_http_trust_new(c->ca_file, &c->trust));

    c->share = curl_share_init();
    ENSURE(c->share != NULL, SKR_E_NOMEM, "out of memory");
    share_ok =
        curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) == CURLSHE_OK &&
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) == CURLSHE_OK &&
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) == CURLSHE_OK &&
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) == CURLSHE_OK &&
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK &&
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK;
    ENSURE(share_ok, SKR_E_INTERNAL, "cannot set up the libcurl share handle");
    *ret = TAKE_PTR(c);
    return SKR_OK;
}

/* ---- replies --------------------------------------------------------------------------- */

static void
clear_headers(struct skr_http_reply *r)
{
    free(r->request_id);
    free(r->retry_after);
    free(r->www_authenticate);
    free(r->content_type);
    r->request_id = NULL;
    r->retry_after = NULL;
    r->www_authenticate = NULL;
    r->content_type = NULL;
}

void
skr_http_reply_done(struct skr_http_reply *r)
{
    if (r == NULL) {
        return;
    }
    clear_headers(r);
    skr_buf_done(&r->body);
    r->status = 0;
    r->attempts = 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * n;

    if (skr_buf_append(&t->reply->body, p, len) != SKR_OK) {
        t->body_too_large = true;
        return 0;
    }
    return len;
}

/* The slot for a header we keep, or NULL. */
static char **
header_slot(struct skr_http_reply *r, const char *name, size_t name_len)
{
    static const struct {
        const char *name;
        size_t off;
    } kept[] = {
        { "x-ms-request-id", offsetof(struct skr_http_reply, request_id) },
        { "retry-after", offsetof(struct skr_http_reply, retry_after) },
        { "www-authenticate", offsetof(struct skr_http_reply, www_authenticate) },
        { "content-type", offsetof(struct skr_http_reply, content_type) },
    };

    for (size_t i = 0; i < SKR_ARRAY_LEN(kept); i++) {
        if (strlen(kept[i].name) == name_len && strncasecmp(kept[i].name, name, name_len) == 0) {
            return (char **)(void *)((char *)r + kept[i].off);
        }
    }
    return NULL;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * n;
    const char *colon = NULL;
    const char *v = NULL;
    const char *end = p + len;
    char **slot = NULL;
    char *copy = NULL;

    if (len > SKR_MAX_HTTP_RESPONSE_HEADER_BYTES - t->header_bytes) {
        t->headers_too_large = true;
        return 0;
    }
    t->header_bytes += len;
    /* A status line starts a new response (after 100 Continue, or a new attempt). */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        clear_headers(t->reply);
        return len;
    }
    colon = memchr(p, ':', len);
    if (colon == NULL) {
        return len;
    }
    slot = header_slot(t->reply, p, (size_t)(colon - p));
    if (slot == NULL) {
        return len;
    }
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if ((size_t)(end - v) > SKR_MAX_HTTP_HEADER_VALUE) {
        t->headers_too_large = true;
        return 0;
    }
    /* not strndup: curl's header line is not NUL-terminated */
    copy = malloc((size_t)(end - v) + 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, v, (size_t)(end - v));
    copy[end - v] = '\0';
    free(*slot);
    *slot = copy;
    return len;
}

/* ---- one request ----------------------------------------------------------------------- */

static void
easy_cleanupp(CURL **p)
{
    if (*p != NULL) {
        curl_easy_cleanup(*p);
    }
}

static void
slist_freep(struct curl_slist **p)
{
    curl_slist_free_all(*p);
}

static void
curlu_freep(CURLU **p)
{
    curl_url_cleanup(*p);
}

static void
curl_freep(char **p)
{
    curl_free(*p);
}

/* Checks the URL and writes "host:port" for messages (never path or query). */
static skr_err
url_target(const char *url, char *out, size_t out_len)
{
    _cleanup_(curlu_freep) CURLU *u = curl_url();
    _cleanup_(curl_freep) char *scheme = NULL;
    _cleanup_(curl_freep) char *host = NULL;
    _cleanup_(curl_freep) char *port = NULL;

    ENSURE(u != NULL, SKR_E_NOMEM, "out of memory");
    ENSURE(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK, SKR_E_INVALID_ARG, "malformed URL");
    ENSURE(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
               (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0),
           SKR_E_INVALID_ARG, "URL scheme must be http or https");
    ENSURE(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK,
           SKR_E_INVALID_ARG, "URL has no host");
    (void)snprintf(out, out_len, "%s:%s", host, port);
    return SKR_OK;
}

static bool
method_ok(const char *m)
{
    static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" };

    for (size_t i = 0; i < SKR_ARRAY_LEN(methods); i++) {
        if (strcmp(m, methods[i]) == 0) {
            return true;
        }
    }
    return false;
}

static skr_err
build_headers(const char *const *headers, struct curl_slist **ret)
{
    _cleanup_(slist_freep) struct curl_slist *l = NULL;
    struct curl_slist *n = NULL;

    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        ENSURE(strpbrk(headers[i], "\r\n") == NULL && strchr(headers[i], ':') != NULL,
               SKR_E_INVALID_ARG, "request header is not one 'Name: value' line");
        n = curl_slist_append(l, headers[i]);
        ENSURE(n != NULL, SKR_E_NOMEM, "out of memory");
        l = n;
    }
    /* No "Expect: 100-continue" round trip: our bodies are small and bounded. */
    n = curl_slist_append(l, "Expect:");
    ENSURE(n != NULL, SKR_E_NOMEM, "out of memory");
    l = n;
    *ret = TAKE_PTR(l);
    return SKR_OK;
}

static skr_err
setup(struct skr_http_client *c, CURL *h, const char *method, const char *url,
      struct curl_slist *hdrs, struct skr_span body, struct transfer *t, char *errbuf)
{
    static char empty[1];
    bool ok = true;

    ok =
        curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->o.timeout_ms) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->o.max_response_bytes) ==
            CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SHARE, c->share) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_WRITEDATA, t) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_HEADERDATA, t) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
        /* libcurl 7.88 mallocs a 64 KiB upload buffer for every POST, even one whose body is
         * given whole (CURLOPT_POSTFIELDS): its minimum, 16 KiB, keeps 48 KiB per request in
         * flight off the heap (found with gdb on malloc in skrd under load) */
        curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) == CURLE_OK &&
        /* the shared cache keeps a connection for every request that can be in flight: at
         * libcurl's default, 5, each request finishing while more than 5 connections are open
         * closed one, and 32 releases in flight made a new TLS connection for almost every
         * call (bench/release) */
        curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)SKR_HTTP_MAX_CACHED_CONNECTIONS) == CURLE_OK;
    /* libcurl loads no CA file or directory itself: use_trust installs the client's store. */
    ok = ok && curl_easy_setopt(h, CURLOPT_CAINFO, NULL) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_CAPATH, NULL) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, use_trust) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c) == CURLE_OK;
    if (ok && strcmp(method, "GET") == 0) {
        ok = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else if (ok && strcmp(method, "HEAD") == 0) {
        ok = curl_easy_setopt(h, CURLOPT_NOBODY, 1L) == CURLE_OK;
    } else if (ok) {
        /* POSTFIELDS is not copied: body outlives the transfer. */
        ok = curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                              body.ptr != NULL ? (const void *)body.ptr : empty) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len) == CURLE_OK;
        if (ok && strcmp(method, "POST") != 0) {
            ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
        }
    }
    ENSURE(ok, SKR_E_INTERNAL, "cannot configure the libcurl handle");
    return SKR_OK;
}

static bool
status_retryable(long s)
{
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* Maps the outcome of one attempt to an error (SKR_OK for any HTTP status) and says whether
 * another attempt may help. */
static skr_err
classify(CURLcode cc, const struct transfer *t, const char *target, const char *errbuf, bool *retry)
{
    *retry = false;
    if (cc == CURLE_OK) {
        *retry = status_retryable(t->reply->status);
        return SKR_OK;
    }
    if (t->body_too_large || cc == CURLE_FILESIZE_EXCEEDED) {
        FAILF(SKR_E_TOO_LARGE, "%s: response body exceeds the limit", target);
    }
    if (t->headers_too_large) {
        FAILF(SKR_E_TOO_LARGE, "%s: response headers exceed the limit", target);
    }
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        *retry = true;
        FAILF(SKR_E_TIMEOUT, "%s: request timed out", target);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        *retry = true;
        FAILF(SKR_E_UPSTREAM, "%s: %s", target, curl_easy_strerror(cc));
    case CURLE_PEER_FAILED_VERIFICATION:
        /* errbuf names the OpenSSL verify failure; it holds no URL or header. */
        FAILF(SKR_E_VERIFY, "%s: TLS certificate did not verify: %s", target,
              errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
    case CURLE_SSL_CACERT_BADFILE:
        FAILF(SKR_E_INVALID_ARG, "%s: cannot load the CA file", target);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        FAILF(SKR_E_INVALID_ARG, "%s: unusable URL", target);
    case CURLE_OUT_OF_MEMORY:
        FAIL(SKR_E_NOMEM, "out of memory");
    default:
        FAILF(SKR_E_UPSTREAM, "%s: %s", target, curl_easy_strerror(cc));
    }
}

static _Thread_local uint64_t thread_deadline_ms;

void
skr_http_set_deadline(uint64_t deadline_ms)
{
    thread_deadline_ms = deadline_ms;
}

uint64_t
skr_http_deadline(void)
{
    return thread_deadline_ms;
}

uint64_t
skr_http_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Cuts this attempt's timeouts to the time left before the thread's deadline. */
static skr_err
apply_deadline(struct skr_http_client *c, CURL *h, const char *target)
{
    uint64_t now = 0;
    uint64_t left = 0;
    long conn = 0;
    long total = 0;

    if (thread_deadline_ms == 0) {
        return SKR_OK;
    }
    now = skr_http_now_ms();
    if (now >= thread_deadline_ms) {
        FAILF(SKR_E_TIMEOUT, "%s: the overall deadline has passed", target);
    }
    left = thread_deadline_ms - now;
    conn = (long)(left < c->o.connect_timeout_ms ? left : c->o.connect_timeout_ms);
    total = (long)(left < c->o.timeout_ms ? left : c->o.timeout_ms);
    ENSURE(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, conn) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total) == CURLE_OK,
           SKR_E_INTERNAL, "cannot configure the libcurl handle");
    return SKR_OK;
}

static uint64_t
random_below(uint64_t n)
{
    uint64_t v = 0;

    if (n == 0) {
        return 0;
    }
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        return n / 2;
    }
    return v % n;
}

/* Milliseconds to wait before retry number n (0-based). */
static uint64_t
backoff_ms(const struct skr_http_client *c, const struct skr_http_reply *r, unsigned int n)
{
    uint64_t cap = c->o.retry_cap_ms;
    uint64_t ceiling = c->o.retry_base_ms;
    uint64_t secs = 0;

    if (r->retry_after != NULL &&
        skr_parse_u64(skr_span_str(r->retry_after), false, 0, 86400, &secs) == SKR_OK) {
        return secs * 1000u < cap ? secs * 1000u : cap;
    }
    for (unsigned int i = 0; i < n && ceiling < cap; i++) {
        ceiling *= 2;
    }
    if (ceiling > cap) {
        ceiling = cap;
    }
    return random_below(ceiling + 1);
}

static void
sleep_ms(uint64_t ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000u),
                           .tv_nsec = (long)(ms % 1000u) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

skr_err
skr_http_request(struct skr_http_client *c, const char *method, const char *url,
                 const char *const *headers, struct skr_span body, struct skr_http_reply *ret)
{
    _cleanup_(easy_cleanupp) CURL *h = NULL;
    _cleanup_(slist_freep) struct curl_slist *hdrs = NULL;
    struct transfer t = { .reply = ret };
    char target[512];
    char errbuf[CURL_ERROR_SIZE];
    skr_err e = SKR_OK;
    bool retry = false;

    ENSURE(ret != NULL, SKR_E_INVALID_ARG, "NULL argument");
    *ret = (struct skr_http_reply){ 0 };
    ENSURE(c != NULL && method != NULL && url != NULL, SKR_E_INVALID_ARG, "NULL argument");
    skr_buf_init(&ret->body, c->o.max_response_bytes);
    ENSURE(method_ok(method), SKR_E_INVALID_ARG, "unsupported HTTP method");
    ENSURE(body.len == 0 || body.ptr != NULL, SKR_E_INVALID_ARG, "NULL body");
    TRY(url_target(url, target, sizeof(target)));
    TRY(build_headers(headers, &hdrs));
    h = curl_easy_init();
    ENSURE(h != NULL, SKR_E_NOMEM, "out of memory");
    TRY(setup(c, h, method, url, hdrs, body, &t, errbuf));

    for (;;) {
        CURLcode cc;

        ret->attempts++;
        ret->status = 0;
        clear_headers(ret);
        skr_buf_reset(&ret->body);
        t.header_bytes = 0;
        t.body_too_large = false;
        t.headers_too_large = false;
        errbuf[0] = '\0';
        e = apply_deadline(c, h, target);
        if (e != SKR_OK) {
            break;
        }
        cc = curl_easy_perform(h);
        {
            long connects = 0;

            if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
                connects > 0) {
                ret->connects += (unsigned int)connects;
            }
        }
        if (cc == CURLE_OK) {
            (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
        }
        e = classify(cc, &t, target, errbuf, &retry);
        if (!retry || ret->attempts > c->o.retries) {
            break;
        }
        {
            uint64_t wait = backoff_ms(c, ret, ret->attempts - 1);

            if (thread_deadline_ms != 0 && skr_http_now_ms() + wait >= thread_deadline_ms) {
                break; /* no time left for another attempt: report this one */
            }
            sleep_ms(wait);
        }
    }
    if (e == SKR_OK) {
        const char *s = NULL;

        /* Callers may treat the body as a C string (JSON, tokens); the NUL is not counted. */
        TRY(skr_buf_cstr(&ret->body, &s));
        return SKR_OK;
    }
    if (ret->attempts > 1) {
        char inner[sizeof(skr_err_last()->msg)];

        (void)snprintf(inner, sizeof(inner), "%s", skr_err_msg());
        FAILF(e, "%s (after %u attempts)", inner, ret->attempts);
    }
    return e;
}
