/*
 * http_server.c - the HTTP server under skrd and skr-emu (DESIGN.md §4.1-4.2) on GNU
 * libmicrohttpd: one thread per connection (a fault delay then stalls only its own client),
 * loopback unless explicitly allowed (STYLE.md C17), and every peer-controlled size bounded
 * before the handler runs (C11): header bytes through the connection memory pool, body bytes
 * through Content-Length and the buffering below, connections and idle time through MHD
 * options.
 *
 * Against slow-loris and held-open connections (opt-in, skrd): every connection is tracked from
 * its accept (connection notification) with a dup of its socket; a reaper thread closes those
 * that have not delivered a whole request within request_timeout_s, and a new connection past
 * evict_above (or the reaper, when libmicrohttpd's hard limit stops new ones) closes the
 * connection longest without a request in a handler (evict_oldest says which). "Closes" is
 * shutdown() through the dup, which wakes the connection's thread and lets libmicrohttpd clean
 * up as if the peer had gone; our dup is closed only when libmicrohttpd reports the connection
 * closed, so the descriptor cannot be reused under us.
 *
 * Per request, the URI log callback (called once, before headers are parsed) allocates the
 * request context and keeps the raw query string, which MHD otherwise parses away; the access
 * handler buffers the body and calls the user handler once; the completion callback frees it.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_client.h"
#include "json.h"

/* One tracked connection (under the server's lock). */
struct conn_track {
    struct conn_track *prev;
    struct conn_track *next;
    int fd;            /* our dup of the connection's socket */
    uint64_t since_ms; /* RECEIVING: accepted or previous response sent; SENDING: queued */
    uint64_t accepted_ms;
    enum { CONN_RECEIVING, CONN_HANDLER, CONN_SENDING } state;
    bool cut; /* shut down already */
};

struct skr_http_server {
    struct MHD_Daemon *daemon;
    skr_http_handler handler;
    skr_http_error_handler error_handler;
    void *handler_ctx;
    size_t max_body_bytes;
    uint16_t port;
    /* A Unix socket listener: its path and identity, so that stop removes our socket only. */
    char *unix_path;
    dev_t unix_dev;
    ino_t unix_ino;
    /* PEM text handed to MHD, which keeps pointers to it while running; the key is wiped. */
    struct skr_buf tls_cert;
    struct skr_buf tls_key;
    /* Fault delays wait on this so that stop() can cut them short. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    /* Requests between their request line and the end of their response (under lock);
     * wait_idle waits on idle for it to reach 0. */
    size_t active;
    pthread_cond_t idle;
    bool quiesced;
    /* Connection tracking (under lock; see the header comment). */
    unsigned int request_timeout_s;
    unsigned int evict_above;
    unsigned int max_connections;
    struct conn_track *conns;
    size_t n_live; /* tracked and not cut */
    pthread_t reaper;
    bool reaper_started;
};

/* TLS 1.2 and 1.3 only, as every Azure endpoint we emulate (GnuTLS priority string). */
static char tls_priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

struct req_ctx {
    char *query;
    struct skr_buf body;
    bool started;   /* the first access-handler call (headers only) happened */
    bool responded; /* a response was queued before the body was read */
    bool too_large;
};

/* ---- requests -------------------------------------------------------------------------- */

const char *
skr_http_request_query(const struct skr_http_request *req, const char *key)
{
    if (req == NULL || req->priv_ == NULL || key == NULL) {
        return NULL;
    }
    return MHD_lookup_connection_value(req->priv_, MHD_GET_ARGUMENT_KIND, key);
}

const char *
skr_http_request_header(const struct skr_http_request *req, const char *name)
{
    if (req == NULL || req->priv_ == NULL || name == NULL) {
        return NULL;
    }
    return MHD_lookup_connection_value(req->priv_, MHD_HEADER_KIND, name);
}

/* ---- responses ------------------------------------------------------------------------- */

static void
response_init(struct skr_http_response *resp)
{
    *resp = (struct skr_http_response){ .status = 200 };
    skr_buf_init(&resp->body, SKR_MAX_HTTP_BODY_BYTES);
}

static void
response_done(struct skr_http_response *resp)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    skr_buf_done(&resp->body);
    response_init(resp);
}

/* RFC 9110 §5.6.2 token characters. */
static bool
is_token(const char *s)
{
    static const char specials[] = "!#$%&'*+-.^_`|~";

    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

        if (!alnum && strchr(specials, c) == NULL) {
            return false;
        }
    }
    return true;
}

/* RFC 9110 §5.5: visible characters, space and tab; no CR/LF (header injection). */
static bool
is_field_value(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return true;
}

skr_err
skr_http_response_add_header(struct skr_http_response *resp, const char *name, const char *value)
{
    _cleanup_free_ char *n = NULL;
    _cleanup_free_ char *v = NULL;

    ENSURE(resp != NULL && name != NULL && value != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(strlen(name) <= SKR_MAX_HTTP_HEADER_VALUE && strlen(value) <= SKR_MAX_HTTP_HEADER_VALUE,
           SKR_E_INVALID_ARG, "response header name or value too long");
    ENSURE(is_token(name), SKR_E_INVALID_ARG, "response header name is not an HTTP token");
    ENSURE(is_field_value(value), SKR_E_INVALID_ARG,
           "response header value contains control characters");
    ENSURE(resp->n_headers < SKR_ARRAY_LEN(resp->headers), SKR_E_TOO_LARGE,
           "too many response headers");
    n = strdup(name);
    v = strdup(value);
    ENSURE(n != NULL && v != NULL, SKR_E_NOMEM, "out of memory");
    resp->headers[resp->n_headers].name = TAKE_PTR(n);
    resp->headers[resp->n_headers].value = TAKE_PTR(v);
    resp->n_headers++;
    return SKR_OK;
}

/* Sets a header, replacing an earlier one of the same name (case-insensitive). */
static skr_err
set_header(struct skr_http_response *resp, const char *name, const char *value)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0) {
            char *v = strdup(value);

            ENSURE(v != NULL, SKR_E_NOMEM, "out of memory");
            free(resp->headers[i].value);
            resp->headers[i].value = v;
            return SKR_OK;
        }
    }
    return skr_http_response_add_header(resp, name, value);
}

skr_err
skr_http_respond_json(struct skr_http_response *resp, unsigned int status, const json_t *v)
{
    ENSURE(resp != NULL && v != NULL, SKR_E_INVALID_ARG, "NULL argument");
    ENSURE(status >= 100 && status <= 599, SKR_E_INVALID_ARG, "HTTP status out of range");
    skr_buf_reset(&resp->body);
    TRY(skr_json_dump(v, JSON_COMPACT, &resp->body));
    TRY(set_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json"));
    resp->status = status;
    return SKR_OK;
}

skr_err
skr_http_respond_error_json(struct skr_http_response *resp, unsigned int status, const char *code,
                            const char *message)
{
    _cleanup_(json_decrefp) json_t *v = NULL;
    char safe[1024];
    size_t n = 0;

    ENSURE(code != NULL && message != NULL, SKR_E_INVALID_ARG, "NULL argument");
    /* Messages may quote input or be cut mid-character: keep printable ASCII so the error is
     * always valid JSON (a 400 must not turn into a 500). */
    for (; n < sizeof(safe) - 1 && message[n] != '\0'; n++) {
        unsigned char c = (unsigned char)message[n];

        safe[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    safe[n] = '\0';
    v = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", safe);
    ENSURE(v != NULL, SKR_E_INVALID_ARG, "error code or message is not valid UTF-8");
    return skr_http_respond_json(resp, status, v);
}

/* ---- connection tracking ------------------------------------------------------------- */

/* *until = CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on the server's conditions. */
static void
deadline_in(unsigned int ms, struct timespec *until)
{
    (void)clock_gettime(CLOCK_MONOTONIC, until);
    until->tv_sec += (time_t)(ms / 1000u);
    until->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

/* Cuts t (caller holds the lock): the connection's thread sees the peer gone. */
static void
track_cut(struct skr_http_server *srv, struct conn_track *t)
{
    (void)shutdown(t->fd, SHUT_RDWR);
    t->cut = true;
    srv->n_live--;
}

/* The tracker of conn, or NULL (tracking off, or it could not be set up). */
static struct conn_track *
track_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

/* conn enters state (its deadline or age starts now, except inside the handler). */
static void
track_state(struct skr_http_server *srv, struct MHD_Connection *conn, int state)
{
    struct conn_track *t = track_of(conn);

    if (t != NULL) {
        pthread_mutex_lock(&srv->lock);
        t->state = state;
        t->since_ms = skr_http_now_ms();
        pthread_mutex_unlock(&srv->lock);
    }
}

/* Eviction takes only connections at least this old (one accepted a moment ago may not have
 * sent its request yet, and would look idle), unless fewer than EVICT_NEAR_LIMIT slots are left
 * under libmicrohttpd's hard limit, where the next connection would be refused anyway. */
#define EVICT_MIN_AGE_MS 50u
#define EVICT_NEAR_LIMIT 32u

static uint64_t
evict_min_age(const struct skr_http_server *srv)
{
    return srv->n_live + EVICT_NEAR_LIMIT >= srv->max_connections ? 0 : EVICT_MIN_AGE_MS;
}

/* Bytes the peer sent that the connection's thread has not read yet. */
static int
track_pending(const struct conn_track *t)
{
    int n = 0;

    return ioctl(t->fd, FIONREAD, &n) == 0 ? n : 0;
}

/*
 * Closes one connection other than keep that has no request in its handler and has been in its
 * state for min_age_ms: the oldest one receiving with nothing unread (idle, slow-loris: its
 * thread has consumed what came), else the oldest one accepted more than
 * SKR_HTTP_SERVER_EVICT_GRACE_MS ago (a client pipelining requests and never reading the
 * answers), else none. The minimum age spares a connection accepted a moment ago that has not
 * sent its request yet (it would look idle; when every other connection pipelines, it would be
 * the only "quiet" one).
 */
static bool
evict_oldest(struct skr_http_server *srv, const struct conn_track *keep, uint64_t min_age_ms)
{
    struct conn_track *quiet = NULL;
    struct conn_track *stale = NULL;
    uint64_t now_ms = skr_http_now_ms();

    for (struct conn_track *t = srv->conns; t != NULL; t = t->next) {
        if (t == keep || t->state == CONN_HANDLER || t->cut || now_ms - t->since_ms < min_age_ms) {
            continue;
        }
        if (t->state == CONN_RECEIVING && (quiet == NULL || t->since_ms < quiet->since_ms) &&
            track_pending(t) == 0) {
            quiet = t;
        } else if (now_ms - t->accepted_ms > SKR_HTTP_SERVER_EVICT_GRACE_MS &&
                   (stale == NULL || t->accepted_ms < stale->accepted_ms)) {
            stale = t;
        }
    }
    if (quiet != NULL) {
        track_cut(srv, quiet);
    } else if (stale != NULL) {
        track_cut(srv, stale);
    }
    return quiet != NULL || stale != NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    struct skr_http_server *srv = cls;
    struct conn_track *t = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        *socket_context = NULL;
        t = calloc(1, sizeof(*t));
        if (t == NULL || ci == NULL || (t->fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            free(t); /* untracked: still bounded by the idle timeout and the limit */
            return;
        }
        t->since_ms = skr_http_now_ms();
        t->accepted_ms = t->since_ms;
        pthread_mutex_lock(&srv->lock);
        t->next = srv->conns;
        if (srv->conns != NULL) {
            srv->conns->prev = t;
        }
        srv->conns = t;
        srv->n_live++;
        if (srv->evict_above != 0 && srv->n_live > srv->evict_above) {
            (void)evict_oldest(srv, t, evict_min_age(srv));
        }
        pthread_mutex_unlock(&srv->lock);
        *socket_context = t;
        return;
    }
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        srv->conns = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    if (!t->cut) {
        srv->n_live--;
    }
    pthread_mutex_unlock(&srv->lock);
    (void)close(t->fd);
    free(t);
    *socket_context = NULL;
}

/* Every 100 ms: cuts the connections past the request deadline, then evicts down to
 * evict_above (at libmicrohttpd's hard limit no new connection arrives to trigger eviction). */
static void *
reaper_main(void *arg)
{
    struct skr_http_server *srv = arg;
    uint64_t limit_ms = (uint64_t)srv->request_timeout_s * 1000u;

    pthread_mutex_lock(&srv->lock);
    while (!srv->stopping) {
        struct timespec until;
        uint64_t now_ms = skr_http_now_ms();

        for (struct conn_track *t = srv->conns; t != NULL && limit_ms != 0; t = t->next) {
            if (t->state != CONN_HANDLER && !t->cut && now_ms - t->since_ms > limit_ms) {
                track_cut(srv, t);
            }
        }
        while (srv->evict_above != 0 && srv->n_live > srv->evict_above &&
               evict_oldest(srv, NULL, evict_min_age(srv))) {
        }
        deadline_in(100u, &until);
        (void)pthread_cond_timedwait(&srv->wake, &srv->lock, &until);
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* ---- the MHD side ---------------------------------------------------------------------- */

static bool
sockaddr_is_loopback(const struct sockaddr *sa)
{
    static const uint8_t v4_mapped_loopback[13] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127 };

    if (sa == NULL) {
        return false;
    }
    if (sa->sa_family == AF_UNIX) {
        return true;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               memcmp(in6->sin6_addr.s6_addr, v4_mapped_loopback, sizeof(v4_mapped_loopback)) == 0;
    }
    return false;
}

/* Frees a secret response body once libmicrohttpd is done with it. */
static void
secret_body_free(void *cls)
{
    struct skr_buf *b = cls;

    skr_buf_done(b);
    free(b);
}

static enum MHD_Result
queue(struct MHD_Connection *conn, struct skr_http_response *resp)
{
    static char empty[1];
    struct MHD_Response *r = NULL;
    enum MHD_Result ok = MHD_YES;

    if (resp->secret_body && resp->body.len != 0) {
        /* No copy: MHD sends from our buffer and hands it back to be wiped. */
        struct skr_buf *owned = malloc(sizeof(*owned));

        if (owned == NULL) {
            return MHD_NO;
        }
        *owned = resp->body;
        skr_buf_init(&resp->body, SKR_MAX_HTTP_BODY_BYTES);
        r = MHD_create_response_from_buffer_with_free_callback_cls(owned->len, owned->ptr,
                                                                   secret_body_free, owned);
        if (r == NULL) {
            secret_body_free(owned);
        }
    } else {
        r = MHD_create_response_from_buffer(resp->body.len,
                                            resp->body.ptr != NULL ? (void *)resp->body.ptr : empty,
                                            MHD_RESPMEM_MUST_COPY);
    }
    if (r == NULL) {
        return MHD_NO;
    }
    for (size_t i = 0; i < resp->n_headers && ok == MHD_YES; i++) {
        ok = MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    }
    if (ok == MHD_YES) {
        ok = MHD_queue_response(conn, resp->status, r);
    }
    MHD_destroy_response(r);
    return ok;
}

/* Fills resp with an answer the server makes itself (413, 500): the error handler's shape when
 * there is one and it succeeds, else the Azure shape. */
static skr_err
server_error(struct skr_http_server *srv, const struct skr_http_request *req, unsigned int status,
             const char *code, const char *message, struct skr_http_response *resp)
{
    if (srv->error_handler != NULL) {
        skr_err e = srv->error_handler(srv->handler_ctx, req, status, message, resp);

        if (e == SKR_OK && resp->status == status) {
            return SKR_OK;
        }
        response_done(resp);
    }
    return skr_http_respond_error_json(resp, status, code, message);
}

static bool
connection_is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    return ci != NULL && sockaddr_is_loopback(ci->client_addr);
}

/* The 413 answer, built by the server itself before any handler call. */
static enum MHD_Result
queue_too_large(struct skr_http_server *srv, struct MHD_Connection *conn, const char *url,
                const char *method, const struct req_ctx *rc)
{
    struct skr_http_request req = {
        .method = method,
        .path = url,
        .query = rc->query,
        .body = skr_span_make(NULL, 0),
        .remote_is_loopback = connection_is_loopback(conn),
        .priv_ = conn,
    };
    struct skr_http_response resp;
    enum MHD_Result ok = MHD_NO;

    response_init(&resp);
    if (server_error(srv, &req, 413, "RequestTooLarge", "request body exceeds the limit", &resp) ==
        SKR_OK) {
        ok = queue(conn, &resp);
    }
    response_done(&resp);
    return ok;
}

/* Waits up to ms, or less when the server is stopping. */
static void
fault_delay(struct skr_http_server *srv, unsigned int ms)
{
    struct timespec until;

    if (ms > SKR_HTTP_MAX_FAULT_DELAY_MS) {
        ms = SKR_HTTP_MAX_FAULT_DELAY_MS;
    }
    deadline_in(ms, &until);
    pthread_mutex_lock(&srv->lock);
    while (!srv->stopping) {
        if (pthread_cond_timedwait(&srv->wake, &srv->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&srv->lock);
}

static enum MHD_Result
dispatch(struct skr_http_server *srv, struct MHD_Connection *conn, const char *url,
         const char *method, struct req_ctx *rc)
{
    struct skr_http_request req = {
        .method = method,
        .path = url,
        .query = rc->query,
        .body = skr_buf_span(&rc->body),
        .remote_is_loopback = connection_is_loopback(conn),
        .priv_ = conn,
    };
    struct skr_http_response resp;
    enum MHD_Result ok = MHD_NO;
    skr_err e;

    response_init(&resp);
    track_state(srv, conn, CONN_HANDLER);
    e = srv->handler(srv->handler_ctx, &req, &resp);
    if (e == SKR_OK && (resp.status < 100 || resp.status > 599)) {
        e = SKR_E_INTERNAL;
    }
    if (e != SKR_OK) {
        response_done(&resp);
        if (server_error(srv, &req, 500, "InternalError", skr_err_name(e), &resp) != SKR_OK) {
            response_done(&resp);
            return MHD_NO;
        }
    }
    if (resp.delay_ms != 0) {
        fault_delay(srv, resp.delay_ms);
    }
    if (!resp.drop_connection) {
        ok = queue(conn, &resp);
    }
    response_done(&resp);
    track_state(srv, conn, CONN_SENDING);
    return ok;
}

/* True when the request announces a body over the limit (checked before any body byte). */
static bool
content_length_over(struct MHD_Connection *conn, size_t max)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n = 0;

    if (cl == NULL) {
        return false;
    }
    /* A malformed value is MHD's to reject; only a well-formed large one matters here. */
    return skr_parse_u64(skr_span_str(cl), false, 0, UINT64_MAX, &n) == SKR_OK && n > max;
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct skr_http_server *srv = cls;
    struct req_ctx *rc = *con_cls;

    if (rc == NULL) {
        return MHD_NO;
    }
    if (!rc->started) {
        rc->started = true;
        if (content_length_over(conn, srv->max_body_bytes)) {
            rc->responded = true;
            return queue_too_large(srv, conn, url, method, rc);
        }
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        if (!rc->too_large && !rc->responded) {
            skr_err e = skr_buf_append(&rc->body, upload_data, *upload_data_size);

            if (e == SKR_E_TOO_LARGE) {
                rc->too_large = true;
                skr_buf_done(&rc->body);
            } else if (e != SKR_OK) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rc->responded) {
        return MHD_YES;
    }
    if (rc->too_large) {
        return queue_too_large(srv, conn, url, method, rc);
    }
    return dispatch(srv, conn, url, method, rc);
}

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct skr_http_server *srv = cls;
    const char *q = strchr(uri, '?');
    struct req_ctx *rc = calloc(1, sizeof(*rc));

    if (rc == NULL) {
        return NULL;
    }
    rc->query = strdup(q != NULL ? q + 1 : "");
    if (rc->query == NULL) {
        free(rc);
        return NULL;
    }
    skr_buf_init(&rc->body, srv->max_body_bytes);
    pthread_mutex_lock(&srv->lock);
    srv->active++;
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct skr_http_server *srv = cls;
    struct req_ctx *rc = *con_cls;

    if (rc == NULL) {
        return;
    }
    skr_buf_done(&rc->body);
    free(rc->query);
    free(rc);
    *con_cls = NULL;
    track_state(srv, conn, CONN_RECEIVING); /* the next request's deadline starts now */
    pthread_mutex_lock(&srv->lock);
    if (srv->active > 0) {
        srv->active--;
    }
    if (srv->active == 0) {
        pthread_cond_broadcast(&srv->idle);
    }
    pthread_mutex_unlock(&srv->lock);
}

/* ---- start / stop ---------------------------------------------------------------------- */

struct bind_addr {
    struct sockaddr_storage ss;
    bool v6;
    bool loopback;
};

static skr_err
parse_host(const char *host, uint16_t port, struct bind_addr *ret)
{
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ret->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ret->ss;

    *ret = (struct bind_addr){ 0 };
    if (strcmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        ret->v6 = true;
    } else {
        FAIL(SKR_E_INVALID_ARG, "listen host must be a numeric IPv4/IPv6 address or localhost");
    }
    ret->loopback = sockaddr_is_loopback((const struct sockaddr *)(const void *)&ret->ss);
    return SKR_OK;
}

static skr_err
load_pem(const char *path, struct skr_span pem, const char *what, struct skr_buf *out)
{
    const char *s = NULL;

    if (pem.len != 0) {
        TRY(skr_buf_append_span(out, pem));
    } else {
        skr_err e = skr_read_file(path, out);

        if (e != SKR_OK) {
            FAILF(e == SKR_E_TOO_LARGE ? e : SKR_E_IO, "cannot read TLS %s file", what);
        }
    }
    ENSURE(out->len != 0 && memchr(out->ptr, '\0', out->len) == NULL, SKR_E_MALFORMED,
           "TLS PEM is empty or contains a NUL byte");
    return skr_buf_cstr(out, &s);
}

static void
server_free(struct skr_http_server *srv)
{
    skr_buf_done(&srv->tls_cert);
    skr_buf_done(&srv->tls_key);
    free(srv->unix_path);
    pthread_cond_destroy(&srv->idle);
    pthread_cond_destroy(&srv->wake);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}
DEFINE_CLEANUP(struct skr_http_server *, server_free)

/* Removes our Unix socket (not one that replaced it since). */
static void
unix_unlink(struct skr_http_server *srv)
{
    struct stat st;

    if (srv->unix_path != NULL && lstat(srv->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == srv->unix_dev && st.st_ino == srv->unix_ino) {
        (void)unlink(srv->unix_path);
    }
}

/* A socket already at path: refused unless it is a socket nobody listens on (left by a process
 * that died), which is removed. */
static skr_err
unix_clear_stale(const struct sockaddr_un *sun)
{
    struct stat st;
    int fd = -1;
    int rc = 0;
    int err = 0;

    if (lstat(sun->sun_path, &st) != 0) {
        ENSURE(errno == ENOENT, SKR_E_IO, "cannot inspect the Unix socket path");
        return SKR_OK;
    }
    ENSURE(S_ISSOCK(st.st_mode), SKR_E_IO, "the Unix socket path exists and is not a socket");
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ENSURE(fd >= 0, SKR_E_IO, "cannot create a Unix socket");
    rc = connect(fd, (const struct sockaddr *)(const void *)sun, sizeof(*sun));
    err = errno;
    (void)close(fd);
    ENSURE(rc != 0, SKR_E_IO, "another process listens on the Unix socket path");
    ENSURE(err == ECONNREFUSED, SKR_E_IO, "cannot probe the existing Unix socket");
    ENSURE(unlink(sun->sun_path) == 0, SKR_E_IO, "cannot remove the stale Unix socket");
    return SKR_OK;
}

/* Binds path with mode 0600 before listening, so nobody else can connect in between. */
static skr_err
unix_listen(struct skr_http_server *srv, const char *path, int *ret_fd)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = strlen(path);
    struct stat st;
    int fd = -1;

    ENSURE(n > 0 && n < sizeof(sun.sun_path), SKR_E_INVALID_ARG,
           "Unix socket path is empty or longer than 107 bytes");
    memcpy(sun.sun_path, path, n + 1);
    TRY(unix_clear_stale(&sun));
    srv->unix_path = strdup(path);
    ENSURE(srv->unix_path != NULL, SKR_E_NOMEM, "out of memory");
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ENSURE(fd >= 0, SKR_E_IO, "cannot create a Unix socket");
    if (bind(fd, (const struct sockaddr *)(const void *)&sun, sizeof(sun)) != 0) {
        (void)close(fd);
        FAIL(SKR_E_IO, "cannot bind the Unix socket (missing directory or no permission)");
    }
    if (chmod(path, 0600) != 0 || lstat(path, &st) != 0 || listen(fd, SOMAXCONN) != 0) {
        (void)close(fd);
        (void)unlink(path);
        FAIL(SKR_E_IO, "cannot restrict or listen on the Unix socket");
    }
    srv->unix_dev = st.st_dev;
    srv->unix_ino = st.st_ino;
    *ret_fd = fd;
    return SKR_OK;
}

static skr_err
server_alloc(struct skr_http_server **ret)
{
    struct skr_http_server *srv = calloc(1, sizeof(*srv));
    pthread_condattr_t ca;

    ENSURE(srv != NULL, SKR_E_NOMEM, "out of memory");
    skr_buf_init(&srv->tls_cert, SKR_MAX_PEM_BYTES);
    skr_buf_init(&srv->tls_key, SKR_MAX_PEM_BYTES);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->wake, &ca);
    pthread_cond_init(&srv->idle, &ca);
    pthread_condattr_destroy(&ca);
    *ret = srv;
    return SKR_OK;
}

/* Stops and joins the reaper thread (if it runs). */
static void
stop_reaper(struct skr_http_server *srv)
{
    if (!srv->reaper_started) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->wake);
    pthread_mutex_unlock(&srv->lock);
    pthread_join(srv->reaper, NULL);
    srv->reaper_started = false;
}

skr_err
skr_http_server_start(const struct skr_http_server_cfg *cfg, struct skr_http_server **ret)
{
    _cleanup_(server_freep) struct skr_http_server *srv = NULL;
    const char *host = NULL;
    struct bind_addr addr;
    bool tls = false;
    /* ITC: skr_http_server_quiesce needs it in this threading mode. */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_AUTO | MHD_USE_ITC;
    struct MHD_OptionItem opts[8] = { { MHD_OPTION_END, 0, NULL } };
    int unix_fd = -1;
    size_t n_opts = 0;
    const union MHD_DaemonInfo *info = NULL;

    ENSURE(cfg != NULL && ret != NULL && cfg->handler != NULL, SKR_E_INVALID_ARG,
           "HTTP server needs a configuration and a handler");
    host = cfg->host != NULL ? cfg->host : "127.0.0.1";
    TRY(parse_host(host, cfg->port, &addr));
    if (cfg->unix_path != NULL) {
        host = cfg->unix_path;
        addr.loopback = true;
        addr.v6 = false;
    }
    if (!addr.loopback && !cfg->allow_non_loopback) {
        FAILF(SKR_E_INVALID_ARG,
              "refusing to listen on non-loopback address '%s' (allow_non_loopback is not set)",
              host);
    }
    tls = cfg->tls_cert_file != NULL || cfg->tls_key_file != NULL || cfg->tls_cert_pem.len != 0 ||
          cfg->tls_key_pem.len != 0;
    if (tls) {
        ENSURE((cfg->tls_cert_file != NULL || cfg->tls_cert_pem.len != 0) &&
                   (cfg->tls_key_file != NULL || cfg->tls_key_pem.len != 0),
               SKR_E_INVALID_ARG, "TLS needs both a certificate and a key");
        ENSURE(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES, SKR_E_UNSUPPORTED,
               "libmicrohttpd was built without TLS support");
    }

    TRY(server_alloc(&srv));
    srv->handler = cfg->handler;
    srv->handler_ctx = cfg->handler_ctx;
    srv->error_handler = cfg->error_handler;
    srv->max_body_bytes = cfg->max_body_bytes != 0 ? cfg->max_body_bytes : SKR_MAX_HTTP_BODY_BYTES;
    if (tls) {
        TRY(load_pem(cfg->tls_cert_file, cfg->tls_cert_pem, "certificate", &srv->tls_cert));
        TRY(load_pem(cfg->tls_key_file, cfg->tls_key_pem, "key", &srv->tls_key));
        flags |= MHD_USE_TLS;
        opts[n_opts++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert.ptr };
        opts[n_opts++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key.ptr };
        opts[n_opts++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, tls_priorities };
    }
    if (cfg->per_ip_limit != 0) {
        opts[n_opts++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                                  (intptr_t)cfg->per_ip_limit, NULL };
    }
    if (cfg->unix_path != NULL) {
        /* MHD owns the descriptor from here (it closes it when stopped). */
        TRY(unix_listen(srv, cfg->unix_path, &unix_fd));
        opts[n_opts++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, unix_fd, NULL };
    }
    srv->request_timeout_s = cfg->request_timeout_s;
    srv->evict_above = cfg->evict_above;
    srv->max_connections =
        cfg->max_connections != 0 ? cfg->max_connections : (unsigned int)SKR_MAX_CLIENTS;
    if (srv->request_timeout_s != 0 || srv->evict_above != 0) {
        opts[n_opts++] =
            (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv };
    }
    opts[n_opts] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    if (addr.v6) {
        flags |= MHD_USE_IPv6;
    }
    if (cfg->log_errors) {
        flags |= MHD_USE_ERROR_LOG;
    }

    /* The connection memory pool holds the request line, the headers and the read buffer, so
     * twice the header limit bounds headers while leaving room to stream the body. */
    srv->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR,
        cfg->unix_path != NULL ? NULL : &addr.ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)2 *
            (cfg->max_header_bytes != 0 ? cfg->max_header_bytes : SKR_MAX_HTTP_HEADER_BYTES),
        MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections != 0 ? cfg->max_connections : (unsigned int)SKR_MAX_CLIENTS,
        MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->idle_timeout_s != 0 ? cfg->idle_timeout_s
                                 : (unsigned int)SKR_HTTP_SERVER_IDLE_TIMEOUT_S,
        MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        if (unix_fd >= 0) {
            unix_unlink(srv);
            FAIL(SKR_E_IO, "cannot serve on the Unix socket");
        }
        FAILF(SKR_E_IO, "cannot listen on %s port %u (address in use, no permission%s)", host,
              (unsigned int)cfg->port, tls ? ", or unusable TLS certificate/key" : "");
    }
    if (srv->request_timeout_s != 0 || srv->evict_above != 0) {
        if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
            MHD_stop_daemon(srv->daemon);
            unix_unlink(srv);
            FAIL(SKR_E_NOMEM, "cannot start the connection reaper thread");
        }
        srv->reaper_started = true;
    }
    if (cfg->unix_path != NULL) {
        *ret = TAKE_PTR(srv);
        return SKR_OK;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        stop_reaper(srv);
        MHD_stop_daemon(srv->daemon);
        FAIL(SKR_E_INTERNAL, "cannot learn the bound port");
    }
    srv->port = info->port;
    *ret = TAKE_PTR(srv);
    return SKR_OK;
}

uint16_t
skr_http_server_port(const struct skr_http_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

void
skr_http_server_quiesce(struct skr_http_server *srv)
{
    MHD_socket fd = MHD_INVALID_SOCKET;

    if (srv == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    if (!srv->quiesced) {
        srv->quiesced = true;
        fd = MHD_quiesce_daemon(srv->daemon);
    }
    pthread_mutex_unlock(&srv->lock);
    if (fd != MHD_INVALID_SOCKET) {
        (void)close(fd);
    }
    unix_unlink(srv);
}

bool
skr_http_server_wait_idle(struct skr_http_server *srv, unsigned int timeout_ms)
{
    struct timespec until;
    bool idle = false;

    if (srv == NULL) {
        return true;
    }
    deadline_in(timeout_ms, &until);
    pthread_mutex_lock(&srv->lock);
    while (srv->active != 0) {
        if (pthread_cond_timedwait(&srv->idle, &srv->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    idle = srv->active == 0;
    pthread_mutex_unlock(&srv->lock);
    return idle;
}

void
skr_http_server_stop(struct skr_http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->wake);
    pthread_mutex_unlock(&srv->lock);
    stop_reaper(srv);
    MHD_stop_daemon(srv->daemon);
    unix_unlink(srv);
    server_free(srv);
}
