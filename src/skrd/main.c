/*
 * main.c - skrd, the SKR sidecar (DESIGN.md §4.1): a drop-in replacement for the reference
 * sidecar's HTTP server (confidential-sidecar-containers cmd/skr).
 *
 * Start-up: harden the process (non-dumpable), parse the configuration, start once more with
 * small per-thread malloc caches (bound_thread_caches), open the log, start
 * the HTTP listeners (so that /status answers 503 while loading), then build the libskr client
 * on a thread; once it is ready every route works. A failed client is not retried: skrd keeps
 * answering 503 with the reason (logged at error) so that an orchestrator sees it.
 *
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish (at most SKR_SKRD_DRAIN_MS),
 * stop the listeners, free everything (secrets are wiped by their owners) and exit 0.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "secret.h"
#include "skr_limits.h"
#include "skrd.h"

/* ---- per-thread malloc caches --------------------------------------------------------------- */

/*
 * glibc gives every thread a cache of freed chunks (tcache): up to 7 chunks of every size up to
 * 1 KiB. skrd runs a thread per connection, and under load each thread's cache filled up with
 * OpenSSL's small allocations: at 32 releases in flight the caches held 3.6 MiB, a third of
 * skrd's private memory (bench/release, docs/performance.md). glibc reads its tunables only from
 * the environment at start, so skrd starts itself once more (execv of /proc/self/exe: same pid,
 * arguments and descriptors) with the caches limited to chunks of at most 128 bytes
 * (SKRD_TCACHE_TUNABLE).
 * Not when GLIBC_TUNABLES already sets a glibc.malloc.tcache_* tunable (the operator's choice
 * wins; it is also how the restarted skrd knows it is done), and not under valgrind (it
 * replaces malloc, and would lose the process across the exec).
 */
#ifdef __GLIBC__
#define SKRD_TCACHE_TUNABLE "glibc.malloc.tcache_max=128"
#endif

/* What bound_thread_caches did, for the log once it is open. */
static const char *thread_caches_note = "glibc's defaults";
static int thread_caches_errno;

static void
bound_thread_caches(char **argv)
{
#ifdef __GLIBC__
    const char *cur = secure_getenv("GLIBC_TUNABLES");
    const char *preload = secure_getenv("LD_PRELOAD");
    char *saved = NULL;
    char val[1024];
    int n;

    if (cur != NULL && strstr(cur, "glibc.malloc.tcache") != NULL) {
        thread_caches_note = "as GLIBC_TUNABLES sets them";
        return;
    }
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
        thread_caches_note = "glibc's defaults (under valgrind)";
        return;
    }
    n = snprintf(val, sizeof(val), "%s%s%s", cur != NULL ? cur : "",
                 cur != NULL && cur[0] != '\0' ? ":" : "", SKRD_TCACHE_TUNABLE);
    if (n < 0 || (size_t)n >= sizeof(val)) {
        thread_caches_note = "glibc's defaults (GLIBC_TUNABLES is too long to extend)";
        return;
    }
    if (cur != NULL && (saved = strdup(cur)) == NULL) {
        return;
    }
    if (setenv("GLIBC_TUNABLES", val, 1) == 0) {
        (void)execv("/proc/self/exe", argv);
        thread_caches_errno = errno;
        thread_caches_note = "glibc's defaults (cannot restart with bounded caches)";
    }
    /* still this image: leave the environment as it was */
    if (saved != NULL) {
        (void)setenv("GLIBC_TUNABLES", saved, 1);
    } else {
        (void)unsetenv("GLIBC_TUNABLES");
    }
    free(saved);
#else
    (void)argv;
#endif
}

static void
log_thread_caches(void)
{
    const char *t = secure_getenv("GLIBC_TUNABLES");

    if (thread_caches_errno != 0) {
        skr_log_info("per-thread malloc caches: %s: %s", thread_caches_note,
                     strerror(thread_caches_errno));
    } else {
        skr_log_debug("per-thread malloc caches: %s%s%s", thread_caches_note,
                      t != NULL ? "; GLIBC_TUNABLES=" : "", t != NULL ? t : "");
    }
}

/* ---- the client loader ----------------------------------------------------------------------- */

struct loader {
    struct skrd_state *st;
    const skr_config *cfg;
    /* Set when the loader returns, so that shutdown can wait for it with a deadline. */
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool done;
};

static void
load_client_run(struct loader *l)
{
    struct skrd_state *st = l->st;
    skr_error_info info = { 0 };
    skr_client *c = NULL;
    struct timespec t0;
    struct timespec t1;
    int n = 0;
    skr_err e;

    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    e = skr_client_new(l->cfg, &c, &info);
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    if (e == SKR_OK) {
        st->client = c;
        atomic_store_explicit(&st->phase, SKRD_READY, memory_order_release);
        skr_log_info("ready in %ld ms: security context, certificates and SNP device loaded",
                     (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
        return;
    }
    n = snprintf(st->reason_stage, sizeof(st->reason_stage), "%s", info.stage);
    if (n >= 0) {
        n = snprintf(st->reason, sizeof(st->reason), "%s%s%s%s%s%s",
                     info.stage[0] != '\0' ? info.stage : "", info.stage[0] != '\0' ? ": " : "",
                     info.message[0] != '\0' ? info.message : skr_err_str(e),
                     info.hint[0] != '\0' ? " (hint: " : "", info.hint,
                     info.hint[0] != '\0' ? ")" : "");
    }
    if (n < 0) {
        (void)snprintf(st->reason, sizeof(st->reason), "%s", skr_err_str(e));
    }
    atomic_store_explicit(&st->phase, SKRD_FAILED, memory_order_release);
    skr_log_error("not ready, answering 503 until restarted: %s (%s)", st->reason, skr_err_name(e));
}

static void *
load_client(void *arg)
{
    struct loader *l = arg;

    load_client_run(l);
    pthread_mutex_lock(&l->lock);
    l->done = true;
    pthread_cond_broadcast(&l->done_cond);
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* ---- listeners ------------------------------------------------------------------------------- */

static skr_err
start_listener(const struct skrd_config *cfg, struct skrd_state *st, bool unix_socket,
               struct skr_http_server **ret)
{
    struct skr_http_server_cfg hc = {
        .host = cfg->listen,
        .port = cfg->port,
        .allow_non_loopback = cfg->allow_non_loopback,
        .unix_path = unix_socket ? cfg->socket_path : NULL,
        .handler = skrd_handle,
        .handler_ctx = st,
        .error_handler = skrd_handle_error,
        .max_body_bytes = SKR_SKRD_MAX_BODY_BYTES,
        /* slow-loris and held-open connections (skr_limits.h, docs/security.md) */
        .max_connections = SKR_SKRD_MAX_CONNECTIONS,
        .evict_above = SKR_MAX_CLIENTS,
        .request_timeout_s = SKR_HTTP_SERVER_REQUEST_TIMEOUT_S,
    };

    return skr_http_server_start(&hc, ret);
}

static void
log_settings(const struct skrd_config *cfg)
{
    const char *name = NULL;
    json_t *v = NULL;
    json_t *settings = json_object_get(cfg->effective, "settings");

    if (skr_log_get_level() < SKR_LOG_DEBUG) {
        return;
    }
    json_object_foreach(settings, name, v)
    {
        json_t *val = json_object_get(v, "value");
        json_t *bytes = json_object_get(v, "bytes");
        const char *src = json_string_value(json_object_get(v, "source"));

        if (json_is_string(val)) {
            skr_log_debug("setting %s = %s (%s)", name, json_string_value(val), src);
        } else if (json_is_integer(bytes)) {
            skr_log_debug("setting %s = <%lld bytes> (%s)", name,
                          (long long)json_integer_value(bytes), src);
        } else {
            skr_log_debug("setting %s unset (%s)", name, src);
        }
    }
}

/* ---- run ------------------------------------------------------------------------------------- */

static int
open_log(const struct skrd_config *cfg, FILE **ret)
{
    int fd = -1;
    FILE *f = NULL;

    *ret = NULL;
    if (cfg->log_file == NULL) {
        return SKRD_EXIT_OK;
    }
    fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd >= 0) {
        f = fdopen(fd, "a");
    }
    if (f == NULL) {
        (void)fprintf(stderr, "skrd: logfile: cannot open \"%s\" for appending: %s\n",
                      cfg->log_file, strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
        }
        return SKRD_EXIT_USAGE;
    }
    *ret = f;
    return SKRD_EXIT_OK;
}

/* Waits for the loader thread until deadline (at least a second); false when it still runs. */
static bool
join_loader(struct loader *l, pthread_t t, const struct timespec *deadline)
{
    struct timespec until = *deadline;
    struct timespec now;
    bool done = false;

    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    if (until.tv_sec < now.tv_sec + 1) {
        until = now;
        until.tv_sec++;
    }
    pthread_mutex_lock(&l->lock);
    while (!l->done) {
        if (pthread_cond_timedwait(&l->done_cond, &l->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    done = l->done;
    pthread_mutex_unlock(&l->lock);
    if (done) {
        (void)pthread_join(t, NULL);
    }
    return done;
}

static unsigned int
ms_left(const struct timespec *deadline)
{
    struct timespec now;
    long long ms = 0;

    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000LL +
         (deadline->tv_nsec - now.tv_nsec) / 1000000LL;
    return ms > 0 ? (unsigned int)ms : 0u;
}

static int
serve(struct skrd_config *cfg, FILE *log)
{
    static struct skrd_state st;
    struct skr_http_server *tcp = NULL;
    struct skr_http_server *unix_srv = NULL;
    static struct loader ld;
    pthread_condattr_t ca;
    struct timespec deadline;
    sigset_t sigs;
    pthread_t loader;
    int sig = 0;
    skr_err e = SKR_OK;

    st.max_releases = cfg->max_releases;
    st.lib_cfg = cfg->lib;
    ld.st = &st;
    ld.cfg = cfg->lib;
    pthread_mutex_init(&ld.lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ld.done_cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&st.phase, SKRD_LOADING);
    atomic_init(&st.releases, 0u);

    /* Every thread created from here on (server, loader, key pool) inherits this mask, so
     * the signals reach sigwait below only. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    (void)pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    skr_log_info("skrd %s starting (pid %ld)", SKR_VERSION, (long)getpid());
    log_thread_caches();
    log_settings(cfg);
    {
        /* a one-byte probe: a lock limit too small for even one page is reported now (by
         * lock_failed), not at the first release */
        struct skr_secret *probe = NULL;

        if (skr_secret_new(1, &probe) == SKR_OK) {
            skr_secret_free(probe);
        }
    }
    if (!cfg->listen_is_loopback && cfg->port != 0) {
        skr_log_warn("WARNING: listening on the NON-LOOPBACK address %s port %u "
                     "(--allow-non-loopback): attestation and key release are reachable from "
                     "outside the container group; anyone who can connect can release keys",
                     cfg->listen, (unsigned int)cfg->port);
    }
    if (cfg->socket_path != NULL) {
        e = start_listener(cfg, &st, true, &unix_srv);
        if (e != SKR_OK) {
            skr_log_err(e, "cannot serve on Unix socket %s", cfg->socket_path);
            goto fail;
        }
        skr_log_info("listening on unix:%s (mode 0600)", cfg->socket_path);
    }
    if (cfg->port != 0) {
        e = start_listener(cfg, &st, false, &tcp);
        if (e != SKR_OK) {
            skr_log_err(e, "cannot listen on %s port %u", cfg->listen, (unsigned int)cfg->port);
            goto fail;
        }
        skr_log_info("listening on %s port %u", cfg->listen, (unsigned int)cfg->port);
    }
    if (pthread_create(&loader, NULL, load_client, &ld) != 0) {
        skr_log_error("cannot start the loader thread");
        goto fail;
    }

    /* Every SKRD_TRIM_INTERVAL_S without a signal, hand the pages that malloc holds free back
     * to the kernel (the arenas keep a burst's memory otherwise). */
    for (;;) {
        struct timespec interval = { .tv_sec = SKRD_TRIM_INTERVAL_S };

        sig = sigtimedwait(&sigs, NULL, &interval);
        if (sig > 0) {
            break;
        }
        if (errno == EAGAIN) {
            (void)malloc_trim(0);
        }
        /* EINTR: wait again */
    }
    skr_log_info("signal %d: stopping (in-flight requests may finish for up to %u ms)", sig,
                 SKR_SKRD_DRAIN_MS);
    (void)clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(SKR_SKRD_DRAIN_MS / 1000u);
    skr_http_server_quiesce(tcp);
    skr_http_server_quiesce(unix_srv);
    if (!skr_http_server_wait_idle(tcp, ms_left(&deadline)) ||
        !skr_http_server_wait_idle(unix_srv, ms_left(&deadline))) {
        skr_log_warn("requests still in flight after %u ms: closing them", SKR_SKRD_DRAIN_MS);
    }
    skr_http_server_stop(tcp);
    skr_http_server_stop(unix_srv);
    if (!join_loader(&ld, loader, &deadline)) {
        /* skr_client_new is still inside bounded network calls and uses cfg: leave without
         * freeing rather than pull memory from under it. */
        skr_log_warn("the client is still loading: exiting without waiting for it");
        if (log != NULL) {
            (void)fflush(log);
        }
        _exit(SKRD_EXIT_OK);
    }
    skr_client_free(st.client);
    st.client = NULL;
    skr_log_info("stopped");
    return SKRD_EXIT_OK;

fail:
    skr_http_server_stop(unix_srv);
    skr_http_server_stop(tcp);
    return SKRD_EXIT_FAIL;
}

static int
print_effective(const struct skrd_config *cfg)
{
    _cleanup_(skr_buf_donep) struct skr_buf out = { 0 };

    skr_buf_init(&out, SKR_MAX_JSON_BYTES);
    if (skr_json_dump(cfg->effective, JSON_INDENT(2) | JSON_PRESERVE_ORDER, &out) != SKR_OK ||
        skr_buf_append_byte(&out, '\n') != SKR_OK ||
        fwrite(out.ptr, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        (void)fprintf(stderr, "skrd: cannot print the configuration\n");
        return SKRD_EXIT_FAIL;
    }
    return SKRD_EXIT_OK;
}

/* mlock() failed for a secret (lib/secret.c's hook, in the allocating thread): said when it
 * happens, the first time and then at 2, 4, 8, ... failures so that a persistent limit does not
 * flood the log. */
static void
lock_failed(size_t failures)
{
    if ((failures & (failures - 1)) == 0) {
        skr_log_warn("mlock() failed (%zu times so far): secrets are wiped but may be swapped "
                     "(raise RLIMIT_MEMLOCK, e.g. ulimit -l, or grant CAP_IPC_LOCK)",
                     failures);
    }
}

/* Before any thread starts, so that all of them inherit the filter (sandbox.c). */
static int
sandbox(const struct skrd_config *cfg)
{
    if (cfg->no_sandbox) {
        skr_log_warn("--no-sandbox: running without no-new-privs and the seccomp allow-list");
        return SKRD_EXIT_OK;
    }
    if (skrd_sandbox_apply() != SKR_OK) {
        skr_log_error("cannot apply the sandbox: %s (--no-sandbox runs without it)", skr_err_msg());
        return SKRD_EXIT_FAIL;
    }
    skr_log_debug("sandbox applied: no-new-privs, seccomp allow-list");
    return SKRD_EXIT_OK;
}

int
main(int argc, char **argv)
{
    struct skrd_config cfg;
    FILE *log = NULL;
    int rc = 0;

    if (skr_process_harden() != SKR_OK) {
        (void)fprintf(stderr, "skrd: cannot make the process non-dumpable: %s\n", skr_err_msg());
        return SKRD_EXIT_FAIL;
    }
    /* request bodies may carry an access token: jansson's heap is wiped on free */
    skr_json_wipe_on_free();
    /* glibc gives each new thread its own malloc arena (up to 8 per core), and each arena keeps
     * what was freed in it: with a thread per connection, 32 clients left 13 arenas holding
     * 0.3-1.2 MiB each (bench/release). Two arenas are enough for a daemon whose requests wait
     * on the network and on RSA. */
    (void)mallopt(M_ARENA_MAX, SKRD_MALLOC_ARENAS);
    rc = skrd_config_load(&cfg, argc, argv);
    if (rc == SKRD_EXIT_OK) {
        switch (cfg.action) {
        case SKRD_HELP:
            (void)fputs(skrd_usage, stdout);
            break;
        case SKRD_VERSION:
            (void)printf("skrd %s\n", SKR_VERSION);
            break;
        case SKRD_CHECK_CONFIG:
            rc = print_effective(&cfg);
            break;
        case SKRD_RUN:
            bound_thread_caches(argv); /* returns only when skrd does not restart */
            rc = open_log(&cfg, &log);
            if (rc == SKRD_EXIT_OK) {
                skr_log_init("skrd", cfg.log_level, log);
                skr_secret_set_lock_hook(lock_failed);
                rc = sandbox(&cfg);
            }
            if (rc == SKRD_EXIT_OK) {
                rc = serve(&cfg, log);
            }
            break;
        }
    }
    skrd_config_done(&cfg);
    if (log != NULL) {
        skr_log_init("skrd", SKR_LOG_ERROR, NULL);
        (void)fclose(log);
    }
    return rc;
}
