/*
 * skrd.h - the SKR sidecar daemon (DESIGN.md §4.1): the pieces main.c, config.c and routes.c
 * share. config.c turns flags, environment and SkrSideCarArgs into a skr_config plus skrd's
 * own settings; routes.c answers the reference sidecar's HTTP API (PROTOCOLS.md §8.1); main.c
 * runs the server, loads the client in the background and shuts down on SIGTERM/SIGINT.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "skr/skr.h"

#include "http_server.h"
#include "log.h"

/* Exit codes: 0 ok (also after SIGTERM), 1 cannot run (bind, log file), 2 bad configuration. */
#define SKRD_EXIT_OK    0
#define SKRD_EXIT_FAIL  1
#define SKRD_EXIT_USAGE 2

/* malloc arenas (mallopt M_ARENA_MAX): see main() */
#define SKRD_MALLOC_ARENAS 2
/* Seconds between malloc_trim(0) calls of the main thread (see serve()). */
#define SKRD_TRIM_INTERVAL_S 5

enum skrd_action {
    SKRD_RUN,
    SKRD_HELP,
    SKRD_VERSION,
    SKRD_CHECK_CONFIG,
};

struct skrd_config {
    enum skrd_action action;
    uint16_t port; /* 0: no TCP listener (only with socket_path) */
    char *listen;  /* numeric address or "localhost" */
    bool listen_is_loopback;
    bool allow_non_loopback;
    bool no_sandbox;   /* --no-sandbox: skip skrd_sandbox_apply */
    char *socket_path; /* NULL: no Unix socket */
    unsigned int max_releases;
    enum skr_log_level log_level;
    char *log_file; /* NULL: stderr */
    skr_config *lib;
    /* {"version", "listeners", "settings": {name: {"value", "source"}}} for --check-config and
     * the start-up log; holds no secret (large blobs appear as their length). */
    json_t *effective;
};

extern const char skrd_usage[];

/*
 * Fills cfg from argv and the environment. On a bad flag, variable or SkrSideCarArgs member,
 * prints "skrd: <where>: <why>" to stderr and returns SKRD_EXIT_USAGE; otherwise SKRD_EXIT_OK
 * (cfg->action says what to do). cfg is always released with skrd_config_done.
 */
int skrd_config_load(struct skrd_config *cfg, int argc, char **argv);
void skrd_config_done(struct skrd_config *cfg);

/* ---- routes ----------------------------------------------------------------------------- */

enum skrd_phase {
    SKRD_LOADING = 0,
    SKRD_READY = 1,
    SKRD_FAILED = 2,
};

struct skrd_state {
    /* Written once by the loader thread before phase becomes READY (release/acquire). */
    skr_client *client;
    atomic_int phase;
    /* Why not ready (phase FAILED): written before phase is published, read-only after. */
    char reason[600];
    char reason_stage[16];
    atomic_uint releases; /* /key/release and /diagnose calls in progress */
    unsigned int max_releases;
    /* The configuration, for GET /diagnose while the client is not ready (it builds its own);
     * set before the listeners start, read-only after. */
    const skr_config *lib_cfg;
};

/* The skr_http_handler of skrd (ctx is a struct skrd_state). Never fails for bad input: every
 * answer is a response; only out-of-memory reaches the server's 500. */
skr_err skrd_handle(void *ctx, const struct skr_http_request *req, struct skr_http_response *resp);
/* The skr_http_error_handler: skrd's error shape for 413 and 500, with the request log line. */
skr_err skrd_handle_error(void *ctx, const struct skr_http_request *req, unsigned int status,
                          const char *message, struct skr_http_response *resp);

/* ---- sandbox (sandbox.c) ---------------------------------------------------------------- */

/* No-new-privs and the seccomp allow-list, for this thread and every thread it starts later;
 * irreversible. */
SKR_NODISCARD skr_err skrd_sandbox_apply(void);
