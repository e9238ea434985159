/*
 * http_server.h - a small HTTP/1.1 server on GNU libmicrohttpd for skrd and the skr-emu
 * emulators (DESIGN.md §4.1-4.2): loopback by default, optional TLS (GnuTLS backend), bounded
 * headers, bodies, connections and idle time (STYLE.md C11), one thread per connection.
 *
 * The handler sees a fully buffered request and fills a response; the server sends it. For the
 * emulators' fault injection a handler may also ask for a delay before the response or for the
 * connection to be dropped without one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "skr_limits.h"

struct skr_http_server;

/* What a handler sees. Everything is borrowed and valid only during the handler call. */
struct skr_http_request {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* percent-decoded path, without the query string */
    const char *query;    /* raw query string after '?', "" when absent (may hold secrets: never
                           * log it) */
    struct skr_span body; /* the whole body (at most the server's max_body_bytes) */
    bool remote_is_loopback;
    void *priv_; /* private to http_server.c */
};

/* The value of query parameter key (percent-decoded), or NULL when absent. */
const char *skr_http_request_query(const struct skr_http_request *req, const char *key);
/* The value of request header name (case-insensitive), or NULL when absent. */
const char *skr_http_request_header(const struct skr_http_request *req, const char *name);

struct skr_http_header {
    char *name;
    char *value;
};

/*
 * What a handler fills. The server initialises it to status 200, an empty body (bounded by
 * SKR_MAX_HTTP_BODY_BYTES) and no headers, and frees it after the handler returned.
 */
struct skr_http_response {
    unsigned int status;
    struct skr_buf body;
    struct skr_http_header headers[SKR_HTTP_MAX_RESPONSE_HEADERS];
    size_t n_headers;
    /* Fault injection: wait this long before answering (at most SKR_HTTP_MAX_FAULT_DELAY_MS;
     * cut short by skr_http_server_stop), and/or close the connection without an answer. */
    unsigned int delay_ms;
    bool drop_connection;
    /* The body is secret (a released key): it is handed to libmicrohttpd without a copy and
     * wiped when the response is freed. */
    bool secret_body;
};

/* Adds a header (both strings copied). SKR_E_INVALID_ARG for a name that is not an RFC 9110
 * token, a value with CR, LF or other control bytes, or either longer than
 * SKR_MAX_HTTP_HEADER_VALUE; SKR_E_TOO_LARGE past SKR_HTTP_MAX_RESPONSE_HEADERS headers. */
SKR_NODISCARD skr_err skr_http_response_add_header(struct skr_http_response *resp, const char *name,
                                                   const char *value);
/* Sets status, replaces the body with the compact serialization of v and sets
 * Content-Type: application/json. v is not consumed. */
SKR_NODISCARD skr_err skr_http_respond_json(struct skr_http_response *resp, unsigned int status,
                                            const json_t *v);
/* Sets status and the Azure error shape {"error":{"code":code,"message":message}}. */
SKR_NODISCARD skr_err skr_http_respond_error_json(struct skr_http_response *resp,
                                                  unsigned int status, const char *code,
                                                  const char *message);

/*
 * Called once per complete request, on the connection's thread (so concurrently with other
 * connections). Returning an error sends 500 {"error":{"code":"InternalError",...}} with the
 * error's category name only (no detail reaches the peer).
 */
typedef skr_err (*skr_http_handler)(void *ctx, const struct skr_http_request *req,
                                    struct skr_http_response *resp);

/*
 * Optional: shapes (and may log) the answers the server makes without the handler: 413 for a
 * body over the limit (req->body is then empty) and 500 when the handler failed (message is
 * the error's category name). Without it, or when it fails, these answers take the Azure shape
 * of skr_http_respond_error_json.
 */
typedef skr_err (*skr_http_error_handler)(void *ctx, const struct skr_http_request *req,
                                          unsigned int status, const char *message,
                                          struct skr_http_response *resp);

struct skr_http_server_cfg {
    const char *host;        /* numeric IPv4/IPv6 address or "localhost"; NULL: "127.0.0.1" */
    uint16_t port;           /* 0: the kernel picks (see skr_http_server_port) */
    bool allow_non_loopback; /* without it a non-loopback host is refused */
    /* A Unix domain socket path instead of host and port: created with mode 0600 before it
     * accepts anything (an existing socket nobody listens on is replaced; anything else there
     * is an error), removed by skr_http_server_stop. Its peers count as loopback. */
    const char *unix_path;
    /* TLS: either PEM files or PEM text (spans win when set); neither: plain HTTP. */
    const char *tls_cert_file;
    const char *tls_key_file;
    struct skr_span tls_cert_pem;
    struct skr_span tls_key_pem;
    skr_http_handler handler;
    void *handler_ctx;
    skr_http_error_handler error_handler; /* optional; called with handler_ctx */
    /* Limits; 0 takes the default from skr_limits.h. */
    size_t max_body_bytes;        /* SKR_MAX_HTTP_BODY_BYTES; over it: 413, no handler call */
    size_t max_header_bytes;      /* SKR_MAX_HTTP_HEADER_BYTES; over it: 431 or close */
    unsigned int max_connections; /* SKR_MAX_CLIENTS */
    unsigned int per_ip_limit;    /* 0: no per-address limit */
    unsigned int idle_timeout_s;  /* SKR_HTTP_SERVER_IDLE_TIMEOUT_S */
    /* Against slow and held-open connections (both 0: off, the default). request_timeout_s:
     * a connection that has not delivered a whole request within this many seconds of its
     * accept or of its previous response is closed (SKR_HTTP_SERVER_REQUEST_TIMEOUT_S).
     * evict_above: when a new connection makes more than this many open, the one longest
     * without a request in its handler (idle, slow, or not reading its answer) is closed. */
    unsigned int request_timeout_s;
    unsigned int evict_above;
    bool log_errors; /* libmicrohttpd's own messages to stderr */
};

/*
 * Binds and starts serving. Errors: SKR_E_INVALID_ARG (no handler, bad or non-loopback host
 * without allow_non_loopback, only one of cert/key, a Unix path too long), SKR_E_UNSUPPORTED
 * (TLS asked for but libmicrohttpd lacks it), SKR_E_IO (cannot read a PEM file, cannot bind,
 * something other than a stale socket at unix_path). On success *ret is
 * a running server the caller stops with skr_http_server_stop.
 */
SKR_NODISCARD skr_err skr_http_server_start(const struct skr_http_server_cfg *cfg,
                                            struct skr_http_server **ret);
/* The bound port (useful after port 0); 0 for a Unix socket. */
uint16_t skr_http_server_port(const struct skr_http_server *srv);
/* Graceful shutdown, step 1: stops accepting connections (the listening socket is closed;
 * requests on open connections are still served). Idempotent. */
void skr_http_server_quiesce(struct skr_http_server *srv);
/* Step 2: waits until no request is in progress (from its request line until its response was
 * sent) or timeout_ms passed. True when idle. */
bool skr_http_server_wait_idle(struct skr_http_server *srv, unsigned int timeout_ms);
/* Stops accepting, interrupts fault delays, closes connections, joins every thread and frees
 * srv. NULL is a no-op. */
void skr_http_server_stop(struct skr_http_server *srv);
DEFINE_CLEANUP(struct skr_http_server *, skr_http_server_stop)
