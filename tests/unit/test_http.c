/*
 * test_http.c - lib/http_server.c and lib/http_client.c against each other on 127.0.0.1
 * (port 0 only): round trips, limits on both sides, retries and backoff, timeouts, faults,
 * TLS with a throwaway CA made here with OpenSSL, concurrency and shutdown.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "http_client.h"
#include "http_server.h"
#include "json.h"
#include "ossl.h"
#include "tdata.h"

/* ---- a throwaway PKI ------------------------------------------------------------------- */

static char tmpdir[64];
static char ca_path[128];
static char cert_path[128];
static char key_path[128];

static void
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *
make_cert(EVP_PKEY *key, EVP_PKEY *issuer_key, X509 *issuer, const char *cn, long serial)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    X509V3_CTX ctx;
    bool ca = issuer == NULL;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    name = X509_get_subject_name(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_issuer_name(x, ca ? name : X509_get_subject_name(issuer)), 1);
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca ? x : issuer, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (ca) {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
        add_ext(x, &ctx, NID_ext_key_usage, "serverAuth");
        add_ext(x, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static void
write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *f = fopen(path, "we");

    assert_non_null(f);
    if (x != NULL) {
        assert_int_equal(PEM_write_X509(f, x), 1);
    }
    if (key != NULL) {
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    }
    assert_int_equal(fclose(f), 0);
}

static int
group_setup(void **state)
{
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    _cleanup_(EVP_PKEY_freep) EVP_PKEY *srv_key = EVP_EC_gen("P-256");
    _cleanup_(X509_freep) X509 *ca = NULL;
    _cleanup_(X509_freep) X509 *srv = NULL;

    assert_non_null(ca_key);
    assert_non_null(srv_key);
    (void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/skr-test-http-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    (void)snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
    (void)snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    (void)snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    ca = make_cert(ca_key, ca_key, NULL, "skr test CA", 1);
    srv = make_cert(srv_key, ca_key, ca, "localhost", 2);
    write_pem(ca_path, ca, NULL);
    write_pem(cert_path, srv, NULL);
    write_pem(key_path, NULL, srv_key);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)unlink(ca_path);
    (void)unlink(cert_path);
    (void)unlink(key_path);
    (void)rmdir(tmpdir);
    return 0;
}

/* ---- the test handler ------------------------------------------------------------------ */

enum mode {
    M_ECHO,
    M_FAIL_503,   /* fail_n times 503, then echo */
    M_429_ONCE,   /* 429 with Retry-After: 1 once, then echo */
    M_400,        /* always 400 */
    M_DELAY,      /* delay delay_ms, then echo */
    M_DROP,       /* drop fail_n times, then echo */
    M_BIG,        /* big_len bytes of 'x' */
    M_ERROR,      /* the handler fails */
    M_BAD_HEADER, /* tries to add a header with CRLF */
};

struct hctx {
    enum mode mode;
    unsigned int fail_n;
    unsigned int delay_ms;
    size_t big_len;
    atomic_uint calls;
    atomic_bool bad_header_refused;
};

static skr_err
echo(const struct skr_http_request *req, struct skr_http_response *resp)
{
    _cleanup_(json_decrefp) json_t *v = NULL;
    const char *a = skr_http_request_query(req, "a");
    const char *b = skr_http_request_query(req, "b");
    const char *x = skr_http_request_header(req, "x-test");

    v = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s%,s:b}", "method", req->method, "path", req->path,
                  "query", req->query, "a", a, "b", b, "x_test", x, "body",
                  req->body.len != 0 ? (const char *)req->body.ptr : "", req->body.len, "loopback",
                  req->remote_is_loopback);
    ENSURE(v != NULL, SKR_E_NOMEM, "json_pack");
    TRY(skr_http_response_add_header(resp, "x-ms-request-id", "req-123"));
    return skr_http_respond_json(resp, 200, v);
}

static skr_err
handler(void *ctx, const struct skr_http_request *req, struct skr_http_response *resp)
{
    struct hctx *h = ctx;
    unsigned int n = atomic_fetch_add(&h->calls, 1);

    switch (h->mode) {
    case M_ECHO:
        return echo(req, resp);
    case M_FAIL_503:
        if (n < h->fail_n) {
            return skr_http_respond_error_json(resp, 503, "ServiceUnavailable", "try later");
        }
        return echo(req, resp);
    case M_429_ONCE:
        if (n == 0) {
            TRY(skr_http_response_add_header(resp, "Retry-After", "1"));
            return skr_http_respond_error_json(resp, 429, "TooManyRequests", "slow down");
        }
        return echo(req, resp);
    case M_400:
        return skr_http_respond_error_json(resp, 400, "BadRequest", "no");
    case M_DELAY:
        resp->delay_ms = h->delay_ms;
        return echo(req, resp);
    case M_DROP:
        if (n < h->fail_n) {
            resp->drop_connection = true;
            return SKR_OK;
        }
        return echo(req, resp);
    case M_BIG:
        for (size_t i = 0; i < h->big_len; i++) {
            TRY(skr_buf_append_byte(&resp->body, 'x'));
        }
        return SKR_OK;
    case M_ERROR:
        FAIL(SKR_E_MALFORMED, "secret detail that must not reach the peer");
    case M_BAD_HEADER:
        h->bad_header_refused =
            skr_http_response_add_header(resp, "X-Evil", "a\r\nSet-Cookie: x=1") ==
                SKR_E_INVALID_ARG &&
            skr_http_response_add_header(resp, "Bad Name", "v") == SKR_E_INVALID_ARG;
        return echo(req, resp);
    }
    FAIL(SKR_E_INTERNAL, "unknown mode");
}

/* ---- helpers --------------------------------------------------------------------------- */

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct skr_http_server *
start(struct hctx *h, bool tls, size_t max_body)
{
    struct skr_http_server *srv = NULL;
    struct skr_http_server_cfg cfg = {
        .handler = handler,
        .handler_ctx = h,
        .max_body_bytes = max_body,
        .tls_cert_file = tls ? cert_path : NULL,
        .tls_key_file = tls ? key_path : NULL,
    };

    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_OK);
    assert_non_null(srv);
    assert_int_not_equal(skr_http_server_port(srv), 0);
    return srv;
}

static struct skr_http_client *
client(const char *ca, unsigned int retries, unsigned int timeout_ms, size_t max_response)
{
    struct skr_http_client *c = NULL;
    struct skr_http_client_opts o;

    skr_http_client_opts_init(&o);
    o.ca_file = ca;
    o.retries = retries;
    o.retry_base_ms = 10;
    o.retry_cap_ms = 5000;
    o.connect_timeout_ms = 2000;
    if (timeout_ms != 0) {
        o.timeout_ms = timeout_ms;
    }
    if (max_response != 0) {
        o.max_response_bytes = max_response;
    }
    assert_int_equal(skr_http_client_new(&o, &c), SKR_OK);
    return c;
}

static void
url_of(char *out, size_t n, const struct skr_http_server *srv, bool tls, const char *path)
{
    (void)snprintf(out, n, "%s://127.0.0.1:%u%s", tls ? "https" : "http",
                   (unsigned int)skr_http_server_port(srv), path);
}

static json_t *
reply_json(const struct skr_http_reply *r)
{
    json_t *v = NULL;

    assert_int_equal(skr_json_parse_object(skr_buf_span(&r->body), 1u << 20, "reply", &v), SKR_OK);
    return v;
}

static void
assert_member(const json_t *v, const char *key, const char *want)
{
    const char *got = NULL;

    assert_int_equal(skr_json_get_str(v, key, &got), SKR_OK);
    assert_string_equal(got, want);
}

/* ---- round trips ----------------------------------------------------------------------- */

static void
test_get_post_roundtrip(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 0, 0, 0);
    _cleanup_(json_decrefp) json_t *v = NULL;
    _cleanup_(json_decrefp) json_t *v2 = NULL;
    const char *hdrs[] = { "X-Test: hello there", "Content-Type: application/json", NULL };
    const char *body = "{\"k\":\"v\",\"n\":1}";
    struct skr_http_reply r = { 0 };
    char url[256];
    bool lb = false;

    url_of(url, sizeof(url), srv, false, "/some/path?a=1&b=two%20words");
    assert_int_equal(skr_http_request(c, "GET", url, hdrs, skr_span_make(NULL, 0), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 1);
    assert_non_null(r.content_type);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(r.request_id);
    assert_string_equal(r.request_id, "req-123");
    assert_null(r.retry_after);
    v = reply_json(&r);
    assert_member(v, "method", "GET");
    assert_member(v, "path", "/some/path");
    assert_member(v, "query", "a=1&b=two%20words");
    assert_member(v, "a", "1");
    assert_member(v, "b", "two words");
    assert_member(v, "x_test", "hello there");
    assert_member(v, "body", "");
    assert_int_equal(skr_json_get_bool(v, "loopback", &lb), SKR_OK);
    assert_true(lb);
    skr_http_reply_done(&r);

    url_of(url, sizeof(url), srv, false, "/post");
    assert_int_equal(skr_http_request(c, "POST", url, hdrs, skr_span_str(body), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    v2 = reply_json(&r);
    assert_member(v2, "method", "POST");
    assert_member(v2, "query", "");
    assert_member(v2, "body", body);
    skr_http_reply_done(&r);

    assert_int_equal(skr_http_request(c, "PUT", url, NULL, skr_span_str("put-body"), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((const char *)r.body.ptr, "\"method\":\"PUT\""));
    assert_non_null(strstr((const char *)r.body.ptr, "\"body\":\"put-body\""));
    skr_http_reply_done(&r);
    assert_int_equal(atomic_load(&h.calls), 3);
}

static void
test_handler_error_and_headers(void **state)
{
    struct hctx h = { .mode = M_ERROR };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 0, 0, 0);
    _cleanup_(json_decrefp) json_t *v = NULL;
    struct skr_http_reply r = { 0 };
    json_t *err = NULL;
    char url[256];

    url_of(url, sizeof(url), srv, false, "/");
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    /* 500 is retryable, but retries are 0 here. */
    assert_int_equal(r.status, 500);
    assert_int_equal(r.attempts, 1);
    assert_null(strstr((const char *)r.body.ptr, "secret detail"));
    v = reply_json(&r);
    assert_int_equal(skr_json_get_obj(v, "error", &err), SKR_OK);
    assert_member(err, "code", "InternalError");
    assert_member(err, "message", "SKR_E_MALFORMED");
    skr_http_reply_done(&r);

    h.mode = M_BAD_HEADER;
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    assert_true(atomic_load(&h.bad_header_refused));
    skr_http_reply_done(&r);
}

static void
test_response_helpers(void **state)
{
    struct skr_http_response resp = { 0 };
    _cleanup_(json_decrefp) json_t *v = json_pack("{s:i}", "n", 7);

    skr_buf_init(&resp.body, 1024);
    assert_int_equal(skr_http_respond_json(&resp, 201, v), SKR_OK);
    assert_int_equal(resp.status, 201);
    assert_int_equal(resp.body.len, strlen("{\"n\":7}"));
    assert_memory_equal(resp.body.ptr, "{\"n\":7}", resp.body.len);
    assert_int_equal(resp.n_headers, 1);
    assert_string_equal(resp.headers[0].name, "Content-Type");
    /* A second JSON body replaces the first and keeps one Content-Type. */
    assert_int_equal(skr_http_respond_error_json(&resp, 404, "NotFound", "no such key"), SKR_OK);
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.n_headers, 1);
    assert_memory_equal(resp.body.ptr,
                        "{\"error\":{\"code\":\"NotFound\",\"message\":\"no such key\"}}",
                        resp.body.len);
    /* a message cut inside a UTF-8 sequence, or quoting control bytes, stays a valid 400 */
    assert_int_equal(skr_http_respond_error_json(&resp, 400, "BadParameter", "name 'k\xc3'\x01"),
                     SKR_OK);
    assert_int_equal(resp.status, 400);
    assert_memory_equal(resp.body.ptr,
                        "{\"error\":{\"code\":\"BadParameter\",\"message\":\"name 'k?'?\"}}",
                        resp.body.len);
    assert_int_equal(skr_http_respond_json(&resp, 99, v), SKR_E_INVALID_ARG);
    assert_int_equal(skr_http_response_add_header(&resp, "X-Ok", "value\twith tab"), SKR_OK);
    assert_int_equal(skr_http_response_add_header(&resp, "X-Bad", "a\nb"), SKR_E_INVALID_ARG);
    assert_int_equal(skr_http_response_add_header(&resp, "", "v"), SKR_E_INVALID_ARG);
    assert_int_equal(skr_http_response_add_header(&resp, "X:Y", "v"), SKR_E_INVALID_ARG);
    while (resp.n_headers < SKR_HTTP_MAX_RESPONSE_HEADERS) {
        assert_int_equal(skr_http_response_add_header(&resp, "X-Fill", "1"), SKR_OK);
    }
    assert_int_equal(skr_http_response_add_header(&resp, "X-More", "1"), SKR_E_TOO_LARGE);
    for (size_t i = 0; i < resp.n_headers; i++) {
        free(resp.headers[i].name);
        free(resp.headers[i].value);
    }
    skr_buf_done(&resp.body);
}

/* ---- server limits --------------------------------------------------------------------- */

static void
test_body_limit(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 1024);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 0, 0, 0);
    struct skr_http_reply r = { 0 };
    char big[4096];
    char url[256];

    memset(big, 'b', sizeof(big));
    url_of(url, sizeof(url), srv, false, "/upload");
    /* Exactly at the limit passes. */
    assert_int_equal(skr_http_request(c, "POST", url, NULL, skr_span_make(big, 1024), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(atomic_load(&h.calls), 1);
    skr_http_reply_done(&r);
    /* One byte over: 413 from Content-Length, handler not called. */
    assert_int_equal(skr_http_request(c, "POST", url, NULL, skr_span_make(big, 1025), &r), SKR_OK);
    assert_int_equal(r.status, 413);
    assert_int_equal(r.attempts, 1);
    skr_http_reply_done(&r);
    assert_int_equal(skr_http_request(c, "POST", url, NULL, skr_span_make(big, sizeof(big)), &r),
                     SKR_OK);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr((const char *)r.body.ptr, "RequestTooLarge"));
    skr_http_reply_done(&r);
    assert_int_equal(atomic_load(&h.calls), 1);
}

static int
raw_connect(uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void
raw_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

/* A chunked body has no Content-Length: the limit trips while buffering. */
static void
test_body_limit_chunked(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 1024);
    const char *head = "POST /c HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n";
    char chunk[512 + 16];
    char got[4096];
    size_t have = 0;
    int fd = raw_connect(skr_http_server_port(srv));

    raw_send(fd, head, strlen(head));
    memcpy(chunk, "200\r\n", 5);
    memset(chunk + 5, 'c', 512);
    memcpy(chunk + 5 + 512, "\r\n", 2);
    for (int i = 0; i < 4; i++) {
        raw_send(fd, chunk, 5 + 512 + 2);
    }
    raw_send(fd, "0\r\n\r\n", 5);
    for (;;) {
        ssize_t n = recv(fd, got + have, sizeof(got) - 1 - have, 0);

        if (n <= 0) {
            break;
        }
        have += (size_t)n;
    }
    got[have] = '\0';
    close(fd);
    assert_non_null(strstr(got, "HTTP/1.1 413"));
    assert_int_equal(atomic_load(&h.calls), 0);
}

static void
test_header_limit(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 0, 0, 0);
    struct skr_http_reply r = { 0 };
    _cleanup_free_ char *line = malloc(64 * 1024 + 16);
    const char *hdrs[] = { line, NULL };
    char url[256];
    skr_err e;

    assert_non_null(line);
    memcpy(line, "X-Big: ", 7);
    memset(line + 7, 'h', 64 * 1024);
    line[7 + 64 * 1024] = '\0';
    url_of(url, sizeof(url), srv, false, "/");
    e = skr_http_request(c, "GET", url, hdrs, skr_span_make(NULL, 0), &r);
    if (e == SKR_OK) {
        assert_true(r.status == 431 || r.status == 413);
    } else {
        assert_int_equal(e, SKR_E_UPSTREAM);
    }
    skr_http_reply_done(&r);
    assert_int_equal(atomic_load(&h.calls), 0);

    /* A normal 8 KiB header still passes. */
    line[7 + 8 * 1024] = '\0';
    assert_int_equal(skr_http_request(c, "GET", url, hdrs, skr_span_make(NULL, 0), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    skr_http_reply_done(&r);
    assert_int_equal(atomic_load(&h.calls), 1);
}

/* ---- client limits, retries, timeouts -------------------------------------------------- */

static void
test_max_response(void **state)
{
    struct hctx h = { .mode = M_BIG, .big_len = 4096 };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *small = client(NULL, 2, 0, 1000);
    _cleanup_(skr_http_client_freep) struct skr_http_client *exact = client(NULL, 0, 0, 4096);
    struct skr_http_reply r = { 0 };
    char url[256];

    url_of(url, sizeof(url), srv, false, "/big");
    assert_int_equal(skr_http_request(small, "GET", url, NULL, skr_span_make(NULL, 0), &r),
                     SKR_E_TOO_LARGE);
    assert_int_equal(r.attempts, 1); /* not retried */
    assert_msg_contains("127.0.0.1:");
    skr_http_reply_done(&r);
    assert_int_equal(skr_http_request(exact, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 4096);
    skr_http_reply_done(&r);
}

static void
test_retry_503(void **state)
{
    struct hctx h = { .mode = M_FAIL_503, .fail_n = 2 };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 3, 0, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c1 = client(NULL, 1, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];

    url_of(url, sizeof(url), srv, false, "/flaky");
    assert_int_equal(skr_http_request(c, "POST", url, NULL, skr_span_str("{}"), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(atomic_load(&h.calls), 3);
    skr_http_reply_done(&r);

    /* Retries exhausted: the last 503 comes back as a reply. */
    atomic_store(&h.calls, 0);
    assert_int_equal(skr_http_request(c1, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 2);
    assert_non_null(strstr((const char *)r.body.ptr, "ServiceUnavailable"));
    skr_http_reply_done(&r);
}

static void
test_retry_after(void **state)
{
    struct hctx h = { .mode = M_429_ONCE };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 2, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];
    uint64_t t0 = now_ms();
    uint64_t dt = 0;

    url_of(url, sizeof(url), srv, false, "/throttled");
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    dt = now_ms() - t0;
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    /* Retry-After: 1 replaced the 10 ms backoff. */
    assert_true(dt >= 900);
    assert_true(dt < 8000);
    skr_http_reply_done(&r);
}

static void
test_400_not_retried(void **state)
{
    struct hctx h = { .mode = M_400 };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 3, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];

    url_of(url, sizeof(url), srv, false, "/bad");
    assert_int_equal(skr_http_request(c, "POST", url, NULL, skr_span_str("x"), &r), SKR_OK);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(atomic_load(&h.calls), 1);
    skr_http_reply_done(&r);
}

static void
test_timeout_and_stop_interrupts_delay(void **state)
{
    struct hctx h = { .mode = M_DELAY, .delay_ms = 10000 };
    struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 1, 300, 0);
    struct skr_http_reply r = { 0 };
    char url[256];
    uint64_t t0 = now_ms();

    url_of(url, sizeof(url), srv, false, "/slow?token=sekrit");
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r),
                     SKR_E_TIMEOUT);
    assert_int_equal(r.attempts, 2);
    assert_true(now_ms() - t0 < 5000);
    assert_msg_contains("127.0.0.1:");
    assert_null(strstr(skr_err_msg(), "sekrit"));
    assert_null(strstr(skr_err_msg(), "/slow"));
    skr_http_reply_done(&r);
    /* Two handler threads sit in a 10 s delay; stop cuts them short. */
    t0 = now_ms();
    skr_http_server_stop(srv);
    assert_true(now_ms() - t0 < 5000);
}

static void
test_connection_refused(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 2, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];
    char want[64];

    url_of(url, sizeof(url), srv, false, "/x?code=sekrit");
    (void)snprintf(want, sizeof(want), "127.0.0.1:%u", (unsigned int)skr_http_server_port(srv));
    skr_http_server_stop(srv);
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r),
                     SKR_E_UPSTREAM);
    assert_int_equal(r.attempts, 3);
    assert_msg_contains(want);
    assert_msg_contains("after 3 attempts");
    assert_null(strstr(skr_err_msg(), "sekrit"));
    skr_http_reply_done(&r);
}

static void
test_drop_fault(void **state)
{
    struct hctx h = { .mode = M_DROP, .fail_n = 1 };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 2, 0, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c0 = client(NULL, 0, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];

    url_of(url, sizeof(url), srv, false, "/drop");
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    skr_http_reply_done(&r);

    h.fail_n = 1000;
    assert_int_equal(skr_http_request(c0, "GET", url, NULL, skr_span_make(NULL, 0), &r),
                     SKR_E_UPSTREAM);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.status, 0);
    skr_http_reply_done(&r);
}

/* ---- TLS ------------------------------------------------------------------------------- */

static void
test_tls(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, true, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *trusted = client(ca_path, 0, 0, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *plain = client(NULL, 2, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];

    url_of(url, sizeof(url), srv, true, "/tls?a=1");
    assert_int_equal(skr_http_request(trusted, "GET", url, NULL, skr_span_make(NULL, 0), &r),
                     SKR_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr((const char *)r.body.ptr, "\"a\":\"1\""));
    skr_http_reply_done(&r);
    (void)snprintf(url, sizeof(url), "https://localhost:%u/tls",
                   (unsigned int)skr_http_server_port(srv));
    assert_int_equal(skr_http_request(trusted, "POST", url, NULL, skr_span_str("{}"), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    skr_http_reply_done(&r);

    /* Without the CA the certificate does not verify, and that is not retried. */
    assert_int_equal(skr_http_request(plain, "GET", url, NULL, skr_span_make(NULL, 0), &r),
                     SKR_E_VERIFY);
    assert_int_equal(r.attempts, 1);
    assert_msg_contains("did not verify");
    skr_http_reply_done(&r);

    /* Plain HTTP to a TLS port is an upstream error, not a verify error. */
    url_of(url, sizeof(url), srv, false, "/tls");
    assert_int_equal(
        skr_http_request(plain, "GET", url, NULL, skr_span_make(NULL, 0), &r) == SKR_OK, false);
    skr_http_reply_done(&r);
}

/* verifies PEM file leaf against st: 1 or 0 */
static int
verifies(X509_STORE *st, const char *leaf_path)
{
    FILE *f = fopen(leaf_path, "re");
    _cleanup_(X509_freep) X509 *leaf = NULL;
    _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();

    assert_non_null(f);
    leaf = PEM_read_X509(f, NULL, NULL, NULL);
    (void)fclose(f);
    assert_non_null(leaf);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
    return X509_verify_cert(ctx) == 1 ? 1 : 0;
}

/* Trust roots: the CA file adds to the system's; the system's are OpenSSL's (SSL_CERT_FILE
 * wins over its compiled-in bundle); a client's store is the one it verifies with. */
static void
test_trust_roots(void **state)
{
    _cleanup_(X509_STORE_freep) X509_STORE *with_ca = NULL;
    _cleanup_(X509_STORE_freep) X509_STORE *system = NULL;
    _cleanup_(X509_STORE_freep) X509_STORE *via_env = NULL;
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(ca_path, 0, 0, 0);
    const char *saved = getenv("SSL_CERT_FILE");
    char *saved_copy = saved != NULL ? strdup(saved) : NULL;

    assert_int_equal(skr_http_trust_new(ca_path, &with_ca), SKR_OK);
    assert_int_equal(verifies(with_ca, cert_path), 1);
    assert_int_equal(skr_http_trust_new(NULL, &system), SKR_OK);
    assert_int_equal(verifies(system, cert_path), 0);
    assert_int_equal(verifies(skr_http_client_trust(c), cert_path), 1);
    assert_int_equal(skr_http_trust_new("/nonexistent/ca.pem", &via_env), SKR_E_IO);
    assert_null(via_env);

    assert_int_equal(setenv("SSL_CERT_FILE", ca_path, 1), 0);
    assert_int_equal(skr_http_trust_new(NULL, &via_env), SKR_OK);
    if (saved_copy != NULL) {
        assert_int_equal(setenv("SSL_CERT_FILE", saved_copy, 1), 0);
    } else {
        assert_int_equal(unsetenv("SSL_CERT_FILE"), 0);
    }
    free(saved_copy);
    assert_int_equal(verifies(via_env, cert_path), 1);
}

static void
test_tls_from_pem_spans(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    struct skr_buf cert;
    struct skr_buf key;
    struct skr_http_server *srv = NULL;
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(ca_path, 0, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];
    struct skr_http_server_cfg cfg = { .handler = handler, .handler_ctx = &h };

    skr_buf_init(&cert, 1u << 16);
    skr_buf_init(&key, 1u << 16);
    assert_int_equal(skr_read_file(cert_path, &cert), SKR_OK);
    assert_int_equal(skr_read_file(key_path, &key), SKR_OK);
    cfg.tls_cert_pem = skr_buf_span(&cert);
    cfg.tls_key_pem = skr_buf_span(&key);
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_OK);
    url_of(url, sizeof(url), srv, true, "/");
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    assert_int_equal(r.status, 200);
    skr_http_reply_done(&r);
    skr_http_server_stop(srv);

    /* A certificate without a key, and a key that is not PEM. */
    cfg.tls_key_pem = skr_span_make(NULL, 0);
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_E_INVALID_ARG);
    cfg.tls_key_pem = skr_span_str("not a key");
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_E_IO);
    cfg.tls_key_pem = skr_span_make(NULL, 0);
    cfg.tls_key_file = "/nonexistent/key.pem";
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_E_IO);
    skr_buf_done(&cert);
    skr_buf_done(&key);
}

/* ---- configuration --------------------------------------------------------------------- */

static void
test_server_cfg(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    struct skr_http_server *srv = NULL;
    struct skr_http_server_cfg cfg = { .handler = handler, .handler_ctx = &h };
    static const char *const refused[] = { "0.0.0.0", "10.1.2.3", "::", "2001:db8::1" };

    for (size_t i = 0; i < SKR_ARRAY_LEN(refused); i++) {
        cfg.host = refused[i];
        assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_E_INVALID_ARG);
        assert_msg_contains("non-loopback");
        assert_null(srv);
    }
    cfg.host = "example.com";
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_E_INVALID_ARG);
    cfg.host = "127.0.0.1 ";
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_E_INVALID_ARG);
    cfg.host = "localhost";
    cfg.handler = NULL;
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_E_INVALID_ARG);
    cfg.handler = handler;
    assert_int_equal(skr_http_server_start(&cfg, &srv), SKR_OK);
    assert_int_not_equal(skr_http_server_port(srv), 0);
    skr_http_server_stop(srv);
    skr_http_server_stop(NULL);
}

static void
test_client_args(void **state)
{
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 0, 0, 0);
    struct skr_http_client *bad = NULL;
    struct skr_http_client_opts o;
    struct skr_http_reply r = { 0 };
    const char *crlf[] = { "X-A: b\r\nX-Injected: 1", NULL };
    const char *nocolon[] = { "X-A", NULL };

    assert_int_equal(
        skr_http_request(c, "GET", "ftp://127.0.0.1/x", NULL, skr_span_make(NULL, 0), &r),
        SKR_E_INVALID_ARG);
    skr_http_reply_done(&r);
    assert_int_equal(skr_http_request(c, "GET", "not a url", NULL, skr_span_make(NULL, 0), &r),
                     SKR_E_INVALID_ARG);
    skr_http_reply_done(&r);
    assert_int_equal(
        skr_http_request(c, "TRACE", "http://127.0.0.1:1/", NULL, skr_span_make(NULL, 0), &r),
        SKR_E_INVALID_ARG);
    skr_http_reply_done(&r);
    assert_int_equal(
        skr_http_request(c, "GET", "http://127.0.0.1:1/", crlf, skr_span_make(NULL, 0), &r),
        SKR_E_INVALID_ARG);
    skr_http_reply_done(&r);
    assert_int_equal(
        skr_http_request(c, "GET", "http://127.0.0.1:1/", nocolon, skr_span_make(NULL, 0), &r),
        SKR_E_INVALID_ARG);
    skr_http_reply_done(&r);
    assert_int_equal(
        skr_http_request(c, "POST", "http://127.0.0.1:1/", NULL, skr_span_make(NULL, 5), &r),
        SKR_E_INVALID_ARG);
    skr_http_reply_done(&r);

    skr_http_client_opts_init(&o);
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(skr_http_client_new(&o, &bad), SKR_E_INVALID_ARG);
    skr_http_client_opts_init(&o);
    o.timeout_ms = 0;
    assert_int_equal(skr_http_client_new(&o, &bad), SKR_E_INVALID_ARG);
    skr_http_client_opts_init(&o);
    o.retries = SKR_HTTP_MAX_RETRIES + 1;
    assert_int_equal(skr_http_client_new(&o, &bad), SKR_E_INVALID_ARG);
    assert_null(bad);
}

/* ---- concurrency and shutdown ---------------------------------------------------------- */

struct worker {
    struct skr_http_client *c;
    const char *url;
    int ok;
    unsigned int connects;
};

#define WORKERS    8
#define PER_WORKER 10

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < PER_WORKER; i++) {
        struct skr_http_reply r = { 0 };
        char body[32];

        (void)snprintf(body, sizeof(body), "req-%d", i);
        if (skr_http_request(w->c, "POST", w->url, NULL, skr_span_str(body), &r) == SKR_OK &&
            r.status == 200 && strstr((const char *)r.body.ptr, body) != NULL) {
            w->ok++;
        }
        w->connects += r.connects;
        skr_http_reply_done(&r);
    }
    return NULL;
}

static void
test_concurrent(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    _cleanup_(skr_http_server_stopp) struct skr_http_server *srv = start(&h, true, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(ca_path, 0, 0, 0);
    struct worker w[WORKERS];
    pthread_t t[WORKERS];
    unsigned int connects = 0;
    char url[256];

    url_of(url, sizeof(url), srv, true, "/c");
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){ .c = c, .url = url };
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].ok, PER_WORKER);
        connects += w[i].connects;
    }
    assert_int_equal(atomic_load(&h.calls), WORKERS * PER_WORKER);
    /* At most WORKERS requests are in flight, so WORKERS TLS connections serve all of them:
     * the shared cache keeps each one for the next request (at libcurl's default cache size,
     * 5, finished requests closed connections and others had to open new ones). */
    assert_true(connects >= 1);
    assert_true(connects <= WORKERS);
}

static void
test_stop_with_open_connections(void **state)
{
    struct hctx h = { .mode = M_ECHO };
    struct skr_http_server *srv = start(&h, false, 0);
    _cleanup_(skr_http_client_freep) struct skr_http_client *c = client(NULL, 0, 0, 0);
    struct skr_http_reply r = { 0 };
    char url[256];
    int idle = -1;
    int partial = -1;
    uint64_t t0 = 0;
    char b;

    /* A kept-alive connection in the client's cache, an idle one and a half-sent request. */
    url_of(url, sizeof(url), srv, false, "/");
    assert_int_equal(skr_http_request(c, "GET", url, NULL, skr_span_make(NULL, 0), &r), SKR_OK);
    skr_http_reply_done(&r);
    idle = raw_connect(skr_http_server_port(srv));
    partial = raw_connect(skr_http_server_port(srv));
    raw_send(partial, "GET / HTTP/1.1\r\nHost: x\r\n", 25);
    usleep(50 * 1000);
    t0 = now_ms();
    skr_http_server_stop(srv);
    assert_true(now_ms() - t0 < 5000);
    /* The server closed them. */
    assert_true(recv(idle, &b, 1, 0) <= 0);
    assert_true(recv(partial, &b, 1, 0) <= 0);
    close(idle);
    close(partial);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_helpers),
        cmocka_unit_test(test_get_post_roundtrip),
        cmocka_unit_test(test_handler_error_and_headers),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_body_limit_chunked),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_max_response),
        cmocka_unit_test(test_retry_503),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_400_not_retried),
        cmocka_unit_test(test_timeout_and_stop_interrupts_delay),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_drop_fault),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_trust_roots),
        cmocka_unit_test(test_tls_from_pem_spans),
        cmocka_unit_test(test_server_cfg),
        cmocka_unit_test(test_client_args),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_stop_with_open_connections),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
