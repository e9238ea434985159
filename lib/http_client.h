/*
 * http_client.h - the HTTP(S) client for IMDS, MAA and AKV (DESIGN.md §4.1) on libcurl:
 * TLS verification always on (optionally with extra trust from a CA file), no redirects,
 * http/https only, bounded response size and time, and retries with full-jitter exponential
 * backoff that honour Retry-After (delay-seconds form; an HTTP-date falls back to backoff).
 *
 * Retried: connection failures, timeouts and statuses 408, 429, 500, 502, 503, 504. Never
 * another 4xx. Requests are retried whatever the method (the Azure calls we make are
 * idempotent); set retries to 0 for a call that is not.
 *
 * A client may be shared by threads: it holds options and a connection cache (curl share
 * handle); each request uses its own easy handle. Error messages name the host and port,
 * never the path, the query string or any header value.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "buf.h"

struct skr_http_client;

struct skr_http_client_opts {
    const char *ca_file;             /* PEM file of extra trust roots; NULL: system roots */
    unsigned int connect_timeout_ms; /* per attempt */
    unsigned int timeout_ms;         /* one whole attempt (connect, send, receive) */
    size_t max_response_bytes;       /* body limit; past it SKR_E_TOO_LARGE */
    unsigned int retries;            /* attempts after the first, <= SKR_HTTP_MAX_RETRIES */
    unsigned int retry_base_ms;      /* first backoff step (full jitter, doubling) */
    unsigned int retry_cap_ms;       /* cap on one wait, Retry-After included */
    const char *user_agent;          /* NULL: "skr/<version>" */
};

/* Fills o with the defaults of skr_limits.h (SKR_HTTP_*, SKR_MAX_HTTP_BODY_BYTES). */
void skr_http_client_opts_init(struct skr_http_client_opts *o);

/* A client with a copy of opts. SKR_E_INVALID_ARG for zero timeouts or size, too many
 * retries, or a CA file that cannot be opened; SKR_E_NOMEM. */
SKR_NODISCARD skr_err skr_http_client_new(const struct skr_http_client_opts *opts,
                                          struct skr_http_client **ret);
/* NULL is a no-op. No request may be running. */
void skr_http_client_free(struct skr_http_client *c);
DEFINE_CLEANUP(struct skr_http_client *, skr_http_client_free)

/* Trust roots: the system's as OpenSSL finds them (SSL_CERT_FILE and SSL_CERT_DIR, else its
 * compiled-in bundle and directory) plus the PEM file ca_file (may be NULL). SKR_E_IO when
 * ca_file cannot be loaded. */
SKR_NODISCARD skr_err skr_http_trust_new(const char *ca_file, X509_STORE **ret);
/* The client's trust store (skr_http_trust_new of its ca_file), borrowed: X509_STORE_up_ref
 * to keep it past the client. */
X509_STORE *skr_http_client_trust(const struct skr_http_client *c);

/* The outcome of the last attempt. Header values are NUL-terminated copies or NULL. After
 * SKR_OK, body.ptr is never NULL and a NUL (not counted in body.len) follows the body. */
struct skr_http_reply {
    long status;
    struct skr_buf body;
    char *request_id;       /* x-ms-request-id */
    char *retry_after;      /* Retry-After */
    char *www_authenticate; /* WWW-Authenticate */
    char *content_type;     /* Content-Type */
    unsigned int attempts;
    unsigned int connects; /* new connections the attempts opened (0: a cached one was reused) */
};

/* Frees what a reply holds; the reply is empty afterwards. Safe on a zeroed reply. */
void skr_http_reply_done(struct skr_http_reply *r);

/*
 * Sends method (GET, POST, PUT, PATCH, DELETE, HEAD) to url (http:// or https://) with
 * headers (a NULL-terminated array of "Name: value" lines, or NULL) and body (may be empty),
 * retrying as described above, and fills *ret (which the caller releases with
 * skr_http_reply_done whatever the result).
 *
 * Any HTTP status is SKR_OK: the caller judges it (a retryable status that persisted through
 * every retry comes back as the last reply). Errors: SKR_E_INVALID_ARG (bad method or URL,
 * unsupported scheme), SKR_E_TOO_LARGE (body over max_response_bytes, or oversized response
 * headers), SKR_E_VERIFY (the peer's TLS certificate did not verify), SKR_E_TIMEOUT (the last
 * attempt timed out), SKR_E_UPSTREAM (connection failed, reset, or closed without a reply).
 * ret->attempts counts attempts in every case.
 */
SKR_NODISCARD skr_err skr_http_request(struct skr_http_client *c, const char *method,
                                       const char *url, const char *const *headers,
                                       struct skr_span body, struct skr_http_reply *ret);

/*
 * A deadline for every request made by the calling thread (CLOCK_MONOTONIC milliseconds, see
 * skr_http_now_ms; 0 = none). While it is set, each attempt's timeouts are cut to the time
 * left, no retry starts whose backoff would end past it, and a request that starts after it
 * fails at once with SKR_E_TIMEOUT. The release flow sets it to its overall deadline.
 */
void skr_http_set_deadline(uint64_t deadline_ms);
/* The calling thread's deadline (0: none), for work other than HTTP that should end by it. */
uint64_t skr_http_deadline(void);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t skr_http_now_ms(void);
