/*
 * fuzz_skrd_request.c - skrd's request handler (src/skrd/routes.c) on arbitrary requests: the
 * first input byte picks the method and route (and, with its top bit, a peer that is not
 * loopback, which GET /diagnose must refuse), the rest is the body. The handler runs against a
 * ready libskr client made with snp_device none, no transfer-key pool and an IMDS endpoint on a
 * closed loopback port, so every request that gets past the input checks fails at once at the
 * device stage (or at identity) instead of reaching a network. GET /diagnose runs its steps
 * with no query (query values come from libmicrohttpd, absent here): the device step fails and
 * identity meets the closed port; its query values are checked by lib/diagnose's own tests.
 *
 * Properties: no crash or leak; every answer is one of the statuses skrd documents
 * (docs/skrd.md "Errors"), and every non-200 body is a JSON object with a string "error".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "skr/skr.h"

#include "buf.h"
#include "http_server.h"
#include "json.h"
#include "skrd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *method;
    const char *path;
} targets[] = {
    { "POST", "/attest/raw" },  { "POST", "/attest/combined" }, { "POST", "/attest/maa" },
    { "POST", "/key/release" }, { "GET", "/status" },           { "GET", "/key/release" },
    { "POST", "/nope" },        { "GET", "/diagnose" },
};

static struct skrd_state *
state(void)
{
    static struct skrd_state st;
    static bool done;
    skr_config *cfg = NULL;

    if (done) {
        return &st;
    }
    done = true;
    if (skr_config_new(&cfg) != SKR_OK || skr_config_set(cfg, "snp_device", "none") != SKR_OK ||
        skr_config_set(cfg, "pool_size", "0") != SKR_OK ||
        skr_config_set(cfg, "imds_endpoint", "http://127.0.0.1:9") != SKR_OK ||
        skr_config_set(cfg, "retries", "0") != SKR_OK ||
        skr_config_set(cfg, "connect_timeout_ms", "200") != SKR_OK ||
        skr_config_set(cfg, "timeout_ms", "500") != SKR_OK ||
        skr_client_new(cfg, &st.client, NULL) != SKR_OK) {
        abort();
    }
    skr_config_free(cfg);
    atomic_store(&st.phase, SKRD_READY);
    st.max_releases = 8;
    return &st;
}

static void
check_response(const struct skr_http_response *resp)
{
    static const unsigned int allowed[] = { 200, 400, 403, 404, 405, 413, 500, 502, 503, 504 };
    json_t *doc = NULL;
    bool ok = false;

    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        ok = ok || resp->status == allowed[i];
    }
    if (!ok) {
        abort();
    }
    if (resp->status == 200) {
        return;
    }
    doc = json_loadb((const char *)resp->body.ptr, resp->body.len, 0, NULL);
    if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "error"))) {
        abort();
    }
    json_decref(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct skr_http_request req = { 0 };
    struct skr_http_response resp = { .status = 200 };
    size_t t;

    if (size == 0 || size > SKR_SKRD_MAX_BODY_BYTES + 1) {
        return 0;
    }
    t = data[0] % (sizeof(targets) / sizeof(targets[0]));
    req.method = targets[t].method;
    req.path = targets[t].path;
    req.query = "";
    req.body = skr_span_make(data + 1, size - 1);
    req.remote_is_loopback = (data[0] & 0x80u) == 0;
    skr_buf_init(&resp.body, SKR_MAX_HTTP_BODY_BYTES);
    if (skrd_handle(state(), &req, &resp) != SKR_OK) {
        resp.status = 500; /* the server's answer to a handler error */
        skr_buf_reset(&resp.body);
        if (skr_buf_append(&resp.body, "{\"error\":\"internal\"}", 20) != SKR_OK) {
            abort();
        }
    }
    check_response(&resp);
    for (size_t i = 0; i < resp.n_headers; i++) {
        free(resp.headers[i].name);
        free(resp.headers[i].value);
    }
    skr_buf_done(&resp.body);
    return 0;
}
